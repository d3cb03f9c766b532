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
/// On recovery instances, put there by DRS (the launch template it generates carries
/// it): the DRS source server the instance recovers. drplan reads it, never writes it.
pub const DRS_SOURCE_SERVER: &str = "AWSElasticDisasterRecoverySourceServerID";
/// On recovery instances: their name. DRS sets it (from the source server's hostname in
/// the launch template it generates, or the source server's own `Name` when the launch
/// setting `copyTags` is on); drplan writes it only on an instance that has none.
pub const NAME: &str = "Name";
