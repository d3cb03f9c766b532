//! The harness of the end-to-end tests: a local cloud per test with drplan deployed
//! and a fleet seeded, driven through the AWS SDK as a user's tooling would.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_sfn::types::ExecutionStatus;
use drplan_local::seed::{self, Fleet};
use drplan_local::stack::{self, Stack};
use drplan_local::upstream::{AwsClient, HttpClient};
use drplan_local::{LocalCloud, LocalCloudOptions, tools};
use hyper::Method;
use serde_json::{Value, json};

/// The drill subnet `examples/shop.yaml` names: replaced by the seeded one in local runs.
pub const EXAMPLE_DRILL_SUBNET: &str = "subnet-0d1e2f3a4b5c6d7e8";

/// Fast timing: polls every second or two, drill instances kept two seconds.
pub fn fast_timing() -> Value {
    json!({"poll_initial_seconds": 1, "poll_max_seconds": 2, "poll_backoff_rate": 1.5,
           "launch_timeout_minutes": 5, "drill_keep_seconds": 2})
}

/// The first run of a test binary may wait for `cargo lambda watch` to build the
/// function binaries; later runs take seconds.
pub const EXECUTION_TIMEOUT: Duration = Duration::from_secs(900);

pub struct Cloud {
    pub cloud: LocalCloud,
    pub stack: Stack,
    pub sfn: aws_sdk_sfn::Client,
    pub s3: aws_sdk_s3::Client,
    pub ec2: aws_sdk_ec2::Client,
    pub drs: aws_sdk_drs::Client,
    pub control: AwsClient,
    pub seeded: seed::SeedReport,
}

/// A wave of a report, by name.
pub fn report_wave(report: &Value, name: &str) -> Value {
    report["waves"]
        .as_array()
        .and_then(|waves| waves.iter().find(|w| w["name"] == name))
        .unwrap_or_else(|| panic!("no wave {name} in the report"))
        .clone()
}

/// A server of a report's wave, by hostname.
pub fn report_server(wave: &Value, hostname: &str) -> Value {
    wave["servers"]
        .as_array()
        .and_then(|servers| servers.iter().find(|s| s["hostname"] == hostname))
        .unwrap_or_else(|| panic!("no server {hostname} in wave {}", wave["name"]))
        .clone()
}

