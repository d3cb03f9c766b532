//! The DRS calls drplan makes, over every page, translated to `drplan-core` types.

use std::collections::{HashMap, HashSet};

use aws_sdk_drs::Client;
use aws_sdk_drs::types::{
    DescribeJobsRequestFilters, DescribeRecoveryInstancesRequestFilters, Job,
    RecoverySnapshotsOrder, StartRecoveryRequestSourceServer,
};
use drplan_core::SourceServer;
use drplan_core::launch::{JobLogEntry, JobServer, JobView};
use jiff::Timestamp;

use crate::FunctionError;

/// Every item of a paginated call, over all pages; the call's error named after
/// `operation` (throttling told apart, as for single calls).
pub(crate) async fn all_items<T, E>(
    pages: aws_smithy_async::future::pagination_stream::PaginationStream<
        Result<T, aws_sdk_drs::error::SdkError<E, aws_sdk_drs::config::http::HttpResponse>>,
    >,
    operation: &'static str,
) -> Result<Vec<T>, FunctionError>
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
{
    pages
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(|e| FunctionError::from_sdk(operation, e))
}

/// DescribeJobs takes at most this many job IDs in one filter.
const JOB_IDS_PER_CALL: usize = 100;

/// Every source server, over all pages (the AWS sample stops at the first 200).
pub async fn describe_all_source_servers(drs: &Client) -> Result<Vec<SourceServer>, FunctionError> {
    let items: Vec<aws_sdk_drs::types::SourceServer> = all_items(
        drs.describe_source_servers()
            .max_results(200)
            .into_paginator()
            .items()
            .send(),
        "DRS DescribeSourceServers",
    )
    .await?;
    Ok(items.iter().filter_map(source_server_from_sdk).collect())
}

/// Asks DRS to retry a stalled server's data replication.
pub async fn retry_data_replication(
    drs: &Client,
    source_server_id: &str,
) -> Result<(), FunctionError> {
    #[allow(deprecated)] // DRS still documents RetryDataReplication for stalled servers.
    let answer = drs
        .retry_data_replication()
        .source_server_id(source_server_id)
        .send()
        .await;
    answer.map_err(|e| FunctionError::from_sdk("DRS RetryDataReplication", e))?;
    Ok(())
}

/// One source server by ID; `None` when DRS does not know it.
pub async fn describe_source_server(
    drs: &Client,
    source_server_id: &str,
) -> Result<Option<SourceServer>, FunctionError> {
    let filters = aws_sdk_drs::types::DescribeSourceServersRequestFilters::builder()
        .source_server_ids(source_server_id)
        .build();
    let answer = drs
        .describe_source_servers()
        .filters(filters)
        .send()
        .await
        .map_err(|e| FunctionError::from_sdk("DRS DescribeSourceServers", e))?;
    Ok(answer
        .items()
        .iter()
        .filter_map(source_server_from_sdk)
        .find(|server| server.id == source_server_id))
}

fn source_server_from_sdk(item: &aws_sdk_drs::types::SourceServer) -> Option<SourceServer> {
    let hints = item
        .source_properties()
        .and_then(|p| p.identification_hints());
    let replication = item.data_replication_info();
    Some(SourceServer {
        id: item.source_server_id()?.to_owned(),
        arn: item.arn().map(str::to_owned),
        hostname: hints
            .and_then(|h| h.hostname().or(h.fqdn()))
            .map(str::to_owned),
        tags: item
            .tags()
            .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
        replication_state: replication
            .and_then(|r| r.data_replication_state())
            .map(|s| s.as_str().to_owned()),
        lag_duration: replication
            .and_then(|r| r.lag_duration())
            .map(str::to_owned),
        replication_direction: item.replication_direction().map(|d| d.as_str().to_owned()),
    })
}

