//! The run's timeline: each wave's phases (its DRS launch, its health gate) and a
//! recovery's DNS cutover as bars on one time axis, with the moment the run counted as
//! recovered and its RTO target. One model, drawn twice: as a Mermaid gantt chart in the
//! Markdown report and as SVG in the HTML report ([`super::svg`]).
//!
//! Hooks are Lambda invocations the state machine makes itself and nothing records
//! their times, so the timeline names a wave's hooks (pre hooks ran before its launch,
//! post hooks after its gate) without drawing them.

use std::fmt::Write;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::{Report, WaveReport};
use crate::contract::step::WaveHooks;
use crate::health::WaveHealthRecord;
use crate::launch::JobLogEntry;

/// When a wave's phases began and ended, as its records hold them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaveTiming {
    /// The first event of the wave's DRS jobs (their job log); the launch ends at the
    /// wave's `finished_at`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch_started_at: Option<Timestamp>,
    /// The health gate's first poll.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate_started_at: Option<Timestamp>,
    /// When the gate passed, else its last poll.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate_ended_at: Option<Timestamp>,
    /// The hook functions (ARNs) the wave ran: their times are not recorded.
    #[serde(default, skip_serializing_if = "WaveHooks::is_empty")]
    pub hooks: WaveHooks,
}

impl WaveTiming {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// The times a wave's launch log and health record hold.
    pub fn of(log: &[JobLogEntry], health: Option<&WaveHealthRecord>) -> Self {
        Self {
            launch_started_at: log.iter().filter_map(|e| e.time.parse().ok()).min(),
            gate_started_at: health.map(|h| h.started_at),
            gate_ended_at: health.map(|h| h.healthy_at.unwrap_or(h.checked_at)),
            hooks: WaveHooks::default(),
        }
    }
}

/// What a bar stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Launch,
    HealthGate,
    DnsCutover,
}

impl Phase {
    pub fn label(self) -> &'static str {
        match self {
            Self::Launch => "launch",
            Self::HealthGate => "health gate",
            Self::DnsCutover => "DNS cutover",
        }
    }
}

/// How a phase ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    Failed,
    /// Still running when the run ended (stopped, timed out, or failed elsewhere).
    Unfinished,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Passed => "passed",
            Self::Failed => "failed",
            Self::Unfinished => "not finished",
        }
    }
}

/// One phase on the time axis, in row `row`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bar {
    pub row: usize,
    pub phase: Phase,
    pub start: Timestamp,
    pub end: Timestamp,
    pub outcome: Outcome,
}

impl Bar {
    pub fn seconds(&self) -> i64 {
        seconds_between(self.start, self.end)
    }
}

/// The whole picture: rows (one per wave, then DNS), bars, markers and what is known
/// but not drawn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeline {
    /// The axis: the run's start (or an earlier bar's) to its end (or a later bar's).
    pub start: Timestamp,
    pub end: Timestamp,
    /// Row labels: wave names, then "DNS cutover" for a recovery's cutover.
    pub rows: Vec<String>,
    pub bars: Vec<Bar>,
    /// When the run counted as recovered (the RTO's end), for a run with an RTO.
    pub recovered_at: Option<Timestamp>,
    /// Where the RTO target falls, when it falls on the axis.
    pub rto_target_at: Option<Timestamp>,
    /// What the bars do not show: hooks, waves with no recorded times.
    pub notes: Vec<String>,
}

