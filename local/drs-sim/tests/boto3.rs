//! boto3 as an independent client of the simulator. Needs `python3` with boto3: skipped
//! (with a printed reason) when boto3 is missing, unless DRPLAN_REQUIRE_BOTO3 is set, in
//! which case a missing boto3 fails the test.

mod common;

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use common::*;
use serde_json::json;

fn boto3_available() -> bool {
    std::process::Command::new("python3")
        .args(["-c", "import boto3"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

#[tokio::test]
async fn boto3_sees_the_same_servers_jobs_and_errors() {
    if !boto3_available() {
        assert!(
            std::env::var_os("DRPLAN_REQUIRE_BOTO3").is_none(),
            "DRPLAN_REQUIRE_BOTO3 is set but `python3 -c 'import boto3'` fails"
        );
        // Straight to stderr: the test harness captures eprintln! of passing tests, and a
        // skip must be visible.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: boto3 is not importable by python3 (pip install boto3 to run this test)"
        );
        return;
    }
    let sim = start_fast().await;
    seed(&sim, "app", 250, json!({"dr:plan": "shop"})).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/boto3_client.py");
    let endpoint = format!("http://{}", sim.addr());
    // kill_on_drop: a panicking or timed-out test still ends the Python process.
    let child = tokio::process::Command::new("python3")
        .arg(script)
        .arg(&endpoint)
        // boto3 must not pick up real credentials, profiles or endpoints from the machine.
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_ENDPOINT_URL_DRS")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start python3");
    let output = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .expect("boto3 script finished within 2 minutes")
        .expect("boto3 script output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "boto3 script failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("boto3 checks passed"), "{stdout}");
}
