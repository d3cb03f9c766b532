//! The control API: seeding, the faults that have no DRS call of their own, and refusals.

mod common;

use std::time::Duration;

use aws_sdk_drs::types::{JobLog, JobLogEvent};
use common::*;
use serde_json::json;

#[tokio::test]
async fn seeding_twice_keeps_one_server_per_hostname() {
    let sim = start_fast().await;
    let first = seed(&sim, "app", 3, json!({"dr:wave": "app"})).await;
    let second = seed(&sim, "app", 3, json!({"dr:wave": "web"})).await;
    assert_eq!(first, second, "same hostnames, same servers");
    let servers = drs_client(&sim)
        .describe_source_servers()
        .send()
        .await
        .expect("list");
    assert_eq!(servers.items().len(), 3);
    assert!(servers.items().iter().all(|server| {
        server
            .tags()
            .and_then(|tags| tags.get("dr:wave"))
            .map(String::as_str)
            == Some("web")
    }));
}

#[tokio::test]
async fn control_refuses_what_it_cannot_do() {
    let sim = start_fast().await;
    let bad_state = http(
        &sim,
        "POST",
        "/_drplan/source-servers",
        Some(json!([{"hostname": "x", "replication": {"state": "SLEEPING"}}])),
    )
    .await;
    assert_eq!(bad_state.status, 400, "{}", bad_state.body);
    let typo = http(
        &sim,
        "POST",
        "/_drplan/source-servers",
        Some(json!([{"hostname": "x", "launch_subnet": "subnet-1"}])),
    )
    .await;
    assert_eq!(
        typo.status, 400,
        "unknown fields are refused: {}",
        typo.body
    );
    let unknown_server = http(
        &sim,
        "POST",
        "/_drplan/faults",
        Some(json!({"kind": "fail_launch", "servers": ["nobody"]})),
    )
    .await;
    assert_eq!(unknown_server.status, 404, "{}", unknown_server.body);
    let unknown_operation = http(
        &sim,
        "POST",
        "/_drplan/faults",
        Some(json!({"kind": "throttle", "operation": "DescribeEverything", "count": 1})),
    )
    .await;
    assert_eq!(unknown_operation.status, 400, "{}", unknown_operation.body);
    let unknown_kind = http(
        &sim,
        "POST",
        "/_drplan/faults",
        Some(json!({"kind": "meteor"})),
    )
    .await;
    assert_eq!(unknown_kind.status, 400, "{}", unknown_kind.body);
}

#[tokio::test]
async fn a_slowed_conversion_finishes_after_the_others_launch() {
    let sim = start_fast().await;
    let ids = seed(&sim, "db", 2, json!({})).await;
    control_post(
        &sim,
        "/_drplan/faults",
        json!({"kind": "slow_conversion", "servers": ["db-001"], "factor": 10}),
    )
    .await;
    let client = drs_client(&sim);
    let job_id = start_recovery_job(&client, &ids, false).await;
    wait_for_job(&client, &job_id, Duration::from_secs(30)).await;
    let log = client
        .describe_job_log_items()
        .job_id(&job_id)
        .send()
        .await
        .expect("log");
    let position = |event: JobLogEvent, server: &str| {
        log.items()
            .iter()
            .position(|item| {
                item.event() == Some(&event)
                    && item.event_data().and_then(|data| data.source_server_id()) == Some(server)
            })
            .unwrap_or_else(|| panic!("{event:?} for {server}"))
    };
    assert!(
        position(JobLogEvent::LaunchStart, &ids[0]) < position(JobLogEvent::ConversionEnd, &ids[1]),
        "the normal server launched while the slow one was still converting: {:?}",
        log.items()
            .iter()
            .filter_map(JobLog::event)
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn unhealthy_marks_show_in_state() {
    let sim = start_fast().await;
    let ids = seed(&sim, "web", 2, json!({})).await;
    let client = drs_client(&sim);
    let job_id = start_recovery_job(&client, &ids, true).await;
    wait_for_job(&client, &job_id, Duration::from_secs(30)).await;

    control_post(
        &sim,
        "/_drplan/faults",
        json!({"kind": "unhealthy_instances", "targets": ["web-001"]}),
    )
    .await;
    let state = control_get(&sim, "/_drplan/state").await;
    let instances = state["recovery_instances"].as_array().expect("instances");
    let unhealthy: Vec<&str> = instances
        .iter()
        .filter(|instance| instance["unhealthy"] == true)
        .filter_map(|instance| instance["hostname"].as_str())
        .collect();
    assert_eq!(unhealthy, vec!["web-001"]);
    let web_001_instance = instances
        .iter()
        .find(|instance| instance["hostname"] == "web-001")
        .and_then(|instance| instance["ec2_instance_id"].as_str())
        .expect("web-001 instance");
    assert_eq!(state["unhealthy_instance_ids"], json!([web_001_instance]));

    control_post(
        &sim,
        "/_drplan/faults",
        json!({"kind": "unhealthy_instances", "targets": ["web-001"], "unhealthy": false}),
    )
    .await;
    let state = control_get(&sim, "/_drplan/state").await;
    assert_eq!(state["unhealthy_instance_ids"], json!([]));
}

#[tokio::test]
async fn shutdown_stops_serving_and_dropping_does_too() {
    let sim = start_slow().await;
    let ids = seed(&sim, "app", 1, json!({})).await;
    drs_client(&sim)
        .start_recovery()
        .set_source_servers(Some(recovery_request(&ids)))
        .send()
        .await
        .expect("a job is running when the simulator stops");
    let addr = sim.addr();
    sim.shutdown().await;
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "nothing listens on {addr} after shutdown"
    );

    let sim = start_slow().await;
    let addr = sim.addr();
    drop(sim);
    // The server task is aborted on drop; give the runtime a moment to release the socket.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "nothing listens on {addr} after drop"
    );
}
