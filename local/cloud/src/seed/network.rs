//! The seeded VPC: a recovery subnet, a drill subnet with its own isolated route table, and
//! the `drplan-recovery` and `drplan-drill` security groups. Every step looks before it
//! creates (by the `drplan:local` tag, or a security group's name), so seeding twice leaves
//! one of each.

use super::{Network, required};
use crate::error::Result;
use crate::upstream::AwsClient;
use crate::xml;

pub(super) struct SeededNetwork {
    pub vpc_id: String,
    pub recovery_subnet_id: String,
    pub drill_subnet_id: String,
    pub drill_route_table_id: String,
    pub recovery_security_group_id: String,
    pub drill_security_group_id: String,
}

const EC2_VERSION: &str = "2016-11-15";
/// Marks what seeding created, so that the next seeding finds it.
const SEED_TAG: &str = "drplan:local";

/// Addresses AWS keeps in every subnet (the first four and the last).
const RESERVED_PER_SUBNET: u64 = 5;

/// How many instances a subnet of this CIDR holds: its addresses less the five AWS
/// reserves.
pub fn subnet_capacity(cidr: &str) -> Option<u64> {
    let (_, prefix) = cidr.split_once('/')?;
    let prefix: u32 = prefix.parse().ok().filter(|p| (16..=28).contains(p))?;
    Some((1u64 << (32 - prefix)) - RESERVED_PER_SUBNET)
}

/// The network a fleet of `servers` is seeded into. Both subnets must hold the whole
/// fleet (a drill launches it all into the drill subnet, a recovery into the recovery
/// subnet): the default subnets are sized for it, and subnets the fleet names that are
/// too small are refused with the arithmetic, rather than met later as a launch that
/// fails half way through a wave.
pub fn sized_for(network: &Network, servers: usize) -> std::result::Result<Network, String> {
    let servers = servers as u64;
    let defaults = Network::default();
    let mut sized = network.clone();
    if network.vpc_cidr == defaults.vpc_cidr
        && network.recovery_subnet_cidr == defaults.recovery_subnet_cidr
        && network.drill_subnet_cidr == defaults.drill_subnet_cidr
    {
        // Two equal subnets inside 10.0.0.0/16, the smallest that hold the fleet.
        let (prefix, recovery, drill) = [(24u32, 1u32, 2u32), (22, 4, 8), (20, 16, 32), (18, 64, 128)]
            .into_iter()
            .find(|(prefix, _, _)| (1u64 << (32 - prefix)) - RESERVED_PER_SUBNET >= servers)
            .ok_or_else(|| {
                format!(
                    "a fleet of {servers} source servers does not fit the default network (two /18 subnets of 16,379 instances each in 10.0.0.0/16): give network.vpc_cidr, recovery_subnet_cidr and drill_subnet_cidr"
                )
            })?;
        sized.recovery_subnet_cidr = format!("10.0.{recovery}.0/{prefix}");
        sized.drill_subnet_cidr = format!("10.0.{drill}.0/{prefix}");
        return Ok(sized);
    }
    for (field, cidr) in [
        ("recovery_subnet_cidr", &network.recovery_subnet_cidr),
        ("drill_subnet_cidr", &network.drill_subnet_cidr),
    ] {
        let capacity = subnet_capacity(cidr).ok_or_else(|| {
            format!("network.{field}: {cidr:?} is not an IPv4 CIDR with a prefix from /16 to /28")
        })?;
        if capacity < servers {
            let needed = (16..=28u32)
                .rev()
                .find(|p| (1u64 << (32 - p)) - RESERVED_PER_SUBNET >= servers)
                .map_or("larger than a /16".to_owned(), |p| {
                    format!("a /{p} or larger")
                });
            return Err(format!(
                "network.{field}: {cidr} holds {capacity} instances ({} addresses less the {RESERVED_PER_SUBNET} AWS reserves), but the fleet has {servers} source servers and a run launches them all into it: give it {needed}, or leave the network's CIDRs out to have them sized for the fleet",
                capacity + RESERVED_PER_SUBNET
            ));
        }
    }
    Ok(sized)
}

