use aws_sdk_sfn::types::builders::HistoryEventBuilder;
use aws_sdk_sfn::types::{
    LambdaFunctionScheduledEventDetails, StateEnteredEventDetails, StateExitedEventDetails,
    TaskScheduledEventDetails, TaskSubmittedEventDetails,
};
use aws_smithy_types::DateTime;
use drplan_core::contract::{LaunchPoll, LaunchState, RunContext, SnapshotChoice, Timing, WaveRef};
use drplan_core::{Mode, Quotas};
use jiff::Timestamp;
use serde_json::json;

use super::*;

fn event(id: i64, previous: i64, kind: &str, seconds: f64) -> HistoryEventBuilder {
    HistoryEvent::builder()
        .id(id)
        .previous_event_id(previous)
        .r#type(HistoryEventType::from(kind))
        .timestamp(DateTime::from_secs_f64(seconds))
}

fn entered(id: i64, previous: i64, kind: &str, seconds: f64, state: &str) -> HistoryEvent {
    let details = StateEnteredEventDetails::builder()
        .name(state)
        .build()
        .expect("a state name");
    event(id, previous, kind, seconds)
        .state_entered_event_details(details)
        .build()
        .expect("an event")
}

fn exited(id: i64, previous: i64, kind: &str, seconds: f64, state: &str) -> HistoryEvent {
    exited_with(id, previous, kind, seconds, state, None)
}

fn exited_with(
    id: i64,
    previous: i64,
    kind: &str,
    seconds: f64,
    state: &str,
    output: Option<String>,
) -> HistoryEvent {
    let details = StateExitedEventDetails::builder()
        .name(state)
        .set_output(output)
        .build()
        .expect("a state name");
    event(id, previous, kind, seconds)
        .state_exited_event_details(details)
        .build()
        .expect("an event")
}

fn plain(id: i64, previous: i64, kind: &str, seconds: f64) -> HistoryEvent {
    event(id, previous, kind, seconds)
        .build()
        .expect("an event")
}

fn lambda_scheduled(
    id: i64,
    previous: i64,
    seconds: f64,
    arn: &str,
    input: Option<&str>,
) -> HistoryEvent {
    let details = LambdaFunctionScheduledEventDetails::builder()
        .resource(arn)
        .set_input(input.map(str::to_owned))
        .build()
        .expect("a resource");
    event(id, previous, "LambdaFunctionScheduled", seconds)
        .lambda_function_scheduled_event_details(details)
        .build()
        .expect("an event")
}

fn task_scheduled(
    id: i64,
    previous: i64,
    seconds: f64,
    resource: &str,
    parameters: serde_json::Value,
) -> HistoryEvent {
    let details = TaskScheduledEventDetails::builder()
        .resource_type("lambda")
        .resource(resource)
        .region("us-east-1")
        .parameters(parameters.to_string())
        .build()
        .expect("a scheduled task");
    event(id, previous, "TaskScheduled", seconds)
        .task_scheduled_event_details(details)
        .build()
        .expect("an event")
}

fn approval_task(id: i64, token: &str) -> HistoryEvent {
    task_scheduled(
        id,
        id - 1,
        f64::from(id as i32),
        "invoke.waitForTaskToken",
        json!({"FunctionName": "arn:aws:lambda:us-east-1:1:function:drplan-notify",
               "Payload": {"event": "APPROVAL_NEEDED", "task_token": token}}),
    )
}

#[test]
fn an_approval_task_without_an_answer_is_pending_with_its_token() {
    let history = vec![
        plain(1, 0, "ExecutionStarted", 1.0),
        // An earlier task's answer does not answer the approval.
        plain(2, 1, "TaskSucceeded", 2.0),
        entered(3, 2, "TaskStateEntered", 3.0, "WaitForApproval"),
        approval_task(4, "token-1"),
        plain(5, 4, "TaskStarted", 5.0),
    ];
    assert_eq!(
        approval(&history),
        Approval::Pending {
            task_token: "token-1".into()
        }
    );
}

