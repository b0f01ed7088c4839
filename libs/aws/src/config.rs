//! Building AWS SDK clients.

use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_credential_types::Credentials;
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};

/// Where and how to reach AWS (or an AWS-compatible server).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsConfig {
    /// AWS region. Default `us-east-1`.
    pub region: String,
    /// Endpoint override, for example `http://127.0.0.1:4567` for a local dynalite. `None`
    /// uses the real AWS endpoint of the region.
    pub endpoint_url: Option<String>,
    /// Time limit for one attempt of an API call. Default 5 seconds.
    pub attempt_timeout: Duration,
    /// Time limit for an API call including retries. Default 20 seconds.
    pub operation_timeout: Duration,
}

impl Default for AwsConfig {
    fn default() -> Self {
        Self {
            region: "us-east-1".to_string(),
            endpoint_url: None,
            attempt_timeout: Duration::from_secs(5),
            operation_timeout: Duration::from_secs(20),
        }
    }
}

/// Access key used against an overridden endpoint when the environment has none. Local
/// servers such as dynalite accept any credentials but the SDK insists on signing.
const LOCAL_ACCESS_KEY: &str = "strata-local";
const LOCAL_SECRET_KEY: &str = "strata-local-secret";

impl AwsConfig {
    /// Loads the shared SDK configuration.
    ///
    /// Credentials come from the SDK's default chain (environment, profile files, web
    /// identity, container and instance metadata). When an endpoint override is set and the
    /// environment holds no `AWS_ACCESS_KEY_ID`, fixed local credentials are used instead,
    /// so a local server works without any AWS setup and without waiting for the metadata
    /// service to time out.
    pub async fn load(&self) -> aws_config::SdkConfig {
        let timeouts = TimeoutConfig::builder()
            .operation_attempt_timeout(self.attempt_timeout)
            .operation_timeout(self.operation_timeout)
            .build();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(self.region.clone()))
            .timeout_config(timeouts)
            // hyper with rustls on the `ring` crypto provider (see Cargo.toml).
            .http_client(
                aws_smithy_http_client::Builder::new()
                    .tls_provider(Provider::Rustls(CryptoMode::Ring))
                    .build_https(),
            );
        if let Some(endpoint) = &self.endpoint_url {
            loader = loader.endpoint_url(endpoint.clone());
            if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
                loader = loader.credentials_provider(Credentials::new(
                    LOCAL_ACCESS_KEY,
                    LOCAL_SECRET_KEY,
                    None,
                    None,
                    "strata-local-endpoint",
                ));
            }
        }
        loader.load().await
    }
}

/// A DynamoDB client for `config`.
pub async fn dynamodb_client(config: &AwsConfig) -> aws_sdk_dynamodb::Client {
    let shared = config.load().await;
    let mut builder = aws_sdk_dynamodb::config::Builder::from(&shared);
    if let Some(endpoint) = &config.endpoint_url {
        builder = builder.endpoint_url(endpoint.clone());
    }
    aws_sdk_dynamodb::Client::from_conf(builder.build())
}
