//! What a run can cost at most, worked out before anything launches: the Step Functions
//! history events it may write (an execution that reaches 25,000 events fails, and
//! nothing can catch that) and the wall time it may take (the run's deadline).
//!
//! Both are worst cases from the plan and the execution's `timing`: every wave polls its
//! launch until the launch timeout and its health gate until the health timeout. A run
//! whose worst case does not fit is refused with the arithmetic, so that a person can
//! pick timing that fits (longer poll intervals for plans with many waves).

use std::fmt;

use crate::contract::Timing;
use crate::issue::Issue;
use crate::plan::{DEFAULT_HEALTH_TIMEOUT_MINUTES, Plan};
use crate::resolve::ResolvedPlan;

/// Step Functions' limit on a standard execution's history.
pub const HISTORY_LIMIT: u64 = 25_000;

/// History events of one launch poll in `statemachines/recovery.asl.json`: the parked
/// wait (WaitForLaunch: entered, scheduled, started, submitted, ended, exited), the
/// poll (CheckLaunch: entered, scheduled, started, succeeded, exited) and the choice
/// (IsLaunchDone: entered, exited).
pub const LAUNCH_POLL_EVENTS: u64 = 13;
/// History events of one health poll: WaitForHealth (entered, exited), CheckHealth
/// (entered, scheduled, started, succeeded, exited), IsWaveHealthy (entered, exited).
pub const HEALTH_POLL_EVENTS: u64 = 9;
/// History events of a wave besides its polls: its map iteration, the wave's e-mails,
/// LaunchWave, TagInstances, the hook choices and the final state, with room for a
/// few retries.
pub const WAVE_EVENTS: u64 = 60;
/// History events of one hook call (map iteration, the invoke task, its retries).
pub const HOOK_EVENTS: u64 = 12;
/// History events of one stage (layer of waves) besides its waves: its map iteration,
/// the pause check (CheckPauseRequest: entered, scheduled, started, succeeded, exited)
/// and its choice, and a pause should someone hold the run there (WaitWhilePaused:
/// entered, scheduled, started, submitted, succeeded, exited), with room for retries.
pub const STAGE_EVENTS: u64 = 20;
/// History events of a run besides its waves: discover, the e-mails, approval, clearing
/// a drill, the DNS cutover and its waits, cleanup and its waits, the report.
pub const RUN_EVENTS: u64 = 600;

/// The longest a hook may run: Lambda's own limit (15 minutes).
const HOOK_SECONDS: u64 = 900;
/// Wall time of a run besides its waves and waits: discover, DNS, cleanup, report.
const RUN_OVERHEAD_SECONDS: u64 = 60 * 60;

/// A run's worst case, with the figures that make it up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunBudget {
    pub waves: usize,
    /// Stages (layers of the wave DAG): each is checked for a pause before it starts.
    pub stages: usize,
    /// Launch polls of one wave until its launch timeout.
    pub launch_polls_per_wave: u64,
    /// Health polls of each wave until its health timeout (by wave, in plan order).
    pub health_polls: Vec<u64>,
    pub hooks: u64,
    /// The worst-case history events of the run.
    pub events: u64,
    /// The worst-case wall time of the run, in seconds: layers one after another, the
    /// slowest wave of each layer, plus approval, drill keep time and overhead.
    pub seconds: u64,
}

impl RunBudget {
    /// Works out the worst case of `resolved` run with `timing`.
    pub fn of(plan: &Plan, resolved: &ResolvedPlan, timing: &Timing, keep_seconds: u32) -> Self {
        let launch_polls_per_wave = launch_polls(timing);
        let health_timeout = |name: &str| -> u32 {
            plan.waves
                .iter()
                .flatten()
                .find(|w| w.name == name)
                .map_or(DEFAULT_HEALTH_TIMEOUT_MINUTES, |w| w.health.timeout_minutes)
        };
        let hooks_of = |name: &str| -> u64 {
            plan.waves
                .iter()
                .flatten()
                .find(|w| w.name == name)
                .map_or(0, |w| (w.hooks.pre.len() + w.hooks.post.len()) as u64)
        };
        let interval = u64::from(timing.health_interval_seconds.max(1));
        let health_polls: Vec<u64> = resolved
            .waves
            .iter()
            .map(|w| (u64::from(health_timeout(&w.name)) * 60).div_ceil(interval) + 1)
            .collect();
        let hooks: u64 = resolved.waves.iter().map(|w| hooks_of(&w.name)).sum();
        let events = RUN_EVENTS
            + resolved.waves.len() as u64
                * (WAVE_EVENTS + launch_polls_per_wave * LAUNCH_POLL_EVENTS)
            + health_polls.iter().sum::<u64>() * HEALTH_POLL_EVENTS
            + hooks * HOOK_EVENTS
            + resolved.layers.len() as u64 * STAGE_EVENTS;
        let wave_seconds = |index: usize| -> u64 {
            let wave = &resolved.waves[index];
            u64::from(timing.launch_timeout_minutes) * 60
                + u64::from(timing.poll_max_seconds)
                + u64::from(health_timeout(&wave.name)) * 60
                + interval
                + hooks_of(&wave.name) * HOOK_SECONDS
        };
        let waves_seconds: u64 = resolved
            .layers
            .iter()
            .map(|layer| layer.iter().map(|&i| wave_seconds(i)).max().unwrap_or(0))
            .sum();
        let approval_seconds = plan
            .approval
            .as_ref()
            .map_or(0, |a| u64::from(a.timeout_minutes) * 60);
        Self {
            waves: resolved.waves.len(),
            stages: resolved.layers.len(),
            launch_polls_per_wave,
            health_polls,
            hooks,
            events,
            seconds: waves_seconds
                + approval_seconds
                + u64::from(keep_seconds)
                + RUN_OVERHEAD_SECONDS,
        }
    }

