//! drplan's stack in the local cloud: the bucket for plans, run state and reports, and
//! the state machines of `infra/template.yaml` (the template that deploys drplan to AWS),
//! each with its `DefinitionUri` and `DefinitionSubstitutions` as the template says, a
//! function's `Fn::GetAtt: [XxxFunction, Arn]` becoming the ARN of the function binary
//! (`BuildProperties.Binary`) that `cargo lambda watch` serves (the gateway maps each ARN
//! to its plain function name). One source of truth: what runs locally is what deploys.

use std::path::{Path, PathBuf};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::config::Credentials;
use serde_json::Value;

use crate::error::{LocalCloudError, Result};

/// The bucket the functions use (`DRPLAN_BUCKET`) in the local cloud.
pub const BUCKET: &str = "drplan-local";
/// The recovery state machine's name.
pub const RECOVERY_STATE_MACHINE: &str = "drplan-recovery";
/// The stall escalation state machine's name.
pub const ESCALATION_STATE_MACHINE: &str = "drplan-stall-escalation";
/// The schedule group of drill schedules (the template's DrillScheduleGroup).
pub const DRILL_SCHEDULE_GROUP: &str = "drplan-local-drills";
/// The role drill schedules name (Scheduler in moto does not assume it).
pub const DRILL_SCHEDULER_ROLE: &str = "drplan-local-drill-scheduler";
/// The SAM template, relative to the repository.
pub const TEMPLATE: &str = "infra/template.yaml";

/// What was deployed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stack {
    pub bucket: String,
    pub recovery_state_machine_arn: String,
}

/// A state machine of the template, resolved for the local cloud.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateMachineSpec {
    /// The template's logical ID.
    pub logical_id: String,
    pub name: String,
    /// `DefinitionUri`, resolved against the template's folder.
    pub definition_file: PathBuf,
    /// (`${Key}`, value) for each of `DefinitionSubstitutions`.
    pub substitutions: Vec<(String, String)>,
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

/// The `AWS::Serverless::StateMachine` resources of `infra/template.yaml`.
pub fn state_machines(
    repo_root: &Path,
    region: &str,
    account_id: &str,
) -> Result<Vec<StateMachineSpec>> {
    let path = repo_root.join(TEMPLATE);
    let text = std::fs::read_to_string(&path).map_err(|source| LocalCloudError::Io {
        path: path.clone(),
        source,
    })?;
    let base = path.parent().unwrap_or(repo_root);
    state_machines_of(&text, base, region, account_id)
        .map_err(|e| LocalCloudError::Deploy(format!("{}: {e}", path.display())))
}

/// The state machines of a template's text; `base` is the folder `DefinitionUri`s are
/// relative to.
pub fn state_machines_of(
    template: &str,
    base: &Path,
    region: &str,
    account_id: &str,
) -> std::result::Result<Vec<StateMachineSpec>, String> {
    let yaml: serde_norway::Value = serde_norway::from_str(template)
        .map_err(|e| format!("not plain YAML (write intrinsics in long form): {e}"))?;
    let template = serde_json::to_value(yaml).map_err(|e| e.to_string())?;
    let resources = template["Resources"].as_object().ok_or("no Resources")?;
    let parameter_default = |value: &Value| -> Option<String> {
        let name = value.get("Ref")?.as_str()?;
        template["Parameters"][name]["Default"]
            .as_str()
            .map(str::to_owned)
    };
    let mut machines = Vec::new();
    for (id, resource) in resources {
        if resource["Type"] != "AWS::Serverless::StateMachine" {
            continue;
        }
        let props = &resource["Properties"];
        let name = props["Name"]
            .as_str()
            .map(str::to_owned)
            .or_else(|| parameter_default(&props["Name"]))
            .ok_or_else(|| {
                format!("{id}: Name must be a string or a Ref to a parameter with a Default")
            })?;
        let uri = props["DefinitionUri"]
            .as_str()
            .ok_or_else(|| format!("{id}: DefinitionUri must be a path to the definition"))?;
        let mut substitutions = Vec::new();
        if let Some(map) = props["DefinitionSubstitutions"].as_object() {
            for (key, value) in map {
                let resolved = if let Some(text) = value.as_str() {
                    text.to_owned()
                } else if let Some(default) = parameter_default(value) {
                    default
                } else if let Some(arn) = function_arn(resources, value, region, account_id) {
                    arn
                } else if is_bucket_ref(resources, value) {
                    // The stack's one bucket, which the local cloud names BUCKET.
                    BUCKET.to_owned()
                } else {
                    return Err(format!(
                        "{id}: DefinitionSubstitutions.{key} must be a string, a Ref to a \
                         parameter with a Default or to the AWS::S3::Bucket, or \
                         Fn::GetAtt [FUNCTION, Arn] of an AWS::Serverless::Function with \
                         Metadata.BuildProperties.Binary"
                    ));
                };
                substitutions.push((format!("${{{key}}}"), resolved));
            }
        }
        machines.push(StateMachineSpec {
            logical_id: id.clone(),
            name,
            definition_file: base.join(uri),
            substitutions,
        });
    }
    Ok(machines)
}

