//! `drplan`: validate plans, and (as the local cloud and the state machines land) run
//! drills and recoveries with one command.

mod bench;
mod local_cmd;
mod local_drill;
mod run;
mod validate_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Disaster-recovery orchestration for AWS Elastic Disaster Recovery.
#[derive(Parser)]
#[command(name = "drplan", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check plan files: every problem at once, each with its path in the document.
    Validate(validate_cmd::ValidateArgs),
    /// Print the JSON Schema of the plan format (for editors and other tools).
    Schema,
    /// Start a drill or recovery: one StartExecution (against $AWS_ENDPOINT_URL when set).
    Start(run::start::StartArgs),
    /// Continue a failed, timed out or stopped run: its succeeded waves are adopted, only
    /// what did not launch launches; --skip-wave leaves waves out, with a reason.
    Resume(run::resume::ResumeArgs),
    /// Show a running or finished execution, wave by wave.
    Status(run::status::StatusArgs),
    /// Every run of a plan (mode, outcome, RTO) and when it last succeeded, from its reports.
    History(run::history::HistoryArgs),
    /// Evaluate stored plans now, as a run's discover step would: every finding that
    /// blocks a drill or a recovery, and warnings; exits non-zero when one blocks.
    Readiness(run::readiness::ReadinessArgs),
    /// Print an execution's report (from the stack's bucket).
    Report(run::report::ReportArgs),
    /// Approve an execution waiting for approval: its waves launch.
    Approve(run::decide::DecisionArgs),
    /// Decline an execution waiting for approval: it ends with nothing launched.
    Decline(run::decide::DeclineArgs),
    /// Hold a running execution before its next stage of waves (its time limit keeps counting).
    Pause(run::pause::PauseArgs),
    /// Release a paused execution (or withdraw a pause it has not reached yet).
    Continue(run::pause::ContinueArgs),
    /// Put the DNS records a recovery changed back to their previous values (a
    /// data-plane cutover: its failover alarm back to OK).
    RollbackDns(run::rollback_dns::RollbackArgs),
    /// Take a run's instances out of the target groups its waves registered them into.
    RollbackTargets(run::rollback_targets::RollbackTargetsArgs),
    /// A data-plane DNS cutover's failover records, health check and alarm: `prepare`
    /// makes them ahead of time, `check` compares them with the plan.
    #[command(subcommand)]
    Dns(run::dns::DnsCommand),
    /// The local cloud: moto, cargo lambda watch, the DRS simulator and one gateway.
    #[command(subcommand)]
    Local(local_cmd::LocalCommand),
    /// Measure cold start, memory, package size, orchestration overhead and cost drivers
    /// on the local cloud, side by side with a Python baseline; writes BENCHMARKS.md.
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Start(args) => {
            run_async(async move { run::start::start_and_maybe_follow(&args).await })
        }
        Command::Resume(args) => run_async(async move { run::resume::resume(&args).await }),
        Command::Status(args) => run_async(async move {
            let view = run::status::status(&args).await?;
            Ok(view.status != "FAILED" && view.status != "ABORTED" && view.status != "TIMED_OUT")
        }),
        Command::Approve(args) => run_async(async move {
            println!("{}", run::decide::decide(&args, None).await?);
            Ok(true)
        }),
        Command::Decline(args) => run_async(async move {
            println!(
                "{}",
                run::decide::decide(&args.decision, Some(&args.reason)).await?
            );
            Ok(true)
        }),
        Command::Pause(args) => run_async(async move {
            println!("{}", run::pause::pause(&args).await?);
            Ok(true)
        }),
        Command::Continue(args) => run_async(async move {
            println!("{}", run::pause::continue_run(&args).await?);
            Ok(true)
        }),
        Command::RollbackDns(args) => run_async(async move {
            println!("{}", run::rollback_dns::rollback_dns(&args).await?);
            Ok(true)
        }),
        Command::RollbackTargets(args) => run_async(async move {
            println!("{}", run::rollback_targets::rollback_targets(&args).await?);
            Ok(true)
        }),
        Command::Dns(command) => run_async(async move {
            let (text, ok) = run::dns::run(&command).await?;
            println!("{text}");
            Ok(ok)
        }),
        Command::History(args) => run_async(async move {
            let text = run::history::history(&args).await?;
            Ok(print_stdout(&text) == ExitCode::SUCCESS)
        }),
        Command::Readiness(args) => run_async(async move {
            let (text, ready) = run::readiness::readiness(&args).await?;
            Ok(print_stdout(&text) == ExitCode::SUCCESS && ready)
        }),
        Command::Report(args) => run_async(async move {
            let text = run::report::report(&args).await?;
            Ok(print_stdout(&text) == ExitCode::SUCCESS)
        }),
        Command::Validate(args) => validate_cmd::run(&args),
        Command::Local(command) => match local_cmd::run(command) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("drplan: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Bench(args) => match bench::run(&args) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("drplan bench: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Schema => match serde_json::to_string_pretty(&drplan_core::plan_json_schema()) {
            Ok(text) => print_stdout(&format!("{text}\n")),
            Err(e) => {
                eprintln!("drplan: cannot print the schema: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

/// Writes to stdout; a closed pipe (`drplan schema | head`) is not an error worth a panic.
pub(crate) fn print_stdout(text: &str) -> ExitCode {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("drplan: cannot write to stdout: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs an AWS-talking command on a runtime; `Ok(false)` means the command worked but
/// the outcome is a failure (a failed execution), exit 1; errors exit 1 with a message.
fn run_async(command: impl std::future::Future<Output = anyhow::Result<bool>>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("drplan: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(command) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("drplan: {e:#}");
            ExitCode::FAILURE
        }
    }
}
