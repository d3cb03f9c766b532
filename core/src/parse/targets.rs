//! A wave's `targets`: the ELBv2 target groups its healthy instances join. Each entry
//! names a target group by ARN, the port instances receive traffic on, and whether it
//! is a drill's target group.

use serde_json::Value;

use super::Reader;
use super::values::describe;
use crate::issue::DocPath;
use crate::plan::Target;

pub(crate) const TARGET_FIELDS: &[&str] = &["target_group_arn", "port", "drill"];

const TARGET_GROUP_ARN_SHAPE: &str =
    "expected arn:aws:elasticloadbalancing:REGION:ACCOUNT:targetgroup/NAME/ID";

impl Reader {
    pub(super) fn targets(&mut self, value: &Value, path: &DocPath) -> Vec<Target> {
        let items = self.list(value, path).unwrap_or_default();
        let targets: Vec<(Target, DocPath)> = items
            .iter()
            .enumerate()
            .filter_map(|(i, t)| {
                let p = path.index(i);
                self.target(t, &p).map(|t| (t, p))
            })
            .collect();
        // The same target group twice in a wave would register its instances twice,
        // on two ports: almost surely a copy-paste slip.
        for (i, (target, p)) in targets.iter().enumerate() {
            if targets[..i]
                .iter()
                .any(|(earlier, _)| earlier.target_group_arn == target.target_group_arn)
            {
                self.issues.push(
                    &p.key("target_group_arn"),
                    format!(
                        "{:?} is listed twice in this wave: list each target group once",
                        target.target_group_arn
                    ),
                );
            }
        }
        targets.into_iter().map(|(t, _)| t).collect()
    }

