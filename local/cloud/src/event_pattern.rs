//! EventBridge event patterns, matched here because moto 5.2.5 does not implement
//! TestEventPattern. Covers what EventBridge documents for content filtering: exact
//! values, prefix, suffix, equals-ignore-case, wildcard, anything-but, numeric, exists
//! and `$or`. (Not covered: cidr, which drplan's rules never use; it never matches.)

use serde_json::{Map, Value};

/// Whether `event` (the full EventBridge event: source, detail-type, detail, ...) matches
/// `pattern`. An empty pattern matches everything.
pub fn matches(pattern: &Value, event: &Value) -> bool {
    match pattern {
        Value::Object(fields) => object_matches(fields, Some(event)),
        _ => false,
    }
}

fn object_matches(pattern: &Map<String, Value>, event: Option<&Value>) -> bool {
    pattern.iter().all(|(key, expected)| {
        if key == "$or" {
            return match expected {
                Value::Array(alternatives) => alternatives.iter().any(|alternative| {
                    matches!(alternative, Value::Object(fields) if object_matches(fields, event))
                }),
                _ => false,
            };
        }
        let field = event.and_then(|event| event.get(key));
        match expected {
            Value::Object(nested) => match field {
                // A nested pattern applies to each object of an array.
                Some(Value::Array(items)) => {
                    items.iter().any(|item| object_matches(nested, Some(item)))
                }
                _ => object_matches(nested, field),
            },
            Value::Array(filters) => leaf_matches(filters, field),
            _ => false,
        }
    })
}

fn leaf_matches(filters: &[Value], field: Option<&Value>) -> bool {
    let values: Vec<&Value> = match field {
        None => Vec::new(),
        Some(Value::Array(items)) => items.iter().collect(),
        Some(value) => vec![value],
    };
    filters.iter().any(|filter| {
        if let Some(Value::Bool(should_exist)) = filter.get("exists") {
            let exists = field.is_some_and(|value| !value.is_object());
            return exists == *should_exist;
        }
        values.iter().any(|value| filter_matches(filter, value))
    })
}

fn filter_matches(filter: &Value, value: &Value) -> bool {
    let Value::Object(operator) = filter else {
        return scalar_equals(filter, value);
    };
    let Some((name, argument)) = operator.iter().next() else {
        return false;
    };
    let text = value.as_str();
    match name.as_str() {
        "prefix" => string_test(argument, text, |value, wanted| value.starts_with(wanted)),
        "suffix" => string_test(argument, text, |value, wanted| value.ends_with(wanted)),
        "equals-ignore-case" => one_or_many(argument)
            .any(|wanted| text.is_some_and(|text| eq_ignore_case(text, wanted))),
        "wildcard" => {
            one_or_many(argument).any(|wanted| text.is_some_and(|text| wildcard(wanted, text)))
        }
        "anything-but" => match argument {
            Value::Array(excluded) => !excluded
                .iter()
                .any(|excluded| scalar_equals(excluded, value)),
            Value::Object(_) => !filter_matches(argument, value),
            scalar => !scalar_equals(scalar, value),
        },
        "numeric" => numeric_matches(argument, value),
        _ => false,
    }
}

/// prefix and suffix take a string, or `{"equals-ignore-case": string}`.
fn string_test(argument: &Value, text: Option<&str>, test: fn(&str, &str) -> bool) -> bool {
    let Some(text) = text else {
        return false;
    };
    match argument {
        Value::String(wanted) => test(text, wanted),
        Value::Object(inner) => match inner.get("equals-ignore-case").and_then(Value::as_str) {
            Some(wanted) => test(&text.to_lowercase(), &wanted.to_lowercase()),
            None => false,
        },
        Value::Array(many) => many
            .iter()
            .filter_map(Value::as_str)
            .any(|wanted| test(text, wanted)),
        _ => false,
    }
}

fn one_or_many(argument: &Value) -> impl Iterator<Item = &str> {
    let many: Vec<&str> = match argument {
        Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
        other => other.as_str().into_iter().collect(),
    };
    many.into_iter()
}

fn eq_ignore_case(a: &str, b: &str) -> bool {
    a.to_lowercase() == b.to_lowercase()
}

fn scalar_equals(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        _ => expected == actual,
    }
}

/// `*` matches any run of characters, including none.
fn wildcard(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let [first, middle @ .., last] = parts.as_slice() else {
        return pattern == text;
    };
    if parts.len() == 1 {
        return pattern == text;
    }
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    for part in middle {
        match rest.find(part) {
            Some(index) => rest = &rest[index + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// `{"numeric": [">", 0, "<=", 5]}`: every comparison must hold.
fn numeric_matches(argument: &Value, value: &Value) -> bool {
    let (Value::Array(terms), Some(number)) = (argument, value.as_f64()) else {
        return false;
    };
    terms.chunks(2).all(|pair| match pair {
        [Value::String(operator), bound] => match bound.as_f64() {
            Some(bound) => match operator.as_str() {
                "<" => number < bound,
                "<=" => number <= bound,
                "=" => number == bound,
                ">" => number > bound,
                ">=" => number >= bound,
                _ => false,
            },
            None => false,
        },
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stall_event(state: &str) -> Value {
        json!({
            "version": "0",
            "id": "1",
            "detail-type": "DRS Source Server Data Replication Stalled Change",
            "source": "aws.drs",
            "account": "123456789012",
            "time": "2024-01-01T00:00:00Z",
            "region": "us-east-1",
            "resources": ["arn:aws:drs:us-east-1:123456789012:source-server/s-1"],
            "detail": {"state": state, "lag-seconds": 42, "tags": {"dr:plan": "shop"}}
        })
    }

    #[test]
    fn exact_values_and_nesting() {
        let pattern = json!({"source": ["aws.drs"], "detail": {"state": ["STALLED"]}});
        assert!(matches(&pattern, &stall_event("STALLED")));
        assert!(!matches(&pattern, &stall_event("NOT_STALLED")));
        assert!(matches(&json!({}), &stall_event("STALLED")));
    }

    #[test]
    fn operators() {
        let event = stall_event("STALLED");
        let yes = [
            json!({"detail-type": [{"prefix": "DRS Source"}]}),
            json!({"detail-type": [{"suffix": {"equals-ignore-case": "STALLED CHANGE"}}]}),
            json!({"detail": {"state": [{"anything-but": ["NOT_STALLED"]}]}}),
            json!({"detail": {"lag-seconds": [{"numeric": [">", 10, "<=", 42]}]}}),
            json!({"detail": {"missing": [{"exists": false}]}}),
            json!({"detail": {"state": [{"exists": true}]}}),
            json!({"resources": [{"wildcard": "arn:aws:drs:*:source-server/*"}]}),
            json!({"detail": {"tags": {"dr:plan": ["shop"]}}}),
            json!({"$or": [{"source": ["nope"]}, {"detail": {"state": ["STALLED"]}}]}),
        ];
        for pattern in yes {
            assert!(matches(&pattern, &event), "{pattern} should match");
        }
        let no = [
            json!({"detail": {"state": [{"anything-but": {"prefix": "STALL"}}]}}),
            json!({"detail": {"lag-seconds": [{"numeric": ["<", 10]}]}}),
            json!({"detail": {"state": [{"exists": false}]}}),
            json!({"detail": {"missing": ["x"]}}),
            json!({"resources": [{"wildcard": "arn:aws:ec2:*"}]}),
            json!({"$or": [{"source": ["nope"]}, {"detail": {"state": ["X"]}}]}),
        ];
        for pattern in no {
            assert!(!matches(&pattern, &event), "{pattern} should not match");
        }
    }
}