pub(super) async fn seed_network(aws: &AwsClient, network: &Network) -> Result<SeededNetwork> {
    let found = aws
        .query(
            "ec2",
            EC2_VERSION,
            "DescribeVpcs",
            &[
                ("Filter.1.Name", &format!("tag:{SEED_TAG}")),
                ("Filter.1.Value.1", &network.name),
            ],
        )
        .await?;
    let vpc_id = match xml::first_text(&found, "vpcId") {
        Some(vpc_id) => vpc_id,
        None => {
            let created = aws
                .query(
                    "ec2",
                    EC2_VERSION,
                    "CreateVpc",
                    &[("CidrBlock", &network.vpc_cidr)],
                )
                .await?;
            let vpc_id = required(xml::first_text(&created, "vpcId"), "ec2", "CreateVpc")?;
            tag_resource(aws, &vpc_id, &network.name, &network.name).await?;
            vpc_id
        }
    };
    let recovery_subnet_id = seed_subnet(
        aws,
        &vpc_id,
        &network.recovery_subnet_cidr,
        &format!("{}-recovery", network.name),
    )
    .await?;
    let drill_subnet_id = seed_subnet(
        aws,
        &vpc_id,
        &network.drill_subnet_cidr,
        &format!("{}-drill", network.name),
    )
    .await?;
    if network.public_ips {
        for subnet_id in [&recovery_subnet_id, &drill_subnet_id] {
            map_public_ips(aws, subnet_id).await?;
        }
    }
    let drill_route_table_id = seed_isolated_route_table(aws, &vpc_id, &drill_subnet_id).await?;
    let recovery_security_group_id = seed_security_group(
        aws,
        &vpc_id,
        RECOVERY_GROUP,
        "drplan recovery instances (in every source server's launch template)",
    )
    .await?;
    let drill_security_group_id =
        seed_security_group(aws, &vpc_id, DRILL_GROUP, "drplan drill instances").await?;
    Ok(SeededNetwork {
        vpc_id,
        recovery_subnet_id,
        drill_subnet_id,
        drill_route_table_id,
        recovery_security_group_id,
        drill_security_group_id,
    })
}

/// Name (and `drplan:local` mark) of the drill subnet's route table.
const DRILL_ROUTE_TABLE: &str = "drplan-drill";
const RECOVERY_GROUP: &str = "drplan-recovery";
const DRILL_GROUP: &str = "drplan-drill";

/// The drill subnet's own route table, created with nothing but the VPC's `local` route, so
/// the subnet is isolated. Found again by its mark; routes added to it later (e.g. a test's
/// internet gateway route) are left alone.
async fn seed_isolated_route_table(
    aws: &AwsClient,
    vpc_id: &str,
    subnet_id: &str,
) -> Result<String> {
    let found = aws
        .query(
            "ec2",
            EC2_VERSION,
            "DescribeRouteTables",
            &[
                ("Filter.1.Name", "vpc-id"),
                ("Filter.1.Value.1", vpc_id),
                ("Filter.2.Name", &format!("tag:{SEED_TAG}")),
                ("Filter.2.Value.1", DRILL_ROUTE_TABLE),
            ],
        )
        .await?;
    let (route_table_id, described) = match xml::first_text(&found, "routeTableId") {
        Some(route_table_id) => (route_table_id, found),
        None => {
            let created = aws
                .query("ec2", EC2_VERSION, "CreateRouteTable", &[("VpcId", vpc_id)])
                .await?;
            let route_table_id = required(
                xml::first_text(&created, "routeTableId"),
                "ec2",
                "CreateRouteTable",
            )?;
            tag_resource(aws, &route_table_id, DRILL_ROUTE_TABLE, DRILL_ROUTE_TABLE).await?;
            (route_table_id, created)
        }
    };
    let associated = xml::texts_of(&described, "subnetId")
        .iter()
        .any(|associated| associated == subnet_id);
    if !associated {
        aws.query(
            "ec2",
            EC2_VERSION,
            "AssociateRouteTable",
            &[("RouteTableId", &route_table_id), ("SubnetId", subnet_id)],
        )
        .await?;
    }
    Ok(route_table_id)
}

/// A security group of the VPC, found by name (names are unique in a VPC) or created.
async fn seed_security_group(
    aws: &AwsClient,
    vpc_id: &str,
    name: &str,
    description: &str,
) -> Result<String> {
    let found = aws
        .query(
            "ec2",
            EC2_VERSION,
            "DescribeSecurityGroups",
            &[
                ("Filter.1.Name", "vpc-id"),
                ("Filter.1.Value.1", vpc_id),
                ("Filter.2.Name", "group-name"),
                ("Filter.2.Value.1", name),
            ],
        )
        .await?;
    if let Some(group_id) = xml::first_text(&found, "groupId") {
        return Ok(group_id);
    }
    let created = aws
        .query(
            "ec2",
            EC2_VERSION,
            "CreateSecurityGroup",
            &[
                ("GroupName", name),
                ("GroupDescription", description),
                ("VpcId", vpc_id),
            ],
        )
        .await?;
    let group_id = required(
        xml::first_text(&created, "groupId"),
        "ec2",
        "CreateSecurityGroup",
    )?;
    tag_resource(aws, &group_id, name, name).await?;
    Ok(group_id)
}

