//! Which ports the [probe listeners](crate::listeners) serve, and on which instances.
//!
//! A stand-in listener costs a file descriptor for as long as its instance runs, so the
//! simulator opens only the ports a health check will probe: those of
//! [`crate::SimConfig::probe_ports`] (every instance) and those of the named probe sets
//! that `PUT /_drplan/probe-ports/{name}` declares. A set lists probes, each for the
//! instances whose source server carries every tag of its `selector` (a plan's selector
//! and a wave's, say), on their private or their public address. drplan's local cloud
//! declares one set per plan it sees (`plan:NAME`), so a plan that probes nothing opens
//! nothing. The sets are configuration: `POST /_drplan/reset` keeps them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::control::{ControlError, bad_request, json_response};
use crate::model::Tags;
use crate::sim::Simulator;

/// Which stand-in address of an instance a probe goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Side {
    /// The stand-in of the private IPv4 (drplan's `probe_address: private-ip`).
    Private,
    /// The stand-in of the public IPv4, when the instance has one (`public-ip`).
    Public,
}

/// The ports one instance serves: (side, port) → speaks TLS.
pub type InstancePorts = BTreeMap<(Side, u16), bool>;

/// One probe of a set: these ports, on these instances' stand-ins.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Probe {
    /// Tags the instance's source server must all carry; empty: every instance.
    selector: Tags,
    sides: Vec<Side>,
    ports: BTreeSet<u16>,
    tls_ports: BTreeSet<u16>,
}

impl Probe {
    fn to_json(&self) -> Value {
        let address = match self.sides.as_slice() {
            [Side::Private] => "private-ip",
            [Side::Public] => "public-ip",
            _ => "both",
        };
        json!({
            "selector": self.selector,
            "address": address,
            "ports": self.ports,
            "tls_ports": self.tls_ports,
        })
    }
}

/// Every probe the simulator knows: the configured ports and the named sets.
#[derive(Debug, Default)]
pub struct ProbeSets {
    configured: Option<Probe>,
    named: BTreeMap<String, Vec<Probe>>,
}

impl ProbeSets {
    /// [`crate::SimConfig::probe_ports`]: every instance, private and public stand-ins.
    pub fn from_config(ports: &[u16], tls_ports: &[u16]) -> Self {
        let ports: BTreeSet<u16> = ports.iter().copied().filter(|&port| port > 0).collect();
        let configured = (!ports.is_empty()).then(|| Probe {
            selector: Tags::new(),
            sides: vec![Side::Private, Side::Public],
            tls_ports: tls_ports
                .iter()
                .copied()
                .filter(|port| ports.contains(port))
                .collect(),
            ports,
        });
        Self {
            configured,
            named: BTreeMap::new(),
        }
    }

    /// Nothing is probed anywhere.
    pub fn is_empty(&self) -> bool {
        self.configured.is_none() && self.named.values().all(Vec::is_empty)
    }

    /// What an instance whose source server carries `tags` serves. A port that one
    /// probe reaches over HTTPS and another over plain HTTP speaks TLS: a stand-in
    /// speaks one protocol per port.
    pub fn ports_for(&self, tags: &Tags) -> InstancePorts {
        let mut wanted = InstancePorts::new();
        let probes = self.configured.iter().chain(self.named.values().flatten());
        for probe in probes {
            let selected = probe
                .selector
                .iter()
                .all(|(key, value)| tags.get(key) == Some(value));
            if !selected {
                continue;
            }
            for &side in &probe.sides {
                for &port in &probe.ports {
                    *wanted.entry((side, port)).or_insert(false) |= probe.tls_ports.contains(&port);
                }
            }
        }
        wanted
    }

    /// For `GET /_drplan/probe-ports` and `GET /_drplan/state`.
    pub fn to_json(&self) -> Value {
        let named: serde_json::Map<String, Value> = self
            .named
            .iter()
            .map(|(name, probes)| {
                (
                    name.clone(),
                    Value::Array(probes.iter().map(Probe::to_json).collect()),
                )
            })
            .collect();
        json!({
            "configured": self.configured.as_ref().map(Probe::to_json),
            "sets": named,
        })
    }
}

pub fn router() -> Router<Arc<Simulator>> {
    Router::new()
        .route("/_drplan/probe-ports", get(show))
        .route("/_drplan/probe-ports/{name}", put(declare).delete(forget))
}

async fn show(State(sim): State<Arc<Simulator>>) -> Response {
    json_response(StatusCode::OK, sim.with_probe_sets(|sets| sets.to_json()))
}

/// The body of `PUT /_drplan/probe-ports/{name}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetSpec {
    probes: Vec<ProbeSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProbeSpec {
    #[serde(default)]
    selector: Tags,
    #[serde(default)]
    address: Option<String>,
    ports: Vec<u16>,
    #[serde(default)]
    tls_ports: Vec<u16>,
}

const MAX_NAME_LENGTH: usize = 128;

fn check_name(name: &str) -> Result<(), ControlError> {
    let valid = !name.is_empty()
        && name.len() <= MAX_NAME_LENGTH
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':' | '.'));
    if valid {
        Ok(())
    } else {
        Err(bad_request(format!(
            "probe set name {name:?}: use 1 to {MAX_NAME_LENGTH} letters, digits, '-', '_', ':' or '.'"
        )))
    }
}

