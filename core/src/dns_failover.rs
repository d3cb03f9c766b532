//! The data-plane DNS cutover (`dns.mode: data-plane`): failover records and a health
//! check prepared ahead of time (`drplan dns prepare`), and a run that moves traffic by
//! flipping the CloudWatch alarm the health check follows, in the recovery Region,
//! without a Route 53 call. Pure: what to prepare, what a prepared zone must hold to
//! match the plan, and the names both sides agree on. The calls live in drplan-aws
//! (`failover`). Why this design, and what Route 53 then does: docs/dns.md.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::dns::{RecordSet, canonical_name, planned_target};
use crate::issue::Issue;
use crate::plan::Dns;

/// The set identifier of the record Route 53 answers with while the health check is
/// healthy: what the record held when it was prepared.
pub const PRIMARY_SET_ID: &str = "drplan-primary";
/// The set identifier of the record Route 53 answers with once the health check is
/// unhealthy: the plan's recovery target.
pub const SECONDARY_SET_ID: &str = "drplan-secondary";

/// The custom metric the failover alarm watches: a run puts 1 (fail over), a rollback 0.
pub const METRIC_NAMESPACE: &str = "drplan";
pub const METRIC_NAME: &str = "DnsFailoverRequested";
/// The metric's one dimension: the plan's name.
pub const METRIC_DIMENSION: &str = "Plan";
/// The alarm's period: Route 53 follows standard-resolution alarms only.
pub const ALARM_PERIOD_SECONDS: i32 = 60;
/// With missing data ignored, the alarm keeps the state the last datapoint gave it, so
/// one PutMetricData holds a failover (or a rollback) until the next one.
pub const ALARM_TREAT_MISSING_DATA: &str = "ignore";
/// The health check's type: healthy while its alarm is not in ALARM.
pub const HEALTH_CHECK_TYPE: &str = "CLOUDWATCH_METRIC";

/// The change ID a data-plane cutover hands on while it waits for its alarm (Route 53's
/// own change IDs hold no `/`).
pub fn alarm_change_id(alarm_name: &str) -> String {
    format!("alarm/{alarm_name}")
}

/// The alarm of a change ID of [`alarm_change_id`]; `None` for a Route 53 change.
pub fn alarm_of_change_id(change_id: &str) -> Option<&str> {
    change_id.strip_prefix("alarm/")
}

/// The alarm behind a plan's failover health check.
pub fn alarm_name(plan: &str) -> String {
    format!("drplan-{plan}-dns-failover")
}

/// A CloudWatch alarm, by Region and name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailoverAlarm {
    pub region: String,
    pub name: String,
}

/// Which record of a failover pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum FailoverRole {
    Primary,
    Secondary,
}

impl FailoverRole {
    pub fn set_identifier(self) -> &'static str {
        match self {
            Self::Primary => PRIMARY_SET_ID,
            Self::Secondary => SECONDARY_SET_ID,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Primary => "PRIMARY",
            Self::Secondary => "SECONDARY",
        }
    }
}

/// One record of a failover pair, as Route 53 holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailoverRecord {
    pub set: RecordSet,
    pub role: FailoverRole,
    pub health_check_id: Option<String>,
}

/// What Route 53 holds under one record name and type.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CurrentRecords {
    /// A simple record (no routing policy).
    pub simple: Option<RecordSet>,
    pub primary: Option<FailoverRecord>,
    pub secondary: Option<FailoverRecord>,
    /// Set identifiers of routing-policy records drplan did not make.
    pub others: Vec<String>,
}

/// A change `drplan dns prepare` makes (all of them in one batch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrepareChange {
    /// The simple record the PRIMARY replaces.
    DeleteSimple(RecordSet),
    Upsert(FailoverRecord),
}

/// One record as prepared: what Route 53 answers before and after a failover.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreparedRecord {
    pub primary: RecordSet,
    pub secondary: RecordSet,
}

/// What `drplan dns prepare` made for a plan, kept in the bucket
/// (`contract::keys::dns_prepared`): discover and dns-cutover read it instead of Route
/// 53, whose control plane a run must not need.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsPrepared {
    pub plan: String,
    pub zone_id: String,
    /// Canonical.
    pub zone_name: String,
    pub health_check_id: String,
    pub alarm: FailoverAlarm,
    pub records: Vec<PreparedRecord>,
    pub prepared_at: Timestamp,
}

/// The alarm a data-plane cutover flipped (in the run's DNS record), for rollback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlarmFlip {
    pub alarm: FailoverAlarm,
    pub health_check_id: String,
    /// When the run put the failover datapoint and set the alarm to ALARM.
    pub flipped_at: Timestamp,
    /// The alarm's state as DescribeAlarms last read it.
    pub state: Option<String>,
    /// When `drplan rollback-dns` flipped it back to OK.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rolled_back_at: Option<Timestamp>,
}

