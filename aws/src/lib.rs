//! drplan's AWS side: SDK clients built once per Lambda sandbox, and the DRS, EC2 and
//! S3 calls the functions make, translated to and from `drplan-core` types so that
//! the functions stay thin and the domain stays free of AWS types.

pub mod addresses;
pub mod bootstrap;
pub mod drill;
pub mod drs;
pub mod ec2;
pub mod error;
pub mod history;
pub mod lock;
pub mod metrics;
pub mod probe;
pub mod report;
pub mod route53;
pub mod sns;
pub mod step;
pub mod store;
pub mod wave;

pub use error::FunctionError;

pub type Result<T, E = FunctionError> = std::result::Result<T, E>;
