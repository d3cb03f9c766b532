//! Reading EventBridge events: the envelope as aws_lambda_events' `EventBridgeEvent`,
//! refused unless it comes from the stack's own account and Region, then the `detail`
//! drplan acts on, every problem named by its field path.

use std::collections::BTreeMap;

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use jiff::Timestamp;
use serde_json::{Map, Value};

use super::{
    ALARM_STATE_CHANGE, AlarmKind, AlarmState, AlarmStateChange, EXECUTION_STATUS_CHANGE,
    ExecutionStatusChange, FAILBACK_STATE_CHANGE, FailbackStateChange, LAUNCH_RESULT, LaunchResult,
    MAX_EVENT_BYTES, REPLICATION_STALLED_CHANGE, ReplicationChange, TriggerEvent,
};

/// Why an event was refused. Each names the field and the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("the event is {bytes} bytes; EventBridge events are at most {MAX_EVENT_BYTES}")]
    TooLarge { bytes: usize },
    #[error("`{field}` is missing")]
    Missing { field: String },
    #[error("`{field}` must be {expected}, found {found}")]
    WrongType {
        field: String,
        expected: &'static str,
        found: &'static str,
    },
    #[error("`{field}`: {problem}")]
    Invalid { field: String, problem: String },
    #[error(
        "unknown event (source {event_source:?}, detail-type {detail_type:?}): drplan handles \
         {ALARM_STATE_CHANGE:?} from aws.cloudwatch and {REPLICATION_STALLED_CHANGE:?} / \
         {LAUNCH_RESULT:?} / {FAILBACK_STATE_CHANGE:?} from aws.drs"
    )]
    Unknown {
        event_source: String,
        detail_type: String,
    },
    #[error(
        "`account` is {found:?}, not this stack's account {expected}: drplan acts only on \
         events of its own account and Region"
    )]
    ForeignAccount { found: String, expected: String },
    #[error(
        "`region` is {found:?}, not this stack's Region {expected}: drplan acts only on \
         events of its own account and Region"
    )]
    ForeignRegion { found: String, expected: String },
}

impl EventError {
    /// The metric dimension value.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "TooLarge",
            Self::Missing { .. } => "MissingField",
            Self::WrongType { .. } => "WrongType",
            Self::Invalid { .. } => "InvalidValue",
            Self::Unknown { .. } => "UnknownDetailType",
            Self::ForeignAccount { .. } => "ForeignAccount",
            Self::ForeignRegion { .. } => "ForeignRegion",
        }
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Field access that reports the path of what is wrong.
struct Fields<'a> {
    map: &'a Map<String, Value>,
    path: &'a str,
}

impl<'a> Fields<'a> {
    fn path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    fn get(&self, key: &str) -> Result<&'a Value, EventError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Err(EventError::Missing {
                field: self.path(key),
            }),
            Some(value) => Ok(value),
        }
    }

    fn text(&self, key: &str) -> Result<&'a str, EventError> {
        let value = self.get(key)?;
        match value.as_str() {
            Some(text) if !text.trim().is_empty() => Ok(text),
            Some(_) => Err(EventError::Invalid {
                field: self.path(key),
                problem: "is empty".into(),
            }),
            None => Err(EventError::WrongType {
                field: self.path(key),
                expected: "a string",
                found: type_name(value),
            }),
        }
    }

    fn optional_text(&self, key: &str) -> Result<Option<&'a str>, EventError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(_) => self.text(key).map(Some),
        }
    }

    fn object(&self, key: &str) -> Result<Fields<'a>, EventError> {
        let value = self.get(key)?;
        value
            .as_object()
            .map(|map| Fields { map, path: "" })
            .ok_or_else(|| EventError::WrongType {
                field: self.path(key),
                expected: "an object",
                found: type_name(value),
            })
    }
}

/// The stack's own account and Region: drplan acts only on their events. EventBridge
/// rules already filter on both; the function checks again because anyone allowed to
/// invoke it can hand it any JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackOrigin {
    pub account: String,
    pub region: String,
}

impl StackOrigin {
    fn check(&self, envelope: &EventBridgeEvent<Value>) -> Result<(), EventError> {
        match envelope.account.as_deref() {
            None => {
                return Err(EventError::Missing {
                    field: "account".into(),
                });
            }
            Some(account) if account != self.account => {
                return Err(EventError::ForeignAccount {
                    found: account.to_owned(),
                    expected: self.account.clone(),
                });
            }
            Some(_) => {}
        }
        match envelope.region.as_deref() {
            None => Err(EventError::Missing {
                field: "region".into(),
            }),
            Some(region) if region != self.region => Err(EventError::ForeignRegion {
                found: region.to_owned(),
                expected: self.region.clone(),
            }),
            Some(_) => Ok(()),
        }
    }
}

