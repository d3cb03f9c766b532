//! The timeline as the reports draw it: where bars fall, what they say, and that any
//! wave name comes out as text (escaped for HTML and XML, sanitised for Mermaid).

use std::collections::BTreeMap;

use jiff::Timestamp;
use quick_xml::Reader;
use quick_xml::events::Event;

use super::escape;
use crate::contract::step::WaveHooks;
use crate::dns::DnsCutover;
use crate::health::WaveHealthRecord;
use crate::launch::JobLogEntry;
use crate::plan::Mode;
use crate::report::svg::{self, LABEL_WIDTH, PLOT_WIDTH};
use crate::report::timeline::{Outcome, Phase, Timeline, WaveTiming, mermaid_section};
use crate::report::{Report, RtoResult, WaveReport};

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

fn wave(name: &str, state: &str, launch: (&str, &str), gate: Option<(&str, &str)>) -> WaveReport {
    WaveReport {
        name: name.into(),
        state: state.into(),
        finished_at: Some(at(launch.1)),
        healthy_at: gate
            .filter(|_| state == "SUCCEEDED")
            .map(|(_, end)| at(end)),
        launched: 2,
        failed: 0,
        health_gate: None,
        servers: Vec::new(),
        timing: WaveTiming {
            launch_started_at: Some(at(launch.0)),
            gate_started_at: gate.map(|(start, _)| at(start)),
            gate_ended_at: gate.map(|(_, end)| at(end)),
            hooks: WaveHooks::default(),
        },
        targets: None,
    }
}

/// A drill of 20 minutes: `database` healthy, then `app` unhealthy until its gate gave up.
fn drill(waves: Vec<WaveReport>) -> Report {
    Report {
        execution_id: "arn:aws:states:us-east-1:1:execution:drplan-recovery:run-1".into(),
        execution_name: "run-1".into(),
        plan: "shop".into(),
        mode: Some(Mode::Drill),
        status: "FAILED".into(),
        started_at: at("2026-11-28T03:00:00Z"),
        finished_at: at("2026-11-28T03:20:00Z"),
        error: None,
        rto: None,
        waves,
        drill_instances_terminated: Some(4),
        dns: None,
        isolation: None,
        cleared: None,
        readiness: None,
        resumed: None,
        skipped: Vec::new(),
        left_out: Vec::new(),
        failback: None,
    }
}

fn two_waves() -> Vec<WaveReport> {
    vec![
        wave(
            "database",
            "SUCCEEDED",
            ("2026-11-28T03:00:10Z", "2026-11-28T03:04:00Z"),
            Some(("2026-11-28T03:04:05Z", "2026-11-28T03:06:00Z")),
        ),
        wave(
            "app",
            "UNHEALTHY",
            ("2026-11-28T03:06:30Z", "2026-11-28T03:09:00Z"),
            Some(("2026-11-28T03:09:05Z", "2026-11-28T03:19:05Z")),
        ),
    ]
}

