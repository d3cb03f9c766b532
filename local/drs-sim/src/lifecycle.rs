//! Job lifecycles on timers: launch (recovery and drill) and terminate; failback jobs
//! are in `failback`.
//!
//! Each job runs as one background task that drives one sub-task per server. State changes
//! happen under the state lock, never across an await; calls to moto and EventBridge happen
//! between them.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::task::JoinSet;

use crate::clock::Timestamp;
use crate::model::{JobLogData, JobLogItem, JobStatus, RecoveryInstance, RecoverySnapshot, State};
use crate::outbound::RunInstance;
use crate::sim::Simulator;

pub struct LaunchPlan {
    pub job_id: String,
    pub generation: u64,
    pub is_drill: bool,
    /// (source server ID, chosen recovery snapshot ID).
    pub servers: Vec<(String, Option<String>)>,
}

pub struct InstanceJobPlan {
    pub job_id: String,
    pub generation: u64,
    /// (recovery instance ID, source server ID).
    pub instances: Vec<(String, String)>,
}

pub(crate) fn log(state: &mut State, job_id: &str, event: &'static str, data: JobLogData) {
    if let Some(job) = state.job_mut(job_id) {
        job.log.push(JobLogItem {
            time: Timestamp::now(),
            event,
            data,
        });
    }
}

pub(crate) fn for_server(source_server_id: &str) -> JobLogData {
    JobLogData {
        source_server_id: Some(source_server_id.to_owned()),
        ..JobLogData::default()
    }
}

/// PENDING → STARTED with JOB_START, after the scaled start delay.
pub(crate) async fn start_job(sim: &Simulator, job_id: &str, generation: u64) -> Option<()> {
    tokio::time::sleep(sim.scaled(sim.config.phases.job_start)).await;
    sim.update(generation, |state| {
        if let Some(job) = state.job_mut(job_id) {
            job.status = JobStatus::Started;
        }
        log(state, job_id, "JOB_START", JobLogData::default());
    })
}

/// STARTED → COMPLETED with JOB_END, once every server has its result.
pub(crate) fn end_job(sim: &Simulator, job_id: &str, generation: u64) {
    sim.update(generation, |state| {
        log(state, job_id, "JOB_END", JobLogData::default());
        if let Some(job) = state.job_mut(job_id) {
            job.status = JobStatus::Completed;
            job.ended = Some(Timestamp::now());
        }
    });
}

pub(crate) async fn wait_for_all(mut servers: JoinSet<()>) {
    while let Some(result) = servers.join_next().await {
        if let Err(error) = result
            && error.is_panic()
        {
            eprintln!("drs-sim: a server task panicked: {error}");
        }
    }
}

pub fn spawn_launch_job(sim: &Arc<Simulator>, plan: LaunchPlan) {
    let sim_for_task = sim.clone();
    sim.spawn_background(async move {
        let sim = sim_for_task;
        if start_job(&sim, &plan.job_id, plan.generation)
            .await
            .is_none()
        {
            return;
        }
        // Dropping this set (when the job task is aborted) aborts the server tasks too.
        let mut servers = JoinSet::new();
        for (server_id, snapshot_id) in plan.servers {
            let sim = sim.clone();
            let job_id = plan.job_id.clone();
            let generation = plan.generation;
            let is_drill = plan.is_drill;
            servers.spawn(async move {
                launch_server(&sim, generation, &job_id, &server_id, snapshot_id, is_drill).await;
            });
        }
        wait_for_all(servers).await;
        end_job(&sim, &plan.job_id, plan.generation);
    });
}

/// What a launch needs to know about its server, read once under the lock.
struct LaunchTarget {
    arn: String,
    /// The server's Region: its DRS, and the EC2 that launches its instance.
    region: String,
    hostname: String,
    tags: Vec<(String, String)>,
    image_id: String,
    instance_type: String,
    launch_template_id: String,
    /// A reversed-direction server whose own template is not in EC2 yet: the launch
    /// makes it first ([`crate::reverse::ensure_launch_template`]).
    template_pending: bool,
    /// Where a launch without EC2 is recorded: the template's first subnet.
    simulated_subnet_id: Option<String>,
    failure: Option<String>,
    conversion_factor: f64,
    conversion_extra_seconds: f64,
}

