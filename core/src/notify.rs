//! On-call notifications: one message per run event (started, approval needed, wave
//! started / succeeded / failed, DNS cut over, succeeded, failed, drill cleaned up),
//! composed for a person woken at 3 a.m. and filtered by SNS message attributes.
//!
//! Everything here is pure: the notify function reads the run's records from the
//! bucket, hands them in, and publishes what comes out.

use std::fmt::{self, Write};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::contract::{LaunchPoll, LaunchState, RunContext, WaveRef};
use crate::issue::Issue;
use crate::launch::{ServerState, WaveProgress};
use crate::plan::Mode;
use crate::report::Report;

/// SNS refuses subjects of 100 characters or more.
pub const SUBJECT_MAX_CHARS: usize = 99;
/// Failing servers listed by name in one message; the rest are counted. A mail that
/// lists 4,000 servers is read by nobody (and would near SNS's 256 KiB limit).
pub const MAX_LISTED_SERVERS: usize = 20;
/// Readiness warnings listed in a STARTED message; the rest are counted.
const MAX_LISTED_WARNINGS: usize = crate::readiness::ISSUES_IN_STATE;
/// Error texts are cut here: a stack trace in a cause must not bury the message.
const MAX_ERROR_CHARS: usize = 2000;

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

    fn is_wave_event(self) -> bool {
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

/// How urgently a person should look, for subscription filter policies (page on
/// `critical`, mail the rest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Progress; nothing to do.
    Info,
    /// Someone must act (approve) or look (an RTO missed, optional servers failed).
    Warning,
    /// A wave or the run failed.
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
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

/// Step Functions' error object from a Catch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepError {
    #[serde(rename = "Error", default)]
    pub error: Option<String>,
    #[serde(rename = "Cause", default)]
    pub cause: Option<String>,
}

impl StepError {
    /// The error's name and message. A Lambda task's Cause is itself JSON
    /// (`{"errorType": ..., "errorMessage": ...}`): the person wants the message, not
    /// the envelope.
    pub fn describe(&self) -> (String, String) {
        let mut name = self
            .error
            .clone()
            .filter(|e| !e.trim().is_empty())
            .unwrap_or_else(|| "unknown error".to_owned());
        let cause = self.cause.as_deref().unwrap_or("").trim();
        let lambda_error = serde_json::from_str::<serde_json::Value>(cause)
            .ok()
            .filter(serde_json::Value::is_object);
        let message = match lambda_error {
            Some(envelope) => {
                if let Some(error_type) = envelope.get("errorType").and_then(|t| t.as_str())
                    && !error_type.is_empty()
                    && name != error_type
                    && name.starts_with("States.")
                {
                    // `States.TaskFailed` says less than the function's own error type.
                    name = error_type.to_owned();
                }
                match envelope.get("errorMessage").and_then(|m| m.as_str()) {
                    Some(message) => message.to_owned(),
                    None => cause.to_owned(),
                }
            }
            None => cause.to_owned(),
        };
        (name, truncate_chars(&message, MAX_ERROR_CHARS))
    }
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

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ApprovalWait {
    pub timeout_minutes: Option<u32>,
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

/// A wave's launch outcome from the bucket (`launch.json`), as far as a message needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaveLaunchOutcome {
    pub progress: WaveProgress,
    pub job_ids: Vec<String>,
}

/// The run's records the handler read from the bucket for this event.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunRecords {
    pub report: Option<Report>,
    pub wave_launch: Option<WaveLaunchOutcome>,
}

impl NotificationRequest {
    /// The report to read from the bucket: the final notifications summarise it.
    pub fn report_key(&self) -> Option<&str> {
        match self.event {
            RunEvent::Succeeded | RunEvent::Failed => self
                .report
                .as_ref()
                .and_then(|r| r.json_key.as_deref())
                .filter(|k| !k.is_empty()),
            _ => None,
        }
    }