    /// Why the run cannot be allowed to start, if it cannot: its worst case passes the
    /// history limit.
    pub fn problem(&self) -> Option<Issue> {
        (self.events > HISTORY_LIMIT).then(|| {
            Issue::new(
                "timing",
                format!(
                    "this run could write {} Step Functions history events, over the limit of {HISTORY_LIMIT} (at which the execution fails without a report): {self}; raise timing.poll_max_seconds or timing.health_interval_seconds, or lower timing.launch_timeout_minutes or the waves' health.timeout_minutes",
                    self.events
                ),
            )
        })
    }
}

impl fmt::Display for RunBudget {
    /// The arithmetic, e.g. `600 + 20 waves × (60 + 40 launch polls × 13) + 1220 health
    /// polls × 9 + 0 hooks × 12 + 20 stages × 20 = 23980`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{RUN_EVENTS} + {} waves × ({WAVE_EVENTS} + {} launch polls × {LAUNCH_POLL_EVENTS}) + {} health polls × {HEALTH_POLL_EVENTS} + {} hooks × {HOOK_EVENTS} + {} stages × {STAGE_EVENTS} = {}",
            self.waves,
            self.launch_polls_per_wave,
            self.health_polls.iter().sum::<u64>(),
            self.hooks,
            self.stages,
            self.events
        )
    }
}

/// How many times a wave's launch is polled at most before its launch timeout, with
/// the backoff of [`Timing::poll_delay_seconds`].
pub fn launch_polls(timing: &Timing) -> u64 {
    let timeout = u64::from(timing.launch_timeout_minutes) * 60;
    let mut waited = 0u64;
    let mut polls = 0u64;
    while waited < timeout {
        waited += u64::from(
            timing
                .poll_delay_seconds(polls.min(u64::from(u32::MAX)) as u32)
                .max(1),
        );
        polls += 1;
    }
    // The first poll comes right after the launch; one more lands at the deadline.
    polls + 1
}

/// The floors and ceilings of `timing` that hold whatever the plan: polls at most once
/// a second, a backoff that does not shrink or explode, timeouts that end.
pub fn timing_problems(timing: &Timing) -> Vec<Issue> {
    let mut issues = Vec::new();
    let mut need = |ok: bool, path: &str, message: String| {
        if !ok {
            issues.push(Issue::new(format!("timing.{path}"), message));
        }
    };
    need(
        timing.poll_initial_seconds >= 1,
        "poll_initial_seconds",
        format!("is {}; must be at least 1", timing.poll_initial_seconds),
    );
    need(
        timing.poll_max_seconds >= timing.poll_initial_seconds.max(1),
        "poll_max_seconds",
        format!(
            "is {}; must be at least 1 and at least poll_initial_seconds ({})",
            timing.poll_max_seconds, timing.poll_initial_seconds
        ),
    );
    need(
        timing.poll_max_seconds <= MAX_POLL_SECONDS,
        "poll_max_seconds",
        format!(
            "is {}; at most {MAX_POLL_SECONDS} (a wave would sit idle after its servers launched)",
            timing.poll_max_seconds
        ),
    );
    need(
        (1.0..=10.0).contains(&timing.poll_backoff_rate),
        "poll_backoff_rate",
        format!("is {}; must be from 1.0 to 10.0", timing.poll_backoff_rate),
    );
    need(
        (1..=MAX_LAUNCH_TIMEOUT_MINUTES).contains(&timing.launch_timeout_minutes),
        "launch_timeout_minutes",
        format!(
            "is {}; must be from 1 to {MAX_LAUNCH_TIMEOUT_MINUTES}",
            timing.launch_timeout_minutes
        ),
    );
    need(
        (1..=MAX_POLL_SECONDS).contains(&timing.health_interval_seconds),
        "health_interval_seconds",
        format!(
            "is {}; must be from 1 to {MAX_POLL_SECONDS}",
            timing.health_interval_seconds
        ),
    );
    issues
}

