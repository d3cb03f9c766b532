//! Launched servers become real EC2 instances in moto, and termination removes them.
//!
//! Needs a moto server executable in DRPLAN_MOTO_SERVER (e.g. a venv's `moto_server`, moto
//! 5.2.5). Without it the test is skipped with a printed reason, unless DRPLAN_REQUIRE_MOTO
//! is set, in which case it fails. The moto process is killed by its PID when the guard
//! drops, also when the test panics.

mod common;

use std::io::Write;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_drs::types::{JobLog, JobLogEvent, LaunchStatus};
use common::*;
use drplan_drs_sim::SimConfig;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::json;

struct MotoServer {
    child: Child,
    endpoint: String,
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        // Child::kill signals this child's PID only.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_loopback_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free loopback port")
}

async fn start_moto() -> Option<MotoServer> {
    let Some(executable) = std::env::var_os("DRPLAN_MOTO_SERVER") else {
        assert!(
            std::env::var_os("DRPLAN_REQUIRE_MOTO").is_none(),
            "DRPLAN_REQUIRE_MOTO is set but DRPLAN_MOTO_SERVER (path of moto_server) is not"
        );
        // Straight to stderr: the test harness captures eprintln! of passing tests, and a
        // skip must be visible.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: set DRPLAN_MOTO_SERVER to a moto_server executable (pip install 'moto[server]==5.2.5') to run this test"
        );
        return None;
    };
    let port = free_loopback_port();
    let child = Command::new(&executable)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|error| panic!("start {executable:?}: {error}"));
    let moto = MotoServer {
        child,
        endpoint: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            Instant::now() < deadline,
            "moto did not listen on {port} within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Some(moto)
}

/// One EC2 Query API call to moto; returns the XML reply.
async fn ec2(moto: &MotoServer, params: &[(&str, &str)]) -> String {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params.iter().copied())
        .extend_pairs([("Version", "2016-11-15")])
        .finish();
    let request = hyper::Request::post(format!("{}/", moto.endpoint))
        .header("content-type", "application/x-www-form-urlencoded")
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=0",
        )
        .body(Full::new(Bytes::from(body)))
        .expect("request");
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let response = client.request(request).await.expect("moto answers");
    assert!(
        response.status().is_success(),
        "EC2 {params:?}: {}",
        response.status()
    );
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn first(xml: &str, tag: &str) -> String {
    let open = format!("<{tag}>");
    let start = xml
        .find(&open)
        .map(|at| at + open.len())
        .unwrap_or_else(|| panic!("no <{tag}> in {xml}"));
    let end = xml[start..]
        .find(&format!("</{tag}>"))
        .expect("closing tag");
    xml[start..start + end].to_owned()
}

/// Subnet, state and tags of an instance, from DescribeInstances.
async fn describe_instance(
    moto: &MotoServer,
    instance_id: &str,
) -> (String, String, BTreeMap<String, String>) {
    let xml = ec2(
        moto,
        &[
            ("Action", "DescribeInstances"),
            ("InstanceId.1", instance_id),
        ],
    )
    .await;
    let subnet = first(&xml, "subnetId");
    let state = first(&first(&xml, "instanceState"), "name");
    let tag_set = first(&xml, "tagSet");
    let tags = tag_set
        .split("<item>")
        .skip(1)
        .map(|item| (first(item, "key"), first(item, "value")))
        .collect();
    (subnet, state, tags)
}

