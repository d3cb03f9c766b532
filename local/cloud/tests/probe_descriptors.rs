//! The local cloud's open file descriptors stay bounded however many instances are
//! launched over time: the simulator's probe stand-ins open only the ports a stored
//! plan's health checks probe, on the instances of the waves that probe them, and close
//! with their instance whether DRS terminates it, a new launch replaces it, or it is
//! terminated in EC2 directly. Hundreds of instances through the SDK, via the gateway, in
//! rounds. Its own test binary, so that no other test's sockets blur the counts.
//!
//! Skipped with a printed reason when moto is not installed, unless
//! DRPLAN_REQUIRE_LOCAL_CLOUD is set. Every connection goes to 127.0.0.0/8.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use aws_sdk_drs::types::{
    DescribeJobsRequestFilters, Ec2InstanceState, JobStatus, StartRecoveryRequestSourceServer,
};
use drplan_local::seed::{self, Fleet};
use drplan_local::upstream::{AwsClient, HttpClient};
use drplan_local::{Functions, LocalCloud, LocalCloudOptions, OpenDescriptors, stack, tools};
use hyper::Method;
use serde_json::Value;

/// Servers per tier; one launch job takes both tiers (DRS's limit is 100 a job).
const PER_TIER: usize = 50;
const SERVERS: usize = 2 * PER_TIER;
/// How each round ends; every round launches all servers again.
const ROUND_ENDINGS: [Ending; 5] = [
    Ending::DrsTerminate,
    Ending::Ec2Terminate,
    Ending::Replaced,
    Ending::Ec2Terminate,
    Ending::DrsTerminate,
];
/// Descriptors that come and go with connection pools (the SDK's, the gateway's, the
/// simulator's), not with instances: a dozen or so. One round's leak (a listener per
/// instance) is 100, and shows in the next round.
const SLACK: usize = 50;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Ending {
    /// TerminateRecoveryInstances through DRS.
    DrsTerminate,
    /// TerminateInstances through EC2, outside DRS.
    Ec2Terminate,
    /// Left running: the next round's launch replaces them.
    Replaced,
}

const FLEET: &str = r#"
region: us-east-1
source_servers:
  - count: 50
    hostname: "fd-db-{i:03}"
    tags: { "dr:plan": "fd", "tier": "db" }
    replication: { state: CONTINUOUS, lag_seconds: 0 }
  - count: 50
    hostname: "fd-web-{i:03}"
    tags: { "dr:plan": "fd", "tier": "web" }
    replication: { state: CONTINUOUS, lag_seconds: 0 }
network:
  name: fd
  vpc_cidr: 10.93.0.0/16
  # /20: room for every instance of every round (moto keeps terminated ones' addresses).
  recovery_subnet_cidr: 10.93.16.0/20
  drill_subnet_cidr: 10.93.32.0/20
"#;

/// The database wave probes 5432, the web wave HTTPS on 8443; nothing else is probed.
const PLAN: &str = r#"
name: fd
rto_minutes: 60
selector: { "dr:plan": fd }
waves:
  - name: db
    selector: { tier: db }
    health: { checks: [ec2-status, "tcp:5432"] }
  - name: web
    selector: { tier: web }
    depends_on: [db]
    health: { checks: [ec2-status, "https:8443/health"] }
"#;

async fn start() -> Option<LocalCloud> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    if let Err(missing) = tools::moto_server(&root) {
        assert!(
            std::env::var_os("DRPLAN_REQUIRE_LOCAL_CLOUD").is_none(),
            "DRPLAN_REQUIRE_LOCAL_CLOUD is set but the local cloud cannot start: {missing}"
        );
        eprintln!("SKIPPED: {missing}");
        return None;
    }
    let options = LocalCloudOptions {
        repo_root: Some(root),
        functions: Functions::None,
        time_scale: 0.001,
        ..LocalCloudOptions::default()
    };
    Some(
        LocalCloud::start(options)
            .await
            .unwrap_or_else(|error| panic!("the local cloud did not start: {error}")),
    )
}

/// Whether a TCP connection to the stand-in's port is accepted.
async fn accepts(address: Ipv4Addr, port: u16) -> bool {
    assert!(address.is_loopback(), "probes go to loopback only");
    tokio::net::TcpStream::connect(SocketAddr::from((address, port)))
        .await
        .is_ok()
}

