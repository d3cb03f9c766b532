//! The plan: which servers to recover, in which waves, how to check them, and where
//! traffic goes afterwards. This is the typed model; [`crate::parse`] builds it from
//! YAML or JSON and reports every problem at once.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Serialize, Serializer};

/// Tags a source server must carry, all of them, with these exact values.
pub type Selector = BTreeMap<String, String>;

/// Default health timeout of a wave, in minutes.
pub const DEFAULT_HEALTH_TIMEOUT_MINUTES: u32 = 15;
/// Default TTL of a cut-over record: short, so clients follow a failback quickly.
pub const DEFAULT_RECORD_TTL: u32 = 60;
/// Default time an approver has before the execution gives up, in minutes.
pub const DEFAULT_APPROVAL_TIMEOUT_MINUTES: u32 = 60;
/// Default time drill instances are kept for inspection, in minutes.
pub const DEFAULT_DRILL_KEEP_MINUTES: u32 = 60;
/// Default time recovery instances are kept after a successful failback, in minutes.
pub const DEFAULT_FAILBACK_KEEP_RECOVERY_MINUTES: u32 = 60;
/// Default minimum time between two runs of a plan started by alarms, in minutes.
pub const DEFAULT_TRIGGER_MIN_GAP_MINUTES: u32 = 60;
/// The tag that orders waves when a plan lists none.
pub const WAVE_TAG: &str = "dr:wave";

/// A disaster-recovery plan.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "drplan plan", description = "A drplan disaster-recovery plan")]
pub struct Plan {
    /// Plan name: letters, digits, `-` and `_`, at most 64 characters.
    #[schemars(regex(pattern = r"^[A-Za-z0-9_-]{1,64}$"))]
    pub name: String,
    /// Recovery time objective: the longest acceptable time from start to service restored.
    #[schemars(range(min = 1))]
    pub rto_minutes: u32,
    /// Recovery point objective: the most data loss, as replication lag, that is acceptable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub rpo_minutes: Option<u32>,
    /// Tags that select the plan's DRS source servers (all must match).
    #[schemars(length(min = 1))]
    pub selector: Selector,
    /// The waves, in any order; `depends_on` orders them. When omitted, waves come from
    /// the `dr:wave` tag of the selected servers, one after the other by tag value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waves: Option<Vec<Wave>>,
    /// Route 53 records to cut over to the recovered instances (recovery mode only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<Dns>,
    /// Whether a person must approve before anything launches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<Approval>,
    /// How drills run: isolated subnet and how long drill instances are kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drill: Option<Drill>,
    /// CloudWatch alarms that start this plan when they go to ALARM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub triggers: Option<Triggers>,
    /// How failbacks (`mode: failback`) of this plan end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failback: Option<Failback>,
}

/// How a failback ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Failback {
    /// Minutes the recovery instances are kept after a successful failback before they
    /// are terminated (0: at once). A failed failback never terminates them.
    #[serde(default = "default_keep_recovery")]
    pub keep_recovery_minutes: u32,
}

fn default_keep_recovery() -> u32 {
    DEFAULT_FAILBACK_KEEP_RECOVERY_MINUTES
}

impl Default for Failback {
    fn default() -> Self {
        Self {
            keep_recovery_minutes: DEFAULT_FAILBACK_KEEP_RECOVERY_MINUTES,
        }
    }
}

/// A group of servers launched together, after the waves it depends on are healthy.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Wave {
    /// Wave name, unique in the plan.
    #[schemars(regex(pattern = r"^[A-Za-z0-9_.-]{1,64}$"))]
    pub name: String,
    /// Tags that select this wave's servers among the plan's servers.
    #[schemars(length(min = 1))]
    pub selector: Selector,
    /// Waves that must be healthy before this one launches.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    /// Tags of servers whose failure does not fail the wave.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional_servers: Option<Selector>,
    /// The health gate; when omitted, EC2 status checks with the default timeout.
    #[serde(default)]
    pub health: Health,
    /// Lambda functions called before launch and after the health gate.
    #[serde(default, skip_serializing_if = "Hooks::is_empty")]
    pub hooks: Hooks,
    /// ELBv2 target groups the wave's healthy instances are registered into after its
    /// health checks pass; their target health is part of the gate. A recovery uses the
    /// targets without `drill: true`, a drill only those with it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<Target>,
}

