//! Child processes of the local cloud, each the leader of its own process group so that
//! stopping it also stops whatever it started (`cargo lambda watch` runs cargo, which
//! runs the function binaries).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::error::{LocalCloudError, Result};

/// How long a child gets to exit after SIGTERM before its whole group gets SIGKILL.
const TERMINATE_GRACE: Duration = Duration::from_secs(3);

/// A running child process, stopped (with its process group) when dropped.
#[derive(Debug)]
pub struct SupervisedChild {
    name: String,
    pid: u32,
    log_path: PathBuf,
    child: Option<Child>,
}

impl SupervisedChild {
    /// Starts `command` in a new process group, its stdout and stderr appended to `log_path`.
    #[allow(unsafe_code)] // libc calls, each with its SAFETY comment
    pub fn spawn(name: &str, mut command: Command, log_path: &Path) -> Result<Self> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path)
            .map_err(|source| LocalCloudError::Io {
                path: log_path.to_path_buf(),
                source,
            })?;
        let log_for_stderr = log.try_clone().map_err(|source| LocalCloudError::Io {
            path: log_path.to_path_buf(),
            source,
        })?;
        command
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_for_stderr)
            .process_group(0);
        // SAFETY: the closure only calls prctl(2), which is async-signal-safe.
        // Why: if the supervisor dies without running its destructors (SIGKILL, abort), the
        // kernel still kills the child, so no moto or cargo-lambda outlives a crashed test.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().map_err(|source| LocalCloudError::Spawn {
            what: name.to_string(),
            source,
        })?;
        let pid = child.id().ok_or_else(|| LocalCloudError::Spawn {
            what: name.to_string(),
            source: std::io::Error::other("the child exited at once"),
        })?;
        Ok(Self {
            name: name.to_string(),
            pid,
            log_path: log_path.to_path_buf(),
            child: Some(child),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The child's process id, which is also its process group id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// `Err` with the end of the child's log if it has already exited.
    pub fn check_running(&mut self) -> Result<()> {
        let Some(child) = self.child.as_mut() else {
            return Err(self.exited_early("stopped".to_string()));
        };
        match child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(self.exited_early(status.to_string())),
            Err(error) => Err(self.exited_early(error.to_string())),
        }
    }

    fn exited_early(&self, status: String) -> LocalCloudError {
        LocalCloudError::ChildExitedEarly {
            what: self.name.clone(),
            status,
            log: self.log_path.clone(),
            log_tail: log_tail(&self.log_path, 20),
        }
    }

    /// SIGTERM to the group, SIGKILL to whatever is left after a grace period.
    pub async fn stop(mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        signal_group(self.pid, libc::SIGTERM);
        if tokio::time::timeout(TERMINATE_GRACE, child.wait())
            .await
            .is_err()
        {
            signal_group(self.pid, libc::SIGKILL);
            let _ = child.wait().await;
        }
        // Grandchildren that ignored SIGTERM are still in the group after the leader exits.
        signal_group(self.pid, libc::SIGKILL);
    }

    /// The synchronous version of [`stop`](Self::stop), for destructors.
    fn stop_blocking(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        signal_group(self.pid, libc::SIGTERM);
        let deadline = std::time::Instant::now() + TERMINATE_GRACE;
        loop {
            match child.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if std::time::Instant::now() >= deadline => {
                    signal_group(self.pid, libc::SIGKILL);
                    break;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        signal_group(self.pid, libc::SIGKILL);
        // Reap it if it is gone already; otherwise tokio's orphan reaper will.
        let _ = child.try_wait();
    }
}

impl Drop for SupervisedChild {
    fn drop(&mut self) {
        self.stop_blocking();
    }
}

#[allow(unsafe_code)] // libc calls, each with its SAFETY comment
fn signal_group(pgid: u32, signal: libc::c_int) {
    let Ok(pgid) = libc::pid_t::try_from(pgid) else {
        return;
    };
    // SAFETY: kill(2) with a negative pid signals a process group; no memory is involved.
    unsafe {
        libc::kill(-pgid, signal);
    }
}

/// Whether any process of the given process group is still alive (zombies included).
#[allow(unsafe_code)] // libc calls, each with its SAFETY comment
pub fn process_group_alive(pgid: u32) -> bool {
    let Ok(pgid) = libc::pid_t::try_from(pgid) else {
        return false;
    };
    // SAFETY: signal 0 only checks for existence and permission.
    unsafe { libc::kill(-pgid, 0) == 0 }
}

/// Whether a process with this id exists and is not a zombie.
pub fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state is the first field after the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
