//! One poll of a wave's health gate (the health-check function). Reads EC2's status
//! checks of the wave's recovered instances (instance running, system and instance
//! checks ok), then probes the wave's TCP and HTTP checks against each instance's
//! private IP (its loopback stand-in with `DRPLAN_PROBE_LOOPBACK=1`), writes every
//! server's results to the run's `health.json`, and returns the gate's state: SUCCEEDED
//! when every critical server is healthy, FAILED when a critical server is gone or
//! still not healthy at the wave's deadline, IN_PROGRESS with the next wait otherwise.
//! When the checks pass and the wave names target groups for the run's mode, its
//! healthy instances are registered and their target health joins the gate
//! (`crate::targets`). What the results mean is decided in `drplan_core::health` and
//! `drplan_core::targets`.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use drplan_core::contract::{RunContext, WaveStep};
use drplan_core::health::{
    Ec2Status, GateClock, ProbePlan, ServerHealth, ServerObservation, WaveHealthRecord,
    conclude_poll, evaluate_servers, gate_for_run, gate_of_wave, plan_probes, probe_address,
    ready_to_probe,
};
use drplan_core::launch::ServerOutcome;
#[cfg(test)]
use drplan_core::plan::Health;
use drplan_core::{HealthCheck, Plan, plan_from_value};
use jiff::Timestamp;

use crate::ec2::{self, InstanceIps};
use crate::probe::{ProbeSettings, ProbeTarget, probe_all};
use crate::store::RunStore;
use crate::wave::{self, WaveLaunchRecord};
use crate::{FunctionError, failback, step, targets};

/// Time kept back from the Lambda's deadline for reading statuses and writing the
/// wave's health record after the probes.
const RECORD_MARGIN: std::time::Duration = std::time::Duration::from_secs(10);

/// The health-check step: [`poll_health_gate`] with the run's clients (the origin
/// Region's DRS and EC2 in a failback of EC2 sources).
pub async fn check_wave(
    clients: &crate::bootstrap::Clients,
    probes: &ProbeSettings,
    step: WaveStep,
) -> Result<WaveStep, FunctionError> {
    let clients = clients.for_run(&step.run);
    poll_health_gate(
        &clients.drs,
        &clients.ec2,
        &clients.elb,
        &clients.store,
        probes,
        step,
    )
    .await
}

/// One poll of the wave's health gate: returns the step with its `health` state.
pub async fn poll_health_gate(
    drs: &aws_sdk_drs::Client,
    ec2_client: &aws_sdk_ec2::Client,
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    store: &RunStore,
    probes: &ProbeSettings,
    step: WaveStep,
) -> Result<WaveStep, FunctionError> {
    let WaveStep {
        run,
        wave,
        poll,
        health: previous,
    } = step;
    let now = Timestamp::now();
    let plan = run_plan(store, &run).await?;
    let gate = gate_of_wave(&plan, &wave.name).ok_or_else(|| {
        FunctionError::InvalidInput(format!("the run's plan has no wave {:?}", wave.name))
    })?;
    let gate = gate_for_run(gate, &run);
    let previous_record: Option<WaveHealthRecord> = match &previous {
        Some(_) => store.read(&run.records().wave(&wave).health()).await?,
        None => None,
    };
    let clock = GateClock::of_poll(
        previous.as_ref(),
        previous_record.as_ref(),
        &run,
        gate.timeout_minutes,
        now,
    );

    let record: WaveLaunchRecord = store.require(&run.records().wave(&wave).launch()).await?;
    let (servers, statuses, ips) = if run.launches_in_aws() {
        let servers = launched_instances(drs, &record).await?;
        let ids: Vec<String> = servers.iter().filter_map(|s| s.1.clone()).collect();
        let statuses = ec2::instance_statuses(ec2_client, &ids).await?;
        let ips = ec2::instance_ips(ec2_client, &ids).await?;
        (servers, statuses, ips)
    } else {
        failed_back_machines(drs, &record).await?
    };

    let probe_settings = probes.for_wave(gate.probe_address);
    let (mut observations, probes) = observe(
        &servers,
        &statuses,
        &ips,
        previous_record.as_ref(),
        &gate.checks,
        &probe_settings,
    );
    if !run.launches_in_aws() {
        // Keyed by source server above; a failed-back machine has no EC2 instance.
        for seen in &mut observations {
            seen.ec2_instance_id = None;
        }
    }
    // Probes stop in time for this poll to write its record before Lambda's timeout;
    // what did not finish counts as not probed yet, and the next poll probes it.
    let probe_deadline = step::time_left().map(|left| left.saturating_sub(RECORD_MARGIN));
    for (index, check, outcome) in probe_all(probes, probe_settings, probe_deadline).await {
        if let Some(seen) = observations.get_mut(index) {
            seen.probes.push((check, outcome));
        }
    }

    let results = evaluate_servers(&observations, &gate.checks, now, previous_record.as_ref());
    log_servers(&results);
    let (mut health_record, mut health) = conclude_poll(
        &wave.name,
        &gate,
        clock,
        probe_settings.addressing,
        run.timing.health_interval_seconds,
        now,
        results,
    );
    if !run.launches_in_aws() {
        health_record.probe_addressing = if probe_settings.addressing.map_to_loopback {
            "loopback-source-address"
        } else {
            "source-address"
        }
        .into();
    }
    // Checks passed: the wave's target groups (if any for this mode) must report its
    // instances healthy too before the gate passes.
    targets::gate_on_target_health(
        elb,
        store,
        &run,
        &wave,
        &plan,
        &mut health_record,
        &mut health,
        now,
    )
    .await?;
    store
        .write(&run.records().wave(&wave).health(), &health_record)
        .await?;
    tracing::info!(
        state = ?health.state,
        attempt = health.attempt,
        healthy = health.healthy,
        unhealthy = health.unhealthy,
        pending = health.pending,
        reason = health.reason.as_deref().unwrap_or(""),
        "wave health polled"
    );
    Ok(WaveStep {
        run,
        wave,
        poll,
        health: Some(health),
    })
}

