//! `drplan start`, `drplan status` and `drplan report`: one StartExecution, and a
//! readable view of a running or finished execution.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use aws_sdk_sfn::types::{ExecutionStatus, HistoryEventType};
use clap::{Args, ValueEnum};
use drplan_core::contract::{Discovery, LaunchState, WaveStep};
use drplan_core::{Format, Mode};
use jiff::Timestamp;

/// The state machine drplan's stack creates (found by this name when no ARN is given).
pub const STATE_MACHINE_NAME: &str = "drplan-recovery";

#[derive(Args, Clone)]
pub struct Target {
    /// The recovery state machine [default: $DRPLAN_STATE_MACHINE_ARN, else the one named drplan-recovery]
    #[arg(long, value_name = "ARN")]
    state_machine: Option<String>,
}

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
    #[command(flatten)]
    target: Target,
}

#[derive(Clone, Copy, ValueEnum)]
enum ModeArg {
    Drill,
    Recovery,
}

impl From<ModeArg> for Mode {
    fn from(mode: ModeArg) -> Self {
        match mode {
            ModeArg::Drill => Mode::Drill,
            ModeArg::Recovery => Mode::Recovery,
        }
    }
}

#[derive(Args)]
pub struct StatusArgs {
    /// Execution ARN, or name (with the state machine)
    execution: String,
    /// Keep following until the execution ends
    #[arg(long)]
    wait: bool,
    #[command(flatten)]
    target: Target,
}

#[derive(Args)]
pub struct ReportArgs {
    /// Execution ARN, or name (with the state machine)
    execution: String,
    #[arg(long, value_enum, default_value_t = ReportFormat::Md)]
    format: ReportFormat,
    /// The stack's bucket [default: $DRPLAN_BUCKET]
    #[arg(long)]
    bucket: Option<String>,
    #[command(flatten)]
    target: Target,
}

#[derive(Clone, Copy, ValueEnum)]
enum ReportFormat {
    Md,
    Json,
}

/// The SDK configuration: honours AWS_ENDPOINT_URL, so the same commands drive AWS or
/// the local cloud.
pub async fn aws_config() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
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

/// What a person sees of an execution.
#[derive(Debug, Default, PartialEq)]
pub struct ExecutionView {
    pub status: String,
    pub started: Option<Timestamp>,
    pub stopped: Option<Timestamp>,
    pub error: Option<(String, String)>,
    pub discovery: Option<Discovery>,
    /// Latest launch state per wave index.
    pub waves: BTreeMap<usize, WaveStep>,
    /// Waves whose instances were tagged (their launch is complete).
    pub tagged: Vec<String>,
    pub current_state: Option<String>,
}

pub async fn view_execution(
    client: &aws_sdk_sfn::Client,
    arn: &str,
) -> anyhow::Result<ExecutionView> {
    let described = client
        .describe_execution()
        .execution_arn(arn)
        .send()
        .await
        .context("DescribeExecution")?;
    let mut view = ExecutionView {
        status: described.status().as_str().to_owned(),
        started: to_timestamp(described.start_date()),
        stopped: described.stop_date().and_then(to_timestamp),
        error: described.error().map(|e| {
            (
                e.to_owned(),
                described.cause().unwrap_or_default().to_owned(),
            )
        }),
        ..ExecutionView::default()
    };
    let mut pages = client
        .get_execution_history()
        .execution_arn(arn)
        .max_results(1000)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.context("GetExecutionHistory")?;
        for event in page.events() {
            if event.r#type() == &HistoryEventType::TaskStateEntered {
                view.current_state = event
                    .state_entered_event_details()
                    .map(|d| d.name().to_owned());
            }
            let Some(exited) = event.state_exited_event_details() else {
                continue;
            };
            let Some(output) = exited.output() else {
                continue;
            };
            match exited.name() {
                "Discover" => view.discovery = serde_json::from_str(output).ok(),
                "LaunchWave" | "CheckLaunch" => {
                    if let Ok(step) = serde_json::from_str::<WaveStep>(output) {
                        view.waves.insert(step.wave.index, step);
                    }
                }
                "TagInstances" => {
                    if let Ok(step) = serde_json::from_str::<WaveStep>(output) {
                        view.tagged.push(step.wave.name);
                    }
                }
                _ => {}
            }
        }
    }
    Ok(view)
}

fn to_timestamp(date: &aws_sdk_sfn::primitives::DateTime) -> Option<Timestamp> {
    Timestamp::from_second(date.secs()).ok()
}

const BAR_WIDTH: usize = 20;

