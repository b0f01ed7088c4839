//! [`ObjectStore`] on S3 (or a server speaking its API).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_credential_types::Credentials;
use aws_sdk_s3::config::{RequestChecksumCalculation, ResponseChecksumValidation};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
use aws_sdk_s3::Client;
use bytes::Bytes;
use strata_aws::AwsConfig;

use crate::error::StoreError;
use crate::store::{validate_key, ObjectStore};

/// Where the S3 bucket is and how to reach it.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Config {
    /// Bucket holding the objects.
    pub bucket: String,
    /// Endpoint override such as `http://127.0.0.1:9000`; empty for AWS itself.
    pub endpoint: String,
    /// Region. Default `us-east-1`.
    pub region: String,
    /// Address the bucket in the path (`endpoint/bucket/key`) rather than the host name;
    /// most S3-compatible servers need this. Default false.
    pub force_path_style: bool,
    /// Create the bucket at [`S3ObjectStore::connect`] when it does not exist. Default false.
    pub create_bucket: bool,
    /// Time limit for one attempt of a request. Default 5 seconds.
    pub attempt_timeout: Duration,
    /// Time limit for a request including retries. Default 30 seconds.
    pub operation_timeout: Duration,
    /// Access key; `None` (or empty) uses the SDK's default credential chain.
    pub access_key_id: Option<String>,
    /// Secret key going with `access_key_id`.
    pub secret_access_key: Option<String>,
}

impl Default for S3Config {
    fn default() -> Self {
        Self {
            bucket: String::new(),
            endpoint: String::new(),
            region: "us-east-1".to_string(),
            force_path_style: false,
            create_bucket: false,
            attempt_timeout: Duration::from_secs(5),
            operation_timeout: Duration::from_secs(30),
            access_key_id: None,
            secret_access_key: None,
        }
    }
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("force_path_style", &self.force_path_style)
            .field("create_bucket", &self.create_bucket)
            .field("attempt_timeout", &self.attempt_timeout)
            .field("operation_timeout", &self.operation_timeout)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Objects in one S3 bucket.
#[derive(Debug, Clone)]
pub struct S3ObjectStore {
    client: Client,
    bucket: String,
    /// Set once the server failed a suffix range (`bytes=-N`) that a size-first read then
    /// answered.
    suffix_ranges_broken: Arc<AtomicBool>,
}

impl S3ObjectStore {
    /// Builds the client (credentials as [`AwsConfig::load`] finds them, unless the config
    /// names a key) and, with `create_bucket`, creates the bucket when it is missing.
    pub async fn connect(config: &S3Config) -> Result<Self, StoreError> {
        if config.bucket.is_empty() {
            return Err(StoreError::InvalidConfig(
                "the S3 bucket name is empty; set the bucket".to_string(),
            ));
        }
        let credentials = match (
            config.access_key_id.as_deref().filter(|k| !k.is_empty()),
            config.secret_access_key.as_deref(),
        ) {
            (Some(access), Some(secret)) => Some(Credentials::new(
                access,
                secret,
                None,
                None,
                "strata-s3-config",
            )),
            (Some(_), None) => {
                return Err(StoreError::InvalidConfig(
                    "an S3 access key id is set without its secret access key; set both or \
                     neither"
                        .to_string(),
                ))
            }
            (None, _) => None,
        };
        let endpoint = (!config.endpoint.is_empty()).then(|| config.endpoint.clone());
        let aws = AwsConfig {
            region: config.region.clone(),
            endpoint_url: endpoint.clone(),
            attempt_timeout: config.attempt_timeout,
            operation_timeout: config.operation_timeout,
        };
        let shared = aws.load().await;
        let mut builder = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(config.force_path_style)
            // The object format checksums every chunk and its index itself; S3-compatible
            // servers differ in which of the newer request checksums they accept.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        if let Some(endpoint) = endpoint {
            builder = builder.endpoint_url(endpoint);
        }
        if let Some(credentials) = credentials {
            builder = builder.credentials_provider(credentials);
        }
        let store = Self {
            client: Client::from_conf(builder.build()),
            bucket: config.bucket.clone(),
            suffix_ranges_broken: Arc::new(AtomicBool::new(false)),
        };
        if config.create_bucket {
            store.ensure_bucket(&config.region).await?;
        }
        Ok(store)
    }

