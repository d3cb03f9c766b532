//! readiness: every 30 minutes evaluates every stored plan as discover would before a
//! run, keeps each plan's readiness at `readiness/PLAN.json`, writes the
//! `drplan/PlanReady` metric, e-mails on-call staff when a plan's readiness changes, and
//! keeps each plan's drill schedule in line with `drill.schedule`; when a plan is stored
//! or deleted, does so for that plan; when a drill schedule fires, starts the drill or
//! says why not (`drplan_aws::readiness_watch`).

use drplan_aws::bootstrap;
use drplan_aws::readiness_watch::ReadinessFunction;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let (clients, config) = bootstrap::start_with_config().await?;
    let function = ReadinessFunction::new(clients, &config)?;
    drplan_aws::step::serve("readiness", |request| function.handle(request)).await
}
