//! A 4,000-server plan on the local cloud: the state passed between steps stays small
//! (IDs and counts, never server lists), so the execution fits Step Functions' 256 KiB
//! payload limit and stays far below its 25,000-event history limit. Prints the largest
//! payload and the event count.

mod common;

use aws_sdk_sfn::types::ExecutionStatus;
use common::cloud_with_probe_ports;
use serde_json::json;

const SERVERS_PER_WAVE: usize = 1000;
const WAVES: usize = 4;
/// Step Functions' limit on a state's input or output.
const PAYLOAD_LIMIT: usize = 256 * 1024;
const HISTORY_LIMIT: usize = 25_000;
/// How long the 4,000-server drill may take on the local cloud.
const SCALE_EXECUTION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2400);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_4000_server_drill_keeps_every_payload_small() {
    let mut fleet = String::from("region: us-east-1\nsource_servers:\n");
    for wave in 1..=WAVES {
        fleet.push_str(&format!(
            "  - count: {SERVERS_PER_WAVE}\n    hostname: \"w{wave}-{{i:04}}\"\n    tags: {{ \"dr:plan\": \"fleet\", \"dr:wave\": \"{wave}\" }}\n    replication: {{ state: CONTINUOUS, lag_seconds: 0 }}\n"
        ));
    }
    // The plan checks EC2 status only: no probe sockets are needed for 4,000 instances.
    let Some(cloud) = cloud_with_probe_ports(&fleet, Some(Vec::new())).await else {
        return;
    };
    let plan = json!({"name": "fleet", "rto_minutes": 120, "selector": {"dr:plan": "fleet"}});
    // 4,000 instances make moto slow (each wave's calls take longer than the last's, and
    // a CI machine is slower than a workstation): this test checks sizes, not speed.
    let (name, arn) = cloud.start(plan, "drill").await;
    let outcome = cloud.wait_up_to(name, &arn, SCALE_EXECUTION_TIMEOUT).await;
    assert_eq!(
        outcome.status,
        ExecutionStatus::Succeeded,
        "{:?}: {:?}",
        outcome.error,
        outcome.cause
    );

    // Every server launched, in jobs within the DRS quotas.
    let calls = cloud.start_recovery_calls().await;
    assert_eq!(
        calls.iter().map(Vec::len).sum::<usize>(),
        SERVERS_PER_WAVE * WAVES
    );
    assert!(
        calls.iter().all(|job| job.len() <= 100),
        "a job over the per-job quota"
    );

    // Every payload of the history, and the history's length.
    let arn = format!(
        "{}:{}",
        cloud
            .stack
            .recovery_state_machine_arn
            .replacen(":stateMachine:", ":execution:", 1),
        outcome.name
    );
    let history = cloud.history(&arn).await;
    let events = history.len();
    let mut largest = (0usize, String::new());
    for event in &history {
        let payloads = [
            event
                .state_entered_event_details()
                .and_then(|d| d.input().map(|i| (d.name(), i))),
            event
                .state_exited_event_details()
                .and_then(|d| d.output().map(|o| (d.name(), o))),
        ];
        for (state, payload) in payloads.into_iter().flatten() {
            if payload.len() > largest.0 {
                largest = (payload.len(), state.to_owned());
            }
        }
    }
    println!(
        "4,000-server drill: {events} history events (limit {HISTORY_LIMIT}); largest state payload {} bytes in {} (limit {PAYLOAD_LIMIT})",
        largest.0, largest.1
    );
    assert!(
        largest.0 < PAYLOAD_LIMIT / 16,
        "a state carried {} bytes ({})",
        largest.0,
        largest.1
    );
    assert!(events < HISTORY_LIMIT / 5, "{events} history events");
    let report = cloud.report("fleet", &outcome.name).await;
    assert_eq!(
        report["drill_instances_terminated"],
        SERVERS_PER_WAVE * WAVES
    );
}
