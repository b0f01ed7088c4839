//! Exemplars end to end through the one-process `strata`: remote write
//! carrying exemplars (in the series entries of their own that Prometheus
//! sends, and next to samples) as two tenants, then
//! `/prometheus/api/v1/query_exemplars` answering with Prometheus's shape,
//! only the tenant's own exemplars, time-range filtering, invalid
//! exemplars dropped without failing the push, and 400 for bad input.

use std::collections::BTreeMap;

use serde_json::Value;
use strata_e2e::*;
use strata_remote_write::{OwnedExemplar, OwnedTimeSeries};

const TENANT_A: &str = "exemplars-a";
const TENANT_B: &str = "exemplars-b";
const API: &str = "/prometheus/api/v1";
const BUCKET: &str = "http_request_duration_seconds_bucket";

/// (series labels, [(exemplar labels, value text, timestamp ms)]) as the
/// API answered, in its order.
type Answer = Vec<(
    BTreeMap<String, String>,
    Vec<(BTreeMap<String, String>, String, i64)>,
)>;

fn exemplar(trace_id: &str, value: f64, timestamp: i64) -> OwnedExemplar {
    OwnedExemplar {
        labels: vec![("trace_id".to_string(), trace_id.to_string())],
        value,
        timestamp,
    }
}

/// A series entry with exemplars and no samples, as Prometheus sends them.
fn exemplars_only(labels: &[(&str, &str)], exemplars: Vec<OwnedExemplar>) -> OwnedTimeSeries {
    let mut s = series(labels, &[]);
    s.exemplars = exemplars;
    s
}

