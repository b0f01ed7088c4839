//! Intra-query parallelism: work over many series (or many steps) is split
//! into a few contiguous parts evaluated on scoped threads, and the parts'
//! results are put back together in order, so the answer (its order, its
//! annotations, its floating point rounding) is the same as evaluating
//! serially.
//!
//! A part runs on a [`Worker`]: it checks cancellation and the deadline,
//! charges memory to the query's budget (through a small local credit, so
//! the parts do not contend on a lock for every series) and collects
//! annotations, which are merged in part order afterwards.
//!
//! Only work above [`DEFAULT_MIN_PARALLEL_WORK`] units (a unit is a series
//! × step, or a sample decoded) is split, so small queries never pay for
//! threads; at most [`crate::Engine::parallelism`] threads run one query,
//! the caller's thread being one of them. Evaluation runs on the querier's
//! blocking pool: scoped threads do not touch the async runtime, so they
//! cannot deadlock it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use crate::memory::{CancelFlag, QueryMemory};
use crate::QueryError;

/// Smallest amount of work (series × steps, or samples) split over
/// threads: about a millisecond of evaluation, well above the cost of
/// starting a thread.
pub const DEFAULT_MIN_PARALLEL_WORK: usize = 100_000;

/// Points a worker takes from the query's budget at once; what it does not
/// use goes back when it finishes.
const CREDIT: usize = 4096;

/// Message of the error a part stops with when another part failed first;
/// never returned to the caller.
const ABORTED: &str = "another part of the query failed";

/// How much one query may be split.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Par {
    /// Most threads (parts) one step of evaluation uses.
    pub threads: usize,
    /// Least work worth a second thread.
    pub min_work: usize,
}

impl Par {
    pub fn serial() -> Self {
        Par {
            threads: 1,
            min_work: DEFAULT_MIN_PARALLEL_WORK,
        }
    }

    /// Parts to split `items` items of `work` units in total into.
    pub fn parts(&self, items: usize, work: usize) -> usize {
        if self.threads <= 1 || items < 2 || work < self.min_work {
            return 1;
        }
        let by_work = work.checked_div(self.min_work).unwrap_or(usize::MAX);
        self.threads.min(items).min(by_work.max(2))
    }
}

/// The ranges `[start, end)` of `parts` contiguous, nearly equal parts of
/// `0..len`.
pub(crate) fn ranges(len: usize, parts: usize) -> Vec<std::ops::Range<usize>> {
    let parts = parts.clamp(1, len.max(1));
    let (base, extra) = (len / parts, len % parts);
    let mut out = Vec::with_capacity(parts);
    let mut start = 0;
    for p in 0..parts {
        let end = start + base + usize::from(p < extra);
        out.push(start..end);
        start = end;
    }
    out
}

/// Splits `items` into `parts` contiguous parts, in order.
pub(crate) fn split_vec<T>(mut items: Vec<T>, parts: usize) -> Vec<Vec<T>> {
    let rs = ranges(items.len(), parts);
    let mut out: Vec<Vec<T>> = Vec::with_capacity(rs.len());
    for r in rs.iter().rev() {
        out.push(items.split_off(r.start));
    }
    out.reverse();
    out
}

/// What the parts of one split share.
pub(crate) struct Shared<'m> {
    memory: Mutex<&'m mut QueryMemory>,
    cancel: Option<CancelFlag>,
    deadline: Option<Instant>,
    abort: AtomicBool,
}

impl<'m> Shared<'m> {
    pub fn new(
        memory: &'m mut QueryMemory,
        cancel: Option<CancelFlag>,
        deadline: Option<Instant>,
    ) -> Self {
        Shared {
            memory: Mutex::new(memory),
            cancel,
            deadline,
            abort: AtomicBool::new(false),
        }
    }

    fn with_memory<R>(&self, f: impl FnOnce(&mut QueryMemory) -> R) -> R {
        let mut guard = self
            .memory
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut guard)
    }
}

/// One part's view of the query: limits, cancellation, annotations.
pub(crate) struct Worker<'s, 'm> {
    shared: &'s Shared<'m>,
    /// Points charged to the query but not held yet.
    credit: usize,
    ticks: u32,
    pub warnings: Vec<String>,
    pub infos: Vec<String>,
}

