//! Drill isolation on AWS: the drill subnet's routes, and each server's EC2 launch
//! template (the one DRS's GetLaunchConfiguration names) switched to a drill version for
//! the launch and back afterwards.
//!
//! DRS launches from the template's default version, so a drill's wave writes down each
//! template's default first (`WaveTemplateSwaps`, in the run's bucket prefix), then makes
//! a version with the drill subnet and security groups on the primary network interface
//! and sets it as the default; once the wave's launch has settled, the previous default
//! is set again and the drill version deleted. The record is written before any template
//! changes, so a retried step, a failed wave and an aborted run all find what to restore.

use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::{
    Filter, LaunchTemplateInstanceNetworkInterfaceSpecification,
    LaunchTemplateInstanceNetworkInterfaceSpecificationRequest, RequestLaunchTemplateData,
};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use drplan_core::Issue;
use drplan_core::WaveServer;
use drplan_core::contract::keys::{self, Record, RunRecords};
use drplan_core::contract::{RunContext, WaveRef, tags};
use drplan_core::safety::{
    DrillIsolation, RouteView, TemplateSwap, WaveTemplateSwaps, drill_version_description,
};

use crate::FunctionError;
use crate::store::RunStore;

/// The drill subnet's VPC and the routes of its route table (its own, or the VPC's
/// main table). `Err(NotReady)` names the subnet when EC2 does not know it.
pub async fn drill_subnet_routes(
    ec2: &Client,
    subnet_id: &str,
) -> Result<(String, Vec<RouteView>), FunctionError> {
    let subnets = ec2
        .describe_subnets()
        .subnet_ids(subnet_id)
        .send()
        .await
        .map_err(|e| match e.code() {
            Some("InvalidSubnetID.NotFound" | "InvalidSubnetID.Malformed") => {
                FunctionError::NotReady(vec![Issue::new(
                    "drill.subnet_id",
                    format!("subnet {subnet_id} does not exist in this account and Region"),
                )])
            }
            _ => FunctionError::from_sdk("EC2 DescribeSubnets", e),
        })?;
    let Some(vpc_id) = subnets
        .subnets()
        .first()
        .and_then(|s| s.vpc_id())
        .map(str::to_owned)
    else {
        return Err(FunctionError::NotReady(vec![Issue::new(
            "drill.subnet_id",
            format!("subnet {subnet_id} does not exist in this account and Region"),
        )]));
    };
    let by_subnet = Filter::builder()
        .name("association.subnet-id")
        .values(subnet_id)
        .build();
    let mut tables = ec2
        .describe_route_tables()
        .filters(by_subnet)
        .send()
        .await
        .map_err(|e| FunctionError::from_sdk("EC2 DescribeRouteTables", e))?
        .route_tables
        .unwrap_or_default();
    if tables.is_empty() {
        // A subnet without its own table uses the VPC's main one.
        let main = ec2
            .describe_route_tables()
            .filters(Filter::builder().name("vpc-id").values(&vpc_id).build())
            .filters(
                Filter::builder()
                    .name("association.main")
                    .values("true")
                    .build(),
            )
            .send()
            .await
            .map_err(|e| FunctionError::from_sdk("EC2 DescribeRouteTables", e))?;
        tables = main.route_tables.unwrap_or_default();
    }
    let routes = tables
        .iter()
        .flat_map(|t| t.routes())
        .map(|r| RouteView {
            destination: r
                .destination_cidr_block()
                .or(r.destination_ipv6_cidr_block())
                .or(r.destination_prefix_list_id())
                .unwrap_or("?")
                .to_owned(),
            target: [
                r.gateway_id(),
                r.nat_gateway_id(),
                r.transit_gateway_id(),
                r.vpc_peering_connection_id(),
                r.egress_only_internet_gateway_id(),
                r.local_gateway_id(),
                r.carrier_gateway_id(),
                r.network_interface_id(),
                r.instance_id(),
                r.core_network_arn(),
            ]
            .into_iter()
            .flatten()
            .next()
            .unwrap_or("unknown")
            .to_owned(),
        })
        .collect();
    Ok((vpc_id, routes))
}