/// One target group a wave's healthy instances join (RegisterTargets, by instance ID).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// `arn:aws:elasticloadbalancing:REGION:ACCOUNT:targetgroup/NAME/ID`, a target group
    /// of target type `instance`.
    #[schemars(regex(
        pattern = r"^arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:[0-9]{12}:targetgroup/[A-Za-z0-9-]{1,32}/[0-9a-f]{1,32}$"
    ))]
    pub target_group_arn: String,
    /// The port the instances receive traffic on.
    #[schemars(range(min = 1, max = 65535))]
    pub port: u16,
    /// A target group that exists for drills: only drills register into it, and
    /// recoveries leave it alone. Without it (the default) only recoveries use the target
    /// group: a drill never registers into a recovery target group.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub drill: bool,
}

impl Target {
    /// Whether a run in `mode` registers into this target group.
    pub fn used_by(&self, mode: Mode) -> bool {
        match mode {
            Mode::Drill => self.drill,
            Mode::Recovery => !self.drill,
            // A failback brings servers home, out of AWS: no target group takes them.
            Mode::Failback => false,
        }
    }
}

/// What must pass before a wave counts as recovered.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Health {
    /// `ec2-status`, `tcp:PORT`, `http:PORT/PATH` or `https:PORT/PATH`.
    #[schemars(length(min = 1))]
    pub checks: Vec<HealthCheck>,
    /// Wall-clock limit for the whole gate, in minutes.
    #[serde(default = "default_health_timeout")]
    #[schemars(range(min = 1))]
    pub timeout_minutes: u32,
    /// Which address of each instance the tcp/http/https checks go to: `private-ip`
    /// (the default: the health gate runs where the recovery subnet is reachable) or
    /// `public-ip` (for instances reached from outside their VPC).
    #[serde(default, skip_serializing_if = "ProbeAddress::is_private")]
    pub probe_address: ProbeAddress,
}

/// Which of an instance's IPv4 addresses: the private one or the public one (what the
/// health gate probes, and what an A record holds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ProbeAddress {
    #[default]
    PrivateIp,
    PublicIp,
}

impl ProbeAddress {
    pub const NAMES: &[&str] = &["private-ip", "public-ip"];

    pub fn is_private(&self) -> bool {
        *self == Self::PrivateIp
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::PrivateIp => "private-ip",
            Self::PublicIp => "public-ip",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "private-ip" => Some(Self::PrivateIp),
            "public-ip" => Some(Self::PublicIp),
            _ => None,
        }
    }

    /// The address a record gets where it does not say: the zone's kind.
    pub fn of_zone(private_zone: bool) -> Self {
        if private_zone {
            Self::PrivateIp
        } else {
            Self::PublicIp
        }
    }
}

fn default_health_timeout() -> u32 {
    DEFAULT_HEALTH_TIMEOUT_MINUTES
}

impl Default for Health {
    fn default() -> Self {
        Self {
            checks: vec![HealthCheck::Ec2Status],
            timeout_minutes: DEFAULT_HEALTH_TIMEOUT_MINUTES,
            probe_address: ProbeAddress::PrivateIp,
        }
    }
}

/// One health check of a recovered instance.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HealthCheck {
    /// EC2 system and instance status checks ok, instance running.
    Ec2Status,
    /// A TCP connection to the port succeeds.
    Tcp { port: u16 },
    /// An HTTP GET answers 2xx or 3xx.
    Http { port: u16, path: String },
    /// An HTTPS GET answers 2xx or 3xx. The TLS handshake must complete; the
    /// certificate is not checked against a name (probes address instances by IP, which
    /// certificates rarely name), as load balancer health checks do.
    Https { port: u16, path: String },
}

impl fmt::Display for HealthCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ec2Status => f.write_str("ec2-status"),
            Self::Tcp { port } => write!(f, "tcp:{port}"),
            Self::Http { port, path } => write!(f, "http:{port}{path}"),
            Self::Https { port, path } => write!(f, "https:{port}{path}"),
        }
    }
}

/// Why a health check string does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HealthCheckError {
    #[error(
        "unknown check {0:?}: expected ec2-status, tcp:PORT, http:PORT/PATH or https:PORT/PATH"
    )]
    UnknownKind(String),
    #[error("{0:?} is not a port: expected a whole number from 1 to 65535")]
    BadPort(String),
    #[error("{0:?} needs a path after the port, starting with / (for example http:8080/health)")]
    MissingPath(String),
    #[error("{0:?} has spaces or control characters in its path")]
    BadPath(String),
}

