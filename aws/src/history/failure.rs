//! Where a run that did not succeed stopped: the state that raised its error, read from
//! its history. `drplan status` shows it beside the error, so that a person sees which
//! step said no without reading the history themselves.

use std::collections::HashMap;

use aws_sdk_sfn::types::{HistoryEvent, HistoryEventType};

/// The state a run's error came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedState {
    /// The state's name (`Discover`, `CheckHealth`, `WaveFailed`...).
    pub name: String,
    /// The wave it was working on, when its input names one (a wave's steps carry a
    /// `WaveStep`).
    pub wave: Option<String>,
}

/// The state that raised the run's `error`: the last Task whose failure carries that
/// error (a caught failure travels on to the report and the final `Failed` state, so the
/// run ends with the Task's error); else the first Fail state (the state machine's own
/// verdict, e.g. `WaveFailed`; the top-level `Failed` only passes errors on, and comes
/// later); else, for a run stopped or timed out, the state it had entered last. A run
/// without an error (stopped without one) is never blamed on a failure it retried past.
/// `None` for a history without states.
pub fn failed_state(history: &[HistoryEvent], error: Option<&str>) -> Option<FailedState> {
    let by_id: HashMap<i64, &HistoryEvent> = history.iter().map(|e| (e.id(), e)).collect();
    let task_failure = history
        .iter()
        .enumerate()
        .rev()
        .find(|(_, event)| {
            let failed = failure_error(event);
            failed.is_some() && failed == error
        })
        .and_then(|(at, event)| entered_before(history, &by_id, at, event));
    let entered = task_failure
        .or_else(|| {
            history
                .iter()
                .find(|e| e.r#type() == &HistoryEventType::FailStateEntered)
        })
        .or_else(|| {
            history
                .iter()
                .rev()
                .find(|e| e.state_entered_event_details().is_some())
        })?;
    let details = entered.state_entered_event_details()?;
    let wave = details
        .input()
        .and_then(|input| serde_json::from_str::<serde_json::Value>(input).ok())
        .and_then(|input| input["wave"]["name"].as_str().map(str::to_owned));
    Some(FailedState {
        name: details.name().to_owned(),
        wave,
    })
}

/// The error of a task's failure event (a Task state's call that failed or timed out).
fn failure_error(event: &HistoryEvent) -> Option<&str> {
    event
        .task_failed_event_details()
        .and_then(|d| d.error())
        .or_else(|| event.task_timed_out_event_details().and_then(|d| d.error()))
        .or_else(|| {
            event
                .task_start_failed_event_details()
                .and_then(|d| d.error())
        })
        .or_else(|| {
            event
                .task_submit_failed_event_details()
                .and_then(|d| d.error())
        })
        .or_else(|| {
            event
                .lambda_function_failed_event_details()
                .and_then(|d| d.error())
        })
        .or_else(|| {
            event
                .lambda_function_timed_out_event_details()
                .and_then(|d| d.error())
        })
        .or_else(|| {
            event
                .lambda_function_start_failed_event_details()
                .and_then(|d| d.error())
        })
}

/// The state-entered event a failure belongs to: back along `previous_event_id` (which
/// stays within one Map iteration), else the state entered last before it.
fn entered_before<'h>(
    history: &'h [HistoryEvent],
    by_id: &HashMap<i64, &'h HistoryEvent>,
    at: usize,
    failure: &'h HistoryEvent,
) -> Option<&'h HistoryEvent> {
    let mut event = failure;
    // Bounded: a malformed history with a cycle of previous IDs ends the walk.
    for _ in 0..history.len() {
        if event.state_entered_event_details().is_some() {
            return Some(event);
        }
        match by_id.get(&event.previous_event_id()) {
            Some(previous) if previous.id() < event.id() => event = previous,
            _ => break,
        }
    }
    history[..at]
        .iter()
        .rev()
        .find(|e| e.state_entered_event_details().is_some())
}

#[cfg(test)]
mod tests {
    use aws_sdk_sfn::types::{StateEnteredEventDetails, TaskFailedEventDetails};
    use aws_smithy_types::DateTime;

    use super::*;

    fn entered(id: i64, previous: i64, kind: &str, state: &str, input: &str) -> HistoryEvent {
        let details = StateEnteredEventDetails::builder()
            .name(state)
            .input(input)
            .build()
            .expect("a state name");
        HistoryEvent::builder()
            .id(id)
            .previous_event_id(previous)
            .r#type(HistoryEventType::from(kind))
            .timestamp(DateTime::from_secs(id))
            .state_entered_event_details(details)
            .build()
            .expect("an event")
    }

