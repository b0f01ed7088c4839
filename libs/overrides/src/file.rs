//! The runtime config file: `overrides`, a map from tenant ID to the
//! limits that tenant gets instead of the static ones.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::OverridesError;

/// One tenant's overrides: every field optional, an unset field meaning
/// the value the service would use without the file (the tenant's entry in
/// a component's static `tenant_limits`, else that component's `limits`).
///
/// Names follow Cortex and Mimir where they have one (`ingestion_rate`,
/// `ingestion_burst_size`, `max_label_names_per_series`, ...), and
/// Strata's own configuration keys otherwise (`max_series_per_tenant`:
/// Strata's per-ingester limit, Cortex's `max_series_per_user`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TenantOverrides {
    // Distributor (`distributor.limits`).
    /// Samples (plus exemplars) per second accepted from the tenant by one
    /// distributor; 0 = unlimited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ingestion_rate: Option<f64>,
    /// Size of the tenant's token bucket.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ingestion_burst_size: Option<u64>,
    /// Ingesters the tenant's series are spread over (its shuffle shard);
    /// 0 = all of them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ingestion_tenant_shard_size: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_label_names_per_series: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_label_name_length: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_label_value_length: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none", with = "opt_duration")]
    pub creation_grace_period: Option<Duration>,
    #[serde(skip_serializing_if = "Option::is_none", with = "opt_duration")]
    pub reject_old_samples_max_age: Option<Duration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_metadata_length: Option<usize>,

    // Ingester (`ingester.limits`).
    /// Series the tenant may hold in one ingester; 0 = unlimited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_series_per_tenant: Option<usize>,
    /// Series of one metric name the tenant may hold in one ingester.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_series_per_metric: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_metadata_per_tenant: Option<usize>,
    /// Series the tenant may hold in the whole cluster (each ingester
    /// enforces its share: this × replication factor ÷ the ingesters of the
    /// tenant's shard); 0 = no global limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_global_series_per_tenant: Option<usize>,
    /// The same for the series of one metric name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_global_series_per_metric: Option<usize>,

    // Querier (`querier`).
    /// `querier.max_samples` for the tenant's queries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_samples_per_query: Option<usize>,
    /// `querier.max_series` for the tenant's queries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_series_per_query: Option<usize>,
    /// `querier.max_query_memory` for the tenant's queries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_query_memory: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none", with = "opt_duration")]
    pub max_query_length: Option<Duration>,
    /// How far back the tenant's queries may read; 0 = no limit.
    #[serde(skip_serializing_if = "Option::is_none", with = "opt_duration")]
    pub max_query_lookback: Option<Duration>,

    // Ruler (`ruler.limits`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ruler_max_rule_groups: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ruler_max_rules_per_group: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none", with = "opt_duration")]
    pub ruler_min_evaluation_interval: Option<Duration>,
    /// The tenant's own Alertmanagers (empty: `ruler.alertmanager_urls`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alertmanager_urls: Option<Vec<String>>,

    // Storage.
    /// How long the tenant's data is kept. Stored and shown; not enforced
    /// yet (see docs/operations.md, "Runtime overrides").
    #[serde(skip_serializing_if = "Option::is_none", with = "opt_duration")]
    pub retention: Option<Duration>,
}

impl TenantOverrides {
    /// Whether no field is set.
    pub fn is_empty(&self) -> bool {
        *self == TenantOverrides::default()
    }

    /// The fields of `self` whose value differs from `base`'s (a field set
    /// here and unset there counts as different). Compares the fields as
    /// they are written in the file.
    pub fn diff(&self, base: &TenantOverrides) -> TenantOverrides {
        let (Ok(mine), Ok(theirs)) = (to_mapping(self), to_mapping(base)) else {
            return self.clone();
        };
        let kept: serde_yaml::Mapping = mine
            .into_iter()
            .filter(|(k, v)| theirs.get(k) != Some(v))
            .collect();
        serde_yaml::from_value(serde_yaml::Value::Mapping(kept)).unwrap_or_else(|_| self.clone())
    }

