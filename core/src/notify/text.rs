//! The sections of a message body, and the text helpers they share.

use std::fmt::Write;

use super::compose::Facts;
use super::*;
use crate::contract::{LaunchState, WaveRef};
use crate::launch::ServerState;
use crate::plan::Mode;

pub(super) fn started_section(text: &mut String, facts: &Facts<'_>) {
    let Some(discovery) = &facts.request.discovery else {
        return;
    };
    let origin_region = facts
        .request
        .run
        .as_ref()
        .and_then(|run| run.origin_region.as_deref());
    let _ = writeln!(
        text,
        "{} servers in {} waves, in this order (waves on one line run in parallel):",
        discovery.server_count,
        discovery.layers.iter().map(Vec::len).sum::<usize>()
    );
    layers_lines(text, &discovery.layers);
    let _ = writeln!(text);
    if let Some(drill) = &discovery.stop_drill {
        let _ = writeln!(
            text,
            "DRILL STOPPED: the running drill {} of this plan is stopped and its instances terminated before the first wave (a recovery is never blocked by a drill).\n",
            drill.execution_name
        );
    } else if let Some(region) = origin_region.filter(|_| discovery.clear_first) {
        let _ = writeln!(
            text,
            "Before the first wave, reversed replication to {region} is started where it has not run, and the failback waits until every server replicates CONTINUOUS; nothing launches before.\n"
        );
    } else if discovery.clear_first {
        let _ = writeln!(
            text,
            "Drill instances left on the plan's servers by an earlier drill are terminated before the first wave.\n"
        );
    }
    // The discovery carries a sample and the count: in a region outage every server
    // has a warning, and the full list lives in the run's record and its report.
    let total = discovery.warning_count.max(discovery.warnings.len());
    if total > 0 {
        let _ = writeln!(text, "READINESS WARNINGS ({total})");
        let listed = discovery.warnings.len().min(MAX_LISTED_WARNINGS);
        for issue in discovery.warnings.iter().take(listed) {
            let _ = writeln!(text, "  - {issue}");
        }
        if total > listed {
            let _ = writeln!(
                text,
                "  ... and {} more: every warning is in the run's report ({})",
                total - listed,
                crate::contract::keys::report_markdown(&facts.plan, &facts.request.execution_name)
            );
        }
        let _ = writeln!(text);
    }
}

pub(super) fn layers_lines(text: &mut String, layers: &[Vec<WaveRef>]) {
    for (step, layer) in layers.iter().enumerate() {
        let waves: Vec<String> = layer
            .iter()
            .map(|w| format!("{} ({} servers)", w.name, w.servers))
            .collect();
        let _ = writeln!(text, "  {}. {}", step + 1, waves.join(", "));
    }
}

pub(super) fn approval_section(text: &mut String, facts: &Facts<'_>) {
    let request = facts.request;
    let name = &request.execution_name;
    if let Some(discovery) = &request.discovery {
        let _ = writeln!(
            text,
            "Approving launches {} servers in {} waves:",
            discovery.server_count,
            discovery.layers.iter().map(Vec::len).sum::<usize>()
        );
        layers_lines(text, &discovery.layers);
        let _ = writeln!(text);
    }
    match facts.mode {
        Some(Mode::Recovery) => {
            let _ = writeln!(
                text,
                "This is a RECOVERY: it launches production servers in the recovery Region and \
                 moves DNS to them.\n"
            );
        }
        Some(Mode::Failback) => {
            let _ = writeln!(
                text,
                "This is a FAILBACK: it brings the plan's servers home to the machines whose \
                 Failback Client is in sync, moves DNS back to what it was before the recovery, \
                 and then terminates the recovery instances. Quiesce writers in the recovery \
                 Region before approving.\n"
            );
        }
        _ => {}
    }
    if let Some(minutes) = request.approval.as_ref().and_then(|a| a.timeout_minutes) {
        let until = facts.now + jiff::SignedDuration::from_mins(i64::from(minutes));
        let _ = writeln!(
            text,
            "If nobody answers within {minutes} minutes (by {}), the execution ends with \
             nothing launched.\n",
            until.strftime("%Y-%m-%d %H:%M UTC")
        );
    }
    let token = request.task_token.as_deref().unwrap_or("");
    let _ = writeln!(text, "TO APPROVE\n  drplan approve {name}\n");
    let _ = writeln!(
        text,
        "TO DECLINE (nothing is launched)\n  drplan decline {name} --reason \"...\"\n"
    );
    let _ = writeln!(
        text,
        "WITHOUT drplan (AWS CLI)\n  approve:\n  aws stepfunctions send-task-success --task-token {} --task-output '{{\"approved\": true}}'\n  decline:\n  aws stepfunctions send-task-failure --task-token {} --error drplan.Declined --cause \"...\"\n",
        shell_quote(token),
        shell_quote(token)
    );
}

