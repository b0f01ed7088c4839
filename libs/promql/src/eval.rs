//! The step-vectorised evaluator.
//!
//! Every expression is evaluated once over all steps of the query (as
//! Prometheus's engine does): an instant-vector result holds, per series,
//! one optional value per step ("dense" series), so label work such as
//! vector matching and grouping is done once per series rather than once
//! per step.

use std::collections::HashMap;
use std::time::Instant;

use crate::memory::{CancelFlag, QueryMemory};
use crate::parallel::{self, split_vec, Par, Shared, Worker};

use promql_parser::parser::{Expr, MatrixSelector, SubqueryExpr, VectorSelector};
use strata_model::{is_stale_nan, Labels, Matcher, METRIC_NAME};

use crate::plan::{
    at_ms, duration_ms, matcher_sets, offset_ms, shifted_times, step_invariant, subquery_start,
    subquery_step, unparen,
};
use crate::{
    Annotations, EngineOptions, QueryError, SampleIter, SelectRequest, Storage, StoredSeries,
};

/// The evaluation times of a node: `start, start + step, …, ≤ end`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Steps {
    pub start: i64,
    pub end: i64,
    pub step: i64,
}

impl Steps {
    pub fn single(t: i64) -> Self {
        Steps {
            start: t,
            end: t,
            step: 1,
        }
    }

    pub fn len(&self) -> usize {
        if self.end < self.start {
            return 0;
        }
        (self.end.saturating_sub(self.start) / self.step.max(1)) as usize + 1
    }

    pub fn ts(&self, i: usize) -> i64 {
        self.start
            .saturating_add((i as i64).saturating_mul(self.step))
    }
}

/// An instant-vector series over all steps.
#[derive(Clone, Debug)]
pub(crate) struct VSeries {
    pub labels: Labels,
    /// Prometheus 3's delayed `__name__` removal: the name is dropped when
    /// the result is returned, unless a label function set it again.
    pub drop_name: bool,
    pub vals: Vec<Option<f64>>,
}

/// A range-vector series: raw samples.
#[derive(Clone, Debug)]
pub(crate) struct MSeries {
    pub labels: Labels,
    pub drop_name: bool,
    pub samples: Vec<(i64, f64)>,
}

#[derive(Clone, Debug)]
pub(crate) enum Val {
    Scalar(Vec<f64>),
    Str(String),
    Vector(Vec<VSeries>),
    /// Only produced for a single step (an instant query of a range vector).
    Matrix(Vec<MSeries>),
}

impl Val {
    pub fn points(&self) -> usize {
        match self {
            Val::Scalar(v) => v.len(),
            Val::Str(_) => 1,
            // Step vectors hold a slot per step, filled or not.
            Val::Vector(vs) => vs.iter().map(|s| s.vals.len()).sum(),
            Val::Matrix(ms) => ms.iter().map(|s| s.samples.len()).sum(),
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            Val::Scalar(_) => "scalar",
            Val::Str(_) => "string",
            Val::Vector(_) => "instant vector",
            Val::Matrix(_) => "range vector",
        }
    }
}

pub(crate) fn dup_labelset_error() -> QueryError {
    QueryError::Execution("vector cannot contain metrics with the same labelset".into())
}

/// Collects output series keyed by label set; values for the same labels
/// at different steps merge into one series, at the same step are an error.
pub(crate) struct Builder {
    n: usize,
    index: HashMap<Labels, usize>,
    out: Vec<VSeries>,
}

impl Builder {
    pub fn new(n: usize) -> Self {
        Builder {
            n,
            index: HashMap::new(),
            out: Vec::new(),
        }
    }

