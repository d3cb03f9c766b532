//! The readiness function's own code against moto (S3, SNS delivering to SQS, EC2, IAM,
//! Lambda) and the DRS simulator: two evaluations of one plan at once (the plan's S3
//! event beside the 30-minute schedule) e-mail a change once, not twice, and a change
//! whose e-mail fails is e-mailed by the next evaluation; the account's raised DRS
//! quotas (the stack's `DrsQuotas`) are what the evaluation judges against.
//!
//! Needs moto (see `drplan_drs_sim::moto`): set DRPLAN_MOTO_SERVER, and
//! DRPLAN_REQUIRE_MOTO to fail instead of skipping without it.

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region, SharedCredentialsProvider};
use drplan_aws::bootstrap::Clients;
use drplan_aws::readiness_watch::{evaluate_stored, watch_plan};
use drplan_aws::store::RunStore;
use drplan_core::contract::keys;
use drplan_core::{Format, parse_plan};
use drplan_drs_sim::moto::start_moto;

const BUCKET: &str = "drplan-race";

/// Every e-mail the topic delivered so far (its subjects), from the subscribed queue.
async fn delivered(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> Vec<String> {
    let mut subjects = Vec::new();
    loop {
        let answer = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("ReceiveMessage");
        if answer.messages().is_empty() {
            return subjects;
        }
        for message in answer.messages() {
            let body: serde_json::Value =
                serde_json::from_str(message.body().unwrap_or_default()).expect("SNS envelope");
            subjects.push(body["Subject"].as_str().unwrap_or_default().to_owned());
            sqs.delete_message()
                .queue_url(queue_url)
                .receipt_handle(message.receipt_handle().unwrap_or_default())
                .send()
                .await
                .expect("DeleteMessage");
        }
    }
}

/// moto, the simulator, and the clients a function builds at cold start, aimed at them.
struct Local {
    clients: Clients,
    config: aws_config::SdkConfig,
    sim: drplan_drs_sim::SimHandle,
    _moto: drplan_drs_sim::moto::MotoServer,
}

async fn local() -> Option<Local> {
    let moto = start_moto().await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let sim = drplan_drs_sim::spawn(
        listener,
        drplan_drs_sim::SimConfig {
            time_scale: 0.001,
            ec2_endpoint: Some(moto.endpoint.clone()),
            ..Default::default()
        },
    )
    .await
    .expect("the DRS simulator");

    let credentials = SharedCredentialsProvider::new(Credentials::for_tests());
    let config = aws_config::SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(&moto.endpoint)
        .credentials_provider(credentials)
        .build();
    let mut clients = Clients::new(&config, BUCKET.to_owned());
    clients.drs = aws_sdk_drs::Client::from_conf(
        aws_sdk_drs::config::Builder::from(&config)
            .endpoint_url(format!("http://{}", sim.addr()))
            .build(),
    );
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    );
    s3.create_bucket()
        .bucket(BUCKET)
        .send()
        .await
        .expect("CreateBucket");
    clients.store = RunStore::new(s3, BUCKET.to_owned());
    Some(Local {
        clients,
        config,
        sim,
        _moto: moto,
    })
}

