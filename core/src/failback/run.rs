//! What a failback run (`mode: failback`) carries from its discover step to the later
//! ones, and the DNS change that brings traffic home.
//!
//! Discover finds, for each server, the live recovery instance to fail back, and the
//! recovery runs that launched them (by the `drplan:execution` tag of their DRS jobs).
//! Those runs' DNS records hold what each record answered before the recovery: the
//! failback writes those values back, in one batch, and keeps the recovery's values
//! for its own rollback.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::ServerFailbackFacts;
use crate::dns::{CONTROL_PLANE_PATH, DATA_PLANE_PATH, DnsCutover, RecordChange, RecordSet};
use crate::dns_failover::AlarmFlip;
use crate::issue::Issue;

/// Discover's findings for the failback steps (`runs/PLAN/EXECUTION/failback.json`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailbackRecord {
    /// Source server → the recovery instance the failback launches from (and, after a
    /// successful failback, terminates).
    pub recovery_instances: BTreeMap<String, String>,
    /// The recovery runs that launched those instances, oldest first.
    pub recovered_by: Vec<String>,
    /// Servers an earlier failback brought home (FAILBACK_COMPLETED): this run launches
    /// nothing for them, and terminates their recovery instances with the others.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub home_already: BTreeSet<String>,
    /// The DNS change back to the values the records held before the recovery, when the
    /// recovery changed any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<DnsCutover>,
    /// EC2 sources: the origin Region the failback brings them back to (by a recovery
    /// there of the reversed servers); absent for servers outside AWS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin_region: Option<String>,
    /// EC2 sources: source server → the reversed-direction source server in the origin
    /// Region that replicates its recovery instance back (what launches there). Filled
    /// in before the first wave, as ReverseReplication answers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub reversed: BTreeMap<String, String>,
    /// EC2 sources brought home: source server → the source server (ARN) that
    /// ReverseReplication on its new instance in the origin Region answered, which
    /// protects it in the original direction again. Filled in by the cleanup.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub reprotected: BTreeMap<String, String>,
}

impl FailbackRecord {
    /// The source server a server of the failback's waves stands for: the reversed
    /// server's original in a failback to the origin Region, else the server itself.
    pub fn original_of<'a>(&'a self, server: &'a str) -> &'a str {
        self.reversed
            .iter()
            .find(|(_, reversed)| reversed.as_str() == server)
            .map_or(server, |(original, _)| original.as_str())
    }

    /// The recovery instances of `source_server_ids`, in their order; an error names
    /// the first server the record does not know.
    pub fn instances_of<'a>(
        &self,
        source_server_ids: impl IntoIterator<Item = &'a str>,
    ) -> Result<Vec<String>, String> {
        source_server_ids
            .into_iter()
            .map(|id| {
                self.recovery_instances.get(id).cloned().ok_or_else(|| {
                    format!("source server {id} has no recovery instance in the failback's record")
                })
            })
            .collect()
    }
}

/// Each server's live (non-drill) recovery instance, from the failback facts.
pub fn live_recovery_instances(facts: &[ServerFailbackFacts]) -> BTreeMap<String, String> {
    facts
        .iter()
        .filter_map(|fact| {
            let instance = fact.recovery_instance.as_ref().filter(|i| !i.is_drill)?;
            Some((
                fact.source_server_id.clone(),
                instance.recovery_instance_id.clone(),
            ))
        })
        .collect()
}

/// Of the live recovery instances' servers, those an earlier failback brought home.
pub fn home_already(facts: &[ServerFailbackFacts]) -> BTreeSet<String> {
    facts
        .iter()
        .filter(|fact| {
            fact.recovery_instance.as_ref().is_some_and(|instance| {
                !instance.is_drill && instance.failback_state.as_deref() == Some(super::COMPLETED)
            })
        })
        .map(|fact| fact.source_server_id.clone())
        .collect()
}

