//! The end of every run, succeeded or failed: the run's report in
//! `reports/PLAN/EXECUTION.{json,md}` from its records, launch templates a drill left on
//! its drill subnet put back, and the plan's lock released. Called by the report
//! function (the state machine's last step) and by the trigger function for runs that
//! ended without it (stopped, timed out).

use crate::step::LogContext;
use crate::store::RunStore;
use crate::wave::WaveLaunchRecord;
use crate::{FunctionError, drill, lock, metrics};
use drplan_core::Mode;
use drplan_core::dns::DnsCutover;
use drplan_core::execution::{RunContext, WaveRef, report_key_base, run_key};
use drplan_core::health::WaveHealthRecord;
use drplan_core::readiness::READINESS_RECORD;
use drplan_core::report::{
    Report, RunError, WaveLaunchFacts, measure_rto, plan_name_of, wave_report,
};
use drplan_core::safety::{CLEARED_RECORD, ClearedBeforeLaunch, DrillIsolation, ISOLATION_RECORD};
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
            let restored = drill::restore_run_templates(ec2, store, &run.state_prefix()).await?;
            if restored > 0 {
                tracing::warn!(restored, "launch templates restored at the end of the run");
            }
            match run.mode {
                Mode::Drill => store
                    .get_json::<DrillIsolation>(&run.key(ISOLATION_RECORD))
                    .await?
                    .map(|i| i.describe()),
                Mode::Recovery => None,
            }
        }
        None => None,
    };
    let cleared = match &input.run {
        Some(run) => store.get_json(&run.key(CLEARED_RECORD)).await?,
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
            let launch: Option<WaveLaunchRecord> =
                store.get_json(&run.wave_key(wave, "launch.json")).await?;
            let health: Option<WaveHealthRecord> =
                store.get_json(&run.wave_key(wave, "health.json")).await?;
            let facts = launch.as_ref().map(|l| WaveLaunchFacts {
                progress: &l.progress,
                log: &l.log,
                finished_at: l.finished_at,
            });
            waves.push(wave_report(&wave.name, facts, health.as_ref()));
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
            .get_json::<serde_json::Value>(&run.key("plan.json"))
            .await?
            .and_then(|doc| drplan_core::plan_from_value(&doc).ok()),
        None => None,
    };
    let dns: Option<DnsCutover> = match &input.run {
        Some(run) => store.get_json(&run.key("dns.json")).await?,
        None => None,
    };
    let rto = measure_rto(
        plan.as_ref().map(|p| p.rto_minutes),
        started_at,
        &waves,
        dns.as_ref(),
        status == "SUCCEEDED",
    );
    let readiness = store
        .get_json(&run_key(
            &plan_name,
            &input.execution_name,
            READINESS_RECORD,
        ))
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
    let base = report_key_base(&plan_name, &input.execution_name);
    let json_key = format!("{base}.json");
    let markdown_key = format!("{base}.md");
    store.put_json(&json_key, &report).await?;
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
