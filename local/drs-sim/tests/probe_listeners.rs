//! Recovered instances serve their loopback stand-in (private IP a.b.c.d → 127.b.c.d)
//! for health probes; the unhealthy_instances fault makes them answer 500 or refuse;
//! termination and shutdown close them. Every connection here goes to 127.0.0.0/8.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use common::*;
use drplan_drs_sim::{SimConfig, SimHandle};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Unprivileged ports, so the test runs without root.
const PORTS: [u16; 2] = [5432, 8080];

async fn start_serving() -> SimHandle {
    start(SimConfig {
        time_scale: FAST,
        probe_ports: PORTS.to_vec(),
        ..SimConfig::default()
    })
    .await
}

/// Launches one server (drill) and returns (hostname, EC2 instance ID, stand-in address).
async fn launch_one(sim: &SimHandle, prefix: &str) -> (String, String, Ipv4Addr) {
    let ids = seed(sim, prefix, 1, json!({})).await;
    let client = drs_client(sim);
    let job = client
        .start_recovery()
        .set_source_servers(Some(recovery_request(&ids)))
        .is_drill(true)
        .send()
        .await
        .expect("StartRecovery")
        .job()
        .map(|job| job.job_id())
        .expect("a job ID")
        .to_owned();
    wait_for_job(&client, &job, Duration::from_secs(20)).await;
    let state = control_get(sim, "/_drplan/state").await;
    let instance = &state["recovery_instances"][0];
    let private_ip: Ipv4Addr = instance["private_ip"]
        .as_str()
        .expect("a private IP")
        .parse()
        .expect("IPv4");
    let [_, b, c, d] = private_ip.octets();
    (
        format!("{prefix}-000"),
        instance["ec2_instance_id"]
            .as_str()
            .expect("instance ID")
            .to_owned(),
        Ipv4Addr::new(127, b, c, d),
    )
}

/// The status code of a GET, or the connect error's kind.
async fn get(address: Ipv4Addr, port: u16) -> Result<u16, std::io::ErrorKind> {
    assert!(address.is_loopback(), "tests probe loopback only");
    let mut stream = TcpStream::connect(SocketAddr::from((address, port)))
        .await
        .map_err(|e| e.kind())?;
    stream
        .write_all(b"GET /health HTTP/1.1\r\nhost: probe\r\nconnection: close\r\n\r\n")
        .await
        .map_err(|e| e.kind())?;
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .await
        .map_err(|e| e.kind())?;
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or(std::io::ErrorKind::InvalidData)
}

