//! The Prometheus query API of the one-process `strata`, driven with the
//! requests Grafana's Prometheus datasource makes (URL
//! `http://host:port/prometheus`), checked against Prometheus's JSON shapes;
//! tenant isolation on every endpoint; malformed parameters.

use serde_json::{json, Value};
use strata_e2e::*;
use strata_remote_write::{MetricType, OwnedMetadata};

const TENANT_A: &str = "team-a";
const TENANT_B: &str = "team-b";
const API: &str = "/prometheus/api/v1";
const STEP_MS: i64 = 15_000;
/// Samples per series: ten minutes at a 15s interval.
const POINTS: i64 = 40;

/// Data of tenant A: three `up` series (two of job api at 1, one of job db
/// at 0) and a counter rising by 15 every 15s, from `t0` on.
async fn push_tenant_a(client: &reqwest::Client, base: &str, t0: i64) {
    let at = |v: f64| -> Vec<(i64, f64)> { (0..POINTS).map(|k| (t0 + k * STEP_MS, v)).collect() };
    let counter: Vec<(i64, f64)> = (0..POINTS)
        .map(|k| (t0 + k * STEP_MS, (k * 15) as f64))
        .collect();
    let data = [
        series(
            &[("__name__", "up"), ("instance", "a:1"), ("job", "api")],
            &at(1.0),
        ),
        series(
            &[("__name__", "up"), ("instance", "a:2"), ("job", "api")],
            &at(1.0),
        ),
        series(
            &[("__name__", "up"), ("instance", "d:1"), ("job", "db")],
            &at(0.0),
        ),
        series(
            &[
                ("__name__", "http_requests_total"),
                ("code", "200"),
                ("job", "api"),
            ],
            &counter,
        ),
    ];
    let metadata = [
        OwnedMetadata {
            metric_type: MetricType::Gauge,
            metric_family_name: "up".into(),
            help: "Whether the target is up.".into(),
            unit: String::new(),
        },
        OwnedMetadata {
            metric_type: MetricType::Counter,
            metric_family_name: "http_requests_total".into(),
            help: "Requests served.".into(),
            unit: String::new(),
        },
    ];
    let (code, text) = push(
        client,
        base,
        Some(TENANT_A),
        write_body_with_metadata(&data, &metadata),
    )
    .await
    .unwrap();
    assert_eq!(code, 200, "{text}");
}

/// Data of tenant B: one series and its metadata, which A must never see.
async fn push_tenant_b(client: &reqwest::Client, base: &str, t0: i64) {
    let samples: Vec<(i64, f64)> = (0..POINTS).map(|k| (t0 + k * STEP_MS, 7.0)).collect();
    let data = [series(
        &[("__name__", "secret_metric"), ("team", "b")],
        &samples,
    )];
    let metadata = [OwnedMetadata {
        metric_type: MetricType::Gauge,
        metric_family_name: "secret_metric".into(),
        help: "Only for team b.".into(),
        unit: "bytes".into(),
    }];
    let (code, text) = push(
        client,
        base,
        Some(TENANT_B),
        write_body_with_metadata(&data, &metadata),
    )
    .await
    .unwrap();
    assert_eq!(code, 200, "{text}");
}

/// A `[t, "v"]` point as (seconds, value text).
fn point(p: &Value) -> (f64, String) {
    (
        p[0].as_f64().unwrap_or(f64::NAN),
        p[1].as_str().unwrap_or("").to_string(),
    )
}

fn secs(ms: i64) -> String {
    (ms / 1000).to_string()
}

fn success(answer: &(u16, Value)) -> &Value {
    assert_eq!(answer.0, 200, "{}", answer.1);
    assert_eq!(answer.1["status"], "success", "{}", answer.1);
    &answer.1["data"]
}

async fn start() -> (Strata, reqwest::Client, i64) {
    let mut s = Strata::start(
        "strata-query-api",
        "strata",
        &["--auth-enabled=true".to_string()],
    );
    s.wait_ready().await.expect("strata ready");
    let client = reqwest::Client::new();
    // Whole 15s steps, the last sample a little in the past.
    let t0 = (now_ms() - POINTS * STEP_MS) / STEP_MS * STEP_MS;
    push_tenant_a(&client, &s.http(), t0).await;
    push_tenant_b(&client, &s.http(), t0).await;
    (s, client, t0)
}

