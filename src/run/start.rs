//! `drplan start`: one StartExecution, after the checks the state machine would make;
//! then waits for discover's verdict, or follows the run to its end (`--wait`).

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use aws_sdk_sfn::types::ExecutionStatus;
use clap::{Args, ValueEnum};
use drplan_core::{Format, Mode};
use jiff::Timestamp;

use super::status::{ExecutionView, follow, view_execution};
use super::{Target, aws_config, state_machine_arn};

#[derive(Args)]
pub struct StartArgs {
    /// A plan file (validated here, sent inline) or the name of a plan stored in the bucket
    plan: String,
    #[arg(long, value_enum)]
    mode: ModeArg,
    /// `latest`, or `before=2026-11-27T22:00:00Z` to recover each server from its last snapshot before that time
    #[arg(long, default_value = "latest")]
    snapshot: String,
    /// Timing overrides as JSON (see docs), e.g. '{"poll_initial_seconds": 2}'
    #[arg(long, value_name = "JSON")]
    timing: Option<String>,
    /// Execution name [default: PLAN-MODE-TIME]
    #[arg(long)]
    name: Option<String>,
    /// Follow the execution wave by wave until it ends
    #[arg(long)]
    wait: bool,
    /// A recovery that replaces the live instances of an earlier recovery (refused otherwise)
    #[arg(long)]
    replace_live_recovery: bool,
    /// Recover only these waves (comma-separated); the waves they depend on must be among
    /// them or already recovered and live
    #[arg(long, value_name = "WAVES", value_delimiter = ',')]
    only_waves: Vec<String>,
    #[command(flatten)]
    target: Target,
}

#[derive(Clone, Copy, ValueEnum)]
enum ModeArg {
    Drill,
    Recovery,
    /// Home again after a recovery, once every Failback Client is in sync
    Failback,
}

impl From<ModeArg> for Mode {
    fn from(mode: ModeArg) -> Self {
        match mode {
            ModeArg::Drill => Mode::Drill,
            ModeArg::Recovery => Mode::Recovery,
            ModeArg::Failback => Mode::Failback,
        }
    }
}

/// The execution input for a plan given as a file or a name.
pub fn execution_input(
    plan: &str,
    mode: Mode,
    snapshot: &str,
    timing: Option<&str>,
) -> anyhow::Result<serde_json::Value> {
    let path = Path::new(plan);
    let plan_value = if path.exists() {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {plan}"))?;
        let format = Format::guess(path.file_name().and_then(|n| n.to_str()), &text);
        if let Err(issues) = drplan_core::parse_plan(&text, format) {
            let lines: Vec<String> = issues
                .iter()
                .map(|i| format!("{plan}: {}: {}", i.path, i.message))
                .collect();
            bail!(
                "the plan is not valid; nothing was started:\n{}",
                lines.join("\n")
            );
        }
        drplan_core::parse_document(&text, format)
            .map_err(|issue| anyhow::anyhow!("{plan}: {issue}"))?
    } else if plan
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && !plan.is_empty()
    {
        serde_json::Value::String(plan.to_owned())
    } else {
        bail!("{plan:?} is neither a plan file nor a plan name");
    };
    let snapshot = match snapshot.strip_prefix("before=") {
        None if snapshot == "latest" => serde_json::json!("latest"),
        Some(time) => {
            time.parse::<Timestamp>()
                .with_context(|| format!("--snapshot before={time}: not an RFC 3339 time"))?;
            serde_json::json!({ "before": time })
        }
        None => bail!("--snapshot must be `latest` or `before=TIME`"),
    };
    let mut input =
        serde_json::json!({ "plan": plan_value, "mode": mode.as_str(), "snapshot": snapshot });
    if let Some(timing) = timing {
        input["timing"] = serde_json::from_str(timing).context("--timing is not JSON")?;
    }
    // The same checks the state machine makes, before anything is sent.
    drplan_core::ExecutionInput::from_value(&input).map_err(|issues| {
        let lines: Vec<String> = issues
            .iter()
            .map(|i| format!("{}: {}", i.path, i.message))
            .collect();
        anyhow::anyhow!("the execution input is not valid:\n{}", lines.join("\n"))
    })?;
    Ok(input)
}

pub fn default_execution_name(plan: &serde_json::Value, mode: Mode) -> String {
    let plan_name = match plan {
        serde_json::Value::String(name) => name.as_str(),
        other => other.get("name").and_then(|n| n.as_str()).unwrap_or("plan"),
    };
    let now = Timestamp::now();
    // Seconds plus sub-second digits: unique enough for one person starting runs by hand.
    let stamp = now.strftime("%Y%m%dT%H%M%SZ");
    let suffix = format!("-{mode}-{stamp}-{:03}", now.subsec_millisecond());
    // Step Functions takes 80 characters at most: a long plan name is cut, never the time.
    let room = drplan_core::contract::MAX_EXECUTION_NAME.saturating_sub(suffix.len());
    let plan_part: String = plan_name.chars().take(room).collect();
    format!("{plan_part}{suffix}")
}

