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

/// Metrics the ingester exports about itself.
#[derive(Clone, Default)]
pub struct IngesterMetrics {
    pub memory_series: Gauge,
    pub memory_tenants: Gauge,
    pub series_created: Counter,
    pub samples_appended: Counter,
    pub samples_rejected: Family<ReasonLabel, Counter>,
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
    }

    pub(crate) fn rejected(&self, reason: &str, n: u64) {
        self.samples_rejected
            .get_or_create(&ReasonLabel {
                reason: reason.to_string(),
            })
            .inc_by(n);
    }
}
