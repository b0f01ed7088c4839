//! Aggregation operators (`sum`, `avg`, `topk`, `quantile`, …) with
//! `by`/`without` grouping.

use std::collections::HashMap;

use promql_parser::parser::{AggregateExpr, LabelModifier};
use strata_model::{Label, Labels, METRIC_NAME};

use crate::eval::{Builder, Evaluator, Steps, VSeries, Val};
use crate::grouping::{Groups, LabelFilter};
use crate::numeric;
use crate::parallel;
use crate::plan::unparen;
use crate::QueryError;

/// Neumaier's compensated summation step, as Prometheus's `kahanSumInc`.
pub(crate) fn kahan_sum_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if t.is_infinite() {
        0.0
    } else if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

/// Formats a float as Go's `strconv.FormatFloat(f, 'f', -1, 64)`.
pub(crate) fn format_go_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

/// Prometheus's `labels.Hash()`: XXH64 over `name 0xff value 0xff …`.
pub(crate) fn prometheus_hash(labels: &Labels) -> u64 {
    let mut buf = Vec::new();
    for l in labels.iter() {
        buf.extend_from_slice(l.name.as_bytes());
        buf.push(0xff);
        buf.extend_from_slice(l.value.as_bytes());
        buf.push(0xff);
    }
    twox_hash::XxHash64::oneshot(0, &buf)
}

/// A part of an aggregation's steps, and its slice of every group's
/// output values.
type StepsPart<'a> = (std::ops::Range<usize>, Vec<&'a mut [Option<f64>]>);

/// Accumulators of one block of steps, for every group, are at most this
/// many (a few MiB).
const MAX_ACCUMULATORS: usize = 1 << 16;

/// The aggregations folded value by value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SimpleOp {
    Sum,
    Avg,
    Min,
    Max,
    Count,
    Group,
    Stddev,
    Stdvar,
}

impl SimpleOp {
    fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "sum" => Self::Sum,
            "avg" => Self::Avg,
            "min" => Self::Min,
            "max" => Self::Max,
            "count" => Self::Count,
            "group" => Self::Group,
            "stddev" => Self::Stddev,
            "stdvar" => Self::Stdvar,
            _ => return None,
        })
    }
}

/// One group's aggregation at one step (Prometheus's `groupedAggregation`).
#[derive(Clone, Copy, Default)]
struct Acc {
    seen: bool,
    value: f64,
    mean: f64,
    comp: f64,
    count: f64,
    incremental: bool,
}

impl Acc {
    /// The group's first value at the step.
    #[inline]
    fn start(&mut self, op: SimpleOp, f: f64) {
        *self = Acc {
            seen: true,
            value: f,
            mean: f,
            comp: 0.0,
            count: 1.0,
            incremental: false,
        };
        match op {
            SimpleOp::Stddev | SimpleOp::Stdvar => {
                self.value = if f.is_nan() || f.is_infinite() {
                    f64::NAN
                } else {
                    0.0
                };
            }
            SimpleOp::Group => self.value = 1.0,
            _ => {}
        }
    }

    /// Another value of the group at the step.
    #[inline]
    fn add(&mut self, op: SimpleOp, f: f64) {
        match op {
            SimpleOp::Sum => {
                (self.value, self.comp) = kahan_sum_inc(f, self.value, self.comp);
            }
            SimpleOp::Avg => {
                self.count += 1.0;
                if !self.incremental {
                    let (nv, nc) = kahan_sum_inc(f, self.value, self.comp);
                    if !nv.is_infinite() {
                        self.value = nv;
                        self.comp = nc;
                        return;
                    }
                    self.incremental = true;
                    self.mean = self.value / (self.count - 1.0);
                    self.comp /= self.count - 1.0;
                }
                if self.mean.is_infinite() {
                    if f.is_infinite() && (self.mean > 0.0) == (f > 0.0) {
                        return;
                    }
                    if !f.is_infinite() && !f.is_nan() {
                        return;
                    }
                }
                let q = (self.count - 1.0) / self.count;
                (self.mean, self.comp) =
                    kahan_sum_inc(f / self.count, q * self.mean, q * self.comp);
            }
            SimpleOp::Min => {
                if self.value > f || self.value.is_nan() {
                    self.value = f;
                }
            }
            SimpleOp::Max => {
                if self.value < f || self.value.is_nan() {
                    self.value = f;
                }
            }
            SimpleOp::Count => self.count += 1.0,
            SimpleOp::Group => {}
            SimpleOp::Stddev | SimpleOp::Stdvar => {
                self.count += 1.0;
                let delta = f - self.mean;
                self.mean += delta / self.count;
                self.value += delta * (f - self.mean);
            }
        }
    }