    /// Checks what serde cannot: numbers in range and URLs that can be
    /// posted to. The error names the field.
    fn validate(&self) -> Result<(), String> {
        if let Some(rate) = self.ingestion_rate {
            if !rate.is_finite() || rate < 0.0 {
                return Err(format!(
                    "ingestion_rate: {rate} is not a number of samples per second (0 or more; 0 = unlimited)"
                ));
            }
        }
        for url in self.alertmanager_urls.iter().flatten() {
            let scheme_ok = url.starts_with("http://") || url.starts_with("https://");
            if !scheme_ok || url.split("://").nth(1).is_none_or(str::is_empty) {
                return Err(format!(
                    "alertmanager_urls: {url:?} is not an http:// or https:// URL"
                ));
            }
        }
        Ok(())
    }
}

fn to_mapping(o: &TenantOverrides) -> Result<serde_yaml::Mapping, serde_yaml::Error> {
    match serde_yaml::to_value(o)? {
        serde_yaml::Value::Mapping(m) => Ok(m),
        _ => Ok(serde_yaml::Mapping::new()),
    }
}

/// The whole file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeConfigFile {
    /// Per tenant ID.
    pub overrides: BTreeMap<String, TenantOverrides>,
}

impl RuntimeConfigFile {
    /// Parses and validates the file's text. An empty file has no
    /// overrides. Unknown fields are errors that name the field and where
    /// it is (`overrides.team-a: unknown field ...`).
    pub fn parse(text: &str) -> Result<Self, OverridesError> {
        let parsed: Option<RuntimeConfigFile> =
            serde_yaml::from_str(text).map_err(|e| OverridesError::Invalid(e.to_string()))?;
        let file = parsed.unwrap_or_default();
        for (tenant, overrides) in &file.overrides {
            strata_model::validate_tenant_id(tenant).map_err(|e| {
                OverridesError::Invalid(format!("overrides: tenant ID {tenant:?}: {e}"))
            })?;
            overrides
                .validate()
                .map_err(|e| OverridesError::Invalid(format!("overrides.{tenant}.{e}")))?;
        }
        Ok(file)
    }
}

