//! The AWS calls of the data-plane DNS cutover (`drplan_core::dns_failover`): the
//! failover alarm in the recovery Region's CloudWatch (made by `drplan dns prepare`,
//! flipped by a run and by its rollback), and the Route 53 failover records and health
//! check that `drplan dns prepare` makes ahead of time. A run calls only the CloudWatch
//! half: Route 53's control plane is in us-east-1, which a recovery must not need.

use aws_sdk_cloudwatch::types::{
    ComparisonOperator, Dimension, MetricDatum, StandardUnit, StateValue, Statistic,
};
use aws_sdk_route53::types::{
    AlarmIdentifier, Change as SdkChange, ChangeAction, CloudWatchRegion, HealthCheckConfig,
    HealthCheckType, InsufficientDataHealthStatus, ResourceRecordSetFailover, RrType,
};
use drplan_core::dns_failover::{
    ALARM_PERIOD_SECONDS, ALARM_TREAT_MISSING_DATA, CurrentRecords, FailoverAlarm, FailoverRecord,
    FailoverRole, METRIC_DIMENSION, METRIC_NAME, METRIC_NAMESPACE, PrepareChange,
};

use crate::FunctionError;
use crate::route53::{record_set_of, sdk_record_set};

/// The metric datum that asks for a failover (1) or withdraws it (0).
fn failover_datum(plan: &str, value: f64) -> MetricDatum {
    MetricDatum::builder()
        .metric_name(METRIC_NAME)
        .dimensions(plan_dimension(plan))
        .value(value)
        .unit(StandardUnit::Count)
        .build()
}

fn plan_dimension(plan: &str) -> Dimension {
    Dimension::builder()
        .name(METRIC_DIMENSION)
        .value(plan)
        .build()
}

/// The failover alarm as CloudWatch describes it: its state, and whether it watches
/// the plan's failover metric the way drplan set it up. `None`: no such alarm.
pub struct AlarmSeen {
    pub state: String,
    pub watches_the_failover_metric: bool,
}

/// DescribeAlarms of one alarm.
pub async fn describe_alarm(
    cloudwatch: &aws_sdk_cloudwatch::Client,
    plan: &str,
    name: &str,
) -> Result<Option<AlarmSeen>, FunctionError> {
    let answer = cloudwatch
        .describe_alarms()
        .alarm_names(name)
        .send()
        .await
        .map_err(|e| FunctionError::from_sdk("CloudWatch DescribeAlarms", e))?;
    Ok(answer.metric_alarms().first().map(|alarm| {
        let watches = alarm.namespace() == Some(METRIC_NAMESPACE)
            && alarm.metric_name() == Some(METRIC_NAME)
            && alarm.dimensions() == [plan_dimension(plan)]
            && alarm.statistic() == Some(&Statistic::Maximum)
            && alarm.threshold() == Some(1.0)
            && alarm.comparison_operator()
                == Some(&ComparisonOperator::GreaterThanOrEqualToThreshold)
            && alarm.treat_missing_data() == Some(ALARM_TREAT_MISSING_DATA);
        AlarmSeen {
            state: alarm
                .state_value()
                .map_or("UNKNOWN", |s| s.as_str())
                .to_owned(),
            watches_the_failover_metric: watches,
        }
    }))
}

/// Makes the plan's failover alarm (PutMetricAlarm): in ALARM once a datapoint of 1
/// arrives, and kept in its state while no datapoint arrives (missing data ignored),
/// so a failover holds until a rollback puts 0.
pub async fn put_failover_alarm(
    cloudwatch: &aws_sdk_cloudwatch::Client,
    plan: &str,
    name: &str,
) -> Result<(), FunctionError> {
    cloudwatch
        .put_metric_alarm()
        .alarm_name(name)
        .alarm_description(format!(
            "drplan: in ALARM, Route 53 answers the plan {plan}'s records with their recovery target (SECONDARY). Set by drplan runs and rollback-dns; see docs/dns.md."
        ))
        .namespace(METRIC_NAMESPACE)
        .metric_name(METRIC_NAME)
        .dimensions(plan_dimension(plan))
        .statistic(Statistic::Maximum)
        .period(ALARM_PERIOD_SECONDS)
        .evaluation_periods(1)
        .threshold(1.0)
        .comparison_operator(ComparisonOperator::GreaterThanOrEqualToThreshold)
        .treat_missing_data(ALARM_TREAT_MISSING_DATA)
        .send()
        .await
        .map_err(|e| FunctionError::from_sdk("CloudWatch PutMetricAlarm", e))?;
    Ok(())
}

/// Flips the failover alarm: a datapoint the alarm evaluates (so that it stays where it
/// is put when CloudWatch re-evaluates it), then SetAlarmState, so that it is there now
/// rather than at the next evaluation. `failover`: ALARM (1); else OK (0).
pub async fn flip_alarm(
    cloudwatch: &aws_sdk_cloudwatch::Client,
    plan: &str,
    name: &str,
    failover: bool,
    reason: &str,
) -> Result<(), FunctionError> {
    let (value, state) = if failover {
        (1.0, StateValue::Alarm)
    } else {
        (0.0, StateValue::Ok)
    };
    cloudwatch
        .put_metric_data()
        .namespace(METRIC_NAMESPACE)
        .metric_data(failover_datum(plan, value))
        .send()
        .await
        .map_err(|e| FunctionError::from_sdk("CloudWatch PutMetricData", e))?;
    cloudwatch
        .set_alarm_state()
        .alarm_name(name)
        .state_value(state)
        .state_reason(reason)
        .send()
        .await
        .map_err(|e| FunctionError::from_sdk("CloudWatch SetAlarmState", e))?;
    Ok(())
}

