//! Metrics of the index, exported under the prefix `strata_index`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// The row store a metric is about.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StoreLabel {
    pub store: String,
}

/// An index operation and the row store it ran on.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OpLabels {
    pub op: String,
    pub store: String,
}

fn duration_histogram() -> Histogram {
    // 1 ms to about 33 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// Counters and latencies of one [`crate::Index`]. Clones share the same series.
#[derive(Clone)]
pub struct IndexMetrics {
    /// Items put into the row store.
    pub items_written: Family<StoreLabel, Counter>,
    /// DynamoDB write capacity units those puts cost (computed the same way for every store).
    pub write_units: Family<StoreLabel, Counter>,
    /// Bytes of the items put, as DynamoDB counts item size.
    pub bytes_written: Family<StoreLabel, Counter>,
    /// Row queries (one hash key and range prefix each, all pages together).
    pub row_queries: Family<StoreLabel, Counter>,
    /// Items returned by row queries.
    pub items_read: Family<StoreLabel, Counter>,
    /// Duration of index operations, by operation and store.
    pub request_duration: Family<OpLabels, Histogram, fn() -> Histogram>,
}

impl Default for IndexMetrics {
    fn default() -> Self {
        Self {
            items_written: Family::default(),
            write_units: Family::default(),
            bytes_written: Family::default(),
            row_queries: Family::default(),
            items_read: Family::default(),
            request_duration: Family::new_with_constructor(duration_histogram),
        }
    }
}

impl IndexMetrics {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers every metric under `strata_index_`.
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("strata_index");
        r.register(
            "items_written",
            "Index items put into the row store",
            self.items_written.clone(),
        );
        r.register(
            "write_units",
            "DynamoDB write capacity units of the index items put (1 per started KiB per item)",
            self.write_units.clone(),
        );
        r.register(
            "bytes_written",
            "Bytes of index items put (attribute names, keys and values)",
            self.bytes_written.clone(),
        );
        r.register(
            "row_queries",
            "Row store queries (one hash key and range prefix, all pages)",
            self.row_queries.clone(),
        );
        r.register(
            "items_read",
            "Index items returned by row store queries",
            self.items_read.clone(),
        );
        r.register(
            "request_duration_seconds",
            "Duration of index operations",
            self.request_duration.clone(),
        );
    }

    pub(crate) fn store_label(store: &str) -> StoreLabel {
        StoreLabel {
            store: store.to_string(),
        }
    }

    pub(crate) fn op_labels(op: &str, store: &str) -> OpLabels {
        OpLabels {
            op: op.to_string(),
            store: store.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::text::encode;

    #[test]
    fn registers_under_the_prefix() {
        let metrics = IndexMetrics::new();
        metrics
            .items_written
            .get_or_create(&IndexMetrics::store_label("embedded"))
            .inc_by(3);
        metrics
            .request_duration
            .get_or_create(&IndexMetrics::op_labels("lookup", "embedded"))
            .observe(0.01);
        let embedded = IndexMetrics::store_label("embedded");
        for family in [
            &metrics.write_units,
            &metrics.bytes_written,
            &metrics.row_queries,
            &metrics.items_read,
        ] {
            family.get_or_create(&embedded).inc();
        }
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        let mut text = String::new();
        encode(&mut text, &registry).unwrap();
        assert!(
            text.contains("strata_index_items_written_total{store=\"embedded\"} 3"),
            "{text}"
        );
        assert!(text.contains(
            "strata_index_request_duration_seconds_count{op=\"lookup\",store=\"embedded\"} 1"
        ));
        for name in [
            "strata_index_write_units",
            "strata_index_bytes_written",
            "strata_index_row_queries",
            "strata_index_items_read",
        ] {
            assert!(text.contains(name), "{name} missing in {text}");
        }
    }
}
