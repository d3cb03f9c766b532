//! The one error type of drplan's functions, and the names Step Functions sees.

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use drplan_core::Issue;
use drplan_core::contract::ErrorName;
use lambda_runtime::Diagnostic;

#[derive(Debug, thiserror::Error)]
pub enum FunctionError {
    /// The event is not what the state machine sends.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The plan or the execution input has problems; nothing was launched.
    #[error("{}", issue_lines("the plan is not valid", .0))]
    InvalidPlan(Vec<Issue>),
    /// Servers cannot be launched now; nothing was launched.
    #[error("{}", issue_lines("the plan's servers are not ready", .0))]
    NotReady(Vec<Issue>),
    /// Another run holds the plan (one run per plan); nothing was launched.
    #[error("{}", issue_lines("the plan is busy", std::slice::from_ref(.0)))]
    PlanBusy(Issue),
    /// AWS throttled us beyond the SDK's own retries; the state machine retries later.
    #[error("{operation} was throttled: {message}")]
    Throttled {
        operation: &'static str,
        message: String,
    },
    /// An AWS call failed in a way that may pass (a 5xx answer, a timeout, a broken
    /// connection) beyond the SDK's own retries; the state machine retries the step.
    #[error("{operation} failed for now ({code}): {message}")]
    Transient {
        operation: &'static str,
        code: String,
        message: String,
    },
    /// An object in the bucket is larger than drplan reads; it was not read.
    #[error("{what} is {size} bytes, over the limit of {limit} bytes; it was not read")]
    TooLarge { what: String, size: u64, limit: u64 },
    /// An AWS call was refused or failed in a way a retry does not mend.
    #[error("{operation} failed ({code}): {message}")]
    AwsCallFailed {
        operation: &'static str,
        code: String,
        message: String,
    },
    /// A wave failed: a critical server did not launch or is not healthy.
    #[error("{0}")]
    WaveFailed(String),
    /// The function is not deployed right (a missing environment variable...).
    #[error("configuration: {0}")]
    Misconfigured(String),
}

/// Problems an error message lists at most: the message becomes the execution's error
/// cause and moves through the state (Step Functions' limit is 256 KiB for a payload),
/// so a plan with thousands of problems must not put each one in it.
pub const MAX_ISSUES_IN_ERROR: usize = 25;

fn issue_lines(title: &str, issues: &[Issue]) -> String {
    let mut text = format!("{title} ({} problems):", issues.len());
    for issue in issues.iter().take(MAX_ISSUES_IN_ERROR) {
        text.push_str(&format!("\n{}: {}", issue.path, issue.message));
    }
    if issues.len() > MAX_ISSUES_IN_ERROR {
        text.push_str(&format!(
            "\n... and {} more",
            issues.len() - MAX_ISSUES_IN_ERROR
        ));
    }
    text
}

impl FunctionError {
    /// The catalog's name for this error: what a state machine's Retry and Catch match.
    pub fn name(&self) -> ErrorName {
        match self {
            Self::InvalidInput(_) => ErrorName::InvalidInput,
            Self::InvalidPlan(_) => ErrorName::InvalidPlan,
            Self::NotReady(_) => ErrorName::NotReady,
            Self::PlanBusy(_) => ErrorName::PlanBusy,
            Self::Throttled { .. } => ErrorName::Throttled,
            Self::Transient { .. } => ErrorName::Transient,
            Self::TooLarge { .. } => ErrorName::TooLarge,
            Self::AwsCallFailed { .. } => ErrorName::AwsCallFailed,
            Self::WaveFailed(_) => ErrorName::WaveFailed,
            Self::Misconfigured(_) => ErrorName::Misconfigured,
        }
    }

