//! Runs that cannot hurt production, end to end on the local cloud: drills launch into
//! their isolated subnet through drill versions of the servers' launch templates (and
//! the previous defaults come back, also when a wave fails), a drill subnet that routes
//! beyond its VPC is refused, one run per plan, a recovery takes over from a drill, and
//! nothing replaces a live recovery. Checked from outside, through EC2, DRS and Step
//! Functions as the SDK sees them.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::common::{Cloud, EXECUTION_TIMEOUT, cloud_with, fast_timing, instance_state};
use aws_sdk_sfn::types::ExecutionStatus;
use serde_json::{Value, json};

/// Four servers of the plan `safe` in two waves, and one of another plan.
const FLEET: &str = r#"
region: us-east-1
source_servers:
  - count: 2
    hostname: "db-{i:02}"
    tags: { "dr:plan": "safe", "dr:wave": "db" }
    replication: { state: CONTINUOUS, lag_seconds: 0 }
  - count: 2
    hostname: "app-{i:02}"
    tags: { "dr:plan": "safe", "dr:wave": "app" }
    replication: { state: CONTINUOUS, lag_seconds: 0 }
  - count: 1
    hostname: "other-{i:02}"
    tags: { "dr:plan": "other", "dr:wave": "db" }
    replication: { state: CONTINUOUS, lag_seconds: 0 }
network:
  name: drplan-safety
  vpc_cidr: 10.0.0.0/16
  recovery_subnet_cidr: 10.0.1.0/24
  drill_subnet_cidr: 10.0.2.0/24
notifications:
  topic: drplan-notifications
  queue: drplan-notifications
"#;

fn plan(cloud: &Cloud, drill: Value) -> Value {
    let mut drill = drill;
    if drill.get("subnet_id") == Some(&json!("SEEDED")) {
        drill["subnet_id"] = json!(cloud.seeded.drill_subnet_id);
        drill["security_group_ids"] = json!([cloud.seeded.drill_security_group_id]);
    }
    json!({
        "name": "safe", "rto_minutes": 30, "selector": {"dr:plan": "safe"},
        "waves": [
            {"name": "db", "selector": {"dr:wave": "db"}, "health": {"checks": ["ec2-status"]}},
            {"name": "app", "depends_on": ["db"], "selector": {"dr:wave": "app"},
             "health": {"checks": ["ec2-status"]}}
        ],
        "drill": drill
    })
}

/// Each server's launch template (as DRS names it) and that template's default version.
async fn template_defaults(cloud: &Cloud) -> BTreeMap<String, (String, i64)> {
    let mut defaults = BTreeMap::new();
    for (hostname, id) in cloud.server_ids().await {
        let config = cloud
            .drs
            .get_launch_configuration()
            .source_server_id(&id)
            .send()
            .await
            .expect("GetLaunchConfiguration");
        let template = config
            .ec2_launch_template_id()
            .expect("a template")
            .to_owned();
        let described = cloud
            .ec2
            .describe_launch_templates()
            .launch_template_ids(&template)
            .send()
            .await
            .expect("DescribeLaunchTemplates");
        let version = described.launch_templates()[0]
            .default_version_number()
            .expect("a default version");
        defaults.insert(hostname, (template, version));
    }
    defaults
}

/// The run's instances (by its drplan:execution tag): (hostname, subnet, security
/// groups, state).
async fn instances(cloud: &Cloud, execution: &str) -> Vec<(String, String, Vec<String>, String)> {
    cloud
        .ec2_instances_of(execution)
        .await
        .iter()
        .map(|i| {
            let name = i
                .tags()
                .iter()
                .find(|t| t.key() == Some("Name"))
                .and_then(|t| t.value())
                .unwrap_or_default()
                .to_owned();
            let groups = i
                .security_groups()
                .iter()
                .filter_map(|g| g.group_id().map(str::to_owned))
                .collect();
            (
                name,
                i.subnet_id().unwrap_or_default().to_owned(),
                groups,
                instance_state(i),
            )
        })
        .collect()
}

