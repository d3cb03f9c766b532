//! EventBridge events that act without a person: a CloudWatch alarm that starts a plan,
//! a DRS replication stall that pages on-call staff, a DRS launch result that wakes a
//! waiting wave. Reading them (every problem names its field), deciding what to do,
//! and what to tell people. No AWS calls here: the trigger function does those.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde_json::{Map, Value};

use crate::plan::{DEFAULT_TRIGGER_MIN_GAP_MINUTES, Mode, Plan, Selector, WAVE_TAG};

/// EventBridge refuses events over 256 KiB; anything bigger did not come from it.
pub const MAX_EVENT_BYTES: usize = 256 * 1024;
pub const ALARM_STATE_CHANGE: &str = "CloudWatch Alarm State Change";
pub const REPLICATION_STALLED_CHANGE: &str = "DRS Source Server Data Replication Stalled Change";
pub const LAUNCH_RESULT: &str = "DRS Source Server Launch Result";
/// An alarm tag (with tag propagation on) that names the plan the alarm starts.
pub const PLAN_TAG: &str = "drplan:plan";
/// An alarm tag that chooses the mode (`drill` or `recovery`).
pub const MODE_TAG: &str = "drplan:mode";
/// Marks executions an alarm started: `PLAN-alarm-YYYYMMDDTHHMMSSZ-HASH`.
const AUTOMATIC_MARK: &str = "-alarm-";
/// Step Functions' longest execution name.
const MAX_EXECUTION_NAME: usize = 80;

/// An event drplan acts on.
#[derive(Debug, Clone, PartialEq)]
pub enum TriggerEvent {
    Alarm(AlarmStateChange),
    Replication(ReplicationChange),
    LaunchResult(LaunchResult),
    ExecutionStatus(ExecutionStatusChange),
}

/// Step Functions' event when an execution's status changes.
pub const EXECUTION_STATUS_CHANGE: &str = "Step Functions Execution Status Change";

/// An execution that changed status (`detail` of the Step Functions event).
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionStatusChange {
    pub event_id: String,
    pub execution_arn: String,
    pub state_machine_arn: String,
    pub name: String,
    /// RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED...
    pub status: String,
    /// The execution input (a JSON string in the event); `None` when absent or not JSON.
    pub input: Option<Value>,
    /// When the execution started, in epoch milliseconds.
    pub start_date: Option<i64>,
    /// The error and cause it ended with (StopExecution's, for an aborted one).
    pub error: Option<String>,
    pub cause: Option<String>,
}

impl ExecutionStatusChange {
    /// Whether the execution ended without its own last steps (report, cleanup) having
    /// run for sure: stopped, timed out, or failed (a failure the state machine could not
    /// catch, such as an oversized state, skips them).
    pub fn ended_abnormally(&self) -> bool {
        matches!(self.status.as_str(), "ABORTED" | "TIMED_OUT" | "FAILED")
    }

    /// The plan the execution ran: a name, or an inline plan's name.
    pub fn plan(&self) -> Option<String> {
        match self.input.as_ref()?.get("plan")? {
            Value::String(name) => Some(name.clone()),
            inline => inline.get("name")?.as_str().map(str::to_owned),
        }
    }
}

impl TriggerEvent {
    /// A short name for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Alarm(_) => "AlarmStateChange",
            Self::Replication(_) => "ReplicationStalledChange",
            Self::LaunchResult(_) => "LaunchResult",
            Self::ExecutionStatus(_) => "ExecutionStatusChange",
        }
    }
}

/// `CloudWatch Alarm State Change`.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmStateChange {
    pub event_id: String,
    pub alarm_name: String,
    /// From `resources`, when it holds the alarm's ARN.
    pub alarm_arn: Option<String>,
    pub kind: AlarmKind,
    pub state: AlarmState,
    pub previous_state: Option<AlarmState>,
    /// `detail.state.timestamp` as CloudWatch wrote it: with the alarm's name, it
    /// identifies one state change however many times it is delivered.
    pub state_timestamp: String,
    pub reason: String,
    /// `detail.alarmTags` (alarms with tag propagation on); empty otherwise.
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlarmState {
    Alarm,
    Ok,
    InsufficientData,
}

impl AlarmState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Alarm => "ALARM",
            Self::Ok => "OK",
            Self::InsufficientData => "INSUFFICIENT_DATA",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "ALARM" => Some(Self::Alarm),
            "OK" => Some(Self::Ok),
            "INSUFFICIENT_DATA" => Some(Self::InsufficientData),
            _ => None,
        }
    }
}

/// What the alarm watches; all three start plans the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlarmKind {
    Metric,
    MetricMath,
    Composite,
}

impl AlarmKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Metric => "metric",
            Self::MetricMath => "metric math",
            Self::Composite => "composite",
        }
    }
}

/// `DRS Source Server Data Replication Stalled Change`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicationChange {
    pub event_id: String,
    pub time: String,
    pub region: String,
    pub source_server_id: String,
    pub source_server_arn: String,
    pub stalled: bool,
}

/// `DRS Source Server Launch Result`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchResult {
    pub event_id: String,
    pub source_server_id: String,
    pub state: String,
    pub job_id: Option<String>,
}

/// Why an event was refused. Each names the field and the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("the event is {bytes} bytes; EventBridge events are at most {MAX_EVENT_BYTES}")]
    TooLarge { bytes: usize },
    #[error("`{field}` is missing")]
    Missing { field: String },
    #[error("`{field}` must be {expected}, found {found}")]
    WrongType {
        field: String,
        expected: &'static str,
        found: &'static str,
    },
    #[error("`{field}`: {problem}")]
    Invalid { field: String, problem: String },
    #[error(
        "unknown event (source {event_source:?}, detail-type {detail_type:?}): drplan handles \
         {ALARM_STATE_CHANGE:?} from aws.cloudwatch and {REPLICATION_STALLED_CHANGE:?} / \
         {LAUNCH_RESULT:?} from aws.drs"
    )]
    Unknown {
        event_source: String,
        detail_type: String,
    },
}

impl EventError {
    /// The metric dimension value.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "TooLarge",
            Self::Missing { .. } => "MissingField",
            Self::WrongType { .. } => "WrongType",
            Self::Invalid { .. } => "InvalidValue",
            Self::Unknown { .. } => "UnknownDetailType",
        }
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Field access that reports the path of what is wrong.
struct Fields<'a> {
    map: &'a Map<String, Value>,
    path: &'a str,
}