/// `Ref: BUCKET` of an `AWS::S3::Bucket` resource (a bucket's Ref is its name).
fn is_bucket_ref(resources: &serde_json::Map<String, Value>, value: &Value) -> bool {
    value["Ref"]
        .as_str()
        .and_then(|target| resources.get(target))
        .is_some_and(|resource| resource["Type"] == "AWS::S3::Bucket")
}

/// `Fn::GetAtt: [FUNCTION, Arn]` of an `AWS::Serverless::Function`: the ARN of its binary
/// (`Metadata.BuildProperties.Binary`) as `cargo lambda watch` serves it.
fn function_arn(
    resources: &serde_json::Map<String, Value>,
    value: &Value,
    region: &str,
    account_id: &str,
) -> Option<String> {
    let target = value["Fn::GetAtt"][0].as_str()?;
    let function = resources.get(target)?;
    let binary = function["Metadata"]["BuildProperties"]["Binary"].as_str()?;
    (function["Type"] == "AWS::Serverless::Function" && value["Fn::GetAtt"][1] == "Arn")
        .then(|| format!("arn:aws:lambda:{region}:{account_id}:function:{binary}"))
}

/// An `AWS::Events::Rule` of the template, resolved for the local cloud.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSpec {
    /// The template's logical ID, used as the rule's name.
    pub name: String,
    /// The event pattern, as JSON text.
    pub event_pattern: String,
    pub enabled: bool,
    /// (target ID, function ARN).
    pub targets: Vec<(String, String)>,
}

/// The EventBridge rules of a template's text: each rule's pattern and its function
/// targets, as the template deploys them to AWS.
pub fn rules_of(
    template: &str,
    region: &str,
    account_id: &str,
) -> std::result::Result<Vec<RuleSpec>, String> {
    let yaml: serde_norway::Value = serde_norway::from_str(template)
        .map_err(|e| format!("not plain YAML (write intrinsics in long form): {e}"))?;
    let template = serde_json::to_value(yaml).map_err(|e| e.to_string())?;
    let resources = template["Resources"].as_object().ok_or("no Resources")?;
    let mut rules = Vec::new();
    for (id, resource) in resources {
        if resource["Type"] != "AWS::Events::Rule" {
            continue;
        }
        let props = &resource["Properties"];
        if !props["EventPattern"].is_object() {
            return Err(format!("{id}: EventPattern must be an object"));
        }
        let event_pattern = with_pseudo_parameters(&props["EventPattern"], region, account_id)
            .map_err(|problem| format!("{id}: EventPattern: {problem}"))?;
        let mut targets = Vec::new();
        for target in props["Targets"].as_array().into_iter().flatten() {
            let target_id = target["Id"]
                .as_str()
                .ok_or_else(|| format!("{id}: every target needs an Id"))?;
            let arn = function_arn(resources, &target["Arn"], region, account_id).ok_or_else(
                || format!("{id}: target {target_id} must be Fn::GetAtt [FUNCTION, Arn] of a drplan function"),
            )?;
            targets.push((target_id.to_owned(), arn));
        }
        rules.push(RuleSpec {
            name: id.clone(),
            event_pattern: event_pattern.to_string(),
            enabled: props["State"].as_str().unwrap_or("ENABLED") == "ENABLED",
            targets,
        });
    }
    Ok(rules)
}

