//! One address in front of the local cloud. Requests go where their SigV4 credential
//! scope and `X-Amz-Target` say: DRS to the simulator, Lambda Invoke to
//! `cargo lambda watch`, EventBridge PutEvents to the rules' targets (and the journal),
//! everything else to moto. Plans stored or started and EC2 instance state changes are
//! also told to the simulator ([`watch`]), whose probe stand-ins follow them.

mod ec2_listing;
mod events;
mod faults;
mod health_checks;
mod lambda;
mod requests;
mod s3_events;
mod watch;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use http_body_util::Full;
use hyper::{HeaderMap, Method, Request, Response, StatusCode, header};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use events::{Delivery, JournalEntry};
pub use faults::LAMBDA_FAULTS_PATH;
pub use lambda::invoke_through;
pub use requests::{REQUESTS_PATH, RequestRecord, request_tally, reset_request_tally};

use crate::error::Result;
use crate::upstream::HttpClient;

/// Where the gateway sends what it does not answer itself.
#[derive(Clone, Debug)]
pub struct Upstreams {
    /// moto's base URL, e.g. `http://127.0.0.1:40001`.
    pub moto: String,
    /// The DRS simulator's base URL (its API and its `/_drplan/` control API).
    pub simulator: String,
    /// `cargo lambda watch`'s base URL, when functions are being served.
    pub lambda: Option<String>,
    /// The function binaries `cargo lambda watch` serves: Lambda's
    /// GetFunction/GetFunctionConfiguration describe these (others go to moto).
    pub lambda_functions: std::collections::BTreeSet<String>,
    /// The Region assumed for requests that do not say (unsigned ones).
    pub default_region: String,
    /// The account moto and the simulator use; EventBridge events carry it.
    pub account_id: String,
}

/// Prefix of the gateway's own endpoints.
pub const GATEWAY_CONTROL_PREFIX: &str = "/_drplan/gateway/";
/// Prefix of the simulator's control API, forwarded to it.
pub const SIMULATOR_CONTROL_PREFIX: &str = "/_drplan/";
/// How many put events the journal keeps.
const JOURNAL_CAPACITY: usize = 1000;

struct GatewayState {
    upstreams: Upstreams,
    http: HttpClient,
    journal: Mutex<Vec<JournalEntry>>,
    /// Asynchronous invocations (EventBridge targets, `InvocationType: Event`) wait here
    /// for a slot, as in Lambda's own event queue: a burst of events (a 250-server
    /// wave's launch results) must not flood `cargo lambda watch`, which serves each
    /// function from one process and stalls every function when its queue overflows.
    async_invocations: tokio::sync::Semaphore,
    /// One invocation of a function at a time, as `cargo lambda watch` runs it (one
    /// process per function): the rest queue here, where the wait can be left out of the
    /// invocation's time (Lambda would give each its own sandbox).
    function_slots: lambda::FunctionSlots,
    /// Every AWS request passed on, counted (`GET /_drplan/gateway/requests`).
    requests: Mutex<requests::RequestTally>,
    /// Crashes to answer instead of functions' results (tests of retries).
    lambda_faults: faults::LambdaFaults,
    /// What moto drops of the health checks created (`health_checks`).
    health_check_alarms: health_checks::HealthCheckAlarms,
    log_requests: bool,
}

/// A running gateway; stops when [`shutdown`](Self::shutdown) is awaited or when dropped.
#[derive(Debug)]
pub struct GatewayHandle {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl GatewayHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            // In-flight Lambda invocations can take long; do not wait for them.
            if tokio::time::timeout(Duration::from_secs(2), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }
}

