//! Reading a plan document (YAML or JSON) into a [`Plan`], reporting every problem
//! at once with its path, instead of stopping at the first as serde would.

use serde_json::Value;

use crate::issue::{DocPath, Issue, Issues};
use crate::plan::{
    Approval, DEFAULT_APPROVAL_TIMEOUT_MINUTES, DEFAULT_DRILL_KEEP_MINUTES,
    DEFAULT_FAILBACK_KEEP_RECOVERY_MINUTES, DEFAULT_HEALTH_TIMEOUT_MINUTES,
    DEFAULT_TRIGGER_MIN_GAP_MINUTES, Drill, Failback, Health, HealthCheck, Hook, Hooks, Mode, Plan,
    ProbeAddress, Selector, Triggers, Wave,
};
use crate::validate;

/// The fields each part of the plan accepts. The JSON Schema lists the same ones
/// (checked by a test), so editors and `drplan validate` agree.
pub(crate) const PLAN_FIELDS: &[&str] = &[
    "name",
    "rto_minutes",
    "rpo_minutes",
    "selector",
    "waves",
    "dns",
    "approval",
    "drill",
    "triggers",
    "failback",
];
pub(crate) const WAVE_FIELDS: &[&str] = &[
    "name",
    "selector",
    "depends_on",
    "optional_servers",
    "health",
    "hooks",
    "targets",
];
pub(crate) const HEALTH_FIELDS: &[&str] = &["checks", "timeout_minutes", "probe_address"];
pub(crate) const HOOKS_FIELDS: &[&str] = &["pre", "post"];
pub(crate) const HOOK_FIELDS: &[&str] = &["lambda"];
pub(crate) const APPROVAL_FIELDS: &[&str] = &["required_for", "timeout_minutes"];
pub(crate) const DRILL_FIELDS: &[&str] = &[
    "subnet_id",
    "security_group_ids",
    "allow_routes",
    "keep_minutes",
    "every_days",
    "schedule",
];
/// The longest name of a plan with `drill.schedule`: its schedule is named
/// `drplan-drill-PLAN` (Scheduler: 64 characters) and its drills
/// `PLAN-drill-YYYYMMDDTHHMMSSZ-scheduled` (Step Functions: 80).
pub const MAX_SCHEDULED_PLAN_NAME: usize = 47;
pub(crate) const FAILBACK_FIELDS: &[&str] = &["keep_recovery_minutes"];
pub(crate) const TRIGGERS_FIELDS: &[&str] = &["alarms", "alarm_tags", "mode", "min_gap_minutes"];
/// CloudWatch's longest alarm name.
const MAX_ALARM_NAME_CHARS: usize = 255;

/// Route 53's largest TTL.
const MAX_TTL: u64 = 2_147_483_647;

/// The syntax a document is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Json,
}

impl Format {
    /// By file extension when there is one, else by the first character.
    pub fn guess(file_name: Option<&str>, text: &str) -> Self {
        let lower = file_name.map(str::to_ascii_lowercase);
        match lower.as_deref() {
            Some(n) if n.ends_with(".json") => Self::Json,
            Some(n) if n.ends_with(".yaml") || n.ends_with(".yml") => Self::Yaml,
            _ if text.trim_start().starts_with('{') => Self::Json,
            _ => Self::Yaml,
        }
    }
}

/// Parses and validates a plan document. On failure, every problem found, each with
/// its path in the document.
/// The largest plan drplan reads: far above any real plan (a 4,000-server plan selects
/// its servers by tags), small enough that a function never spends its memory on one.
pub const MAX_PLAN_BYTES: usize = 1024 * 1024;

pub fn parse_plan(text: &str, format: Format) -> Result<Plan, Vec<Issue>> {
    if text.len() > MAX_PLAN_BYTES {
        return Err(vec![Issue::new(
            crate::DOCUMENT_PATH,
            format!(
                "the plan is {} bytes; a plan may be at most {MAX_PLAN_BYTES} bytes (1 MiB)",
                text.len()
            ),
        )]);
    }
    let document = parse_document(text, format).map_err(|issue| vec![issue])?;
    plan_from_value(&document)
}

