//! Failback: what a booted DRS Failback Client does (`POST /_drplan/failback-client`),
//! StartFailbackLaunch jobs, and the `DRS Recovery Instance Failback State Change` event on
//! each failback state change. EC2 sources fail back by ReverseReplication instead
//! ([`crate::reverse`]).
//!
//! A Failback Client, once booted on the machine to fail back to, connects to DRS
//! (FAILBACK_IN_PROGRESS), replicates the recovery instance's volumes to it, and is ready
//! once they are in sync (FAILBACK_READY_FOR_LAUNCH), after `phases.failback_sync`
//! scaled by the time scale. StartFailbackLaunch then converts and reboots the machine
//! (FAILBACK_COMPLETED, or FAILBACK_ERROR when a `fail_failback_launch` fault holds).

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Deserialize;
use serde_json::json;

use crate::clock::Timestamp;
use crate::control::{bad_request, json_response};
use crate::lifecycle::{self, InstanceJobPlan, for_server, log};
use crate::model::JobLogData;
use crate::sim::Simulator;

/// The EventBridge detail-type of a failback state change.
pub const FAILBACK_STATE_CHANGE: &str = "DRS Recovery Instance Failback State Change";

pub fn router() -> Router<Arc<Simulator>> {
    Router::new().route("/_drplan/failback-client", post(connect_failback_clients))
}

/// `{"targets": [...]}` (recovery instance IDs, source server IDs or hostnames) or
/// `{"all": true}`: every recovery instance whose failback has not started.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FailbackClientRequest {
    #[serde(default)]
    targets: Vec<String>,
    #[serde(default)]
    all: bool,
}

/// One connection made: the instance, its ARN (for the event) and the connection's epoch.
struct Connection {
    instance_id: String,
    source_server_id: String,
    arn: String,
    client_id: String,
    epoch: u64,
}

async fn connect_failback_clients(State(sim): State<Arc<Simulator>>, body: Bytes) -> Response {
    let request: FailbackClientRequest = if body.iter().all(u8::is_ascii_whitespace) {
        FailbackClientRequest::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(request) => request,
            Err(error) => {
                return bad_request(format!("body is not a failback-client request: {error}"))
                    .into_response();
            }
        }
    };
    // Exactly one of the two: targets named, or all.
    if request.all != request.targets.is_empty() {
        return bad_request("give either \"targets\" (recovery instance IDs, source server IDs or hostnames) or \"all\": true")
            .into_response();
    }
    let now = Timestamp::now();
    let outcome = sim.with_state(|state| {
        let mut wanted: BTreeSet<String> = BTreeSet::new();
        if request.all {
            wanted.extend(
                state
                    .recovery_instances
                    .iter()
                    .filter(|instance| instance.failback_state.is_none())
                    .map(|instance| instance.id.clone()),
            );
        }
        let mut unknown = Vec::new();
        for target in &request.targets {
            let instance_id = match state.recovery_instance(target) {
                Some(instance) => Some(instance.id.clone()),
                None => state
                    .resolve_server(target)
                    .and_then(|server| server.recovery_instance_id.clone()),
            };
            match instance_id {
                Some(id) => {
                    wanted.insert(id);
                }
                None => unknown.push(target.clone()),
            }
        }
        if !unknown.is_empty() {
            return Err(unknown);
        }
        let mut connections = Vec::new();
        let mut untouched = Vec::new();
        for id in wanted {
            let client_id = format!("fbc-{}", state.ids.request_id());
            let Some(instance) = state.recovery_instance_mut(&id) else {
                continue;
            };
            // A client already connected (or a failback already done) stays as it is.
            if let Some(current) = instance.failback_state {
                untouched.push(json!({
                    "recovery_instance_id": id,
                    "source_server_id": instance.source_server_id,
                    "failback_state": current,
                }));
                continue;
            }
            instance.failback_state = Some("FAILBACK_IN_PROGRESS");
            instance.failback_client_id = Some(client_id.clone());
            instance.failback_initiated = Some(now);
            instance.failback_epoch += 1;
            connections.push(Connection {
                instance_id: id,
                source_server_id: instance.source_server_id.clone(),
                arn: instance.arn.clone(),
                client_id,
                epoch: instance.failback_epoch,
            });
        }
        Ok((connections, untouched, state.generation))
    });
    let (connections, untouched, generation) = match outcome {
        Ok(outcome) => outcome,
        Err(unknown) => {
            return json_response(
                StatusCode::NOT_FOUND,
                json!({ "error": format!(
                    "no recovery instance, or source server with one, has the ID or hostname {unknown:?}"
                ) }),
            );
        }
    };
    let connected: Vec<_> = connections
        .iter()
        .map(|connection| {
            json!({
                "recovery_instance_id": connection.instance_id,
                "source_server_id": connection.source_server_id,
                "failback_client_id": connection.client_id,
                "failback_state": "FAILBACK_IN_PROGRESS",
            })
        })
        .collect();
    for connection in &connections {
        emit_failback_state(&sim, &connection.arn, "FAILBACK_IN_PROGRESS").await;
    }
    for connection in connections {
        spawn_client_sync(&sim, generation, connection);
    }
    json_response(
        StatusCode::OK,
        json!({ "connected": connected, "unchanged": untouched }),
    )
}