/// The execution as lines of text: one per wave, with a progress bar.
pub fn render(view: &ExecutionView) -> Vec<String> {
    let mut lines = Vec::new();
    let elapsed = match (
        view.started,
        view.stopped.or_else(|| Some(Timestamp::now())),
    ) {
        (Some(start), Some(end)) => {
            let secs = end.duration_since(start).as_secs().max(0);
            format!("{}m{:02}s", secs / 60, secs % 60)
        }
        _ => String::new(),
    };
    lines.push(format!("{}  {elapsed}", view.status));
    let Some(discovery) = &view.discovery else {
        lines.push(match &view.current_state {
            Some(state) => format!("  {state}..."),
            None => "  discovering the plan's servers...".to_owned(),
        });
        return lines;
    };
    lines.push(format!(
        "  plan {} ({}), {} servers in {} waves",
        discovery.run.plan,
        discovery.run.mode,
        discovery.server_count,
        discovery.layers.iter().map(Vec::len).sum::<usize>()
    ));
    let width = discovery
        .layers
        .iter()
        .flatten()
        .map(|w| w.name.len())
        .max()
        .unwrap_or(4);
    for (stage, layer) in discovery.layers.iter().enumerate() {
        for wave in layer {
            let step = view.waves.get(&wave.index);
            let (launched, failed) = step
                .and_then(|s| s.poll.as_ref())
                .map_or((0, 0), |p| (p.launched, p.failed));
            let done = (launched + failed).min(wave.servers);
            let filled = (done * BAR_WIDTH).checked_div(wave.servers).unwrap_or(0);
            let bar = format!("{}{}", "#".repeat(filled), ".".repeat(BAR_WIDTH - filled));
            let state = match step.and_then(|s| s.poll.as_ref()) {
                None if step.is_some() => "launching".to_owned(),
                None => "waiting".to_owned(),
                Some(p) => match p.state {
                    LaunchState::InProgress => "launching".to_owned(),
                    LaunchState::Succeeded if view.tagged.contains(&wave.name) => {
                        "recovered".to_owned()
                    }
                    LaunchState::Succeeded => "launched".to_owned(),
                    LaunchState::Failed => format!("FAILED: {}", p.reason.as_deref().unwrap_or("")),
                },
            };
            let failed_note = if failed > 0 {
                format!(", {failed} failed")
            } else {
                String::new()
            };
            lines.push(format!(
                "  stage {} {:width$}  [{bar}] {launched}/{} launched{failed_note}  {state}",
                stage + 1,
                wave.name,
                wave.servers
            ));
        }
    }
    if let Some((error, cause)) = &view.error {
        lines.push(format!("  error {error}: {cause}"));
    }
    lines
}

/// Follows an execution until it ends, redrawing in place on a terminal and printing
/// only changes otherwise. Returns the final view.
pub async fn follow(
    client: &aws_sdk_sfn::Client,
    arn: &str,
    interval: Duration,
) -> anyhow::Result<ExecutionView> {
    let terminal = std::io::stdout().is_terminal();
    let mut previous: Vec<String> = Vec::new();
    loop {
        let view = view_execution(client, arn).await?;
        let mut lines = render(&view);
        // The elapsed time changes every poll; compare the rest.
        let changed = lines.get(1..) != previous.get(1..);
        if terminal && !previous.is_empty() {
            print!("\x1b[{}A\x1b[J", previous.len());
        }
        if terminal || changed {
            println!("{}", lines.join("\n"));
        }
        if view.status != ExecutionStatus::Running.as_str() {
            return Ok(view);
        }
        previous = std::mem::take(&mut lines);
        tokio::time::sleep(interval).await;
    }
}

/// Where an execution's records live: its plan's name, its own name, and the bucket.
struct RunLocation {
    plan: String,
    execution_name: String,
    bucket: String,
}

async fn locate_run(
    sfn: &aws_sdk_sfn::Client,
    target: &Target,
    execution: &str,
    bucket: &Option<String>,
) -> anyhow::Result<RunLocation> {
    let arn = execution_arn(sfn, target, execution).await?;
    let described = sfn
        .describe_execution()
        .execution_arn(&arn)
        .send()
        .await
        .context("DescribeExecution")?;
    let input: serde_json::Value =
        serde_json::from_str(described.input().unwrap_or("{}")).unwrap_or_default();
    let plan = match &input["plan"] {
        serde_json::Value::String(name) => name.clone(),
        other => other["name"].as_str().unwrap_or("unknown").to_owned(),
    };
    let bucket = bucket
        .clone()
        .or_else(|| std::env::var("DRPLAN_BUCKET").ok())
        .context("no bucket: pass --bucket or set DRPLAN_BUCKET")?;
    Ok(RunLocation {
        plan,
        execution_name: described.name().unwrap_or_default().to_owned(),
        bucket,
    })
}

