//! Snapshots, launch configuration and replication: DescribeRecoverySnapshots,
//! GetLaunchConfiguration, RetryDataReplication, ReverseReplication.

use super::*;

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
        let server = state
            .server_mut(&request.source_server_id)
            .filter(|server| server.region == region)
            .ok_or_else(|| DrsError::not_found("SOURCE_SERVER", &request.source_server_id))?;
        // A retry cannot beat an injected stall: the stall is the simulated network problem,
        // and it lasts until the fault is cleared.
        let in_error = matches!(
            server.replication.state.as_str(),
            "STALLED" | "DISCONNECTED" | "STOPPED"
        );
        if in_error && server.replication.stalled_since.is_none() {
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

/// For an EC2 source from another Region: a source server in the origin Region (direction
/// FAILBACK) that replicates the recovery instance back, INITIAL_SYNC until the simulated
/// sync time has passed, then CONTINUOUS. Asking again answers the same server. A source
/// outside AWS fails back through the Failback Client instead, so it is refused.
pub(super) fn reverse_replication(sim: &Arc<Simulator>, region: &str, body: &[u8]) -> DrsResult {
    let request: ReverseReplicationRequest = parse_body(body)?;
    let now = Timestamp::now();
    let created = sim.with_state(|state| {
        let instance = state
            .recovery_instance(&request.recovery_instance_id)
            .filter(|instance| state.instance_region(instance) == Some(region))
            .ok_or_else(|| {
                DrsError::not_found("RECOVERY_INSTANCE", &request.recovery_instance_id)
            })?;
        let original_id = instance.source_server_id.clone();
        let original = state
            .server(&original_id)
            .cloned()
            .ok_or_else(|| DrsError::not_found("SOURCE_SERVER", &original_id))?;
        if let Some(arn) = &original.reversed_direction_source_server_arn {
            return Ok((arn.clone(), None));
        }
        let Some(origin_region) = original.origin_region.clone() else {
            return Err(DrsError::validation(
                "fieldValidationFailed",
                "recoveryInstanceID",
                format!(
                    "recovery instance {} belongs to source server {original_id}, which did \
                     not originate in EC2 (no sourceCloudProperties.originRegion): fail it \
                     back with the DRS Failback Client",
                    request.recovery_instance_id
                ),
            ));
        };
        let reversed_id = state.ids.source_server_id();
        let reversed_arn = sim.arn_in(&origin_region, "source-server", &reversed_id);
        let reversed = SourceServer {
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
            reversed_direction_source_server_arn: Some(original.arn.clone()),
            failed_back_machine: None,
            // moto plays EC2 in one Region here, so the reversed server launches from its
            // original's launch template.
            ..original
        };
        state.add_server(reversed);
        if let Some(server) = state.server_mut(&original_id) {
            server.reversed_direction_source_server_arn = Some(reversed_arn.clone());
        }
        add_initial_snapshots(state, &reversed_id, now);
        Ok((reversed_arn, Some((reversed_id, state.generation))))
    })?;
    let (arn, new_server) = created;
    if let Some((server_id, generation)) = new_server {
        crate::failback::spawn_reverse_sync(sim, generation, server_id);
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
