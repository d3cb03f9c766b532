//! Recovery instances after a launch, through the real Rust SDK (`aws-sdk-drs`):
//! termination, failback (the Failback Client, and ReverseReplication across Regions for
//! EC2 sources, without EC2 here: `tests/cross_region.rs` runs it against moto), and the
//! replication state of the servers involved.

mod common;

use std::time::Duration;

use aws_sdk_drs::error::ProvideErrorMetadata;
use aws_sdk_drs::types::{
    DescribeRecoveryInstancesRequestFilters, JobLog, JobLogEvent, LaunchStatus,
};
use common::*;
use serde_json::json;

const JOB_LIMIT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn terminate_removes_recovery_instances_through_a_job() {
    let sim = start_fast().await;
    let ids = seed(&sim, "web", 2, json!({})).await;
    let client = drs_client(&sim);
    let job_id = start_recovery_job(&client, &ids, true).await;
    wait_for_job(&client, &job_id, JOB_LIMIT).await;
    let instances = client
        .describe_recovery_instances()
        .send()
        .await
        .expect("instances");
    let instance_ids: Vec<String> = instances
        .items()
        .iter()
        .filter_map(|instance| instance.recovery_instance_id().map(str::to_owned))
        .collect();
    assert_eq!(instance_ids.len(), 2);

    let terminate = client
        .terminate_recovery_instances()
        .set_recovery_instance_ids(Some(instance_ids[..1].to_vec()))
        .send()
        .await
        .expect("terminate")
        .job()
        .cloned()
        .expect("job");
    assert_eq!(
        terminate
            .initiated_by()
            .map(|initiated_by| initiated_by.as_str()),
        Some("TERMINATE_RECOVERY_INSTANCES")
    );
    assert_eq!(
        terminate.r#type().map(|job_type| job_type.as_str()),
        Some("TERMINATE")
    );
    let finished = wait_for_job(&client, terminate.job_id(), JOB_LIMIT).await;
    assert_eq!(
        finished.participating_servers()[0].launch_status(),
        Some(&LaunchStatus::Terminated)
    );
    let log = client
        .describe_job_log_items()
        .job_id(terminate.job_id())
        .send()
        .await
        .expect("log");
    let events: Vec<&JobLogEvent> = log.items().iter().filter_map(JobLog::event).collect();
    assert_eq!(
        events,
        vec![
            &JobLogEvent::JobStart,
            &JobLogEvent::CleanupStart,
            &JobLogEvent::CleanupEnd,
            &JobLogEvent::JobEnd
        ]
    );
    let remaining = client
        .describe_recovery_instances()
        .send()
        .await
        .expect("instances");
    let remaining_ids: Vec<&str> = remaining
        .items()
        .iter()
        .filter_map(|instance| instance.recovery_instance_id())
        .collect();
    assert_eq!(remaining_ids, vec![instance_ids[1].as_str()]);

    let again = client
        .terminate_recovery_instances()
        .recovery_instance_ids(&instance_ids[0])
        .send()
        .await
        .expect_err("already gone");
    assert_eq!(again.code(), Some("ResourceNotFoundException"));
}

/// The recovery instance of each server after a recovery, in server order.
async fn recover(client: &aws_sdk_drs::Client, ids: &[String]) -> Vec<String> {
    let job_id = start_recovery_job(client, ids, false).await;
    wait_for_job(client, &job_id, JOB_LIMIT).await;
    let instances = client
        .describe_recovery_instances()
        .send()
        .await
        .expect("instances");
    ids.iter()
        .map(|id| {
            instances
                .items()
                .iter()
                .find(|instance| instance.source_server_id() == Some(id.as_str()))
                .and_then(|instance| instance.recovery_instance_id())
                .expect("a recovery instance per server")
                .to_owned()
        })
        .collect()
}

