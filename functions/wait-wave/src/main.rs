//! wait-wave: one poll of a wave's launch. A server succeeds only when DRS reports it
//! LAUNCHED, never because its job is COMPLETED; failed servers carry the job log's
//! rawError; a critical failure fails the wave, optional ones are reported; past the
//! wave's deadline, servers still launching count as failed.

use drplan_aws::bootstrap::Clients;
use drplan_aws::step::LogContext;
use drplan_aws::{FunctionError, bootstrap, wave};
use drplan_core::execution::WaveStep;
use serde::Deserialize;
use serde_json::{Value, json};

/// A poll (the wave's step), or a park between polls: the state machine's
/// `waitForTaskToken` task hands over the token the trigger function will send back
/// when the wave's launch-result events are in.
#[derive(Deserialize)]
#[serde(untagged)]
enum WaitWaveInput {
    Park { park: WaveStep, task_token: String },
    Poll(WaveStep),
}

impl LogContext for WaitWaveInput {
    fn log_context(&self) -> (String, String, String) {
        match self {
            Self::Park { park, .. } => park.log_context(),
            Self::Poll(step) => step.log_context(),
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let clients = bootstrap::start().await?;
    let sfn = aws_sdk_sfn::Client::new(&clients.config);
    drplan_aws::step::serve("wait-wave", |input| async {
        match input {
            WaitWaveInput::Poll(step) => serde_json::to_value(wait_wave(&clients, step).await?)
                .map_err(|e| FunctionError::InvalidInput(e.to_string())),
            WaitWaveInput::Park { park, task_token } => {
                park_until_launched(&clients, &sfn, park, &task_token).await
            }
        }
    })
    .await
}

async fn park_until_launched(
    clients: &Clients,
    sfn: &aws_sdk_sfn::Client,
    step: WaveStep,
    task_token: &str,
) -> Result<Value, FunctionError> {
    let jobs = wave::park_wave(&clients.store, sfn, &step.run, &step.wave, task_token).await?;
    tracing::info!(
        jobs,
        "wave parked until its launch-result events or the poll delay"
    );
    Ok(json!({ "parked_jobs": jobs }))
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
    let poll = wave::poll_wave(
        &clients.drs,
        &clients.ec2,
        &clients.store,
        &run,
        &wave,
        &previous,
    )
    .await?;
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
