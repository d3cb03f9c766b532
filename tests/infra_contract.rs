//! The contract between `infra/template.yaml` and the code: each function's role grants
//! exactly the AWS operations that function's code makes, no more and no fewer; the
//! state machine's role may invoke drplan's functions and make its definition's own
//! `aws-sdk:` calls on the stack's bucket, and nothing else; every function
//! crate is deployed and every `${...}` of every state machine is substituted.
//!
//! How the operations are found, mechanically, from the source (no hand-kept list):
//!
//! 1. Every Rust file of the function crate (`functions/NAME/src`) and of `drplan-aws`
//!    (`aws/src`) is tokenised (comments, strings and character literals dropped) and cut
//!    into `fn` items.
//! 2. AWS SDK clients are recognised by their declared type: a parameter, field or
//!    binding `name: aws_sdk_X::Client` (or `&Client` where the file says
//!    `use aws_sdk_X::Client`) makes `name` a client of service X in that file.
//! 3. In each `fn` body, `client.op(` with `client` such a name is an SDK operation
//!    (`drs.describe_jobs()` is DRS DescribeJobs); `module::f(` calls `drplan-aws`'s
//!    `module.rs`, `f(` a function of the same file (or a unique free function of
//!    `drplan-aws`), `.m(` a `drplan-aws` method named `m` (RunStore's `get_json`...).
//! 4. From every `fn` of the function crate, calls are followed transitively; the SDK
//!    operations reached are the function's operations.
//! 5. An operation maps to its IAM action: the service's IAM prefix (`SERVICE_PREFIX`)
//!    and the operation in PascalCase (`describe_source_servers` is
//!    `drs:DescribeSourceServers`), except where IAM names it otherwise (`IAM_NAME`).
//!
//! Some operations need more actions than their own: `DEPENDENT_ACTIONS` lists them with
//! their source (the Service Authorization Reference's "dependent actions", e.g. DRS
//! launches recovery instances with StartRecovery's caller's EC2 permissions). Every
//! function also writes its logs (`PLATFORM_ACTIONS`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

/// IAM prefix of each SDK crate's service (`aws_sdk_X`).
const SERVICE_PREFIX: &[(&str, &str)] = &[
    ("drs", "drs"),
    ("ec2", "ec2"),
    ("s3", "s3"),
    ("sns", "sns"),
    ("sfn", "states"),
    ("lambda", "lambda"),
    ("route53", "route53"),
    ("cloudwatch", "cloudwatch"),
    ("eventbridge", "events"),
    ("elasticloadbalancingv2", "elasticloadbalancing"),
    ("scheduler", "scheduler"),
    ("iam", "iam"),
];

/// SDK operations whose IAM action is not the operation's own name.
const IAM_NAME: &[(&str, &str)] = &[
    ("s3:ListObjectsV2", "s3:ListBucket"),
    ("s3:HeadObject", "s3:GetObject"),
    ("s3:HeadBucket", "s3:ListBucket"),
];

/// (operation's action, dependent action, required, performed by DRS on the caller's
/// behalf). A required dependent must be granted; an optional one may be. One performed
/// by DRS must be granted only under `aws:CalledVia` = `drs.amazonaws.com`.
const DEPENDENT_ACTIONS: &[(&str, &[&str], bool, bool)] = &[
    // Service Authorization Reference, DRS, StartRecovery: dependent actions.
    (
        "drs:StartRecovery",
        &[
            "drs:CreateRecoveryInstanceForDrs",
            "drs:ListTagsForResource",
            "ec2:AttachVolume",
            "ec2:AuthorizeSecurityGroupEgress",
            "ec2:AuthorizeSecurityGroupIngress",
            "ec2:CreateLaunchTemplate",
            "ec2:CreateLaunchTemplateVersion",
            "ec2:CreateSnapshot",
            "ec2:CreateTags",
            "ec2:CreateVolume",
            "ec2:DeleteLaunchTemplateVersions",
            "ec2:DeleteSnapshot",
            "ec2:DeleteVolume",
            "ec2:DescribeAccountAttributes",
            "ec2:DescribeAvailabilityZones",
            "ec2:DescribeImages",
            "ec2:DescribeInstanceAttribute",
            "ec2:DescribeInstanceStatus",
            "ec2:DescribeInstanceTypes",
            "ec2:DescribeInstances",
            "ec2:DescribeLaunchTemplateVersions",
            "ec2:DescribeLaunchTemplates",
            "ec2:DescribeSecurityGroups",
            "ec2:DescribeSnapshots",
            "ec2:DescribeSubnets",
            "ec2:DescribeVolumes",
            "ec2:DetachVolume",
            "ec2:ModifyInstanceAttribute",
            "ec2:ModifyLaunchTemplate",
            "ec2:RevokeSecurityGroupEgress",
            "ec2:RunInstances",
            "ec2:StartInstances",
            "ec2:StopInstances",
            "ec2:TerminateInstances",
            "iam:PassRole",
        ],
        true,
        true,
    ),
    // StartRecovery with tags (drplan tags every job it starts, so a retried step finds
    // its jobs) tags the new job: drs:TagResource, for drs:CreateAction StartRecovery.
    ("drs:StartRecovery", &["drs:TagResource"], true, false),
    // The same for the FAILBACK jobs StartFailbackLaunch starts with drplan's tags.
    ("drs:StartFailbackLaunch", &["drs:TagResource"], true, false),
    // Service Authorization Reference, DRS, TerminateRecoveryInstances: dependent actions.
    (
        "drs:TerminateRecoveryInstances",
        &[
            "drs:DescribeSourceServers",
            "ec2:DeleteVolume",
            "ec2:DescribeInstances",
            "ec2:DescribeVolumes",
            "ec2:TerminateInstances",
        ],
        true,
        true,
    ),
    // A schedule's target names the role Scheduler invokes it with: creating or
    // replacing one passes that role (EventBridge Scheduler user guide, "Setting up").
    ("scheduler:CreateSchedule", &["iam:PassRole"], true, false),
    ("scheduler:UpdateSchedule", &["iam:PassRole"], true, false),
    // Without s3:ListBucket, S3 answers 403 instead of 404 for a missing key; RunStore
    // reads "no such key" as "not there" (a plan name that does not exist, a run that
    // stopped before writing a record), so a role may hold it for its read prefixes.
    ("s3:GetObject", &["s3:ListBucket"], false, false),
    // The template's SNS topic is encrypted with its own KMS key: a publisher needs
    // kms:GenerateDataKey and kms:Decrypt on that key (SNS developer guide, "Encryption
    // at rest": permissions for publishers to an encrypted topic).
    (
        "sns:Publish",
        &["kms:GenerateDataKey", "kms:Decrypt"],
        true,
        false,
    ),
];

