//! A recovery's DNS cutover (the dns-cutover function): after every wave is healthy,
//! points the plan's records at the recovered instances in one Route 53 change batch
//! (an A record at their public IPv4 addresses in a public zone, their private ones in a
//! private zone, unless the record says which), keeps what they held before (for
//! rollback and failback) and follows the change until it is INSYNC. The records to
//! write are decided in `drplan_core::dns`. A record may point at an alias target (the
//! recovery load balancer) or fixed values instead. With `dns.mode: data-plane` it
//! flips the failover alarm instead, and makes no Route 53 call
//! (`drplan_core::dns_failover`).

use std::collections::BTreeMap;

use drplan_core::contract::step::{DnsPoll, DnsState, DnsStep};
use drplan_core::contract::{RunContext, WaveRef};
use drplan_core::dns::{
    CONTROL_PLANE_PATH, DATA_PLANE_PATH, DnsCutover, InstanceAddress, RecordChange,
    desired_records, healthy_servers, planned_target,
};
use drplan_core::dns_failover::{
    AlarmFlip, DnsPrepared, alarm_change_id, alarm_of_change_id, prepared_mismatches,
};
use drplan_core::failback::run::FailbackRecord;
use drplan_core::health::WaveHealthRecord;
use drplan_core::plan::{Dns, DnsMode};
use drplan_core::{Issue, Mode};
use jiff::Timestamp;

use crate::bootstrap::Clients;
use crate::step::LogContext;
use crate::wave::WaveLaunchRecord;
use crate::{FunctionError, ec2, failover, route53, wave};

impl LogContext for DnsStep {
    fn log_context(&self) -> (String, String, String) {
        (
            self.run.execution_name.clone(),
            self.run.plan.clone(),
            String::new(),
        )
    }
}

/// One call of the dns-cutover step: submits the change (START), follows it (PENDING),
/// or answers as it is (INSYNC, SKIPPED).
pub async fn cut_over_dns(clients: &Clients, step: DnsStep) -> Result<DnsStep, FunctionError> {
    let DnsStep { run, layers, dns } = step;
    let next = match dns.state {
        DnsState::Start => submit(clients, &run, &layers).await?,
        DnsState::Pending => follow(clients, &run, dns).await?,
        DnsState::Insync | DnsState::Skipped => dns,
    };
    Ok(DnsStep {
        run,
        layers,
        dns: next,
    })
}

async fn submit(
    clients: &Clients,
    run: &RunContext,
    layers: &[Vec<WaveRef>],
) -> Result<DnsPoll, FunctionError> {
    // Drills never touch production records, whatever the state machine asks.
    match run.mode {
        Mode::Drill => {
            return Err(FunctionError::InvalidInput(
                "a drill never changes DNS".into(),
            ));
        }
        Mode::Failback => return submit_failback(clients, run).await,
        Mode::Recovery => {}
    }
    let plan_document: serde_json::Value = clients
        .store
        .require(&run.records().plan_document())
        .await?;
    let plan = drplan_core::plan_from_value(&plan_document).map_err(FunctionError::InvalidPlan)?;
    let Some(mut dns) = plan.dns else {
        return Ok(DnsPoll::skipped());
    };
    // Records that follow a wave this run does not run (skipped, or outside its
    // only_waves) keep what they hold: nothing of that wave was recovered by this run.
    let in_run: std::collections::BTreeSet<&str> =
        layers.iter().flatten().map(|w| w.name.as_str()).collect();
    let (kept, unchanged): (Vec<_>, Vec<_>) = dns
        .records
        .into_iter()
        .partition(|r| in_run.contains(r.from_wave.as_str()));
    let unchanged: Vec<String> = unchanged.into_iter().map(|r| r.name).collect();
    if !unchanged.is_empty() {
        tracing::warn!(
            records = unchanged.join(", "),
            "records of waves not in this run are left as they are"
        );
    }
    if kept.is_empty() {
        return Ok(DnsPoll::skipped());
    }
    dns.records = kept;
    if dns.mode == DnsMode::DataPlane {
        return flip_over(clients, run, &dns, unchanged).await;
    }
    let key = run.records().dns_cutover();
    // A retried step reuses what the first attempt recorded: re-reading the records
    // after a change went through would lose the values to roll back to.
    let cutover = match clients.store.read::<DnsCutover>(&key).await? {
        Some(recorded) => recorded,
        None => {
            let mut cutover = record_cutover(clients, run, layers, &dns).await?;
            cutover.unchanged = unchanged;
            clients.store.write(&key, &cutover).await?;
            cutover
        }
    };
    submit_change(clients, run, cutover).await
}

