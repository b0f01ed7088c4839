//! Differential test: the same data remote-written into Strata and into a
//! real Prometheus 2.42; every query of `queries/differential.promql` is run
//! against both (instant queries at several times, and range queries), and
//! the answers must agree within 1e-6 relative. Queries marked `!` must be
//! refused by both with the same error type, `!range` ones refused as range
//! queries; any other error fails the test (the query file's header has the
//! markers).
//!
//! Prometheus 3 (which Strata follows) differs from 2.42 in a few known
//! ways; docs/promql-compatibility.md ("Prometheus 2.x → 3.x differences
//! the test allows for") lists each and how this test keeps it out of the
//! comparison (off-grid sample and evaluation times, `ours ||| prometheus`
//! spellings, the `~` marker).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;
use strata_e2e::*;

const STEP_MS: i64 = 15_000;
const POINTS: i64 = 240; // one hour
const JOB: &str = "diff";

/// One series of the data set: labels and samples.
type DataSeries = (Vec<(String, String)>, Vec<(i64, f64)>);

/// The series of the data set.
fn dataset(base: i64) -> Vec<DataSeries> {
    let mut out = Vec::new();
    let ts = |i: i64| base + i * STEP_MS;
    let l = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        v.push(("job".into(), JOB.into()));
        v.sort();
        v
    };
    for inst in 0..4 {
        let instance = format!("i{inst}");
        for (mi, method) in ["GET", "POST"].iter().enumerate() {
            for (si, status) in ["200", "500"].iter().enumerate() {
                let rate = 1.0 + inst as f64 * 0.7 + mi as f64 * 2.3 + si as f64 * 0.1;
                let mut v = 0.0;
                let mut samples = Vec::new();
                for i in 0..POINTS {
                    // A counter reset at 30 minutes for instance i1.
                    if inst == 1 && i == 120 {
                        v = 0.0;
                    }
                    v += rate * 15.0 * (1.0 + ((i * (inst + 1)) % 7) as f64 / 10.0);
                    samples.push((ts(i), v.floor()));
                }
                out.push((
                    l(&[
                        ("__name__", "http_requests_total"),
                        ("instance", &instance),
                        ("method", method),
                        ("status", status),
                    ]),
                    samples,
                ));
            }
        }
        for cpu in 0..2 {
            for (mi, mode) in ["idle", "user", "system"].iter().enumerate() {
                let mut v = 1000.0 * inst as f64;
                let share = [0.7, 0.2, 0.1][mi];
                let samples = (0..POINTS)
                    .map(|i| {
                        v += 15.0 * share * (1.0 + ((i + cpu) % 5) as f64 / 20.0);
                        (ts(i), (v * 1000.0).round() / 1000.0)
                    })
                    .collect();
                out.push((
                    l(&[
                        ("__name__", "cpu_seconds_total"),
                        ("instance", &instance),
                        ("cpu", &cpu.to_string()),
                        ("mode", mode),
                    ]),
                    samples,
                ));
            }
        }
        for sensor in ["a", "b"] {
            let phase = inst as f64 + if sensor == "a" { 0.0 } else { 1.5 };
            let samples = (0..POINTS)
                .map(|i| {
                    let x = i as f64 / 20.0 + phase;
                    (ts(i), ((x.sin() * 20.0 + 5.0) * 100.0).round() / 100.0)
                })
                .collect();
            out.push((
                l(&[
                    ("__name__", "temperature_celsius"),
                    ("instance", &instance),
                    ("sensor", sensor),
                ]),
                samples,
            ));
        }
        // A gauge with a gap (20-25 min) and a staleness marker at 40 min,
        // coming back at 45 min.
        let stale = f64::from_bits(strata_model::STALE_NAN_BITS);
        let samples = (0..POINTS)
            .filter(|i| !(80..100).contains(i) && !(161..180).contains(i))
            .map(|i| {
                let v = if i == 160 {
                    stale
                } else {
                    ((i * 7 + inst * 3) % 23) as f64
                };
                (ts(i), v)
            })
            .collect();
        out.push((
            l(&[("__name__", "queue_depth"), ("instance", &instance)]),
            samples,
        ));
        // A classic histogram.
        let bounds = ["0.1", "0.5", "1", "5", "+Inf"];
        let mut counts = [0.0f64; 5];
        let mut sum = 0.0;
        let mut per_bucket: Vec<Vec<(i64, f64)>> = vec![Vec::new(); 5];
        let mut sums = Vec::new();
        let mut totals = Vec::new();
        for i in 0..POINTS {
            let obs = [3.0, 5.0, 2.0, 1.0, 0.5 + inst as f64 * 0.1];
            let mut cumulative = 0.0;
            for b in 0..5 {
                counts[b] += obs[b] * (1.0 + ((i + b as i64) % 3) as f64);
                cumulative += counts[b];
                per_bucket[b].push((ts(i), cumulative));
            }
            sum += 0.3 * (i % 11) as f64 + 1.0;
            sums.push((ts(i), (sum * 100.0).round() / 100.0));
            totals.push((ts(i), cumulative));
        }
        for (b, le) in bounds.iter().enumerate() {
            out.push((
                l(&[
                    ("__name__", "request_duration_seconds_bucket"),
                    ("instance", &instance),
                    ("le", le),
                ]),
                per_bucket[b].clone(),
            ));
        }
        out.push((
            l(&[
                ("__name__", "request_duration_seconds_sum"),
                ("instance", &instance),
            ]),
            sums,
        ));
        out.push((
            l(&[
                ("__name__", "request_duration_seconds_count"),
                ("instance", &instance),
            ]),
            totals,
        ));
        out.push((
            l(&[
                ("__name__", "build_info"),
                ("instance", &instance),
                ("version", &format!("1.{}", inst % 2)),
            ]),
            (0..POINTS).map(|i| (ts(i), 1.0)).collect(),
        ));
    }
    out
}

