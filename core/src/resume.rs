//! What a person can decide about the waves of a run: continue an ended run (its
//! succeeded waves adopted, only what did not launch launched again), skip waves of it,
//! or recover part of a plan. Pure: discover gathers the facts (the earlier run's
//! records and history, DRS's jobs and recovery instances) and acts on the verdicts.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::contract::tags::EXECUTION as TAG_EXECUTION;
use crate::contract::{SkippedWave, WaveRef, WaveSkip};
use crate::issue::{Issue, did_you_mean};
use crate::launch::{JobView, ServerOutcome, ServerState};
use crate::plan::Mode;
use crate::resolve::{ResolvedPlan, WaveServer};
use crate::safety::RecoveryInstanceView;

/// Step Functions statuses of a run that can be resumed (`drplan resume` checks before
/// it starts; discover checks again).
pub const RESUMABLE_STATUSES: [&str; 3] = ["FAILED", "TIMED_OUT", "ABORTED"];

/// A server a resumed run does not launch again: an earlier run of the chain launched
/// it, and its recovery instance is still that launch's and still live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CarriedServer {
    pub source_server_id: String,
    pub job_id: String,
    pub recovery_instance_id: String,
    pub ec2_instance_id: Option<String>,
    /// The run whose job launched it.
    pub from_execution: String,
}

/// What a resumed run takes over from the runs before it
/// (`runs/PLAN/EXEC/resume.json`): launch-wave reads it, the report shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResumeRecord {
    /// The run continued.
    pub resumes: String,
    /// Every earlier run of the chain, the first first.
    pub chain: Vec<String>,
    /// When the first run of the chain started: the RTO counts from here.
    pub first_started_at: Timestamp,
    /// When the run continued ended.
    pub previous_ended_at: Option<Timestamp>,
    /// Waves that succeeded before: nothing of them launches again.
    pub adopted_waves: Vec<String>,
    /// Servers not launched again, by wave.
    pub carried: BTreeMap<String, Vec<CarriedServer>>,
}

impl ResumeRecord {
    /// The servers of `wave` this run does not launch.
    pub fn carried_in(&self, wave: &str) -> &[CarriedServer] {
        self.carried.get(wave).map_or(&[], Vec::as_slice)
    }

    /// Seconds between the end of the run continued and the start of this one.
    pub fn gap_seconds(&self, started_at: Timestamp) -> Option<i64> {
        self.previous_ended_at
            .map(|ended| started_at.duration_since(ended).as_secs().max(0))
    }
}

/// What discover knows of the run being continued.
#[derive(Debug, Clone)]
pub struct EarlierRun<'a> {
    pub execution_name: &'a str,
    /// The runs before it that it continued itself, the first first.
    pub chain_before: &'a [String],
    /// Its servers by wave; `None` when it ended in discover (nothing launched).
    pub resolved: Option<&'a ResolvedPlan>,
    /// Waves whose health gate and post hooks passed (from its history).
    pub succeeded_waves: &'a BTreeSet<String>,
}

/// What a resumed run takes over: the waves it adopts, and the servers it does not
/// launch again, by wave.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Adoption {
    pub adopted: BTreeSet<String>,
    pub carried: BTreeMap<String, Vec<CarriedServer>>,
}

