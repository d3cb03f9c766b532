//! The DRS operations: request shapes, validation, quotas, and responses.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::{DrsError, DrsResult, ErrorKind, parse_body};
use crate::clock::Timestamp;
use crate::lifecycle::{self, InstanceJobPlan, LaunchPlan};
use crate::model::{
    Job, JobStatus, LastLaunch, Participant, RecoverySnapshot, SourceServer, State, Tags,
};
use crate::sim::Simulator;

/// Page size when a request gives no maxResults.
const DEFAULT_PAGE_SIZE: usize = 200;
/// The largest page the simulator returns, whatever maxResults asks for.
const MAX_PAGE_SIZE: usize = 1000;

pub fn dispatch(sim: &Arc<Simulator>, operation: &str, body: &[u8]) -> DrsResult {
    match operation {
        "DescribeSourceServers" => describe_source_servers(sim, body),
        "StartRecovery" => start_recovery(sim, body),
        "DescribeJobs" => describe_jobs(sim, body),
        "DescribeJobLogItems" => describe_job_log_items(sim, body),
        "DescribeRecoveryInstances" => describe_recovery_instances(sim, body),
        "TerminateRecoveryInstances" => terminate_recovery_instances(sim, body),
        "DescribeRecoverySnapshots" => describe_recovery_snapshots(sim, body),
        "GetLaunchConfiguration" => get_launch_configuration(sim, body),
        "RetryDataReplication" => retry_data_replication(sim, body),
        "ReverseReplication" => reverse_replication(sim, body),
        "StartFailbackLaunch" => start_failback_launch(sim, body),
        other => Err(DrsError::validation(
            "unknownOperation",
            "operation",
            format!("the DRS simulator does not implement {other}"),
        )),
    }
}

fn ok(body: Value) -> DrsResult {
    Ok((StatusCode::OK, body))
}

/// One page of `items` after the offset in `next_token`; the token names the listing it
/// came from so that a token from one operation is refused by another.
fn paginate<T>(
    items: Vec<T>,
    max_results: Option<i64>,
    next_token: Option<&str>,
    listing: &str,
) -> Result<(Vec<T>, Option<String>), DrsError> {
    let page_size = match max_results {
        None => DEFAULT_PAGE_SIZE,
        Some(requested) if requested >= 1 => {
            usize::try_from(requested).map_or(MAX_PAGE_SIZE, |size| size.min(MAX_PAGE_SIZE))
        }
        Some(requested) => {
            return Err(DrsError::validation(
                "fieldValidationFailed",
                "maxResults",
                format!("maxResults must be at least 1, got {requested}"),
            ));
        }
    };
    let offset = match next_token.filter(|token| !token.is_empty()) {
        None => 0,
        Some(token) => token
            .strip_prefix(listing)
            .and_then(|rest| rest.strip_prefix('.'))
            .and_then(|offset| offset.parse::<usize>().ok())
            .ok_or_else(|| {
                DrsError::validation(
                    "fieldValidationFailed",
                    "nextToken",
                    format!("nextToken {token:?} is not valid here"),
                )
            })?,
    };
    let total = items.len();
    let page: Vec<T> = items.into_iter().skip(offset).take(page_size).collect();
    let next = (offset + page_size < total).then(|| format!("{listing}.{}", offset + page_size));
    Ok((page, next))
}

/// `{"items": [...], "nextToken": "..."}`, leaving nextToken out on the last page as DRS
/// does (a null would read as "more to come" to a careless client).
fn page_body(items: Vec<Value>, next_token: Option<String>) -> Value {
    let mut body = serde_json::Map::new();
    body.insert("items".into(), Value::Array(items));
    if let Some(token) = next_token {
        body.insert("nextToken".into(), Value::String(token));
    }
    Value::Object(body)
}

fn check_list_length(field: &str, length: usize, max: usize) -> Result<(), DrsError> {
    if length > max {
        return Err(DrsError::validation(
            "fieldValidationFailed",
            field,
            format!("{field} has {length} members; at most {max} are allowed"),
        ));
    }
    Ok(())
}

