use super::*;
use crate::{Format, parse_plan};

const HOOK: &str = "arn:aws:lambda:us-east-1:123456789012:function:drain";

fn plan(drill: &str) -> Plan {
    parse_plan(
        &format!(
            "name: shop\nrto_minutes: 30\nselector: {{\"dr:plan\": shop}}\nwaves:\n  - name: db\n    selector: {{\"dr:wave\": db}}\n  - name: web\n    depends_on: [db]\n    selector: {{\"dr:wave\": web}}\n    hooks: {{pre: [{{lambda: \"{HOOK}\"}}]}}\n{drill}"
        ),
        Format::Yaml,
    )
    .unwrap()
}

fn server(id: &str, wave: &str, state: &str) -> SourceServer {
    SourceServer {
        id: id.into(),
        arn: None,
        hostname: Some(format!("{wave}-{id}")),
        tags: [("dr:plan", "shop"), ("dr:wave", wave)]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        replication_state: Some(state.into()),
        lag_duration: Some("PT1S".into()),
        replication_direction: None,
    }
}

fn template(subnet: &str, groups: &[&str]) -> LaunchFacts {
    LaunchFacts::Template {
        template_id: "lt-1".into(),
        version: "1".into(),
        subnet_id: Some(subnet.into()),
        security_group_ids: groups.iter().map(|g| (*g).to_owned()).collect(),
        instance_type: Some("m5.large".into()),
    }
}

/// Three servers (one db, two web) launching into subnet-rec, a drill subnet
/// subnet-drill with routes inside its VPC only, everything present.
fn healthy_facts() -> PlanFacts {
    let fleet = vec![
        server("s-1", "db", "CONTINUOUS"),
        server("s-2", "web", "CONTINUOUS"),
        server("s-3", "web", "CONTINUOUS"),
    ];
    let launch = fleet
        .iter()
        .map(|s| (s.id.clone(), template("subnet-rec", &["sg-app"])))
        .collect();
    let subnet = |free| SubnetFacts {
        free_addresses: free,
        availability_zone: Some("us-west-2a".into()),
    };
    PlanFacts {
        fleet,
        launch,
        subnets: [
            ("subnet-rec".to_owned(), subnet(100)),
            ("subnet-drill".to_owned(), subnet(100)),
        ]
        .into(),
        network_read: true,
        security_groups: ["sg-app".to_owned()].into(),
        offered_types: [("us-west-2a".to_owned(), ["m5.large".to_owned()].into())].into(),
        drill_routes: Some(Ok(Vec::new())),
        last_successful_drill: Some(None),
        now: Some("2026-12-02T12:00:00Z".parse().unwrap()),
        ..PlanFacts::default()
    }
}

fn now() -> Timestamp {
    "2026-12-02T12:00:00Z".parse().unwrap()
}

const DRILL: &str = "drill: {subnet_id: subnet-drill}\n";

#[test]
fn a_plan_with_everything_in_place_is_ready_for_both_modes() {
    let readiness = evaluate_plan(&plan(DRILL), &healthy_facts(), now());
    assert!(readiness.ready(), "{}", readiness.to_text());
    assert_eq!(readiness.servers, 3);
    assert!(readiness.findings.is_empty(), "{:?}", readiness.findings);
}

#[test]
fn a_subnet_too_small_for_the_recovery_blocks_it_with_the_numbers() {
    let mut facts = healthy_facts();
    facts.subnets.get_mut("subnet-rec").unwrap().free_addresses = 2;
    let readiness = evaluate_plan(&plan(DRILL), &facts, now());
    // The drill launches into its own subnet, which has room.
    assert!(readiness.drill_ready);
    assert!(!readiness.recovery_ready);
    let finding = &readiness.findings[0];
    assert_eq!(finding.blocks_modes, vec![Mode::Recovery]);
    assert_eq!(finding.path, "subnet subnet-rec (launch templates)");
    assert!(
        finding
            .message
            .starts_with("subnet subnet-rec has 2 free addresses, but this run launches 3 instances into it: 1 would fail"),
        "{}",
        finding.message
    );
    // A drill without its own subnet launches there too.
    let unisolated = evaluate_plan(&plan(""), &facts, now());
    assert!(!unisolated.drill_ready && !unisolated.recovery_ready);
}

#[test]
fn a_deleted_security_group_blocks_every_launch_that_uses_the_template_groups() {
    let mut facts = healthy_facts();
    facts.security_groups.clear();
    let readiness = evaluate_plan(&plan(DRILL), &facts, now());
    assert!(!readiness.recovery_ready && !readiness.drill_ready);
    let finding = &readiness.findings[0];
    assert_eq!(finding.path, "waves[\"db\"].servers[\"db-s-1\"]");
    assert_eq!(finding.blocks_modes, vec![Mode::Drill, Mode::Recovery]);
    assert!(
        finding
            .message
            .contains("names security group sg-app, which does not exist")
    );
    // A drill with its own groups does not use the template's.
    let own_groups = plan("drill: {subnet_id: subnet-drill, security_group_ids: [sg-drill]}\n");
    let readiness = evaluate_plan(&own_groups, &facts, now());
    assert!(readiness.drill_ready && !readiness.recovery_ready);
}

