//! Snapshots, launch configuration and replication: DescribeRecoverySnapshots,
//! GetLaunchConfiguration, RetryDataReplication, ReverseReplication.

use super::*;
use crate::reverse::ReverseSync;

// ---- Snapshots, launch configuration, replication ----------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct DescribeRecoverySnapshotsRequest {
    #[serde(rename = "sourceServerID")]
    source_server_id: String,
    #[serde(default)]
    filters: SnapshotFilters,
    #[serde(default)]
    order: Option<String>,
    #[serde(default)]
    max_results: Option<i64>,
    #[serde(default)]
    next_token: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct SnapshotFilters {
    from_date_time: Option<String>,
    to_date_time: Option<String>,
}

pub(super) fn describe_recovery_snapshots(
    sim: &Arc<Simulator>,
    region: &str,
    body: &[u8],
) -> DrsResult {
    let request: DescribeRecoverySnapshotsRequest = parse_body(body)?;
    let from = parse_date(
        "filters.fromDateTime",
        request.filters.from_date_time.as_deref(),
    )?;
    let to = parse_date(
        "filters.toDateTime",
        request.filters.to_date_time.as_deref(),
    )?;
    let descending = match request.order.as_deref() {
        None | Some("ASC") => false,
        Some("DESC") => true,
        Some(other) => {
            return Err(DrsError::validation(
                "fieldValidationFailed",
                "order",
                format!("order must be ASC or DESC, got {other:?}"),
            ));
        }
    };
    let snapshots = sim.with_state(|state| {
        state.server_in(region, &request.source_server_id)?;
        let mut snapshots: Vec<&RecoverySnapshot> = state
            .snapshots
            .iter()
            .filter(|snapshot| snapshot.source_server_id == request.source_server_id)
            .filter(|snapshot| from.is_none_or(|from| snapshot.taken >= from))
            .filter(|snapshot| to.is_none_or(|to| snapshot.taken <= to))
            .collect();
        snapshots.sort_by_key(|snapshot| snapshot.taken);
        if descending {
            snapshots.reverse();
        }
        Some(
            snapshots
                .into_iter()
                .map(RecoverySnapshot::to_json)
                .collect::<Vec<_>>(),
        )
    });
    let Some(snapshots) = snapshots else {
        return Err(DrsError::validation(
            "fieldValidationFailed",
            "sourceServerID",
            format!("source server {} was not found", request.source_server_id),
        ));
    };
    let (items, next_token) = paginate(
        snapshots,
        request.max_results,
        request.next_token.as_deref(),
        &format!("snapshots-{}", request.source_server_id),
    )?;
    ok(page_body(items, next_token))
}

#[derive(Deserialize)]
pub(super) struct SourceServerIdRequest {
    #[serde(rename = "sourceServerID")]
    source_server_id: String,
}

pub(super) fn get_launch_configuration(
    sim: &Arc<Simulator>,
    region: &str,
    body: &[u8],
) -> DrsResult {
    let request: SourceServerIdRequest = parse_body(body)?;
    sim.with_state(|state| {
        state
            .server_in(region, &request.source_server_id)
            .map(SourceServer::launch_configuration_json)
            .ok_or_else(|| DrsError::not_found("SOURCE_SERVER", &request.source_server_id))
    })
    .and_then(ok)
}

pub(super) fn retry_data_replication(sim: &Arc<Simulator>, region: &str, body: &[u8]) -> DrsResult {
    let request: SourceServerIdRequest = parse_body(body)?;
    let now = Timestamp::now();
    sim.with_state(|state| {
        let source_gone = state
            .server(&request.source_server_id)
            .is_some_and(|server| crate::reverse::source_is_gone(state, server));
        let server = state
            .server_mut(&request.source_server_id)
            .filter(|server| server.region == region)
            .ok_or_else(|| DrsError::not_found("SOURCE_SERVER", &request.source_server_id))?;
        // A retry cannot beat an injected stall: the stall is the simulated network problem,
        // and it lasts until the fault is cleared. Nor can it bring back a recovery
        // instance that a reversed replication read from and that was terminated.
        let in_error = matches!(
            server.replication.state.as_str(),
            "STALLED" | "DISCONNECTED" | "STOPPED"
        );
        if in_error && server.replication.stalled_since.is_none() && !source_gone {
            server.replication.state = "CONTINUOUS".to_owned();
            server.replication.lag_seconds = 0;
        }
        Ok(server.to_json(region, now))
    })
    .and_then(ok)
}

#[derive(Deserialize)]
pub(super) struct ReverseReplicationRequest {
    #[serde(rename = "recoveryInstanceID")]
    recovery_instance_id: String,
}

