//! launch-wave: StartRecovery for a wave's servers, chunked by the DRS quotas, drill
//! or recovery, latest or chosen point in time. Jobs carry the execution and wave
//! tags, so a retried invocation finds its own jobs and launches nothing twice.

use drplan_aws::bootstrap::Clients;
use drplan_aws::{FunctionError, bootstrap, wave};
use drplan_core::contract::{LaunchPoll, LaunchState, WaveStep};
use jiff::{SignedDuration, Timestamp};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let clients = bootstrap::start().await?;
    drplan_aws::step::serve("launch-wave", |step| launch_wave(&clients, step)).await
}

async fn launch_wave(clients: &Clients, step: WaveStep) -> Result<WaveStep, FunctionError> {
    let WaveStep { run, wave, .. } = step;
    let servers = wave::wave_servers(&clients.store, &run, &wave).await?;
    let jobs = wave::jobs_of_wave(&clients.drs, &run, &wave).await?;
    // A drill launches from drill versions of the servers' launch templates (the drill
    // subnet); the wave's last poll puts the previous versions back.
    wave::isolate_drill_wave(
        &clients.drs,
        &clients.ec2,
        &clients.store,
        &run,
        &wave,
        &servers,
    )
    .await?;
    let launched = wave::launch_pending_servers(&clients.drs, &run, &wave, &servers, &jobs).await?;
    // What the wave waits for, so that its first wait can be cut short by DRS's
    // launch-result events.
    let jobs = wave::jobs_of_wave(&clients.drs, &run, &wave).await?;
    let progress = drplan_core::launch::evaluate_wave(&servers, &jobs, &[]);
    wave::record_pending(&clients.store, &run, &wave, &progress).await?;
    tracing::info!(
        launched,
        already_in_jobs = servers.len() - launched,
        "wave launched"
    );
    let deadline = run.within_run(
        Timestamp::now() + SignedDuration::from_mins(i64::from(run.timing.launch_timeout_minutes)),
    );
    let poll = LaunchPoll {
        state: LaunchState::InProgress,
        attempt: 0,
        wait_seconds: run.timing.poll_delay_seconds(0),
        deadline,
        launched: 0,
        failed: 0,
        pending: servers.len(),
        reason: None,
    };
    Ok(WaveStep {
        run,
        wave,
        poll: Some(poll),
        health: None,
    })
}
