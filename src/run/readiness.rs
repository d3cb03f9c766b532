//! `drplan readiness [PLAN]`: evaluates stored plans now, as discover does before a run
//! and the readiness function does on its schedule (`drplan_aws::readiness_watch`):
//! servers and replication, launch templates and what their default versions name,
//! free addresses in every subnet a run launches into, the drill's isolation, the DNS
//! cutover's zone or prepared records, and the age of the last successful drill.
//! Exits non-zero when a plan has a finding that blocks a drill or a recovery.
//!
//! `drplan readiness PLAN --failback` asks instead whether the plan's recovered servers
//! can go home now (`drplan_core::failback`): each one's DRS Failback Client connected and
//! in sync, or for EC2 sources reversed replication CONTINUOUS in the origin Region.

use anyhow::Context;
use clap::{Args, ValueEnum};
use drplan_aws::bootstrap::Clients;
use drplan_aws::{FunctionError, drs, plans, readiness_watch};
use drplan_core::Issue;
use drplan_core::contract::{PlanSource, keys};
use drplan_core::evaluation::PlanReadiness;
use drplan_core::failback::{FailbackReadiness, check_failback_readiness};
use serde::Serialize;

use super::{Target, aws_config, bucket, state_machine_arn};

#[derive(Args)]
pub struct ReadinessArgs {
    /// The plan's name [default: every plan stored in the bucket]
    plan: Option<String>,
    #[arg(long, value_enum, default_value_t = ReadinessFormat::Text)]
    format: ReadinessFormat,
    /// Whether the plan's recovered servers can fail back now, instead of a drill's or a
    /// recovery's readiness: each server's recovery instance has its DRS Failback Client
    /// connected and in sync (FAILBACK_READY_FOR_LAUNCH), or for an EC2 source its
    /// reversed replication to the origin Region is CONTINUOUS. Needs PLAN
    #[arg(long, requires = "plan")]
    failback: bool,
    /// The stack's bucket [default: $DRPLAN_BUCKET, else the deployed stack's output PlansBucketName, else the local cloud's]
    #[arg(long)]
    bucket: Option<String>,
    #[command(flatten)]
    target: Target,
}

#[derive(Clone, Copy, ValueEnum)]
enum ReadinessFormat {
    Text,
    Json,
}

/// A stored plan that could not be evaluated because it does not read or validate.
#[derive(Serialize)]
struct Unreadable {
    plan: String,
    problems: Vec<Issue>,
}

#[derive(Serialize)]
struct Evaluated {
    plans: Vec<PlanReadiness>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    unreadable: Vec<Unreadable>,
}

/// The evaluation as text or JSON, and whether every plan is ready for both modes.
pub async fn readiness(args: &ReadinessArgs) -> anyhow::Result<(String, bool)> {
    let config = aws_config().await;
    let bucket = match &args.bucket {
        Some(bucket) => bucket.clone(),
        None => {
            let sfn = aws_sdk_sfn::Client::new(&config);
            let machine = state_machine_arn(&sfn, &args.target)
                .await
                .unwrap_or_default();
            bucket::find_bucket(&config, None, &machine).await?
        }
    };
    let mut clients = Clients::new(&config, bucket.clone());
    // The stack's DrsQuotas, when the person sets it here too.
    clients.quotas = drplan_aws::bootstrap::account_quotas_from_env()?;
    if args.failback
        && let Some(name) = &args.plan
    {
        return failback(&clients, name, args.format).await;
    }
    let names: Vec<String> = match &args.plan {
        Some(plan) => vec![plan.clone()],
        None => clients
            .store
            .list_keys(keys::PLANS_PREFIX)
            .await
            .context("listing the stored plans")?
            .iter()
            .filter_map(|key| keys::plan_name_of(key).map(str::to_owned))
            .collect(),
    };
    anyhow::ensure!(
        !names.is_empty(),
        "no plan is stored in s3://{bucket}/{}: store one as {} (drplan evaluates stored plans)",
        keys::PLANS_PREFIX,
        keys::plan_source("NAME")
    );
    let mut evaluated = Evaluated {
        plans: Vec::new(),
        unreadable: Vec::new(),
    };
    for name in names {
        let plan = match plans::load_plan(&clients.store, &PlanSource::Name(name.clone())).await {
            Ok(plan) => plan,
            Err(FunctionError::InvalidPlan(problems)) => {
                evaluated.unreadable.push(Unreadable {
                    plan: name,
                    problems,
                });
                continue;
            }
            Err(e) => return Err(e).with_context(|| format!("reading plan {name}")),
        };
        let readiness = readiness_watch::evaluate_stored(&clients, &plan)
            .await
            .with_context(|| format!("evaluating plan {name}"))?;
        evaluated.plans.push(readiness);
    }
    let ready = evaluated.unreadable.is_empty() && evaluated.plans.iter().all(PlanReadiness::ready);
    let text = match args.format {
        ReadinessFormat::Json => format!("{}\n", serde_json::to_string_pretty(&evaluated)?),
        ReadinessFormat::Text => {
            let mut text = String::new();
            for plan in &evaluated.plans {
                text.push_str(&plan.to_text());
            }
            for plan in &evaluated.unreadable {
                text.push_str(&format!("plan {}: does not validate\n", plan.plan));
                for problem in &plan.problems {
                    text.push_str(&format!("  {}: {}\n", problem.path, problem.message));
                }
            }
            text
        }
    };
    Ok((text, ready))
}

/// `--failback`: the plan's failback readiness, as text or JSON, and whether it is ready.
async fn failback(
    clients: &Clients,
    name: &str,
    format: ReadinessFormat,
) -> anyhow::Result<(String, bool)> {
    let plan = plans::load_plan(&clients.store, &PlanSource::Name(name.to_owned()))
        .await
        .with_context(|| format!("reading plan {name}"))?;
    let fleet = drs::describe_all_source_servers(&clients.drs).await?;
    let readiness = match drplan_core::resolve(&plan, &fleet) {
        Ok(resolved) => {
            let facts = drplan_aws::failback::failback_facts(&clients.drs, &resolved).await?;
            let mut readiness = check_failback_readiness(&plan.name, &resolved, &facts);
            // The failback refuses a plan that goes home to two places: so does this.
            if let Err(issue) = drplan_core::failback::failback_destination(&facts) {
                readiness.blocking.push(issue);
            }
            readiness
        }
        Err(issues) => FailbackReadiness {
            blocking: issues,
            ..FailbackReadiness::default()
        },
    };
    let ready = readiness.is_ready();
    let text = match format {
        ReadinessFormat::Json => {
            #[derive(Serialize)]
            struct Failback<'a> {
                plan: &'a str,
                ready: bool,
                #[serde(flatten)]
                readiness: &'a FailbackReadiness,
            }
            let shown = Failback {
                plan: &plan.name,
                ready,
                readiness: &readiness,
            };
            format!("{}\n", serde_json::to_string_pretty(&shown)?)
        }
        ReadinessFormat::Text => readiness.to_text(&plan.name),
    };
    Ok((text, ready))
}
