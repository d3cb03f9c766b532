//! The payloads that pass between the state machine's steps: the run record every step
//! receives, the waves as the state machine carries them, and what each polling step
//! returns. IDs and counts, never server lists, so a 4,000-server plan fits Step
//! Functions' 256 KiB payload limit; server lists live in the run's records
//! ([`super::keys`]).

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::input::{SnapshotChoice, Timing};
use super::tags;
use crate::issue::Issue;
use crate::plan::Mode;
use crate::quota::Quotas;

/// The run record every step receives: who this execution is and how it runs. Small
/// by design; server lists live in the run's S3 prefix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunContext {
    /// The Step Functions execution ARN.
    pub execution_id: String,
    pub execution_name: String,
    pub plan: String,
    pub mode: Mode,
    pub started_at: Timestamp,
    pub snapshot: SnapshotChoice,
    pub timing: Timing,
    pub quotas: Quotas,
    /// When the run must be over: its start plus the worst case of its plan and timing
    /// ([`crate::budget::RunBudget::seconds`]). No wave's launch or health gate waits
    /// past it. Absent in runs started before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<Timestamp>,
    /// The run this one continues (`drplan resume`), when it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resumed: Option<Resumption>,
    /// A failback of EC2 sources: their origin Region. The failback is a recovery there
    /// of the source servers that reversed replication made, so the wave steps' DRS and
    /// EC2 calls go to that Region; absent for every other run (the functions' own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin_region: Option<String>,
}

/// What a resumed run continues: the ended run, and when the recovery first started
/// (the RTO is measured from there, over every run of the chain).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resumption {
    /// The execution name of the run continued.
    pub execution_name: String,
    /// When the first run of the chain started.
    pub first_started_at: Timestamp,
}

impl RunContext {
    /// Whether the run's waves launch EC2 instances (a recovery, a drill, or a failback
    /// to EC2 in the origin Region), not bring servers home to machines outside AWS.
    pub fn launches_in_aws(&self) -> bool {
        self.mode.launches_in_aws() || self.origin_region.is_some()
    }

    /// `deadline`, or the run's own deadline when that comes first.
    pub fn within_run(&self, deadline: Timestamp) -> Timestamp {
        self.deadline.map_or(deadline, |run| run.min(deadline))
    }

    /// The tags drplan puts on everything it starts, so a retried step recognises
    /// its own work and a person can find what a run launched.
    pub fn tags(&self) -> Vec<(String, String)> {
        vec![
            (tags::PLAN.into(), self.plan.clone()),
            (tags::EXECUTION.into(), self.execution_name.clone()),
            (tags::MODE.into(), self.mode.as_str().into()),
        ]
    }
}

/// A wave as the state machine carries it: enough to name it and size it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaveRef {
    /// Index into the run's resolved plan.
    pub index: usize,
    pub name: String,
    pub servers: usize,
    /// The wave's hook functions (ARNs), run in order before launch and after the
    /// health gate.
    #[serde(default, skip_serializing_if = "WaveHooks::is_empty")]
    pub hooks: WaveHooks,
    /// A wave that succeeded in the run this one resumes: nothing of it launches again
    /// and its hooks do not run again; its instances pass its health gate again before
    /// any other wave starts.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub adopted: bool,
}

/// A wave that does not run: a person skipped it, or it needs one that was skipped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedWave {
    pub wave: String,
    pub reason: String,
    /// Who decided; absent for a wave left out because it needs a skipped one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// The skipped wave this one needs, when it was not skipped itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub needs: Option<String>,
}

/// The Lambda functions a wave calls before it launches and after it is healthy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaveHooks {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pre: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub post: Vec<String>,
}

impl WaveHooks {
    pub fn is_empty(&self) -> bool {
        self.pre.is_empty() && self.post.is_empty()
    }
}

/// What discovery hands to the rest of the state machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Discovery {
    pub run: RunContext,
    /// Waves by layer: each layer's waves run in parallel, layers one after another.
    pub layers: Vec<Vec<WaveRef>>,
    pub requires_approval: bool,
    /// How long a person has to approve, in seconds (the approval task's timeout).
    pub approval_timeout_seconds: u32,
    /// How long drill instances are kept before cleanup (0 for recoveries).
    pub keep_seconds: u32,
    pub server_count: usize,
    /// The first readiness warnings (e.g. lag over the RPO), for notifications; at most
    /// [`crate::readiness::ISSUES_IN_STATE`], however many servers have one (all of them
    /// are in the run's readiness record ([`super::RunRecords::readiness`]) and its report).
    pub warnings: Vec<Issue>,
    /// How many readiness warnings there are in all.
    #[serde(default)]
    pub warning_count: usize,
    /// Drill instances to terminate before anything launches (left by an earlier
    /// drill, or by the drill this recovery stops): the state machine clears them
    /// between approval and the first wave. In a failback to the origin Region: the
    /// reversed replication to start and wait for, at the same point.
    #[serde(default)]
    pub clear_first: bool,
    /// The running drill of the plan that this recovery stops (after approval).
    #[serde(default)]
    pub stop_drill: Option<crate::safety::RunLock>,
    /// Waves of the plan that do not run: skipped by a person, or needing a skipped one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<SkippedWave>,
    /// Waves of the plan outside `only_waves` (not part of this run).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub left_out: Vec<String>,
}

/// Where a wave's launch stands between polls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LaunchState {
    InProgress,
    Succeeded,
    Failed,
}