/// The requests Grafana's Prometheus datasource makes, in the order it
/// makes them when a datasource is saved and a dashboard is opened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grafana_datasource_requests() {
    let (s, client, t0) = start().await;
    let base = s.http();
    let a = Some(TENANT_A);
    let last = t0 + (POINTS - 1) * STEP_MS;
    let (start_s, end_s) = (secs(t0), secs(last + 60_000));

    // "Save & test": build info, then an instant query of 1+1.
    let answer = api_get(&client, &base, &format!("{API}/status/buildinfo"), a, &[])
        .await
        .unwrap();
    let info = success(&answer);
    for key in [
        "version",
        "revision",
        "branch",
        "buildUser",
        "buildDate",
        "goVersion",
    ] {
        assert!(info[key].is_string(), "{key} missing: {info}");
    }
    let now_s = secs(now_ms());
    let answer = api_get(
        &client,
        &base,
        &format!("{API}/query"),
        a,
        &[("query", "1+1"), ("time", &now_s)],
    )
    .await
    .unwrap();
    let data = success(&answer);
    assert_eq!(data["resultType"], "scalar");
    assert_eq!(
        point(&data["result"]),
        (now_s.parse::<f64>().unwrap(), "2".to_string())
    );

    // Metric browser and label pickers.
    let answer = api_get(
        &client,
        &base,
        &format!("{API}/labels"),
        a,
        &[("start", &start_s), ("end", &end_s)],
    )
    .await
    .unwrap();
    assert_eq!(
        success(&answer),
        &json!(["__name__", "code", "instance", "job"])
    );
    let answer = api_get(
        &client,
        &base,
        &format!("{API}/label/__name__/values"),
        a,
        &[("start", &start_s), ("end", &end_s)],
    )
    .await
    .unwrap();
    assert_eq!(success(&answer), &json!(["http_requests_total", "up"]));
    let answer = api_get(
        &client,
        &base,
        &format!("{API}/label/job/values"),
        a,
        &[("match[]", "up"), ("start", &start_s), ("end", &end_s)],
    )
    .await
    .unwrap();
    assert_eq!(success(&answer), &json!(["api", "db"]));
    let answer = api_get(
        &client,
        &base,
        &format!("{API}/series"),
        a,
        &[
            ("match[]", "up{job=\"api\"}"),
            ("start", &start_s),
            ("end", &end_s),
        ],
    )
    .await
    .unwrap();
    assert_eq!(
        success(&answer),
        &json!([
            {"__name__": "up", "instance": "a:1", "job": "api"},
            {"__name__": "up", "instance": "a:2", "job": "api"}
        ])
    );
    let answer = api_get(&client, &base, &format!("{API}/metadata"), a, &[])
        .await
        .unwrap();
    assert_eq!(
        success(&answer),
        &json!({
            "http_requests_total": [{"type": "counter", "help": "Requests served.", "unit": ""}],
            "up": [{"type": "gauge", "help": "Whether the target is up.", "unit": ""}]
        })
    );
    let answer = api_get(
        &client,
        &base,
        &format!("{API}/metadata"),
        a,
        &[("metric", "up"), ("limit", "1")],
    )
    .await
    .unwrap();
    assert_eq!(
        success(&answer),
        &json!({"up": [{"type": "gauge", "help": "Whether the target is up.", "unit": ""}]})
    );
}

