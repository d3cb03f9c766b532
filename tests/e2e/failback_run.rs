//! `mode: failback` end to end on the local cloud: the real state machine, functions and
//! CLI bring a recovered plan home to its data-centre machines, wave by wave, seen from
//! outside through the SDK: refused (and no FAILBACK job) while there is nothing to bring
//! home or a Failback Client has not connected; after `drplan local failback-client
//! --all`, FAILBACK jobs cover every recovery instance, DNS answers what it answered
//! before the recovery, and the recovery instances are gone. A failback launch that
//! fails for a critical server stops the later waves and keeps every recovery instance.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use aws_sdk_drs::types::{DescribeJobsRequestFilters, InitiatedBy, RecoveryInstance};
use aws_sdk_sfn::types::ExecutionStatus;
use serde_json::{Value, json};

use crate::common::{Cloud, Outcome, cloud_with, report_wave};

const SHOP: (&str, &str) = ("shop.example.com.", "A");

/// Databases, then web servers; all outside AWS (Failback Client). The seeded zone's
/// shop.example.com answers 203.0.113.10 before any recovery.
const FLEET: &str = r#"
region: us-east-1
source_servers:
  - count: 2
    hostname: "db-{i:02}"
    tags: { "dr:plan": "shop", "dr:wave": "db" }
    replication: { state: CONTINUOUS, lag_seconds: 0 }
  - count: 2
    hostname: "web-{i:02}"
    tags: { "dr:plan": "shop", "dr:wave": "web" }
    replication: { state: CONTINUOUS, lag_seconds: 0 }
network:
  public_ips: true
load_balancers:
  - name: shop-web
    subnet: recovery
    target_groups:
      - { name: shop-web, port: 443, protocol: HTTPS }
hosted_zones:
  - name: example.com
    records:
      - { name: shop.example.com, type: A, ttl: 60, values: [203.0.113.10] }
notifications:
  topic: drplan-notifications
  queue: drplan-notifications
"#;

/// The plan: its health checks probe the recovered instances in a recovery, and the
/// machines at home (at the source addresses DRS reports) in a failback.
fn plan() -> Value {
    json!({
        "name": "shop",
        "rto_minutes": 30,
        "selector": {"dr:plan": "shop"},
        "waves": [
            {"name": "database", "selector": {"dr:wave": "db"},
             "health": {"checks": ["ec2-status", "tcp:5432"], "timeout_minutes": 5}},
            {"name": "web", "selector": {"dr:wave": "web"}, "depends_on": ["database"],
             "health": {"checks": ["ec2-status", "https:443/"], "timeout_minutes": 5,
                        "probe_address": "public-ip"},
             "targets": [{"target_group_arn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/shop-web/0123456789abcdef", "port": 443}]}
        ],
        "dns": {"zone_name": "example.com",
                "records": [{"name": "shop.example.com", "type": "A", "ttl": 60, "from_wave": "web"}]},
        "failback": {"keep_recovery_minutes": 0}
    })
}

fn key((name, kind): (&str, &str)) -> (String, String) {
    (name.to_owned(), kind.to_owned())
}

fn assert_succeeded(outcome: &Outcome) {
    assert_eq!(
        outcome.status,
        ExecutionStatus::Succeeded,
        "{}: {:?}: {:?}",
        outcome.name,
        outcome.error,
        outcome.cause
    );
}

/// The jobs DRS ran for failback launches, as DescribeJobs reports them.
async fn failback_jobs(cloud: &Cloud) -> Vec<aws_sdk_drs::types::Job> {
    cloud
        .drs
        .describe_jobs()
        .filters(DescribeJobsRequestFilters::builder().build())
        .send()
        .await
        .expect("DescribeJobs")
        .items()
        .iter()
        .filter(|job| job.initiated_by() == Some(&InitiatedBy::Failback))
        .cloned()
        .collect()
}