/// A data-plane recovery's failback: its failover alarm back to OK (no Route 53 call), so
/// that Route 53 answers the PRIMARY records again. Flipped once: a retried step finds
/// `submitted_at` in the record.
async fn flip_home(
    clients: &Clients,
    run: &RunContext,
    cutover: DnsCutover,
    flip: AlarmFlip,
) -> Result<DnsPoll, FunctionError> {
    if cutover.submitted_at.is_none() {
        let reason = format!(
            "drplan {} {}: DNS back to the primary records",
            run.mode, run.execution_name
        );
        failover::flip_alarm(
            &clients.cloudwatch,
            &run.plan,
            &flip.alarm.name,
            false,
            &reason,
        )
        .await?;
        let now = Timestamp::now();
        let flipped = DnsCutover {
            submitted_at: Some(now),
            alarm: Some(AlarmFlip {
                flipped_at: now,
                ..flip.clone()
            }),
            ..cutover.clone()
        };
        clients
            .store
            .write(&run.records().dns_cutover(), &flipped)
            .await?;
        tracing::info!(
            alarm = flip.alarm.name,
            records = flipped.changes.len(),
            "failover alarm set to OK (data-plane failback)"
        );
    }
    Ok(DnsPoll::submitted(
        alarm_change_id(&flip.alarm.name),
        cutover.changes.len(),
    ))
}

/// A failback's DNS: back to what the records held before the recovery, as discover
/// worked it out from the recovery's DNS record (`drplan_core::failback::run`); the
/// recovery's values are kept as this run's rollback.
async fn submit_failback(clients: &Clients, run: &RunContext) -> Result<DnsPoll, FunctionError> {
    let key = run.records().dns_cutover();
    let cutover = match clients.store.read::<DnsCutover>(&key).await? {
        Some(recorded) => recorded,
        None => {
            let failback: FailbackRecord = clients.store.require(&run.records().failback()).await?;
            let Some(cutover) = failback.dns else {
                return Ok(DnsPoll::skipped());
            };
            clients.store.write(&key, &cutover).await?;
            cutover
        }
    };
    if let Some(flip) = cutover.alarm.clone() {
        return flip_home(clients, run, cutover, flip).await;
    }
    submit_change(clients, run, cutover).await
}

/// Submits the recorded change (once: a retried step finds its change ID in the record).
async fn submit_change(
    clients: &Clients,
    run: &RunContext,
    cutover: DnsCutover,
) -> Result<DnsPoll, FunctionError> {
    let key = run.records().dns_cutover();
    let change_id = match &cutover.change_id {
        Some(id) => id.clone(),
        None => {
            let upserts = cutover.upserts();
            let comment = format!("drplan {} {} {}", run.plan, run.mode, run.execution_name);
            let id =
                route53::change_records(&clients.route53, &cutover.zone_id, &upserts, &comment)
                    .await?;
            let submitted = DnsCutover {
                change_id: Some(id.clone()),
                submitted_at: Some(Timestamp::now()),
                ..cutover.clone()
            };
            clients.store.write(&key, &submitted).await?;
            tracing::info!(
                change_id = id,
                records = upserts.len(),
                "DNS change submitted"
            );
            id
        }
    };
    Ok(DnsPoll::submitted(change_id, cutover.changes.len()))
}