/// Panels: range and instant queries, as Grafana sends them (form POST by
/// default, GET when configured).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grafana_panel_queries() {
    let (s, client, t0) = start().await;
    let base = s.http();
    let a = Some(TENANT_A);
    // Five minutes in, every step has a sample within the lookback.
    let start = t0 + 300_000;
    let end = start + 240_000;
    let (start_s, end_s) = (secs(start), secs(end));

    for post in [true, false] {
        let params = [
            ("query", "sum(up)"),
            ("start", start_s.as_str()),
            ("end", end_s.as_str()),
            ("step", "15"),
        ];
        let answer = if post {
            api_post_form(&client, &base, &format!("{API}/query_range"), a, &params).await
        } else {
            api_get(&client, &base, &format!("{API}/query_range"), a, &params).await
        }
        .unwrap();
        let data = success(&answer);
        assert_eq!(data["resultType"], "matrix");
        let result = data["result"].as_array().unwrap();
        assert_eq!(result.len(), 1, "{data}");
        assert_eq!(result[0]["metric"], json!({}));
        let values = result[0]["values"].as_array().unwrap();
        assert_eq!(values.len(), 17, "{data}");
        for (i, p) in values.iter().enumerate() {
            let t = (start + i as i64 * STEP_MS) as f64 / 1000.0;
            assert_eq!(point(p), (t, "2".to_string()), "step {i}");
        }
    }

    // The step as a duration; counting and grouping.
    let answer = api_get(
        &client,
        &base,
        &format!("{API}/query_range"),
        a,
        &[
            ("query", "count by (job) (up)"),
            ("start", &start_s),
            ("end", &end_s),
            ("step", "1m"),
        ],
    )
    .await
    .unwrap();
    let data = success(&answer);
    let result = data["result"].as_array().unwrap();
    assert_eq!(result.len(), 2, "{data}");
    assert_eq!(result[0]["metric"], json!({"job": "api"}));
    assert_eq!(result[0]["values"].as_array().unwrap().len(), 5);
    assert!(result[0]["values"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p[1] == "2"));
    assert_eq!(result[1]["metric"], json!({"job": "db"}));

    // Instant queries, RFC 3339 time, POST and GET.
    let last = t0 + (POINTS - 1) * STEP_MS;
    let time = format!("{}", last as f64 / 1000.0);
    for post in [true, false] {
        let params = [("query", "up{job=\"api\"}"), ("time", time.as_str())];
        let answer = if post {
            api_post_form(&client, &base, &format!("{API}/query"), a, &params).await
        } else {
            api_get(&client, &base, &format!("{API}/query"), a, &params).await
        }
        .unwrap();
        let data = success(&answer);
        assert_eq!(data["resultType"], "vector");
        let result = data["result"].as_array().unwrap();
        assert_eq!(result.len(), 2, "{data}");
        for (r, instance) in result.iter().zip(["a:1", "a:2"]) {
            assert_eq!(
                r["metric"],
                json!({"__name__": "up", "instance": instance, "job": "api"})
            );
            assert_eq!(point(&r["value"]), (last as f64 / 1000.0, "1".to_string()));
        }
    }
    let answer = api_get(
        &client,
        &base,
        &format!("{API}/query"),
        a,
        &[
            ("query", "sum(rate(http_requests_total[1m]))"),
            ("time", &time),
        ],
    )
    .await
    .unwrap();
    let data = success(&answer);
    let v: f64 = data["result"][0]["value"][1]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((v - 1.0).abs() < 1e-9, "rate {v}: {data}");

    // A query limit cuts series and says so.
    let answer = api_get(
        &client,
        &base,
        &format!("{API}/query"),
        a,
        &[("query", "up"), ("time", &time), ("limit", "1")],
    )
    .await
    .unwrap();
    assert_eq!(success(&answer)["result"].as_array().unwrap().len(), 1);
    assert_eq!(
        answer.1["warnings"],
        json!(["results truncated due to limit"])
    );

    // The same API without the /prometheus prefix.
    let answer = api_get(
        &client,
        &base,
        "/api/v1/query",
        a,
        &[("query", "count(up)"), ("time", &time)],
    )
    .await
    .unwrap();
    assert_eq!(success(&answer)["result"][0]["value"][1], "3");
}

