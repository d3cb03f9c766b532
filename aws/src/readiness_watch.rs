//! The readiness function's work, on a schedule: every stored plan evaluated (the same
//! evaluation discover refuses runs with), its readiness kept at `readiness/PLAN.json`,
//! one `drplan/PlanReady` data point per plan (1 ready, 0 not), and an e-mail to on-call
//! staff when a plan's readiness changes, not on every evaluation.
//!
//! The record is written after the e-mail is published: an e-mail that fails leaves the
//! earlier record in place, so the next evaluation sees the change again and retries it.

use drplan_core::Plan;
use drplan_core::contract::{PlanSource, ReadinessInput, keys};
use drplan_core::evaluation::{PlanReadiness, evaluate_plan};
use jiff::Timestamp;
use serde::Serialize;

use crate::bootstrap::Clients;
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

impl LogContext for ReadinessInput {
    fn log_context(&self) -> (String, String, String) {
        (
            String::new(),
            self.plan.clone().unwrap_or_default(),
            String::new(),
        )
    }
}

/// The readiness function: the plan the input names, or every stored plan.
pub async fn watch(
    clients: &Clients,
    topic_arn: &str,
    input: ReadinessInput,
) -> Result<Vec<Watched>, FunctionError> {
    match input.plan {
        Some(name) => {
            let plan = plans::load_plan(&clients.store, &PlanSource::Name(name)).await?;
            Ok(vec![watch_plan(clients, topic_arn, &plan).await?])
        }
        None => watch_every_plan(clients, topic_arn).await,
    }
}

/// Evaluates every stored plan, records and reports each. A plan whose evaluation fails
/// does not stop the others; the first such failure is returned after all were tried
/// (the function fails, and its Errors alarm says so).
pub async fn watch_every_plan(
    clients: &Clients,
    topic_arn: &str,
) -> Result<Vec<Watched>, FunctionError> {
    let mut watched = Vec::new();
    let mut first_failure = None;
    for stored in plans::stored_plans(&clients.store).await? {
        match watch_plan(clients, topic_arn, &stored.plan).await {
            Ok(one) => watched.push(one),
            Err(error) => {
                tracing::error!(plan = stored.name, %error, "plan not evaluated");
                first_failure.get_or_insert(error);
            }
        }
    }
    match first_failure {
        Some(error) => Err(error),
        None => Ok(watched),
    }
}

/// One plan: evaluated, compared with its last record, e-mailed if it changed, recorded.
pub async fn watch_plan(
    clients: &Clients,
    topic_arn: &str,
    plan: &Plan,
) -> Result<Watched, FunctionError> {
    let readiness = evaluate_stored(clients, plan).await?;
    let record = keys::plan_readiness(&plan.name);
    let earlier = match clients.store.read(&record).await {
        Ok(earlier) => earlier,
        // A record of an older shape is replaced, as if there were none.
        Err(FunctionError::InvalidInput(problem)) => {
            tracing::warn!(key = record.key(), problem, "earlier readiness not read");
            None
        }
        Err(error) => return Err(error),
    };
    let notified = if readiness.changed_from(earlier.as_ref()) {
        let (subject, body) = readiness.change_message(earlier.as_ref());
        let severity = if readiness.ready() { "info" } else { "warning" };
        let message_id = sns::publish_text(
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
        .await?;
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
    clients.store.write(&record, &readiness).await?;
    metrics::gauge(
        PLAN_READY_METRIC,
        &[("Plan", plan.name.as_str())],
        if readiness.ready() { 1.0 } else { 0.0 },
    );
    Ok(Watched {
        plan: plan.name.clone(),
        recovery_ready: readiness.recovery_ready,
        drill_ready: readiness.drill_ready,
        blocking: readiness
            .findings
            .iter()
            .filter(|f| f.severity == drplan_core::evaluation::Severity::Blocks)
            .count(),
        notified,
    })
}
