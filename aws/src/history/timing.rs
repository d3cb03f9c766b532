//! Where an execution's time and transitions went, from its history (`drplan bench`).

use std::collections::BTreeMap;

use aws_sdk_sfn::types::HistoryEvent;

/// How long an execution spent in one of its states, over all its entries.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StateTime {
    /// Task, Wait, Choice, Pass, Map, Parallel, ... (the history's event type prefix)
    pub kind: String,
    pub entries: u64,
    pub seconds: f64,
    /// The Lambda function a Task state invoked.
    pub function: Option<String>,
    /// A `.waitForTaskToken` task: its time is a wait for the token, not the function's.
    pub waits_for_token: bool,
}

/// State transitions, as Step Functions bills them: one per state entered.
pub fn transitions(history: &[HistoryEvent]) -> u64 {
    history
        .iter()
        .filter(|e| e.r#type().as_str().ends_with("StateEntered"))
        .count() as u64
}

/// The name of a function from its ARN (or its name).
fn function_name(arn: &str) -> String {
    arn.rsplit(':').next().unwrap_or(arn).to_owned()
}

/// The first input each Lambda function was invoked with, by function name.
pub fn first_lambda_inputs(history: &[HistoryEvent]) -> BTreeMap<String, serde_json::Value> {
    let mut first = BTreeMap::new();
    for details in history
        .iter()
        .filter_map(|e| e.lambda_function_scheduled_event_details())
    {
        let Some(input) = details
            .input()
            .and_then(|input| serde_json::from_str(input).ok())
        else {
            continue;
        };
        first
            .entry(function_name(details.resource()))
            .or_insert(input);
    }
    first
}

/// The function a scheduled task invokes, and whether its state then waits for the
/// task token.
fn invoked_function(event: &HistoryEvent) -> Option<(String, bool)> {
    if let Some(details) = event.lambda_function_scheduled_event_details() {
        return Some((function_name(details.resource()), false));
    }
    // A service-integration task (lambda:invoke.waitForTaskToken) names its function in
    // its parameters, not in a LambdaFunctionScheduled event.
    let details = event.task_scheduled_event_details()?;
    let parameters: serde_json::Value = serde_json::from_str(details.parameters()).ok()?;
    let function = parameters["FunctionName"].as_str()?;
    Some((
        function_name(function),
        details.resource().ends_with(".waitForTaskToken"),
    ))
}

/// Time in each state: Σ exit times − Σ entry times per state name, which holds however
/// entries of the same state overlap (parallel waves run the same states at once). A
/// state still open at the history's end counts until then.
pub fn state_times(history: &[HistoryEvent]) -> BTreeMap<String, StateTime> {
    let mut states: BTreeMap<String, StateTime> = BTreeMap::new();
    let mut open: BTreeMap<String, i64> = BTreeMap::new();
    // The TaskStateEntered events by id, for the task scheduled after each.
    let mut task_entered: BTreeMap<i64, String> = BTreeMap::new();
    let mut last_task: Option<String> = None;
    let end = history
        .iter()
        .map(|e| e.timestamp().as_secs_f64())
        .fold(0.0, f64::max);
    for event in history {
        let kind = event.r#type().as_str();
        let at = event.timestamp().as_secs_f64();
        let state = event
            .state_entered_event_details()
            .map(|d| d.name())
            .or_else(|| event.state_exited_event_details().map(|d| d.name()));
        if let (Some(prefix), Some(name)) = (kind.strip_suffix("StateEntered"), state) {
            let entry = states.entry(name.to_owned()).or_default();
            entry.kind = prefix.to_owned();
            entry.entries += 1;
            entry.seconds -= at;
            *open.entry(name.to_owned()).or_default() += 1;
            if prefix == "Task" {
                task_entered.insert(event.id(), name.to_owned());
                last_task = Some(name.to_owned());
            }
        } else if let (true, Some(name)) = (kind.ends_with("StateExited"), state) {
            let entry = states.entry(name.to_owned()).or_default();
            entry.seconds += at;
            *open.entry(name.to_owned()).or_default() -= 1;
        } else if let Some((function, waits_for_token)) = invoked_function(event) {
            let task = task_entered
                .get(&event.previous_event_id())
                .cloned()
                .or_else(|| last_task.clone());
            if let Some(entry) = task.and_then(|task| states.get_mut(&task)) {
                entry.function.get_or_insert(function);
                // The execution waits in such a state for the task token (or the
                // timeout): waiting, like a Wait state, not the function's run.
                entry.waits_for_token |= waits_for_token;
            }
        }
    }
    for (name, still_open) in open {
        if still_open > 0
            && let Some(entry) = states.get_mut(&name)
        {
            entry.seconds += still_open as f64 * end;
        }
    }
    states
}
