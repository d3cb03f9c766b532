use super::*;

#[test]
fn source_machines_take_the_source_cidrs_addresses_in_order() {
    assert_eq!(
        source_address("10.200.0.0/16", 0).as_deref(),
        Ok("10.200.0.1")
    );
    assert_eq!(
        source_address("10.200.7.9/16", 299).as_deref(),
        Ok("10.200.1.44")
    );
    assert!(
        source_address("10.200.0.0/30", 2)
            .unwrap_err()
            .contains("2 host addresses")
    );
    assert!(
        source_address("10.200.0.0", 0)
            .unwrap_err()
            .contains("not a CIDR block")
    );
    assert!(
        source_address("10.200.0.0/31", 0)
            .unwrap_err()
            .contains("/8 to /30")
    );
}

#[test]
fn expands_hostname_patterns() {
    assert_eq!(expand_hostname("app-{i:03}", 7).as_deref(), Ok("app-007"));
    assert_eq!(expand_hostname("db{i}", 12).as_deref(), Ok("db12"));
    assert_eq!(expand_hostname("web", 1).as_deref(), Ok("web"));
    assert!(expand_hostname("app-{n}", 1).is_err());
    assert!(expand_hostname("app-{i", 1).is_err());
}

#[test]
fn the_documented_shape_parses() {
    let fleet = Fleet::from_yaml(
        r#"
region: us-east-1
source_servers:
  - count: 250
    hostname: "app-{i:03}"
    tags: { "dr:plan": "shop", "dr:wave": "app" }
    replication: { state: CONTINUOUS, lag_seconds: 0 }
hosted_zones:
  - name: example.com
    records:
      - { name: shop.example.com, type: A, ttl: 60, values: [203.0.113.10] }
"#,
    )
    .expect("the documented shape");
    let servers = fleet.servers().expect("valid hostnames");
    assert_eq!(servers.len(), 250);
    assert_eq!(servers[0].hostname, "app-001");
    assert_eq!(servers[249].hostname, "app-250");
    assert_eq!(servers[0].tags["dr:wave"], "app");
    assert_eq!(fleet.hosted_zones[0].records[0].record_type, "A");
}

#[test]
fn rejects_typos_and_duplicate_hostnames() {
    let typo = Fleet::from_yaml("source_server: []").expect_err("unknown field");
    assert!(typo.contains("source_server"), "{typo}");
    let twice =
        Fleet::from_yaml("source_servers: [{count: 2, hostname: web}]").expect_err("web twice");
    assert!(twice.contains("web"), "{twice}");
}

#[test]
fn the_shipped_example_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/fleet.yaml");
    let fleet = Fleet::from_file(&path).expect("examples/fleet.yaml parses");
    let servers = fleet.servers().expect("valid hostnames");
    let shop: Vec<&ServerSeed> = servers
        .iter()
        .filter(|server| server.tags.get("dr:plan").map(String::as_str) == Some("shop"))
        .collect();
    let waves: BTreeSet<&str> = shop
        .iter()
        .filter_map(|server| server.tags.get("dr:wave").map(String::as_str))
        .collect();
    assert_eq!(
        waves.len(),
        4,
        "database, cache, app and web waves: {waves:?}"
    );
}
