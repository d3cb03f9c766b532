//! Loopback stand-ins for recovered instances, so the health gate has something to probe.
//!
//! Each running recovery instance with a private IPv4 `a.b.c.d` gets listeners on
//! `127.b.c.d` (the same mapping as drplan's `health::loopback_for`), one per port of
//! [`crate::SimConfig::probe_ports`]: they accept TCP and answer any HTTP request with
//! `200 ok`, over TLS on [`crate::SimConfig::tls_probe_ports`] (a self-signed
//! certificate for `recovered.drplan.local`, made once per process). An instance with a
//! public IPv4 gets the same listeners on that address's stand-in too. Every instance has
//! its own address, so each can serve the same ports.
//!
//! The `unhealthy_instances` fault acts here (moto's EC2 status checks stay `ok`; moto
//! has no way to set them): mode `error` keeps the listeners but answers every HTTP
//! request with `500`; mode `refuse` closes the listeners, so connections are refused.
//! Listeners close when the instance starts terminating, is replaced, on reset, and when
//! the simulator shuts down.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

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
    /// The stand-in of its public IPv4, when it has one.
    pub public_address: Option<Ipv4Addr>,
    /// Answer HTTP 500 instead of 200 (the `error` mode of `unhealthy_instances`).
    pub erroring: bool,
}

struct Served {
    address: Ipv4Addr,
    public_address: Option<Ipv4Addr>,
    erroring: Arc<AtomicBool>,
    ports: Vec<u16>,
    public_ports: Vec<u16>,
    tls_ports: Vec<u16>,
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
    pub fn sync(&self, wanted: &BTreeMap<String, Wanted>, ports: &[u16], tls_ports: &[u16]) {
        let mut served = self.lock();
        served.retain(|id, current| {
            wanted.get(id).is_some_and(|want| {
                want.address == current.address && want.public_address == current.public_address
            })
        });
        for (id, want) in wanted {
            if let Some(current) = served.get(id) {
                current.erroring.store(want.erroring, Ordering::Relaxed);
                continue;
            }
            served.insert(id.clone(), open(want, ports, tls_ports));
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
                    "public_address": s.public_address.map(|a| a.to_string()),
                    "public_ports": s.public_ports,
                    "tls_ports": s.tls_ports,
                    "erroring": s.erroring.load(Ordering::Relaxed),
                    "errors": s.errors,
                })
            })
            .collect()
    }
}

fn open(want: &Wanted, ports: &[u16], tls_ports: &[u16]) -> Served {
    let erroring = Arc::new(AtomicBool::new(want.erroring));
    let mut served = Served {
        address: want.address,
        public_address: want.public_address,
        erroring: erroring.clone(),
        ports: Vec::new(),
        public_ports: Vec::new(),
        tls_ports: Vec::new(),
        errors: Vec::new(),
        tasks: Vec::new(),
    };
    let addresses = std::iter::once((want.address, false))
        .chain(want.public_address.map(|address| (address, true)));
    for (address, public) in addresses {
        for &port in ports {
            let tls = tls_ports.contains(&port);
            let listener = bind(SocketAddr::from((address, port)));
            let task = match (listener, tls) {
                (Ok(listener), false) => {
                    let router = Router::new().fallback(answer).with_state(erroring.clone());
                    tokio::spawn(async move {
                        if let Err(error) = axum::serve(listener, router).await {
                            eprintln!("drs-sim: probe listener stopped: {error}");
                        }
                    })
                }
                (Ok(listener), true) => match tls_acceptor() {
                    Ok(acceptor) => tokio::spawn(serve_https(listener, acceptor, erroring.clone())),
                    Err(error) => {
                        served.errors.push(format!("{address}:{port}: {error}"));
                        continue;
                    }
                },
                // E.g. a port below 1024 without the privilege, or taken by another
                // process: the other ports still serve, and the state shows why.
                (Err(error), _) => {
                    served.errors.push(format!("{address}:{port}: {error}"));
                    continue;
                }
            };
            if public {
                served.public_ports.push(port);
            } else {
                served.ports.push(port);
                if tls {
                    served.tls_ports.push(port);
                }
            }
            served.tasks.push(task.abort_handle());
        }
    }
    served
}

