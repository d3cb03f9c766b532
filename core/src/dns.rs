//! DNS cutover: the record sets a plan's records should hold once its waves are
//! recovered, and the changes that roll them back. Pure; the Route 53 calls live in
//! drplan-aws.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::issue::Issue;
use crate::plan::{Dns, RecordType};

/// A record set as Route 53 holds it (simple routing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordSet {
    /// Fully qualified, with the trailing dot Route 53 uses.
    pub name: String,
    #[serde(rename = "type")]
    pub record_type: String,
    pub ttl: u32,
    pub values: Vec<String>,
}

/// Where a recovered instance can be reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceAddress {
    pub source_server_id: String,
    pub hostname: Option<String>,
    pub ec2_instance_id: String,
    pub private_ipv4: Option<String>,
    pub ipv6: Option<String>,
    pub private_dns_name: Option<String>,
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

/// The record sets the plan's records should hold, pointing at the healthy instances of
/// each record's `from_wave`: every IPv4 (A) or IPv6 (AAAA) address, or for a CNAME the
/// private DNS name of the first instance by hostname. Every record that has no target
/// is reported, and then nothing is changed.
pub fn desired_records(
    dns: &Dns,
    healthy_by_wave: &BTreeMap<String, Vec<InstanceAddress>>,
) -> Result<Vec<RecordSet>, Vec<Issue>> {
    let mut records = Vec::with_capacity(dns.records.len());
    let mut issues = Vec::new();
    for (i, record) in dns.records.iter().enumerate() {
        let path = format!("dns.records[{i}]");
        let mut instances: Vec<&InstanceAddress> = healthy_by_wave
            .get(&record.from_wave)
            .map(|v| v.iter().collect())
            .unwrap_or_default();
        instances.sort_by(|a, b| {
            (&a.hostname, &a.ec2_instance_id).cmp(&(&b.hostname, &b.ec2_instance_id))
        });
        let mut values: Vec<String> = match record.record_type {
            RecordType::A => instances
                .iter()
                .filter_map(|a| a.private_ipv4.clone())
                .collect(),
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
        });
    }
    if issues.is_empty() {
        Ok(records)
    } else {
        Err(issues)
    }
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
    pub change_id: Option<String>,
    pub submitted_at: Option<Timestamp>,
    pub insync_at: Option<Timestamp>,
    /// "control plane" (ChangeResourceRecordSets) for now; the data-plane path (failover
    /// records whose health checks drplan flips) is future work.
    pub path: String,
}

/// A Route 53 change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "UPPERCASE")]
pub enum Change {
    Upsert(RecordSet),
    Delete(RecordSet),
}

impl DnsCutover {
    /// The changes that put every record back as it was: the old values again, and
    /// records that did not exist before deleted.
    pub fn rollback_changes(&self) -> Vec<Change> {
        self.changes
            .iter()
            .map(|c| match &c.previous {
                Some(previous) => Change::Upsert(previous.clone()),
                None => Change::Delete(c.new.clone()),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::DnsRecord;

    fn address(host: &str, ip: &str) -> InstanceAddress {
        InstanceAddress {
            source_server_id: format!("s-{host}"),
            hostname: Some(host.into()),
            ec2_instance_id: format!("i-{host}"),
            private_ipv4: Some(ip.into()),
            ipv6: None,
            private_dns_name: Some(format!("ip-{}.ec2.internal", ip.replace('.', "-"))),
        }
    }

    fn dns(records: Vec<DnsRecord>) -> Dns {
        Dns {
            zone_id: Some("Z1".into()),
            zone_name: None,
            records,
        }
    }

    fn record(name: &str, record_type: RecordType, wave: &str) -> DnsRecord {
        DnsRecord {
            name: name.into(),
            record_type,
            ttl: 60,
            from_wave: wave.into(),
        }
    }

    #[test]
    fn a_records_take_every_healthy_address_and_cnames_one_name() {
        let healthy = BTreeMap::from([(
            "web".to_owned(),
            vec![
                address("web-02", "10.0.1.12"),
                address("web-01", "10.0.1.11"),
            ],
        )]);
        let wanted = desired_records(
            &dns(vec![
                record("Shop.Example.com", RecordType::A, "web"),
                record("www.example.com.", RecordType::CNAME, "web"),
            ]),
            &healthy,
        )
        .unwrap();
        assert_eq!(wanted[0].name, "shop.example.com.");
        assert_eq!(wanted[0].values, ["10.0.1.11", "10.0.1.12"]);
        assert_eq!(wanted[1].values, ["ip-10-0-1-11.ec2.internal"]);
    }

    #[test]
    fn a_record_without_targets_blocks_the_whole_change() {
        let healthy = BTreeMap::from([("web".to_owned(), vec![address("web-01", "10.0.1.11")])]);
        let issues = desired_records(
            &dns(vec![
                record("shop.example.com", RecordType::A, "web"),
                record("v6.example.com", RecordType::AAAA, "web"),
                record("api.example.com", RecordType::A, "app"),
            ]),
            &healthy,
        )
        .unwrap_err();
        assert_eq!(issues.len(), 2);
        assert!(
            issues[0]
                .message
                .contains("no healthy instance with an IPv6 address")
        );
        assert_eq!(issues[1].path, "dns.records[2]");
    }

    #[test]
    fn rollback_restores_old_values_and_deletes_new_records() {
        let set = |name: &str, value: &str| RecordSet {
            name: name.into(),
            record_type: "A".into(),
            ttl: 60,
            values: vec![value.into()],
        };
        let cutover = DnsCutover {
            zone_id: "Z1".into(),
            changes: vec![
                RecordChange {
                    new: set("shop.example.com.", "10.0.1.11"),
                    previous: Some(set("shop.example.com.", "203.0.113.10")),
                },
                RecordChange {
                    new: set("new.example.com.", "10.0.1.12"),
                    previous: None,
                },
            ],
            change_id: None,
            submitted_at: None,
            insync_at: None,
            path: "control plane".into(),
        };
        assert_eq!(
            cutover.rollback_changes(),
            vec![
                Change::Upsert(set("shop.example.com.", "203.0.113.10")),
                Change::Delete(set("new.example.com.", "10.0.1.12"))
            ]
        );
    }
}
