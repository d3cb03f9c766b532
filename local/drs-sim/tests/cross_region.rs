//! Cross-Region failback of an EC2 source against moto, through `aws-sdk-drs` and
//! `aws-sdk-ec2` as drplan calls them: recovery in us-east-1, ReverseReplication to the
//! origin Region us-west-2 (a launch template of the reversed server's own in moto's
//! us-west-2 EC2), a recovery there that launches in moto's us-west-2 backend, the
//! us-east-1 instance terminated in us-east-1, and ReverseReplication of the failed-back
//! instance protecting the original server again.
//!
//! Needs moto (see `drplan_drs_sim::moto`): set DRPLAN_MOTO_SERVER, and DRPLAN_REQUIRE_MOTO to
//! fail instead of skipping without it.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use aws_sdk_drs::types::{JobLog, JobLogEvent, LaunchStatus, RecoveryInstance};
use aws_sdk_ec2::types::Filter;
use common::moto::*;
use common::*;
use drplan_drs_sim::moto::start_moto;
use drplan_drs_sim::{SimConfig, SimHandle};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const JOB_LIMIT: Duration = Duration::from_secs(60);
const HOME: &str = "us-east-1";
const ORIGIN: &str = "us-west-2";
/// An unprivileged port every recovery instance serves for health probes.
const PROBE_PORT: u16 = 18_431;

async fn start_with_ec2(moto: &MotoServer, probe_ports: Vec<u16>) -> SimHandle {
    start(SimConfig {
        time_scale: FAST,
        ec2_endpoint: Some(moto.endpoint.clone()),
        probe_ports,
        ..SimConfig::default()
    })
    .await
}

/// Seeds one EC2 source from us-west-2 (launch template in us-east-1's EC2, no subnet:
/// moto's default subnet); its ID and ARN.
async fn seed_ec2_source(sim: &SimHandle) -> (String, String) {
    let created = control_post(
        sim,
        "/_drplan/source-servers",
        json!({"servers": [{"hostname": "ec2-app-01", "origin_region": ORIGIN,
                            "instance_type": "t3.small", "tags": {"dr:plan": "shop"}}]}),
    )
    .await;
    let server = &created["servers"][0];
    (
        server["source_server_id"].as_str().expect("id").to_owned(),
        server["arn"].as_str().expect("arn").to_owned(),
    )
}

/// StartRecovery (not a drill) of one server, waited for; the job ID.
async fn recover_one(client: &aws_sdk_drs::Client, server_id: &str) -> String {
    let job_id = start_recovery_job(client, &[server_id.to_owned()], false).await;
    wait_for_job(client, &job_id, JOB_LIMIT).await;
    job_id
}

/// The server's recovery instance in the client's Region.
async fn instance_of(client: &aws_sdk_drs::Client, server_id: &str) -> RecoveryInstance {
    client
        .describe_recovery_instances()
        .filters(
            aws_sdk_drs::types::DescribeRecoveryInstancesRequestFilters::builder()
                .source_server_ids(server_id)
                .build(),
        )
        .send()
        .await
        .expect("DescribeRecoveryInstances")
        .items()
        .first()
        .cloned()
        .expect("a recovery instance")
}

fn private_ip(instance: &RecoveryInstance) -> Ipv4Addr {
    instance
        .recovery_instance_properties()
        .and_then(|properties| properties.network_interfaces().first())
        .and_then(|nic| nic.ips().first())
        .expect("a private IP")
        .parse()
        .expect("IPv4")
}

