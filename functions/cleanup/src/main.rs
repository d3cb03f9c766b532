//! cleanup: after a drill, terminates the drill's recovery instances through DRS
//! (TerminateRecoveryInstances) and follows the terminate jobs until they end. Called
//! again by the state machine until it answers DONE.

use std::collections::HashSet;

use drplan_aws::bootstrap::Clients;
use drplan_aws::step::LogContext;
use drplan_aws::{FunctionError, bootstrap, drs};
use drplan_core::ResolvedPlan;
use drplan_core::execution::{RunContext, TAG_EXECUTION};
use jiff::SignedDuration;
use serde::{Deserialize, Serialize};

/// TerminateRecoveryInstances takes at most this many instances a call.
const INSTANCES_PER_TERMINATE: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
enum CleanupState {
    Start,
    InProgress,
    Done,
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
    // A run that failed in discovery launched nothing and stored no resolved plan.
    let Some(resolved) = clients
        .store
        .get_json::<ResolvedPlan>(&run.key("resolved.json"))
        .await?
    else {
        return Ok(done(0));
    };
    let our_jobs: HashSet<String> =
        drs::jobs_since(&clients.drs, run.started_at - SignedDuration::from_mins(5))
            .await?
            .into_iter()
            .filter(|(_, tags)| tags.get(TAG_EXECUTION) == Some(&run.execution_name))
            .map(|(job, _)| job.job_id)
            .collect();
    let server_ids: Vec<String> = resolved
        .waves
        .iter()
        .flat_map(|w| w.servers.iter().map(|s| s.id.clone()))
        .collect();
    // Only instances this drill launched: never a recovery's, never another run's.
    let instances: Vec<String> = drs::recovery_instances_of(&clients.drs, &server_ids)
        .await?
        .into_iter()
        .filter(|r| r.is_drill && r.job_id.as_ref().is_some_and(|j| our_jobs.contains(j)))
        .map(|r| r.recovery_instance_id)
        .collect();
    if instances.is_empty() {
        return Ok(done(0));
    }
    let mut jobs = Vec::new();
    for chunk in instances.chunks(INSTANCES_PER_TERMINATE) {
        jobs.push(drs::terminate_recovery_instances(&clients.drs, chunk).await?);
    }
    tracing::info!(
        instances = instances.len(),
        jobs = jobs.len(),
        "terminating drill instances"
    );
    Ok(Cleanup {
        state: CleanupState::InProgress,
        jobs,
        terminated: instances.len(),
        attempt: 0,
        wait_seconds: run.timing.poll_delay_seconds(0),
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
    }
}