/// The EC2 launch template DRS launches the server from (GetLaunchConfiguration).
async fn launch_template_of(
    drs: &aws_sdk_drs::Client,
    source_server_id: &str,
) -> Result<String, FunctionError> {
    let config = drs
        .get_launch_configuration()
        .source_server_id(source_server_id)
        .send()
        .await
        .map_err(|e| FunctionError::from_sdk("DRS GetLaunchConfiguration", e))?;
    config
        .ec2_launch_template_id()
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| FunctionError::AwsCallFailed {
            operation: "DRS GetLaunchConfiguration",
            code: "NoLaunchTemplate".into(),
            message: format!("DRS names no EC2 launch template for {source_server_id}"),
        })
}

/// A template's default version: its number, description and network interfaces.
struct DefaultVersion {
    number: i64,
    description: Option<String>,
    interfaces: Vec<LaunchTemplateInstanceNetworkInterfaceSpecification>,
}

async fn default_version(ec2: &Client, template_id: &str) -> Result<DefaultVersion, FunctionError> {
    let answer = ec2
        .describe_launch_template_versions()
        .launch_template_id(template_id)
        .versions("$Default")
        .send()
        .await
        .map_err(|e| FunctionError::from_sdk("EC2 DescribeLaunchTemplateVersions", e))?;
    let version =
        answer
            .launch_template_versions()
            .first()
            .ok_or_else(|| FunctionError::AwsCallFailed {
                operation: "EC2 DescribeLaunchTemplateVersions",
                code: "NoDefaultVersion".into(),
                message: format!("launch template {template_id} has no default version"),
            })?;
    Ok(DefaultVersion {
        number: version.version_number().unwrap_or_default(),
        description: version.version_description().map(str::to_owned),
        interfaces: version
            .launch_template_data()
            .map(|d| d.network_interfaces().to_vec())
            .unwrap_or_default(),
    })
}

/// The default version's interfaces, with the primary one moved to the drill subnet
/// (and groups). Passing interfaces replaces the whole inherited list, so the others are
/// kept as they are; a copied private IP of the primary interface is dropped, since it
/// belongs to the recovery subnet.
fn drill_interfaces(
    interfaces: &[LaunchTemplateInstanceNetworkInterfaceSpecification],
    subnet_id: &str,
    security_group_ids: &[String],
) -> Vec<LaunchTemplateInstanceNetworkInterfaceSpecificationRequest> {
    let mut requests: Vec<_> = interfaces
        .iter()
        .map(|i| {
            let primary = i.device_index().unwrap_or(0) == 0;
            let groups = if primary && !security_group_ids.is_empty() {
                Some(security_group_ids.to_vec())
            } else {
                i.groups.clone()
            };
            LaunchTemplateInstanceNetworkInterfaceSpecificationRequest::builder()
                .set_device_index(i.device_index())
                .set_network_card_index(i.network_card_index())
                .set_associate_public_ip_address(i.associate_public_ip_address())
                .set_delete_on_termination(i.delete_on_termination())
                .set_description(i.description().map(str::to_owned))
                .set_interface_type(i.interface_type().map(str::to_owned))
                .set_groups(groups)
                .set_subnet_id(if primary {
                    Some(subnet_id.to_owned())
                } else {
                    i.subnet_id().map(str::to_owned)
                })
                .set_private_ip_address(if primary {
                    None
                } else {
                    i.private_ip_address().map(str::to_owned)
                })
                .set_network_interface_id(i.network_interface_id().map(str::to_owned))
                .build()
        })
        .collect();
    if !interfaces
        .iter()
        .any(|i| i.device_index().unwrap_or(0) == 0)
    {
        requests.insert(
            0,
            LaunchTemplateInstanceNetworkInterfaceSpecificationRequest::builder()
                .device_index(0)
                .subnet_id(subnet_id)
                .set_groups((!security_group_ids.is_empty()).then(|| security_group_ids.to_vec()))
                .build(),
        );
    }
    requests
}

