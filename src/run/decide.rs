//! `drplan approve` / `drplan decline`: answers the approval task of an execution that
//! waits for one; the state machine launches (approved) or ends with nothing launched
//! (declined).

use anyhow::{Context, bail};
use aws_sdk_sfn::types::ExecutionStatus;
use clap::Args;
use drplan_aws::history::{self, Approval};
use jiff::Timestamp;

use super::{Target, aws_config, execution_arn};

#[derive(Args)]
pub struct DecisionArgs {
    /// Execution ARN, or name (with the state machine)
    execution: String,
    /// Who decides (recorded in the run) [default: $USER]
    #[arg(long)]
    by: Option<String>,
    #[command(flatten)]
    target: Target,
}

#[derive(Args)]
pub struct DeclineArgs {
    #[command(flatten)]
    pub decision: DecisionArgs,
    /// Why (recorded in the run and the report)
    #[arg(long, required = true)]
    pub reason: String,
}

/// The task token of the execution's pending approval, from its history.
pub async fn pending_approval_token(
    client: &aws_sdk_sfn::Client,
    arn: &str,
) -> anyhow::Result<String> {
    let described = client
        .describe_execution()
        .execution_arn(arn)
        .send()
        .await
        .context("DescribeExecution")?;
    if described.status() != &ExecutionStatus::Running {
        bail!(
            "the execution is {}, not waiting for approval",
            described.status().as_str()
        );
    }
    match history::approval(&history::history(client, arn).await?) {
        Approval::Pending { task_token } => Ok(task_token),
        Approval::Answered => bail!("the execution's approval was already answered"),
        Approval::NotAsked => bail!("the execution is not waiting for approval"),
    }
}

fn decider(by: &Option<String>) -> String {
    by.clone()
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Sends the decision: approved when `reason` is `None`, declined for that reason
/// otherwise. Returns what to tell the person.
pub async fn decide(args: &DecisionArgs, reason: Option<&str>) -> anyhow::Result<String> {
    let client = aws_sdk_sfn::Client::new(&aws_config().await);
    let arn = execution_arn(&client, &args.target, &args.execution).await?;
    let token = pending_approval_token(&client, &arn).await?;
    let by = decider(&args.by);
    let decision = match reason {
        None => serde_json::json!({"approved": true, "by": by, "at": Timestamp::now().to_string()}),
        Some(reason) => {
            serde_json::json!({"approved": false, "by": by, "reason": reason, "at": Timestamp::now().to_string()})
        }
    };
    client
        .send_task_success()
        .task_token(token)
        .output(decision.to_string())
        .send()
        .await
        .context("SendTaskSuccess")?;
    Ok(if reason.is_none() {
        format!("approved by {by}: {arn} launches now")
    } else {
        format!("declined by {by}: {arn} ends with nothing launched")
    })
}
