//! The report: every section's results as Markdown (`BENCHMARKS.md`), with the targets
//! of issue #8 and whether each was met.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use drplan_core::Timing;

use super::cold::{ColdStarts, ColdStats};
use super::machine::Machine;
use super::packages::Packages;
use super::runs::RunResult;
use super::{
    COLD_START_RATIO_TARGET, COLD_START_TARGET_MS, GROWTH_TOLERANCE, LAMBDA_ARM64_PER_GB_SECOND,
    LAMBDA_PER_REQUEST, MEMORY_TARGET_MIB, OVERHEAD_FRACTION, OVERHEAD_PER_WAVE_SECONDS,
    PACKAGE_TARGET_MIB,
};

#[derive(Debug, Default)]
pub(super) struct Report {
    pub(super) command: String,
    pub(super) functions: Vec<String>,
    pub(super) commands: Vec<String>,
    pub(super) machine: Machine,
    pub(super) quick: bool,
    pub(super) time_scale: f64,
    pub(super) phases: String,
    pub(super) packages: Packages,
    pub(super) runs: Vec<RunResult>,
    pub(super) cold: ColdStarts,
    pub(super) memory_a: Vec<(String, u32, u64, u64)>,
    pub(super) memory_b: Option<Vec<(String, u32, u64, u64)>>,
    pub(super) memory_sizes: BTreeMap<String, u64>,
    pub(super) elapsed: Duration,
}

pub(super) fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    })
}

pub(super) fn verdict(pass: bool) -> &'static str {
    if pass { "PASS" } else { "**MISS**" }
}

pub(super) fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

impl Report {
    pub(super) fn render(&self) -> String {
        let mut out = String::new();
        let m = &self.machine;
        let _ = writeln!(out, "# drplan benchmarks\n");
        let _ = writeln!(
            out,
            "Measured by `drplan bench` (issue #8) in {:.0} s{}. Every number below was measured in this run; \
             ratios compare measurements taken side by side in it.\n",
            self.elapsed.as_secs_f64(),
            if self.quick {
                ", **--quick** (3 cold starts, no 4,000-server plan)"
            } else {
                ""
            }
        );
        let _ = writeln!(out, "## Machine and commands\n");
        let _ = writeln!(out, "- CPUs: {} × {}", m.cpus, m.cpu_model);
        let _ = writeln!(
            out,
            "- memory: {}; OS: {} (Linux {})",
            m.memory, m.os, m.kernel
        );
        let _ = writeln!(
            out,
            "- {}; {}; {}",
            m.rustc, m.cargo_lambda, self.cold.python
        );
        let _ = writeln!(
            out,
            "- the command: `scripts/install-local-cloud && {}`",
            self.command
        );
        let _ = writeln!(out, "- it ran:");
        for command in &self.commands {
            let _ = writeln!(out, "  - `{command}`");
        }
        let _ = writeln!(
            out,
            "- the local cloud: moto, `cargo lambda watch --release` (the release binaries), the DRS \
             simulator at time scale {:.4} ({}), one gateway; all on 127.0.0.1\n",
            self.time_scale, self.phases
        );
        self.render_cold(&mut out);
        self.render_memory(&mut out);
        self.render_packages(&mut out);
        self.render_overhead(&mut out);
        self.render_cost(&mut out);
        out
    }