pub struct Outcome {
    pub name: String,
    pub status: ExecutionStatus,
    pub error: Option<String>,
    pub cause: Option<String>,
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The local cloud with drplan deployed and `fleet` seeded, or `None` (skipped).
pub async fn cloud_with(fleet: &str) -> Option<Cloud> {
    cloud_with_probe_ports(fleet, None).await
}

/// Like [`cloud_with`], with ports the simulator serves on every recovered instance
/// besides those the plans probe (`LocalCloudOptions::probe_ports`). The plans' own
/// ports need no listing: the gateway derives them from each plan stored or started, so
/// `None` and `Some(vec![])` are both [`cloud_with`].
pub async fn cloud_with_probe_ports(fleet: &str, probe_ports: Option<Vec<u16>>) -> Option<Cloud> {
    if let Err(missing) =
        tools::moto_server(&repo_root()).and_then(|_| tools::cargo_lambda(&repo_root()))
    {
        assert!(
            std::env::var_os("DRPLAN_REQUIRE_LOCAL_CLOUD").is_none(),
            "DRPLAN_REQUIRE_LOCAL_CLOUD is set but the local cloud cannot start: {missing}"
        );
        eprintln!("SKIPPED: {missing}");
        return None;
    }
    let cloud = LocalCloud::start(LocalCloudOptions {
        repo_root: Some(repo_root()),
        probe_ports: probe_ports.unwrap_or_default(),
        ..LocalCloudOptions::default()
    })
    .await
    .expect("the local cloud starts");
    let endpoint = cloud.endpoint_url().to_owned();
    let stack = stack::deploy(&endpoint, cloud.region(), "123456789012", &repo_root())
        .await
        .expect("drplan deploys into the local cloud");
    let mut fleet = Fleet::from_yaml(fleet).expect("a valid fleet");
    // Each cloud of this test binary gets its own VPC range: instances' health probes go
    // to 127.b.c.d stand-ins of their private IPs, which must not collide between the
    // clouds of tests running side by side.
    static NEXT_NETWORK: AtomicU32 = AtomicU32::new(100);
    let octet = NEXT_NETWORK.fetch_add(1, Ordering::Relaxed);
    fleet.network.vpc_cidr = format!("10.{octet}.0.0/16");
    // /20 subnets: room for a 4,000-server drill.
    fleet.network.recovery_subnet_cidr = format!("10.{octet}.16.0/20");
    fleet.network.drill_subnet_cidr = format!("10.{octet}.32.0/20");
    // The source machines too (a failback probes them at their stand-ins): their own
    // second octet, apart from every cloud's VPC.
    if fleet.network.source_cidr.is_none() {
        fleet.network.source_cidr = Some(format!("10.{}.0.0/16", octet + 100));
    }
    let seeded = seed::seed(&endpoint, &fleet)
        .await
        .expect("the fleet seeds");
    let config = stack::sdk_config(&endpoint, cloud.region()).await;
    Some(Cloud {
        sfn: aws_sdk_sfn::Client::new(&config),
        s3: aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&config)
                .force_path_style(true)
                .build(),
        ),
        ec2: aws_sdk_ec2::Client::new(&config),
        drs: aws_sdk_drs::Client::new(&config),
        control: AwsClient::new(HttpClient::new(), &endpoint, cloud.region()),
        stack,
        cloud,
        seeded,
    })
}