/// The alarm and type of a health check; `None` when there is no such health check.
pub async fn health_check(
    route53: &aws_sdk_route53::Client,
    id: &str,
) -> Result<Option<(String, Option<FailoverAlarm>)>, FunctionError> {
    match route53.get_health_check().health_check_id(id).send().await {
        Ok(answer) => Ok(answer
            .health_check()
            .and_then(|h| h.health_check_config())
            .map(|config| {
                (
                    config.r#type().as_str().to_owned(),
                    config.alarm_identifier().map(|a| FailoverAlarm {
                        region: a.region().as_str().to_owned(),
                        name: a.name().to_owned(),
                    }),
                )
            })),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_no_such_health_check()) =>
        {
            Ok(None)
        }
        Err(e) => Err(FunctionError::from_sdk("Route53 GetHealthCheck", e)),
    }
}

/// A CLOUDWATCH_METRIC health check that follows `alarm`: unhealthy while the alarm is
/// in ALARM; healthy while CloudWatch has too little data to say (a new alarm), so
/// that the PRIMARY keeps answering until a run asks for the failover.
pub async fn create_health_check(
    route53: &aws_sdk_route53::Client,
    alarm: &FailoverAlarm,
    caller_reference: &str,
) -> Result<String, FunctionError> {
    let invalid =
        |e: &dyn std::fmt::Display| FunctionError::InvalidInput(format!("health check: {e}"));
    let config = HealthCheckConfig::builder()
        .r#type(HealthCheckType::CloudwatchMetric)
        .alarm_identifier(
            AlarmIdentifier::builder()
                .region(CloudWatchRegion::from(alarm.region.as_str()))
                .name(&alarm.name)
                .build()
                .map_err(|e| invalid(&e))?,
        )
        .insufficient_data_health_status(InsufficientDataHealthStatus::Healthy)
        .build()
        .map_err(|e| invalid(&e))?;
    let answer = route53
        .create_health_check()
        .caller_reference(caller_reference)
        .health_check_config(config)
        .send()
        .await
        .map_err(|e| FunctionError::from_sdk("Route53 CreateHealthCheck", e))?;
    answer
        .health_check()
        .map(|h| h.id().to_owned())
        .ok_or_else(|| FunctionError::AwsCallFailed {
            operation: "Route53 CreateHealthCheck",
            code: "NoHealthCheck".into(),
            message: "the answer describes no health check".into(),
        })
}

/// Every record set Route 53 holds under one name and type: a simple record, drplan's
/// failover pair, or routing records of others.
pub async fn current_records(
    route53: &aws_sdk_route53::Client,
    zone_id: &str,
    name: &str,
    record_type: &str,
) -> Result<CurrentRecords, FunctionError> {
    let listed = route53
        .list_resource_record_sets()
        .hosted_zone_id(zone_id)
        .start_record_name(name)
        .start_record_type(RrType::from(record_type))
        .max_items(10)
        .send()
        .await
        .map_err(|e| FunctionError::from_sdk("Route53 ListResourceRecordSets", e))?;
    let mut current = CurrentRecords::default();
    for set in listed.resource_record_sets() {
        let record = record_set_of(set);
        if record.name != drplan_core::dns::canonical_name(name)
            || record.record_type != record_type
        {
            break;
        }
        let role = match (set.set_identifier(), set.failover()) {
            (None, _) => {
                current.simple = Some(record);
                continue;
            }
            (Some(id), Some(ResourceRecordSetFailover::Primary))
                if id == FailoverRole::Primary.set_identifier() =>
            {
                FailoverRole::Primary
            }
            (Some(id), Some(ResourceRecordSetFailover::Secondary))
                if id == FailoverRole::Secondary.set_identifier() =>
            {
                FailoverRole::Secondary
            }
            (Some(id), _) => {
                current.others.push(id.to_owned());
                continue;
            }
        };
        let found = FailoverRecord {
            set: record,
            role,
            health_check_id: set.health_check_id().map(str::to_owned),
        };
        match role {
            FailoverRole::Primary => current.primary = Some(found),
            FailoverRole::Secondary => current.secondary = Some(found),
        }
    }
    Ok(current)
}

/// Makes the changes of `drplan dns prepare` in one batch; returns the change ID.
pub async fn apply_prepare(
    route53: &aws_sdk_route53::Client,
    zone_id: &str,
    changes: &[PrepareChange],
    comment: &str,
) -> Result<String, FunctionError> {
    let invalid = |e: &dyn std::fmt::Display| FunctionError::InvalidInput(format!("change: {e}"));
    let mut sdk_changes = Vec::with_capacity(changes.len());
    for change in changes {
        let (action, set) = match change {
            PrepareChange::DeleteSimple(set) => (ChangeAction::Delete, sdk_record_set(set)?),
            PrepareChange::Upsert(record) => {
                let mut set = sdk_record_set(&record.set)?;
                set.set_identifier = Some(record.role.set_identifier().to_owned());
                set.failover = Some(match record.role {
                    FailoverRole::Primary => ResourceRecordSetFailover::Primary,
                    FailoverRole::Secondary => ResourceRecordSetFailover::Secondary,
                });
                set.health_check_id = record.health_check_id.clone();
                (ChangeAction::Upsert, set)
            }
        };
        sdk_changes.push(
            SdkChange::builder()
                .action(action)
                .resource_record_set(set)
                .build()
                .map_err(|e| invalid(&e))?,
        );
    }
    crate::route53::send_change_batch(route53, zone_id, sdk_changes, comment).await
}
