//! DRS replication stalls: which plans and waves a stalled server belongs to, how their
//! RPO stands, and the on-call e-mails (stalled, still stalled, resumed).

use super::{ReplicationChange, StoredPlan};
use crate::plan::{Selector, WAVE_TAG};

/// A plan (and wave) that holds a source server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanMembership {
    pub plan: String,
    /// `None` when the server matches the plan's selector and no wave's.
    pub wave: Option<String>,
    pub rpo_minutes: Option<u32>,
}

/// The plans and waves whose selectors match a server's tags.
pub fn memberships(tags: &Selector, plans: &[StoredPlan]) -> Vec<PlanMembership> {
    let covers = |selector: &Selector| {
        !selector.is_empty() && selector.iter().all(|(k, v)| tags.get(k) == Some(v))
    };
    plans
        .iter()
        .filter(|stored| covers(&stored.plan.selector))
        .map(|stored| {
            let wave = match &stored.plan.waves {
                Some(waves) => waves
                    .iter()
                    .find(|w| covers(&w.selector))
                    .map(|w| w.name.clone()),
                None => tags.get(WAVE_TAG).cloned(),
            };
            PlanMembership {
                plan: stored.name.clone(),
                wave,
                rpo_minutes: stored.plan.rpo_minutes,
            }
        })
        .collect()
}

/// What the trigger learnt about a server whose replication stalled or resumed.
#[derive(Debug, Clone, PartialEq)]
pub struct StallFacts {
    pub change: ReplicationChange,
    pub hostname: Option<String>,
    /// DRS's `dataReplicationInfo.dataReplicationState`, when DescribeSourceServers answered.
    pub replication_state: Option<String>,
    pub lag_seconds: Option<u64>,
    pub memberships: Vec<PlanMembership>,
    pub retry: RetryOutcome,
    /// When set, an escalation follows after this many minutes if still stalled.
    pub escalate_after_minutes: Option<u32>,
    /// DescribeSourceServers failed: the e-mail still goes out, saying so.
    pub lookup_error: Option<String>,
}

/// The configured RetryDataReplication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetryOutcome {
    NotConfigured,
    Requested,
    Failed(String),
}

/// How the RPO stands for one plan.
pub fn rpo_status(lag_seconds: Option<u64>, rpo_minutes: Option<u32>, stalled: bool) -> String {
    match (rpo_minutes, lag_seconds) {
        (None, _) => "no rpo_minutes in the plan".to_owned(),
        (Some(rpo), Some(lag)) if lag >= u64::from(rpo) * 60 => format!(
            "RPO MISSED: lag {} exceeds the {rpo} min RPO",
            human_seconds(lag)
        ),
        (Some(rpo), Some(lag)) if stalled => format!(
            "RPO AT RISK: lag {} of {rpo} min; exceeded in {} unless replication resumes",
            human_seconds(lag),
            human_seconds(u64::from(rpo) * 60 - lag)
        ),
        (Some(rpo), Some(lag)) => format!("within RPO: lag {} of {rpo} min", human_seconds(lag)),
        (Some(rpo), None) if stalled => {
            format!("RPO AT RISK: lag unknown, {rpo} min RPO, replication stalled")
        }
        (Some(rpo), None) => format!("lag unknown ({rpo} min RPO)"),
    }
}

