//! The ingester with a write-ahead log: what a push acknowledged comes back
//! after a restart from the log alone.

use std::sync::Arc;

use strata_ingester::service::IngesterService;
use strata_ingester::{Ingester, IngesterConfig, IngesterMetrics};
use strata_model::{MatchOp, Matcher};
use strata_remote_write::{encode_write_request, OwnedTimeSeries, Sample};
use strata_wal::{SyncPolicy, Wal, WalConfig, WalMetrics};

fn series(name: &str, instance: &str, samples: &[(i64, f64)]) -> OwnedTimeSeries {
    OwnedTimeSeries {
        labels: vec![
            ("__name__".to_string(), name.to_string()),
            ("instance".to_string(), instance.to_string()),
        ],
        samples: samples
            .iter()
            .map(|&(timestamp, value)| Sample { timestamp, value })
            .collect(),
        ..Default::default()
    }
}

fn all(ing: &Ingester, tenant: &str) -> Vec<(String, Vec<(i64, f64)>)> {
    let m = [Matcher::new(MatchOp::RegexMatch, "__name__", ".+").unwrap()];
    ing.query(tenant, &m, i64::MIN, i64::MAX)
        .into_iter()
        .map(|s| {
            let samples = s
                .chunks
                .iter()
                .flat_map(|c| strata_chunk::XorIterator::new(&c.data).collect::<Vec<_>>())
                .collect();
            (s.labels.to_string(), samples)
        })
        .collect()
}

fn open_wal(dir: &std::path::Path) -> Arc<Wal> {
    Arc::new(
        Wal::open(
            WalConfig {
                dir: dir.to_path_buf(),
                segment_bytes: 8192,
                sync: SyncPolicy::Always,
            },
            WalMetrics::default(),
        )
        .unwrap(),
    )
}

#[tokio::test]
async fn acknowledged_pushes_come_back_from_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let config = IngesterConfig {
        max_samples_per_chunk: 30,
        ..IngesterConfig::default()
    };
    let t0 = 1_700_000_000_000i64;
    let before = {
        let wal = open_wal(dir.path());
        let ing = Arc::new(
            Ingester::new(config.clone(), IngesterMetrics::default()).with_wal(wal.clone()),
        );
        let service = IngesterService::new(ing.clone());
        for round in 0..100i64 {
            let mut batch = Vec::new();
            for i in 0..20 {
                // New series keep arriving; each round adds a sample to all.
                if i <= round {
                    let t = t0 + round * 15_000;
                    batch.push(series(
                        "up",
                        &format!("host-{i}"),
                        &[(t, (round * 100 + i) as f64)],
                    ));
                }
            }
            let tenant = if round % 3 == 0 { "team-b" } else { "team-a" };
            let body = encode_write_request(&batch, &[]);
            service
                .push_body(tenant.to_string(), body.clone().into())
                .await
                .unwrap();
            // A retry of the same request: nothing new, still fine.
            service
                .push_body(tenant.to_string(), body.into())
                .await
                .unwrap();
        }
        let before = (all(&ing, "team-a"), all(&ing, "team-b"));
        wal.close().await.unwrap();
        before
    };
    assert_eq!(before.0.len(), 20);
    assert!(before.0.iter().map(|(_, s)| s.len()).sum::<usize>() > 1000);

    // A new process: nothing in memory, only the log.
    let ing = Ingester::new(config.clone(), IngesterMetrics::default());
    let stats = ing.replay_wal(dir.path()).unwrap();
    assert_eq!((all(&ing, "team-a"), all(&ing, "team-b")), before);
    assert_eq!(stats.samples_unknown_series, 0);
    assert_eq!(stats.bad_records, 0);
    assert!(stats.log.segments > 3, "{stats:?}");

    // It goes on logging in a new epoch (new references), and a second
    // restart replays both processes' records.
    let wal = open_wal(dir.path());
    let ing = Arc::new(ing.with_wal(wal.clone()));
    let service = IngesterService::new(ing.clone());
    let more = encode_write_request(
        &[
            series("up", "host-0", &[(t0 + 100 * 15_000, -1.0)]),
            series("up", "host-new", &[(t0 + 100 * 15_000, 7.0)]),
        ],
        &[],
    );
    service
        .push_body("team-a".into(), more.into())
        .await
        .unwrap();
    let after = all(&ing, "team-a");
    wal.close().await.unwrap();
    let again = Ingester::new(config, IngesterMetrics::default());
    let stats = again.replay_wal(dir.path()).unwrap();
    assert_eq!(all(&again, "team-a"), after);
    assert_eq!(after.len(), 21);
    assert_eq!(stats.samples_unknown_series, 0);
}

#[tokio::test]
async fn a_closed_log_fails_pushes_instead_of_acknowledging_them() {
    let dir = tempfile::tempdir().unwrap();
    let wal = open_wal(dir.path());
    let ing = Arc::new(
        Ingester::new(IngesterConfig::default(), IngesterMetrics::default()).with_wal(wal.clone()),
    );
    let service = IngesterService::new(ing);
    let body = encode_write_request(&[series("up", "a", &[(1_700_000_000_000, 1.0)])], &[]);
    service
        .push_body("t".into(), body.clone().into())
        .await
        .unwrap();
    wal.close().await.unwrap();
    let err = service
        .push_body("t".into(), body.into())
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unavailable, "{err}");
    assert!(err.message().contains("write-ahead log"), "{err}");
}

#[tokio::test]
async fn a_checkpoint_replaces_the_log_before_it_and_replays_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let config = IngesterConfig {
        max_samples_per_chunk: 30,
        ..IngesterConfig::default()
    };
    let t0 = 1_700_000_000_000i64;
    let wal = open_wal(dir.path());
    let ing =
        Arc::new(Ingester::new(config.clone(), IngesterMetrics::default()).with_wal(wal.clone()));
    let service = IngesterService::new(ing.clone());
    let push = |round: i64| {
        let batch: Vec<OwnedTimeSeries> = (0..50)
            .map(|i| {
                series(
                    "m",
                    &format!("h{i}"),
                    &[(t0 + round * 15_000, (round + i) as f64)],
                )
            })
            .collect();
        encode_write_request(&batch, &[])
    };
    for round in 0..80 {
        service
            .push_body("t".into(), push(round).into())
            .await
            .unwrap();
    }
    let segments_before = strata_wal::list_segments(dir.path()).unwrap();
    assert!(segments_before.len() > 3);
    let bytes = ing.checkpoint_wal().await.unwrap();
    assert!(bytes > 0);
    let left = strata_wal::list_segments(dir.path()).unwrap();
    assert_eq!(left.len(), 1, "segments before the cut are gone: {left:?}");
    for round in 80..100 {
        service
            .push_body("t".into(), push(round).into())
            .await
            .unwrap();
    }
    let want = all(&ing, "t");
    wal.close().await.unwrap();

    let again = Ingester::new(config, IngesterMetrics::default());
    let stats = again.replay_wal(dir.path()).unwrap();
    assert_eq!(all(&again, "t"), want);
    assert_eq!(want.len(), 50);
    assert!(want.iter().all(|(_, s)| s.len() == 100));
    assert!(stats.log.checkpoint.is_some());
    assert_eq!(stats.samples_unknown_series, 0);
    assert_eq!(stats.bad_records, 0);
}
