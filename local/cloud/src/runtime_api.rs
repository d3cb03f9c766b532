//! A Lambda Runtime API for one process and one event, on loopback: what `drplan bench`
//! starts a function binary (or its Python baseline) under to time a cold start. It
//! hands the event out once, reports every step on a channel, and holds each later
//! `next` open until the process is stopped (as Lambda freezes a sandbox between events).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use hyper::{Method, Request, Response, StatusCode, header};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::error::Result;

/// The request id of the one event (Lambda's are UUIDs).
const REQUEST_ID: &str = "8476a536-e9f4-11e8-9739-2dfe598c3fcd";
/// The X-Ray trace header handed with the event.
const TRACE_ID: &str = "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=0";
/// The invocation's deadline, from when the event is handed out: Lambda's longest timeout.
const DEADLINE: Duration = Duration::from_secs(900);
/// The largest answer read from the process.
const BODY_LIMIT: usize = 64 << 20;

/// What the Runtime API saw, in order.
#[derive(Debug)]
pub enum RuntimeSignal {
    /// The process asked for an event (`GET /runtime/invocation/next`): the first one is
    /// when it is ready.
    Next(Instant),
    /// The event was handed to the HTTP server to send.
    Handed(Instant),
    /// The process posted its answer: a response, or an error (`/error`).
    Answered {
        at: Instant,
        error: bool,
        body: String,
    },
    /// The process failed to initialise (`POST /runtime/init/error`).
    InitError(String),
}

struct ApiState {
    event: Bytes,
    function_arn: String,
    handed: AtomicBool,
    signals: mpsc::UnboundedSender<RuntimeSignal>,
}

/// A running Runtime API; stops serving when dropped.
#[derive(Debug)]
pub struct RuntimeApi {
    addr: SocketAddr,
    signals: mpsc::UnboundedReceiver<RuntimeSignal>,
    task: JoinHandle<()>,
}

