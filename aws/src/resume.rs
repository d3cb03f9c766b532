//! What discover reads of the run a resumed run continues (`"resume"` in the execution
//! input): that it ended without succeeding, that it ran the same plan in the same mode,
//! the waves it got through (its history), its servers and what it took over itself.
//! The decisions are `drplan_core::resume`'s.

use std::collections::BTreeSet;

use drplan_core::contract::{Discovery, RunRecords};
use drplan_core::report::{mode_of, plan_name_of};
use drplan_core::resolve::ResolvedPlan;
use drplan_core::resume::{RESUMABLE_STATUSES, ResumeRecord};
use drplan_core::{Issue, Mode};
use jiff::Timestamp;

use crate::store::RunStore;
use crate::{FunctionError, history};

/// The ended run, as discover needs it.
#[derive(Debug, Clone)]
pub struct EarlierFacts {
    pub execution_name: String,
    pub started_at: Timestamp,
    pub ended_at: Option<Timestamp>,
    /// What its discover handed on (absent when it ended in discover).
    pub discovery: Option<Discovery>,
    pub resolved: Option<ResolvedPlan>,
    /// What it took over itself, when it was a resumed run too.
    pub resumed: Option<ResumeRecord>,
    pub succeeded_waves: BTreeSet<String>,
}

impl EarlierFacts {
    /// The runs before this one in the chain, the first first.
    pub fn chain_before(&self) -> Vec<String> {
        self.resumed
            .as_ref()
            .map(|r| r.chain.clone())
            .unwrap_or_default()
    }

    /// Every run of the chain, this one last.
    pub fn chain(&self) -> Vec<String> {
        let mut chain = self.chain_before();
        chain.push(self.execution_name.clone());
        chain
    }

    /// When the first run of the chain started.
    pub fn first_started_at(&self) -> Timestamp {
        self.resumed
            .as_ref()
            .map_or(self.started_at, |r| r.first_started_at)
    }
}

fn refused(message: String) -> FunctionError {
    FunctionError::InvalidPlan(vec![Issue::new("resume", message)])
}

/// The ARN of `execution` (a name or an ARN) of the same state machine as
/// `our_execution_arn`.
fn earlier_arn(our_execution_arn: &str, execution: &str) -> Option<String> {
    if execution.starts_with("arn:") {
        return Some(execution.to_owned());
    }
    let (machine, _) = our_execution_arn.rsplit_once(':')?;
    Some(format!("{machine}:{execution}"))
}

/// Reads the run `execution` that this run (`our_execution_arn`, of `plan` in `mode`)
/// continues, refusing one that is still running, succeeded, or ran something else.
pub async fn earlier_run(
    sfn: &aws_sdk_sfn::Client,
    store: &RunStore,
    our_execution_arn: &str,
    execution: &str,
    plan: &str,
    mode: Mode,
) -> Result<EarlierFacts, FunctionError> {
    let arn = earlier_arn(our_execution_arn, execution)
        .ok_or_else(|| refused(format!("cannot tell the ARN of {execution:?}")))?;
    if arn == our_execution_arn {
        return Err(refused("a run cannot resume itself".into()));
    }
    let described = match sfn.describe_execution().execution_arn(&arn).send().await {
        Ok(described) => described,
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_execution_does_not_exist() || s.is_invalid_arn()) =>
        {
            return Err(refused(format!(
                "no execution {execution:?} of this state machine"
            )));
        }
        Err(e) => {
            return Err(FunctionError::from_sdk(
                "Step Functions DescribeExecution",
                e,
            ));
        }
    };
    let execution_name = described
        .name()
        .map_or_else(|| execution.to_owned(), str::to_owned);
    let status = described.status().as_str();
    if !RESUMABLE_STATUSES.contains(&status) {
        let why = match status {
            "RUNNING" => "it is still running",
            "SUCCEEDED" => "it succeeded: there is nothing to continue",
            _ => "only a failed, timed out or stopped run can be resumed",
        };
        return Err(refused(format!("{execution_name} is {status}: {why}")));
    }
    let input: serde_json::Value = described
        .input()
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or_default();
    let (their_plan, their_mode) = (plan_name_of(&input), mode_of(&input));
    if their_plan != plan || their_mode != Some(mode) {
        return Err(refused(format!(
            "{execution_name} ran plan {their_plan:?} as a {}; this run is plan {plan:?} as a {}: a resumed run continues the same plan in the same mode",
            their_mode.map_or("run of unknown mode", Mode::as_str),
            mode.as_str()
        )));
    }
    let records = RunRecords::of(plan, &execution_name);
    let to_time = |t: &aws_smithy_types::DateTime| {
        Timestamp::new(t.secs(), t.subsec_nanos() as i32).unwrap_or(Timestamp::UNIX_EPOCH)
    };
    Ok(EarlierFacts {
        started_at: to_time(described.start_date()),
        ended_at: described.stop_date().map(to_time),
        discovery: store.read(&records.discovery()).await?,
        resolved: store.read(&records.resolved_plan()).await?,
        resumed: store.read(&records.resume()).await?,
        succeeded_waves: history::succeeded_waves(&history::history(sfn, &arn).await?),
        execution_name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_execution_name_becomes_an_arn_of_the_same_state_machine() {
        let ours = "arn:aws:states:us-east-1:123456789012:execution:drplan-recovery:shop-2";
        assert_eq!(
            earlier_arn(ours, "shop-1").as_deref(),
            Some("arn:aws:states:us-east-1:123456789012:execution:drplan-recovery:shop-1")
        );
        let other = "arn:aws:states:us-east-1:123456789012:execution:other:x";
        assert_eq!(earlier_arn(ours, other).as_deref(), Some(other));
    }
}
