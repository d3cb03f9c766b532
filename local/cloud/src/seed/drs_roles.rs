//! DRS's IAM roles in the local cloud's IAM (moto), as an initialized DRS account has them.

use serde_json::json;

use crate::error::{LocalCloudError, Result};
use crate::upstream::AwsClient;

/// The IAM roles DRS's initialization creates in an account (the simulator's DRS is
/// initialized), so that readiness finds them; a role that exists is left as it is.
pub(super) async fn seed_drs_service_roles(aws: &AwsClient) -> Result<()> {
    const IAM_VERSION: &str = "2010-05-08";
    for (name, _, _) in drplan_core::drs_account::DRS_SERVICE_ROLES {
        let (path, service) = if name.starts_with("AWSServiceRoleFor") {
            ("/aws-service-role/drs.amazonaws.com/", "drs.amazonaws.com")
        } else if name.ends_with("ConversionServerRole")
            || name.ends_with("ReplicationServerRole")
            || name.ends_with("RecoveryInstanceRole")
        {
            ("/service-role/", "ec2.amazonaws.com")
        } else {
            ("/service-role/", "drs.amazonaws.com")
        };
        let trust = json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Principal": {"Service": service},
                "Action": "sts:AssumeRole",
            }],
        })
        .to_string();
        let created = aws
            .query(
                "iam",
                IAM_VERSION,
                "CreateRole",
                &[
                    ("RoleName", name),
                    ("Path", path),
                    ("AssumeRolePolicyDocument", &trust),
                ],
            )
            .await;
        match created {
            Ok(_) => {}
            Err(LocalCloudError::AwsCall { body, .. }) if body.contains("EntityAlreadyExists") => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}
