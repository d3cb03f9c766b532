//! `drplan validate`: check plan files, optionally against a dump of the fleet.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use drplan_core::plan::DnsMode;
use drplan_core::{Format, Issue, Plan, ResolvedPlan, SourceServer};
use serde::Serialize;

/// Exit code for a usage problem (also clap's): a file or dump that cannot be read.
const USAGE_ERROR: u8 = 2;

#[derive(Args)]
pub struct ValidateArgs {
    /// Plan files (YAML or JSON).
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    format: OutputFormat,
    /// Also resolve each plan against a DescribeSourceServers response dump
    /// (`{"items": [...]}`, or a list of such pages) and show each wave's servers.
    /// A `dns.mode: data-plane` plan is also checked against the failover records
    /// `drplan dns prepare` made (Route 53, CloudWatch and the stack's bucket, as
    /// `drplan dns check` does): this needs AWS access.
    #[arg(long, value_name = "DUMP.json")]
    servers: Option<PathBuf>,
    /// The stack's bucket, where the prepared records are recorded [default: $DRPLAN_BUCKET, else the deployed stack's output PlansBucketName, else the local cloud's]
    #[arg(long)]
    bucket: Option<String>,
}

#[derive(Clone, Copy, ValueEnum)]
enum OutputFormat {
    Text,
    Json,
}

/// One file's outcome, as `--format json` prints it.
#[derive(Serialize)]
struct FileReport {
    file: String,
    valid: bool,
    errors: Vec<Issue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    plan: Option<PlanSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    waves: Option<Vec<WaveReport>>,
}

#[derive(Serialize)]
struct PlanSummary {
    name: String,
    rto_minutes: u32,
    waves: Option<usize>,
    dns_records: usize,
    /// Whether drills of the plan are isolated, in words.
    drills: String,
}

#[derive(Serialize)]
struct WaveReport {
    name: String,
    stage: usize,
    depends_on: Vec<String>,
    server_count: usize,
    servers: Vec<drplan_core::WaveServer>,
}

pub fn run(args: &ValidateArgs) -> ExitCode {
    let fleet = match &args.servers {
        Some(path) => match read_fleet(path) {
            Ok(fleet) => Some(fleet),
            Err(message) => {
                eprintln!("drplan: {message}");
                return ExitCode::from(USAGE_ERROR);
            }
        },
        None => None,
    };
    let mut reports = Vec::with_capacity(args.files.len());
    for path in &args.files {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) => {
                eprintln!("drplan: cannot read {}: {e}", path.display());
                return ExitCode::from(USAGE_ERROR);
            }
        };
        let (mut report, plan) = check_file(path, &text, fleet.as_deref());
        if fleet.is_some()
            && report.valid
            && let Some(plan) =
                plan.filter(|p| p.dns.as_ref().is_some_and(|d| d.mode == DnsMode::DataPlane))
        {
            let problems = prepared_record_problems(&plan, &path.display().to_string(), args);
            report.valid = problems.is_empty();
            report.errors.extend(problems);
        }
        reports.push(report);
    }
    let output = match args.format {
        OutputFormat::Json => match serde_json::to_string_pretty(&reports) {
            Ok(json) => json + "\n",
            Err(e) => {
                eprintln!("drplan: cannot print the report: {e}");
                return ExitCode::FAILURE;
            }
        },
        OutputFormat::Text => reports.iter().map(text_report).collect(),
    };
    if crate::print_stdout(&output) != ExitCode::SUCCESS {
        return ExitCode::FAILURE;
    }
    if reports.iter().all(|r| r.valid) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// A data-plane plan's prepared records against the plan (`drplan dns check`'s logic),
/// one issue per mismatch; one that says why when they cannot be read.
fn prepared_record_problems(plan: &Plan, file: &str, args: &ValidateArgs) -> Vec<Issue> {
    let checked = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| {
            runtime.block_on(crate::run::dns::prepared_record_mismatches(
                plan,
                file,
                args.bucket.as_deref(),
            ))
        });
    match checked {
        Ok(lines) => lines
            .into_iter()
            .map(|line| {
                Issue::new(
                    "dns",
                    format!("prepared for the data-plane cutover: {line} (run `drplan dns prepare {file}`)"),
                )
            })
            .collect(),
        Err(e) => vec![Issue::new(
            "dns",
            format!(
                "dns.mode is data-plane: its prepared failover records could not be checked: {e:#}"
            ),
        )],
    }
}

