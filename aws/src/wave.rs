//! Launching a wave's servers within the DRS quotas, and following the launch. Shared
//! by launch-wave (first launch) and wait-wave (polls, and later batches of a wave
//! larger than the account's active-job quota, and parks until DRS's launch-result
//! events); tag-instances tags what the launch recovered.

use std::collections::{BTreeMap, HashSet};

use aws_sdk_drs::Client;
use drplan_core::contract::keys::parked_job;
use drplan_core::contract::step::{Tagged, WaitWaveInput};
use drplan_core::contract::tags::{EXECUTION as TAG_EXECUTION, WAVE as TAG_WAVE};
use drplan_core::contract::{
    LaunchPoll, LaunchState, RunContext, WaveRef, WaveStep, pick_snapshot,
};
use drplan_core::failback::run::FailbackRecord;
pub use drplan_core::launch::WaveLaunchRecord;
use drplan_core::launch::{JobView, WaveProgress, WaveVerdict, evaluate_wave};
use drplan_core::launch_wait::{parks_for_wave, pending_by_job, should_wake};
use drplan_core::resume::{CarriedServer, with_carried};
use drplan_core::tagging::{self, RecoveredInstance};
use drplan_core::{Mode, ResolvedPlan, SnapshotChoice, WaveServer, plan_launch_batches};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use crate::bootstrap::Clients;
use crate::step::LogContext;
use crate::store::RunStore;
use crate::{FunctionError, drill, drs, ec2};

/// Jobs this old or older are assumed finished when counting the account's quota use.
const ACTIVE_JOB_LOOKBACK: SignedDuration = SignedDuration::from_hours(24);
/// Clock skew allowed between Step Functions' start time and DRS's job times.
const CLOCK_SKEW: SignedDuration = SignedDuration::from_mins(5);

/// The servers of one wave, from the run's resolved plan.
pub async fn wave_servers(
    store: &RunStore,
    run: &RunContext,
    wave: &WaveRef,
) -> Result<Vec<WaveServer>, FunctionError> {
    let resolved: ResolvedPlan = store.require(&run.records().resolved_plan()).await?;
    resolved
        .waves
        .into_iter()
        .nth(wave.index)
        .filter(|w| w.name == wave.name)
        .map(|w| w.servers)
        .ok_or_else(|| {
            FunctionError::InvalidInput(format!(
                "the run has no wave {} at index {}",
                wave.name, wave.index
            ))
        })
}

/// What a resumed run does not launch again in this wave (empty for other runs): the
/// servers carried over from earlier runs of its chain, and for an adopted wave the run
/// it was adopted from (nothing of it launches).
pub struct Carried {
    pub servers: Vec<CarriedServer>,
    pub adopted_from: Option<String>,
}

impl Carried {
    /// The wave's servers this run launches itself.
    pub fn to_launch(&self, wave: &WaveRef, servers: &[WaveServer]) -> Vec<WaveServer> {
        if wave.adopted {
            return Vec::new();
        }
        servers
            .iter()
            .filter(|s| !self.servers.iter().any(|c| c.source_server_id == s.id))
            .cloned()
            .collect()
    }
}

pub async fn carried_servers(
    store: &RunStore,
    run: &RunContext,
    wave: &WaveRef,
) -> Result<Carried, FunctionError> {
    let Some(resumed) = &run.resumed else {
        return Ok(Carried {
            servers: Vec::new(),
            adopted_from: None,
        });
    };
    let record = store.require(&run.records().resume()).await?;
    Ok(Carried {
        servers: record.carried_in(&wave.name).to_vec(),
        adopted_from: wave.adopted.then(|| resumed.execution_name.clone()),
    })
}

/// This run's jobs for this wave, recognised by the tags launch-wave puts on them, so
/// that a retried step never launches a server twice.
pub async fn jobs_of_wave(
    drs_client: &Client,
    run: &RunContext,
    wave: &WaveRef,
) -> Result<Vec<JobView>, FunctionError> {
    let jobs = drs::jobs_since(drs_client, run.started_at - CLOCK_SKEW).await?;
    Ok(jobs
        .into_iter()
        .filter(|(_, tags)| {
            tags.get(TAG_EXECUTION) == Some(&run.execution_name)
                && tags.get(TAG_WAVE) == Some(&wave.name)
        })
        .map(|(job, _)| job)
        .collect())
}

/// How much of the DRS quotas the whole account uses now.
struct QuotaUse {
    servers: usize,
    jobs: usize,
}

