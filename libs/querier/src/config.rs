use std::time::Duration;

use serde::{Deserialize, Serialize};

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
    /// Queries evaluated at the same time by one querier; further queries
    /// wait for a slot (within their timeout).
    pub max_concurrent: usize,
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
}

impl Default for QuerierConfig {
    fn default() -> Self {
        Self {
            lookback_delta: Duration::from_secs(300),
            timeout: Duration::from_secs(120),
            max_samples: 50_000_000,
            max_series: 0,
            max_query_length: Duration::ZERO,
            max_concurrent: 20,
            query_store_after: Duration::ZERO,
            query_ingesters_within: Duration::ZERO,
            partial_response: false,
        }
    }
}
