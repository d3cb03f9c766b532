//! `drplan local seed FLEET.yaml`: fills the local cloud from one fleet file (documented in
//! local/cloud/README.md). Everything goes through the gateway's AWS APIs and the
//! simulator's control API, and every step looks before it creates, so seeding twice
//! leaves the same cloud as seeding once.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use hyper::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::{LocalCloudError, Result};
use crate::upstream::{AwsClient, HttpClient, check_status};
use crate::xml;

mod drs_roles;
mod load_balancers;
mod network;

pub use load_balancers::{
    LoadBalancer, SeededLoadBalancer, SeededTargetGroup, SubnetKind, TargetGroup, target_group_name,
};
use network::{SeededNetwork, seed_network};

/// The fleet file. Unknown fields are errors: other tools write this file, and a typo
/// must not silently seed something else.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Fleet {
    #[serde(default = "default_region")]
    pub region: String,
    #[serde(default)]
    pub source_servers: Vec<ServerGroup>,
    #[serde(default)]
    pub network: Network,
    #[serde(default)]
    pub hosted_zones: Vec<HostedZone>,
    #[serde(default)]
    pub notifications: Notifications,
    /// Application load balancers with their target groups, in the seeded VPC.
    #[serde(default)]
    pub load_balancers: Vec<LoadBalancer>,
}

/// `count` source servers named by `hostname` with `{i}` / `{i:03}` replaced by
/// `start`, `start + 1`, ...
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServerGroup {
    #[serde(default = "one")]
    pub count: u32,
    #[serde(default = "one")]
    pub start: u32,
    pub hostname: String,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default)]
    pub replication: Replication,
    #[serde(default)]
    pub instance_type: Option<String>,
    /// EC2 sources: the Region they run in (`sourceCloudProperties.originRegion`), which
    /// ReverseReplication replicates back to; absent for sources outside AWS.
    #[serde(default)]
    pub origin_region: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Replication {
    /// DRS's dataReplicationState, e.g. CONTINUOUS, INITIAL_SYNC, STALLED, DISCONNECTED.
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub lag_seconds: Option<u64>,
}

/// The VPC recovered instances launch into: a recovery subnet (in every source server's
/// launch template) and a drill subnet with its own isolated route table (see `network`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Network {
    #[serde(default = "default_network_name")]
    pub name: String,
    #[serde(default = "default_vpc_cidr")]
    pub vpc_cidr: String,
    #[serde(default = "default_recovery_cidr")]
    pub recovery_subnet_cidr: String,
    #[serde(default = "default_drill_cidr")]
    pub drill_subnet_cidr: String,
    /// Recovered instances get a public IPv4 too (MapPublicIpOnLaunch on both subnets),
    /// for plans whose health gate probes public addresses.
    #[serde(default)]
    pub public_ips: bool,
    /// Where the source machines outside AWS live (their `sourceProperties` address,
    /// where a failback brings them home): the fleet's servers take its addresses in
    /// order. Absent: the simulator's documentation range (198.51.100.0/22 and up).
    #[serde(default)]
    pub source_cidr: Option<String>,
}

impl Default for Network {
    fn default() -> Self {
        Self {
            name: default_network_name(),
            vpc_cidr: default_vpc_cidr(),
            recovery_subnet_cidr: default_recovery_cidr(),
            drill_subnet_cidr: default_drill_cidr(),
            public_ips: false,
            source_cidr: None,
        }
    }
}

