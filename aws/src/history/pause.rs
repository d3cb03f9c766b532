//! Whether a run holds at a pause (`drplan pause` / `drplan continue`), from its
//! history: the WaitWhilePaused task's parameters carry the PAUSED payload (its task
//! token, the stage), the notify function's answer (TaskSubmitted's output, Lambda's
//! `Payload`) the request it consumed, and it holds while no task event after it
//! has succeeded, failed or timed out. While a run holds nothing else of it runs (the
//! stages run one at a time and the pause comes before a stage's waves), so the first
//! such event after it is its answer.

use aws_sdk_sfn::types::{HistoryEvent, HistoryEventType};
use drplan_core::contract::notice::{PauseRequest, PauseWait, RunEvent};
use drplan_core::contract::states;
use jiff::Timestamp;

/// Where a run stands with regard to pauses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Pause {
    /// The run holds before stage `layer` (from 0) until this token is answered.
    Holding {
        task_token: String,
        /// When it began to hold.
        since: Option<Timestamp>,
        layer: usize,
        /// Who asked and why, when the request was drplan's JSON.
        request: Option<PauseRequest>,
    },
    /// It does not hold (it may have held earlier, and been continued).
    #[default]
    NotHolding,
}

/// The run's pause, from its history.
pub fn pause(history: &[HistoryEvent]) -> Pause {
    let mut holding: Option<(i64, Pause)> = None;
    let mut asked: Option<PauseRequest> = None;
    for event in history {
        if let Some(details) = event.task_scheduled_event_details() {
            let parameters: serde_json::Value =
                serde_json::from_str(details.parameters()).unwrap_or_default();
            let payload = &parameters["Payload"];
            if payload["event"] == RunEvent::Paused.as_str()
                && let Some(token) = payload["task_token"].as_str()
            {
                let wait: PauseWait =
                    serde_json::from_value(payload["pause"].clone()).unwrap_or_default();
                asked = None;
                holding = Some((
                    event.id(),
                    Pause::Holding {
                        task_token: token.to_owned(),
                        since: Timestamp::from_second(event.timestamp().secs()).ok(),
                        layer: wait.layer,
                        request: None,
                    },
                ));
            }
        }
        if holding.is_some()
            && let Some(details) = event.task_submitted_event_details()
        {
            asked = consumed_request(details.output());
        }
        let answered = matches!(
            event.r#type(),
            HistoryEventType::TaskSucceeded
                | HistoryEventType::TaskFailed
                | HistoryEventType::TaskTimedOut
        );
        if answered && holding.as_ref().is_some_and(|(id, _)| *id < event.id()) {
            holding = None;
        }
    }
    match holding {
        Some((
            _,
            Pause::Holding {
                task_token,
                since,
                layer,
                ..
            },
        )) => Pause::Holding {
            task_token,
            since,
            layer,
            request: asked,
        },
        _ => Pause::NotHolding,
    }
}

/// The request the notify function consumed, from its answer as Lambda's invoke gives
/// it (`{"Payload": {..., "pause_request": {...}}, ...}`; a `Payload` that is JSON
/// text is read too).
fn consumed_request(output: Option<&str>) -> Option<PauseRequest> {
    let output: serde_json::Value = serde_json::from_str(output?).ok()?;
    let payload = match &output["Payload"] {
        serde_json::Value::String(text) => serde_json::from_str(text).ok()?,
        other => other.clone(),
    };
    serde_json::from_value(payload.get("pause_request")?.clone()).ok()
}

/// Whether every stage has started (the map over them has exited): a pause asked for
/// now would hold nothing.
pub fn every_stage_started(history: &[HistoryEvent]) -> bool {
    history.iter().any(|event| {
        event
            .state_exited_event_details()
            .is_some_and(|d| d.name() == states::RUN_LAYERS)
    })
}