/// The cutover to make: the records the plan wants, each with what it holds now.
async fn record_cutover(
    clients: &Clients,
    run: &RunContext,
    layers: &[Vec<WaveRef>],
    dns: &Dns,
) -> Result<DnsCutover, FunctionError> {
    // Discover checked the zone before anything launched; checked again, as the zone
    // may have changed since.
    let zone =
        route53::zone_for_cutover(&clients.route53, dns, route53::allowed_zones().as_deref())
            .await?;
    let zone_id = zone.id.clone();
    let healthy = healthy_instances(clients, run, layers, dns).await?;
    let wanted = desired_records(dns, zone.private, &healthy).map_err(FunctionError::NotReady)?;
    let mut changes = Vec::with_capacity(wanted.len());
    for new in wanted {
        let previous =
            route53::current_record(&clients.route53, &zone_id, &new.name, &new.record_type)
                .await?;
        changes.push(RecordChange { new, previous });
    }
    Ok(DnsCutover {
        zone_id,
        changes,
        deletes: Vec::new(),
        change_id: None,
        submitted_at: None,
        insync_at: None,
        path: CONTROL_PLANE_PATH.into(),
        unchanged: Vec::new(),
        alarm: None,
    })
}

/// The data-plane cutover: the failover alarm to ALARM through the recovery Region's
/// CloudWatch, so that Route 53's health check turns unhealthy and its name servers
/// answer the prepared SECONDARY records. No Route 53 call: its control plane (us-east-1)
/// is what a recovery must not need. What it did is recorded first, for rollback.
async fn flip_over(
    clients: &Clients,
    run: &RunContext,
    dns: &Dns,
    unchanged: Vec<String>,
) -> Result<DnsPoll, FunctionError> {
    let prepared: DnsPrepared = clients.store.require(&run.records().dns_prepared()).await?;
    // Discover checked the same before anything launched.
    let issues = prepared_mismatches(dns, &run.plan, Some(&prepared));
    if !issues.is_empty() {
        return Err(FunctionError::NotReady(issues));
    }
    let key = run.records().dns_cutover();
    let cutover = match clients.store.read::<DnsCutover>(&key).await? {
        Some(recorded) => recorded,
        None => {
            let changes = dns
                .records
                .iter()
                .filter_map(|record| {
                    let wanted = planned_target(record)?;
                    let pair = prepared
                        .records
                        .iter()
                        .find(|p| p.secondary.same_target(&wanted))?;
                    Some(RecordChange {
                        new: pair.secondary.clone(),
                        previous: Some(pair.primary.clone()),
                    })
                })
                .collect();
            let cutover = DnsCutover {
                zone_id: prepared.zone_id.clone(),
                changes,
                deletes: Vec::new(),
                change_id: None,
                submitted_at: None,
                insync_at: None,
                path: DATA_PLANE_PATH.into(),
                unchanged,
                alarm: None,
            };
            clients.store.write(&key, &cutover).await?;
            cutover
        }
    };
    let alarm = &prepared.alarm;
    if cutover.alarm.is_none() {
        let reason = format!(
            "drplan {} {}: DNS cutover to the recovery targets",
            run.mode, run.execution_name
        );
        failover::flip_alarm(&clients.cloudwatch, &run.plan, &alarm.name, true, &reason).await?;
        let now = Timestamp::now();
        let flipped = DnsCutover {
            submitted_at: Some(now),
            alarm: Some(AlarmFlip {
                alarm: alarm.clone(),
                health_check_id: prepared.health_check_id.clone(),
                flipped_at: now,
                state: None,
                rolled_back_at: None,
            }),
            ..cutover.clone()
        };
        clients.store.write(&key, &flipped).await?;
        tracing::info!(
            alarm = alarm.name,
            records = flipped.changes.len(),
            "failover alarm set to ALARM (data-plane cutover)"
        );
    }
    Ok(DnsPoll::submitted(
        alarm_change_id(&alarm.name),
        cutover.changes.len(),
    ))
}

