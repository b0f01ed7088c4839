//! The store on its embedded backends: writes read back exactly, every
//! endpoint's view, dedupe checks, limits and corruption.

use std::collections::BTreeMap;

use bytes::Bytes;
use strata_chunk::XorChunk;
use strata_model::{Labels, MatchOp, Matcher};
use strata_store::{
    ReadLimits, Store, StoreChunk, StoreConfig, StoreError, StoreMetricsSet, WriteBatch,
    WriteSeries,
};

const H: i64 = 3_600_000;
const T0: i64 = 1_700_000_000_000 - 1_700_000_000_000 % (2 * H);

fn chunk(samples: &[(i64, f64)]) -> StoreChunk {
    let mut c = XorChunk::new();
    for &(t, v) in samples {
        c.append(t, v);
    }
    StoreChunk {
        min_time: samples[0].0,
        max_time: samples[samples.len() - 1].0,
        encoding: 1,
        data: Bytes::copy_from_slice(c.bytes()),
    }
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

fn m(op: MatchOp, n: &str, v: &str) -> Matcher {
    Matcher::new(op, n, v).unwrap()
}

/// 20 series of two metrics over one 2 h window, a sample a minute.
fn batch(window_start: i64) -> (WriteBatch, BTreeMap<Labels, Vec<(i64, f64)>>) {
    let mut series = Vec::new();
    let mut expected = BTreeMap::new();
    for i in 0..20 {
        let name = if i % 2 == 0 { "up" } else { "requests_total" };
        let job = if i < 10 { "api" } else { "db" };
        let inst = format!("i{i}");
        let l = labels(&[("__name__", name), ("instance", &inst), ("job", job)]);
        let samples: Vec<(i64, f64)> = (0..120)
            .map(|k| (window_start + k * 60_000, (i * 1000 + k) as f64))
            .collect();
        series.push(WriteSeries {
            fingerprint: strata_model::fingerprint(l.iter().map(|l| (&*l.name, &*l.value))),
            labels: l.clone(),
            digest: i as u32,
            chunks: vec![chunk(&samples[..60]), chunk(&samples[60..])],
        });
        expected.insert(l, samples);
    }
    (
        WriteBatch {
            tenant: "team-a".into(),
            window_start_ms: window_start,
            window_end_ms: window_start + 2 * H,
            series,
        },
        expected,
    )
}

async fn open(dir: &std::path::Path) -> Store {
    Store::open(
        &StoreConfig::default(),
        dir,
        "ingester-1",
        &StoreMetricsSet::default(),
    )
    .await
    .unwrap()
}

fn decode(s: &strata_store::StoreSeries) -> Vec<(i64, f64)> {
    s.chunks
        .iter()
        .flat_map(|c| strata_chunk::XorIterator::new(&c.data).collect::<Vec<_>>())
        .collect()
}

#[tokio::test]
async fn written_batches_read_back_exactly_after_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let (b, expected) = batch(T0);
    {
        let store = open(dir.path()).await;
        store.write(&b).await.unwrap();
    }
    // A new process: nothing cached, everything from disk.
    let store = open(dir.path()).await;
    let all = store
        .select("team-a", &[m(MatchOp::Equal, "job", "api")], T0, T0 + 2 * H)
        .await
        .unwrap();
    assert_eq!(all.len(), 10);
    for s in &all {
        assert_eq!(&decode(s), &expected[&s.labels], "{}", s.labels);
    }
    // Every matcher type, and a range that needs one chunk only.
    let up = store
        .select(
            "team-a",
            &[
                m(MatchOp::Equal, "__name__", "up"),
                m(MatchOp::NotEqual, "job", "db"),
            ],
            T0 + 70 * 60_000,
            T0 + 80 * 60_000,
        )
        .await
        .unwrap();
    assert_eq!(up.len(), 5);
    assert!(up.iter().all(|s| s.chunks.len() == 1));
    let re = store
        .select(
            "team-a",
            &[m(MatchOp::RegexMatch, "instance", "i1[0-9]")],
            T0,
            T0 + H,
        )
        .await
        .unwrap();
    assert_eq!(re.len(), 10);
    let none = store
        .select(
            "team-a",
            &[m(MatchOp::Equal, "job", "api")],
            T0 + 3 * H,
            T0 + 4 * H,
        )
        .await
        .unwrap();
    assert!(none.is_empty());
    assert!(store
        .select("other", &[m(MatchOp::Equal, "job", "api")], T0, T0 + 2 * H)
        .await
        .unwrap()
        .is_empty());

    // Series, label names and values.
    let series = store
        .series(
            "team-a",
            &[m(MatchOp::RegexNoMatch, "__name__", "up")],
            T0,
            T0 + H,
        )
        .await
        .unwrap();
    assert_eq!(series.len(), 10);
    assert_eq!(
        store.label_names("team-a", &[], T0, T0 + H).await.unwrap(),
        vec!["__name__", "instance", "job"]
    );
    assert_eq!(
        store
            .label_values("team-a", "job", &[], T0, T0 + H)
            .await
            .unwrap(),
        vec!["api", "db"]
    );
    assert_eq!(
        store
            .label_values(
                "team-a",
                "instance",
                &[m(MatchOp::Equal, "instance", "i3")],
                T0,
                T0 + H
            )
            .await
            .unwrap(),
        vec!["i3"]
    );
}

