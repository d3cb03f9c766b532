//! discover: reads and validates the plan, resolves its servers over every page of
//! DescribeSourceServers, checks they can be launched, and stores the resolved plan
//! for the later steps. Makes no DRS call that changes anything: a plan with problems
//! ends the execution here, with every problem listed.

use drplan_aws::bootstrap::Clients;
use drplan_aws::lock::{self, LockOutcome};
use drplan_aws::step::LogContext;
use drplan_aws::store::RunStore;
use drplan_aws::{FunctionError, bootstrap, drs};
use drplan_core::budget::{MAX_RUN_SECONDS, RunBudget};
use drplan_core::execution::{
    DISCOVERY_RECORD, Discovery, RunContext, TAG_EXECUTION, WaveHooks, WaveRef, hook_problem,
    plan_key, run_key,
};
use drplan_core::execution::{execution_name_problem, hooks_outside, stack_of};
use drplan_core::parse::MAX_PLAN_BYTES;
use drplan_core::plan::DEFAULT_DRILL_KEEP_MINUTES;
use drplan_core::readiness::{READINESS_RECORD, check_readiness, sample, with_pointer};
use drplan_core::safety::{
    DrillIsolation, ISOLATION_RECORD, NOT_ISOLATED, RunLock, judge_live_instances, plan_busy_issue,
    routes_beyond_vpc,
};
use drplan_core::{ExecutionInput, Format, Issue, Mode, Plan, PlanSource};
use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;

/// What the state machine passes: the execution input and the context object.
#[derive(Deserialize)]
struct DiscoverInput {
    input: serde_json::Value,
    execution_id: String,
    execution_name: String,
    started_at: String,
}

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

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let clients = bootstrap::start().await?;
    drplan_aws::step::serve("discover", |input| discover(&clients, input)).await
}

async fn discover(clients: &Clients, event: DiscoverInput) -> Result<Discovery, FunctionError> {
    let input = ExecutionInput::from_value(&event.input).map_err(FunctionError::InvalidPlan)?;
    let plan = load_plan(&clients.store, &input.plan).await?;
    let mut unsupported = unsupported_features(&plan);
    if let Some(problem) = execution_name_problem(&event.execution_name) {
        unsupported.push(Issue::new("execution name", problem));
    }
    // The stack's account and Region are the execution's: hooks must be there too.
    if let Some((region, account)) = stack_of(&event.execution_id) {
        unsupported.extend(hooks_outside(&plan, region, account));
    }
    if !unsupported.is_empty() {
        return Err(FunctionError::InvalidPlan(unsupported));
    }
    let fleet = drs::describe_all_source_servers(&clients.drs).await?;
    let resolved = drplan_core::resolve(&plan, &fleet).map_err(FunctionError::InvalidPlan)?;
    let started_at: Timestamp = event.started_at.parse().map_err(|e| {
        FunctionError::InvalidInput(format!(
            "started_at {:?} is not an RFC 3339 time: {e}",
            event.started_at
        ))
    })?;
    let keep_seconds = match input.mode {
        Mode::Recovery => 0,
        Mode::Drill => input.timing.drill_keep_seconds.unwrap_or_else(|| {
            plan.drill
                .as_ref()
                .map_or(DEFAULT_DRILL_KEEP_MINUTES, |d| d.keep_minutes)
                * 60
        }),
    };
    // The worst case of this plan with this timing must fit in one execution's history
    // and in the state machine's time limit; its wall time is the run's deadline.
    let budget = RunBudget::of(&plan, &resolved, &input.timing, keep_seconds);
    let mut over_budget: Vec<Issue> = budget.problem().into_iter().collect();
    if budget.seconds > MAX_RUN_SECONDS {
        over_budget.push(Issue::new(
            "timing",
            format!(
                "this run could take {} s (launch and health timeouts of every layer, approval, drill keep time and {} s of overhead), over the state machine's limit of {MAX_RUN_SECONDS} s",
                budget.seconds,
                60 * 60
            ),
        ));
    }
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
        for (job, tags) in &jobs {
            if tags.get(TAG_EXECUTION) == Some(&drill.execution_name) {
                for server in &job.servers {
                    busy.remove(&server.source_server_id);
                }
            }
        }
    }
    let mut readiness = check_readiness(&resolved, &fleet, &busy, input.mode, plan.rpo_minutes);
    // DRS keeps one recovery instance per server: a launch replaces what runs now.
    let existing = drs::recovery_instances_of(&clients.drs, &server_ids).await?;
    let live = judge_live_instances(input.mode, input.replace_live_recovery, &existing);
    readiness.blocking.extend(live.blocking);
    if input.mode == Mode::Drill {
        let isolation = check_drill_isolation(clients, &plan, &mut readiness).await?;
        clients
            .store
            .put_json(
                &run_key(&plan.name, &event.execution_name, ISOLATION_RECORD),
                &isolation,
            )
            .await?;
    }
    // Every issue goes to the bucket; the state and the error carry a sample and counts
    // (in a region outage every server has one, far past Step Functions' payload limit).
    let readiness_key = run_key(&plan.name, &event.execution_name, READINESS_RECORD);
    clients.store.put_json(&readiness_key, &readiness).await?;
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
        let allowed = drplan_aws::route53::allowed_zones();
        let zone =
            drplan_aws::route53::zone_for_cutover(&clients.route53, dns, allowed.as_deref()).await;
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
    clients.store.put_json(&run.key("plan.json"), &plan).await?;
    clients
        .store
        .put_json(&run.key("resolved.json"), &resolved)
        .await?;
    let layers = resolved
        .layers
        .iter()
        .map(|layer| {
            layer
                .iter()
                .map(|&index| {
                    let name = resolved.waves[index].name.clone();
                    let hooks = plan
                        .waves
                        .iter()
                        .flatten()
                        .find(|w| w.name == name)
                        .map(|w| WaveHooks {
                            pre: w.hooks.pre.iter().map(|h| h.lambda.clone()).collect(),
                            post: w.hooks.post.iter().map(|h| h.lambda.clone()).collect(),
                        })
                        .unwrap_or_default();
                    WaveRef {
                        index,
                        name,
                        servers: resolved.waves[index].servers.len(),
                        hooks,
                    }
                })
                .collect()
        })
        .collect();
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
        keep_seconds,
        warnings: sample(&readiness.warnings),
        warning_count: readiness.warnings.len(),
        clear_first: stop_drill.is_some() || !live.terminate_first.is_empty(),
        stop_drill,
    };
    // For the handler of runs stopped or timed out before their report.
    clients
        .store
        .put_json(&discovery.run.key(DISCOVERY_RECORD), &discovery)
        .await?;
    Ok(discovery)
}

