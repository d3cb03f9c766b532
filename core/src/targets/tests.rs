use super::*;
use crate::contract::LaunchState;

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

const NOW: &str = "2026-11-28T01:00:00Z";
const DEADLINE: &str = "2026-11-28T01:10:00Z";
const TG: &str =
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/shop-web/0123456789abcdef";
const DRILL_TG: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/shop-web-drill/0123456789abcdef";

fn server(name: &str, optional: bool, state: ServerHealthState) -> ServerHealth {
    ServerHealth {
        source_server_id: format!("s-{name}"),
        hostname: Some(name.into()),
        optional,
        ec2_instance_id: Some(format!("i-{name}")),
        subnet_id: None,
        probe_address: None,
        state,
        gone: false,
        checks: Vec::new(),
        healthy_since: None,
    }
}

fn target(arn: &str, drill: bool) -> Target {
    Target {
        target_group_arn: arn.into(),
        port: 443,
        drill,
    }
}

fn health(state: &str, reason: Option<&str>) -> TargetHealth {
    TargetHealth {
        state: state.into(),
        reason: reason.map(str::to_owned),
        description: None,
    }
}

fn seen(pairs: &[(&str, &str)]) -> HashMap<String, TargetHealth> {
    pairs
        .iter()
        .map(|(id, state)| ((*id).to_owned(), health(state, None)))
        .collect()
}

#[test]
fn only_the_healthy_instances_are_registered_into_each_of_the_modes_target_groups() {
    let servers = [
        server("web-01", false, ServerHealthState::Healthy),
        server("web-02", false, ServerHealthState::Unhealthy),
        server("web-03", true, ServerHealthState::Healthy),
        ServerHealth {
            ec2_instance_id: None,
            ..server("web-04", false, ServerHealthState::Healthy)
        },
    ];
    let record = plan_registration(
        "web",
        Mode::Recovery,
        &[target(TG, false)],
        &servers,
        at(NOW),
    );
    assert_eq!(record.groups.len(), 1);
    let ids: Vec<&str> = record.groups[0]
        .targets
        .iter()
        .map(|t| t.ec2_instance_id.as_str())
        .collect();
    assert_eq!(ids, ["i-web-01", "i-web-03"]);
    assert_eq!(
        record.deregistrations(),
        [(
            TG.to_owned(),
            vec![("i-web-01".to_owned(), 443), ("i-web-03".to_owned(), 443)]
        )]
    );
}

#[test]
fn a_recovery_uses_only_recovery_target_groups_and_a_drill_only_drill_ones() {
    let plan = crate::parse_plan(
        &format!(
            "name: shop\nrto_minutes: 30\nselector: {{ a: b }}\nwaves:\n  - name: web\n    selector: {{ c: d }}\n    targets:\n      - {{ target_group_arn: \"{TG}\", port: 443 }}\n      - {{ target_group_arn: \"{DRILL_TG}\", port: 443, drill: true }}\n"
        ),
        crate::Format::Yaml,
    )
    .unwrap();
    assert_eq!(
        targets_of_wave(&plan, "web", Mode::Recovery),
        [target(TG, false)]
    );
    assert_eq!(
        targets_of_wave(&plan, "web", Mode::Drill),
        [target(DRILL_TG, true)]
    );
    assert!(targets_of_wave(&plan, "app", Mode::Recovery).is_empty());
}

#[test]
fn the_gate_waits_for_the_load_balancer_then_passes_when_every_critical_target_is_healthy() {
    let servers = [
        server("web-01", false, ServerHealthState::Healthy),
        server("batch", true, ServerHealthState::Healthy),
    ];
    let mut record = plan_registration(
        "web",
        Mode::Recovery,
        &[target(TG, false)],
        &servers,
        at(NOW),
    );
    let verdict = |r: &WaveTargetsRecord, now: &str| r.verdict(at(now), at(DEADLINE), 10, 3);
    // Nothing known yet, then registration in progress: poll again.
    assert_eq!(
        verdict(&record, NOW),
        HealthVerdict::InProgress { wait_seconds: 3 }
    );
    record.observe(
        TG,
        &seen(&[("i-web-01", "initial"), ("i-batch", "unhealthy")]),
    );
    assert_eq!(
        verdict(&record, NOW),
        HealthVerdict::InProgress { wait_seconds: 3 }
    );
    // The optional server's target never holds the wave back.
    record.observe(
        TG,
        &seen(&[("i-web-01", "healthy"), ("i-batch", "unhealthy")]),
    );
    assert_eq!(verdict(&record, NOW), HealthVerdict::Succeeded);
    let lines = record.summary_lines();
    assert_eq!(
        lines,
        ["shop-web (port 443): web-01 (i-web-01) healthy; batch (i-batch) unhealthy"]
    );
}

#[test]
fn a_target_not_healthy_at_the_deadline_fails_the_wave_naming_it_and_why() {
    let servers = [
        server("web-01", false, ServerHealthState::Healthy),
        server("web-02", false, ServerHealthState::Healthy),
    ];
    let mut record = plan_registration(
        "web",
        Mode::Recovery,
        &[target(TG, false)],
        &servers,
        at(NOW),
    );
    let mut answer = seen(&[("i-web-01", "healthy")]);
    answer.insert(
        "i-web-02".into(),
        TargetHealth {
            state: "unhealthy".into(),
            reason: Some("Target.FailedHealthChecks".into()),
            description: Some("Health checks failed".into()),
        },
    );
    record.observe(TG, &answer);
    let HealthVerdict::Failed { reason } = record.verdict(at(DEADLINE), at(DEADLINE), 10, 3) else {
        panic!("a failed verdict");
    };
    assert_eq!(
        reason,
        "target group shop-web: web-02 (i-web-02) is not healthy: target health unhealthy (Target.FailedHealthChecks: Health checks failed) after 10 min"
    );
}

