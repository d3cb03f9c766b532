//! The one error type of drplan's functions, and the names Step Functions sees.

use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use drplan_core::Issue;
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
    /// An AWS call failed.
    #[error("{operation} failed ({code}): {message}")]
    Aws {
        operation: &'static str,
        code: String,
        message: String,
    },
    /// A wave failed: a critical server did not launch or is not healthy.
    #[error("{0}")]
    WaveFailed(String),
    /// The function is not deployed right (a missing environment variable...).
    #[error("configuration: {0}")]
    Configuration(String),
}

fn issue_lines(title: &str, issues: &[Issue]) -> String {
    let mut text = format!("{title} ({} problems):", issues.len());
    for issue in issues {
        text.push_str(&format!("\n{}: {}", issue.path, issue.message));
    }
    text
}

impl FunctionError {
    /// The error name a state machine's Retry and Catch match on.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::InvalidInput(_) => "drplan.InvalidInput",
            Self::InvalidPlan(_) => "drplan.InvalidPlan",
            Self::NotReady(_) => "drplan.NotReady",
            Self::PlanBusy(_) => "drplan.PlanBusy",
            Self::Throttled { .. } => "drplan.Throttled",
            Self::Aws { .. } => "drplan.AwsError",
            Self::WaveFailed(_) => "drplan.WaveFailed",
            Self::Configuration(_) => "drplan.Configuration",
        }
    }

    /// Converts an SDK error, telling throttling (worth a later retry) apart.
    pub fn from_sdk<E>(operation: &'static str, error: E) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error,
    {
        let code = error.code().unwrap_or("Unknown").to_owned();
        let message = error
            .message()
            .map(str::to_owned)
            .unwrap_or_else(|| DisplayErrorContext(&error).to_string());
        if matches!(
            code.as_str(),
            "ThrottlingException"
                | "Throttling"
                | "TooManyRequestsException"
                | "RequestLimitExceeded"
        ) {
            Self::Throttled { operation, message }
        } else {
            Self::Aws {
                operation,
                code,
                message,
            }
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
