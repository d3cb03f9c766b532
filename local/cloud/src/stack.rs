//! drplan's stack in the local cloud: the bucket for plans, run state and reports, and
//! the state machines from `statemachines/`, with their `${...FunctionArn}`
//! substitutions pointing at the function binaries `cargo lambda watch` serves (the
//! gateway maps each ARN to its plain function name).

use std::path::Path;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::config::Credentials;

use crate::error::{LocalCloudError, Result};
use crate::tools;

/// The bucket the functions use (`DRPLAN_BUCKET`) in the local cloud.
pub const BUCKET: &str = "drplan-local";
/// The state machines: (name, definition file under the repository).
pub const STATE_MACHINES: &[(&str, &str)] =
    &[("drplan-recovery", "statemachines/recovery.asl.json")];
/// The recovery state machine's name.
pub const RECOVERY_STATE_MACHINE: &str = "drplan-recovery";

/// What was deployed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stack {
    pub bucket: String,
    pub recovery_state_machine_arn: String,
}

/// An SDK configuration for the local cloud: its endpoint, a region, dummy credentials.
pub async fn sdk_config(endpoint_url: &str, region: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint_url)
        .region(Region::new(region.to_owned()))
        .credentials_provider(Credentials::new(
            "drplanlocal",
            "drplanlocal",
            None,
            None,
            "drplan-local",
        ))
        .load()
        .await
}

/// The ARN substitutions of a definition: `${LaunchWaveFunctionArn}` for the function
/// crate `functions/launch-wave`, and so on for each.
pub fn function_substitutions(
    repo_root: &Path,
    region: &str,
    account_id: &str,
) -> Vec<(String, String)> {
    tools::function_crates(repo_root)
        .iter()
        .filter_map(|dir| dir.file_name().and_then(|n| n.to_str()).map(str::to_owned))
        .map(|name| {
            let pascal: String = name
                .split(['-', '_'])
                .map(|part| {
                    let mut chars = part.chars();
                    chars
                        .next()
                        .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                        .unwrap_or_default()
                })
                .collect();
            (
                format!("${{{pascal}FunctionArn}}"),
                format!("arn:aws:lambda:{region}:{account_id}:function:{name}"),
            )
        })
        .collect()
}

/// Replaces every `${...}` the definition uses; one left over is an error naming it.
pub fn substitute(definition: &str, substitutions: &[(String, String)]) -> Result<String> {
    let mut text = definition.to_owned();
    for (placeholder, value) in substitutions {
        text = text.replace(placeholder, value);
    }
    if let Some(start) = text.find("${") {
        let end = text[start..]
            .find('}')
            .map_or(text.len(), |e| start + e + 1);
        return Err(LocalCloudError::Deploy(format!(
            "the definition uses {} and no function crate provides it",
            &text[start..end]
        )));
    }
    Ok(text)
}

/// Creates the bucket and creates or updates the state machines. Safe to repeat.
pub async fn deploy(
    endpoint_url: &str,
    region: &str,
    account_id: &str,
    repo_root: &Path,
) -> Result<Stack> {
    let config = sdk_config(endpoint_url, region).await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    );
    match s3.create_bucket().bucket(BUCKET).send().await {
        Ok(_) => {}
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_bucket_already_owned_by_you()) => {}
        Err(e) => {
            return Err(LocalCloudError::Deploy(format!(
                "CreateBucket {BUCKET}: {}",
                aws_sdk_s3::error::DisplayErrorContext(&e)
            )));
        }
    }
    let sfn = aws_sdk_sfn::Client::new(&config);
    let existing = sfn
        .list_state_machines()
        .max_results(1000)
        .send()
        .await
        .map_err(|e| {
            LocalCloudError::Deploy(format!(
                "ListStateMachines: {}",
                aws_sdk_sfn::error::DisplayErrorContext(&e)
            ))
        })?;
    let substitutions = function_substitutions(repo_root, region, account_id);
    let mut recovery_arn = String::new();
    for (name, file) in STATE_MACHINES {
        let path = repo_root.join(file);
        let definition = std::fs::read_to_string(&path).map_err(|source| LocalCloudError::Io {
            path: path.clone(),
            source,
        })?;
        let definition = substitute(&definition, &substitutions)?;
        let arn = match existing.state_machines().iter().find(|m| m.name() == *name) {
            Some(machine) => {
                sfn.update_state_machine()
                    .state_machine_arn(machine.state_machine_arn())
                    .definition(definition)
                    .send()
                    .await
                    .map_err(|e| {
                        LocalCloudError::Deploy(format!(
                            "UpdateStateMachine {name}: {}",
                            aws_sdk_sfn::error::DisplayErrorContext(&e)
                        ))
                    })?;
                machine.state_machine_arn().to_owned()
            }
            None => sfn
                .create_state_machine()
                .name(*name)
                .definition(definition)
                .role_arn(format!(
                    "arn:aws:iam::{account_id}:role/drplan-local-state-machine"
                ))
                .send()
                .await
                .map_err(|e| {
                    LocalCloudError::Deploy(format!(
                        "CreateStateMachine {name}: {}",
                        aws_sdk_sfn::error::DisplayErrorContext(&e)
                    ))
                })?
                .state_machine_arn()
                .to_owned(),
        };
        if *name == RECOVERY_STATE_MACHINE {
            recovery_arn = arn;
        }
    }
    Ok(Stack {
        bucket: BUCKET.to_owned(),
        recovery_state_machine_arn: recovery_arn,
    })
}

/// Stores a plan in the bucket under `plans/NAME.yaml`, so it can be started by name.
pub async fn put_plan(endpoint_url: &str, region: &str, name: &str, text: String) -> Result<()> {
    let config = sdk_config(endpoint_url, region).await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    );
    s3.put_object()
        .bucket(BUCKET)
        .key(format!("plans/{name}.yaml"))
        .body(text.into_bytes().into())
        .send()
        .await
        .map_err(|e| {
            LocalCloudError::Deploy(format!(
                "PutObject plans/{name}.yaml: {}",
                aws_sdk_s3::error::DisplayErrorContext(&e)
            ))
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_placeholder_must_be_provided() {
        let subs = vec![("${DiscoverFunctionArn}".to_owned(), "arn:d".to_owned())];
        assert_eq!(
            substitute("{\"R\": \"${DiscoverFunctionArn}\"}", &subs).unwrap(),
            "{\"R\": \"arn:d\"}"
        );
        let err = substitute("${DiscoverFunctionArn} ${ReportFunctionArn}", &subs).unwrap_err();
        assert!(err.to_string().contains("${ReportFunctionArn}"), "{err}");
    }
}
