//! `query`: a dashboard-like mix of instant and range PromQL queries over
//! the series `write` generates, against any Prometheus-compatible query
//! API, with latency percentiles per kind of query.
//!
//! Kinds are taken in turn (round robin over the workers), so every kind
//! gets the same share of the run whatever its latency. With
//! `--min-per-kind`, the run goes on after `--duration`, starting only the
//! kinds that ran fewer times than that, until none is short or
//! `--max-duration` passes.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::model;
use crate::util::{
    merge_errors, parse_duration, parse_time, transport_error_kind, ErrorCounts, Latencies,
    LatencySummary, Rng,
};

#[derive(Args, Debug, Clone)]
pub struct QueryArgs {
    /// Base URL of the Prometheus API: http://host:9009/prometheus for
    /// Strata, http://host:port for Prometheus and VictoriaMetrics.
    #[arg(long, default_value = "http://127.0.0.1:9009/prometheus")]
    pub url: String,
    /// Active series the data was written with (to name instances).
    #[arg(long, default_value_t = 10_000)]
    pub series: usize,
    /// Seed the data was written with.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Evaluation time of the newest queries (`now`, `now-5m` or Unix ms);
    /// with --max-rate writes, the write report's `last_timestamp_ms`.
    #[arg(long, default_value = "now", value_parser = parse_time)]
    pub time: i64,
    /// Each query is evaluated at --time minus a random offset up to this,
    /// so no two queries are identical (as on refreshing dashboards).
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub time_jitter: Duration,
    /// Stop after this long (at the earliest, with --min-per-kind).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub duration: Duration,
    /// After --duration, go on until every kind ran at least this many
    /// times (0: stop at --duration), starting only the kinds still short.
    #[arg(long, default_value_t = 0)]
    pub min_per_kind: u64,
    /// With --min-per-kind: start no query after this long (default
    /// --duration). Queries in flight then finish (within --timeout).
    #[arg(long, value_parser = parse_duration)]
    pub max_duration: Option<Duration>,
    /// Stop after this many queries.
    #[arg(long, default_value_t = 100_000)]
    pub max_queries: u64,
    /// Queries in flight.
    #[arg(long, default_value_t = 2)]
    pub concurrency: usize,
    /// Per-query timeout.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Tenant (X-Scope-OrgID header).
    #[arg(long)]
    pub tenant: Option<String>,
    /// Only these kinds of queries (comma-separated names; see --list).
    #[arg(long, value_delimiter = ',')]
    pub kinds: Vec<String>,
    /// List the query mix and exit.
    #[arg(long)]
    pub list: bool,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Clone, Copy, Debug)]
enum Shape {
    Instant,
    Range { range_s: i64, step_s: i64 },
}

/// One kind of query in the mix. `$instance` is replaced by a random
/// node_exporter instance.
struct Kind {
    name: &'static str,
    shape: Shape,
    template: &'static str,
}

const MIX: &[Kind] = &[
    Kind {
        name: "cpu_by_mode_1h",
        shape: Shape::Range {
            range_s: 3600,
            step_s: 60,
        },
        template: "sum by (mode) (rate(node_cpu_seconds_total[5m]))",
    },
    Kind {
        name: "cpu_busy_by_instance_1h",
        shape: Shape::Range {
            range_s: 3600,
            step_s: 60,
        },
        template: r#"1 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle"}[5m]))"#,
    },
    Kind {
        name: "one_node_cpu_30m",
        shape: Shape::Range {
            range_s: 1800,
            step_s: 15,
        },
        template: r#"sum by (mode) (rate(node_cpu_seconds_total{instance="$instance"}[1m]))"#,
    },
    Kind {
        name: "one_node_disk_5m",
        shape: Shape::Range {
            range_s: 300,
            step_s: 15,
        },
        template: r#"rate(node_disk_io_time_seconds_total{instance="$instance"}[1m])"#,
    },
    Kind {
        name: "memory_used_15m",
        shape: Shape::Range {
            range_s: 900,
            step_s: 15,
        },
        template: "100 * (1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes)",
    },
    Kind {
        name: "http_p99_1h",
        shape: Shape::Range {
            range_s: 3600,
            step_s: 60,
        },
        template: "histogram_quantile(0.99, sum by (le, handler) (rate(http_request_duration_seconds_bucket[5m])))",
    },
    Kind {
        name: "error_ratio_1h",
        shape: Shape::Range {
            range_s: 3600,
            step_s: 30,
        },
        template: r#"sum by (namespace) (rate(http_requests_total{code="500"}[5m])) / sum by (namespace) (rate(http_requests_total[5m]))"#,
    },
    Kind {
        name: "load_avg_1h",
        shape: Shape::Range {
            range_s: 3600,
            step_s: 30,
        },
        template: "avg by (cluster) (node_load1)",
    },
    Kind {
        name: "network_topk",
        shape: Shape::Instant,
        template: r#"topk(10, sum by (instance) (rate(node_network_receive_bytes_total{device!="lo"}[5m])))"#,
    },
    Kind {
        name: "pod_phases",
        shape: Shape::Instant,
        template: "sum by (namespace, phase) (kube_pod_status_phase)",
    },
    Kind {
        name: "filesystem_usage",
        shape: Shape::Instant,
        template: r#"max by (instance, mountpoint) (1 - node_filesystem_avail_bytes{fstype!="tmpfs"} / node_filesystem_size_bytes{fstype!="tmpfs"})"#,
    },
    Kind {
        name: "restarts_topk",
        shape: Shape::Instant,
        template: "topk(5, increase(kube_pod_container_status_restarts_total[1h]))",
    },
];

