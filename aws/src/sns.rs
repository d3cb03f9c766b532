//! Publishing notifications to the stack's SNS topic (`DRPLAN_TOPIC_ARN`), with the
//! message attributes subscription filter policies match on: the notify function's run
//! events, and the trigger function's on-call pages.

use aws_sdk_sns::types::MessageAttributeValue;
use drplan_core::contract::Record;
use drplan_core::contract::keys::report_json_at;
use drplan_core::contract::notice::{NotificationRequest, RunEvent};
use drplan_core::contract::step::Delivered;
use drplan_core::notify::{Notification, StoredRecords, WaveLaunchOutcome, compose};
use drplan_core::trigger::OnCallMessage;
use jiff::Timestamp;
use serde::de::DeserializeOwned;

use crate::FunctionError;
use crate::step::LogContext;
use crate::store::RunStore;

/// The topic notifications go to (`DRPLAN_TOPIC_ARN`).
pub fn topic_arn_from_env() -> Result<String, FunctionError> {
    crate::bootstrap::required_env("DRPLAN_TOPIC_ARN")
}

impl LogContext for NotificationRequest {
    fn log_context(&self) -> (String, String, String) {
        (
            self.execution_name.clone(),
            self.run
                .as_ref()
                .map(|r| r.plan.clone())
                .unwrap_or_default(),
            self.wave
                .as_ref()
                .map(|w| w.name.clone())
                .unwrap_or_default(),
        )
    }
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
        pause_request: None,
    })
}

/// The notify function: reads the run's records the event needs, composes its message
/// and publishes it.
pub async fn notify_run_event(
    client: &aws_sdk_sns::Client,
    topic_arn: &str,
    store: &RunStore,
    request: NotificationRequest,
) -> Result<Delivered, FunctionError> {
    tracing::info!(event = request.event.as_str(), "notifying");
    if request.event == RunEvent::Paused {
        return notify_paused(client, topic_arn, store, &request).await;
    }
    let records = read_records(store, &request).await;
    deliver(client, topic_arn, &request, &records, Timestamp::now()).await
}

/// A pause request is a line of JSON; a larger object is not read (who asked is unknown).
const MAX_PAUSE_REQUEST_BYTES: u64 = 16 * 1024;

/// A run that holds at a pause: the request it holds for is read and consumed (so that
/// one request holds once, and a later `drplan pause` holds again at a later stage),
/// then on-call hears who paused and why. The answer carries the request, so that the
/// execution's history says who paused. The hold matters more than the mail: a request
/// that cannot be read or deleted, or a message that cannot be published, is logged,
/// and the run holds all the same (`drplan status` shows it, `drplan continue`
/// releases it).
async fn notify_paused(
    client: &aws_sdk_sns::Client,
    topic_arn: &str,
    store: &RunStore,
    request: &NotificationRequest,
) -> Result<Delivered, FunctionError> {
    let mut request = request.clone();
    match &request.run {
        Some(run) => {
            let record = run.records().pause_request();
            let key = record.key();
            match store.get_text_capped(key, MAX_PAUSE_REQUEST_BYTES).await {
                Ok(Some(text)) => {
                    request.pause.get_or_insert_with(Default::default).request = Some(text)
                }
                Ok(None) => tracing::warn!(key, "no pause request to read; holding all the same"),
                Err(error) => {
                    tracing::error!(key, %error, "pause request unreadable; holding all the same")
                }
            }
            if let Err(error) = store.delete(key).await {
                tracing::error!(key, %error, "pause request not consumed; a later stage may hold for it again");
            }
        }
        None => tracing::error!("a PAUSED request without its run; no pause request consumed"),
    }
    let pause_request = request.pause.as_ref().and_then(|p| p.request());
    let delivered = match deliver(
        client,
        topic_arn,
        &request,
        &StoredRecords::default(),
        Timestamp::now(),
    )
    .await
    {
        Err(invalid @ FunctionError::InvalidInput(_)) => return Err(invalid),
        Err(error) => {
            tracing::error!(%error, "the PAUSED message was not published; the run holds all the same");
            Delivered {
                message_id: String::new(),
                subject: String::new(),
                pause_request: None,
            }
        }
        Ok(delivered) => delivered,
    };
    Ok(Delivered {
        pause_request,
        ..delivered
    })
}

/// The report (final events) and the wave's launch record (failed servers), when the
/// event needs them. Either may be missing: a message without them still goes out.
async fn read_records(store: &RunStore, request: &NotificationRequest) -> StoredRecords {
    let mut records = StoredRecords::default();
    if let Some(key) = request.report_key() {
        match report_json_at(key) {
            Some(report) => records.report = read_or_warn(store, &report).await,
            None => tracing::warn!(key, "not a report's key; notifying without the report"),
        }
    }
    if request.needs_wave_launch()
        && let (Some(run), Some(wave)) = (&request.run, &request.wave)
    {
        let key = run.records().wave(wave).launch();
        records.wave_launch = read_or_warn(store, &key)
            .await
            .map(|record| WaveLaunchOutcome {
                progress: record.progress,
                job_ids: record.job_ids,
            });
    }
    records
}

/// A record that cannot be read makes the message poorer, never absent: the person
/// still has to hear that the run failed.
async fn read_or_warn<T: DeserializeOwned>(store: &RunStore, record: &Record<T>) -> Option<T> {
    let key = record.key();
    match store.read(record).await {
        Ok(Some(record)) => Some(record),
        Ok(None) => {
            tracing::warn!(key, "record not in the bucket; notifying without it");
            None
        }
        Err(error) => {
            tracing::warn!(key, %error, "record unreadable; notifying without it");
            None
        }
    }
}

/// Publishes an on-call message (the trigger function's pages); returns SNS's message ID.
pub async fn page_on_call(
    client: &aws_sdk_sns::Client,
    topic_arn: &str,
    message: &OnCallMessage,
) -> Result<String, FunctionError> {
    let id = publish_text(
        client,
        topic_arn,
        &message.subject,
        &message.body,
        &message.attributes(),
    )
    .await?;
    tracing::info!(
        message_id = id,
        subject = message.subject,
        event = message.event,
        "on-call message published"
    );
    Ok(id)
}
