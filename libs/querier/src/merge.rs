//! Chunk decoding and the merging of replicas.
//!
//! Every series lives on several ingesters. Replicas normally hold the same
//! samples, but one may have missed some (it was down, or a push reached only
//! a quorum), so series with the same labels are merged by timestamp: the
//! union of their samples, each timestamp once.

use std::collections::HashMap;

use strata_chunk::{XorIterator, ENCODING_XOR};
use strata_model::Labels;
use strata_promql::Series;
use strata_proto::ingester::Chunk;

/// Decodes the chunks of one series into samples in `[start, end]`, sorted
/// by timestamp with each timestamp once. Corrupt chunks and unknown
/// encodings are errors, never panics.
pub fn decode_chunks(chunks: &[Chunk], start: i64, end: i64) -> Result<Vec<(i64, f64)>, String> {
    let mut samples: Vec<(i64, f64)> = Vec::new();
    let mut sorted = true;
    for chunk in chunks {
        if chunk.encoding != u32::from(ENCODING_XOR) {
            return Err(format!("unsupported chunk encoding {}", chunk.encoding));
        }
        if chunk.end_ms < start || chunk.start_ms > end {
            continue;
        }
        let mut it = XorIterator::new(&chunk.data);
        for (t, v) in it.by_ref() {
            if t < start || t > end {
                continue;
            }
            if let Some(&(last, _)) = samples.last() {
                if t <= last {
                    sorted = false;
                }
            }
            samples.push((t, v));
        }
        if let Some(e) = it.err() {
            return Err(format!("corrupt chunk: {e}"));
        }
    }
    if !sorted {
        // Overlapping chunks: order by time (stable, so the first of equal
        // timestamps wins) and drop repeats.
        samples.sort_by_key(|s| s.0);
        samples.dedup_by_key(|s| s.0);
    }
    Ok(samples)
}

