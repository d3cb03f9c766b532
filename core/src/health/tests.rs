use super::*;
use jiff::SignedDuration;

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

fn status(state: &str, system: &str, instance: &str) -> Option<Ec2Status> {
    Some(Ec2Status {
        instance_state: state.into(),
        system_status: system.into(),
        instance_status: instance.into(),
    })
}

fn seen(name: &str, optional: bool, status: Option<Ec2Status>) -> ServerObservation {
    ServerObservation {
        source_server_id: format!("s-{name}"),
        hostname: Some(name.into()),
        optional,
        ec2_instance_id: Some(format!("i-{name}")),
        status,
        probe_address: Some("127.31.0.5".into()),
        probe_address_error: None,
        probes: Vec::new(),
        subnet_id: None,
    }
}

fn checks(texts: &[&str]) -> Vec<HealthCheck> {
    texts.iter().map(|t| t.parse().unwrap()).collect()
}

fn passed(detail: &str) -> ProbeOutcome {
    ProbeOutcome::Passed {
        detail: detail.into(),
    }
}

fn failed(reason: &str) -> ProbeOutcome {
    ProbeOutcome::Failed {
        reason: reason.into(),
    }
}

const NOW: &str = "2026-11-28T01:00:00Z";

#[test]
fn a_server_whose_checks_all_pass_is_healthy_from_when_it_first_passed() {
    let wanted = checks(&["ec2-status", "tcp:5432", "http:8080/health"]);
    let mut server = seen("db-001", false, status("running", "ok", "ok"));
    server.probes = vec![
        (wanted[1].clone(), passed("connected")),
        (wanted[2].clone(), passed("HTTP 200")),
    ];
    let first = evaluate_server(&server, &wanted, at(NOW), None);
    assert_eq!(first.state, ServerHealthState::Healthy);
    assert_eq!(first.healthy_since, Some(at(NOW)));
    assert!(first.checks.iter().all(|c| c.state == CheckState::Passed));
    let later = evaluate_server(
        &server,
        &wanted,
        at("2026-11-28T01:05:00Z"),
        first.healthy_since,
    );
    assert_eq!(later.healthy_since, Some(at(NOW)));
}

#[test]
fn probes_wait_for_ec2_status_checks() {
    let wanted = checks(&["ec2-status", "tcp:22"]);
    let server = seen("app-001", false, status("running", "initializing", "ok"));
    assert!(!ready_to_probe(server.status.as_ref(), &wanted));
    let health = evaluate_server(&server, &wanted, at(NOW), None);
    assert_eq!(health.state, ServerHealthState::Pending);
    assert_eq!(
        health.checks[1].detail, "waits for the EC2 status checks",
        "{health:?}"
    );
    // Without an ec2-status check, a running instance is probed at once.
    assert!(ready_to_probe(server.status.as_ref(), &checks(&["tcp:22"])));
    assert!(!ready_to_probe(
        status("pending", "initializing", "initializing").as_ref(),
        &checks(&["tcp:22"])
    ));
}

#[test]
fn a_failed_probe_says_what_failed_and_why_and_a_healthy_record_is_dropped() {
    let wanted = checks(&["ec2-status", "tcp:5432"]);
    let mut server = seen("db-001", false, status("running", "ok", "ok"));
    server.probes = vec![(wanted[1].clone(), failed("refused (connection refused)"))];
    let health = evaluate_server(&server, &wanted, at(NOW), Some(at(NOW)));
    assert_eq!(health.state, ServerHealthState::Unhealthy);
    assert_eq!(health.healthy_since, None);
    assert!(!health.gone);
    assert_eq!(health.checks[0].state, CheckState::Passed);
    assert_eq!(
        health.why_not_healthy(),
        "tcp:5432 refused (connection refused)"
    );
}