    /// Whether the wave's launch record is worth reading: it names the servers that
    /// failed (critical ones for WAVE_FAILED, optional ones for a WAVE_SUCCEEDED).
    pub fn needs_wave_launch(&self) -> bool {
        self.run.is_some()
            && self.wave.is_some()
            && match self.event {
                RunEvent::WaveFailed => true,
                RunEvent::WaveSucceeded => self.poll.as_ref().is_some_and(|p| p.failed > 0),
                _ => false,
            }
    }

    fn plan_name(&self, records: &RunRecords) -> String {
        if let Some(run) = &self.run {
            return run.plan.clone();
        }
        if let Some(report) = &records.report {
            return report.plan.clone();
        }
        let from_input = match self.input.as_ref().and_then(|i| i.get("plan")) {
            Some(serde_json::Value::String(name)) => Some(name.clone()),
            Some(inline) => inline
                .get("name")
                .and_then(|n| n.as_str())
                .map(str::to_owned),
            None => None,
        };
        from_input
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| "unknown".to_owned())
    }

    fn mode(&self, records: &RunRecords) -> Option<Mode> {
        self.run
            .as_ref()
            .map(|r| r.mode)
            .or_else(|| records.report.as_ref().and_then(|r| r.mode))
            .or_else(|| {
                match self
                    .input
                    .as_ref()
                    .and_then(|i| i.get("mode"))
                    .and_then(|m| m.as_str())
                {
                    Some("drill") => Some(Mode::Drill),
                    Some("recovery") => Some(Mode::Recovery),
                    _ => None,
                }
            })
    }
}

/// A message ready to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// Under [`SUBJECT_MAX_CHARS`], one line.
    pub subject: String,
    pub body: String,
    pub attributes: NotificationAttributes,
}

/// The SNS message attributes subscription filter policies match on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationAttributes {
    pub plan: String,
    /// `drill`, `recovery`, or `unknown` when the run failed before its mode was known.
    pub mode: String,
    pub severity: Severity,
    pub event: RunEvent,
}

impl NotificationAttributes {
    /// (name, value) pairs; every value is a non-empty String, as SNS requires.
    pub fn pairs(&self) -> [(&'static str, &str); 4] {
        [
            ("plan", self.plan.as_str()),
            ("mode", self.mode.as_str()),
            ("severity", self.severity.as_str()),
            ("event", self.event.as_str()),
        ]
    }
}

/// The input does not carry what its event needs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyError {
    #[error("a {event} notification needs `{field}` in its input")]
    MissingField {
        event: RunEvent,
        field: &'static str,
    },
}

/// Everything a message needs, gathered once.
struct Facts<'a> {
    request: &'a NotificationRequest,
    records: &'a RunRecords,
    now: Timestamp,
    plan: String,
    mode: Option<Mode>,
    region: Option<&'a str>,
}

/// Composes the message for `request`, with the records read from the bucket.
pub fn compose(
    request: &NotificationRequest,
    records: &RunRecords,
    now: Timestamp,
) -> Result<Notification, NotifyError> {
    let missing = |field| NotifyError::MissingField {
        event: request.event,
        field,
    };
    if request.event.is_wave_event() && request.wave.is_none() {
        return Err(missing("wave"));
    }
    if request.event == RunEvent::ApprovalNeeded
        && request
            .task_token
            .as_deref()
            .is_none_or(|t| t.trim().is_empty())
    {
        return Err(missing("task_token"));
    }
    let facts = Facts {
        request,
        records,
        now,
        plan: request.plan_name(records),
        mode: request.mode(records),
        region: execution_region(&request.execution_id),
    };
    let (headline, severity) = headline(&facts);
    let body = body(&facts, severity);
    let mode_label = facts
        .mode
        .map(|m| format!("{} ", m.as_str().to_uppercase()))
        .unwrap_or_default();
    let subject = subject_line(&format!("[drplan] {mode_label}{}: {headline}", facts.plan));
    Ok(Notification {
        subject,
        body,
        attributes: NotificationAttributes {
            plan: facts.plan.clone(),
            mode: facts
                .mode
                .map_or_else(|| "unknown".to_owned(), |m| m.as_str().to_owned()),
            severity,
            event: request.event,
        },
    })
}

