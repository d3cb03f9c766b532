use super::*;
use crate::plan::{AliasTarget, DnsMode, DnsRecord, RecordType};

fn values(name: &str, ttl: u32, values: &[&str]) -> RecordSet {
    RecordSet {
        name: name.into(),
        record_type: "A".into(),
        ttl,
        values: values.iter().map(|v| (*v).to_owned()).collect(),
        alias: None,
    }
}

fn lb(name: &str, dns_name: &str) -> RecordSet {
    RecordSet {
        name: name.into(),
        record_type: "A".into(),
        ttl: 0,
        values: Vec::new(),
        alias: Some(AliasTarget {
            dns_name: dns_name.into(),
            hosted_zone_id: "Z35SXDOTRQ7X7K".into(),
            evaluate_target_health: true,
        }),
    }
}

fn failover(set: RecordSet, role: FailoverRole, health_check: Option<&str>) -> FailoverRecord {
    FailoverRecord {
        set,
        role,
        health_check_id: health_check.map(str::to_owned),
    }
}

#[test]
fn a_simple_record_becomes_the_primary_of_a_new_pair_in_one_batch() {
    let today = values("shop.example.com.", 60, &["203.0.113.10"]);
    let target = lb("shop.example.com.", "recovery-lb.elb.amazonaws.com.");
    let current = CurrentRecords {
        simple: Some(today.clone()),
        ..CurrentRecords::default()
    };
    let (changes, said) = prepare_record(&target, &current, "hc-1").unwrap();
    assert_eq!(
        changes,
        vec![
            PrepareChange::DeleteSimple(today.clone()),
            PrepareChange::Upsert(failover(today, FailoverRole::Primary, Some("hc-1"))),
            PrepareChange::Upsert(failover(target, FailoverRole::Secondary, None)),
        ]
    );
    assert!(said[0].contains("203.0.113.10"), "{said:?}");
}

#[test]
fn a_pair_prepared_as_the_plan_says_needs_no_change() {
    let target = values("api.example.com.", 60, &["10.0.1.5", "10.0.1.6"]);
    let current = CurrentRecords {
        primary: Some(failover(
            values("api.example.com.", 60, &["192.0.2.1"]),
            FailoverRole::Primary,
            Some("hc-1"),
        )),
        // Route 53 may list the values in another order.
        secondary: Some(failover(
            values("api.example.com.", 60, &["10.0.1.6", "10.0.1.5"]),
            FailoverRole::Secondary,
            None,
        )),
        ..CurrentRecords::default()
    };
    let (changes, said) = prepare_record(&target, &current, "hc-1").unwrap();
    assert!(changes.is_empty() && said.is_empty(), "{said:?}");
}

#[test]
fn a_secondary_that_differs_is_set_and_a_primary_on_another_check_follows_the_plans() {
    let target = lb("shop.example.com.", "new-lb.elb.amazonaws.com.");
    let primary = values("shop.example.com.", 60, &["203.0.113.10"]);
    let current = CurrentRecords {
        primary: Some(failover(
            primary.clone(),
            FailoverRole::Primary,
            Some("old"),
        )),
        secondary: Some(failover(
            lb("shop.example.com.", "old-lb.elb.amazonaws.com."),
            FailoverRole::Secondary,
            None,
        )),
        ..CurrentRecords::default()
    };
    let (changes, said) = prepare_record(&target, &current, "hc-1").unwrap();
    assert_eq!(
        changes,
        vec![
            PrepareChange::Upsert(failover(primary, FailoverRole::Primary, Some("hc-1"))),
            PrepareChange::Upsert(failover(target, FailoverRole::Secondary, None)),
        ]
    );
    assert!(said[1].contains("old-lb"), "{said:?}");
}

#[test]
fn a_record_that_does_not_exist_or_has_foreign_routing_cannot_be_prepared() {
    let target = values("shop.example.com.", 60, &["10.0.1.5"]);
    let missing = prepare_record(&target, &CurrentRecords::default(), "hc-1").unwrap_err();
    assert!(missing.contains("does not exist"), "{missing}");
    let weighted = CurrentRecords {
        others: vec!["blue".into()],
        ..CurrentRecords::default()
    };
    let foreign = prepare_record(&target, &weighted, "hc-1").unwrap_err();
    assert!(foreign.contains("blue"), "{foreign}");
}

