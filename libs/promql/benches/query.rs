//! Query latency of the PromQL engine on a fixed in-memory data set:
//! 2,000 series (node_exporter-like CPU counters, gauges and a classic
//! histogram) with one sample every 15 s for 6 hours — 2.9 M samples.
//!
//! `cargo bench -p strata-promql --bench query`
//!
//! Storage is in memory, so this measures evaluation only (no gRPC, no
//! chunk decoding); the end-to-end comparison with Prometheus is the job of
//! `make bench-compare`.
//!
//! The `heavy_*` groups are shaped like the dashboard queries where the
//! engine lagged VictoriaMetrics: tens of thousands of series selected,
//! 1 h + 5 m of 15 s samples held as Prometheus XOR chunks (decoded lazily,
//! as the querier's chunk sources do), a 1 h range at a 60 s step. Each runs
//! with the default parallelism and serially (`/serial`). With
//! `STRATA_BENCH_CPU_TIME=1` they report the CPU time of all threads
//! instead of wall-clock time: what a query costs, and a steadier figure
//! on a busy machine.

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use strata_chunk::{XorChunk, XorIterator};
use strata_model::{Labels, MatchOp, Matcher};
use strata_promql::promqltest::MemStorage;
use strata_promql::{
    Engine, EngineOptions, SampleIter, SampleSource, SelectRequest, Storage, StorageError,
    StoredSeries,
};

const STEP: i64 = 15_000;
const POINTS: i64 = 6 * 240;
const START: i64 = 1_700_000_000_000;

fn dataset() -> MemStorage {
    let mut st = MemStorage::new();
    let ts = |i: i64| START + i * STEP;
    for inst in 0..50 {
        let instance = format!("host-{inst:03}");
        for cpu in 0..4 {
            for (m, mode) in ["idle", "user", "system", "iowait", "irq", "softirq"]
                .iter()
                .enumerate()
            {
                let rate = 0.01 + m as f64 * 0.1 + cpu as f64 * 0.01;
                let labels = Labels::from_pairs([
                    ("__name__", "node_cpu_seconds_total".to_string()),
                    ("instance", instance.clone()),
                    ("job", "node".to_string()),
                    ("cpu", cpu.to_string()),
                    ("mode", mode.to_string()),
                ]);
                st.add(labels, (0..POINTS).map(|i| (ts(i), i as f64 * 15.0 * rate)));
            }
        }
        for dev in 0..8 {
            let labels = Labels::from_pairs([
                ("__name__", "node_filesystem_avail_bytes".to_string()),
                ("instance", instance.clone()),
                ("job", "node".to_string()),
                ("device", format!("sd{dev}")),
            ]);
            st.add(
                labels,
                (0..POINTS).map(|i| (ts(i), 1e10 - (i * (dev + 1)) as f64 * 1e5)),
            );
        }
        for le in ["0.005", "0.01", "0.05", "0.1", "0.5", "1", "5", "+Inf"] {
            let factor: f64 = if le == "+Inf" {
                10.0
            } else {
                le.parse::<f64>().unwrap_or(1.0).sqrt() * 3.0
            };
            let labels = Labels::from_pairs([
                (
                    "__name__",
                    "http_request_duration_seconds_bucket".to_string(),
                ),
                ("instance", instance.clone()),
                ("job", "api".to_string()),
                ("le", le.to_string()),
            ]);
            st.add(labels, (0..POINTS).map(|i| (ts(i), i as f64 * factor)));
        }
    }
    st
}