/// The DRS jobs that launched the live recovery instances (to find the runs by their tags).
pub fn recovery_job_ids(facts: &[ServerFailbackFacts]) -> Vec<String> {
    let ids: BTreeSet<String> = facts
        .iter()
        .filter_map(|fact| fact.recovery_instance.as_ref())
        .filter(|instance| !instance.is_drill)
        .filter_map(|instance| instance.job_id.clone())
        .collect();
    ids.into_iter().collect()
}

/// The failback's DNS change from the DNS records of the recovery runs (oldest first):
/// every record a recovery changed goes back to what it held before the first of them,
/// and a record a recovery created is deleted. The values the failback replaces (the
/// last recovery's) are kept as its rollback. `None` when no recovery changed DNS.
///
/// A recovery that cut over on the data plane (flipped the failover alarm to ALARM) is
/// failed back by flipping the same alarm to OK: Route 53 answers the PRIMARY records
/// again, with no Route 53 call. `None` when a person already flipped it back
/// (`drplan rollback-dns`).
pub fn failback_dns(recoveries: &[(String, DnsCutover)]) -> Result<Option<DnsCutover>, Issue> {
    // Only changes that were submitted (or alarms that were flipped) touched DNS.
    let submitted: Vec<&DnsCutover> = recoveries
        .iter()
        .map(|(_, cutover)| cutover)
        .filter(|c| c.change_id.is_some() || c.alarm.is_some())
        .collect();
    let Some(last) = submitted.last() else {
        return Ok(None);
    };
    if submitted
        .iter()
        .any(|c| c.alarm.is_some() != last.alarm.is_some())
    {
        return Err(Issue::new(
            "dns.mode",
            "the recovery runs cut DNS over both through Route 53 and by the failover alarm: put the records back by hand (`drplan rollback-dns` of each recovery, newest first), then start the failback",
        ));
    }
    if let Some(flip) = &last.alarm {
        if flip.rolled_back_at.is_some() {
            return Ok(None);
        }
        return Ok(Some(DnsCutover {
            zone_id: last.zone_id.clone(),
            changes: last
                .changes
                .iter()
                .filter_map(|c| {
                    Some(RecordChange {
                        new: c.previous.clone()?,
                        previous: Some(c.new.clone()),
                    })
                })
                .collect(),
            deletes: Vec::new(),
            change_id: None,
            submitted_at: None,
            insync_at: None,
            path: DATA_PLANE_PATH.into(),
            alarm: Some(AlarmFlip {
                state: None,
                rolled_back_at: None,
                ..flip.clone()
            }),
            unchanged: Vec::new(),
        }));
    }
    if let Some(other) = submitted.iter().find(|c| c.zone_id != last.zone_id) {
        return Err(Issue::new(
            "dns.zone",
            format!(
                "the recovery runs changed records in two hosted zones ({} and {}); a failback changes one zone in one batch",
                other.zone_id, last.zone_id
            ),
        ));
    }
    // (name, type) → (before the first recovery, set by the last one).
    let mut records: BTreeMap<(String, String), (Option<RecordSet>, RecordSet)> = BTreeMap::new();
    for cutover in &submitted {
        for change in &cutover.changes {
            let key = (change.new.name.clone(), change.new.record_type.clone());
            records
                .entry(key)
                .and_modify(|(_, now)| *now = change.new.clone())
                .or_insert_with(|| (change.previous.clone(), change.new.clone()));
        }
    }
    let mut changes = Vec::new();
    let mut deletes = Vec::new();
    for (before, now) in records.into_values() {
        match before {
            Some(before) => changes.push(RecordChange {
                new: before,
                previous: Some(now),
            }),
            None => deletes.push(now),
        }
    }
    Ok(Some(DnsCutover {
        zone_id: last.zone_id.clone(),
        changes,
        deletes,
        change_id: None,
        submitted_at: None,
        insync_at: None,
        path: CONTROL_PLANE_PATH.into(),
        alarm: None,
        unchanged: Vec::new(),
    }))
}

