//! `drplan status`: a running or finished execution wave by wave, from its description
//! and its history; `--wait` follows it until it ends.

use std::io::IsTerminal;
use std::time::Duration;

use anyhow::Context;
use aws_sdk_sfn::types::ExecutionStatus;
use clap::Args;
use drplan_aws::history::{self, FailedState, Pause, Progress};
use drplan_core::contract::LaunchState;
use drplan_core::contract::notice::PauseRequest;
use drplan_core::contract::step::StepError;
use jiff::Timestamp;

use super::why::{RunNames, next_steps, short_cause};
use super::{Target, aws_config, execution_arn};

#[derive(Args)]
pub struct StatusArgs {
    /// Execution ARN, or name (with the state machine)
    execution: String,
    /// Keep following until the execution ends
    #[arg(long)]
    wait: bool,
    /// The stack's bucket, to show a pause requested and not reached yet [default: $DRPLAN_BUCKET, else the deployed stack's output PlansBucketName, else the local cloud's]
    #[arg(long)]
    bucket: Option<String>,
    #[command(flatten)]
    target: Target,
}

/// What a person sees of an execution.
#[derive(Debug, Default, PartialEq)]
pub struct ExecutionView {
    pub status: String,
    pub started: Option<Timestamp>,
    pub stopped: Option<Timestamp>,
    pub error: Option<(String, String)>,
    /// Its waves so far, from its history.
    pub progress: Progress,
    /// The execution, its plan and mode (from its input: known before discovery).
    pub run: RunNames,
    /// Where a run that did not succeed stopped.
    pub failed_state: Option<FailedState>,
    /// Whether a running execution holds at a pause.
    pub pause: Pause,
    /// A pause requested and not reached yet (`Some(None)`: one not in drplan's JSON).
    pub pause_requested: Option<Option<PauseRequest>>,
    /// The state machine that runs it.
    pub state_machine_arn: String,
}

/// The statuses of a run that ended without succeeding.
const ENDED_BADLY: [&str; 3] = ["FAILED", "TIMED_OUT", "ABORTED"];

/// The run's names, from its execution input.
fn run_names(execution: &str, input: &serde_json::Value) -> RunNames {
    let plan = match &input["plan"] {
        serde_json::Value::String(name) => Some(name.clone()),
        inline => inline["name"].as_str().map(str::to_owned),
    };
    RunNames {
        execution: execution.to_owned(),
        plan,
        plan_stored: input["plan"].is_string(),
        mode: drplan_core::report::mode_of(input),
    }
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
    let events = history::history(client, arn).await?;
    let status = described.status().as_str().to_owned();
    let input: serde_json::Value =
        serde_json::from_str(described.input().unwrap_or("{}")).unwrap_or_default();
    let failed_state = ENDED_BADLY
        .contains(&status.as_str())
        .then(|| history::failed_state(&events, described.error()))
        .flatten();
    let pause = if status == "RUNNING" {
        history::pause(&events)
    } else {
        Pause::NotHolding
    };
    Ok(ExecutionView {
        pause,
        run: run_names(described.name().unwrap_or(arn), &input),
        failed_state,
        status,
        started: to_timestamp(described.start_date()),
        stopped: described.stop_date().and_then(to_timestamp),
        error: described.error().map(|e| {
            (
                e.to_owned(),
                described.cause().unwrap_or_default().to_owned(),
            )
        }),
        pause_requested: None,
        state_machine_arn: described.state_machine_arn().to_owned(),
        progress: history::progress(&events),
    })
}

/// Adds a pause requested and not reached yet to a running execution's view.
async fn with_requested_pause(
    config: &aws_config::SdkConfig,
    bucket: Option<&str>,
    mut view: ExecutionView,
) -> ExecutionView {
    if view.status != "RUNNING" || view.pause != Pause::NotHolding {
        return view;
    }
    let Some(records) = view.progress.discovery.as_ref().map(|d| d.run.records()) else {
        return view;
    };
    view.pause_requested =
        super::pause::requested_pause(config, bucket, &view.state_machine_arn, &records).await;
    view
}

