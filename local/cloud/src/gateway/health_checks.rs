//! What moto forgets of a Route 53 health check: moto keeps a CLOUDWATCH_METRIC health
//! check's type but drops its `AlarmIdentifier` and `InsufficientDataHealthStatus`, so
//! GetHealthCheck could not say which alarm the check follows. The gateway remembers
//! them from CreateHealthCheck and puts them back into CreateHealthCheck's and
//! GetHealthCheck's answers, where Route 53 has them. (moto evaluates no health check
//! either: the status a health check would have is not served; docs/dns.md.)

use std::collections::BTreeMap;

use axum::body::{Body, Bytes};
use hyper::{Method, Response};

use super::GatewayState;
use crate::xml::{blocks, first_text};

/// A health check's alarm settings, as its CreateHealthCheck request gave them (XML).
#[derive(Debug, Clone, Default)]
pub(super) struct AlarmSettings {
    region: String,
    name: String,
    insufficient_data: Option<String>,
}

impl AlarmSettings {
    fn xml(&self) -> String {
        let mut xml = format!(
            "<AlarmIdentifier><Region>{}</Region><Name>{}</Name></AlarmIdentifier>",
            escape(&self.region),
            escape(&self.name)
        );
        if let Some(status) = &self.insufficient_data {
            xml.push_str(&format!(
                "<InsufficientDataHealthStatus>{}</InsufficientDataHealthStatus>",
                escape(status)
            ));
        }
        xml
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The health check calls whose answers the gateway completes.
#[derive(Debug)]
pub(super) enum Completed {
    Create(Option<AlarmSettings>),
    Get(String),
}

/// Whether a Route 53 request is one whose answer needs the alarm settings.
pub(super) fn completed(
    service: &str,
    method: &Method,
    path: &str,
    body: &Bytes,
) -> Option<Completed> {
    if service != "route53" {
        return None;
    }
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match (method.as_str(), &segments[..]) {
        ("POST", [_, "healthcheck"]) => {
            let text = String::from_utf8_lossy(body);
            let settings = blocks(&text, "AlarmIdentifier")
                .into_iter()
                .next()
                .and_then(|block| {
                    Some(AlarmSettings {
                        region: block.children.get("Region")?.clone(),
                        name: block.children.get("Name")?.clone(),
                        insufficient_data: first_text(&text, "InsufficientDataHealthStatus"),
                    })
                });
            Some(Completed::Create(settings))
        }
        ("GET", [_, "healthcheck", id]) => Some(Completed::Get((*id).to_owned())),
        _ => None,
    }
}

/// The answer with the alarm settings of its health check put back.
pub(super) async fn complete(
    state: &GatewayState,
    call: Completed,
    response: Response<Body>,
) -> Response<Body> {
    if !response.status().is_success() {
        return response;
    }
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let settings = match call {
        Completed::Create(settings) => {
            if let (Some(settings), Some(id)) = (&settings, first_text(&text, "Id"))
                && let Ok(mut known) = state.health_check_alarms.lock()
            {
                known.insert(id, settings.clone());
            }
            settings
        }
        Completed::Get(id) => state
            .health_check_alarms
            .lock()
            .ok()
            .and_then(|known| known.get(&id).cloned()),
    };
    let text = match settings {
        Some(settings) if !text.contains("<AlarmIdentifier>") => text.replacen(
            "</HealthCheckConfig>",
            &format!("{}</HealthCheckConfig>", settings.xml()),
            1,
        ),
        _ => text,
    };
    let mut parts = parts;
    parts.headers.remove(hyper::header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(text))
}

/// The alarm settings of every health check created through the gateway, by ID.
pub(super) type HealthCheckAlarms = std::sync::Mutex<BTreeMap<String, AlarmSettings>>;