/// What this poll sees of each launched server before probing, and the probes to run
/// (keyed by the server's index in the observations).
fn observe(
    servers: &[(ServerOutcome, Option<String>)],
    statuses: &HashMap<String, Ec2Status>,
    ips: &HashMap<String, InstanceIps>,
    previous: Option<&WaveHealthRecord>,
    checks: &[HealthCheck],
    settings: &ProbeSettings,
) -> (
    Vec<ServerObservation>,
    Vec<(usize, ProbeTarget, HealthCheck)>,
) {
    let mut observations = Vec::with_capacity(servers.len());
    let mut probes = Vec::new();
    for (index, (outcome, instance)) in servers.iter().enumerate() {
        let found = instance.as_ref().and_then(|id| ips.get(id));
        let mut seen = ServerObservation {
            source_server_id: outcome.source_server_id.clone(),
            hostname: outcome.hostname.clone(),
            optional: outcome.optional,
            ec2_instance_id: instance.clone(),
            status: instance.as_ref().and_then(|id| statuses.get(id)).cloned(),
            probe_address: None,
            probe_address_error: None,
            probes: Vec::new(),
            subnet_id: found.and_then(|found| found.subnet_id.clone()),
        };
        if ready_to_probe(seen.status.as_ref(), checks) {
            match found
                .ok_or_else(|| "EC2 does not report the instance's addresses".to_owned())
                .and_then(|found| target_of(found, settings))
            {
                Ok(target) => {
                    let address = target.address().to_string();
                    let before = previous.and_then(|r| r.server(&outcome.source_server_id));
                    match plan_probes(before, instance.as_deref(), &address, checks) {
                        ProbePlan::Carry(passed) => seen.probes = passed,
                        ProbePlan::Probe(to_probe) => {
                            probes.extend(to_probe.into_iter().map(|c| (index, target, c)));
                        }
                    }
                    seen.probe_address = Some(address);
                }
                Err(error) => seen.probe_address_error = Some(error),
            }
        }
        observations.push(seen);
    }
    (observations, probes)
}

fn log_servers(results: &[ServerHealth]) {
    for server in results {
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
}

/// The address to probe, checked against the loopback-only rule of local runs.
fn target_of(ips: &InstanceIps, settings: &ProbeSettings) -> Result<ProbeTarget, String> {
    let address: Ipv4Addr = probe_address(
        ips.private_ip.as_deref(),
        ips.public_ip.as_deref(),
        settings.addressing,
    )
    .map_err(|e| e.to_string())?;
    ProbeTarget::new(address, settings.addressing).map_err(|e| e.to_string())
}

/// The run's plan, as discover stored it.
async fn run_plan(store: &RunStore, run: &RunContext) -> Result<Plan, FunctionError> {
    let document: serde_json::Value = store.require(&run.records().plan_document()).await?;
    plan_from_value(&document).map_err(FunctionError::InvalidPlan)
}

#[cfg(test)]
fn health_of_wave(document: &serde_json::Value, wave: &str) -> Result<Health, FunctionError> {
    let plan = plan_from_value(document).map_err(FunctionError::InvalidPlan)?;
    gate_of_wave(&plan, wave)
        .ok_or_else(|| FunctionError::InvalidInput(format!("the run's plan has no wave {wave:?}")))
}

/// A failback wave's servers that DRS reports failed back, keyed by source server ID,
/// each "running" (see [`Ec2Status::failed_back`]) at the address DRS reports for the
/// source machine.
async fn failed_back_machines(
    drs: &aws_sdk_drs::Client,
    record: &WaveLaunchRecord,
) -> Result<
    (
        Vec<(ServerOutcome, Option<String>)>,
        HashMap<String, Ec2Status>,
        HashMap<String, InstanceIps>,
    ),
    FunctionError,
> {
    let launched: Vec<ServerOutcome> = record.progress.launched().cloned().collect();
    let ids: Vec<String> = launched
        .iter()
        .map(|s| s.source_server_id.clone())
        .collect();
    let addresses = failback::source_addresses(drs, &ids).await?;
    let statuses = ids
        .iter()
        .map(|id| (id.clone(), Ec2Status::failed_back()))
        .collect();
    let ips = addresses
        .into_iter()
        .map(|(id, address)| {
            let ips = InstanceIps {
                private_ip: Some(address),
                public_ip: None,
                subnet_id: None,
            };
            (id, ips)
        })
        .collect();
    let servers = launched
        .into_iter()
        .map(|server| {
            let key = server.source_server_id.clone();
            (server, Some(key))
        })
        .collect();
    Ok((servers, statuses, ips))
}

/// The wave's launched servers with this run's own EC2 instance of each: the one its
/// job launched, or none when DRS no longer has it (replaced by a later launch).
async fn launched_instances(
    drs: &aws_sdk_drs::Client,
    record: &WaveLaunchRecord,
) -> Result<Vec<(ServerOutcome, Option<String>)>, FunctionError> {
    let launched: Vec<_> = record.progress.launched().collect();
    let own = wave::own_instances(drs, &launched).await?;
    Ok(launched
        .into_iter()
        .map(|server| {
            let instance = own.get(&server.source_server_id).cloned();
            (server.clone(), instance)
        })
        .collect())
}

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
        let ips = InstanceIps {
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
            target_of(&InstanceIps::default(), &local),
            Err("the instance has no private IPv4 address".into())
        );
    }
}
