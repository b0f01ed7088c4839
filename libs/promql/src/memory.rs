//! What one query may hold in memory, and what all the queries of a
//! process may hold together.
//!
//! The evaluator charges points (a sample or a step's value, 16 bytes
//! each) *before* it allocates room for them: a step vector for an output
//! series, a decoded range of samples, a subquery's inner result. A charge
//! over a limit fails the query at once, so a query that would need 50 GB
//! fails after spending at most its budget, instead of after spending the
//! memory (or aborting the process). When a node's result is complete the
//! charges of its intermediates are replaced by the size of the result.
//!
//! The per-process [`MemoryPool`] is shared by every query of a querier:
//! a query takes from it in steps of [`POOL_STEP`] bytes and gives back
//! everything when it ends, whether it succeeded, failed or was cancelled.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use crate::QueryError;

/// Bytes one held point is counted as: a timestamp and a value, or an
/// optional value per step (`Option<f64>` is 16 bytes).
pub const BYTES_PER_POINT: usize = 16;

/// Granularity of charges to the process pool, so queries do not contend
/// on its counter for every series.
pub const POOL_STEP: usize = 1 << 20;

/// Memory all queries of a process may hold together.
#[derive(Debug)]
pub struct MemoryPool {
    limit: usize,
    used: AtomicUsize,
    refused: AtomicU64,
}

impl MemoryPool {
    /// A pool of `limit` bytes; 0 means unlimited (only counted).
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            used: AtomicUsize::new(0),
            refused: AtomicU64::new(0),
        }
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes held by running queries now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// Queries refused because the pool was full.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    fn try_take(&self, bytes: usize) -> bool {
        let mut used = self.used.load(Ordering::Relaxed);
        loop {
            let next = used.saturating_add(bytes);
            if self.limit > 0 && next > self.limit {
                self.refused.fetch_add(1, Ordering::Relaxed);
                return false;
            }
            match self
                .used
                .compare_exchange_weak(used, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(now) => used = now,
            }
        }
    }

    fn give_back(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::Relaxed);
    }
}

/// Set when the query's client went away (or its caller gave up): the
/// evaluator stops at its next check, within a few hundred steps.
#[derive(Clone, Debug, Default)]
pub struct CancelFlag(Arc<AtomicBool>);

impl CancelFlag {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// A guard that cancels when dropped, unless [`CancelOnDrop::disarm`]ed:
    /// hold it in the future that waits for the evaluation, so dropping that
    /// future (a disconnected client) stops the work.
    pub fn cancel_on_drop(&self) -> CancelOnDrop {
        CancelOnDrop(Some(self.clone()))
    }
}

/// See [`CancelFlag::cancel_on_drop`].
#[derive(Debug)]
pub struct CancelOnDrop(Option<CancelFlag>);

impl CancelOnDrop {
    pub fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(flag) = self.0.take() {
            flag.cancel();
        }
    }
}

/// The points one query holds, checked against its limits as they grow.
#[derive(Debug)]
pub(crate) struct QueryMemory {
    held: usize,
    max_samples: usize,
    max_bytes: usize,
    pool: Option<Arc<MemoryPool>>,
    /// Bytes taken from the pool (a multiple of [`POOL_STEP`]).
    taken: usize,
}

impl QueryMemory {
    pub fn new(max_samples: usize, max_bytes: usize, pool: Option<Arc<MemoryPool>>) -> Self {
        Self {
            held: 0,
            max_samples,
            max_bytes,
            pool,
            taken: 0,
        }
    }

    pub fn held(&self) -> usize {
        self.held
    }

    /// Points that may still be held before a per-query limit is reached.
    pub fn headroom(&self) -> usize {
        let by_samples = self.max_samples.saturating_sub(self.held);
        if self.max_bytes == 0 {
            return by_samples;
        }
        by_samples.min((self.max_bytes / BYTES_PER_POINT).saturating_sub(self.held))
    }

    /// Points that may be held before any limit is reached and without
    /// taking more from the process pool.
    pub fn spare(&self) -> usize {
        let headroom = self.headroom();
        match self.pool {
            None => headroom,
            Some(_) => headroom.min((self.taken / BYTES_PER_POINT).saturating_sub(self.held)),
        }
    }

    /// Accounts `n` more points, before they are allocated.
    pub fn hold(&mut self, n: usize) -> Result<(), QueryError> {
        self.set(self.held.saturating_add(n))
    }

