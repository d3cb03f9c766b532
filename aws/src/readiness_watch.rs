//! The readiness function's work. On its 30-minute schedule: every stored plan evaluated
//! (the same evaluation discover refuses runs with), its readiness kept at
//! `readiness/PLAN.json`, one `drplan/PlanReady` data point per plan (1 ready, 0 not),
//! an e-mail to on-call staff when a plan's readiness changes (not on every
//! evaluation), and the drill schedules brought in line with the stored plans. When a
//! plan is stored or deleted (S3 events): that plan's schedule and evaluation. When a
//! drill schedule fires: a drill, or an e-mail saying why it was skipped.
//!
//! One plan can be evaluated twice at once (its S3 event beside the schedule, or two
//! schedules' runs), and only one of them may e-mail a change. So the record is written
//! only if it is still the one read before the evaluation (If-Match on its ETag, or
//! If-None-Match when there was none), and only the evaluation whose write wins
//! publishes. An e-mail that fails puts the earlier record back, so that the next
//! evaluation sees the change again and retries it.

use drplan_core::Plan;
use drplan_core::contract::{PlanSource, ReadinessRequest, keys};
use drplan_core::evaluation::{PlanReadiness, evaluate_plan};
use drplan_core::schedule::{
    execution_arn, scheduled_drill_execution_name, scheduled_drill_input, skipped_drill_message,
};
use jiff::Timestamp;
use serde::Serialize;

use crate::bootstrap::Clients;
use crate::schedules::{DrillSchedules, ScheduleChange};
use crate::step::LogContext;
use crate::{FunctionError, metrics, plans, readiness, sns};

/// The metric: 1 when both a recovery and a drill of the plan would start now.
pub const PLAN_READY_METRIC: &str = "PlanReady";

/// What one evaluation of one plan did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Watched {
    pub plan: String,
    pub recovery_ready: bool,
    pub drill_ready: bool,
    /// Findings that block a mode.
    pub blocking: usize,
    /// The SNS message ID of the e-mail sent because the readiness changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notified: Option<String>,
}

/// The plan evaluated now, for both modes.
pub async fn evaluate_stored(
    clients: &Clients,
    plan: &Plan,
) -> Result<PlanReadiness, FunctionError> {
    let facts = readiness::plan_facts(clients, plan).await?;
    let now = facts.now.unwrap_or_else(Timestamp::now);
    Ok(evaluate_plan(plan, &facts, now))
}

impl LogContext for ReadinessRequest {
    fn log_context(&self) -> (String, String, String) {
        let plan = match self {
            ReadinessRequest::EveryPlan => String::new(),
            ReadinessRequest::Plan(plan)
            | ReadinessRequest::PlanChanged { plan, .. }
            | ReadinessRequest::ScheduledDrill { plan, .. } => plan.clone(),
        };
        (String::new(), plan, String::new())
    }
}

/// What the readiness function needs, built once per sandbox.
pub struct ReadinessFunction {
    pub clients: Clients,
    pub topic_arn: String,
    pub schedules: DrillSchedules,
    /// The recovery state machine scheduled drills start (`DRPLAN_STATE_MACHINE_ARN`).
    pub state_machine_arn: String,
}

/// What one invocation did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Handled {
    pub evaluated: Vec<Watched>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub schedules: Vec<ScheduleLine>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drill: Option<DrillOutcome>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScheduleLine {
    pub plan: String,
    pub change: ScheduleChange,
}

/// What a drill schedule's firing did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum DrillOutcome {
    Started {
        execution_name: String,
    },
    /// The same firing delivered again: its drill was started already.
    AlreadyStarted {
        execution_name: String,
    },
    Skipped {
        reason: String,
    },
}

impl ReadinessFunction {
    pub fn new(clients: Clients, config: &aws_config::SdkConfig) -> Result<Self, FunctionError> {
        Ok(Self {
            clients,
            topic_arn: sns::topic_arn_from_env()?,
            schedules: DrillSchedules::from_env(config)?,
            state_machine_arn: crate::bootstrap::required_env("DRPLAN_STATE_MACHINE_ARN")?,
        })
    }

