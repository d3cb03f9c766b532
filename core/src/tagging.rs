//! What tagging a wave's recovered instances takes. The tags that are the same for the
//! whole wave (plan, wave, execution, mode) go on in one EC2 CreateTags per batch of
//! instances; the only per-instance tag, `Name`, is written only where DRS left none
//! (DRS names the instance and puts the source server on it itself, see
//! [`crate::contract::tags`]). A retried step tags only what the last attempt missed:
//! the plan starts from the tags the instances carry now.

use std::collections::HashMap;

use crate::contract::RunContext;
use crate::contract::tags::{NAME, WAVE};

/// EC2 CreateTags takes up to 1000 resource IDs a call (EC2 API reference, CreateTags,
/// `ResourceId.N`) and recommends smaller batches: 200 makes a 200-server wave one call.
pub const INSTANCES_PER_CREATE_TAGS: usize = 200;

/// One recovered instance of the wave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveredInstance {
    pub ec2_instance_id: String,
    pub source_server_id: String,
    pub hostname: Option<String>,
}

/// The tags every instance of the wave carries, with the same values.
pub fn wave_tags(run: &RunContext, wave: &str) -> Vec<(String, String)> {
    let mut tags = run.tags();
    tags.push((WAVE.into(), wave.to_owned()));
    tags
}

/// The tag keys whose current values [`plan_tagging`] needs to see.
pub fn keys_to_read(run: &RunContext, wave: &str) -> Vec<String> {
    let mut keys: Vec<String> = wave_tags(run, wave).into_iter().map(|(k, _)| k).collect();
    keys.push(NAME.to_owned());
    keys
}

/// The CreateTags calls tagging still takes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TaggingPlan {
    /// The wave's tags, one call per batch of `batches[i]` instances.
    pub wave_tags: Vec<(String, String)>,
    pub batches: Vec<Vec<String>>,
    /// Instances without a `Name`: (instance, the name to give it), one call each.
    pub names: Vec<(String, String)>,
    /// Instances that already carried every wave tag (an earlier attempt's work).
    pub already_tagged: usize,
}

impl TaggingPlan {
    pub fn tagged(&self) -> usize {
        self.batches.iter().map(Vec::len).sum()
    }

    pub fn calls(&self) -> usize {
        self.batches.len() + self.names.len()
    }
}

/// Plans the tagging of `instances`, given the tags (of [`keys_to_read`]) each carries
/// now, by instance ID.
pub fn plan_tagging(
    run: &RunContext,
    wave: &str,
    instances: &[RecoveredInstance],
    current: &HashMap<String, HashMap<String, String>>,
) -> TaggingPlan {
    let wave_tags = wave_tags(run, wave);
    let empty = HashMap::new();
    let mut missing = Vec::new();
    let mut names = Vec::new();
    let mut already_tagged = 0;
    for instance in instances {
        let carried = current.get(&instance.ec2_instance_id).unwrap_or(&empty);
        if wave_tags
            .iter()
            .all(|(key, value)| carried.get(key) == Some(value))
        {
            already_tagged += 1;
        } else {
            missing.push(instance.ec2_instance_id.clone());
        }
        if carried.get(NAME).is_none_or(|name| name.is_empty()) {
            let name = instance
                .hostname
                .clone()
                .unwrap_or_else(|| instance.source_server_id.clone());
            names.push((instance.ec2_instance_id.clone(), name));
        }
    }
    TaggingPlan {
        wave_tags,
        batches: missing
            .chunks(INSTANCES_PER_CREATE_TAGS)
            .map(<[String]>::to_vec)
            .collect(),
        names,
        already_tagged,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::SnapshotChoice;
    use crate::contract::tags::{EXECUTION, MODE, PLAN};
    use crate::plan::Mode;
    use crate::{Quotas, Timing};

    fn run() -> RunContext {
        RunContext {
            execution_id: "arn:aws:states:us-east-1:111122223333:execution:drplan:run-1".into(),
            execution_name: "run-1".into(),
            plan: "shop".into(),
            mode: Mode::Drill,
            started_at: "2026-12-01T00:00:00Z".parse().unwrap(),
            snapshot: SnapshotChoice::Latest,
            timing: Timing::default(),
            quotas: Quotas::default(),
            deadline: None,
            resumed: None,
            origin_region: None,
        }
    }

    fn instances(count: usize) -> Vec<RecoveredInstance> {
        (0..count)
            .map(|i| RecoveredInstance {
                ec2_instance_id: format!("i-{i:08}"),
                source_server_id: format!("s-{i:017}"),
                hostname: Some(format!("host-{i}")),
            })
            .collect()
    }

    fn named(instances: &[RecoveredInstance]) -> HashMap<String, HashMap<String, String>> {
        instances
            .iter()
            .map(|i| {
                let tags = HashMap::from([(NAME.to_owned(), i.hostname.clone().unwrap())]);
                (i.ec2_instance_id.clone(), tags)
            })
            .collect()
    }

    #[test]
    fn a_wave_of_450_named_instances_takes_three_calls() {
        let run = run();
        let instances = instances(450);
        let plan = plan_tagging(&run, "db", &instances, &named(&instances));
        assert_eq!(
            plan.batches.iter().map(Vec::len).collect::<Vec<_>>(),
            [200, 200, 50]
        );
        assert!(plan.names.is_empty());
        assert_eq!(plan.calls(), 3);
        let keys: Vec<&str> = plan.wave_tags.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, [PLAN, EXECUTION, MODE, WAVE]);
    }

    #[test]
    fn a_retry_tags_only_what_is_missing_and_names_only_the_unnamed() {
        let run = run();
        let instances = instances(3);
        let mut current = named(&instances);
        for (key, value) in wave_tags(&run, "db") {
            current
                .get_mut("i-00000000")
                .unwrap()
                .insert(key.clone(), value.clone());
            current.get_mut("i-00000001").unwrap().insert(key, value);
        }
        // Another run's execution tag does not count as this run's.
        current
            .get_mut("i-00000001")
            .unwrap()
            .insert(EXECUTION.to_owned(), "another-run".to_owned());
        current.get_mut("i-00000002").unwrap().remove(NAME);
        let plan = plan_tagging(&run, "db", &instances, &current);
        assert_eq!(
            plan.batches,
            [vec!["i-00000001".to_owned(), "i-00000002".to_owned()]]
        );
        assert_eq!(plan.names, [("i-00000002".to_owned(), "host-2".to_owned())]);
        assert_eq!(plan.already_tagged, 1);
    }
}