fn parse_set(body: &[u8]) -> Result<Vec<Probe>, ControlError> {
    let spec: SetSpec = serde_json::from_slice(body).map_err(|error| {
        bad_request(format!(
            "body must be {{\"probes\": [{{\"selector\", \"address\", \"ports\", \"tls_ports\"}}]}}: {error}"
        ))
    })?;
    spec.probes
        .into_iter()
        .enumerate()
        .map(|(index, probe)| {
            let field = |name: &str| format!("probes[{index}].{name}");
            let sides = match probe.address.as_deref() {
                None | Some("private-ip") => vec![Side::Private],
                Some("public-ip") => vec![Side::Public],
                Some("both") => vec![Side::Private, Side::Public],
                Some(other) => {
                    return Err(bad_request(format!(
                        "{}: {other:?} is not private-ip, public-ip or both",
                        field("address")
                    )));
                }
            };
            if probe.ports.contains(&0) {
                return Err(bad_request(format!(
                    "{}: 0 is not a port (1 to 65535)",
                    field("ports")
                )));
            }
            let ports: BTreeSet<u16> = probe.ports.into_iter().collect();
            if let Some(stray) = probe.tls_ports.iter().find(|port| !ports.contains(port)) {
                return Err(bad_request(format!(
                    "{}: {stray} is not one of the probe's ports",
                    field("tls_ports")
                )));
            }
            Ok(Probe {
                selector: probe.selector,
                sides,
                ports,
                tls_ports: probe.tls_ports.into_iter().collect(),
            })
        })
        .collect()
}

/// Declares (or replaces) the probe set `name`; the listeners of running instances
/// open and close to match at once.
async fn declare(
    State(sim): State<Arc<Simulator>>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let probes = match check_name(&name).and_then(|()| parse_set(&body)) {
        Ok(probes) => probes,
        Err(error) => return error.into_response(),
    };
    let answer = sim.with_probe_sets(|sets| {
        sets.named.insert(name.clone(), probes);
        sets.to_json()
    });
    sim.sync_probe_listeners();
    json_response(StatusCode::OK, answer)
}

/// Forgets the probe set `name` (not an error when there is none).
async fn forget(State(sim): State<Arc<Simulator>>, Path(name): Path<String>) -> Response {
    let answer = sim.with_probe_sets(|sets| {
        sets.named.remove(&name);
        sets.to_json()
    });
    sim.sync_probe_listeners();
    json_response(StatusCode::OK, answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> Tags {
        pairs
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect()
    }

    #[test]
    fn an_instance_serves_the_probes_that_select_it() {
        let mut sets = ProbeSets::from_config(&[], &[]);
        assert!(sets.is_empty());
        let probes = parse_set(
            br#"{"probes": [
                {"selector": {"dr:plan": "shop", "tier": "db"}, "ports": [5432]},
                {"selector": {"dr:plan": "shop", "tier": "web"}, "address": "public-ip",
                 "ports": [443], "tls_ports": [443]}]}"#,
        )
        .expect("a valid set");
        sets.named.insert("plan:shop".to_owned(), probes);
        assert!(!sets.is_empty());
        let db = sets.ports_for(&tags(&[("dr:plan", "shop"), ("tier", "db")]));
        assert_eq!(db, InstancePorts::from([((Side::Private, 5432), false)]));
        let web = sets.ports_for(&tags(&[("dr:plan", "shop"), ("tier", "web"), ("x", "y")]));
        assert_eq!(web, InstancePorts::from([((Side::Public, 443), true)]));
        assert!(sets.ports_for(&tags(&[("tier", "db")])).is_empty());
    }

    #[test]
    fn configured_ports_serve_every_instance_on_both_addresses() {
        let sets = ProbeSets::from_config(&[8080, 8443], &[8443, 9999]);
        let ports = sets.ports_for(&Tags::new());
        assert_eq!(
            ports,
            InstancePorts::from([
                ((Side::Private, 8080), false),
                ((Side::Private, 8443), true),
                ((Side::Public, 8080), false),
                ((Side::Public, 8443), true),
            ])
        );
    }

    #[test]
    fn a_port_probed_over_https_by_any_probe_speaks_tls() {
        let mut sets = ProbeSets::default();
        let probes = parse_set(
            br#"{"probes": [{"ports": [8443]}, {"ports": [8443], "tls_ports": [8443]}]}"#,
        )
        .expect("a valid set");
        sets.named.insert("p".to_owned(), probes);
        assert_eq!(
            sets.ports_for(&Tags::new()),
            InstancePorts::from([((Side::Private, 8443), true)])
        );
    }

    #[test]
    fn bad_sets_are_refused_naming_the_field() {
        let message = |body: &str| match parse_set(body.as_bytes()) {
            Ok(_) => panic!("{body} was accepted"),
            Err(error) => error.message,
        };
        assert!(message(r#"{"probes": [{"ports": [0]}]}"#).contains("probes[0].ports"));
        assert!(
            message(r#"{"probes": [{"ports": [1], "tls_ports": [2]}]}"#)
                .contains("probes[0].tls_ports: 2")
        );
        assert!(
            message(r#"{"probes": [{"ports": [1], "address": "lan"}]}"#)
                .contains("probes[0].address")
        );
        assert!(message(r#"{"probes": [{"ports": [70000]}]}"#).contains("body must be"));
        assert!(check_name("plan:shop").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("a/b").is_err());
    }
}
