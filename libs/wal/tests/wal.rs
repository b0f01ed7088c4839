//! The log on a real directory: appends, group commit, rotation, removal,
//! and replay of damaged logs.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use strata_wal::{
    list_segments, replay, segment_path, SyncPolicy, Wal, WalConfig, WalError, WalMetrics,
    MAX_RECORD_BYTES,
};

fn records(dir: &Path) -> (Vec<Vec<u8>>, strata_wal::ReplayStats) {
    let mut out = Vec::new();
    let stats = replay::<()>(dir, |_, r| {
        out.push(r.to_vec());
        Ok(())
    })
    .unwrap()
    .unwrap();
    (out, stats)
}

fn config(dir: &Path, sync: SyncPolicy) -> WalConfig {
    WalConfig {
        dir: dir.to_path_buf(),
        segment_bytes: 4096,
        sync,
    }
}

fn record(task: u32, i: u32) -> Vec<u8> {
    let mut r = format!("task {task} record {i} ").into_bytes();
    r.resize(r.len() + (i as usize % 50), b'x');
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_replay_in_order_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = WalMetrics::default();
    let wal = Arc::new(
        Wal::open(
            config(dir.path(), SyncPolicy::Interval(Duration::from_millis(5))),
            metrics.clone(),
        )
        .unwrap(),
    );
    let mut tasks = Vec::new();
    for t in 0..8 {
        let wal = wal.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..200 {
                wal.append(record(t, i)).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    wal.close().await.unwrap();
    assert!(matches!(wal.append(vec![1]).await, Err(WalError::Closed)));
    let (got, stats) = records(dir.path());
    assert_eq!(got.len(), 1600);
    assert!(stats.segments > 5, "rotated at 4 KiB: {stats:?}");
    assert_eq!(stats.truncated_bytes, 0);
    // Each task's records in its own order.
    for t in 0..8 {
        let mine: Vec<&Vec<u8>> = got
            .iter()
            .filter(|r| r.starts_with(format!("task {t} ").as_bytes()))
            .collect();
        let want: Vec<Vec<u8>> = (0..200).map(|i| record(t, i)).collect();
        assert_eq!(mine.len(), 200);
        assert!(mine.iter().zip(&want).all(|(a, b)| *a == b));
    }
    // Group commit: fewer writes than records.
    assert!(
        metrics.groups.get() < 1600,
        "{} groups",
        metrics.groups.get()
    );
}

#[tokio::test]
async fn cut_and_remove_before_keep_later_segments() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(
        config(dir.path(), SyncPolicy::Always),
        WalMetrics::default(),
    )
    .unwrap();
    assert_eq!(wal.segment(), 1);
    assert_eq!(wal.append(b"one".to_vec()).await.unwrap(), 1);
    let next = wal.cut().await.unwrap();
    assert_eq!(next, 2);
    assert_eq!(wal.append(b"two".to_vec()).await.unwrap(), 2);
    assert_eq!(wal.remove_before(2).unwrap(), 1);
    // Never the current segment.
    assert_eq!(wal.remove_before(99).unwrap(), 0);
    wal.close().await.unwrap();
    let (got, _) = records(dir.path());
    assert_eq!(got, vec![b"two".to_vec()]);
    // Reopening continues after the last segment.
    let wal = Wal::open(config(dir.path(), SyncPolicy::Never), WalMetrics::default()).unwrap();
    assert_eq!(wal.segment(), 3);
    wal.append(b"three".to_vec()).await.unwrap();
    wal.close().await.unwrap();
    assert_eq!(
        records(dir.path()).0,
        vec![b"two".to_vec(), b"three".to_vec()]
    );
}

#[tokio::test]
async fn sync_policies_sync_as_documented() {
    for (policy, expect_sync_per_group) in [(SyncPolicy::Always, true), (SyncPolicy::Never, false)]
    {
        let dir = tempfile::tempdir().unwrap();
        let metrics = WalMetrics::default();
        let wal = Wal::open(
            WalConfig {
                segment_bytes: 1 << 30,
                ..config(dir.path(), policy)
            },
            metrics.clone(),
        )
        .unwrap();
        for i in 0..20 {
            wal.append(record(0, i)).await.unwrap();
        }
        let (groups, syncs) = (metrics.groups.get(), metrics.syncs.get());
        if expect_sync_per_group {
            assert_eq!(syncs, groups, "{policy:?}");
        } else {
            assert_eq!(syncs, 0, "{policy:?}");
        }
        wal.close().await.unwrap();
        assert_eq!(records(dir.path()).0.len(), 20);
    }
}

#[tokio::test]
async fn oversized_records_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(config(dir.path(), SyncPolicy::Never), WalMetrics::default()).unwrap();
    let err = wal.append(vec![0; MAX_RECORD_BYTES + 1]).await.unwrap_err();
    assert!(matches!(err, WalError::RecordTooLarge { .. }), "{err}");
    wal.append(b"fine".to_vec()).await.unwrap();
}

