//! The DRS API on the wire: restJson1 routes, error responses, call recording, throttling.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use crate::clock::Timestamp;
use crate::model::CallRecord;
use crate::sim::Simulator;
use crate::{control, drs, failback};

pub fn router(sim: Arc<Simulator>) -> Router {
    Router::new()
        .merge(control::router())
        .merge(failback::router())
        .route(
            "/tags/{*resource_arn}",
            get(list_tags).post(tag_resource).delete(untag_resource),
        )
        .route("/{operation}", post(operation))
        .with_state(sim)
}

/// The DRS exceptions, with the HTTP statuses service-2.json gives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Validation,
    ServiceQuotaExceeded,
    Conflict,
    ResourceNotFound,
    Throttling,
}

impl ErrorKind {
    fn status(self) -> StatusCode {
        match self {
            ErrorKind::Validation => StatusCode::BAD_REQUEST,
            ErrorKind::ServiceQuotaExceeded => StatusCode::PAYMENT_REQUIRED,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::ResourceNotFound => StatusCode::NOT_FOUND,
            ErrorKind::Throttling => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Validation => "ValidationException",
            ErrorKind::ServiceQuotaExceeded => "ServiceQuotaExceededException",
            ErrorKind::Conflict => "ConflictException",
            ErrorKind::ResourceNotFound => "ResourceNotFoundException",
            ErrorKind::Throttling => "ThrottlingException",
        }
    }
}

/// A DRS error response: the exception's members go in the JSON body, except
/// `retryAfterSeconds`, which DRS binds to the `Retry-After` header.
#[derive(Debug, Clone)]
pub struct DrsError {
    pub kind: ErrorKind,
    pub message: String,
    pub members: Map<String, Value>,
    pub retry_after_seconds: Option<u64>,
}

impl DrsError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            members: Map::new(),
            retry_after_seconds: None,
        }
    }

    pub fn with(mut self, member: &str, value: impl Into<Value>) -> Self {
        self.members.insert(member.to_owned(), value.into());
        self
    }

    /// ValidationException with `reason` and one entry in `fieldList`.
    pub fn validation(reason: &str, field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        Self::new(ErrorKind::Validation, message.clone())
            .with("reason", reason)
            .with("fieldList", json!([{ "name": field, "message": message }]))
    }

    pub fn not_found(resource_type: &str, resource_id: &str) -> Self {
        Self::new(
            ErrorKind::ResourceNotFound,
            format!("{resource_type} {resource_id} was not found"),
        )
        .with("resourceId", resource_id)
        .with("resourceType", resource_type)
    }

    fn into_response(self, request_id: &str) -> Response {
        let mut body = self.members;
        body.insert("message".into(), json!(self.message));
        body.insert("code".into(), json!(self.kind.name()));
        if let Some(seconds) = self.retry_after_seconds {
            // Also in the body, for clients that read the member rather than the header.
            body.insert("retryAfterSeconds".into(), json!(seconds.to_string()));
        }
        let mut response = (self.kind.status(), Value::Object(body).to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(
            "x-amzn-errortype",
            HeaderValue::from_static(self.kind.name()),
        );
        if let Some(seconds) = self.retry_after_seconds {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if let Ok(value) = HeaderValue::from_str(request_id) {
            headers.insert("x-amzn-requestid", value);
        }
        response
    }
}

pub type DrsResult = Result<(StatusCode, Value), DrsError>;

/// Parses a request body; an empty body is an empty object (SDKs send none for some calls).
pub fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, DrsError> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|error| {
        DrsError::validation(
            "cannotParse",
            "body",
            format!("request body could not be read: {error}"),
        )
    })
}

fn ok_response(status: StatusCode, body: Value, request_id: &str) -> Response {
    let mut response = (status, body.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(value) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", value);
    }
    response
}

/// Applies an injected throttle, runs the operation, and records the call.
fn run_recorded(
    sim: &Arc<Simulator>,
    operation: &str,
    resource_ids: Option<Vec<String>>,
    handler: impl FnOnce() -> DrsResult,
) -> Response {
    let (request_id, throttle) = sim.with_state(|state| {
        let request_id = state.ids.request_id();
        let throttle = match state.faults.throttles.get_mut(operation) {
            Some(fault) if fault.remaining > 0 => {
                fault.remaining -= 1;
                Some(fault.retry_after_seconds)
            }
            _ => None,
        };
        (request_id, throttle)
    });
    let result = match throttle {
        Some(retry_after_seconds) => Err(DrsError {
            retry_after_seconds: Some(retry_after_seconds),
            ..DrsError::new(ErrorKind::Throttling, "Rate exceeded")
                .with("serviceCode", "drs")
                .with("quotaCode", "injected-throttle")
        }),
        None => handler(),
    };
    let (status, error) = match &result {
        Ok((status, _)) => (status.as_u16(), None),
        Err(error) => (
            error.kind.status().as_u16(),
            Some(error.kind.name().to_owned()),
        ),
    };
    sim.with_state(|state| {
        state.calls.push(CallRecord {
            operation: operation.to_owned(),
            time: Timestamp::now(),
            status,
            resource_ids,
            error,
        })
    });
    match result {
        Ok((status, body)) => ok_response(status, body, &request_id),
        Err(error) => error.into_response(&request_id),
    }
}

