//! A raw EC2 Query client for the moto server of the tests that need EC2 (started by
//! `drplan_drs_sim::moto`).

use std::collections::{BTreeMap, BTreeSet};

pub use drplan_drs_sim::moto::MotoServer;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// An `aws-sdk-ec2` client of moto's EC2 in `region` (moto keeps one backend per Region,
/// chosen by the request's signing Region).
pub fn ec2_client(moto: &MotoServer, region: &str) -> aws_sdk_ec2::Client {
    let config = aws_sdk_ec2::Config::builder()
        .behavior_version(aws_sdk_ec2::config::BehaviorVersion::latest())
        .region(aws_sdk_ec2::config::Region::new(region.to_owned()))
        .credentials_provider(aws_sdk_ec2::config::Credentials::new(
            "test",
            "test",
            None,
            None,
            "drs-sim-tests",
        ))
        .endpoint_url(&moto.endpoint)
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .build();
    aws_sdk_ec2::Client::from_conf(config)
}

/// One EC2 Query API call to moto; returns the XML reply.
pub async fn ec2(moto: &MotoServer, params: &[(&str, &str)]) -> String {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params.iter().copied())
        .extend_pairs([("Version", "2016-11-15")])
        .finish();
    let request = hyper::Request::post(format!("{}/", moto.endpoint))
        .header("content-type", "application/x-www-form-urlencoded")
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=0",
        )
        .body(Full::new(Bytes::from(body)))
        .expect("request");
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let response = client.request(request).await.expect("moto answers");
    assert!(
        response.status().is_success(),
        "EC2 {params:?}: {}",
        response.status()
    );
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    String::from_utf8_lossy(&bytes).into_owned()
}

pub fn first(xml: &str, tag: &str) -> String {
    let open = format!("<{tag}>");
    let start = xml
        .find(&open)
        .map(|at| at + open.len())
        .unwrap_or_else(|| panic!("no <{tag}> in {xml}"));
    let end = xml[start..]
        .find(&format!("</{tag}>"))
        .expect("closing tag");
    xml[start..start + end].to_owned()
}

/// The contents of every `<tag>…</tag>` (not self-closing), in document order.
pub fn all(xml: &str, tag: &str) -> Vec<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut found = Vec::new();
    let mut rest = xml;
    while let Some(at) = rest.find(&open) {
        rest = &rest[at + open.len()..];
        let end = rest.find(&close).expect("closing tag");
        found.push(rest[..end].to_owned());
        rest = &rest[end..];
    }
    found
}

/// An instance as DescribeInstances shows it.
#[derive(Debug)]
pub struct Ec2Instance {
    pub subnet_id: String,
    pub state: String,
    pub tags: BTreeMap<String, String>,
    /// Every security group named anywhere in the instance (instance and interfaces).
    pub security_group_ids: BTreeSet<String>,
    pub public_ip: Option<String>,
}

pub async fn describe_instance(moto: &MotoServer, instance_id: &str) -> Ec2Instance {
    let xml = ec2(
        moto,
        &[
            ("Action", "DescribeInstances"),
            ("InstanceId.1", instance_id),
        ],
    )
    .await;
    let tag_set = first(&xml, "tagSet");
    Ec2Instance {
        subnet_id: first(&xml, "subnetId"),
        state: first(&first(&xml, "instanceState"), "name"),
        tags: tag_set
            .split("<item>")
            .skip(1)
            .map(|item| (first(item, "key"), first(item, "value")))
            .collect(),
        security_group_ids: all(&xml, "groupId").into_iter().collect(),
        public_ip: all(&xml, "ipAddress").into_iter().next(),
    }
}
