use super::*;

#[test]
fn dns_names() {
    for ok in [
        "shop.example.com",
        "shop.example.com.",
        "*.example.com",
        "a-b.c_d.example.org",
    ] {
        assert_eq!(dns_name_problem(ok), None, "{ok}");
    }
    for bad in [
        "shop",
        "shop..example.com",
        ".example.com",
        "-a.example.com",
        "sh op.example.com",
        "a.*.com",
    ] {
        assert!(dns_name_problem(bad).is_some(), "{bad}");
    }
    let long_label = format!("{}.example.com", "a".repeat(64));
    assert!(dns_name_problem(&long_label).is_some());
}

#[test]
fn lambda_arns() {
    assert_eq!(
        lambda_arn_problem("arn:aws:lambda:us-east-1:123456789012:function:warm-cache"),
        None
    );
    assert_eq!(
        lambda_arn_problem("arn:aws:lambda:us-east-1:123456789012:function:warm-cache:live"),
        None
    );
    assert!(lambda_arn_problem("warm-cache").is_some());
    assert!(lambda_arn_problem("arn:aws:lambda:...:function:warm-cache").is_some());
    assert!(lambda_arn_problem("arn:aws:s3:us-east-1:123456789012:function:x").is_some());
}

#[test]
fn format_follows_extension_then_content() {
    assert_eq!(Format::guess(Some("a.JSON"), "name: x"), Format::Json);
    assert_eq!(Format::guess(Some("a.yml"), "{}"), Format::Yaml);
    assert_eq!(Format::guess(None, "  {\"name\": 1}"), Format::Json);
    assert_eq!(Format::guess(Some("plan"), "name: x"), Format::Yaml);
}
