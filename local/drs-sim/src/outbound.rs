//! Calls the simulator makes to other local services: EC2 in moto (Query API) and
//! EventBridge PutEvents (JSON 1.1). Plain HTTP to loopback only: the local cloud must never
//! send traffic anywhere else, so endpoints that are not loopback are refused up front.

use std::net::IpAddr;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

use crate::clock::Timestamp;

const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// Where EC2's answer is read from; a whole RunInstances reply is a few KiB.
const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct Endpoint {
    /// `http://host:port` without a trailing slash.
    base: String,
}

impl Endpoint {
    /// Accepts `http://` URLs whose host is a loopback address or `localhost`.
    pub fn parse(url: &str) -> Result<Self, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("{url:?} must start with http:// (plain HTTP to loopback)"))?;
        let authority = rest.split('/').next().unwrap_or("");
        let host = if let Some(bracketed) = authority.strip_prefix('[') {
            bracketed.split(']').next().unwrap_or("")
        } else {
            authority.split(':').next().unwrap_or("")
        };
        let is_loopback = host == "localhost"
            || host
                .parse::<IpAddr>()
                .map(|ip| ip.is_loopback())
                .unwrap_or(false);
        if !is_loopback {
            return Err(format!(
                "{url:?} is not a loopback address; the simulator only talks to 127.0.0.0/8, ::1 or localhost"
            ));
        }
        Ok(Self {
            base: format!("http://{authority}"),
        })
    }
}

/// EC2's error for a launch into a subnet with no free address, in the short form DRS's
/// job log shows (`rawError`): the code first, then the subnet and its arithmetic.
pub fn insufficient_addresses(subnet_id: &str, cidr: &str) -> String {
    let holds = cidr
        .split_once('/')
        .and_then(|(_, prefix)| prefix.parse::<u32>().ok())
        .filter(|prefix| (16..=28).contains(prefix))
        .map(|prefix| {
            format!(
                " ({cidr}: {} addresses less the 5 AWS reserves = {} instances, all in use)",
                1u64 << (32 - prefix),
                (1u64 << (32 - prefix)) - 5
            )
        })
        .unwrap_or_default();
    format!("InsufficientFreeAddressesInSubnet: subnet {subnet_id} has 0 free addresses{holds}")
}

#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    #[error("request to {endpoint} failed: {reason}")]
    Transport { endpoint: String, reason: String },
    #[error("{service} answered HTTP {status}: {message}")]
    Service {
        service: &'static str,
        status: u16,
        message: String,
    },
    #[error("unexpected answer from {service}: {reason}")]
    Unexpected {
        service: &'static str,
        reason: String,
    },
}

impl OutboundError {
    /// EC2's own error, `Code: message`, when EC2 answered with one (a capacity error such
    /// as `InsufficientInstanceCapacity` or `InsufficientFreeAddressesInSubnet`, a bad
    /// parameter, ...); `None` for transport failures and answers without an error code.
    pub fn ec2_error(&self) -> Option<&str> {
        match self {
            OutboundError::Service {
                service: "ec2",
                message,
                ..
            } => {
                let (code, _) = message.split_once(": ")?;
                let is_code =
                    !code.is_empty() && code.chars().all(|c| c.is_ascii_alphanumeric() || c == '.');
                is_code.then_some(message.as_str())
            }
            _ => None,
        }
    }
}

/// A launched EC2 instance as RunInstances reported it.
#[derive(Debug, Clone)]
pub struct LaunchedInstance {
    pub instance_id: String,
    pub private_ip: Option<String>,
    /// Only when the subnet maps public IPs on launch.
    pub public_ip: Option<String>,
    /// The subnet EC2 put the instance in.
    pub subnet_id: Option<String>,
}

pub struct RunInstance<'a> {
    /// The Region whose EC2 launches the instance (its source server's Region).
    pub region: &'a str,
    pub image_id: &'a str,
    pub instance_type: &'a str,
    pub subnet_id: Option<&'a str>,
    pub security_group_ids: &'a [String],
    /// The launch template (ID, version number) the instance is launched from: EC2 tags the
    /// instance with it. moto does not take the subnet from the template's network
    /// interface, so the subnet and security groups are passed as well.
    pub launch_template: Option<(&'a str, &'a str)>,
    pub tags: Vec<(String, String)>,
    /// Idempotency token, so that a retried call cannot launch twice.
    pub client_token: &'a str,
}

