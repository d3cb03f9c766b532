//! The control API under `/_drplan/`: seeding, state, call record, reset (faults in
//! [`crate::faults`], probe sets in [`crate::probe_ports`], EC2 state reads in
//! [`crate::ec2_states`]).
//! Documented in `local/drs-sim/README.md`; keep the two in step.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::clock::Timestamp;
use crate::drs::add_initial_snapshots;
use crate::model::{DATA_REPLICATION_STATES, Replication, SourceServer, State as SimState, Tags};
use crate::sim::Simulator;
use crate::templates::{TemplateSpec, TemplateWork, run_template_work};

/// moto accepts any AMI ID (with a warning for unknown ones); this one is in moto's
/// built-in list, so RunInstances launches without complaint.
pub const DEFAULT_IMAGE_ID: &str = "ami-12c6146b";
pub const DEFAULT_INSTANCE_TYPE: &str = "t3.medium";

pub fn router() -> Router<Arc<Simulator>> {
    Router::new()
        .route("/_drplan/health", get(health))
        .route("/_drplan/source-servers", post(create_source_servers))
        .route(
            "/_drplan/faults",
            post(crate::faults::inject_faults).delete(crate::faults::clear_faults),
        )
        .route("/_drplan/state", get(show_state))
        .route("/_drplan/calls", get(show_calls).delete(clear_calls))
        .route("/_drplan/events", get(show_events))
        .route("/_drplan/reset", post(reset))
        .merge(crate::probe_ports::router())
        .merge(crate::ec2_states::router())
}

pub(crate) fn json_response(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// A refused control request: its status and why.
#[derive(Debug)]
pub(crate) struct ControlError {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
}

impl IntoResponse for ControlError {
    fn into_response(self) -> Response {
        json_response(self.status, json!({ "error": self.message }))
    }
}

pub(crate) fn bad_request(message: impl Into<String>) -> ControlError {
    ControlError {
        status: StatusCode::BAD_REQUEST,
        message: message.into(),
    }
}

pub(crate) fn not_found(message: String) -> ControlError {
    ControlError {
        status: StatusCode::NOT_FOUND,
        message,
    }
}

/// Accepts a bare JSON array, an object holding the array under `key`, or one object.
pub(crate) fn parse_list<T: for<'de> Deserialize<'de>>(
    body: &[u8],
    key: &str,
) -> Result<Vec<T>, ControlError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|error| bad_request(format!("body is not JSON: {error}")))?;
    let list = match value {
        Value::Array(_) => value,
        Value::Object(mut object) if object.contains_key(key) => {
            object.remove(key).unwrap_or(Value::Null)
        }
        Value::Object(_) => Value::Array(vec![value]),
        _ => {
            return Err(bad_request(format!(
                "body must be a list or {{\"{key}\": [...]}}"
            )));
        }
    };
    serde_json::from_value(list).map_err(|error| bad_request(format!("invalid {key}: {error}")))
}

async fn health() -> Response {
    json_response(StatusCode::OK, json!({ "ok": true }))
}

// ---- Seeding ----------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ServerSpec {
    hostname: String,
    #[serde(default)]
    fqdn: Option<String>,
    #[serde(default)]
    tags: Tags,
    #[serde(default)]
    replication: ReplicationSpec,
    #[serde(default)]
    launch_subnet_id: Option<String>,
    #[serde(default)]
    launch_security_group_ids: Vec<String>,
    #[serde(default)]
    instance_type: Option<String>,
    #[serde(default)]
    image_id: Option<String>,
    #[serde(default)]
    source_ip: Option<String>,
    /// `sourceCloudProperties.originRegion`: the server is an EC2 instance in that Region.
    #[serde(default)]
    origin_region: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ReplicationSpec {
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    lag_seconds: Option<u64>,
}

