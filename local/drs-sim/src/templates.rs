//! Source servers' EC2 launch templates.
//!
//! Real DRS launches every drill and recovery instance from the launch template that
//! GetLaunchConfiguration names (`ec2LaunchTemplateID`), using the template's *default*
//! version: its first network interface (DeviceIndex 0) decides the subnet and security
//! groups. DRS never picks a separate subnet for drills on its own; a caller that wants
//! drills isolated changes the template's default version before the launch.
//!
//! With EC2 (moto) configured the simulator does the same: seeding a source server creates
//! a real launch template `drs-<source server ID>` in moto, and every launch reads the
//! default version just before RunInstances. Without EC2 the template ID is made up and
//! launches use the server's `launch_subnet_id`.

use std::sync::Arc;

use tokio::task::JoinSet;

use crate::outbound::{Outbound, OutboundError};
use crate::sim::Simulator;

/// What a source server's launch template holds (version 1, or a re-seed's new version).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateSpec {
    pub image_id: String,
    pub instance_type: String,
    pub subnet_id: Option<String>,
    pub security_group_ids: Vec<String>,
}

/// Where a template's default version puts an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateNetwork {
    /// The default version's number, e.g. `"3"`.
    pub version: String,
    pub subnet_id: Option<String>,
    pub security_group_ids: Vec<String>,
}

/// Template calls a control request must make once the state lock is released.
#[derive(Debug, Clone)]
pub enum TemplateWork {
    /// A server without a template in EC2 yet: create `drs-<server ID>`.
    Create {
        /// Index of the server in the control request's answer.
        index: usize,
        server_id: String,
        spec: TemplateSpec,
    },
    /// A re-seeded server whose launch settings changed: a new version, made the default.
    Update {
        index: usize,
        server_id: String,
        template_id: String,
        spec: TemplateSpec,
    },
}

impl TemplateWork {
    pub fn index(&self) -> usize {
        match self {
            TemplateWork::Create { index, .. } | TemplateWork::Update { index, .. } => *index,
        }
    }

    pub fn server_id(&self) -> &str {
        match self {
            TemplateWork::Create { server_id, .. } | TemplateWork::Update { server_id, .. } => {
                server_id
            }
        }
    }
}

pub fn template_name(server_id: &str) -> String {
    format!("drs-{server_id}")
}

/// How many template calls a seeding request keeps in flight.
const PARALLEL_TEMPLATE_CALLS: usize = 8;

/// Runs `work` against the home Region's EC2 (seeded servers live there); each item's
/// result is the template ID.
pub async fn run_template_work(
    sim: &Arc<Simulator>,
    work: Vec<TemplateWork>,
) -> Vec<(TemplateWork, Result<String, OutboundError>)> {
    let mut results = Vec::with_capacity(work.len());
    for chunk in work.chunks(PARALLEL_TEMPLATE_CALLS) {
        // Dropping the set (the request is abandoned) aborts the calls in flight.
        let mut calls = JoinSet::new();
        for item in chunk.iter().cloned() {
            let sim = sim.clone();
            calls.spawn(async move {
                let region = sim.outbound.home_region().to_owned();
                let result = match &item {
                    TemplateWork::Create {
                        server_id, spec, ..
                    } => {
                        sim.outbound
                            .create_launch_template(&region, &template_name(server_id), spec)
                            .await
                    }
                    TemplateWork::Update {
                        template_id, spec, ..
                    } => sim
                        .outbound
                        .set_default_launch_template_version(&region, template_id, spec)
                        .await
                        .map(|()| template_id.clone()),
                };
                (item, result)
            });
        }
        while let Some(joined) = calls.join_next().await {
            match joined {
                Ok(result) => results.push(result),
                Err(error) => eprintln!("drs-sim: a launch template call failed: {error}"),
            }
        }
    }
    results
}

fn ec2_params(action: &str) -> Vec<(String, String)> {
    vec![
        ("Action".into(), action.into()),
        ("Version".into(), "2016-11-15".into()),
    ]
}

