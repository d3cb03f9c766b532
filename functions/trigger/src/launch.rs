//! A server's launch settled (`DRS Source Server Launch Result`): wake the wave that
//! waits for it, once DRS reports every server its park waits for settled. One read of
//! the job's park record and, when the server is one the park waits for, one
//! DescribeJobs of the job: nothing is written or listed per server. The event that
//! finds the job settled also removes the park and sends the token back (once a wait).

use drplan_aws::{FunctionError, drs, metrics, wave};
use drplan_core::contract::keys::parked_job;
use drplan_core::launch_wait::should_wake;
use drplan_core::trigger::LaunchResult;
use serde_json::{Value, json};

use crate::Trigger;

/// Waking is an optimisation (the wave polls on schedule anyway), so a failure here is
/// logged and counted, never retried into a storm of invocations or paged.
pub async fn on_launch_result(
    trigger: &Trigger,
    result: &LaunchResult,
) -> Result<Value, FunctionError> {
    metrics::count("LaunchResults", &[("State", &result.state)]);
    match wake_if_settled(trigger, result).await {
        Ok(outcome) => Ok(outcome),
        Err(error) => {
            tracing::warn!(%error, source_server = result.source_server_id, "could not wake the waiting wave; it polls on schedule");
            metrics::count("LaunchWakeErrors", &[]);
            Ok(json!({ "outcome": "wake failed", "error": error.to_string() }))
        }
    }
}

async fn wake_if_settled(trigger: &Trigger, result: &LaunchResult) -> Result<Value, FunctionError> {
    let Some(job_id) = result.job_id.as_deref() else {
        tracing::info!(
            source_server = result.source_server_id,
            "launch result without a job ID: nothing to wake"
        );
        return Ok(json!({ "outcome": "noted", "source_server": result.source_server_id }));
    };
    let Some(parked) = trigger.store.read(&parked_job(job_id)).await? else {
        tracing::info!(
            job_id,
            source_server = result.source_server_id,
            state = result.state,
            "launch result noted; no wave is parked on this job"
        );
        return Ok(json!({ "outcome": "noted", "job_id": job_id }));
    };
    if !parked.pending.contains(&result.source_server_id) {
        return Ok(json!({ "outcome": "noted", "job_id": job_id }));
    }
    let job = drs::describe_jobs(&trigger.drs, &[job_id.to_owned()]).await?;
    let Some(job) = job.first() else {
        tracing::info!(job_id, "DRS does not know the job: nothing to wake");
        return Ok(json!({ "outcome": "noted", "job_id": job_id }));
    };
    if !should_wake(&parked, job) {
        tracing::info!(
            job_id,
            execution = parked.execution_name,
            wave = parked.wave,
            waiting_for = parked.pending.len(),
            "launch result noted; the wave waits for more of its servers"
        );
        return Ok(json!({ "outcome": "noted", "job_id": job_id }));
    }
    // Removed first, so that the events still on their way find no park and cost one
    // read each, not a DescribeJobs and a refused SendTaskSuccess. Of last events that
    // arrive at once, more than one may still send the token: Step Functions takes the
    // first and refuses the others (`woken` false), which is harmless.
    trigger.store.delete(parked_job(job_id).key()).await?;
    let woken = wave::wake_parked_wave(&trigger.sfn, &parked.task_token, job_id).await?;
    tracing::info!(
        job_id,
        execution = parked.execution_name,
        wave = parked.wave,
        woken,
        "wave woken: its job's servers all settled"
    );
    Ok(
        json!({ "outcome": if woken { "woken" } else { "park expired" }, "job_id": job_id, "wave": parked.wave }),
    )
}