#[test]
fn impaired_and_terminated_instances_fail_their_status_check() {
    let wanted = checks(&["ec2-status"]);
    let impaired = evaluate_server(
        &seen("a", false, status("running", "impaired", "ok")),
        &wanted,
        at(NOW),
        None,
    );
    assert_eq!(impaired.state, ServerHealthState::Unhealthy);
    assert!(!impaired.gone);
    let gone = evaluate_server(
        &seen(
            "b",
            false,
            status("terminated", "not-applicable", "not-applicable"),
        ),
        &checks(&["ec2-status", "tcp:22"]),
        at(NOW),
        None,
    );
    assert!(gone.gone);
    assert_eq!(
        gone.why_not_healthy(),
        "ec2-status instance is terminated, tcp:22 not probed: the instance is gone"
    );
    let unknown = evaluate_server(&seen("c", false, None), &wanted, at(NOW), None);
    assert_eq!(unknown.state, ServerHealthState::Pending);
}

#[test]
fn a_running_instance_without_an_address_fails_its_probes() {
    let wanted = checks(&["tcp:22"]);
    let mut server = seen("a", false, status("running", "ok", "ok"));
    server.probe_address = None;
    server.probe_address_error = Some("the instance has no private IPv4 address".into());
    let health = evaluate_server(&server, &wanted, at(NOW), None);
    assert_eq!(health.state, ServerHealthState::Unhealthy);
    assert_eq!(
        health.why_not_healthy(),
        "tcp:22 not probed: the instance has no private IPv4 address"
    );
}

#[test]
fn a_server_that_passed_is_carried_forward_on_its_instance_only() {
    let gate = checks(&["ec2-status", "tcp:5432"]);
    let mut before = health("db", false, ServerHealthState::Healthy);
    before.ec2_instance_id = Some("i-db".into());
    before.checks[0].detail = "connected".into();
    assert_eq!(
        passed_before(&before, Some("i-db"), &gate),
        Some(vec![(gate[1].clone(), passed("connected"))])
    );
    // A new instance (a relaunch) is probed again, as is a server not yet healthy.
    assert_eq!(passed_before(&before, Some("i-other"), &gate), None);
    let pending = health("db", false, ServerHealthState::Pending);
    assert_eq!(passed_before(&pending, Some("i-db"), &gate), None);
    // A check the earlier poll did not pass (a changed plan) is probed again.
    assert_eq!(
        passed_before(&before, Some("i-db"), &checks(&["tcp:22"])),
        None
    );
}

fn health(name: &str, optional: bool, state: ServerHealthState) -> ServerHealth {
    ServerHealth {
        source_server_id: format!("s-{name}"),
        hostname: Some(name.into()),
        optional,
        ec2_instance_id: None,
        subnet_id: None,
        probe_address: None,
        state,
        gone: false,
        checks: vec![CheckResult {
            check: "tcp:5432".into(),
            state: match state {
                ServerHealthState::Healthy => CheckState::Passed,
                ServerHealthState::Unhealthy => CheckState::Failed,
                ServerHealthState::Pending => CheckState::Pending,
            },
            detail: "refused (connection refused)".into(),
        }],
        healthy_since: None,
    }
}

#[test]
fn the_wave_waits_until_its_deadline_then_fails_on_a_critical_server() {
    use ServerHealthState::*;
    let deadline = at(NOW) + SignedDuration::from_mins(15);
    let servers = [
        health("app-001", false, Healthy),
        health("app-003", false, Unhealthy),
        health("batch-001", true, Unhealthy),
    ];
    assert_eq!(
        wave_verdict(&servers, at(NOW), deadline, 15, 15),
        HealthVerdict::InProgress { wait_seconds: 15 }
    );
    // Close to the deadline, the last wait lands on it.
    assert_eq!(
        wave_verdict(
            &servers,
            deadline - SignedDuration::from_secs(4),
            deadline,
            15,
            15
        ),
        HealthVerdict::InProgress { wait_seconds: 4 }
    );
    assert_eq!(
        wave_verdict(&servers, deadline, deadline, 15, 15),
        HealthVerdict::Failed {
            reason: "app-003 is not healthy: tcp:5432 refused (connection refused) after 15 min"
                .into()
        }
    );
}

