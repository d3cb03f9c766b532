//! health-check: one poll of a wave's health gate. Reads EC2's status checks of the
//! wave's recovered instances (instance running, system and instance checks ok), then
//! probes the wave's TCP and HTTP checks against each instance's private IP (its
//! loopback stand-in with `DRPLAN_PROBE_LOOPBACK=1`), writes every server's results to
//! the run's `health.json`, and returns the gate's state: SUCCEEDED when every critical
//! server is healthy, FAILED when a critical server is gone or still not healthy at the
//! wave's deadline, IN_PROGRESS with the next wait otherwise.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use drplan_aws::probe::{ProbeSettings, ProbeTarget, probe_all};
use drplan_aws::store::RunStore;
use drplan_aws::wave::WaveLaunchRecord;
use drplan_aws::{FunctionError, bootstrap, ec2, wave};
use drplan_core::execution::{HealthPoll, LaunchState, RunContext, WaveRef, WaveStep};
use drplan_core::health::{
    HealthVerdict, ServerHealth, ServerObservation, WaveHealthRecord, count, evaluate_server,
    passed_before, probe_address, ready_to_probe, wave_verdict,
};
use drplan_core::plan::Health;
use drplan_core::{HealthCheck, plan_from_value};
use jiff::{SignedDuration, Timestamp};

/// Time kept back from the Lambda's deadline for reading statuses and writing the
/// wave's health record after the probes.
const RECORD_MARGIN: std::time::Duration = std::time::Duration::from_secs(10);

/// Where an earlier poll probed the server.
fn previous_address(
    previous: Option<&WaveHealthRecord>,
    outcome: &drplan_core::launch::ServerOutcome,
) -> Option<String> {
    previous?
        .servers
        .iter()
        .find(|s| s.source_server_id == outcome.source_server_id)?
        .probe_address
        .clone()
}

struct Clients {
    drs: aws_sdk_drs::Client,
    ec2: aws_sdk_ec2::Client,
    store: RunStore,
    probes: ProbeSettings,
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    bootstrap::init_logging();
    let config = bootstrap::aws_config().await;
    let clients = Clients {
        drs: aws_sdk_drs::Client::new(&config),
        ec2: aws_sdk_ec2::Client::new(&config),
        store: RunStore::new(
            aws_sdk_s3::Client::new(&config),
            bootstrap::bucket_from_env()?,
        ),
        probes: ProbeSettings::from_env(),
    };
    drplan_aws::step::serve("health-check", |step| health_check(&clients, step)).await
}