impl<'a> Fields<'a> {
    fn path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    fn get(&self, key: &str) -> Result<&'a Value, EventError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Err(EventError::Missing {
                field: self.path(key),
            }),
            Some(value) => Ok(value),
        }
    }

    fn text(&self, key: &str) -> Result<&'a str, EventError> {
        let value = self.get(key)?;
        match value.as_str() {
            Some(text) if !text.trim().is_empty() => Ok(text),
            Some(_) => Err(EventError::Invalid {
                field: self.path(key),
                problem: "is empty".into(),
            }),
            None => Err(EventError::WrongType {
                field: self.path(key),
                expected: "a string",
                found: type_name(value),
            }),
        }
    }

    fn optional_text(&self, key: &str) -> Result<Option<&'a str>, EventError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(_) => self.text(key).map(Some),
        }
    }

    fn object(&self, key: &str) -> Result<Fields<'a>, EventError> {
        let value = self.get(key)?;
        value
            .as_object()
            .map(|map| Fields { map, path: "" })
            .ok_or_else(|| EventError::WrongType {
                field: self.path(key),
                expected: "an object",
                found: type_name(value),
            })
    }
}

/// Reads an EventBridge event (the JSON a rule target receives).
pub fn read_event(raw: &Value) -> Result<TriggerEvent, EventError> {
    let bytes = serde_json::to_vec(raw).map_or(0, |b| b.len());
    if bytes > MAX_EVENT_BYTES {
        return Err(EventError::TooLarge { bytes });
    }
    let map = raw.as_object().ok_or(EventError::WrongType {
        field: "(event)".into(),
        expected: "an object",
        found: type_name(raw),
    })?;
    let event = Fields { map, path: "" };
    let source = event.text("source")?;
    let detail_type = event.text("detail-type")?;
    let event_id = event.optional_text("id")?.unwrap_or_default().to_owned();
    let resources = resources(&event)?;
    let detail_value = event.get("detail")?;
    let detail_map = detail_value.as_object().ok_or(EventError::WrongType {
        field: "detail".into(),
        expected: "an object",
        found: type_name(detail_value),
    })?;
    let detail = Fields {
        map: detail_map,
        path: "detail",
    };
    match (source, detail_type) {
        ("aws.cloudwatch", ALARM_STATE_CHANGE) => {
            read_alarm(event_id, &resources, &detail).map(TriggerEvent::Alarm)
        }
        ("aws.drs", REPLICATION_STALLED_CHANGE) => {
            let (source_server_arn, source_server_id) = source_server(&resources)?;
            let state = detail.text("state")?;
            let stalled = match state {
                "STALLED" => true,
                "NOT_STALLED" => false,
                other => {
                    return Err(EventError::Invalid {
                        field: "detail.state".into(),
                        problem: format!("{other:?} is not STALLED or NOT_STALLED"),
                    });
                }
            };
            Ok(TriggerEvent::Replication(ReplicationChange {
                event_id,
                time: event.optional_text("time")?.unwrap_or_default().to_owned(),
                region: event
                    .optional_text("region")?
                    .unwrap_or_default()
                    .to_owned(),
                source_server_id,
                source_server_arn,
                stalled,
            }))
        }
        ("aws.drs", LAUNCH_RESULT) => {
            let (_, source_server_id) = source_server(&resources)?;
            let job_id = detail.optional_text("job-id")?;
            if let Some(job_id) = job_id.filter(|id| !crate::launch_wait::is_job_id(id)) {
                return Err(EventError::Invalid {
                    field: "detail.job-id".into(),
                    problem: format!("{job_id:?} is not a DRS job ID (drsjob-…)"),
                });
            }
            Ok(TriggerEvent::LaunchResult(LaunchResult {
                event_id,
                source_server_id,
                state: detail.text("state")?.to_owned(),
                job_id: job_id.map(str::to_owned),
            }))
        }
        ("aws.states", EXECUTION_STATUS_CHANGE) => {
            let optional = |key: &str| -> Result<Option<String>, EventError> {
                Ok(detail.optional_text(key)?.map(str::to_owned))
            };
            let start_date = match detail.map.get("startDate") {
                None | Some(Value::Null) => None,
                Some(value) => Some(value.as_i64().ok_or(EventError::WrongType {
                    field: "detail.startDate".into(),
                    expected: "epoch milliseconds",
                    found: type_name(value),
                })?),
            };
            Ok(TriggerEvent::ExecutionStatus(ExecutionStatusChange {
                event_id,
                execution_arn: detail.text("executionArn")?.to_owned(),
                state_machine_arn: detail.text("stateMachineArn")?.to_owned(),
                name: detail.text("name")?.to_owned(),
                status: detail.text("status")?.to_owned(),
                input: optional("input")?.and_then(|text| serde_json::from_str(&text).ok()),
                start_date,
                error: optional("error")?,
                cause: optional("cause")?,
            }))
        }
        _ => Err(EventError::Unknown {
            event_source: source.to_owned(),
            detail_type: detail_type.to_owned(),
        }),
    }
}

fn resources(event: &Fields) -> Result<Vec<String>, EventError> {
    let Some(value) = event.map.get("resources") else {
        return Ok(Vec::new());
    };
    let items = value.as_array().ok_or(EventError::WrongType {
        field: "resources".into(),
        expected: "an array of ARNs",
        found: type_name(value),
    })?;
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            item.as_str()
                .map(str::to_owned)
                .ok_or(EventError::WrongType {
                    field: format!("resources[{i}]"),
                    expected: "a string",
                    found: type_name(item),
                })
        })
        .collect()
}

/// The source server's ARN and ID from `resources` (`arn:aws:drs:REGION:ACCOUNT:source-server/s-…`).
fn source_server(resources: &[String]) -> Result<(String, String), EventError> {
    let arn = resources.first().ok_or_else(|| EventError::Missing {
        field: "resources[0] (the source server's ARN)".into(),
    })?;
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let id = match parts.as_slice() {
        ["arn", _, "drs", _, _, resource] => resource.strip_prefix("source-server/"),
        _ => None,
    }
    .filter(|id| {
        id.strip_prefix("s-")
            .is_some_and(|hex| !hex.is_empty() && hex.chars().all(|c| c.is_ascii_alphanumeric()))
    });
    match id {
        Some(id) => Ok((arn.clone(), id.to_owned())),
        None => Err(EventError::Invalid {
            field: "resources[0]".into(),
            problem: format!(
                "{arn:?} is not a DRS source server ARN (arn:aws:drs:REGION:ACCOUNT:source-server/s-…)"
            ),
        }),
    }
}