/// Where the run holds, who paused it and why, how to continue, and that its time
/// limit keeps counting (waves continued after the deadline get no time to launch).
pub(super) fn pause_section(text: &mut String, facts: &Facts<'_>) {
    let request = facts.request;
    let name = &request.execution_name;
    if let Some(pause) = &request.pause {
        let waves: Vec<String> = pause
            .waves
            .iter()
            .map(|w| format!("{} ({} servers)", w.name, w.servers))
            .collect();
        let _ = writeln!(
            text,
            "It holds before stage {}: {}. Earlier stages have finished; this one has not started.\n",
            pause.layer + 1,
            if waves.is_empty() {
                "its waves".to_owned()
            } else {
                waves.join(", ")
            }
        );
        match pause.request() {
            Some(asked) => {
                let _ = writeln!(
                    text,
                    "Paused by:  {}\nAsked at:   {}",
                    asked.by,
                    asked.at.strftime("%Y-%m-%d %H:%M:%S UTC")
                );
                if let Some(reason) = asked.reason.as_deref().filter(|r| !r.trim().is_empty()) {
                    let _ = writeln!(text, "Reason:     {}", one_line(reason));
                }
                let _ = writeln!(text);
            }
            None => {
                let _ = writeln!(
                    text,
                    "Who paused it is unknown: the pause request was not drplan's JSON.\n"
                );
            }
        }
    }
    match request.run.as_ref().and_then(|r| r.deadline) {
        Some(deadline) => {
            let left = deadline.duration_since(facts.now).as_secs();
            let _ = writeln!(
                text,
                "THE RUN'S TIME LIMIT KEEPS COUNTING while it is paused: it ends at {} ({}). \
                 Waves that start after it get no time to launch.\n",
                deadline.strftime("%Y-%m-%d %H:%M:%S UTC"),
                if left > 0 {
                    format!("in {}", duration_text(left))
                } else {
                    "already passed".to_owned()
                }
            );
        }
        None => {
            let _ = writeln!(
                text,
                "THE RUN'S TIME LIMIT KEEPS COUNTING while it is paused.\n"
            );
        }
    }
    let token = request.task_token.as_deref().unwrap_or("");
    let _ = writeln!(text, "TO CONTINUE\n  drplan continue {name}\n");
    let _ = writeln!(
        text,
        "WITHOUT drplan (AWS CLI)\n  aws stepfunctions send-task-success --task-token {} --task-output '{{\"continued\": true}}'\n",
        shell_quote(token)
    );
}

pub(super) fn wave_section(text: &mut String, facts: &Facts<'_>) {
    let request = facts.request;
    let Some(wave) = &request.wave else { return };
    if let Some(poll) = &request.poll {
        let _ = write!(
            text,
            "Servers: {} in the wave, {} launched, {} failed",
            wave.servers, poll.launched, poll.failed
        );
        if poll.pending > 0 {
            let _ = write!(text, ", {} still launching", poll.pending);
        }
        let _ = writeln!(text, ".");
        if poll.state == LaunchState::InProgress {
            let _ = writeln!(
                text,
                "The launch gives up at {} if servers are still launching.",
                poll.deadline.strftime("%Y-%m-%d %H:%M:%S UTC")
            );
        }
        if let Some(reason) = &poll.reason {
            let _ = writeln!(text, "Reason: {reason}");
        }
        let _ = writeln!(text);
    } else {
        let _ = writeln!(text, "Servers: {} in the wave.\n", wave.servers);
    }
    let Some(launch) = &facts.records.wave_launch else {
        if request.event == RunEvent::WaveFailed {
            let _ = writeln!(
                text,
                "The wave's launch record is not in the bucket (the wave may have failed before \
                 DRS reported on its servers); see the error below and `drplan status`.\n"
            );
        }
        return;
    };
    let failed: Vec<_> = launch.progress.failed().collect();
    if failed.is_empty() {
        if request.event == RunEvent::WaveFailed {
            let _ = writeln!(
                text,
                "Every server of the wave launched; the wave failed in a later step (see the \
                 error below).\n"
            );
        }
    } else {
        let title = if request.event == RunEvent::WaveFailed {
            "FAILED SERVERS"
        } else {
            "FAILED OPTIONAL SERVERS"
        };
        let _ = writeln!(text, "{title} ({})", failed.len());
        if request.event != RunEvent::WaveFailed {
            let _ = writeln!(text, "  (optional servers do not fail the wave)");
        }
        for server in failed.iter().take(MAX_LISTED_SERVERS) {
            let _ = writeln!(
                text,
                "  - {} ({}){}: {}",
                server.hostname.as_deref().unwrap_or("(no hostname)"),
                server.source_server_id,
                if server.optional { ", optional" } else { "" },
                one_line(server.error.as_deref().unwrap_or("no error reported"))
            );
        }
        if failed.len() > MAX_LISTED_SERVERS {
            let _ = writeln!(text, "  ... and {} more", failed.len() - MAX_LISTED_SERVERS);
        }
        let _ = writeln!(text);
    }
    if !launch.job_ids.is_empty() && request.event == RunEvent::WaveFailed {
        let _ = writeln!(text, "DRS launch jobs: {}\n", launch.job_ids.join(", "));
    }
}

