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
//! stopped by pid (the local cloud's supervisor, or [`SupervisedChild`]), also on error
//! and on Ctrl-C. All traffic stays on 127.0.0.1.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use drplan_core::contract::{RunContext, Timing, WaveRef};
use drplan_local::process::SupervisedChild;
use drplan_local::{LocalCloud, LocalCloudOptions, seed, stack, tools};
use serde_json::{Value, json};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

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

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Fewer cold starts, and no 4,000-server plan (memory is then read after the
    /// largest plan run)
    #[arg(long)]
    quick: bool,
    /// Where to write the results (Markdown)
    #[arg(long, default_value = "BENCHMARKS.md")]
    out: PathBuf,
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

async fn bench(args: &BenchArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let repo_root = tools::find_repo_root(&std::env::current_dir()?)?;
    let runs = args.runs.unwrap_or(if args.quick { 3 } else { 7 }).max(1);
    let mut report = Report {
        command: bench_command_line(),
        machine: machine(&repo_root),
        ..Report::default()
    };
    let functions = function_names(&repo_root);
    anyhow::ensure!(!functions.is_empty(), "no function crates under functions/");
    report.functions = functions.clone();

    // Build: the host release binaries (measured here) and, for section 3, the zips.
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let build = ["build", "--release", "--quiet", "--bins"];
    say(&format!(
        "building the release binaries: cargo {}",
        build.join(" ")
    ));
    run_tool(&repo_root, Path::new(&cargo), &build, &[])?;
    report.commands.push(format!("cargo {}", build.join(" ")));
    if args.skip_packages {
        report.packages = Packages::Skipped;
    } else {
        report.packages = build_packages(&repo_root, &functions, &mut report.commands);
    }

    // Cloud A: the small plans, the 100-server drill, the cold starts.
    let phases = drplan_local::drs_sim::PhaseDurations::default();
    let scale = args.time_scale;
    let wave_ideal = (phases.job_start + phases.snapshot + phases.conversion + phases.launch)
        .as_secs_f64()
        * scale;
    let cleanup_ideal = (phases.job_start + phases.terminate).as_secs_f64() * scale;
    report.phases = format!(
        "job start {} s + snapshot {} s + conversion {} s + launch {} s = {} s a wave at full \
         scale; ×{scale:.4} = {wave_ideal:.2} s (drill clean-up: job start + terminate = \
         {cleanup_ideal:.2} s)",
        phases.job_start.as_secs(),
        phases.snapshot.as_secs(),
        phases.conversion.as_secs(),
        phases.launch.as_secs(),
        (phases.job_start + phases.snapshot + phases.conversion + phases.launch).as_secs(),
    );
    report.time_scale = scale;
    let plans = Plans {
        wave_ideal,
        cleanup_ideal,
        scale,
    };

    let small = plans.diamond("bench-s", 10, "s.bench.example.com");
    let medium = plans.diamond("bench-m", 100, "m.bench.example.com");
    let drill = plans.drill_chain("bench-d", 4, 25);
    let fleet_a = fleet(&[&small, &medium, &drill], 100);
    say("starting local cloud A (moto, cargo lambda watch --release, DRS simulator, gateway)");
    let cloud = start_cloud(&repo_root, scale).await?;
    let outcome = async {
        let ctx = CloudContext::new(&cloud, &repo_root, &fleet_a).await?;
        for spec in [&small, &medium, &drill] {
            let result = ctx.run_plan(spec).await?;
            report.runs.push(result);
        }
        let cases = cold_cases(&functions, &report.runs, &ctx);
        report.cold = cold_starts(&ctx, &repo_root, &cases, runs).await?;
        report.memory_a = function_memory(&cloud, &functions);
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
        let cloud = start_cloud(&repo_root, scale).await?;
        let outcome = async {
            let ctx = CloudContext::new(&cloud, &repo_root, &fleet_b).await?;
            let result = ctx.run_plan(&large).await?;
            report.runs.push(result);
            report.memory_b = Some(function_memory(&cloud, &functions));
            anyhow::Ok(())
        }
        .await;
        cloud.shutdown().await;
        outcome?;
    }

    report.memory_sizes = template_memory_sizes(&repo_root);
    report.quick = args.quick;
    report.elapsed = started.elapsed();
    let text = report.render();
    crate::print_stdout(&text);
    std::fs::write(&args.out, &text).with_context(|| format!("writing {}", args.out.display()))?;
    say(&format!("wrote {}", args.out.display()));
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

// ---------------------------------------------------------------------------------------
// Section 3: packages

#[derive(Debug, Default)]
enum Packages {
    #[default]
    Skipped,
    Built {
        /// The target the zips are for, and why it is not arm64 if it is not.
        target: String,
        note: Option<String>,
        zips: Vec<(String, Option<u64>)>,
    },
    Failed(String),
}

fn build_packages(repo_root: &Path, functions: &[String], commands: &mut Vec<String>) -> Packages {
    let cargo_lambda = match tools::cargo_lambda(repo_root) {
        Ok(path) => path,
        Err(e) => return Packages::Failed(e.to_string()),
    };
    // cargo lambda finds zig (its cross linker) on PATH; the installer puts it in .venv/bin.
    let path = format!(
        "{}:{}",
        repo_root.join(".venv/bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut note = None;
    for (flag, target) in [
        ("--arm64", "arm64 (aarch64-unknown-linux-gnu)"),
        ("--x86-64", "x86_64"),
    ] {
        let mut args = vec![
            "lambda",
            "build",
            "--release",
            flag,
            "--output-format",
            "zip",
        ];
        for function in functions {
            args.push("-p");
            args.push(function);
        }
        say(&format!(
            "building the Lambda zips: cargo lambda {} (the first time takes long)",
            args[1..].join(" ")
        ));
        commands.push(format!("cargo {}", args.join(" ")));
        match run_tool(repo_root, &cargo_lambda, &args, &[("PATH", path.clone())]) {
            Ok(()) => {
                let zips = functions
                    .iter()
                    .map(|f| {
                        let zip = repo_root
                            .join("target/lambda")
                            .join(f)
                            .join("bootstrap.zip");
                        (f.clone(), std::fs::metadata(zip).ok().map(|m| m.len()))
                    })
                    .collect();
                return Packages::Built {
                    target: target.to_owned(),
                    note,
                    zips,
                };
            }
            Err(e) if flag == "--arm64" => {
                say(&format!(
                    "the arm64 build failed: {e:#}; measuring x86_64 instead"
                ));
                note = Some(format!("arm64 could not be built here: {e:#}"));
            }
            Err(e) => {
                return Packages::Failed(format!(
                    "{}{e:#}",
                    note.map(|n| format!("{n}; ")).unwrap_or_default()
                ));
            }
        }
    }
    Packages::Failed("no target built".into())
}

// ---------------------------------------------------------------------------------------
// The plans, the fleet and the clouds

/// One plan run: its shape, mode and timing.
#[derive(Debug, Clone)]
struct PlanSpec {
    label: String,
    name: String,
    /// (wave name, the waves it depends on)
    waves: Vec<(String, Vec<String>)>,
    servers_per_wave: u32,
    mode: &'static str,
    dns_record: Option<String>,
    timing: Value,
    timing_label: &'static str,
    /// The simulator's ideal wall time: phases along the DAG's critical path.
    ideal_seconds: f64,
    critical_waves: usize,
}

struct Plans {
    wave_ideal: f64,
    cleanup_ideal: f64,
    scale: f64,
}

impl Plans {
    /// Polls every second: what the overhead is measured with.
    ///
    /// Within the history budget discover enforces (a 20-wave chain's worst case must fit
    /// in 25,000 events): the launch polls back off to 10 s (a wave's parked wait is woken
    /// by DRS's launch-result events, so the backoff costs no time when events arrive),
    /// launches time out after 5 minutes and the health gate (2 minutes a wave) polls
    /// every 2 s.
    fn tight_timing() -> Value {
        json!({"poll_initial_seconds": 1, "poll_max_seconds": 10, "poll_backoff_rate": 1.5,
               "launch_timeout_minutes": 5, "health_interval_seconds": 2})
    }

    /// The default timing on the simulator's clock: as many polls as a real run makes.
    fn scaled_default_timing(&self) -> Value {
        let defaults = Timing::default();
        let scaled = |seconds: u32| ((f64::from(seconds) * self.scale).round() as u32).max(1);
        json!({"poll_initial_seconds": scaled(defaults.poll_initial_seconds),
               "poll_max_seconds": scaled(defaults.poll_max_seconds),
               "poll_backoff_rate": defaults.poll_backoff_rate,
               "launch_timeout_minutes": scaled(defaults.launch_timeout_minutes),
               "health_interval_seconds": scaled(defaults.health_interval_seconds),
               "drill_keep_seconds": 2})
    }

    fn spec(
        &self,
        name: &str,
        waves: Vec<(String, Vec<String>)>,
        servers_per_wave: u32,
        mode: &'static str,
        dns_record: Option<String>,
        (timing, timing_label): (Value, &'static str),
    ) -> PlanSpec {
        let critical_waves = critical_path(&waves);
        let mut ideal_seconds = critical_waves as f64 * self.wave_ideal;
        if mode == "drill" {
            let keep = timing["drill_keep_seconds"].as_f64().unwrap_or(0.0);
            ideal_seconds += keep + self.cleanup_ideal;
        }
        let count = waves.len() as u32 * servers_per_wave;
        PlanSpec {
            label: format!(
                "{} waves × {servers_per_wave} servers ({count}), {mode}",
                waves.len()
            ),
            name: name.to_owned(),
            waves,
            servers_per_wave,
            mode,
            dns_record,
            timing,
            timing_label,
            ideal_seconds,
            critical_waves,
        }
    }

    /// w1 → (w2 ∥ w3) → w4: a critical path of three waves.
    fn diamond(&self, name: &str, servers_per_wave: u32, record: &str) -> PlanSpec {
        let waves = vec![
            ("w1".to_owned(), vec![]),
            ("w2".to_owned(), vec!["w1".to_owned()]),
            ("w3".to_owned(), vec!["w1".to_owned()]),
            ("w4".to_owned(), vec!["w2".to_owned(), "w3".to_owned()]),
        ];
        self.spec(
            name,
            waves,
            servers_per_wave,
            "recovery",
            Some(record.to_owned()),
            (Self::tight_timing(), "1 s polls"),
        )
    }

    fn chain_waves(count: usize) -> Vec<(String, Vec<String>)> {
        (1..=count)
            .map(|i| {
                let depends = if i > 1 {
                    vec![format!("w{:02}", i - 1)]
                } else {
                    vec![]
                };
                (format!("w{i:02}"), depends)
            })
            .collect()
    }

    fn chain(&self, name: &str, waves: usize, servers_per_wave: u32, record: &str) -> PlanSpec {
        self.spec(
            name,
            Self::chain_waves(waves),
            servers_per_wave,
            "recovery",
            Some(record.to_owned()),
            (Self::tight_timing(), "1 s polls"),
        )
    }

    fn drill_chain(&self, name: &str, waves: usize, servers_per_wave: u32) -> PlanSpec {
        self.spec(
            name,
            Self::chain_waves(waves),
            servers_per_wave,
            "drill",
            None,
            (self.scaled_default_timing(), "default timing, scaled"),
        )
    }
}

impl PlanSpec {
    fn servers(&self) -> u32 {
        self.waves.len() as u32 * self.servers_per_wave
    }

    fn plan(&self) -> Value {
        let last = self
            .waves
            .last()
            .map(|(name, _)| name.clone())
            .unwrap_or_default();
        let waves: Vec<Value> = self
            .waves
            .iter()
            .map(|(wave, depends)| {
                json!({"name": wave, "selector": {"dr:wave": wave}, "depends_on": depends,
                       "health": {"checks": ["ec2-status"], "timeout_minutes": 2}})
            })
            .collect();
        let mut plan = json!({"name": self.name, "rto_minutes": 600, "rpo_minutes": 60,
                              "selector": {"dr:plan": self.name}, "waves": waves});
        if let Some(record) = &self.dns_record {
            plan["dns"] = json!({"zone_name": "bench.example.com", "records": [
                {"name": record, "type": "A", "ttl": 60, "from_wave": last}]});
        }
        plan
    }
}

/// Waves on the longest dependency chain.
fn critical_path(waves: &[(String, Vec<String>)]) -> usize {
    fn depth(
        name: &str,
        waves: &[(String, Vec<String>)],
        memo: &mut BTreeMap<String, usize>,
        guard: usize,
    ) -> usize {
        if let Some(&known) = memo.get(name) {
            return known;
        }
        let deps = waves
            .iter()
            .find(|(wave, _)| wave == name)
            .map(|(_, deps)| deps.clone())
            .unwrap_or_default();
        let longest = if guard > waves.len() {
            0
        } else {
            deps.iter()
                .map(|dep| depth(dep, waves, memo, guard + 1))
                .max()
                .unwrap_or(0)
        };
        memo.insert(name.to_owned(), longest + 1);
        longest + 1
    }
    let mut memo = BTreeMap::new();
    waves
        .iter()
        .map(|(name, _)| depth(name, waves, &mut memo, 0))
        .max()
        .unwrap_or(0)
}

fn fleet(plans: &[&PlanSpec], octet: u32) -> seed::Fleet {
    let mut source_servers = Vec::new();
    let mut records = Vec::new();
    for plan in plans {
        for (wave, _) in &plan.waves {
            source_servers.push(seed::ServerGroup {
                count: plan.servers_per_wave,
                start: 1,
                hostname: format!("{}-{wave}-{{i:04}}", plan.name),
                tags: BTreeMap::from([
                    ("dr:plan".to_owned(), plan.name.clone()),
                    ("dr:wave".to_owned(), wave.clone()),
                ]),
                replication: seed::Replication {
                    state: Some("CONTINUOUS".into()),
                    lag_seconds: Some(0),
                },
                instance_type: None,
            });
        }
        if let Some(record) = &plan.dns_record {
            records.push(seed::Record {
                name: record.clone(),
                record_type: "A".into(),
                ttl: 60,
                values: vec!["203.0.113.10".into()],
            });
        }
    }
    seed::Fleet {
        region: REGION.into(),
        source_servers,
        // /20 subnets: room for 4,000 instances.
        network: seed::Network {
            name: "drplan-bench".into(),
            vpc_cidr: format!("10.{octet}.0.0/16"),
            recovery_subnet_cidr: format!("10.{octet}.16.0/20"),
            drill_subnet_cidr: format!("10.{octet}.32.0/20"),
            public_ips: false,
        },
        hosted_zones: vec![seed::HostedZone {
            name: "bench.example.com".into(),
            records,
        }],
        notifications: seed::Notifications::default(),
    }
}

async fn start_cloud(repo_root: &Path, time_scale: f64) -> anyhow::Result<LocalCloud> {
    LocalCloud::start(LocalCloudOptions {
        repo_root: Some(repo_root.to_path_buf()),
        time_scale,
        release_functions: true,
        ..LocalCloudOptions::default()
    })
    .await
    .context("starting the local cloud")
}

/// A cloud with drplan deployed and the fleet seeded.
struct CloudContext<'a> {
    cloud: &'a LocalCloud,
    stack: stack::Stack,
    /// Step Functions straight at moto: the bench's own polling stays out of the
    /// gateway's request tally.
    sfn: aws_sdk_sfn::Client,
    gateway: std::net::SocketAddr,
    topic_arn: String,
}

impl<'a> CloudContext<'a> {
    async fn new(
        cloud: &'a LocalCloud,
        repo_root: &Path,
        fleet: &seed::Fleet,
    ) -> anyhow::Result<Self> {
        let endpoint = cloud.endpoint_url();
        let stack = stack::deploy(endpoint, cloud.region(), ACCOUNT, repo_root)
            .await
            .context("deploying drplan into the local cloud")?;
        let seeded = seed::seed(endpoint, fleet)
            .await
            .context("seeding the fleet")?;
        say(&format!(
            "deployed; seeded {} source servers",
            seeded.source_servers_created + seeded.source_servers_updated
        ));
        let config = stack::sdk_config(cloud.moto_url(), cloud.region()).await;
        let gateway = endpoint
            .trim_start_matches("http://")
            .parse()
            .with_context(|| format!("the gateway address {endpoint}"))?;
        Ok(Self {
            cloud,
            stack,
            sfn: aws_sdk_sfn::Client::new(&config),
            gateway,
            topic_arn: format!(
                "arn:aws:sns:{}:{ACCOUNT}:drplan-notifications",
                cloud.region()
            ),
        })
    }

    async fn gateway_requests(&self, method: &str) -> anyhow::Result<Value> {
        let (status, body) =
            http_call(self.gateway, method, drplan_local::gateway::REQUESTS_PATH).await?;
        anyhow::ensure!(
            status == 200,
            "the gateway's request tally answered {status}"
        );
        serde_json::from_slice(&body).context("the gateway's request tally is not JSON")
    }

    async fn run_plan(&self, spec: &PlanSpec) -> anyhow::Result<RunResult> {
        let name = format!("bench-{}-{}-{}", spec.name, spec.mode, std::process::id());
        let input = json!({"plan": spec.plan(), "mode": spec.mode, "timing": spec.timing});
        say(&format!("running {} ({})", spec.label, spec.timing_label));
        self.gateway_requests("DELETE").await?;
        // Ten times the ideal (at least five minutes): a hung execution is stopped and
        // reported, the other measurements still run.
        let timeout =
            Duration::from_secs_f64((spec.ideal_seconds * 10.0).max(300.0)).min(EXECUTION_TIMEOUT);
        let mut stopped = false;
        let clock = Instant::now();
        let arn = self
            .sfn
            .start_execution()
            .state_machine_arn(&self.stack.recovery_state_machine_arn)
            .name(&name)
            .input(input.to_string())
            .send()
            .await
            .context("StartExecution")?
            .execution_arn()
            .to_owned();
        let described = loop {
            let described = self
                .sfn
                .describe_execution()
                .execution_arn(&arn)
                .send()
                .await
                .context("DescribeExecution")?;
            if described.status() != &aws_sdk_sfn::types::ExecutionStatus::Running {
                break described;
            }
            if clock.elapsed() > timeout && !stopped {
                say(&format!(
                    "{name} is still running after {timeout:?}: stopping it (StopExecution); it is reported as it ended"
                ));
                self.sfn
                    .stop_execution()
                    .execution_arn(&arn)
                    .error("drplan.BenchTimeout")
                    .cause("drplan bench: no end after ten times the ideal")
                    .send()
                    .await
                    .context("StopExecution")?;
                stopped = true;
            } else if clock.elapsed() > timeout + Duration::from_secs(60) {
                bail!("{name} did not stop after StopExecution");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let polled = clock.elapsed().as_secs_f64();
        let wall_seconds = match described.stop_date() {
            Some(stop) => {
                let start = described.start_date();
                (stop.as_secs_f64() - start.as_secs_f64()).max(0.0)
            }
            None => polled,
        };
        let status = described.status().as_str().to_owned();
        if status != "SUCCEEDED" {
            say(&format!(
                "{name} ended {status}: {} {}; logs in {}",
                described.error().unwrap_or_default(),
                described.cause().unwrap_or_default(),
                self.cloud.log_dir().display()
            ));
        }
        let requests = self.gateway_requests("GET").await?;
        let history = self.history(&arn).await?;
        let result = RunResult::new(spec, name, status, wall_seconds, &requests, &history);
        say(&format!(
            "  {}: {:.1} s (ideal {:.1} s), {} state transitions, {} Lambda invocations, {} AWS API calls by the functions",
            result.status,
            result.wall_seconds,
            spec.ideal_seconds,
            result.transitions,
            result.lambda_invocations(),
            result.api_calls_total()
        ));
        Ok(result)
    }

    async fn history(&self, arn: &str) -> anyhow::Result<Vec<Value>> {
        let mut events = Vec::new();
        let mut pages = self
            .sfn
            .get_execution_history()
            .execution_arn(arn)
            .max_results(1000)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            for event in page.context("GetExecutionHistory")?.events() {
                let scheduled = event.lambda_function_scheduled_event_details().map(
                    |d| json!({"resource": d.resource(), "input": d.input().unwrap_or_default()}),
                );
                // A service-integration task (lambda:invoke.waitForTaskToken) names its
                // function in its parameters, not in a LambdaFunctionScheduled event.
                let integration = event.task_scheduled_event_details().map(|d| {
                    let function = serde_json::from_str::<Value>(d.parameters())
                        .ok()
                        .and_then(|p| p["FunctionName"].as_str().map(str::to_owned));
                    json!({"resource": function, "integration": d.resource()})
                });
                let state = event
                    .state_entered_event_details()
                    .map(|d| d.name())
                    .or_else(|| event.state_exited_event_details().map(|d| d.name()));
                events.push(json!({
                    "type": event.r#type().as_str(),
                    "id": event.id(),
                    "previous": event.previous_event_id(),
                    "seconds": event.timestamp().as_secs_f64(),
                    "state": state,
                    "lambda": scheduled.or(integration),
                }));
            }
        }
        Ok(events)
    }
}

// ---------------------------------------------------------------------------------------
// Sections 4 and 5: one run's numbers

#[derive(Debug)]
struct RunResult {
    spec: PlanSpec,
    execution: String,
    status: String,
    wall_seconds: f64,
    transitions: u64,
    history_events: usize,
    /// Lambda invocations (Step Functions → the gateway): function → (count, billed ms).
    invocations: BTreeMap<String, (u64, u64)>,
    /// The functions' AWS API calls: (service, operation) → count.
    api_calls: BTreeMap<(String, String), u64>,
    /// Their summed latencies at the gateway (the local cloud's answer time), in ms.
    api_millis: BTreeMap<(String, String), f64>,
    /// Time in each state of the execution history, by state name.
    states: BTreeMap<String, StateTime>,
    /// The first event each function received in this execution.
    first_events: BTreeMap<String, Value>,
}

impl RunResult {
    fn new(
        spec: &PlanSpec,
        execution: String,
        status: String,
        wall_seconds: f64,
        requests: &Value,
        history: &[Value],
    ) -> Self {
        let mut invocations: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        let mut api_calls = BTreeMap::new();
        let mut api_millis = BTreeMap::new();
        for tally in requests["tallies"].as_array().into_iter().flatten() {
            let service = tally["service"].as_str().unwrap_or_default();
            let operation = tally["operation"].as_str().unwrap_or_default();
            let count = tally["count"].as_u64().unwrap_or(0);
            if service == "lambda"
                && let Some(function) = operation.strip_prefix("Invoke ")
            {
                let entry = invocations.entry(function.to_owned()).or_default();
                entry.0 += count;
                entry.1 += tally["billed_millis"].as_u64().unwrap_or(0);
            } else if tally["caller"] == "aws-sdk-rust" {
                let key = (service.to_owned(), operation.to_owned());
                *api_millis.entry(key.clone()).or_default() +=
                    tally["total_millis"].as_f64().unwrap_or(0.0);
                *api_calls.entry(key).or_default() += count;
            }
        }
        let transitions = history
            .iter()
            .filter(|e| {
                e["type"]
                    .as_str()
                    .is_some_and(|t| t.ends_with("StateEntered"))
            })
            .count() as u64;
        let mut first_events = BTreeMap::new();
        for event in history {
            let lambda = &event["lambda"];
            let (Some(resource), Some(input)) =
                (lambda["resource"].as_str(), lambda["input"].as_str())
            else {
                continue;
            };
            let function = resource.rsplit(':').next().unwrap_or(resource).to_owned();
            if let Ok(input) = serde_json::from_str::<Value>(input) {
                first_events.entry(function).or_insert(input);
            }
        }
        Self {
            spec: spec.clone(),
            execution,
            status,
            wall_seconds,
            transitions,
            history_events: history.len(),
            invocations,
            api_calls,
            api_millis,
            states: state_times(history),
            first_events,
        }
    }

    fn lambda_invocations(&self) -> u64 {
        self.invocations.values().map(|(count, _)| count).sum()
    }

    fn billed_millis(&self) -> u64 {
        self.invocations.values().map(|(_, ms)| ms).sum()
    }

    fn api_calls_total(&self) -> u64 {
        self.api_calls.values().sum()
    }

    fn drs_calls(&self) -> u64 {
        self.api_calls
            .iter()
            .filter(|((service, _), _)| service == "drs")
            .map(|(_, count)| count)
            .sum()
    }

    fn other_calls(&self) -> u64 {
        self.api_calls_total() - self.drs_calls()
    }

    fn waves(&self) -> usize {
        self.spec.waves.len()
    }

    fn overhead(&self) -> f64 {
        self.wall_seconds - self.spec.ideal_seconds
    }

    fn overhead_allowed(&self) -> f64 {
        OVERHEAD_FRACTION * self.spec.ideal_seconds
            + OVERHEAD_PER_WAVE_SECONDS * self.spec.critical_waves as f64
    }

    /// Where the wall time went: each state's time from the execution history, the part
    /// of a Task state its function took (the gateway's latency of the invoke), and the
    /// functions' AWS calls by the local cloud's answer time.
    fn render_time_breakdown(&self, out: &mut String) {
        let _ = writeln!(out, "### Where the time goes: {}\n", self.spec.label);
        let parallel = self.spec.critical_waves < self.waves();
        let _ = writeln!(
            out,
            "Time in state = Σ exit − Σ entry timestamps of the state in the execution history \
             (moto's clock), over all its entries. Function = the gateway's latency of the \
             Lambda invokes (the function's run under `cargo lambda watch`), shared among the \
             states that invoke the same function by their entries; the rest of a Task state's \
             time is moto's interpreter scheduling the task and calling the gateway, or, in a task \
             that waits for its token, the wait. Map states \
             contain the states of their iterations and are left out.{}\n",
            if parallel {
                " Waves of this DAG run in parallel, so the states' times overlap and add up to \
                 more than the wall time."
            } else {
                ""
            }
        );
        let _ = writeln!(
            out,
            "| state | kind | entries | s in state | % of wall | ms per entry | function | function s | rest s |"
        );
        let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---|---:|---:|");
        let mut leaves: Vec<(&String, &StateTime)> = self
            .states
            .iter()
            .filter(|(_, t)| t.kind != "Map" && t.kind != "Parallel")
            .collect();
        leaves.sort_by(|a, b| b.1.seconds.total_cmp(&a.1.seconds));
        // Entries per function across states, to share its gateway time among them.
        let mut entries_of: BTreeMap<&str, u64> = BTreeMap::new();
        for (_, time) in &leaves {
            if let Some(function) = &time.function {
                *entries_of.entry(function.as_str()).or_default() += time.entries;
            }
        }
        let (mut in_states, mut in_functions, mut in_waits) = (0.0, 0.0, 0.0);
        for (name, time) in &leaves {
            in_states += time.seconds;
            let function_seconds = time.function.as_deref().and_then(|function| {
                let (_, millis) = self.invocations.get(function)?;
                let share = time.entries as f64 / (*entries_of.get(function)?).max(1) as f64;
                Some(*millis as f64 / 1000.0 * share)
            });
            in_functions += function_seconds.unwrap_or(0.0);
            if time.kind == "Wait" {
                in_waits += time.seconds;
            } else if time.waits_for_token {
                in_waits += time.seconds - function_seconds.unwrap_or(0.0);
            }
            let _ = writeln!(
                out,
                "| {name} | {} | {} | {:.1} | {:.1} | {:.0} | {} | {} | {} |",
                if time.waits_for_token {
                    "Task (waits for its token)"
                } else {
                    time.kind.as_str()
                },
                time.entries,
                time.seconds,
                100.0 * time.seconds / self.wall_seconds.max(f64::EPSILON),
                1000.0 * time.seconds / time.entries.max(1) as f64,
                time.function.as_deref().unwrap_or(""),
                function_seconds.map_or(String::new(), |s| format!("{s:.1}")),
                function_seconds.map_or(String::new(), |s| format!("{:.1}", time.seconds - s)),
            );
        }
        let _ = writeln!(
            out,
            "\nOf {:.1} s wall: {in_states:.1} s in these states ({in_waits:.1} s waiting: Wait \
             states and task-token waits; {in_functions:.1} s inside the functions; {:.1} s in moto \
             around the tasks){}.\n",
            self.wall_seconds,
            in_states - in_waits - in_functions,
            if parallel {
                String::new()
            } else {
                format!(
                    ", {:.1} s between states (moto's transitions)",
                    self.wall_seconds - in_states
                )
            }
        );
        let mut calls: Vec<(&(String, String), &f64)> = self.api_millis.iter().collect();
        calls.sort_by(|a, b| b.1.total_cmp(a.1));
        let _ = writeln!(
            out,
            "The functions' AWS calls that took longest in all, at the local cloud (moto, or the \
             DRS simulator for `drs`), as the gateway timed them:\n"
        );
        let _ = writeln!(out, "| call | count | s in all | ms each |");
        let _ = writeln!(out, "|---|---:|---:|---:|");
        for ((service, operation), millis) in calls.into_iter().take(8) {
            let count = self
                .api_calls
                .get(&(service.clone(), operation.clone()))
                .copied()
                .unwrap_or(0);
            let _ = writeln!(
                out,
                "| {service} {operation} | {count} | {:.1} | {:.1} |",
                millis / 1000.0,
                millis / count.max(1) as f64
            );
        }
        let _ = writeln!(out);
    }

    fn cost(&self, memory_mb: f64) -> (f64, f64, f64) {
        let sfn = self.transitions as f64 * SFN_STANDARD_PER_TRANSITION;
        let gb_seconds = self.billed_millis() as f64 / 1000.0 * memory_mb / 1024.0;
        let lambda = gb_seconds * LAMBDA_ARM64_PER_GB_SECOND
            + self.lambda_invocations() as f64 * LAMBDA_PER_REQUEST;
        (sfn, lambda, gb_seconds)
    }
}

/// How long an execution spent in one of its states, over all its entries.
#[derive(Debug, Clone, Default, PartialEq)]
struct StateTime {
    /// Task, Wait, Choice, Pass, Map, Parallel, ... (the history's event type prefix)
    kind: String,
    entries: u64,
    seconds: f64,
    /// The Lambda function a Task state invoked.
    function: Option<String>,
    /// A `.waitForTaskToken` task: its time is a wait for the token, not the function's.
    waits_for_token: bool,
}

/// Time in each state from the execution history: Σ exit times − Σ entry times per state
/// name, which holds however entries of the same state overlap (parallel waves run the
/// same states at once). A state still open at the history's end counts until then.
fn state_times(history: &[Value]) -> BTreeMap<String, StateTime> {
    let mut states: BTreeMap<String, StateTime> = BTreeMap::new();
    let mut open: BTreeMap<String, i64> = BTreeMap::new();
    // The TaskStateEntered events by id, for the LambdaFunctionScheduled that follows.
    let mut task_entered: BTreeMap<i64, String> = BTreeMap::new();
    let mut last_task: Option<String> = None;
    let end = history
        .iter()
        .filter_map(|e| e["seconds"].as_f64())
        .fold(0.0, f64::max);
    for event in history {
        let kind = event["type"].as_str().unwrap_or_default();
        let at = event["seconds"].as_f64().unwrap_or(end);
        let state = event["state"].as_str();
        if let (Some(prefix), Some(name)) = (kind.strip_suffix("StateEntered"), state) {
            let entry = states.entry(name.to_owned()).or_default();
            entry.kind = prefix.to_owned();
            entry.entries += 1;
            entry.seconds -= at;
            *open.entry(name.to_owned()).or_default() += 1;
            if prefix == "Task" {
                if let Some(id) = event["id"].as_i64() {
                    task_entered.insert(id, name.to_owned());
                }
                last_task = Some(name.to_owned());
            }
        } else if let (true, Some(name)) = (kind.ends_with("StateExited"), state) {
            let entry = states.entry(name.to_owned()).or_default();
            entry.seconds += at;
            *open.entry(name.to_owned()).or_default() -= 1;
        } else if kind == "LambdaFunctionScheduled" || kind == "TaskScheduled" {
            let task = event["previous"]
                .as_i64()
                .and_then(|id| task_entered.get(&id).cloned())
                .or_else(|| last_task.clone());
            let function = event["lambda"]["resource"]
                .as_str()
                .map(|arn| arn.rsplit(':').next().unwrap_or(arn).to_owned());
            if let (Some(task), Some(function)) = (task, function)
                && let Some(entry) = states.get_mut(&task)
            {
                entry.function.get_or_insert(function);
                // The execution waits in such a state for the task token (or the
                // timeout): waiting, like a Wait state, not the function's run.
                if event["lambda"]["integration"]
                    .as_str()
                    .is_some_and(|r| r.ends_with(".waitForTaskToken"))
                {
                    entry.waits_for_token = true;
                }
            }
        }
    }
    for (name, still_open) in open {
        if still_open > 0
            && let Some(entry) = states.get_mut(&name)
        {
            entry.seconds += still_open as f64 * end;
        }
    }
    states
}

// ---------------------------------------------------------------------------------------
// Section 1: cold starts

/// One function's cold-start event and the Python baseline's first call.
struct ColdCase {
    function: String,
    event: Value,
    event_source: String,
    /// `{"service", "operation", "params"}` for boto3.
    python_call: Value,
}

const TRIGGER_EVENT_FILE: &str = "events/alarm-state-change-unmapped.json";
const TRIGGER_EVENT: &str = include_str!("../events/alarm-state-change-unmapped.json");

/// The first event of each function from the plan runs, and the first AWS call the
/// function makes with it, which the Python baseline makes too.
fn cold_cases(functions: &[String], runs: &[RunResult], ctx: &CloudContext<'_>) -> Vec<ColdCase> {
    let mut cases = Vec::new();
    for function in functions {
        let recorded = runs
            .iter()
            .find_map(|run| run.first_events.get(function).map(|event| (run, event)));
        let (event, event_source) = match recorded {
            Some((run, event)) => (event.clone(), format!("first event in {}", run.spec.name)),
            // EventBridge, not the state machine, calls the trigger: its most common event,
            // an alarm state change, from the documented samples. No plan maps this alarm,
            // so the trigger reads the stored plans and starts nothing.
            None if function == "trigger" => match serde_json::from_str(TRIGGER_EVENT) {
                Ok(event) => (
                    event,
                    format!("{TRIGGER_EVENT_FILE} (no plan maps the alarm)"),
                ),
                Err(_) => continue,
            },
            None => continue,
        };
        let event = &event;
        let s3_get = |key: Option<String>| {
            key.map(|key| {
                json!({"service": "s3", "operation": "get_object",
                       "params": {"Bucket": ctx.stack.bucket, "Key": key}})
            })
        };
        let run_context = serde_json::from_value::<RunContext>(event["run"].clone()).ok();
        let wave = serde_json::from_value::<WaveRef>(event["wave"].clone()).ok();
        let python_call = match function.as_str() {
            "discover" => Some(
                json!({"service": "drs", "operation": "describe_source_servers",
                                      "params": {"maxResults": 200}}),
            ),
            "cleanup" => Some(json!({"service": "drs", "operation": "describe_jobs",
                                     "params": {"filters": {}}})),
            "notify" => Some(json!({"service": "sns", "operation": "publish",
                                    "params": {"TopicArn": ctx.topic_arn,
                                               "Subject": "drplan bench",
                                               "Message": "cold start baseline"}})),
            "launch-wave" | "wait-wave" => s3_get(run_context.map(|r| r.key("resolved.json"))),
            "tag-instances" => s3_get(
                run_context
                    .zip(wave)
                    .map(|(r, w)| r.wave_key(&w, "launch.json")),
            ),
            "health-check" | "dns-cutover" => s3_get(run_context.map(|r| r.key("plan.json"))),
            "trigger" => Some(json!({"service": "s3", "operation": "list_objects_v2",
                                     "params": {"Bucket": ctx.stack.bucket, "Prefix": "plans/"}})),
            "report" => {
                let first_wave =
                    serde_json::from_value::<WaveRef>(event["layers"][0][0].clone()).ok();
                s3_get(
                    run_context
                        .zip(first_wave)
                        .map(|(r, w)| r.wave_key(&w, "launch.json")),
                )
            }
            _ => None,
        };
        let Some(python_call) = python_call else {
            continue;
        };
        cases.push(ColdCase {
            function: function.clone(),
            event: event.clone(),
            event_source,
            python_call,
        });
    }
    cases
}

#[derive(Debug, Clone)]
struct ColdSample {
    ready_ms: f64,
    invoke_ms: f64,
    ok: bool,
    detail: String,
    first_call: String,
    hwm_kib: Option<u64>,
}

/// Medians of one language's cold starts of one function.
struct ColdStats {
    ready: f64,
    invoke: f64,
    total: f64,
    /// "ok", or the first error's type.
    outcome: String,
    first_call: String,
    hwm_kib: Option<u64>,
}

impl ColdStats {
    fn of(samples: &Result<Vec<ColdSample>, String>) -> Option<Self> {
        let samples = samples.as_ref().ok()?;
        let mut ready: Vec<f64> = samples.iter().map(|s| s.ready_ms).collect();
        let mut invoke: Vec<f64> = samples.iter().map(|s| s.invoke_ms).collect();
        let mut total: Vec<f64> = samples.iter().map(|s| s.ready_ms + s.invoke_ms).collect();
        Some(Self {
            ready: median(&mut ready)?,
            invoke: median(&mut invoke)?,
            total: median(&mut total)?,
            outcome: samples
                .iter()
                .find(|s| !s.ok)
                .map_or_else(|| "ok".to_owned(), |s| s.detail.clone()),
            first_call: samples
                .first()
                .map(|s| s.first_call.clone())
                .unwrap_or_default(),
            hwm_kib: samples.iter().filter_map(|s| s.hwm_kib).max(),
        })
    }
}

#[derive(Debug)]
struct ColdResult {
    function: String,
    event_source: String,
    event_bytes: usize,
    rust: Result<Vec<ColdSample>, String>,
    python: Result<Vec<ColdSample>, String>,
}

#[derive(Debug, Default)]
struct ColdStarts {
    runs: usize,
    python: String,
    results: Vec<ColdResult>,
}

const PYTHON_HANDLER: &str = r#"# drplan bench: the Python 3 + boto3 baseline, a custom-runtime loop like Lambda's.
import http.client, json, os
import boto3
from botocore.config import Config

call = json.loads(os.environ["BENCH_CALL"])
client = boto3.client(call["service"], config=Config(s3={"addressing_style": "path"},
                                                      retries={"max_attempts": 1}))
api = http.client.HTTPConnection(os.environ["AWS_LAMBDA_RUNTIME_API"])
while True:
    api.request("GET", "/2018-06-01/runtime/invocation/next")
    answer = api.getresponse()
    event = json.loads(answer.read())
    request_id = answer.getheader("Lambda-Runtime-Aws-Request-Id")
    try:
        result = getattr(client, call["operation"])(**call["params"])
        if "Body" in result:
            result["Body"].read()
        body, path = json.dumps({"ok": True}), "response"
    except Exception as error:
        body, path = json.dumps({"errorType": type(error).__name__, "errorMessage": str(error)}), "error"
    api.request("POST", f"/2018-06-01/runtime/invocation/{request_id}/{path}", body=body,
                headers={"Content-Type": "application/json"})
    api.getresponse().read()
"#;

async fn cold_starts(
    ctx: &CloudContext<'_>,
    repo_root: &Path,
    cases: &[ColdCase],
    runs: usize,
) -> anyhow::Result<ColdStarts> {
    let work = std::env::temp_dir().join(format!("drplan-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let outcome = cold_starts_in(ctx, repo_root, cases, runs, &work).await;
    let _ = std::fs::remove_dir_all(&work);
    outcome
}

async fn cold_starts_in(
    ctx: &CloudContext<'_>,
    repo_root: &Path,
    cases: &[ColdCase],
    runs: usize,
    work: &Path,
) -> anyhow::Result<ColdStarts> {
    let handler = work.join("handler.py");
    std::fs::write(&handler, PYTHON_HANDLER).context("writing the Python handler")?;
    let python = repo_root.join(".venv/bin/python3");
    let python_version = std::process::Command::new(&python)
        .args(["-c", "import sys, boto3; print(f'Python {sys.version.split()[0]}, boto3 {boto3.__version__}')"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    let mut results = Vec::new();
    for case in cases {
        say(&format!(
            "cold starts of {}: 1 warm-up + {runs} measured, Rust and Python alternating",
            case.function
        ));
        let binary = repo_root.join("target/release").join(&case.function);
        let rust_program = Program {
            program: binary.clone(),
            args: vec![],
            extra_env: vec![],
        };
        let python_program = Program {
            program: python.clone(),
            args: vec![handler.display().to_string()],
            extra_env: vec![("BENCH_CALL".into(), case.python_call.to_string())],
        };
        let mut rust = Ok(Vec::new());
        let mut py = if python_version.is_some() {
            Ok(Vec::new())
        } else {
            Err(format!(
                "{} with boto3 is not installed (scripts/install-local-cloud)",
                python.display()
            ))
        };
        for attempt in 0..=runs {
            let warm_up = attempt == 0;
            if let Ok(samples) = &mut rust {
                match cold_start(
                    ctx,
                    &case.function,
                    &rust_program,
                    &case.event,
                    work,
                    "aws-sdk-rust",
                )
                .await
                {
                    Ok(sample) if !warm_up => samples.push(sample),
                    Ok(_) => {}
                    Err(e) => rust = Err(format!("{e:#}")),
                }
            }
            if let Ok(samples) = &mut py {
                match cold_start(
                    ctx,
                    &case.function,
                    &python_program,
                    &case.event,
                    work,
                    "boto3",
                )
                .await
                {
                    Ok(sample) if !warm_up => samples.push(sample),
                    Ok(_) => {}
                    Err(e) => py = Err(format!("{e:#}")),
                }
            }
        }
        results.push(ColdResult {
            function: case.function.clone(),
            event_source: case.event_source.clone(),
            event_bytes: case.event.to_string().len(),
            rust,
            python: py,
        });
    }
    Ok(ColdStarts {
        runs,
        python: python_version.unwrap_or_else(|| "not available".into()),
        results,
    })
}

struct Program {
    program: PathBuf,
    args: Vec<String>,
    extra_env: Vec<(String, String)>,
}

/// What the fake Runtime API saw.
#[derive(Debug)]
enum RuntimeSignal {
    Next(Instant),
    Handed(Instant),
    Answered {
        at: Instant,
        error: bool,
        body: String,
    },
    InitError(String),
}

/// One cold start: a new process under a new Runtime API, one event, its answer.
async fn cold_start(
    ctx: &CloudContext<'_>,
    function: &str,
    program: &Program,
    event: &Value,
    work: &Path,
    caller: &str,
) -> anyhow::Result<ColdSample> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding the Runtime API")?;
    let api = listener.local_addr()?;
    let (signals, mut received) = mpsc::unbounded_channel();
    let server = tokio::spawn(serve_runtime_api(
        listener,
        Arc::new(event.to_string().into_bytes()),
        function.to_owned(),
        signals,
    ));
    let _server_guard = AbortOnDrop(server);
    ctx.gateway_requests("DELETE").await?;

    let mut command = tokio::process::Command::new(&program.program);
    command.args(&program.args).env_clear().current_dir(work);
    for (key, value) in function_environment(ctx, function, &api.to_string())
        .into_iter()
        .chain(program.extra_env.iter().cloned())
    {
        command.env(key, value);
    }
    let log = work.join(format!("{function}.log"));
    let spawned = Instant::now();
    let child = SupervisedChild::spawn(function, command, &log)?;
    let pid = child.pid();
    let outcome: anyhow::Result<ColdSample> = async {
        let mut ready = None;
        let mut handed = None;
        let deadline = tokio::time::Instant::now() + COLD_START_TIMEOUT * 2;
        loop {
            let signal = tokio::time::timeout_at(deadline, received.recv())
                .await
                .map_err(|_| {
                    anyhow::anyhow!(
                        "no answer in {:?}; log: {}",
                        COLD_START_TIMEOUT * 2,
                        tail(&log)
                    )
                })?
                .context("the Runtime API stopped")?;
            match signal {
                RuntimeSignal::Next(at) => {
                    ready.get_or_insert(at);
                }
                RuntimeSignal::Handed(at) => handed = Some(at),
                RuntimeSignal::InitError(body) => bail!("init error: {body}"),
                RuntimeSignal::Answered { at, error, body } => {
                    let (Some(ready), Some(handed)) = (ready, handed) else {
                        bail!("an answer before an event");
                    };
                    let detail = if error {
                        serde_json::from_str::<Value>(&body)
                            .ok()
                            .and_then(|v| v["errorType"].as_str().map(str::to_owned))
                            .unwrap_or(body)
                    } else {
                        "ok".to_owned()
                    };
                    return Ok(ColdSample {
                        ready_ms: (ready - spawned).as_secs_f64() * 1000.0,
                        invoke_ms: (at - handed).as_secs_f64() * 1000.0,
                        ok: !error,
                        detail,
                        first_call: String::new(),
                        hwm_kib: proc_status(pid).map(|s| s.hwm_kib),
                    });
                }
            }
        }
    }
    .await;
    child.stop().await;
    let mut sample = outcome?;
    let requests = ctx.gateway_requests("GET").await?;
    sample.first_call = requests["recent"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["caller"] == caller)
        .map(|r| {
            format!(
                "{} {}",
                r["service"].as_str().unwrap_or("?"),
                r["operation"].as_str().unwrap_or("?")
            )
        })
        .unwrap_or_else(|| "none".into());
    Ok(sample)
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The environment Lambda gives a function, plus what the local cloud gives drplan's
/// (as `cargo lambda watch` does in the local cloud).
fn function_environment(
    ctx: &CloudContext<'_>,
    function: &str,
    api: &str,
) -> Vec<(String, String)> {
    let region = ctx.cloud.region();
    [
        ("AWS_LAMBDA_RUNTIME_API", api.to_owned()),
        ("AWS_LAMBDA_FUNCTION_NAME", function.to_owned()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".to_owned()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/{function}"),
        ),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "bench".to_owned()),
        ("AWS_LAMBDA_LOG_FORMAT", "JSON".to_owned()),
        ("AWS_LAMBDA_LOG_LEVEL", "INFO".to_owned()),
        ("_HANDLER", "bootstrap".to_owned()),
        ("LANG", "C.UTF-8".to_owned()),
        ("TZ", ":UTC".to_owned()),
        ("AWS_ENDPOINT_URL", ctx.cloud.endpoint_url().to_owned()),
        ("AWS_REGION", region.to_owned()),
        ("AWS_DEFAULT_REGION", region.to_owned()),
        ("AWS_ACCESS_KEY_ID", "drplanlocal".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "drplanlocal".to_owned()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
        ("NO_PROXY", "127.0.0.1,localhost".to_owned()),
        ("DRPLAN_BUCKET", ctx.stack.bucket.clone()),
        ("DRPLAN_TOPIC_ARN", ctx.topic_arn.clone()),
        ("DRPLAN_PROBE_LOOPBACK", "1".to_owned()),
        // The trigger's: the account whose events act, the state machines it starts.
        ("DRPLAN_ACCOUNT_ID", ACCOUNT.to_owned()),
        (
            "DRPLAN_STATE_MACHINE_ARN",
            ctx.stack.recovery_state_machine_arn.clone(),
        ),
        (
            "DRPLAN_ESCALATION_STATE_MACHINE_ARN",
            ctx.stack.recovery_state_machine_arn.replace(
                drplan_local::stack::RECOVERY_STATE_MACHINE,
                drplan_local::stack::ESCALATION_STATE_MACHINE,
            ),
        ),
        ("AWS_S3_FORCE_PATH_STYLE", "true".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// A Lambda Runtime API for one cold start: hands `event` out once, reports what
/// happens, and holds every later `next` open until the process is stopped.
async fn serve_runtime_api(
    listener: TcpListener,
    event: Arc<Vec<u8>>,
    function: String,
    signals: mpsc::UnboundedSender<RuntimeSignal>,
) {
    let handed = Arc::new(AtomicBool::new(false));
    let mut connections = tokio::task::JoinSet::new();
    while let Ok((stream, _)) = listener.accept().await {
        let event = event.clone();
        let handed = handed.clone();
        let signals = signals.clone();
        let function = function.clone();
        connections.spawn(async move {
            let _ = runtime_connection(stream, &event, &function, &handed, &signals).await;
        });
    }
}

async fn runtime_connection(
    stream: TcpStream,
    event: &[u8],
    function: &str,
    handed: &AtomicBool,
    signals: &mpsc::UnboundedSender<RuntimeSignal>,
) -> anyhow::Result<()> {
    let mut reader = BufReader::new(stream);
    loop {
        let Some(head) = read_head(&mut reader).await? else {
            return Ok(());
        };
        let body = read_body(&mut reader, &head.headers).await?;
        let mut words = head.first_line.split_whitespace();
        let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
        if method == "GET" && path.ends_with("/runtime/invocation/next") {
            let _ = signals.send(RuntimeSignal::Next(Instant::now()));
            if handed.swap(true, Ordering::SeqCst) {
                // One event per process: later polls wait until it is stopped.
                std::future::pending::<()>().await;
            }
            let deadline = jiff::Timestamp::now().as_millisecond() + 900_000;
            let headers = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
                 lambda-runtime-aws-request-id: 8476a536-e9f4-11e8-9739-2dfe598c3fcd\r\n\
                 lambda-runtime-deadline-ms: {deadline}\r\n\
                 lambda-runtime-invoked-function-arn: arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function}\r\n\
                 lambda-runtime-trace-id: Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=0\r\n\r\n",
                event.len()
            );
            let stream = reader.get_mut();
            stream.write_all(headers.as_bytes()).await?;
            stream.write_all(event).await?;
            stream.flush().await?;
            let _ = signals.send(RuntimeSignal::Handed(Instant::now()));
            continue;
        }
        let text = String::from_utf8_lossy(&body).into_owned();
        if method == "POST" && path.ends_with("/init/error") {
            let _ = signals.send(RuntimeSignal::InitError(text));
        } else if method == "POST" && path.contains("/runtime/invocation/") {
            let error = path.ends_with("/error");
            let _ = signals.send(RuntimeSignal::Answered {
                at: Instant::now(),
                error,
                body: text,
            });
        } else {
            let stream = reader.get_mut();
            stream
                .write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
                .await?;
            continue;
        }
        let answer = br#"{"status":"OK"}"#;
        let stream = reader.get_mut();
        stream
            .write_all(
                format!(
                    "HTTP/1.1 202 Accepted\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                    answer.len()
                )
                .as_bytes(),
            )
            .await?;
        stream.write_all(answer).await?;
        stream.flush().await?;
    }
}

struct Head {
    first_line: String,
    /// Lower-case names.
    headers: Vec<(String, String)>,
}

/// An HTTP/1.1 message head, or `None` at the end of the stream.
async fn read_head<R: AsyncBufRead + Unpin>(reader: &mut R) -> anyhow::Result<Option<Head>> {
    let mut first_line = String::new();
    if reader.read_line(&mut first_line).await? == 0 {
        return Ok(None);
    }
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await? == 0 {
            bail!("the connection ended in a message head");
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
        anyhow::ensure!(headers.len() < 200, "too many headers");
    }
    Ok(Some(Head {
        first_line: first_line.trim_end().to_owned(),
        headers,
    }))
}

fn header<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// A message body by `content-length` or chunked; `None` for neither reads nothing.
async fn read_body<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    headers: &[(String, String)],
) -> anyhow::Result<Vec<u8>> {
    const LIMIT: usize = 64 << 20;
    if header(headers, "transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        let mut body = Vec::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).await?;
            let size_text = line.trim().split(';').next().unwrap_or("");
            let size = usize::from_str_radix(size_text, 16)
                .with_context(|| format!("a chunk size {size_text:?}"))?;
            if size == 0 {
                // Trailers, up to the empty line.
                loop {
                    let mut trailer = String::new();
                    if reader.read_line(&mut trailer).await? == 0 || trailer.trim().is_empty() {
                        return Ok(body);
                    }
                }
            }
            anyhow::ensure!(body.len() + size <= LIMIT, "a body over {LIMIT} bytes");
            let start = body.len();
            body.resize(start + size, 0);
            reader.read_exact(&mut body[start..]).await?;
            let mut crlf = String::new();
            reader.read_line(&mut crlf).await?;
        }
    }
    let length = match header(headers, "content-length") {
        Some(text) => text.parse::<usize>().context("content-length")?,
        None => 0,
    };
    anyhow::ensure!(length <= LIMIT, "a body over {LIMIT} bytes");
    let mut body = vec![0; length];
    reader.read_exact(&mut body).await?;
    Ok(body)
}

/// One plain HTTP/1.1 request to a loopback address: (status, body).
async fn http_call(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
) -> anyhow::Result<(u16, Vec<u8>)> {
    anyhow::ensure!(addr.ip().is_loopback(), "{addr} is not a loopback address");
    let mut stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    stream
        .write_all(
            format!("{method} {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await?;
    let mut reader = BufReader::new(stream);
    let head = read_head(&mut reader)
        .await?
        .context("the connection closed without an answer")?;
    let status = head
        .first_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("a status line")?;
    let body = if header(&head.headers, "content-length").is_some()
        || header(&head.headers, "transfer-encoding").is_some()
    {
        read_body(&mut reader, &head.headers).await?
    } else {
        let mut body = Vec::new();
        reader.read_to_end(&mut body).await?;
        body
    };
    Ok((status, body))
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(5)..].join(" | ")
}

// ---------------------------------------------------------------------------------------
// Section 2: memory

struct ProcStatus {
    hwm_kib: u64,
    rss_kib: u64,
}

fn proc_status(pid: u32) -> Option<ProcStatus> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
    };
    Some(ProcStatus {
        hwm_kib: field("VmHWM:")?,
        rss_kib: field("VmRSS:")?,
    })
}

/// Peak and current RSS of the function processes `cargo lambda watch` started (its
/// descendants), by function: (function, pid, VmHWM KiB, VmRSS KiB).
fn function_memory(cloud: &LocalCloud, functions: &[String]) -> Vec<(String, u32, u64, u64)> {
    let Some(root) = cloud.functions_pid() else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    // pid → (parent, command name)
    let mut processes: BTreeMap<u32, (u32, String)> = BTreeMap::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        // After the name: state, ppid.
        let Some(parent) = stat[close + 1..]
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        processes.insert(pid, (parent, stat[open + 1..close].to_owned()));
    }
    let descends_from_root = |mut pid: u32| {
        for _ in 0..64 {
            match processes.get(&pid) {
                Some((parent, _)) if *parent == root => return true,
                Some((parent, _)) if *parent > 1 => pid = *parent,
                _ => return false,
            }
        }
        false
    };
    let mut found = Vec::new();
    for (pid, (_, comm)) in &processes {
        if functions.iter().any(|f| f == comm)
            && descends_from_root(*pid)
            && let Some(status) = proc_status(*pid)
        {
            found.push((comm.clone(), *pid, status.hwm_kib, status.rss_kib));
        }
    }
    found.sort();
    found
}

/// `MemorySize` of each function in the template (the Globals' value when it has none).
fn template_memory_sizes(repo_root: &Path) -> BTreeMap<String, u64> {
    let mut sizes = BTreeMap::new();
    let Ok(text) = std::fs::read_to_string(repo_root.join(stack::TEMPLATE)) else {
        return sizes;
    };
    let Ok(template) = drplan_core::parse_document(&text, drplan_core::Format::Yaml) else {
        return sizes;
    };
    let global = template["Globals"]["Function"]["MemorySize"].as_u64();
    for resource in template["Resources"]
        .as_object()
        .into_iter()
        .flat_map(|r| r.values())
    {
        if resource["Type"] != "AWS::Serverless::Function" {
            continue;
        }
        let properties = &resource["Properties"];
        let binary = resource["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .or_else(|| properties["FunctionName"].as_str());
        if let (Some(binary), Some(size)) = (binary, properties["MemorySize"].as_u64().or(global)) {
            sizes.insert(binary.to_owned(), size);
        }
    }
    if let Some(global) = global {
        sizes.insert("*".to_owned(), global);
    }
    sizes
}

// ---------------------------------------------------------------------------------------
// The machine

#[derive(Debug, Default)]
struct Machine {
    cpus: usize,
    cpu_model: String,
    memory: String,
    os: String,
    kernel: String,
    rustc: String,
    cargo_lambda: String,
}

fn machine(repo_root: &Path) -> Machine {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let cpu_model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .and_then(|r| r.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    let memory = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|r| r.split_whitespace().next()?.parse::<f64>().ok())
        .map(|kib| format!("{:.1} GiB", kib / 1024.0 / 1024.0))
        .unwrap_or_else(|| "unknown".into());
    let os = read("/etc/os-release")
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|n| n.trim_matches('"').to_owned())
        .unwrap_or_else(|| "unknown".into());
    let version = |program: &Path, arg: &str| {
        std::process::Command::new(program)
            .arg(arg)
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_else(|| "unknown".into())
    };
    let cargo_lambda = tools::cargo_lambda(repo_root)
        .map(|path| {
            std::process::Command::new(path)
                .args(["lambda", "--version"])
                .output()
                .ok()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
                .unwrap_or_default()
        })
        .unwrap_or_else(|_| "not installed".into());
    Machine {
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        cpu_model,
        memory,
        os,
        kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
        rustc: version(Path::new("rustc"), "-V"),
        cargo_lambda,
    }
}

// ---------------------------------------------------------------------------------------
// The report

#[derive(Debug, Default)]
struct Report {
    command: String,
    functions: Vec<String>,
    commands: Vec<String>,
    machine: Machine,
    quick: bool,
    time_scale: f64,
    phases: String,
    packages: Packages,
    runs: Vec<RunResult>,
    cold: ColdStarts,
    memory_a: Vec<(String, u32, u64, u64)>,
    memory_b: Option<Vec<(String, u32, u64, u64)>>,
    memory_sizes: BTreeMap<String, u64>,
    elapsed: Duration,
}

fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    })
}

fn verdict(pass: bool) -> &'static str {
    if pass { "PASS" } else { "**MISS**" }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

impl Report {
    fn render(&self) -> String {
        let mut out = String::new();
        let m = &self.machine;
        let _ = writeln!(out, "# drplan benchmarks\n");
        let _ = writeln!(
            out,
            "Measured by `drplan bench` (issue #8) in {:.0} s{}. Every number below was measured in this run; \
             ratios compare measurements taken side by side in it.\n",
            self.elapsed.as_secs_f64(),
            if self.quick {
                ", **--quick** (3 cold starts, no 4,000-server plan)"
            } else {
                ""
            }
        );
        let _ = writeln!(out, "## Machine and commands\n");
        let _ = writeln!(out, "- CPUs: {} × {}", m.cpus, m.cpu_model);
        let _ = writeln!(
            out,
            "- memory: {}; OS: {} (Linux {})",
            m.memory, m.os, m.kernel
        );
        let _ = writeln!(
            out,
            "- {}; {}; {}",
            m.rustc, m.cargo_lambda, self.cold.python
        );
        let _ = writeln!(
            out,
            "- the command: `scripts/install-local-cloud && {}`",
            self.command
        );
        let _ = writeln!(out, "- it ran:");
        for command in &self.commands {
            let _ = writeln!(out, "  - `{command}`");
        }
        let _ = writeln!(
            out,
            "- the local cloud: moto, `cargo lambda watch --release` (the release binaries), the DRS \
             simulator at time scale {:.4} ({}), one gateway; all on 127.0.0.1\n",
            self.time_scale, self.phases
        );
        self.render_cold(&mut out);
        self.render_memory(&mut out);
        self.render_packages(&mut out);
        self.render_overhead(&mut out);
        self.render_cost(&mut out);
        out
    }

    fn render_cold(&self, out: &mut String) {
        let _ = writeln!(out, "## 1. Cold start\n");
        let _ = writeln!(
            out,
            "Each function binary (`target/release/NAME`, the host build of the release profile) is \
             started as a new process under a Lambda Runtime API served by the bench on 127.0.0.1, \
             with Lambda's environment and the local cloud's (`AWS_ENDPOINT_URL` = the gateway). \
             **ready** = spawn → its first `GET /runtime/invocation/next`; **first invocation** = \
             the event handed over → its response posted. The event is the first one the function \
             received in a plan run of this bench (replayed: the steps are idempotent), so the \
             function makes its real first AWS calls against the local cloud and finishes its \
             handler. The Python 3 + boto3 baseline is a runtime loop that imports boto3, builds \
             its client at init (as handlers do) and makes the same first AWS call (the gateway \
             records both first calls, shown below); it does only that call, where the Rust \
             function runs its whole handler. Medians of {} runs after one unmeasured warm-up each, \
             Rust and Python alternating. Targets: ready < {COLD_START_TARGET_MS} ms and Python/Rust \
             ≥ {COLD_START_RATIO_TARGET}×.\n",
            self.cold.runs
        );
        let _ = writeln!(
            out,
            "| function | Rust ready ms | Rust 1st invocation ms | Python ready ms | Python 1st invocation ms | ratio ready | ratio ready + 1st | Rust RSS after 1st MiB | outcome (Rust / Python) | first AWS call (Rust / Python) | ready < {COLD_START_TARGET_MS} ms | ratio ≥ {COLD_START_RATIO_TARGET}× |"
        );
        let _ = writeln!(
            out,
            "|---|---:|---:|---:|---:|---:|---:|---:|---|---|---|---|"
        );
        let mut misses = Vec::new();
        for result in &self.cold.results {
            let stats = ColdStats::of;
            let rust = stats(&result.rust);
            let python = stats(&result.python);
            let cell = |v: Option<f64>| v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.1}"));
            let ratio_ready = rust
                .as_ref()
                .zip(python.as_ref())
                .map(|(r, p)| p.ready / r.ready);
            let ratio_total = rust
                .as_ref()
                .zip(python.as_ref())
                .map(|(r, p)| p.total / r.total);
            let ready_pass = rust.as_ref().map(|r| r.ready < COLD_START_TARGET_MS);
            let ratio_pass = ratio_ready.map(|r| r >= COLD_START_RATIO_TARGET);
            if ready_pass == Some(false) || ratio_pass == Some(false) {
                misses.push(result.function.clone());
            }
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} / {} | {} / {} | {} | {} |",
                result.function,
                cell(rust.as_ref().map(|r| r.ready)),
                cell(rust.as_ref().map(|r| r.invoke)),
                cell(python.as_ref().map(|p| p.ready)),
                cell(python.as_ref().map(|p| p.invoke)),
                ratio_ready.map_or_else(|| "n/a".into(), |r| format!("{r:.1}×")),
                ratio_total.map_or_else(|| "n/a".into(), |r| format!("{r:.1}×")),
                rust.as_ref()
                    .and_then(|r| r.hwm_kib)
                    .map_or_else(|| "n/a".into(), |k| format!("{:.1}", mib(k))),
                rust.as_ref()
                    .map_or_else(|| "failed".into(), |r| r.outcome.clone()),
                python
                    .as_ref()
                    .map_or_else(|| "failed".into(), |p| p.outcome.clone()),
                rust.as_ref().map_or("", |r| r.first_call.as_str()),
                python.as_ref().map_or("", |p| p.first_call.as_str()),
                ready_pass.map_or("n/a", verdict),
                ratio_pass.map_or("n/a", verdict),
            );
        }
        let _ = writeln!(out);
        for result in &self.cold.results {
            let _ = writeln!(
                out,
                "- {}: event = {} ({} bytes){}{}",
                result.function,
                result.event_source,
                result.event_bytes,
                result
                    .rust
                    .as_ref()
                    .err()
                    .map(|e| format!("; Rust failed: {e}"))
                    .unwrap_or_default(),
                result
                    .python
                    .as_ref()
                    .err()
                    .map(|e| format!("; Python failed: {e}"))
                    .unwrap_or_default(),
            );
        }
        let measured: Vec<&str> = self
            .cold
            .results
            .iter()
            .map(|r| r.function.as_str())
            .collect();
        let _ = writeln!(
            out,
            "- not measured (no event of theirs in the state machine's runs): {}",
            self.functions_not_in(&measured)
        );
        if !misses.is_empty() {
            let _ = writeln!(
                out,
                "- **missed by**: {}. What a cold start costs here is the process start, the \
                 runtime's and the SDK's initialisation (credentials, endpoint, TLS roots) on this \
                 shared 2-core machine; the first invocation is dominated by the local cloud's \
                 answers (moto is Python).",
                misses.join(", ")
            );
        }
        let _ = writeln!(out);
    }

    fn functions_not_in(&self, measured: &[&str]) -> String {
        let missing: Vec<&str> = self
            .functions
            .iter()
            .map(String::as_str)
            .filter(|f| !measured.contains(f))
            .collect();
        if missing.is_empty() {
            "none".into()
        } else {
            missing.join(", ")
        }
    }

    fn render_memory(&self, out: &mut String) {
        let _ = writeln!(out, "## 2. Peak memory\n");
        let (rows, what) = match &self.memory_b {
            Some(rows) => (
                rows,
                "the function processes `cargo lambda watch --release` ran for one 20 waves × 200 \
                 servers (4,000) recovery on a fresh local cloud, read from /proc/PID/status \
                 (VmHWM: the peak resident set over the process's life, i.e. over every event of \
                 that plan) before the cloud stopped",
            ),
            None => (
                &self.memory_a,
                "**--quick: not the 4,000-server plan** — the function processes after the small \
                 plans of cloud A (at most 400 servers a plan), from /proc/PID/status VmHWM",
            ),
        };
        let _ = writeln!(
            out,
            "Measured: {what}. Target: < {MEMORY_TARGET_MIB} MiB.\n"
        );
        let _ = writeln!(
            out,
            "| function | peak RSS (VmHWM) MiB | RSS at the end MiB | < {MEMORY_TARGET_MIB} MiB |"
        );
        let _ = writeln!(out, "|---|---:|---:|---|");
        let mut misses = Vec::new();
        for (function, _pid, hwm, rss) in rows {
            let pass = mib(*hwm) < MEMORY_TARGET_MIB;
            if !pass {
                misses.push(function.clone());
            }
            let _ = writeln!(
                out,
                "| {function} | {:.1} | {:.1} | {} |",
                mib(*hwm),
                mib(*rss),
                verdict(pass)
            );
        }
        if rows.is_empty() {
            let _ = writeln!(out, "| (no function process found) | | | |");
        }
        if self.memory_b.is_some() && !self.memory_a.is_empty() {
            let _ = writeln!(
                out,
                "\nFor comparison, after cloud A's plans (40, 400 and 100 servers): {}.",
                self.memory_a
                    .iter()
                    .map(|(f, _, hwm, _)| format!("{f} {:.1} MiB", mib(*hwm)))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        if !misses.is_empty() {
            let _ = writeln!(out, "\n**Missed by** {}.", misses.join(", "));
        }
        let _ = writeln!(out);
    }

    fn render_packages(&self, out: &mut String) {
        let _ = writeln!(out, "## 3. Package size\n");
        match &self.packages {
            Packages::Skipped => {
                let _ = writeln!(out, "Skipped (--skip-packages).\n");
            }
            Packages::Failed(error) => {
                let _ = writeln!(out, "Could not be built: {error}\n");
            }
            Packages::Built { target, note, zips } => {
                let _ = writeln!(
                    out,
                    "`target/lambda/NAME/bootstrap.zip` from `cargo lambda build --release {} --output-format zip` \
                     (the release profile: LTO, one codegen unit, stripped). Target: < {PACKAGE_TARGET_MIB} MiB.\n",
                    if target.starts_with("arm64") {
                        "--arm64"
                    } else {
                        "--x86-64"
                    }
                );
                if let Some(note) = note {
                    let _ = writeln!(out, "**{note}**; the sizes below are for {target}.\n");
                }
                let _ = writeln!(
                    out,
                    "| function ({target}) | zip MiB | zip bytes | < {PACKAGE_TARGET_MIB} MiB |"
                );
                let _ = writeln!(out, "|---|---:|---:|---|");
                for (function, size) in zips {
                    match size {
                        Some(bytes) => {
                            let mib = *bytes as f64 / 1024.0 / 1024.0;
                            let _ = writeln!(
                                out,
                                "| {function} | {mib:.2} | {bytes} | {} |",
                                verdict(mib < PACKAGE_TARGET_MIB)
                            );
                        }
                        None => {
                            let _ = writeln!(out, "| {function} | missing | | n/a |");
                        }
                    }
                }
                let _ = writeln!(out);
            }
        }
    }

    fn render_overhead(&self, out: &mut String) {
        let _ = writeln!(out, "## 4. Orchestration overhead\n");
        let _ = writeln!(
            out,
            "Wall time = the execution's start → stop dates in Step Functions (moto) for a whole \
             recovery: discover, notifications, every wave (launch, wait, tag, health) and the DNS \
             cut-over. Ideal = the simulator's phases of one wave × the waves on the DAG's \
             critical path (health time is 0 in the simulation: moto reports EC2 status checks ok \
             as soon as an instance runs; DNS changes are INSYNC at once). Allowed = \
             {:.0} % of the ideal + {OVERHEAD_PER_WAVE_SECONDS} s per critical-path wave. Timing: \
             polls every second.\n",
            OVERHEAD_FRACTION * 100.0
        );
        let _ = writeln!(
            out,
            "| plan | DAG | status | wall s | ideal s | overhead s | allowed s | overhead per critical wave s | within target |"
        );
        let _ = writeln!(out, "|---|---|---|---:|---:|---:|---:|---:|---|");
        let mut misses = Vec::new();
        for run in self.runs.iter().filter(|r| r.spec.mode == "recovery") {
            let pass = run.status == "SUCCEEDED" && run.overhead() <= run.overhead_allowed();
            if !pass {
                misses.push(run);
            }
            let _ = writeln!(
                out,
                "| {} | {} waves, critical path {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.2} | {} |",
                run.spec.label,
                run.waves(),
                run.spec.critical_waves,
                run.status,
                run.wall_seconds,
                run.spec.ideal_seconds,
                run.overhead(),
                run.overhead_allowed(),
                run.overhead() / run.spec.critical_waves.max(1) as f64,
                verdict(pass)
            );
        }
        let _ = writeln!(out);
        if !misses.is_empty() {
            let _ = writeln!(
                out,
                "**Missed by** {}. Per wave the state machine runs NotifyWaveStarted, LaunchWave, a \
                 Wait, CheckLaunch until every server settled (the job's end is seen at the next \
                 1 s poll), TagInstances, CheckHealth and NotifyWaveSucceeded: each a Lambda \
                 invocation through moto's Step Functions interpreter, the gateway and `cargo \
                 lambda watch`, whose per-state latency on this machine is what adds up; moto \
                 itself (Python) also launches the simulator's EC2 instances one RunInstances \
                 at a time.\n",
                misses
                    .iter()
                    .map(|r| r.spec.label.clone())
                    .collect::<Vec<_>>()
                    .join("; ")
            );
        }
        if let Some(largest) = self
            .runs
            .iter()
            .filter(|r| r.spec.mode == "recovery")
            .max_by_key(|r| r.spec.servers())
        {
            largest.render_time_breakdown(out);
        }
        // What the default timing would add in AWS: polls back off from 30 s to 300 s.
        let defaults = Timing::default();
        let real_wave = self.runs.first().map_or(0.0, |r| {
            r.spec.ideal_seconds / r.spec.critical_waves.max(1) as f64 / self.time_scale
        });
        let mut elapsed = 0.0;
        let mut attempt = 0;
        while elapsed < real_wave && attempt < 1000 {
            elapsed += f64::from(defaults.poll_delay_seconds(attempt));
            attempt += 1;
        }
        let _ = writeln!(
            out,
            "With the default timing (polls after {} s, backing off ×{} to {} s) a real wave of \
             {real_wave:.0} s is seen done at poll number {attempt}, {elapsed:.0} s after the launch: {:.0} s of \
             waiting that the 1 s polls above do not have. The poll schedule, not the functions, \
             sets that part of the overhead; `timing` in the execution input trades it against \
             state transitions (section 5).\n",
            defaults.poll_initial_seconds,
            defaults.poll_backoff_rate,
            defaults.poll_max_seconds,
            elapsed - real_wave
        );
    }

    fn render_cost(&self, out: &mut String) {
        let _ = writeln!(out, "## 5. Cost drivers\n");
        let _ = writeln!(
            out,
            "Per execution: state transitions = `*StateEntered` events of the execution history; \
             Lambda invocations and AWS API calls = requests through the local cloud's gateway \
             during the execution (API calls: those made by the functions' AWS SDK; DRS calls \
             apart, since their number is set by DRS's quotas and pages: at most 100 servers a \
             job, 200 source servers a page). The bench's own polling went to moto directly.\n"
        );
        let _ = writeln!(
            out,
            "| plan | timing | servers | waves | transitions | per wave | per server | Lambda invocations | per wave | API calls (not DRS) | per wave | per server | DRS calls | per wave | per server |"
        );
        let _ = writeln!(
            out,
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        for run in &self.runs {
            let servers = f64::from(run.spec.servers());
            let waves = run.waves() as f64;
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {:.1} | {:.3} | {} | {:.1} | {} | {:.1} | {:.3} | {} | {:.1} | {:.3} |",
                run.spec.label,
                run.spec.timing_label,
                run.spec.servers(),
                run.waves(),
                run.transitions,
                run.transitions as f64 / waves,
                run.transitions as f64 / servers,
                run.lambda_invocations(),
                run.lambda_invocations() as f64 / waves,
                run.other_calls(),
                run.other_calls() as f64 / waves,
                run.other_calls() as f64 / servers,
                run.drs_calls(),
                run.drs_calls() as f64 / waves,
                run.drs_calls() as f64 / servers,
            );
        }
        let _ = writeln!(out);
        // Growth: the same DAG with 10× the servers.
        let small = self.runs.iter().find(|r| r.spec.name == "bench-s");
        let medium = self.runs.iter().find(|r| r.spec.name == "bench-m");
        if let (Some(small), Some(medium)) = (small, medium) {
            let factor =
                f64::from(medium.spec.servers()) / f64::from(small.spec.servers()).max(1.0);
            let growth = |a: u64, b: u64| b as f64 / (a as f64).max(1.0);
            let transitions = growth(small.transitions, medium.transitions);
            let calls = growth(small.other_calls(), medium.other_calls());
            let drs = growth(small.drs_calls(), medium.drs_calls());
            let _ = writeln!(
                out,
                "Same 4-wave DAG, servers ×{factor:.0}: state transitions ×{transitions:.2} ({}), \
                 API calls other than DRS ×{calls:.2} ({}), DRS calls ×{drs:.2} (what DRS's \
                 quotas require: StartRecovery per 100 servers, job logs per job, pages of \
                 servers). Tolerance for \"grows with waves, not servers\": ×{GROWTH_TOLERANCE}.\n",
                verdict(transitions <= GROWTH_TOLERANCE),
                verdict(calls <= GROWTH_TOLERANCE),
            );
        }
        if let Some(large) = self.runs.iter().find(|r| r.spec.name == "bench-l")
            && let Some(small) = small
        {
            let _ = writeln!(
                out,
                "20 waves × 200 against 4 waves × 10: transitions per wave {:.1} vs {:.1}, API \
                 calls (not DRS) per wave {:.1} vs {:.1}.\n",
                large.transitions as f64 / large.waves() as f64,
                small.transitions as f64 / small.waves() as f64,
                large.other_calls() as f64 / large.waves() as f64,
                small.other_calls() as f64 / small.waves() as f64,
            );
        }
        let _ = writeln!(
            out,
            "AWS API calls by operation (the functions' SDK calls):\n"
        );
        let _ = write!(out, "| service | operation |");
        for run in &self.runs {
            let _ = write!(out, " {} |", run.spec.label);
        }
        let _ = writeln!(out);
        let _ = writeln!(out, "|---|---|{}", "---:|".repeat(self.runs.len()));
        let operations: std::collections::BTreeSet<&(String, String)> =
            self.runs.iter().flat_map(|r| r.api_calls.keys()).collect();
        for key in operations {
            let _ = write!(out, "| {} | {} |", key.0, key.1);
            for run in &self.runs {
                let _ = write!(out, " {} |", run.api_calls.get(key).copied().unwrap_or(0));
            }
            let _ = writeln!(out);
        }
        let _ = writeln!(out);

        // The 100-server drill, at list prices.
        let memory_mb = self.memory_sizes.get("*").copied().unwrap_or(128) as f64;
        if let Some(drill) = self.runs.iter().find(|r| r.spec.mode == "drill") {
            let (sfn, lambda, gb_seconds) = drill.cost(memory_mb);
            let sizes = if self.memory_sizes.is_empty() {
                "128 MB assumed (infra/template.yaml unreadable)".to_owned()
            } else {
                self.memory_sizes
                    .iter()
                    .map(|(f, s)| format!("{} {s} MB", if f == "*" { "Globals" } else { f }))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let _ = writeln!(
                out,
                "**A 100-server drill** ({}, {} = the default poll schedule on the simulator's \
                 clock, so as many polls as against real DRS; drill kept 2 s: a Wait is one \
                 transition however long): {} state transitions, {} Lambda invocations, {:.1} \
                 GB-s ({} ms billed in all, each invocation's gateway-measured duration rounded \
                 up to 1 ms, at {memory_mb:.0} MB; template: {sizes}).\n",
                drill.spec.label,
                drill.spec.timing_label,
                drill.transitions,
                drill.lambda_invocations(),
                gb_seconds,
                drill.billed_millis(),
            );
            let _ = writeln!(out, "| item | quantity | list price | cost |");
            let _ = writeln!(out, "|---|---:|---|---:|");
            let _ = writeln!(
                out,
                "| Step Functions Standard | {} transitions | $0.025 per 1,000 | ${sfn:.6} |",
                drill.transitions
            );
            let _ = writeln!(
                out,
                "| Lambda requests | {} | $0.20 per 1M | ${:.6} |",
                drill.lambda_invocations(),
                drill.lambda_invocations() as f64 * LAMBDA_PER_REQUEST
            );
            let _ = writeln!(
                out,
                "| Lambda compute (arm64) | {gb_seconds:.2} GB-s | $0.0000133334 per GB-s | ${:.6} |",
                gb_seconds * LAMBDA_ARM64_PER_GB_SECOND
            );
            let _ = writeln!(
                out,
                "| **total per drill** | | | **${:.4}** |\n",
                sfn + lambda
            );
            let _ = writeln!(
                out,
                "Free tiers ignored; DRS's own charges (per source server, and the EC2 instances and \
                 volumes of the drill) are not drplan's and not included. Durations are local-cloud \
                 durations (moto answers more slowly than AWS), so compute is an upper estimate; \
                 transitions and requests do not depend on the machine.\n"
            );
        }
        let failed: Vec<String> = self
            .runs
            .iter()
            .filter(|r| r.status != "SUCCEEDED")
            .map(|r| format!("{} ({}: {})", r.spec.label, r.execution, r.status))
            .collect();
        if !failed.is_empty() {
            let _ = writeln!(
                out,
                "**Executions that did not succeed**: {}.\n",
                failed.join("; ")
            );
        }
        let _ = writeln!(
            out,
            "History events per execution: {}.",
            self.runs
                .iter()
                .map(|r| format!("{} {}", r.spec.label, r.history_events))
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: i64, previous: i64, kind: &str, seconds: f64, state: Option<&str>) -> Value {
        json!({"id": id, "previous": previous, "type": kind, "seconds": seconds,
               "state": state, "lambda": null})
    }

    #[test]
    fn state_times_add_overlapping_entries_and_name_the_task_function() {
        let mut scheduled = event(3, 2, "LambdaFunctionScheduled", 10.1, None);
        scheduled["lambda"] =
            json!({"resource": "arn:aws:lambda:us-east-1:1:function:tag-instances"});
        let history = vec![
            event(1, 0, "ExecutionStarted", 10.0, None),
            event(2, 1, "TaskStateEntered", 10.0, Some("TagInstances")),
            scheduled,
            // A second entry of the same state while the first is still in it (parallel waves).
            event(4, 1, "TaskStateEntered", 11.0, Some("TagInstances")),
            event(5, 3, "TaskStateExited", 12.0, Some("TagInstances")),
            event(6, 4, "TaskStateExited", 12.5, Some("TagInstances")),
            event(7, 6, "WaitStateEntered", 12.5, Some("WaitForLaunch")),
            event(8, 7, "WaitStateExited", 13.5, Some("WaitForLaunch")),
            // Still in it when the history ends (a failed or stopped execution).
            event(9, 8, "ChoiceStateEntered", 14.0, Some("Decide")),
            event(10, 9, "ExecutionAborted", 15.0, None),
        ];
        let times = state_times(&history);
        let tag = &times["TagInstances"];
        assert_eq!((tag.kind.as_str(), tag.entries), ("Task", 2));
        assert!((tag.seconds - 3.5).abs() < 1e-9, "{tag:?}");
        assert_eq!(tag.function.as_deref(), Some("tag-instances"));
        let wait = &times["WaitForLaunch"];
        assert_eq!(
            (wait.kind.as_str(), wait.entries, wait.function.as_deref()),
            ("Wait", 1, None)
        );
        assert!((wait.seconds - 1.0).abs() < 1e-9);
        assert!((times["Decide"].seconds - 1.0).abs() < 1e-9);
        assert!(!tag.waits_for_token);
    }

    #[test]
    fn a_task_that_waits_for_its_token_names_the_function_from_its_parameters() {
        let mut scheduled = event(3, 2, "TaskScheduled", 1.0, None);
        scheduled["lambda"] = json!({"resource": "arn:aws:lambda:us-east-1:1:function:wait-wave",
                                     "integration": "invoke.waitForTaskToken"});
        let history = vec![
            event(2, 1, "TaskStateEntered", 1.0, Some("WaitForLaunch")),
            scheduled,
            event(4, 3, "TaskStateExited", 31.0, Some("WaitForLaunch")),
        ];
        let times = state_times(&history);
        let park = &times["WaitForLaunch"];
        assert_eq!(park.function.as_deref(), Some("wait-wave"));
        assert!(park.waits_for_token);
        assert!((park.seconds - 30.0).abs() < 1e-9);
    }
}
