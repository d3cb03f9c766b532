//! Helpers shared by the simulator's integration tests: start a simulator on a free
//! loopback port, build an `aws-sdk-drs` client for it, and call the control API.

#![allow(dead_code)] // each test binary uses its own subset

use std::time::{Duration, Instant};

use aws_sdk_drs::config::retry::RetryConfig;
use aws_sdk_drs::config::{BehaviorVersion, Credentials, Region};
use drplan_drs_sim::{SimConfig, SimHandle};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

pub mod moto;

/// 0.001 turns a realistic 8-minute launch into about half a second.
pub const FAST: f64 = 0.001;

pub async fn start(config: SimConfig) -> SimHandle {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    drplan_drs_sim::spawn(listener, config)
        .await
        .expect("start the simulator")
}

pub async fn start_fast() -> SimHandle {
    start(SimConfig {
        time_scale: FAST,
        ..SimConfig::default()
    })
    .await
}

/// Jobs that stay PENDING for the length of a test (realistic timing).
pub async fn start_slow() -> SimHandle {
    start(SimConfig::default()).await
}

fn client_with(sim: &SimHandle, retry: RetryConfig) -> aws_sdk_drs::Client {
    client_in_region(sim, retry, "us-east-1")
}

/// A client of the simulator's DRS in `region` (it serves every Region it is asked for).
pub fn drs_client_in(sim: &SimHandle, region: &str) -> aws_sdk_drs::Client {
    client_in_region(sim, RetryConfig::standard(), region)
}

fn client_in_region(sim: &SimHandle, retry: RetryConfig, region: &str) -> aws_sdk_drs::Client {
    let config = aws_sdk_drs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .credentials_provider(Credentials::new(
            "test",
            "test",
            None,
            None,
            "drs-sim-tests",
        ))
        .endpoint_url(format!("http://{}", sim.addr()))
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .retry_config(retry)
        .build();
    aws_sdk_drs::Client::from_conf(config)
}

/// An SDK client as drplan configures it (standard retries).
pub fn drs_client(sim: &SimHandle) -> aws_sdk_drs::Client {
    client_with(sim, RetryConfig::standard())
}

/// An SDK client that surfaces every error, throttling included, at once.
pub fn drs_client_without_retries(sim: &SimHandle) -> aws_sdk_drs::Client {
    client_with(sim, RetryConfig::disabled())
}

pub struct RawResponse {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: Value,
}

/// A plain HTTP call to the simulator (control API, or DRS without the SDK).
pub async fn http(sim: &SimHandle, method: &str, path: &str, body: Option<Value>) -> RawResponse {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let request = hyper::Request::builder()
        .method(method)
        .uri(format!("http://{}{path}", sim.addr()))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(
            body.map(|body| body.to_string()).unwrap_or_default(),
        )))
        .expect("request");
    let response = client.request(request).await.expect("simulator answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).expect("JSON body")
    };
    RawResponse {
        status,
        headers,
        body,
    }
}

pub async fn control_post(sim: &SimHandle, path: &str, body: Value) -> Value {
    let response = http(sim, "POST", path, Some(body)).await;
    assert_eq!(response.status, 200, "POST {path}: {}", response.body);
    response.body
}

pub async fn control_get(sim: &SimHandle, path: &str) -> Value {
    let response = http(sim, "GET", path, None).await;
    assert_eq!(response.status, 200, "GET {path}: {}", response.body);
    response.body
}

/// Seeds `count` servers named `{prefix}-{i:03}` with `tags`; returns their IDs in order.
pub async fn seed(sim: &SimHandle, prefix: &str, count: usize, tags: Value) -> Vec<String> {
    let servers: Vec<Value> = (0..count)
        .map(|i| {
            serde_json::json!({
                "hostname": format!("{prefix}-{i:03}"),
                "tags": tags,
                "replication": {"state": "CONTINUOUS", "lag_seconds": 0},
            })
        })
        .collect();
    let created = control_post(
        sim,
        "/_drplan/source-servers",
        serde_json::json!({ "servers": servers }),
    )
    .await;
    created["servers"]
        .as_array()
        .expect("servers list")
        .iter()
        .map(|server| server["source_server_id"].as_str().expect("id").to_owned())
        .collect()
}

/// Polls DescribeJobs until the job is COMPLETED (or panics after `limit`).
pub async fn wait_for_job(
    client: &aws_sdk_drs::Client,
    job_id: &str,
    limit: Duration,
) -> aws_sdk_drs::types::Job {
    let deadline = Instant::now() + limit;
    loop {
        let jobs = client
            .describe_jobs()
            .filters(
                aws_sdk_drs::types::DescribeJobsRequestFilters::builder()
                    .job_ids(job_id)
                    .build(),
            )
            .send()
            .await
            .expect("DescribeJobs");
        let job = jobs.items().first().cloned().expect("the job exists");
        if job.status() == Some(&aws_sdk_drs::types::JobStatus::Completed) {
            return job;
        }
        assert!(
            Instant::now() < deadline,
            "job {job_id} still {:?} after {limit:?}",
            job.status()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// StartRecovery of `ids` (a drill when `is_drill`): the job's ID.
pub async fn start_recovery_job(
    client: &aws_sdk_drs::Client,
    ids: &[String],
    is_drill: bool,
) -> String {
    client
        .start_recovery()
        .set_source_servers(Some(recovery_request(ids)))
        .is_drill(is_drill)
        .send()
        .await
        .expect("StartRecovery")
        .job()
        .expect("a job")
        .job_id()
        .to_owned()
}

pub fn recovery_request(
    ids: &[String],
) -> Vec<aws_sdk_drs::types::StartRecoveryRequestSourceServer> {
    ids.iter()
        .map(|id| {
            aws_sdk_drs::types::StartRecoveryRequestSourceServer::builder()
                .source_server_id(id)
                .build()
                .expect("sourceServerID is set")
        })
        .collect()
}