/// Which servers a resumed run carries over and which waves it adopts: a wave that
/// succeeded is adopted when its servers are the same as then and each of them that
/// launched is still on that launch's live instance; any other wave launches again only
/// the servers that are not. Refuses, naming each wave and server, when an adopted
/// wave cannot be.
pub fn plan_resume(
    resolved: &ResolvedPlan,
    earlier: &EarlierRun<'_>,
    jobs: &[(JobView, HashMap<String, String>)],
    instances: &[RecoveryInstanceView],
    mode: Mode,
) -> Result<Adoption, Vec<Issue>> {
    let chain: BTreeSet<&str> = earlier
        .chain_before
        .iter()
        .map(String::as_str)
        .chain([earlier.execution_name])
        .collect();
    // (job, server) pairs the chain's jobs launched, with the run that started the job.
    let mut launched_by: HashMap<(&str, &str), &str> = HashMap::new();
    for (job, tags) in jobs {
        let Some(execution) = tags.get(TAG_EXECUTION).map(String::as_str) else {
            continue;
        };
        if !chain.contains(execution) {
            continue;
        }
        for server in &job.servers {
            if server.launch_status.as_deref() == Some("LAUNCHED") {
                launched_by.insert(
                    (job.job_id.as_str(), server.source_server_id.as_str()),
                    execution,
                );
            }
        }
    }
    let mut issues = Vec::new();
    let mut adopted = BTreeSet::new();
    let mut carried: BTreeMap<String, Vec<CarriedServer>> = BTreeMap::new();
    for wave in &resolved.waves {
        let mut wave_carried = Vec::new();
        let mut gone = Vec::new();
        for server in &wave.servers {
            let instance = instances
                .iter()
                .find(|r| r.source_server_id.as_deref() == Some(server.id.as_str()));
            let launched = instance.and_then(|r| {
                let job = r.job_id.as_deref()?;
                launched_by
                    .get(&(job, server.id.as_str()))
                    .map(|run| (r, job, *run))
            });
            match launched {
                Some((r, job, run)) if r.is_live() && r.is_drill == (mode == Mode::Drill) => {
                    wave_carried.push(CarriedServer {
                        source_server_id: server.id.clone(),
                        job_id: job.to_owned(),
                        recovery_instance_id: r.recovery_instance_id.clone(),
                        ec2_instance_id: r.ec2_instance_id.clone(),
                        from_execution: run.to_owned(),
                    });
                }
                Some((r, _, _)) => gone.push(format!(
                    "{} (recovery instance {}, EC2 {} is {})",
                    server.display_name(),
                    r.recovery_instance_id,
                    r.ec2_instance_id.as_deref().unwrap_or("none"),
                    r.ec2_instance_state.as_deref().unwrap_or("gone")
                )),
                None => {}
            }
        }
        if earlier.succeeded_waves.contains(&wave.name) {
            let before: Option<BTreeSet<&str>> = earlier.resolved.and_then(|r| {
                r.wave(&wave.name)
                    .map(|w| w.servers.iter().map(|s| s.id.as_str()).collect())
            });
            let now: BTreeSet<&str> = wave.servers.iter().map(|s| s.id.as_str()).collect();
            if before.as_ref() != Some(&now) {
                issues.push(Issue::new(
                    "resume",
                    format!(
                        "wave {:?} succeeded in {} but its servers have changed since (the plan or the fleet's tags changed): start a new run instead",
                        wave.name, earlier.execution_name
                    ),
                ));
            } else if !gone.is_empty() || wave_carried.is_empty() {
                let what = if gone.is_empty() {
                    "none of its instances is live any more".to_owned()
                } else {
                    format!("these instances are no longer live: {}", gone.join(", "))
                };
                issues.push(Issue::new(
                    "resume",
                    format!(
                        "wave {:?} succeeded in {} but cannot be adopted: {what}; a failed drill's instances are terminated by its cleanup: start a new run instead",
                        wave.name, earlier.execution_name
                    ),
                ));
            } else {
                adopted.insert(wave.name.clone());
            }
        }
        if !wave_carried.is_empty() {
            carried.insert(wave.name.clone(), wave_carried);
        }
    }
    if issues.is_empty() {
        Ok(Adoption { adopted, carried })
    } else {
        Err(issues)
    }
}

