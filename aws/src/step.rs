//! Serving a typed handler as a Lambda function, with the run's identity on every log line.

use std::future::Future;

use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::Instrument;

use crate::FunctionError;

/// Runs `handler` for every event: parses the event into `I` (a clear
/// `drplan.InvalidInput` error if it does not fit), and logs inside a span that names
/// the execution, plan and wave, so every line carries them.
pub async fn serve<I, O, F, Fut>(
    function: &'static str,
    handler: F,
) -> Result<(), lambda_runtime::Error>
where
    I: DeserializeOwned + LogContext + Send,
    O: Serialize,
    F: Fn(I) -> Fut,
    Fut: Future<Output = Result<O, FunctionError>>,
{
    let handler = &handler;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        let input: I = serde_json::from_value(event.payload)
            .map_err(|e| Diagnostic::from(FunctionError::InvalidInput(format!("{function}: {e}"))))?;
        let (execution, plan, wave) = input.log_context();
        let span = tracing::info_span!("drplan", function, execution, plan, wave, request_id = %event.context.request_id);
        async move {
            // Boxed: SDK call chains make handler futures deep enough to overflow the
            // compiler's layout depth when nested inline in the runtime's future.
            let result = Box::pin(handler(input)).await;
            if let Err(error) = &result {
                tracing::error!(error_type = error.error_type(), %error, "step failed");
            }
            result.map_err(Diagnostic::from)
        }
        .instrument(span)
        .await
    }))
    .await
}

/// What a step's input says about the run, for log lines.
pub trait LogContext {
    /// (execution name, plan, wave)
    fn log_context(&self) -> (String, String, String);
}

impl LogContext for drplan_core::execution::WaveStep {
    fn log_context(&self) -> (String, String, String) {
        (
            self.run.execution_name.clone(),
            self.run.plan.clone(),
            self.wave.name.clone(),
        )
    }
}
