//! The error catalog: every `drplan.*` error name a run can end with or a state machine
//! matches on, who raises it, and whether a step that raised it is tried again. The
//! functions' error type maps onto it; the state machines' Retry and Catch may name
//! only these (a test reads `statemachines/*.asl.json`), and the standard Retry of
//! every function Task is built from it ([`standard_retry`]).

use serde_json::{Value, json};

/// A `drplan.*` error name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorName {
    /// The event a function received is not what the state machine sends.
    InvalidInput,
    /// The plan or the execution input has problems; nothing was launched.
    InvalidPlan,
    /// Servers cannot be launched now (replication, capacity, isolation); nothing was
    /// launched.
    NotReady,
    /// Another run holds the plan (one run per plan); nothing was launched.
    PlanBusy,
    /// A wave failed: a critical server did not launch or is not healthy.
    WaveFailed,
    /// A function is not deployed right (a missing environment variable...).
    Misconfigured,
    /// An AWS call was refused or failed in a way a retry does not mend (access denied,
    /// a validation error, a missing resource).
    AwsCallFailed,
    /// An object in the bucket is larger than drplan reads; it was not read.
    TooLarge,
    /// AWS throttled drplan beyond the SDK's own retries; the step is tried later.
    Throttled,
    /// An AWS call failed in a way that may pass (5xx, timeout, lost connection); the
    /// step is tried again.
    Transient,
    /// The state machine ends a run whose wave did not pass its health gate.
    WaveUnhealthy,
    /// The state machine ends a run whose pre or post hook failed.
    HookFailed,
    /// A person declined the run at its approval (`drplan decline`, or SendTaskFailure).
    Declined,
    /// Nobody approved in time; nothing was launched.
    ApprovalTimedOut,
    /// A recovery stopped the plan's running drill (StopExecution's error).
    StoppedByRecovery,
    /// `drplan bench` stopped a run that did not end in time (StopExecution's error).
    BenchTimeout,
}

/// Who puts an error name on a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RaisedBy {
    /// A drplan function (its `errorType`).
    Function,
    /// The state machine itself (a Fail or Pass state).
    StateMachine,
    /// A person or drplan, from outside the run (SendTaskFailure, StopExecution).
    Outside,
}

/// Whether a function step that raised an error is tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryPolicy {
    /// A verdict: trying again gives the same answer (or launches twice).
    Never,
    /// Later, with a long backoff.
    WhenThrottled,
    /// Soon, a few times.
    WhenTransient,
    /// Not raised by functions.
    NotApplicable,
}

impl ErrorName {
    pub const ALL: [ErrorName; 16] = [
        Self::InvalidInput,
        Self::InvalidPlan,
        Self::NotReady,
        Self::PlanBusy,
        Self::WaveFailed,
        Self::Misconfigured,
        Self::AwsCallFailed,
        Self::TooLarge,
        Self::Throttled,
        Self::Transient,
        Self::WaveUnhealthy,
        Self::HookFailed,
        Self::Declined,
        Self::ApprovalTimedOut,
        Self::StoppedByRecovery,
        Self::BenchTimeout,
    ];

    /// The name Step Functions sees.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InvalidInput => "drplan.InvalidInput",
            Self::InvalidPlan => "drplan.InvalidPlan",
            Self::NotReady => "drplan.NotReady",
            Self::PlanBusy => "drplan.PlanBusy",
            Self::WaveFailed => "drplan.WaveFailed",
            Self::Misconfigured => "drplan.Misconfigured",
            Self::AwsCallFailed => "drplan.AwsCallFailed",
            Self::TooLarge => "drplan.TooLarge",
            Self::Throttled => "drplan.Throttled",
            Self::Transient => "drplan.Transient",
            Self::WaveUnhealthy => "drplan.WaveUnhealthy",
            Self::HookFailed => "drplan.HookFailed",
            Self::Declined => "drplan.Declined",
            Self::ApprovalTimedOut => "drplan.ApprovalTimedOut",
            Self::StoppedByRecovery => "drplan.StoppedByRecovery",
            Self::BenchTimeout => "drplan.BenchTimeout",
        }
    }

    /// The catalog's name for `name`, if it is one.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == name)
    }

    pub const fn raised_by(self) -> RaisedBy {
        match self {
            Self::InvalidInput
            | Self::InvalidPlan
            | Self::NotReady
            | Self::PlanBusy
            | Self::WaveFailed
            | Self::Misconfigured
            | Self::AwsCallFailed
            | Self::TooLarge
            | Self::Throttled
            | Self::Transient => RaisedBy::Function,
            Self::WaveUnhealthy | Self::HookFailed | Self::ApprovalTimedOut => {
                RaisedBy::StateMachine
            }
            Self::Declined | Self::StoppedByRecovery | Self::BenchTimeout => RaisedBy::Outside,
        }
    }

    pub const fn retry(self) -> RetryPolicy {
        match self {
            Self::Throttled => RetryPolicy::WhenThrottled,
            Self::Transient => RetryPolicy::WhenTransient,
            _ if matches!(self.raised_by(), RaisedBy::Function) => RetryPolicy::Never,
            _ => RetryPolicy::NotApplicable,
        }
    }
}