    /// The group's value at the step.
    #[inline]
    fn value(&self, op: SimpleOp) -> f64 {
        match op {
            SimpleOp::Sum => self.value + self.comp,
            SimpleOp::Avg => {
                if self.incremental {
                    self.mean + self.comp
                } else {
                    (self.value + self.comp) / self.count
                }
            }
            SimpleOp::Count => self.count,
            SimpleOp::Stdvar => self.value / self.count,
            SimpleOp::Stddev => (self.value / self.count).sqrt(),
            SimpleOp::Min | SimpleOp::Max | SimpleOp::Group => self.value,
        }
    }
}

impl Evaluator<'_> {
    pub(crate) fn eval_aggregate(
        &mut self,
        a: &AggregateExpr,
        st: &Steps,
    ) -> Result<Val, QueryError> {
        let op = a.op.to_string();
        let n = st.len();
        let mut scalar_param: Option<Vec<f64>> = None;
        let mut string_param: Option<String> = None;
        match op.as_str() {
            "topk" | "bottomk" | "limitk" | "quantile" | "limit_ratio" => {
                let p = a
                    .param
                    .as_ref()
                    .ok_or_else(|| QueryError::BadData(format!("no parameter given for {op}")))?;
                scalar_param = Some(self.eval_scalar(p, st)?);
            }
            "count_values" => {
                let p = a.param.as_ref().ok_or_else(|| {
                    QueryError::BadData("no parameter given for count_values".into())
                })?;
                match self.eval(unparen(p), st)? {
                    Val::Str(s) => string_param = Some(s),
                    other => {
                        return Err(QueryError::BadData(format!(
                            "expected type string in aggregation parameter, got {}",
                            other.type_name()
                        )))
                    }
                }
            }
            _ => {}
        }
        let input = self.eval_vector(&a.expr, st)?;

        let (by, names): (bool, Vec<String>) = match &a.modifier {
            Some(LabelModifier::Include(l)) => (true, l.labels.clone()),
            Some(LabelModifier::Exclude(l)) => (false, l.labels.clone()),
            None => (true, Vec::new()),
        };
        let filter = if by {
            LabelFilter::only(&names)
        } else {
            let mut dropped = names.clone();
            dropped.push(METRIC_NAME.to_string());
            LabelFilter::all_but(&dropped)
        };
        let labels: Vec<&Labels> = input.iter().map(|s| &s.labels).collect();
        let Groups { gid, first } = self.group_by(&labels, &filter)?;
        let mut groups: Vec<(Labels, bool)> = first
            .iter()
            .map(|&k| (filter.apply(&input[k].labels), false))
            .collect();
        // Only `by (__name__, …)` keeps the name; then it is dropped if any
        // member's is.
        if filter.keeps(METRIC_NAME) {
            for (k, s) in input.iter().enumerate() {
                if groups[gid[k]].0.get(METRIC_NAME).is_some() {
                    groups[gid[k]].1 |= s.drop_name;
                }
            }
        }

        match op.as_str() {
            "topk" | "bottomk" | "limitk" | "limit_ratio" => {
                let params = scalar_param.unwrap_or_default();
                self.aggregate_k(&op, &input, &gid, groups.len(), &params, n)
            }
            "count_values" => {
                let label = string_param.unwrap_or_default();
                if label.is_empty() {
                    return Err(QueryError::BadData(format!("invalid label name {label:?}")));
                }
                let mut builder = Builder::new(n);
                let mut counts: HashMap<(usize, String), f64> = HashMap::new();
                let mut order: Vec<(usize, String)> = Vec::new();
                for i in 0..n {
                    self.tick()?;
                    counts.clear();
                    order.clear();
                    for (k, s) in input.iter().enumerate() {
                        let Some(v) = s.vals[i] else { continue };
                        let key = (gid[k], format_go_float(v));
                        let c = counts.entry(key.clone()).or_insert(0.0);
                        if *c == 0.0 {
                            order.push(key);
                        }
                        *c += 1.0;
                    }
                    for key in &order {
                        let mut labels: Vec<Label> = groups[key.0]
                            .0
                            .iter()
                            .filter(|l| l.name != label)
                            .cloned()
                            .collect();
                        labels.push(Label::new(label.clone(), key.1.clone()));
                        labels.sort();
                        let slot =
                            builder.slot(&mut self.memory, Labels::from_sorted(labels), false)?;
                        builder.put(slot, i, counts[key])?;
                    }
                }
                Ok(Val::Vector(builder.finish()))
            }
            "quantile" => {
                let qs = scalar_param.unwrap_or_default();
                let mut builder = Builder::new(n);
                let mut values: Vec<Vec<f64>> = vec![Vec::new(); groups.len()];
                for i in 0..n {
                    self.tick()?;
                    let q = qs.get(i).copied().unwrap_or(f64::NAN);
                    for v in values.iter_mut() {
                        v.clear();
                    }
                    let mut order = Vec::new();
                    for (k, s) in input.iter().enumerate() {
                        let Some(v) = s.vals[i] else { continue };
                        if values[gid[k]].is_empty() {
                            order.push(gid[k]);
                        }
                        values[gid[k]].push(v);
                    }
                    if !(0.0..=1.0).contains(&q) {
                        self.warn(format!(
                            "PromQL warning: quantile value should be between 0 and 1, got {}",
                            format_go_g(q)
                        ));
                    }
                    for g in order {
                        let v = numeric::quantile(q, &mut values[g]);
                        let slot =
                            builder.slot(&mut self.memory, groups[g].0.clone(), groups[g].1)?;
                        builder.put(slot, i, v)?;
                    }
                }
                Ok(Val::Vector(builder.finish()))
            }
            "sum" | "avg" | "min" | "max" | "count" | "group" | "stddev" | "stdvar" => {
                let op = SimpleOp::from_name(&op).ok_or_else(|| {
                    QueryError::BadData(format!("unsupported aggregation operator {op:?}"))
                })?;
                self.aggregate_simple(op, &input, &gid, groups, n)
            }
            other => Err(QueryError::BadData(format!(
                "unsupported aggregation operator {other:?}"
            ))),
        }
    }

    /// `sum`, `avg`, `min`, `max`, `count`, `group`, `stddev`, `stdvar`.
    ///
    /// Series by series rather than step by step: each series' values are
    /// read in order, into accumulators for a block of steps of every group
    /// (as many steps as keep the accumulators small). Every group's value
    /// at a step still folds in its series' values in series order, so
    /// the result is the same to the last bit. Blocks of steps are split
    /// over threads. Output series come in the order a step-by-step
    /// evaluation creates them: by the first step a group has a value at,
    /// then by its first series with a value there.
    fn aggregate_simple(
        &mut self,
        op: SimpleOp,
        input: &[VSeries],
        gid: &[usize],
        groups: Vec<(Labels, bool)>,
        n: usize,
    ) -> Result<Val, QueryError> {
        let ng = groups.len();
        self.hold(ng.saturating_mul(n))?;
        let mut out: Vec<Vec<Option<f64>>> = vec![vec![None; n]; ng];
        let nparts = self.par.parts(n, input.len().saturating_mul(n));
        let ranges = parallel::ranges(n, nparts);
        // Each part writes its steps of every group's output.
        let mut parts: Vec<StepsPart<'_>> = ranges
            .iter()
            .map(|r| (r.clone(), Vec::with_capacity(ng)))
            .collect();
        for vals in out.iter_mut() {
            let mut rest: &mut [Option<f64>] = vals;
            for (r, slices) in parts.iter_mut() {
                let (mine, tail) = rest.split_at_mut(r.len());
                slices.push(mine);
                rest = tail;
            }
        }
        let firsts = self.run_parts(parts, |w, (steps, mut outs)| {
            let mut first: Vec<Option<(usize, usize)>> = vec![None; ng];
            let block = (MAX_ACCUMULATORS / ng.max(1)).clamp(1, steps.len().max(1));
            let mut accs = vec![Acc::default(); ng.saturating_mul(block)];
            let mut from = steps.start;
            while from < steps.end {
                let len = block.min(steps.end - from);
                for a in accs.iter_mut() {
                    a.seen = false;
                }
                for (k, s) in input.iter().enumerate() {
                    if k % 256 == 0 {
                        w.tick()?;
                    }
                    let g = gid[k];
                    let (Some(row), Some(vals)) = (
                        accs.get_mut(g * len..(g + 1) * len),
                        s.vals.get(from..from + len),
                    ) else {
                        continue;
                    };
                    for (j, (acc, v)) in row.iter_mut().zip(vals).enumerate() {
                        let Some(f) = *v else { continue };
                        if !acc.seen {
                            acc.start(op, f);
                            let step = from + j;
                            if first[g].is_none_or(|(s, _)| step < s) {
                                first[g] = Some((step, k));
                            }
                        } else {
                            acc.add(op, f);
                        }
                    }
                }
                for (g, vals) in outs.iter_mut().enumerate() {
                    let Some(row) = accs.get(g * len..(g + 1) * len) else {
                        continue;
                    };
                    for (j, acc) in row.iter().enumerate() {
                        if acc.seen {
                            vals[from - steps.start + j] = Some(acc.value(op));
                        }
                    }
                }
                from += len;
            }
            Ok(first)
        })?;
        let mut first: Vec<Option<(usize, usize)>> = vec![None; ng];
        for part in firsts {
            for (g, f) in part.into_iter().enumerate() {
                if first[g].is_none() {
                    first[g] = f;
                }
            }
        }
        let mut order: Vec<(usize, usize, usize)> = first
            .iter()
            .enumerate()
            .filter_map(|(g, f)| f.map(|(step, k)| (step, k, g)))
            .collect();
        order.sort_unstable();
        self.release(n.saturating_mul(ng - order.len()));
        let mut groups: Vec<Option<(Labels, bool)>> = groups.into_iter().map(Some).collect();
        let mut result = Vec::with_capacity(order.len());
        for (_, _, g) in order {
            let (labels, drop_name) = groups[g].take().unwrap_or_default();
            result.push(VSeries {
                labels,
                drop_name,
                vals: std::mem::take(&mut out[g]),
            });
        }
        Ok(Val::Vector(result))
    }

    fn aggregate_k(
        &mut self,
        op: &str,
        input: &[crate::eval::VSeries],
        gid: &[usize],
        ngroups: usize,
        params: &[f64],
        n: usize,
    ) -> Result<Val, QueryError> {
        let mut builder = Builder::new(n);
        let mut slots: Vec<Option<usize>> = vec![None; input.len()];
        let mut members: Vec<Vec<usize>> = vec![Vec::new(); ngroups];
        let mut order = Vec::new();
        for i in 0..n {
            self.tick()?;
            let p = params.get(i).copied().unwrap_or(f64::NAN);
            let mut k = 0usize;
            let mut ratio = 0.0;
            if op == "limit_ratio" {
                if p.is_nan() {
                    return Err(QueryError::Execution("Ratio value is NaN".into()));
                }
                ratio = p;
                if !(-1.0..=1.0).contains(&p) {
                    ratio = p.clamp(-1.0, 1.0);
                    self.warn(format!(
                        "PromQL warning: ratio value should be between -1 and 1, got {}, capping to {}",
                        format_go_g(p),
                        format_go_g(ratio)
                    ));
                }
            } else {
                if p.is_nan() {
                    return Err(QueryError::Execution("Parameter value is NaN".into()));
                }
                if p >= 9.223372036854776e18 || p <= -9.223372036854776e18 {
                    return Err(QueryError::Execution(format!(
                        "Scalar value {} overflows int64",
                        format_go_g(p)
                    )));
                }
                if p < 1.0 {
                    continue;
                }
                k = p as usize;
            }
            if input.iter().all(|s| s.vals[i].is_none()) {
                continue;
            }
            for m in members.iter_mut() {
                m.clear();
            }
            order.clear();
            for (idx, s) in input.iter().enumerate() {
                if s.vals[i].is_none() {
                    continue;
                }
                if members[gid[idx]].is_empty() {
                    order.push(gid[idx]);
                }
                members[gid[idx]].push(idx);
            }
            for &g in &order {
                let mut chosen: Vec<usize> = match op {
                    "topk" | "bottomk" => {
                        let mut m = members[g].clone();
                        let val = |x: usize| input[x].vals[i].unwrap_or(f64::NAN);
                        let top = op == "topk";
                        m.sort_by(|&a, &b| {
                            let (va, vb) = (val(a), val(b));
                            match (va.is_nan(), vb.is_nan()) {
                                (true, true) => std::cmp::Ordering::Equal,
                                (true, false) => std::cmp::Ordering::Greater,
                                (false, true) => std::cmp::Ordering::Less,
                                _ => {
                                    if top {
                                        vb.partial_cmp(&va).unwrap_or(std::cmp::Ordering::Equal)
                                    } else {
                                        va.partial_cmp(&vb).unwrap_or(std::cmp::Ordering::Equal)
                                    }
                                }
                            }
                        });
                        m.truncate(k);
                        m
                    }
                    "limitk" => members[g].iter().copied().take(k).collect(),
                    _ => members[g]
                        .iter()
                        .copied()
                        .filter(|&x| {
                            let offset = prometheus_hash(&input[x].labels) as f64 / u64::MAX as f64;
                            (ratio >= 0.0 && offset < ratio)
                                || (ratio < 0.0 && offset >= 1.0 + ratio)
                        })
                        .collect(),
                };
                for x in chosen.drain(..) {
                    let slot = match slots[x] {
                        Some(s) => s,
                        None => {
                            let s = builder.slot(
                                &mut self.memory,
                                input[x].labels.clone(),
                                input[x].drop_name,
                            )?;
                            slots[x] = Some(s);
                            s
                        }
                    };
                    if let Some(v) = input[x].vals[i] {
                        builder.put(slot, i, v)?;
                    }
                }
            }
        }
        Ok(Val::Vector(builder.finish()))
    }
}

/// Formats like Go's `%g` for the values Prometheus prints in messages.
pub(crate) fn format_go_g(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let exp = if v == 0.0 {
        0
    } else {
        v.abs().log10().floor() as i32
    };
    if !(-4..21).contains(&exp) {
        let s = format!("{v:e}");
        // Go writes e+21 / e-05 style exponents.
        if let Some((m, e)) = s.split_once('e') {
            let (sign, digits) = match e.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', e),
            };
            return format!("{m}e{sign}{digits:0>2}");
        }
        return s;
    }
    format!("{v}")
}
