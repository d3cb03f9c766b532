//! Waking a wave that waits for its launch when DRS says its servers are done.
//!
//! Between polls, the recovery state machine parks the wave on a task token
//! (`lambda:invoke.waitForTaskToken`, timing out after the poll delay). The park is
//! recorded once per wait and job, with the servers of that job still launching. A
//! `DRS Source Server Launch Result` event for one of them costs the trigger one read of
//! that record and one DescribeJobs of the job: when DRS reports every server the park
//! waits for settled, the trigger sends the token back and the wave polls at once
//! instead of sleeping out its delay. Nothing is written per server and nothing is
//! listed. Events are best effort: a lost one only means the park times out and the
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

/// Wake the park once DRS reports every server it waits for settled in its job (or the
/// job completed: nothing more happens in it either way).
pub fn should_wake(parked: &ParkedWave, job: &JobView) -> bool {
    job.is_completed()
        || parked.pending.iter().all(|server| {
            job.servers
                .iter()
                .find(|s| &s.source_server_id == server)
                .is_some_and(|s| is_settled(s.launch_status.as_deref()))
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

    #[test]
    fn a_park_wakes_when_drs_reports_all_its_pending_servers_settled() {
        let parked = ParkedWave {
            task_token: "token".into(),
            execution_name: "run".into(),
            wave: "db".into(),
            pending: vec!["s-1".into(), "s-2".into()],
            parked_at: Timestamp::UNIX_EPOCH,
        };
        let one_left = job(
            "STARTED",
            &[
                ("s-1", Some("LAUNCHED")),
                ("s-2", Some("IN_PROGRESS")),
                ("s-3", Some("LAUNCHED")),
            ],
        );
        assert!(!should_wake(&parked, &one_left));
        let not_listed = job("STARTED", &[("s-1", Some("LAUNCHED"))]);
        assert!(!should_wake(&parked, &not_listed));
        let settled = job(
            "STARTED",
            &[
                ("s-1", Some("FAILED")),
                ("s-2", Some("LAUNCHED")),
                ("s-3", None),
            ],
        );
        assert!(should_wake(&parked, &settled));
        assert!(should_wake(&parked, &job("COMPLETED", &[("s-1", None)])));
    }

    #[test]
    fn only_drs_job_ids_become_keys() {
        assert!(is_job_id("drsjob-0a1b2c3d4e5f67890"));
        for bad in ["", "drsjob-", "job-1", "drsjob-../x", "drsjob-a/b"] {
            assert!(!is_job_id(bad), "{bad}");
        }
    }
}
