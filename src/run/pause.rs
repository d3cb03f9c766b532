//! `drplan pause` / `drplan continue`: hold a running execution before its next stage of
//! waves, and release it. One API call each, as the rest of drplan:
//!
//! - pause: S3 PutObject of the run's pause request (`runs/PLAN/EXEC/pause.json`,
//!   [`RunRecords::pause_request`]). The state machine looks for it before each stage
//!   and holds there on a task token (WaitWhilePaused); the PAUSED e-mail consumes it.
//! - continue: Step Functions SendTaskSuccess with the hold's task token, read from the
//!   execution's history. A request the run has not reached yet is withdrawn instead
//!   (S3 DeleteObject).
//!
//! The run's deadline does not move while it holds: both commands say when it ends.

use anyhow::{Context, bail};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_sfn::types::ExecutionStatus;
use clap::Args;
use drplan_aws::history::{self, Pause};
use drplan_core::contract::RunRecords;
use drplan_core::contract::notice::PauseRequest;
use jiff::Timestamp;

use super::{Target, aws_config, bucket, execution_arn};

#[derive(Args)]
pub struct PauseArgs {
    /// Execution ARN, or name (with the state machine)
    execution: String,
    /// Why (in the PAUSED e-mail and `drplan status`)
    #[arg(long)]
    reason: Option<String>,
    /// Who pauses [default: $USER]
    #[arg(long)]
    by: Option<String>,
    /// The stack's bucket [default: $DRPLAN_BUCKET, else the deployed stack's output PlansBucketName, else the local cloud's]
    #[arg(long)]
    bucket: Option<String>,
    #[command(flatten)]
    target: Target,
}

#[derive(Args)]
pub struct ContinueArgs {
    /// Execution ARN, or name (with the state machine)
    execution: String,
    /// Who continues (recorded in the run's history) [default: $USER]
    #[arg(long)]
    by: Option<String>,
    /// The stack's bucket, to withdraw a pause not reached yet [default: $DRPLAN_BUCKET, else the deployed stack's output PlansBucketName, else the local cloud's]
    #[arg(long)]
    bucket: Option<String>,
    #[command(flatten)]
    target: Target,
}

/// A running execution: its ARN, history, records and where its bucket is.
struct RunningExecution {
    arn: String,
    events: Vec<aws_sdk_sfn::types::HistoryEvent>,
    records: RunRecords,
    deadline: Option<Timestamp>,
    state_machine_arn: String,
}

/// The execution, refused unless it is running (`doing` names the command's verb).
async fn running(
    sfn: &aws_sdk_sfn::Client,
    target: &Target,
    execution: &str,
    doing: &str,
) -> anyhow::Result<RunningExecution> {
    let arn = execution_arn(sfn, target, execution).await?;
    let described = sfn
        .describe_execution()
        .execution_arn(&arn)
        .send()
        .await
        .context("DescribeExecution")?;
    if described.status() != &ExecutionStatus::Running {
        bail!(
            "the execution is {}, not running: there is nothing to {doing}",
            described.status().as_str()
        );
    }
    let events = history::history(sfn, &arn).await?;
    let discovery = history::progress(&events).discovery;
    // The records are under the plan and execution discover named; before discover
    // has passed, the plan as the input names it.
    let (plan, name) = match &discovery {
        Some(d) => (d.run.plan.clone(), d.run.execution_name.clone()),
        None => {
            let input: serde_json::Value =
                serde_json::from_str(described.input().unwrap_or("{}")).unwrap_or_default();
            let plan = match &input["plan"] {
                serde_json::Value::String(name) => Some(name.clone()),
                inline => inline["name"].as_str().map(str::to_owned),
            };
            let Some(plan) = plan else {
                bail!("the execution's input names no plan: there is nothing to {doing}")
            };
            (plan, described.name().unwrap_or_default().to_owned())
        }
    };
    Ok(RunningExecution {
        arn,
        events,
        records: RunRecords::of(&plan, &name),
        deadline: discovery.and_then(|d| d.run.deadline),
        state_machine_arn: described.state_machine_arn().to_owned(),
    })
}

fn person(by: &Option<String>, flag: &str) -> anyhow::Result<String> {
    match by {
        Some(by) if by.trim().is_empty() => bail!("{flag} is empty; name who it is"),
        Some(by) => Ok(by.trim().to_owned()),
        None => Ok(std::env::var("USER")
            .ok()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| "unknown".to_owned())),
    }
}

/// "The run's time limit keeps counting: it ends at ...".
pub fn deadline_note(deadline: Option<Timestamp>, now: Timestamp) -> String {
    match deadline {
        Some(deadline) => {
            let left = deadline.duration_since(now).as_secs();
            let when = if left > 0 {
                format!("in {}m", left.unsigned_abs().div_ceil(60))
            } else {
                "already passed".to_owned()
            };
            format!(
                "the run's time limit keeps counting while it holds: it ends at {} ({when})",
                deadline.strftime("%Y-%m-%d %H:%M:%S UTC")
            )
        }
        None => "the run's time limit keeps counting while it holds".to_owned(),
    }
}