/// The subject's event part and the severity.
fn headline(facts: &Facts) -> (String, Severity) {
    let request = facts.request;
    let wave_name = request.wave.as_ref().map_or("?", |w| w.name.as_str());
    match request.event {
        RunEvent::Started => match &request.discovery {
            Some(d) => (
                format!(
                    "started ({} servers in {} waves)",
                    d.server_count,
                    d.layers.iter().map(Vec::len).sum::<usize>()
                ),
                Severity::Info,
            ),
            None => ("started".to_owned(), Severity::Info),
        },
        RunEvent::ApprovalNeeded => {
            let what = match &request.discovery {
                Some(d) => format!("approval needed to launch {} servers", d.server_count),
                None => "approval needed to launch".to_owned(),
            };
            (what, Severity::Warning)
        }
        RunEvent::WaveStarted => {
            let servers = request.wave.as_ref().map_or(0, |w| w.servers);
            (
                format!("wave {wave_name} started ({servers} servers)"),
                Severity::Info,
            )
        }
        RunEvent::WaveSucceeded => {
            let servers = request.wave.as_ref().map_or(0, |w| w.servers);
            match &request.poll {
                Some(poll) if poll.failed > 0 => (
                    format!(
                        "wave {wave_name} succeeded ({}/{servers} launched, {} optional failed)",
                        poll.launched, poll.failed
                    ),
                    Severity::Warning,
                ),
                Some(poll) => (
                    format!(
                        "wave {wave_name} succeeded ({}/{servers} launched)",
                        poll.launched
                    ),
                    Severity::Info,
                ),
                None => (format!("wave {wave_name} succeeded"), Severity::Info),
            }
        }
        RunEvent::WaveFailed => {
            let failed = failed_in_wave(facts);
            let count = match failed {
                Some(1) => " (1 server)".to_owned(),
                Some(n) if n > 0 => format!(" ({n} servers)"),
                _ => String::new(),
            };
            (
                format!("wave {wave_name} FAILED{count}"),
                Severity::Critical,
            )
        }
        RunEvent::DnsCutOver => {
            let records = request.dns.as_ref().map_or(0, |d| d.records.len());
            let what = match records {
                0 => "DNS cut over".to_owned(),
                1 => "DNS cut over (1 record)".to_owned(),
                n => format!("DNS cut over ({n} records)"),
            };
            (what, Severity::Info)
        }
        RunEvent::Succeeded => {
            let rto = facts.records.report.as_ref().and_then(|r| r.rto.as_ref());
            match rto {
                Some(rto) => (
                    format!(
                        "SUCCEEDED, RTO {} ({} of {} min)",
                        if rto.met { "PASS" } else { "MISS" },
                        duration_text(rto.measured_seconds),
                        rto.target_minutes
                    ),
                    if rto.met {
                        Severity::Info
                    } else {
                        Severity::Warning
                    },
                ),
                None => match request.report.as_ref().and_then(|r| r.rto_met) {
                    Some(false) => ("SUCCEEDED, RTO MISS".to_owned(), Severity::Warning),
                    Some(true) => ("SUCCEEDED, RTO PASS".to_owned(), Severity::Info),
                    None => ("SUCCEEDED".to_owned(), Severity::Info),
                },
            }
        }
        RunEvent::Failed => {
            let why = request
                .error
                .as_ref()
                .map(|e| e.describe().1)
                .map(|m| first_line(&m).to_owned())
                .filter(|m| !m.is_empty());
            (
                match why {
                    Some(why) => format!("FAILED: {why}"),
                    None => "FAILED".to_owned(),
                },
                Severity::Critical,
            )
        }
        RunEvent::DrillCleanedUp => {
            let terminated = request.cleanup.as_ref().map_or(0, |c| c.terminated);
            (
                format!("drill cleaned up ({terminated} instances terminated)"),
                Severity::Info,
            )
        }
    }
}

/// How many servers of the failed wave failed: from the launch record, else the poll.
fn failed_in_wave(facts: &Facts) -> Option<usize> {
    facts
        .records
        .wave_launch
        .as_ref()
        .map(|w| w.progress.failed().count())
        .or_else(|| facts.request.poll.as_ref().map(|p| p.failed))
}

