//! The ring's [`RingStore`] on DynamoDB (or any server speaking its API,
//! such as dynalite), beside the ring it stores.
//!
//! # Table layout
//!
//! Two items per ring member: a small *heartbeat* item, rewritten every heartbeat and read
//! by every refresh, and a *tokens* item in a partition of its own, written when the
//! member's tokens change and read only by a reader that has not seen them yet. A ring of
//! 100 members with 128 tokens each is read once a second by every distributor and
//! querier; with the tokens beside the heartbeats each read would fetch ~200 KB, with
//! them apart it fetches ~20 KB (a tenth of the read capacity).
//!
//! Heartbeat items, partition `<ring>`:
//!
//! | attribute     | type | meaning                                               |
//! |---------------|------|-------------------------------------------------------|
//! | `ring`        | S    | partition key: the ring name (`ingester`, ...)        |
//! | `instance`    | S    | sort key: the member id                               |
//! | `desc`        | S    | JSON of [`InstanceDesc`] with an empty `tokens` list   |
//! | `tokens_hash` | N    | FNV-1a hash of the member's tokens                    |
//! | `version`     | N    | version for conditional writes                        |
//!
//! Tokens items, partition `<ring>#tokens`, sort key the member id: `tokens` (B, the
//! tokens as little-endian u32s) and `tokens_hash` (N). A reader takes a member's tokens
//! from its cache when the heartbeat's hash matches, and otherwise reads the tokens item
//! (batched, strongly consistent); if that item does not match the hash yet (a writer
//! between its two writes), the member is left out of that refresh. A heartbeat item
//! without `tokens_hash` (written by an older version) carries its tokens in `desc`.
//!
//! Several rings can share one table. A member's heartbeat rewrites only its own item, so
//! members never contend.
//!
//! # Versions
//!
//! An update writes `expected + 1`. A new item starts at the current time in microseconds,
//! so an item deleted and created again does not come back with a version that a reader of
//! the old item could still hold.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, KeysAndAttributes,
    ScalarAttributeType, TableStatus,
};
use aws_sdk_dynamodb::Client;
use strata_ring::{InstanceDesc, RingError, RingStore, Versioned};

mod error;
mod ha;

pub use error::RingStoreError;
pub use ha::{
    cluster_key, DynamoHaStore, DynamoHaStoreConfig, HaRecord, HaWrite, HA_PARTITION_PREFIX,
};
use strata_aws::{dynamodb_client, AwsConfig};

const ATTR_RING: &str = "ring";
const ATTR_INSTANCE: &str = "instance";
const ATTR_DESC: &str = "desc";
pub(crate) const ATTR_VERSION: &str = "version";
const ATTR_TOKENS: &str = "tokens";
const ATTR_TOKENS_HASH: &str = "tokens_hash";

/// Suffix of the partition holding a ring's tokens items.
const TOKENS_PARTITION_SUFFIX: &str = "#tokens";

/// Most keys in one `BatchGetItem`.
const BATCH_GET_MAX: usize = 100;

/// FNV-1a over the tokens' little-endian bytes: the same in every process and version.
fn tokens_hash(tokens: &[u32]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for t in tokens {
        for b in t.to_le_bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

fn encode_tokens(tokens: &[u32]) -> Vec<u8> {
    tokens.iter().flat_map(|t| t.to_le_bytes()).collect()
}

fn decode_tokens(bytes: &[u8]) -> Option<Vec<u32>> {
    if bytes.len() % 4 != 0 {
        return None;
    }
    Some(
        bytes
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    )
}

/// Tokens last read or written, by member: hash and tokens.
type TokensCache = Arc<Mutex<HashMap<String, (u64, Arc<Vec<u32>>)>>>;

/// How long [`DynamoRingStore::ensure_table`] waits for a new table to become ACTIVE.
const TABLE_READY_TIMEOUT: Duration = Duration::from_secs(120);

/// Configuration of a [`DynamoRingStore`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamoRingStoreConfig {
    /// DynamoDB table holding the rings.
    pub table_name: String,
    /// Name of the ring this store reads and writes (the partition key value).
    pub ring_name: String,
    /// Region, endpoint and timeouts.
    pub aws: AwsConfig,
}

impl DynamoRingStoreConfig {
    /// Defaults (region `us-east-1`, real AWS endpoint) for the given table and ring.
    pub fn new(table_name: impl Into<String>, ring_name: impl Into<String>) -> Self {
        Self {
            table_name: table_name.into(),
            ring_name: ring_name.into(),
            aws: AwsConfig::default(),
        }
    }
}

/// The members of one ring, stored in a DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoRingStore {
    client: Client,
    table: String,
    ring: String,
    page_limit: Option<i32>,
    tokens: TokensCache,
}