/// Puts every server of the wave on a drill version of its launch template, as the
/// default. Idempotent: a retried step reuses the record and the versions it made.
pub async fn swap_in_drill_templates(
    drs: &aws_sdk_drs::Client,
    ec2: &Client,
    store: &RunStore,
    run: &RunContext,
    wave: &WaveRef,
    servers: &[WaveServer],
    isolation: &DrillIsolation,
) -> Result<usize, FunctionError> {
    let Some(subnet_id) = isolation.subnet_id.as_deref() else {
        return Ok(0);
    };
    let security_group_ids = isolation.security_group_ids.as_slice();
    let key = run.records().wave(wave).template_swaps();
    let marker = drill_version_description(&run.execution_name);
    let mut record = match store.read(&key).await? {
        Some(record) => record,
        None => {
            // First, what to restore: written before any template changes.
            let mut swaps = Vec::with_capacity(servers.len());
            for server in servers {
                let template = launch_template_of(drs, &server.id).await?;
                let current = default_version(ec2, &template).await?;
                if current.description.as_deref() == Some(marker.as_str()) {
                    return Err(FunctionError::InvalidInput(format!(
                        "launch template {template} of {} already defaults to this drill's version, but the run has no record of the swap",
                        server.id
                    )));
                }
                swaps.push(TemplateSwap {
                    source_server_id: server.id.clone(),
                    launch_template_id: template,
                    previous_default_version: current.number,
                    drill_version: None,
                    restored: false,
                });
            }
            let record = WaveTemplateSwaps {
                subnet_id: subnet_id.to_owned(),
                security_group_ids: security_group_ids.to_vec(),
                swaps,
            };
            store.write(&key, &record).await?;
            record
        }
    };
    let mut changed = 0;
    for swap in record.swaps.iter_mut().filter(|s| !s.restored) {
        let current = default_version(ec2, &swap.launch_template_id).await?;
        let drill_version = if current.description.as_deref() == Some(marker.as_str()) {
            current.number
        } else {
            let base = swap.previous_default_version;
            let base_version = if current.number == base {
                current
            } else {
                // Someone changed the default since the record was written: build on
                // the recorded one, which is what will be restored.
                let answer = ec2
                    .describe_launch_template_versions()
                    .launch_template_id(&swap.launch_template_id)
                    .versions(base.to_string())
                    .send()
                    .await
                    .map_err(|e| {
                        FunctionError::from_sdk("EC2 DescribeLaunchTemplateVersions", e)
                    })?;
                let version = answer.launch_template_versions().first();
                DefaultVersion {
                    number: base,
                    description: None,
                    interfaces: version
                        .and_then(|v| v.launch_template_data())
                        .map(|d| d.network_interfaces().to_vec())
                        .unwrap_or_default(),
                }
            };
            let data = RequestLaunchTemplateData::builder()
                .set_network_interfaces(Some(drill_interfaces(
                    &base_version.interfaces,
                    subnet_id,
                    security_group_ids,
                )))
                .build();
            let made = ec2
                .create_launch_template_version()
                .launch_template_id(&swap.launch_template_id)
                .source_version(base.to_string())
                .version_description(&marker)
                .launch_template_data(data)
                .send()
                .await
                .map_err(|e| FunctionError::from_sdk("EC2 CreateLaunchTemplateVersion", e))?;
            made.launch_template_version()
                .and_then(|v| v.version_number())
                .ok_or_else(|| FunctionError::AwsCallFailed {
                    operation: "EC2 CreateLaunchTemplateVersion",
                    code: "NoVersion".into(),
                    message: format!(
                        "EC2 answered without a version for {}",
                        swap.launch_template_id
                    ),
                })?
        };
        ec2.modify_launch_template()
            .launch_template_id(&swap.launch_template_id)
            .default_version(drill_version.to_string())
            .send()
            .await
            .map_err(|e| FunctionError::from_sdk("EC2 ModifyLaunchTemplate", e))?;
        swap.drill_version = Some(drill_version);
        changed += 1;
    }
    store.write(&key, &record).await?;
    tracing::info!(
        templates = changed,
        subnet_id,
        "launch templates on the drill subnet"
    );
    Ok(changed)
}