pub struct Outbound {
    client: Client<HttpConnector, Full<Bytes>>,
    /// The simulator's own Region (`SimConfig::region`): EventBridge is put there, and EC2
    /// calls about home-Region resources are signed for it.
    region: String,
    ec2: Option<Endpoint>,
    events: Option<Endpoint>,
    /// One RunInstances at a time: moto 5.2.5 hands out subnet addresses from a shared
    /// generator that is not thread-safe ("generator already executing", HTTP 500) when
    /// hundreds of launches arrive together, as a large wave makes them.
    run_instances: tokio::sync::Mutex<()>,
}

impl Outbound {
    pub fn new(region: &str, ec2: Option<Endpoint>, events: Option<Endpoint>) -> Self {
        Self {
            client: Client::builder(TokioExecutor::new()).build_http(),
            region: region.to_owned(),
            ec2,
            events,
            run_instances: tokio::sync::Mutex::new(()),
        }
    }

    /// The Region EC2 calls are signed for unless they name another.
    pub fn home_region(&self) -> &str {
        &self.region
    }

    pub fn has_ec2(&self) -> bool {
        self.ec2.is_some()
    }

    pub fn has_events(&self) -> bool {
        self.events.is_some()
    }

    /// A SigV4-shaped Authorization header. moto does not check signatures but routes by
    /// the credential scope: its service name picks the service, its Region the backend
    /// (moto keeps a separate EC2 per Region), so the scope must name both right.
    fn authorization(region: &str, service: &str, day: &str) -> String {
        format!(
            "AWS4-HMAC-SHA256 Credential=test/{day}/{region}/{service}/aws4_request, SignedHeaders=host;x-amz-date, Signature=0"
        )
    }

    async fn post(
        &self,
        endpoint: &Endpoint,
        region: &str,
        service: &'static str,
        content_type: &str,
        target: Option<&str>,
        body: String,
    ) -> Result<(u16, String), OutboundError> {
        let (amz_date, day) = Timestamp::now().amz_date_and_day();
        let mut request = hyper::Request::post(format!("{}/", endpoint.base))
            .header("content-type", content_type)
            .header("x-amz-date", amz_date)
            .header("authorization", Self::authorization(region, service, &day));
        if let Some(target) = target {
            request = request.header("x-amz-target", target);
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|error| OutboundError::Transport {
                endpoint: endpoint.base.clone(),
                reason: error.to_string(),
            })?;
        let transport_error = |reason: String| OutboundError::Transport {
            endpoint: endpoint.base.clone(),
            reason,
        };
        let response = tokio::time::timeout(REQUEST_TIMEOUT, self.client.request(request))
            .await
            .map_err(|_| transport_error(format!("no answer within {REQUEST_TIMEOUT:?}")))?
            .map_err(|error| transport_error(error.to_string()))?;
        let status = response.status().as_u16();
        let body = tokio::time::timeout(REQUEST_TIMEOUT, response.into_body().collect())
            .await
            .map_err(|_| transport_error("response body timed out".to_owned()))?
            .map_err(|error| transport_error(error.to_string()))?
            .to_bytes();
        if body.len() > MAX_RESPONSE_BYTES {
            return Err(OutboundError::Unexpected {
                service,
                reason: format!("response of {} bytes", body.len()),
            });
        }
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }

