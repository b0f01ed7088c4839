use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TenantLabel {
    pub tenant: String,
}

/// Refusals are counted per tenant and reason, as Cortex's
/// `discarded_samples_total{user, reason}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TenantReasonLabel {
    pub tenant: String,
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabel {
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct IngesterLabel {
    pub ingester: String,
}

/// Metrics the distributor exports about itself.
#[derive(Clone)]
pub struct DistributorMetrics {
    pub received_samples: Family<TenantLabel, Counter>,
    pub discarded_samples: Family<TenantReasonLabel, Counter>,
    /// Exemplars dropped, by reason (the request still succeeds).
    pub discarded_exemplars: Family<TenantReasonLabel, Counter>,
    pub requests: Family<StatusLabel, Counter>,
    pub request_duration: Histogram,
    pub ingester_push_failures: Family<IngesterLabel, Counter>,
}

impl Default for DistributorMetrics {
    fn default() -> Self {
        Self {
            received_samples: Family::default(),
            discarded_samples: Family::default(),
            discarded_exemplars: Family::default(),
            requests: Family::default(),
            request_duration: Histogram::new(exponential_buckets(0.0005, 2.0, 16)),
            ingester_push_failures: Family::default(),
        }
    }
}

impl DistributorMetrics {
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("strata_distributor");
        r.register(
            "received_samples",
            "Samples accepted, by tenant",
            self.received_samples.clone(),
        );
        r.register(
            "discarded_samples",
            "Samples refused, by reason",
            self.discarded_samples.clone(),
        );
        r.register(
            "discarded_exemplars",
            "Exemplars dropped, by reason",
            self.discarded_exemplars.clone(),
        );
        r.register(
            "push_requests",
            "Push requests answered, by HTTP status",
            self.requests.clone(),
        );
        r.register(
            "push_duration_seconds",
            "Time to answer a push request",
            self.request_duration.clone(),
        );
        r.register(
            "ingester_push_failures",
            "Pushes to an ingester that failed",
            self.ingester_push_failures.clone(),
        );
    }

    pub(crate) fn discarded_exemplar(&self, tenant: &str, reason: &str) {
        self.discarded_exemplars
            .get_or_create(&TenantReasonLabel {
                tenant: tenant.to_string(),
                reason: reason.to_string(),
            })
            .inc();
    }

    pub(crate) fn discarded(&self, tenant: &str, reason: &str, n: u64) {
        if n > 0 {
            self.discarded_samples
                .get_or_create(&TenantReasonLabel {
                    tenant: tenant.to_string(),
                    reason: reason.to_string(),
                })
                .inc_by(n);
        }
    }
}
