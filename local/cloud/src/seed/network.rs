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

/// The network a fleet of `servers` is seeded into: the default subnets are sized for
/// it (both must hold the whole fleet: a drill launches it all into the drill subnet, a
/// recovery into the recovery subnet); CIDRs the fleet names are kept as they are, and
/// [`capacity_problems`] judges whether they hold it.
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
            .find(|(prefix, _, _)| usable_addresses(*prefix) >= servers)
            .ok_or_else(|| {
                format!(
                    "a fleet of {servers} source servers does not fit the default network (two /18 subnets of 16,379 instances each in 10.0.0.0/16): give network.vpc_cidr, recovery_subnet_cidr and drill_subnet_cidr"
                )
            })?;
        sized.recovery_subnet_cidr = format!("10.0.{recovery}.0/{prefix}");
        sized.drill_subnet_cidr = format!("10.0.{drill}.0/{prefix}");
    }
    for (field, cidr) in [
        ("recovery_subnet_cidr", &sized.recovery_subnet_cidr),
        ("drill_subnet_cidr", &sized.drill_subnet_cidr),
    ] {
        subnet_capacity(cidr).ok_or_else(|| {
            format!("network.{field}: {cidr:?} is not an IPv4 CIDR with a prefix from /16 to /28")
        })?;
    }
    Ok(sized)
}

/// Instances a subnet with this prefix holds: 2^(32 - prefix) addresses less the five
/// AWS reserves.
fn usable_addresses(prefix: u32) -> u64 {
    (1u64 << (32 - prefix)).saturating_sub(RESERVED_PER_SUBNET)
}

/// One of the two seeded subnets as a run will meet it: its CIDR (the one seeding
/// creates, or the one an earlier seeding created, which a subnet cannot change) and the
/// source servers whose launches go into it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubnetLoad {
    /// `recovery_subnet_cidr` or `drill_subnet_cidr`.
    pub field: &'static str,
    /// The run that launches into it: `recovery` or `drill`.
    pub mode: &'static str,
    pub cidr: String,
    /// The subnet an earlier seeding made, when there is one.
    pub existing_subnet_id: Option<String>,
    /// Servers of this fleet.
    pub fleet_servers: u64,
    /// Servers seeded earlier into this subnet that this fleet does not name.
    pub other_servers: u64,
}

/// Every subnet that cannot take one instance per server that launches into it, with the
/// arithmetic; empty when the network holds the fleet.
pub fn capacity_problems(loads: &[SubnetLoad]) -> Vec<String> {
    let mut problems = Vec::new();
    for load in loads {
        let Some(prefix) = prefix_of(&load.cidr) else {
            problems.push(format!(
                "network.{}: {:?} is not an IPv4 CIDR with a prefix from /16 to /28",
                load.field, load.cidr
            ));
            continue;
        };
        let capacity = usable_addresses(prefix);
        let servers = load.fleet_servers + load.other_servers;
        if capacity >= servers {
            continue;
        }
        let short = servers - capacity;
        let arithmetic = format!(
            "{} holds {capacity} instances (2^(32-{prefix}) = {} addresses less the {RESERVED_PER_SUBNET} AWS reserves), but a {} launches {servers} source servers into it",
            load.cidr,
            capacity + RESERVED_PER_SUBNET,
            load.mode
        );
        let needed = (16..=28u32)
            .rev()
            .find(|p| usable_addresses(*p) >= servers)
            .map_or("larger than a /16".to_owned(), |p| {
                format!("a /{p} or larger")
            });
        problems.push(match &load.existing_subnet_id {
            None => format!(
                "network.{}: {arithmetic}: {short} would fail to launch; give it {needed}, or leave the network's CIDRs out to have them sized for the fleet",
                load.field
            ),
            Some(subnet_id) => format!(
                "network.{}: the {} subnet {subnet_id} seeded earlier: {arithmetic} ({} of this fleet, {} seeded before): {short} would fail to launch, and a subnet cannot grow; seed into a fresh local cloud, or give network a new name (and {needed})",
                load.field, load.mode, load.fleet_servers, load.other_servers
            ),
        });
    }
    problems
}

fn prefix_of(cidr: &str) -> Option<u32> {
    subnet_capacity(cidr)?;
    cidr.split_once('/')?.1.parse().ok()
}

