//! A failback of EC2 sources to their origin Region (`run.origin_region`), around its
//! waves, which are a recovery in that Region of the reversed servers:
//! - before the first wave (the cleanup function's CLEAR state, after approval):
//!   ReverseReplication of each recovery instance that has no reversed server yet, then,
//!   call after call, until every reversed server is CONTINUOUS; then the run's plan names
//!   the reversed servers. A reversed server that needs a person refuses the failback
//!   (`drplan.NotReady`), and so does the run's deadline: nothing has launched then.
//! - after a successful failback (and `keep_recovery_minutes`): ReverseReplication of each
//!   new instance in the origin Region (protection in the original direction again), then
//!   the recovery Region's recovery instances of the servers that came home are
//!   terminated.
//!
//! The judgement is `drplan_core::failback::origin`'s.

use std::collections::{BTreeMap, HashMap};

use drplan_core::contract::RunContext;
use drplan_core::contract::step::Cleanup;
use drplan_core::contract::tags::EXECUTION as TAG_EXECUTION;
use drplan_core::failback::origin::{Reversal, judge_reversal, launch_reversed, to_reverse};
use drplan_core::failback::run::FailbackRecord;
use drplan_core::{Issue, ResolvedPlan};
use jiff::Timestamp;

use crate::bootstrap::Clients;
use crate::{FunctionError, drs, failback};

/// One call before the first wave: reverses what is not reversed yet, then answers DONE
/// once every reversed server is CONTINUOUS (the plan then launches them), CLEAR to be
/// called again after a wait while some still sync.
pub async fn prepare(
    clients: &Clients,
    run: &RunContext,
    cleanup: Cleanup,
) -> Result<Cleanup, FunctionError> {
    let records = run.records();
    let mut record: FailbackRecord = clients.store.require(&records.failback()).await?;
    let region = record.origin_region.clone().ok_or_else(|| {
        FunctionError::InvalidInput(
            "the failback's record names no origin Region: nothing to reverse".into(),
        )
    })?;
    let reversing = to_reverse(&record);
    for (server, instance) in &reversing {
        let arn = match drs::reverse_replication(&clients.drs, instance).await {
            Ok(arn) => arn,
            Err(error) => {
                // What DRS reversed so far is kept, so that the retry asks only for the rest.
                clients.store.write(&records.failback(), &record).await?;
                return Err(error);
            }
        };
        let reversed = arn.rsplit('/').next().unwrap_or(&arn).to_owned();
        tracing::info!(
            source_server = %server,
            recovery_instance = %instance,
            reversed_source_server = %reversed,
            region = %region,
            "reversed replication started"
        );
        record.reversed.insert(server.clone(), reversed);
    }
    if !reversing.is_empty() {
        clients.store.write(&records.failback(), &record).await?;
    }

    let mut resolved: ResolvedPlan = clients.store.require(&records.resolved_plan()).await?;
    let origin = clients.for_run(run);
    let reversed_ids: Vec<String> = record.reversed.values().cloned().collect();
    let states = failback::replication_states(&origin.drs, &reversed_ids).await?;
    let attempt = cleanup.attempt + 1;
    match judge_reversal(&resolved, &record, &states) {
        Reversal::Ready => {
            launch_reversed(&mut resolved, &record).map_err(FunctionError::InvalidInput)?;
            clients
                .store
                .write(&records.resolved_plan(), &resolved)
                .await?;
            tracing::info!(
                servers = resolved.server_count(),
                region = %region,
                polls = attempt,
                "reversed replication CONTINUOUS for every server: the failback launches in the origin Region"
            );
            Ok(cleanup.finished())
        }
        Reversal::Blocked(issues) => Err(FunctionError::NotReady(issues)),
        Reversal::Syncing(issues) => {
            if run
                .deadline
                .is_some_and(|deadline| Timestamp::now() >= deadline)
            {
                let mut issues = issues;
                issues.push(Issue::new(
                    "failback",
                    format!(
                        "reversed replication to {region} was not CONTINUOUS for every server \
                         by the run's deadline; nothing launched. It goes on replicating: \
                         start the failback again once `drplan readiness {} --failback` says \
                         ready",
                        run.plan
                    ),
                ));
                return Err(FunctionError::NotReady(issues));
            }
            tracing::info!(
                syncing = issues.len(),
                first = %issues[0],
                "reversed replication still syncing"
            );
            Ok(cleanup.clearing(attempt, Vec::new(), 0, &run.timing))
        }
    }
}

/// After a successful failback: protects each server that came home in the original
/// direction again (ReverseReplication of its new instance in the origin Region; what DRS
/// answers is kept in the record for the report), and returns the recovery Region's
/// recovery instances of those servers, to terminate. A ReverseReplication DRS refuses
/// is logged and left to a person (the report says what to do): the servers are home.
pub async fn reprotect_and_list_instances(
    clients: &Clients,
    run: &RunContext,
    mut record: FailbackRecord,
) -> Result<Vec<String>, FunctionError> {
    let origin = clients.for_run(run);
    let reversed_ids: Vec<String> = record.reversed.values().cloned().collect();
    let launched = failback::recovery_instances(&origin.drs, &reversed_ids).await?;
    // Only instances this run's jobs launched count as home.
    let job_ids: Vec<String> = launched
        .values()
        .filter_map(|instance| instance.job_id.clone())
        .collect();
    let own_jobs: Vec<String> = drs::jobs_with_tags(&origin.drs, &job_ids)
        .await?
        .into_iter()
        .filter(|(_, tags)| tags.get(TAG_EXECUTION) == Some(&run.execution_name))
        .map(|(job, _)| job.job_id)
        .collect();
    let home: HashMap<&str, &str> = record
        .reversed
        .iter()
        .filter_map(|(original, reversed)| {
            let instance = launched.get(reversed)?;
            let ours = instance
                .job_id
                .as_ref()
                .is_some_and(|job| own_jobs.contains(job));
            (ours && !instance.is_drill)
                .then_some((original.as_str(), instance.recovery_instance_id.as_str()))
        })
        .collect();
    let mut reprotected = BTreeMap::new();
    for (original, instance) in &home {
        match drs::reverse_replication(&origin.drs, instance).await {
            Ok(arn) => {
                tracing::info!(
                    source_server = original,
                    recovery_instance = instance,
                    protected_by = %arn,
                    "protected in the original direction again"
                );
                reprotected.insert((*original).to_owned(), arn);
            }
            Err(error) => tracing::warn!(
                source_server = original,
                recovery_instance = instance,
                %error,
                "ReverseReplication in the origin Region failed: a person protects the server again"
            ),
        }
    }
    let instances: Vec<String> = record
        .recovery_instances
        .iter()
        .filter(|(server, _)| home.contains_key(server.as_str()))
        .map(|(_, instance)| instance.clone())
        .collect();
    record.reprotected.extend(reprotected);
    clients
        .store
        .write(&run.records().failback(), &record)
        .await?;
    Ok(instances)
}
