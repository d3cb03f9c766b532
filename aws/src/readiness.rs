//! Reads the facts a plan evaluation judges (`drplan_core::evaluation`): each server's
//! launch template and what its default version names, the subnets and security groups
//! those name, the instance types their zones offer, the drill subnet's routes, the DNS
//! cutover's zone or prepared records, the plan's last successful drill, and (through
//! `account_facts`) its hook functions and DRS's service roles. The discover
//! step, `drplan readiness` and the readiness function all read them here, so the three
//! judge the same things.
//!
//! Calls, for a plan of N servers: N DRS GetLaunchConfiguration (a few at a time), one
//! paginated EC2 DescribeLaunchTemplateVersions for every template's default version
//! (and one per template that listing does not name),
//! and one DescribeSubnets, DescribeSecurityGroups and DescribeInstanceTypeOfferings per
//! 200 IDs they ask about.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ec2::types::Filter;
use drplan_core::audit::{History, RunSummary};
use drplan_core::contract::keys;
use drplan_core::drs_account::ServiceRoleFacts;
use drplan_core::evaluation::{LaunchFacts, PlanFacts, SubnetFacts};
use drplan_core::plan::DnsMode;
use drplan_core::safety::routes_beyond_vpc;
use drplan_core::{Issue, Mode, Plan, ResolvedPlan};
use futures_util::{StreamExt, TryStreamExt, stream};
use jiff::Timestamp;

use crate::FunctionError;
use crate::bootstrap::Clients;
use crate::store::RunStore;
use crate::{drill, route53};

/// GetLaunchConfiguration calls in flight at once: DRS's per-account request rate is
/// shared with the launches themselves.
const LAUNCH_CONFIGURATIONS_IN_FLIGHT: usize = 8;
/// IDs per EC2 filter value list.
const IDS_PER_CALL: usize = 200;

/// Each server's launch template and what its default version says, by source server ID.
pub async fn launch_facts(
    drs: &aws_sdk_drs::Client,
    ec2: &aws_sdk_ec2::Client,
    server_ids: &[String],
) -> Result<BTreeMap<String, LaunchFacts>, FunctionError> {
    if server_ids.is_empty() {
        return Ok(BTreeMap::new());
    }
    let templates: Vec<(String, Option<String>)> = stream::iter(server_ids.iter().cloned())
        .map(|id| async move {
            let answer = drs
                .get_launch_configuration()
                .source_server_id(&id)
                .send()
                .await;
            match answer {
                Ok(config) => Ok((
                    id,
                    config
                        .ec2_launch_template_id()
                        .filter(|t| !t.is_empty())
                        .map(str::to_owned),
                )),
                Err(e) => Err(FunctionError::from_sdk("DRS GetLaunchConfiguration", e)),
            }
        })
        .buffer_unordered(LAUNCH_CONFIGURATIONS_IN_FLIGHT)
        .try_collect()
        .await?;
    let mut defaults = default_versions(ec2).await?;
    // EC2 pages the account-wide listing; a template it does not name is asked for by
    // ID (moto's listing stops at MaxResults without a NextToken, and a template made
    // since the listing would otherwise read as missing).
    let unlisted: BTreeSet<String> = templates
        .iter()
        .filter_map(|(_, template)| template.clone())
        .filter(|template| !defaults.contains_key(template))
        .collect();
    let found: Vec<Option<(String, LaunchFacts)>> = stream::iter(unlisted)
        .map(|template| default_version_of(ec2, template))
        .buffer_unordered(LAUNCH_CONFIGURATIONS_IN_FLIGHT)
        .try_collect()
        .await?;
    defaults.extend(found.into_iter().flatten());
    Ok(templates
        .into_iter()
        .map(|(server, template)| {
            let facts = match template {
                None => LaunchFacts::Missing("DRS names no EC2 launch template for it".into()),
                Some(template) => match defaults.get(&template) {
                    Some(facts) => facts.clone(),
                    None => LaunchFacts::Missing(format!(
                        "its launch template {template} does not exist in EC2"
                    )),
                },
            };
            (server, facts)
        })
        .collect())
}

