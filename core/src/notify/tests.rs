use super::text::{duration_text, execution_region};
use super::*;
use crate::contract::notice::*;
use crate::contract::step::*;
use crate::contract::{LaunchPoll, LaunchState, RunContext, SnapshotChoice, WaveRef};
use crate::issue::Issue;
use crate::launch::ServerOutcome;
use crate::launch::{ServerState, WaveProgress};
use crate::plan::Mode;
use crate::report::{RtoResult, RunError, ServerReport, WaveReport};
use crate::{Quotas, Timing};
use jiff::Timestamp;
use serde_json::json;

const ARN: &str = "arn:aws:states:eu-west-1:123456789012:execution:drplan-recovery:shop-drill-1";

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

fn now() -> Timestamp {
    at("2026-11-28T03:12:30Z")
}

fn run(mode: Mode) -> RunContext {
    RunContext {
        execution_id: ARN.into(),
        execution_name: "shop-drill-1".into(),
        plan: "shop".into(),
        mode,
        started_at: at("2026-11-28T03:00:00Z"),
        snapshot: SnapshotChoice::Latest,
        timing: Timing::default(),
        quotas: Quotas::default(),
        deadline: None,
        resumed: None,
        origin_region: None,
    }
}

fn wave(name: &str, index: usize, servers: usize) -> WaveRef {
    WaveRef {
        index,
        name: name.into(),
        servers,
        hooks: Default::default(),
        adopted: false,
    }
}

fn request(event: RunEvent, mode: Mode) -> NotificationRequest {
    NotificationRequest {
        event,
        execution_id: ARN.into(),
        execution_name: "shop-drill-1".into(),
        run: Some(run(mode)),
        input: None,
        discovery: None,
        wave: None,
        poll: None,
        error: None,
        report: None,
        cleanup: None,
        approval: None,
        task_token: None,
        dns: None,
        pause: None,
    }
}

fn discovery() -> DiscoverySummary {
    DiscoverySummary {
        server_count: 15,
        layers: vec![
            vec![wave("database", 0, 3)],
            vec![wave("cache", 1, 2), wave("app", 2, 8)],
            vec![wave("web", 3, 2)],
        ],
        warnings: vec![Issue::new(
            "servers[\"db-01\"]",
            "replication lag 7m exceeds the RPO of 5 min",
        )],
        ..DiscoverySummary::default()
    }
}

fn poll(state: LaunchState, launched: usize, failed: usize) -> LaunchPoll {
    LaunchPoll {
        state,
        attempt: 4,
        wait_seconds: 30,
        deadline: at("2026-11-28T04:30:00Z"),
        launched,
        failed,
        pending: 0,
        reason: None,
    }
}

fn failed_server(n: usize, optional: bool) -> ServerOutcome {
    ServerOutcome {
        source_server_id: format!("s-{n:017}"),
        hostname: Some(format!("app-{n:03}")),
        optional,
        state: ServerState::Failed,
        job_id: Some("drsjob-1".into()),
        recovery_instance_id: None,
        ec2_instance_id: None,
        error: Some(format!(
            "LAUNCH_FAILED: InsufficientInstanceCapacity for app-{n:03}"
        )),
        carried_from: None,
    }
}

/// The checks every message must pass.
fn check(notification: &Notification, event: RunEvent) {
    let subject = &notification.subject;
    assert!(subject.chars().count() < 100, "subject too long: {subject}");
    assert!(!subject.chars().any(char::is_control), "{subject:?}");
    assert!(subject.starts_with("[drplan] "), "{subject}");
    let attributes: Vec<(&str, &str)> = notification.attributes.pairs().to_vec();
    assert_eq!(attributes[3], ("event", event.as_str()));
    assert!(attributes.iter().all(|(_, v)| !v.is_empty()));
    let body = &notification.body;
    assert!(body.contains("Execution: shop-drill-1"), "{body}");
    assert!(body.contains("WHAT TO DO NEXT"), "{body}");
    assert!(
            body.contains(
                "https://eu-west-1.console.aws.amazon.com/states/home?region=eu-west-1#/v2/executions/details/arn:aws:states:eu-west-1:123456789012:execution:drplan-recovery:shop-drill-1"
            ),
            "{body}"
        );
    assert!(
        body.contains(
            "https://eu-west-1.console.aws.amazon.com/drs/home?region=eu-west-1#/sourceServers"
        ),
        "{body}"
    );
}