async fn quota_use(drs_client: &Client) -> Result<QuotaUse, FunctionError> {
    let active: Vec<JobView> = drs::jobs_since(drs_client, Timestamp::now() - ACTIVE_JOB_LOOKBACK)
        .await?
        .into_iter()
        .map(|(job, _)| job)
        .filter(|job| !job.is_completed())
        .collect();
    Ok(QuotaUse {
        servers: active.iter().map(|j| j.servers.len()).sum(),
        jobs: active.len(),
    })
}

/// A failback run's record of the recovery instances to fail back (`None` for other runs).
pub async fn failback_record(
    store: &RunStore,
    run: &RunContext,
) -> Result<Option<FailbackRecord>, FunctionError> {
    match run.mode {
        Mode::Failback => Ok(Some(store.require(&run.records().failback()).await?)),
        Mode::Drill | Mode::Recovery => Ok(None),
    }
}

/// The wave's servers that none of `jobs` holds yet.
fn unlaunched<'a>(servers: &'a [WaveServer], jobs: &[JobView]) -> Vec<&'a WaveServer> {
    let in_jobs: HashSet<&str> = jobs
        .iter()
        .flat_map(|j| j.servers.iter().map(|s| s.source_server_id.as_str()))
        .collect();
    servers
        .iter()
        .filter(|s| !in_jobs.contains(s.id.as_str()))
        .collect()
}

/// Starts jobs for the wave's servers that no job of this run holds yet, as many as
/// the quotas allow now: StartRecovery, or for a failback StartFailbackLaunch on their
/// recovery instances. Returns how many servers it launched.
pub async fn launch_pending_servers(
    drs_client: &Client,
    run: &RunContext,
    wave: &WaveRef,
    servers: &[WaveServer],
    existing_jobs: &[JobView],
    failback: Option<&FailbackRecord>,
) -> Result<usize, FunctionError> {
    let pending = unlaunched(servers, existing_jobs);
    if pending.is_empty() {
        return Ok(0);
    }
    let batches = plan_launch_batches(&pending, &run.quotas)
        .map_err(|e| FunctionError::InvalidInput(format!("quotas: {e}")))?;
    let mut usage = quota_use(drs_client).await?;
    let mut tags = run.tags();
    tags.push((TAG_WAVE.into(), wave.name.clone()));
    let mut launched = 0;
    for job in batches.iter().flatten() {
        let fits = usage.jobs < run.quotas.max_concurrent_jobs
            && usage.servers + job.len() <= run.quotas.max_servers_in_active_jobs;
        if !fits {
            // The next poll launches the rest once running jobs end.
            break;
        }
        let started = match failback {
            // EC2 sources fail back by a recovery in their origin Region, of the reversed
            // servers (the wave's servers are those there).
            Some(record) if record.origin_region.is_none() => {
                let instances = record
                    .instances_of(job.iter().map(|s| s.id.as_str()))
                    .map_err(FunctionError::InvalidInput)?;
                drs::start_failback_launch(drs_client, &instances, &tags).await
            }
            Some(_) | None => {
                let mut request = Vec::with_capacity(job.len());
                for server in job {
                    request.push((
                        server.id.clone(),
                        snapshot_for(drs_client, run, server).await?,
                    ));
                }
                drs::start_recovery(drs_client, &request, run.mode == Mode::Drill, &tags).await
            }
        };
        match started {
            Ok(job_id) => {
                tracing::info!(job_id, servers = job.len(), mode = %run.mode, "started launch job");
                usage.jobs += 1;
                usage.servers += job.len();
                launched += job.len();
            }
            // Another run took the capacity between our count and our call: wait.
            Err(FunctionError::AwsCallFailed { code, .. })
                if code == "ServiceQuotaExceededException" =>
            {
                tracing::warn!("DRS quota reached; the rest of the wave launches on a later poll");
                break;
            }
            // A server already in an active job: when the job is this run's own (a
            // retried step whose first StartRecovery went through, its answer lost),
            // the servers are launched; anyone else's job is a real conflict.
            Err(conflict @ FunctionError::AwsCallFailed { .. })
                if conflict.aws_code() == Some("ConflictException") =>
            {
                let ours = jobs_of_wave(drs_client, run, wave).await?;
                let in_our_jobs: HashSet<&str> = ours
                    .iter()
                    .flat_map(|j| j.servers.iter().map(|s| s.source_server_id.as_str()))
                    .collect();
                if !job.iter().all(|s| in_our_jobs.contains(s.id.as_str())) {
                    return Err(conflict);
                }
                tracing::warn!(
                    servers = job.len(),
                    "StartRecovery answered ConflictException for servers already in this run's own job: counted as launched"
                );
                usage.jobs += 1;
                usage.servers += job.len();
                launched += job.len();
            }
            Err(e) => return Err(e),
        }
    }
    Ok(launched)
}

