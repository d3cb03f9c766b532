//! tag-instances: tags the EC2 instances a wave recovered with the plan, wave,
//! execution, mode and source server, and names them after the source hostname, so a
//! person (and cleanup, and the health gate) can tell what a run launched
//! (`drplan_aws::wave::tag_wave`).

use drplan_aws::{bootstrap, wave};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let clients = bootstrap::start().await?;
    drplan_aws::step::serve("tag-instances", |step| wave::tag_wave(&clients, step)).await
}
