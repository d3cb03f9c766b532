//! Target groups end to end on the local cloud: the web wave of examples/shop.yaml joins
//! the seeded load balancer's target group (ELBv2 in moto) after its health checks
//! pass; what the target groups hold is read back through the SDK, as a user would.
//! moto reports every registered running instance `healthy` at once (it evaluates no
//! health check), so these tests prove who is registered where and when, not that a
//! load balancer's health checks pass.

use std::collections::BTreeSet;

use crate::common::{Cloud, cloud_with, fleet_file, plan_file, report_wave};
use aws_sdk_sfn::types::ExecutionStatus;
use drplan_local::stack;
use serde_json::{Value, json};

/// The instances a target group holds now (DescribeTargetHealth without targets lists
/// the registered ones), with their target health state.
async fn registered(cloud: &Cloud, target_group: &str) -> TargetStates {
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(
        &stack::sdk_config(cloud.cloud.endpoint_url(), cloud.cloud.region()).await,
    );
    let answer = elb
        .describe_target_health()
        .target_group_arn(cloud.target_group_arn(target_group))
        .send()
        .await
        .expect("DescribeTargetHealth");
    answer
        .target_health_descriptions()
        .iter()
        .map(|d| {
            (
                d.target()
                    .and_then(|t| t.id())
                    .unwrap_or_default()
                    .to_owned(),
                d.target_health()
                    .and_then(|h| h.state())
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_default(),
            )
        })
        .collect()
}

/// The EC2 instances of a run's wave, by their drplan tags: hostname → instance ID.
async fn wave_instances(cloud: &Cloud, execution: &str, wave: &str) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = cloud
        .ec2_instances_of(execution)
        .await
        .iter()
        .filter(|i| {
            i.tags()
                .iter()
                .any(|t| t.key() == Some("drplan:wave") && t.value() == Some(wave))
        })
        .filter_map(|i| {
            let hostname = i
                .tags()
                .iter()
                .find(|t| t.key() == Some("Name") || t.key() == Some("drplan:hostname"))
                .and_then(|t| t.value())
                .unwrap_or_default()
                .to_owned();
            Some((hostname, i.instance_id()?.to_owned()))
        })
        .collect();
    found.sort();
    found
}

/// Instances with their target health state.
type TargetStates = BTreeSet<(String, String)>;

/// The report's target groups of a wave: (name, drill, [(instance, target health)]).
fn report_targets(report: &Value, wave: &str) -> Vec<(String, bool, TargetStates)> {
    report_wave(report, wave)["targets"]["groups"]
        .as_array()
        .map(|groups| {
            groups
                .iter()
                .map(|g| {
                    let arn = g["target_group_arn"].as_str().unwrap_or_default();
                    let name = arn.split('/').nth(1).unwrap_or_default().to_owned();
                    let targets = g["targets"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|t| {
                            (
                                t["ec2_instance_id"].as_str().unwrap_or_default().to_owned(),
                                t["health"]["state"].as_str().unwrap_or_default().to_owned(),
                            )
                        })
                        .collect();
                    (name, g["drill"] == true, targets)
                })
                .collect()
        })
        .unwrap_or_default()
}

