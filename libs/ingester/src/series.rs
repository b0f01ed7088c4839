use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use strata_chunk::XorChunk;

/// Encoding byte of a Prometheus XOR float chunk (as in Prometheus's
/// chunk segment files and the `Chunk.encoding` field of the gRPC API).
pub const CHUNK_ENCODING_XOR: u32 = 1;

/// Interned label pair; every string is shared with the tenant's index.
pub(crate) type LabelPair = (Arc<str>, Arc<str>);

/// An immutable chunk of one series, as served to queriers.
#[derive(Clone, Debug)]
pub struct ChunkData {
    pub min_time: i64,
    pub max_time: i64,
    pub encoding: u32,
    pub data: Bytes,
}

/// Why a sample was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AppendError {
    /// Older than the newest sample of its series.
    OutOfOrder,
    /// Same timestamp as the newest sample but another value.
    DuplicateTimestamp,
}

impl AppendError {
    pub(crate) fn reason(self) -> &'static str {
        match self {
            AppendError::OutOfOrder => "sample_out_of_order",
            AppendError::DuplicateTimestamp => "new_value_for_timestamp",
        }
    }
}

pub(crate) struct Series {
    pub(crate) labels: Box<[LabelPair]>,
    pub(crate) data: Mutex<SeriesData>,
}

pub(crate) struct SeriesData {
    closed: Vec<ChunkData>,
    head: XorChunk,
    head_min_time: i64,
    last_time: i64,
    last_value_bits: u64,
    samples: usize,
}

impl Series {
    pub(crate) fn new(labels: Box<[LabelPair]>) -> Self {
        Self {
            labels,
            data: Mutex::new(SeriesData {
                closed: Vec::new(),
                head: XorChunk::new(),
                head_min_time: i64::MIN,
                last_time: i64::MIN,
                last_value_bits: 0,
                samples: 0,
            }),
        }
    }

    pub(crate) fn labels_equal(&self, other: &[(&str, &str)]) -> bool {
        self.labels.len() == other.len()
            && self
                .labels
                .iter()
                .zip(other)
                .all(|((n, v), (on, ov))| &**n == *on && &**v == *ov)
    }
}

impl SeriesData {
    /// Appends one sample with Prometheus's rules: timestamps must grow;
    /// re-sending the newest sample with the same value is a no-op (`Ok(false)`).
    pub(crate) fn append(
        &mut self,
        t: i64,
        v: f64,
        max_samples: usize,
        max_age_ms: i64,
    ) -> Result<bool, AppendError> {
        if self.samples > 0 {
            if t < self.last_time {
                return Err(AppendError::OutOfOrder);
            }
            if t == self.last_time {
                if v.to_bits() == self.last_value_bits {
                    return Ok(false);
                }
                return Err(AppendError::DuplicateTimestamp);
            }
        }
        let head_samples = self.head.num_samples() as usize;
        if head_samples > 0
            && (head_samples >= max_samples || t.saturating_sub(self.head_min_time) >= max_age_ms)
        {
            self.cut_head();
        }
        if self.head.num_samples() == 0 {
            self.head_min_time = t;
        }
        self.head.append(t, v);
        self.last_time = t;
        self.last_value_bits = v.to_bits();
        self.samples += 1;
        Ok(true)
    }

    /// Closes the open chunk when its first sample is at least `max_age_ms`
    /// older than the wall-clock time `now_ms` (Cortex's max-chunk-age
    /// check). [`SeriesData::append`] only cuts by age when a new sample
    /// arrives; this closes the open chunk of a series that stopped
    /// receiving samples. Returns whether a chunk was closed.
    ///
    /// For a sender with current timestamps this cuts where `append` would:
    /// any sample it gets later has `t >= now_ms`, which `append` would put
    /// into a new chunk anyway.
    pub(crate) fn cut_head_if_aged(&mut self, now_ms: i64, max_age_ms: i64) -> bool {
        if self.head.num_samples() == 0 || now_ms.saturating_sub(self.head_min_time) < max_age_ms {
            return false;
        }
        self.cut_head();
        true
    }

    fn cut_head(&mut self) {
        let head = std::mem::replace(&mut self.head, XorChunk::new());
        self.closed.push(ChunkData {
            min_time: self.head_min_time,
            max_time: self.last_time,
            encoding: CHUNK_ENCODING_XOR,
            data: Bytes::copy_from_slice(head.bytes()),
        });
    }

    /// Chunks holding samples in `[start, end]`, oldest first. The open
    /// chunk is copied, closed ones are shared.
    pub(crate) fn chunks_in(&self, start: i64, end: i64) -> Vec<ChunkData> {
        let mut out: Vec<ChunkData> = self
            .closed
            .iter()
            .filter(|c| c.max_time >= start && c.min_time <= end)
            .cloned()
            .collect();
        if self.head.num_samples() > 0 && self.last_time >= start && self.head_min_time <= end {
            out.push(ChunkData {
                min_time: self.head_min_time,
                max_time: self.last_time,
                encoding: CHUNK_ENCODING_XOR,
                data: Bytes::copy_from_slice(self.head.bytes()),
            });
        }
        out
    }

