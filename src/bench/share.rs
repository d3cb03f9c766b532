//! drplan's share of a plan run, apart from the local cloud's (issue #20): per wave, the
//! time inside drplan's functions, the state transitions and drplan's own AWS calls (DRS's
//! apart); an estimate of the same wave on AWS, with the local cloud's per-call and
//! per-transition latency replaced by AWS figures; and the targets judged on that share.

use std::fmt::Write as _;

use super::report::verdict;
use super::runs::RunResult;

/// Per AWS API call on AWS, for the estimate: an assumption, not a measurement. The S3
/// performance whitepaper ("Best Practices Design Patterns: Optimizing Amazon S3
/// Performance", Timeouts and Retries for Latency-Sensitive Applications) puts small
/// requests' median latencies "in the range of tens of milliseconds"; no AWS document
/// gives figures for EC2, Step Functions or SNS calls, so the same is assumed for all.
pub(super) const AWS_CALL_MS: f64 = 50.0;
/// Per state transition on AWS (Step Functions Standard moving to the next state,
/// including scheduling a Lambda task): an assumption; AWS documents no latency figure
/// for it.
pub(super) const AWS_TRANSITION_MS: f64 = 50.0;

/// Targets of issue #20, judged at this many servers a wave or more.
const TARGET_SERVERS_PER_WAVE: u32 = 200;
const CALLS_PER_SERVER_TARGET: f64 = 1.5;
const FUNCTION_SECONDS_PER_WAVE_TARGET: f64 = 1.5;
const TRANSITIONS_PER_WAVE_TOLERANCE: f64 = 0.05;

/// One run's numbers per wave.
pub(super) struct WaveShare {
    pub(super) label: String,
    pub(super) servers_per_wave: u32,
    pub(super) transitions: f64,
    /// drplan's AWS calls other than DRS's.
    pub(super) calls: f64,
    pub(super) drs_calls: f64,
    /// The functions' invocations as the gateway timed them (their whole run).
    pub(super) function_seconds: f64,
    /// Of that, the local cloud answering the functions' AWS calls (summed: calls made
    /// at once overlap, so this can exceed the time they took together).
    pub(super) local_cloud_seconds: f64,
    /// Allowed overhead per critical-path wave (section 4's target).
    pub(super) allowed_per_wave: f64,
}

impl WaveShare {
    pub(super) fn of(run: &RunResult) -> Self {
        let waves = run.waves().max(1) as f64;
        let local_cloud_millis: f64 = run.api_millis.values().sum();
        Self {
            label: run.spec.label.clone(),
            servers_per_wave: run.spec.servers_per_wave,
            transitions: run.transitions as f64 / waves,
            calls: run.other_calls() as f64 / waves,
            drs_calls: run.drs_calls() as f64 / waves,
            function_seconds: run.billed_millis() as f64 / 1000.0 / waves,
            local_cloud_seconds: local_cloud_millis / 1000.0 / waves,
            allowed_per_wave: run.overhead_allowed() / run.spec.critical_waves.max(1) as f64,
        }
    }

    pub(super) fn calls_per_server(&self) -> f64 {
        self.calls / f64::from(self.servers_per_wave.max(1))
    }

    /// Time in drplan's own code: the functions' time less the local cloud's answers.
    pub(super) fn own_seconds(&self) -> f64 {
        (self.function_seconds - self.local_cloud_seconds).max(0.0)
    }

    /// The wave's orchestration time on AWS: drplan's own time, its calls (DRS's too)
    /// and its transitions at the AWS figures above, one after another (an upper
    /// estimate: the functions make some calls at once).
    pub(super) fn on_aws_seconds(&self) -> f64 {
        self.own_seconds()
            + ((self.calls + self.drs_calls) * AWS_CALL_MS + self.transitions * AWS_TRANSITION_MS)
                / 1000.0
    }
}

/// The "drplan's share" table and the targets of issue #20.
pub(super) fn render(runs: &[RunResult], out: &mut String) {
    let shares: Vec<WaveShare> = runs.iter().map(WaveShare::of).collect();
    let _ = writeln!(out, "### drplan's share, per wave\n");
    let _ = writeln!(
        out,
        "Per wave (the run's totals ÷ its waves): state transitions; drplan's AWS calls through \
         the gateway (DRS's apart); time in drplan's functions = the Lambda invocations as the \
         gateway timed them, less the local cloud's answers to their AWS calls (moto, the DRS \
         simulator); and an estimate on AWS = drplan's own time + every call at {AWS_CALL_MS:.0} ms \
         + every transition at {AWS_TRANSITION_MS:.0} ms. Both AWS figures are assumptions, not \
         measurements: the S3 performance whitepaper puts small requests' median latency in \
         the tens of milliseconds, and AWS documents no latency for EC2, DRS or Step Functions \
         calls or for a state transition. The overhead target (section 4) is judged on the \
         estimate: drplan's share, not the local cloud's, against the allowed overhead per \
         critical-path wave.\n"
    );
    let _ = writeln!(
        out,
        "| plan | servers a wave | transitions | drplan's AWS calls (not DRS) | per server | DRS calls | in functions s | of which local cloud s | drplan's own s | on AWS (estimate) s | allowed per wave s | overhead on drplan's share |"
    );
    let _ = writeln!(
        out,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    );
    for share in &shares {
        let _ = writeln!(
            out,
            "| {} | {} | {:.1} | {:.1} | {:.3} | {:.1} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {} |",
            share.label,
            share.servers_per_wave,
            share.transitions,
            share.calls,
            share.calls_per_server(),
            share.drs_calls,
            share.function_seconds,
            share.local_cloud_seconds,
            share.own_seconds(),
            share.on_aws_seconds(),
            share.allowed_per_wave,
            verdict(share.on_aws_seconds() <= share.allowed_per_wave),
        );
    }
    let _ = writeln!(out);
    render_targets(&shares, out);
}

