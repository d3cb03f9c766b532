//! People in control of a run, end to end on the local cloud: a failed recovery resumed
//! after its cause is fixed (the healthy waves kept, only what failed launched again),
//! a wave skipped with a reason, and part of a plan recovered with `--only-waves`.

use std::collections::BTreeMap;

use crate::common::{Cloud, cloud_with, fast_timing, fleet_file, plan_file, report_wave};
use aws_sdk_sfn::types::ExecutionStatus;
use hyper::Method;
use serde_json::{Value, json};

const SHOP: (&str, &str) = ("shop.example.com.", "A");
const API: (&str, &str) = ("api.shop.example.com.", "A");

fn key((name, kind): (&str, &str)) -> (String, String) {
    (name.to_owned(), kind.to_owned())
}

/// examples/shop.yaml without its approval step, so that recoveries start at once.
fn shop_without_approval() -> Value {
    let mut plan = plan_file("examples/shop.yaml");
    plan.as_object_mut()
        .expect("a plan object")
        .remove("approval");
    plan
}

/// Each server of a report's wave: hostname → (EC2 instance, run that launched it).
fn wave_instances(report: &Value, wave: &str) -> BTreeMap<String, (String, Option<String>)> {
    report_wave(report, wave)["servers"]
        .as_array()
        .expect("servers")
        .iter()
        .map(|s| {
            (
                s["hostname"].as_str().unwrap_or_default().to_owned(),
                (
                    s["ec2_instance_id"].as_str().unwrap_or_default().to_owned(),
                    s["carried_from"].as_str().map(str::to_owned),
                ),
            )
        })
        .collect()
}

/// The public addresses of these instances, sorted.
async fn public_ips(cloud: &Cloud, instances: &[&str]) -> Vec<String> {
    let described = cloud
        .ec2
        .describe_instances()
        .set_instance_ids(Some(instances.iter().map(|s| (*s).to_owned()).collect()))
        .send()
        .await
        .expect("DescribeInstances");
    let mut ips: Vec<String> = described
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .filter_map(|i| i.public_ip_address().map(str::to_owned))
        .collect();
    ips.sort();
    ips
}

/// The source servers of every successful StartRecovery call after the first `skip`.
async fn launched_since(cloud: &Cloud, skip: usize) -> Vec<String> {
    let ids = cloud.server_ids().await;
    let hostname = |id: &String| {
        ids.iter()
            .find(|(_, v)| *v == id)
            .map_or_else(|| id.clone(), |(k, _)| k.clone())
    };
    let mut launched: Vec<String> = cloud
        .start_recovery_calls()
        .await
        .into_iter()
        .skip(skip)
        .flatten()
        .map(|id| hostname(&id))
        .collect();
    launched.sort();
    launched
}

/// The execution name in the first line `drplan start`/`resume` prints (its ARN).
fn execution_name(output: &std::process::Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let arn = stdout.lines().next().unwrap_or_default();
    arn.rsplit(':').next().unwrap_or_default().to_owned()
}

