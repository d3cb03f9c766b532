use std::path::PathBuf;

/// Everything that can go wrong in the local cloud, from finding its tools to seeding it.
#[derive(Debug, thiserror::Error)]
pub enum LocalCloudError {
    /// Deploying drplan's stack (bucket, state machines) into the local cloud failed.
    #[error("deploying the stack: {0}")]
    Deploy(String),

    #[error(
        "{tool} is not installed: looked for {looked_at} (set {env_override} to use another). \
         Install the local cloud's tools with: scripts/install-local-cloud"
    )]
    ToolMissing {
        tool: &'static str,
        looked_at: PathBuf,
        env_override: &'static str,
    },

    #[error(
        "cannot find the drplan workspace (a Cargo.toml with [workspace]) above {searched_from}; \
         run from inside the repository or set DRPLAN_REPO_ROOT"
    )]
    WorkspaceNotFound { searched_from: PathBuf },

    #[error("could not start {what}: {source}")]
    Spawn {
        what: String,
        #[source]
        source: std::io::Error,
    },

    #[error("{what} exited before it was ready ({status}); last lines of {log}:\n{log_tail}")]
    ChildExitedEarly {
        what: String,
        status: String,
        log: PathBuf,
        log_tail: String,
    },

    #[error("{what} was not ready after {seconds} s; see {log}")]
    NotReady {
        what: String,
        seconds: u64,
        log: PathBuf,
    },

    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("network error: {0}")]
    Net(#[from] std::io::Error),

    #[error("the DRS simulator failed: {0}")]
    Simulator(String),

    #[error("request to {url} failed: {message}")]
    Http { url: String, message: String },

    #[error("{service} answered {status} to {operation}: {body}")]
    AwsCall {
        service: &'static str,
        operation: String,
        status: u16,
        body: String,
    },

    #[error("unexpected answer from {service} to {operation}: {problem}")]
    UnexpectedAnswer {
        service: &'static str,
        operation: String,
        problem: String,
    },

    #[error("{path}: {problem}")]
    InvalidFile { path: PathBuf, problem: String },

    #[error("invalid input: {0}")]
    InvalidInput(String),
}

pub type Result<T, E = LocalCloudError> = std::result::Result<T, E>;