fn attribute<'a>(notification: &'a Notification, name: &str) -> &'a str {
    notification
        .attributes
        .pairs()
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| *v)
        .unwrap()
}

#[test]
fn started_lists_the_waves_in_order_and_the_warnings() {
    let mut req = request(RunEvent::Started, Mode::Drill);
    req.discovery = Some(discovery());
    let n = compose(&req, &StoredRecords::default(), now()).unwrap();
    check(&n, RunEvent::Started);
    assert_eq!(
        n.subject,
        "[drplan] DRILL shop: started (15 servers in 4 waves)"
    );
    assert_eq!(attribute(&n, "severity"), "info");
    assert_eq!(attribute(&n, "mode"), "drill");
    assert_eq!(attribute(&n, "plan"), "shop");
    assert!(n.body.contains("  1. database (3 servers)\n"), "{}", n.body);
    assert!(
        n.body.contains("  2. cache (2 servers), app (8 servers)\n"),
        "{}",
        n.body
    );
    assert!(n.body.contains("replication lag 7m exceeds the RPO"));
    assert!(n.body.contains("(12m 30s ago)"), "{}", n.body);
    assert!(n.body.contains("drplan status shop-drill-1 --wait"));
}

#[test]
fn an_outage_sized_warning_list_is_counted_and_points_at_the_report() {
    let mut req = request(RunEvent::Started, Mode::Recovery);
    let mut found = discovery();
    found.warnings = (0..crate::readiness::ISSUES_IN_STATE)
        .map(|i| Issue::new(format!("servers[{i}]"), "replication is STALLED"))
        .collect();
    found.warning_count = 8000;
    req.discovery = Some(found);
    let n = compose(&req, &StoredRecords::default(), now()).unwrap();
    assert!(n.body.contains("READINESS WARNINGS (8000)"), "{}", n.body);
    assert!(
        n.body.contains(
            "... and 7990 more: every warning is in the run's report (reports/shop/shop-drill-1.md)"
        ),
        "{}",
        n.body
    );
}

#[test]
fn a_recovery_that_takes_over_from_a_drill_says_so() {
    let mut req = request(RunEvent::Started, Mode::Recovery);
    let mut found = discovery();
    found.stop_drill = Some(crate::safety::RunLock {
        execution_id: "arn:aws:states:us-east-1:1:execution:drplan-recovery:shop-drill-7".into(),
        execution_name: "shop-drill-7".into(),
        mode: Mode::Drill,
        locked_at: now(),
    });
    found.clear_first = true;
    req.discovery = Some(found);
    let n = compose(&req, &StoredRecords::default(), now()).unwrap();
    assert!(
        n.body
            .contains("DRILL STOPPED: the running drill shop-drill-7 of this plan is stopped"),
        "{}",
        n.body
    );
    // Leftovers of an earlier drill, without a drill to stop.
    let mut leftovers = discovery();
    leftovers.clear_first = true;
    req.discovery = Some(leftovers);
    let n = compose(&req, &StoredRecords::default(), now()).unwrap();
    assert!(
        n.body
            .contains("left on the plan's servers by an earlier drill"),
        "{}",
        n.body
    );
}

#[test]
fn approval_carries_the_exact_commands() {
    let mut req = request(RunEvent::ApprovalNeeded, Mode::Recovery);
    req.discovery = Some(discovery());
    req.approval = Some(ApprovalWait {
        timeout_minutes: Some(60),
    });
    req.task_token = Some("AQCEAAAAKgAAAA+token/with=chars".into());
    let n = compose(&req, &StoredRecords::default(), now()).unwrap();
    check(&n, RunEvent::ApprovalNeeded);
    assert_eq!(
        n.subject,
        "[drplan] RECOVERY shop: approval needed to launch 15 servers"
    );
    assert_eq!(attribute(&n, "severity"), "warning");
    assert!(
        n.body.contains("drplan approve shop-drill-1\n"),
        "{}",
        n.body
    );
    assert!(
        n.body
            .contains("drplan decline shop-drill-1 --reason \"...\"")
    );
    assert!(n.body.contains(
            "aws stepfunctions send-task-success --task-token 'AQCEAAAAKgAAAA+token/with=chars' --task-output '{\"approved\": true}'"
        ), "{}", n.body);
    assert!(
        n.body
            .contains("within 60 minutes (by 2026-11-28 04:12 UTC)")
    );
    assert!(n.body.contains("nothing launched"));
}

