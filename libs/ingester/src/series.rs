use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use strata_chunk::XorChunk;

/// Encoding byte of a Prometheus XOR float chunk (as in Prometheus's
/// chunk segment files and the `Chunk.encoding` field of the gRPC API).
pub const CHUNK_ENCODING_XOR: u32 = 1;

/// Interned label pair; every string is shared with the tenant's index.
pub(crate) type LabelPair = (Arc<str>, Arc<str>);

/// Stable identity of a series within its tenant; never reused while the
/// ingester runs.
pub(crate) type SeriesId = u32;

/// An immutable chunk of one series, as served to queriers.
#[derive(Clone, Debug, PartialEq)]
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

/// What appending one sample did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Appended {
    /// False for an exact repeat of the newest sample (ignored).
    pub(crate) added: bool,
    /// Bytes of the chunk the sample closed (0 when none was cut).
    pub(crate) cut_bytes: usize,
}

/// Index of the aligned window holding `t`: chunk boundaries derive from
/// sample time alone, so replicas that got the same samples cut the same
/// chunks whatever the order and time they arrived in.
pub fn window_of(t: i64, window_ms: i64) -> i64 {
    t.div_euclid(window_ms.max(1))
}

/// End (exclusive) of the aligned window holding `t`.
pub fn window_end(t: i64, window_ms: i64) -> i64 {
    let w = window_ms.max(1);
    window_of(t, w).saturating_add(1).saturating_mul(w)
}

pub(crate) struct Series {
    pub(crate) id: SeriesId,
    /// XXH3 of the sorted labels, as the write path computes it.
    pub(crate) fingerprint: u64,
    pub(crate) labels: Box<[LabelPair]>,
    pub(crate) data: Mutex<SeriesData>,
    /// Whether this process logged the series' labels to the write-ahead
    /// log yet (its samples are logged by reference after that).
    pub(crate) wal_logged: std::sync::atomic::AtomicBool,
}

/// A closed chunk and whether it is in long-term storage yet.
#[derive(Clone, Debug)]
pub(crate) struct ClosedChunk {
    pub(crate) chunk: ChunkData,
    /// Wall-clock time (Unix ms) it was flushed (or found stored by another
    /// replica); `None` while only this ingester's memory holds it.
    pub(crate) flushed_at_ms: Option<i64>,
    /// Wall-clock time (Unix ms) it was closed. Flush turns are counted from
    /// when a chunk became flushable, so replicas keep their order even for
    /// windows that ended long ago (old data, a backlog).
    pub(crate) closed_at_ms: i64,
}

pub(crate) struct SeriesData {
    /// Closed chunks, sorted by time and disjoint (samples arrive in order).
    closed: Vec<ClosedChunk>,
    head: XorChunk,
    head_min_time: i64,
    last_time: i64,
    last_value_bits: u64,
    samples: usize,
    /// Wall-clock time (Unix ms) of the last appended sample.
    pub(crate) last_append_ms: i64,
    /// Set when the series was taken out of its tenant (it held nothing);
    /// a push that found it before must look the series up again.
    pub(crate) removed: bool,
}