    fn target(&mut self, value: &Value, path: &DocPath) -> Option<Target> {
        let map = self.mapping(value, path, TARGET_FIELDS)?;
        let arn = self
            .required(map, path, "target_group_arn")
            .and_then(|(v, p)| {
                let arn = self.string(v, &p)?;
                match target_group_arn_problem(&arn) {
                    Some(problem) => {
                        self.issues.push(&p, problem);
                        None
                    }
                    None => Some(arn),
                }
            });
        let port = self.required(map, path, "port").and_then(|(v, p)| {
            match v.as_u64().and_then(|n| u16::try_from(n).ok()) {
                Some(port) if port >= 1 => Some(port),
                _ => {
                    self.issues.push(
                        &p,
                        format!(
                            "must be a port: a whole number from 1 to 65535, found {}",
                            describe(v)
                        ),
                    );
                    None
                }
            }
        });
        let drill = match self.optional(map, path, "drill") {
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
        Some(Target {
            target_group_arn: arn?,
            port: port?,
            drill,
        })
    }
}

/// Why `arn` is not the ARN of an ELBv2 target group.
pub(crate) fn target_group_arn_problem(arn: &str) -> Option<String> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let not_one = || {
        Some(format!(
            "{arn:?} is not a target group ARN: {TARGET_GROUP_ARN_SHAPE}"
        ))
    };
    if parts.len() != 6 || parts[0] != "arn" || !parts[1].starts_with("aws") {
        return not_one();
    }
    if parts[2] != "elasticloadbalancing" {
        return not_one();
    }
    let region_ok = !parts[3].is_empty()
        && parts[3]
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !region_ok {
        return Some(format!(
            "{arn:?} has no valid region: {TARGET_GROUP_ARN_SHAPE}"
        ));
    }
    if parts[4].len() != 12 || !parts[4].chars().all(|c| c.is_ascii_digit()) {
        return Some(format!(
            "{arn:?} has no valid 12-digit account ID: {TARGET_GROUP_ARN_SHAPE}"
        ));
    }
    let Some(resource) = parts[5].strip_prefix("targetgroup/") else {
        return Some(format!(
            "{arn:?} names no target group (a load balancer's ARN?): {TARGET_GROUP_ARN_SHAPE}"
        ));
    };
    let Some((name, id)) = resource.split_once('/') else {
        return not_one();
    };
    let name_ok = !name.is_empty()
        && name.len() <= 32
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if !name_ok {
        return Some(format!(
            "{arn:?} has no valid target group name (1 to 32 letters, digits and -): {TARGET_GROUP_ARN_SHAPE}"
        ));
    }
    let id_ok = !id.is_empty() && id.len() <= 32 && id.chars().all(|c| c.is_ascii_hexdigit());
    if !id_ok {
        return Some(format!(
            "{arn:?} has no valid target group ID (hexadecimal digits): {TARGET_GROUP_ARN_SHAPE}"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Format, parse_plan};

    const TG: &str =
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/shop-web/0123456789abcdef";

    fn plan_with(targets: &str) -> String {
        format!(
            "name: shop\nrto_minutes: 30\nselector: {{ \"dr:plan\": shop }}\nwaves:\n  - name: web\n    selector: {{ \"dr:wave\": web }}\n    targets: {targets}\n"
        )
    }

    fn problems(targets: &str) -> Vec<String> {
        match parse_plan(&plan_with(targets), Format::Yaml) {
            Ok(_) => Vec::new(),
            Err(issues) => issues.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn a_wave_names_its_target_groups_with_a_port_and_drill_defaults_to_false() {
        let plan = parse_plan(
            &plan_with(&format!(
                "[{{ target_group_arn: \"{TG}\", port: 443 }}, {{ target_group_arn: \"{}\", port: 8443, drill: true }}]",
                TG.replace("shop-web/", "shop-web-drill/")
            )),
            Format::Yaml,
        )
        .expect("valid targets");
        let targets = &plan.waves.expect("waves")[0].targets;
        assert_eq!(targets.len(), 2);
        assert_eq!((targets[0].port, targets[0].drill), (443, false));
        assert_eq!((targets[1].port, targets[1].drill), (8443, true));
        assert!(
            targets[0].used_by(crate::Mode::Recovery) && !targets[0].used_by(crate::Mode::Drill)
        );
        assert!(
            targets[1].used_by(crate::Mode::Drill) && !targets[1].used_by(crate::Mode::Recovery)
        );
    }

    #[test]
    fn bad_targets_are_refused_naming_the_field_and_the_problem() {
        let port = problems(&format!("[{{ target_group_arn: \"{TG}\", port: 0 }}]"));
        assert!(
            port.iter()
                .any(|p| p.contains("waves[0].targets[0].port") && p.contains("1 to 65535")),
            "{port:?}"
        );
        let big = problems(&format!("[{{ target_group_arn: \"{TG}\", port: 70000 }}]"));
        assert!(big.iter().any(|p| p.contains("targets[0].port")), "{big:?}");
        let lb = problems(
            "[{ target_group_arn: \"arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/shop/0123456789abcdef\", port: 443 }]",
        );
        assert!(
            lb.iter().any(|p| p.contains("targets[0].target_group_arn")
                && p.contains("names no target group")),
            "{lb:?}"
        );
        let missing = problems("[{ port: 443 }]");
        assert!(
            missing.iter().any(|p| p.contains("target_group_arn")),
            "{missing:?}"
        );
        let drill = problems(&format!(
            "[{{ target_group_arn: \"{TG}\", port: 443, drill: yes-please }}]"
        ));
        assert!(
            drill.iter().any(|p| p.contains("targets[0].drill")),
            "{drill:?}"
        );
        let twice = problems(&format!(
            "[{{ target_group_arn: \"{TG}\", port: 443 }}, {{ target_group_arn: \"{TG}\", port: 80 }}]"
        ));
        assert!(
            twice
                .iter()
                .any(|p| p.contains("targets[1].target_group_arn") && p.contains("twice")),
            "{twice:?}"
        );
        let typo = problems(&format!("[{{ target_group_arn: \"{TG}\", prot: 443 }}]"));
        assert!(typo.iter().any(|p| p.contains("prot")), "{typo:?}");
    }

    #[test]
    fn target_group_arns_are_checked_part_by_part() {
        assert_eq!(target_group_arn_problem(TG), None);
        assert_eq!(
            target_group_arn_problem(&TG.replace("arn:aws:", "arn:aws-us-gov:")),
            None
        );
        for bad in [
            "shop-web",
            &TG.replace("elasticloadbalancing", "elb"),
            &TG.replace("123456789012", "1234"),
            &TG.replace("us-east-1", "US_EAST"),
            &TG.replace("0123456789abcdef", "xyz"),
            &TG.replace("shop-web", "shop_web"),
        ] {
            assert!(target_group_arn_problem(bad).is_some(), "{bad}");
        }
    }
}
