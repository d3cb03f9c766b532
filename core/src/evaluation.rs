//! Plan evaluation: everything drplan can tell about whether a plan would run now, from
//! facts read beforehand. One evaluation serves the discover step (a run refuses before
//! anything launches), `drplan readiness` and the scheduled readiness function, so the
//! three never disagree. Pure; `drplan_aws::readiness` reads the facts.
//!
//! Each finding says which runs it blocks (none: a warning), where in the plan it is, and
//! what to do.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::discovery::{judge_isolation, subnet_capacity_problem};
use crate::drs_account::{ServiceRoleFacts, judge_quotas, judge_service_roles};
use crate::issue::Issue;
use crate::plan::{Mode, Plan};
use crate::quota::Quotas;
use crate::readiness::{Readiness, check_readiness};
use crate::resolve::{ResolvedPlan, SourceServer, resolve};
use crate::safety::NOT_ISOLATED;

/// Where a source server's launches go: its EC2 launch template's default version, the
/// one DRS launches from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LaunchFacts {
    /// The template and what its default version's primary interface names.
    Template {
        template_id: String,
        version: String,
        subnet_id: Option<String>,
        security_group_ids: Vec<String>,
        instance_type: Option<String>,
    },
    /// No usable template: why (DRS names none, or EC2 does not know it).
    Missing(String),
}

/// A subnet the plan launches into, as EC2 describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubnetFacts {
    pub free_addresses: u64,
    pub availability_zone: Option<String>,
}

/// What was read about the plan's world. A fact left empty (`None`, or an entry missing
/// from a map that was not read) is not judged; an entry read and found missing is.
#[derive(Debug, Clone, Default)]
pub struct PlanFacts {
    /// Every source server DRS describes.
    pub fleet: Vec<SourceServer>,
    /// Servers in an active DRS job.
    pub busy_servers: HashSet<String>,
    /// Each plan server's launch settings, by source server ID.
    pub launch: BTreeMap<String, LaunchFacts>,
    /// The subnets named by templates and the drill, by ID; a subnet asked for and not
    /// here does not exist.
    pub subnets: BTreeMap<String, SubnetFacts>,
    /// Whether `subnets` and `security_groups` were read (else neither is judged).
    pub network_read: bool,
    /// Security groups that exist, among those asked for.
    pub security_groups: BTreeSet<String>,
    /// Instance types offered, by availability zone (a zone not here is not judged).
    pub offered_types: BTreeMap<String, BTreeSet<String>>,
    /// The drill subnet's routes beyond its VPC, or why it cannot be used.
    pub drill_routes: Option<Result<Vec<String>, Vec<Issue>>>,
    /// Hook functions that do not exist or cannot run, with why (a function ARN per entry).
    pub missing_hooks: BTreeMap<String, String>,
    /// Hook functions Lambda would not describe (e.g. access denied), with why: warned.
    pub unchecked_hooks: BTreeMap<String, String>,
    /// DRS's IAM roles, when read.
    pub service_roles: Option<ServiceRoleFacts>,
    /// The DRS quotas of the account: the run's `quotas`, else the documented defaults.
    pub quotas: Quotas,
    /// What would stop the DNS cutover (zone or records), when the plan has `dns`.
    pub dns_problems: Vec<Issue>,
    /// When the last successful drill finished, if the reports were read.
    pub last_successful_drill: Option<Option<Timestamp>>,
    /// Servers this run does not launch (carried over by a resumed run).
    pub not_launching: BTreeSet<String>,
    /// Addresses in the drill subnet a run frees before launching (earlier drill
    /// instances it terminates first).
    pub freed_in_drill_subnet: u64,
    pub now: Option<Timestamp>,
}

/// One thing found, for people and machines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// `blocks`: a run of a mode in `blocks_modes` is refused before launch;
    /// `warning`: runs go ahead, and the report says it.
    pub severity: Severity,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocks_modes: Vec<Mode>,
    pub path: String,
    /// What is wrong and what to do.
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Blocks,
    Warning,
}

/// A plan's readiness: what `readiness/PLAN.json`, `drplan readiness` and the e-mail on
/// a change say.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanReadiness {
    pub plan: String,
    pub evaluated_at: Timestamp,
    /// A recovery would start now.
    pub recovery_ready: bool,
    /// A drill would start now.
    pub drill_ready: bool,
    pub servers: usize,
    pub findings: Vec<Finding>,
}