    pub async fn handle(&self, request: ReadinessRequest) -> Result<Handled, FunctionError> {
        let clients = &self.clients;
        match request {
            ReadinessRequest::EveryPlan => {
                let plans: Vec<Plan> = plans::stored_plans(&clients.store)
                    .await?
                    .into_iter()
                    .map(|stored| stored.plan)
                    .collect();
                let evaluated = watch_plans(clients, &self.topic_arn, &plans).await;
                let schedules = self.schedules.bring_all_in_line(&plans).await?;
                Ok(Handled {
                    evaluated: evaluated?,
                    schedules: lines(schedules),
                    drill: None,
                })
            }
            ReadinessRequest::Plan(name) => {
                let plan = plans::load_plan(&clients.store, &PlanSource::Name(name)).await?;
                Ok(Handled {
                    evaluated: vec![watch_plan(clients, &self.topic_arn, &plan).await?],
                    ..Handled::default()
                })
            }
            ReadinessRequest::PlanChanged { bucket, plan } => {
                if bucket != clients.store.bucket() {
                    return Err(FunctionError::InvalidInput(format!(
                        "detail.bucket.name: {bucket} is not this stack's bucket ({})",
                        clients.store.bucket()
                    )));
                }
                let Some(plan) = self.stored(&plan).await? else {
                    let change = self.schedules.bring_in_line(&plan, None).await?;
                    return Ok(Handled {
                        schedules: lines(vec![(plan, change)]),
                        ..Handled::default()
                    });
                };
                let wanted = plan.drill.as_ref().and_then(|d| d.schedule.as_deref());
                let change = self.schedules.bring_in_line(&plan.name, wanted).await?;
                Ok(Handled {
                    evaluated: vec![watch_plan(clients, &self.topic_arn, &plan).await?],
                    schedules: lines(vec![(plan.name.clone(), change)]),
                    drill: None,
                })
            }
            ReadinessRequest::ScheduledDrill {
                plan,
                scheduled_for,
            } => self.scheduled_drill(&plan, scheduled_for).await,
        }
    }

    /// The stored plan, or `None` when `plans/NAME.yaml` is gone; a plan that does not
    /// read is an error (its schedule stays until it is fixed or deleted).
    async fn stored(&self, name: &str) -> Result<Option<Plan>, FunctionError> {
        let key = keys::plan_source(name);
        if self.clients.store.get_text(&key).await?.is_none() {
            return Ok(None);
        }
        plans::load_plan(&self.clients.store, &PlanSource::Name(name.to_owned()))
            .await
            .map(Some)
    }

    /// A drill schedule fired: a drill of the plan starts if the plan is ready for one;
    /// otherwise nothing launches and on-call staff are told why.
    async fn scheduled_drill(
        &self,
        name: &str,
        scheduled_for: Timestamp,
    ) -> Result<Handled, FunctionError> {
        let skipped = |reason: String| Handled {
            drill: Some(DrillOutcome::Skipped { reason }),
            ..Handled::default()
        };
        let Some(plan) = self.stored(name).await? else {
            let change = self.schedules.bring_in_line(name, None).await?;
            let mut handled = skipped(format!(
                "plan {name} is no longer stored; its schedule was deleted"
            ));
            handled.schedules = lines(vec![(name.to_owned(), change)]);
            return Ok(handled);
        };
        let Some(expression) = plan.drill.as_ref().and_then(|d| d.schedule.clone()) else {
            let change = self.schedules.bring_in_line(name, None).await?;
            let mut handled = skipped(format!(
                "plan {name} no longer has drill.schedule; its schedule was deleted"
            ));
            handled.schedules = lines(vec![(name.to_owned(), change)]);
            return Ok(handled);
        };
        // The same firing delivered again finds its drill started (or over): it says so
        // rather than judging the plan again while that drill holds its servers.
        let sfn: &aws_sdk_sfn::Client = &self.clients.sfn;
        let execution_name = scheduled_drill_execution_name(name, scheduled_for);
        let arn = execution_arn(&self.state_machine_arn, &execution_name).ok_or_else(|| {
            FunctionError::InvalidInput(format!(
                "DRPLAN_STATE_MACHINE_ARN: {} is not a state machine ARN",
                self.state_machine_arn
            ))
        })?;
        match sfn.describe_execution().execution_arn(&arn).send().await {
            Ok(_) => {
                return Ok(Handled {
                    drill: Some(DrillOutcome::AlreadyStarted { execution_name }),
                    ..Handled::default()
                });
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_execution_does_not_exist()) => {}
            Err(e) => {
                return Err(FunctionError::from_sdk(
                    "Step Functions DescribeExecution",
                    e,
                ));
            }
        }
        let readiness = evaluate_stored(&self.clients, &plan).await?;
        if !readiness.drill_ready {
            let (subject, body) = skipped_drill_message(&readiness, scheduled_for);
            let message_id = sns::publish_text(
                &self.clients.sns,
                &self.topic_arn,
                &subject,
                &body,
                &[
                    ("plan", name),
                    ("mode", "drill"),
                    ("severity", "warning"),
                    ("event", "scheduled-drill-skipped"),
                ],
            )
            .await?;
            tracing::warn!(
                plan = name,
                message_id,
                "scheduled drill skipped: not ready"
            );
            return Ok(skipped(format!(
                "plan {name} is not ready for a drill: {}",
                readiness.verdict()
            )));
        }
        let input = scheduled_drill_input(name, &expression, scheduled_for);
        let started = sfn
            .start_execution()
            .state_machine_arn(&self.state_machine_arn)
            .name(&execution_name)
            .input(input.to_string())
            .send()
            .await;
        let outcome = match started {
            Ok(_) => DrillOutcome::Started { execution_name },
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_execution_already_exists()) =>
            {
                DrillOutcome::AlreadyStarted { execution_name }
            }
            Err(e) => return Err(FunctionError::from_sdk("Step Functions StartExecution", e)),
        };
        tracing::info!(plan = name, ?outcome, "scheduled drill");
        Ok(Handled {
            drill: Some(outcome),
            ..Handled::default()
        })
    }
}

