//! Custom metrics as CloudWatch embedded metric format (EMF) log lines: in Lambda,
//! CloudWatch Logs turns each line into a metric data point, with no API call, no
//! extra permission and no latency on the event's path.

use serde_json::{Map, Value, json};

/// The namespace of drplan's metrics (the dashboard reads them from here).
pub const NAMESPACE: &str = "drplan";

/// The EMF document for one value of `metric` with `dimensions`.
pub fn document(
    metric: &str,
    dimensions: &[(&str, &str)],
    value: f64,
    unit: &str,
    now_millis: i64,
) -> Value {
    let mut document = Map::new();
    let names: Vec<&str> = dimensions.iter().map(|(name, _)| *name).collect();
    document.insert(
        "_aws".into(),
        json!({
            "Timestamp": now_millis,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [names],
                "Metrics": [{"Name": metric, "Unit": unit}],
            }],
        }),
    );
    for (name, value) in dimensions {
        document.insert((*name).into(), Value::String((*value).into()));
    }
    // Whole values stay integers in the log line (`"RejectedEvents":1`).
    let value = if value.fract() == 0.0 && value.abs() < 9.0e15 {
        json!(value as i64)
    } else {
        json!(value)
    };
    document.insert(metric.into(), value);
    Value::Object(document)
}

/// The EMF document for one count of `metric` with `dimensions`.
pub fn count_document(metric: &str, dimensions: &[(&str, &str)], now_millis: i64) -> Value {
    document(metric, dimensions, 1.0, "Count", now_millis)
}

/// Writes one count of `metric` to stdout, where Lambda's log capture picks it up.
pub fn count(metric: &str, dimensions: &[(&str, &str)]) {
    let now_millis = jiff::Timestamp::now().as_millisecond();
    println!("{}", count_document(metric, dimensions, now_millis));
}

/// Writes one value of `metric` (a level, not a count: unit `None`) to stdout.
pub fn gauge(metric: &str, dimensions: &[(&str, &str)], value: f64) {
    let now_millis = jiff::Timestamp::now().as_millisecond();
    println!(
        "{}",
        document(metric, dimensions, value, "None", now_millis)
    );
}

/// Writes one of a run's data points (see `Report::metric_points`).
pub fn emit(point: &drplan_core::report::MetricPoint) {
    let now_millis = jiff::Timestamp::now().as_millisecond();
    let dimensions: Vec<(&str, &str)> = point
        .dimensions
        .iter()
        .map(|(name, value)| (*name, value.as_str()))
        .collect();
    println!(
        "{}",
        document(point.name, &dimensions, point.value, point.unit, now_millis)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_follows_the_embedded_metric_format() {
        let doc = count_document(
            "RejectedEvents",
            &[("Reason", "MissingField")],
            1_700_000_000_000,
        );
        assert_eq!(doc["_aws"]["CloudWatchMetrics"][0]["Namespace"], "drplan");
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Reason"]])
        );
        assert_eq!(doc["Reason"], "MissingField");
        assert_eq!(doc["RejectedEvents"], 1);
        assert_eq!(doc["_aws"]["Timestamp"], 1_700_000_000_000_i64);
    }
}