    fn render_cold(&self, out: &mut String) {
        let _ = writeln!(out, "## 1. Cold start\n");
        let _ = writeln!(
            out,
            "Each function binary (`target/release/NAME`, the host build of the release profile) is \
             started as a new process under a Lambda Runtime API served by the bench on 127.0.0.1, \
             with Lambda's environment and the local cloud's (`AWS_ENDPOINT_URL` = the gateway). \
             **ready** = spawn → its first `GET /runtime/invocation/next`; **first invocation** = \
             the event handed over → its response posted. The event is the first one the function \
             received in a plan run of this bench (replayed: the steps are idempotent), so the \
             function makes its real first AWS calls against the local cloud and finishes its \
             handler. The Python 3 + boto3 baseline is a runtime loop that imports boto3, builds \
             its client at init (as handlers do) and makes the same first AWS call (the gateway \
             records both first calls, shown below); it does only that call, where the Rust \
             function runs its whole handler. Medians of {} runs after one unmeasured warm-up each, \
             Rust and Python alternating. Targets: ready < {COLD_START_TARGET_MS} ms and Python/Rust \
             ≥ {COLD_START_RATIO_TARGET}×.\n",
            self.cold.runs
        );
        let _ = writeln!(
            out,
            "| function | Rust ready ms | Rust 1st invocation ms | Python ready ms | Python 1st invocation ms | ratio ready | ratio ready + 1st | Rust RSS after 1st MiB | outcome (Rust / Python) | first AWS call (Rust / Python) | ready < {COLD_START_TARGET_MS} ms | ratio ≥ {COLD_START_RATIO_TARGET}× |"
        );
        let _ = writeln!(
            out,
            "|---|---:|---:|---:|---:|---:|---:|---:|---|---|---|---|"
        );
        let mut misses = Vec::new();
        for result in &self.cold.results {
            let stats = ColdStats::of;
            let rust = stats(&result.rust);
            let python = stats(&result.python);
            let cell = |v: Option<f64>| v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.1}"));
            let ratio_ready = rust
                .as_ref()
                .zip(python.as_ref())
                .map(|(r, p)| p.ready / r.ready);
            let ratio_total = rust
                .as_ref()
                .zip(python.as_ref())
                .map(|(r, p)| p.total / r.total);
            let ready_pass = rust.as_ref().map(|r| r.ready < COLD_START_TARGET_MS);
            let ratio_pass = ratio_ready.map(|r| r >= COLD_START_RATIO_TARGET);
            if ready_pass == Some(false) || ratio_pass == Some(false) {
                misses.push(result.function.clone());
            }
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} / {} | {} / {} | {} | {} |",
                result.function,
                cell(rust.as_ref().map(|r| r.ready)),
                cell(rust.as_ref().map(|r| r.invoke)),
                cell(python.as_ref().map(|p| p.ready)),
                cell(python.as_ref().map(|p| p.invoke)),
                ratio_ready.map_or_else(|| "n/a".into(), |r| format!("{r:.1}×")),
                ratio_total.map_or_else(|| "n/a".into(), |r| format!("{r:.1}×")),
                rust.as_ref()
                    .and_then(|r| r.hwm_kib)
                    .map_or_else(|| "n/a".into(), |k| format!("{:.1}", mib(k))),
                rust.as_ref()
                    .map_or_else(|| "failed".into(), |r| r.outcome.clone()),
                python
                    .as_ref()
                    .map_or_else(|| "failed".into(), |p| p.outcome.clone()),
                rust.as_ref().map_or("", |r| r.first_call.as_str()),
                python.as_ref().map_or("", |p| p.first_call.as_str()),
                ready_pass.map_or("n/a", verdict),
                ratio_pass.map_or("n/a", verdict),
            );
        }
        let _ = writeln!(out);
        for result in &self.cold.results {
            let _ = writeln!(
                out,
                "- {}: event = {} ({} bytes){}{}",
                result.function,
                result.event_source,
                result.event_bytes,
                result
                    .rust
                    .as_ref()
                    .err()
                    .map(|e| format!("; Rust failed: {e}"))
                    .unwrap_or_default(),
                result
                    .python
                    .as_ref()
                    .err()
                    .map(|e| format!("; Python failed: {e}"))
                    .unwrap_or_default(),
            );
        }
        let measured: Vec<&str> = self
            .cold
            .results
            .iter()
            .map(|r| r.function.as_str())
            .collect();
        let _ = writeln!(
            out,
            "- not measured (no event of theirs in the state machine's runs): {}",
            self.functions_not_in(&measured)
        );
        if !misses.is_empty() {
            let _ = writeln!(
                out,
                "- **missed by**: {}. What a cold start costs here is the process start, the \
                 runtime's and the SDK's initialisation (credentials, endpoint, TLS roots) on this \
                 shared 2-core machine; the first invocation is dominated by the local cloud's \
                 answers (moto is Python).",
                misses.join(", ")
            );
        }
        let _ = writeln!(out);
    }

    fn functions_not_in(&self, measured: &[&str]) -> String {
        let missing: Vec<&str> = self
            .functions
            .iter()
            .map(String::as_str)
            .filter(|f| !measured.contains(f))
            .collect();
        if missing.is_empty() {
            "none".into()
        } else {
            missing.join(", ")
        }
    }

    fn render_memory(&self, out: &mut String) {
        let _ = writeln!(out, "## 2. Peak memory\n");
        let (rows, what) = match &self.memory_b {
            Some(rows) => (
                rows,
                "the function processes `cargo lambda watch --release` ran for one 20 waves × 200 \
                 servers (4,000) recovery on a fresh local cloud, read from /proc/PID/status \
                 (VmHWM: the peak resident set over the process's life, i.e. over every event of \
                 that plan) before the cloud stopped",
            ),
            None => (
                &self.memory_a,
                "**--quick: not the 4,000-server plan** — the function processes after the small \
                 plans of cloud A (at most 400 servers a plan), from /proc/PID/status VmHWM",
            ),
        };
        let _ = writeln!(
            out,
            "Measured: {what}. Target: < {MEMORY_TARGET_MIB} MiB.\n"
        );
        let _ = writeln!(
            out,
            "| function | peak RSS (VmHWM) MiB | RSS at the end MiB | < {MEMORY_TARGET_MIB} MiB |"
        );
        let _ = writeln!(out, "|---|---:|---:|---|");
        let mut misses = Vec::new();
        for (function, _pid, hwm, rss) in rows {
            let pass = mib(*hwm) < MEMORY_TARGET_MIB;
            if !pass {
                misses.push(function.clone());
            }
            let _ = writeln!(
                out,
                "| {function} | {:.1} | {:.1} | {} |",
                mib(*hwm),
                mib(*rss),
                verdict(pass)
            );
        }
        if rows.is_empty() {
            let _ = writeln!(out, "| (no function process found) | | | |");
        }
        if self.memory_b.is_some() && !self.memory_a.is_empty() {
            let _ = writeln!(
                out,
                "\nFor comparison, after cloud A's plans ({}): {}.",
                self.runs
                    .iter()
                    .filter(|r| r.spec.name != "bench-l")
                    .map(|r| format!("{} servers", r.spec.servers()))
                    .collect::<Vec<_>>()
                    .join(", "),
                self.memory_a
                    .iter()
                    .map(|(f, _, hwm, _)| format!("{f} {:.1} MiB", mib(*hwm)))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        if !misses.is_empty() {
            let _ = writeln!(out, "\n**Missed by** {}.", misses.join(", "));
        }
        let _ = writeln!(out);
    }

    fn render_packages(&self, out: &mut String) {
        let _ = writeln!(out, "## 3. Package size\n");
        match &self.packages {
            Packages::Skipped => {
                let _ = writeln!(out, "Skipped (--skip-packages).\n");
            }
            Packages::Failed(error) => {
                let _ = writeln!(out, "Could not be built: {error}\n");
            }
            Packages::Built { target, note, zips } => {
                let _ = writeln!(
                    out,
                    "`target/lambda/NAME/bootstrap.zip` from `cargo lambda build --release {} --output-format zip` \
                     (the release profile: LTO, one codegen unit, stripped). Target: < {PACKAGE_TARGET_MIB} MiB.\n",
                    if target.starts_with("arm64") {
                        "--arm64"
                    } else {
                        "--x86-64"
                    }
                );
                if let Some(note) = note {
                    let _ = writeln!(out, "**{note}**; the sizes below are for {target}.\n");
                }
                let _ = writeln!(
                    out,
                    "| function ({target}) | zip MiB | zip bytes | < {PACKAGE_TARGET_MIB} MiB |"
                );
                let _ = writeln!(out, "|---|---:|---:|---|");
                for (function, size) in zips {
                    match size {
                        Some(bytes) => {
                            let mib = *bytes as f64 / 1024.0 / 1024.0;
                            let _ = writeln!(
                                out,
                                "| {function} | {mib:.2} | {bytes} | {} |",
                                verdict(mib < PACKAGE_TARGET_MIB)
                            );
                        }
                        None => {
                            let _ = writeln!(out, "| {function} | missing | | n/a |");
                        }
                    }
                }
                let _ = writeln!(out);
            }
        }
    }

    fn render_overhead(&self, out: &mut String) {
        let _ = writeln!(out, "## 4. Orchestration overhead\n");
        let _ = writeln!(
            out,
            "Wall time = the execution's start → stop dates in Step Functions (moto) for a whole \
             recovery: discover, notifications, every wave (launch, wait, tag, health) and the DNS \
             cut-over. Ideal = the simulator's phases of one wave × the waves on the DAG's \
             critical path (health time is 0 in the simulation: moto reports EC2 status checks ok \
             as soon as an instance runs; DNS changes are INSYNC at once). Allowed = \
             {:.0} % of the ideal + {OVERHEAD_PER_WAVE_SECONDS} s per critical-path wave. Timing: \
             polls every second.\n",
            OVERHEAD_FRACTION * 100.0
        );
        let _ = writeln!(
            out,
            "| plan | DAG | status | wall s | ideal s | overhead s | allowed s | overhead per critical wave s | within target |"
        );
        let _ = writeln!(out, "|---|---|---|---:|---:|---:|---:|---:|---|");
        let mut misses = Vec::new();
        for run in self.runs.iter().filter(|r| r.spec.mode == "recovery") {
            let pass = run.status == "SUCCEEDED" && run.overhead() <= run.overhead_allowed();
            if !pass {
                misses.push(run);
            }
            let _ = writeln!(
                out,
                "| {} | {} waves, critical path {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.2} | {} |",
                run.spec.label,
                run.waves(),
                run.spec.critical_waves,
                run.status,
                run.wall_seconds,
                run.spec.ideal_seconds,
                run.overhead(),
                run.overhead_allowed(),
                run.overhead() / run.spec.critical_waves.max(1) as f64,
                verdict(pass)
            );
        }
        let _ = writeln!(out);
        if !misses.is_empty() {
            let _ = writeln!(
                out,
                "**Missed by** {}. Per wave the state machine runs NotifyWaveStarted, LaunchWave, a \
                 Wait, CheckLaunch until every server settled (the job's end is seen at the next \
                 1 s poll), TagInstances, CheckHealth and NotifyWaveSucceeded: each a Lambda \
                 invocation through moto's Step Functions interpreter, the gateway and `cargo \
                 lambda watch`, whose per-state latency on this machine is what adds up; moto \
                 itself (Python) also launches the simulator's EC2 instances one RunInstances \
                 at a time.\n",
                misses
                    .iter()
                    .map(|r| r.spec.label.clone())
                    .collect::<Vec<_>>()
                    .join("; ")
            );
        }
        if let Some(largest) = self
            .runs
            .iter()
            .filter(|r| r.spec.mode == "recovery")
            .max_by_key(|r| r.spec.servers())
        {
            largest.render_time_breakdown(out);
        }
        // What the default timing would add in AWS: polls back off from 30 s to 300 s.
        let defaults = Timing::default();
        let real_wave = self.runs.first().map_or(0.0, |r| {
            r.spec.ideal_seconds / r.spec.critical_waves.max(1) as f64 / self.time_scale
        });
        let mut elapsed = 0.0;
        let mut attempt = 0;
        while elapsed < real_wave && attempt < 1000 {
            elapsed += f64::from(defaults.poll_delay_seconds(attempt));
            attempt += 1;
        }
        let _ = writeln!(
            out,
            "With the default timing (polls after {} s, backing off ×{} to {} s) a real wave of \
             {real_wave:.0} s is seen done at poll number {attempt}, {elapsed:.0} s after the launch: {:.0} s of \
             waiting that the 1 s polls above do not have. The poll schedule, not the functions, \
             sets that part of the overhead; `timing` in the execution input trades it against \
             state transitions (section 5).\n",
            defaults.poll_initial_seconds,
            defaults.poll_backoff_rate,
            defaults.poll_max_seconds,
            elapsed - real_wave
        );
    }

    fn render_cost(&self, out: &mut String) {
        let _ = writeln!(out, "## 5. Cost drivers\n");
        let _ = writeln!(
            out,
            "Per execution: state transitions = `*StateEntered` events of the execution history; \
             Lambda invocations and AWS API calls = requests through the local cloud's gateway \
             during the execution (API calls: those made by the functions' AWS SDK; DRS calls \
             apart, since their number is set by DRS's quotas and pages: at most 100 servers a \
             job, 200 source servers a page). The bench's own polling went to moto directly.\n"
        );
        let _ = writeln!(
            out,
            "| plan | timing | servers | waves | transitions | per wave | per server | Lambda invocations | per wave | API calls (not DRS) | per wave | per server | DRS calls | per wave | per server |"
        );
        let _ = writeln!(
            out,
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        for run in &self.runs {
            let servers = f64::from(run.spec.servers());
            let waves = run.waves() as f64;
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {:.1} | {:.3} | {} | {:.1} | {} | {:.1} | {:.3} | {} | {:.1} | {:.3} |",
                run.spec.label,
                run.spec.timing_label,
                run.spec.servers(),
                run.waves(),
                run.transitions,
                run.transitions as f64 / waves,
                run.transitions as f64 / servers,
                run.lambda_invocations(),
                run.lambda_invocations() as f64 / waves,
                run.other_calls(),
                run.other_calls() as f64 / waves,
                run.other_calls() as f64 / servers,
                run.drs_calls(),
                run.drs_calls() as f64 / waves,
                run.drs_calls() as f64 / servers,
            );
        }
        let _ = writeln!(out);
        // Growth: the same DAG with 10× the servers.
        let small = self.runs.iter().find(|r| r.spec.name == "bench-s");
        let medium = self.runs.iter().find(|r| r.spec.name == "bench-m");
        if let (Some(small), Some(medium)) = (small, medium) {
            let factor =
                f64::from(medium.spec.servers()) / f64::from(small.spec.servers()).max(1.0);
            let growth = |a: u64, b: u64| b as f64 / (a as f64).max(1.0);
            let transitions = growth(small.transitions, medium.transitions);
            let calls = growth(small.other_calls(), medium.other_calls());
            let drs = growth(small.drs_calls(), medium.drs_calls());
            let _ = writeln!(
                out,
                "Same 4-wave DAG, servers ×{factor:.0}: state transitions ×{transitions:.2} ({}), \
                 API calls other than DRS ×{calls:.2} ({}), DRS calls ×{drs:.2} (what DRS's \
                 quotas require: StartRecovery per 100 servers, job logs per job, pages of \
                 servers). Tolerance for \"grows with waves, not servers\": ×{GROWTH_TOLERANCE}.\n",
                verdict(transitions <= GROWTH_TOLERANCE),
                verdict(calls <= GROWTH_TOLERANCE),
            );
        }
        if let Some(large) = self.runs.iter().find(|r| r.spec.name == "bench-l")
            && let Some(small) = small
        {
            let _ = writeln!(
                out,
                "20 waves × 200 against 4 waves × 10: transitions per wave {:.1} vs {:.1}, API \
                 calls (not DRS) per wave {:.1} vs {:.1}.\n",
                large.transitions as f64 / large.waves() as f64,
                small.transitions as f64 / small.waves() as f64,
                large.other_calls() as f64 / large.waves() as f64,
                small.other_calls() as f64 / small.waves() as f64,
            );
        }
        let _ = writeln!(
            out,
            "AWS API calls by operation (the functions' SDK calls):\n"
        );
        let _ = write!(out, "| service | operation |");
        for run in &self.runs {
            let _ = write!(out, " {} |", run.spec.label);
        }
        let _ = writeln!(out);
        let _ = writeln!(out, "|---|---|{}", "---:|".repeat(self.runs.len()));
        let operations: std::collections::BTreeSet<&(String, String)> =
            self.runs.iter().flat_map(|r| r.api_calls.keys()).collect();
        for key in operations {
            let _ = write!(out, "| {} | {} |", key.0, key.1);
            for run in &self.runs {
                let _ = write!(out, " {} |", run.api_calls.get(key).copied().unwrap_or(0));
            }
            let _ = writeln!(out);
        }
        let _ = writeln!(out);

        // The 100-server drill, at list prices.
        let memory_mb = self.memory_sizes.get("*").copied().unwrap_or(128) as f64;
        if let Some(drill) = self.runs.iter().find(|r| r.spec.mode == "drill") {
            let (sfn, lambda, gb_seconds) = drill.cost(memory_mb);
            let sizes = if self.memory_sizes.is_empty() {
                "128 MB assumed (infra/template.yaml unreadable)".to_owned()
            } else {
                self.memory_sizes
                    .iter()
                    .map(|(f, s)| format!("{} {s} MB", if f == "*" { "Globals" } else { f }))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let _ = writeln!(
                out,
                "**A 100-server drill** ({}, {} = the default poll schedule on the simulator's \
                 clock, so as many polls as against real DRS; drill kept 2 s: a Wait is one \
                 transition however long): {} state transitions, {} Lambda invocations, {:.1} \
                 GB-s ({} ms billed in all, each invocation's gateway-measured duration rounded \
                 up to 1 ms, at {memory_mb:.0} MB; template: {sizes}).\n",
                drill.spec.label,
                drill.spec.timing_label,
                drill.transitions,
                drill.lambda_invocations(),
                gb_seconds,
                drill.billed_millis(),
            );
            let _ = writeln!(out, "| item | quantity | list price | cost |");
            let _ = writeln!(out, "|---|---:|---|---:|");
            let _ = writeln!(
                out,
                "| Step Functions Standard | {} transitions | $0.025 per 1,000 | ${sfn:.6} |",
                drill.transitions
            );
            let _ = writeln!(
                out,
                "| Lambda requests | {} | $0.20 per 1M | ${:.6} |",
                drill.lambda_invocations(),
                drill.lambda_invocations() as f64 * LAMBDA_PER_REQUEST
            );
            let _ = writeln!(
                out,
                "| Lambda compute (arm64) | {gb_seconds:.2} GB-s | $0.0000133334 per GB-s | ${:.6} |",
                gb_seconds * LAMBDA_ARM64_PER_GB_SECOND
            );
            let _ = writeln!(
                out,
                "| **total per drill** | | | **${:.4}** |\n",
                sfn + lambda
            );
            let _ = writeln!(
                out,
                "Free tiers ignored; DRS's own charges (per source server, and the EC2 instances and \
                 volumes of the drill) are not drplan's and not included. Durations are local-cloud \
                 durations (moto answers more slowly than AWS), so compute is an upper estimate; \
                 transitions and requests do not depend on the machine.\n"
            );
        }
        super::share::render(&self.runs, out);
        let failed: Vec<String> = self
            .runs
            .iter()
            .filter(|r| r.status != "SUCCEEDED")
            .map(|r| format!("{} ({}: {})", r.spec.label, r.execution, r.status))
            .collect();
        if !failed.is_empty() {
            let _ = writeln!(
                out,
                "**Executions that did not succeed**: {}.\n",
                failed.join("; ")
            );
        }
        let _ = writeln!(
            out,
            "History events per execution: {}.",
            self.runs
                .iter()
                .map(|r| format!("{} {}", r.spec.label, r.history_events))
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&mut []), None);
    }

    #[test]
    fn an_empty_report_still_has_every_section() {
        let text = Report::default().render();
        for section in [
            "## 1. Cold start",
            "## 2. Peak memory",
            "## 3. Package size",
            "## 4. Orchestration overhead",
            "## 5. Cost drivers",
        ] {
            assert!(text.contains(section), "{section} missing:\n{text}");
        }
        assert!(text.contains("Skipped (--skip-packages)."));
        assert!(text.contains("| (no function process found) | | | |"));
    }
}