/// `value` with each `Ref: AWS::AccountId` / `Ref: AWS::Region` replaced by the stack's,
/// as CloudFormation does (the rules' patterns match only the stack's own events), and
/// `Ref: PlansBucket` by the local bucket's name. Any other intrinsic is refused: the
/// local rule would silently differ from AWS's.
fn with_pseudo_parameters(
    value: &Value,
    region: &str,
    account_id: &str,
) -> std::result::Result<Value, String> {
    match value {
        Value::Object(map) if map.len() == 1 && map.contains_key("Ref") => {
            match map["Ref"].as_str() {
                Some("AWS::AccountId") => Ok(Value::String(account_id.to_owned())),
                Some("AWS::Region") => Ok(Value::String(region.to_owned())),
                // The bucket's name: the local cloud's bucket stands in for it.
                Some("PlansBucket") => Ok(Value::String(BUCKET.to_owned())),
                _ => Err(format!(
                    "{value} is not resolved locally (only Ref AWS::AccountId, AWS::Region and PlansBucket are)"
                )),
            }
        }
        Value::Object(map) => {
            if let Some(intrinsic) = map.keys().find(|key| key.starts_with("Fn::")) {
                return Err(format!("{intrinsic} is not resolved locally"));
            }
            map.iter()
                .map(|(key, item)| {
                    with_pseudo_parameters(item, region, account_id).map(|item| (key.clone(), item))
                })
                .collect::<std::result::Result<serde_json::Map<_, _>, _>>()
                .map(Value::Object)
        }
        Value::Array(items) => items
            .iter()
            .map(|item| with_pseudo_parameters(item, region, account_id))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map(Value::Array),
        other => Ok(other.clone()),
    }
}

/// Creates or updates the template's EventBridge rules and their targets in moto.
async fn deploy_rules(
    endpoint_url: &str,
    region: &str,
    account_id: &str,
    repo_root: &Path,
) -> Result<usize> {
    let path = repo_root.join(TEMPLATE);
    let text = std::fs::read_to_string(&path).map_err(|source| LocalCloudError::Io {
        path: path.clone(),
        source,
    })?;
    let rules = rules_of(&text, region, account_id)
        .map_err(|e| LocalCloudError::Deploy(format!("{}: {e}", path.display())))?;
    let events =
        crate::upstream::AwsClient::new(crate::upstream::HttpClient::new(), endpoint_url, region);
    for rule in &rules {
        events
            .json(
                "events",
                "1.1",
                "AWSEvents",
                "PutRule",
                &serde_json::json!({
                    "Name": rule.name,
                    "EventPattern": rule.event_pattern,
                    "State": if rule.enabled { "ENABLED" } else { "DISABLED" },
                }),
            )
            .await
            .map_err(|e| LocalCloudError::Deploy(format!("PutRule {}: {e}", rule.name)))?;
        let targets: Vec<Value> = rule
            .targets
            .iter()
            .map(|(id, arn)| serde_json::json!({ "Id": id, "Arn": arn }))
            .collect();
        events
            .json(
                "events",
                "1.1",
                "AWSEvents",
                "PutTargets",
                &serde_json::json!({ "Rule": rule.name, "Targets": targets }),
            )
            .await
            .map_err(|e| LocalCloudError::Deploy(format!("PutTargets {}: {e}", rule.name)))?;
    }
    Ok(rules.len())
}

