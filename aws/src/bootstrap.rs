//! What every function does once, at cold start.

use aws_config::{BehaviorVersion, SdkConfig};

use crate::FunctionError;

/// JSON logs in Lambda's format when `AWS_LAMBDA_LOG_FORMAT=JSON` (the runtime's
/// convention), level from `AWS_LAMBDA_LOG_LEVEL` / `RUST_LOG`.
pub fn init_logging() {
    lambda_runtime::tracing::init_default_subscriber();
}

/// The shared SDK configuration. Honours `AWS_ENDPOINT_URL`, so the same binary talks
/// to AWS or to the local cloud. Built once in `main`: the first call pays the TLS
/// handshake, later invocations reuse the connection.
pub async fn aws_config() -> SdkConfig {
    aws_config::load_defaults(BehaviorVersion::latest()).await
}

/// The bucket that holds plans, run state and reports (`DRPLAN_BUCKET`).
pub fn bucket_from_env() -> Result<String, FunctionError> {
    required_env("DRPLAN_BUCKET")
}

/// A setting the template gives the function: an error naming it when it is unset or blank.
pub fn required_env(name: &str) -> Result<String, FunctionError> {
    std::env::var(name)
        .ok()
        .filter(|value| !value.trim().is_empty())
        .ok_or_else(|| FunctionError::Misconfigured(format!("{name} is not set")))
}

/// The AWS clients and the run store, built once per sandbox in `main` and shared by
/// every invocation. Building a client makes no call, so one set serves every function;
/// the first request of each pays its connection.
#[derive(Clone)]
pub struct Clients {
    pub drs: aws_sdk_drs::Client,
    pub ec2: aws_sdk_ec2::Client,
    pub route53: aws_sdk_route53::Client,
    pub elb: aws_sdk_elasticloadbalancingv2::Client,
    /// The recovery Region's CloudWatch: the data-plane cutover's failover alarm.
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub sns: aws_sdk_sns::Client,
    pub sfn: aws_sdk_sfn::Client,
    /// Readiness: hook functions exist.
    pub lambda: aws_sdk_lambda::Client,
    /// Readiness: DRS's service roles exist.
    pub iam: aws_sdk_iam::Client,
    pub store: crate::store::RunStore,
    /// The account's DRS quotas: the stack's `DrsQuotas` in a function (see
    /// [`account_quotas_from_env`]), the documented defaults elsewhere. A run's own
    /// `quotas` input goes before them.
    pub quotas: drplan_core::Quotas,
}

/// The environment variable the template sets from its `DrsQuotas` parameter.
pub const DRS_QUOTAS_ENV: &str = "DRPLAN_DRS_QUOTAS";

/// The account's DRS quotas from [`DRS_QUOTAS_ENV`] (unset or blank: the documented
/// defaults); a bad value is an error naming the setting, at cold start.
pub fn account_quotas_from_env() -> Result<drplan_core::Quotas, FunctionError> {
    let setting = std::env::var(DRS_QUOTAS_ENV).unwrap_or_default();
    drplan_core::Quotas::from_setting(&setting).map_err(|problem| {
        FunctionError::Misconfigured(format!(
            "{DRS_QUOTAS_ENV} (template parameter DrsQuotas) is not the account's DRS quotas: {problem}"
        ))
    })
}

/// What every function does at cold start: JSON logs, the SDK configuration, the
/// clients, and the bucket from `DRPLAN_BUCKET`.
pub async fn start() -> Result<Clients, FunctionError> {
    Ok(start_with_config().await?.0)
}

/// [`start`], and the SDK configuration, for a function with clients of its own.
pub async fn start_with_config() -> Result<(Clients, SdkConfig), FunctionError> {
    init_logging();
    let config = aws_config().await;
    let mut clients = Clients::new(&config, bucket_from_env()?);
    clients.quotas = account_quotas_from_env()?;
    Ok((clients, config))
}

/// IAM's control plane is in us-east-1 whatever Region drplan runs in, and readiness only
/// asks it whether DRS's roles exist (an unanswered question is a warning, never a
/// refusal). So its calls give up early: during a us-east-1 outage, a recovery elsewhere
/// must not wait out the SDK's default connect timeouts and retries before it goes ahead.
pub const IAM_CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);
/// Every attempt and retry of one IAM call together. The role checks run beside the
/// plan's launch and network reads, so this bound adds nothing to discover unless those
/// end sooner; it leaves room for a slow but working IAM.
pub const IAM_OPERATION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

fn iam_timeouts() -> aws_config::timeout::TimeoutConfig {
    aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(IAM_CONNECT_TIMEOUT)
        .operation_timeout(IAM_OPERATION_TIMEOUT)
        .build()
}

impl Clients {
    /// The clients a wave step of `run` uses: these, except that DRS and EC2 calls go to
    /// the run's origin Region in a failback of EC2 sources (a recovery there). The
    /// clients there share this configuration (and its HTTP connection pool): building
    /// them makes no call.
    pub fn for_run(&self, run: &drplan_core::contract::RunContext) -> std::borrow::Cow<'_, Self> {
        let Some(region) = &run.origin_region else {
            return std::borrow::Cow::Borrowed(self);
        };
        let mut there = self.clone();
        there.drs = drs_in(&self.drs, region);
        there.ec2 = aws_sdk_ec2::Client::from_conf(
            self.ec2
                .config()
                .to_builder()
                .region(aws_sdk_ec2::config::Region::new(region.clone()))
                .build(),
        );
        std::borrow::Cow::Owned(there)
    }

    /// Every client from one SDK configuration, the store on `bucket` (the CLI names its
    /// bucket itself).
    pub fn new(config: &SdkConfig, bucket: String) -> Self {
        Self {
            drs: aws_sdk_drs::Client::new(config),
            ec2: aws_sdk_ec2::Client::new(config),
            route53: aws_sdk_route53::Client::new(config),
            elb: aws_sdk_elasticloadbalancingv2::Client::new(config),
            cloudwatch: aws_sdk_cloudwatch::Client::new(config),
            sns: aws_sdk_sns::Client::new(config),
            sfn: aws_sdk_sfn::Client::new(config),
            lambda: aws_sdk_lambda::Client::new(config),
            iam: aws_sdk_iam::Client::from_conf(
                aws_sdk_iam::config::Builder::from(config)
                    .timeout_config(iam_timeouts())
                    .build(),
            ),
            store: crate::store::RunStore::new(aws_sdk_s3::Client::new(config), bucket),
            quotas: drplan_core::Quotas::default(),
        }
    }
}

/// `drs` in another Region (same credentials, endpoint and connection pool).
pub fn drs_in(drs: &aws_sdk_drs::Client, region: &str) -> aws_sdk_drs::Client {
    aws_sdk_drs::Client::from_conf(
        drs.config()
            .to_builder()
            .region(aws_sdk_drs::config::Region::new(region.to_owned()))
            .build(),
    )
}