/// A log of `n` records in 4 KiB segments, closed.
async fn written_log(dir: &Path, n: u32) -> Vec<Vec<u8>> {
    let wal = Wal::open(config(dir, SyncPolicy::Never), WalMetrics::default()).unwrap();
    let mut want = Vec::new();
    for i in 0..n {
        wal.append(record(1, i)).await.unwrap();
        want.push(record(1, i));
    }
    wal.close().await.unwrap();
    want
}

#[tokio::test]
async fn a_torn_tail_is_truncated_and_everything_before_replays() {
    let dir = tempfile::tempdir().unwrap();
    let want = written_log(dir.path(), 300).await;
    let segments = list_segments(dir.path()).unwrap();
    let last = segment_path(dir.path(), *segments.last().unwrap());
    let len = std::fs::metadata(&last).unwrap().len();
    // Cut the last record in half, as a crash during its write would.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&last)
        .unwrap()
        .set_len(len - 20)
        .unwrap();
    let (got, stats) = records(dir.path());
    assert_eq!(got, want[..want.len() - 1]);
    assert!(stats.truncated_bytes > 0, "{stats:?}");
    // Repaired: a second replay reads the same and drops nothing.
    let (again, stats) = records(dir.path());
    assert_eq!(again, got);
    assert_eq!(stats.truncated_bytes, 0);
    // And the log goes on after it.
    let wal = Wal::open(config(dir.path(), SyncPolicy::Never), WalMetrics::default()).unwrap();
    wal.append(b"after".to_vec()).await.unwrap();
    wal.close().await.unwrap();
    assert_eq!(records(dir.path()).0.last().unwrap(), b"after");
}

#[tokio::test]
async fn garbage_appended_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let want = written_log(dir.path(), 50).await;
    let segments = list_segments(dir.path()).unwrap();
    let last = segment_path(dir.path(), *segments.last().unwrap());
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&last)
        .unwrap();
    f.write_all(&[0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9])
        .unwrap();
    drop(f);
    let (got, stats) = records(dir.path());
    assert_eq!(got, want);
    assert_eq!(stats.truncated_bytes, 13);
}

#[tokio::test]
async fn damage_in_an_earlier_segment_drops_the_rest_of_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let want = written_log(dir.path(), 300).await;
    let segments = list_segments(dir.path()).unwrap();
    assert!(segments.len() >= 4);
    let second = segment_path(dir.path(), segments[1]);
    let mut bytes = std::fs::read(&second).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&second, bytes).unwrap();
    let (got, stats) = records(dir.path());
    assert!(!got.is_empty() && got.len() < want.len());
    assert_eq!(got, want[..got.len()], "a prefix of what was written");
    assert_eq!(stats.removed_segments, segments.len() - 2);
    assert_eq!(list_segments(dir.path()).unwrap(), segments[..2]);
    // A segment too short for its header is repaired to an empty one.
    std::fs::write(segment_path(dir.path(), segments[1] + 1), b"SW").unwrap();
    let (again, stats) = records(dir.path());
    assert_eq!(again, got);
    assert_eq!(stats.truncated_bytes, 0);
    assert_eq!(
        std::fs::read(segment_path(dir.path(), segments[1] + 1)).unwrap(),
        strata_wal::SEGMENT_HEADER
    );
}

