//! A source server's replication stalled or resumed: page on-call staff with what they
//! need, optionally retry replication once, and escalate if it is still stalled later.

use drplan_aws::executions::start_execution_once;
use drplan_aws::{FunctionError, drs, metrics, plans, sns};
use drplan_core::duration::parse_iso8601_duration;
use drplan_core::trigger::{
    ReplicationChange, RetryOutcome, StallFacts, memberships, replication_message,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::Trigger;

/// The key of the escalation state machine's callback input.
pub const ESCALATION_KEY: &str = "drplan_escalation";

/// How stalls are handled, from the environment the template sets.
#[derive(Debug, Clone, PartialEq)]
pub struct StallSettings {
    /// `DRPLAN_STALL_RETRY_REPLICATION=true`: one RetryDataReplication per stall event.
    pub retry_replication: bool,
    /// `DRPLAN_STALL_ESCALATE_MINUTES` (decimal; 0 or unset: no escalation) and the
    /// state machine that waits that long (`DRPLAN_ESCALATION_STATE_MACHINE_ARN`).
    pub escalation: Option<(f64, String)>,
}

impl StallSettings {
    pub fn from_env() -> Result<Self, FunctionError> {
        let retry_replication = match std::env::var("DRPLAN_STALL_RETRY_REPLICATION") {
            Ok(value) => match value.trim() {
                "true" | "TRUE" | "1" => true,
                "false" | "FALSE" | "0" | "" => false,
                other => {
                    return Err(FunctionError::Misconfigured(format!(
                        "DRPLAN_STALL_RETRY_REPLICATION is {other:?}: use true or false"
                    )));
                }
            },
            Err(_) => false,
        };
        let minutes = match std::env::var("DRPLAN_STALL_ESCALATE_MINUTES") {
            Ok(value) if !value.trim().is_empty() => {
                value.trim().parse::<f64>().ok().filter(|m| m.is_finite() && *m >= 0.0).ok_or_else(|| {
                    FunctionError::Misconfigured(format!(
                        "DRPLAN_STALL_ESCALATE_MINUTES is {value:?}: use a number of minutes (0: no escalation)"
                    ))
                })?
            }
            _ => 0.0,
        };
        let escalation = if minutes > 0.0 {
            let arn = std::env::var("DRPLAN_ESCALATION_STATE_MACHINE_ARN")
                .ok()
                .filter(|arn| !arn.trim().is_empty())
                .ok_or_else(|| {
                    FunctionError::Misconfigured(
                        "DRPLAN_STALL_ESCALATE_MINUTES is set but DRPLAN_ESCALATION_STATE_MACHINE_ARN is not".into(),
                    )
                })?;
            Some((minutes, arn))
        } else {
            None
        };
        Ok(Self {
            retry_replication,
            escalation,
        })
    }
}

/// What the escalation state machine hands back after its wait.
#[derive(Debug, Deserialize)]
struct Escalation {
    source_server_id: String,
    source_server_arn: String,
    region: String,
    time: String,
}

pub async fn on_replication_change(
    trigger: &Trigger,
    change: ReplicationChange,
) -> Result<Value, FunctionError> {
    let retry = if change.stalled && trigger.stall.retry_replication {
        retry_replication(&trigger.drs, &change.source_server_id).await
    } else {
        RetryOutcome::NotConfigured
    };
    // The page goes out even when the escalation cannot be scheduled; it then promises none.
    let escalate_after_minutes = match (&trigger.stall.escalation, change.stalled) {
        (Some((minutes, state_machine_arn)), true) => {
            match schedule_escalation(&trigger.sfn, state_machine_arn, &change, *minutes).await {
                Ok(()) => Some(minutes.ceil() as u32),
                Err(error) => {
                    tracing::error!(%error, "the stall's escalation could not be scheduled; paging without it");
                    metrics::count("EscalationScheduleErrors", &[]);
                    None
                }
            }
        }
        _ => None,
    };
    let facts = gather(trigger, change, retry, escalate_after_minutes).await?;
    let message = replication_message(&facts, false);
    if facts.change.stalled {
        metrics::count("ReplicationStalls", &[]);
    }
    let message_id = sns::page_on_call(&trigger.sns, &trigger.topic_arn, &message).await?;
    Ok(json!({
        "outcome": if facts.change.stalled { "paged" } else { "resumed" },
        "source_server": facts.change.source_server_id,
        "message_id": message_id,
    }))
}

/// After the wait: page again, as an escalation, if DRS still reports the server stalled.
pub async fn escalate(trigger: &Trigger, input: &Value) -> Result<Value, FunctionError> {
    let escalation: Escalation = serde_json::from_value(input.clone())
        .map_err(|e| FunctionError::InvalidInput(format!("{ESCALATION_KEY}: {e}")))?;
    let change = ReplicationChange {
        event_id: String::new(),
        time: escalation.time,
        region: escalation.region,
        source_server_id: escalation.source_server_id,
        source_server_arn: escalation.source_server_arn,
        stalled: true,
    };
    let facts = gather(trigger, change, RetryOutcome::NotConfigured, None).await?;
    if facts.replication_state.as_deref() != Some("STALLED") {
        tracing::info!(
            source_server = facts.change.source_server_id,
            state = facts.replication_state.as_deref().unwrap_or("unknown"),
            "no escalation: the server is no longer stalled"
        );
        return Ok(
            json!({ "outcome": "recovered", "source_server": facts.change.source_server_id }),
        );
    }
    let message = replication_message(&facts, true);
    metrics::count("ReplicationStallEscalations", &[]);
    let message_id = sns::page_on_call(&trigger.sns, &trigger.topic_arn, &message).await?;
    Ok(
        json!({ "outcome": "escalated", "source_server": facts.change.source_server_id, "message_id": message_id }),
    )
}

/// DRS's view of the server and the plans that hold it. A failed lookup is reported in
/// the message rather than holding the page back.
async fn gather(
    trigger: &Trigger,
    change: ReplicationChange,
    retry: RetryOutcome,
    escalate_after_minutes: Option<u32>,
) -> Result<StallFacts, FunctionError> {
    let (server, lookup_error) =
        match drs::describe_source_server(&trigger.drs, &change.source_server_id).await {
            Ok(Some(server)) => (Some(server), None),
            Ok(None) => (
                None,
                Some("DRS does not know this source server".to_owned()),
            ),
            Err(error) => (None, Some(error.to_string())),
        };
    let plans = match plans::stored_plans(&trigger.store).await {
        Ok(plans) => plans,
        Err(error) => {
            tracing::error!(%error, "plans could not be read; paging without them");
            Vec::new()
        }
    };
    let tags = server.as_ref().map(|s| s.tags.clone()).unwrap_or_default();
    Ok(StallFacts {
        hostname: server.as_ref().and_then(|s| s.hostname.clone()),
        replication_state: server.as_ref().and_then(|s| s.replication_state.clone()),
        lag_seconds: server
            .as_ref()
            .and_then(|s| s.lag_duration.as_deref())
            .and_then(parse_iso8601_duration)
            .map(|lag| lag.as_secs()),
        memberships: memberships(&tags, &plans),
        change,
        retry,
        escalate_after_minutes,
        lookup_error,
    })
}

async fn retry_replication(
    drs_client: &aws_sdk_drs::Client,
    source_server_id: &str,
) -> RetryOutcome {
    match drs::retry_data_replication(drs_client, source_server_id).await {
        Ok(()) => {
            tracing::info!(
                source_server = source_server_id,
                "RetryDataReplication requested"
            );
            RetryOutcome::Requested
        }
        Err(error) => {
            tracing::warn!(source_server = source_server_id, %error, "RetryDataReplication failed");
            RetryOutcome::Failed(error.to_string())
        }
    }
}

/// Starts the escalation state machine: it waits, then calls this function back. Named
/// after the server and the event time, so a repeated delivery schedules it once.
async fn schedule_escalation(
    sfn: &aws_sdk_sfn::Client,
    state_machine_arn: &str,
    change: &ReplicationChange,
    minutes: f64,
) -> Result<(), FunctionError> {
    let stamp: String = change
        .time
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(20)
        .collect();
    let name = format!("stall-{}-{stamp}", change.source_server_id);
    let input = json!({
        "wait_seconds": (minutes * 60.0).round().max(1.0) as u64,
        ESCALATION_KEY: {
            "source_server_id": change.source_server_id,
            "source_server_arn": change.source_server_arn,
            "region": change.region,
            "time": change.time,
        },
    });
    // A repeated delivery finds the escalation started already.
    start_execution_once(sfn, state_machine_arn, &name, input.to_string()).await?;
    Ok(())
}