async fn create_source_servers(State(sim): State<Arc<Simulator>>, body: Bytes) -> Response {
    let specs: Vec<ServerSpec> = match parse_list(&body, "servers") {
        Ok(specs) => specs,
        Err(error) => return error.into_response(),
    };
    for spec in &specs {
        if spec.hostname.trim().is_empty() {
            return bad_request("every server needs a hostname").into_response();
        }
        if let Some(region) = &spec.origin_region
            && !is_region_name(region)
        {
            return bad_request(format!(
                "origin_region {region:?} of {} is not a Region name such as us-west-2",
                spec.hostname
            ))
            .into_response();
        }
        if let Some(state) = &spec.replication.state
            && !DATA_REPLICATION_STATES.contains(&state.as_str())
        {
            return bad_request(format!(
                "replication.state {state:?} of {} is not one of {DATA_REPLICATION_STATES:?}",
                spec.hostname
            ))
            .into_response();
        }
    }
    let now = Timestamp::now();
    let (mut created, work) = sim.with_state(|state| {
        let mut created = Vec::new();
        let mut work = Vec::new();
        for (index, spec) in specs.into_iter().enumerate() {
            let (answer, template_work) = upsert_server(&sim, state, spec, now, index);
            created.push(answer);
            work.extend(template_work);
        }
        (created, work)
    });
    // Seeding again may change a server's tags, which probe selectors match.
    sim.sync_probe_listeners();
    // Launch templates in EC2, made once the lock is released.
    let mut failures = Vec::new();
    for (item, result) in run_template_work(&sim, work).await {
        match result {
            Ok(template_id) => {
                if let TemplateWork::Create { server_id, .. } = &item {
                    sim.with_state(|state| {
                        if let Some(server) = state.server_mut(server_id) {
                            server.launch_template_id = template_id.clone();
                            server.launch_template_in_ec2 = true;
                        }
                    });
                }
                if let Some(answer) = created.get_mut(item.index()) {
                    answer["launch_template_id"] = json!(template_id);
                }
            }
            Err(error) => failures.push(format!(
                "launch template of source server {}: {error}",
                item.server_id()
            )),
        }
    }
    if !failures.is_empty() {
        // The servers exist; seeding again retries their templates.
        return json_response(
            StatusCode::BAD_GATEWAY,
            json!({ "error": failures.join("; "), "servers": created }),
        );
    }
    json_response(StatusCode::OK, json!({ "servers": created }))
}

/// Creates the server, or updates the one with the same hostname, so that seeding twice
/// leaves one server per hostname. With EC2, also says which launch template calls to make:
/// a template for a server without one, a new default version for a server whose launch
/// settings changed.
fn upsert_server(
    sim: &Simulator,
    state: &mut SimState,
    spec: ServerSpec,
    now: Timestamp,
    index: usize,
) -> (Value, Option<TemplateWork>) {
    let has_ec2 = sim.outbound.has_ec2();
    let replication_state = spec
        .replication
        .state
        .clone()
        .unwrap_or_else(|| "CONTINUOUS".to_owned());
    let lag_seconds = spec.replication.lag_seconds.unwrap_or(0);
    let existing_id = state
        .servers
        .iter()
        .find(|server| {
            server.hostname == spec.hostname && server.replication_direction == "FAILOVER"
        })
        .map(|server| server.id.clone());
    if let Some(id) = existing_id
        && let Some(server) = state.server_mut(&id)
    {
        server.tags = spec.tags;
        server.origin_region = spec.origin_region;
        if let Some(fqdn) = spec.fqdn {
            server.fqdn = fqdn;
        }
        server.replication = Replication {
            state: replication_state,
            lag_seconds,
            stalled_since: None,
            state_before_stall: None,
        };
        let before = template_spec(server);
        server.launch_subnet_id = spec.launch_subnet_id;
        server.launch_security_group_ids = spec.launch_security_group_ids;
        if let Some(instance_type) = spec.instance_type {
            server.instance_type = instance_type;
        }
        if let Some(image_id) = spec.image_id {
            server.image_id = image_id;
        }
        let after = template_spec(server);
        let work = if !has_ec2 {
            None
        } else if !server.launch_template_in_ec2 {
            Some(TemplateWork::Create {
                index,
                server_id: server.id.clone(),
                spec: after,
            })
        } else if after != before {
            Some(TemplateWork::Update {
                index,
                server_id: server.id.clone(),
                template_id: server.launch_template_id.clone(),
                spec: after,
            })
        } else {
            None
        };
        let answer = json!({
            "source_server_id": server.id,
            "arn": server.arn,
            "hostname": server.hostname,
            "created": false,
            "launch_template_id": server.launch_template_id,
        });
        return (answer, work);
    }
    let id = state.ids.source_server_id();
    let number = state.servers.len();
    let server = SourceServer {
        arn: sim.arn("source-server", &id),
        id: id.clone(),
        region: sim.config.region.clone(),
        origin_region: spec.origin_region,
        fqdn: spec
            .fqdn
            .unwrap_or_else(|| format!("{}.example.internal", spec.hostname)),
        hostname: spec.hostname,
        tags: spec.tags,
        replication: Replication {
            state: replication_state,
            lag_seconds,
            stalled_since: None,
            state_before_stall: None,
        },
        added: now,
        launch_subnet_id: spec.launch_subnet_id,
        launch_security_group_ids: spec.launch_security_group_ids,
        instance_type: spec
            .instance_type
            .unwrap_or_else(|| DEFAULT_INSTANCE_TYPE.to_owned()),
        image_id: spec.image_id.unwrap_or_else(|| DEFAULT_IMAGE_ID.to_owned()),
        // Documentation ranges (RFC 5737), so no seeded address is anybody's real host.
        source_ip: spec.source_ip.unwrap_or_else(|| {
            format!("198.51.{}.{}", 100 + (number / 250) % 100, number % 250 + 1)
        }),
        mac_address: format!(
            "02:00:00:{:02x}:{:02x}:{:02x}",
            (number >> 16) & 0xff,
            (number >> 8) & 0xff,
            number & 0xff
        ),
        recovery_instance_id: None,
        last_launch: None,
        last_launch_result: "NOT_STARTED",
        replication_direction: "FAILOVER",
        reversed_direction_source_server_arn: None,
        replicates_from: None,
        failed_back_machine: None,
        // Made up; with EC2 replaced by the real template's ID once it exists.
        launch_template_id: state.ids.launch_template_id(),
        launch_template_in_ec2: false,
    };
    let answer = json!({
        "source_server_id": server.id,
        "arn": server.arn,
        "hostname": server.hostname,
        "created": true,
        "launch_template_id": server.launch_template_id,
    });
    let work = has_ec2.then(|| TemplateWork::Create {
        index,
        server_id: id.clone(),
        spec: template_spec(&server),
    });
    state.add_server(server);
    add_initial_snapshots(state, &id, now);
    (answer, work)
}

