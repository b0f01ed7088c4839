//! Long-term storage end to end: ingesters flush chunks to s3s-fs (S3
//! API) and the series index to dynalite (DynamoDB API), with memcached in
//! front; the querier reads ingesters for what they hold and the store for
//! the rest.
//!
//! The data is two hours of samples ending ten minutes ago, so with
//! one-minute chunk windows every window is long over and flushes on the
//! next flush cycle.
//!
//! - Answers read back from the store, after the ingesters dropped the data,
//!   are the answers the ingesters gave before any flush, value by value;
//!   also with memcached down and with memcached empty again.
//! - Replication factor 3 stores at most 1.2 times the bytes of
//!   replication factor 1 (replicas cut identical chunks and the later ones
//!   skip what an earlier one stored), for past data and for a live window.
//! - A flipped byte in a chunk object is an error naming the object, never
//!   a 200 with other values; other objects still answer.
//! - The one-process `strata` flushes everything on SIGTERM and answers the
//!   same after a restart on the same data directory.
//!
//! The tests of this file run one at a time ([`SERIAL`]): each starts up to
//! a dozen processes on a machine that may have two cores.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use strata_chunk_store::{Footer, ObjectIndex, FOOTER_LEN, RECORD_OVERHEAD};
use strata_e2e::*;

const TENANT: &str = "team-lts";
const API: &str = "/prometheus/api/v1";
/// 6 metric names (so series spread over the ring) x 10 instances.
const METRICS: usize = 6;
const INSTANCES: usize = 10;
/// Two hours at 15 s.
const POINTS: i64 = 480;
const STEP_MS: i64 = 15_000;
/// Chunk window length the ingesters are given (`max_chunk_age`).
const WINDOW_MS: i64 = 60_000;
/// Samples missing from the last instance's series (a ten-minute gap).
const GAP: std::ops::Range<i64> = 200..240;
/// How long to wait for flushing and dropping.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(240);

/// One test of this file at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn metric_name(m: usize) -> String {
    format!("lts_metric_{m}")
}

fn job(m: usize) -> &'static str {
    if m.is_multiple_of(2) {
        "x"
    } else {
        "y"
    }
}

fn instance(i: usize) -> String {
    format!("host-{i}")
}

/// Counter-like values (never decreasing), exact in binary so sums do not
/// depend on the order they are added in.
fn value(m: usize, i: usize, k: i64) -> f64 {
    (k * (i as i64 + 1) + 1000 * m as i64) as f64 + 0.5 * (k % 3) as f64
}

fn has_sample(i: usize, k: i64) -> bool {
    !(i == INSTANCES - 1 && GAP.contains(&k))
}

/// Chunks one ingester holding every series cuts from the data: one per
/// series and window that has samples (4 samples per window).
fn chunks_of_data() -> u64 {
    let per_window = WINDOW_MS / STEP_MS;
    let mut chunks = 0;
    for _m in 0..METRICS {
        for i in 0..INSTANCES {
            chunks += (0..POINTS / per_window)
                .filter(|w| (w * per_window..(w + 1) * per_window).any(|k| has_sample(i, k)))
                .count() as u64;
        }
    }
    chunks
}

/// The data set: `POINTS` samples per series from `t0` on, `STEP_MS`
/// apart.
#[derive(Clone, Copy, Debug)]
struct Data {
    t0: i64,
}

impl Data {
    /// Ends on a whole minute ten minutes ago (so chunk windows hold four
    /// samples each and every window is over).
    fn ending_ten_minutes_ago() -> Data {
        let end = (now_ms() - 10 * 60_000) / WINDOW_MS * WINDOW_MS;
        Data {
            t0: end - POINTS * STEP_MS,
        }
    }

    fn ts(&self, k: i64) -> i64 {
        self.t0 + k * STEP_MS
    }

    fn last(&self) -> i64 {
        self.ts(POINTS - 1)
    }

    /// Pushes every sample through the distributor (or one-process
    /// `strata`) at `base`, 40 points of every series per request.
    async fn push(&self, client: &reqwest::Client, base: &str) {
        for from in (0..POINTS).step_by(40) {
            let to = (from + 40).min(POINTS);
            let mut batch = Vec::new();
            for m in 0..METRICS {
                for i in 0..INSTANCES {
                    let samples: Vec<(i64, f64)> = (from..to)
                        .filter(|&k| has_sample(i, k))
                        .map(|k| (self.ts(k), value(m, i, k)))
                        .collect();
                    if samples.is_empty() {
                        continue;
                    }
                    batch.push(series(
                        &[
                            ("__name__", &metric_name(m)),
                            ("instance", &instance(i)),
                            ("job", job(m)),
                        ],
                        &samples,
                    ));
                }
            }
            push_ok(client, base, Some(TENANT), write_body(&batch)).await;
        }
    }
}