/// Validates a plan already parsed into a JSON value (for example, a plan passed
/// inline in a Step Functions execution input).
pub fn plan_from_value(document: &Value) -> Result<Plan, Vec<Issue>> {
    let mut reader = Reader::default();
    let plan = reader.plan(document);
    if let Some(plan) = &plan {
        validate::check_plan(plan, &mut reader.issues);
    }
    match plan {
        Some(plan) if reader.issues.is_empty() => Ok(plan),
        _ => Err(reader.issues.into_vec()),
    }
}

/// Parses YAML or JSON text into a generic tree, saying where the syntax broke.
pub fn parse_document(text: &str, format: Format) -> Result<Value, Issue> {
    let root = DocPath::root();
    let parsed = match format {
        // serde_json's message names the line and column.
        Format::Json => {
            serde_json::from_str::<Value>(text).map_err(|e| format!("not valid JSON: {e}"))
        }
        Format::Yaml => serde_norway::from_str::<Value>(text).map_err(|e| {
            // serde_norway names the position in its message already when it knows it.
            format!("not valid YAML: {e}")
        }),
    };
    match parsed {
        Ok(Value::Null) => Err(Issue::new(
            root.as_str(),
            "the document is empty: a plan needs at least name, rto_minutes and selector",
        )),
        Ok(value) => Ok(value),
        Err(message) => Err(Issue::new(root.as_str(), message)),
    }
}

/// Walks the generic tree, building the typed plan and noting every problem. Where a
/// value is wrong it notes the problem and goes on with a placeholder, so later parts
/// are still checked; the placeholder plan never leaves this module.
#[derive(Default)]
struct Reader {
    issues: Issues,
}

impl Reader {
    fn plan(&mut self, document: &Value) -> Option<Plan> {
        let root = DocPath::root();
        let map = self.mapping(document, &root, PLAN_FIELDS)?;
        let name = self
            .required(map, &root, "name")
            .and_then(|(v, p)| self.name(v, &p, NameKind::Plan))
            .unwrap_or_default();
        let rto_minutes = self
            .required(map, &root, "rto_minutes")
            .and_then(|(v, p)| self.whole_number(v, &p, 1, u32::MAX.into(), "minutes"))
            .unwrap_or(1);
        let rpo_minutes = self
            .optional(map, &root, "rpo_minutes")
            .and_then(|(v, p)| self.whole_number(v, &p, 1, u32::MAX.into(), "minutes"));
        let selector = self
            .required(map, &root, "selector")
            .and_then(|(v, p)| self.selector(v, &p))
            .unwrap_or_default();
        let waves = self.optional(map, &root, "waves").map(|(v, p)| {
            let items = self.list(v, &p).unwrap_or_default();
            if items.is_empty() && v.is_array() {
                self.issues.push(
                    &p,
                    "lists no wave: list at least one, or leave `waves` out to take waves from the dr:wave tag",
                );
            }
            items
                .iter()
                .enumerate()
                .map(|(i, w)| self.wave(w, &p.index(i)))
                .collect()
        });
        let dns = self
            .optional(map, &root, "dns")
            .and_then(|(v, p)| self.dns(v, &p));
        let approval = self
            .optional(map, &root, "approval")
            .and_then(|(v, p)| self.approval(v, &p));
        let drill = self
            .optional(map, &root, "drill")
            .and_then(|(v, p)| self.drill(v, &p));
        if drill.as_ref().is_some_and(|d| d.schedule.is_some())
            && name.len() > MAX_SCHEDULED_PLAN_NAME
        {
            self.issues.push(
                &root.key("drill").key("schedule"),
                format!(
                    "a plan with a drill schedule may have a name of at most {MAX_SCHEDULED_PLAN_NAME} characters (its schedule and its drills are named after it); {name:?} has {}",
                    name.len()
                ),
            );
        }
        let triggers = self
            .optional(map, &root, "triggers")
            .and_then(|(v, p)| self.triggers(v, &p));
        let failback = self
            .optional(map, &root, "failback")
            .and_then(|(v, p)| self.failback(v, &p));
        Some(Plan {
            name,
            rto_minutes,
            rpo_minutes,
            selector,
            waves,
            dns,
            approval,
            drill,
            triggers,
            failback,
        })
    }

