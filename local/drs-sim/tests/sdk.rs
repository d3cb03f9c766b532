//! The simulator through the real Rust SDK (`aws-sdk-drs`): if the SDK can read every answer,
//! drplan's functions can too.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use aws_sdk_drs::error::ProvideErrorMetadata;
use aws_sdk_drs::types::{
    DescribeRecoveryInstancesRequestFilters, DescribeSourceServersRequestFilters, JobLog,
    JobLogEvent, LaunchStatus, RecoverySnapshotsOrder, StartRecoveryRequestSourceServer,
};
use common::*;
use drplan_drs_sim::{DrsQuotas, SimConfig};
use serde_json::{Value, json};

const JOB_LIMIT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn pagination_over_450_servers_returns_every_server_exactly_once() {
    let sim = start_fast().await;
    let seeded: BTreeSet<String> = seed(&sim, "app", 450, json!({"dr:plan": "shop"}))
        .await
        .into_iter()
        .collect();
    assert_eq!(seeded.len(), 450);
    let client = drs_client(&sim);

    // A caller that forgets to paginate sees one page only: the sample's "first 200" bug.
    let first_page = client
        .describe_source_servers()
        .send()
        .await
        .expect("first page");
    assert_eq!(first_page.items().len(), 200);
    assert!(first_page.next_token().is_some());

    let mut seen = Vec::new();
    let mut pages = client
        .describe_source_servers()
        .max_results(100)
        .into_paginator()
        .send();
    let mut page_count = 0;
    while let Some(page) = pages.next().await {
        let page = page.expect("page");
        page_count += 1;
        seen.extend(
            page.items()
                .iter()
                .map(|server| server.source_server_id().unwrap_or_default().to_owned()),
        );
    }
    assert_eq!(page_count, 5);
    assert_eq!(seen.len(), 450, "no server twice");
    assert_eq!(seen.into_iter().collect::<BTreeSet<_>>(), seeded);

    // Filters: by ID, and by staging account.
    let wanted: Vec<String> = seeded.iter().take(3).cloned().collect();
    let filtered = client
        .describe_source_servers()
        .filters(
            DescribeSourceServersRequestFilters::builder()
                .set_source_server_ids(Some(wanted.clone()))
                .build(),
        )
        .send()
        .await
        .expect("filtered");
    let ids: Vec<&str> = filtered
        .items()
        .iter()
        .filter_map(|server| server.source_server_id())
        .collect();
    assert_eq!(ids.len(), 3);
    assert!(ids.iter().all(|id| wanted.iter().any(|w| w == id)));
    let other_account = client
        .describe_source_servers()
        .filters(
            DescribeSourceServersRequestFilters::builder()
                .staging_account_ids("999999999999")
                .build(),
        )
        .send()
        .await
        .expect("other account");
    assert!(other_account.items().is_empty());
}