/// Seconds as the query API takes them.
fn secs(ms: i64) -> String {
    format!("{:.3}", ms as f64 / 1000.0)
}

/// One query API request.
#[derive(Clone, Debug)]
struct Query {
    path: String,
    params: Vec<(String, String)>,
    /// Sent as a form-encoded POST rather than a GET.
    post: bool,
}

impl Query {
    fn new(path: &str, params: &[(&str, &str)]) -> Query {
        Query {
            path: format!("{API}/{path}"),
            params: params
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            post: false,
        }
    }

    fn posted(mut self) -> Query {
        self.post = true;
        self
    }

    fn describe(&self) -> String {
        let params: Vec<String> = self
            .params
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect();
        format!("{} {}", self.path, params.join("&"))
    }

    async fn run(&self, client: &reqwest::Client, base: &str) -> (u16, Value) {
        let params: Vec<(&str, &str)> = self
            .params
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let answer = if self.post {
            api_post_form(client, base, &self.path, Some(TENANT), &params).await
        } else {
            api_get(client, base, &self.path, Some(TENANT), &params).await
        };
        answer.unwrap_or_else(|e| panic!("{}: {e:#}", self.describe()))
    }
}

/// The fixed query set: instant queries at several times (inside the data,
/// off the sample grid, at its end, within and past the lookback after
/// it), range queries over the two hours at a 60 s step, series, label
/// names and label values; with and without metric names.
fn fixed_queries(data: &Data) -> Vec<Query> {
    let start = secs(data.t0);
    let end = secs(data.last());
    let times = [
        data.ts(120),
        data.ts(245) + 7_500,
        data.last(),
        data.last() + 4 * 60_000,
        data.last() + 6 * 60_000,
    ];
    let instant = [
        "lts_metric_0",
        "{job=\"x\"}",
        "sum by (job) ({__name__=~\"lts_metric_.*\"})",
        "count({job=\"y\"})",
        "rate(lts_metric_1[5m])",
        "lts_metric_2[2m]",
        "{instance=\"host-9\"}",
    ];
    let ranged = [
        "rate(lts_metric_3[5m])",
        "sum by (job) (rate({__name__=~\"lts_metric_.*\"}[5m]))",
        "{job=\"x\", instance=\"host-9\"}",
        "max_over_time(lts_metric_4[10m])",
        "lts_metric_5 offset 30m",
    ];
    let mut queries = Vec::new();
    for t in times {
        let time = secs(t);
        for q in instant {
            queries.push(Query::new("query", &[("query", q), ("time", &time)]));
        }
    }
    for (n, q) in ranged.iter().enumerate() {
        let query = Query::new(
            "query_range",
            &[
                ("query", q),
                ("start", &start),
                ("end", &end),
                ("step", "60s"),
            ],
        );
        queries.push(if n % 2 == 0 { query.posted() } else { query });
    }
    for m in ["{job=\"x\"}", "lts_metric_5", "{instance=\"host-9\"}"] {
        queries.push(Query::new(
            "series",
            &[("match[]", m), ("start", &start), ("end", &end)],
        ));
    }
    queries.push(Query::new("labels", &[("start", &start), ("end", &end)]));
    queries.push(Query::new(
        "labels",
        &[("match[]", "{job=\"y\"}"), ("start", &start), ("end", &end)],
    ));
    for (name, matcher) in [
        ("__name__", None),
        ("instance", None),
        ("job", Some("lts_metric_0")),
    ] {
        let mut params = vec![("start", start.as_str()), ("end", end.as_str())];
        if let Some(m) = matcher {
            params.push(("match[]", m));
        }
        queries.push(Query::new(&format!("label/{name}/values"), &params));
    }
    queries
}

/// Runs every query; each must succeed.
async fn run_all(client: &reqwest::Client, base: &str, queries: &[Query]) -> Vec<Value> {
    let mut answers = Vec::with_capacity(queries.len());
    for q in queries {
        let answer = q.run(client, base).await;
        assert!(
            answer.0 == 200 && answer.1["status"] == "success",
            "{}: {} {}",
            q.describe(),
            answer.0,
            answer.1
        );
        answers.push(answer.1["data"].clone());
    }
    answers
}

