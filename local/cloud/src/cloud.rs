//! The whole local cloud as one value: [`LocalCloud::start`] brings up moto, the DRS
//! simulator, `cargo lambda watch` (when there are functions) and the gateway; dropping
//! it, or [`LocalCloud::shutdown`], stops all of them.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, header};
use tokio::net::TcpListener;
use tokio::process::Command;

use crate::error::{LocalCloudError, Result};
use crate::gateway::{self, GatewayHandle, Upstreams};
use crate::process::SupervisedChild;
use crate::tools;
use crate::upstream::HttpClient;

/// The gateway port `drplan local up` uses unless told otherwise (LocalStack's, which
/// many tools already expect).
pub const DEFAULT_GATEWAY_PORT: u16 = 4566;

/// The account the local cloud plays (moto's default).
pub const LOCAL_ACCOUNT_ID: &str = "123456789012";

/// How long moto and `cargo lambda watch` get to start listening.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(90);

/// Which function binaries `cargo lambda watch` serves.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Functions {
    /// The function crates under `<repo>/functions/`; no `cargo lambda watch` if there are none.
    #[default]
    Workspace,
    /// The Cargo package or workspace in this directory (e.g. a test fixture).
    Manifest(PathBuf),
    /// No functions: Lambda Invoke answers ResourceNotFoundException.
    None,
}

/// How to start the local cloud. `Default` gives free ports and a fast simulator clock
/// (what tests want); `drplan local up` sets the port and a realistic clock.
#[derive(Clone, Debug)]
pub struct LocalCloudOptions {
    /// The gateway's port on 127.0.0.1; 0 picks a free one.
    pub gateway_port: u16,
    /// The drplan repository; found from the current directory when `None`.
    pub repo_root: Option<PathBuf>,
    pub functions: Functions,
    /// Whether `cargo lambda watch` rebuilds functions when their code changes.
    pub reload_functions: bool,
    pub region: String,
    pub account_id: String,
    /// The DRS simulator's clock: 1.0 is realistic, 0.01 turns minutes into seconds.
    pub time_scale: f64,
    /// Where the children's logs go; a fresh directory under the system's temp dir when `None`.
    pub log_dir: Option<PathBuf>,
    /// Print one line per gateway request on stderr.
    pub log_requests: bool,
    /// Ports the simulator serves (plain TCP/HTTP) on every recovered instance's
    /// loopback stand-ins whatever the plans probe. Empty (the default): only the ports
    /// that the plans stored or started through the gateway probe, on the instances of
    /// the waves that probe them (see the gateway's `watch`), so a fleet of thousands
    /// whose plan probes nothing holds no probe socket.
    pub probe_ports: Vec<u16>,
    /// Serve release builds of the functions (`cargo lambda watch --release`), what
    /// Lambda runs, instead of debug builds.
    pub release_functions: bool,
}

impl Default for LocalCloudOptions {
    fn default() -> Self {
        Self {
            gateway_port: 0,
            repo_root: None,
            functions: Functions::Workspace,
            reload_functions: false,
            region: "us-east-1".to_string(),
            account_id: "123456789012".to_string(),
            time_scale: 0.01,
            log_dir: None,
            log_requests: false,
            probe_ports: Vec::new(),
            release_functions: false,
        }
    }
}

/// A running local cloud.
pub struct LocalCloud {
    endpoint_url: String,
    moto_url: String,
    simulator_url: String,
    lambda_url: Option<String>,
    log_dir: PathBuf,
    /// The log directory was made for this run only: removed after a clean shutdown,
    /// kept after a failure (a drop without shutdown) for the post-mortem.
    log_dir_is_temporary: bool,
    region: String,
    // Stopped in this order on drop: the gateway first, so nothing new comes in.
    gateway: Option<GatewayHandle>,
    simulator: Option<drplan_drs_sim::SimHandle>,
    lambda: Option<SupervisedChild>,
    moto: Option<SupervisedChild>,
}

impl std::fmt::Debug for LocalCloud {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("LocalCloud")
            .field("endpoint_url", &self.endpoint_url)
            .field("moto_url", &self.moto_url)
            .field("simulator_url", &self.simulator_url)
            .field("lambda_url", &self.lambda_url)
            .field("log_dir", &self.log_dir)
            .finish_non_exhaustive()
    }
}

