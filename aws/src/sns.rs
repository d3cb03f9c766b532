//! Publishing notifications to the stack's SNS topic (`DRPLAN_TOPIC_ARN`), with the
//! message attributes subscription filter policies match on.

use aws_sdk_sns::types::MessageAttributeValue;
use drplan_core::contract::notice::NotificationRequest;
use drplan_core::notify::{Notification, StoredRecords, compose};
use jiff::Timestamp;
use serde::Serialize;

use crate::FunctionError;

/// The topic notifications go to (`DRPLAN_TOPIC_ARN`).
pub fn topic_arn_from_env() -> Result<String, FunctionError> {
    std::env::var("DRPLAN_TOPIC_ARN")
        .ok()
        .filter(|arn| !arn.trim().is_empty())
        .ok_or_else(|| FunctionError::Misconfigured("DRPLAN_TOPIC_ARN is not set".into()))
}

/// What was published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Delivered {
    pub message_id: String,
    pub subject: String,
}

/// Publishes one notification; returns SNS's message ID.
pub async fn publish(
    client: &aws_sdk_sns::Client,
    topic_arn: &str,
    notification: &Notification,
) -> Result<String, FunctionError> {
    publish_text(
        client,
        topic_arn,
        &notification.subject,
        &notification.body,
        &notification.attributes.pairs(),
    )
    .await
}

/// Publishes a subject and body with String message attributes; returns the message ID.
pub async fn publish_text(
    client: &aws_sdk_sns::Client,
    topic_arn: &str,
    subject: &str,
    body: &str,
    attributes: &[(&str, &str)],
) -> Result<String, FunctionError> {
    let mut request = client
        .publish()
        .topic_arn(topic_arn)
        .subject(subject)
        .message(body);
    for (name, value) in attributes {
        let attribute = MessageAttributeValue::builder()
            .data_type("String")
            .string_value(*value)
            .build()
            .map_err(|e| FunctionError::InvalidInput(format!("message attribute {name}: {e}")))?;
        request = request.message_attributes(*name, attribute);
    }
    let published = request
        .send()
        .await
        .map_err(|e| FunctionError::from_sdk("SNS Publish", e))?;
    Ok(published.message_id().unwrap_or_default().to_owned())
}

/// Composes the message for `request` from the run's records and publishes it: the
/// notify function's whole path after reading the bucket.
pub async fn deliver(
    client: &aws_sdk_sns::Client,
    topic_arn: &str,
    request: &NotificationRequest,
    records: &StoredRecords,
    now: Timestamp,
) -> Result<Delivered, FunctionError> {
    let notification =
        compose(request, records, now).map_err(|e| FunctionError::InvalidInput(e.to_string()))?;
    let message_id = publish(client, topic_arn, &notification).await?;
    tracing::info!(
        message_id,
        subject = notification.subject,
        severity = notification.attributes.severity.as_str(),
        "notification published"
    );
    Ok(Delivered {
        message_id,
        subject: notification.subject,
    })
}
