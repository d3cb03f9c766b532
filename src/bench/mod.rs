//! `drplan bench`: what the orchestration costs, measured side by side on this machine
//! (issue #8). Builds what it needs, then measures:
//!
//! 1. cold start of every function binary under a Lambda Runtime API served here, and
//!    of a Python 3 + boto3 handler making the same first AWS call, both against the
//!    local cloud;
//! 2. peak memory (VmHWM) of the function processes that served a 4,000-server plan;
//! 3. the arm64 zip of each function (`cargo lambda build`);
//! 4. orchestration overhead: a plan's wall time against the simulator's ideal, and
//!    where the largest plan's time went (per state, from the execution history);
//! 5. cost drivers: state transitions, Lambda invocations and AWS API calls per
//!    execution, per wave and per server, and the cost of a 100-server drill.
//!
//! Prints the results and writes them to `BENCHMARKS.md`. Every process it starts is
//! stopped by pid (the local cloud's supervisor, or
//! [`drplan_local::process::SupervisedChild`]), also on error and on Ctrl-C. All
//! traffic stays on 127.0.0.1.
//!
//! One module per section: [`cold`], [`memory`], [`packages`], and [`runs`] for 4 and 5,
//! with the plans it runs ([`plans`]), the machine it ran on ([`machine`]), drplan's
//! share of each run apart from the local cloud's ([`share`]) and the Markdown it writes
//! ([`report`]).
//!
//! `--only scale` runs just the scale comparison (a 4-wave DAG at 10 and at 200 servers a
//! wave) and reports drplan's share and the targets of issue #20, in minutes instead of
//! the full run's hour.

mod cold;
mod machine;
mod memory;
mod packages;
mod plans;
mod report;
mod runs;
mod share;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use drplan_local::tools;

use packages::Packages;
use plans::{Plans, fleet};
use report::Report;
use runs::{CloudContext, start_cloud};

// Targets of issue #8.
const COLD_START_TARGET_MS: f64 = 20.0;
const COLD_START_RATIO_TARGET: f64 = 15.0;
const MEMORY_TARGET_MIB: f64 = 32.0;
const PACKAGE_TARGET_MIB: f64 = 6.0;
const OVERHEAD_FRACTION: f64 = 0.05;
const OVERHEAD_PER_WAVE_SECONDS: f64 = 2.0;
/// Servers ×10 at the same waves may grow a count by at most this factor to count as
/// "grows with waves, not with servers".
const GROWTH_TOLERANCE: f64 = 1.2;

// List prices (us-east-1), free tiers ignored.
const SFN_STANDARD_PER_TRANSITION: f64 = 0.025 / 1000.0;
const LAMBDA_ARM64_PER_GB_SECOND: f64 = 0.000_013_333_4;
const LAMBDA_PER_REQUEST: f64 = 0.20 / 1_000_000.0;

const REGION: &str = "us-east-1";
const ACCOUNT: &str = "123456789012";
/// How long one execution may take before the bench gives up on it.
const EXECUTION_TIMEOUT: Duration = Duration::from_secs(3600);
/// How long a cold process gets to ask for its first event, and then to answer it.
const COLD_START_TIMEOUT: Duration = Duration::from_secs(60);

/// A part of the bench that can run alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Section {
    /// A 4-wave DAG at 10 and at 200 servers a wave: drplan's share per wave (calls,
    /// transitions, time in its functions) and the targets of issue #20
    Scale,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Run only this part (no cold starts, memory or packages); its results are printed,
    /// and written only to an explicit --out
    #[arg(long, value_enum)]
    only: Option<Section>,
    /// Build and run the functions in the debug profile instead of release: the same
    /// calls and transitions, slower functions
    #[arg(long)]
    debug: bool,
    /// Fewer cold starts, and no 4,000-server plan (memory is then read after the
    /// largest plan run)
    #[arg(long)]
    quick: bool,
    /// Where to write the results (Markdown; default BENCHMARKS.md for the full run)
    #[arg(long)]
    out: Option<PathBuf>,
    /// Measured cold starts per function and language (default 7, 3 with --quick)
    #[arg(long)]
    runs: Option<usize>,
    /// The DRS simulator's clock for the plan runs (1.0 is realistic; the default turns
    /// a real minute into two seconds)
    #[arg(long, default_value_t = 1.0 / 30.0)]
    time_scale: f64,
    /// Skip section 3 (the cargo lambda zip builds)
    #[arg(long)]
    skip_packages: bool,
}