impl std::fmt::Display for ErrorName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Lambda's own errors when the invocation itself failed: the function did not run.
pub const LAMBDA_SERVICE_ERRORS: [&str; 4] = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
];

/// What a crashed or timed-out function looks like to Step Functions (an error without
/// drplan's name); retried like [`ErrorName::Transient`].
pub const CRASH_ERRORS: [&str; 3] = ["Sandbox.Timedout", "Lambda.Unknown", "States.TaskFailed"];

fn names_with(policy: RetryPolicy) -> Vec<&'static str> {
    ErrorName::ALL
        .into_iter()
        .filter(|e| e.retry() == policy)
        .map(ErrorName::as_str)
        .collect()
}

/// The Retry every Task that invokes a drplan function carries, in this order: verdicts
/// never (Step Functions applies the first retrier whose ErrorEquals matches, so this
/// one shields them from the catch-alls below); Lambda's own invocation errors; drplan's
/// throttling with a long, jittered backoff; transient failures and crashes a few times.
pub fn standard_retry() -> Value {
    let mut transient = names_with(RetryPolicy::WhenTransient);
    transient.extend(CRASH_ERRORS);
    json!([
        {"ErrorEquals": names_with(RetryPolicy::Never), "MaxAttempts": 0},
        {"ErrorEquals": LAMBDA_SERVICE_ERRORS, "IntervalSeconds": 1, "MaxAttempts": 3, "BackoffRate": 2},
        {"ErrorEquals": names_with(RetryPolicy::WhenThrottled), "IntervalSeconds": 2, "MaxAttempts": 6,
         "BackoffRate": 2, "MaxDelaySeconds": 60, "JitterStrategy": "FULL"},
        {"ErrorEquals": transient, "IntervalSeconds": 2, "MaxAttempts": 3, "BackoffRate": 2,
         "MaxDelaySeconds": 30, "JitterStrategy": "FULL"}
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_reads_back_and_is_unique() {
        for error in ErrorName::ALL {
            assert_eq!(ErrorName::parse(error.as_str()), Some(error));
            assert!(error.as_str().starts_with("drplan."));
        }
        let mut names: Vec<_> = ErrorName::ALL.iter().map(|e| e.as_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), ErrorName::ALL.len());
        assert_eq!(ErrorName::parse("drplan.AwsError"), None);
    }

    #[test]
    fn verdicts_are_never_retried_and_transient_failures_are() {
        let retry = standard_retry();
        let never = retry[0]["ErrorEquals"].as_array().unwrap();
        for verdict in [
            "drplan.InvalidPlan",
            "drplan.NotReady",
            "drplan.PlanBusy",
            "drplan.WaveFailed",
        ] {
            assert!(never.iter().any(|e| e == verdict), "{verdict}");
        }
        assert!(!never.iter().any(|e| e == "drplan.Transient"));
        assert_eq!(retry[0]["MaxAttempts"], 0);
        assert_eq!(retry[2]["ErrorEquals"], json!(["drplan.Throttled"]));
        assert_eq!(
            retry[3]["ErrorEquals"],
            json!([
                "drplan.Transient",
                "Sandbox.Timedout",
                "Lambda.Unknown",
                "States.TaskFailed"
            ])
        );
    }
}
