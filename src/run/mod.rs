//! The commands that drive the recovery state machine, one module each: `drplan start`
//! ([`start`]), `status` ([`status`]), `report` ([`report`]), `approve` / `decline`
//! ([`decide`]), `pause` / `continue` ([`pause`]), `rollback-dns` ([`rollback_dns`]) and
//! `rollback-targets` ([`rollback_targets`]),
//! `dns prepare` / `dns check` ([`dns`]), `history` ([`history`]), `readiness` ([`readiness`]).
//! Here: what they share, finding the state machine, an execution and its records (in
//! the bucket [`bucket`] finds).

pub mod bucket;
pub mod decide;
pub mod dns;
pub mod history;
pub mod pause;
pub mod readiness;
pub mod report;
pub mod resume;
pub mod rollback_dns;
pub mod rollback_targets;
pub mod start;
pub mod status;
pub mod why;

use anyhow::{Context, bail};
use clap::Args;

/// The state machine drplan's stack creates (found by this name when no ARN is given).
pub const STATE_MACHINE_NAME: &str = "drplan-recovery";

#[derive(Args, Clone, Default)]
pub struct Target {
    /// The recovery state machine [default: $DRPLAN_STATE_MACHINE_ARN, else the one named drplan-recovery]
    #[arg(long, value_name = "ARN")]
    state_machine: Option<String>,
}

/// The SDK configuration: honours AWS_ENDPOINT_URL, so the same commands drive AWS or
/// the local cloud.
pub async fn aws_config() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

pub async fn state_machine_arn(
    client: &aws_sdk_sfn::Client,
    target: &Target,
) -> anyhow::Result<String> {
    if let Some(arn) = target
        .state_machine
        .clone()
        .or_else(|| std::env::var("DRPLAN_STATE_MACHINE_ARN").ok())
    {
        return Ok(arn);
    }
    let mut pages = client.list_state_machines().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.context("ListStateMachines")?;
        if let Some(found) = page
            .state_machines()
            .iter()
            .find(|m| m.name() == STATE_MACHINE_NAME)
        {
            return Ok(found.state_machine_arn().to_owned());
        }
    }
    bail!(
        "no state machine named {STATE_MACHINE_NAME}; pass --state-machine or set DRPLAN_STATE_MACHINE_ARN"
    )
}

/// The ARN of an execution given by ARN, or by name (of the target state machine).
pub async fn execution_arn(
    client: &aws_sdk_sfn::Client,
    target: &Target,
    execution: &str,
) -> anyhow::Result<String> {
    if execution.starts_with("arn:") {
        return Ok(execution.to_owned());
    }
    let machine = state_machine_arn(client, target).await?;
    Ok(format!(
        "{}:{execution}",
        machine.replacen(":stateMachine:", ":execution:", 1)
    ))
}

/// Where an execution's records live: its plan's name, its own name, and the bucket.
struct RunLocation {
    plan: String,
    execution_name: String,
    bucket: String,
    /// The run's mode, from its execution input.
    mode: Option<drplan_core::Mode>,
}

async fn locate_run(
    config: &aws_config::SdkConfig,
    target: &Target,
    execution: &str,
    bucket: &Option<String>,
) -> anyhow::Result<RunLocation> {
    let sfn = &aws_sdk_sfn::Client::new(config);
    let arn = execution_arn(sfn, target, execution).await?;
    let described = sfn
        .describe_execution()
        .execution_arn(&arn)
        .send()
        .await
        .context("DescribeExecution")?;
    let input: serde_json::Value =
        serde_json::from_str(described.input().unwrap_or("{}")).unwrap_or_default();
    let plan = drplan_core::report::plan_name_of(&input);
    let bucket =
        bucket::find_bucket(config, bucket.as_deref(), described.state_machine_arn()).await?;
    Ok(RunLocation {
        plan,
        execution_name: described.name().unwrap_or_default().to_owned(),
        bucket,
        mode: drplan_core::report::mode_of(&input),
    })
}

pub async fn read_object(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> anyhow::Result<String> {
    let object = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .with_context(|| format!("no report at s3://{bucket}/{key} (has the execution ended?)"))?;
    let bytes = object
        .body
        .collect()
        .await
        .context("reading the report")?
        .into_bytes();
    String::from_utf8(bytes.to_vec()).context("the report is not UTF-8")
}