    /// The bucket this store uses.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    async fn ensure_bucket(&self, region: &str) -> Result<(), StoreError> {
        match self.client.head_bucket().bucket(&self.bucket).send().await {
            Ok(_) => return Ok(()),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_not_found()) => {}
            Err(e) => return Err(self.error("head bucket", "", e)),
        }
        let mut create = self.client.create_bucket().bucket(&self.bucket);
        if region != "us-east-1" {
            create = create.create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(region))
                    .build(),
            );
        }
        match create.send().await {
            Ok(_) => {
                tracing::info!(bucket = %self.bucket, "created S3 bucket");
                Ok(())
            }
            Err(e)
                if e.as_service_error().is_some_and(|e| {
                    e.is_bucket_already_owned_by_you() || e.is_bucket_already_exists()
                }) =>
            {
                Ok(())
            }
            Err(e) => Err(self.error("create bucket", "", e)),
        }
    }

    fn error<E, R>(&self, operation: &'static str, key: &str, e: SdkError<E, R>) -> StoreError
    where
        E: std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug,
    {
        StoreError::S3 {
            operation,
            bucket: self.bucket.clone(),
            key: key.to_string(),
            message: DisplayErrorContext(&e).to_string(),
        }
    }

    /// Size of the object.
    async fn size(&self, key: &str) -> Result<u64, StoreError> {
        validate_key(key)?;
        let head = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| {
                if e.as_service_error().is_some_and(|e| e.is_not_found()) {
                    StoreError::NotFound {
                        key: key.to_string(),
                    }
                } else {
                    self.error("head object", key, e)
                }
            })?;
        Ok(head
            .content_length()
            .and_then(|n| u64::try_from(n).ok())
            .unwrap_or(0))
    }

    /// The last `len` bytes, reading the size first; also returns the size.
    async fn get_tail_by_size(&self, key: &str, len: u64) -> Result<(Bytes, u64), StoreError> {
        let size = self.size(key).await?;
        let start = size.saturating_sub(len);
        Ok((self.get_range(key, start, size - start).await?, size))
    }

    async fn get_object(
        &self,
        key: &str,
        range: Option<String>,
        operation: &'static str,
    ) -> Result<Bytes, StoreError> {
        validate_key(key)?;
        let response = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .set_range(range)
            .send()
            .await;
        let output = match response {
            Ok(output) => output,
            Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_key()) => {
                return Err(StoreError::NotFound {
                    key: key.to_string(),
                })
            }
            // A range that starts past the end of the object.
            Err(e)
                if e.raw_response().is_some_and(|r| r.status().as_u16() == 416)
                    || e.as_service_error()
                        .is_some_and(|e| e.code() == Some("InvalidRange")) =>
            {
                return Ok(Bytes::new())
            }
            Err(e) => return Err(self.error(operation, key, e)),
        };
        output
            .body
            .collect()
            .await
            .map(|data| data.into_bytes())
            .map_err(|e| StoreError::S3 {
                operation,
                bucket: self.bucket.clone(),
                key: key.to_string(),
                message: DisplayErrorContext(&e).to_string(),
            })
    }
}

#[async_trait::async_trait]
impl ObjectStore for S3ObjectStore {
    async fn put(&self, key: &str, body: Bytes) -> Result<(), StoreError> {
        validate_key(key)?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_length(body.len() as i64)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| self.error("put object", key, e))?;
        Ok(())
    }

    async fn get_range(&self, key: &str, offset: u64, len: u64) -> Result<Bytes, StoreError> {
        if len == 0 {
            // An empty range cannot be expressed; still answer NotFound for a missing key.
            self.size(key).await?;
            return Ok(Bytes::new());
        }
        let last = offset.saturating_add(len - 1);
        let mut body = self
            .get_object(
                key,
                Some(format!("bytes={offset}-{last}")),
                "get object range",
            )
            .await?;
        // A server that ignores the range sends the whole object.
        if body.len() as u64 > len {
            let start = usize::try_from(offset)
                .unwrap_or(usize::MAX)
                .min(body.len());
            let end = start.saturating_add(usize::try_from(len).unwrap_or(usize::MAX));
            body = body.slice(start..end.min(body.len()));
        }
        Ok(body)
    }

    async fn get_tail(&self, key: &str, len: u64) -> Result<Bytes, StoreError> {
        if len == 0 {
            return self.get_range(key, 0, 0).await;
        }
        if !self.suffix_ranges_broken.load(Ordering::Relaxed) {
            match self
                .get_object(key, Some(format!("bytes=-{len}")), "get object tail")
                .await
            {
                Ok(mut body) => {
                    if body.len() as u64 > len {
                        let start = body.len() - usize::try_from(len).unwrap_or(body.len());
                        body = body.slice(start..);
                    }
                    return Ok(body);
                }
                Err(e @ (StoreError::NotFound { .. } | StoreError::InvalidKey { .. })) => {
                    return Err(e)
                }
                Err(e) => {
                    // Some S3-compatible servers (s3s-fs) fail a suffix range longer than the
                    // object instead of sending the whole object. Ask for the size and read
                    // an ordinary range, and keep doing so if that works.
                    let (tail, size) = self.get_tail_by_size(key, len).await.map_err(|_| e)?;
                    if len > size && !self.suffix_ranges_broken.swap(true, Ordering::Relaxed) {
                        tracing::warn!(
                            bucket = %self.bucket,
                            "the S3 server failed a suffix range read; reading object sizes \
                             first from now on"
                        );
                    }
                    return Ok(tail);
                }
            }
        }
        Ok(self.get_tail_by_size(key, len).await?.0)
    }

    async fn get(&self, key: &str) -> Result<Bytes, StoreError> {
        self.get_object(key, None, "get object").await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        let mut keys = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.error("list objects", prefix, e))?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_string)),
            );
        }
        keys.sort();
        Ok(keys)
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        validate_key(key)?;
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| self.error("delete object", key, e))?;
        Ok(())
    }

    fn kind(&self) -> &'static str {
        "s3"
    }
}