async fn launch_server(
    sim: &Arc<Simulator>,
    generation: u64,
    job_id: &str,
    server_id: &str,
    snapshot_id: Option<String>,
    is_drill: bool,
) -> Option<()> {
    let phases = sim.config.phases.clone();
    sim.update(generation, |state| {
        if let Some(participant) = state
            .job_mut(job_id)
            .and_then(|job| job.participant_mut(server_id))
        {
            participant.launch_status = "IN_PROGRESS";
        }
        if let Some(launch) = state
            .server_mut(server_id)
            .and_then(|server| server.last_launch.as_mut())
        {
            launch.status = "IN_PROGRESS";
        }
    })?;

    // Point in time: a new snapshot now, or the one asked for.
    let point_in_time = match &snapshot_id {
        None => {
            sim.update(generation, |state| {
                log(state, job_id, "SNAPSHOT_START", for_server(server_id))
            })?;
            tokio::time::sleep(sim.scaled(phases.snapshot)).await;
            sim.update(generation, |state| {
                let now = Timestamp::now();
                let snapshot = RecoverySnapshot {
                    id: state.ids.recovery_snapshot_id(),
                    source_server_id: server_id.to_owned(),
                    expected: now,
                    taken: now,
                    ebs_snapshots: vec![state.ids.ebs_snapshot_id()],
                };
                state.snapshots.push(snapshot);
                log(state, job_id, "SNAPSHOT_END", for_server(server_id));
                now
            })?
        }
        Some(snapshot_id) => sim.update(generation, |state| {
            log(
                state,
                job_id,
                "USING_PREVIOUS_SNAPSHOT",
                for_server(server_id),
            );
            state
                .snapshots
                .iter()
                .find(|snapshot| &snapshot.id == snapshot_id)
                .map_or_else(Timestamp::now, |snapshot| snapshot.taken)
        })?,
    };

    let (conversion_server_id, target) = sim.update(generation, |state| {
        let conversion_server_id = state.ids.ec2_instance_id();
        log(
            state,
            job_id,
            "CONVERSION_START",
            JobLogData {
                conversion_server_id: Some(conversion_server_id.clone()),
                ..for_server(server_id)
            },
        );
        let server = state.server(server_id)?;
        let mut tags: Vec<(String, String)> = server
            .tags
            .iter()
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        // What DRS puts on a recovery instance itself (its generated launch template
        // carries these), and with `copyTags` the source server's tags.
        tags.push((
            "AWSElasticDisasterRecoveryManaged".to_owned(),
            "drs.amazonaws.com".to_owned(),
        ));
        tags.push((
            "AWSElasticDisasterRecoverySourceServerID".to_owned(),
            server_id.to_owned(),
        ));
        if !server.tags.contains_key("Name") {
            tags.push(("Name".to_owned(), server.hostname.clone()));
        }
        let slow = state.faults.slow_conversions.get(server_id);
        let target = LaunchTarget {
            arn: server.arn.clone(),
            region: server.region.clone(),
            hostname: server.hostname.clone(),
            tags,
            image_id: server.image_id.clone(),
            instance_type: server.instance_type.clone(),
            launch_template_id: server.launch_template_id.clone(),
            template_pending: server.replication_direction == "FAILBACK"
                && !server.launch_template_in_ec2,
            simulated_subnet_id: server.launch_subnet_id.clone(),
            failure: state.faults.failed_launches.get(server_id).cloned(),
            conversion_factor: slow.map_or(1.0, |slow| slow.factor),
            conversion_extra_seconds: slow.map_or(0.0, |slow| slow.extra_seconds),
        };
        Some((conversion_server_id, target))
    })??;

    let conversion = phases.conversion.mul_f64(target.conversion_factor)
        + Duration::from_secs_f64(target.conversion_extra_seconds);
    tokio::time::sleep(sim.scaled(conversion)).await;
    let with_conversion = |data: JobLogData| JobLogData {
        conversion_server_id: Some(conversion_server_id.clone()),
        ..data
    };
    sim.update(generation, |state| {
        log(
            state,
            job_id,
            "CONVERSION_END",
            with_conversion(for_server(server_id)),
        )
    })?;

    // Launch: an injected failure, a real instance in moto (from the launch template's
    // default version, drills and recoveries alike), or a simulated instance.
    let launched = match &target.failure {
        Some(raw_error) => Err(raw_error.clone()),
        None if sim.outbound.has_ec2() => {
            launch_in_ec2(sim, generation, job_id, server_id, &target).await
        }
        None => Ok(sim.with_state(|state| Launched {
            ec2_instance_id: state.ids.ec2_instance_id(),
            private_ip: Some(state.ids.private_ipv4()),
            public_ip: None,
            subnet_id: target.simulated_subnet_id.clone(),
            security_group_ids: Vec::new(),
            in_moto: false,
        })),
    };
    sim.update(generation, |state| {
        let target_instance_id = launched
            .as_ref()
            .ok()
            .map(|launched| launched.ec2_instance_id.clone());
        log(
            state,
            job_id,
            "LAUNCH_START",
            JobLogData {
                target_instance_id,
                ..with_conversion(for_server(server_id))
            },
        )
    })?;
    // An instance that moto could not launch fails at once; the others take their boot time.
    if launched.is_ok() || target.failure.is_some() {
        tokio::time::sleep(sim.scaled(phases.launch)).await;
    }

    match launched {
        Ok(launched) => {
            let replaced = sim.update(generation, |state| {
                finish_launched(
                    sim,
                    state,
                    job_id,
                    server_id,
                    is_drill,
                    point_in_time,
                    launched,
                )
            })?;
            sim.sync_probe_listeners();
            // DRS keeps one recovery instance per source server: the new launch replaces
            // (and terminates, in the server's Region) the previous one.
            if let Some(previous) = replaced
                && previous.in_moto
                && let Err(error) = sim
                    .outbound
                    .terminate_instances(
                        &target.region,
                        std::slice::from_ref(&previous.ec2_instance_id),
                    )
                    .await
            {
                sim.with_state(|state| {
                    state.outbound_errors.push(format!(
                        "terminating replaced instance {}: {error}",
                        previous.ec2_instance_id
                    ))
                });
            }
            emit_launch_result(sim, &target, server_id, job_id, is_drill, "SUCCEEDED").await;
        }
        Err(raw_error) => {
            sim.update(generation, |state| {
                log(
                    state,
                    job_id,
                    "LAUNCH_FAILED",
                    JobLogData {
                        raw_error: Some(raw_error.clone()),
                        ..with_conversion(for_server(server_id))
                    },
                );
                if let Some(participant) = state
                    .job_mut(job_id)
                    .and_then(|job| job.participant_mut(server_id))
                {
                    participant.launch_status = "FAILED";
                }
                if let Some(server) = state.server_mut(server_id) {
                    server.last_launch_result = "FAILED";
                    if let Some(launch) = server.last_launch.as_mut() {
                        launch.status = "FAILED";
                    }
                }
            })?;
            eprintln!(
                "drs-sim: launch of {server_id} ({}) failed: {raw_error}",
                target.hostname
            );
            emit_launch_result(sim, &target, server_id, job_id, is_drill, "FAILED").await;
        }
    }
    Some(())
}

