//! On-call notifications: one message per run event (started, approval needed, wave
//! started / succeeded / failed, DNS cut over, succeeded, failed, drill cleaned up),
//! composed for a person woken at 3 a.m. and filtered by SNS message attributes.
//!
//! Everything here is pure: the notify function reads the run's records from the
//! bucket, hands them in, and publishes what comes out.

use std::fmt::{self, Write};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::execution::{LaunchPoll, LaunchState, RunContext, WaveRef};
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
const MAX_LISTED_WARNINGS: usize = 10;
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
                "  ... and {} more: every warning is in the run's report ({}.md)",
                total - listed,
                crate::execution::report_key_base(&facts.plan, &facts.request.execution_name)
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
mod tests {
    use super::*;
    use crate::execution::SnapshotChoice;
    use crate::launch::ServerOutcome;
    use crate::report::{RtoResult, RunError, ServerReport, WaveReport};
    use crate::{Quotas, Timing};
    use serde_json::json;

    const ARN: &str =
        "arn:aws:states:eu-west-1:123456789012:execution:drplan-recovery:shop-drill-1";

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn now() -> Timestamp {
        at("2026-11-28T03:12:30Z")
    }

    fn run(mode: Mode) -> RunContext {
        RunContext {
            execution_id: ARN.into(),
            execution_name: "shop-drill-1".into(),
            plan: "shop".into(),
            mode,
            started_at: at("2026-11-28T03:00:00Z"),
            snapshot: SnapshotChoice::Latest,
            timing: Timing::default(),
            quotas: Quotas::default(),
            deadline: None,
        }
    }

    fn wave(name: &str, index: usize, servers: usize) -> WaveRef {
        WaveRef {
            index,
            name: name.into(),
            servers,
            hooks: Default::default(),
        }
    }

    fn request(event: RunEvent, mode: Mode) -> NotificationRequest {
        NotificationRequest {
            event,
            execution_id: ARN.into(),
            execution_name: "shop-drill-1".into(),
            run: Some(run(mode)),
            input: None,
            discovery: None,
            wave: None,
            poll: None,
            error: None,
            report: None,
            cleanup: None,
            approval: None,
            task_token: None,
            dns: None,
        }
    }

    fn discovery() -> DiscoverySummary {
        DiscoverySummary {
            server_count: 15,
            layers: vec![
                vec![wave("database", 0, 3)],
                vec![wave("cache", 1, 2), wave("app", 2, 8)],
                vec![wave("web", 3, 2)],
            ],
            warnings: vec![Issue::new(
                "servers[\"db-01\"]",
                "replication lag 7m exceeds the RPO of 5 min",
            )],
            ..DiscoverySummary::default()
        }
    }

    fn poll(state: LaunchState, launched: usize, failed: usize) -> LaunchPoll {
        LaunchPoll {
            state,
            attempt: 4,
            wait_seconds: 30,
            deadline: at("2026-11-28T04:30:00Z"),
            launched,
            failed,
            pending: 0,
            reason: None,
        }
    }

    fn failed_server(n: usize, optional: bool) -> ServerOutcome {
        ServerOutcome {
            source_server_id: format!("s-{n:017}"),
            hostname: Some(format!("app-{n:03}")),
            optional,
            state: ServerState::Failed,
            job_id: Some("drsjob-1".into()),
            recovery_instance_id: None,
            ec2_instance_id: None,
            error: Some(format!(
                "LAUNCH_FAILED: InsufficientInstanceCapacity for app-{n:03}"
            )),
        }
    }

    /// The checks every message must pass.
    fn check(notification: &Notification, event: RunEvent) {
        let subject = &notification.subject;
        assert!(subject.chars().count() < 100, "subject too long: {subject}");
        assert!(!subject.chars().any(char::is_control), "{subject:?}");
        assert!(subject.starts_with("[drplan] "), "{subject}");
        let attributes: Vec<(&str, &str)> = notification.attributes.pairs().to_vec();
        assert_eq!(attributes[3], ("event", event.as_str()));
        assert!(attributes.iter().all(|(_, v)| !v.is_empty()));
        let body = &notification.body;
        assert!(body.contains("Execution: shop-drill-1"), "{body}");
        assert!(body.contains("WHAT TO DO NEXT"), "{body}");
        assert!(
            body.contains(
                "https://eu-west-1.console.aws.amazon.com/states/home?region=eu-west-1#/v2/executions/details/arn:aws:states:eu-west-1:123456789012:execution:drplan-recovery:shop-drill-1"
            ),
            "{body}"
        );
        assert!(
            body.contains(
                "https://eu-west-1.console.aws.amazon.com/drs/home?region=eu-west-1#/sourceServers"
            ),
            "{body}"
        );
    }

