//! A simulator of the AWS Elastic Disaster Recovery (DRS) API, for drplan's local cloud.
//!
//! DRS has no emulator anywhere, so drplan brings its own. The simulator speaks DRS's real
//! wire format (restJson1: `POST /OperationName` with a JSON body, tags at
//! `/tags/{resourceArn}`, errors as an HTTP status plus `x-amzn-ErrorType`), so that
//! `aws-sdk-drs` and boto3 work against it unchanged. Behind the API it keeps source servers,
//! jobs with their log, recovery instances, point-in-time snapshots and launch
//! configurations in memory, runs each job's lifecycle on timers scaled by
//! [`SimConfig::time_scale`], creates and terminates real EC2 instances in moto when
//! [`SimConfig::ec2_endpoint`] is set, and puts DRS events on EventBridge when
//! [`SimConfig::events_endpoint`] is set.
//!
//! A JSON control API on the same listener, under `/_drplan/`, seeds source servers, injects
//! faults, shows the state and records every DRS call; `local/drs-sim/README.md` documents it.
//!
//! ```no_run
//! # async fn demo() -> Result<(), drplan_drs_sim::SimError> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let sim = drplan_drs_sim::spawn(
//!     listener,
//!     drplan_drs_sim::SimConfig { time_scale: 0.01, ..Default::default() },
//! )
//! .await?;
//! let endpoint = format!("http://{}", sim.addr()); // give this to aws-sdk-drs or boto3
//! # let _ = endpoint;
//! sim.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod api;
mod clock;
mod control;
mod drs;
mod ec2_states;
mod failback;
mod faults;
mod ids;
mod lifecycle;
mod listeners;
mod model;
#[cfg(feature = "test-support")]
pub mod moto;
mod outbound;
mod probe_ports;
mod reverse;
mod sim;
mod templates;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How the simulator behaves. Build it with struct-update syntax from [`Default`]
/// (`SimConfig { time_scale: 0.01, ..Default::default() }`) so that new fields do not break
/// callers.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The home Region, e.g. `us-east-1`: seeded servers live in its DRS, and EC2 calls
    /// about its resources and EventBridge PutEvents are signed for it. The DRS of every
    /// other Region a request is signed for is served too; EC2 calls about resources of
    /// another Region (a reversed server's template, launches and terminations) are
    /// signed for that Region, whose EC2 moto keeps apart.
    pub region: String,
    /// Twelve-digit account ID in ARNs and events.
    pub account_id: String,
    /// Multiplies every phase duration: 1.0 is realistic (a launch takes minutes), 0.01 runs
    /// a launch in a few seconds for tests. Must be finite and not negative.
    pub time_scale: f64,
    /// moto's endpoint, e.g. `http://127.0.0.1:5000`. When set, a launched server becomes a
    /// real EC2 instance there (RunInstances) and termination calls TerminateInstances.
    pub ec2_endpoint: Option<String>,
    /// EventBridge PutEvents endpoint (moto or the local gateway). When set, launch results
    /// and replication stalls are put there as the DRS events AWS documents.
    pub events_endpoint: Option<String>,
    /// The DRS quotas that StartRecovery enforces.
    pub quotas: DrsQuotas,
    /// Unscaled phase durations; [`SimConfig::time_scale`] multiplies them.
    pub phases: PhaseDurations,
    /// Ports every running recovery instance serves on its loopback stand-in (private
    /// IPv4 `a.b.c.d` → `127.b.c.d`, and its public IPv4's stand-in by the same rule)
    /// for health probes: TCP accept, HTTP `200 ok` on any path. Empty (the default):
    /// only the ports of the probe sets declared at run time
    /// (`PUT /_drplan/probe-ports/{name}`), so an instance that nothing probes holds no
    /// socket.
    pub probe_ports: Vec<u16>,
    /// Those of [`SimConfig::probe_ports`] that speak HTTPS (TLS with a self-signed
    /// certificate made at start) instead of plain HTTP.
    pub tls_probe_ports: Vec<u16>,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            region: "us-east-1".to_owned(),
            account_id: "123456789012".to_owned(),
            time_scale: 1.0,
            ec2_endpoint: None,
            events_endpoint: None,
            quotas: DrsQuotas::default(),
            phases: PhaseDurations::default(),
            probe_ports: Vec::new(),
            tls_probe_ports: Vec::new(),
        }
    }
}

/// DRS service quotas. The defaults are AWS's default quotas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrsQuotas {
    /// Source servers in one StartRecovery (one job); more is a ValidationException.
    pub max_servers_per_job: usize,
    /// Source servers across all active (PENDING or STARTED) jobs; more is a
    /// ServiceQuotaExceededException.
    pub max_servers_in_active_jobs: usize,
    /// Active jobs at once; more is a ServiceQuotaExceededException.
    pub max_concurrent_jobs: usize,
}

impl Default for DrsQuotas {
    fn default() -> Self {
        Self {
            max_servers_per_job: 100,
            max_servers_in_active_jobs: 500,
            max_concurrent_jobs: 20,
        }
    }
}