/// DRS's date filter format (no fractional seconds).
fn drs_date(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Jobs created since `since`, over all pages, with their tags.
pub async fn jobs_since(
    drs: &Client,
    since: Timestamp,
) -> Result<Vec<(JobView, HashMap<String, String>)>, FunctionError> {
    let filters = DescribeJobsRequestFilters::builder()
        .from_date(drs_date(since))
        .build();
    let jobs = jobs_matching(drs, filters).await?;
    Ok(jobs
        .iter()
        .map(|job| (job_from_sdk(job), job.tags().cloned().unwrap_or_default()))
        .collect())
}

/// Every job DescribeJobs returns for `filters`, over all pages.
async fn jobs_matching(
    drs: &Client,
    filters: DescribeJobsRequestFilters,
) -> Result<Vec<Job>, FunctionError> {
    all_items(
        drs.describe_jobs()
            .filters(filters)
            .into_paginator()
            .items()
            .send(),
        "DRS DescribeJobs",
    )
    .await
}

/// Source servers in jobs that have not completed: StartRecovery would refuse them.
pub async fn busy_source_servers(
    drs: &Client,
    since: Timestamp,
) -> Result<HashSet<String>, FunctionError> {
    Ok(busy_servers(&jobs_since(drs, since).await?))
}

/// Of `jobs` (as [`jobs_since`] gives them), the source servers in jobs not completed.
pub fn busy_servers(jobs: &[(JobView, HashMap<String, String>)]) -> HashSet<String> {
    jobs.iter()
        .filter(|(job, _)| !job.is_completed())
        .flat_map(|(job, _)| job.servers.iter().map(|s| s.source_server_id.clone()))
        .collect()
}

/// The given jobs, as DRS reports them now.
pub async fn describe_jobs(
    drs: &Client,
    job_ids: &[String],
) -> Result<Vec<JobView>, FunctionError> {
    Ok(jobs_with_tags(drs, job_ids)
        .await?
        .into_iter()
        .map(|(job, _)| job)
        .collect())
}

/// The given jobs with their tags (which name the drplan run that started them).
pub async fn jobs_with_tags(
    drs: &Client,
    job_ids: &[String],
) -> Result<Vec<(JobView, HashMap<String, String>)>, FunctionError> {
    let mut views = Vec::with_capacity(job_ids.len());
    for chunk in job_ids.chunks(JOB_IDS_PER_CALL) {
        let filters = DescribeJobsRequestFilters::builder()
            .set_job_ids(Some(chunk.to_vec()))
            .build();
        let jobs = jobs_matching(drs, filters).await?;
        views.extend(
            jobs.iter()
                .map(|job| (job_from_sdk(job), job.tags().cloned().unwrap_or_default())),
        );
    }
    Ok(views)
}

fn job_from_sdk(job: &Job) -> JobView {
    JobView {
        job_id: job.job_id().to_owned(),
        status: job
            .status()
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default(),
        servers: job
            .participating_servers()
            .iter()
            .filter_map(|p| {
                Some(JobServer {
                    source_server_id: p.source_server_id()?.to_owned(),
                    launch_status: p.launch_status().map(|s| s.as_str().to_owned()),
                    recovery_instance_id: p.recovery_instance_id().map(str::to_owned),
                })
            })
            .collect(),
    }
}

/// A job's whole log, oldest first.
pub async fn job_log(drs: &Client, job_id: &str) -> Result<Vec<JobLogEntry>, FunctionError> {
    let items = all_items(
        drs.describe_job_log_items()
            .job_id(job_id)
            .into_paginator()
            .items()
            .send(),
        "DRS DescribeJobLogItems",
    )
    .await?;
    Ok(items
        .iter()
        .map(|item| {
            let data = item.event_data();
            JobLogEntry {
                job_id: job_id.to_owned(),
                time: item.log_date_time().unwrap_or_default().to_owned(),
                event: item
                    .event()
                    .map(|e| e.as_str().to_owned())
                    .unwrap_or_default(),
                source_server_id: data.and_then(|d| d.source_server_id()).map(str::to_owned),
                target_instance_id: data.and_then(|d| d.target_instance_id()).map(str::to_owned),
                raw_error: data.and_then(|d| d.raw_error()).map(str::to_owned),
            }
        })
        .collect())
}

/// One StartRecovery: `servers` are (source server, recovery snapshot or latest).
pub async fn start_recovery(
    drs: &Client,
    servers: &[(String, Option<String>)],
    is_drill: bool,
    tags: &[(String, String)],
) -> Result<String, FunctionError> {
    let mut request = drs.start_recovery().is_drill(is_drill);
    for (id, snapshot) in servers {
        let server = StartRecoveryRequestSourceServer::builder()
            .source_server_id(id)
            .set_recovery_snapshot_id(snapshot.clone())
            .build()
            .map_err(|e| FunctionError::InvalidInput(format!("source server {id}: {e}")))?;
        request = request.source_servers(server);
    }
    for (key, value) in tags {
        request = request.tags(key, value);
    }
    let response = request
        .send()
        .await
        .map_err(|e| FunctionError::from_sdk("DRS StartRecovery", e))?;
    response
        .job()
        .map(|job| job.job_id().to_owned())
        .ok_or_else(|| FunctionError::AwsCallFailed {
            operation: "DRS StartRecovery",
            code: "NoJob".into(),
            message: "DRS answered without a job".into(),
        })
}

/// One StartFailbackLaunch (at most 200 recovery instances): the failback job, tagged
/// like a recovery's so that the run finds its own jobs.
pub async fn start_failback_launch(
    drs: &Client,
    recovery_instance_ids: &[String],
    tags: &[(String, String)],
) -> Result<String, FunctionError> {
    let mut request = drs
        .start_failback_launch()
        .set_recovery_instance_ids(Some(recovery_instance_ids.to_vec()));
    for (key, value) in tags {
        request = request.tags(key, value);
    }
    let response = request
        .send()
        .await
        .map_err(|e| FunctionError::from_sdk("DRS StartFailbackLaunch", e))?;
    response
        .job()
        .map(|job| job.job_id().to_owned())
        .ok_or_else(|| FunctionError::AwsCallFailed {
            operation: "DRS StartFailbackLaunch",
            code: "NoJob".into(),
            message: "DRS answered without a job".into(),
        })
}

/// A server's recovery snapshots: (snapshot ID, when it was taken).
pub async fn recovery_snapshots(
    drs: &Client,
    source_server_id: &str,
) -> Result<Vec<(String, Timestamp)>, FunctionError> {
    let items = all_items(
        drs.describe_recovery_snapshots()
            .source_server_id(source_server_id)
            .order(RecoverySnapshotsOrder::Desc)
            .into_paginator()
            .items()
            .send(),
        "DRS DescribeRecoverySnapshots",
    )
    .await?;
    Ok(items
        .iter()
        .filter_map(|s| {
            let taken = s.timestamp().unwrap_or(s.expected_timestamp());
            Some((s.snapshot_id().to_owned(), taken.parse::<Timestamp>().ok()?))
        })
        .collect())
}

/// A recovery instance DRS launched.
pub use drplan_core::safety::RecoveryInstanceView as RecoveryInstance;

/// DescribeRecoveryInstances takes at most this many IDs in one filter.
const RECOVERY_INSTANCE_IDS_PER_CALL: usize = 200;

fn recovery_instance_from_sdk(
    r: &aws_sdk_drs::types::RecoveryInstance,
) -> Option<RecoveryInstance> {
    Some(RecoveryInstance {
        recovery_instance_id: r.recovery_instance_id()?.to_owned(),
        ec2_instance_id: r.ec2_instance_id().map(str::to_owned),
        source_server_id: r.source_server_id().map(str::to_owned),
        job_id: r.job_id().map(str::to_owned),
        is_drill: r.is_drill().unwrap_or(false),
        ec2_instance_state: r.ec2_instance_state().map(|s| s.as_str().to_owned()),
    })
}

async fn recovery_instances_matching(
    drs: &Client,
    filters: DescribeRecoveryInstancesRequestFilters,
) -> Result<Vec<RecoveryInstance>, FunctionError> {
    let items = all_items(
        drs.describe_recovery_instances()
            .filters(filters)
            .into_paginator()
            .items()
            .send(),
        "DRS DescribeRecoveryInstances",
    )
    .await?;
    Ok(items
        .iter()
        .filter_map(recovery_instance_from_sdk)
        .collect())
}

/// The recovery instances of the given source servers, whoever launched them.
pub async fn recovery_instances_of(
    drs: &Client,
    source_server_ids: &[String],
) -> Result<Vec<RecoveryInstance>, FunctionError> {
    let mut found = Vec::new();
    // The filter takes a bounded list; ask in chunks.
    for chunk in source_server_ids.chunks(JOB_IDS_PER_CALL) {
        let filters = DescribeRecoveryInstancesRequestFilters::builder()
            .set_source_server_ids(Some(chunk.to_vec()))
            .build();
        found.extend(recovery_instances_matching(drs, filters).await?);
    }
    Ok(found)
}

/// The given recovery instances (the ones a run's own jobs launched), as DRS reports
/// them now; one that DRS no longer knows (replaced by a later launch, terminated) is
/// left out.
pub async fn recovery_instances_by_id(
    drs: &Client,
    recovery_instance_ids: &[String],
) -> Result<Vec<RecoveryInstance>, FunctionError> {
    let mut found = Vec::new();
    for chunk in recovery_instance_ids.chunks(RECOVERY_INSTANCE_IDS_PER_CALL) {
        let filters = DescribeRecoveryInstancesRequestFilters::builder()
            .set_recovery_instance_ids(Some(chunk.to_vec()))
            .build();
        found.extend(recovery_instances_matching(drs, filters).await?);
    }
    Ok(found)
}

/// Starts a TERMINATE_RECOVERY_INSTANCES job; returns its ID.
/// ReverseReplication of one recovery instance: DRS makes (or names, when it exists) the
/// source server that replicates it back the other way, and answers its ARN.
pub async fn reverse_replication(
    drs: &Client,
    recovery_instance_id: &str,
) -> Result<String, FunctionError> {
    let response = drs
        .reverse_replication()
        .recovery_instance_id(recovery_instance_id)
        .send()
        .await
        .map_err(|e| FunctionError::from_sdk("DRS ReverseReplication", e))?;
    response
        .reversed_direction_source_server_arn()
        .map(str::to_owned)
        .ok_or_else(|| FunctionError::AwsCallFailed {
            operation: "DRS ReverseReplication",
            code: "NoSourceServer".into(),
            message: format!(
                "DRS answered ReverseReplication of {recovery_instance_id} without a source server"
            ),
        })
}

pub async fn terminate_recovery_instances(
    drs: &Client,
    recovery_instance_ids: &[String],
) -> Result<String, FunctionError> {
    let response = drs
        .terminate_recovery_instances()
        .set_recovery_instance_ids(Some(recovery_instance_ids.to_vec()))
        .send()
        .await
        .map_err(|e| FunctionError::from_sdk("DRS TerminateRecoveryInstances", e))?;
    response
        .job()
        .map(|job| job.job_id().to_owned())
        .ok_or_else(|| FunctionError::AwsCallFailed {
            operation: "DRS TerminateRecoveryInstances",
            code: "NoJob".into(),
            message: "DRS answered without a job".into(),
        })
}
