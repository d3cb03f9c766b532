//! The simulator's in-memory DRS resources and their JSON wire shapes (botocore's
//! `drs/2020-02-26/service-2.json`).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Map, Value, json};

use crate::clock::{Timestamp, iso8601_duration};
use crate::ids::IdGenerator;

pub type Tags = BTreeMap<String, String>;

/// DataReplicationState values DRS documents.
pub const DATA_REPLICATION_STATES: &[&str] = &[
    "STOPPED",
    "INITIATING",
    "INITIAL_SYNC",
    "BACKLOG",
    "CREATING_SNAPSHOT",
    "CONTINUOUS",
    "PAUSED",
    "RESCAN",
    "STALLED",
    "DISCONNECTED",
];

#[derive(Debug, Clone)]
pub struct SourceServer {
    pub id: String,
    /// The Region whose DRS holds this server (and its jobs and recovery instance).
    pub region: String,
    /// `sourceCloudProperties.originRegion`: the Region an EC2 source runs in; None for
    /// sources outside AWS.
    pub origin_region: Option<String>,
    pub arn: String,
    pub hostname: String,
    pub fqdn: String,
    pub tags: Tags,
    pub replication: Replication,
    pub added: Timestamp,
    /// Subnet of the launch template's first version; None lets EC2 pick its default
    /// subnet. With EC2 the template's default version decides at each launch; without EC2
    /// every launch (drill or recovery) uses this subnet.
    pub launch_subnet_id: Option<String>,
    /// Security groups of the launch template's first version.
    pub launch_security_group_ids: Vec<String>,
    pub instance_type: String,
    pub image_id: String,
    pub source_ip: String,
    pub mac_address: String,
    pub recovery_instance_id: Option<String>,
    pub last_launch: Option<LastLaunch>,
    /// NOT_STARTED, PENDING, SUCCEEDED or FAILED.
    pub last_launch_result: &'static str,
    /// FAILOVER, or FAILBACK for servers that ReverseReplication created.
    pub replication_direction: &'static str,
    pub reversed_direction_source_server_arn: Option<String>,
    /// The recovery instance (ID) this server replicates from, when ReverseReplication
    /// pointed it at one: a reversed server replicating its original's recovery instance,
    /// or an original protecting the instance that a failback launched. None: the server
    /// replicates its own source machine. Terminating that instance disconnects the server.
    pub replicates_from: Option<String>,
    /// Set once a failback launch brought the server home: the source machine runs
    /// again at `source_ip`, and its probe listeners are served under this name.
    pub failed_back_machine: Option<String>,
    /// GetLaunchConfiguration's `ec2LaunchTemplateID`: a real template in moto when
    /// `launch_template_in_ec2`, else made up.
    pub launch_template_id: String,
    pub launch_template_in_ec2: bool,
}

#[derive(Debug, Clone)]
pub struct Replication {
    pub state: String,
    pub lag_seconds: u64,
    /// Set while a stall fault is active; the lag grows from here.
    pub stalled_since: Option<Timestamp>,
    /// The state to return to when the stall is cleared.
    pub state_before_stall: Option<String>,
}

#[derive(Debug, Clone)]
pub struct LastLaunch {
    pub job_id: String,
    pub api_call: Timestamp,
    pub is_drill: bool,
    /// LaunchStatus: PENDING, IN_PROGRESS, LAUNCHED, FAILED, TERMINATED.
    pub status: &'static str,
}

impl SourceServer {
    pub fn lag_seconds(&self, now: Timestamp) -> u64 {
        match self.replication.stalled_since {
            Some(since) => self.replication.lag_seconds + now.seconds_since(since),
            None => self.replication.lag_seconds,
        }
    }

