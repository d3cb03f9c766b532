//! Always ready: one evaluation of a plan, used by discover (a run is refused before
//! anything launches), by `drplan readiness`, and by the scheduled readiness function
//! (which e-mails on-call once when a plan turns not ready, and once when it recovers).
//! The plan is broken from outside, as people break plans: a subnet filled up, a
//! security group deleted, replication stalled, a drill not run.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use hyper::Method;
use serde_json::{Value, json};

use crate::common::{Cloud, cloud_with, fast_timing, fleet_file, plan_file};

/// Output and error output of a CLI run, for messages.
fn text(output: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Points seeded servers (by hostname, with their fleet tags) at other launch settings
/// and replication: the simulator gives each a new default launch template version.
async fn reseed(cloud: &Cloud, servers: &[(&str, &str, &str, &str, &str)]) {
    let specs: Vec<Value> = servers
        .iter()
        .map(|(hostname, wave, state, subnet, group)| {
            json!({
                "hostname": hostname,
                "tags": {"dr:plan": "shop", "dr:wave": wave},
                "replication": {"state": state, "lag_seconds": if *state == "CONTINUOUS" { 0 } else { 86_400 }},
                "launch_subnet_id": subnet,
                "launch_security_group_ids": [group],
            })
        })
        .collect();
    cloud
        .control(
            Method::POST,
            "/_drplan/source-servers",
            Some(json!({ "servers": specs })),
        )
        .await;
}

/// Invokes the readiness function as its schedule does (`{}`: every stored plan).
async fn invoke_readiness(cloud: &Cloud) -> Value {
    invoke_readiness_with(cloud, json!({})).await
}

/// Invokes the readiness function with `input`, synchronously; returns its answer.
async fn invoke_readiness_with(cloud: &Cloud, input: Value) -> Value {
    let answer = cloud
        .control
        .rest(
            "lambda",
            Method::POST,
            "/2015-03-31/functions/readiness/invocations",
            "application/json",
            input.to_string().into_bytes(),
        )
        .await
        .expect("Invoke readiness");
    assert!(answer.status.is_success(), "{}", answer.body_text());
    let body: Value = serde_json::from_slice(&answer.body).expect("the function answers JSON");
    assert!(body.get("errorType").is_none(), "{body}");
    body
}

/// The readiness e-mails among the notifications received since the last call.
async fn readiness_mail(cloud: &Cloud) -> Vec<(String, String, Value)> {
    cloud
        .notifications()
        .await
        .into_iter()
        .filter(|(_, _, attributes)| {
            attributes["event"]["Value"].as_str() == Some("readiness-changed")
        })
        .collect()
}

/// `drplan readiness shop --format json`: (exit status success, the evaluation).
fn readiness_json(cloud: &Cloud) -> (bool, Value) {
    let output = cloud.drplan(&["readiness", "shop", "--format", "json"]);
    let json: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("readiness JSON: {e}: {}", text(&output)));
    (output.status.success(), json["plans"][0].clone())
}

/// Each finding's message by (severity, path).
fn findings(evaluation: &Value) -> BTreeMap<(String, String), Vec<String>> {
    let mut found: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for finding in evaluation["findings"].as_array().expect("findings") {
        found
            .entry((
                finding["severity"].as_str().unwrap_or_default().to_owned(),
                finding["path"].as_str().unwrap_or_default().to_owned(),
            ))
            .or_default()
            .push(finding["message"].as_str().unwrap_or_default().to_owned());
    }
    found
}

