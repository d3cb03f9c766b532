//! A plan's audit trail (`drplan history`): every run of the plan from its reports, and
//! the line an auditor asks for first: when the plan last proved it works, and how fast.
//! Pure; the CLI reads the reports from the bucket.

use std::fmt::Write;

use jiff::Timestamp;
use serde::Serialize;

use crate::plan::Mode;
use crate::report::Report;

/// One run of the plan, as its report tells it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunSummary {
    pub execution_name: String,
    pub mode: Option<Mode>,
    pub status: String,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    /// Measured recovery time and target (a run that succeeded).
    pub rto_seconds: Option<i64>,
    pub rto_target_minutes: Option<u32>,
    pub rto_met: Option<bool>,
    /// The run this one continued (`drplan resume`).
    pub resumes: Option<String>,
    /// Waves left out by a person.
    pub skipped_waves: Vec<String>,
    /// Its report in the bucket.
    pub report_key: String,
}

impl RunSummary {
    pub fn of(report: &Report, report_key: &str) -> Self {
        Self {
            execution_name: report.execution_name.clone(),
            mode: report.mode,
            status: report.status.clone(),
            started_at: report.started_at,
            finished_at: report.finished_at,
            rto_seconds: report.rto.as_ref().map(|r| r.measured_seconds),
            rto_target_minutes: report.rto.as_ref().map(|r| r.target_minutes),
            rto_met: report.rto.as_ref().map(|r| r.met),
            resumes: report.resumed.as_ref().map(|r| r.resumes.clone()),
            skipped_waves: report
                .skipped
                .iter()
                .filter(|s| s.needs.is_none())
                .map(|s| s.wave.clone())
                .collect(),
            report_key: report_key.to_owned(),
        }
    }
}

/// The plan's history: its runs, newest first, and the compliance line of each mode.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct History {
    pub plan: String,
    pub runs: Vec<RunSummary>,
    pub compliance: Vec<String>,
}

fn minutes_and_seconds(seconds: i64) -> String {
    format!("{}m {:02}s", seconds / 60, seconds % 60)
}

/// "12 days ago", "5 h ago", "3 min ago".
fn age(now: Timestamp, then: Timestamp) -> String {
    let seconds = now.duration_since(then).as_secs().max(0);
    match seconds {
        s if s >= 2 * 86_400 => format!("{} days ago", s / 86_400),
        s if s >= 3_600 => format!("{} h ago", s / 3_600),
        s => format!("{} min ago", s / 60),
    }
}

impl History {
    pub fn of(plan: &str, mut runs: Vec<RunSummary>, now: Timestamp) -> Self {
        runs.sort_by_key(|r| std::cmp::Reverse(r.started_at));
        let compliance = [Mode::Drill, Mode::Recovery]
            .into_iter()
            .map(|mode| {
                let last = runs
                    .iter()
                    .find(|r| r.mode == Some(mode) && r.status == "SUCCEEDED");
                match last {
                    None => format!("last successful {mode}: none on record"),
                    Some(run) => {
                        let rto = match (run.rto_seconds, run.rto_target_minutes, run.rto_met) {
                            (Some(s), Some(target), Some(met)) => format!(
                                ", RTO {} against {target} min ({})",
                                minutes_and_seconds(s),
                                if met { "met" } else { "MISSED" }
                            ),
                            _ => String::new(),
                        };
                        format!(
                            "last successful {mode}: {} ({}){rto}",
                            age(now, run.finished_at),
                            run.execution_name
                        )
                    }
                }
            })
            .collect();
        Self {
            plan: plan.to_owned(),
            runs,
            compliance,
        }
    }

    /// The newest successful run of `mode`.
    pub fn last_success(&self, mode: Mode) -> Option<&RunSummary> {
        self.runs
            .iter()
            .find(|r| r.mode == Some(mode) && r.status == "SUCCEEDED")
    }

    /// For people: the compliance lines, then one line per run.
    pub fn to_text(&self) -> String {
        let mut text = String::new();
        let _ = writeln!(text, "plan {}", self.plan);
        for line in &self.compliance {
            let _ = writeln!(text, "  {line}");
        }
        if self.runs.is_empty() {
            let _ = writeln!(text, "  no run has a report yet");
        }
        for run in &self.runs {
            let rto = match (run.rto_seconds, run.rto_target_minutes) {
                (Some(s), Some(target)) => format!("RTO {} / {target} min", minutes_and_seconds(s)),
                _ => "RTO -".to_owned(),
            };
            let mut notes = Vec::new();
            if let Some(resumes) = &run.resumes {
                notes.push(format!("resumes {resumes}"));
            }
            if !run.skipped_waves.is_empty() {
                notes.push(format!("skipped {}", run.skipped_waves.join(", ")));
            }
            let notes = if notes.is_empty() {
                String::new()
            } else {
                format!("  ({})", notes.join("; "))
            };
            let _ = writeln!(
                text,
                "  {}  {:8} {:9} {rto}  {}{notes}",
                run.started_at.strftime("%Y-%m-%d %H:%M"),
                run.mode.map_or("?", Mode::as_str),
                run.status,
                run.execution_name
            );
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(
        name: &str,
        mode: Mode,
        status: &str,
        started: i64,
        rto: Option<(i64, bool)>,
    ) -> RunSummary {
        let started_at = Timestamp::from_second(started).unwrap();
        RunSummary {
            execution_name: name.into(),
            mode: Some(mode),
            status: status.into(),
            started_at,
            finished_at: Timestamp::from_second(started + 1_500).unwrap(),
            rto_seconds: rto.map(|(s, _)| s),
            rto_target_minutes: rto.map(|_| 30),
            rto_met: rto.map(|(_, met)| met),
            resumes: None,
            skipped_waves: Vec::new(),
            report_key: format!("reports/shop/{name}.json"),
        }
    }

    #[test]
    fn the_compliance_line_names_the_last_successful_run_of_each_mode_and_its_rto() {
        let day = 86_400;
        let now = Timestamp::from_second(100 * day).unwrap();
        let runs = vec![
            run(
                "drill-old",
                Mode::Drill,
                "SUCCEEDED",
                80 * day,
                Some((1_000, true)),
            ),
            run(
                "drill-new",
                Mode::Drill,
                "SUCCEEDED",
                88 * day,
                Some((1_325, true)),
            ),
            run("drill-failed", Mode::Drill, "FAILED", 99 * day, None),
        ];
        let history = History::of("shop", runs, now);
        assert_eq!(
            history.compliance,
            [
                "last successful drill: 11 days ago (drill-new), RTO 22m 05s against 30 min (met)",
                "last successful recovery: none on record",
            ]
        );
        let names: Vec<&str> = history
            .runs
            .iter()
            .map(|r| r.execution_name.as_str())
            .collect();
        assert_eq!(
            names,
            ["drill-failed", "drill-new", "drill-old"],
            "newest first"
        );
        let text = history.to_text();
        assert!(text.contains("FAILED    RTO -  drill-failed"), "{text}");
        assert!(text.contains("RTO 22m 05s / 30 min  drill-new"), "{text}");
    }
}
