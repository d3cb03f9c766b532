//! A wave's target groups: after its health checks pass, the wave's healthy instances
//! are registered into the ELBv2 target groups its run's mode uses, and the gate passes
//! only when the load balancer reports them healthy too (DescribeTargetHealth), within
//! the wave's health timeout. What was registered is kept in the run's records
//! (`waves/NNN-WAVE/targets.json`) so that rollback and drill cleanup deregister it.
//!
//! Pure: `drplan_aws::targets` makes the ELBv2 calls, this module decides.

use std::collections::HashMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::contract::{HealthPoll, LaunchState};
use crate::health::{HealthVerdict, ServerHealth, ServerHealthState, WaveHealthRecord};
use crate::issue::Issue;
use crate::plan::{Mode, Plan, Target};

/// What ELBv2 says of one registered target (DescribeTargetHealth's TargetHealth).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetHealth {
    /// `initial`, `healthy`, `unhealthy`, `unhealthy.draining`, `unused`, `draining`,
    /// `unavailable`.
    pub state: String,
    /// E.g. `Elb.RegistrationInProgress`, `Target.FailedHealthChecks`, `Target.NotInUse`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl TargetHealth {
    pub fn is_healthy(&self) -> bool {
        self.state == "healthy"
    }
}

/// One instance registered into a target group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisteredTarget {
    pub ec2_instance_id: String,
    pub source_server_id: String,
    pub hostname: Option<String>,
    /// An optional server's target is reported, and never fails the wave.
    pub optional: bool,
    /// The target's health at the last poll; `None` before the first DescribeTargetHealth.
    pub health: Option<TargetHealth>,
}

impl RegisteredTarget {
    fn display_name(&self) -> String {
        match &self.hostname {
            Some(hostname) => format!("{hostname} ({})", self.ec2_instance_id),
            None => self.ec2_instance_id.clone(),
        }
    }

    fn is_healthy(&self) -> bool {
        self.health.as_ref().is_some_and(TargetHealth::is_healthy)
    }

    fn why_not_healthy(&self) -> String {
        match &self.health {
            None => "its target health is not known yet".into(),
            Some(h) => {
                let mut text = format!("target health {}", h.state);
                if let Some(reason) = &h.reason {
                    text.push_str(&format!(" ({reason}"));
                    if let Some(description) = &h.description {
                        text.push_str(&format!(": {description}"));
                    }
                    text.push(')');
                }
                text
            }
        }
    }
}

/// The instances registered into one target group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetGroupRegistration {
    pub target_group_arn: String,
    pub port: u16,
    /// A drill's target group (`drill: true` in the plan).
    pub drill: bool,
    pub targets: Vec<RegisteredTarget>,
    /// Why registering failed (RegisterTargets refused), when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl TargetGroupRegistration {
    /// The target group's name, from its ARN (`.../targetgroup/NAME/ID`).
    pub fn name(&self) -> &str {
        target_group_name(&self.target_group_arn)
    }
}

/// The target group name in an ARN `...:targetgroup/NAME/ID`; the ARN itself otherwise.
pub fn target_group_name(arn: &str) -> &str {
    arn.split_once(":targetgroup/")
        .and_then(|(_, rest)| rest.split('/').next())
        .unwrap_or(arn)
}

/// What a wave registered into its target groups, at `waves/NNN-WAVE/targets.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaveTargetsRecord {
    pub wave: String,
    pub mode: Mode,
    /// The poll whose health checks passed: when the instances were registered.
    pub registered_at: Timestamp,
    pub checked_at: Timestamp,
    /// IN_PROGRESS, SUCCEEDED or FAILED: the target health part of the gate.
    pub state: String,
    pub reason: Option<String>,
    pub groups: Vec<TargetGroupRegistration>,
    /// When rollback or drill cleanup deregistered the instances, and which did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deregistered_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deregistered_by: Option<String>,
}

/// The target groups a run in `mode` registers the wave's instances into: a recovery
/// those without `drill: true`, a drill only those with it.
pub fn targets_of_wave(plan: &Plan, wave: &str, mode: Mode) -> Vec<Target> {
    plan.waves
        .iter()
        .flatten()
        .filter(|w| w.name == wave)
        .flat_map(|w| w.targets.iter())
        .filter(|t| t.used_by(mode))
        .cloned()
        .collect()
}

