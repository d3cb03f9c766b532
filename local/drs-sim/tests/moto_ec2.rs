//! Launched servers become real EC2 instances in moto, and termination removes them; an
//! instance stopped or terminated in EC2 outside DRS says so once read, and stops serving.
//!
//! Needs moto (see `drplan_drs_sim::moto`): set DRPLAN_MOTO_SERVER, and DRPLAN_REQUIRE_MOTO to
//! fail instead of skipping without it.

mod common;

use std::time::Duration;

use aws_sdk_drs::types::{Ec2InstanceState, JobLog, JobLogEvent, LaunchStatus};
use common::moto::*;
use common::*;
use drplan_drs_sim::SimConfig;
use drplan_drs_sim::moto::start_moto;
use serde_json::json;

#[tokio::test]
async fn launches_are_real_instances_in_moto_and_terminate_removes_them() {
    let Some(moto) = start_moto().await else {
        return;
    };
    let vpc = first(
        &ec2(
            &moto,
            &[("Action", "CreateVpc"), ("CidrBlock", "10.20.0.0/16")],
        )
        .await,
        "vpcId",
    );
    let recovery_subnet = first(
        &ec2(
            &moto,
            &[
                ("Action", "CreateSubnet"),
                ("VpcId", &vpc),
                ("CidrBlock", "10.20.1.0/24"),
            ],
        )
        .await,
        "subnetId",
    );

    let sim = start(SimConfig {
        time_scale: FAST,
        ec2_endpoint: Some(moto.endpoint.clone()),
        events_endpoint: Some(moto.endpoint.clone()),
        ..SimConfig::default()
    })
    .await;
    let created = control_post(
        &sim,
        "/_drplan/source-servers",
        json!([
            {"hostname": "db-001", "tags": {"dr:plan": "shop", "dr:wave": "db"},
             "launch_subnet_id": recovery_subnet},
            {"hostname": "app-001", "tags": {"dr:plan": "shop"},
             "launch_subnet_id": "subnet-0000000000000dead"}
        ]),
    )
    .await;
    let ids: Vec<String> = created["servers"]
        .as_array()
        .expect("servers")
        .iter()
        .map(|server| server["source_server_id"].as_str().expect("id").to_owned())
        .collect();
    let client = drs_client(&sim);

    // A drill: db-001 lands where its launch template puts it, the recovery subnet (DRS has
    // no drill subnet of its own); app-001's subnet does not exist in moto, so its launch
    // fails with EC2's own error.
    let drill = client
        .start_recovery()
        .set_source_servers(Some(recovery_request(&ids)))
        .is_drill(true)
        .send()
        .await
        .expect("drill");
    let drill_job = wait_for_job(
        &client,
        drill.job().expect("job").job_id(),
        Duration::from_secs(60),
    )
    .await;
    let status_of = |id: &str| {
        drill_job
            .participating_servers()
            .iter()
            .find(|participant| participant.source_server_id() == Some(id))
            .and_then(|participant| participant.launch_status().cloned())
    };
    assert_eq!(status_of(&ids[0]), Some(LaunchStatus::Launched));
    assert_eq!(status_of(&ids[1]), Some(LaunchStatus::Failed));
    let log = client
        .describe_job_log_items()
        .job_id(drill_job.job_id())
        .send()
        .await
        .expect("log");
    let raw_error = log
        .items()
        .iter()
        .find(|item| item.event() == Some(&JobLogEvent::LaunchFailed))
        .and_then(JobLog::event_data)
        .and_then(|data| data.raw_error())
        .expect("rawError");
    assert!(
        raw_error.contains("InvalidSubnetID.NotFound"),
        "{raw_error}"
    );

    let instances = client
        .describe_recovery_instances()
        .send()
        .await
        .expect("instances");
    assert_eq!(instances.items().len(), 1);
    let drill_instance = instances.items()[0]
        .ec2_instance_id()
        .expect("ec2 id")
        .to_owned();
    let Ec2Instance {
        subnet_id: subnet,
        state,
        tags,
        ..
    } = describe_instance(&moto, &drill_instance).await;
    assert_eq!(
        subnet, recovery_subnet,
        "drills launch from the template too"
    );
    assert!(state == "running" || state == "pending", "{state}");
    assert_eq!(tags.get("dr:plan").map(String::as_str), Some("shop"));
    assert_eq!(tags.get("dr:wave").map(String::as_str), Some("db"));
    assert_eq!(
        tags.get("AWSElasticDisasterRecoverySourceServerID"),
        Some(&ids[0])
    );
    assert_eq!(tags.get("Name").map(String::as_str), Some("db-001"));

    // A recovery replaces the drill instance: the new one is in the recovery subnet and the
    // drill instance is terminated in moto.
    let recovery = client
        .start_recovery()
        .set_source_servers(Some(recovery_request(&ids[..1])))
        .send()
        .await
        .expect("recovery");
    wait_for_job(
        &client,
        recovery.job().expect("job").job_id(),
        Duration::from_secs(60),
    )
    .await;
    let instances = client
        .describe_recovery_instances()
        .send()
        .await
        .expect("instances");
    assert_eq!(instances.items().len(), 1);
    let recovery_instance = instances.items()[0]
        .ec2_instance_id()
        .expect("ec2 id")
        .to_owned();
    assert_ne!(recovery_instance, drill_instance);
    assert_eq!(
        instances.items()[0].recovery_instance_id(),
        Some(recovery_instance.as_str())
    );
    let launched = describe_instance(&moto, &recovery_instance).await;
    assert_eq!(launched.subnet_id, recovery_subnet);
    let drill_state = describe_instance(&moto, &drill_instance).await.state;
    assert_eq!(drill_state, "terminated");

    let terminate = client
        .terminate_recovery_instances()
        .recovery_instance_ids(&recovery_instance)
        .send()
        .await
        .expect("terminate");
    wait_for_job(
        &client,
        terminate.job().expect("job").job_id(),
        Duration::from_secs(60),
    )
    .await;
    let state = describe_instance(&moto, &recovery_instance).await.state;
    assert_eq!(state, "terminated");
    assert!(
        client
            .describe_recovery_instances()
            .send()
            .await
            .expect("instances")
            .items()
            .is_empty()
    );

    // moto's EventBridge took every launch-result event.
    let events = control_get(&sim, "/_drplan/events").await;
    let events = events["events"].as_array().expect("events");
    assert_eq!(
        events.len(),
        3,
        "two results in the drill, one in the recovery"
    );
    assert!(
        events.iter().all(|event| event["delivered"] == true),
        "{events:?}"
    );
}

