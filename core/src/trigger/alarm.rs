//! An alarm that starts a plan: the run's name, whether to start it (one run at a time,
//! a minimum gap between automatic runs, a start claim against a second alarm at the
//! same moment), its execution input, and what to tell people when it does not start.

use jiff::Timestamp;
use serde_json::Value;

use super::{AlarmRoute, AlarmStateChange, OnCallMessage};

/// Marks executions an alarm started: `PLAN-alarm-YYYYMMDDTHHMMSSZ-HASH`.
const AUTOMATIC_MARK: &str = "-alarm-";

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