#[tokio::test]
async fn source_servers_carry_the_documented_fields() {
    let sim = start_fast().await;
    control_post(
        &sim,
        "/_drplan/source-servers",
        json!([{"hostname": "db-001", "fqdn": "db-001.shop.internal",
                "tags": {"dr:wave": "db"}, "replication": {"state": "BACKLOG", "lag_seconds": 3725}}]),
    )
    .await;
    let client = drs_client(&sim);
    let servers = client.describe_source_servers().send().await.expect("list");
    let server = &servers.items()[0];
    let id = server.source_server_id().expect("id");
    assert!(id.starts_with("s-") && id.len() == 19, "{id}");
    assert_eq!(
        server.arn(),
        Some(format!("arn:aws:drs:us-east-1:123456789012:source-server/{id}").as_str())
    );
    assert_eq!(
        server.tags().and_then(|tags| tags.get("dr:wave")),
        Some(&"db".to_owned())
    );
    let hints = server
        .source_properties()
        .and_then(|properties| properties.identification_hints())
        .expect("identification hints");
    assert_eq!(hints.hostname(), Some("db-001"));
    assert_eq!(hints.fqdn(), Some("db-001.shop.internal"));
    let replication = server.data_replication_info().expect("replication");
    assert_eq!(
        replication
            .data_replication_state()
            .map(|state| state.as_str()),
        Some("BACKLOG")
    );
    assert_eq!(replication.lag_duration(), Some("PT1H2M5S"));
    assert!(replication.eta_date_time().is_some(), "BACKLOG has an ETA");
    assert_eq!(
        server.last_launch_result().map(|result| result.as_str()),
        Some("NOT_STARTED")
    );
    assert_eq!(
        server
            .replication_direction()
            .map(|direction| direction.as_str()),
        Some("FAILOVER")
    );
    assert!(
        server
            .life_cycle()
            .and_then(|life_cycle| life_cycle.added_to_service_date_time())
            .is_some()
    );

    let launch_configuration = client
        .get_launch_configuration()
        .source_server_id(id)
        .send()
        .await
        .expect("launch configuration");
    assert_eq!(launch_configuration.source_server_id(), Some(id));
    assert_eq!(launch_configuration.copy_tags(), Some(true));
    let missing = client
        .get_launch_configuration()
        .source_server_id("s-00000000000000000")
        .send()
        .await
        .expect_err("unknown server");
    assert_eq!(missing.code(), Some("ResourceNotFoundException"));

    let snapshots = client
        .describe_recovery_snapshots()
        .source_server_id(id)
        .order(RecoverySnapshotsOrder::Desc)
        .send()
        .await
        .expect("snapshots");
    let times: Vec<&str> = snapshots
        .items()
        .iter()
        .map(|snapshot| snapshot.timestamp().unwrap_or_default())
        .collect();
    assert_eq!(times.len(), 6);
    let mut newest_first = times.clone();
    newest_first.sort_by(|a, b| b.cmp(a));
    assert_eq!(times, newest_first);
}

#[tokio::test]
async fn one_job_takes_at_most_100_servers() {
    let sim = start_slow().await;
    let ids = seed(&sim, "web", 101, json!({})).await;
    let client = drs_client(&sim);

    let refused = client
        .start_recovery()
        .set_source_servers(Some(recovery_request(&ids)))
        .is_drill(true)
        .send()
        .await
        .expect_err("101 servers is over the per-job quota");
    assert_eq!(refused.code(), Some("ValidationException"));
    let jobs = client.describe_jobs().send().await.expect("jobs");
    assert!(
        jobs.items().is_empty(),
        "a refused StartRecovery starts nothing"
    );

    let accepted = client
        .start_recovery()
        .set_source_servers(Some(recovery_request(&ids[..100])))
        .is_drill(true)
        .send()
        .await
        .expect("100 servers is within the quota");
    let job = accepted.job().expect("job");
    assert_eq!(job.participating_servers().len(), 100);
    assert_eq!(job.status().map(|status| status.as_str()), Some("PENDING"));
    assert_eq!(
        job.initiated_by().map(|initiated_by| initiated_by.as_str()),
        Some("START_DRILL")
    );

    // The call record shows both calls, with the servers each asked for.
    let calls = control_get(&sim, "/_drplan/calls").await;
    let starts: Vec<&Value> = calls["calls"]
        .as_array()
        .expect("calls")
        .iter()
        .filter(|call| call["operation"] == "StartRecovery")
        .collect();
    assert_eq!(starts.len(), 2);
    assert_eq!(starts[0]["status"], 400);
    assert_eq!(
        starts[0]["source_server_ids"].as_array().map(Vec::len),
        Some(101)
    );
    assert_eq!(starts[1]["status"], 202);
}