    fn failback(&mut self, value: &Value, path: &DocPath) -> Option<Failback> {
        let map = self.mapping(value, path, FAILBACK_FIELDS)?;
        let keep_recovery_minutes = match self.optional(map, path, "keep_recovery_minutes") {
            Some((v, p)) => self
                .whole_number(v, &p, 0, u32::MAX.into(), "minutes")
                .unwrap_or(DEFAULT_FAILBACK_KEEP_RECOVERY_MINUTES),
            None => DEFAULT_FAILBACK_KEEP_RECOVERY_MINUTES,
        };
        Some(Failback {
            keep_recovery_minutes,
        })
    }

    fn wave(&mut self, value: &Value, path: &DocPath) -> Wave {
        let mut wave = Wave {
            name: String::new(),
            selector: Selector::new(),
            depends_on: Vec::new(),
            optional_servers: None,
            health: Health::default(),
            hooks: Hooks::default(),
            targets: Vec::new(),
        };
        let Some(map) = self.mapping(value, path, WAVE_FIELDS) else {
            return wave;
        };
        if let Some((v, p)) = self.required(map, path, "name") {
            wave.name = self.name(v, &p, NameKind::Wave).unwrap_or_default();
        }
        if let Some((v, p)) = self.required(map, path, "selector") {
            wave.selector = self.selector(v, &p).unwrap_or_default();
        }
        if let Some((v, p)) = self.optional(map, path, "depends_on") {
            wave.depends_on = self.list_of_strings(v, &p);
        }
        if let Some((v, p)) = self.optional(map, path, "optional_servers") {
            wave.optional_servers = self.selector(v, &p);
        }
        if let Some((v, p)) = self.optional(map, path, "health") {
            wave.health = self.health(v, &p);
        }
        if let Some((v, p)) = self.optional(map, path, "hooks") {
            wave.hooks = self.hooks(v, &p);
        }
        if let Some((v, p)) = self.optional(map, path, "targets") {
            wave.targets = self.targets(v, &p);
        }
        wave
    }

    fn health(&mut self, value: &Value, path: &DocPath) -> Health {
        let mut health = Health::default();
        let Some(map) = self.mapping(value, path, HEALTH_FIELDS) else {
            return health;
        };
        if let Some((v, p)) = self.required(map, path, "checks") {
            let items = self.list(v, &p).unwrap_or_default();
            if items.is_empty() && v.is_array() {
                self.issues
                    .push(&p, "lists no check: give at least one, such as ec2-status");
            }
            health.checks = items
                .iter()
                .enumerate()
                .filter_map(|(i, c)| {
                    let p = p.index(i);
                    let text = self.string(c, &p)?;
                    text.parse::<HealthCheck>()
                        .map_err(|e| self.issues.push(&p, e.to_string()))
                        .ok()
                })
                .collect();
        }
        if let Some((v, p)) = self.optional(map, path, "timeout_minutes") {
            health.timeout_minutes = self
                .whole_number(v, &p, 1, u32::MAX.into(), "minutes")
                .unwrap_or(DEFAULT_HEALTH_TIMEOUT_MINUTES);
        }
        if let Some((v, p)) = self.optional(map, path, "probe_address")
            && let Some(name) = self.string(v, &p)
        {
            match ProbeAddress::from_name(&name) {
                Some(address) => health.probe_address = address,
                None => self.issues.push(
                    &p,
                    format!(
                        "unknown probe address {name:?}: expected {}",
                        ProbeAddress::NAMES.join(" or ")
                    ),
                ),
            }
        }
        health
    }

