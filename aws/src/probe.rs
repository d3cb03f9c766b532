//! The health gate's probes: a TCP connect, an HTTP or HTTPS GET, each with connect and
//! read timeouts. Probes go to an instance's private IP on AWS; local runs
//! (`DRPLAN_PROBE_LOOPBACK=1`) map it to the instance's own loopback address, and then
//! nothing but 127.0.0.0/8 is ever contacted: [`ProbeTarget`] cannot be built for any
//! other address in that mode.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use drplan_core::HealthCheck;
use drplan_core::health::{ProbeAddressing, ProbeOutcome};
use drplan_core::plan::ProbeAddress;
use http_body_util::Empty;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// The environment variable that turns on the loopback mapping (the local cloud sets it).
pub const LOOPBACK_ENV: &str = "DRPLAN_PROBE_LOOPBACK";

/// How probes are addressed and how long they wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeSettings {
    pub addressing: ProbeAddressing,
    /// Time to establish the TCP connection.
    pub connect_timeout: Duration,
    /// Time from the connection to the HTTP answer's status line.
    pub read_timeout: Duration,
    /// Probes in flight at once, across all servers of a wave.
    pub concurrency: usize,
}

impl Default for ProbeSettings {
    fn default() -> Self {
        Self {
            addressing: ProbeAddressing::default(),
            connect_timeout: Duration::from_secs(3),
            read_timeout: Duration::from_secs(5),
            concurrency: 128,
        }
    }
}

impl ProbeSettings {
    /// Settings for this process: loopback mapping when `DRPLAN_PROBE_LOOPBACK=1`.
    /// Private IPs until a wave asks for public ones ([`ProbeSettings::for_wave`]).
    pub fn from_env() -> Self {
        let loopback = std::env::var(LOOPBACK_ENV).is_ok_and(|v| v.trim() == "1");
        Self {
            addressing: ProbeAddressing {
                probe_public_ip: false,
                map_to_loopback: loopback,
            },
            ..Self::default()
        }
    }

    /// These settings for a wave whose plan says which address to probe.
    pub fn for_wave(mut self, address: ProbeAddress) -> Self {
        self.addressing.probe_public_ip = address == ProbeAddress::PublicIp;
        self
    }
}

/// An address probes may contact. With the loopback mapping on, only 127.0.0.0/8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeTarget(Ipv4Addr);

/// The loopback mapping is on but the address is not a loopback address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("refusing to probe {0}: local runs probe loopback addresses (127.0.0.0/8) only")]
pub struct NotLoopback(pub Ipv4Addr);

impl ProbeTarget {
    pub fn new(address: Ipv4Addr, addressing: ProbeAddressing) -> Result<Self, NotLoopback> {
        if addressing.map_to_loopback && !address.is_loopback() {
            return Err(NotLoopback(address));
        }
        Ok(Self(address))
    }

    pub fn address(self) -> Ipv4Addr {
        self.0
    }
}

/// Runs `check` against `target`. `ec2-status` is not a probe and passes through as
/// a failure that says so; callers evaluate it from DescribeInstanceStatus.
pub async fn probe(
    target: ProbeTarget,
    check: &HealthCheck,
    settings: &ProbeSettings,
) -> ProbeOutcome {
    match check {
        HealthCheck::Ec2Status => ProbeOutcome::Failed {
            reason: "ec2-status is read from EC2, not probed".into(),
        },
        HealthCheck::Tcp { port } => match connect(target, *port, settings).await {
            Ok(_) => ProbeOutcome::Passed {
                detail: "connected".into(),
            },
            Err(reason) => ProbeOutcome::Failed { reason },
        },
        HealthCheck::Http { port, path } => http_get(target, *port, path, settings, false).await,
        HealthCheck::Https { port, path } => http_get(target, *port, path, settings, true).await,
    }
}

async fn connect(
    target: ProbeTarget,
    port: u16,
    settings: &ProbeSettings,
) -> Result<TcpStream, String> {
    let address = SocketAddr::from((target.address(), port));
    match tokio::time::timeout(settings.connect_timeout, TcpStream::connect(address)).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(e)) => Err(describe_connect_error(&e)),
        Err(_) => Err(format!(
            "timed out (no connection within {} s)",
            settings.connect_timeout.as_secs_f32()
        )),
    }
}

