//! A run's first step (the discover function): reads and validates the plan, resolves
//! its servers over every page of DescribeSourceServers, checks they can be launched,
//! and stores the resolved plan for the later steps. Makes no DRS call that changes
//! anything: a plan with problems ends the execution here, with every problem listed.
//! The decisions are `drplan_core`'s (`discovery`, `readiness`, `safety`, `budget`).

use drplan_core::budget::RunBudget;
use drplan_core::contract::step::DiscoverInput;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use drplan_core::contract::keys;
use drplan_core::contract::{Discovery, Resumption, RunContext, RunRecords, SkippedWave};
use drplan_core::discovery::{
    budget_problems, judge_isolation, keep_seconds, refusals, release_jobs_of, wave_layers,
};
use drplan_core::dns_failover::{DnsPrepared, METRIC_NAME, METRIC_NAMESPACE, prepared_mismatches};
use drplan_core::evaluation::{PlanFacts, evaluate};
use drplan_core::failback::run::{
    FailbackRecord, failback_dns, home_already, live_recovery_instances,
};
use drplan_core::failback::{check_failback_readiness, failback_destination};
use drplan_core::launch::JobView;
use drplan_core::plan::{Dns, DnsMode};
use drplan_core::readiness::Readiness;
use drplan_core::readiness::{sample, with_pointer};
use drplan_core::resume::{
    CarriedServer, EarlierRun, ResumeRecord, arrange_layers, left_out_waves, plan_resume,
    skipped_waves, without_waves,
};
use drplan_core::safety::RecoveryInstanceView;
use drplan_core::safety::{DrillIsolation, RunLock, judge_live_instances, plan_busy_issue};
use drplan_core::{ExecutionInput, Issue, Mode, Plan, ResolvedPlan};
use jiff::{SignedDuration, Timestamp};

