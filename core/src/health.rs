//! The health gate's decisions: whether each recovered server passes its wave's checks
//! (EC2 status checks, TCP and HTTP probes), and whether the wave is healthy, still
//! coming up, or failed at its wall-clock deadline. Also where probes go: the
//! instance's address, or its own loopback address when a local run maps it there.
//!
//! Pure: the function gathers EC2 statuses and probe results, this module decides.

use std::fmt;
use std::net::Ipv4Addr;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::plan::HealthCheck;

/// An instance's EC2 state and status checks, in EC2's words
/// (DescribeInstanceStatus with IncludeAllInstances).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ec2Status {
    /// `pending`, `running`, `shutting-down`, `terminated`, `stopping`, `stopped`.
    pub instance_state: String,
    /// `ok`, `impaired`, `initializing`, `insufficient-data`, `not-applicable`.
    pub system_status: String,
    /// Same values as `system_status`.
    pub instance_status: String,
}

impl Ec2Status {
    pub fn is_running(&self) -> bool {
        self.instance_state == "running"
    }

    /// Stopped or going away: no later poll can make it healthy.
    pub fn is_gone(&self) -> bool {
        matches!(
            self.instance_state.as_str(),
            "shutting-down" | "terminated" | "stopping" | "stopped"
        )
    }
}

/// What one probe (TCP connect, HTTP GET) found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum ProbeOutcome {
    /// E.g. `connected` or `HTTP 200`.
    Passed { detail: String },
    /// E.g. `refused (connection refused)` or `HTTP 500`.
    Failed { reason: String },
}

/// What the function saw of one launched server in this poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerObservation {
    pub source_server_id: String,
    pub hostname: Option<String>,
    pub optional: bool,
    pub ec2_instance_id: Option<String>,
    /// `None` when EC2 does not know the instance (yet, or any more).
    pub status: Option<Ec2Status>,
    /// Where probes went, after any loopback mapping.
    pub probe_address: Option<String>,
    /// Why there is no probe address (no private IP yet, a refused mapping...).
    pub probe_address_error: Option<String>,
    /// Results of the probes that ran, by check; checks not listed did not run.
    pub probes: Vec<(HealthCheck, ProbeOutcome)>,
    /// The subnet EC2 reports for the instance (where a drill really ran).
    pub subnet_id: Option<String>,
}

/// Where a check stands for one server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CheckState {
    Passed,
    Failed,
    /// Not decided yet: the instance is starting, or the probe waits for EC2 checks.
    Pending,
}

/// One check's result for one server: what passed, what failed and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    /// The check as the plan writes it: `ec2-status`, `tcp:5432`, `http:8080/health`.
    pub check: String,
    pub state: CheckState,
    pub detail: String,
}

impl fmt::Display for CheckResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.check, self.detail)
    }
}

/// A server's health in this poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ServerHealthState {
    Healthy,
    /// A check failed; until the deadline a later poll may still find it healthy,
    /// unless `gone` says the instance is stopped or terminated.
    Unhealthy,
    Pending,
}

/// One server's health, as health.json keeps it for the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerHealth {
    pub source_server_id: String,
    pub hostname: Option<String>,
    pub optional: bool,
    pub ec2_instance_id: Option<String>,
    /// The instance's subnet, as EC2 reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet_id: Option<String>,
    pub probe_address: Option<String>,
    pub state: ServerHealthState,
    /// The instance is stopped or terminated: no later poll will find it healthy.
    pub gone: bool,
    pub checks: Vec<CheckResult>,
    /// When it was first found healthy in the run of healthy polls that continues now.
    pub healthy_since: Option<Timestamp>,
}

impl ServerHealth {
    pub fn display_name(&self) -> &str {
        self.hostname.as_deref().unwrap_or(&self.source_server_id)
    }

    /// Why the server is not healthy: its failed checks, else its pending ones.
    pub fn why_not_healthy(&self) -> String {
        let pick = |state: CheckState| -> Vec<String> {
            self.checks
                .iter()
                .filter(|c| c.state == state)
                .map(ToString::to_string)
                .collect()
        };
        let failed = pick(CheckState::Failed);
        if !failed.is_empty() {
            return failed.join(", ");
        }
        let pending = pick(CheckState::Pending);
        if !pending.is_empty() {
            return format!("still pending: {}", pending.join(", "));
        }
        "no check passed".into()
    }
}

