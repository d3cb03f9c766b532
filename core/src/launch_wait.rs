//! Waking a wave that waits for its launch when DRS says its servers are done.
//!
//! Between polls, the recovery state machine parks the wave on a task token
//! (`lambda:invoke.waitForTaskToken`, timing out after the poll delay). The park is
//! recorded once per wait and job, with the servers of that job still launching and the
//! wave's other jobs. A `DRS Source Server Launch Result` event for one of them costs the
//! trigger one read of that record and one DescribeJobs of the wave's jobs: when DRS
//! reports every server the wave waits for settled, the trigger sends the token back and
//! the wave polls at once instead of sleeping out its delay. So a wave of 200 servers (two
//! jobs of 100) is woken once, like a wave of 10, and costs the same state transitions;
//! only a wave with servers still waiting for DRS capacity is woken by the end of any of
//! its jobs, which may free that capacity, and a failed launch wakes the wave at once, so
//! that a failed critical server fails the wave without waiting for the rest. Nothing is
//! written per server and nothing is listed. Events are best effort: a lost one only means the park times out and the
//! poll happens on schedule. The event that wakes the wave removes the park first, so
//! later events cost one read; a second send of the token (two last events at once) is
//! refused by Step Functions and ignored.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::launch::{JobView, WaveProgress};

/// A wave parked on a task token, for one of its jobs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParkedWave {
    pub task_token: String,
    pub execution_name: String,
    pub wave: String,
    /// The job's servers that were still launching when the wave parked.
    pub pending: Vec<String>,
    pub parked_at: Timestamp,
    /// The wave's other jobs, with their servers still launching, that the wave also
    /// waits for before it is woken. Empty when some of the wave's servers wait for DRS
    /// capacity: then the end of any one job wakes it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub with_jobs: BTreeMap<String, Vec<String>>,
}

/// The park records of one wait, by job: one for each job with servers still launching
/// (`pending`, by job). Each also names the wave's other jobs unless
/// `waiting_for_capacity` (some servers of the wave are in no job yet).
pub fn parks_for_wave(
    pending: &BTreeMap<String, Vec<String>>,
    waiting_for_capacity: bool,
    task_token: &str,
    execution_name: &str,
    wave: &str,
    parked_at: Timestamp,
) -> Vec<(String, ParkedWave)> {
    pending
        .iter()
        .map(|(job_id, servers)| {
            let with_jobs = if waiting_for_capacity {
                BTreeMap::new()
            } else {
                pending
                    .iter()
                    .filter(|(other, _)| *other != job_id)
                    .map(|(other, servers)| (other.clone(), servers.clone()))
                    .collect()
            };
            let park = ParkedWave {
                task_token: task_token.to_owned(),
                execution_name: execution_name.to_owned(),
                wave: wave.to_owned(),
                pending: servers.clone(),
                parked_at,
                with_jobs,
            };
            (job_id.clone(), park)
        })
        .collect()
}

/// Whether `job_id` is a DRS job ID (`drsjob-` and letters or digits): it becomes part
/// of an object key, so nothing else is accepted.
pub fn is_job_id(job_id: &str) -> bool {
    job_id.strip_prefix("drsjob-").is_some_and(|rest| {
        !rest.is_empty() && rest.len() <= 64 && rest.chars().all(|c| c.is_ascii_alphanumeric())
    })
}

/// The servers (by job) a poll left still launching: what a park waits for.
pub fn pending_by_job(progress: &WaveProgress) -> BTreeMap<String, Vec<String>> {
    let mut pending: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for server in progress.servers.iter().filter(|s| !s.state.is_final()) {
        if let Some(job_id) = &server.job_id {
            pending
                .entry(job_id.clone())
                .or_default()
                .push(server.source_server_id.clone());
        }
    }
    pending
}

/// A launch status after which DRS does no more for the server in this job.
fn is_settled(launch_status: Option<&str>) -> bool {
    matches!(launch_status, Some("LAUNCHED" | "FAILED" | "TERMINATED"))
}

/// Whether DRS reports every one of `pending` settled in `job` (or the job completed:
/// nothing more happens in it either way).
fn job_settled(pending: &[String], job: &JobView) -> bool {
    job.is_completed()
        || pending.iter().all(|server| {
            job.servers
                .iter()
                .find(|s| &s.source_server_id == server)
                .is_some_and(|s| is_settled(s.launch_status.as_deref()))
        })
}