#[tokio::test]
async fn a_server_in_an_active_job_conflicts() {
    let sim = start_slow().await;
    let ids = seed(&sim, "db", 2, json!({})).await;
    let client = drs_client(&sim);
    client
        .start_recovery()
        .set_source_servers(Some(recovery_request(&ids[..1])))
        .send()
        .await
        .expect("first job");
    let conflict = client
        .start_recovery()
        .set_source_servers(Some(recovery_request(&ids)))
        .send()
        .await
        .expect_err("server 0 is busy");
    assert_eq!(conflict.code(), Some("ConflictException"));
    assert!(
        conflict.message().unwrap_or_default().contains(&ids[0]),
        "the message names the busy server: {:?}",
        conflict.message()
    );
    client
        .start_recovery()
        .set_source_servers(Some(recovery_request(&ids[1..])))
        .send()
        .await
        .expect("the other server is free");

    let unknown = client
        .start_recovery()
        .set_source_servers(Some(recovery_request(&["s-0000000000000000a".to_owned()])))
        .send()
        .await
        .expect_err("unknown server");
    assert_eq!(unknown.code(), Some("ResourceNotFoundException"));
}

#[tokio::test]
async fn quotas_across_active_jobs() {
    let sim = start_slow().await;
    let ids = seed(&sim, "fleet", 501, json!({})).await;
    let client = drs_client(&sim);
    for chunk in ids[..500].chunks(100) {
        client
            .start_recovery()
            .set_source_servers(Some(recovery_request(chunk)))
            .send()
            .await
            .expect("within 500 servers across active jobs");
    }
    let over = client
        .start_recovery()
        .set_source_servers(Some(recovery_request(&ids[500..])))
        .send()
        .await
        .expect_err("the 501st server in active jobs");
    assert_eq!(over.code(), Some("ServiceQuotaExceededException"));

    // Concurrent jobs, with a small configured quota.
    let sim = start(SimConfig {
        quotas: DrsQuotas {
            max_concurrent_jobs: 3,
            ..DrsQuotas::default()
        },
        ..SimConfig::default()
    })
    .await;
    let ids = seed(&sim, "app", 4, json!({})).await;
    let client = drs_client(&sim);
    for id in &ids[..3] {
        client
            .start_recovery()
            .set_source_servers(Some(recovery_request(std::slice::from_ref(id))))
            .send()
            .await
            .expect("within 3 jobs");
    }
    let fourth = client
        .start_recovery()
        .set_source_servers(Some(recovery_request(&ids[3..])))
        .send()
        .await
        .expect_err("a fourth concurrent job");
    assert_eq!(fourth.code(), Some("ServiceQuotaExceededException"));
}

fn events_of(log: &[JobLog], server_id: &str) -> Vec<JobLogEvent> {
    log.iter()
        .filter(|item| {
            item.event_data().and_then(|data| data.source_server_id()) == Some(server_id)
        })
        .filter_map(|item| item.event().cloned())
        .collect()
}

