//! Property test of the query API as a whole: random query strings (the
//! engine's no-panic generators) with random `time`, `start`, `end`,
//! `step`, `timeout`, `limit` and `lookback_delta` strings, sent to
//! `query` and `query_range` by GET and by form POST through the querier's
//! router, over real ingester gRPC servers. Every answer must be one
//! Prometheus could give: 200, 400, 422 or 503, a JSON body of
//! Prometheus's shape whose `errorType` fits the status, and no panic.

#[path = "../../promql/tests/support/query_gen.rs"]
mod query_gen;
mod support;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::body::Body;
use http_body_util::BodyExt;
use proptest::prelude::*;
use serde_json::Value as Json;
use strata_model::STALE_NAN_BITS;
use strata_querier::{api_routes, ApiMetrics, Querier, QuerierConfig};
use support::{reader, ring_of, three, ts, TestIngester};
use tower::ServiceExt;

const TENANT: &str = "fuzz";

/// A router over three ingesters holding a little data, shared by the
/// properties (each case is one or two requests, not a new setup).
struct Env {
    rt: tokio::runtime::Runtime,
    router: axum::Router,
    _ingesters: Vec<TestIngester>,
}

fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (router, ingesters) = rt.block_on(async {
            let (a, b, c) = three().await;
            let stale = f64::from_bits(STALE_NAN_BITS);
            let mut data = Vec::new();
            for (i, job) in ["a", "b"].iter().enumerate() {
                let samples: Vec<(i64, f64)> = (0..20)
                    .map(|k| {
                        let v = if k == 10 {
                            stale
                        } else {
                            k as f64 * (i as f64 + 1.0)
                        };
                        (k * 30_000, v)
                    })
                    .collect();
                data.push(ts(
                    &[("__name__", "up"), ("instance", "x"), ("job", job)],
                    &samples,
                ));
                let counter: Vec<(i64, f64)> =
                    (0..20).map(|k| (k * 30_000, (k * 10) as f64)).collect();
                data.push(ts(
                    &[("__name__", "http_requests_total"), ("job", job)],
                    &counter,
                ));
                for le in ["0.1", "1", "+Inf"] {
                    let buckets: Vec<(i64, f64)> =
                        (0..20).map(|k| (k * 30_000, k as f64 * 2.0)).collect();
                    data.push(ts(
                        &[("__name__", "req_bucket"), ("job", job), ("le", le)],
                        &buckets,
                    ));
                }
            }
            for ing in [&a, &b, &c] {
                ing.push(TENANT, &data, &[]);
            }
            let config = QuerierConfig {
                // Bounds what a random query may cost.
                timeout: Duration::from_secs(1),
                max_samples: 1_000_000,
                ..QuerierConfig::default()
            };
            let ring = ring_of(&[&a, &b, &c]).await;
            let querier = Arc::new(Querier::new(config, reader(ring)));
            (
                api_routes(querier, true, ApiMetrics::default()),
                vec![a, b, c],
            )
        });
        Env {
            rt,
            router,
            _ingesters: ingesters,
        }
    })
}

/// Sends one request; returns the status and the body as text.
fn send(endpoint: &str, params: &[(String, String)], post: bool) -> (u16, String, String) {
    let env = env();
    let form = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params.iter())
        .finish();
    let path = format!("/prometheus/api/v1/{endpoint}");
    let request = if post {
        http::Request::builder()
            .method("POST")
            .uri(path)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("X-Scope-OrgID", TENANT)
            .body(Body::from(form))
    } else {
        http::Request::builder()
            .uri(format!("{path}?{form}"))
            .header("X-Scope-OrgID", TENANT)
            .body(Body::empty())
    }
    .unwrap();
    env.rt.block_on(async {
        let response = env.router.clone().oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            content_type,
            String::from_utf8(body.to_vec()).expect("UTF-8 body"),
        )
    })
}

fn is_string_array(v: &Json) -> bool {
    v.as_array()
        .is_some_and(|a| !a.is_empty() && a.iter().all(Json::is_string))
}

/// `[<seconds>, "<value>"]`.
fn is_point(v: &Json) -> bool {
    v.as_array()
        .is_some_and(|p| p.len() == 2 && p[0].is_number() && p[1].is_string())
}

fn is_metric(v: &Json) -> bool {
    v.as_object()
        .is_some_and(|m| m.values().all(Json::is_string))
}

