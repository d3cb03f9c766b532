//! Cross-Region failback of EC2 sources: the replications that ReverseReplication starts
//! or redirects, and the launch template of a reversed-direction source server in its own
//! Region's EC2.
//!
//! As the DRS user guide ("Performing a cross-Region failback") describes it, with B1 the
//! source server in the recovery Region that protects EC2 instance A1 of the source
//! (origin) Region:
//!
//! 1. ReverseReplication on B1's recovery instance B2 (recovery Region) creates source
//!    server A2 in the origin Region, direction FAILBACK, replicating B2 back (INITIAL_SYNC,
//!    then CONTINUOUS). DRS makes a launch template for every source server; with EC2 the
//!    simulator makes A2's in the origin Region's EC2 (moto's backend of that Region), in
//!    A1's subnet when that Region has one, else a default subnet ([`pick_subnet`]).
//! 2. StartRecovery of A2 in the origin Region launches recovery instance A3 there.
//! 3. ReverseReplication on A3 (origin Region) makes B1 protect the failed-back instance
//!    (A4) in place of A1: it answers B1's ARN, and B1 replicates A3 (RESCAN, then
//!    CONTINUOUS, direction FAILOVER as before).
//!
//! A server that replicates a recovery instance loses its source when that instance is
//! terminated (TerminateRecoveryInstances, or a new launch replacing it): it is
//! DISCONNECTED from then on. The guide asks to stop A2's replication before terminating
//! B2; the simulator does not enforce that order.

use std::net::Ipv4Addr;
use std::sync::Arc;

use crate::model::{SourceServer, State};
use crate::sim::Simulator;
use crate::templates::{Subnet, TemplateSpec, template_name};

/// A replication that ReverseReplication started or redirected: `server_id` replicates
/// recovery instance `from_instance`, in state `syncing` until the simulated sync time
/// (`phases.failback_sync`) has passed, then CONTINUOUS.
pub struct ReverseSync {
    pub server_id: String,
    pub from_instance: String,
    pub syncing: &'static str,
    /// Make the server's own launch template in its Region's EC2 first.
    pub create_template: bool,
}

/// Points `server` at recovery instance `from_instance` and starts its sync: `syncing`
/// now, or, under a stall fault, once the stall is cleared (the stall is the simulated
/// network problem and lasts until then).
pub fn start_replicating(server: &mut SourceServer, from_instance: &str, syncing: &'static str) {
    server.replicates_from = Some(from_instance.to_owned());
    if server.replication.stalled_since.is_some() {
        server.replication.state_before_stall = Some("CONTINUOUS".to_owned());
    } else {
        server.replication.state = syncing.to_owned();
        server.replication.lag_seconds = 0;
    }
}

/// Runs a sync in the background: the launch template first when asked, then the sync
/// time, then CONTINUOUS, unless the server has been pointed elsewhere, disconnected or
/// stalled in between.
pub fn spawn_sync(sim: &Arc<Simulator>, generation: u64, sync: ReverseSync) {
    let task_sim = sim.clone();
    sim.spawn_background(async move {
        let sim = task_sim;
        if sync.create_template {
            // A failure is logged there; a launch tries again and fails with the reason.
            let _ = ensure_launch_template(&sim, generation, &sync.server_id).await;
        }
        tokio::time::sleep(sim.scaled(sim.config.phases.failback_sync)).await;
        sim.update(generation, |state| {
            if let Some(server) = state.server_mut(&sync.server_id)
                && server.replicates_from.as_deref() == Some(sync.from_instance.as_str())
                && server.replication.state == sync.syncing
            {
                server.replication.state = "CONTINUOUS".to_owned();
                server.replication.lag_seconds = 0;
            }
        });
    });
}

/// Servers that replicated recovery instance `instance_id`, which is gone: DISCONNECTED
/// (after a stall is cleared, when one holds).
pub fn disconnect_replicas_of(state: &mut State, instance_id: &str) {
    for server in &mut state.servers {
        if server.replicates_from.as_deref() != Some(instance_id) {
            continue;
        }
        if server.replication.stalled_since.is_some() {
            server.replication.state_before_stall = Some("DISCONNECTED".to_owned());
        } else {
            server.replication.state = "DISCONNECTED".to_owned();
        }
    }
}

/// Whether `server` replicates a recovery instance that no longer exists: nothing can
/// bring its replication back (RetryDataReplication leaves it as it is).
pub fn source_is_gone(state: &State, server: &SourceServer) -> bool {
    server
        .replicates_from
        .as_deref()
        .is_some_and(|id| state.recovery_instance(id).is_none())
}