/// Polls until `get` gives `expected`: listeners open and close asynchronously.
async fn eventually(address: Ipv4Addr, port: u16, expected: Result<u16, std::io::ErrorKind>) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let got = get(address, port).await;
        if got == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{address}:{port} gave {got:?}, expected {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn fault(sim: &SimHandle, body: Value) {
    let answer = control_post(sim, "/_drplan/faults", body).await;
    assert_eq!(answer["applied"], 1, "{answer}");
}

#[tokio::test]
async fn a_recovered_instance_serves_its_ports_on_its_loopback_address() {
    let sim = start_serving().await;
    let (_, instance, address) = launch_one(&sim, "db").await;
    for port in PORTS {
        assert_eq!(get(address, port).await, Ok(200), "port {port}");
    }
    let state = control_get(&sim, "/_drplan/state").await;
    let listeners = state["probe_listeners"].as_array().expect("listeners");
    assert_eq!(listeners.len(), 1, "{state}");
    assert_eq!(listeners[0]["ec2_instance_id"], instance.as_str());
    assert_eq!(listeners[0]["address"], address.to_string());
    assert_eq!(listeners[0]["ports"], json!(PORTS));
    sim.shutdown().await;
    eventually(address, 8080, Err(std::io::ErrorKind::ConnectionRefused)).await;
}

#[tokio::test]
async fn unhealthy_instances_answer_500_or_refuse_until_cleared() {
    let sim = start_serving().await;
    let (hostname, instance, address) = launch_one(&sim, "app").await;

    // error mode (the default), named by hostname: HTTP 500, TCP still accepts.
    fault(
        &sim,
        json!({"kind": "unhealthy_instances", "targets": [hostname]}),
    )
    .await;
    eventually(address, 8080, Ok(500)).await;
    assert!(
        TcpStream::connect((address, 5432)).await.is_ok(),
        "error mode keeps TCP open"
    );
    let state = control_get(&sim, "/_drplan/state").await;
    assert_eq!(state["recovery_instances"][0]["unhealthy_mode"], "error");

    // refuse mode, named by instance ID: nothing listens.
    fault(
        &sim,
        json!({"kind": "unhealthy_instances", "targets": [instance], "mode": "refuse"}),
    )
    .await;
    eventually(address, 5432, Err(std::io::ErrorKind::ConnectionRefused)).await;
    eventually(address, 8080, Err(std::io::ErrorKind::ConnectionRefused)).await;

    // Clearing the faults brings the service back.
    let cleared = http(&sim, "DELETE", "/_drplan/faults", None).await;
    assert_eq!(cleared.status, 200);
    eventually(address, 8080, Ok(200)).await;
    sim.shutdown().await;
}

#[tokio::test]
async fn terminating_an_instance_closes_its_listeners() {
    let sim = start_serving().await;
    let (_, instance, address) = launch_one(&sim, "web").await;
    assert_eq!(get(address, 8080).await, Ok(200));
    let client = drs_client(&sim);
    let job = client
        .terminate_recovery_instances()
        .recovery_instance_ids(&instance)
        .send()
        .await
        .expect("TerminateRecoveryInstances")
        .job()
        .map(|job| job.job_id())
        .expect("a job ID")
        .to_owned();
    wait_for_job(&client, &job, Duration::from_secs(20)).await;
    eventually(address, 8080, Err(std::io::ErrorKind::ConnectionRefused)).await;
    let state = control_get(&sim, "/_drplan/state").await;
    assert_eq!(state["probe_listeners"], json!([]), "{state}");
    sim.shutdown().await;
}

#[tokio::test]
async fn reset_closes_listeners_and_no_ports_means_none() {
    let sim = start_serving().await;
    let (_, _, address) = launch_one(&sim, "cache").await;
    assert_eq!(get(address, 5432).await, Ok(200));
    assert_eq!(http(&sim, "POST", "/_drplan/reset", None).await.status, 200);
    eventually(address, 5432, Err(std::io::ErrorKind::ConnectionRefused)).await;
    sim.shutdown().await;

    let quiet = start(SimConfig {
        time_scale: FAST,
        probe_ports: Vec::new(),
        ..SimConfig::default()
    })
    .await;
    let (_, _, address) = launch_one(&quiet, "cache").await;
    assert_eq!(
        get(address, 5432).await,
        Err(std::io::ErrorKind::ConnectionRefused)
    );
    quiet.shutdown().await;
}

#[tokio::test]
async fn tls_ports_speak_tls_not_plain_http() {
    // The HTTPS answer itself is checked by drplan's https probe against this simulator
    // (functions/health-check's moto test); here: the port is listed as TLS and does
    // not answer a plain-HTTP request.
    let sim = start(SimConfig {
        time_scale: FAST,
        probe_ports: vec![8080, 8443],
        tls_probe_ports: vec![8443],
        ..SimConfig::default()
    })
    .await;
    let (_, _, address) = launch_one(&sim, "web").await;
    assert_eq!(get(address, 8080).await, Ok(200));
    assert!(
        TcpStream::connect((address, 8443)).await.is_ok(),
        "the TLS port listens"
    );
    assert_ne!(
        get(address, 8443).await,
        Ok(200),
        "plain HTTP on a TLS port"
    );
    let state = control_get(&sim, "/_drplan/state").await;
    assert_eq!(state["probe_listeners"][0]["tls_ports"], json!([8443]));
    sim.shutdown().await;
}
