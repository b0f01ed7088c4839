//! Flushing: what is written, when, by which replica; retain and removal;
//! backpressure. The sink is an in-memory fake (the store is tested on its
//! own and end to end).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use strata_ingester::{
    ChunkSink, FlushBatch, FlushError, FlushRank, Ingester, IngesterConfig, IngesterError,
    IngesterMetrics,
};
use strata_model::{MatchOp, Matcher};
use strata_remote_write::{encode_write_request, OwnedTimeSeries, Sample};

const WINDOW: i64 = 60_000;

#[derive(Default)]
struct MemorySink {
    batches: Mutex<Vec<FlushBatch>>,
    /// (tenant, window start, fingerprint) → digest stored.
    stored: Mutex<HashMap<(String, i64, u64), u32>>,
    fail: AtomicBool,
}

#[async_trait::async_trait]
impl ChunkSink for MemorySink {
    async fn write(&self, batch: &FlushBatch) -> Result<(), FlushError> {
        if self.fail.load(Ordering::Relaxed) {
            return Err(FlushError("store unavailable".into()));
        }
        let mut stored = self.stored.lock();
        for s in &batch.series {
            stored.insert(
                (batch.tenant.clone(), batch.window_start_ms, s.fingerprint),
                strata_ingester::flush::chunks_digest(&s.chunks),
            );
        }
        self.batches.lock().push(batch.clone());
        Ok(())
    }

    async fn stored(
        &self,
        tenant: &str,
        from_ms: i64,
        _to_ms: i64,
        series: &[(u64, u32)],
    ) -> Result<HashSet<u64>, FlushError> {
        let stored = self.stored.lock();
        Ok(series
            .iter()
            .filter(|(fp, digest)| stored.get(&(tenant.to_string(), from_ms, *fp)) == Some(digest))
            .map(|(fp, _)| *fp)
            .collect())
    }
}

impl MemorySink {
    fn chunks_written(&self) -> usize {
        self.batches
            .lock()
            .iter()
            .flat_map(|b| b.series.iter())
            .map(|s| s.chunks.len())
            .sum()
    }
}

struct FixedRank(usize);

impl FlushRank for FixedRank {
    fn rank(&self, _tenant: &str, _labels: &[(&str, &str)]) -> usize {
        self.0
    }
}

fn config() -> IngesterConfig {
    IngesterConfig {
        max_chunk_age: Duration::from_millis(WINDOW as u64),
        flush_delay: Duration::from_secs(5),
        flush_takeover_delay: Duration::from_secs(60),
        retain_period: Duration::from_secs(30),
        series_idle_timeout: Duration::from_secs(120),
        ..IngesterConfig::default()
    }
}

/// A wall clock the test sets.
#[derive(Clone, Default)]
struct Clock(Arc<AtomicI64>);

impl Clock {
    fn at(start: i64) -> Clock {
        let c = Clock::default();
        c.set(start);
        c
    }

    fn set(&self, ms: i64) {
        self.0.store(ms, Ordering::Relaxed);
    }
}

fn ingester(sink: Arc<MemorySink>, rank: usize, config: IngesterConfig) -> Arc<Ingester> {
    Arc::new(
        Ingester::new(config, IngesterMetrics::default())
            .with_flushing(sink, Arc::new(FixedRank(rank))),
    )
}

fn ingester_at(
    clock: &Clock,
    sink: Arc<MemorySink>,
    rank: usize,
    config: IngesterConfig,
) -> Arc<Ingester> {
    let c = clock.0.clone();
    Arc::new(
        Ingester::new(config, IngesterMetrics::default())
            .with_flushing(sink, Arc::new(FixedRank(rank)))
            .with_clock(Arc::new(move || c.load(Ordering::Relaxed))),
    )
}

fn push(ing: &Ingester, name: &str, samples: &[(i64, f64)]) -> Result<(), IngesterError> {
    let series = OwnedTimeSeries::new(
        [("__name__".to_string(), name.to_string())],
        samples
            .iter()
            .map(|&(timestamp, value)| Sample { timestamp, value }),
    );
    ing.push("t", &encode_write_request(&[series], &[]))
        .map(|_| ())
}

