use super::*;
use crate::launch::JobServer;
use crate::resolve::ResolvedWave;

fn server(id: &str) -> WaveServer {
    WaveServer {
        id: id.into(),
        hostname: Some(format!("host-{id}")),
        optional: false,
    }
}

/// db (s-1, s-2) and cache (s-3) first, app (s-4, s-5) after both, web (s-6) after app.
fn shop() -> ResolvedPlan {
    let wave = |name: &str, depends_on: Vec<usize>, ids: &[&str]| ResolvedWave {
        name: name.into(),
        depends_on,
        servers: ids.iter().map(|id| server(id)).collect(),
    };
    ResolvedPlan {
        waves: vec![
            wave("db", vec![], &["s-1", "s-2"]),
            wave("cache", vec![], &["s-3"]),
            wave("app", vec![0, 1], &["s-4", "s-5"]),
            wave("web", vec![2], &["s-6"]),
        ],
        layers: vec![vec![0, 1], vec![2], vec![3]],
    }
}

fn job(id: &str, execution: &str, servers: &[(&str, &str)]) -> (JobView, HashMap<String, String>) {
    (
        JobView {
            job_id: id.into(),
            status: "COMPLETED".into(),
            servers: servers
                .iter()
                .map(|(server, status)| JobServer {
                    source_server_id: (*server).into(),
                    launch_status: Some((*status).into()),
                    recovery_instance_id: Some(format!("ri-{server}")),
                })
                .collect(),
        },
        HashMap::from([(TAG_EXECUTION.to_owned(), execution.to_owned())]),
    )
}

fn instance(server: &str, job: &str, state: &str) -> RecoveryInstanceView {
    RecoveryInstanceView {
        recovery_instance_id: format!("ri-{server}"),
        ec2_instance_id: Some(format!("i-{server}")),
        source_server_id: Some(server.into()),
        job_id: Some(job.into()),
        is_drill: false,
        ec2_instance_state: Some(state.into()),
    }
}

fn earlier<'a>(resolved: &'a ResolvedPlan, succeeded: &'a BTreeSet<String>) -> EarlierRun<'a> {
    EarlierRun {
        execution_name: "run-1",
        chain_before: &[],
        resolved: Some(resolved),
        succeeded_waves: succeeded,
    }
}

fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn succeeded_waves_are_adopted_and_only_what_did_not_launch_launches_again() {
    let plan = shop();
    let succeeded = names(&["db", "cache"]);
    // app: s-4 launched, s-5 failed; web never started.
    let jobs = [
        job("j-1", "run-1", &[("s-1", "LAUNCHED"), ("s-2", "LAUNCHED")]),
        job("j-2", "run-1", &[("s-3", "LAUNCHED")]),
        job("j-3", "run-1", &[("s-4", "LAUNCHED"), ("s-5", "FAILED")]),
        job("j-9", "someone-else", &[("s-6", "LAUNCHED")]),
    ];
    let instances = [
        instance("s-1", "j-1", "RUNNING"),
        instance("s-2", "j-1", "RUNNING"),
        instance("s-3", "j-2", "RUNNING"),
        instance("s-4", "j-3", "RUNNING"),
        instance("s-6", "j-9", "RUNNING"),
    ];
    let Adoption { adopted, carried } = plan_resume(
        &plan,
        &earlier(&plan, &succeeded),
        &jobs,
        &instances,
        Mode::Recovery,
    )
    .unwrap();
    assert_eq!(adopted, names(&["db", "cache"]));
    let ids = |wave: &str| -> Vec<String> {
        carried
            .get(wave)
            .map(|c| c.iter().map(|s| s.source_server_id.clone()).collect())
            .unwrap_or_default()
    };
    assert_eq!(ids("db"), ["s-1", "s-2"]);
    assert_eq!(ids("app"), ["s-4"], "s-5 failed: it launches again");
    assert!(
        ids("web").is_empty(),
        "another run's instance is not ours to carry"
    );
    assert_eq!(carried["app"][0].from_execution, "run-1");
    assert_eq!(carried["app"][0].ec2_instance_id.as_deref(), Some("i-s-4"));
}