pub async fn start(args: &StartArgs) -> anyhow::Result<String> {
    let mode = Mode::from(args.mode);
    let mut input = execution_input(&args.plan, mode, &args.snapshot, args.timing.as_deref())?;
    if args.replace_live_recovery {
        if mode == Mode::Drill {
            bail!(
                "--replace-live-recovery applies to recoveries only: a drill never replaces a live recovery"
            );
        }
        input["replace_live_recovery"] = serde_json::Value::Bool(true);
    }
    if !args.only_waves.is_empty() {
        if let Some(plan) = input["plan"].as_object() {
            // A plan file: its wave names are known here.
            let names: Vec<&str> = plan
                .get("waves")
                .and_then(|w| w.as_array())
                .map(|waves| waves.iter().filter_map(|w| w["name"].as_str()).collect())
                .unwrap_or_default();
            if let Some(unknown) = args
                .only_waves
                .iter()
                .find(|w| !names.contains(&w.as_str()))
            {
                bail!(
                    "--only-waves: the plan has no wave {unknown:?} (its waves: {})",
                    names.join(", ")
                );
            }
        }
        input["only_waves"] = serde_json::json!(args.only_waves);
        drplan_core::ExecutionInput::from_value(&input).map_err(|issues| {
            anyhow::anyhow!(
                "--only-waves: {}",
                issues
                    .iter()
                    .map(|i| i.message.clone())
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        })?;
    }
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| default_execution_name(&input["plan"], mode));
    if let Some(problem) = drplan_core::contract::execution_name_problem(&name) {
        bail!("--name: {problem}");
    }
    let config = aws_config().await;
    let client = aws_sdk_sfn::Client::new(&config);
    let arn = state_machine_arn(&client, &args.target).await?;
    start_execution(&client, &arn, &name, &input).await
}

/// The one API call that starts a recovery.
pub async fn start_execution(
    client: &aws_sdk_sfn::Client,
    state_machine_arn: &str,
    name: &str,
    input: &serde_json::Value,
) -> anyhow::Result<String> {
    let started = client
        .start_execution()
        .state_machine_arn(state_machine_arn)
        .name(name)
        .input(input.to_string())
        .send()
        .await
        .context("StartExecution")?;
    Ok(started.execution_arn().to_owned())
}

pub async fn start_and_maybe_follow(args: &StartArgs) -> anyhow::Result<bool> {
    let arn = start(args).await?;
    println!("{arn}");
    let client = aws_sdk_sfn::Client::new(&aws_config().await);
    accept_or_follow(&client, &arn, args.wait).await
}

/// After StartExecution: without `wait`, waits for discover's verdict (a refused run is
/// a failure, with its reason); with it, follows the run to its end.
pub async fn accept_or_follow(
    client: &aws_sdk_sfn::Client,
    arn: &str,
    wait: bool,
) -> anyhow::Result<bool> {
    if !wait {
        // The run is accepted once discover has passed it (the plan's lock taken, nothing
        // live in the way); a refused run exits non-zero, saying why.
        let view = wait_for_acceptance(client, arn).await?;
        if view.progress.discovery.is_none() && view.status != ExecutionStatus::Running.as_str() {
            // Where and why, and what to run next, as `drplan status` says it.
            eprintln!(
                "drplan: the run was refused\n{}",
                super::status::render(&view).join("\n")
            );
            return Ok(false);
        }
        return Ok(true);
    }
    let view = follow(client, arn, Duration::from_secs(2)).await?;
    Ok(view.status == ExecutionStatus::Succeeded.as_str())
}

/// How long `drplan start` waits for discover's verdict before leaving the run to itself.
const ACCEPTANCE_WAIT: Duration = Duration::from_secs(15 * 60);

/// Waits until the run's discover step has accepted it (the view has its discovery) or
/// the run has ended (refused).
async fn wait_for_acceptance(
    client: &aws_sdk_sfn::Client,
    arn: &str,
) -> anyhow::Result<ExecutionView> {
    let until = std::time::Instant::now() + ACCEPTANCE_WAIT;
    loop {
        let view = view_execution(client, arn).await?;
        if view.progress.discovery.is_some()
            || view.status != ExecutionStatus::Running.as_str()
            || std::time::Instant::now() >= until
        {
            return Ok(view);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
