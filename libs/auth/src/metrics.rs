//! Metrics of authentication and of the tenants file.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// The tenant label of a request whose tenant is not in the tenants file:
/// attackers cannot create label values.
pub const UNKNOWN_TENANT: &str = "unknown";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabels {
    pub tenant: String,
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TenantLabel {
    pub tenant: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: String,
}

#[derive(Clone, Default)]
pub struct AuthMetrics {
    /// `strata_auth_failures_total{tenant, reason}`.
    pub failures: Family<FailureLabels, Counter>,
    /// `strata_auth_successes_total{tenant}`.
    pub successes: Family<TenantLabel, Counter>,
    /// Verifications answered from the in-memory cache (no hashing).
    pub cache_hits: Counter,
    pub reloads: Family<ResultLabel, Counter>,
    pub reload_ok: Gauge,
    pub tenants: Gauge,
    pub tokens: Gauge,
}

impl AuthMetrics {
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("strata_auth");
        r.register(
            "failures",
            "Requests refused for their credentials, by tenant (unknown when not in the tenants file) and reason",
            self.failures.clone(),
        );
        r.register(
            "successes",
            "Requests authenticated, by tenant",
            self.successes.clone(),
        );
        r.register(
            "cache_hits",
            "Authentications answered from the cache of verified tokens",
            self.cache_hits.clone(),
        );
        r.register(
            "tenants_file_reloads",
            "Reads of a changed tenants file, by result (success, failure)",
            self.reloads.clone(),
        );
        r.register(
            "tenants_file_last_reload_successful",
            "1 when the tenants file as it is now was loaded, 0 when it is broken (the last good version is in force)",
            self.reload_ok.clone(),
        );
        r.register(
            "tenants",
            "Tenants in the tenants file in force",
            self.tenants.clone(),
        );
        r.register(
            "tokens",
            "Tokens in the tenants file in force",
            self.tokens.clone(),
        );
    }

    pub(crate) fn failure(&self, tenant: &str, reason: &str) {
        self.failures
            .get_or_create(&FailureLabels {
                tenant: tenant.to_string(),
                reason: reason.to_string(),
            })
            .inc();
    }

    pub(crate) fn success(&self, tenant: &str) {
        self.successes
            .get_or_create(&TenantLabel {
                tenant: tenant.to_string(),
            })
            .inc();
    }

    pub(crate) fn reload(&self, ok: bool) {
        let result = if ok { "success" } else { "failure" };
        self.reloads
            .get_or_create(&ResultLabel {
                result: result.to_string(),
            })
            .inc();
        self.reload_ok.set(i64::from(ok));
    }
}
