//! Section 1: cold starts. Each function binary, and a Python 3 + boto3 baseline making
//! the same first AWS call, started as a new process under a Lambda Runtime API served
//! here ([`drplan_local::runtime_api`]), one event each, against the local cloud.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use drplan_core::contract::keys;
use drplan_core::contract::{RunContext, WaveRef};
use drplan_local::process::SupervisedChild;
use drplan_local::runtime_api::{RuntimeApi, RuntimeSignal};
use serde_json::{Value, json};

use super::memory::proc_status;
use super::report::median;
use super::runs::{CloudContext, RunResult};
use super::{ACCOUNT, COLD_START_TIMEOUT, REGION, say};

/// The Python baseline: a custom-runtime loop like Lambda's, making one boto3 call.
const PYTHON_HANDLER: &str = include_str!("python_baseline.py");

// ---------------------------------------------------------------------------------------
// Section 1: cold starts

/// One function's cold-start event and the Python baseline's first call.
pub(super) struct ColdCase {
    function: String,
    event: Value,
    event_source: String,
    /// `{"service", "operation", "params"}` for boto3.
    python_call: Value,
}

const TRIGGER_EVENT_FILE: &str = "events/alarm-state-change-unmapped.json";
const TRIGGER_EVENT: &str = include_str!("../../events/alarm-state-change-unmapped.json");

/// The first event of each function from the plan runs, and the first AWS call the
/// function makes with it, which the Python baseline makes too.
pub(super) fn cold_cases(
    functions: &[String],
    runs: &[RunResult],
    ctx: &CloudContext<'_>,
) -> Vec<ColdCase> {
    let mut cases = Vec::new();
    for function in functions {
        let recorded = runs
            .iter()
            .find_map(|run| run.first_events.get(function).map(|event| (run, event)));
        let (event, event_source) = match recorded {
            Some((run, event)) => (event.clone(), format!("first event in {}", run.spec.name)),
            // EventBridge, not the state machine, calls the trigger: its most common event,
            // an alarm state change, from the documented samples. No plan maps this alarm,
            // so the trigger reads the stored plans and starts nothing.
            None if function == "trigger" => match serde_json::from_str(TRIGGER_EVENT) {
                Ok(event) => (
                    event,
                    format!("{TRIGGER_EVENT_FILE} (no plan maps the alarm)"),
                ),
                Err(_) => continue,
            },
            None => continue,
        };
        let event = &event;
        let s3_get = |key: Option<String>| {
            key.map(|key| {
                json!({"service": "s3", "operation": "get_object",
                       "params": {"Bucket": ctx.stack.bucket, "Key": key}})
            })
        };
        let run_context = serde_json::from_value::<RunContext>(event["run"].clone()).ok();
        let wave = serde_json::from_value::<WaveRef>(event["wave"].clone()).ok();
        let python_call = match function.as_str() {
            "discover" => Some(
                json!({"service": "drs", "operation": "describe_source_servers",
                                      "params": {"maxResults": 200}}),
            ),
            "cleanup" => Some(json!({"service": "drs", "operation": "describe_jobs",
                                     "params": {"filters": {}}})),
            "notify" => Some(json!({"service": "sns", "operation": "publish",
                                    "params": {"TopicArn": ctx.topic_arn,
                                               "Subject": "drplan bench",
                                               "Message": "cold start baseline"}})),
            "launch-wave" | "wait-wave" => {
                s3_get(run_context.map(|r| r.records().resolved_plan().key().to_owned()))
            }
            "tag-instances" => s3_get(
                run_context
                    .zip(wave)
                    .map(|(r, w)| r.records().wave(&w).launch().key().to_owned()),
            ),
            "health-check" | "dns-cutover" => {
                s3_get(run_context.map(|r| r.records().plan_document().key().to_owned()))
            }
            "trigger" => Some(json!({"service": "s3", "operation": "list_objects_v2",
                                     "params": {"Bucket": ctx.stack.bucket, "Prefix": keys::PLANS_PREFIX}})),
            "report" => {
                let first_wave =
                    serde_json::from_value::<WaveRef>(event["layers"][0][0].clone()).ok();
                s3_get(
                    run_context
                        .zip(first_wave)
                        .map(|(r, w)| r.records().wave(&w).launch().key().to_owned()),
                )
            }
            _ => None,
        };
        let Some(python_call) = python_call else {
            continue;
        };
        cases.push(ColdCase {
            function: function.clone(),
            event: event.clone(),
            event_source,
            python_call,
        });
    }
    cases
}

#[derive(Debug, Clone)]
pub(super) struct ColdSample {
    pub(super) ready_ms: f64,
    pub(super) invoke_ms: f64,
    pub(super) ok: bool,
    pub(super) detail: String,
    pub(super) first_call: String,
    pub(super) hwm_kib: Option<u64>,
}

/// Medians of one language's cold starts of one function.
pub(super) struct ColdStats {
    pub(super) ready: f64,
    pub(super) invoke: f64,
    pub(super) total: f64,
    /// "ok", or the first error's type.
    pub(super) outcome: String,
    pub(super) first_call: String,
    pub(super) hwm_kib: Option<u64>,
}