#[tokio::test]
async fn replay_stops_at_a_callback_error() {
    let dir = tempfile::tempdir().unwrap();
    written_log(dir.path(), 10).await;
    let mut seen = 0;
    let result = replay(dir.path(), |_, _| {
        seen += 1;
        if seen == 3 {
            Err("stop")
        } else {
            Ok(())
        }
    })
    .unwrap();
    assert_eq!(result, Err("stop"));
    assert_eq!(seen, 3);
    // An empty or missing directory replays nothing.
    let empty = tempfile::tempdir().unwrap();
    assert_eq!(records(&empty.path().join("missing")).0.len(), 0);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Any damage to a log's bytes never panics replay and always leaves a
    /// prefix of the records that were written.
    #[test]
    fn damaged_logs_replay_a_prefix(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let want = runtime.block_on(written_log(dir.path(), 120));
        let segments = list_segments(dir.path()).unwrap();
        let target = segment_path(dir.path(), segments[segments.len() / 2]);
        let mut bytes = std::fs::read(&target).unwrap();
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] ^= value;
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len() + 1));
        }
        std::fs::write(&target, bytes).unwrap();
        let (got, _) = records(dir.path());
        prop_assert!(got.len() <= want.len());
        prop_assert_eq!(&got[..], &want[..got.len()]);
    }
}

#[tokio::test]
async fn submitted_groups_keep_their_order() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(config(dir.path(), SyncPolicy::Never), WalMetrics::default()).unwrap();
    // Submitted in order, awaited in reverse: the log holds submit order.
    let first = wal
        .submit(vec![b"series".to_vec(), b"samples-1".to_vec()])
        .unwrap();
    let second = wal.submit(vec![b"samples-2".to_vec()]).unwrap();
    second.wait().await.unwrap();
    first.wait().await.unwrap();
    assert!(wal.submit(vec![vec![0; MAX_RECORD_BYTES + 1]]).is_err());
    wal.close().await.unwrap();
    assert_eq!(
        records(dir.path()).0,
        vec![
            b"series".to_vec(),
            b"samples-1".to_vec(),
            b"samples-2".to_vec()
        ]
    );
}

#[tokio::test]
async fn a_checkpoint_replaces_the_segments_before_its_cut() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(
        config(dir.path(), SyncPolicy::Always),
        WalMetrics::default(),
    )
    .unwrap();
    for i in 0..100 {
        wal.append(record(0, i)).await.unwrap();
    }
    let n = wal.cut().await.unwrap();
    wal.append(b"after the cut".to_vec()).await.unwrap();
    let bytes = strata_wal::write_checkpoint(
        dir.path(),
        n,
        vec![b"state-1".to_vec(), b"state-2".to_vec()],
    )
    .unwrap();
    assert!(bytes > 8);
    assert_eq!(list_segments(dir.path()).unwrap(), vec![n]);
    wal.append(b"later".to_vec()).await.unwrap();
    wal.close().await.unwrap();
    let (got, stats) = records(dir.path());
    assert_eq!(
        got,
        vec![
            b"state-1".to_vec(),
            b"state-2".to_vec(),
            b"after the cut".to_vec(),
            b"later".to_vec()
        ]
    );
    assert_eq!(stats.checkpoint, Some(n));

    // A crash between the rename and the cleanup leaves an old segment and
    // an unfinished checkpoint: replay ignores and removes the segment.
    let stale = segment_path(dir.path(), n - 1);
    std::fs::write(&stale, strata_wal::SEGMENT_HEADER).unwrap();
    std::fs::write(
        dir.path().join(format!("checkpoint.{:08}.tmp", n + 5)),
        b"junk",
    )
    .unwrap();
    let (again, _) = records(dir.path());
    assert_eq!(again, got);
    assert!(!stale.exists());
    // A newer checkpoint replaces the older one.
    strata_wal::write_checkpoint(dir.path(), n + 1, vec![b"newer".to_vec()]).unwrap();
    assert_eq!(
        strata_wal::latest_checkpoint(dir.path()).unwrap(),
        Some(n + 1)
    );
    assert!(!strata_wal::checkpoint_path(dir.path(), n).exists());
    assert_eq!(records(dir.path()).0, vec![b"newer".to_vec()]);
}

#[test]
fn one_lock_per_directory() {
    let dir = tempfile::tempdir().unwrap();
    let first = strata_wal::DirLock::acquire(dir.path()).unwrap();
    let err = strata_wal::DirLock::acquire(dir.path()).unwrap_err();
    assert!(matches!(err, WalError::Locked { .. }), "{err}");
    assert!(err.to_string().contains("own data directory"), "{err}");
    drop(first);
    strata_wal::DirLock::acquire(dir.path()).unwrap();
}
