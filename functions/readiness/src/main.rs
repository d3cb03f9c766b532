//! readiness: on a schedule (every 30 minutes by default), evaluates every stored plan
//! as discover would before a run, keeps each plan's readiness at
//! `readiness/PLAN.json`, writes the `drplan/PlanReady` metric, and e-mails on-call
//! staff when a plan's readiness changes (`drplan_aws::readiness_watch`).

use drplan_aws::{bootstrap, readiness_watch, sns};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let clients = bootstrap::start().await?;
    let topic_arn = sns::topic_arn_from_env()?;
    drplan_aws::step::serve("readiness", |input| {
        readiness_watch::watch(&clients, &topic_arn, input)
    })
    .await
}
