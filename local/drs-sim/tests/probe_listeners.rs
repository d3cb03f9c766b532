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
    // (drplan-aws's tests/health_gate.rs); here: the port is listed as TLS and does
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

/// Launches `ids` (one drill job) and returns their (EC2 instance ID, stand-in address)
/// by source server ID.
async fn launch(sim: &SimHandle, ids: &[String]) -> Vec<(String, Ipv4Addr)> {
    let client = drs_client(sim);
    let job = start_recovery_job(&client, ids, true).await;
    wait_for_job(&client, &job, Duration::from_secs(30)).await;
    let state = control_get(sim, "/_drplan/state").await;
    let instances = state["recovery_instances"].as_array().expect("instances");
    ids.iter()
        .map(|id| {
            let instance = instances
                .iter()
                .find(|i| i["source_server_id"] == id.as_str())
                .expect("each server launched");
            let private_ip: Ipv4Addr = instance["private_ip"]
                .as_str()
                .and_then(|ip| ip.parse().ok())
                .expect("a private IPv4");
            let [_, b, c, d] = private_ip.octets();
            (
                instance["ec2_instance_id"]
                    .as_str()
                    .expect("instance ID")
                    .to_owned(),
                Ipv4Addr::new(127, b, c, d),
            )
        })
        .collect()
}

async fn put_set(sim: &SimHandle, name: &str, body: Value) -> RawResponse {
    http(
        sim,
        "PUT",
        &format!("/_drplan/probe-ports/{name}"),
        Some(body),
    )
    .await
}

#[tokio::test]
async fn probe_sets_open_only_their_ports_on_the_instances_they_select() {
    // No configured ports: nothing listens until a set says what is probed.
    let sim = start_fast().await;
    let db = seed(&sim, "pdb", 1, json!({"dr:plan": "p", "tier": "db"})).await;
    let web = seed(&sim, "pweb", 1, json!({"dr:plan": "p", "tier": "web"})).await;
    let launched = launch(&sim, &[db[0].clone(), web[0].clone()]).await;
    let (db_address, web_address) = (launched[0].1, launched[1].1);
    assert_eq!(sim.probe_listener_count(), 0);
    eventually(db_address, 5432, Err(std::io::ErrorKind::ConnectionRefused)).await;

    // The database wave probes 5432, the web wave 8080: each instance serves its own.
    let declared = put_set(
        &sim,
        "plan:p",
        json!({"probes": [
            {"selector": {"dr:plan": "p", "tier": "db"}, "ports": [5432]},
            {"selector": {"dr:plan": "p", "tier": "web"}, "address": "private-ip", "ports": [8080]},
        ]}),
    )
    .await;
    assert_eq!(declared.status, 200, "{}", declared.body);
    assert_eq!(declared.body["sets"]["plan:p"][1]["ports"], json!([8080]));
    assert_eq!(get(db_address, 5432).await, Ok(200));
    assert_eq!(get(web_address, 8080).await, Ok(200));
    for (address, port) in [(db_address, 8080), (web_address, 5432)] {
        assert_eq!(
            get(address, port).await,
            Err(std::io::ErrorKind::ConnectionRefused),
            "{address}:{port} is probed by no wave of its server"
        );
    }
    assert_eq!(sim.probe_listener_count(), 2);
    let state = control_get(&sim, "/_drplan/state").await;
    let listeners = state["probe_listeners"].as_array().expect("listeners");
    assert_eq!(listeners.len(), 2, "{state}");
    assert_eq!(
        state["probe_sets"]["sets"]["plan:p"][0]["ports"],
        json!([5432])
    );

    // Replacing the set moves the database's port; running instances follow at once.
    let replaced = put_set(
        &sim,
        "plan:p",
        json!({"probes": [{"selector": {"tier": "db"}, "ports": [8080]}]}),
    )
    .await;
    assert_eq!(replaced.status, 200);
    assert_eq!(get(db_address, 8080).await, Ok(200));
    eventually(db_address, 5432, Err(std::io::ErrorKind::ConnectionRefused)).await;
    eventually(
        web_address,
        8080,
        Err(std::io::ErrorKind::ConnectionRefused),
    )
    .await;

    // Forgetting it closes everything; a reset keeps sets (they are configuration).
    let forgotten = http(&sim, "DELETE", "/_drplan/probe-ports/plan:p", None).await;
    assert_eq!(forgotten.status, 200);
    assert_eq!(forgotten.body["sets"], json!({}));
    assert_eq!(sim.probe_listener_count(), 0);
    eventually(db_address, 8080, Err(std::io::ErrorKind::ConnectionRefused)).await;
    put_set(&sim, "kept", json!({"probes": [{"ports": [8080]}]})).await;
    assert_eq!(http(&sim, "POST", "/_drplan/reset", None).await.status, 200);
    let shown = control_get(&sim, "/_drplan/probe-ports").await;
    assert_eq!(shown["sets"]["kept"][0]["ports"], json!([8080]), "{shown}");
    sim.shutdown().await;
}

#[tokio::test]
async fn a_bad_probe_set_is_refused_naming_the_field() {
    let sim = start_fast().await;
    let refused = put_set(
        &sim,
        "plan:x",
        json!({"probes": [{"ports": [8080], "tls_ports": [8443]}]}),
    )
    .await;
    assert_eq!(refused.status, 400);
    let error = refused.body["error"].as_str().unwrap_or_default();
    assert!(error.contains("probes[0].tls_ports: 8443"), "{error}");
    let refused = put_set(&sim, "plan:x", json!({"probes": [{"port": 80}]})).await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    let shown = control_get(&sim, "/_drplan/probe-ports").await;
    assert_eq!(shown["sets"], json!({}), "nothing was declared");
    sim.shutdown().await;
}

/// Rounds of launches, replacements and terminations: the listeners open are those of
/// the running instances, never those of every instance launched so far.
#[tokio::test]
async fn listeners_do_not_accumulate_over_many_launches() {
    const SERVERS: usize = 40;
    let sim = start(SimConfig {
        time_scale: FAST,
        probe_ports: PORTS.to_vec(),
        ..SimConfig::default()
    })
    .await;
    let ids = seed(&sim, "many", SERVERS, json!({})).await;
    let client = drs_client(&sim);
    let mut launched_so_far = 0;
    for round in 0..4 {
        // Even rounds launch into a fleet with no instance, odd ones replace them.
        let launched = launch(&sim, &ids).await;
        launched_so_far += launched.len();
        assert_eq!(
            sim.probe_listener_count(),
            SERVERS * PORTS.len(),
            "round {round}: {launched_so_far} instances launched so far"
        );
        let (_, address) = launched[round];
        assert_eq!(get(address, PORTS[0]).await, Ok(200));
        if round % 2 == 1 {
            let instance_ids: Vec<String> = launched.into_iter().map(|(id, _)| id).collect();
            let job = client
                .terminate_recovery_instances()
                .set_recovery_instance_ids(Some(instance_ids))
                .send()
                .await
                .expect("TerminateRecoveryInstances")
                .job()
                .map(|job| job.job_id().to_owned())
                .expect("a job ID");
            wait_for_job(&client, &job, Duration::from_secs(30)).await;
            assert_eq!(sim.probe_listener_count(), 0, "round {round}");
            eventually(
                address,
                PORTS[0],
                Err(std::io::ErrorKind::ConnectionRefused),
            )
            .await;
        }
    }
    assert_eq!(launched_so_far, 4 * SERVERS);
    sim.shutdown().await;
}
