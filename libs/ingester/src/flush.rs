//! Flushing closed chunks to long-term storage.
//!
//! The ingester knows nothing of S3 or DynamoDB: it hands batches to a
//! [`ChunkSink`] (the store's writer, wired by the application) and asks a
//! [`FlushRank`] where it stands among a series' replicas.
//!
//! One flush cycle, every `flush_period`:
//! 1. close open chunks whose aligned window is over (or all, when flushing
//!    everything);
//! 2. per tenant (at most `flush_concurrency` at once), collect closed chunks
//!    not yet flushed whose window ended `flush_delay + rank ×
//!    flush_takeover_delay` ago;
//! 3. for series this ingester is not the first replica of, ask the sink
//!    which of them another replica already stored with identical chunks
//!    (same digest): those are marked flushed without writing;
//! 4. write the rest in batches, one chunk object each, and mark them
//!    flushed; a failed batch stays in memory and is retried next cycle;
//! 5. drop chunks flushed more than `retain_period` ago and remove series
//!    that hold nothing and got no sample for `series_idle_timeout`.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use strata_model::Labels;

use crate::series::{window_of, ChunkData};
use crate::tenant::PendingFlush;

/// The chunks of one series in a flush batch.
#[derive(Clone, Debug)]
pub struct FlushSeries {
    pub fingerprint: u64,
    pub labels: Labels,
    /// Sorted by time, disjoint.
    pub chunks: Vec<ChunkData>,
}

/// Chunks of one tenant and one aligned window, written as one object.
#[derive(Clone, Debug)]
pub struct FlushBatch {
    pub tenant: String,
    pub window_start_ms: i64,
    pub window_end_ms: i64,
    pub series: Vec<FlushSeries>,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct FlushError(pub String);

/// Where flushed chunks go.
#[async_trait::async_trait]
pub trait ChunkSink: Send + Sync + 'static {
    /// Stores the batch (chunks and index entries); returns once both are
    /// durable.
    async fn write(&self, batch: &FlushBatch) -> Result<(), FlushError>;

    /// Of these (fingerprint, digest of its chunks in the window) pairs, the
    /// fingerprints whose identical chunks are already stored for the window
    /// `[from_ms, to_ms)`.
    async fn stored(
        &self,
        tenant: &str,
        from_ms: i64,
        to_ms: i64,
        series: &[(u64, u32)],
    ) -> Result<HashSet<u64>, FlushError>;
}

/// This ingester's position among the replicas of a series (0 = the first,
/// which flushes without waiting).
pub trait FlushRank: Send + Sync + 'static {
    fn rank(&self, tenant: &str, labels: &[(&str, &str)]) -> usize;
}

/// Every series ranks first: a single ingester (replication factor 1).
pub struct SoleReplica;

impl FlushRank for SoleReplica {
    fn rank(&self, _tenant: &str, _labels: &[(&str, &str)]) -> usize {
        0
    }
}

/// Digest of a series' chunks in a window: replicas that cut the same
/// chunks compute the same value.
pub fn chunks_digest(chunks: &[ChunkData]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    for c in chunks {
        h.update(&c.min_time.to_le_bytes());
        h.update(&c.max_time.to_le_bytes());
        h.update(&c.encoding.to_le_bytes());
        h.update(&(c.data.len() as u64).to_le_bytes());
        h.update(&c.data);
    }
    h.finalize()
}

/// Pending chunks of one tenant grouped by window: (window index, series
/// with only that window's chunks).
pub(crate) fn group_by_window(
    pending: Vec<PendingFlush>,
    window_ms: i64,
) -> BTreeMap<i64, Vec<PendingFlush>> {
    let mut out: BTreeMap<i64, Vec<PendingFlush>> = BTreeMap::new();
    for p in pending {
        let mut by_window: BTreeMap<i64, Vec<ChunkData>> = BTreeMap::new();
        for c in p.chunks {
            by_window
                .entry(window_of(c.min_time, window_ms))
                .or_default()
                .push(c);
        }
        for (w, chunks) in by_window {
            out.entry(w).or_default().push(PendingFlush {
                series: p.series.clone(),
                labels: p.labels.clone(),
                chunks,
                rank: p.rank,
            });
        }
    }
    out
}

/// What one flush cycle did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FlushOutcome {
    pub chunks_flushed: usize,
    pub chunks_deduped: usize,
    pub batches_failed: usize,
    pub chunks_dropped: usize,
    pub series_removed: usize,
    /// First failure, for logs and the flush endpoint's answer.
    pub first_error: Option<String>,
}

impl FlushOutcome {
    pub(crate) fn add(&mut self, other: FlushOutcome) {
        self.chunks_flushed += other.chunks_flushed;
        self.chunks_deduped += other.chunks_deduped;
        self.batches_failed += other.batches_failed;
        self.chunks_dropped += other.chunks_dropped;
        self.series_removed += other.series_removed;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

/// Shared state the flusher needs per series while a batch is in flight.
pub(crate) struct InFlight {
    pub(crate) series: Arc<crate::series::Series>,
    pub(crate) spans: Vec<(i64, i64)>,
}
