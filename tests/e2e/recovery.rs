//! The recovery state machine end to end on the local cloud: the real state machine
//! interpreted by moto, the real function binaries behind `cargo lambda watch`, and the
//! DRS simulator, all driven through the AWS SDK as a user's tooling would.
//!
//! Each test starts its own local cloud on free ports and stops it (every process it
//! started) when it ends, pass or fail. Skipped with a printed reason when the local
//! cloud's tools are not installed, unless DRPLAN_REQUIRE_LOCAL_CLOUD is set.

use std::collections::HashSet;

use crate::common::{cloud_with, fleet_file, plan_file, report_server, report_wave};
use aws_sdk_ec2::types::{Filter, Tag};
use aws_sdk_sfn::types::ExecutionStatus;
use hyper::Method;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_four_wave_dag_drill_recovers_in_dag_order_tags_and_cleans_up() {
    let Some(cloud) = cloud_with(&fleet_file("examples/fleet.yaml")).await else {
        return;
    };
    // By name, from the bucket, as `{"plan": "shop", "mode": "drill"}` starts it.
    cloud.store_plan("shop", "examples/shop.yaml").await;
    let (name, arn) = cloud.start(json!("shop"), "drill").await;
    let outcome = cloud.wait(name, &arn).await;
    assert_eq!(
        outcome.status,
        ExecutionStatus::Succeeded,
        "{:?}: {:?}",
        outcome.error,
        outcome.cause
    );

    let report = cloud.report("shop", &outcome.name).await;
    assert_eq!(report["status"], "SUCCEEDED");
    let waves: Vec<(&str, &str, u64)> = report["waves"]
        .as_array()
        .expect("waves")
        .iter()
        .map(|w| {
            (
                w["name"].as_str().unwrap(),
                w["state"].as_str().unwrap(),
                w["launched"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        waves,
        [
            ("database", "SUCCEEDED", 2),
            ("cache", "SUCCEEDED", 2),
            ("app", "SUCCEEDED", 8),
            ("web", "SUCCEEDED", 3)
        ]
    );
    assert_eq!(report["rto"]["met"], true);
    assert_eq!(report["drill_instances_terminated"], 15);
    // The web tier's gate probed HTTPS at the instances' public addresses (their
    // loopback stand-ins here), and every web server answered over TLS.
    let web = &report["waves"][3];
    let gate = web["health_gate"].as_str().unwrap_or_default();
    assert!(
        gate.starts_with("ec2-status, https:443/ at each instance's public IP (local run: its loopback stand-in); ")
            && gate.ends_with("; timeout 10 min"),
        "{web}"
    );
    for server in web["servers"].as_array().expect("web servers") {
        let health = server["health"].as_str().unwrap_or_default();
        assert!(
            health.starts_with("Healthy") && health.contains("https:443/ HTTP 200 (HTTPS, TLS 1."),
            "{server}"
        );
    }

    // The HTML report: a page with the run's timeline, one launch and one health-gate
    // bar per wave, in DAG order (app launched after database and cache were healthy).
    let page = cloud.drplan(&["report", &outcome.name, "--format", "html"]);
    assert!(
        page.status.success(),
        "{}",
        String::from_utf8_lossy(&page.stderr)
    );
    let html = String::from_utf8_lossy(&page.stdout);
    assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
    assert!(!html.contains("<script"), "{html}");
    let bars = timeline_bars(&html);
    let bar = |wave: &str, phase: &str| {
        bars.iter()
            .find(|(w, p, ..)| w == wave && p == phase)
            .unwrap_or_else(|| panic!("no {phase} bar for {wave} in {bars:?}"))
            .clone()
    };
    for wave in ["database", "cache", "app", "web"] {
        let (_, _, outcome, launch_start, launch_end) = bar(wave, "launch");
        assert_eq!(outcome, "passed");
        let (_, _, outcome, gate_start, gate_end) = bar(wave, "health gate");
        assert_eq!(outcome, "passed");
        assert!(
            launch_start <= launch_end && launch_end <= gate_start && gate_start <= gate_end,
            "{wave}: {bars:?}"
        );
    }
    let app_launch = bar("app", "launch").3;
    assert!(
        app_launch >= bar("database", "health gate").4
            && app_launch >= bar("cache", "health gate").4,
        "{bars:?}"
    );
    let markdown = cloud.drplan(&["report", &outcome.name]);
    let markdown = String::from_utf8_lossy(&markdown.stdout);
    assert!(
        markdown.contains("## Timeline\n\n```mermaid\ngantt\n")
            && markdown.contains("    section web\n"),
        "{markdown}"
    );

    // database and cache (one layer) ran at the same time; app started after both ended.
    let jobs = cloud.job_times_by_wave().await;
    let (db_start, db_end) = &jobs["database"];
    let (cache_start, cache_end) = &jobs["cache"];
    assert!(
        db_start < cache_end && cache_start < db_end,
        "database {:?} and cache {:?} did not overlap",
        jobs["database"],
        jobs["cache"]
    );
    let (app_start, app_end) = &jobs["app"];
    assert!(
        app_start >= db_end && app_start >= cache_end,
        "app started before its dependencies ended: {jobs:?}"
    );
    assert!(
        &jobs["web"].0 >= app_end,
        "web started before app ended: {jobs:?}"
    );

    // Every instance carries the run's tags, and the drill's cleanup terminated them all.
    let instances = cloud.instances_of(&outcome.name).await;
    assert_eq!(instances.len(), 15, "{instances:?}");
    let ids = cloud.server_ids().await;
    for (tags, state) in &instances {
        assert_eq!(state, "terminated", "{tags:?}");
        assert_eq!(tags["drplan:plan"], "shop");
        assert_eq!(tags["drplan:mode"], "drill");
        let hostname = &tags["Name"];
        // DRS's own tag, not written by drplan.
        assert_eq!(
            tags["AWSElasticDisasterRecoverySourceServerID"], ids[hostname],
            "{tags:?}"
        );
        let wave = &tags["drplan:wave"];
        assert!(["database", "cache", "app", "web"].contains(&wave.as_str()));
    }
    // Cleanup waited for the drill's keep time after the last wave ended.
    let last_launch_end = jobs.values().map(|(_, end)| end.clone()).max().unwrap();
    let terminate_jobs = cloud
        .drs
        .describe_jobs()
        .send()
        .await
        .expect("DescribeJobs")
        .items()
        .iter()
        .filter(|j| j.r#type().map(|t| t.as_str()) == Some("TERMINATE"))
        .filter_map(|j| j.creation_date_time().map(str::to_owned))
        .collect::<Vec<_>>();
    assert_eq!(terminate_jobs.len(), 1, "{terminate_jobs:?}");
    let kept = terminate_jobs[0]
        .parse::<jiff::Timestamp>()
        .unwrap()
        .duration_since(last_launch_end.parse::<jiff::Timestamp>().unwrap());
    assert!(
        kept.as_secs_f64() >= 2.0,
        "drill instances were kept only {kept:?}"
    );

    // A retried TagInstances step (EC2 throttled the last attempt part way) tags only the
    // instances the last attempt did not: one web instance lost its wave tag and its
    // Name, the step runs again with the execution's own input, and tags and names that
    // one alone.
    let tagged_with = |key: &'static str, value: String| {
        let ec2 = cloud.ec2.clone();
        async move {
            ec2.describe_tags()
                .filters(Filter::builder().name("key").values(key).build())
                .filters(Filter::builder().name("value").values(value).build())
                .send()
                .await
                .expect("DescribeTags")
                .tags()
                .iter()
                .filter_map(|t| t.resource_id().map(str::to_owned))
                .collect::<HashSet<_>>()
        }
    };
    let of_run = tagged_with("drplan:execution", outcome.name.clone()).await;
    let web_ids: Vec<String> = tagged_with("drplan:wave", "web".to_owned())
        .await
        .intersection(&of_run)
        .cloned()
        .collect();
    assert_eq!(web_ids.len(), 3, "{web_ids:?}");
    cloud
        .ec2
        .delete_tags()
        .resources(&web_ids[0])
        .tags(Tag::builder().key("drplan:wave").build())
        .tags(Tag::builder().key("Name").build())
        .send()
        .await
        .expect("DeleteTags");
    let tag_input = cloud
        .history(&arn)
        .await
        .iter()
        .filter_map(|e| e.lambda_function_scheduled_event_details())
        .filter(|d| d.resource().ends_with(":tag-instances"))
        .filter_map(|d| serde_json::from_str::<serde_json::Value>(d.input()?).ok())
        .find(|input| input["wave"]["name"] == "web")
        .expect("the web wave's TagInstances input");
    let answer = cloud
        .control
        .rest(
            "lambda",
            Method::POST,
            "/2015-03-31/functions/tag-instances/invocations",
            "application/json",
            tag_input.to_string().into_bytes(),
        )
        .await
        .expect("invoke tag-instances");
    assert!(answer.status.is_success(), "{}", answer.body_text());
    let tagged: serde_json::Value = serde_json::from_slice(&answer.body).expect("JSON");
    assert_eq!(
        tagged,
        json!({"wave": "web", "tagged": 1, "already_tagged": 2, "named": 1}),
        "{tagged}"
    );
    let keys = ["drplan:execution", "drplan:wave", "Name"].map(str::to_owned);
    let retagged = drplan_aws::ec2::instance_tags(&cloud.ec2, &web_ids, &keys)
        .await
        .expect("DescribeTags");
    assert_eq!(retagged.len(), 3, "{retagged:?}");
    for (id, tags) in &retagged {
        assert_eq!(tags["drplan:execution"], outcome.name, "{id}: {tags:?}");
        assert_eq!(tags["drplan:wave"], "web", "{id}: {tags:?}");
        assert!(tags["Name"].starts_with("web"), "{id}: {tags:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_critical_launch_failure_fails_its_wave_and_nothing_later_launches() {
    let Some(cloud) = cloud_with(&fleet_file("examples/fleet.yaml")).await else {
        return;
    };
    let raw_error = "InsufficientInstanceCapacity: no r6i.2xlarge capacity in us-east-1a";
    cloud
        .fault(json!({"kind": "fail_launch", "servers": ["db-01"], "raw_error": raw_error}))
        .await;
    let outcome = cloud.run(plan_file("examples/shop.yaml"), "drill").await;
    assert_eq!(outcome.status, ExecutionStatus::Failed);
    assert_eq!(outcome.error.as_deref(), Some("drplan.WaveFailed"));
    let cause = outcome.cause.unwrap_or_default();
    assert!(
        cause.contains("db-01") && cause.contains(raw_error),
        "{cause}"
    );

    // Only the first layer (database, cache) was ever launched.
    let ids = cloud.server_ids().await;
    let first_layer: HashSet<&String> = ["db-01", "db-02", "cache-01", "cache-02"]
        .iter()
        .map(|h| &ids[*h])
        .collect();
    let launched: Vec<String> = cloud.launched_servers().await;
    assert!(!launched.is_empty());
    assert!(
        launched.iter().all(|id| first_layer.contains(id)),
        "later waves launched: {launched:?}"
    );

    // `drplan status` names the wave's verdict and points at the report.
    let status = cloud.drplan_as_new_user(&["status", &outcome.name]);
    let shown = String::from_utf8_lossy(&status.stdout);
    for expected in [
        "failed in WaveFailed (wave database)",
        "error drplan.WaveFailed: ",
        &format!(
            "next: see which servers failed and why: drplan report {}",
            outcome.name
        ),
    ] {
        assert!(shown.contains(expected), "{expected:?} in:\n{shown}");
    }

    let report = cloud.report("shop", &outcome.name).await;
    assert_eq!(report["status"], "FAILED");
    assert!(
        report["error"]["cause"]
            .as_str()
            .unwrap()
            .contains(raw_error)
    );
    let database = &report["waves"][0];
    assert_eq!(database["state"], "FAILED");
    let db01 = report_server(database, "db-01");
    assert_eq!(db01["state"], "FAILED");
    assert_eq!(db01["error"], raw_error);
    // A failed drill is cleaned up at once: nothing it launched is left running.
    let instances = cloud.instances_of(&outcome.name).await;
    assert!(!instances.is_empty());
    assert!(
        instances.iter().all(|(_, state)| state == "terminated"),
        "{instances:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_optional_server_that_fails_does_not_fail_its_wave() {
    let Some(cloud) = cloud_with(&fleet_file("examples/fleet.yaml")).await else {
        return;
    };
    cloud.fault(json!({"kind": "fail_launch", "servers": ["batch-01"], "raw_error": "boot disk corrupt"})).await;
    let outcome = cloud.run(plan_file("examples/shop.yaml"), "drill").await;
    assert_eq!(
        outcome.status,
        ExecutionStatus::Succeeded,
        "{:?}: {:?}",
        outcome.error,
        outcome.cause
    );
    let report = cloud.report("shop", &outcome.name).await;
    let app = report_wave(&report, "app");
    assert_eq!(app["state"], "SUCCEEDED");
    assert_eq!(
        (app["launched"].as_u64(), app["failed"].as_u64()),
        (Some(7), Some(1))
    );
    let batch = report_server(&app, "batch-01");
    assert_eq!(
        (batch["state"].as_str(), batch["error"].as_str()),
        (Some("FAILED"), Some("boot disk corrupt"))
    );
    assert_eq!(report["waves"][3]["state"], "SUCCEEDED", "web still ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_is_survived() {
    let Some(cloud) = cloud_with(&fleet_file("examples/fleet.yaml")).await else {
        return;
    };
    // More throttled calls in a row than the SDK's own retries absorb, so the state
    // machine's Retry on drplan.Throttled has to carry the run.
    for operation in ["StartRecovery", "DescribeJobs", "DescribeSourceServers"] {
        cloud
            .fault(json!({"kind": "throttle", "operation": operation, "count": 4, "retry_after_seconds": 0}))
            .await;
    }
    let outcome = cloud.run(plan_file("examples/shop.yaml"), "drill").await;
    assert_eq!(
        outcome.status,
        ExecutionStatus::Succeeded,
        "{:?}: {:?}",
        outcome.error,
        outcome.cause
    );
    // No server was launched twice despite the retries.
    let launched: Vec<String> = cloud.launched_servers().await;
    let unique: HashSet<&String> = launched.iter().collect();
    assert_eq!((launched.len(), unique.len()), (15, 15), "{launched:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_250_server_wave_runs_as_three_jobs() {
    let fleet = r#"
region: us-east-1
source_servers:
  - count: 250
    hostname: "app-{i:03}"
    tags: { "dr:plan": "big", "dr:wave": "app" }
    replication: { state: CONTINUOUS, lag_seconds: 0 }
"#;
    let Some(cloud) = cloud_with(fleet).await else {
        return;
    };
    let plan = json!({"name": "big", "rto_minutes": 60, "selector": {"dr:plan": "big"}});
    let outcome = cloud.run(plan, "drill").await;
    assert_eq!(
        outcome.status,
        ExecutionStatus::Succeeded,
        "{:?}: {:?}",
        outcome.error,
        outcome.cause
    );
    let sizes: Vec<usize> = cloud
        .start_recovery_calls()
        .await
        .iter()
        .map(Vec::len)
        .collect();
    assert_eq!(sizes, [84, 83, 83]);
    let report = cloud.report("big", &outcome.name).await;
    assert_eq!(report["waves"][0]["launched"], 250);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_plan_ends_the_execution_before_any_launch() {
    let Some(cloud) = cloud_with(&fleet_file("examples/fleet.yaml")).await else {
        return;
    };
    // Valid on its own, but a wave matches no server: only the fleet can tell.
    let mut plan = plan_file("examples/shop.yaml");
    plan["waves"][3]["selector"] = json!({"dr:wave": "www"});
    let outcome = cloud.run(plan, "drill").await;
    assert_eq!(outcome.status, ExecutionStatus::Failed);
    assert_eq!(outcome.error.as_deref(), Some("drplan.InvalidPlan"));
    let cause = outcome.cause.unwrap_or_default();
    assert!(
        cause.contains("waves[3].selector") && cause.contains("\\\"www\\\"")
            || cause.contains("\"www\""),
        "{cause}"
    );

    // Broken in several ways at once: every problem is reported.
    let mut plan = plan_file("examples/shop.yaml");
    plan["waves"][0]["health"]["checks"] = json!(["tcp:0"]);
    plan["dns"]["records"][0]["from_wave"] = json!("nope");
    let outcome = cloud.run(plan, "recovery").await;
    assert_eq!(outcome.error.as_deref(), Some("drplan.InvalidPlan"));
    let cause = outcome.cause.unwrap_or_default();
    assert!(
        cause.contains("waves[0].health.checks[0]") && cause.contains("dns.records[0].from_wave"),
        "{cause}"
    );
    // As a new user sees it, told nothing of the stack: where it failed, why, what next;
    // the report found without a bucket, and titled with the run's mode.
    let status = cloud.drplan_as_new_user(&["status", &outcome.name]);
    let shown = String::from_utf8_lossy(&status.stdout);
    assert!(!status.status.success(), "{shown}");
    for expected in [
        "failed in Discover",
        "error drplan.InvalidPlan: ",
        "waves[0].health.checks[0]",
        "next: fix the plan's problems above",
        "drplan start PLAN_FILE --mode recovery",
        &format!("report: drplan report {}", outcome.name),
    ] {
        assert!(shown.contains(expected), "{expected:?} in:\n{shown}");
    }
    assert!(!shown.contains("errorMessage"), "{shown}");
    let report = cloud.drplan_as_new_user(&["report", &outcome.name]);
    let markdown = String::from_utf8_lossy(&report.stdout);
    assert!(
        report.status.success(),
        "{}",
        String::from_utf8_lossy(&report.stderr)
    );
    assert!(
        markdown.starts_with("# DR recovery report: plan `shop`"),
        "{markdown}"
    );

    // Hooks are not run by this version: refused, never silently skipped.
    let mut plan = plan_file("examples/shop.yaml");
    plan["waves"][2]["hooks"] =
        json!({"post": [{"lambda": "arn:aws:lambda:us-east-1:123456789012:function:warm-cache"}]});
    let (name, arn) = cloud.start(plan, "drill").await;
    let hooked = cloud.wait(name, &arn).await;
    assert_eq!(hooked.error.as_deref(), Some("drplan.InvalidPlan"));
    assert!(hooked.cause.unwrap_or_default().contains("waves[2].hooks"));

    assert!(
        cloud.start_recovery_calls().await.is_empty(),
        "an invalid plan launched servers"
    );
    let report = cloud.report("shop", &outcome.name).await;
    assert_eq!(report["status"], "FAILED");
    assert_eq!(report["waves"], json!([]));
}

/// Plan hooks: a database wave's pre hook runs before its servers launch and its post
/// hook after they are healthy; the app wave's failing post hook fails the wave, so the
/// web wave never launches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hooks_run_around_their_waves_and_a_failing_hook_stops_the_plan() {
    let Some(cloud) = cloud_with(&fleet_file("examples/fleet.yaml")).await else {
        return;
    };
    let record = "arn:aws:lambda:us-east-1:123456789012:function:drplan-hook-record";
    let fail = "arn:aws:lambda:us-east-1:123456789012:function:drplan-hook-fail";
    let mut plan = plan_file("examples/shop.yaml");
    plan["waves"][0]["hooks"] = json!({"pre": [{"lambda": record}], "post": [{"lambda": record}]});
    plan["waves"][2]["hooks"] = json!({"post": [{"lambda": fail}]});
    let outcome = cloud.run(plan, "drill").await;
    assert_eq!(outcome.status, ExecutionStatus::Failed);
    assert_eq!(outcome.error.as_deref(), Some("drplan.HookFailed"));
    let cause = outcome.cause.unwrap_or_default();
    assert!(
        cause.contains("CacheWarmupFailed") && cause.contains("wave app"),
        "the cause is the hook's own error: {cause}"
    );

    let hook_call = |phase: &'static str| {
        let cloud = &cloud;
        let name = outcome.name.clone();
        async move {
            let object = cloud
                .s3
                .get_object()
                .bucket(&cloud.stack.bucket)
                .key(format!("hooks/{name}/database-{phase}.json"))
                .send()
                .await
                .unwrap_or_else(|e| panic!("the {phase} hook was not called: {e}"));
            let bytes = object.body.collect().await.expect("body").into_bytes();
            serde_json::from_slice::<serde_json::Value>(&bytes).expect("JSON")
        }
    };
    let pre = hook_call("pre").await;
    let post = hook_call("post").await;
    assert_eq!(pre["payload"]["plan"], "shop");
    assert_eq!(pre["payload"]["mode"], "drill");
    assert_eq!(pre["payload"]["phase"], "pre");
    assert_eq!(post["payload"]["phase"], "post");
    let time = |text: &str| {
        text.parse::<jiff::Timestamp>()
            .unwrap_or_else(|e| panic!("{text}: {e}"))
    };
    let (db_started, db_ended) = cloud
        .job_times_by_wave()
        .await
        .get("database")
        .cloned()
        .expect("the database wave launched");
    assert!(
        time(pre["at"].as_str().unwrap_or_default()) <= time(&db_started),
        "the pre hook ran before the database launch job ({pre} vs {db_started})"
    );
    assert!(
        time(post["at"].as_str().unwrap_or_default()) >= time(&db_ended),
        "the post hook ran after the database servers launched ({post} vs {db_ended})"
    );
    let ids = cloud.server_ids().await;
    let launched: HashSet<String> = cloud.launched_servers().await.into_iter().collect();
    for host in ["web-01", "web-02", "web-03"] {
        assert!(
            !launched.contains(&ids[host]),
            "{host} launched after the app wave's hook failed"
        );
    }
}

/// The HTML report's timeline bars: (wave, phase, outcome, start, end), read from their
/// `data-*` attributes.
fn timeline_bars(html: &str) -> Vec<(String, String, String, jiff::Timestamp, jiff::Timestamp)> {
    let attribute = |tag: &str, name: &str| -> String {
        let start = tag
            .find(&format!(" {name}=\""))
            .unwrap_or_else(|| panic!("{name} in {tag}"))
            + name.len()
            + 3;
        let end = start + tag[start..].find('"').expect("closing quote");
        tag[start..end].to_owned()
    };
    html.split("<g class=\"bar\"")
        .skip(1)
        .map(|rest| {
            let tag = &rest[..rest.find('>').expect("end of the bar's tag")];
            let time = |name: &str| attribute(tag, name).parse().expect("a timestamp");
            (
                attribute(tag, "data-wave"),
                attribute(tag, "data-phase"),
                attribute(tag, "data-outcome"),
                time("data-start"),
                time("data-end"),
            )
        })
        .collect()
}
