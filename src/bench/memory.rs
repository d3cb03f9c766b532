//! Section 2: peak memory (VmHWM) of the function processes, from /proc, and the
//! memory size the template gives each function.

use std::collections::BTreeMap;
use std::path::Path;

use drplan_local::{LocalCloud, stack};

pub(super) struct ProcStatus {
    pub(super) hwm_kib: u64,
    pub(super) rss_kib: u64,
}

pub(super) fn proc_status(pid: u32) -> Option<ProcStatus> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
    };
    Some(ProcStatus {
        hwm_kib: field("VmHWM:")?,
        rss_kib: field("VmRSS:")?,
    })
}

/// Peak and current RSS of the function processes `cargo lambda watch` started (its
/// descendants), by function: (function, pid, VmHWM KiB, VmRSS KiB).
pub(super) fn function_memory(
    cloud: &LocalCloud,
    functions: &[String],
) -> Vec<(String, u32, u64, u64)> {
    let Some(root) = cloud.functions_pid() else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    // pid → (parent, command name)
    let mut processes: BTreeMap<u32, (u32, String)> = BTreeMap::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        // After the name: state, ppid.
        let Some(parent) = stat[close + 1..]
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        processes.insert(pid, (parent, stat[open + 1..close].to_owned()));
    }
    let descends_from_root = |mut pid: u32| {
        for _ in 0..64 {
            match processes.get(&pid) {
                Some((parent, _)) if *parent == root => return true,
                Some((parent, _)) if *parent > 1 => pid = *parent,
                _ => return false,
            }
        }
        false
    };
    let mut found = Vec::new();
    for (pid, (_, comm)) in &processes {
        if functions.iter().any(|f| f == comm)
            && descends_from_root(*pid)
            && let Some(status) = proc_status(*pid)
        {
            found.push((comm.clone(), *pid, status.hwm_kib, status.rss_kib));
        }
    }
    found.sort();
    found
}

/// `MemorySize` of each function in the template (the Globals' value when it has none).
pub(super) fn template_memory_sizes(repo_root: &Path) -> BTreeMap<String, u64> {
    let mut sizes = BTreeMap::new();
    let Ok(text) = std::fs::read_to_string(repo_root.join(stack::TEMPLATE)) else {
        return sizes;
    };
    let Ok(template) = drplan_core::parse_document(&text, drplan_core::Format::Yaml) else {
        return sizes;
    };
    let global = template["Globals"]["Function"]["MemorySize"].as_u64();
    for resource in template["Resources"]
        .as_object()
        .into_iter()
        .flat_map(|r| r.values())
    {
        if resource["Type"] != "AWS::Serverless::Function" {
            continue;
        }
        let properties = &resource["Properties"];
        let binary = resource["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .or_else(|| properties["FunctionName"].as_str());
        if let (Some(binary), Some(size)) = (binary, properties["MemorySize"].as_u64().or(global)) {
            sizes.insert(binary.to_owned(), size);
        }
    }
    if let Some(global) = global {
        sizes.insert("*".to_owned(), global);
    }
    sizes
}
