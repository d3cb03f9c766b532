//! Drill schedules follow the stored plans: each plan with `drill.schedule` has one
//! EventBridge Scheduler schedule (`drplan-drill-PLAN` in the stack's schedule group)
//! whose firing invokes the readiness function with `{"scheduled_drill": PLAN, ...}`;
//! a plan without one, or no longer stored, has none. Brought in line when a plan is
//! stored or deleted (S3 events) and on every 30-minute evaluation.

use aws_sdk_scheduler::types::{FlexibleTimeWindow, FlexibleTimeWindowMode, Target};
use drplan_core::Plan;
use drplan_core::schedule::{
    DRILL_SCHEDULE_PREFIX, drill_schedule_input, drill_schedule_name, plan_of_schedule,
};
use serde::Serialize;

use crate::FunctionError;
use crate::bootstrap::required_env;

/// Where the schedules live and what they invoke, from the function's environment.
#[derive(Debug, Clone)]
pub struct DrillSchedules {
    pub client: aws_sdk_scheduler::Client,
    /// `DRPLAN_DRILL_SCHEDULE_GROUP`.
    pub group: String,
    /// `DRPLAN_READINESS_FUNCTION_ARN`: the target of every firing.
    pub target_arn: String,
    /// `DRPLAN_DRILL_SCHEDULER_ROLE_ARN`: the role Scheduler invokes it with.
    pub role_arn: String,
}

/// What bringing one plan's schedule in line did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleChange {
    Created,
    Updated,
    Deleted,
    Unchanged,
    None,
}

impl DrillSchedules {
    pub fn from_env(config: &aws_config::SdkConfig) -> Result<Self, FunctionError> {
        Ok(Self {
            client: aws_sdk_scheduler::Client::new(config),
            group: required_env("DRPLAN_DRILL_SCHEDULE_GROUP")?,
            target_arn: required_env("DRPLAN_READINESS_FUNCTION_ARN")?,
            role_arn: required_env("DRPLAN_DRILL_SCHEDULER_ROLE_ARN")?,
        })
    }

    /// The expression of the plan's schedule as it is now, if it has one.
    async fn current(&self, plan: &str) -> Result<Option<String>, FunctionError> {
        let answer = self
            .client
            .get_schedule()
            .group_name(&self.group)
            .name(drill_schedule_name(plan))
            .send()
            .await;
        match answer {
            Ok(schedule) => Ok(Some(
                schedule
                    .schedule_expression()
                    .unwrap_or_default()
                    .to_owned(),
            )),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(FunctionError::from_sdk("Scheduler GetSchedule", e)),
        }
    }

    /// Makes the plan's schedule say what `wanted` says (`None`: no schedule).
    pub async fn bring_in_line(
        &self,
        plan: &str,
        wanted: Option<&str>,
    ) -> Result<ScheduleChange, FunctionError> {
        let current = self.current(plan).await?;
        let name = drill_schedule_name(plan);
        let change = match (wanted, current.as_deref()) {
            (None, None) => return Ok(ScheduleChange::None),
            (Some(wanted), Some(current)) if wanted == current => {
                return Ok(ScheduleChange::Unchanged);
            }
            (None, Some(_)) => {
                self.client
                    .delete_schedule()
                    .group_name(&self.group)
                    .name(&name)
                    .send()
                    .await
                    .map_err(|e| FunctionError::from_sdk("Scheduler DeleteSchedule", e))?;
                ScheduleChange::Deleted
            }
            (Some(wanted), None) => {
                self.client
                    .create_schedule()
                    .group_name(&self.group)
                    .name(&name)
                    .schedule_expression(wanted)
                    .description(self.description(plan))
                    .flexible_time_window(self.exact()?)
                    .target(self.target(plan)?)
                    .send()
                    .await
                    .map_err(|e| FunctionError::from_sdk("Scheduler CreateSchedule", e))?;
                ScheduleChange::Created
            }
            (Some(wanted), Some(_)) => {
                // UpdateSchedule replaces the whole schedule: every field is given again.
                self.client
                    .update_schedule()
                    .group_name(&self.group)
                    .name(&name)
                    .schedule_expression(wanted)
                    .description(self.description(plan))
                    .flexible_time_window(self.exact()?)
                    .target(self.target(plan)?)
                    .send()
                    .await
                    .map_err(|e| FunctionError::from_sdk("Scheduler UpdateSchedule", e))?;
                ScheduleChange::Updated
            }
        };
        tracing::info!(
            plan,
            schedule = name,
            ?change,
            wanted,
            "drill schedule brought in line"
        );
        Ok(change)
    }

    /// Every plan's schedule in line with the stored plans; schedules of plans no longer
    /// stored are deleted.
    pub async fn bring_all_in_line(
        &self,
        plans: &[Plan],
    ) -> Result<Vec<(String, ScheduleChange)>, FunctionError> {
        let mut changes = Vec::new();
        for plan in plans {
            let wanted = plan.drill.as_ref().and_then(|d| d.schedule.as_deref());
            let change = self.bring_in_line(&plan.name, wanted).await?;
            changes.push((plan.name.clone(), change));
        }
        let mut pages = self
            .client
            .list_schedules()
            .group_name(&self.group)
            .name_prefix(DRILL_SCHEDULE_PREFIX)
            .into_paginator()
            .send();
        let mut orphans = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| FunctionError::from_sdk("Scheduler ListSchedules", e))?;
            for schedule in page.schedules() {
                if let Some(plan) = schedule.name().and_then(plan_of_schedule)
                    && !plans.iter().any(|p| p.name == plan)
                {
                    orphans.push(plan.to_owned());
                }
            }
        }
        for plan in orphans {
            let change = self.bring_in_line(&plan, None).await?;
            changes.push((plan, change));
        }
        Ok(changes)
    }

    fn description(&self, plan: &str) -> String {
        format!(
            "drplan: a drill of plan {plan} (drill.schedule); skipped when the plan is not ready"
        )
    }

    /// Fires at the scheduled time, not within a window: a drill's time is chosen.
    fn exact(&self) -> Result<FlexibleTimeWindow, FunctionError> {
        FlexibleTimeWindow::builder()
            .mode(FlexibleTimeWindowMode::Off)
            .build()
            .map_err(|e| FunctionError::InvalidInput(format!("schedule time window: {e}")))
    }

    fn target(&self, plan: &str) -> Result<Target, FunctionError> {
        Target::builder()
            .arn(&self.target_arn)
            .role_arn(&self.role_arn)
            .input(drill_schedule_input(plan))
            .build()
            .map_err(|e| FunctionError::InvalidInput(format!("schedule target: {e}")))
    }
}