    fn hooks(&mut self, value: &Value, path: &DocPath) -> Hooks {
        let mut hooks = Hooks::default();
        let Some(map) = self.mapping(value, path, HOOKS_FIELDS) else {
            return hooks;
        };
        for (key, slot) in [("pre", &mut hooks.pre), ("post", &mut hooks.post)] {
            if let Some((v, p)) = self.optional(map, path, key) {
                let items = self.list(v, &p).unwrap_or_default();
                *slot = items
                    .iter()
                    .enumerate()
                    .filter_map(|(i, h)| self.hook(h, &p.index(i)))
                    .collect();
            }
        }
        hooks
    }

    fn hook(&mut self, value: &Value, path: &DocPath) -> Option<Hook> {
        let map = self.mapping(value, path, HOOK_FIELDS)?;
        let (v, p) = self.required(map, path, "lambda")?;
        let arn = self.string(v, &p)?;
        match lambda_arn_problem(&arn) {
            Some(problem) => {
                self.issues.push(&p, problem);
                None
            }
            None => Some(Hook { lambda: arn }),
        }
    }

    fn approval(&mut self, value: &Value, path: &DocPath) -> Option<Approval> {
        let map = self.mapping(value, path, APPROVAL_FIELDS)?;
        let required_for = self
            .required(map, path, "required_for")
            .map(|(v, p)| {
                if v.as_array().is_some_and(Vec::is_empty) {
                    self.issues.push(
                        &p,
                        "lists no mode: give drill, recovery, failback or several, or leave `approval` out",
                    );
                }
                self.list_of_strings(v, &p)
                    .iter()
                    .enumerate()
                    .filter_map(|(i, text)| {
                        let found = Mode::ALL.iter().find(|(n, _)| n == text).map(|(_, m)| *m);
                        if found.is_none() {
                            self.issues.push(
                                &p.index(i),
                                format!("{text:?} is not a mode: use drill, recovery or failback"),
                            );
                        }
                        found
                    })
                    .collect()
            })
            .unwrap_or_default();
        let timeout_minutes = match self.optional(map, path, "timeout_minutes") {
            Some((v, p)) => self
                .whole_number(v, &p, 1, u32::MAX.into(), "minutes")
                .unwrap_or(DEFAULT_APPROVAL_TIMEOUT_MINUTES),
            None => DEFAULT_APPROVAL_TIMEOUT_MINUTES,
        };
        Some(Approval {
            required_for,
            timeout_minutes,
        })
    }

    fn drill(&mut self, value: &Value, path: &DocPath) -> Option<Drill> {
        let map = self.mapping(value, path, DRILL_FIELDS)?;
        let subnet_id = self.optional(map, path, "subnet_id").and_then(|(v, p)| {
            let id = self.string(v, &p)?;
            if !is_aws_id(&id, "subnet-") {
                self.issues.push(&p, format!("{id:?} is not a subnet ID (subnet- followed by lowercase letters and digits)"));
            }
            Some(id)
        });
        let keep_minutes = match self.optional(map, path, "keep_minutes") {
            Some((v, p)) => self
                .whole_number(v, &p, 0, u32::MAX.into(), "minutes")
                .unwrap_or(DEFAULT_DRILL_KEEP_MINUTES),
            None => DEFAULT_DRILL_KEEP_MINUTES,
        };
        let security_group_ids = match self.optional(map, path, "security_group_ids") {
            Some((v, p)) => {
                let groups = self.list_of_strings(v, &p);
                for (i, id) in groups.iter().enumerate() {
                    if !is_aws_id(id, "sg-") {
                        self.issues.push(
                            &p.index(i),
                            format!("{id:?} is not a security group ID (sg- followed by lowercase letters and digits)"),
                        );
                    }
                }
                if subnet_id.is_none() && !groups.is_empty() {
                    self.issues.push(
                        &p,
                        "needs drill.subnet_id: security groups are set on the drill subnet's network interface",
                    );
                }
                groups
            }
            None => Vec::new(),
        };
        let allow_routes = match self.optional(map, path, "allow_routes") {
            Some((Value::Bool(b), _)) => *b,
            Some((other, p)) => {
                self.issues.push(
                    &p,
                    format!("must be true or false, found {}", describe(other)),
                );
                false
            }
            None => false,
        };
        let every_days = self
            .optional(map, path, "every_days")
            .and_then(|(v, p)| self.whole_number(v, &p, 1, 3_650, "days"));
        let schedule = self.optional(map, path, "schedule").and_then(|(v, p)| {
            let expression = self.string(v, &p)?;
            match crate::schedule::drill_schedule_problem(&expression) {
                Some(problem) => {
                    self.issues.push(&p, problem);
                    None
                }
                None => Some(expression),
            }
        });
        Some(Drill {
            subnet_id,
            security_group_ids,
            allow_routes,
            keep_minutes,
            every_days,
            schedule,
        })
    }