impl FromStr for HealthCheck {
    type Err = HealthCheckError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text == "ec2-status" {
            return Ok(Self::Ec2Status);
        }
        let Some((kind, rest)) = text.split_once(':') else {
            return Err(HealthCheckError::UnknownKind(text.to_owned()));
        };
        let parse_port = |digits: &str| -> Result<u16, HealthCheckError> {
            match digits.parse::<u16>() {
                Ok(port) if port >= 1 && digits.chars().all(|c| c.is_ascii_digit()) => Ok(port),
                _ => Err(HealthCheckError::BadPort(digits.to_owned())),
            }
        };
        match kind {
            "tcp" => Ok(Self::Tcp {
                port: parse_port(rest)?,
            }),
            "http" | "https" => {
                let Some(slash) = rest.find('/') else {
                    // Tell "not a port" apart from "no path": `http:abc` is the former.
                    parse_port(rest)?;
                    return Err(HealthCheckError::MissingPath(text.to_owned()));
                };
                let (digits, path) = rest.split_at(slash);
                let port = parse_port(digits)?;
                if path.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    return Err(HealthCheckError::BadPath(text.to_owned()));
                }
                let path = path.to_owned();
                Ok(if kind == "http" {
                    Self::Http { port, path }
                } else {
                    Self::Https { port, path }
                })
            }
            _ => Err(HealthCheckError::UnknownKind(text.to_owned())),
        }
    }
}

impl Serialize for HealthCheck {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl JsonSchema for HealthCheck {
    fn schema_name() -> Cow<'static, str> {
        "HealthCheck".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "ec2-status, tcp:PORT, http:PORT/PATH or https:PORT/PATH (ports 1-65535)",
            "pattern": "^(ec2-status|tcp:[0-9]{1,5}|https?:[0-9]{1,5}/\\S*)$",
            "examples": ["ec2-status", "tcp:5432", "http:8080/health"]
        })
    }
}

/// Lambda functions a wave calls around its launch.
#[derive(Debug, Clone, Default, PartialEq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Hooks {
    /// Called before the wave's StartRecovery.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pre: Vec<Hook>,
    /// Called after the wave's health gate passed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub post: Vec<Hook>,
}

impl Hooks {
    pub fn is_empty(&self) -> bool {
        self.pre.is_empty() && self.post.is_empty()
    }
}

/// One hook: a Lambda function, by ARN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Hook {
    /// `arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]`.
    #[schemars(regex(
        pattern = r"^arn:aws[a-z-]*:lambda:[a-z0-9-]+:[0-9]{12}:function:[A-Za-z0-9_-]{1,64}(:[A-Za-z0-9$_-]+)?$"
    ))]
    pub lambda: String,
}

/// Route 53 records to point at a wave's recovered instances.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Dns {
    /// The hosted zone ID (`Z...`); or give `zone_name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^(/hostedzone/)?[A-Z0-9]{1,32}$"))]
    pub zone_id: Option<String>,
    /// The hosted zone's name (`example.com`), resolved when a run starts; it must name
    /// exactly one zone, public or private (when a public and a private zone share the
    /// name, give `zone_id`). Or give `zone_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone_name: Option<String>,
    /// How a recovery moves traffic: `control-plane` (the default) changes the records
    /// with ChangeResourceRecordSets when the waves are healthy; `data-plane` flips a
    /// CloudWatch alarm behind failover records prepared ahead with `drplan dns
    /// prepare`, and makes no Route 53 call during the run (docs/dns.md).
    #[serde(default, skip_serializing_if = "DnsMode::is_control_plane")]
    pub mode: DnsMode,
    #[schemars(length(min = 1))]
    pub records: Vec<DnsRecord>,
}

/// How a recovery's DNS cutover reaches Route 53.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DnsMode {
    /// ChangeResourceRecordSets during the run (Route 53's control plane, in us-east-1).
    #[default]
    ControlPlane,
    /// Failover records and a health check prepared ahead; the run flips a CloudWatch
    /// alarm in the recovery Region and makes no Route 53 call.
    DataPlane,
}

impl DnsMode {
    pub const ALL: [(&'static str, DnsMode); 2] = [
        ("control-plane", Self::ControlPlane),
        ("data-plane", Self::DataPlane),
    ];

    pub fn is_control_plane(&self) -> bool {
        *self == Self::ControlPlane
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ControlPlane => "control-plane",
            Self::DataPlane => "data-plane",
        }
    }
}

