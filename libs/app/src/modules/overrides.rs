//! The overrides module: loads the runtime overrides file
//! (`runtime_config.file`) before anything else starts, reloads it every
//! `runtime_config.reload_period`, and gives the other modules the shared
//! [`Overrides`] handle through the context, which they pass to the objects
//! they build (distributor, ingester, querier, ruler), so each reads a
//! tenant's limits on every request. Serves `GET /runtime_config`: the
//! effective limits of every tenant that has overrides or static
//! `tenant_limits`, as YAML; `?mode=diff` shows only what differs from the
//! defaults (the components' `limits` sections).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Serialize;
use strata_distributor::{DistributorConfig, DistributorLimits};
use strata_ingester::{IngesterConfig, Limits as IngesterLimits};
use strata_overrides::{Overrides, ReloadMetrics, Reloader, TenantOverrides};
use strata_querier::{QuerierConfig, QueryLimits};
use strata_ruler::{RulerConfig, RulerLimits};

use super::{Context, Module, Nothing};
use crate::config::Config;

pub async fn init(ctx: &mut Context) -> anyhow::Result<Box<dyn Module>> {
    let overrides = Overrides::new();
    let section = ctx.config.runtime_config.clone();
    if !section.file.is_empty() {
        let metrics = ReloadMetrics::default();
        ctx.metrics.register(|r| metrics.register(r));
        let reloader = Arc::new(Reloader::new(&section.file, overrides.clone(), metrics));
        // Without its limits a process must not start: a broken file is an
        // error now, and only later reloads keep the last good version.
        reloader
            .load_initial()
            .context("runtime_config.file: cannot start with this overrides file")?;
        ctx.tasks.push(tokio::spawn(
            reloader.run(section.reload_period, ctx.shutdown.clone()),
        ));
    }
    let view = Arc::new(RuntimeConfigView::new(&ctx.config, overrides.clone()));
    ctx.add_routes(
        Router::new()
            .route("/runtime_config", get(runtime_config))
            .with_state(view),
    );
    ctx.add_link(
        "/runtime_config",
        "Runtime overrides: effective per-tenant limits (?mode=diff: only what differs from the defaults)",
    );
    ctx.overrides = Some(overrides);
    Ok(Box::new(Nothing))
}

/// The static limits of every component and the overrides handle: what
/// `/runtime_config` shows.
pub struct RuntimeConfigView {
    file: String,
    distributor: DistributorConfig,
    ingester: IngesterConfig,
    querier: QuerierConfig,
    ruler: RulerConfig,
    overrides: Overrides,
}

/// The page, in the file's shape.
#[derive(Serialize)]
struct Page {
    overrides: BTreeMap<String, TenantOverrides>,
}

impl RuntimeConfigView {
    pub fn new(config: &Config, overrides: Overrides) -> Self {
        Self {
            file: config.runtime_config.file.clone(),
            distributor: config.distributor.clone(),
            ingester: config.ingester.clone(),
            querier: config.querier.clone(),
            ruler: config.ruler.clone(),
            overrides,
        }
    }

    /// The limits of a tenant with no overrides and no static entry.
    pub fn defaults(&self) -> TenantOverrides {
        flat(
            &self.distributor.limits,
            &self.ingester.limits,
            &self.querier.default_limits(),
            &self.ruler.limits,
            Duration::ZERO,
        )
    }

    /// The limits in force for `tenant`, every field set, as the
    /// components compute them.
    pub fn effective(&self, tenant: &str) -> TenantOverrides {
        let o = &self.overrides;
        let retention = o.get(tenant).and_then(|t| t.retention);
        flat(
            &self.distributor.effective_limits(tenant, o),
            &self.ingester.limits_for(tenant, o),
            &self.querier.limits_for(tenant, o),
            &self.ruler.effective_limits(tenant, o),
            retention.unwrap_or_default(),
        )
    }

    /// Tenants with an entry in the overrides file or a static
    /// `tenant_limits` entry, sorted.
    fn tenants(&self) -> BTreeSet<String> {
        let snapshot = self.overrides.snapshot();
        snapshot
            .tenants()
            .into_iter()
            .map(str::to_string)
            .chain(self.distributor.tenant_limits.keys().cloned())
            .chain(self.ruler.tenant_limits.keys().cloned())
            .collect()
    }