/// The default version of every launch template in the account and Region, by template
/// ID: one paginated call (EC2 describes every template's `$Default` when no template is
/// named), not one per server.
async fn default_versions(
    ec2: &aws_sdk_ec2::Client,
) -> Result<BTreeMap<String, LaunchFacts>, FunctionError> {
    let mut pages = ec2
        .describe_launch_template_versions()
        .versions("$Default")
        .max_results(200)
        .into_paginator()
        .send();
    let mut found = BTreeMap::new();
    while let Some(page) = pages.next().await {
        let page =
            page.map_err(|e| FunctionError::from_sdk("EC2 DescribeLaunchTemplateVersions", e))?;
        found.extend(page.launch_template_versions().iter().filter_map(facts_of));
    }
    Ok(found)
}

/// One template's default version; `None` when EC2 has no such template.
async fn default_version_of(
    ec2: &aws_sdk_ec2::Client,
    template_id: String,
) -> Result<Option<(String, LaunchFacts)>, FunctionError> {
    let answer = ec2
        .describe_launch_template_versions()
        .launch_template_id(&template_id)
        .versions("$Default")
        .send()
        .await;
    match answer {
        Ok(page) => Ok(page.launch_template_versions().iter().find_map(facts_of)),
        Err(e)
            if e.as_service_error()
                .and_then(|s| s.meta().code())
                .is_some_and(|code| code.starts_with("InvalidLaunchTemplateId")) =>
        {
            Ok(None)
        }
        Err(e) => Err(FunctionError::from_sdk(
            "EC2 DescribeLaunchTemplateVersions",
            e,
        )),
    }
}

/// What a launch template version launches: its primary network interface's subnet and
/// groups (else the template's groups) and its instance type.
fn facts_of(version: &aws_sdk_ec2::types::LaunchTemplateVersion) -> Option<(String, LaunchFacts)> {
    let template_id = version.launch_template_id()?;
    let data = version.launch_template_data();
    let primary = data.and_then(|d| {
        d.network_interfaces()
            .iter()
            .find(|i| i.device_index().unwrap_or(0) == 0)
    });
    let mut groups: Vec<String> = primary.map(|p| p.groups().to_vec()).unwrap_or_default();
    if groups.is_empty() {
        groups = data
            .map(|d| d.security_group_ids().to_vec())
            .unwrap_or_default();
    }
    Some((
        template_id.to_owned(),
        LaunchFacts::Template {
            template_id: template_id.to_owned(),
            version: version.version_number().unwrap_or_default().to_string(),
            subnet_id: primary.and_then(|p| p.subnet_id()).map(str::to_owned),
            security_group_ids: groups,
            instance_type: data
                .and_then(|d| d.instance_type())
                .map(|t| t.as_str().to_owned()),
        },
    ))
}

/// The subnets and security groups that exist among those asked about, and the
/// instance types the subnets' zones offer among those asked about.
pub async fn network_facts(
    ec2: &aws_sdk_ec2::Client,
    subnet_ids: &BTreeSet<String>,
    group_ids: &BTreeSet<String>,
    instance_types: &BTreeSet<String>,
) -> Result<
    (
        BTreeMap<String, SubnetFacts>,
        BTreeSet<String>,
        BTreeMap<String, BTreeSet<String>>,
    ),
    FunctionError,
