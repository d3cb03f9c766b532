//! A server's launch settled (`DRS Source Server Launch Result`): wake the wave that
//! waits for it, once all the servers its park waits for have settled.

use drplan_aws::{FunctionError, metrics, wave};
use drplan_core::contract::keys::{parked_job, settled_key, settled_prefix};
use drplan_core::launch_wait::{settled_servers, should_wake};
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
    match settle_and_wake(trigger, result).await {
        Ok(outcome) => Ok(outcome),
        Err(error) => {
            tracing::warn!(%error, source_server = result.source_server_id, "could not wake the waiting wave; it polls on schedule");
            metrics::count("LaunchWakeErrors", &[]);
            Ok(json!({ "outcome": "wake failed", "error": error.to_string() }))
        }
    }
}

async fn settle_and_wake(trigger: &Trigger, result: &LaunchResult) -> Result<Value, FunctionError> {
    let Some(job_id) = result.job_id.as_deref() else {
        tracing::info!(
            source_server = result.source_server_id,
            "launch result without a job ID: nothing to wake"
        );
        return Ok(json!({ "outcome": "noted", "source_server": result.source_server_id }));
    };
    let store = &trigger.store;
    store
        .put_text(
            &settled_key(job_id, &result.source_server_id),
            result.state.clone(),
            "text/plain",
        )
        .await?;
    let Some(parked) = store.read(&parked_job(job_id)).await? else {
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
    let settled = settled_servers(job_id, &store.list_keys(&settled_prefix(job_id)).await?);
    if !should_wake(&parked, &settled) {
        tracing::info!(
            job_id,
            execution = parked.execution_name,
            wave = parked.wave,
            settled = settled.len(),
            waiting_for = parked.pending.len(),
            "launch result noted; the wave waits for more of its servers"
        );
        return Ok(json!({ "outcome": "noted", "job_id": job_id }));
    }
    // Removed first: of concurrent last events, one wakes the wave, the rest find no park.
    store.delete(parked_job(job_id).key()).await?;
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
