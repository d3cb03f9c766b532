//! The run report: what an auditor reads as evidence of a DR test. Built from the
//! run's records (per-wave launch outcomes and job logs), rendered as JSON and
//! Markdown (with a Mermaid timeline), and as an HTML page with an SVG timeline.

mod dns_section;
pub mod html;
pub mod svg;
pub mod timeline;

use std::fmt::Write;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::dns::DnsCutover;
use crate::health::WaveHealthRecord;
use crate::launch::{JobLogEntry, ServerOutcome, ServerState, WaveProgress};
use crate::plan::Mode;

/// The whole report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub execution_id: String,
    pub execution_name: String,
    pub plan: String,
    pub mode: Option<Mode>,
    /// SUCCEEDED or FAILED.
    pub status: String,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    pub error: Option<RunError>,
    pub rto: Option<RtoResult>,
    pub waves: Vec<WaveReport>,
    /// Drill instances terminated by cleanup.
    pub drill_instances_terminated: Option<usize>,
    /// The DNS cutover of a recovery: every record with its old and new values.
    #[serde(default)]
    pub dns: Option<crate::dns::DnsCutover>,
    /// A drill's isolation: the drill subnet and security groups, or that it was not
    /// isolated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isolation: Option<String>,
    /// What was cleared before the first wave: a drill this recovery stopped, drill
    /// instances terminated first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cleared: Option<crate::safety::ClearedBeforeLaunch>,
    /// Every readiness problem discover found (what refused the run, and the warnings of
    /// a run that went ahead), however many: the state carried only a sample.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness: Option<crate::readiness::Readiness>,
    /// A resumed run: what it continued and took over. Its RTO counts from the first
    /// run's start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resumed: Option<crate::resume::ResumeSummary>,
    /// Waves that did not run: skipped by a person (with the reason and who), or
    /// needing a skipped one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<crate::contract::SkippedWave>,
    /// Waves of the plan outside the run's `only_waves`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub left_out: Vec<String>,
    /// A failback: per server, whether it came home and what is left to do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failback: Option<crate::failback::run::FailbackSummary>,
}

/// A data point for CloudWatch: name, dimensions, value, unit.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricPoint {
    pub name: &'static str,
    pub dimensions: Vec<(&'static str, String)>,
    pub value: f64,
    pub unit: &'static str,
}

impl Report {
    /// What the dashboard shows of a run: each wave's time from the start until it was
    /// healthy, the measured RTO, and the outcome by mode (a successful drill counts in
    /// `SuccessfulDrills`, so the dashboard shows how recent the last proof is).
    pub fn metric_points(&self) -> Vec<MetricPoint> {
        let mode = self.mode.map_or("unknown", Mode::as_str).to_owned();
        let plan = self.plan.clone();
        let mut points = Vec::new();
        for wave in &self.waves {
            if let Some(healthy_at) = wave.healthy_at {
                points.push(MetricPoint {
                    name: "WaveHealthySeconds",
                    dimensions: vec![("Plan", plan.clone()), ("Wave", wave.name.clone())],
                    value: (healthy_at - self.started_at).as_secs_f64(),
                    unit: "Seconds",
                });
            }
        }
        if let Some(rto) = &self.rto {
            points.push(MetricPoint {
                name: "RtoSeconds",
                dimensions: vec![("Plan", plan.clone()), ("Mode", mode.clone())],
                value: rto.measured_seconds as f64,
                unit: "Seconds",
            });
        }
        let outcome = if self.status == "SUCCEEDED" {
            "RunsSucceeded"
        } else {
            "RunsFailed"
        };
        points.push(MetricPoint {
            name: outcome,
            dimensions: vec![("Plan", plan.clone()), ("Mode", mode.clone())],
            value: 1.0,
            unit: "Count",
        });
        if self.status == "SUCCEEDED" && self.mode == Some(Mode::Drill) {
            points.push(MetricPoint {
                name: "SuccessfulDrills",
                dimensions: vec![("Plan", plan)],
                value: 1.0,
                unit: "Count",
            });
        }
        points
    }
}

/// Why a run failed, as Step Functions reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunError {
    pub error: String,
    pub cause: String,
}

