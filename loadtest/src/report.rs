//! `report`: turns a `bench-compare` results directory into the markdown
//! section of `docs/benchmarks.md` between the bench-compare markers.
//!
//! Layout read (written by `loadtest/bench/compare.sh`):
//! `meta.json`, `generator-<series>.json` and, per series count and system,
//! `<series>/<system>/{warmup,memory,query,p5,ingest,verify,storage}.json`
//! or `<series>/<system>/skipped.txt`; with `RUNS` > 1 the same files in
//! `<series>/<system>/run-<k>/`, one directory per repetition. Numbers of
//! several runs show as their median with the `[min–max]` range.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use serde_json::Value;

use crate::mixed::MixedReport;
use crate::query::QueryReport;
use crate::util::human;
use crate::write::WriteReport;

pub const START_MARKER: &str = "<!-- bench-compare:start -->";
pub const END_MARKER: &str = "<!-- bench-compare:end -->";

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// Results directory of one bench-compare run.
    #[arg(long)]
    pub results: PathBuf,
    /// Markdown file whose bench-compare section is replaced (appended when
    /// the markers are missing).
    #[arg(long)]
    pub doc: Option<PathBuf>,
}

const SYSTEMS: [(&str, &str); 4] = [
    ("strata", "Strata, one process"),
    (
        "strata-distributed",
        "Strata, distributed (1 distributor, 3 ingesters, 1 querier; RF 3)",
    ),
    ("prometheus", "Prometheus 2.42"),
    ("victoriametrics", "VictoriaMetrics"),
];
const PEERS: [(&str, &str); 2] = [("prometheus", "Prom"), ("victoriametrics", "VM")];

/// The acceptance bound of P5: push p99 with the queries ÷ without.
const P5_MAX_RATIO: f64 = 1.5;

fn short_name(system: &str) -> &str {
    match system {
        "strata" => "Strata",
        "strata-distributed" => "Strata dist.",
        "prometheus" => "Prom",
        "victoriametrics" => "VM",
        other => other,
    }
}

/// One run of one system.
struct SystemResult {
    warmup: Option<WriteReport>,
    ingest: Option<WriteReport>,
    query: Option<QueryReport>,
    /// P5: pushes alone and with heavy queries.
    p5: Option<MixedReport>,
    memory: Option<Value>,
    memory_idle: Option<Value>,
    memory_after_ingest: Option<Value>,
    verify: Option<Value>,
    /// `storage.json`: what the system keeps at rest after P1.
    storage: Option<Value>,
}

/// Every run of one system; `skipped` when none ran.
struct Runs {
    skipped: Option<String>,
    runs: Vec<SystemResult>,
}

type Results<'a> = [(&'a str, Runs)];

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Option<T> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}

fn skipped(dir: &Path) -> Option<String> {
    std::fs::read_to_string(dir.join("skipped.txt"))
        .ok()
        .map(|s| s.trim().to_string())
}

fn load(dir: &Path) -> SystemResult {
    SystemResult {
        warmup: read_json(&dir.join("warmup.json")),
        ingest: read_json(&dir.join("ingest.json")),
        query: read_json(&dir.join("query.json")),
        p5: read_json(&dir.join("p5.json")),
        memory: read_json(&dir.join("memory.json")),
        memory_idle: read_json(&dir.join("memory-idle.json")),
        memory_after_ingest: read_json(&dir.join("memory-after-ingest.json")),
        verify: read_json(&dir.join("verify.json")),
        storage: read_json(&dir.join("storage.json")),
    }
}

/// The runs of one system: `run-<k>` subdirectories, or the directory
/// itself when it has none (one run).
fn load_runs(dir: &Path) -> Runs {
    let mut numbered: Vec<(u32, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let k = name.strip_prefix("run-")?.parse().ok()?;
            e.path().is_dir().then(|| (k, e.path()))
        })
        .collect();
    numbered.sort();
    let dirs: Vec<PathBuf> = if numbered.is_empty() {
        vec![dir.to_path_buf()]
    } else {
        numbered.into_iter().map(|(_, p)| p).collect()
    };
    let mut why = None;
    let mut runs = Vec::new();
    for d in dirs {
        match skipped(&d) {
            Some(s) => {
                why.get_or_insert(s);
            }
            None => runs.push(load(&d)),
        }
    }
    Runs {
        skipped: if runs.is_empty() {
            Some(why.unwrap_or_else(|| "no results".to_string()))
        } else {
            None
        },
        runs,
    }
}

fn find<'r>(results: &'r Results, system: &str) -> Option<&'r Runs> {
    results.iter().find(|(s, _)| *s == system).map(|(_, r)| r)
}

/// The runs' values, lowest first, with their runs.
fn sorted_values<'r>(
    runs: &'r Runs,
    value: &dyn Fn(&SystemResult) -> Option<f64>,
) -> Vec<(f64, &'r SystemResult)> {
    let mut v: Vec<(f64, &SystemResult)> = runs
        .runs
        .iter()
        .filter_map(|r| value(r).map(|x| (x, r)))
        .collect();
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    v
}

/// The median of the runs' values (the mean of the middle two of an even
/// count) and the median run (the lower middle one).
fn median<'r>(
    runs: &'r Runs,
    value: &dyn Fn(&SystemResult) -> Option<f64>,
) -> Option<(f64, &'r SystemResult)> {
    let v = sorted_values(runs, value);
    let (lo, r) = *v.get(v.len().saturating_sub(1) / 2)?;
    let hi = v[v.len() / 2].0;
    Some(((lo + hi) / 2.0, r))
}

/// ` [min–max]` over the runs when there are several.
fn range_suffix(
    runs: &Runs,
    value: &dyn Fn(&SystemResult) -> Option<f64>,
    fmt: &dyn Fn(f64) -> String,
) -> String {
    let v = sorted_values(runs, value);
    match (v.first(), v.last()) {
        (Some(lo), Some(hi)) if v.len() > 1 => format!(" [{}–{}]", fmt(lo.0), fmt(hi.0)),
        _ => String::new(),
    }
}

/// The median with its range, or `None` when no run has the value.
fn ranged(
    runs: &Runs,
    value: &dyn Fn(&SystemResult) -> Option<f64>,
    fmt: &dyn Fn(f64) -> String,
) -> Option<String> {
    let (v, _) = median(runs, value)?;
    Some(format!("{}{}", fmt(v), range_suffix(runs, value, fmt)))
}

