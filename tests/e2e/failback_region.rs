//! `mode: failback` of EC2 sources end to end on the local cloud: servers whose origin is
//! us-west-2, recovered into us-east-1, go back to us-west-2. Seen from outside through
//! the SDK in both Regions: the failback makes the reversed source servers in us-west-2
//! (ReverseReplication), waits until they replicate CONTINUOUS, launches every server
//! there (a recovery in us-west-2, its jobs tagged with the failback), puts DNS back,
//! protects the original direction again, and terminates the recovery instances in
//! us-east-1.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use aws_sdk_drs::types::{InitiatedBy, RecoveryInstance};
use aws_sdk_sfn::types::ExecutionStatus;
use serde_json::{Value, json};

use crate::common::{Cloud, cloud_with, report_wave};

const ORIGIN: &str = "us-west-2";

/// Databases, then web servers: EC2 instances of us-west-2, replicated to us-east-1.
const FLEET: &str = r#"
region: us-east-1
source_servers:
  - count: 2
    hostname: "db-{i:02}"
    tags: { "dr:plan": "shop", "dr:wave": "db" }
    replication: { state: CONTINUOUS, lag_seconds: 0 }
    origin_region: us-west-2
  - count: 2
    hostname: "web-{i:02}"
    tags: { "dr:plan": "shop", "dr:wave": "web" }
    replication: { state: CONTINUOUS, lag_seconds: 0 }
    origin_region: us-west-2
network:
  public_ips: true
hosted_zones:
  - name: example.com
    records:
      - { name: shop.example.com, type: A, ttl: 60, values: [203.0.113.10] }
notifications:
  topic: drplan-notifications
  queue: drplan-notifications
"#;

/// The same gates in both directions: EC2 status checks and the service ports, at the
/// instances' private addresses.
fn plan() -> Value {
    json!({
        "name": "shop",
        "rto_minutes": 30,
        "selector": {"dr:plan": "shop"},
        "waves": [
            {"name": "database", "selector": {"dr:wave": "db"},
             "health": {"checks": ["ec2-status", "tcp:5432"], "timeout_minutes": 5}},
            {"name": "web", "selector": {"dr:wave": "web"}, "depends_on": ["database"],
             "health": {"checks": ["ec2-status", "https:443/"], "timeout_minutes": 5}}
        ],
        "dns": {"zone_name": "example.com",
                "records": [{"name": "shop.example.com", "type": "A", "ttl": 60, "from_wave": "web"}]},
        "failback": {"keep_recovery_minutes": 0}
    })
}

fn drs_in(cloud: &Cloud, region: &str) -> aws_sdk_drs::Client {
    aws_sdk_drs::Client::from_conf(
        cloud
            .drs
            .config()
            .to_builder()
            .region(aws_sdk_drs::config::Region::new(region.to_owned()))
            .build(),
    )
}

fn ec2_in(cloud: &Cloud, region: &str) -> aws_sdk_ec2::Client {
    aws_sdk_ec2::Client::from_conf(
        cloud
            .ec2
            .config()
            .to_builder()
            .region(aws_sdk_ec2::config::Region::new(region.to_owned()))
            .build(),
    )
}

async fn recovery_instances(drs: &aws_sdk_drs::Client) -> Vec<RecoveryInstance> {
    drs.describe_recovery_instances()
        .send()
        .await
        .expect("DescribeRecoveryInstances")
        .items()
        .to_vec()
}