async fn health_check(clients: &Clients, step: WaveStep) -> Result<WaveStep, FunctionError> {
    let WaveStep {
        run,
        wave,
        poll,
        health: previous,
    } = step;
    let now = Timestamp::now();
    let health = wave_health(&clients.store, &run, &wave).await?;
    let previous_record: Option<WaveHealthRecord> = match &previous {
        Some(_) => {
            clients
                .store
                .get_json(&run.wave_key(&wave, "health.json"))
                .await?
        }
        None => None,
    };
    let (attempt, deadline, started_at) = match &previous {
        Some(p) => (
            p.attempt + 1,
            p.deadline,
            previous_record.as_ref().map_or(now, |r| r.started_at),
        ),
        // The gate's wall clock starts with its first poll.
        None => (
            1,
            run.within_run(now + SignedDuration::from_mins(i64::from(health.timeout_minutes))),
            now,
        ),
    };

    let record: WaveLaunchRecord = clients
        .store
        .require_json(&run.wave_key(&wave, "launch.json"))
        .await?;
    let servers = launched_instances(clients, &record).await?;
    let ids: Vec<String> = servers.iter().filter_map(|s| s.1.clone()).collect();
    let statuses = ec2::instance_statuses(&clients.ec2, &ids).await?;
    let ips = ec2::instance_ips(&clients.ec2, &ids).await?;

    let probe_settings = clients.probes.for_wave(health.probe_address);
    let mut observations: Vec<ServerObservation> = Vec::with_capacity(servers.len());
    let mut probes = Vec::new();
    for (index, (outcome, instance)) in servers.iter().enumerate() {
        let status = instance.as_ref().and_then(|id| statuses.get(id)).cloned();
        let mut seen = ServerObservation {
            source_server_id: outcome.source_server_id.clone(),
            hostname: outcome.hostname.clone(),
            optional: outcome.optional,
            ec2_instance_id: instance.clone(),
            status,
            probe_address: None,
            probe_address_error: None,
            probes: Vec::new(),
            subnet_id: instance
                .as_ref()
                .and_then(|id| ips.get(id))
                .and_then(|found| found.subnet_id.clone()),
        };
        let carried = previous_record
            .as_ref()
            .and_then(|r| {
                r.servers
                    .iter()
                    .find(|s| s.source_server_id == outcome.source_server_id)
            })
            .and_then(|before| passed_before(before, instance.as_deref(), &health.checks));
        if ready_to_probe(seen.status.as_ref(), &health.checks) {
            match instance
                .as_ref()
                .and_then(|id| ips.get(id))
                .ok_or_else(|| "EC2 does not report the instance's addresses".to_owned())
                .and_then(|found| target_of(found, &probe_settings))
            {
                Ok(target) => {
                    let address = target.address().to_string();
                    let same_address = previous_address(previous_record.as_ref(), outcome)
                        .is_some_and(|before| before == address);
                    seen.probe_address = Some(address);
                    match carried {
                        // Passed on an earlier poll at this very address: not probed again.
                        Some(passed) if same_address => seen.probes = passed,
                        _ => {
                            for check in health
                                .checks
                                .iter()
                                .filter(|c| **c != HealthCheck::Ec2Status)
                            {
                                probes.push((index, target, check.clone()));
                            }
                        }
                    }
                }
                Err(error) => seen.probe_address_error = Some(error),
            }
        }
        observations.push(seen);
    }
    // Probes stop in time for this poll to write its record before Lambda's timeout;
    // what did not finish counts as not probed yet, and the next poll probes it.
    let probe_deadline =
        drplan_aws::step::time_left().map(|left| left.saturating_sub(RECORD_MARGIN));
    for (index, check, outcome) in probe_all(probes, probe_settings, probe_deadline).await {
        if let Some(seen) = observations.get_mut(index) {
            seen.probes.push((check, outcome));
        }
    }

    let healthy_since: HashMap<&str, Timestamp> = previous_record
        .iter()
        .flat_map(|r| r.servers.iter())
        .filter_map(|s| Some((s.source_server_id.as_str(), s.healthy_since?)))
        .collect();
    let results: Vec<ServerHealth> = observations
        .iter()
        .map(|seen| {
            let since = healthy_since.get(seen.source_server_id.as_str()).copied();
            evaluate_server(seen, &health.checks, now, since)
        })
        .collect();
    let verdict = wave_verdict(
        &results,
        now,
        deadline,
        health.timeout_minutes,
        run.timing.health_interval_seconds,
    );
    let counts = count(&results);
    let (state, wait_seconds, reason) = match &verdict {
        HealthVerdict::InProgress { wait_seconds } => {
            (LaunchState::InProgress, *wait_seconds, None)
        }
        HealthVerdict::Succeeded => (LaunchState::Succeeded, 0, None),
        HealthVerdict::Failed { reason } => (
            LaunchState::Failed,
            0,
            Some(format!("wave {:?}: {reason}", wave.name)),
        ),
    };
    for server in &results {
        tracing::info!(
            server = server.display_name(),
            state = ?server.state,
            checks = %server
                .checks
                .iter()
                .map(|c| format!("{c} [{:?}]", c.state))
                .collect::<Vec<_>>()
                .join("; "),
            "server health"
        );
    }
    let health_record = WaveHealthRecord {
        wave: wave.name.clone(),
        checks: health.checks.iter().map(ToString::to_string).collect(),
        timeout_minutes: health.timeout_minutes,
        started_at,
        deadline,
        checked_at: now,
        attempt,
        state: state_name(&state).into(),
        reason: reason.clone(),
        healthy_at: (state == LaunchState::Succeeded).then_some(now),
        probe_addressing: addressing_name(&probe_settings).into(),
        servers: results,
    };
    clients
        .store
        .put_json(&run.wave_key(&wave, "health.json"), &health_record)
        .await?;
    tracing::info!(
        state = ?state,
        attempt,
        healthy = counts.healthy,
        unhealthy = counts.unhealthy,
        pending = counts.pending,
        reason = reason.as_deref().unwrap_or(""),
        "wave health polled"
    );
    Ok(WaveStep {
        run,
        wave,
        poll,
        health: Some(HealthPoll {
            state,
            attempt,
            wait_seconds,
            deadline,
            healthy: counts.healthy,
            unhealthy: counts.unhealthy,
            pending: counts.pending,
            reason,
        }),
    })
}

fn state_name(state: &LaunchState) -> &'static str {
    match state {
        LaunchState::InProgress => "IN_PROGRESS",
        LaunchState::Succeeded => "SUCCEEDED",
        LaunchState::Failed => "FAILED",
    }
}

