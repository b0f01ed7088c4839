//! `verify`: writes a known set of series with known values, reads them
//! back through the query API and reports every difference. Exits non-zero
//! on any mismatch or failed request.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use serde::{Deserialize, Serialize};
use strata_remote_write::{compress, encode_write_request, OwnedTimeSeries, Sample};

use crate::util::{now_ms, parse_duration, Rng};

const METRIC: &str = "loadgen_verify_value";

#[derive(Args, Debug, Clone)]
pub struct VerifyArgs {
    /// Remote write URL.
    #[arg(long, default_value = "http://127.0.0.1:9009/api/v1/push")]
    pub write_url: String,
    /// Base URL of the Prometheus query API.
    #[arg(long, default_value = "http://127.0.0.1:9009/prometheus")]
    pub query_url: String,
    /// Series to write.
    #[arg(long, default_value_t = 200)]
    pub series: usize,
    /// Samples per series.
    #[arg(long, default_value_t = 20)]
    pub samples: usize,
    /// Time between a series' samples.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub step: Duration,
    /// How long before now the newest sample is.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub age: Duration,
    /// How long to wait for written data to become visible.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub settle: Duration,
    /// Exact single-point reads by instant query.
    #[arg(long, default_value_t = 20)]
    pub point_reads: usize,
    /// Tenant (X-Scope-OrgID header).
    #[arg(long)]
    pub tenant: Option<String>,
    /// Per-request timeout.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// One check's outcome.
#[derive(Serialize, Deserialize, Debug, Default, Clone)]
pub struct CheckReport {
    pub checked: u64,
    pub mismatches: u64,
    /// Mismatches where every differing value is within 1e-12 (relative)
    /// of the written one: the store rounded the float.
    pub rounding_only: u64,
}

/// What verify found.
#[derive(Serialize, Deserialize, Debug, Default, Clone)]
pub struct VerifyReport {
    pub run: String,
    pub series: usize,
    pub samples_written: u64,
    pub settle_s: f64,
    pub checks: BTreeMap<String, CheckReport>,
    pub mismatches: u64,
    /// Mismatches that are only float rounding (see [`CheckReport`]).
    pub rounding_only: u64,
    pub problems: Vec<String>,
    pub ok: bool,
}

/// The value of series `i` at sample `k`: a mix of awkward floats.
fn value(i: usize, k: usize) -> f64 {
    match i % 6 {
        0 if k.rem_euclid(5) == 0 => 0.0,
        1 => -(i as f64) * 3.5 - k as f64,
        2 => 1e15 + (i * 1000 + k) as f64,
        3 => 1e-9 * (k + 1) as f64,
        4 => (k as f64) * 0.1 + i as f64,
        _ => (i * 7 + k * k) as f64,
    }
}

struct Plan {
    run: String,
    series: usize,
    samples: usize,
    step_ms: i64,
    first_ms: i64,
}

impl Plan {
    fn ts(&self, k: usize) -> i64 {
        self.first_ms + k as i64 * self.step_ms
    }

    fn last_ms(&self) -> i64 {
        self.ts(self.samples - 1)
    }

    /// A window that holds every sample at the last timestamp, under both
    /// closed (Prometheus 2) and left-open (Prometheus 3) range semantics.
    fn window(&self) -> String {
        format!(
            "{}ms",
            (self.samples as i64 - 1) * self.step_ms + self.step_ms / 2
        )
    }

    fn selector(&self) -> String {
        format!("{METRIC}{{run=\"{}\"}}", self.run)
    }
}

struct Client {
    http: reqwest::Client,
    args: VerifyArgs,
}

/// One series of a query result: `series` label → points.
type Points = BTreeMap<String, Vec<(i64, f64)>>;

fn parse_point(p: &serde_json::Value) -> Option<(i64, f64)> {
    let arr = p.as_array()?;
    let t = arr.first()?.as_f64()?;
    let v: f64 = match arr.get(1)?.as_str()? {
        "NaN" => f64::NAN,
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        s => s.parse().ok()?,
    };
    Some(((t * 1000.0).round() as i64, v))
}

impl Client {
    async fn query(&self, params: &[(&str, String)], range: bool) -> anyhow::Result<Points> {
        let path = if range { "query_range" } else { "query" };
        let url = format!(
            "{}/api/v1/{path}",
            self.args.query_url.trim_end_matches('/')
        );
        let mut rb = self.http.get(&url).query(params);
        if let Some(t) = &self.args.tenant {
            rb = rb.header("X-Scope-OrgID", t);
        }
        let resp = rb.send().await.with_context(|| format!("GET {url}"))?;
        let status = resp.status();
        let body = resp.text().await?;
        anyhow::ensure!(
            status.is_success(),
            "{path} answered {status}: {}",
            body.chars().take(300).collect::<String>()
        );
        let v: serde_json::Value = serde_json::from_str(&body).context("response is not JSON")?;
        anyhow::ensure!(v["status"] == "success", "{path} failed: {body}");
        let mut out = Points::new();
        for s in v["data"]["result"].as_array().into_iter().flatten() {
            let name = s["metric"]["series"].as_str().unwrap_or("?").to_string();
            let points = out.entry(name).or_default();
            if let Some(values) = s["values"].as_array() {
                points.extend(values.iter().filter_map(parse_point));
            } else if let Some(p) = parse_point(&s["value"]) {
                points.push(p);
            }
        }
        Ok(out)
    }

