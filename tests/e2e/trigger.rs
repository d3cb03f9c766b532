//! EventBridge triggers end to end on the local cloud: events go in through PutEvents
//! (`drplan local event FILE`, or the DRS simulator's own events), the rules of
//! `infra/template.yaml` route them to the real trigger function, and what comes out is
//! observed where a user would see it: executions in Step Functions, e-mails in the SQS
//! queue subscribed to the on-call topic, and the function's log.
//!
//! Each test starts its own local cloud and stops every process it started, pass or
//! fail. Skipped with a printed reason when the local cloud is not installed
//! (`scripts/install-local-cloud`), unless DRPLAN_REQUIRE_LOCAL_CLOUD is set.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::common::{Cloud, EXECUTION_TIMEOUT, cloud_with, fleet_file, repo_root};
use serde_json::{Value, json};

/// Every execution of the recovery state machine: (name, status).
async fn executions(cloud: &Cloud) -> Vec<(String, String)> {
    cloud
        .sfn
        .list_executions()
        .state_machine_arn(&cloud.stack.recovery_state_machine_arn)
        .max_results(1000)
        .send()
        .await
        .expect("ListExecutions")
        .executions()
        .iter()
        .map(|e| (e.name().to_owned(), e.status().as_str().to_owned()))
        .collect()
}

/// The functions' log (what `cargo lambda watch` prints for them).
fn function_log(cloud: &Cloud) -> String {
    std::fs::read_to_string(cloud.cloud.log_dir().join("cargo-lambda-watch.log"))
        .unwrap_or_default()
}

