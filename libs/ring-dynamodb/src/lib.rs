//! The ring's [`RingStore`] on DynamoDB (or any server speaking its API,
//! such as dynalite), beside the ring it stores.
//!
//! # Table layout
//!
//! One item per ring member:
//!
//! | attribute  | type | meaning                                              |
//! |------------|------|------------------------------------------------------|
//! | `ring`     | S    | partition key: the ring name (`ingester`, ...)       |
//! | `instance` | S    | sort key: the member id                              |
//! | `desc`     | S    | JSON of [`InstanceDesc`]                             |
//! | `version`  | N    | version for conditional writes                       |
//!
//! Several rings can share one table. A member's heartbeat rewrites only its own item, so
//! members never contend, and an item stays around 2 KB with 128 tokens, far below the
//! 400 KB item limit.
//!
//! # Versions
//!
//! An update writes `expected + 1`. A new item starts at the current time in microseconds,
//! so an item deleted and created again does not come back with a version that a reader of
//! the old item could still hold.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType, TableStatus,
};
use aws_sdk_dynamodb::Client;
use strata_ring::{InstanceDesc, RingError, RingStore, Versioned};

mod error;

pub use error::RingStoreError;
use strata_aws::{dynamodb_client, AwsConfig};

const ATTR_RING: &str = "ring";
const ATTR_INSTANCE: &str = "instance";
const ATTR_DESC: &str = "desc";
const ATTR_VERSION: &str = "version";

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

    fn parse_item(
        &self,
        item: &HashMap<String, AttributeValue>,
    ) -> Result<Versioned<InstanceDesc>, RingStoreError> {
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
        Ok(Versioned {
            value: desc,
            version,
        })
    }
}

#[async_trait]
impl RingStore for DynamoRingStore {
    /// Strongly consistent `Query` of the ring's partition, following pagination. Items that
    /// cannot be decoded are skipped with a warning so one bad item cannot hide the ring.
    async fn list(&self) -> Result<Vec<Versioned<InstanceDesc>>, RingError> {
        let mut members = Vec::new();
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
        Ok(members)
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
        let json = serde_json::to_string(desc)?;
        let mut request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(self.key(&desc.id)))
            .item(ATTR_DESC, AttributeValue::S(json))
            .item(ATTR_VERSION, AttributeValue::N(new_version.to_string()));
        request = match expected_version {
            None => request
                .condition_expression("attribute_not_exists(#i)")
                .expression_attribute_names("#i", ATTR_INSTANCE),
            Some(version) => request
                .condition_expression("#v = :expected")
                .expression_attribute_names("#v", ATTR_VERSION)
                .expression_attribute_values(":expected", AttributeValue::N(version.to_string())),
        };
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
            Ok(_) => Ok(()),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Err(RingError::Conflict { id: id.to_string() })
            }
            Err(err) => Err(self.store_error("DeleteItem", err)),
        }
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
