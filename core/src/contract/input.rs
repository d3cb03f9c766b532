//! What starts a run: the execution input StartExecution receives (from the CLI, the
//! trigger function or a person's own `aws stepfunctions start-execution`), and the rules
//! on what a run may be called and which hook functions it may call.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::contract::keys;
use crate::issue::Issue;
use crate::plan::Mode;
use crate::quota::Quotas;

/// What a recovery starts from: `{"plan": "shop", "mode": "drill"}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExecutionInput {
    pub plan: PlanSource,
    pub mode: Mode,
    pub snapshot: SnapshotChoice,
    pub timing: Timing,
    /// The run's own DRS quotas; absent, the stack's (`DrsQuotas`, else the documented
    /// defaults), which discover puts in the run's context.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quotas: Option<Quotas>,
    /// What started the run when no person did: the alarm, its state time and reason
    /// (set by the trigger function, shown in the report).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trigger: Option<Value>,
    /// A person asked for a second recovery that replaces the live recovery instances
    /// of an earlier one (`drplan start --replace-live-recovery`); refused otherwise.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub replace_live_recovery: bool,
    /// The run this one continues (`drplan resume`): an ended (FAILED, TIMED_OUT or
    /// ABORTED) execution of the same plan and mode, by name or ARN. Its succeeded waves
    /// are adopted, not launched again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resume: Option<String>,
    /// Waves a person leaves out of a resumed run, each with the reason and who decided.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skip_waves: Vec<WaveSkip>,
    /// Only these waves of the plan run (`drplan start --only-waves`); the waves they
    /// depend on must be among them or already recovered and live.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub only_waves: Vec<String>,
}

/// A wave a person leaves out of a resumed run (`drplan resume --skip-wave`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaveSkip {
    pub wave: String,
    pub reason: String,
    /// Who decided (the CLI sends `--by`, else $USER).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

/// A plan by name (the S3 object `plans/NAME.yaml` in the stack's bucket) or inline.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum PlanSource {
    Name(String),
    Inline(Value),
}

/// Which point in time to recover.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SnapshotChoice {
    /// DRS takes a fresh snapshot (the latest data).
    #[default]
    Latest,
    /// The latest recovery snapshot taken at or before this time, for each server
    /// (e.g. from before a ransomware infection).
    Before(Timestamp),
}

/// How long to wait and how often to look. Defaults suit real DRS jobs; local runs
/// shrink them to seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Timing {
    /// First wait before polling a launch job, in seconds.
    pub poll_initial_seconds: u32,
    /// Longest wait between polls.
    pub poll_max_seconds: u32,
    /// Each wait is this much longer than the one before.
    pub poll_backoff_rate: f64,
    /// Wall-clock limit for a wave's launch (jobs until every server settles).
    pub launch_timeout_minutes: u32,
    /// Seconds between health probes of a wave.
    pub health_interval_seconds: u32,
    /// Drill instances are kept this many seconds instead of the plan's keep_minutes
    /// (for rehearsals; absent means the plan decides).
    pub drill_keep_seconds: Option<u32>,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            poll_initial_seconds: 30,
            poll_max_seconds: 300,
            poll_backoff_rate: 1.5,
            launch_timeout_minutes: 90,
            health_interval_seconds: 15,
            drill_keep_seconds: None,
        }
    }
}

impl Timing {
    /// The wait before poll number `attempt` (0-based): backs off from the initial
    /// wait up to the maximum.
    pub fn poll_delay_seconds(&self, attempt: u32) -> u32 {
        let grown = f64::from(self.poll_initial_seconds.max(1))
            * self.poll_backoff_rate.max(1.0).powi(attempt.min(64) as i32);
        grown.min(f64::from(self.poll_max_seconds.max(1))).round() as u32
    }
}

const INPUT_FIELDS: &[&str] = &[
    "plan",
    "mode",
    "snapshot",
    "timing",
    "quotas",
    "trigger",
    "replace_live_recovery",
    "resume",
    "skip_waves",
    "only_waves",
];