async fn snapshot_for(
    drs_client: &Client,
    run: &RunContext,
    server: &WaveServer,
) -> Result<Option<String>, FunctionError> {
    match run.snapshot {
        SnapshotChoice::Latest => Ok(None),
        SnapshotChoice::Before(before) => {
            let snapshots = drs::recovery_snapshots(drs_client, &server.id).await?;
            pick_snapshot(&snapshots, before)
                .map(|id| Some(id.to_owned()))
                .ok_or_else(|| {
                    FunctionError::NotReady(vec![drplan_core::Issue::new(
                        format!("servers[{:?}]", server.display_name()),
                        format!(
                            "{} has no recovery snapshot taken before {before}",
                            server.id
                        ),
                    )])
                })
        }
    }
}

/// For a drill with a drill subnet (discover's `isolation.json`), puts the wave's
/// servers on drill versions of their launch templates before anything launches.
/// Returns how many templates it switched.
pub async fn isolate_drill_wave(
    drs_client: &Client,
    ec2: &aws_sdk_ec2::Client,
    store: &RunStore,
    run: &RunContext,
    wave: &WaveRef,
    servers: &[WaveServer],
) -> Result<usize, FunctionError> {
    if run.mode != drplan_core::Mode::Drill {
        return Ok(0);
    }
    let isolation = store.require(&run.records().isolation()).await?;
    drill::swap_in_drill_templates(drs_client, ec2, store, run, wave, servers, &isolation).await
}

/// Records what the wave still waits for (by job), for [`park_wave`].
pub async fn record_pending(
    store: &RunStore,
    run: &RunContext,
    wave: &WaveRef,
    progress: &WaveProgress,
) -> Result<(), FunctionError> {
    store
        .write(
            &run.records().wave(wave).pending(),
            &pending_by_job(progress),
        )
        .await
}

/// Parks the wave on `task_token` for every job with servers still launching (as the
/// last poll saw them), so that the trigger function wakes it when DRS reports them
/// settled: one record per job, written once per wait, each naming the wave's other jobs
/// (the wave is woken once, when all settled) unless some of the wave's `pending_servers`
/// are in no job yet. Events that came between the poll and the park found no park to
/// wake, so the park then asks DRS once (one DescribeJobs for all its jobs) and wakes
/// itself when what it waits for has settled already. Returns the number of jobs parked
/// on; none means the wave simply waits out its poll delay.
pub async fn park_wave(
    drs_client: &Client,
    store: &RunStore,
    sfn: &aws_sdk_sfn::Client,
    run: &RunContext,
    wave: &WaveRef,
    pending_servers: usize,
    task_token: &str,
) -> Result<usize, FunctionError> {
    let pending: BTreeMap<String, Vec<String>> = store
        .read(&run.records().wave(wave).pending())
        .await?
        .unwrap_or_default();
    if pending.is_empty() {
        return Ok(0);
    }
    let in_jobs: usize = pending.values().map(Vec::len).sum();
    let parks = parks_for_wave(
        &pending,
        in_jobs < pending_servers,
        task_token,
        &run.execution_name,
        &wave.name,
        Timestamp::now(),
    );
    for (job_id, park) in &parks {
        store.write(&parked_job(job_id), park).await?;
    }
    let job_ids: Vec<String> = pending.keys().cloned().collect();
    let jobs = drs::describe_jobs(drs_client, &job_ids).await?;
    let settled_already = parks
        .iter()
        .find(|(job_id, park)| should_wake(park, job_id, &jobs));
    if let Some((job_id, _)) = settled_already {
        let woken = wake_parked_wave(sfn, task_token, job_id).await?;
        tracing::info!(
            job_id,
            woken,
            "a job settled before the wave parked: woken at once"
        );
    }
    Ok(pending.len())
}

