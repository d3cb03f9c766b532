//! report: at the end of every execution, succeeded or failed, writes the run's
//! report to `reports/PLAN/EXECUTION.{json,md}` in the bucket, puts back launch
//! templates a drill left on its drill subnet and releases the plan's lock
//! (`drplan_aws::report`).

use drplan_aws::bootstrap;
use drplan_aws::report::end_run;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let clients = bootstrap::start().await?;
    drplan_aws::step::serve("report", |input| {
        end_run(&clients.ec2, &clients.store, input)
    })
    .await
}