/// The lines of a running execution's pause: holding since when, by whom, and the
/// deadline that keeps counting; or a pause requested and not reached yet.
fn pause_lines(view: &ExecutionView, now: Timestamp) -> Vec<String> {
    let deadline = view
        .progress
        .discovery
        .as_ref()
        .and_then(|d| d.run.deadline);
    let who = |request: &Option<PauseRequest>| match request {
        Some(r) => format!(
            " by {}{}",
            r.by,
            r.reason
                .as_deref()
                .map(|why| format!(" ({why})"))
                .unwrap_or_default()
        ),
        None => String::new(),
    };
    match &view.pause {
        Pause::Holding {
            since,
            layer,
            request,
            ..
        } => vec![
            format!(
                "  PAUSED before stage {}{}{}: nothing more launches until `drplan continue {}`",
                layer + 1,
                since
                    .map(|s| format!(
                        " since {} ({}m)",
                        s.strftime("%H:%M:%S UTC"),
                        now.duration_since(s).as_secs().max(0) / 60
                    ))
                    .unwrap_or_default(),
                who(request),
                view.run.execution
            ),
            format!("  {}", super::pause::deadline_note(deadline, now)),
        ],
        Pause::NotHolding => match &view.pause_requested {
            Some(request) => vec![format!(
                "  pause requested{}{}: the run holds before its next stage starts",
                who(request),
                request
                    .as_ref()
                    .map(|r| format!(" at {}", r.at.strftime("%H:%M:%S UTC")))
                    .unwrap_or_default()
            )],
            None => Vec::new(),
        },
    }
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
    let progress = &view.progress;
    let ended_badly = ENDED_BADLY.contains(&view.status.as_str());
    let Some(discovery) = &progress.discovery else {
        if !ended_badly {
            lines.push(match &progress.current_state {
                Some(state) => format!("  {state}..."),
                None => "  discovering the plan's servers...".to_owned(),
            });
            lines.extend(pause_lines(view, Timestamp::now()));
            return lines;
        }
        lines.push(format!(
            "  plan {} ({}), ended before its waves were known",
            view.run.plan.as_deref().unwrap_or("unknown"),
            view.run.mode.map_or("unknown mode", |m| m.as_str())
        ));
        lines.extend(why(view));
        return lines;
    };
    lines.push(format!(
        "  plan {} ({}), {} servers in {} waves",
        discovery.run.plan,
        discovery.run.mode,
        discovery.server_count,
        discovery.layers.iter().map(Vec::len).sum::<usize>()
    ));
    if let Some(resumed) = &discovery.run.resumed {
        lines.push(format!(
            "  resumes {} (the recovery first started {})",
            resumed.execution_name, resumed.first_started_at
        ));
    }
    for skipped in &discovery.skipped {
        let by = skipped
            .by
            .as_ref()
            .map_or(String::new(), |by| format!(" (by {by})"));
        lines.push(format!(
            "  skipped {}: {}{by}",
            skipped.wave, skipped.reason
        ));
    }
    if !discovery.left_out.is_empty() {
        lines.push(format!(
            "  not in this run: {}",
            discovery.left_out.join(", ")
        ));
    }
    let width = discovery
        .layers
        .iter()
        .flatten()
        .map(|w| w.name.len())
        .max()
        .unwrap_or(4);
    for (stage, layer) in discovery.layers.iter().enumerate() {
        for wave in layer {
            let step = progress.waves.get(&wave.index);
            let (launched, failed) = step
                .and_then(|s| s.poll.as_ref())
                .map_or((0, 0), |p| (p.launched, p.failed));
            let done = (launched + failed).min(wave.servers);
            let filled = (done * BAR_WIDTH).checked_div(wave.servers).unwrap_or(0);
            let bar = format!("{}{}", "#".repeat(filled), ".".repeat(BAR_WIDTH - filled));
            // A run that has ended launches nothing more: its unfinished waves say so
            // instead of "launching" / "waiting".
            let (in_flight, not_started) = if view.status == "RUNNING" {
                ("launching", "waiting")
            } else {
                ("stopped while launching", "not started")
            };
            let state = match step.and_then(|s| s.poll.as_ref()) {
                None if step.is_some() => in_flight.to_owned(),
                None => not_started.to_owned(),
                Some(p) => match p.state {
                    LaunchState::InProgress => in_flight.to_owned(),
                    LaunchState::Succeeded if progress.tagged.contains(&wave.name) => {
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
            let kept = if wave.adopted {
                " (kept from the run resumed)"
            } else {
                ""
            };
            lines.push(format!(
                "  stage {} {:width$}  [{bar}] {launched}/{} launched{failed_note}  {state}{kept}",
                stage + 1,
                wave.name,
                wave.servers
            ));
        }
    }
    if view.status == "RUNNING" {
        lines.extend(pause_lines(view, Timestamp::now()));
    }
    if ended_badly {
        lines.extend(why(view));
    } else if let Some((error, cause)) = &view.error {
        lines.push(format!("  error {error}: {cause}"));
    }
    lines
}

/// Why a run ended badly: the state that stopped it, its error with the cause as a
/// person reads it (a Lambda error's message, not its JSON envelope), what to run next.
fn why(view: &ExecutionView) -> Vec<String> {
    let mut lines = Vec::new();
    let verb = match view.status.as_str() {
        "TIMED_OUT" => "timed out",
        "ABORTED" => "stopped",
        _ => "failed",
    };
    if let Some(state) = &view.failed_state {
        let wave = state
            .wave
            .as_ref()
            .map(|w| format!(" (wave {w})"))
            .unwrap_or_default();
        lines.push(format!("  {verb} in {}{wave}", state.name));
    }
    let (error, cause) = view.error.clone().unwrap_or_default();
    let (error, message) = StepError {
        error: Some(error),
        cause: Some(cause),
    }
    .describe();
    let mut cause_lines = short_cause(&message, &view.run).into_iter();
    match cause_lines.next() {
        Some(first) => lines.push(format!("  error {error}: {first}")),
        None => lines.push(format!("  error {error}")),
    }
    lines.extend(cause_lines.map(|line| format!("    {line}")));
    lines.extend(
        next_steps(&view.status, &error, &message, &view.run)
            .into_iter()
            .map(|line| format!("  {line}")),
    );
    lines
}

/// Follows an execution until it ends, redrawing in place on a terminal and printing
/// only changes otherwise. Returns the final view.
pub async fn follow(
    client: &aws_sdk_sfn::Client,
    arn: &str,
    interval: Duration,
) -> anyhow::Result<ExecutionView> {
    follow_with(client, None, arn, interval).await
}

/// [`follow`], showing a pause requested and not reached yet when `bucket_lookup` (the
/// configuration and the `--bucket` given) is there.
async fn follow_with(
    client: &aws_sdk_sfn::Client,
    bucket_lookup: Option<(&aws_config::SdkConfig, Option<&str>)>,
    arn: &str,
    interval: Duration,
) -> anyhow::Result<ExecutionView> {
    let terminal = std::io::stdout().is_terminal();
    let mut previous: Vec<String> = Vec::new();
    loop {
        let mut view = view_execution(client, arn).await?;
        if let Some((config, bucket)) = bucket_lookup {
            view = with_requested_pause(config, bucket, view).await;
        }
        let mut lines = render(&view);
        // The elapsed time changes every poll; compare the rest. The end is always
        // shown: its first line carries the outcome, even when nothing else changed.
        let changed = lines.get(1..) != previous.get(1..);
        let ended = view.status != ExecutionStatus::Running.as_str();
        if terminal && !previous.is_empty() {
            print!("\x1b[{}A\x1b[J", previous.len());
        }
        if terminal || changed || ended {
            println!("{}", lines.join("\n"));
        }
        if ended {
            return Ok(view);
        }
        previous = std::mem::take(&mut lines);
        tokio::time::sleep(interval).await;
    }
}

pub async fn status(args: &StatusArgs) -> anyhow::Result<ExecutionView> {
    let config = aws_config().await;
    let client = aws_sdk_sfn::Client::new(&config);
    let arn = execution_arn(&client, &args.target, &args.execution).await?;
    let bucket = args.bucket.as_deref();
    if args.wait {
        return follow_with(
            &client,
            Some((&config, bucket)),
            &arn,
            Duration::from_secs(2),
        )
        .await;
    }
    let view = with_requested_pause(&config, bucket, view_execution(&client, &arn).await?).await;
    println!("{}", render(&view).join("\n"));
    Ok(view)
}

#[cfg(test)]
mod tests {
    use drplan_core::contract::{Discovery, LaunchPoll, RunContext, WaveRef, WaveStep};
    use serde_json::json;

    use super::*;

    fn run() -> RunContext {
        serde_json::from_value(json!({
            "execution_id": "arn:aws:states:us-east-1:1:execution:drplan-recovery:shop-1",
            "execution_name": "shop-1", "plan": "shop", "mode": "recovery",
            "started_at": "2026-11-28T03:00:00Z", "snapshot": "latest",
            "timing": drplan_core::Timing::default(), "quotas": drplan_core::Quotas::default()
        }))
        .expect("a run context")
    }

    fn wave(index: usize, name: &str, servers: usize) -> WaveRef {
        WaveRef {
            index,
            name: name.into(),
            servers,
            hooks: Default::default(),
            adopted: false,
        }
    }

    fn step(wave: WaveRef, state: LaunchState, launched: usize, failed: usize) -> WaveStep {
        WaveStep {
            run: run(),
            poll: Some(LaunchPoll {
                state,
                attempt: 3,
                wait_seconds: 2,
                deadline: "2026-11-28T04:00:00Z".parse().expect("a time"),
                launched,
                failed,
                pending: wave.servers - launched - failed,
                reason: (failed > 0).then(|| "db-2 did not launch".to_owned()),
            }),
            health: None,
            wave,
        }
    }

    fn view(progress: Progress) -> ExecutionView {
        ExecutionView {
            status: "RUNNING".into(),
            started: Some("2026-11-28T03:00:00Z".parse().expect("a time")),
            stopped: Some("2026-11-28T03:02:05Z".parse().expect("a time")),
            error: None,
            progress,
            ..ExecutionView::default()
        }
    }

    #[test]
    fn before_discovery_the_view_names_the_state_it_is_in() {
        let mut progress = Progress::default();
        assert_eq!(
            render(&view(progress.clone())),
            ["RUNNING  2m05s", "  discovering the plan's servers..."]
        );
        progress.current_state = Some("Discover".into());
        assert_eq!(render(&view(progress))[1], "  Discover...");
    }

    #[test]
    fn a_run_refused_in_discover_says_where_why_and_what_next() {
        let mut view = view(Progress {
            current_state: Some("ReportDiscoveryFailure".into()),
            ..Progress::default()
        });
        view.status = "FAILED".into();
        view.stopped = Some("2026-11-28T03:00:04Z".parse().expect("a time"));
        view.run = RunNames {
            execution: "shop-recovery-1".into(),
            plan: Some("shop".into()),
            plan_stored: true,
            mode: Some(drplan_core::Mode::Recovery),
        };
        view.failed_state = Some(FailedState {
            name: "Discover".into(),
            wave: None,
        });
        view.error = Some((
            "drplan.InvalidPlan".into(),
            json!({"errorType": "drplan.InvalidPlan",
                   "errorMessage": "the plan has 2 problems:\nwaves[0]: a\nwaves[1]: b"})
            .to_string(),
        ));
        assert_eq!(
            render(&view),
            [
                "FAILED  0m04s",
                "  plan shop (recovery), ended before its waves were known",
                "  failed in Discover",
                "  error drplan.InvalidPlan: the plan has 2 problems:",
                "    waves[0]: a",
                "    waves[1]: b",
                "  next: fix the plan's problems above (`drplan validate PLAN_FILE` checks a plan file), then: drplan start shop --mode recovery",
                "  report: drplan report shop-recovery-1",
            ]
        );
    }

    #[test]
    fn each_wave_has_a_bar_and_its_state() {
        let (db, web, app) = (wave(0, "db", 4), wave(1, "web", 10), wave(2, "app", 2));
        let discovery: Discovery = serde_json::from_value(json!({
            "run": run(), "layers": [[db], [web, app]], "requires_approval": false,
            "approval_timeout_seconds": 3600, "keep_seconds": 0, "server_count": 16,
            "warnings": []
        }))
        .expect("a discovery");
        let progress = Progress {
            current_state: Some("CheckLaunch".into()),
            discovery: Some(discovery),
            waves: [
                (0, step(wave(0, "db", 4), LaunchState::Succeeded, 4, 0)),
                (1, step(wave(1, "web", 10), LaunchState::Failed, 4, 1)),
            ]
            .into(),
            tagged: vec!["db".into()],
        };
        let mut view = view(progress);
        view.error = Some(("drplan.WaveFailed".into(), "web failed".into()));
        assert_eq!(
            render(&view),
            [
                "RUNNING  2m05s",
                "  plan shop (recovery), 16 servers in 3 waves",
                "  stage 1 db   [####################] 4/4 launched  recovered",
                "  stage 2 web  [##########..........] 4/10 launched, 1 failed  FAILED: db-2 did not launch",
                "  stage 2 app  [....................] 0/2 launched  waiting",
                "  error drplan.WaveFailed: web failed",
            ]
        );
    }

    #[test]
    fn a_run_that_ended_shows_its_unfinished_waves_as_stopped_not_launching() {
        let (db, web) = (wave(0, "db", 2), wave(1, "web", 2));
        let discovery: Discovery = serde_json::from_value(json!({
            "run": run(), "layers": [[db, web]], "requires_approval": false,
            "approval_timeout_seconds": 3600, "keep_seconds": 0, "server_count": 4,
            "warnings": []
        }))
        .expect("a discovery");
        let progress = Progress {
            current_state: None,
            discovery: Some(discovery),
            waves: [(0, step(wave(0, "db", 2), LaunchState::InProgress, 0, 0))].into(),
            tagged: vec![],
        };
        let mut view = view(progress);
        let running = render(&view);
        assert!(
            running[2].ends_with("0/2 launched  launching"),
            "{running:?}"
        );
        assert!(running[3].ends_with("0/2 launched  waiting"), "{running:?}");
        view.status = "FAILED".into();
        let ended = render(&view);
        assert!(
            ended[2].ends_with("0/2 launched  stopped while launching"),
            "{ended:?}"
        );
        assert!(ended[3].ends_with("0/2 launched  not started"), "{ended:?}");
    }

    #[test]
    fn a_paused_run_says_since_when_by_whom_and_that_its_deadline_counts() {
        let mut with_deadline = run();
        with_deadline.deadline = "2026-11-28T05:00:00Z".parse().ok();
        let discovery: Discovery = serde_json::from_value(json!({
            "run": with_deadline,
            "layers": [[wave(0, "db", 2)], [wave(1, "web", 2)]], "requires_approval": false,
            "approval_timeout_seconds": 3600, "keep_seconds": 0, "server_count": 4,
            "warnings": []
        }))
        .expect("a discovery");
        let mut view = view(Progress {
            discovery: Some(discovery),
            ..Progress::default()
        });
        view.run.execution = "shop-1".into();
        view.pause = Pause::Holding {
            task_token: "t".into(),
            since: "2026-11-28T03:00:00Z".parse().ok(),
            layer: 1,
            request: Some(PauseRequest {
                by: "alice".into(),
                reason: Some("db checks".into()),
                at: "2026-11-28T02:59:00Z".parse().expect("a time"),
            }),
        };
        let now = "2026-11-28T03:10:00Z".parse().expect("a time");
        assert_eq!(
            pause_lines(&view, now),
            [
                "  PAUSED before stage 2 since 03:00:00 UTC (10m) by alice (db checks): nothing more launches until `drplan continue shop-1`",
                "  the run's time limit keeps counting while it holds: it ends at 2026-11-28 05:00:00 UTC (in 110m)",
            ]
        );
        view.pause = Pause::NotHolding;
        assert!(pause_lines(&view, now).is_empty());
        view.pause_requested = Some(None);
        assert_eq!(
            pause_lines(&view, now),
            ["  pause requested: the run holds before its next stage starts"]
        );
    }
}
