//! DRS launches every drill and recovery instance from the source server's EC2 launch
//! template (GetLaunchConfiguration's `ec2LaunchTemplateID`), default version: with moto the
//! simulator creates that template when a server is seeded and reads its default version at
//! every launch. Checked through the DRS wire and moto's EC2 API.
//!
//! Needs moto (see `drplan_drs_sim::moto`): set DRPLAN_MOTO_SERVER, and DRPLAN_REQUIRE_MOTO to
//! fail instead of skipping without it.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use aws_sdk_drs::types::{JobLog, JobLogEvent, LaunchStatus};
use common::moto::*;
use common::*;
use drplan_drs_sim::moto::start_moto;
use drplan_drs_sim::{SimConfig, SimHandle};
use serde_json::{Value, json};

struct Network {
    recovery_subnet: String,
    drill_subnet: String,
    recovery_sg: String,
    drill_sg: String,
}

async fn create(moto: &MotoServer, params: &[(&str, &str)], id_tag: &str) -> String {
    first(&ec2(moto, params).await, id_tag)
}

/// A VPC with a recovery subnet that maps public IPs, a drill subnet that does not, and a
/// security group for each.
async fn create_network(moto: &MotoServer) -> Network {
    let vpc = create(
        moto,
        &[("Action", "CreateVpc"), ("CidrBlock", "10.30.0.0/16")],
        "vpcId",
    )
    .await;
    let subnet = |cidr: &'static str| {
        let vpc = vpc.clone();
        async move {
            create(
                moto,
                &[
                    ("Action", "CreateSubnet"),
                    ("VpcId", &vpc),
                    ("CidrBlock", cidr),
                ],
                "subnetId",
            )
            .await
        }
    };
    let recovery_subnet = subnet("10.30.1.0/24").await;
    let drill_subnet = subnet("10.30.2.0/24").await;
    ec2(
        moto,
        &[
            ("Action", "ModifySubnetAttribute"),
            ("SubnetId", &recovery_subnet),
            ("MapPublicIpOnLaunch.Value", "true"),
        ],
    )
    .await;
    let group = |name: &'static str| {
        let vpc = vpc.clone();
        async move {
            create(
                moto,
                &[
                    ("Action", "CreateSecurityGroup"),
                    ("GroupName", name),
                    ("GroupDescription", name),
                    ("VpcId", &vpc),
                ],
                "groupId",
            )
            .await
        }
    };
    Network {
        recovery_subnet,
        drill_subnet,
        recovery_sg: group("recovery").await,
        drill_sg: group("drill").await,
    }
}

async fn start_with_ec2(moto: &MotoServer) -> SimHandle {
    start(SimConfig {
        time_scale: FAST,
        ec2_endpoint: Some(moto.endpoint.clone()),
        ..SimConfig::default()
    })
    .await
}

async fn seed_server(sim: &SimHandle, hostname: &str, subnet: &str, groups: &[&str]) -> Value {
    let answer = control_post(
        sim,
        "/_drplan/source-servers",
        json!([{"hostname": hostname, "launch_subnet_id": subnet,
                "launch_security_group_ids": groups}]),
    )
    .await;
    answer["servers"][0].clone()
}

/// Launches one server (a drill or a recovery) and waits for the job; the launch status
/// and, when it launched, the EC2 instance.
async fn launch(
    client: &aws_sdk_drs::Client,
    server_id: &str,
    is_drill: bool,
) -> (LaunchStatus, Option<String>, String) {
    let started = client
        .start_recovery()
        .set_source_servers(Some(recovery_request(&[server_id.to_owned()])))
        .is_drill(is_drill)
        .send()
        .await
        .expect("StartRecovery");
    let job = wait_for_job(
        client,
        started.job().expect("job").job_id(),
        Duration::from_secs(60),
    )
    .await;
    let participant = &job.participating_servers()[0];
    let status = participant.launch_status().cloned().expect("a status");
    let instance = participant.recovery_instance_id().map(str::to_owned);
    (status, instance, job.job_id().to_owned())
}

/// The default version of a template, from DescribeLaunchTemplateVersions.
async fn default_version(moto: &MotoServer, template_id: &str) -> String {
    ec2(
        moto,
        &[
            ("Action", "DescribeLaunchTemplateVersions"),
            ("LaunchTemplateId", template_id),
            ("LaunchTemplateVersion.1", "$Default"),
        ],
    )
    .await
}