    fn plain(id: i64, previous: i64, kind: &str) -> HistoryEvent {
        HistoryEvent::builder()
            .id(id)
            .previous_event_id(previous)
            .r#type(HistoryEventType::from(kind))
            .timestamp(DateTime::from_secs(id))
            .build()
            .expect("an event")
    }

    fn task_failed(id: i64, previous: i64, error: &str) -> HistoryEvent {
        let details = TaskFailedEventDetails::builder()
            .resource_type("lambda")
            .resource("invoke")
            .error(error)
            .cause("{\"errorType\": \"x\", \"errorMessage\": \"y\"}")
            .build()
            .expect("a task failure");
        HistoryEvent::builder()
            .id(id)
            .previous_event_id(previous)
            .r#type(HistoryEventType::TaskFailed)
            .timestamp(DateTime::from_secs(id))
            .task_failed_event_details(details)
            .build()
            .expect("an event")
    }

    fn named(name: &str, wave: Option<&str>) -> Option<FailedState> {
        Some(FailedState {
            name: name.into(),
            wave: wave.map(str::to_owned),
        })
    }

    #[test]
    fn a_caught_task_failure_names_the_task_not_the_states_that_pass_it_on() {
        // Discover is refused, caught, reported, and the run ends in `Failed`.
        let history = [
            plain(1, 0, "ExecutionStarted"),
            entered(2, 1, "TaskStateEntered", "Discover", "{}"),
            plain(3, 2, "TaskScheduled"),
            plain(4, 3, "TaskStarted"),
            task_failed(5, 4, "drplan.InvalidPlan"),
            entered(6, 5, "TaskStateEntered", "ReportDiscoveryFailure", "{}"),
            entered(7, 6, "TaskStateEntered", "NotifyDiscoveryFailure", "{}"),
            entered(8, 7, "FailStateEntered", "Failed", "{}"),
            plain(9, 8, "ExecutionFailed"),
        ];
        assert_eq!(
            failed_state(&history, Some("drplan.InvalidPlan")),
            named("Discover", None)
        );
    }

    #[test]
    fn a_retried_failure_with_another_error_is_passed_over_and_the_wave_is_named() {
        let wave = r#"{"wave": {"index": 1, "name": "web", "servers": 2}}"#;
        let history = [
            entered(1, 0, "TaskStateEntered", "LaunchWave", wave),
            plain(2, 1, "TaskScheduled"),
            task_failed(3, 2, "drplan.Throttled"),
            plain(4, 3, "TaskScheduled"),
            plain(5, 4, "TaskSucceeded"),
            entered(6, 5, "TaskStateEntered", "CheckHealth", wave),
            plain(7, 6, "TaskScheduled"),
            task_failed(8, 7, "drplan.AwsCallFailed"),
            // Another wave's step entered meanwhile, in a parallel Map iteration.
            entered(9, 0, "TaskStateEntered", "LaunchWave", "{}"),
            plain(10, 8, "ExecutionFailed"),
        ];
        assert_eq!(
            failed_state(&history, Some("drplan.AwsCallFailed")),
            named("CheckHealth", Some("web"))
        );
    }

    #[test]
    fn the_state_machines_own_verdict_names_its_fail_state() {
        let wave = r#"{"wave": {"index": 0, "name": "db", "servers": 2}}"#;
        let history = [
            entered(1, 0, "TaskStateEntered", "CheckLaunch", wave),
            entered(2, 1, "FailStateEntered", "WaveFailed", wave),
            entered(3, 2, "FailStateEntered", "Failed", "{}"),
            plain(4, 3, "ExecutionFailed"),
        ];
        assert_eq!(
            failed_state(&history, Some("drplan.WaveFailed")),
            named("WaveFailed", Some("db"))
        );
    }

    #[test]
    fn a_stopped_run_names_the_state_it_was_in_and_no_states_name_none() {
        let history = [
            entered(1, 0, "TaskStateEntered", "Discover", "{}"),
            entered(2, 1, "WaitStateEntered", "KeepDrillInstances", "{}"),
            plain(3, 2, "ExecutionAborted"),
        ];
        assert_eq!(
            failed_state(&history, Some("drplan.StoppedByRecovery")),
            named("KeepDrillInstances", None)
        );
        let retried_then_stopped = [
            entered(1, 0, "TaskStateEntered", "Discover", "{}"),
            plain(2, 1, "TaskScheduled"),
            task_failed(3, 2, "drplan.Throttled"),
            plain(4, 3, "TaskSucceeded"),
            entered(5, 4, "TaskStateEntered", "CheckLaunch", "{}"),
            plain(6, 5, "ExecutionAborted"),
        ];
        assert_eq!(
            failed_state(&retried_then_stopped, None),
            named("CheckLaunch", None)
        );
        assert_eq!(failed_state(&[], None), None);
    }
}
