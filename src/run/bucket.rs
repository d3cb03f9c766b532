//! Where the stack's bucket is, for the commands that read a run's records (`report`,
//! `rollback-dns`): the one given (`--bucket`, else `DRPLAN_BUCKET`); else the output
//! `PlansBucketName` of the CloudFormation stack that deployed the run's state machine;
//! else, on the local cloud (`AWS_ENDPOINT_URL` set), the bucket `drplan local` creates.
//! A person who deployed drplan and typed `drplan report RUN` should not have to know
//! the bucket's name.

use aws_config::SdkConfig;

/// The stack output that names the bucket (`infra/template.yaml`).
pub const BUCKET_OUTPUT: &str = "PlansBucketName";
/// The stack output that names the recovery state machine: it tells which stack is
/// the run's when an account has several.
pub const STATE_MACHINE_OUTPUT: &str = "RecoveryStateMachineArn";

/// One stack's outputs, as (key, value).
pub type StackOutputs = Vec<(String, String)>;

/// The bucket of the stack that deployed `state_machine_arn`: only that stack has it as
/// its `RecoveryStateMachineArn` output.
pub fn bucket_of_stack(stacks: &[StackOutputs], state_machine_arn: &str) -> Option<String> {
    let output = |stack: &StackOutputs, key: &str| {
        stack
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, value)| value.clone())
    };
    stacks
        .iter()
        .find(|stack| output(stack, STATE_MACHINE_OUTPUT).as_deref() == Some(state_machine_arn))
        .and_then(|stack| output(stack, BUCKET_OUTPUT))
        .filter(|bucket| !bucket.is_empty())
}

/// Why no bucket was found: the three places tried, each with what it answered.
pub fn not_found_message(from_stack: &str, from_local_cloud: &str) -> String {
    format!(
        "no bucket found. Tried: (1) --bucket and DRPLAN_BUCKET: neither is set; \
         (2) the deployed stack's output {BUCKET_OUTPUT}: {from_stack}; \
         (3) the local cloud: {from_local_cloud}. \
         Pass --bucket or set DRPLAN_BUCKET"
    )
}

/// The bucket, from the first of the three places that has it.
pub async fn find_bucket(
    config: &SdkConfig,
    given: Option<&str>,
    state_machine_arn: &str,
) -> anyhow::Result<String> {
    if let Some(bucket) = given
        .map(str::to_owned)
        .or_else(|| std::env::var("DRPLAN_BUCKET").ok())
        .filter(|b| !b.is_empty())
    {
        return Ok(bucket);
    }
    let from_stack = match stack_outputs(config).await {
        Ok(stacks) => match bucket_of_stack(&stacks, state_machine_arn) {
            Some(bucket) => return Ok(bucket),
            None => format!("no stack has {STATE_MACHINE_OUTPUT} = {state_machine_arn}"),
        },
        Err(e) => format!("{e:#}"),
    };
    let from_local_cloud = match config.endpoint_url() {
        None => "not in use (AWS_ENDPOINT_URL is not set)".to_owned(),
        Some(endpoint) => {
            let bucket = drplan_local::stack::BUCKET;
            let s3 = aws_sdk_s3::Client::new(config);
            match s3.head_bucket().bucket(bucket).send().await {
                Ok(_) => return Ok(bucket.to_owned()),
                Err(e) => format!(
                    "{endpoint} has no bucket {bucket} ({})",
                    aws_sdk_s3::error::DisplayErrorContext(&e)
                ),
            }
        }
    };
    anyhow::bail!(not_found_message(&from_stack, &from_local_cloud))
}

/// Every stack's outputs (DescribeStacks, all pages).
async fn stack_outputs(config: &SdkConfig) -> anyhow::Result<Vec<StackOutputs>> {
    let cloudformation = aws_sdk_cloudformation::Client::new(config);
    let mut pages = cloudformation.describe_stacks().into_paginator().send();
    let mut stacks = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| {
            anyhow::anyhow!(
                "CloudFormation DescribeStacks: {}",
                aws_sdk_cloudformation::error::DisplayErrorContext(&e)
            )
        })?;
        for stack in page.stacks() {
            stacks.push(
                stack
                    .outputs()
                    .iter()
                    .filter_map(|o| {
                        Some((o.output_key()?.to_owned(), o.output_value()?.to_owned()))
                    })
                    .collect(),
            );
        }
    }
    Ok(stacks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stack(machine: &str, bucket: &str) -> StackOutputs {
        vec![
            ("AlarmTopicArn".into(), "arn:aws:sns:us-east-1:1:t".into()),
            (STATE_MACHINE_OUTPUT.into(), machine.into()),
            (BUCKET_OUTPUT.into(), bucket.into()),
        ]
    }

    #[test]
    fn the_bucket_is_the_one_of_the_stack_that_deployed_the_state_machine() {
        let ours = "arn:aws:states:us-east-1:1:stateMachine:drplan-recovery";
        let stacks = [
            vec![("Other".to_owned(), "x".to_owned())],
            stack(
                "arn:aws:states:eu-west-1:1:stateMachine:drplan-recovery",
                "theirs",
            ),
            stack(ours, "drplan-plansbucket-1x2y"),
        ];
        assert_eq!(
            bucket_of_stack(&stacks, ours).as_deref(),
            Some("drplan-plansbucket-1x2y")
        );
        assert_eq!(bucket_of_stack(&stacks[..2], ours), None);
        assert_eq!(bucket_of_stack(&[stack(ours, "")], ours), None);
    }

    #[test]
    fn not_finding_the_bucket_names_the_three_places_tried() {
        let message = not_found_message("no stack has X", "not in use");
        for place in [
            "DRPLAN_BUCKET",
            "--bucket",
            "PlansBucketName",
            "local cloud",
        ] {
            assert!(message.contains(place), "{message}");
        }
    }
}