/// `drplan pause`: writes the run's pause request. Returns what to tell the person.
pub async fn pause(args: &PauseArgs) -> anyhow::Result<String> {
    let by = person(&args.by, "--by")?;
    let reason = match &args.reason {
        Some(reason) if reason.trim().is_empty() => {
            bail!("--reason is empty; say why, or leave it out")
        }
        other => other.as_ref().map(|r| r.trim().to_owned()),
    };
    let config = aws_config().await;
    let sfn = aws_sdk_sfn::Client::new(&config);
    let run = running(&sfn, &args.target, &args.execution, "pause").await?;
    if let Pause::Holding { since, .. } = history::pause(&run.events) {
        bail!(
            "the execution is already paused{}; `drplan continue {}` releases it",
            since
                .map(|s| format!(" (since {})", s.strftime("%H:%M:%S UTC")))
                .unwrap_or_default(),
            args.execution
        );
    }
    if history::every_stage_started(&run.events) {
        bail!("every stage of the execution has started: there is no stage left to hold before");
    }
    let bucket =
        bucket::find_bucket(&config, args.bucket.as_deref(), &run.state_machine_arn).await?;
    let request = PauseRequest {
        by: by.clone(),
        reason,
        at: Timestamp::now(),
    };
    let key = run.records.pause_request();
    aws_sdk_s3::Client::new(&config)
        .put_object()
        .bucket(&bucket)
        .key(key.key())
        .content_type("application/json")
        .body(ByteStream::from(serde_json::to_vec(&request)?))
        .send()
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "S3 PutObject s3://{bucket}/{key}: {}",
                aws_sdk_s3::error::DisplayErrorContext(&e)
            )
        })?;
    Ok(format!(
        "pause requested by {by}: {} holds before its next stage of waves starts (waves already launching finish first); {}. `drplan continue {}` releases it.",
        run.arn,
        deadline_note(run.deadline, Timestamp::now()),
        args.execution
    ))
}

/// `drplan continue`: releases a held run, or withdraws a pause it has not reached.
/// Returns what to tell the person.
pub async fn continue_run(args: &ContinueArgs) -> anyhow::Result<String> {
    let by = person(&args.by, "--by")?;
    let config = aws_config().await;
    let sfn = aws_sdk_sfn::Client::new(&config);
    let run = running(&sfn, &args.target, &args.execution, "continue").await?;
    if let Pause::Holding {
        task_token, layer, ..
    } = history::pause(&run.events)
    {
        let answer =
            serde_json::json!({"continued": true, "by": by, "at": Timestamp::now().to_string()});
        sfn.send_task_success()
            .task_token(task_token)
            .output(answer.to_string())
            .send()
            .await
            .context("SendTaskSuccess")?;
        return Ok(format!(
            "continued by {by}: {} goes on with stage {}",
            run.arn,
            layer + 1
        ));
    }
    let bucket =
        bucket::find_bucket(&config, args.bucket.as_deref(), &run.state_machine_arn).await?;
    let s3 = aws_sdk_s3::Client::new(&config);
    let Some(request) = pause_request(&s3, &bucket, &run.records).await? else {
        bail!(
            "the execution is not paused, and no pause is requested: there is nothing to continue"
        );
    };
    let key = run.records.pause_request();
    s3.delete_object()
        .bucket(&bucket)
        .key(key.key())
        .send()
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "S3 DeleteObject s3://{bucket}/{key}: {}",
                aws_sdk_s3::error::DisplayErrorContext(&e)
            )
        })?;
    Ok(format!(
        "withdrawn: the pause {} asked for at {} had not been reached; {} goes on without holding",
        request.as_ref().map_or("someone", |r| r.by.as_str()),
        request.as_ref().map_or_else(
            || "some point".to_owned(),
            |r| r.at.strftime("%H:%M:%S UTC").to_string()
        ),
        run.arn
    ))
}

/// The run's pause request, if there is one: `Some(None)` for an object that is not
/// drplan's JSON (a hand-written one; the run holds for it all the same).
pub async fn pause_request(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    records: &RunRecords,
) -> anyhow::Result<Option<Option<PauseRequest>>> {
    let key = records.pause_request();
    match s3.get_object().bucket(bucket).key(key.key()).send().await {
        Ok(object) => {
            let bytes = object
                .body
                .collect()
                .await
                .with_context(|| format!("reading s3://{bucket}/{key}"))?
                .into_bytes();
            Ok(Some(PauseRequest::parse(&String::from_utf8_lossy(&bytes))))
        }
        Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_key()) => Ok(None),
        Err(e) => Err(anyhow::anyhow!(
            "S3 GetObject s3://{bucket}/{key}: {}",
            aws_sdk_s3::error::DisplayErrorContext(&e)
        )),
    }
}

/// A pause requested and not reached yet, for `drplan status` (nothing when the bucket
/// cannot be read: status shows what the history says regardless).
pub async fn requested_pause(
    config: &aws_config::SdkConfig,
    given_bucket: Option<&str>,
    state_machine_arn: &str,
    records: &RunRecords,
) -> Option<Option<PauseRequest>> {
    let bucket = bucket::find_bucket(config, given_bucket, state_machine_arn)
        .await
        .ok()?;
    pause_request(&aws_sdk_s3::Client::new(config), &bucket, records)
        .await
        .ok()
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deadline_note_says_when_the_time_limit_ends() {
        let now: Timestamp = "2026-11-28T03:00:00Z".parse().unwrap();
        let later: Timestamp = "2026-11-28T04:29:30Z".parse().unwrap();
        assert_eq!(
            deadline_note(Some(later), now),
            "the run's time limit keeps counting while it holds: it ends at 2026-11-28 04:29:30 UTC (in 90m)"
        );
        assert!(deadline_note(Some(now), later).ends_with("(already passed)"));
        assert!(deadline_note(None, now).contains("keeps counting"));
    }

    #[test]
    fn who_pauses_must_be_named_when_given() {
        assert!(person(&Some("  ".into()), "--by").is_err());
        assert_eq!(person(&Some(" alice ".into()), "--by").unwrap(), "alice");
    }
}
