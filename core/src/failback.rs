//! Failback readiness: whether a plan's recovered servers can go home now, checked before
//! any StartFailbackLaunch or recovery in the origin Region, so that a failback never
//! moves half a plan.
//!
//! DRS fails back two kinds of source, and each is ready in its own way:
//! - servers from outside AWS: a person boots the DRS Failback Client on the target
//!   machine; DRS replicates the recovery instance back to it, and its `failback.state`
//!   goes FAILBACK_NOT_STARTED → FAILBACK_IN_PROGRESS → FAILBACK_READY_FOR_LAUNCH. Only
//!   then may StartFailbackLaunch run.
//! - EC2 sources from another Region (`sourceCloudProperties.originRegion`):
//!   ReverseReplication makes a source server in the origin Region; a recovery there may
//!   run once that server's replication is CONTINUOUS.
//!
//! The facts come from DescribeRecoveryInstances and DescribeSourceServers (in both
//! Regions); translating them is the adapters' job.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::issue::Issue;
use crate::resolve::{ResolvedPlan, WaveServer};

pub mod origin;
pub mod run;

/// The failback state in which StartFailbackLaunch may run.
pub const READY_FOR_LAUNCH: &str = "FAILBACK_READY_FOR_LAUNCH";
/// The failback state before any Failback Client connected.
pub const NOT_STARTED: &str = "FAILBACK_NOT_STARTED";
/// The failback state while the Failback Client replicates.
pub const IN_PROGRESS: &str = "FAILBACK_IN_PROGRESS";
/// The failback state once StartFailbackLaunch brought the server home.
pub const COMPLETED: &str = "FAILBACK_COMPLETED";
/// The replication state reversed replication must reach.
pub const CONTINUOUS: &str = "CONTINUOUS";

/// What drplan knows about one source server of the plan when a failback is asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerFailbackFacts {
    pub source_server_id: String,
    /// `sourceCloudProperties.originRegion`: set for EC2 sources, which fail back by
    /// reversed replication; absent for sources outside AWS (Failback Client).
    pub origin_region: Option<String>,
    /// The server's recovery instance, if it has one.
    pub recovery_instance: Option<RecoveryInstanceFacts>,
    /// `dataReplicationInfo.dataReplicationState` of the reversed-direction source server
    /// (EC2 sources), once ReverseReplication has made one.
    pub reversed_replication_state: Option<String>,
    /// The reversed-direction source server's ID in the origin Region, once
    /// ReverseReplication has made one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reversed_source_server_id: Option<String>,
}

/// As much of a DescribeRecoveryInstances item as readiness needs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryInstanceFacts {
    pub recovery_instance_id: String,
    /// Drill instances are no recovery: nothing to bring home from them.
    pub is_drill: bool,
    /// `failback.state`; DRS leaves it out before anything happened.
    pub failback_state: Option<String>,
    /// `failback.failbackClientID`: set once a Failback Client connected.
    pub failback_client_id: Option<String>,
    /// `jobID`: the DRS job that launched it (its tags name the drplan run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
}

/// The outcome: any `blocking` issue refuses the failback; `skipped` names optional
/// servers with nothing to fail back (their recovery failed), which the failback leaves
/// out instead of refusing; `waiting` names EC2 sources whose reversed replication is
/// not (yet) CONTINUOUS: the failback starts it where it has not run, and launches
/// nothing until every one is CONTINUOUS.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailbackReadiness {
    pub blocking: Vec<Issue>,
    pub skipped: Vec<Issue>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waiting: Vec<Issue>,
}

impl FailbackReadiness {
    pub fn is_ready(&self) -> bool {
        self.blocking.is_empty()
    }

