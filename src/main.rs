//! `drplan`: validate plans, and (as the local cloud and the state machines land) run
//! drills and recoveries with one command.

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Validate(args) => validate_cmd::run(&args),
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
