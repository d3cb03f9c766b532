//! Lambda's Invoke API in front of `cargo lambda watch`, which knows functions by their
//! binary names and answers a function error with HTTP 500.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use http_body_util::Full;
use hyper::{HeaderMap, Method, Request, Response, StatusCode, header};

use super::{GatewayState, error_response};
use crate::error::{LocalCloudError, Result};
use crate::ids::random_uuid;
use crate::upstream::Answer;

const INVOKE_PATH_PREFIX: &str = "/2015-03-31/functions/";
const INVOKE_PATH_SUFFIX: &str = "/invocations";

/// The function named in an Invoke path, as a plain name: ARNs
/// (`arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]`), partial ARNs
/// (`ACCOUNT:function:NAME`) and `NAME:QUALIFIER` all become `NAME`.
pub(super) fn invoked_function(path: &str) -> Option<String> {
    let encoded = path
        .strip_prefix(INVOKE_PATH_PREFIX)?
        .strip_suffix(INVOKE_PATH_SUFFIX)?;
    if encoded.is_empty() || encoded.contains('/') {
        return None;
    }
    let name_or_arn = percent_encoding::percent_decode_str(encoded)
        .decode_utf8()
        .ok()?;
    Some(function_name(&name_or_arn))
}

/// The function a GetFunction (`GET /2015-03-31/functions/{NameOrArn}`) or
/// GetFunctionConfiguration (`.../configuration`) path names, as a plain name, and
/// whether it asks for the configuration only.
pub(super) fn described_function(path: &str) -> Option<(String, bool)> {
    let rest = path.strip_prefix(INVOKE_PATH_PREFIX)?.trim_end_matches('/');
    let (encoded, configuration_only) = match rest.strip_suffix("/configuration") {
        Some(encoded) => (encoded, true),
        None => (rest, false),
    };
    if encoded.is_empty() || encoded.contains('/') {
        return None;
    }
    let name_or_arn = percent_encoding::percent_decode_str(encoded)
        .decode_utf8()
        .ok()?;
    Some((function_name(&name_or_arn), configuration_only))
}