/// `readiness/shop.json` once `done` holds for it: the evaluation a stored plan's S3
/// event starts runs on its own, and a test waits for it before it judges e-mails.
async fn kept_readiness_once(cloud: &Cloud, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        if let Ok(kept) = cloud
            .s3
            .get_object()
            .bucket(&cloud.stack.bucket)
            .key("readiness/shop.json")
            .send()
            .await
        {
            let body = kept.body.collect().await.expect("its body").into_bytes();
            let kept: Value = serde_json::from_slice(&body).expect("JSON");
            if done(&kept) {
                return kept;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "readiness/shop.json never got there: {kept:#}"
            );
        }
        assert!(
            std::time::Instant::now() < deadline,
            "readiness/shop.json was never written"
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

/// IAM in the local cloud, where the seed made DRS's service roles.
async fn iam(cloud: &Cloud) -> aws_sdk_iam::Client {
    aws_sdk_iam::Client::new(
        &drplan_local::stack::sdk_config(cloud.cloud.endpoint_url(), cloud.cloud.region()).await,
    )
}

/// The last /28 of the VPC's range: a subnet with 11 free addresses.
async fn small_subnet(cloud: &Cloud) -> String {
    let vpcs = cloud
        .ec2
        .describe_vpcs()
        .vpc_ids(&cloud.seeded.vpc_id)
        .send()
        .await
        .expect("DescribeVpcs");
    let cidr = vpcs.vpcs()[0]
        .cidr_block()
        .expect("the VPC's CIDR")
        .to_owned();
    let (base, bits) = cidr.split_once('/').expect("a CIDR");
    let base: Ipv4Addr = base.parse().expect("an IPv4 base");
    let size = 1u32 << (32 - bits.parse::<u32>().expect("a prefix length"));
    let last = Ipv4Addr::from(u32::from(base) + size - 16);
    cloud
        .ec2
        .create_subnet()
        .vpc_id(&cloud.seeded.vpc_id)
        .cidr_block(format!("{last}/28"))
        .send()
        .await
        .expect("CreateSubnet")
        .subnet()
        .and_then(|s| s.subnet_id())
        .expect("the subnet's ID")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_that_cannot_launch_is_refused_before_launch_and_readiness_says_why_once() {
    let Some(cloud) = cloud_with(&fleet_file("examples/fleet.yaml")).await else {
        return;
    };
    let mut shop = plan_file("examples/shop.yaml");
    shop.as_object_mut().expect("a plan").remove("approval");
    shop["drill"]["every_days"] = json!(7);
    // A hook that exists (a function the local cloud serves) is not a finding.
    let record = "arn:aws:lambda:us-east-1:123456789012:function:drplan-hook-record";
    shop["waves"][0]["hooks"] = json!({"pre": [{"lambda": record}]});
    cloud.store_plan_value("shop", &shop).await;
    kept_readiness_once(&cloud, |kept| kept["recovery_ready"] == true).await;
    let subnet = cloud.seeded.recovery_subnet_id.clone();
    let group = cloud.seeded.recovery_security_group_id.clone();

    // As seeded, the plan is ready: only the drill it asks for every 7 days is missing.
    let (ready, evaluation) = readiness_json(&cloud);
    let found = findings(&evaluation);
    assert!(ready, "{evaluation:#}");
    assert_eq!(
        found.keys().cloned().collect::<Vec<_>>(),
        [("warning".to_owned(), "drill.every_days".to_owned())],
        "{evaluation:#}"
    );
    assert!(
        found
            .values()
            .flatten()
            .all(|m| m.contains("no successful drill on record"))
    );
    // The scheduled evaluation of a ready plan says nothing.
    invoke_readiness(&cloud).await;
    assert!(readiness_mail(&cloud).await.is_empty());

    // Broken from outside: the web tier's subnet has 2 free addresses for its 3 servers,
    // db-01's template names a security group that was deleted, cache-01 stalled.
    let small = small_subnet(&cloud).await;
    let doomed = cloud
        .ec2
        .create_security_group()
        .group_name("doomed")
        .description("deleted after db-01's template names it")
        .vpc_id(&cloud.seeded.vpc_id)
        .send()
        .await
        .expect("CreateSecurityGroup")
        .group_id()
        .expect("its ID")
        .to_owned();
    reseed(
        &cloud,
        &[
            ("web-01", "web", "CONTINUOUS", &small, &group),
            ("web-02", "web", "CONTINUOUS", &small, &group),
            ("web-03", "web", "CONTINUOUS", &small, &group),
            ("db-01", "db", "CONTINUOUS", &subnet, &doomed),
            ("cache-01", "cache", "STALLED", &subnet, &group),
        ],
    )
    .await;
    cloud
        .ec2
        .delete_security_group()
        .group_id(&doomed)
        .send()
        .await
        .expect("DeleteSecurityGroup");
    cloud
        .ec2
        .run_instances()
        .image_id("ami-12c6146b")
        .subnet_id(&small)
        .min_count(9)
        .max_count(9)
        .send()
        .await
        .expect("RunInstances fills the small subnet");
    let full = format!(
        "subnet {small} has 2 free addresses, but this run launches 3 instances into it: 1 would fail to launch"
    );
    // DRS's conversion server role deleted, and a hook renamed in the plan to a function
    // that does not exist.
    let conversion_role = "AWSElasticDisasterRecoveryConversionServerRole";
    iam(&cloud)
        .await
        .delete_role()
        .role_name(conversion_role)
        .send()
        .await
        .expect("DeleteRole");
    let gone = "arn:aws:lambda:us-east-1:123456789012:function:drplan-hook-renamed";
    shop["waves"][1]["hooks"] = json!({"post": [{"lambda": gone}]});
    cloud.store_plan_value("shop", &shop).await;
    // The stored plan's own evaluation (its S3 event) e-mails that it is not ready.
    kept_readiness_once(&cloud, |kept| kept["recovery_ready"] == false).await;

    let (ready, evaluation) = readiness_json(&cloud);
    let found = findings(&evaluation);
    assert!(!ready, "{evaluation:#}");
    assert_eq!(evaluation["recovery_ready"], false);
    assert_eq!(evaluation["drill_ready"], false);
    let capacity = &found[&(
        "blocks".to_owned(),
        format!("subnet {small} (launch templates)"),
    )];
    assert!(capacity[0].starts_with(&full), "{capacity:?}");
    let db = &found[&(
        "blocks".to_owned(),
        "waves[\"database\"].servers[\"db-01\"]".to_owned(),
    )];
    assert!(
        db[0].contains(&format!(
            "names security group {doomed}, which does not exist"
        )),
        "{db:?}"
    );
    let cache = &found[&(
        "blocks".to_owned(),
        "waves[\"cache\"].servers[\"cache-01\"]".to_owned(),
    )];
    assert!(cache[0].contains("replication is STALLED"), "{cache:?}");
    assert!(found.contains_key(&("warning".to_owned(), "drill.every_days".to_owned())));
    let hook = &found[&(
        "blocks".to_owned(),
        "waves[1].hooks.post[0].lambda".to_owned(),
    )];
    assert!(
        hook[0].starts_with(&format!("{gone}: Lambda has no such function")),
        "{hook:?}"
    );
    let role = &found[&(
        "blocks".to_owned(),
        format!("drs.service_roles[{conversion_role:?}]"),
    )];
    assert!(
        role[0].contains("does not exist in this account"),
        "{role:?}"
    );
    assert!(
        !found
            .keys()
            .any(|(_, path)| path.starts_with("waves[0].hooks")),
        "the hook that exists is no finding: {evaluation:#}"
    );
    // The text form says the same, and exits non-zero.
    let said = cloud.drplan(&["readiness"]);
    assert!(!said.status.success());
    assert!(
        text(&said).contains("plan shop: recovery NOT ready, drill NOT ready")
            && text(&said).contains(&full),
        "{}",
        text(&said)
    );

    // A recovery is refused in discover with the same numbers, before any launch.
    let timing = fast_timing().to_string();
    let refused = cloud.drplan(&[
        "start", "shop", "--mode", "recovery", "--timing", &timing, "--wait",
    ]);
    assert!(!refused.status.success());
    let said = text(&refused);
    assert!(
        said.contains("failed in Discover") && said.contains("drplan.NotReady"),
        "{said}"
    );
    let execution = said
        .lines()
        .find_map(|l| l.trim().strip_prefix("report: drplan report "))
        .expect("the refusal names its report")
        .to_owned();
    let report = cloud.report("shop", &execution).await.to_string();
    assert!(
        report.contains(&full)
            && report.contains(&doomed)
            && report.contains(gone)
            && report.contains(conversion_role),
        "{report}"
    );
    assert!(
        cloud.start_recovery_calls().await.is_empty(),
        "nothing launched"
    );

    // The schedule's evaluation e-mails once that the plan is not ready, then is quiet.
    let answer = invoke_readiness(&cloud).await;
    assert_eq!(answer["evaluated"][0]["plan"], "shop", "{answer}");
    assert_eq!(answer["evaluated"][0]["recovery_ready"], false, "{answer}");
    let mail = readiness_mail(&cloud).await;
    assert_eq!(mail.len(), 1, "{mail:?}");
    let (subject, body, _) = &mail[0];
    assert_eq!(
        subject,
        "drplan: plan shop is NOT ready (recovery NOT ready, drill NOT ready)"
    );
    assert!(
        body.contains(&full) && body.contains(&doomed) && body.contains(gone),
        "{body}"
    );
    let kept = kept_readiness_once(&cloud, |_| true).await;
    assert_eq!(kept["recovery_ready"], false);
    invoke_readiness(&cloud).await;
    assert!(
        readiness_mail(&cloud).await.is_empty(),
        "no change, no e-mail"
    );

    // Put right (the web tier back in its subnet, db-01 with a group that exists,
    // cache-01 replicating, the role made again, the hook named right): one e-mail says
    // the plan is ready again.
    iam(&cloud)
        .await
        .create_role()
        .role_name(conversion_role)
        .path("/service-role/")
        .assume_role_policy_document(
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
            .to_string(),
        )
        .send()
        .await
        .expect("CreateRole");
    reseed(
        &cloud,
        &[
            ("web-01", "web", "CONTINUOUS", &subnet, &group),
            ("web-02", "web", "CONTINUOUS", &subnet, &group),
            ("web-03", "web", "CONTINUOUS", &subnet, &group),
            ("db-01", "db", "CONTINUOUS", &subnet, &group),
            ("cache-01", "cache", "CONTINUOUS", &subnet, &group),
        ],
    )
    .await;
    shop["waves"][1]
        .as_object_mut()
        .expect("a wave")
        .remove("hooks");
    cloud.store_plan_value("shop", &shop).await;
    kept_readiness_once(&cloud, |kept| kept["recovery_ready"] == true).await;
    invoke_readiness(&cloud).await;
    let mail = readiness_mail(&cloud).await;
    assert_eq!(mail.len(), 1, "{mail:?}");
    assert_eq!(mail[0].0, "drplan: plan shop is ready again");
    let (ready, evaluation) = readiness_json(&cloud);
    assert!(ready, "{evaluation:#}");
}

/// The plan's drill schedule as the local cloud's Scheduler holds it, if it has one.
async fn drill_schedule(cloud: &Cloud, plan: &str) -> Option<Value> {
    let answer = cloud
        .control
        .rest(
            "scheduler",
            Method::GET,
            &format!("/schedules/drplan-drill-{plan}?groupName=drplan-local-drills"),
            "application/json",
            Vec::new(),
        )
        .await
        .expect("GetSchedule");
    if answer.status == hyper::StatusCode::NOT_FOUND {
        return None;
    }
    assert!(answer.status.is_success(), "{}", answer.body_text());
    Some(serde_json::from_slice(&answer.body).expect("a schedule"))
}

/// Waits (up to 30 s) until the plan's schedule expression is `wanted` (`None`: gone):
/// the plan's S3 event reaches the readiness function asynchronously, as in AWS.
async fn schedule_becomes(cloud: &Cloud, plan: &str, wanted: Option<&str>) -> Option<Value> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let schedule = drill_schedule(cloud, plan).await;
        let expression = schedule
            .as_ref()
            .and_then(|s| s["ScheduleExpression"].as_str().map(str::to_owned));
        if expression.as_deref() == wanted {
            return schedule;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the schedule of {plan} is {expression:?}, not {wanted:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

/// `drplan local fire-schedule PLAN`: the function's answer.
fn fire(cloud: &Cloud, plan: &str) -> Value {
    let output = cloud.drplan(&[
        "local",
        "fire-schedule",
        plan,
        "--endpoint-url",
        cloud.cloud.endpoint_url(),
    ]);
    assert!(output.status.success(), "{}", text(&output));
    let fired: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    fired["answer"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drill_schedule_follows_its_plan_and_skips_a_drill_the_plan_is_not_ready_for() {
    let Some(cloud) = cloud_with(&fleet_file("examples/fleet.yaml")).await else {
        return;
    };
    let mut shop = plan_file("examples/shop.yaml");
    shop.as_object_mut().expect("a plan").remove("approval");
    shop["drill"]["keep_minutes"] = json!(0);
    shop["drill"]["schedule"] = json!("cron(0 3 ? * SUN *)");

    // Storing the plan makes its schedule (S3 event → rule → readiness function), which
    // targets the readiness function with the plan and Scheduler's time placeholder.
    cloud.store_plan_value("shop", &shop).await;
    let schedule = schedule_becomes(&cloud, "shop", Some("cron(0 3 ? * SUN *)"))
        .await
        .expect("the schedule");
    let input: Value =
        serde_json::from_str(schedule["Target"]["Input"].as_str().expect("an input"))
            .expect("JSON input");
    assert_eq!(
        input,
        json!({"scheduled_drill": "shop", "scheduled_time": "<aws.scheduler.scheduled-time>"})
    );
    assert!(
        schedule["Target"]["Arn"]
            .as_str()
            .is_some_and(|arn| arn.ends_with(":function:readiness")),
        "{schedule}"
    );
    assert_eq!(schedule["FlexibleTimeWindow"]["Mode"], "OFF");

    // A plan change changes it.
    shop["drill"]["schedule"] = json!("rate(7 days)");
    cloud.store_plan_value("shop", &shop).await;
    schedule_becomes(&cloud, "shop", Some("rate(7 days)")).await;

    // Fired while a server's replication is stalled: skipped, nothing launched, and
    // on-call staff told why.
    cloud
        .fault(json!({"kind": "stall_replication", "servers": ["cache-01"]}))
        .await;
    let answer = fire(&cloud, "shop");
    assert_eq!(answer["drill"]["outcome"], "skipped", "{answer}");
    assert!(cloud.start_recovery_calls().await.is_empty());
    let skipped: Vec<_> = cloud
        .notifications()
        .await
        .into_iter()
        .filter(|(_, _, a)| a["event"]["Value"].as_str() == Some("scheduled-drill-skipped"))
        .collect();
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    assert_eq!(
        skipped[0].0,
        "drplan: scheduled drill of plan shop skipped: not ready"
    );
    assert!(
        skipped[0].1.contains("cache-01") && skipped[0].1.contains("STALLED"),
        "{}",
        skipped[0].1
    );

    // Ready again: the firing starts a drill named after its scheduled time, and the
    // same firing delivered again starts nothing more.
    cloud
        .fault(json!({"kind": "unstall_replication", "servers": ["cache-01"]}))
        .await;
    let when = "2027-01-10T03:00:00Z";
    let firing = json!({"scheduled_drill": "shop", "scheduled_time": when});
    let answer = invoke_readiness_with(&cloud, firing.clone()).await;
    assert_eq!(
        answer["drill"],
        json!({"outcome": "started", "execution_name": "shop-drill-20270110T030000Z-scheduled"}),
        "{answer}"
    );
    let again = invoke_readiness_with(&cloud, firing).await;
    assert_eq!(again["drill"]["outcome"], "already_started", "{again}");
    let arn = format!(
        "{}:shop-drill-20270110T030000Z-scheduled",
        cloud
            .stack
            .recovery_state_machine_arn
            .replace(":stateMachine:", ":execution:")
    );
    let described = cloud
        .sfn
        .describe_execution()
        .execution_arn(&arn)
        .send()
        .await
        .expect("DescribeExecution");
    let input: Value = serde_json::from_str(described.input().unwrap_or("{}")).expect("JSON");
    assert_eq!(input["mode"], "drill");
    assert_eq!(input["plan"], "shop");
    assert_eq!(input["trigger"]["schedule"], "drplan-drill-shop");
    assert_eq!(input["trigger"]["scheduled_time"], when);
    // It launches (the run's own timing is the plan's, not a test's: it is stopped here
    // once its first wave has launched).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while cloud.start_recovery_calls().await.is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the scheduled drill launched nothing"
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    cloud
        .sfn
        .stop_execution()
        .execution_arn(&arn)
        .send()
        .await
        .expect("StopExecution");

    // Deleting the plan deletes its schedule.
    cloud
        .s3
        .delete_object()
        .bucket(&cloud.stack.bucket)
        .key("plans/shop.yaml")
        .send()
        .await
        .expect("DeleteObject");
    schedule_becomes(&cloud, "shop", None).await;
}
