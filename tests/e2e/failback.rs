//! Failback in the local cloud, seen from outside through aws-sdk-drs and the `drplan`
//! CLI: recovery instances carry failback states; `drplan local failback-client` does
//! what a booted DRS Failback Client does; StartFailbackLaunch is refused before the
//! instances are ready and completes after; ReverseReplication makes a source server in
//! an EC2 source's origin Region, where a recovery runs. The failback state changes reach
//! the local cloud's EventBridge. `drplan readiness PLAN --failback` names, at each step,
//! what still keeps each server from going home. (The orchestration, `mode: failback`,
//! is `failback_run.rs`.)

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_sdk_drs::error::ProvideErrorMetadata;
use aws_sdk_drs::types::{
    DescribeJobsRequestFilters, DescribeRecoveryInstancesRequestFilters, Job, RecoveryInstance,
    StartRecoveryRequestSourceServer,
};
use drplan_local::seed::{self, Fleet};
use drplan_local::stack;
use drplan_local::upstream::{AwsClient, HttpClient};
use drplan_local::{Functions, LocalCloud, LocalCloudOptions, tools};
use hyper::Method;
use serde_json::Value;

use crate::common::repo_root;

const LIMIT: Duration = Duration::from_secs(120);
const ORIGIN_REGION: &str = "us-west-2";

/// Two servers from a data centre (Failback Client) and one EC2 server from us-west-2
/// (reversed replication). No functions: nothing here runs drplan's state machines.
const FLEET: &str = r#"
source_servers:
  - count: 2
    hostname: "dc-db-{i:02}"
    tags: { "dr:plan": "home", "dr:wave": "db" }
  - count: 1
    hostname: "ec2-app-{i:02}"
    tags: { "dr:plan": "home", "dr:wave": "app" }
    origin_region: us-west-2
network:
  vpc_cidr: 10.90.0.0/16
  recovery_subnet_cidr: 10.90.1.0/24
  drill_subnet_cidr: 10.90.2.0/24
"#;

struct Failback {
    cloud: LocalCloud,
    drs: aws_sdk_drs::Client,
    origin: aws_sdk_drs::Client,
    control: AwsClient,
}

/// The bucket the failback readiness check reads the plan from.
const BUCKET: &str = "drplan-failback";

/// The plan of the fleet: the data centre's databases, then the EC2 app server.
const PLAN: &str = r#"
name: home
rto_minutes: 60
selector: { "dr:plan": "home" }
waves:
  - name: db
    selector: { "dr:wave": "db" }
  - name: app
    depends_on: [db]
    selector: { "dr:wave": "app" }
"#;

async fn start() -> Option<Failback> {
    if let Err(missing) = tools::moto_server(&repo_root()) {
        assert!(
            std::env::var_os("DRPLAN_REQUIRE_LOCAL_CLOUD").is_none(),
            "DRPLAN_REQUIRE_LOCAL_CLOUD is set but the local cloud cannot start: {missing}"
        );
        eprintln!("SKIPPED: {missing}");
        return None;
    }
    let cloud = LocalCloud::start(LocalCloudOptions {
        repo_root: Some(repo_root()),
        functions: Functions::None,
        ..LocalCloudOptions::default()
    })
    .await
    .expect("the local cloud starts");
    let endpoint = cloud.endpoint_url().to_owned();
    seed::seed(&endpoint, &Fleet::from_yaml(FLEET).expect("a valid fleet"))
        .await
        .expect("the fleet seeds");
    let here = stack::sdk_config(&endpoint, cloud.region()).await;
    let there = stack::sdk_config(&endpoint, ORIGIN_REGION).await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&here)
            .force_path_style(true)
            .build(),
    );
    s3.create_bucket()
        .bucket(BUCKET)
        .send()
        .await
        .expect("CreateBucket");
    s3.put_object()
        .bucket(BUCKET)
        .key("plans/home.yaml")
        .body(PLAN.as_bytes().to_vec().into())
        .send()
        .await
        .expect("PutObject of the plan");
    Some(Failback {
        drs: aws_sdk_drs::Client::new(&here),
        origin: aws_sdk_drs::Client::new(&there),
        control: AwsClient::new(HttpClient::new(), &endpoint, cloud.region()),
        cloud,
    })
}

