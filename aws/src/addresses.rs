//! Where recovered instances can be reached (DescribeInstances), for DNS records.

use drplan_core::dns::InstanceAddress;

use crate::FunctionError;

/// DescribeInstances takes at most this many instance IDs a call.
const INSTANCE_IDS_PER_CALL: usize = 100;

/// The addresses of the given instances: (source server, hostname, EC2 instance).
pub async fn instance_addresses(
    ec2: &aws_sdk_ec2::Client,
    instances: &[(String, Option<String>, String)],
) -> Result<Vec<InstanceAddress>, FunctionError> {
    let mut found = Vec::with_capacity(instances.len());
    for chunk in instances.chunks(INSTANCE_IDS_PER_CALL) {
        let ids: Vec<String> = chunk.iter().map(|(_, _, id)| id.clone()).collect();
        let answer = ec2
            .describe_instances()
            .set_instance_ids(Some(ids))
            .send()
            .await
            .map_err(|e| FunctionError::from_sdk("EC2 DescribeInstances", e))?;
        for instance in answer.reservations().iter().flat_map(|r| r.instances()) {
            let Some(id) = instance.instance_id() else {
                continue;
            };
            let Some((server, hostname, _)) = chunk.iter().find(|(_, _, i)| i == id) else {
                continue;
            };
            found.push(InstanceAddress {
                source_server_id: server.clone(),
                hostname: hostname.clone(),
                ec2_instance_id: id.to_owned(),
                private_ipv4: instance.private_ip_address().map(str::to_owned),
                public_ipv4: instance
                    .public_ip_address()
                    .filter(|ip| !ip.is_empty())
                    .map(str::to_owned),
                ipv6: instance.ipv6_address().map(str::to_owned),
                private_dns_name: instance
                    .private_dns_name()
                    .filter(|n| !n.is_empty())
                    .map(str::to_owned),
            });
        }
    }
    Ok(found)
}
