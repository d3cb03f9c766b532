//! Sections 4 and 5: one plan run on a local cloud, and its numbers (wall time against
//! the ideal, where the time went, transitions, invocations, API calls and their cost).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use aws_sdk_sfn::types::HistoryEvent;
use drplan_aws::history::{self, StateTime};
use drplan_local::upstream::{AwsClient, HttpClient};
use drplan_local::{LocalCloud, LocalCloudOptions, gateway, seed, stack};
use serde_json::{Value, json};

use super::plans::PlanSpec;
use super::{
    ACCOUNT, EXECUTION_TIMEOUT, LAMBDA_ARM64_PER_GB_SECOND, LAMBDA_PER_REQUEST, OVERHEAD_FRACTION,
    OVERHEAD_PER_WAVE_SECONDS, SFN_STANDARD_PER_TRANSITION, say,
};

pub(super) async fn start_cloud(
    repo_root: &Path,
    time_scale: f64,
    release_functions: bool,
) -> anyhow::Result<LocalCloud> {
    LocalCloud::start(LocalCloudOptions {
        repo_root: Some(repo_root.to_path_buf()),
        time_scale,
        release_functions,
        ..LocalCloudOptions::default()
    })
    .await
    .context("starting the local cloud")
}

/// Invocations timed for the Lambda emulator's relay.
const RELAY_SAMPLES: usize = 51;

/// A cloud with drplan deployed and the fleet seeded.
pub(super) struct CloudContext<'a> {
    pub(super) cloud: &'a LocalCloud,
    pub(super) stack: stack::Stack,
    /// Step Functions straight at moto: the bench's own polling stays out of the
    /// gateway's request tally.
    sfn: aws_sdk_sfn::Client,
    /// The gateway, for its request tally.
    gateway: AwsClient,
    pub(super) topic_arn: String,
}

impl<'a> CloudContext<'a> {
    pub(super) async fn new(
        cloud: &'a LocalCloud,
        repo_root: &Path,
        fleet: &seed::Fleet,
    ) -> anyhow::Result<Self> {
        let endpoint = cloud.endpoint_url();
        let stack = stack::deploy(endpoint, cloud.region(), ACCOUNT, repo_root)
            .await
            .context("deploying drplan into the local cloud")?;
        let seeded = seed::seed(endpoint, fleet)
            .await
            .context("seeding the fleet")?;
        say(&format!(
            "deployed; seeded {} source servers",
            seeded.source_servers_created + seeded.source_servers_updated
        ));
        let config = stack::sdk_config(cloud.moto_url(), cloud.region()).await;
        Ok(Self {
            cloud,
            stack,
            sfn: aws_sdk_sfn::Client::new(&config),
            gateway: AwsClient::new(HttpClient::new(), endpoint, cloud.region()),
            topic_arn: format!(
                "arn:aws:sns:{}:{ACCOUNT}:drplan-notifications",
                cloud.region()
            ),
        })
    }

    /// The requests through the gateway since the tally was last reset.
    pub(super) async fn gateway_requests(&self) -> anyhow::Result<Value> {
        gateway::request_tally(&self.gateway)
            .await
            .context("the gateway's request tally")
    }

    pub(super) async fn reset_gateway_requests(&self) -> anyhow::Result<()> {
        gateway::reset_request_tally(&self.gateway)
            .await
            .context("resetting the gateway's request tally")
    }

