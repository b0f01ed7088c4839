//! Chunk fetching: round trips, coalescing, concurrency, failures, metrics.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::registry::Registry;
use proptest::prelude::*;

use super::*;
use crate::{
    read_index, ChunkFetcher, ChunkRef, ChunkStoreMetrics, FetchError, InstrumentedStore,
    LocalObjectStore,
};

fn refs_of(built: &BuiltObject) -> Vec<ChunkRef> {
    all_refs(&built.index)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// build -> put in a local store -> read_index -> fetch every chunk gives back what was
    /// written.
    #[test]
    fn round_trip_through_a_local_store(
        objects in prop::collection::vec(series_strategy(), 1..4),
        max_gap in prop_oneof![Just(0u64), Just(64), Just(16 * 1024)],
        concurrency in 1usize..5,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let rt = runtime();
        rt.block_on(async {
            let store: Arc<dyn ObjectStore> = Arc::new(LocalObjectStore::new(dir.path()).unwrap());
            let mut refs = Vec::new();
            let mut expected = std::collections::HashMap::new();
            for (n, written) in objects.iter().enumerate() {
                let key = format!("tenant/chunks/19000/w-{n}");
                let built = build("tenant", &key, written);
                store.put(&key, built.body.clone()).await.unwrap();
                let index = read_index(&*store, &key).await.unwrap();
                assert_eq!(index.tenant(), "tenant");
                assert_eq!(index, built.index);
                assert_matches_written(&index, written);
                expected.extend(expected_payloads(&index, written));
                refs.extend(all_refs(&index));
            }
            // Fetch in reverse order to check that results follow the refs.
            refs.reverse();
            let fetcher = ChunkFetcher::new(store.clone())
                .with_max_gap(max_gap)
                .with_concurrency(concurrency);
            let results = fetcher.fetch(&refs).await;
            assert_eq!(results.len(), refs.len());
            for (result, r) in results.into_iter().zip(&refs) {
                assert_eq!(result.unwrap(), expected[&(r.object.clone(), r.offset)]);
            }
        });
    }
}

#[tokio::test]
async fn payloads_come_back_exactly() {
    let store = Arc::new(MemStore::default());
    let written = small_series();
    let built = build("t", "obj", &written);
    store.insert("obj", built.body.clone());
    let refs = refs_of(&built);
    let expected = expected_payloads(&built.index, &written);
    assert_eq!(expected.len(), 5);
    let results = ChunkFetcher::new(store.clone()).fetch(&refs).await;
    for (r, got) in refs.iter().zip(results) {
        assert_eq!(got.unwrap(), expected[&(r.object.clone(), r.offset)]);
    }
    assert!(ChunkFetcher::new(store).fetch(&[]).await.is_empty());
}

#[tokio::test]
async fn neighbouring_chunks_are_read_with_one_request() {
    let store = Arc::new(MemStore::default());
    let many: Vec<TestSeries> = (0..50)
        .map(|i| TestSeries {
            labels: labels(&[("i", &i.to_string())]),
            chunks: vec![chunk(i, i + 1, 1, &[i as u8; 100])],
        })
        .collect();
    let built = build("t", "obj", &many);
    store.insert("obj", built.body.clone());
    let refs = refs_of(&built);
    assert_eq!(refs.len(), 50);

    let fetcher = ChunkFetcher::new(store.clone());
    let results = fetcher.fetch(&refs).await;
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(store.gets(), 1, "50 adjacent chunks: one read");
    assert_eq!(fetcher.metrics().coalesced_reads.get(), 1);
    assert_eq!(fetcher.metrics().chunks_fetched.get(), 50);
    let (_, offset, len) = store.ranges.lock()[0].clone();
    let first = refs.iter().map(|r| r.offset).min().unwrap();
    let last = refs.iter().map(|r| r.end()).max().unwrap();
    assert_eq!((offset, len), (first, last - first));

    // Every other chunk, gaps of one record (109 bytes): one read with the default gap,
    // one read per chunk with a gap of 100.
    let mut sorted = refs.clone();
    sorted.sort_by_key(|r| r.offset);
    let sparse: Vec<ChunkRef> = sorted.iter().step_by(2).cloned().collect();
    let before = store.gets();
    let results = ChunkFetcher::new(store.clone()).fetch(&sparse).await;
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(store.gets() - before, 1);
    let before = store.gets();
    let results = ChunkFetcher::new(store.clone())
        .with_max_gap(100)
        .fetch(&sparse)
        .await;
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(store.gets() - before, sparse.len());

    // Chunks of two objects are never merged.
    let other = build("t", "obj2", &many);
    store.insert("obj2", other.body.clone());
    let mut mixed = refs_of(&other);
    mixed.extend(refs.iter().cloned());
    let before = store.gets();
    let results = ChunkFetcher::new(store.clone()).fetch(&mixed).await;
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(store.gets() - before, 2);

    // The same chunk asked twice is read once and answered twice.
    let twice = vec![refs[3].clone(), refs[3].clone()];
    let before = store.gets();
    let results = ChunkFetcher::new(store.clone()).fetch(&twice).await;
    assert_eq!(store.gets() - before, 1);
    assert_eq!(results[0].as_ref().unwrap(), results[1].as_ref().unwrap());
}

