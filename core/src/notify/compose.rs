//! Composing a message: the facts of the event gathered once, its subject line and
//! severity, and the body assembled from [`super::text`]'s sections.

use std::fmt::Write;

use jiff::Timestamp;

use super::text::*;
use super::*;
use crate::contract::notice::NotificationRequest;
use crate::contract::step::StepError;

use crate::plan::Mode;

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

    fn plan_name(&self, records: &StoredRecords) -> String {
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

    fn mode(&self, records: &StoredRecords) -> Option<Mode> {
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
                    Some("failback") => Some(Mode::Failback),
                    _ => None,
                }
            })
    }
}

/// Everything a message needs, gathered once.
pub(super) struct Facts<'a> {
    pub(super) request: &'a NotificationRequest,
    pub(super) records: &'a StoredRecords,
    pub(super) now: Timestamp,
    pub(super) plan: String,
    pub(super) mode: Option<Mode>,
    pub(super) region: Option<&'a str>,
}

/// Composes the message for `request`, with the records read from the bucket.
pub fn compose(
    request: &NotificationRequest,
    records: &StoredRecords,
    now: Timestamp,
) -> Result<Notification, NotifyError> {
    let missing = |field| NotifyError::MissingField {
        event: request.event,
        field,
    };
    if request.event.is_wave_event() && request.wave.is_none() {
        return Err(missing("wave"));
    }
    if matches!(request.event, RunEvent::ApprovalNeeded | RunEvent::Paused)
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
pub(super) fn headline(facts: &Facts<'_>) -> (String, Severity) {
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
            let what = if request.wave.as_ref().is_some_and(|w| w.adopted) {
                format!("wave {wave_name} adopted ({servers} servers kept, health checked again)")
            } else {
                format!("wave {wave_name} started ({servers} servers)")
            };
            (what, Severity::Info)
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
        RunEvent::Paused => {
            let stage = request.pause.as_ref().map_or(0, |p| p.layer) + 1;
            let by = request
                .pause
                .as_ref()
                .and_then(|p| p.request())
                .map(|r| format!(" by {}", r.by))
                .unwrap_or_default();
            (
                format!("PAUSED before stage {stage}{by}"),
                Severity::Warning,
            )
        }
        RunEvent::DrillCleanedUp => {
            let terminated = request.cleanup.as_ref().map_or(0, |c| c.terminated);
            let what = match facts.mode {
                Some(Mode::Failback) => "recovery instances terminated after the failback",
                _ => "drill cleaned up",
            };
            (
                format!("{what} ({terminated} instances terminated)"),
                Severity::Info,
            )
        }
    }
}

/// How many servers of the failed wave failed: from the launch record, else the poll.
pub(super) fn failed_in_wave(facts: &Facts<'_>) -> Option<usize> {
    facts
        .records
        .wave_launch
        .as_ref()
        .map(|w| w.progress.failed().count())
        .or_else(|| facts.request.poll.as_ref().map(|p| p.failed))
}

pub(super) fn body(facts: &Facts<'_>, severity: Severity) -> String {
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
        RunEvent::Paused => pause_section(&mut text, facts),
        RunEvent::Succeeded | RunEvent::Failed => outcome_section(&mut text, facts),
        RunEvent::DrillCleanedUp => {
            let terminated = request.cleanup.as_ref().map_or(0, |c| c.terminated);
            let _ = if facts.mode == Some(Mode::Failback) {
                writeln!(
                    text,
                    "The {terminated} recovery instances of the failed-back servers were \
                     terminated through DRS, after the plan's failback.keep_recovery_minutes.\n"
                )
            } else {
                writeln!(
                    text,
                    "The drill's {terminated} recovery instances were terminated through DRS. \
                     Production was not touched.\n"
                )
            };
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

pub(super) fn opening_line(facts: &Facts<'_>) -> String {
    let request = facts.request;
    let mode = facts.mode.map_or("run", Mode::as_str);
    let plan = &facts.plan;
    let wave = request.wave.as_ref().map_or("?", |w| w.name.as_str());
    match request.event {
        RunEvent::Started => format!("A DR {mode} of plan {plan} has started."),
        RunEvent::ApprovalNeeded => format!(
            "A DR {mode} of plan {plan} is WAITING FOR YOUR APPROVAL. Nothing has been launched yet."
        ),
        RunEvent::WaveStarted if request.wave.as_ref().is_some_and(|w| w.adopted) => format!(
            "Wave {wave} of the {mode} of plan {plan} succeeded in the run this one resumes: its instances are kept (nothing launches) and pass its health gate again before any other wave starts."
        ),
        RunEvent::WaveStarted => format!("Wave {wave} of the {mode} of plan {plan} is launching."),
        RunEvent::WaveSucceeded => {
            format!("Wave {wave} of the {mode} of plan {plan} launched.")
        }
        RunEvent::WaveFailed => format!(
            "Wave {wave} of the {mode} of plan {plan} FAILED. Later waves will not launch{}.",
            match facts.mode {
                Some(Mode::Recovery) => " and DNS will not be changed",
                Some(Mode::Failback) => {
                    ", DNS stays on the recovery and the recovery instances keep running"
                }
                _ => "",
            }
        ),
        RunEvent::DnsCutOver if facts.mode == Some(Mode::Failback) => format!(
            "DNS of plan {plan} answers again what it answered before the recovery (Route 53 change in sync)."
        ),
        RunEvent::DnsCutOver => format!(
            "DNS of plan {plan} now points at the recovered servers (Route 53 change in sync)."
        ),
        RunEvent::Succeeded => format!("The DR {mode} of plan {plan} SUCCEEDED."),
        RunEvent::Failed => format!("The DR {mode} of plan {plan} FAILED."),
        RunEvent::DrillCleanedUp if facts.mode == Some(Mode::Failback) => format!(
            "The recovery instances of plan {plan} have been terminated after its failback."
        ),
        RunEvent::DrillCleanedUp => format!("The drill of plan {plan} has been cleaned up."),
        RunEvent::Paused => format!(
            "The DR {mode} of plan {plan} is PAUSED: nothing more launches until someone continues it."
        ),
    }
}

impl Facts<'_> {
    /// True when the run failed before any wave ran (validation, readiness, approval).
    pub(super) fn run_never_started(&self) -> bool {
        self.request.run.is_none()
            || self
                .records
                .report
                .as_ref()
                .is_some_and(|r| r.waves.iter().all(|w| w.launched == 0 && w.failed == 0))
    }
}
