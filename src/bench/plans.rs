//! The plans the bench runs (their shapes, timing and ideal wall time on the
//! simulator's clock) and the fleet seeded for them.

use std::collections::BTreeMap;

use drplan_core::Timing;
use drplan_local::seed;
use serde_json::{Value, json};

use super::REGION;

/// One plan run: its shape, mode and timing.
#[derive(Debug, Clone)]
pub(super) struct PlanSpec {
    pub(super) label: String,
    pub(super) name: String,
    /// (wave name, the waves it depends on)
    pub(super) waves: Vec<(String, Vec<String>)>,
    pub(super) servers_per_wave: u32,
    pub(super) mode: &'static str,
    pub(super) dns_record: Option<String>,
    pub(super) timing: Value,
    pub(super) timing_label: &'static str,
    /// The simulator's ideal wall time: phases along the DAG's critical path.
    pub(super) ideal_seconds: f64,
    pub(super) critical_waves: usize,
}

pub(super) struct Plans {
    pub(super) wave_ideal: f64,
    pub(super) cleanup_ideal: f64,
    pub(super) scale: f64,
}

impl Plans {
    /// Polls every second: what the overhead is measured with.
    ///
    /// Within the history budget discover enforces (a 20-wave chain's worst case must fit
    /// in 25,000 events): the launch polls back off to 10 s (a wave's parked wait is woken
    /// by DRS's launch-result events, so the backoff costs no time when events arrive),
    /// launches time out after 5 minutes and the health gate (2 minutes a wave) polls
    /// every 2 s.
    fn tight_timing() -> Value {
        json!({"poll_initial_seconds": 1, "poll_max_seconds": 10, "poll_backoff_rate": 1.5,
               "launch_timeout_minutes": 5, "health_interval_seconds": 2})
    }

    /// The default timing on the simulator's clock: as many polls as a real run makes.
    fn scaled_default_timing(&self) -> Value {
        let defaults = Timing::default();
        let scaled = |seconds: u32| ((f64::from(seconds) * self.scale).round() as u32).max(1);
        json!({"poll_initial_seconds": scaled(defaults.poll_initial_seconds),
               "poll_max_seconds": scaled(defaults.poll_max_seconds),
               "poll_backoff_rate": defaults.poll_backoff_rate,
               "launch_timeout_minutes": scaled(defaults.launch_timeout_minutes),
               "health_interval_seconds": scaled(defaults.health_interval_seconds),
               "drill_keep_seconds": 2})
    }

    fn spec(
        &self,
        name: &str,
        waves: Vec<(String, Vec<String>)>,
        servers_per_wave: u32,
        mode: &'static str,
        dns_record: Option<String>,
        (timing, timing_label): (Value, &'static str),
    ) -> PlanSpec {
        let critical_waves = critical_path(&waves);
        let mut ideal_seconds = critical_waves as f64 * self.wave_ideal;
        if mode == "drill" {
            let keep = timing["drill_keep_seconds"].as_f64().unwrap_or(0.0);
            ideal_seconds += keep + self.cleanup_ideal;
        }
        let count = waves.len() as u32 * servers_per_wave;
        PlanSpec {
            label: format!(
                "{} waves × {servers_per_wave} servers ({count}), {mode}",
                waves.len()
            ),
            name: name.to_owned(),
            waves,
            servers_per_wave,
            mode,
            dns_record,
            timing,
            timing_label,
            ideal_seconds,
            critical_waves,
        }
    }

    /// w1 → (w2 ∥ w3) → w4: a critical path of three waves.
    pub(super) fn diamond(&self, name: &str, servers_per_wave: u32, record: &str) -> PlanSpec {
        let waves = vec![
            ("w1".to_owned(), vec![]),
            ("w2".to_owned(), vec!["w1".to_owned()]),
            ("w3".to_owned(), vec!["w1".to_owned()]),
            ("w4".to_owned(), vec!["w2".to_owned(), "w3".to_owned()]),
        ];
        self.spec(
            name,
            waves,
            servers_per_wave,
            "recovery",
            Some(record.to_owned()),
            (Self::tight_timing(), "1 s polls"),
        )
    }

    fn chain_waves(count: usize) -> Vec<(String, Vec<String>)> {
        (1..=count)
            .map(|i| {
                let depends = if i > 1 {
                    vec![format!("w{:02}", i - 1)]
                } else {
                    vec![]
                };
                (format!("w{i:02}"), depends)
            })
            .collect()
    }

    pub(super) fn chain(
        &self,
        name: &str,
        waves: usize,
        servers_per_wave: u32,
        record: &str,
    ) -> PlanSpec {
        self.spec(
            name,
            Self::chain_waves(waves),
            servers_per_wave,
            "recovery",
            Some(record.to_owned()),
            (Self::tight_timing(), "1 s polls"),
        )
    }

    pub(super) fn drill_chain(&self, name: &str, waves: usize, servers_per_wave: u32) -> PlanSpec {
        self.spec(
            name,
            Self::chain_waves(waves),
            servers_per_wave,
            "drill",
            None,
            (self.scaled_default_timing(), "default timing, scaled"),
        )
    }
}

impl PlanSpec {
    pub(super) fn servers(&self) -> u32 {
        self.waves.len() as u32 * self.servers_per_wave
    }