/// The `index`th (0-based) host address of `cidr`, or why there is none.
fn source_address(cidr: &str, index: usize) -> std::result::Result<String, String> {
    let (base, bits) = cidr.split_once('/').ok_or_else(|| {
        format!("network.source_cidr {cidr:?} is not a CIDR block such as 10.9.0.0/16")
    })?;
    let base: std::net::Ipv4Addr = base
        .parse()
        .map_err(|_| format!("network.source_cidr {cidr:?}: {base:?} is not an IPv4 address"))?;
    let bits: u32 = bits
        .parse()
        .ok()
        .filter(|bits| (8..=30).contains(bits))
        .ok_or_else(|| format!("network.source_cidr {cidr:?}: the prefix must be /8 to /30"))?;
    let hosts = (1u64 << (32 - bits)) - 2;
    if index as u64 >= hosts {
        return Err(format!(
            "network.source_cidr {cidr} has {hosts} host addresses, fewer than the fleet's servers"
        ));
    }
    let mask = u32::MAX << (32 - bits);
    Ok(std::net::Ipv4Addr::from((u32::from(base) & mask) + index as u32 + 1).to_string())
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HostedZone {
    pub name: String,
    #[serde(default)]
    pub records: Vec<Record>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    pub name: String,
    #[serde(rename = "type")]
    pub record_type: String,
    #[serde(default = "default_ttl")]
    pub ttl: u32,
    pub values: Vec<String>,
}

/// The SNS topic drplan notifies, and the SQS queue subscribed to it so that every
/// notification can be read back.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Notifications {
    #[serde(default = "default_notifications_name")]
    pub topic: String,
    #[serde(default = "default_notifications_name")]
    pub queue: String,
}

impl Default for Notifications {
    fn default() -> Self {
        Self {
            topic: default_notifications_name(),
            queue: default_notifications_name(),
        }
    }
}

fn default_region() -> String {
    "us-east-1".to_string()
}
fn one() -> u32 {
    1
}
fn default_network_name() -> String {
    "drplan-local".to_string()
}
fn default_vpc_cidr() -> String {
    "10.0.0.0/16".to_string()
}
fn default_recovery_cidr() -> String {
    "10.0.1.0/24".to_string()
}
fn default_drill_cidr() -> String {
    "10.0.2.0/24".to_string()
}
fn default_ttl() -> u32 {
    300
}
fn default_notifications_name() -> String {
    "drplan-notifications".to_string()
}

impl Fleet {
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| LocalCloudError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_yaml(&text).map_err(|problem| LocalCloudError::InvalidFile {
            path: path.to_path_buf(),
            problem,
        })
    }

    /// Parses and checks a fleet (YAML, or JSON, which is YAML too).
    pub fn from_yaml(text: &str) -> std::result::Result<Self, String> {
        let fleet: Self = serde_norway::from_str(text).map_err(|error| error.to_string())?;
        fleet.servers()?;
        load_balancers::check(&fleet.load_balancers)?;
        for (index, zone) in fleet.hosted_zones.iter().enumerate() {
            for (record_index, record) in zone.records.iter().enumerate() {
                if record.values.is_empty() {
                    return Err(format!(
                        "hosted_zones[{index}].records[{record_index}] ({}): values must not be empty",
                        record.name
                    ));
                }
            }
        }
        Ok(fleet)
    }

    /// Every source server the fleet describes, hostnames expanded; an error names a
    /// malformed pattern or a hostname that two groups produce.
    pub fn servers(&self) -> std::result::Result<Vec<ServerSeed>, String> {
        let mut seen = BTreeSet::new();
        let mut servers = Vec::new();
        for (index, group) in self.source_servers.iter().enumerate() {
            for number in group.start..group.start.saturating_add(group.count) {
                let hostname = expand_hostname(&group.hostname, number)
                    .map_err(|problem| format!("source_servers[{index}].hostname: {problem}"))?;
                if !seen.insert(hostname.clone()) {
                    return Err(format!(
                        "source_servers[{index}]: hostname {hostname} is produced twice"
                    ));
                }
                servers.push(ServerSeed {
                    hostname,
                    tags: group.tags.clone(),
                    replication: group.replication.clone(),
                    instance_type: group.instance_type.clone(),
                    origin_region: group.origin_region.clone(),
                });
            }
        }
        Ok(servers)
    }
}

/// One source server to create.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerSeed {
    pub hostname: String,
    pub tags: BTreeMap<String, String>,
    pub replication: Replication,
    pub instance_type: Option<String>,
    pub origin_region: Option<String>,
}

