//! ELBv2 target groups of a wave (the health-check function, drill cleanup and
//! `drplan rollback-targets`): registers the wave's healthy instances (RegisterTargets,
//! instance IDs and the plan's port), reads their target health (DescribeTargetHealth),
//! and deregisters what a run registered (DeregisterTargets). What the results mean is
//! decided in `drplan_core::targets`.

use std::collections::HashMap;

use aws_sdk_elasticloadbalancingv2::Client;
use aws_sdk_elasticloadbalancingv2::types::TargetDescription;
use drplan_core::contract::keys::{self, Record};
use drplan_core::contract::{HealthPoll, LaunchState, RunContext, RunRecords, WaveRef};
use drplan_core::health::WaveHealthRecord;
use drplan_core::targets::{TargetHealth, WaveTargetsRecord, apply_to_gate, plan_registration};
use drplan_core::{Mode, Plan, targets};
use jiff::Timestamp;

use crate::FunctionError;
use crate::store::RunStore;

/// The target health part of a wave's gate, on a poll whose health checks passed:
/// registers the healthy instances (once the record of what is registered is written,
/// so that rollback finds them even if this poll dies half way), reads their target
/// health, and folds the verdict into the poll and its health record. A wave without
/// target groups for the run's mode is left as it is.
#[allow(clippy::too_many_arguments)]
pub async fn gate_on_target_health(
    elb: &Client,
    store: &RunStore,
    run: &RunContext,
    wave: &WaveRef,
    plan: &Plan,
    record: &mut WaveHealthRecord,
    poll: &mut HealthPoll,
    now: Timestamp,
) -> Result<(), FunctionError> {
    if poll.state != LaunchState::Succeeded {
        return Ok(());
    }
    let wanted = targets::targets_of_wave(plan, &wave.name, run.mode);
    if wanted.is_empty() {
        return Ok(());
    }
    let key = run.records().wave(wave).targets();
    let mut registered = match store.read(&key).await? {
        Some(earlier) => earlier,
        None => {
            let planned = plan_registration(&wave.name, run.mode, &wanted, &record.servers, now);
            store.write(&key, &planned).await?;
            planned
        }
    };
    let mut observed = Vec::new();
    for group in &mut registered.groups {
        if group.targets.is_empty() || group.error.is_some() {
            continue;
        }
        let ids: Vec<(String, u16)> = group
            .targets
            .iter()
            .map(|t| (t.ec2_instance_id.clone(), group.port))
            .collect();
        // Only what the target group does not hold yet is registered: an adopted wave's
        // instances stay as the run it resumes registered them, and a poll after the
        // one that registered registers nothing. A poll that died between the record and
        // the call is made whole. When the target group cannot be read, RegisterTargets
        // is asked anyway and its refusal (no such target group, an instance it cannot
        // take) fails the gate with AWS's reason.
        let before = match target_health(elb, &group.target_group_arn, &ids).await {
            Ok(seen) => seen,
            Err(FunctionError::AwsCallFailed { .. }) => HashMap::new(),
            Err(other) => return Err(other),
        };
        let missing = targets::not_yet_registered(&ids, &before);
        if missing.is_empty() {
            observed.push((group.target_group_arn.clone(), before));
            continue;
        }
        match register(elb, &group.target_group_arn, &missing).await {
            Ok(()) => {}
            Err(FunctionError::AwsCallFailed {
                operation,
                code,
                message,
            }) => {
                group.error = Some(format!("{operation} failed ({code}): {message}"));
                continue;
            }
            Err(other) => return Err(other),
        }
        let seen = target_health(elb, &group.target_group_arn, &ids).await?;
        observed.push((group.target_group_arn.clone(), seen));
    }
    for (arn, seen) in &observed {
        registered.observe(arn, seen);
    }
    let verdict = registered.verdict(
        now,
        record.deadline,
        record.timeout_minutes,
        run.timing.health_interval_seconds,
    );
    apply_to_gate(&verdict, &mut registered, record, poll, now);
    store.write(&key, &registered).await?;
    tracing::info!(
        state = registered.state,
        groups = %registered.summary_lines().join(" | "),
        "wave target health polled"
    );
    Ok(())
}

fn descriptions(targets: &[(String, u16)]) -> Vec<TargetDescription> {
    targets
        .iter()
        .map(|(id, port)| {
            TargetDescription::builder()
                .id(id)
                .port(i32::from(*port))
                .build()
        })
        .collect()
}

/// RegisterTargets: the instances, each on its port.
pub async fn register(
    elb: &Client,
    target_group_arn: &str,
    targets: &[(String, u16)],
) -> Result<(), FunctionError> {
    elb.register_targets()
        .target_group_arn(target_group_arn)
        .set_targets(Some(descriptions(targets)))
        .send()
        .await
        .map_err(|e| FunctionError::from_sdk("RegisterTargets", e))?;
    Ok(())
}

