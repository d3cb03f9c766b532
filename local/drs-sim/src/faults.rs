//! Fault injection through the control API (`POST`/`DELETE /_drplan/faults`): throttled
//! operations, failed and lost launches, slow conversions, stalled replication, unhealthy
//! instances. Documented in `local/drs-sim/README.md`; keep the two in step.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::clock::Timestamp;
use crate::control::{ControlError, bad_request, json_response, not_found, parse_list};
use crate::model::{SlowConversion, State as SimState, ThrottleFault};
use crate::sim::Simulator;

/// Operations a throttle fault may name.
const THROTTLEABLE_OPERATIONS: &[&str] = &[
    "DescribeSourceServers",
    "StartRecovery",
    "DescribeJobs",
    "DescribeJobLogItems",
    "DescribeRecoveryInstances",
    "TerminateRecoveryInstances",
    "DescribeRecoverySnapshots",
    "GetLaunchConfiguration",
    "RetryDataReplication",
    "ReverseReplication",
    "StartFailbackLaunch",
    "ListTagsForResource",
    "TagResource",
    "UntagResource",
];

fn default_retry_after() -> u64 {
    1
}

fn default_factor() -> f64 {
    1.0
}

fn default_raw_error() -> String {
    "An error occurred (InsufficientInstanceCapacity) when calling the RunInstances operation: \
     We currently do not have sufficient capacity in the Availability Zone you requested."
        .to_owned()
}

fn default_failback_raw_error() -> String {
    "Failback launch failed: the Failback Client lost its connection during conversion".to_owned()
}

fn default_true() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum FaultSpec {
    Throttle {
        operation: String,
        count: u32,
        #[serde(default = "default_retry_after")]
        retry_after_seconds: u64,
    },
    FailLaunch {
        servers: Vec<String>,
        #[serde(default = "default_raw_error")]
        raw_error: String,
    },
    FailFailbackLaunch {
        targets: Vec<String>,
        #[serde(default = "default_failback_raw_error")]
        raw_error: String,
    },
    LoseLaunchResults {
        servers: Vec<String>,
    },
    SlowConversion {
        servers: Vec<String>,
        #[serde(default = "default_factor")]
        factor: f64,
        #[serde(default)]
        extra_seconds: f64,
    },
    StallReplication {
        servers: Vec<String>,
    },
    UnstallReplication {
        servers: Vec<String>,
    },
    UnhealthyInstances {
        targets: Vec<String>,
        #[serde(default = "default_true")]
        unhealthy: bool,
        #[serde(default)]
        mode: UnhealthyMode,
    },
}

/// How an unhealthy instance's probe listeners misbehave.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum UnhealthyMode {
    /// Listeners stay open; every HTTP request gets 500 (TCP connects still succeed).
    #[default]
    Error,
    /// Listeners close: every connection is refused (TCP and HTTP checks fail).
    Refuse,
}

/// Resolves server IDs or hostnames to IDs; names every one that does not exist.
fn resolve_servers(state: &SimState, references: &[String]) -> Result<Vec<String>, String> {
    let mut ids = Vec::new();
    let mut unknown = Vec::new();
    for reference in references {
        match state.resolve_server(reference) {
            Some(server) => ids.push(server.id.clone()),
            None => unknown.push(reference.clone()),
        }
    }
    if unknown.is_empty() {
        Ok(ids)
    } else {
        Err(format!(
            "no source server has the ID or hostname {unknown:?}"
        ))
    }
}

