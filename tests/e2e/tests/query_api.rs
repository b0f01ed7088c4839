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
    push_ok(
        client,
        base,
        Some(TENANT_A),
        write_body_with_metadata(&data, &metadata),
    )
    .await;
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
    push_ok(
        client,
        base,
        Some(TENANT_B),
        write_body_with_metadata(&data, &metadata),
    )
    .await;
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

/// Starts `strata` as `name` with authentication and `extra` flags and
/// pushes tenant A's data; returns it, a client and the data's first
/// timestamp.
async fn start_with_tenant_a(name: &str, extra: &[&str]) -> (Strata, reqwest::Client, i64) {
    let mut flags = vec!["--auth-enabled=true"];
    flags.extend_from_slice(extra);
    let s = start_strata(name, &flags).await;
    let client = reqwest::Client::new();
    // Whole 15s steps, the last sample a little in the past.
    let t0 = aligned_start(POINTS, STEP_MS);
    push_tenant_a(&client, &s.http(), t0).await;
    (s, client, t0)
}

async fn start() -> (Strata, reqwest::Client, i64) {
    let (s, client, t0) = start_with_tenant_a("strata-query-api", &[]).await;
    push_tenant_b(&client, &s.http(), t0).await;
    (s, client, t0)
}

/// `{API}/{endpoint}` as `tenant`, by form POST when `post`, by GET
/// otherwise; the answer's status and JSON.
async fn get_or_post(
    client: &reqwest::Client,
    base: &str,
    post: bool,
    endpoint: &str,
    tenant: Option<&str>,
    params: &[(&str, &str)],
) -> (u16, Value) {
    let path = format!("{API}/{endpoint}");
    if post {
        api_post_form(client, base, &path, tenant, params).await
    } else {
        api_get(client, base, &path, tenant, params).await
    }
    .unwrap()
}

/// `GET` `{API}/{endpoint}` as `tenant`; the answer's status and JSON.
async fn get(
    client: &reqwest::Client,
    base: &str,
    endpoint: &str,
    tenant: Option<&str>,
    params: &[(&str, &str)],
) -> (u16, Value) {
    get_or_post(client, base, false, endpoint, tenant, params).await
}

/// `query` as tenant A, by form POST when `post`, by GET otherwise.
async fn instant_by(
    client: &reqwest::Client,
    base: &str,
    post: bool,
    params: &[(&str, &str)],
) -> (u16, Value) {
    get_or_post(client, base, post, "query", Some(TENANT_A), params).await
}

/// `GET` `query` as tenant A; the answer's status and JSON.
async fn instant(client: &reqwest::Client, base: &str, params: &[(&str, &str)]) -> (u16, Value) {
    instant_by(client, base, false, params).await
}