#[tokio::test]
async fn stored_answers_by_fingerprint_and_digest_within_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    let (b, _) = batch(T0);
    store.write(&b).await.unwrap();
    let fp0 = b.series[0].fingerprint;
    let fp1 = b.series[1].fingerprint;
    let got = store
        .stored("team-a", T0, T0 + 2 * H, &[(fp0, 0), (fp1, 999), (42, 0)])
        .await
        .unwrap();
    assert_eq!(got.into_iter().collect::<Vec<_>>(), vec![fp0]);
    // Another window holds nothing.
    assert!(store
        .stored("team-a", T0 + 2 * H, T0 + 4 * H, &[(fp0, 0)])
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn limits_and_corruption_are_errors_never_wrong_data() {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig {
        limits: ReadLimits {
            max_chunks_per_query: 5,
            ..ReadLimits::default()
        },
        cache: strata_store::CacheConfig {
            lru_bytes: 0,
            ..Default::default()
        },
        ..StoreConfig::default()
    };
    let store = Store::open(&config, dir.path(), "w", &StoreMetricsSet::default())
        .await
        .unwrap();
    let (b, expected) = batch(T0);
    store.write(&b).await.unwrap();
    let err = store
        .select("team-a", &[m(MatchOp::Equal, "job", "api")], T0, T0 + 2 * H)
        .await
        .unwrap_err();
    assert!(err.is_limit(), "{err}");
    assert!(err.to_string().contains("max_chunks_per_query"), "{err}");

    // Flip one byte of one chunk record in the object file.
    let one = [m(MatchOp::Equal, "instance", "i4")];
    let before = store.select("team-a", &one, T0, T0 + 2 * H).await.unwrap();
    assert_eq!(decode(&before[0]), expected[&before[0].labels]);
    let objects = store.objects().list("team-a/").await.unwrap();
    assert_eq!(objects.len(), 1);
    let index = strata_chunk_store::read_index(store.objects().as_ref(), &objects[0])
        .await
        .unwrap();
    let target = (0..index.len())
        .map(|i| index.series(i))
        .find(|s| s.labels.get("instance") == Some("i4"))
        .unwrap();
    let r = &target.chunks[1];
    let path = dir.path().join("chunks/objects").join(&objects[0]);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[(r.offset + u64::from(r.len) / 2) as usize] ^= 0x20;
    std::fs::write(&path, bytes).unwrap();
    let err = store
        .select("team-a", &one, T0, T0 + 2 * H)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains(&objects[0]), "{err}");
    // The other chunk of the series and other series still read fine.
    let first_hour = store
        .select("team-a", &one, T0, T0 + 50 * 60_000)
        .await
        .unwrap();
    assert_eq!(decode(&first_hour[0]).len(), 60);
    let other = store
        .select(
            "team-a",
            &[m(MatchOp::Equal, "instance", "i5")],
            T0,
            T0 + 2 * H,
        )
        .await
        .unwrap();
    assert_eq!(decode(&other[0]), expected[&other[0].labels]);
}