fn label_map(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str().unwrap_or("<not a string>").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The keys of a JSON object, sorted.
fn keys_of(v: &Value) -> Vec<String> {
    let mut keys: Vec<String> = v
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    keys.sort();
    keys
}

/// Checks the shape of a successful answer and reads it.
fn parse(answer: &(u16, Value)) -> Answer {
    assert_eq!(answer.0, 200, "{}", answer.1);
    assert_eq!(answer.1["status"], "success", "{}", answer.1);
    let data = answer.1["data"]
        .as_array()
        .unwrap_or_else(|| panic!("data is not a list: {}", answer.1));
    data.iter()
        .map(|s| {
            assert_eq!(keys_of(s), ["exemplars", "seriesLabels"], "{s}");
            let exemplars = s["exemplars"]
                .as_array()
                .unwrap_or_else(|| panic!("exemplars is not a list: {s}"))
                .iter()
                .map(|e| {
                    assert_eq!(keys_of(e), ["labels", "timestamp", "value"], "{e}");
                    let value = e["value"]
                        .as_str()
                        .unwrap_or_else(|| panic!("value is not a string: {e}"))
                        .to_string();
                    let seconds = e["timestamp"]
                        .as_f64()
                        .unwrap_or_else(|| panic!("timestamp is not a number: {e}"));
                    (
                        label_map(&e["labels"]),
                        value,
                        (seconds * 1000.0).round() as i64,
                    )
                })
                .collect();
            (label_map(&s["seriesLabels"]), exemplars)
        })
        .collect()
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

fn trace(id: &str, value: &str, timestamp: i64) -> (BTreeMap<String, String>, String, i64) {
    (labels(&[("trace_id", id)]), value.to_string(), timestamp)
}

async fn query(
    client: &reqwest::Client,
    base: &str,
    tenant: &str,
    params: &[(&str, &str)],
) -> (u16, Value) {
    api_get(
        client,
        base,
        &format!("{API}/query_exemplars"),
        Some(tenant),
        params,
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exemplars_are_stored_per_tenant_and_queried_like_prometheus() {
    let s = start_strata("strata-exemplars", &["--auth-enabled=true"]).await;
    let base = s.http();
    let client = reqwest::Client::new();
    // Three exemplars 15s apart, the first with milliseconds.
    let t0 = (now_ms() - 600_000) / 1000 * 1000 + 479;
    let (t1, t2) = (t0 + 15_000, t0 + 30_000);
    let bucket = [("__name__", BUCKET), ("job", "api"), ("le", "0.5")];
    let rpc = [("__name__", "rpc_latency"), ("job", "db")];

    let body_a = write_body(&[
        series(&bucket, &[(t0, 1.0), (t1, 2.0), (t2, 3.0)]),
        exemplars_only(&bucket, vec![exemplar("a-1", 0.27, t0)]),
        exemplars_only(
            &bucket,
            vec![exemplar("a-2", 0.31, t1), exemplar("a-3", 6.0, t2)],
        ),
        // Next to samples in one entry, with an invalid (blank) exemplar
        // that is dropped without failing the push.
        {
            let mut s = series(&rpc, &[(t0, 10.0)]);
            s.exemplars = vec![exemplar("", 1.0, t0), exemplar("a-rpc", 0.004, t0)];
            s
        },
    ]);
    push_ok(&client, &base, Some(TENANT_A), body_a).await;
    // The newest exemplars sent again (a retry): stored once.
    push_ok(
        &client,
        &base,
        Some(TENANT_A),
        write_body(&[
            exemplars_only(&bucket, vec![exemplar("a-3", 6.0, t2)]),
            exemplars_only(&rpc, vec![exemplar("a-rpc", 0.004, t0)]),
        ]),
    )
    .await;
    // Tenant B: the same series with its own exemplars.
    push_ok(
        &client,
        &base,
        Some(TENANT_B),
        write_body(&[
            series(&bucket, &[(t0, 1.0)]),
            exemplars_only(&bucket, vec![exemplar("b-1", 9.0, t0)]),
        ]),
    )
    .await;

    let bucket_a = (
        labels(&bucket),
        vec![
            trace("a-1", "0.27", t0),
            trace("a-2", "0.31", t1),
            trace("a-3", "6", t2),
        ],
    );
    let rpc_a = (labels(&rpc), vec![trace("a-rpc", "0.004", t0)]);

    // Every selector of the expression counts; series sorted by labels.
    let all = query(
        &client,
        &base,
        TENANT_A,
        &[(
            "query",
            "histogram_quantile(0.9, sum by (le) (rate(http_request_duration_seconds_bucket[5m]))) or rpc_latency",
        )],
    )
    .await;
    assert_eq!(parse(&all), vec![bucket_a.clone(), rpc_a.clone()]);
    // The same as a form POST, as Grafana sends it.
    let posted = api_post_form(
        &client,
        &base,
        &format!("{API}/query_exemplars"),
        Some(TENANT_A),
        &[("query", &format!("{BUCKET}{{job=\"api\"}}"))],
    )
    .await
    .unwrap();
    assert_eq!(parse(&posted), vec![bucket_a.clone()]);

    // Raw text: value as a string, timestamp as seconds with milliseconds.
    let text = body_text(
        client
            .get(format!("{base}{API}/query_exemplars"))
            .query(&[("query", "rpc_latency")])
            .header("X-Scope-OrgID", TENANT_A),
    )
    .await;
    let expected = format!(
        "{{\"status\":\"success\",\"data\":[{{\"seriesLabels\":{{\"__name__\":\"rpc_latency\",\"job\":\"db\"}},\"exemplars\":[{{\"labels\":{{\"trace_id\":\"a-rpc\"}},\"value\":\"0.004\",\"timestamp\":{}.479}}]}}]}}",
        t0 / 1000
    );
    assert_eq!(text, expected);

    // Time range: inclusive bounds, RFC 3339 or Unix seconds.
    let start = format!("{}.479", t1 / 1000);
    let end = format!("{}.479", t2 / 1000);
    let ranged = query(
        &client,
        &base,
        TENANT_A,
        &[("query", BUCKET), ("start", &start), ("end", &end)],
    )
    .await;
    assert_eq!(
        parse(&ranged),
        vec![(
            labels(&bucket),
            vec![trace("a-2", "0.31", t1), trace("a-3", "6", t2)]
        )]
    );
    let before = format!("{}", t0 / 1000 - 60);
    let early = query(
        &client,
        &base,
        TENANT_A,
        &[("query", BUCKET), ("end", &before)],
    )
    .await;
    assert_eq!(parse(&early), vec![]);
    let rfc = query(
        &client,
        &base,
        TENANT_A,
        &[
            ("query", BUCKET),
            ("start", "2000-01-01T00:00:00Z"),
            ("end", "2000-01-02T00:00:00Z"),
        ],
    )
    .await;
    assert_eq!(parse(&rfc), vec![]);

    // Tenant B sees its own exemplar of the same series, nothing of A's.
    let b = query(&client, &base, TENANT_B, &[("query", "{job=~\".+\"}")]).await;
    assert_eq!(
        parse(&b),
        vec![(labels(&bucket), vec![trace("b-1", "9", t0)])]
    );
    let b = query(&client, &base, TENANT_B, &[("query", "rpc_latency")]).await;
    assert_eq!(parse(&b), vec![]);
    // A tenant without data, and a query without selectors: empty lists.
    let none = query(&client, &base, "nobody", &[("query", BUCKET)]).await;
    assert_eq!(parse(&none), vec![]);
    let scalar = query(&client, &base, TENANT_A, &[("query", "1 + 1")]).await;
    assert_eq!(parse(&scalar), vec![]);

    // Bad input: 400 bad_data with a message; no tenant: 401.
    let bad_cases: [(&[(&str, &str)], &str); 5] = [
        (&[("query", "sum(")], "parse error"),
        (&[("query", "")], "no expression found"),
        (&[], "no expression found"),
        (
            &[("query", BUCKET), ("start", "20"), ("end", "10")],
            "end timestamp must not be before start timestamp",
        ),
        (
            &[("query", BUCKET), ("start", "yesterday")],
            "invalid parameter \"start\"",
        ),
    ];
    for (params, message) in bad_cases {
        let (code, body) = query(&client, &base, TENANT_A, params).await;
        assert_eq!(code, 400, "{params:?}: {body}");
        assert_eq!(body["status"], "error", "{body}");
        assert_eq!(body["errorType"], "bad_data", "{body}");
        let error = body["error"].as_str().unwrap_or_default();
        assert!(error.contains(message), "{params:?}: {error}");
    }
    let (code, _) = api_get(
        &client,
        &base,
        &format!("{API}/query_exemplars"),
        None,
        &[("query", BUCKET)],
    )
    .await
    .unwrap();
    assert_eq!(code, 401);

    // The dropped exemplar is counted, the stored ones too (once each).
    let (code, metrics) = get_text(&client, &format!("{base}/metrics")).await.unwrap();
    assert_eq!(code, 200);
    assert_eq!(
        metric_value(
            &metrics,
            "strata_distributor_discarded_exemplars_total{tenant=\"exemplars-a\",reason=\"exemplar_labels_blank\"}"
        ),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        metric_value(&metrics, "strata_ingester_exemplars_appended_total"),
        Some(5.0),
        "{metrics}"
    );
}
