use super::*;
use crate::parse::{Format, parse_plan};
use jiff::Timestamp;
use serde_json::{Value, json};

/// The stack the tests' events come from (the samples' account and Region).
pub(super) fn home() -> StackOrigin {
    StackOrigin {
        account: "123456789012".into(),
        region: "us-east-1".into(),
    }
}

pub(super) fn alarm_event(name: &str, state: &str, timestamp: &str) -> Value {
    json!({
        "version": "0", "id": "c4c1c1c9", "detail-type": ALARM_STATE_CHANGE,
        "source": "aws.cloudwatch", "account": "123456789012",
        "time": "2026-11-28T03:00:00Z", "region": "us-east-1",
        "resources": [format!("arn:aws:cloudwatch:us-east-1:123456789012:alarm:{name}")],
        "detail": {
            "alarmName": name,
            "state": {"value": state, "reason": "Threshold Crossed", "timestamp": timestamp},
            "previousState": {"value": "OK", "reason": "", "timestamp": "2026-11-28T02:00:00.000+0000"},
            "configuration": {"metrics": [{"id": "m1", "metricStat": {"metric": {"name": "CPUUtilization", "namespace": "AWS/EC2"}, "period": 60, "stat": "Average"}, "returnData": true}]}
        }
    })
}

pub(super) fn alarm(name: &str, timestamp: &str) -> AlarmStateChange {
    match read_event(&alarm_event(name, "ALARM", timestamp), &home()) {
        Ok(TriggerEvent::Alarm(a)) => a,
        other => panic!("not an alarm: {other:?}"),
    }
}

pub(super) fn stored(text: &str) -> StoredPlan {
    let plan = parse_plan(text, Format::Yaml).expect("plan");
    StoredPlan {
        name: plan.name.clone(),
        plan,
    }
}

pub(super) fn shop() -> StoredPlan {
    stored(
        "name: shop\nrto_minutes: 30\nrpo_minutes: 5\nselector: {dr:plan: shop}\n\
         waves:\n  - {name: db, selector: {dr:wave: db}}\n  - {name: app, selector: {dr:wave: app}, depends_on: [db]}\n\
         triggers: {alarms: [\"shop-primary-*\"], mode: recovery, min_gap_minutes: 30}\n",
    )
}

#[test]
fn one_state_change_is_one_execution_name_and_the_next_is_another() {
    let first = alarm("shop-primary-down", "2026-11-28T03:00:00.000+0000");
    let name = alarm_execution_name("shop", &first);
    assert_eq!(name, alarm_execution_name("shop", &first.clone()));
    assert!(name.starts_with("shop-alarm-20261128T030000Z-"), "{name}");
    let next = alarm("shop-primary-down", "2026-11-28T04:00:00.000+0000");
    assert_ne!(name, alarm_execution_name("shop", &next));
    assert!(is_automatic_run_of(&name, "shop"));
    assert!(!is_automatic_run_of(&name, "sho"));
    assert!(!is_automatic_run_of(
        "shop-drill-20261128T030000Z-001",
        "shop"
    ));
    let long = "p".repeat(64);
    let long_name = alarm_execution_name(&long, &first);
    assert!(long_name.len() <= 80, "{long_name}");
    assert!(is_automatic_run_of(&long_name, &long));
    assert!(
        long_name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    );
}

#[test]
fn duplicates_are_ignored_and_runs_within_the_gap_are_suppressed() {
    let plans = vec![shop()];
    let a = alarm("shop-primary-down", "2026-11-28T03:00:00.000+0000");
    let route = &route_alarm(&a, &plans).expect("route").routes[0];
    let now: Timestamp = "2026-11-28T03:01:00Z".parse().expect("time");
    let own = alarm_execution_name("shop", &a);
    assert_eq!(
        decide_alarm_start(route, &a, &[], now),
        AlarmDecision::Start {
            execution_name: own.clone()
        }
    );
    let mine = KnownExecution {
        name: own.clone(),
        plan: Some("shop".into()),
        running: true,
        started: now,
    };
    assert!(matches!(
        decide_alarm_start(route, &a, std::slice::from_ref(&mine), now),
        AlarmDecision::Duplicate { .. }
    ));
    let later = alarm("shop-primary-down", "2026-11-28T03:10:00.000+0000");
    assert!(matches!(
        decide_alarm_start(route, &later, std::slice::from_ref(&mine), now),
        AlarmDecision::Suppressed(Suppression::Running { .. })
    ));
    let finished = KnownExecution {
        running: false,
        ..mine.clone()
    };
    let in_gap: Timestamp = "2026-11-28T03:20:00Z".parse().expect("time");
    assert!(matches!(
        decide_alarm_start(route, &later, std::slice::from_ref(&finished), in_gap),
        AlarmDecision::Suppressed(Suppression::TooSoon { .. })
    ));
    let after_gap: Timestamp = "2026-11-28T03:40:00Z".parse().expect("time");
    assert!(matches!(
        decide_alarm_start(route, &later, &[finished], after_gap),
        AlarmDecision::Start { .. }
    ));
    // A manual run that finished does not hold back an alarm.
    let manual = KnownExecution {
        name: "shop-drill-20261128T030000Z-001".into(),
        plan: Some("shop".into()),
        running: false,
        started: now,
    };
    assert!(matches!(
        decide_alarm_start(route, &later, &[manual], in_gap),
        AlarmDecision::Start { .. }
    ));
}

#[test]
fn a_start_claim_holds_while_its_run_runs_or_is_about_to_start() {
    let now: Timestamp = "2026-11-28T03:00:30Z".parse().expect("time");
    let claim = StartClaim {
        execution_name: "shop-alarm-20261128T030000Z-0000beef".into(),
        claimed_at: "2026-11-28T03:00:00Z".parse().expect("time"),
    };
    let ours = "shop-alarm-20261128T030001Z-0000cafe";
    let held = ClaimVerdict::Held {
        execution_name: claim.execution_name.clone(),
    };
    assert_eq!(judge_start_claim(None, ours, &[], now), ClaimVerdict::Take);
    // Claimed 30 s ago, its StartExecution not listed yet: the other alarm is starting.
    assert_eq!(judge_start_claim(Some(&claim), ours, &[], now), held);
    // Our own claim (another delivery of the same change) never blocks us.
    assert_eq!(
        judge_start_claim(Some(&claim), &claim.execution_name, &[], now),
        ClaimVerdict::Take
    );
    let execution = |running| KnownExecution {
        name: claim.execution_name.clone(),
        plan: Some("shop".into()),
        running,
        started: claim.claimed_at,
    };
    let much_later: Timestamp = "2026-11-28T05:00:00Z".parse().expect("time");
    assert_eq!(
        judge_start_claim(Some(&claim), ours, &[execution(true)], much_later),
        held
    );
    assert_eq!(
        judge_start_claim(Some(&claim), ours, &[execution(false)], now),
        ClaimVerdict::Take
    );
    // A claimer that died before StartExecution holds the plan for two minutes only.
    assert_eq!(
        judge_start_claim(Some(&claim), ours, &[], much_later),
        ClaimVerdict::Take
    );
}