pub(super) fn dns_section(text: &mut String, facts: &Facts<'_>) {
    let Some(dns) = &facts.request.dns else {
        return;
    };
    if let Some(change) = &dns.change_id {
        let _ = writeln!(text, "Route 53 change: {change}");
    }
    if !dns.records.is_empty() {
        let _ = writeln!(text, "RECORDS CHANGED");
        for record in &dns.records {
            let _ = writeln!(
                text,
                "  - {} {}: {} (was {})",
                record.name,
                record.record_type.as_deref().unwrap_or(""),
                if record.values.is_empty() {
                    "-".to_owned()
                } else {
                    record.values.join(", ")
                },
                if record.previous_values.is_empty() {
                    "nothing".to_owned()
                } else {
                    record.previous_values.join(", ")
                },
            );
        }
    }
    let _ = writeln!(text);
}

pub(super) fn outcome_section(text: &mut String, facts: &Facts<'_>) {
    let Some(report) = &facts.records.report else {
        if facts.request.report.is_some() {
            let _ = writeln!(
                text,
                "The report could not be read from the bucket; `drplan report` shows it once \
                 it is there.\n"
            );
        }
        return;
    };
    match &report.rto {
        Some(rto) => {
            let _ = writeln!(
                text,
                "RTO: {}: {} measured (start to {}) against a target of {} min.",
                if rto.met { "PASS" } else { "MISS" },
                duration_text(rto.measured_seconds),
                rto.measured_to,
                rto.target_minutes
            );
        }
        None => {
            let _ = writeln!(
                text,
                "RTO: not measured: the run did not recover every wave."
            );
        }
    }
    let _ = writeln!(
        text,
        "Run time: {} ({} to {}).",
        duration_text(
            report
                .finished_at
                .duration_since(report.started_at)
                .as_secs()
        ),
        report.started_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
        report.finished_at.strftime("%H:%M:%S UTC")
    );
    if let Some(n) = report.drill_instances_terminated {
        let _ = writeln!(text, "Drill cleanup: {n} instances terminated.");
    }
    let _ = writeln!(text);
    if report.waves.is_empty() {
        let _ = writeln!(text, "No wave was launched.\n");
    } else {
        let _ = writeln!(text, "WAVES");
        let width = report.waves.iter().map(|w| w.name.len()).max().unwrap_or(0);
        for wave in &report.waves {
            let _ = writeln!(
                text,
                "  {:width$}  {:13} {} launched, {} failed",
                wave.name, wave.state, wave.launched, wave.failed
            );
        }
        let _ = writeln!(text);
    }
    let failed: Vec<_> = report
        .waves
        .iter()
        .flat_map(|w| w.servers.iter().map(move |s| (w, s)))
        .filter(|(_, s)| s.state == ServerState::Failed)
        .collect();
    if !failed.is_empty() {
        let _ = writeln!(text, "FAILED SERVERS ({})", failed.len());
        for (wave, server) in failed.iter().take(MAX_LISTED_SERVERS) {
            let _ = writeln!(
                text,
                "  - {} ({}), wave {}{}: {}",
                server.hostname.as_deref().unwrap_or("(no hostname)"),
                server.source_server_id,
                wave.name,
                if server.optional { ", optional" } else { "" },
                one_line(server.error.as_deref().unwrap_or("no error reported"))
            );
        }
        if failed.len() > MAX_LISTED_SERVERS {
            let _ = writeln!(text, "  ... and {} more", failed.len() - MAX_LISTED_SERVERS);
        }
        let _ = writeln!(text);
    }
}

