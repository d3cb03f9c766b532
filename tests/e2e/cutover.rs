//! Approval, DNS cutover, rollback and on-call e-mail end to end on the local cloud:
//! the real state machine, functions and CLI, with Route 53, SNS and SQS in moto.
//! The seeded zone example.com is public: its records get public addresses.

use std::collections::BTreeMap;

use crate::common::{Cloud, cloud_with, fleet_file, plan_file, report_server, report_wave};
use aws_sdk_sfn::types::ExecutionStatus;
use drplan_aws::history::Approval;
use serde_json::json;

const SHOP: (&str, &str) = ("shop.example.com.", "A");
const API: (&str, &str) = ("api.shop.example.com.", "A");

fn key((name, kind): (&str, &str)) -> (String, String) {
    (name.to_owned(), kind.to_owned())
}

/// Which IPv4 address of each instance.
#[derive(Clone, Copy)]
enum Ip {
    Private,
    Public,
}

/// The IPv4 addresses of the instances a run launched for a wave, sorted.
async fn wave_addresses(cloud: &Cloud, execution: &str, wave: &str, ip: Ip) -> Vec<String> {
    let described = cloud
        .ec2
        .describe_instances()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("tag:drplan:execution")
                .values(execution)
                .build(),
        )
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("tag:drplan:wave")
                .values(wave)
                .build(),
        )
        .send()
        .await
        .expect("DescribeInstances");
    let mut ips: Vec<String> = described
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .filter_map(|i| match ip {
            Ip::Private => i.private_ip_address(),
            Ip::Public => i.public_ip_address(),
        })
        .map(str::to_owned)
        .collect();
    ips.sort();
    ips
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_recovery_points_every_record_at_the_recovered_instances_and_rolls_back() {
    let Some(cloud) = cloud_with(&fleet_file("examples/fleet.yaml")).await else {
        return;
    };
    let before = cloud.records("example.com").await;
    assert_eq!(before[&key(SHOP)], ["203.0.113.10"]);

    // shop.example.com follows its public zone; api.shop.example.com says otherwise.
    let mut plan = plan_file("examples/shop.yaml");
    plan["dns"]["records"][1]["address"] = json!("private-ip");
    let (name, arn) = cloud.start(plan, "recovery").await;
    let approved = cloud
        .answer_approval(&["approve", &name, "--by", "sre-on-call"])
        .await;
    assert!(approved.contains("approved by sre-on-call"), "{approved}");
    let outcome = cloud.wait(name.clone(), &arn).await;
    assert_eq!(
        outcome.status,
        ExecutionStatus::Succeeded,
        "{:?}: {:?}",
        outcome.error,
        outcome.cause
    );

    // Every record of the plan points at its wave's recovered instances: the public
    // zone's record at their public addresses, the record that asks at private ones.
    let after = cloud.records("example.com").await;
    let web = wave_addresses(&cloud, &name, "web", Ip::Public).await;
    let app = wave_addresses(&cloud, &name, "app", Ip::Private).await;
    assert_eq!(web.len(), 3);
    assert_eq!(after[&key(SHOP)], web);
    assert_eq!(after[&key(API)], app);
    let web_private = wave_addresses(&cloud, &name, "web", Ip::Private).await;
    assert!(
        web.iter().all(|ip| !web_private.contains(ip)),
        "{web:?} are the web tier's private addresses"
    );

    // The report's DNS section says the same, with the old values kept.
    let report = cloud.report("shop", &name).await;
    let changes = report["dns"]["changes"].as_array().expect("DNS changes");
    let by_name: BTreeMap<&str, (&serde_json::Value, &serde_json::Value)> = changes
        .iter()
        .map(|c| {
            (
                c["new"]["name"].as_str().unwrap(),
                (&c["new"]["values"], &c["previous"]["values"]),
            )
        })
        .collect();
    let mut reported_web: Vec<String> = serde_json::from_value(by_name[SHOP.0].0.clone()).unwrap();
    reported_web.sort();
    assert_eq!(reported_web, web);
    assert_eq!(*by_name[SHOP.0].1, json!(["203.0.113.10"]));
    assert!(report["dns"]["insync_at"].is_string());
    assert_eq!(report["rto"]["measured_to"], "DNS in sync");

    // rollback-dns restores what the records held before.
    let rolled = cloud.drplan(&["rollback-dns", &name]);
    assert!(
        rolled.status.success(),
        "{}",
        String::from_utf8_lossy(&rolled.stderr)
    );
    assert_eq!(cloud.records("example.com").await, before);

    // On-call staff heard of each step, ending with the outcome.
    let subjects: Vec<String> = cloud
        .notifications()
        .await
        .into_iter()
        .map(|(subject, _, _)| subject)
        .collect();
    assert!(
        subjects.iter().any(|s| s.contains("approval")),
        "{subjects:?}"
    );
    assert!(subjects.iter().any(|s| s.contains("DNS")), "{subjects:?}");
    assert!(
        subjects.iter().any(|s| s.contains("SUCCEEDED")),
        "{subjects:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_outside_its_zone_is_refused_before_anything_launches() {
    let Some(cloud) = cloud_with(&fleet_file("examples/fleet.yaml")).await else {
        return;
    };
    let before = cloud.records("example.com").await;
    let zone_id = cloud
        .seeded
        .hosted_zones
        .iter()
        .find(|z| z.name == "example.com")
        .expect("the seeded zone")
        .zone_id
        .clone();
    // By ID, the zone's name is known only once Route 53 is asked: discover asks.
    let mut plan = plan_file("examples/shop.yaml");
    plan["dns"] = json!({"zone_id": zone_id, "records": [
        {"name": "shop.example.com", "type": "A", "from_wave": "web"},
        {"name": "shop.example.org", "type": "A", "from_wave": "web"},
    ]});
    let outcome = cloud.run(plan, "recovery").await;
    assert_eq!(outcome.status, ExecutionStatus::Failed);
    assert_eq!(outcome.error.as_deref(), Some("drplan.InvalidPlan"));
    let cause = outcome.cause.unwrap_or_default();
    assert!(
        cause.contains(
            "dns.records[1].name: shop.example.org is not inside the hosted zone example.com"
        ) && cause.contains(&format!("(zone {zone_id})")),
        "{cause}"
    );
    assert!(
        !cause.contains("dns.records[0]"),
        "shop.example.com is in example.com: {cause}"
    );
    assert!(
        cloud.start_recovery_calls().await.is_empty(),
        "a plan with a record outside its zone launched servers"
    );
    assert_eq!(cloud.records("example.com").await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_zone_record_whose_instances_have_no_public_address_is_not_cut_over() {
    // The shop fleet without public addresses: its instances have private ones only.
    let fleet = fleet_file("examples/fleet.yaml");
    assert!(fleet.contains("public_ips: true"));
    let Some(cloud) = cloud_with(&fleet.replacen("public_ips: true", "public_ips: false", 1)).await
    else {
        return;
    };
    let before = cloud.records("example.com").await;
    let plan = json!({
        "name": "shop-web",
        "rto_minutes": 30,
        "selector": {"dr:plan": "shop", "dr:wave": "web"},
        "waves": [{"name": "web", "selector": {"dr:wave": "web"},
                   "health": {"checks": ["ec2-status"]}}],
        "dns": {"zone_name": "example.com", "records": [
            {"name": "shop.example.com", "type": "A", "from_wave": "web"},
        ]},
    });
    let outcome = cloud.run(plan, "recovery").await;
    assert_eq!(outcome.status, ExecutionStatus::Failed);
    assert_eq!(outcome.error.as_deref(), Some("drplan.NotReady"));
    let cause = outcome.cause.unwrap_or_default();
    // Every instance of the wave is named, with its source server and hostname.
    let ids = cloud.server_ids().await;
    assert!(
        cause.contains("dns.records[0]: record shop.example.com needs public-ip but instances i-")
            && cause.contains("have no public IPv4 address")
            && ["web-01", "web-02", "web-03"]
                .iter()
                .all(|web| cause.contains(&format!("(server {}, {web})", ids[*web]))),
        "{cause}"
    );
    // The web tier launched (the zone check passed before), DNS was not touched.
    assert_eq!(cloud.launched_servers().await.len(), 3);
    assert_eq!(cloud.records("example.com").await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_recovery_launches_nothing_and_leaves_dns_alone() {
    let Some(cloud) = cloud_with(&fleet_file("examples/fleet.yaml")).await else {
        return;
    };
    let before = cloud.records("example.com").await;
    let (name, arn) = cloud
        .start(plan_file("examples/shop.yaml"), "recovery")
        .await;
    cloud
        .answer_approval(&[
            "decline",
            &name,
            "--reason",
            "the primary is back",
            "--by",
            "sre-on-call",
        ])
        .await;
    let outcome = cloud.wait(name.clone(), &arn).await;
    assert_eq!(outcome.status, ExecutionStatus::Failed);
    assert_eq!(outcome.error.as_deref(), Some("drplan.Declined"));
    assert!(
        outcome
            .cause
            .unwrap_or_default()
            .contains("sre-on-call: the primary is back")
    );
    assert!(
        cloud.start_recovery_calls().await.is_empty(),
        "a declined run launched servers"
    );
    assert_eq!(cloud.records("example.com").await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drill_never_touches_dns() {
    let Some(cloud) = cloud_with(&fleet_file("examples/fleet.yaml")).await else {
        return;
    };
    let before = cloud.records("example.com").await;
    let outcome = cloud.run(plan_file("examples/shop.yaml"), "drill").await;
    assert_eq!(
        outcome.status,
        ExecutionStatus::Succeeded,
        "{:?}: {:?}",
        outcome.error,
        outcome.cause
    );
    assert_eq!(cloud.records("example.com").await, before);
    let report = cloud.report("shop", &outcome.name).await;
    assert!(report["dns"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_wave_pages_on_call_with_the_server_and_the_reason() {
    let Some(cloud) = cloud_with(&fleet_file("examples/fleet.yaml")).await else {
        return;
    };
    let before = cloud.records("example.com").await;
    let raw_error = "InsufficientInstanceCapacity: no capacity for r6i.2xlarge";
    cloud
        .fault(json!({"kind": "fail_launch", "servers": ["db-02"], "raw_error": raw_error}))
        .await;
    let (name, arn) = cloud
        .start(plan_file("examples/shop.yaml"), "recovery")
        .await;
    cloud.answer_approval(&["approve", &name]).await;
    let outcome = cloud.wait(name, &arn).await;
    assert_eq!(outcome.status, ExecutionStatus::Failed);
    // DNS is untouched by a failed recovery.
    assert_eq!(cloud.records("example.com").await, before);

    let notifications = cloud.notifications().await;
    let (subject, body, attributes) = notifications
        .iter()
        .find(|(subject, _, _)| subject.contains("wave database") && subject.contains("FAILED"))
        .unwrap_or_else(|| {
            panic!(
                "no wave-failed e-mail among {:?}",
                notifications.iter().map(|n| &n.0).collect::<Vec<_>>()
            )
        });
    assert!(subject.len() < 100, "{subject}");
    assert!(body.contains("db-02") && body.contains(raw_error), "{body}");
    assert_eq!(attributes["severity"]["Value"], "critical");
    assert_eq!(attributes["plan"]["Value"], "shop");
    assert_eq!(attributes["event"]["Value"], "WAVE_FAILED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unhealthy_server_fails_its_wave_and_stops_the_recovery_before_dns() {
    let Some(cloud) = cloud_with(&fleet_file("examples/fleet.yaml")).await else {
        return;
    };
    let before = cloud.records("example.com").await;
    // app-003 launches fine but answers its health check with HTTP 500.
    cloud.fault(json!({"kind": "unhealthy_instances", "targets": ["app-003"], "unhealthy": true, "mode": "error"})).await;
    let mut plan = plan_file("examples/shop.yaml");
    // A short gate, so the test does not wait the plan's full health timeout.
    plan["waves"][2]["health"]["timeout_minutes"] = json!(1);
    let (name, arn) = cloud.start(plan, "recovery").await;
    cloud.answer_approval(&["approve", &name]).await;
    let outcome = cloud.wait(name.clone(), &arn).await;
    assert_eq!(outcome.status, ExecutionStatus::Failed);
    assert_eq!(outcome.error.as_deref(), Some("drplan.WaveUnhealthy"));
    let cause = outcome.cause.unwrap_or_default();
    assert!(
        cause.contains("app-003") && cause.contains("http:8080/health"),
        "{cause}"
    );

    // web (after app) never launched, and DNS was not touched.
    let ids = cloud.server_ids().await;
    let launched: Vec<String> = cloud.launched_servers().await;
    for web in ["web-01", "web-02", "web-03"] {
        assert!(
            !launched.contains(&ids[web]),
            "{web} launched after an unhealthy wave"
        );
    }
    assert_eq!(cloud.records("example.com").await, before);

    // The report and the e-mail say which server and why.
    let report = cloud.report("shop", &name).await;
    let app = report_wave(&report, "app");
    assert_eq!(app["state"], "UNHEALTHY");
    let app3 = report_server(&app, "app-003");
    assert!(
        app3["health"].as_str().unwrap_or_default().contains("500"),
        "{app3}"
    );
    let notifications = cloud.notifications().await;
    let (_, body, _) = notifications
        .iter()
        .find(|(subject, _, _)| subject.contains("wave app") && subject.contains("FAILED"))
        .unwrap_or_else(|| {
            panic!(
                "no wave-failed e-mail among {:?}",
                notifications.iter().map(|n| &n.0).collect::<Vec<_>>()
            )
        });
    assert!(body.contains("app-003"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_sent_decline_without_a_reason_still_launches_nothing() {
    let Some(cloud) = cloud_with(&fleet_file("examples/fleet.yaml")).await else {
        return;
    };
    let (name, arn) = cloud
        .start(plan_file("examples/shop.yaml"), "recovery")
        .await;
    // What `aws stepfunctions send-task-success --task-output '{"approved": false}'` sends.
    let token = loop {
        let history = cloud.history(&arn).await;
        if let Approval::Pending { task_token } = drplan_aws::history::approval(&history) {
            break task_token;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    };
    cloud
        .sfn
        .send_task_success()
        .task_token(token)
        .output(r#"{"approved": false}"#)
        .send()
        .await
        .expect("SendTaskSuccess");
    let outcome = cloud.wait(name, &arn).await;
    assert_eq!(outcome.status, ExecutionStatus::Failed);
    assert_eq!(outcome.error.as_deref(), Some("drplan.Declined"));
    assert!(outcome.cause.unwrap_or_default().contains("approved"));
    assert!(cloud.start_recovery_calls().await.is_empty());
}
