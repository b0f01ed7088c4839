//! Reading chunks and indexes back from an object store.

use std::sync::Arc;

use bytes::Bytes;
use futures::stream::{self, StreamExt};

use crate::error::{FetchError, FormatError};
use crate::format::{verify_chunk, verify_chunk_bytes, ChunkRef, Footer, FOOTER_LEN};
use crate::metrics::ChunkStoreMetrics;
use crate::object_index::ObjectIndex;
use crate::store::ObjectStore;

/// Default largest gap between two chunks that are still read with one request.
pub const DEFAULT_MAX_GAP: u64 = 16 * 1024;
/// Default number of ranged reads in flight for one [`ChunkFetcher::fetch`].
pub const DEFAULT_CONCURRENCY: usize = 16;
/// Coalesced ranges stop growing at this size, so one read never pulls a huge object.
pub const MAX_COALESCED_RANGE: u64 = 8 * 1024 * 1024;
/// [`read_index`] reads this many bytes from the object's end at first: the footer, and for
/// small objects the whole index too.
const INDEX_TAIL_GUESS: u64 = 16 * 1024;

/// Fetches chunks, coalescing neighbours in one object into one ranged read when the gap
/// between them is at most `max_gap` bytes, with a bounded number of reads in flight, and
/// verifying every chunk's checksum.
#[derive(Clone)]
pub struct ChunkFetcher {
    store: Arc<dyn ObjectStore>,
    max_gap: u64,
    concurrency: usize,
    metrics: ChunkStoreMetrics,
}

/// One ranged read and the refs (indexes into the caller's slice) it answers.
struct Span {
    object: Arc<str>,
    start: u64,
    end: u64,
    members: Vec<usize>,
}

impl ChunkFetcher {
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        Self {
            store,
            max_gap: DEFAULT_MAX_GAP,
            concurrency: DEFAULT_CONCURRENCY,
            metrics: ChunkStoreMetrics::default(),
        }
    }

    /// Largest gap (bytes) between two chunks of one object still read with one request.
    pub fn with_max_gap(mut self, bytes: u64) -> Self {
        self.max_gap = bytes;
        self
    }

    /// Most ranged reads in flight at once (at least 1).
    pub fn with_concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// Records into `metrics` (for example the ones an [`crate::InstrumentedStore`] shares)
    /// instead of the fetcher's own.
    pub fn with_metrics(mut self, metrics: ChunkStoreMetrics) -> Self {
        self.metrics = metrics;
        self
    }

    pub fn metrics(&self) -> &ChunkStoreMetrics {
        &self.metrics
    }

    /// Groups refs into ranged reads: by object, in offset order, merging a chunk into the
    /// previous read when it starts at most `max_gap` bytes after it ends.
    fn plan(&self, refs: &[ChunkRef]) -> Vec<Span> {
        let mut order: Vec<usize> = (0..refs.len()).collect();
        order.sort_by(|&a, &b| {
            refs[a]
                .object
                .cmp(&refs[b].object)
                .then(refs[a].offset.cmp(&refs[b].offset))
        });
        let mut spans: Vec<Span> = Vec::new();
        for i in order {
            let r = &refs[i];
            if let Some(last) = spans.last_mut() {
                let end = last.end.max(r.end());
                if last.object == r.object
                    && r.offset <= last.end.saturating_add(self.max_gap)
                    && end - last.start <= MAX_COALESCED_RANGE
                {
                    last.end = end;
                    last.members.push(i);
                    continue;
                }
            }
            spans.push(Span {
                object: r.object.clone(),
                start: r.offset,
                end: r.end(),
                members: vec![i],
            });
        }
        spans
    }

    /// Results in the order of `refs`. A chunk that fails its checksum is
    /// [`FetchError::Corrupt`] in its slot while the other chunks are still answered; a failed
    /// read fails every chunk it covered with [`FetchError::Store`].
    pub async fn fetch(&self, refs: &[ChunkRef]) -> Vec<Result<Bytes, FetchError>> {
        let mut results: Vec<Option<Result<Bytes, FetchError>>> = vec![None; refs.len()];
        self.metrics.chunks_fetched.inc_by(refs.len() as u64);
        let spans = self.plan(refs);
        self.metrics.coalesced_reads.inc_by(spans.len() as u64);

        let mut reads = stream::iter(spans.into_iter().map(|span| {
            let store = self.store.clone();
            async move {
                let body = store
                    .get_range(&span.object, span.start, span.end - span.start)
                    .await;
                (span, body)
            }
        }))
        .buffer_unordered(self.concurrency);

        while let Some((span, body)) = reads.next().await {
            let body = match body {
                Ok(body) => body,
                Err(e) => {
                    for i in span.members {
                        results[i] = Some(Err(FetchError::Store(e.clone())));
                    }
                    continue;
                }
            };
            for i in span.members {
                let r = &refs[i];
                results[i] = Some(self.cut(r, span.start, &body));
            }
        }
        results
            .into_iter()
            .map(|r| r.expect("every ref belongs to exactly one read"))
            .collect()
    }

    /// Cuts `r`'s record out of a read that started at `start` and verifies it.
    fn cut(&self, r: &ChunkRef, start: u64, body: &Bytes) -> Result<Bytes, FetchError> {
        let from = usize::try_from(r.offset - start).unwrap_or(usize::MAX);
        let to = from.saturating_add(r.len as usize);
        let verified = if from == 0 && to == body.len() {
            // The read was this chunk alone: hand out its bytes without copying.
            verify_chunk_bytes(r, body)
        } else if to <= body.len() {
            // Copy out of a coalesced read, so a kept chunk does not pin the whole read.
            verify_chunk(r, &body[from..to])
        } else {
            Err(FormatError::Truncated {
                object: r.object.to_string(),
                section: "chunk record",
                needed: u64::from(r.len),
                available: body.len().saturating_sub(from) as u64,
            })
        };
        verified.map_err(|e| {
            self.metrics.checksum_failures.inc();
            tracing::warn!(object = %r.object, offset = r.offset, error = %e, "corrupt chunk");
            FetchError::Corrupt {
                object: r.object.to_string(),
                offset: r.offset,
            }
        })
    }
}