/// The target groups of `arns` that ELBv2 does not know. One DescribeTargetGroups per
/// ARN: asked for several, it fails the whole call when one is missing
/// (TargetGroupNotFound) and does not say which.
pub async fn missing_target_groups(
    elb: &Client,
    arns: &[String],
) -> Result<Vec<String>, FunctionError> {
    let mut missing = Vec::new();
    for arn in arns {
        match elb
            .describe_target_groups()
            .target_group_arns(arn)
            .send()
            .await
        {
            Ok(answer) if !answer.target_groups().is_empty() => {}
            Ok(_) => missing.push(arn.clone()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_target_group_not_found_exception()) =>
            {
                missing.push(arn.clone())
            }
            Err(e) => return Err(FunctionError::from_sdk("DescribeTargetGroups", e)),
        }
    }
    Ok(missing)
}

/// DescribeTargetHealth of these targets, by instance ID.
pub async fn target_health(
    elb: &Client,
    target_group_arn: &str,
    targets: &[(String, u16)],
) -> Result<HashMap<String, TargetHealth>, FunctionError> {
    let answer = elb
        .describe_target_health()
        .target_group_arn(target_group_arn)
        .set_targets(Some(descriptions(targets)))
        .send()
        .await
        .map_err(|e| FunctionError::from_sdk("DescribeTargetHealth", e))?;
    Ok(answer
        .target_health_descriptions()
        .iter()
        .filter_map(|d| {
            let id = d.target()?.id()?.to_owned();
            let health = d.target_health()?;
            Some((
                id,
                TargetHealth {
                    state: health.state().map_or("unknown", |s| s.as_str()).to_owned(),
                    reason: health.reason().map(|r| r.as_str().to_owned()),
                    description: health.description().map(str::to_owned),
                },
            ))
        })
        .collect())
}

/// What deregistering took out: how many targets, and a line per target group
/// ("web: shop-web (port 443): i-0abc, i-0def").
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Deregistered {
    pub targets: usize,
    pub lines: Vec<String>,
}

/// Takes out of their target groups the instances one record registered, and notes
/// it in the record. Only targets still registered are deregistered (DescribeTargetHealth
/// says which), so running it twice, or after someone deregistered by hand, is harmless.
pub async fn deregister_recorded(
    elb: &Client,
    store: &RunStore,
    key: &Record<WaveTargetsRecord>,
    by: &str,
) -> Result<Deregistered, FunctionError> {
    let mut done = Deregistered::default();
    let Some(mut record) = store.read(key).await? else {
        return Ok(done);
    };
    for (arn, targets) in record.deregistrations() {
        let seen = target_health(elb, &arn, &targets).await?;
        let still: Vec<(String, u16)> = targets
            .into_iter()
            .filter(|(id, _)| targets::is_registered(seen.get(id)))
            .collect();
        if still.is_empty() {
            continue;
        }
        elb.deregister_targets()
            .target_group_arn(&arn)
            .set_targets(Some(descriptions(&still)))
            .send()
            .await
            .map_err(|e| FunctionError::from_sdk("DeregisterTargets", e))?;
        done.targets += still.len();
        let ids: Vec<&str> = still.iter().map(|(id, _)| id.as_str()).collect();
        done.lines.push(format!(
            "{}: {} (port {}): {}",
            record.wave,
            targets::target_group_name(&arn),
            still.first().map_or(0, |(_, port)| *port),
            ids.join(", ")
        ));
    }
    if record.deregistered_at.is_none() {
        record.deregistered_at = Some(Timestamp::now());
        record.deregistered_by = Some(by.to_owned());
        store.write(key, &record).await?;
    }
    Ok(done)
}

/// Deregisters every target a run registered (only those of runs in `mode` when
/// given): a drill's before its instances are terminated, a recovery's on rollback.
pub async fn deregister_run_targets(
    elb: &Client,
    store: &RunStore,
    run: &RunRecords,
    mode: Option<Mode>,
    by: &str,
) -> Result<Deregistered, FunctionError> {
    let mut done = Deregistered::default();
    for key in store.list_keys(&run.waves_prefix()).await? {
        let Some(record) = keys::is_wave_targets(&key) else {
            continue;
        };
        let wanted = store
            .read(&record)
            .await?
            .is_some_and(|r: WaveTargetsRecord| mode.is_none_or(|mode| r.mode == mode));
        if wanted {
            let one = deregister_recorded(elb, store, &record, by).await?;
            done.targets += one.targets;
            done.lines.extend(one.lines);
        }
    }
    Ok(done)
}
