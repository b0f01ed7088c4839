use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::store::GroupKey;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TenantLabel {
    pub tenant: String,
}

/// A group, as Prometheus names it: `<file>;<group>` (here the namespace).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GroupLabels {
    pub tenant: String,
    pub rule_group: String,
}

/// The ruler's metrics (registered under the caller's prefix, `strata_`).
#[derive(Clone, Default)]
pub struct RulerMetrics {
    rule_evaluations: Family<TenantLabel, Counter>,
    rule_failures: Family<TenantLabel, Counter>,
    group_evaluations: Family<GroupLabels, Counter>,
    group_missed: Family<GroupLabels, Counter>,
    group_duration: Family<GroupLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    groups_loaded: Gauge,
    syncs: Counter,
    sync_failures: Counter,
    refused_uploads: Family<ReasonLabel, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: String,
}

impl RulerMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "ruler_rule_evaluations",
            "Rule evaluations, by tenant",
            self.rule_evaluations.clone(),
        );
        registry.register(
            "ruler_rule_evaluation_failures",
            "Rule evaluations that failed (query or write), by tenant",
            self.rule_failures.clone(),
        );
        registry.register(
            "ruler_group_evaluations",
            "Evaluations of each rule group this ruler runs",
            self.group_evaluations.clone(),
        );
        registry.register(
            "ruler_group_missed_evaluations",
            "Evaluations of a group skipped because the previous one ran late",
            self.group_missed.clone(),
        );
        registry.register(
            "ruler_group_last_duration_seconds",
            "How long the last evaluation of a group took",
            self.group_duration.clone(),
        );
        registry.register(
            "ruler_groups_loaded",
            "Rule groups this ruler evaluates",
            self.groups_loaded.clone(),
        );
        registry.register(
            "ruler_syncs",
            "Re-reads of the rule store and the ruler ring",
            self.syncs.clone(),
        );
        registry.register(
            "ruler_sync_failures",
            "Re-reads of the rule store that failed",
            self.sync_failures.clone(),
        );
        registry.register(
            "ruler_refused_uploads",
            "Rule uploads refused, by reason (invalid, limit)",
            self.refused_uploads.clone(),
        );
    }

    pub fn group_labels(&self, key: &GroupKey) -> GroupLabels {
        GroupLabels {
            tenant: key.tenant.clone(),
            rule_group: format!("{};{}", key.namespace, key.group),
        }
    }

    pub fn rule_evaluated(&self, tenant: &str) {
        self.rule_evaluations
            .get_or_create(&TenantLabel {
                tenant: tenant.to_string(),
            })
            .inc();
    }

    pub fn rule_failed(&self, tenant: &str) {
        self.rule_failures
            .get_or_create(&TenantLabel {
                tenant: tenant.to_string(),
            })
            .inc();
    }

    pub fn group_evaluated(&self, labels: &GroupLabels, seconds: f64) {
        self.group_evaluations.get_or_create(labels).inc();
        self.group_duration.get_or_create(labels).set(seconds);
    }

    pub fn group_missed(&self, labels: &GroupLabels, n: u64) {
        self.group_missed.get_or_create(labels).inc_by(n);
    }

    /// A group this ruler no longer runs leaves its series.
    pub fn forget_group(&self, labels: &GroupLabels) {
        self.group_evaluations.remove(labels);
        self.group_missed.remove(labels);
        self.group_duration.remove(labels);
    }

    pub fn set_groups_loaded(&self, n: usize) {
        self.groups_loaded.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    pub fn synced(&self, ok: bool) {
        self.syncs.inc();
        if !ok {
            self.sync_failures.inc();
        }
    }

    pub fn refused(&self, reason: &str) {
        self.refused_uploads
            .get_or_create(&ReasonLabel {
                reason: reason.to_string(),
            })
            .inc();
    }
}
