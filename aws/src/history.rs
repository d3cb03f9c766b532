//! An execution's Step Functions history, read whole, and what drplan reads from it:
//! the pending approval's task token, whether the run holds at a pause, the run's progress wave by wave, the state a
//! failed run stopped in, and (for the bench) where its time went.
//!
//! [`history`] is the one reader (every page of GetExecutionHistory); the views are pure
//! functions of its events, so they are tested without a network.

mod failure;
mod pause;
mod timing;

use std::collections::BTreeMap;

use aws_sdk_sfn::types::{HistoryEvent, HistoryEventType};
use drplan_core::contract::notice::RunEvent;
use drplan_core::contract::states;
use drplan_core::contract::{Discovery, WaveStep};

use crate::FunctionError;

pub use failure::{FailedState, failed_state};
pub use pause::{Pause, every_stage_started, pause};
pub use timing::{StateTime, first_lambda_inputs, state_times, transitions};

/// The states whose output is a wave's launch poll ([`WaveStep::poll`]).
const LAUNCH_STATES: [&str; 2] = [states::LAUNCH_WAVE, states::CHECK_LAUNCH];

/// Events asked for per page: the most GetExecutionHistory gives.
const PAGE_SIZE: i32 = 1000;

/// Every event of the execution's history so far, oldest first, over all its pages.
pub async fn history(
    client: &aws_sdk_sfn::Client,
    execution_arn: &str,
) -> Result<Vec<HistoryEvent>, FunctionError> {
    let mut events = Vec::new();
    let mut pages = client
        .get_execution_history()
        .execution_arn(execution_arn)
        .max_results(PAGE_SIZE)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page =
            page.map_err(|e| FunctionError::from_sdk("Step Functions GetExecutionHistory", e))?;
        events.extend(page.events().iter().cloned());
    }
    Ok(events)
}

/// Where the run's approval stands, from its history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Approval {
    /// The approval task waits for this token (`drplan approve` / `decline` send it).
    Pending { task_token: String },
    /// The approval task was scheduled and a later task event has answered it.
    Answered,
    /// No approval task was scheduled (yet, or at all).
    NotAsked,
}

/// The approval task's token: its parameters carry it (the notify function's
/// `APPROVAL_NEEDED` payload), and it is pending while no task event after it has
/// succeeded, failed or timed out.
pub fn approval(history: &[HistoryEvent]) -> Approval {
    let mut asked: Option<(i64, String)> = None;
    let mut answered_after: Option<i64> = None;
    for event in history {
        if let Some(details) = event.task_scheduled_event_details() {
            let parameters: serde_json::Value =
                serde_json::from_str(details.parameters()).unwrap_or_default();
            let payload = &parameters["Payload"];
            if payload["event"] == RunEvent::ApprovalNeeded.as_str()
                && let Some(token) = payload["task_token"].as_str()
            {
                asked = Some((event.id(), token.to_owned()));
            }
        }
        if matches!(
            event.r#type(),
            HistoryEventType::TaskSucceeded
                | HistoryEventType::TaskFailed
                | HistoryEventType::TaskTimedOut
        ) {
            answered_after = Some(event.id());
        }
    }
    match asked {
        Some((scheduled, task_token)) if answered_after.is_none_or(|a| a < scheduled) => {
            Approval::Pending { task_token }
        }
        Some(_) => Approval::Answered,
        None => Approval::NotAsked,
    }
}

/// How far a run has come, from the outputs of its states.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Progress {
    /// The Task state entered last.
    pub current_state: Option<String>,
    /// What discover handed on: the run's waves by layer (once it has passed).
    pub discovery: Option<Discovery>,
    /// The latest launch poll of each wave, by wave index.
    pub waves: BTreeMap<usize, WaveStep>,
    /// Waves whose instances were tagged (their launch is complete), in that order.
    pub tagged: Vec<String>,
}

/// The run's progress: outputs that do not parse (a state's output changed shape, or a
/// failed step's) are passed over, so a view of an odd run still shows the rest.
pub fn progress(history: &[HistoryEvent]) -> Progress {
    let mut progress = Progress::default();
    for event in history {
        if event.r#type() == &HistoryEventType::TaskStateEntered {
            progress.current_state = event
                .state_entered_event_details()
                .map(|d| d.name().to_owned());
        }
        let Some(exited) = event.state_exited_event_details() else {
            continue;
        };
        let Some(output) = exited.output() else {
            continue;
        };
        match exited.name() {
            states::DISCOVER => progress.discovery = serde_json::from_str(output).ok(),
            name if LAUNCH_STATES.contains(&name) => {
                if let Ok(step) = serde_json::from_str::<WaveStep>(output) {
                    progress.waves.insert(step.wave.index, step);
                }
            }
            states::TAG_INSTANCES => {
                if let Ok(step) = serde_json::from_str::<WaveStep>(output) {
                    progress.tagged.push(step.wave.name);
                }
            }
            _ => {}
        }
    }
    progress
}

/// The waves that succeeded (entered the wave's success state: launched, healthy, post
/// hooks done), by name.
pub fn succeeded_waves(history: &[HistoryEvent]) -> std::collections::BTreeSet<String> {
    history
        .iter()
        .filter_map(|event| event.state_entered_event_details())
        .filter(|entered| entered.name() == states::WAVE_SUCCEEDED)
        .filter_map(|entered| {
            let input: serde_json::Value = serde_json::from_str(entered.input()?).ok()?;
            input["wave"]["name"].as_str().map(str::to_owned)
        })
        .collect()
}

#[cfg(test)]
mod tests;