/// Remote-writes the data set in time order, 20 points per request.
async fn load(client: &reqwest::Client, url: &str, data: &[DataSeries]) {
    let mut from = data.iter().map(|(_, s)| s[0].0).min().unwrap_or(0);
    let last = data
        .iter()
        .filter_map(|(_, s)| s.last().map(|x| x.0))
        .max()
        .unwrap_or(0);
    while from <= last {
        let to = from + 20 * STEP_MS;
        let batch: Vec<_> = data
            .iter()
            .filter_map(|(labels, samples)| {
                let part: Vec<(i64, f64)> = samples
                    .iter()
                    .copied()
                    .filter(|(t, _)| *t >= from && *t < to)
                    .collect();
                if part.is_empty() {
                    return None;
                }
                let pairs: Vec<(&str, &str)> = labels
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.as_str()))
                    .collect();
                Some(series(&pairs, &part))
            })
            .collect();
        let resp = client
            .post(url)
            .header("Content-Type", "application/x-protobuf")
            .header("Content-Encoding", "snappy")
            .header("X-Prometheus-Remote-Write-Version", "0.1.0")
            .body(write_body(&batch))
            .send()
            .await
            .expect("remote write");
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        assert!(status.is_success(), "{url}: {status} {text}");
        from = to;
    }
}

/// A query answer reduced to comparable form: result type and, per series
/// (labels as text), its points.
#[derive(Debug)]
struct Answer {
    kind: String,
    series: Vec<(String, Vec<(f64, f64)>)>,
}

fn value_of(s: &str) -> f64 {
    match s {
        "NaN" => f64::NAN,
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        other => other.parse().unwrap_or(f64::NAN),
    }
}

fn point(p: &Value) -> (f64, f64) {
    (
        p[0].as_f64().unwrap_or(f64::NAN),
        value_of(p[1].as_str().unwrap_or("")),
    )
}

fn labels_text(metric: &Value) -> String {
    let pairs = metric
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    format!("{:?}", strata_model::Labels::from_pairs(pairs).as_slice())
}

