//! `drplan local drill`: the whole product on one machine. Starts the local cloud,
//! deploys the stack, seeds the fleet, runs the plan through the real state machine
//! and function binaries, follows it wave by wave, prints the report, and stops every
//! process it started, whatever happens.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use drplan_core::Mode;
use drplan_local::{LocalCloud, LocalCloudOptions, seed, stack, tools};

use crate::run;

/// Timing that turns a drill's minutes into seconds on the local cloud.
const LOCAL_TIMING: &str = r#"{"poll_initial_seconds": 1, "poll_max_seconds": 3, "poll_backoff_rate": 1.5, "launch_timeout_minutes": 5, "health_interval_seconds": 3, "drill_keep_seconds": 2}"#;

#[derive(Debug, Args)]
pub struct DrillArgs {
    /// The plan to run
    #[arg(long, default_value = "examples/shop.yaml")]
    plan: PathBuf,
    /// The fleet to seed (source servers, network, DNS zones, notifications)
    #[arg(long, default_value = "examples/fleet.yaml")]
    fleet: PathBuf,
    /// drill (isolated, cleaned up), recovery (DNS cut over), or both, one after the other
    #[arg(long, default_value = "both", value_parser = ["drill", "recovery", "both"])]
    mode: String,
    /// Leave approvals to a person (`drplan approve EXECUTION` from another shell, with
    /// AWS_ENDPOINT_URL set to the local cloud) instead of approving as drplan-local
    #[arg(long)]
    no_auto_approve: bool,
    /// Multiplies the DRS simulator's phase durations (1.0 is realistic)
    #[arg(long, default_value_t = 0.01)]
    time_scale: f64,
}

pub fn run(args: &DrillArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let repo_root = tools::find_repo_root(&std::env::current_dir()?)?;
        build_function_binaries(&repo_root)?;
        eprintln!("drplan local drill: starting the local cloud (moto, cargo lambda watch, DRS simulator, gateway)");
        let cloud = LocalCloud::start(LocalCloudOptions {
            repo_root: Some(repo_root.clone()),
            log_dir: Some(repo_root.join(".local").join("cloud-logs")),
            time_scale: args.time_scale,
            ..LocalCloudOptions::default()
        })
        .await
        .context("starting the local cloud")?;
        let outcome = tokio::select! {
            outcome = drill_on(&cloud, &repo_root, args) => outcome,
            signal = stop_signal() => {
                eprintln!("drplan local drill: {signal}; stopping");
                Ok(ExitCode::from(130))
            }
        };
        eprintln!("drplan local drill: stopping the local cloud");
        let logs = cloud.log_dir().to_path_buf();
        cloud.shutdown().await;
        if outcome.is_err() {
            eprintln!("drplan local drill: the local cloud's logs are in {}", logs.display());
        }
        outcome
    })
}

/// Ctrl-C or SIGTERM: the drill stops, and so does everything it started.
pub(crate) async fn stop_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut interrupt), Ok(mut terminate)) => tokio::select! {
            _ = interrupt.recv() => "interrupted",
            _ = terminate.recv() => "terminated",
        },
        // Without signal handlers the process dies on a signal, and the children's
        // parent-death signal still stops them.
        _ => std::future::pending().await,
    }
}