#[test]
fn a_missing_template_subnet_or_instance_type_blocks_the_recovery() {
    let mut facts = healthy_facts();
    facts
        .launch
        .insert("s-2".into(), template("subnet-gone", &["sg-app"]));
    facts.launch.insert(
        "s-3".into(),
        LaunchFacts::Missing("DRS names no EC2 launch template".into()),
    );
    facts
        .offered_types
        .insert("us-west-2a".into(), ["t3.micro".to_owned()].into());
    let recovery = evaluate(
        &plan(DRILL),
        &resolve(&plan(DRILL), &facts.fleet).unwrap(),
        &facts,
        Mode::Recovery,
    );
    let messages: Vec<&str> = recovery
        .blocking
        .iter()
        .map(|i| i.message.as_str())
        .collect();
    assert_eq!(messages.len(), 3, "{messages:?}");
    assert!(messages[0].contains("instance type m5.large, which us-west-2a does not offer"));
    assert!(messages[1].contains("launches into subnet subnet-gone, which does not exist"));
    assert!(messages[2].starts_with("s-3: DRS names no EC2 launch template"));
}

#[test]
fn a_missing_hook_blocks_both_modes_at_its_path() {
    let mut facts = healthy_facts();
    facts
        .missing_hooks
        .insert(HOOK.into(), "no such function".into());
    let readiness = evaluate_plan(&plan(DRILL), &facts, now());
    assert!(!readiness.recovery_ready && !readiness.drill_ready);
    assert_eq!(readiness.findings.len(), 1);
    assert_eq!(readiness.findings[0].path, "waves[1].hooks.pre[0].lambda");
    assert_eq!(readiness.findings[0].severity, Severity::Blocks);
}

#[test]
fn a_stalled_server_blocks_drills_and_warns_recoveries() {
    let mut facts = healthy_facts();
    facts.fleet[1].replication_state = Some("STALLED".into());
    let readiness = evaluate_plan(&plan(DRILL), &facts, now());
    assert!(readiness.recovery_ready && !readiness.drill_ready);
    assert_eq!(readiness.verdict(), "recovery ready, drill NOT ready");
    let paths: Vec<(&str, Severity)> = readiness
        .findings
        .iter()
        .map(|f| (f.path.as_str(), f.severity))
        .collect();
    assert_eq!(
        paths,
        vec![
            ("waves[\"web\"].servers[\"web-s-2\"]", Severity::Blocks),
            ("waves[\"web\"].servers[\"web-s-2\"]", Severity::Warning),
        ]
    );
}

#[test]
fn an_overdue_drill_is_a_warning_with_its_age() {
    let overdue = plan("drill: {subnet_id: subnet-drill, every_days: 30}\n");
    let facts = healthy_facts();
    let never = evaluate_plan(&overdue, &facts, now());
    assert!(never.ready());
    assert_eq!(never.findings[0].path, "drill.every_days");
    assert!(
        never.findings[0]
            .message
            .contains("no successful drill on record")
    );
    let mut drilled = healthy_facts();
    drilled.last_successful_drill = Some(Some("2026-10-01T12:00:00Z".parse().unwrap()));
    let old = evaluate_plan(&overdue, &drilled, now());
    assert!(
        old.findings[0]
            .message
            .starts_with("the last successful drill was 62 days ago")
    );
    drilled.last_successful_drill = Some(Some("2026-11-20T12:00:00Z".parse().unwrap()));
    assert!(evaluate_plan(&overdue, &drilled, now()).findings.is_empty());
}

#[test]
fn a_plan_that_does_not_resolve_blocks_both_modes() {
    let mut facts = healthy_facts();
    facts.fleet.remove(0);
    let readiness = evaluate_plan(&plan(DRILL), &facts, now());
    assert!(!readiness.recovery_ready && !readiness.drill_ready);
    assert_eq!(readiness.servers, 0);
    assert_eq!(
        readiness.findings[0].blocks_modes,
        vec![Mode::Drill, Mode::Recovery]
    );
}

#[test]
fn an_e_mail_goes_out_when_either_verdict_changes() {
    let ready = evaluate_plan(&plan(DRILL), &healthy_facts(), now());
    let mut stalled = healthy_facts();
    stalled.fleet[0].replication_state = Some("STALLED".into());
    let not_ready = evaluate_plan(&plan(DRILL), &stalled, now());
    assert!(
        !ready.changed_from(None),
        "a first evaluation that is ready says nothing"
    );
    assert!(not_ready.changed_from(None));
    assert!(not_ready.changed_from(Some(&ready)));
    assert!(ready.changed_from(Some(&not_ready)));
    assert!(!not_ready.changed_from(Some(&not_ready)));
}

#[test]
fn the_change_e_mail_says_what_changed_and_every_finding() {
    let ready = evaluate_plan(&plan(DRILL), &healthy_facts(), now());
    let mut stalled = healthy_facts();
    stalled.fleet[0].replication_state = Some("STALLED".into());
    let not_ready = evaluate_plan(&plan(DRILL), &stalled, now());

    let (subject, body) = not_ready.change_message(Some(&ready));
    assert_eq!(
        subject,
        "drplan: plan shop is NOT ready (recovery ready, drill NOT ready)"
    );
    assert!(
        body.starts_with("Plan shop was recovery ready, drill ready at"),
        "{body}"
    );
    assert!(
        body.contains("STALLED") && body.contains("drplan readiness shop"),
        "{body}"
    );

    let (subject, body) = ready.change_message(Some(&not_ready));
    assert_eq!(subject, "drplan: plan shop is ready again");
    assert!(!body.contains("is refused"), "{body}");

    let mut long = not_ready.clone();
    long.plan = "p".repeat(120);
    assert!(long.change_message(None).0.len() <= 100);
}