fn bench(c: &mut Criterion) {
    let storage = dataset();
    let engine = Engine::new(EngineOptions::default());
    let end = START + (POINTS - 1) * STEP;
    let queries = [
        ("sum_rate_by_instance", r#"sum by (instance) (rate(node_cpu_seconds_total{mode!="idle"}[5m]))"#),
        ("cpu_utilisation", r#"100 * (1 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle"}[5m])))"#),
        ("histogram_quantile", "histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))"),
        ("topk_filesystem", "topk(5, node_filesystem_avail_bytes)"),
        ("predict_linear", "predict_linear(node_filesystem_avail_bytes[1h], 4 * 3600) < 0"),
        ("subquery_max_rate", "max_over_time(sum(rate(node_cpu_seconds_total[5m]))[1h:1m])"),
    ];
    let mut group = c.benchmark_group("instant");
    for (name, q) in queries {
        group.bench_function(name, |b| {
            b.iter(|| black_box(engine.instant(&storage, q, end).expect("query")))
        });
    }
    group.finish();
    // A 1-hour dashboard panel at a 15 s step (241 points).
    let mut group = c.benchmark_group("range_1h_step15s");
    for (name, q) in queries {
        group.bench_function(name, |b| {
            b.iter(|| {
                black_box(
                    engine
                        .range(&storage, q, end - 3_600_000, end, STEP)
                        .expect("query"),
                )
            })
        });
    }
    group.finish();
}

/// A series' samples as XOR chunks of 120 samples, decoded on demand like
/// the querier's `ChunkSource` (one replica, no merging).
struct ChunkSource {
    chunks: Vec<(i64, i64, Vec<u8>)>,
}

impl ChunkSource {
    fn encode(samples: impl Iterator<Item = (i64, f64)>) -> Self {
        let mut chunks = Vec::new();
        let mut cur = XorChunk::new();
        let (mut min_t, mut max_t) = (0, 0);
        for (t, v) in samples {
            if cur.num_samples() == 120 {
                let done = std::mem::take(&mut cur);
                chunks.push((min_t, max_t, done.into_bytes()));
            }
            if cur.num_samples() == 0 {
                min_t = t;
            }
            max_t = t;
            cur.append(t, v);
        }
        if !cur.is_empty() {
            chunks.push((min_t, max_t, cur.into_bytes()));
        }
        ChunkSource { chunks }
    }
}

impl SampleSource for ChunkSource {
    fn samples(&self, mint: i64, maxt: i64) -> SampleIter<'_> {
        Box::new(ChunkIter {
            chunks: &self.chunks,
            mint,
            maxt,
            next_chunk: 0,
            current: None,
        })
    }
}

/// Streams the chunks overlapping `[mint, maxt]`, as the querier's chunk
/// iterator does for a series whose replicas agree.
struct ChunkIter<'a> {
    chunks: &'a [(i64, i64, Vec<u8>)],
    mint: i64,
    maxt: i64,
    next_chunk: usize,
    current: Option<XorIterator<'a>>,
}

impl Iterator for ChunkIter<'_> {
    type Item = Result<(i64, f64), StorageError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(it) = self.current.as_mut() {
                match it.next() {
                    Some((t, _)) if t > self.maxt => self.current = None,
                    Some((t, _)) if t < self.mint => {}
                    Some(s) => return Some(Ok(s)),
                    None => {
                        if let Some(e) = it.err() {
                            return Some(Err(StorageError::Internal(e.to_string())));
                        }
                        self.current = None;
                    }
                }
                continue;
            }
            while self.next_chunk < self.chunks.len() && self.chunks[self.next_chunk].1 < self.mint
            {
                self.next_chunk += 1;
            }
            let (start, _, data) = self.chunks.get(self.next_chunk)?;
            if *start > self.maxt {
                return None;
            }
            self.next_chunk += 1;
            self.current = Some(XorIterator::new(data));
        }
    }
}

/// Storage answering selections from series held in memory, indexed by
/// metric name (as the ingesters' inverted index), cloning the matching
/// series as the querier's prefetched storage does.
struct ChunkStorage {
    by_name: HashMap<String, Vec<StoredSeries>>,
}

fn matches(matchers: &[Matcher], labels: &Labels) -> bool {
    matchers
        .iter()
        .all(|m| m.matches(labels.get(&m.name).unwrap_or("")))
}

impl Storage for ChunkStorage {
    fn select(&self, req: &SelectRequest) -> Result<Vec<StoredSeries>, StorageError> {
        let name = req
            .matchers
            .iter()
            .find(|m| m.name == "__name__" && m.op == MatchOp::Equal)
            .map(|m| m.value.as_str())
            .ok_or_else(|| StorageError::Internal("no metric name".into()))?;
        let Some(series) = self.by_name.get(name) else {
            return Ok(Vec::new());
        };
        Ok(series
            .iter()
            .filter(|s| matches(&req.matchers, &s.labels))
            .cloned()
            .collect())
    }
}