/// Wake the park of `job_id` once DRS, in its one DescribeJobs answer `jobs`, reports
/// every server the park waits for settled: those of its own job and of its `with_jobs`.
/// A job DRS does not list counts as settled: the poll after the wake finds out why.
pub fn should_wake(parked: &ParkedWave, job_id: &str, jobs: &[JobView]) -> bool {
    std::iter::once((job_id, parked.pending.as_slice()))
        .chain(
            parked
                .with_jobs
                .iter()
                .map(|(id, servers)| (id.as_str(), servers.as_slice())),
        )
        .all(|(id, pending)| {
            jobs.iter()
                .find(|job| job.job_id == id)
                .is_none_or(|job| job_settled(pending, job))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::launch::JobServer;

    fn job(status: &str, servers: &[(&str, Option<&str>)]) -> JobView {
        JobView {
            job_id: "drsjob-1".into(),
            status: status.into(),
            servers: servers
                .iter()
                .map(|(id, launch)| JobServer {
                    source_server_id: (*id).into(),
                    launch_status: launch.map(Into::into),
                    recovery_instance_id: None,
                })
                .collect(),
        }
    }

    fn parked(pending: &[&str]) -> ParkedWave {
        ParkedWave {
            task_token: "token".into(),
            execution_name: "run".into(),
            wave: "db".into(),
            pending: pending.iter().map(|s| (*s).into()).collect(),
            parked_at: Timestamp::UNIX_EPOCH,
            with_jobs: BTreeMap::new(),
        }
    }

    fn with_id(mut job: JobView, id: &str) -> JobView {
        job.job_id = id.into();
        job
    }

    #[test]
    fn a_park_wakes_when_drs_reports_all_its_pending_servers_settled() {
        let parked = parked(&["s-1", "s-2"]);
        let one_left = job(
            "STARTED",
            &[
                ("s-1", Some("LAUNCHED")),
                ("s-2", Some("IN_PROGRESS")),
                ("s-3", Some("LAUNCHED")),
            ],
        );
        assert!(!should_wake(&parked, "drsjob-1", &[one_left]));
        let not_listed = job("STARTED", &[("s-1", Some("LAUNCHED"))]);
        assert!(!should_wake(&parked, "drsjob-1", &[not_listed]));
        let settled = job(
            "STARTED",
            &[
                ("s-1", Some("FAILED")),
                ("s-2", Some("LAUNCHED")),
                ("s-3", None),
            ],
        );
        assert!(should_wake(&parked, "drsjob-1", &[settled]));
        let completed = job("COMPLETED", &[("s-1", None)]);
        assert!(should_wake(&parked, "drsjob-1", &[completed]));
    }

    #[test]
    fn a_wave_of_two_jobs_is_woken_once_when_both_settled() {
        let pending = BTreeMap::from([
            ("drsjob-a".to_owned(), vec!["s-1".to_owned()]),
            ("drsjob-b".to_owned(), vec!["s-2".to_owned()]),
        ]);
        let parks = parks_for_wave(&pending, false, "t", "run", "db", Timestamp::UNIX_EPOCH);
        assert_eq!(parks.len(), 2);
        let (job_a, park_a) = &parks[0];
        assert_eq!(job_a, "drsjob-a");
        assert_eq!(park_a.pending, vec!["s-1".to_owned()]);
        assert_eq!(
            park_a.with_jobs,
            BTreeMap::from([("drsjob-b".to_owned(), vec!["s-2".to_owned()])])
        );
        let a_done = with_id(job("STARTED", &[("s-1", Some("LAUNCHED"))]), "drsjob-a");
        let b_running = with_id(job("STARTED", &[("s-2", Some("IN_PROGRESS"))]), "drsjob-b");
        let b_done = with_id(job("STARTED", &[("s-2", Some("LAUNCHED"))]), "drsjob-b");
        assert!(!should_wake(park_a, job_a, &[a_done.clone(), b_running]));
        assert!(should_wake(park_a, job_a, &[a_done, b_done]));
    }

    #[test]
    fn servers_waiting_for_capacity_let_any_job_wake_the_wave() {
        let pending = BTreeMap::from([
            ("drsjob-a".to_owned(), vec!["s-1".to_owned()]),
            ("drsjob-b".to_owned(), vec!["s-2".to_owned()]),
        ]);
        let parks = parks_for_wave(&pending, true, "t", "run", "db", Timestamp::UNIX_EPOCH);
        assert!(parks.iter().all(|(_, park)| park.with_jobs.is_empty()));
        let a_done = with_id(job("COMPLETED", &[("s-1", Some("LAUNCHED"))]), "drsjob-a");
        assert!(should_wake(&parks[0].1, "drsjob-a", &[a_done]));
    }

    #[test]
    fn a_park_record_without_other_jobs_reads_as_before() {
        let text = r#"{"task_token":"t","execution_name":"run","wave":"db","pending":["s-1"],"parked_at":"1970-01-01T00:00:00Z"}"#;
        let park: ParkedWave = serde_json::from_str(text).expect("an older park record");
        assert!(park.with_jobs.is_empty());
        assert_eq!(serde_json::to_string(&park).expect("json"), text);
    }

    #[test]
    fn only_drs_job_ids_become_keys() {
        assert!(is_job_id("drsjob-0a1b2c3d4e5f67890"));
        for bad in ["", "drsjob-", "job-1", "drsjob-../x", "drsjob-a/b"] {
            assert!(!is_job_id(bad), "{bad}");
        }
    }
}
