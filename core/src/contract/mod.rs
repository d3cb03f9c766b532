//! The contract: everything that crosses a boundary between the state machines, the
//! functions, the CLI and the bucket, defined once. `docs/contract.md` describes it.
//!
//! - [`input`]: what StartExecution receives, and the rules on run names and hooks;
//! - [`step`]: the payloads the state machine passes between its steps;
//! - [`notice`]: what the notify step receives;
//! - [`keys`]: the bucket layout, one function per object, typed records;
//! - [`tags`]: the tag names drplan writes and reads;
//! - [`errors`]: the catalog of `drplan.*` error names and the standard Retry;
//! - [`states`]: the state names drplan reads from execution histories;
//! - [`asl`]: the check of a state machine definition against all of the above.

pub mod asl;
pub mod errors;
pub mod input;
pub mod keys;
pub mod notice;
pub mod states;
pub mod step;
pub mod tags;

pub use errors::ErrorName;
pub use input::{
    ExecutionInput, HOOK_FUNCTION_PREFIX, MAX_EXECUTION_NAME, PlanSource, ReadinessRequest,
    SnapshotChoice, Timing, WaveSkip, execution_name_problem, hook_problem, hooks_outside,
    pick_snapshot, stack_of,
};
pub use keys::{Record, RunRecords, WaveRecords};
pub use step::{
    Discovery, HealthPoll, LaunchPoll, LaunchState, Resumption, RunContext, SkippedWave, WaveHooks,
    WaveRef, WaveStep,
};