/// `GET` `query_range` of `query` as tenant A from `start` to `end` every
/// `step`; the answer's status and JSON.
async fn range(
    client: &reqwest::Client,
    base: &str,
    query: &str,
    start: &str,
    end: &str,
    step: &str,
) -> (u16, Value) {
    let params = [
        ("query", query),
        ("start", start),
        ("end", end),
        ("step", step),
    ];
    get(client, base, "query_range", Some(TENANT_A), &params).await
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
    let answer = get(&client, &base, "status/buildinfo", a, &[]).await;
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
    let answer = instant(&client, &base, &[("query", "1+1"), ("time", &now_s)]).await;
    let data = success(&answer);
    assert_eq!(data["resultType"], "scalar");
    assert_eq!(
        point(&data["result"]),
        (now_s.parse::<f64>().unwrap(), "2".to_string())
    );

    // Metric browser and label pickers.
    let answer = get(
        &client,
        &base,
        "labels",
        a,
        &[("start", &start_s), ("end", &end_s)],
    )
    .await;
    assert_eq!(
        success(&answer),
        &json!(["__name__", "code", "instance", "job"])
    );
    let answer = get(
        &client,
        &base,
        "label/__name__/values",
        a,
        &[("start", &start_s), ("end", &end_s)],
    )
    .await;
    assert_eq!(success(&answer), &json!(["http_requests_total", "up"]));
    let answer = get(
        &client,
        &base,
        "label/job/values",
        a,
        &[("match[]", "up"), ("start", &start_s), ("end", &end_s)],
    )
    .await;
    assert_eq!(success(&answer), &json!(["api", "db"]));
    let answer = get(
        &client,
        &base,
        "series",
        a,
        &[
            ("match[]", "up{job=\"api\"}"),
            ("start", &start_s),
            ("end", &end_s),
        ],
    )
    .await;
    assert_eq!(
        success(&answer),
        &json!([
            {"__name__": "up", "instance": "a:1", "job": "api"},
            {"__name__": "up", "instance": "a:2", "job": "api"}
        ])
    );
    let answer = get(&client, &base, "metadata", a, &[]).await;
    assert_eq!(
        success(&answer),
        &json!({
            "http_requests_total": [{"type": "counter", "help": "Requests served.", "unit": ""}],
            "up": [{"type": "gauge", "help": "Whether the target is up.", "unit": ""}]
        })
    );
    let answer = get(
        &client,
        &base,
        "metadata",
        a,
        &[("metric", "up"), ("limit", "1")],
    )
    .await;
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
        let answer = get_or_post(&client, &base, post, "query_range", a, &params).await;
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
    let answer = range(
        &client,
        &base,
        "count by (job) (up)",
        &start_s,
        &end_s,
        "1m",
    )
    .await;
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
        let answer = instant_by(&client, &base, post, &params).await;
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
    let answer = instant(
        &client,
        &base,
        &[
            ("query", "sum(rate(http_requests_total[1m]))"),
            ("time", &time),
        ],
    )
    .await;
    let data = success(&answer);
    let v: f64 = data["result"][0]["value"][1]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((v - 1.0).abs() < 1e-9, "rate {v}: {data}");

    // A query limit cuts series and says so.
    let answer = instant(
        &client,
        &base,
        &[("query", "up"), ("time", &time), ("limit", "1")],
    )
    .await;
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
        let labels = get(&client, &base, "labels", t, &[]).await;
        let labels = success(&labels).as_array().unwrap().clone();
        assert!(labels.contains(&json!(own_label)), "{tenant}: {labels:?}");
        let other_label = if own_label == "job" { "team" } else { "job" };
        assert!(
            !labels.contains(&json!(other_label)),
            "{tenant}: {labels:?}"
        );

        let names = get(&client, &base, "label/__name__/values", t, &[]).await;
        let names = success(&names).as_array().unwrap().clone();
        assert!(names.contains(&json!(own_metric)));
        assert!(!names.contains(&json!(other_metric)), "{tenant}: {names:?}");

        for metric in [own_metric, other_metric] {
            let expect_data = metric == own_metric;
            let series = get(&client, &base, "series", t, &[("match[]", metric)]).await;
            assert_eq!(
                !success(&series).as_array().unwrap().is_empty(),
                expect_data,
                "{tenant} series {metric}"
            );
            let values = get(
                &client,
                &base,
                &format!("label/{own_label}/values"),
                t,
                &[("match[]", metric)],
            )
            .await;
            assert_eq!(
                !success(&values).as_array().unwrap().is_empty(),
                expect_data,
                "{tenant} label values {metric}"
            );
            let md = get(&client, &base, "metadata", t, &[("metric", metric)]).await;
            assert_eq!(
                !success(&md).as_object().unwrap().is_empty(),
                expect_data,
                "{tenant} metadata {metric}"
            );
            let instant = get(
                &client,
                &base,
                "query",
                t,
                &[("query", metric), ("time", &time)],
            )
            .await;
            assert_eq!(
                !success(&instant)["result"].as_array().unwrap().is_empty(),
                expect_data,
                "{tenant} query {metric}"
            );
            let range = get_or_post(
                &client,
                &base,
                true,
                "query_range",
                t,
                &[
                    ("query", metric),
                    ("start", &start_s),
                    ("end", &end_s),
                    ("step", "60"),
                ],
            )
            .await;
            assert_eq!(
                !success(&range)["result"].as_array().unwrap().is_empty(),
                expect_data,
                "{tenant} query_range {metric}"
            );
            // A selector without a metric name is scoped as well.
            let by_label = get(
                &client,
                &base,
                "query",
                t,
                &[
                    ("query", &format!("{{__name__=~\"{metric}\"}}")),
                    ("time", &time),
                ],
            )
            .await;
            assert_eq!(
                !success(&by_label)["result"].as_array().unwrap().is_empty(),
                expect_data,
                "{tenant} name regex {metric}"
            );
        }
    }
    // A tenant that never wrote sees empty answers, not errors.
    let t = Some("team-empty");
    let answer = get(&client, &base, "labels", t, &[]).await;
    assert_eq!(success(&answer), &json!([]));
    let answer = get(&client, &base, "metadata", t, &[]).await;
    assert_eq!(success(&answer), &json!({}));
    // No tenant at all, with authentication on: 401.
    let (code, _) = get(&client, &base, "labels", None, &[]).await;
    assert_eq!(code, 401);
}

