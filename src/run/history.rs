//! `drplan history PLAN`: every run of a plan that has a report, newest first, with the
//! compliance line (the last successful drill and recovery, how long ago, their RTO).
//! One ListObjectsV2 over `reports/PLAN/` and a GetObject per report.

use anyhow::Context;
use clap::{Args, ValueEnum};
use drplan_aws::store::RunStore;
use drplan_core::audit::History;
use jiff::Timestamp;

use super::{Target, aws_config, bucket, state_machine_arn};

#[derive(Args)]
pub struct HistoryArgs {
    /// The plan's name
    plan: String,
    #[arg(long, value_enum, default_value_t = HistoryFormat::Text)]
    format: HistoryFormat,
    /// The stack's bucket [default: $DRPLAN_BUCKET, else the deployed stack's output PlansBucketName, else the local cloud's]
    #[arg(long)]
    bucket: Option<String>,
    #[command(flatten)]
    target: Target,
}

#[derive(Clone, Copy, ValueEnum)]
enum HistoryFormat {
    Text,
    Json,
}

pub async fn history(args: &HistoryArgs) -> anyhow::Result<String> {
    let config = aws_config().await;
    let sfn = aws_sdk_sfn::Client::new(&config);
    let bucket = match &args.bucket {
        Some(bucket) => bucket.clone(),
        None => {
            // Without a state machine, the bucket can still come from the environment.
            let machine = state_machine_arn(&sfn, &args.target)
                .await
                .unwrap_or_default();
            bucket::find_bucket(&config, None, &machine).await?
        }
    };
    let store = RunStore::new(aws_sdk_s3::Client::new(&config), bucket);
    let (runs, skipped) = drplan_aws::readiness::run_summaries(&store, &args.plan)
        .await
        .context("reading the plan's reports")?;
    for skipped in skipped {
        eprintln!("drplan history: skipping {skipped}");
    }
    let history = History::of(&args.plan, runs, Timestamp::now());
    Ok(match args.format {
        HistoryFormat::Text => history.to_text(),
        HistoryFormat::Json => format!("{}\n", serde_json::to_string_pretty(&history)?),
    })
}