impl DynamoRingStore {
    /// Builds a client from `config` (see [`AwsConfig::load`] for credentials). Does not
    /// touch the table; call [`DynamoRingStore::ensure_table`] to create it if needed.
    pub async fn connect(config: &DynamoRingStoreConfig) -> Self {
        let client = dynamodb_client(&config.aws).await;
        Self::from_client(client, &config.table_name, &config.ring_name)
    }

    /// Uses an existing client.
    pub fn from_client(client: Client, table_name: &str, ring_name: &str) -> Self {
        Self {
            client,
            table: table_name.to_string(),
            ring: ring_name.to_string(),
            page_limit: None,
            tokens: TokensCache::default(),
        }
    }

    /// Caps the number of items per `Query` page (DynamoDB otherwise pages at 1 MB). Only
    /// useful to exercise pagination in tests.
    pub fn with_page_limit(mut self, limit: i32) -> Self {
        self.page_limit = Some(limit);
        self
    }

    /// The table name.
    pub fn table_name(&self) -> &str {
        &self.table
    }

    /// The ring name.
    pub fn ring_name(&self) -> &str {
        &self.ring
    }

    /// Creates the table (on-demand capacity) unless it exists, then waits until it is
    /// ACTIVE. Safe to call from several processes at once.
    pub async fn ensure_table(&self) -> Result<(), RingStoreError> {
        match self
            .client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
        {
            Ok(_) => return self.wait_until_active().await,
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) => {}
            Err(err) => return Err(self.sdk_error("DescribeTable", err)),
        }

