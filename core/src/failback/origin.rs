//! A failback of EC2 sources to their origin Region, before its first wave.
//!
//! ReverseReplication on each recovery instance makes a source server in the origin
//! Region that replicates the instance back; once every one is CONTINUOUS, the failback
//! is a recovery there of those reversed servers. Nothing launches before: a reversed
//! server in a state a person must repair refuses the failback, and one still syncing
//! is waited for (until the run's deadline).
//!
//! Pure: the DRS calls are in `drplan_aws::failback_origin`.

use std::collections::HashMap;

use super::run::FailbackRecord;
use super::{CONTINUOUS, REPLICATION_NEEDS_A_PERSON};
use crate::issue::Issue;
use crate::resolve::ResolvedPlan;

/// The servers still to reverse: (source server, its recovery instance) of every server
/// the failback brings home that has no reversed server yet, in the record's order.
pub fn to_reverse(record: &FailbackRecord) -> Vec<(String, String)> {
    record
        .recovery_instances
        .iter()
        .filter(|(server, _)| {
            !record.reversed.contains_key(*server) && !record.home_already.contains(*server)
        })
        .map(|(server, instance)| (server.clone(), instance.clone()))
        .collect()
}

/// Where reversed replication stands for the plan's servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reversal {
    /// Every reversed server is CONTINUOUS: the waves may launch.
    Ready,
    /// Some still sync (each named with its state): asked again after a wait.
    Syncing(Vec<Issue>),
    /// Some are in a state that needs a person (or are missing): the failback is refused.
    Blocked(Vec<Issue>),
}

/// Judges reversed replication of every server of `resolved` (by its original ID) from
/// `states`: the reversed servers' `dataReplicationState`, by reversed server ID.
pub fn judge_reversal(
    resolved: &ResolvedPlan,
    record: &FailbackRecord,
    states: &HashMap<String, String>,
) -> Reversal {
    let region = record
        .origin_region
        .as_deref()
        .unwrap_or("the origin Region");
    let mut syncing = Vec::new();
    let mut blocked = Vec::new();
    for wave in &resolved.waves {
        for member in &wave.servers {
            let original = record.original_of(&member.id);
            let path = format!(
                "waves[{:?}].servers[{:?}]",
                wave.name,
                member.display_name()
            );
            let Some(reversed) = record.reversed.get(original) else {
                blocked.push(Issue::new(
                    path,
                    format!("source server {original} has no reversed server in {region}"),
                ));
                continue;
            };
            match states.get(reversed).map(String::as_str) {
                Some(CONTINUOUS) => {}
                Some(state) if REPLICATION_NEEDS_A_PERSON.contains(&state) => {
                    blocked.push(Issue::new(
                        path,
                        format!(
                            "source server {original}: reversed replication to {region} \
                             (source server {reversed}) is {state}, not {CONTINUOUS}: repair \
                             it in the DRS console of {region}, then start the failback again"
                        ),
                    ));
                }
                Some(state) => syncing.push(Issue::new(
                    path,
                    format!(
                        "source server {original}: reversed replication to {region} (source \
                         server {reversed}) is {state}, not {CONTINUOUS} yet"
                    ),
                )),
                None => blocked.push(Issue::new(
                    path,
                    format!(
                        "source server {original}: DRS in {region} does not know its \
                         reversed server {reversed}"
                    ),
                )),
            }
        }
    }
    if !blocked.is_empty() {
        Reversal::Blocked(blocked)
    } else if !syncing.is_empty() {
        Reversal::Syncing(syncing)
    } else {
        Reversal::Ready
    }
}