#[tokio::test]
async fn a_job_runs_its_lifecycle_and_logs_in_order() {
    let sim = start_fast().await;
    let ids = seed(&sim, "app", 2, json!({"dr:plan": "shop"})).await;
    let client = drs_client(&sim);
    let snapshot = client
        .describe_recovery_snapshots()
        .source_server_id(&ids[1])
        .send()
        .await
        .expect("snapshots")
        .items()[0]
        .snapshot_id()
        .to_owned();
    let servers = vec![
        StartRecoveryRequestSourceServer::builder()
            .source_server_id(&ids[0])
            .build()
            .expect("server"),
        StartRecoveryRequestSourceServer::builder()
            .source_server_id(&ids[1])
            .recovery_snapshot_id(&snapshot)
            .build()
            .expect("server"),
    ];
    let started = client
        .start_recovery()
        .set_source_servers(Some(servers))
        .is_drill(false)
        .send()
        .await
        .expect("start");
    let job_id = started.job().expect("job").job_id().to_owned();
    assert!(job_id.starts_with("drsjob-") && job_id.len() == 24);

    let job = wait_for_job(&client, &job_id, JOB_LIMIT).await;
    assert!(job.end_date_time().is_some());
    for participant in job.participating_servers() {
        assert_eq!(participant.launch_status(), Some(&LaunchStatus::Launched));
        assert!(participant.recovery_instance_id().is_some());
    }

    let log = client
        .describe_job_log_items()
        .job_id(&job_id)
        .send()
        .await
        .expect("log");
    let items = log.items();
    assert_eq!(
        items.first().and_then(JobLog::event),
        Some(&JobLogEvent::JobStart)
    );
    assert_eq!(
        items.last().and_then(JobLog::event),
        Some(&JobLogEvent::JobEnd)
    );
    let times: Vec<&str> = items
        .iter()
        .map(|item| item.log_date_time().unwrap_or_default())
        .collect();
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted, "log items are in time order");

    assert_eq!(
        events_of(items, &ids[0]),
        vec![
            JobLogEvent::SnapshotStart,
            JobLogEvent::SnapshotEnd,
            JobLogEvent::ConversionStart,
            JobLogEvent::ConversionEnd,
            JobLogEvent::LaunchStart,
        ]
    );
    assert_eq!(
        events_of(items, &ids[1]),
        vec![
            JobLogEvent::UsingPreviousSnapshot,
            JobLogEvent::ConversionStart,
            JobLogEvent::ConversionEnd,
            JobLogEvent::LaunchStart,
        ],
        "a chosen point in time skips the snapshot"
    );

    let instances = client
        .describe_recovery_instances()
        .send()
        .await
        .expect("instances");
    assert_eq!(instances.items().len(), 2);
    for server_id in &ids {
        let instance = instances
            .items()
            .iter()
            .find(|instance| instance.source_server_id() == Some(server_id.as_str()))
            .expect("an instance per server");
        assert_eq!(instance.job_id(), Some(job_id.as_str()));
        assert_eq!(instance.is_drill(), Some(false));
        assert_eq!(
            instance.ec2_instance_state().map(|state| state.as_str()),
            Some("RUNNING")
        );
        let launch = items
            .iter()
            .find(|item| {
                item.event() == Some(&JobLogEvent::LaunchStart)
                    && item.event_data().and_then(|data| data.source_server_id())
                        == Some(server_id.as_str())
            })
            .and_then(JobLog::event_data)
            .expect("LAUNCH_START data");
        assert_eq!(launch.target_instance_id(), instance.ec2_instance_id());
        let conversions: BTreeSet<&str> = items
            .iter()
            .filter(|item| {
                item.event_data().and_then(|data| data.source_server_id())
                    == Some(server_id.as_str())
            })
            .filter_map(|item| {
                item.event_data()
                    .and_then(|data| data.conversion_server_id())
            })
            .collect();
        assert_eq!(conversions.len(), 1, "one conversion server per server");
    }

    let servers = client
        .describe_source_servers()
        .send()
        .await
        .expect("servers");
    for server in servers.items() {
        assert!(server.recovery_instance_id().is_some());
        assert_eq!(
            server.last_launch_result().map(|result| result.as_str()),
            Some("SUCCEEDED")
        );
        let last_launch = server
            .life_cycle()
            .and_then(|life_cycle| life_cycle.last_launch())
            .expect("last launch");
        assert_eq!(last_launch.status(), Some(&LaunchStatus::Launched));
        assert_eq!(
            last_launch
                .initiated()
                .and_then(|initiated| initiated.job_id()),
            Some(job_id.as_str())
        );
    }

    // One launch-result event per server, in the documented shape.
    let events = control_get(&sim, "/_drplan/events").await;
    let results: Vec<&Value> = events["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|emitted| &emitted["event"])
        .filter(|event| event["detail-type"] == "DRS Source Server Launch Result")
        .collect();
    assert_eq!(results.len(), 2);
    for event in results {
        assert_eq!(event["source"], "aws.drs");
        assert_eq!(event["detail"]["state"], "SUCCEEDED");
        assert_eq!(event["detail"]["job-id"], job_id.as_str());
        assert_eq!(event["detail"]["is-drill"], "FALSE");
        let resource = event["resources"][0].as_str().expect("server ARN");
        assert!(resource.starts_with("arn:aws:drs:us-east-1:123456789012:source-server/s-"));
    }
}

