//! A moto server for tests (feature `test-support`): the simulator's own tests, and the
//! adapters' tests in drplan-aws, start one each through this.
//!
//! Needs a moto server executable in DRPLAN_MOTO_SERVER (e.g. `.venv/bin/moto_server`
//! from `scripts/install-local-cloud`, moto 5.2.5). Without it [`start_moto`] returns
//! `None` after printing why, unless DRPLAN_REQUIRE_MOTO is set, in which case it
//! panics. The moto process is killed by its PID when the guard drops, also when the
//! test panics.

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running moto server on a loopback port; stopped when dropped.
pub struct MotoServer {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        // Child::kill signals this child's PID only.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port nothing listens on (at the time of asking).
fn free_loopback_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free loopback port")
}

/// Starts moto on a free loopback port and waits until it listens (at most 60 s).
pub async fn start_moto() -> Option<MotoServer> {
    let Some(executable) = std::env::var_os("DRPLAN_MOTO_SERVER") else {
        assert!(
            std::env::var_os("DRPLAN_REQUIRE_MOTO").is_none(),
            "DRPLAN_REQUIRE_MOTO is set but DRPLAN_MOTO_SERVER (path of moto_server) is not"
        );
        // Straight to stderr: the test harness captures eprintln! of passing tests, and a
        // skip must be visible.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: set DRPLAN_MOTO_SERVER to a moto_server executable (pip install 'moto[server]==5.2.5') to run this test"
        );
        return None;
    };
    let port = free_loopback_port();
    let child = Command::new(&executable)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|error| panic!("start {executable:?}: {error}"));
    let moto = MotoServer {
        child,
        endpoint: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            Instant::now() < deadline,
            "moto did not listen on {port} within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Some(moto)
}