impl<'s, 'm> Worker<'s, 'm> {
    pub fn new(shared: &'s Shared<'m>) -> Self {
        Worker {
            shared,
            credit: 0,
            ticks: 0,
            warnings: Vec::new(),
            infos: Vec::new(),
        }
    }

    /// Checks cancellation (and that no other part failed) on every call,
    /// the deadline every few hundred calls.
    pub fn tick(&mut self) -> Result<(), QueryError> {
        if self.shared.abort.load(Ordering::Relaxed) {
            return Err(QueryError::Canceled(ABORTED.into()));
        }
        if self
            .shared
            .cancel
            .as_ref()
            .is_some_and(CancelFlag::is_cancelled)
        {
            return Err(QueryError::Canceled("expression evaluation".into()));
        }
        self.ticks = self.ticks.wrapping_add(1);
        if self.ticks & 0xff == 0 {
            if let Some(d) = self.shared.deadline {
                if Instant::now() >= d {
                    return Err(QueryError::Timeout("expression evaluation".into()));
                }
            }
        }
        Ok(())
    }

    /// Accounts `n` more points held, before they are allocated.
    pub fn hold(&mut self, n: usize) -> Result<(), QueryError> {
        if n <= self.credit {
            self.credit -= n;
            return Ok(());
        }
        let need = n - self.credit;
        // A credit ahead if it fits, else exactly what is needed: a limit
        // fires when the points themselves do not fit.
        let extra = self.shared.with_memory(|m| {
            if m.spare() >= need.saturating_add(CREDIT) {
                m.hold(need + CREDIT).map(|()| CREDIT)
            } else {
                m.hold(need).map(|()| 0)
            }
        })?;
        self.credit = extra;
        Ok(())
    }

    /// Gives back `n` points accounted by [`Worker::hold`].
    pub fn release(&mut self, n: usize) {
        self.credit = self.credit.saturating_add(n);
        if self.credit > 2 * CREDIT {
            let back = self.credit - CREDIT;
            self.credit = CREDIT;
            self.shared.with_memory(|m| m.release(back));
        }
    }

    /// How many points to charge ahead for a block of `want`: `want`, or
    /// what is left under the limits (at least 1, so the limit fires at
    /// the first point beyond it).
    pub fn block(&self, want: usize) -> usize {
        if self.credit >= want {
            return want;
        }
        want.min(self.headroom()).max(1)
    }

    /// Points that may still be held before a per-query limit is reached.
    pub fn headroom(&self) -> usize {
        self.shared
            .with_memory(|m| m.headroom())
            .saturating_add(self.credit)
    }

    pub fn info(&mut self, msg: String) {
        if !self.infos.contains(&msg) {
            self.infos.push(msg);
        }
    }

    /// Gives the unused credit back.
    fn finish(&mut self) {
        if self.credit > 0 {
            let back = std::mem::take(&mut self.credit);
            self.shared.with_memory(|m| m.release(back));
        }
    }
}

/// What a part produced, with its annotations.
pub(crate) struct PartOutput<R> {
    pub result: Result<R, QueryError>,
    pub warnings: Vec<String>,
    pub infos: Vec<String>,
}

