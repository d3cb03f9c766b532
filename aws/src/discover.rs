//! A run's first step (the discover function): reads and validates the plan, resolves
//! its servers over every page of DescribeSourceServers, checks they can be launched,
//! and stores the resolved plan for the later steps. Makes no DRS call that changes
//! anything: a plan with problems ends the execution here, with every problem listed.
//! The decisions are `drplan_core`'s (`discovery`, `readiness`, `safety`, `budget`).

use drplan_core::budget::RunBudget;
use drplan_core::contract::step::DiscoverInput;
use drplan_core::contract::{Discovery, RunContext, RunRecords};
use drplan_core::discovery::{
    budget_problems, judge_isolation, keep_seconds, refusals, release_jobs_of, wave_layers,
};
use drplan_core::readiness::{Readiness, check_readiness, sample, with_pointer};
use drplan_core::safety::{
    DrillIsolation, NOT_ISOLATED, RunLock, judge_live_instances, plan_busy_issue, routes_beyond_vpc,
};
use drplan_core::{ExecutionInput, Issue, Mode, Plan};
use jiff::{SignedDuration, Timestamp};

use crate::bootstrap::Clients;
use crate::lock::{self, LockOutcome};
use crate::step::LogContext;
use crate::{FunctionError, drill, drs, plans, route53};

impl LogContext for DiscoverInput {
    fn log_context(&self) -> (String, String, String) {
        let plan = match self.input.get("plan") {
            Some(serde_json::Value::String(name)) => name.clone(),
            Some(inline) => inline
                .get("name")
                .and_then(|n| n.as_str())
                .unwrap_or("?")
                .to_owned(),
            None => "?".to_owned(),
        };
        (self.execution_name.clone(), plan, String::new())
    }
}