        let created = self
            .client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attribute_definition(ATTR_RING)?)
            .attribute_definitions(attribute_definition(ATTR_INSTANCE)?)
            .key_schema(key_schema(ATTR_RING, KeyType::Hash)?)
            .key_schema(key_schema(ATTR_INSTANCE, KeyType::Range)?)
            .send()
            .await;
        match created {
            Ok(_) => tracing::info!(table = %self.table, "created ring table"),
            // Someone else created it first.
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_in_use_exception()) => {}
            Err(err) => return Err(self.sdk_error("CreateTable", err)),
        }
        self.wait_until_active().await
    }

    async fn wait_until_active(&self) -> Result<(), RingStoreError> {
        let started = tokio::time::Instant::now();
        loop {
            let output = self
                .client
                .describe_table()
                .table_name(&self.table)
                .send()
                .await
                .map_err(|err| self.sdk_error("DescribeTable", err))?;
            let status = output.table().and_then(|table| table.table_status());
            if status == Some(&TableStatus::Active) {
                return Ok(());
            }
            if started.elapsed() > TABLE_READY_TIMEOUT {
                return Err(RingStoreError::TableNotReady {
                    table: self.table.clone(),
                    waited_secs: TABLE_READY_TIMEOUT.as_secs(),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn sdk_error<E, R>(&self, operation: &'static str, err: SdkError<E, R>) -> RingStoreError
    where
        E: std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        RingStoreError::DynamoDb {
            operation,
            table: self.table.clone(),
            message: DisplayErrorContext(&err).to_string(),
        }
    }

    fn store_error<E, R>(&self, operation: &'static str, err: SdkError<E, R>) -> RingError
    where
        E: std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        RingError::store(self.sdk_error(operation, err))
    }

    fn key(&self, id: &str) -> HashMap<String, AttributeValue> {
        HashMap::from([
            (ATTR_RING.to_string(), AttributeValue::S(self.ring.clone())),
            (ATTR_INSTANCE.to_string(), AttributeValue::S(id.to_string())),
        ])
    }

    fn tokens_key(&self, id: &str) -> HashMap<String, AttributeValue> {
        HashMap::from([
            (
                ATTR_RING.to_string(),
                AttributeValue::S(format!("{}{TOKENS_PARTITION_SUFFIX}", self.ring)),
            ),
            (ATTR_INSTANCE.to_string(), AttributeValue::S(id.to_string())),
        ])
    }

    fn cached_tokens(&self, id: &str, hash: u64) -> Option<Arc<Vec<u32>>> {
        let cache = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .get(id)
            .filter(|(h, _)| *h == hash)
            .map(|(_, t)| t.clone())
    }

    fn remember_tokens(&self, id: &str, hash: u64, tokens: Arc<Vec<u32>>) {
        let mut cache = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        cache.insert(id.to_string(), (hash, tokens));
    }

    /// Reads the tokens items of `ids` (strongly consistent, in batches) into the cache.
    async fn fetch_tokens(&self, ids: &[String]) -> Result<(), RingError> {
        for batch in ids.chunks(BATCH_GET_MAX) {
            let mut keys: Vec<HashMap<String, AttributeValue>> =
                batch.iter().map(|id| self.tokens_key(id)).collect();
            // Bounded: unprocessed keys are retried a few times, then left for the next
            // refresh.
            for _ in 0..5 {
                if keys.is_empty() {
                    break;
                }
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(std::mem::take(&mut keys)))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| RingError::store(self.malformed(e.to_string())))?;
                let output = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(|err| self.store_error("BatchGetItem", err))?;
                for item in output
                    .responses()
                    .and_then(|r| r.get(&self.table))
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                {
                    let id = match item.get(ATTR_INSTANCE) {
                        Some(AttributeValue::S(id)) => id,
                        _ => continue,
                    };
                    let hash = match item.get(ATTR_TOKENS_HASH) {
                        Some(AttributeValue::N(n)) => n.parse::<u64>().ok(),
                        _ => None,
                    };
                    let tokens = match item.get(ATTR_TOKENS) {
                        Some(AttributeValue::B(b)) => decode_tokens(b.as_ref()),
                        _ => None,
                    };
                    match (hash, tokens) {
                        (Some(hash), Some(tokens)) if tokens_hash(&tokens) == hash => {
                            self.remember_tokens(id, hash, Arc::new(tokens));
                        }
                        _ => tracing::warn!(instance = %id, "skipping malformed ring tokens item"),
                    }
                }
                if let Some(left) = output.unprocessed_keys().and_then(|u| u.get(&self.table)) {
                    keys = left.keys().to_vec();
                }
            }
        }
        Ok(())
    }

    fn malformed(&self, message: String) -> RingStoreError {
        RingStoreError::MalformedItem {
            table: self.table.clone(),
            message,
        }
    }

    /// A heartbeat item, and its tokens' hash (`None` for an item that carries its tokens).
    fn parse_item(
        &self,
        item: &HashMap<String, AttributeValue>,
    ) -> Result<(Versioned<InstanceDesc>, Option<u64>), RingStoreError> {
        let malformed = |message: String| RingStoreError::MalformedItem {
            table: self.table.clone(),
            message,
        };
        let id = match item.get(ATTR_INSTANCE) {
            Some(AttributeValue::S(id)) => id.as_str(),
            _ => {
                return Err(malformed(format!(
                    "missing string attribute {ATTR_INSTANCE}"
                )))
            }
        };
        let desc_json = match item.get(ATTR_DESC) {
            Some(AttributeValue::S(json)) => json,
            _ => {
                return Err(malformed(format!(
                    "instance {id}: missing string attribute {ATTR_DESC}"
                )))
            }
        };
        let version = match item.get(ATTR_VERSION) {
            Some(AttributeValue::N(number)) => number.parse::<u64>().map_err(|err| {
                malformed(format!("instance {id}: bad version {number:?}: {err}"))
            })?,
            _ => {
                return Err(malformed(format!(
                    "instance {id}: missing number attribute {ATTR_VERSION}"
                )))
            }
        };
        let desc: InstanceDesc = serde_json::from_str(desc_json)
            .map_err(|err| malformed(format!("instance {id}: bad description: {err}")))?;
        if desc.id != id {
            return Err(malformed(format!(
                "instance {id}: description is for {:?}",
                desc.id
            )));
        }
        let hash = match item.get(ATTR_TOKENS_HASH) {
            None => None,
            Some(AttributeValue::N(n)) => Some(n.parse::<u64>().map_err(|err| {
                malformed(format!("instance {id}: bad tokens hash {n:?}: {err}"))
            })?),
            Some(_) => {
                return Err(malformed(format!(
                    "instance {id}: {ATTR_TOKENS_HASH} is not a number"
                )))
            }
        };
        Ok((
            Versioned {
                value: desc,
                version,
            },
            hash,
        ))
    }
}

#[async_trait]
impl RingStore for DynamoRingStore {
    /// Strongly consistent `Query` of the ring's partition, following pagination. Items that
    /// cannot be decoded are skipped with a warning so one bad item cannot hide the ring.
    async fn list(&self) -> Result<Vec<Versioned<InstanceDesc>>, RingError> {
        let mut members: Vec<(Versioned<InstanceDesc>, Option<u64>)> = Vec::new();
        let mut start_key: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .consistent_read(true)
                .key_condition_expression("#r = :ring")
                .expression_attribute_names("#r", ATTR_RING)
                .expression_attribute_values(":ring", AttributeValue::S(self.ring.clone()))
                .set_limit(self.page_limit)
                .set_exclusive_start_key(start_key.take())
                .send()
                .await
                .map_err(|err| self.store_error("Query", err))?;
            for item in output.items() {
                match self.parse_item(item) {
                    Ok(member) => members.push(member),
                    Err(err) => tracing::warn!(error = %err, "skipping ring item"),
                }
            }
            match output.last_evaluated_key() {
                Some(key) if !key.is_empty() => start_key = Some(key.clone()),
                _ => break,
            }
        }
        // Tokens this reader has not seen yet (new members, changed tokens).
        let unknown: Vec<String> = members
            .iter()
            .filter_map(|(m, hash)| {
                hash.filter(|h| self.cached_tokens(&m.value.id, *h).is_none())
                    .map(|_| m.value.id.clone())
            })
            .collect();
        if !unknown.is_empty() {
            self.fetch_tokens(&unknown).await?;
        }
        let mut out = Vec::with_capacity(members.len());
        for (mut member, hash) in members {
            if let Some(hash) = hash {
                match self.cached_tokens(&member.value.id, hash) {
                    Some(tokens) => member.value.tokens = tokens.as_ref().clone(),
                    None => {
                        // Between a writer's two writes: seen at a later refresh.
                        tracing::debug!(instance = %member.value.id, "ring member's tokens not written yet");
                        continue;
                    }
                }
            }
            out.push(member);
        }
        Ok(out)
    }

    async fn put(
        &self,
        desc: &InstanceDesc,
        expected_version: Option<u64>,
    ) -> Result<u64, RingError> {
        let new_version = match expected_version {
            Some(version) => version + 1,
            None => creation_version(),
        };
        let hash = tokens_hash(&desc.tokens);
        if self.cached_tokens(&desc.id, hash).is_none() {
            // Tokens first: a reader that sees the heartbeat's new hash finds them.
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(self.tokens_key(&desc.id)))
                .item(
                    ATTR_TOKENS,
                    AttributeValue::B(Blob::new(encode_tokens(&desc.tokens))),
                )
                .item(ATTR_TOKENS_HASH, AttributeValue::N(hash.to_string()))
                .send()
                .await
                .map_err(|err| self.store_error("PutItem", err))?;
            self.remember_tokens(&desc.id, hash, Arc::new(desc.tokens.clone()));
        }
        let heartbeat = InstanceDesc {
            tokens: Vec::new(),
            ..desc.clone()
        };
        let json = serde_json::to_string(&heartbeat)?;
        let mut request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(self.key(&desc.id)))
            .item(ATTR_DESC, AttributeValue::S(json))
            .item(ATTR_TOKENS_HASH, AttributeValue::N(hash.to_string()))
            .item(ATTR_VERSION, AttributeValue::N(new_version.to_string()));
        request = only_at_version(request, expected_version);
        match request.send().await {
            Ok(_) => Ok(new_version),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Err(RingError::Conflict {
                    id: desc.id.clone(),
                })
            }
            Err(err) => Err(self.store_error("PutItem", err)),
        }
    }

    async fn delete(&self, id: &str, expected_version: Option<u64>) -> Result<(), RingError> {
        let mut request = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(self.key(id)));
        if let Some(version) = expected_version {
            request = request
                .condition_expression("#v = :expected")
                .expression_attribute_names("#v", ATTR_VERSION)
                .expression_attribute_values(":expected", AttributeValue::N(version.to_string()));
        }
        match request.send().await {
            Ok(_) => {}
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                return Err(RingError::Conflict { id: id.to_string() });
            }
            Err(err) => return Err(self.store_error("DeleteItem", err)),
        }
        // The heartbeat item is gone, so no reader looks for the tokens any more.
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(self.tokens_key(id)))
            .send()
            .await
            .map_err(|err| self.store_error("DeleteItem", err))?;
        self.tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
        Ok(())
    }
}

