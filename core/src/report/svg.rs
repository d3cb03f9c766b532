//! The timeline drawn as inline SVG for the HTML report: one row per wave (and one for
//! a DNS cutover), a bar per phase coloured by phase and outcome, round-time ticks on
//! a UTC axis, the recovered moment and the RTO target as vertical lines, and a legend.
//! Every bar carries its wave, phase, times and outcome as `data-*` attributes and a
//! `<title>` tooltip, so what the picture shows can be read back exactly.

use std::fmt::Write;

use jiff::Timestamp;

use super::html::escape;
use super::timeline::{Bar, Outcome, Phase, Timeline, span_text};

/// The drawing's size and layout, in SVG user units (pixels at 100%).
pub const WIDTH: f64 = 960.0;
/// Left of the plot: the row labels.
pub const LABEL_WIDTH: f64 = 180.0;
const RIGHT_MARGIN: f64 = 24.0;
/// Above the first row: the axis's tick labels.
pub const TOP: f64 = 34.0;
pub const ROW_HEIGHT: f64 = 30.0;
const BAR_HEIGHT: f64 = 18.0;
const MIN_BAR_WIDTH: f64 = 3.0;
/// Below the rows: marker captions and the legend.
const FOOTER: f64 = 64.0;
const MAX_TICKS: usize = 10;
/// Row labels longer than this are cut (the full name is in their tooltip).
const LABEL_CHARS: usize = 24;
/// Roughly how wide a character of the 11-unit bar font is, to decide whether a bar's
/// caption fits inside it.
const CHAR_WIDTH: f64 = 6.4;

pub const PLOT_WIDTH: f64 = WIDTH - LABEL_WIDTH - RIGHT_MARGIN;

const FAILED: &str = "#c62828";
const UNFINISHED: &str = "#e0a100";

fn phase_colour(phase: Phase) -> &'static str {
    match phase {
        Phase::Launch => "#1f6feb",
        Phase::HealthGate => "#2e8b57",
        Phase::DnsCutover => "#7b52c7",
    }
}

fn bar_colour(bar: &Bar) -> &'static str {
    match bar.outcome {
        Outcome::Passed => phase_colour(bar.phase),
        Outcome::Failed => FAILED,
        Outcome::Unfinished => UNFINISHED,
    }
}

/// The x coordinate of a moment.
pub fn x_of(timeline: &Timeline, at: Timestamp) -> f64 {
    LABEL_WIDTH + timeline.fraction(at) * PLOT_WIDTH
}

/// The y coordinate of a row's top.
pub fn y_of(row: usize) -> f64 {
    TOP + row as f64 * ROW_HEIGHT
}

pub fn height(timeline: &Timeline) -> f64 {
    y_of(timeline.rows.len()) + FOOTER
}

fn utc(at: Timestamp) -> String {
    at.strftime("%H:%M:%S").to_string()
}

/// The SVG element (no XML declaration: it is inlined in the HTML page).
pub fn timeline_svg(timeline: &Timeline, title: &str) -> String {
    let height = height(timeline);
    let rows_bottom = y_of(timeline.rows.len());
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="timeline" viewBox="0 0 {WIDTH} {height:.0}" width="{WIDTH}" height="{height:.0}" role="img" aria-labelledby="timeline-title" font-family="system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif" font-size="12">"#
    );
    let _ = write!(
        svg,
        r#"<title id="timeline-title">{}</title>"#,
        escape(title)
    );
    for row in (0..timeline.rows.len()).filter(|r| r % 2 == 1) {
        let _ = write!(
            svg,
            "<rect x=\"0\" y=\"{:.1}\" width=\"{WIDTH}\" height=\"{ROW_HEIGHT}\" fill=\"#f3f5f8\"/>",
            y_of(row)
        );
    }
    // The axis: grid lines at round times, labelled above the rows.
    let format = timeline.tick_format(MAX_TICKS);
    let _ = write!(
        svg,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#57606a\">UTC</text>",
        // Clear of a tick label centred on the axis's start.
        LABEL_WIDTH - 34.0,
        TOP - 12.0
    );
    for tick in timeline.ticks(MAX_TICKS) {
        let x = x_of(timeline, tick);
        let _ = write!(
            svg,
            "<line class=\"tick\" x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{rows_bottom:.1}\" stroke=\"#d0d7de\"/><text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#57606a\">{}</text>",
            TOP - 6.0,
            TOP - 12.0,
            escape(&tick.strftime(format).to_string())
        );
    }
    let _ = write!(
        svg,
        "<line x1=\"{LABEL_WIDTH}\" y1=\"{rows_bottom:.1}\" x2=\"{:.1}\" y2=\"{rows_bottom:.1}\" stroke=\"#8c959f\"/>",
        LABEL_WIDTH + PLOT_WIDTH
    );
    for (row, name) in timeline.rows.iter().enumerate() {
        let shown = if name.chars().count() > LABEL_CHARS {
            format!(
                "{}…",
                name.chars().take(LABEL_CHARS - 1).collect::<String>()
            )
        } else {
            name.clone()
        };
        let _ = write!(
            svg,
            "<text class=\"row-label\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#24292f\"><title>{}</title>{}</text>",
            LABEL_WIDTH - 10.0,
            y_of(row) + ROW_HEIGHT / 2.0 + 4.0,
            escape(name),
            escape(&shown)
        );
    }
    for bar in &timeline.bars {
        draw_bar(&mut svg, timeline, bar);
    }
    draw_markers(&mut svg, timeline, rows_bottom);
    draw_legend(&mut svg, timeline, rows_bottom + 52.0);
    svg.push_str("</svg>");
    svg
}