pub fn run(args: &BenchArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.time_scale > 0.0 && args.time_scale <= 1.0,
        "--time-scale must be in (0, 1]"
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        tokio::select! {
            outcome = bench(args) => outcome,
            signal = crate::local_drill::stop_signal() => {
                eprintln!("drplan bench: {signal}; stopping");
                Ok(ExitCode::from(130))
            }
        }
    })
}

fn say(message: &str) {
    eprintln!("drplan bench: {message}");
}

/// The build the functions run from: `cargo build --bins`, release unless `--debug`.
fn build_binaries(args: &BenchArgs, repo_root: &Path) -> anyhow::Result<String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = vec!["build", "--quiet", "--bins"];
    if !args.debug {
        build.insert(1, "--release");
    }
    say(&format!("building the binaries: cargo {}", build.join(" ")));
    run_tool(repo_root, Path::new(&cargo), &build, &[])?;
    Ok(format!("cargo {}", build.join(" ")))
}

/// The simulator's phases and the plans' ideal times at `scale`, as the report says them.
fn plans_at(scale: f64) -> (Plans, String) {
    let phases = drplan_local::drs_sim::PhaseDurations::default();
    let wave_ideal = (phases.job_start + phases.snapshot + phases.conversion + phases.launch)
        .as_secs_f64()
        * scale;
    let cleanup_ideal = (phases.job_start + phases.terminate).as_secs_f64() * scale;
    let text = format!(
        "job start {} s + snapshot {} s + conversion {} s + launch {} s = {} s a wave at full \
         scale; ×{scale:.4} = {wave_ideal:.2} s (drill clean-up: job start + terminate = \
         {cleanup_ideal:.2} s)",
        phases.job_start.as_secs(),
        phases.snapshot.as_secs(),
        phases.conversion.as_secs(),
        phases.launch.as_secs(),
        (phases.job_start + phases.snapshot + phases.conversion + phases.launch).as_secs(),
    );
    let plans = Plans {
        wave_ideal,
        cleanup_ideal,
        scale,
    };
    (plans, text)
}

/// `--only scale`: the same 4-wave DAG at 10 and at 200 servers a wave, on one cloud.
async fn scale_only(args: &BenchArgs, repo_root: &Path) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let build = build_binaries(args, repo_root)?;
    let (plans, phases) = plans_at(args.time_scale);
    let narrow = plans.diamond("bench-s", 10, "s.bench.example.com");
    let wide = plans.diamond("bench-w", 200, "w.bench.example.com");
    let fleet = fleet(&[&narrow, &wide], 100);
    say("starting the local cloud (moto, cargo lambda watch, DRS simulator, gateway)");
    let cloud = start_cloud(repo_root, args.time_scale, !args.debug).await?;
    let mut results = Vec::new();
    let outcome = async {
        let ctx = CloudContext::new(&cloud, repo_root, &fleet).await?;
        for spec in [&narrow, &wide] {
            results.push(ctx.run_plan(spec).await?);
        }
        let relay = ctx.measure_relay().await?;
        for result in &mut results {
            result.relay_millis = Some(relay);
        }
        anyhow::Ok(())
    }
    .await;
    cloud.shutdown().await;
    outcome?;
    let mut text = String::new();
    let _ = std::fmt::Write::write_fmt(
        &mut text,
        format_args!(
            "# drplan bench --only scale\n\nMeasured in {:.0} s by `{}` after `{build}`{}. \
             Simulator: {phases}. Polls every second.\n\n",
            started.elapsed().as_secs_f64(),
            bench_command_line(),
            if args.debug {
                " (debug build: the functions' own time is slower than release)"
            } else {
                ""
            }
        ),
    );
    share::render(&results, &mut text);
    share::render_breakdown(&results, &mut text);
    crate::print_stdout(&text);
    if let Some(out) = &args.out {
        std::fs::write(out, &text).with_context(|| format!("writing {}", out.display()))?;
        say(&format!("wrote {}", out.display()));
    }
    Ok(ExitCode::SUCCESS)
}