/// Reads an EventBridge event (the JSON a rule target receives) and refuses it unless it
/// comes from `home`. The envelope (account, region, source, detail-type, time,
/// resources) is aws_lambda_events' `EventBridgeEvent`; the `detail` is read field by
/// field, each problem named by its path.
pub fn read_event(raw: &Value, home: &StackOrigin) -> Result<TriggerEvent, EventError> {
    let bytes = serde_json::to_vec(raw).map_or(0, |b| b.len());
    if bytes > MAX_EVENT_BYTES {
        return Err(EventError::TooLarge { bytes });
    }
    let map = raw.as_object().ok_or(EventError::WrongType {
        field: "(event)".into(),
        expected: "an object",
        found: type_name(raw),
    })?;
    let envelope: EventBridgeEvent<Value> =
        serde_json::from_value(raw.clone()).map_err(|error| envelope_error(map, &error))?;
    home.check(&envelope)?;
    let not_empty = |field: &str, text: &str| {
        if text.trim().is_empty() {
            Err(EventError::Invalid {
                field: field.to_owned(),
                problem: "is empty".into(),
            })
        } else {
            Ok(())
        }
    };
    let source = envelope.source.as_str();
    let detail_type = envelope.detail_type.as_str();
    not_empty("source", source)?;
    not_empty("detail-type", detail_type)?;
    let event_id = envelope.id.clone().unwrap_or_default();
    let resources = envelope.resources.clone().unwrap_or_default();
    let detail_map = match &envelope.detail {
        Value::Object(map) => map,
        Value::Null => {
            return Err(EventError::Missing {
                field: "detail".into(),
            });
        }
        other => {
            return Err(EventError::WrongType {
                field: "detail".into(),
                expected: "an object",
                found: type_name(other),
            });
        }
    };
    let detail = Fields {
        map: detail_map,
        path: "detail",
    };
    match (source, detail_type) {
        ("aws.cloudwatch", ALARM_STATE_CHANGE) => {
            read_alarm(event_id, &resources, &detail).map(TriggerEvent::Alarm)
        }
        ("aws.drs", REPLICATION_STALLED_CHANGE) => {
            let (source_server_arn, source_server_id) = source_server(&resources)?;
            let state = detail.text("state")?;
            let stalled = match state {
                "STALLED" => true,
                "NOT_STALLED" => false,
                other => {
                    return Err(EventError::Invalid {
                        field: "detail.state".into(),
                        problem: format!("{other:?} is not STALLED or NOT_STALLED"),
                    });
                }
            };
            Ok(TriggerEvent::Replication(ReplicationChange {
                event_id,
                time: envelope
                    .time
                    .and_then(|t| {
                        Timestamp::new(t.timestamp(), t.timestamp_subsec_nanos() as i32).ok()
                    })
                    .map(|t| t.to_string())
                    .unwrap_or_default(),
                region: envelope.region.clone().unwrap_or_default(),
                source_server_id,
                source_server_arn,
                stalled,
            }))
        }
        ("aws.drs", FAILBACK_STATE_CHANGE) => {
            Ok(TriggerEvent::FailbackState(FailbackStateChange {
                event_id,
                recovery_instance_id: recovery_instance(&resources)?,
                state: detail.text("state")?.to_owned(),
            }))
        }
        ("aws.drs", LAUNCH_RESULT) => {
            let (_, source_server_id) = source_server(&resources)?;
            let job_id = detail.optional_text("job-id")?;
            if let Some(job_id) = job_id.filter(|id| !crate::launch_wait::is_job_id(id)) {
                return Err(EventError::Invalid {
                    field: "detail.job-id".into(),
                    problem: format!("{job_id:?} is not a DRS job ID (drsjob-…)"),
                });
            }
            Ok(TriggerEvent::LaunchResult(LaunchResult {
                event_id,
                source_server_id,
                state: detail.text("state")?.to_owned(),
                job_id: job_id.map(str::to_owned),
            }))
        }
        ("aws.states", EXECUTION_STATUS_CHANGE) => {
            let optional = |key: &str| -> Result<Option<String>, EventError> {
                Ok(detail.optional_text(key)?.map(str::to_owned))
            };
            let start_date = match detail.map.get("startDate") {
                None | Some(Value::Null) => None,
                Some(value) => Some(value.as_i64().ok_or(EventError::WrongType {
                    field: "detail.startDate".into(),
                    expected: "epoch milliseconds",
                    found: type_name(value),
                })?),
            };
            Ok(TriggerEvent::ExecutionStatus(ExecutionStatusChange {
                event_id,
                execution_arn: detail.text("executionArn")?.to_owned(),
                state_machine_arn: detail.text("stateMachineArn")?.to_owned(),
                name: detail.text("name")?.to_owned(),
                status: detail.text("status")?.to_owned(),
                input: optional("input")?.and_then(|text| serde_json::from_str(&text).ok()),
                start_date,
                error: optional("error")?,
                cause: optional("cause")?,
            }))
        }
        _ => Err(EventError::Unknown {
            event_source: source.to_owned(),
            detail_type: detail_type.to_owned(),
        }),
    }
}