fn read_alarm(
    event_id: String,
    resources: &[String],
    detail: &Fields,
) -> Result<AlarmStateChange, EventError> {
    let alarm_name = detail.text("alarmName")?.to_owned();
    let state = detail.object("state")?;
    let state = Fields {
        map: state.map,
        path: "detail.state",
    };
    let value = state.text("value")?;
    let state_value = AlarmState::parse(value).ok_or_else(|| EventError::Invalid {
        field: "detail.state.value".into(),
        problem: format!("{value:?} is not ALARM, OK or INSUFFICIENT_DATA"),
    })?;
    let state_timestamp = state.text("timestamp")?.to_owned();
    let reason = state
        .optional_text("reason")?
        .unwrap_or_default()
        .to_owned();
    let previous_state = match detail.map.get("previousState") {
        Some(Value::Object(previous)) => previous
            .get("value")
            .and_then(Value::as_str)
            .and_then(AlarmState::parse),
        _ => None,
    };
    let configuration = detail.map.get("configuration").and_then(Value::as_object);
    let kind = match configuration {
        Some(c) if c.contains_key("alarmRule") => AlarmKind::Composite,
        Some(c)
            if c.get("metrics")
                .and_then(Value::as_array)
                .is_some_and(|metrics| metrics.iter().any(|m| m.get("expression").is_some())) =>
        {
            AlarmKind::MetricMath
        }
        _ => AlarmKind::Metric,
    };
    let mut tags = BTreeMap::new();
    if let Some(value) = detail.map.get("alarmTags").filter(|v| !v.is_null()) {
        let map = value.as_object().ok_or(EventError::WrongType {
            field: "detail.alarmTags".into(),
            expected: "an object of tag names to values",
            found: type_name(value),
        })?;
        for (key, value) in map {
            let text = value.as_str().ok_or(EventError::WrongType {
                field: format!("detail.alarmTags.{key}"),
                expected: "a string",
                found: type_name(value),
            })?;
            tags.insert(key.clone(), text.to_owned());
        }
    }
    let alarm_arn = resources
        .iter()
        .find(|arn| arn.starts_with("arn:") && arn.contains(":alarm:"))
        .cloned();
    Ok(AlarmStateChange {
        event_id,
        alarm_name,
        alarm_arn,
        kind,
        state: state_value,
        previous_state,
        state_timestamp,
        reason,
        tags,
    })
}

// ---- alarms → plans -------------------------------------------------------------------

/// A plan stored in the bucket, as far as alarm routing needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredPlan {
    pub name: String,
    pub plan: Plan,
}

/// A plan an alarm starts, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlarmRoute {
    pub plan: String,
    pub mode: Mode,
    pub min_gap_minutes: u32,
    /// How the alarm was mapped, for the log and the e-mails.
    pub matched_by: String,
}

/// An alarm that names a plan the bucket does not hold, or a mode that does not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error(
        "alarm {alarm} is tagged {PLAN_TAG}={plan}, and no plan of that name is stored (plans/{plan}.yaml)"
    )]
    UnknownPlan { alarm: String, plan: String },
    #[error("alarm {alarm} is tagged {MODE_TAG}={mode}: use drill or recovery")]
    BadMode { alarm: String, mode: String },
}

/// The plans an alarm starts. Its `drplan:plan` tag decides when the event carries
/// alarm tags; otherwise every stored plan whose `triggers.alarms` covers its name.
/// Empty: the alarm is not mapped.
pub fn route_alarm(
    alarm: &AlarmStateChange,
    plans: &[StoredPlan],
) -> Result<Vec<AlarmRoute>, RouteError> {
    if let Some(plan_name) = alarm.tags.get(PLAN_TAG) {
        let stored =
            plans
                .iter()
                .find(|p| &p.name == plan_name)
                .ok_or_else(|| RouteError::UnknownPlan {
                    alarm: alarm.alarm_name.clone(),
                    plan: plan_name.clone(),
                })?;
        let triggers = stored.plan.triggers.as_ref();
        let mode = match alarm.tags.get(MODE_TAG) {
            Some(text) => Mode::ALL
                .iter()
                .find(|(name, _)| name == text)
                .map(|(_, mode)| *mode)
                .ok_or_else(|| RouteError::BadMode {
                    alarm: alarm.alarm_name.clone(),
                    mode: text.clone(),
                })?,
            None => triggers.map_or(Mode::Recovery, |t| t.mode),
        };
        return Ok(vec![AlarmRoute {
            plan: stored.name.clone(),
            mode,
            min_gap_minutes: triggers
                .map_or(DEFAULT_TRIGGER_MIN_GAP_MINUTES, |t| t.min_gap_minutes),
            matched_by: format!("alarm tag {PLAN_TAG}={plan_name}"),
        }]);
    }
    Ok(plans
        .iter()
        .filter_map(|stored| {
            let triggers = stored.plan.triggers.as_ref()?;
            let pattern =
                triggers
                    .alarms
                    .iter()
                    .find(|pattern| match pattern.strip_suffix('*') {
                        Some(prefix) => alarm.alarm_name.starts_with(prefix),
                        None => alarm.alarm_name == **pattern,
                    })?;
            Some(AlarmRoute {
                plan: stored.name.clone(),
                mode: triggers.mode,
                min_gap_minutes: triggers.min_gap_minutes,
                matched_by: format!("plan {} triggers.alarms {pattern:?}", stored.name),
            })
        })
        .collect())
}

/// FNV-1a: stable across builds and platforms, unlike the standard library's hasher.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn compact_time(state_timestamp: &str) -> String {
    // CloudWatch writes e.g. 2019-10-02T17:04:40.985+0000.
    let parsed = jiff::fmt::strtime::parse("%Y-%m-%dT%H:%M:%S%.f%z", state_timestamp)
        .ok()
        .and_then(|t| t.to_timestamp().ok())
        .or_else(|| state_timestamp.parse::<Timestamp>().ok());
    match parsed {
        Some(t) => t.strftime("%Y%m%dT%H%M%SZ").to_string(),
        None => state_timestamp
            .chars()
            .filter(char::is_ascii_digit)
            .take(14)
            .collect(),
    }
}

/// The execution an alarm state change starts: the same for every delivery of one
/// change (so Step Functions runs it once), different for the next change.
/// `PLAN-alarm-YYYYMMDDTHHMMSSZ-HASH`, at most 80 characters.
pub fn alarm_execution_name(plan: &str, alarm: &AlarmStateChange) -> String {
    let identity = alarm.alarm_arn.as_deref().unwrap_or(&alarm.alarm_name);
    let hash = fnv1a(&format!("{identity}\n{}\n{plan}", alarm.state_timestamp));
    let suffix = format!(
        "{AUTOMATIC_MARK}{}-{:08x}",
        compact_time(&alarm.state_timestamp),
        hash as u32
    );
    format!("{}{suffix}", execution_plan_part(plan))
}

