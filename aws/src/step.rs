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
        let deadline = lambda_deadline(event.context.deadline);
        let span = tracing::info_span!("drplan", function, execution, plan, wave, request_id = %event.context.request_id);
        async move {
            // Boxed: SDK call chains make handler futures deep enough to overflow the
            // compiler's layout depth when nested inline in the runtime's future.
            let result = INVOCATION_DEADLINE
                .scope(deadline, Box::pin(handler(input)))
                .await;
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

tokio::task_local! {
    /// When Lambda stops this invocation, as an instant of this process's clock.
    static INVOCATION_DEADLINE: Option<std::time::Instant>;
}

/// The invocation's deadline (milliseconds since the epoch, from the Runtime API) on
/// the monotonic clock; `None` when it is not in the future or not given.
fn lambda_deadline(deadline_ms: u64) -> Option<std::time::Instant> {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_millis();
    let left = u128::from(deadline_ms).checked_sub(now_ms)?;
    Some(std::time::Instant::now() + std::time::Duration::from_millis(u64::try_from(left).ok()?))
}

/// How long the current invocation has before Lambda stops it, inside a handler that
/// [`serve`] runs; `None` outside one, or when the runtime gave no deadline.
pub fn time_left() -> Option<std::time::Duration> {
    INVOCATION_DEADLINE
        .try_with(|deadline| *deadline)
        .ok()
        .flatten()
        .map(|deadline| deadline.saturating_duration_since(std::time::Instant::now()))
}

/// What a step's input says about the run, for log lines.
pub trait LogContext {
    /// (execution name, plan, wave)
    fn log_context(&self) -> (String, String, String);
}

impl LogContext for drplan_core::contract::WaveStep {
    fn log_context(&self) -> (String, String, String) {
        (
            self.run.execution_name.clone(),
            self.run.plan.clone(),
            self.wave.name.clone(),
        )
    }
}