#[tokio::test]
async fn launches_are_real_instances_in_moto_and_terminate_removes_them() {
    let Some(moto) = start_moto().await else {
        return;
    };
    let vpc = first(
        &ec2(
            &moto,
            &[("Action", "CreateVpc"), ("CidrBlock", "10.20.0.0/16")],
        )
        .await,
        "vpcId",
    );
    let recovery_subnet = first(
        &ec2(
            &moto,
            &[
                ("Action", "CreateSubnet"),
                ("VpcId", &vpc),
                ("CidrBlock", "10.20.1.0/24"),
            ],
        )
        .await,
        "subnetId",
    );
    let drill_subnet = first(
        &ec2(
            &moto,
            &[
                ("Action", "CreateSubnet"),
                ("VpcId", &vpc),
                ("CidrBlock", "10.20.2.0/24"),
            ],
        )
        .await,
        "subnetId",
    );

    let sim = start(SimConfig {
        time_scale: FAST,
        ec2_endpoint: Some(moto.endpoint.clone()),
        events_endpoint: Some(moto.endpoint.clone()),
        ..SimConfig::default()
    })
    .await;
    let created = control_post(
        &sim,
        "/_drplan/source-servers",
        json!([
            {"hostname": "db-001", "tags": {"dr:plan": "shop", "dr:wave": "db"},
             "launch_subnet_id": recovery_subnet, "drill_subnet_id": drill_subnet},
            {"hostname": "app-001", "tags": {"dr:plan": "shop"},
             "launch_subnet_id": "subnet-0000000000000dead"}
        ]),
    )
    .await;
    let ids: Vec<String> = created["servers"]
        .as_array()
        .expect("servers")
        .iter()
        .map(|server| server["source_server_id"].as_str().expect("id").to_owned())
        .collect();
    let client = drs_client(&sim);

    // A drill: db-001 lands in the drill subnet; app-001's subnet does not exist in moto,
    // so its launch fails with EC2's own error.
    let drill = client
        .start_recovery()
        .set_source_servers(Some(recovery_request(&ids)))
        .is_drill(true)
        .send()
        .await
        .expect("drill");
    let drill_job = wait_for_job(
        &client,
        drill.job().expect("job").job_id(),
        Duration::from_secs(60),
    )
    .await;
    let status_of = |id: &str| {
        drill_job
            .participating_servers()
            .iter()
            .find(|participant| participant.source_server_id() == Some(id))
            .and_then(|participant| participant.launch_status().cloned())
    };
    assert_eq!(status_of(&ids[0]), Some(LaunchStatus::Launched));
    assert_eq!(status_of(&ids[1]), Some(LaunchStatus::Failed));
    let log = client
        .describe_job_log_items()
        .job_id(drill_job.job_id())
        .send()
        .await
        .expect("log");
    let raw_error = log
        .items()
        .iter()
        .find(|item| item.event() == Some(&JobLogEvent::LaunchFailed))
        .and_then(JobLog::event_data)
        .and_then(|data| data.raw_error())
        .expect("rawError");
    assert!(
        raw_error.contains("InvalidSubnetID.NotFound"),
        "{raw_error}"
    );

    let instances = client
        .describe_recovery_instances()
        .send()
        .await
        .expect("instances");
    assert_eq!(instances.items().len(), 1);
    let drill_instance = instances.items()[0]
        .ec2_instance_id()
        .expect("ec2 id")
        .to_owned();
    let (subnet, state, tags) = describe_instance(&moto, &drill_instance).await;
    assert_eq!(subnet, drill_subnet, "drills launch in the drill subnet");
    assert!(state == "running" || state == "pending", "{state}");
    assert_eq!(tags.get("dr:plan").map(String::as_str), Some("shop"));
    assert_eq!(tags.get("dr:wave").map(String::as_str), Some("db"));
    assert_eq!(tags.get("drs:source-server"), Some(&ids[0]));
    assert_eq!(tags.get("Name").map(String::as_str), Some("db-001"));

    // A recovery replaces the drill instance: the new one is in the recovery subnet and the
    // drill instance is terminated in moto.
    let recovery = client
        .start_recovery()
        .set_source_servers(Some(recovery_request(&ids[..1])))
        .send()
        .await
        .expect("recovery");
    wait_for_job(
        &client,
        recovery.job().expect("job").job_id(),
        Duration::from_secs(60),
    )
    .await;
    let instances = client
        .describe_recovery_instances()
        .send()
        .await
        .expect("instances");
    assert_eq!(instances.items().len(), 1);
    let recovery_instance = instances.items()[0]
        .ec2_instance_id()
        .expect("ec2 id")
        .to_owned();
    assert_ne!(recovery_instance, drill_instance);
    assert_eq!(
        instances.items()[0].recovery_instance_id(),
        Some(recovery_instance.as_str())
    );
    let (subnet, _, _) = describe_instance(&moto, &recovery_instance).await;
    assert_eq!(subnet, recovery_subnet);
    let (_, drill_state, _) = describe_instance(&moto, &drill_instance).await;
    assert_eq!(drill_state, "terminated");

    let terminate = client
        .terminate_recovery_instances()
        .recovery_instance_ids(&recovery_instance)
        .send()
        .await
        .expect("terminate");
    wait_for_job(
        &client,
        terminate.job().expect("job").job_id(),
        Duration::from_secs(60),
    )
    .await;
    let (_, state, _) = describe_instance(&moto, &recovery_instance).await;
    assert_eq!(state, "terminated");
    assert!(
        client
            .describe_recovery_instances()
            .send()
            .await
            .expect("instances")
            .items()
            .is_empty()
    );

    // moto's EventBridge took every launch-result event.
    let events = control_get(&sim, "/_drplan/events").await;
    let events = events["events"].as_array().expect("events");
    assert_eq!(
        events.len(),
        3,
        "two results in the drill, one in the recovery"
    );
    assert!(
        events.iter().all(|event| event["delivered"] == true),
        "{events:?}"
    );
}
