//! The zone a DNS cutover changes, through the SDK against moto's Route 53: public and
//! private zones (GetHostedZone's Config.PrivateZone), a name both kinds share, records
//! outside the zone, and the zones a deployment may change.
//!
//! Needs moto (see `drplan_drs_sim::moto`): set DRPLAN_MOTO_SERVER, and
//! DRPLAN_REQUIRE_MOTO to fail instead of skipping without it.

use aws_config::{BehaviorVersion, Region};
use aws_sdk_route53::config::Credentials;
use aws_sdk_route53::types::{HostedZoneConfig, Vpc, VpcRegion};
use drplan_aws::FunctionError;
use drplan_aws::route53::zone_for_cutover;
use drplan_core::plan::{Dns, DnsRecord, RecordType};
use drplan_drs_sim::moto::start_moto;

fn record(name: &str) -> DnsRecord {
    DnsRecord {
        name: name.into(),
        record_type: RecordType::A,
        ttl: 60,
        from_wave: "web".into(),
        address: None,
        alias: None,
        values: Vec::new(),
    }
}

fn by_name(zone: &str, records: &[&str]) -> Dns {
    Dns {
        zone_id: None,
        zone_name: Some(zone.into()),
        mode: Default::default(),
        records: records.iter().map(|r| record(r)).collect(),
    }
}

fn by_id(zone_id: &str, records: &[&str]) -> Dns {
    Dns {
        zone_id: Some(zone_id.into()),
        zone_name: None,
        mode: Default::default(),
        records: records.iter().map(|r| record(r)).collect(),
    }
}

/// Creates a zone (private ones in `vpc`) and returns its bare ID.
async fn create_zone(route53: &aws_sdk_route53::Client, name: &str, vpc: Option<&str>) -> String {
    let mut request = route53
        .create_hosted_zone()
        .name(name)
        .caller_reference(format!("{name}-{}", vpc.unwrap_or("public")));
    if let Some(vpc) = vpc {
        request = request
            .vpc(
                Vpc::builder()
                    .vpc_id(vpc)
                    .vpc_region(VpcRegion::UsEast1)
                    .build(),
            )
            .hosted_zone_config(HostedZoneConfig::builder().private_zone(true).build());
    }
    let created = request.send().await.expect("CreateHostedZone");
    created
        .hosted_zone()
        .expect("the new zone")
        .id()
        .trim_start_matches("/hostedzone/")
        .to_owned()
}

fn issues(error: FunctionError) -> (String, Vec<(String, String)>) {
    let kind = error.error_type().to_owned();
    let list = match error {
        FunctionError::InvalidPlan(issues) | FunctionError::NotReady(issues) => issues,
        other => panic!("not a plan problem: {other}"),
    };
    (
        kind,
        list.into_iter().map(|i| (i.path, i.message)).collect(),
    )
}

#[tokio::test]
async fn the_cutover_zone_is_public_or_private_holds_its_records_and_is_one_the_deployment_may_change()
 {
    let Some(moto) = start_moto().await else {
        return;
    };
    let config = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(&moto.endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "route53-test"))
        .load()
        .await;
    let route53 = aws_sdk_route53::Client::new(&config);
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let vpc = ec2
        .create_vpc()
        .cidr_block("10.9.0.0/16")
        .send()
        .await
        .expect("CreateVpc")
        .vpc()
        .and_then(|v| v.vpc_id())
        .expect("a VPC ID")
        .to_owned();
    let public = create_zone(&route53, "example.com", None).await;
    let private = create_zone(&route53, "example.com", Some(&vpc)).await;
    let internal = create_zone(&route53, "corp.internal", Some(&vpc)).await;

    // By ID: the zone's kind comes from Route 53.
    let zone = zone_for_cutover(&route53, &by_id(&public, &["www.example.com"]), None)
        .await
        .expect("the public zone");
    assert_eq!((zone.id.as_str(), zone.private), (public.as_str(), false));
    assert_eq!(zone.name, "example.com.");
    let zone = zone_for_cutover(&route53, &by_id(&private, &["example.com"]), None)
        .await
        .expect("the private zone");
    assert_eq!((zone.id.as_str(), zone.private), (private.as_str(), true));

    // By name: one zone of the name, whichever kind; two, and the plan must say which.
    let zone = zone_for_cutover(
        &route53,
        &by_name("Corp.Internal.", &["db.corp.internal"]),
        None,
    )
    .await
    .expect("the only zone named corp.internal");
    assert_eq!((zone.id.as_str(), zone.private), (internal.as_str(), true));
    let (kind, found) = issues(
        zone_for_cutover(
            &route53,
            &by_name("example.com", &["www.example.com"]),
            None,
        )
        .await
        .expect_err("two zones are named example.com"),
    );
    assert_eq!(kind, "drplan.NotReady");
    assert_eq!(found[0].0, "dns.zone_name");
    assert!(
        found[0]
            .1
            .starts_with("2 hosted zones are named example.com (")
            && found[0].1.contains(&format!("{public} public"))
            && found[0].1.contains(&format!("{private} private"))
            && found[0].1.ends_with("give dns.zone_id to say which"),
        "{}",
        found[0].1
    );

    // A record outside the zone, however close its name.
    let (kind, found) = issues(
        zone_for_cutover(
            &route53,
            &by_id(
                &public,
                &["www.example.com", "wwwexample.com", "www.example.org"],
            ),
            None,
        )
        .await
        .expect_err("records outside example.com"),
    );
    assert_eq!(kind, "drplan.InvalidPlan");
    let paths: Vec<&str> = found.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(paths, ["dns.records[1].name", "dns.records[2].name"]);
    assert!(
        found[0].1.contains(&format!("(zone {public})")),
        "{found:?}"
    );

    // The zones the deployment may change (its HostedZoneIds).
    let allowed = vec![internal.clone(), public.clone()];
    assert!(
        zone_for_cutover(
            &route53,
            &by_id(&public, &["www.example.com"]),
            Some(&allowed)
        )
        .await
        .is_ok()
    );
    let (kind, found) = issues(
        zone_for_cutover(
            &route53,
            &by_id(&private, &["www.example.com"]),
            Some(&allowed),
        )
        .await
        .expect_err("the private zone is not allowed"),
    );
    assert_eq!(kind, "drplan.InvalidPlan");
    assert_eq!(found[0].0, "dns.zone_id");
    assert!(
        found[0].1.starts_with(&format!(
            "hosted zone {private} is not one this deployment may change"
        )),
        "{found:?}"
    );
    // By name, the zone found must be allowed too.
    let (_, found) = issues(
        zone_for_cutover(
            &route53,
            &by_name("corp.internal", &["db.corp.internal"]),
            Some(std::slice::from_ref(&public)),
        )
        .await
        .expect_err("corp.internal is not allowed"),
    );
    assert_eq!(found[0].0, "dns.zone_name");
    assert!(found[0].1.contains(&internal), "{found:?}");
    let (_, found) = issues(
        zone_for_cutover(
            &route53,
            &by_name("example.com", &["www.example.com"]),
            Some(&[]),
        )
        .await
        .expect_err("no zone is allowed"),
    );
    assert!(
        found[0]
            .1
            .starts_with("this deployment may change no hosted zone"),
        "{found:?}"
    );
}
