//! The DRS operations: request shapes, validation, quotas, and responses.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::{DrsError, DrsResult, ErrorKind, parse_body};
use crate::clock::Timestamp;
use crate::lifecycle::{self, InstanceJobPlan, LaunchPlan};
use crate::model::{
    Job, JobStatus, LastLaunch, Participant, RecoverySnapshot, SourceServer, State, Tags,
};
use crate::sim::Simulator;

mod instances;
mod recovery;
mod replication;

use instances::*;
use recovery::*;
pub use replication::add_initial_snapshots;
use replication::*;

/// Page size when a request gives no maxResults.
const DEFAULT_PAGE_SIZE: usize = 200;
/// The largest page the simulator returns, whatever maxResults asks for.
const MAX_PAGE_SIZE: usize = 1000;

/// Runs one DRS operation as the DRS of `region` (the request's signing Region).
pub fn dispatch(sim: &Arc<Simulator>, region: &str, operation: &str, body: &[u8]) -> DrsResult {
    match operation {
        "DescribeSourceServers" => describe_source_servers(sim, region, body),
        "StartRecovery" => start_recovery(sim, region, body),
        "DescribeJobs" => describe_jobs(sim, region, body),
        "DescribeJobLogItems" => describe_job_log_items(sim, region, body),
        "DescribeRecoveryInstances" => describe_recovery_instances(sim, region, body),
        "TerminateRecoveryInstances" => terminate_recovery_instances(sim, region, body),
        "DescribeRecoverySnapshots" => describe_recovery_snapshots(sim, region, body),
        "GetLaunchConfiguration" => get_launch_configuration(sim, region, body),
        "RetryDataReplication" => retry_data_replication(sim, region, body),
        "ReverseReplication" => reverse_replication(sim, region, body),
        "StartFailbackLaunch" => start_failback_launch(sim, region, body),
        "StopFailback" => stop_failback(sim, region, body),
        other => Err(DrsError::validation(
            "unknownOperation",
            "operation",
            format!("the DRS simulator does not implement {other}"),
        )),
    }
}

fn ok(body: Value) -> DrsResult {
    Ok((StatusCode::OK, body))
}

/// One page of `items` after the offset in `next_token`; the token names the listing it
/// came from so that a token from one operation is refused by another.
fn paginate<T>(
    items: Vec<T>,
    max_results: Option<i64>,
    next_token: Option<&str>,
    listing: &str,
) -> Result<(Vec<T>, Option<String>), DrsError> {
    let page_size = match max_results {
        None => DEFAULT_PAGE_SIZE,
        Some(requested) if requested >= 1 => {
            usize::try_from(requested).map_or(MAX_PAGE_SIZE, |size| size.min(MAX_PAGE_SIZE))
        }
        Some(requested) => {
            return Err(DrsError::validation(
                "fieldValidationFailed",
                "maxResults",
                format!("maxResults must be at least 1, got {requested}"),
            ));
        }
    };
    let offset = match next_token.filter(|token| !token.is_empty()) {
        None => 0,
        Some(token) => token
            .strip_prefix(listing)
            .and_then(|rest| rest.strip_prefix('.'))
            .and_then(|offset| offset.parse::<usize>().ok())
            .ok_or_else(|| {
                DrsError::validation(
                    "fieldValidationFailed",
                    "nextToken",
                    format!("nextToken {token:?} is not valid here"),
                )
            })?,
    };
    let total = items.len();
    let page: Vec<T> = items.into_iter().skip(offset).take(page_size).collect();
    let next = (offset + page_size < total).then(|| format!("{listing}.{}", offset + page_size));
    Ok((page, next))
}

/// `{"items": [...], "nextToken": "..."}`, leaving nextToken out on the last page as DRS
/// does (a null would read as "more to come" to a careless client).
fn page_body(items: Vec<Value>, next_token: Option<String>) -> Value {
    let mut body = serde_json::Map::new();
    body.insert("items".into(), Value::Array(items));
    if let Some(token) = next_token {
        body.insert("nextToken".into(), Value::String(token));
    }
    Value::Object(body)
}

fn check_list_length(field: &str, length: usize, max: usize) -> Result<(), DrsError> {
    if length > max {
        return Err(DrsError::validation(
            "fieldValidationFailed",
            field,
            format!("{field} has {length} members; at most {max} are allowed"),
        ));
    }
    Ok(())
}

fn parse_date(field: &str, value: Option<&str>) -> Result<Option<Timestamp>, DrsError> {
    value
        .map(|text| {
            Timestamp::parse_iso8601(text).ok_or_else(|| {
                DrsError::validation(
                    "fieldValidationFailed",
                    field,
                    format!(
                        "{field} {text:?} is not an ISO-8601 date-time such as 2024-01-31T12:00:00Z"
                    ),
                )
            })
        })
        .transpose()
}

