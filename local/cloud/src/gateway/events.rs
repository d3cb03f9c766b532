//! EventBridge PutEvents, delivered the way EventBridge does it. moto stores rules and
//! targets but cannot deliver to Lambda or Step Functions targets (it answers PutEvents
//! with HTTP 500 when a matching rule has one), so the gateway answers PutEvents itself:
//! it asks moto for the bus's rules and targets, matches the patterns, delivers to every
//! target, and keeps what it did in a journal (`GET /_drplan/gateway/events`).

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use hyper::{Method, Response, StatusCode, header};
use serde::Serialize;
use serde_json::{Value, json};

use super::{GatewayState, JOURNAL_CAPACITY, error_response, json_response, lambda};
use crate::error::{LocalCloudError, Result};
use crate::event_pattern;
use crate::ids::{iso8601_utc, now_epoch_seconds, random_uuid};
use crate::upstream::AwsClient;

/// EventBridge's limit on entries in one PutEvents call.
const MAX_ENTRIES: usize = 10;

/// One event the gateway accepted, and where it went.
#[derive(Clone, Debug, Serialize)]
pub struct JournalEntry {
    pub event_bus: String,
    pub event: Value,
    pub deliveries: Vec<Delivery>,
}

/// One target an event was sent to.
#[derive(Clone, Debug, Serialize)]
pub struct Delivery {
    pub rule: String,
    pub target_id: String,
    pub target_arn: String,
    /// `delivered`, `invoked asynchronously`, `unsupported target`, or `failed: ...`.
    pub outcome: String,
}

/// `GET` lists the journal, `DELETE` empties it.
pub(super) fn control(state: &GatewayState, method: &Method, path: &str) -> Response<Body> {
    if path.trim_end_matches('/') != "/_drplan/gateway/events" {
        return error_response(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            &format!("no such gateway endpoint: {path} (there is /_drplan/gateway/events)"),
        );
    }
    let mut journal = match state.journal.lock() {
        Ok(journal) => journal,
        Err(poisoned) => poisoned.into_inner(),
    };
    match *method {
        Method::GET => json_response(StatusCode::OK, &json!({ "events": *journal })),
        Method::DELETE => {
            journal.clear();
            json_response(StatusCode::OK, &json!({ "events": [] }))
        }
        _ => error_response(
            StatusCode::METHOD_NOT_ALLOWED,
            "ValidationException",
            "use GET or DELETE",
        ),
    }
}

pub(super) async fn put_events(
    state: &Arc<GatewayState>,
    region: &str,
    body: &Bytes,
) -> Response<Body> {
    let request: Value = match serde_json::from_slice(body) {
        Ok(request) => request,
        Err(error) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                "SerializationException",
                &format!("PutEvents input is not JSON: {error}"),
            );
        }
    };
    let entries = request
        .get("Entries")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if entries.is_empty() || entries.len() > MAX_ENTRIES {
        return error_response(
            StatusCode::BAD_REQUEST,
            "ValidationException",
            "1 validation error detected: Value at 'entries' failed to satisfy constraint: \
             Member must have length less than or equal to 10 and greater than or equal to 1",
        );
    }
    let moto = AwsClient::new(state.http.clone(), &state.upstreams.moto, region);
    let mut results = Vec::with_capacity(entries.len());
    let mut failed = 0;
    for entry in &entries {
        match build_event(entry, &state.upstreams.account_id, region) {
            Ok((event_bus, event)) => match deliver(state, &moto, &event_bus, &event).await {
                Ok(deliveries) => {
                    if state.log_requests {
                        eprintln!(
                            "gateway: event {} ({}) on bus {event_bus}: {} deliveries",
                            event["id"],
                            event["detail-type"],
                            deliveries.len()
                        );
                    }
                    results.push(json!({ "EventId": event["id"] }));
                    record(state, event_bus, event, deliveries);
                }
                Err(error) => {
                    failed += 1;
                    results.push(json!({
                        "ErrorCode": "InternalFailure",
                        "ErrorMessage": error.to_string(),
                    }));
                }
            },
            Err((code, message)) => {
                failed += 1;
                results.push(json!({ "ErrorCode": code, "ErrorMessage": message }));
            }
        }
    }
    let mut response = json_response(
        StatusCode::OK,
        &json!({ "FailedEntryCount": failed, "Entries": results }),
    );
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    if let Ok(request_id) = header::HeaderValue::from_str(&random_uuid()) {
        response
            .headers_mut()
            .insert("x-amzn-requestid", request_id);
    }
    response
}

