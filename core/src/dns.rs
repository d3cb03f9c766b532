//! DNS cutover: the record sets a plan's records should hold once its waves are
//! recovered, and the changes that roll them back. Pure; the Route 53 calls live in
//! drplan-aws.

use std::collections::{BTreeMap, HashSet};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::contract::Timing;
use crate::contract::step::{DnsPoll, DnsState};
use crate::health::{ServerHealthState, WaveHealthRecord};
use crate::issue::Issue;
use crate::launch::{ServerOutcome, WaveProgress};
use crate::plan::{AliasTarget, Dns, DnsRecord, RecordAddress, RecordType};

/// A record set as Route 53 holds it (simple routing): values with a TTL, or an alias.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordSet {
    /// Fully qualified, with the trailing dot Route 53 uses.
    pub name: String,
    #[serde(rename = "type")]
    pub record_type: String,
    /// 0 for an alias record, which has none of its own.
    pub ttl: u32,
    /// Empty for an alias record.
    pub values: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<AliasTarget>,
}

impl RecordSet {
    /// What the record answers with, for messages and reports: `10.0.1.5, 10.0.1.6`,
    /// or `alias to lb-1.elb.amazonaws.com. (Z35SXDOTRQ7X7K, evaluate target health)`.
    pub fn target(&self) -> String {
        match &self.alias {
            Some(alias) => format!(
                "alias to {} ({}{})",
                alias.dns_name,
                alias.hosted_zone_id,
                if alias.evaluate_target_health {
                    ", evaluate target health"
                } else {
                    ""
                }
            ),
            None => self.values.join(", "),
        }
    }

    /// Whether two record sets answer the same (names compared as Route 53 does: case
    /// and trailing dots aside; values in any order).
    pub fn same_target(&self, other: &RecordSet) -> bool {
        let sorted = |values: &[String]| {
            let mut v: Vec<String> = values.iter().map(|v| v.to_ascii_lowercase()).collect();
            v.sort();
            v
        };
        let alias_key = |a: &Option<AliasTarget>| {
            a.as_ref().map(|a| {
                (
                    canonical_name(&a.dns_name),
                    a.hosted_zone_id.clone(),
                    a.evaluate_target_health,
                )
            })
        };
        canonical_name(&self.name) == canonical_name(&other.name)
            && self.record_type == other.record_type
            && alias_key(&self.alias) == alias_key(&other.alias)
            && (self.alias.is_some()
                || (self.ttl == other.ttl && sorted(&self.values) == sorted(&other.values)))
    }
}

/// Where a recovered instance can be reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceAddress {
    pub source_server_id: String,
    pub hostname: Option<String>,
    pub ec2_instance_id: String,
    pub private_ipv4: Option<String>,
    #[serde(default)]
    pub public_ipv4: Option<String>,
    pub ipv6: Option<String>,
    pub private_dns_name: Option<String>,
}

/// A hosted zone as Route 53 describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostedZone {
    /// Bare, without `/hostedzone/`.
    pub id: String,
    /// Canonical (see [`canonical_name`]).
    pub name: String,
    /// A private zone answers inside its VPCs only.
    pub private: bool,
}

impl HostedZone {
    /// `example.com. (Z123, public)`, for messages.
    pub fn describe(&self) -> String {
        format!(
            "{} ({}, {})",
            self.name,
            self.id,
            if self.private { "private" } else { "public" }
        )
    }
}

/// Route 53's form of a name: lower case, with the trailing dot.
pub fn canonical_name(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    if lower.ends_with('.') {
        lower
    } else {
        format!("{lower}.")
    }
}

/// Whether `name` belongs in `zone`: the zone's own name (its apex) or a name under it,
/// label by label (`wwwexample.com` is not in `example.com`). Case and trailing dots do
/// not matter.
pub fn zone_contains(zone: &str, name: &str) -> bool {
    let zone = canonical_name(zone);
    let name = canonical_name(name);
    name == zone || name.ends_with(&format!(".{zone}"))
}

