//! The trigger function's Step Functions calls: starting an execution once by its name
//! (alarm runs, stall escalations), and the recovery state machine's executions an
//! alarm's start is judged against.

use aws_sdk_sfn::Client;
use aws_sdk_sfn::types::ExecutionStatus;
use drplan_core::trigger::{AlarmRoute, KnownExecution, is_automatic_run_of, plan_of_input};
use jiff::Timestamp;
use serde_json::Value;

use crate::FunctionError;

/// ListExecutions' largest page. The most recent executions come first; one page is
/// enough to see runs within any sensible minimum gap.
const RECENT_EXECUTIONS: i32 = 1000;

/// Starts an execution named `name`; returns its ARN, or `None` when an execution of
/// that name exists already (a repeated delivery of the same event won the race: one
/// execution, as intended).
pub async fn start_execution_once(
    sfn: &Client,
    state_machine_arn: &str,
    name: &str,
    input: String,
) -> Result<Option<String>, FunctionError> {
    let started = sfn
        .start_execution()
        .state_machine_arn(state_machine_arn)
        .name(name)
        .input(input)
        .send()
        .await;
    match started {
        Ok(answer) => Ok(Some(answer.execution_arn().to_owned())),
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|e| e.is_execution_already_exists()) =>
        {
            Ok(None)
        }
        Err(error) => Err(FunctionError::from_sdk(
            "Step Functions StartExecution",
            error,
        )),
    }
}

/// The running executions of the recovery state machine (with their plan, from the
/// name of alarm-started runs or else from the input), and the recent ones alarms
/// started for the routed plans.
pub async fn known_executions(
    sfn: &Client,
    state_machine_arn: &str,
    routes: &[AlarmRoute],
) -> Result<Vec<KnownExecution>, FunctionError> {
    let plan_from_name = |name: &str| {
        routes
            .iter()
            .find(|route| is_automatic_run_of(name, &route.plan))
            .map(|route| route.plan.clone())
    };
    let mut known = Vec::new();
    let running: Vec<_> = sfn
        .list_executions()
        .state_machine_arn(state_machine_arn)
        .status_filter(ExecutionStatus::Running)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(|e| FunctionError::from_sdk("Step Functions ListExecutions", e))?;
    for execution in &running {
        let plan = match plan_from_name(execution.name()) {
            Some(plan) => Some(plan),
            None => {
                let described = sfn
                    .describe_execution()
                    .execution_arn(execution.execution_arn())
                    .send()
                    .await
                    .map_err(|e| FunctionError::from_sdk("Step Functions DescribeExecution", e))?;
                described
                    .input()
                    .and_then(|text| serde_json::from_str::<Value>(text).ok())
                    .as_ref()
                    .and_then(plan_of_input)
            }
        };
        known.push(KnownExecution {
            name: execution.name().to_owned(),
            plan,
            running: true,
            started: to_timestamp(execution.start_date()),
        });
    }
    let recent = sfn
        .list_executions()
        .state_machine_arn(state_machine_arn)
        .max_results(RECENT_EXECUTIONS)
        .send()
        .await
        .map_err(|e| FunctionError::from_sdk("Step Functions ListExecutions", e))?;
    for execution in recent.executions() {
        if execution.status() == &ExecutionStatus::Running {
            continue;
        }
        known.push(KnownExecution {
            name: execution.name().to_owned(),
            plan: plan_from_name(execution.name()),
            running: false,
            started: to_timestamp(execution.start_date()),
        });
    }
    Ok(known)
}

fn to_timestamp(date: &aws_sdk_sfn::primitives::DateTime) -> Timestamp {
    Timestamp::from_second(date.secs()).unwrap_or(Timestamp::UNIX_EPOCH)
}