/// Names the envelope field `EventBridgeEvent` refused: serde says what is wrong but not
/// where, so each field present is tried alone on an otherwise minimal envelope.
fn envelope_error(map: &Map<String, Value>, error: &serde_json::Error) -> EventError {
    for field in ["source", "detail-type", "detail"] {
        if map.get(field).is_none_or(Value::is_null) {
            return EventError::Missing {
                field: field.to_owned(),
            };
        }
    }
    let minimal = serde_json::json!({"source": "-", "detail-type": "-", "detail": {}});
    for (field, value) in map.iter().filter(|(field, _)| *field != "detail") {
        let mut probe = minimal.clone();
        probe[field.as_str()] = value.clone();
        if let Err(problem) = serde_json::from_value::<EventBridgeEvent<Value>>(probe) {
            return EventError::Invalid {
                field: field.clone(),
                problem: problem.to_string(),
            };
        }
    }
    EventError::Invalid {
        field: "(event)".into(),
        problem: error.to_string(),
    }
}

/// The source server's ARN and ID from `resources` (`arn:aws:drs:REGION:ACCOUNT:source-server/s-…`).
/// The recovery instance's ID from `resources[0]`, its ARN
/// (`arn:aws:drs:REGION:ACCOUNT:recovery-instance/i-…`).
fn recovery_instance(resources: &[String]) -> Result<String, EventError> {
    let arn = resources.first().ok_or_else(|| EventError::Missing {
        field: "resources[0] (the recovery instance's ARN)".into(),
    })?;
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let id = match parts.as_slice() {
        ["arn", _, "drs", _, _, resource] => resource.strip_prefix("recovery-instance/"),
        _ => None,
    }
    .filter(|id| {
        id.strip_prefix("i-")
            .is_some_and(|hex| !hex.is_empty() && hex.chars().all(|c| c.is_ascii_alphanumeric()))
    });
    id.map(str::to_owned).ok_or_else(|| EventError::Invalid {
        field: "resources[0]".into(),
        problem: format!(
            "{arn:?} is not a DRS recovery instance ARN (arn:aws:drs:REGION:ACCOUNT:recovery-instance/i-…)"
        ),
    })
}

fn source_server(resources: &[String]) -> Result<(String, String), EventError> {
    let arn = resources.first().ok_or_else(|| EventError::Missing {
        field: "resources[0] (the source server's ARN)".into(),
    })?;
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let id = match parts.as_slice() {
        ["arn", _, "drs", _, _, resource] => resource.strip_prefix("source-server/"),
        _ => None,
    }
    .filter(|id| {
        id.strip_prefix("s-")
            .is_some_and(|hex| !hex.is_empty() && hex.chars().all(|c| c.is_ascii_alphanumeric()))
    });
    match id {
        Some(id) => Ok((arn.clone(), id.to_owned())),
        None => Err(EventError::Invalid {
            field: "resources[0]".into(),
            problem: format!(
                "{arn:?} is not a DRS source server ARN (arn:aws:drs:REGION:ACCOUNT:source-server/s-…)"
            ),
        }),
    }
}