/// Every element of the SVG as (name, attributes, text inside), read by an XML parser:
/// the drawing must be well-formed XML for the HTML page to show it.
fn parse_svg(svg: &str) -> Vec<(String, BTreeMap<String, String>, String)> {
    let mut reader = Reader::from_str(svg);
    let mut elements = Vec::new();
    let mut open: Vec<usize> = Vec::new();
    loop {
        let event = reader.read_event().expect("the SVG is well-formed XML");
        let (element, opens) = match &event {
            Event::Start(e) => (Some(e), true),
            Event::Empty(e) => (Some(e), false),
            _ => (None, false),
        };
        if let Some(e) = element {
            let attributes = e
                .attributes()
                .map(|a| {
                    let a = a.expect("attribute");
                    (
                        String::from_utf8(a.key.as_ref().to_vec()).unwrap(),
                        a.unescape_value().expect("attribute value").into_owned(),
                    )
                })
                .collect();
            let name = String::from_utf8(e.name().as_ref().to_vec()).unwrap();
            elements.push((name, attributes, String::new()));
            if opens {
                open.push(elements.len() - 1);
            }
            continue;
        }
        match event {
            Event::Text(t) => {
                if let Some(&i) = open.last() {
                    elements[i].2 += &t.decode().expect("text");
                }
            }
            // An entity or character reference: only XML's own and numeric ones are
            // defined in the SVG (no DTD).
            Event::GeneralRef(reference) => {
                let resolved = match reference.resolve_char_ref().expect("character reference") {
                    Some(c) => c.to_string(),
                    None => quick_xml::escape::resolve_xml_entity(&reference.decode().unwrap())
                        .unwrap_or_else(|| panic!("undefined entity {reference:?}"))
                        .to_owned(),
                };
                if let Some(&i) = open.last() {
                    elements[i].2 += &resolved;
                }
            }
            Event::End(_) => {
                open.pop();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    assert!(open.is_empty(), "unclosed elements");
    elements
}

fn svg_of(report: &Report) -> String {
    svg::timeline_svg(&Timeline::of(report), "timeline")
}

#[test]
fn each_wave_has_its_launch_and_gate_bars_where_their_times_fall() {
    let report = drill(two_waves());
    let timeline = Timeline::of(&report);
    assert_eq!(timeline.rows, ["database", "app"]);
    let bars: Vec<(usize, Phase, Outcome, i64)> = timeline
        .bars
        .iter()
        .map(|b| (b.row, b.phase, b.outcome, b.seconds()))
        .collect();
    assert_eq!(
        bars,
        [
            (0, Phase::Launch, Outcome::Passed, 230),
            (0, Phase::HealthGate, Outcome::Passed, 115),
            (1, Phase::Launch, Outcome::Passed, 150),
            (1, Phase::HealthGate, Outcome::Failed, 600),
        ]
    );
    // 20 minutes: five ticks, every five minutes, labelled hours and minutes.
    let ticks: Vec<String> = timeline
        .ticks(10)
        .iter()
        .map(|t| t.strftime(timeline.tick_format(10)).to_string())
        .collect();
    assert_eq!(ticks, ["03:00", "03:05", "03:10", "03:15", "03:20"]);

    let elements = parse_svg(&svg_of(&report));
    let drawn: Vec<(String, String, String, f64, f64)> = elements
        .iter()
        .enumerate()
        .filter(|(_, (name, attrs, _))| {
            name == "g" && attrs.get("class").map(String::as_str) == Some("bar")
        })
        .map(|(i, (_, attrs, _))| {
            let rect = elements[i..]
                .iter()
                .find(|(name, _, _)| name == "rect")
                .map(|(_, a, _)| a)
                .unwrap();
            (
                attrs["data-wave"].clone(),
                attrs["data-phase"].clone(),
                attrs["data-outcome"].clone(),
                rect["x"].parse().unwrap(),
                rect["width"].parse().unwrap(),
            )
        })
        .collect();
    let x = |seconds: f64| LABEL_WIDTH + seconds / 1200.0 * PLOT_WIDTH;
    let expected = [
        ("database", "launch", "passed", 10.0, 240.0),
        ("database", "health gate", "passed", 245.0, 360.0),
        ("app", "launch", "passed", 390.0, 540.0),
        ("app", "health gate", "failed", 545.0, 1145.0),
    ];
    assert_eq!(drawn.len(), expected.len(), "{drawn:?}");
    for ((wave, phase, outcome, left, width), (e_wave, e_phase, e_outcome, from, to)) in
        drawn.iter().zip(expected)
    {
        assert_eq!(
            (wave.as_str(), phase.as_str(), outcome.as_str()),
            (e_wave, e_phase, e_outcome)
        );
        assert!((left - x(from)).abs() < 0.1, "{wave} {phase}: x {left}");
        assert!(
            (width - (x(to) - x(from))).abs() < 0.2,
            "{wave} {phase}: width {width}"
        );
    }
    // The axis's labels, and each bar's caption where it fits.
    let texts: Vec<&str> = elements
        .iter()
        .filter(|(name, _, _)| name == "text")
        .map(|(_, _, text)| text.as_str())
        .collect();
    for label in [
        "UTC",
        "03:00",
        "03:20",
        "database",
        "app",
        "health gate 10m 00s",
    ] {
        assert!(texts.contains(&label), "{label:?} in {texts:?}");
    }
    // Tooltips say what each bar is, with its times.
    assert!(
        elements.iter().any(|(name, _, text)| name == "title"
            && text == "app: health gate 03:09:05 to 03:19:05 UTC (10m 00s), failed"),
        "{elements:?}"
    );
}

#[test]
fn any_wave_name_stays_text_in_html_svg_and_mermaid() {
    let name = "db <&\"'>: #1; x\u{1}";
    let mut waves = two_waves();
    waves[0].name = name.into();
    let report = drill(waves);

    let svg = svg_of(&report);
    let elements = parse_svg(&svg);
    let labels: Vec<&str> = elements
        .iter()
        .filter(|(_, attrs, _)| attrs.get("class").map(String::as_str) == Some("row-label"))
        .map(|(_, _, text)| text.as_str())
        .collect();
    // The name's text (with its tooltip), the control character replaced.
    assert_eq!(labels[0], "db <&\"'>: #1; x\u{FFFD}");
    let bar_waves: Vec<&str> = elements
        .iter()
        .filter_map(|(_, attrs, _)| attrs.get("data-wave").map(String::as_str))
        .collect();
    assert_eq!(bar_waves[0], "db <&\"'>: #1; x\u{FFFD}");

    let html = report.to_html();
    assert!(html.contains("db &lt;&amp;&quot;&#39;&gt;: #1; x\u{FFFD}"));
    assert!(!html.contains("db <&"), "the raw name is in the page");
    assert_eq!(escape("a\u{0}b\tc"), "a\u{FFFD}b\tc");

    let markdown = mermaid_section(&report);
    assert!(
        markdown.contains("\n    section db ______ _1_ x_\n"),
        "{markdown}"
    );
    // Every task line is `text :tags, id, start, end` with one separator before the data.
    for line in markdown
        .lines()
        .filter(|l| l.contains(":done") || l.contains(":crit"))
    {
        let (text, data) = line.split_once(':').unwrap();
        assert!(!text.contains(['#', ';']), "{line}");
        assert_eq!(data.split(", ").count(), 4, "{line}");
    }
}

#[test]
fn the_markdown_timeline_is_a_mermaid_gantt_in_utc() {
    let report = drill(two_waves());
    let markdown = report.to_markdown();
    let chart = markdown
        .split("## Timeline\n\n```mermaid\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a mermaid block under Timeline");
    assert_eq!(
        chart.lines().collect::<Vec<_>>(),
        [
            "gantt",
            "    title drill of shop (times UTC)",
            "    dateFormat YYYY-MM-DD HH:mm:ss",
            "    axisFormat %H:%M",
            "    todayMarker off",
            "    section database",
            "    launch 3m 50s :done, b0, 2026-11-28 03:00:10, 2026-11-28 03:04:00",
            "    health gate 1m 55s :done, b1, 2026-11-28 03:04:05, 2026-11-28 03:06:00",
            "    section app",
            "    launch 2m 30s :done, b2, 2026-11-28 03:06:30, 2026-11-28 03:09:00",
            "    health gate 10m 00s :crit, b3, 2026-11-28 03:09:05, 2026-11-28 03:19:05",
        ]
    );
    // The timeline comes before the waves' details.
    assert!(markdown.find("## Timeline") < markdown.find("## Waves"));
}

#[test]
fn a_recovery_shows_its_cutover_recovered_moment_rto_target_and_hooks() {
    let mut waves = two_waves();
    waves[1].state = "SUCCEEDED".into();
    waves[1].healthy_at = Some(at("2026-11-28T03:12:00Z"));
    waves[1].timing.gate_ended_at = waves[1].healthy_at;
    waves[1].timing.hooks = WaveHooks {
        pre: vec!["arn:aws:lambda:us-east-1:123456789012:function:drain-queue".into()],
        post: vec!["arn:aws:lambda:us-east-1:123456789012:function:warm-cache:live".into()],
    };
    let mut report = drill(waves);
    report.mode = Some(Mode::Recovery);
    report.status = "SUCCEEDED".into();
    report.dns = Some(DnsCutover {
        zone_id: "Z1".into(),
        changes: Vec::new(),
        deletes: Vec::new(),
        change_id: Some("C1".into()),
        submitted_at: Some(at("2026-11-28T03:12:30Z")),
        insync_at: Some(at("2026-11-28T03:13:00Z")),
        path: "control plane".into(),
        unchanged: Vec::new(),
        alarm: None,
    });
    report.rto = Some(RtoResult::measure(
        15,
        report.started_at,
        at("2026-11-28T03:13:00Z"),
        "DNS in sync",
    ));
    let timeline = Timeline::of(&report);
    assert_eq!(timeline.rows, ["database", "app", "DNS cutover"]);
    let dns = timeline.bars.last().unwrap();
    assert_eq!(
        (dns.row, dns.phase, dns.seconds()),
        (2, Phase::DnsCutover, 30)
    );
    assert_eq!(timeline.recovered_at, Some(at("2026-11-28T03:13:00Z")));
    assert_eq!(timeline.rto_target_at, Some(at("2026-11-28T03:15:00Z")));
    assert_eq!(
        timeline.notes,
        [
            "app: pre hooks drain-queue ran before its launch (hook times are not recorded).",
            "app: post hooks warm-cache ran after its health gate (hook times are not recorded).",
        ]
    );
    let elements = parse_svg(&svg_of(&report));
    let marker_x = |class: &str| -> f64 {
        let i = elements
            .iter()
            .position(|(_, a, _)| a.get("class").is_some_and(|c| c == class))
            .unwrap_or_else(|| panic!("no {class}"));
        elements[i..]
            .iter()
            .find(|(name, _, _)| name == "line")
            .map(|(_, a, _)| a["x1"].parse().unwrap())
            .unwrap()
    };
    let x = |seconds: f64| LABEL_WIDTH + seconds / 1200.0 * PLOT_WIDTH;
    assert!((marker_x("marker recovered") - x(780.0)).abs() < 0.1);
    assert!((marker_x("marker rto-target") - x(900.0)).abs() < 0.1);
    let markdown = mermaid_section(&report);
    assert!(markdown.contains("    section DNS cutover\n    DNS cutover 30s :done, b4, 2026-11-28 03:12:30, 2026-11-28 03:13:00\n"), "{markdown}");
    assert!(markdown.contains("    section RTO\n    recovered in 13m 00s of 15 min :milestone, m0, 2026-11-28 03:13:00, 2026-11-28 03:13:00\n"), "{markdown}");
    assert!(markdown.contains("\n- app: pre hooks drain-queue ran before its launch"));

    // The page's facts: plan, mode, outcome, RTO against its target, waves, servers.
    let html = report.to_html();
    for fact in [
        "<th>Plan</th><td><code>shop</code></td>",
        "<th>Mode</th><td>recovery</td>",
        "<th>Outcome</th><td><span class=\"badge ok\">SUCCEEDED</span></td>",
        "<span class=\"badge ok\">PASS</span> 13m 00s measured (from the run's start to DNS in sync) against a target of 15 min",
        "<th>Waves</th><td>2 (2 succeeded)</td>",
        "<th>Servers</th><td>0 (4 launched, 0 failed)</td>",
    ] {
        assert!(html.contains(fact), "{fact:?} in the page");
    }
    // Nothing is fetched: no script, no external stylesheet, image or font.
    for fetch in [
        "<script", "<link", "src=", "url(", "@import", "http://", "https://",
    ] {
        let found = html
            .replace("xmlns=\"http://www.w3.org/2000/svg\"", "")
            .contains(fetch);
        assert!(!found, "{fetch} in the page");
    }
}

#[test]
fn a_short_run_has_ticks_in_seconds_and_a_long_one_in_hours() {
    let mut report = drill(Vec::new());
    report.finished_at = at("2026-11-28T03:00:45Z");
    let short = Timeline::of(&report);
    assert_eq!(short.tick_format(10), "%H:%M:%S");
    assert_eq!(short.ticks(10).len(), 10);
    report.finished_at = at("2026-11-28T09:30:00Z");
    let long = Timeline::of(&report);
    assert_eq!(long.tick_format(10), "%H:%M");
    let ticks: Vec<String> = long
        .ticks(10)
        .iter()
        .map(|t| t.strftime("%H:%M").to_string())
        .collect();
    assert_eq!(
        ticks,
        [
            "03:00", "04:00", "05:00", "06:00", "07:00", "08:00", "09:00"
        ]
    );
    // No bar at all: the sections say so rather than draw an empty chart.
    assert!(mermaid_section(&report).contains("No phase of the run has recorded times."));
}

#[test]
fn wave_times_come_from_the_job_log_and_the_health_record() {
    let entry = |time: &str| JobLogEntry {
        job_id: "drsjob-1".into(),
        time: time.into(),
        event: "JOB_START".into(),
        source_server_id: None,
        target_instance_id: None,
        raw_error: None,
    };
    let log = [
        entry("2026-11-28T03:00:12.5+00:00"),
        entry("2026-11-28T03:00:10+00:00"),
        entry("not a time"),
    ];
    let health = WaveHealthRecord {
        wave: "database".into(),
        checks: vec!["ec2-status".into()],
        timeout_minutes: 10,
        started_at: at("2026-11-28T03:04:05Z"),
        deadline: at("2026-11-28T03:14:05Z"),
        checked_at: at("2026-11-28T03:07:00Z"),
        attempt: 4,
        state: "FAILED".into(),
        reason: Some("timed out".into()),
        healthy_at: None,
        probe_addressing: "private-ip".into(),
        servers: Vec::new(),
    };
    let timing = WaveTiming::of(&log, Some(&health));
    assert_eq!(timing.launch_started_at, Some(at("2026-11-28T03:00:10Z")));
    assert_eq!(timing.gate_started_at, Some(at("2026-11-28T03:04:05Z")));
    // A gate that did not pass ends at its last poll; one that passed, when it passed.
    assert_eq!(timing.gate_ended_at, Some(at("2026-11-28T03:07:00Z")));
    let passed = WaveHealthRecord {
        healthy_at: Some(at("2026-11-28T03:06:00Z")),
        ..health
    };
    assert_eq!(
        WaveTiming::of(&log, Some(&passed)).gate_ended_at,
        Some(at("2026-11-28T03:06:00Z"))
    );
    assert!(WaveTiming::of(&[], None).is_empty());
}

#[test]
fn a_failback_lists_each_server_home_or_not_with_what_is_left_to_do() {
    use crate::failback::run::{FailbackRecord, summarize};
    let mut report = drill(two_waves());
    report.mode = Some(Mode::Failback);
    let record = FailbackRecord {
        recovery_instances: [("s-1", "i-1"), ("s-2", "i-<2>")]
            .into_iter()
            .map(|(s, i)| (s.to_owned(), i.to_owned()))
            .collect(),
        recovered_by: vec!["shop-recovery-1".into()],
        home_already: Default::default(),
        dns: None,
        ..Default::default()
    };
    let launched = ["s-1".to_owned()].into_iter().collect();
    report.failback = Some(summarize(&record, &Default::default(), &launched, false));
    let html = report.to_html();
    assert!(html.contains("<h2>Failback</h2>"), "{html}");
    assert!(html.contains("<span class=\"badge ok\">home</span>"));
    assert!(html.contains("<span class=\"badge bad\">not home</span>"));
    assert!(html.contains("i-&lt;2&gt;") && !html.contains("i-<2>"));
    assert!(report.to_markdown().contains("## Failback"));
}
