//! A plan hook for the local cloud that always fails, as a broken warm-up script would:
//! the wave that calls it must fail, and nothing after it may launch.

use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        let wave = event.payload["wave"]
            .as_str()
            .unwrap_or("unknown")
            .to_owned();
        Err::<Value, Diagnostic>(Diagnostic {
            error_type: "CacheWarmupFailed".into(),
            error_message: format!("warming the cache for wave {wave} failed: connection refused"),
        })
    }))
    .await
}