/// A stall change to announce once the lock is released: (server ARN, new detail.state).
type StallEvent = (String, &'static str);

fn apply_fault(state: &mut SimState, fault: FaultSpec) -> Result<Vec<StallEvent>, ControlError> {
    let mut events = Vec::new();
    match fault {
        FaultSpec::Throttle {
            operation,
            count,
            retry_after_seconds,
        } => {
            if !THROTTLEABLE_OPERATIONS.contains(&operation.as_str()) {
                return Err(bad_request(format!(
                    "operation {operation:?} is not one of {THROTTLEABLE_OPERATIONS:?}"
                )));
            }
            state.faults.throttles.insert(
                operation,
                ThrottleFault {
                    remaining: count,
                    retry_after_seconds,
                },
            );
        }
        FaultSpec::FailLaunch { servers, raw_error } => {
            for id in resolve_servers(state, &servers).map_err(not_found)? {
                state.faults.failed_launches.insert(id, raw_error.clone());
            }
        }
        FaultSpec::FailFailbackLaunch { targets, raw_error } => {
            // Recovery instance IDs name their server; the rest are server IDs or hostnames.
            let references: Vec<String> = targets
                .iter()
                .map(|target| {
                    state
                        .recovery_instance(target)
                        .map_or_else(|| target.clone(), |i| i.source_server_id.clone())
                })
                .collect();
            for id in resolve_servers(state, &references).map_err(not_found)? {
                state
                    .faults
                    .failed_failback_launches
                    .insert(id, raw_error.clone());
            }
        }
        FaultSpec::LoseLaunchResults { servers } => {
            for id in resolve_servers(state, &servers).map_err(not_found)? {
                state.faults.lost_launch_results.insert(id);
            }
        }
        FaultSpec::SlowConversion {
            servers,
            factor,
            extra_seconds,
        } => {
            if !(factor.is_finite()
                && factor >= 0.0
                && extra_seconds.is_finite()
                && extra_seconds >= 0.0)
            {
                return Err(bad_request(
                    "factor and extra_seconds must be finite and >= 0",
                ));
            }
            for id in resolve_servers(state, &servers).map_err(not_found)? {
                state.faults.slow_conversions.insert(
                    id,
                    SlowConversion {
                        factor,
                        extra_seconds,
                    },
                );
            }
        }
        FaultSpec::StallReplication { servers } => {
            let now = Timestamp::now();
            for id in resolve_servers(state, &servers).map_err(not_found)? {
                if let Some(server) = state.server_mut(&id)
                    && server.replication.stalled_since.is_none()
                {
                    server.replication.state_before_stall = Some(server.replication.state.clone());
                    server.replication.state = "STALLED".to_owned();
                    server.replication.stalled_since = Some(now);
                    events.push((server.arn.clone(), "STALLED"));
                }
            }
        }
        FaultSpec::UnstallReplication { servers } => {
            for id in resolve_servers(state, &servers).map_err(not_found)? {
                if let Some(server) = state.server_mut(&id)
                    && server.replication.state == "STALLED"
                {
                    let previous = server
                        .replication
                        .state_before_stall
                        .take()
                        .filter(|previous| previous != "STALLED")
                        .unwrap_or_else(|| "CONTINUOUS".to_owned());
                    server.replication.state = previous;
                    server.replication.stalled_since = None;
                    events.push((server.arn.clone(), "NOT_STALLED"));
                }
            }
        }
        FaultSpec::UnhealthyInstances {
            targets,
            unhealthy,
            mode,
        } => {
            for target in targets {
                if unhealthy && mode == UnhealthyMode::Refuse {
                    state.faults.refusing_targets.insert(target.clone());
                } else {
                    state.faults.refusing_targets.remove(&target);
                }
                if unhealthy {
                    state.faults.unhealthy_targets.insert(target);
                } else {
                    state.faults.unhealthy_targets.remove(&target);
                }
            }
        }
    }
    Ok(events)
}

pub(crate) async fn inject_faults(State(sim): State<Arc<Simulator>>, body: Bytes) -> Response {
    let faults: Vec<FaultSpec> = match parse_list(&body, "faults") {
        Ok(faults) => faults,
        Err(error) => return error.into_response(),
    };
    let count = faults.len();
    let applied = sim.with_state(|state| {
        let mut events = Vec::new();
        for fault in faults {
            events.extend(apply_fault(state, fault)?);
        }
        Ok::<_, ControlError>(events)
    });
    let events = match applied {
        Ok(events) => events,
        Err(error) => return error.into_response(),
    };
    sim.sync_probe_listeners();
    for (server_arn, stall_state) in &events {
        // From the DRS of the server's Region.
        sim.emit_event_in(
            sim.region_of_arn(server_arn),
            "DRS Source Server Data Replication Stalled Change",
            vec![server_arn.clone()],
            json!({ "state": stall_state }),
        )
        .await;
    }
    json_response(
        StatusCode::OK,
        json!({ "applied": count, "events": events.len() }),
    )
}

/// Clears throttles, launch failures, slow conversions and unhealthy marks. Stalled
/// replication is server state, cleared with an `unstall_replication` fault.
pub(crate) async fn clear_faults(State(sim): State<Arc<Simulator>>) -> Response {
    sim.with_state(|state| state.faults = Default::default());
    sim.sync_probe_listeners();
    json_response(StatusCode::OK, json!({ "cleared": true }))
}

// ---- Observation ------------------------------------------------------------------------
