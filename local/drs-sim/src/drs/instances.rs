//! Recovery instances: DescribeRecoveryInstances, TerminateRecoveryInstances,
//! StartFailbackLaunch, StopFailback.

use super::*;

// ---- Recovery instances -----------------------------------------------------------------

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct DescribeRecoveryInstancesRequest {
    filters: RecoveryInstanceFilters,
    max_results: Option<i64>,
    next_token: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct RecoveryInstanceFilters {
    #[serde(rename = "recoveryInstanceIDs")]
    recovery_instance_ids: Option<Vec<String>>,
    #[serde(rename = "sourceServerIDs")]
    source_server_ids: Option<Vec<String>>,
}

pub(super) fn describe_recovery_instances(
    sim: &Arc<Simulator>,
    region: &str,
    body: &[u8],
) -> DrsResult {
    let request: DescribeRecoveryInstancesRequest = parse_body(body)?;
    let filters = request.filters;
    if let Some(ids) = &filters.recovery_instance_ids {
        check_list_length("filters.recoveryInstanceIDs", ids.len(), 200)?;
    }
    let matching: Vec<Value> = sim.with_state(|state| {
        state
            .recovery_instances
            .iter()
            .filter(|instance| state.instance_region(instance) == Some(region))
            .filter(|instance| {
                filters
                    .recovery_instance_ids
                    .as_ref()
                    .is_none_or(|ids| ids.contains(&instance.id))
            })
            .filter(|instance| {
                filters
                    .source_server_ids
                    .as_ref()
                    .is_none_or(|ids| ids.contains(&instance.source_server_id))
            })
            .map(|instance| instance.to_json(state.hostname_of(&instance.source_server_id), region))
            .collect()
    });
    let (items, next_token) = paginate(
        matching,
        request.max_results,
        request.next_token.as_deref(),
        "recovery-instances",
    )?;
    ok(page_body(items, next_token))
}

#[derive(Deserialize)]
pub(super) struct RecoveryInstanceIdsRequest {
    #[serde(rename = "recoveryInstanceIDs")]
    recovery_instance_ids: Vec<String>,
    #[serde(default)]
    tags: Tags,
}

/// Validates the IDs of a Terminate or Failback request and pairs each with its server.
pub(super) fn instances_for_job(
    state: &State,
    region: &str,
    ids: &[String],
) -> Result<Vec<(String, String)>, DrsError> {
    if ids.is_empty() {
        return Err(DrsError::validation(
            "fieldValidationFailed",
            "recoveryInstanceIDs",
            "recoveryInstanceIDs must name at least one recovery instance",
        ));
    }
    check_list_length("recoveryInstanceIDs", ids.len(), 200)?;
    let mut pairs = Vec::new();
    let mut seen = BTreeSet::new();
    for id in ids {
        if !seen.insert(id.as_str()) {
            continue;
        }
        let instance = state
            .recovery_instance(id)
            .filter(|instance| state.instance_region(instance) == Some(region))
            .ok_or_else(|| DrsError::not_found("RECOVERY_INSTANCE", id))?;
        if let Some(job) = active_job_of(state, &instance.source_server_id) {
            return Err(DrsError::new(
                ErrorKind::Conflict,
                format!(
                    "recovery instance {id} (source server {}) is in active job {}",
                    instance.source_server_id, job.id
                ),
            )
            .with("resourceId", id.as_str())
            .with("resourceType", "RECOVERY_INSTANCE"));
        }
        pairs.push((id.clone(), instance.source_server_id.clone()));
    }
    Ok(pairs)
}

pub(super) fn new_instance_job(
    sim: &Simulator,
    state: &mut State,
    region: &str,
    initiated_by: &'static str,
    job_type: &'static str,
    instances: &[(String, String)],
    tags: Tags,
) -> Job {
    let job_id = state.ids.job_id();
    let is_drill = instances.iter().any(|(id, _)| {
        state
            .recovery_instance(id)
            .is_some_and(|instance| instance.is_drill)
    });
    Job {
        arn: sim.arn_in(region, "job", &job_id),
        id: job_id,
        region: region.to_owned(),
        job_type,
        initiated_by,
        is_drill,
        created: Timestamp::now(),
        ended: None,
        status: JobStatus::Pending,
        participants: instances
            .iter()
            .map(|(instance_id, server_id)| Participant {
                source_server_id: server_id.clone(),
                recovery_instance_id: Some(instance_id.clone()),
                launch_status: "PENDING",
            })
            .collect(),
        tags,
        log: Vec::new(),
    }
}

pub(super) fn terminate_recovery_instances(
    sim: &Arc<Simulator>,
    region: &str,
    body: &[u8],
) -> DrsResult {
    let request: RecoveryInstanceIdsRequest = parse_body(body)?;
    let (plan, job_json) = sim.with_state(|state| {
        let instances = instances_for_job(state, region, &request.recovery_instance_ids)?;
        check_concurrent_jobs(sim, state)?;
        let job = new_instance_job(
            sim,
            state,
            region,
            "TERMINATE_RECOVERY_INSTANCES",
            "TERMINATE",
            &instances,
            Tags::new(),
        );
        let plan = InstanceJobPlan {
            job_id: job.id.clone(),
            generation: state.generation,
            instances,
        };
        let job_json = job.to_json();
        state.add_job(job);
        Ok((plan, job_json))
    })?;
    lifecycle::spawn_terminate_job(sim, plan);
    ok(json!({ "job": job_json }))
}

/// A failback launch runs conversion on the Failback Client and reboots the machine into
/// the failed-back server; it needs a client connected and in sync, so every instance must
/// be FAILBACK_READY_FOR_LAUNCH. DRS answers a request that breaks this with a
/// ConflictException (the documented error for a resource in the wrong state); nothing is
/// started for any of the instances.
pub(super) fn start_failback_launch(sim: &Arc<Simulator>, region: &str, body: &[u8]) -> DrsResult {
    let request: RecoveryInstanceIdsRequest = parse_body(body)?;
    let (plan, job_json) = sim.with_state(|state| {
        let instances = instances_for_job(state, region, &request.recovery_instance_ids)?;
        for (instance_id, server_id) in &instances {
            let failback_state = state
                .recovery_instance(instance_id)
                .and_then(|instance| instance.failback_state)
                .unwrap_or("FAILBACK_NOT_STARTED");
            if failback_state != "FAILBACK_READY_FOR_LAUNCH" {
                return Err(DrsError::new(
                    ErrorKind::Conflict,
                    format!(
                        "recovery instance {instance_id} (source server {server_id}) is not \
                         ready for failback launch: its failback state is {failback_state}, \
                         not FAILBACK_READY_FOR_LAUNCH"
                    ),
                )
                .with("resourceId", instance_id.as_str())
                .with("resourceType", "RECOVERY_INSTANCE"));
            }
        }
        check_concurrent_jobs(sim, state)?;
        let job = new_instance_job(
            sim,
            state,
            region,
            "FAILBACK",
            "LAUNCH",
            &instances,
            request.tags.clone(),
        );
        for (instance_id, _) in &instances {
            if let Some(instance) = state.recovery_instance_mut(instance_id) {
                instance.failback_job_id = Some(job.id.clone());
            }
        }
        let plan = InstanceJobPlan {
            job_id: job.id.clone(),
            generation: state.generation,
            instances,
        };
        let job_json = job.to_json();
        state.add_job(job);
        Ok((plan, job_json))
    })?;
    crate::failback::spawn_failback_job(sim, plan);
    ok(json!({ "job": job_json }))
}

#[derive(Deserialize)]
pub(super) struct StopFailbackRequest {
    #[serde(rename = "recoveryInstanceID")]
    recovery_instance_id: String,
}

/// Back to FAILBACK_NOT_STARTED: the Failback Client is disconnected and its replication
/// forgotten. The answer has no body members, as in DRS.
pub(super) fn stop_failback(sim: &Arc<Simulator>, region: &str, body: &[u8]) -> DrsResult {
    let request: StopFailbackRequest = parse_body(body)?;
    let id = request.recovery_instance_id;
    let changed = sim.with_state(|state| {
        let in_region = state
            .recovery_instance(&id)
            .is_some_and(|instance| state.instance_region(instance) == Some(region));
        let instance = state
            .recovery_instance_mut(&id)
            .filter(|_| in_region)
            .ok_or_else(|| DrsError::not_found("RECOVERY_INSTANCE", &id))?;
        let was = instance.failback_state.unwrap_or("FAILBACK_NOT_STARTED");
        instance.failback_state = None;
        instance.failback_client_id = None;
        instance.failback_initiated = None;
        instance.failback_epoch += 1;
        Ok::<_, DrsError>((was != "FAILBACK_NOT_STARTED").then(|| instance.arn.clone()))
    })?;
    if let Some(arn) = changed {
        let sim = sim.clone();
        let task_sim = sim.clone();
        sim.spawn_background(async move {
            crate::failback::emit_failback_state(&task_sim, &arn, "FAILBACK_NOT_STARTED").await;
        });
    }
    ok(json!({}))
}
