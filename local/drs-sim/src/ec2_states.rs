//! What EC2 says of the recovery instances, read from moto on demand.
//!
//! DRS keeps a recovery instance whose EC2 instance was stopped or terminated outside
//! DRS, with `ec2InstanceState` saying so; its stand-in stops answering probes. The
//! simulator learns of such changes when asked (`POST /_drplan/refresh-instances`): the
//! local cloud's gateway asks after every EC2 TerminateInstances, StopInstances and
//! StartInstances it passes to moto, with the instance IDs of the call. There is no
//! polling: DescribeInstances over thousands of instances would load moto for nothing.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::control::{ControlError, bad_request, json_response};
use crate::outbound::OutboundError;
use crate::sim::Simulator;

/// DescribeInstances IDs per call: moto answers at most 100 reservations a page, and
/// each of the simulator's launches is one reservation.
const IDS_PER_CALL: usize = 100;

/// DRS's EC2InstanceState for an EC2 state name.
fn drs_state(ec2_state: &str) -> &'static str {
    match ec2_state {
        "pending" => "PENDING",
        "running" => "RUNNING",
        "stopping" => "STOPPING",
        "stopped" => "STOPPED",
        "shutting-down" => "SHUTTING-DOWN",
        "terminated" => "TERMINATED",
        _ => "NOT_FOUND",
    }
}

/// (instance ID, EC2 state name) of every instance in a DescribeInstances reply. In
/// EC2's Query XML an instance's `instanceState` follows its `instanceId`, before the
/// next instance's.
fn instance_states(reply: &str) -> Vec<(String, String)> {
    const ID: &str = "<instanceId>";
    let mut found = Vec::new();
    let mut rest = reply;
    while let Some(start) = rest.find(ID) {
        let after = &rest[start + ID.len()..];
        let Some(id_end) = after.find("</instanceId>") else {
            break;
        };
        let id = after[..id_end].trim().to_owned();
        let item = &after[id_end..];
        let item = &item[..item.find(ID).unwrap_or(item.len())];
        if let Some(state) = item
            .find("<instanceState>")
            .map(|at| &item[at..])
            .and_then(|state| Some(&state[state.find("<name>")? + "<name>".len()..]))
            .and_then(|name| name.find("</name>").map(|end| name[..end].trim()))
        {
            found.push((id, state.to_owned()));
        }
        rest = &after[id_end..];
    }
    found
}

/// EC2 state names of `ids` in the EC2 of `region`; an ID it does not know is absent.
async fn describe(
    sim: &Simulator,
    region: &str,
    ids: &[String],
) -> Result<HashMap<String, String>, OutboundError> {
    let mut states = HashMap::new();
    for chunk in ids.chunks(IDS_PER_CALL) {
        let mut params: Vec<(String, String)> = vec![
            ("Action".into(), "DescribeInstances".into()),
            ("Version".into(), "2016-11-15".into()),
            // A filter, not InstanceId.N: an ID moto does not know is left out instead
            // of failing the whole call.
            ("Filter.1.Name".into(), "instance-id".into()),
        ];
        for (index, id) in chunk.iter().enumerate() {
            params.push((format!("Filter.1.Value.{}", index + 1), id.clone()));
        }
        let reply = sim.outbound.ec2_call(region, params).await?;
        states.extend(instance_states(&reply));
    }
    Ok(states)
}