/// The polling state of a wave's launch, returned by launch-wave and wait-wave.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LaunchPoll {
    pub state: LaunchState,
    /// Polls so far; drives the backoff.
    pub attempt: u32,
    /// Seconds the state machine waits before the next poll.
    pub wait_seconds: u32,
    /// When the wave's launch gives up.
    pub deadline: Timestamp,
    pub launched: usize,
    pub failed: usize,
    pub pending: usize,
    /// Why the wave failed, for the execution's error cause.
    pub reason: Option<String>,
}

/// The polling state of a wave's health gate, returned by health-check. Its `state`
/// has the launch poll's three values, so the state machine reads both alike.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthPoll {
    pub state: LaunchState,
    /// Polls so far.
    pub attempt: u32,
    /// Seconds the state machine waits before the next poll.
    pub wait_seconds: u32,
    /// When the gate gives up: set by the first poll from the wave's health timeout.
    pub deadline: Timestamp,
    pub healthy: usize,
    pub unhealthy: usize,
    pub pending: usize,
    /// Why the wave failed, for the execution's error cause.
    pub reason: Option<String>,
}

/// The input of wave steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WaveStep {
    pub run: RunContext,
    pub wave: WaveRef,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll: Option<LaunchPoll>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthPoll>,
}

/// Step Functions' error object from a Catch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepError {
    #[serde(rename = "Error", default)]
    pub error: Option<String>,
    #[serde(rename = "Cause", default)]
    pub cause: Option<String>,
}

/// Where the report function wrote the run's report, and its verdict.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReportLocation {
    pub status: Option<String>,
    pub json_key: Option<String>,
    pub markdown_key: Option<String>,
    pub rto_met: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CleanupSummary {
    pub terminated: usize,
}

/// What the state machine sends a plan's hook function (a Lambda function named
/// `drplan-hook-*`) before a wave launches (`pre`) and after it is healthy (`post`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookEvent {
    /// Always `drplan`.
    pub source: String,
    /// `pre` or `post`.
    pub phase: String,
    pub plan: String,
    pub mode: Mode,
    /// The Step Functions execution ARN.
    pub execution_id: String,
    pub execution_name: String,
    pub wave: String,
}

/// What the report step receives (the state machine's Parameters), and what the
/// run-ended handler builds for runs that ended without their report step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportInput {
    pub execution_id: String,
    pub execution_name: String,
    pub started_at: String,
    /// Absent when discovery failed.
    pub run: Option<RunContext>,
    #[serde(default)]
    pub layers: Vec<Vec<WaveRef>>,
    /// The execution input, when discovery failed (to name the plan).
    pub input: Option<serde_json::Value>,
    pub error: Option<StepError>,
    pub cleanup: Option<CleanupSummary>,
}

// ---- the steps' own inputs and outputs ------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CleanupState {
    Start,
    InProgress,
    Done,
    /// Clearing the plan's servers before the first wave; answered until DONE.
    Clear,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cleanup {
    pub state: CleanupState,
    #[serde(default)]
    pub jobs: Vec<String>,
    #[serde(default)]
    pub terminated: usize,
    #[serde(default)]
    pub attempt: u32,
    #[serde(default)]
    pub wait_seconds: u32,
    /// While clearing: the drill this recovery stops (always present, null when none:
    /// the state machine selects it).
    #[serde(default)]
    pub stop_drill: Option<crate::safety::RunLock>,
}

/// The cleanup step's input and output.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CleanupStep {
    pub run: RunContext,
    pub cleanup: Cleanup,
}

/// Where the dns-cutover step stands: START (submit the change), PENDING (follow it),
/// INSYNC (done), SKIPPED (a plan without DNS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DnsState {
    Start,
    Pending,
    Insync,
    Skipped,
}

/// The dns-cutover step's state between the state machine's calls.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DnsPoll {
    pub state: DnsState,
    #[serde(default)]
    pub change_id: Option<String>,
    #[serde(default)]
    pub changed: usize,
    #[serde(default)]
    pub attempt: u32,
    #[serde(default)]
    pub wait_seconds: u32,
}

/// The dns-cutover step's input and output.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DnsStep {
    pub run: RunContext,
    pub layers: Vec<Vec<WaveRef>>,
    pub dns: DnsPoll,
}

/// What the state machine passes: the execution input and the context object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiscoverInput {
    pub input: serde_json::Value,
    pub execution_id: String,
    pub execution_name: String,
    pub started_at: String,
}

/// What wait-wave receives: a poll (the wave's step), or a park between polls: the
/// state machine's `waitForTaskToken` task hands over the token the trigger function
/// will send back when the wave's launch-result events are in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum WaitWaveInput {
    Park { park: WaveStep, task_token: String },
    Poll(WaveStep),
}

/// What tag-instances did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tagged {
    pub wave: String,
    pub tagged: usize,
    /// Tagged by an earlier attempt of this step.
    pub already_tagged: usize,
    /// Named by drplan after their source hostname: DRS left them without a `Name`.
    #[serde(default)]
    pub named: usize,
}

/// What was published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivered {
    pub message_id: String,
    pub subject: String,
    /// For PAUSED: the request it consumed (absent when there was none or it was not
    /// drplan's JSON). The hold's TaskSubmitted event carries it, for `drplan status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause_request: Option<super::notice::PauseRequest>,
}
