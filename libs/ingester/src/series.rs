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
