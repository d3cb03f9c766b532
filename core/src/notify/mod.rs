//! On-call notifications: one message per run event (started, approval needed, wave
//! started / succeeded / failed, DNS cut over, succeeded, failed, drill cleaned up,
//! paused), composed for a person woken at 3 a.m. and filtered by SNS message attributes.
//!
//! Everything here is pure: the notify function reads the run's records from the
//! bucket, hands them in, and publishes what comes out.

mod compose;
mod text;

use serde::{Deserialize, Serialize};

use crate::contract::notice::RunEvent;
use crate::launch::WaveProgress;
use crate::report::Report;

pub use compose::compose;
pub use text::subject_line;

/// SNS refuses subjects of 100 characters or more.
pub const SUBJECT_MAX_CHARS: usize = 99;
/// Failing servers listed by name in one message; the rest are counted. A mail that
/// lists 4,000 servers is read by nobody (and would near SNS's 256 KiB limit).
pub const MAX_LISTED_SERVERS: usize = 20;
/// Readiness warnings listed in a STARTED message; the rest are counted.
const MAX_LISTED_WARNINGS: usize = crate::readiness::ISSUES_IN_STATE;
/// Error texts are cut here: a stack trace in a cause must not bury the message.
const MAX_ERROR_CHARS: usize = 2000;

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

/// A wave's launch outcome from the bucket (`launch.json`), as far as a message needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaveLaunchOutcome {
    pub progress: WaveProgress,
    pub job_ids: Vec<String>,
}

/// The run's records the handler read from the bucket for this event.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoredRecords {
    pub report: Option<Report>,
    pub wave_launch: Option<WaveLaunchOutcome>,
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

#[cfg(test)]
mod tests;