/// A refusal: the API's `errorType` and `error`.
#[derive(Debug)]
struct Refusal {
    kind: String,
    message: String,
}

async fn ask(
    client: &reqwest::Client,
    url: &str,
    params: &[(&str, String)],
) -> Result<Answer, Refusal> {
    let failed = |kind: &str, message: String| Refusal {
        kind: kind.to_string(),
        message,
    };
    let resp = client
        .get(url)
        .query(params)
        .send()
        .await
        .map_err(|e| failed("request", e.to_string()))?;
    let body: Value = resp
        .json()
        .await
        .map_err(|e| failed("not json", e.to_string()))?;
    if body["status"] != "success" {
        return Err(failed(
            body["errorType"].as_str().unwrap_or("?"),
            body["error"].as_str().unwrap_or("?").to_string(),
        ));
    }
    let kind = body["data"]["resultType"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let result = &body["data"]["result"];
    let series = match kind.as_str() {
        "scalar" | "string" => vec![(String::new(), vec![point(result)])],
        "vector" => result
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|s| (labels_text(&s["metric"]), vec![point(&s["value"])]))
                    .collect()
            })
            .unwrap_or_default(),
        "matrix" => result
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|s| {
                        let pts = s["values"]
                            .as_array()
                            .map(|v| v.iter().map(point).collect())
                            .unwrap_or_default();
                        (labels_text(&s["metric"]), pts)
                    })
                    .collect()
            })
            .unwrap_or_default(),
        other => return Err(failed("unknown result type", other.to_string())),
    };
    Ok(Answer { kind, series })
}

fn close(a: f64, b: f64) -> bool {
    if a.is_nan() || b.is_nan() {
        return a.is_nan() && b.is_nan();
    }
    if a == b {
        return true;
    }
    let diff = (a - b).abs();
    diff <= 1e-6 * a.abs().max(b.abs()) || diff < 1e-12
}

/// Why two answers differ, or None when they agree. With `values` false
/// only the result type and the series are compared.
fn compare(ours: &Answer, theirs: &Answer, ordered: bool, values: bool) -> Option<String> {
    if ours.kind != theirs.kind {
        return Some(format!("result type {} vs {}", ours.kind, theirs.kind));
    }
    if ordered {
        let a: Vec<&String> = ours.series.iter().map(|s| &s.0).collect();
        let b: Vec<&String> = theirs.series.iter().map(|s| &s.0).collect();
        if a != b {
            return Some(format!("order {a:?} vs {b:?}"));
        }
    }
    let a: BTreeMap<&String, &Vec<(f64, f64)>> = ours.series.iter().map(|s| (&s.0, &s.1)).collect();
    let b: BTreeMap<&String, &Vec<(f64, f64)>> =
        theirs.series.iter().map(|s| (&s.0, &s.1)).collect();
    if a.len() != ours.series.len() {
        return Some("duplicate series in our answer".into());
    }
    let ka: Vec<_> = a.keys().collect();
    let kb: Vec<_> = b.keys().collect();
    if ka != kb {
        return Some(format!("series {ka:?} vs {kb:?}"));
    }
    if !values {
        return None;
    }
    for (k, pa) in &a {
        let pb = b[k];
        if pa.len() != pb.len() {
            return Some(format!("{k}: {} points vs {}", pa.len(), pb.len()));
        }
        for (x, y) in pa.iter().zip(pb.iter()) {
            if (x.0 - y.0).abs() > 1e-3 || !close(x.1, y.1) {
                return Some(format!("{k}: point {x:?} vs {y:?}"));
            }
        }
    }
    None
}

