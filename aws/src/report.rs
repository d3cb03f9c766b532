//! The end of every run, succeeded or failed: the run's report in
//! `reports/PLAN/EXECUTION.{json,md}` from its records, launch templates a drill left on
//! its drill subnet put back, and the plan's lock released. Called by the report
//! function (the state machine's last step) and by the trigger function for runs that
//! ended without it (stopped, timed out).

use crate::step::LogContext;
use crate::store::RunStore;
use crate::{FunctionError, drill, lock, metrics};
use drplan_core::Mode;
use drplan_core::contract::keys::{self, RunRecords};
use drplan_core::contract::{RunContext, WaveRef};
use drplan_core::health::WaveHealthRecord;
use drplan_core::launch::WaveLaunchRecord;
use drplan_core::report::{
    Report, RtoResult, RunError, ServerReport, WaveReport, describe_health_gate,
};
use drplan_core::safety::ClearedBeforeLaunch;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// What the report step receives (the state machine's Parameters).
#[derive(Debug, Deserialize)]
pub struct ReportInput {
    pub execution_id: String,
    pub execution_name: String,
    pub started_at: String,
    /// Absent when discovery failed.
    pub run: Option<RunContext>,
    #[serde(default)]
    pub layers: Vec<Vec<WaveRef>>,
    /// The execution input, when discovery failed (to name the plan).
    pub input: Option<serde_json::Value>,
    pub error: Option<StepError>,
    pub cleanup: Option<CleanupSummary>,
}

/// Step Functions' error object from a Catch.
#[derive(Debug, Deserialize)]
pub struct StepError {
    #[serde(rename = "Error")]
    pub error: Option<String>,
    #[serde(rename = "Cause")]
    pub cause: Option<String>,
}

/// How many drill instances cleanup terminated.
#[derive(Debug, Deserialize)]
pub struct CleanupSummary {
    #[serde(default)]
    pub terminated: usize,
}

/// Where the report went.
#[derive(Debug, Serialize)]
pub struct Written {
    pub status: String,
    pub json_key: String,
    pub markdown_key: String,
    pub rto_met: Option<bool>,
}

impl LogContext for ReportInput {
    fn log_context(&self) -> (String, String, String) {
        let plan = self
            .run
            .as_ref()
            .map(|r| r.plan.clone())
            .unwrap_or_default();
        (self.execution_name.clone(), plan, String::new())
    }
}

/// The run's last step on every path: puts back any launch template a drill left on
/// its drill subnet, writes the report, and releases the plan's lock (if this run
/// holds it: a refused run leaves the holder's lock alone).
pub async fn end_run(
    ec2: &aws_sdk_ec2::Client,
    store: &RunStore,
    input: ReportInput,
) -> Result<Written, FunctionError> {
    let isolation = match &input.run {
        Some(run) => {
            let restored = drill::restore_run_templates(ec2, store, &run.records()).await?;
            if restored > 0 {
                tracing::warn!(restored, "launch templates restored at the end of the run");
            }
            match run.mode {
                Mode::Drill => store
                    .read(&run.records().isolation())
                    .await?
                    .map(|i| i.describe()),
                Mode::Recovery => None,
            }
        }
        None => None,
    };
    let cleared = match &input.run {
        Some(run) => store.read(&run.records().cleared()).await?,
        None => None,
    };
    let plan = match (&input.run, &input.input) {
        (Some(run), _) => run.plan.clone(),
        (None, Some(execution_input)) => plan_name_of(execution_input),
        (None, None) => "unknown".to_owned(),
    };
    let execution_name = input.execution_name.clone();
    let written = write_report(store, input, isolation, cleared).await?;
    lock::release_run_lock(store, &plan, &execution_name).await?;
    Ok(written)
}