    fn attribute<'a>(notification: &'a Notification, name: &str) -> &'a str {
        notification
            .attributes
            .pairs()
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
            .unwrap()
    }

    #[test]
    fn started_lists_the_waves_in_order_and_the_warnings() {
        let mut req = request(RunEvent::Started, Mode::Drill);
        req.discovery = Some(discovery());
        let n = compose(&req, &RunRecords::default(), now()).unwrap();
        check(&n, RunEvent::Started);
        assert_eq!(
            n.subject,
            "[drplan] DRILL shop: started (15 servers in 4 waves)"
        );
        assert_eq!(attribute(&n, "severity"), "info");
        assert_eq!(attribute(&n, "mode"), "drill");
        assert_eq!(attribute(&n, "plan"), "shop");
        assert!(n.body.contains("  1. database (3 servers)\n"), "{}", n.body);
        assert!(
            n.body.contains("  2. cache (2 servers), app (8 servers)\n"),
            "{}",
            n.body
        );
        assert!(n.body.contains("replication lag 7m exceeds the RPO"));
        assert!(n.body.contains("(12m 30s ago)"), "{}", n.body);
        assert!(n.body.contains("drplan status shop-drill-1 --wait"));
    }

    #[test]
    fn an_outage_sized_warning_list_is_counted_and_points_at_the_report() {
        let mut req = request(RunEvent::Started, Mode::Recovery);
        let mut found = discovery();
        found.warnings = (0..crate::readiness::ISSUES_IN_STATE)
            .map(|i| Issue::new(format!("servers[{i}]"), "replication is STALLED"))
            .collect();
        found.warning_count = 8000;
        req.discovery = Some(found);
        let n = compose(&req, &RunRecords::default(), now()).unwrap();
        assert!(n.body.contains("READINESS WARNINGS (8000)"), "{}", n.body);
        assert!(
            n.body.contains(
                "... and 7990 more: every warning is in the run's report (reports/shop/shop-drill-1.md)"
            ),
            "{}",
            n.body
        );
    }

    #[test]
    fn a_recovery_that_takes_over_from_a_drill_says_so() {
        let mut req = request(RunEvent::Started, Mode::Recovery);
        let mut found = discovery();
        found.stop_drill = Some(crate::safety::RunLock {
            execution_id: "arn:aws:states:us-east-1:1:execution:drplan-recovery:shop-drill-7"
                .into(),
            execution_name: "shop-drill-7".into(),
            mode: Mode::Drill,
            locked_at: now(),
        });
        found.clear_first = true;
        req.discovery = Some(found);
        let n = compose(&req, &RunRecords::default(), now()).unwrap();
        assert!(
            n.body
                .contains("DRILL STOPPED: the running drill shop-drill-7 of this plan is stopped"),
            "{}",
            n.body
        );
        // Leftovers of an earlier drill, without a drill to stop.
        let mut leftovers = discovery();
        leftovers.clear_first = true;
        req.discovery = Some(leftovers);
        let n = compose(&req, &RunRecords::default(), now()).unwrap();
        assert!(
            n.body
                .contains("left on the plan's servers by an earlier drill"),
            "{}",
            n.body
        );
    }

    #[test]
    fn approval_carries_the_exact_commands() {
        let mut req = request(RunEvent::ApprovalNeeded, Mode::Recovery);
        req.discovery = Some(discovery());
        req.approval = Some(ApprovalWait {
            timeout_minutes: Some(60),
        });
        req.task_token = Some("AQCEAAAAKgAAAA+token/with=chars".into());
        let n = compose(&req, &RunRecords::default(), now()).unwrap();
        check(&n, RunEvent::ApprovalNeeded);
        assert_eq!(
            n.subject,
            "[drplan] RECOVERY shop: approval needed to launch 15 servers"
        );
        assert_eq!(attribute(&n, "severity"), "warning");
        assert!(
            n.body.contains("drplan approve shop-drill-1\n"),
            "{}",
            n.body
        );
        assert!(
            n.body
                .contains("drplan decline shop-drill-1 --reason \"...\"")
        );
        assert!(n.body.contains(
            "aws stepfunctions send-task-success --task-token 'AQCEAAAAKgAAAA+token/with=chars' --task-output '{\"approved\": true}'"
        ), "{}", n.body);
        assert!(
            n.body
                .contains("within 60 minutes (by 2026-11-28 04:12 UTC)")
        );
        assert!(n.body.contains("nothing launched"));
    }

    #[test]
    fn approval_without_a_token_is_refused() {
        let req = request(RunEvent::ApprovalNeeded, Mode::Recovery);
        let error = compose(&req, &RunRecords::default(), now()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "a APPROVAL_NEEDED notification needs `task_token` in its input"
        );
    }

    #[test]
    fn wave_started_and_succeeded() {
        let mut req = request(RunEvent::WaveStarted, Mode::Drill);
        req.wave = Some(wave("app", 2, 8));
        let n = compose(&req, &RunRecords::default(), now()).unwrap();
        check(&n, RunEvent::WaveStarted);
        assert_eq!(
            n.subject,
            "[drplan] DRILL shop: wave app started (8 servers)"
        );
        assert!(
            n.body
                .contains("Wave:      app (#3 of the plan, 8 servers)")
        );

        req.event = RunEvent::WaveSucceeded;
        req.poll = Some(poll(LaunchState::Succeeded, 8, 0));
        let n = compose(&req, &RunRecords::default(), now()).unwrap();
        check(&n, RunEvent::WaveSucceeded);
        assert_eq!(
            n.subject,
            "[drplan] DRILL shop: wave app succeeded (8/8 launched)"
        );
        assert_eq!(attribute(&n, "severity"), "info");
        assert!(!req.needs_wave_launch());
    }

    #[test]
    fn a_wave_with_failed_optional_servers_succeeds_with_a_warning() {
        let mut req = request(RunEvent::WaveSucceeded, Mode::Drill);
        req.wave = Some(wave("app", 2, 8));
        req.poll = Some(poll(LaunchState::Succeeded, 7, 1));
        assert!(req.needs_wave_launch());
        let records = RunRecords {
            report: None,
            wave_launch: Some(WaveLaunchOutcome {
                progress: WaveProgress {
                    servers: vec![failed_server(7, true)],
                },
                job_ids: vec!["drsjob-1".into()],
            }),
        };
        let n = compose(&req, &records, now()).unwrap();
        check(&n, RunEvent::WaveSucceeded);
        assert_eq!(
            n.subject,
            "[drplan] DRILL shop: wave app succeeded (7/8 launched, 1 optional failed)"
        );
        assert_eq!(attribute(&n, "severity"), "warning");
        assert!(n.body.contains("FAILED OPTIONAL SERVERS (1)"));
        assert!(n.body.contains("app-007 (s-00000000000000007), optional"));
    }

    #[test]
    fn wave_failed_names_the_servers_and_their_errors_capped() {
        let mut req = request(RunEvent::WaveFailed, Mode::Recovery);
        req.wave = Some(wave("app", 2, 30));
        let mut failed_poll = poll(LaunchState::Failed, 5, 25);
        failed_poll.reason = Some("wave \"app\": app-001 failed to launch".into());
        req.poll = Some(failed_poll);
        req.error = Some(StepError {
            error: Some("drplan.WaveFailed".into()),
            cause: Some(
                json!({"errorType": "drplan.WaveFailed", "errorMessage": "wave \"app\": app-001 failed to launch: LAUNCH_FAILED (and 24 more critical)"})
                    .to_string(),
            ),
        });
        assert!(req.needs_wave_launch());
        let records = RunRecords {
            report: None,
            wave_launch: Some(WaveLaunchOutcome {
                progress: WaveProgress {
                    servers: (1..=25).map(|n| failed_server(n, false)).collect(),
                },
                job_ids: vec!["drsjob-0123".into()],
            }),
        };
        let n = compose(&req, &records, now()).unwrap();
        check(&n, RunEvent::WaveFailed);
        assert_eq!(
            n.subject,
            "[drplan] RECOVERY shop: wave app FAILED (25 servers)"
        );
        assert_eq!(attribute(&n, "severity"), "critical");
        assert_eq!(attribute(&n, "mode"), "recovery");
        let body = &n.body;
        assert!(body.contains("FAILED SERVERS (25)"), "{body}");
        assert!(body.contains(
            "  - app-001 (s-00000000000000001): LAUNCH_FAILED: InsufficientInstanceCapacity for app-001"
        ));
        assert!(body.contains("app-020"));
        assert!(!body.contains("app-021"));
        assert!(body.contains("  ... and 5 more"));
        // The Lambda envelope is unwrapped.
        assert!(
            body.contains("ERROR\n  drplan.WaveFailed\n  wave \"app\": app-001"),
            "{body}"
        );
        assert!(!body.contains("errorMessage"));
        assert!(body.contains("drplan status shop-drill-1"));
        assert!(body.contains("drplan report shop-drill-1"));
        assert!(body.contains("aws drs describe-job-log-items --job-id drsjob-0123"));
        assert!(body.contains("DNS will not be changed"));
    }

    #[test]
    fn wave_failed_without_a_launch_record_still_says_enough() {
        let mut req = request(RunEvent::WaveFailed, Mode::Drill);
        req.wave = Some(wave("db", 0, 2));
        req.poll = Some(poll(LaunchState::Failed, 0, 2));
        let n = compose(&req, &RunRecords::default(), now()).unwrap();
        check(&n, RunEvent::WaveFailed);
        assert_eq!(n.subject, "[drplan] DRILL shop: wave db FAILED (2 servers)");
        assert!(n.body.contains("launch record is not in the bucket"));
    }

    #[test]
    fn a_wave_that_launched_but_failed_later_points_at_the_health_gate() {
        let mut req = request(RunEvent::WaveFailed, Mode::Drill);
        req.wave = Some(wave("app", 2, 1));
        let mut launched = failed_server(1, false);
        launched.state = ServerState::Launched;
        launched.error = None;
        let records = RunRecords {
            report: None,
            wave_launch: Some(WaveLaunchOutcome {
                progress: WaveProgress {
                    servers: vec![launched],
                },
                job_ids: vec!["drsjob-1".into()],
            }),
        };
        let n = compose(&req, &records, now()).unwrap();
        check(&n, RunEvent::WaveFailed);
        assert_eq!(n.subject, "[drplan] DRILL shop: wave app FAILED");
        assert!(n.body.contains("Every server of the wave launched"));
        assert!(n.body.contains("health gate"));
        assert!(!n.body.contains("EC2 service quotas"));
    }

    #[test]
    fn wave_events_need_a_wave() {
        let req = request(RunEvent::WaveFailed, Mode::Drill);
        assert_eq!(
            compose(&req, &RunRecords::default(), now()),
            Err(NotifyError::MissingField {
                event: RunEvent::WaveFailed,
                field: "wave"
            })
        );
    }

    #[test]
    fn dns_cut_over_lists_the_records_and_the_rollback() {
        let mut req = request(RunEvent::DnsCutOver, Mode::Recovery);
        req.dns = Some(DnsCutoverSummary {
            change_id: Some("C123".into()),
            records: vec![DnsRecordChange {
                name: "shop.example.com".into(),
                record_type: Some("A".into()),
                values: vec!["10.0.1.5".into(), "10.0.1.6".into()],
                previous_values: vec!["203.0.113.10".into()],
            }],
        });
        let n = compose(&req, &RunRecords::default(), now()).unwrap();
        check(&n, RunEvent::DnsCutOver);
        assert_eq!(n.subject, "[drplan] RECOVERY shop: DNS cut over (1 record)");
        assert!(
            n.body
                .contains("shop.example.com A: 10.0.1.5, 10.0.1.6 (was 203.0.113.10)")
        );
        assert!(n.body.contains("drplan rollback-dns shop-drill-1"));
    }

    fn report(status: &str, rto: Option<RtoResult>) -> Report {
        Report {
            execution_id: ARN.into(),
            execution_name: "shop-drill-1".into(),
            plan: "shop".into(),
            mode: Some(Mode::Drill),
            status: status.into(),
            started_at: at("2026-11-28T03:00:00Z"),
            finished_at: at("2026-11-28T03:41:05Z"),
            error: None,
            rto,
            waves: vec![
                WaveReport {
                    name: "database".into(),
                    state: "SUCCEEDED".into(),
                    finished_at: Some(at("2026-11-28T03:20:00Z")),
                    healthy_at: None,
                    launched: 3,
                    failed: 0,
                    health_gate: None,
                    servers: Vec::new(),
                },
                WaveReport {
                    name: "app".into(),
                    state: if status == "FAILED" {
                        "FAILED".into()
                    } else {
                        "SUCCEEDED".into()
                    },
                    finished_at: Some(at("2026-11-28T03:40:00Z")),
                    healthy_at: None,
                    launched: 6,
                    failed: 2,
                    health_gate: None,
                    servers: vec![ServerReport {
                        source_server_id: "s-1".into(),
                        hostname: Some("app-001".into()),
                        optional: false,
                        state: ServerState::Failed,
                        ec2_instance_id: None,
                        subnet_id: None,
                        error: Some("LAUNCH_FAILED: subnet\nis full".into()),
                        health: None,
                        phases: Vec::new(),
                    }],
                },
            ],
            drill_instances_terminated: None,
            dns: None,
            isolation: None,
            cleared: None,
            readiness: None,
        }
    }

    #[test]
    fn succeeded_summarises_the_report_with_the_rto_verdict() {
        let mut req = request(RunEvent::Succeeded, Mode::Drill);
        req.report = Some(ReportLocation {
            status: Some("SUCCEEDED".into()),
            json_key: Some("reports/shop/shop-drill-1.json".into()),
            markdown_key: Some("reports/shop/shop-drill-1.md".into()),
            rto_met: Some(false),
        });
        assert_eq!(req.report_key(), Some("reports/shop/shop-drill-1.json"));
        let rto = RtoResult::measure(
            30,
            at("2026-11-28T03:00:00Z"),
            at("2026-11-28T03:40:00Z"),
            "the last wave recovered",
        );
        let records = RunRecords {
            report: Some(report("SUCCEEDED", Some(rto))),
            wave_launch: None,
        };
        let n = compose(&req, &records, now()).unwrap();
        check(&n, RunEvent::Succeeded);
        assert_eq!(
            n.subject,
            "[drplan] DRILL shop: SUCCEEDED, RTO MISS (40m 00s of 30 min)"
        );
        assert_eq!(attribute(&n, "severity"), "warning");
        assert!(n.body.contains(
            "RTO: MISS: 40m 00s measured (start to the last wave recovered) against a target of 30 min."
        ), "{}", n.body);
        assert!(
            n.body
                .contains("  database  SUCCEEDED     3 launched, 0 failed"),
            "{}",
            n.body
        );
        assert!(n.body.contains("Run time: 41m 05s"));
        assert!(n.body.contains("drplan report shop-drill-1"));
    }

    #[test]
    fn failed_before_discovery_names_the_plan_from_the_input() {
        let mut req = request(RunEvent::Failed, Mode::Drill);
        req.run = None;
        req.input = Some(json!({"plan": "shop", "mode": "recovery"}));
        req.error = Some(StepError {
            error: Some("drplan.InvalidPlan".into()),
            cause: Some(
                json!({"errorType": "drplan.InvalidPlan", "errorMessage": "the plan is not valid (2 problems):\nwaves[1].depends_on[0]: unknown wave \"ap\"\nwaves[2]: cycle"})
                    .to_string(),
            ),
        });
        let n = compose(&req, &RunRecords::default(), now()).unwrap();
        check(&n, RunEvent::Failed);
        assert_eq!(
            n.subject,
            "[drplan] RECOVERY shop: FAILED: the plan is not valid (2 problems):"
        );
        assert_eq!(attribute(&n, "severity"), "critical");
        assert!(
            n.body
                .contains("  waves[1].depends_on[0]: unknown wave \"ap\"\n")
        );
        assert!(n.body.contains("drplan validate"));
    }

    #[test]
    fn failed_with_a_report_lists_the_failed_servers() {
        let mut req = request(RunEvent::Failed, Mode::Drill);
        req.error = Some(StepError {
            error: Some("States.TaskFailed".into()),
            cause: Some(
                json!({"errorType": "drplan.WaveFailed", "errorMessage": "wave \"app\": app-001 failed to launch: LAUNCH_FAILED: the subnet of the drill has no free addresses left in it for any instance at all, which is long"})
                    .to_string(),
            ),
        });
        req.report = Some(ReportLocation {
            json_key: Some("reports/shop/shop-drill-1.json".into()),
            ..ReportLocation::default()
        });
        let mut failed = report("FAILED", None);
        failed.error = Some(RunError {
            error: "drplan.WaveFailed".into(),
            cause: "...".into(),
        });
        let records = RunRecords {
            report: Some(failed),
            wave_launch: None,
        };
        let n = compose(&req, &records, now()).unwrap();
        check(&n, RunEvent::Failed);
        assert!(n.subject.ends_with("..."), "{}", n.subject);
        assert!(
            n.subject
                .starts_with("[drplan] DRILL shop: FAILED: wave \"app\": app-001")
        );
        // States.TaskFailed says less than the function's own error type.
        assert!(
            n.body.contains("ERROR\n  drplan.WaveFailed\n"),
            "{}",
            n.body
        );
        assert!(n.body.contains("FAILED SERVERS (1)"));
        assert!(
            n.body
                .contains("  - app-001 (s-1), wave app: LAUNCH_FAILED: subnet is full")
        );
        assert!(n.body.contains("RTO: not measured"));
        assert!(n.body.contains("the launch settings") || n.body.contains("launch settings"));
    }

    #[test]
    fn drill_cleaned_up() {
        let mut req = request(RunEvent::DrillCleanedUp, Mode::Drill);
        req.cleanup = Some(CleanupSummary { terminated: 15 });
        let n = compose(&req, &RunRecords::default(), now()).unwrap();
        check(&n, RunEvent::DrillCleanedUp);
        assert_eq!(
            n.subject,
            "[drplan] DRILL shop: drill cleaned up (15 instances terminated)"
        );
        assert_eq!(attribute(&n, "severity"), "info");
    }

    #[test]
    fn the_contract_parses_and_unknown_events_are_named() {
        let input = json!({
            "event": "WAVE_FAILED",
            "execution_id": ARN,
            "execution_name": "shop-drill-1",
            "run": serde_json::to_value(run(Mode::Drill)).unwrap(),
            "wave": {"index": 2, "name": "app", "servers": 8},
            "poll": serde_json::to_value(poll(LaunchState::Failed, 6, 2)).unwrap(),
            "error": {"Error": "drplan.WaveFailed", "Cause": "plain text"},
            "something_else": 1
        });
        let req: NotificationRequest = serde_json::from_value(input).unwrap();
        assert_eq!(req.event, RunEvent::WaveFailed);
        assert_eq!(
            req.error.as_ref().map(StepError::describe),
            Some(("drplan.WaveFailed".into(), "plain text".into()))
        );
        let all = [
            "STARTED",
            "APPROVAL_NEEDED",
            "WAVE_STARTED",
            "WAVE_SUCCEEDED",
            "WAVE_FAILED",
            "DNS_CUT_OVER",
            "SUCCEEDED",
            "FAILED",
            "DRILL_CLEANED_UP",
        ];
        for name in all {
            let event: RunEvent = serde_json::from_value(json!(name)).unwrap();
            assert_eq!(event.as_str(), name);
        }
        let error = serde_json::from_value::<NotificationRequest>(json!({
            "event": "EXPLODED", "execution_id": ARN, "execution_name": "x"
        }))
        .unwrap_err()
        .to_string();
        assert!(error.contains("unknown variant `EXPLODED`"), "{error}");
        assert!(error.contains("DRILL_CLEANED_UP"), "{error}");
    }

    #[test]
    fn subjects_stay_one_short_line() {
        let long = format!("[drplan] {}\nsecond line\tand\u{7} more", "x".repeat(200));
        let subject = subject_line(&long);
        assert_eq!(subject.chars().count(), SUBJECT_MAX_CHARS);
        assert!(!subject.chars().any(char::is_control));
        let mut req = request(RunEvent::WaveFailed, Mode::Recovery);
        req.run.as_mut().unwrap().plan = "p".repeat(80);
        req.wave = Some(wave(&"w".repeat(60), 0, 2));
        let n = compose(&req, &RunRecords::default(), now()).unwrap();
        assert!(n.subject.chars().count() < 100);
    }

    #[test]
    fn links_only_for_execution_arns_in_the_aws_partition() {
        assert_eq!(execution_region(ARN), Some("eu-west-1"));
        assert_eq!(
            execution_region("arn:aws-cn:states:cn-north-1:1:execution:m:n"),
            None
        );
        assert_eq!(execution_region("not-an-arn"), None);
        let mut req = request(RunEvent::Started, Mode::Drill);
        req.execution_id = "local-execution".into();
        let n = compose(&req, &RunRecords::default(), now()).unwrap();
        assert!(!n.body.contains("console.aws.amazon.com"));
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration_text(45), "45s");
        assert_eq!(duration_text(750), "12m 30s");
        assert_eq!(duration_text(3723), "1h 02m 03s");
        assert_eq!(duration_text(-5), "0s");
    }
}