impl Timeline {
    pub fn of(report: &Report) -> Self {
        let mut rows = Vec::new();
        let mut bars = Vec::new();
        let mut notes = Vec::new();
        for wave in &report.waves {
            let row = rows.len();
            rows.push(wave.name.clone());
            wave_bars(wave, row, &mut bars, &mut notes);
        }
        if let Some(dns) = &report.dns
            && let Some(submitted) = dns.submitted_at
        {
            let (end, outcome) = match dns.insync_at {
                Some(insync) => (insync, Outcome::Passed),
                None => (report.finished_at, Outcome::Unfinished),
            };
            bars.push(Bar {
                row: rows.len(),
                phase: Phase::DnsCutover,
                start: submitted,
                end: end.max(submitted),
                outcome,
            });
            rows.push(Phase::DnsCutover.label().to_owned());
        }
        let start = bars
            .iter()
            .map(|b| b.start)
            .fold(report.started_at, Timestamp::min);
        let end = bars
            .iter()
            .map(|b| b.end)
            .fold(report.finished_at, Timestamp::max)
            .max(start);
        let recovered_at = report.rto.as_ref().and_then(|_| {
            report
                .dns
                .as_ref()
                .and_then(|d| d.insync_at)
                .or_else(|| report.waves.iter().filter_map(|w| w.healthy_at).max())
        });
        let rto_target_at = report.rto.as_ref().and_then(|rto| {
            let from = report
                .resumed
                .as_ref()
                .map_or(report.started_at, |r| r.first_started_at);
            let at = from + SignedDuration::from_mins(i64::from(rto.target_minutes));
            if at <= end {
                Some(at)
            } else {
                notes.push(format!(
                    "The RTO target ({} min) falls after the end of the chart.",
                    rto.target_minutes
                ));
                None
            }
        });
        Self {
            start,
            end,
            rows,
            bars,
            recovered_at,
            rto_target_at,
            notes,
        }
    }

    /// The axis's length in seconds (at least one, so that positions are defined).
    pub fn span_seconds(&self) -> f64 {
        self.end.duration_since(self.start).as_secs_f64().max(1.0)
    }

    /// Where `at` falls on the axis, from 0.0 (start) to 1.0 (end).
    pub fn fraction(&self, at: Timestamp) -> f64 {
        (at.duration_since(self.start).as_secs_f64() / self.span_seconds()).clamp(0.0, 1.0)
    }

    /// Tick marks: round times, at most `max` of them, from the axis's start.
    pub fn ticks(&self, max: usize) -> Vec<Timestamp> {
        let step = tick_step(self.span_seconds(), max);
        let start = self.start.as_second();
        let first = start.div_euclid(step) * step + if start % step == 0 { 0 } else { step };
        (0..)
            .map(|n| first + n * step)
            .take_while(|&s| s <= self.end.as_second())
            .filter_map(|s| Timestamp::from_second(s).ok())
            .collect()
    }

    /// How ticks are labelled: seconds for short runs, minutes for longer, the day
    /// too for runs of days (strftime).
    pub fn tick_format(&self, max: usize) -> &'static str {
        match tick_step(self.span_seconds(), max) {
            s if s < 60 => "%H:%M:%S",
            s if s < 86_400 => "%H:%M",
            _ => "%m-%d %H:%M",
        }
    }
}

/// The smallest round step that leaves at most `max` ticks (both ends included) on an
/// axis of `span` seconds.
fn tick_step(span: f64, max: usize) -> i64 {
    const STEPS: [i64; 19] = [
        1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10_800, 21_600, 43_200,
        86_400, 604_800,
    ];
    let intervals = max.max(2) as f64 - 1.0;
    STEPS
        .into_iter()
        .find(|&step| (span / step as f64).floor() <= intervals)
        .unwrap_or(604_800)
}

