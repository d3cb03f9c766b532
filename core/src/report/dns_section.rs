//! The report's "DNS cutover" Markdown section: the zone, the change (or the failover
//! alarm a data-plane run flipped), every record before and after, and how to roll back.

use std::fmt::Write;

use crate::dns::DnsCutover;

pub(super) fn write(md: &mut String, dns: &DnsCutover, execution_name: &str) {
    match &dns.alarm {
        Some(flip) => {
            let _ = writeln!(
                md,
                "\n## DNS cutover\n\nZone `{}`, {} path: alarm `{}` in {} set to ALARM at {} (health check `{}`; no Route 53 call), read in ALARM at {}.\n",
                dns.zone_id,
                dns.path,
                flip.alarm.name,
                flip.alarm.region,
                flip.flipped_at,
                flip.health_check_id,
                dns.insync_at.map_or("-".to_owned(), |t| t.to_string())
            );
        }
        None => {
            let _ = writeln!(
                md,
                "\n## DNS cutover\n\nZone `{}`, change `{}` ({} path), in sync at {}.\n",
                dns.zone_id,
                dns.change_id.as_deref().unwrap_or("not submitted"),
                dns.path,
                dns.insync_at.map_or("-".to_owned(), |t| t.to_string())
            );
        }
    }
    let _ = writeln!(
        md,
        "| Record | Type | TTL | Before | After |\n|---|---|---|---|---|"
    );
    for change in &dns.changes {
        let before = change
            .previous
            .as_ref()
            .map_or("(did not exist)".to_owned(), |p| p.target());
        let _ = writeln!(
            md,
            "| {} | {} | {} | {before} | {} |",
            change.new.name,
            change.new.record_type,
            if change.new.alias.is_some() {
                "-".to_owned()
            } else {
                change.new.ttl.to_string()
            },
            change.new.target()
        );
    }
    for deleted in &dns.deletes {
        let _ = writeln!(
            md,
            "| {} | {} | - | {} | (deleted: it did not exist before the recovery) |",
            deleted.name,
            deleted.record_type,
            deleted.target()
        );
    }
    if !dns.unchanged.is_empty() {
        let _ = writeln!(
            md,
            "\nLeft as they were (their wave did not run in this run): {}.",
            dns.unchanged.join(", ")
        );
    }
    let _ = writeln!(
        md,
        "\nRoll back with `drplan rollback-dns {}`.",
        execution_name
    );
}