impl Drop for GatewayHandle {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Serves the gateway on `listener` until shut down.
pub async fn serve(
    listener: TcpListener,
    upstreams: Upstreams,
    log_requests: bool,
) -> Result<GatewayHandle> {
    let addr = listener.local_addr()?;
    let state = Arc::new(GatewayState {
        upstreams,
        http: HttpClient::new(),
        journal: Mutex::new(Vec::new()),
        async_invocations: tokio::sync::Semaphore::new(lambda::ASYNC_INVOCATION_SLOTS),
        function_slots: lambda::FunctionSlots::default(),
        requests: Mutex::new(requests::RequestTally::default()),
        lambda_faults: faults::LambdaFaults::default(),
        health_check_alarms: Default::default(),
        log_requests,
    });
    let router = Router::new().fallback(handle).with_state(state);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let server = axum::serve(listener, router).with_graceful_shutdown(async move {
            let _ = stopped.await;
        });
        if let Err(error) = server.await {
            eprintln!("drplan local gateway stopped: {error}");
        }
    });
    Ok(GatewayHandle {
        addr,
        stop: Some(stop),
        task: Some(task),
    })
}

/// Where one request goes.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    GatewayControl,
    SimulatorControl,
    PutEvents,
    Drs,
    LambdaInvoke {
        function: String,
    },
    LambdaDescribe {
        function: String,
        configuration_only: bool,
    },
    Moto,
}

fn route(method: &Method, path: &str, query: Option<&str>, headers: &HeaderMap) -> Route {
    if path.starts_with(GATEWAY_CONTROL_PREFIX) {
        return Route::GatewayControl;
    }
    if path.starts_with(SIMULATOR_CONTROL_PREFIX) {
        return Route::SimulatorControl;
    }
    let target = headers
        .get("x-amz-target")
        .and_then(|value| value.to_str().ok());
    if target == Some("AWSEvents.PutEvents") {
        return Route::PutEvents;
    }
    match credential_scope(headers, query) {
        Some(scope) if scope.service == "drs" => Route::Drs,
        Some(scope) if scope.service == "lambda" && method == Method::POST => {
            match lambda::invoked_function(path) {
                Some(function) => Route::LambdaInvoke { function },
                None => Route::Moto,
            }
        }
        Some(scope) if scope.service == "lambda" && method == Method::GET => {
            match lambda::described_function(path) {
                Some((function, configuration_only)) => Route::LambdaDescribe {
                    function,
                    configuration_only,
                },
                None => Route::Moto,
            }
        }
        _ => Route::Moto,
    }
}

/// The Region and service of a SigV4 credential scope (`AKID/DATE/REGION/SERVICE/aws4_request`).
#[derive(Debug, PartialEq, Eq)]
struct CredentialScope {
    region: String,
    service: String,
}

fn credential_scope(headers: &HeaderMap, query: Option<&str>) -> Option<CredentialScope> {
    let from_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|authorization| {
            authorization
                .split([' ', ','])
                .find_map(|part| part.trim().strip_prefix("Credential="))
                .map(str::to_string)
        });
    // Presigned URLs carry the scope in the query string instead.
    let credential = from_header.or_else(|| {
        form_urlencoded::parse(query?.as_bytes())
            .find(|(name, _)| name == "X-Amz-Credential")
            .map(|(_, value)| value.into_owned())
    })?;
    let parts: Vec<&str> = credential.split('/').collect();
    match parts.as_slice() {
        [.., region, service, "aws4_request"] => Some(CredentialScope {
            region: (*region).to_string(),
            service: (*service).to_string(),
        }),
        _ => None,
    }
}

