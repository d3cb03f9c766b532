//! Readiness: whether the plan's servers can be launched now, checked before any
//! StartRecovery so that a run never launches half a plan.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::duration::parse_iso8601_duration;
use crate::issue::Issue;
use crate::plan::Mode;
use crate::resolve::{ResolvedPlan, SourceServer};

/// Replication states in which DRS has no complete copy to launch from.
const NO_DATA_YET: &[&str] = &["INITIATING", "INITIAL_SYNC", "PENDING_SNAPSHOT_SHIPPING"];

/// What stops the run, and what the report should mention.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Readiness {
    pub blocking: Vec<Issue>,
    pub warnings: Vec<Issue>,
}

/// How many issues of one list a state payload or an error message carries at most; the
/// rest are counted, and all of them are in the run's readiness record
/// ([`crate::contract::RunRecords::readiness`]) and the report.
pub const ISSUES_IN_STATE: usize = 10;

/// The first [`ISSUES_IN_STATE`] of `issues`, for a state payload.
pub fn sample(issues: &[Issue]) -> Vec<Issue> {
    issues.iter().take(ISSUES_IN_STATE).cloned().collect()
}

/// `issues` led by one that says where every one of them is, when there are more than
/// [`ISSUES_IN_STATE`]: an error message lists only the first few.
pub fn with_pointer(mut issues: Vec<Issue>, everything_at: &str) -> Vec<Issue> {
    if issues.len() > ISSUES_IN_STATE {
        let pointer = Issue::new(
            "readiness",
            format!(
                "all {} problems are in {everything_at} and in the run's report",
                issues.len()
            ),
        );
        issues.insert(0, pointer);
    }
    issues
}

/// Checks every server of the resolved plan:
/// - no server may be in an active DRS job (StartRecovery would be refused);
/// - a drill needs healthy (CONTINUOUS) replication: drilling stale data proves little;
/// - a recovery accepts stalled or disconnected replication, because the source
///   Region being down is exactly when recoveries run, but refuses servers that never
///   finished their initial sync;
/// - replication lag over the RPO is a warning, for the report: refusing to recover
///   would lose more than the lag does.
pub fn check_readiness(
    resolved: &ResolvedPlan,
    fleet: &[SourceServer],
    busy_servers: &HashSet<String>,
    mode: Mode,
    rpo_minutes: Option<u32>,
) -> Readiness {
    let by_id: HashMap<&str, &SourceServer> = fleet.iter().map(|s| (s.id.as_str(), s)).collect();
    let mut readiness = Readiness::default();
    for wave in &resolved.waves {
        for member in &wave.servers {
            let path = format!(
                "waves[{:?}].servers[{:?}]",
                wave.name,
                member.display_name()
            );
            let issue = |message: String| Issue::new(path.clone(), message);
            let Some(server) = by_id.get(member.id.as_str()) else {
                readiness.blocking.push(issue(format!(
                    "source server {} is no longer known to DRS",
                    member.id
                )));
                continue;
            };
            if busy_servers.contains(&server.id) {
                readiness.blocking.push(issue(format!(
                    "{} is already in an active DRS job; wait for it to end or terminate it",
                    server.id
                )));
            }
            let state = server.replication_state.as_deref().unwrap_or("UNKNOWN");
            if NO_DATA_YET.contains(&state) {
                readiness.blocking.push(issue(format!(
                    "{}: replication is {state}; DRS has no complete copy to launch yet",
                    server.id
                )));
            } else if state != "CONTINUOUS" {
                let message = format!("{}: replication is {state}, not CONTINUOUS", server.id);
                match mode {
                    Mode::Drill => readiness
                        .blocking
                        .push(issue(format!("{message}; fix replication before drilling"))),
                    Mode::Recovery | Mode::Failback => readiness.warnings.push(issue(format!(
                        "{message}; recovering from the last point DRS has"
                    ))),
                }
            }
            if let (Some(rpo), Some(lag)) = (rpo_minutes, server.lag_duration.as_deref()) {
                match parse_iso8601_duration(lag) {
                    Some(lag_time) if lag_time.as_secs() > u64::from(rpo) * 60 => {
                        readiness.warnings.push(issue(format!(
                            "{}: replication lag {lag} exceeds the RPO of {rpo} min",
                            server.id
                        )))
                    }
                    Some(_) => {}
                    None => readiness.warnings.push(issue(format!(
                        "{}: replication lag {lag:?} is not an ISO-8601 duration",
                        server.id
                    ))),
                }
            }
        }
    }
    readiness
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolve::{ResolvedWave, WaveServer};

    fn fleet_server(id: &str, state: &str, lag: &str) -> SourceServer {
        SourceServer {
            id: id.into(),
            arn: None,
            hostname: Some(format!("host-{id}")),
            tags: Default::default(),
            replication_state: Some(state.into()),
            lag_duration: Some(lag.into()),
            replication_direction: None,
        }
    }

    fn plan_of(ids: &[&str]) -> ResolvedPlan {
        ResolvedPlan {
            waves: vec![ResolvedWave {
                name: "db".into(),
                depends_on: vec![],
                servers: ids
                    .iter()
                    .map(|id| WaveServer {
                        id: (*id).into(),
                        hostname: Some(format!("host-{id}")),
                        optional: false,
                    })
                    .collect(),
            }],
            layers: vec![vec![0]],
        }
    }

    #[test]
    fn drills_need_continuous_replication_recoveries_do_not() {
        let fleet = [fleet_server("s-1", "STALLED", "PT0S")];
        let plan = plan_of(&["s-1"]);
        let drill = check_readiness(&plan, &fleet, &HashSet::new(), Mode::Drill, None);
        assert_eq!(drill.blocking.len(), 1);
        assert_eq!(
            drill.blocking[0].path,
            "waves[\"db\"].servers[\"host-s-1\"]"
        );
        assert!(drill.blocking[0].message.contains("STALLED"));
        let recovery = check_readiness(&plan, &fleet, &HashSet::new(), Mode::Recovery, None);
        assert!(recovery.blocking.is_empty());
        assert_eq!(recovery.warnings.len(), 1);
    }

    #[test]
    fn busy_and_unsynced_servers_block_every_mode() {
        let fleet = [
            fleet_server("s-1", "CONTINUOUS", "PT0S"),
            fleet_server("s-2", "INITIAL_SYNC", "PT0S"),
        ];
        let busy: HashSet<String> = ["s-1".to_owned()].into();
        let plan = plan_of(&["s-1", "s-2", "s-3"]);
        let readiness = check_readiness(&plan, &fleet, &busy, Mode::Recovery, None);
        let messages: Vec<&str> = readiness
            .blocking
            .iter()
            .map(|i| i.message.as_str())
            .collect();
        assert_eq!(messages.len(), 3, "{messages:?}");
        assert!(messages[0].contains("already in an active DRS job"));
        assert!(messages[1].contains("INITIAL_SYNC"));
        assert!(messages[2].contains("no longer known"));
    }

    #[test]
    fn lag_over_the_rpo_is_a_warning() {
        let fleet = [
            fleet_server("s-1", "CONTINUOUS", "PT6M"),
            fleet_server("s-2", "CONTINUOUS", "PT4M"),
        ];
        let plan = plan_of(&["s-1", "s-2"]);
        let readiness = check_readiness(&plan, &fleet, &HashSet::new(), Mode::Drill, Some(5));
        assert!(readiness.blocking.is_empty());
        assert_eq!(readiness.warnings.len(), 1);
        assert!(
            readiness.warnings[0]
                .message
                .contains("PT6M exceeds the RPO of 5 min")
        );
    }
}