    pub(crate) fn overlaps(&self, start: i64, end: i64) -> bool {
        if self.samples == 0 {
            return false;
        }
        let min = self
            .closed
            .first()
            .map(|c| c.min_time)
            .unwrap_or(self.head_min_time);
        min <= end && self.last_time >= start
    }

    #[cfg(test)]
    pub(crate) fn closed_chunks(&self) -> usize {
        self.closed.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> SeriesData {
        Series::new(Box::new([])).data.into_inner()
    }

    #[test]
    fn rejects_out_of_order_and_duplicates() {
        let mut d = data();
        assert_eq!(d.append(10, 1.0, 120, i64::MAX), Ok(true));
        assert_eq!(d.append(10, 1.0, 120, i64::MAX), Ok(false));
        assert_eq!(
            d.append(10, 2.0, 120, i64::MAX),
            Err(AppendError::DuplicateTimestamp)
        );
        assert_eq!(
            d.append(5, 2.0, 120, i64::MAX),
            Err(AppendError::OutOfOrder)
        );
        assert_eq!(d.append(11, 2.0, 120, i64::MAX), Ok(true));
    }

    #[test]
    fn sweep_cuts_an_idle_head_after_the_age_and_an_active_one_not_early() {
        let age = 60_000;
        let t0 = 1_700_000_000_000;

        // Idle: one sample at t0, then nothing.
        let mut idle = data();
        idle.append(t0, 1.0, 120, age).unwrap();
        assert!(!idle.cut_head_if_aged(t0 + age - 1, age), "cut early");
        assert_eq!(idle.closed_chunks(), 0);
        assert!(idle.cut_head_if_aged(t0 + age, age));
        assert_eq!(idle.closed_chunks(), 1);
        assert!(
            !idle.cut_head_if_aged(t0 + 10 * age, age),
            "an empty head is never cut"
        );
        assert_eq!(idle.closed_chunks(), 1);
        let chunks = idle.chunks_in(i64::MIN, i64::MAX);
        assert_eq!(chunks.len(), 1);
        assert_eq!((chunks[0].min_time, chunks[0].max_time), (t0, t0));
        // The next sample opens a new chunk; nothing is lost.
        idle.append(t0 + 2 * age, 2.0, 120, age).unwrap();
        let chunks = idle.chunks_in(i64::MIN, i64::MAX);
        assert_eq!(chunks.len(), 2);
        assert_eq!(chunks[1].min_time, t0 + 2 * age);

        // Active: a sample every 15 s; the sweep runs every 10 s of wall
        // clock and never cuts a head younger than the age, so the chunks
        // are exactly the ones `append` cuts by sample time.
        let mut active = data();
        let mut by_append = data();
        let mut now = t0;
        let mut next_sample = t0;
        while now < t0 + 5 * age {
            if now >= next_sample {
                active.append(next_sample, 1.0, 120, age).unwrap();
                by_append.append(next_sample, 1.0, 120, age).unwrap();
                next_sample += 15_000;
            }
            active.cut_head_if_aged(now, age);
            now += 10_000;
        }
        let swept: Vec<(i64, i64)> = active
            .chunks_in(i64::MIN, i64::MAX)
            .iter()
            .map(|c| (c.min_time, c.max_time))
            .collect();
        let appended: Vec<(i64, i64)> = by_append
            .chunks_in(i64::MIN, i64::MAX)
            .iter()
            .map(|c| (c.min_time, c.max_time))
            .collect();
        assert_eq!(swept, appended);
        assert!(swept.iter().all(|(min, max)| max - min < age), "{swept:?}");
    }

    #[test]
    fn cuts_by_count_and_age() {
        let mut d = data();
        for t in 0..250 {
            d.append(t, t as f64, 120, i64::MAX).unwrap();
        }
        assert_eq!(d.closed_chunks(), 2);
        let chunks = d.chunks_in(i64::MIN, i64::MAX);
        assert_eq!(chunks.len(), 3);
        assert_eq!((chunks[0].min_time, chunks[0].max_time), (0, 119));
        assert_eq!((chunks[2].min_time, chunks[2].max_time), (240, 249));
        let samples: Vec<(i64, f64)> = chunks
            .iter()
            .flat_map(|c| strata_chunk::XorIterator::new(&c.data).collect::<Vec<_>>())
            .collect();
        assert_eq!(samples.len(), 250);

        let mut d = data();
        for t in 0..10 {
            d.append(t * 1000, 1.0, 120, 3000).unwrap();
        }
        assert_eq!(d.closed_chunks(), 3);
        assert_eq!(d.chunks_in(3500, 3600).len(), 1);
    }
}