/// Why a record named `name` cannot be in `zone`; `None` when it can (or when the name
/// is empty: its own problem is reported where it is read).
pub fn outside_zone(name: &str, zone: &str) -> Option<String> {
    if name.is_empty() || zone_contains(zone, name) {
        return None;
    }
    let zone = canonical_name(zone);
    let zone = zone.trim_end_matches('.');
    Some(format!(
        "{name} is not inside the hosted zone {zone}: the zone holds {zone} itself and the names that end in .{zone}, nothing else"
    ))
}

/// Every record of the plan whose name is outside the zone, with its path.
pub fn records_outside_zone(dns: &Dns, zone: &HostedZone) -> Vec<Issue> {
    dns.records
        .iter()
        .enumerate()
        .filter_map(|(i, record)| {
            outside_zone(&record.name, &zone.name).map(|problem| {
                Issue::new(
                    format!("dns.records[{i}].name"),
                    format!("{problem} (zone {})", zone.id),
                )
            })
        })
        .collect()
}

/// The hosted zone IDs a deployment may change, from its comma-separated list
/// (`Z1,Z2`; blanks and `/hostedzone/` prefixes are ignored).
pub fn zone_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(|id| id.trim().trim_start_matches("/hostedzone/"))
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Why this deployment may not change `zone_id`, given the zones it may change;
/// `None` when it may. With no zone allowed, `zone_id` may be the zone's name.
pub fn zone_not_allowed(allowed: &[String], zone_id: &str) -> Option<String> {
    let zone_id = zone_id.trim_start_matches("/hostedzone/");
    if allowed.iter().any(|a| a == zone_id) {
        return None;
    }
    Some(if allowed.is_empty() {
        "this deployment may change no hosted zone (its HostedZoneIds parameter is empty): deploy it with the zone's ID in HostedZoneIds, or leave `dns` out of the plan".to_owned()
    } else {
        format!(
            "hosted zone {zone_id} is not one this deployment may change (HostedZoneIds: {}); add it to the stack's HostedZoneIds parameter",
            allowed.join(",")
        )
    })
}

/// Which IPv4 address of each instance an A record holds: what the record says, or
/// what its zone calls for. (AAAA records hold IPv6 addresses, CNAMEs a name: the parser
/// refuses `address` on them.)
pub fn a_record_address(record: &DnsRecord, private_zone: bool) -> RecordAddress {
    record
        .address
        .unwrap_or(RecordAddress::of_zone(private_zone))
}

/// Every instance's `address`, or the instances that have none.
fn ipv4_addresses(
    instances: &[&InstanceAddress],
    address: RecordAddress,
) -> Result<Vec<String>, Vec<String>> {
    let pick = |a: &InstanceAddress| match address {
        RecordAddress::PrivateIp => a.private_ipv4.clone(),
        RecordAddress::PublicIp => a.public_ipv4.clone(),
    };
    let without: Vec<String> = instances
        .iter()
        .filter(|a| pick(a).is_none())
        .map(|a| describe_instance(a))
        .collect();
    if without.is_empty() {
        Ok(instances.iter().filter_map(|a| pick(a)).collect())
    } else {
        Err(without)
    }
}

/// `record www.example.com needs public-ip but instance i-0abc (server s-1, web-01)
/// has no public IPv4 address`, with what would give it one.
fn missing_address(record: &DnsRecord, address: RecordAddress, without: &[String]) -> String {
    let (noun, verb) = if without.len() == 1 {
        ("instance", "has")
    } else {
        ("instances", "have")
    };
    let (kind, hint) = match (address, record.address) {
        (RecordAddress::PrivateIp, _) => ("private", ""),
        (RecordAddress::PublicIp, None) => (
            "public",
            ": the record's zone is public, so it gets public addresses; launch the wave where instances get one (a subnet that maps public IPv4 addresses on launch, or a launch template that asks for one), or give the record `address: private-ip`",
        ),
        (RecordAddress::PublicIp, Some(_)) => (
            "public",
            ": launch the wave where instances get one (a subnet that maps public IPv4 addresses on launch, or a launch template that asks for one)",
        ),
    };
    format!(
        "record {} needs {} but {noun} {} {verb} no {kind} IPv4 address{hint}",
        record.name,
        address.name(),
        without.join(", ")
    )
}