async fn set_default(moto: &MotoServer, template_id: &str, version: &str) {
    ec2(
        moto,
        &[
            ("Action", "ModifyLaunchTemplate"),
            ("LaunchTemplateId", template_id),
            ("SetDefaultVersion", version),
        ],
    )
    .await;
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|id| (*id).to_owned()).collect()
}

#[tokio::test]
async fn launches_follow_the_launch_templates_default_version() {
    let Some(moto) = start_moto().await else {
        return;
    };
    let network = create_network(&moto).await;
    let sim = start_with_ec2(&moto).await;
    let client = drs_client(&sim);
    let seeded = seed_server(
        &sim,
        "db-001",
        &network.recovery_subnet,
        &[&network.recovery_sg],
    )
    .await;
    let server_id = seeded["source_server_id"].as_str().expect("id").to_owned();

    // (a) GetLaunchConfiguration names a real template whose default version holds the
    // recovery subnet and security group.
    let template_id = client
        .get_launch_configuration()
        .source_server_id(&server_id)
        .send()
        .await
        .expect("GetLaunchConfiguration")
        .ec2_launch_template_id()
        .expect("ec2LaunchTemplateID")
        .to_owned();
    assert_eq!(seeded["launch_template_id"], template_id.as_str());
    let templates = ec2(
        &moto,
        &[
            ("Action", "DescribeLaunchTemplates"),
            ("LaunchTemplateId.1", &template_id),
        ],
    )
    .await;
    assert_eq!(
        first(&templates, "launchTemplateName"),
        format!("drs-{server_id}")
    );
    assert_eq!(first(&templates, "defaultVersionNumber"), "1");
    let version = default_version(&moto, &template_id).await;
    assert_eq!(first(&version, "subnetId"), network.recovery_subnet);
    assert_eq!(all(&version, "groupId"), vec![network.recovery_sg.clone()]);
    assert_eq!(first(&version, "instanceType"), "t3.medium");

    // Seeding the same server again makes no second template and no new version.
    let again = seed_server(
        &sim,
        "db-001",
        &network.recovery_subnet,
        &[&network.recovery_sg],
    )
    .await;
    assert_eq!(again["created"], false);
    assert_eq!(again["launch_template_id"], template_id.as_str());
    let every_template = ec2(&moto, &[("Action", "DescribeLaunchTemplates")]).await;
    assert_eq!(
        all(&every_template, "launchTemplateId"),
        vec![template_id.clone()]
    );
    assert_eq!(first(&every_template, "latestVersionNumber"), "1");

    // (b) A recovery lands in the template's subnet with its security group, and gets a
    // public IP because the subnet maps them.
    let (status, instance, _) = launch(&client, &server_id, false).await;
    assert_eq!(status, LaunchStatus::Launched);
    let recovery_instance = instance.expect("an instance");
    let launched = describe_instance(&moto, &recovery_instance).await;
    assert_eq!(launched.subnet_id, network.recovery_subnet);
    assert_eq!(launched.security_group_ids, set(&[&network.recovery_sg]));
    assert!(launched.public_ip.is_some(), "{launched:?}");
    assert_eq!(
        launched.tags.get("aws:ec2launchtemplate:id"),
        Some(&template_id)
    );
    assert_eq!(
        launched
            .tags
            .get("aws:ec2launchtemplate:version")
            .map(String::as_str),
        Some("1")
    );
    let state = control_get(&sim, "/_drplan/state").await;
    assert_eq!(
        state["servers"][0]["launch_template_id"],
        template_id.as_str()
    );
    let shown = &state["recovery_instances"][0];
    assert_eq!(shown["subnet_id"], network.recovery_subnet.as_str());
    assert_eq!(shown["security_group_ids"], json!([network.recovery_sg]));
    assert!(shown["public_ip"].is_string(), "{shown}");

    // (c) A new default version with the drill subnet and group: the drill lands there.
    let created = ec2(
        &moto,
        &[
            ("Action", "CreateLaunchTemplateVersion"),
            ("LaunchTemplateId", &template_id),
            ("LaunchTemplateData.NetworkInterface.1.DeviceIndex", "0"),
            (
                "LaunchTemplateData.NetworkInterface.1.SubnetId",
                &network.drill_subnet,
            ),
            (
                "LaunchTemplateData.NetworkInterface.1.SecurityGroupId.1",
                &network.drill_sg,
            ),
        ],
    )
    .await;
    assert_eq!(first(&created, "versionNumber"), "2");
    set_default(&moto, &template_id, "2").await;
    let (status, instance, _) = launch(&client, &server_id, true).await;
    assert_eq!(status, LaunchStatus::Launched);
    let drill_instance = instance.expect("an instance");
    let launched = describe_instance(&moto, &drill_instance).await;
    assert_eq!(launched.subnet_id, network.drill_subnet);
    assert_eq!(launched.security_group_ids, set(&[&network.drill_sg]));
    assert_eq!(
        launched.public_ip, None,
        "the drill subnet maps no public IPs"
    );
    assert_eq!(
        launched
            .tags
            .get("aws:ec2launchtemplate:version")
            .map(String::as_str),
        Some("2")
    );
    assert_eq!(
        describe_instance(&moto, &recovery_instance).await.state,
        "terminated",
        "the drill replaced the recovery instance"
    );

    // The previous default restored: the next launch is back in the recovery subnet.
    set_default(&moto, &template_id, "1").await;
    let (status, instance, _) = launch(&client, &server_id, true).await;
    assert_eq!(status, LaunchStatus::Launched);
    let launched = describe_instance(&moto, &instance.expect("an instance")).await;
    assert_eq!(launched.subnet_id, network.recovery_subnet);
    assert_eq!(launched.security_group_ids, set(&[&network.recovery_sg]));

    // (d) A deleted template fails the launch, naming the template; nothing is launched.
    ec2(
        &moto,
        &[
            ("Action", "DeleteLaunchTemplate"),
            ("LaunchTemplateId", &template_id),
        ],
    )
    .await;
    let (status, instance, job_id) = launch(&client, &server_id, false).await;
    assert_eq!(status, LaunchStatus::Failed);
    assert_eq!(instance, None);
    let log = client
        .describe_job_log_items()
        .job_id(&job_id)
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
    assert!(raw_error.contains(&template_id), "{raw_error}");
    assert!(
        raw_error.contains("InvalidLaunchTemplateId.NotFound"),
        "{raw_error}"
    );
    let state = control_get(&sim, "/_drplan/state").await;
    assert_eq!(
        state["recovery_instances"].as_array().map(Vec::len),
        Some(1),
        "the last drill instance is still the server's: {state}"
    );
}