impl LocalCloud {
    /// Starts everything and returns once every part answers.
    ///
    /// The children are killed if the thread that started them ends (so that a crashed
    /// test leaves nothing behind): call this from the thread that owns the runtime (a
    /// `#[tokio::test]` body, `block_on`) or a runtime worker, not from `spawn_blocking`.
    pub async fn start(options: LocalCloudOptions) -> Result<Self> {
        let repo_root = match &options.repo_root {
            Some(root) => root.clone(),
            None => tools::find_repo_root(&std::env::current_dir()?)?,
        };
        let moto_server = tools::moto_server(&repo_root)?;
        let functions_dir = match &options.functions {
            Functions::Workspace if !tools::function_crates(&repo_root).is_empty() => {
                Some(repo_root.clone())
            }
            Functions::Workspace | Functions::None => None,
            Functions::Manifest(dir) => Some(dir.clone()),
        };
        let cargo_lambda = match functions_dir {
            Some(_) => Some(tools::cargo_lambda(&repo_root)?),
            None => None,
        };

        let gateway_listener = bind_loopback(options.gateway_port).await?;
        let gateway_addr = gateway_listener.local_addr()?;
        let endpoint_url = format!("http://{gateway_addr}");
        let log_dir = prepare_log_dir(options.log_dir.as_deref(), gateway_addr)?;

        let mut cloud = Self {
            endpoint_url: endpoint_url.clone(),
            moto_url: String::new(),
            simulator_url: String::new(),
            lambda_url: None,
            log_dir: log_dir.clone(),
            log_dir_is_temporary: options.log_dir.is_none(),
            region: options.region.clone(),
            gateway: None,
            simulator: None,
            lambda: None,
            moto: None,
        };
        let http = HttpClient::new();

        // From here on an error drops `cloud`, which stops whatever was started.
        let (moto, moto_url) =
            start_moto(&moto_server, gateway_addr.port(), &log_dir, &http).await?;
        cloud.moto = Some(moto);
        cloud.moto_url = moto_url.clone();
        enable_state_machine_execution(&http, &moto_url).await?;

        let simulator_listener = bind_loopback(0).await?;
        let simulator = drplan_drs_sim::spawn(
            simulator_listener,
            drplan_drs_sim::SimConfig {
                region: options.region.clone(),
                account_id: options.account_id.clone(),
                time_scale: options.time_scale,
                ec2_endpoint: Some(moto_url.clone()),
                // Through the gateway, so DRS events reach the rules' Lambda and Step
                // Functions targets.
                events_endpoint: Some(endpoint_url.clone()),
                probe_ports: options.probe_ports.clone(),
                ..Default::default()
            },
        )
        .await
        .map_err(|error| LocalCloudError::Simulator(error.to_string()))?;
        cloud.simulator_url = format!("http://{}", simulator.addr());
        cloud.simulator = Some(simulator);

        let mut lambda_functions = BTreeSet::new();
        if let (Some(cargo_lambda), Some(functions_dir)) = (cargo_lambda, functions_dir) {
            lambda_functions = served_functions(&functions_dir).await?;
            let (lambda, lambda_url) = start_cargo_lambda_watch(
                &cargo_lambda,
                &functions_dir,
                &endpoint_url,
                &options,
                &log_dir,
            )
            .await?;
            cloud.lambda = Some(lambda);
            cloud.lambda_url = Some(lambda_url);
        }

        let gateway = gateway::serve(
            gateway_listener,
            Upstreams {
                moto: moto_url,
                simulator: cloud.simulator_url.clone(),
                lambda: cloud.lambda_url.clone(),
                lambda_functions,
                default_region: options.region.clone(),
                account_id: options.account_id.clone(),
            },
            options.log_requests,
        )
        .await?;
        cloud.gateway = Some(gateway);
        Ok(cloud)
    }

    /// The one address every client uses (`AWS_ENDPOINT_URL`).
    pub fn endpoint_url(&self) -> &str {
        &self.endpoint_url
    }

    /// moto itself, bypassing the gateway.
    pub fn moto_url(&self) -> &str {
        &self.moto_url
    }

    /// The DRS simulator itself, bypassing the gateway.
    pub fn simulator_url(&self) -> &str {
        &self.simulator_url
    }

