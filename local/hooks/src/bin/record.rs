//! A plan hook for the local cloud: records each call (the payload drplan sends, and
//! when) in the bucket at `hooks/EXECUTION/WAVE-PHASE.json`, so tests and rehearsals can
//! see that hooks ran, in order, with what.

use drplan_aws::{FunctionError, bootstrap};
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let clients = bootstrap::start().await?;
    let store = &clients.store;
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        let payload = event.payload;
        let field = |name: &str| payload[name].as_str().unwrap_or("unknown").to_owned();
        let key = format!(
            "hooks/{}/{}-{}.json",
            field("execution_name"),
            field("wave"),
            field("phase")
        );
        let record = json!({ "payload": payload, "at": jiff::Timestamp::now().to_string() });
        store
            .put_text(&key, record.to_string(), "application/json")
            .await?;
        Ok::<Value, FunctionError>(json!({ "recorded": key }))
    }))
    .await
}