/// Merges two sample lists sorted by timestamp: the union by timestamp.
/// Where both have a timestamp, `a`'s sample is kept.
pub fn merge_samples(a: Vec<(i64, f64)>, b: Vec<(i64, f64)>) -> Vec<(i64, f64)> {
    if b.is_empty() {
        return a;
    }
    if a.is_empty() {
        return b;
    }
    // Identical replicas are the common case: nothing to do.
    if a.len() == b.len() && a.iter().zip(&b).all(|(x, y)| x.0 == y.0) {
        return a;
    }
    let mut out = Vec::with_capacity(a.len().max(b.len()));
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].0.cmp(&b[j].0) {
            std::cmp::Ordering::Less => {
                out.push(a[i]);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                out.push(b[j]);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

/// Collects series from several replicas, merging those with equal labels.
#[derive(Default)]
pub struct SeriesMerger {
    series: HashMap<Labels, Vec<(i64, f64)>>,
}

impl SeriesMerger {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, labels: Labels, samples: Vec<(i64, f64)>) {
        match self.series.entry(labels) {
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(samples);
            }
            std::collections::hash_map::Entry::Occupied(mut e) => {
                let current = std::mem::take(e.get_mut());
                *e.get_mut() = merge_samples(current, samples);
            }
        }
    }

    /// Samples held so far.
    pub fn samples(&self) -> usize {
        self.series.values().map(Vec::len).sum()
    }

    /// The merged series, sorted by labels; series without samples are
    /// left out.
    pub fn finish(self) -> Vec<Series> {
        let mut out: Vec<Series> = self
            .series
            .into_iter()
            .filter(|(_, samples)| !samples.is_empty())
            .map(|(labels, samples)| Series { labels, samples })
            .collect();
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
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

    #[test]
    fn decodes_within_range() {
        let chunks = [chunk(&[(1, 1.0), (2, 2.0)]), chunk(&[(3, 3.0), (4, 4.0)])];
        assert_eq!(
            decode_chunks(&chunks, 2, 3).unwrap(),
            vec![(2, 2.0), (3, 3.0)]
        );
        assert_eq!(decode_chunks(&chunks, i64::MIN, i64::MAX).unwrap().len(), 4);
        assert!(decode_chunks(&chunks, 10, 20).unwrap().is_empty());
    }

    #[test]
    fn overlapping_chunks_are_sorted_and_deduplicated() {
        let chunks = [chunk(&[(3, 3.0), (5, 5.0)]), chunk(&[(1, 1.0), (3, 9.0)])];
        assert_eq!(
            decode_chunks(&chunks, i64::MIN, i64::MAX).unwrap(),
            vec![(1, 1.0), (3, 3.0), (5, 5.0)]
        );
    }

    #[test]
    fn corrupt_chunks_are_errors() {
        let good = chunk(&[(1, 1.0), (2, 2.0), (3, 3.0)]);
        let mut truncated = good.clone();
        truncated.data = good.data.slice(..good.data.len() - 3);
        let err = decode_chunks(&[truncated], i64::MIN, i64::MAX).unwrap_err();
        assert!(err.starts_with("corrupt chunk"), "{err}");
        let mut empty = good.clone();
        empty.data = Bytes::from_static(&[0]);
        assert!(decode_chunks(&[empty], i64::MIN, i64::MAX).is_err());
        let mut garbage = good.clone();
        garbage.data = Bytes::from_static(&[0xff, 0xff, 1, 2, 3]);
        assert!(decode_chunks(&[garbage], i64::MIN, i64::MAX).is_err());
        let mut other = good;
        other.encoding = 2;
        assert_eq!(
            decode_chunks(&[other], i64::MIN, i64::MAX).unwrap_err(),
            "unsupported chunk encoding 2"
        );
    }

    #[test]
    fn merges_by_timestamp() {
        let a = vec![(1, 1.0), (2, 2.0), (4, 4.0)];
        let b = vec![(2, 2.0), (3, 3.0), (4, 4.0), (5, 5.0)];
        assert_eq!(
            merge_samples(a.clone(), b.clone()),
            vec![(1, 1.0), (2, 2.0), (3, 3.0), (4, 4.0), (5, 5.0)]
        );
        assert_eq!(
            merge_samples(b, a),
            merge_samples(vec![(1, 1.0)], vec![(2, 2.0), (3, 3.0), (4, 4.0), (5, 5.0)])
        );
        assert_eq!(merge_samples(vec![], vec![(1, 1.0)]), vec![(1, 1.0)]);
        assert_eq!(merge_samples(vec![(1, 1.0)], vec![]), vec![(1, 1.0)]);
        // Equal timestamps keep the first list's value.
        assert_eq!(
            merge_samples(vec![(1, 1.0)], vec![(1, 7.0)]),
            vec![(1, 1.0)]
        );
    }

    #[test]
    fn replicas_merge_into_one_series() {
        let up_a = Labels::from_pairs([("__name__", "up"), ("job", "a")]);
        let up_b = Labels::from_pairs([("__name__", "up"), ("job", "b")]);
        let mut m = SeriesMerger::new();
        // Three replicas of job=a; one missed a sample, one has an extra.
        m.add(up_a.clone(), vec![(1, 1.0), (2, 2.0), (3, 3.0)]);
        m.add(up_a.clone(), vec![(1, 1.0), (3, 3.0)]);
        m.add(up_a.clone(), vec![(1, 1.0), (2, 2.0), (3, 3.0), (4, 4.0)]);
        m.add(up_b.clone(), vec![(1, 10.0)]);
        m.add(up_b.clone(), vec![(1, 10.0)]);
        m.add(Labels::from_pairs([("__name__", "empty")]), vec![]);
        assert_eq!(m.samples(), 5);
        let out = m.finish();
        assert_eq!(
            out,
            vec![
                Series {
                    labels: up_a,
                    samples: vec![(1, 1.0), (2, 2.0), (3, 3.0), (4, 4.0)]
                },
                Series {
                    labels: up_b,
                    samples: vec![(1, 10.0)]
                },
            ]
        );
    }

    #[test]
    fn stale_markers_survive_merging() {
        let stale = f64::from_bits(strata_model::STALE_NAN_BITS);
        let l = Labels::from_pairs([("__name__", "x")]);
        let mut m = SeriesMerger::new();
        m.add(l.clone(), vec![(1, 1.0), (2, stale)]);
        m.add(l, vec![(1, 1.0), (2, stale)]);
        let out = m.finish();
        assert_eq!(out[0].samples.len(), 2);
        assert!(strata_model::is_stale_nan(out[0].samples[1].1));
    }
}