async fn handle(State(state): State<Arc<GatewayState>>, request: Request<Body>) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(body) => body,
        Err(error) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                "InvalidRequest",
                &format!("could not read the request body: {error}"),
            );
        }
    };
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().map(str::to_string);
    let route = route(&parts.method, &path, query.as_deref(), &parts.headers);
    let scope = credential_scope(&parts.headers, query.as_deref());
    if state.log_requests {
        let service = scope
            .as_ref()
            .map_or("unsigned", |scope| scope.service.as_str());
        eprintln!(
            "gateway: {} {} [{service}] -> {route:?}",
            parts.method, path
        );
    }
    let started = std::time::Instant::now();
    let counted = match &route {
        Route::GatewayControl | Route::SimulatorControl => None,
        _ => {
            let service = match (&route, &scope) {
                (Route::PutEvents, _) => "events".to_string(),
                (_, Some(scope)) => scope.service.clone(),
                (_, None) => "unsigned".to_string(),
            };
            let operation = requests::operation(
                &service,
                &parts.method,
                &path,
                query.as_deref(),
                &parts.headers,
                &body,
            );
            Some((service, operation, requests::caller(&parts.headers)))
        }
    };
    let region = scope
        .map(|scope| scope.region)
        .unwrap_or_else(|| state.upstreams.default_region.clone());
    let response = match route {
        Route::GatewayControl if path.trim_end_matches('/') == REQUESTS_PATH => {
            requests::control(&state, &parts.method)
        }
        Route::GatewayControl if path.trim_end_matches('/') == LAMBDA_FAULTS_PATH => {
            state.lambda_faults.control(&parts.method, &body)
        }
        Route::GatewayControl => events::control(&state, &parts.method, &path),
        Route::SimulatorControl | Route::Drs => {
            forward(&state, &state.upstreams.simulator, &parts, body).await
        }
        Route::PutEvents => events::put_events(&state, &region, &body).await,
        Route::LambdaInvoke { function } => {
            lambda::invoke(&state, &function, &parts.headers, body).await
        }
        Route::LambdaDescribe {
            function,
            configuration_only,
        } if state.upstreams.lambda.is_some()
            && state.upstreams.lambda_functions.contains(&function) =>
        {
            lambda::describe(&state, &region, &function, configuration_only)
        }
        // A function moto knows (made with CreateFunction), or none: moto answers.
        Route::LambdaDescribe { .. } => forward(&state, &state.upstreams.moto, &parts, body).await,
        Route::Moto => {
            let watched = counted.as_ref().and_then(|(service, operation, _)| {
                watch::watched(service, operation, &path, &body)
            });
            if let Some(watched) = &watched {
                watch::before(&state, watched).await;
            }
            let health_check = counted.as_ref().and_then(|(service, _, _)| {
                health_checks::completed(service, &parts.method, &path, &body)
            });
            let object_change = counted.as_ref().and_then(|(service, _, _)| {
                s3_events::object_change(service, &parts.method, &path, query.as_deref(), &body)
            });
            let stopped = parts
                .headers
                .get("x-amz-target")
                .is_some_and(|t| t == "AWSStepFunctions.StopExecution")
                .then(|| body.clone());
            let body = counted
                .as_ref()
                .and_then(|(service, operation, _)| {
                    ec2_listing::complete_listing(service, operation, &body)
                })
                .unwrap_or(body);
            let mut response = forward(&state, &state.upstreams.moto, &parts, body).await;
            if let Some(call) = health_check {
                response = health_checks::complete(&state, call, response).await;
            }
            if let Some(watched) = watched
                && response.status().is_success()
            {
                watch::after(&state, watched).await;
            }
            if let Some(change) = object_change
                && response.status().is_success()
            {
                // Delivered after the answer, as S3 does.
                tokio::spawn(s3_events::send(state.clone(), region.clone(), change));
            }
            if let Some(request) = stopped
                && response.status().is_success()
            {
                // Delivered after the answer, as EventBridge does.
                tokio::spawn(events::execution_stopped(
                    state.clone(),
                    region.clone(),
                    request,
                ));
            }
            response
        }
    };
    if let Some((service, operation, caller)) = counted {
        // An invocation is timed from when its function was free (`function_slots`).
        let queued = response
            .extensions()
            .get::<lambda::Queued>()
            .map_or(Duration::ZERO, |queued| queued.0);
        requests::record(
            &state,
            &service,
            operation,
            caller,
            response.status(),
            started.elapsed().saturating_sub(queued),
        );
    }
    response
}

/// Headers that describe one connection, not the message, so they are not passed on.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    // The gateway has read the whole body already.
    "expect",
];

fn copy_headers(from: &HeaderMap, to: &mut HeaderMap) {
    for (name, value) in from {
        if !HOP_BY_HOP.contains(&name.as_str()) && name != header::CONTENT_LENGTH {
            to.append(name.clone(), value.clone());
        }
    }
}