async fn recovery_instances(cloud: &Cloud) -> Vec<RecoveryInstance> {
    cloud
        .drs
        .describe_recovery_instances()
        .send()
        .await
        .expect("DescribeRecoveryInstances")
        .items()
        .to_vec()
}

fn instance_ids(instances: &[RecoveryInstance]) -> BTreeSet<String> {
    instances
        .iter()
        .filter_map(|i| i.recovery_instance_id().map(str::to_owned))
        .collect()
}

/// The targets registered in the recovery's web target group.
async fn web_targets(cloud: &Cloud) -> Vec<String> {
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(
        &drplan_local::stack::sdk_config(cloud.cloud.endpoint_url(), cloud.cloud.region()).await,
    );
    elb.describe_target_health()
        .target_group_arn(cloud.target_group_arn("shop-web"))
        .send()
        .await
        .expect("DescribeTargetHealth")
        .target_health_descriptions()
        .iter()
        .filter_map(|d| d.target().and_then(|t| t.id()).map(str::to_owned))
        .collect()
}

/// A recovery of the plan, DNS cut over to the recovered web servers, which joined the
/// web target group.
async fn recover(cloud: &Cloud) {
    let outcome = cloud.run(plan(), "recovery").await;
    assert_succeeded(&outcome);
    assert_eq!(
        web_targets(cloud).await.len(),
        2,
        "the recovery registered the web servers"
    );
    let records = cloud.records("example.com").await;
    assert_ne!(
        records[&key(SHOP)],
        ["203.0.113.10"],
        "the recovery cut DNS over"
    );
    assert_eq!(recovery_instances(cloud).await.len(), 4);
}

