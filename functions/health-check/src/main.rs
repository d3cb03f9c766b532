//! health-check: one poll of a wave's health gate. EC2's status checks of the wave's
//! recovered instances, then the wave's TCP and HTTP probes against each instance
//! (`drplan_aws::health`); returns the gate's state: SUCCEEDED when every critical
//! server is healthy, FAILED when a critical server is gone or still not healthy at the
//! wave's deadline, IN_PROGRESS with the next wait otherwise. Once the checks pass, the
//! healthy instances join the wave's target groups and must turn healthy there too.

use drplan_aws::probe::ProbeSettings;
use drplan_aws::{bootstrap, health};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let clients = bootstrap::start().await?;
    let probes = ProbeSettings::from_env();
    drplan_aws::step::serve("health-check", |step| {
        health::check_wave(&clients, &probes, step)
    })
    .await
}
