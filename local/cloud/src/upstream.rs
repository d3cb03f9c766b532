//! A plain HTTP/1 client for the local cloud's own calls to moto, the simulator and
//! `cargo lambda watch`, all on loopback, plus helpers for the AWS wire protocols.

use std::time::Duration;

use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{HeaderMap, Method, Request, StatusCode, header};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::error::{LocalCloudError, Result};

/// Long enough for `cargo lambda watch` to compile a function on its first invocation.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(600);

/// An answer, fully read.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Cheap to clone; clones share one connection pool.
#[derive(Clone, Debug)]
pub struct HttpClient {
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Default for HttpClient {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpClient {
    pub fn new() -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            // moto (werkzeug) closes idle connections on its own schedule; a short idle
            // timeout avoids reusing a connection it has just closed.
            .pool_idle_timeout(Duration::from_secs(2))
            .build(connector);
        Self { client }
    }

    pub async fn send(&self, request: Request<Full<Bytes>>) -> Result<Answer> {
        let url = request.uri().to_string();
        let response = tokio::time::timeout(REQUEST_TIMEOUT, self.client.request(request))
            .await
            .map_err(|_| LocalCloudError::Http {
                url: url.clone(),
                message: format!("no answer within {} s", REQUEST_TIMEOUT.as_secs()),
            })?
            .map_err(|error| LocalCloudError::Http {
                url: url.clone(),
                message: error_chain(&error),
            })?;
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|error| LocalCloudError::Http {
                url,
                message: error_chain(&error),
            })?
            .to_bytes();
        Ok(Answer {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// A SigV4-shaped Authorization header. Nothing here checks signatures; moto and the
/// gateway only read the credential scope to know which service a request is for.
pub fn authorization_for(service: &str, region: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential=drplanlocal/20240101/{region}/{service}/aws4_request, \
         SignedHeaders=host;x-amz-date, Signature=0000000000000000000000000000000000000000000000000000000000000000"
    )
}

/// Calls AWS APIs on one endpoint (moto, or the gateway) in one Region.
#[derive(Clone, Debug)]
pub struct AwsClient {
    http: HttpClient,
    endpoint: String,
    region: String,
}

impl AwsClient {
    pub fn new(http: HttpClient, endpoint: &str, region: &str) -> Self {
        Self {
            http,
            endpoint: endpoint.trim_end_matches('/').to_string(),
            region: region.to_string(),
        }
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn request(
        &self,
        service: &str,
        method: Method,
        path_and_query: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<Request<Full<Bytes>>> {
        let url = format!("{}{}", self.endpoint, path_and_query);
        Request::builder()
            .method(method)
            .uri(&url)
            .header(
                header::AUTHORIZATION,
                authorization_for(service, &self.region),
            )
            .header("x-amz-date", "20240101T000000Z")
            .header(header::CONTENT_TYPE, content_type)
            .body(Full::new(Bytes::from(body)))
            .map_err(|error| LocalCloudError::Http {
                url,
                message: error.to_string(),
            })
    }

    /// An awsJson call (`X-Amz-Target: {target_prefix}.{operation}`); the answer's JSON.
    pub async fn json(
        &self,
        service: &'static str,
        json_version: &str,
        target_prefix: &str,
        operation: &str,
        input: &serde_json::Value,
    ) -> Result<serde_json::Value> {
        let mut request = self.request(
            service,
            Method::POST,
            "/",
            &format!("application/x-amz-json-{json_version}"),
            input.to_string().into_bytes(),
        )?;
        let target = format!("{target_prefix}.{operation}");
        request.headers_mut().insert(
            "x-amz-target",
            header::HeaderValue::from_str(&target)
                .map_err(|error| LocalCloudError::InvalidInput(error.to_string()))?,
        );
        let answer = self.http.send(request).await?;
        check_status(service, operation, &answer)?;
        if answer.body.is_empty() {
            return Ok(serde_json::Value::Object(Default::default()));
        }
        serde_json::from_slice(&answer.body).map_err(|error| LocalCloudError::UnexpectedAnswer {
            service,
            operation: operation.to_string(),
            problem: format!("not JSON ({error}): {}", answer.body_text()),
        })
    }

    /// An AWS Query call (form-encoded `Action=...`); the answer's XML.
    pub async fn query(
        &self,
        service: &'static str,
        version: &str,
        action: &str,
        params: &[(&str, &str)],
    ) -> Result<String> {
        // Built in a block: the serializer is not Send and must not live across an await.
        let form = {
            let mut form = form_urlencoded::Serializer::new(String::new());
            form.append_pair("Action", action);
            form.append_pair("Version", version);
            for (name, value) in params {
                form.append_pair(name, value);
            }
            form.finish()
        };
        let request = self.request(
            service,
            Method::POST,
            "/",
            "application/x-www-form-urlencoded; charset=utf-8",
            form.into_bytes(),
        )?;
        let answer = self.http.send(request).await?;
        check_status(service, action, &answer)?;
        Ok(answer.body_text())
    }

    /// A REST call (Route 53's restXml, the simulator's control API's JSON).
    pub async fn rest(
        &self,
        service: &'static str,
        method: Method,
        path_and_query: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<Answer> {
        let request = self.request(service, method, path_and_query, content_type, body)?;
        self.http.send(request).await
    }
}

pub fn check_status(service: &'static str, operation: &str, answer: &Answer) -> Result<()> {
    if answer.status.is_success() {
        Ok(())
    } else {
        Err(LocalCloudError::AwsCall {
            service,
            operation: operation.to_string(),
            status: answer.status.as_u16(),
            body: answer.body_text(),
        })
    }
}
