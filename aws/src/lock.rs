//! One run per plan: the plan's lock in the bucket (`locks/PLAN.json`), taken by
//! discover with a conditional write and released by the run's report.

use drplan_core::contract::keys;
use drplan_core::safety::{LockVerdict, RunLock, judge_run_lock};

use crate::FunctionError;
use crate::store::RunStore;

/// What taking the lock came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockOutcome {
    /// This run holds the plan now.
    Held,
    /// This run holds the plan now, taken over from a running drill that it must stop.
    TakenFromDrill(RunLock),
    /// Another run holds the plan.
    Refused(RunLock),
}

/// Conditional writes lost to another writer before giving up (each loss means another
/// run wrote the lock between our read and our write: judging again settles it).
const LOCK_ATTEMPTS: usize = 3;

/// Whether the execution is still RUNNING; false when Step Functions does not know it.
pub async fn execution_running(
    sfn: &aws_sdk_sfn::Client,
    execution_arn: &str,
) -> Result<bool, FunctionError> {
    match sfn
        .describe_execution()
        .execution_arn(execution_arn)
        .send()
        .await
    {
        Ok(execution) => Ok(execution.status().as_str() == "RUNNING"),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_execution_does_not_exist() || s.is_invalid_arn()) =>
        {
            Ok(false)
        }
        Err(e) => Err(FunctionError::from_sdk(
            "Step Functions DescribeExecution",
            e,
        )),
    }
}

/// Takes the plan's lock for `ours`, or says who holds it.
pub async fn take_run_lock(
    store: &RunStore,
    sfn: &aws_sdk_sfn::Client,
    plan: &str,
    ours: &RunLock,
) -> Result<LockOutcome, FunctionError> {
    let lock = keys::run_lock(plan);
    for _ in 0..LOCK_ATTEMPTS {
        let current = store.get_text_versioned(lock.key()).await?;
        // A lock drplan cannot read (edited by hand) is replaced, never obeyed.
        let holder: Option<RunLock> = current
            .as_ref()
            .and_then(|(text, _)| serde_json::from_str(text).ok());
        let holder_running = match &holder {
            Some(lock) if lock.execution_name != ours.execution_name => {
                execution_running(sfn, &lock.execution_id).await?
            }
            _ => false,
        };
        let etag = current.as_ref().map(|(_, etag)| etag.as_str());
        let outcome = match judge_run_lock(
            holder.as_ref(),
            &ours.execution_name,
            ours.mode,
            holder_running,
        ) {
            LockVerdict::Ours => return Ok(LockOutcome::Held),
            LockVerdict::Refuse(holder) => return Ok(LockOutcome::Refused(holder)),
            LockVerdict::Take => LockOutcome::Held,
            LockVerdict::StopDrill(drill) => LockOutcome::TakenFromDrill(drill),
        };
        if store.write_if(&lock, ours, etag).await?.is_some() {
            return Ok(outcome);
        }
    }
    Err(FunctionError::Throttled {
        operation: "S3 PutObject (run lock)",
        message: format!("the lock of plan {plan:?} kept changing under us; retrying later"),
    })
}

/// Releases the plan's lock if `execution_name` holds it; another run's lock is left
/// alone. Returns whether it released.
pub async fn release_run_lock(
    store: &RunStore,
    plan: &str,
    execution_name: &str,
) -> Result<bool, FunctionError> {
    let key = keys::run_lock(plan).key().to_owned();
    let Some((text, etag)) = store.get_text_versioned(&key).await? else {
        return Ok(false);
    };
    match serde_json::from_str::<RunLock>(&text) {
        // Conditional: a recovery that took the lock over since we read it keeps it.
        Ok(lock) if lock.execution_name == execution_name => {
            let released = store.delete_if(&key, &etag).await?;
            if released {
                tracing::info!(plan, "run lock released");
            }
            Ok(released)
        }
        _ => Ok(false),
    }
}

/// Stops a running execution (a drill that a recovery takes over from).
pub async fn stop_execution(
    sfn: &aws_sdk_sfn::Client,
    execution_arn: &str,
    error: &str,
    cause: &str,
) -> Result<(), FunctionError> {
    match sfn
        .stop_execution()
        .execution_arn(execution_arn)
        .error(error)
        .cause(cause)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_execution_does_not_exist()) =>
        {
            Ok(())
        }
        Err(e) => Err(FunctionError::from_sdk("Step Functions StopExecution", e)),
    }
}