/// Latency and outcome of one kind of query.
#[derive(Serialize, Deserialize, Debug, Default, Clone)]
pub struct KindReport {
    pub query: String,
    pub shape: String,
    pub queries: u64,
    pub ok: u64,
    pub empty_results: u64,
    pub mean_series: f64,
    /// Latency of successful queries.
    pub latency: LatencySummary,
    pub errors: ErrorCounts,
}

/// What a query run measured.
#[derive(Serialize, Deserialize, Debug, Default, Clone)]
pub struct QueryReport {
    pub url: String,
    pub series: usize,
    pub concurrency: usize,
    pub time_ms: i64,
    pub elapsed_s: f64,
    /// `duration`; `max_duration` (with --min-per-kind, the cap passed
    /// while some kind was short); `max_queries`; `stopped` (by the caller).
    #[serde(default)]
    pub stopped_by: String,
    #[serde(default)]
    pub min_per_kind: u64,
    /// Fewest queries any kind ran (kinds that never ran count as 0).
    #[serde(default)]
    pub fewest_per_kind: u64,
    pub queries: u64,
    pub ok: u64,
    pub queries_per_s: f64,
    /// Latency of all successful queries.
    pub latency: LatencySummary,
    pub errors: ErrorCounts,
    pub error_examples: Vec<String>,
    pub kinds: BTreeMap<String, KindReport>,
}

#[derive(Default)]
struct KindStats {
    queries: u64,
    ok: u64,
    empty: u64,
    series_total: u64,
    latencies: Latencies,
    errors: ErrorCounts,
}

#[derive(Default)]
struct WorkerStats {
    kinds: BTreeMap<&'static str, KindStats>,
    examples: Vec<String>,
    hit_max_queries: bool,
}

struct Ctx {
    client: reqwest::Client,
    args: QueryArgs,
    kinds: Vec<&'static Kind>,
    instances: Vec<String>,
    /// Queries start in turn until here ...
    soft_deadline: Instant,
    /// ... then only kinds short of --min-per-kind, until here.
    hard_deadline: Instant,
    started: AtomicU64,
    /// Round-robin position over `kinds`.
    next_kind: AtomicU64,
    /// Queries started per kind (index into `kinds`).
    started_per_kind: Vec<AtomicU64>,
    stop: watch::Receiver<bool>,
}

impl Ctx {
    /// The next kind to run (an index into `kinds`), or `None` when the
    /// run is over.
    fn pick(&self, now: Instant) -> Option<usize> {
        let n = self.kinds.len();
        if now >= self.hard_deadline {
            return None;
        }
        let base = self.next_kind.fetch_add(1, Ordering::Relaxed) as usize;
        if now < self.soft_deadline {
            let i = base % n;
            self.started_per_kind[i].fetch_add(1, Ordering::Relaxed);
            return Some(i);
        }
        let min = self.args.min_per_kind;
        (0..n).map(|j| (base + j) % n).find(|&i| {
            self.started_per_kind[i]
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                    (v < min).then_some(v + 1)
                })
                .is_ok()
        })
    }
}

