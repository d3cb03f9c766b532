//! Checks a state machine definition (Amazon States Language) against the contract:
//! every `drplan.*` error it names is in the catalog, every Task that invokes one of
//! drplan's functions carries the standard Retry, every Choice is named as a question,
//! and the states drplan reads from histories exist.

use serde_json::Value;

use super::errors::{ErrorName, LAMBDA_SERVICE_ERRORS, standard_retry};

/// A state and where it is (`RunLayers/RunWaves/LaunchWave`).
struct StateAt<'a> {
    path: String,
    name: &'a str,
    state: &'a Value,
}

/// Every state of a definition, nested Map and Parallel states' too.
fn all_states(definition: &Value) -> Vec<StateAt<'_>> {
    fn walk<'a>(states: &'a Value, prefix: &str, out: &mut Vec<StateAt<'a>>) {
        let Some(states) = states.as_object() else {
            return;
        };
        for (name, state) in states {
            let path = format!("{prefix}{name}");
            for nested in ["Iterator", "ItemProcessor"] {
                walk(&state[nested]["States"], &format!("{path}/"), out);
            }
            for branch in state["Branches"].as_array().into_iter().flatten() {
                walk(&branch["States"], &format!("{path}/"), out);
            }
            out.push(StateAt { path, name, state });
        }
    }
    let mut out = Vec::new();
    walk(&definition["States"], "", &mut out);
    out
}

/// Whether a Task invokes one of drplan's own functions (a `${...FunctionArn}`
/// substitution), and whether it waits for a task token while doing so.
fn invokes_drplan(task: &Value) -> Option<bool> {
    let own = |text: &Value| {
        text.as_str()
            .is_some_and(|t| t.starts_with("${") && t.ends_with("FunctionArn}"))
    };
    let resource = task["Resource"].as_str().unwrap_or_default();
    if own(&task["Resource"]) {
        Some(false)
    } else if resource.starts_with("arn:aws:states:::lambda:invoke")
        && own(&task["Parameters"]["FunctionName"])
    {
        Some(resource.ends_with(".waitForTaskToken"))
    } else {
        None
    }
}

/// Everything in `definition` that breaks the contract, one line each.
pub fn problems(definition: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let standard = standard_retry();
    for StateAt { path, name, state } in all_states(definition) {
        let mut named = Vec::new();
        for handler in ["Retry", "Catch"] {
            for rule in state[handler].as_array().into_iter().flatten() {
                for error in rule["ErrorEquals"].as_array().into_iter().flatten() {
                    named.push((handler, error.as_str().unwrap_or_default()));
                }
            }
        }
        for (field, error) in [
            ("Error", &state["Error"]),
            ("Parameters.Error", &state["Parameters"]["Error"]),
        ] {
            if let Some(error) = error.as_str() {
                named.push((field, error));
            }
        }
        for (field, error) in named {
            if error.starts_with("drplan.") && ErrorName::parse(error).is_none() {
                problems.push(format!(
                    "{path}: {field} names {error}, which is not in the error catalog (core/src/contract/errors.rs)"
                ));
            }
        }
        match state["Type"].as_str() {
            Some("Task") => match invokes_drplan(state) {
                Some(false) if state["Retry"] != standard => problems.push(format!(
                    "{path}: a Task that invokes a drplan function must carry the standard Retry (contract::errors::standard_retry)"
                )),
                Some(true) if !retries_lambda_errors(&state["Retry"]) => problems.push(format!(
                    "{path}: a task-token wait on a drplan function must retry Lambda's own invocation errors"
                )),
                _ => {}
            },
            Some("Choice") if !(name.starts_with("Is") || name.starts_with("Has")) => {
                problems.push(format!(
                    "{path}: a Choice is named as the question it answers (Is..., Has...)"
                ));
            }
            _ => {}
        }
    }
    problems
}

fn retries_lambda_errors(retry: &Value) -> bool {
    retry.as_array().into_iter().flatten().any(|rule| {
        LAMBDA_SERVICE_ERRORS.iter().all(|e| {
            rule["ErrorEquals"]
                .as_array()
                .is_some_and(|l| l.iter().any(|x| x == e))
        })
    })
}

