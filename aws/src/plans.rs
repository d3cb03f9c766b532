//! Plans stored in the bucket (`plans/NAME.yaml`): one by name for a run (discover), or
//! every one for the alarms and stalls that name them (trigger).

use drplan_core::contract::PlanSource;
use drplan_core::contract::keys::{self, plan_source as plan_key};
use drplan_core::parse::MAX_PLAN_BYTES;
use drplan_core::trigger::StoredPlan;
use drplan_core::{Format, Issue, Plan, parse_plan};

use crate::FunctionError;
use crate::store::RunStore;

/// The run's plan: inline in the execution input, or by name from the bucket. Every
/// problem is a `drplan.InvalidPlan` that says where.
pub async fn load_plan(store: &RunStore, source: &PlanSource) -> Result<Plan, FunctionError> {
    match source {
        PlanSource::Inline(document) => {
            drplan_core::plan_from_value(document).map_err(FunctionError::InvalidPlan)
        }
        PlanSource::Name(name) => {
            let key = plan_key(name);
            let text = match store.get_text_capped(&key, MAX_PLAN_BYTES as u64).await {
                Err(FunctionError::TooLarge { size, .. }) => {
                    return Err(FunctionError::InvalidPlan(vec![Issue::new(
                        "plan",
                        format!(
                            "s3://{}/{key} is {size} bytes; a plan may be at most {MAX_PLAN_BYTES} bytes (1 MiB), so it was not read",
                            store.bucket()
                        ),
                    )]));
                }
                other => other?,
            };
            let Some(text) = text else {
                return Err(FunctionError::InvalidPlan(vec![Issue::new(
                    "plan",
                    format!(
                        "no plan named {name:?}: s3://{}/{key} does not exist",
                        store.bucket()
                    ),
                )]));
            };
            let plan = parse_plan(&text, Format::Yaml).map_err(|issues| {
                FunctionError::InvalidPlan(
                    issues
                        .into_iter()
                        .map(|i| Issue::new(format!("{key}: {}", i.path), i.message))
                        .collect(),
                )
            })?;
            if plan.name != *name {
                return Err(FunctionError::InvalidPlan(vec![Issue::new(
                    format!("{key}: name"),
                    format!("the plan stored as {name:?} is named {:?}", plan.name),
                )]));
            }
            Ok(plan)
        }
    }
}

/// Every plan stored in the bucket. A plan that does not read is logged and left out:
/// one broken plan must not stop alarms for the others.
pub async fn stored_plans(store: &RunStore) -> Result<Vec<StoredPlan>, FunctionError> {
    let mut plans = Vec::new();
    for key in store.list_keys(keys::PLANS_PREFIX).await? {
        let Some(name) = keys::plan_name_of(&key) else {
            continue;
        };
        let text = match store.get_text_capped(&key, MAX_PLAN_BYTES as u64).await {
            Ok(Some(text)) => text,
            Ok(None) => continue,
            Err(error @ FunctionError::TooLarge { .. }) => {
                tracing::error!(key, %error, "stored plan skipped: over the 1 MiB plan limit");
                continue;
            }
            Err(error) => return Err(error),
        };
        match parse_plan(&text, Format::Yaml) {
            Ok(plan) if plan.name == name => plans.push(StoredPlan {
                name: name.to_owned(),
                plan,
            }),
            Ok(plan) => tracing::error!(
                key,
                plan = plan.name,
                "stored plan skipped: its name differs from its key"
            ),
            Err(issues) => tracing::error!(
                key,
                problems = issues.len(),
                first = issues.first().map(|i| format!("{}: {}", i.path, i.message)),
                "stored plan skipped: it does not validate"
            ),
        }
    }
    Ok(plans)
}