/// Checks an answer against Prometheus's API: status codes, the envelope
/// and, for successes, the result's shape. Panics with the request on a
/// mismatch.
fn check_answer(endpoint: &str, params: &[(String, String)], answer: &(u16, String, String)) {
    let (status, content_type, text) = answer;
    let context = format!("{endpoint} {params:?} -> {status} {text}");
    assert!(
        [200, 400, 422, 503].contains(status),
        "unexpected status: {context}"
    );
    assert!(
        content_type.starts_with("application/json"),
        "content type {content_type:?}: {context}"
    );
    let body: Json =
        serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {context}"));
    let object = body.as_object().unwrap_or_else(|| panic!("{context}"));
    if *status == 200 {
        assert_eq!(body["status"], "success", "{context}");
        for key in object.keys() {
            assert!(
                ["status", "data", "warnings", "infos"].contains(&key.as_str()),
                "key {key:?}: {context}"
            );
        }
        for key in ["warnings", "infos"] {
            if object.contains_key(key) {
                assert!(is_string_array(&body[key]), "{key}: {context}");
                assert!(body[key].as_array().unwrap().len() <= 11, "{context}");
            }
        }
        let data = &body["data"];
        let result = &data["result"];
        let result_type = data["resultType"].as_str().unwrap_or_default();
        if endpoint == "query_range" {
            assert_eq!(result_type, "matrix", "{context}");
        }
        match result_type {
            "vector" => assert!(
                result.as_array().is_some_and(|r| r
                    .iter()
                    .all(|s| is_metric(&s["metric"]) && is_point(&s["value"]))),
                "{context}"
            ),
            "matrix" => assert!(
                result.as_array().is_some_and(|r| r.iter().all(|s| {
                    is_metric(&s["metric"])
                        && s["values"]
                            .as_array()
                            .is_some_and(|ps| !ps.is_empty() && ps.iter().all(is_point))
                })),
                "{context}"
            ),
            "scalar" => assert!(is_point(result), "{context}"),
            "string" => assert!(
                result
                    .as_array()
                    .is_some_and(|p| p.len() == 2 && p[0].is_number() && p[1].is_string()),
                "{context}"
            ),
            other => panic!("resultType {other:?}: {context}"),
        }
    } else {
        assert_eq!(body["status"], "error", "{context}");
        let keys: Vec<&str> = object.keys().map(String::as_str).collect();
        assert_eq!(keys.len(), 3, "{context}");
        let error_type = body["errorType"].as_str().unwrap_or_default();
        let allowed: &[&str] = match status {
            400 => &["bad_data"],
            422 => &["execution"],
            _ => &["timeout", "unavailable"],
        };
        assert!(
            allowed.contains(&error_type),
            "errorType {error_type:?} for {status}: {context}"
        );
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{context}"
        );
    }
}

/// Sends `params` by GET and by POST; both answers must be valid, and the
/// same status unless one of them ran out of time.
fn check_both(endpoint: &str, params: &[(String, String)]) {
    let get = send(endpoint, params, false);
    check_answer(endpoint, params, &get);
    let post = send(endpoint, params, true);
    check_answer(endpoint, params, &post);
    if get.0 != 503 && post.0 != 503 {
        assert_eq!(
            get.0, post.0,
            "GET and POST differ for {endpoint} {params:?}: {} / {}",
            get.2, post.2
        );
    }
}

const TIMES: &[&str] = &[
    "0",
    "300",
    "600",
    "299.999",
    "-300",
    "1.5",
    "1e3",
    "1970-01-01T00:05:00Z",
    "1970-01-01T00:05:00.5+01:00",
    "-292273086-05-16T16:47:06Z",
    "292277025-08-18T07:12:54.999999999Z",
    "9223372036854775807",
    "-9223372036854775808",
    "1e300",
    "NaN",
    "Inf",
    "-Inf",
    "0x10",
    "1_000",
    "now",
    "",
    " 300",
];

const DURATIONS: &[&str] = &[
    "15",
    "1",
    "0.001",
    "0",
    "-15",
    "15s",
    "1ms",
    "1m",
    "1h30m",
    "1d",
    "1y",
    "5m30s",
    "1e20",
    "1e-9",
    "NaN",
    "Inf",
    "5x",
    "1s1m",
    "999999999y",
    "",
    "m",
];

const LIMITS: &[&str] = &[
    "0",
    "1",
    "2",
    "3",
    "-1",
    "x",
    "1.5",
    "99999999999999999999",
    "",
];

const QUERIES: &[&str] = &[
    "up",
    "rate(up[5m])",
    "sum by (job) (rate(http_requests_total[5m]))",
    "histogram_quantile(1.5, req_bucket)",
    "quantile(2, up)",
    "max_over_time(up[10m:1ms])",
    "sort(up)",
    "\"text\"",
    "up[5m]",
    "1",
    "",
];

/// Any short string, control characters excepted.
fn junk() -> impl Strategy<Value = Option<String>> {
    "\\PC{0,10}".prop_map(Some)
}

/// Seconds, with up to millisecond decimals, around the data (0s to 570s).
fn seconds() -> impl Strategy<Value = String> {
    (-100_000i64..900_000).prop_map(|ms| format!("{}", ms as f64 / 1000.0))
}

/// A time parameter: mostly a valid time near the data, sometimes absent,
/// an edge case, any float or junk.
fn time_param() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        1 => Just(None),
        6 => seconds().prop_map(Some),
        2 => prop::sample::select(TIMES).prop_map(|s| Some(s.to_string())),
        1 => any::<f64>().prop_map(|f| Some(f.to_string())),
        1 => junk(),
    ]
}