/// The seeded subnets an earlier seeding of this network made (by their mark), with their
/// CIDRs: (recovery, drill), each `(subnet ID, CIDR)`.
pub(super) async fn existing_subnets(
    aws: &AwsClient,
    network: &Network,
) -> Result<(Option<(String, String)>, Option<(String, String)>)> {
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
    let Some(vpc_id) = xml::first_text(&found, "vpcId") else {
        return Ok((None, None));
    };
    let mut subnets = Vec::new();
    for name in [
        format!("{}-recovery", network.name),
        format!("{}-drill", network.name),
    ] {
        let found = aws
            .query(
                "ec2",
                EC2_VERSION,
                "DescribeSubnets",
                &[
                    ("Filter.1.Name", "vpc-id"),
                    ("Filter.1.Value.1", &vpc_id),
                    ("Filter.2.Name", &format!("tag:{SEED_TAG}")),
                    ("Filter.2.Value.1", &name),
                ],
            )
            .await?;
        subnets.push(xml::first_text(&found, "subnetId").zip(xml::first_text(&found, "cidrBlock")));
    }
    let drill = subnets.pop().flatten();
    let recovery = subnets.pop().flatten();
    Ok((recovery, drill))
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

/// For EC2 sources: their network in their origin Region (`aws` signs for it), the VPC
/// and one subnet both `source_cidr`, where the source machines' addresses are. The
/// simulator launches a failback to that Region into the subnet that holds the source's
/// address, so each local cloud's instances there get addresses (and loopback stand-ins)
/// of their own, not those of moto's default subnets, the same in every moto. Found again
/// by its mark; returns the subnet's ID.
pub(super) async fn seed_origin_network(
    aws: &AwsClient,
    source_cidr: &str,
    name: &str,
    public_ips: bool,
) -> Result<String> {
    let name = format!("{name}-origin");
    let found = aws
        .query(
            "ec2",
            EC2_VERSION,
            "DescribeVpcs",
            &[
                ("Filter.1.Name", &format!("tag:{SEED_TAG}")),
                ("Filter.1.Value.1", &name),
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
                    &[("CidrBlock", source_cidr)],
                )
                .await?;
            let vpc_id = required(xml::first_text(&created, "vpcId"), "ec2", "CreateVpc")?;
            tag_resource(aws, &vpc_id, &name, &name).await?;
            vpc_id
        }
    };
    let subnet_id = seed_subnet(aws, &vpc_id, source_cidr, &name).await?;
    if public_ips {
        map_public_ips(aws, &subnet_id).await?;
    }
    Ok(subnet_id)
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

    fn load(cidr: &str, mode: &'static str, fleet: u64, others: u64) -> SubnetLoad {
        SubnetLoad {
            field: if mode == "drill" {
                "drill_subnet_cidr"
            } else {
                "recovery_subnet_cidr"
            },
            mode,
            cidr: cidr.into(),
            existing_subnet_id: (others > 0).then(|| "subnet-0123".to_owned()),
            fleet_servers: fleet,
            other_servers: others,
        }
    }

    #[test]
    fn usable_addresses_are_the_subnet_less_the_five_aws_reserves() {
        assert_eq!(usable_addresses(28), 11);
        assert_eq!(usable_addresses(24), 251);
        assert_eq!(usable_addresses(23), 507);
        assert_eq!(usable_addresses(16), 65_531);
        assert_eq!(subnet_capacity("10.0.1.0/24"), Some(251));
        assert_eq!(
            subnet_capacity("10.0.1.0/29"),
            None,
            "AWS subnets stop at /28"
        );
        assert_eq!(subnet_capacity("10.0.1.0"), None);
    }

    #[test]
    fn a_subnet_the_fleet_names_that_cannot_hold_it_is_refused_with_the_arithmetic() {
        let named = Network {
            vpc_cidr: "10.9.0.0/16".into(),
            recovery_subnet_cidr: "10.9.1.0/24".into(),
            drill_subnet_cidr: "10.9.16.0/20".into(),
            ..Network::default()
        };
        let kept = sized_for(&named, 259).unwrap();
        assert_eq!(
            kept.recovery_subnet_cidr, "10.9.1.0/24",
            "named CIDRs are kept"
        );
        let problems = capacity_problems(&[
            load(&kept.recovery_subnet_cidr, "recovery", 259, 0),
            load(&kept.drill_subnet_cidr, "drill", 259, 0),
        ]);
        assert_eq!(
            problems,
            vec![
                "network.recovery_subnet_cidr: 10.9.1.0/24 holds 251 instances (2^(32-24) = 256 addresses less the 5 AWS reserves), but a recovery launches 259 source servers into it: 8 would fail to launch; give it a /23 or larger, or leave the network's CIDRs out to have them sized for the fleet"
            ]
        );
        assert!(
            capacity_problems(&[
                load("10.9.1.0/24", "recovery", 251, 0),
                load("10.9.2.0/24", "drill", 251, 0)
            ])
            .is_empty(),
            "251 instances fit a /24 exactly"
        );
        let both = capacity_problems(&[
            load("10.9.1.0/28", "recovery", 12, 0),
            load("10.9.2.0/28", "drill", 12, 0),
        ]);
        assert_eq!(both.len(), 2, "{both:?}");
        assert!(
            both[1].starts_with("network.drill_subnet_cidr: 10.9.2.0/28 holds 11 instances (2^(32-28) = 16 addresses less the 5 AWS reserves), but a drill launches 12 source servers into it: 1 would fail to launch; give it a /27 or larger"),
            "{}",
            both[1]
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

    #[test]
    fn a_subnet_seeded_earlier_counts_its_servers_and_cannot_grow() {
        let problems = capacity_problems(&[load("10.0.1.0/24", "recovery", 259, 15)]);
        assert_eq!(
            problems,
            vec![
                "network.recovery_subnet_cidr: the recovery subnet subnet-0123 seeded earlier: 10.0.1.0/24 holds 251 instances (2^(32-24) = 256 addresses less the 5 AWS reserves), but a recovery launches 274 source servers into it (259 of this fleet, 15 seeded before): 23 would fail to launch, and a subnet cannot grow; seed into a fresh local cloud, or give network a new name (and a /23 or larger)"
            ]
        );
        assert!(capacity_problems(&[load("10.0.1.0/24", "recovery", 200, 51)]).is_empty());
    }
}