fn parse_date(field: &str, value: Option<&str>) -> Result<Option<Timestamp>, DrsError> {
    value
        .map(|text| {
            Timestamp::parse_iso8601(text).ok_or_else(|| {
                DrsError::validation(
                    "fieldValidationFailed",
                    field,
                    format!(
                        "{field} {text:?} is not an ISO-8601 date-time such as 2024-01-31T12:00:00Z"
                    ),
                )
            })
        })
        .transpose()
}

// ---- DescribeSourceServers -------------------------------------------------------------

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct DescribeSourceServersRequest {
    filters: SourceServerFilters,
    max_results: Option<i64>,
    next_token: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SourceServerFilters {
    #[serde(rename = "sourceServerIDs")]
    source_server_ids: Option<Vec<String>>,
    #[serde(rename = "hardwareId")]
    hardware_id: Option<String>,
    #[serde(rename = "stagingAccountIDs")]
    staging_account_ids: Option<Vec<String>>,
}

fn describe_source_servers(sim: &Arc<Simulator>, body: &[u8]) -> DrsResult {
    let request: DescribeSourceServersRequest = parse_body(body)?;
    let filters = request.filters;
    if let Some(ids) = &filters.source_server_ids {
        check_list_length("filters.sourceServerIDs", ids.len(), 200)?;
    }
    if let Some(ids) = &filters.staging_account_ids {
        check_list_length("filters.stagingAccountIDs", ids.len(), 200)?;
    }
    let wanted_ids: Option<BTreeSet<&str>> = filters
        .source_server_ids
        .as_ref()
        .map(|ids| ids.iter().map(String::as_str).collect());
    let account_id = sim.config.account_id.as_str();
    let now = Timestamp::now();
    let matching: Vec<Value> = sim.with_state(|state| {
        state
            .servers
            .iter()
            .filter(|server| {
                wanted_ids
                    .as_ref()
                    .is_none_or(|ids| ids.contains(server.id.as_str()))
            })
            .filter(|server| {
                filters.hardware_id.as_deref().is_none_or(|hardware_id| {
                    server.mac_address.eq_ignore_ascii_case(hardware_id) || server.id == hardware_id
                })
            })
            .filter(|_| {
                // Every simulated server is staged in the simulator's own account.
                filters
                    .staging_account_ids
                    .as_ref()
                    .is_none_or(|accounts| accounts.iter().any(|account| account == account_id))
            })
            .map(|server| server.to_json(&sim.config.region, now))
            .collect()
    });
    let (items, next_token) = paginate(
        matching,
        request.max_results,
        request.next_token.as_deref(),
        "source-servers",
    )?;
    ok(page_body(items, next_token))
}

// ---- StartRecovery ----------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StartRecoveryRequest {
    source_servers: Vec<RequestedServer>,
    #[serde(default)]
    is_drill: bool,
    #[serde(default)]
    tags: Tags,
}

#[derive(Deserialize)]
struct RequestedServer {
    #[serde(rename = "sourceServerID")]
    source_server_id: String,
    #[serde(rename = "recoverySnapshotID", default)]
    recovery_snapshot_id: Option<String>,
}

/// Servers in active launch jobs, and the number of active jobs, for the quotas.
fn active_load(state: &State) -> (usize, usize) {
    let active: Vec<&Job> = state.jobs.iter().filter(|job| job.is_active()).collect();
    let servers = active
        .iter()
        .filter(|job| job.job_type == "LAUNCH")
        .map(|job| job.participants.len())
        .sum();
    (servers, active.len())
}

fn check_concurrent_jobs(sim: &Simulator, state: &State) -> Result<(), DrsError> {
    let (_, active_jobs) = active_load(state);
    let max_jobs = sim.config.quotas.max_concurrent_jobs;
    if active_jobs + 1 > max_jobs {
        return Err(DrsError::new(
            ErrorKind::ServiceQuotaExceeded,
            format!("{active_jobs} jobs are active; the quota is {max_jobs} concurrent jobs"),
        )
        .with("resourceType", "JOB")
        .with("serviceCode", "drs"));
    }
    Ok(())
}

