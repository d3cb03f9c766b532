use super::*;

#[test]
fn dns_names() {
    for ok in [
        "shop.example.com",
        "shop.example.com.",
        "*.example.com",
        "a-b.c_d.example.org",
    ] {
        assert_eq!(dns_name_problem(ok), None, "{ok}");
    }
    for bad in [
        "shop",
        "shop..example.com",
        ".example.com",
        "-a.example.com",
        "sh op.example.com",
        "a.*.com",
    ] {
        assert!(dns_name_problem(bad).is_some(), "{bad}");
    }
    let long_label = format!("{}.example.com", "a".repeat(64));
    assert!(dns_name_problem(&long_label).is_some());
}

#[test]
fn lambda_arns() {
    assert_eq!(
        lambda_arn_problem("arn:aws:lambda:us-east-1:123456789012:function:warm-cache"),
        None
    );
    assert_eq!(
        lambda_arn_problem("arn:aws:lambda:us-east-1:123456789012:function:warm-cache:live"),
        None
    );
    assert!(lambda_arn_problem("warm-cache").is_some());
    assert!(lambda_arn_problem("arn:aws:lambda:...:function:warm-cache").is_some());
    assert!(lambda_arn_problem("arn:aws:s3:us-east-1:123456789012:function:x").is_some());
}

#[test]
fn format_follows_extension_then_content() {
    assert_eq!(Format::guess(Some("a.JSON"), "name: x"), Format::Json);
    assert_eq!(Format::guess(Some("a.yml"), "{}"), Format::Yaml);
    assert_eq!(Format::guess(None, "  {\"name\": 1}"), Format::Json);
    assert_eq!(Format::guess(Some("plan"), "name: x"), Format::Yaml);
}

fn plan_with(extra: &str) -> Result<Plan, Vec<Issue>> {
    let text =
        format!("name: shop\nrto_minutes: 30\nselector: {{ \"dr:plan\": \"shop\" }}\n{extra}");
    parse_plan(&text, Format::Yaml)
}

fn messages_of(result: Result<Plan, Vec<Issue>>) -> Vec<String> {
    result
        .expect_err("the plan is refused")
        .iter()
        .map(|issue| format!("{}: {}", issue.path, issue.message))
        .collect()
}

#[test]
fn failback_keeps_the_recovery_instances_as_long_as_the_plan_says() {
    let plan = plan_with("failback: { keep_recovery_minutes: 0 }\n").unwrap();
    assert_eq!(plan.failback.map(|f| f.keep_recovery_minutes), Some(0));
    assert_eq!(plan_with("").unwrap().failback, None);
    let refused = messages_of(plan_with("failback: { keep_recovery_minute: 5 }\n"));
    assert!(
        refused.iter().any(|m| m.contains("keep_recovery_minute")),
        "{refused:?}"
    );
    let refused = messages_of(plan_with("failback: { keep_recovery_minutes: -1 }\n"));
    assert!(
        refused
            .iter()
            .any(|m| m.starts_with("failback.keep_recovery_minutes")),
        "{refused:?}"
    );
}

#[test]
fn approval_may_cover_failbacks_but_no_alarm_starts_one() {
    let plan = plan_with("approval: { required_for: [failback] }\n").unwrap();
    assert!(plan.requires_approval(Mode::Failback));
    assert!(!plan.requires_approval(Mode::Recovery));
    let refused = messages_of(plan_with(
        "triggers: { alarms: [shop-down], mode: failback }\n",
    ));
    assert!(
        refused
            .iter()
            .any(|m| m.starts_with("triggers.mode: failback is not a mode an alarm starts")),
        "{refused:?}"
    );
}
