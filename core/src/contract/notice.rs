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
    /// The run holds before a stage of waves until `drplan continue`.
    Paused,
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
            Self::Paused => "PAUSED",
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
    /// Where a PAUSED run holds and who asked.
    #[serde(default)]
    pub pause: Option<PauseWait>,
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

/// A person's request that the run hold before its next stage of waves
/// ([`super::RunRecords::pause_request`]), written by `drplan pause` (or by hand with
/// `aws s3api put-object`). The state machine checks for it before each stage and
/// holds there; the PAUSED notification consumes it, so one request holds once, and
/// answers with it ([`super::step::Delivered::pause_request`]), so that the
/// execution's history says who paused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PauseRequest {
    /// Who asked.
    pub by: String,
    /// Why, if they said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When they asked.
    pub at: jiff::Timestamp,
}

impl PauseRequest {
    /// The request as the state machine read it from the bucket (the object's text);
    /// `None` for text that is no request (a hand-written object of another shape): the
    /// run holds all the same, only who asked is unknown.
    pub fn parse(text: &str) -> Option<Self> {
        serde_json::from_str(text).ok()
    }
}

/// Where a paused run holds, as the state machine hands it to the notify step.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PauseWait {
    /// The stage (layer of the wave DAG, from 0) that has not started.
    pub layer: usize,
    /// Its waves.
    pub waves: Vec<WaveRef>,
    /// The pause request's text, as the notify function read it from the bucket
    /// ([`PauseRequest::parse`]); the state machine sends none.
    pub request: Option<String>,
}

impl PauseWait {
    pub fn request(&self) -> Option<PauseRequest> {
        self.request.as_deref().and_then(PauseRequest::parse)
    }
}
