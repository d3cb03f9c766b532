//! drplan's domain: plans, validation, server selection, waves, DRS quotas, launch
//! outcomes and readiness.
//!
//! Nothing here talks to AWS or uses AWS SDK types: functions and the CLI translate
//! between the SDKs and these types, so all of this is tested without a network.

pub mod audit;
pub mod budget;
pub mod cleanup;
pub mod contract;
pub mod dag;
pub mod discovery;
pub mod dns;
pub mod dns_failover;
pub mod drs_account;
pub mod duration;
pub mod evaluation;
pub mod failback;
pub mod health;
pub mod issue;
pub mod launch;
pub mod launch_wait;
pub mod notify;
pub mod parse;
pub mod plan;
pub mod quota;
pub mod readiness;
pub mod report;
pub mod resolve;
pub mod resume;
pub mod safety;
pub mod schedule;
pub mod tagging;
pub mod targets;
pub mod trigger;
mod validate;

pub use contract::{ExecutionInput, PlanSource, SnapshotChoice, Timing};
pub use issue::{DOCUMENT_PATH, Issue};
pub use parse::{Format, parse_document, parse_plan, plan_from_value};
pub use plan::{HealthCheck, Mode, Plan, RecordType, plan_json_schema};
pub use quota::{Quotas, plan_launch_batches};
pub use resolve::{
    ResolvedPlan, ResolvedWave, SourceServer, WaveServer, parse_source_server_dump, resolve,
};
