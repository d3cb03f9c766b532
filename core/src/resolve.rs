//! Resolution: which DRS source servers a plan recovers, in which wave, in which order.
//! Pure functions over the DescribeSourceServers item shape; no network.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::dag;
use crate::issue::{DocPath, Issue, Issues};
use crate::plan::{Plan, Selector, WAVE_TAG};

/// A DRS source server, as much of a DescribeSourceServers item as drplan uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceServer {
    pub id: String,
    pub arn: Option<String>,
    pub hostname: Option<String>,
    pub tags: BTreeMap<String, String>,
    /// `dataReplicationInfo.dataReplicationState`, e.g. CONTINUOUS or STALLED.
    pub replication_state: Option<String>,
    /// `dataReplicationInfo.lagDuration`, an ISO-8601 duration such as PT30S.
    pub lag_duration: Option<String>,
    /// `replicationDirection`: FAILOVER for servers replicating into the recovery
    /// Region; FAILBACK for recovered instances replicating back, which a failover
    /// plan must never select even though they carry the same tags.
    pub replication_direction: Option<String>,
}

impl SourceServer {
    /// The hostname when DRS knows it, else the server ID.
    pub fn display_name(&self) -> &str {
        self.hostname.as_deref().unwrap_or(&self.id)
    }

    pub fn is_failback(&self) -> bool {
        self.replication_direction.as_deref() == Some("FAILBACK")
    }

    pub fn matches(&self, selector: &Selector) -> bool {
        selector
            .iter()
            .all(|(key, value)| self.tags.get(key) == Some(value))
    }
}

/// The wire shape of a DescribeSourceServers item (only the fields drplan reads).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DrsSourceServerItem {
    #[serde(rename = "sourceServerID")]
    source_server_id: String,
    arn: Option<String>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
    source_properties: Option<DrsSourceProperties>,
    data_replication_info: Option<DrsDataReplicationInfo>,
    replication_direction: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DrsSourceProperties {
    identification_hints: Option<DrsIdentificationHints>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DrsIdentificationHints {
    hostname: Option<String>,
    fqdn: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DrsDataReplicationInfo {
    data_replication_state: Option<String>,
    lag_duration: Option<String>,
}

impl From<DrsSourceServerItem> for SourceServer {
    fn from(item: DrsSourceServerItem) -> Self {
        let hints = item.source_properties.and_then(|p| p.identification_hints);
        let hostname = hints.and_then(|h| h.hostname.or(h.fqdn));
        let (replication_state, lag_duration) = item
            .data_replication_info
            .map(|d| (d.data_replication_state, d.lag_duration))
            .unwrap_or_default();
        Self {
            id: item.source_server_id,
            arn: item.arn,
            hostname,
            tags: item.tags,
            replication_state,
            lag_duration,
            replication_direction: item.replication_direction,
        }
    }
}

/// Why a dump of DescribeSourceServers responses could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    #[error("not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error(
        "expected a DescribeSourceServers response ({{\"items\": [...]}}), a list of such pages, or a list of items"
    )]
    Shape,
    #[error("item {index} of the dump is not a DRS source server: {source}")]
    Item {
        index: usize,
        source: serde_json::Error,
    },
    #[error("source server {0} appears more than once in the dump")]
    Duplicate(String),
}

/// Reads source servers from a DescribeSourceServers response (`{"items": [...]}`),
/// a list of such pages, or a plain list of items.
pub fn parse_source_server_dump(text: &str) -> Result<Vec<SourceServer>, DumpError> {
    let document: serde_json::Value = serde_json::from_str(text)?;
    let mut items: Vec<serde_json::Value> = Vec::new();
    let mut take_page = |page: &serde_json::Value| -> Result<(), DumpError> {
        match page.get("items") {
            Some(serde_json::Value::Array(page_items)) => {
                items.extend(page_items.iter().cloned());
                Ok(())
            }
            _ => Err(DumpError::Shape),
        }
    };
    match &document {
        serde_json::Value::Object(_) => take_page(&document)?,
        serde_json::Value::Array(list) if list.iter().all(|p| p.get("items").is_some()) => {
            for page in list {
                take_page(page)?;
            }
        }
        serde_json::Value::Array(list) => items.extend(list.iter().cloned()),
        _ => return Err(DumpError::Shape),
    }
    let mut servers: Vec<SourceServer> = Vec::with_capacity(items.len());
    let mut seen = std::collections::HashSet::new();
    for (index, item) in items.into_iter().enumerate() {
        let item: DrsSourceServerItem =
            serde_json::from_value(item).map_err(|source| DumpError::Item { index, source })?;
        if !seen.insert(item.source_server_id.clone()) {
            return Err(DumpError::Duplicate(item.source_server_id));
        }
        servers.push(item.into());
    }
    Ok(servers)
}