use crate::bootstrap::Clients;
use crate::lock::{self, LockOutcome};
use crate::resume::{self, EarlierFacts};
use crate::step::LogContext;
use crate::{FunctionError, drs, failback, failover, plans, readiness, route53};

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
    let earlier = match &input.resume {
        Some(execution) => Some(
            resume::earlier_run(
                &clients.sfn,
                &clients.store,
                &event.execution_id,
                execution,
                &plan.name,
                input.mode,
            )
            .await?,
        ),
        None => None,
    };
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
    // runs started at once cannot both pass them. The report releases it (a resumed run
    // takes it over from the ended run it continues, which no longer holds it).
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
    if input.mode == Mode::Failback {
        let failback = FailbackStart {
            input,
            plan,
            resolved,
            started_at,
            deadline_seconds: budget.seconds,
            keep_seconds: keep,
        };
        return discover_failback(clients, event, failback).await;
    }
    // Every server of the plan, also of waves this run leaves out: they tell which
    // waves are recovered and live already.
    let plan_server_ids: Vec<String> = resolved
        .waves
        .iter()
        .flat_map(|w| w.servers.iter().map(|s| s.id.clone()))
        .collect();
    let existing = drs::recovery_instances_of(&clients.drs, &plan_server_ids).await?;
    // A resumed run looks at the jobs of every run of its chain.
    let since = earlier.as_ref().map_or_else(
        || Timestamp::now() - SignedDuration::from_hours(24),
        |e| {
            (Timestamp::now() - SignedDuration::from_hours(24))
                .min(e.first_started_at() - SignedDuration::from_mins(5))
        },
    );
    let jobs = drs::jobs_since(&clients.drs, since).await?;
    let choice = choose_waves(&input, &resolved, earlier.as_ref(), &jobs, &existing)?;
    let resolved = without_waves(resolved, &choice.not_run());
    let server_ids: BTreeSet<&str> = resolved
        .waves
        .iter()
        .flat_map(|w| w.servers.iter().map(|s| s.id.as_str()))
        .collect();
    let mut busy = drs::busy_servers(&jobs);
    if let Some(drill) = &stop_drill {
        // The stopped drill's own jobs are waited out before the first wave.
        release_jobs_of(&mut busy, &jobs, &drill.execution_name);
    }
    // DRS keeps one recovery instance per server: a launch replaces what runs now. The
    // instances a resumed run carries over are its own, and those of waves this run
    // leaves out are not in its way.
    let carried: BTreeSet<&str> = choice
        .carried
        .values()
        .flatten()
        .map(|c| c.recovery_instance_id.as_str())
        .collect();
    let in_the_way: Vec<_> = existing
        .iter()
        .filter(|r| {
            r.source_server_id
                .as_deref()
                .is_some_and(|id| server_ids.contains(id))
                && !carried.contains(r.recovery_instance_id.as_str())
        })
        .cloned()
        .collect();
    let live = judge_live_instances(input.mode, input.replace_live_recovery, &in_the_way);
    // The plan's evaluation, the same one `drplan readiness` shows: servers, launch
    // settings, capacity of every subnet this run launches into, the drill's isolation.
    // DNS is checked below, once the run is known to go ahead.
    let mut facts = PlanFacts {
        busy_servers: busy,
        not_launching: choice
            .carried
            .values()
            .flatten()
            .map(|c| c.source_server_id.clone())
            .collect(),
        // Earlier drill instances a drill terminates first free their addresses.
        freed_in_drill_subnet: live.terminate_first.len() as u64,
        quotas: input.quotas.unwrap_or(clients.quotas),
        ..PlanFacts::default()
    };
    let (network, account) = tokio::join!(
        readiness::read_launch_and_network(clients, &plan, &resolved, &mut facts),
        readiness::account_facts(clients, &plan),
    );
    network?;
    account.add_to(&mut facts);
    facts.fleet = fleet;
    let mut readiness = evaluate(&plan, &resolved, &facts, input.mode);
    readiness.blocking.extend(live.blocking);
    if input.mode == Mode::Drill {
        let settings = plan.drill.clone().unwrap_or_default();
        let isolation = match (&settings.subnet_id, &facts.drill_routes) {
            (Some(subnet_id), Some(Ok(routes))) => {
                judge_isolation(settings.clone(), subnet_id.clone(), routes.clone()).0
            }
            _ => DrillIsolation::default(),
        };
        clients
            .store
            .write(
                &RunRecords::of(&plan.name, &event.execution_name).isolation(),
                &isolation,
            )
            .await?;
    }
    // A wave whose target group is not there would launch, pass its health checks and
    // then fail its gate with nothing to register into: refused now, before any launch.
    let run_waves: Vec<&str> = resolved.waves.iter().map(|w| w.name.as_str()).collect();
    let groups = drplan_core::targets::target_groups_of_run(&plan, input.mode, &run_waves);
    if !groups.is_empty() {
        let missing = crate::targets::missing_target_groups(&clients.elb, &groups).await?;
        readiness
            .blocking
            .extend(drplan_core::targets::missing_target_group_issues(
                &plan, input.mode, &run_waves, &missing,
            ));
    }
    let mut readiness =
        refuse_if_blocking(clients, &plan.name, &event.execution_name, readiness).await?;
    // A recovery that would cut DNS over checks its zone and records now (the zone is
    // one this deployment may change, every record is inside it), not after every wave
    // launched. A drill never touches DNS, but warns of what would stop the cutover.
    // A data-plane cutover checks the failover records `drplan dns prepare` recorded,
    // and its alarm, without Route 53: its control plane may be what is down.
    let mut prepared = None;
    if let Some(dns) = &plan.dns {
        let allowed = route53::allowed_zones();
        let zone = match dns.mode {
            DnsMode::DataPlane => {
                let checked = check_prepared(clients, &plan.name, dns).await;
                checked.map(|p| {
                    prepared = Some(p);
                })
            }
            DnsMode::ControlPlane => {
                route53::zone_for_cutover(&clients.route53, dns, allowed.as_deref())
                    .await
                    .map(|_| ())
            }
        };
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
        quotas: input.quotas.unwrap_or(clients.quotas),
        deadline: Some(started_at + SignedDuration::from_secs(budget.seconds as i64)),
        resumed: earlier.as_ref().map(|e| Resumption {
            execution_name: e.execution_name.clone(),
            first_started_at: e.first_started_at(),
        }),
        origin_region: None,
    };
    write_run_plan(clients, &run, &plan, &resolved).await?;
    if let Some(prepared) = &prepared {
        clients
            .store
            .write(&run.records().dns_prepared(), prepared)
            .await?;
    }
    if let Some(earlier) = &earlier {
        let record = ResumeRecord {
            resumes: earlier.execution_name.clone(),
            chain: earlier.chain(),
            first_started_at: earlier.first_started_at(),
            previous_ended_at: earlier.ended_at,
            adopted_waves: choice.adopted.iter().cloned().collect(),
            carried: choice.carried.clone(),
        };
        clients
            .store
            .write(&run.records().resume(), &record)
            .await?;
    }
    let layers = arrange_layers(
        wave_layers(&plan, &resolved),
        &choice.adopted,
        &choice.not_run(),
    );
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
        skipped: choice.skipped,
        left_out: choice.left_out,
    };
    // For the handler of runs stopped or timed out before their report.
    clients
        .store
        .write(&discovery.run.records().discovery(), &discovery)
        .await?;
    Ok(discovery)
}