/// Reads an object's index knowing only its key: the footer (with the index too when it is
/// small) from the object's end, then the index section if it was not in that read.
pub async fn read_index(store: &dyn ObjectStore, key: &str) -> Result<ObjectIndex, FetchError> {
    let tail = store.get_tail(key, INDEX_TAIL_GUESS).await?;
    let footer = Footer::parse(key, &tail)?;
    let index_end = footer
        .index_offset
        .checked_add(u64::from(footer.index_len))
        .ok_or_else(|| FormatError::Malformed {
            object: key.to_string(),
            reason: "the footer's index offset and length overflow".to_string(),
        })?;
    // By the format, the index ends where the footer starts, so the tail read began at
    // `index_end + FOOTER_LEN - tail.len()`.
    let tail_start = index_end
        .checked_add(FOOTER_LEN as u64)
        .and_then(|end| end.checked_sub(tail.len() as u64));
    let whole_object_read = (tail.len() as u64) < INDEX_TAIL_GUESS;
    if whole_object_read && tail_start != Some(0) {
        return Err(FormatError::Malformed {
            object: key.to_string(),
            reason: format!(
                "the footer puts the index at {}..{index_end} but the object is {} bytes long",
                footer.index_offset,
                tail.len()
            ),
        }
        .into());
    }
    let section = match tail_start {
        Some(tail_start) if footer.index_offset >= tail_start => {
            let from = usize::try_from(footer.index_offset - tail_start).unwrap_or(usize::MAX);
            let to = from.saturating_add(footer.index_len as usize);
            tail.slice(from.min(tail.len())..to.min(tail.len()))
        }
        _ => {
            store
                .get_range(key, footer.index_offset, u64::from(footer.index_len))
                .await?
        }
    };
    if section.len() < footer.index_len as usize {
        return Err(FormatError::Truncated {
            object: key.to_string(),
            section: "index",
            needed: u64::from(footer.index_len),
            available: section.len() as u64,
        }
        .into());
    }
    Ok(ObjectIndex::parse_at(key, &section, footer.index_offset)?)
}
