//! The health gate's probes: a TCP connect, an HTTP GET, each with connect and read
//! timeouts. Probes go to an instance's private IP on AWS; local runs
//! (`DRPLAN_PROBE_LOOPBACK=1`) map it to the instance's own loopback address, and then
//! nothing but 127.0.0.0/8 is ever contacted: [`ProbeTarget`] cannot be built for any
//! other address in that mode.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use drplan_core::HealthCheck;
use drplan_core::health::{ProbeAddressing, ProbeOutcome};
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
    /// Probing public IPs stays off: plans have no field for it yet.
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
        HealthCheck::Http { port, path } => http_get(target, *port, path, settings).await,
        HealthCheck::Https { .. } => ProbeOutcome::Failed {
            reason: "not probed: https checks are not supported yet (the health gate has no TLS client); use tcp:PORT or http:PORT/PATH".into(),
        },
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

async fn http_get(
    target: ProbeTarget,
    port: u16,
    path: &str,
    settings: &ProbeSettings,
) -> ProbeOutcome {
    let stream = match connect(target, port, settings).await {
        Ok(stream) => stream,
        Err(reason) => return ProbeOutcome::Failed { reason },
    };
    let exchange = async {
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("failed (HTTP handshake: {e})"))?;
        // The connection task ends with the probe: dropping the sender closes it.
        let driver = tokio::spawn(connection);
        let request = hyper::Request::get(path)
            .header(hyper::header::HOST, format!("{}:{port}", target.address()))
            .header(hyper::header::USER_AGENT, "drplan-health-check")
            .header(hyper::header::CONNECTION, "close")
            .body(Empty::<Bytes>::new())
            .map_err(|e| format!("failed (bad request for {path:?}: {e})"))?;
        let answer = sender.send_request(request).await;
        driver.abort();
        answer
            .map(|response| response.status())
            .map_err(|e| format!("failed (no HTTP answer: {e})"))
    };
    match tokio::time::timeout(settings.read_timeout, exchange).await {
        Err(_) => ProbeOutcome::Failed {
            reason: format!(
                "timed out (no HTTP answer within {} s)",
                settings.read_timeout.as_secs_f32()
            ),
        },
        Ok(Err(reason)) => ProbeOutcome::Failed { reason },
        Ok(Ok(status)) if status.is_success() || status.is_redirection() => ProbeOutcome::Passed {
            detail: format!("HTTP {}", status.as_u16()),
        },
        Ok(Ok(status)) => ProbeOutcome::Failed {
            reason: format!("HTTP {} (expected 2xx or 3xx)", status.as_u16()),
        },
    }
}

/// Runs every (key, target, check) probe, at most `settings.concurrency` at once, and
/// returns the outcomes with their keys (in no particular order).
pub async fn probe_all<K: Send + 'static>(
    probes: Vec<(K, ProbeTarget, HealthCheck)>,
    settings: ProbeSettings,
) -> Vec<(K, HealthCheck, ProbeOutcome)> {
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
    while let Some(done) = running.join_next().await {
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

    #[tokio::test]
    async fn https_is_reported_as_unsupported() {
        let outcome = probe(
            target(Ipv4Addr::LOCALHOST),
            &HealthCheck::Https {
                port: 443,
                path: "/".into(),
            },
            &settings(),
        )
        .await;
        assert!(
            matches!(&outcome, ProbeOutcome::Failed { reason } if reason.contains("https checks are not supported")),
            "{outcome:?}"
        );
    }

    #[tokio::test]
    async fn probe_all_returns_every_outcome_with_its_key() {
        let (address, port) = serve("HTTP/1.1 204 No Content\r\n\r\n").await;
        let probes = (0..6)
            .map(|n| (n, target(address), HealthCheck::Tcp { port }))
            .collect();
        let mut outcomes = probe_all(probes, settings()).await;
        outcomes.sort_by_key(|(n, _, _)| *n);
        assert_eq!(outcomes.len(), 6);
        assert!(
            outcomes
                .iter()
                .all(|(_, _, o)| matches!(o, ProbeOutcome::Passed { .. }))
        );
    }
}
