//! The EC2 calls drplan makes on recovered instances: tags, for the health gate their
//! status checks and addresses, and for DNS records where they can be reached.

use std::collections::HashMap;

use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::{Filter, Tag};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use drplan_core::contract::tags::NAME;
use drplan_core::dns::InstanceAddress;
use drplan_core::health::Ec2Status;
use drplan_core::tagging::TaggingPlan;
use futures_util::{StreamExt, stream};

use crate::FunctionError;

/// CreateTags calls in flight at once: the per-instance `Name` calls are few (only for
/// instances DRS left unnamed), the wave's batches at most a handful; a few at once keep
/// them short without leaning on EC2's request bucket, whose throttling comes back as
/// `drplan.Throttled` and is retried by the state machine.
const CREATE_TAGS_IN_FLIGHT: usize = 4;

/// Makes the CreateTags calls of `plan`: the wave's tags on each batch of instances in
/// one call, and each missing `Name` in a call of its own. The first failure stops the
/// calls not yet made and is returned; a retry of the step plans again from the tags
/// the instances carry by then.
pub async fn apply_tagging(ec2: &Client, plan: &TaggingPlan) -> Result<(), FunctionError> {
    let tags_of = |tags: &[(String, String)]| -> Vec<Tag> {
        tags.iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect()
    };
    let wave_tags = tags_of(&plan.wave_tags);
    let batches = plan.batches.iter().map(|batch| {
        ec2.create_tags()
            .set_resources(Some(batch.clone()))
            .set_tags(Some(wave_tags.clone()))
            .send()
    });
    let names = plan.names.iter().map(|(instance_id, name)| {
        ec2.create_tags()
            .resources(instance_id)
            .set_tags(Some(tags_of(&[(NAME.to_owned(), name.clone())])))
            .send()
    });
    let calls = batches.chain(names);
    let mut answers = stream::iter(calls).buffer_unordered(CREATE_TAGS_IN_FLIGHT);
    while let Some(answer) = answers.next().await {
        // Returning drops the stream, and with it the calls not yet made.
        answer.map_err(|e| FunctionError::from_sdk("EC2 CreateTags", e))?;
    }
    Ok(())
}

/// Values per DescribeTags filter: EC2 takes at most 200; fewer keep each request small.
const TAG_FILTER_VALUES: usize = 100;

/// The tags with one of `keys` that each of `instance_ids` carries, by instance ID
/// (DescribeTags: one request per 100 instances, not one per instance). An instance
/// with none of the keys is absent.
pub async fn instance_tags(
    ec2: &Client,
    instance_ids: &[String],
    keys: &[String],
) -> Result<HashMap<String, HashMap<String, String>>, FunctionError> {
    let mut found: HashMap<String, HashMap<String, String>> = HashMap::new();
    for chunk in instance_ids.chunks(TAG_FILTER_VALUES) {
        let mut pages = ec2
            .describe_tags()
            .filters(
                Filter::builder()
                    .name("resource-id")
                    .set_values(Some(chunk.to_vec()))
                    .build(),
            )
            .filters(
                Filter::builder()
                    .name("key")
                    .set_values(Some(keys.to_vec()))
                    .build(),
            )
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| FunctionError::from_sdk("EC2 DescribeTags", e))?;
            for tag in page.tags() {
                let (Some(resource), Some(key)) = (tag.resource_id(), tag.key()) else {
                    continue;
                };
                found
                    .entry(resource.to_owned())
                    .or_default()
                    .insert(key.to_owned(), tag.value().unwrap_or_default().to_owned());
            }
        }
    }
    Ok(found)
}

/// DescribeInstanceStatus and DescribeInstances take at most this many instance IDs a call.
const INSTANCE_IDS_PER_CALL: usize = 100;

/// The EC2 state and status checks of each instance EC2 knows, by instance ID.
/// IncludeAllInstances: without it EC2 leaves out instances that are not running, and
/// a stopped or terminated recovery instance must show as such, not as missing.
pub async fn instance_statuses(
    ec2: &Client,
    instance_ids: &[String],
) -> Result<HashMap<String, Ec2Status>, FunctionError> {
    let mut statuses = HashMap::with_capacity(instance_ids.len());
    for chunk in instance_ids.chunks(INSTANCE_IDS_PER_CALL) {
        match describe_statuses(ec2, chunk).await {
            Ok(found) => statuses.extend(found),
            // EC2 refuses the whole call when one ID is unknown to it (an instance just
            // launched, not visible yet): ask one by one and leave the unknown out.
            Err(StatusLookup::NotFound) => {
                for id in chunk {
                    match describe_statuses(ec2, std::slice::from_ref(id)).await {
                        Ok(found) => statuses.extend(found),
                        Err(StatusLookup::NotFound) => {}
                        Err(StatusLookup::Failed(e)) => return Err(e),
                    }
                }
            }
            Err(StatusLookup::Failed(e)) => return Err(e),
        }
    }
    Ok(statuses)
}

enum StatusLookup {
    NotFound,
    Failed(FunctionError),
}

