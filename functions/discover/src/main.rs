//! discover: reads and validates the plan, resolves its servers over every page of
//! DescribeSourceServers, checks they can be launched, and stores the resolved plan
//! for the later steps. Makes no DRS call that changes anything: a plan with problems
//! ends the execution here, with every problem listed.

use drplan_aws::bootstrap::Clients;
use drplan_aws::step::LogContext;
use drplan_aws::store::RunStore;
use drplan_aws::{FunctionError, bootstrap, drs};
use drplan_core::execution::{Discovery, RunContext, WaveHooks, WaveRef, hook_problem, plan_key};
use drplan_core::plan::DEFAULT_DRILL_KEEP_MINUTES;
use drplan_core::readiness::check_readiness;
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
    let unsupported = unsupported_features(&plan);
    if !unsupported.is_empty() {
        return Err(FunctionError::InvalidPlan(unsupported));
    }
    let fleet = drs::describe_all_source_servers(&clients.drs).await?;
    let resolved = drplan_core::resolve(&plan, &fleet).map_err(FunctionError::InvalidPlan)?;
    let busy = drs::busy_source_servers(
        &clients.drs,
        Timestamp::now() - SignedDuration::from_hours(24),
    )
    .await?;
    let readiness = check_readiness(&resolved, &fleet, &busy, input.mode, plan.rpo_minutes);
    if !readiness.blocking.is_empty() {
        return Err(FunctionError::NotReady(readiness.blocking));
    }
    // A recovery that would cut DNS over needs its zone now, not after every wave
    // launched; a drill never touches DNS.
    if let (Mode::Recovery, Some(dns)) = (input.mode, &plan.dns) {
        drplan_aws::route53::resolve_zone(&clients.route53, dns).await?;
    }
    let started_at: Timestamp = event.started_at.parse().map_err(|e| {
        FunctionError::InvalidInput(format!(
            "started_at {:?} is not an RFC 3339 time: {e}",
            event.started_at
        ))
    })?;
    let run = RunContext {
        execution_id: event.execution_id,
        execution_name: event.execution_name,
        plan: plan.name.clone(),
        mode: input.mode,
        started_at,
        snapshot: input.snapshot,
        timing: input.timing,
        quotas: input.quotas,
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
    let keep_seconds = match input.mode {
        Mode::Recovery => 0,
        Mode::Drill => input.timing.drill_keep_seconds.unwrap_or_else(|| {
            plan.drill
                .as_ref()
                .map_or(DEFAULT_DRILL_KEEP_MINUTES, |d| d.keep_minutes)
                * 60
        }),
    };
    tracing::info!(
        servers = resolved.server_count(),
        waves = resolved.waves.len(),
        warnings = readiness.warnings.len(),
        "plan resolved"
    );
    Ok(Discovery {
        requires_approval: plan.requires_approval(input.mode),
        approval_timeout_seconds: plan
            .approval
            .as_ref()
            .map_or(0, |a| a.timeout_minutes.saturating_mul(60)),
        server_count: resolved.server_count(),
        run,
        layers,
        keep_seconds,
        warnings: readiness.warnings,
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
            let Some(text) = store.get_text(&key).await? else {
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
