//! drplan's AWS side: SDK clients built once per Lambda sandbox, the DRS, EC2, Route 53,
//! S3, SNS and Step Functions calls the functions make, translated to and from
//! `drplan-core` types, and each function's steps built from them, so that the
//! functions stay thin and the domain stays free of AWS types.

pub mod account_facts;
pub mod bootstrap;
pub mod cleanup;
pub mod cutover;
pub mod discover;
pub mod drill;
pub mod drs;
pub mod ec2;
pub mod error;
pub mod executions;
pub mod failback;
pub mod failback_origin;
pub mod failover;
pub mod health;
pub mod history;
pub mod lock;
pub mod metrics;
pub mod plans;
pub mod probe;
pub mod readiness;
pub mod readiness_watch;
pub mod report;
pub mod resume;
pub mod route53;
pub mod schedules;
pub mod sns;
pub mod step;
pub mod store;
pub mod targets;
pub mod wave;

pub use error::FunctionError;

pub type Result<T, E = FunctionError> = std::result::Result<T, E>;
