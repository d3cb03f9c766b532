//! Why a run ended without succeeding, said so that a person knows what to do: its
//! error's message kept short enough to read in a terminal, and what to run next, by
//! the error catalog ([`ErrorName`]). Pure: `drplan status` renders it.

use drplan_core::Mode;
use drplan_core::contract::ErrorName;

/// The lines of a cause shown at most; the rest is in the run's report.
const MAX_CAUSE_LINES: usize = 8;
/// The characters of one cause line shown at most.
const MAX_CAUSE_LINE_CHARS: usize = 160;

/// What the next steps name: the run, and how to start its plan again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunNames {
    pub execution: String,
    /// The plan's name, when the input names one.
    pub plan: Option<String>,
    /// Whether the plan is stored in the bucket (started by name) rather than sent inline
    /// from a file.
    pub plan_stored: bool,
    pub mode: Option<Mode>,
}

impl RunNames {
    fn start_again(&self) -> String {
        let plan = match (&self.plan, self.plan_stored) {
            (Some(name), true) => name.clone(),
            _ => "PLAN_FILE".to_owned(),
        };
        let mode = self.mode.map_or("MODE", Mode::as_str);
        format!("drplan start {plan} --mode {mode}")
    }

    fn report(&self) -> String {
        format!("drplan report {}", self.execution)
    }
}

/// The cause as lines to show: at most [`MAX_CAUSE_LINES`] (then how many more, and
/// where they are), each cut at [`MAX_CAUSE_LINE_CHARS`].
pub fn short_cause(cause: &str, run: &RunNames) -> Vec<String> {
    let lines: Vec<&str> = cause
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty())
        .collect();
    let mut shown: Vec<String> = lines
        .iter()
        .take(MAX_CAUSE_LINES)
        .map(|line| {
            if line.chars().count() > MAX_CAUSE_LINE_CHARS {
                let cut: String = line.chars().take(MAX_CAUSE_LINE_CHARS - 3).collect();
                format!("{cut}...")
            } else {
                (*line).to_owned()
            }
        })
        .collect();
    if lines.len() > MAX_CAUSE_LINES {
        shown.push(format!(
            "... {} more lines: {}",
            lines.len() - MAX_CAUSE_LINES,
            run.report()
        ));
    }
    shown
}

/// The run that holds the plan, as a PlanBusy cause names it
/// (`... is held by the recovery run shop-recovery-1 (started ...)`).
pub fn plan_holder(cause: &str) -> Option<&str> {
    let after = cause.split("is held by the ").nth(1)?;
    let after = after.split_once(" run ")?.1;
    let name = after.split([' ', '(', ':', ',']).next()?;
    (!name.is_empty()).then_some(name)
}