/// The TLS side of every HTTPS stand-in: one self-signed certificate per process.
fn tls_acceptor() -> Result<tokio_rustls::TlsAcceptor, String> {
    static ACCEPTOR: OnceLock<Result<tokio_rustls::TlsAcceptor, String>> = OnceLock::new();
    ACCEPTOR
        .get_or_init(|| {
            let certified =
                rcgen::generate_simple_self_signed(vec!["recovered.drplan.local".to_owned()])
                    .map_err(|e| format!("no TLS certificate: {e}"))?;
            let key =
                rustls::pki_types::PrivateKeyDer::Pkcs8(certified.key_pair.serialize_der().into());
            let config = rustls::ServerConfig::builder_with_provider(Arc::new(
                rustls::crypto::aws_lc_rs::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("no TLS configuration: {e}"))?
            .with_no_client_auth()
            .with_single_cert(vec![certified.cert.der().clone()], key)
            .map_err(|e| format!("no TLS configuration: {e}"))?;
            Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
        })
        .clone()
}

/// Accepts connections, completes the TLS handshake and answers every HTTP request
/// like [`answer`]. A failed handshake (a plain-HTTP client, say) drops that connection
/// only.
async fn serve_https(
    listener: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    erroring: Arc<AtomicBool>,
) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                eprintln!("drs-sim: https probe listener stopped: {error}");
                return;
            }
        };
        let acceptor = acceptor.clone();
        let erroring = erroring.clone();
        tokio::spawn(async move {
            let Ok(stream) = acceptor.accept(stream).await else {
                return;
            };
            let service = hyper::service::service_fn(move |_request| {
                let (status, body) = if erroring.load(Ordering::Relaxed) {
                    (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "unhealthy (drs-sim fault)\n",
                    )
                } else {
                    (StatusCode::OK, "ok\n")
                };
                let mut response = hyper::Response::new(http_body_util::Full::new(
                    hyper::body::Bytes::from_static(body.as_bytes()),
                ));
                *response.status_mut() = status;
                async move { Ok::<_, std::convert::Infallible>(response) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
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
/// (EC2 instance ID, [private IP, public IP], EC2 state) and the unhealthy marks.
pub fn wanted<'a>(
    instances: impl Iterator<Item = (&'a str, [Option<&'a str>; 2], &'a str)>,
    erroring: &BTreeSet<String>,
    refusing: &BTreeSet<String>,
) -> BTreeMap<String, Wanted> {
    instances
        .filter(|(_, _, state)| *state == "RUNNING")
        .filter(|(id, _, _)| !refusing.contains(*id))
        .filter_map(|(id, [private, public], _)| {
            let private: Ipv4Addr = private?.parse().ok()?;
            let public: Option<Ipv4Addr> = public.and_then(|ip| ip.parse().ok());
            Some((
                id.to_owned(),
                Wanted {
                    address: loopback_for(private),
                    public_address: public.map(loopback_for),
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
            ("i-1", [Some("10.0.0.1"), Some("54.214.9.104")], "RUNNING"),
            ("i-2", [Some("10.0.0.2"), None], "RUNNING"),
            ("i-3", [Some("10.0.0.3"), None], "RUNNING"),
            ("i-4", [Some("10.0.0.4"), None], "SHUTTING-DOWN"),
            ("i-5", [None, None], "RUNNING"),
        ];
        let wanted = wanted(instances.into_iter(), &erroring, &refusing);
        assert_eq!(wanted.keys().collect::<Vec<_>>(), ["i-1", "i-2"]);
        assert!(!wanted["i-1"].erroring);
        assert!(wanted["i-2"].erroring);
        assert_eq!(wanted["i-2"].address, Ipv4Addr::new(127, 0, 0, 2));
        assert_eq!(wanted["i-2"].public_address, None);
        assert_eq!(
            wanted["i-1"].public_address,
            Some(Ipv4Addr::new(127, 214, 9, 104))
        );
    }
}
