//! The distributors' HA tracker records on DynamoDB: which replica of each
//! Prometheus HA pair is elected, shared by every distributor.
//!
//! # Table layout
//!
//! The records live in the ring's table (same key schema), in partitions of
//! their own, one per tenant, so a tenant's clusters are read and written
//! apart from every ring and from other tenants:
//!
//! | attribute     | type | meaning                                                    |
//! |---------------|------|------------------------------------------------------------|
//! | `ring`        | S    | partition key: `ha-tracker/<tenant>`                       |
//! | `instance`    | S    | sort key: the cluster (value of the cluster label)         |
//! | `replica`     | S    | the elected replica                                        |
//! | `received_at` | N    | when a distributor last wrote that it saw a push of it (ms) |
//! | `version`     | N    | version for conditional writes                             |
//!
//! A cluster value longer than [`MAX_SORT_KEY`] bytes (DynamoDB's sort keys
//! hold 1024) is stored under its first bytes plus a hash of the whole.
//!
//! Writes are conditional: a new record on `attribute_not_exists(instance)`,
//! a change on the version read. An update writes `expected + 1`; a new
//! record starts at the current time in microseconds, as ring items do.
//! Distributors write a cluster's record about once per
//! `distributor.ha_tracker.update_timeout` (and read it as often, each), not
//! once per push. Records are never deleted: one small item per cluster a
//! tenant ever used.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use strata_aws::{dynamodb_client, AwsConfig};

use crate::{
    creation_version, DynamoRingStore, RingStoreError, ATTR_INSTANCE, ATTR_RING, ATTR_VERSION,
};

/// Prefix of the partitions holding HA tracker records; the tenant follows.
pub const HA_PARTITION_PREFIX: &str = "ha-tracker/";

/// Longest cluster value used as a sort key as it is.
pub const MAX_SORT_KEY: usize = 1000;

const ATTR_REPLICA: &str = "replica";
const ATTR_RECEIVED_AT: &str = "received_at";

/// Configuration of a [`DynamoHaStore`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamoHaStoreConfig {
    /// The table (the ring's, usually).
    pub table_name: String,
    /// Region, endpoint and timeouts.
    pub aws: AwsConfig,
}

impl DynamoHaStoreConfig {
    pub fn new(table_name: impl Into<String>) -> Self {
        Self {
            table_name: table_name.into(),
            aws: AwsConfig::default(),
        }
    }
}

/// The elected replica of one cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaRecord {
    pub replica: String,
    /// Unix milliseconds.
    pub received_at_ms: i64,
}

/// What a conditional write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HaWrite {
    /// Written; the record now has `version`.
    Written { version: u64 },
    /// The record was not at the expected version (or, for a creation,
    /// existed): nothing written.
    Conflict,
}

/// HA tracker records in a DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoHaStore {
    client: Client,
    table: String,
}

impl DynamoHaStore {
    /// Builds a client from `config`; does not touch the table.
    pub async fn connect(config: &DynamoHaStoreConfig) -> Self {
        let client = dynamodb_client(&config.aws).await;
        Self::from_client(client, &config.table_name)
    }

    /// Uses an existing client.
    pub fn from_client(client: Client, table_name: &str) -> Self {
        Self {
            client,
            table: table_name.to_string(),
        }
    }

    pub fn table_name(&self) -> &str {
        &self.table
    }

    /// Creates the table (the ring's layout) unless it exists, and waits
    /// until it is ACTIVE.
    pub async fn ensure_table(&self) -> Result<(), RingStoreError> {
        DynamoRingStore::from_client(self.client.clone(), &self.table, "")
            .ensure_table()
            .await
    }

    fn key(tenant: &str, cluster: &str) -> HashMap<String, AttributeValue> {
        HashMap::from([
            (
                ATTR_RING.to_string(),
                AttributeValue::S(format!("{HA_PARTITION_PREFIX}{tenant}")),
            ),
            (
                ATTR_INSTANCE.to_string(),
                AttributeValue::S(cluster_key(cluster)),
            ),
        ])
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

    /// The record of `(tenant, cluster)` and its version (strongly
    /// consistent read).
    pub async fn get(
        &self,
        tenant: &str,
        cluster: &str,
    ) -> Result<Option<(HaRecord, u64)>, RingStoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(tenant, cluster)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|err| self.sdk_error("GetItem", err))?;
        let Some(item) = output.item() else {
            return Ok(None);
        };
        let malformed = |message: String| RingStoreError::MalformedItem {
            table: self.table.clone(),
            message: format!("HA record of tenant {tenant:?}, cluster {cluster:?}: {message}"),
        };
        let replica = match item.get(ATTR_REPLICA) {
            Some(AttributeValue::S(r)) => r.clone(),
            _ => {
                return Err(malformed(format!(
                    "missing string attribute {ATTR_REPLICA}"
                )))
            }
        };
        let number = |name: &str| match item.get(name) {
            Some(AttributeValue::N(n)) => n
                .parse::<i128>()
                .map_err(|e| malformed(format!("bad {name} {n:?}: {e}"))),
            _ => Err(malformed(format!("missing number attribute {name}"))),
        };
        let received_at_ms = i64::try_from(number(ATTR_RECEIVED_AT)?)
            .map_err(|e| malformed(format!("{ATTR_RECEIVED_AT} out of range: {e}")))?;
        let version = u64::try_from(number(ATTR_VERSION)?)
            .map_err(|e| malformed(format!("{ATTR_VERSION} out of range: {e}")))?;
        Ok(Some((
            HaRecord {
                replica,
                received_at_ms,
            },
            version,
        )))
    }

    /// Writes `record` if the stored one is at `expected_version`, or, with
    /// `None`, if there is none.
    pub async fn compare_and_swap(
        &self,
        tenant: &str,
        cluster: &str,
        expected_version: Option<u64>,
        record: &HaRecord,
    ) -> Result<HaWrite, RingStoreError> {
        let version = match expected_version {
            Some(v) => v + 1,
            None => creation_version(),
        };
        let mut request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(Self::key(tenant, cluster)))
            .item(ATTR_REPLICA, AttributeValue::S(record.replica.clone()))
            .item(
                ATTR_RECEIVED_AT,
                AttributeValue::N(record.received_at_ms.to_string()),
            )
            .item(ATTR_VERSION, AttributeValue::N(version.to_string()));
        request = crate::only_at_version(request, expected_version);
        match request.send().await {
            Ok(_) => Ok(HaWrite::Written { version }),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(HaWrite::Conflict)
            }
            Err(err) => Err(self.sdk_error("PutItem", err)),
        }
    }
}

/// The sort key of a cluster: the value itself, or for one longer than
/// [`MAX_SORT_KEY`] its first bytes and a hash of the whole.
pub fn cluster_key(cluster: &str) -> String {
    if cluster.len() <= MAX_SORT_KEY {
        return cluster.to_string();
    }
    let mut cut = MAX_SORT_KEY - 100;
    while !cluster.is_char_boundary(cut) {
        cut -= 1;
    }
    // FNV-1a: the same in every process and version.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in cluster.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{}#{h:016x}-{}", &cluster[..cut], cluster.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_cluster_values_fit_a_sort_key() {
        assert_eq!(cluster_key("pair"), "pair");
        let long = "é".repeat(700);
        let key = cluster_key(&long);
        assert!(key.len() <= MAX_SORT_KEY, "{}", key.len());
        assert!(long.starts_with(key.split('#').next().unwrap()));
        let other = format!("{}x", "é".repeat(699));
        assert_ne!(cluster_key(&other), key);
    }
}