/// The waves that do not run: those a person skipped, and every wave that needs one of
/// them (directly or through other waves). Refuses unknown waves and adopted ones.
pub fn skipped_waves(
    resolved: &ResolvedPlan,
    skips: &[WaveSkip],
    adopted: &BTreeSet<String>,
) -> Result<Vec<SkippedWave>, Vec<Issue>> {
    let names: Vec<&str> = resolved.waves.iter().map(|w| w.name.as_str()).collect();
    let mut issues = Vec::new();
    let mut skipped: Vec<SkippedWave> = Vec::new();
    for (i, skip) in skips.iter().enumerate() {
        if !names.contains(&skip.wave.as_str()) {
            issues.push(unknown_wave(
                format!("skip_waves[{i}].wave"),
                &skip.wave,
                &names,
            ));
        } else if adopted.contains(&skip.wave) {
            issues.push(Issue::new(
                format!("skip_waves[{i}].wave"),
                format!(
                    "wave {:?} succeeded in the run being resumed: it is adopted, not skipped",
                    skip.wave
                ),
            ));
        } else {
            skipped.push(SkippedWave {
                wave: skip.wave.clone(),
                reason: skip.reason.clone(),
                by: skip.by.clone(),
                needs: None,
            });
        }
    }
    if !issues.is_empty() {
        return Err(issues);
    }
    // Dependents, in layer order so that a wave's dependencies are judged before it.
    for &index in resolved.layers.iter().flatten() {
        let wave = &resolved.waves[index];
        if skipped.iter().any(|s| s.wave == wave.name) {
            continue;
        }
        let needs = wave.depends_on.iter().find_map(|&dep| {
            let dep = &resolved.waves.get(dep)?.name;
            skipped
                .iter()
                .find(|s| &s.wave == dep)
                .map(|s| s.needs.clone().unwrap_or_else(|| s.wave.clone()))
        });
        if let Some(needs) = needs {
            skipped.push(SkippedWave {
                wave: wave.name.clone(),
                reason: format!("needs wave {needs:?}, which was skipped"),
                by: None,
                needs: Some(needs),
            });
        }
    }
    Ok(skipped)
}

/// The waves outside `only_waves`. Each wave named must exist, and each wave it depends
/// on must be named too or already recovered and live (every server of it on a live
/// recovery instance of the run's kind).
pub fn left_out_waves(
    resolved: &ResolvedPlan,
    only: &[String],
    instances: &[RecoveryInstanceView],
    mode: Mode,
) -> Result<Vec<String>, Vec<Issue>> {
    let names: Vec<&str> = resolved.waves.iter().map(|w| w.name.as_str()).collect();
    let mut issues = Vec::new();
    for (i, name) in only.iter().enumerate() {
        if !names.contains(&name.as_str()) {
            issues.push(unknown_wave(format!("only_waves[{i}]"), name, &names));
        }
    }
    if !issues.is_empty() {
        return Err(issues);
    }
    let live = |server: &WaveServer| {
        instances.iter().any(|r| {
            r.source_server_id.as_deref() == Some(server.id.as_str())
                && r.is_live()
                && r.is_drill == (mode == Mode::Drill)
        })
    };
    for name in only {
        let Some(wave) = resolved.wave(name) else {
            continue;
        };
        for &dep in &wave.depends_on {
            let Some(dep) = resolved.waves.get(dep) else {
                continue;
            };
            if only.contains(&dep.name) {
                continue;
            }
            let not_live: Vec<&str> = dep
                .servers
                .iter()
                .filter(|s| !live(s))
                .map(WaveServer::display_name)
                .collect();
            if !not_live.is_empty() || dep.servers.is_empty() {
                let shown: Vec<&str> = not_live.iter().take(5).copied().collect();
                issues.push(Issue::new(
                    "only_waves",
                    format!(
                        "wave {name:?} depends on {:?}, which is neither in only_waves nor recovered and live ({} without a live {} instance: {}): add it to only_waves",
                        dep.name,
                        not_live.len(),
                        mode.as_str(),
                        shown.join(", ")
                    ),
                ));
            }
        }
    }
    if !issues.is_empty() {
        return Err(issues);
    }
    Ok(names
        .iter()
        .filter(|n| !only.iter().any(|o| o == *n))
        .map(|n| (*n).to_owned())
        .collect())
}

fn unknown_wave(path: String, name: &str, names: &[&str]) -> Issue {
    let hint = did_you_mean(name, names.iter().copied())
        .map(|s| format!("did you mean {s:?}?"))
        .unwrap_or_else(|| format!("the plan's waves are {}", names.join(", ")));
    Issue::new(path, format!("the plan has no wave {name:?}: {hint}"))
}