/// The plan's part of an alarm-started execution name: cut so that the suffix
/// (`-alarm-` + 16-character time + `-` + 8 hex digits) fits in 80 characters.
fn execution_plan_part(plan: &str) -> String {
    const SUFFIX_CHARS: usize = AUTOMATIC_MARK.len() + 16 + 1 + 8;
    plan.chars()
        .take(MAX_EXECUTION_NAME - SUFFIX_CHARS)
        .collect()
}

/// Whether `execution_name` is a run of `plan` that an alarm started.
pub fn is_automatic_run_of(execution_name: &str, plan: &str) -> bool {
    let plan_part = execution_plan_part(plan);
    execution_name
        .strip_prefix(plan_part.as_str())
        .and_then(|rest| rest.strip_prefix(AUTOMATIC_MARK))
        .is_some_and(|rest| {
            rest.len() >= 10
                && rest.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && rest
                    .rsplit_once('-')
                    .is_some_and(|(_, hash)| hash.len() == 8)
        })
}

/// The plan an execution input names (`"plan": "shop"` or an inline plan's `name`).
pub fn plan_of_input(input: &Value) -> Option<String> {
    match input.get("plan")? {
        Value::String(name) => Some(name.clone()),
        inline => inline.get("name")?.as_str().map(str::to_owned),
    }
}

/// An execution of the recovery state machine, as the decision needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownExecution {
    pub name: String,
    /// Known for running executions (from their input) and alarm-started ones (from the name).
    pub plan: Option<String>,
    pub running: bool,
    pub started: Timestamp,
}

/// What to do with an alarm routed to a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlarmDecision {
    Start {
        execution_name: String,
    },
    /// Another delivery of the same state change: its execution exists already.
    Duplicate {
        execution_name: String,
    },
    Suppressed(Suppression),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Suppression {
    /// A run of the plan is under way.
    Running { execution_name: String },
    /// An alarm started a run of the plan less than `min_gap_minutes` ago.
    TooSoon {
        execution_name: String,
        started: Timestamp,
        min_gap_minutes: u32,
    },
}

/// Starts the plan unless this state change already did, a run of the plan is under
/// way, or an alarm started one within the plan's minimum gap.
pub fn decide_alarm_start(
    route: &AlarmRoute,
    alarm: &AlarmStateChange,
    executions: &[KnownExecution],
    now: Timestamp,
) -> AlarmDecision {
    let execution_name = alarm_execution_name(&route.plan, alarm);
    if executions.iter().any(|e| e.name == execution_name) {
        return AlarmDecision::Duplicate { execution_name };
    }
    let of_plan = |e: &&KnownExecution| e.plan.as_deref() == Some(route.plan.as_str());
    if let Some(running) = executions.iter().filter(of_plan).find(|e| e.running) {
        return AlarmDecision::Suppressed(Suppression::Running {
            execution_name: running.name.clone(),
        });
    }
    let gap_seconds = i64::from(route.min_gap_minutes) * 60;
    if let Some(recent) = executions
        .iter()
        .filter(of_plan)
        .filter(|e| is_automatic_run_of(&e.name, &route.plan))
        .filter(|e| now.as_second() - e.started.as_second() < gap_seconds)
        .max_by_key(|e| e.started)
    {
        return AlarmDecision::Suppressed(Suppression::TooSoon {
            execution_name: recent.name.clone(),
            started: recent.started,
            min_gap_minutes: route.min_gap_minutes,
        });
    }
    AlarmDecision::Start { execution_name }
}

/// Who is starting an alarm run of a plan. Written to the bucket (a conditional put)
/// between the decision and StartExecution, so that two different alarms for one plan
/// at the same moment start one run: each trigger invocation lists the executions
/// before the other's StartExecution is visible, so the listing alone lets both start.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StartClaim {
    pub execution_name: String,
    pub claimed_at: Timestamp,
}

/// How long a claim whose execution is not (yet) listed holds: long enough for the
/// claimer's StartExecution, short enough that a claimer that died before it does not
/// block the plan's alarms for long.
pub const START_CLAIM_HOLD_SECONDS: i64 = 120;

/// Where a plan's start claim lives in the bucket.
pub fn start_claim_key(plan: &str) -> String {
    format!("claims/{plan}/alarm-start.json")
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimVerdict {
    /// Nobody else is starting a run of the plan: claim it and start.
    Take,
    /// Another alarm's run holds the plan: suppress this one.
    Held { execution_name: String },
}

/// Whether an existing claim still holds the plan against the run `ours`, which
/// [`decide_alarm_start`] would start. A claim holds while its execution runs, or, when
/// its execution is not listed yet, for [`START_CLAIM_HOLD_SECONDS`]; a claim of an
/// execution that ended no longer holds (the minimum gap is `decide_alarm_start`'s).
pub fn judge_start_claim(
    claim: Option<&StartClaim>,
    ours: &str,
    executions: &[KnownExecution],
    now: Timestamp,
) -> ClaimVerdict {
    let Some(claim) = claim else {
        return ClaimVerdict::Take;
    };
    if claim.execution_name == ours {
        // Another delivery of the same change: StartExecution's name makes it one run.
        return ClaimVerdict::Take;
    }
    let held = match executions.iter().find(|e| e.name == claim.execution_name) {
        Some(execution) => execution.running,
        None => now.as_second() - claim.claimed_at.as_second() < START_CLAIM_HOLD_SECONDS,
    };
    if held {
        ClaimVerdict::Held {
            execution_name: claim.execution_name.clone(),
        }
    } else {
        ClaimVerdict::Take
    }
}

/// The execution input of an alarm-started run: identical for every delivery of one
/// state change (Step Functions treats a repeated name with the same input as the same
/// start).
pub fn alarm_execution_input(route: &AlarmRoute, alarm: &AlarmStateChange) -> Value {
    serde_json::json!({
        "plan": route.plan,
        "mode": route.mode.as_str(),
        "trigger": {
            "alarm": alarm.alarm_name,
            "alarm_kind": alarm.kind.as_str(),
            "state_timestamp": alarm.state_timestamp,
            "reason": alarm.reason,
            "matched_by": route.matched_by,
        },
    })
}

// ---- replication stalls ------------------------------------------------------------

/// A plan (and wave) that holds a source server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanMembership {
    pub plan: String,
    /// `None` when the server matches the plan's selector and no wave's.
    pub wave: Option<String>,
    pub rpo_minutes: Option<u32>,
}