fn state_and_direction(server: &aws_sdk_drs::types::SourceServer) -> (String, String) {
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

async fn server_in(
    client: &aws_sdk_drs::Client,
    server_id: &str,
) -> aws_sdk_drs::types::SourceServer {
    client
        .describe_source_servers()
        .filters(
            aws_sdk_drs::types::DescribeSourceServersRequestFilters::builder()
                .source_server_ids(server_id)
                .build(),
        )
        .send()
        .await
        .expect("DescribeSourceServers")
        .items()
        .first()
        .cloned()
        .expect("the server is in this Region")
}

/// Polls until the server is CONTINUOUS; the states seen before must be `syncing`.
async fn wait_continuous(client: &aws_sdk_drs::Client, server_id: &str, syncing: &str) {
    let deadline = Instant::now() + JOB_LIMIT;
    loop {
        let (state, _) = state_and_direction(&server_in(client, server_id).await);
        if state == "CONTINUOUS" {
            return;
        }
        assert_eq!(state, syncing, "{server_id} before CONTINUOUS");
        assert!(Instant::now() < deadline, "{server_id} never CONTINUOUS");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// EC2 state name of `instance_id` in one Region's EC2, None if that EC2 does not know it
/// (a filter, so an unknown ID is no error).
async fn ec2_state(ec2: &aws_sdk_ec2::Client, instance_id: &str) -> Option<String> {
    let reply = ec2
        .describe_instances()
        .filters(
            Filter::builder()
                .name("instance-id")
                .values(instance_id)
                .build(),
        )
        .send()
        .await
        .expect("DescribeInstances");
    reply
        .reservations()
        .iter()
        .flat_map(|reservation| reservation.instances())
        .find(|instance| instance.instance_id() == Some(instance_id))
        .and_then(|instance| instance.state())
        .and_then(|state| state.name())
        .map(|name| name.as_str().to_owned())
}

/// The HTTP status a probe of the loopback stand-in of `private_ip` gets, or the error.
async fn probe(private_ip: Ipv4Addr) -> Result<u16, std::io::ErrorKind> {
    let [_, b, c, d] = private_ip.octets();
    let address = Ipv4Addr::new(127, b, c, d);
    let mut stream = tokio::net::TcpStream::connect(SocketAddr::from((address, PROBE_PORT)))
        .await
        .map_err(|error| error.kind())?;
    stream
        .write_all(b"GET /health HTTP/1.1\r\nhost: probe\r\nconnection: close\r\n\r\n")
        .await
        .map_err(|error| error.kind())?;
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .await
        .map_err(|error| error.kind())?;
    Ok(answer
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0))
}

fn cidr_contains(cidr: &str, ip: Ipv4Addr) -> bool {
    let (network, prefix) = cidr.split_once('/').expect("a CIDR");
    let network: Ipv4Addr = network.parse().expect("IPv4");
    let mask = u32::MAX << (32 - prefix.parse::<u32>().expect("prefix"));
    u32::from(network) & mask == u32::from(ip) & mask
}

fn launch_results<'a>(events: &'a Value, server_arn: &str) -> Vec<&'a Value> {
    events["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|emitted| &emitted["event"])
        .filter(|event| {
            event["detail-type"] == "DRS Source Server Launch Result"
                && event["resources"][0] == server_arn
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ec2_source_fails_back_across_regions_and_is_protected_again() {
    let Some(moto) = start_moto().await else {
        return;
    };
    let sim = start_with_ec2(&moto, vec![PROBE_PORT]).await;
    let (original_id, original_arn) = seed_ec2_source(&sim).await;
    let east = drs_client(&sim);
    let west = drs_client_in(&sim, ORIGIN);
    let ec2_east = ec2_client(&moto, HOME);
    let ec2_west = ec2_client(&moto, ORIGIN);

    // Recovery in the recovery Region: moto's us-east-1 EC2.
    recover_one(&east, &original_id).await;
    let recovered = instance_of(&east, &original_id).await;
    let recovered_id = recovered.ec2_instance_id().expect("EC2 ID").to_owned();
    let recovered_ip = private_ip(&recovered);
    assert_eq!(
        ec2_state(&ec2_east, &recovered_id).await.as_deref(),
        Some("running")
    );
    assert_eq!(ec2_state(&ec2_west, &recovered_id).await, None);

    // Reversed replication: a server in us-west-2 with a launch template in us-west-2.
    let reversed_arn = east
        .reverse_replication()
        .recovery_instance_id(&recovered_id)
        .send()
        .await
        .expect("ReverseReplication")
        .reversed_direction_source_server_arn()
        .expect("an ARN")
        .to_owned();
    assert!(
        reversed_arn.starts_with("arn:aws:drs:us-west-2:"),
        "{reversed_arn}"
    );
    let reversed_id = reversed_arn.rsplit('/').next().expect("ID").to_owned();
    wait_continuous(&west, &reversed_id, "INITIAL_SYNC").await;
    assert_eq!(
        state_and_direction(&server_in(&west, &reversed_id).await).1,
        "FAILBACK"
    );
    let template_of = |client: aws_sdk_drs::Client, id: String| async move {
        client
            .get_launch_configuration()
            .source_server_id(id)
            .send()
            .await
            .expect("GetLaunchConfiguration")
            .ec2_launch_template_id()
            .expect("a launch template")
            .to_owned()
    };
    let west_template = template_of(west.clone(), reversed_id.clone()).await;
    let east_template = template_of(east.clone(), original_id.clone()).await;
    assert_ne!(west_template, east_template, "a template of its own");
    let templates = ec2_west
        .describe_launch_templates()
        .launch_template_ids(&west_template)
        .send()
        .await
        .expect("the template is in us-west-2's EC2");
    assert_eq!(
        templates.launch_templates()[0].launch_template_name(),
        Some(format!("drs-{reversed_id}").as_str())
    );
    let in_east = ec2_east
        .describe_launch_templates()
        .launch_template_ids(&west_template)
        .send()
        .await;
    assert!(
        in_east.map_or(true, |reply| reply.launch_templates().is_empty()),
        "us-east-1's EC2 does not have it"
    );
    let version = ec2_west
        .describe_launch_template_versions()
        .launch_template_id(&west_template)
        .versions("$Default")
        .send()
        .await
        .expect("its default version");
    let data = version.launch_template_versions()[0]
        .launch_template_data()
        .expect("data");
    assert_eq!(
        data.instance_type().map(|t| t.as_str()),
        Some("t3.small"),
        "the original's instance type"
    );
    let subnet_id = data.network_interfaces()[0]
        .subnet_id()
        .expect("a subnet")
        .to_owned();
    let subnets = ec2_west
        .describe_subnets()
        .subnet_ids(&subnet_id)
        .send()
        .await
        .expect("the subnet is in us-west-2");
    let subnet = &subnets.subnets()[0];
    assert_eq!(subnet.default_for_az(), Some(true));
    assert!(
        subnet
            .availability_zone()
            .is_some_and(|zone| zone.starts_with(ORIGIN))
    );
    // moto's default VPCs overlap: the subnet avoids the us-east-1 instance's address, so
    // the two instances have different stand-ins.
    let cidr = subnet.cidr_block().expect("CIDR");
    assert!(
        !cidr_contains(cidr, recovered_ip),
        "{cidr} holds {recovered_ip}"
    );

    // Recovery in the origin Region launches in moto's us-west-2 EC2.
    let job_id = recover_one(&west, &reversed_id).await;
    let in_east_jobs = east
        .describe_jobs()
        .filters(
            aws_sdk_drs::types::DescribeJobsRequestFilters::builder()
                .job_ids(&job_id)
                .build(),
        )
        .send()
        .await
        .expect("DescribeJobs");
    assert!(in_east_jobs.items().is_empty(), "the job is us-west-2's");
    let job = wait_for_job(&west, &job_id, JOB_LIMIT).await;
    assert!(
        job.arn()
            .is_some_and(|arn| arn.starts_with("arn:aws:drs:us-west-2:"))
    );
    assert_eq!(
        job.participating_servers()[0].launch_status(),
        Some(&LaunchStatus::Launched)
    );
    let failed_back = instance_of(&west, &reversed_id).await;
    let failed_back_id = failed_back.ec2_instance_id().expect("EC2 ID").to_owned();
    assert!(
        failed_back
            .arn()
            .is_some_and(|arn| arn.starts_with("arn:aws:drs:us-west-2:"))
    );
    let log = west
        .describe_job_log_items()
        .job_id(&job_id)
        .send()
        .await
        .expect("DescribeJobLogItems");
    let launch_start = log
        .items()
        .iter()
        .find(|item| item.event() == Some(&JobLogEvent::LaunchStart))
        .and_then(JobLog::event_data)
        .and_then(|data| data.target_instance_id());
    assert_eq!(launch_start, Some(failed_back_id.as_str()));
    assert_eq!(
        ec2_state(&ec2_west, &failed_back_id).await.as_deref(),
        Some("running")
    );
    assert_eq!(
        ec2_state(&ec2_east, &failed_back_id).await,
        None,
        "not in us-east-1"
    );
    let described = ec2_west
        .describe_instances()
        .instance_ids(&failed_back_id)
        .send()
        .await
        .expect("DescribeInstances in us-west-2");
    let ec2_instance = &described.reservations()[0].instances()[0];
    assert_eq!(ec2_instance.subnet_id(), Some(subnet_id.as_str()));
    assert!(ec2_instance.tags().iter().any(|tag| {
        tag.key() == Some("AWSElasticDisasterRecoverySourceServerID")
            && tag.value() == Some(reversed_id.as_str())
    }));
    let status = ec2_west
        .describe_instance_status()
        .instance_ids(&failed_back_id)
        .send()
        .await
        .expect("DescribeInstanceStatus in us-west-2");
    assert_eq!(status.instance_statuses().len(), 1);
    let events = control_get(&sim, "/_drplan/events").await;
    let results = launch_results(&events, &reversed_arn);
    assert_eq!(results.len(), 1);
    assert_eq!(results[0]["region"], ORIGIN);
    assert_eq!(results[0]["detail"]["state"], "SUCCEEDED");

    // Both instances serve their own loopback stand-in.
    let failed_back_ip = private_ip(&failed_back);
    assert_ne!(failed_back_ip, recovered_ip);
    assert_eq!(probe(failed_back_ip).await, Ok(200));
    assert_eq!(probe(recovered_ip).await, Ok(200));
    // Reading EC2 states reads each instance from its own Region's EC2.
    let refreshed = control_post(&sim, "/_drplan/refresh-instances", json!({})).await;
    let rows = refreshed["refreshed"].as_array().expect("rows");
    assert!(
        rows.iter().any(|row| {
            row["ec2_instance_id"] == failed_back_id.as_str() && row["ec2_state"] == "RUNNING"
        }),
        "{refreshed}"
    );

    // The recovery Region's instance is terminated in us-east-1's EC2.
    let terminate = east
        .terminate_recovery_instances()
        .recovery_instance_ids(recovered.recovery_instance_id().expect("ID"))
        .send()
        .await
        .expect("TerminateRecoveryInstances")
        .job()
        .map(|job| job.job_id().to_owned())
        .expect("a job");
    let terminated = wait_for_job(&east, &terminate, JOB_LIMIT).await;
    assert_eq!(
        terminated.participating_servers()[0].launch_status(),
        Some(&LaunchStatus::Terminated)
    );
    assert_eq!(
        ec2_state(&ec2_east, &recovered_id).await.as_deref(),
        Some("terminated")
    );
    assert_eq!(
        ec2_state(&ec2_west, &failed_back_id).await.as_deref(),
        Some("running")
    );
    assert!(probe(recovered_ip).await.is_err(), "its stand-in closed");
    assert_eq!(probe(failed_back_ip).await, Ok(200));
    assert_eq!(
        state_and_direction(&server_in(&west, &reversed_id).await).0,
        "DISCONNECTED",
        "the reversed server's source instance is gone"
    );

    // Protecting the failed-back instance: the original replicates it.
    let protected = west
        .reverse_replication()
        .recovery_instance_id(&failed_back_id)
        .send()
        .await
        .expect("ReverseReplication in us-west-2");
    assert_eq!(
        protected.reversed_direction_source_server_arn(),
        Some(original_arn.as_str())
    );
    wait_continuous(&east, &original_id, "RESCAN").await;
    assert_eq!(
        state_and_direction(&server_in(&east, &original_id).await),
        ("CONTINUOUS".to_owned(), "FAILOVER".to_owned())
    );
    let state = control_get(&sim, "/_drplan/state").await;
    assert_eq!(state["outbound_errors"], json!([]), "{state}");
    let original = state["servers"]
        .as_array()
        .expect("servers")
        .iter()
        .find(|server| server["source_server_id"] == original_id.as_str())
        .expect("the original");
    assert_eq!(original["replicates_from"], failed_back_id.as_str());
}

/// When the origin Region's EC2 has a subnet holding the EC2 source's own address (its
/// subnet, as the fleet made it), the reversed server's template puts the failback there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reversed_server_launches_in_the_sources_own_subnet_when_there_is_one() {
    let Some(moto) = start_moto().await else {
        return;
    };
    let ec2_west = ec2_client(&moto, ORIGIN);
    let vpc = ec2_west
        .create_vpc()
        .cidr_block("10.77.0.0/16")
        .send()
        .await
        .expect("CreateVpc in us-west-2");
    let vpc_id = vpc.vpc().and_then(|vpc| vpc.vpc_id()).expect("a VPC");
    let created = ec2_west
        .create_subnet()
        .vpc_id(vpc_id)
        .cidr_block("10.77.3.0/24")
        .availability_zone("us-west-2c")
        .send()
        .await
        .expect("CreateSubnet in us-west-2");
    let source_subnet = created
        .subnet()
        .and_then(|subnet| subnet.subnet_id())
        .expect("a subnet")
        .to_owned();
    let sim = start_with_ec2(&moto, Vec::new()).await;
    let seeded = control_post(
        &sim,
        "/_drplan/source-servers",
        json!([{"hostname": "ec2-db-01", "origin_region": ORIGIN, "source_ip": "10.77.3.20"}]),
    )
    .await;
    let original_id = seeded["servers"][0]["source_server_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let east = drs_client(&sim);
    let west = drs_client_in(&sim, ORIGIN);
    recover_one(&east, &original_id).await;
    let recovered = instance_of(&east, &original_id).await;
    let reversed_arn = east
        .reverse_replication()
        .recovery_instance_id(recovered.recovery_instance_id().expect("ID"))
        .send()
        .await
        .expect("ReverseReplication")
        .reversed_direction_source_server_arn()
        .expect("an ARN")
        .to_owned();
    let reversed_id = reversed_arn.rsplit('/').next().expect("ID").to_owned();
    wait_continuous(&west, &reversed_id, "INITIAL_SYNC").await;
    recover_one(&west, &reversed_id).await;
    let failed_back = instance_of(&west, &reversed_id).await;
    let ip = private_ip(&failed_back);
    assert!(cidr_contains("10.77.3.0/24", ip), "{ip}");
    let described = ec2_west
        .describe_instances()
        .instance_ids(failed_back.ec2_instance_id().expect("EC2 ID"))
        .send()
        .await
        .expect("DescribeInstances in us-west-2");
    assert_eq!(
        described.reservations()[0].instances()[0].subnet_id(),
        Some(source_subnet.as_str())
    );
}

/// moto gone before ReverseReplication: the reversed server gets no template, replicates
/// anyway, and its launch fails with a job log that says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reversed_server_without_a_template_fails_its_launch_with_the_reason() {
    let Some(moto) = start_moto().await else {
        return;
    };
    let sim = start_with_ec2(&moto, Vec::new()).await;
    let (original_id, _) = seed_ec2_source(&sim).await;
    let east = drs_client(&sim);
    let west = drs_client_in(&sim, ORIGIN);
    recover_one(&east, &original_id).await;
    let recovered = instance_of(&east, &original_id).await;
    drop(moto);

    let reversed_arn = east
        .reverse_replication()
        .recovery_instance_id(recovered.recovery_instance_id().expect("ID"))
        .send()
        .await
        .expect("ReverseReplication")
        .reversed_direction_source_server_arn()
        .expect("an ARN")
        .to_owned();
    let reversed_id = reversed_arn.rsplit('/').next().expect("ID").to_owned();
    wait_continuous(&west, &reversed_id, "INITIAL_SYNC").await;
    let job_id = recover_one(&west, &reversed_id).await;
    let job = wait_for_job(&west, &job_id, JOB_LIMIT).await;
    assert_eq!(
        job.participating_servers()[0].launch_status(),
        Some(&LaunchStatus::Failed)
    );
    let log = west
        .describe_job_log_items()
        .job_id(&job_id)
        .send()
        .await
        .expect("DescribeJobLogItems");
    let raw_error = log
        .items()
        .iter()
        .find(|item| item.event() == Some(&JobLogEvent::LaunchFailed))
        .and_then(JobLog::event_data)
        .and_then(|data| data.raw_error())
        .expect("LAUNCH_FAILED with rawError")
        .to_owned();
    assert!(
        raw_error.contains(&format!(
            "source server {reversed_id} has no launch template in us-west-2"
        )),
        "{raw_error}"
    );
    let events = control_get(&sim, "/_drplan/events").await;
    let results = launch_results(&events, &reversed_arn);
    assert_eq!(results.len(), 1);
    assert_eq!(results[0]["detail"]["state"], "FAILED");
    assert_eq!(results[0]["region"], ORIGIN);
    let state = control_get(&sim, "/_drplan/state").await;
    let errors = state["outbound_errors"].to_string();
    assert!(
        errors.contains(&format!(
            "launch template of reversed source server {reversed_id} in us-west-2"
        )),
        "{errors}"
    );
}
