//! A tally of the AWS API requests that pass through the gateway, by service, operation
//! and caller, with the most recent ones in order: what `drplan bench` counts per
//! execution. `GET /_drplan/gateway/requests` reads it, `DELETE` starts it again.
//!
//! The caller is the SDK family of the `User-Agent`: `aws-sdk-rust` (the functions),
//! `boto3` (moto's Step Functions engine invoking Lambda, or Python clients), `other`.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use axum::body::{Body, Bytes};
use hyper::{HeaderMap, Method, Response, StatusCode, header};
use serde::Serialize;
use serde_json::json;

use super::{GatewayState, error_response, json_response};
use crate::error::Result;
use crate::seed::control_call;
use crate::upstream::AwsClient;

/// The gateway endpoint of the tally.
pub const REQUESTS_PATH: &str = "/_drplan/gateway/requests";
/// How many requests the ordered list keeps (the tally itself counts them all).
const RECENT_CAPACITY: usize = 512;

/// What one request was.
#[derive(Clone, Debug, Serialize)]
pub struct RequestRecord {
    /// Order of arrival since the last reset, from 1.
    pub seq: u64,
    pub service: String,
    pub operation: String,
    pub caller: &'static str,
    pub status: u16,
    pub millis: f64,
}

#[derive(Clone, Debug, Default, Serialize)]
struct Tally {
    count: u64,
    /// The requests' latencies at the gateway, summed.
    total_millis: f64,
    /// Each latency rounded up to a whole millisecond (Lambda's billing unit), summed.
    billed_millis: u64,
}

#[derive(Debug, Default)]
pub(super) struct RequestTally {
    next_seq: u64,
    tallies: BTreeMap<(String, String, &'static str), Tally>,
    recent: VecDeque<RequestRecord>,
}

impl RequestTally {
    pub(super) fn record(
        &mut self,
        service: String,
        operation: String,
        caller: &'static str,
        status: StatusCode,
        elapsed: Duration,
    ) {
        self.next_seq += 1;
        let millis = elapsed.as_secs_f64() * 1000.0;
        let tally = self
            .tallies
            .entry((service.clone(), operation.clone(), caller))
            .or_default();
        tally.count += 1;
        tally.total_millis += millis;
        tally.billed_millis += millis.ceil() as u64;
        if self.recent.len() >= RECENT_CAPACITY {
            self.recent.pop_front();
        }
        self.recent.push_back(RequestRecord {
            seq: self.next_seq,
            service,
            operation,
            caller,
            status: status.as_u16(),
            millis,
        });
    }

    fn to_json(&self) -> serde_json::Value {
        let tallies: Vec<serde_json::Value> = self
            .tallies
            .iter()
            .map(|((service, operation, caller), tally)| {
                json!({"service": service, "operation": operation, "caller": caller,
                       "count": tally.count, "total_millis": tally.total_millis,
                       "billed_millis": tally.billed_millis})
            })
            .collect();
        json!({"total": self.next_seq, "tallies": tallies, "recent": self.recent})
    }
}

/// The gateway's tally so far (`GET`), as a client of the gateway reads it: `total`,
/// `tallies` by service, operation and caller, and the `recent` requests in order.
pub async fn request_tally(gateway: &AwsClient) -> Result<serde_json::Value> {
    control_call(gateway, Method::GET, REQUESTS_PATH, None).await
}

/// Starts the gateway's tally again (`DELETE`).
pub async fn reset_request_tally(gateway: &AwsClient) -> Result<()> {
    control_call(gateway, Method::DELETE, REQUESTS_PATH, None)
        .await
        .map(drop)
}

/// Counts one request in the gateway's tally.
pub(super) fn record(
    state: &GatewayState,
    service: &str,
    operation: String,
    caller: &'static str,
    status: StatusCode,
    elapsed: Duration,
) {
    let mut tally = match state.requests.lock() {
        Ok(tally) => tally,
        Err(poisoned) => poisoned.into_inner(),
    };
    tally.record(service.to_string(), operation, caller, status, elapsed);
}

/// `GET` reads the tally, `DELETE` empties it.
pub(super) fn control(state: &GatewayState, method: &Method) -> Response<Body> {
    let mut tally = match state.requests.lock() {
        Ok(tally) => tally,
        Err(poisoned) => poisoned.into_inner(),
    };
    match *method {
        Method::GET => json_response(StatusCode::OK, &tally.to_json()),
        Method::DELETE => {
            *tally = RequestTally::default();
            json_response(StatusCode::OK, &tally.to_json())
        }
        _ => error_response(
            StatusCode::METHOD_NOT_ALLOWED,
            "ValidationException",
            "use GET or DELETE",
        ),
    }
}

/// The SDK family that sent a request, from its `User-Agent` headers.
pub(super) fn caller(headers: &HeaderMap) -> &'static str {
    let agents = [header::USER_AGENT.as_str(), "x-amz-user-agent"]
        .iter()
        .filter_map(|name| headers.get(*name).and_then(|value| value.to_str().ok()))
        .collect::<Vec<_>>()
        .join(" ");
    if agents.contains("aws-sdk-rust") {
        "aws-sdk-rust"
    } else if agents.contains("Boto3") || agents.contains("botocore") {
        "boto3"
    } else {
        "other"
    }
}