    /// The output series for `labels`, created (and its steps accounted in
    /// `memory` first) if new.
    pub fn slot(
        &mut self,
        memory: &mut QueryMemory,
        labels: Labels,
        drop_name: bool,
    ) -> Result<usize, QueryError> {
        if let Some(&i) = self.index.get(&labels) {
            self.out[i].drop_name |= drop_name;
            return Ok(i);
        }
        memory.hold(self.n)?;
        let i = self.out.len();
        self.index.insert(labels.clone(), i);
        self.out.push(VSeries {
            labels,
            drop_name,
            vals: vec![None; self.n],
        });
        Ok(i)
    }

    pub fn put(&mut self, slot: usize, step: usize, v: f64) -> Result<(), QueryError> {
        let cell = &mut self.out[slot].vals[step];
        if cell.is_some() {
            return Err(dup_labelset_error());
        }
        *cell = Some(v);
        Ok(())
    }

    pub fn finish(self) -> Vec<VSeries> {
        prune(self.out)
    }
}

pub(crate) fn prune(mut v: Vec<VSeries>) -> Vec<VSeries> {
    v.retain(|s| s.vals.iter().any(|x| x.is_some()));
    v
}

/// One series of a range-vector input: still in storage (decoded when the
/// consumer reaches it, see [`Evaluator::load`]) or already computed (a
/// subquery's result).
pub(crate) enum RangeSeries {
    Stored(StoredSeries),
    Computed(MSeries),
}

/// Range-vector input of a function: its series and the window end of each
/// step; windows are left-open `(end - range, end]`. Stored series are read
/// over `[mint, maxt]`.
pub(crate) struct RangeInput {
    pub series: Vec<RangeSeries>,
    pub range: i64,
    pub ends: Vec<i64>,
    pub mint: i64,
    pub maxt: i64,
}

/// A storage iterator made safe to walk: stops at the first error (kept in
/// `err`) and skips samples that do not move time forward.
pub(crate) struct Ordered<'a> {
    it: SampleIter<'a>,
    last: Option<i64>,
}

impl<'a> Ordered<'a> {
    pub fn new(it: SampleIter<'a>) -> Self {
        Ordered { it, last: None }
    }

    pub fn next_sample(&mut self) -> Result<Option<(i64, f64)>, QueryError> {
        loop {
            match self.it.next() {
                None => return Ok(None),
                Some(Err(e)) => return Err(e.into()),
                Some(Ok(p)) => {
                    if self.last.is_some_and(|l| p.0 <= l) {
                        continue;
                    }
                    self.last = Some(p.0);
                    return Ok(Some(p));
                }
            }
        }
    }
}

/// Calls `f(step, window)` for every step; `ends` must be non-decreasing.
pub(crate) fn for_each_window(
    samples: &[(i64, f64)],
    ends: &[i64],
    range: i64,
    mut f: impl FnMut(usize, &[(i64, f64)]) -> Result<(), QueryError>,
) -> Result<(), QueryError> {
    for_each_window_at(samples, ends, range, |i, lo, hi| f(i, &samples[lo..hi]))
}

/// Calls `f(step, lo, hi)` for every step, `samples[lo..hi]` being the
/// step's window; `ends` must be non-decreasing.
pub(crate) fn for_each_window_at(
    samples: &[(i64, f64)],
    ends: &[i64],
    range: i64,
    mut f: impl FnMut(usize, usize, usize) -> Result<(), QueryError>,
) -> Result<(), QueryError> {
    let (mut lo, mut hi) = (0usize, 0usize);
    for (i, &end) in ends.iter().enumerate() {
        let start = end.saturating_sub(range);
        while hi < samples.len() && samples[hi].0 <= end {
            hi += 1;
        }
        while lo < hi && samples[lo].0 <= start {
            lo += 1;
        }
        f(i, lo.min(hi), hi)?;
    }
    Ok(())
}