    /// What `drplan readiness PLAN --failback` prints: the verdict, then each server that
    /// blocks the failback and each one it would leave out, with why.
    pub fn to_text(&self, plan_name: &str) -> String {
        let mut text = if self.is_ready() {
            format!("plan {plan_name}: ready to fail back\n")
        } else {
            format!(
                "plan {plan_name}: NOT ready to fail back ({} blocking)\n",
                self.blocking.len()
            )
        };
        for (label, issues) in [
            ("BLOCKS", &self.blocking),
            ("waits for", &self.waiting),
            ("left out", &self.skipped),
        ] {
            for issue in issues {
                text.push_str(&format!("  {label}: {}: {}\n", issue.path, issue.message));
            }
        }
        text
    }
}

/// Checks every server of the resolved plan; each finding names the wave, the server and
/// the state it is in.
pub fn check_failback_readiness(
    plan_name: &str,
    resolved: &ResolvedPlan,
    facts: &[ServerFailbackFacts],
) -> FailbackReadiness {
    let by_id: HashMap<&str, &ServerFailbackFacts> = facts
        .iter()
        .map(|fact| (fact.source_server_id.as_str(), fact))
        .collect();
    let live_instance = |member: &WaveServer| {
        by_id
            .get(member.id.as_str())
            .and_then(|fact| fact.recovery_instance.as_ref())
            .filter(|instance| !instance.is_drill)
    };
    let mut readiness = FailbackReadiness::default();
    let servers = || {
        resolved
            .waves
            .iter()
            .flat_map(|wave| wave.servers.iter().map(move |member| (wave, member)))
    };
    if servers().all(|(_, member)| live_instance(member).is_none()) {
        readiness.blocking.push(Issue::new(
            "plan",
            format!(
                "plan {plan_name:?} has no live recovery: none of its {} servers has a \
                 recovery instance from a recovery (drill instances do not count); there is \
                 nothing to fail back",
                resolved.server_count()
            ),
        ));
        return readiness;
    }
    for (wave, member) in servers() {
        let path = format!(
            "waves[{:?}].servers[{:?}]",
            wave.name,
            member.display_name()
        );
        let fact = by_id.get(member.id.as_str()).copied();
        let Some(instance) = live_instance(member) else {
            let message = match fact.and_then(|fact| fact.recovery_instance.as_ref()) {
                Some(drill) => format!(
                    "source server {} has only drill instance {}, no recovery instance",
                    member.id, drill.recovery_instance_id
                ),
                None => format!("source server {} has no recovery instance", member.id),
            };
            let list = if member.optional {
                &mut readiness.skipped
            } else {
                &mut readiness.blocking
            };
            list.push(Issue::new(path, message));
            continue;
        };
        if instance.failback_state.as_deref() == Some(COMPLETED) {
            // An earlier failback brought it home: a failback started again after one that
            // failed part way brings the rest.
            readiness.skipped.push(Issue::new(
                path,
                format!(
                    "source server {} is home already (recovery instance {}: failback.state \
                     {COMPLETED}); nothing launches for it again",
                    member.id, instance.recovery_instance_id
                ),
            ));
            continue;
        }
        let origin_region = fact.and_then(|fact| fact.origin_region.as_deref());
        let (problem, list) = match origin_region {
            Some(region) => match reversed_replication_problem(
                region,
                fact.and_then(|fact| fact.reversed_replication_state.as_deref()),
            ) {
                Some(ReversedProblem::Waits(problem)) => (Some(problem), &mut readiness.waiting),
                Some(ReversedProblem::Blocks(problem)) => (Some(problem), &mut readiness.blocking),
                None => (None, &mut readiness.blocking),
            },
            None => (failback_client_problem(instance), &mut readiness.blocking),
        };
        if let Some(problem) = problem {
            list.push(Issue::new(
                path,
                format!(
                    "source server {} (recovery instance {}): {problem}",
                    member.id, instance.recovery_instance_id
                ),
            ));
        }
    }
    readiness
}