/// Whether the failover alarm reads what the run flipped it to (ALARM; OK for a
/// failback): what Route 53's health checkers follow. (GetHealthCheckStatus would say
/// what they concluded, but it is a Route 53 control plane call in us-east-1: not made
/// during a run; docs/dns.md.)
async fn alarm_flipped(
    clients: &Clients,
    run: &RunContext,
    alarm_name: &str,
) -> Result<bool, FunctionError> {
    let state = failover::describe_alarm(&clients.cloudwatch, &run.plan, alarm_name)
        .await?
        .map(|seen| seen.state);
    let key = run.records().dns_cutover();
    if let Some(mut cutover) = clients.store.read::<DnsCutover>(&key).await?
        && let Some(flip) = cutover.alarm.as_mut()
        && flip.state != state
    {
        flip.state = state.clone();
        clients.store.write(&key, &cutover).await?;
    }
    let wanted = match run.mode {
        Mode::Failback => "OK",
        Mode::Drill | Mode::Recovery => "ALARM",
    };
    Ok(state.as_deref() == Some(wanted))
}

async fn follow(
    clients: &Clients,
    run: &RunContext,
    dns: DnsPoll,
) -> Result<DnsPoll, FunctionError> {
    let change_id = dns.change_id.clone().ok_or_else(|| {
        FunctionError::InvalidInput("a PENDING DNS state needs its change_id".into())
    })?;
    let in_sync = match alarm_of_change_id(&change_id) {
        Some(alarm) => alarm_flipped(clients, run, alarm).await?,
        None => route53::change_in_sync(&clients.route53, &change_id).await?,
    };
    if in_sync {
        let key = run.records().dns_cutover();
        if let Some(cutover) = clients.store.read::<DnsCutover>(&key).await? {
            let done = DnsCutover {
                insync_at: Some(Timestamp::now()),
                ..cutover
            };
            clients.store.write(&key, &done).await?;
        }
        tracing::info!(change_id, "DNS change in sync");
        return Ok(dns.in_sync());
    }
    Ok(dns.still_pending(&run.timing))
}

/// The recovered instances of each wave the records point at, with their addresses.
async fn healthy_instances(
    clients: &Clients,
    run: &RunContext,
    layers: &[Vec<WaveRef>],
    dns: &Dns,
) -> Result<BTreeMap<String, Vec<InstanceAddress>>, FunctionError> {
    let mut by_wave = BTreeMap::new();
    for record in &dns.records {
        if by_wave.contains_key(&record.from_wave) {
            continue;
        }
        let Some(wave) = layers.iter().flatten().find(|w| w.name == record.from_wave) else {
            return Err(FunctionError::InvalidPlan(vec![Issue::new(
                "dns.records",
                format!("unknown wave {:?}", record.from_wave),
            )]));
        };
        let launch: WaveLaunchRecord = clients
            .store
            .require(&run.records().wave(wave).launch())
            .await?;
        // Only instances that passed the wave's health gate receive traffic; without a
        // health record the gate did not run, and nothing is pointed anywhere.
        let health: WaveHealthRecord = clients
            .store
            .read(&run.records().wave(wave).health())
            .await?
            .ok_or_else(|| {
                FunctionError::NotReady(vec![Issue::new(
                    "dns.records",
                    format!(
                        "wave {:?} has no health record: its health gate did not run",
                        wave.name
                    ),
                )])
            })?;
        let launched = healthy_servers(&launch.progress, &health);
        // This run's own instances only: DNS never points at another run's launch.
        let own = wave::own_instances(&clients.drs, &launched).await?;
        let instances: Vec<(String, Option<String>, String)> = launched
            .iter()
            .filter_map(|s| {
                let ec2 = own.get(&s.source_server_id)?.clone();
                Some((s.source_server_id.clone(), s.hostname.clone(), ec2))
            })
            .collect();
        by_wave.insert(
            record.from_wave.clone(),
            ec2::instance_addresses(&clients.ec2, &instances).await?,
        );
    }
    Ok(by_wave)
}