/// What one record must change to be prepared as the plan says, with a description of
/// each change; no change when it already is. An error names the record and why it
/// cannot be prepared (nothing to fail over from, routing records drplan did not make).
pub fn prepare_record(
    target: &RecordSet,
    current: &CurrentRecords,
    health_check_id: &str,
) -> Result<(Vec<PrepareChange>, Vec<String>), String> {
    let what = format!("{} {}", target.name, target.record_type);
    if !current.others.is_empty() {
        return Err(format!(
            "{what} has routing-policy records drplan did not make (set identifiers {}): remove them, or leave the record out of the plan",
            current.others.join(", ")
        ));
    }
    let primary_of = |set: &RecordSet| FailoverRecord {
        set: set.clone(),
        role: FailoverRole::Primary,
        health_check_id: Some(health_check_id.to_owned()),
    };
    let secondary = FailoverRecord {
        set: target.clone(),
        role: FailoverRole::Secondary,
        health_check_id: None,
    };
    let mut changes = Vec::new();
    let mut said = Vec::new();
    match (&current.simple, &current.primary) {
        (Some(simple), _) => {
            changes.push(PrepareChange::DeleteSimple(simple.clone()));
            changes.push(PrepareChange::Upsert(primary_of(simple)));
            changes.push(PrepareChange::Upsert(secondary));
            said.push(format!(
                "{what}: failover pair created: PRIMARY answers {} (what it answers today) while health check {health_check_id} is healthy, SECONDARY {}",
                simple.target(),
                target.target()
            ));
        }
        (None, Some(primary)) => {
            if primary.health_check_id.as_deref() != Some(health_check_id) {
                changes.push(PrepareChange::Upsert(primary_of(&primary.set)));
                said.push(format!(
                    "{what}: PRIMARY now follows health check {health_check_id} (it followed {})",
                    primary.health_check_id.as_deref().unwrap_or("none")
                ));
            }
            let matches = current
                .secondary
                .as_ref()
                .is_some_and(|s| s.health_check_id.is_none() && s.set.same_target(target));
            if !matches {
                said.push(format!(
                    "{what}: SECONDARY set to {} (it was {})",
                    target.target(),
                    current
                        .secondary
                        .as_ref()
                        .map_or("missing".to_owned(), |s| s.set.target())
                ));
                changes.push(PrepareChange::Upsert(secondary));
            }
        }
        (None, None) => {
            return Err(format!(
                "{what} does not exist{}: the PRIMARY of a failover pair keeps what the record answers today; create the record first",
                if current.secondary.is_some() {
                    " (only a SECONDARY does)"
                } else {
                    ""
                }
            ));
        }
    }
    Ok((changes, said))
}

/// Why a prepared zone does not match the plan: each record of the plan must have its
/// failover pair, its SECONDARY answering the plan's recovery target, in the plan's
/// zone. Each issue names the record and the difference. Nothing here reads Route 53:
/// `prepared` is what `drplan dns prepare` recorded.
pub fn prepared_mismatches(dns: &Dns, plan: &str, prepared: Option<&DnsPrepared>) -> Vec<Issue> {
    let Some(prepared) = prepared else {
        return vec![Issue::new(
            "dns.mode",
            format!(
                "is data-plane, but the plan's failover records were never prepared: run `drplan dns prepare {plan}` before a recovery needs them"
            ),
        )];
    };
    let mut issues = Vec::new();
    let zone_matches = match (&dns.zone_id, &dns.zone_name) {
        (Some(id), _) => id.trim_start_matches("/hostedzone/") == prepared.zone_id,
        (None, Some(name)) => canonical_name(name) == prepared.zone_name,
        (None, None) => true,
    };
    if !zone_matches {
        issues.push(Issue::new(
            if dns.zone_id.is_some() {
                "dns.zone_id"
            } else {
                "dns.zone_name"
            },
            format!(
                "the failover records were prepared in zone {} ({}), not this one: run `drplan dns prepare {plan}` again",
                prepared.zone_name, prepared.zone_id
            ),
        ));
    }
    for (i, record) in dns.records.iter().enumerate() {
        let path = format!("dns.records[{i}]");
        let Some(wanted) = planned_target(record) else {
            continue; // refused when the plan was read
        };
        let found = prepared.records.iter().find(|p| {
            canonical_name(&p.secondary.name) == wanted.name
                && p.secondary.record_type == wanted.record_type
        });
        match found {
            None => issues.push(Issue::new(
                path,
                format!(
                    "{} {} has no prepared failover pair: run `drplan dns prepare {plan}`",
                    wanted.name, wanted.record_type
                ),
            )),
            Some(p) if !p.secondary.same_target(&wanted) => issues.push(Issue::new(
                path,
                format!(
                    "{} {}: the prepared SECONDARY answers {}, the plan says {}: run `drplan dns prepare {plan}` to prepare what the plan says",
                    wanted.name,
                    wanted.record_type,
                    p.secondary.target(),
                    wanted.target()
                ),
            )),
            Some(_) => {}
        }
    }
    issues
}

/// Why a health check does not follow the plan's alarm; `None` when it does.
pub fn health_check_problem(
    id: &str,
    check_type: &str,
    alarm: Option<&FailoverAlarm>,
    wanted: &FailoverAlarm,
) -> Option<String> {
    if check_type != HEALTH_CHECK_TYPE {
        return Some(format!(
            "health check {id} is of type {check_type}, not {HEALTH_CHECK_TYPE}"
        ));
    }
    match alarm {
        Some(a) if a == wanted => None,
        Some(a) => Some(format!(
            "health check {id} follows alarm {} in {}, not {} in {}",
            a.name, a.region, wanted.name, wanted.region
        )),
        None => Some(format!("health check {id} follows no alarm")),
    }
}

#[cfg(test)]
mod tests;
