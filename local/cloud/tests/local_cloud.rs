//! The real stack (moto from the project's venv, the DRS simulator, the gateway), checked
//! through the gateway as a user's client would see it. Skipped with a printed reason
//! when the venv is missing, unless DRPLAN_REQUIRE_LOCAL_CLOUD is set.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use drplan_local::process::{process_alive, process_group_alive};
use drplan_local::seed::{self, Fleet};
use drplan_local::upstream::{AwsClient, HttpClient};
use drplan_local::{Functions, LocalCloud, LocalCloudOptions, commands, tools};
use hyper::Method;
use serde_json::{Value, json};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `None` (after saying why) when moto is not installed and it is not required.
fn stack_options() -> Option<LocalCloudOptions> {
    let root = repo_root();
    if let Err(missing) = tools::moto_server(&root) {
        if std::env::var_os("DRPLAN_REQUIRE_LOCAL_CLOUD").is_some() {
            panic!("DRPLAN_REQUIRE_LOCAL_CLOUD is set but the local cloud cannot start: {missing}");
        }
        eprintln!("SKIPPED: {missing}");
        return None;
    }
    Some(LocalCloudOptions {
        repo_root: Some(root),
        functions: Functions::None,
        ..LocalCloudOptions::default()
    })
}

async fn start() -> Option<LocalCloud> {
    let options = stack_options()?;
    Some(
        LocalCloud::start(options)
            .await
            .unwrap_or_else(|error| panic!("the local cloud did not start: {error}")),
    )
}

fn client(cloud: &LocalCloud) -> AwsClient {
    AwsClient::new(HttpClient::new(), cloud.endpoint_url(), "us-east-1")
}

async fn drs(aws: &AwsClient, operation: &str, input: Value) -> Value {
    let answer = aws
        .rest(
            "drs",
            Method::POST,
            &format!("/{operation}"),
            "application/json",
            input.to_string().into_bytes(),
        )
        .await
        .unwrap_or_else(|error| panic!("{operation}: {error}"));
    assert!(
        answer.status.is_success(),
        "{operation}: {} {}",
        answer.status,
        answer.body_text()
    );
    serde_json::from_slice(&answer.body).expect("DRS answers JSON")
}

async fn sqs(aws: &AwsClient, operation: &str, input: Value) -> Value {
    aws.json("sqs", "1.0", "AmazonSQS", operation, &input)
        .await
        .unwrap_or_else(|error| panic!("{operation}: {error}"))
}

async fn events(aws: &AwsClient, operation: &str, input: Value) -> Value {
    aws.json("events", "1.1", "AWSEvents", operation, &input)
        .await
        .unwrap_or_else(|error| panic!("{operation}: {error}"))
}

async fn states(aws: &AwsClient, operation: &str, input: Value) -> Value {
    aws.json("states", "1.0", "AWSStepFunctions", operation, &input)
        .await
        .unwrap_or_else(|error| panic!("{operation}: {error}"))
}