/// Every Lambda function writes its own log group.
const PLATFORM_ACTIONS: &[&str] = &["logs:CreateLogStream", "logs:PutLogEvents"];

/// What Lambda needs to attach a function with `VpcConfig` to its subnets (the actions
/// of the AWSLambdaVPCAccessExecutionRole managed policy, granted inline so that this
/// test sees them).
const VPC_ACTIONS: &[&str] = &[
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
];

/// What Step Functions needs to deliver its execution log to CloudWatch Logs.
const STATE_MACHINE_LOG_DELIVERY: &[&str] = &[
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
];

/// Function crates still being written, not deployed yet: each is named here until its
/// AWS::Serverless::Function lands in the template (then this test asks for its removal).
const NOT_YET_DEPLOYED: &[&str] = &[];

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn load_template() -> Value {
    let path = repo_root().join("infra/template.yaml");
    let text = std::fs::read_to_string(&path).expect("infra/template.yaml");
    let yaml: serde_norway::Value = serde_norway::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "{} is not plain YAML (long-form intrinsics only): {e}",
            path.display()
        )
    });
    serde_json::to_value(yaml).expect("template as JSON")
}

fn resources(template: &Value) -> &serde_json::Map<String, Value> {
    template["Resources"].as_object().expect("Resources")
}

fn one_or_many(value: &Value) -> Vec<&Value> {
    match value {
        Value::Array(items) => items.iter().collect(),
        Value::Null => Vec::new(),
        other => vec![other],
    }
}

/// What a list item of the template may be once its conditions are known: the item
/// itself, or for `Fn::If: [CONDITION, A, B]` each of A and B (`AWS::NoValue` is no
/// item). With the condition (`None` outside any `Fn::If`; the innermost one).
fn conditional_items(value: &Value) -> Vec<(Option<&str>, &Value)> {
    match value.get("Fn::If").and_then(Value::as_array) {
        Some(parts) if parts.len() == 3 => parts[1..]
            .iter()
            .filter(|branch| branch.get("Ref").and_then(Value::as_str) != Some("AWS::NoValue"))
            .flat_map(|branch| {
                conditional_items(branch)
                    .into_iter()
                    .map(|(inner, item)| (inner.or(parts[0].as_str()), item))
            })
            .collect(),
        _ => vec![(None, value)],
    }
}

/// The logical ID a `Fn::GetAtt: [ID, Arn]` (or `Ref: ID`) points at.
fn target_of(value: &Value) -> Option<&str> {
    value
        .get("Fn::GetAtt")
        .and_then(|g| g.get(0))
        .or_else(|| value.get("Ref"))
        .and_then(Value::as_str)
}

// ---------------------------------------------------------------------------------------
// Source scanning
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Ident(String),
    Punct(&'static str),
}

/// Rust source as identifiers and the punctuation that matters here; comments, string,
/// byte-string, raw-string and character literals are dropped, lifetimes skipped.
fn tokenize(source: &str) -> Vec<Token> {
    let chars: Vec<char> = source.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c == 'r' && (next == Some('#') || next == Some('"')) && raw_string_at(&chars, i) {
            i = skip_raw_string(&chars, i + 1);
        } else if c == 'b' && next == Some('"') {
            i = skip_string(&chars, i + 1);
        } else if c == '"' {
            i = skip_string(&chars, i);
        } else if c == '\'' {
            // A character literal ('x', '\n', '\u{..}') or a lifetime ('a).
            if next == Some('\\') {
                i += 2;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if chars.get(i + 2) == Some(&'\'') {
                i += 3;
            } else {
                i += 1;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
            }
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            tokens.push(Token::Ident(chars[start..i].iter().collect()));
        } else if c == ':' && next == Some(':') {
            tokens.push(Token::Punct("::"));
            i += 2;
        } else {
            let punct = match c {
                '.' => Some("."),
                '(' => Some("("),
                ')' => Some(")"),
                '{' => Some("{"),
                '}' => Some("}"),
                ';' => Some(";"),
                ':' => Some(":"),
                '&' => Some("&"),
                ',' => Some(","),
                '!' => Some("!"),
                '<' => Some("<"),
                '>' => Some(">"),
                _ => None,
            };
            if let Some(p) = punct {
                tokens.push(Token::Punct(p));
            } else if !c.is_whitespace() {
                tokens.push(Token::Punct("other"));
            }
            i += 1;
        }
    }
    tokens
}

fn raw_string_at(chars: &[char], i: usize) -> bool {
    let preceded_by_ident = i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_');
    if preceded_by_ident {
        return false;
    }
    let mut j = i + 1;
    while chars.get(j) == Some(&'#') {
        j += 1;
    }
    chars.get(j) == Some(&'"')
}

/// From the `#`s or quote after `r`, past the closing quote and as many `#`s.
fn skip_raw_string(chars: &[char], mut i: usize) -> usize {
    let mut hashes = 0;
    while chars.get(i) == Some(&'#') {
        hashes += 1;
        i += 1;
    }
    i += 1;
    while i < chars.len() {
        if chars[i] == '"' && (0..hashes).all(|h| chars.get(i + 1 + h) == Some(&'#')) {
            return i + 1 + hashes;
        }
        i += 1;
    }
    i
}