/// Decodes a range-vector series over `[mint, maxt]` into `buf` (stale
/// markers left out) and accounts its samples as held; the caller releases
/// them once done with the series. Returns the series' labels and whether
/// its name is to be dropped.
pub(crate) fn load_into(
    w: &mut Worker<'_, '_>,
    s: RangeSeries,
    mint: i64,
    maxt: i64,
    buf: &mut Vec<(i64, f64)>,
) -> Result<(Labels, bool), QueryError> {
    let stored = match s {
        RangeSeries::Computed(m) => {
            w.hold(m.samples.len())?;
            *buf = m.samples;
            return Ok((m.labels, m.drop_name));
        }
        RangeSeries::Stored(stored) => stored,
    };
    buf.clear();
    let mut it = Ordered::new(stored.source.samples(mint, maxt));
    // Charged in blocks, ahead of the samples decoded into them.
    const BLOCK: usize = 4096;
    let mut charged = 0usize;
    while let Some((t, v)) = it.next_sample()? {
        if t < mint || t > maxt || is_stale_nan(v) {
            continue;
        }
        if buf.len() == charged {
            // A block ahead, or what is left under the limits: the
            // limit fires at the first sample beyond it, not a block early.
            let step = w.block(BLOCK);
            w.hold(step)?;
            charged += step;
            w.tick()?;
        }
        buf.push((t, v));
    }
    w.release(charged - buf.len());
    Ok((stored.labels, false))
}

pub(crate) struct Evaluator<'a> {
    storage: &'a dyn Storage,
    pub lookback: i64,
    /// Points held, checked against the query's and the process's limits
    /// before they are allocated.
    pub(crate) memory: QueryMemory,
    cancel: Option<CancelFlag>,
    deadline: Option<Instant>,
    pub query_start: i64,
    pub query_end: i64,
    pub annotations: Annotations,
    ticks: u32,
    /// Label-name candidates the query spells with bytes Go reads as
    /// invalid UTF-8 (see `golit`).
    pub invalid_literals: Vec<String>,
    /// How far heavy work may be split over threads.
    pub par: Par,
}

impl<'a> Evaluator<'a> {
    pub fn new(
        storage: &'a dyn Storage,
        opts: &EngineOptions,
        query_start: i64,
        query_end: i64,
    ) -> Self {
        Evaluator {
            storage,
            lookback: i64::try_from(opts.lookback_delta.as_millis()).unwrap_or(i64::MAX / 4),
            memory: QueryMemory::new(opts.max_samples, opts.max_bytes, opts.memory_pool.clone()),
            cancel: opts.cancel.clone(),
            deadline: Instant::now().checked_add(opts.timeout),
            query_start,
            query_end,
            annotations: Annotations::default(),
            ticks: 0,
            invalid_literals: Vec::new(),
            par: Par::serial(),
        }
    }

    /// Runs `f` over `parts` (in parallel when there are several), merges
    /// the parts' annotations in order and returns their results in order.
    pub(crate) fn run_parts<T, R, F>(&mut self, parts: Vec<T>, f: F) -> Result<Vec<R>, QueryError>
    where
        T: Send,
        R: Send,
        F: Fn(&mut Worker<'_, '_>, T) -> Result<R, QueryError> + Sync,
    {
        let outputs = {
            let shared = Shared::new(&mut self.memory, self.cancel.clone(), self.deadline);
            parallel::run(&shared, parts, f)
        };
        let annotations = &mut self.annotations;
        parallel::collect(outputs, |warnings, infos| {
            for w in warnings {
                if !annotations.warnings.contains(&w) {
                    annotations.warnings.push(w);
                }
            }
            for i in infos {
                if !annotations.infos.contains(&i) {
                    annotations.infos.push(i);
                }
            }
        })
    }

    /// Runs `f` on the calling thread with a [`Worker`] of this query.
    pub(crate) fn inline<R: Send>(
        &mut self,
        f: impl FnOnce(&mut Worker<'_, '_>) -> Result<R, QueryError> + Send,
    ) -> Result<R, QueryError> {
        let f = std::sync::Mutex::new(Some(f));
        let mut out = self.run_parts(vec![()], |w, ()| {
            let f = f
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take();
            match f {
                Some(f) => f(w),
                None => Err(QueryError::Execution(
                    "internal error: part run twice".into(),
                )),
            }
        })?;
        out.pop()
            .ok_or_else(|| QueryError::Execution("internal error: part lost".into()))
    }