async fn write_report(
    store: &RunStore,
    input: ReportInput,
    isolation: Option<String>,
    cleared: Option<ClearedBeforeLaunch>,
) -> Result<Written, FunctionError> {
    let started_at: Timestamp = input.started_at.parse().map_err(|e| {
        FunctionError::InvalidInput(format!("started_at {:?}: {e}", input.started_at))
    })?;
    let finished_at = Timestamp::now();
    let plan_name = match (&input.run, &input.input) {
        (Some(run), _) => run.plan.clone(),
        (None, Some(execution_input)) => plan_name_of(execution_input),
        (None, None) => "unknown".to_owned(),
    };
    let mut waves = Vec::new();
    if let Some(run) = &input.run {
        for wave in input.layers.iter().flatten() {
            let records = run.records().wave(wave);
            let launch = store.read(&records.launch()).await?;
            let health = store.read(&records.health()).await?;
            waves.push(wave_report(wave, launch, health));
        }
    }
    let status = if input.error.is_some() {
        "FAILED"
    } else {
        "SUCCEEDED"
    };
    // The stored plan passed validation when the run started; read it the same way.
    let plan = match &input.run {
        Some(run) => store
            .read(&run.records().plan_document())
            .await?
            .and_then(|doc| drplan_core::plan_from_value(&doc).ok()),
        None => None,
    };
    let dns = match &input.run {
        Some(run) => store.read(&run.records().dns_cutover()).await?,
        None => None,
    };
    // A recovery is over when traffic can reach it (DNS in sync); a drill, when its
    // last wave is healthy.
    let last_healthy_at = waves.iter().filter_map(|w| w.healthy_at).max();
    let recovered = match dns.as_ref().and_then(|d| d.insync_at) {
        Some(insync) => Some((insync, "DNS in sync")),
        None => last_healthy_at.map(|at| (at, "the last wave healthy")),
    };
    let rto = match (&plan, recovered, status) {
        (Some(plan), Some((at, what)), "SUCCEEDED") => {
            Some(RtoResult::measure(plan.rto_minutes, started_at, at, what))
        }
        _ => None,
    };
    let readiness = store
        .read(&RunRecords::of(&plan_name, &input.execution_name).readiness())
        .await?;
    let report = Report {
        execution_id: input.execution_id,
        execution_name: input.execution_name.clone(),
        plan: plan_name.clone(),
        mode: input.run.as_ref().map(|r| r.mode),
        status: status.to_owned(),
        started_at,
        finished_at,
        error: input.error.map(|e| RunError {
            error: e.error.unwrap_or_else(|| "unknown".into()),
            cause: e.cause.unwrap_or_default(),
        }),
        rto,
        waves,
        drill_instances_terminated: input.cleanup.map(|c| c.terminated).filter(|_| {
            input
                .run
                .as_ref()
                .is_some_and(|r| r.mode == drplan_core::Mode::Drill)
        }),
        dns,
        isolation,
        cleared,
        readiness,
    };
    let json_record = keys::report_json(&plan_name, &input.execution_name);
    let json_key = json_record.key().to_owned();
    let markdown_key = keys::report_markdown(&plan_name, &input.execution_name);
    store.write(&json_record, &report).await?;
    store
        .put_text(&markdown_key, report.to_markdown(), "text/markdown")
        .await?;
    tracing::info!(status, json_key, "report written");
    for point in report.metric_points() {
        metrics::emit(&point);
    }
    Ok(Written {
        status: status.to_owned(),
        json_key,
        markdown_key,
        rto_met: report.rto.as_ref().map(|r| r.met),
    })
}

fn plan_name_of(input: &serde_json::Value) -> String {
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

/// A wave's part of the report: its launch outcome per server, and its health gate.
fn wave_report(
    wave: &WaveRef,
    launch: Option<WaveLaunchRecord>,
    health: Option<WaveHealthRecord>,
) -> WaveReport {
    let Some(launch) = launch else {
        return WaveReport {
            name: wave.name.clone(),
            state: "NOT_FINISHED".into(),
            finished_at: None,
            healthy_at: None,
            launched: 0,
            failed: 0,
            health_gate: None,
            servers: Vec::new(),
        };
    };
    let launch_failed = launch.progress.failed().any(|s| !s.optional)
        || launch.progress.launched().next().is_none();
    let state = match (&health, launch_failed) {
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
            let mut server = ServerReport::from_outcome(outcome, &launch.log);
            let found = health.as_ref().and_then(|h| {
                h.servers
                    .iter()
                    .find(|s| s.source_server_id == outcome.source_server_id)
            });
            server.subnet_id = found.and_then(|f| f.subnet_id.clone());
            server.health = found.map(|found| {
                let checks: Vec<String> = found.checks.iter().map(ToString::to_string).collect();
                format!("{:?}: {}", found.state, checks.join("; "))
            });
            server
        })
        .collect();
    WaveReport {
        name: wave.name.clone(),
        state: state.into(),
        finished_at: Some(launch.finished_at),
        healthy_at: health.as_ref().and_then(|h| h.healthy_at),
        launched: launch.progress.launched().count(),
        failed: launch.progress.failed().count(),
        health_gate: health.as_ref().map(|h| {
            describe_health_gate(&h.checks, &h.probe_addressing, h.attempt, h.timeout_minutes)
        }),
        servers,
    }
}