/// EC2 instance ID → state name, of every instance EC2 reports in the client's Region.
async fn instance_states(ec2: &aws_sdk_ec2::Client) -> BTreeMap<String, String> {
    let mut states = BTreeMap::new();
    let reply = ec2
        .describe_instances()
        .send()
        .await
        .expect("DescribeInstances");
    for instance in reply.reservations().iter().flat_map(|r| r.instances()) {
        if let (Some(id), Some(state)) = (
            instance.instance_id(),
            instance.state().and_then(|s| s.name()),
        ) {
            states.insert(id.to_owned(), state.as_str().to_owned());
        }
    }
    states
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failback_brings_ec2_sources_back_to_their_origin_region() {
    let Some(cloud) = cloud_with(FLEET).await else {
        return;
    };
    let origin_drs = drs_in(&cloud, ORIGIN);
    let origin_ec2 = ec2_in(&cloud, ORIGIN);
    let before = cloud.records("example.com").await;
    let originals: BTreeMap<String, String> = cloud.server_ids().await;

    let recovery = cloud.run(plan(), "recovery").await;
    assert_eq!(
        recovery.status,
        ExecutionStatus::Succeeded,
        "{:?}",
        recovery.cause
    );
    let recovered = recovery_instances(&cloud.drs).await;
    assert_eq!(recovered.len(), 4);
    let recovered_ec2: BTreeSet<String> = recovered
        .iter()
        .filter_map(|i| i.ec2_instance_id().map(str::to_owned))
        .collect();
    assert!(
        origin_drs
            .describe_source_servers()
            .send()
            .await
            .expect("DescribeSourceServers in us-west-2")
            .items()
            .is_empty(),
        "nothing replicates back before the failback"
    );

    // DRS throttles the first ReverseReplication calls: the step is retried, and each
    // server still gets exactly one reversed server.
    cloud
        .fault(
            json!({"kind": "throttle", "operation": "ReverseReplication", "count": 2,
                      "retry_after_seconds": 0}),
        )
        .await;
    let failback = cloud.run(plan(), "failback").await;
    assert_eq!(
        failback.status,
        ExecutionStatus::Succeeded,
        "{:?}: {:?}",
        failback.error,
        failback.cause
    );

    // The failback made a reversed source server in us-west-2 for every server.
    let reversed = origin_drs
        .describe_source_servers()
        .send()
        .await
        .expect("DescribeSourceServers in us-west-2")
        .items()
        .to_vec();
    assert_eq!(
        reversed.len(),
        4,
        "one reversed server per server, retries or not"
    );
    let original_arns: BTreeSet<String> = reversed
        .iter()
        .filter_map(|s| s.reversed_direction_source_server_arn())
        .map(|arn| arn.rsplit('/').next().unwrap_or(arn).to_owned())
        .collect();
    assert_eq!(
        original_arns,
        originals.values().cloned().collect::<BTreeSet<_>>(),
        "one reversed server per original"
    );
    let reversed_ids: BTreeSet<String> = reversed
        .iter()
        .filter_map(|s| s.source_server_id().map(str::to_owned))
        .collect();

    // Every server launched in us-west-2, by this failback's jobs, and runs there.
    let launched = recovery_instances(&origin_drs).await;
    let launched_from: BTreeSet<String> = launched
        .iter()
        .filter(|i| i.is_drill() == Some(false))
        .filter_map(|i| i.source_server_id().map(str::to_owned))
        .collect();
    assert_eq!(launched_from, reversed_ids);
    let jobs = origin_drs
        .describe_jobs()
        .send()
        .await
        .expect("DescribeJobs in us-west-2")
        .items()
        .to_vec();
    assert!(!jobs.is_empty());
    for job in &jobs {
        assert_eq!(job.initiated_by(), Some(&InitiatedBy::StartRecovery));
        assert_eq!(
            job.tags().and_then(|t| t.get("drplan:execution")),
            Some(&failback.name),
            "every us-west-2 job is the failback's"
        );
    }
    let running_there = instance_states(&origin_ec2).await;
    for instance in &launched {
        let id = instance.ec2_instance_id().unwrap_or_default();
        assert_eq!(
            running_there.get(id).map(String::as_str),
            Some("running"),
            "{id} runs in us-west-2: {running_there:?}"
        );
    }

    // The recovery Region is cleaned up: no recovery instance of the recovery is left
    // in DRS, and their EC2 instances are terminated.
    let left: BTreeSet<String> = recovery_instances(&cloud.drs)
        .await
        .iter()
        .filter_map(|i| i.ec2_instance_id().map(str::to_owned))
        .collect();
    assert!(left.is_disjoint(&recovered_ec2), "left: {left:?}");
    let home_states = instance_states(&cloud.ec2).await;
    for id in &recovered_ec2 {
        assert!(
            matches!(
                home_states.get(id).map(String::as_str),
                Some("terminated" | "shutting-down")
            ),
            "{id} in us-east-1: {:?}",
            home_states.get(id)
        );
    }

    // DNS answers what it did before the recovery.
    assert_eq!(cloud.records("example.com").await, before);

    // The report: each wave gated with EC2 status checks in us-west-2; per server home,
    // protected again, its recovery instance terminated.
    let report = cloud.report("shop", &failback.name).await;
    assert_eq!(report["mode"], "failback");
    for wave in ["database", "web"] {
        let reported = report_wave(&report, wave);
        assert_eq!(reported["state"], "SUCCEEDED", "{reported}");
        let gate = reported["health_gate"].as_str().unwrap_or_default();
        assert!(gate.contains("ec2-status"), "{gate}");
    }
    let servers = report["failback"]["servers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(servers.len(), 4, "{}", report["failback"]);
    for server in &servers {
        assert_eq!(server["failed_back"], true, "{server}");
        assert_eq!(server["recovery_instance"], "terminated", "{server}");
        assert_eq!(server["protected_again"], true, "{server}");
        assert!(
            originals
                .values()
                .any(|id| *id == server["source_server_id"]),
            "the report names the original servers: {server}"
        );
    }

    // The original direction is protected again: each original source server (us-east-1)
    // replicates its server's new instance in us-west-2 (the simulator's view: DRS's API
    // does not say which machine a source server replicates), and gets to CONTINUOUS.
    let new_instances: BTreeSet<String> = launched
        .iter()
        .filter_map(|i| i.recovery_instance_id().map(str::to_owned))
        .collect();
    let started = Instant::now();
    loop {
        let state = cloud
            .control(hyper::Method::GET, "/_drplan/state", None)
            .await;
        let originals_now: Vec<&Value> = state["servers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|s| s["region"] == "us-east-1")
            .collect();
        assert_eq!(originals_now.len(), 4);
        let replicate_from: BTreeSet<String> = originals_now
            .iter()
            .filter_map(|s| s["replicates_from"].as_str().map(str::to_owned))
            .collect();
        assert_eq!(replicate_from, new_instances, "{originals_now:?}");
        if originals_now
            .iter()
            .all(|s| s["replication_state"] == "CONTINUOUS")
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the originals do not replicate again: {originals_now:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    cloud.cloud.shutdown().await;
}
