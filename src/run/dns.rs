//! `drplan dns prepare PLAN` and `drplan dns check PLAN`: the failover records, health
//! check and alarm of a data-plane cutover (`dns.mode: data-plane`), made ahead of time
//! while Route 53's control plane is there, and checked against the plan. What they
//! made is recorded in the bucket, where discover and dns-cutover read it instead of
//! Route 53 (docs/dns.md).

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use drplan_aws::failover;
use drplan_aws::store::RunStore;
use drplan_core::contract::{PlanSource, keys};
use drplan_core::dns::{canonical_name, planned_target, records_outside_zone};
use drplan_core::dns_failover::{
    CurrentRecords, DnsPrepared, FailoverAlarm, PrepareChange, PreparedRecord, alarm_name,
    health_check_problem, prepare_record,
};
use drplan_core::plan::{Dns, DnsMode};
use drplan_core::{Format, Plan};

use super::{Target, aws_config, state_machine_arn};

#[derive(Subcommand)]
pub enum DnsCommand {
    /// Make a data-plane plan's failover records, health check and alarm (once, ahead of
    /// any recovery; running it again changes nothing when nothing changed).
    Prepare(DnsArgs),
    /// Check that Route 53 and CloudWatch hold what the plan's data-plane cutover needs;
    /// changes nothing.
    Check(DnsArgs),
}

#[derive(Args)]
pub struct DnsArgs {
    /// A plan file, or the name of a plan stored in the bucket
    plan: String,
    /// The stack's bucket [default: $DRPLAN_BUCKET, else the deployed stack's output PlansBucketName, else the local cloud's]
    #[arg(long)]
    bucket: Option<String>,
    #[command(flatten)]
    target: Target,
}

/// Runs a `drplan dns` command: its report, and whether all is well.
pub async fn run(command: &DnsCommand) -> anyhow::Result<(String, bool)> {
    match command {
        DnsCommand::Prepare(args) => prepare_or_check(args, true).await,
        DnsCommand::Check(args) => prepare_or_check(args, false).await,
    }
}

/// What Route 53 and CloudWatch hold for the plan, and what preparing it changes.
async fn prepare_or_check(args: &DnsArgs, apply: bool) -> anyhow::Result<(String, bool)> {
    let (config, store) = open_store(args.bucket.as_deref(), &args.target).await?;
    let plan = load_plan(&store, &args.plan).await?;
    prepare_or_check_plan(&config, &store, &plan, &args.plan, apply).await
}

/// `drplan validate --servers` of a data-plane plan: what `drplan dns check` says of
/// its prepared records. The lines that do not match, or none when all match.
pub async fn prepared_record_mismatches(
    plan: &Plan,
    plan_file: &str,
    bucket: Option<&str>,
) -> anyhow::Result<Vec<String>> {
    let (config, store) = open_store(bucket, &Target::default()).await?;
    let (text, matches) = prepare_or_check_plan(&config, &store, plan, plan_file, false).await?;
    Ok(if matches {
        Vec::new()
    } else {
        let mut lines = text.lines();
        let head = lines.next().unwrap_or_default().to_owned();
        let details: Vec<String> = lines.map(|l| l.trim().to_owned()).collect();
        if details.is_empty() {
            vec![head]
        } else {
            details
        }
    })
}

async fn open_store(
    bucket: Option<&str>,
    target: &Target,
) -> anyhow::Result<(aws_config::SdkConfig, RunStore)> {
    let config = aws_config().await;
    let machine = state_machine_arn(&aws_sdk_sfn::Client::new(&config), target)
        .await
        .unwrap_or_default();
    let bucket = super::bucket::find_bucket(&config, bucket, &machine).await?;
    let store = RunStore::new(aws_sdk_s3::Client::new(&config), bucket);
    Ok((config, store))
}

