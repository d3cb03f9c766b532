//! `Step Functions Execution Status Change`: a run of the recovery state machine that
//! ended without its last steps — stopped (by a person, or by a recovery taking over
//! from a drill), timed out, or failed where the state machine could not catch it —
//! still gets them: a drill's instances are terminated, launch templates put back, the
//! report written, and the plan's lock released. A run whose report exists already
//! only has its lock released (if it still holds it).

use drplan_aws::FunctionError;
use drplan_aws::report::end_run;
use drplan_aws::{drill, lock};
use drplan_core::Mode;
use drplan_core::contract::keys::{self, RunRecords};
use drplan_core::contract::step::{CleanupSummary, ReportInput, StepError};
use drplan_core::contract::{Discovery, ErrorName};
use drplan_core::safety::RunLock;
use drplan_core::trigger::ExecutionStatusChange;
use serde_json::{Value, json};

use crate::Trigger;

pub async fn on_execution_status(
    trigger: &Trigger,
    change: &ExecutionStatusChange,
) -> Result<Value, FunctionError> {
    if change.state_machine_arn != trigger.state_machine_arn {
        return Ok(json!({"outcome": "ignored", "reason": "not the recovery state machine"}));
    }
    if !change.ended_abnormally() {
        return Ok(json!({"outcome": "ignored", "reason": format!("status {}", change.status)}));
    }
    let Some(plan) = change.plan() else {
        tracing::warn!(
            execution = change.name,
            "ended run names no plan in its input"
        );
        return Ok(json!({"outcome": "ignored", "reason": "the input names no plan"}));
    };
    let report = keys::report_json(&plan, &change.name);
    if trigger.store.get_text(report.key()).await?.is_some() {
        let released = lock::release_run_lock(&trigger.store, &plan, &change.name).await?;
        return Ok(json!({"outcome": "reported already", "lock_released": released}));
    }
    let discovery: Option<Discovery> = trigger
        .store
        .read(&RunRecords::of(&plan, &change.name).discovery())
        .await?;
    // A drill's instances never outlive it: terminated through DRS, jobs not followed
    // (nothing waits for them now). A drill a recovery stopped is cleared by that
    // recovery, which reports it.
    let stopped_by_recovery = change.error.as_deref()
        == Some(ErrorName::StoppedByRecovery.as_str())
        || taken_over_by_recovery(trigger, &plan, &change.name).await?;
    let mut terminated = None;
    let mut note = String::new();
    if let Some(discovery) = discovery
        .as_ref()
        .filter(|d| d.run.mode == Mode::Drill && !stopped_by_recovery)
    {
        match drill::terminate_run_drill_instances(&trigger.drs, &trigger.store, &discovery.run)
            .await
        {
            Ok(done) => {
                tracing::warn!(
                    instances = done.terminated,
                    still_launching = done.still_launching,
                    "ended drill's instances terminated"
                );
                if done.still_launching > 0 {
                    note = format!(
                        "; {} drill instances were still in a launch job, which DRS does not let terminate: the plan's next run terminates them before it launches anything",
                        done.still_launching
                    );
                }
                terminated = Some(CleanupSummary {
                    terminated: done.terminated,
                });
            }
            // The report still gets written; the plan's next run clears what is left.
            Err(error) => {
                tracing::error!(%error, "ended drill's instances not terminated");
                note = format!(
                    "; its drill instances could not be terminated ({error}): the plan's next run terminates them before it launches anything"
                );
            }
        }
    }
    let started_at = change
        .start_date
        .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
        .unwrap_or_else(jiff::Timestamp::now);
    let what = match change.status.as_str() {
        "ABORTED" => "was stopped",
        "TIMED_OUT" => "timed out",
        _ => "failed outside its own error handling",
    };
    let input = ReportInput {
        execution_id: change.execution_arn.clone(),
        execution_name: change.name.clone(),
        started_at: started_at.to_string(),
        run: discovery.as_ref().map(|d| d.run.clone()),
        layers: discovery.map(|d| d.layers).unwrap_or_default(),
        input: change.input.clone(),
        error: Some(StepError {
            error: Some(
                change
                    .error
                    .clone()
                    .filter(|e| !e.is_empty())
                    .unwrap_or_else(|| format!("States.{}", change.status)),
            ),
            cause: Some(format!(
                "the execution {what}{}{note}",
                change
                    .cause
                    .as_deref()
                    .filter(|c| !c.is_empty())
                    .map(|c| format!(": {c}"))
                    .unwrap_or_default()
            )),
        }),
        cleanup: terminated,
    };
    let written = end_run(&trigger.ec2, &trigger.store, input).await?;
    tracing::warn!(
        status = change.status,
        report = written.json_key,
        "ended run reported"
    );
    Ok(json!({"outcome": "reported", "report": written.json_key}))
}

/// Whether a running recovery holds the plan now, having taken it over from this run
/// (the event may not carry StopExecution's error).
async fn taken_over_by_recovery(
    trigger: &Trigger,
    plan: &str,
    execution_name: &str,
) -> Result<bool, FunctionError> {
    let lock: Option<RunLock> = trigger
        .store
        .read(&keys::run_lock(plan))
        .await
        .ok()
        .flatten();
    match lock {
        Some(lock) if lock.execution_name != execution_name && lock.mode == Mode::Recovery => {
            lock::execution_running(&trigger.sfn, &lock.execution_id).await
        }
        _ => Ok(false),
    }
}
