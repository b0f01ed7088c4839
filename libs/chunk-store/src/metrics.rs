//! Metrics of the chunk store, and a store wrapper that records them.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::error::StoreError;
use crate::store::ObjectStore;

/// An object store operation on one kind of store.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabels {
    pub operation: &'static str,
    pub store: &'static str,
}

/// An answered object store request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub operation: &'static str,
    pub store: &'static str,
    /// `ok`, `not_found` or `error`.
    pub outcome: &'static str,
}

fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// Metrics of the chunk store. Cloning shares the underlying metrics.
#[derive(Clone, Debug)]
pub struct ChunkStoreMetrics {
    /// Objects put.
    pub objects_written: Counter,
    /// Bytes of objects put.
    pub bytes_written: Counter,
    /// Requests to the object store, by operation, store kind and outcome.
    pub requests: Family<RequestLabels, Counter>,
    /// Bytes read from the object store.
    pub bytes_read: Counter,
    /// Time a request took, by operation and store kind.
    pub request_duration: Family<OperationLabels, Histogram, fn() -> Histogram>,
    /// Chunks whose bytes did not match their checksum.
    pub checksum_failures: Counter,
    /// Chunks asked of [`crate::ChunkFetcher`].
    pub chunks_fetched: Counter,
    /// Ranged reads [`crate::ChunkFetcher`] issued (after coalescing neighbours).
    pub coalesced_reads: Counter,
}

impl Default for ChunkStoreMetrics {
    fn default() -> Self {
        Self {
            objects_written: Counter::default(),
            bytes_written: Counter::default(),
            requests: Family::default(),
            bytes_read: Counter::default(),
            request_duration: Family::new_with_constructor(duration_histogram),
            checksum_failures: Counter::default(),
            chunks_fetched: Counter::default(),
            coalesced_reads: Counter::default(),
        }
    }
}

impl ChunkStoreMetrics {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers the metrics under the prefix `strata_chunk_store`.
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("strata_chunk_store");
        r.register(
            "objects_written",
            "Objects written to the object store",
            self.objects_written.clone(),
        );
        r.register(
            "written_bytes",
            "Bytes of objects written to the object store",
            self.bytes_written.clone(),
        );
        r.register(
            "requests",
            "Object store requests, by operation, store kind and outcome",
            self.requests.clone(),
        );
        r.register(
            "read_bytes",
            "Bytes read from the object store",
            self.bytes_read.clone(),
        );
        r.register(
            "request_duration_seconds",
            "Time an object store request took, by operation and store kind",
            self.request_duration.clone(),
        );
        r.register(
            "checksum_failures",
            "Chunks read whose bytes did not match their checksum",
            self.checksum_failures.clone(),
        );
        r.register(
            "chunks_fetched",
            "Chunks asked of the chunk fetcher",
            self.chunks_fetched.clone(),
        );
        r.register(
            "coalesced_reads",
            "Ranged reads the chunk fetcher issued after merging neighbouring chunks",
            self.coalesced_reads.clone(),
        );
    }

    fn observe<T>(
        &self,
        operation: &'static str,
        store: &'static str,
        started: Instant,
        result: &Result<T, StoreError>,
    ) {
        self.request_duration
            .get_or_create(&OperationLabels { operation, store })
            .observe(started.elapsed().as_secs_f64());
        let outcome = match result {
            Ok(_) => "ok",
            Err(StoreError::NotFound { .. }) => "not_found",
            Err(_) => "error",
        };
        self.requests
            .get_or_create(&RequestLabels {
                operation,
                store,
                outcome,
            })
            .inc();
    }
}

/// Wraps any [`ObjectStore`] and records requests and latency into [`ChunkStoreMetrics`].
pub struct InstrumentedStore {
    inner: Arc<dyn ObjectStore>,
    metrics: ChunkStoreMetrics,
}

impl InstrumentedStore {
    pub fn new(inner: Arc<dyn ObjectStore>, metrics: ChunkStoreMetrics) -> Self {
        Self { inner, metrics }
    }

    /// The metrics this store records into.
    pub fn metrics(&self) -> &ChunkStoreMetrics {
        &self.metrics
    }

    fn read_done(&self, operation: &'static str, started: Instant, r: &Result<Bytes, StoreError>) {
        self.metrics
            .observe(operation, self.inner.kind(), started, r);
        if let Ok(body) = r {
            self.metrics.bytes_read.inc_by(body.len() as u64);
        }
    }
}

#[async_trait::async_trait]
impl ObjectStore for InstrumentedStore {
    async fn put(&self, key: &str, body: Bytes) -> Result<(), StoreError> {
        let started = Instant::now();
        let len = body.len() as u64;
        let r = self.inner.put(key, body).await;
        self.metrics.observe("put", self.inner.kind(), started, &r);
        if r.is_ok() {
            self.metrics.objects_written.inc();
            self.metrics.bytes_written.inc_by(len);
        }
        r
    }

    async fn get_range(&self, key: &str, offset: u64, len: u64) -> Result<Bytes, StoreError> {
        let started = Instant::now();
        let r = self.inner.get_range(key, offset, len).await;
        self.read_done("get_range", started, &r);
        r
    }

    async fn get_tail(&self, key: &str, len: u64) -> Result<Bytes, StoreError> {
        let started = Instant::now();
        let r = self.inner.get_tail(key, len).await;
        self.read_done("get_tail", started, &r);
        r
    }

    async fn get(&self, key: &str) -> Result<Bytes, StoreError> {
        let started = Instant::now();
        let r = self.inner.get(key).await;
        self.read_done("get", started, &r);
        r
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let started = Instant::now();
        let r = self.inner.list(prefix).await;
        self.metrics.observe("list", self.inner.kind(), started, &r);
        r
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let started = Instant::now();
        let r = self.inner.delete(key).await;
        self.metrics
            .observe("delete", self.inner.kind(), started, &r);
        r
    }

    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
}