/// What making a server's template needs, read under the lock.
struct TemplateNeeds {
    region: String,
    existing: Option<String>,
    image_id: String,
    instance_type: String,
    /// The EC2 source's own address (`sourceProperties`), if it is an IPv4 one.
    source_ip: Option<Ipv4Addr>,
    /// Private IPs of recovery instances in other Regions (see [`pick_subnet`]).
    busy: Vec<Ipv4Addr>,
}

/// The server's own launch template in its Region's EC2, made now if it has none yet:
/// `drs-<server ID>` with the server's image and instance type (its original's), its
/// primary interface in a subnet of that Region chosen by [`pick_subnet`] (no security
/// groups: EC2 gives the VPC's default group). Returns its ID, or why there is none; a failure is
/// also logged and kept in `outbound_errors`. Safe to run twice at once: a template of
/// that name is adopted.
pub async fn ensure_launch_template(
    sim: &Simulator,
    generation: u64,
    server_id: &str,
) -> Result<String, String> {
    let needs = sim
        .update(generation, |state| {
            let server = state.server(server_id)?;
            let busy = state
                .recovery_instances
                .iter()
                .filter(|instance| state.instance_region(instance) != Some(server.region.as_str()))
                .filter_map(|instance| instance.private_ip.as_deref()?.parse().ok())
                .collect();
            Some(TemplateNeeds {
                region: server.region.clone(),
                existing: server
                    .launch_template_in_ec2
                    .then(|| server.launch_template_id.clone()),
                image_id: server.image_id.clone(),
                instance_type: server.instance_type.clone(),
                source_ip: server.source_ip.parse().ok(),
                busy,
            })
        })
        .flatten()
        .ok_or_else(|| format!("source server {server_id} no longer exists"))?;
    if let Some(template_id) = needs.existing {
        return Ok(template_id);
    }
    let region = needs.region.clone();
    let made = async {
        let subnets = sim
            .outbound
            .subnets(&region)
            .await
            .map_err(|error| format!("DescribeSubnets failed: {error}"))?;
        // The original EC2 source ran in the Region's first zone (originAvailabilityZone).
        let subnet = pick_subnet(
            &subnets,
            needs.source_ip,
            &format!("{region}a"),
            &needs.busy,
        );
        if subnet.is_none() {
            eprintln!(
                "drs-sim: {region} has no default subnet; the launch template of {server_id} \
                 names none (EC2 picks its default at launch)"
            );
        }
        let spec = TemplateSpec {
            image_id: needs.image_id,
            instance_type: needs.instance_type,
            subnet_id: subnet.map(|subnet| subnet.subnet_id.clone()),
            security_group_ids: Vec::new(),
        };
        let template_id = sim
            .outbound
            .create_launch_template(&region, &template_name(server_id), &spec)
            .await
            .map_err(|error| format!("CreateLaunchTemplate failed: {error}"))?;
        Ok::<_, String>((template_id, spec.subnet_id))
    }
    .await;
    match made {
        Ok((template_id, subnet_id)) => {
            sim.update(generation, |state| {
                if let Some(server) = state.server_mut(server_id) {
                    server.launch_template_id = template_id.clone();
                    server.launch_template_in_ec2 = true;
                    server.launch_subnet_id = subnet_id;
                    server.launch_security_group_ids = Vec::new();
                }
            });
            Ok(template_id)
        }
        Err(reason) => {
            let message = format!(
                "launch template of reversed source server {server_id} in {region}: {reason}"
            );
            eprintln!("drs-sim: {message}");
            sim.update(generation, |state| state.outbound_errors.push(message));
            Err(reason)
        }
    }
}

/// The subnet for a reversed server's template:
///
/// 1. a subnet that holds the EC2 source's own address (`source_ip`): the source
///    instance's subnet, where a failback belongs, when one was made in that Region's EC2;
/// 2. else a default subnet (`defaultForAz`) of the Region. moto gives every Region's
///    default VPC the same 172.31.0.0/16 and the same subnets, so an instance there could
///    get the private IP (and so the loopback stand-in, `127.31.x.y`) of an instance in
///    another Region: subnets holding a private IP of another Region's recovery instance
///    (`busy`) are avoided while another one is free. Among the rest the zone `preferred`
///    comes first, then zone order.
///
/// None when the Region has neither.
fn pick_subnet<'a>(
    subnets: &'a [Subnet],
    source_ip: Option<Ipv4Addr>,
    preferred: &str,
    busy: &[Ipv4Addr],
) -> Option<&'a Subnet> {
    let mut ordered: Vec<&Subnet> = subnets.iter().collect();
    ordered.sort_by(|a, b| {
        (a.availability_zone != preferred, &a.availability_zone)
            .cmp(&(b.availability_zone != preferred, &b.availability_zone))
    });
    if let Some(source_ip) = source_ip
        && let Some(own) = ordered
            .iter()
            .find(|subnet| cidr_contains(&subnet.cidr, source_ip))
    {
        return Some(own);
    }
    ordered.retain(|subnet| subnet.default_for_az);
    let free = |subnet: &Subnet| !busy.iter().any(|ip| cidr_contains(&subnet.cidr, *ip));
    ordered
        .iter()
        .find(|subnet| free(subnet))
        .or_else(|| ordered.first())
        .copied()
}

