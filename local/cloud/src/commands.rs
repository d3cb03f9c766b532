//! The `drplan local ...` subcommands as plain functions, so that the CLI only parses
//! arguments. Each one runs its own tokio runtime: the CLI needs no async of its own.

use std::path::Path;
use std::time::Duration;

use hyper::Method;
use serde::Serialize;
use serde_json::{Value, json};

use crate::cloud::{DEFAULT_GATEWAY_PORT, LocalCloud, LocalCloudOptions};
use crate::error::{LocalCloudError, Result};
use crate::seed::{self, Fleet, SeedReport};
use crate::tools;
use crate::upstream::{AwsClient, HttpClient};

/// Where the CLI finds a running local cloud: `AWS_ENDPOINT_URL` if set (the same
/// variable every client uses), else the default gateway address.
pub fn default_endpoint_url() -> String {
    std::env::var("AWS_ENDPOINT_URL")
        .ok()
        .filter(|url| !url.is_empty())
        .unwrap_or_else(|| format!("http://127.0.0.1:{DEFAULT_GATEWAY_PORT}"))
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(LocalCloudError::Net)
}

/// Options of `drplan local up`.
#[derive(Clone, Debug)]
pub struct UpOptions {
    pub port: u16,
    /// The DRS simulator's clock; 1.0 is realistic.
    pub time_scale: f64,
    pub log_requests: bool,
}

impl Default for UpOptions {
    fn default() -> Self {
        Self {
            port: DEFAULT_GATEWAY_PORT,
            time_scale: 1.0,
            log_requests: false,
        }
    }
}

/// Runs the local cloud in the foreground until Ctrl-C or SIGTERM (or until a child
/// process dies, which is an error), then stops every child.
pub fn up(options: UpOptions) -> Result<()> {
    let repo_root = tools::find_repo_root(&std::env::current_dir()?)?;
    // Kept across runs, where the user looks for them (.local/ is ignored by git).
    let log_dir = repo_root.join(".local").join("cloud-logs");
    let repo_root_for_stack = repo_root.clone();
    runtime()?.block_on(async move {
        let mut cloud = LocalCloud::start(LocalCloudOptions {
            repo_root: Some(repo_root),
            log_dir: Some(log_dir),
            gateway_port: options.port,
            time_scale: options.time_scale,
            log_requests: options.log_requests,
            // The user edits functions while the cloud runs.
            reload_functions: true,
            ..LocalCloudOptions::default()
        })
        .await?;
        // drplan itself, so that `drplan start` works against the local cloud at once.
        let deployed = crate::stack::deploy(
            cloud.endpoint_url(),
            cloud.region(),
            crate::cloud::LOCAL_ACCOUNT_ID,
            &repo_root_for_stack,
        )
        .await?;
        print_banner(&cloud);
        println!(
            "  drplan:        {} (bucket {})",
            deployed.recovery_state_machine_arn, deployed.bucket
        );
        let outcome = wait_for_stop(&mut cloud).await;
        eprintln!("drplan local: stopping");
        cloud.shutdown().await;
        outcome
    })
}

fn print_banner(cloud: &LocalCloud) {
    let endpoint = cloud.endpoint_url();
    println!("drplan local cloud is up at {endpoint}");
    println!(
        "  export AWS_ENDPOINT_URL={endpoint} AWS_REGION={region} AWS_DEFAULT_REGION={region} \\\n         AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test",
        region = cloud.region()
    );
    println!("  moto:          {}", cloud.moto_url());
    println!("  DRS simulator: {}", cloud.simulator_url());
    match cloud.lambda_url() {
        Some(url) => println!("  functions:     {url} (cargo lambda watch)"),
        None => println!("  functions:     none (no function crates under functions/)"),
    }
    println!("  logs:          {}", cloud.log_dir().display());
    println!("  seed it:       drplan local seed examples/fleet.yaml");
    println!("Ctrl-C stops everything.");
}

async fn wait_for_stop(cloud: &mut LocalCloud) -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut health_check = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = terminate.recv() => return Ok(()),
            _ = interrupt.recv() => return Ok(()),
            _ = health_check.tick() => cloud.check_children()?,
        }
    }
}

/// `drplan local seed FLEET.yaml`.
pub fn seed_file(endpoint_url: &str, fleet_file: &Path) -> Result<SeedReport> {
    let fleet = Fleet::from_file(fleet_file)?;
    runtime()?.block_on(seed::seed(endpoint_url, &fleet))
}