async fn receive_messages(aws: &AwsClient, queue_url: &str, wait_seconds: u64) -> Vec<Value> {
    let answer = sqs(
        aws,
        "ReceiveMessage",
        json!({ "QueueUrl": queue_url, "MaxNumberOfMessages": 10, "WaitTimeSeconds": wait_seconds }),
    )
    .await;
    answer
        .get("Messages")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

async fn wait_for_execution_end(aws: &AwsClient, execution_arn: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let execution = states(
            aws,
            "DescribeExecution",
            json!({ "executionArn": execution_arn }),
        )
        .await;
        if execution["status"] != "RUNNING" || Instant::now() > deadline {
            return execution;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

const PASS_MACHINE: &str =
    r#"{"StartAt": "Pass", "States": {"Pass": {"Type": "Pass", "End": true}}}"#;
const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/drplan-local";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drs_calls_reach_the_simulator_and_the_seeded_servers() {
    let Some(cloud) = start().await else { return };
    let fleet = Fleet::from_yaml(
        r#"
source_servers:
  - count: 3
    hostname: "app-{i:03}"
    tags: { "dr:plan": "shop", "dr:wave": "app" }
    replication: { state: CONTINUOUS, lag_seconds: 5 }
"#,
    )
    .expect("a valid fleet");
    seed::seed(cloud.endpoint_url(), &fleet)
        .await
        .expect("seeding works");

    let aws = client(&cloud);
    let servers = drs(&aws, "DescribeSourceServers", json!({})).await;
    let mut hostnames: Vec<&str> = servers["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|server| {
            server
                .pointer("/sourceProperties/identificationHints/hostname")?
                .as_str()
        })
        .collect();
    hostnames.sort_unstable();
    assert_eq!(hostnames, ["app-001", "app-002", "app-003"]);
    assert_eq!(servers["items"][0]["tags"]["dr:plan"], "shop");
    cloud.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ec2_and_s3_calls_reach_moto() {
    let Some(cloud) = start().await else { return };
    let aws = client(&cloud);
    let created = aws
        .query(
            "ec2",
            "2016-11-15",
            "CreateVpc",
            &[("CidrBlock", "10.9.0.0/16")],
        )
        .await
        .expect("CreateVpc through the gateway");
    assert!(created.contains("<vpcId>vpc-"), "{created}");

    let bucket = aws
        .rest(
            "s3",
            Method::PUT,
            "/drplan-reports",
            "application/xml",
            Vec::new(),
        )
        .await
        .expect("CreateBucket");
    assert!(
        bucket.status.is_success(),
        "{} {}",
        bucket.status,
        bucket.body_text()
    );
    let put = aws
        .rest(
            "s3",
            Method::PUT,
            "/drplan-reports/run-1.json",
            "application/json",
            b"{\"rto\": 42}".to_vec(),
        )
        .await
        .expect("PutObject");
    assert!(put.status.is_success(), "{}", put.body_text());
    let got = aws
        .rest(
            "s3",
            Method::GET,
            "/drplan-reports/run-1.json",
            "application/json",
            Vec::new(),
        )
        .await
        .expect("GetObject");
    assert_eq!(got.body_text(), "{\"rto\": 42}");
    let head = aws
        .rest(
            "s3",
            Method::HEAD,
            "/drplan-reports/run-1.json",
            "application/json",
            Vec::new(),
        )
        .await
        .expect("HeadObject");
    assert_eq!(
        head.headers
            .get("content-length")
            .map(|length| length.as_bytes()),
        Some(&b"11"[..]),
        "HeadObject tells the object's size"
    );
    cloud.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_events_delivers_to_matching_rules_sqs_and_step_functions_targets() {
    let Some(cloud) = start().await else { return };
    let aws = client(&cloud);

    let queue_url = sqs(&aws, "CreateQueue", json!({ "QueueName": "stalls" })).await["QueueUrl"]
        .as_str()
        .expect("a queue URL")
        .to_string();
    let machine_arn = states(
        &aws,
        "CreateStateMachine",
        json!({ "name": "on-stall", "definition": PASS_MACHINE, "roleArn": ROLE_ARN }),
    )
    .await["stateMachineArn"]
        .as_str()
        .expect("a state machine ARN")
        .to_string();
    events(
        &aws,
        "PutRule",
        json!({
            "Name": "replication-stalled",
            "EventPattern": json!({
                "source": ["aws.drs"],
                "detail-type": ["DRS Source Server Data Replication Stalled Change"],
                "detail": { "state": ["STALLED"] }
            }).to_string(),
        }),
    )
    .await;
    events(
        &aws,
        "PutTargets",
        json!({
            "Rule": "replication-stalled",
            "Targets": [
                { "Id": "queue", "Arn": "arn:aws:sqs:us-east-1:123456789012:stalls" },
                { "Id": "machine", "Arn": machine_arn, "RoleArn": ROLE_ARN },
            ],
        }),
    )
    .await;

    let stall = |state: &str| {
        json!({
            "Source": "aws.drs",
            "DetailType": "DRS Source Server Data Replication Stalled Change",
            "Resources": ["arn:aws:drs:us-east-1:123456789012:source-server/s-1234567890abcdef0"],
            "Detail": json!({ "state": state }).to_string(),
        })
    };
    let answer = events(&aws, "PutEvents", json!({ "Entries": [stall("STALLED")] })).await;
    assert_eq!(answer["FailedEntryCount"], 0, "{answer}");
    let event_id = answer["Entries"][0]["EventId"]
        .as_str()
        .expect("an event id")
        .to_string();

    // The SQS target got the event as EventBridge builds it.
    let messages = receive_messages(&aws, &queue_url, 2).await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    let delivered: Value =
        serde_json::from_str(messages[0]["Body"].as_str().expect("a body")).expect("JSON");
    assert_eq!(delivered["id"], event_id.as_str());
    assert_eq!(delivered["detail"]["state"], "STALLED");
    assert_eq!(delivered["account"], "123456789012");
    assert_eq!(delivered["region"], "us-east-1");
    assert_eq!(delivered["version"], "0");
    assert!(
        delivered["time"]
            .as_str()
            .is_some_and(|time| time.ends_with('Z'))
    );

    // The Step Functions target ran, with the event as its input.
    let executions = states(
        &aws,
        "ListExecutions",
        json!({ "stateMachineArn": machine_arn }),
    )
    .await;
    let listed = executions["executions"].as_array().expect("executions");
    assert_eq!(listed.len(), 1, "{executions}");
    let execution = wait_for_execution_end(
        &aws,
        listed[0]["executionArn"]
            .as_str()
            .expect("an execution ARN"),
    )
    .await;
    assert_eq!(execution["status"], "SUCCEEDED", "{execution}");
    let input: Value =
        serde_json::from_str(execution["input"].as_str().expect("input")).expect("JSON");
    assert_eq!(input["id"], event_id.as_str());

    // An event the pattern does not match goes nowhere.
    let answer = events(
        &aws,
        "PutEvents",
        json!({ "Entries": [stall("NOT_STALLED")] }),
    )
    .await;
    assert_eq!(answer["FailedEntryCount"], 0, "{answer}");
    assert!(receive_messages(&aws, &queue_url, 1).await.is_empty());
    let executions = states(
        &aws,
        "ListExecutions",
        json!({ "stateMachineArn": machine_arn }),
    )
    .await;
    assert_eq!(executions["executions"].as_array().map(Vec::len), Some(1));

    // The journal shows both events and where each went.
    let journal = aws
        .rest(
            "events",
            Method::GET,
            "/_drplan/gateway/events",
            "application/json",
            Vec::new(),
        )
        .await
        .expect("the journal");
    let journal: Value = serde_json::from_slice(&journal.body).expect("JSON");
    let entries = journal["events"].as_array().expect("events");
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["deliveries"].as_array().map(Vec::len), Some(2));
    assert_eq!(entries[1]["deliveries"].as_array().map(Vec::len), Some(0));
    cloud.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_machines_call_drs_and_lambda_through_the_gateway() {
    let Some(cloud) = start().await else { return };
    let aws = client(&cloud);
    let fleet =
        Fleet::from_yaml("source_servers: [{count: 2, hostname: \"db-{i}\"}]").expect("valid");
    seed::seed(cloud.endpoint_url(), &fleet)
        .await
        .expect("seeding works");

    // An aws-sdk integration: moto's engine calls DRS at localhost:$MOTO_PORT, the gateway.
    let definition = json!({
        "StartAt": "Describe",
        "States": {"Describe": {
            "Type": "Task",
            "Resource": "arn:aws:states:::aws-sdk:drs:describeSourceServers",
            "Parameters": {},
            "End": true
        }}
    });
    let machine = states(
        &aws,
        "CreateStateMachine",
        json!({ "name": "describe", "definition": definition.to_string(), "roleArn": ROLE_ARN }),
    )
    .await;
    let started = states(
        &aws,
        "StartExecution",
        json!({ "stateMachineArn": machine["stateMachineArn"], "input": "{}" }),
    )
    .await;
    let execution =
        wait_for_execution_end(&aws, started["executionArn"].as_str().expect("an ARN")).await;
    assert_eq!(execution["status"], "SUCCEEDED", "{execution}");
    let output = execution["output"].as_str().expect("output");
    assert!(
        output.contains("db-1") && output.contains("db-2"),
        "{output}"
    );

    // A Lambda task reaches the gateway too; with no functions served it is not found.
    let definition = json!({
        "StartAt": "Invoke",
        "States": {"Invoke": {
            "Type": "Task",
            "Resource": "arn:aws:lambda:us-east-1:123456789012:function:drplan-missing",
            "End": true
        }}
    });
    let machine = states(
        &aws,
        "CreateStateMachine",
        json!({ "name": "invoke", "definition": definition.to_string(), "roleArn": ROLE_ARN }),
    )
    .await;
    let started = states(
        &aws,
        "StartExecution",
        json!({ "stateMachineArn": machine["stateMachineArn"], "input": "{}" }),
    )
    .await;
    let execution =
        wait_for_execution_end(&aws, started["executionArn"].as_str().expect("an ARN")).await;
    assert_eq!(execution["status"], "FAILED", "{execution}");
    let history = states(
        &aws,
        "GetExecutionHistory",
        json!({ "executionArn": started["executionArn"] }),
    )
    .await;
    assert!(
        history.to_string().contains("drplan-missing"),
        "the failure names the function: {history}"
    );
    cloud.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeding_twice_gives_the_same_cloud_and_notifications_can_be_read_back() {
    let Some(cloud) = start().await else { return };
    let fleet = Fleet::from_file(&repo_root().join("examples/fleet.yaml")).expect("the example");
    let first = seed::seed(cloud.endpoint_url(), &fleet)
        .await
        .expect("first seeding");
    let second = seed::seed(cloud.endpoint_url(), &fleet)
        .await
        .expect("second seeding");
    let server_count = fleet.servers().expect("valid").len();
    assert_eq!(first.source_servers_created, server_count);
    assert_eq!(second.source_servers_created, 0);
    assert_eq!(second.source_servers_updated, server_count);
    assert_eq!(first.vpc_id, second.vpc_id);
    assert_eq!(first.recovery_subnet_id, second.recovery_subnet_id);
    assert_eq!(first.drill_subnet_id, second.drill_subnet_id);
    assert_ne!(first.recovery_subnet_id, first.drill_subnet_id);
    assert_eq!(
        first.hosted_zones[0].zone_id,
        second.hosted_zones[0].zone_id
    );
    assert_eq!(first.topic_arn, second.topic_arn);

    let aws = client(&cloud);
    let servers = drs(&aws, "DescribeSourceServers", json!({ "maxResults": 1000 })).await;
    assert_eq!(
        servers["items"].as_array().map(Vec::len),
        Some(server_count)
    );

    let vpcs = aws
        .query(
            "ec2",
            "2016-11-15",
            "DescribeVpcs",
            &[
                ("Filter.1.Name", "tag:Name"),
                ("Filter.1.Value.1", "drplan-local"),
            ],
        )
        .await
        .expect("DescribeVpcs");
    assert_eq!(vpcs.matches("<vpcId>").count(), 1, "{vpcs}");

    // The drill subnet has its own route table with only the local route; the two
    // security groups exist once each.
    assert_eq!(first.drill_route_table_id, second.drill_route_table_id);
    assert_eq!(
        first.recovery_security_group_id,
        second.recovery_security_group_id
    );
    assert_eq!(
        first.drill_security_group_id,
        second.drill_security_group_id
    );
    assert_ne!(
        first.recovery_security_group_id,
        first.drill_security_group_id
    );
    let ec2 = |action: &'static str, params: Vec<(&'static str, String)>| {
        let aws = aws.clone();
        async move {
            let params: Vec<(&str, &str)> = params
                .iter()
                .map(|(name, value)| (*name, value.as_str()))
                .collect();
            aws.query("ec2", "2016-11-15", action, &params)
                .await
                .unwrap_or_else(|error| panic!("{action}: {error}"))
        }
    };
    let tables = ec2(
        "DescribeRouteTables",
        vec![("RouteTableId.1", first.drill_route_table_id.clone())],
    )
    .await;
    assert_eq!(
        tables.matches("<destinationCidrBlock>").count(),
        1,
        "{tables}"
    );
    assert!(tables.contains("<gatewayId>local</gatewayId>"), "{tables}");
    assert!(
        tables.contains(&format!("<subnetId>{}</subnetId>", first.drill_subnet_id)),
        "{tables}"
    );
    for name in ["drplan-recovery", "drplan-drill"] {
        let groups = ec2(
            "DescribeSecurityGroups",
            vec![
                ("Filter.1.Name", "group-name".to_string()),
                ("Filter.1.Value.1", name.to_string()),
            ],
        )
        .await;
        assert_eq!(groups.matches("<groupName>").count(), 1, "{groups}");
    }

    // One launch template per server, whatever the seedings; its default version names the
    // recovery subnet and security group.
    let templates = ec2(
        "DescribeLaunchTemplates",
        vec![("MaxResults", "200".to_string())],
    )
    .await;
    assert_eq!(
        templates.matches("<launchTemplateId>").count(),
        server_count,
        "{templates}"
    );
    let server_id = servers["items"][0]["sourceServerID"]
        .as_str()
        .expect("an ID");
    let configuration = drs(
        &aws,
        "GetLaunchConfiguration",
        json!({ "sourceServerID": server_id }),
    )
    .await;
    let template_id = configuration["ec2LaunchTemplateID"]
        .as_str()
        .expect("ec2LaunchTemplateID");
    let version = ec2(
        "DescribeLaunchTemplateVersions",
        vec![
            ("LaunchTemplateId", template_id.to_string()),
            ("LaunchTemplateVersion.1", "$Default".to_string()),
        ],
    )
    .await;
    assert!(
        version.contains(&format!(
            "<subnetId>{}</subnetId>",
            first.recovery_subnet_id
        )) && version.contains(&format!(
            "<groupId>{}</groupId>",
            first.recovery_security_group_id
        )),
        "{version}"
    );

    let zones = aws
        .rest(
            "route53",
            Method::GET,
            "/2013-04-01/hostedzone",
            "application/xml",
            Vec::new(),
        )
        .await
        .expect("ListHostedZones");
    assert_eq!(
        zones
            .body_text()
            .matches("<Name>example.com.</Name>")
            .count(),
        1
    );
    let records = aws
        .rest(
            "route53",
            Method::GET,
            &format!(
                "/2013-04-01/hostedzone/{}/rrset",
                first.hosted_zones[0].zone_id
            ),
            "application/xml",
            Vec::new(),
        )
        .await
        .expect("ListResourceRecordSets");
    assert!(
        records.body_text().contains("203.0.113.10"),
        "{}",
        records.body_text()
    );

    // One subscription, so one copy of each notification.
    aws.query(
        "sns",
        "2010-03-31",
        "Publish",
        &[
            ("TopicArn", &first.topic_arn),
            ("Message", "wave app recovered"),
        ],
    )
    .await
    .expect("Publish");
    let messages = receive_messages(&aws, &first.queue_url, 2).await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(
        messages[0]["Body"]
            .as_str()
            .is_some_and(|body| body.contains("wave app recovered"))
    );
    cloud.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_and_event_files_go_through_the_cli_functions() {
    let Some(cloud) = start().await else { return };
    let endpoint = cloud.endpoint_url().to_string();
    let fleet = Fleet::from_yaml("source_servers: [{count: 1, hostname: web-1}]").expect("valid");
    seed::seed(&endpoint, &fleet).await.expect("seeding works");

    // The blocking CLI functions run their own runtime: keep them off this one.
    let injected = tokio::task::spawn_blocking({
        let endpoint = endpoint.clone();
        move || {
            commands::inject_fault(
                &endpoint,
                &commands::Fault::Throttle {
                    operation: "DescribeJobs".to_string(),
                    count: 1,
                    retry_after_seconds: 1,
                },
            )
        }
    })
    .await
    .expect("no panic");
    injected.expect("the simulator takes the fault");
    let aws = client(&cloud);
    let throttled = aws
        .rest(
            "drs",
            Method::POST,
            "/DescribeJobs",
            "application/json",
            b"{}".to_vec(),
        )
        .await
        .expect("an answer");
    assert_eq!(throttled.status.as_u16(), 429, "{}", throttled.body_text());

    let event_file = cloud.log_dir().join("launch-result.json");
    std::fs::write(
        &event_file,
        json!({
            "version": "0", "id": "x", "detail-type": "DRS Source Server Launch Result",
            "source": "aws.drs", "account": "123456789012", "time": "2024-01-01T00:00:00Z",
            "region": "us-east-1", "resources": [], "detail": {"state": "SUCCEEDED"}
        })
        .to_string(),
    )
    .expect("writable log dir");
    let answer = tokio::task::spawn_blocking(move || {
        commands::put_event_file(&endpoint, &event_file, None, "us-east-1")
    })
    .await
    .expect("no panic")
    .expect("PutEvents through the gateway");
    assert_eq!(answer["FailedEntryCount"], 0, "{answer}");
    cloud.shutdown().await;
}

fn assert_all_gone(pids: &[u32]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while pids
        .iter()
        .any(|pid| process_alive(*pid) || process_group_alive(*pid))
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    for pid in pids {
        assert!(
            !process_alive(*pid),
            "process {pid} outlived the local cloud"
        );
        assert!(
            !process_group_alive(*pid),
            "process group {pid} outlived the local cloud"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_child_is_gone_after_shutdown() {
    let Some(cloud) = start().await else { return };
    let pids = cloud.child_pids();
    assert!(!pids.is_empty());
    assert!(pids.iter().all(|pid| process_alive(*pid)));
    cloud.shutdown().await;
    assert_all_gone(&pids);
}

#[test]
fn every_child_is_gone_after_a_test_panics() {
    let Some(options) = stack_options() else {
        return;
    };
    let (pids_sender, pids_receiver) = std::sync::mpsc::channel();
    let failing_test = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async move {
            let cloud = LocalCloud::start(options)
                .await
                .expect("the local cloud starts");
            pids_sender
                .send(cloud.child_pids())
                .expect("the test listens");
            panic!("a failing test, with the local cloud running");
        });
    });
    assert!(failing_test.join().is_err(), "the thread panicked");
    let pids = pids_receiver
        .recv()
        .expect("the pids were sent before the panic");
    assert!(!pids.is_empty());
    assert_all_gone(&pids);
}
