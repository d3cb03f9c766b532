//! drplan when things are already on fire, end to end on the local cloud: a function that
//! crashes after doing its work, a fleet in a region outage (every server stalled, far
//! behind its RPO), and input that could not fit a run's limits.

use crate::common::{cloud_with, fast_timing, largest_payload};
use aws_sdk_sfn::types::{ExecutionStatus, HistoryEvent};
use drplan_local::gateway::LAMBDA_FAULTS_PATH;
use hyper::Method;
use serde_json::{Value, json};

/// `count` servers of plan `plan`, one wave, replication in `state` and `lag_seconds` behind.
fn fleet(plan: &str, count: usize, state: &str, lag_seconds: u64) -> String {
    format!(
        "region: us-east-1\nsource_servers:\n  - count: {count}\n    hostname: \"{plan}-{{i:03}}\"\n    tags: {{ \"dr:plan\": \"{plan}\", \"dr:wave\": \"1\" }}\n    replication: {{ state: {state}, lag_seconds: {lag_seconds} }}\n"
    )
}

/// The error names of the execution's failed Lambda tasks, in order.
fn lambda_failures(history: &[HistoryEvent]) -> Vec<String> {
    history
        .iter()
        .filter_map(|event| {
            event
                .lambda_function_failed_event_details()
                .and_then(|d| d.error())
                .or_else(|| event.task_failed_event_details().and_then(|d| d.error()))
                .map(str::to_owned)
        })
        .collect()
}