/// The report's account of a failback: per server, whether it came home, what became of
/// its recovery instance, and what a person must still do to protect it again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailbackSummary {
    /// The recovery runs whose instances this failback brought home.
    pub recovered_by: Vec<String>,
    pub servers: Vec<ServerFailback>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerFailback {
    pub source_server_id: String,
    pub hostname: Option<String>,
    pub recovery_instance_id: String,
    /// DRS reported its failback launch LAUNCHED.
    pub failed_back: bool,
    /// `terminated`, or `kept` (with why, in `to_do`).
    pub recovery_instance: String,
    /// Whether DRS protects the server again (replicates the machine to AWS); `None`:
    /// drplan does not check it yet, and `to_do` says what a person checks.
    pub protected_again: Option<bool>,
    pub to_do: String,
}

/// What became of each server: `launched` are the source servers whose failback launch
/// DRS reported LAUNCHED, `terminated` whether the run's cleanup terminated their
/// recovery instances (only after a successful failback).
pub fn summarize(
    record: &FailbackRecord,
    hostnames: &BTreeMap<String, Option<String>>,
    launched: &BTreeSet<String>,
    terminated: bool,
) -> FailbackSummary {
    let servers = record
        .recovery_instances
        .iter()
        .map(|(server, instance)| {
            let failed_back = launched.contains(server) || record.home_already.contains(server);
            let gone = failed_back && terminated;
            let (protected_again, to_do) = match &record.origin_region {
                None => (None, outside_aws_to_do(failed_back, instance)),
                Some(region) => {
                    let protected_by = record.reprotected.get(server);
                    (
                        failed_back.then_some(protected_by.is_some()),
                        origin_region_to_do(failed_back, instance, region, protected_by),
                    )
                }
            };
            ServerFailback {
                source_server_id: server.clone(),
                hostname: hostnames.get(server).cloned().flatten(),
                recovery_instance_id: instance.clone(),
                failed_back,
                recovery_instance: if gone { "terminated" } else { "kept" }.to_owned(),
                protected_again,
                to_do,
            }
        })
        .collect();
    FailbackSummary {
        recovered_by: record.recovered_by.clone(),
        servers,
    }
}

/// What a person still does for a server outside AWS.
fn outside_aws_to_do(failed_back: bool, instance: &str) -> String {
    if failed_back {
        "protect it again: make sure DRS replicates the machine to AWS again (its source \
         server CONTINUOUS in the DRS console); if it does not, install the AWS Replication \
         Agent on the machine"
            .to_owned()
    } else {
        format!(
            "it still runs on recovery instance {instance} in AWS: fix its failback \
             (StopFailback, boot the Failback Client again) and start the failback again"
        )
    }
}

/// What a person still does for an EC2 source failed back to its origin Region.
fn origin_region_to_do(
    failed_back: bool,
    instance: &str,
    region: &str,
    protected_by: Option<&String>,
) -> String {
    match (failed_back, protected_by) {
        (true, Some(source_server)) => format!(
            "nothing: ReverseReplication of its instance in {region} protects it again \
             through source server {source_server} (watch it reach CONTINUOUS)"
        ),
        (true, None) => format!(
            "protect it again: start reversed replication of its recovery instance in \
             {region} (DRS console of {region}, or ReverseReplication)"
        ),
        (false, _) => format!(
            "it still runs on recovery instance {instance}: see why its launch in {region} \
             failed (the job log in the DRS console of {region}) and start the failback again"
        ),
    }
}

/// The report's word for [`ServerFailback::protected_again`].
pub fn protected_word(protected: Option<bool>) -> &'static str {
    match protected {
        Some(true) => "yes",
        Some(false) => "no",
        None => "not checked",
    }
}