/// Every issue goes to the bucket; the state and the error carry a sample and counts (in
/// a region outage every server has one, far past Step Functions' payload limit). A
/// blocking issue ends the run here; else the readiness goes on (with its warnings).
async fn refuse_if_blocking(
    clients: &Clients,
    plan: &str,
    execution_name: &str,
    readiness: Readiness,
) -> Result<Readiness, FunctionError> {
    let readiness_key = RunRecords::of(plan, execution_name).readiness();
    clients.store.write(&readiness_key, &readiness).await?;
    if readiness.blocking.is_empty() {
        return Ok(readiness);
    }
    Err(FunctionError::NotReady(with_pointer(
        readiness.blocking,
        &format!("s3://{}/{readiness_key}", clients.store.bucket()),
    )))
}

/// The plan as the run read it and its resolved servers, for the later steps.
async fn write_run_plan(
    clients: &Clients,
    run: &RunContext,
    plan: &Plan,
    resolved: &ResolvedPlan,
) -> Result<(), FunctionError> {
    let document = serde_json::to_value(plan)
        .map_err(|e| FunctionError::InvalidInput(format!("cannot serialise the plan: {e}")))?;
    clients
        .store
        .write(&run.records().plan_document(), &document)
        .await?;
    clients
        .store
        .write(&run.records().resolved_plan(), resolved)
        .await
}

/// What discover_run hands a failback once the plan is resolved and locked.
struct FailbackStart {
    input: ExecutionInput,
    plan: Plan,
    resolved: ResolvedPlan,
    started_at: Timestamp,
    deadline_seconds: u64,
    keep_seconds: u32,
}

