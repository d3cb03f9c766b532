//! Loopback stand-ins for recovered instances, so the health gate has something to probe.
//!
//! Each running recovery instance with a private IPv4 `a.b.c.d` gets listeners on
//! `127.b.c.d` (the same mapping as drplan's `health::loopback_for`), one per port that a
//! health check will probe it on ([`crate::probe_ports`]: the configured ports and the
//! declared probe sets whose selector matches its source server's tags). They accept
//! TCP and answer any HTTP request with `200 ok`, over TLS on the ports probed over HTTPS
//! (a self-signed certificate for `recovered.drplan.local`, made once per process). An
//! instance with a public IPv4 gets the listeners of the probes that go to its public
//! address on that address's stand-in. Every instance has its own address, so each can
//! serve the same ports. An instance that nothing probes holds no socket.
//!
//! The `unhealthy_instances` fault acts here (moto's EC2 status checks stay `ok`; moto
//! has no way to set them): mode `error` keeps the listeners but answers every HTTP
//! request with `500`; mode `refuse` closes the listeners, so connections are refused.
//! Listeners close when the instance stops running (it starts terminating through DRS,
//! it is replaced by a new launch, or EC2 reports it stopped or terminated, see
//! [`crate::ec2_states`]), when a port is no longer probed, on reset, and when the
//! simulator shuts down.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::{Value, json};
use tokio::task::AbortHandle;

use crate::model::Tags;
use crate::probe_ports::{InstancePorts, ProbeSets, Side};

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
    /// The ports a health check will probe, on which stand-in, and whether they speak TLS.
    pub ports: InstancePorts,
    /// Answer HTTP 500 instead of 200 (the `error` mode of `unhealthy_instances`).
    pub erroring: bool,
}

impl Wanted {
    fn socket(&self, side: Side, port: u16) -> Option<SocketAddr> {
        let address = match side {
            Side::Private => Some(self.address),
            Side::Public => self.public_address,
        };
        address.map(|address| SocketAddr::from((address, port)))
    }
}

/// One port of one stand-in address: serving, or why it could not be bound.
struct Port {
    tls: bool,
    served: Result<AbortHandle, String>,
}

impl Drop for Port {
    fn drop(&mut self) {
        // Aborting the accept loop drops its socket: the port closes.
        if let Ok(task) = &self.served {
            task.abort();
        }
    }
}

struct Served {
    address: Ipv4Addr,
    public_address: Option<Ipv4Addr>,
    erroring: Arc<AtomicBool>,
    ports: BTreeMap<(Side, u16), Port>,
}

impl Served {
    /// Closes the ports no longer wanted (or wanted with the other protocol) and opens
    /// the missing ones. A port that failed to bind is not tried again until what is
    /// wanted of it changes: a wave's launches sync hundreds of times.
    fn update(&mut self, want: &Wanted) {
        self.erroring.store(want.erroring, Ordering::Relaxed);
        self.ports
            .retain(|key, port| want.ports.get(key) == Some(&port.tls));
        for (&(side, port), &tls) in &want.ports {
            if self.ports.contains_key(&(side, port)) {
                continue;
            }
            let Some(socket) = want.socket(side, port) else {
                continue;
            };
            let served = open(socket, tls, &self.erroring);
            self.ports.insert((side, port), Port { tls, served });
        }
    }

    /// Listening sockets held open.
    fn listening(&self) -> usize {
        self.ports
            .values()
            .filter(|port| port.served.is_ok())
            .count()
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
    /// served, each on exactly its wanted ports. Must run inside the tokio runtime
    /// (listeners register with it).
    pub fn sync(&self, wanted: &BTreeMap<String, Wanted>) {
        let mut served = self.lock();
        served.retain(|id, current| {
            wanted.get(id).is_some_and(|want| {
                want.address == current.address && want.public_address == current.public_address
            })
        });
        for (id, want) in wanted {
            served
                .entry(id.clone())
                .or_insert_with(|| Served {
                    address: want.address,
                    public_address: want.public_address,
                    erroring: Arc::new(AtomicBool::new(want.erroring)),
                    ports: BTreeMap::new(),
                })
                .update(want);
        }
    }

    /// Whether any listener (or a record of a failed one) is held.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// How many listening sockets are open, over every instance.
    pub fn count(&self) -> usize {
        self.lock().values().map(Served::listening).sum()
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
                let listening = |side: Side, tls_only: bool| -> Vec<u16> {
                    s.ports
                        .iter()
                        .filter(|((on, _), port)| {
                            *on == side && port.served.is_ok() && (port.tls || !tls_only)
                        })
                        .map(|((_, number), _)| *number)
                        .collect()
                };
                let errors: Vec<String> = s
                    .ports
                    .iter()
                    .filter_map(|((side, number), port)| {
                        let address = match side {
                            Side::Private => Some(s.address),
                            Side::Public => s.public_address,
                        }?;
                        port.served
                            .as_ref()
                            .err()
                            .map(|error| format!("{address}:{number}: {error}"))
                    })
                    .collect();
                json!({
                    "ec2_instance_id": id,
                    "address": s.address.to_string(),
                    "ports": listening(Side::Private, false),
                    "public_address": s.public_address.map(|a| a.to_string()),
                    "public_ports": listening(Side::Public, false),
                    "tls_ports": listening(Side::Private, true),
                    "public_tls_ports": listening(Side::Public, true),
                    "erroring": s.erroring.load(Ordering::Relaxed),
                    "errors": errors,
                })
            })
            .collect()
    }
}

