//! `mixed`: pushes at a fixed rate, first alone and then while heavy
//! queries run against the same tenant, to see how much the queries slow
//! the write path down (push latency with ÷ without).
//!
//! Both halves push the same number of whole rounds (one sample for every
//! series each) at `--rate` samples/s with synthetic timestamps that carry
//! on from `--start-round`, so every system gets identical data. In the
//! second half `--query-concurrency` workers run `--kinds` in turn from a
//! moment before the first push until the last push is answered; queries
//! in flight then finish (so whatever runs next starts on an idle system)
//! and are counted.

use std::time::Duration;

use clap::Args;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::query::{self, QueryArgs, QueryReport};
use crate::util::{human, parse_duration, parse_time};
use crate::write::{self, WriteArgs, WriteReport};

/// The heavy kinds of the query mix: long ranges over many series.
pub const HEAVY_KINDS: &str = "http_p99_1h,cpu_by_mode_1h,error_ratio_1h,pod_phases";

#[derive(Args, Debug, Clone)]
pub struct MixedArgs {
    /// Remote write URL (Strata: /api/v1/push; Prometheus and
    /// VictoriaMetrics: /api/v1/write).
    #[arg(long, default_value = "http://127.0.0.1:9009/api/v1/push")]
    pub write_url: String,
    /// Base URL of the Prometheus API (as `query --url`).
    #[arg(long, default_value = "http://127.0.0.1:9009/prometheus")]
    pub query_url: String,
    /// Active series (as `write --series`).
    #[arg(long, default_value_t = 10_000)]
    pub series: usize,
    /// Series (one sample each) per request.
    #[arg(long, default_value_t = 2000)]
    pub batch_size: usize,
    /// Seed of names and values.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Synthetic time of round 0 (as `write --start-time`).
    #[arg(long, default_value = "now-12h", value_parser = parse_time)]
    pub start_time: i64,
    /// First round to write (a previous run's `next_round`).
    #[arg(long, default_value_t = 0)]
    pub start_round: u64,
    /// Push rate in samples per second, the same in both halves.
    #[arg(long, default_value_t = 100_000.0)]
    pub rate: f64,
    /// Length of each half, rounded up to whole rounds.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Push shards (requests in flight at most).
    #[arg(long, default_value_t = 4)]
    pub push_concurrency: usize,
    /// Per-request timeout of pushes.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub push_timeout: Duration,
    /// Queries in flight during the second half.
    #[arg(long, default_value_t = 2)]
    pub query_concurrency: usize,
    /// Kinds of queries run in the second half (see `query --list`).
    #[arg(long, value_delimiter = ',', default_value = HEAVY_KINDS)]
    pub kinds: Vec<String>,
    /// Evaluation time of the newest queries (default: the newest sample
    /// the first half wrote).
    #[arg(long, value_parser = parse_time)]
    pub time: Option<i64>,
    /// Queries are evaluated up to this much before --time.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub time_jitter: Duration,
    /// Per-query timeout.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub query_timeout: Duration,
    /// Tenant of pushes and queries (X-Scope-OrgID); none by default.
    #[arg(long)]
    pub tenant: Option<String>,
    /// Pause between the halves.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub pause: Duration,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// What a mixed run measured.
#[derive(Serialize, Deserialize, Debug, Default, Clone)]
pub struct MixedReport {
    pub series: usize,
    pub rate_samples_per_s: f64,
    pub rounds_per_half: u64,
    pub round_period_s: f64,
    pub push_concurrency: usize,
    pub query_concurrency: usize,
    pub kinds: Vec<String>,
    /// First half: pushes alone.
    pub without_queries: WriteReport,
    /// Second half: the same pushes while the queries run.
    pub with_queries: WriteReport,
    /// The queries of the second half.
    pub queries: QueryReport,
    /// Push latency with ÷ without the queries (0 when undefined).
    pub p50_ratio: f64,
    pub p99_ratio: f64,
    /// Both halves.
    pub samples_accepted: u64,
    pub next_round: u64,
    pub last_timestamp_ms: i64,
}

/// Whole rounds of `series` samples at `rate` filling at least `duration`.
pub fn rounds_for(series: usize, rate: f64, duration: Duration) -> u64 {
    let period = write::round_period(series, rate).as_secs_f64();
    ((duration.as_secs_f64() / period).ceil() as u64).max(1)
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        0.0
    }
}