impl ExecutionInput {
    /// Reads the execution input, naming every field that is wrong.
    pub fn from_value(input: &Value) -> Result<Self, Vec<Issue>> {
        let mut issues = Vec::new();
        let Value::Object(map) = input else {
            return Err(vec![Issue::new(
                crate::DOCUMENT_PATH,
                "the execution input must be a JSON object like {\"plan\": \"shop\", \"mode\": \"drill\"}",
            )]);
        };
        for key in map.keys().filter(|k| !INPUT_FIELDS.contains(&k.as_str())) {
            let hint = crate::issue::did_you_mean(key, INPUT_FIELDS.iter().copied())
                .map(|s| format!(": did you mean {s:?}?"))
                .unwrap_or_else(|| format!(": expected {}", INPUT_FIELDS.join(", ")));
            issues.push(Issue::new(key.clone(), format!("unknown field{hint}")));
        }
        let plan = match map.get("plan") {
            Some(Value::String(name)) if !name.trim().is_empty() => {
                Some(PlanSource::Name(name.clone()))
            }
            Some(doc @ Value::Object(_)) => Some(PlanSource::Inline(doc.clone())),
            None => {
                issues.push(Issue::new(
                    "plan",
                    "is required: a plan name or an inline plan document",
                ));
                None
            }
            Some(_) => {
                issues.push(Issue::new(
                    "plan",
                    "must be a plan name or an inline plan document",
                ));
                None
            }
        };
        let mode = match map.get("mode").and_then(Value::as_str) {
            Some("drill") => Some(Mode::Drill),
            Some("recovery") => Some(Mode::Recovery),
            Some("failback") => Some(Mode::Failback),
            _ => {
                issues.push(Issue::new(
                    "mode",
                    "must be \"drill\" (isolated, cleaned up), \"recovery\" (real failover) or \"failback\" (home again after a recovery)",
                ));
                None
            }
        };
        let snapshot = match map.get("snapshot") {
            None => Some(SnapshotChoice::Latest),
            Some(Value::String(s)) if s == "latest" => Some(SnapshotChoice::Latest),
            Some(Value::Object(o)) if o.len() == 1 && o.contains_key("before") => {
                match o
                    .get("before")
                    .and_then(Value::as_str)
                    .map(str::parse::<Timestamp>)
                {
                    Some(Ok(t)) => Some(SnapshotChoice::Before(t)),
                    _ => {
                        issues.push(Issue::new(
                            "snapshot.before",
                            "must be an RFC 3339 time such as 2026-11-27T22:00:00Z",
                        ));
                        None
                    }
                }
            }
            Some(_) => {
                issues.push(Issue::new(
                    "snapshot",
                    "must be \"latest\" or {\"before\": \"2026-11-27T22:00:00Z\"}",
                ));
                None
            }
        };
        let timing = read_optional::<Timing>(map.get("timing"), "timing", &mut issues);
        if let Some(timing) = &timing {
            issues.extend(crate::budget::timing_problems(timing));
        }
        let quotas = match map.get("quotas") {
            None => Some(None),
            Some(value) => read_optional::<Quotas>(Some(value), "quotas", &mut issues).map(Some),
        };
        if let Some(Some(q)) = &quotas
            && let Err(e) = q.check()
        {
            issues.push(Issue::new("quotas", e.to_string()));
        }
        let trigger = match map.get("trigger") {
            None | Some(Value::Null) => None,
            Some(origin @ Value::Object(_)) => Some(origin.clone()),
            Some(_) => {
                issues.push(Issue::new(
                    "trigger",
                    "must be an object describing what started the run, e.g. {\"alarm\": \"shop-down\"}",
                ));
                None
            }
        };
        let replace_live_recovery = match map.get("replace_live_recovery") {
            None | Some(Value::Bool(false)) => false,
            Some(Value::Bool(true)) => true,
            Some(_) => {
                issues.push(Issue::new("replace_live_recovery", "must be true or false"));
                false
            }
        };
        if replace_live_recovery && mode == Some(Mode::Drill) {
            issues.push(Issue::new(
                "replace_live_recovery",
                "applies to recoveries only: a drill never replaces a live recovery",
            ));
        }
        let resume = match map.get("resume") {
            None | Some(Value::Null) => None,
            Some(Value::String(execution))
                if execution_name_problem(execution).is_none() || execution.starts_with("arn:") =>
            {
                Some(execution.clone())
            }
            Some(_) => {
                issues.push(Issue::new(
                    "resume",
                    "must name the ended execution to continue, by name or ARN",
                ));
                None
            }
        };
        let skip_waves = read_skips(map.get("skip_waves"), resume.is_some(), &mut issues);
        let only_waves = read_wave_names(map.get("only_waves"), &mut issues);
        if resume.is_some() && !only_waves.is_empty() {
            issues.push(Issue::new(
                "only_waves",
                "does not apply to a resumed run: it runs the waves of the run it continues (leave some out with skip_waves)",
            ));
        }
        if mode == Some(Mode::Failback) {
            // A failback brings home what the live recovery runs on, every server of
            // the plan at once: the recovery-only choices have no meaning in it.
            let refused = [
                (replace_live_recovery, "replace_live_recovery"),
                (
                    matches!(snapshot, Some(SnapshotChoice::Before(_))),
                    "snapshot",
                ),
                (resume.is_some(), "resume"),
                (!only_waves.is_empty(), "only_waves"),
            ];
            for (given, field) in refused {
                if given {
                    issues.push(Issue::new(
                        field,
                        "does not apply to a failback: it brings home every server of the plan's live recovery, with the data the Failback Client replicated",
                    ));
                }
            }
        }
        match (plan, mode, snapshot, timing, quotas) {
            (Some(plan), Some(mode), Some(snapshot), Some(timing), Some(quotas))
                if issues.is_empty() =>
            {
                Ok(Self {
                    plan,
                    mode,
                    snapshot,
                    timing,
                    quotas,
                    trigger,
                    replace_live_recovery,
                    resume,
                    skip_waves,
                    only_waves,
                })
            }
            _ => Err(issues),
        }
    }
}

