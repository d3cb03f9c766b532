//! Deciding each server's launch outcome from what DRS reports: the job's
//! `participatingServers[].launchStatus` and the job log. A server counts as recovered
//! only when DRS says LAUNCHED; a job that is COMPLETED proves nothing by itself (DRS
//! completes jobs whose servers all failed).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::contract::WaveRef;
use crate::resolve::WaveServer;

/// A DRS launch job, as much as drplan needs (DescribeJobs item).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobView {
    pub job_id: String,
    /// PENDING, STARTED or COMPLETED.
    pub status: String,
    pub servers: Vec<JobServer>,
}

impl JobView {
    pub fn is_completed(&self) -> bool {
        self.status == "COMPLETED"
    }
}

/// One `participatingServers` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobServer {
    pub source_server_id: String,
    /// PENDING, IN_PROGRESS, LAUNCHED, FAILED or TERMINATED; absent early in a job.
    pub launch_status: Option<String>,
    pub recovery_instance_id: Option<String>,
}

/// One job log item (DescribeJobLogItems).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobLogEntry {
    pub job_id: String,
    /// ISO-8601 timestamp, as DRS gives it.
    pub time: String,
    /// JOB_START, SNAPSHOT_START, CONVERSION_END, LAUNCH_FAILED, ...
    pub event: String,
    pub source_server_id: Option<String>,
    pub target_instance_id: Option<String>,
    pub raw_error: Option<String>,
}

/// Where a server is in its launch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ServerState {
    /// Not yet in a job DRS reports, or the job has not reached it.
    Pending,
    InProgress,
    Launched,
    Failed,
}

impl ServerState {
    pub fn is_final(self) -> bool {
        matches!(self, Self::Launched | Self::Failed)
    }
}

/// One server's outcome in a wave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerOutcome {
    pub source_server_id: String,
    pub hostname: Option<String>,
    pub optional: bool,
    pub state: ServerState,
    pub job_id: Option<String>,
    pub recovery_instance_id: Option<String>,
    /// The EC2 instance DRS launched (job log `targetInstanceID`).
    pub ec2_instance_id: Option<String>,
    /// Why it failed, in DRS's words where the job log has them.
    pub error: Option<String>,
    /// The earlier run whose launch this resumed run carries over (not launched again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carried_from: Option<String>,
}

/// The wave's servers, each with its outcome so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaveProgress {
    pub servers: Vec<ServerOutcome>,
}

/// What a wave's launch came to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum WaveVerdict {
    /// Some server is still launching; poll again.
    InProgress { pending: usize },
    /// Every critical server launched (optional ones may have failed).
    Succeeded {
        launched: usize,
        optional_failed: usize,
    },
    /// A critical server failed, or nothing launched at all.
    Failed { reason: String, failed: usize },
}

