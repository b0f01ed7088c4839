use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Limits applied per tenant by the distributor. Every field may be
/// overridden for one tenant in `distributor.tenant_limits`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DistributorLimits {
    /// Samples (plus exemplars and histograms) per second accepted from one
    /// tenant by one distributor; 0 disables the limit.
    pub ingestion_rate: f64,
    /// Samples a tenant may send at once above the rate.
    pub ingestion_burst_size: u64,
    pub max_label_names_per_series: usize,
    pub max_label_name_length: usize,
    pub max_label_value_length: usize,
    /// Samples further than this in the future are refused.
    #[serde(with = "strata_model::duration::serde")]
    pub creation_grace_period: Duration,
    /// Samples older than this are refused (reason
    /// `greater_than_max_sample_age`); 0 refuses only timestamps before
    /// 1970, which are always refused.
    #[serde(with = "strata_model::duration::serde")]
    pub reject_old_samples_max_age: Duration,
    /// Longest metric family name, help text or unit of a metadata entry,
    /// in bytes; longer entries are refused.
    pub max_metadata_length: usize,
}

impl Default for DistributorLimits {
    fn default() -> Self {
        Self {
            ingestion_rate: 100_000.0,
            ingestion_burst_size: 1_000_000,
            max_label_names_per_series: 30,
            max_label_name_length: 1024,
            max_label_value_length: 2048,
            creation_grace_period: Duration::from_secs(600),
            reject_old_samples_max_age: Duration::ZERO,
            max_metadata_length: 1024,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DistributorConfig {
    /// Largest compressed request body accepted (413 above).
    pub max_request_size: usize,
    /// Largest decompressed request accepted (413 above).
    pub max_decompressed_size: usize,
    /// Push requests worked on at once; more are refused at once with 503
    /// and `Retry-After` (0 = no limit).
    pub max_inflight_push_requests: usize,
    /// Bytes of push requests worked on at once, counted before they are
    /// read or decoded (the body, and twice what its snappy header says it
    /// decodes to); more are refused at once with 503 (0 = no limit).
    pub max_inflight_push_bytes: usize,
    /// Place series by hash of all their labels instead of tenant and
    /// metric name: spreads very large metrics over more ingesters, at the
    /// cost of every query without a metric name... and with one, asking all
    /// ingesters.
    pub shard_by_all_labels: bool,
    /// Deadline of one push to one ingester.
    #[serde(with = "strata_model::duration::serde")]
    pub remote_timeout: Duration,
    pub limits: DistributorLimits,
    /// Per-tenant replacements of `limits`.
    pub tenant_limits: BTreeMap<String, DistributorLimits>,
}

impl Default for DistributorConfig {
    fn default() -> Self {
        Self {
            max_request_size: 16 << 20,
            max_decompressed_size: 64 << 20,
            max_inflight_push_requests: 256,
            max_inflight_push_bytes: 512 << 20,
            shard_by_all_labels: false,
            remote_timeout: Duration::from_secs(5),
            limits: DistributorLimits::default(),
            tenant_limits: BTreeMap::new(),
        }
    }
}

impl DistributorConfig {
    pub fn limits_for(&self, tenant: &str) -> &DistributorLimits {
        self.tenant_limits.get(tenant).unwrap_or(&self.limits)
    }
}