/// Why a record of this type takes no `address`; `None` for A records.
pub fn address_does_not_apply(record_type: RecordType) -> Option<String> {
    let holds = match record_type {
        RecordType::A => return None,
        RecordType::AAAA => {
            "the instances' IPv6 addresses, which are neither private nor public IPv4"
        }
        RecordType::CNAME => "the first instance's private DNS name",
    };
    Some(format!(
        "applies to A records only: {} records hold {holds}",
        record_type.as_str()
    ))
}

/// `i-0abc (server s-123, web-01)`, for messages.
fn describe_instance(a: &InstanceAddress) -> String {
    match &a.hostname {
        Some(host) => format!(
            "{} (server {}, {host})",
            a.ec2_instance_id, a.source_server_id
        ),
        None => format!("{} (server {})", a.ec2_instance_id, a.source_server_id),
    }
}

/// The record sets the plan's records should hold, pointing at the healthy instances of
/// each record's `from_wave`: for an A record every instance's private or public IPv4
/// address (see [`a_record_address`]; `private_zone` is the kind of the plan's zone),
/// for AAAA every IPv6 address, for a CNAME the private DNS name of the first instance
/// by hostname. An A record whose instances do not all have the address it needs, and
/// every record without a target, is reported; then nothing is changed.
pub fn desired_records(
    dns: &Dns,
    private_zone: bool,
    healthy_by_wave: &BTreeMap<String, Vec<InstanceAddress>>,
) -> Result<Vec<RecordSet>, Vec<Issue>> {
    let mut records = Vec::with_capacity(dns.records.len());
    let mut issues = Vec::new();
    for (i, record) in dns.records.iter().enumerate() {
        let path = format!("dns.records[{i}]");
        if let Some(set) = planned_target(record) {
            records.push(set);
            continue;
        }
        let mut instances: Vec<&InstanceAddress> = healthy_by_wave
            .get(&record.from_wave)
            .map(|v| v.iter().collect())
            .unwrap_or_default();
        instances.sort_by(|a, b| {
            (&a.hostname, &a.ec2_instance_id).cmp(&(&b.hostname, &b.ec2_instance_id))
        });
        let mut values: Vec<String> = match record.record_type {
            RecordType::A => {
                let address = a_record_address(record, private_zone);
                match ipv4_addresses(&instances, address) {
                    Ok(values) => values,
                    Err(without) => {
                        issues.push(Issue::new(path, missing_address(record, address, &without)));
                        continue;
                    }
                }
            }
            RecordType::AAAA => instances.iter().filter_map(|a| a.ipv6.clone()).collect(),
            RecordType::CNAME => instances
                .iter()
                .find_map(|a| a.private_dns_name.clone())
                .into_iter()
                .collect(),
        };
        // Numeric order for addresses (10.0.1.9 before 10.0.1.10), text for names.
        values.sort_by(|a, b| {
            match (a.parse::<std::net::IpAddr>(), b.parse::<std::net::IpAddr>()) {
                (Ok(x), Ok(y)) => x.cmp(&y),
                _ => a.cmp(b),
            }
        });
        values.dedup();
        if values.is_empty() {
            issues.push(Issue::new(
                path,
                format!(
                    "{} {}: wave {:?} has no healthy instance with {}",
                    record.name,
                    record.record_type.as_str(),
                    record.from_wave,
                    match record.record_type {
                        RecordType::A => "an IPv4 address",
                        RecordType::AAAA => "an IPv6 address",
                        RecordType::CNAME => "a DNS name",
                    }
                ),
            ));
            continue;
        }
        records.push(RecordSet {
            name: canonical_name(&record.name),
            record_type: record.record_type.as_str().to_owned(),
            ttl: record.ttl,
            values,
            alias: None,
        });
    }
    if issues.is_empty() {
        Ok(records)
    } else {
        Err(issues)
    }
}

/// The record set of a record whose target the plan gives (an alias, or fixed values);
/// `None` for a record that points at its wave's instances.
pub fn planned_target(record: &DnsRecord) -> Option<RecordSet> {
    let name = canonical_name(&record.name);
    let record_type = record.record_type.as_str().to_owned();
    if let Some(alias) = &record.alias {
        return Some(RecordSet {
            name,
            record_type,
            ttl: 0,
            values: Vec::new(),
            alias: Some(AliasTarget {
                dns_name: canonical_name(&alias.dns_name),
                ..alias.clone()
            }),
        });
    }
    (!record.values.is_empty()).then(|| RecordSet {
        name,
        record_type,
        ttl: record.ttl,
        values: record.values.clone(),
        alias: None,
    })
}

