//! discover: reads and validates the plan, resolves its servers over every page of
//! DescribeSourceServers, checks they can be launched, and stores the resolved plan
//! for the later steps (`drplan_aws::discover`). Makes no DRS call that changes
//! anything: a plan with problems ends the execution here, with every problem listed.

use drplan_aws::{bootstrap, discover};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let clients = bootstrap::start().await?;
    drplan_aws::step::serve("discover", |input| discover::discover_run(&clients, input)).await
}