/// `skip_waves`: each a wave and a reason, only in a resumed run, no wave twice.
fn read_skips(value: Option<&Value>, resumed: bool, issues: &mut Vec<Issue>) -> Vec<WaveSkip> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Vec::new();
    };
    let skips = match Vec::<WaveSkip>::deserialize(value) {
        Ok(skips) => skips,
        Err(e) => {
            issues.push(Issue::new(
                "skip_waves",
                format!("must be a list of {{\"wave\": NAME, \"reason\": TEXT, \"by\": WHO}}: {e}"),
            ));
            return Vec::new();
        }
    };
    if !resumed && !skips.is_empty() {
        issues.push(Issue::new(
            "skip_waves",
            "applies to a resumed run (resume); to leave waves out of a new run, name the ones to run in only_waves",
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    for (i, skip) in skips.iter().enumerate() {
        if skip.wave.trim().is_empty() {
            issues.push(Issue::new(
                format!("skip_waves[{i}].wave"),
                "must name a wave",
            ));
        } else if !seen.insert(skip.wave.as_str()) {
            issues.push(Issue::new(
                format!("skip_waves[{i}].wave"),
                format!("wave {:?} is skipped twice", skip.wave),
            ));
        }
        if skip.reason.trim().is_empty() {
            issues.push(Issue::new(
                format!("skip_waves[{i}].reason"),
                "must say why the wave is left out (it goes into the report)",
            ));
        }
    }
    skips
}

/// `only_waves`: a non-empty list of wave names, each once.
fn read_wave_names(value: Option<&Value>, issues: &mut Vec<Issue>) -> Vec<String> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Vec::new();
    };
    let names = match Vec::<String>::deserialize(value) {
        Ok(names) if !names.is_empty() => names,
        _ => {
            issues.push(Issue::new(
                "only_waves",
                "must be a non-empty list of wave names, e.g. [\"database\", \"app\"]",
            ));
            return Vec::new();
        }
    };
    let mut seen = std::collections::BTreeSet::new();
    for (i, name) in names.iter().enumerate() {
        if name.trim().is_empty() {
            issues.push(Issue::new(format!("only_waves[{i}]"), "must name a wave"));
        } else if !seen.insert(name.as_str()) {
            issues.push(Issue::new(
                format!("only_waves[{i}]"),
                format!("wave {name:?} is named twice"),
            ));
        }
    }
    names
}

fn read_optional<T: Default + for<'de> Deserialize<'de>>(
    value: Option<&Value>,
    field: &str,
    issues: &mut Vec<Issue>,
) -> Option<T> {
    match value {
        None => Some(T::default()),
        Some(v) => match T::deserialize(v) {
            Ok(t) => Some(t),
            Err(e) => {
                issues.push(Issue::new(field, e.to_string()));
                None
            }
        },
    }
}

/// Of a server's recovery snapshots, the one to launch from: the latest taken at or
/// before `before`. `None` means no snapshot is old enough.
pub fn pick_snapshot(snapshots: &[(String, Timestamp)], before: Timestamp) -> Option<&str> {
    snapshots
        .iter()
        .filter(|(_, taken)| *taken <= before)
        .max_by_key(|(_, taken)| *taken)
        .map(|(id, _)| id.as_str())
}