> {
    let mut subnets = BTreeMap::new();
    let ids: Vec<&String> = subnet_ids.iter().collect();
    for chunk in ids.chunks(IDS_PER_CALL) {
        // A filter, not SubnetIds: one subnet that does not exist must not fail the call.
        let filter = Filter::builder()
            .name("subnet-id")
            .set_values(Some(chunk.iter().map(|s| (*s).clone()).collect()))
            .build();
        let mut pages = ec2
            .describe_subnets()
            .filters(filter)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| FunctionError::from_sdk("EC2 DescribeSubnets", e))?;
            for subnet in page.subnets() {
                if let Some(id) = subnet.subnet_id() {
                    subnets.insert(
                        id.to_owned(),
                        SubnetFacts {
                            free_addresses: subnet
                                .available_ip_address_count()
                                .and_then(|n| u64::try_from(n).ok())
                                .unwrap_or(0),
                            availability_zone: subnet.availability_zone().map(str::to_owned),
                        },
                    );
                }
            }
        }
    }
    let mut groups = BTreeSet::new();
    let ids: Vec<&String> = group_ids.iter().collect();
    for chunk in ids.chunks(IDS_PER_CALL) {
        let filter = Filter::builder()
            .name("group-id")
            .set_values(Some(chunk.iter().map(|s| (*s).clone()).collect()))
            .build();
        let mut pages = ec2
            .describe_security_groups()
            .filters(filter)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page =
                page.map_err(|e| FunctionError::from_sdk("EC2 DescribeSecurityGroups", e))?;
            groups.extend(
                page.security_groups()
                    .iter()
                    .filter_map(|g| g.group_id())
                    .map(str::to_owned),
            );
        }
    }
    let zones: BTreeSet<String> = subnets
        .values()
        .filter_map(|s| s.availability_zone.clone())
        .collect();
    let mut offered: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    if !zones.is_empty() && !instance_types.is_empty() {
        for zone in &zones {
            offered.entry(zone.clone()).or_default();
        }
        let types: Vec<&String> = instance_types.iter().collect();
        for chunk in types.chunks(IDS_PER_CALL) {
            let mut pages = ec2
                .describe_instance_type_offerings()
                .location_type(aws_sdk_ec2::types::LocationType::AvailabilityZone)
                .filters(
                    Filter::builder()
                        .name("location")
                        .set_values(Some(zones.iter().cloned().collect()))
                        .build(),
                )
                .filters(
                    Filter::builder()
                        .name("instance-type")
                        .set_values(Some(chunk.iter().map(|t| (*t).clone()).collect()))
                        .build(),
                )
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page
                    .map_err(|e| FunctionError::from_sdk("EC2 DescribeInstanceTypeOfferings", e))?;
                for offering in page.instance_type_offerings() {
                    if let (Some(zone), Some(kind)) =
                        (offering.location(), offering.instance_type())
                    {
                        offered
                            .entry(zone.to_owned())
                            .or_default()
                            .insert(kind.as_str().to_owned());
                    }
                }
            }
        }
    }
    Ok((subnets, groups, offered))
}

/// The launch settings, network, zones' offerings and drill routes of a resolved plan,
/// added to `facts` (which already holds the fleet and the busy servers).
pub async fn read_launch_and_network(
    clients: &Clients,
    plan: &Plan,
    resolved: &ResolvedPlan,
    facts: &mut PlanFacts,
) -> Result<(), FunctionError> {
    let server_ids: Vec<String> = resolved
        .waves
        .iter()
        .flat_map(|w| w.servers.iter().map(|s| s.id.clone()))
        .collect();
    facts.launch = launch_facts(&clients.drs, &clients.ec2, &server_ids).await?;
    let mut subnets = BTreeSet::new();
    let mut groups = BTreeSet::new();
    let mut types = BTreeSet::new();
    for launch in facts.launch.values() {
        if let LaunchFacts::Template {
            subnet_id,
            security_group_ids,
            instance_type,
            ..
        } = launch
        {
            subnets.extend(subnet_id.clone());
            groups.extend(security_group_ids.iter().cloned());
            types.extend(instance_type.clone());
        }
    }
    if let Some(subnet) = plan.drill_subnet() {
        subnets.insert(subnet.to_owned());
    }
    let (found_subnets, found_groups, offered) =
        network_facts(&clients.ec2, &subnets, &groups, &types).await?;
    facts.subnets = found_subnets;
    facts.security_groups = found_groups;
    facts.offered_types = offered;
    facts.network_read = true;
    if let Some(subnet) = plan.drill_subnet() {
        facts.drill_routes = Some(
            match drill::drill_subnet_routes(&clients.ec2, subnet).await {
                Ok((_, routes)) => Ok(routes_beyond_vpc(&routes)),
                Err(FunctionError::NotReady(issues)) => Err(issues),
                Err(e) => return Err(e),
            },
        );
    }
    Ok(())
}