    /// Checks cancellation, and the deadline every few hundred calls.
    /// Cancellation is checked on every call (one relaxed load), so it
    /// stops a query within one series' work.
    pub fn tick(&mut self) -> Result<(), QueryError> {
        self.check_canceled()?;
        self.ticks = self.ticks.wrapping_add(1);
        if self.ticks & 0xff == 0 {
            self.check_deadline()?;
        }
        Ok(())
    }

    fn check_canceled(&self) -> Result<(), QueryError> {
        if self.cancel.as_ref().is_some_and(CancelFlag::is_cancelled) {
            return Err(QueryError::Canceled("expression evaluation".into()));
        }
        Ok(())
    }

    fn check_deadline(&self) -> Result<(), QueryError> {
        self.check_canceled()?;
        if let Some(d) = self.deadline {
            if Instant::now() >= d {
                return Err(QueryError::Timeout("expression evaluation".into()));
            }
        }
        Ok(())
    }

    /// Accounts `n` more points held at once; call it before allocating
    /// them, so a limit fires before the memory is spent.
    pub fn hold(&mut self, n: usize) -> Result<(), QueryError> {
        self.memory.hold(n)
    }

    pub fn warn(&mut self, msg: String) {
        if !self.annotations.warnings.contains(&msg) {
            self.annotations.warnings.push(msg);
        }
    }

    pub fn info(&mut self, msg: String) {
        if !self.annotations.infos.contains(&msg) {
            self.annotations.infos.push(msg);
        }
    }

    pub fn eval(&mut self, e: &Expr, st: &Steps) -> Result<Val, QueryError> {
        self.check_deadline()?;
        let before = self.memory.held();
        let n = st.len();
        let v = if n > 1 && !is_literal(e) && step_invariant(e) {
            let one = self.eval_node(e, &Steps::single(st.start))?;
            self.hold(one.points().saturating_mul(n))?;
            broadcast(one, n)
        } else {
            self.eval_node(e, st)?
        };
        // The intermediates' charges give way to the result's.
        self.memory.set(before.saturating_add(v.points()))?;
        Ok(v)
    }

    pub fn eval_vector(&mut self, e: &Expr, st: &Steps) -> Result<Vec<VSeries>, QueryError> {
        match self.eval(e, st)? {
            Val::Vector(v) => Ok(v),
            other => Err(QueryError::BadData(format!(
                "expected type instant vector, got {}",
                other.type_name()
            ))),
        }
    }

    pub fn eval_scalar(&mut self, e: &Expr, st: &Steps) -> Result<Vec<f64>, QueryError> {
        match self.eval(e, st)? {
            Val::Scalar(v) => Ok(v),
            other => Err(QueryError::BadData(format!(
                "expected type scalar, got {}",
                other.type_name()
            ))),
        }
    }