fn in_memory(ing: &Ingester, name: &str) -> usize {
    let m = Matcher::new(MatchOp::Equal, "__name__", name).unwrap();
    ing.query("t", &[m], i64::MIN, i64::MAX)
        .iter()
        .map(|s| s.chunks.len())
        .sum()
}

/// Unix ms at the start of a window, well in the past of nothing.
const T0: i64 = 1_700_000_040_000 - 1_700_000_040_000 % WINDOW;

#[tokio::test]
async fn flushes_finished_windows_then_drops_after_retain_then_removes_idle_series() {
    let sink = Arc::new(MemorySink::default());
    // Samples arrive 2 s after the first window ended (wall clock).
    let clock = Clock::at(T0 + WINDOW + 2_000);
    let ing = ingester_at(&clock, sink.clone(), 0, config());
    let samples: Vec<(i64, f64)> = (0..8).map(|i| (T0 + i * 15_000, i as f64)).collect();
    push(&ing, "a", &samples).unwrap();
    // Two windows: [T0, T0+60s) with 4 samples, the next one open.
    let o = ing.flush_cycle(T0 + WINDOW + 4_000, false).await;
    assert_eq!(o.chunks_flushed, 0, "flush_delay not over: {o:?}");
    let o = ing.flush_cycle(T0 + WINDOW + 5_000, false).await;
    assert_eq!(o.chunks_flushed, 1, "{o:?}");
    assert_eq!(sink.batches.lock()[0].window_start_ms, T0);
    assert_eq!(in_memory(&ing, "a"), 2, "flushed chunk retained");
    // The first chunk is dropped once the retain period is over.
    let o = ing.flush_cycle(T0 + WINDOW + 5_000 + 29_999, false).await;
    assert_eq!(o.chunks_dropped, 0, "{o:?}");
    let o = ing.flush_cycle(T0 + WINDOW + 5_000 + 30_000, false).await;
    assert_eq!(o.chunks_dropped, 1, "{o:?}");
    assert_eq!(in_memory(&ing, "a"), 1);
    // The second window's head is cut once the window is over and flushed
    // after the delay.
    let o = ing.flush_cycle(T0 + 2 * WINDOW + 5_000, false).await;
    assert_eq!((o.chunks_flushed, o.chunks_dropped), (1, 0), "{o:?}");
    assert_eq!(sink.chunks_written(), 2);
    assert_eq!(ing.unflushed_bytes(), 0);
    // Retained, then dropped; the series got its last sample at
    // T0 + 62 s, so it is removed 120 s (the idle timeout) after that.
    let o = ing.flush_cycle(T0 + 2 * WINDOW + 35_000, false).await;
    assert_eq!((o.chunks_dropped, o.series_removed), (1, 0), "{o:?}");
    let o = ing.flush_cycle(T0 + WINDOW + 2_000 + 120_000, false).await;
    assert_eq!(o.series_removed, 1, "{o:?}");
    assert_eq!(ing.series_count(), 0);
    assert_eq!(ing.stats("t").series, 0);
    // A new sample creates it again.
    push(&ing, "a", &[(T0 + 10 * WINDOW, 1.0)]).unwrap();
    assert_eq!((ing.series_count(), in_memory(&ing, "a")), (1, 1));
}

#[tokio::test]
async fn later_replicas_skip_what_the_first_stored_and_write_what_differs() {
    let sink = Arc::new(MemorySink::default());
    let clock = Clock::at(T0 + WINDOW + 1_000);
    let first = ingester_at(&clock, sink.clone(), 0, config());
    let second = ingester_at(&clock, sink.clone(), 1, config());
    let samples: Vec<(i64, f64)> = (0..4).map(|i| (T0 + i * 15_000, i as f64)).collect();
    for ing in [&first, &second] {
        push(ing, "same", &samples).unwrap();
        push(ing, "differs", &samples).unwrap();
    }
    // The second replica missed a sample of "differs" in the first replica.
    push(&first, "differs", &[(T0 + 59_000, 9.0)]).unwrap();
    let after = T0 + WINDOW + 5_000;
    // Not the second's turn yet.
    assert_eq!(second.flush_cycle(after, false).await.chunks_flushed, 0);
    assert_eq!(first.flush_cycle(after, false).await.chunks_flushed, 2);
    let o = second.flush_cycle(after + 60_000, false).await;
    assert_eq!((o.chunks_deduped, o.chunks_flushed), (1, 1), "{o:?}");
    assert_eq!(sink.chunks_written(), 3);
    assert_eq!(second.unflushed_bytes(), 0);

    // When the first replica never flushed (it died), the second takes over.
    let sink = Arc::new(MemorySink::default());
    let second = ingester_at(&clock, sink.clone(), 2, config());
    push(&second, "orphan", &samples).unwrap();
    // Its head is closed by the first cycle (the window is over); its turn
    // comes two take-over delays later.
    assert_eq!(second.flush_cycle(after, false).await.chunks_flushed, 0);
    assert_eq!(
        second
            .flush_cycle(after + 119_999, false)
            .await
            .chunks_flushed,
        0
    );
    assert_eq!(
        second
            .flush_cycle(after + 120_000, false)
            .await
            .chunks_flushed,
        1
    );
}

