//! Waking a wave that waits for its launch when DRS says its servers are done.
//!
//! Between polls, the recovery state machine parks the wave on a task token
//! (`lambda:invoke.waitForTaskToken`, timing out after the poll delay). The parked
//! wave is recorded per DRS job with the servers of that job still launching. Each
//! `DRS Source Server Launch Result` event marks its server settled; when every server
//! a park waits for is settled, the trigger sends the token back and the wave polls at
//! once instead of sleeping out its delay. Events are best effort: a lost one only
//! means the park times out and the poll happens on schedule. A park is woken once,
//! and only when a whole job's pending servers are done, so wake-ups grow with jobs,
//! not with servers.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::contract::keys::settled_prefix;
use crate::launch::WaveProgress;

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

/// The servers whose markers are among `keys` (a listing of [`settled_prefix`]).
pub fn settled_servers(job_id: &str, keys: &[String]) -> BTreeSet<String> {
    let prefix = settled_prefix(job_id);
    keys.iter()
        .filter_map(|key| key.strip_prefix(&prefix))
        .map(str::to_owned)
        .collect()
}

/// Wake the park once every server it waits for has settled.
pub fn should_wake(parked: &ParkedWave, settled: &BTreeSet<String>) -> bool {
    parked.pending.iter().all(|server| settled.contains(server))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::keys::settled_key;

    #[test]
    fn a_park_wakes_when_all_its_pending_servers_settled() {
        let parked = ParkedWave {
            task_token: "token".into(),
            execution_name: "run".into(),
            wave: "db".into(),
            pending: vec!["s-1".into(), "s-2".into()],
            parked_at: Timestamp::UNIX_EPOCH,
        };
        let keys = vec![settled_key("drsjob-1", "s-1")];
        assert!(!should_wake(&parked, &settled_servers("drsjob-1", &keys)));
        let keys = vec![
            settled_key("drsjob-1", "s-1"),
            settled_key("drsjob-1", "s-2"),
            settled_key("drsjob-2", "s-3"),
        ];
        assert!(should_wake(&parked, &settled_servers("drsjob-1", &keys)));
    }

    #[test]
    fn only_drs_job_ids_become_keys() {
        assert!(is_job_id("drsjob-0a1b2c3d4e5f67890"));
        for bad in ["", "drsjob-", "job-1", "drsjob-../x", "drsjob-a/b"] {
            assert!(!is_job_id(bad), "{bad}");
        }
    }
}