/// The IDs a call acts on, kept in the call record so that tests can tell e.g. which
/// servers a StartRecovery asked for.
fn resource_ids_of(operation: &str, body: &[u8]) -> Option<Vec<String>> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let ids: Vec<String> = match operation {
        "StartRecovery" => value["sourceServers"]
            .as_array()?
            .iter()
            .filter_map(|server| server["sourceServerID"].as_str().map(str::to_owned))
            .collect(),
        "StopFailback" | "ReverseReplication" => {
            vec![value["recoveryInstanceID"].as_str()?.to_owned()]
        }
        "TerminateRecoveryInstances" | "StartFailbackLaunch" => value["recoveryInstanceIDs"]
            .as_array()?
            .iter()
            .filter_map(|id| id.as_str().map(str::to_owned))
            .collect(),
        _ => return None,
    };
    Some(ids)
}

async fn operation(
    State(sim): State<Arc<Simulator>>,
    Path(operation): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let resource_ids = resource_ids_of(&operation, &body);
    let region = request_region(&headers).unwrap_or_else(|| sim.config.region.clone());
    let sim_for_handler = sim.clone();
    let operation_name = operation.clone();
    run_recorded(&sim, &operation, resource_ids, move || {
        drs::dispatch(&sim_for_handler, &region, &operation_name, &body)
    })
}

/// The Region of a SigV4-signed request (`Credential=AKID/DATE/REGION/drs/aws4_request`):
/// the simulator serves DRS in every Region, each seeing only its own servers, jobs and
/// recovery instances. Unsigned requests go to the configured Region.
fn request_region(headers: &HeaderMap) -> Option<String> {
    let authorization = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let credential = authorization
        .split([' ', ','])
        .find_map(|part| part.trim().strip_prefix("Credential="))?;
    let parts: Vec<&str> = credential.split('/').collect();
    match parts.as_slice() {
        [.., region, _service, "aws4_request"] if !region.is_empty() => Some((*region).to_owned()),
        _ => None,
    }
}

fn decode_arn(raw: &str) -> String {
    // axum decodes the path already; a client that double-encodes (or a proxy that
    // re-encodes) would leave %3A in place, which no ARN contains, so decode once more.
    if raw.contains('%') {
        form_urlencoded::parse(format!("a={}", raw.replace('+', "%2B")).as_bytes())
            .next()
            .map(|(_, value)| value.into_owned())
            .unwrap_or_else(|| raw.to_owned())
    } else {
        raw.to_owned()
    }
}

async fn list_tags(
    State(sim): State<Arc<Simulator>>,
    Path(resource_arn): Path<String>,
) -> Response {
    let arn = decode_arn(&resource_arn);
    let sim_for_handler = sim.clone();
    run_recorded(&sim, "ListTagsForResource", None, move || {
        drs::list_tags(&sim_for_handler, &arn)
    })
}

async fn tag_resource(
    State(sim): State<Arc<Simulator>>,
    Path(resource_arn): Path<String>,
    body: Bytes,
) -> Response {
    let arn = decode_arn(&resource_arn);
    let sim_for_handler = sim.clone();
    let response = run_recorded(&sim, "TagResource", None, move || {
        drs::tag_resource(&sim_for_handler, &arn, &body)
    });
    // Probe selectors match source server tags.
    sim.sync_probe_listeners();
    response
}

async fn untag_resource(
    State(sim): State<Arc<Simulator>>,
    Path(resource_arn): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let arn = decode_arn(&resource_arn);
    // tagKeys repeats (`?tagKeys=a&tagKeys=b`), which serde_urlencoded cannot collect.
    let tag_keys: Vec<String> = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .filter(|(name, _)| name == "tagKeys")
        .map(|(_, value)| value.into_owned())
        .collect();
    let sim_for_handler = sim.clone();
    let response = run_recorded(&sim, "UntagResource", None, move || {
        drs::untag_resource(&sim_for_handler, &arn, &tag_keys)
    });
    sim.sync_probe_listeners();
    response
}