/// A server as a wave recovers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaveServer {
    pub id: String,
    pub hostname: Option<String>,
    /// Optional servers may fail without failing their wave.
    pub optional: bool,
}

impl WaveServer {
    pub fn display_name(&self) -> &str {
        self.hostname.as_deref().unwrap_or(&self.id)
    }
}

/// A wave with its servers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolvedWave {
    pub name: String,
    /// Indexes into [`ResolvedPlan::waves`].
    pub depends_on: Vec<usize>,
    /// Ordered by hostname, then ID, so every resolution of the same fleet launches
    /// the same servers in the same jobs.
    pub servers: Vec<WaveServer>,
}

/// The plan applied to a fleet: waves with their servers, and the layers of waves
/// that run in parallel (each layer after the one before it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolvedPlan {
    pub waves: Vec<ResolvedWave>,
    pub layers: Vec<Vec<usize>>,
}

impl ResolvedPlan {
    pub fn server_count(&self) -> usize {
        self.waves.iter().map(|w| w.servers.len()).sum()
    }

    pub fn wave(&self, name: &str) -> Option<&ResolvedWave> {
        self.waves.iter().find(|w| w.name == name)
    }
}

/// How many names a message lists before it says "and N more".
const NAMES_SHOWN: usize = 5;

fn name_list<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    let names: Vec<&str> = names.into_iter().collect();
    let shown = names[..names.len().min(NAMES_SHOWN)].join(", ");
    match names.len().saturating_sub(NAMES_SHOWN) {
        0 => shown,
        more => format!("{shown} and {more} more"),
    }
}

/// Applies a validated plan to the fleet. Errors name every problem: a plan selector
/// or wave that matches no server, a server in two waves, a plan server in no wave.
pub fn resolve(plan: &Plan, fleet: &[SourceServer]) -> Result<ResolvedPlan, Vec<Issue>> {
    let root = DocPath::root();
    let mut issues = Issues::default();
    let mut members: Vec<&SourceServer> = fleet
        .iter()
        .filter(|s| !s.is_failback() && s.matches(&plan.selector))
        .collect();
    members.sort_by(|a, b| (a.display_name(), &a.id).cmp(&(b.display_name(), &b.id)));
    if members.is_empty() {
        issues.push(
            &root.key("selector"),
            format!(
                "matches none of the {} source servers{}",
                fleet.len(),
                selector_hint(&plan.selector, fleet)
            ),
        );
        return Err(issues.into_vec());
    }

    let waves = match &plan.waves {
        Some(waves) => waves_from_plan(waves, &members, &mut issues),
        None => waves_from_tags(&members, &mut issues),
    };
    if let (None, Some(dns)) = (&plan.waves, &plan.dns) {
        let names: Vec<&str> = waves.iter().map(|w| w.name.as_str()).collect();
        for (i, record) in dns.records.iter().enumerate() {
            if !names.contains(&record.from_wave.as_str()) {
                issues.push(
                    &root.key("dns").key("records").index(i).key("from_wave"),
                    format!(
                        "unknown wave {:?}: the servers' {WAVE_TAG} tags give the waves {}",
                        record.from_wave,
                        names.join(", ")
                    ),
                );
            }
        }
    }
    if !issues.is_empty() {
        return Err(issues.into_vec());
    }
    let depends_on: Vec<Vec<usize>> = waves.iter().map(|w| w.depends_on.clone()).collect();
    let Some(layers) = dag::layers(&depends_on) else {
        // Validation rejects cycles before resolution; say so rather than panic.
        return Err(vec![Issue::new(
            "waves",
            "the waves' dependencies form a cycle",
        )]);
    };
    Ok(ResolvedPlan { waves, layers })
}

