//! Notifications on the real wire: a composed WAVE_FAILED notification published with
//! `aws-sdk-sns` through the local cloud's gateway to the topic `drplan local seed`
//! creates, and read back from the SQS queue subscribed to it, as an on-call mailbox
//! would receive it: subject, body and the message attributes filter policies use.
//!
//! Starts its own local cloud on free ports and stops every process it started when it
//! ends, pass or fail. Skipped with a printed reason when moto is not installed
//! (`scripts/install-local-cloud`), unless DRPLAN_REQUIRE_LOCAL_CLOUD is set.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use drplan_core::Mode;
use drplan_core::contract::notice::{NotificationRequest, RunEvent};
use drplan_core::contract::step::StepError;
use drplan_core::contract::{LaunchPoll, LaunchState, RunContext, WaveRef};
use drplan_core::launch::{ServerOutcome, ServerState, WaveProgress};
use drplan_core::notify::{SUBJECT_MAX_CHARS, StoredRecords, WaveLaunchOutcome};
use drplan_local::seed::{self, Fleet};
use drplan_local::{Functions, LocalCloud, LocalCloudOptions, stack, tools};
use serde_json::{Value, json};

const ACCOUNT_ID: &str = "123456789012";

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The local cloud (moto, the simulator, the gateway; no functions needed), or `None`
/// after saying why it is skipped.
async fn start_cloud() -> Option<LocalCloud> {
    if let Err(missing) = tools::moto_server(&repo_root()) {
        assert!(
            std::env::var_os("DRPLAN_REQUIRE_LOCAL_CLOUD").is_none(),
            "DRPLAN_REQUIRE_LOCAL_CLOUD is set but the local cloud cannot start: {missing}"
        );
        eprintln!("SKIPPED: {missing}");
        return None;
    }
    let cloud = LocalCloud::start(LocalCloudOptions {
        repo_root: Some(repo_root()),
        functions: Functions::None,
        account_id: ACCOUNT_ID.to_owned(),
        ..LocalCloudOptions::default()
    })
    .await
    .unwrap_or_else(|error| panic!("the local cloud did not start: {error}"));
    Some(cloud)
}

fn wave_failed_request(execution_arn: &str) -> NotificationRequest {
    let started_at = "2026-11-28T03:00:00Z".parse().expect("a valid time");
    let run = RunContext {
        execution_id: execution_arn.to_owned(),
        execution_name: "shop-drill-e2e".to_owned(),
        plan: "shop".to_owned(),
        mode: Mode::Drill,
        started_at,
        snapshot: Default::default(),
        timing: Default::default(),
        quotas: Default::default(),
        deadline: None,
        resumed: None,
        origin_region: None,
    };
    NotificationRequest {
        event: RunEvent::WaveFailed,
        execution_id: execution_arn.to_owned(),
        execution_name: run.execution_name.clone(),
        run: Some(run),
        input: None,
        discovery: None,
        wave: Some(WaveRef {
            index: 2,
            name: "app".to_owned(),
            servers: 4,
            hooks: Default::default(),
            adopted: false,
        }),
        poll: Some(LaunchPoll {
            state: LaunchState::Failed,
            attempt: 5,
            wait_seconds: 30,
            deadline: "2026-11-28T04:30:00Z".parse().expect("a valid time"),
            launched: 2,
            failed: 2,
            pending: 0,
            reason: Some("wave \"app\": app-001 failed to launch".to_owned()),
        }),
        error: Some(StepError {
            error: Some("drplan.WaveFailed".to_owned()),
            cause: Some(
                json!({"errorType": "drplan.WaveFailed",
                       "errorMessage": "wave \"app\": app-001 failed to launch: InsufficientInstanceCapacity (and 1 more critical)"})
                .to_string(),
            ),
        }),
        report: None,
        cleanup: None,
        approval: None,
        task_token: None,
        dns: None,
        pause: None,
    }
}

fn failed_server(hostname: &str, id: &str, error: &str) -> ServerOutcome {
    ServerOutcome {
        source_server_id: id.to_owned(),
        hostname: Some(hostname.to_owned()),
        optional: false,
        state: ServerState::Failed,
        job_id: Some("drsjob-e2e".to_owned()),
        recovery_instance_id: None,
        ec2_instance_id: None,
        error: Some(error.to_owned()),
        carried_from: None,
    }
}