    fn eval_node(&mut self, e: &Expr, st: &Steps) -> Result<Val, QueryError> {
        let n = st.len();
        match e {
            Expr::NumberLiteral(l) => Ok(Val::Scalar(vec![l.val; n])),
            Expr::StringLiteral(s) => Ok(Val::Str(s.val.clone())),
            Expr::Paren(p) => self.eval(&p.expr, st),
            Expr::Unary(u) => match self.eval(&u.expr, st)? {
                Val::Scalar(v) => Ok(Val::Scalar(v.into_iter().map(|x| -x).collect())),
                Val::Vector(mut vs) => {
                    for s in &mut vs {
                        s.drop_name = true;
                        for v in s.vals.iter_mut().flatten() {
                            *v = -*v;
                        }
                    }
                    Ok(Val::Vector(vs))
                }
                other => Err(QueryError::BadData(format!(
                    "unary expression only allowed on expressions of type scalar or instant vector, got {}",
                    other.type_name()
                ))),
            },
            Expr::VectorSelector(vs) => Ok(Val::Vector(self.eval_vector_selector(vs, st, false)?)),
            Expr::MatrixSelector(_) | Expr::Subquery(_) => {
                if n != 1 {
                    return Err(QueryError::BadData(
                        "range vectors can only be evaluated at a single time".into(),
                    ));
                }
                let input = self.range_input(e, st)?;
                let end = input.ends[0];
                let start = end.saturating_sub(input.range);
                let mut out = Vec::new();
                for s in input.series {
                    let mut s = self.load(s, input.mint, input.maxt)?;
                    s.samples.retain(|(t, _)| *t > start && *t <= end);
                    if !s.samples.is_empty() {
                        out.push(s);
                    }
                }
                Ok(Val::Matrix(out))
            }
            Expr::Binary(b) => self.eval_binary(b, st),
            Expr::Aggregate(a) => self.eval_aggregate(a, st),
            Expr::Call(c) => self.eval_call(c, st),
            Expr::Extension(_) => Err(QueryError::BadData("extension expressions are not supported".into())),
        }
    }