fn addressing_name(settings: &ProbeSettings) -> &'static str {
    match (
        settings.addressing.map_to_loopback,
        settings.addressing.probe_public_ip,
    ) {
        (true, false) => "loopback",
        (true, true) => "loopback-public-ip",
        (false, true) => "public-ip",
        (false, false) => "private-ip",
    }
}

/// The address to probe, checked against the loopback-only rule of local runs.
fn target_of(ips: &ec2::InstanceIps, settings: &ProbeSettings) -> Result<ProbeTarget, String> {
    let address: Ipv4Addr = probe_address(
        ips.private_ip.as_deref(),
        ips.public_ip.as_deref(),
        settings.addressing,
    )
    .map_err(|e| e.to_string())?;
    ProbeTarget::new(address, settings.addressing).map_err(|e| e.to_string())
}

/// The wave's health gate from the run's plan; plans without explicit waves (waves
/// from the `dr:wave` tag) get the default gate.
async fn wave_health(
    store: &RunStore,
    run: &RunContext,
    wave: &WaveRef,
) -> Result<Health, FunctionError> {
    let document: serde_json::Value = store.require_json(&run.key("plan.json")).await?;
    health_of_wave(&document, &wave.name)
}

fn health_of_wave(document: &serde_json::Value, wave: &str) -> Result<Health, FunctionError> {
    let plan = plan_from_value(document).map_err(FunctionError::InvalidPlan)?;
    match &plan.waves {
        None => Ok(Health::default()),
        Some(waves) => waves
            .iter()
            .find(|w| w.name == wave)
            .map(|w| w.health.clone())
            .ok_or_else(|| {
                FunctionError::InvalidInput(format!("the run's plan has no wave {wave:?}"))
            }),
    }
}

/// The wave's launched servers with this run's own EC2 instance of each: the one its
/// job launched, or none when DRS no longer has it (replaced by a later launch).
async fn launched_instances(
    clients: &Clients,
    record: &WaveLaunchRecord,
) -> Result<Vec<(drplan_core::launch::ServerOutcome, Option<String>)>, FunctionError> {
    let launched: Vec<_> = record.progress.launched().collect();
    let own = wave::own_instances(&clients.drs, &launched).await?;
    Ok(launched
        .into_iter()
        .map(|server| {
            let instance = own.get(&server.source_server_id).cloned();
            (server.clone(), instance)
        })
        .collect())
}

#[cfg(test)]
mod moto_test;

#[cfg(test)]
mod tests {
    use super::*;
    use drplan_core::health::ProbeAddressing;
    use serde_json::json;

    #[test]
    fn each_wave_gets_its_own_checks_and_tag_waves_get_the_default() {
        let plan = json!({
            "name": "shop", "rto_minutes": 30, "selector": {"dr:plan": "shop"},
            "waves": [
                {"name": "database", "selector": {"dr:wave": "db"},
                 "health": {"checks": ["ec2-status", "tcp:5432"], "timeout_minutes": 15}},
                {"name": "app", "selector": {"dr:wave": "app"}, "depends_on": ["database"]}
            ]
        });
        let db = health_of_wave(&plan, "database").unwrap();
        assert_eq!(
            db.checks,
            [HealthCheck::Ec2Status, HealthCheck::Tcp { port: 5432 }]
        );
        assert_eq!(db.timeout_minutes, 15);
        assert_eq!(health_of_wave(&plan, "app").unwrap(), Health::default());
        assert!(matches!(
            health_of_wave(&plan, "web"),
            Err(FunctionError::InvalidInput(_))
        ));
        let by_tag = json!({"name": "shop", "rto_minutes": 30, "selector": {"dr:plan": "shop"}});
        assert_eq!(health_of_wave(&by_tag, "db").unwrap(), Health::default());
    }

    #[test]
    fn local_runs_probe_the_mapped_loopback_address_and_aws_runs_the_private_ip() {
        let ips = ec2::InstanceIps {
            private_ip: Some("172.31.9.20".into()),
            public_ip: None,
            subnet_id: None,
        };
        let local = ProbeSettings {
            addressing: ProbeAddressing {
                probe_public_ip: false,
                map_to_loopback: true,
            },
            ..ProbeSettings::default()
        };
        assert_eq!(
            target_of(&ips, &local).map(ProbeTarget::address),
            Ok(Ipv4Addr::new(127, 31, 9, 20))
        );
        assert_eq!(
            target_of(&ips, &ProbeSettings::default()).map(ProbeTarget::address),
            Ok(Ipv4Addr::new(172, 31, 9, 20))
        );
        assert_eq!(
            target_of(&ec2::InstanceIps::default(), &local),
            Err("the instance has no private IPv4 address".into())
        );
    }
}
