//! The notifier's metrics.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct TenantLabel {
    pub(crate) tenant: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct AlertmanagerLabels {
    pub(crate) tenant: String,
    /// The alerts endpoint, `http://host:9093/api/v2/alerts`, without
    /// credentials.
    pub(crate) alertmanager: String,
}

/// Metrics of alert delivery, shared by every tenant of a
/// [`NotifierManager`](crate::NotifierManager). Cloning shares the
/// underlying series.
///
/// [`register`](Self::register) uses names without the `strata_` prefix,
/// like the querier's `ApiMetrics`: register into
/// `registry.sub_registry_with_prefix("strata")` to get
///
/// | metric | labels |
/// |---|---|
/// | `strata_ruler_notifications_sent_total` | `tenant`, `alertmanager` |
/// | `strata_ruler_notifications_errors_total` | `tenant`, `alertmanager` |
/// | `strata_ruler_notifications_dropped_total` | `tenant` |
/// | `strata_ruler_notifications_queue_length` | `tenant` |
/// | `strata_ruler_notifications_queue_capacity` | |
/// | `strata_ruler_notification_latency_seconds` (histogram) | |
///
/// As in Prometheus, `sent` and `errors` count alerts (not requests) per
/// Alertmanager; `dropped` counts alerts that reached no Alertmanager:
/// pushed out of a full queue, in a batch that every Alertmanager refused,
/// or still queued when the drain at shutdown ran out of time.
#[derive(Clone, Debug)]
pub struct NotifierMetrics {
    pub(crate) sent: Family<AlertmanagerLabels, Counter>,
    pub(crate) errors: Family<AlertmanagerLabels, Counter>,
    pub(crate) dropped: Family<TenantLabel, Counter>,
    pub(crate) queue_length: Family<TenantLabel, Gauge>,
    pub(crate) queue_capacity: Gauge,
    pub(crate) latency: Histogram,
}

/// Seconds to post one batch to one Alertmanager: Prometheus's default
/// buckets, which cover the 10 s default timeout.
const LATENCY_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

impl Default for NotifierMetrics {
    fn default() -> Self {
        Self {
            sent: Family::default(),
            errors: Family::default(),
            dropped: Family::default(),
            queue_length: Family::default(),
            queue_capacity: Gauge::default(),
            latency: Histogram::new(LATENCY_BUCKETS),
        }
    }
}

impl NotifierMetrics {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers the metrics under the names in the table above, less the
    /// `strata_` prefix (counters get their `_total` suffix from the
    /// registry).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "ruler_notifications_sent",
            "Alerts sent to Alertmanager, by tenant and Alertmanager",
            self.sent.clone(),
        );
        registry.register(
            "ruler_notifications_errors",
            "Alerts affected by errors when sending to Alertmanager, by tenant and Alertmanager",
            self.errors.clone(),
        );
        registry.register(
            "ruler_notifications_dropped",
            "Alerts dropped without reaching any Alertmanager (queue full, every Alertmanager failed, or shutdown)",
            self.dropped.clone(),
        );
        registry.register(
            "ruler_notifications_queue_length",
            "Alerts waiting in the tenant's notification queue",
            self.queue_length.clone(),
        );
        registry.register(
            "ruler_notifications_queue_capacity",
            "Capacity of each tenant's notification queue",
            self.queue_capacity.clone(),
        );
        registry.register(
            "ruler_notification_latency_seconds",
            "Time to post a batch of alerts to one Alertmanager, successful posts only",
            self.latency.clone(),
        );
    }
}