    /// One EC2 Query call to the EC2 of `region`.
    pub(crate) async fn ec2_call(
        &self,
        region: &str,
        params: Vec<(String, String)>,
    ) -> Result<String, OutboundError> {
        let Some(endpoint) = &self.ec2 else {
            return Err(OutboundError::Unexpected {
                service: "ec2",
                reason: "no EC2 endpoint configured".to_owned(),
            });
        };
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params)
            .finish();
        let (status, text) = self
            .post(
                endpoint,
                region,
                "ec2",
                "application/x-www-form-urlencoded; charset=utf-8",
                None,
                body,
            )
            .await?;
        if !(200..300).contains(&status) {
            let code = xml_text(&text, "Code").unwrap_or_default();
            let message = xml_text(&text, "Message").unwrap_or_else(|| text.clone());
            return Err(OutboundError::Service {
                service: "ec2",
                status,
                message: format!("{code}: {message}"),
            });
        }
        Ok(text)
    }

    pub async fn run_instance(
        &self,
        request: RunInstance<'_>,
    ) -> Result<LaunchedInstance, OutboundError> {
        let mut params: Vec<(String, String)> = vec![
            ("Action".into(), "RunInstances".into()),
            ("Version".into(), "2016-11-15".into()),
            ("ImageId".into(), request.image_id.into()),
            ("InstanceType".into(), request.instance_type.into()),
            ("MinCount".into(), "1".into()),
            ("MaxCount".into(), "1".into()),
            ("ClientToken".into(), request.client_token.into()),
        ];
        if let Some(subnet_id) = request.subnet_id {
            params.push(("SubnetId".into(), subnet_id.into()));
        }
        for (index, group) in request.security_group_ids.iter().enumerate() {
            params.push((format!("SecurityGroupId.{}", index + 1), group.clone()));
        }
        if let Some((template_id, version)) = request.launch_template {
            params.push(("LaunchTemplate.LaunchTemplateId".into(), template_id.into()));
            params.push(("LaunchTemplate.Version".into(), version.into()));
        }
        if !request.tags.is_empty() {
            params.push(("TagSpecification.1.ResourceType".into(), "instance".into()));
            for (index, (key, value)) in request.tags.into_iter().enumerate() {
                let number = index + 1;
                params.push((format!("TagSpecification.1.Tag.{number}.Key"), key));
                params.push((format!("TagSpecification.1.Tag.{number}.Value"), value));
            }
        }
        let reply = {
            let _one_at_a_time = self.run_instances.lock().await;
            match self.ec2_call(request.region, params).await {
                Ok(reply) => reply,
                Err(error) => {
                    return Err(self
                        .as_ec2_reports(request.region, error, request.subnet_id)
                        .await);
                }
            }
        };
        let instance_id =
            xml_text(&reply, "instanceId").ok_or_else(|| OutboundError::Unexpected {
                service: "ec2",
                reason: "RunInstances reply has no instanceId".to_owned(),
            })?;
        Ok(LaunchedInstance {
            instance_id,
            private_ip: xml_text(&reply, "privateIpAddress"),
            // The instance's own public address; its network interfaces call it publicIp.
            public_ip: xml_text(&reply, "ipAddress"),
            subnet_id: xml_text(&reply, "subnetId"),
        })
    }

    /// moto answers a RunInstances it cannot serve (a subnet out of addresses) with an
    /// HTML page and HTTP 500; EC2 answers with an error code, which DRS puts in its job
    /// log. The page becomes EC2's `InsufficientFreeAddressesInSubnet` when the subnet
    /// has no free address left, and a one-line `InternalError` otherwise.
    async fn as_ec2_reports(
        &self,
        region: &str,
        error: OutboundError,
        subnet_id: Option<&str>,
    ) -> OutboundError {
        let OutboundError::Service {
            service,
            status,
            message,
        } = &error
        else {
            return error;
        };
        let lower = message.to_ascii_lowercase();
        let is_page = lower.contains("<html") || lower.contains("<!doctype");
        if *status < 500 || !is_page {
            return error;
        }
        let free = match subnet_id {
            Some(subnet) => self.free_addresses(region, subnet).await,
            None => None,
        };
        let message = match (free, subnet_id) {
            (Some((0, cidr)), Some(subnet)) => insufficient_addresses(subnet, &cidr),
            _ => format!("InternalError: EC2 answered HTTP {status} without an error document"),
        };
        OutboundError::Service {
            service,
            status: if message.starts_with("InternalError") {
                *status
            } else {
                400
            },
            message,
        }
    }

    /// The subnet's `AvailableIpAddressCount` and CIDR, when EC2 tells them.
    async fn free_addresses(&self, region: &str, subnet_id: &str) -> Option<(u64, String)> {
        let params = vec![
            ("Action".to_owned(), "DescribeSubnets".to_owned()),
            ("Version".to_owned(), "2016-11-15".to_owned()),
            ("SubnetId.1".to_owned(), subnet_id.to_owned()),
        ];
        let reply = self.ec2_call(region, params).await.ok()?;
        let free = xml_text(&reply, "availableIpAddressCount")?.parse().ok()?;
        Some((free, xml_text(&reply, "cidrBlock").unwrap_or_default()))
    }

    /// TerminateInstances in the EC2 of `region` (where the instances were launched).
    pub async fn terminate_instances(
        &self,
        region: &str,
        instance_ids: &[String],
    ) -> Result<(), OutboundError> {
        let mut params: Vec<(String, String)> = vec![
            ("Action".into(), "TerminateInstances".into()),
            ("Version".into(), "2016-11-15".into()),
        ];
        for (index, id) in instance_ids.iter().enumerate() {
            params.push((format!("InstanceId.{}", index + 1), id.clone()));
        }
        self.ec2_call(region, params).await.map(|_| ())
    }

    /// PutEvents one event (AWS service-event shape in `event`) on the default bus.
    pub async fn put_event(&self, event: &Value) -> Result<(), OutboundError> {
        let Some(endpoint) = &self.events else {
            return Err(OutboundError::Unexpected {
                service: "events",
                reason: "no EventBridge endpoint configured".to_owned(),
            });
        };
        let entry = json!({
            "Source": event["source"],
            "DetailType": event["detail-type"],
            "Detail": event["detail"].to_string(),
            "Resources": event["resources"],
            "EventBusName": "default",
        });
        let body = json!({ "Entries": [entry] }).to_string();
        let (status, text) = self
            .post(
                endpoint,
                &self.region,
                "events",
                "application/x-amz-json-1.1",
                Some("AWSEvents.PutEvents"),
                body,
            )
            .await?;
        if !(200..300).contains(&status) {
            return Err(OutboundError::Service {
                service: "events",
                status,
                message: text,
            });
        }
        let reply: Value =
            serde_json::from_str(&text).map_err(|error| OutboundError::Unexpected {
                service: "events",
                reason: format!("PutEvents reply is not JSON: {error}"),
            })?;
        if reply["FailedEntryCount"].as_u64().unwrap_or(0) > 0 {
            return Err(OutboundError::Service {
                service: "events",
                status,
                message: format!("PutEvents failed an entry: {reply}"),
            });
        }
        Ok(())
    }
}