#[tokio::test]
async fn reseeding_new_launch_settings_makes_a_new_default_version() {
    let Some(moto) = start_moto().await else {
        return;
    };
    let network = create_network(&moto).await;
    let sim = start_with_ec2(&moto).await;
    let client = drs_client(&sim);
    let seeded = seed_server(
        &sim,
        "web-001",
        &network.recovery_subnet,
        &[&network.recovery_sg],
    )
    .await;
    let server_id = seeded["source_server_id"].as_str().expect("id").to_owned();
    let template_id = seeded["launch_template_id"]
        .as_str()
        .expect("template")
        .to_owned();

    // Other security groups: the same template, a new version that is the default.
    let reseeded = seed_server(
        &sim,
        "web-001",
        &network.recovery_subnet,
        &[&network.drill_sg, &network.recovery_sg],
    )
    .await;
    assert_eq!(reseeded["launch_template_id"], template_id.as_str());
    let version = default_version(&moto, &template_id).await;
    assert_eq!(first(&version, "versionNumber"), "2");
    assert_eq!(
        all(&version, "groupId"),
        vec![network.drill_sg.clone(), network.recovery_sg.clone()]
    );
    let (status, instance, _) = launch(&client, &server_id, false).await;
    assert_eq!(status, LaunchStatus::Launched);
    let launched = describe_instance(&moto, &instance.expect("an instance")).await;
    assert_eq!(launched.subnet_id, network.recovery_subnet);
    assert_eq!(
        launched.security_group_ids,
        set(&[&network.drill_sg, &network.recovery_sg])
    );

    // A version with only top-level security groups and no interface: EC2's default
    // subnet, those groups.
    ec2(
        &moto,
        &[
            ("Action", "CreateLaunchTemplateVersion"),
            ("LaunchTemplateId", &template_id),
            ("LaunchTemplateData.SecurityGroupId.1", &network.drill_sg),
        ],
    )
    .await;
    set_default(&moto, &template_id, "3").await;
    let (status, instance, _) = launch(&client, &server_id, true).await;
    assert_eq!(status, LaunchStatus::Launched);
    let launched = describe_instance(&moto, &instance.expect("an instance")).await;
    assert_ne!(launched.subnet_id, network.recovery_subnet);
    assert_ne!(launched.subnet_id, network.drill_subnet);
    assert_eq!(launched.security_group_ids, set(&[&network.drill_sg]));
}