#[tokio::test]
async fn turns_count_from_when_old_data_arrived_not_from_its_window() {
    // Two hours of old data pushed now: every window ended long ago, yet
    // the second replica still waits its turn after the chunks closed.
    let now = T0 + 200 * WINDOW;
    let clock = Clock::at(now);
    let sink = Arc::new(MemorySink::default());
    let first = ingester_at(&clock, sink.clone(), 0, config());
    let second = ingester_at(&clock, sink.clone(), 1, config());
    let samples: Vec<(i64, f64)> = (0..40).map(|i| (T0 + i * 15_000, i as f64)).collect();
    for ing in [&first, &second] {
        push(ing, "old", &samples).unwrap();
    }
    assert_eq!(
        second.flush_cycle(now + 1_000, false).await.chunks_flushed,
        0
    );
    let written = first.flush_cycle(now + 1_000, false).await.chunks_flushed;
    assert!(written >= 9, "{written}");
    let o = second.flush_cycle(now + 1_000 + 60_000, false).await;
    assert_eq!((o.chunks_deduped, o.chunks_flushed), (written, 0), "{o:?}");
}

#[tokio::test]
async fn failed_flushes_keep_chunks_and_backpressure_refuses_pushes() {
    let sink = Arc::new(MemorySink::default());
    let ing = ingester(
        sink.clone(),
        0,
        IngesterConfig {
            max_unflushed_bytes: 1,
            ..config()
        },
    );
    sink.fail.store(true, Ordering::Relaxed);
    push(&ing, "a", &[(T0, 1.0), (T0 + WINDOW, 2.0)]).unwrap();
    assert!(ing.unflushed_bytes() > 1);
    let err = push(&ing, "a", &[(T0 + WINDOW + 1, 3.0)]).unwrap_err();
    assert!(matches!(err, IngesterError::FlushBacklog { .. }), "{err}");
    let status = tonic::Status::from(err);
    assert_eq!(status.code(), tonic::Code::Unavailable);
    let o = ing.flush_cycle(T0 + 3 * WINDOW, false).await;
    assert!(o.batches_failed > 0 && o.first_error.is_some(), "{o:?}");
    assert_eq!(in_memory(&ing, "a"), 2, "nothing dropped");
    // The store is back: everything is flushed and pushes are accepted.
    sink.fail.store(false, Ordering::Relaxed);
    let left = ing
        .flush_everything(std::time::Instant::now() + Duration::from_secs(5))
        .await;
    assert_eq!(left, 0);
    assert_eq!(sink.chunks_written(), 2);
    push(&ing, "a", &[(T0 + 3 * WINDOW, 4.0)]).unwrap();
}

#[tokio::test]
async fn flushing_everything_includes_open_heads_and_ignores_rank() {
    let sink = Arc::new(MemorySink::default());
    let ing = ingester(sink.clone(), 2, config());
    let now = strata_ingester::unix_now_ms();
    push(&ing, "a", &[(now, 1.0)]).unwrap();
    push(&ing, "b", &[(now - 5 * WINDOW, 1.0), (now, 2.0)]).unwrap();
    let left = ing
        .flush_everything(std::time::Instant::now() + Duration::from_secs(5))
        .await;
    assert_eq!(left, 0);
    assert_eq!(sink.chunks_written(), 3);
    // Flushed chunks stay queryable for the retain period.
    assert_eq!(in_memory(&ing, "b"), 2);
}
