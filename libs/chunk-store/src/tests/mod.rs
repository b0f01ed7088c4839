//! Tests of the crate, with the helpers they share.

mod fetch;
mod format;
mod local;
mod s3;
mod select;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use proptest::prelude::*;
use strata_model::Labels;
use unpoisoned::Mutex;

use crate::{
    BuiltObject, ChunkRef, ChunkToWrite, ObjectBuilder, ObjectIndex, ObjectStore, StoreError,
};

/// `std::sync::Mutex` that ignores poisoning.
mod unpoisoned {
    #[derive(Default)]
    pub struct Mutex<T>(std::sync::Mutex<T>);

    impl<T> Mutex<T> {
        pub fn lock(&self) -> std::sync::MutexGuard<'_, T> {
            self.0.lock().unwrap_or_else(|e| e.into_inner())
        }
    }
}

/// One series to write in a test.
#[derive(Clone, Debug)]
pub struct TestSeries {
    pub labels: Labels,
    pub chunks: Vec<ChunkToWrite>,
}

pub fn chunk(min_time: i64, max_time: i64, encoding: u8, data: &[u8]) -> ChunkToWrite {
    ChunkToWrite {
        min_time,
        max_time,
        encoding,
        data: Bytes::copy_from_slice(data),
    }
}

pub fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

/// The digest a writer would give a series: crc32 of its chunks' payloads.
pub fn digest_of(chunks: &[ChunkToWrite]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    for c in chunks {
        h.update(&c.data);
    }
    h.finalize()
}

/// Builds an object of `series` (fingerprints from the labels, digests from the chunks).
pub fn build(tenant: &str, key: &str, series: &[TestSeries]) -> BuiltObject {
    let mut b = ObjectBuilder::new(tenant);
    for s in series {
        b.add_series(
            s.labels.fingerprint(),
            &s.labels,
            digest_of(&s.chunks),
            &s.chunks,
        );
    }
    b.finish(key)
}

/// Every chunk ref of `index`, in index order (which is the order of the records).
pub fn all_refs(index: &ObjectIndex) -> Vec<ChunkRef> {
    (0..index.len()).flat_map(|i| index.chunks(i)).collect()
}

/// The index section of a built object.
pub fn index_section(built: &BuiltObject) -> &[u8] {
    let start = built.index_offset as usize;
    &built.body[start..start + built.index_len as usize]
}

/// A small fixed object: three series, five chunks.
pub fn small_series() -> Vec<TestSeries> {
    vec![
        TestSeries {
            labels: labels(&[("__name__", "up"), ("job", "api")]),
            chunks: vec![
                chunk(1000, 2000, 1, b"first chunk"),
                chunk(2001, 3000, 1, b"second"),
            ],
        },
        TestSeries {
            labels: labels(&[("__name__", "up"), ("job", "db")]),
            chunks: vec![chunk(1000, 1500, 1, b"\x00\x01\x02\x03")],
        },
        TestSeries {
            labels: labels(&[("__name__", "requests_total"), ("code", "200")]),
            chunks: vec![chunk(-5, 5, 2, b"x"), chunk(6, 9, 1, &[0xAB; 40])],
        },
    ]
}

pub fn label_pairs() -> impl Strategy<Value = Labels> {
    prop::collection::btree_map("[a-z_]{1,8}", "[ -~]{1,12}", 1..5).prop_map(Labels::from_pairs)
}

pub fn chunk_strategy() -> impl Strategy<Value = ChunkToWrite> {
    (
        any::<i64>(),
        any::<i64>(),
        any::<u8>(),
        prop::collection::vec(any::<u8>(), 0..300),
    )
        .prop_map(|(a, b, encoding, data)| ChunkToWrite {
            min_time: a.min(b),
            max_time: a.max(b),
            encoding,
            data: Bytes::from(data),
        })
}