    pub fn to_json(&self, region: &str, now: Timestamp) -> Value {
        let lag = self.lag_seconds(now);
        let mut replication = Map::new();
        replication.insert("dataReplicationState".into(), json!(self.replication.state));
        replication.insert("lagDuration".into(), json!(iso8601_duration(lag)));
        // DRS gives an ETA only while it is catching up.
        if matches!(
            self.replication.state.as_str(),
            "INITIAL_SYNC" | "BACKLOG" | "RESCAN"
        ) {
            replication.insert(
                "etaDateTime".into(),
                json!(
                    now.plus(std::time::Duration::from_secs(lag.max(60)))
                        .iso8601()
                ),
            );
        }
        if self.replication.state == "STALLED" {
            replication.insert(
                "dataReplicationError".into(),
                json!({"error": "UNSTABLE_NETWORK", "rawError": "Replication has stalled"}),
            );
        }
        replication.insert(
            "replicatedDisks".into(),
            json!([{
                "deviceName": "/dev/xvda",
                "totalStorageBytes": 8_589_934_592_u64,
                "replicatedStorageBytes": 8_589_934_592_u64,
                "rescannedStorageBytes": 0,
                "backloggedStorageBytes": 0,
            }]),
        );
        replication.insert(
            "stagingAvailabilityZone".into(),
            json!(format!("{region}a")),
        );

        let mut life_cycle = Map::new();
        life_cycle.insert("addedToServiceDateTime".into(), json!(self.added.iso8601()));
        life_cycle.insert("firstByteDateTime".into(), json!(self.added.iso8601()));
        life_cycle.insert(
            "elapsedReplicationDuration".into(),
            json!(iso8601_duration(now.seconds_since(self.added))),
        );
        life_cycle.insert("lastSeenByServiceDateTime".into(), json!(now.iso8601()));
        if let Some(last_launch) = &self.last_launch {
            life_cycle.insert(
                "lastLaunch".into(),
                json!({
                    "initiated": {
                        "apiCallDateTime": last_launch.api_call.iso8601(),
                        "jobID": last_launch.job_id,
                        "type": if last_launch.is_drill { "DRILL" } else { "RECOVERY" },
                    },
                    "status": last_launch.status,
                }),
            );
        }

        let mut server = Map::new();
        server.insert("sourceServerID".into(), json!(self.id));
        server.insert("arn".into(), json!(self.arn));
        server.insert("tags".into(), json!(self.tags));
        if let Some(recovery_instance_id) = &self.recovery_instance_id {
            server.insert("recoveryInstanceId".into(), json!(recovery_instance_id));
        }
        server.insert("lastLaunchResult".into(), json!(self.last_launch_result));
        server.insert("dataReplicationInfo".into(), Value::Object(replication));
        server.insert("lifeCycle".into(), Value::Object(life_cycle));
        server.insert(
            "sourceProperties".into(),
            json!({
                "lastUpdatedDateTime": self.added.iso8601(),
                "recommendedInstanceType": self.instance_type,
                "identificationHints": {"hostname": self.hostname, "fqdn": self.fqdn},
                "networkInterfaces": [{
                    "macAddress": self.mac_address,
                    "ips": [self.source_ip],
                    "isPrimary": true,
                }],
                "disks": [{"deviceName": "/dev/xvda", "bytes": 8_589_934_592_u64}],
                "cpus": [{"cores": 2, "modelName": "Intel(R) Xeon(R) Platinum 8259CL"}],
                "ramBytes": 4_294_967_296_u64,
                "os": {"fullString": "Linux version 6.1 (Amazon Linux 2023)"},
                "supportsNitroInstances": true,
            }),
        );
        server.insert("stagingArea".into(), json!({"status": "NOT_EXTENDED"}));
        if let Some(origin_region) = &self.origin_region {
            server.insert(
                "sourceCloudProperties".into(),
                json!({
                    "originRegion": origin_region,
                    "originAvailabilityZone": format!("{origin_region}a"),
                    "originAccountID": self.arn.split(':').nth(4).unwrap_or_default(),
                }),
            );
        }
        server.insert(
            "replicationDirection".into(),
            json!(self.replication_direction),
        );
        if let Some(arn) = &self.reversed_direction_source_server_arn {
            server.insert("reversedDirectionSourceServerArn".into(), json!(arn));
        }
        server.insert("agentVersion".into(), json!("4.11.0"));
        Value::Object(server)
    }