/// Combines the jobs and their logs into each server's outcome.
pub fn evaluate_wave(
    servers: &[WaveServer],
    jobs: &[JobView],
    log: &[JobLogEntry],
) -> WaveProgress {
    let mut in_job: HashMap<&str, (&JobView, &JobServer)> = HashMap::new();
    for job in jobs {
        for entry in &job.servers {
            // A server retried in a later job: the later job speaks for it.
            in_job.insert(entry.source_server_id.as_str(), (job, entry));
        }
    }
    let mut last_error: HashMap<&str, &str> = HashMap::new();
    let mut instance: HashMap<&str, &str> = HashMap::new();
    for entry in log {
        let Some(server) = entry.source_server_id.as_deref() else {
            continue;
        };
        if let Some(error) = entry.raw_error.as_deref().filter(|e| !e.is_empty()) {
            last_error.insert(server, error);
        } else if entry.event.ends_with("_FAIL") || entry.event.ends_with("_FAILED") {
            last_error.insert(server, entry.event.as_str());
        }
        if let Some(target) = entry.target_instance_id.as_deref() {
            instance.insert(server, target);
        }
    }
    let all_jobs_completed = !jobs.is_empty() && jobs.iter().all(JobView::is_completed);
    let outcomes = servers
        .iter()
        .map(|server| {
            let id = server.id.as_str();
            let mut outcome = ServerOutcome {
                source_server_id: server.id.clone(),
                hostname: server.hostname.clone(),
                optional: server.optional,
                state: ServerState::Pending,
                job_id: None,
                recovery_instance_id: None,
                ec2_instance_id: instance.get(id).map(|s| (*s).to_owned()),
                error: None,
                carried_from: None,
            };
            let Some((job, entry)) = in_job.get(id) else {
                if all_jobs_completed {
                    outcome.state = ServerState::Failed;
                    outcome.error = Some("no launch job included this server".into());
                }
                return outcome;
            };
            outcome.job_id = Some(job.job_id.clone());
            outcome.recovery_instance_id = entry.recovery_instance_id.clone();
            let status = entry.launch_status.as_deref().unwrap_or("PENDING");
            let logged_error = last_error.get(id).map(|e| (*e).to_owned());
            match status {
                "LAUNCHED" => outcome.state = ServerState::Launched,
                "FAILED" => {
                    outcome.state = ServerState::Failed;
                    outcome.error = Some(logged_error.unwrap_or_else(|| {
                        "DRS reported the launch as FAILED; the job log has no error for it".into()
                    }));
                }
                "TERMINATED" => {
                    outcome.state = ServerState::Failed;
                    outcome.error = Some("the recovery instance was terminated during the launch".into());
                }
                other if job.is_completed() => {
                    outcome.state = ServerState::Failed;
                    outcome.error = Some(logged_error.unwrap_or_else(|| {
                        format!("the job completed while the server was still {other}: DRS did not launch it")
                    }));
                }
                "IN_PROGRESS" => outcome.state = ServerState::InProgress,
                _ => outcome.state = ServerState::Pending,
            }
            outcome
        })
        .collect();
    WaveProgress { servers: outcomes }
}

impl WaveProgress {
    /// After the wave's deadline, servers still launching count as failed.
    pub fn time_out(&mut self, after_minutes: u32) {
        for server in self.servers.iter_mut().filter(|s| !s.state.is_final()) {
            let was = match server.state {
                ServerState::InProgress => "still launching",
                _ => "not started by DRS",
            };
            server.state = ServerState::Failed;
            server.error = Some(format!("timed out after {after_minutes} min, {was}"));
        }
    }

    /// The verdict: in progress while any server is, then failed if a critical server
    /// failed or nothing launched (a wave whose servers all failed never counts as
    /// done), else succeeded.
    pub fn verdict(&self) -> WaveVerdict {
        let pending = self.servers.iter().filter(|s| !s.state.is_final()).count();
        if pending > 0 {
            return WaveVerdict::InProgress { pending };
        }
        let launched = self.launched().count();
        let failed: Vec<&ServerOutcome> = self.failed().collect();
        let critical: Vec<&ServerOutcome> =
            failed.iter().copied().filter(|s| !s.optional).collect();
        if !critical.is_empty() {
            let first = critical[0];
            let name = first.hostname.as_deref().unwrap_or(&first.source_server_id);
            let error = first.error.as_deref().unwrap_or("unknown error");
            let more = match critical.len() - 1 {
                0 => String::new(),
                n => format!(" (and {n} more critical)"),
            };
            return WaveVerdict::Failed {
                reason: format!("{name} failed to launch: {error}{more}"),
                failed: failed.len(),
            };
        }
        if launched == 0 && !self.servers.is_empty() {
            return WaveVerdict::Failed {
                reason: "no server of the wave launched".into(),
                failed: failed.len(),
            };
        }
        WaveVerdict::Succeeded {
            launched,
            optional_failed: failed.len(),
        }
    }

    pub fn launched(&self) -> impl Iterator<Item = &ServerOutcome> {
        self.servers
            .iter()
            .filter(|s| s.state == ServerState::Launched)
    }

    pub fn failed(&self) -> impl Iterator<Item = &ServerOutcome> {
        self.servers
            .iter()
            .filter(|s| s.state == ServerState::Failed)
    }
}

