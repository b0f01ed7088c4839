use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Per-tenant limits enforced by the ingester.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Active series one tenant may hold in one ingester (0 = unlimited).
    pub max_series_per_tenant: usize,
    /// Active series of one metric name for one tenant (0 = unlimited).
    pub max_series_per_metric: usize,
    /// Metric families whose metadata (type, help, unit) one tenant may
    /// keep in one ingester; metadata of further families is dropped
    /// (0 = unlimited).
    pub max_metadata_per_tenant: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_series_per_tenant: 5_000_000,
            max_series_per_metric: 1_000_000,
            max_metadata_per_tenant: 10_000,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct IngesterConfig {
    /// Samples after which the open chunk of a series is closed (Prometheus
    /// uses 120).
    pub max_samples_per_chunk: usize,
    /// Span of sample time after which the open chunk is closed even if it is
    /// not full.
    #[serde(with = "strata_model::duration::serde")]
    pub max_chunk_age: Duration,
    /// How often the ingester closes the open chunk of every series whose
    /// first open sample is `max_chunk_age` older than now (wall clock), so
    /// a series that stopped receiving samples does not keep its chunk open
    /// forever. Zero disables the sweep.
    #[serde(with = "strata_model::duration::serde")]
    pub chunk_age_check_period: Duration,
    /// Series one ingester holds across all tenants before it refuses new
    /// series with a retryable error (0 = unlimited).
    pub max_series: usize,
    /// Tenants one ingester holds before it refuses new ones (0 = unlimited).
    pub max_tenants: usize,
    /// Exemplars one tenant may keep in one ingester; the oldest are
    /// overwritten beyond it (0 = exemplar storage off).
    pub max_exemplars: usize,
    pub limits: Limits,
}

impl Default for IngesterConfig {
    fn default() -> Self {
        Self {
            max_samples_per_chunk: 120,
            max_chunk_age: Duration::from_secs(2 * 3600),
            chunk_age_check_period: Duration::from_secs(60),
            max_series: 10_000_000,
            max_tenants: 100_000,
            max_exemplars: 100_000,
            limits: Limits::default(),
        }
    }
}
