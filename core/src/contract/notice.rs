//! What the state machine hands to the notify step: the run event, and what the earlier
//! steps found (discovery, the approval wait, the DNS cutover). The report and cleanup
//! results it also carries are in [`super::step`].

use std::fmt;

use serde::{Deserialize, Serialize};

use super::step::{CleanupSummary, ReportLocation, StepError};
use super::{LaunchPoll, RunContext, WaveRef};
use crate::issue::Issue;

/// What happened in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RunEvent {
    Started,
    ApprovalNeeded,
    WaveStarted,
    WaveSucceeded,
    WaveFailed,
    DnsCutOver,
    Succeeded,
    Failed,
    DrillCleanedUp,
}

impl RunEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Started => "STARTED",
            Self::ApprovalNeeded => "APPROVAL_NEEDED",
            Self::WaveStarted => "WAVE_STARTED",
            Self::WaveSucceeded => "WAVE_SUCCEEDED",
            Self::WaveFailed => "WAVE_FAILED",
            Self::DnsCutOver => "DNS_CUT_OVER",
            Self::Succeeded => "SUCCEEDED",
            Self::Failed => "FAILED",
            Self::DrillCleanedUp => "DRILL_CLEANED_UP",
        }
    }

    pub fn is_wave_event(self) -> bool {
        matches!(
            self,
            Self::WaveStarted | Self::WaveSucceeded | Self::WaveFailed
        )
    }
}

impl fmt::Display for RunEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The notify function's input, as the state machine sends it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotificationRequest {
    pub event: RunEvent,
    /// The Step Functions execution ARN.
    pub execution_id: String,
    pub execution_name: String,
    /// Absent when the run failed before discovery finished.
    #[serde(default)]
    pub run: Option<RunContext>,
    /// The execution input, to name the plan when `run` is absent.
    #[serde(default)]
    pub input: Option<serde_json::Value>,
    #[serde(default)]
    pub discovery: Option<DiscoverySummary>,
    #[serde(default)]
    pub wave: Option<WaveRef>,
    #[serde(default)]
    pub poll: Option<LaunchPoll>,
    #[serde(default)]
    pub error: Option<StepError>,
    #[serde(default)]
    pub report: Option<ReportLocation>,
    #[serde(default)]
    pub cleanup: Option<CleanupSummary>,
    #[serde(default)]
    pub approval: Option<ApprovalWait>,
    #[serde(default)]
    pub task_token: Option<String>,
    #[serde(default)]
    pub dns: Option<DnsCutoverSummary>,
}

/// What discovery found (a subset of its output; the rest is ignored).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DiscoverySummary {
    pub server_count: usize,
    pub layers: Vec<Vec<WaveRef>>,
    /// The first warnings (at most [`crate::readiness::ISSUES_IN_STATE`]).
    pub warnings: Vec<Issue>,
    /// How many warnings there are in all.
    pub warning_count: usize,
    /// The running drill this recovery stops before its first wave.
    pub stop_drill: Option<crate::safety::RunLock>,
    /// Drill instances are terminated before the first wave.
    pub clear_first: bool,
}

/// What a DNS cutover changed, when the state machine passes it along.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DnsCutoverSummary {
    pub change_id: Option<String>,
    pub records: Vec<DnsRecordChange>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DnsRecordChange {
    pub name: String,
    #[serde(rename = "type")]
    pub record_type: Option<String>,
    pub values: Vec<String>,
    pub previous_values: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ApprovalWait {
    pub timeout_minutes: Option<u32>,
}