fn display(check: &HealthCheck) -> String {
    check.to_string()
}

/// Whether the probes may run yet: the instance is running and, when the plan checks EC2
/// status, both status checks pass (the gate checks EC2 first, then probes).
pub fn ready_to_probe(status: Option<&Ec2Status>, checks: &[HealthCheck]) -> bool {
    let Some(status) = status else {
        return false;
    };
    if !status.is_running() {
        return false;
    }
    !checks.contains(&HealthCheck::Ec2Status)
        || (status.system_status == "ok" && status.instance_status == "ok")
}

fn ec2_status_result(status: Option<&Ec2Status>) -> CheckResult {
    let check = display(&HealthCheck::Ec2Status);
    let (state, detail) = match status {
        None => (
            CheckState::Pending,
            "EC2 does not report the instance yet".to_owned(),
        ),
        Some(s) if s.is_gone() => (
            CheckState::Failed,
            format!("instance is {}", s.instance_state),
        ),
        Some(s) if !s.is_running() => (
            CheckState::Pending,
            format!("instance is {}", s.instance_state),
        ),
        Some(s) if s.system_status == "ok" && s.instance_status == "ok" => (
            CheckState::Passed,
            "running, system and instance checks ok".to_owned(),
        ),
        Some(s) if s.system_status == "impaired" || s.instance_status == "impaired" => (
            CheckState::Failed,
            format!(
                "impaired (system {}, instance {})",
                s.system_status, s.instance_status
            ),
        ),
        Some(s) => (
            CheckState::Pending,
            format!(
                "checks not ok yet (system {}, instance {})",
                s.system_status, s.instance_status
            ),
        ),
    };
    CheckResult {
        check,
        state,
        detail,
    }
}

/// Decides one server's health from what this poll saw. `previous_healthy_since`
/// carries the time it turned healthy over from earlier polls.
pub fn evaluate_server(
    seen: &ServerObservation,
    checks: &[HealthCheck],
    now: Timestamp,
    previous_healthy_since: Option<Timestamp>,
) -> ServerHealth {
    let status = seen.status.as_ref();
    let gone = status.is_some_and(Ec2Status::is_gone);
    let probing = ready_to_probe(status, checks);
    let results: Vec<CheckResult> = checks
        .iter()
        .map(|check| {
            if *check == HealthCheck::Ec2Status {
                return ec2_status_result(status);
            }
            let name = display(check);
            if let Some((_, outcome)) = seen.probes.iter().find(|(c, _)| c == check) {
                return match outcome {
                    ProbeOutcome::Passed { detail } => CheckResult {
                        check: name,
                        state: CheckState::Passed,
                        detail: detail.clone(),
                    },
                    ProbeOutcome::Failed { reason } => CheckResult {
                        check: name,
                        state: CheckState::Failed,
                        detail: reason.clone(),
                    },
                };
            }
            let (state, detail) = if gone {
                (
                    CheckState::Failed,
                    "not probed: the instance is gone".to_owned(),
                )
            } else if probing {
                match &seen.probe_address_error {
                    // Running with its checks passed, yet nothing to probe: say why.
                    Some(error) => (CheckState::Failed, format!("not probed: {error}")),
                    None => (CheckState::Pending, "not probed yet".to_owned()),
                }
            } else if checks.contains(&HealthCheck::Ec2Status) {
                (
                    CheckState::Pending,
                    "waits for the EC2 status checks".to_owned(),
                )
            } else {
                (
                    CheckState::Pending,
                    "waits for the instance to run".to_owned(),
                )
            };
            CheckResult {
                check: name,
                state,
                detail,
            }
        })
        .collect();
    let state = if results.iter().any(|r| r.state == CheckState::Failed) {
        ServerHealthState::Unhealthy
    } else if results.iter().all(|r| r.state == CheckState::Passed) {
        ServerHealthState::Healthy
    } else {
        ServerHealthState::Pending
    };
    ServerHealth {
        source_server_id: seen.source_server_id.clone(),
        hostname: seen.hostname.clone(),
        optional: seen.optional,
        ec2_instance_id: seen.ec2_instance_id.clone(),
        subnet_id: seen.subnet_id.clone(),
        probe_address: seen.probe_address.clone(),
        state,
        gone,
        checks: results,
        healthy_since: (state == ServerHealthState::Healthy)
            .then(|| previous_healthy_since.unwrap_or(now)),
    }
}

