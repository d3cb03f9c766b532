//! What the gateway tells the DRS simulator about the requests it passes to moto, so
//! that the simulator's probe stand-ins (one listening socket per instance and probed
//! port) follow what drplan will probe and what EC2 did to the instances:
//!
//! - A plan stored in drplan's bucket (`PutObject plans/NAME.yaml`) or started inline
//!   (StartExecution with `{"plan": {...}}`): the tcp, http and https checks of its waves
//!   become the simulator's probe set `plan:NAME` (each wave's ports on the instances of
//!   the servers it selects, at the address it probes). A plan that probes nothing, or
//!   does not validate, declares an empty set; DeleteObject of the plan forgets its set.
//! - EC2 TerminateInstances, StopInstances and StartInstances: the simulator reads those
//!   instances' states from moto, so a recovery instance terminated outside DRS stops
//!   serving at once.
//!
//! Each is done before the gateway answers, so a client that stores a plan and then
//! starts it, or terminates an instance and then probes it, sees the effect.

use drplan_core::{Format, HealthCheck, Plan, parse_plan, plan_from_value};
use hyper::Method;
use serde_json::{Value, json};

use super::GatewayState;
use crate::stack::BUCKET;
use crate::upstream::AwsClient;

/// A request whose effect the simulator must learn of.
#[derive(Debug, PartialEq)]
pub(super) enum Watched {
    /// A plan stored under `plans/NAME.yaml` in drplan's bucket (by name).
    StoredPlan(String),
    DeletedPlan(String),
    /// A plan passed inline to StartExecution.
    StartedPlan(Value),
    /// EC2 instances whose state a call changes.
    Ec2StateChange(Vec<String>),
}

/// Which of the watched requests this is, from its service and operation (as the request
/// tally names them), path and body.
pub(super) fn watched(service: &str, operation: &str, path: &str, body: &[u8]) -> Option<Watched> {
    match (service, operation) {
        ("s3", "PutObject" | "DeleteObject") => {
            let name = path
                .strip_prefix('/')?
                .strip_prefix(BUCKET)?
                .strip_prefix("/plans/")?
                .strip_suffix(".yaml")?;
            if name.is_empty() || name.contains('/') {
                return None;
            }
            Some(if operation == "PutObject" {
                Watched::StoredPlan(name.to_owned())
            } else {
                Watched::DeletedPlan(name.to_owned())
            })
        }
        ("states", "StartExecution") => {
            let request: Value = serde_json::from_slice(body).ok()?;
            let input: Value = serde_json::from_str(request.get("input")?.as_str()?).ok()?;
            let plan = input.get("plan")?;
            plan.is_object().then(|| Watched::StartedPlan(plan.clone()))
        }
        ("ec2", "TerminateInstances" | "StopInstances" | "StartInstances") => {
            let ids: Vec<String> = form_urlencoded::parse(body)
                .filter(|(name, _)| name.starts_with("InstanceId."))
                .map(|(_, value)| value.into_owned())
                .collect();
            (!ids.is_empty()).then_some(Watched::Ec2StateChange(ids))
        }
        _ => None,
    }
}

/// The simulator's probe set for `plan`: `PUT /_drplan/probe-ports/plan:NAME`'s body.
pub(super) fn probe_set(plan: &Plan) -> Value {
    let mut probes = Vec::new();
    for wave in plan.waves.iter().flatten() {
        // A wave's servers carry the plan's tags and the wave's.
        let mut selector = plan.selector.clone();
        let contradicts = wave.selector.iter().any(|(key, value)| {
            selector
                .insert(key.clone(), value.clone())
                .is_some_and(|plan_value| plan_value != *value)
        });
        if contradicts {
            continue; // the wave selects no server
        }
        let mut ports = std::collections::BTreeSet::new();
        let mut tls_ports = std::collections::BTreeSet::new();
        for check in &wave.health.checks {
            match check {
                HealthCheck::Ec2Status => {}
                HealthCheck::Tcp { port } | HealthCheck::Http { port, .. } => {
                    ports.insert(*port);
                }
                HealthCheck::Https { port, .. } => {
                    ports.insert(*port);
                    tls_ports.insert(*port);
                }
            }
        }
        if !ports.is_empty() {
            probes.push(json!({
                "selector": selector,
                "address": wave.health.probe_address.name(),
                "ports": ports,
                "tls_ports": tls_ports,
            }));
        }
    }
    json!({ "probes": probes })
}

/// Before the request goes to moto: a plan started inline is declared first, so its
/// launches find their probes.
pub(super) async fn before(state: &GatewayState, watched: &Watched) {
    if let Watched::StartedPlan(document) = watched {
        // A plan that does not validate starts nothing: it needs no set.
        if let Ok(plan) = plan_from_value(document) {
            declare(state, &plan.name, &probe_set(&plan)).await;
        }
    }
}

/// After moto answered with success.
pub(super) async fn after(state: &GatewayState, watched: Watched) {
    match watched {
        Watched::StoredPlan(name) => {
            let probes = match stored_plan(state, &name).await {
                Ok(plan) => probe_set(&plan),
                Err(problem) => {
                    eprintln!("gateway: plans/{name}.yaml probes nothing: {problem}");
                    json!({ "probes": [] })
                }
            };
            declare(state, &name, &probes).await;
        }
        Watched::DeletedPlan(name) => {
            simulator_call(state, Method::DELETE, &set_path(&name), Vec::new()).await;
        }
        Watched::StartedPlan(_) => {}
        Watched::Ec2StateChange(ids) => {
            let body = json!({ "instance_ids": ids }).to_string().into_bytes();
            simulator_call(state, Method::POST, "/_drplan/refresh-instances", body).await;
        }
    }
}

