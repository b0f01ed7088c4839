//! A writer for durability tests: pushes with wall-clock timestamps and
//! records, sample by sample, what was acknowledged.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::{get_text, metric_value, now_ms, push, read_ingester, series, write_body, Strata};

/// Samples with a 2xx, series text → (timestamp, value bits).
pub type Samples = BTreeMap<String, BTreeSet<(i64, u64)>>;

/// A writer pushing rounds of `count` series of `metric` (told apart by
/// label `i`), one sample each, timestamped
/// with the wall clock (strictly increasing), until stopped; it records what
/// was acknowledged and counts what was not.
pub struct Writer {
    acked: Arc<Mutex<Samples>>,
    /// Samples acknowledged so far.
    pub acked_count: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
    /// What the last failed push got.
    pub last_failure: Arc<Mutex<String>>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Writer {
    /// Starts pushing to `base` (`/api/v1/push`, default tenant).
    pub fn start(base: String, metric: &'static str, count: usize) -> Writer {
        let acked: Arc<Mutex<Samples>> = Arc::default();
        let acked_count = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(AtomicUsize::new(0));
        let last_failure: Arc<Mutex<String>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let task = {
            let (acked, acked_count, failed, last_failure, stop) = (
                acked.clone(),
                acked_count.clone(),
                failed.clone(),
                last_failure.clone(),
                stop.clone(),
            );
            tokio::spawn(async move {
                let client = reqwest::Client::builder()
                    .timeout(Duration::from_secs(30))
                    .build()
                    .unwrap();
                let mut last_t = 0i64;
                let mut round = 0u64;
                // Bounded: at most 10 minutes' worth of rounds.
                while !stop.load(Ordering::Relaxed) && round < 200_000 {
                    round += 1;
                    let t = now_ms().max(last_t + 1);
                    last_t = t;
                    let batch: Vec<_> = (0..count)
                        .map(|i| {
                            series(
                                &[("__name__", metric), ("i", &i.to_string())],
                                &[(t, (round * 1000 + i as u64) as f64)],
                            )
                        })
                        .collect();
                    match push(&client, &base, None, write_body(&batch)).await {
                        Ok((200, _)) => {
                            let mut acked = acked.lock();
                            for s in &batch {
                                let key =
                                    strata_model::Labels::from_pairs(s.labels.iter().cloned())
                                        .to_string();
                                acked
                                    .entry(key)
                                    .or_default()
                                    .insert((t, s.samples[0].value.to_bits()));
                            }
                            acked_count.fetch_add(count, Ordering::Relaxed);
                        }
                        other => {
                            failed.fetch_add(1, Ordering::Relaxed);
                            *last_failure.lock() = format!("{other:?}");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
        };
        Writer {
            acked,
            acked_count,
            failed,
            last_failure,
            stop,
            task,
        }
    }

    /// Samples acknowledged so far.
    pub fn acked(&self) -> usize {
        self.acked_count.load(Ordering::Relaxed)
    }

    /// Pushes that failed so far.
    pub fn failed(&self) -> usize {
        self.failed.load(Ordering::Relaxed)
    }

    /// Waits until `more` further samples were acknowledged.
    pub async fn wait_for(&self, more: usize, timeout: Duration, what: &str) {
        let target = self.acked() + more;
        let deadline = Instant::now() + timeout;
        while self.acked() < target {
            assert!(
                Instant::now() < deadline,
                "{what}: the writer got {} of {more} samples through in {timeout:?} ({} failed pushes, last: {})",
                more - (target - self.acked()),
                self.failed(),
                self.last_failure.lock()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops it; returns what was acknowledged and how many pushes failed.
    pub async fn stop(self) -> (Samples, usize) {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap();
        let acked = self.acked.lock().clone();
        (acked, self.failed.load(Ordering::Relaxed))
    }
}

/// Acknowledged samples missing from `got`, and how many were acknowledged.
pub fn missing(acked: &Samples, got: &Samples) -> (usize, usize) {
    let mut missing = 0;
    let mut total = 0;
    for (series, samples) in acked {
        total += samples.len();
        let have = got.get(series);
        missing += samples
            .iter()
            .filter(|s| !have.is_some_and(|h| h.contains(s)))
            .count();
    }
    (missing, total)
}

/// What an ingester holds for the default tenant, in the shape of
/// [`Samples`].
pub async fn held_by(ingester: &Strata) -> Samples {
    read_ingester(
        &ingester.grpc_addr(),
        strata_model::DEFAULT_TENANT,
        0,
        i64::MAX,
    )
    .await
    .expect("read the ingester")
    .into_iter()
    .map(|(k, v)| (k, v.into_iter().collect()))
    .collect()
}

/// A metric of a service's `/metrics` page (0 when absent).
pub async fn metric(client: &reqwest::Client, service: &Strata, name: &str) -> f64 {
    let (_, page) = get_text(client, &format!("{}/metrics", service.http()))
        .await
        .expect("metrics page");
    metric_value(&page, name).unwrap_or(0.0)
}