impl Cloud {
    pub async fn control(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        seed::control_call(&self.control, method, path, body.as_ref())
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    pub async fn fault(&self, fault: Value) {
        self.control(Method::POST, "/_drplan/faults", Some(fault))
            .await;
    }

    /// StartRecovery calls the simulator received, as lists of source server IDs.
    pub async fn start_recovery_calls(&self) -> Vec<Vec<String>> {
        let calls = self.control(Method::GET, "/_drplan/calls", None).await;
        calls["calls"]
            .as_array()
            .expect("a list of calls")
            .iter()
            .filter(|c| {
                c["operation"] == "StartRecovery" && c["status"].as_u64().is_none_or(|s| s < 300)
            })
            .map(|c| {
                c["source_server_ids"]
                    .as_array()
                    .map(|ids| {
                        ids.iter()
                            .filter_map(|i| i.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default()
            })
            .collect()
    }

    /// Every source server ID that successful StartRecovery calls launched, in order.
    pub async fn launched_servers(&self) -> Vec<String> {
        self.start_recovery_calls()
            .await
            .into_iter()
            .flatten()
            .collect()
    }

    /// Source server IDs by hostname.
    pub async fn server_ids(&self) -> BTreeMap<String, String> {
        let state = self.control(Method::GET, "/_drplan/state", None).await;
        state["servers"]
            .as_array()
            .expect("the simulator lists its servers")
            .iter()
            .filter_map(|s| {
                Some((
                    s["hostname"].as_str()?.to_owned(),
                    s["source_server_id"].as_str()?.to_owned(),
                ))
            })
            .collect()
    }

    pub async fn run(&self, plan: Value, mode: &str) -> Outcome {
        let (name, arn) = self.start(plan, mode).await;
        self.wait(name, &arn).await
    }

    /// Stores the plan file at `path` in the bucket as `plans/NAME.yaml` (its example
    /// drill subnet and target groups replaced by the seeded ones, as `drplan local
    /// drill` does).
    pub async fn store_plan(&self, name: &str, path: &str) {
        self.store_plan_value(name, &plan_file(path)).await;
    }

    /// The file descriptors the local cloud holds open now: `this_process` (the gateway
    /// and the DRS simulator run in the test process, so theirs plus the test's own),
    /// `limit` (this process's RLIMIT_NOFILE), `moto`, and `probe_listeners` (the
    /// simulator's listening sockets, part of `this_process`).
    pub fn open_descriptors(&self) -> drplan_local::OpenDescriptors {
        self.cloud
            .open_descriptors()
            .unwrap_or_else(|e| panic!("reading the local cloud's descriptors: {e}"))
    }

    /// Stores `plan` in the bucket as `plans/NAME.yaml` (JSON is YAML: it reads the same),
    /// with the examples' drill subnet and target groups replaced by the
    /// seeded ones ([`Cloud::with_seeded_resources`]; other values are kept as they are).
    pub async fn store_plan_value(&self, name: &str, plan: &Value) {
        let plan = self.with_seeded_resources(plan.clone());
        stack::put_plan(
            self.cloud.endpoint_url(),
            self.cloud.region(),
            name,
            plan.to_string(),
        )
        .await
        .expect("the plan is stored");
    }

    /// The plan with the examples' drill subnet and target group ARNs (which exist in
    /// no local cloud) replaced by the seeded drill subnet and security group, and the
    /// seeded target groups of the same names.
    pub fn with_seeded_resources(&self, mut plan: Value) -> Value {
        if plan["drill"]["subnet_id"] == EXAMPLE_DRILL_SUBNET {
            plan["drill"]["subnet_id"] = json!(self.seeded.drill_subnet_id);
            plan["drill"]["security_group_ids"] = json!([self.seeded.drill_security_group_id]);
        }
        self.seeded.use_seeded_target_groups(&mut plan);
        plan
    }

    /// The seeded target group's ARN, by name.
    pub fn target_group_arn(&self, name: &str) -> String {
        self.seeded
            .load_balancers
            .iter()
            .flat_map(|lb| lb.target_groups.iter())
            .find(|tg| tg.name == name)
            .unwrap_or_else(|| panic!("no seeded target group {name}"))
            .arn
            .clone()
    }

    /// One StartExecution with fast timing; returns the execution's name and ARN.
    pub async fn start(&self, plan: Value, mode: &str) -> (String, String) {
        self.start_with(json!({"plan": plan, "mode": mode, "timing": fast_timing()}))
            .await
    }

    /// One StartExecution with this execution input; returns the execution's name and ARN.
    pub async fn start_with(&self, mut input: Value) -> (String, String) {
        if input["plan"].is_object() {
            input["plan"] = self.with_seeded_resources(input["plan"].take());
        }
        static NEXT_RUN: AtomicU32 = AtomicU32::new(1);
        let run = NEXT_RUN.fetch_add(1, Ordering::Relaxed);
        let mode = input["mode"].as_str().unwrap_or("run");
        let name = format!("test-{mode}-{}-{run}", std::process::id());
        let arn = self
            .sfn
            .start_execution()
            .state_machine_arn(&self.stack.recovery_state_machine_arn)
            .name(&name)
            .input(input.to_string())
            .send()
            .await
            .expect("StartExecution")
            .execution_arn()
            .to_owned();
        (name, arn)
    }

    /// The ARN of this cloud's recovery execution named `name`.
    pub fn execution_arn(&self, name: &str) -> String {
        format!(
            "{}:{name}",
            self.stack
                .recovery_state_machine_arn
                .replacen(":stateMachine:", ":execution:", 1)
        )
    }

    /// Every event of the execution's history so far, all pages.
    pub async fn history(&self, arn: &str) -> Vec<aws_sdk_sfn::types::HistoryEvent> {
        drplan_aws::history::history(&self.sfn, arn)
            .await
            .expect("GetExecutionHistory")
    }

    /// Waits for the execution to end.
    pub async fn wait(&self, name: String, arn: &str) -> Outcome {
        self.wait_up_to(name, arn, EXECUTION_TIMEOUT).await
    }

    /// Waits for the execution to end, for at most `timeout`.
    pub async fn wait_up_to(&self, name: String, arn: &str, timeout: Duration) -> Outcome {
        let started = Instant::now();
        loop {
            let described = self
                .sfn
                .describe_execution()
                .execution_arn(arn)
                .send()
                .await
                .expect("DescribeExecution");
            if described.status() != &ExecutionStatus::Running {
                return Outcome {
                    name,
                    status: described.status().clone(),
                    error: described.error().map(str::to_owned),
                    cause: described.cause().map(str::to_owned),
                };
            }
            assert!(
                started.elapsed() < timeout,
                "the execution did not end in {timeout:?}; logs in {}",
                self.cloud.log_dir().display()
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Runs the `drplan` CLI against this local cloud, as a user would.
    pub fn drplan(&self, args: &[&str]) -> std::process::Output {
        self.drplan_command(args)
            .env("DRPLAN_BUCKET", &self.stack.bucket)
            .env(
                "DRPLAN_STATE_MACHINE_ARN",
                &self.stack.recovery_state_machine_arn,
            )
            .output()
            .expect("the drplan binary runs")
    }

    /// Runs the drplan CLI as a new user would: told where the cloud is, and nothing
    /// about drplan's stack (no DRPLAN_BUCKET, no DRPLAN_STATE_MACHINE_ARN).
    pub fn drplan_as_new_user(&self, args: &[&str]) -> std::process::Output {
        self.drplan_command(args)
            .env_remove("DRPLAN_BUCKET")
            .env_remove("DRPLAN_STATE_MACHINE_ARN")
            .output()
            .expect("the drplan binary runs")
    }

    fn drplan_command(&self, args: &[&str]) -> std::process::Command {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_drplan"));
        command
            .args(args)
            .env("AWS_ENDPOINT_URL", self.cloud.endpoint_url())
            .env("AWS_REGION", self.cloud.region())
            .env("AWS_DEFAULT_REGION", self.cloud.region())
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test");
        command
    }

    /// Runs `drplan approve|decline ...` until the execution asks for approval.
    pub async fn answer_approval(&self, args: &[&str]) -> String {
        let started = Instant::now();
        loop {
            let output = self.drplan(args);
            if output.status.success() {
                return String::from_utf8_lossy(&output.stdout).into_owned();
            }
            let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
            assert!(
                stderr.contains("not waiting for approval")
                    && started.elapsed() < EXECUTION_TIMEOUT,
                "drplan {args:?}: {stderr}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// The zone's simple records: (name, type) → values, sorted.
    pub async fn records(&self, zone_name: &str) -> BTreeMap<(String, String), Vec<String>> {
        let route53 = aws_sdk_route53::Client::new(
            &stack::sdk_config(self.cloud.endpoint_url(), self.cloud.region()).await,
        );
        let zones = route53
            .list_hosted_zones_by_name()
            .dns_name(zone_name)
            .send()
            .await
            .expect("ListHostedZonesByName");
        let zone = zones
            .hosted_zones()
            .first()
            .expect("the seeded zone")
            .id()
            .to_owned();
        let sets = route53
            .list_resource_record_sets()
            .hosted_zone_id(zone)
            .send()
            .await
            .expect("ListResourceRecordSets");
        sets.resource_record_sets()
            .iter()
            .filter(|s| matches!(s.r#type().as_str(), "A" | "AAAA" | "CNAME"))
            .map(|s| {
                let mut values: Vec<String> = s
                    .resource_records()
                    .iter()
                    .map(|r| r.value().to_owned())
                    .collect();
                values.sort();
                (
                    (s.name().to_owned(), s.r#type().as_str().to_owned()),
                    values,
                )
            })
            .collect()
    }

    /// The notifications published so far, from the SQS queue subscribed to the topic:
    /// (subject, message, attributes).
    pub async fn notifications(&self) -> Vec<(String, String, Value)> {
        let sqs = aws_sdk_sqs::Client::new(
            &stack::sdk_config(self.cloud.endpoint_url(), self.cloud.region()).await,
        );
        let mut found = Vec::new();
        for _ in 0..20 {
            let received = sqs
                .receive_message()
                .queue_url(&self.seeded.queue_url)
                .max_number_of_messages(10)
                .send()
                .await
                .expect("ReceiveMessage");
            if received.messages().is_empty() {
                break;
            }
            for message in received.messages() {
                let envelope: Value =
                    serde_json::from_str(message.body().unwrap_or("{}")).unwrap_or_default();
                found.push((
                    envelope["Subject"].as_str().unwrap_or_default().to_owned(),
                    envelope["Message"].as_str().unwrap_or_default().to_owned(),
                    envelope["MessageAttributes"].clone(),
                ));
            }
        }
        found
    }

    pub async fn report(&self, plan: &str, execution_name: &str) -> Value {
        let key = format!("reports/{plan}/{execution_name}.json");
        let object = self
            .s3
            .get_object()
            .bucket(&self.stack.bucket)
            .key(&key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{key}: {e}"));
        let bytes = object
            .body
            .collect()
            .await
            .expect("report body")
            .into_bytes();
        serde_json::from_slice(&bytes).expect("the report is JSON")
    }

    /// The EC2 instances a run launched, by their drplan:execution tag.
    pub async fn ec2_instances_of(
        &self,
        execution_name: &str,
    ) -> Vec<aws_sdk_ec2::types::Instance> {
        let described = self
            .ec2
            .describe_instances()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("tag:drplan:execution")
                    .values(execution_name)
                    .build(),
            )
            .send()
            .await
            .expect("DescribeInstances");
        described
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .cloned()
            .collect()
    }

    /// The EC2 instances a run launched, by their drplan:execution tag: (tags, state).
    pub async fn instances_of(
        &self,
        execution_name: &str,
    ) -> Vec<(BTreeMap<String, String>, String)> {
        self.ec2_instances_of(execution_name)
            .await
            .iter()
            .map(|i| {
                let tags = i
                    .tags()
                    .iter()
                    .filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned())))
                    .collect();
                (tags, instance_state(i))
            })
            .collect()
    }

    /// Launch jobs by wave tag: (created, ended).
    pub async fn job_times_by_wave(&self) -> BTreeMap<String, (String, String)> {
        let jobs = self
            .drs
            .describe_jobs()
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .expect("DescribeJobs");
        jobs.iter()
            .filter_map(|j| {
                let wave = j.tags()?.get("drplan:wave")?.clone();
                Some((
                    wave,
                    (
                        j.creation_date_time()?.to_owned(),
                        j.end_date_time()?.to_owned(),
                    ),
                ))
            })
            .collect()
    }
}

/// An instance's state name (`running`, `terminated`...).
pub fn instance_state(instance: &aws_sdk_ec2::types::Instance) -> String {
    instance
        .state()
        .and_then(|s| s.name())
        .map(|n| n.as_str().to_owned())
        .unwrap_or_default()
}

pub fn plan_file(path: &str) -> Value {
    let text = std::fs::read_to_string(repo_root().join(path)).expect("plan file");
    drplan_core::parse_document(&text, drplan_core::Format::Yaml).expect("plan YAML")
}

pub fn fleet_file(path: &str) -> String {
    std::fs::read_to_string(repo_root().join(path)).expect("fleet file")
}

/// The largest state input or output of an execution's history: its size in bytes and
/// the state's name.
pub fn largest_payload(history: &[aws_sdk_sfn::types::HistoryEvent]) -> (usize, String) {
    let mut largest = (0usize, String::new());
    for event in history {
        let payloads = [
            event
                .state_entered_event_details()
                .and_then(|d| d.input().map(|i| (d.name(), i))),
            event
                .state_exited_event_details()
                .and_then(|d| d.output().map(|o| (d.name(), o))),
        ];
        for (state, payload) in payloads.into_iter().flatten() {
            if payload.len() > largest.0 {
                largest = (payload.len(), state.to_owned());
            }
        }
    }
    largest
}