async fn failback_state(client: &aws_sdk_drs::Client, instance_id: &str) -> String {
    client
        .describe_recovery_instances()
        .filters(
            DescribeRecoveryInstancesRequestFilters::builder()
                .recovery_instance_ids(instance_id)
                .build(),
        )
        .send()
        .await
        .expect("instances")
        .items()[0]
        .failback()
        .and_then(|failback| failback.state())
        .map(|state| state.as_str().to_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn failback_client_then_failback_launch() {
    let sim = start_fast().await;
    let ids = seed(&sim, "db", 2, json!({})).await;
    let client = drs_client(&sim);
    let instance_ids = recover(&client, &ids).await;
    assert_eq!(
        failback_state(&client, &instance_ids[0]).await,
        "FAILBACK_NOT_STARTED"
    );

    // Nothing connected yet: refused, and no job is made.
    let refused = client
        .start_failback_launch()
        .set_recovery_instance_ids(Some(instance_ids.clone()))
        .send()
        .await
        .expect_err("not ready");
    assert_eq!(refused.code(), Some("ConflictException"));
    let too_many = client
        .start_failback_launch()
        .set_recovery_instance_ids(Some((0..201).map(|i| format!("i-{i:017x}")).collect()))
        .send()
        .await
        .expect_err("over 200");
    assert_eq!(too_many.code(), Some("ValidationException"));

    // One client: that instance only.
    let connected = control_post(
        &sim,
        "/_drplan/failback-client",
        json!({"targets": ["db-000"]}),
    )
    .await;
    assert_eq!(
        connected["connected"][0]["recovery_instance_id"],
        json!(instance_ids[0])
    );
    let deadline = std::time::Instant::now() + JOB_LIMIT;
    while failback_state(&client, &instance_ids[0]).await != "FAILBACK_READY_FOR_LAUNCH" {
        assert!(std::time::Instant::now() < deadline, "never ready");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        failback_state(&client, &instance_ids[1]).await,
        "FAILBACK_NOT_STARTED"
    );

    control_post(
        &sim,
        "/_drplan/faults",
        json!({"kind": "fail_failback_launch", "targets": [instance_ids[0]], "raw_error": "boom"}),
    )
    .await;
    let failback = client
        .start_failback_launch()
        .recovery_instance_ids(&instance_ids[0])
        .send()
        .await
        .expect("failback")
        .job()
        .cloned()
        .expect("job");
    assert_eq!(
        failback.initiated_by().map(|by| by.as_str()),
        Some("FAILBACK")
    );
    assert_eq!(failback.r#type().map(|kind| kind.as_str()), Some("LAUNCH"));
    wait_for_job(&client, failback.job_id(), JOB_LIMIT).await;
    assert_eq!(
        failback_state(&client, &instance_ids[0]).await,
        "FAILBACK_ERROR"
    );
    let log = client
        .describe_job_log_items()
        .job_id(failback.job_id())
        .send()
        .await
        .expect("log");
    let failed = log
        .items()
        .iter()
        .find(|item| item.event().map(|event| event.as_str()) == Some("LAUNCH_FAILED"))
        .expect("LAUNCH_FAILED logged");
    assert_eq!(
        failed.event_data().and_then(|data| data.raw_error()),
        Some("boom")
    );

    // StopFailback starts over; a new client and launch complete it.
    client
        .stop_failback()
        .recovery_instance_id(&instance_ids[0])
        .send()
        .await
        .expect("stop");
    assert_eq!(
        failback_state(&client, &instance_ids[0]).await,
        "FAILBACK_NOT_STARTED"
    );
    assert_eq!(
        http(&sim, "DELETE", "/_drplan/faults", None).await.status,
        200
    );
    control_post(&sim, "/_drplan/failback-client", json!({"all": true})).await;
    for instance_id in &instance_ids {
        while failback_state(&client, instance_id).await != "FAILBACK_READY_FOR_LAUNCH" {
            assert!(
                std::time::Instant::now() < deadline + JOB_LIMIT,
                "never ready"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
    let job = client
        .start_failback_launch()
        .set_recovery_instance_ids(Some(instance_ids.clone()))
        .send()
        .await
        .expect("failback")
        .job()
        .cloned()
        .expect("job");
    wait_for_job(&client, job.job_id(), JOB_LIMIT).await;
    for instance_id in &instance_ids {
        assert_eq!(
            failback_state(&client, instance_id).await,
            "FAILBACK_COMPLETED"
        );
    }
    let events = http(&sim, "GET", "/_drplan/events", None).await.body;
    let states: Vec<&str> = events["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["event"]["detail-type"] == "DRS Recovery Instance Failback State Change")
        .filter_map(|e| e["event"]["detail"]["state"].as_str())
        .collect();
    for expected in [
        "FAILBACK_IN_PROGRESS",
        "FAILBACK_READY_FOR_LAUNCH",
        "FAILBACK_ERROR",
        "FAILBACK_NOT_STARTED",
        "FAILBACK_COMPLETED",
    ] {
        assert!(
            states.contains(&expected),
            "{expected} missing from {states:?}"
        );
    }
}

#[tokio::test]
async fn reverse_replication_creates_a_server_in_the_origin_region() {
    let sim = start_fast().await;
    let created = control_post(
        &sim,
        "/_drplan/source-servers",
        json!({"servers": [
            {"hostname": "ec2-db", "origin_region": "us-west-2"},
            {"hostname": "onprem-db"},
        ]}),
    )
    .await;
    let ids: Vec<String> = created["servers"]
        .as_array()
        .expect("servers")
        .iter()
        .map(|server| server["source_server_id"].as_str().expect("id").to_owned())
        .collect();
    let client = drs_client(&sim);
    let servers = client
        .describe_source_servers()
        .send()
        .await
        .expect("servers");
    assert_eq!(
        servers.items()[0]
            .source_cloud_properties()
            .and_then(|properties| properties.origin_region()),
        Some("us-west-2")
    );
    let instance_ids = recover(&client, &ids).await;

    let refused = client
        .reverse_replication()
        .recovery_instance_id(&instance_ids[1])
        .send()
        .await
        .expect_err("not from EC2");
    assert_eq!(refused.code(), Some("ValidationException"));

    let reversed_arn = client
        .reverse_replication()
        .recovery_instance_id(&instance_ids[0])
        .send()
        .await
        .expect("reverse")
        .reversed_direction_source_server_arn()
        .expect("arn")
        .to_owned();
    assert!(
        reversed_arn.starts_with("arn:aws:drs:us-west-2:"),
        "{reversed_arn}"
    );
    let here = client
        .describe_source_servers()
        .send()
        .await
        .expect("servers");
    assert!(
        here.items()
            .iter()
            .all(|s| s.arn() != Some(reversed_arn.as_str()))
    );

    let origin = drs_client_in(&sim, "us-west-2");
    let deadline = std::time::Instant::now() + JOB_LIMIT;
    let reversed_id = loop {
        let servers = origin
            .describe_source_servers()
            .send()
            .await
            .expect("servers");
        assert_eq!(
            servers.items().len(),
            1,
            "only the reversed server is in us-west-2"
        );
        let server = &servers.items()[0];
        assert_eq!(server.arn(), Some(reversed_arn.as_str()));
        assert_eq!(
            server.replication_direction().map(|d| d.as_str()),
            Some("FAILBACK")
        );
        let state = server
            .data_replication_info()
            .and_then(|info| info.data_replication_state())
            .map(|state| state.as_str().to_owned());
        if state.as_deref() == Some("CONTINUOUS") {
            break server.source_server_id().expect("id").to_owned();
        }
        assert_eq!(state.as_deref(), Some("INITIAL_SYNC"));
        assert!(std::time::Instant::now() < deadline, "never CONTINUOUS");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    // A recovery in the origin Region launches it there.
    let origin_instances = recover(&origin, std::slice::from_ref(&reversed_id)).await;
    assert_eq!(origin_instances.len(), 1);
    let recovery_region = client
        .describe_recovery_instances()
        .send()
        .await
        .expect("instances");
    assert!(
        recovery_region
            .items()
            .iter()
            .all(|i| i.recovery_instance_id() != Some(origin_instances[0].as_str()))
    );
}

#[tokio::test]
async fn retry_data_replication_answers_the_server() {
    let sim = start_fast().await;
    let ids = seed(&sim, "db", 1, json!({})).await;
    let client = drs_client(&sim);
    // Deprecated in DRS, still served: drplan's runbooks may name it.
    #[allow(deprecated)]
    let retried = client
        .retry_data_replication()
        .source_server_id(&ids[0])
        .send()
        .await
        .expect("retry");
    assert_eq!(retried.source_server_id(), Some(ids[0].as_str()));
}

#[tokio::test]
async fn stalled_replication_shows_and_emits_events() {
    let sim = start_fast().await;
    let ids = seed(&sim, "db", 1, json!({})).await;
    control_post(
        &sim,
        "/_drplan/faults",
        json!({"kind": "stall_replication", "servers": ["db-000"]}),
    )
    .await;
    let client = drs_client(&sim);
    let servers = client
        .describe_source_servers()
        .send()
        .await
        .expect("servers");
    let replication = servers.items()[0]
        .data_replication_info()
        .expect("replication");
    assert_eq!(
        replication
            .data_replication_state()
            .map(|state| state.as_str()),
        Some("STALLED")
    );
    // A retry cannot cure a stall that the network (the fault) still causes.
    // Deprecated in DRS, still served: drplan's runbooks may name it.
    #[allow(deprecated)]
    let retried = client
        .retry_data_replication()
        .source_server_id(&ids[0])
        .send()
        .await
        .expect("retry");
    assert_eq!(
        retried
            .data_replication_info()
            .and_then(|info| info.data_replication_state())
            .map(|state| state.as_str()),
        Some("STALLED")
    );

    control_post(
        &sim,
        "/_drplan/faults",
        json!({"kind": "unstall_replication", "servers": [ids[0]]}),
    )
    .await;
    let servers = client
        .describe_source_servers()
        .send()
        .await
        .expect("servers");
    assert_eq!(
        servers.items()[0]
            .data_replication_info()
            .and_then(|info| info.data_replication_state())
            .map(|state| state.as_str()),
        Some("CONTINUOUS")
    );
    let events = control_get(&sim, "/_drplan/events").await;
    let stall_states: Vec<&str> = events["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|emitted| &emitted["event"])
        .filter(|event| event["detail-type"] == "DRS Source Server Data Replication Stalled Change")
        .filter_map(|event| event["detail"]["state"].as_str())
        .collect();
    assert_eq!(stall_states, vec!["STALLED", "NOT_STALLED"]);
}

/// (dataReplicationState, replicationDirection) of a server in the client's Region.
async fn replication_of(client: &aws_sdk_drs::Client, server_id: &str) -> (String, String) {
    let servers = client
        .describe_source_servers()
        .filters(
            aws_sdk_drs::types::DescribeSourceServersRequestFilters::builder()
                .source_server_ids(server_id)
                .build(),
        )
        .send()
        .await
        .expect("DescribeSourceServers");
    let server = servers
        .items()
        .first()
        .expect("the server is in this Region");
    (
        server
            .data_replication_info()
            .and_then(|info| info.data_replication_state())
            .map(|state| state.as_str().to_owned())
            .unwrap_or_default(),
        server
            .replication_direction()
            .map(|direction| direction.as_str().to_owned())
            .unwrap_or_default(),
    )
}

/// Polls until the server is CONTINUOUS; every state seen on the way must be `syncing`.
async fn wait_continuous(client: &aws_sdk_drs::Client, server_id: &str, syncing: &str) {
    let deadline = std::time::Instant::now() + JOB_LIMIT;
    loop {
        let (state, _) = replication_of(client, server_id).await;
        if state == "CONTINUOUS" {
            return;
        }
        assert_eq!(state, syncing, "{server_id} before CONTINUOUS");
        assert!(
            std::time::Instant::now() < deadline,
            "{server_id} never CONTINUOUS"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The whole cross-Region cycle without EC2: the reversed server launches in the origin
/// Region, the recovery Region's instance is terminated (the reversed server loses its
/// source), and ReverseReplication on the failed-back instance points the original server
/// at it: RESCAN, then CONTINUOUS, direction FAILOVER.
#[tokio::test]
async fn reversing_a_failed_back_instance_protects_the_original_again() {
    let sim = start_fast().await;
    let created = control_post(
        &sim,
        "/_drplan/source-servers",
        json!({"servers": [{"hostname": "ec2-app", "origin_region": "us-west-2"}]}),
    )
    .await;
    let original_id = created["servers"][0]["source_server_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let original_arn = created["servers"][0]["arn"]
        .as_str()
        .expect("arn")
        .to_owned();
    let east = drs_client(&sim);
    let west = drs_client_in(&sim, "us-west-2");
    let recovered = recover(&east, std::slice::from_ref(&original_id)).await[0].clone();
    // A recovery leaves the original's replication as it was: DRS stops nothing.
    assert_eq!(
        replication_of(&east, &original_id).await,
        ("CONTINUOUS".to_owned(), "FAILOVER".to_owned())
    );

    let reversed_arn = east
        .reverse_replication()
        .recovery_instance_id(&recovered)
        .send()
        .await
        .expect("ReverseReplication")
        .reversed_direction_source_server_arn()
        .expect("an ARN")
        .to_owned();
    let reversed_id = reversed_arn.rsplit('/').next().expect("ID").to_owned();
    wait_continuous(&west, &reversed_id, "INITIAL_SYNC").await;
    // Without EC2 the reversed server keeps its original's (made-up) template.
    let template = |client: aws_sdk_drs::Client, id: String| async move {
        client
            .get_launch_configuration()
            .source_server_id(id)
            .send()
            .await
            .expect("GetLaunchConfiguration")
            .ec2_launch_template_id()
            .map(str::to_owned)
    };
    assert_eq!(
        template(west.clone(), reversed_id.clone()).await,
        template(east.clone(), original_id.clone()).await
    );

    let failed_back = recover(&west, std::slice::from_ref(&reversed_id)).await[0].clone();
    let events = control_get(&sim, "/_drplan/events").await;
    let result = events["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|emitted| &emitted["event"])
        .find(|event| {
            event["detail-type"] == "DRS Source Server Launch Result"
                && event["resources"][0] == reversed_arn.as_str()
        })
        .expect("a launch result of the reversed server");
    assert_eq!(result["region"], "us-west-2");
    assert_eq!(result["detail"]["state"], "SUCCEEDED");

    // The recovery Region's instance goes: the reversed server has nothing to replicate.
    let terminate = east
        .terminate_recovery_instances()
        .recovery_instance_ids(&recovered)
        .send()
        .await
        .expect("TerminateRecoveryInstances")
        .job()
        .map(|job| job.job_id().to_owned())
        .expect("a job");
    wait_for_job(&east, &terminate, JOB_LIMIT).await;
    assert_eq!(
        replication_of(&west, &reversed_id).await,
        ("DISCONNECTED".to_owned(), "FAILBACK".to_owned())
    );
    #[allow(deprecated)]
    let retried = west
        .retry_data_replication()
        .source_server_id(&reversed_id)
        .send()
        .await
        .expect("RetryDataReplication");
    assert_eq!(
        retried
            .data_replication_info()
            .and_then(|info| info.data_replication_state())
            .map(|state| state.as_str()),
        Some("DISCONNECTED"),
        "its source instance is gone for good"
    );
    assert_eq!(
        replication_of(&east, &original_id).await.0,
        "CONTINUOUS",
        "terminating its recovery instance leaves the original's replication alone"
    );

    // Protecting the failed-back instance: the original server replicates it.
    for attempt in 0..2 {
        let answer = west
            .reverse_replication()
            .recovery_instance_id(&failed_back)
            .send()
            .await
            .expect("ReverseReplication in the origin Region");
        assert_eq!(
            answer.reversed_direction_source_server_arn(),
            Some(original_arn.as_str())
        );
        if attempt == 0 {
            assert_eq!(
                replication_of(&east, &original_id).await,
                ("RESCAN".to_owned(), "FAILOVER".to_owned())
            );
            wait_continuous(&east, &original_id, "RESCAN").await;
        } else {
            assert_eq!(
                replication_of(&east, &original_id).await.0,
                "CONTINUOUS",
                "asking again restarts nothing"
            );
        }
    }
    let original = east
        .describe_source_servers()
        .send()
        .await
        .expect("servers");
    assert_eq!(
        original.items().len(),
        1,
        "each Region sees its own servers"
    );
    assert_eq!(
        original.items()[0].reversed_direction_source_server_arn(),
        Some(reversed_arn.as_str())
    );
    let unknown = east
        .reverse_replication()
        .recovery_instance_id(&failed_back)
        .send()
        .await
        .expect_err("the failed-back instance is in us-west-2's DRS");
    assert_eq!(unknown.code(), Some("ResourceNotFoundException"));
}