#[test]
fn approval_without_a_token_is_refused() {
    let req = request(RunEvent::ApprovalNeeded, Mode::Recovery);
    let error = compose(&req, &StoredRecords::default(), now()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "a APPROVAL_NEEDED notification needs `task_token` in its input"
    );
}

#[test]
fn wave_started_and_succeeded() {
    let mut req = request(RunEvent::WaveStarted, Mode::Drill);
    req.wave = Some(wave("app", 2, 8));
    let n = compose(&req, &StoredRecords::default(), now()).unwrap();
    check(&n, RunEvent::WaveStarted);
    assert_eq!(
        n.subject,
        "[drplan] DRILL shop: wave app started (8 servers)"
    );
    assert!(
        n.body
            .contains("Wave:      app (#3 of the plan, 8 servers)")
    );

    req.event = RunEvent::WaveSucceeded;
    req.poll = Some(poll(LaunchState::Succeeded, 8, 0));
    let n = compose(&req, &StoredRecords::default(), now()).unwrap();
    check(&n, RunEvent::WaveSucceeded);
    assert_eq!(
        n.subject,
        "[drplan] DRILL shop: wave app succeeded (8/8 launched)"
    );
    assert_eq!(attribute(&n, "severity"), "info");
    assert!(!req.needs_wave_launch());
}

#[test]
fn a_wave_with_failed_optional_servers_succeeds_with_a_warning() {
    let mut req = request(RunEvent::WaveSucceeded, Mode::Drill);
    req.wave = Some(wave("app", 2, 8));
    req.poll = Some(poll(LaunchState::Succeeded, 7, 1));
    assert!(req.needs_wave_launch());
    let records = StoredRecords {
        report: None,
        wave_launch: Some(WaveLaunchOutcome {
            progress: WaveProgress {
                servers: vec![failed_server(7, true)],
            },
            job_ids: vec!["drsjob-1".into()],
        }),
    };
    let n = compose(&req, &records, now()).unwrap();
    check(&n, RunEvent::WaveSucceeded);
    assert_eq!(
        n.subject,
        "[drplan] DRILL shop: wave app succeeded (7/8 launched, 1 optional failed)"
    );
    assert_eq!(attribute(&n, "severity"), "warning");
    assert!(n.body.contains("FAILED OPTIONAL SERVERS (1)"));
    assert!(n.body.contains("app-007 (s-00000000000000007), optional"));
}

#[test]
fn wave_failed_names_the_servers_and_their_errors_capped() {
    let mut req = request(RunEvent::WaveFailed, Mode::Recovery);
    req.wave = Some(wave("app", 2, 30));
    let mut failed_poll = poll(LaunchState::Failed, 5, 25);
    failed_poll.reason = Some("wave \"app\": app-001 failed to launch".into());
    req.poll = Some(failed_poll);
    req.error = Some(StepError {
            error: Some("drplan.WaveFailed".into()),
            cause: Some(
                json!({"errorType": "drplan.WaveFailed", "errorMessage": "wave \"app\": app-001 failed to launch: LAUNCH_FAILED (and 24 more critical)"})
                    .to_string(),
            ),
        });
    assert!(req.needs_wave_launch());
    let records = StoredRecords {
        report: None,
        wave_launch: Some(WaveLaunchOutcome {
            progress: WaveProgress {
                servers: (1..=25).map(|n| failed_server(n, false)).collect(),
            },
            job_ids: vec!["drsjob-0123".into()],
        }),
    };
    let n = compose(&req, &records, now()).unwrap();
    check(&n, RunEvent::WaveFailed);
    assert_eq!(
        n.subject,
        "[drplan] RECOVERY shop: wave app FAILED (25 servers)"
    );
    assert_eq!(attribute(&n, "severity"), "critical");
    assert_eq!(attribute(&n, "mode"), "recovery");
    let body = &n.body;
    assert!(body.contains("FAILED SERVERS (25)"), "{body}");
    assert!(body.contains(
        "  - app-001 (s-00000000000000001): LAUNCH_FAILED: InsufficientInstanceCapacity for app-001"
    ));
    assert!(body.contains("app-020"));
    assert!(!body.contains("app-021"));
    assert!(body.contains("  ... and 5 more"));
    // The Lambda envelope is unwrapped.
    assert!(
        body.contains("ERROR\n  drplan.WaveFailed\n  wave \"app\": app-001"),
        "{body}"
    );
    assert!(!body.contains("errorMessage"));
    assert!(body.contains("drplan status shop-drill-1"));
    assert!(body.contains("drplan report shop-drill-1"));
    assert!(body.contains("aws drs describe-job-log-items --job-id drsjob-0123"));
    assert!(body.contains("DNS will not be changed"));
}

