//! The long-term series index.
//!
//! Two layers:
//!
//! - **Rows** ([`RowStore`]): items addressed by table, hash key and range key, sorted by range
//!   key within a hash key, queried by range-key prefix — DynamoDB's data model.
//!   [`EmbeddedRowStore`] keeps them in one local redb file (the one-process default, no
//!   servers); [`DynamoRowStore`] in DynamoDB tables; [`MemoryRowStore`] in memory for tests.
//! - **Schema** ([`Index`]): postings (label value → series fingerprints), label names and
//!   objects (which packed object holds chunks of which series) as rows bucketed by UTC day and
//!   sharded by series, with schema periods ([`SchemaConfig`]) so the table and shard count
//!   can change from a given date on.
//!
//! The row layouts, encodings and the reasoning behind them are in `docs/index-schema.md`.

mod dynamo;
mod embedded;
mod encoding;
mod error;
mod index;
mod metrics;
mod rows;
mod schema;

pub use dynamo::{
    DynamoRowStore, RetryPolicy, BATCH_WRITE_MAX_ITEMS, DYNAMODB_MAX_HASH_KEY_BYTES,
    DYNAMODB_MAX_ITEM_BYTES, DYNAMODB_MAX_RANGE_KEY_BYTES,
};
pub use embedded::{EmbeddedRowStore, EMBEDDED_FILE};
pub use encoding::{
    MAX_BATCH_BYTES, MAX_ITEM_BYTES, MAX_LABEL_NAME_BYTES, MAX_LABEL_VALUE_BYTES,
    MAX_OBJECT_KEY_BYTES, MAX_TENANT_BYTES,
};
pub use error::IndexError;
pub use index::{Index, ObjectEntry, MAX_WRITE_DAYS};
pub use metrics::{IndexMetrics, OpLabels, StoreLabel};
pub use rows::{IndexItem, MemoryRowStore, RowStore, WriteStats};
pub use schema::{
    day_of, PeriodConfig, SchemaConfig, DAY_MS, DEFAULT_SHARDS, DEFAULT_TABLE, MAX_SHARDS,
};
