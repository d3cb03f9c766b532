//! EventBridge events that act without a person: a CloudWatch alarm that starts a plan,
//! a DRS replication stall that pages on-call staff, a DRS launch result that wakes a
//! waiting wave. Reading them (every problem names its field), deciding what to do,
//! and what to tell people. No AWS calls here: the trigger function does those.
//!
//! Only trusted events act: those of the stack's own account and Region (`read`), and
//! alarm tags only for plans that opt in to them (`route`); stalls in `stall`.

mod read;
mod route;
mod stall;

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde_json::Value;

pub use read::{EventError, StackOrigin, read_event};
pub use route::{AlarmRoute, AlarmRouting, IgnoredTag, RouteError, StoredPlan, route_alarm};
pub use stall::{
    OnCallMessage, PlanMembership, RetryOutcome, StallFacts, memberships, replication_message,
    rpo_status,
};

/// EventBridge refuses events over 256 KiB; anything bigger did not come from it.
pub const MAX_EVENT_BYTES: usize = 256 * 1024;
pub const ALARM_STATE_CHANGE: &str = "CloudWatch Alarm State Change";
pub const REPLICATION_STALLED_CHANGE: &str = "DRS Source Server Data Replication Stalled Change";
pub const LAUNCH_RESULT: &str = "DRS Source Server Launch Result";
/// Marks executions an alarm started: `PLAN-alarm-YYYYMMDDTHHMMSSZ-HASH`.
const AUTOMATIC_MARK: &str = "-alarm-";

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
        .take(crate::contract::MAX_EXECUTION_NAME - SUFFIX_CHARS)
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
    let mut input = serde_json::json!({
        "plan": route.plan,
        "mode": route.mode.as_str(),
        "trigger": {
            "alarm": alarm.alarm_name,
            "alarm_kind": alarm.kind.as_str(),
            "state_timestamp": alarm.state_timestamp,
            "reason": alarm.reason,
            "matched_by": route.matched_by,
        },
    });
    // Why the run's mode is not the one a tag asked for, on the run's own record.
    if !route.ignored_tags.is_empty() {
        input["trigger"]["ignored_tags"] =
            route.ignored_tags.iter().map(ToString::to_string).collect();
    }
    input
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
pub(crate) mod tests {
    use super::*;
    use crate::parse::{Format, parse_plan};
    use serde_json::json;

    /// The stack the tests' events come from (the samples' account and Region).
    pub(super) fn home() -> StackOrigin {
        StackOrigin {
            account: "123456789012".into(),
            region: "us-east-1".into(),
        }
    }

    pub(super) fn alarm_event(name: &str, state: &str, timestamp: &str) -> Value {
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

    pub(super) fn alarm(name: &str, timestamp: &str) -> AlarmStateChange {
        match read_event(&alarm_event(name, "ALARM", timestamp), &home()) {
            Ok(TriggerEvent::Alarm(a)) => a,
            other => panic!("not an alarm: {other:?}"),
        }
    }

    pub(super) fn stored(text: &str) -> StoredPlan {
        let plan = parse_plan(text, Format::Yaml).expect("plan");
        StoredPlan {
            name: plan.name.clone(),
            plan,
        }
    }

    pub(super) fn shop() -> StoredPlan {
        stored(
            "name: shop\nrto_minutes: 30\nrpo_minutes: 5\nselector: {dr:plan: shop}\n\
             waves:\n  - {name: db, selector: {dr:wave: db}}\n  - {name: app, selector: {dr:wave: app}, depends_on: [db]}\n\
             triggers: {alarms: [\"shop-primary-*\"], mode: recovery, min_gap_minutes: 30}\n",
        )
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
        let route = &route_alarm(&a, &plans).expect("route").routes[0];
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