/// One request of a query to both systems: a description, our parameters,
/// Prometheus's, and whether it is a range query.
type Request = (
    String,
    Vec<(&'static str, String)>,
    Vec<(&'static str, String)>,
    bool,
);

/// How a query of the query file is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Marker {
    /// Answered by both, compared value by value.
    Values,
    /// `~`: answered by both, compared by result type and series.
    SeriesOnly,
    /// `!range`: instant queries compared by value, range queries refused.
    RangeRefused,
    /// `!`: refused by both, always.
    Refused,
}

/// One query of the query file.
#[derive(Debug)]
struct Query {
    marker: Marker,
    /// Our spelling and Prometheus 2.42's (the same unless `|||`).
    ours: String,
    prometheus: String,
    /// 1-based line in the file.
    line: usize,
}

fn query_file() -> PathBuf {
    workspace_root().join("tests/e2e/queries/differential.promql")
}

fn parse_query_file(text: &str) -> Vec<Query> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (marker, rest) = if let Some(rest) = line.strip_prefix("!range ") {
            (Marker::RangeRefused, rest)
        } else if let Some(rest) = line.strip_prefix("! ") {
            (Marker::Refused, rest)
        } else if let Some(rest) = line.strip_prefix("~ ") {
            (Marker::SeriesOnly, rest)
        } else {
            (Marker::Values, line)
        };
        let (ours, prometheus) = match rest.split_once("|||") {
            Some((a, b)) => (a.trim().to_string(), b.trim().to_string()),
            None => (rest.trim().to_string(), rest.trim().to_string()),
        };
        out.push(Query {
            marker,
            ours,
            prometheus,
            line: i + 1,
        });
    }
    out
}

fn outcome(r: &Result<Answer, Refusal>) -> String {
    match r {
        Ok(a) => format!("answered ({}, {} series)", a.kind, a.series.len()),
        Err(e) => format!("refused ({}: {})", e.kind, e.message),
    }
}

/// Whether `q` calls `name` (a function or aggregation).
fn calls(q: &str, name: &str) -> bool {
    q.match_indices(name).any(|(i, _)| {
        let before = q[..i].chars().next_back();
        let after = q[i + name.len()..].trim_start();
        !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
            && (after.starts_with('(') || after.starts_with("by") || after.starts_with("without"))
    })
}

/// Functions of Prometheus 2.42 for float data (native-histogram functions
/// left out); `holt_winters` is compared as our `double_exponential_smoothing`.
const FUNCTIONS: &[&str] = &[
    "abs",
    "absent",
    "absent_over_time",
    "acos",
    "acosh",
    "asin",
    "asinh",
    "atan",
    "atanh",
    "avg_over_time",
    "ceil",
    "changes",
    "clamp",
    "clamp_max",
    "clamp_min",
    "cos",
    "cosh",
    "count_over_time",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "days_in_month",
    "deg",
    "delta",
    "deriv",
    "double_exponential_smoothing",
    "exp",
    "floor",
    "histogram_quantile",
    "hour",
    "idelta",
    "increase",
    "irate",
    "label_join",
    "label_replace",
    "last_over_time",
    "ln",
    "log10",
    "log2",
    "max_over_time",
    "min_over_time",
    "minute",
    "month",
    "pi",
    "predict_linear",
    "present_over_time",
    "quantile_over_time",
    "rad",
    "rate",
    "resets",
    "round",
    "scalar",
    "sgn",
    "sin",
    "sinh",
    "sort",
    "sort_desc",
    "sqrt",
    "stddev_over_time",
    "stdvar_over_time",
    "sum_over_time",
    "tan",
    "tanh",
    "time",
    "timestamp",
    "vector",
    "year",
];

/// Every aggregation of Prometheus 2.42.
const AGGREGATIONS: &[&str] = &[
    "sum",
    "avg",
    "min",
    "max",
    "count",
    "group",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "quantile",
    "count_values",
];