pub async fn report(args: &ReportArgs) -> anyhow::Result<String> {
    let config = aws_config().await;
    let sfn = aws_sdk_sfn::Client::new(&config);
    let run = locate_run(&sfn, &args.target, &args.execution, &args.bucket).await?;
    let extension = match args.format {
        ReportFormat::Md => "md",
        ReportFormat::Json => "json",
    };
    let key = format!("reports/{}/{}.{extension}", run.plan, run.execution_name);
    read_object(&aws_sdk_s3::Client::new(&config), &run.bucket, &key).await
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

pub async fn status(args: &StatusArgs) -> anyhow::Result<ExecutionView> {
    let config = aws_config().await;
    let client = aws_sdk_sfn::Client::new(&config);
    let arn = execution_arn(&client, &args.target, &args.execution).await?;
    if args.wait {
        return follow(&client, &arn, Duration::from_secs(2)).await;
    }
    let view = view_execution(&client, &arn).await?;
    println!("{}", render(&view).join("\n"));
    Ok(view)
}

pub async fn start_and_maybe_follow(args: &StartArgs) -> anyhow::Result<bool> {
    let arn = start(args).await?;
    println!("{arn}");
    let client = aws_sdk_sfn::Client::new(&aws_config().await);
    if !args.wait {
        // The run is accepted once discover has passed it (the plan's lock taken, nothing
        // live in the way); a refused run exits non-zero, saying why.
        let view = wait_for_acceptance(&client, &arn).await?;
        if view.discovery.is_none() && view.status != ExecutionStatus::Running.as_str() {
            let (error, cause) = view.error.unwrap_or_default();
            eprintln!(
                "drplan start: the run was refused ({}): {error}\n{cause}",
                view.status
            );
            return Ok(false);
        }
        return Ok(true);
    }
    let view = follow(&client, &arn, Duration::from_secs(2)).await?;
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
        if view.discovery.is_some()
            || view.status != ExecutionStatus::Running.as_str()
            || std::time::Instant::now() >= until
        {
            return Ok(view);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

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

/// The task token of the execution's pending approval, from its history: the
/// approval task's parameters carry it, and no later event has answered it.
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
    let mut token: Option<(i64, String)> = None;
    let mut answered_after: Option<i64> = None;
    let mut pages = client
        .get_execution_history()
        .execution_arn(arn)
        .max_results(1000)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        for event in page.context("GetExecutionHistory")?.events() {
            if let Some(details) = event.task_scheduled_event_details() {
                let parameters: serde_json::Value =
                    serde_json::from_str(details.parameters()).unwrap_or_default();
                let payload = &parameters["Payload"];
                if payload["event"] == "APPROVAL_NEEDED"
                    && let Some(t) = payload["task_token"].as_str()
                {
                    token = Some((event.id(), t.to_owned()));
                }
            }
            if matches!(
                event.r#type(),
                HistoryEventType::TaskSucceeded
                    | HistoryEventType::TaskFailed
                    | HistoryEventType::TaskTimedOut
            ) {
                answered_after = Some(event.id());
            }
        }
    }
    match token {
        Some((scheduled, token)) if answered_after.is_none_or(|a| a < scheduled) => Ok(token),
        Some(_) => bail!("the execution's approval was already answered"),
        None => bail!("the execution is not waiting for approval"),
    }
}

fn decider(by: &Option<String>) -> String {
    by.clone()
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// `drplan approve` / `drplan decline`: answers the approval task; the state machine
/// launches (approved) or ends with nothing launched (declined).
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

#[derive(Args)]
pub struct RollbackArgs {
    /// Execution ARN, or name (with the state machine)
    execution: String,
    /// The stack's bucket [default: $DRPLAN_BUCKET]
    #[arg(long)]
    bucket: Option<String>,
    #[command(flatten)]
    target: Target,
}

/// `drplan rollback-dns`: puts every record a recovery changed back to its old values
/// (deleting those it created), in one batch, and waits until it is in sync.
pub async fn rollback_dns(args: &RollbackArgs) -> anyhow::Result<String> {
    let config = aws_config().await;
    let sfn = aws_sdk_sfn::Client::new(&config);
    let run = locate_run(&sfn, &args.target, &args.execution, &args.bucket).await?;
    let key = format!("runs/{}/{}/dns.json", run.plan, run.execution_name);
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