fn draw_bar(svg: &mut String, timeline: &Timeline, bar: &Bar) {
    let wave = &timeline.rows[bar.row];
    // A bar of a second on an axis of hours still shows, inside the plot.
    let width = (x_of(timeline, bar.end) - x_of(timeline, bar.start)).max(MIN_BAR_WIDTH);
    let x = x_of(timeline, bar.start).min(LABEL_WIDTH + PLOT_WIDTH - width);
    let y = y_of(bar.row) + (ROW_HEIGHT - BAR_HEIGHT) / 2.0;
    let duration = span_text(bar.seconds());
    let tooltip = format!(
        "{wave}: {} {} to {} UTC ({duration}), {}",
        bar.phase.label(),
        utc(bar.start),
        utc(bar.end),
        bar.outcome.as_str()
    );
    let _ = write!(
        svg,
        "<g class=\"bar\" data-wave=\"{}\" data-phase=\"{}\" data-outcome=\"{}\" data-start=\"{}\" data-end=\"{}\"><title>{}</title><rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{width:.1}\" height=\"{BAR_HEIGHT}\" rx=\"3\" fill=\"{}\"/>",
        escape(wave),
        bar.phase.label(),
        bar.outcome.as_str(),
        bar.start,
        bar.end,
        escape(&tooltip),
        bar_colour(bar)
    );
    // The caption goes inside the bar when it fits, else just the duration, else none
    // (the tooltip and the legend still say what it is).
    let long = format!("{} {duration}", bar.phase.label());
    let caption = [long, duration]
        .into_iter()
        .find(|text| text.chars().count() as f64 * CHAR_WIDTH + 8.0 <= width);
    if let Some(caption) = caption {
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"#ffffff\">{}</text>",
            x + 4.0,
            y + BAR_HEIGHT / 2.0 + 4.0,
            escape(&caption)
        );
    }
    svg.push_str("</g>");
}

fn draw_markers(svg: &mut String, timeline: &Timeline, rows_bottom: f64) {
    let markers = [
        (timeline.recovered_at, "recovered", "#0b6e4f", "recovered"),
        (timeline.rto_target_at, "rto-target", FAILED, "RTO target"),
    ];
    for (line, (at, class, colour, caption)) in markers.into_iter().enumerate() {
        let Some(at) = at else { continue };
        let x = x_of(timeline, at);
        // Captions on the left half start at the line, on the right half end at it, so
        // they stay inside the drawing; the second marker's caption sits lower.
        let anchor = if timeline.fraction(at) < 0.5 {
            "start"
        } else {
            "end"
        };
        let _ = write!(
            svg,
            "<g class=\"marker {class}\" data-at=\"{at}\"><title>{caption} at {} UTC</title><line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"{colour}\" stroke-width=\"2\" stroke-dasharray=\"5 3\"/><text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\" fill=\"{colour}\">{caption} {}</text></g>",
            utc(at),
            TOP - 4.0,
            rows_bottom + 4.0 + 13.0 * line as f64,
            rows_bottom + 15.0 + 13.0 * line as f64,
            utc(at)
        );
    }
}

fn draw_legend(svg: &mut String, timeline: &Timeline, y: f64) {
    let mut entries: Vec<(&str, &str)> = Vec::new();
    for phase in [Phase::Launch, Phase::HealthGate, Phase::DnsCutover] {
        if timeline.bars.iter().any(|b| b.phase == phase) {
            entries.push((phase.label(), phase_colour(phase)));
        }
    }
    for (outcome, colour) in [(Outcome::Failed, FAILED), (Outcome::Unfinished, UNFINISHED)] {
        if timeline.bars.iter().any(|b| b.outcome == outcome) {
            entries.push((outcome.as_str(), colour));
        }
    }
    let mut x = LABEL_WIDTH;
    for (label, colour) in entries {
        let _ = write!(
            svg,
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"12\" height=\"12\" rx=\"2\" fill=\"{colour}\"/><text x=\"{:.1}\" y=\"{y:.1}\" fill=\"#24292f\">{label}</text>",
            y - 10.0,
            x + 16.0
        );
        x += 16.0 + label.len() as f64 * 7.0 + 18.0;
    }
}
