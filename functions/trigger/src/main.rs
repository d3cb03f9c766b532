//! trigger: the target of drplan's EventBridge rules.
//!
//! - `CloudWatch Alarm State Change` to ALARM, for an alarm mapped to a plan (its
//!   `drplan:plan` tag, or a stored plan's `triggers.alarms`), starts the plan: one
//!   StartExecution named after the alarm and its state time, so repeated deliveries
//!   start one run. A run already under way, or one an alarm started within the plan's
//!   `min_gap_minutes`, suppresses it with an e-mail instead.
//! - `DRS Source Server Data Replication Stalled Change` pages on-call staff at once
//!   (STALLED) or tells them it is over (NOT_STALLED); optionally retries replication
//!   once and escalates if the server is still stalled later.
//! - `DRS Source Server Launch Result` marks the server settled and wakes the wave
//!   parked on its job once all the servers it waits for have settled (the wave's poll
//!   delay is the fallback: these events are best effort).
//! - `Step Functions Execution Status Change` for a recovery run that was stopped, timed
//!   out or failed outside its own error handling: its drill instances terminated, launch
//!   templates put back, report written, plan released.
//!
//! Only events of the stack's own account (`DRPLAN_ACCOUNT_ID`) and Region (`AWS_REGION`)
//! act: the rules' patterns filter on both, and the function checks again because it
//! can be invoked directly. An alarm's `drplan:plan` / `drplan:mode` tags count only for
//! plans with `triggers.alarm_tags: true`; a tag never turns a drill plan's run into a
//! recovery.
//!
//! A bad or foreign event is logged with the field and the problem, counted, and
//! answered with success: it never starts anything, and never makes Lambda retry it.

mod alarm;
mod launch;
mod run_ended;
mod stall;

use drplan_aws::bootstrap::required_env;
use drplan_aws::step::LogContext;
use drplan_aws::store::RunStore;
use drplan_aws::{FunctionError, bootstrap, metrics};
use drplan_core::trigger::{StackOrigin, TriggerEvent, read_event};
use serde::Deserialize;
use serde_json::{Value, json};

/// What the function needs, built once per sandbox.
pub struct Trigger {
    pub sfn: aws_sdk_sfn::Client,
    pub drs: aws_sdk_drs::Client,
    pub ec2: aws_sdk_ec2::Client,
    pub sns: aws_sdk_sns::Client,
    pub store: RunStore,
    pub topic_arn: String,
    /// The recovery state machine alarms start (`DRPLAN_STATE_MACHINE_ARN`).
    pub state_machine_arn: String,
    pub stall: stall::StallSettings,
    /// The only account and Region whose events act.
    pub home: StackOrigin,
}

/// Any JSON: a bad event must reach the handler to be logged, not fail deserialisation.
#[derive(Deserialize)]
#[serde(transparent)]
struct RawEvent(Value);

impl LogContext for RawEvent {
    fn log_context(&self) -> (String, String, String) {
        let id = self.0.get("id").and_then(Value::as_str).unwrap_or_default();
        (format!("event {id}"), String::new(), String::new())
    }
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let clients = bootstrap::start().await?;
    let trigger = Trigger {
        sfn: clients.sfn,
        drs: clients.drs,
        ec2: clients.ec2,
        sns: clients.sns,
        store: clients.store,
        topic_arn: drplan_aws::sns::topic_arn_from_env()?,
        state_machine_arn: required_env("DRPLAN_STATE_MACHINE_ARN")?,
        stall: stall::StallSettings::from_env()?,
        home: StackOrigin {
            account: required_env("DRPLAN_ACCOUNT_ID")?,
            region: required_env("AWS_REGION")?,
        },
    };
    drplan_aws::step::serve("trigger", |RawEvent(event)| handle_event(&trigger, event)).await
}

async fn handle_event(trigger: &Trigger, event: Value) -> Result<Value, FunctionError> {
    // The escalation state machine calls back with its own input, after its wait.
    if let Some(escalation) = event.get(stall::ESCALATION_KEY) {
        return stall::escalate(trigger, escalation).await;
    }
    let parsed = match read_event(&event, &trigger.home) {
        Ok(parsed) => parsed,
        Err(error) => {
            let text = |field: &str| event.get(field).and_then(Value::as_str).unwrap_or("");
            tracing::warn!(
                reason = error.reason(),
                %error,
                detail_type = text("detail-type"),
                account = text("account"),
                region = text("region"),
                "event rejected: it starts nothing"
            );
            metrics::count("RejectedEvents", &[("Reason", error.reason())]);
            return Ok(
                json!({ "outcome": "rejected", "reason": error.reason(), "error": error.to_string() }),
            );
        }
    };
    tracing::info!(kind = parsed.kind(), "event received");
    match parsed {
        TriggerEvent::Alarm(change) => alarm::on_alarm(trigger, &change).await,
        TriggerEvent::Replication(change) => stall::on_replication_change(trigger, change).await,
        TriggerEvent::LaunchResult(result) => launch::on_launch_result(trigger, &result).await,
        TriggerEvent::FailbackState(change) => launch::on_failback_state(trigger, &change).await,
        TriggerEvent::ExecutionStatus(change) => {
            run_ended::on_execution_status(trigger, &change).await
        }
    }
}
