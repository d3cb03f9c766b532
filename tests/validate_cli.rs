//! `drplan validate` and `drplan schema` as a user runs them: real documents through
//! the real binary, checking exit codes, paths and messages.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

const VALID: &str = r#"
name: shop
rto_minutes: 30
rpo_minutes: 5
selector: { "dr:plan": "shop" }
waves:
  - name: database
    selector: { "dr:wave": "db" }
    health: { checks: [ec2-status, "tcp:5432"], timeout_minutes: 15 }
  - name: app
    depends_on: [database]
    selector: { "dr:wave": "app" }
dns:
  zone_id: Z0123456789
  records:
    - { name: shop.example.com, type: A, ttl: 60, from_wave: app }
"#;

struct Outcome {
    code: i32,
    stdout: String,
    stderr: String,
}

fn drplan(args: &[&str]) -> Outcome {
    let output = Command::new(env!("CARGO_BIN_EXE_drplan"))
        .args(args)
        .output()
        .expect("the drplan binary runs");
    Outcome {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn write_doc(extension: &str, text: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("validate_cli");
    std::fs::create_dir_all(&dir).expect("temp dir");
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let path = dir.join(format!("plan-{}-{n}.{extension}", std::process::id()));
    std::fs::write(&path, text).expect("write plan");
    path
}

/// Validates `text` and returns the error lines as (path, message), after checking
/// the exit code and that each line names the file.
fn errors_of(text: &str) -> Vec<(String, String)> {
    let file = write_doc("yaml", text);
    let file_str = file.to_str().expect("utf-8 path");
    let out = drplan(&["validate", file_str]);
    assert_eq!(
        out.code, 1,
        "invalid plan must exit 1; stdout: {}",
        out.stdout
    );
    out.stdout
        .lines()
        .map(|line| {
            let rest = line
                .strip_prefix(&format!("{file_str}: "))
                .unwrap_or_else(|| panic!("line does not start with the file: {line}"));
            let (path, message) = rest.split_once(": ").expect("PATH: MESSAGE");
            (path.to_owned(), message.to_owned())
        })
        .collect()
}

/// The plan with `from` replaced by `to` (which must occur in it).
fn valid_with(from: &str, to: &str) -> String {
    assert!(VALID.contains(from), "{from}");
    VALID.replacen(from, to, 1)
}

fn assert_error(errors: &[(String, String)], path: &str, fragment: &str) {
    assert!(
        errors
            .iter()
            .any(|(p, m)| p == path && m.contains(fragment)),
        "expected `{path}: ...{fragment}...` among {errors:#?}"
    );
}

#[test]
fn valid_plans_exit_0_with_a_summary_line_each() {
    let out = drplan(&["validate", "examples/shop.yaml", "examples/small.yaml"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert!(lines[0].starts_with("examples/shop.yaml: valid: plan \"shop\": 4 waves"));
    // Each plan says whether its drills are isolated.
    assert_eq!(
        lines[1],
        "  drills: isolated in subnet-0d1e2f3a4b5c6d7e8 (its route table is checked when a drill starts)"
    );
    assert!(
        lines[2].starts_with(
            "examples/small.yaml: valid: plan \"intranet\": waves from the dr:wave tag"
        )
    );
    assert!(
        lines[3].starts_with("  drills: NOT isolated: the plan names no drill.subnet_id"),
        "{}",
        lines[3]
    );
}

#[test]
fn unknown_fields_are_errors_with_a_suggestion() {
    let errors = errors_of(&valid_with(
        "depends_on: [database]",
        "depend_on: [database]",
    ));
    assert_error(
        &errors,
        "waves[1].depend_on",
        "unknown field \"depend_on\": did you mean \"depends_on\"?",
    );
    let errors = errors_of(&format!("{VALID}colour: blue\n"));
    assert_error(
        &errors,
        "colour",
        "unknown field \"colour\": expected one of name, rto_minutes",
    );
}

#[test]
fn duplicate_wave_names_point_at_the_second() {
    let errors = errors_of(&valid_with("- name: app", "- name: database"));
    assert_error(
        &errors,
        "waves[1].name",
        "wave name \"database\" is already used by waves[0]",
    );
}

#[test]
fn depends_on_an_unknown_wave_suggests_the_closest() {
    let errors = errors_of(&valid_with(
        "depends_on: [database]",
        "depends_on: [databse]",
    ));
    assert_error(
        &errors,
        "waves[1].depends_on[0]",
        "unknown wave \"databse\": did you mean \"database\"?",
    );
}

#[test]
fn dependency_cycles_are_named() {
    let text = valid_with(
        "selector: { \"dr:wave\": \"db\" }",
        "selector: { \"dr:wave\": \"db\" }\n    depends_on: [app]",
    );
    let errors = errors_of(&text);
    assert_error(
        &errors,
        "waves[0].depends_on",
        "dependency cycle: database → app → database",
    );
    let errors = errors_of(&valid_with("depends_on: [database]", "depends_on: [app]"));
    assert_error(
        &errors,
        "waves[1].depends_on",
        "dependency cycle: app → app",
    );
}

#[test]
fn empty_selectors_are_refused() {
    let errors = errors_of(&valid_with(
        "selector: { \"dr:wave\": \"app\" }",
        "selector: {}",
    ));
    assert_error(
        &errors,
        "waves[1].selector",
        "empty selector would match every server",
    );
    let errors = errors_of(&valid_with(
        "selector: { \"dr:plan\": \"shop\" }",
        "selector: {}",
    ));
    assert_error(&errors, "selector", "is empty");
}

#[test]
fn health_checks_that_do_not_parse_say_why() {
    let text = valid_with(
        "checks: [ec2-status, \"tcp:5432\"]",
        "checks: [ec2-status, \"tcp:0\", \"tcp:65536\", \"http:8080\", \"https:x/health\", \"ping\"]",
    );
    let errors = errors_of(&text);
    let base = "waves[0].health.checks";
    assert_error(
        &errors,
        &format!("{base}[1]"),
        "\"0\" is not a port: expected a whole number from 1 to 65535",
    );
    assert_error(&errors, &format!("{base}[2]"), "\"65536\" is not a port");
    assert_error(
        &errors,
        &format!("{base}[3]"),
        "needs a path after the port",
    );
    assert_error(&errors, &format!("{base}[4]"), "\"x\" is not a port");
    assert_error(&errors, &format!("{base}[5]"), "unknown check \"ping\"");
    assert_eq!(errors.len(), 5, "{errors:#?}");
}

#[test]
fn a_probe_address_other_than_private_or_public_ip_is_named() {
    let text = valid_with(
        "checks: [ec2-status, \"tcp:5432\"]",
        "checks: [ec2-status, \"tcp:5432\"], probe_address: elastic-ip",
    );
    let errors = errors_of(&text);
    assert_error(
        &errors,
        "waves[0].health.probe_address",
        "unknown probe address \"elastic-ip\": expected private-ip or public-ip",
    );
    assert_eq!(errors.len(), 1, "{errors:#?}");
}

#[test]
fn record_names_types_and_ttls_are_checked() {
    let text = valid_with(
        "{ name: shop.example.com, type: A, ttl: 60, from_wave: app }",
        "{ name: shop..example.com, type: MX, ttl: 2147483648, from_wave: app }\n    - { name: \"sh op.example.com\", type: A, ttl: -1, from_wave: app }",
    );
    let errors = errors_of(&text);
    assert_error(
        &errors,
        "dns.records[0].name",
        "\"shop..example.com\" is not a valid DNS name",
    );
    assert_error(
        &errors,
        "dns.records[0].type",
        "record type \"MX\" is not supported: use A, AAAA or CNAME",
    );
    assert_error(
        &errors,
        "dns.records[0].ttl",
        "from 0 to 2147483647, found 2147483648",
    );
    assert_error(&errors, "dns.records[1].name", "has the character ' '");
    assert_error(&errors, "dns.records[1].ttl", "found -1");
}

#[test]
fn a_record_address_is_private_or_public_ip_and_for_a_records_only() {
    let text = valid_with(
        "{ name: shop.example.com, type: A, ttl: 60, from_wave: app }",
        "{ name: shop.example.com, type: A, from_wave: app, address: elastic-ip }\n    \
         - { name: v6.example.com, type: AAAA, from_wave: app, address: public-ip }\n    \
         - { name: www.example.com, type: CNAME, from_wave: app, address: private-ip }\n    \
         - { name: api.example.com, type: A, from_wave: app, address: private-ip }",
    );
    let errors = errors_of(&text);
    assert_error(
        &errors,
        "dns.records[0].address",
        "unknown address \"elastic-ip\": expected private-ip or public-ip",
    );
    assert_error(
        &errors,
        "dns.records[1].address",
        "applies to A records only: AAAA records hold the instances' IPv6 addresses",
    );
    assert_error(
        &errors,
        "dns.records[2].address",
        "applies to A records only: CNAME records hold the first instance's private DNS name",
    );
    assert_eq!(errors.len(), 3, "{errors:#?}");
}

#[test]
fn alias_and_fixed_values_are_checked_and_data_plane_needs_a_target_known_ahead() {
    let text = valid_with(
        "{ name: shop.example.com, type: A, ttl: 60, from_wave: app }",
        "{ name: shop.example.com, type: A, ttl: 60, from_wave: app, alias: { dns_name: lb.elb.amazonaws.com, hosted_zone_id: z35sx } }\n    \
         - { name: api.example.com, type: A, from_wave: app, values: [10.0.1.300] }\n    \
         - { name: www.example.com, type: CNAME, from_wave: app, values: [a.example.com, b.example.com] }\n    \
         - { name: v6.example.com, type: AAAA, from_wave: app, values: [\"2001:db8::1\"], alias: { dns_name: lb.example.com, hosted_zone_id: Z1 } }\n    \
         - { name: app.example.com, type: A, from_wave: app, address: private-ip, values: [10.0.1.5] }\n    \
         - { name: ok.example.com, type: A, from_wave: app, alias: { dns_name: lb.example.com, hosted_zone_id: Z1, evaluate_target_health: true } }\n    \
         - { name: instances.example.com, type: A, from_wave: app }\n  mode: data-plane",
    );
    let errors = errors_of(&text);
    assert_error(
        &errors,
        "dns.records[0].alias.hosted_zone_id",
        "not a hosted zone ID",
    );
    assert_error(
        &errors,
        "dns.records[0].ttl",
        "an alias record has no TTL of its own",
    );
    assert_error(
        &errors,
        "dns.records[1].values[0]",
        "\"10.0.1.300\" is not an IPv4 address",
    );
    assert_error(
        &errors,
        "dns.records[2].values[1]",
        "a CNAME record holds one name",
    );
    assert_error(
        &errors,
        "dns.records[3].values",
        "give alias or values, not both",
    );
    assert_error(
        &errors,
        "dns.records[4].address",
        "does not apply with values",
    );
    assert_error(
        &errors,
        "dns.records[6]",
        "dns.mode is data-plane, so the record's recovery target must be known before anything launches",
    );
    assert_eq!(errors.len(), 7, "{errors:#?}");
}

#[test]
fn an_unknown_dns_mode_is_named() {
    let text = valid_with(
        "{ name: shop.example.com, type: A, ttl: 60, from_wave: app }",
        "{ name: shop.example.com, type: A, ttl: 60, from_wave: app }\n  mode: dataplane",
    );
    let errors = errors_of(&text);
    assert_error(
        &errors,
        "dns.mode",
        "unknown mode \"dataplane\": expected control-plane or data-plane",
    );
}

#[test]
fn a_record_outside_the_named_zone_is_refused() {
    let text = valid_with("zone_id: Z0123456789", "zone_name: Example.com.").replacen(
        "{ name: shop.example.com, type: A, ttl: 60, from_wave: app }",
        "{ name: SHOP.example.com., type: A, from_wave: app }\n    \
         - { name: example.com, type: A, from_wave: app }\n    \
         - { name: wwwexample.com, type: A, from_wave: app }",
        1,
    );
    let errors = errors_of(&text);
    assert_error(
        &errors,
        "dns.records[2].name",
        "wwwexample.com is not inside the hosted zone example.com: the zone holds example.com itself and the names that end in .example.com",
    );
    assert_eq!(errors.len(), 1, "{errors:#?}");
}

#[test]
fn from_wave_must_name_a_wave() {
    let errors = errors_of(&valid_with("from_wave: app", "from_wave: ap"));
    assert_error(
        &errors,
        "dns.records[0].from_wave",
        "unknown wave \"ap\": did you mean \"app\"?",
    );
}

#[test]
fn non_positive_objectives_and_timeouts_are_refused() {
    let text = valid_with("rto_minutes: 30", "rto_minutes: 0")
        .replacen("rpo_minutes: 5", "rpo_minutes: -5", 1)
        .replacen("timeout_minutes: 15", "timeout_minutes: 1.5", 1);
    let errors = errors_of(&text);
    assert_error(
        &errors,
        "rto_minutes",
        "must be a positive whole number of minutes, found 0",
    );
    assert_error(&errors, "rpo_minutes", "found -5");
    assert_error(&errors, "waves[0].health.timeout_minutes", "found 1.5");
}

#[test]
fn documents_that_do_not_parse_say_where_they_broke() {
    let errors = errors_of("name: shop\n  rto_minutes: [1,\n");
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].0, "(document)");
    assert!(
        errors[0].1.starts_with("not valid YAML") && errors[0].1.contains("line 2"),
        "{errors:?}"
    );

    let file = write_doc("json", "{\"name\": \"shop\",\n \"rto_minutes\": 30,}");
    let out = drplan(&["validate", file.to_str().unwrap()]);
    assert_eq!(out.code, 1);
    assert!(
        out.stdout
            .contains("(document): not valid JSON: trailing comma at line 2"),
        "{}",
        out.stdout
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let text = valid_with("rto_minutes: 30", "rto_minutes: 0")
        .replacen("depends_on: [database]", "depends_on: [web]", 1)
        .replacen("type: A", "type: TXT", 1)
        .replacen("\"tcp:5432\"", "\"tcp:x\"", 1);
    let errors = errors_of(&text);
    assert_eq!(errors.len(), 4, "{errors:#?}");
}

#[test]
fn json_format_lists_files_with_paths_and_messages() {
    let bad = write_doc("yaml", &valid_with("from_wave: app", "from_wave: nope"));
    let out = drplan(&[
        "validate",
        "--format",
        "json",
        "examples/shop.yaml",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 1);
    let reports: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON output");
    assert_eq!(reports[0]["file"], "examples/shop.yaml");
    assert_eq!(reports[0]["valid"], true);
    assert_eq!(reports[0]["errors"], serde_json::json!([]));
    assert_eq!(reports[1]["valid"], false);
    assert_eq!(reports[1]["errors"][0]["path"], "dns.records[0].from_wave");
    assert!(
        reports[1]["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("unknown wave \"nope\"")
    );
}

#[test]
fn servers_dump_resolves_waves_with_counts_and_hostnames() {
    let out = drplan(&[
        "validate",
        "--servers",
        "examples/servers.json",
        "examples/shop.yaml",
    ]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("12 servers in 4 waves over 3 stages"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("stage 1, wave \"database\", 2 servers: db-01, db-02\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(
            "stage 2, wave \"app\" after \"database\", \"cache\", 5 servers (1 optional):"
        ),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("batch-01 (optional)"));
    // A recovered instance replicating back (FAILBACK) carries the same tags but is
    // never part of a failover.
    assert!(!out.stdout.contains("db-01-failback"));

    let out = drplan(&[
        "validate",
        "--format",
        "json",
        "--servers",
        "examples/servers.json",
        "examples/small.yaml",
    ]);
    assert_eq!(out.code, 0);
    let reports: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let waves = reports[0]["waves"].as_array().unwrap();
    let names: Vec<&str> = waves.iter().map(|w| w["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["1", "2"]);
    assert_eq!(waves[1]["server_count"], 3);
    assert_eq!(waves[1]["depends_on"], serde_json::json!(["1"]));
}

#[test]
fn resolution_problems_name_the_servers_and_the_waves() {
    // app also selects the database servers; web matches nothing; cache servers fall in no wave.
    let plan = write_doc(
        "yaml",
        r#"
name: shop
rto_minutes: 30
selector: { "dr:plan": "shop" }
waves:
  - { name: database, selector: { "dr:wave": "db" } }
  - { name: app, selector: { "dr:plan": "shop" }, depends_on: [database] }
  - { name: web, selector: { "dr:wave": "www" }, depends_on: [app] }
"#,
    );
    let out = drplan(&[
        "validate",
        "--servers",
        "examples/servers.json",
        plan.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(
        out.stdout.contains("waves[1].selector: 2 servers are also in wave \"database\" (waves[0]); a server can be in one wave only: db-01, db-02"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("waves[2].selector: wave \"web\" matches none of the plan's 12 servers; \"dr:wave\" is never \"www\""), "{}", out.stdout);

    let plan = write_doc(
        "yaml",
        r#"
name: shop
rto_minutes: 30
selector: { "dr:plan": "shop" }
waves:
  - { name: database, selector: { "dr:wave": "db" } }
"#,
    );
    let out = drplan(&[
        "validate",
        "--servers",
        "examples/servers.json",
        plan.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 1);
    assert!(
        out.stdout
            .contains(": waves: 10 of the plan's servers fall in no wave"),
        "{}",
        out.stdout
    );

    let plan = write_doc(
        "yaml",
        "name: gone\nrto_minutes: 5\nselector: { \"dr:plan\": \"gone\" }\n",
    );
    let out = drplan(&[
        "validate",
        "--servers",
        "examples/servers.json",
        plan.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 1);
    assert!(
        out.stdout.contains(
            ": selector: matches none of the 19 source servers; \"dr:plan\" is never \"gone\""
        ),
        "{}",
        out.stdout
    );
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(drplan(&["validate"]).code, 2);
    assert_eq!(
        drplan(&["validate", "--frmat", "json", "examples/shop.yaml"]).code,
        2
    );
    assert_eq!(drplan(&["frobnicate"]).code, 2);
    let out = drplan(&["validate", "no/such/plan.yaml"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("cannot read no/such/plan.yaml"),
        "{}",
        out.stderr
    );
    let out = drplan(&[
        "validate",
        "--servers",
        "examples/shop.yaml",
        "examples/shop.yaml",
    ]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("--servers examples/shop.yaml: not valid JSON"),
        "{}",
        out.stderr
    );
}

#[test]
fn every_command_has_help() {
    for args in [
        &["--help"][..],
        &["validate", "--help"],
        &["schema", "--help"],
        &["help", "validate"],
    ] {
        let out = drplan(args);
        assert_eq!(out.code, 0, "{args:?}");
        assert!(
            out.stdout.contains("Usage: drplan"),
            "{args:?}: {}",
            out.stdout
        );
    }
}

#[test]
fn schema_describes_the_plan_format() {
    let out = drplan(&["schema"]);
    assert_eq!(out.code, 0);
    let schema: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON schema");
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert_eq!(schema["additionalProperties"], false);
    let required: Vec<&str> = schema["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(required, ["name", "rto_minutes", "selector"]);
    assert!(schema["$defs"]["Wave"]["properties"]["depends_on"].is_object());
}

#[test]
fn start_refuses_an_execution_name_step_functions_would_refuse_before_any_call() {
    let long = "x".repeat(81);
    for (name, problem) in [
        ("shop drill", "contains ' '"),
        (long.as_str(), "81 characters"),
    ] {
        let out = drplan(&["start", "shop", "--mode", "drill", "--name", name]);
        assert_ne!(out.code, 0);
        assert!(
            out.stderr.contains("--name: ") && out.stderr.contains(problem),
            "{}",
            out.stderr
        );
    }
}

#[test]
fn a_plan_over_one_mib_is_refused_by_its_size() {
    let padding = format!("# {}\n", "x".repeat(1024 * 1024));
    let file = write_doc("yaml", &format!("{VALID}{padding}"));
    let out = drplan(&["validate", file.to_str().expect("utf-8 path")]);
    assert_ne!(out.code, 0);
    assert!(
        out.stdout
            .contains("a plan may be at most 1048576 bytes (1 MiB)")
            || out
                .stderr
                .contains("a plan may be at most 1048576 bytes (1 MiB)"),
        "{}{}",
        out.stdout,
        out.stderr
    );
}
