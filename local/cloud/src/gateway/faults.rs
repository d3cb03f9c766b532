//! Lambda faults on demand, so that tests can show what drplan does when a function
//! crashes or times out: `POST /_drplan/gateway/lambda-faults` with
//! `{"function": "launch-wave", "error_type": "Sandbox.Timedout", "count": 1}` makes
//! the next `count` synchronous invocations of the function run as usual (its work is
//! done: jobs started, records written) and answer with a function error of that type
//! instead of the function's result — what Step Functions sees when a Lambda times out
//! or its sandbox dies after the work and before the answer, the hardest case for a
//! retry. `DELETE` clears every fault.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::body::{Body, Bytes};
use hyper::{Method, Response, StatusCode};
use serde::Deserialize;
use serde_json::json;

use super::{error_response, json_response};

/// The gateway endpoint of Lambda faults.
pub const LAMBDA_FAULTS_PATH: &str = "/_drplan/gateway/lambda-faults";

/// Faults to inject, by function name: the error type and how many more invocations.
#[derive(Default)]
pub(super) struct LambdaFaults(Mutex<HashMap<String, (String, u32)>>);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultRequest {
    function: String,
    error_type: String,
    #[serde(default = "one")]
    count: u32,
}

fn one() -> u32 {
    1
}

impl LambdaFaults {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (String, u32)>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The error type to answer this invocation of `function` with, if a fault is due.
    pub(super) fn take(&self, function: &str) -> Option<String> {
        let mut faults = self.lock();
        let (error_type, left) = faults.get_mut(function)?;
        let error_type = error_type.clone();
        *left -= 1;
        if *left == 0 {
            faults.remove(function);
        }
        Some(error_type)
    }

    pub(super) fn control(&self, method: &Method, body: &Bytes) -> Response<Body> {
        match *method {
            Method::POST => match serde_json::from_slice::<FaultRequest>(body) {
                Ok(fault) if fault.count > 0 && !fault.function.is_empty() => {
                    self.lock()
                        .insert(fault.function.clone(), (fault.error_type, fault.count));
                    json_response(StatusCode::OK, &json!({ "function": fault.function }))
                }
                Ok(_) => error_response(
                    StatusCode::BAD_REQUEST,
                    "ValidationException",
                    "function must be named and count must be at least 1",
                ),
                Err(error) => error_response(
                    StatusCode::BAD_REQUEST,
                    "ValidationException",
                    &format!(
                        "expected {{\"function\": NAME, \"error_type\": TYPE, \"count\": N}}: {error}"
                    ),
                ),
            },
            Method::DELETE => {
                self.lock().clear();
                json_response(StatusCode::OK, &json!({}))
            }
            _ => error_response(
                StatusCode::METHOD_NOT_ALLOWED,
                "ValidationException",
                "use POST or DELETE",
            ),
        }
    }
}

/// The answer Lambda gives for a function error of `error_type`.
pub(super) fn crashed(function: &str, error_type: &str) -> Response<Body> {
    let body = json!({
        "errorType": error_type,
        "errorMessage": format!("{function}: a fault injected by the local cloud after the function ran"),
    });
    let mut response = Response::new(Body::from(body.to_string()));
    let headers = response.headers_mut();
    headers.insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    headers.insert(
        "x-amz-function-error",
        hyper::header::HeaderValue::from_static("Unhandled"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_is_used_up_after_its_count() {
        let faults = LambdaFaults::default();
        let body = Bytes::from_static(
            br#"{"function": "launch-wave", "error_type": "Lambda.Unknown", "count": 2}"#,
        );
        assert_eq!(
            faults.control(&Method::POST, &body).status(),
            StatusCode::OK
        );
        assert_eq!(faults.take("notify"), None);
        assert_eq!(
            faults.take("launch-wave").as_deref(),
            Some("Lambda.Unknown")
        );
        assert_eq!(
            faults.take("launch-wave").as_deref(),
            Some("Lambda.Unknown")
        );
        assert_eq!(faults.take("launch-wave"), None);
        let bad = Bytes::from_static(br#"{"function": "x"}"#);
        assert_eq!(
            faults.control(&Method::POST, &bad).status(),
            StatusCode::BAD_REQUEST
        );
    }
}