/// One record of a cutover, with what it held before (`None`: it did not exist).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordChange {
    pub new: RecordSet,
    pub previous: Option<RecordSet>,
}

/// A DNS cutover, kept in the bucket before the change is made, so that a rollback
/// (or failback) is possible whatever happens next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsCutover {
    pub zone_id: String,
    pub changes: Vec<RecordChange>,
    /// Records the change deletes: a failback removes those the recovery created.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deletes: Vec<RecordSet>,
    pub change_id: Option<String>,
    pub submitted_at: Option<Timestamp>,
    pub insync_at: Option<Timestamp>,
    /// [`CONTROL_PLANE_PATH`] (ChangeResourceRecordSets) or [`DATA_PLANE_PATH`]
    /// (failover records prepared ahead; the run flipped [`Self::alarm`]).
    pub path: String,
    /// The alarm a data-plane cutover flipped, to flip back on rollback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarm: Option<crate::dns_failover::AlarmFlip>,
    /// Records of the plan left as they are: their wave did not run in this run
    /// (skipped, or outside its `only_waves`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unchanged: Vec<String>,
}

/// [`DnsCutover::path`] of a cutover made with ChangeResourceRecordSets.
pub const CONTROL_PLANE_PATH: &str = "control plane";
/// [`DnsCutover::path`] of a cutover made by flipping the failover alarm.
pub const DATA_PLANE_PATH: &str = "data plane";

/// A Route 53 change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "UPPERCASE")]
pub enum Change {
    Upsert(RecordSet),
    Delete(RecordSet),
}

impl DnsCutover {
    /// The changes that point every record at the recovered instances (for a
    /// failback: back home, and the recovery's own records deleted).
    pub fn upserts(&self) -> Vec<Change> {
        self.changes
            .iter()
            .map(|c| Change::Upsert(c.new.clone()))
            .chain(self.deletes.iter().cloned().map(Change::Delete))
            .collect()
    }

    /// The changes that put every record back as it was: the old values again, and
    /// records that did not exist before deleted.
    pub fn rollback_changes(&self) -> Vec<Change> {
        self.changes
            .iter()
            .map(|c| match &c.previous {
                Some(previous) => Change::Upsert(previous.clone()),
                None => Change::Delete(c.new.clone()),
            })
            .chain(self.deletes.iter().cloned().map(Change::Upsert))
            .collect()
    }
}

/// The launched servers of a wave that passed its health gate: only their instances
/// receive traffic.
pub fn healthy_servers<'a>(
    progress: &'a WaveProgress,
    health: &WaveHealthRecord,
) -> Vec<&'a ServerOutcome> {
    let healthy: HashSet<&str> = health
        .servers
        .iter()
        .filter(|s| s.state == ServerHealthState::Healthy)
        .map(|s| s.source_server_id.as_str())
        .collect();
    progress
        .launched()
        .filter(|s| healthy.contains(s.source_server_id.as_str()))
        .collect()
}

impl DnsPoll {
    /// A plan without DNS: nothing changes.
    pub fn skipped() -> Self {
        Self {
            state: DnsState::Skipped,
            change_id: None,
            changed: 0,
            attempt: 0,
            wait_seconds: 0,
        }
    }

    /// Route 53 took the change of `changed` records: followed from the next call.
    pub fn submitted(change_id: String, changed: usize) -> Self {
        Self {
            state: DnsState::Pending,
            change_id: Some(change_id),
            changed,
            attempt: 0,
            wait_seconds: 0,
        }
    }

    /// Route 53 reports the change INSYNC.
    pub fn in_sync(self) -> Self {
        Self {
            state: DnsState::Insync,
            ..self
        }
    }

    /// Not in sync yet: polled again after the run's backoff for the next attempt.
    pub fn still_pending(self, timing: &Timing) -> Self {
        let attempt = self.attempt + 1;
        Self {
            state: DnsState::Pending,
            attempt,
            wait_seconds: timing.poll_delay_seconds(attempt),
            ..self
        }
    }
}

#[cfg(test)]
mod tests;