/// From an opening quote, past the closing one.
fn skip_string(chars: &[char], mut i: usize) -> usize {
    i += 1;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            '"' => return i + 1,
            _ => i += 1,
        }
    }
    i
}

/// One `fn` item: where it is, whether it takes `self`, and its body's tokens.
#[derive(Debug)]
struct FnItem {
    module: String,
    name: String,
    is_method: bool,
    body: Vec<Token>,
}

/// A scanned file: its `fn` items and the names of the SDK clients it declares.
struct SourceFile {
    module: String,
    fns: Vec<FnItem>,
    clients: BTreeMap<String, String>,
}

fn ident(tokens: &[Token], i: usize) -> Option<&str> {
    match tokens.get(i) {
        Some(Token::Ident(s)) => Some(s),
        _ => None,
    }
}

fn punct(tokens: &[Token], i: usize, p: &str) -> bool {
    matches!(tokens.get(i), Some(Token::Punct(q)) if *q == p)
}

fn scan_file(path: &Path, module: &str) -> SourceFile {
    let source =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let tokens = tokenize(&source);

    // `use aws_sdk_X::Client;` (or `use aws_sdk_X::{.., Client, ..};`): a bare `Client`.
    let mut bare_client_service = None;
    for i in 0..tokens.len() {
        if ident(&tokens, i) == Some("use")
            && let Some(krate) = ident(&tokens, i + 1)
            && let Some(service) = krate.strip_prefix("aws_sdk_")
        {
            let mut j = i + 2;
            while j < tokens.len() && !punct(&tokens, j, ";") {
                if ident(&tokens, j) == Some("Client") && !punct(&tokens, j + 1, "::") {
                    bare_client_service = Some(service.to_owned());
                }
                j += 1;
            }
        }
    }

    // `name: &? (mut)? path::to::Client`: `name` is a client of the path's service.
    let mut clients = BTreeMap::new();
    for i in 0..tokens.len() {
        let (Some(name), true) = (ident(&tokens, i), punct(&tokens, i + 1, ":")) else {
            continue;
        };
        let mut j = i + 2;
        while punct(&tokens, j, "&") || ident(&tokens, j) == Some("mut") {
            j += 1;
        }
        let mut path = Vec::new();
        while let Some(segment) = ident(&tokens, j) {
            path.push(segment);
            if punct(&tokens, j + 1, "::") {
                j += 2;
            } else {
                break;
            }
        }
        if path.last() != Some(&"Client") {
            continue;
        }
        let service = path
            .iter()
            .find_map(|s| s.strip_prefix("aws_sdk_"))
            .map(str::to_owned)
            .or_else(|| {
                (path.len() == 1)
                    .then(|| bare_client_service.clone())
                    .flatten()
            });
        if let Some(service) = service {
            clients.insert(name.to_owned(), service);
        }
    }

    // `fn name ... { body }` (a `;` before any `{` is a declaration without a body).
    let mut fns = Vec::new();
    for i in 0..tokens.len() {
        if ident(&tokens, i) != Some("fn") {
            continue;
        }
        let Some(name) = ident(&tokens, i + 1) else {
            continue;
        };
        let mut j = i + 2;
        while j < tokens.len() && !punct(&tokens, j, "{") && !punct(&tokens, j, ";") {
            j += 1;
        }
        if !punct(&tokens, j, "{") {
            continue;
        }
        let signature = &tokens[i + 2..j];
        let is_method = signature.iter().any(|t| *t == Token::Ident("self".into()));
        let start = j;
        let mut depth = 0;
        while j < tokens.len() {
            if punct(&tokens, j, "{") {
                depth += 1;
            } else if punct(&tokens, j, "}") {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            j += 1;
        }
        fns.push(FnItem {
            module: module.to_owned(),
            name: name.to_owned(),
            is_method,
            body: tokens[start..j.min(tokens.len())].to_vec(),
        });
    }
    SourceFile {
        module: module.to_owned(),
        fns,
        clients,
    }
}

fn scan_dir(dir: &Path) -> Vec<SourceFile> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let module = path
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or_default()
                    .to_owned();
                files.push(scan_file(&path, &module));
            }
        }
    }
    files
}

/// `::<...>(` at `i`: the generic arguments of a call (`get_json::<Plan>(...)`).
fn turbofish_call(tokens: &[Token], i: usize) -> bool {
    if !(punct(tokens, i, "::") && punct(tokens, i + 1, "<")) {
        return false;
    }
    let mut depth = 0;
    for j in i + 1..tokens.len() {
        if punct(tokens, j, "<") {
            depth += 1;
        } else if punct(tokens, j, ">") {
            depth -= 1;
            if depth == 0 {
                return punct(tokens, j + 1, "(");
            }
        } else if punct(tokens, j, ";") || punct(tokens, j, "{") {
            return false;
        }
    }
    false
}

/// What a call in a body refers to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Call {
    /// An SDK operation: (service crate suffix, snake_case operation).
    Sdk(String, String),
    /// `module::name(`
    Path(String, String),
    /// `name(` in the same file
    Bare(String),
    /// `.name(` on something that is not an SDK client
    Method(String),
}

/// Methods of an SDK client that are not API operations (no IAM action).
const CLIENT_METHODS: &[&str] = &["config"];

fn calls_in(item: &FnItem, clients: &BTreeMap<String, String>) -> BTreeSet<Call> {
    let body = &item.body;
    let mut calls = BTreeSet::new();
    for i in 0..body.len() {
        let Some(name) = ident(body, i) else {
            continue;
        };
        if !punct(body, i + 1, "(") && !turbofish_call(body, i + 1) {
            continue;
        }
        if i >= 1 && punct(body, i - 1, ".") {
            match i
                .checked_sub(2)
                .and_then(|r| ident(body, r))
                .and_then(|r| clients.get(r))
            {
                Some(_) if CLIENT_METHODS.contains(&name) => false,
                Some(service) => calls.insert(Call::Sdk(service.clone(), name.to_owned())),
                None => calls.insert(Call::Method(name.to_owned())),
            };
        } else if i >= 2 && punct(body, i - 1, "::") {
            if let Some(module) = ident(body, i - 2) {
                calls.insert(Call::Path(module.to_owned(), name.to_owned()));
            }
        } else if !(i >= 1 && ident(body, i - 1) == Some("fn")) {
            calls.insert(Call::Bare(name.to_owned()));
        }
    }
    calls
}

