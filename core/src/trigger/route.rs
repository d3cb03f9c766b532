//! Alarms → plans: which stored plans an alarm starts, and in which mode. Alarm tags are
//! trusted only by plans that opt in (`triggers.alarm_tags: true`): whoever may tag an
//! alarm could otherwise start any plan, or turn a drill into a recovery.

use std::fmt;

use super::AlarmStateChange;
use crate::contract::tags::{MODE as MODE_TAG, PLAN as PLAN_TAG};
use crate::plan::{Mode, Plan, Triggers};

/// A plan stored in the bucket, as far as alarm routing needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredPlan {
    pub name: String,
    pub plan: Plan,
}

/// A plan an alarm starts, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlarmRoute {
    pub plan: String,
    pub mode: Mode,
    pub min_gap_minutes: u32,
    /// How the alarm was mapped, for the log and the e-mails.
    pub matched_by: String,
    /// Tags of the alarm that did not count for this plan (a `drplan:mode` the plan does
    /// not accept): logged, and kept in the run's input.
    pub ignored_tags: Vec<IgnoredTag>,
}

/// An alarm tag that started nothing or changed nothing, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoredTag {
    /// The plan the tag was for (named by it, or mapped by the alarm's name).
    pub plan: String,
    /// `drplan:plan=shop`, `drplan:mode=recovery`.
    pub tag: String,
    pub reason: String,
}

impl fmt::Display for IgnoredTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "alarm tag {} ignored for plan {}: {}",
            self.tag, self.plan, self.reason
        )
    }
}

/// What an alarm starts: its routes (empty: the alarm is not mapped), and the tags of
/// the alarm that no route honours (a `drplan:plan` tag naming a plan that did not opt
/// in).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AlarmRouting {
    pub routes: Vec<AlarmRoute>,
    pub ignored_tags: Vec<IgnoredTag>,
}

impl AlarmRouting {
    /// Every ignored tag, the routing's and its routes'.
    pub fn all_ignored_tags(&self) -> impl Iterator<Item = &IgnoredTag> {
        self.ignored_tags
            .iter()
            .chain(self.routes.iter().flat_map(|route| &route.ignored_tags))
    }
}

/// An alarm that names a plan the bucket does not hold, or a mode that does not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error(
        "alarm {alarm} is tagged {PLAN_TAG}={plan}, and no plan of that name is stored (plans/{plan}.yaml)"
    )]
    UnknownPlan { alarm: String, plan: String },
    #[error("alarm {alarm} is tagged {MODE_TAG}={mode}: use drill or recovery")]
    BadMode { alarm: String, mode: String },
}

const NOT_OPTED_IN: &str =
    "the plan does not accept alarm tags (its triggers do not say alarm_tags: true)";

/// The plans an alarm starts. Its `drplan:plan` tag decides, when the plan it names opts
/// in to alarm tags; otherwise (no tag, or a plan that did not opt in) every stored plan
/// whose `triggers.alarms` covers the alarm's name.
pub fn route_alarm(
    alarm: &AlarmStateChange,
    plans: &[StoredPlan],
) -> Result<AlarmRouting, RouteError> {
    let mut routing = AlarmRouting::default();
    if let Some(plan_name) = alarm.tags.get(PLAN_TAG) {
        let stored =
            plans
                .iter()
                .find(|p| &p.name == plan_name)
                .ok_or_else(|| RouteError::UnknownPlan {
                    alarm: alarm.alarm_name.clone(),
                    plan: plan_name.clone(),
                })?;
        match stored.plan.triggers.as_ref().filter(|t| t.alarm_tags) {
            Some(triggers) => {
                let route = route(
                    alarm,
                    stored,
                    triggers,
                    format!("alarm tag {PLAN_TAG}={plan_name}"),
                )?;
                routing.routes.push(route);
                return Ok(routing);
            }
            None => routing.ignored_tags.push(IgnoredTag {
                plan: stored.name.clone(),
                tag: format!("{PLAN_TAG}={plan_name}"),
                reason: NOT_OPTED_IN.to_owned(),
            }),
        }
    }
    for stored in plans {
        let Some(triggers) = stored.plan.triggers.as_ref() else {
            continue;
        };
        let Some(pattern) =
            triggers
                .alarms
                .iter()
                .find(|pattern| match pattern.strip_suffix('*') {
                    Some(prefix) => alarm.alarm_name.starts_with(prefix),
                    None => alarm.alarm_name == **pattern,
                })
        else {
            continue;
        };
        let matched_by = format!("plan {} triggers.alarms {pattern:?}", stored.name);
        routing
            .routes
            .push(route(alarm, stored, triggers, matched_by)?);
    }
    Ok(routing)
}

