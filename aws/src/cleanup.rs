//! The cleanup function: after a drill, deregisters the drill's instances from the
//! drill target groups it registered them into, terminates the drill's recovery
//! instances through DRS (TerminateRecoveryInstances) and follows the terminate jobs
//! until they end.
//!
//! Before a run's first wave (state CLEAR) it clears the way instead: stops the drill a
//! recovery took the plan from (and restores that drill's launch templates), waits out
//! active jobs on the plan's servers, and terminates drill instances left on them, so
//! that nothing launches beside, or into the templates of, another run. The state
//! between calls is `drplan_core::cleanup`'s.

use std::collections::HashSet;

use drplan_core::contract::step::{Cleanup, CleanupState, CleanupStep};
use drplan_core::contract::{ErrorName, RunContext, RunRecords};
use drplan_core::failback::run::FailbackRecord;
use drplan_core::{Mode, ResolvedPlan};
use jiff::{SignedDuration, Timestamp};

use crate::bootstrap::Clients;
use crate::drill::INSTANCES_PER_TERMINATE;
use crate::step::LogContext;
use crate::{FunctionError, drill, drs, failback, failback_origin, lock, targets};

impl LogContext for CleanupStep {
    fn log_context(&self) -> (String, String, String) {
        (
            self.run.execution_name.clone(),
            self.run.plan.clone(),
            String::new(),
        )
    }
}

/// One call of the cleanup step.
pub async fn clean_up(clients: &Clients, step: CleanupStep) -> Result<CleanupStep, FunctionError> {
    let CleanupStep { run, cleanup } = step;
    let next = match cleanup.state {
        CleanupState::Start => start_termination(clients, &run).await?,
        CleanupState::InProgress => follow_termination(clients, &run, cleanup).await?,
        // A failback to the origin Region prepares its reversed replication instead.
        CleanupState::Clear if run.origin_region.is_some() => {
            failback_origin::prepare(clients, &run, cleanup).await?
        }
        CleanupState::Clear => clear_before_launch(clients, &run, cleanup).await?,
        CleanupState::Done => cleanup,
    };
    Ok(CleanupStep { run, cleanup: next })
}

async fn start_termination(clients: &Clients, run: &RunContext) -> Result<Cleanup, FunctionError> {
    match run.mode {
        Mode::Recovery => {
            return Err(FunctionError::InvalidInput(
                "a recovery keeps what it launched: cleanup terminates drill instances, and recovery instances after their failback".into(),
            ));
        }
        Mode::Failback => return terminate_failed_back(clients, run).await,
        Mode::Drill => {}
    }
    // Out of the drill's target groups first: a load balancer must not send traffic to
    // instances about to go away.
    let deregistered = targets::deregister_run_targets(
        &clients.elb,
        &clients.store,
        &run.records(),
        Some(drplan_core::Mode::Drill),
        "drill cleanup",
    )
    .await?;
    if deregistered.targets > 0 {
        tracing::info!(
            deregistered = deregistered.targets,
            groups = %deregistered.lines.join(" | "),
            "drill instances deregistered from their target groups"
        );
    }
    let termination =
        drill::terminate_run_drill_instances(&clients.drs, &clients.store, run).await?;
    if termination.jobs.is_empty() {
        return Ok(Cleanup::done(0));
    }
    Ok(Cleanup::terminating(
        termination.jobs,
        termination.terminated,
        &run.timing,
    ))
}

/// After a successful failback (and its `keep_recovery_minutes`): the recovery instances
/// of the servers DRS reports failed back are terminated (for EC2 sources, once their
/// new instances in the origin Region are protected again).
async fn terminate_failed_back(
    clients: &Clients,
    run: &RunContext,
) -> Result<Cleanup, FunctionError> {
    let record: FailbackRecord = clients.store.require(&run.records().failback()).await?;
    let recovered_by = record.recovered_by.clone();
    let instances = if record.origin_region.is_some() {
        failback_origin::reprotect_and_list_instances(clients, run, record).await?
    } else {
        failback::failed_back_instances(&clients.drs, &record).await?
    };
    if instances.is_empty() {
        return Ok(Cleanup::done(0));
    }
    // Out of the recovery's target groups first: a load balancer must not send traffic
    // to instances about to go away (DNS went home already).
    for recovery in &recovered_by {
        let deregistered = targets::deregister_run_targets(
            &clients.elb,
            &clients.store,
            &RunRecords::of(&run.plan, recovery),
            Some(Mode::Recovery),
            "failback cleanup",
        )
        .await?;
        if deregistered.targets > 0 {
            tracing::info!(
                recovery = %recovery,
                deregistered = deregistered.targets,
                groups = %deregistered.lines.join(" | "),
                "recovery instances deregistered from the recovery's target groups"
            );
        }
    }
    let mut jobs = Vec::new();
    for chunk in instances.chunks(INSTANCES_PER_TERMINATE) {
        jobs.push(drs::terminate_recovery_instances(&clients.drs, chunk).await?);
    }
    tracing::info!(
        instances = instances.len(),
        "terminating the recovery instances of the failed-back servers"
    );
    Ok(Cleanup::terminating(jobs, instances.len(), &run.timing))
}

