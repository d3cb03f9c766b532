//! The generic readers the plan reader is built of (a mapping with known fields, a
//! required or optional field, a name, a whole number, a list, a tag selector), and the
//! checks of single values (AWS IDs, DNS names, Lambda ARNs).

use serde_json::{Map, Value};

use super::Reader;
use crate::issue::{DocPath, did_you_mean};
use crate::plan::Selector;

impl Reader {
    /// The value as a mapping, reporting unknown keys (with a suggestion when one is
    /// a likely typo of a known field).
    pub(super) fn mapping<'v>(
        &mut self,
        value: &'v Value,
        path: &DocPath,
        known: &[&str],
    ) -> Option<&'v Map<String, Value>> {
        let Value::Object(map) = value else {
            self.issues.push(
                path,
                format!(
                    "must be a mapping with fields {}, found {}",
                    known.join(", "),
                    describe(value)
                ),
            );
            return None;
        };
        for key in map.keys().filter(|k| !known.contains(&k.as_str())) {
            let message = match did_you_mean(key, known.iter().copied()) {
                Some(suggestion) => format!("unknown field {key:?}: did you mean {suggestion:?}?"),
                None => format!(
                    "unknown field {key:?}: expected one of {}",
                    known.join(", ")
                ),
            };
            self.issues.push(&path.key(key), message);
        }
        Some(map)
    }

    pub(super) fn required<'v>(
        &mut self,
        map: &'v Map<String, Value>,
        path: &DocPath,
        key: &str,
    ) -> Option<(&'v Value, DocPath)> {
        match self.optional(map, path, key) {
            Some(found) => Some(found),
            None => {
                if !map.contains_key(key) {
                    self.issues.push(&path.key(key), "is required but missing");
                }
                None
            }
        }
    }

    /// A present field; `key:` with no value is reported rather than taken as absent,
    /// because silently ignoring e.g. an empty `dns:` would skip a cutover.
    pub(super) fn optional<'v>(
        &mut self,
        map: &'v Map<String, Value>,
        path: &DocPath,
        key: &str,
    ) -> Option<(&'v Value, DocPath)> {
        let value = map.get(key)?;
        let path = path.key(key);
        if value.is_null() {
            self.issues
                .push(&path, "has no value: give one, or remove the field");
            return None;
        }
        Some((value, path))
    }

    pub(super) fn string(&mut self, value: &Value, path: &DocPath) -> Option<String> {
        match value {
            Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
            Value::String(_) => {
                self.issues.push(path, "is empty");
                None
            }
            other => {
                self.issues
                    .push(path, format!("must be a string, found {}", describe(other)));
                None
            }
        }
    }

    pub(super) fn name(&mut self, value: &Value, path: &DocPath, kind: NameKind) -> Option<String> {
        let name = self.string(value, path)?;
        let extra = kind.extra_chars();
        let valid = name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || extra.contains(c));
        if !valid {
            self.issues.push(
                path,
                format!(
                    "{name:?} is not a valid {} name: use at most 64 letters, digits and {}",
                    kind.label(),
                    kind.extra_description()
                ),
            );
            return None;
        }
        Some(name)
    }

    pub(super) fn whole_number(
        &mut self,
        value: &Value,
        path: &DocPath,
        min: u64,
        max: u64,
        unit: &str,
    ) -> Option<u32> {
        let range = match (min, max < u64::from(u32::MAX)) {
            (_, true) => format!("a whole number of {unit} from {min} to {max}"),
            (0, false) => format!("a whole number of {unit}, 0 or more"),
            _ => format!("a positive whole number of {unit}"),
        };
        let number = match value {
            Value::Number(n) => n,
            other => {
                self.issues
                    .push(path, format!("must be {range}, found {}", describe(other)));
                return None;
            }
        };
        match number.as_u64() {
            Some(n) if n >= min && n <= max => u32::try_from(n).ok(),
            Some(n) if n > max => {
                self.issues
                    .push(path, format!("must be {range}, found {n}"));
                None
            }
            _ => {
                self.issues
                    .push(path, format!("must be {range}, found {number}"));
                None
            }
        }
    }

    pub(super) fn list<'v>(&mut self, value: &'v Value, path: &DocPath) -> Option<&'v [Value]> {
        match value {
            Value::Array(items) => Some(items),
            other => {
                self.issues
                    .push(path, format!("must be a list, found {}", describe(other)));
                None
            }
        }
    }

    pub(super) fn list_of_strings(&mut self, value: &Value, path: &DocPath) -> Vec<String> {
        let items = self.list(value, path).unwrap_or_default();
        items
            .iter()
            .enumerate()
            .filter_map(|(i, v)| self.string(v, &path.index(i)))
            .collect()
    }

    /// A tag selector: a non-empty mapping of tag keys to values. Numbers and booleans
    /// are taken as their text, since YAML turns `dr:wave: 1` into a number.
    pub(super) fn selector(&mut self, value: &Value, path: &DocPath) -> Option<Selector> {
        let Value::Object(map) = value else {
            self.issues.push(
                path,
                format!("must be a mapping of tag keys to values, like {{\"dr:plan\": \"shop\"}}, found {}", describe(value)),
            );
            return None;
        };
        if map.is_empty() {
            self.issues.push(
                path,
                "is empty: an empty selector would match every server; name at least one tag",
            );
            return None;
        }
        let mut selector = Selector::new();
        for (key, v) in map {
            let p = path.key(key);
            if key.trim().is_empty() {
                self.issues.push(&p, "tag key is empty");
                continue;
            }
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                other => {
                    self.issues.push(
                        &p,
                        format!("tag value must be a string, found {}", describe(other)),
                    );
                    continue;
                }
            };
            selector.insert(key.clone(), text);
        }
        Some(selector)
    }
}