/// Step Functions emits `Step Functions Execution Status Change` when an execution ends;
/// moto does not. The gateway stands in for the one drplan relies on, a stop
/// (StopExecution): it reads the execution back from moto and delivers the event
/// EventBridge would put on the default bus, in the shape AWS documents.
pub(super) async fn execution_stopped(state: Arc<GatewayState>, region: String, request: Bytes) {
    let request: Value = serde_json::from_slice(&request).unwrap_or_default();
    let Some(arn) = request
        .get("executionArn")
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        return;
    };
    let moto = AwsClient::new(state.http.clone(), &state.upstreams.moto, &region);
    let described = match moto
        .json(
            "states",
            "1.0",
            "AWSStepFunctions",
            "DescribeExecution",
            &json!({ "executionArn": arn }),
        )
        .await
    {
        Ok(described) => described,
        Err(error) => {
            eprintln!("gateway: no status-change event for {arn}: {error}");
            return;
        }
    };
    // awsJson dates are epoch seconds; the event carries epoch milliseconds.
    let millis = |value: Option<&Value>| value.and_then(Value::as_f64).map(|s| (s * 1000.0) as i64);
    let stop_date = now_epoch_seconds() * 1000;
    // The stop is what the event reports, whatever moto's execution shows yet (its
    // interpreter ends the run a moment later, and keeps no error or cause for it).
    let detail = json!({
        "executionArn": arn,
        "stateMachineArn": described.get("stateMachineArn"),
        "name": described.get("name"),
        "status": "ABORTED",
        "startDate": millis(described.get("startDate")),
        "stopDate": stop_date,
        "input": described.get("input"),
        "output": null,
        "error": request.get("error"),
        "cause": request.get("cause"),
    });
    let event = json!({
        "version": "0",
        "id": random_uuid(),
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": state.upstreams.account_id,
        "time": iso8601_utc(now_epoch_seconds()),
        "region": region,
        "resources": [arn],
        "detail": detail,
    });
    match deliver(&state, &moto, "default", &event).await {
        Ok(deliveries) => record(&state, "default".to_owned(), event, deliveries),
        Err(error) => eprintln!("gateway: status-change event of {arn} not delivered: {error}"),
    }
}

pub(super) fn record(
    state: &GatewayState,
    event_bus: String,
    event: Value,
    deliveries: Vec<Delivery>,
) {
    let mut journal = match state.journal.lock() {
        Ok(journal) => journal,
        Err(poisoned) => poisoned.into_inner(),
    };
    if journal.len() >= JOURNAL_CAPACITY {
        journal.remove(0);
    }
    journal.push(JournalEntry {
        event_bus,
        event,
        deliveries,
    });
}