async fn prepare_or_check_plan(
    config: &aws_config::SdkConfig,
    store: &RunStore,
    plan: &Plan,
    plan_ref: &str,
    apply: bool,
) -> anyhow::Result<(String, bool)> {
    let Some(dns) = plan.dns.as_ref().filter(|d| d.mode == DnsMode::DataPlane) else {
        bail!(
            "plan {} has no `dns` with mode: data-plane: there is nothing to prepare (a control-plane cutover changes the records during the run)",
            plan.name
        );
    };
    let region = config
        .region()
        .map(|r| r.as_ref().to_owned())
        .context("no AWS Region configured: set AWS_REGION to the recovery Region, where the failover alarm lives")?;
    let route53 = aws_sdk_route53::Client::new(config);
    let cloudwatch = aws_sdk_cloudwatch::Client::new(config);
    let aws = |e: drplan_aws::FunctionError| anyhow::anyhow!("{e}");

    let zone = drplan_aws::route53::resolve_zone(&route53, dns)
        .await
        .map_err(aws)?;
    let outside = records_outside_zone(dns, &zone);
    if !outside.is_empty() {
        bail!(
            "{}",
            issue_lines(
                &outside
                    .iter()
                    .map(|i| format!("{}: {}", i.path, i.message))
                    .collect::<Vec<_>>()
            )
        );
    }
    let alarm = FailoverAlarm {
        region: region.clone(),
        name: alarm_name(&plan.name),
    };
    let mut problems = Vec::new();
    let mut done = Vec::new();

    // Everything is read and judged before anything changes.
    let alarm_seen = failover::describe_alarm(&cloudwatch, &plan.name, &alarm.name)
        .await
        .map_err(aws)?;
    let alarm_needed = match &alarm_seen {
        None => Some(format!("alarm {} created in {region}", alarm.name)),
        Some(seen) if !seen.watches_the_failover_metric => Some(format!(
            "alarm {} in {region} set to watch drplan's failover metric again",
            alarm.name
        )),
        Some(_) => None,
    };
    let mut currents = Vec::with_capacity(dns.records.len());
    for record in &dns.records {
        let name = canonical_name(&record.name);
        let current =
            failover::current_records(&route53, &zone.id, &name, record.record_type.as_str())
                .await
                .map_err(aws)?;
        currents.push(current);
    }
    let health_check = following_health_check(&route53, &currents, &alarm).await?;
    let (health_check_id, health_check_needed) = match &health_check {
        Some(id) => (id.clone(), false),
        None => ("(new)".to_owned(), true),
    };
    let mut planned = plan_changes(dns, &currents, &health_check_id, &mut problems);
    if !problems.is_empty() {
        bail!(
            "the plan's records cannot be prepared; nothing was changed:\n{}",
            issue_lines(&problems)
        );
    }
    if !apply {
        let mut needed: Vec<String> = alarm_needed.into_iter().collect();
        if health_check_needed {
            needed.push(format!(
                "no health check of type CLOUDWATCH_METRIC following alarm {} in {region} is attached to the PRIMARY records",
                alarm.name
            ));
        }
        needed.extend(planned.said.iter().cloned());
        let stored = store
            .read(&keys::dns_prepared(&plan.name))
            .await
            .map_err(aws)?;
        let recorded =
            drplan_core::dns_failover::prepared_mismatches(dns, &plan.name, stored.as_ref());
        needed.extend(
            recorded
                .iter()
                .map(|i| format!("{}: {}", i.path, i.message)),
        );
        return Ok(if needed.is_empty() {
            (
                format!(
                    "plan {}: prepared as the plan says: every record's failover pair, health check {health_check_id} following alarm {} in {region}",
                    plan.name, alarm.name
                ),
                true,
            )
        } else {
            (
                format!(
                    "plan {}: the prepared records do not match the plan (run `drplan dns prepare {}`):\n{}",
                    plan.name,
                    plan_ref,
                    issue_lines(&needed)
                ),
                false,
            )
        });
    }

    if let Some(what) = alarm_needed {
        failover::put_failover_alarm(&cloudwatch, &plan.name, &alarm.name)
            .await
            .map_err(aws)?;
        done.push(what);
    }
    let health_check_id = match health_check {
        Some(id) => id,
        None => {
            let reference = format!(
                "drplan-{}-{}",
                plan.name,
                jiff::Timestamp::now().as_millisecond()
            );
            let id = failover::create_health_check(&route53, &alarm, &reference)
                .await
                .map_err(aws)?;
            done.push(format!(
                "health check {id} created: CLOUDWATCH_METRIC, unhealthy while alarm {} in {region} is in ALARM",
                alarm.name
            ));
            planned = plan_changes(dns, &currents, &id, &mut problems);
            id
        }
    };
    if !planned.changes.is_empty() {
        let comment = format!("drplan dns prepare {}", plan.name);
        let change_id = failover::apply_prepare(&route53, &zone.id, &planned.changes, &comment)
            .await
            .map_err(aws)?;
        wait_in_sync(&route53, &change_id).await?;
        done.extend(planned.said.iter().cloned());
    }
    let prepared = DnsPrepared {
        plan: plan.name.clone(),
        zone_id: zone.id.clone(),
        zone_name: zone.name.clone(),
        health_check_id: health_check_id.clone(),
        alarm: alarm.clone(),
        records: planned.records,
        prepared_at: jiff::Timestamp::now(),
    };
    let key = keys::dns_prepared(&plan.name);
    let stored: Option<DnsPrepared> = store.read(&key).await.map_err(aws)?;
    let same = stored.as_ref().is_some_and(|s| {
        DnsPrepared {
            prepared_at: s.prepared_at,
            ..prepared.clone()
        } == *s
    });
    if !same {
        store.write(&key, &prepared).await.map_err(aws)?;
        done.push(format!("recorded in s3://{}/{key}", store.bucket()));
    }
    let summary = format!(
        "{} record(s) in zone {} fail over to their recovery targets when alarm {} in {region} is in ALARM (health check {health_check_id})",
        dns.records.len(),
        zone.describe(),
        alarm.name
    );
    Ok(if done.is_empty() {
        (
            format!(
                "plan {}: already prepared, nothing changed: {summary}",
                plan.name
            ),
            true,
        )
    } else {
        (
            format!(
                "plan {}: prepared: {summary}\n{}",
                plan.name,
                issue_lines(&done)
            ),
            true,
        )
    })
}