impl RuntimeApi {
    /// Serves `event` to the function `function_arn` on a free loopback port.
    pub async fn serve(function_arn: &str, event: Vec<u8>) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (sender, signals) = mpsc::unbounded_channel();
        let state = Arc::new(ApiState {
            event: Bytes::from(event),
            function_arn: function_arn.to_owned(),
            handed: AtomicBool::new(false),
            signals: sender,
        });
        let router = Router::new().fallback(handle).with_state(state);
        let task = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, router).await {
                eprintln!("drplan Runtime API stand-in stopped: {error}");
            }
        });
        Ok(Self {
            addr,
            signals,
            task,
        })
    }

    /// `AWS_LAMBDA_RUNTIME_API` for the process: host and port.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The next thing the process did; `None` once the server has stopped.
    pub async fn signal(&mut self) -> Option<RuntimeSignal> {
        self.signals.recv().await
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(State(api): State<Arc<ApiState>>, request: Request<Body>) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path();
    if parts.method == Method::GET && path.ends_with("/runtime/invocation/next") {
        let _ = api.signals.send(RuntimeSignal::Next(Instant::now()));
        if api.handed.swap(true, Ordering::SeqCst) {
            // One event per process: later polls wait until it is stopped.
            std::future::pending::<()>().await;
        }
        let response = event_response(&api);
        let _ = api.signals.send(RuntimeSignal::Handed(Instant::now()));
        return response;
    }
    let is_post = parts.method == Method::POST;
    let init_error = is_post && path.ends_with("/init/error");
    let answer = is_post && path.contains("/runtime/invocation/");
    if !init_error && !answer {
        return empty(StatusCode::NOT_FOUND);
    }
    let body = match axum::body::to_bytes(body, BODY_LIMIT).await {
        Ok(body) => String::from_utf8_lossy(&body).into_owned(),
        Err(_) => return empty(StatusCode::BAD_REQUEST),
    };
    let signal = if init_error {
        RuntimeSignal::InitError(body)
    } else {
        RuntimeSignal::Answered {
            at: Instant::now(),
            error: path.ends_with("/error"),
            body,
        }
    };
    let _ = api.signals.send(signal);
    json(StatusCode::ACCEPTED, Body::from(r#"{"status":"OK"}"#))
}

/// The event with the headers the Lambda runtime clients read.
fn event_response(api: &ApiState) -> Response<Body> {
    let deadline = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        + DEADLINE;
    let mut response = json(StatusCode::OK, Body::from(api.event.clone()));
    let headers = [
        ("lambda-runtime-aws-request-id", REQUEST_ID.to_owned()),
        (
            "lambda-runtime-deadline-ms",
            deadline.as_millis().to_string(),
        ),
        (
            "lambda-runtime-invoked-function-arn",
            api.function_arn.clone(),
        ),
        ("lambda-runtime-trace-id", TRACE_ID.to_owned()),
    ];
    for (name, value) in headers {
        if let Ok(value) = header::HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

fn json(status: StatusCode, body: Body) -> Response<Body> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

fn empty(status: StatusCode) -> Response<Body> {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    response
}

#[cfg(test)]
mod tests {
    use http_body_util::Full;

    use super::*;
    use crate::upstream::HttpClient;

    fn request(method: Method, url: String, body: &str) -> Request<Full<Bytes>> {
        Request::builder()
            .method(method)
            .uri(url)
            .body(Full::new(Bytes::from(body.to_owned())))
            .expect("a request")
    }

    #[tokio::test]
    async fn hands_the_event_out_once_and_reports_the_answer() {
        let arn = "arn:aws:lambda:us-east-1:123456789012:function:discover";
        let mut api = RuntimeApi::serve(arn, br#"{"plan":"shop"}"#.to_vec())
            .await
            .expect("the Runtime API");
        let base = format!("http://{}/2018-06-01/runtime", api.addr());
        let http = HttpClient::new();
        let next = http
            .send(request(Method::GET, format!("{base}/invocation/next"), ""))
            .await
            .expect("the event");
        assert_eq!(next.status, StatusCode::OK);
        assert_eq!(next.body_text(), r#"{"plan":"shop"}"#);
        assert_eq!(next.headers["lambda-runtime-aws-request-id"], REQUEST_ID);
        assert_eq!(next.headers["lambda-runtime-invoked-function-arn"], arn);
        assert!(matches!(api.signal().await, Some(RuntimeSignal::Next(_))));
        assert!(matches!(api.signal().await, Some(RuntimeSignal::Handed(_))));

        let answered = http
            .send(request(
                Method::POST,
                format!("{base}/invocation/{REQUEST_ID}/error"),
                r#"{"errorType":"drplan.InvalidInput"}"#,
            ))
            .await
            .expect("the answer is taken");
        assert_eq!(answered.status, StatusCode::ACCEPTED);
        match api.signal().await {
            Some(RuntimeSignal::Answered { error, body, .. }) => {
                assert!(error);
                assert_eq!(body, r#"{"errorType":"drplan.InvalidInput"}"#);
            }
            other => panic!("expected the answer, got {other:?}"),
        }

        // A second `next` is held open: the process gets no second event.
        let second = tokio::time::timeout(
            Duration::from_millis(300),
            http.send(request(Method::GET, format!("{base}/invocation/next"), "")),
        )
        .await;
        assert!(second.is_err(), "a second event was handed out");
        assert!(matches!(api.signal().await, Some(RuntimeSignal::Next(_))));

        let unknown = http
            .send(request(Method::GET, format!("{base}/other"), ""))
            .await
            .expect("an answer");
        assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn reports_an_init_error() {
        let mut api = RuntimeApi::serve("arn:aws:lambda:us-east-1:1:function:f", Vec::new())
            .await
            .expect("the Runtime API");
        let url = format!("http://{}/2018-06-01/runtime/init/error", api.addr());
        let answer = HttpClient::new()
            .send(request(Method::POST, url, "no DRPLAN_BUCKET"))
            .await
            .expect("an answer");
        assert_eq!(answer.status, StatusCode::ACCEPTED);
        match api.signal().await {
            Some(RuntimeSignal::InitError(body)) => assert_eq!(body, "no DRPLAN_BUCKET"),
            other => panic!("expected the init error, got {other:?}"),
        }
    }
}