#[test]
fn a_succeeded_wave_whose_instances_are_gone_or_whose_servers_changed_is_refused() {
    let plan = shop();
    let succeeded = names(&["db"]);
    let jobs = [job(
        "j-1",
        "run-1",
        &[("s-1", "LAUNCHED"), ("s-2", "LAUNCHED")],
    )];
    let instances = [
        instance("s-1", "j-1", "RUNNING"),
        instance("s-2", "j-1", "TERMINATED"),
    ];
    let issues = plan_resume(
        &plan,
        &earlier(&plan, &succeeded),
        &jobs,
        &instances,
        Mode::Recovery,
    )
    .unwrap_err();
    assert_eq!(issues.len(), 1);
    assert!(
        issues[0]
            .message
            .contains("wave \"db\" succeeded in run-1 but cannot be adopted")
            && issues[0]
                .message
                .contains("host-s-2 (recovery instance ri-s-2, EC2 i-s-2 is TERMINATED)"),
        "{}",
        issues[0].message
    );

    let mut before = shop();
    before.waves[0].servers.pop();
    let live = [
        instance("s-1", "j-1", "RUNNING"),
        instance("s-2", "j-1", "RUNNING"),
    ];
    let issues = plan_resume(
        &plan,
        &earlier(&before, &succeeded),
        &jobs,
        &live,
        Mode::Recovery,
    )
    .unwrap_err();
    assert!(issues[0].message.contains("its servers have changed since"));
}

#[test]
fn a_chain_of_resumes_carries_what_any_run_of_it_launched() {
    let plan = shop();
    let succeeded = names(&["db", "cache", "app"]);
    let chain = vec!["run-1".to_owned()];
    let run = EarlierRun {
        execution_name: "run-2",
        chain_before: &chain,
        resolved: Some(&plan),
        succeeded_waves: &succeeded,
    };
    let jobs = [
        job(
            "j-1",
            "run-1",
            &[
                ("s-1", "LAUNCHED"),
                ("s-2", "LAUNCHED"),
                ("s-3", "LAUNCHED"),
            ],
        ),
        job("j-3", "run-1", &[("s-4", "LAUNCHED"), ("s-5", "FAILED")]),
        job("j-4", "run-2", &[("s-5", "LAUNCHED")]),
    ];
    let instances = [
        instance("s-1", "j-1", "RUNNING"),
        instance("s-2", "j-1", "RUNNING"),
        instance("s-3", "j-1", "RUNNING"),
        instance("s-4", "j-3", "RUNNING"),
        instance("s-5", "j-4", "RUNNING"),
    ];
    let Adoption { adopted, carried } =
        plan_resume(&plan, &run, &jobs, &instances, Mode::Recovery).unwrap();
    assert_eq!(adopted, names(&["db", "cache", "app"]));
    let app: Vec<(&str, &str)> = carried["app"]
        .iter()
        .map(|c| (c.source_server_id.as_str(), c.from_execution.as_str()))
        .collect();
    assert_eq!(app, [("s-4", "run-1"), ("s-5", "run-2")]);
}

#[test]
fn a_skipped_wave_leaves_out_every_wave_that_needs_it() {
    let plan = shop();
    let skip = |wave: &str| WaveSkip {
        wave: wave.into(),
        reason: "vendor appliance, restored by hand".into(),
        by: Some("ana".into()),
    };
    let skipped = skipped_waves(&plan, &[skip("app")], &BTreeSet::new()).unwrap();
    assert_eq!(skipped.len(), 2);
    assert_eq!(skipped[0].wave, "app");
    assert_eq!(skipped[0].by.as_deref(), Some("ana"));
    assert_eq!(skipped[1].wave, "web");
    assert_eq!(skipped[1].needs.as_deref(), Some("app"));
    assert_eq!(skipped[1].reason, "needs wave \"app\", which was skipped");

    let issues = skipped_waves(&plan, &[skip("ap")], &BTreeSet::new()).unwrap_err();
    assert_eq!(issues[0].path, "skip_waves[0].wave");
    assert!(issues[0].message.contains("did you mean \"app\"?"));
    let issues = skipped_waves(&plan, &[skip("db")], &names(&["db"])).unwrap_err();
    assert!(issues[0].message.contains("it is adopted, not skipped"));
}

