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
            Some(p) => format!("  {} {} -> {}", p.name, p.record_type, p.values.join(", ")),
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