#[test]
fn optional_failures_do_not_fail_the_wave() {
    use ServerHealthState::*;
    let deadline = at(NOW) + SignedDuration::from_mins(15);
    let servers = [
        health("app-001", false, Healthy),
        health("batch-001", true, Unhealthy),
        health("batch-002", true, Pending),
    ];
    assert_eq!(
        wave_verdict(&servers, at(NOW), deadline, 15, 15),
        HealthVerdict::Succeeded
    );
    assert_eq!(
        count(&servers),
        HealthCounts {
            healthy: 1,
            unhealthy: 1,
            pending: 1
        }
    );
}

#[test]
fn a_wave_of_optional_servers_needs_one_healthy_server() {
    use ServerHealthState::*;
    let deadline = at(NOW) + SignedDuration::from_mins(5);
    let none_healthy = [health("batch-001", true, Unhealthy)];
    assert!(matches!(
        wave_verdict(&none_healthy, at(NOW), deadline, 5, 10),
        HealthVerdict::InProgress { .. }
    ));
    assert_eq!(
        wave_verdict(&none_healthy, deadline, deadline, 5, 10),
        HealthVerdict::Failed {
            reason: "no server of the wave is healthy after 5 min".into()
        }
    );
    let one_healthy = [
        health("batch-001", true, Healthy),
        health("batch-002", true, Pending),
    ];
    assert_eq!(
        wave_verdict(&one_healthy, at(NOW), deadline, 5, 10),
        HealthVerdict::Succeeded
    );
}

#[test]
fn a_terminated_critical_server_fails_the_wave_before_the_deadline() {
    use ServerHealthState::*;
    let deadline = at(NOW) + SignedDuration::from_mins(15);
    let mut gone = health("db-001", false, Unhealthy);
    gone.gone = true;
    gone.checks[0] = CheckResult {
        check: "ec2-status".into(),
        state: CheckState::Failed,
        detail: "instance is terminated".into(),
    };
    let servers = [
        gone,
        health("db-002", false, Pending),
        health("db-003", false, Healthy),
    ];
    assert_eq!(
        wave_verdict(&servers, at(NOW), deadline, 15, 15),
        HealthVerdict::Failed {
            reason: "db-001 is not healthy: ec2-status instance is terminated".into()
        }
    );
}

#[test]
fn several_critical_failures_are_counted() {
    use ServerHealthState::*;
    let deadline = at(NOW);
    let servers = [health("a", false, Pending), health("b", false, Unhealthy)];
    assert_eq!(
        wave_verdict(&servers, at(NOW), deadline, 1, 15),
        HealthVerdict::Failed {
            reason: "a is not healthy: still pending: tcp:5432 refused (connection refused) after 1 min (and 1 more critical)".into()
        }
    );
}

#[test]
fn private_addresses_map_to_their_own_loopback_address() {
    assert_eq!(
        loopback_for(Ipv4Addr::new(172, 31, 40, 7)),
        Ipv4Addr::new(127, 31, 40, 7)
    );
    assert_eq!(
        loopback_for(Ipv4Addr::new(10, 0, 1, 25)),
        Ipv4Addr::new(127, 0, 1, 25)
    );
    let local = ProbeAddressing {
        map_to_loopback: true,
        ..ProbeAddressing::default()
    };
    assert_eq!(
        probe_address(Some("10.0.1.25"), None, local),
        Ok(Ipv4Addr::new(127, 0, 1, 25))
    );
    assert_eq!(
        probe_address(
            Some("10.0.1.25"),
            Some("203.0.113.9"),
            ProbeAddressing::default()
        ),
        Ok(Ipv4Addr::new(10, 0, 1, 25))
    );
    let public = ProbeAddressing {
        probe_public_ip: true,
        map_to_loopback: false,
    };
    assert_eq!(
        probe_address(Some("10.0.1.25"), Some("203.0.113.9"), public),
        Ok(Ipv4Addr::new(203, 0, 113, 9))
    );
    assert_eq!(
        probe_address(Some("10.0.1.25"), None, public),
        Err(ProbeAddressError::Missing("public"))
    );
    assert!(matches!(
        probe_address(Some("fe80::1"), None, local),
        Err(ProbeAddressError::NotIpv4 { .. })
    ));
}