    /// `cargo lambda watch`, when functions are served.
    pub fn lambda_url(&self) -> Option<&str> {
        self.lambda_url.as_deref()
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    /// Where moto's and `cargo lambda watch`'s output goes.
    pub fn log_dir(&self) -> &Path {
        &self.log_dir
    }

    /// The process ids of the children (moto, `cargo lambda watch`); each is also the id
    /// of the process group holding everything that child started.
    pub fn child_pids(&self) -> Vec<u32> {
        [self.moto.as_ref(), self.lambda.as_ref()]
            .into_iter()
            .flatten()
            .map(SupervisedChild::pid)
            .collect()
    }

    /// The process id of `cargo lambda watch`, when functions are served; it leads the
    /// process group that holds the function processes it started.
    pub fn functions_pid(&self) -> Option<u32> {
        self.lambda.as_ref().map(SupervisedChild::pid)
    }

    /// The file descriptors the local cloud holds open now. The gateway and the DRS
    /// simulator (with its probe listeners) run in this process, so its count is theirs
    /// plus whatever else the process has open (a test's own clients, other clouds of
    /// the same test binary); moto runs in its own. Linux only (reads `/proc`).
    pub fn open_descriptors(&self) -> Result<OpenDescriptors> {
        let moto = match &self.moto {
            Some(moto) => count_descriptors(&format!("/proc/{}/fd", moto.pid()))?,
            None => 0,
        };
        Ok(OpenDescriptors {
            this_process: count_descriptors("/proc/self/fd")?,
            limit: descriptor_limit(),
            moto,
            probe_listeners: self
                .simulator
                .as_ref()
                .map_or(0, drplan_drs_sim::SimHandle::probe_listener_count),
        })
    }

    /// `Err` if a child process has died since the start.
    pub fn check_children(&mut self) -> Result<()> {
        for child in [self.moto.as_mut(), self.lambda.as_mut()]
            .into_iter()
            .flatten()
        {
            child.check_running()?;
        }
        Ok(())
    }

    /// Stops the gateway, the simulator and every child process (and their children).
    pub async fn shutdown(mut self) {
        if let Some(gateway) = self.gateway.take() {
            gateway.shutdown().await;
        }
        if let Some(simulator) = self.simulator.take() {
            simulator.shutdown().await;
        }
        if let Some(lambda) = self.lambda.take() {
            lambda.stop().await;
        }
        if let Some(moto) = self.moto.take() {
            moto.stop().await;
        }
        if self.log_dir_is_temporary {
            let _ = std::fs::remove_dir_all(&self.log_dir);
        }
    }
}

/// Open file descriptors of the local cloud, from [`LocalCloud::open_descriptors`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenDescriptors {
    /// This process's: the gateway's and the simulator's sockets (probe listeners
    /// included), and anything else the process holds.
    pub this_process: usize,
    /// This process's limit (`RLIMIT_NOFILE`, soft): past it, opening a socket fails
    /// with "Too many open files".
    pub limit: u64,
    /// moto_server's.
    pub moto: usize,
    /// The simulator's probe listeners (one listening socket each), part of
    /// `this_process`.
    pub probe_listeners: usize,
}

/// Entries of a `/proc/PID/fd` directory, less the one reading it opens when it is
/// this process's.
fn count_descriptors(directory: &str) -> Result<usize> {
    let io_error = |source| LocalCloudError::Io {
        path: PathBuf::from(directory),
        source,
    };
    let mut count: usize = 0;
    for entry in std::fs::read_dir(directory).map_err(io_error)? {
        entry.map_err(io_error)?;
        count += 1;
    }
    Ok(if directory == "/proc/self/fd" {
        count.saturating_sub(1)
    } else {
        count
    })
}

#[allow(unsafe_code)] // libc calls, each with its SAFETY comment
fn descriptor_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct it is given and reads nothing else.
    let status = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    if status == 0 { limit.rlim_cur } else { 0 }
}

/// Binds 127.0.0.1:`port` (0 for a free port).
async fn bind_loopback(port: u16) -> Result<TcpListener> {
    TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .map_err(|source| LocalCloudError::Spawn {
            what: format!("a listener on 127.0.0.1:{port}"),
            source,
        })
}

/// A port that was free a moment ago, for children that bind their own listener.
async fn free_port() -> Result<u16> {
    Ok(bind_loopback(0).await?.local_addr()?.port())
}

fn prepare_log_dir(requested: Option<&Path>, gateway_addr: SocketAddr) -> Result<PathBuf> {
    let dir = match requested {
        Some(dir) => dir.to_path_buf(),
        None => std::env::temp_dir().join(format!(
            "drplan-local-{}-{}",
            std::process::id(),
            gateway_addr.port()
        )),
    };
    std::fs::create_dir_all(&dir).map_err(|source| LocalCloudError::Io {
        path: dir.clone(),
        source,
    })?;
    Ok(dir)
}