/// Malformed parameters are 400 bad_data with a message saying what to fix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_parameters_are_bad_data() {
    let s = start_strata("strata-query-bad", &[]).await;
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
            let answer = get_or_post(&client, &base, post, endpoint, None, &params).await;
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
    let answer = get(
        &client,
        &base,
        "query_exemplars",
        None,
        &[("query", "up"), ("start", "0"), ("end", "10")],
    )
    .await;
    assert_eq!(success(&answer), &json!([]));
    let answer = get(
        &client,
        &base,
        "format_query",
        None,
        &[("query", "sum(rate(x[5m]))by(job)")],
    )
    .await;
    assert_eq!(success(&answer), &json!("sum by (job) (rate(x[5m]))"));
    let answer = get(
        &client,
        &base,
        "parse_query",
        None,
        &[("query", "up{job=\"a\"}")],
    )
    .await;
    let ast = success(&answer);
    assert_eq!(ast["type"], "vectorSelector");
    assert_eq!(ast["name"], "up");
}

/// Asserts that `answer[key]` holds one message, starting with `text`
/// (Prometheus 3 appends the position in the query, such as " (1:6)").
fn only_annotation(answer: &Value, key: &str, text: &str) {
    let items = answer[key]
        .as_array()
        .unwrap_or_else(|| panic!("no {key}: {answer}"));
    assert_eq!(items.len(), 1, "{answer}");
    let item = items[0].as_str().unwrap();
    assert!(
        item.starts_with(text),
        "{item:?} does not start with {text:?}"
    );
}

/// The engine's warnings and infos reach the answer, in Prometheus 3's
/// `warnings` and `infos` keys, each present only when not empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warnings_and_infos_reach_the_answer() {
    let (s, client, t0) = start().await;
    let base = s.http();
    let last = t0 + (POINTS - 1) * STEP_MS;
    let time = secs(last);
    let not_a_counter = "PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: \"up\"";

    // `rate` of a gauge: an info, no warning; GET and POST.
    for post in [false, true] {
        let params = [("query", "rate(up[5m])"), ("time", time.as_str())];
        let answer = instant_by(&client, &base, post, &params).await;
        assert_eq!(success(&answer)["result"].as_array().unwrap().len(), 3);
        only_annotation(&answer.1, "infos", not_a_counter);
        assert!(answer.1.get("warnings").is_none(), "{}", answer.1);
    }
    // The same in a range query.
    let answer = range(
        &client,
        &base,
        "sum(rate(up[2m]))",
        &secs(t0 + 300_000),
        &time,
        "60",
    )
    .await;
    assert_eq!(success(&answer)["resultType"], "matrix");
    only_annotation(&answer.1, "infos", not_a_counter);

    // A counter's rate: neither key.
    let answer = instant(
        &client,
        &base,
        &[("query", "rate(http_requests_total[5m])"), ("time", &time)],
    )
    .await;
    success(&answer);
    let keys: Vec<&String> = answer.1.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["data", "status"], "{}", answer.1);

    // A quantile out of range: a warning, no info.
    let answer = instant(
        &client,
        &base,
        &[("query", "quantile(1.5, up)"), ("time", &time)],
    )
    .await;
    assert_eq!(success(&answer)["result"][0]["value"][1], "+Inf");
    only_annotation(
        &answer.1,
        "warnings",
        "PromQL warning: quantile value should be between 0 and 1, got 1.5",
    );
    assert!(answer.1.get("infos").is_none(), "{}", answer.1);
    let answer = instant(
        &client,
        &base,
        &[
            (
                "query",
                "histogram_quantile(-0.5, rate(nothing_bucket[5m]))",
            ),
            ("time", &time),
        ],
    )
    .await;
    success(&answer);
    only_annotation(
        &answer.1,
        "warnings",
        "PromQL warning: quantile value should be between 0 and 1, got -0.5",
    );

    // A limit's warning and the engine's info together.
    let answer = instant(
        &client,
        &base,
        &[("query", "rate(up[5m])"), ("time", &time), ("limit", "2")],
    )
    .await;
    assert_eq!(success(&answer)["result"].as_array().unwrap().len(), 2);
    assert_eq!(
        answer.1["warnings"],
        json!(["results truncated due to limit"])
    );
    only_annotation(&answer.1, "infos", not_a_counter);
}

