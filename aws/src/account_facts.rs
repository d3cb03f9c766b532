//! The readiness facts that live outside the plan's servers: whether each hook function
//! can run (Lambda GetFunctionConfiguration) and whether DRS's IAM roles exist (IAM
//! GetRole). Neither fails an evaluation: an answer other than "not found" (access
//! denied, IAM's us-east-1 control plane unreachable during an outage there) is kept as
//! "could not be checked", which the evaluation reports as a warning.
//!
//! Calls: one GetFunctionConfiguration per distinct hook function, a few at a time, and
//! one GetRole per role of `drplan_core::drs_account::DRS_SERVICE_ROLES`.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_lambda::types::State;
use drplan_core::Plan;
use drplan_core::drs_account::{DRS_SERVICE_ROLES, ServiceRoleFacts};
use futures_util::{StreamExt, stream};

use crate::FunctionError;

/// Lambda and IAM calls in flight at once.
const CALLS_IN_FLIGHT: usize = 6;

/// What Lambda says about one hook function.
enum HookAnswer {
    Runs,
    /// Missing, or in a state where an invocation fails: why.
    Broken(String),
    /// Lambda would not say: why.
    Unchecked(String),
}

/// The plan's hook functions that cannot run (not found, or in state Failed) and those
/// Lambda would not describe, each with why, by the ARN the plan names.
pub async fn hook_facts(
    lambda: &aws_sdk_lambda::Client,
    plan: &Plan,
) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let hooks: BTreeSet<String> = plan
        .waves
        .iter()
        .flatten()
        .flat_map(|wave| wave.hooks.pre.iter().chain(wave.hooks.post.iter()))
        .map(|hook| &hook.lambda)
        .cloned()
        .collect();
    let answers: Vec<(String, HookAnswer)> = stream::iter(hooks)
        .map(|function| async move {
            let answer = lambda
                .get_function_configuration()
                .function_name(&function)
                .send()
                .await;
            let answer = match answer {
                Ok(config) => match config.state() {
                    Some(State::Failed) => HookAnswer::Broken(format!(
                        "the function is in state Failed ({})",
                        config.state_reason().unwrap_or("no reason given")
                    )),
                    _ => HookAnswer::Runs,
                },
                Err(error)
                    if error
                        .as_service_error()
                        .is_some_and(|e| e.is_resource_not_found_exception()) =>
                {
                    HookAnswer::Broken("Lambda has no such function".to_owned())
                }
                Err(error) => HookAnswer::Unchecked(
                    FunctionError::from_sdk("Lambda GetFunctionConfiguration", error).to_string(),
                ),
            };
            (function, answer)
        })
        .buffer_unordered(CALLS_IN_FLIGHT)
        .collect()
        .await;
    let mut broken = BTreeMap::new();
    let mut unchecked = BTreeMap::new();
    for (function, answer) in answers {
        match answer {
            HookAnswer::Runs => {}
            HookAnswer::Broken(why) => {
                broken.insert(function, why);
            }
            HookAnswer::Unchecked(why) => {
                unchecked.insert(function, why);
            }
        }
    }
    (broken, unchecked)
}

/// Which of DRS's IAM roles exist.
pub async fn service_role_facts(iam: &aws_sdk_iam::Client) -> ServiceRoleFacts {
    let answers: Vec<(&str, Result<(), Option<String>>)> =
        stream::iter(DRS_SERVICE_ROLES.iter().map(|(name, _, _)| *name))
            .map(|name| async move {
                let answer = match iam.get_role().role_name(name).send().await {
                    Ok(_) => Ok(()),
                    Err(error)
                        if error
                            .as_service_error()
                            .is_some_and(|e| e.is_no_such_entity_exception()) =>
                    {
                        Err(None)
                    }
                    Err(error) => Err(Some(
                        FunctionError::from_sdk("IAM GetRole", error).to_string(),
                    )),
                };
                (name, answer)
            })
            .buffer_unordered(CALLS_IN_FLIGHT)
            .collect()
            .await;
    let mut facts = ServiceRoleFacts::default();
    for (name, answer) in answers {
        match answer {
            Ok(()) => {}
            Err(None) => {
                facts.missing.insert(name.to_owned());
            }
            Err(Some(why)) => {
                facts.unreadable.insert(name.to_owned(), why);
            }
        }
    }
    facts
}