async fn seed_subnet(aws: &AwsClient, vpc_id: &str, cidr: &str, name: &str) -> Result<String> {
    let found = aws
        .query(
            "ec2",
            EC2_VERSION,
            "DescribeSubnets",
            &[
                ("Filter.1.Name", "vpc-id"),
                ("Filter.1.Value.1", vpc_id),
                ("Filter.2.Name", &format!("tag:{SEED_TAG}")),
                ("Filter.2.Value.1", name),
            ],
        )
        .await?;
    if let Some(subnet_id) = xml::first_text(&found, "subnetId") {
        return Ok(subnet_id);
    }
    let availability_zone = format!("{}a", aws.region());
    let created = aws
        .query(
            "ec2",
            EC2_VERSION,
            "CreateSubnet",
            &[
                ("VpcId", vpc_id),
                ("CidrBlock", cidr),
                ("AvailabilityZone", &availability_zone),
            ],
        )
        .await?;
    let subnet_id = required(xml::first_text(&created, "subnetId"), "ec2", "CreateSubnet")?;
    tag_resource(aws, &subnet_id, name, name).await?;
    Ok(subnet_id)
}

async fn map_public_ips(aws: &AwsClient, subnet_id: &str) -> Result<()> {
    aws.query(
        "ec2",
        EC2_VERSION,
        "ModifySubnetAttribute",
        &[
            ("SubnetId", subnet_id),
            ("MapPublicIpOnLaunch.Value", "true"),
        ],
    )
    .await
    .map(|_| ())
}

async fn tag_resource(
    aws: &AwsClient,
    resource_id: &str,
    name: &str,
    seed_mark: &str,
) -> Result<()> {
    aws.query(
        "ec2",
        EC2_VERSION,
        "CreateTags",
        &[
            ("ResourceId.1", resource_id),
            ("Tag.1.Key", "Name"),
            ("Tag.1.Value", name),
            ("Tag.2.Key", SEED_TAG),
            ("Tag.2.Value", seed_mark),
        ],
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_subnets_grow_with_the_fleet() {
        let default = Network::default();
        let small = sized_for(&default, 251).unwrap();
        assert_eq!(small.recovery_subnet_cidr, "10.0.1.0/24");
        assert_eq!(small.drill_subnet_cidr, "10.0.2.0/24");
        let shop = sized_for(&default, 259).unwrap();
        assert_eq!(shop.recovery_subnet_cidr, "10.0.4.0/22");
        assert_eq!(shop.drill_subnet_cidr, "10.0.8.0/22");
        let big = sized_for(&default, 4_000).unwrap();
        assert_eq!(big.recovery_subnet_cidr, "10.0.16.0/20");
        assert!(sized_for(&default, 20_000).is_err());
    }

    #[test]
    fn a_subnet_the_fleet_names_that_cannot_hold_it_is_refused_with_the_arithmetic() {
        let named = Network {
            vpc_cidr: "10.9.0.0/16".into(),
            recovery_subnet_cidr: "10.9.1.0/24".into(),
            drill_subnet_cidr: "10.9.16.0/20".into(),
            ..Network::default()
        };
        let error = sized_for(&named, 259).unwrap_err();
        assert!(
            error.starts_with(
                "network.recovery_subnet_cidr: 10.9.1.0/24 holds 251 instances (256 addresses less the 5 AWS reserves), but the fleet has 259 source servers"
            ) && error.contains("give it a /23 or larger"),
            "{error}"
        );
        assert_eq!(
            sized_for(&named, 251).unwrap().recovery_subnet_cidr,
            "10.9.1.0/24"
        );
        let odd = Network {
            drill_subnet_cidr: "10.9.2.0".into(),
            ..named
        };
        assert!(
            sized_for(&odd, 1)
                .unwrap_err()
                .contains("network.drill_subnet_cidr")
        );
    }
}