#[test]
fn an_answered_approval_is_not_pending_and_a_run_without_one_was_not_asked() {
    let answered = vec![
        approval_task(4, "token-1"),
        plain(5, 4, "TaskStarted", 5.0),
        plain(6, 5, "TaskSucceeded", 6.0),
    ];
    assert_eq!(approval(&answered), Approval::Answered);
    let timed_out = vec![
        approval_task(4, "token-1"),
        plain(5, 4, "TaskTimedOut", 6.0),
    ];
    assert_eq!(approval(&timed_out), Approval::Answered);
    // A task with a token that is not the approval's (a wave's parked wait).
    let parked = vec![task_scheduled(
        4,
        3,
        4.0,
        "invoke.waitForTaskToken",
        json!({"FunctionName": "wait-wave", "Payload": {"task_token": "token-2"}}),
    )];
    assert_eq!(approval(&parked), Approval::NotAsked);
    assert_eq!(approval(&[]), Approval::NotAsked);
}

fn run() -> RunContext {
    RunContext {
        execution_id: "arn:aws:states:us-east-1:1:execution:drplan-recovery:shop-1".into(),
        execution_name: "shop-1".into(),
        plan: "shop".into(),
        mode: Mode::Recovery,
        started_at: "2026-11-28T03:00:00Z".parse().expect("a time"),
        snapshot: SnapshotChoice::Latest,
        timing: Timing::default(),
        quotas: Quotas::default(),
        deadline: None,
        resumed: None,
        origin_region: None,
    }
}

fn wave(index: usize, name: &str) -> WaveRef {
    WaveRef {
        index,
        name: name.into(),
        servers: 4,
        hooks: Default::default(),
        adopted: false,
    }
}

fn step(index: usize, name: &str, state: LaunchState, launched: usize) -> String {
    let poll = LaunchPoll {
        state,
        attempt: 1,
        wait_seconds: 2,
        deadline: "2026-11-28T04:00:00Z".parse().expect("a time"),
        launched,
        failed: 0,
        pending: 4 - launched,
        reason: None,
    };
    let step = WaveStep {
        run: run(),
        wave: wave(index, name),
        poll: Some(poll),
        health: None,
    };
    serde_json::to_string(&step).expect("a wave step")
}

#[test]
fn progress_reads_discovery_the_latest_poll_of_each_wave_and_the_tagged_waves() {
    let discovery = json!({"run": run(), "layers": [[wave(0, "db")], [wave(1, "web")]],
                           "requires_approval": false, "approval_timeout_seconds": 3600,
                           "keep_seconds": 0, "server_count": 8, "warnings": []});
    let history = vec![
        entered(2, 1, "TaskStateEntered", 1.0, "Discover"),
        exited_with(
            3,
            2,
            "TaskStateExited",
            2.0,
            "Discover",
            Some(discovery.to_string()),
        ),
        entered(4, 3, "TaskStateEntered", 3.0, "LaunchWave"),
        exited_with(
            5,
            4,
            "TaskStateExited",
            4.0,
            "LaunchWave",
            Some(step(0, "db", LaunchState::InProgress, 0)),
        ),
        entered(6, 5, "TaskStateEntered", 5.0, "CheckLaunch"),
        exited_with(
            7,
            6,
            "TaskStateExited",
            6.0,
            "CheckLaunch",
            Some(step(0, "db", LaunchState::Succeeded, 4)),
        ),
        entered(8, 7, "TaskStateEntered", 7.0, "TagInstances"),
        exited_with(
            9,
            8,
            "TaskStateExited",
            8.0,
            "TagInstances",
            Some(step(0, "db", LaunchState::Succeeded, 4)),
        ),
        // An output of another shape is passed over.
        exited_with(
            10,
            9,
            "TaskStateExited",
            9.0,
            "LaunchWave",
            Some("{}".into()),
        ),
        entered(11, 10, "TaskStateEntered", 10.0, "LaunchWave"),
        // A Wait state is not the current Task state.
        entered(12, 11, "WaitStateEntered", 11.0, "WaitForLaunchByPolling"),
    ];
    let progress = progress(&history);
    let discovery = progress.discovery.expect("the discovery");
    assert_eq!(discovery.server_count, 8);
    assert_eq!(discovery.layers.len(), 2);
    assert_eq!(progress.waves.len(), 1);
    let db = progress.waves[&0].poll.as_ref().expect("db's poll");
    assert_eq!((db.state.clone(), db.launched), (LaunchState::Succeeded, 4));
    assert_eq!(progress.tagged, ["db"]);
    assert_eq!(progress.current_state.as_deref(), Some("LaunchWave"));
}

#[test]
fn progress_of_an_empty_history_is_empty() {
    assert_eq!(progress(&[]), Progress::default());
}