/// `app-{i:03}` with 7 → `app-007`; `{i}` → `7`; `{i:4}` → `   7` is not allowed
/// (hostnames have no spaces), only zero padding.
pub fn expand_hostname(pattern: &str, number: u32) -> std::result::Result<String, String> {
    let mut expanded = String::new();
    let mut rest = pattern;
    while let Some(open) = rest.find('{') {
        expanded.push_str(&rest[..open]);
        let close = rest[open..]
            .find('}')
            .map(|offset| open + offset)
            .ok_or_else(|| format!("unclosed {{ in {pattern:?}"))?;
        let field = &rest[open + 1..close];
        match field {
            "i" => expanded.push_str(&number.to_string()),
            _ => {
                let width = field
                    .strip_prefix("i:0")
                    .and_then(|width| width.parse::<usize>().ok())
                    .ok_or_else(|| {
                        format!(
                            "{{{field}}} in {pattern:?} is not {{i}} or {{i:0N}} (e.g. {{i:03}})"
                        )
                    })?;
                expanded.push_str(&format!("{number:0width$}"));
            }
        }
        rest = &rest[close + 1..];
    }
    expanded.push_str(rest);
    if expanded.is_empty() || expanded.contains(char::is_whitespace) {
        return Err(format!("{pattern:?} gives the hostname {expanded:?}"));
    }
    Ok(expanded)
}

/// What seeding made (or found already there).
#[derive(Clone, Debug, Serialize)]
pub struct SeedReport {
    pub region: String,
    pub vpc_id: String,
    pub recovery_subnet_id: String,
    pub drill_subnet_id: String,
    /// The drill subnet's own route table: only the VPC's `local` route (isolated). Add a
    /// route to an internet gateway to make drills reachable from outside.
    pub drill_route_table_id: String,
    /// Security group `drplan-recovery`: in every seeded server's launch template.
    pub recovery_security_group_id: String,
    /// Security group `drplan-drill`, for a plan's drill settings.
    pub drill_security_group_id: String,
    pub source_servers_created: usize,
    pub source_servers_updated: usize,
    pub hosted_zones: Vec<SeededZone>,
    pub topic_arn: String,
    pub queue_url: String,
    pub load_balancers: Vec<SeededLoadBalancer>,
}

impl SeedReport {
    /// The seeded target group a plan's target group ARN stands for: the one of the
    /// same name (moto's ARNs end in a random ID, a plan's in its account's).
    pub fn target_group_for(&self, plan_arn: &str) -> Option<&SeededTargetGroup> {
        let name = target_group_name(plan_arn)?;
        self.load_balancers
            .iter()
            .flat_map(|lb| lb.target_groups.iter())
            .find(|tg| tg.name == name)
    }

