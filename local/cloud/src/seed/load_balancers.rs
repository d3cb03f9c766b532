//! The seeded load balancers: an application load balancer per fleet entry, in the
//! recovery or the drill subnet of the seeded VPC, with its target groups (target type
//! `instance`) and an HTTP listener forwarding to the first. Found again by name, so
//! seeding twice leaves one of each. Plans name the target groups by ARN; the ARNs moto
//! makes end in a random ID, so `drplan local drill` and the end-to-end tests put the
//! seeded ARN in place of a plan's target group ARN of the same name.
//!
//! moto 5.2.5 evaluates no health check: DescribeTargetHealth reports every registered
//! running instance `healthy` at once (a stopped one `unused`, Target.InvalidState; one
//! not registered `unused`, Target.NotRegistered), and RegisterTargets refuses an
//! instance that is not running (InvalidTarget).

use serde::{Deserialize, Serialize};

use super::network::SeededNetwork;
use super::required;
use crate::error::{LocalCloudError, Result};
use crate::upstream::AwsClient;
use crate::xml;

const ELBV2_VERSION: &str = "2015-12-01";
const SERVICE: &str = "elasticloadbalancing";

/// A load balancer of the fleet file.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LoadBalancer {
    pub name: String,
    /// `recovery` (the default) or `drill`: the seeded subnet it sits in.
    #[serde(default)]
    pub subnet: SubnetKind,
    /// An internal load balancer (scheme `internal`) instead of an internet-facing one.
    #[serde(default)]
    pub internal: bool,
    /// The port of its HTTP listener, which forwards to the first target group.
    #[serde(default = "default_listener_port")]
    pub listener_port: u16,
    pub target_groups: Vec<TargetGroup>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SubnetKind {
    #[default]
    Recovery,
    Drill,
}

/// A target group of type `instance`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TargetGroup {
    pub name: String,
    pub port: u16,
    /// HTTP (the default) or HTTPS.
    #[serde(default = "default_protocol")]
    pub protocol: String,
    #[serde(default = "default_health_check_path")]
    pub health_check_path: String,
}

fn default_listener_port() -> u16 {
    80
}
fn default_protocol() -> String {
    "HTTP".to_string()
}
fn default_health_check_path() -> String {
    "/".to_string()
}

/// What seeding made of one load balancer.
#[derive(Clone, Debug, Serialize)]
pub struct SeededLoadBalancer {
    pub name: String,
    pub arn: String,
    /// Its DNS name and hosted zone: what an alias record points at.
    pub dns_name: String,
    pub canonical_hosted_zone_id: String,
    pub target_groups: Vec<SeededTargetGroup>,
}

#[derive(Clone, Debug, Serialize)]
pub struct SeededTargetGroup {
    pub name: String,
    pub arn: String,
    pub port: u16,
}

/// Checks the fleet's load balancers: names AWS would take, ports, protocols.
pub(super) fn check(load_balancers: &[LoadBalancer]) -> std::result::Result<(), String> {
    let valid_name = |name: &str| {
        !name.is_empty()
            && name.len() <= 32
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !name.starts_with('-')
            && !name.ends_with('-')
    };
    for (index, lb) in load_balancers.iter().enumerate() {
        let at = format!("load_balancers[{index}]");
        if !valid_name(&lb.name) {
            return Err(format!(
                "{at}.name: {:?} is not a load balancer name (1 to 32 letters, digits and -)",
                lb.name
            ));
        }
        if lb.target_groups.is_empty() {
            return Err(format!("{at}.target_groups: list at least one"));
        }
        for (tg_index, tg) in lb.target_groups.iter().enumerate() {
            let at = format!("{at}.target_groups[{tg_index}]");
            if !valid_name(&tg.name) {
                return Err(format!(
                    "{at}.name: {:?} is not a target group name (1 to 32 letters, digits and -)",
                    tg.name
                ));
            }
            if tg.port == 0 {
                return Err(format!("{at}.port: must be from 1 to 65535"));
            }
            if !matches!(tg.protocol.as_str(), "HTTP" | "HTTPS") {
                return Err(format!(
                    "{at}.protocol: {:?} is not HTTP or HTTPS",
                    tg.protocol
                ));
            }
        }
    }
    Ok(())
}