    /// Gives back `n` points.
    pub fn release(&mut self, n: usize) {
        self.held = self.held.saturating_sub(n);
        self.settle_pool();
    }

    /// Sets the points held to `points`, checking every limit.
    pub fn set(&mut self, points: usize) -> Result<(), QueryError> {
        self.held = points;
        if points > self.max_samples {
            return Err(QueryError::TooManySamples("query execution".into()));
        }
        let bytes = points.saturating_mul(BYTES_PER_POINT);
        if self.max_bytes > 0 && bytes > self.max_bytes {
            return Err(QueryError::MemoryLimit(format!(
                "query processing would hold more than the per-query memory limit of {} (querier.max_query_memory); narrow the selectors, shorten the range or coarsen the step",
                human_bytes(self.max_bytes)
            )));
        }
        self.settle_pool_for(bytes)
    }

    fn settle_pool(&mut self) {
        let bytes = self.held.saturating_mul(BYTES_PER_POINT);
        // Giving back never fails.
        let _ = self.settle_pool_for(bytes);
    }

    fn settle_pool_for(&mut self, bytes: usize) -> Result<(), QueryError> {
        let Some(pool) = &self.pool else {
            return Ok(());
        };
        let want = bytes.div_ceil(POOL_STEP).saturating_mul(POOL_STEP);
        if want > self.taken {
            if !pool.try_take(want - self.taken) {
                return Err(QueryError::MemoryLimit(format!(
                    "the queries running in this process would together hold more than its query memory limit of {} (querier.max_memory); retry later or run fewer heavy queries at once",
                    human_bytes(pool.limit())
                )));
            }
            self.taken = want;
        } else if want.saturating_add(2 * POOL_STEP) < self.taken {
            pool.give_back(self.taken - want);
            self.taken = want;
        }
        Ok(())
    }
}

impl Drop for QueryMemory {
    fn drop(&mut self) {
        if let Some(pool) = &self.pool {
            pool.give_back(self.taken);
        }
    }
}

/// `512 MiB`, `1.5 GiB`: for messages.
pub fn human_bytes(bytes: usize) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if v.fract() == 0.0 {
        format!("{v} {}", UNITS[unit])
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_fire_before_the_points_exist() {
        let mut m = QueryMemory::new(1000, 0, None);
        m.hold(600).unwrap();
        assert!(matches!(m.hold(600), Err(QueryError::TooManySamples(_))));

        let mut m = QueryMemory::new(usize::MAX, 1600, None);
        m.hold(100).unwrap();
        let err = m.hold(1).unwrap_err();
        assert!(matches!(err, QueryError::MemoryLimit(_)));
        assert!(
            err.to_string().contains("querier.max_query_memory"),
            "{err}"
        );
        assert!(err.to_string().contains("1.6 KiB"), "{err}");
    }

    #[test]
    fn the_pool_is_shared_and_given_back() {
        let pool = Arc::new(MemoryPool::new(4 * POOL_STEP));
        let points = POOL_STEP / BYTES_PER_POINT;
        let mut a = QueryMemory::new(usize::MAX, 0, Some(pool.clone()));
        a.hold(3 * points).unwrap();
        assert_eq!(pool.used(), 3 * POOL_STEP);
        let mut b = QueryMemory::new(usize::MAX, 0, Some(pool.clone()));
        b.hold(points).unwrap();
        let err = b.hold(1).unwrap_err();
        assert!(err.to_string().contains("querier.max_memory"), "{err}");
        assert_eq!(pool.refused(), 1);
        a.set(0).unwrap();
        assert_eq!(pool.used(), POOL_STEP, "b keeps what it took");
        b.hold(points).unwrap();
        drop(a);
        drop(b);
        assert_eq!(pool.used(), 0);
    }

    #[test]
    fn cancel_on_drop() {
        let flag = CancelFlag::new();
        drop(flag.cancel_on_drop());
        assert!(flag.is_cancelled());
        let flag = CancelFlag::new();
        flag.cancel_on_drop().disarm();
        assert!(!flag.is_cancelled());
    }

    #[test]
    fn human_bytes_reads_well() {
        assert_eq!(human_bytes(512 << 20), "512 MiB");
        assert_eq!(human_bytes(1536 << 20), "1.5 GiB");
        assert_eq!(human_bytes(100), "100 B");
    }
}