fn healthy(ids: &[&str]) -> TargetStates {
    ids.iter()
        .map(|id| ((*id).to_owned(), "healthy".to_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recovery_registers_exactly_the_healthy_web_instances_and_rollback_deregisters_them() {
    // web-03 is an optional canary that fails its HTTPS check: the wave passes without
    // it, and it must not join the target group.
    let fleet = fleet_file("examples/fleet.yaml").replacen(
        "  - count: 3\n    hostname: \"web-{i:02}\"\n    tags: { \"dr:plan\": \"shop\", \"dr:wave\": \"web\" }\n",
        "  - count: 2\n    hostname: \"web-{i:02}\"\n    tags: { \"dr:plan\": \"shop\", \"dr:wave\": \"web\" }\n    replication: { state: CONTINUOUS, lag_seconds: 0 }\n  - count: 1\n    start: 3\n    hostname: \"web-{i:02}\"\n    tags: { \"dr:plan\": \"shop\", \"dr:wave\": \"web\", \"dr:role\": \"canary\" }\n",
        1,
    );
    assert!(
        fleet.contains("canary"),
        "the fleet's web group changed shape"
    );
    let Some(cloud) = cloud_with(&fleet).await else {
        return;
    };
    cloud
        .fault(json!({"kind": "unhealthy_instances", "targets": ["web-03"], "unhealthy": true, "mode": "error"}))
        .await;
    let mut plan = plan_file("examples/shop.yaml");
    plan.as_object_mut().expect("a plan").remove("approval");
    plan["waves"][3]["optional_servers"] = json!({"dr:role": "canary"});
    let outcome = cloud.run(plan, "recovery").await;
    assert_eq!(
        outcome.status,
        ExecutionStatus::Succeeded,
        "{:?}: {:?}",
        outcome.error,
        outcome.cause
    );

    let web = wave_instances(&cloud, &outcome.name, "web").await;
    assert_eq!(web.len(), 3, "{web:?}");
    let healthy_ids: Vec<&str> = web
        .iter()
        .filter(|(host, _)| host != "web-03")
        .map(|(_, id)| id.as_str())
        .collect();
    assert_eq!(healthy_ids.len(), 2, "{web:?}");
    // Exactly the two healthy web servers, on the recovery target group; nothing on
    // the drill's.
    assert_eq!(registered(&cloud, "shop-web").await, healthy(&healthy_ids));
    assert!(registered(&cloud, "shop-web-drill").await.is_empty());

    // The report shows each target group with its instances' target health.
    let report = cloud.report("shop", &outcome.name).await;
    assert_eq!(
        report_targets(&report, "web"),
        [("shop-web".to_owned(), false, healthy(&healthy_ids))]
    );
    assert!(report_wave(&report, "app").get("targets").is_none());

    // rollback-targets takes them out again; a second run of it finds nothing to do.
    let rolled = cloud.drplan(&["rollback-targets", &outcome.name]);
    let stdout = String::from_utf8_lossy(&rolled.stdout);
    assert!(
        rolled.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&rolled.stderr)
    );
    assert!(
        stdout.contains("Deregistered 2 targets") && stdout.contains("shop-web"),
        "{stdout}"
    );
    assert!(registered(&cloud, "shop-web").await.is_empty());
    let again = cloud.drplan(&["rollback-targets", &outcome.name]);
    assert!(again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("no target still registered"),
        "{}",
        String::from_utf8_lossy(&again.stdout)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drill_uses_only_its_drill_target_group_and_cleanup_empties_it() {
    let Some(cloud) = cloud_with(&fleet_file("examples/fleet.yaml")).await else {
        return;
    };
    let outcome = cloud.run(plan_file("examples/shop.yaml"), "drill").await;
    assert_eq!(
        outcome.status,
        ExecutionStatus::Succeeded,
        "{:?}: {:?}",
        outcome.error,
        outcome.cause
    );
    // Nothing ever went into the recovery target group.
    assert!(registered(&cloud, "shop-web").await.is_empty());
    // The drill registered its three web instances into the drill target group, and
    // cleanup deregistered them before terminating the instances.
    let web = wave_instances(&cloud, &outcome.name, "web").await;
    let ids: Vec<&str> = web.iter().map(|(_, id)| id.as_str()).collect();
    assert_eq!(ids.len(), 3, "{web:?}");
    let report = cloud.report("shop", &outcome.name).await;
    assert_eq!(
        report_targets(&report, "web"),
        [("shop-web-drill".to_owned(), true, healthy(&ids))]
    );
    assert_eq!(
        report_wave(&report, "web")["targets"]["deregistered_by"],
        "drill cleanup"
    );
    assert!(registered(&cloud, "shop-web-drill").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_group_that_does_not_exist_is_refused_before_any_launch() {
    let Some(cloud) = cloud_with(&fleet_file("examples/fleet.yaml")).await else {
        return;
    };
    let gone = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/shop-gone/0123456789abcdef";
    for mode in ["recovery", "drill"] {
        let mut plan = plan_file("examples/shop.yaml");
        plan.as_object_mut().expect("a plan").remove("approval");
        // A target group the account does not have, for the run's mode.
        plan["waves"][3]["targets"] = json!([
            {"target_group_arn": cloud.target_group_arn("shop-web"), "port": 443},
            {"target_group_arn": gone, "port": 443, "drill": mode == "drill"},
        ]);
        let outcome = cloud.run(plan, mode).await;
        assert_eq!(outcome.status, ExecutionStatus::Failed, "{mode}");
        assert_eq!(outcome.error.as_deref(), Some("drplan.NotReady"), "{mode}");
        let cause = outcome.cause.unwrap_or_default();
        assert!(
            cause.contains(&format!(
                "waves[3].targets[1].target_group_arn: wave web: target group {gone} does not exist"
            )),
            "{mode}: {cause}"
        );
        assert!(
            cloud.start_recovery_calls().await.is_empty(),
            "{mode}: nothing launched"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_group_that_refuses_the_instances_fails_the_wave_like_an_unhealthy_one() {
    let Some(cloud) = cloud_with(&fleet_file("examples/fleet.yaml")).await else {
        return;
    };
    // A target group that exists when discover looks, and is deleted before the web wave
    // registers into it (while the run waits for approval).
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(
        &stack::sdk_config(cloud.cloud.endpoint_url(), cloud.cloud.region()).await,
    );
    let created = elb
        .create_target_group()
        .name("shop-gone")
        .protocol(aws_sdk_elasticloadbalancingv2::types::ProtocolEnum::Http)
        .port(443)
        .vpc_id(&cloud.seeded.vpc_id)
        .target_type(aws_sdk_elasticloadbalancingv2::types::TargetTypeEnum::Instance)
        .send()
        .await
        .expect("CreateTargetGroup");
    let gone = created
        .target_groups()
        .first()
        .and_then(|tg| tg.target_group_arn())
        .expect("a target group")
        .to_owned();
    let mut plan = plan_file("examples/shop.yaml");
    plan["approval"] = json!({"required_for": ["drill", "recovery"], "timeout_minutes": 60});
    plan["waves"][3]["targets"] = json!([{ "target_group_arn": gone, "port": 443 }]);
    let before = cloud.records("example.com").await;
    let (name, arn) = cloud.start(plan, "recovery").await;
    let started = std::time::Instant::now();
    while !matches!(
        drplan_aws::history::approval(&cloud.history(&arn).await),
        drplan_aws::history::Approval::Pending { .. }
    ) {
        assert!(
            started.elapsed() < crate::common::EXECUTION_TIMEOUT,
            "no approval request"
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    elb.delete_target_group()
        .target_group_arn(&gone)
        .send()
        .await
        .expect("DeleteTargetGroup");
    cloud.answer_approval(&["approve", &name]).await;
    let outcome = cloud.wait(name, &arn).await;
    assert_eq!(outcome.status, ExecutionStatus::Failed);
    assert_eq!(outcome.error.as_deref(), Some("drplan.WaveUnhealthy"));
    let cause = outcome.cause.unwrap_or_default();
    assert!(
        cause.contains("shop-gone") && cause.contains("RegisterTargets"),
        "{cause}"
    );
    // Like any unhealthy wave: DNS is left alone, the report says why.
    assert_eq!(cloud.records("example.com").await, before);
    let report = cloud.report("shop", &outcome.name).await;
    assert_eq!(report_wave(&report, "web")["state"], "UNHEALTHY");
}
