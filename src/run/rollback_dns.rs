//! `drplan rollback-dns`: puts every record a recovery changed back to its old values
//! (deleting those it created), from the run's DNS record in the bucket.

use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;

use super::{Target, aws_config, locate_run, read_object};

#[derive(Args)]
pub struct RollbackArgs {
    /// Execution ARN, or name (with the state machine)
    execution: String,
    /// The stack's bucket [default: $DRPLAN_BUCKET, else the deployed stack's output PlansBucketName, else the local cloud's]
    #[arg(long)]
    bucket: Option<String>,
    #[command(flatten)]
    target: Target,
}

/// Changes the records back in one batch, and waits until the change is in sync.
pub async fn rollback_dns(args: &RollbackArgs) -> anyhow::Result<String> {
    let config = aws_config().await;
    let run = locate_run(&config, &args.target, &args.execution, &args.bucket).await?;
    let key = drplan_core::contract::RunRecords::of(&run.plan, &run.execution_name)
        .dns_cutover()
        .key()
        .to_owned();
    let text = read_object(&aws_sdk_s3::Client::new(&config), &run.bucket, &key)
        .await
        .with_context(|| format!("the execution changed no DNS (no {key})"))?;
    let cutover: drplan_core::dns::DnsCutover =
        serde_json::from_str(&text).context("the DNS record of the run")?;
    if let Some(flip) = &cutover.alarm {
        // A failback flipped the alarm to OK: its rollback sends traffic back to the
        // recovery (ALARM); a recovery's, home (OK).
        let to_recovery = run.mode == Some(drplan_core::Mode::Failback);
        return flip_back(&config, &run, &key, &cutover, flip, to_recovery).await;
    }
    let changes = cutover.rollback_changes();
    let route53 = aws_sdk_route53::Client::new(&config);
    let comment = format!("drplan rollback of {}", run.execution_name);
    let change_id =
        drplan_aws::route53::change_records(&route53, &cutover.zone_id, &changes, &comment)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut delay = Duration::from_secs(1);
    let started = std::time::Instant::now();
    while !drplan_aws::route53::change_in_sync(&route53, &change_id)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
    {
        if started.elapsed() > Duration::from_secs(600) {
            bail!(
                "change {change_id} submitted but not in sync after 10 minutes; check it with `aws route53 get-change --id {change_id}`"
            );
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(15));
    }
    let lines: Vec<String> = cutover
        .changes
        .iter()
        .map(|c| match &c.previous {
            Some(p) => format!("  {} {} -> {}", p.name, p.record_type, p.target()),
            None => format!(
                "  {} {} deleted (it did not exist before)",
                c.new.name, c.new.record_type
            ),
        })
        .collect();
    Ok(format!(
        "DNS rolled back (change {change_id}, in sync):\n{}",
        lines.join("\n")
    ))
}

/// A data-plane cutover's rollback: its failover alarm back to OK through the recovery
/// Region's CloudWatch (no Route 53 call), so that Route 53 answers the PRIMARY records
/// again; recorded in the run's DNS record.
async fn flip_back(
    config: &aws_config::SdkConfig,
    run: &super::RunLocation,
    key: &str,
    cutover: &drplan_core::dns::DnsCutover,
    flip: &drplan_core::dns_failover::AlarmFlip,
    to_recovery: bool,
) -> anyhow::Result<String> {
    let (plan, bucket) = (run.plan.as_str(), run.bucket.as_str());
    let alarm = &flip.alarm;
    let cloudwatch = aws_sdk_cloudwatch::Client::from_conf(
        aws_sdk_cloudwatch::config::Builder::from(config)
            .region(aws_config::Region::new(alarm.region.clone()))
            .build(),
    );
    let aws = |e: drplan_aws::FunctionError| anyhow::anyhow!("{e}");
    drplan_aws::failover::flip_alarm(
        &cloudwatch,
        plan,
        &alarm.name,
        to_recovery,
        "drplan rollback-dns",
    )
    .await
    .map_err(aws)?;
    let state = drplan_aws::failover::describe_alarm(&cloudwatch, plan, &alarm.name)
        .await
        .map_err(aws)?
        .map(|seen| seen.state);
    let mut rolled = cutover.clone();
    if let Some(f) = rolled.alarm.as_mut() {
        f.state = state.clone();
        f.rolled_back_at = Some(jiff::Timestamp::now());
    }
    let s3 = aws_sdk_s3::Client::new(config);
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(serde_json::to_vec_pretty(&rolled)?.into())
        .send()
        .await
        .with_context(|| format!("recording the rollback in s3://{bucket}/{key}"))?;
    let lines: Vec<String> = cutover
        .changes
        .iter()
        .filter_map(|c| {
            let p = c.previous.as_ref()?;
            Some(format!(
                "  {} {} -> {} ({})",
                p.name,
                p.record_type,
                p.target(),
                if to_recovery { "SECONDARY" } else { "PRIMARY" }
            ))
        })
        .collect();
    Ok(format!(
        "DNS rolled back through the data plane: alarm {} in {} is {} (no Route 53 call); Route 53 answers the {} records again once health check {} is {}:\n{}",
        alarm.name,
        alarm.region,
        state.as_deref().unwrap_or("gone"),
        if to_recovery { "SECONDARY" } else { "PRIMARY" },
        flip.health_check_id,
        if to_recovery { "unhealthy" } else { "healthy" },
        lines.join("\n")
    ))
}
