//! Checks that span several parts of a plan: wave names, dependencies, DNS records.
//! Field-level checks happen while reading (see `parse`).

use std::collections::{BTreeMap, HashMap};

use crate::dag;
use crate::issue::{DocPath, Issues, did_you_mean};
use crate::plan::{Dns, Plan, RecordType};

pub(crate) fn check_plan(plan: &Plan, issues: &mut Issues) {
    let root = DocPath::root();
    if let Some(waves) = &plan.waves {
        let waves_path = root.key("waves");
        let mut index_of: HashMap<&str, usize> = HashMap::new();
        for (i, wave) in waves.iter().enumerate() {
            if wave.name.is_empty() {
                continue; // already reported while reading
            }
            if let Some(&first) = index_of.get(wave.name.as_str()) {
                issues.push(
                    &waves_path.index(i).key("name"),
                    format!(
                        "wave name {:?} is already used by waves[{first}]",
                        wave.name
                    ),
                );
            } else {
                index_of.insert(&wave.name, i);
            }
        }
        // Each name once, in document order, for messages.
        let known: Vec<&str> = waves
            .iter()
            .enumerate()
            .filter(|(i, w)| index_of.get(w.name.as_str()) == Some(i))
            .map(|(_, w)| w.name.as_str())
            .collect();
        let mut depends_on: Vec<Vec<usize>> = vec![Vec::new(); waves.len()];
        for (i, wave) in waves.iter().enumerate() {
            let deps_path = waves_path.index(i).key("depends_on");
            for (k, dep) in wave.depends_on.iter().enumerate() {
                let path = deps_path.index(k);
                if wave.depends_on[..k].contains(dep) {
                    issues.push(&path, format!("lists {dep:?} twice"));
                    continue;
                }
                match index_of.get(dep.as_str()) {
                    Some(&j) => depends_on[i].push(j),
                    None => issues.push(&path, unknown_wave(dep, &known)),
                }
            }
        }
        for cycle in dag::find_cycles(&depends_on) {
            let first = cycle[0];
            let mut names: Vec<&str> = cycle.iter().map(|&i| waves[i].name.as_str()).collect();
            names.push(&waves[first].name);
            issues.push(
                &waves_path.index(first).key("depends_on"),
                format!(
                    "dependency cycle: {} (each wave waits for the next, so none can start)",
                    names.join(" → ")
                ),
            );
        }
        if let Some(dns) = &plan.dns {
            let records_path = root.key("dns").key("records");
            for (i, record) in dns.records.iter().enumerate() {
                if !record.from_wave.is_empty() && !known.contains(&record.from_wave.as_str()) {
                    issues.push(
                        &records_path.index(i).key("from_wave"),
                        unknown_wave(&record.from_wave, &known),
                    );
                }
            }
        }
    }
    if let Some(dns) = &plan.dns {
        check_records(dns, issues);
    }
}

fn check_records(dns: &Dns, issues: &mut Issues) {
    let records_path = DocPath::root().key("dns").key("records");
    // Route 53 names are case-insensitive and may end with a dot.
    let normal = |name: &str| name.trim_end_matches('.').to_ascii_lowercase();
    let mut seen: BTreeMap<(String, &str), usize> = BTreeMap::new();
    let mut types_by_name: BTreeMap<String, Vec<(usize, RecordType)>> = BTreeMap::new();
    for (i, record) in dns.records.iter().enumerate() {
        if record.name.is_empty() {
            continue; // already reported while reading
        }
        let key = (normal(&record.name), record.record_type.as_str());
        if let Some(&first) = seen.get(&key) {
            issues.push(
                &records_path.index(i).key("name"),
                format!(
                    "{} {} is already listed at dns.records[{first}]; one record can point at one wave only",
                    record.name,
                    record.record_type.as_str()
                ),
            );
        } else {
            seen.insert(key, i);
        }
        types_by_name
            .entry(normal(&record.name))
            .or_default()
            .push((i, record.record_type));
    }
    for records in types_by_name.values() {
        // A CNAME must stand alone at its name.
        if records.len() > 1
            && let Some(&(i, _)) = records.iter().find(|(_, t)| *t == RecordType::CNAME)
        {
            issues.push(
                &records_path.index(i).key("type"),
                format!(
                    "{} has a CNAME and other records; DNS does not allow a CNAME beside other records of the same name",
                    dns.records[i].name
                ),
            );
        }
    }
}

fn unknown_wave(name: &str, known: &[&str]) -> String {
    match did_you_mean(name, known.iter().copied()) {
        Some(suggestion) => format!("unknown wave {name:?}: did you mean {suggestion:?}?"),
        None if known.is_empty() => format!("unknown wave {name:?}: the plan defines no waves"),
        None => format!(
            "unknown wave {name:?}: the plan's waves are {}",
            known.join(", ")
        ),
    }
}
