//! `report`: turns a `bench-compare` results directory into the markdown
//! section of `docs/benchmarks.md` between the bench-compare markers.
//!
//! Layout read (written by `loadtest/bench/compare.sh`):
//! `meta.json`, `generator-<series>.json` and, per series count and system,
//! `<series>/<system>/{warmup,memory,query,ingest,verify}.json` or
//! `<series>/<system>/skipped.txt`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use serde_json::Value;

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

struct SystemResult {
    skipped: Option<String>,
    warmup: Option<WriteReport>,
    ingest: Option<WriteReport>,
    query: Option<QueryReport>,
    memory: Option<Value>,
    memory_idle: Option<Value>,
    memory_after_ingest: Option<Value>,
    verify: Option<Value>,
    /// `storage.json`: what the system keeps at rest after P1.
    storage: Option<Value>,
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Option<T> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}

fn load(dir: &Path) -> SystemResult {
    SystemResult {
        skipped: std::fs::read_to_string(dir.join("skipped.txt"))
            .ok()
            .map(|s| s.trim().to_string()),
        warmup: read_json(&dir.join("warmup.json")),
        ingest: read_json(&dir.join("ingest.json")),
        query: read_json(&dir.join("query.json")),
        memory: read_json(&dir.join("memory.json")),
        memory_idle: read_json(&dir.join("memory-idle.json")),
        memory_after_ingest: read_json(&dir.join("memory-after-ingest.json")),
        verify: read_json(&dir.join("verify.json")),
        storage: read_json(&dir.join("storage.json")),
    }
}

fn memory_per_series(r: &SystemResult, series: f64) -> Option<f64> {
    let kib = r.memory.as_ref()?["rss_kib"].as_f64()?;
    Some(kib * 1024.0 / series)
}

fn rss_mib(v: &Option<Value>) -> Option<f64> {
    v.as_ref()?["rss_kib"].as_f64().map(|k| k / 1024.0)
}

/// A cell: the value, and for Strata's columns its ratio to each peer.
fn cell(
    results: &[(&str, SystemResult)],
    system: &str,
    value: impl Fn(&SystemResult) -> Option<f64>,
    fmt: impl Fn(f64) -> String,
) -> String {
    cell_with(results, system, value, |_, v| fmt(v))
}