/// What a wave's health gate came to in this poll.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HealthVerdict {
    /// Poll again after `wait_seconds`.
    InProgress { wait_seconds: u32 },
    /// Every critical server is healthy (optional ones are reported as they are).
    Succeeded,
    /// A critical server is not healthy at the deadline, or is gone; `reason` names it.
    Failed { reason: String },
}

/// The counts a poll reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HealthCounts {
    pub healthy: usize,
    pub unhealthy: usize,
    pub pending: usize,
}

pub fn count(servers: &[ServerHealth]) -> HealthCounts {
    let mut counts = HealthCounts::default();
    for server in servers {
        match server.state {
            ServerHealthState::Healthy => counts.healthy += 1,
            ServerHealthState::Unhealthy => counts.unhealthy += 1,
            ServerHealthState::Pending => counts.pending += 1,
        }
    }
    counts
}

/// The gate's rules for one wave:
/// - a critical server whose instance is stopped or terminated fails the wave at once;
/// - every critical server healthy → SUCCEEDED (a wave of only optional servers needs
///   one healthy server: a wave nothing of which works never counts as recovered);
/// - at or past the deadline, any critical server not healthy → FAILED;
/// - otherwise poll again after `interval_seconds`.
///
/// Optional servers never fail the wave; their results stay in health.json.
pub fn wave_verdict(
    servers: &[ServerHealth],
    now: Timestamp,
    deadline: Timestamp,
    timeout_minutes: u32,
    interval_seconds: u32,
) -> HealthVerdict {
    let critical: Vec<&ServerHealth> = servers.iter().filter(|s| !s.optional).collect();
    let not_healthy: Vec<&ServerHealth> = critical
        .iter()
        .copied()
        .filter(|s| s.state != ServerHealthState::Healthy)
        .collect();
    let failure = |first: &ServerHealth, count: usize, tail: &str| {
        let more = match count - 1 {
            0 => String::new(),
            n => format!(" (and {n} more critical)"),
        };
        HealthVerdict::Failed {
            reason: format!(
                "{} is not healthy: {}{tail}{more}",
                first.display_name(),
                first.why_not_healthy()
            ),
        }
    };
    let gone: Vec<&ServerHealth> = not_healthy.iter().copied().filter(|s| s.gone).collect();
    if let Some(first) = gone.first() {
        return failure(first, gone.len(), "");
    }
    let any_healthy = servers
        .iter()
        .any(|s| s.state == ServerHealthState::Healthy);
    if not_healthy.is_empty() && (!critical.is_empty() || any_healthy || servers.is_empty()) {
        return HealthVerdict::Succeeded;
    }
    if now >= deadline {
        let after = format!(" after {timeout_minutes} min");
        return match not_healthy.first() {
            Some(first) => failure(first, not_healthy.len(), &after),
            None => HealthVerdict::Failed {
                reason: format!("no server of the wave is healthy{after}"),
            },
        };
    }
    let left = deadline.duration_since(now).as_secs().max(1);
    // Never sleep past the deadline by much: the last poll should land near it.
    let wait = u64::from(interval_seconds.max(1)).min(left.unsigned_abs());
    HealthVerdict::InProgress {
        wait_seconds: u32::try_from(wait).unwrap_or(u32::MAX),
    }
}

/// A wave's health results, kept at `waves/NNN-WAVE/health.json` by every poll for the
/// report: the checks, the deadline, and per server what passed, what failed and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaveHealthRecord {
    pub wave: String,
    /// The wave's checks as the plan writes them.
    pub checks: Vec<String>,
    pub timeout_minutes: u32,
    /// When the gate began (the first poll) and when it gives up.
    pub started_at: Timestamp,
    pub deadline: Timestamp,
    pub checked_at: Timestamp,
    pub attempt: u32,
    /// IN_PROGRESS, SUCCEEDED or FAILED.
    pub state: String,
    pub reason: Option<String>,
    /// When every critical server was healthy (the wave passed its gate).
    pub healthy_at: Option<Timestamp>,
    /// `private-ip`, `public-ip`, or for local runs `loopback` (the private IP's
    /// stand-in) and `loopback-public-ip` (the public IP's).
    pub probe_addressing: String,
    pub servers: Vec<ServerHealth>,
}