/// The run's layers: adopted waves first, together (their health gates run again before
/// anything launches; every wave an adopted one needs succeeded too, so is adopted as
/// well), then the other waves in their DAG order; waves that do not run are left out.
pub fn arrange_layers(
    layers: Vec<Vec<WaveRef>>,
    adopted: &BTreeSet<String>,
    not_run: &BTreeSet<String>,
) -> Vec<Vec<WaveRef>> {
    let mut first = Vec::new();
    let mut rest = Vec::new();
    for layer in layers {
        let mut kept = Vec::new();
        for mut wave in layer {
            if not_run.contains(&wave.name) {
                continue;
            }
            if adopted.contains(&wave.name) {
                // Their hooks ran when they succeeded; a resumed run does not call them
                // again.
                wave.hooks = Default::default();
                wave.adopted = true;
                first.push(wave);
            } else {
                kept.push(wave);
            }
        }
        if !kept.is_empty() {
            rest.push(kept);
        }
    }
    if first.is_empty() {
        rest
    } else {
        std::iter::once(first).chain(rest).collect()
    }
}

/// The resolved plan of a run that leaves waves out: their servers removed (the waves
/// stay, so that indexes still name the same waves).
pub fn without_waves(mut resolved: ResolvedPlan, not_run: &BTreeSet<String>) -> ResolvedPlan {
    for wave in &mut resolved.waves {
        if not_run.contains(&wave.name) {
            wave.servers.clear();
        }
    }
    resolved
}

/// The outcomes of a wave's servers in a resumed run: those carried over from earlier
/// runs are launched already; the rest are what this run's own jobs say (`launched`),
/// in the wave's server order. In an adopted wave a server that did not launch before
/// (an optional one that failed) stays failed: nothing of an adopted wave launches.
pub fn with_carried(
    servers: &[WaveServer],
    own: Vec<ServerOutcome>,
    carried: &[CarriedServer],
    adopted_from: Option<&str>,
) -> Vec<ServerOutcome> {
    let mut own: HashMap<String, ServerOutcome> = own
        .into_iter()
        .map(|o| (o.source_server_id.clone(), o))
        .collect();
    servers
        .iter()
        .map(|server| {
            if let Some(c) = carried.iter().find(|c| c.source_server_id == server.id) {
                return ServerOutcome {
                    source_server_id: server.id.clone(),
                    hostname: server.hostname.clone(),
                    optional: server.optional,
                    state: ServerState::Launched,
                    job_id: Some(c.job_id.clone()),
                    recovery_instance_id: Some(c.recovery_instance_id.clone()),
                    ec2_instance_id: c.ec2_instance_id.clone(),
                    error: None,
                    carried_from: Some(c.from_execution.clone()),
                };
            }
            own.remove(&server.id).unwrap_or_else(|| ServerOutcome {
                source_server_id: server.id.clone(),
                hostname: server.hostname.clone(),
                optional: server.optional,
                state: ServerState::Failed,
                job_id: None,
                recovery_instance_id: None,
                ec2_instance_id: None,
                error: Some(format!(
                    "did not launch in {}; not launched again, as its wave was adopted",
                    adopted_from.unwrap_or("the run resumed")
                )),
                carried_from: None,
            })
        })
        .collect()
}

/// The report's account of a resumed run: what it continued, what it took over, what it
/// launched itself, and the gap between the runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResumeSummary {
    pub resumes: String,
    /// Every earlier run of the chain, the first first.
    pub chain: Vec<String>,
    pub first_started_at: Timestamp,
    pub previous_ended_at: Option<Timestamp>,
    /// Seconds between the end of the run continued and the start of this one.
    pub gap_seconds: Option<i64>,
    pub adopted_waves: Vec<String>,
    /// Servers whose earlier launch this run kept.
    pub carried_servers: usize,
    /// Servers this run launched itself (hostname, else ID).
    pub launched_by_this_run: Vec<String>,
}

impl ResumeSummary {
    pub fn of(record: &ResumeRecord, started_at: Timestamp, outcomes: &[&ServerOutcome]) -> Self {
        Self {
            resumes: record.resumes.clone(),
            chain: record.chain.clone(),
            first_started_at: record.first_started_at,
            previous_ended_at: record.previous_ended_at,
            gap_seconds: record.gap_seconds(started_at),
            adopted_waves: record.adopted_waves.clone(),
            carried_servers: record.carried.values().map(Vec::len).sum(),
            launched_by_this_run: outcomes
                .iter()
                .filter(|o| o.carried_from.is_none() && o.state == ServerState::Launched)
                .map(|o| {
                    o.hostname
                        .clone()
                        .unwrap_or_else(|| o.source_server_id.clone())
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests;