async fn wait_until<F, Fut>(what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !done().await {
        assert!(
            started.elapsed() < EXECUTION_TIMEOUT,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn status(cloud: &Cloud, arn: &str) -> ExecutionStatus {
    cloud
        .sfn
        .describe_execution()
        .execution_arn(arn)
        .send()
        .await
        .expect("DescribeExecution")
        .status()
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drills_launch_isolated_and_every_launch_template_comes_back() {
    let Some(cloud) = cloud_with(FLEET).await else {
        return;
    };
    let before = template_defaults(&cloud).await;
    let seeded = &cloud.seeded;

    // A drill with a drill subnet: every instance runs there, with the drill's group.
    let outcome = cloud
        .run(plan(&cloud, json!({"subnet_id": "SEEDED"})), "drill")
        .await;
    assert_eq!(
        outcome.status,
        ExecutionStatus::Succeeded,
        "{:?}",
        outcome.cause
    );
    let launched = instances(&cloud, &outcome.name).await;
    assert_eq!(launched.len(), 4, "{launched:?}");
    for (name, subnet, groups, _) in &launched {
        assert_eq!(subnet, &seeded.drill_subnet_id, "{name}");
        assert_eq!(
            groups,
            std::slice::from_ref(&seeded.drill_security_group_id),
            "{name}"
        );
    }
    assert_eq!(
        template_defaults(&cloud).await,
        before,
        "templates restored"
    );
    let report = cloud.report("safe", &outcome.name).await;
    let isolation = report["isolation"].as_str().unwrap_or_default();
    assert!(
        isolation.contains(&seeded.drill_subnet_id) && isolation.contains("local routes only"),
        "{isolation}"
    );
    for wave in report["waves"].as_array().expect("waves") {
        for server in wave["servers"].as_array().expect("servers") {
            assert_eq!(
                server["subnet_id"],
                json!(seeded.drill_subnet_id),
                "{server}"
            );
        }
    }
    // Servers of other plans are never touched.
    let ids = cloud.server_ids().await;
    assert!(!cloud.launched_servers().await.contains(&ids["other-01"]));

    // A failed wave still puts every template back.
    cloud
        .fault(json!({"kind": "fail_launch", "servers": ["app-01"], "raw_error": "InsufficientInstanceCapacity"}))
        .await;
    let failed = cloud
        .run(plan(&cloud, json!({"subnet_id": "SEEDED"})), "drill")
        .await;
    assert_eq!(failed.status, ExecutionStatus::Failed);
    assert_eq!(failed.error.as_deref(), Some("drplan.WaveFailed"));
    assert_eq!(
        template_defaults(&cloud).await,
        before,
        "templates restored after a failed wave"
    );
    cloud
        .control(hyper::Method::DELETE, "/_drplan/faults", None)
        .await;

    // Without a drill subnet a drill still runs, in the recovery subnet, and says so.
    let plain = cloud
        .run(plan(&cloud, json!({"keep_minutes": 0})), "drill")
        .await;
    assert_eq!(
        plain.status,
        ExecutionStatus::Succeeded,
        "{:?}",
        plain.cause
    );
    for (name, subnet, _, _) in instances(&cloud, &plain.name).await {
        assert_eq!(subnet, seeded.recovery_subnet_id, "{name}");
    }
    let report = cloud.report("safe", &plain.name).await;
    assert!(
        report["isolation"]
            .as_str()
            .unwrap_or_default()
            .starts_with("NOT isolated"),
        "{}",
        report["isolation"]
    );

    // A drill subnet that routes beyond its VPC is refused before anything launches...
    let calls_before = cloud.start_recovery_calls().await.len();
    let igw = cloud
        .ec2
        .create_internet_gateway()
        .send()
        .await
        .expect("CreateInternetGateway")
        .internet_gateway()
        .and_then(|g| g.internet_gateway_id())
        .expect("an internet gateway")
        .to_owned();
    cloud
        .ec2
        .attach_internet_gateway()
        .internet_gateway_id(&igw)
        .vpc_id(&seeded.vpc_id)
        .send()
        .await
        .expect("AttachInternetGateway");
    cloud
        .ec2
        .create_route()
        .route_table_id(&seeded.drill_route_table_id)
        .destination_cidr_block("0.0.0.0/0")
        .gateway_id(&igw)
        .send()
        .await
        .expect("CreateRoute");
    let refused = cloud
        .run(plan(&cloud, json!({"subnet_id": "SEEDED"})), "drill")
        .await;
    assert_eq!(refused.status, ExecutionStatus::Failed);
    let cause = refused.cause.unwrap_or_default();
    assert!(
        cause.contains("routes beyond its VPC") && cause.contains(&igw),
        "{cause}"
    );
    assert_eq!(cloud.start_recovery_calls().await.len(), calls_before);
    // ...unless the plan allows it, and then the report says so.
    let allowed = cloud
        .run(
            plan(&cloud, json!({"subnet_id": "SEEDED", "allow_routes": true})),
            "drill",
        )
        .await;
    assert_eq!(
        allowed.status,
        ExecutionStatus::Succeeded,
        "{:?}",
        allowed.cause
    );
    let report = cloud.report("safe", &allowed.name).await;
    assert!(
        report["isolation"]
            .as_str()
            .unwrap_or_default()
            .contains("NOT fully isolated"),
        "{}",
        report["isolation"]
    );
    assert_eq!(template_defaults(&cloud).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_run_per_plan_a_recovery_takes_over_a_drill_and_nothing_replaces_it() {
    let Some(cloud) = cloud_with(FLEET).await else {
        return;
    };
    let before = template_defaults(&cloud).await;
    let safe = plan(&cloud, json!({"subnet_id": "SEEDED"}));
    cloud.store_plan_value("safe", &safe).await;

    // A drill that keeps its instances for ten minutes.
    let mut timing = fast_timing();
    timing["drill_keep_seconds"] = json!(600);
    let (drill, drill_arn) = cloud
        .start_with(json!({"plan": "safe", "mode": "drill", "timing": timing}))
        .await;
    wait_until("the drill's four instances", || async {
        instances(&cloud, &drill)
            .await
            .iter()
            .filter(|i| i.3 == "running")
            .count()
            == 4
            && cloud.history(&drill_arn).await.iter().any(|e| {
                e.state_entered_event_details()
                    .is_some_and(|d| d.name() == "KeepDrillInstances")
            })
    })
    .await;

    // A second drill is refused: `drplan start` exits non-zero saying who holds the plan,
    // and nothing new launches.
    let calls = cloud.start_recovery_calls().await.len();
    let timing_arg = fast_timing().to_string();
    let second = cloud.drplan(&["start", "safe", "--mode", "drill", "--timing", &timing_arg]);
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "{stderr}");
    assert!(
        stderr.contains("drplan.PlanBusy") && stderr.contains(&drill),
        "{stderr}"
    );
    // Its status points at the run that holds the plan.
    let refused_arn = String::from_utf8_lossy(&second.stdout).trim().to_owned();
    let shown = cloud.drplan_as_new_user(&["status", &refused_arn]);
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.contains("failed in Discover")
            && shown.contains(&format!(
                "next: see the run that holds the plan: drplan status {drill};"
            )),
        "{shown}"
    );
    assert_eq!(cloud.start_recovery_calls().await.len(), calls);
    assert_eq!(status(&cloud, &drill_arn).await, ExecutionStatus::Running);

    // A recovery is never blocked by a drill: it stops the drill, terminates its
    // instances, and recovers into the recovery subnet.
    let (recovery, recovery_arn) = cloud
        .start_with(json!({"plan": "safe", "mode": "recovery", "timing": fast_timing()}))
        .await;
    let outcome = cloud.wait(recovery.clone(), &recovery_arn).await;
    assert_eq!(
        outcome.status,
        ExecutionStatus::Succeeded,
        "{:?}",
        outcome.cause
    );
    assert_eq!(status(&cloud, &drill_arn).await, ExecutionStatus::Aborted);
    let drill_instances = instances(&cloud, &drill).await;
    assert!(
        drill_instances.iter().all(|i| i.3 == "terminated"),
        "{drill_instances:?}"
    );
    let live = instances(&cloud, &recovery).await;
    assert_eq!(live.len(), 4, "{live:?}");
    assert!(
        live.iter()
            .all(|i| i.1 == cloud.seeded.recovery_subnet_id && i.3 == "running"),
        "{live:?}"
    );
    assert_eq!(template_defaults(&cloud).await, before);
    let report = cloud.report("safe", &recovery).await;
    assert_eq!(report["cleared"]["stopped_drill"], json!(drill), "{report}");
    assert_eq!(report["cleared"]["terminated_drill_instances"], 4);

    // After the recovery, a drill and a second recovery are refused, and the recovery's
    // instances keep running untouched.
    let calls = cloud.start_recovery_calls().await.len();
    let drill_again = cloud.run(json!("safe"), "drill").await;
    assert_eq!(drill_again.status, ExecutionStatus::Failed);
    assert!(
        drill_again
            .cause
            .as_deref()
            .unwrap_or_default()
            .contains("a recovery is live on 4"),
        "{:?}",
        drill_again.cause
    );
    let recovery_again = cloud.run(json!("safe"), "recovery").await;
    assert_eq!(recovery_again.status, ExecutionStatus::Failed);
    assert!(
        recovery_again
            .cause
            .as_deref()
            .unwrap_or_default()
            .contains("replace_live_recovery"),
        "{:?}",
        recovery_again.cause
    );
    assert_eq!(cloud.start_recovery_calls().await.len(), calls);
    let still = instances(&cloud, &recovery).await;
    assert!(still.iter().all(|i| i.3 == "running"), "{still:?}");
    // The plan's lock was released by each run's report: nothing holds the plan now.
    assert!(!plan_locked(&cloud).await, "the plan is still locked");
    // The server of the other plan was never launched.
    let ids = cloud.server_ids().await;
    assert!(!cloud.launched_servers().await.contains(&ids["other-01"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_drill_still_gets_its_cleanup_its_templates_back_and_its_report() {
    let Some(cloud) = cloud_with(FLEET).await else {
        return;
    };
    let before = template_defaults(&cloud).await;
    cloud
        .store_plan_value("safe", &plan(&cloud, json!({"subnet_id": "SEEDED"})))
        .await;

    // Stopped while it keeps its instances: the Step Functions event reaches the trigger
    // function, which terminates them, writes the report and frees the plan.
    let mut timing = fast_timing();
    timing["drill_keep_seconds"] = json!(600);
    let (kept, kept_arn) = cloud
        .start_with(json!({"plan": "safe", "mode": "drill", "timing": timing}))
        .await;
    wait_until("the drill keeping its instances", || async {
        cloud.history(&kept_arn).await.iter().any(|e| {
            e.state_entered_event_details()
                .is_some_and(|d| d.name() == "KeepDrillInstances")
        })
    })
    .await;
    stop(&cloud, &kept_arn).await;
    let report = wait_for_report(&cloud, &kept).await;
    assert_eq!(report["status"], "FAILED");
    assert_eq!(report["error"]["error"], "test.Stopped", "{report}");
    assert!(
        report["error"]["cause"]
            .as_str()
            .unwrap_or_default()
            .contains("was stopped: stopped by a person"),
        "{report}"
    );
    assert_eq!(report["drill_instances_terminated"], 4, "{report}");
    wait_until("the stopped drill's instances terminated", || async {
        let found = instances(&cloud, &kept).await;
        found.len() == 4 && found.iter().all(|i| i.3 == "terminated")
    })
    .await;
    assert!(
        !plan_locked(&cloud).await,
        "the stopped drill still holds the plan"
    );
    jobs_ended(&cloud).await;

    // Stopped in the middle of its first wave's launch (db-02 converts slowly), its
    // launch templates on the drill subnet: they come back, the report is written, and
    // the instances still in the launch job are terminated by the plan's next run.
    cloud
        .fault(json!({"kind": "slow_conversion", "servers": ["db-02"], "factor": 1.0, "extra_seconds": 1500}))
        .await;
    let (launching, launching_arn) = cloud
        .start_with(json!({"plan": "safe", "mode": "drill", "timing": fast_timing()}))
        .await;
    let db01 = cloud.server_ids().await["db-01"].clone();
    wait_until("db-01's drill instance in DRS", || async {
        let found = cloud
            .drs
            .describe_recovery_instances()
            .send()
            .await
            .expect("DescribeRecoveryInstances");
        found
            .items()
            .iter()
            .any(|r| r.source_server_id() == Some(db01.as_str()))
    })
    .await;
    assert_ne!(
        template_defaults(&cloud).await,
        before,
        "the db wave's templates are swapped"
    );
    stop(&cloud, &launching_arn).await;
    let report = wait_for_report(&cloud, &launching).await;
    assert!(
        report["error"]["cause"]
            .as_str()
            .unwrap_or_default()
            .contains("drill instances were still in a launch job"),
        "{report}"
    );
    assert_eq!(
        template_defaults(&cloud).await,
        before,
        "templates restored"
    );
    assert!(!plan_locked(&cloud).await);
    cloud
        .control(hyper::Method::DELETE, "/_drplan/faults", None)
        .await;
    jobs_ended(&cloud).await;
    let next = cloud.run(json!("safe"), "drill").await;
    assert_eq!(next.status, ExecutionStatus::Succeeded, "{:?}", next.cause);
    let report = cloud.report("safe", &next.name).await;
    assert_eq!(
        report["cleared"]["terminated_drill_instances"], 2,
        "{report}"
    );
    assert_eq!(template_defaults(&cloud).await, before);
}

/// Waits until DRS has no active job (the plan's servers are free to launch).
async fn jobs_ended(cloud: &Cloud) {
    wait_until("every DRS job to end", || async {
        let jobs = cloud
            .drs
            .describe_jobs()
            .send()
            .await
            .expect("DescribeJobs");
        jobs.items()
            .iter()
            .all(|j| j.status().is_some_and(|s| s.as_str() == "COMPLETED"))
    })
    .await;
}

async fn stop(cloud: &Cloud, arn: &str) {
    cloud
        .sfn
        .stop_execution()
        .execution_arn(arn)
        .error("test.Stopped")
        .cause("stopped by a person")
        .send()
        .await
        .expect("StopExecution");
}

async fn wait_for_report(cloud: &Cloud, execution: &str) -> Value {
    let key = format!("reports/safe/{execution}.json");
    wait_until("the stopped run's report", || async {
        cloud
            .s3
            .get_object()
            .bucket(&cloud.stack.bucket)
            .key(&key)
            .send()
            .await
            .is_ok()
    })
    .await;
    cloud.report("safe", execution).await
}

async fn plan_locked(cloud: &Cloud) -> bool {
    cloud
        .s3
        .get_object()
        .bucket(&cloud.stack.bucket)
        .key("locks/safe.json")
        .send()
        .await
        .is_ok()
}