fn body(facts: &Facts, severity: Severity) -> String {
    let request = facts.request;
    let mut text = String::new();
    let _ = writeln!(text, "{}\n", opening_line(facts));
    match request.event {
        RunEvent::Started => started_section(&mut text, facts),
        RunEvent::ApprovalNeeded => approval_section(&mut text, facts),
        RunEvent::WaveStarted | RunEvent::WaveSucceeded | RunEvent::WaveFailed => {
            wave_section(&mut text, facts)
        }
        RunEvent::DnsCutOver => dns_section(&mut text, facts),
        RunEvent::Succeeded | RunEvent::Failed => outcome_section(&mut text, facts),
        RunEvent::DrillCleanedUp => {
            let terminated = request.cleanup.as_ref().map_or(0, |c| c.terminated);
            let _ = writeln!(
                text,
                "The drill's {terminated} recovery instances were terminated through DRS. \
                 Production was not touched.\n"
            );
        }
    }
    if let Some(error) = &request.error {
        let (name, message) = error.describe();
        let _ = writeln!(text, "ERROR\n  {name}");
        for line in message.lines() {
            let _ = writeln!(text, "  {line}");
        }
        let _ = writeln!(text);
    }
    run_section(&mut text, facts);
    next_steps_section(&mut text, facts, severity);
    links_section(&mut text, facts);
    text
}

fn opening_line(facts: &Facts) -> String {
    let request = facts.request;
    let mode = facts.mode.map_or("run", Mode::as_str);
    let plan = &facts.plan;
    let wave = request.wave.as_ref().map_or("?", |w| w.name.as_str());
    match request.event {
        RunEvent::Started => format!("A DR {mode} of plan {plan} has started."),
        RunEvent::ApprovalNeeded => format!(
            "A DR {mode} of plan {plan} is WAITING FOR YOUR APPROVAL. Nothing has been launched yet."
        ),
        RunEvent::WaveStarted => format!("Wave {wave} of the {mode} of plan {plan} is launching."),
        RunEvent::WaveSucceeded => {
            format!("Wave {wave} of the {mode} of plan {plan} launched.")
        }
        RunEvent::WaveFailed => format!(
            "Wave {wave} of the {mode} of plan {plan} FAILED. Later waves will not launch{}.",
            if facts.mode == Some(Mode::Recovery) {
                " and DNS will not be changed"
            } else {
                ""
            }
        ),
        RunEvent::DnsCutOver => format!(
            "DNS of plan {plan} now points at the recovered servers (Route 53 change in sync)."
        ),
        RunEvent::Succeeded => format!("The DR {mode} of plan {plan} SUCCEEDED."),
        RunEvent::Failed => format!("The DR {mode} of plan {plan} FAILED."),
        RunEvent::DrillCleanedUp => format!("The drill of plan {plan} has been cleaned up."),
    }
}

fn started_section(text: &mut String, facts: &Facts) {
    let Some(discovery) = &facts.request.discovery else {
        return;
    };
    let _ = writeln!(
        text,
        "{} servers in {} waves, in this order (waves on one line run in parallel):",
        discovery.server_count,
        discovery.layers.iter().map(Vec::len).sum::<usize>()
    );
    layers_lines(text, &discovery.layers);
    let _ = writeln!(text);
    if let Some(drill) = &discovery.stop_drill {
        let _ = writeln!(
            text,
            "DRILL STOPPED: the running drill {} of this plan is stopped and its instances terminated before the first wave (a recovery is never blocked by a drill).\n",
            drill.execution_name
        );
    } else if discovery.clear_first {
        let _ = writeln!(
            text,
            "Drill instances left on the plan's servers by an earlier drill are terminated before the first wave.\n"
        );
    }
    // The discovery carries a sample and the count: in a region outage every server
    // has a warning, and the full list lives in the run's record and its report.
    let total = discovery.warning_count.max(discovery.warnings.len());
    if total > 0 {
        let _ = writeln!(text, "READINESS WARNINGS ({total})");
        let listed = discovery.warnings.len().min(MAX_LISTED_WARNINGS);
        for issue in discovery.warnings.iter().take(listed) {
            let _ = writeln!(text, "  - {issue}");
        }
        if total > listed {
            let _ = writeln!(
                text,
                "  ... and {} more: every warning is in the run's report ({})",
                total - listed,
                crate::contract::keys::report_markdown(&facts.plan, &facts.request.execution_name)
            );
        }
        let _ = writeln!(text);
    }
}

