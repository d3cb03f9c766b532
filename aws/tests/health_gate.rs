//! The health gate (the health-check function's handler) end to end on loopback: moto
//! (S3 for the run's records, EC2 for the instances), the DRS simulator launching real
//! moto instances and serving their loopback stand-ins, probes with the loopback
//! mapping on.
//!
//! Needs moto (see `drplan_drs_sim::moto`): set DRPLAN_MOTO_SERVER, and
//! DRPLAN_REQUIRE_MOTO to fail instead of skipping without it.

use std::time::{Duration, Instant};

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use drplan_aws::FunctionError;
use drplan_aws::health::poll_health_gate;
use drplan_aws::probe::ProbeSettings;
use drplan_aws::store::RunStore;
use drplan_aws::wave::WaveLaunchRecord;
use drplan_core::contract::{HealthPoll, LaunchState, RunContext, WaveRef, WaveStep};
use drplan_core::health::{ProbeAddressing, ServerHealthState, WaveHealthRecord};
use drplan_core::launch::{ServerOutcome, ServerState, WaveProgress};
use drplan_core::{Mode, Quotas, SnapshotChoice, Timing};
use drplan_drs_sim::moto::start_moto;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What the function builds at cold start, here against moto and the simulator.
struct Clients {
    drs: aws_sdk_drs::Client,
    ec2: aws_sdk_ec2::Client,
    elb: aws_sdk_elasticloadbalancingv2::Client,
    store: RunStore,
    probes: ProbeSettings,
}

async fn health_check(clients: &Clients, step: WaveStep) -> Result<WaveStep, FunctionError> {
    poll_health_gate(
        &clients.drs,
        &clients.ec2,
        &clients.elb,
        &clients.store,
        &clients.probes,
        step,
    )
    .await
}

/// A JSON request to the simulator on loopback; returns the JSON answer.
async fn sim_call(sim: &drplan_drs_sim::SimHandle, method: &str, path: &str, body: Value) -> Value {
    let addr = sim.addr();
    assert!(addr.ip().is_loopback());
    let body = body.to_string();
    let mut stream = TcpStream::connect(addr).await.expect("simulator");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.expect("answer");
    let (_, json) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
    serde_json::from_str(json).unwrap_or(Value::Null)
}

fn sdk_parts() -> (Credentials, Region) {
    (
        Credentials::new("test", "test", None, None, "health-check-test"),
        Region::new("us-east-1"),
    )
}