/// The discover step: the run's plan, resolved and checked, and what the later steps need.
pub async fn discover_run(
    clients: &Clients,
    event: DiscoverInput,
) -> Result<Discovery, FunctionError> {
    let input = ExecutionInput::from_value(&event.input).map_err(FunctionError::InvalidPlan)?;
    let plan = plans::load_plan(&clients.store, &input.plan).await?;
    let refused = refusals(&plan, &event.execution_id, &event.execution_name);
    if !refused.is_empty() {
        return Err(FunctionError::InvalidPlan(refused));
    }
    let fleet = drs::describe_all_source_servers(&clients.drs).await?;
    let resolved = drplan_core::resolve(&plan, &fleet).map_err(FunctionError::InvalidPlan)?;
    let started_at: Timestamp = event.started_at.parse().map_err(|e| {
        FunctionError::InvalidInput(format!(
            "started_at {:?} is not an RFC 3339 time: {e}",
            event.started_at
        ))
    })?;
    let keep = keep_seconds(&plan, input.mode, &input.timing);
    // The worst case of this plan with this timing must fit in one execution's history
    // and in the state machine's time limit; its wall time is the run's deadline.
    let budget = RunBudget::of(&plan, &resolved, &input.timing, keep);
    let over_budget = budget_problems(&budget);
    if !over_budget.is_empty() {
        return Err(FunctionError::InvalidPlan(over_budget));
    }
    tracing::info!(
        worst_case_events = budget.events,
        worst_case_seconds = budget.seconds,
        "run budget"
    );
    // One run per plan, whatever started it: taken before the checks below, so that two
    // runs started at once cannot both pass them. The report releases it.
    let ours = RunLock {
        execution_id: event.execution_id.clone(),
        execution_name: event.execution_name.clone(),
        mode: input.mode,
        locked_at: Timestamp::now(),
    };
    let stop_drill =
        match lock::take_run_lock(&clients.store, &clients.sfn, &plan.name, &ours).await? {
            LockOutcome::Held => None,
            LockOutcome::TakenFromDrill(drill) => {
                tracing::warn!(
                    drill = drill.execution_name,
                    "a drill of the plan is running: this recovery stops it after approval"
                );
                Some(drill)
            }
            LockOutcome::Refused(holder) => {
                return Err(FunctionError::PlanBusy(plan_busy_issue(
                    &plan.name, &holder, input.mode,
                )));
            }
        };
    let server_ids: Vec<String> = resolved
        .waves
        .iter()
        .flat_map(|w| w.servers.iter().map(|s| s.id.clone()))
        .collect();
    let since = Timestamp::now() - SignedDuration::from_hours(24);
    let jobs = drs::jobs_since(&clients.drs, since).await?;
    let mut busy = drs::busy_servers(&jobs);
    if let Some(drill) = &stop_drill {
        // The stopped drill's own jobs are waited out before the first wave.
        release_jobs_of(&mut busy, &jobs, &drill.execution_name);
    }
    let mut readiness = check_readiness(&resolved, &fleet, &busy, input.mode, plan.rpo_minutes);
    // DRS keeps one recovery instance per server: a launch replaces what runs now.
    let existing = drs::recovery_instances_of(&clients.drs, &server_ids).await?;
    let live = judge_live_instances(input.mode, input.replace_live_recovery, &existing);
    readiness.blocking.extend(live.blocking);
    if input.mode == Mode::Drill {
        let isolation = check_drill_isolation(&clients.ec2, &plan, &mut readiness).await?;
        clients
            .store
            .write(
                &RunRecords::of(&plan.name, &event.execution_name).isolation(),
                &isolation,
            )
            .await?;
    }
    // Every issue goes to the bucket; the state and the error carry a sample and counts
    // (in a region outage every server has one, far past Step Functions' payload limit).
    let readiness_key = RunRecords::of(&plan.name, &event.execution_name).readiness();
    clients.store.write(&readiness_key, &readiness).await?;
    if !readiness.blocking.is_empty() {
        return Err(FunctionError::NotReady(with_pointer(
            readiness.blocking,
            &format!("s3://{}/{readiness_key}", clients.store.bucket()),
        )));
    }
    // A recovery that would cut DNS over checks its zone and records now (the zone is
    // one this deployment may change, every record is inside it), not after every wave
    // launched. A drill never touches DNS, but warns of what would stop the cutover.
    if let Some(dns) = &plan.dns {
        let allowed = route53::allowed_zones();
        let zone = route53::zone_for_cutover(&clients.route53, dns, allowed.as_deref()).await;
        match (input.mode, zone) {
            (_, Ok(_)) => {}
            (
                Mode::Drill,
                Err(FunctionError::InvalidPlan(issues) | FunctionError::NotReady(issues)),
            ) => readiness.warnings.extend(issues),
            (_, Err(e)) => return Err(e),
        }
    }
    let run = RunContext {
        execution_id: event.execution_id,
        execution_name: event.execution_name,
        plan: plan.name.clone(),
        mode: input.mode,
        started_at,
        snapshot: input.snapshot,
        timing: input.timing,
        quotas: input.quotas,
        deadline: Some(started_at + SignedDuration::from_secs(budget.seconds as i64)),
    };
    let document = serde_json::to_value(&plan)
        .map_err(|e| FunctionError::InvalidInput(format!("cannot serialise the plan: {e}")))?;
    clients
        .store
        .write(&run.records().plan_document(), &document)
        .await?;
    clients
        .store
        .write(&run.records().resolved_plan(), &resolved)
        .await?;
    let layers = wave_layers(&plan, &resolved);
    tracing::info!(
        servers = resolved.server_count(),
        waves = resolved.waves.len(),
        warnings = readiness.warnings.len(),
        "plan resolved"
    );
    let discovery = Discovery {
        requires_approval: plan.requires_approval(input.mode),
        approval_timeout_seconds: plan
            .approval
            .as_ref()
            .map_or(0, |a| a.timeout_minutes.saturating_mul(60)),
        server_count: resolved.server_count(),
        run,
        layers,
        keep_seconds: keep,
        warnings: sample(&readiness.warnings),
        warning_count: readiness.warnings.len(),
        clear_first: stop_drill.is_some() || !live.terminate_first.is_empty(),
        stop_drill,
    };
    // For the handler of runs stopped or timed out before their report.
    clients
        .store
        .write(&discovery.run.records().discovery(), &discovery)
        .await?;
    Ok(discovery)
}

/// A drill's isolation: its subnet exists and routes nowhere beyond its VPC (unless the
/// plan allows it); without a drill subnet, the run says plainly that it is not isolated.
async fn check_drill_isolation(
    ec2: &aws_sdk_ec2::Client,
    plan: &Plan,
    readiness: &mut Readiness,
) -> Result<DrillIsolation, FunctionError> {
    let settings = plan.drill.clone().unwrap_or_default();
    let Some(subnet_id) = settings.subnet_id.clone() else {
        readiness
            .warnings
            .push(Issue::new("drill.subnet_id", NOT_ISOLATED));
        return Ok(DrillIsolation::default());
    };
    let routes = match drill::drill_subnet_routes(ec2, &subnet_id).await {
        Ok((_, routes)) => routes_beyond_vpc(&routes),
        Err(FunctionError::NotReady(issues)) => {
            readiness.blocking.extend(issues);
            Vec::new()
        }
        Err(e) => return Err(e),
    };
    let (isolation, blocking) = judge_isolation(settings, subnet_id, routes);
    readiness.blocking.extend(blocking);
    Ok(isolation)
}