/// An instance a launch made.
struct Launched {
    ec2_instance_id: String,
    private_ip: Option<String>,
    public_ip: Option<String>,
    subnet_id: Option<String>,
    security_group_ids: Vec<String>,
    in_moto: bool,
}

/// Reads the launch template's default version (now, so that a default changed since the
/// last launch counts) and runs the instance in its subnet with its security groups, in
/// the EC2 of the server's Region. A template that cannot be read fails the launch, as it
/// fails DRS's.
async fn launch_in_ec2(
    sim: &Simulator,
    generation: u64,
    job_id: &str,
    server_id: &str,
    target: &LaunchTarget,
) -> Result<Launched, String> {
    let region = target.region.as_str();
    let template_id = if target.template_pending {
        crate::reverse::ensure_launch_template(sim, generation, server_id)
            .await
            .map_err(|reason| {
                format!(
                    "Failed to launch the recovery instance: source server {server_id} has no \
                     launch template in {region}: {reason}"
                )
            })?
    } else {
        target.launch_template_id.clone()
    };
    let template_id = &template_id;
    let network = sim
        .outbound
        .default_template_network(region, template_id)
        .await
        .map_err(|error| {
            format!(
                "Failed to launch the recovery instance: could not read the default version of \
                 launch template {template_id} of source server {server_id} in {region}: {error}"
            )
        })?;
    let client_token = format!("{job_id}-{server_id}");
    let instance = sim
        .outbound
        .run_instance(RunInstance {
            region,
            image_id: &target.image_id,
            instance_type: &target.instance_type,
            subnet_id: network.subnet_id.as_deref(),
            security_group_ids: &network.security_group_ids,
            launch_template: Some((template_id, &network.version)),
            tags: target.tags.clone(),
            client_token: &client_token,
        })
        .await
        .map_err(|error| match error.ec2_error() {
            // EC2's own error (a capacity error, most often) leads, as DRS shows it.
            Some(ec2_error) => format!(
                "{ec2_error} (launch template {template_id} version {})",
                network.version
            ),
            None => format!(
                "Failed to launch the recovery instance from launch template {template_id} \
                 version {}: {error}",
                network.version
            ),
        })?;
    Ok(Launched {
        ec2_instance_id: instance.instance_id,
        private_ip: instance.private_ip,
        public_ip: instance.public_ip,
        subnet_id: instance.subnet_id.or(network.subnet_id),
        security_group_ids: network.security_group_ids,
        in_moto: true,
    })
}

