//! The ingester: holds every tenant's recent samples in memory.
//!
//! Each tenant has its own [`TenantDb`]: series keyed by a 64-bit label
//! fingerprint (with label comparison on lookup, so colliding fingerprints
//! never merge two series), samples packed into Prometheus XOR chunks, and
//! an inverted index from label pairs to series that answers `=`, `!=`,
//! `=~` and `!~` matchers, with or without a metric name.
//!
//! [`Ingester`] owns the tenants and the limits that keep memory bounded;
//! [`service::IngesterService`] exposes it over gRPC.

mod config;
mod error;
pub mod exemplars;
pub mod flush;
pub mod gaps;
mod index;
mod ingester;
mod metrics;
mod series;
pub mod service;
mod tenant;
pub mod wal_records;

pub use config::{local_share, IngesterConfig, Limits, SeriesSpreadFn, WalSection, WalSync};
pub use error::IngesterError;
pub use flush::{
    ChunkSink, FlushBatch, FlushError, FlushOutcome, FlushRank, FlushSeries, SoleReplica,
};
pub use gaps::ReadGap;
pub use ingester::{unix_now_ms, Ingester, PushOutcome, SweepOutcome, WalReplayStats};
pub use metrics::IngesterMetrics;
pub use series::{window_end, window_of, ChunkData, CHUNK_ENCODING_XOR};
pub use tenant::{FamilyMetadata, QueriedSeries, TenantDb, TenantStats};
