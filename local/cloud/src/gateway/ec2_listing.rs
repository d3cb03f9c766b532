//! moto answers an account-wide DescribeLaunchTemplateVersions (`$Default` or `$Latest`
//! with no template named) with at most MaxResults versions and no NextToken: the rest
//! of the account's templates are left out without a word, and a caller that pages as
//! EC2 asks it to would take them for deleted. EC2 pages the whole listing; the gateway
//! asks moto for all of it at once, which is what EC2's pages add up to.

use axum::body::Bytes;

/// More versions than any local fleet has templates.
const EVERYTHING: &str = "1000000";

/// The request body to send moto instead, for an account-wide listing; `None` for any
/// other request.
pub(super) fn complete_listing(service: &str, operation: &str, body: &Bytes) -> Option<Bytes> {
    if service != "ec2" || operation != "DescribeLaunchTemplateVersions" {
        return None;
    }
    let pairs: Vec<(String, String)> = form_urlencoded::parse(body)
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect();
    if pairs
        .iter()
        .any(|(name, _)| name == "LaunchTemplateId" || name == "LaunchTemplateName")
    {
        return None;
    }
    let mut rewritten = form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs.iter().filter(|(name, _)| name != "MaxResults") {
        rewritten.append_pair(name, value);
    }
    rewritten.append_pair("MaxResults", EVERYTHING);
    Some(Bytes::from(rewritten.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &Bytes) -> Vec<(String, String)> {
        form_urlencoded::parse(body)
            .map(|(n, v)| (n.into_owned(), v.into_owned()))
            .collect()
    }

    #[test]
    fn an_account_wide_listing_asks_moto_for_every_version() {
        let body = Bytes::from_static(
            b"Action=DescribeLaunchTemplateVersions&Version=2016-11-15&LaunchTemplateVersion.1=%24Default&MaxResults=200",
        );
        let rewritten =
            complete_listing("ec2", "DescribeLaunchTemplateVersions", &body).expect("rewritten");
        let pairs = parse(&rewritten);
        assert!(pairs.contains(&("LaunchTemplateVersion.1".into(), "$Default".into())));
        assert!(pairs.contains(&("MaxResults".into(), EVERYTHING.into())));
        assert_eq!(pairs.iter().filter(|(n, _)| n == "MaxResults").count(), 1);
    }

    #[test]
    fn one_templates_versions_and_other_calls_pass_unchanged() {
        let one = Bytes::from_static(
            b"Action=DescribeLaunchTemplateVersions&LaunchTemplateId=lt-1&LaunchTemplateVersion.1=%24Default",
        );
        assert_eq!(
            complete_listing("ec2", "DescribeLaunchTemplateVersions", &one),
            None
        );
        let other = Bytes::from_static(b"Action=DescribeSubnets");
        assert_eq!(complete_listing("ec2", "DescribeSubnets", &other), None);
    }
}