/// Records a successful launch; returns the recovery instance it replaced, if any.
fn finish_launched(
    sim: &Simulator,
    state: &mut State,
    job_id: &str,
    server_id: &str,
    is_drill: bool,
    point_in_time: Timestamp,
    launched: Launched,
) -> Option<RecoveryInstance> {
    let Launched {
        ec2_instance_id,
        private_ip,
        public_ip,
        subnet_id,
        security_group_ids,
        in_moto,
    } = launched;
    // DRS uses the EC2 instance ID as the recovery instance ID.
    let recovery_instance_id = ec2_instance_id.clone();
    let (tags, region, origin_is_aws) = state
        .server(server_id)
        .map(|server| {
            (
                server.tags.clone(),
                server.region.clone(),
                server.origin_region.is_some(),
            )
        })
        .unwrap_or_else(|| (Default::default(), sim.config.region.clone(), false));
    let previous_index = state
        .recovery_instances
        .iter()
        .position(|instance| instance.source_server_id == server_id);
    let replaced = previous_index.map(|index| state.recovery_instances.remove(index));
    if let Some(previous) = &replaced {
        crate::reverse::disconnect_replicas_of(state, &previous.id);
    }
    state.recovery_instances.push(RecoveryInstance {
        arn: sim.arn_in(&region, "recovery-instance", &recovery_instance_id),
        id: recovery_instance_id.clone(),
        ec2_instance_id,
        ec2_state: "RUNNING",
        job_id: job_id.to_owned(),
        source_server_id: server_id.to_owned(),
        is_drill,
        tags,
        point_in_time,
        private_ip,
        public_ip,
        subnet_id,
        security_group_ids,
        failback_state: None,
        failback_job_id: None,
        failback_client_id: None,
        failback_initiated: None,
        failback_epoch: 0,
        origin_is_aws,
        in_moto,
    });
    if let Some(participant) = state
        .job_mut(job_id)
        .and_then(|job| job.participant_mut(server_id))
    {
        participant.launch_status = "LAUNCHED";
        participant.recovery_instance_id = Some(recovery_instance_id.clone());
    }
    if let Some(server) = state.server_mut(server_id) {
        server.recovery_instance_id = Some(recovery_instance_id);
        server.last_launch_result = "SUCCEEDED";
        if let Some(launch) = server.last_launch.as_mut() {
            launch.status = "LAUNCHED";
        }
    }
    replaced
}

/// `DRS Source Server Launch Result`, as the DRS user guide documents it, from the DRS
/// of the server's Region (the event's `region`).
async fn emit_launch_result(
    sim: &Simulator,
    target: &LaunchTarget,
    server_id: &str,
    job_id: &str,
    is_drill: bool,
    state: &str,
) {
    if sim.with_state(|s| s.faults.lost_launch_results.contains(server_id)) {
        eprintln!("drs-sim: the launch result of {server_id} is lost (fault)");
        return;
    }
    sim.emit_event_in(
        &target.region,
        "DRS Source Server Launch Result",
        vec![target.arn.clone()],
        json!({
            "state": state,
            "job-id": job_id,
            "is-drill": if is_drill { "TRUE" } else { "FALSE" },
        }),
    )
    .await;
}

