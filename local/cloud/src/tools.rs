//! Where the local cloud's external tools live: the project-local virtual environment
//! that `scripts/install-local-cloud` fills, unless an environment variable says otherwise.

use std::path::{Path, PathBuf};

use crate::error::{LocalCloudError, Result};

/// Overrides the path of `moto_server`.
pub const MOTO_SERVER_ENV: &str = "DRPLAN_MOTO_SERVER";
/// Overrides the path of `cargo-lambda`.
pub const CARGO_LAMBDA_ENV: &str = "DRPLAN_CARGO_LAMBDA";
/// Overrides where the drplan repository (the Cargo workspace) is.
pub const REPO_ROOT_ENV: &str = "DRPLAN_REPO_ROOT";

/// The drplan repository root: `DRPLAN_REPO_ROOT`, or the nearest directory at or above
/// `start` whose Cargo.toml declares a `[workspace]`.
pub fn find_repo_root(start: &Path) -> Result<PathBuf> {
    if let Some(root) = std::env::var_os(REPO_ROOT_ENV) {
        return Ok(PathBuf::from(root));
    }
    let mut dir = Some(start);
    while let Some(candidate) = dir {
        let manifest = candidate.join("Cargo.toml");
        if let Ok(text) = std::fs::read_to_string(&manifest)
            && text.lines().any(|line| line.trim() == "[workspace]")
        {
            return Ok(candidate.to_path_buf());
        }
        dir = candidate.parent();
    }
    Err(LocalCloudError::WorkspaceNotFound {
        searched_from: start.to_path_buf(),
    })
}

/// The `moto_server` executable to run.
pub fn moto_server(repo_root: &Path) -> Result<PathBuf> {
    locate("moto_server", MOTO_SERVER_ENV, repo_root)
}

/// The `cargo-lambda` executable to run (invoked as `cargo-lambda lambda watch ...`).
pub fn cargo_lambda(repo_root: &Path) -> Result<PathBuf> {
    locate("cargo-lambda", CARGO_LAMBDA_ENV, repo_root)
}

fn locate(tool: &'static str, env_override: &'static str, repo_root: &Path) -> Result<PathBuf> {
    let path = match std::env::var_os(env_override) {
        Some(path) => PathBuf::from(path),
        None => repo_root.join(".venv").join("bin").join(tool),
    };
    if is_executable(&path) {
        Ok(path)
    } else {
        Err(LocalCloudError::ToolMissing {
            tool,
            looked_at: path,
            env_override,
        })
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// The function crates under `<repo>/functions/`: each directory with a Cargo.toml.
/// `cargo lambda watch` is only worth starting when there is at least one.
pub fn function_crates(repo_root: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(repo_root.join("functions")) else {
        return Vec::new();
    };
    let mut crates: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|dir| dir.join("Cargo.toml").is_file())
        .collect();
    crates.sort();
    crates
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_tool_names_the_install_command() {
        let root = Path::new("/nonexistent-drplan-repo");
        let error = locate("moto_server", "DRPLAN_TEST_UNSET_VARIABLE", root)
            .expect_err("no tool can be there");
        let message = error.to_string();
        assert!(message.contains("scripts/install-local-cloud"), "{message}");
        assert!(
            message.contains("/nonexistent-drplan-repo/.venv/bin/moto_server"),
            "{message}"
        );
    }

    #[test]
    fn the_repo_root_is_the_workspace_above_this_crate() {
        let here = Path::new(env!("CARGO_MANIFEST_DIR"));
        let root = find_repo_root(here).expect("this crate is in the drplan workspace");
        assert!(root.join("local/cloud").is_dir());
    }
}