/// Reads from moto the state of the recovery instances among `ids` (every recovery
/// instance in moto when `None`), records it, and opens or closes their listeners.
/// Returns (EC2 instance ID, DRS state) of each instance read.
pub async fn refresh(
    sim: &Simulator,
    ids: Option<&BTreeSet<String>>,
) -> Result<Vec<(String, &'static str)>, OutboundError> {
    let (generation, by_region) = sim.with_state(|state| {
        // Each instance is read from the EC2 of its Region (its source server's).
        let mut by_region: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for instance in state
            .recovery_instances
            .iter()
            .filter(|instance| instance.in_moto)
            .filter(|instance| ids.is_none_or(|ids| ids.contains(&instance.ec2_instance_id)))
        {
            let region = state
                .instance_region(instance)
                .unwrap_or(sim.outbound.home_region());
            by_region
                .entry(region.to_owned())
                .or_default()
                .push(instance.ec2_instance_id.clone());
        }
        (state.generation, by_region)
    });
    if by_region.is_empty() {
        return Ok(Vec::new());
    }
    let mut states = HashMap::new();
    let mut targets = Vec::new();
    for (region, ids) in by_region {
        states.extend(describe(sim, &region, &ids).await?);
        targets.extend(ids);
    }
    let read = sim
        .update(generation, |state| {
            let mut read = Vec::new();
            let wanted: BTreeSet<&String> = targets.iter().collect();
            for instance in &mut state.recovery_instances {
                if !wanted.contains(&instance.ec2_instance_id) {
                    continue;
                }
                let now = drs_state(
                    states
                        .get(&instance.ec2_instance_id)
                        .map_or("", String::as_str),
                );
                // A DRS termination under way has already called the instance
                // SHUTTING-DOWN, perhaps before moto heard of it: only an end state
                // overrides that.
                let terminating = instance.ec2_state == "SHUTTING-DOWN";
                if !terminating || matches!(now, "TERMINATED" | "NOT_FOUND") {
                    instance.ec2_state = now;
                }
                read.push((instance.ec2_instance_id.clone(), instance.ec2_state));
            }
            read
        })
        .unwrap_or_default();
    sim.sync_probe_listeners();
    Ok(read)
}

pub fn router() -> Router<Arc<Simulator>> {
    Router::new().route("/_drplan/refresh-instances", post(refresh_instances))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RefreshSpec {
    #[serde(default)]
    instance_ids: Option<BTreeSet<String>>,
}

fn parse_refresh(body: &[u8]) -> Result<Option<BTreeSet<String>>, ControlError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let spec: RefreshSpec = serde_json::from_slice(body).map_err(|error| {
        bad_request(format!(
            "body must be empty or {{\"instance_ids\": [\"i-...\"]}}: {error}"
        ))
    })?;
    Ok(spec.instance_ids)
}

/// `POST /_drplan/refresh-instances`: reads the EC2 state of the recovery instances
/// named (`{"instance_ids": [...]}`, EC2 instance IDs) or of all of them (empty body).
async fn refresh_instances(State(sim): State<Arc<Simulator>>, body: Bytes) -> Response {
    let ids = match parse_refresh(&body) {
        Ok(ids) => ids,
        Err(error) => return error.into_response(),
    };
    if !sim.outbound.has_ec2() {
        return ControlError {
            status: StatusCode::CONFLICT,
            message: "the simulator has no EC2 endpoint: its instances live in no EC2".into(),
        }
        .into_response();
    }
    match refresh(&sim, ids.as_ref()).await {
        Ok(read) => {
            let rows: Vec<Value> = read
                .into_iter()
                .map(|(id, state)| json!({"ec2_instance_id": id, "ec2_state": state}))
                .collect();
            json_response(StatusCode::OK, json!({ "refreshed": rows }))
        }
        Err(error) => ControlError {
            status: StatusCode::BAD_GATEWAY,
            message: format!("could not read instance states from EC2: {error}"),
        }
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_each_instances_state_from_a_describe_reply() {
        let reply = "<DescribeInstancesResponse><reservationSet><item><instancesSet>\
            <item><instanceId>i-1</instanceId><imageId>ami-1</imageId>\
            <instanceState><code>48</code><name>terminated</name></instanceState></item>\
            <item><instanceId>i-2</instanceId><instanceState><code>16</code><name>running</name>\
            </instanceState><networkInterfaceSet><item><attachment><status>attached</status>\
            </attachment></item></networkInterfaceSet></item>\
            <item><instanceId>i-3</instanceId></item>\
            </instancesSet></item></reservationSet></DescribeInstancesResponse>";
        assert_eq!(
            instance_states(reply),
            [
                ("i-1".to_owned(), "terminated".to_owned()),
                ("i-2".to_owned(), "running".to_owned())
            ]
        );
        assert_eq!(drs_state("terminated"), "TERMINATED");
        assert_eq!(drs_state("stopped"), "STOPPED");
        assert_eq!(drs_state(""), "NOT_FOUND");
    }

    #[test]
    fn a_refresh_names_instances_or_means_all() {
        assert_eq!(parse_refresh(b"").ok(), Some(None));
        assert_eq!(parse_refresh(b"{}").ok(), Some(None));
        let ids = parse_refresh(br#"{"instance_ids": ["i-1"]}"#)
            .ok()
            .flatten();
        assert_eq!(ids, Some(BTreeSet::from(["i-1".to_owned()])));
        assert!(parse_refresh(br#"{"ids": []}"#).is_err());
    }
}
