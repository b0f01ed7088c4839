use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use strata_overrides::{apply, Overrides, TenantOverrides};

/// The `ruler:` section of the configuration file.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RulerConfig {
    /// Interval of groups that do not set their own.
    #[serde(with = "strata_model::duration::serde")]
    pub evaluation_interval: Duration,
    /// How often every ruler re-reads the rule groups from the rule store
    /// (a change made through another ruler's API shows up within this).
    #[serde(with = "strata_model::duration::serde")]
    pub poll_interval: Duration,
    /// Base URL of this service as users reach it; alerts link to
    /// `<external_url>/graph?...` (`generatorURL`) and templates see it as
    /// `$externalURL`.
    pub external_url: String,
    /// Labels added to every alert sent (unless the alert has them), and
    /// `$externalLabels` in templates.
    pub external_labels: BTreeMap<String, String>,
    /// Alertmanager base URLs (`http://am:9093`); alerts are posted to
    /// `<url>/api/v2/alerts` with the tenant in `X-Scope-OrgID`. Empty:
    /// alerts are evaluated and shown, not sent.
    pub alertmanager_urls: Vec<String>,
    /// Alerts waiting to be sent, per tenant; beyond it the oldest are
    /// dropped (and counted).
    pub notification_queue_capacity: usize,
    /// Deadline of one post to one Alertmanager.
    #[serde(with = "strata_model::duration::serde")]
    pub notification_timeout: Duration,
    /// A firing alert is sent again this often (and resolved alerts once
    /// more), as Prometheus's `--rules.alert.resend-delay`.
    #[serde(with = "strata_model::duration::serde")]
    pub resend_delay: Duration,
    /// After a restart, `for` state is restored from `ALERTS_FOR_STATE`
    /// if the ruler was down for less than this
    /// (`--rules.alert.for-outage-tolerance`).
    #[serde(with = "strata_model::duration::serde")]
    pub for_outage_tolerance: Duration,
    /// An alert restored after a restart fires no sooner than this after
    /// the restart (`--rules.alert.for-grace-period`).
    #[serde(with = "strata_model::duration::serde")]
    pub for_grace_period: Duration,
    /// Where rule groups are kept.
    pub storage: RuleStorageConfig,
    /// The ruler ring: which replica evaluates which group.
    pub ring: RulerRingConfig,
    pub limits: RulerLimits,
    /// Per-tenant replacements of `limits`.
    pub tenant_limits: BTreeMap<String, RulerLimits>,
}

impl Default for RulerConfig {
    fn default() -> Self {
        Self {
            evaluation_interval: Duration::from_secs(60),
            poll_interval: Duration::from_secs(60),
            external_url: "http://localhost:9009/prometheus".into(),
            external_labels: BTreeMap::new(),
            alertmanager_urls: Vec::new(),
            notification_queue_capacity: 10_000,
            notification_timeout: Duration::from_secs(10),
            resend_delay: Duration::from_secs(60),
            for_outage_tolerance: Duration::from_secs(3600),
            for_grace_period: Duration::from_secs(600),
            storage: RuleStorageConfig::default(),
            ring: RulerRingConfig::default(),
            limits: RulerLimits::default(),
            tenant_limits: BTreeMap::new(),
        }
    }
}

impl RulerConfig {
    /// The static limits of `tenant`: its `tenant_limits` entry (a whole
    /// replacement of `limits`), else `limits`.
    pub fn limits_for(&self, tenant: &str) -> &RulerLimits {
        self.tenant_limits.get(tenant).unwrap_or(&self.limits)
    }

    /// The limits in force for `tenant`: the runtime overrides' fields over
    /// [`RulerConfig::limits_for`].
    pub fn effective_limits(&self, tenant: &str, overrides: &Overrides) -> RulerLimits {
        let limits = self.limits_for(tenant).clone();
        match overrides.get(tenant) {
            Some(o) => limits.with_overrides(&o),
            None => limits,
        }
    }
}