/// The text of the first `<tag>…</tag>` element. EC2's Query replies are simple enough that
/// this is all the XML reading the simulator needs.
fn xml_text(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = xml.find(&open)? + open.len();
    let length = xml[start..].find(&close)?;
    Some(xml[start..start + length].trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_endpoints_are_accepted() {
        assert!(Endpoint::parse("http://127.0.0.1:5000").is_ok());
        assert!(Endpoint::parse("http://localhost:4566/").is_ok());
        assert!(Endpoint::parse("http://[::1]:4566").is_ok());
        // Parsed only, never contacted: a private address is refused as an endpoint.
        let private = std::net::Ipv4Addr::new(10, 0, 0, 1);
        assert!(Endpoint::parse(&format!("http://{private}:5000")).is_err());
        assert!(Endpoint::parse("http://example.com").is_err());
        assert!(Endpoint::parse("https://127.0.0.1:5000").is_err());
    }

    #[test]
    fn ec2_capacity_errors_read_as_their_code_and_a_line() {
        let capacity = OutboundError::Service {
            service: "ec2",
            status: 500,
            message: "InsufficientInstanceCapacity: We currently do not have sufficient m5.large capacity in the Availability Zone you requested (us-east-1a).".into(),
        };
        assert_eq!(
            capacity.ec2_error(),
            Some(
                "InsufficientInstanceCapacity: We currently do not have sufficient m5.large capacity in the Availability Zone you requested (us-east-1a)."
            )
        );
        let page = OutboundError::Service {
            service: "ec2",
            status: 500,
            message: ": <!DOCTYPE html><html><title>500 Internal Server Error</title></html>"
                .into(),
        };
        assert_eq!(page.ec2_error(), None, "no code, no EC2 error");
        let events = OutboundError::Service {
            service: "events",
            status: 400,
            message: "ValidationException: bad".into(),
        };
        assert_eq!(events.ec2_error(), None);
        assert_eq!(
            insufficient_addresses("subnet-1", "10.0.1.0/28"),
            "InsufficientFreeAddressesInSubnet: subnet subnet-1 has 0 free addresses (10.0.1.0/28: 16 addresses less the 5 AWS reserves = 11 instances, all in use)"
        );
        assert_eq!(
            insufficient_addresses("subnet-1", ""),
            "InsufficientFreeAddressesInSubnet: subnet subnet-1 has 0 free addresses"
        );
    }

    #[test]
    fn reads_run_instances_reply() {
        let reply = "<RunInstancesResponse><instancesSet><item><instanceId>i-0123456789abcdef0</instanceId>\
                     <privateIpAddress>10.0.1.5</privateIpAddress></item></instancesSet></RunInstancesResponse>";
        assert_eq!(
            xml_text(reply, "instanceId").as_deref(),
            Some("i-0123456789abcdef0")
        );
        assert_eq!(
            xml_text(reply, "privateIpAddress").as_deref(),
            Some("10.0.1.5")
        );
        assert_eq!(xml_text(reply, "missing"), None);
    }
}
