//! What every function does once, at cold start.

use aws_config::{BehaviorVersion, SdkConfig};

use crate::FunctionError;

/// JSON logs in Lambda's format when `AWS_LAMBDA_LOG_FORMAT=JSON` (the runtime's
/// convention), level from `AWS_LAMBDA_LOG_LEVEL` / `RUST_LOG`.
pub fn init_logging() {
    lambda_runtime::tracing::init_default_subscriber();
}

/// The shared SDK configuration. Honours `AWS_ENDPOINT_URL`, so the same binary talks
/// to AWS or to the local cloud. Built once in `main`: the first call pays the TLS
/// handshake, later invocations reuse the connection.
pub async fn aws_config() -> SdkConfig {
    aws_config::load_defaults(BehaviorVersion::latest()).await
}

/// The bucket that holds plans, run state and reports (`DRPLAN_BUCKET`).
pub fn bucket_from_env() -> Result<String, FunctionError> {
    std::env::var("DRPLAN_BUCKET")
        .ok()
        .filter(|b| !b.trim().is_empty())
        .ok_or_else(|| FunctionError::Configuration("DRPLAN_BUCKET is not set".into()))
}