    /// The series of a selector that may have samples in `[mint, maxt]`;
    /// nothing is decoded yet.
    pub fn select(
        &mut self,
        vs: &VectorSelector,
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<StoredSeries>, QueryError> {
        let sets = matcher_sets(vs)?;
        let several = sets.len() > 1;
        let mut out: Vec<StoredSeries> = Vec::new();
        let mut seen: HashMap<Labels, ()> = HashMap::new();
        for matchers in sets {
            let req = SelectRequest {
                matchers: matchers.clone(),
                start_ms: mint,
                end_ms: maxt,
            };
            let found = self.storage.select(&req)?;
            let keep = self.matching(&found, &matchers)?;
            for (s, keep) in found.into_iter().zip(keep) {
                if !keep {
                    continue;
                }
                if several {
                    if seen.contains_key(&s.labels) {
                        continue;
                    }
                    seen.insert(s.labels.clone(), ());
                }
                out.push(s);
            }
        }
        Ok(out)
    }

    /// Whether each series matches every matcher (storage is not trusted
    /// to have filtered exactly).
    fn matching(
        &mut self,
        series: &[StoredSeries],
        matchers: &[Matcher],
    ) -> Result<Vec<bool>, QueryError> {
        let work = series
            .len()
            .saturating_mul(matchers.len())
            .saturating_mul(8);
        let parts = parallel::ranges(series.len(), self.par.parts(series.len(), work));
        let keep = self.run_parts(parts, |_, r| {
            Ok(series[r]
                .iter()
                .map(|s| matches_all(matchers, &s.labels))
                .collect::<Vec<bool>>())
        })?;
        Ok(concat(keep))
    }

    /// Decodes a range-vector series over `[mint, maxt]` (stale markers
    /// left out) and accounts its samples as held; the caller releases them
    /// with [`Self::release`] once done with the series.
    pub fn load(&mut self, s: RangeSeries, mint: i64, maxt: i64) -> Result<MSeries, QueryError> {
        self.inline(|w| {
            let mut samples = Vec::new();
            let (labels, drop_name) = load_into(w, s, mint, maxt, &mut samples)?;
            Ok(MSeries {
                labels,
                drop_name,
                samples,
            })
        })
    }

    /// Gives back `n` points accounted by [`Self::hold`].
    pub fn release(&mut self, n: usize) {
        self.memory.release(n);
    }

    /// An instant-vector selector over all steps; with `timestamps` the
    /// value is the sample's timestamp in seconds (for `timestamp()`).
    pub fn eval_vector_selector(
        &mut self,
        vs: &VectorSelector,
        st: &Steps,
        timestamps: bool,
    ) -> Result<Vec<VSeries>, QueryError> {
        let n = st.len();
        let offset = offset_ms(&vs.offset);
        let at = at_ms(&vs.at, self.query_start, self.query_end);
        let (first, last) = shifted_times(st.start, st.end, at, offset);
        let lookback = self.lookback;
        let series = self.select(vs, first.saturating_sub(lookback).saturating_add(1), last)?;
        let (mint, maxt) = (first.saturating_sub(lookback).saturating_add(1), last);
        // A series costs its steps, and the samples decoded to reach them.
        let work = series.len().saturating_mul(n.saturating_add(16));
        let nparts = self.par.parts(series.len(), work);
        let parts = split_vec(series, nparts);
        let outputs = self.run_parts(parts, |w, part| {
            let mut out = Vec::with_capacity(part.len());
            for s in part {
                w.tick()?;
                // One pass over the series' samples, streamed from storage:
                // `cur` is the latest sample at or before the step's time,
                // `next` the first one after it.
                let mut it = Ordered::new(s.source.samples(mint, maxt));
                let mut cur: Option<(i64, f64)> = None;
                let mut next = it.next_sample()?;
                w.hold(n)?;
                let mut vals = vec![None; n];
                let mut any = false;
                for (i, val) in vals.iter_mut().enumerate() {
                    let t = match at {
                        Some(a) => a.saturating_sub(offset),
                        None => st.ts(i).saturating_sub(offset),
                    };
                    while let Some(p) = next.filter(|p| p.0 <= t) {
                        cur = Some(p);
                        next = it.next_sample()?;
                    }
                    let Some((ts, v)) = cur else { continue };
                    if ts > t.saturating_sub(lookback) && !is_stale_nan(v) {
                        *val = Some(if timestamps { ts as f64 / 1000.0 } else { v });
                        any = true;
                    }
                }
                if any {
                    out.push(VSeries {
                        labels: s.labels,
                        drop_name: false,
                        vals,
                    });
                } else {
                    w.release(n);
                }
            }
            Ok(out)
        })?;
        Ok(concat(outputs))
    }

    /// The raw series and per-step windows of a matrix selector or subquery.
    pub fn range_input(&mut self, e: &Expr, st: &Steps) -> Result<RangeInput, QueryError> {
        match unparen(e) {
            Expr::MatrixSelector(ms) => self.matrix_selector_input(ms, st),
            Expr::Subquery(sq) => self.subquery_input(sq, st),
            other => Err(QueryError::BadData(format!(
                "expected type range vector, got {}",
                match other.value_type() {
                    promql_parser::parser::value::ValueType::Vector => "instant vector",
                    promql_parser::parser::value::ValueType::Scalar => "scalar",
                    promql_parser::parser::value::ValueType::String => "string",
                    promql_parser::parser::value::ValueType::Matrix => "range vector",
                }
            ))),
        }
    }

    fn window_ends(&self, st: &Steps, at: Option<i64>, offset: i64) -> Vec<i64> {
        (0..st.len())
            .map(|i| match at {
                Some(a) => a.saturating_sub(offset),
                None => st.ts(i).saturating_sub(offset),
            })
            .collect()
    }

    fn matrix_selector_input(
        &mut self,
        ms: &MatrixSelector,
        st: &Steps,
    ) -> Result<RangeInput, QueryError> {
        let offset = offset_ms(&ms.vs.offset);
        let at = at_ms(&ms.vs.at, self.query_start, self.query_end);
        let range = duration_ms(&ms.range);
        let (first, last) = shifted_times(st.start, st.end, at, offset);
        let (mint, maxt) = (first.saturating_sub(range).saturating_add(1), last);
        let series = self.select(&ms.vs, mint, maxt)?;
        Ok(RangeInput {
            series: series.into_iter().map(RangeSeries::Stored).collect(),
            range,
            ends: self.window_ends(st, at, offset),
            mint,
            maxt,
        })
    }

    fn subquery_input(&mut self, sq: &SubqueryExpr, st: &Steps) -> Result<RangeInput, QueryError> {
        let offset = offset_ms(&sq.offset);
        let at = at_ms(&sq.at, self.query_start, self.query_end);
        let range = duration_ms(&sq.range);
        let (first, last) = shifted_times(st.start, st.end, at, offset);
        let step = subquery_step(&sq.step)?;
        let inner_start = subquery_start(first, range, step);
        let ends = self.window_ends(st, at, offset);
        if inner_start > last {
            return Ok(RangeInput {
                series: Vec::new(),
                range,
                ends,
                mint: inner_start,
                maxt: last,
            });
        }
        let inner = Steps {
            start: inner_start,
            end: last,
            step,
        };
        // One inner series alone must fit.
        self.hold(inner.len())?;
        self.release(inner.len());
        let series = match self.eval(&sq.expr, &inner)? {
            Val::Vector(vs) => {
                let mut out = Vec::with_capacity(vs.len());
                for s in vs {
                    // Both forms exist until the step vector is dropped.
                    self.hold(s.vals.iter().filter(|v| v.is_some()).count())?;
                    out.push(MSeries {
                        samples: s
                            .vals
                            .iter()
                            .enumerate()
                            .filter_map(|(i, v)| v.map(|v| (inner.ts(i), v)))
                            .collect(),
                        labels: s.labels,
                        drop_name: s.drop_name,
                    });
                    self.release(s.vals.len());
                }
                out
            }
            Val::Scalar(v) => vec![MSeries {
                labels: Labels::default(),
                drop_name: false,
                samples: v
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (inner.ts(i), *v))
                    .collect(),
            }],
            other => {
                return Err(QueryError::BadData(format!(
                    "subquery is only allowed on instant vector, got {} instead",
                    other.type_name()
                )))
            }
        };
        Ok(RangeInput {
            series: series.into_iter().map(RangeSeries::Computed).collect(),
            range,
            ends,
            mint: inner_start,
            maxt: last,
        })
    }
}

