//! IAM's control plane lives in us-east-1. During an outage there, readiness (discover's
//! and the readiness function's) must turn "could not ask IAM" into warnings quickly, so
//! that a recovery in another Region is neither refused nor held up by it.
//!
//! The outage here is a loopback listener that accepts connections and never answers,
//! which is what an unreachable control plane behind a live load balancer looks like.
//! Without the IAM client's own timeouts the SDK would wait on it for ever.

use std::time::Duration;

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use drplan_aws::account_facts::service_role_facts;
use drplan_aws::bootstrap::Clients;
use drplan_core::drs_account::{DRS_SERVICE_ROLES, judge_service_roles};
use drplan_core::readiness::Readiness;
use tokio::net::TcpListener;

#[tokio::test]
async fn an_iam_that_never_answers_becomes_warnings_not_a_hang_or_a_refusal() {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let endpoint = format!("http://{}", listener.local_addr().expect("its address"));
    // Accept every connection and hold it open without a byte of answer.
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let config = aws_config::SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-west-2"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_s3::config::SharedCredentialsProvider::new(
            Credentials::for_tests(),
        ))
        .build();
    let clients = Clients::new(&config, "drplan-test".to_owned());

    // The bound only keeps a broken build from hanging the suite; the IAM client's own
    // timeouts (a few seconds) end each call long before it.
    let roles = tokio::time::timeout(Duration::from_secs(120), service_role_facts(&clients.iam))
        .await
        .expect("IAM's calls gave up by themselves");
    silent.abort();

    assert!(
        roles.missing.is_empty(),
        "nothing is said to be missing: {roles:?}"
    );
    let unreadable: Vec<&str> = roles.unreadable.keys().map(String::as_str).collect();
    let expected: Vec<&str> = DRS_SERVICE_ROLES.iter().map(|(name, _, _)| *name).collect();
    let mut expected_sorted = expected.clone();
    expected_sorted.sort_unstable();
    assert_eq!(
        unreadable, expected_sorted,
        "every role is 'could not be checked'"
    );

    let mut readiness = Readiness::default();
    judge_service_roles(&roles, &mut readiness);
    assert!(
        readiness.blocking.is_empty(),
        "never a refusal: {:?}",
        readiness.blocking
    );
    assert_eq!(
        readiness.warnings.len(),
        expected.len(),
        "{:?}",
        readiness.warnings
    );
}
