//! Runs that cannot hurt production: one run per plan (the plan's lock in the bucket),
//! never replacing live recovery instances, drill subnets that really are isolated,
//! and the launch-template swaps that put drill instances into the drill subnet.
//!
//! Pure decisions; the functions read DRS, EC2, S3 and Step Functions and act on them.

use serde::{Deserialize, Serialize};

use crate::issue::Issue;
use crate::plan::Mode;

/// The run that holds a plan: written by discover with a conditional write, removed by
/// the report (or the run-ended handler) of the same run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunLock {
    /// The Step Functions execution ARN.
    pub execution_id: String,
    pub execution_name: String,
    pub mode: Mode,
    pub locked_at: jiff::Timestamp,
}

/// What discover does about the plan's lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockVerdict {
    /// Nobody holds the plan, or its holder has ended without releasing it: take it.
    Take,
    /// This execution holds it already (a retried discover).
    Ours,
    /// A drill holds the plan and this run is a recovery: a recovery is never blocked
    /// by a drill, so the drill is stopped and the recovery takes the plan.
    StopDrill(RunLock),
    /// Another run holds the plan: this one is refused.
    Refuse(RunLock),
}

/// Judges the plan's current lock against this run. `holder_running` is whether the
/// lock's execution is still RUNNING (false when Step Functions no longer knows it).
pub fn judge_run_lock(
    lock: Option<&RunLock>,
    our_execution_name: &str,
    our_mode: Mode,
    holder_running: bool,
) -> LockVerdict {
    let Some(lock) = lock else {
        return LockVerdict::Take;
    };
    if lock.execution_name == our_execution_name {
        return LockVerdict::Ours;
    }
    if !holder_running {
        return LockVerdict::Take;
    }
    match (lock.mode, our_mode) {
        (Mode::Drill, Mode::Recovery) => LockVerdict::StopDrill(lock.clone()),
        _ => LockVerdict::Refuse(lock.clone()),
    }
}

/// Why a run is refused because another holds its plan.
pub fn plan_busy_issue(plan: &str, holder: &RunLock, our_mode: Mode) -> Issue {
    let why = match (holder.mode, our_mode) {
        (Mode::Recovery, Mode::Drill) => "a drill never stops a recovery",
        (Mode::Recovery, Mode::Recovery) => "one run per plan at a time",
        _ => "one run per plan at a time; wait for it to end or stop it",
    };
    Issue::new(
        "plan",
        format!(
            "plan {plan:?} is held by the {} run {} (started {}): {why}",
            holder.mode.as_str(),
            holder.execution_name,
            holder.locked_at
        ),
    )
}

/// A recovery instance as DRS reports it (DescribeRecoveryInstances).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryInstanceView {
    pub recovery_instance_id: String,
    pub ec2_instance_id: Option<String>,
    pub source_server_id: Option<String>,
    pub job_id: Option<String>,
    pub is_drill: bool,
    /// RUNNING, STOPPED, TERMINATED...: what EC2 says of the instance.
    pub ec2_instance_state: Option<String>,
}

impl RecoveryInstanceView {
    /// Whether the instance still exists in EC2: DRS keeps a recovery instance whose
    /// EC2 instance was terminated outside DRS.
    pub fn is_live(&self) -> bool {
        !matches!(
            self.ec2_instance_state.as_deref(),
            Some("TERMINATED" | "SHUTTING-DOWN")
        )
    }
}

/// What the plan's existing recovery instances mean for a new run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveCheck {
    /// Why the run may not launch.
    pub blocking: Vec<Issue>,
    /// Drill instances left by an earlier drill (or by the drill this recovery stopped):
    /// terminated through DRS before anything launches.
    pub terminate_first: Vec<String>,
}

/// At most this many servers are named in one refusal; the count says the rest.
const NAMED_IN_REFUSAL: usize = 10;

