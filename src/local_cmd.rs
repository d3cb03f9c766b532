//! `drplan local ...`: the local cloud (moto, `cargo lambda watch`, the DRS simulator and
//! one gateway address) on this machine. The work is done by the drplan-local crate; this
//! module only parses arguments and prints results.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use drplan_local::commands::{self, Fault, UpOptions};

#[derive(Debug, clap::Subcommand)]
pub enum LocalCommand {
    /// Rehearse a plan end to end: start the local cloud, deploy drplan, seed the fleet,
    /// run the plan through the real state machine and functions, print the report, stop
    /// everything
    Drill(crate::local_drill::DrillArgs),
    /// Run the local cloud in the foreground; Ctrl-C or SIGTERM stops every process it started
    Up {
        /// The gateway's port on 127.0.0.1 (AWS_ENDPOINT_URL=http://127.0.0.1:PORT)
        #[arg(long, default_value_t = drplan_local::DEFAULT_GATEWAY_PORT)]
        port: u16,
        /// Multiplies the DRS simulator's phase durations: 1.0 is realistic, 0.01 rehearses in seconds
        #[arg(long, default_value_t = 1.0)]
        time_scale: f64,
        /// Print one line per request the gateway routes
        #[arg(long)]
        log_requests: bool,
    },
    /// Create source servers, a VPC with recovery and drill subnets, Route 53 zones and an
    /// SNS topic with an SQS queue from a fleet file (see local/cloud/README.md); safe to repeat
    Seed {
        /// The fleet file, e.g. examples/fleet.yaml
        fleet: PathBuf,
        /// The local cloud's gateway [default: $AWS_ENDPOINT_URL or http://127.0.0.1:4566]
        #[arg(long)]
        endpoint_url: Option<String>,
    },
    /// Put the events in a file (EventBridge events as AWS documents them, or PutEvents
    /// entries) on the local EventBridge, which delivers them to matching rules' targets
    Event {
        file: PathBuf,
        /// The event bus [default: the bus named in the file, else "default"]
        #[arg(long)]
        event_bus: Option<String>,
        #[arg(long, default_value = "us-east-1")]
        region: String,
        /// The local cloud's gateway [default: $AWS_ENDPOINT_URL or http://127.0.0.1:4566]
        #[arg(long)]
        endpoint_url: Option<String>,
    },
    /// Do what a booted DRS Failback Client does for these recovery instances: connect
    /// (failback state FAILBACK_IN_PROGRESS), replicate, and become FAILBACK_READY_FOR_LAUNCH
    /// after the simulated sync time; each change puts a failback state-change event
    #[command(name = "failback-client")]
    FailbackClient {
        /// Recovery instance IDs (i-...), or source server IDs or hostnames
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        targets: Vec<String>,
        /// Every recovery instance whose failback has not started
        #[arg(long)]
        all: bool,
        /// The local cloud's gateway [default: $AWS_ENDPOINT_URL or http://127.0.0.1:4566]
        #[arg(long)]
        endpoint_url: Option<String>,
    },
    /// Fire a plan's drill schedule now, as EventBridge Scheduler would (moto never
    /// fires schedules): its target, the readiness function, starts the drill or says
    /// why it skipped it
    #[command(name = "fire-schedule")]
    FireSchedule {
        /// The plan whose drill schedule (drill.schedule) fires
        plan: String,
        #[arg(long, default_value = "us-east-1")]
        region: String,
        /// The local cloud's gateway [default: $AWS_ENDPOINT_URL or http://127.0.0.1:4566]
        #[arg(long)]
        endpoint_url: Option<String>,
    },
    /// Inject, list or clear faults in the DRS simulator
    Fault {
        #[command(subcommand)]
        fault: FaultCommand,
        /// The local cloud's gateway [default: $AWS_ENDPOINT_URL or http://127.0.0.1:4566]
        #[arg(long, global = true)]
        endpoint_url: Option<String>,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum FaultCommand {
    /// Answer the next COUNT calls of a DRS operation with ThrottlingException (429)
    Throttle {
        /// A DRS operation, e.g. StartRecovery, DescribeJobs
        operation: String,
        #[arg(long, default_value_t = 1)]
        count: u32,
        #[arg(long, default_value_t = 1)]
        retry_after_seconds: u64,
    },
    /// Fail the next launch of these source servers (IDs or hostnames)
    FailLaunch {
        #[arg(required = true)]
        servers: Vec<String>,
        /// The rawError of the LAUNCH_FAILED job log item [default: an InsufficientInstanceCapacity error]
        #[arg(long)]
        raw_error: Option<String>,
    },
    /// Fail the failback launch of these recovery instances (or servers, by ID or hostname):
    /// LAUNCH_FAILED in the job log, failback state FAILBACK_ERROR
    FailFailbackLaunch {
        #[arg(required = true)]
        targets: Vec<String>,
        /// The rawError of the LAUNCH_FAILED job log item
        #[arg(long)]
        raw_error: Option<String>,
    },
    /// Make these source servers' conversion slower
    SlowConversion {
        #[arg(required = true)]
        servers: Vec<String>,
        /// Multiplies the conversion time
        #[arg(long, default_value_t = 1.0)]
        factor: f64,
        /// Seconds added to the conversion time (before the time scale)
        #[arg(long, default_value_t = 0.0)]
        extra_seconds: f64,
    },
    /// Stall these source servers' replication (puts a STALLED event)
    Stall {
        #[arg(required = true)]
        servers: Vec<String>,
    },
    /// Resume these source servers' replication (puts a NOT_STALLED event)
    Unstall {
        #[arg(required = true)]
        servers: Vec<String>,
    },
    /// Make health probes of these instances fail (or pass again with --healthy)
    Unhealthy {
        /// Recovery instance IDs (i-...) or EC2 instance IDs
        #[arg(required = true)]
        targets: Vec<String>,
        #[arg(long)]
        healthy: bool,
    },
    /// Remove every fault
    Clear,
    /// Show the simulator's state, faults included
    Show,
}

pub fn run(command: LocalCommand) -> anyhow::Result<ExitCode> {
    let endpoint = |given: Option<String>| given.unwrap_or_else(commands::default_endpoint_url);
    match command {
        LocalCommand::Drill(args) => return crate::local_drill::run(&args),
        LocalCommand::Up {
            port,
            time_scale,
            log_requests,
        } => {
            commands::up(UpOptions {
                port,
                time_scale,
                log_requests,
            })
            .context("drplan local up")?;
        }
        LocalCommand::Seed {
            fleet,
            endpoint_url,
        } => {
            let endpoint_url = endpoint(endpoint_url);
            let report = commands::seed_file(&endpoint_url, &fleet).with_context(|| {
                format!("seeding {} into the local cloud at {endpoint_url} (is `drplan local up` running?)", fleet.display())
            })?;
            print_json(&report)?;
        }
        LocalCommand::Event {
            file,
            event_bus,
            region,
            endpoint_url,
        } => {
            let endpoint_url = endpoint(endpoint_url);
            let answer =
                commands::put_event_file(&endpoint_url, &file, event_bus.as_deref(), &region)
                    .with_context(|| format!(
                        "putting the events of {} on the local cloud at {endpoint_url} (is `drplan local up` running?)",
                        file.display()
                    ))?;
            print_json(&answer)?;
            if answer["FailedEntryCount"].as_u64().unwrap_or(0) > 0 {
                return Ok(ExitCode::FAILURE);
            }
        }
        LocalCommand::FailbackClient {
            targets,
            all,
            endpoint_url,
        } => {
            let endpoint_url = endpoint(endpoint_url);
            let answer = commands::failback_client(&endpoint_url, &targets, all)
                .with_context(|| format!("the DRS simulator's control API at {endpoint_url} (is `drplan local up` running?)"))?;
            print_json(&answer)?;
        }
        LocalCommand::FireSchedule {
            plan,
            region,
            endpoint_url,
        } => {
            let endpoint_url = endpoint(endpoint_url);
            let answer = commands::fire_drill_schedule(&endpoint_url, &region, &plan)
                .with_context(|| format!("firing the drill schedule of plan {plan} on the local cloud at {endpoint_url} (is `drplan local up` running?)"))?;
            print_json(&answer)?;
            if answer["answer"].get("errorType").is_some() {
                return Ok(ExitCode::FAILURE);
            }
        }
        LocalCommand::Fault {
            fault,
            endpoint_url,
        } => {
            let endpoint_url = endpoint(endpoint_url);
            let answer = match to_fault(fault) {
                FaultAction::Clear => commands::clear_faults(&endpoint_url),
                FaultAction::Show => commands::simulator_state(&endpoint_url),
                FaultAction::Inject(fault) => commands::inject_fault(&endpoint_url, &fault),
            }
            .with_context(|| format!("the DRS simulator's control API at {endpoint_url} (is `drplan local up` running?)"))?;
            print_json(&answer)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints pretty JSON; a closed stdout (`| head`) is an error, not a panic.
fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut stdout, value)?;
    writeln!(stdout)?;
    Ok(())
}

enum FaultAction {
    Inject(Fault),
    Clear,
    Show,
}

fn to_fault(command: FaultCommand) -> FaultAction {
    let fault = match command {
        FaultCommand::Clear => return FaultAction::Clear,
        FaultCommand::Show => return FaultAction::Show,
        FaultCommand::Throttle {
            operation,
            count,
            retry_after_seconds,
        } => Fault::Throttle {
            operation,
            count,
            retry_after_seconds,
        },
        FaultCommand::FailLaunch { servers, raw_error } => Fault::FailLaunch { servers, raw_error },
        FaultCommand::FailFailbackLaunch { targets, raw_error } => {
            Fault::FailFailbackLaunch { targets, raw_error }
        }
        FaultCommand::SlowConversion {
            servers,
            factor,
            extra_seconds,
        } => Fault::SlowConversion {
            servers,
            factor,
            extra_seconds,
        },
        FaultCommand::Stall { servers } => Fault::StallReplication { servers },
        FaultCommand::Unstall { servers } => Fault::UnstallReplication { servers },
        FaultCommand::Unhealthy { targets, healthy } => Fault::UnhealthyInstances {
            targets,
            unhealthy: !healthy,
        },
    };
    FaultAction::Inject(fault)
}