#[derive(Clone, Copy)]
pub(super) enum NameKind {
    Plan,
    Wave,
}

impl NameKind {
    pub(super) fn extra_chars(self) -> &'static str {
        match self {
            // Plan names become parts of execution names and S3 keys.
            Self::Plan => "-_",
            Self::Wave => "-_.",
        }
    }
    pub(super) fn extra_description(self) -> &'static str {
        match self {
            Self::Plan => "- or _",
            Self::Wave => "-, _ or .",
        }
    }
    pub(super) fn label(self) -> &'static str {
        match self {
            Self::Plan => "plan",
            Self::Wave => "wave",
        }
    }
}

/// A short description of a value's kind, for "found ..." in messages.
/// An EC2 resource ID: the prefix, then 1 to 32 lowercase letters and digits.
pub(super) fn is_aws_id(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix).is_some_and(|rest| {
        !rest.is_empty()
            && rest.len() <= 32
            && rest
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    })
}

pub(super) fn describe(value: &Value) -> String {
    match value {
        Value::Null => "nothing".into(),
        Value::Bool(b) => format!("{b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string {s:?}"),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a mapping".into(),
    }
}

/// Why `name` is not a DNS name Route 53 would take for an A/AAAA/CNAME record.
pub(crate) fn dns_name_problem(name: &str) -> Option<String> {
    let bare = name.strip_suffix('.').unwrap_or(name);
    if bare.len() > 253 {
        return Some("longer than 253 characters".into());
    }
    let labels: Vec<&str> = bare.split('.').collect();
    if labels.len() < 2 {
        return Some("give the fully qualified name, like shop.example.com".into());
    }
    for (i, label) in labels.iter().enumerate() {
        if label.is_empty() {
            return Some("it has an empty label (two dots in a row, or a leading dot)".into());
        }
        if *label == "*" && i == 0 {
            continue;
        }
        if label.len() > 63 {
            return Some(format!("label {label:?} is longer than 63 characters"));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            return Some(format!(
                "label {label:?} has the character {c:?}; use letters, digits and -"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Some(format!("label {label:?} starts or ends with -"));
        }
    }
    None
}

/// Why `arn` is not the ARN of a Lambda function.
pub(super) fn lambda_arn_problem(arn: &str) -> Option<String> {
    let parts: Vec<&str> = arn.split(':').collect();
    let expected = "expected arn:aws:lambda:REGION:ACCOUNT:function:NAME";
    if parts.len() < 7 || parts.len() > 8 || parts[0] != "arn" || !parts[1].starts_with("aws") {
        return Some(format!("{arn:?} is not a Lambda function ARN: {expected}"));
    }
    if parts[2] != "lambda" || parts[5] != "function" {
        return Some(format!("{arn:?} is not a Lambda function ARN: {expected}"));
    }
    let region_ok = !parts[3].is_empty()
        && parts[3]
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !region_ok {
        return Some(format!("{arn:?} has no valid region: {expected}"));
    }
    if parts[4].len() != 12 || !parts[4].chars().all(|c| c.is_ascii_digit()) {
        return Some(format!(
            "{arn:?} has no valid 12-digit account ID: {expected}"
        ));
    }
    let name = parts[6];
    let name_ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !name_ok {
        return Some(format!("{arn:?} has no valid function name: {expected}"));
    }
    None
}