pub(super) fn run_section(text: &mut String, facts: &Facts<'_>) {
    let request = facts.request;
    let _ = writeln!(text, "RUN");
    let _ = writeln!(text, "  Plan:      {}", facts.plan);
    let mode = match facts.mode {
        Some(Mode::Drill) => "drill (isolated instances; production DNS is never touched)",
        Some(Mode::Recovery) => "RECOVERY (real failover)",
        Some(Mode::Failback) => {
            "FAILBACK (bringing the plan home; the recovery instances go afterwards)"
        }
        None => "unknown (the run failed before reading its input)",
    };
    let _ = writeln!(text, "  Mode:      {mode}");
    let _ = writeln!(text, "  Execution: {}", request.execution_name);
    let _ = writeln!(text, "  ARN:       {}", request.execution_id);
    if let Some(wave) = &request.wave {
        let _ = writeln!(
            text,
            "  Wave:      {} (#{} of the plan, {} servers)",
            wave.name,
            wave.index + 1,
            wave.servers
        );
    }
    if let Some(run) = &request.run {
        let elapsed = facts.now.duration_since(run.started_at).as_secs().max(0);
        let _ = writeln!(
            text,
            "  Started:   {} ({} ago)",
            run.started_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
            duration_text(elapsed)
        );
    }
    let _ = writeln!(
        text,
        "  Sent:      {}\n",
        facts.now.strftime("%Y-%m-%d %H:%M:%S UTC")
    );
}

pub(super) fn next_steps_section(text: &mut String, facts: &Facts<'_>, severity: Severity) {
    let request = facts.request;
    let name = &request.execution_name;
    let mut steps: Vec<String> = Vec::new();
    match request.event {
        RunEvent::ApprovalNeeded => {
            steps.push(format!(
                "Check it is the run you expect: drplan status {name}"
            ));
            steps.push("Approve or decline with the commands above.".to_owned());
        }
        RunEvent::Started | RunEvent::WaveStarted | RunEvent::WaveSucceeded => {
            steps.push(format!("Follow the run: drplan status {name} --wait"));
        }
        RunEvent::DnsCutOver => {
            steps.push(format!("Follow the run: drplan status {name} --wait"));
            steps.push(format!(
                "If the recovered service misbehaves, put the previous records back: drplan rollback-dns {name}"
            ));
        }
        RunEvent::WaveFailed => {
            steps.push(format!("See every wave: drplan status {name}"));
            steps.push(format!(
                "Read why each server failed (the report is written when the execution ends): drplan report {name}"
            ));
            steps.extend(launch_failure_checks(facts));
        }
        RunEvent::Failed => {
            steps.push(format!("Read the report: drplan report {name}"));
            steps.push(format!("See where it stopped: drplan status {name}"));
            if facts.run_never_started() {
                steps.push(
                    "Fix what the error above lists (every problem is named), check the plan \
                     with drplan validate PLAN_FILE, then start again."
                        .to_owned(),
                );
            } else {
                steps.extend(launch_failure_checks(facts));
            }
        }
        RunEvent::Succeeded => {
            steps.push(format!("Read the report: drplan report {name}"));
            match facts.mode {
                Some(Mode::Recovery) => steps.push(
                    "Check the service from outside (the recovered servers now take traffic)."
                        .to_owned(),
                ),
                Some(Mode::Failback) => steps.push(
                    "Check the service from outside (the servers at home take traffic again), \
                     and protect them again: each must replicate to AWS again (the report says \
                     what is left to do per server)."
                        .to_owned(),
                ),
                _ => {}
            }
            if severity == Severity::Warning {
                steps.push(
                    "The RTO was missed: the report's launch phases show which wave took longest."
                        .to_owned(),
                );
            }
        }
        RunEvent::DrillCleanedUp => {
            steps.push(format!("Read the run's report: drplan report {name}"));
        }
        RunEvent::Paused => {
            steps.push(format!("See where the run stands: drplan status {name}"));
            steps.push("Continue it with the command above when it is safe to go on.".to_owned());
        }
    }
    let _ = writeln!(text, "WHAT TO DO NEXT");
    for (n, step) in steps.iter().enumerate() {
        let _ = writeln!(text, "  {}. {step}", n + 1);
    }
    let _ = writeln!(text);
}

