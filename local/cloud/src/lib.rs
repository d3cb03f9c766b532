//! drplan's local cloud: moto, `cargo lambda watch` and the DRS simulator on one machine,
//! behind one gateway address, so that every AWS client only needs `AWS_ENDPOINT_URL`.
//!
//! - [`LocalCloud::start`] starts the whole stack on free loopback ports (tests run in
//!   parallel) and stops every child process when shut down or dropped.
//! - [`gateway`] routes requests by their SigV4 credential scope and `X-Amz-Target`.
//! - [`seed`] fills the cloud from a fleet file.
//! - [`commands`] are the `drplan local ...` subcommands, for the CLI.
//!
//! Everything listens on and connects to 127.0.0.1 only.

pub mod error;
pub mod event_pattern;
pub mod gateway;
mod ids;
pub mod process;
pub mod runtime_api;
pub mod tools;
pub mod upstream;
mod xml;

pub use error::{LocalCloudError, Result};
mod cloud;
pub mod commands;
pub mod seed;
pub mod stack;

pub use cloud::{DEFAULT_GATEWAY_PORT, Functions, LocalCloud, LocalCloudOptions, OpenDescriptors};
/// The DRS simulator the local cloud runs (its phase durations, for benchmarks).
pub use drplan_drs_sim as drs_sim;