/// Hook functions' names start with this: the state machine's role may invoke drplan's
/// own functions and these, nothing else (least privilege needs a name to scope to).
pub const HOOK_FUNCTION_PREFIX: &str = "drplan-hook-";

/// Why the state machine cannot call this hook, if it cannot.
pub fn hook_problem(arn: &str) -> Option<String> {
    let name = arn.split(':').nth(6).unwrap_or_default();
    (!name.starts_with(HOOK_FUNCTION_PREFIX)).then(|| {
        format!(
            "{arn}: hook functions must be named {HOOK_FUNCTION_PREFIX}* (the state machine's role may invoke only those); rename the function or put an alias function of that name in front of it"
        )
    })
}

/// Step Functions' limit on an execution name.
pub const MAX_EXECUTION_NAME: usize = 80;

/// Why `name` cannot name a run, if it cannot: 1 to 80 characters, letters, digits,
/// `-`, `_` and `.` (Step Functions refuses whitespace, brackets, wildcards and most
/// punctuation, and its CloudWatch logs want ASCII; drplan puts the name in bucket keys
/// and tags too).
pub fn execution_name_problem(name: &str) -> Option<String> {
    if name.is_empty() || name.chars().count() > MAX_EXECUTION_NAME {
        return Some(format!(
            "{name:?} has {} characters; an execution name has 1 to {MAX_EXECUTION_NAME}",
            name.chars().count()
        ));
    }
    name.chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        .map(|c| {
            format!(
                "{name:?} contains {c:?}; an execution name may use letters, digits, '-', '_' and '.' only"
            )
        })
}

/// The Region and account of a Step Functions execution ARN
/// (`arn:PARTITION:states:REGION:ACCOUNT:execution:MACHINE:NAME`): the stack's own.
pub fn stack_of(execution_arn: &str) -> Option<(&str, &str)> {
    let mut parts = execution_arn.split(':');
    let (Some("arn"), Some(_), Some("states"), Some(region), Some(account)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    (!region.is_empty() && !account.is_empty()).then_some((region, account))
}

/// Hooks of `plan` outside the stack's `region` and `account`: the state machine's role
/// may invoke only its own account's functions there, and a hook elsewhere would be
/// someone else's code run with the recovery's data.
pub fn hooks_outside(plan: &crate::plan::Plan, region: &str, account: &str) -> Vec<Issue> {
    let mut issues = Vec::new();
    for (i, wave) in plan.waves.iter().flatten().enumerate() {
        for (phase, hooks) in [("pre", &wave.hooks.pre), ("post", &wave.hooks.post)] {
            for (k, hook) in hooks.iter().enumerate() {
                let mut parts = hook.lambda.split(':').skip(3);
                let (hook_region, hook_account) = (parts.next(), parts.next());
                if hook_region != Some(region) || hook_account != Some(account) {
                    issues.push(Issue::new(
                        format!("waves[{i}].hooks.{phase}[{k}].lambda"),
                        format!(
                            "{} is in account {} and Region {}; hooks must be functions of this stack's account {account} in {region}",
                            hook.lambda,
                            hook_account.unwrap_or("?"),
                            hook_region.unwrap_or("?")
                        ),
                    ));
                }
            }
        }
    }
    issues
}

#[cfg(test)]
mod tests;

/// What the readiness function is asked to do, by whoever invokes it:
/// - `{}` (its own schedule): evaluate every stored plan, bring every drill schedule in
///   line with the stored plans;
/// - `{"plan": "NAME"}`: evaluate one plan now;
/// - an S3 `Object Created` / `Object Deleted` event (EventBridge) for `plans/NAME.yaml`:
///   bring that plan's drill schedule in line, evaluate the plan if it is still there;
/// - `{"scheduled_drill": "NAME", "scheduled_time": "..."}` (a drill schedule firing):
///   start a drill of the plan if it is ready for one, else say why by e-mail.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "Value")]
pub enum ReadinessRequest {
    EveryPlan,
    Plan(String),
    PlanChanged {
        bucket: String,
        plan: String,
    },
    ScheduledDrill {
        plan: String,
        scheduled_for: Timestamp,
    },
}

impl TryFrom<Value> for ReadinessRequest {
    type Error = String;

    fn try_from(value: Value) -> Result<Self, String> {
        let Value::Object(map) = &value else {
            return Err(format!("the input must be a JSON object, not {value}"));
        };
        if map.get("source").and_then(Value::as_str) == Some("aws.s3") {
            let kind = map.get("detail-type").and_then(Value::as_str).unwrap_or("");
            if kind != "Object Created" && kind != "Object Deleted" {
                return Err(format!(
                    "detail-type: an S3 event must be Object Created or Object Deleted, not {kind:?}"
                ));
            }
            let text = |pointer: &str| {
                value
                    .pointer(pointer)
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .ok_or_else(|| format!("{pointer}: missing from the S3 event"))
            };
            let bucket = text("/detail/bucket/name")?;
            let key = text("/detail/object/key")?;
            let plan = keys::plan_name_of(&key)
                .ok_or_else(|| {
                    format!("detail.object.key: {key:?} is not a stored plan (plans/NAME.yaml)")
                })?
                .to_owned();
            return Ok(Self::PlanChanged { bucket, plan });
        }
        let known = ["plan", "scheduled_drill", "scheduled_time"];
        if let Some(unknown) = map.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(format!(
                "{unknown}: not a field of the readiness function's input (plan, or scheduled_drill and scheduled_time)"
            ));
        }
        let text = |field: &str| match map.get(field) {
            None => Ok(None),
            Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
            Some(other) => Err(format!("{field}: must be a non-empty string, not {other}")),
        };
        match (
            text("plan")?,
            text("scheduled_drill")?,
            text("scheduled_time")?,
        ) {
            (None, None, None) => Ok(Self::EveryPlan),
            (Some(plan), None, None) => Ok(Self::Plan(plan)),
            (None, Some(plan), Some(time)) => {
                let scheduled_for = time.parse::<Timestamp>().map_err(|e| {
                    format!("scheduled_time: {time:?} is not a time (Scheduler sends one like 2027-01-10T03:00:00Z): {e}")
                })?;
                Ok(Self::ScheduledDrill {
                    plan,
                    scheduled_for,
                })
            }
            (None, Some(_), None) => {
                Err("scheduled_time: a scheduled drill needs the time it was scheduled for".into())
            }
            (None, None, Some(_)) => {
                Err("scheduled_drill: scheduled_time comes with the plan it fired for".into())
            }
            (Some(_), _, _) => {
                Err("plan: give either plan, or scheduled_drill and scheduled_time".into())
            }
        }
    }
}

