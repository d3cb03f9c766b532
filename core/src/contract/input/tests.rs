use super::*;
use serde_json::json;

fn problems(input: serde_json::Value) -> Vec<(String, String)> {
    ExecutionInput::from_value(&input)
        .err()
        .unwrap_or_default()
        .into_iter()
        .map(|i| (i.path, i.message))
        .collect()
}

#[test]
fn a_failback_refuses_the_recovery_only_choices_by_name() {
    let ok = ExecutionInput::from_value(&json!({"plan": "shop", "mode": "failback"}));
    assert_eq!(ok.map(|input| input.mode), Ok(Mode::Failback));
    let refused = problems(json!({
        "plan": "shop", "mode": "failback", "replace_live_recovery": true,
        "snapshot": {"before": "2026-11-27T22:00:00Z"}, "only_waves": ["db"]
    }));
    let fields: Vec<&str> = refused.iter().map(|(path, _)| path.as_str()).collect();
    assert_eq!(fields, ["replace_live_recovery", "snapshot", "only_waves"]);
    assert!(refused[0].1.contains("does not apply to a failback"));
    let modes = problems(json!({"plan": "shop", "mode": "home"}));
    assert!(modes[0].1.contains("\"failback\""), "{modes:?}");
}

#[test]
fn a_resumed_run_may_skip_waves_with_a_reason_and_a_new_one_may_pick_waves() {
    let resumed = ExecutionInput::from_value(&json!({
        "plan": "shop", "mode": "recovery", "resume": "shop-recovery-1",
        "skip_waves": [{"wave": "web", "reason": "vendor", "by": "ana"}]
    }))
    .unwrap();
    assert_eq!(resumed.resume.as_deref(), Some("shop-recovery-1"));
    assert_eq!(resumed.skip_waves[0].by.as_deref(), Some("ana"));
    let part = ExecutionInput::from_value(
        &json!({"plan": "shop", "mode": "drill", "only_waves": ["db", "app"]}),
    )
    .unwrap();
    assert_eq!(part.only_waves, ["db", "app"]);

    let found = problems(json!({"plan": "shop", "mode": "drill",
            "skip_waves": [{"wave": "web", "reason": "x"}]}));
    assert!(found[0].0 == "skip_waves" && found[0].1.contains("applies to a resumed run"));
    let found = problems(json!({"plan": "shop", "mode": "drill", "resume": "r-1",
            "skip_waves": [{"wave": "web", "reason": " "}, {"wave": "web", "reason": "y"}]}));
    let paths: Vec<&str> = found.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(paths, ["skip_waves[0].reason", "skip_waves[1].wave"]);
    let found = problems(json!({"plan": "shop", "mode": "drill", "resume": "r-1",
            "skip_waves": [{"wave": "web"}]}));
    assert!(found[0].1.contains("missing field `reason`"), "{found:?}");
    let found = problems(json!({"plan": "shop", "mode": "drill", "resume": "r 1",
            "only_waves": []}));
    let paths: Vec<&str> = found.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(paths, ["resume", "only_waves"]);
    let found = problems(json!({"plan": "shop", "mode": "drill", "resume": "r-1",
            "only_waves": ["db"]}));
    assert!(found[0].1.contains("does not apply to a resumed run"));
}

#[test]
fn execution_names_are_checked_like_step_functions_does() {
    assert_eq!(execution_name_problem("shop-drill-20261202T0700Z"), None);
    let long = "x".repeat(81);
    assert!(
        execution_name_problem(&long)
            .unwrap()
            .contains("81 characters")
    );
    assert!(
        execution_name_problem("shop drill")
            .unwrap()
            .contains("' '")
    );
    assert!(execution_name_problem("").is_some());
}

#[test]
fn hooks_must_be_in_the_stacks_account_and_region() {
    let plan = crate::parse_plan(
            "name: shop\nrto_minutes: 60\nselector: {\"dr:plan\": shop}\nwaves:\n  - name: db\n    selector: {\"dr:wave\": db}\n    hooks:\n      pre: [{lambda: \"arn:aws:lambda:us-east-1:123456789012:function:drplan-hook-ok\"}]\n      post: [{lambda: \"arn:aws:lambda:eu-west-1:999999999999:function:drplan-hook-theirs\"}]\n",
            crate::Format::Yaml,
        )
        .unwrap();
    let arn = "arn:aws:states:us-east-1:123456789012:execution:drplan-recovery:shop-1";
    let (region, account) = stack_of(arn).unwrap();
    let issues = hooks_outside(&plan, region, account);
    assert_eq!(issues.len(), 1, "{issues:?}");
    assert_eq!(issues[0].path, "waves[0].hooks.post[0].lambda");
    assert!(
        issues[0]
            .message
            .contains("account 999999999999 and Region eu-west-1")
    );
}

#[test]
fn the_one_call_input_reads_with_defaults() {
    let input = ExecutionInput::from_value(&json!({"plan": "shop", "mode": "drill"})).unwrap();
    assert_eq!(input.plan, PlanSource::Name("shop".into()));
    assert_eq!(input.mode, Mode::Drill);
    assert_eq!(input.snapshot, SnapshotChoice::Latest);
    assert_eq!(input.timing, Timing::default());
    assert_eq!(input.quotas, None, "the stack's quotas apply");
    let input = ExecutionInput::from_value(
        &json!({"plan": "shop", "mode": "drill", "quotas": {"max_concurrent_jobs": 40}}),
    )
    .unwrap();
    assert_eq!(
        input.quotas,
        Some(Quotas {
            max_concurrent_jobs: 40,
            ..Quotas::default()
        })
    );
}

#[test]
fn bad_inputs_name_every_field() {
    let issues = ExecutionInput::from_value(&json!({
        "plan": 5, "mode": "dril", "snapshot": {"before": "yesterday"},
        "timing": {"poll_initial_seconds": "soon"}, "quotas": {"max_concurrent_jobs": 0}, "modes": 1
    }))
    .unwrap_err();
    let paths: Vec<&str> = issues.iter().map(|i| i.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "modes",
            "plan",
            "mode",
            "snapshot.before",
            "timing",
            "quotas"
        ]
    );
    assert!(issues[0].message.contains("did you mean \"mode\"?"));
}

#[test]
fn snapshots_before_a_time() {
    let at = |s: &str| s.parse::<Timestamp>().unwrap();
    let snapshots = vec![
        ("snap-1".to_owned(), at("2026-11-27T20:00:00Z")),
        ("snap-3".to_owned(), at("2026-11-27T22:00:00Z")),
        ("snap-2".to_owned(), at("2026-11-27T21:00:00Z")),
    ];
    assert_eq!(
        pick_snapshot(&snapshots, at("2026-11-27T21:30:00Z")),
        Some("snap-2")
    );
    assert_eq!(
        pick_snapshot(&snapshots, at("2026-11-27T22:00:00Z")),
        Some("snap-3")
    );
    assert_eq!(pick_snapshot(&snapshots, at("2026-11-27T19:00:00Z")), None);
}

#[test]
fn polls_back_off_to_the_maximum() {
    let timing = Timing {
        poll_initial_seconds: 10,
        poll_max_seconds: 60,
        poll_backoff_rate: 2.0,
        ..Timing::default()
    };
    let delays: Vec<u32> = (0..5).map(|n| timing.poll_delay_seconds(n)).collect();
    assert_eq!(delays, [10, 20, 40, 60, 60]);
}