fn lines(changes: Vec<(String, ScheduleChange)>) -> Vec<ScheduleLine> {
    changes
        .into_iter()
        .map(|(plan, change)| ScheduleLine { plan, change })
        .collect()
}

/// Evaluates each plan, records and reports it. A plan whose evaluation fails does not
/// stop the others; the first such failure is returned after all were tried (the
/// function fails, and its Errors alarm says so).
pub async fn watch_plans(
    clients: &Clients,
    topic_arn: &str,
    plans: &[Plan],
) -> Result<Vec<Watched>, FunctionError> {
    let mut watched = Vec::new();
    let mut first_failure = None;
    for plan in plans {
        match watch_plan(clients, topic_arn, plan).await {
            Ok(one) => watched.push(one),
            Err(error) => {
                tracing::error!(plan = plan.name, %error, "plan not evaluated");
                first_failure.get_or_insert(error);
            }
        }
    }
    match first_failure {
        Some(error) => Err(error),
        None => Ok(watched),
    }
}

/// One plan: evaluated, compared with its last record, recorded, e-mailed if it changed.
pub async fn watch_plan(
    clients: &Clients,
    topic_arn: &str,
    plan: &Plan,
) -> Result<Watched, FunctionError> {
    let record = keys::plan_readiness(&plan.name);
    // Read before the evaluation: an evaluation that records in the meantime makes this
    // one's write lose, and its verdict is at least as new.
    let earlier_version = clients.store.get_text_versioned(record.key()).await?;
    let earlier: Option<PlanReadiness> = earlier_version.as_ref().and_then(|(text, _)| {
        serde_json::from_str(text)
            // A record of an older shape is replaced, as if there were none.
            .inspect_err(|problem| {
                tracing::warn!(key = record.key(), %problem, "earlier readiness not read");
            })
            .ok()
    });
    let readiness = evaluate_stored(clients, plan).await?;
    let expected_etag = earlier_version.as_ref().map(|(_, etag)| etag.as_str());
    let Some(written_etag) = clients
        .store
        .write_if(&record, &readiness, expected_etag)
        .await?
    else {
        tracing::info!(
            plan = plan.name,
            "another evaluation recorded this plan's readiness first: it e-mails any change"
        );
        return Ok(watched(plan, &readiness, None));
    };
    let notified = if readiness.changed_from(earlier.as_ref()) {
        let (subject, body) = readiness.change_message(earlier.as_ref());
        let severity = if readiness.ready() { "info" } else { "warning" };
        let published = sns::publish_text(
            &clients.sns,
            topic_arn,
            &subject,
            &body,
            &[
                ("plan", plan.name.as_str()),
                ("severity", severity),
                ("event", "readiness-changed"),
            ],
        )
        .await;
        let message_id = match published {
            Ok(message_id) => message_id,
            Err(error) => {
                put_back(clients, record.key(), earlier_version, &written_etag).await;
                return Err(error);
            }
        };
        tracing::info!(
            plan = plan.name,
            message_id,
            subject,
            "readiness change e-mailed"
        );
        Some(message_id)
    } else {
        None
    };
    Ok(watched(plan, &readiness, notified))
}

/// What [`watch_plan`] returns, and the plan's data point.
fn watched(plan: &Plan, readiness: &PlanReadiness, notified: Option<String>) -> Watched {
    metrics::gauge(
        PLAN_READY_METRIC,
        &[("Plan", plan.name.as_str())],
        if readiness.ready() { 1.0 } else { 0.0 },
    );
    Watched {
        plan: plan.name.clone(),
        recovery_ready: readiness.recovery_ready,
        drill_ready: readiness.drill_ready,
        blocking: readiness
            .findings
            .iter()
            .filter(|f| f.severity == drplan_core::evaluation::Severity::Blocks)
            .count(),
        notified,
    }
}

/// After a change's e-mail failed: the record as it was before this evaluation (or none),
/// unless another evaluation wrote since, so that the next evaluation retries the e-mail.
async fn put_back(
    clients: &Clients,
    key: &str,
    earlier_version: Option<(String, String)>,
    written_etag: &str,
) {
    let restored = match earlier_version {
        Some((text, _)) => clients
            .store
            .put_text_if(key, text, Some(written_etag))
            .await
            .map(|written| written.is_some()),
        None => clients.store.delete_if(key, written_etag).await,
    };
    match restored {
        Ok(true) => tracing::info!(
            key,
            "earlier readiness put back: the next evaluation e-mails"
        ),
        Ok(false) => tracing::warn!(key, "readiness changed again meanwhile: not put back"),
        Err(error) => tracing::error!(key, %error, "earlier readiness not put back"),
    }
}
