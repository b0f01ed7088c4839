//! The long-term chunk store.
//!
//! Chunks are not stored one per object (Cortex learned that PUTs then dominate the bill):
//! a flush packs many series' chunks into one object ([`ObjectBuilder`]), and a chunk is
//! addressed by `(object, offset, length)` in a [`ChunkRef`]. Each object carries its own
//! compact index and a fixed-size footer, so the object alone is enough to find every chunk
//! in it ([`read_index`]); the parsed [`ObjectIndex`] also selects the object's series that
//! match label matchers. [`ChunkFetcher`] reads chunks back, merging neighbours into one ranged
//! read and checking every chunk's checksum.
//!
//! Objects live in an [`ObjectStore`]: [`LocalObjectStore`] (a directory) or
//! [`S3ObjectStore`]. [`InstrumentedStore`] wraps either and records [`ChunkStoreMetrics`].
//!
//! The byte layout is documented in `docs/storage-format.md`.

mod error;
mod fetch;
mod format;
mod local;
mod metrics;
mod object_index;
mod s3;
mod store;

#[cfg(test)]
mod tests;

pub use bytes::Bytes;

pub use error::{FetchError, FormatError, StoreError};
pub use fetch::{
    read_index, ChunkFetcher, DEFAULT_CONCURRENCY, DEFAULT_MAX_GAP, MAX_COALESCED_RANGE,
};
pub use format::{
    verify_chunk, BuiltObject, ChunkRef, ChunkToWrite, Footer, Header, ObjectBuilder, ObjectSeries,
    FOOTER_LEN, FORMAT_VERSION, RECORD_OVERHEAD,
};
pub use local::LocalObjectStore;
pub use metrics::{ChunkStoreMetrics, InstrumentedStore, OperationLabels, RequestLabels};
pub use object_index::ObjectIndex;
pub use s3::{S3Config, S3ObjectStore};
pub use store::ObjectStore;
