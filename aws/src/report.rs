//! The end of every run, succeeded or failed: the run's report in
//! `reports/PLAN/EXECUTION.{json,md,html}` from its records, launch templates a drill left on
//! its drill subnet put back, and the plan's lock released. Called by the report
//! function (the state machine's last step) and by the trigger function for runs that
//! ended without it (stopped, timed out).

use crate::step::LogContext;
use crate::store::RunStore;
use crate::{FunctionError, drill, lock, metrics};
use drplan_core::Mode;
use drplan_core::contract::Discovery;
use drplan_core::contract::RunRecords;
use drplan_core::contract::keys;
use drplan_core::contract::step::{ReportInput, ReportLocation};
use drplan_core::failback::run::{FailbackRecord, summarize};
use drplan_core::health::WaveHealthRecord;
use drplan_core::launch::{ServerOutcome, ServerState, WaveLaunchRecord};
use drplan_core::report::{Report, RunError, WaveLaunchFacts, measure_rto, wave_report};
use drplan_core::resume::ResumeSummary;
use drplan_core::safety::{ClearedBeforeLaunch, DrillIsolation};
use jiff::Timestamp;
use std::collections::{BTreeMap, BTreeSet};

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
) -> Result<ReportLocation, FunctionError> {
    let isolation = match &input.run {
        Some(run) => {
            let restored = drill::restore_run_templates(ec2, store, &run.records()).await?;
            if restored > 0 {
                tracing::warn!(restored, "launch templates restored at the end of the run");
            }
            match run.mode {
                Mode::Drill => store
                    .read::<DrillIsolation>(&run.records().isolation())
                    .await?
                    .map(|i| i.describe()),
                Mode::Recovery | Mode::Failback => None,
            }
        }
        None => None,
    };
    let cleared = match &input.run {
        Some(run) => store.read(&run.records().cleared()).await?,
        None => None,
    };
    let plan = input.plan_name();
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
) -> Result<ReportLocation, FunctionError> {
    let started_at: Timestamp = input.started_at.parse().map_err(|e| {
        FunctionError::InvalidInput(format!("started_at {:?}: {e}", input.started_at))
    })?;
    let finished_at = Timestamp::now();
    let plan_name = input.plan_name();
    let mut waves = Vec::new();
    let mut launches = Vec::new();
    if let Some(run) = &input.run {
        for wave in input.layers.iter().flatten() {
            let launch: Option<WaveLaunchRecord> =
                store.read(&run.records().wave(wave).launch()).await?;
            let health: Option<WaveHealthRecord> =
                store.read(&run.records().wave(wave).health()).await?;
            let facts = launch.as_ref().map(|l| WaveLaunchFacts {
                progress: &l.progress,
                log: &l.log,
                finished_at: l.finished_at,
            });
            let mut report = wave_report(&wave.name, facts, health.as_ref());
            // An adopted wave's hooks ran in the run it resumes, not in this one.
            if !wave.adopted {
                report.timing.hooks = wave.hooks.clone();
            }
            report.targets = store.read(&run.records().wave(wave).targets()).await?;
            waves.push(report);
            launches.extend(launch);
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
            .read::<serde_json::Value>(&run.records().plan_document())
            .await?
            .and_then(|doc| drplan_core::plan_from_value(&doc).ok()),
        None => None,
    };
    let dns = match &input.run {
        Some(run) => store.read(&run.records().dns_cutover()).await?,
        None => None,
    };
    // A resumed run's report covers the whole recovery: its RTO counts from the first
    // run's start.
    let resume = match &input.run {
        Some(run) if run.resumed.is_some() => store.read(&run.records().resume()).await?,
        _ => None,
    };
    let mut rto = measure_rto(
        plan.as_ref().map(|p| p.rto_minutes),
        resume.as_ref().map_or(started_at, |r| r.first_started_at),
        &waves,
        dns.as_ref(),
        status == "SUCCEEDED",
    );
    if let (Some(rto), Some(record)) = (rto.as_mut(), &resume) {
        rto.measured_from = record.chain.first().cloned();
    }
    let outcomes: Vec<&ServerOutcome> = launches
        .iter()
        .flat_map(|l| l.progress.servers.iter())
        .collect();
    let resumed = resume
        .as_ref()
        .map(|record| ResumeSummary::of(record, started_at, &outcomes));
    let discovery = match &input.run {
        Some(run) => store.read(&run.records().discovery()).await?,
        None => None,
    };
    let readiness = store
        .read(&RunRecords::of(&plan_name, &input.execution_name).readiness())
        .await?;
    let mode = input.mode();
    let failback = match &input.run {
        Some(run) if run.mode == Mode::Failback => {
            let terminated =
                status == "SUCCEEDED" && input.cleanup.as_ref().is_some_and(|c| c.terminated > 0);
            store
                .read(&run.records().failback())
                .await?
                .map(|record: FailbackRecord| {
                    // A failback to the origin Region launched the reversed servers: the
                    // summary is by the servers they stand for.
                    let launched: BTreeSet<String> = outcomes
                        .iter()
                        .filter(|s| s.state == ServerState::Launched)
                        .map(|s| record.original_of(&s.source_server_id).to_owned())
                        .collect();
                    let hostnames: BTreeMap<String, Option<String>> = outcomes
                        .iter()
                        .map(|s| {
                            (
                                record.original_of(&s.source_server_id).to_owned(),
                                s.hostname.clone(),
                            )
                        })
                        .collect();
                    summarize(&record, &hostnames, &launched, terminated)
                })
        }
        _ => None,
    };
    // A failback home ran no EC2 instance: the instance its jobs name is the recovery
    // instance it came from (the failback section lists it), not the server's machine.
    if input
        .run
        .as_ref()
        .is_some_and(|run| run.mode == Mode::Failback && !run.launches_in_aws())
    {
        for server in waves.iter_mut().flat_map(|wave| wave.servers.iter_mut()) {
            server.ec2_instance_id = None;
        }
    }
    let report = Report {
        execution_id: input.execution_id,
        execution_name: input.execution_name.clone(),
        plan: plan_name.clone(),
        mode,
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
        resumed,
        skipped: discovery
            .as_ref()
            .map(|d: &Discovery| d.skipped.clone())
            .unwrap_or_default(),
        left_out: discovery.map(|d| d.left_out).unwrap_or_default(),
        failback,
    };
    let json_record = keys::report_json(&plan_name, &input.execution_name);
    let json_key = json_record.key().to_owned();
    let markdown_key = keys::report_markdown(&plan_name, &input.execution_name);
    store.write(&json_record, &report).await?;
    store
        .put_text(&markdown_key, report.to_markdown(), "text/markdown")
        .await?;
    store
        .put_text(
            &keys::report_html(&plan_name, &input.execution_name),
            report.to_html(),
            "text/html; charset=utf-8",
        )
        .await?;
    tracing::info!(status, json_key, "report written");
    for point in report.metric_points() {
        metrics::emit(&point);
    }
    Ok(ReportLocation {
        status: Some(status.to_owned()),
        json_key: Some(json_key),
        markdown_key: Some(markdown_key),
        rto_met: report.rto.as_ref().map(|r| r.met),
    })
}