/// The run's plan as a recovery in the origin Region: each server's ID becomes its
/// reversed server's (what StartRecovery launches there), hostname and waves unchanged.
/// Idempotent: a server already named by its reversed ID stays. An error names the first
/// server without a reversed server.
pub fn launch_reversed(resolved: &mut ResolvedPlan, record: &FailbackRecord) -> Result<(), String> {
    for wave in &mut resolved.waves {
        for member in &mut wave.servers {
            if record
                .reversed
                .values()
                .any(|reversed| *reversed == member.id)
            {
                continue;
            }
            let reversed = record.reversed.get(&member.id).ok_or_else(|| {
                format!(
                    "source server {} has no reversed server in the failback's record",
                    member.id
                )
            })?;
            member.id = reversed.clone();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolve::{ResolvedWave, WaveServer};

    fn plan() -> ResolvedPlan {
        let server = |id: &str| WaveServer {
            id: id.into(),
            hostname: Some(format!("host-{id}")),
            optional: false,
        };
        ResolvedPlan {
            waves: vec![
                ResolvedWave {
                    name: "db".into(),
                    depends_on: Vec::new(),
                    servers: vec![server("s-1")],
                },
                ResolvedWave {
                    name: "web".into(),
                    depends_on: vec![0],
                    servers: vec![server("s-2"), server("s-3")],
                },
            ],
            layers: vec![vec![0], vec![1]],
        }
    }

    fn record(reversed: &[(&str, &str)]) -> FailbackRecord {
        FailbackRecord {
            recovery_instances: [("s-1", "i-1"), ("s-2", "i-2"), ("s-3", "i-3")]
                .into_iter()
                .map(|(s, i)| (s.to_owned(), i.to_owned()))
                .collect(),
            origin_region: Some("us-west-2".into()),
            reversed: reversed
                .iter()
                .map(|(s, r)| ((*s).to_owned(), (*r).to_owned()))
                .collect(),
            ..FailbackRecord::default()
        }
    }

    fn states(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(id, state)| ((*id).to_owned(), (*state).to_owned()))
            .collect()
    }

    #[test]
    fn only_servers_without_a_reversed_server_are_reversed() {
        let mut record = record(&[("s-1", "r-1")]);
        record.home_already.insert("s-3".into());
        assert_eq!(
            to_reverse(&record),
            vec![("s-2".to_owned(), "i-2".to_owned())]
        );
    }

    #[test]
    fn launches_once_every_reversed_server_is_continuous() {
        let record = record(&[("s-1", "r-1"), ("s-2", "r-2"), ("s-3", "r-3")]);
        let all = states(&[
            ("r-1", CONTINUOUS),
            ("r-2", CONTINUOUS),
            ("r-3", CONTINUOUS),
        ]);
        assert_eq!(judge_reversal(&plan(), &record, &all), Reversal::Ready);

        let one_syncing = states(&[
            ("r-1", CONTINUOUS),
            ("r-2", "INITIAL_SYNC"),
            ("r-3", CONTINUOUS),
        ]);
        let Reversal::Syncing(waiting) = judge_reversal(&plan(), &record, &one_syncing) else {
            panic!("INITIAL_SYNC is waited for");
        };
        assert_eq!(waiting.len(), 1);
        assert!(waiting[0].path.contains("host-s-2"));
        assert!(
            waiting[0]
                .message
                .contains("(source server r-2) is INITIAL_SYNC")
        );
    }

    #[test]
    fn a_stalled_or_missing_reversed_server_refuses_the_failback() {
        let record = record(&[("s-1", "r-1"), ("s-2", "r-2")]);
        let found = states(&[("r-1", "STALLED"), ("r-2", "INITIAL_SYNC")]);
        let Reversal::Blocked(issues) = judge_reversal(&plan(), &record, &found) else {
            panic!("STALLED and a missing reversed server refuse");
        };
        assert_eq!(issues.len(), 2, "{issues:#?}");
        assert!(
            issues[0]
                .message
                .contains("is STALLED, not CONTINUOUS: repair it")
        );
        assert!(
            issues[1]
                .message
                .contains("s-3 has no reversed server in us-west-2")
        );
    }

    #[test]
    fn the_plan_launches_the_reversed_servers_and_a_retry_changes_nothing() {
        let record = record(&[("s-1", "r-1"), ("s-2", "r-2"), ("s-3", "r-3")]);
        let mut resolved = plan();
        launch_reversed(&mut resolved, &record).unwrap();
        let ids: Vec<&str> = resolved
            .waves
            .iter()
            .flat_map(|w| w.servers.iter().map(|s| s.id.as_str()))
            .collect();
        assert_eq!(ids, ["r-1", "r-2", "r-3"]);
        assert_eq!(
            resolved.waves[1].servers[0].hostname.as_deref(),
            Some("host-s-2")
        );
        let again = resolved.clone();
        launch_reversed(&mut resolved, &record).unwrap();
        assert_eq!(resolved, again);
        // And the judge reads the plan by its reversed IDs as well.
        let all = states(&[
            ("r-1", CONTINUOUS),
            ("r-2", CONTINUOUS),
            ("r-3", CONTINUOUS),
        ]);
        assert_eq!(judge_reversal(&resolved, &record, &all), Reversal::Ready);

        let mut missing = plan();
        let partial = self::record(&[("s-1", "r-1")]);
        assert_eq!(
            launch_reversed(&mut missing, &partial),
            Err("source server s-2 has no reversed server in the failback's record".into())
        );
    }
}