/// `drplan local failback-client WHICH` (`--all`, or a hostname), then until every
/// recovery instance is in sync (or home already).
async fn boot_failback_clients(cloud: &Cloud, which: &str) {
    let output = cloud.drplan(&[
        "local",
        "failback-client",
        which,
        "--endpoint-url",
        cloud.cloud.endpoint_url(),
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let started = Instant::now();
    loop {
        let states: Vec<String> = recovery_instances(cloud)
            .await
            .iter()
            .map(|i| {
                i.failback()
                    .and_then(|f| f.state())
                    .map_or("NONE".to_owned(), |s| s.as_str().to_owned())
            })
            .collect();
        if states
            .iter()
            .all(|s| s == "FAILBACK_READY_FOR_LAUNCH" || s == "FAILBACK_COMPLETED")
        {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "never in sync: {states:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failback_brings_the_plan_home_puts_dns_back_and_terminates_the_recovery() {
    let Some(cloud) = cloud_with(FLEET).await else {
        return;
    };
    let before = cloud.records("example.com").await;

    // Nothing recovered: refused, naming why, and nothing launched.
    let refused = cloud.run(plan(), "failback").await;
    assert_eq!(refused.status, ExecutionStatus::Failed);
    assert_eq!(refused.error.as_deref(), Some("drplan.NotReady"));
    let cause = refused.cause.unwrap_or_default();
    assert!(cause.contains("has no live recovery"), "{cause}");
    assert!(failback_jobs(&cloud).await.is_empty());

    recover(&cloud).await;
    let recovered = recovery_instances(&cloud).await;
    let recovered_ids = instance_ids(&recovered);

    // Recovered, but no Failback Client has connected: refused per server.
    let refused = cloud.run(plan(), "failback").await;
    assert_eq!(refused.error.as_deref(), Some("drplan.NotReady"));
    let cause = refused.cause.unwrap_or_default();
    assert!(
        cause.contains("Failback Client has not connected") && cause.contains("db-01"),
        "{cause}"
    );
    assert!(failback_jobs(&cloud).await.is_empty());

    boot_failback_clients(&cloud, "--all").await;
    // As a person starts it: the stored plan, `drplan start --mode failback --wait`.
    cloud.store_plan_value("shop", &plan()).await;
    let name = format!("shop-failback-{}", std::process::id());
    let timing = crate::common::fast_timing().to_string();
    let started = cloud.drplan(&[
        "start", "shop", "--mode", "failback", "--wait", "--name", &name, "--timing", &timing,
    ]);
    let printed = String::from_utf8_lossy(&started.stdout).into_owned();
    assert!(
        started.status.success(),
        "{printed}\n{}",
        String::from_utf8_lossy(&started.stderr)
    );
    assert!(printed.contains("SUCCEEDED"), "{printed}");
    let outcome = cloud.wait(name.clone(), &cloud.execution_arn(&name)).await;
    assert_succeeded(&outcome);

    // FAILBACK jobs cover every recovery instance, the databases' before the web's.
    let jobs = failback_jobs(&cloud).await;
    let in_jobs: BTreeSet<String> = jobs
        .iter()
        .flat_map(|job| job.participating_servers())
        .filter_map(|p| p.recovery_instance_id().map(str::to_owned))
        .collect();
    assert_eq!(in_jobs, recovered_ids);
    assert!(
        jobs.iter()
            .all(|job| job.tags().and_then(|t| t.get("drplan:execution")) == Some(&outcome.name)),
        "every FAILBACK job is tagged with the failback's execution"
    );

    // DNS answers what it did before the recovery; the failback kept the recovery's
    // values for its own rollback.
    assert_eq!(cloud.records("example.com").await, before);
    let report = cloud.report("shop", &outcome.name).await;
    assert_eq!(report["mode"], "failback");
    assert_eq!(
        report["dns"]["changes"][0]["new"]["values"],
        json!(["203.0.113.10"])
    );
    assert!(report["dns"]["changes"][0]["previous"]["values"].is_array());
    // Each wave passed its health gate at the machines' own addresses.
    for wave in ["database", "web"] {
        let reported = report_wave(&report, wave);
        assert_eq!(reported["state"], "SUCCEEDED", "{reported}");
        let gate = reported["health_gate"].as_str().unwrap_or_default();
        assert!(gate.contains("at each source machine's address"), "{gate}");
        assert!(!gate.contains("ec2-status"), "{gate}");
        for server in reported["servers"].as_array().into_iter().flatten() {
            assert_eq!(server["state"], "LAUNCHED", "{server}");
            assert!(
                server["ec2_instance_id"].is_null(),
                "a machine at home has no EC2 instance: {server}"
            );
            let health = server["health"].as_str().unwrap_or_default();
            assert!(health.starts_with("Healthy"), "{server}");
        }
    }

    // Per server: home, its recovery instance terminated, and what is left to do.
    let servers = report["failback"]["servers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(servers.len(), 4, "{}", report["failback"]);
    for server in &servers {
        assert_eq!(server["failed_back"], true, "{server}");
        assert_eq!(server["recovery_instance"], "terminated", "{server}");
        assert!(
            server["to_do"]
                .as_str()
                .unwrap_or_default()
                .contains("AWS Replication Agent"),
            "{server}"
        );
    }

    // Out of the recovery's target group before they went.
    assert!(
        web_targets(&cloud).await.is_empty(),
        "the recovery's web instances stay registered: {:?}",
        web_targets(&cloud).await
    );

    // keep_recovery_minutes: 0: the recovery instances are gone.
    let left = recovery_instances(&cloud).await;
    assert!(
        instance_ids(&left).is_disjoint(&recovered_ids),
        "recovery instances left after the failback: {:?}",
        instance_ids(&left)
    );

    cloud.cloud.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_failback_launch_stops_the_later_waves_and_keeps_the_recovery() {
    let Some(cloud) = cloud_with(FLEET).await else {
        return;
    };
    recover(&cloud).await;
    let recovered_dns = cloud.records("example.com").await;
    let recovered_ids = instance_ids(&recovery_instances(&cloud).await);
    boot_failback_clients(&cloud, "--all").await;
    cloud
        .fault(json!({"kind": "fail_failback_launch", "targets": ["db-01"],
                      "raw_error": "conversion lost the Failback Client"}))
        .await;

    // Polls ten minutes apart: only DRS's failback state change events, through
    // EventBridge and the trigger function, can end the wave's wait sooner.
    let (name, arn) = cloud
        .start_with(json!({
            "plan": plan(), "mode": "failback",
            "timing": {"poll_initial_seconds": 600, "poll_max_seconds": 600,
                       "launch_timeout_minutes": 30, "health_interval_seconds": 1},
        }))
        .await;
    let started = Instant::now();
    let outcome = cloud.wait(name, &arn).await;
    assert!(
        started.elapsed() < Duration::from_secs(600),
        "the failback wave waited out its 600 s poll delay: no failback state change woke it"
    );
    let woken = cloud.history(&arn).await.iter().any(|e| {
        e.task_succeeded_event_details()
            .and_then(|d| d.output())
            .is_some_and(|output| output.contains("woken_by_job"))
    });
    assert!(woken, "a parked failback wave was sent back its token");
    assert_eq!(outcome.status, ExecutionStatus::Failed);
    assert_eq!(outcome.error.as_deref(), Some("drplan.WaveFailed"));
    let cause = outcome.cause.unwrap_or_default();
    assert!(
        cause.contains("conversion lost the Failback Client"),
        "{cause}"
    );

    // Only the database wave launched; the web servers still run in AWS.
    let web_ids: BTreeSet<String> = cloud
        .server_ids()
        .await
        .into_iter()
        .filter(|(hostname, _)| hostname.starts_with("web-"))
        .map(|(_, id)| id)
        .collect();
    let failed_back: BTreeSet<String> = failback_jobs(&cloud)
        .await
        .iter()
        .flat_map(|job| job.participating_servers())
        .filter_map(|p| p.source_server_id().map(str::to_owned))
        .collect();
    assert_eq!(failed_back.len(), 2, "{failed_back:?}");
    assert!(failed_back.is_disjoint(&web_ids));

    // Nothing is cleaned up after a failed failback, and DNS still points at the recovery.
    assert_eq!(
        instance_ids(&recovery_instances(&cloud).await),
        recovered_ids
    );
    assert_eq!(cloud.records("example.com").await, recovered_dns);
    assert_eq!(
        web_targets(&cloud).await.len(),
        2,
        "the recovery's web servers stay in its target group"
    );
    let report = cloud.report("shop", &outcome.name).await;
    let servers = report["failback"]["servers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(servers.len(), 4, "{}", report["failback"]);
    assert!(
        servers.iter().all(|s| s["recovery_instance"] == "kept"),
        "{servers:?}"
    );
    let db_01 = servers
        .iter()
        .find(|s| s["hostname"] == "db-01")
        .expect("db-01 in the report");
    assert_eq!(db_01["failed_back"], false);
    assert!(
        db_01["to_do"]
            .as_str()
            .unwrap_or_default()
            .contains("still runs on recovery instance"),
        "{db_01}"
    );
    // On-call staff were told the failback failed and that the recovery keeps serving.
    let notifications = cloud.notifications().await;
    assert!(
        notifications.iter().any(|(subject, body, _)| {
            subject.contains("FAILBACK")
                && subject.contains("FAILED")
                && body.contains("DNS stays on the recovery")
        }),
        "{:?}",
        notifications.iter().map(|(s, _, _)| s).collect::<Vec<_>>()
    );

    // The person fixes the cause, stops the failed failback and boots db-01's client
    // again. The next failback brings the rest home: db-02 is home already.
    cloud
        .control(hyper::Method::DELETE, "/_drplan/faults", None)
        .await;
    let db_01_instance = db_01["recovery_instance_id"]
        .as_str()
        .expect("its instance");
    cloud
        .drs
        .stop_failback()
        .recovery_instance_id(db_01_instance)
        .send()
        .await
        .expect("StopFailback");
    boot_failback_clients(&cloud, "db-01").await;
    let again = cloud.run(plan(), "failback").await;
    assert_succeeded(&again);
    let launched_again: BTreeSet<String> = failback_jobs(&cloud)
        .await
        .iter()
        .filter(|job| job.tags().and_then(|t| t.get("drplan:execution")) == Some(&again.name))
        .flat_map(|job| job.participating_servers())
        .filter_map(|p| p.source_server_id().map(str::to_owned))
        .collect();
    let ids = cloud.server_ids().await;
    let expected: BTreeSet<String> = ["db-01", "web-01", "web-02"]
        .iter()
        .map(|h| ids[*h].clone())
        .collect();
    assert_eq!(launched_again, expected, "db-02 is not launched again");
    let report = cloud.report("shop", &again.name).await;
    let servers = report["failback"]["servers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        servers
            .iter()
            .all(|s| s["failed_back"] == true && s["recovery_instance"] == "terminated"),
        "{servers:?}"
    );
    assert!(instance_ids(&recovery_instances(&cloud).await).is_disjoint(&recovered_ids));
    assert_ne!(cloud.records("example.com").await, recovered_dns);

    cloud.cloud.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_plane_failback_flips_the_failover_alarm_back_and_its_rollback_flips_it_again() {
    let Some(cloud) = cloud_with(FLEET).await else {
        return;
    };
    // The record's recovery target is known ahead (`values`), so `drplan dns prepare`
    // makes its failover pair: PRIMARY home (203.0.113.10), SECONDARY the recovery.
    let mut plan = plan();
    plan["dns"]["mode"] = json!("data-plane");
    plan["dns"]["records"][0]["values"] = json!(["10.0.2.50"]);
    let file = cloud.cloud.log_dir().join("shop-data-plane.json");
    std::fs::write(&file, plan.to_string()).expect("the plan file");
    let prepared = cloud.drplan(&["dns", "prepare", &file.to_string_lossy()]);
    assert!(
        prepared.status.success(),
        "{}",
        String::from_utf8_lossy(&prepared.stderr)
    );

    // A person approves failbacks (only them: the recovery runs without).
    plan["approval"] = json!({"required_for": ["failback"], "timeout_minutes": 10});
    let recovery = cloud.run(plan.clone(), "recovery").await;
    assert_succeeded(&recovery);
    assert_eq!(crate::dataplane::alarm_state(&cloud).await, "ALARM");
    boot_failback_clients(&cloud, "--all").await;

    let (name, arn) = cloud.start(plan, "failback").await;
    let approved = cloud
        .answer_approval(&["approve", &name, "--by", "sre-on-call"])
        .await;
    assert!(approved.contains("approved by sre-on-call"), "{approved}");
    let outcome = cloud.wait(name, &arn).await;
    assert_succeeded(&outcome);
    assert!(
        cloud.history(&arn).await.iter().any(|e| e
            .state_entered_event_details()
            .is_some_and(|d| d.name() == "WaitForApproval")),
        "the failback waited for its approval"
    );
    // Home: the alarm is OK again, so Route 53 answers the PRIMARY record.
    let report = cloud.report("shop", &outcome.name).await;
    assert_eq!(
        crate::dataplane::alarm_state(&cloud).await,
        "OK",
        "{}",
        report["dns"]
    );
    assert_eq!(report["dns"]["path"], "data plane");
    assert_eq!(report["dns"]["alarm"]["state"], "OK");
    assert_eq!(
        report["dns"]["changes"][0]["new"]["values"],
        json!(["203.0.113.10"])
    );

    // The failback's rollback sends traffic back to the recovery.
    let rolled = cloud.drplan(&["rollback-dns", &outcome.name]);
    let said = String::from_utf8_lossy(&rolled.stdout).into_owned();
    assert!(rolled.status.success(), "{said}");
    assert!(said.contains("SECONDARY records again"), "{said}");
    assert_eq!(crate::dataplane::alarm_state(&cloud).await, "ALARM");

    cloud.cloud.shutdown().await;
}