/// Sends a park's token back. A token that timed out (the wave polled on schedule) or
/// was already used is not an error: the wave has moved on.
pub async fn wake_parked_wave(
    sfn: &aws_sdk_sfn::Client,
    task_token: &str,
    job_id: &str,
) -> Result<bool, FunctionError> {
    let sent = sfn
        .send_task_success()
        .task_token(task_token)
        .output(serde_json::json!({ "woken_by_job": job_id }).to_string())
        .send()
        .await;
    match sent {
        Ok(_) => Ok(true),
        Err(error)
            if error.as_service_error().is_some_and(|e| {
                e.is_task_timed_out() || e.is_invalid_token() || e.is_task_does_not_exist()
            }) =>
        {
            Ok(false)
        }
        Err(error) => Err(FunctionError::from_sdk(
            "Step Functions SendTaskSuccess",
            error,
        )),
    }
}

/// One poll: launches servers still waiting for capacity, reads the jobs, decides.
pub async fn poll_wave(
    drs_client: &Client,
    ec2: &aws_sdk_ec2::Client,
    store: &RunStore,
    run: &RunContext,
    wave: &WaveRef,
    previous: &LaunchPoll,
) -> Result<LaunchPoll, FunctionError> {
    let all_servers = wave_servers(store, run, wave).await?;
    let carried = carried_servers(store, run, wave).await?;
    let servers = carried.to_launch(wave, &all_servers);
    let mut jobs = jobs_of_wave(drs_client, run, wave).await?;
    let now = Timestamp::now();
    let timed_out = now >= previous.deadline;
    // Servers still waiting for capacity launch now (a failback's record read only then).
    if !timed_out && !unlaunched(&servers, &jobs).is_empty() {
        let failback = failback_record(store, run).await?;
        if launch_pending_servers(drs_client, run, wave, &servers, &jobs, failback.as_ref()).await?
            > 0
        {
            jobs = jobs_of_wave(drs_client, run, wave).await?;
        }
    }
    // The log explains failures; read it only when a job has something to explain or
    // everything is settled (for the report's launch phases).
    let mut progress = evaluate_wave(&servers, &jobs, &[]);
    let settled = matches!(
        progress.verdict(),
        WaveVerdict::Succeeded { .. } | WaveVerdict::Failed { .. }
    );
    let mut log = Vec::new();
    if settled || timed_out || progress.failed().next().is_some() {
        for job in &jobs {
            log.extend(drs::job_log(drs_client, &job.job_id).await?);
        }
        progress = evaluate_wave(&servers, &jobs, &log);
    }
    if timed_out {
        progress.time_out(run.timing.launch_timeout_minutes);
    }
    if run.resumed.is_some() {
        progress.servers = with_carried(
            &all_servers,
            progress.servers,
            &carried.servers,
            carried.adopted_from.as_deref(),
        );
    }
    let verdict = progress.verdict();
    let attempt = previous.attempt + 1;
    let mut poll = LaunchPoll {
        state: LaunchState::InProgress,
        attempt,
        wait_seconds: run.timing.poll_delay_seconds(attempt),
        deadline: previous.deadline,
        launched: progress.launched().count(),
        failed: progress.failed().count(),
        pending: progress
            .servers
            .iter()
            .filter(|s| !s.state.is_final())
            .count(),
        reason: None,
    };
    match verdict {
        WaveVerdict::InProgress { .. } => {
            record_pending(store, run, wave, &progress).await?;
            return Ok(poll);
        }
        WaveVerdict::Succeeded { .. } => poll.state = LaunchState::Succeeded,
        WaveVerdict::Failed { reason, .. } => {
            poll.state = LaunchState::Failed;
            poll.reason = Some(format!("wave {:?}: {reason}", wave.name));
        }
    }
    // Every server's launch has settled: DRS no longer reads the launch templates, so a
    // drill's are put back now rather than at the end of the run.
    drill::restore_templates(ec2, store, &run.records().wave(wave).template_swaps()).await?;
    let record = WaveLaunchRecord {
        wave: wave.clone(),
        progress,
        log,
        job_ids: jobs.iter().map(|j| j.job_id.clone()).collect(),
        finished_at: now,
    };
    store
        .write(&run.records().wave(wave).launch(), &record)
        .await?;
    Ok(poll)
}