fn memory_per_series(r: &SystemResult, series: f64) -> Option<f64> {
    let kib = r.memory.as_ref()?["rss_kib"].as_f64()?;
    Some(kib * 1024.0 / series)
}

fn rss_mib(v: &Option<Value>) -> Option<f64> {
    v.as_ref()?["rss_kib"].as_f64().map(|k| k / 1024.0)
}

/// A cell: the (median) value with its range over runs, and for Strata's
/// columns its ratio to each peer.
fn cell(
    results: &Results,
    system: &str,
    value: &dyn Fn(&SystemResult) -> Option<f64>,
    fmt: &dyn Fn(f64) -> String,
) -> String {
    cell_core(results, system, value, &|_, v| fmt(v), Some(fmt))
}

/// [`cell`] whose text may use the whole (median) run, without ranges.
fn cell_with(
    results: &Results,
    system: &str,
    value: &dyn Fn(&SystemResult) -> Option<f64>,
    fmt: &dyn Fn(&SystemResult, f64) -> String,
) -> String {
    cell_core(results, system, value, fmt, None)
}

fn cell_core(
    results: &Results,
    system: &str,
    value: &dyn Fn(&SystemResult) -> Option<f64>,
    fmt: &dyn Fn(&SystemResult, f64) -> String,
    range_fmt: Option<&dyn Fn(f64) -> String>,
) -> String {
    let Some(runs) = find(results, system) else {
        return "—".to_string();
    };
    if let Some(why) = &runs.skipped {
        return format!("skipped: {why}");
    }
    let Some((mut v, r)) = median(runs, value) else {
        return "—".to_string();
    };
    if range_fmt.is_none() {
        // Text about the whole run: that run's own value.
        v = value(r).unwrap_or(v);
    }
    let mut out = fmt(r, v);
    if let Some(rf) = range_fmt {
        out.push_str(&range_suffix(runs, value, rf));
    }
    if system.starts_with("strata") {
        let ratios: Vec<String> = PEERS
            .iter()
            .filter_map(|(peer, short)| {
                let (pv, _) = median(find(results, peer)?, value)?;
                (pv > 0.0).then(|| format!("{:.2}× {short}", v / pv))
            })
            .collect();
        if !ratios.is_empty() {
            let _ = write!(out, " ({})", ratios.join(", "));
        }
    }
    out
}

fn row(
    md: &mut String,
    label: &str,
    results: &Results,
    value: impl Fn(&SystemResult) -> Option<f64>,
    fmt: impl Fn(f64) -> String,
) {
    let cells: Vec<String> = SYSTEMS
        .iter()
        .map(|(s, _)| cell(results, s, &value, &fmt))
        .collect();
    let _ = writeln!(md, "| {label} | {} |", cells.join(" | "));
}

fn row_with(
    md: &mut String,
    label: &str,
    results: &Results,
    value: impl Fn(&SystemResult) -> Option<f64>,
    fmt: impl Fn(&SystemResult, f64) -> String,
) {
    let cells: Vec<String> = SYSTEMS
        .iter()
        .map(|(s, _)| cell_with(results, s, &value, &fmt))
        .collect();
    let _ = writeln!(md, "| {label} | {} |", cells.join(" | "));
}

/// A row whose cells are built from all runs of a system.
fn runs_row(md: &mut String, label: &str, results: &Results, f: impl Fn(&str, &Runs) -> String) {
    let cells: Vec<String> = SYSTEMS
        .iter()
        .map(|(s, _)| match find(results, s) {
            Some(runs) if runs.skipped.is_some() => "skipped".to_string(),
            Some(runs) => f(s, runs),
            None => "—".to_string(),
        })
        .collect();
    let _ = writeln!(md, "| {label} | {} |", cells.join(" | "));
}

/// A row of text per run: one text when every run gives the same, else
/// the runs' texts in order.
fn text_row(md: &mut String, label: &str, results: &Results, f: impl Fn(&SystemResult) -> String) {
    runs_row(md, label, results, |_, runs| {
        let texts: Vec<String> = runs.runs.iter().map(&f).collect();
        if texts.windows(2).all(|w| w[0] == w[1]) {
            texts.into_iter().next().unwrap_or_else(|| "—".to_string())
        } else {
            texts
                .iter()
                .enumerate()
                .map(|(i, t)| format!("run {}: {t}", i + 1))
                .collect::<Vec<_>>()
                .join("; ")
        }
    });
}

/// A number from `storage.json`.
fn stored(r: &SystemResult, key: &str) -> Option<f64> {
    r.storage.as_ref()?[key].as_f64()
}

fn storage_kind(r: &SystemResult) -> &str {
    r.storage
        .as_ref()
        .and_then(|s| s["kind"].as_str())
        .unwrap_or("")
}

/// Samples the storage figures are divided by (warm-up, P5 and P1).
fn stored_samples(r: &SystemResult) -> Option<f64> {
    stored(r, "samples").filter(|n| *n > 0.0)
}

/// A Strata store that did not confirm the flush gives no figures.
fn strata_flushed(r: &SystemResult) -> bool {
    storage_kind(r) != "strata"
        || r.storage.as_ref().and_then(|s| s["flush_ok"].as_bool()) == Some(true)
}

/// Bytes per sample at rest, index included: Strata's bytes written to the
/// object store and the index; Prometheus's head written as a block
/// (snapshot); VictoriaMetrics's data directory.
fn at_rest_bytes(r: &SystemResult) -> Option<f64> {
    let bytes = match storage_kind(r) {
        "strata" if strata_flushed(r) => {
            stored(r, "object_bytes_written")? + stored(r, "index_bytes_written")?
        }
        "prometheus" => stored(r, "snapshot_bytes").filter(|b| *b > 0.0)?,
        "victoriametrics" => stored(r, "data_dir_bytes")?,
        _ => return None,
    };
    Some(bytes / stored_samples(r)?)
}