/// What to run next, for a run that ended with `status` (FAILED, TIMED_OUT, ABORTED)
/// and `error` (`cause` as the person reads it).
pub fn next_steps(status: &str, error: &str, cause: &str, run: &RunNames) -> Vec<String> {
    let start = run.start_again();
    let report = run.report();
    let first = match ErrorName::parse(error) {
        Some(ErrorName::InvalidPlan) => format!(
            "fix the plan's problems above (`drplan validate PLAN_FILE` checks a plan file), then: {start}"
        ),
        Some(ErrorName::InvalidInput) => {
            format!("the execution input is not what drplan sends; start runs with: {start}")
        }
        Some(ErrorName::NotReady) => format!(
            "fix the servers' readiness (every problem is in the report: {report}), then: {start}"
        ),
        Some(ErrorName::PlanBusy) => match plan_holder(cause) {
            Some(holder) => format!(
                "see the run that holds the plan: drplan status {holder}; once it has ended: {start}"
            ),
            None => format!(
                "another run holds the plan (named above): drplan status it; once it has ended: {start}"
            ),
        },
        Some(ErrorName::WaveFailed | ErrorName::WaveUnhealthy | ErrorName::HookFailed) => {
            format!("see which servers failed and why: {report}; fix them, then: {start}")
        }
        Some(ErrorName::Declined) => {
            format!("declined at approval, nothing launched; to run it after all: {start}")
        }
        Some(ErrorName::ApprovalTimedOut) => format!(
            "nobody approved in time, nothing launched; start again and answer with drplan approve: {start}"
        ),
        Some(ErrorName::Misconfigured) => format!(
            "drplan's stack is not deployed right (the cause names what); deploy it again, then: {start}"
        ),
        Some(ErrorName::AwsCallFailed) => format!(
            "an AWS call was refused (the cause names it: permissions, a missing resource); fix that, then: {start}"
        ),
        Some(ErrorName::TooLarge) => format!(
            "an object in the bucket is larger than drplan reads (the cause names it); make it smaller, then: {start}"
        ),
        Some(ErrorName::Throttled | ErrorName::Transient) => format!(
            "AWS kept failing past drplan's retries; what the run did: {report}; when AWS answers again: {start}"
        ),
        Some(ErrorName::StoppedByRecovery) => format!(
            "a recovery of the plan stopped this drill (the cause names it); drplan status that recovery; this drill's report: {report}"
        ),
        Some(ErrorName::BenchTimeout) => {
            format!("drplan bench stopped this run, which did not end in time; {report}")
        }
        None => match status {
            "TIMED_OUT" => format!("the run went past its time limit; what it did: {report}"),
            "ABORTED" => format!("the run was stopped; what it did: {report}"),
            _ => format!("what the run did: {report}; fix the cause, then: {start}"),
        },
    };
    vec![format!("next: {first}"), format!("report: {report}")]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shop() -> RunNames {
        RunNames {
            execution: "shop-recovery-1".into(),
            plan: Some("shop".into()),
            plan_stored: true,
            mode: Some(Mode::Recovery),
        }
    }

    #[test]
    fn every_catalog_error_has_a_next_step_and_the_report() {
        for error in ErrorName::ALL {
            let steps = next_steps("FAILED", error.as_str(), "", &shop());
            assert_eq!(steps.len(), 2, "{error}");
            assert!(steps[0].starts_with("next: "), "{error}: {steps:?}");
            assert_eq!(steps[1], "report: drplan report shop-recovery-1");
        }
    }

    #[test]
    fn the_next_step_fits_the_error() {
        let next = |error: &str, cause: &str, run: &RunNames| {
            next_steps("FAILED", error, cause, run).remove(0)
        };
        let inline = RunNames {
            plan_stored: false,
            mode: Some(Mode::Drill),
            ..shop()
        };
        assert_eq!(
            next("drplan.InvalidPlan", "", &inline),
            "next: fix the plan's problems above (`drplan validate PLAN_FILE` checks a plan file), then: drplan start PLAN_FILE --mode drill"
        );
        assert!(
            next("drplan.NotReady", "", &shop()).contains(
                "(every problem is in the report: drplan report shop-recovery-1), then: drplan start shop --mode recovery"
            )
        );
        let busy = "plan: plan \"shop\" is held by the recovery run shop-recovery-0 (started 2026-11-28T03:00:00Z): one run per plan at a time";
        assert!(next("drplan.PlanBusy", busy, &shop()).contains("drplan status shop-recovery-0;"));
        for wave in ["drplan.WaveFailed", "drplan.WaveUnhealthy"] {
            assert!(next(wave, "", &shop()).starts_with(
                "next: see which servers failed and why: drplan report shop-recovery-1"
            ));
        }
        for nothing_launched in ["drplan.Declined", "drplan.ApprovalTimedOut"] {
            assert!(
                next(nothing_launched, "", &shop()).ends_with("drplan start shop --mode recovery")
            );
        }
        let timed_out = next_steps("TIMED_OUT", "States.Timeout", "", &RunNames::default());
        assert_eq!(
            timed_out[0],
            "next: the run went past its time limit; what it did: drplan report "
        );
    }

    #[test]
    fn a_long_cause_is_cut_to_lines_a_terminal_shows() {
        let cause: String = (1..=12)
            .map(|i| format!("waves[{i}].selector: matches no server\n"))
            .collect();
        let lines = short_cause(&cause, &shop());
        assert_eq!(lines.len(), MAX_CAUSE_LINES + 1);
        assert_eq!(lines[0], "waves[1].selector: matches no server");
        assert_eq!(
            lines[MAX_CAUSE_LINES],
            "... 4 more lines: drplan report shop-recovery-1"
        );
        let wide = short_cause(&"x".repeat(500), &shop());
        assert_eq!(wide.len(), 1);
        assert_eq!(wide[0].chars().count(), MAX_CAUSE_LINE_CHARS);
        assert!(wide[0].ends_with("..."));
        assert!(short_cause("", &shop()).is_empty());
    }

    #[test]
    fn the_holder_of_a_plan_is_read_from_the_cause() {
        assert_eq!(
            plan_holder("plan \"shop\" is held by the drill run shop-drill-2 (started x)"),
            Some("shop-drill-2")
        );
        assert_eq!(plan_holder("something else"), None);
    }
}
