//! Long-term storage of chunks: what ingesters flush and queriers read
//! when ingesters no longer hold the data.
//!
//! A [`Store`] combines three parts, each behind a trait with an embedded
//! and a server-backed implementation:
//! - chunk objects (`strata-chunk-store`): many chunks of one tenant packed
//!   into one object per flush, in a local directory or S3;
//! - the series index (`strata-index`): postings and object lists by day, in
//!   an embedded key-value file or DynamoDB;
//! - caches (`strata-cache`): an in-process LRU and memcached in front of
//!   object indexes, chunk reads and index writes.
//!
//! Writes: [`Store::write`] packs a batch into objects, PUTs each before
//! writing its index entries (an index entry never points at a missing
//! object), and writes postings only for series the cache does not already
//! know for that day. Reads: [`Store::select`] looks up fingerprints,
//! the objects holding them, their object indexes, then fetches chunks with
//! coalesced ranged reads and verifies every checksum. With memcached
//! configured, index row queries are cached there too (invalidated by
//! every write, see `cached_rows.rs`).

mod cached_rows;
mod config;
mod error;
mod parsed;
mod store;

pub use config::{
    CacheConfig, ChunksBackend, ChunksConfig, DynamoIndexConfig, EmbeddedIndexConfig, IndexBackend,
    IndexConfig, LocalChunksConfig, MemcachedSection, ReadLimits, S3Section, StoreConfig,
};
pub use error::StoreError;
pub use store::{
    open_object_store, Store, StoreChunk, StoreMetrics, StoreMetricsSet, StoreSeries, WriteBatch,
    WriteSeries,
};
