//! Ruler limits from the runtime overrides file: uploads are checked
//! against the limits in force at the time, and a tenant's Alertmanager
//! URLs changed in the file reach the notifier at the next sync, for groups
//! already running.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use strata_overrides::{Overrides, RuntimeConfigFile, Snapshot};
use strata_remote_write::OwnedTimeSeries;
use strata_ruler::{
    ruler_routes, GroupDeps, RuleQuerier, RuleStore, RuleWriter, RulerConfig, RulerManager,
    RulerMetrics,
};
use tower::ServiceExt;

struct NoData;

#[async_trait::async_trait]
impl RuleQuerier for NoData {
    async fn query(
        &self,
        _tenant: &str,
        _expr: &str,
        _t_ms: i64,
    ) -> Result<strata_promql::Value, String> {
        Ok(strata_promql::Value::Vector(Vec::new()))
    }
}

struct Discard;

#[async_trait::async_trait]
impl RuleWriter for Discard {
    async fn write(&self, _tenant: &str, _series: Vec<OwnedTimeSeries>) -> Result<(), String> {
        Ok(())
    }
}

fn load(handle: &Overrides, text: &str) {
    handle.replace(Snapshot::new(
        RuntimeConfigFile::parse(text).unwrap(),
        String::new(),
        0,
    ));
}

async fn upload(router: &axum::Router, tenant: &str, group: &str) -> (u16, String) {
    let req = http::Request::builder()
        .method("POST")
        .uri("/prometheus/config/v1/rules/ns")
        .header("X-Scope-OrgID", tenant)
        .header("Content-Type", "application/yaml")
        .body(Body::from(group.to_string()))
        .unwrap();
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

fn group(name: &str, rules: usize, interval: &str) -> String {
    let mut text = format!("name: {name}\ninterval: {interval}\nrules:\n");
    for i in 0..rules {
        text.push_str(&format!("- record: r{i}\n  expr: vector(1)\n"));
    }
    text
}

#[tokio::test]
async fn ruler_limits_follow_the_overrides_file() {
    let dir = tempfile::tempdir().unwrap();
    let objects = Arc::new(strata_chunk_store::LocalObjectStore::new(dir.path()).unwrap());
    let store = Arc::new(RuleStore::new(objects, ""));
    let notifier = Arc::new(
        strata_notifier::NotifierManager::new(
            strata_notifier::NotifierConfig {
                alertmanager_urls: vec!["http://shared:9093".into()],
                ..strata_notifier::NotifierConfig::default()
            },
            strata_notifier::NotifierMetrics::default(),
        )
        .unwrap(),
    );
    let deps = Arc::new(GroupDeps {
        config: Arc::new(RulerConfig::default()),
        querier: Arc::new(NoData),
        writer: Arc::new(Discard),
        notifier: notifier.clone(),
        metrics: RulerMetrics::default(),
        runtime: tokio::runtime::Handle::current(),
    });
    let overrides = Overrides::new();
    load(
        &overrides,
        "overrides:\n  t1:\n    ruler_max_rule_groups: 1\n    ruler_max_rules_per_group: 2\n    ruler_min_evaluation_interval: 30s\n    alertmanager_urls: [http://own-a:9093]\n",
    );
    let manager = Arc::new(RulerManager::new(store, deps, None).with_overrides(overrides.clone()));
    let router = ruler_routes(manager.clone(), true);

    // t1's limits from the file.
    let (code, text) = upload(&router, "t1", &group("g1", 3, "1m")).await;
    assert_eq!(code, 400, "{text}");
    assert!(text.contains("limit of 2 per group"), "{text}");
    let (code, text) = upload(&router, "t1", &group("g1", 1, "10s")).await;
    assert_eq!(code, 400, "{text}");
    assert!(text.contains("minimum of 30s"), "{text}");
    assert_eq!(upload(&router, "t1", &group("g1", 2, "1m")).await.0, 202);
    let (code, text) = upload(&router, "t1", &group("g2", 1, "1m")).await;
    assert_eq!(code, 400, "{text}");
    assert!(text.contains("its limit is 1"), "{text}");
    // t2 has the static limits.
    assert_eq!(upload(&router, "t2", &group("g1", 3, "10s")).await.0, 202);
    assert_eq!(upload(&router, "t2", &group("g2", 3, "10s")).await.0, 202);

    manager.sync().await;
    assert_eq!(
        notifier.alertmanagers("t1"),
        ["http://own-a:9093/api/v2/alerts"]
    );
    assert_eq!(
        notifier.alertmanagers("t2"),
        ["http://shared:9093/api/v2/alerts"]
    );

    // Changed in the file: the next upload and the next sync see it, while
    // t1's group keeps running.
    load(
        &overrides,
        "overrides:\n  t1:\n    ruler_max_rule_groups: 2\n    alertmanager_urls: [http://own-b:9093]\n",
    );
    assert_eq!(upload(&router, "t1", &group("g2", 1, "1m")).await.0, 202);
    manager.sync().await;
    assert_eq!(
        notifier.alertmanagers("t1"),
        ["http://own-b:9093/api/v2/alerts"]
    );

    // Removed from the file: back to the shared Alertmanagers.
    load(&overrides, "overrides: {}\n");
    manager.sync().await;
    assert_eq!(
        notifier.alertmanagers("t1"),
        ["http://shared:9093/api/v2/alerts"]
    );
    assert_eq!(manager.limits_for("t1"), RulerConfig::default().limits);

    let stop = tokio_util::sync::CancellationToken::new();
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(30), manager.clone().run(stop))
        .await
        .expect("the manager stops its groups");
}
