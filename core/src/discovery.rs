//! What the discover step decides before a run launches anything: parts of a plan this
//! deployment cannot carry out, the drill's keep time, a run that would not fit the
//! state machine, the drill's isolation, and the waves by layer the later steps run.
//! Pure; the reads (the plan, DRS's servers and jobs, the drill subnet's routes) are in
//! `drplan_aws::discover`.

use std::collections::{HashMap, HashSet};

use crate::budget::{MAX_RUN_SECONDS, RunBudget};
use crate::contract::tags::EXECUTION as TAG_EXECUTION;
use crate::contract::{
    Timing, WaveHooks, WaveRef, execution_name_problem, hook_problem, hooks_outside, stack_of,
};
use crate::issue::Issue;
use crate::launch::JobView;
use crate::plan::{DEFAULT_DRILL_KEEP_MINUTES, Drill, Mode, Plan};
use crate::resolve::ResolvedPlan;
use crate::safety::DrillIsolation;

/// What refuses a run before any DRS call: hooks this deployment cannot call, an
/// execution name drplan cannot use, hooks outside the execution's account and Region.
pub fn refusals(plan: &Plan, execution_id: &str, execution_name: &str) -> Vec<Issue> {
    let mut issues = unsupported_features(plan);
    if let Some(problem) = execution_name_problem(execution_name) {
        issues.push(Issue::new("execution name", problem));
    }
    // The stack's account and Region are the execution's: hooks must be there too.
    if let Some((region, account)) = stack_of(execution_id) {
        issues.extend(hooks_outside(plan, region, account));
    }
    issues
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

/// How long a drill's instances are kept before cleanup: the execution's timing, else
/// the plan's `drill.keep_minutes`. A recovery keeps nothing to clean up. A failback
/// keeps the recovery instances for the plan's `failback.keep_recovery_minutes`.
pub fn keep_seconds(plan: &Plan, mode: Mode, timing: &Timing) -> u32 {
    match mode {
        Mode::Recovery => 0,
        Mode::Failback => plan
            .failback
            .clone()
            .unwrap_or_default()
            .keep_recovery_minutes
            .saturating_mul(60),
        Mode::Drill => timing.drill_keep_seconds.unwrap_or_else(|| {
            plan.drill
                .as_ref()
                .map_or(DEFAULT_DRILL_KEEP_MINUTES, |d| d.keep_minutes)
                * 60
        }),
    }
}

/// Why the run's worst case does not fit one execution: its history, or the state
/// machine's time limit.
pub fn budget_problems(budget: &RunBudget) -> Vec<Issue> {
    let mut issues: Vec<Issue> = budget.problem().into_iter().collect();
    if budget.seconds > MAX_RUN_SECONDS {
        issues.push(Issue::new(
            "timing",
            format!(
                "this run could take {} s (launch and health timeouts of every layer, approval, drill keep time and {} s of overhead), over the state machine's limit of {MAX_RUN_SECONDS} s",
                budget.seconds,
                60 * 60
            ),
        ));
    }
    issues
}

/// Takes the servers of `execution_name`'s jobs out of `busy`: a stopped drill's own
/// jobs are waited out before the first wave, not counted against the recovery.
pub fn release_jobs_of(
    busy: &mut HashSet<String>,
    jobs: &[(JobView, HashMap<String, String>)],
    execution_name: &str,
) {
    for (job, tags) in jobs {
        if tags.get(TAG_EXECUTION).map(String::as_str) == Some(execution_name) {
            for server in &job.servers {
                busy.remove(&server.source_server_id);
            }
        }
    }
}

/// A drill subnet's isolation from the routes it has beyond its VPC, and the problem
/// that blocks the drill when it has some the plan does not allow.
pub fn judge_isolation(
    drill: Drill,
    subnet_id: String,
    routes_beyond_vpc: Vec<String>,
) -> (DrillIsolation, Option<Issue>) {
    let blocking = (!routes_beyond_vpc.is_empty() && !drill.allow_routes).then(|| {
        Issue::new(
            "drill.subnet_id",
            format!(
                "subnet {subnet_id} routes beyond its VPC ({}): a drill there is not isolated; give it a route table with local routes only, or set drill.allow_routes: true",
                routes_beyond_vpc.join(", ")
            ),
        )
    });
    let isolation = DrillIsolation {
        subnet_id: Some(subnet_id),
        security_group_ids: drill.security_group_ids,
        routes_beyond_vpc,
    };
    (isolation, blocking)
}

/// Why a subnet cannot take the instances a run launches into it: each needs an address,
/// and a launch past the last one fails half way through a wave (DRS reports
/// `InsufficientFreeAddressesInSubnet` per server). `freed` counts addresses the run frees
/// first (earlier drill instances it terminates before launching).
pub fn subnet_capacity_problem(
    field: &str,
    subnet_id: &str,
    free: u64,
    freed: u64,
    launching: u64,
) -> Option<Issue> {
    (free + freed < launching).then(|| {
        let freed_note = if freed > 0 {
            format!(" (and {freed} more once the earlier drill's instances are terminated)")
        } else {
            String::new()
        };
        Issue::new(
            field,
            format!(
                "subnet {subnet_id} has {free} free addresses{freed_note}, but this run launches {launching} instances into it: {} would fail to launch; free addresses or use a larger subnet",
                launching - free - freed
            ),
        )
    })
}

/// The resolved plan's waves by layer, as the later steps receive them, with each
/// wave's hooks.
pub fn wave_layers(plan: &Plan, resolved: &ResolvedPlan) -> Vec<Vec<WaveRef>> {
    resolved
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
                        adopted: false,
                    }
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::launch::JobServer;
    use crate::{Format, parse_plan};

    fn plan(yaml_tail: &str) -> Plan {
        parse_plan(
            &format!("name: shop\nrto_minutes: 60\nselector: {{\"dr:plan\": shop}}\n{yaml_tail}"),
            Format::Yaml,
        )
        .unwrap()
    }

    #[test]
    fn a_drill_keeps_its_instances_as_long_as_the_run_or_the_plan_says() {
        let with_keep = plan("drill: {keep_minutes: 5}\n");
        let timing = Timing::default();
        assert_eq!(keep_seconds(&with_keep, Mode::Recovery, &timing), 0);
        assert_eq!(keep_seconds(&with_keep, Mode::Drill, &timing), 300);
        assert_eq!(
            keep_seconds(&plan(""), Mode::Drill, &timing),
            DEFAULT_DRILL_KEEP_MINUTES * 60
        );
        let short = Timing {
            drill_keep_seconds: Some(30),
            ..Timing::default()
        };
        assert_eq!(keep_seconds(&with_keep, Mode::Drill, &short), 30);
    }

    #[test]
    fn a_stopped_drills_jobs_do_not_keep_its_servers_busy() {
        let job = |id: &str, execution: &str, server: &str| {
            (
                JobView {
                    job_id: id.into(),
                    status: "STARTED".into(),
                    servers: vec![JobServer {
                        source_server_id: server.into(),
                        launch_status: None,
                        recovery_instance_id: None,
                    }],
                },
                HashMap::from([(TAG_EXECUTION.to_owned(), execution.to_owned())]),
            )
        };
        let jobs = [
            job("drsjob-1", "drill-1", "s-1"),
            job("drsjob-2", "other", "s-2"),
        ];
        let mut busy = HashSet::from(["s-1".to_owned(), "s-2".to_owned()]);
        release_jobs_of(&mut busy, &jobs, "drill-1");
        assert_eq!(busy, HashSet::from(["s-2".to_owned()]));
    }

    #[test]
    fn a_subnet_without_an_address_for_every_instance_blocks_the_run() {
        let problem = subnet_capacity_problem("drill.subnet_id", "subnet-1", 251, 0, 259).unwrap();
        assert_eq!(problem.path, "drill.subnet_id");
        assert_eq!(
            problem.message,
            "subnet subnet-1 has 251 free addresses, but this run launches 259 instances into it: 8 would fail to launch; free addresses or use a larger subnet"
        );
        assert!(subnet_capacity_problem("drill.subnet_id", "subnet-1", 251, 8, 259).is_none());
        assert!(subnet_capacity_problem("drill.subnet_id", "subnet-1", 259, 0, 259).is_none());
    }

    #[test]
    fn a_drill_subnet_with_routes_beyond_its_vpc_blocks_unless_allowed() {
        let routes = vec!["0.0.0.0/0 -> igw-1".to_owned()];
        let (isolation, blocking) =
            judge_isolation(Drill::default(), "subnet-1".into(), routes.clone());
        assert_eq!(isolation.subnet_id.as_deref(), Some("subnet-1"));
        assert_eq!(isolation.routes_beyond_vpc, routes);
        assert!(blocking.is_some_and(|issue| {
            issue
                .message
                .starts_with("subnet subnet-1 routes beyond its VPC (0.0.0.0/0 -> igw-1)")
        }));
        let allowed = Drill {
            allow_routes: true,
            ..Drill::default()
        };
        assert_eq!(judge_isolation(allowed, "subnet-1".into(), routes).1, None);
        assert_eq!(
            judge_isolation(Drill::default(), "subnet-1".into(), Vec::new()).1,
            None
        );
    }
}