    /// The page as YAML: every tenant's effective limits, or with `diff`
    /// only the fields that differ from [`RuntimeConfigView::defaults`].
    pub fn render(&self, diff: bool) -> String {
        let defaults = self.defaults();
        let overrides = self
            .tenants()
            .into_iter()
            .map(|tenant| {
                let effective = self.effective(&tenant);
                let shown = if diff {
                    effective.diff(&defaults)
                } else {
                    effective
                };
                (tenant, shown)
            })
            .collect();
        let mut out = String::new();
        if !self.file.is_empty() {
            let snapshot = self.overrides.snapshot();
            out.push_str(&format!(
                "# runtime config file {} (hash {}, loaded at {} Unix seconds)\n",
                self.file,
                snapshot.hash,
                snapshot.loaded_at_ms / 1000
            ));
        }
        match serde_yaml::to_string(&Page { overrides }) {
            Ok(text) => out.push_str(&text),
            Err(e) => out.push_str(&format!("# cannot write the page: {e}\n")),
        }
        out
    }
}

/// The components' limits as one flat set of fields.
fn flat(
    d: &DistributorLimits,
    i: &IngesterLimits,
    q: &QueryLimits,
    r: &RulerLimits,
    retention: Duration,
) -> TenantOverrides {
    TenantOverrides {
        ingestion_rate: Some(d.ingestion_rate),
        ingestion_burst_size: Some(d.ingestion_burst_size),
        ingestion_tenant_shard_size: Some(d.ingestion_tenant_shard_size),
        max_label_names_per_series: Some(d.max_label_names_per_series),
        max_label_name_length: Some(d.max_label_name_length),
        max_label_value_length: Some(d.max_label_value_length),
        creation_grace_period: Some(d.creation_grace_period),
        reject_old_samples_max_age: Some(d.reject_old_samples_max_age),
        max_metadata_length: Some(d.max_metadata_length),
        max_series_per_tenant: Some(i.max_series_per_tenant),
        max_series_per_metric: Some(i.max_series_per_metric),
        max_metadata_per_tenant: Some(i.max_metadata_per_tenant),
        max_global_series_per_tenant: Some(i.max_global_series_per_tenant),
        max_global_series_per_metric: Some(i.max_global_series_per_metric),
        max_samples_per_query: Some(q.max_samples),
        max_series_per_query: Some(q.max_series),
        max_query_memory: Some(q.max_query_memory),
        max_query_length: Some(q.max_query_length),
        max_query_lookback: Some(q.max_query_lookback),
        ruler_max_rule_groups: Some(r.max_rule_groups),
        ruler_max_rules_per_group: Some(r.max_rules_per_group),
        ruler_min_evaluation_interval: Some(r.min_evaluation_interval),
        alertmanager_urls: Some(r.alertmanager_urls.clone()),
        retention: Some(retention),
    }
}