/// Environment every child gets: loopback only, never through a proxy, and fake
/// credentials so that no SDK goes looking for real ones.
fn loopback_only_environment(command: &mut Command) {
    for proxy in [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ] {
        command.env_remove(proxy);
    }
    command
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .env("AWS_ACCESS_KEY_ID", "drplanlocal")
        .env("AWS_SECRET_ACCESS_KEY", "drplanlocal")
        .env("AWS_EC2_METADATA_DISABLED", "true");
}

async fn start_moto(
    moto_server: &Path,
    gateway_port: u16,
    log_dir: &Path,
    http: &HttpClient,
) -> Result<(SupervisedChild, String)> {
    // The port is picked, then bound by moto: another process can take it in between,
    // so a start that fails on the port is tried again on another one.
    let mut attempts_left = 3;
    loop {
        attempts_left -= 1;
        let port = free_port().await?;
        let mut command = Command::new(moto_server);
        command.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
        loopback_only_environment(&mut command);
        // moto's Step Functions engine calls Lambda (and aws-sdk integrations such as
        // DRS) with boto3 at http://localhost:$MOTO_PORT; pointing that at the gateway
        // routes those calls to cargo lambda watch and the simulator.
        command.env("MOTO_PORT", gateway_port.to_string());
        let log = log_dir.join("moto.log");
        let mut moto = SupervisedChild::spawn("moto_server", command, &log)?;
        let url = format!("http://127.0.0.1:{port}");
        match wait_until_answering(&mut moto, http, &format!("{url}/moto-api/")).await {
            Ok(()) => return Ok((moto, url)),
            Err(LocalCloudError::ChildExitedEarly { log_tail, .. })
                if attempts_left > 0 && log_tail.contains("Address already in use") => {}
            Err(error) => return Err(error),
        }
    }
}

async fn enable_state_machine_execution(http: &HttpClient, moto_url: &str) -> Result<()> {
    let url = format!("{moto_url}/moto-api/config");
    let request = Request::builder()
        .method(Method::POST)
        .uri(&url)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from_static(
            br#"{"stepfunctions": {"execute_state_machine": true}}"#,
        )))
        .map_err(|error| LocalCloudError::Http {
            url: url.clone(),
            message: error.to_string(),
        })?;
    let answer = http.send(request).await?;
    // moto 5.2.5 stores the setting but echoes only its batch and lambda settings, so
    // the status is all there is to check here; the tests run a state machine.
    if answer.status.is_success() {
        Ok(())
    } else {
        Err(LocalCloudError::UnexpectedAnswer {
            service: "moto",
            operation: "POST /moto-api/config".to_string(),
            problem: format!("{}: {}", answer.status, answer.body_text()),
        })
    }
}