/// What one tenant may configure.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RulerLimits {
    /// Rule groups over all namespaces (0 = no limit).
    pub max_rule_groups: usize,
    /// Rules in one group (0 = no limit).
    pub max_rules_per_group: usize,
    /// Shortest group interval accepted.
    #[serde(with = "strata_model::duration::serde")]
    pub min_evaluation_interval: Duration,
    /// This tenant's Alertmanagers instead of `ruler.alertmanager_urls`
    /// (empty = the shared list).
    pub alertmanager_urls: Vec<String>,
}

impl RulerLimits {
    /// These limits with the fields `o` sets replaced.
    pub fn with_overrides(mut self, o: &TenantOverrides) -> Self {
        apply(&mut self.max_rule_groups, &o.ruler_max_rule_groups);
        apply(&mut self.max_rules_per_group, &o.ruler_max_rules_per_group);
        apply(
            &mut self.min_evaluation_interval,
            &o.ruler_min_evaluation_interval,
        );
        apply(&mut self.alertmanager_urls, &o.alertmanager_urls);
        self
    }
}

impl Default for RulerLimits {
    fn default() -> Self {
        Self {
            max_rule_groups: 70,
            max_rules_per_group: 20,
            min_evaluation_interval: Duration::from_secs(1),
            alertmanager_urls: Vec::new(),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RuleStorageBackend {
    /// Files under `storage.local.directory` (default `<data_dir>/rules`).
    #[default]
    Local,
    /// The chunk store's S3 bucket (`storage.chunks.s3`), under the key
    /// prefix `@rules/` (a character no tenant ID may contain, so rule
    /// groups never mix with chunk objects).
    S3,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RuleStorageConfig {
    pub backend: RuleStorageBackend,
    /// Directory of the local backend; empty means `<data_dir>/rules`.
    pub directory: String,
}

/// The ruler ring. Its store is the one of the ingester ring (`ring.store`,
/// `ring.dynamodb`), under its own name.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RulerRingConfig {
    /// Ring name (the DynamoDB partition).
    pub name: String,
    pub num_tokens: usize,
    #[serde(with = "strata_model::duration::serde")]
    pub heartbeat_period: Duration,
    /// A ruler without a heartbeat for this long is dead: its groups move
    /// to the others (within this plus `poll_interval` of the ring).
    #[serde(with = "strata_model::duration::serde")]
    pub heartbeat_timeout: Duration,
    /// How often each ruler re-reads the ring.
    #[serde(with = "strata_model::duration::serde")]
    pub poll_interval: Duration,
}

impl Default for RulerRingConfig {
    fn default() -> Self {
        Self {
            name: "ruler".into(),
            num_tokens: 128,
            heartbeat_period: Duration::from_secs(5),
            heartbeat_timeout: Duration::from_secs(60),
            poll_interval: Duration::from_secs(1),
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
        let config = RulerConfig {
            limits: RulerLimits {
                max_rule_groups: 5,
                ..RulerLimits::default()
            },
            tenant_limits: [(
                "static".to_string(),
                RulerLimits {
                    max_rule_groups: 50,
                    alertmanager_urls: vec!["http://static:9093".into()],
                    ..RulerLimits::default()
                },
            )]
            .into(),
            ..RulerConfig::default()
        };
        let overrides = Overrides::from_file(
            RuntimeConfigFile::parse(
                "overrides:\n  static:\n    ruler_max_rule_groups: 500\n  file-only:\n    ruler_min_evaluation_interval: 1m\n    alertmanager_urls: [http://own:9093]\n",
            )
            .unwrap(),
        );
        assert_eq!(config.effective_limits("other", &overrides), config.limits);
        let s = config.effective_limits("static", &overrides);
        assert_eq!(s.max_rule_groups, 500);
        assert_eq!(s.alertmanager_urls, ["http://static:9093"]);
        let f = config.effective_limits("file-only", &overrides);
        assert_eq!(f.max_rule_groups, 5);
        assert_eq!(f.min_evaluation_interval, Duration::from_secs(60));
        assert_eq!(f.alertmanager_urls, ["http://own:9093"]);
        assert_eq!(
            config
                .effective_limits("static", &Overrides::new())
                .max_rule_groups,
            50
        );
    }
}
