//! Mimir's cardinality endpoints on the one-process `strata`: label names by
//! how many values they have, label values by how many series hold them,
//! per tenant, with Mimir's answer shapes; and per-tenant series metrics.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use strata_e2e::*;

async fn get_json(
    client: &reqwest::Client,
    url: &str,
    tenant: &str,
    params: &[(&str, &str)],
) -> (u16, Value) {
    let resp = client
        .get(url)
        .header("X-Scope-OrgID", tenant)
        .query(params)
        .send()
        .await
        .expect("cardinality request");
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}")),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cardinality_endpoints_count_a_tenants_series() {
    let strata = start_strata("strata-cardinality", &[]).await;
    let base = strata.http();
    let client = reqwest::Client::new();
    let t = now_ms() - 1000;
    // Tenant a: 6 series of `http_requests_total` over 3 pods and 2 codes,
    // and 1 of `up`. Tenant b: 50 series of something else.
    let mut a = Vec::new();
    for pod in ["p1", "p2", "p3"] {
        for code in ["200", "500"] {
            a.push(series(
                &[
                    ("__name__", "http_requests_total"),
                    ("code", code),
                    ("job", "api"),
                    ("pod", pod),
                ],
                &[(t, 1.0)],
            ));
        }
    }
    a.push(series(&[("__name__", "up"), ("job", "api")], &[(t, 1.0)]));
    push_ok(&client, &base, Some("a"), write_body(&a)).await;
    let b: Vec<_> = (0..50)
        .map(|i| {
            let id = format!("{i}");
            series(&[("__name__", "other"), ("id", &id)], &[(t, 1.0)])
        })
        .collect();
    push_ok(&client, &base, Some("b"), write_body(&b)).await;

    let names_url = format!("{base}/prometheus/api/v1/cardinality/label_names");
    let (status, j) = get_json(&client, &names_url, "a", &[]).await;
    assert_eq!(status, 200, "{j}");
    assert_eq!(j["label_names_count"], 4, "{j}");
    // __name__ 2 + code 2 + job 1 + pod 3.
    assert_eq!(j["label_values_count_total"], 8, "{j}");
    assert_eq!(
        j["cardinality"][0],
        json!({"label_name": "pod", "label_values_count": 3}),
        "{j}"
    );
    assert!(
        !j.to_string().contains("\"id\""),
        "tenant b's labels leak: {j}"
    );
    let (_, limited) = get_json(&client, &names_url, "a", &[("limit", "2")]).await;
    assert_eq!(limited["cardinality"].as_array().map(Vec::len), Some(2));
    let (_, selected) = get_json(
        &client,
        &names_url,
        "a",
        &[("selector", "{__name__=\"up\"}")],
    )
    .await;
    assert_eq!(selected["label_names_count"], 2, "{selected}");

    let values_url = format!("{base}/prometheus/api/v1/cardinality/label_values");
    let (status, j) = get_json(
        &client,
        &values_url,
        "a",
        &[("label_names[]", "__name__"), ("label_names[]", "pod")],
    )
    .await;
    assert_eq!(status, 200, "{j}");
    assert_eq!(j["series_count_total"], 7, "{j}");
    let name = &j["labels"][0];
    assert_eq!(name["label_name"], "__name__", "{j}");
    assert_eq!(name["series_count"], 7);
    assert_eq!(
        name["cardinality"][0],
        json!({"label_value": "http_requests_total", "series_count": 6})
    );
    assert_eq!(j["labels"][1]["label_name"], "pod");
    assert_eq!(j["labels"][1]["series_count"], 6);
    assert_eq!(j["labels"][1]["label_values_count"], 3);
    let (_, jb) = get_json(&client, &values_url, "b", &[("label_names[]", "__name__")]).await;
    assert_eq!(jb["series_count_total"], 50, "{jb}");

    // Bad requests are 400 with Prometheus's error shape.
    let (status, e) = get_json(&client, &values_url, "a", &[]).await;
    assert_eq!(status, 400, "{e}");
    assert!(
        e["error"].as_str().unwrap_or("").contains("label_names[]"),
        "{e}"
    );
    let (status, e) = get_json(&client, &names_url, "a", &[("limit", "100000")]).await;
    assert_eq!(status, 400, "{e}");
    let (status, e) = get_json(&client, &names_url, "a", &[("selector", "{")]).await;
    assert_eq!(status, 400, "{e}");

    // Per-tenant series in memory, as a metric.
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let (_, text) = get_text(&client, &format!("{base}/metrics")).await.unwrap();
        let a_series = metric_value(&text, "strata_ingester_tenant_memory_series{tenant=\"a\"}");
        let b_series = metric_value(&text, "strata_ingester_tenant_memory_series{tenant=\"b\"}");
        if a_series == Some(7.0) && b_series == Some(50.0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "per-tenant series metric: a {a_series:?}, b {b_series:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