impl ColdStats {
    pub(super) fn of(samples: &Result<Vec<ColdSample>, String>) -> Option<Self> {
        let samples = samples.as_ref().ok()?;
        let mut ready: Vec<f64> = samples.iter().map(|s| s.ready_ms).collect();
        let mut invoke: Vec<f64> = samples.iter().map(|s| s.invoke_ms).collect();
        let mut total: Vec<f64> = samples.iter().map(|s| s.ready_ms + s.invoke_ms).collect();
        Some(Self {
            ready: median(&mut ready)?,
            invoke: median(&mut invoke)?,
            total: median(&mut total)?,
            outcome: samples
                .iter()
                .find(|s| !s.ok)
                .map_or_else(|| "ok".to_owned(), |s| s.detail.clone()),
            first_call: samples
                .first()
                .map(|s| s.first_call.clone())
                .unwrap_or_default(),
            hwm_kib: samples.iter().filter_map(|s| s.hwm_kib).max(),
        })
    }
}

#[derive(Debug)]
pub(super) struct ColdResult {
    pub(super) function: String,
    pub(super) event_source: String,
    pub(super) event_bytes: usize,
    pub(super) rust: Result<Vec<ColdSample>, String>,
    pub(super) python: Result<Vec<ColdSample>, String>,
}

#[derive(Debug, Default)]
pub(super) struct ColdStarts {
    pub(super) runs: usize,
    pub(super) python: String,
    pub(super) results: Vec<ColdResult>,
}

