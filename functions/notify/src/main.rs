//! notify: publishes one SNS message per run event (started, approval needed, wave
//! started / succeeded / failed, DNS cut over, succeeded, failed, drill cleaned up,
//! paused) to the topic in `DRPLAN_TOPIC_ARN`. The message is composed in
//! `drplan_core::notify`; `drplan_aws::sns` reads the run's records it needs from the
//! bucket and publishes it.

use drplan_aws::{bootstrap, sns};
use drplan_core::contract::notice::NotificationRequest;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let clients = bootstrap::start().await?;
    let topic_arn = sns::topic_arn_from_env()?;
    drplan_aws::step::serve("notify", |request: NotificationRequest| {
        sns::notify_run_event(&clients.sns, &topic_arn, &clients.store, request)
    })
    .await
}