/// How long each phase of a job takes before [`SimConfig::time_scale`] is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhaseDurations {
    /// From StartRecovery (job PENDING) to the job STARTED.
    pub job_start: Duration,
    /// Taking a point-in-time snapshot (skipped when a recoverySnapshotID is given).
    pub snapshot: Duration,
    /// Converting the snapshot's volumes on a conversion server.
    pub conversion: Duration,
    /// Launching and booting the recovery instance.
    pub launch: Duration,
    /// Terminating a recovery instance (TerminateRecoveryInstances jobs).
    pub terminate: Duration,
    /// Replicating a recovery instance back: from a Failback Client's connection to
    /// FAILBACK_READY_FOR_LAUNCH, and from ReverseReplication to CONTINUOUS.
    pub failback_sync: Duration,
}

impl Default for PhaseDurations {
    fn default() -> Self {
        Self {
            job_start: Duration::from_secs(10),
            snapshot: Duration::from_secs(60),
            conversion: Duration::from_secs(5 * 60),
            launch: Duration::from_secs(2 * 60),
            terminate: Duration::from_secs(60),
            failback_sync: Duration::from_secs(10 * 60),
        }
    }
}

/// Everything that can go wrong starting the simulator.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The configuration cannot work (e.g. a negative time scale, a non-loopback endpoint).
    #[error("invalid simulator configuration: {0}")]
    InvalidConfig(String),
    /// The listener could not be used.
    #[error("simulator listener: {0}")]
    Io(#[from] std::io::Error),
}

/// A running simulator. Dropping it stops the server and every background job task;
/// [`SimHandle::shutdown`] does the same and waits for the server to finish.
pub struct SimHandle {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    server_task: Option<JoinHandle<()>>,
    sim: Arc<sim::Simulator>,
}

impl SimHandle {
    /// The address the simulator listens on; the DRS endpoint is `http://{addr}`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many probe listeners (listening sockets, one file descriptor each) are open
    /// now, over every recovery instance.
    pub fn probe_listener_count(&self) -> usize {
        self.sim.listeners.count()
    }

    /// Stops accepting requests, stops every job task, and waits (a bounded time) for
    /// requests in flight to finish.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        self.sim.stop_background_tasks();
        self.sim.listeners.close_all();
        if let Some(task) = self.server_task.take() {
            let abort = task.abort_handle();
            // Keep-alive connections from clients that never close would hold graceful
            // shutdown open forever; give requests in flight a moment, then cut.
            if tokio::time::timeout(Duration::from_secs(2), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        self.sim.stop_background_tasks();
        self.sim.listeners.close_all();
        if let Some(task) = self.server_task.take() {
            task.abort();
        }
    }
}

/// Starts the simulator on `listener` (bind it to a loopback address, port 0 for a free
/// one) and returns at once; requests are served on the current tokio runtime.
pub async fn spawn(
    listener: tokio::net::TcpListener,
    config: SimConfig,
) -> Result<SimHandle, SimError> {
    validate_config(&config)?;
    let addr = listener.local_addr()?;
    let simulator = Arc::new(sim::Simulator::new(config));
    let router = api::router(simulator.clone());
    let (stop, mut stopped) = watch::channel(false);
    let server_task = tokio::spawn(async move {
        let serve = axum::serve(listener, router).with_graceful_shutdown(async move {
            // Either a stop signal or the handle being gone ends the server.
            let _ = stopped.wait_for(|stop| *stop).await;
        });
        if let Err(error) = serve.await {
            eprintln!("drs-sim: server stopped: {error}");
        }
    });
    Ok(SimHandle {
        addr,
        stop,
        server_task: Some(server_task),
        sim: simulator,
    })
}

fn validate_config(config: &SimConfig) -> Result<(), SimError> {
    if !config.time_scale.is_finite() || config.time_scale < 0.0 {
        return Err(SimError::InvalidConfig(format!(
            "time_scale must be a finite number >= 0, got {}",
            config.time_scale
        )));
    }
    if config.account_id.len() != 12 || !config.account_id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SimError::InvalidConfig(format!(
            "account_id must be 12 digits, got {:?}",
            config.account_id
        )));
    }
    if config.region.is_empty() {
        return Err(SimError::InvalidConfig(
            "region must not be empty".to_owned(),
        ));
    }
    for (name, endpoint) in [
        ("ec2_endpoint", &config.ec2_endpoint),
        ("events_endpoint", &config.events_endpoint),
    ] {
        if let Some(endpoint) = endpoint {
            outbound::Endpoint::parse(endpoint)
                .map_err(|reason| SimError::InvalidConfig(format!("{name}: {reason}")))?;
        }
    }
    let quotas = &config.quotas;
    if quotas.max_servers_per_job == 0
        || quotas.max_servers_in_active_jobs == 0
        || quotas.max_concurrent_jobs == 0
    {
        return Err(SimError::InvalidConfig(
            "every quota must be at least 1".to_owned(),
        ));
    }
    Ok(())
}