/// DRS keeps one recovery instance per source server: launching a server again replaces
/// its instance. So a drill is refused where a recovery is live, and a second recovery
/// is refused unless a person asked to replace the live one (`replace_live_recovery`);
/// leftover drill instances are terminated first.
pub fn judge_live_instances(
    mode: Mode,
    replace_live_recovery: bool,
    instances: &[RecoveryInstanceView],
) -> LiveCheck {
    let mut check = LiveCheck::default();
    let live_recoveries: Vec<&RecoveryInstanceView> = instances
        .iter()
        .filter(|r| !r.is_drill && r.is_live())
        .collect();
    check.terminate_first = instances
        .iter()
        .filter(|r| r.is_drill)
        .map(|r| r.recovery_instance_id.clone())
        .collect();
    if live_recoveries.is_empty() {
        return check;
    }
    let named: Vec<String> = live_recoveries
        .iter()
        .take(NAMED_IN_REFUSAL)
        .map(|r| {
            format!(
                "{} (recovery instance {}, EC2 {})",
                r.source_server_id.as_deref().unwrap_or("?"),
                r.recovery_instance_id,
                r.ec2_instance_id.as_deref().unwrap_or("none")
            )
        })
        .collect();
    let more = live_recoveries.len().saturating_sub(NAMED_IN_REFUSAL);
    let list = if more > 0 {
        format!("{} and {more} more", named.join(", "))
    } else {
        named.join(", ")
    };
    match mode {
        Mode::Drill => check.blocking.push(Issue::new(
            "mode",
            format!(
                "a recovery is live on {} of the plan's servers: a drill would replace the instances the business runs on ({list}); drill again after failback",
                live_recoveries.len()
            ),
        )),
        Mode::Recovery if !replace_live_recovery => check.blocking.push(Issue::new(
            "replace_live_recovery",
            format!(
                "an earlier recovery is live on {} of the plan's servers ({list}); a new recovery would replace those instances: start it with \"replace_live_recovery\": true (drplan start --replace-live-recovery) if that is what you want",
                live_recoveries.len()
            ),
        )),
        // A failback brings the live recovery home: it is what the failback needs.
        Mode::Recovery | Mode::Failback => {}
    }
    check
}

/// One route of a subnet's route table: where it sends traffic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteView {
    /// The destination CIDR or prefix list.
    pub destination: String,
    /// `local`, or the ID of the gateway, peering, interface or instance it routes to.
    pub target: String,
}

/// The routes that take traffic out of the VPC. Only `local` routes keep a drill
/// inside its VPC; anything else (internet, NAT, VPN or transit gateway, peering,
/// endpoints, appliances) reaches beyond it.
pub fn routes_beyond_vpc(routes: &[RouteView]) -> Vec<String> {
    routes
        .iter()
        .filter(|r| r.target != "local")
        .map(|r| {
            format!(
                "{} → {} ({})",
                r.destination,
                r.target,
                target_kind(&r.target)
            )
        })
        .collect()
}

fn target_kind(target: &str) -> &'static str {
    let prefixes = [
        ("igw-", "internet gateway"),
        ("eigw-", "egress-only internet gateway"),
        ("nat-", "NAT gateway"),
        ("vgw-", "VPN gateway"),
        ("tgw-", "transit gateway"),
        ("pcx-", "VPC peering"),
        ("vpce-", "VPC endpoint"),
        ("lgw-", "local gateway"),
        ("cagw-", "carrier gateway"),
        ("eni-", "network interface"),
        ("i-", "instance"),
    ];
    prefixes
        .iter()
        .find(|(prefix, _)| target.starts_with(prefix))
        .map_or("outside the VPC", |(_, kind)| kind)
}

/// What a drill run says when its plan names no drill subnet.
pub const NOT_ISOLATED: &str = "not set: this drill is NOT isolated; its instances launch with the recovery launch settings, into the recovery network, beside production";

/// How a drill was isolated, for the launches and the report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrillIsolation {
    /// None: the drill was not isolated.
    pub subnet_id: Option<String>,
    #[serde(default)]
    pub security_group_ids: Vec<String>,
    /// Routes beyond the VPC that the plan allowed (`drill.allow_routes`).
    #[serde(default)]
    pub routes_beyond_vpc: Vec<String>,
}

impl DrillIsolation {
    /// One line for the report.
    pub fn describe(&self) -> String {
        match &self.subnet_id {
            None => "NOT isolated: the plan names no drill.subnet_id, so drill instances launched with the recovery launch settings, into the recovery network".to_owned(),
            Some(subnet) => {
                let groups = if self.security_group_ids.is_empty() {
                    "the launch templates' own security groups".to_owned()
                } else {
                    format!("security groups {}", self.security_group_ids.join(", "))
                };
                let routes = if self.routes_beyond_vpc.is_empty() {
                    "its route table has local routes only".to_owned()
                } else {
                    format!(
                        "NOT fully isolated: its routes reach beyond the VPC ({}), allowed by drill.allow_routes",
                        self.routes_beyond_vpc.join(", ")
                    )
                };
                format!("drill subnet {subnet} with {groups}; {routes}")
            }
        }
    }
}

/// What a run cleared before its first wave, for its report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClearedBeforeLaunch {
    /// The drill of the plan this recovery stopped.
    pub stopped_drill: Option<String>,
    /// Drill instances (of that drill, or left by an earlier one) terminated first.
    pub terminated_drill_instances: usize,
}

/// The description drplan gives the launch-template version it makes for a drill, so
/// that a retried step finds its own version instead of making another.
pub fn drill_version_description(execution_name: &str) -> String {
    format!("drplan drill {execution_name}")
}

/// One server's launch template during a drill: which version was the default before
/// the drill, and the drill's version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateSwap {
    pub source_server_id: String,
    pub launch_template_id: String,
    /// The default version before the drill: made default again afterwards.
    pub previous_default_version: i64,
    /// The drill's version, once made.
    pub drill_version: Option<i64>,
    pub restored: bool,
}