/// Whether the port refuses connections within a few seconds: a listener closes when
/// the runtime drops its accept loop, just after the instance stops.
async fn refuses_soon(address: Ipv4Addr, port: u16) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while accepts(address, port).await {
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

/// Launches every server (one drill job) and waits for the job to complete.
async fn launch_all(drs: &aws_sdk_drs::Client, ids: &[String]) {
    let sources = ids
        .iter()
        .map(|id| {
            StartRecoveryRequestSourceServer::builder()
                .source_server_id(id)
                .build()
                .expect("sourceServerID is set")
        })
        .collect();
    let job = drs
        .start_recovery()
        .set_source_servers(Some(sources))
        .is_drill(true)
        .send()
        .await
        .expect("StartRecovery")
        .job()
        .map(|job| job.job_id().to_owned())
        .expect("a job");
    wait_for_job(drs, &job).await;
}

async fn wait_for_job(drs: &aws_sdk_drs::Client, job_id: &str) {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let jobs = drs
            .describe_jobs()
            .filters(
                DescribeJobsRequestFilters::builder()
                    .job_ids(job_id)
                    .build(),
            )
            .send()
            .await
            .expect("DescribeJobs");
        if jobs.items().first().and_then(|job| job.status()) == Some(&JobStatus::Completed) {
            return;
        }
        assert!(Instant::now() < deadline, "job {job_id} did not complete");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// (EC2 instance ID, stand-in address, hostname, EC2 state) of every recovery instance,
/// as DRS describes them.
async fn recovery_instances(
    drs: &aws_sdk_drs::Client,
) -> Vec<(String, Ipv4Addr, String, Option<Ec2InstanceState>)> {
    let mut found = Vec::new();
    let mut pages = drs.describe_recovery_instances().into_paginator().send();
    while let Some(page) = pages.next().await {
        for instance in page.expect("DescribeRecoveryInstances").items() {
            let properties = instance.recovery_instance_properties();
            let private: Ipv4Addr = properties
                .and_then(|properties| properties.network_interfaces().first())
                .and_then(|interface| interface.ips().first())
                .and_then(|ip| ip.parse().ok())
                .expect("a private IPv4");
            let [_, b, c, d] = private.octets();
            let hostname = properties
                .and_then(|properties| properties.identification_hints())
                .and_then(|hints| hints.hostname())
                .unwrap_or_default();
            found.push((
                instance.ec2_instance_id().unwrap_or_default().to_owned(),
                Ipv4Addr::new(127, b, c, d),
                hostname.to_owned(),
                instance.ec2_instance_state().cloned(),
            ));
        }
    }
    found
}

async fn control(cloud: &LocalCloud, method: Method, path: &str) -> Value {
    let aws = AwsClient::new(HttpClient::new(), cloud.endpoint_url(), cloud.region());
    seed::control_call(&aws, method, path, None)
        .await
        .unwrap_or_else(|error| panic!("{path}: {error}"))
}

fn descriptors(cloud: &LocalCloud) -> OpenDescriptors {
    cloud
        .open_descriptors()
        .unwrap_or_else(|error| panic!("counting descriptors: {error}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn descriptors_stay_bounded_over_hundreds_of_launches() {
    let Some(cloud) = start().await else {
        return;
    };
    let endpoint = cloud.endpoint_url().to_owned();
    let fleet = Fleet::from_yaml(FLEET).expect("a valid fleet");
    seed::seed(&endpoint, &fleet)
        .await
        .expect("the fleet seeds");
    let config = stack::sdk_config(&endpoint, cloud.region()).await;
    let drs = aws_sdk_drs::Client::new(&config);
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    );

    // The plan is stored as drplan stores plans; the gateway derives the probes from it.
    s3.create_bucket()
        .bucket(stack::BUCKET)
        .send()
        .await
        .expect("CreateBucket");
    stack::put_plan(&endpoint, cloud.region(), "fd", PLAN.to_owned())
        .await
        .expect("the plan is stored");
    let sets = control(&cloud, Method::GET, "/_drplan/probe-ports").await;
    let probes = &sets["sets"]["plan:fd"];
    assert_eq!(probes[0]["ports"], serde_json::json!([5432]), "{sets}");
    assert_eq!(probes[1]["tls_ports"], serde_json::json!([8443]), "{sets}");

    let state = control(&cloud, Method::GET, "/_drplan/state").await;
    let ids: Vec<String> = state["servers"]
        .as_array()
        .expect("servers")
        .iter()
        .filter_map(|server| server["source_server_id"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(ids.len(), SERVERS);

    let baseline = descriptors(&cloud);
    assert_eq!(baseline.probe_listeners, 0);
    println!("before any launch: {baseline:?}");
    let mut launched = 0;
    let mut peaks = Vec::new();
    let mut lows = Vec::new();
    for (round, ending) in ROUND_ENDINGS.into_iter().enumerate() {
        launch_all(&drs, &ids).await;
        launched += SERVERS;
        let running = recovery_instances(&drs).await;
        assert_eq!(running.len(), SERVERS, "round {round}");

        // One listener per instance: its wave's one probed port, nothing else.
        let peak = descriptors(&cloud);
        assert_eq!(peak.probe_listeners, SERVERS, "round {round}: {peak:?}");
        let db = running
            .iter()
            .find(|(_, _, hostname, _)| hostname.starts_with("fd-db-"))
            .expect("a database instance");
        let web = running
            .iter()
            .find(|(_, _, hostname, _)| hostname.starts_with("fd-web-"))
            .expect("a web instance");
        assert!(accepts(db.1, 5432).await, "round {round}: db serves 5432");
        assert!(accepts(web.1, 8443).await, "round {round}: web serves 8443");
        for (address, port) in [(db.1, 8443), (web.1, 5432), (db.1, 22), (web.1, 80)] {
            assert!(
                !accepts(address, port).await,
                "round {round}: {address}:{port} is probed by no health check"
            );
        }
        let listeners =
            control(&cloud, Method::GET, "/_drplan/state").await["probe_listeners"].clone();
        for listener in listeners.as_array().expect("listeners") {
            let ports = &listener["ports"];
            assert!(
                *ports == serde_json::json!([5432]) || *ports == serde_json::json!([8443]),
                "{listener}"
            );
            assert_eq!(
                listener["public_ports"],
                serde_json::json!([]),
                "{listener}"
            );
        }

        let ec2_ids: Vec<String> = running.iter().map(|(id, ..)| id.clone()).collect();
        match ending {
            Ending::DrsTerminate => {
                let job = drs
                    .terminate_recovery_instances()
                    .set_recovery_instance_ids(Some(ec2_ids.clone()))
                    .send()
                    .await
                    .expect("TerminateRecoveryInstances")
                    .job()
                    .map(|job| job.job_id().to_owned())
                    .expect("a job");
                wait_for_job(&drs, &job).await;
            }
            Ending::Ec2Terminate => {
                ec2.terminate_instances()
                    .set_instance_ids(Some(ec2_ids.clone()))
                    .send()
                    .await
                    .expect("TerminateInstances");
                // DRS keeps them, and says what EC2 did.
                let after = recovery_instances(&drs).await;
                let still_running = after
                    .iter()
                    .filter(|(.., state)| state.as_ref() != Some(&Ec2InstanceState::Terminated))
                    .count();
                assert_eq!(
                    (after.len(), still_running),
                    (SERVERS, 0),
                    "round {round}: instances kept, and those not TERMINATED"
                );
            }
            Ending::Replaced => {}
        }
        if ending != Ending::Replaced {
            // The sockets close a moment after the termination is known, when the
            // runtime drops their accept loops; then they are counted.
            assert!(
                refuses_soon(db.1, 5432).await,
                "round {round}: a terminated instance still serves"
            );
        }
        let low = descriptors(&cloud);
        let expected = if ending == Ending::Replaced {
            SERVERS
        } else {
            0
        };
        assert_eq!(low.probe_listeners, expected, "round {round}: {low:?}");
        println!(
            "round {round} ({ending:?}), {launched} instances launched so far: at the peak {peak:?}, after {low:?}"
        );
        peaks.push(peak);
        lows.push(low);
    }

    // Neither the cloud's process nor moto grows with the instances launched over time.
    for (round, (peak, low)) in peaks.iter().zip(&lows).enumerate() {
        assert!(
            peak.this_process <= peaks[0].this_process + SLACK,
            "round {round}: {} descriptors at the peak, {} in the first round",
            peak.this_process,
            peaks[0].this_process
        );
        if low.probe_listeners == 0 {
            assert!(
                low.this_process <= baseline.this_process + SLACK,
                "round {round}: {} descriptors after termination, {} before any launch",
                low.this_process,
                baseline.this_process
            );
        }
        assert!(
            peak.moto <= peaks[0].moto + SLACK,
            "round {round}: moto holds {} descriptors, {} in the first round",
            peak.moto,
            peaks[0].moto
        );
    }
    cloud.shutdown().await;
}
