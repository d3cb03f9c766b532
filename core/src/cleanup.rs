//! The cleanup step's state between the state machine's calls: after a drill, following
//! the termination of its recovery instances; before a run's first wave, clearing the
//! plan's servers of other jobs and drill instances. Pure; the DRS and Step Functions
//! calls are in `drplan_aws::cleanup`.

use crate::contract::Timing;
use crate::contract::step::{Cleanup, CleanupState};
use crate::launch::JobView;
use crate::safety::ClearedBeforeLaunch;

/// Polls of the clearing before it gives up: a drill instance DRS cannot terminate
/// must not keep the recovery waiting for ever.
pub const MAX_CLEARING_POLLS: u32 = 120;

impl Cleanup {
    /// Nothing (more) to wait for.
    pub fn done(terminated: usize) -> Self {
        Self {
            state: CleanupState::Done,
            jobs: Vec::new(),
            terminated,
            attempt: 0,
            wait_seconds: 0,
            stop_drill: None,
        }
    }

    /// Terminate jobs started: followed from the next call.
    pub fn terminating(jobs: Vec<String>, terminated: usize, timing: &Timing) -> Self {
        Self {
            state: CleanupState::InProgress,
            jobs,
            terminated,
            attempt: 0,
            wait_seconds: timing.poll_delay_seconds(0),
            stop_drill: None,
        }
    }

    /// Whether DRS reports every one of this cleanup's jobs completed.
    pub fn jobs_finished(&self, jobs: &[JobView]) -> bool {
        jobs.len() == self.jobs.len() && jobs.iter().all(JobView::is_completed)
    }

    /// The same cleanup, done.
    pub fn finished(self) -> Self {
        Self {
            state: CleanupState::Done,
            ..self
        }
    }

    /// Its jobs still run: polled again after the run's backoff for the next attempt.
    pub fn still_terminating(self, timing: &Timing) -> Self {
        let attempt = self.attempt + 1;
        Self {
            state: CleanupState::InProgress,
            attempt,
            wait_seconds: timing.poll_delay_seconds(attempt),
            ..self
        }
    }

    /// The number of the clearing poll this call makes, or why clearing gives up.
    pub fn next_clearing_attempt(&self) -> Result<u32, String> {
        let attempt = self.attempt + 1;
        if attempt > MAX_CLEARING_POLLS {
            return Err(format!(
                "the plan's servers were not clear of other jobs and drill instances after {MAX_CLEARING_POLLS} polls"
            ));
        }
        Ok(attempt)
    }

    /// Still clearing after poll `attempt`, with these terminate jobs and this many
    /// instances terminated. The drill to stop stays in the state: stopping and
    /// restoring again is harmless, and the report names it.
    pub fn clearing(
        self,
        attempt: u32,
        jobs: Vec<String>,
        terminated: usize,
        timing: &Timing,
    ) -> Self {
        Self {
            state: CleanupState::Clear,
            jobs,
            terminated,
            attempt,
            wait_seconds: timing.poll_delay_seconds(attempt.min(3)),
            stop_drill: self.stop_drill,
        }
    }

    /// What clearing did, for the report.
    pub fn cleared(&self) -> ClearedBeforeLaunch {
        ClearedBeforeLaunch {
            stopped_drill: self.stop_drill.as_ref().map(|d| d.execution_name.clone()),
            terminated_drill_instances: self.terminated,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clearing_polls_back_off_to_the_third_delay_and_give_up_after_the_limit() {
        let timing = Timing::default();
        let mut cleanup = Cleanup {
            state: CleanupState::Clear,
            ..Cleanup::done(0)
        };
        for _ in 0..MAX_CLEARING_POLLS {
            let attempt = cleanup.next_clearing_attempt().unwrap();
            cleanup = cleanup.clearing(attempt, Vec::new(), 0, &timing);
            assert_eq!(cleanup.state, CleanupState::Clear);
            assert_eq!(
                cleanup.wait_seconds,
                timing.poll_delay_seconds(attempt.min(3))
            );
        }
        assert_eq!(
            cleanup.next_clearing_attempt(),
            Err(format!(
                "the plan's servers were not clear of other jobs and drill instances after {MAX_CLEARING_POLLS} polls"
            ))
        );
    }

    #[test]
    fn terminate_jobs_are_followed_until_every_one_is_completed() {
        let timing = Timing::default();
        let cleanup = Cleanup::terminating(vec!["drsjob-1".into(), "drsjob-2".into()], 3, &timing);
        assert_eq!(cleanup.wait_seconds, timing.poll_delay_seconds(0));
        let job = |id: &str, status: &str| JobView {
            job_id: id.into(),
            status: status.into(),
            servers: Vec::new(),
        };
        // A job DRS does not report (yet) is not finished.
        assert!(!cleanup.jobs_finished(&[job("drsjob-1", "COMPLETED")]));
        assert!(
            !cleanup.jobs_finished(&[job("drsjob-1", "COMPLETED"), job("drsjob-2", "STARTED")])
        );
        assert!(
            cleanup.jobs_finished(&[job("drsjob-1", "COMPLETED"), job("drsjob-2", "COMPLETED")])
        );
        let next = cleanup.still_terminating(&timing);
        assert_eq!(
            (next.state, next.attempt, next.wait_seconds, next.terminated),
            (CleanupState::InProgress, 1, timing.poll_delay_seconds(1), 3)
        );
        assert_eq!(next.finished().state, CleanupState::Done);
    }
}