#[tokio::test]
async fn the_gate_probes_recovered_instances_and_fails_a_refusing_critical_server() {
    let Some(moto) = start_moto().await else {
        return;
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim = drplan_drs_sim::spawn(
        listener,
        drplan_drs_sim::SimConfig {
            time_scale: 0.001,
            ec2_endpoint: Some(moto.endpoint.clone()),
            probe_ports: vec![5432, 8080, 8443],
            tls_probe_ports: vec![8443],
            ..Default::default()
        },
    )
    .await
    .unwrap();

    let seeded = sim_call(
        &sim,
        "POST",
        "/_drplan/source-servers",
        json!([{"hostname": "db-001"}, {"hostname": "db-002"}, {"hostname": "db-003"}]),
    )
    .await;
    let ids: Vec<String> = seeded["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["source_server_id"].as_str().unwrap().to_owned())
        .collect();
    let sources: Vec<Value> = ids.iter().map(|id| json!({"sourceServerID": id})).collect();
    sim_call(
        &sim,
        "POST",
        "/StartRecovery",
        json!({"sourceServers": sources, "isDrill": true}),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let instances = loop {
        let state = sim_call(&sim, "GET", "/_drplan/state", json!({})).await;
        let found: Vec<(String, String)> = state["recovery_instances"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["in_moto"] == true)
            .map(|i| {
                (
                    i["source_server_id"].as_str().unwrap().to_owned(),
                    i["ec2_instance_id"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        if found.len() == 3 {
            // In seeding order (db-001, db-002, db-003), not launch order.
            let mut ordered = found;
            ordered.sort_by_key(|(server, _)| ids.iter().position(|id| id == server));
            break ordered;
        }
        assert!(Instant::now() < deadline, "instances not launched: {state}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // db-002 (critical) refuses every connection; db-003 (optional) answers 500.
    sim_call(
        &sim,
        "POST",
        "/_drplan/faults",
        json!([{"kind": "unhealthy_instances", "targets": ["db-002"], "mode": "refuse"},
               {"kind": "unhealthy_instances", "targets": ["db-003"]}]),
    )
    .await;

    let (credentials, region) = sdk_parts();
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .credentials_provider(credentials.clone())
            .region(region.clone())
            .endpoint_url(&moto.endpoint)
            .force_path_style(true)
            .build(),
    );
    s3.create_bucket()
        .bucket("drplan-test")
        .send()
        .await
        .unwrap();
    let clients = Clients {
        drs: aws_sdk_drs::Client::from_conf(
            aws_sdk_drs::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .credentials_provider(credentials.clone())
                .region(region.clone())
                .endpoint_url(format!("http://{}", sim.addr()))
                .build(),
        ),
        ec2: aws_sdk_ec2::Client::from_conf(
            aws_sdk_ec2::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .credentials_provider(credentials.clone())
                .region(region.clone())
                .endpoint_url(&moto.endpoint)
                .build(),
        ),
        // The plan of this test names no target group: the gate makes no ELBv2 call.
        elb: aws_sdk_elasticloadbalancingv2::Client::from_conf(
            aws_sdk_elasticloadbalancingv2::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .credentials_provider(credentials)
                .region(region)
                .endpoint_url(&moto.endpoint)
                .build(),
        ),
        store: RunStore::new(s3, "drplan-test".into()),
        // What DRPLAN_PROBE_LOOPBACK=1 sets, without touching this process's environment.
        probes: ProbeSettings {
            addressing: ProbeAddressing {
                probe_public_ip: false,
                map_to_loopback: true,
            },
            connect_timeout: Duration::from_millis(500),
            read_timeout: Duration::from_secs(1),
            ..ProbeSettings::default()
        },
    };

    let run = RunContext {
        execution_id: "arn:aws:states:us-east-1:123456789012:execution:drplan-recovery:t1".into(),
        execution_name: "t1".into(),
        plan: "shop".into(),
        mode: Mode::Drill,
        started_at: Timestamp::now(),
        snapshot: SnapshotChoice::Latest,
        timing: Timing {
            health_interval_seconds: 5,
            ..Timing::default()
        },
        quotas: Quotas::default(),
        deadline: None,
        resumed: None,
        origin_region: None,
    };
    let wave = WaveRef {
        index: 0,
        name: "database".into(),
        servers: 3,
        hooks: Default::default(),
        adopted: false,
    };
    let plan = json!({
        "name": "shop", "rto_minutes": 30, "selector": {"dr:plan": "shop"},
        "waves": [{"name": "database", "selector": {"dr:wave": "db"},
                   "optional_servers": {"dr:role": "batch"},
                   "health": {"checks": ["ec2-status", "tcp:5432", "http:8080/health",
                                         "https:8443/health"],
                              "timeout_minutes": 15}}]
    });
    clients
        .store
        .write(&run.records().plan_document(), &plan)
        .await
        .unwrap();
    let outcomes = instances
        .iter()
        .enumerate()
        .map(|(n, (server, instance))| ServerOutcome {
            source_server_id: server.clone(),
            hostname: Some(format!("db-00{}", n + 1)),
            optional: n == 2,
            state: ServerState::Launched,
            job_id: None,
            recovery_instance_id: Some(instance.clone()),
            // One server without it: the handler asks DRS.
            ec2_instance_id: (n != 0).then(|| instance.clone()),
            error: None,
            carried_from: None,
        })
        .collect();
    let launch = WaveLaunchRecord {
        wave: wave.clone(),
        progress: WaveProgress { servers: outcomes },
        log: Vec::new(),
        job_ids: Vec::new(),
        finished_at: Timestamp::now(),
    };
    clients
        .store
        .write(&run.records().wave(&wave).launch(), &launch)
        .await
        .unwrap();
    let step = |health: Option<HealthPoll>| WaveStep {
        run: run.clone(),
        wave: wave.clone(),
        poll: None,
        health,
    };

    // First poll: the deadline comes from the wave's 15 minutes; db-002 is not healthy yet.
    let first = health_check(&clients, step(None)).await.unwrap();
    let poll = first.health.clone().unwrap();
    assert_eq!(poll.state, LaunchState::InProgress, "{poll:?}");
    assert_eq!((poll.attempt, poll.wait_seconds), (1, 5));
    assert_eq!((poll.healthy, poll.unhealthy), (1, 2));
    let minutes_left = poll.deadline.duration_since(Timestamp::now()).as_secs() / 60;
    assert!((14..=15).contains(&minutes_left), "{poll:?}");
    let record: WaveHealthRecord = clients
        .store
        .require(&run.records().wave(&wave).health())
        .await
        .unwrap();
    assert_eq!(record.probe_addressing, "loopback");
    let db1 = &record.servers[0];
    assert_eq!(db1.state, ServerHealthState::Healthy, "{db1:?}");
    assert!(db1.probe_address.as_deref().unwrap().starts_with("127."));
    assert!(db1.healthy_since.is_some());
    let https = db1
        .checks
        .iter()
        .find(|c| c.check == "https:8443/health")
        .expect("the https check's result");
    assert_eq!(https.detail, "HTTP 200 (HTTPS, TLS 1.3)", "{db1:?}");
    let db3 = &record.servers[2];
    assert_eq!(
        db3.why_not_healthy(),
        "http:8080/health HTTP 500 (expected 2xx or 3xx), https:8443/health HTTP 500 (expected 2xx or 3xx)"
    );

    // At the deadline, the refusing critical server fails the wave.
    let past = HealthPoll {
        deadline: Timestamp::now() - SignedDuration::from_secs(1),
        ..poll
    };
    let failed = health_check(&clients, step(Some(past.clone())))
        .await
        .unwrap()
        .health
        .unwrap();
    assert_eq!(failed.state, LaunchState::Failed);
    assert_eq!(failed.attempt, 2);
    assert_eq!(
        failed.reason.as_deref(),
        Some(
            "wave \"database\": db-002 is not healthy: tcp:5432 refused (connection refused), http:8080/health refused (connection refused), https:8443/health refused (connection refused) after 15 min"
        )
    );

    // Once it serves again, every critical server is healthy; the optional 500 is reported.
    sim_call(&sim, "DELETE", "/_drplan/faults", json!({})).await;
    sim_call(
        &sim,
        "POST",
        "/_drplan/faults",
        json!({"kind": "unhealthy_instances", "targets": ["db-003"]}),
    )
    .await;
    let passed = health_check(&clients, step(Some(past))).await.unwrap();
    let health = passed.health.unwrap();
    assert_eq!(health.state, LaunchState::Succeeded, "{health:?}");
    assert_eq!((health.healthy, health.unhealthy), (2, 1));
    let record: WaveHealthRecord = clients
        .store
        .require(&run.records().wave(&wave).health())
        .await
        .unwrap();
    assert_eq!(record.state, "SUCCEEDED");
    assert!(record.healthy_at.is_some());
    // db-001 stayed healthy: its time of turning healthy carries over.
    assert_eq!(record.servers[0].healthy_since, db1.healthy_since);

    // A wave that probes public IPs: moto's default subnet gives each instance one, and
    // the probes go to its stand-in, not the private IP's.
    let mut public_plan = plan.clone();
    public_plan["waves"][0]["health"]["probe_address"] = json!("public-ip");
    clients
        .store
        .write(&run.records().plan_document(), &public_plan)
        .await
        .unwrap();
    let private_stand_in = record.servers[0].probe_address.clone();
    let public_ip = clients
        .ec2
        .describe_instances()
        .instance_ids(&instances[0].1)
        .send()
        .await
        .unwrap()
        .reservations()[0]
        .instances()[0]
        .public_ip_address()
        .expect("moto's default subnet maps public IPs")
        .parse::<std::net::Ipv4Addr>()
        .unwrap();
    let by_public = health_check(&clients, step(Some(health))).await.unwrap();
    assert_eq!(by_public.health.unwrap().state, LaunchState::Succeeded);
    let record: WaveHealthRecord = clients
        .store
        .require(&run.records().wave(&wave).health())
        .await
        .unwrap();
    assert_eq!(record.probe_addressing, "loopback-public-ip");
    let db1 = &record.servers[0];
    assert_eq!(
        db1.probe_address.as_deref(),
        Some(
            drplan_core::health::loopback_for(public_ip)
                .to_string()
                .as_str()
        )
    );
    assert_ne!(db1.probe_address, private_stand_in);
    assert_eq!(db1.state, ServerHealthState::Healthy, "{db1:?}");
    sim.shutdown().await;
}
