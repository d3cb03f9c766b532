//! The EC2 calls drplan makes on recovered instances.

use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::Tag;

use crate::FunctionError;

/// Tags each instance with its own tags (its Name and source server differ from the
/// others'), one CreateTags call per instance.
pub async fn tag_instances(
    ec2: &Client,
    instances: &[(String, Vec<(String, String)>)],
) -> Result<(), FunctionError> {
    for (instance_id, tags) in instances {
        let tags: Vec<Tag> = tags
            .iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect();
        ec2.create_tags()
            .resources(instance_id)
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(|e| FunctionError::from_sdk("EC2 CreateTags", e))?;
    }
    Ok(())
}