/// The target groups a run of `mode` registers into, for the waves it runs
/// (`run_waves`), each once.
pub fn target_groups_of_run(plan: &Plan, mode: Mode, run_waves: &[&str]) -> Vec<String> {
    let mut arns: Vec<String> = plan
        .waves
        .iter()
        .flatten()
        .filter(|w| run_waves.contains(&w.name.as_str()))
        .flat_map(|w| w.targets.iter())
        .filter(|t| t.used_by(mode))
        .map(|t| t.target_group_arn.clone())
        .collect();
    arns.sort();
    arns.dedup();
    arns
}

/// A run must not launch a wave whose target group is not there: its instances would be
/// up, and the gate would fail after the launch with nothing to register them into. One
/// issue per target of the run's waves (in `mode`) whose target group ELBv2 does not
/// know (`missing`), naming the wave, the field and the ARN.
pub fn missing_target_group_issues(
    plan: &Plan,
    mode: Mode,
    run_waves: &[&str],
    missing: &[String],
) -> Vec<Issue> {
    let mut issues = Vec::new();
    for (wave_index, wave) in plan.waves.iter().flatten().enumerate() {
        if !run_waves.contains(&wave.name.as_str()) {
            continue;
        }
        for (target_index, target) in wave.targets.iter().enumerate() {
            if target.used_by(mode) && missing.contains(&target.target_group_arn) {
                issues.push(Issue::new(
                    format!("waves[{wave_index}].targets[{target_index}].target_group_arn"),
                    format!(
                        "wave {}: target group {} does not exist (DescribeTargetGroups does not know it); a {} would launch the wave and have nothing to register its instances into: create it or correct the ARN",
                        wave.name,
                        target.target_group_arn,
                        mode.as_str()
                    ),
                ));
            }
        }
    }
    issues
}

/// Whether DescribeTargetHealth's answer for a target says it is registered: listed,
/// and neither `Target.NotRegistered` nor on its way out (`draining`).
pub fn is_registered(health: Option<&TargetHealth>) -> bool {
    health.is_some_and(|h| {
        h.reason.as_deref() != Some("Target.NotRegistered") && h.state != "draining"
    })
}

/// The targets of `wanted` that the target group does not hold yet (by what
/// DescribeTargetHealth said of them, `seen`): only these are registered, so that a
/// resumed run's adopted wave, whose instances an earlier run registered, and a poll
/// after the one that registered, register nothing again.
pub fn not_yet_registered(
    wanted: &[(String, u16)],
    seen: &HashMap<String, TargetHealth>,
) -> Vec<(String, u16)> {
    wanted
        .iter()
        .filter(|(id, _)| !is_registered(seen.get(id)))
        .cloned()
        .collect()
}

/// What to register, once the wave's health checks passed: every healthy server's
/// instance (optional ones too) into each of the mode's target groups.
pub fn plan_registration(
    wave: &str,
    mode: Mode,
    targets: &[Target],
    servers: &[ServerHealth],
    now: Timestamp,
) -> WaveTargetsRecord {
    let healthy: Vec<RegisteredTarget> = servers
        .iter()
        .filter(|s| s.state == ServerHealthState::Healthy)
        .filter_map(|s| {
            Some(RegisteredTarget {
                ec2_instance_id: s.ec2_instance_id.clone()?,
                source_server_id: s.source_server_id.clone(),
                hostname: s.hostname.clone(),
                optional: s.optional,
                health: None,
            })
        })
        .collect();
    WaveTargetsRecord {
        wave: wave.to_owned(),
        mode,
        registered_at: now,
        checked_at: now,
        state: "IN_PROGRESS".into(),
        reason: None,
        groups: targets
            .iter()
            .map(|t| TargetGroupRegistration {
                target_group_arn: t.target_group_arn.clone(),
                port: t.port,
                drill: t.drill,
                targets: healthy.clone(),
                error: None,
            })
            .collect(),
        deregistered_at: None,
        deregistered_by: None,
    }
}

impl WaveTargetsRecord {
    /// Takes in DescribeTargetHealth's answer for one target group, by instance ID.
    pub fn observe(&mut self, target_group_arn: &str, seen: &HashMap<String, TargetHealth>) {
        for group in self
            .groups
            .iter_mut()
            .filter(|g| g.target_group_arn == target_group_arn)
        {
            for target in &mut group.targets {
                target.health = seen.get(&target.ec2_instance_id).cloned();
            }
        }
    }

