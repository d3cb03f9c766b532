//! cleanup: after a drill, terminates the drill's recovery instances through DRS and
//! follows the terminate jobs until they end; before a run's first wave (state CLEAR),
//! clears the plan's servers of another run's drill, jobs and instances
//! (`drplan_aws::cleanup`). Called again by the state machine until it answers DONE.

use drplan_aws::{bootstrap, cleanup};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let clients = bootstrap::start().await?;
    drplan_aws::step::serve("cleanup", |step| cleanup::clean_up(&clients, step)).await
}
