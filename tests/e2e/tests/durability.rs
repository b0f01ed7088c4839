//! Durability: what a push acknowledged survives a crash of the process
//! that acknowledged it (the write-ahead log), and a damaged log tail does
//! not stop a restart.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use strata_e2e::*;

/// Acknowledged samples: series text → (timestamp, value bits).
type Acked = Arc<Mutex<BTreeMap<String, Vec<(i64, u64)>>>>;

/// Pushes rounds of 40 series, one sample each, until `stop`; records what
/// got a 200. Samples are 1 s apart, starting at `t0`.
async fn writer(base: String, t0: i64, acked: Acked, stop: Arc<AtomicBool>) -> usize {
    let client = reqwest::Client::new();
    let mut round = 0i64;
    let mut failed = 0;
    while !stop.load(Ordering::Relaxed) && round < 100_000 {
        let t = t0 + round * 1000;
        let batch: Vec<_> = (0..40)
            .map(|i| {
                series(
                    &[("__name__", "wal_test"), ("i", &i.to_string())],
                    &[(t, (round * 40 + i) as f64)],
                )
            })
            .collect();
        match push(&client, &base, None, write_body(&batch)).await {
            Ok((200, _)) => {
                let mut acked = acked.lock();
                for s in &batch {
                    let key =
                        strata_model::Labels::from_pairs(s.labels.iter().cloned()).to_string();
                    acked
                        .entry(key)
                        .or_default()
                        .push((t, s.samples[0].value.to_bits()));
                }
                round += 1;
            }
            // The process is gone (killed mid-push): not acknowledged.
            _ => {
                failed += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    failed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_process_sigkill_loses_no_acknowledged_sample() {
    let mut s = start_strata("wal-sigkill", &[]).await;
    let t0 = now_ms() - 3_600_000;
    let acked: Acked = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let task = tokio::spawn(writer(s.http(), t0, acked.clone(), stop.clone()));
    // Kill it while the writer is pushing, after a good number of rounds.
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.lock().values().map(Vec::len).sum::<usize>() < 40 * 300 {
        assert!(
            Instant::now() < deadline,
            "the writer got too few pushes through"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    s.proc.kill();
    stop.store(true, Ordering::Relaxed);
    task.await.unwrap();
    let acked = acked.lock().clone();
    let total: usize = acked.values().map(Vec::len).sum();

    // Garbage at the end of the log, as a crash in the middle of a write of
    // a bigger record could leave: the restart cuts it off.
    let wal_dir = s.data_dir.path().join("wal");
    let last = strata_wal::list_segments(&wal_dir)
        .unwrap()
        .into_iter()
        .last()
        .expect("a write-ahead log segment");
    std::fs::OpenOptions::new()
        .append(true)
        .open(strata_wal::segment_path(&wal_dir, last))
        .unwrap()
        .write_all(&[0x10, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3])
        .unwrap();

    s.restart();
    s.wait_ready().await.expect("strata ready after the crash");
    let held = read_ingester(&s.grpc_addr(), strata_model::DEFAULT_TENANT, 0, i64::MAX)
        .await
        .expect("read the ingester");
    let mut missing = 0;
    for (series, samples) in &acked {
        let have: std::collections::HashSet<(i64, u64)> = held
            .get(series)
            .map(|v| v.iter().copied().collect())
            .unwrap_or_default();
        missing += samples.iter().filter(|s| !have.contains(s)).count();
    }
    assert_eq!(
        missing,
        0,
        "{missing} of {total} acknowledged samples are missing after SIGKILL and restart; log:\n{}",
        s.proc.log_text()
    );
    let log = s.proc.log_text();
    assert!(
        log.contains("write-ahead log damaged"),
        "the cut-off garbage is not logged:\n{log}"
    );
    assert!(log.contains("write-ahead log replayed"), "{log}");
}