/// `lookback_delta` changes how far back an instant selector looks, for
/// one query; without it the configured 5m applies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookback_delta_parameter() {
    let (s, client, t0) = start().await;
    let base = s.http();
    let last = t0 + (POINTS - 1) * STEP_MS;
    let count = |answer: &(u16, Value)| success(answer)["result"].as_array().unwrap().len();
    // Two minutes after the last sample.
    let late = secs(last + 120_000);
    let answer = instant(&client, &base, &[("query", "up"), ("time", &late)]).await;
    assert_eq!(count(&answer), 3, "{}", answer.1);
    for lookback in ["1m", "60", "90s"] {
        let answer = instant(
            &client,
            &base,
            &[
                ("query", "up"),
                ("time", &late),
                ("lookback_delta", lookback),
            ],
        )
        .await;
        assert_eq!(count(&answer), 0, "lookback {lookback}: {}", answer.1);
    }
    let answer = instant(
        &client,
        &base,
        &[("query", "up"), ("time", &late), ("lookback_delta", "3m")],
    )
    .await;
    assert_eq!(count(&answer), 3, "{}", answer.1);
    // Thirty seconds after the last sample, 1m is enough.
    let soon = secs(last + 30_000);
    let answer = instant(
        &client,
        &base,
        &[("query", "up"), ("time", &soon), ("lookback_delta", "1m")],
    )
    .await;
    assert_eq!(count(&answer), 3, "{}", answer.1);
    // In a range query, the steps more than 1m after the last sample are
    // empty with a 1m lookback.
    let answer = get_or_post(
        &client,
        &base,
        true,
        "query_range",
        Some(TENANT_A),
        &[
            ("query", "count(up)"),
            ("start", &secs(last)),
            ("end", &secs(last + 240_000)),
            ("step", "30"),
            ("lookback_delta", "1m"),
        ],
    )
    .await;
    let values = success(&answer)["result"][0]["values"]
        .as_array()
        .unwrap()
        .clone();
    let times: Vec<f64> = values.iter().map(|p| point(p).0).collect();
    let expected: Vec<f64> = [0, 30_000]
        .iter()
        .map(|d| (last + d) as f64 / 1000.0)
        .collect();
    assert_eq!(times, expected, "{}", answer.1);
    // A malformed lookback is bad_data, with Prometheus's message.
    let answer = instant(
        &client,
        &base,
        &[("query", "up"), ("lookback_delta", "soon")],
    )
    .await;
    assert_eq!(answer.0, 400);
    assert_eq!(answer.1["errorType"], "bad_data");
    assert_eq!(
        answer.1["error"],
        "error parsing lookback delta duration: cannot parse \"soon\" to a valid duration"
    );
}