    /// `plan` with each wave target's ARN replaced by the seeded target group of the
    /// same name, where there is one; returns what it replaced (plan ARN, seeded ARN).
    pub fn use_seeded_target_groups(&self, plan: &mut Value) -> Vec<(String, String)> {
        let mut replaced = Vec::new();
        let waves = plan.get_mut("waves").and_then(Value::as_array_mut);
        for wave in waves.into_iter().flatten() {
            let targets = wave.get_mut("targets").and_then(Value::as_array_mut);
            for target in targets.into_iter().flatten() {
                let Some(arn) = target.get("target_group_arn").and_then(Value::as_str) else {
                    continue;
                };
                if let Some(seeded) = self.target_group_for(arn)
                    && seeded.arn != arn
                {
                    replaced.push((arn.to_owned(), seeded.arn.clone()));
                    target["target_group_arn"] = json!(seeded.arn);
                }
            }
        }
        replaced
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct SeededZone {
    pub name: String,
    pub zone_id: String,
    pub records: usize,
}

/// Seeds the local cloud behind `endpoint_url` (the gateway) with `fleet`.
pub async fn seed(endpoint_url: &str, fleet: &Fleet) -> Result<SeedReport> {
    let servers = fleet.servers().map_err(LocalCloudError::InvalidInput)?;
    let aws = AwsClient::new(HttpClient::new(), endpoint_url, &fleet.region);
    let sized =
        network::sized_for(&fleet.network, servers.len()).map_err(LocalCloudError::InvalidInput)?;
    refuse_a_network_too_small(&aws, &sized, &servers).await?;
    let network = seed_network(&aws, &sized).await?;
    let (created, updated) = seed_source_servers(
        &aws,
        &servers,
        &network,
        fleet.network.source_cidr.as_deref(),
    )
    .await?;
    // EC2 sources: a network of their own in each origin Region, around their addresses.
    if let Some(source_cidr) = fleet.network.source_cidr.as_deref() {
        let origins: BTreeSet<&str> = servers
            .iter()
            .filter_map(|server| server.origin_region.as_deref())
            .collect();
        for origin in origins {
            let there = AwsClient::new(HttpClient::new(), endpoint_url, origin);
            network::seed_origin_network(
                &there,
                source_cidr,
                &fleet.network.name,
                fleet.network.public_ips,
            )
            .await?;
        }
    }
    let mut zones = Vec::new();
    for zone in &fleet.hosted_zones {
        zones.push(seed_hosted_zone(&aws, zone).await?);
    }
    let (topic_arn, queue_url) = seed_notifications(&aws, &fleet.notifications).await?;
    drs_roles::seed_drs_service_roles(&aws).await?;
    let mut load_balancers = Vec::new();
    for lb in &fleet.load_balancers {
        load_balancers.push(load_balancers::seed_load_balancer(&aws, lb, &network).await?);
    }
    Ok(SeedReport {
        region: fleet.region.clone(),
        vpc_id: network.vpc_id,
        recovery_subnet_id: network.recovery_subnet_id,
        drill_subnet_id: network.drill_subnet_id,
        drill_route_table_id: network.drill_route_table_id,
        recovery_security_group_id: network.recovery_security_group_id,
        drill_security_group_id: network.drill_security_group_id,
        source_servers_created: created,
        source_servers_updated: updated,
        hosted_zones: zones,
        topic_arn,
        queue_url,
        load_balancers,
    })
}

/// Refuses, before anything is created, a network whose subnets cannot take one instance
/// per source server that launches into them: the fleet's, and those an earlier seeding
/// put into a subnet that already exists (its CIDR is fixed by then). Otherwise the first
/// drill or recovery would find out half way through a wave.
async fn refuse_a_network_too_small(
    aws: &AwsClient,
    sized: &Network,
    servers: &[ServerSeed],
) -> Result<()> {
    let (recovery, drill) = network::existing_subnets(aws, sized).await?;
    let seeded = if recovery.is_some() || drill.is_some() {
        control_call(aws, Method::GET, "/_drplan/state", None).await?
    } else {
        Value::Null
    };
    let fleet: BTreeSet<&str> = servers.iter().map(|s| s.hostname.as_str()).collect();
    // Every seeded server's launch template names the recovery subnet; a drill launches
    // the same servers into the drill subnet.
    let others_in_recovery_subnet = recovery.as_ref().map_or(0, |(subnet_id, _)| {
        seeded
            .get("servers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|server| {
                server.get("replication_direction").and_then(Value::as_str) != Some("FAILBACK")
                    && server.get("launch_subnet_id").and_then(Value::as_str)
                        == Some(subnet_id.as_str())
                    && server
                        .get("hostname")
                        .and_then(Value::as_str)
                        .is_some_and(|hostname| !fleet.contains(hostname))
            })
            .count() as u64
    });
    let load = |field, mode, existing: Option<(String, String)>, cidr: &String| {
        let (existing_subnet_id, cidr) = match existing {
            Some((subnet_id, cidr)) => (Some(subnet_id), cidr),
            None => (None, cidr.clone()),
        };
        network::SubnetLoad {
            field,
            mode,
            other_servers: if existing_subnet_id.is_some() {
                others_in_recovery_subnet
            } else {
                0
            },
            existing_subnet_id,
            cidr,
            fleet_servers: servers.len() as u64,
        }
    };
    let problems = network::capacity_problems(&[
        load(
            "recovery_subnet_cidr",
            "recovery",
            recovery,
            &sized.recovery_subnet_cidr,
        ),
        load(
            "drill_subnet_cidr",
            "drill",
            drill,
            &sized.drill_subnet_cidr,
        ),
    ]);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(LocalCloudError::InvalidInput(problems.join("; ")))
    }
}