/// Reads the queue until a message arrives or the deadline passes.
async fn receive_one(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let received = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap_or_else(|error| panic!("ReceiveMessage: {error:?}"));
        let messages = received.messages();
        if let Some(message) = messages.first() {
            assert_eq!(messages.len(), 1, "one event, one message: {messages:?}");
            let body = message.body().expect("an SQS message has a body");
            return serde_json::from_str(body)
                .unwrap_or_else(|error| panic!("the SNS envelope is JSON ({error}): {body}"));
        }
        assert!(
            Instant::now() < deadline,
            "no notification reached the subscribed queue"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wave_failure_reaches_the_subscribed_queue_with_its_attributes() {
    let Some(cloud) = start_cloud().await else {
        return;
    };
    let endpoint = cloud.endpoint_url().to_owned();
    let fleet = Fleet::from_file(&repo_root().join("examples/fleet.yaml")).expect("the fleet");
    let seeded = seed::seed(&endpoint, &fleet)
        .await
        .expect("the fleet seeds");
    // What the local cloud gives the functions as DRPLAN_TOPIC_ARN.
    assert_eq!(
        seeded.topic_arn,
        format!(
            "arn:aws:sns:{}:{ACCOUNT_ID}:drplan-notifications",
            cloud.region()
        )
    );

    let config = stack::sdk_config(&endpoint, cloud.region()).await;
    let sns = aws_sdk_sns::Client::new(&config);
    let sqs = aws_sdk_sqs::Client::new(&config);
    let execution_arn = format!(
        "arn:aws:states:{}:{ACCOUNT_ID}:execution:drplan-recovery:shop-drill-e2e",
        cloud.region()
    );
    let request = wave_failed_request(&execution_arn);
    let records = StoredRecords {
        report: None,
        wave_launch: Some(WaveLaunchOutcome {
            progress: WaveProgress {
                servers: vec![
                    failed_server(
                        "app-001",
                        "s-1111111111111111a",
                        "InsufficientInstanceCapacity: no t3.medium in us-east-1a",
                    ),
                    failed_server(
                        "app-002",
                        "s-2222222222222222b",
                        "LAUNCH_FAILED: the subnet has no free addresses",
                    ),
                ],
            },
            job_ids: vec!["drsjob-e2e".to_owned()],
        }),
    };
    let now = "2026-11-28T03:17:05Z".parse().expect("a valid time");
    let delivered = drplan_aws::sns::deliver(&sns, &seeded.topic_arn, &request, &records, now)
        .await
        .unwrap_or_else(|error| panic!("publishing failed: {error}"));
    assert!(!delivered.message_id.is_empty());
    assert_eq!(
        delivered.subject,
        "[drplan] DRILL shop: wave app FAILED (2 servers)"
    );
    assert!(delivered.subject.chars().count() <= SUBJECT_MAX_CHARS);

    let envelope = receive_one(&sqs, &seeded.queue_url).await;
    assert_eq!(envelope["Type"], "Notification", "{envelope:#}");
    assert_eq!(envelope["MessageId"], delivered.message_id.as_str());
    assert_eq!(envelope["TopicArn"], seeded.topic_arn.as_str());
    assert_eq!(envelope["Subject"], delivered.subject.as_str());
    let body = envelope["Message"].as_str().expect("a text message");
    for expected in [
        "Wave app of the drill of plan shop FAILED",
        "FAILED SERVERS (2)",
        "app-001 (s-1111111111111111a): InsufficientInstanceCapacity: no t3.medium in us-east-1a",
        "app-002 (s-2222222222222222b): LAUNCH_FAILED: the subnet has no free addresses",
        "drplan status shop-drill-e2e",
        "drplan report shop-drill-e2e",
        "aws drs describe-job-log-items --job-id drsjob-e2e",
        "(17m 05s ago)",
        "https://us-east-1.console.aws.amazon.com/states/home?region=us-east-1#/v2/executions/details/arn:aws:states:us-east-1:",
        "https://us-east-1.console.aws.amazon.com/drs/home?region=us-east-1#/sourceServers",
    ] {
        assert!(body.contains(expected), "missing {expected:?} in:\n{body}");
    }
    assert!(!body.contains("errorMessage"), "{body}");
    let attributes = &envelope["MessageAttributes"];
    for (name, value) in [
        ("plan", "shop"),
        ("mode", "drill"),
        ("severity", "critical"),
        ("event", "WAVE_FAILED"),
    ] {
        assert_eq!(attributes[name]["Type"], "String", "{attributes:#}");
        assert_eq!(attributes[name]["Value"], value, "{attributes:#}");
    }
    if std::env::var_os("DRPLAN_SHOW_NOTIFICATION").is_some() {
        println!("Subject: {}\n\n{body}", delivered.subject);
    }
    cloud.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_to_a_missing_topic_is_an_aws_error() {
    let Some(cloud) = start_cloud().await else {
        return;
    };
    let config = stack::sdk_config(cloud.endpoint_url(), cloud.region()).await;
    let sns = aws_sdk_sns::Client::new(&config);
    let execution_arn = format!(
        "arn:aws:states:{}:{ACCOUNT_ID}:execution:drplan-recovery:shop-drill-e2e",
        cloud.region()
    );
    let missing_topic = format!("arn:aws:sns:{}:{ACCOUNT_ID}:no-such-topic", cloud.region());
    let error = drplan_aws::sns::deliver(
        &sns,
        &missing_topic,
        &wave_failed_request(&execution_arn),
        &StoredRecords::default(),
        jiff::Timestamp::now(),
    )
    .await
    .expect_err("SNS refuses an unknown topic");
    assert_eq!(error.error_type(), "drplan.AwsCallFailed", "{error}");
    assert!(
        error.to_string().starts_with("SNS Publish failed"),
        "{error}"
    );
    cloud.shutdown().await;
}