/// Binds `socket` and serves it: plain HTTP, or HTTPS when `tls`. The error says why a
/// port could not be served (e.g. below 1024 without the privilege, or taken by another
/// process): the instance's other ports still serve, and the state shows why.
fn open(socket: SocketAddr, tls: bool, erroring: &Arc<AtomicBool>) -> Result<AbortHandle, String> {
    let listener = bind(socket).map_err(|error| error.to_string())?;
    let erroring = erroring.clone();
    let task = if tls {
        let acceptor = tls_acceptor()?;
        tokio::spawn(serve_https(listener, acceptor, erroring))
    } else {
        let router = Router::new().fallback(answer).with_state(erroring);
        tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, router).await {
                eprintln!("drs-sim: probe listener stopped: {error}");
            }
        })
    };
    Ok(task.abort_handle())
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

/// A recovery instance as the listeners see it.
pub struct InstanceView<'a> {
    pub ec2_instance_id: &'a str,
    pub private_ip: Option<&'a str>,
    pub public_ip: Option<&'a str>,
    /// EC2InstanceState: only RUNNING instances serve.
    pub ec2_state: &'a str,
    /// The tags of its source server, which probe selectors match.
    pub tags: &'a Tags,
    /// A source machine a failback brought home: it has one address, where drplan
    /// probes every check (private and public alike).
    pub at_home: bool,
}

/// Which instances should be served and how, from the recovery instances, the probes
/// declared and the unhealthy marks. An instance that nothing probes gets no entry.
pub fn wanted<'a>(
    instances: impl Iterator<Item = InstanceView<'a>>,
    probes: &ProbeSets,
    erroring: &BTreeSet<String>,
    refusing: &BTreeSet<String>,
) -> BTreeMap<String, Wanted> {
    instances
        .filter(|instance| instance.ec2_state == "RUNNING")
        .filter(|instance| !refusing.contains(instance.ec2_instance_id))
        .filter_map(|instance| {
            let private: Ipv4Addr = instance.private_ip?.parse().ok()?;
            let public: Option<Ipv4Addr> = instance.public_ip.and_then(|ip| ip.parse().ok());
            let mut ports = probes.ports_for(instance.tags);
            if instance.at_home {
                ports = ports
                    .into_iter()
                    .map(|((_, port), tls)| ((Side::Private, port), tls))
                    .collect();
            }
            if public.is_none() {
                ports.retain(|(side, _), _| *side == Side::Private);
            }
            if ports.is_empty() {
                return None;
            }
            Some((
                instance.ec2_instance_id.to_owned(),
                Wanted {
                    address: loopback_for(private),
                    public_address: public.map(loopback_for),
                    ports,
                    erroring: erroring.contains(instance.ec2_instance_id),
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

    fn view<'a>(
        id: &'a str,
        ips: [Option<&'a str>; 2],
        state: &'a str,
        tags: &'a Tags,
    ) -> InstanceView<'a> {
        InstanceView {
            ec2_instance_id: id,
            private_ip: ips[0],
            public_ip: ips[1],
            ec2_state: state,
            tags,
            at_home: false,
        }
    }

    #[test]
    fn only_running_probed_instances_that_do_not_refuse_are_served() {
        let erroring: BTreeSet<String> = ["i-2".to_owned()].into();
        let refusing: BTreeSet<String> = ["i-3".to_owned()].into();
        let probed = ProbeSets::from_config(&[8080], &[]);
        let tags = Tags::new();
        let instances = [
            view(
                "i-1",
                [Some("10.0.0.1"), Some("54.214.9.104")],
                "RUNNING",
                &tags,
            ),
            view("i-2", [Some("10.0.0.2"), None], "RUNNING", &tags),
            view("i-3", [Some("10.0.0.3"), None], "RUNNING", &tags),
            view("i-4", [Some("10.0.0.4"), None], "SHUTTING-DOWN", &tags),
            view("i-5", [None, None], "RUNNING", &tags),
            view("i-6", [Some("10.0.0.6"), None], "TERMINATED", &tags),
        ];
        let wanted = wanted(instances.into_iter(), &probed, &erroring, &refusing);
        assert_eq!(wanted.keys().collect::<Vec<_>>(), ["i-1", "i-2"]);
        assert!(!wanted["i-1"].erroring);
        assert!(wanted["i-2"].erroring);
        assert_eq!(wanted["i-2"].address, Ipv4Addr::new(127, 0, 0, 2));
        assert_eq!(wanted["i-2"].public_address, None);
        assert_eq!(
            wanted["i-2"].ports,
            InstancePorts::from([((Side::Private, 8080), false)])
        );
        assert_eq!(
            wanted["i-1"].public_address,
            Some(Ipv4Addr::new(127, 214, 9, 104))
        );
        assert_eq!(wanted["i-1"].ports.len(), 2);
    }

    #[test]
    fn nothing_probed_means_no_instance_is_served() {
        let tags = Tags::new();
        let instances = [view("i-1", [Some("10.0.0.1"), None], "RUNNING", &tags)];
        let wanted = wanted(
            instances.into_iter(),
            &ProbeSets::default(),
            &BTreeSet::new(),
            &BTreeSet::new(),
        );
        assert!(wanted.is_empty());
    }
}
