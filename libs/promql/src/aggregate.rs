//! Aggregation operators (`sum`, `avg`, `topk`, `quantile`, …) with
//! `by`/`without` grouping.

use std::collections::HashMap;

use promql_parser::parser::{AggregateExpr, LabelModifier};
use strata_model::{Label, Labels, METRIC_NAME};

use crate::eval::{Builder, Evaluator, Steps, Val};
use crate::numeric;
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

#[derive(Clone, Copy, Default)]
struct Acc {
    seen: bool,
    value: f64,
    mean: f64,
    comp: f64,
    count: f64,
    incremental: bool,
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
        let mut group_index: HashMap<Labels, usize> = HashMap::new();
        let mut groups: Vec<(Labels, bool)> = Vec::new();
        let mut gid = Vec::with_capacity(input.len());
        for s in &input {
            let labels = group_labels(&s.labels, by, &names);
            let next = groups.len();
            let g = *group_index.entry(labels.clone()).or_insert(next);
            if g == next {
                groups.push((labels, false));
            }
            if groups[g].0.get(METRIC_NAME).is_some() {
                groups[g].1 |= s.drop_name;
            }
            gid.push(g);
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
                self.aggregate_simple(&op, &input, &gid, &groups, n)
            }
            other => Err(QueryError::BadData(format!(
                "unsupported aggregation operator {other:?}"
            ))),
        }
    }

    fn aggregate_simple(
        &mut self,
        op: &str,
        input: &[crate::eval::VSeries],
        gid: &[usize],
        groups: &[(Labels, bool)],
        n: usize,
    ) -> Result<Val, QueryError> {
        let mut builder = Builder::new(n);
        let mut accs = vec![Acc::default(); groups.len()];
        let mut order = Vec::new();
        for i in 0..n {
            self.tick()?;
            order.clear();
            for (k, s) in input.iter().enumerate() {
                let Some(f) = s.vals[i] else { continue };
                let acc = &mut accs[gid[k]];
                if !acc.seen {
                    order.push(gid[k]);
                    *acc = Acc {
                        seen: true,
                        value: f,
                        mean: f,
                        comp: 0.0,
                        count: 1.0,
                        incremental: false,
                    };
                    match op {
                        "stddev" | "stdvar" => {
                            acc.value = if f.is_nan() || f.is_infinite() {
                                f64::NAN
                            } else {
                                0.0
                            };
                        }
                        "group" => acc.value = 1.0,
                        _ => {}
                    }
                    continue;
                }
                match op {
                    "sum" => {
                        (acc.value, acc.comp) = kahan_sum_inc(f, acc.value, acc.comp);
                    }
                    "avg" => {
                        acc.count += 1.0;
                        if !acc.incremental {
                            let (nv, nc) = kahan_sum_inc(f, acc.value, acc.comp);
                            if !nv.is_infinite() {
                                acc.value = nv;
                                acc.comp = nc;
                                continue;
                            }
                            acc.incremental = true;
                            acc.mean = acc.value / (acc.count - 1.0);
                            acc.comp /= acc.count - 1.0;
                        }
                        if acc.mean.is_infinite() {
                            if f.is_infinite() && (acc.mean > 0.0) == (f > 0.0) {
                                continue;
                            }
                            if !f.is_infinite() && !f.is_nan() {
                                continue;
                            }
                        }
                        let q = (acc.count - 1.0) / acc.count;
                        (acc.mean, acc.comp) =
                            kahan_sum_inc(f / acc.count, q * acc.mean, q * acc.comp);
                    }
                    "min" if acc.value > f || acc.value.is_nan() => acc.value = f,
                    "max" if acc.value < f || acc.value.is_nan() => acc.value = f,
                    "count" => acc.count += 1.0,
                    "group" => {}
                    "stddev" | "stdvar" => {
                        acc.count += 1.0;
                        let delta = f - acc.mean;
                        acc.mean += delta / acc.count;
                        acc.value += delta * (f - acc.mean);
                    }
                    _ => {}
                }
            }
            for &g in &order {
                let acc = &mut accs[g];
                let v = match op {
                    "sum" => acc.value + acc.comp,
                    "avg" => {
                        if acc.incremental {
                            acc.mean + acc.comp
                        } else {
                            (acc.value + acc.comp) / acc.count
                        }
                    }
                    "count" => acc.count,
                    "stdvar" => acc.value / acc.count,
                    "stddev" => (acc.value / acc.count).sqrt(),
                    _ => acc.value,
                };
                acc.seen = false;
                let slot = builder.slot(&mut self.memory, groups[g].0.clone(), groups[g].1)?;
                builder.put(slot, i, v)?;
            }
        }
        Ok(Val::Vector(builder.finish()))
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

/// Output labels of a group: `by` keeps the listed labels, `without`
/// drops them and the metric name.
pub(crate) fn group_labels(labels: &Labels, by: bool, names: &[String]) -> Labels {
    Labels::from_sorted(
        labels
            .iter()
            .filter(|l| {
                if by {
                    names.contains(&l.name)
                } else {
                    l.name != METRIC_NAME && !names.contains(&l.name)
                }
            })
            .cloned()
            .collect(),
    )
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
