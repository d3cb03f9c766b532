//! The bucket layout: every object drplan reads or writes in the stack's bucket, each
//! built by one function here. A JSON record's key comes as a [`Record<T>`] that also
//! says what the object holds, so the store reads and writes it as that type
//! (`RunStore::read`, `require`, `write` in the adapters crate).
//!
//! ```text
//! plans/NAME.yaml                        a stored plan (text)
//! locks/PLAN.json                        the run that holds the plan      RunLock
//! claims/PLAN/alarm-start.json           an alarm run being started       StartClaim
//! prepared/PLAN/dns.json                 failover records prepared ahead  DnsPrepared
//! waits/jobs/JOB.json                    a wave parked on a DRS job       ParkedWave
//! runs/PLAN/EXEC/plan.json               the plan document the run read   (JSON value)
//! runs/PLAN/EXEC/resolved.json           servers by wave                  ResolvedPlan
//! runs/PLAN/EXEC/discovery.json          what discover handed on          Discovery
//! runs/PLAN/EXEC/readiness.json          every readiness problem          Readiness
//! runs/PLAN/EXEC/isolation.json          a drill's isolation              DrillIsolation
//! runs/PLAN/EXEC/cleared.json            drill instances cleared first    ClearedBeforeLaunch
//! runs/PLAN/EXEC/dns.json                the cutover, for rollback        DnsCutover
//! runs/PLAN/EXEC/dns-prepared.json       the failover records checked     DnsPrepared
//! runs/PLAN/EXEC/resume.json             what a resumed run takes over    ResumeRecord
//! runs/PLAN/EXEC/pause.json              a pause asked for, not reached   PauseRequest
//! runs/PLAN/EXEC/waves/NNN-WAVE/launch.json     the wave's launch        WaveLaunchRecord
//! runs/PLAN/EXEC/waves/NNN-WAVE/health.json     its health gate          WaveHealthRecord
//! runs/PLAN/EXEC/waves/NNN-WAVE/pending.json    servers still launching  PendingByJob
//! runs/PLAN/EXEC/waves/NNN-WAVE/templates.json  drill template swaps     WaveTemplateSwaps
//! runs/PLAN/EXEC/waves/NNN-WAVE/targets.json    target groups joined    WaveTargetsRecord
//! reports/PLAN/EXEC.json, .md, .html     the run's report                 Report
//! ```

use std::collections::BTreeMap;
use std::marker::PhantomData;

use serde_json::Value;

use super::notice::PauseRequest;
use super::step::{Discovery, RunContext, WaveRef};
use crate::dns::DnsCutover;
use crate::dns_failover::DnsPrepared;
use crate::evaluation::PlanReadiness;
use crate::failback::run::FailbackRecord;
use crate::health::WaveHealthRecord;
use crate::launch::WaveLaunchRecord;
use crate::launch_wait::ParkedWave;
use crate::readiness::Readiness;
use crate::report::Report;
use crate::resolve::ResolvedPlan;
use crate::resume::ResumeRecord;
use crate::safety::{ClearedBeforeLaunch, DrillIsolation, RunLock, WaveTemplateSwaps};
use crate::targets::WaveTargetsRecord;
use crate::trigger::StartClaim;

/// A JSON object in the stack's bucket: where it is and what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<T> {
    key: String,
    holds: PhantomData<fn() -> T>,
}

impl<T> Record<T> {
    fn at(key: String) -> Self {
        Self {
            key,
            holds: PhantomData,
        }
    }

    pub fn key(&self) -> &str {
        &self.key
    }
}

impl<T> std::fmt::Display for Record<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.key)
    }
}

/// Where plans are stored by name.
pub const PLANS_PREFIX: &str = "plans/";
const PLAN_EXTENSION: &str = ".yaml";

/// A stored plan (YAML text; a plan in JSON is YAML too).
pub fn plan_source(name: &str) -> String {
    format!("{PLANS_PREFIX}{name}{PLAN_EXTENSION}")
}

/// The plan a key of [`plan_source`] stores, if it is one.
pub fn plan_name_of(key: &str) -> Option<&str> {
    key.strip_prefix(PLANS_PREFIX)?
        .strip_suffix(PLAN_EXTENSION)
        .filter(|name| !name.is_empty() && !name.contains('/'))
}

/// The run that holds a plan (one run per plan).
pub fn run_lock(plan: &str) -> Record<RunLock> {
    Record::at(format!("locks/{plan}.json"))
}

/// Who is starting an alarm run of a plan.
pub fn start_claim(plan: &str) -> Record<StartClaim> {
    Record::at(format!("claims/{plan}/alarm-start.json"))
}