impl Failback {
    /// `drplan local ARGS... --endpoint-url GATEWAY`, as a person would run it; off the
    /// runtime's threads, which serve the gateway and the simulator it talks to.
    async fn drplan_local(&self, args: &[&str]) -> std::process::Output {
        let args: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
        let endpoint = self.cloud.endpoint_url().to_owned();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_drplan"))
                .arg("local")
                .args(&args)
                .args(["--endpoint-url", &endpoint])
                .output()
                .expect("the drplan binary runs")
        })
        .await
        .expect("the drplan command's thread")
    }

    /// `drplan readiness home --failback --format json`, as a person would run it:
    /// (exit status success, the servers that block by path, their messages joined).
    /// `drplan readiness home --failback --format json`: whether it is ready, and its
    /// blocking and waiting findings by path.
    async fn failback_readiness(
        &self,
    ) -> (bool, BTreeMap<String, String>, BTreeMap<String, String>) {
        let endpoint = self.cloud.endpoint_url().to_owned();
        let region = self.cloud.region().to_owned();
        let output = tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_drplan"))
                .args(["readiness", "home", "--failback", "--format", "json"])
                .args(["--bucket", BUCKET])
                .env("AWS_ENDPOINT_URL", endpoint)
                .env("AWS_REGION", &region)
                .env("AWS_DEFAULT_REGION", &region)
                .env("AWS_ACCESS_KEY_ID", "test")
                .env("AWS_SECRET_ACCESS_KEY", "test")
                .output()
                .expect("the drplan binary runs")
        })
        .await
        .expect("the drplan command's thread");
        let answer: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
            panic!(
                "readiness JSON: {e}: {}",
                String::from_utf8_lossy(&output.stderr)
            )
        });
        assert_eq!(answer["plan"], "home");
        assert_eq!(answer["ready"], output.status.success(), "{answer}");
        let by_path = |list: &Value| {
            list.as_array()
                .into_iter()
                .flatten()
                .map(|issue| {
                    (
                        issue["path"].as_str().unwrap_or_default().to_owned(),
                        issue["message"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        };
        assert!(answer["blocking"].is_array(), "{answer}");
        (
            output.status.success(),
            by_path(&answer["blocking"]),
            by_path(&answer["waiting"]),
        )
    }

    async fn gateway_events(&self) -> Vec<Value> {
        let journal =
            seed::control_call(&self.control, Method::GET, "/_drplan/gateway/events", None)
                .await
                .expect("the gateway's event journal");
        journal["events"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|entry| entry["event"].clone())
            .collect()
    }
}

/// Source server IDs by hostname, in one Region's DRS.
async fn servers(drs: &aws_sdk_drs::Client) -> BTreeMap<String, aws_sdk_drs::types::SourceServer> {
    let answer = drs
        .describe_source_servers()
        .send()
        .await
        .expect("DescribeSourceServers");
    answer
        .items()
        .iter()
        .map(|server| {
            let hostname = server
                .source_properties()
                .and_then(|properties| properties.identification_hints())
                .and_then(|hints| hints.hostname())
                .expect("a hostname")
                .to_owned();
            (hostname, server.clone())
        })
        .collect()
}

async fn recover(drs: &aws_sdk_drs::Client, server_ids: &[String]) -> Job {
    let requested = server_ids
        .iter()
        .map(|id| {
            StartRecoveryRequestSourceServer::builder()
                .source_server_id(id)
                .build()
                .expect("a request")
        })
        .collect();
    let job = drs
        .start_recovery()
        .set_source_servers(Some(requested))
        .send()
        .await
        .expect("StartRecovery")
        .job()
        .cloned()
        .expect("a job");
    wait_for_job(drs, job.job_id()).await
}

async fn wait_for_job(drs: &aws_sdk_drs::Client, job_id: &str) -> Job {
    let started = Instant::now();
    loop {
        let jobs = drs
            .describe_jobs()
            .filters(
                DescribeJobsRequestFilters::builder()
                    .job_ids(job_id)
                    .build(),
            )
            .send()
            .await
            .expect("DescribeJobs");
        let job = jobs.items().first().cloned().expect("the job is listed");
        if job.status().map(|status| status.as_str()) == Some("COMPLETED") {
            return job;
        }
        assert!(started.elapsed() < LIMIT, "job {job_id} did not complete");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn instances(drs: &aws_sdk_drs::Client, ids: &[String]) -> Vec<RecoveryInstance> {
    drs.describe_recovery_instances()
        .filters(
            DescribeRecoveryInstancesRequestFilters::builder()
                .set_source_server_ids(Some(ids.to_vec()))
                .build(),
        )
        .send()
        .await
        .expect("DescribeRecoveryInstances")
        .items()
        .to_vec()
}

fn failback_state(instance: &RecoveryInstance) -> &str {
    instance
        .failback()
        .and_then(|failback| failback.state())
        .map_or("", |state| state.as_str())
}

async fn failback_jobs(drs: &aws_sdk_drs::Client) -> Vec<Job> {
    drs.describe_jobs()
        .send()
        .await
        .expect("DescribeJobs")
        .items()
        .iter()
        .filter(|job| job.initiated_by().map(|by| by.as_str()) == Some("FAILBACK"))
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failback_client_then_failback_launch_and_reverse_replication() {
    let Some(env) = start().await else { return };
    let fleet = servers(&env.drs).await;
    assert_eq!(
        fleet["ec2-app-01"]
            .source_cloud_properties()
            .and_then(|properties| properties.origin_region()),
        Some(ORIGIN_REGION),
        "origin_region of the fleet entry is the server's sourceCloudProperties.originRegion"
    );
    let dc_ids: Vec<String> = ["dc-db-01", "dc-db-02"]
        .iter()
        .map(|host| fleet[*host].source_server_id().expect("id").to_owned())
        .collect();
    let ec2_id = fleet["ec2-app-01"]
        .source_server_id()
        .expect("id")
        .to_owned();
    let all_ids: Vec<String> = dc_ids.iter().cloned().chain([ec2_id.clone()]).collect();

    // Nothing recovered yet: nothing to bring home.
    let (ready, blocking, _) = env.failback_readiness().await;
    assert!(!ready);
    assert_eq!(
        blocking.keys().collect::<Vec<_>>(),
        ["plan"],
        "{blocking:?}"
    );
    assert!(
        blocking["plan"].contains("no live recovery"),
        "{blocking:?}"
    );

    let recovery = recover(&env.drs, &all_ids).await;
    assert!(
        recovery
            .participating_servers()
            .iter()
            .all(|server| server.launch_status().map(|s| s.as_str()) == Some("LAUNCHED")),
        "{recovery:?}"
    );
    let recovered = instances(&env.drs, &dc_ids).await;
    assert_eq!(recovered.len(), 2);
    for instance in &recovered {
        assert_eq!(failback_state(instance), "FAILBACK_NOT_STARTED");
    }
    let dc_instances: Vec<String> = recovered
        .iter()
        .map(|instance| instance.recovery_instance_id().expect("id").to_owned())
        .collect();

    // Before any Failback Client connected: refused, and no FAILBACK job exists.
    let refused = env
        .drs
        .start_failback_launch()
        .set_recovery_instance_ids(Some(dc_instances.clone()))
        .send()
        .await
        .expect_err("not ready for failback launch");
    assert_eq!(refused.code(), Some("ConflictException"));
    assert!(
        refused
            .message()
            .is_some_and(|message| message.contains("FAILBACK_NOT_STARTED")),
        "{refused:?}"
    );
    assert!(failback_jobs(&env.drs).await.is_empty());
    let (ready, blocking, waiting) = env.failback_readiness().await;
    assert!(!ready);
    let db = |host: &str| format!("waves[\"db\"].servers[\"{host}\"]");
    let app = "waves[\"app\"].servers[\"ec2-app-01\"]";
    // The data centre's servers wait for their Failback Clients; the plan goes home to two
    // places (a data centre and us-west-2), which one failback does not do.
    assert_eq!(blocking.len(), 3, "{blocking:?}");
    assert!(
        blocking["servers"].contains("mixes EC2 sources from us-west-2"),
        "{blocking:?}"
    );
    for host in ["dc-db-01", "dc-db-02"] {
        assert!(
            blocking[&db(host)].contains("Failback Client has not connected")
                && blocking[&db(host)].contains("FAILBACK_NOT_STARTED"),
            "{blocking:?}"
        );
    }
    // The EC2 server's reversed replication is what a failback starts and waits for.
    assert!(
        waiting[app].contains("no reversed replication to us-west-2 yet"),
        "{waiting:?}"
    );

    // The person boots the Failback Client on every machine.
    let output = env.drplan_local(&["failback-client", "--all"]).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let answer: Value = serde_json::from_slice(&output.stdout).expect("JSON on stdout");
    assert_eq!(
        answer["connected"].as_array().map(Vec::len),
        Some(3),
        "{answer}"
    );
    let started = Instant::now();
    loop {
        let states: Vec<String> = instances(&env.drs, &dc_ids)
            .await
            .iter()
            .map(|instance| failback_state(instance).to_owned())
            .collect();
        if states
            .iter()
            .all(|state| state == "FAILBACK_READY_FOR_LAUNCH")
        {
            break;
        }
        assert!(
            states.iter().all(
                |state| state == "FAILBACK_IN_PROGRESS" || state == "FAILBACK_READY_FOR_LAUNCH"
            ),
            "{states:?}"
        );
        assert!(started.elapsed() < LIMIT, "never ready: {states:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    for instance in instances(&env.drs, &dc_ids).await {
        assert!(
            instance
                .failback()
                .and_then(|failback| failback.failback_client_id())
                .is_some(),
            "a connected client has an ID"
        );
    }
    // The data centre's servers may go home now; the EC2 one waits for its reversed
    // replication.
    let (ready, blocking, waiting) = env.failback_readiness().await;
    assert!(!ready);
    assert_eq!(
        blocking.keys().collect::<Vec<_>>(),
        ["servers"],
        "{blocking:?}"
    );
    assert_eq!(waiting.keys().collect::<Vec<_>>(), [app], "{waiting:?}");

    let failback = env
        .drs
        .start_failback_launch()
        .set_recovery_instance_ids(Some(dc_instances.clone()))
        .send()
        .await
        .expect("StartFailbackLaunch")
        .job()
        .cloned()
        .expect("a job");
    assert_eq!(failback.r#type().map(|kind| kind.as_str()), Some("LAUNCH"));
    let failback = wait_for_job(&env.drs, failback.job_id()).await;
    let mut covered: Vec<String> = failback
        .participating_servers()
        .iter()
        .map(|server| {
            assert_eq!(server.launch_status().map(|s| s.as_str()), Some("LAUNCHED"));
            server.recovery_instance_id().expect("instance").to_owned()
        })
        .collect();
    covered.sort();
    let mut expected = dc_instances.clone();
    expected.sort();
    assert_eq!(covered, expected, "the FAILBACK job covers every instance");
    for instance in instances(&env.drs, &dc_ids).await {
        assert_eq!(failback_state(&instance), "FAILBACK_COMPLETED");
        assert_eq!(
            instance.failback().and_then(|f| f.failback_job_id()),
            Some(failback.job_id())
        );
    }
    let log = env
        .drs
        .describe_job_log_items()
        .job_id(failback.job_id())
        .send()
        .await
        .expect("DescribeJobLogItems");
    let launches = log
        .items()
        .iter()
        .filter(|item| item.event().map(|e| e.as_str()) == Some("LAUNCH_START"))
        .count();
    assert_eq!(launches, 2);

    // Every change reached the local cloud's EventBridge.
    let events = env.gateway_events().await;
    for instance_id in &dc_instances {
        let states: Vec<&str> = events
            .iter()
            .filter(|event| {
                event["source"] == "aws.drs"
                    && event["detail-type"] == "DRS Recovery Instance Failback State Change"
                    && event["resources"][0]
                        .as_str()
                        .is_some_and(|arn| arn.ends_with(&format!("/{instance_id}")))
            })
            .filter_map(|event| event["detail"]["state"].as_str())
            .collect();
        assert_eq!(
            states,
            [
                "FAILBACK_IN_PROGRESS",
                "FAILBACK_READY_FOR_LAUNCH",
                "FAILBACK_COMPLETED"
            ],
            "events of {instance_id}"
        );
    }

    // The EC2 source goes home by reversed replication into its origin Region.
    let ec2_instance = instances(&env.drs, std::slice::from_ref(&ec2_id)).await[0]
        .recovery_instance_id()
        .expect("id")
        .to_owned();
    let reversed_arn = env
        .drs
        .reverse_replication()
        .recovery_instance_id(&ec2_instance)
        .send()
        .await
        .expect("ReverseReplication")
        .reversed_direction_source_server_arn()
        .expect("an ARN")
        .to_owned();
    assert!(
        reversed_arn.starts_with(&format!("arn:aws:drs:{ORIGIN_REGION}:")),
        "{reversed_arn}"
    );
    let started = Instant::now();
    let reversed = loop {
        let there = servers(&env.origin).await;
        assert_eq!(
            there.len(),
            1,
            "only the reversed server is in {ORIGIN_REGION}"
        );
        let server = there["ec2-app-01"].clone();
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
            break server;
        }
        assert!(started.elapsed() < LIMIT, "never CONTINUOUS: {state:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let reversed_id = reversed.source_server_id().expect("id").to_owned();
    // Reversed replication is CONTINUOUS: the EC2 server no longer blocks, and the data
    // centre's servers, failed back above (FAILBACK_COMPLETED), are home: nothing blocks.
    let (ready, blocking, _) = env.failback_readiness().await;
    assert!(ready && blocking.is_empty(), "{blocking:?}");
    let home = recover(&env.origin, std::slice::from_ref(&reversed_id)).await;
    assert_eq!(
        home.arn()
            .map(|arn| arn.starts_with(&format!("arn:aws:drs:{ORIGIN_REGION}:"))),
        Some(true)
    );
    assert_eq!(
        home.participating_servers()[0]
            .launch_status()
            .map(|s| s.as_str()),
        Some("LAUNCHED")
    );
    assert_eq!(instances(&env.origin, &[reversed_id]).await.len(), 1);
    assert!(
        failback_jobs(&env.origin).await.is_empty(),
        "each Region sees its own jobs"
    );

    env.cloud.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_injected_failback_launch_failure_shows_in_the_job_and_the_instance() {
    let Some(env) = start().await else { return };
    let fleet = servers(&env.drs).await;
    let id = fleet["dc-db-01"].source_server_id().expect("id").to_owned();
    recover(&env.drs, std::slice::from_ref(&id)).await;
    let instance_id = instances(&env.drs, std::slice::from_ref(&id)).await[0]
        .recovery_instance_id()
        .expect("id")
        .to_owned();

    // A client booted for this one machine, named by hostname.
    let output = env.drplan_local(&["failback-client", "dc-db-01"]).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let output = env
        .drplan_local(&[
            "fault",
            "fail-failback-launch",
            "dc-db-01",
            "--raw-error",
            "conversion lost the client",
        ])
        .await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let started = Instant::now();
    while failback_state(&instances(&env.drs, std::slice::from_ref(&id)).await[0])
        != "FAILBACK_READY_FOR_LAUNCH"
    {
        assert!(started.elapsed() < LIMIT, "never ready");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    let job = env
        .drs
        .start_failback_launch()
        .recovery_instance_ids(&instance_id)
        .send()
        .await
        .expect("StartFailbackLaunch")
        .job()
        .cloned()
        .expect("a job");
    let job = wait_for_job(&env.drs, job.job_id()).await;
    assert_eq!(
        job.participating_servers()[0]
            .launch_status()
            .map(|s| s.as_str()),
        Some("FAILED")
    );
    let instance = instances(&env.drs, std::slice::from_ref(&id)).await[0].clone();
    assert_eq!(failback_state(&instance), "FAILBACK_ERROR");
    let log = env
        .drs
        .describe_job_log_items()
        .job_id(job.job_id())
        .send()
        .await
        .expect("DescribeJobLogItems");
    let failed = log
        .items()
        .iter()
        .find(|item| item.event().map(|e| e.as_str()) == Some("LAUNCH_FAILED"))
        .expect("LAUNCH_FAILED in the job log");
    assert_eq!(
        failed.event_data().and_then(|data| data.raw_error()),
        Some("conversion lost the client")
    );
    let events = env.gateway_events().await;
    assert!(events.iter().any(|event| {
        event["detail-type"] == "DRS Recovery Instance Failback State Change"
            && event["detail"]["state"] == "FAILBACK_ERROR"
    }));

    // StopFailback starts over: the person reboots the client after fixing the cause.
    env.drs
        .stop_failback()
        .recovery_instance_id(&instance_id)
        .send()
        .await
        .expect("StopFailback");
    let instance = instances(&env.drs, std::slice::from_ref(&id)).await[0].clone();
    assert_eq!(failback_state(&instance), "FAILBACK_NOT_STARTED");
    assert!(
        instance
            .failback()
            .and_then(|f| f.failback_client_id())
            .is_none()
    );

    env.cloud.shutdown().await;
}