#[test]
fn a_server_that_passed_at_the_same_address_is_not_probed_again() {
    let gate = checks(&["ec2-status", "tcp:5432"]);
    let mut before = health("db", false, ServerHealthState::Healthy);
    before.ec2_instance_id = Some("i-db".into());
    before.probe_address = Some("127.31.0.5".into());
    assert_eq!(
        plan_probes(Some(&before), Some("i-db"), "127.31.0.5", &gate),
        ProbePlan::Carry(vec![(
            gate[1].clone(),
            passed("refused (connection refused)")
        )])
    );
    // Another address (the wave now probes public IPs), or no earlier result: probed.
    let probe = ProbePlan::Probe(vec![gate[1].clone()]);
    assert_eq!(
        plan_probes(Some(&before), Some("i-db"), "127.44.0.9", &gate),
        probe
    );
    assert_eq!(plan_probes(None, Some("i-db"), "127.31.0.5", &gate), probe);
}

#[test]
fn the_record_names_how_probes_were_addressed() {
    let name = |map_to_loopback, probe_public_ip| {
        ProbeAddressing {
            probe_public_ip,
            map_to_loopback,
        }
        .name()
    };
    assert_eq!(name(false, false), "private-ip");
    assert_eq!(name(false, true), "public-ip");
    assert_eq!(name(true, false), "loopback");
    assert_eq!(name(true, true), "loopback-public-ip");
}

#[test]
fn a_poll_concludes_with_its_record_and_the_state_machines_state() {
    let gate = Health {
        checks: checks(&["tcp:5432"]),
        timeout_minutes: 15,
        ..Health::default()
    };
    let clock = GateClock {
        attempt: 2,
        deadline: at("2026-11-28T01:15:00Z"),
        started_at: at("2026-11-28T00:59:00Z"),
    };
    let servers = vec![
        health("db-001", false, ServerHealthState::Healthy),
        health("db-002", false, ServerHealthState::Unhealthy),
    ];
    let addressing = ProbeAddressing::default();
    let (record, poll) = conclude_poll("database", &gate, clock, addressing, 5, at(NOW), servers);
    assert_eq!(poll.state, LaunchState::InProgress);
    assert_eq!(
        (
            poll.attempt,
            poll.wait_seconds,
            poll.healthy,
            poll.unhealthy
        ),
        (2, 5, 1, 1)
    );
    assert_eq!(record.state, "IN_PROGRESS");
    assert_eq!(record.checks, ["tcp:5432"]);
    assert_eq!(record.started_at, clock.started_at);
    assert_eq!(record.probe_addressing, "private-ip");
    assert_eq!(record.healthy_at, None);

    let past = GateClock {
        deadline: at("2026-11-28T00:59:30Z"),
        ..clock
    };
    let servers = vec![health("db-002", false, ServerHealthState::Unhealthy)];
    let (record, poll) = conclude_poll("database", &gate, past, addressing, 5, at(NOW), servers);
    assert_eq!(poll.state, LaunchState::Failed);
    assert_eq!(record.state, "FAILED");
    assert_eq!(
        poll.reason.as_deref(),
        Some(
            "wave \"database\": db-002 is not healthy: tcp:5432 refused (connection refused) after 15 min"
        )
    );
}