    /// The error name Step Functions sees (`errorType`).
    pub fn error_type(&self) -> &'static str {
        self.name().as_str()
    }

    /// The AWS error code, for errors from an AWS call.
    pub fn aws_code(&self) -> Option<&str> {
        match self {
            Self::AwsCallFailed { code, .. } | Self::Transient { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Converts an SDK error, telling throttling and transient failures (worth a later
    /// retry of the step) apart from the rest.
    pub fn from_sdk<E>(operation: &'static str, error: SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let message = error
            .message()
            .map(str::to_owned)
            .unwrap_or_else(|| DisplayErrorContext(&error).to_string());
        let (code, status) = match &error {
            SdkError::ServiceError(service) => (
                error.code().unwrap_or("Unknown").to_owned(),
                Some(service.raw().status().as_u16()),
            ),
            SdkError::DispatchFailure(_) => ("DispatchFailure".to_owned(), None),
            SdkError::TimeoutError(_) => ("Timeout".to_owned(), None),
            SdkError::ResponseError(response) => (
                "ResponseError".to_owned(),
                Some(response.raw().status().as_u16()),
            ),
            _ => (error.code().unwrap_or("Unknown").to_owned(), None),
        };
        match classify(&code, status) {
            SdkFailure::Throttled => Self::Throttled { operation, message },
            SdkFailure::Transient => Self::Transient {
                operation,
                code,
                message,
            },
            SdkFailure::Permanent => Self::AwsCallFailed {
                operation,
                code,
                message,
            },
        }
    }
}

impl From<FunctionError> for Diagnostic {
    fn from(error: FunctionError) -> Self {
        Diagnostic {
            error_type: error.error_type().into(),
            error_message: error.to_string(),
        }
    }
}

/// What kind of failure an SDK error is.
#[derive(Debug, PartialEq, Eq)]
enum SdkFailure {
    Throttled,
    Transient,
    Permanent,
}

/// Throttling by its error code; transient when the request never got a proper answer
/// (no connection, a timeout, an unreadable response) or got a 5xx.
fn classify(code: &str, status: Option<u16>) -> SdkFailure {
    match code {
        "ThrottlingException"
        | "Throttling"
        | "TooManyRequestsException"
        | "RequestLimitExceeded"
        | "SlowDown" => SdkFailure::Throttled,
        "DispatchFailure"
        | "Timeout"
        | "ResponseError"
        | "InternalError"
        | "InternalFailure"
        | "InternalServerException"
        | "InternalServerError"
        | "ServiceUnavailable"
        | "ServiceUnavailableException" => SdkFailure::Transient,
        _ if status.is_some_and(|s| s >= 500) => SdkFailure::Transient,
        _ => SdkFailure::Permanent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_and_lost_connections_are_transient() {
        assert_eq!(classify("DispatchFailure", None), SdkFailure::Transient);
        assert_eq!(classify("Timeout", None), SdkFailure::Transient);
        assert_eq!(classify("Unknown", Some(502)), SdkFailure::Transient);
        assert_eq!(
            classify("InternalServerException", Some(500)),
            SdkFailure::Transient
        );
        assert_eq!(
            classify("ThrottlingException", Some(400)),
            SdkFailure::Throttled
        );
        assert_eq!(classify("SlowDown", Some(503)), SdkFailure::Throttled);
        assert_eq!(
            classify("AccessDeniedException", Some(403)),
            SdkFailure::Permanent
        );
        assert_eq!(
            classify("ConflictException", Some(409)),
            SdkFailure::Permanent
        );
    }

    #[test]
    fn an_error_with_thousands_of_problems_stays_short() {
        let issues: Vec<Issue> = (0..4000)
            .map(|i| Issue::new(format!("servers[{i}]"), "replication is STALLED"))
            .collect();
        let message = FunctionError::NotReady(issues).to_string();
        assert!(message.starts_with("the plan's servers are not ready (4000 problems):"));
        assert!(message.contains("servers[24]: replication is STALLED"));
        assert!(!message.contains("servers[25]:"));
        assert!(message.ends_with("... and 3975 more"), "{message}");
        assert!(message.len() < 4096, "{} bytes", message.len());
    }
}
