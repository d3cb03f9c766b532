//! tag-instances: tags the EC2 instances a wave recovered with the plan, wave,
//! execution, mode and source server, and names them after the source hostname, so a
//! person (and cleanup, and the health gate) can tell what a run launched.

use drplan_aws::bootstrap::Clients;
use drplan_aws::wave::WaveLaunchRecord;
use drplan_aws::{FunctionError, bootstrap, ec2, wave};
use drplan_core::execution::{TAG_EXECUTION, TAG_SOURCE_SERVER, TAG_WAVE, WaveStep};
use serde::Serialize;

#[derive(Serialize)]
struct Tagged {
    wave: String,
    tagged: usize,
    /// Tagged by an earlier attempt of this step.
    already_tagged: usize,
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let clients = bootstrap::start().await?;
    drplan_aws::step::serve("tag-instances", |step| tag_instances(&clients, step)).await
}

async fn tag_instances(clients: &Clients, step: WaveStep) -> Result<Tagged, FunctionError> {
    let WaveStep { run, wave, .. } = step;
    let record: WaveLaunchRecord = clients
        .store
        .require_json(&run.wave_key(&wave, "launch.json"))
        .await?;
    let launched: Vec<_> = record.progress.launched().collect();
    // This run's own instances: the ones its jobs launched, never whatever DRS reports
    // for the server now (another run may have launched it since).
    let own = wave::own_instances(&clients.drs, &launched).await?;
    let mut instances = Vec::with_capacity(launched.len());
    for server in &launched {
        let Some(instance_id) = own.get(&server.source_server_id).cloned() else {
            return Err(FunctionError::WaveFailed(format!(
                "wave {:?}: DRS reports {} launched but names no EC2 instance for it",
                wave.name, server.source_server_id
            )));
        };
        let mut tags = run.tags();
        tags.push((TAG_WAVE.into(), wave.name.clone()));
        tags.push((TAG_SOURCE_SERVER.into(), server.source_server_id.clone()));
        tags.push((
            "Name".into(),
            server
                .hostname
                .clone()
                .unwrap_or_else(|| server.source_server_id.clone()),
        ));
        instances.push((instance_id, tags));
    }
    // A retried step (throttled by EC2 part way through a large wave) picks up where the
    // last attempt stopped: one CreateTags call carries all of an instance's tags, so an
    // instance with this execution's tag and a source-server tag has them all. Both,
    // because DRS may copy tags onto the instances it launches; only this step writes
    // drplan:source-server.
    let ids: Vec<String> = instances.iter().map(|(id, _)| id.clone()).collect();
    let marks = [
        (TAG_EXECUTION, Some(run.execution_name.as_str())),
        (TAG_SOURCE_SERVER, None),
    ];
    let already = ec2::instances_tagged(&clients.ec2, &ids, &marks).await?;
    instances.retain(|(id, _)| !already.contains(id));
    ec2::tag_instances(&clients.ec2, &instances).await?;
    tracing::info!(
        tagged = instances.len(),
        already_tagged = already.len(),
        "instances tagged"
    );
    Ok(Tagged {
        wave: wave.name,
        tagged: instances.len(),
        already_tagged: already.len(),
    })
}