/// The event EventBridge builds from a PutEvents entry, and the bus it goes to.
fn build_event(
    entry: &Value,
    account_id: &str,
    region: &str,
) -> std::result::Result<(String, Value), (&'static str, String)> {
    let text = |field: &str| {
        entry
            .get(field)
            .and_then(Value::as_str)
            .filter(|value| !value.is_empty())
    };
    let missing = |field: &str| {
        (
            "InvalidArgument",
            format!("Parameter {field} is not valid. Reason: {field} is a required argument."),
        )
    };
    let source = text("Source").ok_or_else(|| missing("Source"))?;
    let detail_type = text("DetailType").ok_or_else(|| missing("DetailType"))?;
    let detail_text = text("Detail").ok_or_else(|| missing("Detail"))?;
    let detail: Value = serde_json::from_str(detail_text)
        .ok()
        .filter(Value::is_object)
        .ok_or(("MalformedDetail", "Detail is malformed.".to_string()))?;
    let time = match entry.get("Time") {
        // awsJson sends timestamps as epoch seconds.
        Some(Value::Number(seconds)) => seconds
            .as_f64()
            .map(|seconds| iso8601_utc(seconds as i64))
            .unwrap_or_else(|| iso8601_utc(now_epoch_seconds())),
        Some(Value::String(time)) => time.clone(),
        _ => iso8601_utc(now_epoch_seconds()),
    };
    let event_bus = bus_name(text("EventBusName").unwrap_or("default"));
    let event = json!({
        "version": "0",
        "id": random_uuid(),
        "detail-type": detail_type,
        "source": source,
        "account": account_id,
        "time": time,
        "region": region,
        "resources": entry.get("Resources").cloned().unwrap_or_else(|| json!([])),
        "detail": detail,
    });
    Ok((event_bus, event))
}

/// `arn:aws:events:REGION:ACCOUNT:event-bus/NAME` or `NAME` → `NAME`.
fn bus_name(name_or_arn: &str) -> String {
    match name_or_arn.split_once(":event-bus/") {
        Some((_, name)) => name.to_string(),
        None => name_or_arn.to_string(),
    }
}

pub(super) async fn deliver(
    state: &Arc<GatewayState>,
    moto: &AwsClient,
    event_bus: &str,
    event: &Value,
) -> Result<Vec<Delivery>> {
    let mut deliveries = Vec::new();
    for rule in list_rules(moto, event_bus).await? {
        let name = rule.get("Name").and_then(Value::as_str).unwrap_or_default();
        let enabled = rule.get("State").and_then(Value::as_str) == Some("ENABLED");
        // Scheduled rules have no pattern; they never match put events.
        let Some(pattern_text) = rule.get("EventPattern").and_then(Value::as_str) else {
            continue;
        };
        let Ok(pattern) = serde_json::from_str::<Value>(pattern_text) else {
            continue;
        };
        if !enabled || !event_pattern::matches(&pattern, event) {
            continue;
        }
        for target in list_targets(moto, event_bus, name).await? {
            let target_id = target.get("Id").and_then(Value::as_str).unwrap_or_default();
            let target_arn = target
                .get("Arn")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let outcome = match target_input(&target, event, name) {
                Ok(input) => send_to_target(state, moto, &target, target_arn, input, event).await,
                Err(problem) => format!("failed: {problem}"),
            };
            deliveries.push(Delivery {
                rule: name.to_string(),
                target_id: target_id.to_string(),
                target_arn: target_arn.to_string(),
                outcome,
            });
        }
    }
    Ok(deliveries)
}

async fn list_rules(moto: &AwsClient, event_bus: &str) -> Result<Vec<Value>> {
    let mut rules = Vec::new();
    let mut next_token: Option<String> = None;
    loop {
        let mut input = json!({ "EventBusName": event_bus });
        if let Some(token) = &next_token {
            input["NextToken"] = json!(token);
        }
        let page = moto
            .json("events", "1.1", "AWSEvents", "ListRules", &input)
            .await?;
        rules.extend(
            page.get("Rules")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
        );
        next_token = page
            .get("NextToken")
            .and_then(Value::as_str)
            .map(str::to_string);
        if next_token.is_none() {
            return Ok(rules);
        }
    }
}

async fn list_targets(moto: &AwsClient, event_bus: &str, rule: &str) -> Result<Vec<Value>> {
    let mut targets = Vec::new();
    let mut next_token: Option<String> = None;
    loop {
        let mut input = json!({ "Rule": rule, "EventBusName": event_bus });
        if let Some(token) = &next_token {
            input["NextToken"] = json!(token);
        }
        let page = moto
            .json("events", "1.1", "AWSEvents", "ListTargetsByRule", &input)
            .await?;
        targets.extend(
            page.get("Targets")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
        );
        next_token = page
            .get("NextToken")
            .and_then(Value::as_str)
            .map(str::to_string);
        if next_token.is_none() {
            return Ok(targets);
        }
    }
}