async fn describe_statuses(
    ec2: &Client,
    instance_ids: &[String],
) -> Result<Vec<(String, Ec2Status)>, StatusLookup> {
    let answer = ec2
        .describe_instance_status()
        .set_instance_ids(Some(instance_ids.to_vec()))
        .include_all_instances(true)
        .send()
        .await
        .map_err(|e| {
            if e.code() == Some("InvalidInstanceID.NotFound") {
                StatusLookup::NotFound
            } else {
                StatusLookup::Failed(FunctionError::from_sdk("EC2 DescribeInstanceStatus", e))
            }
        })?;
    Ok(answer
        .instance_statuses()
        .iter()
        .filter_map(|s| {
            let id = s.instance_id()?.to_owned();
            let status = Ec2Status {
                instance_state: s
                    .instance_state()
                    .and_then(|state| state.name())
                    .map_or("unknown", |name| name.as_str())
                    .to_owned(),
                system_status: s
                    .system_status()
                    .and_then(|summary| summary.status())
                    .map_or("insufficient-data", |status| status.as_str())
                    .to_owned(),
                instance_status: s
                    .instance_status()
                    .and_then(|summary| summary.status())
                    .map_or("insufficient-data", |status| status.as_str())
                    .to_owned(),
            };
            Some((id, status))
        })
        .collect())
}

/// An instance's IPv4 addresses, as DescribeInstances reports them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstanceIps {
    pub private_ip: Option<String>,
    pub public_ip: Option<String>,
    pub subnet_id: Option<String>,
}

/// The private and public IPv4 addresses of each instance EC2 knows, by instance ID.
pub async fn instance_ips(
    ec2: &Client,
    instance_ids: &[String],
) -> Result<HashMap<String, InstanceIps>, FunctionError> {
    let mut ips = HashMap::with_capacity(instance_ids.len());
    for chunk in instance_ids.chunks(INSTANCE_IDS_PER_CALL) {
        // A filter, not InstanceIds: an ID EC2 does not know yet is left out instead of
        // failing the whole call.
        let filter = Filter::builder()
            .name("instance-id")
            .set_values(Some(chunk.to_vec()))
            .build();
        let reservations = ec2
            .describe_instances()
            .filters(filter)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|e| FunctionError::from_sdk("EC2 DescribeInstances", e))?;
        for instance in reservations.iter().flat_map(|r| r.instances()) {
            let Some(id) = instance.instance_id() else {
                continue;
            };
            let non_empty = |ip: Option<&str>| ip.filter(|ip| !ip.is_empty()).map(str::to_owned);
            ips.insert(
                id.to_owned(),
                InstanceIps {
                    private_ip: non_empty(instance.private_ip_address()),
                    public_ip: non_empty(instance.public_ip_address()),
                    subnet_id: non_empty(instance.subnet_id()),
                },
            );
        }
    }
    Ok(ips)
}

/// Where the given instances can be reached, for DNS records: (source server, hostname,
/// EC2 instance) each.
pub async fn instance_addresses(
    ec2: &Client,
    instances: &[(String, Option<String>, String)],
) -> Result<Vec<InstanceAddress>, FunctionError> {
    let mut found = Vec::with_capacity(instances.len());
    for chunk in instances.chunks(INSTANCE_IDS_PER_CALL) {
        let ids: Vec<String> = chunk.iter().map(|(_, _, id)| id.clone()).collect();
        let answer = ec2
            .describe_instances()
            .set_instance_ids(Some(ids))
            .send()
            .await
            .map_err(|e| FunctionError::from_sdk("EC2 DescribeInstances", e))?;
        for instance in answer.reservations().iter().flat_map(|r| r.instances()) {
            let Some(id) = instance.instance_id() else {
                continue;
            };
            let Some((server, hostname, _)) = chunk.iter().find(|(_, _, i)| i == id) else {
                continue;
            };
            found.push(InstanceAddress {
                source_server_id: server.clone(),
                hostname: hostname.clone(),
                ec2_instance_id: id.to_owned(),
                private_ipv4: instance.private_ip_address().map(str::to_owned),
                public_ipv4: instance
                    .public_ip_address()
                    .filter(|ip| !ip.is_empty())
                    .map(str::to_owned),
                ipv6: instance.ipv6_address().map(str::to_owned),
                private_dns_name: instance
                    .private_dns_name()
                    .filter(|n| !n.is_empty())
                    .map(str::to_owned),
            });
        }
    }
    Ok(found)
}

/// How many addresses a subnet has free (`AvailableIpAddressCount`); `None` when EC2
/// does not say (or does not know the subnet: the isolation check names that).
pub async fn subnet_free_addresses(
    ec2: &Client,
    subnet_id: &str,
) -> Result<Option<u64>, FunctionError> {
    match ec2.describe_subnets().subnet_ids(subnet_id).send().await {
        Ok(described) => Ok(described
            .subnets()
            .first()
            .and_then(|s| s.available_ip_address_count())
            .and_then(|n| u64::try_from(n).ok())),
        Err(e)
            if matches!(
                e.code(),
                Some("InvalidSubnetID.NotFound" | "InvalidSubnetID.Malformed")
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(FunctionError::from_sdk("EC2 DescribeSubnets", e)),
    }
}