/// The states of `names` that `definition` does not have.
pub fn missing_states<'n>(definition: &Value, names: &[&'n str]) -> Vec<&'n str> {
    let states = all_states(definition);
    names
        .iter()
        .copied()
        .filter(|name| !states.iter().any(|s| s.name == *name))
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::contract::states::READ_BY_DRPLAN;

    fn machines() -> [(&'static str, Value); 2] {
        [
            (
                "recovery",
                serde_json::from_str(include_str!("../../../statemachines/recovery.asl.json"))
                    .expect("recovery.asl.json"),
            ),
            (
                "stall-escalation",
                serde_json::from_str(include_str!(
                    "../../../statemachines/stall-escalation.asl.json"
                ))
                .expect("stall-escalation.asl.json"),
            ),
        ]
    }

    #[test]
    fn the_state_machines_keep_the_contract() {
        for (name, machine) in machines() {
            assert_eq!(problems(&machine), Vec::<String>::new(), "{name}");
        }
        let (_, recovery) = &machines()[0];
        assert_eq!(
            missing_states(recovery, &READ_BY_DRPLAN),
            Vec::<&str>::new()
        );
        let tasks = all_states(recovery)
            .iter()
            .filter(|s| invokes_drplan(s.state) == Some(false))
            .count();
        assert!(tasks >= 20, "only {tasks} function tasks found");
    }

    #[test]
    fn an_unknown_error_name_a_missing_retry_or_state_is_found() {
        let [(_, mut recovery), _] = machines();
        assert!(missing_states(&recovery, &["NoSuchState"]) == ["NoSuchState"]);
        recovery["States"]["Discover"]["Catch"][0]["ErrorEquals"] = json!(["drplan.AwsError"]);
        recovery["States"]["RunLayers"]["ItemProcessor"]["States"]["RunWaves"]["ItemProcessor"]["States"]
            ["LaunchWave"]["Retry"] = json!([]);
        recovery["States"]["RunLayers"]["ItemProcessor"]["States"]["RunWaves"]["ItemProcessor"]["States"]
            ["WaitForLaunch"]["Retry"] = json!([]);
        let found = problems(&recovery);
        assert_eq!(found.len(), 3, "{found:#?}");
        assert!(
            found[..]
                .iter()
                .any(|p| p.starts_with("Discover: Catch names drplan.AwsError"))
        );
        assert!(
            found
                .iter()
                .any(|p| p.starts_with("RunLayers/RunWaves/LaunchWave: a Task"))
        );
        assert!(
            found
                .iter()
                .any(|p| p.starts_with("RunLayers/RunWaves/WaitForLaunch: a task-token wait"))
        );
    }

    #[test]
    fn the_pause_check_reads_the_key_drplan_pause_writes() {
        use crate::contract::keys::PAUSE_REQUEST_KEY_FORMAT;
        let [(_, recovery), _] = machines();
        let expected = format!(
            "States.Format('{PAUSE_REQUEST_KEY_FORMAT}', $.run.plan, $.run.execution_name)"
        );
        let layer = &recovery["States"]["RunLayers"]["ItemProcessor"]["States"];
        assert_eq!(
            layer["CheckPauseRequest"]["Parameters"]["Prefix.$"],
            expected
        );
        assert_eq!(
            recovery["States"]["RunLayers"]["ItemProcessor"]["StartAt"], "CheckPauseRequest",
            "the pause check comes before a stage's waves"
        );
        let payload = &layer["WaitWhilePaused"]["Parameters"]["Payload"];
        assert_eq!(
            payload["event"],
            crate::contract::notice::RunEvent::Paused.as_str()
        );
    }

    #[test]
    fn hooks_receive_the_documented_event() {
        use crate::contract::step::HookEvent;
        let [(_, recovery), _] = machines();
        let event = serde_json::to_value(HookEvent {
            source: "drplan".into(),
            phase: "pre".into(),
            plan: "shop".into(),
            mode: crate::plan::Mode::Drill,
            execution_id: "arn".into(),
            execution_name: "shop-1".into(),
            wave: "db".into(),
        })
        .unwrap();
        let mut fields: Vec<&str> = event
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        fields.sort_unstable();
        let hooks = all_states(&recovery)
            .into_iter()
            .filter(|s| s.name.starts_with("Call") && s.name.ends_with("Hook"))
            .collect::<Vec<_>>();
        assert_eq!(hooks.len(), 2);
        for hook in hooks {
            let payload = hook.state["Parameters"]["Payload"].as_object().unwrap();
            let mut sent: Vec<&str> = payload.keys().map(|k| k.trim_end_matches(".$")).collect();
            sent.sort_unstable();
            assert_eq!(sent, fields, "{}", hook.path);
        }
    }
}