    pub(super) fn plan(&self) -> Value {
        let last = self
            .waves
            .last()
            .map(|(name, _)| name.clone())
            .unwrap_or_default();
        let waves: Vec<Value> = self
            .waves
            .iter()
            .map(|(wave, depends)| {
                json!({"name": wave, "selector": {"dr:wave": wave}, "depends_on": depends,
                       "health": {"checks": ["ec2-status"], "timeout_minutes": 2}})
            })
            .collect();
        let mut plan = json!({"name": self.name, "rto_minutes": 600, "rpo_minutes": 60,
                              "selector": {"dr:plan": self.name}, "waves": waves});
        if let Some(record) = &self.dns_record {
            plan["dns"] = json!({"zone_name": "bench.example.com", "records": [
                {"name": record, "type": "A", "ttl": 60, "from_wave": last}]});
        }
        plan
    }
}

/// Waves on the longest dependency chain.
fn critical_path(waves: &[(String, Vec<String>)]) -> usize {
    fn depth(
        name: &str,
        waves: &[(String, Vec<String>)],
        memo: &mut BTreeMap<String, usize>,
        guard: usize,
    ) -> usize {
        if let Some(&known) = memo.get(name) {
            return known;
        }
        let deps = waves
            .iter()
            .find(|(wave, _)| wave == name)
            .map(|(_, deps)| deps.clone())
            .unwrap_or_default();
        let longest = if guard > waves.len() {
            0
        } else {
            deps.iter()
                .map(|dep| depth(dep, waves, memo, guard + 1))
                .max()
                .unwrap_or(0)
        };
        memo.insert(name.to_owned(), longest + 1);
        longest + 1
    }
    let mut memo = BTreeMap::new();
    waves
        .iter()
        .map(|(name, _)| depth(name, waves, &mut memo, 0))
        .max()
        .unwrap_or(0)
}

pub(super) fn fleet(plans: &[&PlanSpec], octet: u32) -> seed::Fleet {
    let mut source_servers = Vec::new();
    let mut records = Vec::new();
    for plan in plans {
        for (wave, _) in &plan.waves {
            source_servers.push(seed::ServerGroup {
                count: plan.servers_per_wave,
                start: 1,
                hostname: format!("{}-{wave}-{{i:04}}", plan.name),
                tags: BTreeMap::from([
                    ("dr:plan".to_owned(), plan.name.clone()),
                    ("dr:wave".to_owned(), wave.clone()),
                ]),
                replication: seed::Replication {
                    state: Some("CONTINUOUS".into()),
                    lag_seconds: Some(0),
                },
                instance_type: None,
                origin_region: None,
            });
        }
        if let Some(record) = &plan.dns_record {
            records.push(seed::Record {
                name: record.clone(),
                record_type: "A".into(),
                ttl: 60,
                values: vec!["203.0.113.10".into()],
            });
        }
    }
    seed::Fleet {
        region: REGION.into(),
        source_servers,
        // /20 subnets: room for 4,000 instances.
        network: seed::Network {
            name: "drplan-bench".into(),
            vpc_cidr: format!("10.{octet}.0.0/16"),
            recovery_subnet_cidr: format!("10.{octet}.16.0/20"),
            drill_subnet_cidr: format!("10.{octet}.32.0/20"),
            // The zone is public, so its records point at public addresses: recovered
            // instances get one (discover refuses the cutover otherwise).
            public_ips: true,
            source_cidr: None,
        },
        hosted_zones: vec![seed::HostedZone {
            name: "bench.example.com".into(),
            records,
        }],
        notifications: seed::Notifications::default(),
        load_balancers: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plans() -> Plans {
        Plans {
            wave_ideal: 10.0,
            cleanup_ideal: 4.0,
            scale: 1.0 / 30.0,
        }
    }

    #[test]
    fn the_ideal_follows_the_critical_path_of_the_dag() {
        let diamond = plans().diamond("bench-s", 10, "s.bench.example.com");
        assert_eq!((diamond.critical_waves, diamond.servers()), (3, 40));
        assert!((diamond.ideal_seconds - 30.0).abs() < 1e-9);
        let chain = plans().chain("bench-l", 20, 200, "l.bench.example.com");
        assert_eq!((chain.critical_waves, chain.servers()), (20, 4000));
        assert_eq!(critical_path(&[]), 0);
    }

    #[test]
    fn a_drill_adds_its_keep_time_and_its_clean_up() {
        let drill = plans().drill_chain("bench-d", 4, 25);
        assert_eq!(drill.mode, "drill");
        assert_eq!(drill.timing["drill_keep_seconds"], 2);
        assert!((drill.ideal_seconds - (40.0 + 2.0 + 4.0)).abs() < 1e-9);
        assert!(drill.plan().get("dns").is_none());
    }

    #[test]
    fn the_fleet_has_every_wave_of_every_plan_and_their_records() {
        let plans = plans();
        let small = plans.diamond("bench-s", 10, "s.bench.example.com");
        let drill = plans.drill_chain("bench-d", 4, 25);
        let fleet = fleet(&[&small, &drill], 100);
        assert_eq!(fleet.source_servers.len(), 8);
        let servers: u32 = fleet.source_servers.iter().map(|g| g.count).sum();
        assert_eq!(servers, 140);
        assert_eq!(fleet.hosted_zones[0].records.len(), 1);
        assert_eq!(fleet.network.vpc_cidr, "10.100.0.0/16");
        assert!(fleet.network.public_ips, "the bench's zone is public");
        let plan = small.plan();
        assert_eq!(plan["dns"]["records"][0]["from_wave"], "w4");
        assert_eq!(
            plan["waves"][3]["depends_on"],
            serde_json::json!(["w2", "w3"])
        );
    }
}
