//! Scheduled drills: `drill.schedule` is an EventBridge Scheduler expression, and each
//! stored plan that has one gets one schedule, named after the plan, whose firing asks
//! the readiness function for a drill of the plan. Here: the expression's check, the
//! schedule's name and input, and what a firing starts (or why it is skipped).

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// Schedules drplan makes are named this, then the plan's name.
pub const DRILL_SCHEDULE_PREFIX: &str = "drplan-drill-";
/// Scheduler's longest schedule name.
pub const MAX_SCHEDULE_NAME: usize = 64;
/// What Scheduler replaces with the time a firing was scheduled for, in a target's input.
pub const SCHEDULED_TIME: &str = "<aws.scheduler.scheduled-time>";

/// The schedule of a plan's drills.
pub fn drill_schedule_name(plan: &str) -> String {
    format!("{DRILL_SCHEDULE_PREFIX}{plan}")
}

/// The plan a schedule drplan made is for.
pub fn plan_of_schedule(name: &str) -> Option<&str> {
    name.strip_prefix(DRILL_SCHEDULE_PREFIX)
        .filter(|plan| !plan.is_empty())
}

/// What a firing sends the readiness function: the plan, and when the firing was
/// scheduled for (so a firing delivered twice starts one drill).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduledDrill {
    pub scheduled_drill: String,
    pub scheduled_time: String,
}

/// The schedule's input, with Scheduler's placeholder for the time.
pub fn drill_schedule_input(plan: &str) -> String {
    serde_json::json!({ "scheduled_drill": plan, "scheduled_time": SCHEDULED_TIME }).to_string()
}

/// The drill a firing starts: named after the plan and the time it was scheduled for.
pub fn scheduled_drill_execution_name(plan: &str, scheduled_for: Timestamp) -> String {
    format!(
        "{plan}-drill-{}-scheduled",
        scheduled_for.strftime("%Y%m%dT%H%M%SZ")
    )
}

/// The ARN of execution `name` of the state machine `state_machine_arn`
/// (`arn:aws:states:R:A:stateMachine:M` → `arn:aws:states:R:A:execution:M:NAME`).
pub fn execution_arn(state_machine_arn: &str, name: &str) -> Option<String> {
    let (head, machine) = state_machine_arn.split_once(":stateMachine:")?;
    Some(format!("{head}:execution:{machine}:{name}"))
}

/// The execution input of a scheduled drill: the stored plan by name, as a drill, with
/// what started it (the report shows it).
pub fn scheduled_drill_input(
    plan: &str,
    expression: &str,
    scheduled_for: Timestamp,
) -> serde_json::Value {
    serde_json::json!({
        "plan": plan,
        "mode": "drill",
        "trigger": {
            "schedule": drill_schedule_name(plan),
            "schedule_expression": expression,
            "scheduled_time": scheduled_for.to_string(),
        },
    })
}

/// The e-mail when a scheduled drill is skipped because the plan is not ready for one:
/// (subject, body).
pub fn skipped_drill_message(
    readiness: &crate::evaluation::PlanReadiness,
    scheduled_for: Timestamp,
) -> (String, String) {
    let plan = &readiness.plan;
    let mut subject = format!("drplan: scheduled drill of plan {plan} skipped: not ready");
    subject.truncate(100);
    let body = format!(
        "The drill of plan {plan} scheduled for {scheduled_for} (drill.schedule) did not start: the plan is not ready for a drill, and a drill that cannot launch proves nothing. Nothing was launched.\n\n{}\nFix each finding that blocks a drill; `drplan readiness {plan}` evaluates the plan again, and `drplan start {plan} --mode drill` runs the drill now. The schedule stays as it is.\n",
        readiness.to_text()
    );
    (subject, body)
}

