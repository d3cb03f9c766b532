//! Loopback stand-ins for recovered instances, so the health gate has something to probe.
//!
//! Each running recovery instance with a private IPv4 `a.b.c.d` gets listeners on
//! `127.b.c.d` (the same mapping as drplan's `health::loopback_for`), one per port of
//! [`crate::SimConfig::probe_ports`]: they accept TCP and answer any HTTP request with
//! `200 ok`. Every instance has its own address, so each can serve the same ports.
//!
//! The `unhealthy_instances` fault acts here (moto's EC2 status checks stay `ok`; moto
//! has no way to set them): mode `error` keeps the listeners but answers every HTTP
//! request with `500`; mode `refuse` closes the listeners, so connections are refused.
//! Listeners close when the instance starts terminating, is replaced, on reset, and when
//! the simulator shuts down.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::{Value, json};
use tokio::task::AbortHandle;

/// The loopback address that stands for a private IPv4 address: `a.b.c.d` → `127.b.c.d`.
/// Must stay the same rule as drplan-core's `health::loopback_for` (the simulator does
/// not depend on drplan's crates).
pub fn loopback_for(private_ip: Ipv4Addr) -> Ipv4Addr {
    let [_, b, c, d] = private_ip.octets();
    Ipv4Addr::new(127, b, c, d)
}

/// What an instance's listeners should look like now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub address: Ipv4Addr,
    /// Answer HTTP 500 instead of 200 (the `error` mode of `unhealthy_instances`).
    pub erroring: bool,
}

struct Served {
    address: Ipv4Addr,
    erroring: Arc<AtomicBool>,
    ports: Vec<u16>,
    errors: Vec<String>,
    tasks: Vec<AbortHandle>,
}

impl Drop for Served {
    fn drop(&mut self) {
        // Aborting the accept loops drops their sockets: the ports close.
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// The listeners of every instance, by EC2 instance ID.
#[derive(Default)]
pub struct ProbeListeners {
    served: Mutex<HashMap<String, Served>>,
}

impl ProbeListeners {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Served>> {
        self.served
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Opens, updates and closes listeners so that exactly the `wanted` instances are
    /// served. Must run inside the tokio runtime (listeners register with it).
    pub fn sync(&self, wanted: &BTreeMap<String, Wanted>, ports: &[u16]) {
        let mut served = self.lock();
        served.retain(|id, current| {
            wanted
                .get(id)
                .is_some_and(|want| want.address == current.address)
        });
        for (id, want) in wanted {
            if let Some(current) = served.get(id) {
                current.erroring.store(want.erroring, Ordering::Relaxed);
                continue;
            }
            served.insert(id.clone(), open(want, ports));
        }
    }

    pub fn close_all(&self) {
        self.lock().clear();
    }

    /// For `GET /_drplan/state`.
    pub fn describe(&self) -> Vec<Value> {
        let served = self.lock();
        let mut rows: Vec<(&String, &Served)> = served.iter().collect();
        rows.sort_by(|a, b| a.0.cmp(b.0));
        rows.into_iter()
            .map(|(id, s)| {
                json!({
                    "ec2_instance_id": id,
                    "address": s.address.to_string(),
                    "ports": s.ports,
                    "erroring": s.erroring.load(Ordering::Relaxed),
                    "errors": s.errors,
                })
            })
            .collect()
    }
}

fn open(want: &Wanted, ports: &[u16]) -> Served {
    let erroring = Arc::new(AtomicBool::new(want.erroring));
    let mut served = Served {
        address: want.address,
        erroring: erroring.clone(),
        ports: Vec::new(),
        errors: Vec::new(),
        tasks: Vec::new(),
    };
    for &port in ports {
        match bind(SocketAddr::from((want.address, port))) {
            Ok(listener) => {
                let router = Router::new().fallback(answer).with_state(erroring.clone());
                let task = tokio::spawn(async move {
                    if let Err(error) = axum::serve(listener, router).await {
                        eprintln!("drs-sim: probe listener stopped: {error}");
                    }
                });
                served.ports.push(port);
                served.tasks.push(task.abort_handle());
            }
            // E.g. a port below 1024 without the privilege, or taken by another
            // process: the other ports still serve, and the state shows why.
            Err(error) => served
                .errors
                .push(format!("{}:{port}: {error}", want.address)),
        }
    }
    served
}

fn bind(address: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    // Refuse anything but loopback: the simulator never listens beyond the machine.
    if !address.ip().is_loopback() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AddrNotAvailable,
            "probe listeners bind loopback addresses only",
        ));
    }
    let listener = std::net::TcpListener::bind(address)?;
    listener.set_nonblocking(true)?;
    tokio::net::TcpListener::from_std(listener)
}

async fn answer(
    axum::extract::State(erroring): axum::extract::State<Arc<AtomicBool>>,
) -> impl IntoResponse {
    if erroring.load(Ordering::Relaxed) {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "unhealthy (drs-sim fault)\n",
        )
    } else {
        (StatusCode::OK, "ok\n")
    }
}

/// Which instances should be served and how, from the recovery instances
/// (EC2 instance ID, private IP, EC2 state) and the unhealthy marks.
pub fn wanted<'a>(
    instances: impl Iterator<Item = (&'a str, Option<&'a str>, &'a str)>,
    erroring: &BTreeSet<String>,
    refusing: &BTreeSet<String>,
) -> BTreeMap<String, Wanted> {
    instances
        .filter(|(_, _, state)| *state == "RUNNING")
        .filter(|(id, _, _)| !refusing.contains(*id))
        .filter_map(|(id, ip, _)| {
            let private: Ipv4Addr = ip?.parse().ok()?;
            Some((
                id.to_owned(),
                Wanted {
                    address: loopback_for(private),
                    erroring: erroring.contains(id),
                },
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_map_like_drplans_health_gate() {
        assert_eq!(
            loopback_for(Ipv4Addr::new(172, 31, 40, 7)),
            Ipv4Addr::new(127, 31, 40, 7)
        );
    }

    #[test]
    fn only_running_instances_that_do_not_refuse_are_served() {
        let erroring: BTreeSet<String> = ["i-2".to_owned()].into();
        let refusing: BTreeSet<String> = ["i-3".to_owned()].into();
        let instances = [
            ("i-1", Some("10.0.0.1"), "RUNNING"),
            ("i-2", Some("10.0.0.2"), "RUNNING"),
            ("i-3", Some("10.0.0.3"), "RUNNING"),
            ("i-4", Some("10.0.0.4"), "SHUTTING-DOWN"),
            ("i-5", None, "RUNNING"),
        ];
        let wanted = wanted(instances.into_iter(), &erroring, &refusing);
        assert_eq!(wanted.keys().collect::<Vec<_>>(), ["i-1", "i-2"]);
        assert!(!wanted["i-1"].erroring);
        assert!(wanted["i-2"].erroring);
        assert_eq!(wanted["i-2"].address, Ipv4Addr::new(127, 0, 0, 2));
    }
}