async fn bench(args: &BenchArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let repo_root = tools::find_repo_root(&std::env::current_dir()?)?;
    if args.only == Some(Section::Scale) {
        return scale_only(args, &repo_root).await;
    }
    let runs = args.runs.unwrap_or(if args.quick { 3 } else { 7 }).max(1);
    let mut report = Report {
        command: bench_command_line(),
        machine: machine::machine(&repo_root),
        ..Report::default()
    };
    let functions = function_names(&repo_root);
    anyhow::ensure!(!functions.is_empty(), "no function crates under functions/");
    report.functions = functions.clone();

    // Build: the host binaries (measured here) and, for section 3, the zips.
    report.commands.push(build_binaries(args, &repo_root)?);
    if args.skip_packages {
        report.packages = Packages::Skipped;
    } else {
        report.packages = packages::build_packages(&repo_root, &functions, &mut report.commands);
    }

    // Cloud A: the small plans, the 100-server drill, the cold starts.
    let scale = args.time_scale;
    let (plans, phases) = plans_at(scale);
    report.phases = phases;
    report.time_scale = scale;

    let small = plans.diamond("bench-s", 10, "s.bench.example.com");
    let medium = plans.diamond("bench-m", 100, "m.bench.example.com");
    // The same DAG at 200 servers a wave: issue #20's targets are judged on it.
    let wide = plans.diamond("bench-w", 200, "w.bench.example.com");
    let drill = plans.drill_chain("bench-d", 4, 25);
    let fleet_a = fleet(&[&small, &medium, &wide, &drill], 100);
    say("starting local cloud A (moto, cargo lambda watch --release, DRS simulator, gateway)");
    let cloud = start_cloud(&repo_root, scale, !args.debug).await?;
    let outcome = async {
        let ctx = CloudContext::new(&cloud, &repo_root, &fleet_a).await?;
        for spec in [&small, &medium, &wide, &drill] {
            let result = ctx.run_plan(spec).await?;
            report.runs.push(result);
        }
        let relay = ctx.measure_relay().await?;
        for result in &mut report.runs {
            result.relay_millis = Some(relay);
        }
        let cases = cold::cold_cases(&functions, &report.runs, &ctx);
        report.cold = cold::cold_starts(&ctx, &repo_root, &cases, runs).await?;
        report.memory_a = memory::function_memory(&cloud, &functions);
        anyhow::Ok(())
    }
    .await;
    cloud.shutdown().await;
    outcome?;

    // Cloud B: 20 waves × 200 servers, alone, so that the functions' peak memory is
    // theirs for that plan.
    if !args.quick {
        let large = plans.chain("bench-l", 20, 200, "l.bench.example.com");
        let fleet_b = fleet(&[&large], 101);
        say("starting local cloud B for the 4,000-server plan");
        let cloud = start_cloud(&repo_root, scale, !args.debug).await?;
        let outcome = async {
            let ctx = CloudContext::new(&cloud, &repo_root, &fleet_b).await?;
            let mut result = ctx.run_plan(&large).await?;
            // The peak memory is the plan's: read before the relay probes invoke the trigger.
            let memory = memory::function_memory(&cloud, &functions);
            result.relay_millis = Some(ctx.measure_relay().await?);
            report.runs.push(result);
            report.memory_b = Some(memory);
            anyhow::Ok(())
        }
        .await;
        cloud.shutdown().await;
        outcome?;
    }

    report.memory_sizes = memory::template_memory_sizes(&repo_root);
    report.quick = args.quick;
    report.elapsed = started.elapsed();
    let text = report.render();
    crate::print_stdout(&text);
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("BENCHMARKS.md"));
    std::fs::write(&out, &text).with_context(|| format!("writing {}", out.display()))?;
    say(&format!("wrote {}", out.display()));
    Ok(ExitCode::SUCCESS)
}

/// The command line as typed, for the report.
fn bench_command_line() -> String {
    let args: Vec<String> = std::env::args().skip(1).collect();
    format!("cargo run --release -q -- {}", args.join(" "))
}

fn function_names(repo_root: &Path) -> Vec<String> {
    tools::function_crates(repo_root)
        .iter()
        .filter(|dir| dir.join("src/main.rs").is_file())
        .filter_map(|dir| dir.file_name()?.to_str().map(str::to_owned))
        .collect()
}

/// Runs a build tool to the end, its output on our stderr.
fn run_tool(
    repo_root: &Path,
    program: &Path,
    args: &[&str],
    env: &[(&str, String)],
) -> anyhow::Result<()> {
    let output = std::process::Command::new(program)
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .current_dir(repo_root)
        .stdin(std::process::Stdio::null())
        .output()
        .with_context(|| format!("running {}", program.display()))?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let first = stderr
        .lines()
        .map(str::trim)
        .find(|line| line.contains("rror"))
        .or_else(|| stderr.lines().map(str::trim).find(|line| !line.is_empty()))
        .unwrap_or("no output");
    bail!("{} {} failed: {first}", program.display(), args.join(" "))
}