fn layers_lines(text: &mut String, layers: &[Vec<WaveRef>]) {
    for (step, layer) in layers.iter().enumerate() {
        let waves: Vec<String> = layer
            .iter()
            .map(|w| format!("{} ({} servers)", w.name, w.servers))
            .collect();
        let _ = writeln!(text, "  {}. {}", step + 1, waves.join(", "));
    }
}

fn approval_section(text: &mut String, facts: &Facts) {
    let request = facts.request;
    let name = &request.execution_name;
    if let Some(discovery) = &request.discovery {
        let _ = writeln!(
            text,
            "Approving launches {} servers in {} waves:",
            discovery.server_count,
            discovery.layers.iter().map(Vec::len).sum::<usize>()
        );
        layers_lines(text, &discovery.layers);
        let _ = writeln!(text);
    }
    if facts.mode == Some(Mode::Recovery) {
        let _ = writeln!(
            text,
            "This is a RECOVERY: it launches production servers in the recovery Region and \
             moves DNS to them.\n"
        );
    }
    if let Some(minutes) = request.approval.as_ref().and_then(|a| a.timeout_minutes) {
        let until = facts.now + jiff::SignedDuration::from_mins(i64::from(minutes));
        let _ = writeln!(
            text,
            "If nobody answers within {minutes} minutes (by {}), the execution ends with \
             nothing launched.\n",
            until.strftime("%Y-%m-%d %H:%M UTC")
        );
    }
    let token = request.task_token.as_deref().unwrap_or("");
    let _ = writeln!(text, "TO APPROVE\n  drplan approve {name}\n");
    let _ = writeln!(
        text,
        "TO DECLINE (nothing is launched)\n  drplan decline {name} --reason \"...\"\n"
    );
    let _ = writeln!(
        text,
        "WITHOUT drplan (AWS CLI)\n  approve:\n  aws stepfunctions send-task-success --task-token {} --task-output '{{\"approved\": true}}'\n  decline:\n  aws stepfunctions send-task-failure --task-token {} --error drplan.Declined --cause \"...\"\n",
        shell_quote(token),
        shell_quote(token)
    );
}

fn wave_section(text: &mut String, facts: &Facts) {
    let request = facts.request;
    let Some(wave) = &request.wave else { return };
    if let Some(poll) = &request.poll {
        let _ = write!(
            text,
            "Servers: {} in the wave, {} launched, {} failed",
            wave.servers, poll.launched, poll.failed
        );
        if poll.pending > 0 {
            let _ = write!(text, ", {} still launching", poll.pending);
        }
        let _ = writeln!(text, ".");
        if poll.state == LaunchState::InProgress {
            let _ = writeln!(
                text,
                "The launch gives up at {} if servers are still launching.",
                poll.deadline.strftime("%Y-%m-%d %H:%M:%S UTC")
            );
        }
        if let Some(reason) = &poll.reason {
            let _ = writeln!(text, "Reason: {reason}");
        }
        let _ = writeln!(text);
    } else {
        let _ = writeln!(text, "Servers: {} in the wave.\n", wave.servers);
    }
    let Some(launch) = &facts.records.wave_launch else {
        if request.event == RunEvent::WaveFailed {
            let _ = writeln!(
                text,
                "The wave's launch record is not in the bucket (the wave may have failed before \
                 DRS reported on its servers); see the error below and `drplan status`.\n"
            );
        }
        return;
    };
    let failed: Vec<_> = launch.progress.failed().collect();
    if failed.is_empty() {
        if request.event == RunEvent::WaveFailed {
            let _ = writeln!(
                text,
                "Every server of the wave launched; the wave failed in a later step (see the \
                 error below).\n"
            );
        }
    } else {
        let title = if request.event == RunEvent::WaveFailed {
            "FAILED SERVERS"
        } else {
            "FAILED OPTIONAL SERVERS"
        };
        let _ = writeln!(text, "{title} ({})", failed.len());
        if request.event != RunEvent::WaveFailed {
            let _ = writeln!(text, "  (optional servers do not fail the wave)");
        }
        for server in failed.iter().take(MAX_LISTED_SERVERS) {
            let _ = writeln!(
                text,
                "  - {} ({}){}: {}",
                server.hostname.as_deref().unwrap_or("(no hostname)"),
                server.source_server_id,
                if server.optional { ", optional" } else { "" },
                one_line(server.error.as_deref().unwrap_or("no error reported"))
            );
        }
        if failed.len() > MAX_LISTED_SERVERS {
            let _ = writeln!(text, "  ... and {} more", failed.len() - MAX_LISTED_SERVERS);
        }
        let _ = writeln!(text);
    }
    if !launch.job_ids.is_empty() && request.event == RunEvent::WaveFailed {
        let _ = writeln!(text, "DRS launch jobs: {}\n", launch.job_ids.join(", "));
    }
}

