//! launch-wave: StartRecovery for a wave's servers, chunked by the DRS quotas, drill
//! or recovery, latest or chosen point in time (`drplan_aws::wave::launch_wave`). Jobs
//! carry the execution and wave tags, so a retried invocation finds its own jobs and
//! launches nothing twice.

use drplan_aws::{bootstrap, wave};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let clients = bootstrap::start().await?;
    drplan_aws::step::serve("launch-wave", |step| wave::launch_wave(&clients, step)).await
}
