use super::*;
use crate::plan::DnsRecord;

fn address(host: &str, ip: &str) -> InstanceAddress {
    InstanceAddress {
        source_server_id: format!("s-{host}"),
        hostname: Some(host.into()),
        ec2_instance_id: format!("i-{host}"),
        private_ipv4: Some(ip.into()),
        public_ipv4: None,
        ipv6: None,
        private_dns_name: Some(format!("ip-{}.ec2.internal", ip.replace('.', "-"))),
    }
}

fn dns(records: Vec<DnsRecord>) -> Dns {
    Dns {
        zone_id: Some("Z1".into()),
        zone_name: None,
        mode: Default::default(),
        records,
    }
}

fn record(name: &str, record_type: RecordType, wave: &str) -> DnsRecord {
    DnsRecord {
        name: name.into(),
        record_type,
        ttl: 60,
        from_wave: wave.into(),
        address: None,
        alias: None,
        values: Vec::new(),
    }
}

fn with_public(mut a: InstanceAddress, ip: &str) -> InstanceAddress {
    a.public_ipv4 = Some(ip.into());
    a
}

fn zone(name: &str, private: bool) -> HostedZone {
    HostedZone {
        id: "Z1".into(),
        name: canonical_name(name),
        private,
    }
}

#[test]
fn a_records_take_every_healthy_address_and_cnames_one_name() {
    let healthy = BTreeMap::from([(
        "web".to_owned(),
        vec![
            address("web-02", "10.0.1.12"),
            address("web-01", "10.0.1.11"),
        ],
    )]);
    let wanted = desired_records(
        &dns(vec![
            record("Shop.Example.com", RecordType::A, "web"),
            record("www.example.com.", RecordType::CNAME, "web"),
        ]),
        true,
        &healthy,
    )
    .unwrap();
    assert_eq!(wanted[0].name, "shop.example.com.");
    assert_eq!(wanted[0].values, ["10.0.1.11", "10.0.1.12"]);
    assert_eq!(wanted[1].values, ["ip-10-0-1-11.ec2.internal"]);
}

#[test]
fn a_record_without_targets_blocks_the_whole_change() {
    let healthy = BTreeMap::from([("web".to_owned(), vec![address("web-01", "10.0.1.11")])]);
    let issues = desired_records(
        &dns(vec![
            record("shop.example.com", RecordType::A, "web"),
            record("v6.example.com", RecordType::AAAA, "web"),
            record("api.example.com", RecordType::A, "app"),
        ]),
        true,
        &healthy,
    )
    .unwrap_err();
    assert_eq!(issues.len(), 2);
    assert!(
        issues[0]
            .message
            .contains("no healthy instance with an IPv6 address")
    );
    assert_eq!(issues[1].path, "dns.records[2]");
}

#[test]
fn a_record_gets_the_addresses_its_zone_calls_for_unless_it_says_otherwise() {
    let healthy = BTreeMap::from([(
        "web".to_owned(),
        vec![
            with_public(address("web-02", "10.0.1.12"), "198.51.100.2"),
            with_public(address("web-01", "10.0.1.11"), "198.51.100.10"),
        ],
    )]);
    let mut private = record("internal.example.com", RecordType::A, "web");
    private.address = Some(RecordAddress::PrivateIp);
    let mut public = record("shop.example.com", RecordType::A, "web");
    public.address = Some(RecordAddress::PublicIp);
    let plan = dns(vec![
        record("www.example.com", RecordType::A, "web"),
        private,
        public,
    ]);
    let values = |private_zone: bool| -> Vec<Vec<String>> {
        desired_records(&plan, private_zone, &healthy)
            .unwrap()
            .into_iter()
            .map(|r| r.values)
            .collect()
    };
    let public_ips = vec!["198.51.100.2".to_owned(), "198.51.100.10".to_owned()];
    let private_ips = vec!["10.0.1.11".to_owned(), "10.0.1.12".to_owned()];
    // A public zone: public addresses, unless the record asks for private ones.
    assert_eq!(
        values(false),
        [public_ips.clone(), private_ips.clone(), public_ips.clone()]
    );
    // A private zone: private addresses, unless the record asks for public ones.
    assert_eq!(values(true), [private_ips.clone(), private_ips, public_ips]);
    assert_eq!(
        a_record_address(&record("a.example.com", RecordType::A, "web"), false),
        RecordAddress::PublicIp
    );
}

