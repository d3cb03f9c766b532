//! The report as one self-contained HTML page: inline CSS and an inline SVG timeline,
//! no script and nothing fetched, so any browser shows it as it is (opened from S3, a
//! mail attachment, or a file). The page leads with what an auditor asks first (plan,
//! mode, outcome, RTO measured against the target, waves and servers), then the
//! timeline, then each wave and its servers.

use std::fmt::Write;

use super::svg::timeline_svg;
use super::timeline::{Timeline, seconds_between, span_text};
use super::{Report, WaveReport};

#[cfg(test)]
mod tests;

/// Text made safe inside HTML and XML, in content and in quoted attributes. Characters
/// XML does not allow at all (control characters other than tab and line breaks)
/// become U+FFFD.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if c.is_control() || matches!(c, '\u{FFFE}' | '\u{FFFF}') => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = r#"
:root { color-scheme: light; }
body { margin: 0; background: #ffffff; color: #24292f;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
main { max-width: 1000px; margin: 0 auto; padding: 24px 20px 48px; }
h1 { font-size: 22px; margin: 0 0 12px; }
h2 { font-size: 17px; margin: 28px 0 10px; padding-bottom: 4px; border-bottom: 1px solid #d0d7de; }
h3 { font-size: 15px; margin: 18px 0 6px; }
code { font: 12.5px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
table { border-collapse: collapse; width: 100%; margin: 6px 0 10px; }
th, td { border: 1px solid #d0d7de; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; font-weight: 600; }
td.id { white-space: nowrap; }
table.facts th { width: 170px; }
.badge { display: inline-block; padding: 1px 9px; border-radius: 10px; font-weight: 600; color: #ffffff; }
.ok { background: #2e8b57; } .bad { background: #c62828; } .other { background: #6e7781; }
.figure { overflow-x: auto; border: 1px solid #d0d7de; border-radius: 6px; padding: 8px 4px; }
.timeline { display: block; max-width: 100%; height: auto; }
.notes { color: #57606a; margin: 8px 0 0; padding-left: 20px; }
pre { white-space: pre-wrap; word-break: break-word; background: #f6f8fa; padding: 8px; border-radius: 6px; }
footer { margin-top: 32px; color: #57606a; font-size: 12px; }
"#;

fn badge(state: &str) -> String {
    let class = match state {
        "SUCCEEDED" | "PASS" => "ok",
        "FAILED" | "UNHEALTHY" | "MISS" => "bad",
        _ => "other",
    };
    format!("<span class=\"badge {class}\">{}</span>", escape(state))
}

/// A moment as people read it: "2026-11-28 03:00:05 UTC".
fn utc(at: jiff::Timestamp) -> String {
    at.strftime("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn or_dash(value: Option<String>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| escape(&v))
}

impl Report {
    /// The HTML page: summary, timeline, waves and servers.
    pub fn to_html(&self) -> String {
        page(self)
    }
}

fn page(report: &Report) -> String {
    let mode = report.mode.map_or("run".to_owned(), |m| m.to_string());
    let title = format!("DR {mode} report: plan {}", report.plan);
    let mut html = String::new();
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n<h1>DR {} report: plan <code>{}</code></h1>\n",
        escape(&title),
        escape(&mode),
        escape(&report.plan)
    );
    facts(&mut html, report, &mode);
    if let Some(error) = &report.error {
        let _ = write!(
            html,
            "<h2>Why the run failed</h2>\n<p><code>{}</code></p>\n<pre>{}</pre>\n",
            escape(&error.error),
            escape(&error.cause)
        );
    }
    if let Some(readiness) = &report.readiness {
        for (heading, issues) in [
            ("Why the servers were not ready", &readiness.blocking),
            ("Readiness warnings", &readiness.warnings),
        ] {
            if issues.is_empty() {
                continue;
            }
            let _ = write!(html, "<h2>{heading} ({})</h2>\n<ul>\n", issues.len());
            for issue in issues {
                let _ = writeln!(
                    html,
                    "<li><code>{}</code>: {}</li>",
                    escape(&issue.path),
                    escape(&issue.message)
                );
            }
            html.push_str("</ul>\n");
        }
    }
    if let Some(failback) = &report.failback {
        failback_section(&mut html, failback);
    }
    timeline_section(&mut html, report, &title);
    waves_section(&mut html, report);
    let _ = write!(
        html,
        "<footer>Execution <code>{}</code>. Written by drplan; the same report is stored as JSON and Markdown beside this page.</footer>\n</main>\n</body>\n</html>\n",
        escape(&report.execution_id)
    );
    html
}

fn facts(html: &mut String, report: &Report, mode: &str) {
    let servers: usize = report.waves.iter().map(|w| w.servers.len()).sum();
    let launched: usize = report.waves.iter().map(|w| w.launched).sum();
    let failed: usize = report.waves.iter().map(|w| w.failed).sum();
    let succeeded = report
        .waves
        .iter()
        .filter(|w| w.state == "SUCCEEDED")
        .count();
    let mut rows: Vec<(&str, String)> = vec![
        ("Plan", format!("<code>{}</code>", escape(&report.plan))),
        ("Mode", escape(mode)),
        ("Outcome", badge(&report.status)),
    ];
    rows.push((
        "RTO",
        match &report.rto {
            Some(rto) => format!(
                "{} {} measured (from the {} to {}) against a target of {} min",
                badge(if rto.met { "PASS" } else { "MISS" }),
                span_text(rto.measured_seconds),
                rto.measured_from
                    .as_ref()
                    .map_or("run's start".to_owned(), |run| format!(
                        "start of <code>{}</code>",
                        escape(run)
                    )),
                escape(&rto.measured_to),
                rto.target_minutes
            ),
            None => {
                "not measured (the run did not succeed, or its plan could not be read)".to_owned()
            }
        },
    ));
    rows.push((
        "Waves",
        format!("{} ({succeeded} succeeded)", report.waves.len()),
    ));
    rows.push((
        "Servers",
        format!("{servers} ({launched} launched, {failed} failed)"),
    ));
    rows.push(("Started", utc(report.started_at)));
    rows.push((
        "Finished",
        format!(
            "{} ({} after the start)",
            utc(report.finished_at),
            span_text(seconds_between(report.started_at, report.finished_at))
        ),
    ));
    rows.push((
        "Execution",
        format!("<code>{}</code>", escape(&report.execution_name)),
    ));
    if let Some(isolation) = &report.isolation {
        rows.push(("Isolation", escape(isolation)));
    }
    if let Some(n) = report.drill_instances_terminated {
        rows.push(("Drill cleanup", format!("{n} instances terminated")));
    }
    if let Some(resumed) = &report.resumed {
        rows.push((
            "Resumes",
            format!(
                "<code>{}</code> (first started {})",
                escape(&resumed.resumes),
                utc(resumed.first_started_at)
            ),
        ));
    }
    if let Some(dns) = &report.dns {
        rows.push((
            "DNS cutover",
            format!(
                "zone <code>{}</code>, {} records, in sync at {}",
                escape(&dns.zone_id),
                dns.changes.len(),
                or_dash(dns.insync_at.map(utc))
            ),
        ));
    }
    if !report.skipped.is_empty() {
        let skipped: Vec<String> = report
            .skipped
            .iter()
            .map(|s| format!("{}: {}", escape(&s.wave), escape(&s.reason)))
            .collect();
        rows.push(("Skipped waves", skipped.join("<br>")));
    }
    if !report.left_out.is_empty() {
        rows.push(("Not in this run", escape(&report.left_out.join(", "))));
    }
    html.push_str("<table class=\"facts\">\n");
    for (name, value) in rows {
        let _ = writeln!(html, "<tr><th>{name}</th><td>{value}</td></tr>");
    }
    html.push_str("</table>\n");
}

fn timeline_section(html: &mut String, report: &Report, title: &str) {
    let timeline = Timeline::of(report);
    html.push_str("<h2>Timeline</h2>\n");
    if timeline.bars.is_empty() {
        html.push_str("<p>No phase of the run has recorded times.</p>\n");
    } else {
        let _ = writeln!(
            html,
            "<div class=\"figure\">{}</div>",
            timeline_svg(&timeline, title)
        );
    }
    if !timeline.notes.is_empty() {
        html.push_str("<ul class=\"notes\">\n");
        for note in &timeline.notes {
            let _ = writeln!(html, "<li>{}</li>", escape(note));
        }
        html.push_str("</ul>\n");
    }
}

fn waves_section(html: &mut String, report: &Report) {
    html.push_str("<h2>Waves</h2>\n");
    if report.waves.is_empty() {
        html.push_str("<p>No wave was launched.</p>\n");
        return;
    }
    html.push_str(
        "<table>\n<tr><th>Wave</th><th>State</th><th>Launched</th><th>Failed</th><th>Launch (UTC)</th><th>Health gate (UTC)</th></tr>\n",
    );
    let between = |from: Option<jiff::Timestamp>, to: Option<jiff::Timestamp>| match (from, to) {
        (Some(from), Some(to)) => format!(
            "{} to {} ({})",
            from.strftime("%H:%M:%S"),
            to.strftime("%H:%M:%S"),
            span_text(seconds_between(from, to))
        ),
        (None, Some(to)) => format!("ended {}", to.strftime("%H:%M:%S")),
        _ => "-".to_owned(),
    };
    for wave in &report.waves {
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"id\">{}</td><td class=\"id\">{}</td></tr>",
            escape(&wave.name),
            badge(&wave.state),
            wave.launched,
            wave.failed,
            between(wave.timing.launch_started_at, wave.finished_at),
            between(wave.timing.gate_started_at, wave.timing.gate_ended_at)
        );
    }
    html.push_str("</table>\n");
    for wave in report.waves.iter().filter(|w| !w.servers.is_empty()) {
        servers_table(html, wave);
    }
}

/// Per server: home or not, its recovery instance now, and what a person still does.
fn failback_section(html: &mut String, failback: &crate::failback::run::FailbackSummary) {
    html.push_str(
        "<h2>Failback</h2>\n<table>\n<tr><th>Server</th><th>Recovery instance</th><th>Home</th><th>Recovery instance now</th><th>Protected again</th><th>To do</th></tr>\n",
    );
    for server in &failback.servers {
        let _ = writeln!(
            html,
            "<tr><td class=\"id\">{}</td><td class=\"id\"><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(
                server
                    .hostname
                    .as_deref()
                    .unwrap_or(&server.source_server_id)
            ),
            escape(&server.recovery_instance_id),
            if server.failed_back {
                "<span class=\"badge ok\">home</span>"
            } else {
                "<span class=\"badge bad\">not home</span>"
            },
            escape(&server.recovery_instance),
            crate::failback::run::protected_word(server.protected_again),
            escape(&server.to_do)
        );
    }
    html.push_str("</table>\n");
}

fn servers_table(html: &mut String, wave: &WaveReport) {
    let _ = writeln!(html, "<h3>{}</h3>", escape(&wave.name));
    if let Some(gate) = &wave.health_gate {
        let _ = writeln!(html, "<p>Health gate: {}.</p>", escape(gate));
    }
    html.push_str(
        "<table>\n<tr><th>Server</th><th>Source server</th><th>State</th><th>Instance</th><th>Health</th><th>Error</th></tr>\n",
    );
    for server in &wave.servers {
        let _ = writeln!(
            html,
            "<tr><td class=\"id\">{}{}</td><td class=\"id\"><code>{}</code></td><td>{:?}</td><td class=\"id\"><code>{}</code></td><td>{}</td><td>{}</td></tr>",
            or_dash(server.hostname.clone()),
            if server.optional { " (optional)" } else { "" },
            escape(&server.source_server_id),
            server.state,
            or_dash(server.ec2_instance_id.clone()),
            or_dash(server.health.clone()),
            escape(server.error.as_deref().unwrap_or(""))
        );
    }
    html.push_str("</table>\n");
}