    /// The Lambda emulator's relay per invocation (`cargo lambda watch` handing the event
    /// to the function's runtime and its answer back), in ms: the median of
    /// [`RELAY_SAMPLES`] invocations through the gateway of the trigger with an event it
    /// rejects without an AWS call, so all but microseconds of each is the relay. On AWS
    /// a function's billed duration starts once its runtime has the event, so drplan's
    /// own time leaves this out. Measured one at a time on an idle cloud, where the runs
    /// had two asynchronous invocations at once beside busy functions: if anything, it
    /// is less than the relay during a run, and drplan's own time an overestimate.
    pub(super) async fn measure_relay(&self) -> anyhow::Result<f64> {
        const WARM_UP: usize = 3;
        let probe = json!({
            "source": "drplan.bench",
            "detail-type": "drplan bench relay probe",
            "account": ACCOUNT,
            "region": self.cloud.region(),
            "detail": {}
        })
        .to_string();
        for sample in 0..WARM_UP + RELAY_SAMPLES {
            if sample == WARM_UP {
                self.reset_gateway_requests().await?;
            }
            let answer =
                gateway::invoke_through(&self.gateway, "trigger", probe.clone().into_bytes())
                    .await
                    .context("invoking the trigger with the relay probe")?;
            let outcome: Value = serde_json::from_slice(&answer.body).unwrap_or_default();
            if outcome["outcome"] != "rejected" {
                bail!(
                    "the relay probe was not rejected by the trigger ({}): {}",
                    answer.status,
                    answer.body_text()
                );
            }
        }
        let requests = self.gateway_requests().await?;
        let calls: u64 = entries(&requests, "tallies")
            .filter(|tally| tally["caller"] == "aws-sdk-rust")
            .filter_map(|tally| tally["count"].as_u64())
            .sum();
        if calls > 0 {
            bail!("the relay probe made {calls} AWS calls: it must make none");
        }
        let mut millis: Vec<f64> = entries(&requests, "recent")
            .filter(|record| record["operation"] == "Invoke trigger")
            .filter_map(|record| record["millis"].as_f64())
            .collect();
        if millis.len() != RELAY_SAMPLES {
            bail!(
                "the gateway timed {} of the {RELAY_SAMPLES} relay probes",
                millis.len()
            );
        }
        millis.sort_by(f64::total_cmp);
        let median = millis[RELAY_SAMPLES / 2];
        say(&format!(
            "  the Lambda emulator's relay: {median:.2} ms an invocation (median of {RELAY_SAMPLES}; {:.2}–{:.2} ms)",
            millis[0],
            millis[RELAY_SAMPLES - 1]
        ));
        Ok(median)
    }

    pub(super) async fn run_plan(&self, spec: &PlanSpec) -> anyhow::Result<RunResult> {
        let name = format!("bench-{}-{}-{}", spec.name, spec.mode, std::process::id());
        let input = json!({"plan": spec.plan(), "mode": spec.mode, "timing": spec.timing});
        say(&format!("running {} ({})", spec.label, spec.timing_label));
        self.reset_gateway_requests().await?;
        // Ten times the ideal (at least five minutes): a hung execution is stopped and
        // reported, the other measurements still run.
        let timeout =
            Duration::from_secs_f64((spec.ideal_seconds * 10.0).max(300.0)).min(EXECUTION_TIMEOUT);
        let mut stopped = false;
        let clock = Instant::now();
        let arn = self
            .sfn
            .start_execution()
            .state_machine_arn(&self.stack.recovery_state_machine_arn)
            .name(&name)
            .input(input.to_string())
            .send()
            .await
            .context("StartExecution")?
            .execution_arn()
            .to_owned();
        let described = loop {
            let described = self
                .sfn
                .describe_execution()
                .execution_arn(&arn)
                .send()
                .await
                .context("DescribeExecution")?;
            if described.status() != &aws_sdk_sfn::types::ExecutionStatus::Running {
                break described;
            }
            if clock.elapsed() > timeout && !stopped {
                say(&format!(
                    "{name} is still running after {timeout:?}: stopping it (StopExecution); it is reported as it ended"
                ));
                self.sfn
                    .stop_execution()
                    .execution_arn(&arn)
                    .error(drplan_core::contract::ErrorName::BenchTimeout.as_str())
                    .cause("drplan bench: no end after ten times the ideal")
                    .send()
                    .await
                    .context("StopExecution")?;
                stopped = true;
            } else if clock.elapsed() > timeout + Duration::from_secs(60) {
                bail!("{name} did not stop after StopExecution");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let polled = clock.elapsed().as_secs_f64();
        let wall_seconds = match described.stop_date() {
            Some(stop) => {
                let start = described.start_date();
                (stop.as_secs_f64() - start.as_secs_f64()).max(0.0)
            }
            None => polled,
        };
        let status = described.status().as_str().to_owned();
        if status != "SUCCEEDED" {
            say(&format!(
                "{name} ended {status}: {} {}; logs in {}",
                described.error().unwrap_or_default(),
                described.cause().unwrap_or_default(),
                self.cloud.log_dir().display()
            ));
        }
        let requests = self.gateway_requests().await?;
        let events = history::history(&self.sfn, &arn)
            .await
            .with_context(|| format!("the history of {name}"))?;
        let result = RunResult::new(spec, name, status, wall_seconds, &requests, &events);
        say(&format!(
            "  {}: {:.1} s (ideal {:.1} s), {} state transitions, {} Lambda invocations, {} AWS API calls by the functions",
            result.status,
            result.wall_seconds,
            spec.ideal_seconds,
            result.transitions,
            result.lambda_invocations(),
            result.api_calls_total()
        ));
        Ok(result)
    }
}

/// The entries of the gateway tally's list `key` (`tallies`, `recent`); none if absent.
fn entries<'a>(tally: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
    tally[key].as_array().into_iter().flatten()
}

#[derive(Debug)]
pub(super) struct RunResult {
    pub(super) spec: PlanSpec,
    pub(super) execution: String,
    pub(super) status: String,
    pub(super) wall_seconds: f64,
    pub(super) transitions: u64,
    pub(super) history_events: usize,
    /// Lambda invocations (Step Functions → the gateway): function → (count, billed ms).
    pub(super) invocations: BTreeMap<String, (u64, u64)>,
    /// The functions' AWS API calls: (service, operation) → count.
    pub(super) api_calls: BTreeMap<(String, String), u64>,
    /// Their summed latencies at the gateway (the local cloud's answer time), in ms.
    pub(super) api_millis: BTreeMap<(String, String), f64>,
    /// Time in each state of the execution history, by state name.
    pub(super) states: BTreeMap<String, StateTime>,
    /// The first event each function received in this execution.
    pub(super) first_events: BTreeMap<String, Value>,
    /// The Lambda emulator's relay per invocation on this run's cloud, in ms
    /// ([`CloudContext::measure_relay`]), once measured.
    pub(super) relay_millis: Option<f64>,
}

impl RunResult {
    fn new(
        spec: &PlanSpec,
        execution: String,
        status: String,
        wall_seconds: f64,
        requests: &Value,
        events: &[HistoryEvent],
    ) -> Self {
        let mut invocations: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        let mut api_calls = BTreeMap::new();
        let mut api_millis = BTreeMap::new();
        for tally in entries(requests, "tallies") {
            let service = tally["service"].as_str().unwrap_or_default();
            let operation = tally["operation"].as_str().unwrap_or_default();
            let count = tally["count"].as_u64().unwrap_or(0);
            if service == "lambda"
                && let Some(function) = operation.strip_prefix("Invoke ")
            {
                let entry = invocations.entry(function.to_owned()).or_default();
                entry.0 += count;
                entry.1 += tally["billed_millis"].as_u64().unwrap_or(0);
            } else if tally["caller"] == "aws-sdk-rust" {
                let key = (service.to_owned(), operation.to_owned());
                *api_millis.entry(key.clone()).or_default() +=
                    tally["total_millis"].as_f64().unwrap_or(0.0);
                *api_calls.entry(key).or_default() += count;
            }
        }
        Self {
            spec: spec.clone(),
            execution,
            status,
            wall_seconds,
            transitions: history::transitions(events),
            history_events: events.len(),
            invocations,
            api_calls,
            api_millis,
            states: history::state_times(events),
            first_events: history::first_lambda_inputs(events),
            relay_millis: None,
        }
    }