    fn triggers(&mut self, value: &Value, path: &DocPath) -> Option<Triggers> {
        let map = self.mapping(value, path, TRIGGERS_FIELDS)?;
        let alarm_tags = match self.optional(map, path, "alarm_tags") {
            Some((Value::Bool(b), _)) => *b,
            Some((other, p)) => {
                self.issues.push(
                    &p,
                    format!("must be true or false, found {}", describe(other)),
                );
                false
            }
            None => false,
        };
        // Without alarm tags, the list is the only way an alarm reaches the plan.
        let no_alarm = "lists no alarm: give alarm names (a trailing * matches a prefix), \
                        set `alarm_tags: true` to be started by alarms tagged drplan:plan=NAME, \
                        or leave `triggers` out";
        if !alarm_tags && !map.contains_key("alarms") {
            self.issues.push(&path.key("alarms"), no_alarm);
        }
        let alarms = self
            .optional(map, path, "alarms")
            .map(|(v, p)| {
                if !alarm_tags && v.as_array().is_some_and(Vec::is_empty) {
                    self.issues.push(&p, no_alarm);
                }
                let names = self.list_of_strings(v, &p);
                for (i, name) in names.iter().enumerate() {
                    let bare = name.strip_suffix('*').unwrap_or(name);
                    if bare.trim().is_empty() {
                        self.issues.push(
                            &p.index(i),
                            "is empty: a lone * would start this plan on every alarm in the account",
                        );
                    } else if bare.contains('*') {
                        self.issues.push(
                            &p.index(i),
                            format!("{name:?} has a * before its end: only a trailing * (a prefix) is supported"),
                        );
                    } else if name.chars().count() > MAX_ALARM_NAME_CHARS {
                        self.issues.push(
                            &p.index(i),
                            format!("is longer than CloudWatch's {MAX_ALARM_NAME_CHARS} characters"),
                        );
                    }
                }
                names
            })
            .unwrap_or_default();
        let mode = match self.optional(map, path, "mode") {
            Some((v, p)) => self.string(v, &p).and_then(|text| {
                let found = Mode::ALL
                    .iter()
                    .find(|(n, _)| *n == text)
                    .map(|(_, m)| *m)
                    .filter(|m| *m != Mode::Failback);
                if found.is_none() {
                    let why = if text == Mode::Failback.as_str() {
                        "failback is not a mode an alarm starts (a person starts a failback once the Failback Client is in sync): use drill or recovery".to_owned()
                    } else {
                        format!("{text:?} is not a mode: use drill or recovery")
                    };
                    self.issues.push(&p, why);
                }
                found
            }),
            None => None,
        }
        .unwrap_or(Mode::Recovery);
        let min_gap_minutes = match self.optional(map, path, "min_gap_minutes") {
            Some((v, p)) => self
                .whole_number(v, &p, 0, u32::MAX.into(), "minutes")
                .unwrap_or(DEFAULT_TRIGGER_MIN_GAP_MINUTES),
            None => DEFAULT_TRIGGER_MIN_GAP_MINUTES,
        };
        Some(Triggers {
            alarms,
            alarm_tags,
            mode,
            min_gap_minutes,
        })
    }
}

mod dns;
mod targets;
mod values;

#[cfg(test)]
use dns::{ALIAS_FIELDS, DNS_FIELDS, RECORD_FIELDS};
#[cfg(test)]
use values::dns_name_problem;
use values::{NameKind, describe, is_aws_id, lambda_arn_problem};

#[cfg(test)]
mod tests;

#[cfg(test)]
mod schema_agreement;