/// Version of a newly created item: the current time in microseconds.
fn creation_version() -> u64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since_epoch.as_micros()).unwrap_or(u64::MAX / 2)
}

fn attribute_definition(name: &str) -> Result<AttributeDefinition, RingStoreError> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .map_err(|err| RingStoreError::DynamoDb {
            operation: "CreateTable",
            table: String::new(),
            message: err.to_string(),
        })
}

fn key_schema(name: &str, key_type: KeyType) -> Result<KeySchemaElement, RingStoreError> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(key_type)
        .build()
        .map_err(|err| RingStoreError::DynamoDb {
            operation: "CreateTable",
            table: String::new(),
            message: err.to_string(),
        })
}

/// A put that succeeds only if the item is absent (`expected` `None`) or
/// still at version `expected`: the conditional write every item here is
/// updated with.
pub(crate) fn only_at_version(
    request: aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder,
    expected: Option<u64>,
) -> aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder {
    match expected {
        None => request
            .condition_expression("attribute_not_exists(#i)")
            .expression_attribute_names("#i", ATTR_INSTANCE),
        Some(version) => request
            .condition_expression("#v = :expected")
            .expression_attribute_names("#v", ATTR_VERSION)
            .expression_attribute_values(":expected", AttributeValue::N(version.to_string())),
    }
}
