//! DRS events on the wire: what the simulator sends to an EventBridge PutEvents endpoint
//! (here a recording stand-in on loopback; the moto test covers a real EventBridge).

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::routing::post;
use common::*;
use drplan_drs_sim::SimConfig;
use serde_json::{Value, json};

#[derive(Debug, Clone)]
struct Received {
    target: String,
    content_type: String,
    authorization: String,
    body: Value,
}

/// A PutEvents endpoint that records each request and answers as EventBridge does.
async fn start_recording_eventbridge() -> (
    String,
    Arc<Mutex<Vec<Received>>>,
    tokio::task::JoinHandle<()>,
) {
    let received = Arc::new(Mutex::new(Vec::new()));
    let store = received.clone();
    let app = Router::new().route(
        "/",
        post(move |headers: HeaderMap, body: Bytes| {
            let store = store.clone();
            async move {
                let header = |name: &str| {
                    headers
                        .get(name)
                        .and_then(|value| value.to_str().ok())
                        .unwrap_or_default()
                        .to_owned()
                };
                let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                store.lock().expect("lock").push(Received {
                    target: header("x-amz-target"),
                    content_type: header("content-type"),
                    authorization: header("authorization"),
                    body,
                });
                r#"{"FailedEntryCount":0,"Entries":[{"EventId":"11111111-2222-3333-4444-555555555555"}]}"#
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (endpoint, received, server)
}

#[tokio::test]
async fn launch_results_and_stalls_are_put_on_eventbridge_in_the_documented_shape() {
    let (endpoint, received, receiver_task) = start_recording_eventbridge().await;
    let sim = start(SimConfig {
        time_scale: FAST,
        events_endpoint: Some(endpoint),
        ..SimConfig::default()
    })
    .await;
    let ids = seed(&sim, "app", 2, json!({})).await;
    control_post(
        &sim,
        "/_drplan/faults",
        json!([
            {"kind": "fail_launch", "servers": [ids[1]], "raw_error": "boom"},
            {"kind": "stall_replication", "servers": ["app-000"]}
        ]),
    )
    .await;
    let client = drs_client(&sim);
    let job_id = start_recovery_job(&client, &ids, true).await;
    wait_for_job(&client, &job_id, Duration::from_secs(30)).await;

    let received = received.lock().expect("lock").clone();
    receiver_task.abort();
    assert_eq!(
        received.len(),
        3,
        "one stall and two launch results: {received:#?}"
    );
    for request in &received {
        assert_eq!(request.target, "AWSEvents.PutEvents");
        assert_eq!(request.content_type, "application/x-amz-json-1.1");
        assert!(
            request
                .authorization
                .starts_with("AWS4-HMAC-SHA256 Credential=")
                && request
                    .authorization
                    .contains("/us-east-1/events/aws4_request"),
            "{}",
            request.authorization
        );
        assert_eq!(request.body["Entries"].as_array().map(Vec::len), Some(1));
    }
    let entries: Vec<&Value> = received.iter().map(|r| &r.body["Entries"][0]).collect();
    let detail = |entry: &Value| -> Value {
        serde_json::from_str(entry["Detail"].as_str().expect("Detail is a JSON string"))
            .expect("Detail parses")
    };
    let arn = |id: &str| format!("arn:aws:drs:us-east-1:123456789012:source-server/{id}");

    let stall = entries
        .iter()
        .find(|entry| entry["DetailType"] == "DRS Source Server Data Replication Stalled Change")
        .expect("stall event");
    assert_eq!(stall["Source"], "aws.drs");
    assert_eq!(stall["Resources"], json!([arn(&ids[0])]));
    assert_eq!(detail(stall), json!({"state": "STALLED"}));

    let mut results: Vec<(Value, Value)> = entries
        .iter()
        .filter(|entry| entry["DetailType"] == "DRS Source Server Launch Result")
        .map(|entry| (entry["Resources"].clone(), detail(entry)))
        .collect();
    results.sort_by_key(|(resources, _)| resources.to_string());
    let mut expected = vec![
        (
            json!([arn(&ids[0])]),
            json!({"state": "SUCCEEDED", "job-id": job_id, "is-drill": "TRUE"}),
        ),
        (
            json!([arn(&ids[1])]),
            json!({"state": "FAILED", "job-id": job_id, "is-drill": "TRUE"}),
        ),
    ];
    expected.sort_by_key(|(resources, _)| resources.to_string());
    assert_eq!(results, expected);

    let emitted = control_get(&sim, "/_drplan/events").await;
    assert!(
        emitted["events"]
            .as_array()
            .expect("events")
            .iter()
            .all(|event| event["delivered"] == true),
        "{emitted}"
    );
}