// ---- DescribeSourceServers -------------------------------------------------------------

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct DescribeSourceServersRequest {
    filters: SourceServerFilters,
    max_results: Option<i64>,
    next_token: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SourceServerFilters {
    #[serde(rename = "sourceServerIDs")]
    source_server_ids: Option<Vec<String>>,
    #[serde(rename = "hardwareId")]
    hardware_id: Option<String>,
    #[serde(rename = "stagingAccountIDs")]
    staging_account_ids: Option<Vec<String>>,
}

fn describe_source_servers(sim: &Arc<Simulator>, region: &str, body: &[u8]) -> DrsResult {
    let request: DescribeSourceServersRequest = parse_body(body)?;
    let filters = request.filters;
    if let Some(ids) = &filters.source_server_ids {
        check_list_length("filters.sourceServerIDs", ids.len(), 200)?;
    }
    if let Some(ids) = &filters.staging_account_ids {
        check_list_length("filters.stagingAccountIDs", ids.len(), 200)?;
    }
    let wanted_ids: Option<BTreeSet<&str>> = filters
        .source_server_ids
        .as_ref()
        .map(|ids| ids.iter().map(String::as_str).collect());
    let account_id = sim.config.account_id.as_str();
    let now = Timestamp::now();
    let matching: Vec<Value> = sim.with_state(|state| {
        state
            .servers
            .iter()
            .filter(|server| server.region == region)
            .filter(|server| {
                wanted_ids
                    .as_ref()
                    .is_none_or(|ids| ids.contains(server.id.as_str()))
            })
            .filter(|server| {
                filters.hardware_id.as_deref().is_none_or(|hardware_id| {
                    server.mac_address.eq_ignore_ascii_case(hardware_id) || server.id == hardware_id
                })
            })
            .filter(|_| {
                // Every simulated server is staged in the simulator's own account.
                filters
                    .staging_account_ids
                    .as_ref()
                    .is_none_or(|accounts| accounts.iter().any(|account| account == account_id))
            })
            .map(|server| server.to_json(&server.region, now))
            .collect()
    });
    let (items, next_token) = paginate(
        matching,
        request.max_results,
        request.next_token.as_deref(),
        "source-servers",
    )?;
    ok(page_body(items, next_token))
}

// ---- Tags -------------------------------------------------------------------------------

fn tags_of<'a>(state: &'a mut State, arn: &str) -> Option<&'a mut Tags> {
    if let Some(index) = state.servers.iter().position(|server| server.arn == arn) {
        return Some(&mut state.servers[index].tags);
    }
    if let Some(index) = state.jobs.iter().position(|job| job.arn == arn) {
        return Some(&mut state.jobs[index].tags);
    }
    state
        .recovery_instances
        .iter_mut()
        .find(|instance| instance.arn == arn)
        .map(|instance| &mut instance.tags)
}

fn check_arn(arn: &str) -> Result<(), DrsError> {
    if arn.len() < 20 || !arn.starts_with("arn:") {
        return Err(DrsError::validation(
            "fieldValidationFailed",
            "resourceArn",
            format!("{arn:?} is not an ARN"),
        ));
    }
    Ok(())
}

fn not_found_arn(arn: &str) -> DrsError {
    DrsError::new(
        ErrorKind::ResourceNotFound,
        format!("resource {arn} was not found"),
    )
    .with("resourceId", arn)
}

pub fn list_tags(sim: &Arc<Simulator>, arn: &str) -> DrsResult {
    check_arn(arn)?;
    sim.with_state(|state| {
        tags_of(state, arn)
            .map(|tags| json!({ "tags": tags }))
            .ok_or_else(|| not_found_arn(arn))
    })
    .and_then(ok)
}

#[derive(Deserialize)]
struct TagResourceRequest {
    tags: Tags,
}

pub fn tag_resource(sim: &Arc<Simulator>, arn: &str, body: &[u8]) -> DrsResult {
    check_arn(arn)?;
    let request: TagResourceRequest = parse_body(body)?;
    for (key, value) in &request.tags {
        if key.len() > 256 || value.len() > 256 {
            return Err(DrsError::validation(
                "fieldValidationFailed",
                "tags",
                format!("tag {key:?} is longer than 256 characters (key or value)"),
            ));
        }
    }
    sim.with_state(|state| {
        let tags = tags_of(state, arn).ok_or_else(|| not_found_arn(arn))?;
        tags.extend(request.tags);
        Ok(json!({}))
    })
    .and_then(ok)
}

pub fn untag_resource(sim: &Arc<Simulator>, arn: &str, tag_keys: &[String]) -> DrsResult {
    check_arn(arn)?;
    sim.with_state(|state| {
        let tags = tags_of(state, arn).ok_or_else(|| not_found_arn(arn))?;
        for key in tag_keys {
            tags.remove(key);
        }
        Ok(json!({}))
    })
    .and_then(ok)
}
