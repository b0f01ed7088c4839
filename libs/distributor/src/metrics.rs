use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
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

/// One HA cluster of one tenant (`ha.rs`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TenantClusterLabel {
    pub tenant: String,
    pub cluster: String,
}

impl TenantClusterLabel {
    pub fn new(tenant: &str, cluster: &str) -> Self {
        Self {
            tenant: tenant.to_string(),
            cluster: cluster.to_string(),
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TenantClusterReplicaLabel {
    pub tenant: String,
    pub cluster: String,
    pub replica: String,
}

impl TenantClusterReplicaLabel {
    pub fn new(tenant: &str, cluster: &str, replica: &str) -> Self {
        Self {
            tenant: tenant.to_string(),
            cluster: cluster.to_string(),
            replica: replica.to_string(),
        }
    }
}

/// A call of the HA tracker's store (`get` or `cas`) for one cluster.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TenantClusterOpLabel {
    pub tenant: String,
    pub cluster: String,
    pub operation: String,
}

impl TenantClusterOpLabel {
    pub fn new(tenant: &str, cluster: &str, operation: &str) -> Self {
        Self {
            tenant: tenant.to_string(),
            cluster: cluster.to_string(),
            operation: operation.to_string(),
        }
    }
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
    /// Samples of HA replicas that are not elected, dropped (answered 202).
    pub ha_dropped_samples: Family<TenantClusterLabel, Counter>,
    /// Changes of a cluster's elected replica this distributor saw (the
    /// first election included).
    pub ha_elected_replica_changes: Family<TenantClusterLabel, Counter>,
    /// 1 for the replica this distributor last saw elected per cluster.
    pub ha_elected_replica: Family<TenantClusterReplicaLabel, Gauge>,
    /// Calls of the HA tracker's store.
    pub ha_kv_store_calls: Family<TenantClusterOpLabel, Counter>,
    pub ha_kv_store_failures: Family<TenantClusterOpLabel, Counter>,
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
            ha_dropped_samples: Family::default(),
            ha_elected_replica_changes: Family::default(),
            ha_elected_replica: Family::default(),
            ha_kv_store_calls: Family::default(),
            ha_kv_store_failures: Family::default(),
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
        r.register(
            "ha_dropped_samples",
            "Samples of HA replicas other than the elected one, dropped",
            self.ha_dropped_samples.clone(),
        );
        r.register(
            "ha_elected_replica_changes",
            "Times the elected replica of an HA cluster changed, as this distributor saw it",
            self.ha_elected_replica_changes.clone(),
        );
        r.register(
            "ha_elected_replica",
            "1 for the elected replica of each HA cluster, as this distributor last saw it",
            self.ha_elected_replica.clone(),
        );
        r.register(
            "ha_kv_store_calls",
            "Calls of the HA tracker's store, by operation (get, cas)",
            self.ha_kv_store_calls.clone(),
        );
        r.register(
            "ha_kv_store_failures",
            "Failed calls of the HA tracker's store, by operation",
            self.ha_kv_store_failures.clone(),
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
