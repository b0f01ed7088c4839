use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use strata_overrides::{apply, Overrides, TenantOverrides};

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
    /// Shuffle sharding: the tenant's series go to this many ingesters
    /// (its shard, chosen deterministically from its ID, zone-balanced),
    /// and its reads ask only those; 0 = every ingester.
    pub ingestion_tenant_shard_size: usize,
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
            ingestion_tenant_shard_size: 0,
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
    /// Deduplication of Prometheus HA pairs (`ha.rs`).
    pub ha_tracker: crate::ha::HaTrackerConfig,
    /// `local`: each distributor enforces a tenant's `ingestion_rate` on
    /// its own (the tenant's real limit grows with the number of
    /// distributors). `global`: each enforces the rate divided by the
    /// number of healthy distributors in the distributor ring, so the
    /// tenant gets its rate however many there are (the burst stays per
    /// distributor).
    pub ingestion_rate_strategy: RateStrategy,
    /// The distributor ring (global strategy): how often a distributor
    /// renews its heartbeat; one without a heartbeat for
    /// `ring.heartbeat_timeout` no longer counts.
    #[serde(with = "strata_model::duration::serde")]
    pub ring_heartbeat_period: Duration,
}

/// How a tenant's `ingestion_rate` is shared among distributors.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RateStrategy {
    #[default]
    Local,
    Global,
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
            ha_tracker: crate::ha::HaTrackerConfig::default(),
            ingestion_rate_strategy: RateStrategy::Local,
            ring_heartbeat_period: Duration::from_secs(5),
        }
    }
}

impl DistributorLimits {
    /// These limits with the fields `o` sets replaced.
    pub fn with_overrides(mut self, o: &TenantOverrides) -> Self {
        apply(&mut self.ingestion_rate, &o.ingestion_rate);
        apply(&mut self.ingestion_burst_size, &o.ingestion_burst_size);
        apply(
            &mut self.max_label_names_per_series,
            &o.max_label_names_per_series,
        );
        apply(&mut self.max_label_name_length, &o.max_label_name_length);
        apply(&mut self.max_label_value_length, &o.max_label_value_length);
        apply(&mut self.creation_grace_period, &o.creation_grace_period);
        apply(
            &mut self.reject_old_samples_max_age,
            &o.reject_old_samples_max_age,
        );
        apply(&mut self.max_metadata_length, &o.max_metadata_length);
        apply(
            &mut self.ingestion_tenant_shard_size,
            &o.ingestion_tenant_shard_size,
        );
        self
    }
}

impl DistributorConfig {
    /// The static limits of `tenant`: its `tenant_limits` entry (a whole
    /// replacement of `limits`), else `limits`.
    pub fn limits_for(&self, tenant: &str) -> &DistributorLimits {
        self.tenant_limits.get(tenant).unwrap_or(&self.limits)
    }

    /// The limits in force for `tenant`: the runtime overrides' fields,
    /// over [`DistributorConfig::limits_for`].
    pub fn effective_limits(&self, tenant: &str, overrides: &Overrides) -> DistributorLimits {
        let limits = self.limits_for(tenant).clone();
        match overrides.get(tenant) {
            Some(o) => limits.with_overrides(&o),
            None => limits,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_overrides::RuntimeConfigFile;

    /// The runtime overrides file wins over `tenant_limits`, which wins
    /// over `limits`, field by field for the file.
    #[test]
    fn overrides_file_over_tenant_limits_over_defaults() {
        let config = DistributorConfig {
            limits: DistributorLimits {
                ingestion_rate: 100.0,
                max_label_names_per_series: 10,
                ..DistributorLimits::default()
            },
            tenant_limits: [(
                "static".to_string(),
                DistributorLimits {
                    ingestion_rate: 200.0,
                    ingestion_burst_size: 2000,
                    ..DistributorLimits::default()
                },
            )]
            .into(),
            ..DistributorConfig::default()
        };
        let overrides = Overrides::from_file(
            RuntimeConfigFile::parse(
                "overrides:\n  static:\n    ingestion_rate: 300\n  file-only:\n    max_label_name_length: 7\n    creation_grace_period: 1m\n",
            )
            .unwrap(),
        );
        // Nothing for the tenant: `limits`.
        let other = config.effective_limits("other", &overrides);
        assert_eq!(other, config.limits);
        // Static entry and the file: the file's rate, the static burst.
        let s = config.effective_limits("static", &overrides);
        assert_eq!(s.ingestion_rate, 300.0);
        assert_eq!(s.ingestion_burst_size, 2000);
        // Only the file: its fields over `limits`.
        let f = config.effective_limits("file-only", &overrides);
        assert_eq!(f.max_label_name_length, 7);
        assert_eq!(f.creation_grace_period, Duration::from_secs(60));
        assert_eq!(f.ingestion_rate, 100.0);
        assert_eq!(f.max_label_names_per_series, 10);
        // No file at all: the static precedence as before.
        let none = Overrides::new();
        assert_eq!(
            config.effective_limits("static", &none).ingestion_rate,
            200.0
        );
    }
}
