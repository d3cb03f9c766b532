//! An alarm went to ALARM (or elsewhere): start the plans it is mapped to, once.

use drplan_aws::executions::{known_executions, start_execution_once};
use drplan_aws::{FunctionError, metrics, plans, sns};
use drplan_core::trigger::{
    AlarmDecision, AlarmRoute, AlarmState, AlarmStateChange, ClaimVerdict, KnownExecution,
    StartClaim, Suppression, alarm_execution_input, decide_alarm_start, judge_start_claim,
    route_alarm, suppressed_message,
};
use jiff::Timestamp;
use serde_json::{Value, json};

use crate::Trigger;

pub async fn on_alarm(trigger: &Trigger, alarm: &AlarmStateChange) -> Result<Value, FunctionError> {
    if alarm.state != AlarmState::Alarm {
        tracing::info!(
            alarm = alarm.alarm_name,
            state = alarm.state.as_str(),
            "alarm is not in ALARM: nothing to start"
        );
        return Ok(
            json!({ "outcome": "ignored", "alarm": alarm.alarm_name, "state": alarm.state.as_str() }),
        );
    }
    let plans = plans::stored_plans(&trigger.store).await?;
    let routing = match route_alarm(alarm, &plans) {
        Ok(routing) => routing,
        Err(error) => {
            tracing::error!(alarm = alarm.alarm_name, %error, "alarm names no usable plan: nothing started");
            metrics::count("UnmappedAlarms", &[]);
            return Ok(
                json!({ "outcome": "unmapped", "alarm": alarm.alarm_name, "error": error.to_string() }),
            );
        }
    };
    for ignored in routing.all_ignored_tags() {
        tracing::warn!(
            alarm = alarm.alarm_name,
            plan = ignored.plan,
            tag = ignored.tag,
            reason = ignored.reason,
            "alarm tag ignored"
        );
        metrics::count("IgnoredAlarmTags", &[]);
    }
    let routes = routing.routes;
    if routes.is_empty() {
        tracing::info!(
            alarm = alarm.alarm_name,
            plans = plans.len(),
            "alarm is not mapped to any plan: nothing started"
        );
        metrics::count("UnmappedAlarms", &[]);
        return Ok(json!({ "outcome": "unmapped", "alarm": alarm.alarm_name }));
    }
    let executions = known_executions(&trigger.sfn, &trigger.state_machine_arn, &routes).await?;
    let now = Timestamp::now();
    let mut outcomes = Vec::new();
    for route in &routes {
        let outcome = match decide_alarm_start(route, alarm, &executions, now) {
            AlarmDecision::Start { execution_name } => {
                match claim_start(trigger, route, &execution_name, &executions, now).await? {
                    ClaimVerdict::Take => start(trigger, route, alarm, &execution_name).await?,
                    ClaimVerdict::Held {
                        execution_name: holder,
                    } => {
                        let running = Suppression::Running {
                            execution_name: holder,
                        };
                        suppress(trigger, route, alarm, &running).await?
                    }
                }
            }
            AlarmDecision::Duplicate { execution_name } => {
                tracing::info!(
                    plan = route.plan,
                    execution = execution_name,
                    "repeated delivery of an alarm that already started its run"
                );
                json!({ "plan": route.plan, "outcome": "duplicate", "execution": execution_name })
            }
            AlarmDecision::Suppressed(suppression) => {
                suppress(trigger, route, alarm, &suppression).await?
            }
        };
        outcomes.push(outcome);
    }
    Ok(json!({ "outcome": "routed", "alarm": alarm.alarm_name, "plans": outcomes }))
}