/// What preparing every record changes, and the records as they will be.
struct PlannedChanges {
    changes: Vec<PrepareChange>,
    said: Vec<String>,
    records: Vec<PreparedRecord>,
}

fn plan_changes(
    dns: &Dns,
    currents: &[CurrentRecords],
    health_check_id: &str,
    problems: &mut Vec<String>,
) -> PlannedChanges {
    let mut planned = PlannedChanges {
        changes: Vec::new(),
        said: Vec::new(),
        records: Vec::new(),
    };
    for (i, (record, current)) in dns.records.iter().zip(currents).enumerate() {
        let Some(target) = planned_target(record) else {
            problems.push(format!(
                "dns.records[{i}]: {} has no recovery target known ahead (alias or values)",
                record.name
            ));
            continue;
        };
        match prepare_record(&target, current, health_check_id) {
            Ok((changes, said)) => {
                let primary = current
                    .simple
                    .clone()
                    .or_else(|| current.primary.as_ref().map(|p| p.set.clone()));
                if let Some(primary) = primary {
                    planned.records.push(PreparedRecord {
                        primary,
                        secondary: target,
                    });
                }
                planned.changes.extend(changes);
                planned.said.extend(said);
            }
            Err(problem) => problems.push(format!("dns.records[{i}]: {problem}")),
        }
    }
    planned
}

/// The health check the PRIMARY records follow, if one of them follows `alarm`.
async fn following_health_check(
    route53: &aws_sdk_route53::Client,
    currents: &[CurrentRecords],
    alarm: &FailoverAlarm,
) -> anyhow::Result<Option<String>> {
    let mut ids: Vec<&str> = currents
        .iter()
        .filter_map(|c| c.primary.as_ref()?.health_check_id.as_deref())
        .collect();
    ids.dedup();
    for id in ids {
        if let Some((check_type, follows)) = failover::health_check(route53, id)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?
            && health_check_problem(id, &check_type, follows.as_ref(), alarm).is_none()
        {
            return Ok(Some(id.to_owned()));
        }
    }
    Ok(None)
}

async fn wait_in_sync(route53: &aws_sdk_route53::Client, change_id: &str) -> anyhow::Result<()> {
    let mut delay = Duration::from_secs(1);
    let started = std::time::Instant::now();
    while !drplan_aws::route53::change_in_sync(route53, change_id)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
    {
        if started.elapsed() > Duration::from_secs(600) {
            bail!("change {change_id} submitted but not in sync after 10 minutes");
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(15));
    }
    Ok(())
}

/// The plan: a file, or a plan stored in the bucket by name.
async fn load_plan(store: &RunStore, plan: &str) -> anyhow::Result<Plan> {
    let path = Path::new(plan);
    if path.exists() {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {plan}"))?;
        let format = Format::guess(path.file_name().and_then(|n| n.to_str()), &text);
        return drplan_core::parse_plan(&text, format).map_err(|issues| {
            let lines: Vec<String> = issues
                .iter()
                .map(|i| format!("{plan}: {}: {}", i.path, i.message))
                .collect();
            anyhow::anyhow!("the plan is not valid:\n{}", lines.join("\n"))
        });
    }
    drplan_aws::plans::load_plan(store, &PlanSource::Name(plan.to_owned()))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))
}

fn issue_lines(lines: &[String]) -> String {
    lines
        .iter()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