/// Starts replicating a recovery instance back across Regions (EC2 sources only), as the
/// DRS user guide's cross-Region failback describes ([`crate::reverse`]):
///
/// - on a recovery instance of a server that has no reversed-direction server yet: a new
///   source server in the origin Region (direction FAILBACK) that replicates the instance,
///   INITIAL_SYNC until the simulated sync time has passed, then CONTINUOUS; with EC2 it
///   gets a launch template of its own in the origin Region's EC2 first;
/// - on a recovery instance of a server that has one (a reversed server's instance: its
///   original; or a later recovery of the original: the reversed server made before): that
///   server now replicates this instance, RESCAN then CONTINUOUS, direction unchanged;
/// - asked again for the instance that server already replicates: the same answer, nothing
///   restarts.
///
/// The answer is the ARN of the server on the other side. A source outside AWS fails back
/// through the Failback Client instead, so it is refused.
pub(super) fn reverse_replication(sim: &Arc<Simulator>, region: &str, body: &[u8]) -> DrsResult {
    let request: ReverseReplicationRequest = parse_body(body)?;
    let now = Timestamp::now();
    let has_ec2 = sim.outbound.has_ec2();
    let (arn, sync, generation) = sim.with_state(|state| {
        let instance = state
            .recovery_instance(&request.recovery_instance_id)
            .filter(|instance| state.instance_region(instance) == Some(region))
            .ok_or_else(|| {
                DrsError::not_found("RECOVERY_INSTANCE", &request.recovery_instance_id)
            })?;
        let instance_id = instance.id.clone();
        let server_id = instance.source_server_id.clone();
        let server = state
            .server(&server_id)
            .cloned()
            .ok_or_else(|| DrsError::not_found("SOURCE_SERVER", &server_id))?;
        let generation = state.generation;
        let other_side = server
            .reversed_direction_source_server_arn
            .as_deref()
            .and_then(|arn| state.servers.iter().find(|other| other.arn == arn))
            .map(|other| other.id.clone());
        if let Some(other_id) = other_side
            && let Some(other) = state.server_mut(&other_id)
        {
            let arn = other.arn.clone();
            if other.replicates_from.as_deref() == Some(instance_id.as_str()) {
                return Ok((arn, None, generation));
            }
            crate::reverse::start_replicating(other, &instance_id, "RESCAN");
            let sync = ReverseSync {
                server_id: other_id,
                from_instance: instance_id,
                syncing: "RESCAN",
                create_template: false,
            };
            return Ok((arn, Some(sync), generation));
        }
        let Some(origin_region) = server.origin_region.clone() else {
            return Err(DrsError::validation(
                "fieldValidationFailed",
                "recoveryInstanceID",
                format!(
                    "recovery instance {} belongs to source server {server_id}, which did \
                     not originate in EC2 (no sourceCloudProperties.originRegion): fail it \
                     back with the DRS Failback Client",
                    request.recovery_instance_id
                ),
            ));
        };
        let reversed_id = state.ids.source_server_id();
        let reversed_arn = sim.arn_in(&origin_region, "source-server", &reversed_id);
        let mut reversed = SourceServer {
            id: reversed_id.clone(),
            arn: reversed_arn.clone(),
            region: origin_region.clone(),
            // It replicates from the recovery instance, which runs in this Region.
            origin_region: Some(region.to_owned()),
            added: now,
            replication: crate::model::Replication {
                state: "INITIAL_SYNC".to_owned(),
                lag_seconds: 0,
                stalled_since: None,
                state_before_stall: None,
            },
            recovery_instance_id: None,
            last_launch: None,
            last_launch_result: "NOT_STARTED",
            replication_direction: "FAILBACK",
            reversed_direction_source_server_arn: Some(server.arn.clone()),
            replicates_from: Some(instance_id.clone()),
            failed_back_machine: None,
            // Without EC2 it launches from its original's (made-up) template.
            ..server
        };
        if has_ec2 {
            // DRS makes every source server a launch template of its own, in its Region:
            // made in the origin Region's EC2 by the sync task. Until then the ID is
            // made up and a launch makes the template first.
            reversed.launch_template_id = state.ids.launch_template_id();
            reversed.launch_template_in_ec2 = false;
            reversed.launch_subnet_id = None;
            reversed.launch_security_group_ids = Vec::new();
        }
        state.add_server(reversed);
        if let Some(original) = state.server_mut(&server_id) {
            original.reversed_direction_source_server_arn = Some(reversed_arn.clone());
        }
        add_initial_snapshots(state, &reversed_id, now);
        let sync = ReverseSync {
            server_id: reversed_id,
            from_instance: instance_id,
            syncing: "INITIAL_SYNC",
            create_template: has_ec2,
        };
        Ok((reversed_arn, Some(sync), generation))
    })?;
    if let Some(sync) = sync {
        crate::reverse::spawn_sync(sim, generation, sync);
    }
    ok(json!({ "reversedDirectionSourceServerArn": arn }))
}

/// A new server already has a replicated past: six point-in-time snapshots, ten minutes
/// apart, as DRS keeps for the last hour.
pub fn add_initial_snapshots(state: &mut State, source_server_id: &str, now: Timestamp) {
    for minutes_ago in [60_u64, 50, 40, 30, 20, 10] {
        let taken = now.minus(std::time::Duration::from_secs(minutes_ago * 60));
        let snapshot = RecoverySnapshot {
            id: state.ids.recovery_snapshot_id(),
            source_server_id: source_server_id.to_owned(),
            expected: taken,
            taken,
            ebs_snapshots: vec![state.ids.ebs_snapshot_id()],
        };
        state.snapshots.push(snapshot);
    }
}