impl PlanReadiness {
    /// Both modes would run.
    pub fn ready(&self) -> bool {
        self.recovery_ready && self.drill_ready
    }

    /// One word per mode, e.g. `recovery ready, drill NOT ready`.
    pub fn verdict(&self) -> String {
        let word = |ready: bool| if ready { "ready" } else { "NOT ready" };
        format!(
            "recovery {}, drill {}",
            word(self.recovery_ready),
            word(self.drill_ready)
        )
    }

    /// Whether `earlier` said something else about either mode: worth an e-mail.
    pub fn changed_from(&self, earlier: Option<&PlanReadiness>) -> bool {
        match earlier {
            None => !self.ready(),
            Some(e) => e.recovery_ready != self.recovery_ready || e.drill_ready != self.drill_ready,
        }
    }

    /// The e-mail on-call staff get when [`Self::changed_from`] says so: (subject, body).
    /// The subject fits SNS's 100 characters; the body lists every finding.
    pub fn change_message(&self, earlier: Option<&PlanReadiness>) -> (String, String) {
        let mut subject = if self.ready() {
            format!("drplan: plan {} is ready again", self.plan)
        } else {
            format!(
                "drplan: plan {} is NOT ready ({})",
                self.plan,
                self.verdict()
            )
        };
        if subject.len() > 100 {
            subject = format!("drplan: readiness of plan {} changed", self.plan);
            subject.truncate(100);
        }
        let mut body = String::new();
        match earlier {
            Some(earlier) => body.push_str(&format!(
                "Plan {} was {} at {}; now it is {}.\n\n",
                self.plan,
                earlier.verdict(),
                earlier.evaluated_at,
                self.verdict()
            )),
            None => body.push_str(&format!(
                "Plan {} was evaluated for the first time: {}.\n\n",
                self.plan,
                self.verdict()
            )),
        }
        body.push_str(&self.to_text());
        if !self.ready() {
            body.push_str(&format!(
                "\nA run of a mode that is not ready is refused before anything launches. Fix each finding that blocks it; `drplan readiness {}` evaluates the plan again now.\n",
                self.plan
            ));
        }
        (subject, body)
    }

    /// For people: the verdict, then each finding.
    pub fn to_text(&self) -> String {
        let mut text = format!(
            "plan {}: {} ({} servers, evaluated {})\n",
            self.plan,
            self.verdict(),
            self.servers,
            self.evaluated_at
        );
        for finding in &self.findings {
            let label = match finding.severity {
                Severity::Blocks => format!(
                    "BLOCKS {}",
                    finding
                        .blocks_modes
                        .iter()
                        .map(|m| m.as_str())
                        .collect::<Vec<_>>()
                        .join("+")
                ),
                Severity::Warning => "warning".to_owned(),
            };
            text.push_str(&format!(
                "  {label}: {}: {}\n",
                finding.path, finding.message
            ));
        }
        text
    }
}

/// Evaluates the plan for both modes.
pub fn evaluate_plan(plan: &Plan, facts: &PlanFacts, now: Timestamp) -> PlanReadiness {
    let (servers, by_mode) = match resolve(plan, &facts.fleet) {
        Ok(resolved) => (
            resolved.server_count(),
            [Mode::Drill, Mode::Recovery]
                .map(|mode| (mode, evaluate(plan, &resolved, facts, mode))),
        ),
        Err(issues) => {
            let unresolved = Readiness {
                blocking: issues,
                warnings: Vec::new(),
            };
            (
                0,
                [
                    (Mode::Drill, unresolved.clone()),
                    (Mode::Recovery, unresolved),
                ],
            )
        }
    };
    let findings = merge(&by_mode);
    let ready = |mode: Mode| {
        by_mode
            .iter()
            .any(|(m, readiness)| *m == mode && readiness.blocking.is_empty())
    };
    PlanReadiness {
        plan: plan.name.clone(),
        evaluated_at: now,
        recovery_ready: ready(Mode::Recovery),
        drill_ready: ready(Mode::Drill),
        servers,
        findings,
    }
}