const HEAVY_INTERVAL: i64 = 15_000;
/// 1 h + 5 m of samples, then a little past the query's end.
const HEAVY_POINTS: i64 = 4 * 66;
const HEAVY_END: i64 = START + 4 * 65 * HEAVY_INTERVAL;

/// About 122k series, 32k of them per selected metric:
/// * `http_request_duration_seconds_bucket`: 10 `le` × 40 handlers × 80 pods;
/// * `node_cpu_seconds_total`: 8 modes × 8 cpus × 500 instances;
/// * `http_requests_total`: 5 codes × 8 handlers × 800 pods (20
///   namespaces);
/// * `kube_pod_status_phase`: 5 phases × 6,000 pods (20 namespaces).
fn heavy_dataset() -> ChunkStorage {
    let mut by_name: HashMap<String, Vec<StoredSeries>> = HashMap::new();
    let ts = |i: i64| START + i * HEAVY_INTERVAL;
    let mut add = |labels: Labels, f: &dyn Fn(i64) -> f64| {
        let name = labels.metric_name().unwrap_or("").to_string();
        by_name.entry(name).or_default().push(StoredSeries {
            labels,
            source: Arc::new(ChunkSource::encode(
                (0..HEAVY_POINTS).map(|i| (ts(i), f(i))),
            )),
        });
    };
    let les = [
        "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf",
    ];
    for pod in 0..80 {
        let namespace = format!("ns-{:02}", pod % 20);
        let pod_name = format!("api-{pod:04}-7f9c");
        for handler in 0..40 {
            let handler = format!("/api/v1/endpoint/{handler}");
            for (k, le) in les.iter().enumerate() {
                let per_s = 0.5 + (k as f64 + 1.0) * 2.0 + (pod % 7) as f64 * 0.3;
                add(
                    Labels::from_pairs([
                        (
                            "__name__",
                            "http_request_duration_seconds_bucket".to_string(),
                        ),
                        ("handler", handler.clone()),
                        ("instance", format!("10.0.{}.{}:8080", pod / 200, pod % 200)),
                        ("job", "api".to_string()),
                        ("le", le.to_string()),
                        ("namespace", namespace.clone()),
                        ("pod", pod_name.clone()),
                    ]),
                    &|i| (i as f64 * 15.0 * per_s).floor(),
                );
            }
        }
    }
    let modes = [
        "idle", "user", "system", "iowait", "irq", "softirq", "steal", "nice",
    ];
    for inst in 0..500 {
        let instance = format!("node-{inst:04}:9100");
        for cpu in 0..8 {
            for (m, mode) in modes.iter().enumerate() {
                let per_s = 0.01 + m as f64 * 0.1 + cpu as f64 * 0.013 + inst as f64 * 1e-4;
                add(
                    Labels::from_pairs([
                        ("__name__", "node_cpu_seconds_total".to_string()),
                        ("cpu", cpu.to_string()),
                        ("instance", instance.clone()),
                        ("job", "node".to_string()),
                        ("mode", mode.to_string()),
                    ]),
                    &|i| 1e5 + ((i as f64 * 15.0 * per_s) * 100.0).round() / 100.0,
                );
            }
        }
    }
    for pod in 0..800 {
        let namespace = format!("ns-{:02}", pod % 20);
        let pod_name = format!("web-{pod:04}-5d8b");
        for handler in 0..8 {
            for (c, code) in ["200", "201", "404", "500", "503"].iter().enumerate() {
                let per_s = 10.0 / (c as f64 + 1.0) + handler as f64 * 0.7;
                add(
                    Labels::from_pairs([
                        ("__name__", "http_requests_total".to_string()),
                        ("code", code.to_string()),
                        ("handler", format!("/h{handler}")),
                        ("instance", format!("10.1.{}.{}:8080", pod / 200, pod % 200)),
                        ("job", "web".to_string()),
                        ("namespace", namespace.clone()),
                        ("pod", pod_name.clone()),
                    ]),
                    // A restart half-way resets the counter.
                    &|i| {
                        let i = if pod % 10 == 0 && i >= 130 {
                            i - 130
                        } else {
                            i
                        };
                        (i as f64 * 15.0 * per_s).floor()
                    },
                );
            }
        }
    }
    for pod in 0..6000 {
        let namespace = format!("ns-{:02}", pod % 20);
        let pod_name = format!("pod-{pod:05}");
        for (p, phase) in ["Pending", "Running", "Succeeded", "Failed", "Unknown"]
            .iter()
            .enumerate()
        {
            let current = if pod % 50 == 0 { 0 } else { 1 };
            add(
                Labels::from_pairs([
                    ("__name__", "kube_pod_status_phase".to_string()),
                    ("instance", "kube-state-metrics:8080".to_string()),
                    ("job", "kube-state-metrics".to_string()),
                    ("namespace", namespace.clone()),
                    ("phase", phase.to_string()),
                    ("pod", pod_name.clone()),
                    (
                        "uid",
                        format!("6f1c{pod:08x}-0000-4000-8000-00000000{p:04}"),
                    ),
                ]),
                &|_| if p == current { 1.0 } else { 0.0 },
            );
        }
    }
    ChunkStorage { by_name }
}