/// `LaunchTemplateData.*` query parameters for `spec`.
fn template_data(spec: &TemplateSpec) -> Vec<(String, String)> {
    let mut params = vec![
        (
            "LaunchTemplateData.ImageId".to_owned(),
            spec.image_id.clone(),
        ),
        (
            "LaunchTemplateData.InstanceType".to_owned(),
            spec.instance_type.clone(),
        ),
    ];
    if spec.subnet_id.is_none() && spec.security_group_ids.is_empty() {
        // No network interface: EC2 picks the default subnet, as for RunInstances.
        return params;
    }
    let nic = "LaunchTemplateData.NetworkInterface.1";
    params.push((format!("{nic}.DeviceIndex"), "0".to_owned()));
    if let Some(subnet_id) = &spec.subnet_id {
        params.push((format!("{nic}.SubnetId"), subnet_id.clone()));
    }
    for (index, group) in spec.security_group_ids.iter().enumerate() {
        params.push((
            format!("{nic}.SecurityGroupId.{}", index + 1),
            group.clone(),
        ));
    }
    params
}

impl Outbound {
    /// CreateLaunchTemplate `name` with `spec` as version 1 in the EC2 of `region`; its ID.
    /// A template of that name left by an earlier attempt (whose answer was lost) is
    /// adopted and brought up to date.
    pub async fn create_launch_template(
        &self,
        region: &str,
        name: &str,
        spec: &TemplateSpec,
    ) -> Result<String, OutboundError> {
        let mut params = ec2_params("CreateLaunchTemplate");
        params.push(("LaunchTemplateName".into(), name.into()));
        params.push(("VersionDescription".into(), "DRS launch settings".into()));
        params.extend(template_data(spec));
        match self.ec2_call(region, params).await {
            Ok(reply) => required(&reply, "launchTemplateId", "CreateLaunchTemplate"),
            Err(OutboundError::Service { message, .. })
                if message.starts_with("InvalidLaunchTemplateName.AlreadyExists") =>
            {
                let mut params = ec2_params("DescribeLaunchTemplates");
                params.push(("LaunchTemplateName.1".into(), name.into()));
                let reply = self.ec2_call(region, params).await?;
                let template_id = required(&reply, "launchTemplateId", "DescribeLaunchTemplates")?;
                self.set_default_launch_template_version(region, &template_id, spec)
                    .await?;
                Ok(template_id)
            }
            Err(error) => Err(error),
        }
    }

    /// CreateLaunchTemplateVersion with `spec`, then ModifyLaunchTemplate to make it the
    /// default.
    pub async fn set_default_launch_template_version(
        &self,
        region: &str,
        template_id: &str,
        spec: &TemplateSpec,
    ) -> Result<(), OutboundError> {
        let mut params = ec2_params("CreateLaunchTemplateVersion");
        params.push(("LaunchTemplateId".into(), template_id.into()));
        params.push(("VersionDescription".into(), "DRS launch settings".into()));
        params.extend(template_data(spec));
        let reply = self.ec2_call(region, params).await?;
        let version = required(&reply, "versionNumber", "CreateLaunchTemplateVersion")?;
        let mut params = ec2_params("ModifyLaunchTemplate");
        params.push(("LaunchTemplateId".into(), template_id.into()));
        params.push(("SetDefaultVersion".into(), version));
        self.ec2_call(region, params).await.map(|_| ())
    }

    /// DescribeLaunchTemplateVersions of the default version: its subnet and security
    /// groups (of the DeviceIndex 0 interface, else the version's SecurityGroupIds).
    pub async fn default_template_network(
        &self,
        region: &str,
        template_id: &str,
    ) -> Result<TemplateNetwork, OutboundError> {
        let mut params = ec2_params("DescribeLaunchTemplateVersions");
        params.push(("LaunchTemplateId".into(), template_id.into()));
        params.push(("LaunchTemplateVersion.1".into(), "$Default".into()));
        let reply = self.ec2_call(region, params).await?;
        parse_default_version(&reply).ok_or_else(|| OutboundError::Unexpected {
            service: "ec2",
            reason: format!("DescribeLaunchTemplateVersions of {template_id} has no version"),
        })
    }
}

/// A subnet of a Region's EC2, as DescribeSubnets tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subnet {
    pub subnet_id: String,
    pub cidr: String,
    pub availability_zone: String,
    /// The default VPC's subnet of its zone (moto makes them with every Region's backend).
    pub default_for_az: bool,
}

impl Outbound {
    /// DescribeSubnets in the EC2 of `region`: every subnet there.
    pub async fn subnets(&self, region: &str) -> Result<Vec<Subnet>, OutboundError> {
        let reply = self.ec2_call(region, ec2_params("DescribeSubnets")).await?;
        Ok(parse_subnets(&reply))
    }
}