/// The route of an alarm mapped to `stored`, its mode as the plan's triggers and (when
/// the plan accepts alarm tags) the alarm's `drplan:mode` tag say.
fn route(
    alarm: &AlarmStateChange,
    stored: &StoredPlan,
    triggers: &Triggers,
    matched_by: String,
) -> Result<AlarmRoute, RouteError> {
    let mut ignored_tags = Vec::new();
    let mut ignore = |tag: &str, reason: &str| {
        ignored_tags.push(IgnoredTag {
            plan: stored.name.clone(),
            tag: format!("{MODE_TAG}={tag}"),
            reason: reason.to_owned(),
        });
    };
    let mode = match alarm.tags.get(MODE_TAG) {
        None => triggers.mode,
        Some(tag) if !triggers.alarm_tags => {
            ignore(tag, NOT_OPTED_IN);
            triggers.mode
        }
        Some(tag) => {
            // An alarm never starts a failback: a person does, once it is in sync.
            let asked = Mode::ALL
                .iter()
                .find(|(name, _)| name == tag)
                .map(|(_, mode)| *mode)
                .filter(|mode| *mode != Mode::Failback)
                .ok_or_else(|| RouteError::BadMode {
                    alarm: alarm.alarm_name.clone(),
                    mode: tag.clone(),
                })?;
            match (triggers.mode, asked) {
                // A tag may make a run a drill; it never makes a drill plan's run a recovery.
                (Mode::Drill, Mode::Recovery) => {
                    ignore(
                        tag,
                        "the plan's alarm runs are drills (triggers.mode: drill), and a tag never turns a drill into a recovery",
                    );
                    Mode::Drill
                }
                (_, asked) => asked,
            }
        }
    };
    Ok(AlarmRoute {
        plan: stored.name.clone(),
        mode,
        min_gap_minutes: triggers.min_gap_minutes,
        matched_by,
        ignored_tags,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{Format, parse_plan};
    use crate::plan::DEFAULT_TRIGGER_MIN_GAP_MINUTES;
    use crate::trigger::tests::{alarm, shop, stored};

    fn tagged(name: &str, tags: &[(&str, &str)]) -> AlarmStateChange {
        let mut alarm = alarm(name, "2026-11-28T03:00:00.000+0000");
        for (key, value) in tags {
            alarm.tags.insert((*key).to_owned(), (*value).to_owned());
        }
        alarm
    }

    fn plan_with(name: &str, triggers: &str) -> StoredPlan {
        stored(&format!(
            "name: {name}\nrto_minutes: 10\nselector: {{dr:plan: {name}}}\n{triggers}"
        ))
    }

    fn routes(alarm: &AlarmStateChange, plans: &[StoredPlan]) -> Vec<(String, Mode)> {
        route_alarm(alarm, plans)
            .expect("route")
            .routes
            .into_iter()
            .map(|route| (route.plan, route.mode))
            .collect()
    }

    #[test]
    fn alarms_route_by_name_and_by_the_tag_of_a_plan_that_opted_in() {
        let plans = vec![
            shop(),
            plan_with("pay", "triggers: {alarm_tags: true}\n"),
            plan_with("web", ""),
        ];
        let by_name = route_alarm(&tagged("shop-primary-down", &[]), &plans).expect("route");
        assert_eq!(by_name.routes.len(), 1);
        assert_eq!(
            (by_name.routes[0].plan.as_str(), by_name.routes[0].mode),
            ("shop", Mode::Recovery)
        );
        assert_eq!(by_name.routes[0].min_gap_minutes, 30);
        assert!(routes(&tagged("shop-other", &[]), &plans).is_empty());
        let to_pay = tagged(
            "payments-latency",
            &[(PLAN_TAG, "pay"), (MODE_TAG, "drill")],
        );
        let routing = route_alarm(&to_pay, &plans).expect("route");
        assert_eq!(
            (routing.routes[0].plan.as_str(), routing.routes[0].mode),
            ("pay", Mode::Drill)
        );
        assert_eq!(
            routing.routes[0].min_gap_minutes,
            DEFAULT_TRIGGER_MIN_GAP_MINUTES
        );
        assert_eq!(routing.all_ignored_tags().count(), 0);
        let nowhere = tagged("payments-latency", &[(PLAN_TAG, "nope")]);
        assert!(matches!(
            route_alarm(&nowhere, &plans),
            Err(RouteError::UnknownPlan { .. })
        ));
        let typo = tagged("payments-latency", &[(PLAN_TAG, "pay"), (MODE_TAG, "dril")]);
        assert!(matches!(
            route_alarm(&typo, &plans),
            Err(RouteError::BadMode { .. })
        ));
    }

    #[test]
    fn a_tag_naming_a_plan_that_did_not_opt_in_starts_nothing() {
        // web has no triggers, shop has triggers without alarm_tags: neither accepts tags.
        let plans = vec![shop(), plan_with("web", "")];
        for plan in ["web", "shop"] {
            let routing = route_alarm(&tagged("payments-latency", &[(PLAN_TAG, plan)]), &plans)
                .expect("route");
            assert!(routing.routes.is_empty(), "{plan}: {routing:?}");
            let ignored: Vec<String> = routing.all_ignored_tags().map(|t| t.to_string()).collect();
            assert_eq!(
                ignored,
                vec![format!(
                    "alarm tag drplan:plan={plan} ignored for plan {plan}: {NOT_OPTED_IN}"
                )]
            );
        }
        // The alarm still starts what its name is listed for, as if it had no tag.
        let listed = tagged(
            "shop-primary-down",
            &[(PLAN_TAG, "web"), (MODE_TAG, "drill")],
        );
        let routing = route_alarm(&listed, &plans).expect("route");
        assert_eq!(
            routes(&listed, &plans),
            vec![("shop".into(), Mode::Recovery)]
        );
        let ignored: Vec<&str> = routing.all_ignored_tags().map(|t| t.tag.as_str()).collect();
        assert_eq!(ignored, vec!["drplan:plan=web", "drplan:mode=drill"]);
    }

    #[test]
    fn a_mode_tag_makes_a_run_a_drill_and_never_a_recovery() {
        let recovery = plan_with("pay", "triggers: {alarm_tags: true, mode: recovery}\n");
        let drill = plan_with("lab", "triggers: {alarm_tags: true, mode: drill}\n");
        let plans = [recovery, drill];
        let mode = |plan: &str, tag: Option<&str>| {
            let mut tags = vec![(PLAN_TAG, plan)];
            tags.extend(tag.map(|t| (MODE_TAG, t)));
            let routing = route_alarm(&tagged("a", &tags), &plans).expect("route");
            let route = routing.routes.into_iter().next().expect("one route");
            (route.mode, route.ignored_tags.len())
        };
        assert_eq!(mode("pay", None), (Mode::Recovery, 0));
        assert_eq!(mode("pay", Some("drill")), (Mode::Drill, 0));
        assert_eq!(mode("pay", Some("recovery")), (Mode::Recovery, 0));
        assert_eq!(mode("lab", None), (Mode::Drill, 0));
        assert_eq!(mode("lab", Some("drill")), (Mode::Drill, 0));
        // Asked for a recovery of a drill plan: still a drill, and the tag is reported.
        assert_eq!(mode("lab", Some("recovery")), (Mode::Drill, 1));
        let routing = route_alarm(
            &tagged("a", &[(PLAN_TAG, "lab"), (MODE_TAG, "recovery")]),
            &plans,
        )
        .expect("route");
        assert!(
            routing.routes[0].ignored_tags[0]
                .to_string()
                .contains("never turns a drill into a recovery")
        );
    }

    #[test]
    fn a_plan_lists_alarms_or_opts_in_to_alarm_tags() {
        let issues = |triggers: &str| -> Vec<String> {
            let text = format!(
                "name: p\nrto_minutes: 10\nselector: {{dr:plan: p}}\ntriggers: {triggers}\n"
            );
            match parse_plan(&text, Format::Yaml) {
                Ok(_) => Vec::new(),
                Err(issues) => issues
                    .iter()
                    .map(|i| format!("{}: {}", i.path, i.message))
                    .collect(),
            }
        };
        assert_eq!(issues("{alarm_tags: true}"), Vec::<String>::new());
        assert_eq!(
            issues("{alarms: [], alarm_tags: true}"),
            Vec::<String>::new()
        );
        assert_eq!(
            issues("{alarms: [a], alarm_tags: false}"),
            Vec::<String>::new()
        );
        for refused in [
            "{mode: drill}",
            "{alarms: []}",
            "{alarms: [], alarm_tags: false}",
        ] {
            let found = issues(refused);
            assert_eq!(found.len(), 1, "{refused}: {found:?}");
            assert!(
                found[0].starts_with("triggers.alarms: lists no alarm")
                    && found[0].contains("alarm_tags: true"),
                "{refused}: {found:?}"
            );
        }
        assert_eq!(
            issues("{alarms: [a], alarm_tags: yes please}"),
            vec![
                "triggers.alarm_tags: must be true or false, found the string \"yes please\""
                    .to_owned()
            ]
        );
        // A plan that opted in keeps the opt-in through its JSON form (inline plans).
        let text =
            "name: p\nrto_minutes: 10\nselector: {dr:plan: p}\ntriggers: {alarm_tags: true}\n";
        let plan = parse_plan(text, Format::Yaml).expect("valid");
        let json = serde_json::to_value(&plan).expect("JSON");
        assert_eq!(
            json["triggers"],
            serde_json::json!({"alarm_tags": true, "mode": "recovery", "min_gap_minutes": 60})
        );
        assert_eq!(crate::parse::plan_from_value(&json).expect("valid"), plan);
    }
}
