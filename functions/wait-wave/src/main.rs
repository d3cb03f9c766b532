//! wait-wave: one poll of a wave's launch. A server succeeds only when DRS reports it
//! LAUNCHED, never because its job is COMPLETED; failed servers carry the job log's
//! rawError; a critical failure fails the wave, optional ones are reported; past the
//! wave's deadline, servers still launching count as failed.

use drplan_aws::bootstrap::Clients;
use drplan_aws::{FunctionError, bootstrap, wave};
use drplan_core::execution::WaveStep;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let clients = bootstrap::start().await?;
    drplan_aws::step::serve("wait-wave", |step| wait_wave(&clients, step)).await
}

async fn wait_wave(clients: &Clients, step: WaveStep) -> Result<WaveStep, FunctionError> {
    let WaveStep {
        run, wave, poll, ..
    } = step;
    let previous = poll.ok_or_else(|| {
        FunctionError::InvalidInput(
            "wait-wave needs the poll state that launch-wave returns".into(),
        )
    })?;
    let poll = wave::poll_wave(&clients.drs, &clients.store, &run, &wave, &previous).await?;
    tracing::info!(
        state = ?poll.state,
        launched = poll.launched,
        failed = poll.failed,
        pending = poll.pending,
        "wave polled"
    );
    Ok(WaveStep {
        run,
        wave,
        poll: Some(poll),
        health: None,
    })
}