#[derive(Deserialize)]
struct ApiResponse {
    status: String,
    #[serde(default)]
    data: Option<ApiData>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct ApiData {
    #[serde(rename = "resultType")]
    result_type: String,
    result: serde_json::Value,
}

fn secs(ms: i64) -> String {
    format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
}

/// Runs one query; returns the number of series in the result.
async fn run_query(
    ctx: &Ctx,
    kind: &Kind,
    query: &str,
    end_ms: i64,
) -> Result<u64, (String, String)> {
    let base = ctx.args.url.trim_end_matches('/');
    let rb = match kind.shape {
        Shape::Instant => ctx
            .client
            .get(format!("{base}/api/v1/query"))
            .query(&[("query", query), ("time", &secs(end_ms))]),
        Shape::Range { range_s, step_s } => {
            // Align to the step, as Grafana does.
            let step_ms = step_s * 1000;
            let end = end_ms - end_ms.rem_euclid(step_ms);
            ctx.client
                .get(format!("{base}/api/v1/query_range"))
                .query(&[
                    ("query", query),
                    ("start", &secs(end - range_s * 1000)),
                    ("end", &secs(end)),
                    ("step", &step_s.to_string()),
                ])
        }
    };
    let rb = match &ctx.args.tenant {
        Some(t) => rb.header("X-Scope-OrgID", t),
        None => rb,
    };
    let resp = rb
        .send()
        .await
        .map_err(|e| (transport_error_kind(&e), e.to_string()))?;
    let status = resp.status();
    let body = resp
        .bytes()
        .await
        .map_err(|e| (transport_error_kind(&e), e.to_string()))?;
    let parsed: Result<ApiResponse, _> = serde_json::from_slice(&body);
    let snippet = || {
        String::from_utf8_lossy(&body[..body.len().min(300)])
            .trim()
            .to_string()
    };
    if !status.is_success() {
        let msg = match &parsed {
            Ok(p) => p.error.clone().unwrap_or_else(snippet),
            Err(_) => snippet(),
        };
        return Err((format!("http_{}", status.as_u16()), msg));
    }
    let parsed = parsed.map_err(|e| ("bad_json".to_string(), format!("{e}: {}", snippet())))?;
    if parsed.status != "success" {
        return Err((
            format!("api_{}", parsed.error_type.unwrap_or_default()),
            parsed.error.unwrap_or_default(),
        ));
    }
    let data = parsed
        .data
        .ok_or_else(|| ("bad_json".to_string(), "success without data".to_string()))?;
    Ok(match data.result_type.as_str() {
        "matrix" | "vector" => data.result.as_array().map_or(0, |a| a.len() as u64),
        _ => 1,
    })
}

async fn worker(ctx: Arc<Ctx>, id: usize) -> WorkerStats {
    let mut st = WorkerStats::default();
    let mut rng = Rng::new(0x51ed_0000 + id as u64);
    let jitter_ms = ctx.args.time_jitter.as_millis() as u64;
    loop {
        if *ctx.stop.borrow() {
            break;
        }
        if ctx.started.fetch_add(1, Ordering::Relaxed) >= ctx.args.max_queries {
            st.hit_max_queries = true;
            break;
        }
        let Some(index) = ctx.pick(Instant::now()) else {
            break;
        };
        let kind = ctx.kinds[index];
        let query = if kind.template.contains("$instance") {
            let inst = &ctx.instances[rng.below(ctx.instances.len() as u64) as usize];
            kind.template.replace("$instance", inst)
        } else {
            kind.template.to_string()
        };
        let end_ms = ctx.args.time - (rng.below(jitter_ms + 1) / 1000 * 1000) as i64;
        let started = Instant::now();
        let remaining = ctx.hard_deadline.saturating_duration_since(started) + ctx.args.timeout;
        let outcome = tokio::time::timeout(remaining, run_query(&ctx, kind, &query, end_ms))
            .await
            .unwrap_or_else(|_| Err(("transport_timeout".to_string(), "timed out".to_string())));
        let elapsed = started.elapsed();
        let ks = st.kinds.entry(kind.name).or_default();
        ks.queries += 1;
        match outcome {
            Ok(n) => {
                ks.ok += 1;
                ks.series_total += n;
                if n == 0 {
                    ks.empty += 1;
                }
                ks.latencies.record(elapsed);
            }
            Err((k, msg)) => {
                *ks.errors.entry(k.clone()).or_default() += 1;
                if st.examples.len() < 3 {
                    st.examples.push(format!("{}: {k}: {msg}", kind.name));
                }
                // Do not spin on a target that only answers errors.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    st
}

pub fn list() {
    for k in MIX {
        let shape = match k.shape {
            Shape::Instant => "instant".to_string(),
            Shape::Range { range_s, step_s } => format!("range {range_s}s step {step_s}s"),
        };
        println!("{:<26} {:<22} {}", k.name, shape, k.template);
    }
}

pub async fn run(args: QueryArgs) -> anyhow::Result<QueryReport> {
    let (_keep, stop) = watch::channel(false);
    run_until(args, stop).await
}

/// [`run`] that the caller can also end early by sending `true` on `stop`:
/// no query starts after that, and the ones in flight finish.
pub async fn run_until(
    args: QueryArgs,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<QueryReport> {
    anyhow::ensure!(args.concurrency > 0, "--concurrency must be positive");
    if let Some(unknown) = args
        .kinds
        .iter()
        .find(|n| !MIX.iter().any(|k| k.name == n.as_str()))
    {
        anyhow::bail!("--kinds: no query kind {unknown:?} (see --list)");
    }
    let kinds: Vec<&'static Kind> = MIX
        .iter()
        .filter(|k| args.kinds.is_empty() || args.kinds.iter().any(|n| n == k.name))
        .collect();
    anyhow::ensure!(!kinds.is_empty(), "--kinds matches no query (see --list)");
    let instances: Vec<String> = (0..model::targets_for(args.series.max(1)))
        .map(|t| model::node_instance(t as u32, 0))
        .collect();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency * 2)
        .timeout(args.timeout)
        .user_agent(concat!("strata-loadgen/", env!("CARGO_PKG_VERSION")))
        .build()?;
    let start = Instant::now();
    let hard = if args.min_per_kind > 0 {
        args.max_duration
            .unwrap_or(args.duration)
            .max(args.duration)
    } else {
        args.duration
    };
    let ctx = Arc::new(Ctx {
        client,
        args: args.clone(),
        started_per_kind: kinds.iter().map(|_| AtomicU64::new(0)).collect(),
        kinds,
        instances,
        soft_deadline: start + args.duration,
        hard_deadline: start + hard,
        started: AtomicU64::new(0),
        next_kind: AtomicU64::new(0),
        stop: stop.clone(),
    });
    let workers: Vec<_> = (0..args.concurrency)
        .map(|i| tokio::spawn(worker(ctx.clone(), i)))
        .collect();
    let mut merged: BTreeMap<&'static str, KindStats> = ctx
        .kinds
        .iter()
        .map(|k| (k.name, KindStats::default()))
        .collect();
    let mut examples = Vec::new();
    let mut hit_max_queries = false;
    for w in workers {
        let st = w.await?;
        hit_max_queries |= st.hit_max_queries;
        for (name, ks) in st.kinds {
            let m = merged.entry(name).or_default();
            m.queries += ks.queries;
            m.ok += ks.ok;
            m.empty += ks.empty;
            m.series_total += ks.series_total;
            m.latencies.merge(ks.latencies);
            merge_errors(&mut m.errors, ks.errors);
        }
        for e in st.examples {
            if examples.len() < 5 {
                examples.push(e);
            }
        }
    }
    let elapsed_s = start.elapsed().as_secs_f64().max(1e-9);
    let fewest_per_kind = merged.values().map(|k| k.queries).min().unwrap_or(0);
    let stopped_by = if *stop.borrow() {
        "stopped"
    } else if hit_max_queries {
        "max_queries"
    } else if args.min_per_kind > 0 && fewest_per_kind < args.min_per_kind {
        "max_duration"
    } else {
        "duration"
    };
    let mut report = QueryReport {
        url: args.url.clone(),
        series: args.series,
        concurrency: args.concurrency,
        time_ms: args.time,
        elapsed_s,
        stopped_by: stopped_by.to_string(),
        min_per_kind: args.min_per_kind,
        fewest_per_kind,
        error_examples: examples,
        ..Default::default()
    };
    let mut all = Latencies::default();
    for (name, mut ks) in merged {
        let kind = MIX.iter().find(|k| k.name == name).expect("known kind");
        report.queries += ks.queries;
        report.ok += ks.ok;
        merge_errors(&mut report.errors, ks.errors.clone());
        all.merge(ks.latencies.clone());
        report.kinds.insert(
            name.to_string(),
            KindReport {
                query: kind.template.to_string(),
                shape: match kind.shape {
                    Shape::Instant => "instant".to_string(),
                    Shape::Range { range_s, step_s } => format!("range {range_s}s step {step_s}s"),
                },
                queries: ks.queries,
                ok: ks.ok,
                empty_results: ks.empty,
                mean_series: if ks.ok > 0 {
                    ks.series_total as f64 / ks.ok as f64
                } else {
                    0.0
                },
                latency: ks.latencies.summary(),
                errors: ks.errors,
            },
        );
    }
    report.latency = all.summary();
    report.queries_per_s = report.queries as f64 / elapsed_s;
    Ok(report)
}

pub fn print_human(r: &QueryReport) {
    println!("query mix -> {} (concurrency {})", r.url, r.concurrency);
    println!(
        "  {:.1} s: {} queries ({:.1}/s), {} ok; latency of successes: {}",
        r.elapsed_s, r.queries, r.queries_per_s, r.ok, r.latency
    );
    println!(
        "  stopped by {}; fewest runs of one kind {}",
        r.stopped_by, r.fewest_per_kind
    );
    println!(
        "  {:<26} {:>6} {:>6} {:>9} {:>9} {:>9} {:>9} {:>8}  errors",
        "kind", "n", "ok", "p50 ms", "p90 ms", "p99 ms", "max ms", "series"
    );
    for (name, k) in &r.kinds {
        println!(
            "  {:<26} {:>6} {:>6} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>8.1}  {}",
            name,
            k.queries,
            k.ok,
            k.latency.p50_ms,
            k.latency.p90_ms,
            k.latency.p99_ms,
            k.latency.max_ms,
            k.mean_series,
            if k.errors.is_empty() {
                String::new()
            } else {
                format!("{:?}", k.errors)
            }
        );
    }
    for e in &r.error_examples {
        println!("  e.g. {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrap {
        #[command(flatten)]
        args: QueryArgs,
    }

    fn ctx(extra: &[&str], soft_in: Duration, hard_in: Duration) -> Ctx {
        let mut v = vec!["x"];
        v.extend_from_slice(extra);
        let args = Wrap::parse_from(v).args;
        let kinds: Vec<&'static Kind> = MIX
            .iter()
            .filter(|k| args.kinds.is_empty() || args.kinds.iter().any(|n| n == k.name))
            .collect();
        let now = Instant::now();
        Ctx {
            client: reqwest::Client::new(),
            started_per_kind: kinds.iter().map(|_| AtomicU64::new(0)).collect(),
            kinds,
            instances: vec![],
            soft_deadline: now + soft_in,
            hard_deadline: now + hard_in,
            started: AtomicU64::new(0),
            next_kind: AtomicU64::new(0),
            stop: watch::channel(false).1,
            args,
        }
    }

    const HEAVY: &str = "http_p99_1h,cpu_by_mode_1h,error_ratio_1h,pod_phases";

    #[test]
    fn kinds_take_turns() {
        let c = ctx(
            &["--kinds", HEAVY],
            Duration::from_secs(60),
            Duration::from_secs(60),
        );
        let now = Instant::now();
        let picks: Vec<usize> = (0..8).map(|_| c.pick(now).unwrap()).collect();
        assert_eq!(picks, vec![0, 1, 2, 3, 0, 1, 2, 3]);
    }

    #[test]
    fn after_the_duration_only_short_kinds_run_until_the_cap() {
        let c = ctx(
            &["--kinds", HEAVY, "--min-per-kind", "2"],
            Duration::ZERO,
            Duration::from_secs(60),
        );
        c.started_per_kind[0].store(2, Ordering::Relaxed);
        c.started_per_kind[2].store(1, Ordering::Relaxed);
        let now = Instant::now();
        let mut picks: Vec<usize> = std::iter::from_fn(|| c.pick(now)).collect();
        picks.sort_unstable();
        assert_eq!(picks, vec![1, 1, 2, 3, 3]);
        // Past the cap nothing starts, short or not.
        let capped = ctx(
            &["--kinds", HEAVY, "--min-per-kind", "2"],
            Duration::ZERO,
            Duration::ZERO,
        );
        assert_eq!(capped.pick(Instant::now()), None);
        // Without --min-per-kind the run ends at --duration.
        let plain = ctx(&["--kinds", HEAVY], Duration::ZERO, Duration::from_secs(60));
        assert_eq!(plain.pick(Instant::now()), None);
    }
}
