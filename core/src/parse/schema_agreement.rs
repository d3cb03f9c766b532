use super::*;
use std::collections::BTreeSet;

fn properties(schema: &Value) -> BTreeSet<String> {
    schema["properties"]
        .as_object()
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}

fn set(fields: &[&str]) -> BTreeSet<String> {
    fields.iter().map(|f| (*f).to_owned()).collect()
}

/// `drplan schema` and `drplan validate` must accept the same fields, or an editor
/// would bless a plan that validation then refuses.
#[test]
fn the_json_schema_lists_exactly_the_fields_the_reader_accepts() {
    let schema = crate::plan::plan_json_schema();
    assert_eq!(properties(&schema), set(PLAN_FIELDS));
    let defs = &schema["$defs"];
    for (def, fields) in [
        ("Wave", WAVE_FIELDS),
        ("Health", HEALTH_FIELDS),
        ("Hooks", HOOKS_FIELDS),
        ("Hook", HOOK_FIELDS),
        ("Target", super::targets::TARGET_FIELDS),
        ("Dns", DNS_FIELDS),
        ("DnsRecord", RECORD_FIELDS),
        ("AliasTarget", ALIAS_FIELDS),
        ("Approval", APPROVAL_FIELDS),
        ("Drill", DRILL_FIELDS),
        ("Triggers", TRIGGERS_FIELDS),
        ("Failback", FAILBACK_FIELDS),
    ] {
        assert_eq!(properties(&defs[def]), set(fields), "$defs/{def}");
        assert_eq!(
            defs[def]["additionalProperties"],
            Value::Bool(false),
            "$defs/{def}"
        );
    }
}

#[test]
fn a_valid_plan_round_trips_through_its_json_form() {
    let text = include_str!("../../../examples/shop.yaml");
    let plan = parse_plan(text, Format::Yaml).unwrap();
    let json = serde_json::to_value(&plan).unwrap();
    assert_eq!(plan_from_value(&json).unwrap(), plan);
}