fn describe_connect_error(error: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match error.kind() {
        ErrorKind::ConnectionRefused => "refused (connection refused)".into(),
        ErrorKind::ConnectionReset => "refused (connection reset)".into(),
        ErrorKind::TimedOut => "timed out (connect timed out)".into(),
        ErrorKind::HostUnreachable | ErrorKind::NetworkUnreachable => {
            format!("unreachable ({error})")
        }
        _ => format!("failed ({error})"),
    }
}

/// A GET of `path`, over TLS when `tls`. The read timeout covers the TLS handshake and
/// the wait for the status line.
async fn http_get(
    target: ProbeTarget,
    port: u16,
    path: &str,
    settings: &ProbeSettings,
    tls: bool,
) -> ProbeOutcome {
    let stream = match connect(target, port, settings).await {
        Ok(stream) => stream,
        Err(reason) => return ProbeOutcome::Failed { reason },
    };
    let host = format!("{}:{port}", target.address());
    let exchange = async {
        if !tls {
            let status = get_status(stream, &host, path).await?;
            return Ok((status, ""));
        }
        let name = rustls::pki_types::ServerName::IpAddress(target.address().into());
        let stream = tls_connector()?
            .connect(name, stream)
            .await
            .map_err(|e| format!("failed (TLS handshake: {e})"))?;
        let version = match stream.get_ref().1.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => " (HTTPS, TLS 1.3)",
            Some(rustls::ProtocolVersion::TLSv1_2) => " (HTTPS, TLS 1.2)",
            _ => " (HTTPS)",
        };
        let status = get_status(stream, &host, path).await?;
        Ok((status, version))
    };
    let protocol = if tls { "HTTPS" } else { "HTTP" };
    match tokio::time::timeout(settings.read_timeout, exchange).await {
        Err(_) => ProbeOutcome::Failed {
            reason: format!(
                "timed out (no {protocol} answer within {} s)",
                settings.read_timeout.as_secs_f32()
            ),
        },
        Ok(Err(reason)) => ProbeOutcome::Failed { reason },
        Ok(Ok((status, over))) if status.is_success() || status.is_redirection() => {
            ProbeOutcome::Passed {
                detail: format!("HTTP {}{over}", status.as_u16()),
            }
        }
        Ok(Ok((status, _))) => ProbeOutcome::Failed {
            reason: format!("HTTP {} (expected 2xx or 3xx)", status.as_u16()),
        },
    }
}

/// Sends `GET path` on an open connection and returns the answer's status.
async fn get_status<S>(io: S, host: &str, path: &str) -> Result<hyper::StatusCode, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| format!("failed (HTTP handshake: {e})"))?;
    // The connection task ends with the probe: dropping the sender closes it.
    let driver = tokio::spawn(connection);
    let request = hyper::Request::get(path)
        .header(hyper::header::HOST, host)
        .header(hyper::header::USER_AGENT, "drplan-health-check")
        .header(hyper::header::CONNECTION, "close")
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("failed (bad request for {path:?}: {e})"))?;
    let answer = sender.send_request(request).await;
    driver.abort();
    answer
        .map(|response| response.status())
        .map_err(|e| format!("failed (no HTTP answer: {e})"))
}

/// One TLS client configuration for every https probe of the process.
fn tls_connector() -> Result<tokio_rustls::TlsConnector, String> {
    static CONFIG: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .map_err(|e| format!("failed (TLS client setup: {e})"))?
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(HandshakeOnly { provider }))
                .with_no_client_auth();
            Ok(Arc::new(config))
        })
        .clone()
        .map(tokio_rustls::TlsConnector::from)
}