/// `limit` on label names and label values keeps the first names or values
/// and says the answer was cut, as Prometheus 3 does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limit_truncates_labels_and_label_values() {
    let (s, client, _) = start().await;
    let base = s.http();
    let a = Some(TENANT_A);
    let truncated = json!(["results truncated due to limit"]);
    for post in [false, true] {
        let request = |endpoint: &'static str, params: Vec<(&'static str, &'static str)>| {
            let client = client.clone();
            let base = base.clone();
            async move { get_or_post(&client, &base, post, endpoint, a, &params).await }
        };
        // Four label names: limit 1 cuts, limit 4 does not.
        let answer = request("labels", vec![("limit", "1")]).await;
        assert_eq!(success(&answer), &json!(["__name__"]));
        assert_eq!(answer.1["warnings"], truncated);
        let answer = request("labels", vec![("limit", "3")]).await;
        assert_eq!(success(&answer), &json!(["__name__", "code", "instance"]));
        assert_eq!(answer.1["warnings"], truncated);
        let answer = request("labels", vec![("limit", "4")]).await;
        assert_eq!(success(&answer).as_array().unwrap().len(), 4);
        assert!(answer.1.get("warnings").is_none(), "{}", answer.1);
        let answer = request("labels", vec![("limit", "1"), ("match[]", "up")]).await;
        assert_eq!(success(&answer), &json!(["__name__"]));
        assert_eq!(answer.1["warnings"], truncated);

        // Two jobs: limit 1 cuts, limit 2 does not.
        let answer = request("label/job/values", vec![("limit", "1")]).await;
        assert_eq!(success(&answer), &json!(["api"]));
        assert_eq!(answer.1["warnings"], truncated);
        let answer = request("label/job/values", vec![("limit", "2")]).await;
        assert_eq!(success(&answer), &json!(["api", "db"]));
        assert!(answer.1.get("warnings").is_none(), "{}", answer.1);
        let answer = request(
            "label/instance/values",
            vec![("limit", "2"), ("match[]", "up")],
        )
        .await;
        assert_eq!(success(&answer), &json!(["a:1", "a:2"]));
        assert_eq!(answer.1["warnings"], truncated);
        let answer = request("label/__name__/values", vec![("limit", "0")]).await;
        assert_eq!(success(&answer), &json!(["http_requests_total", "up"]));
        assert!(answer.1.get("warnings").is_none(), "{}", answer.1);
        // A bad limit is bad_data.
        let answer = request("label/job/values", vec![("limit", "-1")]).await;
        assert_eq!(
            (answer.0, answer.1["errorType"].clone()),
            (400, json!("bad_data"))
        );
    }
}

/// Asserts an error answer: status, `errorType` and the exact message.
fn assert_error(answer: &(u16, Value), status: u16, error_type: &str, message: &str) {
    assert_eq!(answer.0, status, "{}", answer.1);
    assert_eq!(answer.1["status"], "error", "{}", answer.1);
    assert_eq!(answer.1["errorType"], error_type, "{}", answer.1);
    assert_eq!(answer.1["error"], message, "{}", answer.1);
}

const TOO_MANY_SAMPLES: &str =
    "query processing would load too many samples into memory in query execution";

/// `querier.max_samples` (set by flag): a query holding more samples is 422
/// `execution` with Prometheus's message; smaller ones still answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sample_limit_is_422_execution() {
    let (s, client, t0) =
        start_with_tenant_a("strata-query-max-samples", &["--querier.max-samples=100"]).await;
    let base = s.http();
    let last = t0 + (POINTS - 1) * STEP_MS;
    let time = secs(last);

    // Three series, twenty samples each within the lookback: allowed.
    let answer = instant(&client, &base, &[("query", "up"), ("time", &time)]).await;
    assert_eq!(success(&answer)["result"].as_array().unwrap().len(), 3);
    // One series' ten minutes: 40 samples, allowed.
    let answer = instant(
        &client,
        &base,
        &[("query", "up{instance=\"d:1\"}[10m]"), ("time", &time)],
    )
    .await;
    assert_eq!(
        success(&answer)["result"][0]["values"]
            .as_array()
            .unwrap()
            .len(),
        40
    );
    // Three series' ten minutes: 120 samples.
    for post in [false, true] {
        let params = [("query", "up[10m]"), ("time", time.as_str())];
        let answer = instant_by(&client, &base, post, &params).await;
        assert_error(&answer, 422, "execution", TOO_MANY_SAMPLES);
    }
    // A range query whose result has 3 series × 121 steps.
    let answer = range(&client, &base, "up", &secs(last - 600_000), &time, "5").await;
    assert_error(&answer, 422, "execution", TOO_MANY_SAMPLES);
    // The same at a coarser step (3 × 11 points) is fine.
    let answer = range(&client, &base, "up", &secs(last - 600_000), &time, "60").await;
    assert_eq!(success(&answer)["result"].as_array().unwrap().len(), 3);
}