/// The binaries of the Cargo workspace (or package) in `dir`, every one of which
/// `cargo lambda watch` serves as a function of that name.
async fn served_functions(dir: &Path) -> Result<BTreeSet<String>> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(&cargo)
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--offline",
        ])
        .current_dir(dir)
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|source| LocalCloudError::Spawn {
            what: "cargo metadata (the functions cargo lambda watch serves)".to_owned(),
            source,
        })?;
    let unexpected = |problem: String| LocalCloudError::UnexpectedAnswer {
        service: "cargo",
        operation: format!("metadata in {}", dir.display()),
        problem,
    };
    if !output.status.success() {
        return Err(unexpected(format!(
            "{}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).map_err(|e| unexpected(e.to_string()))?;
    Ok(metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|package| package["targets"].as_array().into_iter().flatten())
        .filter(|target| {
            target["kind"]
                .as_array()
                .is_some_and(|kinds| kinds.iter().any(|k| k == "bin"))
        })
        .filter_map(|target| target["name"].as_str().map(str::to_owned))
        .collect())
}

async fn start_cargo_lambda_watch(
    cargo_lambda: &Path,
    functions_dir: &Path,
    endpoint_url: &str,
    options: &LocalCloudOptions,
    log_dir: &Path,
) -> Result<(SupervisedChild, String)> {
    let port = free_port().await?;
    let mut command = Command::new(cargo_lambda);
    command
        .args(["lambda", "watch", "--invoke-address", "127.0.0.1"])
        .args(["--invoke-port", &port.to_string()])
        .current_dir(functions_dir);
    if !options.reload_functions {
        command.arg("--ignore-changes");
    }
    if options.release_functions {
        command.arg("--release");
    }
    loopback_only_environment(&mut command);
    // The functions' own AWS SDK clients must call the local cloud, not AWS.
    command
        .env("AWS_ENDPOINT_URL", endpoint_url)
        .env("AWS_REGION", &options.region)
        .env("AWS_DEFAULT_REGION", &options.region)
        // What the stack's template gives the functions in AWS.
        .env("DRPLAN_BUCKET", crate::stack::BUCKET)
        // Health probes go to each instance's loopback stand-in (127.b.c.d), served by
        // the DRS simulator: never to the private addresses moto hands out.
        .env("DRPLAN_PROBE_LOOPBACK", "1")
        .env(
            "DRPLAN_TOPIC_ARN",
            format!(
                "arn:aws:sns:{}:{}:drplan-notifications",
                options.region, options.account_id
            ),
        )
        // The trigger function: the state machines it starts (the template derives these
        // ARNs the same way), one RetryDataReplication per stall, and escalations after
        // 6 s instead of the template's 30 min, so local runs show them.
        .env(
            "DRPLAN_STATE_MACHINE_ARN",
            format!(
                "arn:aws:states:{}:{}:stateMachine:{}",
                options.region,
                options.account_id,
                crate::stack::RECOVERY_STATE_MACHINE
            ),
        )
        .env(
            "DRPLAN_ESCALATION_STATE_MACHINE_ARN",
            format!(
                "arn:aws:states:{}:{}:stateMachine:{}",
                options.region,
                options.account_id,
                crate::stack::ESCALATION_STATE_MACHINE
            ),
        )
        // Scheduled drills: the schedules' group and role, and the readiness function
        // they invoke (the template names it STACK-readiness; locally it is `readiness`).
        .env(
            "DRPLAN_DRILL_SCHEDULE_GROUP",
            crate::stack::DRILL_SCHEDULE_GROUP,
        )
        .env(
            "DRPLAN_DRILL_SCHEDULER_ROLE_ARN",
            format!(
                "arn:aws:iam::{}:role/{}",
                options.account_id,
                crate::stack::DRILL_SCHEDULER_ROLE
            ),
        )
        .env(
            "DRPLAN_READINESS_FUNCTION_ARN",
            format!(
                "arn:aws:lambda:{}:{}:function:readiness",
                options.region, options.account_id
            ),
        )
        // Only the stack's account's events act (the template sets it from AWS::AccountId).
        .env("DRPLAN_ACCOUNT_ID", &options.account_id)
        .env("DRPLAN_STALL_RETRY_REPLICATION", "true")
        .env("DRPLAN_STALL_ESCALATE_MINUTES", "0.1")
        // The bucket is addressed by path: virtual-host names would not resolve to loopback.
        .env("AWS_S3_FORCE_PATH_STYLE", "true");
    let log = log_dir.join("cargo-lambda-watch.log");
    let mut watch = SupervisedChild::spawn("cargo lambda watch", command, &log)?;
    let url = format!("http://127.0.0.1:{port}");
    wait_until_listening(&mut watch, port).await?;
    Ok((watch, url))
}

/// Polls `url` until it answers, failing early if the child dies.
async fn wait_until_answering(
    child: &mut SupervisedChild,
    http: &HttpClient,
    url: &str,
) -> Result<()> {
    let started = Instant::now();
    loop {
        child.check_running()?;
        let request = Request::builder()
            .uri(url)
            .body(Full::new(Bytes::new()))
            .map_err(|error| LocalCloudError::Http {
                url: url.to_string(),
                message: error.to_string(),
            })?;
        if let Ok(answer) = http.send(request).await
            && answer.status.is_success()
        {
            return Ok(());
        }
        if started.elapsed() > STARTUP_TIMEOUT {
            return Err(not_ready(child));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until something accepts connections on 127.0.0.1:`port`, failing early if the
/// child dies.
async fn wait_until_listening(child: &mut SupervisedChild, port: u16) -> Result<()> {
    let started = Instant::now();
    loop {
        child.check_running()?;
        if tokio::net::TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port)))
            .await
            .is_ok()
        {
            return Ok(());
        }
        if started.elapsed() > STARTUP_TIMEOUT {
            return Err(not_ready(child));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn not_ready(child: &SupervisedChild) -> LocalCloudError {
    LocalCloudError::NotReady {
        what: child.name().to_string(),
        seconds: STARTUP_TIMEOUT.as_secs(),
        log: child.log_path().to_path_buf(),
    }
}