fn text(output: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_recovery_resumed_keeps_its_healthy_waves_and_launches_only_what_failed() {
    let Some(cloud) = cloud_with(&fleet_file("examples/fleet.yaml")).await else {
        return;
    };
    let before = cloud.records("example.com").await;
    // The third wave (app) fails: one critical server cannot launch.
    cloud
        .fault(json!({"kind": "fail_launch", "servers": ["app-001"]}))
        .await;
    let (first, arn) = cloud.start(shop_without_approval(), "recovery").await;
    let outcome = cloud.wait(first.clone(), &arn).await;
    assert_eq!(
        outcome.status,
        ExecutionStatus::Failed,
        "{:?}",
        outcome.cause
    );
    assert_eq!(
        cloud.records("example.com").await,
        before,
        "no DNS change yet"
    );
    let failed = cloud.report("shop", &first).await;
    let database_before = wave_instances(&failed, "database");
    let cache_before = wave_instances(&failed, "cache");
    let app_before = wave_instances(&failed, "app");
    assert_eq!(report_wave(&failed, "app")["state"], "FAILED");
    let calls_before = cloud.start_recovery_calls().await.len();

    // The cause is fixed; the person on call resumes the run.
    cloud.control(Method::DELETE, "/_drplan/faults", None).await;
    let resumed = cloud.drplan(&["resume", &first, "--wait"]);
    assert!(resumed.status.success(), "{}", text(&resumed));
    let second = execution_name(&resumed);
    assert_ne!(second, first);

    // Only the failed server and the wave that never started launched again.
    let launched = launched_since(&cloud, calls_before).await;
    assert_eq!(
        launched,
        ["app-001", "web-01", "web-02", "web-03"],
        "the first two waves and the app servers that launched are not launched again"
    );
    let report = cloud.report("shop", &second).await;
    assert_eq!(report["status"], "SUCCEEDED");
    for (wave, before) in [("database", &database_before), ("cache", &cache_before)] {
        let after = wave_instances(&report, wave);
        assert_eq!(after.len(), before.len());
        for (host, (instance, _)) in before {
            assert_eq!(
                after[host],
                (instance.clone(), Some(first.clone())),
                "{wave}/{host} keeps its instance from the first run"
            );
        }
        assert_eq!(
            report_wave(&report, wave)["state"],
            "SUCCEEDED",
            "{wave} health-checked again"
        );
    }
    let app = wave_instances(&report, "app");
    assert_eq!(
        app["app-001"].1, None,
        "app-001 launched by the resumed run"
    );
    assert_eq!(
        app["app-002"],
        (app_before["app-002"].0.clone(), Some(first.clone()))
    );
    assert_eq!(report["resumed"]["resumes"], first.as_str());
    let adopted: Vec<&str> = report["resumed"]["adopted_waves"]
        .as_array()
        .expect("adopted waves")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(adopted, ["cache", "database"]);
    // One recovery, measured from the first start.
    let rto = &report["rto"];
    assert_eq!(rto["measured_from"], first.as_str());
    let first_started: jiff::Timestamp = failed["started_at"].as_str().unwrap().parse().unwrap();
    let second_finished: jiff::Timestamp = report["finished_at"].as_str().unwrap().parse().unwrap();
    let whole = second_finished.duration_since(first_started).as_secs();
    let measured = rto["measured_seconds"].as_i64().expect("measured seconds");
    assert!(
        measured > whole - 30 && measured <= whole,
        "the RTO ({measured} s) spans both runs ({whole} s from the first start)"
    );
    assert!(report["resumed"]["gap_seconds"].as_i64().is_some());

    // DNS ends at the resumed run's instances: app's (kept and new) and web's.
    let after = cloud.records("example.com").await;
    let app_ids: Vec<&str> = app.values().map(|(id, _)| id.as_str()).collect();
    let web = wave_instances(&report, "web");
    let web_ids: Vec<&str> = web.values().map(|(id, _)| id.as_str()).collect();
    let app_ips = public_ips(&cloud, &app_ids).await;
    assert_eq!(
        after[&key(API)].len(),
        8,
        "every app server: {:?}",
        after[&key(API)]
    );
    assert_eq!(after[&key(API)], app_ips);
    assert_eq!(after[&key(SHOP)], public_ips(&cloud, &web_ids).await);
    let markdown = cloud.drplan(&["report", &second]);
    let markdown = text(&markdown);
    assert!(markdown.contains("## Resumed run"), "{markdown}");
    assert!(
        markdown.contains(&format!("kept: launched by `{first}`")),
        "{markdown}"
    );

    // The plan's audit trail: both runs, and the recovery that proves the plan.
    let history = cloud.drplan(&["history", "shop"]);
    assert!(history.status.success(), "{}", text(&history));
    let said = text(&history);
    assert!(
        said.contains(&format!(
            "last successful recovery: 0 min ago ({second}), RTO "
        )) && said.contains("last successful drill: none on record")
            && said.contains("SUCCEEDED RTO ")
            && said.contains(&format!("{second}  (resumes {first})"))
            && said.contains(&format!("FAILED    RTO -  {first}")),
        "{said}"
    );
    let json: Value = serde_json::from_slice(
        &cloud
            .drplan(&["history", "shop", "--format", "json"])
            .stdout,
    )
    .expect("history as JSON");
    assert_eq!(json["runs"].as_array().map(Vec::len), Some(2));
    assert_eq!(json["runs"][0]["execution_name"], second.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_waves_recovers_part_of_a_plan_and_a_skipped_wave_is_reported_with_its_reason() {
    let Some(cloud) = cloud_with(&fleet_file("examples/fleet.yaml")).await else {
        return;
    };
    cloud
        .store_plan_value("shop", &shop_without_approval())
        .await;
    let timing = fast_timing().to_string();
    let before = cloud.records("example.com").await;
    let start = |waves: &str| {
        cloud.drplan(&[
            "start",
            "shop",
            "--mode",
            "recovery",
            "--timing",
            &timing,
            "--only-waves",
            waves,
            "--wait",
        ])
    };

    // app needs database and cache, which are neither asked for nor live.
    let refused = start("app");
    assert!(!refused.status.success());
    let said = text(&refused);
    assert!(
        said.contains("wave \"app\" depends on \"database\", which is neither in only_waves nor recovered and live"),
        "{said}"
    );
    // Without --wait, `drplan start` waits for discover's verdict and says where and why.
    let refused = cloud.drplan(&[
        "start",
        "shop",
        "--mode",
        "recovery",
        "--timing",
        &timing,
        "--only-waves",
        "app",
    ]);
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains("the run was refused")
            && said.contains("failed in Discover")
            && said.contains("only_waves: wave \"app\" depends on \"database\""),
        "{said}"
    );
    assert!(
        cloud.start_recovery_calls().await.is_empty(),
        "nothing launched"
    );
    let unknown = start("database,payments");
    assert!(!unknown.status.success());
    assert!(text(&unknown).contains("payments"), "{}", text(&unknown));

    // The data tier alone.
    let data = start("database,cache");
    assert!(data.status.success(), "{}", text(&data));
    let data_run = execution_name(&data);
    let report = cloud.report("shop", &data_run).await;
    let waves: Vec<&str> = report["waves"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|w| w["name"].as_str())
        .collect();
    assert_eq!(waves, ["database", "cache"]);
    assert_eq!(report["left_out"], json!(["app", "web"]));
    assert_eq!(
        launched_since(&cloud, 0).await,
        ["cache-01", "cache-02", "db-01", "db-02"]
    );
    assert_eq!(
        cloud.records("example.com").await,
        before,
        "app and web records left alone"
    );

    // Then the rest, on top of the live data tier; the web tier fails to launch.
    cloud
        .fault(json!({"kind": "fail_launch", "servers": ["web-01"]}))
        .await;
    let calls = cloud.start_recovery_calls().await.len();
    let rest = start("app,web");
    assert!(!rest.status.success(), "{}", text(&rest));
    let rest_run = execution_name(&rest);
    assert_eq!(
        launched_since(&cloud, calls).await.len(),
        11,
        "app (8) and web (3) only"
    );
    cloud.control(Method::DELETE, "/_drplan/faults", None).await;

    // A person leaves the web tier out and goes on.
    let calls = cloud.start_recovery_calls().await.len();
    let resumed = cloud.drplan(&[
        "resume",
        &rest_run,
        "--skip-wave",
        "web",
        "--reason",
        "the vendor restores the web tier by hand",
        "--by",
        "ana",
        "--wait",
    ]);
    assert!(resumed.status.success(), "{}", text(&resumed));
    let resumed_run = execution_name(&resumed);
    assert!(
        launched_since(&cloud, calls).await.is_empty(),
        "app adopted, web skipped: nothing launched"
    );
    let report = cloud.report("shop", &resumed_run).await;
    assert_eq!(report["status"], "SUCCEEDED");
    assert_eq!(
        report["skipped"],
        json!([{"wave": "web", "reason": "the vendor restores the web tier by hand", "by": "ana"}])
    );
    assert_eq!(
        report["left_out"],
        json!(["database", "cache"]),
        "kept from the run resumed"
    );
    let after = cloud.records("example.com").await;
    assert_eq!(
        after[&key(SHOP)],
        before[&key(SHOP)],
        "the skipped wave's record is left alone"
    );
    assert_ne!(
        after[&key(API)],
        before[&key(API)],
        "api follows the app wave"
    );
    assert_eq!(report["dns"]["unchanged"], json!(["shop.example.com"]));
    let markdown = text(&cloud.drplan(&["report", &resumed_run]));
    assert!(
        markdown.contains("- **web**: the vendor restores the web tier by hand (decided by ana)")
            && markdown.contains(
                "Left as they were (their wave did not run in this run): shop.example.com."
            ),
        "{markdown}"
    );

    // A run that succeeded has nothing to continue.
    let again = cloud.drplan(&["resume", &resumed_run]);
    assert!(!again.status.success());
    assert!(
        text(&again).contains("SUCCEEDED: only a failed, timed out or stopped run can be resumed")
    );
}

/// How many RegisterTargets calls the gateway has counted since its tally was reset.
async fn register_targets_calls(cloud: &Cloud) -> u64 {
    let tally = drplan_local::gateway::request_tally(&cloud.control)
        .await
        .expect("the gateway's tally");
    tally["tallies"]
        .as_array()
        .expect("tallies")
        .iter()
        .filter(|t| t["operation"] == "RegisterTargets")
        .filter_map(|t| t["count"].as_u64())
        .sum()
}

/// The instances the target group holds now.
async fn held_by(cloud: &Cloud, target_group: &str) -> Vec<String> {
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(
        &drplan_local::stack::sdk_config(cloud.cloud.endpoint_url(), cloud.cloud.region()).await,
    );
    let answer = elb
        .describe_target_health()
        .target_group_arn(cloud.target_group_arn(target_group))
        .send()
        .await
        .expect("DescribeTargetHealth");
    let mut ids: Vec<String> = answer
        .target_health_descriptions()
        .iter()
        .filter_map(|d| Some(d.target()?.id()?.to_owned()))
        .collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_run_does_not_register_its_adopted_waves_instances_again() {
    let Some(cloud) = cloud_with(&fleet_file("examples/fleet.yaml")).await else {
        return;
    };
    // Every wave succeeds, the web wave's instances join shop-web, then the DNS cutover
    // fails: the run ends FAILED with all four waves behind it.
    cloud
        .control(
            Method::POST,
            drplan_local::gateway::LAMBDA_FAULTS_PATH,
            Some(json!({"function": "dns-cutover", "error_type": "drplan.InjectedFault", "count": 50})),
        )
        .await;
    let (first, arn) = cloud.start(shop_without_approval(), "recovery").await;
    let outcome = cloud.wait(first.clone(), &arn).await;
    assert_eq!(
        outcome.status,
        ExecutionStatus::Failed,
        "{:?}",
        outcome.cause
    );
    let failed = cloud.report("shop", &first).await;
    let mut web: Vec<String> = wave_instances(&failed, "web")
        .into_values()
        .map(|(id, _)| id)
        .collect();
    web.sort();
    assert_eq!(web.len(), 3, "{failed}");
    assert_eq!(
        held_by(&cloud, "shop-web").await,
        web,
        "registered by the first run"
    );
    assert!(
        register_targets_calls(&cloud).await > 0,
        "the gateway counts RegisterTargets"
    );

    cloud
        .control(
            Method::DELETE,
            drplan_local::gateway::LAMBDA_FAULTS_PATH,
            None,
        )
        .await;
    drplan_local::gateway::reset_request_tally(&cloud.control)
        .await
        .expect("tally reset");
    let calls_before = cloud.start_recovery_calls().await.len();
    let resumed = cloud.drplan(&["resume", &first, "--wait"]);
    assert!(resumed.status.success(), "{}", text(&resumed));
    let second = execution_name(&resumed);
    let report = cloud.report("shop", &second).await;
    let adopted: Vec<&str> = report["resumed"]["adopted_waves"]
        .as_array()
        .expect("adopted waves")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(adopted.contains(&"web"), "{adopted:?}");
    assert!(
        launched_since(&cloud, calls_before).await.is_empty(),
        "nothing launched"
    );
    // The web wave's gate looked at its target health again, and registered nothing.
    assert_eq!(register_targets_calls(&cloud).await, 0);
    assert_eq!(held_by(&cloud, "shop-web").await, web);
    assert_eq!(report_wave(&report, "web")["state"], "SUCCEEDED");
    let groups = report_wave(&report, "web")["targets"]["groups"].clone();
    assert_eq!(
        groups[0]["targets"].as_array().map(Vec::len),
        Some(3),
        "{groups}"
    );
}
