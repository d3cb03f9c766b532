//! Reading a plan's `dns` section: the zone, the cutover's mode, and each record with
//! what it points at (the wave's instances, an alias target, or fixed values).

use std::net::{Ipv4Addr, Ipv6Addr};

use serde_json::Value;

use super::values::{describe, dns_name_problem};
use super::{MAX_TTL, Reader};
use crate::issue::DocPath;
use crate::plan::{
    AliasTarget, DEFAULT_RECORD_TTL, Dns, DnsMode, DnsRecord, RecordAddress, RecordType,
};

pub(crate) const DNS_FIELDS: &[&str] = &["zone_id", "zone_name", "mode", "records"];
pub(crate) const RECORD_FIELDS: &[&str] = &[
    "name",
    "type",
    "ttl",
    "from_wave",
    "address",
    "alias",
    "values",
];
pub(crate) const ALIAS_FIELDS: &[&str] = &["dns_name", "hosted_zone_id", "evaluate_target_health"];

impl Reader {
    pub(super) fn dns(&mut self, value: &Value, path: &DocPath) -> Option<Dns> {
        let map = self.mapping(value, path, DNS_FIELDS)?;
        let zone_id = self.optional(map, path, "zone_id").and_then(|(v, p)| {
            let id = self.string(v, &p)?;
            let bare = id.strip_prefix("/hostedzone/").unwrap_or(&id);
            let valid = !bare.is_empty()
                && bare.len() <= 32
                && bare.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
            if valid {
                Some(id)
            } else {
                self.issues.push(
                    &p,
                    format!("{id:?} is not a Route 53 hosted zone ID (capital letters and digits, like Z0123456789ABC)"),
                );
                None
            }
        });
        let zone_name = self.optional(map, path, "zone_name").and_then(|(v, p)| {
            let name = self.string(v, &p)?;
            match dns_name_problem(&name) {
                Some(problem) => {
                    self.issues
                        .push(&p, format!("{name:?} is not a valid zone name: {problem}"));
                    None
                }
                None => Some(name),
            }
        });
        match (map.contains_key("zone_id"), map.contains_key("zone_name")) {
            (false, false) => self.issues.push(
                &path.key("zone_id"),
                "is required (or zone_name): the hosted zone that holds the records",
            ),
            (true, true) => self.issues.push(
                &path.key("zone_name"),
                "give zone_id or zone_name, not both",
            ),
            _ => {}
        }
        let mode = match self.optional(map, path, "mode") {
            Some((v, p)) => self.dns_mode(v, &p),
            None => DnsMode::default(),
        };
        let records: Vec<DnsRecord> = self
            .required(map, path, "records")
            .map(|(v, p)| {
                let items = self.list(v, &p).unwrap_or_default();
                if items.is_empty() && v.is_array() {
                    self.issues
                        .push(&p, "lists no record: list at least one, or leave `dns` out");
                }
                items
                    .iter()
                    .enumerate()
                    .filter_map(|(i, r)| self.record(r, &p.index(i)))
                    .collect()
            })
            .unwrap_or_default();
        // With the zone's name known, a record outside it is refused now; with only its
        // ID, discover checks the same before anything launches.
        if let Some(zone) = &zone_name {
            let records_path = path.key("records");
            for (i, record) in records.iter().enumerate() {
                if let Some(problem) = crate::dns::outside_zone(&record.name, zone) {
                    self.issues
                        .push(&records_path.index(i).key("name"), problem);
                }
            }
        }
        if mode == DnsMode::DataPlane {
            let records_path = path.key("records");
            // A record that gives an alias or values is not reported again when they
            // were refused: their own problem says what to fix.
            let gives_target = |i: usize| {
                map.get("records")
                    .and_then(|r| r.get(i))
                    .is_some_and(|r| r.get("alias").is_some() || r.get("values").is_some())
            };
            for (i, record) in records.iter().enumerate() {
                if !record.target_known_ahead() && !gives_target(i) {
                    self.issues.push(
                        &records_path.index(i),
                        format!(
                            "{} {}: dns.mode is data-plane, so the record's recovery target must be known before anything launches (the failover record is prepared with `drplan dns prepare`): give `alias` (the recovery load balancer) or `values`; the instances' addresses are known only after they launch",
                            record.name,
                            record.record_type.as_str()
                        ),
                    );
                }
            }
        }
        Some(Dns {
            zone_id,
            zone_name,
            mode,
            records,
        })
    }

