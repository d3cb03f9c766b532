//! The local cloud does not promise capacity it does not have: `drplan local seed` refuses
//! a network whose subnets cannot take one instance per source server that launches into
//! them (with the arithmetic, before anything is created), and sizes its default subnets
//! for the fleet it seeds.

use crate::common::{Cloud, cloud_with, fleet_file};
use std::path::PathBuf;

/// `count` servers named `prefix-NNN` in the network `network` (YAML lines, indented).
fn fleet(prefix: &str, count: usize, network: &str) -> String {
    format!(
        "region: us-east-1\nsource_servers:\n  - count: {count}\n    hostname: \"{prefix}-{{i:03}}\"\n    tags: {{ \"dr:plan\": \"{prefix}\", \"dr:wave\": \"1\" }}\n    replication: {{ state: CONTINUOUS, lag_seconds: 0 }}\nnetwork:\n{network}"
    )
}

/// Writes `text` to a file of this test process and returns its path.
fn fleet_path(name: &str, text: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("drplan-e2e-{}-{name}.yaml", std::process::id()));
    std::fs::write(&path, text).expect("the fleet file is written");
    path
}

/// `drplan local seed FILE` against this cloud's gateway: (succeeded, stdout, stderr).
fn seed_with_the_cli(cloud: &Cloud, name: &str, text: &str) -> (bool, String, String) {
    let path = fleet_path(name, text);
    let path_arg = path.to_string_lossy().into_owned();
    let output = cloud.drplan(&[
        "local",
        "seed",
        &path_arg,
        "--endpoint-url",
        cloud.cloud.endpoint_url(),
    ]);
    let _ = std::fs::remove_file(&path);
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The VPCs seeding made for the network `name`.
async fn seeded_vpcs(cloud: &Cloud, name: &str) -> Vec<String> {
    cloud
        .ec2
        .describe_vpcs()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("tag:drplan:local")
                .values(name)
                .build(),
        )
        .send()
        .await
        .expect("DescribeVpcs")
        .vpcs()
        .iter()
        .filter_map(|vpc| vpc.vpc_id().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_network_too_small_for_the_fleet_is_refused_with_the_arithmetic_before_anything_is_made()
{
    let Some(cloud) = cloud_with(&fleet_file("examples/fleet.yaml")).await else {
        return;
    };
    // Two /28 subnets hold 11 instances each; the fleet has 12 servers.
    let tight = "  name: tight\n  vpc_cidr: 10.77.0.0/16\n  recovery_subnet_cidr: 10.77.1.0/28\n  drill_subnet_cidr: 10.77.2.0/28\n";
    let (ok, _, stderr) = seed_with_the_cli(&cloud, "tight", &fleet("tight", 12, tight));
    assert!(!ok, "the seed is refused: {stderr}");
    for expected in [
        "network.recovery_subnet_cidr: 10.77.1.0/28 holds 11 instances (2^(32-28) = 16 addresses less the 5 AWS reserves), but a recovery launches 12 source servers into it: 1 would fail to launch; give it a /27 or larger",
        "network.drill_subnet_cidr: 10.77.2.0/28 holds 11 instances (2^(32-28) = 16 addresses less the 5 AWS reserves), but a drill launches 12 source servers into it: 1 would fail to launch",
    ] {
        assert!(
            stderr.contains(expected),
            "{expected}\n--- not in ---\n{stderr}"
        );
    }
    assert!(seeded_vpcs(&cloud, "tight").await.is_empty(), "no VPC made");
    let servers = cloud.server_ids().await;
    assert!(
        !servers
            .keys()
            .any(|hostname| hostname.starts_with("tight-")),
        "no source server made: {servers:?}"
    );

    // Exactly 11 fit: the same network seeds.
    let (ok, stdout, stderr) = seed_with_the_cli(&cloud, "tight-fits", &fleet("tight", 11, tight));
    assert!(ok, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("the seed report");
    assert_eq!(report["source_servers_created"], 11, "{report}");

    // A subnet cannot grow: a second fleet into the seeded /28s counts the 11 already
    // there and is refused, naming the subnet.
    let (ok, _, stderr) = seed_with_the_cli(&cloud, "tight-more", &fleet("tighter", 2, tight));
    assert!(!ok, "the second seed is refused: {stderr}");
    let recovery_subnet = report["recovery_subnet_id"].as_str().expect("a subnet");
    let expected = format!(
        "network.recovery_subnet_cidr: the recovery subnet {recovery_subnet} seeded earlier: 10.77.1.0/28 holds 11 instances (2^(32-28) = 16 addresses less the 5 AWS reserves), but a recovery launches 13 source servers into it (2 of this fleet, 11 seeded before): 2 would fail to launch, and a subnet cannot grow"
    );
    assert!(
        stderr.contains(&expected),
        "{expected}\n--- not in ---\n{stderr}"
    );
    let servers = cloud.server_ids().await;
    assert!(
        !servers
            .keys()
            .any(|hostname| hostname.starts_with("tighter-")),
        "no source server made: {servers:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_network_is_sized_for_the_fleet_it_seeds() {
    let Some(cloud) = cloud_with(&fleet_file("examples/fleet.yaml")).await else {
        return;
    };
    // The fleet: 259 servers, more than a /24's 251 instances. Only the network's
    // name is given, so its CIDRs are the defaults and seeding sizes them.
    let (ok, stdout, stderr) =
        seed_with_the_cli(&cloud, "roomy", &fleet("roomy", 259, "  name: roomy\n"));
    assert!(ok, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("the seed report");
    for (field, cidr) in [
        ("recovery_subnet_id", "10.0.4.0/22"),
        ("drill_subnet_id", "10.0.8.0/22"),
    ] {
        let subnet_id = report[field].as_str().expect("a subnet");
        let subnets = cloud
            .ec2
            .describe_subnets()
            .subnet_ids(subnet_id)
            .send()
            .await
            .expect("DescribeSubnets");
        let subnet = subnets.subnets().first().expect("the subnet");
        assert_eq!(subnet.cidr_block(), Some(cidr), "{field}");
        assert!(
            subnet.available_ip_address_count().unwrap_or(0) >= 259,
            "{field}: {:?} free addresses for 259 instances",
            subnet.available_ip_address_count()
        );
    }
}
