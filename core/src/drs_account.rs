//! What the account's DRS needs besides the plan's own servers: the IAM roles DRS
//! creates when it is initialized in a Region, and its service quotas against the plan's
//! waves. Pure: `drplan_aws::readiness` reads the roles; the quotas are the run's.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::issue::Issue;
use crate::plan::Mode;
use crate::quota::{Quotas, plan_launch_batches};
use crate::readiness::Readiness;
use crate::resolve::{ResolvedPlan, SourceServer};

/// What a missing DRS role breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleUse {
    /// Launching recovery instances, in drills and recoveries alike: a run is refused.
    Launch,
    /// Replication or failback: runs go ahead, and the finding is a warning.
    Protection,
}

/// The roles DRS's initialization creates in every Region it is used in (DRS user guide,
/// "Elastic Disaster Recovery initialization and permissions"), with what each is for.
/// `AWSElasticDisasterRecoveryRecoveryInstanceWithLaunchActionsRole` is left out: only
/// post-launch actions use it.
pub const DRS_SERVICE_ROLES: &[(&str, RoleUse, &str)] = &[
    (
        "AWSServiceRoleForElasticDisasterRecovery",
        RoleUse::Launch,
        "the service-linked role DRS acts with",
    ),
    (
        "AWSElasticDisasterRecoveryConversionServerRole",
        RoleUse::Launch,
        "the conversion servers that prepare each launch",
    ),
    (
        "AWSElasticDisasterRecoveryRecoveryInstanceRole",
        RoleUse::Launch,
        "the instance profile of recovery instances",
    ),
    (
        "AWSElasticDisasterRecoveryReplicationServerRole",
        RoleUse::Protection,
        "the replication servers of the staging area",
    ),
    (
        "AWSElasticDisasterRecoveryAgentRole",
        RoleUse::Protection,
        "the replication agents on source servers",
    ),
    (
        "AWSElasticDisasterRecoveryFailbackRole",
        RoleUse::Protection,
        "failback replication",
    ),
];

/// The DRS roles as IAM describes them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceRoleFacts {
    /// Roles of [`DRS_SERVICE_ROLES`] that IAM does not know.
    pub missing: BTreeSet<String>,
    /// Roles IAM would not describe, with why (e.g. access denied): not judged.
    pub unreadable: BTreeMap<String, String>,
}

/// DRS's roles: a missing launch role refuses every run, others are warnings; a role that
/// could not be read is said, not guessed.
pub fn judge_service_roles(roles: &ServiceRoleFacts, readiness: &mut Readiness) {
    for (name, role_use, what) in DRS_SERVICE_ROLES {
        if roles.missing.contains(*name) {
            let issue = Issue::new(
                format!("drs.service_roles[{name:?}]"),
                format!(
                    "IAM role {name} ({what}) does not exist in this account: initialize DRS in this Region again (the DRS console's \"Initialize\", or InitializeService), which creates it"
                ),
            );
            match role_use {
                RoleUse::Launch => readiness.blocking.push(issue),
                RoleUse::Protection => readiness.warnings.push(issue),
            }
        } else if let Some(why) = roles.unreadable.get(*name) {
            readiness.warnings.push(Issue::new(
                format!("drs.service_roles[{name:?}]"),
                format!("IAM role {name} could not be checked: {why}"),
            ));
        }
    }
}

/// Replication states that do not count against the replicating-servers quota.
const NOT_REPLICATING: &[&str] = &["STOPPED", "DISCONNECTED"];

