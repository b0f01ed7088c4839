//! Replicas' chunks merged into one lazily decoded series.
//!
//! Every series lives on several ingesters. Replicas normally cut identical
//! chunks (same samples, same cutting rules), so byte-identical chunks are
//! kept once and the series decodes like a single replica. When replicas
//! differ (one missed samples while it was down, or a push reached only a
//! quorum) their overlapping chunks are decoded together and merged by
//! timestamp: the union of the samples, each timestamp once.
//!
//! Nothing is decoded when the answer arrives: the engine reads a series
//! through [`ChunkSource`], which decodes only the chunks overlapping the
//! range it asks for, only from the range's first sample, and stops at its
//! last.

use std::sync::Arc;

use bytes::Bytes;
use strata_chunk::{XorIterator, ENCODING_XOR};
use strata_model::Labels;
use strata_promql::{SampleIter, SampleSource, StorageError, StoredSeries};
use strata_proto::ingester::Chunk;

/// One chunk of a series, with the replica it came from.
#[derive(Clone, Debug, PartialEq)]
struct SourceChunk {
    start_ms: i64,
    end_ms: i64,
    data: Bytes,
    /// Index into [`ChunkSource::replicas`].
    replica: usize,
}

/// A series' chunks from one or more replicas, sorted by time, identical
/// chunks once; decoded on demand.
#[derive(Debug)]
pub struct ChunkSource {
    chunks: Vec<SourceChunk>,
    /// Names of the ingesters the chunks came from, for error messages.
    replicas: Arc<Vec<String>>,
}

impl ChunkSource {
    fn corrupt(&self, chunk: &SourceChunk, e: impl std::fmt::Display) -> StorageError {
        let from = self
            .replicas
            .get(chunk.replica)
            .map_or("an ingester", String::as_str);
        StorageError::Internal(format!(
            "corrupt chunk from {from} (samples {} to {} ms): {e}",
            chunk.start_ms, chunk.end_ms
        ))
    }
}

impl SampleSource for ChunkSource {
    fn samples(&self, mint: i64, maxt: i64) -> SampleIter<'_> {
        Box::new(ChunkIter {
            source: self,
            mint,
            maxt,
            next_chunk: 0,
            current: None,
            merged: Vec::new().into_iter(),
            failed: false,
        })
    }
}

/// Walks a [`ChunkSource`] group by group: a chunk overlapping no other is
/// streamed straight from its bytes; chunks that overlap (replicas that
/// differ) are decoded together and merged.
struct ChunkIter<'a> {
    source: &'a ChunkSource,
    mint: i64,
    maxt: i64,
    next_chunk: usize,
    /// The single chunk being streamed.
    current: Option<(XorIterator<'a>, &'a SourceChunk)>,
    /// What is left of a merged group.
    merged: std::vec::IntoIter<(i64, f64)>,
    failed: bool,
}

impl ChunkIter<'_> {
    /// Prepares the next group of chunks overlapping the range; false when
    /// there is none.
    fn next_group(&mut self) -> Result<bool, StorageError> {
        let chunks = &self.source.chunks;
        let mut start = self.next_chunk;
        // Chunks are sorted by start; one ending before the range holds
        // nothing of it, whatever it overlaps.
        while start < chunks.len() && chunks[start].end_ms < self.mint {
            start += 1;
        }
        if start >= chunks.len() || chunks[start].start_ms > self.maxt {
            return Ok(false);
        }
        let mut end = start + 1;
        let mut group_end = chunks[start].end_ms;
        while end < chunks.len() && chunks[end].start_ms <= group_end {
            group_end = group_end.max(chunks[end].end_ms);
            end += 1;
        }
        self.next_chunk = end;
        if end - start == 1 {
            let chunk = &chunks[start];
            self.current = Some((XorIterator::new(&chunk.data), chunk));
            return Ok(true);
        }
        self.merged = self.merge_group(&chunks[start..end])?.into_iter();
        Ok(true)
    }

    /// Decodes overlapping chunks within the range and merges them by
    /// timestamp (for equal timestamps the earlier chunk in sort order
    /// wins). A corrupt chunk is left out when a chunk of another replica
    /// in the group decoded: that replica holds the same time span.
    fn merge_group(&self, group: &[SourceChunk]) -> Result<Vec<(i64, f64)>, StorageError> {
        let mut samples: Vec<(i64, f64)> = Vec::new();
        let mut good_replicas: Vec<usize> = Vec::new();
        let mut corrupt: Vec<(&SourceChunk, String)> = Vec::new();
        for chunk in group {
            let mut it = XorIterator::new(&chunk.data);
            let before = samples.len();
            for (t, v) in it.by_ref() {
                if t > self.maxt {
                    break;
                }
                if t >= self.mint {
                    samples.push((t, v));
                }
            }
            match it.err() {
                Some(e) => {
                    samples.truncate(before);
                    corrupt.push((chunk, e.to_string()));
                }
                None => good_replicas.push(chunk.replica),
            }
        }
        for (chunk, e) in corrupt {
            if good_replicas.iter().any(|r| *r != chunk.replica) {
                tracing::warn!(
                    start_ms = chunk.start_ms,
                    end_ms = chunk.end_ms,
                    error = %e,
                    "corrupt chunk left out, another replica holds its time span"
                );
                continue;
            }
            return Err(self.source.corrupt(chunk, e));
        }
        samples.sort_by_key(|s| s.0);
        samples.dedup_by_key(|s| s.0);
        Ok(samples)
    }
}