pub(super) async fn seed_load_balancer(
    aws: &AwsClient,
    lb: &LoadBalancer,
    network: &SeededNetwork,
) -> Result<SeededLoadBalancer> {
    let listed = aws
        .query(SERVICE, ELBV2_VERSION, "DescribeLoadBalancers", &[])
        .await?;
    let found = xml::blocks(&listed, "member")
        .into_iter()
        .find(|m| m.children.get("LoadBalancerName") == Some(&lb.name));
    let (block, created) = match found {
        Some(block) => (block, false),
        None => {
            let subnet = match lb.subnet {
                SubnetKind::Recovery => &network.recovery_subnet_id,
                SubnetKind::Drill => &network.drill_subnet_id,
            };
            let scheme = if lb.internal {
                "internal"
            } else {
                "internet-facing"
            };
            let answer = aws
                .query(
                    SERVICE,
                    ELBV2_VERSION,
                    "CreateLoadBalancer",
                    &[
                        ("Name", &lb.name),
                        ("Subnets.member.1", subnet),
                        ("Scheme", scheme),
                        ("Type", "application"),
                    ],
                )
                .await?;
            let block = xml::blocks(&answer, "member")
                .into_iter()
                .find(|m| m.children.contains_key("LoadBalancerArn"))
                .ok_or_else(|| {
                    unexpected("CreateLoadBalancer", "no load balancer in the answer")
                })?;
            (block, true)
        }
    };
    let field = |name: &str, operation: &str| {
        required(
            block.children.get(name).cloned(),
            "elasticloadbalancing",
            operation,
        )
    };
    let arn = field("LoadBalancerArn", "DescribeLoadBalancers")?;
    let dns_name = field("DNSName", "DescribeLoadBalancers")?;
    let canonical_hosted_zone_id = field("CanonicalHostedZoneId", "DescribeLoadBalancers")?;
    let mut target_groups = Vec::new();
    for tg in &lb.target_groups {
        target_groups.push(seed_target_group(aws, tg, &network.vpc_id).await?);
    }
    if created && let Some(first) = target_groups.first() {
        aws.query(
            SERVICE,
            ELBV2_VERSION,
            "CreateListener",
            &[
                ("LoadBalancerArn", &arn),
                ("Protocol", "HTTP"),
                ("Port", &lb.listener_port.to_string()),
                ("DefaultActions.member.1.Type", "forward"),
                ("DefaultActions.member.1.TargetGroupArn", &first.arn),
            ],
        )
        .await?;
    }
    Ok(SeededLoadBalancer {
        name: lb.name.clone(),
        arn,
        dns_name,
        canonical_hosted_zone_id,
        target_groups,
    })
}

async fn seed_target_group(
    aws: &AwsClient,
    tg: &TargetGroup,
    vpc_id: &str,
) -> Result<SeededTargetGroup> {
    let listed = aws
        .query(SERVICE, ELBV2_VERSION, "DescribeTargetGroups", &[])
        .await?;
    let found = xml::blocks(&listed, "member")
        .into_iter()
        .find(|m| m.children.get("TargetGroupName") == Some(&tg.name))
        .and_then(|m| m.children.get("TargetGroupArn").cloned());
    let arn = match found {
        Some(arn) => arn,
        None => {
            let answer = aws
                .query(
                    SERVICE,
                    ELBV2_VERSION,
                    "CreateTargetGroup",
                    &[
                        ("Name", &tg.name),
                        ("Protocol", &tg.protocol),
                        ("Port", &tg.port.to_string()),
                        ("VpcId", vpc_id),
                        ("TargetType", "instance"),
                        ("HealthCheckPath", &tg.health_check_path),
                    ],
                )
                .await?;
            required(
                xml::first_text(&answer, "TargetGroupArn"),
                "elasticloadbalancing",
                "CreateTargetGroup",
            )?
        }
    };
    Ok(SeededTargetGroup {
        name: tg.name.clone(),
        arn,
        port: tg.port,
    })
}

fn unexpected(operation: &str, problem: &str) -> LocalCloudError {
    LocalCloudError::UnexpectedAnswer {
        service: "elasticloadbalancing",
        operation: operation.to_string(),
        problem: problem.to_string(),
    }
}

/// The target group ARN `...:targetgroup/NAME/ID` with NAME: the name a plan's ARN
/// gives, to find the seeded target group of that name.
pub fn target_group_name(arn: &str) -> Option<&str> {
    arn.split_once(":targetgroup/")?.1.split('/').next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_protocols_are_checked_naming_the_field() {
        let lb = |tg: TargetGroup| LoadBalancer {
            name: "shop-web".into(),
            subnet: SubnetKind::Recovery,
            internal: false,
            listener_port: 80,
            target_groups: vec![tg],
        };
        let tg = |name: &str, protocol: &str| TargetGroup {
            name: name.into(),
            port: 443,
            protocol: protocol.into(),
            health_check_path: "/".into(),
        };
        assert_eq!(check(&[lb(tg("shop-web", "HTTPS"))]), Ok(()));
        let bad = check(&[lb(tg("shop_web", "HTTPS"))]).unwrap_err();
        assert!(
            bad.starts_with("load_balancers[0].target_groups[0].name"),
            "{bad}"
        );
        let bad = check(&[lb(tg("shop-web", "TCP"))]).unwrap_err();
        assert!(bad.contains("protocol"), "{bad}");
        assert_eq!(
            target_group_name(
                "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/shop-web/0123"
            ),
            Some("shop-web")
        );
    }
}
