//! Traffic to a recovery load balancer, and a DNS cutover that needs no Route 53 call:
//! an alias record cut over and rolled back through Route 53 (control plane), and a
//! data-plane recovery whose failover records `drplan dns prepare` made ahead of time,
//! cut over by flipping a CloudWatch alarm. The gateway's request tally proves the run
//! made no Route 53 call; DescribeAlarms shows the alarm flipped; ListResourceRecordSets
//! shows the failover pair. (moto evaluates neither the alarm's metric nor the health
//! check, so what Route 53's name servers would then answer is not observable here.)

use aws_sdk_route53::types::ResourceRecordSet;
use aws_sdk_sfn::types::ExecutionStatus;
use drplan_local::{gateway, stack};
use serde_json::{Value, json};

use crate::common::{Cloud, cloud_with, fleet_file, plan_file};

/// A load balancer's DNS name and canonical hosted zone (an ELB in us-east-1).
const LB_DNS: &str = "recovery-web-1234567890.us-east-1.elb.amazonaws.com";
const LB_ZONE: &str = "Z35SXDOTRQ7X7K";
const ALARM: &str = "drplan-shop-dns-failover";

/// The shop plan without its approval step, its first record (the web tier's
/// shop.example.com) an alias to the recovery load balancer.
fn shop_with_alias() -> Value {
    let mut plan = plan_file("examples/shop.yaml");
    plan.as_object_mut().expect("a plan").remove("approval");
    plan["dns"]["records"][0] = json!({
        "name": "shop.example.com", "type": "A", "from_wave": "web",
        "alias": {"dns_name": LB_DNS, "hosted_zone_id": LB_ZONE, "evaluate_target_health": true}
    });
    plan
}