/// Why `expression` cannot be a drill schedule, if it cannot. Scheduler's own forms:
/// `rate(N minutes|hours|days)`, `cron(minutes hours day-of-month month day-of-week
/// year)`, `at(yyyy-mm-ddThh:mm:ss)`. A drill launches every server of the plan, so a
/// schedule fires at most once a day: a rate of at least a day, a cron at one minute of
/// one hour.
pub fn drill_schedule_problem(expression: &str) -> Option<String> {
    let shape = "must be rate(N days), cron(MIN HOUR DAY-OF-MONTH MONTH DAY-OF-WEEK YEAR) or at(yyyy-mm-ddThh:mm:ss)";
    if let Some(inner) = expression
        .strip_prefix("rate(")
        .and_then(|r| r.strip_suffix(')'))
    {
        let mut parts = inner.split(' ');
        let (Some(count), Some(unit), None) = (parts.next(), parts.next(), parts.next()) else {
            return Some(format!("{expression:?} {shape}"));
        };
        let Ok(count) = count.parse::<u64>() else {
            return Some(format!("{expression:?}: {count:?} is not a whole number"));
        };
        let minutes_each = match unit {
            "minute" | "minutes" => 1,
            "hour" | "hours" => 60,
            "day" | "days" => 24 * 60,
            _ => {
                return Some(format!(
                    "{expression:?}: the unit must be minutes, hours or days"
                ));
            }
        };
        if count == 0 {
            return Some(format!("{expression:?}: the rate must be at least 1"));
        }
        if (count == 1) == unit.ends_with('s') {
            return Some(format!(
                "{expression:?}: Scheduler wants the singular unit for 1 and the plural otherwise"
            ));
        }
        if count * minutes_each < 24 * 60 {
            return Some(format!(
                "{expression:?} would drill more than once a day: a drill launches every server of the plan; use at least rate(1 day)"
            ));
        }
        return None;
    }
    if let Some(inner) = expression
        .strip_prefix("cron(")
        .and_then(|r| r.strip_suffix(')'))
    {
        let fields: Vec<&str> = inner.split(' ').collect();
        if fields.len() != 6 || fields.iter().any(|f| f.is_empty()) {
            return Some(format!(
                "{expression:?} has {} fields; cron() takes 6: minutes hours day-of-month month day-of-week year",
                fields.len()
            ));
        }
        for (field, name, max) in [(fields[0], "minutes", 59), (fields[1], "hours", 23)] {
            if !field.parse::<u32>().is_ok_and(|n| n <= max) {
                return Some(format!(
                    "{expression:?}: its {name} field must be one number (0 to {max}): a drill fires at one time of day, not {field:?}"
                ));
            }
        }
        if fields[2] != "?" && fields[4] != "?" {
            return Some(format!(
                "{expression:?}: one of day-of-month and day-of-week must be ?"
            ));
        }
        return None;
    }
    if let Some(inner) = expression
        .strip_prefix("at(")
        .and_then(|r| r.strip_suffix(')'))
    {
        return match jiff::civil::DateTime::strptime("%Y-%m-%dT%H:%M:%S", inner) {
            Ok(_) => None,
            Err(_) => Some(format!(
                "{expression:?}: at() takes a date and time, yyyy-mm-ddThh:mm:ss"
            )),
        };
    }
    Some(format!("{expression:?} {shape}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheduler_forms_that_fire_at_most_daily_are_accepted() {
        for ok in [
            "rate(1 day)",
            "rate(7 days)",
            "rate(48 hours)",
            "cron(0 3 ? * SUN *)",
            "cron(30 2 1 * ? *)",
            "at(2027-01-10T03:00:00)",
        ] {
            assert_eq!(drill_schedule_problem(ok), None, "{ok}");
        }
    }

    #[test]
    fn other_expressions_are_refused_with_the_reason() {
        let said = |e: &str| drill_schedule_problem(e).unwrap_or_default();
        assert!(said("rate(5 minutes)").contains("more than once a day"));
        assert!(said("rate(1 days)").contains("singular"));
        assert!(said("rate(0 days)").contains("at least 1"));
        assert!(said("rate(1 week)").contains("minutes, hours or days"));
        assert!(said("cron(0 3 * * ?)").contains("has 5 fields"));
        assert!(said("cron(*/5 3 ? * SUN *)").contains("minutes field"));
        assert!(said("cron(0 * ? * SUN *)").contains("hours field"));
        assert!(said("cron(0 3 1 * MON *)").contains("must be ?"));
        assert!(said("at(tomorrow)").contains("yyyy-mm-ddThh:mm:ss"));
        assert!(said("weekly").contains("must be rate("));
    }

    #[test]
    fn an_execution_arn_follows_its_state_machine() {
        assert_eq!(
            execution_arn(
                "arn:aws:states:us-east-1:1:stateMachine:drplan-recovery",
                "x"
            )
            .as_deref(),
            Some("arn:aws:states:us-east-1:1:execution:drplan-recovery:x")
        );
        assert_eq!(execution_arn("not an arn", "x"), None);
    }

    #[test]
    fn names_and_inputs_round_trip() {
        assert_eq!(drill_schedule_name("shop"), "drplan-drill-shop");
        assert_eq!(plan_of_schedule("drplan-drill-shop"), Some("shop"));
        assert_eq!(plan_of_schedule("drplan-drill-"), None);
        assert_eq!(plan_of_schedule("other"), None);
        let input: ScheduledDrill =
            serde_json::from_str(&drill_schedule_input("shop")).expect("JSON");
        assert_eq!(input.scheduled_drill, "shop");
        assert_eq!(input.scheduled_time, SCHEDULED_TIME);
        let at: Timestamp = "2027-01-10T03:00:00Z".parse().expect("a time");
        assert_eq!(
            scheduled_drill_execution_name("shop", at),
            "shop-drill-20270110T030000Z-scheduled"
        );
    }
}