#[tokio::test]
async fn an_injected_launch_failure_fails_that_server_only() {
    let sim = start_fast().await;
    let ids = seed(&sim, "cache", 2, json!({})).await;
    control_post(
        &sim,
        "/_drplan/faults",
        json!({"kind": "fail_launch", "servers": ["cache-001"], "raw_error": "InsufficientInstanceCapacity: none left"}),
    )
    .await;
    let client = drs_client(&sim);
    let job_id = start_recovery_job(&client, &ids, true).await;
    let job = wait_for_job(&client, &job_id, JOB_LIMIT).await;
    let status_of = |id: &str| {
        job.participating_servers()
            .iter()
            .find(|participant| participant.source_server_id() == Some(id))
            .and_then(|participant| participant.launch_status().cloned())
    };
    assert_eq!(status_of(&ids[0]), Some(LaunchStatus::Launched));
    assert_eq!(status_of(&ids[1]), Some(LaunchStatus::Failed));

    let log = client
        .describe_job_log_items()
        .job_id(&job_id)
        .send()
        .await
        .expect("log");
    let failed = log
        .items()
        .iter()
        .find(|item| item.event() == Some(&JobLogEvent::LaunchFailed))
        .and_then(JobLog::event_data)
        .expect("LAUNCH_FAILED");
    assert_eq!(failed.source_server_id(), Some(ids[1].as_str()));
    assert_eq!(
        failed.raw_error(),
        Some("InsufficientInstanceCapacity: none left")
    );

    let instances = client
        .describe_recovery_instances()
        .filters(
            DescribeRecoveryInstancesRequestFilters::builder()
                .source_server_ids(&ids[1])
                .build(),
        )
        .send()
        .await
        .expect("instances");
    assert!(
        instances.items().is_empty(),
        "a failed launch leaves no instance"
    );
    let events = control_get(&sim, "/_drplan/events").await;
    let states: BTreeMap<String, String> = events["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|emitted| {
            (
                emitted["event"]["resources"][0]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                emitted["event"]["detail"]["state"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect();
    let failed_arn = format!(
        "arn:aws:drs:us-east-1:123456789012:source-server/{}",
        ids[1]
    );
    assert_eq!(states.get(&failed_arn).map(String::as_str), Some("FAILED"));
}

#[tokio::test]
async fn throttling_then_success() {
    let sim = start_fast().await;
    seed(&sim, "app", 1, json!({})).await;
    control_post(
        &sim,
        "/_drplan/faults",
        json!({"kind": "throttle", "operation": "DescribeSourceServers", "count": 1, "retry_after_seconds": 2}),
    )
    .await;
    let client = drs_client_without_retries(&sim);
    let throttled = client
        .describe_source_servers()
        .send()
        .await
        .expect_err("throttled once");
    assert_eq!(throttled.code(), Some("ThrottlingException"));
    let servers = client
        .describe_source_servers()
        .send()
        .await
        .expect("the next call goes through");
    assert_eq!(servers.items().len(), 1);

    // On the wire: 429, the exception name in x-amzn-ErrorType, Retry-After.
    control_post(
        &sim,
        "/_drplan/faults",
        json!({"kind": "throttle", "operation": "DescribeJobs", "count": 1, "retry_after_seconds": 2}),
    )
    .await;
    let raw = http(&sim, "POST", "/DescribeJobs", Some(json!({}))).await;
    assert_eq!(raw.status, 429);
    assert_eq!(
        raw.headers
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok()),
        Some("ThrottlingException")
    );
    assert_eq!(
        raw.headers.get("retry-after").and_then(|v| v.to_str().ok()),
        Some("2")
    );
    assert_eq!(raw.body["retryAfterSeconds"], "2");

    // drplan's client (standard retries) rides over a throttle.
    control_post(
        &sim,
        "/_drplan/faults",
        json!({"kind": "throttle", "operation": "DescribeRecoveryInstances", "count": 1}),
    )
    .await;
    drs_client(&sim)
        .describe_recovery_instances()
        .send()
        .await
        .expect("retried after the throttle");
    let calls = control_get(&sim, "/_drplan/calls").await;
    let statuses: Vec<u64> = calls["calls"]
        .as_array()
        .expect("calls")
        .iter()
        .filter(|call| call["operation"] == "DescribeRecoveryInstances")
        .filter_map(|call| call["status"].as_u64())
        .collect();
    assert_eq!(statuses, vec![429, 200]);
}

#[tokio::test]
async fn tags_round_trip_on_servers_and_jobs() {
    let sim = start_slow().await;
    let ids = seed(&sim, "app", 1, json!({"dr:plan": "shop"})).await;
    let client = drs_client(&sim);
    let arn = format!(
        "arn:aws:drs:us-east-1:123456789012:source-server/{}",
        ids[0]
    );
    client
        .tag_resource()
        .resource_arn(&arn)
        .tags("dr:wave", "app")
        .tags("owner", "sre")
        .send()
        .await
        .expect("tag");
    client
        .untag_resource()
        .resource_arn(&arn)
        .tag_keys("owner")
        .send()
        .await
        .expect("untag");
    let tags = client
        .list_tags_for_resource()
        .resource_arn(&arn)
        .send()
        .await
        .expect("list")
        .tags()
        .cloned()
        .unwrap_or_default();
    let expected: std::collections::HashMap<String, String> = [
        ("dr:plan".to_owned(), "shop".to_owned()),
        ("dr:wave".to_owned(), "app".to_owned()),
    ]
    .into();
    assert_eq!(tags, expected);

    let job = client
        .start_recovery()
        .set_source_servers(Some(recovery_request(&ids)))
        .tags("drplan:execution", "exec-1")
        .send()
        .await
        .expect("start")
        .job()
        .cloned()
        .expect("job");
    let described = client.describe_jobs().send().await.expect("jobs");
    assert_eq!(
        described.items()[0]
            .tags()
            .and_then(|tags| tags.get("drplan:execution")),
        Some(&"exec-1".to_owned())
    );
    let job_tags = client
        .list_tags_for_resource()
        .resource_arn(job.arn().expect("job arn"))
        .send()
        .await
        .expect("job tags");
    assert_eq!(
        job_tags
            .tags()
            .and_then(|tags| tags.get("drplan:execution")),
        Some(&"exec-1".to_owned())
    );

    let missing = client
        .list_tags_for_resource()
        .resource_arn("arn:aws:drs:us-east-1:123456789012:source-server/s-00000000000000000")
        .send()
        .await
        .expect_err("unknown ARN");
    assert_eq!(missing.code(), Some("ResourceNotFoundException"));
}

#[tokio::test]
async fn malformed_requests_get_validation_exceptions_on_the_wire() {
    let sim = start_fast().await;
    let raw = http(
        &sim,
        "POST",
        "/StartRecovery",
        Some(json!({"isDrill": true})),
    )
    .await;
    assert_eq!(raw.status, 400);
    assert_eq!(
        raw.headers
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok()),
        Some("ValidationException")
    );
    assert_eq!(raw.body["reason"], "cannotParse");
    assert_eq!(raw.body["code"], "ValidationException");
    assert!(raw.body["fieldList"].is_array());

    let bad_page = drs_client(&sim)
        .describe_source_servers()
        .next_token("not-a-token")
        .send()
        .await
        .expect_err("bad token");
    assert_eq!(bad_page.code(), Some("ValidationException"));
}

#[tokio::test]
async fn reset_forgets_everything() {
    let sim = start_fast().await;
    seed(&sim, "app", 3, json!({})).await;
    let client = drs_client(&sim);
    client.describe_source_servers().send().await.expect("list");
    control_post(&sim, "/_drplan/reset", json!({})).await;
    let servers = client.describe_source_servers().send().await.expect("list");
    assert!(servers.items().is_empty());
    let calls = control_get(&sim, "/_drplan/calls").await;
    assert_eq!(
        calls["calls"].as_array().map(Vec::len),
        Some(1),
        "only the call after the reset"
    );
}