pub(super) async fn cold_starts(
    ctx: &CloudContext<'_>,
    repo_root: &Path,
    cases: &[ColdCase],
    runs: usize,
) -> anyhow::Result<ColdStarts> {
    let work = std::env::temp_dir().join(format!("drplan-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let outcome = cold_starts_in(ctx, repo_root, cases, runs, &work).await;
    let _ = std::fs::remove_dir_all(&work);
    outcome
}

async fn cold_starts_in(
    ctx: &CloudContext<'_>,
    repo_root: &Path,
    cases: &[ColdCase],
    runs: usize,
    work: &Path,
) -> anyhow::Result<ColdStarts> {
    let handler = work.join("handler.py");
    std::fs::write(&handler, PYTHON_HANDLER).context("writing the Python handler")?;
    let python = repo_root.join(".venv/bin/python3");
    let python_version = std::process::Command::new(&python)
        .args(["-c", "import sys, boto3; print(f'Python {sys.version.split()[0]}, boto3 {boto3.__version__}')"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    let mut results = Vec::new();
    for case in cases {
        say(&format!(
            "cold starts of {}: 1 warm-up + {runs} measured, Rust and Python alternating",
            case.function
        ));
        let binary = repo_root.join("target/release").join(&case.function);
        let rust_program = Program {
            program: binary.clone(),
            args: vec![],
            extra_env: vec![],
        };
        let python_program = Program {
            program: python.clone(),
            args: vec![handler.display().to_string()],
            extra_env: vec![("BENCH_CALL".into(), case.python_call.to_string())],
        };
        let mut rust = Ok(Vec::new());
        let mut py = if python_version.is_some() {
            Ok(Vec::new())
        } else {
            Err(format!(
                "{} with boto3 is not installed (scripts/install-local-cloud)",
                python.display()
            ))
        };
        for attempt in 0..=runs {
            let warm_up = attempt == 0;
            if let Ok(samples) = &mut rust {
                match cold_start(
                    ctx,
                    &case.function,
                    &rust_program,
                    &case.event,
                    work,
                    "aws-sdk-rust",
                )
                .await
                {
                    Ok(sample) if !warm_up => samples.push(sample),
                    Ok(_) => {}
                    Err(e) => rust = Err(format!("{e:#}")),
                }
            }
            if let Ok(samples) = &mut py {
                match cold_start(
                    ctx,
                    &case.function,
                    &python_program,
                    &case.event,
                    work,
                    "boto3",
                )
                .await
                {
                    Ok(sample) if !warm_up => samples.push(sample),
                    Ok(_) => {}
                    Err(e) => py = Err(format!("{e:#}")),
                }
            }
        }
        results.push(ColdResult {
            function: case.function.clone(),
            event_source: case.event_source.clone(),
            event_bytes: case.event.to_string().len(),
            rust,
            python: py,
        });
    }
    Ok(ColdStarts {
        runs,
        python: python_version.unwrap_or_else(|| "not available".into()),
        results,
    })
}

struct Program {
    program: PathBuf,
    args: Vec<String>,
    extra_env: Vec<(String, String)>,
}

/// One cold start: a new process under a new Runtime API, one event, its answer.
async fn cold_start(
    ctx: &CloudContext<'_>,
    function: &str,
    program: &Program,
    event: &Value,
    work: &Path,
    caller: &str,
) -> anyhow::Result<ColdSample> {
    let function_arn = format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function}");
    let mut api = RuntimeApi::serve(&function_arn, event.to_string().into_bytes())
        .await
        .context("serving the Runtime API")?;
    ctx.reset_gateway_requests().await?;

    let mut command = tokio::process::Command::new(&program.program);
    command.args(&program.args).env_clear().current_dir(work);
    for (key, value) in function_environment(ctx, function, &api.addr().to_string())
        .into_iter()
        .chain(program.extra_env.iter().cloned())
    {
        command.env(key, value);
    }
    let log = work.join(format!("{function}.log"));
    let spawned = Instant::now();
    let child = SupervisedChild::spawn(function, command, &log)?;
    let pid = child.pid();
    let outcome: anyhow::Result<ColdSample> = async {
        let mut ready = None;
        let mut handed = None;
        let deadline = tokio::time::Instant::now() + COLD_START_TIMEOUT * 2;
        loop {
            let signal = tokio::time::timeout_at(deadline, api.signal())
                .await
                .map_err(|_| {
                    anyhow::anyhow!(
                        "no answer in {:?}; log: {}",
                        COLD_START_TIMEOUT * 2,
                        tail(&log)
                    )
                })?
                .context("the Runtime API stopped")?;
            match signal {
                RuntimeSignal::Next(at) => {
                    ready.get_or_insert(at);
                }
                RuntimeSignal::Handed(at) => handed = Some(at),
                RuntimeSignal::InitError(body) => bail!("init error: {body}"),
                RuntimeSignal::Answered { at, error, body } => {
                    let (Some(ready), Some(handed)) = (ready, handed) else {
                        bail!("an answer before an event");
                    };
                    let detail = if error {
                        serde_json::from_str::<Value>(&body)
                            .ok()
                            .and_then(|v| v["errorType"].as_str().map(str::to_owned))
                            .unwrap_or(body)
                    } else {
                        "ok".to_owned()
                    };
                    return Ok(ColdSample {
                        ready_ms: (ready - spawned).as_secs_f64() * 1000.0,
                        invoke_ms: (at - handed).as_secs_f64() * 1000.0,
                        ok: !error,
                        detail,
                        first_call: String::new(),
                        hwm_kib: proc_status(pid).map(|s| s.hwm_kib),
                    });
                }
            }
        }
    }
    .await;
    child.stop().await;
    let mut sample = outcome?;
    let requests = ctx.gateway_requests().await?;
    sample.first_call = requests["recent"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["caller"] == caller)
        .map(|r| {
            format!(
                "{} {}",
                r["service"].as_str().unwrap_or("?"),
                r["operation"].as_str().unwrap_or("?")
            )
        })
        .unwrap_or_else(|| "none".into());
    Ok(sample)
}

/// The environment Lambda gives a function, plus what the local cloud gives drplan's
/// (as `cargo lambda watch` does in the local cloud).
fn function_environment(
    ctx: &CloudContext<'_>,
    function: &str,
    api: &str,
) -> Vec<(String, String)> {
    let region = ctx.cloud.region();
    [
        ("AWS_LAMBDA_RUNTIME_API", api.to_owned()),
        ("AWS_LAMBDA_FUNCTION_NAME", function.to_owned()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".to_owned()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/{function}"),
        ),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "bench".to_owned()),
        ("AWS_LAMBDA_LOG_FORMAT", "JSON".to_owned()),
        ("AWS_LAMBDA_LOG_LEVEL", "INFO".to_owned()),
        ("_HANDLER", "bootstrap".to_owned()),
        ("LANG", "C.UTF-8".to_owned()),
        ("TZ", ":UTC".to_owned()),
        ("AWS_ENDPOINT_URL", ctx.cloud.endpoint_url().to_owned()),
        ("AWS_REGION", region.to_owned()),
        ("AWS_DEFAULT_REGION", region.to_owned()),
        ("AWS_ACCESS_KEY_ID", "drplanlocal".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "drplanlocal".to_owned()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
        ("NO_PROXY", "127.0.0.1,localhost".to_owned()),
        ("DRPLAN_BUCKET", ctx.stack.bucket.clone()),
        ("DRPLAN_TOPIC_ARN", ctx.topic_arn.clone()),
        ("DRPLAN_PROBE_LOOPBACK", "1".to_owned()),
        // The trigger's: the account whose events act, the state machines it starts.
        ("DRPLAN_ACCOUNT_ID", ACCOUNT.to_owned()),
        (
            "DRPLAN_STATE_MACHINE_ARN",
            ctx.stack.recovery_state_machine_arn.clone(),
        ),
        (
            "DRPLAN_ESCALATION_STATE_MACHINE_ARN",
            ctx.stack.recovery_state_machine_arn.replace(
                drplan_local::stack::RECOVERY_STATE_MACHINE,
                drplan_local::stack::ESCALATION_STATE_MACHINE,
            ),
        ),
        ("AWS_S3_FORCE_PATH_STYLE", "true".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(5)..].join(" | ")
}