/// The error message in a Lambda error's cause (`{"errorType": ..., "errorMessage": ...}`).
fn message_of(cause: Option<String>) -> String {
    let cause = cause.unwrap_or_default();
    serde_json::from_str::<Value>(&cause)
        .ok()
        .and_then(|v| v["errorMessage"].as_str().map(str::to_owned))
        .unwrap_or(cause)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_launch_that_crashes_after_starting_its_jobs_is_retried_without_a_second_launch() {
    let Some(cloud) = cloud_with(&fleet("crash", 3, "CONTINUOUS", 0)).await else {
        return;
    };
    // launch-wave runs (its StartRecovery goes through) and then "times out": Step
    // Functions sees Sandbox.Timedout, as when a Lambda dies before it answers.
    cloud
        .control(
            Method::POST,
            LAMBDA_FAULTS_PATH,
            Some(json!({"function": "launch-wave", "error_type": "Sandbox.Timedout"})),
        )
        .await;
    let plan = json!({"name": "crash", "rto_minutes": 60, "selector": {"dr:plan": "crash"}});
    let outcome = cloud.run(plan, "recovery").await;
    assert_eq!(
        outcome.status,
        ExecutionStatus::Succeeded,
        "{:?}: {:?}",
        outcome.error,
        outcome.cause
    );
    let history = cloud.history(&cloud.execution_arn(&outcome.name)).await;
    assert_eq!(lambda_failures(&history), ["Sandbox.Timedout"]);
    // The retry found the jobs the first attempt started: each server launched once.
    let calls = cloud.start_recovery_calls().await;
    let mut launched: Vec<String> = calls.into_iter().flatten().collect();
    assert_eq!(launched.len(), 3, "{launched:?}");
    launched.dedup();
    assert_eq!(launched.len(), 3);
    let report = cloud.report("crash", &outcome.name).await;
    assert_eq!(report["waves"][0]["launched"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_sized_fleet_keeps_the_state_small_and_every_problem_in_the_report() {
    const SERVERS: usize = 60;
    // Two days behind an RPO of 5 minutes, and stalled: one blocking problem per server
    // for a drill, two warnings per server for a recovery.
    let Some(cloud) = cloud_with(&fleet("outage", SERVERS, "STALLED", 172_800)).await else {
        return;
    };
    let plan = json!({"name": "outage", "rto_minutes": 60, "rpo_minutes": 5,
                      "selector": {"dr:plan": "outage"}});

    let drill = cloud.run(plan.clone(), "drill").await;
    assert_eq!(drill.status, ExecutionStatus::Failed);
    let cause = message_of(drill.cause.clone());
    assert!(
        cause.contains(&format!("not ready ({} problems)", SERVERS + 1)),
        "{cause}"
    );
    assert!(
        cause.contains(&format!("readiness: all {SERVERS} problems are in s3://")),
        "{cause}"
    );
    assert!(cause.len() < 8 * 1024, "{} bytes of cause", cause.len());
    let report = cloud.report("outage", &drill.name).await;
    assert_eq!(
        report["readiness"]["blocking"].as_array().map(Vec::len),
        Some(SERVERS),
        "{}",
        report["readiness"]
    );
    assert!(cloud.start_recovery_calls().await.is_empty());

    let recovery = cloud.run(plan, "recovery").await;
    assert_eq!(
        recovery.status,
        ExecutionStatus::Succeeded,
        "{:?}: {:?}",
        recovery.error,
        recovery.cause
    );
    let report = cloud.report("outage", &recovery.name).await;
    let warnings = report["readiness"]["warnings"]
        .as_array()
        .map_or(0, Vec::len);
    assert_eq!(warnings, 2 * SERVERS);
    let history = cloud.history(&cloud.execution_arn(&recovery.name)).await;
    let discovered: Value = history
        .iter()
        .filter_map(|e| e.state_exited_event_details())
        .find(|d| d.name() == "Discover")
        .and_then(|d| d.output())
        .and_then(|o| serde_json::from_str(o).ok())
        .expect("Discover's output");
    assert_eq!(discovered["warning_count"], 2 * SERVERS);
    assert_eq!(discovered["warnings"].as_array().map(Vec::len), Some(10));
    let (largest, state) = largest_payload(&history);
    assert!(largest < 16 * 1024, "{state} carried {largest} bytes");
    let started = cloud
        .notifications()
        .await
        .into_iter()
        .find(|(subject, _, _)| subject.contains("RECOVERY outage: started"))
        .expect("the started e-mail");
    assert!(
        started
            .1
            .contains(&format!("READINESS WARNINGS ({})", 2 * SERVERS)),
        "{}",
        started.1
    );
    assert!(
        started
            .1
            .contains("more: every warning is in the run's report (reports/outage/"),
        "{}",
        started.1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_plans_and_timing_that_cannot_fit_are_refused_before_anything_launches() {
    let Some(cloud) = cloud_with(&fleet("bounded", 2, "CONTINUOUS", 0)).await else {
        return;
    };
    // Over 1 MiB: refused by its size, not read.
    let huge = json!({"name": "huge", "rto_minutes": 60, "selector": {"dr:plan": "bounded"},
                      "padding": "x".repeat(1024 * 1024)});
    cloud.store_plan_value("huge", &huge).await;
    let (name, arn) = cloud.start(json!("huge"), "drill").await;
    let outcome = cloud.wait(name, &arn).await;
    assert_eq!(outcome.error.as_deref(), Some("drplan.InvalidPlan"));
    let cause = message_of(outcome.cause);
    assert!(
        cause.contains("a plan may be at most 1048576 bytes (1 MiB), so it was not read"),
        "{cause}"
    );

    // Polls of no seconds: the floor names the field.
    let plan = json!({"name": "bounded", "rto_minutes": 60, "selector": {"dr:plan": "bounded"}});
    let mut timing = fast_timing();
    timing["poll_initial_seconds"] = json!(0);
    let (name, arn) = cloud
        .start_with(json!({"plan": plan, "mode": "drill", "timing": timing}))
        .await;
    let outcome = cloud.wait(name, &arn).await;
    let cause = message_of(outcome.cause);
    assert!(
        cause.contains("timing.poll_initial_seconds: is 0; must be at least 1"),
        "{cause}"
    );

    // Polling every second for a 90-minute launch could write far more history than an
    // execution may have: refused with the arithmetic.
    let timing = json!({"poll_initial_seconds": 1, "poll_max_seconds": 1,
                        "poll_backoff_rate": 1.0, "launch_timeout_minutes": 90,
                        "health_interval_seconds": 1});
    let (name, arn) = cloud
        .start_with(json!({"plan": plan, "mode": "drill", "timing": timing}))
        .await;
    let outcome = cloud.wait(name, &arn).await;
    assert_eq!(outcome.error.as_deref(), Some("drplan.InvalidPlan"));
    let cause = message_of(outcome.cause);
    assert!(
        cause.contains("Step Functions history events, over the limit of 25000")
            && cause.contains("1 waves × (60 + 5401 launch polls × 13)"),
        "{cause}"
    );
    assert!(cloud.start_recovery_calls().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drill_subnet_without_an_address_for_every_instance_is_refused_before_any_launch() {
    let Some(cloud) = cloud_with(&crate::common::fleet_file("examples/fleet.yaml")).await else {
        return;
    };
    // An isolated /28 (11 addresses) for a 15-server drill, in the seeded VPC (10.N.0.0/16).
    let vpc_cidr = cloud
        .ec2
        .describe_vpcs()
        .vpc_ids(&cloud.seeded.vpc_id)
        .send()
        .await
        .expect("DescribeVpcs")
        .vpcs()
        .first()
        .and_then(|v| v.cidr_block())
        .expect("the VPC's CIDR")
        .to_owned();
    let first_two: Vec<&str> = vpc_cidr.split('.').take(2).collect();
    let subnet = cloud
        .ec2
        .create_subnet()
        .vpc_id(&cloud.seeded.vpc_id)
        .cidr_block(format!("{}.48.0/28", first_two.join(".")))
        .send()
        .await
        .expect("CreateSubnet")
        .subnet()
        .and_then(|s| s.subnet_id())
        .expect("a subnet")
        .to_owned();
    cloud
        .ec2
        .associate_route_table()
        .route_table_id(&cloud.seeded.drill_route_table_id)
        .subnet_id(&subnet)
        .send()
        .await
        .expect("AssociateRouteTable");
    let mut plan = crate::common::plan_file("examples/shop.yaml");
    plan["drill"] = json!({"subnet_id": subnet,
        "security_group_ids": [cloud.seeded.drill_security_group_id]});
    let (name, arn) = cloud.start(plan, "drill").await;
    let outcome = cloud.wait(name, &arn).await;
    assert_eq!(outcome.status, ExecutionStatus::Failed);
    assert_eq!(outcome.error.as_deref(), Some("drplan.NotReady"));
    let cause = outcome.cause.unwrap_or_default();
    assert!(
        cause.contains(&format!(
            "subnet {subnet} has 11 free addresses, but this run launches 15 instances into it: 4 would fail to launch"
        )),
        "{cause}"
    );
    assert!(
        cloud.start_recovery_calls().await.is_empty(),
        "nothing launched"
    );
}
