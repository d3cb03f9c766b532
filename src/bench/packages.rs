//! Section 3: the Lambda zip of each function (`cargo lambda build`), arm64 when this
//! machine can build it, else x86_64.

use std::path::Path;

use drplan_local::tools;

use super::{run_tool, say};

#[derive(Debug, Default)]
pub(super) enum Packages {
    #[default]
    Skipped,
    Built {
        /// The target the zips are for, and why it is not arm64 if it is not.
        target: String,
        note: Option<String>,
        zips: Vec<(String, Option<u64>)>,
    },
    Failed(String),
}

pub(super) fn build_packages(
    repo_root: &Path,
    functions: &[String],
    commands: &mut Vec<String>,
) -> Packages {
    let cargo_lambda = match tools::cargo_lambda(repo_root) {
        Ok(path) => path,
        Err(e) => return Packages::Failed(e.to_string()),
    };
    // cargo lambda finds zig (its cross linker) on PATH; the installer puts it in .venv/bin.
    let path = format!(
        "{}:{}",
        repo_root.join(".venv/bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut note = None;
    for (flag, target) in [
        ("--arm64", "arm64 (aarch64-unknown-linux-gnu)"),
        ("--x86-64", "x86_64"),
    ] {
        let mut args = vec![
            "lambda",
            "build",
            "--release",
            flag,
            "--output-format",
            "zip",
        ];
        for function in functions {
            args.push("-p");
            args.push(function);
        }
        say(&format!(
            "building the Lambda zips: cargo lambda {} (the first time takes long)",
            args[1..].join(" ")
        ));
        commands.push(format!("cargo {}", args.join(" ")));
        match run_tool(repo_root, &cargo_lambda, &args, &[("PATH", path.clone())]) {
            Ok(()) => {
                let zips = functions
                    .iter()
                    .map(|f| {
                        let zip = repo_root
                            .join("target/lambda")
                            .join(f)
                            .join("bootstrap.zip");
                        (f.clone(), std::fs::metadata(zip).ok().map(|m| m.len()))
                    })
                    .collect();
                return Packages::Built {
                    target: target.to_owned(),
                    note,
                    zips,
                };
            }
            Err(e) if flag == "--arm64" => {
                say(&format!(
                    "the arm64 build failed: {e:#}; measuring x86_64 instead"
                ));
                note = Some(format!("arm64 could not be built here: {e:#}"));
            }
            Err(e) => {
                return Packages::Failed(format!(
                    "{}{e:#}",
                    note.map(|n| format!("{n}; ")).unwrap_or_default()
                ));
            }
        }
    }
    Packages::Failed("no target built".into())
}