/// On-disk bytes per sample: `du` of what holds the data.
fn on_disk_bytes(r: &SystemResult) -> Option<f64> {
    let bytes = match storage_kind(r) {
        "strata" if strata_flushed(r) => {
            stored(r, "du_chunks_bytes")? + stored(r, "du_index_bytes")?
        }
        "prometheus" | "victoriametrics" => stored(r, "data_dir_bytes")?,
        _ => return None,
    };
    Some(bytes / stored_samples(r)?)
}

fn per_million(r: &SystemResult, key: &str) -> Option<f64> {
    if storage_kind(r) != "strata" || !strata_flushed(r) {
        return None;
    }
    Some(stored(r, key)? * 1e6 / stored_samples(r)?)
}

fn bytes_per_sample(v: f64) -> String {
    if v >= 10.0 {
        format!("{v:.1} B")
    } else {
        format!("{v:.2} B")
    }
}

fn mib(bytes: f64) -> String {
    format!("{:.1} MiB", bytes / 1048576.0)
}

fn errors_text(errors: &std::collections::BTreeMap<String, u64>) -> String {
    if errors.is_empty() {
        return "none".to_string();
    }
    errors
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0} ms")
    } else if v >= 1.0 {
        format!("{v:.1} ms")
    } else {
        format!("{v:.2} ms")
    }
}

fn series_label(n: u64) -> String {
    if n >= 1_000_000 && n.rem_euclid(1_000_000) == 0 {
        format!("{}M", n / 1_000_000)
    } else if n >= 1000 && n.rem_euclid(1000) == 0 {
        format!("{}k", n / 1000)
    } else {
        n.to_string()
    }
}

fn p5_of(r: &SystemResult) -> Option<&MixedReport> {
    r.p5.as_ref().filter(|p| p.without_queries.requests_ok > 0)
}

/// P5: push latency alone and with the queries (p50 or p99).
fn p5_latency(r: &SystemResult, with: bool, p99: bool) -> Option<f64> {
    let p = p5_of(r)?;
    let w = if with {
        &p.with_queries
    } else {
        &p.without_queries
    };
    (w.requests_ok > 0).then_some(if p99 {
        w.latency.p99_ms
    } else {
        w.latency.p50_ms
    })
}

fn p5_ratio(r: &SystemResult) -> Option<f64> {
    p5_of(r)
        .map(|p| p.p99_ratio)
        .filter(|v| *v > 0.0 && p5_latency(r, true, true).is_some())
}

/// P4 latency of one kind (`p99` or p50) in one run.
fn kind_latency(r: &SystemResult, kind: &str, p99: bool) -> Option<f64> {
    let k = r.query.as_ref()?.kinds.get(kind).filter(|k| k.ok > 0)?;
    Some(if p99 {
        k.latency.p99_ms
    } else {
        k.latency.p50_ms
    })
}

fn ratio_text(v: f64) -> String {
    format!("{v:.2}×")
}

fn num1(v: f64) -> String {
    format!("{v:.1}")
}