    pub fn launch_configuration_json(&self) -> Value {
        json!({
            "sourceServerID": self.id,
            "name": self.hostname,
            "ec2LaunchTemplateID": self.launch_template_id,
            "launchDisposition": "STARTED",
            "targetInstanceTypeRightSizingMethod": "BASIC",
            "copyPrivateIp": false,
            "copyTags": true,
            "licensing": {"osByol": true},
            "postLaunchEnabled": false,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    Pending,
    Started,
    Completed,
}

impl JobStatus {
    pub fn wire(self) -> &'static str {
        match self {
            JobStatus::Pending => "PENDING",
            JobStatus::Started => "STARTED",
            JobStatus::Completed => "COMPLETED",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Job {
    pub id: String,
    /// The Region whose DRS ran the job.
    pub region: String,
    pub arn: String,
    /// LAUNCH or TERMINATE.
    pub job_type: &'static str,
    /// START_RECOVERY, START_DRILL, FAILBACK or TERMINATE_RECOVERY_INSTANCES.
    pub initiated_by: &'static str,
    pub is_drill: bool,
    pub created: Timestamp,
    pub ended: Option<Timestamp>,
    pub status: JobStatus,
    pub participants: Vec<Participant>,
    pub tags: Tags,
    pub log: Vec<JobLogItem>,
}

#[derive(Debug, Clone)]
pub struct Participant {
    pub source_server_id: String,
    pub recovery_instance_id: Option<String>,
    /// PENDING, IN_PROGRESS, LAUNCHED, FAILED or TERMINATED.
    pub launch_status: &'static str,
}

#[derive(Debug, Clone)]
pub struct JobLogItem {
    pub time: Timestamp,
    pub event: &'static str,
    pub data: JobLogData,
}

#[derive(Debug, Clone, Default)]
pub struct JobLogData {
    pub source_server_id: Option<String>,
    pub conversion_server_id: Option<String>,
    pub target_instance_id: Option<String>,
    pub raw_error: Option<String>,
}

impl Job {
    pub fn is_active(&self) -> bool {
        self.status != JobStatus::Completed
    }

    pub fn to_json(&self) -> Value {
        let participants: Vec<Value> = self
            .participants
            .iter()
            .map(|participant| {
                let mut item = Map::new();
                item.insert("sourceServerID".into(), json!(participant.source_server_id));
                if let Some(id) = &participant.recovery_instance_id {
                    item.insert("recoveryInstanceID".into(), json!(id));
                }
                item.insert("launchStatus".into(), json!(participant.launch_status));
                Value::Object(item)
            })
            .collect();
        let mut job = Map::new();
        job.insert("jobID".into(), json!(self.id));
        job.insert("arn".into(), json!(self.arn));
        job.insert("type".into(), json!(self.job_type));
        job.insert("initiatedBy".into(), json!(self.initiated_by));
        job.insert("creationDateTime".into(), json!(self.created.iso8601()));
        if let Some(ended) = self.ended {
            job.insert("endDateTime".into(), json!(ended.iso8601()));
        }
        job.insert("status".into(), json!(self.status.wire()));
        job.insert("participatingServers".into(), Value::Array(participants));
        job.insert("tags".into(), json!(self.tags));
        Value::Object(job)
    }

    pub fn participant_mut(&mut self, source_server_id: &str) -> Option<&mut Participant> {
        self.participants
            .iter_mut()
            .find(|participant| participant.source_server_id == source_server_id)
    }
}

impl JobLogItem {
    pub fn to_json(&self) -> Value {
        let mut data = Map::new();
        let fields = [
            ("sourceServerID", &self.data.source_server_id),
            ("conversionServerID", &self.data.conversion_server_id),
            ("targetInstanceID", &self.data.target_instance_id),
            ("rawError", &self.data.raw_error),
        ];
        for (name, value) in fields {
            if let Some(value) = value {
                data.insert(name.into(), json!(value));
            }
        }
        let mut item = Map::new();
        item.insert("logDateTime".into(), json!(self.time.iso8601()));
        item.insert("event".into(), json!(self.event));
        if !data.is_empty() {
            item.insert("eventData".into(), Value::Object(data));
        }
        Value::Object(item)
    }
}

#[derive(Debug, Clone)]
pub struct RecoveryInstance {
    pub id: String,
    pub arn: String,
    pub ec2_instance_id: String,
    /// EC2InstanceState: RUNNING, SHUTTING-DOWN, TERMINATED...
    pub ec2_state: &'static str,
    pub job_id: String,
    pub source_server_id: String,
    pub is_drill: bool,
    pub tags: Tags,
    pub point_in_time: Timestamp,
    pub private_ip: Option<String>,
    /// Set when moto gave the instance one (a subnet that maps public IPs on launch).
    pub public_ip: Option<String>,
    pub subnet_id: Option<String>,
    /// The security groups it was launched with (from the launch template; moto only).
    pub security_group_ids: Vec<String>,
    /// FailbackState; None reads as FAILBACK_NOT_STARTED.
    pub failback_state: Option<&'static str>,
    pub failback_job_id: Option<String>,
    /// Set while a (simulated) Failback Client is connected.
    pub failback_client_id: Option<String>,
    pub failback_initiated: Option<Timestamp>,
    /// Bumped by each connection and StopFailback, so that a sync timer of an earlier
    /// connection does not mark a stopped failback ready.
    pub failback_epoch: u64,
    /// Whether the server came from EC2 (originEnvironment AWS) or from outside AWS.
    pub origin_is_aws: bool,
    /// Whether the EC2 instance lives in moto (and so must be terminated there).
    pub in_moto: bool,
}

impl RecoveryInstance {
    pub fn to_json(&self, hostname: &str, region: &str) -> Value {
        let mut instance = Map::new();
        instance.insert("ec2InstanceID".into(), json!(self.ec2_instance_id));
        instance.insert("ec2InstanceState".into(), json!(self.ec2_state));
        instance.insert("jobID".into(), json!(self.job_id));
        instance.insert("recoveryInstanceID".into(), json!(self.id));
        instance.insert("sourceServerID".into(), json!(self.source_server_id));
        instance.insert("arn".into(), json!(self.arn));
        instance.insert("tags".into(), json!(self.tags));
        instance.insert("isDrill".into(), json!(self.is_drill));
        instance.insert(
            "pointInTimeSnapshotDateTime".into(),
            json!(self.point_in_time.iso8601()),
        );
        instance.insert(
            "originEnvironment".into(),
            json!(if self.origin_is_aws {
                "AWS"
            } else {
                "ON_PREMISES"
            }),
        );
        let mut failback = Map::new();
        failback.insert(
            "state".into(),
            json!(self.failback_state.unwrap_or("FAILBACK_NOT_STARTED")),
        );
        if let Some(job_id) = &self.failback_job_id {
            failback.insert("failbackJobID".into(), json!(job_id));
        }
        if let Some(client_id) = &self.failback_client_id {
            failback.insert("failbackClientID".into(), json!(client_id));
            failback.insert("failbackToOriginalServer".into(), json!(true));
        }
        if let Some(initiated) = self.failback_initiated {
            failback.insert("failbackInitiationTime".into(), json!(initiated.iso8601()));
            failback.insert("firstByteDateTime".into(), json!(initiated.iso8601()));
        }
        instance.insert("failback".into(), Value::Object(failback));
        let ips: Vec<&String> = self.private_ip.iter().collect();
        instance.insert(
            "recoveryInstanceProperties".into(),
            json!({
                "lastUpdatedDateTime": self.point_in_time.iso8601(),
                "identificationHints": {
                    "hostname": hostname,
                    "awsInstanceID": self.ec2_instance_id,
                },
                "networkInterfaces": [{"ips": ips, "isPrimary": true}],
            }),
        );
        instance.insert("originAvailabilityZone".into(), json!(format!("{region}a")));
        Value::Object(instance)
    }
}

#[derive(Debug, Clone)]
pub struct RecoverySnapshot {
    pub id: String,
    pub source_server_id: String,
    pub expected: Timestamp,
    pub taken: Timestamp,
    pub ebs_snapshots: Vec<String>,
}

impl RecoverySnapshot {
    pub fn to_json(&self) -> Value {
        json!({
            "snapshotID": self.id,
            "sourceServerID": self.source_server_id,
            "expectedTimestamp": self.expected.iso8601(),
            "timestamp": self.taken.iso8601(),
            "ebsSnapshots": self.ebs_snapshots,
        })
    }
}

/// One DRS API call, as `GET /_drplan/calls` reports it.
#[derive(Debug, Clone)]
pub struct CallRecord {
    pub operation: String,
    pub time: Timestamp,
    pub status: u16,
    /// The servers a StartRecovery asked for; the instances a Terminate/Failback named.
    pub resource_ids: Option<Vec<String>>,
    pub error: Option<String>,
}

impl CallRecord {
    pub fn to_json(&self) -> Value {
        let mut record = Map::new();
        record.insert("operation".into(), json!(self.operation));
        record.insert("time".into(), json!(self.time.iso8601()));
        record.insert("status".into(), json!(self.status));
        if let Some(ids) = &self.resource_ids {
            let key = if self.operation == "StartRecovery" {
                "source_server_ids"
            } else {
                "recovery_instance_ids"
            };
            record.insert(key.into(), json!(ids));
        }
        if let Some(error) = &self.error {
            record.insert("error".into(), json!(error));
        }
        Value::Object(record)
    }
}

#[derive(Debug, Clone)]
pub struct ThrottleFault {
    pub remaining: u32,
    pub retry_after_seconds: u64,
}

#[derive(Debug, Clone)]
pub struct SlowConversion {
    pub factor: f64,
    pub extra_seconds: f64,
}

/// Injected faults, all keyed by resolved source server ID except throttles (by operation)
/// and unhealthy instances (by what the caller named).
#[derive(Debug, Default)]
pub struct Faults {
    pub throttles: BTreeMap<String, ThrottleFault>,
    pub failed_launches: BTreeMap<String, String>,
    /// Failback launches that fail, by source server ID, with their rawError.
    pub failed_failback_launches: BTreeMap<String, String>,
    /// Servers whose `DRS Source Server Launch Result` event is lost on its way (never
    /// put on EventBridge; recorded as not delivered).
    pub lost_launch_results: BTreeSet<String>,
    pub slow_conversions: BTreeMap<String, SlowConversion>,
    pub unhealthy_targets: BTreeSet<String>,
    /// The unhealthy targets in `refuse` mode (listeners closed); the others answer 500.
    pub refusing_targets: BTreeSet<String>,
}

/// An event the simulator put (or tried to put) on EventBridge.
#[derive(Debug, Clone)]
pub struct EmittedEvent {
    pub event: Value,
    pub delivered: bool,
    pub error: Option<String>,
}

/// All of the simulator's state, behind one lock that is never held across an await.
#[derive(Debug)]
pub struct State {
    pub ids: IdGenerator,
    /// Source servers in creation order (pagination walks this order).
    pub servers: Vec<SourceServer>,
    pub server_index: HashMap<String, usize>,
    pub jobs: Vec<Job>,
    pub job_index: HashMap<String, usize>,
    /// Recovery instances in launch order; terminated ones are removed.
    pub recovery_instances: Vec<RecoveryInstance>,
    pub snapshots: Vec<RecoverySnapshot>,
    pub calls: Vec<CallRecord>,
    pub faults: Faults,
    pub events: Vec<EmittedEvent>,
    /// Failures talking to moto EC2, kept for `GET /_drplan/state`.
    pub outbound_errors: Vec<String>,
    /// Bumped by reset so that job tasks of a previous generation stop writing.
    pub generation: u64,
}

impl State {
    pub fn new() -> Self {
        Self {
            ids: IdGenerator::new(),
            servers: Vec::new(),
            server_index: HashMap::new(),
            jobs: Vec::new(),
            job_index: HashMap::new(),
            recovery_instances: Vec::new(),
            snapshots: Vec::new(),
            calls: Vec::new(),
            faults: Faults::default(),
            events: Vec::new(),
            outbound_errors: Vec::new(),
            generation: 0,
        }
    }

    pub fn reset(&mut self) {
        let generation = self.generation + 1;
        *self = State::new();
        self.generation = generation;
    }

    pub fn server(&self, id: &str) -> Option<&SourceServer> {
        self.server_index.get(id).map(|&index| &self.servers[index])
    }

    pub fn server_mut(&mut self, id: &str) -> Option<&mut SourceServer> {
        self.server_index
            .get(id)
            .copied()
            .map(move |index| &mut self.servers[index])
    }

    /// Finds a server by its ID or its hostname (what fault injection accepts).
    pub fn resolve_server(&self, id_or_hostname: &str) -> Option<&SourceServer> {
        self.server(id_or_hostname).or_else(|| {
            self.servers
                .iter()
                .find(|server| server.hostname == id_or_hostname)
        })
    }

    pub fn add_server(&mut self, server: SourceServer) {
        self.server_index
            .insert(server.id.clone(), self.servers.len());
        self.servers.push(server);
    }

    pub fn job(&self, id: &str) -> Option<&Job> {
        self.job_index.get(id).map(|&index| &self.jobs[index])
    }

    pub fn job_mut(&mut self, id: &str) -> Option<&mut Job> {
        self.job_index
            .get(id)
            .copied()
            .map(move |index| &mut self.jobs[index])
    }

    pub fn add_job(&mut self, job: Job) {
        self.job_index.insert(job.id.clone(), self.jobs.len());
        self.jobs.push(job);
    }

    pub fn recovery_instance(&self, id: &str) -> Option<&RecoveryInstance> {
        self.recovery_instances
            .iter()
            .find(|instance| instance.id == id)
    }

    pub fn recovery_instance_mut(&mut self, id: &str) -> Option<&mut RecoveryInstance> {
        self.recovery_instances
            .iter_mut()
            .find(|instance| instance.id == id)
    }

    /// The server, if the DRS of `region` holds it: each Region sees only its own.
    pub fn server_in(&self, region: &str, id: &str) -> Option<&SourceServer> {
        self.server(id).filter(|server| server.region == region)
    }

    /// The Region of a recovery instance: its source server's.
    pub fn instance_region(&self, instance: &RecoveryInstance) -> Option<&str> {
        self.server(&instance.source_server_id)
            .map(|server| server.region.as_str())
    }

    pub fn hostname_of(&self, source_server_id: &str) -> &str {
        self.server(source_server_id)
            .map(|server| server.hostname.as_str())
            .unwrap_or("")
    }

    /// The EC2 instance IDs that `unhealthy_targets` name today: instance IDs as given,
    /// servers (by ID or hostname) through their current recovery instance.
    pub fn unhealthy_instance_ids(&self) -> BTreeSet<String> {
        self.instance_ids_of(&self.faults.unhealthy_targets)
    }

    /// The EC2 instance IDs of unhealthy targets in `refuse` mode.
    pub fn refusing_instance_ids(&self) -> BTreeSet<String> {
        self.instance_ids_of(&self.faults.refusing_targets)
    }

    fn instance_ids_of(&self, targets: &BTreeSet<String>) -> BTreeSet<String> {
        let mut ids = BTreeSet::new();
        for target in targets {
            if let Some(server) = self.resolve_server(target) {
                if let Some(instance) = server
                    .recovery_instance_id
                    .as_deref()
                    .and_then(|id| self.recovery_instance(id))
                {
                    ids.insert(instance.ec2_instance_id.clone());
                }
            } else if let Some(instance) = self.recovery_instance(target) {
                ids.insert(instance.ec2_instance_id.clone());
            } else {
                ids.insert(target.clone());
            }
        }
        ids
    }
}