#[tokio::test]
async fn an_instance_stopped_or_terminated_in_ec2_stops_serving_once_read() {
    let Some(moto) = start_moto().await else {
        return;
    };
    let sim = start(SimConfig {
        time_scale: FAST,
        ec2_endpoint: Some(moto.endpoint.clone()),
        ..SimConfig::default()
    })
    .await;
    // A subnet of its own, so the stand-ins (127.57.3.x) collide with no other test's.
    let vpc = first(
        &ec2(
            &moto,
            &[("Action", "CreateVpc"), ("CidrBlock", "10.57.0.0/16")],
        )
        .await,
        "vpcId",
    );
    let subnet = first(
        &ec2(
            &moto,
            &[
                ("Action", "CreateSubnet"),
                ("VpcId", &vpc),
                ("CidrBlock", "10.57.3.0/24"),
            ],
        )
        .await,
        "subnetId",
    );
    let servers: Vec<serde_json::Value> = (0..3)
        .map(|i| {
            json!({"hostname": format!("ec2gone-{i}"), "tags": {"tier": "web"},
                   "launch_subnet_id": subnet})
        })
        .collect();
    let created = control_post(&sim, "/_drplan/source-servers", json!(servers)).await;
    let ids: Vec<String> = created["servers"]
        .as_array()
        .expect("servers")
        .iter()
        .map(|server| server["source_server_id"].as_str().expect("id").to_owned())
        .collect();
    let declared = http(
        &sim,
        "PUT",
        "/_drplan/probe-ports/plan:web",
        Some(json!({"probes": [{"selector": {"tier": "web"}, "ports": [8080]}]})),
    )
    .await;
    assert_eq!(declared.status, 200, "{}", declared.body);
    let client = drs_client(&sim);
    let job = client
        .start_recovery()
        .set_source_servers(Some(recovery_request(&ids)))
        .is_drill(true)
        .send()
        .await
        .expect("drill");
    wait_for_job(
        &client,
        job.job().expect("job").job_id(),
        Duration::from_secs(60),
    )
    .await;
    let instances = client
        .describe_recovery_instances()
        .send()
        .await
        .expect("instances");
    let mut ec2_ids: Vec<String> = instances
        .items()
        .iter()
        .filter_map(|instance| instance.ec2_instance_id().map(str::to_owned))
        .collect();
    ec2_ids.sort();
    assert_eq!(ec2_ids.len(), 3);
    assert_eq!(sim.probe_listener_count(), 3);

    // Terminated and stopped in EC2 itself, not through DRS; the third stays running.
    ec2(
        &moto,
        &[
            ("Action", "TerminateInstances"),
            ("InstanceId.1", &ec2_ids[0]),
        ],
    )
    .await;
    ec2(
        &moto,
        &[("Action", "StopInstances"), ("InstanceId.1", &ec2_ids[1])],
    )
    .await;
    assert_eq!(
        sim.probe_listener_count(),
        3,
        "nothing polls moto: the simulator learns when asked"
    );
    let refreshed = control_post(
        &sim,
        "/_drplan/refresh-instances",
        json!({"instance_ids": [ec2_ids[0], ec2_ids[1], "i-0000000000000beef"]}),
    )
    .await;
    assert_eq!(
        refreshed["refreshed"].as_array().map(Vec::len),
        Some(2),
        "{refreshed}"
    );
    assert_eq!(sim.probe_listener_count(), 1);
    let state_of = |items: &[aws_sdk_drs::types::RecoveryInstance], id: &str| {
        items
            .iter()
            .find(|instance| instance.ec2_instance_id() == Some(id))
            .and_then(|instance| instance.ec2_instance_state().cloned())
    };
    let instances = client
        .describe_recovery_instances()
        .send()
        .await
        .expect("instances");
    // DRS keeps a recovery instance whose EC2 instance went away outside it.
    assert_eq!(
        state_of(instances.items(), &ec2_ids[0]),
        Some(Ec2InstanceState::Terminated)
    );
    assert_eq!(
        state_of(instances.items(), &ec2_ids[1]),
        Some(Ec2InstanceState::Stopped)
    );
    assert_eq!(
        state_of(instances.items(), &ec2_ids[2]),
        Some(Ec2InstanceState::Running)
    );

    // Started again, it serves again; an empty body reads every instance.
    ec2(
        &moto,
        &[("Action", "StartInstances"), ("InstanceId.1", &ec2_ids[1])],
    )
    .await;
    let everything = control_post(&sim, "/_drplan/refresh-instances", json!({})).await;
    assert_eq!(
        everything["refreshed"].as_array().map(Vec::len),
        Some(3),
        "{everything}"
    );
    assert_eq!(sim.probe_listener_count(), 2);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_subnet_out_of_addresses_fails_the_launch_with_ec2s_error_not_motos_page() {
    let Some(moto) = start_moto().await else {
        return;
    };
    let vpc = first(
        &ec2(
            &moto,
            &[("Action", "CreateVpc"), ("CidrBlock", "10.21.0.0/16")],
        )
        .await,
        "vpcId",
    );
    // A /28 holds 11 instances (16 addresses less the 5 AWS reserves).
    let subnet = first(
        &ec2(
            &moto,
            &[
                ("Action", "CreateSubnet"),
                ("VpcId", &vpc),
                ("CidrBlock", "10.21.1.0/28"),
            ],
        )
        .await,
        "subnetId",
    );
    let sim = start(SimConfig {
        time_scale: FAST,
        ec2_endpoint: Some(moto.endpoint.clone()),
        ..SimConfig::default()
    })
    .await;
    let servers: Vec<serde_json::Value> = (0..12)
        .map(|i| json!({"hostname": format!("app-{i:02}"), "launch_subnet_id": subnet}))
        .collect();
    let created = control_post(&sim, "/_drplan/source-servers", json!(servers)).await;
    let ids: Vec<String> = created["servers"]
        .as_array()
        .expect("servers")
        .iter()
        .map(|server| server["source_server_id"].as_str().expect("id").to_owned())
        .collect();
    let client = drs_client(&sim);
    let job = client
        .start_recovery()
        .set_source_servers(Some(recovery_request(&ids)))
        .send()
        .await
        .expect("recovery");
    let job = wait_for_job(
        &client,
        job.job().expect("job").job_id(),
        Duration::from_secs(120),
    )
    .await;
    let statuses: Vec<LaunchStatus> = job
        .participating_servers()
        .iter()
        .filter_map(|p| p.launch_status().cloned())
        .collect();
    let launched = statuses
        .iter()
        .filter(|s| **s == LaunchStatus::Launched)
        .count();
    assert_eq!(launched, 11, "{statuses:?}");
    let log = client
        .describe_job_log_items()
        .job_id(job.job_id())
        .send()
        .await
        .expect("log");
    let raw_error = log
        .items()
        .iter()
        .find(|item| item.event() == Some(&JobLogEvent::LaunchFailed))
        .and_then(JobLog::event_data)
        .and_then(|data| data.raw_error())
        .expect("rawError");
    assert!(
        raw_error.starts_with(&format!(
            "InsufficientFreeAddressesInSubnet: subnet {subnet} has 0 free addresses (10.21.1.0/28: 16 addresses less the 5 AWS reserves = 11 instances, all in use) (launch template lt-"
        )),
        "{raw_error}"
    );
    assert!(raw_error.len() < 300, "one short line: {raw_error}");
    assert!(!raw_error.contains('<'), "no HTML: {raw_error}");
}