fn data_plane(records: Vec<DnsRecord>) -> Dns {
    Dns {
        zone_id: None,
        zone_name: Some("example.com".into()),
        mode: DnsMode::DataPlane,
        records,
    }
}

fn record_with_values(name: &str, vals: &[&str]) -> DnsRecord {
    DnsRecord {
        name: name.into(),
        record_type: RecordType::A,
        ttl: 60,
        from_wave: "web".into(),
        address: None,
        alias: None,
        values: vals.iter().map(|v| (*v).to_owned()).collect(),
    }
}

fn prepared(records: Vec<PreparedRecord>) -> DnsPrepared {
    DnsPrepared {
        plan: "shop".into(),
        zone_id: "Z1".into(),
        zone_name: "example.com.".into(),
        health_check_id: "hc-1".into(),
        alarm: FailoverAlarm {
            region: "us-west-2".into(),
            name: alarm_name("shop"),
        },
        records,
        prepared_at: "2026-12-01T00:00:00Z".parse().unwrap(),
    }
}

#[test]
fn prepared_records_that_differ_from_the_plan_are_named_with_the_difference() {
    let dns = data_plane(vec![
        record_with_values("shop.example.com", &["10.0.1.5"]),
        record_with_values("api.example.com", &["10.0.2.5"]),
    ]);
    let ok = prepared(vec![
        PreparedRecord {
            primary: values("shop.example.com.", 60, &["203.0.113.10"]),
            secondary: values("shop.example.com.", 60, &["10.0.1.5"]),
        },
        PreparedRecord {
            primary: values("api.example.com.", 60, &["203.0.113.11"]),
            secondary: values("api.example.com.", 60, &["10.0.2.5"]),
        },
    ]);
    assert!(prepared_mismatches(&dns, "shop", Some(&ok)).is_empty());

    let mut stale = ok.clone();
    stale.records[0].secondary = values("shop.example.com.", 60, &["10.0.9.9"]);
    stale.records.pop();
    let issues = prepared_mismatches(&dns, "shop", Some(&stale));
    assert_eq!(issues.len(), 2, "{issues:?}");
    assert_eq!(issues[0].path, "dns.records[0]");
    assert!(
        issues[0].message.contains("10.0.9.9") && issues[0].message.contains("10.0.1.5"),
        "{}",
        issues[0].message
    );
    assert_eq!(issues[1].path, "dns.records[1]");
    assert!(issues[1].message.contains("no prepared failover pair"));

    let never = prepared_mismatches(&dns, "shop", None);
    assert!(
        never[0].message.contains("drplan dns prepare shop"),
        "{never:?}"
    );
}

#[test]
fn a_health_check_must_follow_the_plans_alarm() {
    let wanted = FailoverAlarm {
        region: "us-west-2".into(),
        name: alarm_name("shop"),
    };
    assert_eq!(
        health_check_problem("hc", HEALTH_CHECK_TYPE, Some(&wanted), &wanted),
        None
    );
    let elsewhere = FailoverAlarm {
        region: "us-east-1".into(),
        ..wanted.clone()
    };
    assert!(
        health_check_problem("hc", HEALTH_CHECK_TYPE, Some(&elsewhere), &wanted)
            .unwrap()
            .contains("us-east-1")
    );
    assert!(health_check_problem("hc", "HTTP", None, &wanted).is_some());
    assert!(health_check_problem("hc", HEALTH_CHECK_TYPE, None, &wanted).is_some());
}

#[test]
fn the_alarm_change_id_is_told_from_a_route53_one() {
    let id = alarm_change_id("drplan-shop-dns-failover");
    assert_eq!(alarm_of_change_id(&id), Some("drplan-shop-dns-failover"));
    assert_eq!(alarm_of_change_id("C2682N5HXP0BZ4"), None);
}
