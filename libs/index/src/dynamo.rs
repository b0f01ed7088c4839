//! [`RowStore`] on DynamoDB (or any server speaking its API, such as dynalite).
//!
//! Table layout: `h` (S) hash key, `r` (B) range key, `v` (B) value, left out when empty.
//! Tables are created with on-demand capacity (PAY_PER_REQUEST).
//!
//! Limits respected: at most 25 puts per `BatchWriteItem`; items over 400 KB, hash keys over
//! 2048 bytes and range keys over 1024 bytes (or empty keys) are refused before anything is
//! sent; `Query` results are read page by page (DynamoDB pages at 1 MB). Unprocessed items
//! and throttling errors are retried with exponential backoff and jitter up to a bound, then
//! reported as errors.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, PutRequest,
    ScalarAttributeType, TableStatus, WriteRequest,
};
use aws_sdk_dynamodb::Client;
use futures::stream::{self, StreamExt, TryStreamExt};
use rand::Rng;

use crate::error::IndexError;
use crate::rows::{dedup_last_wins, IndexItem, RowStore, WriteStats};

const ATTR_HASH: &str = "h";
const ATTR_RANGE: &str = "r";
const ATTR_VALUE: &str = "v";

/// DynamoDB's item size limit (attribute names and values), 400 KB.
pub const DYNAMODB_MAX_ITEM_BYTES: usize = 400 * 1024;
/// DynamoDB's partition key length limit.
pub const DYNAMODB_MAX_HASH_KEY_BYTES: usize = 2048;
/// DynamoDB's sort key length limit.
pub const DYNAMODB_MAX_RANGE_KEY_BYTES: usize = 1024;
/// Puts per `BatchWriteItem` call, DynamoDB's limit.
pub const BATCH_WRITE_MAX_ITEMS: usize = 25;

/// `BatchWriteItem` calls of one write in flight at once.
const WRITE_CONCURRENCY: usize = 4;
/// How long [`RowStore::ensure_table`] waits for a new table to become ACTIVE.
const TABLE_READY_TIMEOUT: Duration = Duration::from_secs(120);

/// How unprocessed items and throttled calls are retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per batch or query page in all, the first one included.
    pub max_attempts: u32,
    /// Delay before the first retry; doubled for every further one.
    pub base_delay: Duration,
    /// Largest delay between attempts.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 10,
            base_delay: Duration::from_millis(50),
            max_delay: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// Delay before retry number `retry` (1 for the first): `base * 2^(retry-1)` capped at
    /// `max_delay`, then a random point in its upper half ("equal jitter"), so writers that
    /// were throttled together do not come back together.
    pub fn delay(&self, retry: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1u32 << retry.saturating_sub(1).min(20))
            .min(self.max_delay);
        let half = exp / 2;
        let jitter_ms = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
        half + Duration::from_millis(rand::rng().random_range(0..=jitter_ms))
    }
}

/// Index rows in DynamoDB tables.
#[derive(Clone, Debug)]
pub struct DynamoRowStore {
    client: Client,
    retry: RetryPolicy,
    consistent_reads: bool,
    pages_read: Arc<AtomicU64>,
}

impl DynamoRowStore {
    /// A store using a client built from `aws` (see [`strata_aws::AwsConfig::load`] for
    /// credentials). Touches no table; [`RowStore::ensure_table`] creates them.
    pub async fn connect(aws: &strata_aws::AwsConfig) -> Self {
        Self::from_client(strata_aws::dynamodb_client(aws).await)
    }