/// `drplan local event FILE`: puts the events of `event_file` through the gateway and
/// returns PutEvents' answer. The file holds an EventBridge event as AWS documents it
/// (`source`, `detail-type`, `detail`, ...), a list of them, a PutEvents entry
/// (`Source`, `DetailType`, `Detail`), a list of those, or a whole PutEvents request.
pub fn put_event_file(
    endpoint_url: &str,
    event_file: &Path,
    event_bus: Option<&str>,
    region: &str,
) -> Result<Value> {
    let text = std::fs::read_to_string(event_file).map_err(|source| LocalCloudError::Io {
        path: event_file.to_path_buf(),
        source,
    })?;
    let entries =
        put_events_entries(&text, event_bus).map_err(|problem| LocalCloudError::InvalidFile {
            path: event_file.to_path_buf(),
            problem,
        })?;
    runtime()?.block_on(put_events(endpoint_url, region, entries))
}

/// Puts `entries` (PutEvents entries) through the gateway, ten at a time as EventBridge
/// allows, and returns the answers' entries together.
pub async fn put_events(endpoint_url: &str, region: &str, entries: Vec<Value>) -> Result<Value> {
    let aws = AwsClient::new(HttpClient::new(), endpoint_url, region);
    let mut failed = 0;
    let mut results = Vec::new();
    for batch in entries.chunks(10) {
        let answer = aws
            .json(
                "events",
                "1.1",
                "AWSEvents",
                "PutEvents",
                &json!({ "Entries": batch }),
            )
            .await?;
        failed += answer
            .get("FailedEntryCount")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        results.extend(
            answer
                .get("Entries")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
        );
    }
    Ok(json!({ "FailedEntryCount": failed, "Entries": results }))
}

/// The PutEvents entries an event file stands for (see [`put_event_file`]).
pub fn put_events_entries(
    text: &str,
    event_bus: Option<&str>,
) -> std::result::Result<Vec<Value>, String> {
    let document: Value = serde_norway::from_str(text).map_err(|error| error.to_string())?;
    let items = match document {
        Value::Object(ref object) if object.contains_key("Entries") => {
            object["Entries"].as_array().cloned().unwrap_or_default()
        }
        Value::Array(items) => items,
        single => vec![single],
    };
    if items.is_empty() {
        return Err("the file holds no event".to_string());
    }
    items
        .into_iter()
        .enumerate()
        .map(|(index, item)| {
            let mut entry = if item.get("Source").is_some() {
                item
            } else if item.get("source").is_some() {
                json!({
                    "Source": item["source"],
                    "DetailType": item.get("detail-type").cloned().unwrap_or(Value::Null),
                    "Detail": item.get("detail").cloned().unwrap_or_else(|| json!({})),
                    "Resources": item.get("resources").cloned().unwrap_or_else(|| json!([])),
                })
            } else {
                return Err(format!(
                    "event {index} has neither `source` (an EventBridge event) nor `Source` (a PutEvents entry)"
                ));
            };
            // PutEvents takes the detail as a JSON string.
            if let Some(detail) = entry.get("Detail")
                && !detail.is_string()
            {
                entry["Detail"] = Value::String(detail.to_string());
            }
            if let Some(bus) = event_bus {
                entry["EventBusName"] = json!(bus);
            }
            Ok(entry)
        })
        .collect()
}

/// A fault for the DRS simulator (`POST /_drplan/faults`); see local/drs-sim/README.md.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// The next `count` calls of `operation` get ThrottlingException (429).
    Throttle {
        operation: String,
        count: u32,
        retry_after_seconds: u64,
    },
    /// These servers (IDs or hostnames) fail their next launches with `raw_error`.
    FailLaunch {
        servers: Vec<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        raw_error: Option<String>,
    },
    /// Failback launches of these recovery instances (or servers, by ID or hostname)
    /// fail with `raw_error` (FAILBACK_ERROR).
    FailFailbackLaunch {
        targets: Vec<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        raw_error: Option<String>,
    },
    /// These servers' conversion takes `factor` times as long plus `extra_seconds`.
    SlowConversion {
        servers: Vec<String>,
        factor: f64,
        extra_seconds: f64,
    },
    StallReplication {
        servers: Vec<String>,
    },
    UnstallReplication {
        servers: Vec<String>,
    },
    /// Health probes of these targets (instance IDs or addresses) fail, or pass again.
    UnhealthyInstances {
        targets: Vec<String>,
        unhealthy: bool,
    },
}

/// `drplan local fault ...`: injects one fault.
pub fn inject_fault(endpoint_url: &str, fault: &Fault) -> Result<Value> {
    let body = serde_json::to_value(fault)
        .map_err(|error| LocalCloudError::InvalidInput(error.to_string()))?;
    control(endpoint_url, Method::POST, "/_drplan/faults", Some(&body))
}

/// `drplan local failback-client TARGET... | --all`: does what a booted DRS Failback
/// Client does for these recovery instances (IDs, or source server IDs or hostnames):
/// connects (FAILBACK_IN_PROGRESS) and replicates until ready (FAILBACK_READY_FOR_LAUNCH).
pub fn failback_client(endpoint_url: &str, targets: &[String], all: bool) -> Result<Value> {
    let body = if all {
        serde_json::json!({ "all": true })
    } else {
        serde_json::json!({ "targets": targets })
    };
    control(
        endpoint_url,
        Method::POST,
        "/_drplan/failback-client",
        Some(&body),
    )
}