/// Sets each swapped template's previous default again and deletes the drill version.
/// A template deleted meanwhile has nothing to restore. Idempotent; returns how many
/// templates it restored now.
pub async fn restore_templates(
    ec2: &Client,
    store: &RunStore,
    key: &Record<WaveTemplateSwaps>,
) -> Result<usize, FunctionError> {
    let Some(mut record) = store.read(key).await? else {
        return Ok(0);
    };
    let mut restored = 0;
    for swap in record.swaps.iter_mut().filter(|s| !s.restored) {
        let set = ec2
            .modify_launch_template()
            .launch_template_id(&swap.launch_template_id)
            .default_version(swap.previous_default_version.to_string())
            .send()
            .await;
        match set {
            Ok(_) => {}
            Err(e)
                if e.code()
                    .is_some_and(|c| c.starts_with("InvalidLaunchTemplateId")) =>
            {
                tracing::warn!(
                    template = swap.launch_template_id,
                    "launch template gone: nothing to restore"
                );
            }
            Err(e) => return Err(FunctionError::from_sdk("EC2 ModifyLaunchTemplate", e)),
        }
        if let Some(version) = swap.drill_version {
            // Hygiene only (templates hold at most 10,000 versions): a failure here
            // leaves an unused version, not a wrong default.
            if let Err(e) = ec2
                .delete_launch_template_versions()
                .launch_template_id(&swap.launch_template_id)
                .versions(version.to_string())
                .send()
                .await
            {
                tracing::warn!(
                    template = swap.launch_template_id,
                    error = %aws_smithy_types::error::display::DisplayErrorContext(&e),
                    "could not delete the drill's launch template version"
                );
            }
        }
        swap.restored = true;
        restored += 1;
    }
    store.write(key, &record).await?;
    if restored > 0 {
        tracing::info!(templates = restored, "launch templates restored");
    }
    Ok(restored)
}

/// Restores every template any wave of the run swapped: for the paths that end a run
/// (report, an aborted or timed-out execution, a recovery stopping a drill).
pub async fn restore_run_templates(
    ec2: &Client,
    store: &RunStore,
    run: &RunRecords,
) -> Result<usize, FunctionError> {
    let mut restored = 0;
    for key in store.list_keys(&run.waves_prefix()).await? {
        if let Some(swaps) = keys::is_template_swaps(&key) {
            restored += restore_templates(ec2, store, &swaps).await?;
        }
    }
    Ok(restored)
}

/// TerminateRecoveryInstances takes at most this many instances a call.
pub const INSTANCES_PER_TERMINATE: usize = 200;

/// What terminating a run's drill instances came to.
#[derive(Debug, Default)]
pub struct DrillTermination {
    /// The TERMINATE_RECOVERY_INSTANCES jobs started.
    pub jobs: Vec<String>,
    pub terminated: usize,
    /// Drill instances of servers still in an active DRS job (a launch the run started
    /// before it was stopped): DRS refuses to terminate them until it ends. The plan's
    /// next run terminates them before it launches anything.
    pub still_launching: usize,
}

/// Terminates, through DRS, the drill instances this run's own jobs launched (never a
/// recovery's, never another run's).
pub async fn terminate_run_drill_instances(
    drs: &aws_sdk_drs::Client,
    store: &RunStore,
    run: &RunContext,
) -> Result<DrillTermination, FunctionError> {
    // A run that failed in discovery launched nothing and stored no resolved plan.
    let Some(resolved) = store.read(&run.records().resolved_plan()).await? else {
        return Ok(DrillTermination::default());
    };
    let jobs =
        crate::drs::jobs_since(drs, run.started_at - jiff::SignedDuration::from_mins(5)).await?;
    let busy = crate::drs::busy_servers(&jobs);
    let our_jobs: std::collections::HashSet<&str> = jobs
        .iter()
        .filter(|(_, job_tags)| job_tags.get(tags::EXECUTION) == Some(&run.execution_name))
        .map(|(job, _)| job.job_id.as_str())
        .collect();
    let server_ids: Vec<String> = resolved
        .waves
        .iter()
        .flat_map(|w| w.servers.iter().map(|s| s.id.clone()))
        .collect();
    let (launching, instances): (Vec<_>, Vec<_>) =
        crate::drs::recovery_instances_of(drs, &server_ids)
            .await?
            .into_iter()
            .filter(|r| r.is_drill && r.job_id.as_deref().is_some_and(|j| our_jobs.contains(j)))
            .partition(|r| {
                r.source_server_id
                    .as_ref()
                    .is_some_and(|s| busy.contains(s))
            });
    let instances: Vec<String> = instances
        .into_iter()
        .map(|r| r.recovery_instance_id)
        .collect();
    let mut jobs = Vec::new();
    for chunk in instances.chunks(INSTANCES_PER_TERMINATE) {
        jobs.push(crate::drs::terminate_recovery_instances(drs, chunk).await?);
    }
    if !instances.is_empty() {
        tracing::info!(
            instances = instances.len(),
            jobs = jobs.len(),
            "terminating drill instances"
        );
    }
    Ok(DrillTermination {
        jobs,
        terminated: instances.len(),
        still_launching: launching.len(),
    })
}