fn human_seconds(seconds: u64) -> String {
    match seconds {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

/// A message for on-call staff, with the attributes subscription filters use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnCallMessage {
    pub subject: String,
    pub body: String,
    /// (`plan`, `mode`, `severity`, `event`), as run notifications carry them.
    pub plan: String,
    pub severity: &'static str,
    pub event: &'static str,
}

impl OnCallMessage {
    pub fn attributes(&self) -> [(&'static str, &str); 4] {
        [
            ("plan", self.plan.as_str()),
            ("mode", "none"),
            ("severity", self.severity),
            ("event", self.event),
        ]
    }
}

fn plans_attribute(memberships: &[PlanMembership]) -> String {
    if memberships.is_empty() {
        "none".to_owned()
    } else {
        memberships
            .iter()
            .map(|m| m.plan.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }
}

fn console_link(region: &str, server_id: &str) -> String {
    let region = if region.is_empty() {
        "us-east-1"
    } else {
        region
    };
    format!(
        "https://{region}.console.aws.amazon.com/drs/home?region={region}#/sourceServers/{server_id}"
    )
}

/// The e-mail for a stall (STALLED), a resumption (NOT_STALLED), or the escalation of
/// a stall that lasted (`escalation`).
pub fn replication_message(facts: &StallFacts, escalation: bool) -> OnCallMessage {
    let change = &facts.change;
    let server = &change.source_server_id;
    let host = facts.hostname.as_deref().unwrap_or("(hostname unknown)");
    let (event, severity, headline) = match (change.stalled, escalation) {
        (true, true) => (
            "REPLICATION_STILL_STALLED",
            "critical",
            format!("replication STILL STALLED on {host} ({server})"),
        ),
        (true, false) => (
            "REPLICATION_STALLED",
            "critical",
            format!("replication STALLED on {host} ({server})"),
        ),
        (false, _) => (
            "REPLICATION_RESUMED",
            "info",
            format!("replication resumed on {host} ({server})"),
        ),
    };
    let plans = plans_attribute(&facts.memberships);
    let subject = crate::notify::subject_line(&format!("[drplan] {headline}"));
    let mut body = String::new();
    let mut line = |text: String| {
        body.push_str(&text);
        body.push('\n');
    };
    line(if change.stalled {
        format!(
            "DRS replication of {host} has STALLED. New writes on this server are not reaching \
             the recovery Region: a recovery now would lose them."
        )
    } else {
        format!("DRS replication of {host} is no longer stalled. No action is needed.")
    });
    line(String::new());
    line("SERVER".into());
    line(format!("  Source server:      {server}"));
    line(format!("  Hostname:           {host}"));
    line(format!(
        "  Replication state:  {}",
        facts.replication_state.as_deref().unwrap_or("unknown")
    ));
    line(format!(
        "  Lag:                {}",
        facts
            .lag_seconds
            .map_or("unknown".to_owned(), human_seconds)
    ));
    line(format!("  Event time:         {}", change.time));
    if let Some(error) = &facts.lookup_error {
        line(format!("  (DescribeSourceServers failed: {error})"));
    }
    line(String::new());
    line("PLANS".into());
    if facts.memberships.is_empty() {
        line("  No stored plan selects this server: it is protected by DRS but no drplan plan recovers it.".into());
    }
    for m in &facts.memberships {
        line(format!(
            "  {} (wave {}): {}",
            m.plan,
            m.wave.as_deref().unwrap_or("none"),
            rpo_status(facts.lag_seconds, m.rpo_minutes, change.stalled)
        ));
    }
    line(String::new());
    if change.stalled {
        match &facts.retry {
            RetryOutcome::NotConfigured => {}
            RetryOutcome::Requested => line(
                "drplan asked DRS to retry data replication once (RetryDataReplication).".into(),
            ),
            RetryOutcome::Failed(error) => {
                line(format!("drplan's RetryDataReplication failed: {error}"))
            }
        }
        if let (Some(minutes), false) = (facts.escalate_after_minutes, escalation) {
            line(format!(
                "If replication is still stalled in {minutes} min, this is sent again as an escalation."
            ));
        }
        line(String::new());
        line("WHAT TO DO NEXT".into());
        line(format!(
            "  1. Look at the server in the DRS console: {}",
            console_link(&change.region, server)
        ));
        line(format!(
            "  2. Check it from the command line: aws drs describe-source-servers --filters sourceServerIDs={server}"
        ));
        line("  3. On the source server, check the AWS Replication Agent is running and can reach the staging area on TCP 1500 (and DRS on 443).".into());
        line(format!(
            "  4. Retry replication: aws drs retry-data-replication --source-server-id {server}"
        ));
        line("  5. Until it recovers, a recovery of the plans above launches from the last snapshot before the stall.".into());
    } else {
        line(format!("Details: {}", console_link(&change.region, server)));
    }
    OnCallMessage {
        subject,
        body,
        plan: plans,
        severity,
        event,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trigger::tests::shop;

    #[test]
    fn stall_messages_say_which_plans_and_whether_the_rpo_is_at_risk() {
        let plans = vec![shop()];
        let tags: Selector = [("dr:plan", "shop"), ("dr:wave", "db")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let member = memberships(&tags, &plans);
        assert_eq!(
            member,
            vec![PlanMembership {
                plan: "shop".into(),
                wave: Some("db".into()),
                rpo_minutes: Some(5)
            }]
        );
        let facts = StallFacts {
            change: ReplicationChange {
                event_id: "e".into(),
                time: "2026-11-28T03:00:00Z".into(),
                region: "us-east-1".into(),
                source_server_id: "s-1234567890abcdef0".into(),
                source_server_arn: "arn".into(),
                stalled: true,
            },
            hostname: Some("db01.example.com".into()),
            replication_state: Some("STALLED".into()),
            lag_seconds: Some(180),
            memberships: member,
            retry: RetryOutcome::Requested,
            escalate_after_minutes: Some(15),
            lookup_error: None,
        };
        let message = replication_message(&facts, false);
        assert!(message.subject.contains("STALLED on db01.example.com"));
        assert!(message.subject.len() < 100);
        for needle in [
            "s-1234567890abcdef0",
            "db01.example.com",
            "3 min",
            "shop (wave db)",
            "RPO AT RISK",
            "retry-data-replication",
            "RetryDataReplication",
            "in 15 min",
        ] {
            assert!(
                message.body.contains(needle),
                "{needle} in\n{}",
                message.body
            );
        }
        assert_eq!(message.severity, "critical");
        let resumed = replication_message(
            &StallFacts {
                change: ReplicationChange {
                    stalled: false,
                    ..facts.change.clone()
                },
                ..facts
            },
            false,
        );
        assert_eq!(resumed.event, "REPLICATION_RESUMED");
        assert_eq!(
            rpo_status(Some(600), Some(5), true),
            "RPO MISSED: lag 10 min exceeds the 5 min RPO"
        );
    }
}