fn set_path(plan_name: &str) -> String {
    format!("/_drplan/probe-ports/plan:{plan_name}")
}

async fn declare(state: &GatewayState, plan_name: &str, probes: &Value) {
    let body = probes.to_string().into_bytes();
    simulator_call(state, Method::PUT, &set_path(plan_name), body).await;
}

/// The stored object, read back from moto (the request's body may be aws-chunked).
async fn stored_plan(state: &GatewayState, name: &str) -> Result<Plan, String> {
    let moto = AwsClient::new(
        state.http.clone(),
        &state.upstreams.moto,
        &state.upstreams.default_region,
    );
    let key = drplan_core::contract::keys::plan_source(name);
    let answer = moto
        .rest(
            "s3",
            Method::GET,
            &format!("/{BUCKET}/{key}"),
            "",
            Vec::new(),
        )
        .await
        .map_err(|error| error.to_string())?;
    if !answer.status.is_success() {
        return Err(format!("GetObject answered {}", answer.status));
    }
    let text = answer.body_text();
    parse_plan(&text, Format::guess(Some(&key), &text)).map_err(|issues| {
        issues
            .iter()
            .map(|issue| format!("{}: {}", issue.path, issue.message))
            .collect::<Vec<_>>()
            .join("; ")
    })
}

/// A control call to the simulator. A failure is logged, not passed on: the client's
/// own request succeeded.
async fn simulator_call(state: &GatewayState, method: Method, path: &str, body: Vec<u8>) {
    let simulator = AwsClient::new(
        state.http.clone(),
        &state.upstreams.simulator,
        &state.upstreams.default_region,
    );
    match simulator
        .rest("drs", method.clone(), path, "application/json", body)
        .await
    {
        Ok(answer) if answer.status.is_success() => {}
        Ok(answer) => eprintln!(
            "gateway: the DRS simulator answered {} to {method} {path}: {}",
            answer.status,
            answer.body_text()
        ),
        Err(error) => eprintln!("gateway: {method} {path} on the DRS simulator: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_stored_and_started_and_ec2_state_changes_are_watched() {
        assert_eq!(
            watched("s3", "PutObject", "/drplan-local/plans/shop.yaml", b""),
            Some(Watched::StoredPlan("shop".to_owned()))
        );
        assert_eq!(
            watched("s3", "DeleteObject", "/drplan-local/plans/shop.yaml", b""),
            Some(Watched::DeletedPlan("shop".to_owned()))
        );
        assert_eq!(
            watched("s3", "PutObject", "/drplan-local/reports/shop/x.md", b""),
            None
        );
        assert_eq!(
            watched("s3", "PutObject", "/other/plans/shop.yaml", b""),
            None
        );
        let start = json!({"stateMachineArn": "arn", "input": "{\"plan\": {\"name\": \"p\"}, \"mode\": \"drill\"}"});
        assert_eq!(
            watched(
                "states",
                "StartExecution",
                "/",
                start.to_string().as_bytes()
            ),
            Some(Watched::StartedPlan(json!({"name": "p"})))
        );
        let by_name = json!({"input": "{\"plan\": \"shop\"}"});
        assert_eq!(
            watched(
                "states",
                "StartExecution",
                "/",
                by_name.to_string().as_bytes()
            ),
            None
        );
        assert_eq!(
            watched(
                "ec2",
                "TerminateInstances",
                "/",
                b"Action=TerminateInstances&Version=2016-11-15&InstanceId.1=i-1&InstanceId.2=i-2"
            ),
            Some(Watched::Ec2StateChange(vec![
                "i-1".to_owned(),
                "i-2".to_owned()
            ]))
        );
        assert_eq!(
            watched("ec2", "DescribeInstances", "/", b"InstanceId.1=i-1"),
            None
        );
    }

    #[test]
    fn a_plans_probe_set_has_each_waves_ports_on_its_servers() {
        let plan = parse_plan(
            r#"
name: shop
rto_minutes: 60
selector: { "dr:plan": shop }
waves:
  - name: db
    selector: { tier: db }
    health: { checks: [ec2-status, "tcp:5432"] }
  - name: app
    selector: { tier: app }
  - name: web
    selector: { tier: web }
    depends_on: [db]
    health: { checks: ["http:8080/health", "https:443/"], probe_address: public-ip }
"#,
            Format::Yaml,
        )
        .expect("a valid plan");
        assert_eq!(
            probe_set(&plan),
            json!({"probes": [
                {"selector": {"dr:plan": "shop", "tier": "db"}, "address": "private-ip",
                 "ports": [5432], "tls_ports": []},
                {"selector": {"dr:plan": "shop", "tier": "web"}, "address": "public-ip",
                 "ports": [443, 8080], "tls_ports": [443]},
            ]})
        );
    }

    #[test]
    fn a_plan_whose_waves_come_from_tags_probes_nothing() {
        let plan = parse_plan(
            "name: fleet\nrto_minutes: 120\nselector: { \"dr:plan\": fleet }\n",
            Format::Yaml,
        )
        .expect("a valid plan");
        assert_eq!(probe_set(&plan), json!({"probes": []}));
    }
}
