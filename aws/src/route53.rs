//! The Route 53 calls of a DNS cutover and its rollback.

use aws_sdk_route53::Client;
use aws_sdk_route53::types::HostedZone as SdkZone;
use aws_sdk_route53::types::{
    AliasTarget as SdkAlias, Change as SdkChange, ChangeAction, ChangeBatch, ChangeStatus,
    ResourceRecord, ResourceRecordSet, RrType,
};
use drplan_core::Issue;
use drplan_core::dns::{
    Change, HostedZone, RecordSet, canonical_name, records_outside_zone, zone_list,
    zone_not_allowed,
};
use drplan_core::plan::{AliasTarget, Dns};

use crate::FunctionError;

/// The hosted zones this deployment may change, comma-separated: the template sets it
/// from its HostedZoneIds parameter (and IAM grants the same zones). Unset, nothing
/// limits the zones (the local cloud, where no IAM applies).
pub const ALLOWED_ZONES_ENV: &str = "DRPLAN_HOSTED_ZONE_IDS";

/// The zones this deployment may change; `None` when it does not say.
pub fn allowed_zones() -> Option<Vec<String>> {
    std::env::var(ALLOWED_ZONES_ENV)
        .ok()
        .map(|text| zone_list(&text))
}

/// The zone a plan's records are cut over in, with every reason they could not be:
/// a zone this deployment may not change (`allowed`, from [`allowed_zones`]), a zone
/// that does not exist or is ambiguous, a record outside the zone. Nothing is changed; discover calls it before anything
/// launches, dns-cutover again before it changes anything.
pub async fn zone_for_cutover(
    route53: &Client,
    dns: &Dns,
    allowed: Option<&[String]>,
) -> Result<HostedZone, FunctionError> {
    let refuse = |id: &str, path: &str| {
        allowed
            .and_then(|allowed| zone_not_allowed(allowed, id))
            .map(|problem| FunctionError::InvalidPlan(vec![Issue::new(path, problem)]))
    };
    // Checked before any Route 53 call: IAM would only answer AccessDenied (and grants
    // no Route 53 call at all to a deployment that may change no zone).
    let named = match (&dns.zone_id, &dns.zone_name) {
        (Some(id), _) => Some((id.as_str(), "dns.zone_id")),
        (None, Some(name)) if allowed.is_some_and(<[String]>::is_empty) => {
            Some((name.as_str(), "dns.zone_name"))
        }
        _ => None,
    };
    if let Some((zone, path)) = named
        && let Some(refused) = refuse(zone, path)
    {
        return Err(refused);
    }
    let zone = resolve_zone(route53, dns).await?;
    if dns.zone_id.is_none()
        && let Some(refused) = refuse(&zone.id, "dns.zone_name")
    {
        return Err(refused);
    }
    let outside = records_outside_zone(dns, &zone);
    if !outside.is_empty() {
        return Err(FunctionError::InvalidPlan(outside));
    }
    Ok(zone)
}

fn hosted_zone(zone: &SdkZone) -> HostedZone {
    HostedZone {
        id: zone.id().trim_start_matches("/hostedzone/").to_owned(),
        name: canonical_name(zone.name()),
        private: zone.config().is_some_and(|c| c.private_zone()),
    }
}

/// The hosted zone the plan names: by ID, or by name (exactly one zone of that name,
/// public or private).
pub async fn resolve_zone(route53: &Client, dns: &Dns) -> Result<HostedZone, FunctionError> {
    if let Some(id) = &dns.zone_id {
        let bare = id.trim_start_matches("/hostedzone/").to_owned();
        return match route53.get_hosted_zone().id(&bare).send().await {
            Ok(answer) => {
                answer
                    .hosted_zone()
                    .map(hosted_zone)
                    .ok_or_else(|| FunctionError::AwsCallFailed {
                        operation: "Route53 GetHostedZone",
                        code: "NoHostedZone".into(),
                        message: format!("the answer for {bare} describes no zone"),
                    })
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_no_such_hosted_zone()) =>
            {
                Err(FunctionError::NotReady(vec![Issue::new(
                    "dns.zone_id",
                    format!("there is no hosted zone {bare}"),
                )]))
            }
            Err(e) => Err(FunctionError::from_sdk("Route53 GetHostedZone", e)),
        };
    }
    let Some(name) = &dns.zone_name else {
        return Err(FunctionError::InvalidPlan(vec![Issue::new(
            "dns",
            "names no zone",
        )]));
    };
    let wanted = canonical_name(name);
    // Zones come sorted by name, so those of one name are listed together; a page that
    // ends on the name may have more of them on the next.
    let mut matching: Vec<HostedZone> = Vec::new();
    let mut start = (wanted.clone(), None);
    loop {
        let page = route53
            .list_hosted_zones_by_name()
            .dns_name(&start.0)
            .set_hosted_zone_id(start.1.take())
            .send()
            .await
            .map_err(|e| FunctionError::from_sdk("Route53 ListHostedZonesByName", e))?;
        matching.extend(
            page.hosted_zones()
                .iter()
                .filter(|z| canonical_name(z.name()) == wanted)
                .map(hosted_zone),
        );
        match (
            page.is_truncated(),
            page.next_dns_name(),
            page.next_hosted_zone_id(),
        ) {
            (true, Some(next_name), Some(id)) if canonical_name(next_name) == wanted => {
                start = (next_name.to_owned(), Some(id.to_owned()));
            }
            _ => break,
        }
    }
    match matching.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(FunctionError::NotReady(vec![Issue::new(
            "dns.zone_name",
            format!("there is no hosted zone named {name}"),
        )])),
        many => Err(FunctionError::NotReady(vec![Issue::new(
            "dns.zone_name",
            format!(
                "{} hosted zones are named {name} ({}); give dns.zone_id to say which",
                many.len(),
                many.iter()
                    .map(|z| format!("{} {}", z.id, if z.private { "private" } else { "public" }))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )])),
    }
}