/// One record of the cutover.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DnsRecord {
    /// Fully qualified record name.
    pub name: String,
    #[serde(rename = "type")]
    pub record_type: RecordType,
    /// Seconds; Route 53 accepts 0 to 2147483647. Not with `alias` (an alias record
    /// takes the TTL of what it points at).
    #[serde(default = "default_ttl", skip_serializing_if = "is_default_ttl")]
    #[schemars(range(min = 0, max = 2_147_483_647))]
    pub ttl: u32,
    /// The wave whose healthy instances the record points at.
    pub from_wave: String,
    /// Which IPv4 address of each instance an A record holds. Without it the zone
    /// decides: a public zone gets public addresses, a private zone private ones.
    /// A records only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<RecordAddress>,
    /// Point the record at a load balancer (or any alias target) instead of the
    /// instances: the recovery load balancer, once the wave is healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<AliasTarget>,
    /// Fixed values the record holds once the wave is healthy, instead of the
    /// instances' addresses (IPv4 addresses for A, IPv6 for AAAA, one name for CNAME).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

impl DnsRecord {
    /// Whether the record's recovery target is known before anything launches (an
    /// alias or fixed values), as a data-plane cutover needs.
    pub fn target_known_ahead(&self) -> bool {
        self.alias.is_some() || !self.values.is_empty()
    }
}

/// A Route 53 alias target: a load balancer's DNS name and its canonical hosted zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AliasTarget {
    /// The target's DNS name (an ELB's `DNSName`).
    pub dns_name: String,
    /// The target's hosted zone (an ELB's `CanonicalHostedZoneId`), not the record's.
    #[schemars(regex(pattern = r"^[A-Z0-9]{1,32}$"))]
    pub hosted_zone_id: String,
    /// Route 53 answers with this record only while the target is healthy.
    #[serde(default)]
    pub evaluate_target_health: bool,
}

/// Which of an instance's IPv4 addresses an A record holds: the same two choices as the
/// health gate's [`ProbeAddress`].
pub type RecordAddress = ProbeAddress;

fn default_ttl() -> u32 {
    DEFAULT_RECORD_TTL
}

fn is_default_ttl(ttl: &u32) -> bool {
    *ttl == DEFAULT_RECORD_TTL
}

/// Record types drplan can point at instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
pub enum RecordType {
    A,
    #[allow(clippy::upper_case_acronyms)]
    AAAA,
    #[allow(clippy::upper_case_acronyms)]
    CNAME,
}

impl RecordType {
    pub const ALL: [(&'static str, RecordType); 3] =
        [("A", Self::A), ("AAAA", Self::AAAA), ("CNAME", Self::CNAME)];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::A => "A",
            Self::AAAA => "AAAA",
            Self::CNAME => "CNAME",
        }
    }
}

/// Human approval before a run launches anything.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    /// The modes that need approval.
    pub required_for: Vec<Mode>,
    /// How long to wait for a decision before the run ends with nothing launched.
    #[serde(default = "default_approval_timeout")]
    #[schemars(range(min = 1))]
    pub timeout_minutes: u32,
}

fn default_approval_timeout() -> u32 {
    DEFAULT_APPROVAL_TIMEOUT_MINUTES
}

/// How a run launches: an isolated drill, or a real recovery.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    serde::Deserialize,
    JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Drill,
    Recovery,
    /// Bringing a recovered plan home: StartFailbackLaunch onto the machines whose DRS
    /// Failback Client is in sync, wave by wave, then DNS back and the recovery
    /// instances terminated.
    Failback,
}

impl Mode {
    pub const ALL: [(&'static str, Mode); 3] = [
        ("drill", Self::Drill),
        ("recovery", Self::Recovery),
        ("failback", Self::Failback),
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Drill => "drill",
            Self::Recovery => "recovery",
            Self::Failback => "failback",
        }
    }

    /// Whether the run launches recovery instances in EC2 (drills and recoveries), as
    /// opposed to bringing servers home (failback).
    pub fn launches_in_aws(self) -> bool {
        !matches!(self, Self::Failback)
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which CloudWatch alarms start the plan, in which mode, and how often at most.
/// At least one alarm, or `alarm_tags: true` (started by tagged alarms only).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("anyOf" = [
    {"required": ["alarms"], "properties": {"alarms": {"minItems": 1}}},
    {"required": ["alarm_tags"], "properties": {"alarm_tags": {"const": true}}},
]))]
pub struct Triggers {
    /// Alarm names; a name ending in `*` matches every alarm that starts with the rest.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alarms: Vec<String>,
    /// Whether alarms tagged `drplan:plan=<this plan>` start it (with alarm tag
    /// propagation on), and a `drplan:mode=drill` tag can make their run a drill. Off by
    /// default: whoever can tag an alarm could otherwise start the plan.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub alarm_tags: bool,
    /// The mode of runs an alarm starts. The plan's approval rules apply to it as to any run.
    #[serde(default = "default_trigger_mode")]
    pub mode: Mode,
    /// After an alarm started a run, further alarms start nothing for this many minutes
    /// (they send a "suppressed" notification instead).
    #[serde(default = "default_trigger_gap")]
    pub min_gap_minutes: u32,
}