#[test]
fn only_waves_needs_its_dependencies_named_or_live() {
    let plan = shop();
    let left_out =
        left_out_waves(&plan, &["db".into(), "cache".into()], &[], Mode::Recovery).unwrap();
    assert_eq!(left_out, ["app", "web"]);
    let issues = left_out_waves(&plan, &["app".into()], &[], Mode::Recovery).unwrap_err();
    assert_eq!(issues.len(), 2, "db and cache: {issues:?}");
    assert!(issues[0].message.contains(
        "wave \"app\" depends on \"db\", which is neither in only_waves nor recovered and live (2 without a live recovery instance: host-s-1, host-s-2)"
    ));
    let live = [
        instance("s-1", "j-1", "RUNNING"),
        instance("s-2", "j-1", "RUNNING"),
        instance("s-3", "j-1", "RUNNING"),
    ];
    assert_eq!(
        left_out_waves(&plan, &["app".into()], &live, Mode::Recovery).unwrap(),
        ["db", "cache", "web"]
    );
    // Live recovery instances do not stand in for a drill's.
    assert!(left_out_waves(&plan, &["app".into()], &live, Mode::Drill).is_err());
    let issues = left_out_waves(&plan, &["webs".into()], &[], Mode::Recovery).unwrap_err();
    assert!(issues[0].message.contains("did you mean \"web\"?"));
}

#[test]
fn adopted_waves_come_first_without_hooks_and_waves_not_run_are_left_out() {
    let wave = |index: usize, name: &str| WaveRef {
        index,
        name: name.into(),
        servers: 1,
        hooks: crate::contract::WaveHooks {
            pre: vec!["arn:aws:lambda:us-east-1:1:function:drplan-hook-x".into()],
            post: Vec::new(),
        },
        adopted: false,
    };
    let layers = vec![
        vec![wave(0, "db"), wave(1, "cache")],
        vec![wave(2, "app")],
        vec![wave(3, "web")],
    ];
    let arranged = arrange_layers(layers, &names(&["db"]), &names(&["web"]));
    let shape: Vec<Vec<(&str, bool, bool)>> = arranged
        .iter()
        .map(|layer| {
            layer
                .iter()
                .map(|w| (w.name.as_str(), w.adopted, w.hooks.is_empty()))
                .collect()
        })
        .collect();
    assert_eq!(
        shape,
        [
            vec![("db", true, true)],
            vec![("cache", false, false)],
            vec![("app", false, false)]
        ]
    );
}

#[test]
fn carried_servers_count_as_launched_and_keep_the_wave_order() {
    let servers = [server("s-4"), server("s-5")];
    let carried = [CarriedServer {
        source_server_id: "s-4".into(),
        job_id: "j-3".into(),
        recovery_instance_id: "ri-s-4".into(),
        ec2_instance_id: Some("i-s-4".into()),
        from_execution: "run-1".into(),
    }];
    let relaunched = ServerOutcome {
        source_server_id: "s-5".into(),
        hostname: Some("host-s-5".into()),
        optional: false,
        state: ServerState::Launched,
        job_id: Some("j-4".into()),
        recovery_instance_id: Some("ri-new".into()),
        ec2_instance_id: Some("i-new".into()),
        error: None,
        carried_from: None,
    };
    let outcomes = with_carried(&servers, vec![relaunched], &carried, None);
    assert_eq!(outcomes[0].carried_from.as_deref(), Some("run-1"));
    assert_eq!(outcomes[0].state, ServerState::Launched);
    assert_eq!(outcomes[1].job_id.as_deref(), Some("j-4"));
    // In an adopted wave, nothing launches: a server that did not launch stays failed.
    let outcomes = with_carried(&servers, Vec::new(), &carried, Some("run-1"));
    assert_eq!(outcomes[1].state, ServerState::Failed);
    assert!(
        outcomes[1]
            .error
            .as_deref()
            .unwrap()
            .contains("its wave was adopted")
    );
}
