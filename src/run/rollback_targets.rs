//! `drplan rollback-targets`: takes a run's instances out of the ELBv2 target groups its
//! waves registered them into (DeregisterTargets), from the run's target records in the
//! bucket (`waves/NNN-WAVE/targets.json`). The sibling of `rollback-dns`: after a
//! recovery is rolled back, or before failing back, no load balancer should send
//! traffic to the recovered instances.

use anyhow::Context;
use clap::Args;
use drplan_aws::store::RunStore;

use super::{Target, aws_config, locate_run};

#[derive(Args)]
pub struct RollbackTargetsArgs {
    /// Execution ARN, or name (with the state machine)
    execution: String,
    /// The stack's bucket [default: $DRPLAN_BUCKET, else the deployed stack's output PlansBucketName, else the local cloud's]
    #[arg(long)]
    bucket: Option<String>,
    #[command(flatten)]
    target: Target,
}

/// Deregisters every target the run registered that is still registered.
pub async fn rollback_targets(args: &RollbackTargetsArgs) -> anyhow::Result<String> {
    let config = aws_config().await;
    let run = locate_run(&config, &args.target, &args.execution, &args.bucket).await?;
    let records = drplan_core::contract::RunRecords::of(&run.plan, &run.execution_name);
    let store = RunStore::new(aws_sdk_s3::Client::new(&config), run.bucket.clone());
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&config);
    let done = drplan_aws::targets::deregister_run_targets(
        &elb,
        &store,
        &records,
        None,
        "drplan rollback-targets",
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))
    .with_context(|| format!("deregistering the targets of {}", run.execution_name))?;
    if done.targets == 0 {
        return Ok(format!(
            "{} has no target still registered (it registered none, or they were deregistered already)",
            run.execution_name
        ));
    }
    Ok(format!(
        "Deregistered {} target{} of {}:\n  {}",
        done.targets,
        if done.targets == 1 { "" } else { "s" },
        run.execution_name,
        done.lines.join("\n  ")
    ))
}
