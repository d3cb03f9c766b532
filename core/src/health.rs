//! The health gate's decisions: whether each recovered server passes its wave's checks
//! (EC2 status checks, TCP and HTTP probes), and whether the wave is healthy, still
//! coming up, or failed at its wall-clock deadline. Also where probes go: the
//! instance's address, or its own loopback address when a local run maps it there.
//!
//! Pure: the adapters (`drplan_aws::health`) gather EC2 statuses and probe results,
//! this module decides.

use std::collections::HashMap;
use std::fmt;
use std::net::Ipv4Addr;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::contract::{HealthPoll, LaunchState, RunContext};
use crate::plan::{Health, HealthCheck, Plan};

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
    /// What stands for the EC2 state of a machine a failback brought home (outside
    /// EC2): DRS reporting its failback launch LAUNCHED means it runs; its status
    /// checks do not apply ([`gate_for_run`] leaves `ec2-status` out of a failback).
    pub fn failed_back() -> Self {
        Self {
            instance_state: "running".into(),
            system_status: "not-applicable".into(),
            instance_status: "not-applicable".into(),
        }
    }

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

/// The probe results of a server that passed the gate on an earlier poll, to carry
/// forward instead of probing it again: `None` unless it was healthy on the same
/// instance and every probe check passed. (EC2 status is read on every poll anyway, so
/// an instance that stops or goes away still fails the gate.)
pub fn passed_before(
    previous: &ServerHealth,
    instance_id: Option<&str>,
    checks: &[HealthCheck],
) -> Option<Vec<(HealthCheck, ProbeOutcome)>> {
    if previous.state != ServerHealthState::Healthy
        || previous.ec2_instance_id.as_deref() != instance_id
        || instance_id.is_none()
    {
        return None;
    }
    checks
        .iter()
        .filter(|c| **c != HealthCheck::Ec2Status)
        .map(|check| {
            let name = display(check);
            previous
                .checks
                .iter()
                .find(|r| r.check == name && r.state == CheckState::Passed)
                .map(|r| {
                    (
                        check.clone(),
                        ProbeOutcome::Passed {
                            detail: r.detail.clone(),
                        },
                    )
                })
        })
        .collect()
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

impl ProbeAddressing {
    /// As the health record names it: `private-ip`, `public-ip`, `loopback` (the private
    /// IP's stand-in) or `loopback-public-ip`.
    pub fn name(&self) -> &'static str {
        match (self.map_to_loopback, self.probe_public_ip) {
            (true, false) => "loopback",
            (true, true) => "loopback-public-ip",
            (false, true) => "public-ip",
            (false, false) => "private-ip",
        }
    }
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

/// A wave's health gate from its plan; plans without explicit waves (waves from the
/// `dr:wave` tag) get the default gate. `None` when the plan has no such wave.
pub fn gate_of_wave(plan: &Plan, wave: &str) -> Option<Health> {
    match &plan.waves {
        None => Some(Health::default()),
        Some(waves) => waves
            .iter()
            .find(|w| w.name == wave)
            .map(|w| w.health.clone()),
    }
}

/// The wave's gate in `run`. A failback home to machines outside AWS checks the source
/// machines, outside EC2: `ec2-status` does not apply to them; their TCP and HTTP checks
/// do, at the machines' own addresses. Every run that launches EC2 instances (a failback
/// to the origin Region among them) keeps the plan's gate.
pub fn gate_for_run(mut gate: Health, run: &crate::contract::RunContext) -> Health {
    if !run.launches_in_aws() {
        gate.checks.retain(|check| *check != HealthCheck::Ec2Status);
        // The address DRS reports for the source machine is the one there is.
        gate.probe_address = crate::plan::ProbeAddress::PrivateIp;
    }
    gate
}

/// Where a poll stands on the gate's wall clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GateClock {
    pub attempt: u32,
    /// When the gate gives up.
    pub deadline: Timestamp,
    /// When the gate began: its first poll.
    pub started_at: Timestamp,
}

impl GateClock {
    /// The clock of this poll: the first starts the gate's wall clock from the wave's
    /// timeout (never past the run's deadline); later ones carry it on from the previous
    /// poll and its record.
    pub fn of_poll(
        previous_poll: Option<&HealthPoll>,
        previous_record: Option<&WaveHealthRecord>,
        run: &RunContext,
        timeout_minutes: u32,
        now: Timestamp,
    ) -> Self {
        match previous_poll {
            Some(p) => Self {
                attempt: p.attempt + 1,
                deadline: p.deadline,
                started_at: previous_record.map_or(now, |r| r.started_at),
            },
            None => Self {
                attempt: 1,
                deadline: run
                    .within_run(now + SignedDuration::from_mins(i64::from(timeout_minutes))),
                started_at: now,
            },
        }
    }
}