fn wave_bars(wave: &WaveReport, row: usize, bars: &mut Vec<Bar>, notes: &mut Vec<String>) {
    let timing = &wave.timing;
    match (timing.launch_started_at, wave.finished_at) {
        (Some(start), Some(end)) => bars.push(Bar {
            row,
            phase: Phase::Launch,
            start,
            end: end.max(start),
            outcome: if wave.state == "FAILED" {
                Outcome::Failed
            } else {
                Outcome::Passed
            },
        }),
        (None, Some(_)) if wave.launched + wave.failed > 0 => notes.push(format!(
            "{}: the launch's start is not recorded (no DRS job log).",
            wave.name
        )),
        (_, None) => notes.push(format!(
            "{}: did not finish launching; no times recorded.",
            wave.name
        )),
        _ => {}
    }
    if let (Some(start), Some(end)) = (timing.gate_started_at, timing.gate_ended_at) {
        bars.push(Bar {
            row,
            phase: Phase::HealthGate,
            start,
            end: end.max(start),
            outcome: match (wave.healthy_at, wave.state.as_str()) {
                (Some(_), _) => Outcome::Passed,
                (None, "UNHEALTHY") => Outcome::Failed,
                _ => Outcome::Unfinished,
            },
        });
    }
    let hooks = |arns: &[String]| {
        arns.iter()
            .map(|arn| function_name(arn))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !timing.hooks.pre.is_empty() {
        notes.push(format!(
            "{}: pre hooks {} ran before its launch (hook times are not recorded).",
            wave.name,
            hooks(&timing.hooks.pre)
        ));
    }
    if !timing.hooks.post.is_empty() {
        notes.push(format!(
            "{}: post hooks {} ran after its health gate (hook times are not recorded).",
            wave.name,
            hooks(&timing.hooks.post)
        ));
    }
}

/// A hook's function name from its ARN (`...:function:NAME[:QUALIFIER]`).
fn function_name(arn: &str) -> &str {
    arn.split_once(":function:")
        .map_or(arn, |(_, rest)| rest.split(':').next().unwrap_or(rest))
}

/// From `from` to `to`, to the nearest second (the picture and the tables agree).
pub fn seconds_between(from: Timestamp, to: Timestamp) -> i64 {
    to.duration_since(from).as_secs_f64().round() as i64
}

/// "42s", "3m 05s", "2h 07m".
pub fn span_text(seconds: i64) -> String {
    match seconds {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m {:02}s", s / 60, s % 60),
        s => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// A name Mermaid reads as plain text: its separators (`:` `;` `#` `,` `%`), markup and
/// line breaks become `_`.
fn mermaid_text(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || " -_.()/+".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let trimmed = cleaned.trim();
    if trimmed.is_empty() {
        "_".to_owned()
    } else {
        trimmed.to_owned()
    }
}

const MERMAID_DATE: &str = "%Y-%m-%d %H:%M:%S";

/// The Markdown report's "Timeline" section: a Mermaid gantt chart (times in UTC) and
/// the notes.
pub fn mermaid_section(report: &Report) -> String {
    let timeline = Timeline::of(report);
    let mut md = String::from("\n## Timeline\n\n");
    if timeline.bars.is_empty() {
        md.push_str("No phase of the run has recorded times.\n");
    } else {
        md.push_str(&mermaid_gantt(&timeline, report));
    }
    for note in &timeline.notes {
        let _ = writeln!(md, "\n- {note}");
    }
    md
}

fn mermaid_gantt(timeline: &Timeline, report: &Report) -> String {
    let mode = report.mode.map_or("run".to_owned(), |m| m.to_string());
    let mut out = String::from("```mermaid\ngantt\n");
    let _ = writeln!(
        out,
        "    title {} of {} (times UTC)",
        mermaid_text(&mode),
        mermaid_text(&report.plan)
    );
    // Dates as the report writes them (UTC); Mermaid shows them as they are written.
    let _ = writeln!(out, "    dateFormat YYYY-MM-DD HH:mm:ss");
    let _ = writeln!(out, "    axisFormat {}", timeline.tick_format(10));
    let _ = writeln!(out, "    todayMarker off");
    let date = |t: Timestamp| t.strftime(MERMAID_DATE).to_string();
    for (row, name) in timeline.rows.iter().enumerate() {
        let _ = writeln!(out, "    section {}", mermaid_text(name));
        for (id, bar) in timeline
            .bars
            .iter()
            .enumerate()
            .filter(|(_, b)| b.row == row)
        {
            let tag = match bar.outcome {
                Outcome::Passed => "done",
                Outcome::Failed => "crit",
                Outcome::Unfinished => "active",
            };
            let _ = writeln!(
                out,
                "    {} {} :{tag}, b{id}, {}, {}",
                bar.phase.label(),
                span_text(bar.seconds()),
                date(bar.start),
                date(bar.end)
            );
        }
    }
    if let (Some(at), Some(rto)) = (timeline.recovered_at, &report.rto) {
        let _ = writeln!(out, "    section RTO");
        let _ = writeln!(
            out,
            "    {} {} of {} min :milestone, m0, {}, {}",
            if rto.met {
                "recovered in"
            } else {
                "recovered late in"
            },
            span_text(rto.measured_seconds),
            rto.target_minutes,
            date(at),
            date(at)
        );
    }
    out.push_str("```\n");
    out
}