#[test]
fn state_times_add_overlapping_entries_and_name_the_task_function() {
    let history = vec![
        plain(1, 0, "ExecutionStarted", 10.0),
        entered(2, 1, "TaskStateEntered", 10.0, "TagInstances"),
        lambda_scheduled(
            3,
            2,
            10.1,
            "arn:aws:lambda:us-east-1:1:function:tag-instances",
            None,
        ),
        // A second entry of the same state while the first is still in it (parallel waves).
        entered(4, 1, "TaskStateEntered", 11.0, "TagInstances"),
        exited(5, 3, "TaskStateExited", 12.0, "TagInstances"),
        exited(6, 4, "TaskStateExited", 12.5, "TagInstances"),
        entered(7, 6, "WaitStateEntered", 12.5, "WaitForLaunch"),
        exited(8, 7, "WaitStateExited", 13.5, "WaitForLaunch"),
        // Still in it when the history ends (a failed or stopped execution).
        entered(9, 8, "ChoiceStateEntered", 14.0, "Decide"),
        plain(10, 9, "ExecutionAborted", 15.0),
    ];
    let times = state_times(&history);
    let tag = &times["TagInstances"];
    assert_eq!((tag.kind.as_str(), tag.entries), ("Task", 2));
    assert!((tag.seconds - 3.5).abs() < 1e-9, "{tag:?}");
    assert_eq!(tag.function.as_deref(), Some("tag-instances"));
    let wait = &times["WaitForLaunch"];
    assert_eq!(
        (wait.kind.as_str(), wait.entries, wait.function.as_deref()),
        ("Wait", 1, None)
    );
    assert!((wait.seconds - 1.0).abs() < 1e-9);
    assert!((times["Decide"].seconds - 1.0).abs() < 1e-9);
    assert!(!tag.waits_for_token);
    assert_eq!(transitions(&history), 4);
}

#[test]
fn a_task_that_waits_for_its_token_names_the_function_from_its_parameters() {
    let history = vec![
        entered(2, 1, "TaskStateEntered", 1.0, "WaitForLaunch"),
        task_scheduled(
            3,
            2,
            1.0,
            "invoke.waitForTaskToken",
            json!({"FunctionName": "arn:aws:lambda:us-east-1:1:function:wait-wave",
                   "Payload": {"task_token": "t"}}),
        ),
        exited(4, 3, "TaskStateExited", 31.0, "WaitForLaunch"),
    ];
    let times = state_times(&history);
    let park = &times["WaitForLaunch"];
    assert_eq!(park.function.as_deref(), Some("wait-wave"));
    assert!(park.waits_for_token);
    assert!((park.seconds - 30.0).abs() < 1e-9);
}