/// The loopback address that stands for an instance in local runs: `a.b.c.d` becomes
/// `127.b.c.d`, so each instance gets its own address and the same port can be served
/// for every instance. The local DRS simulator binds its listeners with the same rule.
pub fn loopback_for(private_ip: Ipv4Addr) -> Ipv4Addr {
    let [_, b, c, d] = private_ip.octets();
    Ipv4Addr::new(127, b, c, d)
}

/// Which of an instance's addresses probes use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProbeAddressing {
    /// Probe the public IP instead of the private one (a wave's `health.probe_address`).
    pub probe_public_ip: bool,
    /// Local runs: send probes to the instance's loopback address ([`loopback_for`]).
    pub map_to_loopback: bool,
}

/// Why an instance has no address to probe.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeAddressError {
    #[error("the instance has no {0} IPv4 address")]
    Missing(&'static str),
    #[error("the instance's {kind} IP {text:?} is not an IPv4 address")]
    NotIpv4 { kind: &'static str, text: String },
}

/// The address to probe for an instance, after the loopback mapping when it is on.
pub fn probe_address(
    private_ip: Option<&str>,
    public_ip: Option<&str>,
    addressing: ProbeAddressing,
) -> Result<Ipv4Addr, ProbeAddressError> {
    let (kind, text) = if addressing.probe_public_ip {
        ("public", public_ip)
    } else {
        ("private", private_ip)
    };
    let text = text
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(ProbeAddressError::Missing(kind))?;
    let address: Ipv4Addr = text.parse().map_err(|_| ProbeAddressError::NotIpv4 {
        kind,
        text: text.to_owned(),
    })?;
    Ok(if addressing.map_to_loopback {
        loopback_for(address)
    } else {
        address
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::SignedDuration;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn status(state: &str, system: &str, instance: &str) -> Option<Ec2Status> {
        Some(Ec2Status {
            instance_state: state.into(),
            system_status: system.into(),
            instance_status: instance.into(),
        })
    }

    fn seen(name: &str, optional: bool, status: Option<Ec2Status>) -> ServerObservation {
        ServerObservation {
            source_server_id: format!("s-{name}"),
            hostname: Some(name.into()),
            optional,
            ec2_instance_id: Some(format!("i-{name}")),
            status,
            probe_address: Some("127.31.0.5".into()),
            probe_address_error: None,
            probes: Vec::new(),
            subnet_id: None,
        }
    }

    fn checks(texts: &[&str]) -> Vec<HealthCheck> {
        texts.iter().map(|t| t.parse().unwrap()).collect()
    }

    fn passed(detail: &str) -> ProbeOutcome {
        ProbeOutcome::Passed {
            detail: detail.into(),
        }
    }

    fn failed(reason: &str) -> ProbeOutcome {
        ProbeOutcome::Failed {
            reason: reason.into(),
        }
    }

    const NOW: &str = "2026-11-28T01:00:00Z";

    #[test]
    fn a_server_whose_checks_all_pass_is_healthy_from_when_it_first_passed() {
        let wanted = checks(&["ec2-status", "tcp:5432", "http:8080/health"]);
        let mut server = seen("db-001", false, status("running", "ok", "ok"));
        server.probes = vec![
            (wanted[1].clone(), passed("connected")),
            (wanted[2].clone(), passed("HTTP 200")),
        ];
        let first = evaluate_server(&server, &wanted, at(NOW), None);
        assert_eq!(first.state, ServerHealthState::Healthy);
        assert_eq!(first.healthy_since, Some(at(NOW)));
        assert!(first.checks.iter().all(|c| c.state == CheckState::Passed));
        let later = evaluate_server(
            &server,
            &wanted,
            at("2026-11-28T01:05:00Z"),
            first.healthy_since,
        );
        assert_eq!(later.healthy_since, Some(at(NOW)));
    }

    #[test]
    fn probes_wait_for_ec2_status_checks() {
        let wanted = checks(&["ec2-status", "tcp:22"]);
        let server = seen("app-001", false, status("running", "initializing", "ok"));
        assert!(!ready_to_probe(server.status.as_ref(), &wanted));
        let health = evaluate_server(&server, &wanted, at(NOW), None);
        assert_eq!(health.state, ServerHealthState::Pending);
        assert_eq!(
            health.checks[1].detail, "waits for the EC2 status checks",
            "{health:?}"
        );
        // Without an ec2-status check, a running instance is probed at once.
        assert!(ready_to_probe(server.status.as_ref(), &checks(&["tcp:22"])));
        assert!(!ready_to_probe(
            status("pending", "initializing", "initializing").as_ref(),
            &checks(&["tcp:22"])
        ));
    }

    #[test]
    fn a_failed_probe_says_what_failed_and_why_and_a_healthy_record_is_dropped() {
        let wanted = checks(&["ec2-status", "tcp:5432"]);
        let mut server = seen("db-001", false, status("running", "ok", "ok"));
        server.probes = vec![(wanted[1].clone(), failed("refused (connection refused)"))];
        let health = evaluate_server(&server, &wanted, at(NOW), Some(at(NOW)));
        assert_eq!(health.state, ServerHealthState::Unhealthy);
        assert_eq!(health.healthy_since, None);
        assert!(!health.gone);
        assert_eq!(health.checks[0].state, CheckState::Passed);
        assert_eq!(
            health.why_not_healthy(),
            "tcp:5432 refused (connection refused)"
        );
    }

    #[test]
    fn impaired_and_terminated_instances_fail_their_status_check() {
        let wanted = checks(&["ec2-status"]);
        let impaired = evaluate_server(
            &seen("a", false, status("running", "impaired", "ok")),
            &wanted,
            at(NOW),
            None,
        );
        assert_eq!(impaired.state, ServerHealthState::Unhealthy);
        assert!(!impaired.gone);
        let gone = evaluate_server(
            &seen(
                "b",
                false,
                status("terminated", "not-applicable", "not-applicable"),
            ),
            &checks(&["ec2-status", "tcp:22"]),
            at(NOW),
            None,
        );
        assert!(gone.gone);
        assert_eq!(
            gone.why_not_healthy(),
            "ec2-status instance is terminated, tcp:22 not probed: the instance is gone"
        );
        let unknown = evaluate_server(&seen("c", false, None), &wanted, at(NOW), None);
        assert_eq!(unknown.state, ServerHealthState::Pending);
    }

    #[test]
    fn a_running_instance_without_an_address_fails_its_probes() {
        let wanted = checks(&["tcp:22"]);
        let mut server = seen("a", false, status("running", "ok", "ok"));
        server.probe_address = None;
        server.probe_address_error = Some("the instance has no private IPv4 address".into());
        let health = evaluate_server(&server, &wanted, at(NOW), None);
        assert_eq!(health.state, ServerHealthState::Unhealthy);
        assert_eq!(
            health.why_not_healthy(),
            "tcp:22 not probed: the instance has no private IPv4 address"
        );
    }

    fn health(name: &str, optional: bool, state: ServerHealthState) -> ServerHealth {
        ServerHealth {
            source_server_id: format!("s-{name}"),
            hostname: Some(name.into()),
            optional,
            ec2_instance_id: None,
            subnet_id: None,
            probe_address: None,
            state,
            gone: false,
            checks: vec![CheckResult {
                check: "tcp:5432".into(),
                state: match state {
                    ServerHealthState::Healthy => CheckState::Passed,
                    ServerHealthState::Unhealthy => CheckState::Failed,
                    ServerHealthState::Pending => CheckState::Pending,
                },
                detail: "refused (connection refused)".into(),
            }],
            healthy_since: None,
        }
    }

    #[test]
    fn the_wave_waits_until_its_deadline_then_fails_on_a_critical_server() {
        use ServerHealthState::*;
        let deadline = at(NOW) + SignedDuration::from_mins(15);
        let servers = [
            health("app-001", false, Healthy),
            health("app-003", false, Unhealthy),
            health("batch-001", true, Unhealthy),
        ];
        assert_eq!(
            wave_verdict(&servers, at(NOW), deadline, 15, 15),
            HealthVerdict::InProgress { wait_seconds: 15 }
        );
        // Close to the deadline, the last wait lands on it.
        assert_eq!(
            wave_verdict(
                &servers,
                deadline - SignedDuration::from_secs(4),
                deadline,
                15,
                15
            ),
            HealthVerdict::InProgress { wait_seconds: 4 }
        );
        assert_eq!(
            wave_verdict(&servers, deadline, deadline, 15, 15),
            HealthVerdict::Failed {
                reason:
                    "app-003 is not healthy: tcp:5432 refused (connection refused) after 15 min"
                        .into()
            }
        );
    }

    #[test]
    fn optional_failures_do_not_fail_the_wave() {
        use ServerHealthState::*;
        let deadline = at(NOW) + SignedDuration::from_mins(15);
        let servers = [
            health("app-001", false, Healthy),
            health("batch-001", true, Unhealthy),
            health("batch-002", true, Pending),
        ];
        assert_eq!(
            wave_verdict(&servers, at(NOW), deadline, 15, 15),
            HealthVerdict::Succeeded
        );
        assert_eq!(
            count(&servers),
            HealthCounts {
                healthy: 1,
                unhealthy: 1,
                pending: 1
            }
        );
    }

    #[test]
    fn a_wave_of_optional_servers_needs_one_healthy_server() {
        use ServerHealthState::*;
        let deadline = at(NOW) + SignedDuration::from_mins(5);
        let none_healthy = [health("batch-001", true, Unhealthy)];
        assert!(matches!(
            wave_verdict(&none_healthy, at(NOW), deadline, 5, 10),
            HealthVerdict::InProgress { .. }
        ));
        assert_eq!(
            wave_verdict(&none_healthy, deadline, deadline, 5, 10),
            HealthVerdict::Failed {
                reason: "no server of the wave is healthy after 5 min".into()
            }
        );
        let one_healthy = [
            health("batch-001", true, Healthy),
            health("batch-002", true, Pending),
        ];
        assert_eq!(
            wave_verdict(&one_healthy, at(NOW), deadline, 5, 10),
            HealthVerdict::Succeeded
        );
    }

    #[test]
    fn a_terminated_critical_server_fails_the_wave_before_the_deadline() {
        use ServerHealthState::*;
        let deadline = at(NOW) + SignedDuration::from_mins(15);
        let mut gone = health("db-001", false, Unhealthy);
        gone.gone = true;
        gone.checks[0] = CheckResult {
            check: "ec2-status".into(),
            state: CheckState::Failed,
            detail: "instance is terminated".into(),
        };
        let servers = [
            gone,
            health("db-002", false, Pending),
            health("db-003", false, Healthy),
        ];
        assert_eq!(
            wave_verdict(&servers, at(NOW), deadline, 15, 15),
            HealthVerdict::Failed {
                reason: "db-001 is not healthy: ec2-status instance is terminated".into()
            }
        );
    }

    #[test]
    fn several_critical_failures_are_counted() {
        use ServerHealthState::*;
        let deadline = at(NOW);
        let servers = [health("a", false, Pending), health("b", false, Unhealthy)];
        assert_eq!(
            wave_verdict(&servers, at(NOW), deadline, 1, 15),
            HealthVerdict::Failed {
                reason: "a is not healthy: still pending: tcp:5432 refused (connection refused) after 1 min (and 1 more critical)".into()
            }
        );
    }

    #[test]
    fn private_addresses_map_to_their_own_loopback_address() {
        assert_eq!(
            loopback_for(Ipv4Addr::new(172, 31, 40, 7)),
            Ipv4Addr::new(127, 31, 40, 7)
        );
        assert_eq!(
            loopback_for(Ipv4Addr::new(10, 0, 1, 25)),
            Ipv4Addr::new(127, 0, 1, 25)
        );
        let local = ProbeAddressing {
            map_to_loopback: true,
            ..ProbeAddressing::default()
        };
        assert_eq!(
            probe_address(Some("10.0.1.25"), None, local),
            Ok(Ipv4Addr::new(127, 0, 1, 25))
        );
        assert_eq!(
            probe_address(
                Some("10.0.1.25"),
                Some("203.0.113.9"),
                ProbeAddressing::default()
            ),
            Ok(Ipv4Addr::new(10, 0, 1, 25))
        );
        let public = ProbeAddressing {
            probe_public_ip: true,
            map_to_loopback: false,
        };
        assert_eq!(
            probe_address(Some("10.0.1.25"), Some("203.0.113.9"), public),
            Ok(Ipv4Addr::new(203, 0, 113, 9))
        );
        assert_eq!(
            probe_address(Some("10.0.1.25"), None, public),
            Err(ProbeAddressError::Missing("public"))
        );
        assert!(matches!(
            probe_address(Some("fe80::1"), None, local),
            Err(ProbeAddressError::NotIpv4 { .. })
        ));
    }
}
