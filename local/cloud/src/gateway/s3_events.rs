//! S3's EventBridge notifications: a bucket with EventBridge turned on (drplan's stack
//! turns it on for its plans bucket) sends `Object Created` and `Object Deleted` events
//! to the default bus. moto sends none, so the gateway sends them, after a PutObject or
//! DeleteObject that succeeded, through the same rule matching as PutEvents. Every
//! bucket of the local cloud sends them; path-style requests only (the local cloud's
//! clients all address buckets by path).

use std::sync::Arc;

use axum::body::Bytes;
use hyper::Method;
use serde_json::{Value, json};

use super::GatewayState;
use super::events::{deliver, record};
use crate::ids::{iso8601_utc, now_epoch_seconds, random_uuid};
use crate::upstream::AwsClient;

/// An object that was written or deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ObjectChange {
    bucket: String,
    key: String,
    /// Bytes written; `None` for a deletion.
    size: Option<usize>,
}

/// The change a successful S3 request makes, if it writes or deletes one whole object
/// (not its tags, ACL or a part of an upload).
pub(super) fn object_change(
    service: &str,
    method: &Method,
    path: &str,
    query: Option<&str>,
    body: &Bytes,
) -> Option<ObjectChange> {
    if service != "s3" || query.is_some_and(|q| !q.is_empty() && !q.starts_with("x-id=")) {
        return None;
    }
    let (bucket, key) = path.trim_start_matches('/').split_once('/')?;
    if bucket.is_empty() || key.is_empty() {
        return None;
    }
    let size = match *method {
        Method::PUT => Some(body.len()),
        Method::DELETE => None,
        _ => return None,
    };
    Some(ObjectChange {
        bucket: bucket.to_owned(),
        key: percent_decoded(key),
        size,
    })
}

/// Sends the change's event to the default bus of `region`.
pub(super) async fn send(state: Arc<GatewayState>, region: String, change: ObjectChange) {
    let moto = AwsClient::new(state.http.clone(), &state.upstreams.moto, &region);
    let account = state.upstreams.account_id.clone();
    let (detail_type, reason) = match change.size {
        Some(_) => ("Object Created", "PutObject"),
        None => ("Object Deleted", "DeleteObject"),
    };
    let mut detail = json!({
        "version": "0",
        "bucket": { "name": change.bucket },
        "object": { "key": change.key },
        "request-id": random_uuid(),
        "requester": account,
        "source-ip-address": "127.0.0.1",
        "reason": reason,
    });
    match change.size {
        Some(size) => detail["object"]["size"] = Value::from(size),
        None => detail["deletion-type"] = Value::from("Permanently Deleted"),
    }
    let event = json!({
        "version": "0",
        "id": random_uuid(),
        "detail-type": detail_type,
        "source": "aws.s3",
        "account": account,
        "time": iso8601_utc(now_epoch_seconds()),
        "region": region,
        "resources": [format!("arn:aws:s3:::{}", change.bucket)],
        "detail": detail,
    });
    match deliver(&state, &moto, "default", &event).await {
        Ok(deliveries) => record(&state, "default".to_owned(), event, deliveries),
        Err(error) => eprintln!(
            "gateway: {detail_type} event of s3://{}/{} not delivered: {error}",
            change.bucket, change.key
        ),
    }
}

/// `%2F` and the like back to their characters (S3 keys in paths are percent-encoded).
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(Some(high)), Some(Some(low))) = (
                bytes.get(i + 1).map(|b| hex(*b)),
                bytes.get(i + 2).map(|b| hex(*b)),
            )
        {
            out.push((high * 16 + low) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_object_writes_and_deletes_are_changes() {
        let body = Bytes::from_static(b"name: shop\n");
        assert_eq!(
            object_change(
                "s3",
                &Method::PUT,
                "/drplan-local/plans/shop.yaml",
                Some("x-id=PutObject"),
                &body
            ),
            Some(ObjectChange {
                bucket: "drplan-local".into(),
                key: "plans/shop.yaml".into(),
                size: Some(11)
            })
        );
        assert_eq!(
            object_change(
                "s3",
                &Method::DELETE,
                "/drplan-local/plans/my%20plan.yaml",
                None,
                &Bytes::new()
            ),
            Some(ObjectChange {
                bucket: "drplan-local".into(),
                key: "plans/my plan.yaml".into(),
                size: None
            })
        );
    }

    #[test]
    fn reads_buckets_tags_and_parts_are_not() {
        let none = Bytes::new();
        assert_eq!(
            object_change("s3", &Method::GET, "/b/plans/x.yaml", None, &none),
            None
        );
        assert_eq!(object_change("s3", &Method::PUT, "/b", None, &none), None);
        assert_eq!(
            object_change("s3", &Method::PUT, "/b/k", Some("tagging"), &none),
            None
        );
        assert_eq!(
            object_change(
                "s3",
                &Method::PUT,
                "/b/k",
                Some("partNumber=1&uploadId=u"),
                &none
            ),
            None
        );
        assert_eq!(
            object_change("sqs", &Method::PUT, "/b/k", None, &none),
            None
        );
    }
}
