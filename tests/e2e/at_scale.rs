//! A region outage at fleet size on the local cloud: 4,000 servers, every one STALLED and
//! a day behind an RPO of 15 minutes, recovered in 20 waves of 200 from the `dr:wave` tag,
//! one after another. The state passed between steps stays small (IDs, counts and a
//! sample of the readiness warnings, never per-server lists), so the execution stays far
//! below Step Functions' 256 KiB payload limit and inside its 25,000-event history.
//! Prints the largest payload and the event count.

use crate::common::{cloud_with, largest_payload};
use aws_sdk_sfn::types::ExecutionStatus;
use serde_json::json;

const SERVERS_PER_WAVE: usize = 200;
const WAVES: usize = 20;
/// Step Functions' limit on a state's input or output.
const PAYLOAD_LIMIT: usize = 256 * 1024;
const HISTORY_LIMIT: usize = 25_000;
/// The largest state payload allowed here (issue #14: an outage must fit in 64 KiB).
const PAYLOAD_BUDGET: usize = 64 * 1024;
/// How long the 4,000-server recovery may take on the local cloud.
const SCALE_EXECUTION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2400);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_4000_server_outage_recovery_in_20_waves_keeps_every_payload_small() {
    let mut fleet = String::from("region: us-east-1\nsource_servers:\n");
    for wave in 1..=WAVES {
        fleet.push_str(&format!(
            "  - count: {SERVERS_PER_WAVE}\n    hostname: \"w{wave}-{{i:04}}\"\n    tags: {{ \"dr:plan\": \"fleet\", \"dr:wave\": \"{wave}\" }}\n    replication: {{ state: STALLED, lag_seconds: 86400 }}\n"
        ));
    }
    let Some(cloud) = cloud_with(&fleet).await else {
        return;
    };
    let plan = json!({"name": "fleet", "rto_minutes": 240, "rpo_minutes": 15,
                      "selector": {"dr:plan": "fleet"}});
    // Timing that fits 20 waves in one execution's history (discover refuses timing that
    // does not): polls back off to 15 s, launches time out after 10 minutes.
    let timing = json!({"poll_initial_seconds": 2, "poll_max_seconds": 15,
                        "poll_backoff_rate": 1.5, "launch_timeout_minutes": 10,
                        "health_interval_seconds": 15});
    // 4,000 instances make moto slow (each wave's calls take longer than the last's, and
    // a CI machine is slower than a workstation): this test checks sizes, not speed.
    let (name, arn) = cloud
        .start_with(json!({"plan": plan, "mode": "recovery", "timing": timing}))
        .await;
    // The local cloud's open descriptors, sampled through the run: they must not grow
    // with the instances launched (the simulator once kept seven probe listeners open
    // for every instance, and a long run ran out of descriptors).
    let before = cloud.open_descriptors();
    let mut peak = before;
    let waiting = cloud.wait_up_to(name, &arn, SCALE_EXECUTION_TIMEOUT);
    tokio::pin!(waiting);
    let outcome = loop {
        tokio::select! {
            outcome = &mut waiting => break outcome,
            _ = tokio::time::sleep(std::time::Duration::from_secs(5)) => {
                let now = cloud.open_descriptors();
                if now.this_process > peak.this_process {
                    peak = now;
                }
            }
        }
    };
    let after = cloud.open_descriptors();
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
    let history = cloud.history(&cloud.execution_arn(&outcome.name)).await;
    let events = history.len();
    let largest = largest_payload(&history);
    println!(
        "4,000-server outage recovery in {WAVES} waves: {events} history events (limit {HISTORY_LIMIT}); largest state payload {} bytes in {} (budget {PAYLOAD_BUDGET}, limit {PAYLOAD_LIMIT})",
        largest.0, largest.1
    );
    assert!(
        largest.0 < PAYLOAD_BUDGET,
        "a state carried {} bytes ({})",
        largest.0,
        largest.1
    );
    assert!(events < HISTORY_LIMIT, "{events} history events");
    println!(
        "open descriptors of the local cloud: {} before, peak {} (moto {}), {} after 4,000 launches; limit {}",
        before.this_process, peak.this_process, peak.moto, after.this_process, after.limit
    );
    // The plan checks EC2 status only: no probe listener is ever needed.
    assert_eq!(peak.probe_listeners, 0);
    assert!(
        peak.this_process < 1000 && peak.moto < 1000,
        "descriptors grew with the fleet: {peak:?}"
    );
    // Every warning (stalled, and lag over the RPO: two a server) is in the report, and
    // one more for the account: 4,000 servers replicate, over DRS's quota of 300.
    let report = cloud.report("fleet", &outcome.name).await;
    let warnings = report["readiness"]["warnings"]
        .as_array()
        .expect("the report's warnings");
    assert_eq!(warnings.len(), 2 * SERVERS_PER_WAVE * WAVES + 1);
    let quota = warnings
        .iter()
        .find(|w| w["path"] == "quotas.max_replicating_servers")
        .expect("the replicating-servers quota is named");
    assert!(
        quota["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("4000 source servers replicate")),
        "{quota}"
    );
    let waves = report["waves"].as_array().expect("waves");
    assert_eq!(waves.len(), WAVES);
    assert!(
        waves
            .iter()
            .all(|w| w["state"] == "SUCCEEDED" && w["launched"] == SERVERS_PER_WAVE),
        "every wave launched all its servers"
    );
}