#[test]
fn an_instance_without_the_address_its_record_needs_fails_the_cutover_by_name() {
    let healthy = BTreeMap::from([(
        "web".to_owned(),
        vec![
            with_public(address("web-01", "10.0.1.11"), "198.51.100.10"),
            address("web-02", "10.0.1.12"),
        ],
    )]);
    let plan = dns(vec![
        record("api.example.com", RecordType::A, "web"),
        record("shop.example.com", RecordType::A, "web"),
    ]);
    let issues = desired_records(&plan, false, &healthy).unwrap_err();
    assert_eq!(issues.len(), 2, "{issues:?}");
    assert_eq!(issues[0].path, "dns.records[0]");
    assert!(
        issues[0].message.starts_with(
            "record api.example.com needs public-ip but instance i-web-02 (server s-web-02, web-02) has no public IPv4 address: the record's zone is public"
        ),
        "{}",
        issues[0].message
    );
    assert!(issues[0].message.contains("address: private-ip"));
    // In a private zone the same instances have what the records need.
    assert!(desired_records(&plan, true, &healthy).is_ok());
}

#[test]
fn a_zone_holds_its_apex_and_the_names_under_it_only() {
    for (zone, name) in [
        ("example.com.", "www.example.com"),
        ("example.com", "example.com"),
        ("example.com.", "EXAMPLE.COM."),
        ("Example.Com", "a.b.example.com."),
    ] {
        assert!(zone_contains(zone, name), "{name} in {zone}");
        assert_eq!(outside_zone(name, zone), None);
    }
    for (zone, name) in [
        ("example.com.", "wwwexample.com"),
        ("example.com", "example.com.evil.org"),
        ("shop.example.com", "example.com"),
        ("example.com", "example.org"),
    ] {
        assert!(!zone_contains(zone, name), "{name} not in {zone}");
    }
    assert_eq!(
        outside_zone("wwwexample.com", "example.com.").as_deref(),
        Some(
            "wwwexample.com is not inside the hosted zone example.com: the zone holds example.com itself and the names that end in .example.com, nothing else"
        )
    );
    let plan = dns(vec![
        record("www.example.com", RecordType::A, "web"),
        record("www.example.org", RecordType::A, "web"),
    ]);
    let issues = records_outside_zone(&plan, &zone("example.com", false));
    assert_eq!(issues.len(), 1);
    assert_eq!(issues[0].path, "dns.records[1].name");
    assert!(issues[0].message.ends_with("(zone Z1)"));
}

#[test]
fn only_the_zones_a_deployment_names_may_change() {
    let allowed = zone_list(" Z1 ,/hostedzone/Z2,,");
    assert_eq!(allowed, ["Z1", "Z2"]);
    assert_eq!(zone_not_allowed(&allowed, "/hostedzone/Z2"), None);
    assert_eq!(
        zone_not_allowed(&allowed, "Z3").as_deref(),
        Some(
            "hosted zone Z3 is not one this deployment may change (HostedZoneIds: Z1,Z2); add it to the stack's HostedZoneIds parameter"
        )
    );
    assert!(
        zone_not_allowed(&zone_list(""), "Z1")
            .unwrap()
            .starts_with("this deployment may change no hosted zone")
    );
}

#[test]
fn rollback_restores_old_values_and_deletes_new_records() {
    let set = |name: &str, value: &str| RecordSet {
        name: name.into(),
        record_type: "A".into(),
        ttl: 60,
        values: vec![value.into()],
        alias: None,
    };
    let cutover = DnsCutover {
        zone_id: "Z1".into(),
        changes: vec![
            RecordChange {
                new: set("shop.example.com.", "10.0.1.11"),
                previous: Some(set("shop.example.com.", "203.0.113.10")),
            },
            RecordChange {
                new: set("new.example.com.", "10.0.1.12"),
                previous: None,
            },
        ],
        deletes: Vec::new(),
        change_id: None,
        submitted_at: None,
        insync_at: None,
        alarm: None,
        path: "control plane".into(),
        unchanged: Vec::new(),
    };
    assert_eq!(
        cutover.rollback_changes(),
        vec![
            Change::Upsert(set("shop.example.com.", "203.0.113.10")),
            Change::Delete(set("new.example.com.", "10.0.1.12"))
        ]
    );
}

#[test]
fn a_pending_cutover_is_followed_with_the_runs_backoff_until_in_sync() {
    let timing = crate::contract::Timing::default();
    let poll: DnsPoll = serde_json::from_value(serde_json::json!({"state": "START"})).unwrap();
    assert_eq!(
        (poll.state, poll.change_id, poll.attempt),
        (DnsState::Start, None, 0)
    );
    let submitted = DnsPoll::submitted("C123".into(), 2);
    assert_eq!(
        serde_json::to_value(&submitted).unwrap(),
        serde_json::json!({"state": "PENDING", "change_id": "C123", "changed": 2, "attempt": 0, "wait_seconds": 0})
    );
    let waiting = submitted.still_pending(&timing).still_pending(&timing);
    assert_eq!(
        (waiting.state, waiting.attempt, waiting.wait_seconds),
        (DnsState::Pending, 2, timing.poll_delay_seconds(2))
    );
    let done = waiting.in_sync();
    assert_eq!(
        (done.state, done.change_id.as_deref(), done.changed),
        (DnsState::Insync, Some("C123"), 2)
    );
    assert_eq!(DnsPoll::skipped().state, DnsState::Skipped);
}
