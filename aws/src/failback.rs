//! What DRS says of a plan's failback, for `drplan_core::failback`: each server's recovery
//! instance in this Region (its `failback.state` and the Failback Client that connected)
//! and, for EC2 sources (`sourceCloudProperties.originRegion`), the replication state of
//! the reversed-direction source server that ReverseReplication made in the origin Region.
//!
//! Calls: DescribeSourceServers and DescribeRecoveryInstances for the plan's servers (200
//! IDs a call), and one DescribeSourceServers per origin Region for the reversed servers.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use aws_sdk_drs::Client;
use aws_sdk_drs::types::{
    DescribeRecoveryInstancesRequestFilters, DescribeSourceServersRequestFilters, SourceServer,
};
use drplan_core::ResolvedPlan;
use drplan_core::contract::RunRecords;
use drplan_core::contract::tags::EXECUTION as TAG_EXECUTION;
use drplan_core::dns::DnsCutover;
use drplan_core::failback::run::{FailbackRecord, recovery_job_ids};
use drplan_core::failback::{COMPLETED, RecoveryInstanceFacts, ServerFailbackFacts};

use crate::FunctionError;
use crate::drs::{self, all_items};
use crate::store::RunStore;

/// DescribeSourceServers and DescribeRecoveryInstances take at most this many IDs a filter.
const IDS_PER_CALL: usize = 200;

/// The failback facts of every server of the resolved plan, in the plan's order.
pub async fn failback_facts(
    drs: &Client,
    resolved: &ResolvedPlan,
) -> Result<Vec<ServerFailbackFacts>, FunctionError> {
    let ids: Vec<String> = resolved
        .waves
        .iter()
        .flat_map(|wave| wave.servers.iter().map(|server| server.id.clone()))
        .collect();
    let servers = source_servers(drs, &ids).await?;
    let mut instances = recovery_instances(drs, &ids).await?;

    // The reversed-direction servers, by the Region they replicate into.
    let mut reversed: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for server in &servers {
        let origin = server
            .source_cloud_properties()
            .and_then(|properties| properties.origin_region());
        let reversed_id = server
            .reversed_direction_source_server_arn()
            .and_then(|arn| arn.rsplit('/').next());
        if let (Some(origin), Some(reversed_id), Some(id)) =
            (origin, reversed_id, server.source_server_id())
        {
            reversed
                .entry(origin.to_owned())
                .or_default()
                .push((id.to_owned(), reversed_id.to_owned()));
        }
    }
    let mut reversed_state: HashMap<String, String> = HashMap::new();
    let mut reversed_id: HashMap<String, String> = HashMap::new();
    for (region, pairs) in reversed {
        let there = crate::bootstrap::drs_in(drs, &region);
        let reversed_ids: Vec<String> =
            pairs.iter().map(|(_, reversed)| reversed.clone()).collect();
        let states = replication_states(&there, &reversed_ids).await?;
        for (ours, reversed) in pairs {
            if let Some(state) = states.get(&reversed) {
                reversed_state.insert(ours.clone(), state.clone());
                reversed_id.insert(ours, reversed);
            }
        }
    }

    let origin_of: HashMap<&str, &str> = servers
        .iter()
        .filter_map(|server| {
            Some((
                server.source_server_id()?,
                server.source_cloud_properties()?.origin_region()?,
            ))
        })
        .collect();
    Ok(ids
        .into_iter()
        .map(|id| ServerFailbackFacts {
            origin_region: origin_of
                .get(id.as_str())
                .map(|region| (*region).to_owned()),
            recovery_instance: instances.remove(&id),
            reversed_replication_state: reversed_state.remove(&id),
            reversed_source_server_id: reversed_id.remove(&id),
            source_server_id: id,
        })
        .collect())
}

/// `dataReplicationInfo.dataReplicationState` of each of `ids` DRS knows, by ID.
pub(crate) async fn replication_states(
    drs: &Client,
    ids: &[String],
) -> Result<HashMap<String, String>, FunctionError> {
    Ok(source_servers(drs, ids)
        .await?
        .iter()
        .filter_map(|server| {
            Some((
                server.source_server_id()?.to_owned(),
                server
                    .data_replication_info()?
                    .data_replication_state()?
                    .as_str()
                    .to_owned(),
            ))
        })
        .collect())
}

/// The source servers of `ids` that DRS knows, in one Region.
async fn source_servers(drs: &Client, ids: &[String]) -> Result<Vec<SourceServer>, FunctionError> {
    let mut found = Vec::new();
    for chunk in ids.chunks(IDS_PER_CALL) {
        let filters = DescribeSourceServersRequestFilters::builder()
            .set_source_server_ids(Some(chunk.to_vec()))
            .build();
        found.extend(
            all_items(
                drs.describe_source_servers()
                    .filters(filters)
                    .into_paginator()
                    .items()
                    .send(),
                "DRS DescribeSourceServers",
            )
            .await?,
        );
    }
    Ok(found)
}