/// GetFunction / GetFunctionConfiguration of a served function: Active, as a deployed
/// function of the template would be (arm64, provided.al2023).
pub(super) fn describe(
    state: &GatewayState,
    region: &str,
    function: &str,
    configuration_only: bool,
) -> Response<Body> {
    let configuration = serde_json::json!({
        "FunctionName": function,
        "FunctionArn": format!(
            "arn:aws:lambda:{region}:{}:function:{function}",
            state.upstreams.account_id
        ),
        "Runtime": "provided.al2023",
        "Handler": "bootstrap",
        "Architectures": ["arm64"],
        "PackageType": "Zip",
        "Version": "$LATEST",
        "State": "Active",
        "LastUpdateStatus": "Successful",
    });
    let document = if configuration_only {
        configuration
    } else {
        serde_json::json!({ "Configuration": configuration })
    };
    let mut response = Response::new(Body::from(document.to_string()));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

/// The plain function name of a name, a partial ARN or an ARN.
pub fn function_name(name_or_arn: &str) -> String {
    let parts: Vec<&str> = name_or_arn.split(':').collect();
    let name = match parts.iter().position(|part| *part == "function") {
        Some(index) => parts.get(index + 1).copied().unwrap_or(name_or_arn),
        None => parts.first().copied().unwrap_or(name_or_arn),
    };
    name.to_string()
}

/// Lambda's Invoke path for `function`, its name percent-encoded.
fn invoke_path(function: &str) -> String {
    let encoded: String =
        percent_encoding::utf8_percent_encode(function, percent_encoding::NON_ALPHANUMERIC)
            .collect();
    format!("{INVOKE_PATH_PREFIX}{encoded}{INVOKE_PATH_SUFFIX}")
}

/// Invokes `function` synchronously through the gateway at `gateway`, as Lambda's Invoke
/// API (RequestResponse) does for an SDK: its answer, a function error included.
pub async fn invoke_through(
    gateway: &crate::upstream::AwsClient,
    function: &str,
    payload: Vec<u8>,
) -> Result<Answer> {
    gateway
        .rest(
            "lambda",
            Method::POST,
            &invoke_path(function),
            "application/json",
            payload,
        )
        .await
}

/// Handles `POST /2015-03-31/functions/{NameOrArn}/invocations` with Lambda's semantics
/// for the three invocation types.
pub(super) async fn invoke(
    state: &Arc<GatewayState>,
    function: &str,
    headers: &HeaderMap,
    payload: Bytes,
) -> Response<Body> {
    let request_id = random_uuid();
    let invocation_type = headers
        .get("x-amz-invocation-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("RequestResponse");
    if state.upstreams.lambda.is_none() {
        return function_not_found(function);
    }
    let mut response = match invocation_type {
        "DryRun" => empty(StatusCode::NO_CONTENT),
        "Event" => {
            invoke_in_background(state, function, payload);
            empty(StatusCode::ACCEPTED)
        }
        _ => {
            let queued_from = std::time::Instant::now();
            let _slot = state.function_slots.acquire(function).await;
            let queued = Queued(queued_from.elapsed());
            let mut response = match invoke_function(state, function, payload).await {
                Ok(answer) => match state.lambda_faults.take(function) {
                    Some(error_type) => super::faults::crashed(function, &error_type),
                    None => invocation_response(answer),
                },
                Err(error) => error_response(
                    StatusCode::BAD_GATEWAY,
                    "ServiceException",
                    &format!("cargo lambda watch did not answer for {function}: {error}"),
                ),
            };
            response.extensions_mut().insert(queued);
            response
        }
    };
    if let Ok(value) = header::HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-amzn-requestid", value);
    }
    response
}

/// Lambda answers a function error with 200, `X-Amz-Function-Error: Unhandled` and the
/// error document as the payload; `cargo lambda watch` answers it with 500.
fn invocation_response(answer: Answer) -> Response<Body> {
    let function_failed = answer.status == StatusCode::INTERNAL_SERVER_ERROR;
    let status = if function_failed || answer.status.is_success() {
        StatusCode::OK
    } else {
        answer.status
    };
    let mut response = Response::new(Body::from(answer.body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    headers.insert(
        "x-amz-executed-version",
        header::HeaderValue::from_static("$LATEST"),
    );
    if function_failed {
        headers.insert(
            "x-amz-function-error",
            header::HeaderValue::from_static("Unhandled"),
        );
    }
    response
}

/// How long a synchronous invocation waited for its function to be free: not the
/// function's time (kept in the response's extensions, never sent).
#[derive(Clone, Copy, Debug)]
pub(super) struct Queued(pub(super) std::time::Duration);

/// One slot per function: `cargo lambda watch` serves each function from one process
/// (`--concurrency 1`), so a second invocation would wait inside it, timed as if the
/// function ran. Waiting here instead keeps the wait apart.
#[derive(Debug, Default)]
pub(super) struct FunctionSlots {
    slots: std::sync::Mutex<std::collections::HashMap<String, Arc<tokio::sync::Semaphore>>>,
}

impl FunctionSlots {
    pub(super) async fn acquire(
        &self,
        function: &str,
    ) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let slot = {
            // A poisoned map still holds valid semaphores.
            let mut slots = self
                .slots
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            Arc::clone(
                slots
                    .entry(function.to_owned())
                    .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(1))),
            )
        };
        // Never closed, so this is always Some.
        slot.acquire_owned().await.ok()
    }
}

/// Runs `function` with `payload` on `cargo lambda watch` and returns its raw answer.
pub(super) async fn invoke_function(
    state: &GatewayState,
    function: &str,
    payload: Bytes,
) -> Result<Answer> {
    let Some(base_url) = state.upstreams.lambda.as_deref() else {
        return Err(LocalCloudError::InvalidInput(format!(
            "no functions are served, so {function} cannot be invoked"
        )));
    };
    let url = format!("{base_url}{}", invoke_path(function));
    let request = Request::builder()
        .method(Method::POST)
        .uri(&url)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(payload))
        .map_err(|error| LocalCloudError::Http {
            url,
            message: error.to_string(),
        })?;
    state.http.send(request).await
}

/// Asynchronous invocation, as Lambda does for `Event` invocations and EventBridge
/// targets: the caller does not wait, and failures only show in the log.
/// Asynchronous invocations under way at once; the rest wait in the gateway.
pub(super) const ASYNC_INVOCATION_SLOTS: usize = 2;