#[test]
fn a_refused_registration_fails_the_gate_at_once_and_the_poll_says_so() {
    let servers = [server("web-01", false, ServerHealthState::Healthy)];
    let mut targets = plan_registration(
        "web",
        Mode::Recovery,
        &[target(TG, false)],
        &servers,
        at(NOW),
    );
    targets.groups[0].error = Some("RegisterTargets failed (TargetGroupNotFound)".into());
    let verdict = targets.verdict(at(NOW), at(DEADLINE), 10, 3);
    let mut record = WaveHealthRecord {
        wave: "web".into(),
        checks: vec!["ec2-status".into()],
        timeout_minutes: 10,
        started_at: at(NOW),
        deadline: at(DEADLINE),
        checked_at: at(NOW),
        attempt: 2,
        state: "SUCCEEDED".into(),
        reason: None,
        healthy_at: Some(at(NOW)),
        probe_addressing: "private-ip".into(),
        servers: servers.to_vec(),
    };
    let mut poll = HealthPoll {
        state: LaunchState::Succeeded,
        attempt: 2,
        wait_seconds: 0,
        deadline: at(DEADLINE),
        healthy: 1,
        unhealthy: 0,
        pending: 0,
        reason: None,
    };
    apply_to_gate(&verdict, &mut targets, &mut record, &mut poll, at(NOW));
    assert_eq!(poll.state, LaunchState::Failed);
    let expected =
        "wave \"web\": target group shop-web: RegisterTargets failed (TargetGroupNotFound)";
    assert_eq!(poll.reason.as_deref(), Some(expected));
    assert_eq!((record.state.as_str(), record.healthy_at), ("FAILED", None));
    assert_eq!(targets.state, "FAILED");
    assert_eq!(
        targets.summary_lines(),
        ["shop-web (port 443): not registered: RegisterTargets failed (TargetGroupNotFound)"]
    );
}

#[test]
fn target_group_names_come_from_their_arns() {
    assert_eq!(target_group_name(TG), "shop-web");
    assert_eq!(target_group_name("not-an-arn"), "not-an-arn");
}

#[test]
fn a_missing_target_group_of_a_wave_the_run_launches_is_named_with_its_path() {
    let plan = crate::parse_plan(
        &format!(
            "name: shop\nrto_minutes: 30\nselector: {{ a: b }}\nwaves:\n  - name: app\n    selector: {{ c: e }}\n  - name: web\n    selector: {{ c: d }}\n    targets:\n      - {{ target_group_arn: \"{TG}\", port: 443 }}\n      - {{ target_group_arn: \"{DRILL_TG}\", port: 443, drill: true }}\n"
        ),
        crate::Format::Yaml,
    )
    .unwrap();
    let both = ["app", "web"];
    assert_eq!(
        target_groups_of_run(&plan, Mode::Recovery, &both),
        [TG.to_owned()]
    );
    assert_eq!(
        target_groups_of_run(&plan, Mode::Drill, &both),
        [DRILL_TG.to_owned()]
    );
    assert!(target_groups_of_run(&plan, Mode::Recovery, &["app"]).is_empty());
    let missing = [TG.to_owned(), DRILL_TG.to_owned()];
    let issues = missing_target_group_issues(&plan, Mode::Recovery, &both, &missing);
    assert_eq!(issues.len(), 1, "{issues:?}");
    assert_eq!(issues[0].path, "waves[1].targets[0].target_group_arn");
    assert!(
        issues[0]
            .message
            .starts_with(&format!("wave web: target group {TG} does not exist")),
        "{}",
        issues[0].message
    );
    let drill = missing_target_group_issues(&plan, Mode::Drill, &both, &missing);
    assert_eq!(drill[0].path, "waves[1].targets[1].target_group_arn");
    assert!(
        missing_target_group_issues(&plan, Mode::Recovery, &["app"], &missing).is_empty(),
        "a wave the run leaves out is not checked"
    );
    assert!(missing_target_group_issues(&plan, Mode::Recovery, &both, &[]).is_empty());
}

#[test]
fn only_targets_the_group_does_not_hold_yet_are_registered() {
    let wanted = vec![
        ("i-kept".to_owned(), 443),
        ("i-new".to_owned(), 443),
        ("i-gone".to_owned(), 443),
        ("i-leaving".to_owned(), 443),
    ];
    let seen: HashMap<String, TargetHealth> = [
        ("i-kept", health("healthy", None)),
        ("i-gone", health("unused", Some("Target.NotRegistered"))),
        ("i-leaving", health("draining", None)),
    ]
    .into_iter()
    .map(|(id, h)| (id.to_owned(), h))
    .collect();
    assert_eq!(
        not_yet_registered(&wanted, &seen),
        [
            ("i-new".to_owned(), 443),
            ("i-gone".to_owned(), 443),
            ("i-leaving".to_owned(), 443)
        ]
    );
    let all_held: HashMap<String, TargetHealth> = wanted
        .iter()
        .map(|(id, _)| {
            (
                id.clone(),
                health("initial", Some("Elb.RegistrationInProgress")),
            )
        })
        .collect();
    assert!(not_yet_registered(&wanted, &all_held).is_empty());
}
