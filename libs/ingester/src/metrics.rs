use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: String,
}

/// Refused samples are counted per tenant and reason (Cortex's
/// `discarded_samples_total{user, reason}`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TenantReasonLabel {
    pub tenant: String,
    pub reason: String,
}

/// Metrics the ingester exports about itself.
#[derive(Clone, Default)]
pub struct IngesterMetrics {
    pub memory_series: Gauge,
    pub memory_tenants: Gauge,
    pub series_created: Counter,
    pub samples_appended: Counter,
    pub samples_rejected: Family<TenantReasonLabel, Counter>,
    pub push_requests: Counter,
    /// Metadata entries stored (new or updated families).
    pub metadata_received: Counter,
    /// Metadata entries dropped, by reason.
    pub metadata_discarded: Family<ReasonLabel, Counter>,
    /// Exemplars stored.
    pub exemplars_appended: Counter,
    /// Exemplars not stored, by reason.
    pub exemplars_rejected: Family<ReasonLabel, Counter>,
    /// Exemplars held in memory, all tenants together.
    pub memory_exemplars: Gauge,
    /// Open chunks closed by the periodic chunk-age sweep.
    pub chunks_cut_by_age_sweep: Counter,
    /// Chunk-age sweeps run.
    pub chunk_age_sweeps: Counter,
    /// How long the last chunk-age sweep took.
    pub chunk_age_sweep_seconds: Gauge<f64, AtomicU64>,
    /// Bytes of closed chunks only this ingester holds (the flush queue).
    pub unflushed_bytes: Gauge,
    /// Series with closed chunks waiting to be flushed (last cycle).
    pub flush_queue_series: Gauge,
    /// Age of the oldest unflushed chunk's window end, in seconds.
    pub flush_queue_oldest_seconds: Gauge<f64, AtomicU64>,
    /// Chunks written to long-term storage.
    pub chunks_flushed: Counter,
    /// Chunk bytes written to long-term storage.
    pub chunk_bytes_flushed: Counter,
    /// Chunks not written because another replica had stored identical ones.
    pub chunks_flush_deduped: Counter,
    /// Write-ahead log checkpoints written.
    pub wal_checkpoints: Counter,
    /// Flush batches that failed (kept in memory, retried next cycle).
    pub flush_failures: Counter,
    /// Flush cycles run.
    pub flush_cycles: Counter,
    /// How long the last flush cycle took.
    pub flush_cycle_seconds: Gauge<f64, AtomicU64>,
    /// Flushed chunks dropped from memory after the retain period.
    pub chunks_dropped: Counter,
    /// Series removed because they held nothing and were idle.
    pub series_removed: Counter,
    /// Pushes refused because too much data waits to be flushed.
    pub pushes_refused_flush_backlog: Counter,
    /// Series in memory per tenant (its active series on this ingester),
    /// as of the last rate tick (every 15 s).
    pub tenant_memory_series: Family<TenantLabel, Gauge>,
}

/// A tenant, as a label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TenantLabel {
    pub tenant: String,
}

impl IngesterMetrics {
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("strata_ingester");
        r.register(
            "memory_series",
            "Series held in memory",
            self.memory_series.clone(),
        );
        r.register(
            "memory_tenants",
            "Tenants with series in memory",
            self.memory_tenants.clone(),
        );
        r.register(
            "series_created",
            "Series created",
            self.series_created.clone(),
        );
        r.register(
            "samples_appended",
            "Samples appended to series",
            self.samples_appended.clone(),
        );
        r.register(
            "tenant_memory_series",
            "Series in memory per tenant (updated every 15 s)",
            self.tenant_memory_series.clone(),
        );
        r.register(
            "samples_rejected",
            "Samples refused, by reason",
            self.samples_rejected.clone(),
        );
        r.register(
            "push_requests",
            "Push calls received",
            self.push_requests.clone(),
        );
        r.register(
            "metadata_received",
            "Metric metadata entries received and kept",
            self.metadata_received.clone(),
        );
        r.register(
            "metadata_discarded",
            "Metric metadata entries dropped, by reason",
            self.metadata_discarded.clone(),
        );
        r.register(
            "exemplars_appended",
            "Exemplars stored",
            self.exemplars_appended.clone(),
        );
        r.register(
            "exemplars_rejected",
            "Exemplars not stored, by reason",
            self.exemplars_rejected.clone(),
        );
        r.register(
            "memory_exemplars",
            "Exemplars held in memory",
            self.memory_exemplars.clone(),
        );
        r.register(
            "chunks_cut_by_age_sweep",
            "Open chunks closed by the periodic sweep because their first sample is older than max_chunk_age",
            self.chunks_cut_by_age_sweep.clone(),
        );
        r.register(
            "chunk_age_sweeps",
            "Chunk-age sweeps run",
            self.chunk_age_sweeps.clone(),
        );
        r.register(
            "chunk_age_sweep_duration_seconds",
            "How long the last chunk-age sweep took",
            self.chunk_age_sweep_seconds.clone(),
        );
        r.register(
            "unflushed_bytes",
            "Bytes of closed chunks not yet in long-term storage",
            self.unflushed_bytes.clone(),
        );
        r.register(
            "flush_queue_series",
            "Series with closed chunks waiting to be flushed at the last flush cycle",
            self.flush_queue_series.clone(),
        );
        r.register(
            "flush_queue_oldest_seconds",
            "Seconds since the end of the window of the oldest chunk waiting to be flushed",
            self.flush_queue_oldest_seconds.clone(),
        );
        r.register(
            "chunks_flushed",
            "Chunks written to long-term storage",
            self.chunks_flushed.clone(),
        );
        r.register(
            "chunk_bytes_flushed",
            "Chunk bytes written to long-term storage",
            self.chunk_bytes_flushed.clone(),
        );
        r.register(
            "chunks_flush_deduped",
            "Chunks not written because another replica already stored identical ones",
            self.chunks_flush_deduped.clone(),
        );
        r.register(
            "wal_checkpoints",
            "Write-ahead log checkpoints written",
            self.wal_checkpoints.clone(),
        );
        r.register(
            "flush_failures",
            "Flush batches that failed; their chunks stay in memory and are retried",
            self.flush_failures.clone(),
        );
        r.register(
            "flush_cycles",
            "Flush cycles run",
            self.flush_cycles.clone(),
        );
        r.register(
            "flush_cycle_duration_seconds",
            "How long the last flush cycle took",
            self.flush_cycle_seconds.clone(),
        );
        r.register(
            "chunks_dropped",
            "Flushed chunks dropped from memory after the retain period",
            self.chunks_dropped.clone(),
        );
        r.register(
            "series_removed",
            "Series removed from memory because they held no data and received no samples",
            self.series_removed.clone(),
        );
        r.register(
            "pushes_refused_flush_backlog",
            "Pushes refused (retryable) because unflushed data passed ingester.max_unflushed_bytes",
            self.pushes_refused_flush_backlog.clone(),
        );
    }

    pub(crate) fn rejected(&self, tenant: &str, reason: &str, n: u64) {
        self.samples_rejected
            .get_or_create(&TenantReasonLabel {
                tenant: tenant.to_string(),
                reason: reason.to_string(),
            })
            .inc_by(n);
    }
}