/// One finding per distinct problem, with every mode it blocks.
fn merge(by_mode: &[(Mode, Readiness)]) -> Vec<Finding> {
    let mut findings: Vec<Finding> = Vec::new();
    for (mode, readiness) in by_mode {
        for issue in &readiness.blocking {
            match findings
                .iter_mut()
                .find(|f| f.path == issue.path && f.message == issue.message)
            {
                Some(found) => {
                    found.severity = Severity::Blocks;
                    found.blocks_modes.push(*mode);
                }
                None => findings.push(Finding {
                    severity: Severity::Blocks,
                    blocks_modes: vec![*mode],
                    path: issue.path.clone(),
                    message: issue.message.clone(),
                }),
            }
        }
        for issue in &readiness.warnings {
            if !findings
                .iter()
                .any(|f| f.path == issue.path && f.message == issue.message)
            {
                findings.push(Finding {
                    severity: Severity::Warning,
                    blocks_modes: Vec::new(),
                    path: issue.path.clone(),
                    message: issue.message.clone(),
                });
            }
        }
    }
    findings.sort_by_key(|f| f.severity != Severity::Blocks);
    findings
}

/// What stops (or is worth saying about) a run of the resolved plan in `mode`.
pub fn evaluate(plan: &Plan, resolved: &ResolvedPlan, facts: &PlanFacts, mode: Mode) -> Readiness {
    let mut readiness = check_readiness(
        resolved,
        &facts.fleet,
        &facts.busy_servers,
        mode,
        plan.rpo_minutes,
    );
    let drill_subnet = match mode {
        Mode::Drill => plan.drill_subnet(),
        Mode::Recovery | Mode::Failback => None,
    };
    if mode == Mode::Drill {
        judge_drill_network(plan, facts, &mut readiness);
    }
    judge_launch_settings(plan, resolved, facts, mode, &mut readiness);
    judge_capacity(resolved, facts, drill_subnet, &mut readiness);
    for (i, wave) in plan.waves.iter().flatten().enumerate() {
        for (phase, hooks) in [("pre", &wave.hooks.pre), ("post", &wave.hooks.post)] {
            for (k, hook) in hooks.iter().enumerate() {
                let path = format!("waves[{i}].hooks.{phase}[{k}].lambda");
                if let Some(why) = facts.missing_hooks.get(&hook.lambda) {
                    readiness.blocking.push(Issue::new(
                        path,
                        format!(
                            "{}: {why}; deploy the function or change the plan",
                            hook.lambda
                        ),
                    ));
                } else if let Some(why) = facts.unchecked_hooks.get(&hook.lambda) {
                    readiness.warnings.push(Issue::new(
                        path,
                        format!("{} could not be checked: {why}", hook.lambda),
                    ));
                }
            }
        }
    }
    if let Some(roles) = &facts.service_roles {
        judge_service_roles(roles, &mut readiness);
    }
    judge_quotas(
        resolved,
        &facts.fleet,
        facts.busy_servers.len(),
        &facts.not_launching,
        &facts.quotas,
        mode,
        &mut readiness,
    );
    // A drill never touches DNS, but says what would stop a recovery's cutover.
    match mode {
        Mode::Recovery | Mode::Failback => readiness
            .blocking
            .extend(facts.dns_problems.iter().cloned()),
        Mode::Drill => readiness
            .warnings
            .extend(facts.dns_problems.iter().cloned()),
    }
    readiness.warnings.extend(drill_overdue(plan, facts));
    readiness
}

/// A drill's subnet exists and is isolated, or the drill says it is not.
fn judge_drill_network(plan: &Plan, facts: &PlanFacts, readiness: &mut Readiness) {
    let settings = plan.drill.clone().unwrap_or_default();
    let Some(subnet_id) = settings.subnet_id.clone() else {
        readiness
            .warnings
            .push(Issue::new("drill.subnet_id", NOT_ISOLATED));
        return;
    };
    match &facts.drill_routes {
        None => {}
        Some(Err(issues)) => readiness.blocking.extend(issues.iter().cloned()),
        Some(Ok(routes)) => {
            let (_, blocking) = judge_isolation(settings, subnet_id, routes.clone());
            readiness.blocking.extend(blocking);
        }
    }
}