impl Iterator for ChunkIter<'_> {
    type Item = Result<(i64, f64), StorageError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        loop {
            if let Some(s) = self.merged.next() {
                return Some(Ok(s));
            }
            if let Some((it, chunk)) = self.current.as_mut() {
                match it.next() {
                    Some((t, _)) if t > self.maxt => self.current = None,
                    Some((t, _)) if t < self.mint => {}
                    Some(s) => return Some(Ok(s)),
                    None => {
                        if let Some(e) = it.err() {
                            self.failed = true;
                            return Some(Err(self.source.corrupt(chunk, e)));
                        }
                        self.current = None;
                    }
                }
                continue;
            }
            match self.next_group() {
                Ok(true) => {}
                Ok(false) => return None,
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

/// Collects the series of several replicas' answers, keeping each distinct
/// chunk of a series once.
///
/// Answers are gathered as they come and sorted by labels once at the end
/// ([`strata_model::sorted_by_labels`]); a series' entries from several
/// replicas are then neighbours and merge without a map of label sets.
pub struct SeriesMerger {
    replicas: Arc<Vec<String>>,
    entries: Vec<(Labels, Vec<SourceChunk>)>,
}

impl SeriesMerger {
    /// `replicas` names the sources (`ingester <id>`, the long-term store)
    /// in the order their answers are added.
    pub fn new(replicas: Vec<String>) -> Self {
        Self {
            replicas: Arc::new(replicas),
            entries: Vec::new(),
        }
    }

    /// Adds one replica's chunks of a series. Unknown encodings are errors
    /// (checked here; the data itself is only decoded when read).
    pub fn add(
        &mut self,
        replica: usize,
        labels: Labels,
        chunks: Vec<Chunk>,
    ) -> Result<(), String> {
        if let Some(c) = chunks
            .iter()
            .find(|c| c.encoding != u32::from(ENCODING_XOR))
        {
            return Err(format!(
                "series {labels}: unsupported chunk encoding {}",
                c.encoding
            ));
        }
        let chunks = chunks
            .into_iter()
            .map(|c| SourceChunk {
                start_ms: c.start_ms,
                end_ms: c.end_ms,
                data: c.data,
                replica,
            })
            .collect();
        self.entries.push((labels, chunks));
        Ok(())
    }

    /// Entries added so far (a series counts once per replica).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The merged series, sorted by labels; series without chunks are left
    /// out.
    pub fn finish(self) -> Vec<StoredSeries> {
        let sorted = strata_model::sorted_by_labels(self.entries, |e| &e.0);
        let mut out: Vec<StoredSeries> = Vec::with_capacity(sorted.len());
        let mut pending: Option<(Labels, Vec<SourceChunk>)> = None;
        for (labels, chunks) in sorted {
            match &mut pending {
                Some((held, held_chunks)) if *held == labels => held_chunks.extend(chunks),
                _ => {
                    if let Some(done) = pending.replace((labels, chunks)) {
                        push_merged(&mut out, done, &self.replicas);
                    }
                }
            }
        }
        if let Some(done) = pending {
            push_merged(&mut out, done, &self.replicas);
        }
        out
    }
}

fn push_merged(
    out: &mut Vec<StoredSeries>,
    (labels, chunks): (Labels, Vec<SourceChunk>),
    replicas: &Arc<Vec<String>>,
) {
    let chunks = distinct_sorted(chunks);
    if !chunks.is_empty() {
        out.push(StoredSeries {
            labels,
            source: Arc::new(ChunkSource {
                chunks,
                replicas: replicas.clone(),
            }),
        });
    }
}

/// Chunks sorted by time; identical chunks of several replicas once (the
/// first replica's).
fn distinct_sorted(mut chunks: Vec<SourceChunk>) -> Vec<SourceChunk> {
    if chunks.is_sorted_by_key(|c| (c.start_ms, c.end_ms, c.replica)) {
        if chunks
            .windows(2)
            .all(|w| w[0].start_ms != w[1].start_ms || w[0].end_ms != w[1].end_ms)
        {
            return chunks;
        }
    } else {
        chunks.sort_by_key(|c| (c.start_ms, c.end_ms, c.replica));
    }
    chunks.dedup_by(|b, a| a.start_ms == b.start_ms && a.end_ms == b.end_ms && a.data == b.data);
    chunks
}

/// Reads a stored series over `[mint, maxt]` into memory.
pub fn read_all(
    series: &StoredSeries,
    mint: i64,
    maxt: i64,
) -> Result<Vec<(i64, f64)>, StorageError> {
    series.source.samples(mint, maxt).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_chunk::XorChunk;

    fn chunk(samples: &[(i64, f64)]) -> Chunk {
        let mut c = XorChunk::new();
        for &(t, v) in samples {
            c.append(t, v);
        }
        Chunk {
            start_ms: samples.first().map(|s| s.0).unwrap_or(0),
            end_ms: samples.last().map(|s| s.0).unwrap_or(0),
            encoding: 1,
            data: Bytes::from(c.into_bytes()),
        }
    }

    fn merged(replicas: Vec<(Labels, Vec<Chunk>)>) -> Vec<StoredSeries> {
        let names = (0..replicas.len())
            .map(|i| format!("ingester ing-{i}"))
            .collect();
        let mut m = SeriesMerger::new(names);
        for (i, (labels, chunks)) in replicas.into_iter().enumerate() {
            m.add(i, labels, chunks).unwrap();
        }
        m.finish()
    }

    #[test]
    fn one_source_is_sorted_and_a_repeated_series_merged() {
        let name = |n: &str| Labels::from_pairs([("__name__", n)]);
        let out = merged(vec![
            (name("b"), vec![chunk(&[(1, 1.0)])]),
            (name("a"), vec![chunk(&[(1, 1.0), (2, 2.0)])]),
            (name("b"), vec![chunk(&[(3, 3.0)]), chunk(&[(1, 1.0)])]),
            (name("c"), vec![]),
        ]);
        let labels: Vec<&Labels> = out.iter().map(|s| &s.labels).collect();
        assert_eq!(labels, [&name("a"), &name("b")]);
        assert_eq!(read_all(&out[0], 0, 10).unwrap(), [(1, 1.0), (2, 2.0)]);
        assert_eq!(read_all(&out[1], 0, 10).unwrap(), [(1, 1.0), (3, 3.0)]);
    }

    fn one(chunks: Vec<Chunk>) -> StoredSeries {
        let mut out = merged(vec![(Labels::from_pairs([("__name__", "x")]), chunks)]);
        assert_eq!(out.len(), 1);
        out.remove(0)
    }

    #[test]
    fn reads_only_the_range_asked_for() {
        let s = one(vec![
            chunk(&[(1, 1.0), (2, 2.0)]),
            chunk(&[(3, 3.0), (4, 4.0)]),
        ]);
        assert_eq!(read_all(&s, 2, 3).unwrap(), vec![(2, 2.0), (3, 3.0)]);
        assert_eq!(read_all(&s, i64::MIN, i64::MAX).unwrap().len(), 4);
        assert!(read_all(&s, 10, 20).unwrap().is_empty());
        assert!(read_all(&s, -5, 0).unwrap().is_empty());
        // Reading stops at the range's end: a corrupt tail after it is
        // never reached.
        let samples: Vec<(i64, f64)> = (1..=20).map(|i| (i * 10, i as f64 * 1.5)).collect();
        let mut bad_tail = chunk(&samples);
        let len = bad_tail.data.len();
        bad_tail.data = bad_tail.data.slice(..len - 1);
        let s = one(vec![bad_tail]);
        assert_eq!(read_all(&s, 0, 30).unwrap(), samples[..3].to_vec());
        assert!(read_all(&s, 0, 1000).is_err());
    }

    #[test]
    fn overlapping_chunks_are_sorted_and_deduplicated() {
        let s = one(vec![
            chunk(&[(3, 3.0), (5, 5.0)]),
            chunk(&[(1, 1.0), (3, 9.0)]),
        ]);
        assert_eq!(
            read_all(&s, i64::MIN, i64::MAX).unwrap(),
            vec![(1, 1.0), (3, 9.0), (5, 5.0)]
        );
    }

    #[test]
    fn corrupt_chunks_are_errors_never_panics() {
        let good = chunk(&[(1, 1.0), (2, 2.0), (3, 3.0)]);
        let mut truncated = good.clone();
        truncated.data = good.data.slice(..good.data.len() - 3);
        let err = read_all(&one(vec![truncated]), i64::MIN, i64::MAX).unwrap_err();
        assert!(
            err.to_string()
                .contains("corrupt chunk from ingester ing-0"),
            "{err}"
        );
        for data in [&[0u8][..], &[0xff, 0xff, 1, 2, 3], &[]] {
            let mut c = good.clone();
            c.data = Bytes::copy_from_slice(data);
            assert!(read_all(&one(vec![c]), i64::MIN, i64::MAX).is_err());
        }
        let mut other = good;
        other.encoding = 2;
        let mut m = SeriesMerger::new(vec!["ing-0".into()]);
        let err = m
            .add(0, Labels::from_pairs([("__name__", "x")]), vec![other])
            .unwrap_err();
        assert!(err.ends_with("unsupported chunk encoding 2"), "{err}");
    }

    #[test]
    fn identical_replicas_are_kept_once() {
        let l = Labels::from_pairs([("__name__", "up"), ("job", "a")]);
        let c = chunk(&[(1, 1.0), (2, 2.0), (3, 3.0)]);
        let names = vec!["a".into(), "b".into(), "c".into()];
        let mut m = SeriesMerger::new(names);
        for r in 0..3 {
            m.add(r, l.clone(), vec![c.clone()]).unwrap();
        }
        let all: Vec<SourceChunk> = m.entries.iter().flat_map(|e| e.1.clone()).collect();
        let kept = distinct_sorted(all);
        assert_eq!(kept.len(), 1, "three identical replicas kept once");
        assert_eq!(kept[0].replica, 0);
        let out = m.finish();
        assert_eq!(out.len(), 1);
        assert_eq!(
            read_all(&out[0], i64::MIN, i64::MAX).unwrap(),
            vec![(1, 1.0), (2, 2.0), (3, 3.0)]
        );
    }

    #[test]
    fn differing_replicas_merge_by_timestamp() {
        let up_a = Labels::from_pairs([("__name__", "up"), ("job", "a")]);
        let up_b = Labels::from_pairs([("__name__", "up"), ("job", "b")]);
        // Three replicas of job=a; one missed a sample, one has an extra.
        let out = merged(vec![
            (up_a.clone(), vec![chunk(&[(1, 1.0), (2, 2.0), (3, 3.0)])]),
            (up_a.clone(), vec![chunk(&[(1, 1.0), (3, 3.0)])]),
            (
                up_a.clone(),
                vec![chunk(&[(1, 1.0), (2, 2.0), (3, 3.0), (4, 4.0)])],
            ),
        ]);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].labels, up_a);
        assert_eq!(
            read_all(&out[0], i64::MIN, i64::MAX).unwrap(),
            vec![(1, 1.0), (2, 2.0), (3, 3.0), (4, 4.0)]
        );
        assert_eq!(read_all(&out[0], 2, 3).unwrap(), vec![(2, 2.0), (3, 3.0)]);
        // Series are sorted by labels; one without chunks is left out.
        let out = merged(vec![
            (up_b.clone(), vec![chunk(&[(1, 10.0)])]),
            (up_a.clone(), vec![chunk(&[(1, 1.0)])]),
            (Labels::from_pairs([("__name__", "empty")]), vec![]),
        ]);
        let labels: Vec<&Labels> = out.iter().map(|s| &s.labels).collect();
        assert_eq!(labels, [&up_a, &up_b]);
    }

    #[test]
    fn a_corrupt_replica_is_left_out_when_another_covers_it() {
        let l = Labels::from_pairs([("__name__", "m")]);
        let good = chunk(&[(1000, 1.0), (2000, 2.0)]);
        let corrupt = Chunk {
            start_ms: 0,
            end_ms: i64::MAX,
            encoding: 1,
            data: Bytes::from_static(&[0x00, 0x05, 0xff, 0x01]),
        };
        let out = merged(vec![
            (l.clone(), vec![good]),
            (l.clone(), vec![corrupt.clone()]),
        ]);
        assert_eq!(
            read_all(&out[0], i64::MIN, i64::MAX).unwrap(),
            vec![(1000, 1.0), (2000, 2.0)]
        );
        // Only corrupt replicas: an error naming the problem.
        let out = merged(vec![(l.clone(), vec![corrupt.clone()]), (l, vec![corrupt])]);
        let err = read_all(&out[0], i64::MIN, i64::MAX).unwrap_err();
        assert!(err.to_string().contains("corrupt chunk"), "{err}");
    }

    #[test]
    fn stale_markers_survive_merging() {
        let stale = f64::from_bits(strata_model::STALE_NAN_BITS);
        let l = Labels::from_pairs([("__name__", "x")]);
        let out = merged(vec![
            (l.clone(), vec![chunk(&[(1, 1.0), (2, stale)])]),
            (l, vec![chunk(&[(1, 1.0), (2, stale)])]),
        ]);
        let samples = read_all(&out[0], i64::MIN, i64::MAX).unwrap();
        assert_eq!(samples.len(), 2);
        assert!(strata_model::is_stale_nan(samples[1].1));
    }
}