/// Pages on-call that the alarm started nothing, and why.
async fn suppress(
    trigger: &Trigger,
    route: &AlarmRoute,
    alarm: &AlarmStateChange,
    suppression: &Suppression,
) -> Result<Value, FunctionError> {
    let message = suppressed_message(alarm, route, suppression);
    tracing::warn!(
        plan = route.plan,
        alarm = alarm.alarm_name,
        ?suppression,
        "alarm suppressed"
    );
    metrics::count("SuppressedAlarms", &[("Plan", &route.plan)]);
    let message_id = sns::page_on_call(&trigger.sns, &trigger.topic_arn, &message).await?;
    Ok(json!({ "plan": route.plan, "outcome": "suppressed", "message_id": message_id }))
}

/// Claims the plan's alarm start for `execution_name` with a conditional write of its
/// start claim, unless another alarm's run holds it. Of two invocations racing for one
/// plan, one write succeeds; the other reads the winner's claim and is suppressed.
async fn claim_start(
    trigger: &Trigger,
    route: &AlarmRoute,
    execution_name: &str,
    executions: &[KnownExecution],
    now: Timestamp,
) -> Result<ClaimVerdict, FunctionError> {
    let key = drplan_core::contract::keys::start_claim(&route.plan);
    let ours = StartClaim {
        execution_name: execution_name.to_owned(),
        claimed_at: now,
    };
    // Two rounds: a lost write means another claim appeared; judge that one.
    for _ in 0..2 {
        let (claim, etag) = read_claim(trigger, key.key()).await?;
        if let held @ ClaimVerdict::Held { .. } =
            judge_start_claim(claim.as_ref(), execution_name, executions, now)
        {
            return Ok(held);
        }
        if trigger
            .store
            .write_if(&key, &ours, etag.as_deref())
            .await?
            .is_some()
        {
            return Ok(ClaimVerdict::Take);
        }
        tracing::info!(
            plan = route.plan,
            execution = execution_name,
            "another alarm claimed the plan's start first"
        );
    }
    // Claims keep changing under us: a storm of alarms for this plan. Starting nothing
    // is the safe side; the winners' runs are under way.
    let (claim, _) = read_claim(trigger, key.key()).await?;
    Ok(ClaimVerdict::Held {
        execution_name: claim.map_or_else(
            || "another alarm's run".to_owned(),
            |claim| claim.execution_name,
        ),
    })
}

/// The plan's start claim and its ETag. A claim drplan cannot read (edited by hand) is
/// treated as no claim, and replaced: it must never block a recovery.
async fn read_claim(
    trigger: &Trigger,
    key: &str,
) -> Result<(Option<StartClaim>, Option<String>), FunctionError> {
    let Some((text, etag)) = trigger.store.get_text_versioned(key).await? else {
        return Ok((None, None));
    };
    match serde_json::from_str(&text) {
        Ok(claim) => Ok((Some(claim), Some(etag))),
        Err(error) => {
            tracing::warn!(key, %error, "unreadable start claim: replacing it");
            Ok((None, Some(etag)))
        }
    }
}

async fn start(
    trigger: &Trigger,
    route: &AlarmRoute,
    alarm: &AlarmStateChange,
    execution_name: &str,
) -> Result<Value, FunctionError> {
    let input = alarm_execution_input(route, alarm).to_string();
    match start_execution_once(
        &trigger.sfn,
        &trigger.state_machine_arn,
        execution_name,
        input,
    )
    .await?
    {
        Some(execution_arn) => {
            tracing::info!(
                plan = route.plan,
                mode = route.mode.as_str(),
                execution = execution_arn,
                matched_by = route.matched_by,
                "alarm started the plan"
            );
            metrics::count("AlarmStarts", &[("Plan", &route.plan)]);
            Ok(json!({ "plan": route.plan, "outcome": "started", "execution": execution_arn }))
        }
        // A concurrent delivery of the same change won the race: one run, as intended.
        None => {
            tracing::info!(
                plan = route.plan,
                execution = execution_name,
                "execution already exists: repeated delivery"
            );
            Ok(json!({ "plan": route.plan, "outcome": "duplicate", "execution": execution_name }))
        }
    }
}