fn read_fleet(path: &PathBuf) -> Result<Vec<SourceServer>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read --servers {}: {e}", path.display()))?;
    drplan_core::parse_source_server_dump(&text)
        .map_err(|e| format!("--servers {}: {e}", path.display()))
}

fn check_file(
    path: &std::path::Path,
    text: &str,
    fleet: Option<&[SourceServer]>,
) -> (FileReport, Option<Plan>) {
    let file = path.display().to_string();
    let format = Format::guess(path.file_name().and_then(|n| n.to_str()), text);
    let plan = match drplan_core::parse_plan(text, format) {
        Ok(plan) => plan,
        Err(errors) => {
            let report = FileReport {
                file,
                valid: false,
                errors,
                plan: None,
                waves: None,
            };
            return (report, None);
        }
    };
    let summary = PlanSummary {
        name: plan.name.clone(),
        rto_minutes: plan.rto_minutes,
        waves: plan.waves.as_ref().map(Vec::len),
        dns_records: plan.dns.as_ref().map_or(0, |d| d.records.len()),
        drills: match plan.drill_subnet() {
            Some(subnet) => format!(
                "isolated in {subnet} (its route table is checked when a drill starts)"
            ),
            None => "NOT isolated: the plan names no drill.subnet_id, so drills launch with the recovery launch settings, into the recovery network".to_owned(),
        },
    };
    let (errors, waves) = match fleet.map(|f| drplan_core::resolve(&plan, f)) {
        None => (Vec::new(), None),
        Some(Ok(resolved)) => (Vec::new(), Some(wave_reports(&resolved))),
        Some(Err(errors)) => (errors, None),
    };
    let report = FileReport {
        file,
        valid: errors.is_empty(),
        errors,
        plan: Some(summary),
        waves,
    };
    (report, Some(plan))
}

fn wave_reports(resolved: &ResolvedPlan) -> Vec<WaveReport> {
    let mut reports = Vec::with_capacity(resolved.waves.len());
    for (stage, layer) in resolved.layers.iter().enumerate() {
        for &w in layer {
            let wave = &resolved.waves[w];
            reports.push(WaveReport {
                name: wave.name.clone(),
                stage: stage + 1,
                depends_on: wave
                    .depends_on
                    .iter()
                    .map(|&d| resolved.waves[d].name.clone())
                    .collect(),
                server_count: wave.servers.len(),
                servers: wave.servers.clone(),
            });
        }
    }
    reports
}

/// The text form: `FILE: PATH: MESSAGE` per problem, or a summary of a valid plan.
fn text_report(report: &FileReport) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    if !report.valid {
        for error in &report.errors {
            let _ = writeln!(out, "{}: {}: {}", report.file, error.path, error.message);
        }
        return out;
    }
    let Some(plan) = &report.plan else {
        return out;
    };
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    let mut parts = Vec::new();
    match &report.waves {
        Some(waves) => {
            let servers: usize = waves.iter().map(|w| w.server_count).sum();
            let stages = waves.iter().map(|w| w.stage).max().unwrap_or(0);
            parts.push(format!(
                "{} in {} over {}",
                plural(servers, "server"),
                plural(waves.len(), "wave"),
                plural(stages, "stage")
            ));
        }
        None => parts.push(match plan.waves {
            Some(n) => plural(n, "wave"),
            None => "waves from the dr:wave tag".to_owned(),
        }),
    }
    parts.push(format!("RTO {} min", plan.rto_minutes));
    if plan.dns_records > 0 {
        parts.push(plural(plan.dns_records, "DNS record"));
    }
    let _ = writeln!(
        out,
        "{}: valid: plan {:?}: {}",
        report.file,
        plan.name,
        parts.join(", ")
    );
    let _ = writeln!(out, "  drills: {}", plan.drills);
    for wave in report.waves.iter().flatten() {
        let optional = wave.servers.iter().filter(|s| s.optional).count();
        let names: Vec<String> = wave
            .servers
            .iter()
            .map(|s| {
                if s.optional {
                    format!("{} (optional)", s.display_name())
                } else {
                    s.display_name().to_owned()
                }
            })
            .collect();
        let after = if wave.depends_on.is_empty() {
            String::new()
        } else {
            let quoted: Vec<String> = wave.depends_on.iter().map(|d| format!("{d:?}")).collect();
            format!(" after {}", quoted.join(", "))
        };
        let optional_note = if optional > 0 {
            format!(" ({optional} optional)")
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "  stage {}, wave {:?}{after}, {}{optional_note}: {}",
            wave.stage,
            wave.name,
            plural(wave.server_count, "server"),
            names.join(", ")
        );
    }
    out
}