fn render_targets(shares: &[WaveShare], out: &mut String) {
    let _ = writeln!(out, "Targets (issue #20):\n");
    let _ = writeln!(out, "| target | measured | verdict |");
    let _ = writeln!(out, "|---|---|---|");
    let wide: Vec<&WaveShare> = shares
        .iter()
        .filter(|s| s.servers_per_wave >= TARGET_SERVERS_PER_WAVE)
        .collect();
    if wide.is_empty() {
        let _ = writeln!(
            out,
            "| at {TARGET_SERVERS_PER_WAVE} servers a wave | no run that wide | not measured |"
        );
    }
    for share in &wide {
        let calls = share.calls_per_server();
        let _ = writeln!(
            out,
            "| drplan's AWS calls (not DRS) per server ≤ {CALLS_PER_SERVER_TARGET}: {} | {calls:.3} | {} |",
            share.label,
            verdict(calls <= CALLS_PER_SERVER_TARGET)
        );
        let own = share.own_seconds();
        let _ = writeln!(
            out,
            "| time in drplan's functions ≤ {FUNCTION_SECONDS_PER_WAVE_TARGET} s a wave: {} | {own:.2} s (own; {:.2} s with the local cloud's answers) | {} |",
            share.label,
            share.function_seconds,
            verdict(own <= FUNCTION_SECONDS_PER_WAVE_TARGET)
        );
    }
    let narrow = shares.iter().min_by_key(|s| s.servers_per_wave);
    let widest = shares.iter().max_by_key(|s| s.servers_per_wave);
    if let (Some(narrow), Some(widest)) = (narrow, widest)
        && widest.servers_per_wave > narrow.servers_per_wave
    {
        let growth = widest.transitions / narrow.transitions.max(f64::EPSILON) - 1.0;
        let _ = writeln!(
            out,
            "| state transitions per wave independent of size (±{:.0} %): {} vs {} servers a wave | {:.1} vs {:.1} ({:+.1} %) | {} |",
            TRANSITIONS_PER_WAVE_TOLERANCE * 100.0,
            widest.servers_per_wave,
            narrow.servers_per_wave,
            widest.transitions,
            narrow.transitions,
            growth * 100.0,
            verdict(growth.abs() <= TRANSITIONS_PER_WAVE_TOLERANCE)
        );
    }
    let _ = writeln!(out);
}

/// Per wave, each function's invocations and time, and each AWS call drplan made: where
/// the share above comes from.
pub(super) fn render_breakdown(runs: &[RunResult], out: &mut String) {
    let _ = writeln!(
        out,
        "Per wave, by function (invocations, gateway-timed s):\n"
    );
    let _ = write!(out, "| function |");
    for run in runs {
        let _ = write!(out, " {} |", run.spec.label);
    }
    let _ = writeln!(out, "\n|---|{}", "---:|".repeat(runs.len()));
    let functions: std::collections::BTreeSet<&String> =
        runs.iter().flat_map(|r| r.invocations.keys()).collect();
    for function in functions {
        let _ = write!(out, "| {function} |");
        for run in runs {
            let waves = run.waves().max(1) as f64;
            let (count, millis) = run.invocations.get(function).copied().unwrap_or((0, 0));
            let _ = write!(
                out,
                " {:.1} × ({:.2} s) |",
                count as f64 / waves,
                millis as f64 / 1000.0 / waves
            );
        }
        let _ = writeln!(out);
    }
    let _ = writeln!(out, "\nPer wave, by AWS call:\n");
    let _ = write!(out, "| call |");
    for run in runs {
        let _ = write!(out, " {} |", run.spec.label);
    }
    let _ = writeln!(out, "\n|---|{}", "---:|".repeat(runs.len()));
    let calls: std::collections::BTreeSet<&(String, String)> =
        runs.iter().flat_map(|r| r.api_calls.keys()).collect();
    for call in calls {
        let _ = write!(out, "| {} {} |", call.0, call.1);
        for run in runs {
            let waves = run.waves().max(1) as f64;
            let count = run.api_calls.get(call).copied().unwrap_or(0);
            let _ = write!(out, " {:.1} |", count as f64 / waves);
        }
        let _ = writeln!(out);
    }
    let _ = writeln!(out);
}