fn default_trigger_mode() -> Mode {
    Mode::Recovery
}

fn default_trigger_gap() -> u32 {
    DEFAULT_TRIGGER_MIN_GAP_MINUTES
}

impl Triggers {
    /// Whether `alarm_name` is one of [`Self::alarms`] (exactly, or by a `prefix*`).
    pub fn covers(&self, alarm_name: &str) -> bool {
        self.alarms
            .iter()
            .any(|pattern| match pattern.strip_suffix('*') {
                Some(prefix) => alarm_name.starts_with(prefix),
                None => alarm_name == pattern,
            })
    }
}

/// How drills run.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Drill {
    /// Isolated subnet for drill instances: each server's EC2 launch template gets a
    /// version with this subnet, default for the drill's launch and restored after it.
    /// When omitted, drills launch with the recovery launch settings (not isolated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^subnet-[0-9a-z]{1,32}$"))]
    pub subnet_id: Option<String>,
    /// Security groups of drill instances (with `subnet_id`); when omitted, the launch
    /// template's own groups apply, which must then exist in the drill subnet's VPC.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub security_group_ids: Vec<String>,
    /// Allow a drill subnet whose route table routes beyond its VPC (internet, VPN or
    /// transit gateway, peering). Refused by default: such a drill is not isolated.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_routes: bool,
    /// Minutes drill instances are kept before they are terminated (0: at once).
    #[serde(default = "default_keep")]
    pub keep_minutes: u32,
    /// How often the plan must be drilled: readiness warns when the last successful
    /// drill is older than this many days (or there is none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 3650))]
    pub every_days: Option<u32>,
    /// When drills of the plan run by themselves: an EventBridge Scheduler expression
    /// (`rate(7 days)`, `cron(0 3 ? * SUN *)`, `at(2027-01-10T03:00:00)`, UTC), at most
    /// once a day. A firing that finds the plan not ready for a drill is skipped, with
    /// an e-mail that says why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
}

fn default_keep() -> u32 {
    DEFAULT_DRILL_KEEP_MINUTES
}

impl Default for Drill {
    fn default() -> Self {
        Self {
            subnet_id: None,
            security_group_ids: Vec::new(),
            allow_routes: false,
            keep_minutes: DEFAULT_DRILL_KEEP_MINUTES,
            every_days: None,
            schedule: None,
        }
    }
}

impl Plan {
    /// The drill subnet, when drills of this plan are isolated.
    pub fn drill_subnet(&self) -> Option<&str> {
        self.drill.as_ref().and_then(|d| d.subnet_id.as_deref())
    }

    /// Whether a run in `mode` waits for a person's approval.
    pub fn requires_approval(&self, mode: Mode) -> bool {
        self.approval
            .as_ref()
            .is_some_and(|a| a.required_for.contains(&mode))
    }
}

/// The JSON Schema of the plan format, for editors and other tools.
pub fn plan_json_schema() -> serde_json::Value {
    let schema = schemars::generate::SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<Plan>();
    schema.to_value()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_checks_parse_and_print_back() {
        for text in [
            "ec2-status",
            "tcp:5432",
            "http:8080/health",
            "https:443/",
            "tcp:65535",
            "tcp:1",
        ] {
            let check: HealthCheck = text.parse().unwrap();
            assert_eq!(check.to_string(), text);
        }
    }

    #[test]
    fn bad_health_checks_say_why() {
        let err = |t: &str| t.parse::<HealthCheck>().unwrap_err();
        assert!(matches!(err("tcp:0"), HealthCheckError::BadPort(_)));
        assert!(matches!(err("tcp:65536"), HealthCheckError::BadPort(_)));
        assert!(matches!(err("tcp:+80"), HealthCheckError::BadPort(_)));
        assert!(matches!(err("http:8080"), HealthCheckError::MissingPath(_)));
        assert!(matches!(err("http:x/health"), HealthCheckError::BadPort(_)));
        assert!(matches!(err("icmp:1"), HealthCheckError::UnknownKind(_)));
        assert!(matches!(err("ping"), HealthCheckError::UnknownKind(_)));
        assert!(matches!(err("http:80/a b"), HealthCheckError::BadPath(_)));
    }
}