/// Runs `f` over every part, the first on the calling thread and the
/// others on scoped threads, and returns the parts' outputs in order. A
/// part that fails makes the others stop at their next tick.
pub(crate) fn run<T, R, F>(shared: &Shared<'_>, parts: Vec<T>, f: F) -> Vec<PartOutput<R>>
where
    T: Send,
    R: Send,
    F: Fn(&mut Worker<'_, '_>, T) -> Result<R, QueryError> + Sync,
{
    let one = |part: T| -> PartOutput<R> {
        let mut w = Worker::new(shared);
        let result = f(&mut w, part);
        if result.is_err() {
            shared.abort.store(true, Ordering::Relaxed);
        }
        w.finish();
        PartOutput {
            result,
            warnings: w.warnings,
            infos: w.infos,
        }
    };
    if parts.len() <= 1 {
        return parts.into_iter().map(one).collect();
    }
    let mut iter = parts.into_iter();
    let first = iter.next();
    std::thread::scope(|scope| {
        let handles: Vec<_> = iter
            .map(|part| {
                let one = &one;
                std::thread::Builder::new()
                    .name("promql-part".into())
                    .spawn_scoped(scope, move || one(part))
            })
            .collect();
        let mut out = Vec::with_capacity(handles.len() + 1);
        if let Some(part) = first {
            out.push(one(part));
        }
        for h in handles {
            let output = match h {
                Ok(handle) => handle.join().unwrap_or_else(|_| PartOutput {
                    result: Err(QueryError::Execution(
                        "query evaluation failed unexpectedly in a worker thread".into(),
                    )),
                    warnings: Vec::new(),
                    infos: Vec::new(),
                }),
                Err(e) => PartOutput {
                    result: Err(QueryError::Execution(format!(
                        "cannot start a query worker thread: {e}"
                    ))),
                    warnings: Vec::new(),
                    infos: Vec::new(),
                },
            };
            if output.result.is_err() {
                shared.abort.store(true, Ordering::Relaxed);
            }
            out.push(output);
        }
        out
    })
}

/// The parts' results in order, or the error of the first part that failed
/// on its own (not because another part did).
pub(crate) fn collect<R>(
    outputs: Vec<PartOutput<R>>,
    mut annotate: impl FnMut(Vec<String>, Vec<String>),
) -> Result<Vec<R>, QueryError> {
    let mut results = Vec::with_capacity(outputs.len());
    let mut first_err: Option<QueryError> = None;
    let mut aborted: Option<QueryError> = None;
    for o in outputs {
        match o.result {
            Ok(r) => {
                if first_err.is_none() && aborted.is_none() {
                    annotate(o.warnings, o.infos);
                }
                results.push(r);
            }
            Err(QueryError::Canceled(m)) if m == ABORTED => {
                aborted.get_or_insert(QueryError::Canceled(m));
            }
            Err(e) => {
                if first_err.is_none() {
                    first_err = Some(e);
                }
            }
        }
    }
    if let Some(e) = first_err.or(aborted) {
        return Err(e);
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_everything_in_order() {
        assert_eq!(ranges(10, 3), vec![0..4, 4..7, 7..10]);
        assert_eq!(ranges(2, 5), vec![0..1, 1..2]);
        assert_eq!(ranges(0, 3), vec![0..0]);
        let parts = split_vec((0..7).collect::<Vec<_>>(), 3);
        assert_eq!(parts, vec![vec![0, 1, 2], vec![3, 4], vec![5, 6]]);
    }

    #[test]
    fn small_work_is_not_split() {
        let par = Par {
            threads: 2,
            min_work: 1000,
        };
        assert_eq!(par.parts(100, 999), 1);
        assert_eq!(par.parts(100, 5000), 2);
        assert_eq!(par.parts(1, 5000), 1);
        assert_eq!(Par::serial().parts(100_000, usize::MAX), 1);
    }

    #[test]
    fn a_failing_part_stops_the_others_and_its_error_wins() {
        let mut memory = QueryMemory::new(usize::MAX, 0, None);
        let shared = Shared::new(&mut memory, None, None);
        let outputs = run(&shared, vec![0usize, 1, 2], |w, part| {
            if part == 1 {
                return Err(QueryError::Execution("boom".into()));
            }
            for _ in 0..1_000_000 {
                w.tick()?;
                w.hold(10)?;
                w.release(10);
            }
            Ok(part)
        });
        let err = collect(outputs, |_, _| {}).unwrap_err();
        assert_eq!(err.to_string(), "boom");
        drop(shared);
        assert_eq!(memory.held(), 0, "credits are given back");
    }

    #[test]
    fn limits_fire_exactly_in_a_worker() {
        let mut memory = QueryMemory::new(100, 0, None);
        let shared = Shared::new(&mut memory, None, None);
        let mut w = Worker::new(&shared);
        w.hold(60).unwrap();
        w.release(60);
        w.hold(100).unwrap();
        assert!(matches!(w.hold(1), Err(QueryError::TooManySamples(_))));
    }
}