/// Every endpoint answers for one tenant only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_are_isolated_on_every_endpoint() {
    let (s, client, t0) = start().await;
    let base = s.http();
    let last = t0 + (POINTS - 1) * STEP_MS;
    let time = secs(last);
    let (start_s, end_s) = (secs(t0), secs(last));

    for (tenant, own_metric, other_metric, own_label) in [
        (TENANT_A, "up", "secret_metric", "job"),
        (TENANT_B, "secret_metric", "up", "team"),
    ] {
        let t = Some(tenant);
        let labels = api_get(&client, &base, &format!("{API}/labels"), t, &[])
            .await
            .unwrap();
        let labels = success(&labels).as_array().unwrap().clone();
        assert!(labels.contains(&json!(own_label)), "{tenant}: {labels:?}");
        let other_label = if own_label == "job" { "team" } else { "job" };
        assert!(
            !labels.contains(&json!(other_label)),
            "{tenant}: {labels:?}"
        );

        let names = api_get(
            &client,
            &base,
            &format!("{API}/label/__name__/values"),
            t,
            &[],
        )
        .await
        .unwrap();
        let names = success(&names).as_array().unwrap().clone();
        assert!(names.contains(&json!(own_metric)));
        assert!(!names.contains(&json!(other_metric)), "{tenant}: {names:?}");

        for metric in [own_metric, other_metric] {
            let expect_data = metric == own_metric;
            let series = api_get(
                &client,
                &base,
                &format!("{API}/series"),
                t,
                &[("match[]", metric)],
            )
            .await
            .unwrap();
            assert_eq!(
                !success(&series).as_array().unwrap().is_empty(),
                expect_data,
                "{tenant} series {metric}"
            );
            let values = api_get(
                &client,
                &base,
                &format!("{API}/label/{own_label}/values"),
                t,
                &[("match[]", metric)],
            )
            .await
            .unwrap();
            assert_eq!(
                !success(&values).as_array().unwrap().is_empty(),
                expect_data,
                "{tenant} label values {metric}"
            );
            let md = api_get(
                &client,
                &base,
                &format!("{API}/metadata"),
                t,
                &[("metric", metric)],
            )
            .await
            .unwrap();
            assert_eq!(
                !success(&md).as_object().unwrap().is_empty(),
                expect_data,
                "{tenant} metadata {metric}"
            );
            let instant = api_get(
                &client,
                &base,
                &format!("{API}/query"),
                t,
                &[("query", metric), ("time", &time)],
            )
            .await
            .unwrap();
            assert_eq!(
                !success(&instant)["result"].as_array().unwrap().is_empty(),
                expect_data,
                "{tenant} query {metric}"
            );
            let range = api_post_form(
                &client,
                &base,
                &format!("{API}/query_range"),
                t,
                &[
                    ("query", metric),
                    ("start", &start_s),
                    ("end", &end_s),
                    ("step", "60"),
                ],
            )
            .await
            .unwrap();
            assert_eq!(
                !success(&range)["result"].as_array().unwrap().is_empty(),
                expect_data,
                "{tenant} query_range {metric}"
            );
            // A selector without a metric name is scoped as well.
            let by_label = api_get(
                &client,
                &base,
                &format!("{API}/query"),
                t,
                &[
                    ("query", &format!("{{__name__=~\"{metric}\"}}")),
                    ("time", &time),
                ],
            )
            .await
            .unwrap();
            assert_eq!(
                !success(&by_label)["result"].as_array().unwrap().is_empty(),
                expect_data,
                "{tenant} name regex {metric}"
            );
        }
    }
    // A tenant that never wrote sees empty answers, not errors.
    let t = Some("team-empty");
    let answer = api_get(&client, &base, &format!("{API}/labels"), t, &[])
        .await
        .unwrap();
    assert_eq!(success(&answer), &json!([]));
    let answer = api_get(&client, &base, &format!("{API}/metadata"), t, &[])
        .await
        .unwrap();
    assert_eq!(success(&answer), &json!({}));
    // No tenant at all, with authentication on: 401.
    let (code, _) = api_get(&client, &base, &format!("{API}/labels"), None, &[])
        .await
        .unwrap();
    assert_eq!(code, 401);
}