/// A label with thousands of values per object (a Bloom filter in the index):
/// selection, series, label names and values stay exact, with and without
/// matchers, and the replica check finds what was stored.
#[tokio::test]
async fn high_cardinality_labels_answer_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    let samples: Vec<(i64, f64)> = (0..4).map(|k| (T0 + k * 60_000, k as f64)).collect();
    let mut series = Vec::new();
    for i in 0..3000 {
        let pod = format!("checkout-7d9f8b6c5-{i:05}");
        let l = labels(&[
            ("__name__", "kube_pod_info"),
            ("pod", &pod),
            ("namespace", ["shop", "infra"][i % 2]),
        ]);
        series.push(WriteSeries {
            fingerprint: strata_model::fingerprint(l.iter().map(|l| (&*l.name, &*l.value))),
            labels: l,
            digest: i as u32 ^ 0x5a5a,
            chunks: vec![chunk(&samples)],
        });
    }
    let b = WriteBatch {
        tenant: "team-a".into(),
        window_start_ms: T0,
        window_end_ms: T0 + 2 * H,
        series: series.clone(),
    };
    store.write(&b).await.unwrap();
    let (from, to) = (T0, T0 + 2 * H);

    let one = store
        .select(
            "team-a",
            &[m(MatchOp::Equal, "pod", "checkout-7d9f8b6c5-01234")],
            from,
            to,
        )
        .await
        .unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].labels.get("namespace"), Some("shop"));
    assert_eq!(decode(&one[0]), samples);
    assert!(store
        .select("team-a", &[m(MatchOp::Equal, "pod", "absent")], from, to)
        .await
        .unwrap()
        .is_empty());
    let re = store
        .series(
            "team-a",
            &[
                m(MatchOp::RegexMatch, "pod", "checkout-.*-0001."),
                m(MatchOp::Equal, "namespace", "infra"),
            ],
            from,
            to,
        )
        .await
        .unwrap();
    assert_eq!(re.len(), 5);
    let not = store
        .series(
            "team-a",
            &[
                m(MatchOp::Equal, "__name__", "kube_pod_info"),
                m(MatchOp::NotEqual, "namespace", "shop"),
            ],
            from,
            to,
        )
        .await
        .unwrap();
    assert_eq!(not.len(), 1500);

    let pods = store
        .label_values("team-a", "pod", &[], from, to)
        .await
        .unwrap();
    assert_eq!(pods.len(), 3000);
    assert_eq!(pods[0], "checkout-7d9f8b6c5-00000");
    let namespaces = store
        .label_values("team-a", "namespace", &[], from, to)
        .await
        .unwrap();
    assert_eq!(namespaces, ["infra", "shop"]);
    let some = store
        .label_values(
            "team-a",
            "pod",
            &[m(MatchOp::RegexMatch, "pod", ".*-0000[0-2]")],
            from,
            to,
        )
        .await
        .unwrap();
    assert_eq!(some.len(), 3);
    let names = store.label_names("team-a", &[], from, to).await.unwrap();
    assert_eq!(names, ["__name__", "namespace", "pod"]);

    // The replica check: same digest stored, a different one not.
    let asked: Vec<(u64, u32)> = series
        .iter()
        .take(10)
        .enumerate()
        .map(|(i, s)| (s.fingerprint, if i < 5 { s.digest } else { s.digest ^ 1 }))
        .collect();
    let stored = store
        .stored("team-a", T0, T0 + 2 * H, &asked)
        .await
        .unwrap();
    assert_eq!(stored.len(), 5);
    assert!(asked[..5].iter().all(|(fp, _)| stored.contains(fp)));
    // Another tenant sees nothing.
    assert!(store
        .label_values("team-b", "pod", &[], from, to)
        .await
        .unwrap()
        .is_empty());
}