/// Each server's launch template, and the subnet, groups and instance type of its
/// default version, where this mode's launch uses them.
fn judge_launch_settings(
    plan: &Plan,
    resolved: &ResolvedPlan,
    facts: &PlanFacts,
    mode: Mode,
    readiness: &mut Readiness,
) {
    let drill = plan.drill.clone().unwrap_or_default();
    let drill_subnet = (mode == Mode::Drill)
        .then_some(drill.subnet_id.as_deref())
        .flatten();
    for wave in &resolved.waves {
        for member in &wave.servers {
            let path = format!(
                "waves[{:?}].servers[{:?}]",
                wave.name,
                member.display_name()
            );
            let Some(launch) = facts.launch.get(&member.id) else {
                continue;
            };
            let (template_id, version, subnet_id, groups, instance_type) = match launch {
                LaunchFacts::Missing(why) => {
                    readiness.blocking.push(Issue::new(
                        path,
                        format!(
                            "{}: {why}; DRS cannot launch it: fix its launch settings in DRS",
                            member.id
                        ),
                    ));
                    continue;
                }
                LaunchFacts::Template {
                    template_id,
                    version,
                    subnet_id,
                    security_group_ids,
                    instance_type,
                } => (
                    template_id,
                    version,
                    subnet_id,
                    security_group_ids,
                    instance_type,
                ),
            };
            let of_template = format!("launch template {template_id} (default version {version})");
            let subnet = drill_subnet.or(subnet_id.as_deref());
            if facts.network_read {
                if drill_subnet.is_none()
                    && let Some(subnet) = subnet_id
                    && !facts.subnets.contains_key(subnet)
                {
                    readiness.blocking.push(Issue::new(
                        path.clone(),
                        format!("{of_template} launches into subnet {subnet}, which does not exist: give the template a subnet that exists"),
                    ));
                }
                // A drill with its own groups does not use the template's.
                let uses_template_groups =
                    drill_subnet.is_none() || drill.security_group_ids.is_empty();
                if uses_template_groups {
                    for group in groups
                        .iter()
                        .filter(|g| !facts.security_groups.contains(*g))
                    {
                        readiness.blocking.push(Issue::new(
                            path.clone(),
                            format!("{of_template} names security group {group}, which does not exist: give the template groups that exist"),
                        ));
                    }
                }
            }
            if let (Some(instance_type), Some(zone)) = (
                instance_type,
                subnet
                    .and_then(|s| facts.subnets.get(s))
                    .and_then(|s| s.availability_zone.as_ref()),
            ) && let Some(offered) = facts.offered_types.get(zone)
                && !offered.contains(instance_type)
            {
                readiness.blocking.push(Issue::new(
                    path.clone(),
                    format!("{of_template} asks for instance type {instance_type}, which {zone} does not offer: choose a type the zone offers"),
                ));
            }
            if subnet.is_none() {
                readiness.warnings.push(Issue::new(
                    path,
                    format!("{of_template} names no subnet: EC2 picks the default subnet of the default VPC"),
                ));
            }
        }
    }
}

/// Every instance needs an address in the subnet it launches into: a launch past the
/// last free one fails half way through a wave.
fn judge_capacity(
    resolved: &ResolvedPlan,
    facts: &PlanFacts,
    drill_subnet: Option<&str>,
    readiness: &mut Readiness,
) {
    let mut launching: BTreeMap<&str, u64> = BTreeMap::new();
    for member in resolved.waves.iter().flat_map(|w| w.servers.iter()) {
        if facts.not_launching.contains(&member.id) {
            continue;
        }
        let subnet = drill_subnet.or_else(|| match facts.launch.get(&member.id) {
            Some(LaunchFacts::Template { subnet_id, .. }) => subnet_id.as_deref(),
            _ => None,
        });
        if let Some(subnet) = subnet {
            *launching.entry(subnet).or_default() += 1;
        }
    }
    for (subnet, count) in launching {
        let Some(facts_of) = facts.subnets.get(subnet) else {
            continue;
        };
        let (field, freed) = match drill_subnet {
            Some(_) => ("drill.subnet_id".to_owned(), facts.freed_in_drill_subnet),
            None => (format!("subnet {subnet} (launch templates)"), 0),
        };
        readiness.blocking.extend(subnet_capacity_problem(
            &field,
            subnet,
            facts_of.free_addresses,
            freed,
            count,
        ));
    }
}

/// `drill.every_days` against the last successful drill.
fn drill_overdue(plan: &Plan, facts: &PlanFacts) -> Option<Issue> {
    let every = plan.drill.as_ref()?.every_days?;
    let last = facts.last_successful_drill?;
    let now = facts.now?;
    let message = match last {
        None => format!(
            "the plan asks for a drill every {every} days and has no successful drill on record: run `drplan start {} --mode drill`",
            plan.name
        ),
        Some(at) => {
            let days = now.duration_since(at).as_secs() / 86_400;
            if days < i64::from(every) {
                return None;
            }
            format!(
                "the last successful drill was {days} days ago ({at}); the plan asks for one every {every} days: run `drplan start {} --mode drill`",
                plan.name
            )
        }
    };
    Some(Issue::new("drill.every_days", message))
}

#[cfg(test)]
mod tests;