async fn drill_on(
    cloud: &LocalCloud,
    repo_root: &std::path::Path,
    args: &DrillArgs,
) -> anyhow::Result<ExitCode> {
    let endpoint = cloud.endpoint_url();
    let region = cloud.region();
    let deployed = stack::deploy(endpoint, region, "123456789012", repo_root)
        .await
        .context("deploying drplan into the local cloud")?;
    let fleet = seed::Fleet::from_file(&args.fleet)?;
    let seeded = seed::seed(endpoint, &fleet)
        .await
        .context("seeding the fleet")?;
    eprintln!(
        "drplan local drill: deployed {} and seeded {} source servers from {}",
        deployed.recovery_state_machine_arn,
        seeded.source_servers_created + seeded.source_servers_updated,
        args.fleet.display()
    );
    let modes: &[Mode] = match args.mode.as_str() {
        "drill" => &[Mode::Drill],
        "recovery" => &[Mode::Recovery],
        _ => &[Mode::Drill, Mode::Recovery],
    };
    let config = stack::sdk_config(endpoint, region).await;
    let sfn = aws_sdk_sfn::Client::new(&config);
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    );
    let plan = args.plan.to_str().context("the plan path is not UTF-8")?;
    for &mode in modes {
        let mut input = run::start::execution_input(plan, mode, "latest", Some(LOCAL_TIMING))?;
        use_seeded_drill_network(&mut input, &seeded);
        if let Some(plan) = input.get_mut("plan") {
            for (from, to) in seeded.use_seeded_target_groups(plan) {
                eprintln!("drplan local drill: target group {from} becomes the seeded {to}");
            }
        }
        let name = run::start::default_execution_name(&input["plan"], mode);
        let arn =
            run::start::start_execution(&sfn, &deployed.recovery_state_machine_arn, &name, &input)
                .await?;
        println!("\n== {mode}: execution {arn}");
        let approver = (!args.no_auto_approve)
            .then(|| tokio::spawn(approve_when_asked(sfn.clone(), arn.clone())));
        let view = run::status::follow(&sfn, &arn, Duration::from_secs(1)).await;
        if let Some(approver) = approver {
            approver.abort();
        }
        let view = view?;
        let plan_name = input["plan"]["name"].as_str().unwrap_or("plan");
        let key = drplan_core::contract::keys::report_markdown(plan_name, &name);
        match run::read_object(&s3, &deployed.bucket, &key).await {
            Ok(report) => println!("\n{report}"),
            Err(e) => eprintln!("drplan local drill: no report: {e:#}"),
        }
        // The local cloud goes when the rehearsal ends: its HTML page is kept as a file.
        let html_key = drplan_core::contract::keys::report_html(plan_name, &name);
        match run::read_object(&s3, &deployed.bucket, &html_key).await {
            Ok(page) => {
                let path = std::env::temp_dir().join(format!("drplan-{name}.html"));
                match std::fs::write(&path, page) {
                    Ok(()) => println!("HTML report (with its timeline): {}", path.display()),
                    Err(e) => eprintln!("drplan local drill: {}: {e}", path.display()),
                }
            }
            Err(e) => eprintln!("drplan local drill: no HTML report: {e:#}"),
        }
        if view.status != "SUCCEEDED" {
            return Ok(ExitCode::FAILURE);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Plays the on-call person of a rehearsal: when the run asks for approval, approves
/// it, saying so, as `drplan approve` would.
async fn approve_when_asked(sfn: aws_sdk_sfn::Client, arn: String) {
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let Ok(token) = run::decide::pending_approval_token(&sfn, &arn).await else {
            continue;
        };
        let decision = serde_json::json!({"approved": true, "by": "drplan-local (rehearsal)"});
        match sfn
            .send_task_success()
            .task_token(token)
            .output(decision.to_string())
            .send()
            .await
        {
            Ok(_) => {
                println!(
                    "  approval requested: approved as drplan-local (rehearsal); a real run waits for `drplan approve`"
                );
                return;
            }
            Err(e) => eprintln!("drplan local drill: could not approve: {e}"),
        }
    }
}

/// Builds the function binaries before the cloud starts: `cargo lambda watch` would
/// otherwise compile each one inside its first invocation, in silence, while the state
/// machine waits. Same package selection as its `cargo run --bin NAME`, so nothing is
/// built twice.
fn build_function_binaries(repo_root: &std::path::Path) -> anyhow::Result<()> {
    eprintln!(
        "drplan local drill: building the function binaries (the first time takes a few minutes)"
    );
    let status =
        std::process::Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .args(["build", "--quiet", "--bins"])
            .current_dir(repo_root)
            .status()
            .context("running cargo build")?;
    anyhow::ensure!(
        status.success(),
        "cargo build of the function binaries failed ({status})"
    );
    Ok(())
}

/// A plan's drill subnet names a subnet of the user's AWS account, which the local cloud
/// does not have: a local rehearsal drills in the seeded drill subnet (isolated: its
/// route table has only the local route) with the seeded drill security group instead,
/// saying so.
fn use_seeded_drill_network(input: &mut serde_json::Value, seeded: &seed::SeedReport) {
    let Some(drill) = input
        .get_mut("plan")
        .and_then(|plan| plan.get_mut("drill"))
        .and_then(serde_json::Value::as_object_mut)
    else {
        return;
    };
    if drill.contains_key("subnet_id") {
        eprintln!(
            "drplan local drill: drill.subnet_id {} becomes the seeded drill subnet {} (security group {})",
            drill["subnet_id"], seeded.drill_subnet_id, seeded.drill_security_group_id
        );
        drill.insert("subnet_id".into(), seeded.drill_subnet_id.clone().into());
        drill.insert(
            "security_group_ids".into(),
            serde_json::json!([seeded.drill_security_group_id]),
        );
    }
}
