//! drplan end to end on the local cloud: the real state machines interpreted by moto,
//! the real function binaries behind `cargo lambda watch`, the DRS simulator, all
//! driven through the AWS SDK as a user's tooling would. One test binary, so that a
//! two-core machine links it once; each module is one topic, and each test starts its
//! own local cloud on free ports and stops every process it started, pass or fail.
//!
//! Run one topic with `cargo test --test e2e recovery::`. Without the local cloud's
//! tools (`scripts/install-local-cloud`) the tests skip themselves with a printed
//! reason, unless DRPLAN_REQUIRE_LOCAL_CLOUD is set.

mod common;

// Tests start in name order on two test threads: the 4,000-server run (about ten
// minutes) sorts first, so the other modules run beside it on the second thread
// instead of after it.
mod at_scale;
mod capacity;
mod cutover;
mod dataplane;
mod failback;
mod failback_region;
mod failback_run;
mod hardening;
mod notify;
mod operators;
mod readiness;
mod recovery;
mod resume;
mod safety;
mod targets;
mod trigger;