#[tokio::test]
async fn one_change_two_evaluations_at_once_one_email_and_a_failed_email_is_retried() {
    let Some(Local {
        clients,
        config,
        sim,
        _moto,
    }) = local().await
    else {
        return;
    };

    let topic_arn = clients
        .sns
        .create_topic()
        .name("drplan-alerts")
        .send()
        .await
        .expect("CreateTopic")
        .topic_arn()
        .expect("a topic ARN")
        .to_owned();
    let sqs = aws_sdk_sqs::Client::new(&config);
    let queue_url = sqs
        .create_queue()
        .queue_name("on-call")
        .send()
        .await
        .expect("CreateQueue")
        .queue_url()
        .expect("a queue URL")
        .to_owned();
    clients
        .sns
        .subscribe()
        .topic_arn(&topic_arn)
        .protocol("sqs")
        .endpoint("arn:aws:sqs:us-east-1:123456789012:on-call")
        .send()
        .await
        .expect("Subscribe");

    // No server carries the plan's tag: the plan cannot run, which is a change from
    // "never evaluated" that on-call staff hear about once.
    let plan = parse_plan(
        "name: intranet\nrto_minutes: 60\nselector: { \"dr:plan\": \"intranet\" }\n",
        Format::Yaml,
    )
    .expect("the plan");

    // An e-mail that fails (a topic that does not exist) records nothing, so the change
    // is still a change to the next evaluation.
    let missing_topic = "arn:aws:sns:us-east-1:123456789012:no-such-topic";
    let failed = watch_plan(&clients, missing_topic, &plan).await;
    assert!(
        failed.is_err(),
        "publishing to a missing topic fails: {failed:?}"
    );
    let record = keys::plan_readiness(&plan.name);
    assert_eq!(
        clients
            .store
            .get_text(record.key())
            .await
            .expect("GetObject"),
        None,
        "the record written before the failed e-mail was taken back"
    );

    let (first, second) = tokio::join!(
        watch_plan(&clients, &topic_arn, &plan),
        watch_plan(&clients, &topic_arn, &plan),
    );
    let (first, second) = (
        first.expect("an evaluation"),
        second.expect("an evaluation"),
    );
    assert!(!first.recovery_ready && !second.recovery_ready);
    let notified = [&first, &second]
        .iter()
        .filter(|watched| watched.notified.is_some())
        .count();
    assert_eq!(
        notified, 1,
        "exactly one evaluation e-mailed: {first:?} {second:?}"
    );
    let subjects = delivered(&sqs, &queue_url).await;
    assert_eq!(subjects.len(), 1, "one e-mail: {subjects:?}");
    assert!(
        subjects[0].contains("intranet is NOT ready"),
        "{subjects:?}"
    );

    // Nothing changed since: no e-mail, and the record stays.
    let again = watch_plan(&clients, &topic_arn, &plan)
        .await
        .expect("an evaluation");
    assert_eq!(again.notified, None);
    assert!(delivered(&sqs, &queue_url).await.is_empty());
    assert!(
        clients
            .store
            .get_text(record.key())
            .await
            .expect("GetObject")
            .is_some()
    );

    sim.shutdown().await;
}

/// The simulator's control API: adds source servers.
async fn seed_servers(sim: &drplan_drs_sim::SimHandle, servers: &serde_json::Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = sim.addr();
    assert!(addr.ip().is_loopback());
    let body = servers.to_string();
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("simulator");
    let request = format!(
        "POST /_drplan/source-servers HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.expect("answer");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test]
async fn readiness_judges_the_accounts_raised_drs_quotas_not_the_defaults() {
    let Some(Local {
        mut clients,
        sim,
        _moto,
        ..
    }) = local().await
    else {
        return;
    };
    // 320 servers replicate in the account, over DRS's default quota of 300.
    let servers: Vec<serde_json::Value> = (0..320)
        .map(|i| {
            serde_json::json!({
                "hostname": format!("app-{i:03}"),
                "tags": {"dr:plan": "big", "dr:wave": "1"},
            })
        })
        .collect();
    seed_servers(&sim, &serde_json::Value::Array(servers)).await;
    let plan = parse_plan(
        "name: big\nrto_minutes: 60\nselector: { \"dr:plan\": \"big\" }\n",
        Format::Yaml,
    )
    .expect("the plan");
    let quota_findings = |readiness: &drplan_core::evaluation::PlanReadiness| {
        readiness
            .findings
            .iter()
            .filter(|f| f.path == "quotas.max_replicating_servers")
            .map(|f| f.message.clone())
            .collect::<Vec<_>>()
    };

    let defaults = evaluate_stored(&clients, &plan)
        .await
        .expect("an evaluation");
    assert_eq!(defaults.servers, 320);
    let said = quota_findings(&defaults);
    assert_eq!(said.len(), 1, "{:?}", defaults.findings);
    assert!(
        said[0].contains("320") && said[0].contains("300"),
        "{said:?}"
    );

    // What a function reads from DRPLAN_DRS_QUOTAS when the stack says the quota was
    // raised to 1,000.
    clients.quotas =
        drplan_core::Quotas::from_setting(r#"{"max_replicating_servers": 1000}"#).expect("quotas");
    let raised = evaluate_stored(&clients, &plan)
        .await
        .expect("an evaluation");
    assert_eq!(
        quota_findings(&raised),
        Vec::<String>::new(),
        "{:?}",
        raised.findings
    );

    sim.shutdown().await;
}