/// A wave's launch-template swaps, written before any template changes so that every
/// path (a retried step, a failed wave, an aborted run) can put them back.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaveTemplateSwaps {
    pub subnet_id: String,
    #[serde(default)]
    pub security_group_ids: Vec<String>,
    pub swaps: Vec<TemplateSwap>,
}

impl WaveTemplateSwaps {
    pub fn pending_restore(&self) -> impl Iterator<Item = &TemplateSwap> {
        self.swaps.iter().filter(|s| !s.restored)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lock(name: &str, mode: Mode) -> RunLock {
        RunLock {
            execution_id: format!("arn:aws:states:us-west-2:1:execution:drplan-recovery:{name}"),
            execution_name: name.into(),
            mode,
            locked_at: "2026-12-01T03:00:00Z".parse().expect("time"),
        }
    }

    #[test]
    fn one_run_per_plan_and_a_recovery_stops_a_drill() {
        use LockVerdict::*;
        assert_eq!(judge_run_lock(None, "b", Mode::Drill, false), Take);
        let drill = lock("a", Mode::Drill);
        assert_eq!(judge_run_lock(Some(&drill), "a", Mode::Drill, true), Ours);
        assert_eq!(
            judge_run_lock(Some(&drill), "b", Mode::Drill, true),
            Refuse(drill.clone())
        );
        assert_eq!(
            judge_run_lock(Some(&drill), "b", Mode::Recovery, true),
            StopDrill(drill.clone())
        );
        // A holder that ended without releasing (crashed, deleted) holds nothing.
        assert_eq!(judge_run_lock(Some(&drill), "b", Mode::Drill, false), Take);
        let recovery = lock("r", Mode::Recovery);
        assert_eq!(
            judge_run_lock(Some(&recovery), "b", Mode::Recovery, true),
            Refuse(recovery.clone())
        );
        assert_eq!(
            judge_run_lock(Some(&recovery), "b", Mode::Drill, true),
            Refuse(recovery.clone())
        );
        let refused = plan_busy_issue("shop", &recovery, Mode::Drill);
        assert!(refused.message.contains("held by the recovery run r"));
        assert!(refused.message.contains("a drill never stops a recovery"));
    }

    fn instance(n: usize, is_drill: bool) -> RecoveryInstanceView {
        RecoveryInstanceView {
            recovery_instance_id: format!("i-rec{n}"),
            ec2_instance_id: Some(format!("i-ec2{n}")),
            source_server_id: Some(format!("s-{n}")),
            job_id: Some("drsjob-1".into()),
            is_drill,
            ec2_instance_state: Some("RUNNING".into()),
        }
    }

    #[test]
    fn live_recoveries_are_never_replaced_unless_asked() {
        let live: Vec<_> = (0..12).map(|n| instance(n, false)).collect();
        let drill = judge_live_instances(Mode::Drill, false, &live);
        assert_eq!(drill.blocking.len(), 1);
        assert!(
            drill.blocking[0]
                .message
                .contains("a recovery is live on 12")
        );
        assert!(drill.blocking[0].message.contains("and 2 more"));
        let again = judge_live_instances(Mode::Recovery, false, &live);
        assert_eq!(again.blocking[0].path, "replace_live_recovery");
        let asked = judge_live_instances(Mode::Recovery, true, &live);
        assert!(asked.blocking.is_empty());
        // Even when asked, a drill never replaces a recovery.
        assert_eq!(
            judge_live_instances(Mode::Drill, true, &live)
                .blocking
                .len(),
            1
        );
    }

    #[test]
    fn leftover_drill_instances_are_terminated_first() {
        let mut gone = instance(3, false);
        gone.ec2_instance_state = Some("TERMINATED".into());
        let found = [instance(1, true), instance(2, true), gone];
        for mode in [Mode::Drill, Mode::Recovery] {
            let check = judge_live_instances(mode, false, &found);
            assert!(check.blocking.is_empty(), "{mode:?}: {:?}", check.blocking);
            assert_eq!(check.terminate_first, ["i-rec1", "i-rec2"]);
        }
    }

    #[test]
    fn only_local_routes_are_isolated() {
        let route = |d: &str, t: &str| RouteView {
            destination: d.into(),
            target: t.into(),
        };
        assert!(routes_beyond_vpc(&[route("10.0.0.0/16", "local")]).is_empty());
        let beyond = routes_beyond_vpc(&[
            route("10.0.0.0/16", "local"),
            route("0.0.0.0/0", "igw-1"),
            route("172.16.0.0/12", "tgw-2"),
            route("192.168.0.0/16", "pcx-3"),
        ]);
        assert_eq!(
            beyond,
            [
                "0.0.0.0/0 → igw-1 (internet gateway)",
                "172.16.0.0/12 → tgw-2 (transit gateway)",
                "192.168.0.0/16 → pcx-3 (VPC peering)"
            ]
        );
    }
}