/// What a record holds now (its values, or its alias target), `None` if it does not
/// exist. Routing-policy records are refused: a control-plane cutover replaces simple
/// records only.
pub async fn current_record(
    route53: &Client,
    zone_id: &str,
    name: &str,
    record_type: &str,
) -> Result<Option<RecordSet>, FunctionError> {
    let listed = route53
        .list_resource_record_sets()
        .hosted_zone_id(zone_id)
        .start_record_name(name)
        .start_record_type(RrType::from(record_type))
        .max_items(1)
        .send()
        .await
        .map_err(|e| FunctionError::from_sdk("Route53 ListResourceRecordSets", e))?;
    let Some(set) = listed.resource_record_sets().first() else {
        return Ok(None);
    };
    if canonical_name(set.name()) != canonical_name(name) || set.r#type().as_str() != record_type {
        return Ok(None);
    }
    if let Some(id) = set.set_identifier() {
        return Err(FunctionError::NotReady(vec![Issue::new(
            "dns.records",
            format!(
                "{name} {record_type} is a routing-policy record (set identifier {id}); a control-plane cutover replaces simple records only (failover pairs made by `drplan dns prepare` are for dns.mode: data-plane)"
            ),
        )]));
    }
    Ok(Some(record_set_of(set)))
}

/// drplan's form of a record set Route 53 listed.
pub(crate) fn record_set_of(set: &ResourceRecordSet) -> RecordSet {
    RecordSet {
        name: canonical_name(set.name()),
        record_type: set.r#type().as_str().to_owned(),
        ttl: set.ttl().and_then(|t| u32::try_from(t).ok()).unwrap_or(0),
        values: set
            .resource_records()
            .iter()
            .map(|r| r.value().to_owned())
            .collect(),
        alias: set.alias_target().map(|a| AliasTarget {
            dns_name: canonical_name(a.dns_name()),
            hosted_zone_id: a.hosted_zone_id().to_owned(),
            evaluate_target_health: a.evaluate_target_health(),
        }),
    }
}

/// The SDK's form of a record set: an alias (no TTL, no values), or values with a TTL.
pub(crate) fn sdk_record_set(set: &RecordSet) -> Result<ResourceRecordSet, FunctionError> {
    let invalid = |e: &dyn std::fmt::Display| {
        FunctionError::InvalidInput(format!("record {}: {e}", set.name))
    };
    let builder = ResourceRecordSet::builder()
        .name(&set.name)
        .r#type(RrType::from(set.record_type.as_str()));
    let builder = match &set.alias {
        Some(alias) => builder.alias_target(
            SdkAlias::builder()
                .dns_name(&alias.dns_name)
                .hosted_zone_id(&alias.hosted_zone_id)
                .evaluate_target_health(alias.evaluate_target_health)
                .build()
                .map_err(|e| invalid(&e))?,
        ),
        None => {
            let records = set
                .values
                .iter()
                .map(|v| ResourceRecord::builder().value(v).build())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| invalid(&e))?;
            builder
                .ttl(i64::from(set.ttl))
                .set_resource_records(Some(records))
        }
    };
    builder.build().map_err(|e| invalid(&e))
}

/// One ChangeResourceRecordSets batch: all of it happens, or none of it. Returns the
/// change ID.
pub async fn change_records(
    route53: &Client,
    zone_id: &str,
    changes: &[Change],
    comment: &str,
) -> Result<String, FunctionError> {
    let mut sdk_changes = Vec::with_capacity(changes.len());
    for change in changes {
        let (action, set) = match change {
            Change::Upsert(set) => (ChangeAction::Upsert, set),
            Change::Delete(set) => (ChangeAction::Delete, set),
        };
        sdk_changes.push(
            SdkChange::builder()
                .action(action)
                .resource_record_set(sdk_record_set(set)?)
                .build()
                .map_err(|e| FunctionError::InvalidInput(format!("change of {}: {e}", set.name)))?,
        );
    }
    send_change_batch(route53, zone_id, sdk_changes, comment).await
}

/// Sends SDK changes as one ChangeResourceRecordSets batch; returns the change ID.
pub(crate) async fn send_change_batch(
    route53: &Client,
    zone_id: &str,
    sdk_changes: Vec<SdkChange>,
    comment: &str,
) -> Result<String, FunctionError> {
    let batch = ChangeBatch::builder()
        .comment(comment)
        .set_changes(Some(sdk_changes))
        .build()
        .map_err(|e| FunctionError::InvalidInput(format!("change batch: {e}")))?;
    let answer = route53
        .change_resource_record_sets()
        .hosted_zone_id(zone_id)
        .change_batch(batch)
        .send()
        .await
        .map_err(|e| FunctionError::from_sdk("Route53 ChangeResourceRecordSets", e))?;
    Ok(answer
        .change_info()
        .map(|c| c.id().trim_start_matches("/change/").to_owned())
        .unwrap_or_default())
}

/// Whether a change has reached every Route 53 name server.
pub async fn change_in_sync(route53: &Client, change_id: &str) -> Result<bool, FunctionError> {
    let answer = route53
        .get_change()
        .id(change_id)
        .send()
        .await
        .map_err(|e| FunctionError::from_sdk("Route53 GetChange", e))?;
    Ok(answer
        .change_info()
        .is_some_and(|c| c.status() == &ChangeStatus::Insync))
}