/// What to check when a wave failed, most common causes first.
pub(super) fn launch_failure_checks(facts: &Facts<'_>) -> Vec<String> {
    let every_server_launched = facts
        .records
        .wave_launch
        .as_ref()
        .is_some_and(|w| w.progress.failed().next().is_none());
    if every_server_launched {
        // Launched but failed later: the health gate or a hook, not DRS.
        return vec![
            "The servers launched; the wave failed after that (health gate or hook). Check \
             that the recovered instances' security groups allow the plan's probes and that \
             their services start; the report shows each check's result."
                .to_owned(),
        ];
    }
    let mut checks = vec![
        "In the DRS console, open each failed source server: its data replication must be \
         healthy (CONTINUOUS, no stall) and its launch settings and EC2 launch template valid \
         (subnet, security groups, instance type available in the Availability Zone)."
            .to_owned(),
        "Check EC2 service quotas (running On-Demand vCPUs) and the KMS key of the volumes in \
         the recovery Region."
            .to_owned(),
    ];
    if let Some(launch) = &facts.records.wave_launch
        && let Some(job) = launch.job_ids.first()
    {
        checks.push(format!(
            "DRS's own log of the launch: aws drs describe-job-log-items --job-id {job}"
        ));
    }
    match facts.mode {
        Some(Mode::Recovery) => checks.push(
            "Production DNS was not changed: traffic still goes where it went before the run."
                .to_owned(),
        ),
        Some(Mode::Failback) => checks.push(
            "DNS still points at the recovery, and no recovery instance was terminated: the \
             recovery keeps serving. Fix the cause (StopFailback and boot the Failback Client \
             again if DRS says so), then start the failback again."
                .to_owned(),
        ),
        _ => {}
    }
    checks
}

pub(super) fn links_section(text: &mut String, facts: &Facts<'_>) {
    let Some(region) = facts.region else { return };
    let _ = writeln!(text, "CONSOLE");
    let _ = writeln!(
        text,
        "  Step Functions execution: https://{region}.console.aws.amazon.com/states/home?region={region}#/v2/executions/details/{}",
        facts.request.execution_id
    );
    let _ = writeln!(
        text,
        "  DRS source servers:       https://{region}.console.aws.amazon.com/drs/home?region={region}#/sourceServers"
    );
}

/// The Region of a Step Functions execution ARN in the `aws` partition
/// (`arn:aws:states:REGION:ACCOUNT:execution:MACHINE:NAME`). Other partitions have
/// other console hosts; no link beats a wrong one.
pub(super) fn execution_region(execution_arn: &str) -> Option<&str> {
    let mut parts = execution_arn.split(':');
    let (Some("arn"), Some("aws"), Some("states"), Some(region)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let plausible = !region.is_empty()
        && region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    plausible.then_some(region)
}

/// One line of at most [`SUBJECT_MAX_CHARS`]: SNS refuses longer subjects and ones
/// with line breaks or control characters.
pub fn subject_line(text: &str) -> String {
    let single: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let collapsed = single.split_whitespace().collect::<Vec<_>>().join(" ");
    truncate_chars(&collapsed, SUBJECT_MAX_CHARS)
}

/// At most `max` characters, ending in "..." when cut.
pub(super) fn truncate_chars(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let kept: String = text.chars().take(max.saturating_sub(3)).collect();
    format!("{}...", kept.trim_end())
}

pub(super) fn first_line(text: &str) -> &str {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
}

pub(super) fn one_line(text: &str) -> String {
    truncate_chars(
        &text.split_whitespace().collect::<Vec<_>>().join(" "),
        MAX_ERROR_CHARS,
    )
}

/// "1h 02m 03s", "12m 30s", "45s".
pub(super) fn duration_text(seconds: i64) -> String {
    let seconds = seconds.max(0);
    let (h, m, s) = (seconds / 3600, (seconds % 3600) / 60, seconds % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m {s:02}s"),
        _ => format!("{h}h {m:02}m {s:02}s"),
    }
}

/// Single-quoted for a POSIX shell, so a task token pastes as one argument.
pub(super) fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}