/// Checks that the reference answers hold the data (so comparing with
/// them means something): exact values where they are easy to know.
fn check_reference(queries: &[Query], answers: &[Value], data: &Data) {
    let find = |path: &str, needle: &[(&str, String)]| -> &Value {
        let i = queries
            .iter()
            .position(|q| {
                q.path.ends_with(path)
                    && needle
                        .iter()
                        .all(|(n, v)| q.params.iter().any(|(pn, pv)| pn == n && pv == v))
            })
            .unwrap_or_else(|| panic!("no query {path} {needle:?}"));
        &answers[i]
    };
    let last = secs(data.last());
    let answer = find(
        "/query",
        &[("query", "lts_metric_0".into()), ("time", last.clone())],
    );
    let result = answer["result"].as_array().expect("result");
    assert_eq!(result.len(), INSTANCES, "{answer}");
    for r in result {
        let i: usize = r["metric"]["instance"].as_str().unwrap()[5..]
            .parse()
            .unwrap();
        assert_eq!(
            r["value"][1].as_str().unwrap(),
            value(0, i, POINTS - 1).to_string(),
            "{answer}"
        );
    }
    let answer = find(
        "/query",
        &[("query", "count({job=\"y\"})".into()), ("time", last)],
    );
    assert_eq!(
        answer["result"][0]["value"][1],
        (METRICS / 2 * INSTANCES).to_string(),
        "{answer}"
    );
    let answer = find("/series", &[("match[]", "{job=\"x\"}".into())]);
    assert_eq!(
        answer.as_array().expect("series").len(),
        METRICS / 2 * INSTANCES,
        "{answer}"
    );
    let answer = find("/label/job/values", &[]);
    assert_eq!(answer, &serde_json::json!(["x"]), "{answer}");
    let answer = find("/label/__name__/values", &[]);
    assert_eq!(answer.as_array().expect("names").len(), METRICS, "{answer}");
    let answer = find(
        "/query_range",
        &[("query", "{job=\"x\", instance=\"host-9\"}".into())],
    );
    assert_eq!(
        answer["result"].as_array().expect("result").len(),
        METRICS / 2,
        "{answer}"
    );
}