/// Every record set under `name` in the seeded zone example.com.
async fn record_sets(cloud: &Cloud, name: &str) -> Vec<ResourceRecordSet> {
    let route53 = route53(cloud).await;
    let zones = route53
        .list_hosted_zones_by_name()
        .dns_name("example.com")
        .send()
        .await
        .expect("ListHostedZonesByName");
    let zone = zones.hosted_zones().first().expect("the seeded zone").id();
    let sets = route53
        .list_resource_record_sets()
        .hosted_zone_id(zone)
        .send()
        .await
        .expect("ListResourceRecordSets");
    sets.resource_record_sets()
        .iter()
        .filter(|s| s.name() == name && s.r#type().as_str() == "A")
        .cloned()
        .collect()
}

async fn route53(cloud: &Cloud) -> aws_sdk_route53::Client {
    aws_sdk_route53::Client::new(
        &stack::sdk_config(cloud.cloud.endpoint_url(), cloud.cloud.region()).await,
    )
}

fn values(set: &ResourceRecordSet) -> Vec<String> {
    let mut v: Vec<String> = set
        .resource_records()
        .iter()
        .map(|r| r.value().to_owned())
        .collect();
    v.sort();
    v
}

fn stdout(output: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alias_record_points_at_the_recovery_load_balancer_and_rolls_back() {
    let Some(cloud) = cloud_with(&fleet_file("examples/fleet.yaml")).await else {
        return;
    };
    gateway::reset_request_tally(&cloud.control)
        .await
        .expect("the tally resets");
    let outcome = cloud.run(shop_with_alias(), "recovery").await;
    assert_eq!(
        outcome.status,
        ExecutionStatus::Succeeded,
        "{:?}: {:?}",
        outcome.error,
        outcome.cause
    );
    // The control-plane path's Route 53 calls are in the gateway's tally (what the
    // data-plane test counts none of).
    let calls = route53_calls(&cloud).await;
    assert!(
        calls
            .iter()
            .any(|c| c["operation"] == "ChangeResourceRecordSets" && c["count"] == 1),
        "{calls:?}"
    );
    let shop = record_sets(&cloud, "shop.example.com.").await;
    assert_eq!(shop.len(), 1, "{shop:?}");
    let alias = shop[0].alias_target().expect("an alias record");
    assert_eq!(alias.dns_name().trim_end_matches('.'), LB_DNS);
    assert_eq!(alias.hosted_zone_id(), LB_ZONE);
    assert!(alias.evaluate_target_health());
    assert!(shop[0].resource_records().is_empty());
    // The other record moved in the same batch, to its wave's instances.
    let api = record_sets(&cloud, "api.shop.example.com.").await;
    assert_ne!(values(&api[0]), ["203.0.113.11", "203.0.113.12"]);

    let report = cloud.report("shop", &outcome.name).await;
    let change = &report["dns"]["changes"][0];
    assert_eq!(change["new"]["alias"]["hosted_zone_id"], LB_ZONE);
    assert_eq!(change["previous"]["values"], json!(["203.0.113.10"]));

    let rolled = cloud.drplan(&["rollback-dns", &outcome.name]);
    assert!(rolled.status.success(), "{}", stdout(&rolled));
    assert!(
        stdout(&rolled).contains("shop.example.com. A -> 203.0.113.10"),
        "{}",
        stdout(&rolled)
    );
    let shop = record_sets(&cloud, "shop.example.com.").await;
    assert_eq!(shop.len(), 1, "{shop:?}");
    assert!(shop[0].alias_target().is_none(), "{shop:?}");
    assert_eq!(values(&shop[0]), ["203.0.113.10"]);
    assert_eq!(
        values(&record_sets(&cloud, "api.shop.example.com.").await[0]),
        ["203.0.113.11", "203.0.113.12"]
    );
}

/// The shop plan as a data-plane cutover: shop.example.com fails over to the recovery
/// load balancer, api.shop.example.com to `api` (fixed addresses).
fn data_plane_shop(api: &[&str]) -> Value {
    let mut plan = shop_with_alias();
    plan["dns"]["mode"] = json!("data-plane");
    plan["dns"]["records"][1]["values"] = json!(api);
    plan
}

fn write_plan(cloud: &Cloud, file: &str, plan: &Value) -> String {
    let path = cloud.cloud.log_dir().join(file);
    std::fs::write(&path, serde_json::to_vec_pretty(plan).expect("JSON")).expect("plan written");
    path.to_string_lossy().into_owned()
}

pub(crate) async fn alarm_state(cloud: &Cloud) -> String {
    let cloudwatch = aws_sdk_cloudwatch::Client::new(
        &stack::sdk_config(cloud.cloud.endpoint_url(), cloud.cloud.region()).await,
    );
    let alarms = cloudwatch
        .describe_alarms()
        .alarm_names(ALARM)
        .send()
        .await
        .expect("DescribeAlarms");
    alarms
        .metric_alarms()
        .first()
        .and_then(|a| a.state_value())
        .map(|s| s.as_str().to_owned())
        .expect("the failover alarm")
}

/// The Route 53 requests the gateway counted since its tally was last reset.
async fn route53_calls(cloud: &Cloud) -> Vec<Value> {
    let tally = gateway::request_tally(&cloud.control)
        .await
        .expect("the gateway's tally");
    tally["tallies"]
        .as_array()
        .expect("tallies")
        .iter()
        .filter(|t| t["service"] == "route53")
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prepared_data_plane_recovery_flips_the_alarm_with_no_route53_call_and_rolls_back() {
    let Some(cloud) = cloud_with(&fleet_file("examples/fleet.yaml")).await else {
        return;
    };
    let plan = data_plane_shop(&["10.0.2.50", "10.0.2.51"]);
    let file = write_plan(&cloud, "shop-data-plane.json", &plan);

    // Prepared once: the failover pairs, the health check, the alarm.
    let prepared = cloud.drplan(&["dns", "prepare", &file]);
    assert!(prepared.status.success(), "{}", stdout(&prepared));
    assert!(
        stdout(&prepared).contains("failover pair created"),
        "{}",
        stdout(&prepared)
    );
    let shop = record_sets(&cloud, "shop.example.com.").await;
    let primary = shop
        .iter()
        .find(|s| s.set_identifier() == Some("drplan-primary"))
        .expect("a PRIMARY record");
    let secondary = shop
        .iter()
        .find(|s| s.set_identifier() == Some("drplan-secondary"))
        .expect("a SECONDARY record");
    assert_eq!(shop.len(), 2, "the simple record is gone: {shop:?}");
    assert_eq!(values(primary), ["203.0.113.10"]);
    assert_eq!(
        secondary
            .alias_target()
            .map(|a| a.dns_name().trim_end_matches('.')),
        Some(LB_DNS)
    );
    let health_check_id = primary
        .health_check_id()
        .expect("the PRIMARY follows a health check");
    let check = route53(&cloud)
        .await
        .get_health_check()
        .health_check_id(health_check_id)
        .send()
        .await
        .expect("GetHealthCheck");
    let config = check
        .health_check()
        .and_then(|h| h.health_check_config())
        .expect("a health check config");
    assert_eq!(config.r#type().as_str(), "CLOUDWATCH_METRIC");
    assert_eq!(config.alarm_identifier().map(|a| a.name()), Some(ALARM));
    let api = record_sets(&cloud, "api.shop.example.com.").await;
    let api_secondary = api
        .iter()
        .find(|s| s.set_identifier() == Some("drplan-secondary"))
        .expect("api's SECONDARY");
    assert_eq!(values(api_secondary), ["10.0.2.50", "10.0.2.51"]);

    // Again: nothing changes, and it says so; the check agrees.
    let again = cloud.drplan(&["dns", "prepare", &file]);
    assert!(again.status.success(), "{}", stdout(&again));
    assert!(
        stdout(&again).contains("already prepared, nothing changed"),
        "{}",
        stdout(&again)
    );
    assert_eq!(record_sets(&cloud, "shop.example.com.").await, shop);
    let checked = cloud.drplan(&["dns", "check", &file]);
    assert!(checked.status.success(), "{}", stdout(&checked));

    // A plan whose recovery target is not what was prepared is refused before launch.
    let moved = data_plane_shop(&["10.0.2.99"]);
    let check_moved = cloud.drplan(&["dns", "check", &write_plan(&cloud, "moved.json", &moved)]);
    assert!(!check_moved.status.success());
    assert!(
        stdout(&check_moved).contains("10.0.2.99"),
        "{}",
        stdout(&check_moved)
    );
    // `drplan validate --servers` checks the prepared records too: the prepared plan
    // passes, the moved one is refused with the mismatch.
    let servers = crate::common::repo_root().join("examples/servers.json");
    let servers = servers.to_string_lossy();
    let valid = cloud.drplan(&["validate", "--servers", &servers, &file]);
    assert!(
        valid.status.success(),
        "{}{}",
        stdout(&valid),
        String::from_utf8_lossy(&valid.stderr)
    );
    let moved_file = write_plan(&cloud, "moved.json", &moved);
    let invalid = cloud.drplan(&["validate", "--servers", &servers, &moved_file]);
    assert!(!invalid.status.success(), "{}", stdout(&invalid));
    assert!(
        stdout(&invalid).contains(&format!(
            "{moved_file}: dns: prepared for the data-plane cutover: "
        )) && stdout(&invalid).contains(
            "the prepared SECONDARY answers 10.0.2.50, 10.0.2.51, the plan says 10.0.2.99"
        ),
        "{}",
        stdout(&invalid)
    );
    // Without --servers validate stays offline, and judges the document only.
    let offline = cloud.drplan(&["validate", &moved_file]);
    assert!(offline.status.success(), "{}", stdout(&offline));
    let refused = cloud.run(moved, "recovery").await;
    assert_eq!(refused.status, ExecutionStatus::Failed);
    let cause = refused.cause.clone().unwrap_or_default();
    assert!(
        cause.contains("dns.records[1]")
            && cause.contains(
                "the prepared SECONDARY answers 10.0.2.50, 10.0.2.51, the plan says 10.0.2.99"
            ),
        "{cause}"
    );
    assert!(
        cloud.start_recovery_calls().await.is_empty(),
        "a refused plan launched something"
    );
    // Not failed over (moto starts an alarm in OK, AWS in INSUFFICIENT_DATA).
    assert_ne!(alarm_state(&cloud).await, "ALARM");

    // The prepared plan: the cutover flips the alarm and makes no Route 53 call.
    gateway::reset_request_tally(&cloud.control)
        .await
        .expect("the tally resets");
    let outcome = cloud.run(plan, "recovery").await;
    assert_eq!(
        outcome.status,
        ExecutionStatus::Succeeded,
        "{:?}: {:?}",
        outcome.error,
        outcome.cause
    );
    assert!(!cloud.start_recovery_calls().await.is_empty());
    assert_eq!(route53_calls(&cloud).await, Vec::<Value>::new());
    assert_eq!(alarm_state(&cloud).await, "ALARM");
    let report = cloud.report("shop", &outcome.name).await;
    assert_eq!(report["dns"]["path"], "data plane");
    assert_eq!(report["dns"]["alarm"]["alarm"]["name"], ALARM);
    assert_eq!(report["dns"]["alarm"]["state"], "ALARM");
    assert!(report["dns"]["insync_at"].is_string());
    // Route 53 holds what was prepared: the run changed no record.
    assert_eq!(record_sets(&cloud, "shop.example.com.").await, shop);

    // Rollback flips it back, with no Route 53 call either.
    gateway::reset_request_tally(&cloud.control)
        .await
        .expect("the tally resets");
    let rolled = cloud.drplan(&["rollback-dns", &outcome.name]);
    assert!(rolled.status.success(), "{}", stdout(&rolled));
    assert!(
        stdout(&rolled).contains("no Route 53 call"),
        "{}",
        stdout(&rolled)
    );
    assert_eq!(alarm_state(&cloud).await, "OK");
    assert_eq!(route53_calls(&cloud).await, Vec::<Value>::new());
}