#[cfg(test)]
mod readiness_request_tests {
    use super::*;

    fn read(value: Value) -> Result<ReadinessRequest, String> {
        ReadinessRequest::try_from(value)
    }

    #[test]
    fn each_caller_is_understood() {
        assert_eq!(read(serde_json::json!({})), Ok(ReadinessRequest::EveryPlan));
        assert_eq!(
            read(serde_json::json!({"plan": "shop"})),
            Ok(ReadinessRequest::Plan("shop".into()))
        );
        assert_eq!(
            read(
                serde_json::json!({"scheduled_drill": "shop", "scheduled_time": "2027-01-10T03:00:00Z"})
            ),
            Ok(ReadinessRequest::ScheduledDrill {
                plan: "shop".into(),
                scheduled_for: "2027-01-10T03:00:00Z".parse().unwrap()
            })
        );
        let event = serde_json::json!({
            "version": "0", "source": "aws.s3", "detail-type": "Object Deleted",
            "detail": {"bucket": {"name": "b"}, "object": {"key": "plans/shop.yaml"}}
        });
        assert_eq!(
            read(event),
            Ok(ReadinessRequest::PlanChanged {
                bucket: "b".into(),
                plan: "shop".into()
            })
        );
    }

    #[test]
    fn a_bad_input_names_its_field() {
        let said = |v: Value| read(v).unwrap_err();
        assert!(said(serde_json::json!({"plans": "shop"})).starts_with("plans:"));
        assert!(
            said(serde_json::json!({"scheduled_drill": "shop"})).starts_with("scheduled_time:")
        );
        assert!(said(serde_json::json!({"scheduled_drill": "shop", "scheduled_time": "<aws.scheduler.scheduled-time>"})).starts_with("scheduled_time:"));
        assert!(said(serde_json::json!({"plan": 3})).starts_with("plan:"));
        let other = serde_json::json!({"source": "aws.s3", "detail-type": "Object Created",
            "detail": {"bucket": {"name": "b"}, "object": {"key": "reports/x.json"}}});
        assert!(said(other).starts_with("detail.object.key:"));
    }
}