/// [`cell`] whose text may use the whole result (a breakdown of the value).
fn cell_with(
    results: &[(&str, SystemResult)],
    system: &str,
    value: impl Fn(&SystemResult) -> Option<f64>,
    fmt: impl Fn(&SystemResult, f64) -> String,
) -> String {
    let Some((_, r)) = results.iter().find(|(s, _)| *s == system) else {
        return "—".to_string();
    };
    if let Some(why) = &r.skipped {
        return format!("skipped: {why}");
    }
    let Some(v) = value(r) else {
        return "—".to_string();
    };
    let mut out = fmt(r, v);
    if system.starts_with("strata") {
        let ratios: Vec<String> = PEERS
            .iter()
            .filter_map(|(peer, short)| {
                let (_, pr) = results.iter().find(|(s, _)| s == peer)?;
                let pv = value(pr)?;
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
    results: &[(&str, SystemResult)],
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
    results: &[(&str, SystemResult)],
    value: impl Fn(&SystemResult) -> Option<f64>,
    fmt: impl Fn(&SystemResult, f64) -> String,
) {
    let cells: Vec<String> = SYSTEMS
        .iter()
        .map(|(s, _)| cell_with(results, s, &value, &fmt))
        .collect();
    let _ = writeln!(md, "| {label} | {} |", cells.join(" | "));
}

fn text_row(
    md: &mut String,
    label: &str,
    results: &[(&str, SystemResult)],
    f: impl Fn(&SystemResult) -> String,
) {
    let cells: Vec<String> = SYSTEMS
        .iter()
        .map(|(s, _)| match results.iter().find(|(n, _)| n == s) {
            Some((_, r)) if r.skipped.is_some() => "skipped".to_string(),
            Some((_, r)) => f(r),
            None => "—".to_string(),
        })
        .collect();
    let _ = writeln!(md, "| {label} | {} |", cells.join(" | "));
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

/// Samples the storage figures are divided by (warm-up and P1).
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

pub fn render(results_dir: &Path) -> anyhow::Result<String> {
    let meta: Value = read_json(&results_dir.join("meta.json"))
        .with_context(|| format!("no meta.json in {}", results_dir.display()))?;
    let s = |k: &str| meta[k].as_str().unwrap_or("?").to_string();
    let n = |k: &str| meta[k].as_f64().unwrap_or(0.0);
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
    let _ = writeln!(
        md,
        "Method. One generator (`strata-loadgen`, on the same machine) drives every system with \
identical data: targets shaped like a Kubernetes node (node_exporter, kube-state-metrics and \
application request histograms; 265 series each, realistic label lengths), one sample per \
series per 15 s of synthetic time, {} series per remote write 1.0 request. Per system and series \
count: start it on 127.0.0.1 with a fresh data directory; **warm-up**: one sample for every \
series per round, {} rounds, timestamps from 24 h ago, series creation included, concurrency {}; \
**P2**: resident memory (VmRSS summed over the system's processes, median of 3 readings) divided \
by active series; **P4**: the query mix (`strata-loadgen query --list`) for {}, concurrency {}, \
evaluated over the warm-up data (identical everywhere); **P1**: sustained ingest at maximum rate \
into the same series for {} with {} shards (requests in flight; with several values, one \
step each and the best counts), continuing the synthetic clock; **storage**: what the samples of the warm-up and P1 take at rest \
(Strata: `POST /ingester/flush` on every ingester, which closes and writes every chunk, then the \
store's counters — chunk object and index bytes written, objects PUT, index write units — and \
`du` of `<data-dir>/chunks` and `<data-dir>/index`; Prometheus: `du` of its data directory, the WAL \
and head chunks since nothing is compacted into a block this soon, and of a snapshot, which writes \
the head as a block; VictoriaMetrics: `du` of its data directory after `/internal/force_flush`); \
then a correctness check (`strata-loadgen verify`) and stop. Ratios in Strata's columns \
are Strata ÷ peer: above 1 is better for samples/s, below 1 is better for bytes and latency.\n",
        n("batch_size"),
        s("warmup_rounds"),
        n("warmup_concurrency"),
        s("query_duration"),
        n("query_concurrency"),
        s("ingest_duration"),
        s("ingest_concurrency"),
    );
    let _ = writeln!(md, "Flags: {}\n", s("flags_note"));

    let mut series_counts: Vec<u64> = meta["series"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    series_counts.sort_unstable();
    for count in series_counts {
        let dir = results_dir.join(count.to_string());
        let results: Vec<(&str, SystemResult)> = SYSTEMS
            .iter()
            .filter(|(sys, _)| dir.join(sys).exists())
            .map(|(sys, _)| (*sys, load(&dir.join(sys))))
            .collect();
        let _ = writeln!(md, "### {} active series\n", series_label(count));
        let warmups: Vec<String> = results
            .iter()
            .filter_map(|(sys, r)| {
                let w = r.warmup.as_ref()?;
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
        row(
            &mut md,
            "**P1** sustained ingest, samples/s",
            &results,
            |r| r.ingest.as_ref().map(|w| w.accepted_samples_per_s),
            human,
        );
        text_row(
            &mut md,
            "P1 request latency p50 / p99 (requests in flight)",
            &results,
            |r| {
                r.ingest.as_ref().map_or("—".to_string(), |w| {
                    format!(
                        "{} / {} ({})",
                        ms(w.latency.p50_ms),
                        ms(w.latency.p99_ms),
                        w.concurrency
                    )
                })
            },
        );
        text_row(
            &mut md,
            "Generator CPU during P1, cores (of the machine's)",
            &results,
            |r| {
                r.ingest.as_ref().map_or("—".to_string(), |w| {
                    format!("{:.2}", w.generator_cpu_s / w.elapsed_s.max(1e-9))
                })
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
        let reference: Option<std::collections::BTreeMap<String, f64>> = results
            .iter()
            .find(|(s, _)| *s == "prometheus")
            .and_then(|(_, r)| r.query.as_ref())
            .map(|q| {
                q.kinds
                    .iter()
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

        // Per-kind query latency.
        let with_queries: Vec<&(&str, SystemResult)> =
            results.iter().filter(|(_, r)| r.query.is_some()).collect();
        if let Some((_, first)) = with_queries.first() {
            let kinds: Vec<String> = first
                .query
                .as_ref()
                .map(|q| q.kinds.keys().cloned().collect())
                .unwrap_or_default();
            let _ = writeln!(md, "Query latency by kind, p50 / p99 (ms; `errors` when no query of the kind succeeded):\n");
            let names: Vec<&str> = with_queries
                .iter()
                .map(|(s, _)| SYSTEMS.iter().find(|(n, _)| n == s).map_or(*s, |(_, h)| *h))
                .collect();
            let _ = writeln!(md, "| Query | {} |", names.join(" | "));
            let _ = writeln!(md, "|---|{}", "---|".repeat(with_queries.len()));
            for kind in kinds {
                let cells: Vec<String> = with_queries
                    .iter()
                    .map(
                        |(_, r)| match r.query.as_ref().and_then(|q| q.kinds.get(&kind)) {
                            Some(k) if k.ok > 0 => format!(
                                "{:.1} / {:.1}{}",
                                k.latency.p50_ms,
                                k.latency.p99_ms,
                                if k.empty_results == k.ok {
                                    " (empty)"
                                } else {
                                    ""
                                }
                            ),
                            Some(_) => "errors".to_string(),
                            None => "—".to_string(),
                        },
                    )
                    .collect();
                let _ = writeln!(md, "| `{kind}` | {} |", cells.join(" | "));
            }
            md.push('\n');
        }
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

/// The long-term storage rows (`storage.json`, measured after P1).
fn storage_rows(md: &mut String, results: &[(&str, SystemResult)], series: u64) {
    text_row(
        md,
        "Samples stored (warm-up + P1), and per series",
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
    results: &[(&str, SystemResult)],
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

    #[test]
    fn splice_replaces_between_markers_or_appends() {
        let section = format!("{START_MARKER}\nnew\n{END_MARKER}\n");
        let doc = format!("# A\n\n{START_MARKER}\nold\n{END_MARKER}\n\n## B\n");
        assert_eq!(splice(&doc, &section), format!("# A\n\n{section}\n## B\n"));
        assert_eq!(splice("# A\n", &section), format!("# A\n\n{section}"));
    }
}