#[tokio::test]
async fn reads_in_flight_stay_within_the_bound() {
    let store = Arc::new(MemStore {
        delay: Some(Duration::from_millis(20)),
        ..MemStore::default()
    });
    let mut refs = Vec::new();
    for n in 0..24 {
        let key = format!("obj-{n}");
        let built = build("t", &key, &small_series()[..1]);
        store.insert(&key, built.body.clone());
        refs.extend(refs_of(&built));
    }
    let results = ChunkFetcher::new(store.clone())
        .with_concurrency(3)
        .fetch(&refs)
        .await;
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(store.gets(), 24, "one read per object");
    assert_eq!(
        store
            .max_in_flight
            .load(std::sync::atomic::Ordering::SeqCst),
        3
    );
}

#[tokio::test]
async fn a_corrupt_chunk_fails_alone_and_a_failed_read_fails_its_chunks() {
    let built = build("t", "good", &small_series());
    let refs = refs_of(&built);
    let victim = refs.iter().max_by_key(|r| r.offset).unwrap().clone();
    let mut body = built.body.to_vec();
    body[victim.offset as usize + 6] ^= 0x01;

    let store = Arc::new(MemStore {
        failing_key: Some("broken".to_string()),
        ..MemStore::default()
    });
    store.insert("good", Bytes::from(body));
    let broken: Vec<ChunkRef> = refs
        .iter()
        .map(|r| ChunkRef {
            object: Arc::from("broken"),
            ..r.clone()
        })
        .collect();
    let missing = ChunkRef {
        object: Arc::from("missing"),
        ..refs[0].clone()
    };

    let mut ask = refs.clone();
    ask.extend(broken.iter().cloned());
    ask.push(missing);
    let fetcher = ChunkFetcher::new(store.clone());
    let results = fetcher.fetch(&ask).await;
    for (r, result) in ask.iter().zip(&results) {
        match (&*r.object, result) {
            ("good", Ok(_)) => assert_ne!(r.offset, victim.offset),
            ("good", Err(FetchError::Corrupt { object, offset })) => {
                assert_eq!((object.as_str(), *offset), ("good", victim.offset));
            }
            ("broken", Err(FetchError::Store(StoreError::S3 { message, .. }))) => {
                assert_eq!(message, "injected failure");
            }
            ("missing", Err(FetchError::Store(StoreError::NotFound { key }))) => {
                assert_eq!(key, "missing");
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(fetcher.metrics().checksum_failures.get(), 1);

    // An object shorter than its refs say: the cut chunks are corrupt, not a panic.
    store.insert("good", built.body.slice(..victim.offset as usize + 3));
    let results = ChunkFetcher::new(store.clone()).fetch(&refs).await;
    for (r, result) in refs.iter().zip(results) {
        if r.offset == victim.offset {
            assert!(matches!(result, Err(FetchError::Corrupt { .. })));
        } else {
            assert!(result.is_ok());
        }
    }
}

#[tokio::test]
async fn instrumented_store_records_requests() {
    let metrics = ChunkStoreMetrics::new();
    let inner = Arc::new(MemStore::default());
    let store = Arc::new(InstrumentedStore::new(inner.clone(), metrics.clone()));
    assert_eq!(store.kind(), "memory");
    let built = build("t", "obj", &small_series());
    store.put("obj", built.body.clone()).await.unwrap();
    assert_eq!(metrics.objects_written.get(), 1);
    assert_eq!(metrics.bytes_written.get(), built.body.len() as u64);

    let index = read_index(&*store, "obj").await.unwrap();
    let fetcher = ChunkFetcher::new(store.clone()).with_metrics(metrics.clone());
    let refs: Vec<ChunkRef> = all_refs(&index);
    assert!(fetcher.fetch(&refs).await.iter().all(Result::is_ok));
    assert!(store.get("nope").await.is_err());
    assert!(metrics.bytes_read.get() > 0);
    assert_eq!(metrics.chunks_fetched.get(), refs.len() as u64);

    let mut registry = Registry::default();
    metrics.register(&mut registry);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    for needle in [
        "strata_chunk_store_objects_written_total 1",
        "strata_chunk_store_written_bytes_total",
        "strata_chunk_store_read_bytes_total",
        "strata_chunk_store_checksum_failures_total 0",
        "strata_chunk_store_coalesced_reads_total 1",
        r#"strata_chunk_store_requests_total{operation="put",store="memory",outcome="ok"} 1"#,
        r#"strata_chunk_store_requests_total{operation="get",store="memory",outcome="not_found"} 1"#,
        r#"strata_chunk_store_requests_total{operation="get_range",store="memory",outcome="ok"} 1"#,
        r#"strata_chunk_store_request_duration_seconds_count{operation="get_tail",store="memory"} 1"#,
    ] {
        assert!(text.contains(needle), "{needle} missing from\n{text}");
    }
}