    /// The target health part of the gate, by the health gate's own rules: every
    /// critical server's target healthy in every group → SUCCEEDED; a group that refused
    /// the registration → FAILED at once; at or past the deadline, a critical target
    /// not healthy → FAILED; otherwise poll again.
    pub fn verdict(
        &self,
        now: Timestamp,
        deadline: Timestamp,
        timeout_minutes: u32,
        interval_seconds: u32,
    ) -> HealthVerdict {
        if let Some(group) = self.groups.iter().find(|g| g.error.is_some()) {
            return HealthVerdict::Failed {
                reason: format!(
                    "target group {}: {}",
                    group.name(),
                    group.error.as_deref().unwrap_or_default()
                ),
            };
        }
        let not_healthy: Vec<(&TargetGroupRegistration, &RegisteredTarget)> = self
            .groups
            .iter()
            .flat_map(|g| g.targets.iter().map(move |t| (g, t)))
            .filter(|(_, t)| !t.optional && !t.is_healthy())
            .collect();
        if not_healthy.is_empty() {
            return HealthVerdict::Succeeded;
        }
        if now >= deadline {
            let (group, first) = not_healthy[0];
            let more = match not_healthy.len() - 1 {
                0 => String::new(),
                n => format!(" (and {n} more critical)"),
            };
            return HealthVerdict::Failed {
                reason: format!(
                    "target group {}: {} is not healthy: {} after {timeout_minutes} min{more}",
                    group.name(),
                    first.display_name(),
                    first.why_not_healthy()
                ),
            };
        }
        let left = deadline.duration_since(now).as_secs().max(1);
        let wait = u64::from(interval_seconds.max(1)).min(left.unsigned_abs());
        HealthVerdict::InProgress {
            wait_seconds: u32::try_from(wait).unwrap_or(u32::MAX),
        }
    }

    /// Every registered instance, by target group, with its port: what deregistering
    /// takes out again.
    pub fn deregistrations(&self) -> Vec<(String, Vec<(String, u16)>)> {
        self.groups
            .iter()
            .filter(|g| !g.targets.is_empty())
            .map(|g| {
                (
                    g.target_group_arn.clone(),
                    g.targets
                        .iter()
                        .map(|t| (t.ec2_instance_id.clone(), g.port))
                        .collect(),
                )
            })
            .collect()
    }

    /// One line per target group, for the report: "shop-web (port 443): web-01
    /// (i-0abc) healthy; web-02 (i-0def) initial (Elb.RegistrationInProgress)".
    pub fn summary_lines(&self) -> Vec<String> {
        self.groups
            .iter()
            .map(|g| {
                let targets: Vec<String> = g
                    .targets
                    .iter()
                    .map(|t| {
                        let health = match &t.health {
                            Some(h) => match &h.reason {
                                Some(reason) => format!("{} ({reason})", h.state),
                                None => h.state.clone(),
                            },
                            None => "not checked".into(),
                        };
                        format!("{} {health}", t.display_name())
                    })
                    .collect();
                let listed = match (&g.error, targets.is_empty()) {
                    (Some(error), _) => format!("not registered: {error}"),
                    (None, true) => "no healthy instance to register".into(),
                    (None, false) => targets.join("; "),
                };
                format!(
                    "{}{} (port {}): {listed}",
                    g.name(),
                    if g.drill { " [drill]" } else { "" },
                    g.port
                )
            })
            .collect()
    }
}

/// The gate's poll and health record once the target health part is decided: a wave
/// whose targets are not healthy yet keeps polling, and one whose targets fail fails
/// like an unhealthy wave.
pub fn apply_to_gate(
    verdict: &HealthVerdict,
    targets: &mut WaveTargetsRecord,
    record: &mut WaveHealthRecord,
    poll: &mut HealthPoll,
    now: Timestamp,
) {
    targets.checked_at = now;
    let (state, name, wait, reason) = match verdict {
        HealthVerdict::InProgress { wait_seconds } => {
            (LaunchState::InProgress, "IN_PROGRESS", *wait_seconds, None)
        }
        HealthVerdict::Succeeded => (LaunchState::Succeeded, "SUCCEEDED", 0, None),
        HealthVerdict::Failed { reason } => (
            LaunchState::Failed,
            "FAILED",
            0,
            Some(format!("wave {:?}: {reason}", record.wave)),
        ),
    };
    targets.state = name.into();
    targets.reason = reason.clone();
    record.state = name.into();
    record.reason = reason.clone();
    // The wave counts as healthy (for its RTO) when its targets are healthy too.
    record.healthy_at = (state == LaunchState::Succeeded).then_some(now);
    poll.state = state;
    poll.wait_seconds = wait;
    poll.reason = reason;
}

#[cfg(test)]
mod tests;