/// The active job a server takes part in, if any.
fn active_job_of<'a>(state: &'a State, source_server_id: &str) -> Option<&'a Job> {
    state.jobs.iter().find(|job| {
        job.is_active()
            && job
                .participants
                .iter()
                .any(|participant| participant.source_server_id == source_server_id)
    })
}

fn start_recovery(sim: &Arc<Simulator>, body: &[u8]) -> DrsResult {
    let request: StartRecoveryRequest = parse_body(body)?;
    let quotas = &sim.config.quotas;
    let requested = request.source_servers.len();
    if requested == 0 {
        return Err(DrsError::validation(
            "fieldValidationFailed",
            "sourceServers",
            "sourceServers must name at least one source server",
        ));
    }
    if requested > quotas.max_servers_per_job {
        return Err(DrsError::validation(
            "fieldValidationFailed",
            "sourceServers",
            format!(
                "{requested} source servers in one job; the quota is {} source servers per job",
                quotas.max_servers_per_job
            ),
        ));
    }
    let mut seen = BTreeSet::new();
    for server in &request.source_servers {
        if !seen.insert(server.source_server_id.as_str()) {
            return Err(DrsError::validation(
                "fieldValidationFailed",
                "sourceServers",
                format!(
                    "source server {} is listed more than once",
                    server.source_server_id
                ),
            ));
        }
    }
    let now = Timestamp::now();
    let (plan, job_json) = sim.with_state(|state| {
        for server in &request.source_servers {
            if state.server(&server.source_server_id).is_none() {
                return Err(DrsError::not_found(
                    "SOURCE_SERVER",
                    &server.source_server_id,
                ));
            }
            if let Some(snapshot_id) = &server.recovery_snapshot_id {
                let belongs = state.snapshots.iter().any(|snapshot| {
                    &snapshot.id == snapshot_id
                        && snapshot.source_server_id == server.source_server_id
                });
                if !belongs {
                    return Err(DrsError::not_found("RECOVERY_SNAPSHOT", snapshot_id));
                }
            }
        }
        for server in &request.source_servers {
            if let Some(job) = active_job_of(state, &server.source_server_id) {
                return Err(DrsError::new(
                    ErrorKind::Conflict,
                    format!(
                        "source server {} is already in active job {}",
                        server.source_server_id, job.id
                    ),
                )
                .with("resourceId", server.source_server_id.as_str())
                .with("resourceType", "SOURCE_SERVER"));
            }
        }
        check_concurrent_jobs(sim, state)?;
        let (servers_in_active_jobs, _) = active_load(state);
        if servers_in_active_jobs + requested > quotas.max_servers_in_active_jobs {
            return Err(DrsError::new(
                ErrorKind::ServiceQuotaExceeded,
                format!(
                    "{servers_in_active_jobs} source servers are in active jobs and {requested} more were asked for; \
                     the quota is {} source servers across active jobs",
                    quotas.max_servers_in_active_jobs
                ),
            )
            .with("resourceType", "SOURCE_SERVER")
            .with("serviceCode", "drs"));
        }

        let job_id = state.ids.job_id();
        let job = Job {
            arn: sim.arn("job", &job_id),
            id: job_id.clone(),
            job_type: "LAUNCH",
            initiated_by: if request.is_drill {
                "START_DRILL"
            } else {
                "START_RECOVERY"
            },
            is_drill: request.is_drill,
            created: now,
            ended: None,
            status: JobStatus::Pending,
            participants: request
                .source_servers
                .iter()
                .map(|server| Participant {
                    source_server_id: server.source_server_id.clone(),
                    recovery_instance_id: None,
                    launch_status: "PENDING",
                })
                .collect(),
            tags: request.tags.clone(),
            log: Vec::new(),
        };
        for server in &request.source_servers {
            if let Some(source) = state.server_mut(&server.source_server_id) {
                source.last_launch = Some(LastLaunch {
                    job_id: job_id.clone(),
                    api_call: now,
                    is_drill: request.is_drill,
                    status: "PENDING",
                });
                source.last_launch_result = "PENDING";
            }
        }
        let job_json = job.to_json();
        state.add_job(job);
        let plan = LaunchPlan {
            job_id,
            generation: state.generation,
            is_drill: request.is_drill,
            servers: request
                .source_servers
                .iter()
                .map(|server| {
                    (
                        server.source_server_id.clone(),
                        server.recovery_snapshot_id.clone(),
                    )
                })
                .collect(),
        };
        Ok((plan, job_json))
    })?;
    lifecycle::spawn_launch_job(sim, plan);
    Ok((StatusCode::ACCEPTED, json!({ "job": job_json })))
}