async fn runtime_config(
    State(view): State<Arc<RuntimeConfigView>>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let diff = match params.get("mode").map(String::as_str) {
        None | Some("") => false,
        Some("diff") => true,
        Some(other) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("unknown mode {other:?}: leave it out for every tenant's effective limits, or use mode=diff for what differs from the defaults\n"),
            )
                .into_response();
        }
    };
    (
        [("content-type", "text/plain; charset=utf-8")],
        view.render(diff),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_overrides::{RuntimeConfigFile, Snapshot};
    use tower::ServiceExt;

    fn config() -> Config {
        let mut c = Config::default();
        c.distributor.limits.ingestion_rate = 1000.0;
        c.distributor.tenant_limits.insert(
            "static".into(),
            DistributorLimits {
                ingestion_rate: 2000.0,
                ..c.distributor.limits.clone()
            },
        );
        c
    }

    fn load(handle: &Overrides, text: &str) {
        handle.replace(Snapshot::new(
            RuntimeConfigFile::parse(text).unwrap(),
            "abc".into(),
            5000,
        ));
    }

    fn page(text: &str) -> BTreeMap<String, BTreeMap<String, serde_yaml::Value>> {
        #[derive(serde::Deserialize)]
        struct Page {
            overrides: BTreeMap<String, BTreeMap<String, serde_yaml::Value>>,
        }
        serde_yaml::from_str::<Page>(text).unwrap().overrides
    }

    /// File over static `tenant_limits` over `limits`, as the page shows
    /// them (the components compute the same, see their own tests).
    #[test]
    fn effective_limits_follow_the_precedence() {
        let overrides = Overrides::new();
        let view = RuntimeConfigView::new(&config(), overrides.clone());
        assert_eq!(view.effective("nobody"), view.defaults());
        assert_eq!(view.effective("static").ingestion_rate, Some(2000.0));
        load(
            &overrides,
            "overrides:\n  static:\n    ingestion_rate: 3000\n  t1:\n    max_series_per_query: 2\n    retention: 90d\n",
        );
        let s = view.effective("static");
        assert_eq!(s.ingestion_rate, Some(3000.0));
        assert_eq!(s.max_series_per_query, Some(0));
        let t1 = view.effective("t1");
        assert_eq!(t1.ingestion_rate, Some(1000.0));
        assert_eq!(t1.max_series_per_query, Some(2));
        assert_eq!(t1.retention, Some(Duration::from_secs(90 * 86_400)));
    }

    #[test]
    fn page_shows_effective_values_or_the_diff() {
        let overrides = Overrides::new();
        let view = RuntimeConfigView::new(&config(), overrides.clone());
        load(
            &overrides,
            "overrides:\n  t1:\n    ingestion_rate: 10\n    max_series_per_query: 2\n    max_query_lookback: 30d\n  same:\n    ingestion_rate: 1000\n",
        );
        let full = page(&view.render(false));
        assert_eq!(
            full.keys().collect::<Vec<_>>(),
            ["same", "static", "t1"],
            "file and static tenants"
        );
        let t1 = &full["t1"];
        assert_eq!(t1["ingestion_rate"], serde_yaml::Value::from(10.0));
        assert_eq!(t1["max_series_per_query"], serde_yaml::Value::from(2));
        assert_eq!(t1["max_query_lookback"], serde_yaml::Value::from("720h"));
        // Every field is shown, defaults included.
        assert_eq!(
            t1["max_samples_per_query"],
            serde_yaml::Value::from(50_000_000)
        );
        assert_eq!(t1.len(), 24);

        let diff = page(&view.render(true));
        let t1 = &diff["t1"];
        assert_eq!(
            t1.keys().collect::<Vec<_>>(),
            [
                "ingestion_rate",
                "max_query_lookback",
                "max_series_per_query"
            ]
        );
        assert_eq!(
            diff["static"].keys().collect::<Vec<_>>(),
            ["ingestion_rate"]
        );
        assert!(
            diff["same"].is_empty(),
            "equal to the default: {:?}",
            diff["same"]
        );
    }

    #[tokio::test]
    async fn served_at_runtime_config() {
        let overrides = Overrides::new();
        load(
            &overrides,
            "overrides:\n  t1:\n    max_series_per_query: 2\n",
        );
        let mut c = config();
        c.runtime_config.file = "/etc/strata/overrides.yaml".into();
        let router = Router::new()
            .route("/runtime_config", get(runtime_config))
            .with_state(Arc::new(RuntimeConfigView::new(&c, overrides.clone())));
        let fetch = |uri: &'static str| {
            let router = router.clone();
            async move {
                let resp = router
                    .oneshot(
                        axum::http::Request::builder()
                            .uri(uri)
                            .body(axum::body::Body::empty())
                            .unwrap(),
                    )
                    .await
                    .unwrap();
                let status = resp.status().as_u16();
                let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
                    .await
                    .unwrap();
                (status, String::from_utf8(body.to_vec()).unwrap())
            }
        };
        let (code, text) = fetch("/runtime_config?mode=diff").await;
        assert_eq!(code, 200, "{text}");
        assert!(
            text.starts_with("# runtime config file /etc/strata/overrides.yaml (hash abc"),
            "{text}"
        );
        assert!(
            text.contains("  t1:\n    max_series_per_query: 2\n"),
            "{text}"
        );
        // A reload shows at the next request.
        load(
            &overrides,
            "overrides:\n  t1:\n    max_series_per_query: 10\n",
        );
        let (_, text) = fetch("/runtime_config").await;
        assert!(text.contains("    max_series_per_query: 10\n"), "{text}");
        assert!(
            text.contains("    max_samples_per_query: 50000000\n"),
            "{text}"
        );
        let (code, text) = fetch("/runtime_config?mode=bogus").await;
        assert_eq!(code, 400, "{text}");
    }
}