fn dns_section(text: &mut String, facts: &Facts) {
    let Some(dns) = &facts.request.dns else {
        return;
    };
    if let Some(change) = &dns.change_id {
        let _ = writeln!(text, "Route 53 change: {change}");
    }
    if !dns.records.is_empty() {
        let _ = writeln!(text, "RECORDS CHANGED");
        for record in &dns.records {
            let _ = writeln!(
                text,
                "  - {} {}: {} (was {})",
                record.name,
                record.record_type.as_deref().unwrap_or(""),
                if record.values.is_empty() {
                    "-".to_owned()
                } else {
                    record.values.join(", ")
                },
                if record.previous_values.is_empty() {
                    "nothing".to_owned()
                } else {
                    record.previous_values.join(", ")
                },
            );
        }
    }
    let _ = writeln!(text);
}

fn outcome_section(text: &mut String, facts: &Facts) {
    let Some(report) = &facts.records.report else {
        if facts.request.report.is_some() {
            let _ = writeln!(
                text,
                "The report could not be read from the bucket; `drplan report` shows it once \
                 it is there.\n"
            );
        }
        return;
    };
    match &report.rto {
        Some(rto) => {
            let _ = writeln!(
                text,
                "RTO: {}: {} measured (start to {}) against a target of {} min.",
                if rto.met { "PASS" } else { "MISS" },
                duration_text(rto.measured_seconds),
                rto.measured_to,
                rto.target_minutes
            );
        }
        None => {
            let _ = writeln!(
                text,
                "RTO: not measured: the run did not recover every wave."
            );
        }
    }
    let _ = writeln!(
        text,
        "Run time: {} ({} to {}).",
        duration_text(
            report
                .finished_at
                .duration_since(report.started_at)
                .as_secs()
        ),
        report.started_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
        report.finished_at.strftime("%H:%M:%S UTC")
    );
    if let Some(n) = report.drill_instances_terminated {
        let _ = writeln!(text, "Drill cleanup: {n} instances terminated.");
    }
    let _ = writeln!(text);
    if report.waves.is_empty() {
        let _ = writeln!(text, "No wave was launched.\n");
    } else {
        let _ = writeln!(text, "WAVES");
        let width = report.waves.iter().map(|w| w.name.len()).max().unwrap_or(0);
        for wave in &report.waves {
            let _ = writeln!(
                text,
                "  {:width$}  {:13} {} launched, {} failed",
                wave.name, wave.state, wave.launched, wave.failed
            );
        }
        let _ = writeln!(text);
    }
    let failed: Vec<_> = report
        .waves
        .iter()
        .flat_map(|w| w.servers.iter().map(move |s| (w, s)))
        .filter(|(_, s)| s.state == ServerState::Failed)
        .collect();
    if !failed.is_empty() {
        let _ = writeln!(text, "FAILED SERVERS ({})", failed.len());
        for (wave, server) in failed.iter().take(MAX_LISTED_SERVERS) {
            let _ = writeln!(
                text,
                "  - {} ({}), wave {}{}: {}",
                server.hostname.as_deref().unwrap_or("(no hostname)"),
                server.source_server_id,
                wave.name,
                if server.optional { ", optional" } else { "" },
                one_line(server.error.as_deref().unwrap_or("no error reported"))
            );
        }
        if failed.len() > MAX_LISTED_SERVERS {
            let _ = writeln!(text, "  ... and {} more", failed.len() - MAX_LISTED_SERVERS);
        }
        let _ = writeln!(text);
    }
}