#[test]
fn wave_failed_without_a_launch_record_still_says_enough() {
    let mut req = request(RunEvent::WaveFailed, Mode::Drill);
    req.wave = Some(wave("db", 0, 2));
    req.poll = Some(poll(LaunchState::Failed, 0, 2));
    let n = compose(&req, &StoredRecords::default(), now()).unwrap();
    check(&n, RunEvent::WaveFailed);
    assert_eq!(n.subject, "[drplan] DRILL shop: wave db FAILED (2 servers)");
    assert!(n.body.contains("launch record is not in the bucket"));
}

#[test]
fn a_wave_that_launched_but_failed_later_points_at_the_health_gate() {
    let mut req = request(RunEvent::WaveFailed, Mode::Drill);
    req.wave = Some(wave("app", 2, 1));
    let mut launched = failed_server(1, false);
    launched.state = ServerState::Launched;
    launched.error = None;
    let records = StoredRecords {
        report: None,
        wave_launch: Some(WaveLaunchOutcome {
            progress: WaveProgress {
                servers: vec![launched],
            },
            job_ids: vec!["drsjob-1".into()],
        }),
    };
    let n = compose(&req, &records, now()).unwrap();
    check(&n, RunEvent::WaveFailed);
    assert_eq!(n.subject, "[drplan] DRILL shop: wave app FAILED");
    assert!(n.body.contains("Every server of the wave launched"));
    assert!(n.body.contains("health gate"));
    assert!(!n.body.contains("EC2 service quotas"));
}

#[test]
fn wave_events_need_a_wave() {
    let req = request(RunEvent::WaveFailed, Mode::Drill);
    assert_eq!(
        compose(&req, &StoredRecords::default(), now()),
        Err(NotifyError::MissingField {
            event: RunEvent::WaveFailed,
            field: "wave"
        })
    );
}

#[test]
fn dns_cut_over_lists_the_records_and_the_rollback() {
    let mut req = request(RunEvent::DnsCutOver, Mode::Recovery);
    req.dns = Some(DnsCutoverSummary {
        change_id: Some("C123".into()),
        records: vec![DnsRecordChange {
            name: "shop.example.com".into(),
            record_type: Some("A".into()),
            values: vec!["10.0.1.5".into(), "10.0.1.6".into()],
            previous_values: vec!["203.0.113.10".into()],
        }],
    });
    let n = compose(&req, &StoredRecords::default(), now()).unwrap();
    check(&n, RunEvent::DnsCutOver);
    assert_eq!(n.subject, "[drplan] RECOVERY shop: DNS cut over (1 record)");
    assert!(
        n.body
            .contains("shop.example.com A: 10.0.1.5, 10.0.1.6 (was 203.0.113.10)")
    );
    assert!(n.body.contains("drplan rollback-dns shop-drill-1"));
}