// ---- Jobs -------------------------------------------------------------------------------

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct DescribeJobsRequest {
    filters: JobFilters,
    max_results: Option<i64>,
    next_token: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct JobFilters {
    #[serde(rename = "jobIDs")]
    job_ids: Option<Vec<String>>,
    #[serde(rename = "fromDate")]
    from_date: Option<String>,
    #[serde(rename = "toDate")]
    to_date: Option<String>,
}

fn describe_jobs(sim: &Arc<Simulator>, body: &[u8]) -> DrsResult {
    let request: DescribeJobsRequest = parse_body(body)?;
    let filters = request.filters;
    if let Some(ids) = &filters.job_ids {
        check_list_length("filters.jobIDs", ids.len(), 1000)?;
    }
    let from = parse_date("filters.fromDate", filters.from_date.as_deref())?;
    let to = parse_date("filters.toDate", filters.to_date.as_deref())?;
    let wanted: Option<BTreeSet<&str>> = filters
        .job_ids
        .as_ref()
        .map(|ids| ids.iter().map(String::as_str).collect());
    let matching: Vec<Value> = sim.with_state(|state| {
        state
            .jobs
            .iter()
            .filter(|job| {
                wanted
                    .as_ref()
                    .is_none_or(|ids| ids.contains(job.id.as_str()))
            })
            .filter(|job| from.is_none_or(|from| job.created >= from))
            .filter(|job| to.is_none_or(|to| job.created <= to))
            .map(Job::to_json)
            .collect()
    });
    let (items, next_token) = paginate(
        matching,
        request.max_results,
        request.next_token.as_deref(),
        "jobs",
    )?;
    ok(page_body(items, next_token))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DescribeJobLogItemsRequest {
    #[serde(rename = "jobID")]
    job_id: String,
    #[serde(default)]
    max_results: Option<i64>,
    #[serde(default)]
    next_token: Option<String>,
}

fn describe_job_log_items(sim: &Arc<Simulator>, body: &[u8]) -> DrsResult {
    let request: DescribeJobLogItemsRequest = parse_body(body)?;
    let items = sim.with_state(|state| {
        state.job(&request.job_id).map(|job| {
            job.log
                .iter()
                .map(|item| item.to_json())
                .collect::<Vec<_>>()
        })
    });
    let Some(items) = items else {
        return Err(DrsError::validation(
            "fieldValidationFailed",
            "jobID",
            format!("job {} was not found", request.job_id),
        ));
    };
    let (items, next_token) = paginate(
        items,
        request.max_results,
        request.next_token.as_deref(),
        &format!("log-{}", request.job_id),
    )?;
    ok(page_body(items, next_token))
}

// ---- Recovery instances -----------------------------------------------------------------

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct DescribeRecoveryInstancesRequest {
    filters: RecoveryInstanceFilters,
    max_results: Option<i64>,
    next_token: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RecoveryInstanceFilters {
    #[serde(rename = "recoveryInstanceIDs")]
    recovery_instance_ids: Option<Vec<String>>,
    #[serde(rename = "sourceServerIDs")]
    source_server_ids: Option<Vec<String>>,
}

fn describe_recovery_instances(sim: &Arc<Simulator>, body: &[u8]) -> DrsResult {
    let request: DescribeRecoveryInstancesRequest = parse_body(body)?;
    let filters = request.filters;
    if let Some(ids) = &filters.recovery_instance_ids {
        check_list_length("filters.recoveryInstanceIDs", ids.len(), 200)?;
    }
    let region = sim.config.region.as_str();
    let matching: Vec<Value> = sim.with_state(|state| {
        state
            .recovery_instances
            .iter()
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
struct RecoveryInstanceIdsRequest {
    #[serde(rename = "recoveryInstanceIDs")]
    recovery_instance_ids: Vec<String>,
    #[serde(default)]
    tags: Tags,
}

/// Validates the IDs of a Terminate or Failback request and pairs each with its server.
fn instances_for_job(state: &State, ids: &[String]) -> Result<Vec<(String, String)>, DrsError> {
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

fn new_instance_job(
    sim: &Simulator,
    state: &mut State,
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
        arn: sim.arn("job", &job_id),
        id: job_id,
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

fn terminate_recovery_instances(sim: &Arc<Simulator>, body: &[u8]) -> DrsResult {
    let request: RecoveryInstanceIdsRequest = parse_body(body)?;
    let (plan, job_json) = sim.with_state(|state| {
        let instances = instances_for_job(state, &request.recovery_instance_ids)?;
        check_concurrent_jobs(sim, state)?;
        let job = new_instance_job(
            sim,
            state,
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

fn start_failback_launch(sim: &Arc<Simulator>, body: &[u8]) -> DrsResult {
    let request: RecoveryInstanceIdsRequest = parse_body(body)?;
    let (plan, job_json) = sim.with_state(|state| {
        let instances = instances_for_job(state, &request.recovery_instance_ids)?;
        check_concurrent_jobs(sim, state)?;
        let job = new_instance_job(
            sim,
            state,
            "FAILBACK",
            "LAUNCH",
            &instances,
            request.tags.clone(),
        );
        for (instance_id, _) in &instances {
            if let Some(instance) = state.recovery_instance_mut(instance_id) {
                instance.failback_state = Some("FAILBACK_IN_PROGRESS");
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
    lifecycle::spawn_failback_job(sim, plan);
    ok(json!({ "job": job_json }))
}

// ---- Snapshots, launch configuration, replication ----------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DescribeRecoverySnapshotsRequest {
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
struct SnapshotFilters {
    from_date_time: Option<String>,
    to_date_time: Option<String>,
}

fn describe_recovery_snapshots(sim: &Arc<Simulator>, body: &[u8]) -> DrsResult {
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
        state.server(&request.source_server_id)?;
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
struct SourceServerIdRequest {
    #[serde(rename = "sourceServerID")]
    source_server_id: String,
}

fn get_launch_configuration(sim: &Arc<Simulator>, body: &[u8]) -> DrsResult {
    let request: SourceServerIdRequest = parse_body(body)?;
    sim.with_state(|state| {
        state
            .server(&request.source_server_id)
            .map(SourceServer::launch_configuration_json)
            .ok_or_else(|| DrsError::not_found("SOURCE_SERVER", &request.source_server_id))
    })
    .and_then(ok)
}

fn retry_data_replication(sim: &Arc<Simulator>, body: &[u8]) -> DrsResult {
    let request: SourceServerIdRequest = parse_body(body)?;
    let now = Timestamp::now();
    let region = sim.config.region.clone();
    sim.with_state(|state| {
        let server = state
            .server_mut(&request.source_server_id)
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
        Ok(server.to_json(&region, now))
    })
    .and_then(ok)
}

#[derive(Deserialize)]
struct ReverseReplicationRequest {
    #[serde(rename = "recoveryInstanceID")]
    recovery_instance_id: String,
}

fn reverse_replication(sim: &Arc<Simulator>, body: &[u8]) -> DrsResult {
    let request: ReverseReplicationRequest = parse_body(body)?;
    let now = Timestamp::now();
    sim.with_state(|state| {
        let instance = state
            .recovery_instance(&request.recovery_instance_id)
            .ok_or_else(|| {
                DrsError::not_found("RECOVERY_INSTANCE", &request.recovery_instance_id)
            })?;
        let original_id = instance.source_server_id.clone();
        let original = state
            .server(&original_id)
            .cloned()
            .ok_or_else(|| DrsError::not_found("SOURCE_SERVER", &original_id))?;
        if let Some(arn) = &original.reversed_direction_source_server_arn {
            return ok(json!({ "reversedDirectionSourceServerArn": arn }));
        }
        // The recovery instance now replicates back: a new source server, direction FAILBACK.
        let reversed_id = state.ids.source_server_id();
        let reversed_arn = sim.arn("source-server", &reversed_id);
        let reversed = SourceServer {
            id: reversed_id.clone(),
            arn: reversed_arn.clone(),
            added: now,
            recovery_instance_id: None,
            last_launch: None,
            last_launch_result: "NOT_STARTED",
            replication_direction: "FAILBACK",
            reversed_direction_source_server_arn: Some(original.arn.clone()),
            // Launching it goes back where the original came from; the simulator has one
            // Region, so the reversed server shares the original's launch template.
            ..original
        };
        state.add_server(reversed);
        if let Some(server) = state.server_mut(&original_id) {
            server.reversed_direction_source_server_arn = Some(reversed_arn.clone());
        }
        add_initial_snapshots(state, &reversed_id, now);
        ok(json!({ "reversedDirectionSourceServerArn": reversed_arn }))
    })
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

// ---- Tags -------------------------------------------------------------------------------

fn tags_of<'a>(state: &'a mut State, arn: &str) -> Option<&'a mut Tags> {
    if let Some(index) = state.servers.iter().position(|server| server.arn == arn) {
        return Some(&mut state.servers[index].tags);
    }
    if let Some(index) = state.jobs.iter().position(|job| job.arn == arn) {
        return Some(&mut state.jobs[index].tags);
    }
    state
        .recovery_instances
        .iter_mut()
        .find(|instance| instance.arn == arn)
        .map(|instance| &mut instance.tags)
}

fn check_arn(arn: &str) -> Result<(), DrsError> {
    if arn.len() < 20 || !arn.starts_with("arn:") {
        return Err(DrsError::validation(
            "fieldValidationFailed",
            "resourceArn",
            format!("{arn:?} is not an ARN"),
        ));
    }
    Ok(())
}

fn not_found_arn(arn: &str) -> DrsError {
    DrsError::new(
        ErrorKind::ResourceNotFound,
        format!("resource {arn} was not found"),
    )
    .with("resourceId", arn)
}

pub fn list_tags(sim: &Arc<Simulator>, arn: &str) -> DrsResult {
    check_arn(arn)?;
    sim.with_state(|state| {
        tags_of(state, arn)
            .map(|tags| json!({ "tags": tags }))
            .ok_or_else(|| not_found_arn(arn))
    })
    .and_then(ok)
}

#[derive(Deserialize)]
struct TagResourceRequest {
    tags: Tags,
}

pub fn tag_resource(sim: &Arc<Simulator>, arn: &str, body: &[u8]) -> DrsResult {
    check_arn(arn)?;
    let request: TagResourceRequest = parse_body(body)?;
    for (key, value) in &request.tags {
        if key.len() > 256 || value.len() > 256 {
            return Err(DrsError::validation(
                "fieldValidationFailed",
                "tags",
                format!("tag {key:?} is longer than 256 characters (key or value)"),
            ));
        }
    }
    sim.with_state(|state| {
        let tags = tags_of(state, arn).ok_or_else(|| not_found_arn(arn))?;
        tags.extend(request.tags);
        Ok(json!({}))
    })
    .and_then(ok)
}

pub fn untag_resource(sim: &Arc<Simulator>, arn: &str, tag_keys: &[String]) -> DrsResult {
    check_arn(arn)?;
    sim.with_state(|state| {
        let tags = tags_of(state, arn).ok_or_else(|| not_found_arn(arn))?;
        for key in tag_keys {
            tags.remove(key);
        }
        Ok(json!({}))
    })
    .and_then(ok)
}
