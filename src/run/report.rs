//! `drplan report`: an execution's report, as the report function stored it in the
//! stack's bucket (Markdown, JSON, or the HTML page with its timeline).

use clap::{Args, ValueEnum};

use drplan_core::contract::keys;

use super::{Target, aws_config, locate_run, read_object};

#[derive(Args)]
pub struct ReportArgs {
    /// Execution ARN, or name (with the state machine)
    execution: String,
    #[arg(long, value_enum, default_value_t = ReportFormat::Md)]
    format: ReportFormat,
    /// The stack's bucket [default: $DRPLAN_BUCKET, else the deployed stack's output PlansBucketName, else the local cloud's]
    #[arg(long)]
    bucket: Option<String>,
    #[command(flatten)]
    target: Target,
}

#[derive(Clone, Copy, ValueEnum)]
enum ReportFormat {
    Md,
    Json,
    /// A self-contained page (inline CSS and SVG timeline): save it and open it in a browser
    Html,
}

pub async fn report(args: &ReportArgs) -> anyhow::Result<String> {
    let config = aws_config().await;
    let run = locate_run(&config, &args.target, &args.execution, &args.bucket).await?;
    let key = match args.format {
        ReportFormat::Md => keys::report_markdown(&run.plan, &run.execution_name),
        ReportFormat::Json => keys::report_json(&run.plan, &run.execution_name)
            .key()
            .to_owned(),
        ReportFormat::Html => keys::report_html(&run.plan, &run.execution_name),
    };
    read_object(&aws_sdk_s3::Client::new(&config), &run.bucket, &key).await
}
