//! StartRecovery (with DRS's quotas) and the jobs it starts: DescribeJobs,
//! DescribeJobLogItems.

use super::*;

// ---- StartRecovery ----------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct StartRecoveryRequest {
    source_servers: Vec<RequestedServer>,
    #[serde(default)]
    is_drill: bool,
    #[serde(default)]
    tags: Tags,
}

#[derive(Deserialize)]
pub(super) struct RequestedServer {
    #[serde(rename = "sourceServerID")]
    source_server_id: String,
    #[serde(rename = "recoverySnapshotID", default)]
    recovery_snapshot_id: Option<String>,
}

/// Servers in active launch jobs, and the number of active jobs, for the quotas.
pub(super) fn active_load(state: &State) -> (usize, usize) {
    let active: Vec<&Job> = state.jobs.iter().filter(|job| job.is_active()).collect();
    let servers = active
        .iter()
        .filter(|job| job.job_type == "LAUNCH")
        .map(|job| job.participants.len())
        .sum();
    (servers, active.len())
}

pub(super) fn check_concurrent_jobs(sim: &Simulator, state: &State) -> Result<(), DrsError> {
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
pub(super) fn active_job_of<'a>(state: &'a State, source_server_id: &str) -> Option<&'a Job> {
    state.jobs.iter().find(|job| {
        job.is_active()
            && job
                .participants
                .iter()
                .any(|participant| participant.source_server_id == source_server_id)
    })
}

pub(super) fn start_recovery(sim: &Arc<Simulator>, region: &str, body: &[u8]) -> DrsResult {
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
            if state.server_in(region, &server.source_server_id).is_none() {
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
            arn: sim.arn_in(region, "job", &job_id),
            id: job_id.clone(),
            region: region.to_owned(),
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
pub(super) struct DescribeJobsRequest {
    filters: JobFilters,
    max_results: Option<i64>,
    next_token: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct JobFilters {
    #[serde(rename = "jobIDs")]
    job_ids: Option<Vec<String>>,
    #[serde(rename = "fromDate")]
    from_date: Option<String>,
    #[serde(rename = "toDate")]
    to_date: Option<String>,
}

pub(super) fn describe_jobs(sim: &Arc<Simulator>, region: &str, body: &[u8]) -> DrsResult {
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
            .filter(|job| job.region == region)
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
pub(super) struct DescribeJobLogItemsRequest {
    #[serde(rename = "jobID")]
    job_id: String,
    #[serde(default)]
    max_results: Option<i64>,
    #[serde(default)]
    next_token: Option<String>,
}

pub(super) fn describe_job_log_items(sim: &Arc<Simulator>, region: &str, body: &[u8]) -> DrsResult {
    let request: DescribeJobLogItemsRequest = parse_body(body)?;
    let items = sim.with_state(|state| {
        state
            .job(&request.job_id)
            .filter(|job| job.region == region)
            .map(|job| {
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