/// The SDK operations (service, snake_case) that the crate in `crate_dir` reaches, through
/// its own code and `drplan-aws`.
fn sdk_operations(crate_dir: &Path, aws: &[SourceFile]) -> BTreeSet<(String, String)> {
    let own = scan_dir(&crate_dir.join("src"));
    // Work list of (file set, module, fn name): `true` for the crate's own files.
    let mut queue: Vec<(bool, String, String)> = own
        .iter()
        .flat_map(|f| {
            f.fns
                .iter()
                .map(|item| (true, item.module.clone(), item.name.clone()))
        })
        .collect();
    let mut seen = BTreeSet::new();
    let mut operations = BTreeSet::new();
    while let Some((in_own, module, name)) = queue.pop() {
        if !seen.insert((in_own, module.clone(), name.clone())) {
            continue;
        }
        let files = if in_own { &own[..] } else { aws };
        for file in files.iter().filter(|f| f.module == module) {
            for item in file.fns.iter().filter(|i| i.name == name) {
                for call in calls_in(item, &file.clients) {
                    match call {
                        Call::Sdk(service, op) => {
                            operations.insert((service, op));
                        }
                        Call::Path(target, f) => {
                            if aws.iter().any(|a| a.module == target) {
                                queue.push((false, target, f));
                            } else if files.iter().any(|a| a.module == target) {
                                queue.push((in_own, target, f));
                            }
                        }
                        Call::Bare(f) => {
                            if file.fns.iter().any(|i| i.name == f) {
                                queue.push((in_own, file.module.clone(), f));
                            } else {
                                let free: Vec<&FnItem> = aws
                                    .iter()
                                    .flat_map(|a| &a.fns)
                                    .filter(|i| i.name == f && !i.is_method)
                                    .collect();
                                if let [only] = free[..] {
                                    queue.push((false, only.module.clone(), f));
                                }
                            }
                        }
                        Call::Method(m) => {
                            for (in_own2, files2) in [(true, &own[..]), (false, aws)] {
                                for f2 in files2 {
                                    if f2.fns.iter().any(|i| i.name == m && i.is_method) {
                                        queue.push((in_own2, f2.module.clone(), m.clone()));
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    operations
}

fn pascal(snake: &str) -> String {
    snake
        .split('_')
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

fn iam_action(service: &str, op: &str) -> String {
    let prefix = SERVICE_PREFIX
        .iter()
        .find(|(s, _)| *s == service)
        .map(|(_, p)| *p)
        .unwrap_or_else(|| panic!("no IAM prefix for aws_sdk_{service}: add it to SERVICE_PREFIX"));
    let action = format!("{prefix}:{}", pascal(op));
    IAM_NAME
        .iter()
        .find(|(from, _)| *from == action)
        .map_or(action, |(_, to)| (*to).to_owned())
}

/// The IAM actions the code of `functions/BINARY` calls.
fn code_actions(binary: &str) -> BTreeSet<String> {
    let root = repo_root();
    let aws = scan_dir(&root.join("aws/src"));
    sdk_operations(&root.join("functions").join(binary), &aws)
        .iter()
        .map(|(service, op)| iam_action(service, op))
        .collect()
}

// ---------------------------------------------------------------------------------------
// Template reading
// ---------------------------------------------------------------------------------------

/// An Allow statement's actions, with whether it is conditioned on DRS calling.
struct Grant {
    action: String,
    via_drs: bool,
    resources: Vec<Value>,
    /// The template condition the statement is granted under, if any.
    condition: Option<String>,
}

fn role_grants(template: &Value, role_id: &str) -> Vec<Grant> {
    let role = &resources(template)[role_id];
    assert_eq!(
        role["Type"], "AWS::IAM::Role",
        "{role_id} is not an AWS::IAM::Role"
    );
    assert!(
        role["Properties"].get("ManagedPolicyArns").is_none(),
        "{role_id}: managed policies cannot be checked against the code; use inline policies"
    );
    let mut grants = Vec::new();
    let items = |value| -> Vec<(Option<&str>, &Value)> {
        one_or_many(value)
            .into_iter()
            .flat_map(conditional_items)
            .collect()
    };
    for (policy_condition, policy) in items(&role["Properties"]["Policies"]) {
        for (statement_condition, statement) in items(&policy["PolicyDocument"]["Statement"]) {
            let condition = statement_condition.or(policy_condition).map(str::to_owned);
            assert_eq!(
                statement["Effect"], "Allow",
                "{role_id}: only Allow statements are expected"
            );
            assert!(
                statement.get("NotAction").is_none(),
                "{role_id}: NotAction grants everything else"
            );
            let via_drs = statement["Condition"]
                .as_object()
                .into_iter()
                .flat_map(|c| c.iter())
                .filter(|(op, _)| op.contains("StringEquals"))
                .any(|(_, keys)| {
                    one_or_many(&keys["aws:CalledVia"])
                        .iter()
                        .any(|v| v.as_str() == Some("drs.amazonaws.com"))
                });
            for action in one_or_many(&statement["Action"]) {
                grants.push(Grant {
                    action: action.as_str().expect("actions are strings").to_owned(),
                    via_drs,
                    resources: one_or_many(&statement["Resource"])
                        .into_iter()
                        .cloned()
                        .collect(),
                    condition: condition.clone(),
                });
            }
        }
    }
    grants
}

/// (logical ID, binary) of every AWS::Serverless::Function.
fn template_functions(template: &Value) -> BTreeMap<String, String> {
    resources(template)
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::Serverless::Function")
        .map(|(id, r)| {
            assert_eq!(
                r["Metadata"]["BuildMethod"], "rust-cargolambda",
                "{id}: BuildMethod"
            );
            let binary = r["Metadata"]["BuildProperties"]["Binary"]
                .as_str()
                .unwrap_or_else(|| panic!("{id}: Metadata.BuildProperties.Binary"));
            (id.clone(), binary.to_owned())
        })
        .collect()
}

/// Everything wrong with one function's role, empty when it grants exactly what its
/// code needs.
fn role_problems(template: &Value, function_id: &str, code: &BTreeSet<String>) -> Vec<String> {
    let function = &resources(template)[function_id];
    let Some(role_id) = target_of(&function["Properties"]["Role"]) else {
        return vec![format!(
            "{function_id}: Role must be Fn::GetAtt [ITS_ROLE, Arn], one role per function"
        )];
    };
    let grants = role_grants(template, role_id);
    let lower = |s: &str| s.to_ascii_lowercase();
    let granted: BTreeMap<String, &Grant> = grants.iter().map(|g| (lower(&g.action), g)).collect();

    let mut required: BTreeMap<String, String> = BTreeMap::new();
    let mut allowed: BTreeMap<String, String> = BTreeMap::new();
    let mut must_be_via_drs = BTreeSet::new();
    for action in code {
        required.insert(lower(action), format!("{action} (called by the code)"));
    }
    for action in PLATFORM_ACTIONS {
        required.insert(lower(action), format!("{action} (the function's logs)"));
    }
    if function["Properties"].get("VpcConfig").is_some() {
        for action in VPC_ACTIONS {
            required.insert(
                lower(action),
                format!("{action} (the function runs in a VPC)"),
            );
        }
    }
    for (of, dependents, is_required, by_drs) in DEPENDENT_ACTIONS {
        if !code.contains(*of) {
            continue;
        }
        for action in *dependents {
            let why = format!("{action} (needed by {of})");
            if *is_required {
                required.entry(lower(action)).or_insert(why);
            } else {
                allowed.entry(lower(action)).or_insert(why);
            }
            if *by_drs {
                must_be_via_drs.insert(lower(action));
            }
        }
    }

    let mut problems = Vec::new();
    for grant in &grants {
        if grant.action.contains('*') {
            problems.push(format!(
                "{role_id}: grants a wildcard action {}",
                grant.action
            ));
        }
    }
    for (action, why) in &required {
        if !granted.contains_key(action) {
            problems.push(format!("{role_id}: does not grant {why}"));
        }
    }
    for (action, grant) in &granted {
        if !required.contains_key(action) && !allowed.contains_key(action) {
            problems.push(format!(
                "{role_id}: grants {}, which no code of {function_id} uses",
                grant.action
            ));
        }
    }
    for grant in &grants {
        let action = lower(&grant.action);
        // Granted outside a CalledVia statement while only DRS needs it.
        if must_be_via_drs.contains(&action)
            && !required
                .get(&action)
                .is_some_and(|w| w.contains("called by the code"))
            && !grant.via_drs
        {
            problems.push(format!(
                "{role_id}: {} is performed by DRS on the caller's behalf; grant it only with aws:CalledVia drs.amazonaws.com",
                grant.action
            ));
        }
        // S3 object actions: a prefix of the bucket, never all of it.
        if action.starts_with("s3:") && action.ends_with("object") {
            for resource in &grant.resources {
                let text = resource
                    .get("Fn::Sub")
                    .and_then(Value::as_str)
                    .or(resource.as_str())
                    .unwrap_or_default();
                if !text.contains(".Arn}/") || text.ends_with("}/*") {
                    problems.push(format!(
                        "{role_id}: {} on {text}: limit it to the prefixes the function uses",
                        grant.action
                    ));
                }
            }
        }
    }
    problems
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

#[test]
fn every_function_crate_is_deployed_and_every_deployed_function_has_a_crate() {
    let template = load_template();
    let deployed: BTreeSet<String> = template_functions(&template).into_values().collect();
    let crates: BTreeSet<String> = std::fs::read_dir(repo_root().join("functions"))
        .expect("functions/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("Cargo.toml").is_file())
        .filter_map(|p| p.file_name().and_then(|n| n.to_str()).map(str::to_owned))
        .collect();
    for name in &crates {
        let pending = NOT_YET_DEPLOYED.contains(&name.as_str());
        assert!(
            deployed.contains(name) || pending,
            "functions/{name} has no AWS::Serverless::Function with BuildProperties.Binary: {name} in infra/template.yaml"
        );
        assert!(
            !(deployed.contains(name) && pending),
            "functions/{name} is deployed now: remove it from NOT_YET_DEPLOYED"
        );
    }
    for name in &deployed {
        assert!(
            crates.contains(name),
            "the template deploys {name}, but functions/{name} is no crate"
        );
    }
}

#[test]
fn each_function_role_grants_exactly_what_its_code_calls() {
    let template = load_template();
    let mut problems = Vec::new();
    for (function_id, binary) in template_functions(&template) {
        let code = code_actions(&binary);
        assert!(
            !code.is_empty(),
            "found no AWS call in functions/{binary}: the scanner is broken"
        );
        problems.extend(role_problems(&template, &function_id, &code));
    }
    assert!(
        problems.is_empty(),
        "infra/template.yaml:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_scanner_finds_the_calls_it_should() {
    // Direct SDK calls, module paths, RunStore methods and shared wave logic.
    let discover = code_actions("discover");
    for action in [
        "drs:DescribeSourceServers",
        "drs:DescribeJobs",
        "s3:GetObject",
        "s3:PutObject",
    ] {
        assert!(
            discover.contains(action),
            "discover: {action} in {discover:?}"
        );
    }
    assert!(
        !discover.contains("drs:StartRecovery"),
        "discover launches nothing: {discover:?}"
    );
    let wait = code_actions("wait-wave");
    for action in [
        "drs:StartRecovery",
        "drs:DescribeJobLogItems",
        "drs:DescribeRecoverySnapshots",
    ] {
        assert!(wait.contains(action), "wait-wave: {action} in {wait:?}");
    }
    let cleanup = code_actions("cleanup");
    assert!(
        cleanup.contains("s3:GetObject"),
        "cleanup reads through get_json::<T>(): {cleanup:?}"
    );
    let report = code_actions("report");
    assert_eq!(
        report,
        BTreeSet::from(
            [
                "ec2:DeleteLaunchTemplateVersions",
                "ec2:ModifyLaunchTemplate",
                "s3:DeleteObject",
                "s3:GetObject",
                "s3:ListBucket",
                "s3:PutObject"
            ]
            .map(str::to_owned)
        ),
        "report reads and writes the bucket, releases the plan's lock, restores drill launch templates"
    );
}

#[test]
fn a_missing_or_an_extra_action_is_caught() {
    let template = load_template();
    let code = code_actions("discover");
    assert!(role_problems(&template, "DiscoverFunction", &code).is_empty());

    // Remove drs:DescribeJobs from the discover role.
    let mut missing = template.clone();
    for statement in missing["Resources"]["DiscoverRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
        .as_array_mut()
        .unwrap()
    {
        if let Some(actions) = statement["Action"].as_array_mut() {
            actions.retain(|a| a != "drs:DescribeJobs");
        }
    }
    let problems = role_problems(&missing, "DiscoverFunction", &code);
    assert!(
        problems
            .iter()
            .any(|p| p.contains("does not grant drs:DescribeJobs")),
        "{problems:?}"
    );

    // Add an action no code of discover calls, and a wildcard.
    for extra in ["s3:DeleteObject", "drs:*"] {
        let mut more = template.clone();
        more["Resources"]["DiscoverRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"Effect": "Allow", "Action": extra, "Resource": "*"}));
        let problems = role_problems(&more, "DiscoverFunction", &code);
        assert!(
            problems.iter().any(|p| p.contains(extra)),
            "{extra}: {problems:?}"
        );
    }
}

/// The only functions besides drplan's own that a state machine may invoke.
const HOOK_FUNCTIONS_ARN: &str =
    "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:drplan-hook-*";

/// Whether the state machine's definition calls plan hooks (a dynamic `FunctionName.$`).
fn definition_calls_hooks(props: &Value) -> bool {
    let uri = props["DefinitionUri"].as_str().unwrap_or_default();
    std::fs::read_to_string(repo_root().join("infra").join(uri))
        .is_ok_and(|definition| definition.contains("\"FunctionName.$\": \"$.function\""))
}

/// The IAM actions of the `arn:aws:states:::aws-sdk:SERVICE:apiAction` tasks of a
/// state machine's definition (`s3:listObjectsV2` is `s3:ListBucket`).
fn definition_sdk_actions(props: &Value) -> BTreeSet<String> {
    let uri = props["DefinitionUri"].as_str().unwrap_or_default();
    let definition = std::fs::read_to_string(repo_root().join("infra").join(uri))
        .unwrap_or_else(|e| panic!("{uri}: {e}"));
    let mut actions = BTreeSet::new();
    let mut rest = definition.as_str();
    const SDK: &str = "arn:aws:states:::aws-sdk:";
    while let Some(start) = rest.find(SDK) {
        rest = &rest[start + SDK.len()..];
        let end = rest.find('"').expect("the resource ends");
        let (service, api) = rest[..end].split_once(':').expect("SERVICE:apiAction");
        let mut pascal = api.to_owned();
        pascal[..1].make_ascii_uppercase();
        let operation = format!("{service}:{pascal}");
        let action = IAM_NAME
            .iter()
            .find(|(op, _)| *op == operation)
            .map_or(operation.clone(), |(_, action)| (*action).to_owned());
        actions.insert(action);
    }
    actions
}

#[test]
fn the_state_machine_role_invokes_only_drplan_functions() {
    let template = load_template();
    let functions = template_functions(&template);
    let machines: Vec<(&String, &Value)> = resources(&template)
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::Serverless::StateMachine")
        .collect();
    assert!(!machines.is_empty(), "no AWS::Serverless::StateMachine");
    for (id, machine) in machines {
        let props = &machine["Properties"];
        let role_id = target_of(&props["Role"])
            .unwrap_or_else(|| panic!("{id}: Role must be Fn::GetAtt [ROLE, Arn]"));
        let mut substituted = BTreeSet::new();
        let mut buckets = BTreeSet::new();
        for value in props["DefinitionSubstitutions"]
            .as_object()
            .into_iter()
            .flat_map(|m| m.values())
        {
            let Some(target) = target_of(value) else {
                continue;
            };
            // The stack's bucket, by name: for the definition's own S3 calls.
            if value.get("Ref").is_some()
                && resources(&template)
                    .get(target)
                    .is_some_and(|r| r["Type"] == "AWS::S3::Bucket")
            {
                buckets.insert(target.to_owned());
                continue;
            }
            assert!(
                functions.contains_key(target),
                "{id}: substitutes {target}, which is no drplan function"
            );
            substituted.insert(target.to_owned());
        }
        let sdk_actions = definition_sdk_actions(props);
        assert!(
            sdk_actions.is_empty() || !buckets.is_empty(),
            "{id}: calls {sdk_actions:?} on no bucket of the stack"
        );
        let mut invokable = BTreeSet::new();
        let mut granted_sdk = BTreeSet::new();
        for grant in role_grants(&template, role_id) {
            assert!(
                !grant.action.contains('*'),
                "{role_id}: wildcard action {}",
                grant.action
            );
            if grant.action.starts_with("lambda:") {
                assert_eq!(grant.action, "lambda:InvokeFunction", "{role_id}");
                for resource in &grant.resources {
                    // Plans' hook functions: only by the name prefix hooks must carry
                    // (discover refuses other names), in this account and Region.
                    if resource["Fn::Sub"].as_str() == Some(HOOK_FUNCTIONS_ARN) {
                        assert!(
                            definition_calls_hooks(props),
                            "{role_id}: may invoke hook functions, which {id} never calls"
                        );
                        continue;
                    }
                    let target = target_of(resource)
                        .filter(|t| functions.contains_key(*t))
                        .unwrap_or_else(|| {
                            panic!(
                                "{role_id}: may invoke {resource}, which is not a drplan function"
                            )
                        });
                    invokable.insert(target.to_owned());
                }
            } else if sdk_actions.contains(&grant.action) {
                // Only on the substituted bucket (or its objects).
                for resource in &grant.resources {
                    let text = resource.to_string();
                    assert!(
                        buckets.iter().any(|b| text.contains(b.as_str())),
                        "{role_id}: grants {} on {resource}, not on the stack's bucket",
                        grant.action
                    );
                }
                granted_sdk.insert(grant.action.clone());
            } else {
                assert!(
                    STATE_MACHINE_LOG_DELIVERY.contains(&grant.action.as_str()),
                    "{role_id}: grants {}, which {id} neither calls nor needs for its log",
                    grant.action
                );
            }
        }
        assert_eq!(
            invokable, substituted,
            "{role_id} must invoke exactly the functions {id} uses"
        );
        assert_eq!(
            granted_sdk, sdk_actions,
            "{role_id} must grant exactly the AWS SDK calls {id} makes"
        );
    }
}

#[test]
fn every_placeholder_of_every_state_machine_is_substituted() {
    let template = load_template();
    let root = repo_root();
    let mut deployed = BTreeSet::new();
    for (id, machine) in resources(&template)
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::Serverless::StateMachine")
    {
        let props = &machine["Properties"];
        let uri = props["DefinitionUri"]
            .as_str()
            .unwrap_or_else(|| panic!("{id}: DefinitionUri"));
        let path = root.join("infra").join(uri);
        let definition = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{id}: {}: {e}", path.display()));
        deployed.insert(path.canonicalize().expect("definition path"));
        let mut used = BTreeSet::new();
        let mut rest = definition.as_str();
        while let Some(start) = rest.find("${") {
            let end = rest[start..].find('}').expect("closing brace") + start;
            used.insert(rest[start + 2..end].to_owned());
            rest = &rest[end..];
        }
        let provided: BTreeSet<String> = props["DefinitionSubstitutions"]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        assert_eq!(
            used, provided,
            "{id}: placeholders of {uri} vs DefinitionSubstitutions"
        );
    }
    for entry in std::fs::read_dir(root.join("statemachines")).expect("statemachines/") {
        let path = entry.expect("entry").path();
        if path.to_string_lossy().ends_with(".asl.json") {
            assert!(
                deployed.contains(&path.canonicalize().expect("path")),
                "{} is deployed by no state machine in infra/template.yaml",
                path.display()
            );
        }
    }
}

/// What on-call must hear about even when no drplan code runs to tell them: executions
/// that timed out or were stopped, and the notify function failing.
#[test]
fn timed_out_and_aborted_runs_and_notify_failures_alarm_on_call() {
    let template = load_template();
    let alarms: Vec<(&str, &str, &Value)> = resources(&template)
        .values()
        .filter(|r| r["Type"] == "AWS::CloudWatch::Alarm")
        .map(|r| {
            let p = &r["Properties"];
            (
                p["Namespace"].as_str().unwrap_or_default(),
                p["MetricName"].as_str().unwrap_or_default(),
                p,
            )
        })
        .collect();
    for (namespace, metric, dimension) in [
        ("AWS/States", "ExecutionsTimedOut", "RecoveryStateMachine"),
        ("AWS/States", "ExecutionsAborted", "RecoveryStateMachine"),
        ("AWS/States", "ExecutionsFailed", "RecoveryStateMachine"),
        ("AWS/Lambda", "Errors", "NotifyFunction"),
    ] {
        let found = alarms.iter().find(|(n, m, p)| {
            *n == namespace && *m == metric && p["Dimensions"][0]["Value"]["Ref"] == dimension
        });
        let Some((_, _, props)) = found else {
            panic!("no alarm on {namespace} {metric} of {dimension}");
        };
        assert_eq!(
            props["AlarmActions"][0]["Ref"], "AlarmTopic",
            "{metric} of {dimension} must reach on-call"
        );
    }
}

/// Every step that calls one of drplan's functions (all idempotent) retries a Lambda
/// crash or timeout and a transient AWS failure, after a first retrier that never
/// retries drplan's own verdicts (States.TaskFailed would match them too).
#[test]
fn every_function_step_retries_crashes_but_not_verdicts() {
    let path = repo_root().join("statemachines/recovery.asl.json");
    let machine: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("recovery.asl.json"))
            .expect("ASL is JSON");
    fn tasks<'a>(states: &'a Value, found: &mut Vec<(String, &'a Value)>) {
        for (name, state) in states.as_object().expect("States") {
            if state["Type"] == "Task" {
                found.push((name.clone(), state));
            }
            for nested in [
                &state["ItemProcessor"]["States"],
                &state["Iterator"]["States"],
            ] {
                if nested.is_object() {
                    tasks(nested, found);
                }
            }
        }
    }
    let mut found = Vec::new();
    tasks(&machine["States"], &mut found);
    let mut checked = 0;
    for (name, task) in found {
        // Hooks are the plan owner's code, and task-token waits end by a person's or an
        // event's answer: neither is retried on a crash.
        if !task["Resource"]
            .as_str()
            .unwrap_or_default()
            .starts_with("${")
        {
            continue;
        }
        checked += 1;
        let retry = task["Retry"].as_array().expect("Retry");
        let first = &retry[0];
        assert_eq!(first["MaxAttempts"], 0, "{name}: first retrier");
        for verdict in [
            "drplan.InvalidPlan",
            "drplan.NotReady",
            "drplan.PlanBusy",
            "drplan.WaveFailed",
        ] {
            assert!(
                first["ErrorEquals"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|e| e == verdict),
                "{name}: {verdict} must never be retried"
            );
        }
        let crash = retry.iter().find(|r| {
            r["ErrorEquals"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e == "Sandbox.Timedout")
        });
        let crash = crash.unwrap_or_else(|| panic!("{name}: no retrier for Lambda crashes"));
        for error in ["drplan.Transient", "Lambda.Unknown", "States.TaskFailed"] {
            assert!(
                crash["ErrorEquals"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|e| e == error),
                "{name}: {error}"
            );
        }
        assert!(crash["MaxAttempts"].as_u64().unwrap_or(0) >= 2, "{name}");
    }
    assert!(checked >= 20, "{checked} function steps");
}

/// Every string in `value`, with its path in the template.
fn strings<'a>(value: &'a Value, path: &str, out: &mut Vec<(String, &'a str)>) {
    match value {
        Value::String(text) => out.push((path.to_owned(), text)),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                strings(item, &format!("{path}[{i}]"), out);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                strings(item, &format!("{path}.{key}"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn every_arn_in_the_template_takes_its_partition_from_the_stack() {
    let template = load_template();
    let mut all = Vec::new();
    strings(&template, "", &mut all);
    // `arn:aws:`, `arn:aws-cn:`...: a partition written out breaks the stack elsewhere.
    let written_out: Vec<String> = all
        .iter()
        .filter(|(_, text)| text.contains("arn:aws"))
        .map(|(path, text)| format!("{path}: {text}"))
        .collect();
    assert!(
        written_out.is_empty(),
        "use arn:${{AWS::Partition}}:\n{}",
        written_out.join("\n")
    );
    assert!(
        all.iter()
            .any(|(_, text)| text.contains("arn:${AWS::Partition}:route53:::hostedzone/")),
        "the scan saw no ARN: it is broken"
    );
}

/// How many zones HostedZoneIds may list, from its AllowedPattern (`{0,N-1}`).
fn most_hosted_zones(template: &Value) -> usize {
    let pattern = template["Parameters"]["HostedZoneIds"]["AllowedPattern"]
        .as_str()
        .expect("HostedZoneIds has an AllowedPattern");
    let more = pattern
        .rsplit_once("{0,")
        .and_then(|(_, rest)| rest.split_once('}'))
        .and_then(|(n, _)| n.parse::<usize>().ok())
        .unwrap_or_else(|| panic!("{pattern}: no {{0,N}} repetition"));
    more + 1
}

/// The index of the zone an ARN of the template names, when it is
/// `arn:${AWS::Partition}:route53:::hostedzone/${Id}` with Id the Nth ID of HostedZoneIds
/// (written out `copies` times, so that every index exists).
fn hosted_zone_index(resource: &Value, copies: usize) -> Option<u64> {
    let sub = resource.get("Fn::Sub")?.as_array()?;
    if sub.first()?.as_str()? != "arn:${AWS::Partition}:route53:::hostedzone/${Id}" {
        return None;
    }
    let select = sub.get(1)?.get("Id")?.get("Fn::Select")?.as_array()?;
    let split = select.get(1)?.get("Fn::Split")?.as_array()?;
    let ids = split.get(1)?.get("Fn::Sub")?.as_str()?;
    let every_copy = vec!["${HostedZoneIds}"; copies].join(",");
    (split.first()?.as_str()? == "," && ids == every_copy)
        .then(|| select.first()?.as_u64())
        .flatten()
}

#[test]
fn route53_reaches_only_the_hosted_zones_the_deployment_names() {
    let template = load_template();
    assert_eq!(template["Parameters"]["HostedZoneIds"]["Default"], "");
    let zones = most_hosted_zones(&template);
    let mut checked = Vec::new();
    for (function_id, _) in template_functions(&template) {
        let function = &resources(&template)[&function_id];
        let role_id = target_of(&function["Properties"]["Role"]).expect("a role");
        let grants: Vec<Grant> = role_grants(&template, role_id)
            .into_iter()
            .filter(|g| g.action.starts_with("route53:"))
            .collect();
        if grants.is_empty() {
            continue;
        }
        checked.push(function_id.clone());
        // The functions refuse, before any call, a zone that IAM would refuse.
        assert_eq!(
            function["Properties"]["Environment"]["Variables"]["DRPLAN_HOSTED_ZONE_IDS"],
            serde_json::json!({"Ref": "HostedZoneIds"}),
            "{function_id}: calls Route 53 but is not told HostedZoneIds"
        );
        for grant in grants {
            let what = format!("{role_id}: {}", grant.action);
            assert_eq!(
                grant.condition.as_deref(),
                Some("HasHostedZones"),
                "{what}: granted even when HostedZoneIds names no zone"
            );
            match grant.action.as_str() {
                // Takes no resource: IAM wants "*".
                "route53:ListHostedZonesByName" => {
                    assert_eq!(grant.resources, [serde_json::json!("*")], "{what}");
                }
                "route53:GetChange" => assert_eq!(
                    grant.resources,
                    [serde_json::json!({"Fn::Sub": "arn:${AWS::Partition}:route53:::change/*"})],
                    "{what}"
                ),
                _ => {
                    let indexes: BTreeSet<u64> = grant
                        .resources
                        .iter()
                        .map(|r| {
                            hosted_zone_index(r, zones).unwrap_or_else(|| {
                                panic!("{what}: {r} is not a zone of HostedZoneIds")
                            })
                        })
                        .collect();
                    assert_eq!(
                        indexes,
                        (0..zones as u64).collect::<BTreeSet<_>>(),
                        "{what}: every zone HostedZoneIds may list, once"
                    );
                }
            }
        }
    }
    assert_eq!(
        checked,
        [
            "DiscoverFunction",
            "DnsCutoverFunction",
            "ReadinessFunction"
        ]
    );
}