fn report(status: &str, rto: Option<RtoResult>) -> Report {
    Report {
        execution_id: ARN.into(),
        execution_name: "shop-drill-1".into(),
        plan: "shop".into(),
        mode: Some(Mode::Drill),
        status: status.into(),
        started_at: at("2026-11-28T03:00:00Z"),
        finished_at: at("2026-11-28T03:41:05Z"),
        error: None,
        rto,
        waves: vec![
            WaveReport {
                name: "database".into(),
                state: "SUCCEEDED".into(),
                finished_at: Some(at("2026-11-28T03:20:00Z")),
                healthy_at: None,
                launched: 3,
                failed: 0,
                health_gate: None,
                targets: None,
                servers: Vec::new(),
                timing: Default::default(),
            },
            WaveReport {
                name: "app".into(),
                state: if status == "FAILED" {
                    "FAILED".into()
                } else {
                    "SUCCEEDED".into()
                },
                finished_at: Some(at("2026-11-28T03:40:00Z")),
                healthy_at: None,
                launched: 6,
                failed: 2,
                health_gate: None,
                targets: None,
                servers: vec![ServerReport {
                    source_server_id: "s-1".into(),
                    hostname: Some("app-001".into()),
                    optional: false,
                    state: ServerState::Failed,
                    ec2_instance_id: None,
                    subnet_id: None,
                    error: Some("LAUNCH_FAILED: subnet\nis full".into()),
                    health: None,
                    phases: Vec::new(),
                    carried_from: None,
                }],
                timing: Default::default(),
            },
        ],
        drill_instances_terminated: None,
        dns: None,
        isolation: None,
        cleared: None,
        readiness: None,
        resumed: None,
        skipped: Vec::new(),
        left_out: Vec::new(),
        failback: None,
    }
}

#[test]
fn succeeded_summarises_the_report_with_the_rto_verdict() {
    let mut req = request(RunEvent::Succeeded, Mode::Drill);
    req.report = Some(ReportLocation {
        status: Some("SUCCEEDED".into()),
        json_key: Some("reports/shop/shop-drill-1.json".into()),
        markdown_key: Some("reports/shop/shop-drill-1.md".into()),
        rto_met: Some(false),
    });
    assert_eq!(req.report_key(), Some("reports/shop/shop-drill-1.json"));
    let rto = RtoResult::measure(
        30,
        at("2026-11-28T03:00:00Z"),
        at("2026-11-28T03:40:00Z"),
        "the last wave recovered",
    );
    let records = StoredRecords {
        report: Some(report("SUCCEEDED", Some(rto))),
        wave_launch: None,
    };
    let n = compose(&req, &records, now()).unwrap();
    check(&n, RunEvent::Succeeded);
    assert_eq!(
        n.subject,
        "[drplan] DRILL shop: SUCCEEDED, RTO MISS (40m 00s of 30 min)"
    );
    assert_eq!(attribute(&n, "severity"), "warning");
    assert!(n.body.contains(
            "RTO: MISS: 40m 00s measured (start to the last wave recovered) against a target of 30 min."
        ), "{}", n.body);
    assert!(
        n.body
            .contains("  database  SUCCEEDED     3 launched, 0 failed"),
        "{}",
        n.body
    );
    assert!(n.body.contains("Run time: 41m 05s"));
    assert!(n.body.contains("drplan report shop-drill-1"));
}

#[test]
fn failed_before_discovery_names_the_plan_from_the_input() {
    let mut req = request(RunEvent::Failed, Mode::Drill);
    req.run = None;
    req.input = Some(json!({"plan": "shop", "mode": "recovery"}));
    req.error = Some(StepError {
            error: Some("drplan.InvalidPlan".into()),
            cause: Some(
                json!({"errorType": "drplan.InvalidPlan", "errorMessage": "the plan is not valid (2 problems):\nwaves[1].depends_on[0]: unknown wave \"ap\"\nwaves[2]: cycle"})
                    .to_string(),
            ),
        });
    let n = compose(&req, &StoredRecords::default(), now()).unwrap();
    check(&n, RunEvent::Failed);
    assert_eq!(
        n.subject,
        "[drplan] RECOVERY shop: FAILED: the plan is not valid (2 problems):"
    );
    assert_eq!(attribute(&n, "severity"), "critical");
    assert!(
        n.body
            .contains("  waves[1].depends_on[0]: unknown wave \"ap\"\n")
    );
    assert!(n.body.contains("drplan validate"));
}

