use std::time::Duration;

use serde::{Deserialize, Serialize};
use strata_overrides::{apply, Overrides, TenantOverrides};

/// The `querier` section of the configuration.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct QuerierConfig {
    /// How far back an instant vector selector looks for a sample
    /// (Prometheus: 5m). The `lookback_delta` request parameter overrides it
    /// for one query.
    #[serde(with = "strata_model::duration::serde")]
    pub lookback_delta: Duration,
    /// Longest a query may take, fetching and evaluation together. The
    /// `timeout` request parameter can only shorten it.
    #[serde(with = "strata_model::duration::serde")]
    pub timeout: Duration,
    /// Most samples one query may hold decoded at once while it is
    /// evaluated (Prometheus's `--query.max-samples`).
    pub max_samples: usize,
    /// Most series one query may fetch, over all its selectors (`0` =
    /// unlimited).
    pub max_series: usize,
    /// Longest `end - start` of a range query, series, labels or label values
    /// request (`0s` = unlimited). Requests without `start`/`end` on the
    /// metadata endpoints are not limited.
    #[serde(with = "strata_model::duration::serde")]
    pub max_query_length: Duration,
    /// How far back from now queries may read (`0s` = no limit): the start
    /// of what a query, series, labels or label values request reads is
    /// moved up to `now - max_query_lookback`; what lies wholly before it
    /// reads nothing. Cortex's `max_query_lookback`.
    #[serde(with = "strata_model::duration::serde")]
    pub max_query_lookback: Duration,
    /// Queries evaluated at the same time by one querier; further queries
    /// wait for a slot (within their timeout).
    pub max_concurrent: usize,
    /// Queries of one tenant evaluated at the same time by one querier, so
    /// one tenant cannot take every slot (`0` = `max_concurrent`).
    pub max_concurrent_per_tenant: usize,
    /// Queries that may wait for a slot, over all tenants; a query beyond
    /// them is refused at once with 503.
    pub max_queued: usize,
    /// Queries of one tenant that may wait for one of its slots; beyond
    /// them 429 at once.
    pub max_queued_per_tenant: usize,
    /// Bytes one query may hold while it is evaluated (decoded samples,
    /// step vectors, subquery results; 16 bytes a point). Checked before the
    /// memory is allocated; a query that would need more fails with 422.
    /// `0` = only `max_samples` limits it.
    pub max_query_memory: usize,
    /// Bytes all the queries of this process may hold together; a query
    /// that would take the total above it fails with 422. `0` = a quarter
    /// of the memory available to the process (its cgroup's limit, or the
    /// machine's).
    pub max_memory: usize,
    /// Long-term storage is read only for the part of a query's range older
    /// than `now - query_store_after` (`0s` = for any range). Keep it below
    /// the time ingesters hold flushed data (`ingester.retain_period`) or
    /// recent flushed data is found nowhere.
    #[serde(with = "strata_model::duration::serde")]
    pub query_store_after: Duration,
    /// Ingesters are asked only for the part of a query's range newer than
    /// `now - query_ingesters_within` (`0s` = for any range).
    #[serde(with = "strata_model::duration::serde")]
    pub query_ingesters_within: Duration,
    /// When ingesters cannot give a complete answer for part of a query's
    /// range (too many replicas restarted or joined, their peers down),
    /// answer what they have with a warning instead of refusing with 503.
    /// The `partial_response` request parameter overrides it.
    pub partial_response: bool,
    /// With shuffle sharding (`distributor.limits.ingestion_tenant_shard_size`),
    /// reads also ask the ingesters that joined within this (with each, the
    /// ingester it displaced from the tenant's shard, which still holds the
    /// tenant's recent data). Keep it above the time ingesters keep data in
    /// memory.
    #[serde(with = "strata_model::duration::serde")]
    pub shuffle_sharding_lookback: Duration,
}

impl Default for QuerierConfig {
    fn default() -> Self {
        Self {
            lookback_delta: Duration::from_secs(300),
            timeout: Duration::from_secs(120),
            max_samples: 50_000_000,
            max_series: 0,
            max_query_length: Duration::ZERO,
            max_query_lookback: Duration::ZERO,
            max_concurrent: 20,
            max_concurrent_per_tenant: 10,
            max_queued: 200,
            max_queued_per_tenant: 100,
            max_query_memory: 512 << 20,
            max_memory: 0,
            query_store_after: Duration::ZERO,
            query_ingesters_within: Duration::ZERO,
            partial_response: false,
            shuffle_sharding_lookback: Duration::from_secs(12 * 3600),
        }
    }
}

/// The per-tenant query limits: this section's values, with the tenant's
/// runtime overrides laid over them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueryLimits {
    /// `max_samples` (override: `max_samples_per_query`).
    pub max_samples: usize,
    /// `max_series` (override: `max_series_per_query`); 0 = unlimited.
    pub max_series: usize,
    /// `max_query_memory`; 0 = only `max_samples` limits a query.
    pub max_query_memory: usize,
    /// 0 = unlimited.
    pub max_query_length: Duration,
    /// 0 = no limit.
    pub max_query_lookback: Duration,
}

impl QueryLimits {
    /// These limits with the fields `o` sets replaced.
    pub fn with_overrides(mut self, o: &TenantOverrides) -> Self {
        apply(&mut self.max_samples, &o.max_samples_per_query);
        apply(&mut self.max_series, &o.max_series_per_query);
        apply(&mut self.max_query_memory, &o.max_query_memory);
        apply(&mut self.max_query_length, &o.max_query_length);
        apply(&mut self.max_query_lookback, &o.max_query_lookback);
        self
    }
}

impl QuerierConfig {
    /// The limits of a tenant without overrides.
    pub fn default_limits(&self) -> QueryLimits {
        QueryLimits {
            max_samples: self.max_samples,
            max_series: self.max_series,
            max_query_memory: self.max_query_memory,
            max_query_length: self.max_query_length,
            max_query_lookback: self.max_query_lookback,
        }
    }

    /// The limits in force for `tenant`: the runtime overrides' fields over
    /// this section's (the querier has no static per-tenant limits).
    pub fn limits_for(&self, tenant: &str, overrides: &Overrides) -> QueryLimits {
        let limits = self.default_limits();
        match overrides.get(tenant) {
            Some(o) => limits.with_overrides(&o),
            None => limits,
        }
    }

    /// `max_memory`, with `0` resolved against the memory available.
    pub fn effective_max_memory(&self) -> usize {
        if self.max_memory > 0 {
            return self.max_memory;
        }
        strata_server::memory::available_memory()
            .map(|m| usize::try_from(m / 4).unwrap_or(usize::MAX))
            // Unknown machine: a budget that suits a small one.
            .unwrap_or(1 << 30)
    }
}
