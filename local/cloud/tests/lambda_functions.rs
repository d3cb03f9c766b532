//! `cargo lambda watch` behind the gateway, with a real Lambda function (the fixture in
//! tests/fixtures/echo-function). Skipped with a printed reason when the venv is missing,
//! unless DRPLAN_REQUIRE_LOCAL_CLOUD is set.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use drplan_local::process::{process_alive, process_group_alive};
use drplan_local::upstream::{AwsClient, HttpClient};
use drplan_local::{Functions, LocalCloud, LocalCloudOptions, tools};
use hyper::Method;
use serde_json::{Value, json};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

const FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:drplan-test-echo";

fn options() -> Option<LocalCloudOptions> {
    let root = repo_root();
    let missing = tools::moto_server(&root)
        .and_then(|_| tools::cargo_lambda(&root))
        .err();
    if let Some(missing) = missing {
        if std::env::var_os("DRPLAN_REQUIRE_LOCAL_CLOUD").is_some() {
            panic!("DRPLAN_REQUIRE_LOCAL_CLOUD is set but the local cloud cannot start: {missing}");
        }
        eprintln!("SKIPPED: {missing}");
        return None;
    }
    Some(LocalCloudOptions {
        repo_root: Some(root),
        functions: Functions::Manifest(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/echo-function"),
        ),
        ..LocalCloudOptions::default()
    })
}

async fn invoke(
    aws: &AwsClient,
    function: &str,
    payload: &Value,
) -> drplan_local::upstream::Answer {
    let encoded: String =
        percent_encoding::utf8_percent_encode(function, percent_encoding::NON_ALPHANUMERIC)
            .collect();
    aws.rest(
        "lambda",
        Method::POST,
        &format!("/2015-03-31/functions/{encoded}/invocations"),
        "application/json",
        payload.to_string().into_bytes(),
    )
    .await
    .expect("Invoke through the gateway")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn functions_answer_lambda_invoke_and_state_machine_tasks() {
    let Some(options) = options() else { return };
    let cloud = LocalCloud::start(options)
        .await
        .expect("the local cloud starts");
    let aws = AwsClient::new(HttpClient::new(), cloud.endpoint_url(), "us-east-1");

    // The first invocation compiles the function; later ones are quick.
    let answer = invoke(&aws, FUNCTION_ARN, &json!({ "plan": "shop" })).await;
    assert_eq!(answer.status.as_u16(), 200, "{}", answer.body_text());
    assert!(answer.headers.contains_key("x-amzn-requestid"));
    assert!(!answer.headers.contains_key("x-amz-function-error"));
    let body: Value = serde_json::from_slice(&answer.body).expect("JSON");
    assert_eq!(body, json!({ "echo": { "plan": "shop" } }));

    // A function error is Lambda's shape: 200, X-Amz-Function-Error, the error document.
    let answer = invoke(&aws, "drplan-test-echo", &json!({ "fail": true })).await;
    assert_eq!(answer.status.as_u16(), 200, "{}", answer.body_text());
    assert_eq!(
        answer
            .headers
            .get("x-amz-function-error")
            .map(|value| value.as_bytes()),
        Some(&b"Unhandled"[..])
    );
    let error: Value = serde_json::from_slice(&answer.body).expect("JSON");
    assert!(
        error["errorMessage"]
            .as_str()
            .is_some_and(|message| message.contains("asked for a failure")),
        "{error}"
    );

    // moto's Step Functions engine reaches the function through the gateway.
    let definition = json!({
        "StartAt": "Echo",
        "States": {"Echo": {"Type": "Task", "Resource": FUNCTION_ARN, "End": true}}
    });
    let machine = aws
        .json(
            "states",
            "1.0",
            "AWSStepFunctions",
            "CreateStateMachine",
            &json!({
                "name": "echo",
                "definition": definition.to_string(),
                "roleArn": "arn:aws:iam::123456789012:role/drplan-local",
            }),
        )
        .await
        .expect("CreateStateMachine");
    let started = aws
        .json(
            "states",
            "1.0",
            "AWSStepFunctions",
            "StartExecution",
            &json!({ "stateMachineArn": machine["stateMachineArn"], "input": "{\"wave\": \"app\"}" }),
        )
        .await
        .expect("StartExecution");
    let deadline = Instant::now() + Duration::from_secs(60);
    let execution = loop {
        let execution = aws
            .json(
                "states",
                "1.0",
                "AWSStepFunctions",
                "DescribeExecution",
                &json!({ "executionArn": started["executionArn"] }),
            )
            .await
            .expect("DescribeExecution");
        if execution["status"] != "RUNNING" || Instant::now() > deadline {
            break execution;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(execution["status"], "SUCCEEDED", "{execution}");
    let output: Value =
        serde_json::from_str(execution["output"].as_str().expect("output")).expect("JSON");
    assert_eq!(output, json!({ "echo": { "wave": "app" } }));

    // Stopping the cloud stops cargo lambda watch and the function processes it started.
    let pids = cloud.child_pids();
    assert_eq!(pids.len(), 2, "moto and cargo lambda watch");
    cloud.shutdown().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while pids.iter().any(|pid| process_group_alive(*pid)) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for pid in pids {
        assert!(
            !process_alive(pid),
            "process {pid} outlived the local cloud"
        );
        assert!(
            !process_group_alive(pid),
            "process group {pid} outlived the local cloud"
        );
    }
}
