//! The long-term series index.
//!
//! Two layers:
//!
//! - **Rows** ([`RowStore`]): items addressed by table, hash key and range key, sorted by range
//!   key within a hash key, queried by range-key prefix — DynamoDB's data model.
//!   [`EmbeddedRowStore`] keeps them in one local redb file (the one-process default, no
//!   servers); [`DynamoRowStore`] in DynamoDB tables; [`MemoryRowStore`] in memory for tests.
//! - **Schema** ([`Index`]): a catalog of the packed objects of each tenant and UTC day (where
//!   each object's own series index is, its time span and label names), and per object and
//!   label the values it holds (listed, or as a Bloom filter), so a query learns which objects
//!   can hold its series; the object's own index then selects the series. Schema periods
//!   ([`SchemaConfig`]) let the table and filter split change from a given date on.
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
pub use embedded::{EmbeddedRowStore, DEFAULT_EMBEDDED_CACHE_BYTES, EMBEDDED_FILE};
pub use encoding::{
    NameIndex, INLINE_VALUES_MAX, MAX_FILTER_SHARDS, MAX_ITEM_BYTES, MAX_LABEL_NAME_BYTES,
    MAX_LABEL_VALUE_BYTES, MAX_OBJECT_KEY_BYTES, MAX_TENANT_BYTES,
};
pub use error::IndexError;
pub use index::{Index, NewObject, ObjectEntry, Partial, MAX_READ_DAYS, MAX_WRITE_DAYS};
pub use metrics::{IndexMetrics, OpLabels, StoreLabel};
pub use rows::{IndexItem, MemoryRowStore, RowStore, WriteStats};
pub use schema::{
    day_of, PeriodConfig, SchemaConfig, DAY_MS, DEFAULT_SHARDS, DEFAULT_TABLE, MAX_SHARDS,
};
