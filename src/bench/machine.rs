//! The machine the bench ran on, for the report.

use std::path::Path;

use drplan_local::tools;

#[derive(Debug, Default)]
pub(super) struct Machine {
    pub(super) cpus: usize,
    pub(super) cpu_model: String,
    pub(super) memory: String,
    pub(super) os: String,
    pub(super) kernel: String,
    pub(super) rustc: String,
    pub(super) cargo_lambda: String,
}

pub(super) fn machine(repo_root: &Path) -> Machine {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let cpu_model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .and_then(|r| r.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    let memory = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|r| r.split_whitespace().next()?.parse::<f64>().ok())
        .map(|kib| format!("{:.1} GiB", kib / 1024.0 / 1024.0))
        .unwrap_or_else(|| "unknown".into());
    let os = read("/etc/os-release")
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|n| n.trim_matches('"').to_owned())
        .unwrap_or_else(|| "unknown".into());
    let version = |program: &Path, arg: &str| {
        std::process::Command::new(program)
            .arg(arg)
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_else(|| "unknown".into())
    };
    let cargo_lambda = tools::cargo_lambda(repo_root)
        .map(|path| {
            std::process::Command::new(path)
                .args(["lambda", "--version"])
                .output()
                .ok()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
                .unwrap_or_default()
        })
        .unwrap_or_else(|_| "not installed".into());
    Machine {
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        cpu_model,
        memory,
        os,
        kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
        rustc: version(Path::new("rustc"), "-V"),
        cargo_lambda,
    }
}