/// Where a failback brings the plan: home to machines outside AWS (`None`), or to the
/// one origin Region of its EC2 sources. A plan that mixes the two, or EC2 sources of
/// several Regions, fails back in parts (one plan per destination): refused here.
pub fn failback_destination(facts: &[ServerFailbackFacts]) -> Result<Option<String>, Issue> {
    // Servers an earlier failback brought home (FAILBACK_COMPLETED) go nowhere now.
    let recovered = facts.iter().filter(|fact| {
        fact.recovery_instance.as_ref().is_some_and(|instance| {
            !instance.is_drill && instance.failback_state.as_deref() != Some(COMPLETED)
        })
    });
    let mut regions: Vec<(&str, &str)> = Vec::new();
    let mut outside_aws: Vec<&str> = Vec::new();
    for fact in recovered {
        match fact.origin_region.as_deref() {
            Some(region) => regions.push((fact.source_server_id.as_str(), region)),
            None => outside_aws.push(fact.source_server_id.as_str()),
        }
    }
    let mut distinct: Vec<&str> = regions.iter().map(|(_, region)| *region).collect();
    distinct.sort_unstable();
    distinct.dedup();
    match (distinct.as_slice(), outside_aws.is_empty()) {
        ([], _) => Ok(None),
        ([region], true) => Ok(Some((*region).to_owned())),
        ([region], false) => Err(Issue::new(
            "servers",
            format!(
                "the plan mixes EC2 sources from {region} ({}) with servers outside AWS ({}): \
                 a failback goes to one place; fail each kind back with a plan of its own",
                regions
                    .iter()
                    .map(|(id, _)| *id)
                    .collect::<Vec<_>>()
                    .join(", "),
                outside_aws.join(", ")
            ),
        )),
        (several, _) => Err(Issue::new(
            "servers",
            format!(
                "the plan's EC2 sources come from several Regions ({}): a failback goes to one \
                 Region; fail each Region's servers back with a plan of their own",
                several.join(", ")
            ),
        )),
    }
}

/// Why a source outside AWS cannot fail back yet, if it cannot.
fn failback_client_problem(instance: &RecoveryInstanceFacts) -> Option<String> {
    let state = instance.failback_state.as_deref().unwrap_or(NOT_STARTED);
    match state {
        READY_FOR_LAUNCH => None,
        NOT_STARTED => Some(format!(
            "the DRS Failback Client has not connected (failback.state {state}); boot it on \
             the machine to fail back to"
        )),
        IN_PROGRESS if instance.failback_client_id.is_none() => Some(format!(
            "the DRS Failback Client has not connected (failback.state {state})"
        )),
        IN_PROGRESS => Some(format!(
            "the Failback Client {} is connected but its data is not yet in sync \
             (failback.state {state}, not {READY_FOR_LAUNCH})",
            instance.failback_client_id.as_deref().unwrap_or_default()
        )),
        other => Some(format!("failback.state is {other}, not {READY_FOR_LAUNCH}")),
    }
}

/// Replication states from which DRS does not get to CONTINUOUS by itself: a person
/// must act (restart or repair replication) before a failback can use the server.
pub const REPLICATION_NEEDS_A_PERSON: [&str; 4] = ["STALLED", "DISCONNECTED", "STOPPED", "PAUSED"];

/// Why an EC2 source cannot fail back to its origin Region yet.
enum ReversedProblem {
    /// The failback starts reversed replication, or waits for it, before anything launches.
    Waits(String),
    /// Reversed replication is in trouble: the failback is refused.
    Blocks(String),
}

