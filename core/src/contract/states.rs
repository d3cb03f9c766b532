//! State names of the recovery state machine that drplan reads from an execution's
//! history (`drplan status`, `approve`/`decline`, the bench, the tests). A test checks
//! that each one exists in `statemachines/recovery.asl.json`.

/// Its output is the run's [`super::Discovery`].
pub const DISCOVER: &str = "Discover";
/// The approval task (`lambda:invoke.waitForTaskToken`): its token is what
/// `drplan approve`/`decline` answer.
pub const WAIT_FOR_APPROVAL: &str = "WaitForApproval";
/// Its output is a [`super::WaveStep`] with the wave's first launch poll.
pub const LAUNCH_WAVE: &str = "LaunchWave";
/// A wave parked on a task token until DRS's launch results arrive.
pub const WAIT_FOR_LAUNCH: &str = "WaitForLaunch";
/// Its output is a [`super::WaveStep`] with the wave's latest launch poll.
pub const CHECK_LAUNCH: &str = "CheckLaunch";
/// Its output is a [`super::WaveStep`] whose wave is launched and tagged.
pub const TAG_INSTANCES: &str = "TagInstances";
/// Its output is a [`super::WaveStep`] with the wave's latest health poll.
pub const CHECK_HEALTH: &str = "CheckHealth";
/// Entered by a wave whose health gate and post hooks passed (its input names the wave):
/// a resumed run adopts the waves that got here.
pub const WAVE_SUCCEEDED: &str = "WaveSucceeded";
/// The map over the stages (layers) of waves: once it has exited, every wave has run
/// and a pause has nothing left to hold.
pub const RUN_LAYERS: &str = "RunLayers";
/// The pause task (`lambda:invoke.waitForTaskToken`) before a stage: its token is what
/// `drplan continue` answers.
pub const WAIT_WHILE_PAUSED: &str = "WaitWhilePaused";
/// A drill's instances are kept this long before cleanup.
pub const KEEP_DRILL_INSTANCES: &str = "KeepDrillInstances";

/// Every state name above.
pub const READ_BY_DRPLAN: [&str; 11] = [
    DISCOVER,
    WAIT_FOR_APPROVAL,
    LAUNCH_WAVE,
    WAIT_FOR_LAUNCH,
    CHECK_LAUNCH,
    TAG_INSTANCES,
    CHECK_HEALTH,
    WAVE_SUCCEEDED,
    KEEP_DRILL_INSTANCES,
    RUN_LAYERS,
    WAIT_WHILE_PAUSED,
];
