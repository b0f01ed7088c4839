//! `write`: pushes remote write 1.0 requests for N active series.
//!
//! Series are split into `--concurrency` shards, as Prometheus' remote
//! write queue does: each shard sends one request at a time, so every
//! series' samples arrive in order, and the number of shards is the number
//! of requests in flight. Each shard has its own encoder thread that builds
//! (protobuf + snappy) requests ahead into a bounded queue, so the sending
//! loop only does HTTP.
//!
//! Timestamps either follow the wall clock (one sample per series per
//! `--interval`, requests spread over the interval) or, with `--max-rate`,
//! advance by `--interval` per round of synthetic time, as fast as the
//! target accepts them. With `--rate`, timestamps are synthetic as with
//! `--max-rate` but rounds are sent at a fixed number of samples per second,
//! each round's requests spread evenly over its period.

use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use clap::Args;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::model::{self, Model, SERIES_PER_TARGET};
use crate::util::{
    human, merge_errors, now_ms, parse_duration, parse_time, process_cpu_time,
    transport_error_kind, ErrorCounts, Latencies, LatencySummary,
};

#[derive(Args, Debug, Clone)]
pub struct WriteArgs {
    /// Remote write URL (Strata: /api/v1/push; Prometheus and
    /// VictoriaMetrics: /api/v1/write).
    #[arg(long, default_value = "http://127.0.0.1:9009/api/v1/push")]
    pub url: String,
    /// Ignore --url and push to a built-in null receiver instead, to measure
    /// the generator's own maximum rate.
    #[arg(long)]
    pub null_sink: bool,
    /// Build the requests but send nothing (measures encoding alone).
    #[arg(long)]
    pub dry_run: bool,
    /// Active series (265 per target: node_exporter, kube-state-metrics and
    /// application histograms).
    #[arg(long, default_value_t = 10_000)]
    pub series: usize,
    /// Scrape interval: each series gets one sample per interval.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub interval: Duration,
    /// Send as fast as the target accepts: timestamps advance by --interval
    /// of synthetic time per round instead of following the clock.
    #[arg(long, conflicts_with = "rate")]
    pub max_rate: bool,
    /// Send at this many samples per second, with synthetic timestamps as
    /// with --max-rate: one round of all series every series/rate seconds,
    /// each shard's requests spread evenly over the round. A request a shard
    /// cannot send on time goes out late (`schedule_lag` in the report).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Synthetic time of round 0 with --max-rate (`now`, `now-12h` or Unix
    /// milliseconds). The generator stops when synthetic time reaches the
    /// present.
    #[arg(long, default_value = "now-12h", value_parser = parse_time)]
    pub start_time: i64,
    /// First round number. Values (and, with --max-rate, timestamps) carry
    /// on from there, so a run can continue where the previous one stopped
    /// (its report's `next_round`).
    #[arg(long, default_value_t = 0)]
    pub start_round: u64,
    /// Stop after this many rounds (one sample for every series each).
    #[arg(long)]
    pub rounds: Option<u64>,
    /// Per cent of series replaced by new ones every interval (whole
    /// targets: a node and its pods get new names).
    #[arg(long, default_value_t = 0.0)]
    pub churn: f64,
    /// Series (one sample each) per request.
    #[arg(long, default_value_t = 2000)]
    pub batch_size: usize,
    /// Shards = requests in flight.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Spread targets over this many tenants (`X-Scope-OrgID:
    /// <tenant-prefix><n>`); 0 sends no tenant header unless --tenant is set.
    #[arg(long, default_value_t = 0)]
    pub tenants: usize,
    /// Prefix of tenant names with --tenants.
    #[arg(long, default_value = "tenant-")]
    pub tenant_prefix: String,
    /// A single tenant for every request.
    #[arg(long)]
    pub tenant: Option<String>,
    /// Stop sending after this long (the clock starts after pre-building).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Stop after this many requests.
    #[arg(long, default_value_t = 1_000_000)]
    pub max_requests: u64,
    /// Per-request timeout.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Rounds each shard encodes ahead (its queue depth). With --max-rate
    /// the clock starts once the queues are full.
    #[arg(long, default_value_t = 2)]
    pub prebuild_rounds: usize,
    /// Seed of names and values (the query subcommand needs the same one).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Print progress every this often to stderr (0 = never).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub progress: Duration,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// What a write run measured.
#[derive(Serialize, Deserialize, Debug, Default, Clone)]
pub struct WriteReport {
    pub url: String,
    pub mode: String,
    pub series: usize,
    pub targets: usize,
    pub batch_size: usize,
    pub concurrency: usize,
    pub tenants: usize,
    pub churn_percent: f64,
    pub interval_ms: u64,
    /// Samples per second asked for with --rate (0 otherwise).
    #[serde(default)]
    pub target_samples_per_s: f64,
    pub elapsed_s: f64,
    pub prebuild_s: f64,
    pub requests: u64,
    pub requests_ok: u64,
    pub samples_sent: u64,
    pub samples_accepted: u64,
    pub accepted_samples_per_s: f64,
    pub bytes_sent: u64,
    pub latency: LatencySummary,
    /// How late requests went out against their schedule (--rate and real
    /// time; empty with --max-rate).
    #[serde(default)]
    pub schedule_lag: LatencySummary,
    pub errors: ErrorCounts,
    pub error_examples: Vec<String>,
    pub series_created_by_churn: u64,
    pub first_timestamp_ms: i64,
    pub last_timestamp_ms: i64,
    pub next_round: u64,
    pub stopped_by: String,
    pub generator_cpu_s: f64,
    pub generator_cpu_s_per_million_samples: f64,
}

/// One series as the encoder keeps it: labels already in protobuf form.
struct Slot {
    labels: Vec<u8>,
    seed: u64,
    group: u64,
    model: Model,
}

struct ShardTarget {
    target: u32,
    generation: u32,
    limit: usize,
    slots: Range<usize>,
}

struct Batch {
    tenant: Option<Arc<str>>,
    slots: Range<usize>,
}

/// One shard's series and request layout.
struct Shard {
    seed: u64,
    slots: Vec<Slot>,
    targets: Vec<ShardTarget>,
    batches: Vec<Batch>,
    churn_acc: f64,
    churn_next: usize,
}

/// A built request.
struct Request {
    tenant: Option<Arc<str>>,
    body: Bytes,
    samples: u64,
    /// Series replaced by churn at the start of this round (carried by the
    /// round's first request, counted when it is sent).
    churned: u64,
    round: u64,
    timestamp: i64,
    send_at: Option<Instant>,
    /// With --rate: when to send, counted from the start of sending.
    send_after: Option<Duration>,
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// Protobuf `Label` fields (field 1 of `TimeSeries`) for sorted labels.
fn encode_labels(labels: &[(String, String)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(labels.iter().map(|(n, v)| n.len() + v.len() + 6).sum());
    for (name, value) in labels {
        let mut body_len = 0;
        if !name.is_empty() {
            body_len += 1 + varint_len(name.len() as u64) + name.len();
        }
        if !value.is_empty() {
            body_len += 1 + varint_len(value.len() as u64) + value.len();
        }
        out.push(0x0a);
        put_varint(&mut out, body_len as u64);
        if !name.is_empty() {
            out.push(0x0a);
            put_varint(&mut out, name.len() as u64);
            out.extend_from_slice(name.as_bytes());
        }
        if !value.is_empty() {
            out.push(0x12);
            put_varint(&mut out, value.len() as u64);
            out.extend_from_slice(value.as_bytes());
        }
    }
    out
}

/// Appends one `timeseries` entry with pre-encoded labels and one sample.
#[inline]
fn encode_series(out: &mut Vec<u8>, labels: &[u8], value: f64, timestamp: i64) {
    let has_value = value.to_bits() != 0;
    let has_ts = timestamp != 0;
    let sample_len =
        usize::from(has_value) * 9 + usize::from(has_ts) * (1 + varint_len(timestamp as u64));
    let series_len = labels.len() + 1 + varint_len(sample_len as u64) + sample_len;
    out.push(0x0a);
    put_varint(out, series_len as u64);
    out.extend_from_slice(labels);
    out.push(0x12);
    put_varint(out, sample_len as u64);
    if has_value {
        out.push(0x09);
        out.extend_from_slice(&value.to_le_bytes());
    }
    if has_ts {
        out.push(0x10);
        put_varint(out, timestamp as u64);
    }
}

fn tenant_name(args: &WriteArgs, target: usize) -> Option<Arc<str>> {
    if let Some(t) = &args.tenant {
        return Some(Arc::from(t.as_str()));
    }
    if args.tenants == 0 {
        return None;
    }
    Some(Arc::from(
        format!("{}{}", args.tenant_prefix, target % args.tenants).as_str(),
    ))
}

impl Shard {
    fn build(args: &WriteArgs, shard: usize) -> Shard {
        let total_targets = model::targets_for(args.series);
        let mut targets: Vec<(Option<Arc<str>>, u32, usize)> = (shard..total_targets)
            .step_by(args.concurrency)
            .map(|t| {
                let limit = SERIES_PER_TARGET.min(args.series - t * SERIES_PER_TARGET);
                (tenant_name(args, t), t as u32, limit)
            })
            .collect();
        targets.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
        let mut s = Shard {
            seed: args.seed,
            slots: Vec::new(),
            targets: Vec::new(),
            batches: Vec::new(),
            churn_acc: 0.0,
            churn_next: 0,
        };
        let batch_size = args.batch_size.max(1);
        for (tenant, target, limit) in targets {
            let start = s.slots.len();
            for def in model::target_series(args.seed, target, 0, limit) {
                s.slots.push(Slot {
                    labels: encode_labels(&def.labels),
                    seed: def.seed,
                    group: def.group,
                    model: def.model,
                });
            }
            let end = s.slots.len();
            s.targets.push(ShardTarget {
                target,
                generation: 0,
                limit,
                slots: start..end,
            });
            // Extend the open batch, cutting at the batch size and wherever
            // the tenant changes.
            let mut pos = start;
            while pos < end {
                let open = match s.batches.last_mut() {
                    Some(b) if b.tenant == tenant && b.slots.len() < batch_size => b,
                    _ => {
                        s.batches.push(Batch {
                            tenant: tenant.clone(),
                            slots: pos..pos,
                        });
                        s.batches.last_mut().expect("just pushed")
                    }
                };
                let take = (batch_size - open.slots.len()).min(end - pos);
                open.slots.end += take;
                pos += take;
            }
        }
        s
    }

    /// Replaces `count` targets (oldest replacement first) with new ones.
    fn churn(&mut self, fraction_of_targets: f64) -> u64 {
        if self.targets.is_empty() || fraction_of_targets <= 0.0 {
            return 0;
        }
        self.churn_acc += fraction_of_targets * self.targets.len() as f64;
        let mut created = 0;
        while self.churn_acc >= 1.0 {
            self.churn_acc -= 1.0;
            let t = &mut self.targets[self.churn_next];
            t.generation += 1;
            let defs = model::target_series(self.seed, t.target, t.generation, t.limit);
            for (slot, def) in self.slots[t.slots.clone()].iter_mut().zip(defs) {
                *slot = Slot {
                    labels: encode_labels(&def.labels),
                    seed: def.seed,
                    group: def.group,
                    model: def.model,
                };
                created += 1;
            }
            self.churn_next = (self.churn_next + 1) % self.targets.len();
        }
        created
    }

    fn encode(
        &self,
        batch: &Batch,
        round: u64,
        timestamp: i64,
        raw: &mut Vec<u8>,
        snappy: &mut snap::raw::Encoder,
    ) -> Bytes {
        raw.clear();
        for slot in &self.slots[batch.slots.clone()] {
            let v = slot.model.value(slot.seed, slot.group, round);
            encode_series(raw, &slot.labels, v, timestamp);
        }
        let body = snappy
            .compress_vec(raw)
            .expect("remote write request below snappy's 4 GiB limit");
        Bytes::from(body)
    }
}

/// Shared between the encoder threads, the senders and the progress task.
#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    requests_started: AtomicU64,
    samples_accepted: AtomicU64,
    requests: AtomicU64,
    errors: AtomicU64,
    caught_up_with_now: AtomicBool,
    churned_series: AtomicU64,
}

/// How the encoder threads time their rounds.
#[derive(Clone, Copy)]
struct Timing {
    max_rate: bool,
    /// With --rate: the period of one round.
    pace: Option<Duration>,
    interval_ms: i64,
    /// Timestamp of round `start_round` (max-rate) or of the first round
    /// (real time).
    t0_ms: i64,
    t0: Instant,
    start_round: u64,
    rounds: Option<u64>,
    churn_fraction: f64,
}

/// `phase` (0..1): where in each slot between two of its requests a paced
/// shard sends (shard k of n at k/n), so shards do not send in lockstep.
fn run_encoder(
    mut shard: Shard,
    phase: f64,
    timing: Timing,
    tx: mpsc::Sender<Request>,
    shared: Arc<Shared>,
    done: Arc<AtomicBool>,
) {
    let mut raw = Vec::with_capacity(1 << 20);
    let mut snappy = snap::raw::Encoder::new();
    let nbatches = shard.batches.len().max(1);
    let mut r = 0u64;
    'rounds: loop {
        if timing.rounds.is_some_and(|max| r >= max) || shared.stop.load(Ordering::Relaxed) {
            break;
        }
        let global_round = timing.start_round + r;
        let mut churned = if r > 0 {
            shard.churn(timing.churn_fraction)
        } else {
            0
        };
        let synthetic = timing.max_rate || timing.pace.is_some();
        let round_ts = if synthetic {
            timing.t0_ms + global_round as i64 * timing.interval_ms
        } else {
            timing.t0_ms + r as i64 * timing.interval_ms
        };
        if synthetic && round_ts > now_ms() {
            shared.caught_up_with_now.store(true, Ordering::Relaxed);
            break;
        }
        for (i, batch) in shard.batches.iter().enumerate() {
            // In real time, spread a shard's requests over the interval, as
            // scrapes of different targets are.
            let mut send_after = None;
            let (timestamp, send_at) = if let Some(period) = timing.pace {
                let round_start = period.as_secs_f64() * r as f64;
                let offset = period.as_secs_f64() * (i as f64 + phase) / nbatches as f64;
                send_after = Some(Duration::from_secs_f64(round_start + offset));
                (round_ts, None)
            } else if timing.max_rate {
                (round_ts, None)
            } else {
                let offset_ms = timing.interval_ms * i as i64 / nbatches as i64;
                let at = timing.t0
                    + Duration::from_millis((r as i64 * timing.interval_ms + offset_ms) as u64);
                (round_ts + offset_ms, Some(at))
            };
            let body = shard.encode(batch, global_round, timestamp, &mut raw, &mut snappy);
            let req = Request {
                tenant: batch.tenant.clone(),
                body,
                samples: batch.slots.len() as u64,
                churned: std::mem::take(&mut churned),
                round: global_round,
                timestamp,
                send_at,
                send_after,
            };
            if tx.blocking_send(req).is_err() {
                break 'rounds;
            }
        }
        r += 1;
    }
    done.store(true, Ordering::Release);
}

#[derive(Default)]
struct SenderStats {
    requests: u64,
    requests_ok: u64,
    samples_sent: u64,
    samples_accepted: u64,
    bytes_sent: u64,
    latencies: Latencies,
    lag: Latencies,
    errors: ErrorCounts,
    error_examples: Vec<String>,
    first_ts: Option<i64>,
    last_ts: i64,
    max_round: Option<u64>,
    hit_max_requests: bool,
    hit_deadline: bool,
}

struct SendConfig {
    client: reqwest::Client,
    url: String,
    start: Instant,
    deadline: Instant,
    max_requests: u64,
    dry_run: bool,
}

async fn run_sender(
    mut rx: mpsc::Receiver<Request>,
    cfg: Arc<SendConfig>,
    shared: Arc<Shared>,
) -> SenderStats {
    let mut st = SenderStats::default();
    loop {
        let req = tokio::select! {
            r = rx.recv() => match r { Some(r) => r, None => break },
            _ = tokio::time::sleep_until(cfg.deadline.into()) => {
                st.hit_deadline = true;
                break;
            }
        };
        if let Some(at) = req
            .send_at
            .or_else(|| req.send_after.map(|d| cfg.start + d))
        {
            if at >= cfg.deadline {
                st.hit_deadline = true;
                break;
            }
            tokio::time::sleep_until(at.into()).await;
            st.lag.record(Instant::now().saturating_duration_since(at));
        }
        if Instant::now() >= cfg.deadline {
            st.hit_deadline = true;
            break;
        }
        if shared.stop.load(Ordering::Relaxed) {
            break;
        }
        if shared.requests_started.fetch_add(1, Ordering::Relaxed) >= cfg.max_requests {
            st.hit_max_requests = true;
            break;
        }
        st.requests += 1;
        st.samples_sent += req.samples;
        shared
            .churned_series
            .fetch_add(req.churned, Ordering::Relaxed);
        st.bytes_sent += req.body.len() as u64;
        st.max_round = Some(st.max_round.map_or(req.round, |m| m.max(req.round)));
        let started = Instant::now();
        let outcome = if cfg.dry_run {
            Ok(())
        } else {
            send_one(&cfg, &req).await
        };
        st.latencies.record(started.elapsed());
        shared.requests.fetch_add(1, Ordering::Relaxed);
        match outcome {
            Ok(()) => {
                st.requests_ok += 1;
                st.samples_accepted += req.samples;
                shared
                    .samples_accepted
                    .fetch_add(req.samples, Ordering::Relaxed);
                st.first_ts = Some(st.first_ts.map_or(req.timestamp, |f| f.min(req.timestamp)));
                st.last_ts = st.last_ts.max(req.timestamp);
            }
            Err((kind, message)) => {
                shared.errors.fetch_add(1, Ordering::Relaxed);
                *st.errors.entry(kind.clone()).or_default() += 1;
                if st.error_examples.len() < 3 {
                    st.error_examples.push(format!("{kind}: {message}"));
                }
            }
        }
    }
    st
}

async fn send_one(cfg: &SendConfig, req: &Request) -> Result<(), (String, String)> {
    let mut rb = cfg
        .client
        .post(&cfg.url)
        .header("Content-Encoding", "snappy")
        .header("Content-Type", "application/x-protobuf")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        .body(req.body.clone());
    if let Some(t) = &req.tenant {
        rb = rb.header("X-Scope-OrgID", t.as_ref());
    }
    let resp = rb
        .send()
        .await
        .map_err(|e| (transport_error_kind(&e), e.to_string()))?;
    let status = resp.status();
    let body = resp
        .bytes()
        .await
        .map_err(|e| (transport_error_kind(&e), e.to_string()))?;
    if status.is_success() {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&body[..body.len().min(300)])
        .trim()
        .to_string();
    Err((format!("http_{}", status.as_u16()), text))
}

pub async fn run(args: WriteArgs) -> anyhow::Result<WriteReport> {
    anyhow::ensure!(args.series > 0, "--series must be positive");
    anyhow::ensure!(args.concurrency > 0, "--concurrency must be positive");
    anyhow::ensure!(
        args.interval >= Duration::from_millis(1),
        "--interval must be at least 1ms"
    );
    if let Some(rate) = args.rate {
        anyhow::ensure!(
            rate.is_finite() && rate > 0.0,
            "--rate must be a positive number of samples per second"
        );
    }
    let mut url = args.url.clone();
    if args.null_sink && !args.dry_run {
        let (addr, _) = crate::sink::spawn("127.0.0.1:0".parse()?, false).await?;
        url = format!("http://{addr}/api/v1/write");
    }
    let targets = model::targets_for(args.series);
    let shards_n = args.concurrency.min(targets);

    let build_started = Instant::now();
    let mut shards = Vec::with_capacity(shards_n);
    {
        let args = Arc::new(WriteArgs {
            concurrency: shards_n,
            ..args.clone()
        });
        let handles: Vec<_> = (0..shards_n)
            .map(|i| {
                let args = args.clone();
                tokio::task::spawn_blocking(move || Shard::build(&args, i))
            })
            .collect();
        for h in handles {
            shards.push(h.await.context("building series")?);
        }
    }
    eprintln!(
        "write: {} series in {} targets, {} shards, {} requests per round, labels built in {:.1} s",
        args.series,
        targets,
        shards_n,
        shards.iter().map(|s| s.batches.len()).sum::<usize>(),
        build_started.elapsed().as_secs_f64()
    );

    let shared = Arc::new(Shared::default());
    let pace = args.rate.map(|rate| round_period(args.series, rate));
    let synthetic = args.max_rate || pace.is_some();
    let timing = Timing {
        max_rate: args.max_rate,
        pace,
        interval_ms: args.interval.as_millis() as i64,
        t0_ms: if synthetic { args.start_time } else { now_ms() },
        t0: Instant::now(),
        start_round: args.start_round,
        rounds: args.rounds,
        churn_fraction: args.churn / 100.0,
    };
    let mut receivers = Vec::new();
    let mut encoders = Vec::new();
    let mut done_flags = Vec::new();
    for (k, shard) in shards.into_iter().enumerate() {
        let phase = k as f64 / shards_n as f64;
        let depth = (shard.batches.len() * args.prebuild_rounds.max(1)).max(1);
        let (tx, rx) = mpsc::channel(depth);
        let done = Arc::new(AtomicBool::new(false));
        let shared = shared.clone();
        let d = done.clone();
        encoders.push(
            std::thread::Builder::new()
                .name("loadgen-encoder".to_string())
                .spawn(move || run_encoder(shard, phase, timing, tx, shared, d))?,
        );
        receivers.push(rx);
        done_flags.push(done);
    }

    // With synthetic time, fill the queues before the clock starts.
    let prebuild_started = Instant::now();
    if synthetic {
        let limit = Instant::now() + Duration::from_secs(600);
        while Instant::now() < limit {
            let ready = receivers
                .iter()
                .zip(&done_flags)
                .all(|(rx, done)| done.load(Ordering::Acquire) || rx.len() >= rx.max_capacity());
            if ready {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let prebuild_s = prebuild_started.elapsed().as_secs_f64();

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(shards_n * 2)
        .tcp_nodelay(true)
        .timeout(args.timeout)
        .user_agent(concat!("strata-loadgen/", env!("CARGO_PKG_VERSION")))
        .build()?;
    let start = Instant::now();
    let cpu_start = process_cpu_time();
    let cfg = Arc::new(SendConfig {
        client,
        url: url.clone(),
        start,
        deadline: start + args.duration,
        max_requests: args.max_requests,
        dry_run: args.dry_run,
    });
    let senders: Vec<_> = receivers
        .into_iter()
        .map(|rx| tokio::spawn(run_sender(rx, cfg.clone(), shared.clone())))
        .collect();
    let progress = spawn_progress(args.progress, shared.clone(), start);

    let mut total = SenderStats::default();
    for s in senders {
        let st = s.await?;
        total.requests += st.requests;
        total.requests_ok += st.requests_ok;
        total.samples_sent += st.samples_sent;
        total.samples_accepted += st.samples_accepted;
        total.bytes_sent += st.bytes_sent;
        total.latencies.merge(st.latencies);
        total.lag.merge(st.lag);
        merge_errors(&mut total.errors, st.errors);
        for e in st.error_examples {
            if total.error_examples.len() < 5 {
                total.error_examples.push(e);
            }
        }
        if let Some(f) = st.first_ts {
            total.first_ts = Some(total.first_ts.map_or(f, |t| t.min(f)));
        }
        total.last_ts = total.last_ts.max(st.last_ts);
        if let Some(m) = st.max_round {
            total.max_round = Some(total.max_round.map_or(m, |t| t.max(m)));
        }
        total.hit_max_requests |= st.hit_max_requests;
        total.hit_deadline |= st.hit_deadline;
    }
    let elapsed = start.elapsed();
    let cpu = process_cpu_time().saturating_sub(cpu_start);
    shared.stop.store(true, Ordering::Relaxed);
    if let Some(p) = progress {
        p.abort();
    }
    for e in encoders {
        let _ = e.join();
    }

    let stopped_by = if shared.caught_up_with_now.load(Ordering::Relaxed) {
        "caught_up_with_now"
    } else if total.hit_max_requests {
        "max_requests"
    } else if total.hit_deadline {
        "duration"
    } else {
        "rounds"
    };
    let elapsed_s = elapsed.as_secs_f64().max(1e-9);
    Ok(WriteReport {
        url: if args.dry_run {
            "dry-run".to_string()
        } else {
            url
        },
        mode: if args.max_rate {
            "max-rate"
        } else if pace.is_some() {
            "fixed-rate"
        } else {
            "real-time"
        }
        .to_string(),
        series: args.series,
        targets,
        batch_size: args.batch_size,
        concurrency: shards_n,
        tenants: if args.tenant.is_some() {
            1
        } else {
            args.tenants
        },
        churn_percent: args.churn,
        interval_ms: args.interval.as_millis() as u64,
        target_samples_per_s: args.rate.unwrap_or(0.0),
        elapsed_s,
        prebuild_s,
        requests: total.requests,
        requests_ok: total.requests_ok,
        samples_sent: total.samples_sent,
        samples_accepted: total.samples_accepted,
        accepted_samples_per_s: total.samples_accepted as f64 / elapsed_s,
        bytes_sent: total.bytes_sent,
        latency: total.latencies.summary(),
        schedule_lag: total.lag.summary(),
        errors: total.errors,
        error_examples: total.error_examples,
        series_created_by_churn: shared.churned_series.load(Ordering::Relaxed),
        first_timestamp_ms: total.first_ts.unwrap_or(0),
        last_timestamp_ms: total.last_ts,
        next_round: total.max_round.map_or(args.start_round, |m| m + 1),
        stopped_by: stopped_by.to_string(),
        generator_cpu_s: cpu.as_secs_f64(),
        generator_cpu_s_per_million_samples: if total.samples_sent > 0 {
            cpu.as_secs_f64() / (total.samples_sent as f64 / 1e6)
        } else {
            0.0
        },
    })
}

/// The period of one round of `series` samples at `rate` samples/s.
pub fn round_period(series: usize, rate: f64) -> Duration {
    Duration::from_secs_f64(series as f64 / rate)
}

fn spawn_progress(
    every: Duration,
    shared: Arc<Shared>,
    start: Instant,
) -> Option<tokio::task::JoinHandle<()>> {
    if every.is_zero() {
        return None;
    }
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        let mut last = 0u64;
        loop {
            tick.tick().await;
            let acc = shared.samples_accepted.load(Ordering::Relaxed);
            eprintln!(
                "write: {:>5.0} s  {} samples/s accepted  {} requests  {} errors",
                start.elapsed().as_secs_f64(),
                human((acc - last) as f64 / every.as_secs_f64()),
                shared.requests.load(Ordering::Relaxed),
                shared.errors.load(Ordering::Relaxed)
            );
            last = acc;
        }
    }))
}

/// Prints a report for people.
pub fn print_human(r: &WriteReport) {
    println!("write {} -> {}", r.mode, r.url);
    println!(
        "  series {} ({} targets), batch {}, concurrency {}, tenants {}, churn {} %/interval",
        r.series, r.targets, r.batch_size, r.concurrency, r.tenants, r.churn_percent
    );
    println!(
        "  {:.1} s (after {:.1} s pre-building): {} requests, {} ok",
        r.elapsed_s, r.prebuild_s, r.requests, r.requests_ok
    );
    println!(
        "  samples: {} sent, {} accepted = {} samples/s accepted",
        r.samples_sent,
        r.samples_accepted,
        human(r.accepted_samples_per_s)
    );
    if r.target_samples_per_s > 0.0 {
        println!(
            "  fixed rate asked for: {} samples/s",
            human(r.target_samples_per_s)
        );
    }
    println!("  latency: {}", r.latency);
    if r.schedule_lag.count > 0 {
        println!("  behind schedule: {}", r.schedule_lag);
    }
    if r.errors.is_empty() {
        println!("  errors: none");
    } else {
        println!("  errors: {:?}", r.errors);
        for e in &r.error_examples {
            println!("    e.g. {e}");
        }
    }
    println!(
        "  timestamps {}..{}; next round {}; stopped by {}; {} series created by churn",
        r.first_timestamp_ms,
        r.last_timestamp_ms,
        r.next_round,
        r.stopped_by,
        r.series_created_by_churn
    );
    println!(
        "  generator CPU: {:.2} s ({:.3} s per million samples sent)",
        r.generator_cpu_s, r.generator_cpu_s_per_million_samples
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use strata_remote_write::{decompress, WriteRequestRef};

    #[derive(Parser)]
    struct Wrap {
        #[command(flatten)]
        args: WriteArgs,
    }

    fn args(extra: &[&str]) -> WriteArgs {
        let mut v = vec!["x"];
        v.extend_from_slice(extra);
        Wrap::parse_from(v).args
    }

    #[test]
    fn encoded_requests_decode_to_the_model() {
        let a = args(&[
            "--series",
            "1000",
            "--batch-size",
            "300",
            "--concurrency",
            "2",
        ]);
        let shard = Shard::build(&a, 0);
        let mut raw = Vec::new();
        let mut enc = snap::raw::Encoder::new();
        let mut total = 0;
        for b in &shard.batches {
            assert!(b.slots.len() <= 300);
            let body = shard.encode(b, 7, 1_700_000_000_000, &mut raw, &mut enc);
            let plain = decompress(&body, 1 << 26).unwrap();
            let req = WriteRequestRef::decode(&plain).unwrap();
            assert_eq!(req.series_count(), b.slots.len());
            for (ts, slot) in req.series().zip(&shard.slots[b.slots.clone()]) {
                assert_eq!(ts.samples().len(), 1);
                assert_eq!(ts.samples()[0].timestamp, 1_700_000_000_000);
                assert_eq!(
                    ts.samples()[0].value.to_bits(),
                    slot.model.value(slot.seed, slot.group, 7).to_bits()
                );
                let names: Vec<&str> = ts.labels().iter().map(|l| l.name).collect();
                assert!(names.windows(2).all(|w| w[0] < w[1]));
                assert_eq!(names[0], "__name__");
            }
            total += req.series_count();
        }
        assert_eq!(total, shard.slots.len());
        let other = Shard::build(&a, 1);
        assert_eq!(shard.slots.len() + other.slots.len(), 1000);
    }

    #[test]
    fn batches_never_mix_tenants() {
        let a = args(&["--series", "5000", "--tenants", "3", "--concurrency", "2"]);
        let shard = Shard::build(&a, 1);
        let mut seen = std::collections::HashSet::new();
        for b in &shard.batches {
            assert!(b.tenant.is_some());
            seen.insert(b.tenant.clone());
        }
        assert_eq!(seen.len(), 3);
    }

    #[test]
    fn churn_replaces_whole_targets() {
        let a = args(&["--series", "2650", "--concurrency", "1"]);
        let mut shard = Shard::build(&a, 0);
        let before: Vec<Vec<u8>> = shard.slots.iter().map(|s| s.labels.clone()).collect();
        // 10 % of 10 targets = one target per round.
        assert_eq!(shard.churn(0.10), SERIES_PER_TARGET as u64);
        let changed = shard
            .slots
            .iter()
            .zip(&before)
            .filter(|(s, b)| &s.labels != *b)
            .count();
        assert_eq!(changed, SERIES_PER_TARGET);
        assert_eq!(shard.churn(0.05), 0);
        assert_eq!(shard.churn(0.05), SERIES_PER_TARGET as u64);
    }

    #[tokio::test]
    async fn fixed_rate_paces_rounds() {
        // 10 targets, one request per target, 4 rounds at one round per
        // 100 ms: the last request is due at 390 ms.
        let a = args(&[
            "--series",
            "2650",
            "--batch-size",
            "265",
            "--concurrency",
            "1",
            "--rate",
            "26500",
            "--rounds",
            "4",
            "--start-time",
            "now-1h",
            "--start-round",
            "10",
            "--dry-run",
            "--progress",
            "0",
        ]);
        let r = run(a).await.unwrap();
        assert_eq!(r.mode, "fixed-rate");
        assert_eq!(r.requests, 40);
        assert_eq!(r.samples_accepted, 4 * 2650);
        assert_eq!(r.next_round, 14);
        assert_eq!(r.stopped_by, "rounds");
        assert!(r.elapsed_s >= 0.38, "{}", r.elapsed_s);
        assert_eq!(r.schedule_lag.count, 40);
        assert_eq!(
            r.last_timestamp_ms - r.first_timestamp_ms,
            3 * 15_000,
            "synthetic timestamps, one interval per round"
        );
    }

    #[test]
    fn varints() {
        for v in [0u64, 1, 127, 128, 16383, 16384, u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(out.len(), varint_len(v), "{v}");
        }
    }
}