/// The plans and waves whose selectors match a server's tags.
pub fn memberships(tags: &Selector, plans: &[StoredPlan]) -> Vec<PlanMembership> {
    let covers = |selector: &Selector| {
        !selector.is_empty() && selector.iter().all(|(k, v)| tags.get(k) == Some(v))
    };
    plans
        .iter()
        .filter(|stored| covers(&stored.plan.selector))
        .map(|stored| {
            let wave = match &stored.plan.waves {
                Some(waves) => waves
                    .iter()
                    .find(|w| covers(&w.selector))
                    .map(|w| w.name.clone()),
                None => tags.get(WAVE_TAG).cloned(),
            };
            PlanMembership {
                plan: stored.name.clone(),
                wave,
                rpo_minutes: stored.plan.rpo_minutes,
            }
        })
        .collect()
}

/// What the trigger learnt about a server whose replication stalled or resumed.
#[derive(Debug, Clone, PartialEq)]
pub struct StallFacts {
    pub change: ReplicationChange,
    pub hostname: Option<String>,
    /// DRS's `dataReplicationInfo.dataReplicationState`, when DescribeSourceServers answered.
    pub replication_state: Option<String>,
    pub lag_seconds: Option<u64>,
    pub memberships: Vec<PlanMembership>,
    pub retry: RetryOutcome,
    /// When set, an escalation follows after this many minutes if still stalled.
    pub escalate_after_minutes: Option<u32>,
    /// DescribeSourceServers failed: the e-mail still goes out, saying so.
    pub lookup_error: Option<String>,
}

/// The configured RetryDataReplication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetryOutcome {
    NotConfigured,
    Requested,
    Failed(String),
}

/// How the RPO stands for one plan.
pub fn rpo_status(lag_seconds: Option<u64>, rpo_minutes: Option<u32>, stalled: bool) -> String {
    match (rpo_minutes, lag_seconds) {
        (None, _) => "no rpo_minutes in the plan".to_owned(),
        (Some(rpo), Some(lag)) if lag >= u64::from(rpo) * 60 => format!(
            "RPO MISSED: lag {} exceeds the {rpo} min RPO",
            human_seconds(lag)
        ),
        (Some(rpo), Some(lag)) if stalled => format!(
            "RPO AT RISK: lag {} of {rpo} min; exceeded in {} unless replication resumes",
            human_seconds(lag),
            human_seconds(u64::from(rpo) * 60 - lag)
        ),
        (Some(rpo), Some(lag)) => format!("within RPO: lag {} of {rpo} min", human_seconds(lag)),
        (Some(rpo), None) if stalled => {
            format!("RPO AT RISK: lag unknown, {rpo} min RPO, replication stalled")
        }
        (Some(rpo), None) => format!("lag unknown ({rpo} min RPO)"),
    }
}