/// The API operation of a request, as well as its protocol tells it: `X-Amz-Target`
/// (JSON protocols), `Action` (query protocols), the path (REST protocols).
pub(super) fn operation(
    service: &str,
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &Bytes,
) -> String {
    if let Some(target) = headers
        .get("x-amz-target")
        .and_then(|value| value.to_str().ok())
    {
        return target.rsplit('.').next().unwrap_or(target).to_string();
    }
    let action = |text: &[u8]| {
        form_urlencoded::parse(text)
            .find(|(name, _)| name == "Action")
            .map(|(_, value)| value.into_owned())
    };
    if let Some(action) = query.and_then(|query| action(query.as_bytes())) {
        return action;
    }
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/x-www-form-urlencoded"));
    if form && let Some(action) = action(body) {
        return action;
    }
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let query = query.unwrap_or_default();
    match service {
        "drs" => segments
            .first()
            .map_or_else(|| format!("{method} /"), |first| (*first).to_string()),
        "lambda" => match super::lambda::invoked_function(path) {
            // Counted when the background invocation ends (see `lambda::invoke_in_background`).
            Some(function)
                if headers
                    .get("x-amz-invocation-type")
                    .is_some_and(|value| value.as_bytes() == b"Event") =>
            {
                format!("InvokeAsync {function}")
            }
            Some(function) => format!("Invoke {function}"),
            None => format!("{method} /{}", segments.get(1).copied().unwrap_or_default()),
        },
        "s3" => {
            let object = segments.len() > 1;
            match (method.as_str(), object) {
                ("GET", true) => "GetObject",
                ("PUT", true) => "PutObject",
                ("HEAD", true) => "HeadObject",
                ("DELETE", true) => "DeleteObject",
                ("GET", false) if query.contains("list-type=2") => "ListObjectsV2",
                ("GET", false) => "ListObjects",
                ("PUT", false) => "CreateBucket",
                ("HEAD", false) => "HeadBucket",
                _ => "other",
            }
            .to_string()
        }
        "route53" => match (method.as_str(), &segments[..]) {
            ("POST", [_, "hostedzone", _, "rrset", ..]) => "ChangeResourceRecordSets",
            ("GET", [_, "hostedzone", _, "rrset", ..]) => "ListResourceRecordSets",
            ("GET", [_, "change", ..]) => "GetChange",
            ("GET", [_, "hostedzonesbyname", ..]) => "ListHostedZonesByName",
            ("GET", [_, "hostedzone", _]) => "GetHostedZone",
            ("GET", [_, "hostedzone"]) => "ListHostedZones",
            ("POST", [_, "healthcheck"]) => "CreateHealthCheck",
            ("GET", [_, "healthcheck", _, "status"]) => "GetHealthCheckStatus",
            ("GET", [_, "healthcheck", _]) => "GetHealthCheck",
            ("GET", [_, "healthcheck"]) => "ListHealthChecks",
            _ => "other",
        }
        .to_string(),
        _ => format!(
            "{method} /{}",
            segments.first().copied().unwrap_or_default()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::{Upstreams, serve};
    use crate::upstream::HttpClient;

    #[tokio::test]
    async fn a_client_reads_and_resets_the_tally_without_being_counted() {
        // Upstreams nobody listens on: the request fails, and is counted all the same.
        let nowhere = "http://127.0.0.1:9".to_owned();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port");
        let handle = serve(
            listener,
            Upstreams {
                moto: nowhere.clone(),
                simulator: nowhere,
                lambda: None,
                lambda_functions: Default::default(),
                default_region: "us-east-1".into(),
                account_id: "123456789012".into(),
            },
            false,
        )
        .await
        .expect("the gateway");
        let gateway = AwsClient::new(
            HttpClient::new(),
            &format!("http://{}", handle.addr()),
            "us-east-1",
        );
        let _ = gateway
            .json("sqs", "1.0", "AmazonSQS", "ListQueues", &json!({}))
            .await;
        let tally = request_tally(&gateway).await.expect("the tally");
        assert_eq!(tally["total"], 1, "{tally}");
        assert_eq!(tally["tallies"][0]["service"], "sqs", "{tally}");
        assert_eq!(
            request_tally(&gateway).await.expect("the tally")["total"],
            1
        );
        reset_request_tally(&gateway).await.expect("a reset");
        let tally = request_tally(&gateway).await.expect("the tally");
        assert_eq!(tally["total"], 0, "{tally}");
        handle.shutdown().await;
    }
}