/// What the target receives: its constant `Input`, the part of the event its `InputPath`
/// selects, its `InputTransformer`'s template filled in, or else the whole event.
fn target_input(target: &Value, event: &Value, rule: &str) -> std::result::Result<String, String> {
    if let Some(input) = target.get("Input").and_then(Value::as_str) {
        return Ok(input.to_string());
    }
    if let Some(path) = target.get("InputPath").and_then(Value::as_str) {
        return json_path(event, path)
            .map(Value::to_string)
            .ok_or_else(|| format!("InputPath {path} selects nothing"));
    }
    if let Some(transformer) = target.get("InputTransformer") {
        return Ok(fill_template(transformer, event, rule));
    }
    Ok(event.to_string())
}

/// The subset of JSONPath EventBridge targets use: `$`, `$.a.b`.
fn json_path<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    let rest = path.strip_prefix('$')?;
    rest.split('.')
        .filter(|key| !key.is_empty())
        .try_fold(value, |node, key| node.get(key))
}

/// Fills `<name>` placeholders: inside a JSON string a value goes in as text, anywhere
/// else as JSON, as EventBridge does.
fn fill_template(transformer: &Value, event: &Value, rule: &str) -> String {
    let mut values: HashMap<String, Value> = HashMap::new();
    if let Some(paths) = transformer.get("InputPathsMap").and_then(Value::as_object) {
        for (name, path) in paths {
            let value = path
                .as_str()
                .and_then(|path| json_path(event, path))
                .cloned()
                .unwrap_or(Value::Null);
            values.insert(name.clone(), value);
        }
    }
    values.insert("aws.events.event".to_string(), event.clone());
    values.insert("aws.events.event.json".to_string(), event.clone());
    values.insert("aws.events.rule-name".to_string(), json!(rule));
    let template = transformer
        .get("InputTemplate")
        .and_then(Value::as_str)
        .unwrap_or_default();

    let mut filled = String::with_capacity(template.len());
    let mut in_string = false;
    let mut escaped = false;
    let mut rest = template;
    while let Some(character) = rest.chars().next() {
        if character == '<'
            && let Some(end) = rest.find('>')
            && let Some(value) = values.get(&rest[1..end])
        {
            if in_string {
                filled.push_str(&text_in_json_string(value));
            } else {
                filled.push_str(&value.to_string());
            }
            rest = &rest[end + 1..];
            continue;
        }
        if in_string && escaped {
            escaped = false;
        } else if in_string && character == '\\' {
            escaped = true;
        } else if character == '"' {
            in_string = !in_string;
        }
        filled.push(character);
        rest = &rest[character.len_utf8()..];
    }
    filled
}

/// A value as it reads inside a JSON string: strings without their quotes, escaped.
fn text_in_json_string(value: &Value) -> String {
    let text = match value {
        Value::String(string) => string.clone(),
        other => other.to_string(),
    };
    let quoted = Value::String(text).to_string();
    quoted[1..quoted.len() - 1].to_string()
}

async fn send_to_target(
    state: &Arc<GatewayState>,
    moto: &AwsClient,
    target: &Value,
    target_arn: &str,
    input: String,
    event: &Value,
) -> String {
    let arn: Vec<&str> = target_arn.splitn(6, ':').collect();
    let (service, region, account, resource) = match arn.as_slice() {
        ["arn", _, service, region, account, resource] => (*service, *region, *account, *resource),
        _ => return format!("failed: not an ARN: {target_arn}"),
    };
    let target_moto = AwsClient::new(state.http.clone(), moto.endpoint(), region);
    let result = match service {
        "sqs" => send_to_queue(&target_moto, target, account, resource, input, event).await,
        "sns" => target_moto
            .query(
                "sns",
                "2010-03-31",
                "Publish",
                &[("TopicArn", target_arn), ("Message", &input)],
            )
            .await
            .map(|_| "delivered".to_string()),
        "states" => target_moto
            .json(
                "states",
                "1.0",
                "AWSStepFunctions",
                "StartExecution",
                &json!({ "stateMachineArn": target_arn, "input": input }),
            )
            .await
            .map(
                |answer| match answer.get("executionArn").and_then(Value::as_str) {
                    Some(execution) => format!("delivered: started {execution}"),
                    None => "delivered".to_string(),
                },
            ),
        "lambda" => {
            lambda::invoke_in_background(
                state,
                &lambda::function_name(target_arn),
                Bytes::from(input),
            );
            Ok("invoked asynchronously".to_string())
        }
        _ => Ok("unsupported target".to_string()),
    };
    result.unwrap_or_else(|error| format!("failed: {error}"))
}