/// `us-west-2`, `eu-central-1`, `us-gov-east-1`: lowercase words, then a number.
fn is_region_name(name: &str) -> bool {
    let parts: Vec<&str> = name.split('-').collect();
    parts.len() >= 3
        && parts
            .last()
            .is_some_and(|number| !number.is_empty() && number.chars().all(|c| c.is_ascii_digit()))
        && parts[..parts.len() - 1]
            .iter()
            .all(|word| !word.is_empty() && word.chars().all(|c| c.is_ascii_lowercase()))
}

fn template_spec(server: &SourceServer) -> TemplateSpec {
    TemplateSpec {
        image_id: server.image_id.clone(),
        instance_type: server.instance_type.clone(),
        subnet_id: server.launch_subnet_id.clone(),
        security_group_ids: server.launch_security_group_ids.clone(),
    }
}

async fn show_state(State(sim): State<Arc<Simulator>>) -> Response {
    let now = Timestamp::now();
    let mut body = sim.with_state(|state| {
        let unhealthy = state.unhealthy_instance_ids();
        let refusing = state.refusing_instance_ids();
        let servers: Vec<Value> = state
            .servers
            .iter()
            .map(|server| {
                json!({
                    "source_server_id": server.id,
                    "arn": server.arn,
                    "hostname": server.hostname,
                    "tags": server.tags,
                    "replication_state": server.replication.state,
                    "lag_seconds": server.lag_seconds(now),
                    "replication_direction": server.replication_direction,
                    "region": server.region,
                    "origin_region": server.origin_region,
                    "launch_template_id": server.launch_template_id,
                    "launch_template_in_ec2": server.launch_template_in_ec2,
                    "launch_subnet_id": server.launch_subnet_id,
                    "launch_security_group_ids": server.launch_security_group_ids,
                    "recovery_instance_id": server.recovery_instance_id,
                    "last_launch_result": server.last_launch_result,
                    "replicates_from": server.replicates_from,
                })
            })
            .collect();
        let jobs: Vec<Value> = state
            .jobs
            .iter()
            .map(|job| {
                json!({
                    "job_id": job.id,
                    "type": job.job_type,
                    "initiated_by": job.initiated_by,
                    "is_drill": job.is_drill,
                    "status": job.status.wire(),
                    "servers": job.participants.iter().map(|participant| json!({
                        "source_server_id": participant.source_server_id,
                        "launch_status": participant.launch_status,
                        "recovery_instance_id": participant.recovery_instance_id,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        let instances: Vec<Value> = state
            .recovery_instances
            .iter()
            .map(|instance| {
                json!({
                    "recovery_instance_id": instance.id,
                    "ec2_instance_id": instance.ec2_instance_id,
                    "source_server_id": instance.source_server_id,
                    "hostname": state.hostname_of(&instance.source_server_id),
                    "job_id": instance.job_id,
                    "is_drill": instance.is_drill,
                    "private_ip": instance.private_ip,
                    "public_ip": instance.public_ip,
                    "subnet_id": instance.subnet_id,
                    "security_group_ids": instance.security_group_ids,
                    "in_moto": instance.in_moto,
                    "failback_state": instance.failback_state.unwrap_or("FAILBACK_NOT_STARTED"),
                    "ec2_state": instance.ec2_state,
                    "unhealthy": unhealthy.contains(&instance.ec2_instance_id),
                    "unhealthy_mode": if !unhealthy.contains(&instance.ec2_instance_id) {
                        None
                    } else if refusing.contains(&instance.ec2_instance_id) {
                        Some("refuse")
                    } else {
                        Some("error")
                    },
                })
            })
            .collect();
        let faults = &state.faults;
        json!({
            "servers": servers,
            "jobs": jobs,
            "recovery_instances": instances,
            "faults": {
                "throttles": faults.throttles.iter().map(|(operation, fault)| json!({
                    "operation": operation,
                    "remaining": fault.remaining,
                    "retry_after_seconds": fault.retry_after_seconds,
                })).collect::<Vec<_>>(),
                "failed_launches": faults.failed_launches,
                "failed_failback_launches": faults.failed_failback_launches,
                "lost_launch_results": faults.lost_launch_results,
                "slow_conversions": faults.slow_conversions.iter().map(|(id, slow)| json!({
                    "source_server_id": id,
                    "factor": slow.factor,
                    "extra_seconds": slow.extra_seconds,
                })).collect::<Vec<_>>(),
                "unhealthy_targets": faults.unhealthy_targets,
                "refusing_targets": faults.refusing_targets,
            },
            "unhealthy_instance_ids": unhealthy,
            "outbound_errors": state.outbound_errors,
        })
    });
    body["probe_listeners"] = Value::Array(sim.listeners.describe());
    body["probe_sets"] = sim.with_probe_sets(|sets| sets.to_json());
    json_response(StatusCode::OK, body)
}

async fn show_calls(State(sim): State<Arc<Simulator>>) -> Response {
    let calls: Vec<Value> =
        sim.with_state(|state| state.calls.iter().map(|call| call.to_json()).collect());
    json_response(StatusCode::OK, json!({ "calls": calls }))
}

async fn clear_calls(State(sim): State<Arc<Simulator>>) -> Response {
    sim.with_state(|state| state.calls.clear());
    json_response(StatusCode::OK, json!({ "cleared": true }))
}

async fn show_events(State(sim): State<Arc<Simulator>>) -> Response {
    let events: Vec<Value> = sim.with_state(|state| {
        state
            .events
            .iter()
            .map(|emitted| {
                json!({
                    "event": emitted.event,
                    "delivered": emitted.delivered,
                    "error": emitted.error,
                })
            })
            .collect()
    });
    json_response(StatusCode::OK, json!({ "events": events }))
}

/// Forgets everything: servers, jobs, instances, faults, calls, events. Job tasks stop.
/// EC2 instances already in moto stay there (moto has its own reset). The probe sets are
/// configuration and stay.
async fn reset(State(sim): State<Arc<Simulator>>) -> Response {
    sim.stop_background_tasks();
    sim.with_state(SimState::reset);
    sim.listeners.close_all();
    json_response(StatusCode::OK, json!({ "reset": true }))
}