/// Operators, modifiers and selector forms, as the query file writes them.
const OPERATORS: &[(&str, &str)] = &[
    ("addition", " + "),
    ("subtraction", " - "),
    ("multiplication", " * "),
    ("division", " / "),
    ("modulo", " % "),
    ("power", " ^ "),
    ("unary minus", "-temperature"),
    ("==", " == "),
    ("!=", " != "),
    (">", " > "),
    ("<", " < "),
    (">=", " >= "),
    ("<=", " <= "),
    ("bool", " bool "),
    ("and", " and "),
    ("or", " or "),
    ("unless", " unless "),
    ("atan2", " atan2 "),
    ("on", " on("),
    ("ignoring", " ignoring("),
    ("group_left", " group_left"),
    ("group_right", " group_right"),
    ("offset", " offset "),
    ("negative offset", " offset -"),
    ("@ <timestamp>", " @ {T"),
    ("@ start()", " @ start()"),
    ("@ end()", " @ end()"),
    ("subquery", ":1m]"),
    ("subquery with the default step", ":]"),
    ("regex matcher", "=~"),
    ("negative regex matcher", "!~"),
    ("range selector", "[5m]"),
];

/// The query file covers every function, aggregation and operator family
/// with queries compared by value, at least 150 of them. (That `!` queries
/// really fail in both systems is checked against the servers.)
#[test]
fn query_file_covers_every_function_and_operator() {
    let text = std::fs::read_to_string(query_file()).expect("query file");
    let queries = parse_query_file(&text);
    let compared: Vec<&Query> = queries
        .iter()
        .filter(|q| matches!(q.marker, Marker::Values | Marker::RangeRefused))
        .collect();
    assert!(
        compared.len() >= 150,
        "only {} queries compared by value",
        compared.len()
    );
    let mut missing = Vec::new();
    for f in FUNCTIONS.iter().chain(AGGREGATIONS) {
        if !compared.iter().any(|q| calls(&q.ours, f)) {
            missing.push(format!("function/aggregation {f}"));
        }
    }
    for (name, text) in OPERATORS {
        if !compared.iter().any(|q| q.ours.contains(text)) {
            missing.push(format!("operator {name} ({text:?})"));
        }
    }
    assert!(missing.is_empty(), "not compared by value: {missing:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promql_answers_match_prometheus() {
    let bin = prometheus_bin();
    assert!(
        bin.exists(),
        "{} missing: make test installs Prometheus",
        bin.display()
    );

    let mut strata = start_strata("strata-diff", &[]).await;
    let prom_port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("prometheus.yml");
    std::fs::write(&config_path, "global:\n  scrape_interval: 1h\n").unwrap();
    let args = vec![
        format!("--config.file={}", config_path.display()),
        format!("--storage.tsdb.path={}", dir.path().join("data").display()),
        format!("--web.listen-address=127.0.0.1:{prom_port}"),
        "--web.enable-remote-write-receiver".to_string(),
    ];
    let mut prom = Proc::start("prometheus-diff", &bin, &args, None);
    let prom_base = format!("http://127.0.0.1:{prom_port}");
    wait_ready(
        &format!("{prom_base}/-/ready"),
        Duration::from_secs(30),
        &mut prom,
    )
    .await
    .expect("prometheus ready");

    // One hour of data ending a minute ago, samples 1.234 s past each 15 s
    // boundary.
    let now = now_ms();
    let base = (now - 3_660_000) / 60_000 * 60_000 + 1_234;
    let data = dataset(base);
    let client = reqwest::Client::new();
    load(&client, &format!("{}/api/v1/push", strata.http()), &data).await;
    load(&client, &format!("{prom_base}/api/v1/write"), &data).await;

    let text = std::fs::read_to_string(query_file()).expect("query file");
    let queries = parse_query_file(&text);
    let secs = |ms: i64| format!("{:.3}", ms as f64 / 1000.0);
    let subst = |q: &str| {
        q.replace("{T0}", &secs(base).replace(".234", ""))
            .replace("{T30}", &((base + 1_800_000) / 1000).to_string())
            .replace("{T40}", &((base + 2_400_000) / 1000).to_string())
            .replace("{T50}", &((base + 3_000_000) / 1000).to_string())
    };
    let instants = [base + 1_207_300, base + 2_409_900, base + 3_593_700];
    let (range_start, range_end) = (base + 607_300, base + 3_597_300);

    let ours_url = format!("{}/prometheus/api/v1/query", strata.http());
    let ours_range = format!("{}/prometheus/api/v1/query_range", strata.http());
    let prom_url = format!("{prom_base}/api/v1/query");
    let prom_range = format!("{prom_base}/api/v1/query_range");
    let mut failures = Vec::new();
    // Answers compared value by value, answers compared by series only,
    // and requests both systems refused as expected.
    let (mut by_value, mut by_series, mut refused) = (0, 0, 0);
    for q in &queries {
        let (ours_q, prom_q) = (subst(&q.ours), subst(&q.prometheus));
        let ordered = ours_q.starts_with("sort");
        let mut requests: Vec<Request> = Vec::new();
        for t in instants {
            let params = |q: &str| vec![("query", q.to_string()), ("time", secs(t))];
            requests.push((
                format!("line {}: instant {ours_q} @ {}", q.line, secs(t)),
                params(&ours_q),
                params(&prom_q),
                false,
            ));
        }
        for step in ["60", "37"] {
            let params = |q: &str| {
                vec![
                    ("query", q.to_string()),
                    ("start", secs(range_start)),
                    ("end", secs(range_end)),
                    ("step", step.to_string()),
                ]
            };
            requests.push((
                format!("line {}: range {ours_q} step {step}", q.line),
                params(&ours_q),
                params(&prom_q),
                true,
            ));
        }
        for (what, ours_params, prom_params, range) in requests {
            let (ours_url, prom_url) = if range {
                (&ours_range, &prom_range)
            } else {
                (&ours_url, &prom_url)
            };
            let a = ask(&client, ours_url, &ours_params).await;
            let b = ask(&client, prom_url, &prom_params).await;
            let must_refuse = match q.marker {
                Marker::Refused => true,
                Marker::RangeRefused => range,
                Marker::Values | Marker::SeriesOnly => false,
            };
            match (a, b) {
                (Err(a), Err(b)) if must_refuse => {
                    if a.kind == b.kind {
                        refused += 1;
                    } else {
                        failures.push(format!(
                            "{what}: refused as {} ({}) vs prometheus {} ({})",
                            a.kind, a.message, b.kind, b.message
                        ));
                    }
                }
                (a, b) if must_refuse => failures.push(format!(
                    "{what}: marked to be refused by both, but ours {} and prometheus {}",
                    outcome(&a),
                    outcome(&b)
                )),
                (Ok(a), Ok(b)) => {
                    let values = q.marker != Marker::SeriesOnly;
                    match compare(&a, &b, ordered && !range, values) {
                        Some(why) => failures.push(format!("{what}: {why}")),
                        None if values => by_value += 1,
                        None => by_series += 1,
                    }
                }
                (a, b) => failures.push(format!(
                    "{what}: unmarked query refused: ours {} and prometheus {}",
                    outcome(&a),
                    outcome(&b)
                )),
            }
        }
    }
    let compared_queries = queries
        .iter()
        .filter(|q| matches!(q.marker, Marker::Values | Marker::RangeRefused))
        .count();
    println!(
        "{} queries: {compared_queries} compared by value ({by_value} answers), {} by series \
         ({by_series} answers), {refused} requests refused by both as expected; {} failures",
        queries.len(),
        queries
            .iter()
            .filter(|q| q.marker == Marker::SeriesOnly)
            .count(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} answers differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // Every value-compared query was answered and compared at every time.
    let expected_by_value: usize = queries
        .iter()
        .map(|q| match q.marker {
            Marker::Values => 5,
            Marker::RangeRefused => 3,
            _ => 0,
        })
        .sum();
    assert_eq!(by_value, expected_by_value);
    assert!(
        compared_queries >= 150,
        "only {compared_queries} queries compared by value"
    );
    assert!(prom.terminate(Duration::from_secs(30)));
    assert!(strata.proc.terminate(Duration::from_secs(20)));
}