async fn send_to_queue(
    moto: &AwsClient,
    target: &Value,
    account: &str,
    queue_name: &str,
    input: String,
    event: &Value,
) -> Result<String> {
    let url = moto
        .json(
            "sqs",
            "1.0",
            "AmazonSQS",
            "GetQueueUrl",
            &json!({ "QueueName": queue_name, "QueueOwnerAWSAccountId": account }),
        )
        .await?;
    let queue_url = url.get("QueueUrl").and_then(Value::as_str).ok_or_else(|| {
        LocalCloudError::UnexpectedAnswer {
            service: "sqs",
            operation: "GetQueueUrl".to_string(),
            problem: format!("no QueueUrl in {url}"),
        }
    })?;
    let mut message = json!({ "QueueUrl": queue_url, "MessageBody": input });
    if let Some(group) = target
        .pointer("/SqsParameters/MessageGroupId")
        .and_then(Value::as_str)
    {
        message["MessageGroupId"] = json!(group);
        // EventBridge deduplicates FIFO deliveries by event id.
        message["MessageDeduplicationId"] = event["id"].clone();
    }
    moto.json("sqs", "1.0", "AmazonSQS", "SendMessage", &message)
        .await?;
    Ok("delivered".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> Value {
        json!({"id": "e1", "detail-type": "T", "source": "s", "detail": {"server": "s-1", "lag": 5}})
    }

    #[test]
    fn builds_events_as_eventbridge_does() {
        let entry = json!({
            "Source": "aws.drs", "DetailType": "T", "Detail": "{\"state\":\"STALLED\"}",
            "Time": 1_709_210_096, "EventBusName": "arn:aws:events:us-east-1:1:event-bus/drplan"
        });
        let (bus, event) = build_event(&entry, "123456789012", "us-east-1").expect("valid");
        assert_eq!(bus, "drplan");
        assert_eq!(event["time"], "2024-02-29T12:34:56Z");
        assert_eq!(event["detail"]["state"], "STALLED");
        assert_eq!(event["account"], "123456789012");
        assert_eq!(event["resources"], json!([]));
        let (code, _) = build_event(
            &json!({"Source": "s", "DetailType": "T", "Detail": "[1]"}),
            "1",
            "r",
        )
        .expect_err("detail must be an object");
        assert_eq!(code, "MalformedDetail");
    }

    #[test]
    fn honours_input_input_path_and_transformer() {
        let rule = "r";
        assert_eq!(
            target_input(&json!({"Input": "{\"a\":1}"}), &event(), rule).as_deref(),
            Ok("{\"a\":1}")
        );
        assert_eq!(
            target_input(&json!({"InputPath": "$.detail.server"}), &event(), rule).as_deref(),
            Ok("\"s-1\"")
        );
        let transformer = json!({"InputTransformer": {
            "InputPathsMap": {"server": "$.detail.server", "lag": "$.detail.lag"},
            "InputTemplate": "{\"text\": \"server <server> lags <lag> s\", \"id\": <server>, \"lag\": <lag>}"
        }});
        let filled = target_input(&transformer, &event(), rule).expect("a template");
        let filled: Value = serde_json::from_str(&filled).expect("JSON");
        assert_eq!(
            filled,
            json!({"text": "server s-1 lags 5 s", "id": "s-1", "lag": 5})
        );
    }
}