/// The recovery state machine's `TimeoutSeconds` (a week): the backstop behind each
/// run's own deadline. A run whose worst case is longer is refused.
pub const MAX_RUN_SECONDS: u64 = 7 * 24 * 60 * 60;

/// The longest wait between two polls: longer gains nothing (the wave's servers are
/// usually up in minutes) and delays the recovery.
pub const MAX_POLL_SECONDS: u32 = 3600;
/// The longest launch timeout of a wave: DRS launches take minutes to an hour.
pub const MAX_LAUNCH_TIMEOUT_MINUTES: u32 = 24 * 60;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolve::{ResolvedWave, WaveServer};
    use crate::{Format, parse_plan};

    fn resolved(waves: usize, servers: usize) -> ResolvedPlan {
        ResolvedPlan {
            waves: (0..waves)
                .map(|i| ResolvedWave {
                    name: format!("{}", i + 1),
                    servers: (0..servers)
                        .map(|k| WaveServer {
                            id: format!("s-{i:03}{k:014}"),
                            hostname: None,
                            optional: false,
                        })
                        .collect(),
                    depends_on: if i == 0 { vec![] } else { vec![i - 1] },
                })
                .collect(),
            layers: (0..waves).map(|i| vec![i]).collect(),
        }
    }

    fn tag_plan() -> Plan {
        parse_plan(
            "name: fleet\nrto_minutes: 120\nselector: {\"dr:plan\": fleet}\n",
            Format::Yaml,
        )
        .unwrap()
    }

    #[test]
    fn the_default_timing_fits_twenty_waves() {
        let budget = RunBudget::of(&tag_plan(), &resolved(20, 200), &Timing::default(), 0);
        assert_eq!(budget.problem(), None, "{budget}");
        // 15-minute health gates polled every 15 s: 61 polls a wave.
        assert_eq!(budget.health_polls, vec![61; 20]);
    }

    #[test]
    fn one_second_polls_for_many_waves_are_refused_with_the_arithmetic() {
        let timing = Timing {
            poll_initial_seconds: 1,
            poll_max_seconds: 1,
            poll_backoff_rate: 1.0,
            launch_timeout_minutes: 90,
            health_interval_seconds: 1,
            drill_keep_seconds: None,
        };
        let budget = RunBudget::of(&tag_plan(), &resolved(20, 200), &timing, 0);
        assert_eq!(budget.launch_polls_per_wave, 5401);
        let issue = budget.problem().expect("refused");
        assert_eq!(issue.path, "timing");
        assert!(
            issue.message.contains(
                "600 + 20 waves × (60 + 5401 launch polls × 13) + 18020 health polls × 9 + 0 hooks × 12 + 20 stages × 20 = 1568640"
            ),
            "{}",
            issue.message
        );
        assert!(issue.message.contains("over the limit of 25000"));
    }

    #[test]
    fn the_run_deadline_adds_up_layers_approval_and_keep_time() {
        let plan = parse_plan(
            "name: shop\nrto_minutes: 60\nselector: {\"dr:plan\": shop}\napproval: {required_for: [recovery], timeout_minutes: 30}\nwaves:\n  - name: \"1\"\n    selector: {\"dr:wave\": \"1\"}\n    health: {checks: [ec2-status], timeout_minutes: 5}\n  - name: \"2\"\n    selector: {\"dr:wave\": \"2\"}\n    depends_on: [\"1\"]\n",
            Format::Yaml,
        )
        .unwrap();
        let timing = Timing {
            launch_timeout_minutes: 10,
            poll_max_seconds: 60,
            health_interval_seconds: 10,
            ..Timing::default()
        };
        let budget = RunBudget::of(&plan, &resolved(2, 1), &timing, 120);
        // Wave 1: 600 + 60 + 300 + 10; wave 2: 600 + 60 + 900 + 10; approval 1800,
        // keep 120, overhead 3600.
        assert_eq!(budget.seconds, 970 + 1570 + 1800 + 120 + 3600);
    }

    #[test]
    fn the_state_machine_times_out_at_the_longest_run_allowed() {
        let asl: serde_json::Value =
            serde_json::from_str(include_str!("../../statemachines/recovery.asl.json")).unwrap();
        assert_eq!(asl["TimeoutSeconds"], MAX_RUN_SECONDS);
    }

    #[test]
    fn timing_floors_name_the_field() {
        let timing = Timing {
            poll_initial_seconds: 0,
            poll_max_seconds: 0,
            poll_backoff_rate: 0.5,
            launch_timeout_minutes: 0,
            health_interval_seconds: 0,
            drill_keep_seconds: None,
        };
        let paths: Vec<String> = timing_problems(&timing)
            .into_iter()
            .map(|i| i.path)
            .collect();
        assert_eq!(
            paths,
            [
                "timing.poll_initial_seconds",
                "timing.poll_max_seconds",
                "timing.poll_backoff_rate",
                "timing.launch_timeout_minutes",
                "timing.health_interval_seconds"
            ]
        );
        assert!(timing_problems(&Timing::default()).is_empty());
    }
}