    /// Uses an existing client.
    pub fn from_client(client: Client) -> Self {
        Self {
            client,
            retry: RetryPolicy::default(),
            consistent_reads: true,
            pages_read: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Replaces the retry policy.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Strongly consistent queries (the default) see every write that returned before them;
    /// eventually consistent ones cost half the read units but may miss writes of the last
    /// second or so.
    pub fn with_consistent_reads(mut self, consistent: bool) -> Self {
        self.consistent_reads = consistent;
        self
    }

    /// `Query` pages read so far (all queries together).
    pub fn pages_read(&self) -> u64 {
        self.pages_read.load(Ordering::Relaxed)
    }

    fn sdk_error<E, R>(operation: &'static str, table: &str, err: &SdkError<E, R>) -> IndexError
    where
        E: std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        IndexError::DynamoDb {
            operation,
            table: table.to_string(),
            message: DisplayErrorContext(err).to_string(),
        }
    }

    async fn wait_until_active(&self, table: &str) -> Result<(), IndexError> {
        let started = tokio::time::Instant::now();
        loop {
            let output = self
                .client
                .describe_table()
                .table_name(table)
                .send()
                .await
                .map_err(|err| Self::sdk_error("DescribeTable", table, &err))?;
            if output.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
                return Ok(());
            }
            if started.elapsed() > TABLE_READY_TIMEOUT {
                return Err(IndexError::DynamoDb {
                    operation: "DescribeTable",
                    table: table.to_string(),
                    message: format!(
                        "table not ACTIVE after {}s; check it in the AWS console",
                        TABLE_READY_TIMEOUT.as_secs()
                    ),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// One batch of at most 25 puts, retrying unprocessed items and throttling.
    async fn write_batch(&self, table: &str, batch: Vec<WriteRequest>) -> Result<(), IndexError> {
        let mut pending = batch;
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let result = self
                .client
                .batch_write_item()
                .request_items(table, pending.clone())
                .send()
                .await;
            let problem = match result {
                Ok(output) => {
                    let unprocessed = output
                        .unprocessed_items
                        .and_then(|mut by_table| by_table.remove(table))
                        .unwrap_or_default();
                    if unprocessed.is_empty() {
                        return Ok(());
                    }
                    let problem = format!(
                        "{} of {} items still unprocessed after {attempts} attempts; the \
                         table is throttled: raise its capacity or slow down writes",
                        unprocessed.len(),
                        pending.len()
                    );
                    pending = unprocessed;
                    problem
                }
                Err(err) => {
                    let retryable = matches!(
                        &err,
                        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_)
                    ) || err.as_service_error().is_some_and(|e| {
                        e.is_provisioned_throughput_exceeded_exception()
                            || e.is_request_limit_exceeded()
                            || e.is_throttling_exception()
                            || e.is_internal_server_error()
                    });
                    if !retryable {
                        if err
                            .as_service_error()
                            .is_some_and(|e| e.is_resource_not_found_exception())
                        {
                            return Err(IndexError::TableMissing {
                                table: table.to_string(),
                            });
                        }
                        return Err(Self::sdk_error("BatchWriteItem", table, &err));
                    }
                    format!(
                        "failed {attempts} times, last: {}",
                        DisplayErrorContext(&err)
                    )
                }
            };
            if attempts >= self.retry.max_attempts {
                return Err(IndexError::DynamoDb {
                    operation: "BatchWriteItem",
                    table: table.to_string(),
                    message: problem,
                });
            }
            tracing::debug!(table, attempts, %problem, "retrying index batch write");
            tokio::time::sleep(self.retry.delay(attempts)).await;
        }
    }

    fn check_item(table: &str, item: &IndexItem) -> Result<(), IndexError> {
        let bad_key = |message: String| IndexError::BadKey {
            table: table.to_string(),
            message,
        };
        if item.hash.is_empty() || item.hash.len() > DYNAMODB_MAX_HASH_KEY_BYTES {
            return Err(bad_key(format!(
                "hash key {:.64?} is {} bytes, DynamoDB takes 1 to {DYNAMODB_MAX_HASH_KEY_BYTES}",
                item.hash,
                item.hash.len()
            )));
        }
        if item.range.is_empty() || item.range.len() > DYNAMODB_MAX_RANGE_KEY_BYTES {
            return Err(bad_key(format!(
                "range key under hash key {:.64?} is {} bytes, DynamoDB takes 1 to \
                 {DYNAMODB_MAX_RANGE_KEY_BYTES}",
                item.hash,
                item.range.len()
            )));
        }
        if item.size() > DYNAMODB_MAX_ITEM_BYTES {
            return Err(IndexError::ItemTooLarge {
                table: table.to_string(),
                hash: item.hash.clone(),
                size: item.size(),
                limit: DYNAMODB_MAX_ITEM_BYTES,
            });
        }
        Ok(())
    }

    fn parse_item(
        table: &str,
        hash: &str,
        item: &HashMap<String, AttributeValue>,
    ) -> Result<IndexItem, IndexError> {
        let corrupt = |message: &str| IndexError::corrupt(table, hash, message);
        let stored_hash = match item.get(ATTR_HASH) {
            Some(AttributeValue::S(h)) => h.clone(),
            _ => return Err(corrupt("attribute h is missing or not a string")),
        };
        let range = match item.get(ATTR_RANGE) {
            Some(AttributeValue::B(r)) => r.as_ref().to_vec(),
            _ => return Err(corrupt("attribute r is missing or not binary")),
        };
        let value = match item.get(ATTR_VALUE) {
            Some(AttributeValue::B(v)) => v.as_ref().to_vec(),
            None => Vec::new(),
            Some(_) => return Err(corrupt("attribute v is not binary")),
        };
        Ok(IndexItem {
            hash: stored_hash,
            range,
            value,
        })
    }

    async fn query_page(
        &self,
        table: &str,
        hash: &str,
        range_prefix: &[u8],
        start_key: Option<HashMap<String, AttributeValue>>,
    ) -> Result<aws_sdk_dynamodb::operation::query::QueryOutput, IndexError> {
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let mut request = self
                .client
                .query()
                .table_name(table)
                .consistent_read(self.consistent_reads)
                .expression_attribute_names("#h", ATTR_HASH)
                .expression_attribute_values(":h", AttributeValue::S(hash.to_string()))
                .set_exclusive_start_key(start_key.clone());
            request = if range_prefix.is_empty() {
                request.key_condition_expression("#h = :h")
            } else {
                request
                    .key_condition_expression("#h = :h AND begins_with(#r, :p)")
                    .expression_attribute_names("#r", ATTR_RANGE)
                    .expression_attribute_values(
                        ":p",
                        AttributeValue::B(Blob::new(range_prefix.to_vec())),
                    )
            };
            match request.send().await {
                Ok(output) => return Ok(output),
                Err(err) => {
                    let service = err.as_service_error();
                    if service.is_some_and(|e| e.is_resource_not_found_exception()) {
                        return Err(IndexError::TableMissing {
                            table: table.to_string(),
                        });
                    }
                    let retryable = matches!(
                        &err,
                        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_)
                    ) || service.is_some_and(|e| {
                        e.is_provisioned_throughput_exceeded_exception()
                            || e.is_request_limit_exceeded()
                            || e.is_throttling_exception()
                            || e.is_internal_server_error()
                            || e.code() == Some("ThrottlingException")
                    });
                    if !retryable || attempts >= self.retry.max_attempts {
                        return Err(Self::sdk_error("Query", table, &err));
                    }
                    tokio::time::sleep(self.retry.delay(attempts)).await;
                }
            }
        }
    }
}

#[async_trait]
impl RowStore for DynamoRowStore {
    async fn ensure_table(&self, table: &str) -> Result<(), IndexError> {
        match self.client.describe_table().table_name(table).send().await {
            Ok(_) => return self.wait_until_active(table).await,
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) => {}
            Err(err) => return Err(Self::sdk_error("DescribeTable", table, &err)),
        }
        let build_error = |err: aws_sdk_dynamodb::error::BuildError| IndexError::DynamoDb {
            operation: "CreateTable",
            table: table.to_string(),
            message: err.to_string(),
        };
        let created = self
            .client
            .create_table()
            .table_name(table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(ATTR_HASH)
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .map_err(build_error)?,
            )
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(ATTR_RANGE)
                    .attribute_type(ScalarAttributeType::B)
                    .build()
                    .map_err(build_error)?,
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name(ATTR_HASH)
                    .key_type(KeyType::Hash)
                    .build()
                    .map_err(build_error)?,
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name(ATTR_RANGE)
                    .key_type(KeyType::Range)
                    .build()
                    .map_err(build_error)?,
            )
            .send()
            .await;
        match created {
            Ok(_) => tracing::info!(table, "created index table"),
            // Someone else created it first.
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_in_use_exception()) => {}
            Err(err) => return Err(Self::sdk_error("CreateTable", table, &err)),
        }
        self.wait_until_active(table).await
    }

    async fn write(&self, table: &str, items: Vec<IndexItem>) -> Result<WriteStats, IndexError> {
        for item in &items {
            Self::check_item(table, item)?;
        }
        // One BatchWriteItem must not name the same key twice.
        let items = dedup_last_wins(items);
        let stats = WriteStats::of(&items);
        let mut requests = Vec::with_capacity(items.len());
        for item in items {
            let mut attributes = HashMap::from([
                (ATTR_HASH.to_string(), AttributeValue::S(item.hash)),
                (
                    ATTR_RANGE.to_string(),
                    AttributeValue::B(Blob::new(item.range)),
                ),
            ]);
            if !item.value.is_empty() {
                attributes.insert(
                    ATTR_VALUE.to_string(),
                    AttributeValue::B(Blob::new(item.value)),
                );
            }
            let put = PutRequest::builder()
                .set_item(Some(attributes))
                .build()
                .map_err(|err| IndexError::DynamoDb {
                    operation: "BatchWriteItem",
                    table: table.to_string(),
                    message: err.to_string(),
                })?;
            requests.push(WriteRequest::builder().put_request(put).build());
        }
        let mut batches = Vec::with_capacity(requests.len().div_ceil(BATCH_WRITE_MAX_ITEMS));
        let mut requests = requests.into_iter().peekable();
        while requests.peek().is_some() {
            batches.push(requests.by_ref().take(BATCH_WRITE_MAX_ITEMS).collect());
        }
        stream::iter(batches)
            .map(|batch| self.write_batch(table, batch))
            .buffer_unordered(WRITE_CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(stats)
    }

    async fn query(
        &self,
        table: &str,
        hash: &str,
        range_prefix: &[u8],
    ) -> Result<Vec<IndexItem>, IndexError> {
        let mut items = Vec::new();
        let mut start_key = None;
        loop {
            let output = self
                .query_page(table, hash, range_prefix, start_key)
                .await?;
            self.pages_read.fetch_add(1, Ordering::Relaxed);
            for item in output.items() {
                items.push(Self::parse_item(table, hash, item)?);
            }
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() => start_key = Some(key),
                _ => break,
            }
        }
        Ok(items)
    }

    fn kind(&self) -> &'static str {
        "dynamodb"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let policy = RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        };
        for _ in 0..50 {
            let first = policy.delay(1);
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
            let third = policy.delay(3);
            assert!(third >= Duration::from_millis(200) && third <= Duration::from_millis(400));
            let capped = policy.delay(30);
            assert!(capped >= Duration::from_millis(500) && capped <= Duration::from_secs(1));
        }
    }

    #[test]
    fn refuses_items_dynamodb_would_refuse() {
        let ok = IndexItem {
            hash: "h".into(),
            range: vec![1],
            value: vec![0; DYNAMODB_MAX_ITEM_BYTES - 5],
        };
        assert_eq!(ok.size(), DYNAMODB_MAX_ITEM_BYTES);
        DynamoRowStore::check_item("t", &ok).unwrap();
        let mut big = ok.clone();
        big.value.push(0);
        let err = DynamoRowStore::check_item("t", &big).unwrap_err();
        assert!(matches!(err, IndexError::ItemTooLarge { .. }), "{err}");
        let mut long_range = ok.clone();
        long_range.value.clear();
        long_range.range = vec![7; 1025];
        assert!(DynamoRowStore::check_item("t", &long_range).is_err());
        let mut empty_range = long_range.clone();
        empty_range.range.clear();
        assert!(DynamoRowStore::check_item("t", &empty_range).is_err());
        let mut long_hash = empty_range;
        long_hash.range = vec![1];
        long_hash.hash = "x".repeat(2049);
        assert!(DynamoRowStore::check_item("t", &long_hash).is_err());
    }
}