pub(super) fn invoke_in_background(state: &Arc<GatewayState>, function: &str, payload: Bytes) {
    let state = Arc::clone(state);
    let function = function.to_string();
    tokio::spawn(async move {
        // The function's own slot first: an event waiting for a busy function must not
        // hold one of the slots other functions' events need.
        let _function_slot = state.function_slots.acquire(&function).await;
        // Never closed: the semaphore lives as long as the gateway's state.
        let Ok(_slot) = state.async_invocations.acquire().await else {
            return;
        };
        let started = std::time::Instant::now();
        let outcome = invoke_function(&state, &function, payload).await;
        // Counted here, where its duration is known (the request that caused it, an
        // Event invoke or PutEvents, is counted apart).
        let status = outcome
            .as_ref()
            .map_or(StatusCode::BAD_GATEWAY, |answer| answer.status);
        super::requests::record(
            &state,
            "lambda",
            format!("Invoke {function}"),
            "async",
            status,
            started.elapsed(),
        );
        match outcome {
            Ok(answer) if answer.status.is_success() => {}
            Ok(answer) => eprintln!(
                "gateway: asynchronous invocation of {function} failed ({}): {}",
                answer.status,
                answer.body_text()
            ),
            Err(error) => {
                eprintln!("gateway: asynchronous invocation of {function} failed: {error}")
            }
        }
    });
}

fn function_not_found(function: &str) -> Response<Body> {
    error_response(
        StatusCode::NOT_FOUND,
        "ResourceNotFoundException",
        &format!(
            "Function not found: {function} (the local cloud serves no functions: \
             there are no function crates under functions/)"
        ),
    )
}

fn empty(status: StatusCode) -> Response<Body> {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_function_runs_one_invocation_at_a_time_and_others_do_not_wait_for_it() {
        let slots = FunctionSlots::default();
        let first = slots.acquire("trigger").await;
        assert!(first.is_some());
        // Another function is not held up by a busy one.
        let other = tokio::time::timeout(
            std::time::Duration::from_millis(100),
            slots.acquire("notify"),
        )
        .await;
        assert!(matches!(other, Ok(Some(_))));
        // The same function waits until the first invocation is done.
        let busy = tokio::time::timeout(
            std::time::Duration::from_millis(100),
            slots.acquire("trigger"),
        )
        .await;
        assert!(busy.is_err(), "a second slot while the first is held");
        drop(first);
        let free = tokio::time::timeout(
            std::time::Duration::from_millis(100),
            slots.acquire("trigger"),
        )
        .await;
        assert!(matches!(free, Ok(Some(_))));
    }

    #[test]
    fn reads_the_function_of_get_function_and_its_configuration() {
        assert_eq!(
            described_function(
                "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A1%3Afunction%3Adrplan-hook-record/configuration"
            ),
            Some(("drplan-hook-record".to_owned(), true))
        );
        assert_eq!(
            described_function("/2015-03-31/functions/notify"),
            Some(("notify".to_owned(), false))
        );
        assert_eq!(described_function("/2015-03-31/functions/"), None);
        assert_eq!(
            described_function("/2015-03-31/functions/notify/policy"),
            None
        );
    }

    #[test]
    fn maps_arns_to_plain_names() {
        assert_eq!(function_name("launch"), "launch");
        assert_eq!(function_name("launch:live"), "launch");
        assert_eq!(function_name("123456789012:function:launch"), "launch");
        assert_eq!(
            function_name("arn:aws:lambda:us-east-1:123456789012:function:launch:3"),
            "launch"
        );
        assert_eq!(
            invoked_function("/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A1%3Afunction%3Anotify/invocations")
                .as_deref(),
            Some("notify")
        );
    }

    #[test]
    fn a_function_error_becomes_lambdas_shape() {
        let answer = Answer {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            headers: HeaderMap::new(),
            body: Bytes::from_static(br#"{"errorType":"Boom","errorMessage":"boom"}"#),
        };
        let response = invocation_response(answer);
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response
                .headers()
                .get("x-amz-function-error")
                .map(|v| v.as_bytes()),
            Some(&b"Unhandled"[..])
        );
    }
}