/// What `drplan dns prepare` made for a plan's data-plane cutover: read by discover and
/// dns-cutover, which must not need Route 53's control plane.
pub fn dns_prepared(plan: &str) -> Record<DnsPrepared> {
    Record::at(format!("prepared/{plan}/dns.json"))
}

/// A stored plan's latest evaluation, written by the readiness function: the next
/// evaluation compares with it, so on-call staff hear of a change once.
pub fn plan_readiness(plan: &str) -> Record<PlanReadiness> {
    Record::at(format!("readiness/{plan}.json"))
}

/// Where parks live (expired by a lifecycle rule).
pub const WAITS_PREFIX: &str = "waits/jobs/";

/// The wave parked on a DRS job.
pub fn parked_job(job_id: &str) -> Record<ParkedWave> {
    Record::at(format!("{WAITS_PREFIX}{job_id}.json"))
}

/// Every report of a plan is under this prefix.
pub fn reports_prefix(plan: &str) -> String {
    format!("reports/{plan}/")
}

/// A run's report, as JSON.
pub fn report_json(plan: &str, execution_name: &str) -> Record<Report> {
    Record::at(format!("{}.json", report_base(plan, execution_name)))
}

/// The JSON report at `key`, a key the report step handed on
/// ([`super::step::ReportLocation`]); `None` for a key that is not a report's.
pub fn report_json_at(key: &str) -> Option<Record<Report>> {
    (key.starts_with("reports/") && key.ends_with(".json")).then(|| Record::at(key.to_owned()))
}

/// A run's report, as Markdown (text).
pub fn report_markdown(plan: &str, execution_name: &str) -> String {
    format!("{}.md", report_base(plan, execution_name))
}

/// A run's report, as a self-contained HTML page (text) with its timeline as SVG.
pub fn report_html(plan: &str, execution_name: &str) -> String {
    format!("{}.html", report_base(plan, execution_name))
}

fn report_base(plan: &str, execution_name: &str) -> String {
    format!("{}{execution_name}", reports_prefix(plan))
}

/// The servers of a wave still launching, by DRS job.
pub type PendingByJob = BTreeMap<String, Vec<String>>;

/// The records of one run, under `runs/PLAN/EXEC/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRecords {
    prefix: String,
}

impl RunRecords {
    pub fn of(plan: &str, execution_name: &str) -> Self {
        Self {
            prefix: format!("runs/{plan}/{execution_name}/"),
        }
    }

    /// Everything of the run is under this prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn record<T>(&self, name: &str) -> Record<T> {
        Record::at(format!("{}{name}", self.prefix))
    }

    /// The plan document as discover read it (inline or stored).
    pub fn plan_document(&self) -> Record<Value> {
        self.record("plan.json")
    }

    pub fn resolved_plan(&self) -> Record<ResolvedPlan> {
        self.record("resolved.json")
    }

    /// What discover handed to the state machine, for the handler of runs that end
    /// without their last steps.
    pub fn discovery(&self) -> Record<Discovery> {
        self.record("discovery.json")
    }

    /// Every readiness problem and warning (the state carries only the first ones).
    pub fn readiness(&self) -> Record<Readiness> {
        self.record("readiness.json")
    }

    pub fn isolation(&self) -> Record<DrillIsolation> {
        self.record("isolation.json")
    }

    pub fn cleared(&self) -> Record<ClearedBeforeLaunch> {
        self.record("cleared.json")
    }

    pub fn dns_cutover(&self) -> Record<DnsCutover> {
        self.record("dns.json")
    }

    /// A failback's recovery instances, the recovery runs and the DNS to put back.
    pub fn failback(&self) -> Record<FailbackRecord> {
        self.record("failback.json")
    }

    /// The failover records a data-plane run cuts over with, as discover checked them
    /// (a copy of [`dns_prepared`]).
    pub fn dns_prepared(&self) -> Record<DnsPrepared> {
        self.record("dns-prepared.json")
    }

    /// What a resumed run carries over from the runs before it.
    pub fn resume(&self) -> Record<ResumeRecord> {
        self.record("resume.json")
    }

    /// A pause asked for (`drplan pause`): the state machine holds before its next
    /// stage while it is there; the PAUSED notification deletes it. Its key is also
    /// built in the state machine ([`PAUSE_REQUEST_KEY_FORMAT`]).
    pub fn pause_request(&self) -> Record<PauseRequest> {
        self.record(PAUSE_REQUEST)
    }

    /// Every wave's records are under this prefix.
    pub fn waves_prefix(&self) -> String {
        format!("{}waves/", self.prefix)
    }

    pub fn wave(&self, wave: &WaveRef) -> WaveRecords {
        WaveRecords {
            prefix: format!("{}{:03}-{}/", self.waves_prefix(), wave.index, wave.name),
        }
    }
}

