//! cleanup: after a drill, terminates the drill's recovery instances through DRS
//! (TerminateRecoveryInstances) and follows the terminate jobs until they end. Called
//! again by the state machine until it answers DONE.
//!
//! Before a run's first wave (state CLEAR) it clears the way instead: stops the drill a
//! recovery took the plan from (and restores that drill's launch templates), waits out
//! active jobs on the plan's servers, and terminates drill instances left on them, so
//! that nothing launches beside, or into the templates of, another run.

use std::collections::HashSet;

use drplan_aws::bootstrap::Clients;
use drplan_aws::drill::{self, INSTANCES_PER_TERMINATE};
use drplan_aws::step::LogContext;
use drplan_aws::{FunctionError, bootstrap, drs, lock};
use drplan_core::ResolvedPlan;
use drplan_core::execution::{RunContext, run_prefix};
use drplan_core::safety::{CLEARED_RECORD, ClearedBeforeLaunch, RunLock, STOPPED_BY_RECOVERY};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
enum CleanupState {
    Start,
    InProgress,
    Done,
    /// Clearing the plan's servers before the first wave; answered until DONE.
    Clear,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Cleanup {
    state: CleanupState,
    #[serde(default)]
    jobs: Vec<String>,
    #[serde(default)]
    terminated: usize,
    #[serde(default)]
    attempt: u32,
    #[serde(default)]
    wait_seconds: u32,
    /// While clearing: the drill this recovery stops (always present, null when none:
    /// the state machine selects it).
    #[serde(default)]
    stop_drill: Option<RunLock>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct CleanupStep {
    run: RunContext,
    cleanup: Cleanup,
}

impl LogContext for CleanupStep {
    fn log_context(&self) -> (String, String, String) {
        (
            self.run.execution_name.clone(),
            self.run.plan.clone(),
            String::new(),
        )
    }
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let clients = bootstrap::start().await?;
    drplan_aws::step::serve("cleanup", |step| cleanup(&clients, step)).await
}

async fn cleanup(clients: &Clients, step: CleanupStep) -> Result<CleanupStep, FunctionError> {
    let CleanupStep { run, cleanup } = step;
    let next = match cleanup.state {
        CleanupState::Start => start_termination(clients, &run).await?,
        CleanupState::InProgress => follow_termination(clients, &run, cleanup).await?,
        CleanupState::Clear => clear_before_launch(clients, &run, cleanup).await?,
        CleanupState::Done => cleanup,
    };
    Ok(CleanupStep { run, cleanup: next })
}

async fn start_termination(clients: &Clients, run: &RunContext) -> Result<Cleanup, FunctionError> {
    if run.mode != drplan_core::Mode::Drill {
        return Err(FunctionError::InvalidInput(
            "cleanup only terminates drill instances".into(),
        ));
    }
    let termination =
        drill::terminate_run_drill_instances(&clients.drs, &clients.store, run).await?;
    let (jobs, terminated) = (termination.jobs, termination.terminated);
    if jobs.is_empty() {
        return Ok(done(0));
    }
    Ok(Cleanup {
        state: CleanupState::InProgress,
        jobs,
        terminated,
        attempt: 0,
        wait_seconds: run.timing.poll_delay_seconds(0),
        stop_drill: None,
    })
}

async fn follow_termination(
    clients: &Clients,
    run: &RunContext,
    cleanup: Cleanup,
) -> Result<Cleanup, FunctionError> {
    let jobs = drs::describe_jobs(&clients.drs, &cleanup.jobs).await?;
    let finished = jobs.len() == cleanup.jobs.len() && jobs.iter().all(|j| j.is_completed());
    if finished {
        tracing::info!(
            terminated = cleanup.terminated,
            "drill instances terminated"
        );
        return Ok(Cleanup {
            state: CleanupState::Done,
            ..cleanup
        });
    }
    let attempt = cleanup.attempt + 1;
    Ok(Cleanup {
        state: CleanupState::InProgress,
        attempt,
        wait_seconds: run.timing.poll_delay_seconds(attempt),
        ..cleanup
    })
}

fn done(terminated: usize) -> Cleanup {
    Cleanup {
        state: CleanupState::Done,
        jobs: Vec::new(),
        terminated,
        attempt: 0,
        wait_seconds: 0,
        stop_drill: None,
    }
}

/// Polls of the clearing before it gives up: a drill instance DRS cannot terminate
/// must not keep the recovery waiting for ever.
const MAX_CLEARING_POLLS: u32 = 120;

/// One step of clearing the plan's servers before the first wave.
async fn clear_before_launch(
    clients: &Clients,
    run: &RunContext,
    cleanup: Cleanup,
) -> Result<Cleanup, FunctionError> {
    if let Some(drill) = &cleanup.stop_drill {
        if lock::execution_running(&clients.sfn, &drill.execution_id).await? {
            lock::stop_execution(
                &clients.sfn,
                &drill.execution_id,
                STOPPED_BY_RECOVERY,
                &format!(
                    "recovery {} of plan {} took the plan over",
                    run.execution_name, run.plan
                ),
            )
            .await?;
            tracing::warn!(
                drill = drill.execution_name,
                "stopped the plan's running drill"
            );
        }
        // The drill may have left its launch templates on the drill subnet.
        drplan_aws::drill::restore_run_templates(
            &clients.ec2,
            &clients.store,
            &run_prefix(&run.plan, &drill.execution_name),
        )
        .await?;
    }
    let attempt = cleanup.attempt + 1;
    if attempt > MAX_CLEARING_POLLS {
        return Err(FunctionError::WaveFailed(format!(
            "the plan's servers were not clear of other jobs and drill instances after {MAX_CLEARING_POLLS} polls"
        )));
    }
    let resolved: ResolvedPlan = clients
        .store
        .require_json(&run.key("resolved.json"))
        .await?;
    let server_ids: HashSet<String> = resolved
        .waves
        .iter()
        .flat_map(|w| w.servers.iter().map(|s| s.id.clone()))
        .collect();
    // The drill to stop stays in the state: stopping and restoring again is harmless,
    // and the report names it.
    let wait = |cleanup: Cleanup, jobs: Vec<String>, terminated: usize| Cleanup {
        state: CleanupState::Clear,
        jobs,
        terminated,
        attempt,
        wait_seconds: run.timing.poll_delay_seconds(attempt.min(3)),
        stop_drill: cleanup.stop_drill,
    };
    let busy = drs::busy_source_servers(
        &clients.drs,
        Timestamp::now() - SignedDuration::from_hours(24),
    )
    .await?;
    if busy.iter().any(|id| server_ids.contains(id)) {
        let (jobs, terminated) = (cleanup.jobs.clone(), cleanup.terminated);
        return Ok(wait(cleanup, jobs, terminated));
    }
    let ids: Vec<String> = server_ids.into_iter().collect();
    let leftovers: Vec<String> = drs::recovery_instances_of(&clients.drs, &ids)
        .await?
        .into_iter()
        .filter(|r| r.is_drill)
        .map(|r| r.recovery_instance_id)
        .collect();
    if leftovers.is_empty() {
        let cleared = ClearedBeforeLaunch {
            stopped_drill: cleanup
                .stop_drill
                .as_ref()
                .map(|d| d.execution_name.clone()),
            terminated_drill_instances: cleanup.terminated,
        };
        clients
            .store
            .put_json(&run.key(CLEARED_RECORD), &cleared)
            .await?;
        return Ok(Cleanup {
            state: CleanupState::Done,
            ..cleanup
        });
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
    Ok(wait(cleanup, jobs, terminated))
}
