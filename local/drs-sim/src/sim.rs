//! The simulator object shared by the HTTP handlers and the job tasks.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::SimConfig;
use crate::clock::Timestamp;
use crate::listeners::{self, InstanceView, ProbeListeners};
use crate::model::{EmittedEvent, State, Tags};
use crate::outbound::{Endpoint, Outbound};
use crate::probe_ports::ProbeSets;

pub struct Simulator {
    pub config: SimConfig,
    state: Mutex<State>,
    /// Job lifecycles and event deliveries; aborted on shutdown, drop and reset.
    tasks: Mutex<JoinSet<()>>,
    pub outbound: Outbound,
    /// Loopback stand-ins of the recovery instances, for health probes.
    pub listeners: ProbeListeners,
    /// Which ports health checks will probe, on which instances. Configuration, not
    /// state: a reset keeps it.
    probe_sets: Mutex<ProbeSets>,
}

impl Simulator {
    /// `config` has been validated by `spawn`, so its endpoints parse.
    pub fn new(config: SimConfig) -> Self {
        let ec2 = config
            .ec2_endpoint
            .as_deref()
            .and_then(|url| Endpoint::parse(url).ok());
        let events = config
            .events_endpoint
            .as_deref()
            .and_then(|url| Endpoint::parse(url).ok());
        let outbound = Outbound::new(&config.region, ec2, events);
        let probe_sets = ProbeSets::from_config(&config.probe_ports, &config.tls_probe_ports);
        Self {
            probe_sets: Mutex::new(probe_sets),
            config,
            state: Mutex::new(State::new()),
            tasks: Mutex::new(JoinSet::new()),
            outbound,
            listeners: ProbeListeners::default(),
        }
    }

    pub fn with_probe_sets<R>(&self, action: impl FnOnce(&mut ProbeSets) -> R) -> R {
        action(
            &mut self
                .probe_sets
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        )
    }

    /// Opens and closes probe listeners to match the running recovery instances, the
    /// probes declared and the unhealthy marks. Call after anything that changes any of
    /// them (a launch, a termination, an EC2 state read, a fault, a probe set, tags).
    pub fn sync_probe_listeners(&self) {
        let probes = self.probe_sets.lock().unwrap_or_else(|p| p.into_inner());
        // The common case at scale: plans that probe nothing, and nothing open.
        if probes.is_empty() && self.listeners.is_empty() {
            return;
        }
        let wanted = self.with_state(|state| {
            let erroring = state.unhealthy_instance_ids();
            let refusing = state.refusing_instance_ids();
            let no_tags = Tags::new();
            let tags: HashMap<&str, &Tags> = state
                .servers
                .iter()
                .map(|server| (server.id.as_str(), &server.tags))
                .collect();
            // Machines a failback brought home serve at their source address.
            let failed_back = state.servers.iter().filter_map(|server| {
                Some(InstanceView {
                    ec2_instance_id: server.failed_back_machine.as_deref()?,
                    private_ip: Some(&server.source_ip),
                    public_ip: None,
                    ec2_state: "RUNNING",
                    tags: &server.tags,
                    at_home: true,
                })
            });
            listeners::wanted(
                state
                    .recovery_instances
                    .iter()
                    .map(|instance| InstanceView {
                        ec2_instance_id: &instance.ec2_instance_id,
                        private_ip: instance.private_ip.as_deref(),
                        public_ip: instance.public_ip.as_deref(),
                        ec2_state: instance.ec2_state,
                        tags: tags
                            .get(instance.source_server_id.as_str())
                            .copied()
                            .unwrap_or(&no_tags),
                        at_home: false,
                    })
                    .chain(failed_back),
                &probes,
                &erroring,
                &refusing,
            )
        });
        // Still holding the probe sets: syncs run one at a time, so an older view of
        // the state never overwrites a newer one.
        self.listeners.sync(&wanted);
        drop(probes);
    }

    fn lock_state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the state as it was at that point, which is
        // still more useful to a test than a simulator that refuses every later call.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn with_state<R>(&self, action: impl FnOnce(&mut State) -> R) -> R {
        action(&mut self.lock_state())
    }

    /// Runs `action` only if no reset happened since `generation` was read: a job task of a
    /// previous generation must not write into the fresh state.
    pub fn update<R>(&self, generation: u64, action: impl FnOnce(&mut State) -> R) -> Option<R> {
        let mut state = self.lock_state();
        (state.generation == generation).then(|| action(&mut state))
    }

    pub fn spawn_background(&self, task: impl Future<Output = ()> + Send + 'static) {
        let mut tasks = self
            .tasks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Reap finished tasks so the set does not grow with every job ever run.
        while tasks.try_join_next().is_some() {}
        tasks.spawn(task);
    }

    pub fn stop_background_tasks(&self) {
        self.tasks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .abort_all();
    }

    /// A phase's real duration under the configured time scale.
    pub fn scaled(&self, duration: Duration) -> Duration {
        duration.mul_f64(self.config.time_scale)
    }

    pub fn arn(&self, resource_type: &str, id: &str) -> String {
        self.arn_in(&self.config.region, resource_type, id)
    }

    /// An ARN in `region`: the simulator serves DRS in every Region a request names.
    pub fn arn_in(&self, region: &str, resource_type: &str, id: &str) -> String {
        format!(
            "arn:aws:drs:{region}:{}:{resource_type}/{id}",
            self.config.account_id
        )
    }

    /// The Region a DRS ARN names (`arn:aws:drs:REGION:ACCOUNT:…`), the home Region if
    /// it names none.
    pub fn region_of_arn<'a>(&'a self, arn: &'a str) -> &'a str {
        arn.split(':')
            .nth(3)
            .filter(|region| !region.is_empty())
            .unwrap_or(&self.config.region)
    }

    /// Builds an event of `region`'s DRS in the shape AWS delivers service events (its
    /// `region` says which), records it, and puts it on EventBridge when an endpoint is
    /// configured: the one EventBridge the simulator knows, signed for the home Region,
    /// whatever Region's DRS the event comes from.
    pub async fn emit_event_in(
        &self,
        region: &str,
        detail_type: &str,
        resources: Vec<String>,
        detail: Value,
    ) {
        let event_id = self.with_state(|state| state.ids.request_id());
        let event = json!({
            "version": "0",
            "id": event_id,
            "detail-type": detail_type,
            "source": "aws.drs",
            "account": self.config.account_id,
            "time": Timestamp::now().iso8601_seconds(),
            "region": region,
            "resources": resources,
            "detail": detail,
        });
        let (delivered, error) = if self.outbound.has_events() {
            match self.outbound.put_event(&event).await {
                Ok(()) => (true, None),
                Err(error) => {
                    eprintln!("drs-sim: could not put {detail_type} event: {error}");
                    (false, Some(error.to_string()))
                }
            }
        } else {
            (false, None)
        };
        self.with_state(|state| {
            state.events.push(EmittedEvent {
                event,
                delivered,
                error,
            })
        });
    }
}
