//! The events the trigger function acts on, as drplan reads them ([`super::read_event`]).

use std::collections::BTreeMap;

use serde_json::Value;

/// EventBridge refuses events over 256 KiB; anything bigger did not come from it.
pub const MAX_EVENT_BYTES: usize = 256 * 1024;
pub const ALARM_STATE_CHANGE: &str = "CloudWatch Alarm State Change";
pub const REPLICATION_STALLED_CHANGE: &str = "DRS Source Server Data Replication Stalled Change";
pub const LAUNCH_RESULT: &str = "DRS Source Server Launch Result";
pub const FAILBACK_STATE_CHANGE: &str = "DRS Recovery Instance Failback State Change";

/// An event drplan acts on.
#[derive(Debug, Clone, PartialEq)]
pub enum TriggerEvent {
    Alarm(AlarmStateChange),
    Replication(ReplicationChange),
    LaunchResult(LaunchResult),
    FailbackState(FailbackStateChange),
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
            Self::FailbackState(_) => "FailbackStateChange",
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

    pub(super) fn parse(text: &str) -> Option<Self> {
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

/// `DRS Recovery Instance Failback State Change`: `resources` names the recovery
/// instance, `detail.state` its new failback state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailbackStateChange {
    pub event_id: String,
    pub recovery_instance_id: String,
    /// `failback.state` now: FAILBACK_COMPLETED or FAILBACK_ERROR once a failback launch
    /// settled.
    pub state: String,
}

impl FailbackStateChange {
    /// The failback state of a settled failback launch: the instance's server came home.
    pub const COMPLETED: &str = "FAILBACK_COMPLETED";
    /// The failback state of a failback launch that failed.
    pub const ERROR: &str = "FAILBACK_ERROR";

    /// Whether a failback launch settled: a wave waiting for it may go on.
    pub fn launch_settled(&self) -> bool {
        self.state == Self::COMPLETED || self.state == Self::ERROR
    }
}

/// `DRS Source Server Launch Result`.
#[derive(Debug, Clone, PartialEq)]
pub struct LaunchResult {
    pub event_id: String,
    pub source_server_id: String,
    pub state: String,
    pub job_id: Option<String>,
}
