//! Durability: what a push acknowledged survives a crash of the process
//! that acknowledged it (the write-ahead log), and a damaged log tail does
//! not stop a restart.

use std::io::Write;
use std::time::Duration;

use strata_e2e::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_process_sigkill_loses_no_acknowledged_sample() {
    let mut s = start_strata("wal-sigkill", &[]).await;
    let writer = Writer::start(s.http(), "wal_test", 40);
    // Kill it while the writer is pushing, after a good number of rounds.
    writer
        .wait_for(40 * 300, Duration::from_secs(60), "before the kill")
        .await;
    s.proc.kill();
    // Pushes to the dead process fail: they were not acknowledged.
    let (acked, _) = writer.stop().await;

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
    let (missing, total) = missing(&acked, &held_by(&s).await);
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