/// Each server's recovery instance, by source server ID. DRS keeps one per server; should
/// it report two, the recovery's wins over a drill's, which has nothing to bring home.
pub(crate) async fn recovery_instances(
    drs: &Client,
    ids: &[String],
) -> Result<HashMap<String, RecoveryInstanceFacts>, FunctionError> {
    let mut by_server: HashMap<String, RecoveryInstanceFacts> = HashMap::new();
    for chunk in ids.chunks(IDS_PER_CALL) {
        let filters = DescribeRecoveryInstancesRequestFilters::builder()
            .set_source_server_ids(Some(chunk.to_vec()))
            .build();
        let items: Vec<aws_sdk_drs::types::RecoveryInstance> = all_items(
            drs.describe_recovery_instances()
                .filters(filters)
                .into_paginator()
                .items()
                .send(),
            "DRS DescribeRecoveryInstances",
        )
        .await?;
        for item in &items {
            let (Some(server), Some(instance_id)) =
                (item.source_server_id(), item.recovery_instance_id())
            else {
                continue;
            };
            let facts = RecoveryInstanceFacts {
                recovery_instance_id: instance_id.to_owned(),
                is_drill: item.is_drill().unwrap_or(false),
                failback_state: item
                    .failback()
                    .and_then(|failback| failback.state())
                    .map(|state| state.as_str().to_owned()),
                failback_client_id: item
                    .failback()
                    .and_then(|failback| failback.failback_client_id())
                    .map(str::to_owned),
                job_id: item.job_id().map(str::to_owned),
            };
            let keep_earlier = by_server
                .get(server)
                .is_some_and(|earlier| !earlier.is_drill && facts.is_drill);
            if !keep_earlier {
                by_server.insert(server.to_owned(), facts);
            }
        }
    }
    Ok(by_server)
}

/// The primary IPv4 address DRS reports for each of `ids` (its first network
/// interface's, the primary one when DRS says which): where a failed-back machine is
/// probed.
pub async fn source_addresses(
    drs: &Client,
    ids: &[String],
) -> Result<HashMap<String, String>, FunctionError> {
    Ok(source_servers(drs, ids)
        .await?
        .iter()
        .filter_map(|server| {
            let interfaces = server.source_properties()?.network_interfaces();
            let primary = interfaces
                .iter()
                .find(|nic| nic.is_primary() == Some(true))
                .or_else(|| interfaces.first())?;
            Some((
                server.source_server_id()?.to_owned(),
                primary.ips().first()?.clone(),
            ))
        })
        .collect())
}

/// The recovery runs that launched the live recovery instances of `facts` (by the
/// `drplan:execution` tag of their DRS jobs), with the DNS record each kept, oldest
/// change first. A run that changed no DNS is listed without one.
pub async fn recovery_runs(
    drs: &Client,
    store: &RunStore,
    plan: &str,
    facts: &[ServerFailbackFacts],
) -> Result<(Vec<String>, Vec<(String, DnsCutover)>), FunctionError> {
    let job_ids = recovery_job_ids(facts);
    let executions: BTreeSet<String> = drs::jobs_with_tags(drs, &job_ids)
        .await?
        .into_iter()
        .filter_map(|(_, tags)| tags.get(TAG_EXECUTION).cloned())
        .collect();
    let mut cutovers = Vec::new();
    for execution in &executions {
        if let Some(cutover) = store
            .read(&RunRecords::of(plan, execution).dns_cutover())
            .await?
        {
            cutovers.push((execution.clone(), cutover));
        }
    }
    cutovers.sort_by_key(|(_, cutover): &(String, DnsCutover)| cutover.submitted_at);
    Ok((executions.into_iter().collect(), cutovers))
}

/// Of the failback's recovery instances, those DRS reports failed back
/// (FAILBACK_COMPLETED): the ones a successful failback terminates. An instance whose
/// failback failed still carries the server, and stays.
pub async fn failed_back_instances(
    drs: &Client,
    record: &FailbackRecord,
) -> Result<Vec<String>, FunctionError> {
    let ids: Vec<String> = record.recovery_instances.keys().cloned().collect();
    Ok(recovery_instances(drs, &ids)
        .await?
        .into_iter()
        .filter(|(server, instance)| {
            instance.failback_state.as_deref() == Some(COMPLETED)
                && record.recovery_instances.get(server) == Some(&instance.recovery_instance_id)
        })
        .map(|(_, instance)| instance.recovery_instance_id)
        .collect())
}

/// The source server and the last failback job (`failback.failbackJobID`) of one
/// recovery instance, when DRS knows it and it has had one.
pub async fn failback_launch_of(
    drs: &Client,
    recovery_instance_id: &str,
) -> Result<Option<(String, String)>, FunctionError> {
    let filters = DescribeRecoveryInstancesRequestFilters::builder()
        .recovery_instance_ids(recovery_instance_id)
        .build();
    let reply = drs
        .describe_recovery_instances()
        .filters(filters)
        .send()
        .await
        .map_err(|e| FunctionError::from_sdk("DRS DescribeRecoveryInstances", e))?;
    Ok(reply.items().first().and_then(|instance| {
        Some((
            instance.source_server_id()?.to_owned(),
            instance.failback()?.failback_job_id()?.to_owned(),
        ))
    }))
}
