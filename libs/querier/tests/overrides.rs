//! Query limits from the runtime overrides file: read on every request, so
//! a changed file applies to a tenant's next query without a restart, and
//! other tenants keep the querier's own limits.

mod support;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use http_body_util::BodyExt;
use strata_overrides::{Overrides, RuntimeConfigFile, Snapshot};
use strata_querier::{api_routes, ApiMetrics, Querier, QuerierConfig};
use support::{reader, ring_of, three, ts};
use tower::ServiceExt;

async fn get(router: &axum::Router, uri: &str, tenant: &str) -> (u16, serde_json::Value) {
    let req = http::Request::builder()
        .uri(uri)
        .header("X-Scope-OrgID", tenant)
        .body(Body::empty())
        .unwrap();
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("{uri}: not JSON ({e}): {}", String::from_utf8_lossy(&body)));
    (status, json)
}

fn load(handle: &Overrides, text: &str) {
    handle.replace(Snapshot::new(
        RuntimeConfigFile::parse(text).unwrap(),
        String::new(),
        0,
    ));
}

#[tokio::test]
async fn query_limits_follow_the_overrides_file() {
    let (a, b, c) = three().await;
    let now_s = strata_model::duration::now_ms() / 1000;
    let t_ms = (now_s - 60) * 1000;
    let old_ms = (now_s - 3 * 86_400) * 1000;
    let data: Vec<_> = (0..5)
        .map(|i| {
            ts(
                &[("__name__", "m"), ("i", &i.to_string())],
                &[(old_ms, 1.0), (t_ms, 1.0)],
            )
        })
        .collect();
    for ing in [&a, &b, &c] {
        ing.push("t1", &data, &[]);
        ing.push("t2", &data, &[]);
    }
    let ring = ring_of(&[&a, &b, &c]).await;
    let overrides = Overrides::new();
    let querier = Arc::new(
        Querier::new(QuerierConfig::default(), reader(ring)).with_overrides(overrides.clone()),
    );
    let router = api_routes(querier.clone(), true, ApiMetrics::default());
    let query = format!("/prometheus/api/v1/query?query=m&time={}", now_s);

    load(
        &overrides,
        "overrides:\n  t1:\n    max_series_per_query: 2\n    max_query_length: 1h\n    max_query_lookback: 1d\n",
    );
    // t1: too many series.
    let (code, v) = get(&router, &query, "t1").await;
    assert_eq!(code, 422, "{v}");
    let error = v["error"].as_str().unwrap();
    assert!(
        error.contains("max number of series limit (limit: 2 series)"),
        "{error}"
    );
    // t2: the querier's own limits.
    let (code, v) = get(&router, &query, "t2").await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["data"]["result"].as_array().unwrap().len(), 5);

    // max_query_length for t1 only.
    let range = format!(
        "/prometheus/api/v1/query_range?query=m&start={}&end={now_s}&step=60",
        now_s - 7200
    );
    let (code, v) = get(&router, &range, "t1").await;
    assert_eq!(code, 400, "{v}");
    assert!(v["error"].as_str().unwrap().contains("limit: 1h"), "{v}");
    assert_eq!(get(&router, &range, "t2").await.0, 200);

    // Raised: the same query succeeds, now.
    load(
        &overrides,
        "overrides:\n  t1:\n    max_series_per_query: 10\n    max_query_lookback: 1d\n",
    );
    let (code, v) = get(&router, &query, "t1").await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["data"]["result"].as_array().unwrap().len(), 5);
    assert_eq!(get(&router, &range, "t1").await.0, 200);

    // max_query_lookback: the samples of three days ago are out of reach
    // for t1 (an instant query then finds nothing), not for t2.
    let old_query = format!(
        "/prometheus/api/v1/query?query=m&time={}",
        old_ms / 1000 + 1
    );
    let (code, v) = get(&router, &old_query, "t1").await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["data"]["result"], serde_json::json!([]));
    let (code, v) = get(&router, &old_query, "t2").await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["data"]["result"].as_array().unwrap().len(), 5);
    let old_series = format!(
        "/prometheus/api/v1/series?match[]=m&start={}&end={}",
        old_ms / 1000 - 60,
        old_ms / 1000 + 60
    );
    assert_eq!(
        get(&router, &old_series, "t1").await.1["data"],
        serde_json::json!([])
    );
    let (_, v) = get(&router, &old_series, "t2").await;
    assert_eq!(v["data"].as_array().unwrap().len(), 5);

    // The effective limits as the querier reads them.
    let limits = querier.limits_for("t1");
    assert_eq!(limits.max_series, 10);
    assert_eq!(limits.max_query_lookback, Duration::from_secs(86_400));
    assert_eq!(
        querier.limits_for("t2"),
        QuerierConfig::default().default_limits()
    );
}