impl FailbackSummary {
    /// The report's "Failback" section.
    pub fn to_markdown(&self) -> String {
        let mut md = format!(
            "\n## Failback\n\nBrings home the recovery of {}.\n\n| Server | Recovery instance | Home | Recovery instance now | Protected again | To do |\n|---|---|---|---|---|---|\n",
            self.recovered_by
                .iter()
                .map(|run| format!("`{run}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        for server in &self.servers {
            md.push_str(&format!(
                "| {} | `{}` | {} | {} | {} | {} |\n",
                server
                    .hostname
                    .as_deref()
                    .unwrap_or(&server.source_server_id),
                server.recovery_instance_id,
                if server.failed_back { "yes" } else { "**no**" },
                server.recovery_instance,
                protected_word(server.protected_again),
                server.to_do
            ));
        }
        md
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str, value: &str) -> RecordSet {
        RecordSet {
            name: name.into(),
            record_type: "A".into(),
            ttl: 60,
            values: vec![value.into()],
            alias: None,
        }
    }

    fn cutover(changes: Vec<(RecordSet, Option<RecordSet>)>, submitted: bool) -> DnsCutover {
        DnsCutover {
            zone_id: "Z1".into(),
            changes: changes
                .into_iter()
                .map(|(new, previous)| RecordChange { new, previous })
                .collect(),
            deletes: Vec::new(),
            change_id: submitted.then(|| "C1".into()),
            submitted_at: None,
            insync_at: None,
            path: CONTROL_PLANE_PATH.into(),
            alarm: None,
            unchanged: Vec::new(),
        }
    }

    #[test]
    fn records_go_back_to_their_values_before_the_first_recovery() {
        let first = cutover(
            vec![
                (
                    record("app.", "10.9.0.1"),
                    Some(record("app.", "192.168.1.10")),
                ),
                (record("new.", "10.9.0.2"), None),
            ],
            true,
        );
        // A second recovery (replace_live_recovery) changed app. again.
        let second = cutover(
            vec![(record("app.", "10.9.0.7"), Some(record("app.", "10.9.0.1")))],
            true,
        );
        let back = failback_dns(&[("r1".into(), first), ("r2".into(), second)])
            .unwrap()
            .unwrap();
        assert_eq!(back.changes.len(), 1);
        assert_eq!(back.changes[0].new, record("app.", "192.168.1.10"));
        assert_eq!(back.changes[0].previous, Some(record("app.", "10.9.0.7")));
        assert_eq!(back.deletes, vec![record("new.", "10.9.0.2")]);
        // Its rollback returns to the recovery's values.
        let rollback = back.rollback_changes();
        assert_eq!(rollback.len(), 2);
    }

    #[test]
    fn an_ec2_source_is_protected_again_once_reverse_replication_answered() {
        let record = FailbackRecord {
            recovery_instances: [("s-1", "i-1"), ("s-2", "i-2"), ("s-3", "i-3")]
                .into_iter()
                .map(|(s, i)| (s.to_owned(), i.to_owned()))
                .collect(),
            origin_region: Some("us-west-2".into()),
            reversed: [("s-1", "s-91"), ("s-2", "s-92"), ("s-3", "s-93")]
                .into_iter()
                .map(|(s, r)| (s.to_owned(), r.to_owned()))
                .collect(),
            reprotected: [(
                "s-1".to_owned(),
                "arn:aws:drs:us-east-1:1:source-server/s-1".to_owned(),
            )]
            .into(),
            ..Default::default()
        };
        assert_eq!(record.original_of("s-92"), "s-2");
        assert_eq!(record.original_of("s-2"), "s-2");
        let launched: BTreeSet<String> = ["s-1".to_owned(), "s-2".to_owned()].into();
        let summary = summarize(&record, &BTreeMap::new(), &launched, true);
        assert_eq!(summary.servers[0].protected_again, Some(true));
        assert!(
            summary.servers[0]
                .to_do
                .starts_with("nothing: ReverseReplication")
        );
        assert_eq!(summary.servers[1].protected_again, Some(false));
        assert!(
            summary.servers[1]
                .to_do
                .contains("start reversed replication of its recovery instance in us-west-2")
        );
        assert_eq!(summary.servers[2].protected_again, None);
        assert_eq!(summary.servers[2].recovery_instance, "kept");
        assert!(
            summary.servers[2]
                .to_do
                .contains("its launch in us-west-2 failed")
        );
    }

    #[test]
    fn the_summary_says_what_came_home_and_what_a_person_still_does() {
        let record = FailbackRecord {
            recovery_instances: [("s-1", "i-1"), ("s-2", "i-2")]
                .into_iter()
                .map(|(s, i)| (s.to_owned(), i.to_owned()))
                .collect(),
            recovered_by: vec!["r1".into()],
            home_already: BTreeSet::new(),
            dns: None,
            ..Default::default()
        };
        let hostnames = [("s-1".to_owned(), Some("db-01".to_owned()))].into();
        let launched: BTreeSet<String> = ["s-1".to_owned()].into();
        let summary = summarize(&record, &hostnames, &launched, true);
        assert_eq!(summary.servers[0].recovery_instance, "terminated");
        assert!(
            summary.servers[0]
                .to_do
                .contains("install the AWS Replication Agent")
        );
        assert!(!summary.servers[1].failed_back);
        assert_eq!(summary.servers[1].recovery_instance, "kept");
        assert!(
            summary.servers[1]
                .to_do
                .contains("still runs on recovery instance i-2")
        );
        let md = summary.to_markdown();
        assert!(
            md.contains("| db-01 | `i-1` | yes | terminated | not checked |"),
            "{md}"
        );
        assert!(
            md.contains("| s-2 | `i-2` | **no** | kept | not checked |"),
            "{md}"
        );
        // After a failed failback nothing was terminated.
        let failed = summarize(&record, &hostnames, &launched, false);
        assert!(failed.servers.iter().all(|s| s.recovery_instance == "kept"));
    }

    #[test]
    fn a_recovery_that_never_submitted_its_change_leaves_dns_alone() {
        let unsent = cutover(
            vec![(
                record("app.", "10.9.0.1"),
                Some(record("app.", "192.168.1.10")),
            )],
            false,
        );
        assert_eq!(failback_dns(&[("r1".into(), unsent)]).unwrap(), None);
        assert_eq!(failback_dns(&[]).unwrap(), None);
    }

    #[test]
    fn a_data_plane_recovery_fails_back_by_flipping_its_alarm_back() {
        let mut flipped = cutover(
            vec![(
                record("app.", "10.9.0.1"),
                Some(record("app.", "192.168.1.10")),
            )],
            false,
        );
        flipped.path = DATA_PLANE_PATH.into();
        flipped.alarm = serde_json::from_value(serde_json::json!({
            "alarm": {"name": "a", "region": "us-west-2"},
            "health_check_id": "h",
            "flipped_at": "2026-12-01T00:00:00Z",
            "state": "ALARM"
        }))
        .ok();
        assert!(flipped.alarm.is_some(), "the test's alarm flip must parse");
        let back = failback_dns(&[("r1".into(), flipped.clone())])
            .unwrap()
            .unwrap();
        assert_eq!(back.path, DATA_PLANE_PATH);
        assert_eq!(
            back.alarm.as_ref().map(|f| f.alarm.name.as_str()),
            Some("a")
        );
        assert_eq!(back.alarm.as_ref().and_then(|f| f.state.clone()), None);
        assert_eq!(back.changes[0].new, record("app.", "192.168.1.10"));
        // Both paths among the recovery runs: refused.
        let both = [
            ("r0".to_owned(), cutover(vec![], true)),
            ("r1".to_owned(), flipped.clone()),
        ];
        assert!(failback_dns(&both).is_err());
        // Flipped back by a person already: nothing left to do.
        if let Some(flip) = flipped.alarm.as_mut() {
            flip.rolled_back_at = Some("2026-12-01T01:00:00Z".parse().unwrap());
        }
        assert_eq!(failback_dns(&[("r1".into(), flipped)]).unwrap(), None);
    }
}