/// Runs a job over recovery instances in the background: starts it, runs `per_instance`
/// for every (instance, server) at once, and ends it when all are done. Termination and
/// failback jobs differ only in what happens to each instance.
pub(crate) fn spawn_instance_job<F, Fut>(
    sim: &Arc<Simulator>,
    plan: InstanceJobPlan,
    per_instance: F,
) where
    F: Fn(Arc<Simulator>, u64, String, String, String) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let sim_for_task = sim.clone();
    sim.spawn_background(async move {
        let sim = sim_for_task;
        if start_job(&sim, &plan.job_id, plan.generation)
            .await
            .is_none()
        {
            return;
        }
        let mut instances = JoinSet::new();
        for (instance_id, server_id) in plan.instances {
            instances.spawn(per_instance(
                sim.clone(),
                plan.generation,
                plan.job_id.clone(),
                instance_id,
                server_id,
            ));
        }
        wait_for_all(instances).await;
        end_job(&sim, &plan.job_id, plan.generation);
    });
}

pub fn spawn_terminate_job(sim: &Arc<Simulator>, plan: InstanceJobPlan) {
    spawn_instance_job(
        sim,
        plan,
        |sim, generation, job_id, instance_id, server_id| async move {
            terminate_instance(&sim, generation, &job_id, &instance_id, &server_id).await;
        },
    );
}

async fn terminate_instance(
    sim: &Simulator,
    generation: u64,
    job_id: &str,
    instance_id: &str,
    server_id: &str,
) -> Option<()> {
    let (ec2_instance_id, in_moto, region) = sim.update(generation, |state| {
        if let Some(participant) = state
            .job_mut(job_id)
            .and_then(|job| job.participant_mut(server_id))
        {
            participant.launch_status = "IN_PROGRESS";
        }
        // The instance lives in its server's Region, whose EC2 terminates it.
        let region = state
            .server(server_id)
            .map_or_else(|| sim.config.region.clone(), |server| server.region.clone());
        let instance = state.recovery_instance_mut(instance_id)?;
        instance.ec2_state = "SHUTTING-DOWN";
        let found = (instance.ec2_instance_id.clone(), instance.in_moto, region);
        log(
            state,
            job_id,
            "CLEANUP_START",
            JobLogData {
                target_instance_id: Some(found.0.clone()),
                ..for_server(server_id)
            },
        );
        Some(found)
    })??;
    // A shutting-down instance stops serving at once.
    sim.sync_probe_listeners();
    let result = if in_moto {
        sim.outbound
            .terminate_instances(&region, std::slice::from_ref(&ec2_instance_id))
            .await
            .map_err(|error| error.to_string())
    } else {
        Ok(())
    };
    tokio::time::sleep(sim.scaled(sim.config.phases.terminate)).await;
    let finished = sim.update(generation, |state| {
        let data = JobLogData {
            target_instance_id: Some(ec2_instance_id.clone()),
            ..for_server(server_id)
        };
        match &result {
            Ok(()) => {
                state
                    .recovery_instances
                    .retain(|instance| instance.id != instance_id);
                crate::reverse::disconnect_replicas_of(state, instance_id);
                log(state, job_id, "CLEANUP_END", data);
                if let Some(participant) = state
                    .job_mut(job_id)
                    .and_then(|job| job.participant_mut(server_id))
                {
                    participant.launch_status = "TERMINATED";
                }
                if let Some(server) = state.server_mut(server_id)
                    && server.recovery_instance_id.as_deref() == Some(instance_id)
                {
                    server.recovery_instance_id = None;
                    if let Some(launch) = server.last_launch.as_mut() {
                        launch.status = "TERMINATED";
                    }
                }
            }
            Err(raw_error) => {
                if let Some(instance) = state.recovery_instance_mut(instance_id) {
                    instance.ec2_state = "RUNNING";
                }
                log(
                    state,
                    job_id,
                    "CLEANUP_FAIL",
                    JobLogData {
                        raw_error: Some(raw_error.clone()),
                        ..data
                    },
                );
                if let Some(participant) = state
                    .job_mut(job_id)
                    .and_then(|job| job.participant_mut(server_id))
                {
                    participant.launch_status = "FAILED";
                }
            }
        }
    });
    // A failed cleanup leaves the instance running: it serves again.
    sim.sync_probe_listeners();
    finished
}