fn is_literal(e: &Expr) -> bool {
    matches!(unparen(e), Expr::NumberLiteral(_) | Expr::StringLiteral(_))
}

fn broadcast(v: Val, n: usize) -> Val {
    match v {
        Val::Scalar(s) => Val::Scalar(vec![s.first().copied().unwrap_or(f64::NAN); n]),
        Val::Vector(vs) => Val::Vector(
            vs.into_iter()
                .map(|s| VSeries {
                    vals: vec![s.vals.first().copied().flatten(); n],
                    labels: s.labels,
                    drop_name: s.drop_name,
                })
                .collect(),
        ),
        other => other,
    }
}

/// The parts' outputs one after the other.
pub(crate) fn concat<T>(parts: Vec<Vec<T>>) -> Vec<T> {
    let mut parts = parts.into_iter();
    let mut out = parts.next().unwrap_or_default();
    for p in parts {
        out.extend(p);
    }
    out
}

pub(crate) fn matches_all(matchers: &[Matcher], labels: &Labels) -> bool {
    matchers
        .iter()
        .all(|m| m.matches(label_value(labels, &m.name).unwrap_or("")))
}

/// `labels.get(name)`, looking at the first label first: the metric name,
/// the label most asked for, nearly always sorts first, and each label
/// compared is a string to fetch from memory.
pub(crate) fn label_value<'l>(labels: &'l Labels, name: &str) -> Option<&'l str> {
    let first = labels.as_slice().first()?;
    match first.name.as_str().cmp(name) {
        std::cmp::Ordering::Equal => Some(&first.value),
        std::cmp::Ordering::Greater => None,
        std::cmp::Ordering::Less => labels.get(name),
    }
}

/// Labels without `__name__`.
pub(crate) fn without_name(labels: &Labels) -> Labels {
    if label_value(labels, METRIC_NAME).is_none() {
        return labels.clone();
    }
    Labels::from_sorted(
        labels
            .iter()
            .filter(|l| l.name != METRIC_NAME)
            .cloned()
            .collect(),
    )
}