/// Accepts the server's certificate whatever it names and whoever signed it, but still
/// checks the handshake signatures, so the server must hold the certificate's key.
/// Probes address instances by IP, which their certificates rarely name, and a recovered
/// instance's certificate is the production one: the gate asks "does it serve HTTPS",
/// as load balancer and Route 53 health checks do, not "is this the right name".
#[derive(Debug)]
struct HandshakeOnly {
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl rustls::client::danger::ServerCertVerifier for HandshakeOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Runs every (key, target, check) probe, at most `settings.concurrency` at once, and
/// returns the outcomes with their keys (in no particular order).
pub async fn probe_all<K: Send + 'static>(
    probes: Vec<(K, ProbeTarget, HealthCheck)>,
    settings: ProbeSettings,
    within: Option<Duration>,
) -> Vec<(K, HealthCheck, ProbeOutcome)> {
    let stop_at = within.map(|left| tokio::time::Instant::now() + left);
    let permits = Arc::new(Semaphore::new(settings.concurrency.max(1)));
    let mut running = JoinSet::new();
    for (key, target, check) in probes {
        let permits = permits.clone();
        running.spawn(async move {
            // The semaphore is never closed, so acquiring only waits.
            let _permit = permits.acquire_owned().await.ok();
            let outcome = probe(target, &check, &settings).await;
            (key, check, outcome)
        });
    }
    let mut outcomes = Vec::new();
    loop {
        let next = match stop_at {
            Some(stop_at) => match tokio::time::timeout_at(stop_at, running.join_next()).await {
                Ok(next) => next,
                Err(_) => {
                    // Out of time: the probes still running are dropped (aborted with
                    // the JoinSet) and their checks stay "not probed yet".
                    tracing::warn!(
                        unfinished = running.len(),
                        "probes stopped at the poll's deadline"
                    );
                    break;
                }
            },
            None => running.join_next().await,
        };
        let Some(done) = next else { break };
        match done {
            Ok(outcome) => outcomes.push(outcome),
            // A probe task that panicked leaves its check unprobed (pending), which a
            // later poll retries; the rest still count.
            Err(e) => tracing::error!(error = %e, "a probe task failed"),
        }
    }
    outcomes
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    const LOCAL: ProbeAddressing = ProbeAddressing {
        probe_public_ip: false,
        map_to_loopback: true,
    };

    fn settings() -> ProbeSettings {
        ProbeSettings {
            addressing: LOCAL,
            connect_timeout: Duration::from_millis(500),
            read_timeout: Duration::from_millis(500),
            concurrency: 4,
        }
    }

    /// Serves one canned HTTP answer to every connection.
    async fn serve(answer: &'static str) -> (Ipv4Addr, u16) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buffer = [0u8; 1024];
                    let _ = stream.read(&mut buffer).await;
                    let _ = stream.write_all(answer.as_bytes()).await;
                });
            }
        });
        (Ipv4Addr::LOCALHOST, port)
    }

    fn target(address: Ipv4Addr) -> ProbeTarget {
        ProbeTarget::new(address, LOCAL).unwrap()
    }

    #[test]
    fn local_runs_refuse_anything_but_loopback() {
        assert!(ProbeTarget::new(Ipv4Addr::new(127, 31, 0, 5), LOCAL).is_ok());
        let refused = ProbeTarget::new(Ipv4Addr::new(10, 0, 0, 5), LOCAL).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "refusing to probe 10.0.0.5: local runs probe loopback addresses (127.0.0.0/8) only"
        );
        assert!(ProbeTarget::new(Ipv4Addr::new(172, 16, 0, 5), LOCAL).is_err());
        // On AWS the private IP is the target.
        assert!(ProbeTarget::new(Ipv4Addr::new(10, 0, 0, 5), ProbeAddressing::default()).is_ok());
    }

    #[tokio::test]
    async fn http_answers_pass_on_2xx_and_3xx_and_fail_otherwise() {
        let check = |port| HealthCheck::Http {
            port,
            path: "/health".into(),
        };
        let (address, port) = serve("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").await;
        assert_eq!(
            probe(target(address), &check(port), &settings()).await,
            ProbeOutcome::Passed {
                detail: "HTTP 200".into()
            }
        );
        let (address, port) =
            serve("HTTP/1.1 302 Found\r\nlocation: /\r\ncontent-length: 0\r\n\r\n").await;
        assert!(matches!(
            probe(target(address), &check(port), &settings()).await,
            ProbeOutcome::Passed { .. }
        ));
        let (address, port) =
            serve("HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n\r\n").await;
        assert_eq!(
            probe(target(address), &check(port), &settings()).await,
            ProbeOutcome::Failed {
                reason: "HTTP 500 (expected 2xx or 3xx)".into()
            }
        );
    }

    #[tokio::test]
    async fn a_closed_port_is_refused_and_a_silent_server_times_out() {
        let free = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = free.local_addr().unwrap().port();
        drop(free);
        assert_eq!(
            probe(
                target(Ipv4Addr::LOCALHOST),
                &HealthCheck::Tcp { port },
                &settings()
            )
            .await,
            ProbeOutcome::Failed {
                reason: "refused (connection refused)".into()
            }
        );
        // Accepts (the kernel does, from the backlog) but never answers.
        let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = silent.local_addr().unwrap().port();
        assert_eq!(
            probe(
                target(Ipv4Addr::LOCALHOST),
                &HealthCheck::Tcp { port },
                &settings()
            )
            .await,
            ProbeOutcome::Passed {
                detail: "connected".into()
            }
        );
        let outcome = probe(
            target(Ipv4Addr::LOCALHOST),
            &HealthCheck::Http {
                port,
                path: "/".into(),
            },
            &settings(),
        )
        .await;
        assert_eq!(
            outcome,
            ProbeOutcome::Failed {
                reason: "timed out (no HTTP answer within 0.5 s)".into()
            }
        );
        drop(silent);
    }

    /// Serves one canned HTTP answer over TLS, with a self-signed certificate for a
    /// name that is not the address probed (as on a recovered instance).
    async fn serve_tls(answer: &'static str) -> (Ipv4Addr, u16) {
        let certified = rcgen::generate_simple_self_signed(vec!["shop.example.com".into()])
            .expect("a self-signed certificate");
        let key =
            rustls::pki_types::PrivateKeyDer::Pkcs8(certified.key_pair.serialize_der().into());
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key)
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut stream) = acceptor.accept(stream).await else {
                        return;
                    };
                    let mut buffer = [0u8; 1024];
                    let _ = stream.read(&mut buffer).await;
                    let _ = stream.write_all(answer.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        (Ipv4Addr::LOCALHOST, port)
    }

    fn https(port: u16) -> HealthCheck {
        HealthCheck::Https {
            port,
            path: "/health".into(),
        }
    }

    #[tokio::test]
    async fn https_passes_on_a_tls_server_whatever_its_certificate_names() {
        let (address, port) = serve_tls("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").await;
        assert_eq!(
            probe(target(address), &https(port), &settings()).await,
            ProbeOutcome::Passed {
                detail: "HTTP 200 (HTTPS, TLS 1.3)".into()
            }
        );
        let (address, port) =
            serve_tls("HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n").await;
        assert_eq!(
            probe(target(address), &https(port), &settings()).await,
            ProbeOutcome::Failed {
                reason: "HTTP 503 (expected 2xx or 3xx)".into()
            }
        );
    }

    #[tokio::test]
    async fn https_fails_on_a_plain_http_server_and_a_silent_one() {
        let (address, port) = serve("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").await;
        let outcome = probe(target(address), &https(port), &settings()).await;
        assert!(
            matches!(&outcome, ProbeOutcome::Failed { reason } if reason.starts_with("failed (TLS handshake: ")),
            "{outcome:?}"
        );
        let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = silent.local_addr().unwrap().port();
        assert_eq!(
            probe(target(Ipv4Addr::LOCALHOST), &https(port), &settings()).await,
            ProbeOutcome::Failed {
                reason: "timed out (no HTTPS answer within 0.5 s)".into()
            }
        );
        drop(silent);
    }

    #[tokio::test]
    async fn probe_all_returns_every_outcome_with_its_key() {
        let (address, port) = serve("HTTP/1.1 204 No Content\r\n\r\n").await;
        let probes = (0..6)
            .map(|n| (n, target(address), HealthCheck::Tcp { port }))
            .collect();
        let mut outcomes = probe_all(probes, settings(), None).await;
        outcomes.sort_by_key(|(n, _, _)| *n);
        assert_eq!(outcomes.len(), 6);
        assert!(
            outcomes
                .iter()
                .all(|(_, _, o)| matches!(o, ProbeOutcome::Passed { .. }))
        );
    }

    #[tokio::test]
    async fn probe_all_stops_at_its_deadline_and_keeps_what_finished() {
        let (address, port) = serve("HTTP/1.1 204 No Content\r\n\r\n").await;
        // Accepts and never answers: its HTTP probe would wait for the read timeout.
        let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let silent_port = silent.local_addr().unwrap().port();
        let slow = ProbeSettings {
            read_timeout: Duration::from_secs(30),
            ..settings()
        };
        let probes = vec![
            (0, target(address), HealthCheck::Tcp { port }),
            (
                1,
                target(Ipv4Addr::LOCALHOST),
                HealthCheck::Http {
                    port: silent_port,
                    path: "/".into(),
                },
            ),
        ];
        let started = std::time::Instant::now();
        let outcomes = probe_all(probes, slow, Some(Duration::from_millis(300))).await;
        assert!(started.elapsed() < Duration::from_secs(10));
        let keys: Vec<i32> = outcomes.iter().map(|(n, _, _)| *n).collect();
        assert_eq!(keys, [0], "{outcomes:?}");
        drop(silent);
    }
}
