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