/// Why an EC2 source cannot fail back to its origin Region yet, if it cannot.
fn reversed_replication_problem(
    origin_region: &str,
    state: Option<&str>,
) -> Option<ReversedProblem> {
    match state {
        Some(CONTINUOUS) => None,
        Some(state) if REPLICATION_NEEDS_A_PERSON.contains(&state) => {
            Some(ReversedProblem::Blocks(format!(
                "reversed replication to {origin_region} is {state}, not {CONTINUOUS}: \
                 repair it in the DRS console of {origin_region} first"
            )))
        }
        Some(state) => Some(ReversedProblem::Waits(format!(
            "reversed replication to {origin_region} is {state}, not {CONTINUOUS} yet: \
             the failback waits for it before anything launches"
        ))),
        None => Some(ReversedProblem::Waits(format!(
            "no reversed replication to {origin_region} yet: the failback starts it \
             (ReverseReplication) and waits until it is {CONTINUOUS} before anything launches"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolve::{ResolvedWave, WaveServer};

    fn plan(servers: &[(&str, &str, bool)]) -> ResolvedPlan {
        let mut waves: Vec<ResolvedWave> = Vec::new();
        for (wave, id, optional) in servers {
            let member = WaveServer {
                id: (*id).to_owned(),
                hostname: Some(format!("host-{id}")),
                optional: *optional,
            };
            match waves.iter_mut().find(|w| w.name == *wave) {
                Some(existing) => existing.servers.push(member),
                None => waves.push(ResolvedWave {
                    name: (*wave).to_owned(),
                    depends_on: Vec::new(),
                    servers: vec![member],
                }),
            }
        }
        let layers = vec![(0..waves.len()).collect()];
        ResolvedPlan { waves, layers }
    }

    fn outside_aws(id: &str, state: Option<&str>, client: Option<&str>) -> ServerFailbackFacts {
        ServerFailbackFacts {
            source_server_id: id.to_owned(),
            recovery_instance: Some(RecoveryInstanceFacts {
                recovery_instance_id: format!("i-{id}"),
                is_drill: false,
                failback_state: state.map(str::to_owned),
                failback_client_id: client.map(str::to_owned),
                job_id: None,
            }),
            ..Default::default()
        }
    }

    fn ec2(id: &str, reversed: Option<&str>) -> ServerFailbackFacts {
        ServerFailbackFacts {
            origin_region: Some("us-west-2".to_owned()),
            reversed_replication_state: reversed.map(str::to_owned),
            ..outside_aws(id, Some(NOT_STARTED), None)
        }
    }

    fn messages(issues: &[Issue]) -> Vec<String> {
        issues
            .iter()
            .map(|issue| format!("{}: {}", issue.path, issue.message))
            .collect()
    }

    #[test]
    fn nothing_recovered_is_refused_once_for_the_plan() {
        let resolved = plan(&[("db", "s-1", false), ("app", "s-2", false)]);
        let readiness = check_failback_readiness("shop", &resolved, &[]);
        assert!(!readiness.is_ready());
        assert_eq!(readiness.blocking.len(), 1);
        assert_eq!(readiness.blocking[0].path, "plan");
        assert!(readiness.blocking[0].message.contains("no live recovery"));
    }

    #[test]
    fn drill_instances_are_no_live_recovery() {
        let resolved = plan(&[("db", "s-1", false)]);
        let mut drilled = outside_aws("s-1", Some(READY_FOR_LAUNCH), Some("fbc-1"));
        if let Some(instance) = drilled.recovery_instance.as_mut() {
            instance.is_drill = true;
        }
        let readiness = check_failback_readiness("shop", &resolved, &[drilled]);
        assert_eq!(readiness.blocking.len(), 1);
        assert!(readiness.blocking[0].message.contains("no live recovery"));
    }

    #[test]
    fn a_server_an_earlier_failback_brought_home_is_left_out_not_refused() {
        let resolved = plan(&[("db", "s-1", false), ("db", "s-2", false)]);
        let facts = [
            outside_aws("s-1", Some(COMPLETED), Some("fbc-1")),
            outside_aws("s-2", Some(READY_FOR_LAUNCH), Some("fbc-2")),
        ];
        let readiness = check_failback_readiness("shop", &resolved, &facts);
        assert!(readiness.is_ready(), "{:?}", readiness.blocking);
        let left_out = messages(&readiness.skipped);
        assert_eq!(left_out.len(), 1);
        assert!(
            left_out[0].contains("s-1 is home already") && left_out[0].contains(COMPLETED),
            "{left_out:?}"
        );
        assert_eq!(
            run::home_already(&facts),
            ["s-1".to_owned()].into_iter().collect()
        );
    }

    #[test]
    fn every_server_ready_passes() {
        let resolved = plan(&[("db", "s-1", false), ("app", "s-2", false)]);
        let facts = [
            outside_aws("s-1", Some(READY_FOR_LAUNCH), Some("fbc-1")),
            ec2("s-2", Some(CONTINUOUS)),
        ];
        let readiness = check_failback_readiness("shop", &resolved, &facts);
        assert!(readiness.is_ready(), "{:?}", readiness.blocking);
        assert!(readiness.skipped.is_empty());
    }

    #[test]
    fn each_server_not_ready_is_named_with_its_state() {
        let resolved = plan(&[
            ("db", "s-1", false),
            ("db", "s-2", false),
            ("app", "s-3", false),
            ("app", "s-4", false),
            ("web", "s-5", false),
            ("web", "s-6", false),
        ]);
        let facts = [
            outside_aws("s-1", None, None),
            outside_aws("s-2", Some(IN_PROGRESS), Some("fbc-2")),
            outside_aws("s-3", Some("FAILBACK_ERROR"), Some("fbc-3")),
            ec2("s-4", Some("INITIAL_SYNC")),
            ec2("s-5", None),
            outside_aws("s-6", Some(READY_FOR_LAUNCH), Some("fbc-6")),
        ];
        let readiness = check_failback_readiness("shop", &resolved, &facts);
        let found = messages(&readiness.blocking);
        assert_eq!(found.len(), 3, "{found:#?}");
        assert!(found[0].starts_with("waves[\"db\"].servers[\"host-s-1\"]"));
        assert!(found[0].contains("Failback Client has not connected"));
        assert!(found[0].contains("FAILBACK_NOT_STARTED"));
        assert!(found[1].contains("fbc-2 is connected but its data is not yet in sync"));
        assert!(found[1].contains("FAILBACK_IN_PROGRESS"));
        assert!(found[2].contains("failback.state is FAILBACK_ERROR"));
        // EC2 sources: the failback starts reversed replication and waits for it.
        let waiting = messages(&readiness.waiting);
        assert_eq!(waiting.len(), 2, "{waiting:#?}");
        assert!(waiting[0].contains("reversed replication to us-west-2 is INITIAL_SYNC"));
        assert!(waiting[1].starts_with("waves[\"web\"].servers[\"host-s-5\"]"));
        assert!(waiting[1].contains("the failback starts it (ReverseReplication)"));
        assert!(
            found
                .iter()
                .chain(&waiting)
                .all(|line| !line.contains("s-6"))
        );
    }

    #[test]
    fn reversed_replication_that_needs_a_person_blocks() {
        let resolved = plan(&[("db", "s-1", false), ("db", "s-2", false)]);
        let facts = [ec2("s-1", Some("STALLED")), ec2("s-2", Some(CONTINUOUS))];
        let readiness = check_failback_readiness("shop", &resolved, &facts);
        let found = messages(&readiness.blocking);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(found[0].contains("host-s-1"));
        assert!(found[0].contains("reversed replication to us-west-2 is STALLED"));
        assert!(readiness.waiting.is_empty());
        let text = readiness.to_text("shop");
        assert!(
            text.contains("NOT ready to fail back (1 blocking)"),
            "{text}"
        );
    }

    #[test]
    fn a_failback_goes_to_one_place() {
        assert_eq!(
            failback_destination(&[ec2("s-1", None), ec2("s-2", Some(CONTINUOUS))]),
            Ok(Some("us-west-2".to_owned()))
        );
        assert_eq!(
            failback_destination(&[outside_aws("s-1", None, None)]),
            Ok(None)
        );
        let mixed =
            failback_destination(&[ec2("s-1", None), outside_aws("s-2", None, None)]).unwrap_err();
        assert!(
            mixed
                .message
                .contains("mixes EC2 sources from us-west-2 (s-1) with servers outside AWS (s-2)"),
            "{}",
            mixed.message
        );
        let mut elsewhere = ec2("s-3", None);
        elsewhere.origin_region = Some("eu-west-1".into());
        let several = failback_destination(&[ec2("s-1", None), elsewhere]).unwrap_err();
        assert!(
            several
                .message
                .contains("several Regions (eu-west-1, us-west-2)"),
            "{}",
            several.message
        );
        // Servers without a live recovery do not count.
        let mut drill_only = outside_aws("s-4", None, None);
        if let Some(instance) = drill_only.recovery_instance.as_mut() {
            instance.is_drill = true;
        }
        assert_eq!(
            failback_destination(&[ec2("s-1", None), drill_only]),
            Ok(Some("us-west-2".to_owned()))
        );
        // Nor do servers an earlier failback brought home.
        assert_eq!(
            failback_destination(&[ec2("s-1", None), outside_aws("s-5", Some(COMPLETED), None)]),
            Ok(Some("us-west-2".to_owned()))
        );
    }

    #[test]
    fn a_required_server_without_recovery_instance_blocks_an_optional_one_is_skipped() {
        let resolved = plan(&[
            ("db", "s-1", false),
            ("db", "s-2", false),
            ("batch", "s-3", true),
        ]);
        let facts = [outside_aws("s-1", Some(READY_FOR_LAUNCH), Some("fbc-1"))];
        let readiness = check_failback_readiness("shop", &resolved, &facts);
        let blocking = messages(&readiness.blocking);
        assert_eq!(blocking.len(), 1, "{blocking:#?}");
        assert!(blocking[0].contains("host-s-2"));
        assert!(blocking[0].contains("has no recovery instance"));
        let skipped = messages(&readiness.skipped);
        assert_eq!(skipped.len(), 1);
        assert!(skipped[0].contains("host-s-3"));
    }

    #[test]
    fn the_text_names_the_verdict_and_every_server_with_why() {
        let resolved = plan(&[("db", "s-1", false), ("db", "s-2", true)]);
        let facts = [
            outside_aws("s-1", Some(NOT_STARTED), None),
            ServerFailbackFacts {
                source_server_id: "s-2".into(),
                ..ServerFailbackFacts::default()
            },
        ];
        let text = check_failback_readiness("home", &resolved, &facts).to_text("home");
        assert!(
            text.starts_with("plan home: NOT ready to fail back (1 blocking)\n"),
            "{text}"
        );
        assert!(
            text.contains("  BLOCKS: waves[\"db\"].servers[\"host-s-1\"]: source server s-1"),
            "{text}"
        );
        assert!(text.contains("  left out: waves[\"db\"].servers[\"host-s-2\"]: source server s-2 has no recovery instance"), "{text}");
        let ready = check_failback_readiness(
            "home",
            &plan(&[("db", "s-1", false)]),
            &[outside_aws("s-1", Some(READY_FOR_LAUNCH), Some("client-1"))],
        );
        assert_eq!(ready.to_text("home"), "plan home: ready to fail back\n");
    }

    #[test]
    fn in_progress_without_a_client_reads_as_not_connected() {
        let resolved = plan(&[("db", "s-1", false)]);
        let facts = [outside_aws("s-1", Some(IN_PROGRESS), None)];
        let readiness = check_failback_readiness("shop", &resolved, &facts);
        assert_eq!(readiness.blocking.len(), 1);
        assert!(
            readiness.blocking[0]
                .message
                .contains("Failback Client has not connected")
        );
    }
}