/// `start` and `end`: mostly a valid range, sometimes two independent
/// time parameters.
fn range_params() -> impl Strategy<Value = (Option<String>, Option<String>)> {
    prop_oneof![
        3 => (-100_000i64..900_000, -60_000i64..1_200_000).prop_map(|(start, length)| {
            let s = |ms: i64| Some(format!("{}", ms as f64 / 1000.0));
            (s(start), s(start + length))
        }),
        1 => (time_param(), time_param()),
    ]
}

/// A duration (`step`, `lookback_delta`): mostly valid, sometimes an edge
/// case or junk.
fn duration_param() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        1 => Just(None),
        4 => (1u32..120_000).prop_map(|ms| Some(format!("{ms}ms"))),
        4 => (1u32..600).prop_map(|s| Some(s.to_string())),
        1 => prop::sample::select(DURATIONS).prop_map(|s| Some(s.to_string())),
        1 => junk(),
    ]
}

/// Optional parameters (`timeout`, `limit`, `lookback_delta`): mostly
/// absent.
fn optional(value: impl Strategy<Value = Option<String>>) -> impl Strategy<Value = Option<String>> {
    prop_oneof![3 => Just(None), 1 => value]
}

fn limit_param() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        3 => (0u32..4).prop_map(|n| Some(n.to_string())),
        1 => prop::sample::select(LIMITS).prop_map(|s| Some(s.to_string())),
        1 => junk(),
    ]
}

fn query_text() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => query_gen::any_query(),
        1 => prop::sample::select(query_gen::SEEDS).prop_map(str::to_string),
        1 => prop::sample::select(QUERIES).prop_map(str::to_string),
    ]
}

/// A query request's parameters: `query`, the endpoint's own (`own`), then
/// `timeout`, `limit` and `lookback_delta`, as [`params`] orders them.
fn query_params(
    query: String,
    own: Vec<(&'static str, Option<String>)>,
    timeout: Option<String>,
    limit: Option<String>,
    lookback: Option<String>,
    order: u64,
) -> Vec<(String, String)> {
    let mut named = vec![("query", Some(query))];
    named.extend(own);
    named.extend([
        ("timeout", timeout),
        ("limit", limit),
        ("lookback_delta", lookback),
    ]);
    params(named, order)
}

/// Named parameters in random order; absent ones are left out.
fn params(named: Vec<(&'static str, Option<String>)>, order: u64) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = named
        .into_iter()
        .filter_map(|(n, v)| v.map(|v| (n.to_string(), v)))
        .collect();
    if !out.is_empty() {
        let k = (order % out.len() as u64) as usize;
        out.rotate_left(k);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn instant_queries_answer_like_prometheus(
        query in query_text(),
        time in time_param(),
        timeout in optional(duration_param()),
        limit in optional(limit_param()),
        lookback in optional(duration_param()),
        order in any::<u64>(),
    ) {
        let p = query_params(query, vec![("time", time)], timeout, limit, lookback, order);
        check_both("query", &p);
    }

    #[test]
    fn range_queries_answer_like_prometheus(
        query in query_text(),
        (start, end) in range_params(),
        step in duration_param(),
        timeout in optional(duration_param()),
        limit in optional(limit_param()),
        lookback in optional(duration_param()),
        order in any::<u64>(),
    ) {
        let own = vec![("start", start), ("end", end), ("step", step)];
        let p = query_params(query, own, timeout, limit, lookback, order);
        check_both("query_range", &p);
    }
}

/// The checker itself: answers of each kind it must accept, and some it
/// must refuse (so the properties above can fail).
#[test]
fn the_checker_tells_valid_answers_from_invalid_ones() {
    let ok = |status: u16, body: &str| {
        std::panic::catch_unwind(|| {
            check_answer(
                "query",
                &[],
                &(status, "application/json".into(), body.into()),
            )
        })
        .is_ok()
    };
    assert!(ok(
        200,
        r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":"b"},"value":[1,"2"]}]},"infos":["PromQL info: x"]}"#
    ));
    assert!(ok(
        200,
        r#"{"status":"success","data":{"resultType":"scalar","result":[1.5,"2"]}}"#
    ));
    assert!(ok(
        400,
        r#"{"status":"error","errorType":"bad_data","error":"x"}"#
    ));
    assert!(ok(
        503,
        r#"{"status":"error","errorType":"timeout","error":"query timed out in query execution"}"#
    ));
    for (status, body) in [
        (
            500,
            r#"{"status":"error","errorType":"internal","error":"x"}"#,
        ),
        (
            400,
            r#"{"status":"error","errorType":"execution","error":"x"}"#,
        ),
        (422, r#"{"status":"error","errorType":"execution"}"#),
        (
            200,
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,2]}]}}"#,
        ),
        (
            200,
            r#"{"status":"success","data":{"resultType":"vector","result":[]},"warnings":[]}"#,
        ),
        (
            200,
            r#"{"status":"success","data":{"resultType":"table","result":[]}}"#,
        ),
        (200, "not json"),
    ] {
        assert!(!ok(status, body), "accepted {status} {body}");
    }
}