fn read_alarm(
    event_id: String,
    resources: &[String],
    detail: &Fields<'_>,
) -> Result<AlarmStateChange, EventError> {
    let alarm_name = detail.text("alarmName")?.to_owned();
    let state = detail.object("state")?;
    let state = Fields {
        map: state.map,
        path: "detail.state",
    };
    let value = state.text("value")?;
    let state_value = AlarmState::parse(value).ok_or_else(|| EventError::Invalid {
        field: "detail.state.value".into(),
        problem: format!("{value:?} is not ALARM, OK or INSUFFICIENT_DATA"),
    })?;
    let state_timestamp = state.text("timestamp")?.to_owned();
    let reason = state
        .optional_text("reason")?
        .unwrap_or_default()
        .to_owned();
    let previous_state = match detail.map.get("previousState") {
        Some(Value::Object(previous)) => previous
            .get("value")
            .and_then(Value::as_str)
            .and_then(AlarmState::parse),
        _ => None,
    };
    let configuration = detail.map.get("configuration").and_then(Value::as_object);
    let kind = match configuration {
        Some(c) if c.contains_key("alarmRule") => AlarmKind::Composite,
        Some(c)
            if c.get("metrics")
                .and_then(Value::as_array)
                .is_some_and(|metrics| metrics.iter().any(|m| m.get("expression").is_some())) =>
        {
            AlarmKind::MetricMath
        }
        _ => AlarmKind::Metric,
    };
    let mut tags = BTreeMap::new();
    if let Some(value) = detail.map.get("alarmTags").filter(|v| !v.is_null()) {
        let map = value.as_object().ok_or(EventError::WrongType {
            field: "detail.alarmTags".into(),
            expected: "an object of tag names to values",
            found: type_name(value),
        })?;
        for (key, value) in map {
            let text = value.as_str().ok_or(EventError::WrongType {
                field: format!("detail.alarmTags.{key}"),
                expected: "a string",
                found: type_name(value),
            })?;
            tags.insert(key.clone(), text.to_owned());
        }
    }
    let alarm_arn = resources
        .iter()
        .find(|arn| arn.starts_with("arn:") && arn.contains(":alarm:"))
        .cloned();
    Ok(AlarmStateChange {
        event_id,
        alarm_name,
        alarm_arn,
        kind,
        state: state_value,
        previous_state,
        state_timestamp,
        reason,
        tags,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trigger::tests::{alarm, alarm_event, home};
    use serde_json::json;

    /// `event` as this stack's account and Region would send it.
    fn from_home(mut event: Value) -> Value {
        event["account"] = json!("123456789012");
        event["region"] = json!("us-east-1");
        event
    }

    #[test]
    fn reads_the_documented_alarm_and_its_kind() {
        let a = alarm("shop-primary-down", "2026-11-28T03:00:00.000+0000");
        assert_eq!(a.state, AlarmState::Alarm);
        assert_eq!(a.previous_state, Some(AlarmState::Ok));
        assert_eq!(a.kind, AlarmKind::Metric);
        assert_eq!(
            a.alarm_arn.as_deref(),
            Some("arn:aws:cloudwatch:us-east-1:123456789012:alarm:shop-primary-down")
        );
        let mut composite = alarm_event("region-down", "ALARM", "2026-11-28T03:00:00.000+0000");
        composite["detail"]["configuration"] = json!({"alarmRule": "ALARM(a) OR ALARM(b)"});
        let Ok(TriggerEvent::Alarm(c)) = read_event(&composite, &home()) else {
            panic!("composite")
        };
        assert_eq!(c.kind, AlarmKind::Composite);
        let mut math = alarm_event("error-rate", "ALARM", "2026-11-28T03:00:00.000+0000");
        math["detail"]["configuration"]["metrics"]
            .as_array_mut()
            .expect("metrics")
            .push(json!({"id": "e1", "expression": "m1 * 100", "returnData": true}));
        let Ok(TriggerEvent::Alarm(m)) = read_event(&math, &home()) else {
            panic!("math")
        };
        assert_eq!(m.kind, AlarmKind::MetricMath);
    }

    #[test]
    fn bad_events_name_the_field_and_the_problem() {
        let mut no_state = alarm_event("a", "ALARM", "t");
        no_state["detail"]
            .as_object_mut()
            .expect("detail")
            .remove("state");
        assert_eq!(
            read_event(&no_state, &home()).unwrap_err().to_string(),
            "`detail.state` is missing"
        );
        let mut state_text = alarm_event("a", "ALARM", "t");
        state_text["detail"]["state"] = json!("ALARM");
        assert_eq!(
            read_event(&state_text, &home()).unwrap_err().to_string(),
            "`detail.state` must be an object, found a string"
        );
        let bad_value = alarm_event("a", "ALARMING", "t");
        assert!(
            read_event(&bad_value, &home())
                .unwrap_err()
                .to_string()
                .contains("detail.state.value")
        );
        let unknown = from_home(
            json!({"source": "aws.cloudwatch", "detail-type": "CloudWatch Alarm Configuration Change", "detail": {}}),
        );
        assert_eq!(
            read_event(&unknown, &home()).unwrap_err().reason(),
            "UnknownDetailType"
        );
        let bad_arn = from_home(
            json!({"source": "aws.drs", "detail-type": REPLICATION_STALLED_CHANGE, "resources": ["not-an-arn"], "detail": {"state": "STALLED"}}),
        );
        let error = read_event(&bad_arn, &home()).unwrap_err();
        assert!(error.to_string().contains("resources[0]"), "{error}");
        let none = from_home(
            json!({"source": "aws.drs", "detail-type": REPLICATION_STALLED_CHANGE, "resources": [], "detail": {"state": "STALLED"}}),
        );
        assert_eq!(
            read_event(&none, &home()).unwrap_err().reason(),
            "MissingField"
        );
        let mut huge = alarm_event("a", "ALARM", "t");
        huge["detail"]["state"]["reason"] = json!("x".repeat(MAX_EVENT_BYTES));
        assert_eq!(read_event(&huge, &home()).unwrap_err().reason(), "TooLarge");
        assert_eq!(
            read_event(&json!([1]), &home()).unwrap_err().reason(),
            "WrongType"
        );
    }

    #[test]
    fn a_bad_envelope_names_its_field() {
        let refused = |edit: &dyn Fn(&mut Value)| {
            let mut event = alarm_event("shop-primary-down", "ALARM", "t");
            edit(&mut event);
            read_event(&event, &home())
                .expect_err("refused")
                .to_string()
        };
        assert_eq!(
            refused(&|e| {
                e.as_object_mut().expect("event").remove("source");
            }),
            "`source` is missing"
        );
        assert_eq!(
            refused(&|e| e["detail-type"] = Value::Null),
            "`detail-type` is missing"
        );
        assert_eq!(refused(&|e| e["source"] = json!(" ")), "`source`: is empty");
        let time = refused(&|e| e["time"] = json!("yesterday"));
        assert!(time.starts_with("`time`: "), "{time}");
        let resources = refused(&|e| e["resources"] = json!([1]));
        assert!(
            resources.starts_with("`resources`: invalid type: integer"),
            "{resources}"
        );
        let account = refused(&|e| e["account"] = json!(123_456_789_012_u64));
        assert!(account.starts_with("`account`: invalid type"), "{account}");
        assert_eq!(
            refused(&|e| e["detail"] = json!("ALARM")),
            "`detail` must be an object, found a string"
        );
    }

    #[test]
    fn only_events_of_the_stacks_account_and_region_are_read() {
        let ours = alarm_event("shop-primary-down", "ALARM", "2026-11-28T03:00:00.000+0000");
        assert!(matches!(
            read_event(&ours, &home()),
            Ok(TriggerEvent::Alarm(_))
        ));
        let mut foreign = ours.clone();
        foreign["account"] = json!("999999999999");
        let error = read_event(&foreign, &home()).expect_err("another account");
        assert_eq!(error.reason(), "ForeignAccount");
        assert!(
            error.to_string().contains("\"999999999999\"")
                && error.to_string().contains("123456789012"),
            "{error}"
        );
        let mut elsewhere = ours.clone();
        elsewhere["region"] = json!("eu-west-1");
        let error = read_event(&elsewhere, &home()).expect_err("another Region");
        assert_eq!(error.reason(), "ForeignRegion");
        assert!(error.to_string().contains("us-east-1"), "{error}");
        // Without them, nothing says the event is ours: refused too.
        for field in ["account", "region"] {
            let mut bare = ours.clone();
            bare.as_object_mut().expect("event").remove(field);
            assert_eq!(
                read_event(&bare, &home()).expect_err("no origin"),
                EventError::Missing {
                    field: field.to_owned()
                }
            );
        }
        // The origin is checked before the content: a broken foreign event is foreign.
        foreign["detail"] = json!({});
        assert_eq!(
            read_event(&foreign, &home()).expect_err("foreign").reason(),
            "ForeignAccount"
        );
    }

    #[test]
    fn reads_stall_and_launch_events_with_the_server_from_the_arn() {
        let stall = from_home(json!({"id": "e1", "time": "2026-11-28T03:00:00Z",
            "source": "aws.drs", "detail-type": REPLICATION_STALLED_CHANGE,
            "resources": ["arn:aws:drs:us-east-1:123456789012:source-server/s-1234567890abcdef0"],
            "detail": {"state": "STALLED"}}));
        let Ok(TriggerEvent::Replication(change)) = read_event(&stall, &home()) else {
            panic!("stall")
        };
        assert_eq!(change.source_server_id, "s-1234567890abcdef0");
        assert!(change.stalled);
        assert_eq!(change.time, "2026-11-28T03:00:00Z");
        assert_eq!(change.region, "us-east-1");
        let failback = from_home(
            json!({"source": "aws.drs", "detail-type": FAILBACK_STATE_CHANGE,
            "resources": ["arn:aws:drs:us-east-1:123456789012:recovery-instance/i-0123456789abcdef0"],
            "detail": {"state": "FAILBACK_COMPLETED"}}),
        );
        let Ok(TriggerEvent::FailbackState(change)) = read_event(&failback, &home()) else {
            panic!("a failback state change reads as one");
        };
        assert_eq!(change.recovery_instance_id, "i-0123456789abcdef0");
        assert!(change.launch_settled());
        let mut not_an_instance = failback.clone();
        not_an_instance["resources"] =
            json!(["arn:aws:drs:us-east-1:123456789012:source-server/s-1234567890abcdef0"]);
        let refused = read_event(&not_an_instance, &home())
            .unwrap_err()
            .to_string();
        assert!(
            refused.contains("is not a DRS recovery instance ARN"),
            "{refused}"
        );

        let launch = from_home(json!({"source": "aws.drs", "detail-type": LAUNCH_RESULT,
            "resources": ["arn:aws:drs:us-east-1:123456789012:source-server/s-1234567890abcdef0"],
            "detail": {"state": "RECOVERY_LAUNCH_SUCCEEDED", "job-id": "drsjob-1"}}));
        let Ok(TriggerEvent::LaunchResult(result)) = read_event(&launch, &home()) else {
            panic!("launch")
        };
        assert_eq!(result.job_id.as_deref(), Some("drsjob-1"));
    }

    #[test]
    fn reads_the_documented_samples() {
        let sample = |name: &str| -> Value {
            let path = format!("{}/../events/{name}", env!("CARGO_MANIFEST_DIR"));
            let text = std::fs::read_to_string(&path).expect("the sample");
            serde_json::from_str(&text).expect("sample JSON")
        };
        for name in [
            "alarm-state-change-alarm.json",
            "alarm-state-change-composite.json",
            "alarm-state-change-metric-math.json",
            "alarm-state-change-tagged.json",
            "drs-replication-stalled.json",
            "drs-launch-result-succeeded.json",
        ] {
            assert!(read_event(&sample(name), &home()).is_ok(), "{name}");
        }
    }

    #[test]
    fn reads_the_documented_execution_status_change() {
        let sample: Value =
            serde_json::from_str(include_str!("../../../events/sfn-execution-aborted.json"))
                .expect("sample JSON");
        let Ok(TriggerEvent::ExecutionStatus(change)) = read_event(&sample, &home()) else {
            panic!("not an execution status change")
        };
        assert_eq!(change.status, "ABORTED");
        assert!(change.ended_abnormally());
        assert_eq!(change.plan().as_deref(), Some("shop"));
        assert_eq!(change.start_date, Some(1_764_298_800_000));
        assert_eq!(change.error.as_deref(), Some("Stopped"));
        assert!(
            change
                .state_machine_arn
                .ends_with(":stateMachine:drplan-recovery")
        );
        // An inline plan is named by its document; a succeeded run needs nothing.
        let mut inline = sample.clone();
        inline["detail"]["input"] = json!("{\"plan\": {\"name\": \"web\"}, \"mode\": \"drill\"}");
        inline["detail"]["status"] = json!("SUCCEEDED");
        let Ok(TriggerEvent::ExecutionStatus(change)) = read_event(&inline, &home()) else {
            panic!("inline")
        };
        assert_eq!(change.plan().as_deref(), Some("web"));
        assert!(!change.ended_abnormally());
        // A start date that is not a number is named.
        let mut bad = sample;
        bad["detail"]["startDate"] = json!("yesterday");
        let error = read_event(&bad, &home()).expect_err("bad startDate");
        assert!(error.to_string().contains("detail.startDate"), "{error}");
    }
}