/// Passes the request to `base_url` unchanged (the Host header included, so that URLs in
/// the answer, like SQS queue URLs, point at the gateway) and the answer back unchanged.
async fn forward(
    state: &GatewayState,
    base_url: &str,
    parts: &hyper::http::request::Parts,
    body: Bytes,
) -> Response<Body> {
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|value| value.as_str())
        .unwrap_or("/");
    let url = format!("{base_url}{path_and_query}");
    let mut builder = Request::builder().method(parts.method.clone()).uri(&url);
    if let Some(headers) = builder.headers_mut() {
        copy_headers(&parts.headers, headers);
    }
    let request = match builder.body(Full::new(body)) {
        Ok(request) => request,
        Err(error) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                "InvalidRequest",
                &error.to_string(),
            );
        }
    };
    match state.http.send(request).await {
        Ok(answer) => {
            let mut response = Response::new(Body::from(answer.body));
            *response.status_mut() = answer.status;
            copy_headers(&answer.headers, response.headers_mut());
            // A HEAD answer has no body but tells the length of the one GET would return
            // (S3 HeadObject's ContentLength).
            if parts.method == Method::HEAD
                && let Some(length) = answer.headers.get(header::CONTENT_LENGTH)
            {
                response
                    .headers_mut()
                    .insert(header::CONTENT_LENGTH, length.clone());
            }
            response
        }
        Err(error) => error_response(
            StatusCode::BAD_GATEWAY,
            "ServiceUnavailableException",
            &format!("the local cloud could not reach {base_url}: {error}"),
        ),
    }
}

/// An error in the awsJson shape most SDKs understand for any service.
fn error_response(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    let body = serde_json::json!({ "__type": code, "message": message, "Message": message });
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    if let Ok(code) = header::HeaderValue::from_str(code) {
        headers.insert("x-amzn-errortype", code);
    }
    response
}

fn json_response(status: StatusCode, body: &serde_json::Value) -> Response<Body> {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(service: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let authorization = format!(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/eu-west-1/{service}/aws4_request, SignedHeaders=host, Signature=abc"
        );
        headers.insert(
            header::AUTHORIZATION,
            header::HeaderValue::from_str(&authorization).expect("a valid header"),
        );
        headers
    }

    #[test]
    fn routes_by_credential_scope_and_target() {
        assert_eq!(
            route(&Method::GET, "/sourceservers", None, &signed("drs")),
            Route::Drs
        );
        assert_eq!(route(&Method::POST, "/", None, &signed("ec2")), Route::Moto);
        assert_eq!(
            route(
                &Method::POST,
                "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Alaunch/invocations",
                None,
                &signed("lambda")
            ),
            Route::LambdaInvoke {
                function: "launch".to_string()
            }
        );
        assert_eq!(
            route(
                &Method::GET,
                "/2015-03-31/functions/",
                None,
                &signed("lambda")
            ),
            Route::Moto
        );
        let mut put_events = signed("events");
        put_events.insert(
            "x-amz-target",
            header::HeaderValue::from_static("AWSEvents.PutEvents"),
        );
        assert_eq!(
            route(&Method::POST, "/", None, &put_events),
            Route::PutEvents
        );
        assert_eq!(
            route(&Method::GET, "/_drplan/state", None, &HeaderMap::new()),
            Route::SimulatorControl
        );
        assert_eq!(
            route(
                &Method::GET,
                "/_drplan/gateway/events",
                None,
                &HeaderMap::new()
            ),
            Route::GatewayControl
        );
        assert_eq!(
            route(
                &Method::GET,
                "/bucket/key",
                Some("X-Amz-Credential=AKID%2F20240101%2Fus-east-1%2Fdrs%2Faws4_request"),
                &HeaderMap::new()
            ),
            Route::Drs
        );
    }

    #[test]
    fn reads_the_region_of_the_scope() {
        let scope = credential_scope(&signed("drs"), None).expect("a scope");
        assert_eq!(scope.region, "eu-west-1");
    }
}