/// Sorts arrays of query results by their labels, so answers listing the
/// same series in another order compare equal.
fn normalized(v: &Value) -> Value {
    match v {
        Value::Array(items) => {
            let mut items: Vec<Value> = items.iter().map(normalized).collect();
            if items.iter().all(|i| i.get("metric").is_some()) {
                items.sort_by_key(|i| i["metric"].to_string());
            }
            Value::Array(items)
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), normalized(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Where `a` and `b` differ (JSON path and both values). Sample values
/// (strings holding floats) may differ by a relative 1e-12, the rounding
/// of summing the same floats in another order; anything else must be
/// identical.
fn differences(a: &Value, b: &Value, path: &str, out: &mut Vec<String>) {
    if out.len() >= 10 {
        return;
    }
    match (a, b) {
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (n, (p, q)) in x.iter().zip(y).enumerate() {
                differences(p, q, &format!("{path}[{n}]"), out);
            }
        }
        (Value::Object(x), Value::Object(y))
            if x.keys().collect::<Vec<_>>() == y.keys().collect::<Vec<_>>() =>
        {
            for (k, p) in x {
                differences(p, &y[k], &format!("{path}.{k}"), out);
            }
        }
        (Value::String(x), Value::String(y)) if x != y => {
            let close = match (x.parse::<f64>(), y.parse::<f64>()) {
                (Ok(p), Ok(q)) => (p - q).abs() <= 1e-12 * p.abs().max(q.abs()),
                _ => false,
            };
            if !close {
                out.push(format!("{path}: {x} vs {y}"));
            }
        }
        _ if a == b => {}
        _ => out.push(format!("{path}: {a} vs {b}")),
    }
}

/// Asserts every answer equals its reference answer.
fn assert_same_answers(queries: &[Query], reference: &[Value], answers: &[Value], when: &str) {
    let mut failures = Vec::new();
    for ((q, r), a) in queries.iter().zip(reference).zip(answers) {
        let mut diffs = Vec::new();
        differences(&normalized(r), &normalized(a), "data", &mut diffs);
        if !diffs.is_empty() {
            failures.push(format!("{}:\n    {}", q.describe(), diffs.join("\n    ")));
        }
    }
    assert!(
        failures.is_empty(),
        "{when}: {} of {} answers differ from the reference (answers before any flush):\n{}",
        failures.len(),
        queries.len(),
        failures.join("\n")
    );
}

/// The `/metrics` page of the service at `base`.
async fn metrics_page(client: &reqwest::Client, base: &str) -> String {
    let (status, text) = get_text(client, &format!("{base}/metrics")).await.unwrap();
    assert_eq!(status, 200, "{base}/metrics: {text}");
    text
}

/// What an ingester's metrics say about flushing.
#[derive(Clone, Copy, Debug, Default)]
struct FlushState {
    flushed: f64,
    deduped: f64,
    unflushed_bytes: f64,
    dropped: f64,
}

async fn flush_state(client: &reqwest::Client, ingester: &Strata) -> Result<FlushState, String> {
    let page = metrics_page(client, &ingester.http()).await;
    let get = |name: &str| {
        metric_value(&page, name).ok_or_else(|| format!("{} exports no {name}", ingester.proc.name))
    };
    Ok(FlushState {
        flushed: get("strata_ingester_chunks_flushed_total")?,
        deduped: get("strata_ingester_chunks_flush_deduped_total")?,
        unflushed_bytes: get("strata_ingester_unflushed_bytes")?,
        dropped: get("strata_ingester_chunks_dropped_total")?,
    })
}

/// Polls `check` every half second until it is `Ok` or `timeout` passes
/// (then panics with its last answer).
async fn wait_until<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        match check().await {
            Ok(v) => return v,
            Err(e) if Instant::now() >= deadline => {
                panic!("{what}: not after {timeout:?}; last: {e}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

/// Waits until every ingester of `cluster` flushed everything it held of
/// the data and dropped it from memory: metrics show chunks flushed (or
/// skipped as stored by another replica) and dropped and no unflushed
/// bytes, the ingester answers no sample of the data, and holds no series
/// of the tenant. Returns each ingester's flush state.
async fn wait_drained(cluster: &Cluster, data: &Data) -> Vec<FlushState> {
    let client = reqwest::Client::new();
    let mut states = Vec::new();
    for ingester in &cluster.ingesters {
        let state = wait_until(
            &format!("{} flushes and drops the data", ingester.proc.name),
            FLUSH_TIMEOUT,
            || async {
                let s = flush_state(&client, ingester).await?;
                if s.flushed + s.deduped == 0.0 || s.unflushed_bytes > 0.0 || s.dropped == 0.0 {
                    return Err(format!("{s:?}"));
                }
                let held = read_ingester(
                    &ingester.grpc_addr(),
                    TENANT,
                    data.t0 - 3_600_000,
                    now_ms() + 3_600_000,
                )
                .await
                .map_err(|e| format!("{e:#}"))?;
                let samples: usize = held.values().map(Vec::len).sum();
                if samples > 0 {
                    return Err(format!(
                        "{s:?}; still holds {samples} samples of {} series",
                        held.len()
                    ));
                }
                let tenants = ingester_tenants(&ingester.grpc_addr())
                    .await
                    .map_err(|e| format!("{e:#}"))?;
                let series = tenants.get(TENANT).map_or(0, |t| t.series);
                if series > 0 {
                    return Err(format!("{s:?}; still holds {series} series"));
                }
                // Read the counters again: a release pass may have dropped
                // the last retained chunks since the first read, and counts
                // them only after it removed them.
                let s = flush_state(&client, ingester).await?;
                // Each chunk the ingester held was written or found stored
                // by another replica, once, and then dropped.
                if s.flushed + s.deduped != s.dropped {
                    return Err(format!(
                        "{s:?}: chunks flushed + deduped differ from dropped"
                    ));
                }
                Ok(s)
            },
        )
        .await;
        states.push(state);
    }
    states
}

/// Flags of ingesters that flush every `flush_period`, one-minute windows,
/// with quick take-over, retain and idle removal.
fn flush_flags(flush_period: &str) -> Vec<String> {
    [
        "--ingester.max-chunk-age=1m",
        &format!("--ingester.flush-period={flush_period}"),
        "--ingester.flush-delay=0s",
        "--ingester.flush-takeover-delay=2s",
        "--ingester.retain-period=2s",
        "--ingester.series-idle-timeout=2s",
    ]
    .iter()
    .map(|f| f.to_string())
    .collect()
}

/// A [`Cluster`] storing into its own s3s-fs and (the ring's) dynalite,
/// optionally with a memcached.
struct StoreCluster {
    cluster: Cluster,
    s3: S3sFs,
    memcached: Option<Memcached>,
}

async fn start_store_cluster(
    name: &str,
    ingesters: usize,
    replication_factor: usize,
    flush_period: &str,
    with_memcached: bool,
) -> StoreCluster {
    let dynalite = Dynalite::start().await.expect("dynalite");
    let s3 = S3sFs::start().await.expect("s3s-fs");
    let memcached = if with_memcached {
        Some(Memcached::start().await.expect("memcached"))
    } else {
        None
    };
    let addresses: Vec<String> = memcached.iter().map(Memcached::addr).collect();
    let store = store_flags(&s3, &dynalite.endpoint(), &addresses);
    let mut ingester = store.clone();
    ingester.extend(flush_flags(flush_period));
    let mut querier = store;
    querier.push("--querier.query-store-after=0s".to_string());
    let extra = RoleFlags {
        ingester,
        distributor: Vec::new(),
        querier,
    };
    let cluster = Cluster::start_on(dynalite, name, ingesters, replication_factor, &extra)
        .await
        .expect("cluster");
    StoreCluster {
        cluster,
        s3,
        memcached,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flushed_data_reads_back_exactly_after_the_ingesters_dropped_it() {
    let _serial = SERIAL.lock().await;
    // A long first flush period, so the reference answers are recorded
    // while the ingesters hold everything and nothing is flushed yet.
    let mut sc = start_store_cluster("lts-read", 3, 3, "30s", true).await;
    let client = reqwest::Client::new();
    let base = sc.cluster.querier.http();
    let data = Data::ending_ten_minutes_ago();
    data.push(&client, &sc.cluster.distributor.http()).await;

    let queries = fixed_queries(&data);
    let reference = run_all(&client, &base, &queries).await;
    check_reference(&queries, &reference, &data);
    for ingester in &sc.cluster.ingesters {
        let s = flush_state(&client, ingester).await.unwrap();
        assert!(
            s.flushed == 0.0 && s.deduped == 0.0 && s.dropped == 0.0,
            "{} flushed before the reference answers were recorded ({s:?}); the machine \
             is too slow for this test's 30 s first flush cycle",
            ingester.proc.name
        );
    }
    eprintln!("recorded {} reference answers", queries.len());
    // Quorum writes (2 of 3) need not reach the third replica; say so when
    // one missed samples (its chunks then differ and are stored too).
    let all = (METRICS * INSTANCES) as i64 * POINTS - METRICS as i64 * (GAP.end - GAP.start);
    for ingester in &sc.cluster.ingesters {
        let held = read_ingester(&ingester.grpc_addr(), TENANT, data.t0, data.last())
            .await
            .expect("read ingester");
        let samples: usize = held.values().map(Vec::len).sum();
        if samples as i64 != all {
            eprintln!(
                "NOTE: {} holds {samples} of the {all} samples pushed",
                ingester.proc.name
            );
        }
    }

    // Waits until each ingester's flushed + deduped chunks equal its
    // dropped ones, and it holds nothing.
    let states = wait_drained(&sc.cluster, &data).await;
    let written: f64 = states.iter().map(|s| s.flushed).sum();
    let deduped: f64 = states.iter().map(|s| s.deduped).sum();
    // Every (series, window) chunk was written at least once.
    assert!(
        written >= chunks_of_data() as f64,
        "{written} chunks written in all, fewer than the {} of the data",
        chunks_of_data()
    );
    eprintln!(
        "chunks written {written}, skipped as already stored {deduped}; {} objects, {} bytes",
        sc.s3.objects(S3_BUCKET).len(),
        sc.s3.object_bytes(S3_BUCKET)
    );

    let from_store = run_all(&client, &base, &queries).await;
    assert_same_answers(&queries, &reference, &from_store, "from the store");
    // Twice: the second read is answered by the caches.
    let again = run_all(&client, &base, &queries).await;
    assert_same_answers(&queries, &reference, &again, "from the store, cached");

    let memcached = sc.memcached.as_mut().expect("memcached");
    memcached.stop().await;
    let without_memcached = run_all(&client, &base, &queries).await;
    assert_same_answers(
        &queries,
        &reference,
        &without_memcached,
        "from the store with memcached down",
    );
    memcached.start_again().await.expect("memcached again");
    let cold = run_all(&client, &base, &queries).await;
    assert_same_answers(
        &queries,
        &reference,
        &cold,
        "from the store with memcached back, empty",
    );
    let querier_metrics = metrics_page(&client, &base).await;
    eprintln!(
        "querier: chunks read from the store {:?}, chunk cache hits {:?}",
        metric_value(&querier_metrics, "strata_store_chunks_read_total"),
        metric_value(&querier_metrics, "strata_store_chunk_cache_hits_total")
    );
}

/// Sizes of what two clusters stored for the same data.
fn compare_sizes(rf3: &StoreCluster, rf1: &StoreCluster, what: &str) {
    let rf3_bytes = rf3.s3.object_bytes(S3_BUCKET);
    let rf1_bytes = rf1.s3.object_bytes(S3_BUCKET);
    eprintln!(
        "{what}: RF 3 stored {rf3_bytes} bytes in {} objects, RF 1 {rf1_bytes} bytes in {} \
         objects ({:.3}x)",
        rf3.s3.objects(S3_BUCKET).len(),
        rf1.s3.objects(S3_BUCKET).len(),
        rf3_bytes as f64 / rf1_bytes.max(1) as f64
    );
    assert!(rf1_bytes > 0, "{what}: RF 1 stored nothing");
    assert!(
        rf3_bytes as f64 <= 1.2 * rf1_bytes as f64,
        "{what}: RF 3 stored {rf3_bytes} bytes, more than 1.2 x RF 1's {rf1_bytes}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rf3_stores_at_most_1_2x_the_bytes_of_rf1() {
    let _serial = SERIAL.lock().await;
    let rf3 = start_store_cluster("lts-rf3", 3, 3, "1s", false).await;
    let rf1 = start_store_cluster("lts-rf1", 1, 1, "1s", false).await;
    let client = reqwest::Client::new();
    let data = Data::ending_ten_minutes_ago();
    data.push(&client, &rf3.cluster.distributor.http()).await;
    data.push(&client, &rf1.cluster.distributor.http()).await;

    // Drained means every chunk was written or skipped, by every replica:
    // the later replicas had their turn.
    let rf3_states = wait_drained(&rf3.cluster, &data).await;
    let rf1_states = wait_drained(&rf1.cluster, &data).await;
    eprintln!("RF 3 ingesters: {rf3_states:?}\nRF 1 ingester: {rf1_states:?}");
    assert_eq!(rf1_states[0].flushed, chunks_of_data() as f64);
    compare_sizes(&rf3, &rf1, "two hours of past data");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rf3_stores_at_most_1_2x_the_bytes_of_rf1_for_a_live_window() {
    let _serial = SERIAL.lock().await;
    let rf3 = start_store_cluster("lts-live3", 3, 3, "1s", false).await;
    let rf1 = start_store_cluster("lts-live1", 1, 1, "1s", false).await;
    let client = reqwest::Client::new();
    // Four samples in a window that is still open (samples up to a minute
    // ahead are within the creation grace period): its end comes in real
    // time, so the replicas' flushes are staggered by rank.
    let now = now_ms();
    let mut window = now / WINDOW_MS * WINDOW_MS;
    if window + WINDOW_MS - now < 25_000 {
        window += WINDOW_MS;
    }
    let data = Data { t0: window };
    let mut batch = Vec::new();
    for m in 0..METRICS {
        for i in 0..INSTANCES {
            let samples: Vec<(i64, f64)> = (0..WINDOW_MS / STEP_MS)
                .map(|k| (data.ts(k), value(m, i, k)))
                .collect();
            batch.push(series(
                &[
                    ("__name__", &metric_name(m)),
                    ("instance", &instance(i)),
                    ("job", job(m)),
                ],
                &samples,
            ));
        }
    }
    for sc in [&rf3, &rf1] {
        push_ok(
            &client,
            &sc.cluster.distributor.http(),
            Some(TENANT),
            write_body(&batch),
        )
        .await;
    }
    let rf3_states = wait_drained(&rf3.cluster, &data).await;
    let rf1_states = wait_drained(&rf1.cluster, &data).await;
    eprintln!("RF 3 ingesters: {rf3_states:?}\nRF 1 ingester: {rf1_states:?}");
    compare_sizes(&rf3, &rf1, "one live window");
}

/// The chunk object files of `s3`, each with its parsed index.
fn object_indexes(s3: &S3sFs) -> Vec<(String, std::path::PathBuf, ObjectIndex)> {
    s3.objects(S3_BUCKET)
        .into_iter()
        .map(|(key, path)| {
            let bytes = std::fs::read(&path).unwrap();
            let footer = Footer::parse(&key, &bytes)
                .unwrap_or_else(|e| panic!("object {key} has no valid footer: {e}"));
            let from = footer.index_offset as usize;
            let to = from + footer.index_len as usize;
            assert!(
                to + FOOTER_LEN <= bytes.len(),
                "object {key}: index past the end"
            );
            let index = ObjectIndex::parse(&key, &bytes[from..to])
                .unwrap_or_else(|e| panic!("object {key} has no valid index: {e}"));
            (key, path, index)
        })
        .collect()
}

/// Expected `query_range` values of the raw series (m, i) at every sample
/// time in `[from_k, to_k]`.
fn expected_values(m: usize, i: usize, from_k: i64, to_k: i64) -> Vec<String> {
    (from_k..=to_k)
        .map(|k| value(m, i, k).to_string())
        .collect()
}

async fn range_values(
    client: &reqwest::Client,
    base: &str,
    query: &str,
    data: &Data,
    from_k: i64,
    to_k: i64,
) -> (u16, Value) {
    api_get(
        client,
        base,
        &format!("{API}/query_range"),
        Some(TENANT),
        &[
            ("query", query),
            ("start", &secs(data.ts(from_k))),
            ("end", &secs(data.ts(to_k))),
            ("step", "15s"),
        ],
    )
    .await
    .unwrap()
}

/// Asserts the range query of series (m, i) over samples `from_k..=to_k`
/// answers exactly the pushed values.
async fn assert_series_reads_back(
    client: &reqwest::Client,
    base: &str,
    data: &Data,
    (m, i): (usize, usize),
    (from_k, to_k): (i64, i64),
    what: &str,
) {
    let query = format!(
        "{}{{instance=\"{}\",job=\"{}\"}}",
        metric_name(m),
        instance(i),
        job(m)
    );
    let answer = range_values(client, base, &query, data, from_k, to_k).await;
    let result = success(&answer)["result"].as_array().expect("result");
    assert_eq!(result.len(), 1, "{what}: {query}: {}", answer.1);
    let got: Vec<String> = result[0]["values"]
        .as_array()
        .expect("values")
        .iter()
        .map(|p| p[1].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        got,
        expected_values(m, i, from_k, to_k),
        "{what}: {query} over samples {from_k}..={to_k}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_byte_in_a_chunk_object_is_never_served() {
    let _serial = SERIAL.lock().await;
    let sc = start_store_cluster("lts-flip", 1, 1, "1s", true).await;
    let client = reqwest::Client::new();
    let base = sc.cluster.querier.http();
    let data = Data::ending_ten_minutes_ago();
    data.push(&client, &sc.cluster.distributor.http()).await;
    wait_drained(&sc.cluster, &data).await;

    // A chunk of lts_metric_0{instance="host-0"} in the middle of the
    // data, in whatever object holds it.
    let objects = object_indexes(&sc.s3);
    assert!(!objects.is_empty(), "nothing in s3s-fs");
    let target_time = data.ts(POINTS / 2);
    let (key, path, chunk) = objects
        .iter()
        .find_map(|(key, path, index)| {
            (0..index.len())
                .map(|i| index.series(i))
                .filter(|s| {
                    s.labels.get("__name__") == Some("lts_metric_0")
                        && s.labels.get("instance") == Some("host-0")
                })
                .flat_map(|s| s.chunks.into_iter())
                .find(|c| c.min_time <= target_time && target_time <= c.max_time)
                .map(|c| (key.clone(), path.clone(), c))
        })
        .expect("a stored chunk of lts_metric_0{instance=\"host-0\"} at the middle of the data");
    eprintln!(
        "flipping a byte of the chunk at {}..{} of {key} (offset {}, {} bytes), {} objects in all",
        chunk.min_time,
        chunk.max_time,
        chunk.offset,
        chunk.len,
        objects.len()
    );
    let mut bytes = std::fs::read(&path).unwrap();
    // A byte of the chunk's payload, past its encoding and length.
    let payload = chunk.len as usize - RECORD_OVERHEAD;
    let at = chunk.offset as usize + 5 + payload / 2;
    bytes[at] ^= 0x10;
    std::fs::write(&path, &bytes).unwrap();

    let from_k = (chunk.min_time - data.t0) / STEP_MS;
    let to_k = (chunk.max_time - data.t0) / STEP_MS;
    let queries = [
        "lts_metric_0{instance=\"host-0\"}",
        "sum(lts_metric_0)",
        "{job=\"x\"}",
        "max_over_time(lts_metric_0[1m])",
    ];
    // Twice each: the bad chunk must not reach a cache as good.
    for round in 0..2 {
        for q in queries {
            let answer = range_values(&client, &base, q, &data, from_k, to_k).await;
            assert!(
                answer.0 == 422 || (500..600).contains(&answer.0),
                "round {round}: {q} over the corrupted chunk answered {}: {}",
                answer.0,
                answer.1
            );
            let error = answer.1["error"].as_str().unwrap_or_default();
            assert!(
                error.contains(&key),
                "round {round}: {q}: the error does not name the object {key}: {}",
                answer.1
            );
        }
    }

    // The same series before and after the corrupted chunk (other objects,
    // and beyond the lookback from it) answers exactly.
    assert_series_reads_back(
        &client,
        &base,
        &data,
        (0, 0),
        (0, from_k - 1),
        "before the corrupted chunk",
    )
    .await;
    let after_k = to_k + 5 * 60_000 / STEP_MS + 1;
    assert_series_reads_back(
        &client,
        &base,
        &data,
        (0, 0),
        (after_k, POINTS - 1),
        "after the corrupted chunk",
    )
    .await;
    // Other series answer exactly over the whole range, the corrupted
    // object's window included (their chunks there are intact).
    for (m, i) in [(0, 1), (1, 0), (3, 5)] {
        assert_series_reads_back(
            &client,
            &base,
            &data,
            (m, i),
            (0, POINTS - 1),
            "another series",
        )
        .await;
    }
    let querier_metrics = metrics_page(&client, &base).await;
    eprintln!(
        "querier: corrupt chunks {:?}",
        metric_value(&querier_metrics, "strata_store_corrupt_chunks_total")
    );
}

/// Total size of the files under `dir` (0 when it does not exist).
fn dir_bytes(dir: &Path) -> (usize, u64) {
    let mut files = 0;
    let mut bytes = 0;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (0, 0);
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            let (f, b) = dir_bytes(&path);
            files += f;
            bytes += b;
        } else if let Ok(m) = entry.metadata() {
            files += 1;
            bytes += m.len();
        }
    }
    (files, bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_process_restart_reads_back_from_disk() {
    let _serial = SERIAL.lock().await;
    // The defaults: chunks in <data_dir>/chunks, the index in
    // <data_dir>/index, two-hour windows, flush on shutdown.
    let mut strata = Strata::start("lts-one", "strata", &[]);
    strata.wait_ready().await.expect("strata ready");
    let client = reqwest::Client::new();
    let data = Data::ending_ten_minutes_ago();
    data.push(&client, &strata.http()).await;
    let queries = fixed_queries(&data);
    let reference = run_all(&client, &strata.http(), &queries).await;
    check_reference(&queries, &reference, &data);

    assert!(
        strata.proc.terminate(Duration::from_secs(60)),
        "strata did not exit cleanly on SIGTERM; log:\n{}",
        strata.proc.log_text()
    );
    let mut by_part = BTreeMap::new();
    for part in ["chunks", "index"] {
        let (files, bytes) = dir_bytes(&strata.data_dir.path().join(part));
        assert!(
            files > 0 && bytes > 0,
            "{part}/ of the data directory is empty after shutdown"
        );
        by_part.insert(part, (files, bytes));
    }
    eprintln!("after shutdown (files, bytes): {by_part:?}");

    strata.restart();
    strata.wait_ready().await.expect("strata ready again");
    let after = run_all(&client, &strata.http(), &queries).await;
    assert_same_answers(&queries, &reference, &after, "after the restart");
    let page = metrics_page(&client, &strata.http()).await;
    let read = metric_value(&page, "strata_store_chunks_read_total");
    assert!(
        read.is_some_and(|n| n > 0.0),
        "the restarted strata answered without reading chunks from disk \
         (strata_store_chunks_read_total {read:?})"
    );
}