/// Malformed parameters are 400 bad_data with a message saying what to fix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_parameters_are_bad_data() {
    let mut s = Strata::start("strata-query-bad", "strata", &[]);
    s.wait_ready().await.expect("strata ready");
    let client = reqwest::Client::new();
    let base = s.http();
    // (endpoint, parameters, part of the expected message)
    type Case = (
        &'static str,
        Vec<(&'static str, &'static str)>,
        &'static str,
    );
    let cases: Vec<Case> = vec![
        ("query", vec![("query", "sum(")], "invalid parameter \"query\""),
        ("query", vec![("query", "")], "invalid parameter \"query\""),
        // The parser library panics on these; the server must answer.
        ("query", vec![("query", "up[1e400]")], "invalid parameter \"query\""),
        (
            "query_range",
            vec![("query", "rate(up[1e308])"), ("start", "0"), ("end", "10"), ("step", "1")],
            "invalid parameter \"query\"",
        ),
        ("series", vec![("match[]", "up offset 1e308")], "invalid parameter \"match[]\""),
        (
            "query",
            vec![("query", {
                let deep = format!("{}up{}", "(".repeat(300), ")".repeat(300));
                deep.leak()
            })],
            "invalid parameter \"query\"",
        ),
        (
            "query",
            vec![("query", "up"), ("time", "yesterday")],
            "invalid parameter \"time\": cannot parse \"yesterday\" to a valid timestamp",
        ),
        (
            "query",
            vec![("query", "up"), ("timeout", "soon")],
            "invalid parameter \"timeout\": cannot parse \"soon\" to a valid duration",
        ),
        (
            "query",
            vec![("query", "up"), ("limit", "-3")],
            "invalid parameter \"limit\": limit must be non-negative",
        ),
        (
            "query_range",
            vec![("query", "up"), ("start", "x"), ("end", "10"), ("step", "1")],
            "invalid parameter \"start\": cannot parse \"x\" to a valid timestamp",
        ),
        (
            "query_range",
            vec![("query", "up"), ("start", "10"), ("end", "5"), ("step", "1")],
            "invalid parameter \"end\": end timestamp must not be before start time",
        ),
        (
            "query_range",
            vec![("query", "up"), ("start", "0"), ("end", "10"), ("step", "0")],
            "invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer",
        ),
        (
            "query_range",
            vec![("query", "up"), ("start", "0"), ("end", "10"), ("step", "fast")],
            "invalid parameter \"step\": cannot parse \"fast\" to a valid duration",
        ),
        (
            "query_range",
            vec![("query", "up"), ("start", "0"), ("end", "86400"), ("step", "1")],
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
        ),
        ("series", vec![], "no match[] parameter provided"),
        (
            "series",
            vec![("match[]", "up{")],
            "invalid parameter \"match[]\"",
        ),
        (
            "series",
            vec![("match[]", "{job=~\".*\"}")],
            "non-empty matcher",
        ),
        (
            "labels",
            vec![("start", "2015-13-45T00:00:00Z")],
            "invalid parameter \"start\"",
        ),
        (
            "label/job-name/values",
            vec![],
            "invalid label name: \"job-name\"",
        ),
        ("metadata", vec![("limit", "many")], "limit must be a number"),
        (
            "query_exemplars",
            vec![("query", "up"), ("start", "10"), ("end", "5")],
            "end timestamp must not be before start timestamp",
        ),
        ("format_query", vec![("query", "up{")], "invalid parameter \"query\""),
    ];
    for (endpoint, params, message) in cases {
        for post in [false, true] {
            let path = format!("{API}/{endpoint}");
            let answer = if post {
                api_post_form(&client, &base, &path, None, &params).await
            } else {
                api_get(&client, &base, &path, None, &params).await
            }
            .unwrap();
            assert_eq!(answer.0, 400, "{endpoint} {params:?}: {}", answer.1);
            assert_eq!(answer.1["status"], "error");
            assert_eq!(answer.1["errorType"], "bad_data");
            let error = answer.1["error"].as_str().unwrap();
            assert!(
                error.contains(message),
                "{endpoint} {params:?}: {error:?} does not contain {message:?}"
            );
        }
    }

    // Valid requests to the remaining endpoints.
    let answer = api_get(
        &client,
        &base,
        &format!("{API}/query_exemplars"),
        None,
        &[("query", "up"), ("start", "0"), ("end", "10")],
    )
    .await
    .unwrap();
    assert_eq!(success(&answer), &json!([]));
    let answer = api_get(
        &client,
        &base,
        &format!("{API}/format_query"),
        None,
        &[("query", "sum(rate(x[5m]))by(job)")],
    )
    .await
    .unwrap();
    assert_eq!(success(&answer), &json!("sum by (job) (rate(x[5m]))"));
    let answer = api_get(
        &client,
        &base,
        &format!("{API}/parse_query"),
        None,
        &[("query", "up{job=\"a\"}")],
    )
    .await
    .unwrap();
    let ast = success(&answer);
    assert_eq!(ast["type"], "vectorSelector");
    assert_eq!(ast["name"], "up");
}