/// The simulator upserts by hostname, so sending every server again is idempotent.
async fn seed_source_servers(
    aws: &AwsClient,
    servers: &[ServerSeed],
    network: &SeededNetwork,
    source_cidr: Option<&str>,
) -> Result<(usize, usize)> {
    let mut created = 0;
    let mut updated = 0;
    for (batch_number, batch) in servers.chunks(500).enumerate() {
        let specs: Vec<Value> = batch
            .iter()
            .enumerate()
            .map(|(offset, server)| {
                let mut spec = json!({
                    "hostname": server.hostname,
                    "tags": server.tags,
                    "replication": {
                        "state": server.replication.state,
                        "lag_seconds": server.replication.lag_seconds,
                    },
                    // The launch template's subnet and security groups: DRS launches
                    // drills and recoveries alike from the template's default version.
                    "launch_subnet_id": network.recovery_subnet_id,
                    "launch_security_group_ids": [network.recovery_security_group_id],
                });
                if let Some(instance_type) = &server.instance_type {
                    spec["instance_type"] = json!(instance_type);
                }
                if let Some(origin_region) = &server.origin_region {
                    spec["origin_region"] = json!(origin_region);
                }
                if let Some(cidr) = source_cidr {
                    spec["source_ip"] = json!(source_address(cidr, batch_number * 500 + offset)?);
                }
                Ok(spec)
            })
            .collect::<std::result::Result<_, String>>()
            .map_err(LocalCloudError::InvalidInput)?;
        let answer = control_call(
            aws,
            Method::POST,
            "/_drplan/source-servers",
            Some(&json!({ "servers": specs })),
        )
        .await?;
        for server in answer
            .get("servers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if server.get("created") == Some(&Value::Bool(true)) {
                created += 1;
            } else {
                updated += 1;
            }
        }
    }
    Ok((created, updated))
}

/// A call to the simulator's control API (under `/_drplan/`), through the gateway.
pub async fn control_call(
    aws: &AwsClient,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> Result<Value> {
    let body = body.map(Value::to_string).unwrap_or_default();
    let answer = aws
        .rest("drs", method, path, "application/json", body.into_bytes())
        .await?;
    check_status("drs", path, &answer)?;
    if answer.body.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&answer.body).map_err(|error| LocalCloudError::UnexpectedAnswer {
        service: "drs",
        operation: path.to_string(),
        problem: format!("not JSON ({error}): {}", answer.body_text()),
    })
}

const ROUTE53_PREFIX: &str = "/2013-04-01";

async fn seed_hosted_zone(aws: &AwsClient, zone: &HostedZone) -> Result<SeededZone> {
    let dns_name = zone.name.trim_end_matches('.');
    let fqdn = format!("{dns_name}.");
    let query: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("dnsname", dns_name)
        .finish();
    let found = aws
        .rest(
            "route53",
            Method::GET,
            &format!("{ROUTE53_PREFIX}/hostedzonesbyname?{query}"),
            "application/xml",
            Vec::new(),
        )
        .await?;
    check_status("route53", "ListHostedZonesByName", &found)?;
    let existing = xml::blocks(&found.body_text(), "HostedZone")
        .into_iter()
        .find(|block| block.children.get("Name") == Some(&fqdn))
        .and_then(|block| block.children.get("Id").cloned());
    let zone_path = match existing {
        Some(id) => id,
        None => {
            let request = format!(
                r#"<?xml version="1.0" encoding="UTF-8"?>
<CreateHostedZoneRequest xmlns="https://route53.amazonaws.com/doc/2013-04-01/">
  <Name>{}</Name>
  <CallerReference>drplan-local-{}</CallerReference>
</CreateHostedZoneRequest>"#,
                xml_escape(&fqdn),
                xml_escape(dns_name)
            );
            let created = aws
                .rest(
                    "route53",
                    Method::POST,
                    &format!("{ROUTE53_PREFIX}/hostedzone"),
                    "application/xml",
                    request.into_bytes(),
                )
                .await?;
            check_status("route53", "CreateHostedZone", &created)?;
            required(
                xml::first_text(&created.body_text(), "Id"),
                "route53",
                "CreateHostedZone",
            )?
        }
    };
    // Ids come as `/hostedzone/Z123`; plans and SDKs use `Z123`.
    let zone_id = zone_path
        .rsplit('/')
        .next()
        .unwrap_or(&zone_path)
        .to_string();
    if !zone.records.is_empty() {
        upsert_records(aws, &zone_id, &zone.records).await?;
    }
    Ok(SeededZone {
        name: dns_name.to_string(),
        zone_id,
        records: zone.records.len(),
    })
}