fn waves_from_plan(
    waves: &[crate::plan::Wave],
    members: &[&SourceServer],
    issues: &mut Issues,
) -> Vec<ResolvedWave> {
    let waves_path = DocPath::root().key("waves");
    // For each plan server, the first wave that took it.
    let mut taken_by: Vec<Option<usize>> = vec![None; members.len()];
    // (first wave, second wave) → servers both select.
    let mut overlaps: BTreeMap<(usize, usize), Vec<&str>> = BTreeMap::new();
    let mut resolved: Vec<ResolvedWave> = Vec::with_capacity(waves.len());
    for (w, wave) in waves.iter().enumerate() {
        let mut servers = Vec::new();
        for (s, server) in members.iter().enumerate() {
            if !server.matches(&wave.selector) {
                continue;
            }
            match taken_by[s] {
                Some(first) => overlaps
                    .entry((first, w))
                    .or_default()
                    .push(server.display_name()),
                None => {
                    taken_by[s] = Some(w);
                    let optional = wave
                        .optional_servers
                        .as_ref()
                        .is_some_and(|sel| server.matches(sel));
                    servers.push(WaveServer {
                        id: server.id.clone(),
                        hostname: server.hostname.clone(),
                        optional,
                    });
                }
            }
        }
        let matched_elsewhere = overlaps.iter().any(|(&(_, second), _)| second == w);
        if servers.is_empty() && !matched_elsewhere {
            issues.push(
                &waves_path.index(w).key("selector"),
                format!(
                    "wave {:?} matches none of the plan's {} servers{}",
                    wave.name,
                    members.len(),
                    selector_hint(&wave.selector, members.iter().copied())
                ),
            );
        }
        let depends_on = wave
            .depends_on
            .iter()
            .filter_map(|dep| waves.iter().position(|x| &x.name == dep))
            .collect();
        resolved.push(ResolvedWave {
            name: wave.name.clone(),
            depends_on,
            servers,
        });
    }
    for ((first, second), names) in &overlaps {
        issues.push(
            &waves_path.index(*second).key("selector"),
            format!(
                "{} {} also in wave {:?} (waves[{first}]); a server can be in one wave only: {}",
                names.len(),
                if names.len() == 1 {
                    "server is"
                } else {
                    "servers are"
                },
                waves[*first].name,
                name_list(names.iter().copied())
            ),
        );
    }
    let unassigned: Vec<&str> = members
        .iter()
        .zip(&taken_by)
        .filter(|(_, t)| t.is_none())
        .map(|(s, _)| s.display_name())
        .collect();
    if !unassigned.is_empty() {
        issues.push(
            &waves_path,
            format!(
                "{} of the plan's servers {} in no wave (match the plan's selector but no wave's): {}",
                unassigned.len(),
                if unassigned.len() == 1 { "falls" } else { "fall" },
                name_list(unassigned)
            ),
        );
    }
    resolved
}

/// Waves from the `dr:wave` tag, one after the other in the order of the tag's value
/// (numerically when every value is a number).
fn waves_from_tags(members: &[&SourceServer], issues: &mut Issues) -> Vec<ResolvedWave> {
    let mut groups: BTreeMap<&str, Vec<&SourceServer>> = BTreeMap::new();
    let mut untagged: Vec<&str> = Vec::new();
    for server in members {
        match server.tags.get(WAVE_TAG) {
            Some(value) => groups.entry(value.as_str()).or_default().push(server),
            None => untagged.push(server.display_name()),
        }
    }
    if !untagged.is_empty() {
        issues.push(
            &DocPath::root().key("waves"),
            format!(
                "the plan lists no waves, so waves come from the {WAVE_TAG:?} tag, but {} of its servers have none: {}",
                untagged.len(),
                name_list(untagged)
            ),
        );
    }
    let mut ordered: Vec<(&str, Vec<&SourceServer>)> = groups.into_iter().collect();
    if ordered.iter().all(|(v, _)| v.parse::<f64>().is_ok()) {
        ordered.sort_by(|(a, _), (b, _)| {
            let (a, b) = (
                a.parse::<f64>().unwrap_or(0.0),
                b.parse::<f64>().unwrap_or(0.0),
            );
            a.total_cmp(&b)
        });
    }
    ordered
        .into_iter()
        .enumerate()
        .map(|(i, (name, servers))| ResolvedWave {
            name: name.to_owned(),
            depends_on: if i == 0 { vec![] } else { vec![i - 1] },
            servers: servers
                .into_iter()
                .map(|s| WaveServer {
                    id: s.id.clone(),
                    hostname: s.hostname.clone(),
                    optional: false,
                })
                .collect(),
        })
        .collect()
}

/// When nothing matches, say which tag of the selector nothing has, since that is
/// usually a typo in a key or a value.
fn selector_hint<'a>(
    selector: &Selector,
    servers: impl IntoIterator<Item = &'a SourceServer>,
) -> String {
    let servers: Vec<&SourceServer> = servers.into_iter().collect();
    for (key, value) in selector {
        let with_key: Vec<&String> = servers.iter().filter_map(|s| s.tags.get(key)).collect();
        if with_key.is_empty() {
            return format!("; none has the tag {key:?}");
        }
        if !with_key.contains(&value) {
            let mut values: Vec<&str> = with_key.iter().map(|v| v.as_str()).collect();
            values.sort_unstable();
            values.dedup();
            return format!("; {key:?} is never {value:?} (seen: {})", name_list(values));
        }
    }
    String::new()
}