fn parse_subnets(reply: &str) -> Vec<Subnet> {
    find_element(reply, "subnetSet")
        .map(|set| {
            children(set, "item")
                .into_iter()
                .filter_map(|item| {
                    Some(Subnet {
                        subnet_id: text_of(item, "subnetId")?,
                        cidr: text_of(item, "cidrBlock")?,
                        availability_zone: text_of(item, "availabilityZone")?,
                        default_for_az: text_of(item, "defaultForAz").as_deref() == Some("true"),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

fn required(reply: &str, tag: &str, action: &str) -> Result<String, OutboundError> {
    find_element(reply, tag)
        .map(|text| text.trim().to_owned())
        .filter(|text| !text.is_empty())
        .ok_or_else(|| OutboundError::Unexpected {
            service: "ec2",
            reason: format!("{action} reply has no {tag}"),
        })
}

fn parse_default_version(reply: &str) -> Option<TemplateNetwork> {
    let set = find_element(reply, "launchTemplateVersionSet")?;
    let version = *children(set, "item").first()?;
    let number = text_of(version, "versionNumber")?;
    let data = children(version, "launchTemplateData")
        .first()
        .copied()
        .unwrap_or("");
    let interfaces: Vec<&str> = children(data, "networkInterfaceSet")
        .into_iter()
        .flat_map(|set| children(set, "item"))
        .collect();
    let primary = interfaces
        .iter()
        .find(|nic| text_of(nic, "deviceIndex").as_deref() == Some("0"))
        .or_else(|| interfaces.first());
    let mut security_group_ids: Vec<String> = primary
        .into_iter()
        .flat_map(|nic| children(nic, "groupSet"))
        .flat_map(|set| children(set, "groupId"))
        .map(|id| id.trim().to_owned())
        .collect();
    if security_group_ids.is_empty() {
        security_group_ids = children(data, "securityGroupIdSet")
            .into_iter()
            .flat_map(|set| children(set, "item"))
            .map(|id| id.trim().to_owned())
            .collect();
    }
    Some(TemplateNetwork {
        version: number,
        subnet_id: primary.and_then(|nic| text_of(nic, "subnetId")),
        security_group_ids,
    })
}

/// The trimmed text of the direct child `name` of `fragment`, if it has any.
fn text_of(fragment: &str, name: &str) -> Option<String> {
    children(fragment, name)
        .first()
        .map(|text| text.trim().to_owned())
        .filter(|text| !text.is_empty())
}

/// The content of the first `<name>…</name>` anywhere in `xml` (depth-aware, so a nested
/// element of the same name does not end it early).
fn find_element<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let start = xml.find(&open)?;
    children(&xml[start..], name).into_iter().next()
}

/// The contents of the elements named `name` at the top level of `fragment` (elements
/// nested in others are not returned). Self-closing elements give "". Enough XML for EC2's
/// Query answers: no CDATA, no comments inside the parts read.
fn children<'a>(fragment: &'a str, name: &str) -> Vec<&'a str> {
    let mut found = Vec::new();
    let mut depth = 0usize;
    // Where the content of the open top-level element starts, if it is named `name`.
    let mut content_start: Option<usize> = None;
    let mut position = 0;
    while let Some(offset) = fragment[position..].find('<') {
        let tag_start = position + offset;
        let Some(length) = fragment[tag_start..].find('>') else {
            break;
        };
        let tag_end = tag_start + length + 1;
        let tag = &fragment[tag_start + 1..tag_end - 1];
        position = tag_end;
        if tag.starts_with('?') || tag.starts_with('!') {
            continue;
        }
        if let Some(closing) = tag.strip_prefix('/') {
            depth = depth.saturating_sub(1);
            if depth == 0
                && let Some(start) = content_start.take()
                && closing.trim() == name
            {
                found.push(&fragment[start..tag_start]);
            }
            continue;
        }
        let tag_name = tag
            .split(|c: char| c.is_whitespace() || c == '/')
            .next()
            .unwrap_or("");
        if tag.ends_with('/') {
            if depth == 0 && tag_name == name {
                found.push("");
            }
            continue;
        }
        if depth == 0 && tag_name == name {
            content_start = Some(tag_end);
        }
        depth += 1;
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const INTERFACE_VERSION: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<DescribeLaunchTemplateVersionsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15"><launchTemplateVersionSet><item><launchTemplateId>lt-0c643adf5ae8c6a72</launchTemplateId><launchTemplateName>drs-s-1</launchTemplateName><versionNumber>3</versionNumber><defaultVersion>true</defaultVersion><launchTemplateData><networkInterfaceSet><item><deviceIndex>1</deviceIndex><groupSet><groupId>sg-other</groupId></groupSet><subnetId>subnet-other</subnetId></item><item><deviceIndex>0</deviceIndex><groupSet><groupId>sg-a</groupId><groupId>sg-b</groupId></groupSet><privateIpAddressesSet><item><primary>true</primary></item></privateIpAddressesSet><subnetId>subnet-drill</subnetId></item></networkInterfaceSet><imageId>ami-12c6146b</imageId><instanceType>t3.medium</instanceType></launchTemplateData></item></launchTemplateVersionSet><requestId>request-id</requestId></DescribeLaunchTemplateVersionsResponse>"#;

    #[test]
    fn reads_the_primary_interface_of_the_default_version() {
        let network = parse_default_version(INTERFACE_VERSION).expect("a version");
        assert_eq!(
            network,
            TemplateNetwork {
                version: "3".to_owned(),
                subnet_id: Some("subnet-drill".to_owned()),
                security_group_ids: vec!["sg-a".to_owned(), "sg-b".to_owned()],
            }
        );
    }

    #[test]
    fn reads_top_level_security_groups_and_no_subnet() {
        let reply = "<R><launchTemplateVersionSet><item><versionNumber>2</versionNumber>\
                     <launchTemplateData><instanceType>t3.medium</instanceType>\
                     <securityGroupIdSet><item>sg-top</item></securityGroupIdSet>\
                     </launchTemplateData></item></launchTemplateVersionSet></R>";
        let network = parse_default_version(reply).expect("a version");
        assert_eq!(network.version, "2");
        assert_eq!(network.subnet_id, None);
        assert_eq!(network.security_group_ids, vec!["sg-top".to_owned()]);
        assert_eq!(
            parse_default_version("<R><launchTemplateVersionSet/></R>"),
            None
        );
    }

    #[test]
    fn reads_subnets() {
        let reply = "<DescribeSubnetsResponse><subnetSet><item><availabilityZone>us-west-2b</availabilityZone>\
                     <cidrBlock>172.31.16.0/20</cidrBlock><defaultForAz>true</defaultForAz>\
                     <ipv6CidrBlockAssociationSet><item><ipv6CidrBlock>2600::/64</ipv6CidrBlock></item>\
                     </ipv6CidrBlockAssociationSet><subnetId>subnet-b</subnetId></item>\
                     <item><availabilityZone>us-west-2a</availabilityZone><cidrBlock>172.31.0.0/20</cidrBlock>\
                     <subnetId>subnet-a</subnetId></item></subnetSet></DescribeSubnetsResponse>";
        let subnets = parse_subnets(reply);
        assert_eq!(subnets.len(), 2);
        assert_eq!(
            subnets[0],
            Subnet {
                subnet_id: "subnet-b".to_owned(),
                cidr: "172.31.16.0/20".to_owned(),
                availability_zone: "us-west-2b".to_owned(),
                default_for_az: true,
            }
        );
        assert_eq!(subnets[1].subnet_id, "subnet-a");
        assert!(!subnets[1].default_for_az);
        assert!(parse_subnets("<R><subnetSet/></R>").is_empty());
    }

    #[test]
    fn template_data_names_the_primary_interface() {
        let spec = TemplateSpec {
            image_id: "ami-1".to_owned(),
            instance_type: "t3.small".to_owned(),
            subnet_id: Some("subnet-1".to_owned()),
            security_group_ids: vec!["sg-1".to_owned(), "sg-2".to_owned()],
        };
        let params = template_data(&spec);
        let value = |name: &str| {
            params
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.as_str())
        };
        assert_eq!(
            value("LaunchTemplateData.NetworkInterface.1.DeviceIndex"),
            Some("0")
        );
        assert_eq!(
            value("LaunchTemplateData.NetworkInterface.1.SubnetId"),
            Some("subnet-1")
        );
        assert_eq!(
            value("LaunchTemplateData.NetworkInterface.1.SecurityGroupId.2"),
            Some("sg-2")
        );
        let bare = template_data(&TemplateSpec {
            subnet_id: None,
            security_group_ids: Vec::new(),
            ..spec
        });
        assert!(
            bare.iter()
                .all(|(key, _)| !key.contains("NetworkInterface"))
        );
    }
}