#[test]
fn failed_with_a_report_lists_the_failed_servers() {
    let mut req = request(RunEvent::Failed, Mode::Drill);
    req.error = Some(StepError {
            error: Some("States.TaskFailed".into()),
            cause: Some(
                json!({"errorType": "drplan.WaveFailed", "errorMessage": "wave \"app\": app-001 failed to launch: LAUNCH_FAILED: the subnet of the drill has no free addresses left in it for any instance at all, which is long"})
                    .to_string(),
            ),
        });
    req.report = Some(ReportLocation {
        json_key: Some("reports/shop/shop-drill-1.json".into()),
        ..ReportLocation::default()
    });
    let mut failed = report("FAILED", None);
    failed.error = Some(RunError {
        error: "drplan.WaveFailed".into(),
        cause: "...".into(),
    });
    let records = StoredRecords {
        report: Some(failed),
        wave_launch: None,
    };
    let n = compose(&req, &records, now()).unwrap();
    check(&n, RunEvent::Failed);
    assert!(n.subject.ends_with("..."), "{}", n.subject);
    assert!(
        n.subject
            .starts_with("[drplan] DRILL shop: FAILED: wave \"app\": app-001")
    );
    // States.TaskFailed says less than the function's own error type.
    assert!(
        n.body.contains("ERROR\n  drplan.WaveFailed\n"),
        "{}",
        n.body
    );
    assert!(n.body.contains("FAILED SERVERS (1)"));
    assert!(
        n.body
            .contains("  - app-001 (s-1), wave app: LAUNCH_FAILED: subnet is full")
    );
    assert!(n.body.contains("RTO: not measured"));
    assert!(n.body.contains("the launch settings") || n.body.contains("launch settings"));
}

#[test]
fn drill_cleaned_up() {
    let mut req = request(RunEvent::DrillCleanedUp, Mode::Drill);
    req.cleanup = Some(CleanupSummary { terminated: 15 });
    let n = compose(&req, &StoredRecords::default(), now()).unwrap();
    check(&n, RunEvent::DrillCleanedUp);
    assert_eq!(
        n.subject,
        "[drplan] DRILL shop: drill cleaned up (15 instances terminated)"
    );
    assert_eq!(attribute(&n, "severity"), "info");
}

fn paused(request_text: Option<&str>) -> NotificationRequest {
    let mut req = request(RunEvent::Paused, Mode::Recovery);
    req.run.as_mut().unwrap().deadline = Some(at("2026-11-28T05:00:00Z"));
    req.task_token = Some("AQCE+pause/token".into());
    req.pause = Some(PauseWait {
        layer: 1,
        waves: vec![wave("cache", 1, 2), wave("app", 2, 8)],
        request: request_text.map(str::to_owned),
    });
    req
}

#[test]
fn paused_says_who_why_how_to_continue_and_that_the_time_limit_counts() {
    let asked = PauseRequest {
        by: "alice".into(),
        reason: Some("database team checks replication\nfirst".into()),
        at: at("2026-11-28T03:10:00Z"),
    };
    let text = serde_json::to_string(&asked).unwrap();
    let req = paused(Some(&text));
    let n = compose(&req, &StoredRecords::default(), now()).unwrap();
    check(&n, RunEvent::Paused);
    assert_eq!(
        n.subject,
        "[drplan] RECOVERY shop: PAUSED before stage 2 by alice"
    );
    assert_eq!(attribute(&n, "severity"), "warning");
    for expected in [
        "is PAUSED: nothing more launches until someone continues it",
        "holds before stage 2: cache (2 servers), app (8 servers)",
        "Paused by:  alice",
        "Asked at:   2026-11-28 03:10:00 UTC",
        "Reason:     database team checks replication first",
        "TIME LIMIT KEEPS COUNTING",
        "it ends at 2026-11-28 05:00:00 UTC (in 1h 47m 30s)",
        "drplan continue shop-drill-1\n",
        "aws stepfunctions send-task-success --task-token 'AQCE+pause/token' --task-output '{\"continued\": true}'",
        "drplan status shop-drill-1",
    ] {
        assert!(n.body.contains(expected), "{expected}: {}", n.body);
    }
}

