//! A server's launch settled (`DRS Source Server Launch Result`): wake the wave that
//! waits for it, once DRS reports every server its park waits for settled (those of the
//! wave's other jobs too, see `drplan_core::launch_wait`), or at once when the launch
//! failed. One read of the job's park record and, when the server is one the park waits
//! for, one DescribeJobs of the wave's jobs: nothing is written or listed per server. The
//! event that wakes the wave also removes its parks and sends the token back (once a
//! wait).

use drplan_aws::{FunctionError, drs, failback, metrics, wave};
use drplan_core::contract::keys::parked_job;
use drplan_core::launch_wait::should_wake;
use drplan_core::trigger::{FailbackStateChange, LaunchResult};

/// The launch-result `state` of a server DRS could not launch.
const LAUNCH_FAILED: &str = "FAILED";
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

/// A recovery instance's failback state changed (`DRS Recovery Instance Failback State
/// Change`): once its failback launch settled (FAILBACK_COMPLETED or FAILBACK_ERROR), the
/// failback wave that waits for it is woken as by a launch result of its server. One
/// DescribeRecoveryInstances (for the server and its failback job), then as a launch
/// result; other states cost nothing.
pub async fn on_failback_state(
    trigger: &Trigger,
    change: &FailbackStateChange,
) -> Result<Value, FunctionError> {
    metrics::count("FailbackStateChanges", &[("State", &change.state)]);
    if !change.launch_settled() {
        return Ok(json!({ "outcome": "noted", "recovery_instance": change.recovery_instance_id }));
    }
    let launch = match failback::failback_launch_of(&trigger.drs, &change.recovery_instance_id)
        .await
    {
        Ok(Some(launch)) => launch,
        Ok(None) => {
            tracing::info!(
                recovery_instance = change.recovery_instance_id,
                "no failback job on the recovery instance: nothing to wake"
            );
            return Ok(
                json!({ "outcome": "noted", "recovery_instance": change.recovery_instance_id }),
            );
        }
        Err(error) => {
            tracing::warn!(%error, recovery_instance = change.recovery_instance_id, "could not read the recovery instance; the wave polls on schedule");
            metrics::count("LaunchWakeErrors", &[]);
            return Ok(json!({ "outcome": "wake failed", "error": error.to_string() }));
        }
    };
    let (source_server_id, job_id) = launch;
    let result = LaunchResult {
        event_id: change.event_id.clone(),
        source_server_id,
        state: if change.state == FailbackStateChange::ERROR {
            LAUNCH_FAILED.to_owned()
        } else {
            change.state.clone()
        },
        job_id: Some(job_id),
    };
    on_launch_result(trigger, &result).await
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
    let job_ids: Vec<String> = std::iter::once(job_id.to_owned())
        .chain(parked.with_jobs.keys().cloned())
        .collect();
    let jobs = drs::describe_jobs(&trigger.drs, &job_ids).await?;
    if jobs.is_empty() {
        tracing::info!(job_id, "DRS does not know the job: nothing to wake");
        return Ok(json!({ "outcome": "noted", "job_id": job_id }));
    }
    // A failed launch may fail the wave (a critical server): the wave hears of it now,
    // not once its other servers settled.
    let failed = result.state == LAUNCH_FAILED;
    if !failed && !should_wake(&parked, job_id, &jobs) {
        tracing::info!(
            job_id,
            execution = parked.execution_name,
            wave = parked.wave,
            waiting_for =
                parked.pending.len() + parked.with_jobs.values().map(Vec::len).sum::<usize>(),
            "launch result noted; the wave waits for more of its servers"
        );
        return Ok(json!({ "outcome": "noted", "job_id": job_id }));
    }
    // Removed first, so that the events still on their way find no park and cost one
    // read each, not a DescribeJobs and a refused SendTaskSuccess. Of last events that
    // arrive at once, more than one may still send the token: Step Functions takes the
    // first and refuses the others (`woken` false), which is harmless.
    for parked_job_id in &job_ids {
        trigger
            .store
            .delete(parked_job(parked_job_id).key())
            .await?;
    }
    let woken = wave::wake_parked_wave(&trigger.sfn, &parked.task_token, job_id).await?;
    tracing::info!(
        job_id,
        execution = parked.execution_name,
        wave = parked.wave,
        woken,
        failed,
        "wave woken: its servers all settled, or one failed"
    );
    Ok(
        json!({ "outcome": if woken { "woken" } else { "park expired" }, "job_id": job_id, "wave": parked.wave }),
    )
}