#[test]
fn the_first_input_of_each_function_is_kept() {
    let arn = "arn:aws:lambda:us-east-1:1:function:launch-wave";
    let history = vec![
        lambda_scheduled(1, 0, 1.0, arn, Some(r#"{"n": 1}"#)),
        lambda_scheduled(2, 1, 2.0, arn, Some(r#"{"n": 2}"#)),
        // Unreadable inputs are passed over.
        lambda_scheduled(
            3,
            2,
            3.0,
            "arn:aws:lambda:us-east-1:1:function:discover",
            Some("not json"),
        ),
        lambda_scheduled(
            4,
            3,
            4.0,
            "arn:aws:lambda:us-east-1:1:function:notify",
            None,
        ),
    ];
    let inputs = first_lambda_inputs(&history);
    assert_eq!(inputs.len(), 1, "{inputs:?}");
    assert_eq!(inputs["launch-wave"], json!({"n": 1}));
}

#[test]
fn succeeded_waves_are_those_that_entered_the_success_state() {
    let succeeded = |id: i64, wave: &str| {
        let details = StateEnteredEventDetails::builder()
            .name(states::WAVE_SUCCEEDED)
            .input(json!({"run": {}, "wave": {"index": 0, "name": wave, "servers": 1}}).to_string())
            .build()
            .expect("a state name");
        event(id, id - 1, "SucceedStateEntered", 1.0)
            .state_entered_event_details(details)
            .build()
            .expect("an event")
    };
    let history = vec![
        entered(1, 0, "TaskStateEntered", 0.5, states::LAUNCH_WAVE),
        succeeded(2, "db"),
        entered(3, 2, "TaskStateEntered", 1.5, "NotifyWaveFailed"),
        succeeded(4, "cache"),
    ];
    let waves: Vec<String> = succeeded_waves(&history).into_iter().collect();
    assert_eq!(waves, ["cache", "db"]);
    assert!(succeeded_waves(&[]).is_empty());
}

fn pause_task(id: i64, token: &str) -> HistoryEvent {
    task_scheduled(
        id,
        id - 1,
        f64::from(id as i32),
        "invoke.waitForTaskToken",
        json!({"FunctionName": "arn:aws:lambda:us-east-1:1:function:drplan-notify",
               "Payload": {"event": "PAUSED", "task_token": token,
                           "pause": {"layer": 2, "waves": []}}}),
    )
}

/// The notify function's answer as Lambda's invoke gives it.
fn submitted(id: i64, payload: serde_json::Value) -> HistoryEvent {
    let details = TaskSubmittedEventDetails::builder()
        .resource_type("lambda")
        .resource("invoke.waitForTaskToken")
        .output(
            json!({"ExecutedVersion": "$LATEST", "Payload": payload, "StatusCode": 200})
                .to_string(),
        )
        .build()
        .expect("a submitted task");
    event(id, id - 1, "TaskSubmitted", f64::from(id as i32))
        .task_submitted_event_details(details)
        .build()
        .expect("an event")
}

#[test]
fn a_pause_without_an_answer_holds_with_its_token_stage_and_request() {
    let asked =
        json!({"by": "alice", "reason": "checking the database", "at": "2026-11-28T03:10:00Z"});
    let history = vec![
        plain(1, 0, "ExecutionStarted", 1.0),
        plain(2, 1, "TaskSucceeded", 2.0),
        entered(3, 2, "TaskStateEntered", 3.0, states::WAIT_WHILE_PAUSED),
        pause_task(4, "token-p"),
        plain(5, 4, "TaskStarted", 5.0),
        submitted(
            6,
            json!({"message_id": "m", "subject": "s", "pause_request": asked}),
        ),
    ];
    let Pause::Holding {
        task_token,
        since,
        layer,
        request,
    } = pause(&history)
    else {
        panic!("the run holds");
    };
    assert_eq!(task_token, "token-p");
    assert_eq!(since, Timestamp::from_second(4).ok());
    assert_eq!(layer, 2);
    let request = request.expect("drplan's request");
    assert_eq!(request.by, "alice");
    assert_eq!(request.reason.as_deref(), Some("checking the database"));
    // The approval view does not take a pause for an approval.
    assert_eq!(approval(&history), Approval::NotAsked);
    // A Payload given as JSON text reads the same.
    let text = vec![
        pause_task(4, "token-p"),
        submitted(5, json!(json!({"pause_request": asked}).to_string())),
    ];
    assert!(matches!(
        pause(&text),
        Pause::Holding {
            request: Some(_),
            ..
        }
    ));
}

#[test]
fn a_continued_pause_does_not_hold_and_an_unknown_requester_still_holds() {
    let continued = vec![
        pause_task(4, "token-p"),
        plain(5, 4, "TaskStarted", 5.0),
        plain(6, 5, "TaskSucceeded", 6.0),
    ];
    assert_eq!(pause(&continued), Pause::NotHolding);
    let unknown = vec![
        pause_task(4, "token-p"),
        submitted(5, json!({"message_id": ""})),
    ];
    assert!(matches!(
        pause(&unknown),
        Pause::Holding { request: None, .. }
    ));
    // Held, continued, held again at a later stage: the earlier answer is not this one's.
    let again = vec![
        pause_task(4, "token-1"),
        submitted(
            5,
            json!({"pause_request": {"by": "carol", "at": "2026-11-28T03:00:00Z"}}),
        ),
        plain(6, 5, "TaskSucceeded", 6.0),
        pause_task(9, "token-2"),
    ];
    assert!(matches!(
        pause(&again),
        Pause::Holding { ref task_token, request: None, .. } if task_token == "token-2"
    ));
    assert_eq!(pause(&[]), Pause::NotHolding);
    // An approval wait is no pause.
    assert_eq!(pause(&[approval_task(4, "token-a")]), Pause::NotHolding);
}

#[test]
fn every_stage_has_started_once_the_stages_map_exits() {
    let running = vec![entered(3, 2, "MapStateEntered", 3.0, states::RUN_LAYERS)];
    assert!(!every_stage_started(&running));
    let done = vec![
        entered(3, 2, "MapStateEntered", 3.0, states::RUN_LAYERS),
        exited(9, 8, "MapStateExited", 9.0, states::RUN_LAYERS),
    ];
    assert!(every_stage_started(&done));
}