    fn record(&mut self, value: &Value, path: &DocPath) -> Option<DnsRecord> {
        let map = self.mapping(value, path, RECORD_FIELDS)?;
        let name = self.required(map, path, "name").and_then(|(v, p)| {
            let name = self.string(v, &p)?;
            match dns_name_problem(&name) {
                Some(problem) => {
                    self.issues
                        .push(&p, format!("{name:?} is not a valid DNS name: {problem}"));
                    None
                }
                None => Some(name),
            }
        });
        let record_type = self.required(map, path, "type").and_then(|(v, p)| {
            let text = self.string(v, &p)?;
            let found = RecordType::ALL
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(&text))
                .map(|(_, t)| *t);
            if found.is_none() {
                self.issues.push(
                    &p,
                    format!("record type {text:?} is not supported: use A, AAAA or CNAME"),
                );
            }
            found
        });
        let alias = self
            .optional(map, path, "alias")
            .and_then(|(v, p)| self.alias(v, &p));
        let values = match self.optional(map, path, "values") {
            Some((v, p)) => self.record_values(v, &p, record_type),
            None => Vec::new(),
        };
        if map.contains_key("alias") && map.contains_key("values") {
            self.issues.push(
                &path.key("values"),
                "give alias or values, not both: an alias record points at its target only",
            );
        }
        let ttl = match self.optional(map, path, "ttl") {
            Some((_, p)) if map.contains_key("alias") => {
                self.issues.push(
                    &p,
                    "an alias record has no TTL of its own (Route 53 answers with the target's): remove ttl",
                );
                None
            }
            Some((v, p)) => self.whole_number(v, &p, 0, MAX_TTL, "seconds"),
            None => Some(DEFAULT_RECORD_TTL),
        };
        let from_wave = self
            .required(map, path, "from_wave")
            .and_then(|(v, p)| self.string(v, &p));
        let address = self.optional(map, path, "address").and_then(|(v, p)| {
            let text = self.string(v, &p)?;
            let Some(address) = RecordAddress::from_name(&text) else {
                self.issues.push(
                    &p,
                    format!(
                        "unknown address {text:?}: expected {}",
                        RecordAddress::NAMES.join(" or ")
                    ),
                );
                return None;
            };
            let target = if map.contains_key("alias") {
                Some("does not apply to an alias record: it points at its target".to_owned())
            } else if map.contains_key("values") {
                Some("does not apply with values: the record holds the values given".to_owned())
            } else {
                None
            };
            match target.or_else(|| record_type.and_then(crate::dns::address_does_not_apply)) {
                Some(problem) => {
                    self.issues.push(&p, problem);
                    None
                }
                None => Some(address),
            }
        });
        // Placeholders keep the record, so `from_wave` is still checked against the
        // waves; the problems above already make the plan invalid.
        Some(DnsRecord {
            name: name.unwrap_or_default(),
            record_type: record_type.unwrap_or(RecordType::A),
            ttl: ttl.unwrap_or(DEFAULT_RECORD_TTL),
            from_wave: from_wave.unwrap_or_default(),
            address,
            alias,
            values,
        })
    }

    fn dns_mode(&mut self, value: &Value, path: &DocPath) -> DnsMode {
        let Some(text) = self.string(value, path) else {
            return DnsMode::default();
        };
        match DnsMode::ALL.iter().find(|(n, _)| *n == text) {
            Some((_, mode)) => *mode,
            None => {
                let names: Vec<&str> = DnsMode::ALL.iter().map(|(n, _)| *n).collect();
                self.issues.push(
                    path,
                    format!("unknown mode {text:?}: expected {}", names.join(" or ")),
                );
                DnsMode::default()
            }
        }
    }

    fn alias(&mut self, value: &Value, path: &DocPath) -> Option<AliasTarget> {
        let map = self.mapping(value, path, ALIAS_FIELDS)?;
        let dns_name = self.required(map, path, "dns_name").and_then(|(v, p)| {
            let name = self.string(v, &p)?;
            match dns_name_problem(&name) {
                Some(problem) => {
                    self.issues
                        .push(&p, format!("{name:?} is not a valid DNS name: {problem}"));
                    None
                }
                None => Some(name),
            }
        });
        let hosted_zone_id = self
            .required(map, path, "hosted_zone_id")
            .and_then(|(v, p)| {
                let id = self.string(v, &p)?;
                let valid = id.len() <= 32
                    && id.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
                if valid {
                    Some(id)
                } else {
                    self.issues.push(
                        &p,
                        format!("{id:?} is not a hosted zone ID (capital letters and digits: a load balancer's CanonicalHostedZoneId, like Z35SXDOTRQ7X7K)"),
                    );
                    None
                }
            });
        let evaluate_target_health = match self.optional(map, path, "evaluate_target_health") {
            Some((Value::Bool(b), _)) => *b,
            Some((other, p)) => {
                self.issues.push(
                    &p,
                    format!("must be true or false, found {}", describe(other)),
                );
                false
            }
            None => false,
        };
        Some(AliasTarget {
            dns_name: dns_name?,
            hosted_zone_id: hosted_zone_id?,
            evaluate_target_health,
        })
    }

    /// The fixed values of a record, each checked against the record's type.
    fn record_values(
        &mut self,
        value: &Value,
        path: &DocPath,
        record_type: Option<RecordType>,
    ) -> Vec<String> {
        let values = self.list_of_strings(value, path);
        if value.as_array().is_some_and(Vec::is_empty) {
            self.issues.push(
                path,
                "lists no value: list at least one, or leave values out",
            );
        }
        let mut good = Vec::with_capacity(values.len());
        for (i, text) in values.into_iter().enumerate() {
            let problem = match record_type {
                Some(RecordType::A) => text.parse::<Ipv4Addr>().err().map(|_| {
                    format!("{text:?} is not an IPv4 address (an A record holds IPv4 addresses)")
                }),
                Some(RecordType::AAAA) => text.parse::<Ipv6Addr>().err().map(|_| {
                    format!("{text:?} is not an IPv6 address (an AAAA record holds IPv6 addresses)")
                }),
                Some(RecordType::CNAME) if i > 0 => {
                    Some("a CNAME record holds one name: list one value".to_owned())
                }
                Some(RecordType::CNAME) => dns_name_problem(&text)
                    .map(|problem| format!("{text:?} is not a valid DNS name: {problem}")),
                None => None,
            };
            match problem {
                Some(problem) => self.issues.push(&path.index(i), problem),
                None => good.push(text),
            }
        }
        good
    }
}