/// What a wave's launch came to, kept in the bucket for tagging, health checks and
/// the report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WaveLaunchRecord {
    pub wave: WaveRef,
    pub progress: WaveProgress,
    pub log: Vec<JobLogEntry>,
    pub job_ids: Vec<String>,
    pub finished_at: jiff::Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(id: &str, optional: bool) -> WaveServer {
        WaveServer {
            id: id.into(),
            hostname: Some(format!("host-{id}")),
            optional,
        }
    }

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

    fn failure(id: &str, error: &str) -> JobLogEntry {
        JobLogEntry {
            job_id: "drsjob-1".into(),
            time: "2026-11-28T00:00:00Z".into(),
            event: "LAUNCH_FAILED".into(),
            source_server_id: Some(id.into()),
            target_instance_id: None,
            raw_error: Some(error.into()),
        }
    }

    #[test]
    fn a_completed_job_is_not_success_when_its_servers_failed() {
        let servers = [server("s-1", false), server("s-2", false)];
        let jobs = [job(
            "COMPLETED",
            &[("s-1", Some("FAILED")), ("s-2", Some("FAILED"))],
        )];
        let log = [
            failure("s-1", "InsufficientInstanceCapacity"),
            failure("s-2", "subnet not found"),
        ];
        let progress = evaluate_wave(&servers, &jobs, &log);
        match progress.verdict() {
            WaveVerdict::Failed { reason, failed } => {
                assert_eq!(failed, 2);
                assert_eq!(
                    reason,
                    "host-s-1 failed to launch: InsufficientInstanceCapacity (and 1 more critical)"
                );
            }
            other => panic!("expected failure, got {other:?}"),
        }
        assert_eq!(
            progress.servers[1].error.as_deref(),
            Some("subnet not found")
        );
    }

    #[test]
    fn optional_failures_do_not_fail_the_wave_but_are_counted() {
        let servers = [server("s-1", false), server("s-2", true)];
        let jobs = [job(
            "COMPLETED",
            &[("s-1", Some("LAUNCHED")), ("s-2", Some("FAILED"))],
        )];
        let progress = evaluate_wave(&servers, &jobs, &[failure("s-2", "boom")]);
        assert_eq!(
            progress.verdict(),
            WaveVerdict::Succeeded {
                launched: 1,
                optional_failed: 1
            }
        );
    }

    #[test]
    fn a_wave_of_only_failed_optional_servers_fails() {
        let servers = [server("s-1", true)];
        let jobs = [job("COMPLETED", &[("s-1", Some("FAILED"))])];
        assert!(matches!(
            evaluate_wave(&servers, &jobs, &[]).verdict(),
            WaveVerdict::Failed { .. }
        ));
    }

    #[test]
    fn running_jobs_keep_the_wave_in_progress_until_every_server_settles() {
        let servers = [server("s-1", false), server("s-2", false)];
        let jobs = [job(
            "STARTED",
            &[("s-1", Some("LAUNCHED")), ("s-2", Some("IN_PROGRESS"))],
        )];
        let mut progress = evaluate_wave(&servers, &jobs, &[]);
        assert_eq!(progress.verdict(), WaveVerdict::InProgress { pending: 1 });
        progress.time_out(15);
        assert_eq!(progress.servers[1].state, ServerState::Failed);
        assert_eq!(
            progress.servers[1].error.as_deref(),
            Some("timed out after 15 min, still launching")
        );
        assert!(matches!(progress.verdict(), WaveVerdict::Failed { .. }));
    }

    #[test]
    fn servers_left_out_of_completed_jobs_fail() {
        let servers = [server("s-1", false), server("s-9", false)];
        let jobs = [job("COMPLETED", &[("s-1", Some("LAUNCHED"))])];
        let progress = evaluate_wave(&servers, &jobs, &[]);
        assert_eq!(progress.servers[1].state, ServerState::Failed);
        assert_eq!(
            progress.servers[1].error.as_deref(),
            Some("no launch job included this server")
        );
    }

    #[test]
    fn a_completed_job_with_a_server_still_pending_fails_that_server() {
        let servers = [server("s-1", false)];
        let jobs = [job("COMPLETED", &[("s-1", Some("PENDING"))])];
        let progress = evaluate_wave(&servers, &jobs, &[]);
        assert_eq!(progress.servers[0].state, ServerState::Failed);
        assert!(
            progress.servers[0]
                .error
                .as_deref()
                .unwrap()
                .contains("still PENDING")
        );
    }
}