async fn follow_termination(
    clients: &Clients,
    run: &RunContext,
    cleanup: Cleanup,
) -> Result<Cleanup, FunctionError> {
    let jobs = drs::describe_jobs(&clients.drs, &cleanup.jobs).await?;
    if cleanup.jobs_finished(&jobs) {
        tracing::info!(
            terminated = cleanup.terminated,
            mode = %run.mode,
            "recovery instances terminated"
        );
        return Ok(cleanup.finished());
    }
    Ok(cleanup.still_terminating(&run.timing))
}

/// One step of clearing the plan's servers before the first wave.
async fn clear_before_launch(
    clients: &Clients,
    run: &RunContext,
    cleanup: Cleanup,
) -> Result<Cleanup, FunctionError> {
    if let Some(stopped) = &cleanup.stop_drill {
        if lock::execution_running(&clients.sfn, &stopped.execution_id).await? {
            lock::stop_execution(
                &clients.sfn,
                &stopped.execution_id,
                ErrorName::StoppedByRecovery.as_str(),
                &format!(
                    "recovery {} of plan {} took the plan over",
                    run.execution_name, run.plan
                ),
            )
            .await?;
            tracing::warn!(
                drill = stopped.execution_name,
                "stopped the plan's running drill"
            );
        }
        // The drill may have left its launch templates on the drill subnet, and its
        // instances in its drill target groups.
        let stopped_run = RunRecords::of(&run.plan, &stopped.execution_name);
        drill::restore_run_templates(&clients.ec2, &clients.store, &stopped_run).await?;
        targets::deregister_run_targets(
            &clients.elb,
            &clients.store,
            &stopped_run,
            Some(drplan_core::Mode::Drill),
            "a recovery that stopped the drill",
        )
        .await?;
    }
    let attempt = cleanup
        .next_clearing_attempt()
        .map_err(FunctionError::WaveFailed)?;
    let resolved: ResolvedPlan = clients
        .store
        .require(&run.records().resolved_plan())
        .await?;
    let server_ids: HashSet<String> = resolved
        .waves
        .iter()
        .flat_map(|w| w.servers.iter().map(|s| s.id.clone()))
        .collect();
    let busy = drs::busy_source_servers(
        &clients.drs,
        Timestamp::now() - SignedDuration::from_hours(24),
    )
    .await?;
    if busy.iter().any(|id| server_ids.contains(id)) {
        let (jobs, terminated) = (cleanup.jobs.clone(), cleanup.terminated);
        return Ok(cleanup.clearing(attempt, jobs, terminated, &run.timing));
    }
    let ids: Vec<String> = server_ids.into_iter().collect();
    let leftovers: Vec<String> = drs::recovery_instances_of(&clients.drs, &ids)
        .await?
        .into_iter()
        .filter(|r| r.is_drill)
        .map(|r| r.recovery_instance_id)
        .collect();
    if leftovers.is_empty() {
        clients
            .store
            .write(&run.records().cleared(), &cleanup.cleared())
            .await?;
        return Ok(cleanup.finished());
    }
    let mut jobs = cleanup.jobs.clone();
    for chunk in leftovers.chunks(INSTANCES_PER_TERMINATE) {
        jobs.push(drs::terminate_recovery_instances(&clients.drs, chunk).await?);
    }
    tracing::warn!(
        instances = leftovers.len(),
        "terminating drill instances left on the plan's servers before the first wave"
    );
    let terminated = cleanup.terminated + leftovers.len();
    Ok(cleanup.clearing(attempt, jobs, terminated, &run.timing))
}