pub fn series_strategy() -> impl Strategy<Value = Vec<TestSeries>> {
    prop::collection::vec(
        (label_pairs(), prop::collection::vec(chunk_strategy(), 0..6))
            .prop_map(|(labels, chunks)| TestSeries { labels, chunks }),
        0..12,
    )
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// An in-memory store that counts reads, records their ranges and the most reads in flight
/// at once, and can fail or delay them.
#[derive(Default)]
pub struct MemStore {
    pub objects: Mutex<BTreeMap<String, Bytes>>,
    pub ranges: Mutex<Vec<(String, u64, u64)>>,
    pub gets: AtomicUsize,
    in_flight: AtomicUsize,
    pub max_in_flight: AtomicUsize,
    pub delay: Option<Duration>,
    /// Reads of this key fail.
    pub failing_key: Option<String>,
}

impl MemStore {
    pub fn gets(&self) -> usize {
        self.gets.load(Ordering::SeqCst)
    }

    pub fn insert(&self, key: &str, body: Bytes) {
        self.objects.lock().insert(key.to_string(), body);
    }

    fn object(&self, key: &str) -> Result<Bytes, StoreError> {
        if self.failing_key.as_deref() == Some(key) {
            return Err(StoreError::S3 {
                operation: "get object range",
                bucket: "test".to_string(),
                key: key.to_string(),
                message: "injected failure".to_string(),
            });
        }
        self.objects
            .lock()
            .get(key)
            .cloned()
            .ok_or_else(|| StoreError::NotFound {
                key: key.to_string(),
            })
    }
}

#[async_trait::async_trait]
impl ObjectStore for MemStore {
    async fn put(&self, key: &str, body: Bytes) -> Result<(), StoreError> {
        self.insert(key, body);
        Ok(())
    }

    async fn get_range(&self, key: &str, offset: u64, len: u64) -> Result<Bytes, StoreError> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        self.ranges.lock().push((key.to_string(), offset, len));
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        if let Some(delay) = self.delay {
            tokio::time::sleep(delay).await;
        }
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        let body = self.object(key)?;
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(body.len());
        let end = start
            .saturating_add(usize::try_from(len).unwrap_or(usize::MAX))
            .min(body.len());
        Ok(body.slice(start..end))
    }

    async fn get(&self, key: &str) -> Result<Bytes, StoreError> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        self.object(key)
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        Ok(self
            .objects
            .lock()
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect())
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.objects.lock().remove(key);
        Ok(())
    }

    fn kind(&self) -> &'static str {
        "memory"
    }
}

/// What `written` should give: per (fingerprint, labels), the chunks in the order written
/// and the digest of the last write of the series.
fn merged(written: &[TestSeries]) -> BTreeMap<(u64, Labels), (Vec<ChunkToWrite>, u32)> {
    let mut expected: BTreeMap<(u64, Labels), (Vec<ChunkToWrite>, u32)> = BTreeMap::new();
    for s in written {
        let entry = expected
            .entry((s.labels.fingerprint(), s.labels.clone()))
            .or_default();
        entry.0.extend(s.chunks.iter().cloned());
        entry.1 = digest_of(&s.chunks);
    }
    expected
}

/// Checks that the series of `index` match what was written (merged by labels).
pub fn assert_matches_written(index: &ObjectIndex, written: &[TestSeries]) {
    let expected = merged(written);
    assert_eq!(index.len(), expected.len());
    for (i, ((fp, labels), (chunks, digest))) in expected.iter().enumerate() {
        let s = index.series(i);
        assert_eq!(s.fingerprint, *fp);
        assert_eq!(s.digest, *digest);
        assert_eq!(&s.labels, labels);
        assert_eq!(s.chunks.len(), chunks.len());
        for (r, c) in s.chunks.iter().zip(chunks) {
            assert_eq!(r.min_time, c.min_time);
            assert_eq!(r.max_time, c.max_time);
            assert_eq!(r.encoding, c.encoding);
            assert_eq!(r.len as usize, c.data.len() + crate::RECORD_OVERHEAD);
            assert_eq!(&r.object, index.key());
        }
    }
}

/// The payload written for each chunk of `index`, by (object, offset): series merge by
/// labels and keep their chunks in the order written.
pub fn expected_payloads(
    index: &ObjectIndex,
    written: &[TestSeries],
) -> std::collections::HashMap<(Arc<str>, u64), Bytes> {
    merged(written)
        .values()
        .enumerate()
        .flat_map(|(i, (chunks, _))| {
            index
                .chunks(i)
                .into_iter()
                .zip(chunks)
                .map(|(r, c)| ((r.object.clone(), r.offset), c.data.clone()))
                .collect::<Vec<_>>()
        })
        .collect()
}