/// The measured recovery time against the objective.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RtoResult {
    pub target_minutes: u32,
    pub measured_seconds: i64,
    /// From the execution's start to this moment.
    pub measured_to: String,
    pub met: bool,
    /// Where the measure starts when not at this execution's start: the first run of a
    /// resumed recovery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured_from: Option<String>,
}

impl RtoResult {
    pub fn measure(
        target_minutes: u32,
        started_at: Timestamp,
        ended_at: Timestamp,
        measured_to: &str,
    ) -> Self {
        let measured_seconds = ended_at.duration_since(started_at).as_secs();
        Self {
            target_minutes,
            measured_seconds,
            measured_to: measured_to.to_owned(),
            met: measured_seconds <= i64::from(target_minutes) * 60,
            measured_from: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WaveReport {
    pub name: String,
    /// SUCCEEDED, FAILED, or NOT_STARTED when an earlier wave failed.
    pub state: String,
    pub finished_at: Option<Timestamp>,
    /// When every critical server passed the health gate.
    #[serde(default)]
    pub healthy_at: Option<Timestamp>,
    pub launched: usize,
    pub failed: usize,
    /// The gate as it ran: its checks, where probes went, polls and timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_gate: Option<String>,
    /// The target groups the wave's healthy instances joined, each instance with its
    /// target health at the gate's last poll, and whether they were deregistered since.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targets: Option<crate::targets::WaveTargetsRecord>,
    pub servers: Vec<ServerReport>,
    /// When its launch and health gate began and ended, and its hooks: the timeline.
    #[serde(default, skip_serializing_if = "timeline::WaveTiming::is_empty")]
    pub timing: timeline::WaveTiming,
}

/// How a wave's health gate ran, for the report: "ec2-status, https:443/ at each
/// instance's public IP; 3 polls; timeout 10 min".
pub fn describe_health_gate(
    checks: &[String],
    probe_addressing: &str,
    polls: u32,
    timeout_minutes: u32,
) -> String {
    let target = match probe_addressing {
        "public-ip" => "at each instance's public IP",
        "loopback" => "at each instance's private IP (local run: its loopback stand-in)",
        "loopback-public-ip" => "at each instance's public IP (local run: its loopback stand-in)",
        // A failback probes the machines it brought home.
        "source-address" => "at each source machine's address (as DRS reports it)",
        "loopback-source-address" => {
            "at each source machine's address (as DRS reports it; local run: its loopback stand-in)"
        }
        _ => "at each instance's private IP",
    };
    let probes = checks.iter().any(|c| c != "ec2-status");
    format!(
        "{}{}; {polls} poll{}; timeout {timeout_minutes} min",
        checks.join(", "),
        if probes {
            format!(" {target}")
        } else {
            String::new()
        },
        if polls == 1 { "" } else { "s" },
    )
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerReport {
    pub source_server_id: String,
    pub hostname: Option<String>,
    pub optional: bool,
    pub state: ServerState,
    pub ec2_instance_id: Option<String>,
    /// The subnet the instance ran in, as EC2 reported it to the health gate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet_id: Option<String>,
    pub error: Option<String>,
    /// The health gate's verdict and each check's result, e.g. "HEALTHY: ec2-status ok;
    /// tcp:5432 connected in 2 ms".
    #[serde(default)]
    pub health: Option<String>,
    /// Launch phases from the DRS job log: (event, time).
    pub phases: Vec<(String, String)>,
    /// The earlier run whose launch a resumed run kept (not launched again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carried_from: Option<String>,
}

impl ServerReport {
    pub fn from_outcome(outcome: &ServerOutcome, log: &[JobLogEntry]) -> Self {
        Self {
            source_server_id: outcome.source_server_id.clone(),
            hostname: outcome.hostname.clone(),
            optional: outcome.optional,
            state: outcome.state,
            ec2_instance_id: outcome.ec2_instance_id.clone(),
            subnet_id: None,
            error: outcome.error.clone(),
            health: None,
            phases: log
                .iter()
                .filter(|e| {
                    e.source_server_id.as_deref() == Some(outcome.source_server_id.as_str())
                })
                .map(|e| (e.event.clone(), e.time.clone()))
                .collect(),
            carried_from: outcome.carried_from.clone(),
        }
    }
}

/// The plan an execution input names: by name, or an inline plan's name; `unknown`
/// when it names none.
pub fn plan_name_of(input: &serde_json::Value) -> String {
    match input.get("plan") {
        Some(serde_json::Value::String(name)) => name.clone(),
        Some(inline) => inline
            .get("name")
            .and_then(|n| n.as_str())
            .unwrap_or("unknown")
            .to_owned(),
        None => "unknown".to_owned(),
    }
}

/// The mode an execution input names (`"mode": "drill"`), when it names one drplan
/// knows: a run refused before discovery still has a mode in its report.
pub fn mode_of(input: &serde_json::Value) -> Option<Mode> {
    Mode::ALL
        .into_iter()
        .find(|(name, _)| input.get("mode").and_then(|m| m.as_str()) == Some(*name))
        .map(|(_, mode)| mode)
}

impl crate::contract::step::ReportInput {
    /// The run's plan: from its context, else from its execution input (a run refused
    /// before discovery has no context).
    pub fn plan_name(&self) -> String {
        match (&self.run, &self.input) {
            (Some(run), _) => run.plan.clone(),
            (None, Some(input)) => plan_name_of(input),
            (None, None) => "unknown".to_owned(),
        }
    }

    /// The run's mode, likewise: the report of a run refused in discover still names it.
    pub fn mode(&self) -> Option<Mode> {
        match (&self.run, &self.input) {
            (Some(run), _) => Some(run.mode),
            (None, Some(input)) => mode_of(input),
            (None, None) => None,
        }
    }
}

/// The recovery time of a run that succeeded, against the plan's objective: a recovery
/// is over when traffic can reach it (DNS in sync); a drill, when its last wave is
/// healthy. `None` for a failed run, or when the plan could not be read.
pub fn measure_rto(
    rto_minutes: Option<u32>,
    started_at: Timestamp,
    waves: &[WaveReport],
    dns: Option<&DnsCutover>,
    succeeded: bool,
) -> Option<RtoResult> {
    let last_healthy_at = waves.iter().filter_map(|w| w.healthy_at).max();
    let recovered = match dns.and_then(|d| d.insync_at) {
        Some(insync) => Some((insync, "DNS in sync")),
        None => last_healthy_at.map(|at| (at, "the last wave healthy")),
    };
    match (rto_minutes, recovered, succeeded) {
        (Some(target), Some((at, what)), true) => {
            Some(RtoResult::measure(target, started_at, at, what))
        }
        _ => None,
    }
}

/// What the report reads of a wave's launch record.
#[derive(Debug, Clone, Copy)]
pub struct WaveLaunchFacts<'a> {
    pub progress: &'a WaveProgress,
    pub log: &'a [JobLogEntry],
    pub finished_at: Timestamp,
}

/// A wave's part of the report: its launch outcome per server, and its health gate.
/// Without a launch record the wave did not finish launching.
pub fn wave_report(
    wave: &str,
    launch: Option<WaveLaunchFacts<'_>>,
    health: Option<&WaveHealthRecord>,
) -> WaveReport {
    let Some(launch) = launch else {
        return WaveReport {
            name: wave.to_owned(),
            state: "NOT_FINISHED".into(),
            finished_at: None,
            healthy_at: None,
            launched: 0,
            failed: 0,
            health_gate: None,
            targets: None,
            servers: Vec::new(),
            timing: timeline::WaveTiming::default(),
        };
    };
    let launch_failed = launch.progress.failed().any(|s| !s.optional)
        || launch.progress.launched().next().is_none();
    let state = match (health, launch_failed) {
        (_, true) => "FAILED",
        (Some(h), false) if h.state == "SUCCEEDED" => "SUCCEEDED",
        (Some(h), false) if h.state == "FAILED" => "UNHEALTHY",
        _ => "NOT_FINISHED",
    };
    let servers = launch
        .progress
        .servers
        .iter()
        .map(|outcome| {
            let mut server = ServerReport::from_outcome(outcome, launch.log);
            let found = health.and_then(|h| h.server(&outcome.source_server_id));
            server.subnet_id = found.and_then(|f| f.subnet_id.clone());
            server.health = found.map(|found| {
                let checks: Vec<String> = found.checks.iter().map(ToString::to_string).collect();
                format!("{:?}: {}", found.state, checks.join("; "))
            });
            server
        })
        .collect();
    WaveReport {
        name: wave.to_owned(),
        state: state.into(),
        finished_at: Some(launch.finished_at),
        healthy_at: health.and_then(|h| h.healthy_at),
        launched: launch.progress.launched().count(),
        failed: launch.progress.failed().count(),
        health_gate: health.map(|h| {
            describe_health_gate(&h.checks, &h.probe_addressing, h.attempt, h.timeout_minutes)
        }),
        targets: None,
        servers,
        timing: timeline::WaveTiming::of(launch.log, health),
    }
}

fn minutes_and_seconds(seconds: i64) -> String {
    format!("{}m {:02}s", seconds / 60, seconds % 60)
}

impl Report {
    /// The Markdown form, for people.
    pub fn to_markdown(&self) -> String {
        let mut md = String::new();
        let mode = self
            .mode
            .map_or("unknown mode".to_owned(), |m| m.to_string());
        let _ = writeln!(md, "# DR {mode} report: plan `{}`\n", self.plan);
        let _ = writeln!(md, "| | |\n|---|---|");
        let _ = writeln!(md, "| Outcome | **{}** |", self.status);
        let _ = writeln!(md, "| Execution | `{}` |", self.execution_id);
        let _ = writeln!(md, "| Started | {} |", self.started_at);
        let _ = writeln!(md, "| Finished | {} |", self.finished_at);
        if let Some(rto) = &self.rto {
            let verdict = if rto.met { "PASS" } else { "MISS" };
            let from = rto
                .measured_from
                .as_ref()
                .map_or("start".to_owned(), |run| format!("start of `{run}`"));
            let _ = writeln!(
                md,
                "| RTO | **{verdict}**: {} measured ({from} to {}) against a target of {} min |",
                minutes_and_seconds(rto.measured_seconds),
                rto.measured_to,
                rto.target_minutes
            );
        }
        if let Some(resumed) = &self.resumed {
            let _ = writeln!(
                md,
                "| Resumes | `{}` (first started {}; {} between the runs) |",
                resumed.resumes,
                resumed.first_started_at,
                resumed
                    .gap_seconds
                    .map_or("-".to_owned(), minutes_and_seconds)
            );
        }
        if let Some(isolation) = &self.isolation {
            let _ = writeln!(md, "| Isolation | {isolation} |");
        }
        if let Some(cleared) = &self.cleared {
            if let Some(drill) = &cleared.stopped_drill {
                let _ = writeln!(
                    md,
                    "| Drill stopped | `{drill}`: a recovery is never blocked by a drill |"
                );
            }
            if cleared.terminated_drill_instances > 0 {
                let _ = writeln!(
                    md,
                    "| Cleared first | {} drill instances terminated before the first wave |",
                    cleared.terminated_drill_instances
                );
            }
        }
        if let Some(n) = self.drill_instances_terminated {
            let _ = writeln!(md, "| Drill cleanup | {n} instances terminated |");
        }
        if let Some(dns) = &self.dns {
            dns_section::write(&mut md, dns, &self.execution_name);
        }
        if let Some(failback) = &self.failback {
            md.push_str(&failback.to_markdown());
        }
        if let Some(error) = &self.error {
            let _ = writeln!(
                md,
                "\n## Why the run failed\n\n`{}`\n\n```text\n{}\n```",
                error.error, error.cause
            );
        }
        if let Some(readiness) = &self.readiness {
            for (title, issues) in [
                ("Why the servers were not ready", &readiness.blocking),
                ("Readiness warnings", &readiness.warnings),
            ] {
                if issues.is_empty() {
                    continue;
                }
                let _ = writeln!(md, "\n## {title} ({})\n", issues.len());
                for issue in issues {
                    let _ = writeln!(md, "- `{}`: {}", issue.path, issue.message);
                }
            }
        }
        if let Some(resumed) = &self.resumed {
            let _ = writeln!(
                md,
                "\n## Resumed run\n\nContinues `{}` (runs of this recovery: {}). Adopted, not launched again: {} ({} servers kept on their instances, each checked again by its health gate). Launched by this run: {}.",
                resumed.resumes,
                resumed
                    .chain
                    .iter()
                    .map(|r| format!("`{r}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                if resumed.adopted_waves.is_empty() {
                    "no wave".to_owned()
                } else {
                    resumed.adopted_waves.join(", ")
                },
                resumed.carried_servers,
                if resumed.launched_by_this_run.is_empty() {
                    "nothing".to_owned()
                } else {
                    resumed.launched_by_this_run.join(", ")
                }
            );
        }
        if !self.skipped.is_empty() {
            let _ = writeln!(md, "\n## Skipped waves\n");
            for skipped in &self.skipped {
                let by = skipped
                    .by
                    .as_ref()
                    .map_or(String::new(), |by| format!(" (decided by {by})"));
                let _ = writeln!(md, "- **{}**: {}{by}", skipped.wave, skipped.reason);
            }
        }
        if !self.left_out.is_empty() {
            let _ = writeln!(
                md,
                "\nNot part of this run (only some waves were asked for): {}.",
                self.left_out.join(", ")
            );
        }
        md.push_str(&timeline::mermaid_section(self));
        let _ = writeln!(md, "\n## Waves\n");
        if self.waves.is_empty() {
            let _ = writeln!(md, "No wave was launched.");
        }
        for wave in &self.waves {
            let _ = writeln!(
                md,
                "### {} — {} ({} launched, {} failed)\n",
                wave.name, wave.state, wave.launched, wave.failed
            );
            if let Some(gate) = &wave.health_gate {
                let _ = writeln!(md, "Health gate: {gate}.\n");
            }
            if let Some(targets) = &wave.targets {
                let _ = writeln!(
                    md,
                    "Target groups (target health at the gate's last poll):\n"
                );
                for line in targets.summary_lines() {
                    let _ = writeln!(md, "- {line}");
                }
                if let (Some(at), Some(by)) = (&targets.deregistered_at, &targets.deregistered_by) {
                    let _ = writeln!(md, "- deregistered at {at} by {by}");
                }
                let _ = writeln!(md);
            }
            if wave.servers.is_empty() {
                continue;
            }
            let _ = writeln!(
                md,
                "| Server | Source server | State | Instance | Subnet | Launch phases | Health | Error |\n|---|---|---|---|---|---|---|---|"
            );
            for s in &wave.servers {
                let mut phases: Vec<String> = s
                    .phases
                    .iter()
                    .map(|(event, time)| format!("{event} {time}"))
                    .collect();
                if let Some(run) = &s.carried_from {
                    phases.insert(0, format!("kept: launched by `{run}`"));
                }
                let _ = writeln!(
                    md,
                    "| {}{} | `{}` | {:?} | {} | {} | {} | {} | {} |",
                    s.hostname.as_deref().unwrap_or("-"),
                    if s.optional { " (optional)" } else { "" },
                    s.source_server_id,
                    s.state,
                    s.ec2_instance_id.as_deref().unwrap_or("-"),
                    s.subnet_id.as_deref().unwrap_or("-"),
                    phases.join("<br>"),
                    s.health.as_deref().unwrap_or("-").replace('|', "\\|"),
                    s.error.as_deref().unwrap_or("").replace('|', "\\|"),
                );
            }
            let _ = writeln!(md);
        }
        md
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_refused_before_discovery_takes_its_plan_and_mode_from_its_input() {
        let refused = |input: serde_json::Value| crate::contract::step::ReportInput {
            execution_id: "arn:aws:states:us-east-1:1:execution:drplan-recovery:x".into(),
            execution_name: "x".into(),
            started_at: "2026-11-28T03:00:00Z".into(),
            run: None,
            layers: Vec::new(),
            input: Some(input),
            error: None,
            cleanup: None,
        };
        let named = refused(serde_json::json!({"plan": "shop", "mode": "recovery"}));
        assert_eq!(
            (named.plan_name(), named.mode()),
            ("shop".to_owned(), Some(Mode::Recovery))
        );
        let inline = refused(serde_json::json!({"plan": {"name": "erp"}, "mode": "drill"}));
        assert_eq!(
            (inline.plan_name(), inline.mode()),
            ("erp".to_owned(), Some(Mode::Drill))
        );
        let odd = refused(serde_json::json!({"plan": 7, "mode": "sideways"}));
        assert_eq!((odd.plan_name(), odd.mode()), ("unknown".to_owned(), None));
    }

    #[test]
    fn a_recovery_is_measured_to_dns_in_sync_a_drill_to_its_last_healthy_wave() {
        let at = |text: &str| -> Timestamp { text.parse().unwrap() };
        let started = at("2026-11-28T01:00:00Z");
        let waves: Vec<WaveReport> = ["2026-11-28T01:20:00Z", "2026-11-28T01:25:00Z"]
            .into_iter()
            .map(|healthy| WaveReport {
                healthy_at: Some(at(healthy)),
                ..wave_report("web", None, None)
            })
            .collect();
        let drill = measure_rto(Some(30), started, &waves, None, true).unwrap();
        assert_eq!(
            (
                drill.measured_seconds,
                drill.measured_to.as_str(),
                drill.met
            ),
            (25 * 60, "the last wave healthy", true)
        );
        let dns = DnsCutover {
            zone_id: "Z1".into(),
            changes: Vec::new(),
            deletes: Vec::new(),
            change_id: Some("C1".into()),
            submitted_at: None,
            insync_at: Some(at("2026-11-28T01:31:00Z")),
            path: "control plane".into(),
            unchanged: Vec::new(),
            alarm: None,
        };
        let recovery = measure_rto(Some(30), started, &waves, Some(&dns), true).unwrap();
        assert_eq!(
            (
                recovery.measured_seconds,
                recovery.measured_to.as_str(),
                recovery.met
            ),
            (31 * 60, "DNS in sync", false)
        );
        // A failed run, or one whose plan could not be read, has no RTO.
        assert_eq!(measure_rto(Some(30), started, &waves, None, false), None);
        assert_eq!(measure_rto(None, started, &waves, None, true), None);
    }

    #[test]
    fn a_successful_drill_gives_wave_times_rto_and_a_drill_count() {
        let started: Timestamp = "2026-11-28T03:00:00Z".parse().unwrap();
        let report = Report {
            execution_id: "arn".into(),
            execution_name: "run".into(),
            plan: "shop".into(),
            mode: Some(Mode::Drill),
            status: "SUCCEEDED".into(),
            started_at: started,
            finished_at: "2026-11-28T03:20:00Z".parse().unwrap(),
            error: None,
            rto: Some(RtoResult::measure(
                30,
                started,
                "2026-11-28T03:12:00Z".parse().unwrap(),
                "the last wave healthy",
            )),
            waves: vec![WaveReport {
                name: "db".into(),
                state: "SUCCEEDED".into(),
                finished_at: None,
                healthy_at: Some("2026-11-28T03:05:00Z".parse().unwrap()),
                launched: 2,
                failed: 0,
                health_gate: None,
                targets: None,
                servers: Vec::new(),
                timing: Default::default(),
            }],
            drill_instances_terminated: None,
            dns: None,
            isolation: None,
            cleared: None,
            readiness: None,
            resumed: None,
            skipped: Vec::new(),
            left_out: Vec::new(),
            failback: None,
        };
        let points = report.metric_points();
        let value = |name: &str| points.iter().find(|p| p.name == name).map(|p| p.value);
        assert_eq!(value("WaveHealthySeconds"), Some(300.0));
        assert_eq!(value("RtoSeconds"), Some(720.0));
        assert_eq!(value("SuccessfulDrills"), Some(1.0));
        assert_eq!(value("RunsFailed"), None);
        let failed = Report {
            status: "FAILED".into(),
            rto: None,
            ..report
        };
        let points = failed.metric_points();
        assert!(points.iter().any(|p| p.name == "RunsFailed"));
        assert!(!points.iter().any(|p| p.name == "SuccessfulDrills"));
    }

    #[test]
    fn the_health_gate_line_says_where_probes_went() {
        let checks = ["ec2-status".to_owned(), "https:443/".to_owned()];
        assert_eq!(
            describe_health_gate(&checks, "public-ip", 3, 10),
            "ec2-status, https:443/ at each instance's public IP; 3 polls; timeout 10 min"
        );
        assert_eq!(
            describe_health_gate(&checks, "loopback", 1, 15),
            "ec2-status, https:443/ at each instance's private IP (local run: its loopback stand-in); 1 poll; timeout 15 min"
        );
        // No probe, no address.
        assert_eq!(
            describe_health_gate(&checks[..1], "private-ip", 2, 5),
            "ec2-status; 2 polls; timeout 5 min"
        );
    }
}