pub fn render(results_dir: &Path) -> anyhow::Result<String> {
    let meta: Value = read_json(&results_dir.join("meta.json"))
        .with_context(|| format!("no meta.json in {}", results_dir.display()))?;
    let s = |k: &str| meta[k].as_str().unwrap_or("?").to_string();
    let n = |k: &str| meta[k].as_f64().unwrap_or(0.0);
    let runs_n = meta["runs"].as_u64().unwrap_or(1).max(1);
    let mut md = String::new();
    let _ = writeln!(md, "{START_MARKER}");
    let _ = writeln!(
        md,
        "## Side by side: Strata, Prometheus and VictoriaMetrics\n"
    );
    let _ = writeln!(
        md,
        "Generated by `loadtest/bench/compare.sh` on {} (total {:.0} s).\n",
        s("date"),
        n("elapsed_s")
    );
    let _ = writeln!(md, "Command: `{}`\n", s("command"));
    let _ = writeln!(
        md,
        "Machine: {} cores, {:.1} GiB RAM ({}); peers: {}, {}. {}\n",
        n("cores"),
        n("mem_kib") / 1024.0 / 1024.0,
        s("machine"),
        s("prometheus_version"),
        s("victoriametrics_version"),
        s("load_note")
    );
    let p4_rule = if n("min_per_kind") > 0.0 {
        format!(
            "for at least {}, then on until every kind ran {} times (only the kinds still short \
start) or {} passes, whichever comes first",
            s("query_duration"),
            n("min_per_kind"),
            s("query_max_duration")
        )
    } else {
        format!("for {}", s("query_duration"))
    };
    let p5_text = if meta["p5_rate"].is_null() {
        String::new()
    } else {
        format!(
            "**P5**: pushes at a fixed {} samples/s ({} shards; whole rounds of every series, \
at least {} per half, synthetic clock carried on) first alone, then the same pushes while the \
heavy kinds of the mix ({}) run in turn with {} in flight against the same tenant; push \
request latency p50/p99 of both halves and their ratio (with ÷ without; the target is at most \
{P5_MAX_RATIO}×); ",
            human(n("p5_rate")),
            n("p5_concurrency"),
            s("p5_duration"),
            s("p5_kinds").replace(',', ", "),
            n("query_concurrency"),
        )
    };
    let _ = writeln!(
        md,
        "Method. One generator (`strata-loadgen`, on the same machine) drives every system with \
identical data: targets shaped like a Kubernetes node (node_exporter, kube-state-metrics and \
application request histograms; 265 series each, realistic label lengths), one sample per \
series per 15 s of synthetic time, {} series per remote write 1.0 request. Per system and series \
count: start it on 127.0.0.1 with a fresh data directory; **warm-up**: one sample for every \
series per round, {} rounds, timestamps from 24 h ago, series creation included, concurrency {}; \
**P2**: resident memory (VmRSS summed over the system's processes, median of 3 readings) divided \
by active series; **P4**: the query mix (`strata-loadgen query --list`; kinds taken in turn) {}, \
concurrency {}, evaluated over the warm-up data (identical everywhere); {}**P1**: sustained ingest \
at maximum rate into the same series for {} with {} shards (requests in flight; with several \
values, one step each and the best counts), continuing the synthetic clock; **storage**: what the \
samples written so far take at rest \
(Strata: `POST /ingester/flush` on every ingester, which closes and writes every chunk, then the \
store's counters — chunk object and index bytes written, objects PUT, index write units — and \
`du` of `<data-dir>/chunks` and `<data-dir>/index`; Prometheus: `du` of its data directory, the WAL \
and head chunks since nothing is compacted into a block this soon, and of a snapshot, which writes \
the head as a block; VictoriaMetrics: `du` of its data directory after `/internal/force_flush`); \
then a correctness check (`strata-loadgen verify`) and stop. Ratios in Strata's columns \
are Strata ÷ peer: above 1 is better for samples/s, below 1 is better for bytes and latency.{}\n",
        n("batch_size"),
        s("warmup_rounds"),
        n("warmup_concurrency"),
        p4_rule,
        n("query_concurrency"),
        p5_text,
        s("ingest_duration"),
        s("ingest_concurrency"),
        if runs_n > 1 {
            format!(
                " Each system ran {runs_n} times from scratch (the systems in turn); a number is \
the median of the runs (the mean of the middle two of an even count) with `[min–max]` over the \
runs; ratios, marks and the fastest system are between medians; rows of text give every run's \
when they differ."
            )
        } else {
            String::new()
        },
    );
    let _ = writeln!(md, "Flags: {}\n", s("flags_note"));
    let wal = meta["strata_wal"].as_str().unwrap_or("on").to_string();

    let mut series_counts: Vec<u64> = meta["series"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    series_counts.sort_unstable();
    for count in series_counts {
        let dir = results_dir.join(count.to_string());
        let results: Vec<(&str, Runs)> = SYSTEMS
            .iter()
            .filter(|(sys, _)| dir.join(sys).exists())
            .map(|(sys, _)| (*sys, load_runs(&dir.join(sys))))
            .collect();
        let _ = writeln!(md, "### {} active series\n", series_label(count));
        let warmups: Vec<String> = results
            .iter()
            .filter_map(|(sys, runs)| {
                let w = runs.runs.first()?.warmup.as_ref()?;
                Some(format!(
                    "{sys} {} rounds ({:.1} samples per series)",
                    w.next_round,
                    w.samples_accepted as f64 / count as f64
                ))
            })
            .collect();
        if !warmups.is_empty() {
            let _ = writeln!(
                md,
                "Warm-up data held during P2 and P4: {}.\n",
                warmups.join("; ")
            );
        }
        if let Some(g) =
            read_json::<WriteReport>(&results_dir.join(format!("generator-{count}.json")))
        {
            let _ = writeln!(
                md,
                "Generator alone, against its built-in null receiver, same settings as P1: {} samples/s \
({:.2} CPU-seconds per million samples, encoding + HTTP client + null server).\n",
                human(g.accepted_samples_per_s),
                g.generator_cpu_s_per_million_samples
            );
        }
        let header: Vec<&str> = SYSTEMS.iter().map(|(_, h)| *h).collect();
        let _ = writeln!(md, "| Measure | {} |", header.join(" | "));
        let _ = writeln!(md, "|---|{}", "---|".repeat(SYSTEMS.len()));
        let p1 = |r: &SystemResult| r.ingest.as_ref().map(|w| w.accepted_samples_per_s);
        row(
            &mut md,
            "**P1** sustained ingest, samples/s",
            &results,
            p1,
            human,
        );
        runs_row(
            &mut md,
            &format!("**P1 Strata ÷ VictoriaMetrics**, Strata's WAL {wal}"),
            &results,
            |sys, runs| {
                if !sys.starts_with("strata") {
                    return "n/a".to_string();
                }
                let Some(vm) = find(&results, "victoriametrics") else {
                    return "—".to_string();
                };
                let (Some((sv, _)), Some((vv, _))) = (median(runs, &p1), median(vm, &p1)) else {
                    return "—".to_string();
                };
                if vv <= 0.0 {
                    return "—".to_string();
                }
                // Run k against run k: the spread of the ratio itself.
                let mut per_run: Vec<f64> = runs
                    .runs
                    .iter()
                    .zip(&vm.runs)
                    .filter_map(|(a, b)| Some(p1(a)? / p1(b).filter(|v| *v > 0.0)?))
                    .collect();
                per_run.sort_by(f64::total_cmp);
                let mut t = format!("{:.2}×", sv / vv);
                if per_run.len() > 1 {
                    let _ = write!(
                        t,
                        " [{:.2}–{:.2} run by run]",
                        per_run[0],
                        per_run[per_run.len() - 1]
                    );
                }
                t
            },
        );
        runs_row(
            &mut md,
            "P1 request latency p50 / p99 (requests in flight)",
            &results,
            |_, runs| {
                let p50 = ranged(runs, &|r| r.ingest.as_ref().map(|w| w.latency.p50_ms), &ms);
                let p99 = ranged(runs, &|r| r.ingest.as_ref().map(|w| w.latency.p99_ms), &ms);
                let conc = runs
                    .runs
                    .first()
                    .and_then(|r| r.ingest.as_ref())
                    .map(|w| w.concurrency);
                match (p50, p99, conc) {
                    (Some(a), Some(b), Some(c)) => format!("{a} / {b} ({c})"),
                    _ => "—".to_string(),
                }
            },
        );
        runs_row(
            &mut md,
            "Generator CPU during P1, cores (of the machine's)",
            &results,
            |_, runs| {
                ranged(
                    runs,
                    &|r| {
                        r.ingest
                            .as_ref()
                            .map(|w| w.generator_cpu_s / w.elapsed_s.max(1e-9))
                    },
                    &|v| format!("{v:.2}"),
                )
                .unwrap_or_else(|| "—".to_string())
            },
        );
        text_row(&mut md, "P1 failed requests", &results, |r| {
            r.ingest
                .as_ref()
                .map_or("—".to_string(), |w| errors_text(&w.errors))
        });
        row(
            &mut md,
            "Warm-up ingest incl. series creation, samples/s",
            &results,
            |r| r.warmup.as_ref().map(|w| w.accepted_samples_per_s),
            human,
        );
        text_row(&mut md, "Warm-up failed requests", &results, |r| {
            r.warmup
                .as_ref()
                .map_or("—".to_string(), |w| errors_text(&w.errors))
        });
        row(
            &mut md,
            "**P2** memory per active series (after warm-up)",
            &results,
            |r| memory_per_series(r, count as f64),
            |v| format!("{v:.0} B"),
        );
        row(
            &mut md,
            "P2 without the idle process: (RSS after warm-up − RSS at start) per series",
            &results,
            |r| {
                Some(
                    (rss_mib(&r.memory)? - rss_mib(&r.memory_idle)?) * 1024.0 * 1024.0
                        / count as f64,
                )
            },
            |v| format!("{v:.0} B"),
        );
        for (label, pick) in [
            ("RSS at start (no data), MiB", 0),
            ("RSS after warm-up, MiB", 1),
            ("RSS after P1, MiB", 2),
        ] {
            row(
                &mut md,
                label,
                &results,
                |r| {
                    rss_mib(match pick {
                        0 => &r.memory_idle,
                        1 => &r.memory,
                        _ => &r.memory_after_ingest,
                    })
                },
                |v| format!("{v:.0}"),
            );
        }
        row(
            &mut md,
            "**P4** query mix latency p50",
            &results,
            |r| {
                r.query
                    .as_ref()
                    .filter(|q| q.ok > 0)
                    .map(|q| q.latency.p50_ms)
            },
            ms,
        );
        row(
            &mut md,
            "**P4** query mix latency p99",
            &results,
            |r| {
                r.query
                    .as_ref()
                    .filter(|q| q.ok > 0)
                    .map(|q| q.latency.p99_ms)
            },
            ms,
        );
        text_row(&mut md, "P4 queries ok / run", &results, |r| {
            r.query.as_ref().map_or("—".to_string(), |q| {
                let mut t = format!("{} / {}", q.ok, q.queries);
                if !q.errors.is_empty() {
                    let _ = write!(t, " ({})", errors_text(&q.errors));
                }
                t
            })
        });
        text_row(
            &mut md,
            "P4 fewest runs of one kind, time taken",
            &results,
            |r| {
                // Results from before the loadgen counted it have no
                // `stopped_by`.
                r.query
                    .as_ref()
                    .filter(|q| !q.stopped_by.is_empty())
                    .map_or("—".to_string(), |q| {
                        let mut t = format!("{} in {:.0} s", q.fewest_per_kind, q.elapsed_s);
                        if q.stopped_by == "max_duration" {
                            let _ = write!(t, " (cap reached, {} wanted)", q.min_per_kind);
                        }
                        t
                    })
            },
        );
        let reference: Option<BTreeMap<String, f64>> = find(&results, "prometheus")
            .and_then(|runs| runs.runs.first())
            .and_then(|r| r.query.as_ref())
            .map(|q| {
                q.kinds
                    .iter()
                    .filter(|(_, v)| v.ok > 0)
                    .map(|(k, v)| (k.clone(), v.mean_series))
                    .collect()
            });
        text_row(
            &mut md,
            "P4 result sizes equal to Prometheus's",
            &results,
            |r| match (&reference, &r.query) {
                (Some(reference), Some(q)) => {
                    // Only kinds both systems ran can be compared; a
                    // slow system may not reach every kind in the time.
                    let compared: Vec<bool> = q
                        .kinds
                        .iter()
                        .filter(|(_, v)| v.ok > 0)
                        .filter_map(|(k, v)| {
                            reference.get(k).map(|m| (m - v.mean_series).abs() < 1e-9)
                        })
                        .collect();
                    let same = compared.iter().filter(|s| **s).count();
                    let not_run = reference.len() - compared.len();
                    if not_run == 0 {
                        format!("{same} of {} kinds", compared.len())
                    } else {
                        format!(
                            "{same} of {} kinds both ran ({not_run} not reached in the time)",
                            compared.len()
                        )
                    }
                }
                _ => "—".to_string(),
            },
        );
        p5_rows(&mut md, &results);
        text_row(
            &mut md,
            "Read-back check (`verify`)",
            &results,
            |r| match &r.verify {
                Some(v) if v["ok"].as_bool() == Some(true) => "exact".to_string(),
                Some(v) => match (v["mismatches"].as_u64(), v["rounding_only"].as_u64()) {
                    (Some(m), Some(rd)) if m == rd => {
                        format!("{m} values rounded (relative error < 1e-12)")
                    }
                    (Some(m), _) => format!("{m} mismatches"),
                    _ => format!(
                        "failed: {}",
                        v["error"].as_str().unwrap_or("see verify.json")
                    ),
                },
                None => "—".to_string(),
            },
        );
        storage_rows(&mut md, &results, count);
        md.push('\n');
        kinds_table(&mut md, &results);
    }
    if let Some(notes) = meta["notes"].as_str().filter(|s| !s.is_empty()) {
        let _ = writeln!(md, "{notes}\n");
    }
    let shown = std::fs::read_to_string(results_dir.join("path.txt"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| results_dir.display().to_string());
    let _ = writeln!(
        md,
        "Raw results: `{shown}` (JSON per phase and the systems' logs; not committed)."
    );
    let _ = writeln!(md, "{END_MARKER}");
    Ok(md)
}

/// The P5 rows: push latency alone and under heavy queries (none when no
/// system has P5 results).
fn p5_rows(md: &mut String, results: &Results) {
    if !results
        .iter()
        .any(|(_, runs)| runs.runs.iter().any(|r| r.p5.is_some()))
    {
        return;
    }
    for (label, p99) in [
        ("**P5** push p99: alone → with heavy queries", true),
        ("P5 push p50: alone → with heavy queries", false),
    ] {
        runs_row(md, label, results, |_, runs| {
            match (
                ranged(runs, &|r| p5_latency(r, false, p99), &ms),
                ranged(runs, &|r| p5_latency(r, true, p99), &ms),
            ) {
                (Some(a), Some(b)) => format!("{a} → {b}"),
                _ => "—".to_string(),
            }
        });
        if p99 {
            runs_row(
                md,
                &format!("**P5** push p99 with ÷ without the queries (target ≤ {P5_MAX_RATIO}×)"),
                results,
                |sys, runs| {
                    let Some((v, _)) = median(runs, &p5_ratio) else {
                        return "—".to_string();
                    };
                    let mut t = format!(
                        "{}{}",
                        ratio_text(v),
                        range_suffix(runs, &p5_ratio, &ratio_text)
                    );
                    if sys.starts_with("strata") {
                        t.push_str(if v <= P5_MAX_RATIO { " ✓" } else { " ✗" });
                    }
                    t
                },
            );
        }
    }
    runs_row(
        md,
        "P5 heavy queries during the pushes: ok / run",
        results,
        |_, runs| {
            let texts: Vec<String> = runs
                .runs
                .iter()
                .filter_map(|r| {
                    let q = &p5_of(r)?.queries;
                    let mut t = format!("{} / {}", q.ok, q.queries);
                    if !q.errors.is_empty() {
                        let _ = write!(t, " {}", errors_text(&q.errors));
                    }
                    Some(t)
                })
                .collect();
            if texts.is_empty() {
                "—".to_string()
            } else {
                texts.join("; ")
            }
        },
    );
    runs_row(
        md,
        "P5 push samples/s accepted alone / with queries; behind schedule p99",
        results,
        |_, runs| {
            let rate = |with: bool| {
                move |r: &SystemResult| {
                    p5_of(r).map(|p| {
                        if with {
                            p.with_queries.accepted_samples_per_s
                        } else {
                            p.without_queries.accepted_samples_per_s
                        }
                    })
                }
            };
            let lag = |with: bool| {
                move |r: &SystemResult| {
                    p5_of(r).map(|p| {
                        if with {
                            p.with_queries.schedule_lag.p99_ms
                        } else {
                            p.without_queries.schedule_lag.p99_ms
                        }
                    })
                }
            };
            let Some(first) = runs.runs.iter().find_map(p5_of) else {
                return "—".to_string();
            };
            let mut errors = first.without_queries.errors.clone();
            crate::util::merge_errors(&mut errors, first.with_queries.errors.clone());
            format!(
                "{} / {} of {}; {} / {}{}",
                ranged(runs, &rate(false), &human).unwrap_or_default(),
                ranged(runs, &rate(true), &human).unwrap_or_default(),
                human(first.rate_samples_per_s),
                ranged(runs, &lag(false), &ms).unwrap_or_default(),
                ranged(runs, &lag(true), &ms).unwrap_or_default(),
                if errors.is_empty() {
                    String::new()
                } else {
                    format!("; failed: {}", errors_text(&errors))
                }
            )
        },
    );
}

/// Per-kind P4 latency, which system is fastest, and whether Strata is at
/// least as fast as the faster peer.
fn kinds_table(md: &mut String, results: &Results) {
    let with_queries: Vec<&(&str, Runs)> = results
        .iter()
        .filter(|(_, runs)| runs.runs.iter().any(|r| r.query.is_some()))
        .collect();
    if with_queries.is_empty() {
        return;
    }
    let mut kinds: Vec<String> = with_queries
        .iter()
        .flat_map(|(_, runs)| runs.runs.iter())
        .filter_map(|r| r.query.as_ref())
        .flat_map(|q| q.kinds.keys().cloned())
        .collect();
    kinds.sort();
    kinds.dedup();
    let _ = writeln!(
        md,
        "Query latency by kind, p50 / p99 (ms; `errors` when no query of the kind succeeded, \
`not run` when none started). In Strata's columns `(p50 ✓/✗, p99 ✓/✗)` says whether Strata's \
p50 and p99 are at most the faster peer's (the lower of Prometheus's and VictoriaMetrics's, \
each percentile on its own){}:\n",
        if with_queries.iter().any(|(_, runs)| runs.runs.len() > 1) {
            "; medians of the runs with `[min–max]`"
        } else {
            ""
        }
    );
    let names: Vec<&str> = with_queries
        .iter()
        .map(|(s, _)| SYSTEMS.iter().find(|(n, _)| n == s).map_or(*s, |(_, h)| *h))
        .collect();
    let _ = writeln!(md, "| Query | {} | Fastest p50 / p99 |", names.join(" | "));
    let _ = writeln!(md, "|---|{}---|", "---|".repeat(with_queries.len()));
    // Per Strata system: kinds where both, p50 only, p99 only were ≤ peers.
    let mut tally: BTreeMap<&str, [usize; 4]> = BTreeMap::new();
    for kind in &kinds {
        let p50 = |r: &SystemResult| kind_latency(r, kind, false);
        let p99 = |r: &SystemResult| kind_latency(r, kind, true);
        let best_peer = |value: &dyn Fn(&SystemResult) -> Option<f64>| {
            PEERS
                .iter()
                .filter_map(|(p, _)| median(find(results, p)?, value).map(|(v, _)| v))
                .min_by(f64::total_cmp)
        };
        let (peer50, peer99) = (best_peer(&p50), best_peer(&p99));
        let cells: Vec<String> = with_queries
            .iter()
            .map(|(sys, runs)| {
                let ran = runs.runs.iter().any(|r| {
                    r.query
                        .as_ref()
                        .and_then(|q| q.kinds.get(kind))
                        .is_some_and(|k| k.queries > 0)
                });
                let (Some(a), Some(b)) = (ranged(runs, &p50, &num1), ranged(runs, &p99, &num1))
                else {
                    return if ran { "errors" } else { "not run" }.to_string();
                };
                let empty = runs.runs.iter().any(|r| {
                    r.query
                        .as_ref()
                        .and_then(|q| q.kinds.get(kind))
                        .is_some_and(|k| k.ok > 0 && k.empty_results == k.ok)
                });
                let mut t = format!("{a} / {b}{}", if empty { " (empty)" } else { "" });
                if sys.starts_with("strata") {
                    if let (Some((s50, _)), Some((s99, _)), Some(p50v), Some(p99v)) =
                        (median(runs, &p50), median(runs, &p99), peer50, peer99)
                    {
                        let (ok50, ok99) = (s50 <= p50v, s99 <= p99v);
                        let mark = |ok: bool| if ok { "✓" } else { "✗" };
                        let _ = write!(t, " (p50 {}, p99 {})", mark(ok50), mark(ok99));
                        let e = tally.entry(sys).or_default();
                        e[0] += usize::from(ok50 && ok99);
                        e[1] += usize::from(ok50);
                        e[2] += usize::from(ok99);
                        e[3] += 1;
                    }
                }
                t
            })
            .collect();
        let fastest = |value: &dyn Fn(&SystemResult) -> Option<f64>| {
            with_queries
                .iter()
                .filter_map(|(sys, runs)| median(runs, value).map(|(v, _)| (v, *sys)))
                .min_by(|a, b| a.0.total_cmp(&b.0))
                .map_or("—", |(_, sys)| short_name(sys))
        };
        let _ = writeln!(
            md,
            "| `{kind}` | {} | {} / {} |",
            cells.join(" | "),
            fastest(&p50),
            fastest(&p99)
        );
    }
    md.push('\n');
    for (sys, [both, p50, p99, compared]) in &tally {
        let name = SYSTEMS
            .iter()
            .find(|(n, _)| n == sys)
            .map_or(*sys, |(_, h)| *h);
        let _ = writeln!(
            md,
            "- {name}: p50 and p99 at most the faster peer's in {both} of {compared} kinds \
(p50 in {p50}, p99 in {p99})."
        );
    }
    if !tally.is_empty() {
        md.push('\n');
    }
}

/// The long-term storage rows (`storage.json`, measured after P1).
fn storage_rows(md: &mut String, results: &Results, series: u64) {
    text_row(
        md,
        "Samples stored (warm-up, P5 and P1), and per series",
        results,
        |r| {
            stored_samples(r).map_or("—".to_string(), |n| {
                format!("{} ({:.0})", human(n), n / series as f64)
            })
        },
    );
    text_row(md, "Storage measured after P1 by", results, |r| {
        let Some(s) = &r.storage else {
            return "—".to_string();
        };
        match storage_kind(r) {
            "strata" => {
                let n = s["ingesters"].as_array().map_or(0, Vec::len);
                let status: Vec<String> = s["ingesters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|i| i["flush_status"].to_string())
                    .collect();
                format!(
                    "`POST /ingester/flush` on {n} ingester{}: HTTP {} in {:.1} s; before it the \
flush loop had completed {} cycle(s) and written {:.0} of the {:.0} chunks",
                    if n == 1 { "" } else { "s" },
                    status.join(", "),
                    s["flush_seconds"].as_f64().unwrap_or(0.0),
                    s["flush_cycles_before"].as_f64().unwrap_or(0.0),
                    s["chunks_flushed_before"].as_f64().unwrap_or(0.0),
                    s["chunks_flushed"].as_f64().unwrap_or(0.0),
                )
            }
            "prometheus" => format!(
                "`POST /api/v1/admin/tsdb/snapshot`: {:.1} s",
                s["snapshot_seconds"].as_f64().unwrap_or(0.0)
            ),
            "victoriametrics" => "`/internal/force_flush`".to_string(),
            _ => "—".to_string(),
        }
    });
    row_with(
        md,
        "**Storage**: bytes per sample at rest, index included",
        results,
        at_rest_bytes,
        |r, v| {
            let Some(s) = stored_samples(r) else {
                return bytes_per_sample(v);
            };
            match storage_kind(r) {
                "strata" => format!(
                    "{} (chunk objects {} + index {}; bytes written)",
                    bytes_per_sample(v),
                    bytes_per_sample(stored(r, "object_bytes_written").unwrap_or(0.0) / s),
                    bytes_per_sample(stored(r, "index_bytes_written").unwrap_or(0.0) / s),
                ),
                "prometheus" => format!(
                    "{} (snapshot: the head as a block, {})",
                    bytes_per_sample(v),
                    mib(stored(r, "snapshot_bytes").unwrap_or(0.0))
                ),
                "victoriametrics" => format!(
                    "{} (data directory, {})",
                    bytes_per_sample(v),
                    mib(stored(r, "data_dir_bytes").unwrap_or(0.0))
                ),
                _ => bytes_per_sample(v),
            }
        },
    );
    row_with(
        md,
        "On-disk bytes per sample (`du`)",
        results,
        on_disk_bytes,
        |r, v| {
            let Some(s) = stored_samples(r) else {
                return bytes_per_sample(v);
            };
            match storage_kind(r) {
                "strata" => format!(
                    "{} (chunks/ {} + index/ {}: the redb file with its free pages)",
                    bytes_per_sample(v),
                    bytes_per_sample(stored(r, "du_chunks_bytes").unwrap_or(0.0) / s),
                    bytes_per_sample(stored(r, "du_index_bytes").unwrap_or(0.0) / s),
                ),
                "prometheus" => format!(
                    "{} (data directory: WAL {} + head chunks {})",
                    bytes_per_sample(v),
                    mib(stored(r, "wal_bytes").unwrap_or(0.0)),
                    mib(stored(r, "head_chunks_bytes").unwrap_or(0.0)),
                ),
                "victoriametrics" => {
                    let mut t = format!("{} (data directory", bytes_per_sample(v));
                    if let Some(b) = stored(r, "data_dir_bytes_after_stop") {
                        let _ = write!(t, "; after stopping: {}", bytes_per_sample(b / s));
                    }
                    t.push(')');
                    t
                }
                _ => bytes_per_sample(v),
            }
        },
    );
    strata_only_row(
        md,
        "S3 PUTs per million samples (objects written)",
        results,
        |r| per_million(r, "objects_written"),
        |r, v| {
            format!(
                "{v:.2} ({:.0} objects)",
                stored(r, "objects_written").unwrap_or(0.0)
            )
        },
    );
    strata_only_row(
        md,
        "DynamoDB write units per million samples (1 per started KB per item)",
        results,
        |r| per_million(r, "index_write_units"),
        |r, v| {
            format!(
                "{v:.0} ({:.0} items, {})",
                stored(r, "index_items_written").unwrap_or(0.0),
                mib(stored(r, "index_bytes_written").unwrap_or(0.0))
            )
        },
    );
}

/// A row only Strata's columns have a value for (`n/a` for the peers).
fn strata_only_row(
    md: &mut String,
    label: &str,
    results: &Results,
    value: impl Fn(&SystemResult) -> Option<f64>,
    fmt: impl Fn(&SystemResult, f64) -> String,
) {
    let cells: Vec<String> = SYSTEMS
        .iter()
        .map(|(s, _)| {
            if s.starts_with("strata") {
                cell_with(results, s, &value, &fmt)
            } else {
                "n/a".to_string()
            }
        })
        .collect();
    let _ = writeln!(md, "| {label} | {} |", cells.join(" | "));
}

/// Replaces the marked section of `doc` with `section` (or appends it).
pub fn splice(doc: &str, section: &str) -> String {
    if let (Some(a), Some(b)) = (doc.find(START_MARKER), doc.find(END_MARKER)) {
        if a < b {
            let end = b + END_MARKER.len();
            let rest = doc[end..].strip_prefix('\n').unwrap_or(&doc[end..]);
            return format!("{}{section}{rest}", &doc[..a]);
        }
    }
    let mut out = doc.trim_end().to_string();
    out.push_str("\n\n");
    out.push_str(section);
    out
}

pub fn run(args: &ReportArgs) -> anyhow::Result<()> {
    let section = render(&args.results)?;
    match &args.doc {
        Some(path) => {
            let doc = std::fs::read_to_string(path).unwrap_or_default();
            std::fs::write(path, splice(&doc, &section))
                .with_context(|| format!("writing {}", path.display()))?;
            eprintln!("report: updated {}", path.display());
        }
        None => print!("{section}"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::KindReport;

    fn put<T: serde::Serialize>(dir: &Path, name: &str, v: &T) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join(name), serde_json::to_string(v).unwrap()).unwrap();
    }

    /// One run: P1 rate, P4 p50/p99 of one kind, P5 push p99 alone/with.
    fn run_files(dir: &Path, p1: f64, p50: f64, p99: f64, alone: f64, with: f64) {
        let mut ingest = WriteReport {
            accepted_samples_per_s: p1,
            concurrency: 8,
            ..Default::default()
        };
        ingest.latency.p99_ms = 10.0;
        put(dir, "ingest.json", &ingest);
        let mut kind = KindReport {
            queries: 5,
            ok: 5,
            mean_series: 3.0,
            ..Default::default()
        };
        kind.latency.p50_ms = p50;
        kind.latency.p99_ms = p99;
        let mut query = QueryReport {
            queries: 5,
            ok: 5,
            fewest_per_kind: 5,
            stopped_by: "duration".to_string(),
            ..Default::default()
        };
        query.kinds.insert("http_p99_1h".to_string(), kind);
        put(dir, "query.json", &query);
        let mut p5 = MixedReport {
            rate_samples_per_s: 100_000.0,
            p99_ratio: with / alone,
            ..Default::default()
        };
        p5.without_queries.requests_ok = 10;
        p5.without_queries.latency.p99_ms = alone;
        p5.with_queries.requests_ok = 10;
        p5.with_queries.latency.p99_ms = with;
        put(dir, "p5.json", &p5);
    }

    #[test]
    fn runs_show_ranges_marks_and_the_fastest() {
        let root = std::env::temp_dir().join(format!("strata-report-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        put(
            &root,
            "meta.json",
            &serde_json::json!({"series": [1000], "runs": 2, "p5_rate": 100000,
                "p5_duration": "15s", "p5_concurrency": 4, "p5_kinds": "http_p99_1h",
                "min_per_kind": 5, "query_duration": "15s", "query_max_duration": "120s",
                "strata_wal": "on"}),
        );
        let base = root.join("1000");
        run_files(&base.join("strata/run-1"), 1e6, 10.0, 20.0, 4.0, 5.0);
        run_files(&base.join("strata/run-2"), 2e6, 12.0, 40.0, 4.0, 7.0);
        run_files(
            &base.join("victoriametrics/run-1"),
            1e6,
            11.0,
            30.0,
            4.0,
            8.0,
        );
        run_files(
            &base.join("victoriametrics/run-2"),
            1e6,
            11.0,
            30.0,
            4.0,
            8.0,
        );
        // A peer that fitted the budget only once.
        put(
            &base.join("prometheus/run-1"),
            "skipped.txt",
            &"time budget",
        );
        run_files(&base.join("prometheus/run-2"), 5e5, 9.0, 50.0, 4.0, 4.0);
        put(
            &base.join("strata-distributed/run-1"),
            "skipped.txt",
            &"time budget",
        );
        put(
            &base.join("strata-distributed/run-2"),
            "skipped.txt",
            &"time budget",
        );
        let md = render(&root).unwrap();
        let _ = std::fs::remove_dir_all(&root);
        let line = |start: &str| {
            md.lines()
                .find(|l| l.starts_with(start))
                .unwrap_or_else(|| panic!("no row {start:?} in\n{md}"))
                .to_string()
        };
        let p1 = line("| **P1** sustained");
        assert!(
            p1.contains("| 1.50M [1.00M–2.00M] (3.00× Prom, 1.50× VM) |"),
            "{p1}"
        );
        assert!(p1.contains("skipped"), "{p1}");
        let vm_ratio = line("| **P1 Strata ÷ VictoriaMetrics**, Strata's WAL on");
        assert!(
            vm_ratio.contains("1.50× [1.00–2.00 run by run]"),
            "{vm_ratio}"
        );
        // Strata: 1.25× and 1.75×, median 1.50× (passes); VM 2×.
        let p5 = line("| **P5** push p99 with ÷ without");
        assert!(p5.contains("| 1.50× [1.25×–1.75×] ✓ |"), "{p5}");
        assert!(p5.contains("| 2.00× [2.00×–2.00×] |"), "{p5}");
        // p50: Strata 11, Prom 9, VM 11 -> Prom fastest, Strata not ≤;
        // p99: Strata 30, Prom 50, VM 30 -> Strata ≤ the faster peer.
        let kind = line("| `http_p99_1h`");
        assert!(
            kind.contains("11.0 [10.0–12.0] / 30.0 [20.0–40.0] (p50 ✗, p99 ✓)"),
            "{kind}"
        );
        assert!(kind.ends_with("| Prom / Strata |"), "{kind}");
        assert!(md.contains("in 0 of 1 kinds (p50 in 0, p99 in 1)"), "{md}");
    }

    #[test]
    fn splice_replaces_between_markers_or_appends() {
        let section = format!("{START_MARKER}\nnew\n{END_MARKER}\n");
        let doc = format!("# A\n\n{START_MARKER}\nold\n{END_MARKER}\n\n## B\n");
        assert_eq!(splice(&doc, &section), format!("# A\n\n{section}\n## B\n"));
        assert_eq!(splice("# A\n", &section), format!("# A\n\n{section}"));
    }
}