/// The EC2 instance of each launched server, by source server: the one this run's own
/// job launched (its `participatingServers` recovery instance, as DRS reports it now,
/// else the job log's launched instance), never whatever DRS reports for the server now,
/// which may be another run's. An instance a later launch replaced is still this run's:
/// EC2 reports it terminated, and the health gate fails it.
pub async fn own_instances(
    drs_client: &Client,
    launched: &[&drplan_core::launch::ServerOutcome],
) -> Result<std::collections::HashMap<String, String>, FunctionError> {
    let ids: Vec<String> = launched
        .iter()
        .filter_map(|s| s.recovery_instance_id.clone())
        .collect();
    let current = drs::recovery_instances_by_id(drs_client, &ids).await?;
    let mut instances = std::collections::HashMap::with_capacity(launched.len());
    for server in launched {
        let from_drs = server.recovery_instance_id.as_ref().and_then(|id| {
            current
                .iter()
                .find(|r| &r.recovery_instance_id == id)
                .and_then(|r| r.ec2_instance_id.clone())
        });
        if let Some(ec2) = from_drs.or_else(|| server.ec2_instance_id.clone()) {
            instances.insert(server.source_server_id.clone(), ec2);
        }
    }
    Ok(instances)
}

impl LogContext for WaitWaveInput {
    fn log_context(&self) -> (String, String, String) {
        match self {
            Self::Park { park, .. } => park.log_context(),
            Self::Poll(step) => step.log_context(),
        }
    }
}

/// The launch-wave step: StartRecovery for the wave's servers not yet in one of its
/// jobs (a retried invocation finds its own jobs by their tags and launches nothing
/// twice), a drill's launch templates on the drill subnet first, and the first poll.
pub async fn launch_wave(clients: &Clients, step: WaveStep) -> Result<WaveStep, FunctionError> {
    let clients = &*clients.for_run(&step.run);
    let WaveStep { run, wave, .. } = step;
    let all_servers = wave_servers(&clients.store, &run, &wave).await?;
    let servers = carried_servers(&clients.store, &run, &wave)
        .await?
        .to_launch(&wave, &all_servers);
    if servers.is_empty() && !all_servers.is_empty() {
        // A resumed run's wave with nothing to launch: its launch is settled now.
        tracing::info!(
            carried = all_servers.len(),
            "nothing of the wave launches again"
        );
        let first = LaunchPoll {
            state: LaunchState::InProgress,
            attempt: 0,
            wait_seconds: 0,
            deadline: run.within_run(Timestamp::now() + SignedDuration::from_mins(1)),
            launched: 0,
            failed: 0,
            pending: 0,
            reason: None,
        };
        let poll = poll_wave(
            &clients.drs,
            &clients.ec2,
            &clients.store,
            &run,
            &wave,
            &first,
        )
        .await?;
        return Ok(WaveStep {
            run,
            wave,
            poll: Some(poll),
            health: None,
        });
    }
    let jobs = jobs_of_wave(&clients.drs, &run, &wave).await?;
    // A drill launches from drill versions of the servers' launch templates (the drill
    // subnet); the wave's last poll puts the previous versions back.
    isolate_drill_wave(
        &clients.drs,
        &clients.ec2,
        &clients.store,
        &run,
        &wave,
        &servers,
    )
    .await?;
    let failback = failback_record(&clients.store, &run).await?;
    let launched = launch_pending_servers(
        &clients.drs,
        &run,
        &wave,
        &servers,
        &jobs,
        failback.as_ref(),
    )
    .await?;
    // What the wave waits for, so that its first wait can be cut short by DRS's
    // launch-result events.
    let jobs = jobs_of_wave(&clients.drs, &run, &wave).await?;
    let progress = evaluate_wave(&servers, &jobs, &[]);
    record_pending(&clients.store, &run, &wave, &progress).await?;
    tracing::info!(
        launched,
        already_in_jobs = servers.len() - launched,
        "wave launched"
    );
    let deadline = run.within_run(
        Timestamp::now() + SignedDuration::from_mins(i64::from(run.timing.launch_timeout_minutes)),
    );
    let poll = LaunchPoll {
        state: LaunchState::InProgress,
        attempt: 0,
        wait_seconds: run.timing.poll_delay_seconds(0),
        deadline,
        launched: 0,
        failed: 0,
        pending: servers.len(),
        reason: None,
    };
    Ok(WaveStep {
        run,
        wave,
        poll: Some(poll),
        health: None,
    })
}

