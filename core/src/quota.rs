//! Splitting a wave's servers into StartRecovery jobs within the DRS quotas.

use serde::{Deserialize, Serialize};

/// The DRS quotas that bound launches. Defaults are the documented service quotas; an
/// account with raised quotas sets them for the stack (template parameter `DrsQuotas`)
/// or for one run (the execution input's `quotas`). A misspelt field is refused, never
/// ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "snake_case", deny_unknown_fields)]
pub struct Quotas {
    /// Source servers in one StartRecovery job.
    pub max_servers_per_job: usize,
    /// Source servers in all active jobs of the account together.
    pub max_servers_in_active_jobs: usize,
    /// Jobs active at once.
    pub max_concurrent_jobs: usize,
    /// Source servers replicating in the account and Region (readiness warns past it).
    pub max_replicating_servers: usize,
}

impl Default for Quotas {
    fn default() -> Self {
        Self {
            max_servers_per_job: 100,
            max_servers_in_active_jobs: 500,
            max_concurrent_jobs: 20,
            max_replicating_servers: 300,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuotaError {
    #[error("quota {0} must be at least 1")]
    Zero(&'static str),
}

impl Quotas {
    pub fn check(&self) -> Result<(), QuotaError> {
        for (name, value) in [
            ("max_servers_per_job", self.max_servers_per_job),
            (
                "max_servers_in_active_jobs",
                self.max_servers_in_active_jobs,
            ),
            ("max_concurrent_jobs", self.max_concurrent_jobs),
            ("max_replicating_servers", self.max_replicating_servers),
        ] {
            if value == 0 {
                return Err(QuotaError::Zero(name));
            }
        }
        Ok(())
    }

    /// The account's quotas from a setting (the stack's `DrsQuotas`, JSON such as
    /// `{"max_replicating_servers": 1000}`): blank means the documented defaults, and
    /// each field left out keeps its default. The error names the field and the problem.
    pub fn from_setting(text: &str) -> Result<Self, String> {
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        let quotas: Self = serde_json::from_str(text).map_err(|e| e.to_string())?;
        quotas.check().map_err(|e| e.to_string())?;
        Ok(quotas)
    }

    /// The most servers one job may take: a job larger than the active-jobs quota
    /// could never start.
    pub fn job_size_limit(&self) -> usize {
        self.max_servers_per_job
            .min(self.max_servers_in_active_jobs)
    }
}

/// Jobs that can be active together; the next batch starts when this one's jobs end.
pub type Batch<T> = Vec<Vec<T>>;

/// Splits `servers` into jobs and groups the jobs into batches that fit the quotas.
///
/// Uses as few jobs as the per-job quota allows, with sizes as even as possible (a
/// 250-server wave runs as 84 + 83 + 83, so no job waits on a long tail), keeps the
/// input order (concatenating every job of every batch gives `servers` back), and
/// fills each batch up to the active-servers and concurrent-jobs quotas.
pub fn plan_launch_batches<T: Clone>(
    servers: &[T],
    quotas: &Quotas,
) -> Result<Vec<Batch<T>>, QuotaError> {
    quotas.check()?;
    if servers.is_empty() {
        return Ok(Vec::new());
    }
    let job_count = servers.len().div_ceil(quotas.job_size_limit());
    let base = servers.len() / job_count;
    let larger = servers.len() % job_count;
    let mut batches: Vec<Batch<T>> = Vec::new();
    let mut batch: Batch<T> = Vec::new();
    let mut batch_servers = 0;
    let mut start = 0;
    for job_index in 0..job_count {
        let size = base + usize::from(job_index < larger);
        let full = batch.len() == quotas.max_concurrent_jobs
            || batch_servers + size > quotas.max_servers_in_active_jobs;
        if full {
            batches.push(std::mem::take(&mut batch));
            batch_servers = 0;
        }
        batch.push(servers[start..start + size].to_vec());
        batch_servers += size;
        start += size;
    }
    batches.push(batch);
    Ok(batches)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_stacks_quota_setting_reads_raised_quotas_and_refuses_typos_and_zeros() {
        assert_eq!(Quotas::from_setting("  "), Ok(Quotas::default()));
        assert_eq!(Quotas::from_setting("{}"), Ok(Quotas::default()));
        assert_eq!(
            Quotas::from_setting(r#"{"max_replicating_servers": 1000}"#),
            Ok(Quotas {
                max_replicating_servers: 1000,
                ..Quotas::default()
            })
        );
        let typo = Quotas::from_setting(r#"{"max_replicating_server": 1000}"#).unwrap_err();
        assert!(
            typo.contains("unknown field `max_replicating_server`"),
            "{typo}"
        );
        let zero = Quotas::from_setting(r#"{"max_concurrent_jobs": 0}"#).unwrap_err();
        assert!(
            zero.contains("max_concurrent_jobs must be at least 1"),
            "{zero}"
        );
        assert!(Quotas::from_setting("1000").is_err());
    }

    #[test]
    fn a_250_server_wave_runs_as_three_even_jobs() {
        let servers: Vec<u32> = (0..250).collect();
        let batches = plan_launch_batches(&servers, &Quotas::default()).unwrap();
        assert_eq!(batches.len(), 1);
        let sizes: Vec<usize> = batches[0].iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![84, 83, 83]);
    }

    #[test]
    fn more_than_the_active_quota_waits_for_a_second_batch() {
        let servers: Vec<u32> = (0..1200).collect();
        let batches = plan_launch_batches(&servers, &Quotas::default()).unwrap();
        let shape: Vec<Vec<usize>> = batches
            .iter()
            .map(|b| b.iter().map(Vec::len).collect())
            .collect();
        assert_eq!(shape, vec![vec![100; 5], vec![100; 5], vec![100; 2]]);
    }

    #[test]
    fn zero_quotas_are_refused() {
        let quotas = Quotas {
            max_concurrent_jobs: 0,
            ..Quotas::default()
        };
        assert_eq!(
            plan_launch_batches(&[1], &quotas),
            Err(QuotaError::Zero("max_concurrent_jobs"))
        );
    }

    proptest! {
        #[test]
        fn batches_respect_every_quota_and_keep_order(
            count in 0usize..3000,
            per_job in 1usize..150,
            active in 1usize..700,
            concurrent in 1usize..30,
        ) {
            let quotas = Quotas { max_servers_per_job: per_job, max_servers_in_active_jobs: active, max_concurrent_jobs: concurrent, ..Quotas::default() };
            let servers: Vec<usize> = (0..count).collect();
            let batches = plan_launch_batches(&servers, &quotas).unwrap();
            // Every server exactly once, in the input order.
            let flat: Vec<usize> = batches.iter().flatten().flatten().copied().collect();
            prop_assert_eq!(&flat, &servers);
            let jobs: Vec<&Vec<usize>> = batches.iter().flatten().collect();
            // As few jobs as the per-job limit allows.
            prop_assert_eq!(jobs.len(), count.div_ceil(per_job.min(active)));
            for job in &jobs {
                prop_assert!(!job.is_empty());
                prop_assert!(job.len() <= per_job);
                prop_assert!(job.len() <= active);
            }
            for batch in &batches {
                prop_assert!(!batch.is_empty());
                prop_assert!(batch.len() <= concurrent);
                prop_assert!(batch.iter().map(Vec::len).sum::<usize>() <= active);
            }
        }
    }
}