/// A drill's isolation: its subnet exists and routes nowhere beyond its VPC (unless the
/// plan allows it); without a drill subnet, the run says plainly that it is not isolated.
async fn check_drill_isolation(
    clients: &Clients,
    plan: &Plan,
    readiness: &mut drplan_core::readiness::Readiness,
) -> Result<DrillIsolation, FunctionError> {
    let drill = plan.drill.clone().unwrap_or_default();
    let Some(subnet_id) = drill.subnet_id.clone() else {
        readiness
            .warnings
            .push(Issue::new("drill.subnet_id", NOT_ISOLATED));
        return Ok(DrillIsolation::default());
    };
    let routes = match drplan_aws::drill::drill_subnet_routes(&clients.ec2, &subnet_id).await {
        Ok((_, routes)) => routes_beyond_vpc(&routes),
        Err(FunctionError::NotReady(issues)) => {
            readiness.blocking.extend(issues);
            Vec::new()
        }
        Err(e) => return Err(e),
    };
    if !routes.is_empty() && !drill.allow_routes {
        readiness.blocking.push(Issue::new(
            "drill.subnet_id",
            format!(
                "subnet {subnet_id} routes beyond its VPC ({}): a drill there is not isolated; give it a route table with local routes only, or set drill.allow_routes: true",
                routes.join(", ")
            ),
        ));
    }
    Ok(DrillIsolation {
        subnet_id: Some(subnet_id),
        security_group_ids: drill.security_group_ids,
        routes_beyond_vpc: routes,
    })
}

/// The plan inline, or by name from `plans/NAME.yaml` in the bucket.
async fn load_plan(store: &RunStore, source: &PlanSource) -> Result<Plan, FunctionError> {
    match source {
        PlanSource::Inline(document) => {
            drplan_core::plan_from_value(document).map_err(FunctionError::InvalidPlan)
        }
        PlanSource::Name(name) => {
            let key = plan_key(name);
            let text = match store.get_text_capped(&key, MAX_PLAN_BYTES as u64).await {
                Err(FunctionError::TooLarge { size, .. }) => {
                    return Err(FunctionError::InvalidPlan(vec![Issue::new(
                        "plan",
                        format!(
                            "s3://{}/{key} is {size} bytes; a plan may be at most {MAX_PLAN_BYTES} bytes (1 MiB), so it was not read",
                            store.bucket()
                        ),
                    )]));
                }
                other => other?,
            };
            let Some(text) = text else {
                return Err(FunctionError::InvalidPlan(vec![Issue::new(
                    "plan",
                    format!(
                        "no plan named {name:?}: s3://{}/{key} does not exist",
                        store.bucket()
                    ),
                )]));
            };
            let plan = drplan_core::parse_plan(&text, Format::Yaml).map_err(|issues| {
                FunctionError::InvalidPlan(
                    issues
                        .into_iter()
                        .map(|i| Issue::new(format!("{key}: {}", i.path), i.message))
                        .collect(),
                )
            })?;
            if plan.name != *name {
                return Err(FunctionError::InvalidPlan(vec![Issue::new(
                    format!("{key}: name"),
                    format!("the plan stored as {name:?} is named {:?}", plan.name),
                )]));
            }
            Ok(plan)
        }
    }
}

/// Parts of the plan this deployment cannot carry out. Refused before anything launches
/// rather than skipped: a hook that can never be called would be worse than an error.
fn unsupported_features(plan: &Plan) -> Vec<Issue> {
    let mut issues = Vec::new();
    for (i, wave) in plan.waves.iter().flatten().enumerate() {
        for (phase, hooks) in [("pre", &wave.hooks.pre), ("post", &wave.hooks.post)] {
            for (k, hook) in hooks.iter().enumerate() {
                if let Some(problem) = hook_problem(&hook.lambda) {
                    issues.push(Issue::new(
                        format!("waves[{i}].hooks.{phase}[{k}].lambda"),
                        problem,
                    ));
                }
            }
        }
    }
    issues
}