/// A failback's discover: refused, naming each server and its state, unless every
/// recovered server can go home now (`drplan_core::failback`); then the recovery
/// instances to fail back and the DNS to put back are recorded for the later steps.
/// Nothing is launched or changed here.
async fn discover_failback(
    clients: &Clients,
    event: DiscoverInput,
    start: FailbackStart,
) -> Result<Discovery, FunctionError> {
    let FailbackStart {
        input,
        plan,
        resolved,
        started_at,
        deadline_seconds,
        keep_seconds,
    } = start;
    let facts = failback::failback_facts(&clients.drs, &resolved).await?;
    let verdict = check_failback_readiness(&plan.name, &resolved, &facts);
    let mut readiness = Readiness {
        blocking: verdict.blocking,
        warnings: verdict.waiting.into_iter().chain(verdict.skipped).collect(),
    };
    // Home to machines outside AWS, or to the EC2 sources' origin Region.
    let origin_region = failback_destination(&facts).unwrap_or_else(|issue| {
        readiness.blocking.push(issue);
        None
    });
    let recovery_instances = live_recovery_instances(&facts);
    let home = home_already(&facts);
    if !recovery_instances.is_empty()
        && recovery_instances
            .keys()
            .all(|server| home.contains(server))
    {
        readiness.blocking.push(Issue::new(
            "plan",
            format!(
                "every recovered server of plan {:?} is home already (failback.state FAILBACK_COMPLETED): there is nothing left to fail back",
                plan.name
            ),
        ));
    }
    let (recovered_by, cutovers) =
        failback::recovery_runs(&clients.drs, &clients.store, &plan.name, &facts).await?;
    let dns = match plan.dns.as_ref().map(|_| failback_dns(&cutovers)) {
        Some(Ok(dns)) => dns,
        Some(Err(issue)) => {
            readiness.blocking.push(issue);
            None
        }
        None => None,
    };
    if let Some(dns) = &dns
        && let Some(allowed) = route53::allowed_zones()
        && let Some(why) = drplan_core::dns::zone_not_allowed(&allowed, &dns.zone_id)
    {
        readiness.blocking.push(Issue::new("dns.zone", why));
    }
    let readiness =
        refuse_if_blocking(clients, &plan.name, &event.execution_name, readiness).await?;
    // Optional servers with nothing to bring home are left out, and so are servers an
    // earlier failback brought home (readiness said which), and waves left empty.
    let mut resolved = resolved;
    let mut home_waves = BTreeSet::new();
    for wave in &mut resolved.waves {
        wave.servers.retain(|server| {
            recovery_instances.contains_key(&server.id) && !home.contains(&server.id)
        });
        if wave.servers.is_empty() {
            home_waves.insert(wave.name.clone());
        }
    }
    let run = RunContext {
        execution_id: event.execution_id,
        execution_name: event.execution_name,
        plan: plan.name.clone(),
        mode: Mode::Failback,
        started_at,
        snapshot: input.snapshot,
        timing: input.timing,
        quotas: input.quotas.unwrap_or(clients.quotas),
        deadline: Some(started_at + SignedDuration::from_secs(deadline_seconds as i64)),
        resumed: None,
        origin_region: origin_region.clone(),
    };
    write_run_plan(clients, &run, &plan, &resolved).await?;
    // EC2 sources: the reversed servers ReverseReplication made already (the rest are
    // made before the first wave, after approval: discover changes nothing in DRS).
    let reversed = facts
        .iter()
        .filter(|fact| recovery_instances.contains_key(&fact.source_server_id))
        .filter_map(|fact| {
            Some((
                fact.source_server_id.clone(),
                fact.reversed_source_server_id.clone()?,
            ))
        })
        .collect();
    let record = FailbackRecord {
        recovery_instances,
        recovered_by,
        home_already: home,
        dns,
        origin_region: origin_region.clone(),
        reversed,
        reprotected: Default::default(),
    };
    clients
        .store
        .write(&run.records().failback(), &record)
        .await?;
    tracing::info!(
        servers = resolved.server_count(),
        recovered_by = record.recovered_by.join(", "),
        dns_records = record
            .dns
            .as_ref()
            .map_or(0, |d| d.changes.len() + d.deletes.len()),
        "failback ready"
    );
    let discovery = Discovery {
        requires_approval: plan.requires_approval(Mode::Failback),
        approval_timeout_seconds: plan
            .approval
            .as_ref()
            .map_or(0, |a| a.timeout_minutes.saturating_mul(60)),
        server_count: resolved.server_count(),
        layers: arrange_layers(wave_layers(&plan, &resolved), &BTreeSet::new(), &home_waves),
        run,
        keep_seconds,
        warnings: sample(&readiness.warnings),
        warning_count: readiness.warnings.len(),
        // A failback to the origin Region starts reversed replication and waits until it
        // is CONTINUOUS before the first wave (the cleanup function's CLEAR state).
        clear_first: origin_region.is_some(),
        stop_drill: None,
        skipped: Vec::new(),
        left_out: Vec::new(),
    };
    clients
        .store
        .write(&discovery.run.records().discovery(), &discovery)
        .await?;
    Ok(discovery)
}

/// Which waves of the plan this run runs, adopts or leaves out, and which servers it
/// does not launch again.
#[derive(Debug, Default)]
struct WaveChoice {
    adopted: BTreeSet<String>,
    carried: BTreeMap<String, Vec<CarriedServer>>,
    skipped: Vec<SkippedWave>,
    left_out: Vec<String>,
}