    async fn instant(&self, query: String, time_ms: i64) -> anyhow::Result<Points> {
        self.query(
            &[
                ("query", query),
                ("time", format!("{:.3}", time_ms as f64 / 1000.0)),
            ],
            false,
        )
        .await
    }
}

fn same(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || a == b
}

fn close(a: f64, b: f64) -> bool {
    same(a, b) || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

fn rounded(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * a.abs().max(b.abs())
}

/// A mismatch message and whether it is only float rounding.
struct Bad(String, bool);

pub async fn run(args: VerifyArgs) -> anyhow::Result<VerifyReport> {
    anyhow::ensure!(
        args.series > 0 && args.samples > 0,
        "--series and --samples must be positive"
    );
    let step_ms = args.step.as_millis().max(1) as i64;
    let newest = now_ms() - args.age.as_millis() as i64;
    let newest = newest - newest.rem_euclid(1000);
    let plan = Plan {
        run: format!("{:x}", now_ms()),
        series: args.series,
        samples: args.samples,
        step_ms,
        first_ms: newest - (args.samples as i64 - 1) * step_ms,
    };
    let client = Client {
        http: reqwest::Client::builder().timeout(args.timeout).build()?,
        args: args.clone(),
    };
    let mut report = VerifyReport {
        run: plan.run.clone(),
        series: plan.series,
        ..Default::default()
    };

    // Write: one request per timestamp, every series in each.
    for k in 0..plan.samples {
        let batch: Vec<OwnedTimeSeries> = (0..plan.series)
            .map(|i| {
                OwnedTimeSeries::new(
                    [
                        ("__name__", METRIC.to_string()),
                        ("instance", format!("verify-{}", i % 7)),
                        ("job", "loadgen-verify".to_string()),
                        ("run", plan.run.clone()),
                        ("series", i.to_string()),
                    ],
                    [Sample {
                        timestamp: plan.ts(k),
                        value: value(i, k),
                    }],
                )
            })
            .collect();
        let body = compress(&encode_write_request(&batch, &[]));
        let mut rb = client
            .http
            .post(&args.write_url)
            .header("Content-Encoding", "snappy")
            .header("Content-Type", "application/x-protobuf")
            .header("X-Prometheus-Remote-Write-Version", "0.1.0")
            .body(body);
        if let Some(t) = &args.tenant {
            rb = rb.header("X-Scope-OrgID", t);
        }
        let resp = rb
            .send()
            .await
            .with_context(|| format!("POST {}", args.write_url))?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        anyhow::ensure!(status.is_success(), "write {k} answered {status}: {text}");
        report.samples_written += plan.series as u64;
    }
    eprintln!(
        "verify: wrote {} samples of run {} ({} series x {})",
        report.samples_written, plan.run, plan.series, plan.samples
    );

    // Wait until every series shows every sample (or the settle time ends).
    let counts_query = format!("count_over_time({}[{}])", plan.selector(), plan.window());
    let settle_start = Instant::now();
    let counts = loop {
        let res = client.instant(counts_query.clone(), plan.last_ms()).await;
        let complete = matches!(&res, Ok(c) if c.len() == plan.series
            && c.values().all(|p| p.len() == 1 && p[0].1 == plan.samples as f64));
        if complete || settle_start.elapsed() >= args.settle {
            break res;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    report.settle_s = settle_start.elapsed().as_secs_f64();
    let mut problems: Vec<String> = Vec::new();
    let mut check = |name: &str, checked: u64, bad: Vec<Bad>, report: &mut VerifyReport| {
        let c = report.checks.entry(name.to_string()).or_default();
        let rounding = bad.iter().filter(|b| b.1).count() as u64;
        c.checked += checked;
        c.mismatches += bad.len() as u64;
        c.rounding_only += rounding;
        report.mismatches += bad.len() as u64;
        report.rounding_only += rounding;
        for b in bad {
            if problems.len() < 20 {
                problems.push(format!("{name}: {}", b.0));
            }
        }
    };

    // 1. count_over_time per series.
    match counts {
        Ok(c) => {
            let mut bad = Vec::new();
            for i in 0..plan.series {
                match c.get(&i.to_string()) {
                    Some(p) if p.len() == 1 && p[0].1 == plan.samples as f64 => {}
                    Some(p) => bad.push(Bad(
                        format!("series {i}: count {:?}, want {}", p, plan.samples),
                        false,
                    )),
                    None => bad.push(Bad(format!("series {i}: missing"), false)),
                }
            }
            if c.len() > plan.series {
                bad.push(Bad(
                    format!("{} series returned, want {}", c.len(), plan.series),
                    false,
                ));
            }
            check("count_over_time", plan.series as u64, bad, &mut report);
        }
        Err(e) => check(
            "count_over_time",
            1,
            vec![Bad(format!("{e:#}"), false)],
            &mut report,
        ),
    }

    // 2. sum_over_time per series.
    let sums = client
        .instant(
            format!("sum_over_time({}[{}])", plan.selector(), plan.window()),
            plan.last_ms(),
        )
        .await;
    match sums {
        Ok(c) => {
            let mut bad = Vec::new();
            for i in 0..plan.series {
                let want: f64 = (0..plan.samples).map(|k| value(i, k)).sum();
                match c.get(&i.to_string()).and_then(|p| p.first()) {
                    Some(&(_, got)) if close(got, want) => {}
                    Some(&(_, got)) => {
                        bad.push(Bad(format!("series {i}: sum {got}, want {want}"), false))
                    }
                    None => bad.push(Bad(format!("series {i}: missing"), false)),
                }
            }
            check("sum_over_time", plan.series as u64, bad, &mut report);
        }
        Err(e) => check(
            "sum_over_time",
            1,
            vec![Bad(format!("{e:#}"), false)],
            &mut report,
        ),
    }

    // 3. Every point, exactly, through one range query at the sample step.
    let range = client
        .query(
            &[
                ("query", plan.selector()),
                ("start", format!("{:.3}", plan.first_ms as f64 / 1000.0)),
                ("end", format!("{:.3}", plan.last_ms() as f64 / 1000.0)),
                ("step", format!("{:.3}", step_ms as f64 / 1000.0)),
            ],
            true,
        )
        .await;
    match range {
        Ok(c) => {
            let mut bad = Vec::new();
            for i in 0..plan.series {
                let want: Vec<(i64, f64)> = (0..plan.samples)
                    .map(|k| (plan.ts(k), value(i, k)))
                    .collect();
                match c.get(&i.to_string()) {
                    Some(got)
                        if got.len() == want.len()
                            && got
                                .iter()
                                .zip(&want)
                                .all(|(g, w)| g.0 == w.0 && same(g.1, w.1)) => {}
                    Some(got) => {
                        let first_diff = got
                            .iter()
                            .zip(&want)
                            .find(|(g, w)| g.0 != w.0 || !same(g.1, w.1))
                            .map(|(g, w)| format!("first difference: got {g:?}, want {w:?}"))
                            .unwrap_or_default();
                        let rounding = got.len() == want.len()
                            && got
                                .iter()
                                .zip(&want)
                                .all(|(g, w)| g.0 == w.0 && rounded(g.1, w.1));
                        bad.push(Bad(
                            format!(
                                "series {i}: {} points, want {}; {first_diff}",
                                got.len(),
                                want.len()
                            ),
                            rounding,
                        ));
                    }
                    None => bad.push(Bad(format!("series {i}: missing"), false)),
                }
            }
            check(
                "query_range_all_points",
                (plan.series * plan.samples) as u64,
                bad,
                &mut report,
            );
        }
        Err(e) => check(
            "query_range_all_points",
            1,
            vec![Bad(format!("{e:#}"), false)],
            &mut report,
        ),
    }

    // 4. Exact single points by instant query, half of them without a
    // metric name in the selector.
    let mut rng = Rng::new(now_ms() as u64);
    let mut bad = Vec::new();
    for n in 0..args.point_reads {
        let i = rng.below(plan.series as u64) as usize;
        let k = rng.below(plan.samples as u64) as usize;
        let query = if n % 2 == 0 {
            format!("{METRIC}{{run=\"{}\",series=\"{i}\"}}", plan.run)
        } else {
            format!("{{run=\"{}\",series=\"{i}\"}}", plan.run)
        };
        match client.instant(query.clone(), plan.ts(k)).await {
            Ok(c) => match c.get(&i.to_string()).map(Vec::as_slice) {
                Some([(t, v)]) if *t == plan.ts(k) && same(*v, value(i, k)) => {}
                other => {
                    let rounding = matches!(other, Some([(t, v)]) if *t == plan.ts(k) && rounded(*v, value(i, k)));
                    bad.push(Bad(
                        format!(
                            "{query} at {}: got {other:?}, want {}",
                            plan.ts(k),
                            value(i, k)
                        ),
                        rounding,
                    ));
                }
            },
            Err(e) => bad.push(Bad(format!("{query}: {e:#}"), false)),
        }
    }
    check(
        "instant_point_reads",
        args.point_reads as u64,
        bad,
        &mut report,
    );

    report.problems = problems;
    report.ok = report.mismatches == 0;
    Ok(report)
}

pub fn print_human(r: &VerifyReport) {
    println!(
        "verify run {}: {} series, {} samples written, visible after {:.1} s",
        r.run, r.series, r.samples_written, r.settle_s
    );
    for (name, c) in &r.checks {
        println!(
            "  {name:<24} {:>6} checked {:>6} mismatches ({} only float rounding)",
            c.checked, c.mismatches, c.rounding_only
        );
    }
    for p in &r.problems {
        println!("  {p}");
    }
    println!("  {}", if r.ok { "OK" } else { "MISMATCH" });
}