/// The client's replication: ready after the scaled sync time, unless a StopFailback (or
/// a new connection) came in between.
fn spawn_client_sync(sim: &Arc<Simulator>, generation: u64, connection: Connection) {
    let task_sim = sim.clone();
    sim.spawn_background(async move {
        let sim = task_sim;
        tokio::time::sleep(sim.scaled(sim.config.phases.failback_sync)).await;
        let ready = sim.update(generation, |state| {
            let instance = state.recovery_instance_mut(&connection.instance_id)?;
            if instance.failback_epoch != connection.epoch
                || instance.failback_state != Some("FAILBACK_IN_PROGRESS")
            {
                return None;
            }
            instance.failback_state = Some("FAILBACK_READY_FOR_LAUNCH");
            Some(())
        });
        if ready.flatten().is_some() {
            emit_failback_state(&sim, &connection.arn, "FAILBACK_READY_FOR_LAUNCH").await;
        }
    });
}

/// `DRS Recovery Instance Failback State Change`: `resources` = [recovery instance ARN],
/// `detail.state` = the new failback state, as the other DRS events carry theirs.
pub async fn emit_failback_state(sim: &Simulator, instance_arn: &str, state: &str) {
    sim.emit_event_in(
        sim.region_of_arn(instance_arn),
        FAILBACK_STATE_CHANGE,
        vec![instance_arn.to_owned()],
        json!({ "state": state }),
    )
    .await;
}

/// A StartFailbackLaunch job: per instance CONVERSION_START, CONVERSION_END (on the
/// Failback Client) and LAUNCH_START, then LAUNCHED with FAILBACK_COMPLETED, or
/// LAUNCH_FAILED with `rawError` and FAILBACK_ERROR.
pub fn spawn_failback_job(sim: &Arc<Simulator>, plan: InstanceJobPlan) {
    lifecycle::spawn_instance_job(
        sim,
        plan,
        |sim, generation, job_id, instance_id, server_id| async move {
            fail_back_instance(&sim, generation, &job_id, &instance_id, &server_id).await;
        },
    );
}

async fn fail_back_instance(
    sim: &Simulator,
    generation: u64,
    job_id: &str,
    instance_id: &str,
    server_id: &str,
) -> Option<()> {
    let phases = sim.config.phases.clone();
    sim.update(generation, |state| {
        if let Some(participant) = state
            .job_mut(job_id)
            .and_then(|job| job.participant_mut(server_id))
        {
            participant.launch_status = "IN_PROGRESS";
        }
        log(state, job_id, "CONVERSION_START", for_server(server_id));
    })?;
    tokio::time::sleep(sim.scaled(phases.conversion)).await;
    let failure = sim.update(generation, |state| {
        log(state, job_id, "CONVERSION_END", for_server(server_id));
        log(
            state,
            job_id,
            "LAUNCH_START",
            JobLogData {
                target_instance_id: Some(instance_id.to_owned()),
                ..for_server(server_id)
            },
        );
        state
            .faults
            .failed_failback_launches
            .get(server_id)
            .cloned()
    })?;
    tokio::time::sleep(sim.scaled(phases.launch)).await;
    let (arn, failback_state) = sim.update(generation, |state| {
        let (launch_status, failback_state) = match &failure {
            Some(raw_error) => {
                log(
                    state,
                    job_id,
                    "LAUNCH_FAILED",
                    JobLogData {
                        raw_error: Some(raw_error.clone()),
                        ..for_server(server_id)
                    },
                );
                ("FAILED", "FAILBACK_ERROR")
            }
            None => ("LAUNCHED", "FAILBACK_COMPLETED"),
        };
        if let Some(participant) = state
            .job_mut(job_id)
            .and_then(|job| job.participant_mut(server_id))
        {
            participant.launch_status = launch_status;
        }
        if failure.is_none()
            && let Some(server) = state.server_mut(server_id)
        {
            server.failed_back_machine = Some(format!("machine-{server_id}"));
        }
        let instance = state.recovery_instance_mut(instance_id)?;
        instance.failback_state = Some(failback_state);
        Some((instance.arn.clone(), failback_state))
    })??;
    // The machine at home serves the plan's probes from now on.
    sim.sync_probe_listeners();
    if let Some(raw_error) = &failure {
        eprintln!("drs-sim: failback launch of {instance_id} ({server_id}) failed: {raw_error}");
    }
    emit_failback_state(sim, &arn, failback_state).await;
    Some(())
}