/// CPU time this process has used (all its threads).
fn process_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the current time into `ts`, which
    // lives for the call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

/// Times `f`: wall-clock time, or with `STRATA_BENCH_CPU_TIME=1` the CPU
/// time of every thread of the process (what a query costs rather than
/// how long it takes; steadier on a busy machine).
fn measure<R>(b: &mut criterion::Bencher<'_>, f: impl Fn() -> R) {
    if std::env::var("STRATA_BENCH_CPU_TIME").is_ok_and(|v| v == "1") {
        b.iter_custom(|iters| {
            let start = process_cpu_time();
            for _ in 0..iters {
                black_box(f());
            }
            process_cpu_time().saturating_sub(start)
        });
    } else {
        b.iter(|| black_box(f()));
    }
}

fn heavy(c: &mut Criterion) {
    static DATA: OnceLock<ChunkStorage> = OnceLock::new();
    let engines = [
        ("", Engine::new(EngineOptions::default())),
        (
            "/serial",
            Engine::new(EngineOptions::default()).with_parallelism(1),
        ),
    ];
    let range_queries = [
        ("histogram_quantile", "histogram_quantile(0.99, sum by (le, handler) (rate(http_request_duration_seconds_bucket[5m])))"),
        ("sum_rate_by_mode", "sum by (mode) (rate(node_cpu_seconds_total[5m]))"),
        ("error_ratio", r#"sum by (namespace) (rate(http_requests_total{code="500"}[5m])) / sum by (namespace) (rate(http_requests_total[5m]))"#),
        ("sum_by_phase", "sum by (namespace, phase) (kube_pod_status_phase)"),
    ];
    let mut group = c.benchmark_group("heavy_range_1h_step60s");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(5));
    for (name, q) in range_queries {
        for (suffix, engine) in &engines {
            group.bench_function(format!("{name}{suffix}"), |b| {
                let storage = DATA.get_or_init(heavy_dataset);
                measure(b, || {
                    engine
                        .range(storage, q, HEAVY_END - 3_600_000, HEAVY_END, 60_000)
                        .expect("query")
                })
            });
        }
    }
    group.finish();
    let mut group = c.benchmark_group("heavy_instant");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    for (suffix, engine) in &engines {
        group.bench_function(format!("sum_by_phase{suffix}"), |b| {
            let storage = DATA.get_or_init(heavy_dataset);
            let q = "sum by (namespace, phase) (kube_pod_status_phase)";
            measure(b, || engine.instant(storage, q, HEAVY_END).expect("query"))
        });
    }
    group.finish();
}

criterion_group!(benches, bench, heavy);
criterion_main!(benches);