impl WaveChoice {
    fn not_run(&self) -> BTreeSet<String> {
        self.skipped
            .iter()
            .map(|s| s.wave.clone())
            .chain(self.left_out.iter().cloned())
            .collect()
    }
}

/// A resumed run adopts what the run it continues got through, keeps the waves that
/// run left out and the skips a person made in it, and adds the new skips; a new run
/// with `only_waves` leaves the other waves out.
fn choose_waves(
    input: &ExecutionInput,
    resolved: &drplan_core::ResolvedPlan,
    earlier: Option<&EarlierFacts>,
    jobs: &[(JobView, HashMap<String, String>)],
    existing: &[RecoveryInstanceView],
) -> Result<WaveChoice, FunctionError> {
    let mut choice = WaveChoice::default();
    let mut skips = input.skip_waves.clone();
    if let Some(earlier) = earlier {
        let chain_before = earlier.chain_before();
        let run = EarlierRun {
            execution_name: &earlier.execution_name,
            chain_before: &chain_before,
            resolved: earlier.resolved.as_ref(),
            succeeded_waves: &earlier.succeeded_waves,
        };
        let adoption = plan_resume(resolved, &run, jobs, existing, input.mode)
            .map_err(FunctionError::NotReady)?;
        choice.adopted = adoption.adopted;
        choice.carried = adoption.carried;
        if let Some(discovery) = &earlier.discovery {
            choice.left_out = discovery.left_out.clone();
            for skip in discovery.skipped.iter().filter(|s| s.needs.is_none()) {
                if !skips.iter().any(|s| s.wave == skip.wave) {
                    skips.push(drplan_core::contract::WaveSkip {
                        wave: skip.wave.clone(),
                        reason: skip.reason.clone(),
                        by: skip.by.clone(),
                    });
                }
            }
        }
    }
    choice.skipped =
        skipped_waves(resolved, &skips, &choice.adopted).map_err(FunctionError::InvalidPlan)?;
    if !input.only_waves.is_empty() {
        choice.left_out = left_out_waves(resolved, &input.only_waves, existing, input.mode)
            .map_err(FunctionError::InvalidPlan)?;
    }
    Ok(choice)
}

/// The failover records of a data-plane plan, as `drplan dns prepare` recorded them,
/// if they match the plan and their alarm is in place in this Region; else every
/// difference, each naming the record.
pub(crate) async fn check_prepared(
    clients: &Clients,
    plan: &str,
    dns: &Dns,
) -> Result<DnsPrepared, FunctionError> {
    let prepared = clients.store.read(&keys::dns_prepared(plan)).await?;
    let mut issues = prepared_mismatches(dns, plan, prepared.as_ref());
    let Some(prepared) = prepared else {
        return Err(FunctionError::NotReady(issues));
    };
    let region = clients
        .cloudwatch
        .config()
        .region()
        .map(|r| r.as_ref().to_owned())
        .unwrap_or_default();
    let alarm = &prepared.alarm;
    if alarm.region != region {
        issues.push(Issue::new(
            "dns.mode",
            format!(
                "the failover alarm {} is in {}, but drplan runs in {region}, the Region a recovery flips it from: run `drplan dns prepare {plan}` with AWS_REGION={region}",
                alarm.name, alarm.region
            ),
        ));
    } else {
        match failover::describe_alarm(&clients.cloudwatch, plan, &alarm.name).await? {
            None => issues.push(Issue::new(
                "dns.mode",
                format!(
                    "the failover alarm {} does not exist in {region}: run `drplan dns prepare {plan}`",
                    alarm.name
                ),
            )),
            Some(seen) if !seen.watches_the_failover_metric => issues.push(Issue::new(
                "dns.mode",
                format!(
                    "the failover alarm {} no longer watches {}/{} for plan {plan}: run `drplan dns prepare {plan}`",
                    alarm.name, METRIC_NAMESPACE, METRIC_NAME
                ),
            )),
            Some(_) => {}
        }
    }
    if issues.is_empty() {
        Ok(prepared)
    } else {
        Err(FunctionError::NotReady(issues))
    }
}