/// `Option<Duration>` written as Prometheus durations (`15s`, `7d`).
mod opt_duration {
    use std::time::Duration;

    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&strata_model::duration::format_duration(*d)),
            None => s.serialize_none(),
        }
    }

    /// A duration as text (`15s`), or a bare number of seconds (`0`).
    /// A visitor rather than an untagged enum, so errors keep the field's
    /// path.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        d.deserialize_option(OptionVisitor)
    }

    struct OptionVisitor;

    impl<'de> serde::de::Visitor<'de> for OptionVisitor {
        type Value = Option<Duration>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a duration such as 15s, 5m, 2h or 7d")
        }

        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(DurationVisitor).map(Some)
        }
    }

    struct DurationVisitor;

    impl serde::de::Visitor<'_> for DurationVisitor {
        type Value = Duration;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a duration such as 15s, 5m, 2h or 7d")
        }

        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Duration, E> {
            Ok(Duration::from_secs(v))
        }

        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Duration, E> {
            u64::try_from(v)
                .map(Duration::from_secs)
                .map_err(|_| E::custom(format!("negative duration {v}")))
        }

        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Duration, E> {
            strata_model::duration::parse_duration(v).map_err(E::custom)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
overrides:
  team-a:
    ingestion_rate: 5000
    ingestion_burst_size: 10000
    max_series_per_tenant: 100000
    max_series_per_metric: 20000
    max_label_names_per_series: 30
    max_label_name_length: 1024
    max_label_value_length: 2048
    max_samples_per_query: 1000000
    max_series_per_query: 10000
    max_query_length: 7d
    max_query_lookback: 30d
    ruler_max_rule_groups: 10
    ruler_max_rules_per_group: 20
    ruler_min_evaluation_interval: 15s
    alertmanager_urls: [http://am:9093]
    retention: 90d
  team-b:
    max_query_lookback: 0
"#;

    #[test]
    fn parses_every_field() {
        let file = RuntimeConfigFile::parse(EXAMPLE).unwrap();
        let a = &file.overrides["team-a"];
        assert_eq!(a.ingestion_rate, Some(5000.0));
        assert_eq!(a.ingestion_burst_size, Some(10_000));
        assert_eq!(a.max_series_per_tenant, Some(100_000));
        assert_eq!(a.max_series_per_metric, Some(20_000));
        assert_eq!(a.max_label_names_per_series, Some(30));
        assert_eq!(a.max_label_name_length, Some(1024));
        assert_eq!(a.max_label_value_length, Some(2048));
        assert_eq!(a.max_samples_per_query, Some(1_000_000));
        assert_eq!(a.max_series_per_query, Some(10_000));
        assert_eq!(a.max_query_length, Some(Duration::from_secs(7 * 86_400)));
        assert_eq!(a.max_query_lookback, Some(Duration::from_secs(30 * 86_400)));
        assert_eq!(a.ruler_max_rule_groups, Some(10));
        assert_eq!(a.ruler_max_rules_per_group, Some(20));
        assert_eq!(
            a.ruler_min_evaluation_interval,
            Some(Duration::from_secs(15))
        );
        assert_eq!(
            a.alertmanager_urls,
            Some(vec!["http://am:9093".to_string()])
        );
        assert_eq!(a.retention, Some(Duration::from_secs(90 * 86_400)));
        assert_eq!(a.max_query_memory, None, "unset fields stay unset");
        let b = &file.overrides["team-b"];
        assert_eq!(b.max_query_lookback, Some(Duration::ZERO));
        assert!(TenantOverrides {
            max_query_lookback: None,
            ..b.clone()
        }
        .is_empty());
    }

    #[test]
    fn empty_files_have_no_overrides() {
        for text in ["", "\n", "# nothing\n", "overrides:\n", "overrides: {}\n"] {
            let file = RuntimeConfigFile::parse(text).unwrap();
            assert!(file.overrides.is_empty(), "{text:?}");
        }
    }

    #[test]
    fn unknown_fields_are_errors_naming_them() {
        let err = RuntimeConfigFile::parse("overrides:\n  team-a:\n    max_serie_per_tenant: 5\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("max_serie_per_tenant"), "{err}");
        assert!(err.contains("team-a"), "{err}");
        let err = RuntimeConfigFile::parse("overide:\n  team-a: {}\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("overide"), "{err}");
    }

    #[test]
    fn bad_values_are_errors_naming_the_field() {
        let cases = [
            (
                "overrides:\n  a:\n    ingestion_rate: -1\n",
                "ingestion_rate",
            ),
            (
                "overrides:\n  a:\n    ingestion_rate: .nan\n",
                "ingestion_rate",
            ),
            (
                "overrides:\n  a:\n    ingestion_burst_size: -5\n",
                "ingestion_burst_size",
            ),
            (
                "overrides:\n  a:\n    max_query_length: 5x\n",
                "max_query_length",
            ),
            (
                "overrides:\n  a:\n    alertmanager_urls: [am:9093]\n",
                "alertmanager_urls",
            ),
            (
                "overrides:\n  \"bad/tenant\":\n    ingestion_rate: 1\n",
                "bad/tenant",
            ),
            ("overrides: [1, 2]\n", "overrides"),
        ];
        for (text, field) in cases {
            let err = RuntimeConfigFile::parse(text).unwrap_err().to_string();
            assert!(err.contains(field), "{text:?}: {err}");
        }
    }

    #[test]
    fn diff_keeps_what_differs() {
        let base = TenantOverrides {
            ingestion_rate: Some(100.0),
            max_series_per_query: Some(0),
            max_query_length: Some(Duration::ZERO),
            ..TenantOverrides::default()
        };
        let mine = TenantOverrides {
            ingestion_rate: Some(100.0),
            max_series_per_query: Some(2),
            max_query_length: Some(Duration::ZERO),
            retention: Some(Duration::from_secs(3600)),
            ..TenantOverrides::default()
        };
        assert_eq!(
            mine.diff(&base),
            TenantOverrides {
                max_series_per_query: Some(2),
                retention: Some(Duration::from_secs(3600)),
                ..TenantOverrides::default()
            }
        );
        assert!(base.diff(&base).is_empty());
    }

    #[test]
    fn writes_back_what_it_reads() {
        let file = RuntimeConfigFile::parse(EXAMPLE).unwrap();
        let text = serde_yaml::to_string(&file).unwrap();
        assert!(text.contains("max_query_length: 168h"), "{text}");
        assert_eq!(RuntimeConfigFile::parse(&text).unwrap(), file);
    }
}