/// The drill schedules' group (EventBridge Scheduler); one that exists already is kept.
async fn deploy_schedule_group(endpoint_url: &str, region: &str) -> Result<()> {
    let scheduler =
        crate::upstream::AwsClient::new(crate::upstream::HttpClient::new(), endpoint_url, region);
    let answer = scheduler
        .rest(
            "scheduler",
            hyper::Method::POST,
            &format!("/schedule-groups/{DRILL_SCHEDULE_GROUP}"),
            "application/json",
            b"{}".to_vec(),
        )
        .await?;
    if answer.status.is_success() || answer.status == hyper::StatusCode::CONFLICT {
        Ok(())
    } else {
        Err(LocalCloudError::Deploy(format!(
            "CreateScheduleGroup {DRILL_SCHEDULE_GROUP}: HTTP {}: {}",
            answer.status,
            answer.body_text()
        )))
    }
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
            "the definition uses {} and the template's DefinitionSubstitutions do not provide it",
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
    let mut recovery_arn = None;
    for machine in state_machines(repo_root, region, account_id)? {
        let StateMachineSpec {
            name,
            definition_file: path,
            substitutions,
            ..
        } = machine;
        let definition = std::fs::read_to_string(&path).map_err(|source| LocalCloudError::Io {
            path: path.clone(),
            source,
        })?;
        let definition = substitute(&definition, &substitutions)?;
        let arn = match existing.state_machines().iter().find(|m| m.name() == name) {
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
                .name(&name)
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
        if name == RECOVERY_STATE_MACHINE {
            recovery_arn = Some(arn);
        }
    }
    deploy_rules(endpoint_url, region, account_id, repo_root).await?;
    deploy_schedule_group(endpoint_url, region).await?;
    let recovery_arn = recovery_arn.ok_or_else(|| {
        LocalCloudError::Deploy(format!(
            "{TEMPLATE} has no state machine named {RECOVERY_STATE_MACHINE}"
        ))
    })?;
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
        .key(drplan_core::contract::keys::plan_source(name))
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

    #[test]
    fn the_template_gives_the_state_machines_and_their_function_arns() {
        let repo_root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let machines = state_machines(&repo_root, "us-east-1", "123456789012").unwrap();
        let recovery = machines
            .iter()
            .find(|m| m.name == RECOVERY_STATE_MACHINE)
            .expect("the recovery state machine");
        assert!(
            recovery
                .definition_file
                .ends_with("statemachines/recovery.asl.json")
        );
        assert!(
            recovery.substitutions.contains(&(
                "${LaunchWaveFunctionArn}".to_owned(),
                "arn:aws:lambda:us-east-1:123456789012:function:launch-wave".to_owned()
            )),
            "{:?}",
            recovery.substitutions
        );
        let definition = std::fs::read_to_string(&recovery.definition_file).unwrap();
        let deployed = substitute(&definition, &recovery.substitutions).unwrap();
        assert!(deployed.contains(":function:discover\""), "{deployed}");
        // The pause check reads the stack's bucket, which is this one locally.
        assert!(
            recovery
                .substitutions
                .contains(&("${PlansBucketName}".to_owned(), BUCKET.to_owned())),
            "{:?}",
            recovery.substitutions
        );
    }

    #[test]
    fn the_template_gives_the_rules_and_their_function_targets() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../infra/template.yaml");
        let text = std::fs::read_to_string(path).unwrap();
        let rules = rules_of(&text, "us-east-1", "123456789012").unwrap();
        let alarms = rules
            .iter()
            .find(|r| r.name == "AlarmStateChangeRule")
            .expect("the alarm rule");
        let pattern: Value = serde_json::from_str(&alarms.event_pattern).unwrap();
        assert_eq!(pattern["detail-type"][0], "CloudWatch Alarm State Change");
        // The stack's own account and Region, as CloudFormation resolves them.
        assert_eq!(pattern["account"], serde_json::json!(["123456789012"]));
        assert_eq!(pattern["region"], serde_json::json!(["us-east-1"]));
        let mut event = serde_json::json!({"source": "aws.cloudwatch",
            "detail-type": "CloudWatch Alarm State Change", "account": "123456789012",
            "region": "us-east-1", "detail": {}});
        assert!(crate::event_pattern::matches(&pattern, &event));
        event["account"] = serde_json::json!("999999999999");
        assert!(!crate::event_pattern::matches(&pattern, &event));
        event["account"] = serde_json::json!("123456789012");
        event["region"] = serde_json::json!("eu-west-1");
        assert!(!crate::event_pattern::matches(&pattern, &event));
        for rule in &rules {
            let pattern: Value = serde_json::from_str(&rule.event_pattern).unwrap();
            assert_eq!(
                pattern["account"],
                serde_json::json!(["123456789012"]),
                "{}",
                rule.name
            );
        }
        let other_ref = "Resources:\n  R:\n    Type: AWS::Events::Rule\n    Properties:\n      EventPattern: {source: [{Ref: Bucket}]}\n";
        assert!(
            rules_of(other_ref, "us-east-1", "1")
                .unwrap_err()
                .contains("not resolved locally")
        );
        assert_eq!(
            alarms.targets,
            vec![(
                "trigger".to_owned(),
                "arn:aws:lambda:us-east-1:123456789012:function:trigger".to_owned()
            )]
        );
        assert!(rules.iter().any(|r| r.name == "DrsEventsRule" && r.enabled));
        let bad = "Resources:\n  R:\n    Type: AWS::Events::Rule\n    Properties:\n      EventPattern: {source: [x]}\n      Targets: [{Id: t, Arn: arn:aws:sqs:us-east-1:1:q}]\n";
        assert!(
            rules_of(bad, "us-east-1", "1")
                .unwrap_err()
                .contains("target t")
        );
    }

    #[test]
    fn names_and_values_resolve_like_cloudformation_or_say_why_not() {
        let template = r#"
Parameters:
  MachineName: { Type: String, Default: dr-test }
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Metadata: { BuildMethod: rust-cargolambda, BuildProperties: { Binary: my-fn } }
  Machine:
    Type: AWS::Serverless::StateMachine
    Properties:
      Name: { Ref: MachineName }
      DefinitionUri: ../sm/a.asl.json
      DefinitionSubstitutions:
        FnArn: { "Fn::GetAtt": [Fn, Arn] }
        Plain: literal
"#;
        let machines =
            state_machines_of(template, Path::new("/r/infra"), "eu-west-1", "1").unwrap();
        assert_eq!(machines.len(), 1);
        assert_eq!(machines[0].name, "dr-test");
        assert_eq!(
            machines[0].definition_file,
            Path::new("/r/infra/../sm/a.asl.json")
        );
        assert_eq!(
            machines[0].substitutions,
            vec![
                (
                    "${FnArn}".to_owned(),
                    "arn:aws:lambda:eu-west-1:1:function:my-fn".to_owned()
                ),
                ("${Plain}".to_owned(), "literal".to_owned()),
            ]
        );
        let unknown = template.replace("[Fn, Arn]", "[Nope, Arn]");
        let err = state_machines_of(&unknown, Path::new("/r/infra"), "eu-west-1", "1").unwrap_err();
        assert!(err.contains("DefinitionSubstitutions.FnArn"), "{err}");
        let short = template.replace("{ \"Fn::GetAtt\": [Fn, Arn] }", "!GetAtt Fn.Arn");
        assert!(state_machines_of(&short, Path::new("/r"), "r", "1").is_err());
    }
}