/// Whether IPv4 CIDR `cidr` (`a.b.c.d/n`) contains `ip`; false for anything unreadable.
fn cidr_contains(cidr: &str, ip: Ipv4Addr) -> bool {
    let Some((network, prefix)) = cidr.split_once('/') else {
        return false;
    };
    let (Ok(network), Ok(prefix)) = (network.parse::<Ipv4Addr>(), prefix.parse::<u32>()) else {
        return false;
    };
    if prefix > 32 {
        return false;
    }
    let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
    u32::from(network) & mask == u32::from(ip) & mask
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subnet(id: &str, cidr: &str, zone: &str) -> Subnet {
        Subnet {
            subnet_id: id.to_owned(),
            cidr: cidr.to_owned(),
            availability_zone: zone.to_owned(),
            default_for_az: cidr.starts_with("172.31."),
        }
    }

    #[test]
    fn cidrs_contain_their_addresses() {
        let ip = |text: &str| text.parse::<Ipv4Addr>().expect("IPv4");
        assert!(cidr_contains("172.31.0.0/20", ip("172.31.15.254")));
        assert!(!cidr_contains("172.31.0.0/20", ip("172.31.16.4")));
        assert!(cidr_contains("0.0.0.0/0", ip("10.0.0.1")));
        assert!(cidr_contains("10.0.1.5/32", ip("10.0.1.5")));
        assert!(!cidr_contains("nonsense", ip("10.0.1.5")));
        assert!(!cidr_contains("10.0.0.0/33", ip("10.0.0.1")));
    }

    #[test]
    fn picks_the_origin_zone_unless_another_regions_instances_use_its_addresses() {
        let subnets = [
            subnet("subnet-c", "172.31.32.0/20", "us-west-2c"),
            subnet("subnet-b", "172.31.16.0/20", "us-west-2b"),
            subnet("subnet-a", "172.31.0.0/20", "us-west-2a"),
            subnet("subnet-other", "10.5.0.0/24", "us-west-2a"),
        ];
        let pick = |busy: &[Ipv4Addr]| {
            pick_subnet(&subnets, None, "us-west-2a", busy).map(|subnet| subnet.subnet_id.as_str())
        };
        assert_eq!(pick(&[]), Some("subnet-a"));
        assert_eq!(pick(&[Ipv4Addr::new(10, 0, 1, 4)]), Some("subnet-a"));
        assert_eq!(pick(&[Ipv4Addr::new(172, 31, 0, 4)]), Some("subnet-b"));
        let everywhere = [
            Ipv4Addr::new(172, 31, 0, 4),
            Ipv4Addr::new(172, 31, 16, 4),
            Ipv4Addr::new(172, 31, 32, 4),
        ];
        assert_eq!(pick(&everywhere), Some("subnet-a"));
        assert_eq!(pick_subnet(&[], None, "us-west-2a", &[]), None);
        assert_eq!(
            pick_subnet(&subnets[3..], None, "us-west-2a", &[]),
            None,
            "not a default subnet"
        );
    }

    #[test]
    fn picks_the_subnet_of_the_sources_own_address_first() {
        let subnets = [
            subnet("subnet-a", "172.31.0.0/20", "us-west-2a"),
            subnet("subnet-source", "10.105.0.0/24", "us-west-2b"),
        ];
        let pick = |source: Ipv4Addr| {
            pick_subnet(&subnets, Some(source), "us-west-2a", &[source])
                .map(|subnet| subnet.subnet_id.as_str())
        };
        assert_eq!(pick(Ipv4Addr::new(10, 105, 0, 7)), Some("subnet-source"));
        assert_eq!(pick(Ipv4Addr::new(198, 51, 100, 1)), Some("subnet-a"));
    }
}
