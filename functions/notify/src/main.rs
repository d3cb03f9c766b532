//! notify: publishes one SNS message per run event (started, approval needed, wave
//! started / succeeded / failed, DNS cut over, succeeded, failed, drill cleaned up) to
//! the topic in `DRPLAN_TOPIC_ARN`. The message is composed in
//! `drplan_core::notify`; this reads the run's records it needs from the bucket.

use drplan_aws::sns::{self, Delivered};
use drplan_aws::step::LogContext;
use drplan_aws::store::RunStore;
use drplan_aws::wave::WaveLaunchRecord;
use drplan_aws::{FunctionError, bootstrap};
use drplan_core::notify::{NotificationRequest, StoredRecords, WaveLaunchOutcome};
use drplan_core::report::Report;
use jiff::Timestamp;
use serde::Deserialize;

struct Clients {
    sns: aws_sdk_sns::Client,
    topic_arn: String,
    store: RunStore,
}

/// The request, in a type of this crate so that it can carry the log context.
#[derive(Deserialize)]
#[serde(transparent)]
struct NotifyInput(NotificationRequest);

impl LogContext for NotifyInput {
    fn log_context(&self) -> (String, String, String) {
        let request = &self.0;
        (
            request.execution_name.clone(),
            request
                .run
                .as_ref()
                .map(|r| r.plan.clone())
                .unwrap_or_default(),
            request
                .wave
                .as_ref()
                .map(|w| w.name.clone())
                .unwrap_or_default(),
        )
    }
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    bootstrap::init_logging();
    let config = bootstrap::aws_config().await;
    let clients = Clients {
        sns: aws_sdk_sns::Client::new(&config),
        topic_arn: sns::topic_arn_from_env()?,
        store: RunStore::new(
            aws_sdk_s3::Client::new(&config),
            bootstrap::bucket_from_env()?,
        ),
    };
    drplan_aws::step::serve("notify", |NotifyInput(request)| notify(&clients, request)).await
}

async fn notify(
    clients: &Clients,
    request: NotificationRequest,
) -> Result<Delivered, FunctionError> {
    tracing::info!(event = request.event.as_str(), "notifying");
    let records = read_records(&clients.store, &request).await;
    sns::deliver(
        &clients.sns,
        &clients.topic_arn,
        &request,
        &records,
        Timestamp::now(),
    )
    .await
}

/// The report (final events) and the wave's launch record (failed servers), when the
/// event needs them. Either may be missing: a message without them still goes out.
async fn read_records(store: &RunStore, request: &NotificationRequest) -> StoredRecords {
    let mut records = StoredRecords::default();
    if let Some(key) = request.report_key() {
        records.report = read_or_warn::<Report>(store, key).await;
    }
    if request.needs_wave_launch()
        && let (Some(run), Some(wave)) = (&request.run, &request.wave)
    {
        let key = run.wave_key(wave, "launch.json");
        records.wave_launch = read_or_warn::<WaveLaunchRecord>(store, &key)
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
async fn read_or_warn<T: serde::de::DeserializeOwned>(store: &RunStore, key: &str) -> Option<T> {
    match store.get_json::<T>(key).await {
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