/// What would stop the plan's DNS cutover, as issues (none without `dns`). A
/// control-plane plan asks Route 53 about its zone; a data-plane plan compares the
/// prepared records and their alarm with the plan, without Route 53.
pub async fn dns_problems(clients: &Clients, plan: &Plan) -> Result<Vec<Issue>, FunctionError> {
    let Some(dns) = &plan.dns else {
        return Ok(Vec::new());
    };
    let checked = match dns.mode {
        DnsMode::DataPlane => crate::discover::check_prepared(clients, &plan.name, dns)
            .await
            .map(|_| ()),
        DnsMode::ControlPlane => {
            let allowed = route53::allowed_zones();
            route53::zone_for_cutover(&clients.route53, dns, allowed.as_deref())
                .await
                .map(|_| ())
        }
    };
    match checked {
        Ok(()) => Ok(Vec::new()),
        Err(FunctionError::InvalidPlan(issues) | FunctionError::NotReady(issues)) => Ok(issues),
        Err(e) => Err(e),
    }
}

/// Every run of the plan that left a report, from `reports/PLAN/`, and the reports
/// skipped because they do not read (an older shape: named, not fatal), as
/// `KEY: ERROR` lines.
pub async fn run_summaries(
    store: &RunStore,
    plan: &str,
) -> Result<(Vec<RunSummary>, Vec<String>), FunctionError> {
    let mut runs = Vec::new();
    let mut skipped = Vec::new();
    for key in store.list_keys(&keys::reports_prefix(plan)).await? {
        let Some(record) = keys::report_json_at(&key) else {
            continue;
        };
        match store.read(&record).await {
            Ok(Some(report)) => runs.push(RunSummary::of(&report, &key)),
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(key, %error, "report skipped: it does not read");
                skipped.push(format!("{key}: {error}"));
            }
        }
    }
    Ok((runs, skipped))
}

/// When the plan's last successful drill finished, from its reports.
pub async fn last_successful_drill(
    store: &RunStore,
    plan: &str,
    now: Timestamp,
) -> Result<Option<Timestamp>, FunctionError> {
    let history = History::of(plan, run_summaries(store, plan).await?.0, now);
    Ok(history.last_success(Mode::Drill).map(|run| run.finished_at))
}

/// The plan's hook functions and DRS's service roles ([`account_facts`]): read beside the
/// plan's other facts (they depend on none of them), then added with
/// [`AccountFacts::add_to`].
pub struct AccountFacts {
    missing_hooks: BTreeMap<String, String>,
    unchecked_hooks: BTreeMap<String, String>,
    service_roles: ServiceRoleFacts,
}

/// Reads the plan's hook functions and DRS's service roles.
pub async fn account_facts(clients: &Clients, plan: &Plan) -> AccountFacts {
    let ((missing_hooks, unchecked_hooks), service_roles) = tokio::join!(
        crate::account_facts::hook_facts(&clients.lambda, plan),
        crate::account_facts::service_role_facts(&clients.iam),
    );
    AccountFacts {
        missing_hooks,
        unchecked_hooks,
        service_roles,
    }
}

impl AccountFacts {
    pub fn add_to(self, facts: &mut PlanFacts) {
        facts.missing_hooks = self.missing_hooks;
        facts.unchecked_hooks = self.unchecked_hooks;
        facts.service_roles = Some(self.service_roles);
    }
}

/// Everything a stored plan's evaluation needs, read now.
pub async fn plan_facts(clients: &Clients, plan: &Plan) -> Result<PlanFacts, FunctionError> {
    let now = Timestamp::now();
    let (fleet, jobs, dns_problems, last_drill, account) = tokio::join!(
        crate::drs::describe_all_source_servers(&clients.drs),
        crate::drs::jobs_since(&clients.drs, now - jiff::SignedDuration::from_hours(24)),
        dns_problems(clients, plan),
        last_successful_drill(&clients.store, &plan.name, now),
        account_facts(clients, plan),
    );
    let fleet = fleet?;
    let mut facts = PlanFacts {
        busy_servers: crate::drs::busy_servers(&jobs?),
        dns_problems: dns_problems?,
        last_successful_drill: Some(last_drill?),
        now: Some(now),
        quotas: clients.quotas,
        ..PlanFacts::default()
    };
    account.add_to(&mut facts);
    if let Ok(resolved) = drplan_core::resolve(plan, &fleet) {
        read_launch_and_network(clients, plan, &resolved, &mut facts).await?;
    }
    facts.fleet = fleet;
    Ok(facts)
}