/// UPSERT makes writing the same records twice harmless.
async fn upsert_records(aws: &AwsClient, zone_id: &str, records: &[Record]) -> Result<()> {
    let changes: String = records
        .iter()
        .map(|record| {
            let values: String = record
                .values
                .iter()
                .map(|value| {
                    format!(
                        "<ResourceRecord><Value>{}</Value></ResourceRecord>",
                        xml_escape(value)
                    )
                })
                .collect();
            format!(
                "<Change><Action>UPSERT</Action><ResourceRecordSet><Name>{}</Name><Type>{}</Type>\
                 <TTL>{}</TTL><ResourceRecords>{values}</ResourceRecords></ResourceRecordSet></Change>",
                xml_escape(&record.name),
                xml_escape(&record.record_type),
                record.ttl
            )
        })
        .collect();
    let request = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<ChangeResourceRecordSetsRequest xmlns="https://route53.amazonaws.com/doc/2013-04-01/">
  <ChangeBatch><Comment>drplan local seed</Comment><Changes>{changes}</Changes></ChangeBatch>
</ChangeResourceRecordSetsRequest>"#
    );
    let answer = aws
        .rest(
            "route53",
            Method::POST,
            &format!("{ROUTE53_PREFIX}/hostedzone/{zone_id}/rrset/"),
            "application/xml",
            request.into_bytes(),
        )
        .await?;
    check_status("route53", "ChangeResourceRecordSets", &answer)
}

async fn seed_notifications(
    aws: &AwsClient,
    notifications: &Notifications,
) -> Result<(String, String)> {
    const SNS_VERSION: &str = "2010-03-31";
    let topic = aws
        .query(
            "sns",
            SNS_VERSION,
            "CreateTopic",
            &[("Name", &notifications.topic)],
        )
        .await?;
    let topic_arn = required(xml::first_text(&topic, "TopicArn"), "sns", "CreateTopic")?;
    let queue = aws
        .json(
            "sqs",
            "1.0",
            "AmazonSQS",
            "CreateQueue",
            &json!({ "QueueName": notifications.queue }),
        )
        .await?;
    let queue_url = required(
        queue
            .get("QueueUrl")
            .and_then(Value::as_str)
            .map(str::to_string),
        "sqs",
        "CreateQueue",
    )?;
    let attributes = aws
        .json(
            "sqs",
            "1.0",
            "AmazonSQS",
            "GetQueueAttributes",
            &json!({ "QueueUrl": queue_url, "AttributeNames": ["QueueArn"] }),
        )
        .await?;
    let queue_arn = required(
        attributes
            .pointer("/Attributes/QueueArn")
            .and_then(Value::as_str)
            .map(str::to_string),
        "sqs",
        "GetQueueAttributes",
    )?;
    let subscriptions = aws
        .query(
            "sns",
            SNS_VERSION,
            "ListSubscriptionsByTopic",
            &[("TopicArn", &topic_arn)],
        )
        .await?;
    let subscribed = xml::blocks(&subscriptions, "member").iter().any(|member| {
        member.children.get("Endpoint") == Some(&queue_arn)
            && member.children.get("Protocol").map(String::as_str) == Some("sqs")
    });
    if !subscribed {
        aws.query(
            "sns",
            SNS_VERSION,
            "Subscribe",
            &[
                ("TopicArn", &topic_arn),
                ("Protocol", "sqs"),
                ("Endpoint", &queue_arn),
            ],
        )
        .await?;
    }
    Ok((topic_arn, queue_url))
}

fn required(value: Option<String>, service: &'static str, operation: &str) -> Result<String> {
    value.ok_or_else(|| LocalCloudError::UnexpectedAnswer {
        service,
        operation: operation.to_string(),
        problem: "the answer lacks the created resource's id".to_string(),
    })
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests;