#[test]
fn a_pause_whose_request_is_not_drplans_still_holds_and_says_who_is_unknown() {
    let n = compose(
        &paused(Some("stop please")),
        &StoredRecords::default(),
        now(),
    )
    .unwrap();
    assert_eq!(n.subject, "[drplan] RECOVERY shop: PAUSED before stage 2");
    assert!(n.body.contains("Who paused it is unknown"), "{}", n.body);
    let mut late = paused(None);
    late.run.as_mut().unwrap().deadline = Some(at("2026-11-28T03:00:00Z"));
    let n = compose(&late, &StoredRecords::default(), now()).unwrap();
    assert!(n.body.contains("(already passed)"), "{}", n.body);
    let mut no_token = paused(None);
    no_token.task_token = None;
    assert!(compose(&no_token, &StoredRecords::default(), now()).is_err());
}

#[test]
fn the_contract_parses_and_unknown_events_are_named() {
    let input = json!({
        "event": "WAVE_FAILED",
        "execution_id": ARN,
        "execution_name": "shop-drill-1",
        "run": serde_json::to_value(run(Mode::Drill)).unwrap(),
        "wave": {"index": 2, "name": "app", "servers": 8},
        "poll": serde_json::to_value(poll(LaunchState::Failed, 6, 2)).unwrap(),
        "error": {"Error": "drplan.WaveFailed", "Cause": "plain text"},
        "something_else": 1
    });
    let req: NotificationRequest = serde_json::from_value(input).unwrap();
    assert_eq!(req.event, RunEvent::WaveFailed);
    assert_eq!(
        req.error.as_ref().map(StepError::describe),
        Some(("drplan.WaveFailed".into(), "plain text".into()))
    );
    let all = [
        "STARTED",
        "APPROVAL_NEEDED",
        "WAVE_STARTED",
        "WAVE_SUCCEEDED",
        "WAVE_FAILED",
        "DNS_CUT_OVER",
        "SUCCEEDED",
        "FAILED",
        "DRILL_CLEANED_UP",
        "PAUSED",
    ];
    for name in all {
        let event: RunEvent = serde_json::from_value(json!(name)).unwrap();
        assert_eq!(event.as_str(), name);
    }
    let error = serde_json::from_value::<NotificationRequest>(json!({
        "event": "EXPLODED", "execution_id": ARN, "execution_name": "x"
    }))
    .unwrap_err()
    .to_string();
    assert!(error.contains("unknown variant `EXPLODED`"), "{error}");
    assert!(error.contains("DRILL_CLEANED_UP"), "{error}");
}

#[test]
fn subjects_stay_one_short_line() {
    let long = format!("[drplan] {}\nsecond line\tand\u{7} more", "x".repeat(200));
    let subject = subject_line(&long);
    assert_eq!(subject.chars().count(), SUBJECT_MAX_CHARS);
    assert!(!subject.chars().any(char::is_control));
    let mut req = request(RunEvent::WaveFailed, Mode::Recovery);
    req.run.as_mut().unwrap().plan = "p".repeat(80);
    req.wave = Some(wave(&"w".repeat(60), 0, 2));
    let n = compose(&req, &StoredRecords::default(), now()).unwrap();
    assert!(n.subject.chars().count() < 100);
}

#[test]
fn links_only_for_execution_arns_in_the_aws_partition() {
    assert_eq!(execution_region(ARN), Some("eu-west-1"));
    assert_eq!(
        execution_region("arn:aws-cn:states:cn-north-1:1:execution:m:n"),
        None
    );
    assert_eq!(execution_region("not-an-arn"), None);
    let mut req = request(RunEvent::Started, Mode::Drill);
    req.execution_id = "local-execution".into();
    let n = compose(&req, &StoredRecords::default(), now()).unwrap();
    assert!(!n.body.contains("console.aws.amazon.com"));
}

#[test]
fn durations_read_naturally() {
    assert_eq!(duration_text(45), "45s");
    assert_eq!(duration_text(750), "12m 30s");
    assert_eq!(duration_text(3723), "1h 02m 03s");
    assert_eq!(duration_text(-5), "0s");
}