/// Waits until the functions' log holds `count` lines containing any of `needles`.
async fn wait_for_log(cloud: &Cloud, needles: &[&str], count: usize) -> String {
    let started = Instant::now();
    loop {
        let log = function_log(cloud);
        let found = log
            .lines()
            .filter(|line| needles.iter().any(|needle| line.contains(needle)))
            .count();
        if found >= count {
            return log;
        }
        assert!(
            started.elapsed() < EXECUTION_TIMEOUT,
            "{count} log lines with {needles:?} did not appear (found {found}); logs in {}",
            cloud.cloud.log_dir().display()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// `drplan local event FILE` against this cloud; panics with its output if it fails.
fn put_event(cloud: &Cloud, file: &Path) {
    let file = file.to_string_lossy().into_owned();
    let output = cloud.drplan(&[
        "local",
        "event",
        &file,
        "--endpoint-url",
        cloud.cloud.endpoint_url(),
    ]);
    assert!(
        output.status.success(),
        "drplan local event {file}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn sample(name: &str) -> PathBuf {
    repo_root().join("events").join(name)
}

/// A sample event changed by `edit`, written to a file of the cloud's log folder.
fn edited_sample(cloud: &Cloud, name: &str, edit: impl FnOnce(&mut Value)) -> PathBuf {
    let text = std::fs::read_to_string(sample(name)).expect("the sample event");
    let mut event: Value = serde_json::from_str(&text).expect("JSON");
    edit(&mut event);
    let path = cloud.cloud.log_dir().join(format!("edited-{name}"));
    std::fs::write(&path, event.to_string()).expect("write the edited event");
    path
}

/// Waits for the on-call e-mails whose `event` attribute is `event`.
async fn wait_for_mail(
    cloud: &Cloud,
    seen: &mut Vec<(String, String, Value)>,
    event: &str,
) -> (String, String, Value) {
    let started = Instant::now();
    loop {
        seen.extend(cloud.notifications().await);
        if let Some(found) = seen
            .iter()
            .find(|(_, _, attributes)| attributes["event"]["Value"] == event)
        {
            return found.clone();
        }
        assert!(
            started.elapsed() < EXECUTION_TIMEOUT,
            "no {event} e-mail arrived; got {:?}",
            seen.iter().map(|(subject, ..)| subject).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

const HANDLED: &[&str] = &[
    "alarm started the plan",
    "repeated delivery",
    "execution already exists",
    "alarm suppressed",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alarms_start_a_plan_once_and_everything_else_starts_nothing() {
    let Some(cloud) = cloud_with(&fleet_file("examples/fleet.yaml")).await else {
        return;
    };
    cloud.store_plan("shop", "examples/shop.yaml").await;

    // Malformed events first: each is refused with the field named, nothing starts.
    for name in [
        "malformed/alarm-missing-state.json",
        "malformed/alarm-state-not-object.json",
        "malformed/drs-bad-arn.json",
        "malformed/drs-no-resources.json",
    ] {
        put_event(&cloud, &sample(name));
    }
    let log = wait_for_log(&cloud, &["event rejected"], 4).await;
    for field in ["detail.state", "resources[0]"] {
        assert!(
            log.lines()
                .any(|l| l.contains("event rejected") && l.contains(field)),
            "a rejection names {field}:\n{log}"
        );
    }
    // Each rejection is counted as an embedded-metric-format line for CloudWatch.
    assert!(
        log.contains("\"RejectedEvents\":1") && log.contains("\"Reason\":\"MissingField\""),
        "rejections are counted:\n{log}"
    );
    // An unknown detail-type matches no rule; an oversized event is refused by PutEvents
    // or by the function. Neither may start anything.
    put_event(&cloud, &sample("malformed/unknown-detail-type.json"));
    let _ = cloud.drplan(&[
        "local",
        "event",
        &sample("malformed/alarm-oversized.json").to_string_lossy(),
        "--endpoint-url",
        cloud.cloud.endpoint_url(),
    ]);
    // OK, INSUFFICIENT_DATA and an alarm no plan maps start nothing either.
    put_event(&cloud, &sample("alarm-state-change-ok.json"));
    put_event(&cloud, &sample("alarm-state-change-insufficient-data.json"));
    put_event(&cloud, &sample("alarm-state-change-unmapped.json"));
    wait_for_log(&cloud, &["alarm is not in ALARM"], 2).await;
    wait_for_log(&cloud, &["not mapped to any plan"], 1).await;
    assert!(
        executions(&cloud).await.is_empty(),
        "bad, OK and unmapped events started nothing"
    );

    // One alarm state change delivered three times: exactly one execution.
    let alarm = sample("alarm-state-change-alarm.json");
    for _ in 0..3 {
        put_event(&cloud, &alarm);
    }
    wait_for_log(&cloud, HANDLED, 3).await;
    let runs = executions(&cloud).await;
    assert_eq!(
        runs.len(),
        1,
        "one execution for three deliveries: {runs:?}"
    );
    let (run_name, status) = &runs[0];
    assert!(
        run_name.starts_with("shop-alarm-20261128T030000Z-"),
        "named after the plan, the alarm and its state time: {run_name}"
    );
    assert_eq!(status, "RUNNING", "the recovery waits for approval");
    let described = cloud
        .sfn
        .describe_execution()
        .execution_arn(format!(
            "{}:{run_name}",
            cloud
                .stack
                .recovery_state_machine_arn
                .replace(":stateMachine:", ":execution:")
        ))
        .send()
        .await
        .expect("DescribeExecution");
    let input: Value = serde_json::from_str(described.input().unwrap_or("{}")).expect("input");
    assert_eq!(input["plan"], "shop");
    assert_eq!(input["mode"], "recovery", "the plan's triggers.mode");
    assert_eq!(input["trigger"]["alarm"], "shop-primary-unhealthy");

    let mut mail = Vec::new();
    // The plan's approval rule applies to an alarm-started recovery as to any other.
    let (subject, _, _) = wait_for_mail(&cloud, &mut mail, "APPROVAL_NEEDED").await;
    assert!(subject.contains("shop"), "{subject}");
    assert!(
        !mail
            .iter()
            .any(|(_, _, a)| a["event"]["Value"] == "ALARM_SUPPRESSED"),
        "repeated deliveries are not 'suppressed' alarms"
    );

    // A new state change while the run waits: suppressed, with an e-mail saying why.
    let later = edited_sample(&cloud, "alarm-state-change-alarm.json", |event| {
        event["detail"]["state"]["timestamp"] = "2026-11-28T03:05:00.000+0000".into();
    });
    put_event(&cloud, &later);
    let (subject, body, attributes) = wait_for_mail(&cloud, &mut mail, "ALARM_SUPPRESSED").await;
    assert!(
        subject.contains("shop-primary-unhealthy") && subject.contains("suppressed"),
        "{subject}"
    );
    assert!(
        body.contains(run_name.as_str()),
        "names the run under way:\n{body}"
    );
    assert_eq!(attributes["plan"]["Value"], "shop");
    assert_eq!(attributes["severity"]["Value"], "warning");
    // An alarm mapped only by its drplan:plan tag reaches the same plan.
    put_event(&cloud, &sample("alarm-state-change-tagged.json"));
    wait_for_log(&cloud, &["alarm suppressed"], 2).await;
    assert_eq!(executions(&cloud).await.len(), 1, "still one execution");
}

/// Invokes the trigger function directly (RequestResponse), as anyone allowed to invoke
/// it could, with no EventBridge rule in between; returns its answer.
async fn invoke_trigger(cloud: &Cloud, event: &Value) -> Value {
    let answer = cloud
        .control
        .rest(
            "lambda",
            hyper::Method::POST,
            "/2015-03-31/functions/trigger/invocations",
            "application/json",
            event.to_string().into_bytes(),
        )
        .await
        .expect("Invoke trigger");
    assert!(answer.status.is_success(), "{}", answer.body_text());
    serde_json::from_slice(&answer.body).expect("the trigger answers JSON")
}

fn sample_json(name: &str) -> Value {
    let text = std::fs::read_to_string(sample(name)).expect("the sample event");
    serde_json::from_str(&text).expect("JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_this_accounts_events_and_the_tags_a_plan_accepts_start_runs() {
    let Some(cloud) = cloud_with(&fleet_file("examples/fleet.yaml")).await else {
        return;
    };
    // The shop plan without `alarm_tags: true`: its own list of alarms still starts it,
    // an alarm tagged drplan:plan=shop does not.
    let mut shop = cloud.with_seeded_resources(crate::common::plan_file("examples/shop.yaml"));
    shop["triggers"]
        .as_object_mut()
        .expect("shop has triggers")
        .remove("alarm_tags");
    cloud.store_plan_value("shop", &shop).await;

    // A tag-routed alarm for a plan that did not opt in, through the rules: nothing starts.
    put_event(&cloud, &sample("alarm-state-change-tagged.json"));
    let log = wait_for_log(&cloud, &["not mapped to any plan"], 1).await;
    assert!(
        log.lines().any(|l| l.contains("alarm tag ignored")
            && l.contains("drplan:plan=shop")
            && l.contains("alarm_tags: true")),
        "the ignored tag is logged with why:\n{log}"
    );
    assert!(
        log.contains("\"IgnoredAlarmTags\":1"),
        "and counted:\n{log}"
    );
    assert!(
        executions(&cloud).await.is_empty(),
        "the tag started nothing"
    );

    // An alarm the plan lists, from another account or Region, handed straight to the
    // function: refused, logged and counted like a malformed event.
    let ours = sample_json("alarm-state-change-alarm.json");
    assert_eq!(ours["account"], "123456789012", "the local cloud's account");
    assert_eq!(
        ours["region"],
        cloud.cloud.region(),
        "the local cloud's Region"
    );
    let mut foreign = ours.clone();
    foreign["account"] = "999999999999".into();
    let answer = invoke_trigger(&cloud, &foreign).await;
    assert_eq!(
        (answer["outcome"].as_str(), answer["reason"].as_str()),
        (Some("rejected"), Some("ForeignAccount")),
        "{answer}"
    );
    let mut elsewhere = ours.clone();
    elsewhere["region"] = "eu-west-1".into();
    let answer = invoke_trigger(&cloud, &elsewhere).await;
    assert_eq!(answer["reason"], "ForeignRegion", "{answer}");
    let log = wait_for_log(&cloud, &["event rejected"], 2).await;
    assert!(
        log.lines()
            .any(|l| l.contains("event rejected") && l.contains("999999999999")),
        "the rejection names the foreign account:\n{log}"
    );
    assert!(
        log.contains("\"Reason\":\"ForeignAccount\"")
            && log.contains("\"Reason\":\"ForeignRegion\""),
        "rejections are counted by reason:\n{log}"
    );
    assert!(
        executions(&cloud).await.is_empty(),
        "foreign events started nothing"
    );

    // The same event from this account and Region starts one run.
    let answer = invoke_trigger(&cloud, &ours).await;
    assert_eq!(answer["outcome"], "routed", "{answer}");
    assert_eq!(answer["plans"][0]["outcome"], "started", "{answer}");
    let runs = executions(&cloud).await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert!(runs[0].0.starts_with("shop-alarm-"), "{runs:?}");

    // A plan that accepts tags and whose alarm runs are drills: an alarm tagged
    // drplan:mode=recovery starts a drill, never a recovery, and the run says why.
    let lab = serde_json::json!({"name": "lab", "rto_minutes": 30, "selector": {"dr:plan": "lab"},
        "triggers": {"alarm_tags": true, "mode": "drill"}});
    cloud.store_plan_value("lab", &lab).await;
    let to_lab = edited_sample(&cloud, "alarm-state-change-tagged.json", |event| {
        event["detail"]["alarmTags"] =
            serde_json::json!({"drplan:plan": "lab", "drplan:mode": "recovery"});
    });
    put_event(&cloud, &to_lab);
    wait_for_log(&cloud, &["alarm started the plan"], 2).await;
    let runs = executions(&cloud).await;
    let (lab_run, _) = runs
        .iter()
        .find(|(name, _)| name.starts_with("lab-alarm-"))
        .unwrap_or_else(|| panic!("a run of lab: {runs:?}"));
    let described = cloud
        .sfn
        .describe_execution()
        .execution_arn(format!(
            "{}:{lab_run}",
            cloud
                .stack
                .recovery_state_machine_arn
                .replace(":stateMachine:", ":execution:")
        ))
        .send()
        .await
        .expect("DescribeExecution");
    let input: Value = serde_json::from_str(described.input().unwrap_or("{}")).expect("input");
    assert_eq!(input["mode"], "drill", "{input}");
    let ignored = input["trigger"]["ignored_tags"].to_string();
    assert!(
        ignored.contains("drplan:mode=recovery") && ignored.contains("never turns a drill"),
        "{input}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_different_alarm_that_already_claimed_the_plan_wins_and_this_one_is_suppressed() {
    let Some(cloud) = cloud_with(&fleet_file("examples/fleet.yaml")).await else {
        return;
    };
    cloud.store_plan("shop", "examples/shop.yaml").await;
    let store = drplan_aws::store::RunStore::new(cloud.s3.clone(), cloud.stack.bucket.clone());
    let record = drplan_core::contract::keys::start_claim("shop");
    let key = "claims/shop/alarm-start.json";
    assert_eq!(record.key(), key);
    let claim = |execution: &str, claimed_at: jiff::Timestamp| drplan_core::trigger::StartClaim {
        execution_name: execution.to_owned(),
        claimed_at,
    };

    // Another alarm's trigger claimed the plan a moment ago and is about to start its
    // run (not listed yet): this alarm starts nothing and says whose run holds the plan.
    let other = "shop-alarm-20261128T025959Z-0badc0de";
    assert!(
        store
            .write_if(&record, &claim(other, jiff::Timestamp::now()), None)
            .await
            .expect("PutObject")
            .is_some()
    );
    // The conditional write is what two racing triggers rely on: the second one loses.
    assert!(
        store
            .write_if(
                &record,
                &claim("shop-alarm-late", jiff::Timestamp::now()),
                None
            )
            .await
            .expect("PutObject")
            .is_none(),
        "a second If-None-Match write must not replace the first claim"
    );
    put_event(&cloud, &sample("alarm-state-change-alarm.json"));
    wait_for_log(&cloud, &["alarm suppressed"], 1).await;
    assert!(executions(&cloud).await.is_empty(), "nothing started");
    let mut mail = Vec::new();
    let (_, body, _) = wait_for_mail(&cloud, &mut mail, "ALARM_SUPPRESSED").await;
    assert!(body.contains(other), "names the claiming run:\n{body}");

    // A claim file garbled by hand must never block a recovery: it is replaced (with
    // a conditional write on its ETag) and the alarm starts its run. (A claim whose run
    // never started holds two minutes only: core's judge_start_claim tests.)
    let (_, etag) = store
        .get_text_versioned(key)
        .await
        .expect("GetObject")
        .expect("the claim");
    assert_ne!(etag, "");
    store
        .put_text(key, "\"not a claim\"".to_owned(), "application/json")
        .await
        .expect("PutObject");
    put_event(&cloud, &sample("alarm-state-change-alarm.json"));
    wait_for_log(&cloud, &["alarm started the plan"], 1).await;
    assert!(
        wait_for_log(&cloud, &["unreadable start claim"], 1)
            .await
            .contains("claims/shop/alarm-start.json")
    );
    let runs = executions(&cloud).await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    let (held, _) = store
        .get_text_versioned(key)
        .await
        .expect("GetObject")
        .expect("the claim");
    let held: Value = serde_json::from_str(&held).expect("the claim is JSON again");
    assert_eq!(
        held["execution_name"],
        runs[0].0.as_str(),
        "the claim names the run"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replication_stall_pages_on_call_escalates_and_reports_recovery() {
    let Some(cloud) = cloud_with(&fleet_file("examples/fleet.yaml")).await else {
        return;
    };
    cloud.store_plan("shop", "examples/shop.yaml").await;
    let server_id = cloud
        .server_ids()
        .await
        .get("db-01")
        .cloned()
        .expect("db-01 is seeded");

    // The simulator stalls the server and puts its DRS event on the local EventBridge.
    cloud
        .fault(serde_json::json!({"kind": "stall_replication", "servers": ["db-01"]}))
        .await;
    let mut mail = Vec::new();
    let (subject, body, attributes) = wait_for_mail(&cloud, &mut mail, "REPLICATION_STALLED").await;
    assert!(
        subject.contains("STALLED") && subject.contains("db-01"),
        "{subject}"
    );
    assert!(subject.chars().count() < 100, "{subject}");
    for needle in [
        server_id.as_str(),
        "db-01",
        "Replication state:  STALLED",
        "Lag:",
        "shop (wave database)",
        "RPO",
        "RetryDataReplication",
        "aws drs retry-data-replication",
    ] {
        assert!(body.contains(needle), "{needle:?} in the page:\n{body}");
    }
    assert_eq!(attributes["severity"]["Value"], "critical");
    assert_eq!(attributes["plan"]["Value"], "shop");
    // The configured single retry went to DRS.
    let calls = cloud
        .control(hyper::Method::GET, "/_drplan/calls", None)
        .await;
    assert!(
        calls.to_string().contains("RetryDataReplication"),
        "one RetryDataReplication: {calls}"
    );

    // Still stalled after the escalation time (6 s locally): paged again.
    let (subject, body, _) = wait_for_mail(&cloud, &mut mail, "REPLICATION_STILL_STALLED").await;
    assert!(subject.contains("STILL STALLED"), "{subject}");
    assert!(body.contains(server_id.as_str()));

    // Replication resumes: on-call hears it is over.
    cloud
        .fault(serde_json::json!({"kind": "unstall_replication", "servers": ["db-01"]}))
        .await;
    let (subject, _, attributes) = wait_for_mail(&cloud, &mut mail, "REPLICATION_RESUMED").await;
    assert!(subject.contains("resumed"), "{subject}");
    assert_eq!(attributes["severity"]["Value"], "info");
    assert!(
        executions(&cloud).await.is_empty(),
        "a stall starts no recovery"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn launch_result_events_wake_a_waiting_wave_long_before_its_poll_delay() {
    let Some(cloud) = cloud_with(&fleet_file("examples/fleet.yaml")).await else {
        return;
    };
    // Polls ten minutes apart: only DRS's launch-result events, through EventBridge and
    // the trigger function, can end the wave's wait sooner.
    let input = serde_json::json!({
        "plan": crate::common::plan_file("examples/small.yaml"),
        "mode": "recovery",
        "timing": {"poll_initial_seconds": 600, "poll_max_seconds": 600,
                   "launch_timeout_minutes": 30, "health_interval_seconds": 1},
    });
    let (name, arn) = cloud.start_with(input).await;
    let started = Instant::now();
    let outcome = cloud.wait(name, &arn).await;
    let took = started.elapsed();
    assert_eq!(
        outcome.status.as_str(),
        "SUCCEEDED",
        "{:?} {:?}",
        outcome.error,
        outcome.cause
    );
    assert!(
        took < Duration::from_secs(600),
        "the wave waited out its 600 s poll delay ({took:?}): no event woke it"
    );
    // The history shows the wait ended by the token coming back, not by its timeout.
    let history = cloud.history(&arn).await;
    let kinds: Vec<&str> = history.iter().map(|e| e.r#type().as_str()).collect();
    let woken = history.iter().any(|e| {
        e.task_succeeded_event_details()
            .and_then(|d| d.output())
            .is_some_and(|output| output.contains("woken_by_job"))
    });
    assert!(woken, "a parked wait was sent back its token: {kinds:?}");
    assert!(
        !kinds.contains(&"TaskTimedOut"),
        "no wait timed out: {kinds:?}"
    );
    let log = function_log(&cloud);
    // The report function counts the run for the dashboard (embedded metric format).
    assert!(
        log.contains("\"WaveHealthySeconds\"") && log.contains("\"RunsSucceeded\":1"),
        "the run's metrics are emitted:\n{log}"
    );
    assert!(
        log.contains("wave woken") || log.contains("woken at once"),
        "the trigger (or the park itself) woke the wave:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_launch_result_event_only_leaves_its_wave_to_the_next_poll() {
    let Some(cloud) = cloud_with(&fleet_file("examples/fleet.yaml")).await else {
        return;
    };
    // intranet-01 launches well after the other intranet server and its launch-result
    // event never arrives: the other's event finds it still launching, so no event can wake
    // the parked wave, and the wave must find both launched at its next poll.
    cloud
        .fault(
            json!({"kind": "slow_conversion", "servers": ["intranet-01"], "extra_seconds": 1000}),
        )
        .await;
    cloud
        .fault(json!({"kind": "lose_launch_results", "servers": ["intranet-01"]}))
        .await;
    let input = json!({
        "plan": crate::common::plan_file("examples/small.yaml"),
        "mode": "recovery",
        "timing": {"poll_initial_seconds": 30, "poll_max_seconds": 30,
                   "launch_timeout_minutes": 30, "health_interval_seconds": 1},
    });
    let (name, arn) = cloud.start_with(input).await;
    let outcome = cloud.wait(name, &arn).await;
    assert_eq!(
        outcome.status.as_str(),
        "SUCCEEDED",
        "{:?} {:?}",
        outcome.error,
        outcome.cause
    );
    let history = cloud.history(&arn).await;
    let kinds: Vec<&str> = history.iter().map(|e| e.r#type().as_str()).collect();
    assert!(
        kinds.contains(&"TaskTimedOut"),
        "a park waited out its poll delay: {kinds:?}"
    );
    let log = function_log(&cloud);
    assert!(
        log.contains("the wave waits for more of its servers"),
        "intranet-00's event found intranet-01 still launching:\n{log}"
    );
    let report = cloud.report("intranet", &outcome.name).await;
    let servers = report["waves"][0]["servers"].clone();
    let states: Vec<&str> = servers
        .as_array()
        .expect("the wave's servers")
        .iter()
        .filter_map(|s| s["state"].as_str())
        .collect();
    assert_eq!(states, ["LAUNCHED", "LAUNCHED"], "{servers}");
}
