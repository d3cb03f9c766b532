//! The tag names drplan writes and reads. Values are the run's own (plan, wave,
//! execution name, mode); the selection tags a plan chooses (`dr:wave`...) are the
//! plan's, not these.

/// On everything a run starts (DRS jobs, recovery instances): the plan's name. On a
/// CloudWatch alarm (with tag propagation on), the plan the alarm starts.
pub const PLAN: &str = "drplan:plan";
/// On recovery instances: the wave that launched them.
pub const WAVE: &str = "drplan:wave";
/// On everything a run starts: its execution name, so a retried step finds its own work.
pub const EXECUTION: &str = "drplan:execution";
/// On everything a run starts: `drill` or `recovery`. On a CloudWatch alarm: the mode of
/// the run it starts (a plan may only be made a drill this way, never a recovery).
pub const MODE: &str = "drplan:mode";
/// On recovery instances: the DRS source server they recover.
pub const SOURCE_SERVER: &str = "drplan:source-server";
