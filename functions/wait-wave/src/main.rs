//! wait-wave: one poll of a wave's launch, or a park until its launch-result events
//! (`drplan_aws::wave::wait_for_wave`). A server succeeds only when DRS reports it
//! LAUNCHED, never because its job is COMPLETED; failed servers carry the job log's
//! rawError; a critical failure fails the wave, optional ones are reported; past the
//! wave's deadline, servers still launching count as failed.

use drplan_aws::{bootstrap, wave};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let clients = bootstrap::start().await?;
    drplan_aws::step::serve("wait-wave", |input| wave::wait_for_wave(&clients, input)).await
}