/// A query that needs longer than its `timeout` parameter is 503 `timeout`
/// ("query timed out in …", naming the stage as Prometheus does); the same
/// query without it answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_is_503() {
    let (s, client, t0) = start().await;
    let base = s.http();
    let last = t0 + (POINTS - 1) * STEP_MS;
    let time = secs(last);
    // A day at quarter-second resolution: 345,600 steps of three series.
    let heavy = "max_over_time(up[1d:250ms])";
    let started = std::time::Instant::now();
    let answer = instant(&client, &base, &[("query", heavy), ("time", &time)]).await;
    assert_eq!(success(&answer)["result"].as_array().unwrap().len(), 3);
    let took = started.elapsed();
    assert!(
        took > std::time::Duration::from_millis(20),
        "the heavy query took only {took:?}; a 1ms timeout would not be a fair test"
    );
    for post in [false, true] {
        let params = [
            ("query", heavy),
            ("time", time.as_str()),
            ("timeout", "1ms"),
        ];
        let answer = instant_by(&client, &base, post, &params).await;
        assert_eq!(answer.0, 503, "{}", answer.1);
        assert_eq!(answer.1["status"], "error");
        assert_eq!(answer.1["errorType"], "timeout", "{}", answer.1);
        let error = answer.1["error"].as_str().unwrap();
        assert!(
            [
                "query timed out in query execution",
                "query timed out in expression evaluation",
                "query timed out in query queue",
            ]
            .contains(&error),
            "{error}"
        );
    }
    let answer = get(
        &client,
        &base,
        "query_range",
        Some(TENANT_A),
        &[
            ("query", "max_over_time(up[1d:1s])"),
            ("start", &secs(t0)),
            ("end", &time),
            ("step", "15"),
            ("timeout", "0.001"),
        ],
    )
    .await;
    assert_eq!(answer.0, 503, "{}", answer.1);
    assert_eq!(answer.1["errorType"], "timeout", "{}", answer.1);
    assert!(answer.1["error"]
        .as_str()
        .unwrap()
        .starts_with("query timed out in "));
}

/// `querier.max_series` (set by flag): a query fetching more series, over
/// all its selectors, is 422 `execution`; one within the limit answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn series_limit_is_422_execution() {
    let (s, client, t0) =
        start_with_tenant_a("strata-query-max-series", &["--querier.max-series=3"]).await;
    let base = s.http();
    let last = t0 + (POINTS - 1) * STEP_MS;
    let time = secs(last);
    let too_many = "the query hit the max number of series limit (limit: 3 series); narrow the selectors or raise querier.max_series";

    // Three series: allowed.
    let answer = instant(&client, &base, &[("query", "sum(up)"), ("time", &time)]).await;
    assert_eq!(success(&answer)["result"][0]["value"][1], "2");
    // Four series in one selector, or three and one in two.
    for query in [
        "{__name__=~\".+\"}",
        "count({job=~\"api|db\"})",
        "up or http_requests_total",
        "sum(up) + sum(rate(http_requests_total[5m]))",
    ] {
        for post in [false, true] {
            let params = [("query", query), ("time", time.as_str())];
            let answer = instant_by(&client, &base, post, &params).await;
            assert_error(&answer, 422, "execution", too_many);
        }
    }
    let answer = range(
        &client,
        &base,
        "count({__name__=~\"up|http_requests_total\"})",
        &secs(t0),
        &time,
        "60",
    )
    .await;
    assert_error(&answer, 422, "execution", too_many);
    let answer = range(&client, &base, "count(up)", &secs(t0), &time, "60").await;
    assert_eq!(success(&answer)["result"].as_array().unwrap().len(), 1);
}