/// The wait-wave step: one poll of the wave's launch, or a park until its launch-result
/// events.
pub async fn wait_for_wave(
    clients: &Clients,
    input: WaitWaveInput,
) -> Result<Value, FunctionError> {
    let run = match &input {
        WaitWaveInput::Park { park, .. } => &park.run,
        WaitWaveInput::Poll(step) => &step.run,
    };
    let clients = &*clients.for_run(run);
    match input {
        WaitWaveInput::Poll(step) => serde_json::to_value(poll_wave_step(clients, step).await?)
            .map_err(|e| FunctionError::InvalidInput(e.to_string())),
        WaitWaveInput::Park { park, task_token } => {
            let jobs = park_wave(
                &clients.drs,
                &clients.store,
                &clients.sfn,
                &park.run,
                &park.wave,
                park.poll.as_ref().map_or(0, |poll| poll.pending),
                &task_token,
            )
            .await?;
            tracing::info!(
                jobs,
                "wave parked until its launch-result events or the poll delay"
            );
            Ok(json!({ "parked_jobs": jobs }))
        }
    }
}

async fn poll_wave_step(clients: &Clients, step: WaveStep) -> Result<WaveStep, FunctionError> {
    let WaveStep {
        run, wave, poll, ..
    } = step;
    let previous = poll.ok_or_else(|| {
        FunctionError::InvalidInput(
            "wait-wave needs the poll state that launch-wave returns".into(),
        )
    })?;
    let poll = poll_wave(
        &clients.drs,
        &clients.ec2,
        &clients.store,
        &run,
        &wave,
        &previous,
    )
    .await?;
    tracing::info!(
        state = ?poll.state,
        launched = poll.launched,
        failed = poll.failed,
        pending = poll.pending,
        "wave polled"
    );
    Ok(WaveStep {
        run,
        wave,
        poll: Some(poll),
        health: None,
    })
}

/// The tag-instances step: [`tag_wave_instances`] with the run's clients (the origin
/// Region's in a failback of EC2 sources).
pub async fn tag_wave(clients: &Clients, step: WaveStep) -> Result<Tagged, FunctionError> {
    let clients = clients.for_run(&step.run);
    tag_wave_instances(&clients.drs, &clients.ec2, &clients.store, step).await
}

/// Tags the EC2 instances the wave recovered with the plan, wave, execution and mode (one
/// CreateTags per batch of instances), and names those DRS left unnamed
/// ([`drplan_core::tagging`]).
pub async fn tag_wave_instances(
    drs_client: &Client,
    ec2_client: &aws_sdk_ec2::Client,
    store: &RunStore,
    step: WaveStep,
) -> Result<Tagged, FunctionError> {
    let WaveStep { run, wave, .. } = step;
    if !run.launches_in_aws() {
        // A failback brings servers home to their own machines: nothing in EC2 to tag.
        return Ok(Tagged {
            wave: wave.name,
            tagged: 0,
            already_tagged: 0,
            named: 0,
        });
    }
    let record: WaveLaunchRecord = store.require(&run.records().wave(&wave).launch()).await?;
    let launched: Vec<_> = record.progress.launched().collect();
    // This run's own instances: the ones its jobs launched, never whatever DRS reports
    // for the server now (another run may have launched it since).
    let own = own_instances(drs_client, &launched).await?;
    let mut instances = Vec::with_capacity(launched.len());
    for server in &launched {
        let Some(instance_id) = own.get(&server.source_server_id).cloned() else {
            return Err(FunctionError::WaveFailed(format!(
                "wave {:?}: DRS reports {} launched but names no EC2 instance for it",
                wave.name, server.source_server_id
            )));
        };
        instances.push(RecoveredInstance {
            ec2_instance_id: instance_id,
            source_server_id: server.source_server_id.clone(),
            hostname: server.hostname.clone(),
        });
    }
    // A retried step (throttled by EC2 part way through) plans from the tags the
    // instances carry now, so it tags only what the last attempt did not.
    let ids: Vec<String> = instances
        .iter()
        .map(|i| i.ec2_instance_id.clone())
        .collect();
    let current =
        ec2::instance_tags(ec2_client, &ids, &tagging::keys_to_read(&run, &wave.name)).await?;
    let plan = tagging::plan_tagging(&run, &wave.name, &instances, &current);
    ec2::apply_tagging(ec2_client, &plan).await?;
    tracing::info!(
        tagged = plan.tagged(),
        named = plan.names.len(),
        already_tagged = plan.already_tagged,
        create_tags_calls = plan.calls(),
        "instances tagged"
    );
    Ok(Tagged {
        wave: wave.name,
        tagged: plan.tagged(),
        already_tagged: plan.already_tagged,
        named: plan.names.len(),
    })
}