fn human_seconds(seconds: u64) -> String {
    match seconds {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

/// A message for on-call staff, with the attributes subscription filters use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnCallMessage {
    pub subject: String,
    pub body: String,
    /// (`plan`, `mode`, `severity`, `event`), as run notifications carry them.
    pub plan: String,
    pub severity: &'static str,
    pub event: &'static str,
}

impl OnCallMessage {
    pub fn attributes(&self) -> [(&'static str, &str); 4] {
        [
            ("plan", self.plan.as_str()),
            ("mode", "none"),
            ("severity", self.severity),
            ("event", self.event),
        ]
    }
}

fn plans_attribute(memberships: &[PlanMembership]) -> String {
    if memberships.is_empty() {
        "none".to_owned()
    } else {
        memberships
            .iter()
            .map(|m| m.plan.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }
}

fn console_link(region: &str, server_id: &str) -> String {
    let region = if region.is_empty() {
        "us-east-1"
    } else {
        region
    };
    format!(
        "https://{region}.console.aws.amazon.com/drs/home?region={region}#/sourceServers/{server_id}"
    )
}

/// The e-mail for a stall (STALLED), a resumption (NOT_STALLED), or the escalation of
/// a stall that lasted (`escalation`).
pub fn replication_message(facts: &StallFacts, escalation: bool) -> OnCallMessage {
    let change = &facts.change;
    let server = &change.source_server_id;
    let host = facts.hostname.as_deref().unwrap_or("(hostname unknown)");
    let (event, severity, headline) = match (change.stalled, escalation) {
        (true, true) => (
            "REPLICATION_STILL_STALLED",
            "critical",
            format!("replication STILL STALLED on {host} ({server})"),
        ),
        (true, false) => (
            "REPLICATION_STALLED",
            "critical",
            format!("replication STALLED on {host} ({server})"),
        ),
        (false, _) => (
            "REPLICATION_RESUMED",
            "info",
            format!("replication resumed on {host} ({server})"),
        ),
    };
    let plans = plans_attribute(&facts.memberships);
    let subject = crate::notify::subject_line(&format!("[drplan] {headline}"));
    let mut body = String::new();
    let mut line = |text: String| {
        body.push_str(&text);
        body.push('\n');
    };
    line(if change.stalled {
        format!(
            "DRS replication of {host} has STALLED. New writes on this server are not reaching \
             the recovery Region: a recovery now would lose them."
        )
    } else {
        format!("DRS replication of {host} is no longer stalled. No action is needed.")
    });
    line(String::new());
    line("SERVER".into());
    line(format!("  Source server:      {server}"));
    line(format!("  Hostname:           {host}"));
    line(format!(
        "  Replication state:  {}",
        facts.replication_state.as_deref().unwrap_or("unknown")
    ));
    line(format!(
        "  Lag:                {}",
        facts
            .lag_seconds
            .map_or("unknown".to_owned(), human_seconds)
    ));
    line(format!("  Event time:         {}", change.time));
    if let Some(error) = &facts.lookup_error {
        line(format!("  (DescribeSourceServers failed: {error})"));
    }
    line(String::new());
    line("PLANS".into());
    if facts.memberships.is_empty() {
        line("  No stored plan selects this server: it is protected by DRS but no drplan plan recovers it.".into());
    }
    for m in &facts.memberships {
        line(format!(
            "  {} (wave {}): {}",
            m.plan,
            m.wave.as_deref().unwrap_or("none"),
            rpo_status(facts.lag_seconds, m.rpo_minutes, change.stalled)
        ));
    }
    line(String::new());
    if change.stalled {
        match &facts.retry {
            RetryOutcome::NotConfigured => {}
            RetryOutcome::Requested => line(
                "drplan asked DRS to retry data replication once (RetryDataReplication).".into(),
            ),
            RetryOutcome::Failed(error) => {
                line(format!("drplan's RetryDataReplication failed: {error}"))
            }
        }
        if let (Some(minutes), false) = (facts.escalate_after_minutes, escalation) {
            line(format!(
                "If replication is still stalled in {minutes} min, this is sent again as an escalation."
            ));
        }
        line(String::new());
        line("WHAT TO DO NEXT".into());
        line(format!(
            "  1. Look at the server in the DRS console: {}",
            console_link(&change.region, server)
        ));
        line(format!(
            "  2. Check it from the command line: aws drs describe-source-servers --filters sourceServerIDs={server}"
        ));
        line("  3. On the source server, check the AWS Replication Agent is running and can reach the staging area on TCP 1500 (and DRS on 443).".into());
        line(format!(
            "  4. Retry replication: aws drs retry-data-replication --source-server-id {server}"
        ));
        line("  5. Until it recovers, a recovery of the plans above launches from the last snapshot before the stall.".into());
    } else {
        line(format!("Details: {}", console_link(&change.region, server)));
    }
    OnCallMessage {
        subject,
        body,
        plan: plans,
        severity,
        event,
    }
}

/// The e-mail when an alarm would have started a plan and did not.
pub fn suppressed_message(
    alarm: &AlarmStateChange,
    route: &AlarmRoute,
    suppression: &Suppression,
) -> OnCallMessage {
    let plan = &route.plan;
    let why = match suppression {
        Suppression::Running { execution_name } => format!(
            "a run of plan {plan} is already under way ({execution_name}); drplan does not start a second one on top of it."
        ),
        Suppression::TooSoon {
            execution_name,
            started,
            min_gap_minutes,
        } => format!(
            "an alarm already started plan {plan} at {started} ({execution_name}), less than \
             the plan's min_gap_minutes ({min_gap_minutes}) ago."
        ),
    };
    let subject = crate::notify::subject_line(&format!(
        "[drplan] {plan}: alarm {} suppressed, no new {}",
        alarm.alarm_name, route.mode
    ));
    let mut body = format!(
        "Alarm {} ({} alarm) went to {} and is mapped to plan {plan} ({}), but no new {} was \
         started: {why}\n\n",
        alarm.alarm_name,
        alarm.kind.as_str(),
        alarm.state.as_str(),
        route.matched_by,
        route.mode,
    );
    body.push_str(&format!("  Alarm state time: {}\n", alarm.state_timestamp));
    if !alarm.reason.is_empty() {
        body.push_str(&format!("  Reason:           {}\n", alarm.reason));
    }
    let running = match suppression {
        Suppression::Running { execution_name } | Suppression::TooSoon { execution_name, .. } => {
            execution_name
        }
    };
    body.push_str(&format!(
        "\nWHAT TO DO NEXT\n  1. Follow the run already started: drplan status {running}\n  \
         2. If another run is really needed, start it by hand: drplan start {plan} --mode {}\n",
        route.mode
    ));
    OnCallMessage {
        subject,
        body,
        plan: plan.clone(),
        severity: "warning",
        event: "ALARM_SUPPRESSED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{Format, parse_plan};
    use serde_json::json;

    fn alarm_event(name: &str, state: &str, timestamp: &str) -> Value {
        json!({
            "version": "0", "id": "c4c1c1c9", "detail-type": ALARM_STATE_CHANGE,
            "source": "aws.cloudwatch", "account": "123456789012",
            "time": "2026-11-28T03:00:00Z", "region": "us-east-1",
            "resources": [format!("arn:aws:cloudwatch:us-east-1:123456789012:alarm:{name}")],
            "detail": {
                "alarmName": name,
                "state": {"value": state, "reason": "Threshold Crossed", "timestamp": timestamp},
                "previousState": {"value": "OK", "reason": "", "timestamp": "2026-11-28T02:00:00.000+0000"},
                "configuration": {"metrics": [{"id": "m1", "metricStat": {"metric": {"name": "CPUUtilization", "namespace": "AWS/EC2"}, "period": 60, "stat": "Average"}, "returnData": true}]}
            }
        })
    }

    fn alarm(name: &str, timestamp: &str) -> AlarmStateChange {
        match read_event(&alarm_event(name, "ALARM", timestamp)) {
            Ok(TriggerEvent::Alarm(a)) => a,
            other => panic!("not an alarm: {other:?}"),
        }
    }

    fn stored(text: &str) -> StoredPlan {
        let plan = parse_plan(text, Format::Yaml).expect("plan");
        StoredPlan {
            name: plan.name.clone(),
            plan,
        }
    }

    fn shop() -> StoredPlan {
        stored(
            "name: shop\nrto_minutes: 30\nrpo_minutes: 5\nselector: {dr:plan: shop}\n\
             waves:\n  - {name: db, selector: {dr:wave: db}}\n  - {name: app, selector: {dr:wave: app}, depends_on: [db]}\n\
             triggers: {alarms: [\"shop-primary-*\"], mode: recovery, min_gap_minutes: 30}\n",
        )
    }

    #[test]
    fn reads_the_documented_alarm_and_its_kind() {
        let a = alarm("shop-primary-down", "2026-11-28T03:00:00.000+0000");
        assert_eq!(a.state, AlarmState::Alarm);
        assert_eq!(a.previous_state, Some(AlarmState::Ok));
        assert_eq!(a.kind, AlarmKind::Metric);
        assert_eq!(
            a.alarm_arn.as_deref(),
            Some("arn:aws:cloudwatch:us-east-1:123456789012:alarm:shop-primary-down")
        );
        let mut composite = alarm_event("region-down", "ALARM", "2026-11-28T03:00:00.000+0000");
        composite["detail"]["configuration"] = json!({"alarmRule": "ALARM(a) OR ALARM(b)"});
        let Ok(TriggerEvent::Alarm(c)) = read_event(&composite) else {
            panic!("composite")
        };
        assert_eq!(c.kind, AlarmKind::Composite);
        let mut math = alarm_event("error-rate", "ALARM", "2026-11-28T03:00:00.000+0000");
        math["detail"]["configuration"]["metrics"]
            .as_array_mut()
            .expect("metrics")
            .push(json!({"id": "e1", "expression": "m1 * 100", "returnData": true}));
        let Ok(TriggerEvent::Alarm(m)) = read_event(&math) else {
            panic!("math")
        };
        assert_eq!(m.kind, AlarmKind::MetricMath);
    }

    #[test]
    fn bad_events_name_the_field_and_the_problem() {
        let mut no_state = alarm_event("a", "ALARM", "t");
        no_state["detail"]
            .as_object_mut()
            .expect("detail")
            .remove("state");
        assert_eq!(
            read_event(&no_state).unwrap_err().to_string(),
            "`detail.state` is missing"
        );
        let mut state_text = alarm_event("a", "ALARM", "t");
        state_text["detail"]["state"] = json!("ALARM");
        assert_eq!(
            read_event(&state_text).unwrap_err().to_string(),
            "`detail.state` must be an object, found a string"
        );
        let bad_value = alarm_event("a", "ALARMING", "t");
        assert!(
            read_event(&bad_value)
                .unwrap_err()
                .to_string()
                .contains("detail.state.value")
        );
        let unknown = json!({"source": "aws.cloudwatch", "detail-type": "CloudWatch Alarm Configuration Change", "detail": {}});
        assert_eq!(
            read_event(&unknown).unwrap_err().reason(),
            "UnknownDetailType"
        );
        let bad_arn = json!({"source": "aws.drs", "detail-type": REPLICATION_STALLED_CHANGE, "resources": ["not-an-arn"], "detail": {"state": "STALLED"}});
        let error = read_event(&bad_arn).unwrap_err();
        assert!(error.to_string().contains("resources[0]"), "{error}");
        let none = json!({"source": "aws.drs", "detail-type": REPLICATION_STALLED_CHANGE, "resources": [], "detail": {"state": "STALLED"}});
        assert_eq!(read_event(&none).unwrap_err().reason(), "MissingField");
        let mut huge = alarm_event("a", "ALARM", "t");
        huge["detail"]["state"]["reason"] = json!("x".repeat(MAX_EVENT_BYTES));
        assert_eq!(read_event(&huge).unwrap_err().reason(), "TooLarge");
        assert_eq!(read_event(&json!([1])).unwrap_err().reason(), "WrongType");
    }

    #[test]
    fn reads_stall_and_launch_events_with_the_server_from_the_arn() {
        let stall = json!({"id": "e1", "time": "2026-11-28T03:00:00Z", "region": "us-east-1",
            "source": "aws.drs", "detail-type": REPLICATION_STALLED_CHANGE,
            "resources": ["arn:aws:drs:us-east-1:123456789012:source-server/s-1234567890abcdef0"],
            "detail": {"state": "STALLED"}});
        let Ok(TriggerEvent::Replication(change)) = read_event(&stall) else {
            panic!("stall")
        };
        assert_eq!(change.source_server_id, "s-1234567890abcdef0");
        assert!(change.stalled);
        let launch = json!({"source": "aws.drs", "detail-type": LAUNCH_RESULT,
            "resources": ["arn:aws:drs:us-east-1:123456789012:source-server/s-1234567890abcdef0"],
            "detail": {"state": "RECOVERY_LAUNCH_SUCCEEDED", "job-id": "drsjob-1"}});
        let Ok(TriggerEvent::LaunchResult(result)) = read_event(&launch) else {
            panic!("launch")
        };
        assert_eq!(result.job_id.as_deref(), Some("drsjob-1"));
    }

    #[test]
    fn reads_the_documented_execution_status_change() {
        let sample: Value =
            serde_json::from_str(include_str!("../../events/sfn-execution-aborted.json"))
                .expect("sample JSON");
        let Ok(TriggerEvent::ExecutionStatus(change)) = read_event(&sample) else {
            panic!("not an execution status change")
        };
        assert_eq!(change.status, "ABORTED");
        assert!(change.ended_abnormally());
        assert_eq!(change.plan().as_deref(), Some("shop"));
        assert_eq!(change.start_date, Some(1_764_298_800_000));
        assert_eq!(change.error.as_deref(), Some("Stopped"));
        assert!(
            change
                .state_machine_arn
                .ends_with(":stateMachine:drplan-recovery")
        );
        // An inline plan is named by its document; a succeeded run needs nothing.
        let mut inline = sample.clone();
        inline["detail"]["input"] = json!("{\"plan\": {\"name\": \"web\"}, \"mode\": \"drill\"}");
        inline["detail"]["status"] = json!("SUCCEEDED");
        let Ok(TriggerEvent::ExecutionStatus(change)) = read_event(&inline) else {
            panic!("inline")
        };
        assert_eq!(change.plan().as_deref(), Some("web"));
        assert!(!change.ended_abnormally());
        // A start date that is not a number is named.
        let mut bad = sample;
        bad["detail"]["startDate"] = json!("yesterday");
        let error = read_event(&bad).expect_err("bad startDate");
        assert!(error.to_string().contains("detail.startDate"), "{error}");
    }

    #[test]
    fn alarms_route_by_tag_first_then_by_the_plans_triggers() {
        let plans = vec![
            shop(),
            stored("name: pay\nrto_minutes: 10\nselector: {dr:plan: pay}\n"),
        ];
        let routes = route_alarm(&alarm("shop-primary-down", "t"), &plans).expect("route");
        assert_eq!(routes.len(), 1);
        assert_eq!(
            (routes[0].plan.as_str(), routes[0].mode),
            ("shop", Mode::Recovery)
        );
        assert_eq!(routes[0].min_gap_minutes, 30);
        assert!(
            route_alarm(&alarm("shop-other", "t"), &plans)
                .expect("route")
                .is_empty()
        );
        let mut tagged = alarm("payments-latency", "t");
        tagged.tags.insert(PLAN_TAG.into(), "pay".into());
        tagged.tags.insert(MODE_TAG.into(), "drill".into());
        let routes = route_alarm(&tagged, &plans).expect("route");
        assert_eq!(
            (routes[0].plan.as_str(), routes[0].mode),
            ("pay", Mode::Drill)
        );
        assert_eq!(routes[0].min_gap_minutes, DEFAULT_TRIGGER_MIN_GAP_MINUTES);
        tagged.tags.insert(PLAN_TAG.into(), "nope".into());
        assert!(matches!(
            route_alarm(&tagged, &plans),
            Err(RouteError::UnknownPlan { .. })
        ));
    }

    #[test]
    fn one_state_change_is_one_execution_name_and_the_next_is_another() {
        let first = alarm("shop-primary-down", "2026-11-28T03:00:00.000+0000");
        let name = alarm_execution_name("shop", &first);
        assert_eq!(name, alarm_execution_name("shop", &first.clone()));
        assert!(name.starts_with("shop-alarm-20261128T030000Z-"), "{name}");
        let next = alarm("shop-primary-down", "2026-11-28T04:00:00.000+0000");
        assert_ne!(name, alarm_execution_name("shop", &next));
        assert!(is_automatic_run_of(&name, "shop"));
        assert!(!is_automatic_run_of(&name, "sho"));
        assert!(!is_automatic_run_of(
            "shop-drill-20261128T030000Z-001",
            "shop"
        ));
        let long = "p".repeat(64);
        let long_name = alarm_execution_name(&long, &first);
        assert!(long_name.len() <= 80, "{long_name}");
        assert!(is_automatic_run_of(&long_name, &long));
        assert!(
            long_name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
    }

    #[test]
    fn duplicates_are_ignored_and_runs_within_the_gap_are_suppressed() {
        let plans = vec![shop()];
        let a = alarm("shop-primary-down", "2026-11-28T03:00:00.000+0000");
        let route = &route_alarm(&a, &plans).expect("route")[0];
        let now: Timestamp = "2026-11-28T03:01:00Z".parse().expect("time");
        let own = alarm_execution_name("shop", &a);
        assert_eq!(
            decide_alarm_start(route, &a, &[], now),
            AlarmDecision::Start {
                execution_name: own.clone()
            }
        );
        let mine = KnownExecution {
            name: own.clone(),
            plan: Some("shop".into()),
            running: true,
            started: now,
        };
        assert!(matches!(
            decide_alarm_start(route, &a, std::slice::from_ref(&mine), now),
            AlarmDecision::Duplicate { .. }
        ));
        let later = alarm("shop-primary-down", "2026-11-28T03:10:00.000+0000");
        assert!(matches!(
            decide_alarm_start(route, &later, std::slice::from_ref(&mine), now),
            AlarmDecision::Suppressed(Suppression::Running { .. })
        ));
        let finished = KnownExecution {
            running: false,
            ..mine.clone()
        };
        let in_gap: Timestamp = "2026-11-28T03:20:00Z".parse().expect("time");
        assert!(matches!(
            decide_alarm_start(route, &later, std::slice::from_ref(&finished), in_gap),
            AlarmDecision::Suppressed(Suppression::TooSoon { .. })
        ));
        let after_gap: Timestamp = "2026-11-28T03:40:00Z".parse().expect("time");
        assert!(matches!(
            decide_alarm_start(route, &later, &[finished], after_gap),
            AlarmDecision::Start { .. }
        ));
        // A manual run that finished does not hold back an alarm.
        let manual = KnownExecution {
            name: "shop-drill-20261128T030000Z-001".into(),
            plan: Some("shop".into()),
            running: false,
            started: now,
        };
        assert!(matches!(
            decide_alarm_start(route, &later, &[manual], in_gap),
            AlarmDecision::Start { .. }
        ));
    }

    #[test]
    fn stall_messages_say_which_plans_and_whether_the_rpo_is_at_risk() {
        let plans = vec![shop()];
        let tags: Selector = [("dr:plan", "shop"), ("dr:wave", "db")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let member = memberships(&tags, &plans);
        assert_eq!(
            member,
            vec![PlanMembership {
                plan: "shop".into(),
                wave: Some("db".into()),
                rpo_minutes: Some(5)
            }]
        );
        let facts = StallFacts {
            change: ReplicationChange {
                event_id: "e".into(),
                time: "2026-11-28T03:00:00Z".into(),
                region: "us-east-1".into(),
                source_server_id: "s-1234567890abcdef0".into(),
                source_server_arn: "arn".into(),
                stalled: true,
            },
            hostname: Some("db01.example.com".into()),
            replication_state: Some("STALLED".into()),
            lag_seconds: Some(180),
            memberships: member,
            retry: RetryOutcome::Requested,
            escalate_after_minutes: Some(15),
            lookup_error: None,
        };
        let message = replication_message(&facts, false);
        assert!(message.subject.contains("STALLED on db01.example.com"));
        assert!(message.subject.len() < 100);
        for needle in [
            "s-1234567890abcdef0",
            "db01.example.com",
            "3 min",
            "shop (wave db)",
            "RPO AT RISK",
            "retry-data-replication",
            "RetryDataReplication",
            "in 15 min",
        ] {
            assert!(
                message.body.contains(needle),
                "{needle} in\n{}",
                message.body
            );
        }
        assert_eq!(message.severity, "critical");
        let resumed = replication_message(
            &StallFacts {
                change: ReplicationChange {
                    stalled: false,
                    ..facts.change.clone()
                },
                ..facts
            },
            false,
        );
        assert_eq!(resumed.event, "REPLICATION_RESUMED");
        assert_eq!(
            rpo_status(Some(600), Some(5), true),
            "RPO MISSED: lag 10 min exceeds the 5 min RPO"
        );
    }

    #[test]
    fn a_start_claim_holds_while_its_run_runs_or_is_about_to_start() {
        let now: Timestamp = "2026-11-28T03:00:30Z".parse().expect("time");
        let claim = StartClaim {
            execution_name: "shop-alarm-20261128T030000Z-0000beef".into(),
            claimed_at: "2026-11-28T03:00:00Z".parse().expect("time"),
        };
        let ours = "shop-alarm-20261128T030001Z-0000cafe";
        let held = ClaimVerdict::Held {
            execution_name: claim.execution_name.clone(),
        };
        assert_eq!(judge_start_claim(None, ours, &[], now), ClaimVerdict::Take);
        // Claimed 30 s ago, its StartExecution not listed yet: the other alarm is starting.
        assert_eq!(judge_start_claim(Some(&claim), ours, &[], now), held);
        // Our own claim (another delivery of the same change) never blocks us.
        assert_eq!(
            judge_start_claim(Some(&claim), &claim.execution_name, &[], now),
            ClaimVerdict::Take
        );
        let execution = |running| KnownExecution {
            name: claim.execution_name.clone(),
            plan: Some("shop".into()),
            running,
            started: claim.claimed_at,
        };
        let much_later: Timestamp = "2026-11-28T05:00:00Z".parse().expect("time");
        assert_eq!(
            judge_start_claim(Some(&claim), ours, &[execution(true)], much_later),
            held
        );
        assert_eq!(
            judge_start_claim(Some(&claim), ours, &[execution(false)], now),
            ClaimVerdict::Take
        );
        // A claimer that died before StartExecution holds the plan for two minutes only.
        assert_eq!(
            judge_start_claim(Some(&claim), ours, &[], much_later),
            ClaimVerdict::Take
        );
    }
}