const PAUSE_REQUEST: &str = "pause.json";

/// How the state machine builds [`RunRecords::pause_request`]'s key from the run's plan
/// and execution name (`States.Format` in `statemachines/recovery.asl.json`; a test
/// holds the two together).
pub const PAUSE_REQUEST_KEY_FORMAT: &str = "runs/{}/{}/pause.json";

/// The records of one wave of a run, under `runs/PLAN/EXEC/waves/NNN-WAVE/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaveRecords {
    prefix: String,
}

const TEMPLATE_SWAPS: &str = "templates.json";
const TARGETS: &str = "targets.json";

impl WaveRecords {
    fn record<T>(&self, name: &str) -> Record<T> {
        Record::at(format!("{}{name}", self.prefix))
    }

    pub fn launch(&self) -> Record<WaveLaunchRecord> {
        self.record("launch.json")
    }

    pub fn health(&self) -> Record<WaveHealthRecord> {
        self.record("health.json")
    }

    pub fn pending(&self) -> Record<PendingByJob> {
        self.record("pending.json")
    }

    pub fn template_swaps(&self) -> Record<WaveTemplateSwaps> {
        self.record(TEMPLATE_SWAPS)
    }

    /// The instances the wave registered into target groups (for rollback and cleanup).
    pub fn targets(&self) -> Record<WaveTargetsRecord> {
        self.record(TARGETS)
    }
}

/// Whether `key` (found under [`RunRecords::waves_prefix`]) is a wave's target groups record.
pub fn is_wave_targets(key: &str) -> Option<Record<WaveTargetsRecord>> {
    key.ends_with(&format!("/{TARGETS}"))
        .then(|| Record::at(key.to_owned()))
}

/// Whether `key` (found under [`RunRecords::waves_prefix`]) is a wave's template swaps.
pub fn is_template_swaps(key: &str) -> Option<Record<WaveTemplateSwaps>> {
    key.ends_with(&format!("/{TEMPLATE_SWAPS}"))
        .then(|| Record::at(key.to_owned()))
}

impl RunContext {
    /// Where this run keeps its records.
    pub fn records(&self) -> RunRecords {
        RunRecords::of(&self.plan, &self.execution_name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_documented_layout() {
        let run = RunRecords::of("shop", "shop-drill-1");
        let wave = WaveRef {
            index: 2,
            name: "app".into(),
            servers: 3,
            hooks: Default::default(),
            adopted: false,
        };
        assert_eq!(run.prefix(), "runs/shop/shop-drill-1/");
        assert_eq!(
            run.resolved_plan().key(),
            "runs/shop/shop-drill-1/resolved.json"
        );
        assert_eq!(
            run.wave(&wave).launch().key(),
            "runs/shop/shop-drill-1/waves/002-app/launch.json"
        );
        let swaps = run.wave(&wave).template_swaps();
        assert_eq!(
            is_template_swaps(swaps.key()).map(|r| r.key().to_owned()),
            Some(swaps.key().to_owned())
        );
        assert!(is_template_swaps(run.wave(&wave).health().key()).is_none());
        let targets = run.wave(&wave).targets();
        assert_eq!(
            targets.key(),
            "runs/shop/shop-drill-1/waves/002-app/targets.json"
        );
        assert_eq!(
            is_wave_targets(targets.key()).map(|r| r.key().to_owned()),
            Some(targets.key().to_owned())
        );
        assert!(is_wave_targets(swaps.key()).is_none());
        assert_eq!(
            run.pause_request().key(),
            "runs/shop/shop-drill-1/pause.json"
        );
        assert_eq!(
            PAUSE_REQUEST_KEY_FORMAT
                .replacen("{}", "shop", 1)
                .replacen("{}", "shop-drill-1", 1),
            run.pause_request().key()
        );
        assert_eq!(plan_source("shop"), "plans/shop.yaml");
        assert_eq!(plan_name_of("plans/shop.yaml"), Some("shop"));
        assert_eq!(plan_name_of("plans/a/b.yaml"), None);
        assert_eq!(plan_name_of("plans/.yaml"), None);
        assert_eq!(plan_name_of("reports/shop.yaml"), None);
        assert_eq!(run_lock("shop").key(), "locks/shop.json");
        assert_eq!(start_claim("shop").key(), "claims/shop/alarm-start.json");
        assert_eq!(parked_job("drsjob-1").key(), "waits/jobs/drsjob-1.json");
        assert_eq!(report_json("shop", "e1").key(), "reports/shop/e1.json");
        assert_eq!(report_markdown("shop", "e1"), "reports/shop/e1.md");
        assert_eq!(report_html("shop", "e1"), "reports/shop/e1.html");
    }
}
