//! Metrics of every cache, one series per cache name.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// The `name` label: which cache.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CacheLabel {
    pub name: String,
}

/// The `name` and `op` (`get` or `set`) labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CacheOpLabel {
    pub name: String,
    pub op: String,
}

type HistogramFamily = Family<CacheOpLabel, Histogram, fn() -> Histogram>;

fn duration_histogram() -> Histogram {
    // 50 µs .. ~1.6 s
    Histogram::new(exponential_buckets(0.000_05, 2.0, 16))
}

/// Metrics shared by all caches of a process; each cache's series carry its name.
/// Cloning shares the series.
#[derive(Clone)]
pub struct CacheMetrics {
    requests: Family<CacheOpLabel, Counter>,
    keys_requested: Family<CacheLabel, Counter>,
    hits: Family<CacheLabel, Counter>,
    misses: Family<CacheLabel, Counter>,
    errors: Family<CacheOpLabel, Counter>,
    items_stored: Family<CacheLabel, Counter>,
    items_skipped: Family<CacheLabel, Counter>,
    stored_bytes: Family<CacheLabel, Gauge>,
    stored_items: Family<CacheLabel, Gauge>,
    evictions: Family<CacheLabel, Counter>,
    servers_down: Family<CacheLabel, Gauge>,
    request_duration: HistogramFamily,
}

impl Default for CacheMetrics {
    fn default() -> Self {
        Self {
            requests: Family::default(),
            keys_requested: Family::default(),
            hits: Family::default(),
            misses: Family::default(),
            errors: Family::default(),
            items_stored: Family::default(),
            items_skipped: Family::default(),
            stored_bytes: Family::default(),
            stored_items: Family::default(),
            evictions: Family::default(),
            servers_down: Family::default(),
            request_duration: Family::new_with_constructor(duration_histogram),
        }
    }
}

impl CacheMetrics {
    /// Registers every series under the prefix `strata_cache`.
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("strata_cache");
        r.register(
            "requests",
            "Cache requests (batch reads and writes), by cache and operation",
            self.requests.clone(),
        );
        r.register(
            "keys_requested",
            "Keys asked for in reads, by cache",
            self.keys_requested.clone(),
        );
        r.register("hits", "Keys found, by cache", self.hits.clone());
        r.register(
            "misses",
            "Keys not found (including those of a failed or down server), by cache",
            self.misses.clone(),
        );
        r.register(
            "errors",
            "Failed backend operations (each counted misses or lost writes, never returned), by cache and operation",
            self.errors.clone(),
        );
        r.register(
            "items_stored",
            "Items written, by cache",
            self.items_stored.clone(),
        );
        r.register(
            "items_skipped",
            "Items not written because they were larger than the cache keeps, by cache",
            self.items_skipped.clone(),
        );
        r.register(
            "stored_bytes",
            "Bytes held by an in-process cache (keys, values and per-entry overhead)",
            self.stored_bytes.clone(),
        );
        r.register(
            "stored_items",
            "Items held by an in-process cache",
            self.stored_items.clone(),
        );
        r.register(
            "evictions",
            "Items evicted from an in-process cache to make room",
            self.evictions.clone(),
        );
        r.register(
            "servers_down",
            "Memcached servers currently marked down (their keys count as misses)",
            self.servers_down.clone(),
        );
        r.register(
            "request_duration_seconds",
            "Time to answer a cache request, by cache and operation",
            self.request_duration.clone(),
        );
    }

    /// The series of one cache, looked up once so the hot path only touches atomics.
    /// (Owned lookups: holding one family's read guard while creating another series of
    /// it would deadlock.)
    pub(crate) fn bind(&self, name: &str) -> BoundMetrics {
        let l = CacheLabel {
            name: name.to_string(),
        };
        let get = CacheOpLabel {
            name: name.to_string(),
            op: "get".to_string(),
        };
        let set = CacheOpLabel {
            op: "set".to_string(),
            ..get.clone()
        };
        BoundMetrics {
            get_requests: self.requests.get_or_create_owned(&get),
            set_requests: self.requests.get_or_create_owned(&set),
            keys_requested: self.keys_requested.get_or_create_owned(&l),
            hits: self.hits.get_or_create_owned(&l),
            misses: self.misses.get_or_create_owned(&l),
            get_errors: self.errors.get_or_create_owned(&get),
            set_errors: self.errors.get_or_create_owned(&set),
            items_stored: self.items_stored.get_or_create_owned(&l),
            items_skipped: self.items_skipped.get_or_create_owned(&l),
            stored_bytes: self.stored_bytes.get_or_create_owned(&l),
            stored_items: self.stored_items.get_or_create_owned(&l),
            evictions: self.evictions.get_or_create_owned(&l),
            servers_down: self.servers_down.get_or_create_owned(&l),
            get_duration: self.request_duration.get_or_create_owned(&get),
            set_duration: self.request_duration.get_or_create_owned(&set),
        }
    }
}

/// The series of one cache name.
#[derive(Clone)]
pub(crate) struct BoundMetrics {
    pub get_requests: Counter,
    pub set_requests: Counter,
    pub keys_requested: Counter,
    pub hits: Counter,
    pub misses: Counter,
    pub get_errors: Counter,
    pub set_errors: Counter,
    pub items_stored: Counter,
    pub items_skipped: Counter,
    pub stored_bytes: Gauge,
    pub stored_items: Gauge,
    pub evictions: Counter,
    pub servers_down: Gauge,
    pub get_duration: Histogram,
    pub set_duration: Histogram,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_and_encodes_per_cache_series() {
        let m = CacheMetrics::default();
        let mut registry = Registry::default();
        m.register(&mut registry);
        let a = m.bind("chunks");
        let b = m.clone().bind("index");
        a.hits.inc_by(3);
        b.misses.inc();
        a.get_duration.observe(0.001);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry).unwrap();
        assert!(
            out.contains("strata_cache_hits_total{name=\"chunks\"} 3"),
            "{out}"
        );
        assert!(out.contains("strata_cache_misses_total{name=\"index\"} 1"));
        assert!(out
            .contains("strata_cache_request_duration_seconds_count{name=\"chunks\",op=\"get\"} 1"));
    }
}