fn run_section(text: &mut String, facts: &Facts) {
    let request = facts.request;
    let _ = writeln!(text, "RUN");
    let _ = writeln!(text, "  Plan:      {}", facts.plan);
    let mode = match facts.mode {
        Some(Mode::Drill) => "drill (isolated instances; production DNS is never touched)",
        Some(Mode::Recovery) => "RECOVERY (real failover)",
        None => "unknown (the run failed before reading its input)",
    };
    let _ = writeln!(text, "  Mode:      {mode}");
    let _ = writeln!(text, "  Execution: {}", request.execution_name);
    let _ = writeln!(text, "  ARN:       {}", request.execution_id);
    if let Some(wave) = &request.wave {
        let _ = writeln!(
            text,
            "  Wave:      {} (#{} of the plan, {} servers)",
            wave.name,
            wave.index + 1,
            wave.servers
        );
    }
    if let Some(run) = &request.run {
        let elapsed = facts.now.duration_since(run.started_at).as_secs().max(0);
        let _ = writeln!(
            text,
            "  Started:   {} ({} ago)",
            run.started_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
            duration_text(elapsed)
        );
    }
    let _ = writeln!(
        text,
        "  Sent:      {}\n",
        facts.now.strftime("%Y-%m-%d %H:%M:%S UTC")
    );
}

fn next_steps_section(text: &mut String, facts: &Facts, severity: Severity) {
    let request = facts.request;
    let name = &request.execution_name;
    let mut steps: Vec<String> = Vec::new();
    match request.event {
        RunEvent::ApprovalNeeded => {
            steps.push(format!(
                "Check it is the run you expect: drplan status {name}"
            ));
            steps.push("Approve or decline with the commands above.".to_owned());
        }
        RunEvent::Started | RunEvent::WaveStarted | RunEvent::WaveSucceeded => {
            steps.push(format!("Follow the run: drplan status {name} --wait"));
        }
        RunEvent::DnsCutOver => {
            steps.push(format!("Follow the run: drplan status {name} --wait"));
            steps.push(format!(
                "If the recovered service misbehaves, put the previous records back: drplan rollback-dns {name}"
            ));
        }
        RunEvent::WaveFailed => {
            steps.push(format!("See every wave: drplan status {name}"));
            steps.push(format!(
                "Read why each server failed (the report is written when the execution ends): drplan report {name}"
            ));
            steps.extend(launch_failure_checks(facts));
        }
        RunEvent::Failed => {
            steps.push(format!("Read the report: drplan report {name}"));
            steps.push(format!("See where it stopped: drplan status {name}"));
            if facts.run_never_started() {
                steps.push(
                    "Fix what the error above lists (every problem is named), check the plan \
                     with drplan validate PLAN_FILE, then start again."
                        .to_owned(),
                );
            } else {
                steps.extend(launch_failure_checks(facts));
            }
        }
        RunEvent::Succeeded => {
            steps.push(format!("Read the report: drplan report {name}"));
            if facts.mode == Some(Mode::Recovery) {
                steps.push(
                    "Check the service from outside (the recovered servers now take traffic)."
                        .to_owned(),
                );
            }
            if severity == Severity::Warning {
                steps.push(
                    "The RTO was missed: the report's launch phases show which wave took longest."
                        .to_owned(),
                );
            }
        }
        RunEvent::DrillCleanedUp => {
            steps.push(format!("Read the drill's report: drplan report {name}"));
        }
    }
    let _ = writeln!(text, "WHAT TO DO NEXT");
    for (n, step) in steps.iter().enumerate() {
        let _ = writeln!(text, "  {}. {step}", n + 1);
    }
    let _ = writeln!(text);
}