pub async fn run(args: MixedArgs) -> anyhow::Result<MixedReport> {
    anyhow::ensure!(args.series > 0, "--series must be positive");
    anyhow::ensure!(
        args.rate.is_finite() && args.rate > 0.0,
        "--rate must be a positive number of samples per second"
    );
    anyhow::ensure!(!args.kinds.is_empty(), "--kinds is empty");
    let period = write::round_period(args.series, args.rate);
    let rounds = rounds_for(args.series, args.rate, args.duration);
    let half = period.as_secs_f64() * rounds as f64;
    // A half that falls far behind its schedule is cut here (its report
    // then says `stopped_by: duration` and has fewer samples).
    let cap = Duration::from_secs_f64(half * 2.0 + 30.0);
    let push = |start_round: u64| WriteArgs {
        url: args.write_url.clone(),
        null_sink: false,
        dry_run: false,
        series: args.series,
        interval: Duration::from_secs(15),
        max_rate: false,
        rate: Some(args.rate),
        start_time: args.start_time,
        start_round,
        rounds: Some(rounds),
        churn: 0.0,
        batch_size: args.batch_size,
        concurrency: args.push_concurrency,
        tenants: 0,
        tenant_prefix: "tenant-".to_string(),
        tenant: args.tenant.clone(),
        duration: cap,
        max_requests: u64::MAX,
        timeout: args.push_timeout,
        prebuild_rounds: 2,
        seed: args.seed,
        progress: Duration::ZERO,
        json: false,
    };

    eprintln!(
        "mixed: {} rounds of {} series per half at {} samples/s ({:.1} s per half)",
        rounds,
        args.series,
        human(args.rate),
        half
    );
    let without = write::run(push(args.start_round)).await?;
    eprintln!(
        "mixed: pushes alone: p50 {:.2} ms, p99 {:.2} ms, {} samples/s",
        without.latency.p50_ms,
        without.latency.p99_ms,
        human(without.accepted_samples_per_s)
    );
    tokio::time::sleep(args.pause).await;

    let time = args.time.unwrap_or(if without.last_timestamp_ms > 0 {
        without.last_timestamp_ms
    } else {
        args.start_time + args.start_round as i64 * 15_000
    });
    let queries_args = QueryArgs {
        url: args.query_url.clone(),
        series: args.series,
        seed: args.seed,
        time,
        time_jitter: args.time_jitter,
        // Ended by the stop signal once the pushes are done.
        duration: cap + Duration::from_secs(3600),
        min_per_kind: 0,
        max_duration: None,
        max_queries: u64::MAX,
        concurrency: args.query_concurrency,
        timeout: args.query_timeout,
        tenant: args.tenant.clone(),
        kinds: args.kinds.clone(),
        list: false,
        json: false,
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let queries = tokio::spawn(query::run_until(queries_args, stop_rx));
    // Let the first queries get going before the first push.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let with = write::run(push(without.next_round)).await;
    let _ = stop_tx.send(true);
    let queries = queries.await??;
    let with = with?;
    eprintln!(
        "mixed: pushes with queries: p50 {:.2} ms, p99 {:.2} ms, {} samples/s; {} queries ({} ok)",
        with.latency.p50_ms,
        with.latency.p99_ms,
        human(with.accepted_samples_per_s),
        queries.queries,
        queries.ok
    );

    Ok(MixedReport {
        series: args.series,
        rate_samples_per_s: args.rate,
        rounds_per_half: rounds,
        round_period_s: period.as_secs_f64(),
        push_concurrency: with.concurrency,
        query_concurrency: args.query_concurrency,
        kinds: args.kinds.clone(),
        p50_ratio: ratio(with.latency.p50_ms, without.latency.p50_ms),
        p99_ratio: ratio(with.latency.p99_ms, without.latency.p99_ms),
        samples_accepted: without.samples_accepted + with.samples_accepted,
        next_round: with.next_round,
        last_timestamp_ms: with.last_timestamp_ms.max(without.last_timestamp_ms),
        without_queries: without,
        with_queries: with,
        queries,
    })
}

pub fn print_human(r: &MixedReport) {
    println!(
        "mixed: {} series, {} samples/s ({} rounds of {:.2} s per half), {} push shards, {} queries in flight ({})",
        r.series,
        human(r.rate_samples_per_s),
        r.rounds_per_half,
        r.round_period_s,
        r.push_concurrency,
        r.query_concurrency,
        r.kinds.join(", ")
    );
    for (name, w) in [
        ("without queries", &r.without_queries),
        ("with queries", &r.with_queries),
    ] {
        println!(
            "  push {name:<16} {} samples/s, latency {}; behind schedule p99 {:.2} ms; errors {:?}",
            human(w.accepted_samples_per_s),
            w.latency,
            w.schedule_lag.p99_ms,
            w.errors
        );
    }
    println!(
        "  push latency with ÷ without: p50 {:.2}×, p99 {:.2}×",
        r.p50_ratio, r.p99_ratio
    );
    println!(
        "  queries: {} run, {} ok in {:.1} s; latency {}",
        r.queries.queries, r.queries.ok, r.queries.elapsed_s, r.queries.latency
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halves_are_whole_rounds() {
        // 100k series at 100k/s: one round a second.
        assert_eq!(rounds_for(100_000, 100_000.0, Duration::from_secs(15)), 15);
        // 1M series at 100k/s: a round per 10 s, so 2 rounds for 15 s.
        assert_eq!(rounds_for(1_000_000, 100_000.0, Duration::from_secs(15)), 2);
        assert_eq!(rounds_for(1_000_000, 100_000.0, Duration::from_secs(1)), 1);
    }
}