/// `drplan local fault clear`.
pub fn clear_faults(endpoint_url: &str) -> Result<Value> {
    control(endpoint_url, Method::DELETE, "/_drplan/faults", None)
}

/// `drplan local fault show`: the simulator's state, faults included.
pub fn simulator_state(endpoint_url: &str) -> Result<Value> {
    control(endpoint_url, Method::GET, "/_drplan/state", None)
}

fn control(endpoint_url: &str, method: Method, path: &str, body: Option<&Value>) -> Result<Value> {
    runtime()?.block_on(async {
        let aws = AwsClient::new(HttpClient::new(), endpoint_url, "us-east-1");
        seed::control_call(&aws, method, path, body).await
    })
}

/// `drplan local fire-schedule PLAN`: what EventBridge Scheduler does when the plan's
/// drill schedule fires (moto keeps schedules but never fires them): the schedule's
/// target is invoked, synchronously, with the schedule's input and the scheduled time
/// (now) in place of `<aws.scheduler.scheduled-time>`. Returns the target's answer.
pub fn fire_drill_schedule(endpoint_url: &str, region: &str, plan: &str) -> Result<Value> {
    let name = drplan_core::schedule::drill_schedule_name(plan);
    runtime()?.block_on(async {
        let aws = AwsClient::new(HttpClient::new(), endpoint_url, region);
        let answer = aws
            .rest(
                "scheduler",
                Method::GET,
                &format!(
                    "/schedules/{name}?groupName={}",
                    crate::stack::DRILL_SCHEDULE_GROUP
                ),
                "application/json",
                Vec::new(),
            )
            .await?;
        if answer.status == hyper::StatusCode::NOT_FOUND {
            return Err(LocalCloudError::InvalidInput(format!(
                "plan {plan} has no drill schedule ({name} in group {}): store the plan with drill.schedule first",
                crate::stack::DRILL_SCHEDULE_GROUP
            )));
        }
        crate::upstream::check_status("scheduler", "GetSchedule", &answer)?;
        let schedule: Value = serde_json::from_slice(&answer.body).map_err(|e| {
            LocalCloudError::InvalidInput(format!("GetSchedule {name} did not answer JSON: {e}"))
        })?;
        let target = schedule["Target"]["Arn"].as_str().unwrap_or_default();
        if target.is_empty() {
            return Err(LocalCloudError::InvalidInput(format!(
                "schedule {name} has no target"
            )));
        }
        let scheduled_time = crate::ids::iso8601_utc(crate::ids::now_epoch_seconds());
        let input = schedule["Target"]["Input"]
            .as_str()
            .unwrap_or("{}")
            .replace(drplan_core::schedule::SCHEDULED_TIME, &scheduled_time);
        let answer = aws
            .rest(
                "lambda",
                Method::POST,
                &format!(
                    "/2015-03-31/functions/{}/invocations",
                    target.replace(':', "%3A")
                ),
                "application/json",
                input.into_bytes(),
            )
            .await?;
        crate::upstream::check_status("lambda", "Invoke", &answer)?;
        let answer: Value = serde_json::from_slice(&answer.body).unwrap_or_else(|_| {
            Value::String(answer.body_text())
        });
        Ok(json!({
            "schedule": name,
            "scheduled_time": scheduled_time,
            "target": target,
            "answer": answer,
        }))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_files_in_every_documented_shape() {
        let documented = r#"{"version": "0", "id": "x", "detail-type": "DRS Source Server Launch Result",
            "source": "aws.drs", "resources": ["arn:aws:drs:us-east-1:1:source-server/s-1"],
            "detail": {"state": "SUCCEEDED"}}"#;
        let entries = put_events_entries(documented, Some("drplan")).expect("an event");
        assert_eq!(entries[0]["Source"], "aws.drs");
        assert_eq!(entries[0]["Detail"], "{\"state\":\"SUCCEEDED\"}");
        assert_eq!(entries[0]["EventBusName"], "drplan");

        let request = r#"{"Entries": [{"Source": "a", "DetailType": "b", "Detail": "{}"}, {"Source": "c", "DetailType": "d", "Detail": {"k": 1}}]}"#;
        let entries = put_events_entries(request, None).expect("a request");
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[1]["Detail"], "{\"k\":1}");

        assert!(put_events_entries(r#"{"foo": 1}"#, None).is_err());
    }

    #[test]
    fn faults_serialize_as_the_simulator_expects() {
        let fault = Fault::Throttle {
            operation: "StartRecovery".to_string(),
            count: 2,
            retry_after_seconds: 1,
        };
        assert_eq!(
            serde_json::to_value(&fault).expect("serializable"),
            json!({"kind": "throttle", "operation": "StartRecovery", "count": 2, "retry_after_seconds": 1})
        );
    }
}