impl WaveHealthRecord {
    /// A server's results in this record.
    pub fn server(&self, source_server_id: &str) -> Option<&ServerHealth> {
        self.servers
            .iter()
            .find(|s| s.source_server_id == source_server_id)
    }
}

/// What a poll does about a server that is ready to be probed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbePlan {
    /// It passed on an earlier poll at this very address: its results carry forward.
    Carry(Vec<(HealthCheck, ProbeOutcome)>),
    /// These checks are probed now.
    Probe(Vec<HealthCheck>),
}

/// Whether a server ready to be probed at `address` is probed again: not when the
/// previous poll found it healthy on the same instance at the same address (a change of
/// probe addressing probes it again).
pub fn plan_probes(
    previous: Option<&ServerHealth>,
    instance_id: Option<&str>,
    address: &str,
    checks: &[HealthCheck],
) -> ProbePlan {
    let carried = previous.and_then(|before| passed_before(before, instance_id, checks));
    let same_address =
        previous.is_some_and(|before| before.probe_address.as_deref() == Some(address));
    match carried {
        Some(passed) if same_address => ProbePlan::Carry(passed),
        _ => ProbePlan::Probe(
            checks
                .iter()
                .filter(|c| **c != HealthCheck::Ec2Status)
                .cloned()
                .collect(),
        ),
    }
}

/// Every observed server's health, each with the time it turned healthy carried over
/// from the previous poll's record.
pub fn evaluate_servers(
    observations: &[ServerObservation],
    checks: &[HealthCheck],
    now: Timestamp,
    previous: Option<&WaveHealthRecord>,
) -> Vec<ServerHealth> {
    let healthy_since: HashMap<&str, Timestamp> = previous
        .iter()
        .flat_map(|r| r.servers.iter())
        .filter_map(|s| Some((s.source_server_id.as_str(), s.healthy_since?)))
        .collect();
    observations
        .iter()
        .map(|seen| {
            let since = healthy_since.get(seen.source_server_id.as_str()).copied();
            evaluate_server(seen, checks, now, since)
        })
        .collect()
}

/// What a poll came to: the record it keeps for the report and the state it hands the
/// state machine.
pub fn conclude_poll(
    wave: &str,
    gate: &Health,
    clock: GateClock,
    addressing: ProbeAddressing,
    interval_seconds: u32,
    now: Timestamp,
    servers: Vec<ServerHealth>,
) -> (WaveHealthRecord, HealthPoll) {
    let verdict = wave_verdict(
        &servers,
        now,
        clock.deadline,
        gate.timeout_minutes,
        interval_seconds,
    );
    let counts = count(&servers);
    let (state, wait_seconds, reason) = match verdict {
        HealthVerdict::InProgress { wait_seconds } => (LaunchState::InProgress, wait_seconds, None),
        HealthVerdict::Succeeded => (LaunchState::Succeeded, 0, None),
        HealthVerdict::Failed { reason } => (
            LaunchState::Failed,
            0,
            Some(format!("wave {wave:?}: {reason}")),
        ),
    };
    let record = WaveHealthRecord {
        wave: wave.to_owned(),
        checks: gate.checks.iter().map(ToString::to_string).collect(),
        timeout_minutes: gate.timeout_minutes,
        started_at: clock.started_at,
        deadline: clock.deadline,
        checked_at: now,
        attempt: clock.attempt,
        state: state_name(&state).into(),
        reason: reason.clone(),
        healthy_at: (state == LaunchState::Succeeded).then_some(now),
        probe_addressing: addressing.name().into(),
        servers,
    };
    let poll = HealthPoll {
        state,
        attempt: clock.attempt,
        wait_seconds,
        deadline: clock.deadline,
        healthy: counts.healthy,
        unhealthy: counts.unhealthy,
        pending: counts.pending,
        reason,
    };
    (record, poll)
}

/// The gate's state as the health record writes it.
fn state_name(state: &LaunchState) -> &'static str {
    match state {
        LaunchState::InProgress => "IN_PROGRESS",
        LaunchState::Succeeded => "SUCCEEDED",
        LaunchState::Failed => "FAILED",
    }
}

#[cfg(test)]
mod tests;