impl Series {
    pub(crate) fn new(id: SeriesId, fingerprint: u64, labels: Box<[LabelPair]>) -> Self {
        Self {
            id,
            fingerprint,
            labels,
            wal_logged: std::sync::atomic::AtomicBool::new(false),
            data: Mutex::new(SeriesData {
                closed: Vec::new(),
                head: XorChunk::new(),
                head_min_time: i64::MIN,
                last_time: i64::MIN,
                last_value_bits: 0,
                samples: 0,
                last_append_ms: 0,
                removed: false,
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
    /// re-sending the newest sample with the same value is a no-op.
    ///
    /// The open chunk is closed first when it holds `max_samples` samples or
    /// when the sample falls into a later aligned window of `window_ms`.
    pub(crate) fn append(
        &mut self,
        t: i64,
        v: f64,
        max_samples: usize,
        window_ms: i64,
        now_ms: i64,
    ) -> Result<Appended, AppendError> {
        if self.samples > 0 {
            if t < self.last_time {
                return Err(AppendError::OutOfOrder);
            }
            if t == self.last_time {
                if v.to_bits() == self.last_value_bits {
                    return Ok(Appended::default());
                }
                return Err(AppendError::DuplicateTimestamp);
            }
        }
        let mut cut_bytes = 0;
        let head_samples = self.head.num_samples() as usize;
        if head_samples > 0
            && (head_samples >= max_samples
                || window_of(t, window_ms) != window_of(self.head_min_time, window_ms))
        {
            cut_bytes = self.cut_head(now_ms);
        }
        if self.head.num_samples() == 0 {
            self.head_min_time = t;
        }
        self.head.append(t, v);
        self.last_time = t;
        self.last_value_bits = v.to_bits();
        self.samples += 1;
        self.last_append_ms = now_ms;
        Ok(Appended {
            added: true,
            cut_bytes,
        })
    }

    /// Closes the open chunk once the wall clock `now_ms` has passed the end
    /// of its aligned window: a sample arriving later for a later window
    /// would have closed it anyway. Returns the closed chunk's bytes (0 when
    /// nothing was cut).
    pub(crate) fn cut_head_if_window_over(&mut self, now_ms: i64, window_ms: i64) -> usize {
        if self.head.num_samples() == 0 || now_ms < window_end(self.head_min_time, window_ms) {
            return 0;
        }
        self.cut_head(now_ms)
    }

    /// Closes the open chunk whatever its age (a flush of everything, as on
    /// shutdown). Returns its bytes (0 when the head was empty).
    pub(crate) fn force_cut(&mut self, now_ms: i64) -> usize {
        if self.head.num_samples() == 0 {
            return 0;
        }
        self.cut_head(now_ms)
    }

    fn cut_head(&mut self, now_ms: i64) -> usize {
        let head = std::mem::replace(&mut self.head, XorChunk::new());
        let data = Bytes::copy_from_slice(head.bytes());
        let len = data.len();
        self.closed.push(ClosedChunk {
            chunk: ChunkData {
                min_time: self.head_min_time,
                max_time: self.last_time,
                encoding: CHUNK_ENCODING_XOR,
                data,
            },
            flushed_at_ms: None,
            closed_at_ms: now_ms,
        });
        len
    }

    /// Position of the first closed chunk that may hold samples at or after
    /// `start` (closed chunks are sorted and disjoint).
    fn first_closed_from(&self, start: i64) -> usize {
        self.closed.partition_point(|c| c.chunk.max_time < start)
    }

    /// Chunks holding samples in `[start, end]`, oldest first. The open
    /// chunk is copied, closed ones are shared.
    pub(crate) fn chunks_in(&self, start: i64, end: i64) -> Vec<ChunkData> {
        let from = self.first_closed_from(start);
        let mut out: Vec<ChunkData> = self.closed[from..]
            .iter()
            .take_while(|c| c.chunk.min_time <= end)
            .map(|c| c.chunk.clone())
            .collect();
        if self.last_time >= start && self.head_min_time <= end {
            out.extend(self.head_chunk());
        }
        out
    }

    /// A copy of the open chunk, if it holds samples.
    fn head_chunk(&self) -> Option<ChunkData> {
        (self.head.num_samples() > 0).then(|| ChunkData {
            min_time: self.head_min_time,
            max_time: self.last_time,
            encoding: CHUNK_ENCODING_XOR,
            data: Bytes::copy_from_slice(self.head.bytes()),
        })
    }

    /// Whether the series holds samples in `[start, end]` in memory.
    pub(crate) fn overlaps(&self, start: i64, end: i64) -> bool {
        let min = match self.closed.first() {
            Some(c) => c.chunk.min_time,
            None if self.head.num_samples() > 0 => self.head_min_time,
            None => return false,
        };
        min <= end && self.last_time >= start
    }

    /// Closed chunks not yet in long-term storage that are due at `now_ms`,
    /// oldest first: a chunk is due `delay_ms` after its window ended, and
    /// not before it was closed, plus `wait_ms` (this replica's turn). With
    /// `now_ms == i64::MAX` every unflushed chunk is due.
    pub(crate) fn unflushed(
        &self,
        window_ms: i64,
        now_ms: i64,
        delay_ms: i64,
        wait_ms: i64,
    ) -> Vec<ChunkData> {
        self.closed
            .iter()
            .filter(|c| {
                let due = window_end(c.chunk.min_time, window_ms)
                    .saturating_add(delay_ms)
                    .max(c.closed_at_ms)
                    .saturating_add(wait_ms);
                c.flushed_at_ms.is_none() && (now_ms == i64::MAX || due <= now_ms)
            })
            .map(|c| c.chunk.clone())
            .collect()
    }

    /// Every chunk only this ingester's memory holds: closed unflushed
    /// chunks, then the open one (copied), oldest first.
    pub(crate) fn unstored(&self) -> Vec<ChunkData> {
        let mut out: Vec<ChunkData> = self
            .closed
            .iter()
            .filter(|c| c.flushed_at_ms.is_none())
            .map(|c| c.chunk.clone())
            .collect();
        out.extend(self.head_chunk());
        out
    }

    /// Marks the closed chunks with these (min_time, max_time) flushed at
    /// `now_ms`; returns the bytes that stopped counting as unflushed.
    pub(crate) fn mark_flushed(&mut self, spans: &[(i64, i64)], now_ms: i64) -> usize {
        let mut bytes = 0;
        for c in &mut self.closed {
            if c.flushed_at_ms.is_none()
                && spans
                    .iter()
                    .any(|&(min, max)| c.chunk.min_time == min && c.chunk.max_time == max)
            {
                c.flushed_at_ms = Some(now_ms);
                bytes += c.chunk.data.len();
            }
        }
        bytes
    }

    /// Drops chunks flushed at or before `flushed_before` (their retain
    /// period is over); returns how many.
    pub(crate) fn drop_flushed(&mut self, flushed_before: i64) -> usize {
        let before = self.closed.len();
        self.closed
            .retain(|c| c.flushed_at_ms.is_none_or(|at| at > flushed_before));
        before - self.closed.len()
    }

    /// Bytes of closed chunks only this ingester holds.
    pub(crate) fn unflushed_bytes(&self) -> usize {
        self.closed
            .iter()
            .filter(|c| c.flushed_at_ms.is_none())
            .map(|c| c.chunk.data.len())
            .sum()
    }

    /// True when the series holds nothing (no open or closed chunk) and got
    /// no sample since `idle_since` (wall clock): it can be removed.
    pub(crate) fn is_removable(&self, idle_since: i64) -> bool {
        self.closed.is_empty() && self.head.num_samples() == 0 && self.last_append_ms <= idle_since
    }

    /// Oldest window end among unflushed closed chunks, if any.
    pub(crate) fn oldest_unflushed(&self, window_ms: i64) -> Option<i64> {
        self.closed
            .iter()
            .filter(|c| c.flushed_at_ms.is_none())
            .map(|c| window_end(c.chunk.min_time, window_ms))
            .min()
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
        Series::new(0, 0, Box::new([])).data.into_inner()
    }

    fn spans(chunks: &[ChunkData]) -> Vec<(i64, i64)> {
        chunks.iter().map(|c| (c.min_time, c.max_time)).collect()
    }

    #[test]
    fn rejects_out_of_order_and_duplicates() {
        let mut d = data();
        let added = |a: Result<Appended, AppendError>| a.map(|a| a.added);
        assert_eq!(added(d.append(10, 1.0, 120, i64::MAX, 0)), Ok(true));
        assert_eq!(added(d.append(10, 1.0, 120, i64::MAX, 0)), Ok(false));
        assert_eq!(
            added(d.append(10, 2.0, 120, i64::MAX, 0)),
            Err(AppendError::DuplicateTimestamp)
        );
        assert_eq!(
            added(d.append(5, 2.0, 120, i64::MAX, 0)),
            Err(AppendError::OutOfOrder)
        );
        assert_eq!(added(d.append(11, 2.0, 120, i64::MAX, 0)), Ok(true));
    }

    #[test]
    fn cuts_by_count_and_aligned_window() {
        let mut d = data();
        for t in 0..250 {
            d.append(t, t as f64, 120, i64::MAX, 0).unwrap();
        }
        assert_eq!(d.closed_chunks(), 2);
        let chunks = d.chunks_in(i64::MIN, i64::MAX);
        assert_eq!(spans(&chunks), vec![(0, 119), (120, 239), (240, 249)]);
        let samples: Vec<(i64, f64)> = chunks
            .iter()
            .flat_map(|c| strata_chunk::XorIterator::new(&c.data).collect::<Vec<_>>())
            .collect();
        assert_eq!(samples.len(), 250);

        // Windows of 3 s: [0,3000) [3000,6000) [6000,9000) [9000,...).
        let mut d = data();
        for t in 0..10 {
            d.append(t * 1000, 1.0, 120, 3000, 0).unwrap();
        }
        assert_eq!(d.closed_chunks(), 3);
        assert_eq!(d.chunks_in(3500, 3600).len(), 1);
        // A series starting mid-window is cut at the window's end, not 3 s
        // after its first sample.
        let mut d = data();
        for t in [2500, 2900, 3100, 5900, 6000] {
            d.append(t, 1.0, 120, 3000, 0).unwrap();
        }
        assert_eq!(
            spans(&d.chunks_in(i64::MIN, i64::MAX)),
            vec![(2500, 2900), (3100, 5900), (6000, 6000)]
        );
    }

    #[test]
    fn replicas_with_the_same_samples_cut_identical_chunks() {
        // Same samples, delivered in different batch splits, with different
        // wall clocks and sweeps in between: identical bytes.
        let samples: Vec<(i64, f64)> = (0..1000).map(|i| (i * 7_000 + 13, i as f64)).collect();
        let window = 600_000;
        let mut a = data();
        let mut b = data();
        for (i, (t, v)) in samples.iter().enumerate() {
            a.append(*t, *v, 120, window, i as i64).unwrap();
        }
        for (i, (t, v)) in samples.iter().enumerate() {
            b.append(*t, *v, 120, window, 5_000_000 + i as i64).unwrap();
            // A sweep whose wall clock lags sample time never cuts early.
            b.cut_head_if_window_over(*t, window);
        }
        a.force_cut(0);
        b.force_cut(0);
        assert_eq!(
            a.chunks_in(i64::MIN, i64::MAX),
            b.chunks_in(i64::MIN, i64::MAX)
        );
    }

    #[test]
    fn sweep_cuts_a_head_once_its_window_is_over() {
        let window = 60_000;
        let t0 = 1_700_000_020_000; // 40 s into a window
        let end = window_end(t0, window);
        assert_eq!(end - t0, 20_000);
        let mut idle = data();
        idle.append(t0, 1.0, 120, window, t0).unwrap();
        assert_eq!(idle.cut_head_if_window_over(end - 1, window), 0);
        assert_eq!(idle.closed_chunks(), 0);
        assert!(idle.cut_head_if_window_over(end, window) > 0);
        assert_eq!(idle.closed_chunks(), 1);
        assert_eq!(idle.cut_head_if_window_over(end + 10 * window, window), 0);
        idle.append(end + 5, 2.0, 120, window, end + 5).unwrap();
        assert_eq!(
            spans(&idle.chunks_in(i64::MIN, i64::MAX)),
            vec![(t0, t0), (end + 5, end + 5)]
        );
    }

    #[test]
    fn range_lookup_is_exact_over_many_chunks() {
        let mut d = data();
        for i in 0..5000 {
            d.append(i * 10, 1.0, 7, i64::MAX, 0).unwrap();
        }
        for (start, end) in [(0, 0), (15, 95), (69, 70), (49_990, 60_000), (-5, -1)] {
            let got = d.chunks_in(start, end);
            let expected: Vec<(i64, i64)> = d
                .closed
                .iter()
                .map(|c| (c.chunk.min_time, c.chunk.max_time))
                .chain(std::iter::once((d.head_min_time, d.last_time)))
                .filter(|(min, max)| *max >= start && *min <= end)
                .collect();
            assert_eq!(spans(&got), expected, "[{start}, {end}]");
        }
    }

    #[test]
    fn flush_marks_retain_and_removal() {
        let window = 1000;
        let mut d = data();
        for t in [100, 200, 1100, 2100] {
            d.append(t, 1.0, 120, window, t).unwrap();
        }
        // Two closed chunks: [100,200] in window 0 (closed at 1100),
        // [1100] in window 1 (closed at 2100).
        assert_eq!(spans(&d.unflushed(window, 1100, 0, 0)), vec![(100, 200)]);
        assert!(d.unflushed(window, 1099, 0, 0).is_empty(), "closed at 1100");
        assert!(
            d.unflushed(window, 1100, 101, 0).is_empty(),
            "delay after 1000"
        );
        assert!(d.unflushed(window, 1100, 0, 5).is_empty(), "a later turn");
        assert_eq!(d.unflushed(window, 1105, 0, 5).len(), 1);
        assert_eq!(d.unflushed(window, i64::MAX, 0, 0).len(), 2);
        let before = d.unflushed_bytes();
        let freed = d.mark_flushed(&[(100, 200)], 5000);
        assert!(freed > 0 && d.unflushed_bytes() == before - freed);
        assert!(d.unflushed(window, 1100, 0, 0).is_empty());
        assert_eq!(d.oldest_unflushed(window), Some(2000));
        // Retained until the retain period is over, then dropped.
        assert_eq!(d.drop_flushed(4999), 0);
        assert_eq!(d.drop_flushed(5000), 1);
        assert_eq!(spans(&d.chunks_in(i64::MIN, i64::MAX)).len(), 2);
        assert!(!d.is_removable(i64::MAX), "holds data");
        d.force_cut(6000);
        let all: Vec<(i64, i64)> = spans(&d.unflushed(window, i64::MAX, 0, 0));
        d.mark_flushed(&all, 6000);
        d.drop_flushed(6000);
        assert!(!d.is_removable(2000), "appended at 2100");
        assert!(d.is_removable(2100));
    }
}
