//! Query latency of the PromQL engine on a fixed in-memory data set:
//! 2,000 series (node_exporter-like CPU counters, gauges and a classic
//! histogram) with one sample every 15 s for 6 hours — 2.9 M samples.
//!
//! `cargo bench -p strata-promql --bench query`
//!
//! Storage is in memory, so this measures evaluation only (no gRPC, no
//! chunk decoding); the end-to-end comparison with Prometheus is the job of
//! `make bench-compare`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use strata_model::Labels;
use strata_promql::promqltest::MemStorage;
use strata_promql::{Engine, EngineOptions};

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

criterion_group!(benches, bench);
criterion_main!(benches);