    pub(super) fn lambda_invocations(&self) -> u64 {
        self.invocations.values().map(|(count, _)| count).sum()
    }

    pub(super) fn billed_millis(&self) -> u64 {
        self.invocations.values().map(|(_, ms)| ms).sum()
    }

    pub(super) fn api_calls_total(&self) -> u64 {
        self.api_calls.values().sum()
    }

    pub(super) fn drs_calls(&self) -> u64 {
        self.api_calls
            .iter()
            .filter(|((service, _), _)| service == "drs")
            .map(|(_, count)| count)
            .sum()
    }

    pub(super) fn other_calls(&self) -> u64 {
        self.api_calls_total() - self.drs_calls()
    }

    pub(super) fn waves(&self) -> usize {
        self.spec.waves.len()
    }

    pub(super) fn overhead(&self) -> f64 {
        self.wall_seconds - self.spec.ideal_seconds
    }

    pub(super) fn overhead_allowed(&self) -> f64 {
        OVERHEAD_FRACTION * self.spec.ideal_seconds
            + OVERHEAD_PER_WAVE_SECONDS * self.spec.critical_waves as f64
    }

    /// Where the wall time went: each state's time from the execution history, the part
    /// of a Task state its function took (the gateway's latency of the invoke), and the
    /// functions' AWS calls by the local cloud's answer time.
    pub(super) fn render_time_breakdown(&self, out: &mut String) {
        let _ = writeln!(out, "### Where the time goes: {}\n", self.spec.label);
        let parallel = self.spec.critical_waves < self.waves();
        let _ = writeln!(
            out,
            "Time in state = Σ exit − Σ entry timestamps of the state in the execution history \
             (moto's clock), over all its entries. Function = the gateway's latency of the \
             Lambda invokes (the function's run under `cargo lambda watch`), shared among the \
             states that invoke the same function by their entries; the rest of a Task state's \
             time is moto's interpreter scheduling the task and calling the gateway, or, in a task \
             that waits for its token, the wait. Map states \
             contain the states of their iterations and are left out.{}\n",
            if parallel {
                " Waves of this DAG run in parallel, so the states' times overlap and add up to \
                 more than the wall time."
            } else {
                ""
            }
        );
        let _ = writeln!(
            out,
            "| state | kind | entries | s in state | % of wall | ms per entry | function | function s | rest s |"
        );
        let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---|---:|---:|");
        let mut leaves: Vec<(&String, &StateTime)> = self
            .states
            .iter()
            .filter(|(_, t)| t.kind != "Map" && t.kind != "Parallel")
            .collect();
        leaves.sort_by(|a, b| b.1.seconds.total_cmp(&a.1.seconds));
        // Entries per function across states, to share its gateway time among them.
        let mut entries_of: BTreeMap<&str, u64> = BTreeMap::new();
        for (_, time) in &leaves {
            if let Some(function) = &time.function {
                *entries_of.entry(function.as_str()).or_default() += time.entries;
            }
        }
        let (mut in_states, mut in_functions, mut in_waits) = (0.0, 0.0, 0.0);
        for (name, time) in &leaves {
            in_states += time.seconds;
            let function_seconds = time.function.as_deref().and_then(|function| {
                let (_, millis) = self.invocations.get(function)?;
                let share = time.entries as f64 / (*entries_of.get(function)?).max(1) as f64;
                Some(*millis as f64 / 1000.0 * share)
            });
            in_functions += function_seconds.unwrap_or(0.0);
            if time.kind == "Wait" {
                in_waits += time.seconds;
            } else if time.waits_for_token {
                in_waits += time.seconds - function_seconds.unwrap_or(0.0);
            }
            let _ = writeln!(
                out,
                "| {name} | {} | {} | {:.1} | {:.1} | {:.0} | {} | {} | {} |",
                if time.waits_for_token {
                    "Task (waits for its token)"
                } else {
                    time.kind.as_str()
                },
                time.entries,
                time.seconds,
                100.0 * time.seconds / self.wall_seconds.max(f64::EPSILON),
                1000.0 * time.seconds / time.entries.max(1) as f64,
                time.function.as_deref().unwrap_or(""),
                function_seconds.map_or(String::new(), |s| format!("{s:.1}")),
                function_seconds.map_or(String::new(), |s| format!("{:.1}", time.seconds - s)),
            );
        }
        let _ = writeln!(
            out,
            "\nOf {:.1} s wall: {in_states:.1} s in these states ({in_waits:.1} s waiting: Wait \
             states and task-token waits; {in_functions:.1} s inside the functions; {:.1} s in moto \
             around the tasks){}.\n",
            self.wall_seconds,
            in_states - in_waits - in_functions,
            if parallel {
                String::new()
            } else {
                format!(
                    ", {:.1} s between states (moto's transitions)",
                    self.wall_seconds - in_states
                )
            }
        );
        let mut calls: Vec<(&(String, String), &f64)> = self.api_millis.iter().collect();
        calls.sort_by(|a, b| b.1.total_cmp(a.1));
        let _ = writeln!(
            out,
            "The functions' AWS calls that took longest in all, at the local cloud (moto, or the \
             DRS simulator for `drs`), as the gateway timed them:\n"
        );
        let _ = writeln!(out, "| call | count | s in all | ms each |");
        let _ = writeln!(out, "|---|---:|---:|---:|");
        for ((service, operation), millis) in calls.into_iter().take(8) {
            let count = self
                .api_calls
                .get(&(service.clone(), operation.clone()))
                .copied()
                .unwrap_or(0);
            let _ = writeln!(
                out,
                "| {service} {operation} | {count} | {:.1} | {:.1} |",
                millis / 1000.0,
                millis / count.max(1) as f64
            );
        }
        let _ = writeln!(out);
    }

    pub(super) fn cost(&self, memory_mb: f64) -> (f64, f64, f64) {
        let sfn = self.transitions as f64 * SFN_STANDARD_PER_TRANSITION;
        let gb_seconds = self.billed_millis() as f64 / 1000.0 * memory_mb / 1024.0;
        let lambda = gb_seconds * LAMBDA_ARM64_PER_GB_SECOND
            + self.lambda_invocations() as f64 * LAMBDA_PER_REQUEST;
        (sfn, lambda, gb_seconds)
    }
}