/// DRS's quotas against the plan: servers replicating in the account, and each wave
/// against the servers DRS takes in active jobs and the jobs it runs at once. A wave
/// larger than those still launches, in rounds that each wait for the one before, which
/// the RTO pays for: a warning that says how many rounds.
pub fn judge_quotas(
    resolved: &ResolvedPlan,
    fleet: &[SourceServer],
    busy_servers: usize,
    not_launching: &BTreeSet<String>,
    quotas: &Quotas,
    mode: Mode,
    readiness: &mut Readiness,
) {
    if quotas.check().is_err() {
        return;
    }
    let replicating = fleet
        .iter()
        .filter(|s| !s.is_failback())
        .filter(|s| {
            s.replication_state
                .as_deref()
                .is_some_and(|state| !NOT_REPLICATING.contains(&state))
        })
        .count();
    if replicating > quotas.max_replicating_servers {
        readiness.warnings.push(Issue::new(
            "quotas.max_replicating_servers",
            format!(
                "{replicating} source servers replicate in this account and Region, over DRS's quota of {}: servers past it cannot replicate; ask for a quota increase or move servers to a staging account",
                quotas.max_replicating_servers
            ),
        ));
    }
    for wave in &resolved.waves {
        let launching: Vec<&str> = wave
            .servers
            .iter()
            .filter(|m| !not_launching.contains(&m.id))
            .map(|m| m.id.as_str())
            .collect();
        let Ok(batches) = plan_launch_batches(&launching, quotas) else {
            continue;
        };
        let path = format!("waves[{:?}]", wave.name);
        if batches.len() > 1 {
            readiness.warnings.push(Issue::new(
                path,
                format!(
                    "a {} launches {} servers in this wave, more than DRS runs at once ({} servers in active jobs, {} jobs of at most {}): it launches in {} rounds, each waiting for the one before; split the wave or ask for higher DRS quotas",
                    mode.as_str(),
                    launching.len(),
                    quotas.max_servers_in_active_jobs,
                    quotas.max_concurrent_jobs,
                    quotas.max_servers_per_job,
                    batches.len()
                ),
            ));
        } else if busy_servers > 0
            && launching.len() + busy_servers > quotas.max_servers_in_active_jobs
        {
            readiness.warnings.push(Issue::new(
                path,
                format!(
                    "other DRS jobs hold {busy_servers} servers now; with this wave's {} that is over the {} servers DRS takes in active jobs: part of the wave waits for those jobs to end",
                    launching.len(),
                    quotas.max_servers_in_active_jobs
                ),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolve::{ResolvedWave, WaveServer};

    fn wave(name: &str, count: usize) -> ResolvedWave {
        ResolvedWave {
            name: name.to_owned(),
            depends_on: Vec::new(),
            servers: (0..count)
                .map(|i| WaveServer {
                    id: format!("s-{name}{i:05}"),
                    hostname: None,
                    optional: false,
                })
                .collect(),
        }
    }

    fn plan(waves: Vec<ResolvedWave>) -> ResolvedPlan {
        ResolvedPlan {
            layers: vec![(0..waves.len()).collect()],
            waves,
        }
    }

    fn replicating(id: String, state: &str) -> SourceServer {
        SourceServer {
            id,
            arn: None,
            hostname: None,
            tags: BTreeMap::new(),
            replication_state: Some(state.to_owned()),
            lag_duration: None,
            replication_direction: None,
        }
    }

    #[test]
    fn a_missing_launch_role_blocks_and_a_missing_protection_role_warns() {
        let roles = ServiceRoleFacts {
            missing: [
                "AWSElasticDisasterRecoveryConversionServerRole".to_owned(),
                "AWSElasticDisasterRecoveryFailbackRole".to_owned(),
            ]
            .into(),
            unreadable: [(
                "AWSElasticDisasterRecoveryAgentRole".to_owned(),
                "AccessDenied".to_owned(),
            )]
            .into(),
        };
        let mut readiness = Readiness::default();
        judge_service_roles(&roles, &mut readiness);
        assert_eq!(readiness.blocking.len(), 1);
        assert_eq!(
            readiness.blocking[0].path,
            "drs.service_roles[\"AWSElasticDisasterRecoveryConversionServerRole\"]"
        );
        assert!(readiness.blocking[0].message.contains("InitializeService"));
        let warned: Vec<&str> = readiness.warnings.iter().map(|i| i.path.as_str()).collect();
        assert_eq!(
            warned,
            [
                "drs.service_roles[\"AWSElasticDisasterRecoveryAgentRole\"]",
                "drs.service_roles[\"AWSElasticDisasterRecoveryFailbackRole\"]"
            ]
        );
        assert!(readiness.warnings[0].message.contains("AccessDenied"));
    }

    #[test]
    fn a_wave_past_the_active_jobs_quota_warns_with_its_rounds() {
        let resolved = plan(vec![wave("small", 100), wave("large", 1200)]);
        let mut readiness = Readiness::default();
        judge_quotas(
            &resolved,
            &[],
            0,
            &BTreeSet::new(),
            &Quotas::default(),
            Mode::Recovery,
            &mut readiness,
        );
        assert!(readiness.blocking.is_empty());
        assert_eq!(readiness.warnings.len(), 1, "{:?}", readiness.warnings);
        let warning = &readiness.warnings[0];
        assert_eq!(warning.path, "waves[\"large\"]");
        assert!(
            warning.message.contains("1200 servers"),
            "{}",
            warning.message
        );
        assert!(
            warning.message.contains("in 3 rounds"),
            "{}",
            warning.message
        );
    }

    #[test]
    fn servers_held_by_other_jobs_and_replication_past_the_quota_warn() {
        let resolved = plan(vec![wave("app", 300)]);
        // 302 servers, one of them stopped: 301 replicate.
        let fleet: Vec<SourceServer> = (0..302)
            .map(|i| {
                replicating(
                    format!("s-{i:017}"),
                    if i == 0 { "STOPPED" } else { "CONTINUOUS" },
                )
            })
            .collect();
        let mut readiness = Readiness::default();
        judge_quotas(
            &resolved,
            &fleet,
            250,
            &BTreeSet::new(),
            &Quotas::default(),
            Mode::Drill,
            &mut readiness,
        );
        let paths: Vec<&str> = readiness.warnings.iter().map(|i| i.path.as_str()).collect();
        assert_eq!(paths, ["quotas.max_replicating_servers", "waves[\"app\"]"]);
        assert!(
            readiness.warnings[0]
                .message
                .starts_with("301 source servers")
        );
        assert!(readiness.warnings[1].message.contains("hold 250 servers"));

        // Within every quota: nothing to say.
        let mut quiet = Readiness::default();
        judge_quotas(
            &resolved,
            &fleet[..300],
            0,
            &BTreeSet::new(),
            &Quotas::default(),
            Mode::Drill,
            &mut quiet,
        );
        assert_eq!(quiet, Readiness::default());
    }
}
