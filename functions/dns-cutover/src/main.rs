//! dns-cutover: in recovery mode, after every wave is healthy, points the plan's records
//! at the recovered instances in one Route 53 change batch, keeps what they held before
//! (for rollback and failback) and follows the change until it is INSYNC
//! (`drplan_aws::cutover`). Called again by the state machine until it answers INSYNC
//! (or SKIPPED for a plan without DNS).

use drplan_aws::{bootstrap, cutover};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let clients = bootstrap::start().await?;
    drplan_aws::step::serve("dns-cutover", |step| cutover::cut_over_dns(&clients, step)).await
}