impl Facts<'_> {
    /// True when the run failed before any wave ran (validation, readiness, approval).
    fn run_never_started(&self) -> bool {
        self.request.run.is_none()
            || self
                .records
                .report
                .as_ref()
                .is_some_and(|r| r.waves.iter().all(|w| w.launched == 0 && w.failed == 0))
    }
}

/// What to check when a wave failed, most common causes first.
fn launch_failure_checks(facts: &Facts) -> Vec<String> {
    let every_server_launched = facts
        .records
        .wave_launch
        .as_ref()
        .is_some_and(|w| w.progress.failed().next().is_none());
    if every_server_launched {
        // Launched but failed later: the health gate or a hook, not DRS.
        return vec![
            "The servers launched; the wave failed after that (health gate or hook). Check \
             that the recovered instances' security groups allow the plan's probes and that \
             their services start; the report shows each check's result."
                .to_owned(),
        ];
    }
    let mut checks = vec![
        "In the DRS console, open each failed source server: its data replication must be \
         healthy (CONTINUOUS, no stall) and its launch settings and EC2 launch template valid \
         (subnet, security groups, instance type available in the Availability Zone)."
            .to_owned(),
        "Check EC2 service quotas (running On-Demand vCPUs) and the KMS key of the volumes in \
         the recovery Region."
            .to_owned(),
    ];
    if let Some(launch) = &facts.records.wave_launch
        && let Some(job) = launch.job_ids.first()
    {
        checks.push(format!(
            "DRS's own log of the launch: aws drs describe-job-log-items --job-id {job}"
        ));
    }
    if facts.mode == Some(Mode::Recovery) {
        checks.push(
            "Production DNS was not changed: traffic still goes where it went before the run."
                .to_owned(),
        );
    }
    checks
}

fn links_section(text: &mut String, facts: &Facts) {
    let Some(region) = facts.region else { return };
    let _ = writeln!(text, "CONSOLE");
    let _ = writeln!(
        text,
        "  Step Functions execution: https://{region}.console.aws.amazon.com/states/home?region={region}#/v2/executions/details/{}",
        facts.request.execution_id
    );
    let _ = writeln!(
        text,
        "  DRS source servers:       https://{region}.console.aws.amazon.com/drs/home?region={region}#/sourceServers"
    );
}

/// The Region of a Step Functions execution ARN in the `aws` partition
/// (`arn:aws:states:REGION:ACCOUNT:execution:MACHINE:NAME`). Other partitions have
/// other console hosts; no link beats a wrong one.
fn execution_region(execution_arn: &str) -> Option<&str> {
    let mut parts = execution_arn.split(':');
    let (Some("arn"), Some("aws"), Some("states"), Some(region)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let plausible = !region.is_empty()
        && region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    plausible.then_some(region)
}

/// One line of at most [`SUBJECT_MAX_CHARS`]: SNS refuses longer subjects and ones
/// with line breaks or control characters.
pub fn subject_line(text: &str) -> String {
    let single: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let collapsed = single.split_whitespace().collect::<Vec<_>>().join(" ");
    truncate_chars(&collapsed, SUBJECT_MAX_CHARS)
}

/// At most `max` characters, ending in "..." when cut.
fn truncate_chars(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let kept: String = text.chars().take(max.saturating_sub(3)).collect();
    format!("{}...", kept.trim_end())
}

fn first_line(text: &str) -> &str {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
}

fn one_line(text: &str) -> String {
    truncate_chars(
        &text.split_whitespace().collect::<Vec<_>>().join(" "),
        MAX_ERROR_CHARS,
    )
}

/// "1h 02m 03s", "12m 30s", "45s".
fn duration_text(seconds: i64) -> String {
    let seconds = seconds.max(0);
    let (h, m, s) = (seconds / 3600, (seconds % 3600) / 60, seconds % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m {s:02}s"),
        _ => format!("{h}h {m:02}m {s:02}s"),
    }
}

/// Single-quoted for a POSIX shell, so a task token pastes as one argument.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests;
