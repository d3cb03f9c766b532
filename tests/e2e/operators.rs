//! What an operator does to a running execution, end to end on the local cloud:
//! `drplan pause` holds it before its next stage of waves (nothing more launches, the
//! PAUSED e-mail goes out, `drplan status` says so), `drplan continue` releases it or
//! withdraws a pause not reached yet; both refuse what they cannot do.

use std::time::{Duration, Instant};

use crate::common::{Cloud, EXECUTION_TIMEOUT, cloud_with, fleet_file, plan_file};
use aws_sdk_sfn::types::ExecutionStatus;
use drplan_aws::history::{self, Approval, Pause};
use serde_json::json;

/// Runs the CLI; returns (succeeded, stdout, stderr).
fn drplan(cloud: &Cloud, args: &[&str]) -> (bool, String, String) {
    let output = cloud.drplan(args);
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Waits until the execution's history satisfies `done`.
async fn wait_for_history(
    cloud: &Cloud,
    arn: &str,
    what: &str,
    done: impl Fn(&[aws_sdk_sfn::types::HistoryEvent]) -> bool,
) {
    let started = Instant::now();
    while !done(&cloud.history(arn).await) {
        assert!(
            started.elapsed() < EXECUTION_TIMEOUT,
            "{what}: not reached in {EXECUTION_TIMEOUT:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Waits until the run holds at a pause; returns the stage (from 0) it holds before.
async fn wait_until_paused(cloud: &Cloud, arn: &str) -> usize {
    wait_for_history(cloud, arn, "the run holds", |h| {
        matches!(history::pause(h), Pause::Holding { .. })
    })
    .await;
    match history::pause(&cloud.history(arn).await) {
        Pause::Holding { layer, .. } => layer,
        Pause::NotHolding => unreachable!("it held a moment ago"),
    }
}

async fn pause_request_exists(cloud: &Cloud, key: &str) -> bool {
    cloud
        .s3
        .head_object()
        .bucket(&cloud.stack.bucket)
        .key(key)
        .send()
        .await
        .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_run_launches_nothing_until_continued() {
    let Some(cloud) = cloud_with(&fleet_file("examples/fleet.yaml")).await else {
        return;
    };
    // A drill that waits for approval: a known point before any stage.
    let mut plan = plan_file("examples/shop.yaml");
    plan["approval"] = json!({"required_for": ["drill", "recovery"], "timeout_minutes": 60});
    let (name, arn) = cloud.start(plan, "drill").await;
    let pause_key = format!("runs/shop/{name}/pause.json");
    wait_for_history(&cloud, &arn, "the approval request", |h| {
        matches!(history::approval(h), Approval::Pending { .. })
    })
    .await;

    // Nothing to continue yet; a pause asked for and withdrawn before it is reached.
    let (ok, _, stderr) = drplan(&cloud, &["continue", &name]);
    assert!(!ok);
    assert!(
        stderr.contains("not paused, and no pause is requested"),
        "{stderr}"
    );
    let (ok, stdout, stderr) = drplan(&cloud, &["pause", &name, "--by", "carol"]);
    assert!(ok, "{stderr}");
    assert!(pause_request_exists(&cloud, &pause_key).await);
    let (ok, stdout_withdrawn, stderr) = drplan(&cloud, &["continue", &name]);
    assert!(ok, "{stderr}");
    assert!(
        stdout_withdrawn.contains("withdrawn: the pause carol asked for"),
        "{stdout_withdrawn}"
    );
    assert!(!pause_request_exists(&cloud, &pause_key).await);
    assert!(
        stdout.contains("holds before its next stage of waves starts"),
        "{stdout}"
    );

    // Paused before approval: the first stage holds once approved.
    let (ok, stdout, stderr) = drplan(
        &cloud,
        &[
            "pause",
            &name,
            "--by",
            "alice",
            "--reason",
            "checking the database",
        ],
    );
    assert!(ok, "{stderr}");
    assert!(stdout.contains("pause requested by alice"), "{stdout}");
    assert!(stdout.contains("time limit keeps counting"), "{stdout}");
    let (_, status, _) = drplan(&cloud, &["status", &name]);
    assert!(
        status.contains("pause requested by alice (checking the database)"),
        "{status}"
    );
    cloud.answer_approval(&["approve", &name]).await;
    assert_eq!(wait_until_paused(&cloud, &arn).await, 0);

    // It holds: nothing launches, status and the e-mail say so, the request is used up.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        cloud.start_recovery_calls().await,
        Vec::<Vec<String>>::new()
    );
    assert!(!pause_request_exists(&cloud, &pause_key).await);
    let (_, status, _) = drplan(&cloud, &["status", &name]);
    assert!(status.starts_with("RUNNING"), "{status}");
    assert!(
        status.contains("PAUSED before stage 1 since")
            && status.contains("by alice (checking the database)")
            && status.contains(&format!("drplan continue {name}"))
            && status.contains("time limit keeps counting while it holds: it ends at"),
        "{status}"
    );
    let (ok, _, stderr) = drplan(&cloud, &["pause", &name]);
    assert!(!ok);
    assert!(stderr.contains("already paused"), "{stderr}");
    let notifications = cloud.notifications().await;
    let (subject, body, attributes) = notifications
        .iter()
        .find(|(subject, _, _)| subject.contains("PAUSED"))
        .unwrap_or_else(|| panic!("no PAUSED e-mail in {notifications:?}"));
    assert_eq!(
        subject,
        "[drplan] DRILL shop: PAUSED before stage 1 by alice"
    );
    assert_eq!(attributes["event"]["Value"], "PAUSED", "{attributes}");
    for expected in [
        "Reason:     checking the database",
        "TIME LIMIT KEEPS COUNTING",
        &format!("drplan continue {name}\n"),
        "aws stepfunctions send-task-success --task-token",
    ] {
        assert!(body.contains(expected), "{expected}: {body}");
    }

    // Continued, it runs the first stage; paused again, it holds before the second.
    let (ok, stdout, stderr) = drplan(&cloud, &["continue", &name, "--by", "bob"]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("continued by bob"), "{stdout}");
    let (ok, _, stderr) = drplan(&cloud, &["pause", &name, "--by", "alice"]);
    assert!(ok, "{stderr}");
    assert_eq!(wait_until_paused(&cloud, &arn).await, 1);
    let first_stage = cloud.launched_servers().await.len();
    assert_eq!(first_stage, 4, "the database and cache waves only");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(cloud.launched_servers().await.len(), first_stage);
    let (ok, _, stderr) = drplan(&cloud, &["continue", &name]);
    assert!(ok, "{stderr}");

    let outcome = cloud.wait(name.clone(), &arn).await;
    assert_eq!(
        outcome.status,
        ExecutionStatus::Succeeded,
        "{:?}: {:?}",
        outcome.error,
        outcome.cause
    );
    assert_eq!(cloud.launched_servers().await.len(), 15);

    // An execution that has ended can be neither paused nor continued.
    for (command, verb) in [("pause", "pause"), ("continue", "continue")] {
        let (ok, _, stderr) = drplan(&cloud, &[command, &name]);
        assert!(!ok, "{command} of an ended run");
        assert!(
            stderr.contains(&format!(
                "the execution is SUCCEEDED, not running: there is nothing to {verb}"
            )),
            "{stderr}"
        );
    }
}
