//! `drplan resume`: one StartExecution whose input continues an ended run (its input,
//! with `"resume"` naming it and the waves a person skips). Discover adopts what the
//! ended run got through; see docs/contract.md.

use anyhow::{Context, bail};
use clap::Args;
use drplan_core::Mode;

use super::start::{accept_or_follow, default_execution_name, start_execution};
use super::{Target, aws_config, execution_arn, state_machine_arn};

#[derive(Args)]
pub struct ResumeArgs {
    /// The failed, timed out or stopped execution to continue (ARN, or name)
    execution: String,
    /// Leave this wave out (and the waves that need it); repeat for more, each with a --reason
    #[arg(long = "skip-wave", value_name = "WAVE")]
    skip_waves: Vec<String>,
    /// Why the wave is left out (one --reason per --skip-wave, in the same order)
    #[arg(long = "reason", value_name = "TEXT")]
    reasons: Vec<String>,
    /// Who decides the skips (recorded in the report) [default: $USER]
    #[arg(long)]
    by: Option<String>,
    /// Execution name [default: PLAN-MODE-TIME]
    #[arg(long)]
    name: Option<String>,
    /// Follow the execution wave by wave until it ends
    #[arg(long)]
    wait: bool,
    #[command(flatten)]
    target: Target,
}

/// The input of the resumed run: the ended run's input (the same plan, mode, timing and
/// quotas), naming the run it continues and the waves skipped.
pub fn resume_input(
    earlier_input: &str,
    earlier_arn: &str,
    skips: &[(String, String)],
    by: &str,
) -> anyhow::Result<serde_json::Value> {
    let mut input: serde_json::Value =
        serde_json::from_str(earlier_input).context("the ended run's input is not JSON")?;
    let Some(fields) = input.as_object_mut() else {
        bail!("the ended run's input is not a JSON object");
    };
    // A resumed run runs the waves of the run it continues (discover keeps the ones that
    // run left out), and continues this run, not the one that one continued.
    fields.remove("only_waves");
    fields.remove("skip_waves");
    fields.insert("resume".into(), earlier_arn.into());
    if !skips.is_empty() {
        let skips: Vec<serde_json::Value> = skips
            .iter()
            .map(|(wave, reason)| serde_json::json!({"wave": wave, "reason": reason, "by": by}))
            .collect();
        fields.insert("skip_waves".into(), skips.into());
    }
    drplan_core::ExecutionInput::from_value(&input).map_err(|issues| {
        let lines: Vec<String> = issues
            .iter()
            .map(|i| format!("{}: {}", i.path, i.message))
            .collect();
        anyhow::anyhow!(
            "the resumed run's input is not valid:\n{}",
            lines.join("\n")
        )
    })?;
    Ok(input)
}

pub async fn resume(args: &ResumeArgs) -> anyhow::Result<bool> {
    if args.skip_waves.len() != args.reasons.len() {
        bail!(
            "--skip-wave needs one --reason each ({} waves, {} reasons): the report says why each wave was left out",
            args.skip_waves.len(),
            args.reasons.len()
        );
    }
    let client = aws_sdk_sfn::Client::new(&aws_config().await);
    let earlier = execution_arn(&client, &args.target, &args.execution).await?;
    let described = client
        .describe_execution()
        .execution_arn(&earlier)
        .send()
        .await
        .with_context(|| format!("DescribeExecution {earlier}"))?;
    let status = described.status().as_str();
    if !drplan_core::resume::RESUMABLE_STATUSES.contains(&status) {
        bail!(
            "{} is {status}: only a failed, timed out or stopped run can be resumed",
            described.name().unwrap_or(&args.execution)
        );
    }
    let by = args
        .by
        .clone()
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "unknown".to_owned());
    let skips: Vec<(String, String)> = args
        .skip_waves
        .iter()
        .cloned()
        .zip(args.reasons.iter().cloned())
        .collect();
    let input = resume_input(described.input().unwrap_or("{}"), &earlier, &skips, &by)?;
    let mode = drplan_core::report::mode_of(&input).unwrap_or(Mode::Recovery);
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| default_execution_name(&input["plan"], mode));
    if let Some(problem) = drplan_core::contract::execution_name_problem(&name) {
        bail!("--name: {problem}");
    }
    let machine = state_machine_arn(&client, &args.target).await?;
    let arn = start_execution(&client, &machine, &name, &input).await?;
    println!("{arn}");
    accept_or_follow(&client, &arn, args.wait).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resumed_run_keeps_the_ended_runs_input_and_names_it() {
        let earlier = r#"{"plan": "shop", "mode": "recovery", "timing": {"poll_initial_seconds": 2}, "only_waves": ["db"]}"#;
        let skips = [("web".to_owned(), "vendor restores it".to_owned())];
        let input = resume_input(
            earlier,
            "arn:aws:states:r:1:execution:m:run-1",
            &skips,
            "ana",
        )
        .unwrap();
        assert_eq!(input["plan"], "shop");
        assert_eq!(input["timing"]["poll_initial_seconds"], 2);
        assert_eq!(input["resume"], "arn:aws:states:r:1:execution:m:run-1");
        assert_eq!(
            input["skip_waves"],
            serde_json::json!([{"wave": "web", "reason": "vendor restores it", "by": "ana"}])
        );
        assert!(input.get("only_waves").is_none());
        let blank = [("web".to_owned(), " ".to_owned())];
        let error = resume_input(earlier, "arn:x", &blank, "ana").unwrap_err();
        assert!(
            error.to_string().contains("skip_waves[0].reason"),
            "{error}"
        );
    }
}
