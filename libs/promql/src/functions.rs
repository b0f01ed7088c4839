//! Function dispatch. Pure numeric work is delegated to `rangefn` and
//! `mathfn` (through [`crate::numeric`]); this module does everything that
//! needs the evaluator: argument evaluation, label handling, `absent`,
//! sorting and classic-histogram quantiles.

use promql_parser::parser::value::ValueType;
use promql_parser::parser::{Call, Expr};
use strata_model::{Label, Labels, METRIC_NAME};

use crate::aggregate::format_go_g;
use crate::eval::{
    for_each_window, for_each_window_at, label_value, load_into, prune, Builder, Evaluator,
    RangeInput, Steps, VSeries, Val,
};
use crate::grouping::{Groups, LabelFilter};
use crate::numeric::{self, RangeFn};
use crate::parallel::{self, split_vec};
use crate::plan::unparen;
use crate::rangefn;
use crate::QueryError;

const DATE_FUNCTIONS: &[&str] = &[
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "days_in_month",
    "hour",
    "minute",
    "month",
    "year",
];

/// Histogram functions that only apply to native histograms: over float
/// series they return nothing.
const NATIVE_ONLY_FUNCTIONS: &[&str] = &[
    "histogram_count",
    "histogram_sum",
    "histogram_avg",
    "histogram_stddev",
    "histogram_stdvar",
];

fn string_arg(e: &Expr) -> Result<String, QueryError> {
    match unparen(e) {
        Expr::StringLiteral(s) => Ok(s.val.clone()),
        _ => Err(QueryError::BadData(
            "expected a string literal argument".into(),
        )),
    }
}

fn is_valid_label_name(name: &str) -> bool {
    !name.is_empty() && !name.contains('\u{fffd}')
}

/// Expands `$1`, `${1}`, `$name`, `${name}` and `$$` in `template` the way
/// Go's `regexp.Expand` does.
pub(crate) fn expand_template(
    template: &str,
    caps: &regex::Captures<'_>,
    re: &regex::Regex,
) -> String {
    let mut out = String::new();
    let bytes = template.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let Some(off) = template[i..].find('$') else {
            out.push_str(&template[i..]);
            break;
        };
        out.push_str(&template[i..i + off]);
        i += off + 1;
        if i >= bytes.len() {
            break;
        }
        if bytes[i] == b'$' {
            out.push('$');
            i += 1;
            continue;
        }
        let (name, next) = if bytes[i] == b'{' {
            match template[i + 1..].find('}') {
                Some(end) => {
                    let name = &template[i + 1..i + 1 + end];
                    let valid = !name.is_empty()
                        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
                    if !valid {
                        out.push('$');
                        continue;
                    }
                    (name, i + 2 + end)
                }
                None => {
                    out.push('$');
                    continue;
                }
            }
        } else {
            let len = template[i..]
                .bytes()
                .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
                .count();
            if len == 0 {
                out.push('$');
                continue;
            }
            (&template[i..i + len], i + len)
        };
        i = next;
        if let Ok(n) = name.parse::<usize>() {
            if let Some(m) = caps.get(n) {
                out.push_str(m.as_str());
            }
        } else if re.capture_names().flatten().any(|c| c == name) {
            if let Some(m) = caps.name(name) {
                out.push_str(m.as_str());
            }
        }
    }
    out
}

fn set_label(labels: &Labels, name: &str, value: &str) -> Labels {
    let mut v: Vec<Label> = labels.iter().filter(|l| l.name != name).cloned().collect();
    if !value.is_empty() {
        v.push(Label::new(name, value));
        v.sort();
    }
    Labels::from_sorted(v)
}

/// Natural ("version") ordering used by `sort_by_label`.
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let (ab, bb) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < ab.len() && j < bb.len() {
        if ab[i].is_ascii_digit() && bb[j].is_ascii_digit() {
            let si = i;
            while i < ab.len() && ab[i].is_ascii_digit() {
                i += 1;
            }
            let sj = j;
            while j < bb.len() && bb[j].is_ascii_digit() {
                j += 1;
            }
            let na = a[si..i].trim_start_matches('0');
            let nb = b[sj..j].trim_start_matches('0');
            let ord = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb));
            if ord != std::cmp::Ordering::Equal {
                return ord;
            }
        } else {
            if ab[i] != bb[j] {
                return ab[i].cmp(&bb[j]);
            }
            i += 1;
            j += 1;
        }
    }
    (ab.len() - i).cmp(&(bb.len() - j))
}

/// Labels `absent()` gives its output: the selector's equality matchers.
fn absent_labels(e: &Expr) -> Labels {
    let vs = match unparen(e) {
        Expr::VectorSelector(vs) => vs,
        Expr::MatrixSelector(ms) => &ms.vs,
        _ => return Labels::default(),
    };
    let mut set: Vec<(String, String)> = Vec::new();
    let mut has: Vec<String> = Vec::new();
    for m in &vs.matchers.matchers {
        if m.name == METRIC_NAME {
            continue;
        }
        let equal = matches!(m.op, promql_parser::label::MatchOp::Equal);
        if equal && !has.contains(&m.name) {
            set.retain(|(n, _)| n != &m.name);
            set.push((m.name.clone(), m.value.clone()));
            has.push(m.name.clone());
        } else {
            set.retain(|(n, _)| n != &m.name);
        }
    }
    Labels::from_pairs(set)
}

/// A range function over the windows of every step of a series.
struct Windows<'a> {
    fun: RangeFn,
    /// The function's scalar arguments, one value per step.
    params: &'a [Vec<f64>],
    ends: &'a [i64],
    range: i64,
    steps: Steps,
    quantile_fn: bool,
}

/// Buffers reused from series to series.
#[derive(Default)]
struct WindowScratch {
    /// `resets[j]`: counter resets among the samples up to `j`.
    resets: Vec<usize>,
    params: Vec<f64>,
    /// The last out-of-range quantile met, for the warning.
    bad_quantile: Option<f64>,
}

impl Windows<'_> {
    /// Fills `vals` with the function's value at every step; true when
    /// any step has one.
    fn eval(
        &self,
        samples: &[(i64, f64)],
        vals: &mut [Option<f64>],
        scratch: &mut WindowScratch,
    ) -> Result<bool, QueryError> {
        let mut any = false;
        if let Some((counter, rate)) = self.fun.extrapolated() {
            // Most windows hold no counter reset: knowing it from running
            // counts skips the search for them, the result is the same.
            let resets = &mut scratch.resets;
            resets.clear();
            if counter {
                let mut count = 0usize;
                resets.push(0);
                for w in samples.windows(2) {
                    if w[1].1 < w[0].1 {
                        count += 1;
                    }
                    resets.push(count);
                }
            }
            let resets = &scratch.resets;
            let range_seconds = rangefn::duration_seconds(self.range);
            for_each_window_at(samples, self.ends, self.range, |i, lo, hi| {
                if hi <= lo {
                    return Ok(());
                }
                let may_reset = counter && resets.get(hi - 1) != resets.get(lo);
                let end = self.ends[i];
                let start = end.saturating_sub(self.range);
                let v = rangefn::extrapolated_rate_with(
                    &samples[lo..hi],
                    start,
                    end,
                    counter,
                    rate,
                    may_reset,
                    if end.wrapping_sub(start) == self.range {
                        range_seconds
                    } else {
                        rangefn::duration_seconds(end.wrapping_sub(start))
                    },
                );
                if v.is_some() {
                    any = true;
                }
                vals[i] = v;
                Ok(())
            })?;
            return Ok(any);
        }
        let p = &mut scratch.params;
        p.clear();
        p.resize(self.params.len(), 0.0);
        let bad_quantile = &mut scratch.bad_quantile;
        for_each_window(samples, self.ends, self.range, |i, w| {
            if w.is_empty() {
                return Ok(());
            }
            for (k, param) in self.params.iter().enumerate() {
                p[k] = param[i];
            }
            if self.quantile_fn && !(0.0..=1.0).contains(&p[0]) {
                *bad_quantile = Some(p[0]);
            }
            let end = self.ends[i];
            let v = self
                .fun
                .eval(w, end.saturating_sub(self.range), end, self.steps.ts(i), p);
            if v.is_some() {
                any = true;
            }
            vals[i] = v;
            Ok(())
        })?;
        Ok(any)
    }
}

impl Evaluator<'_> {
    pub(crate) fn eval_call(&mut self, c: &Call, st: &Steps) -> Result<Val, QueryError> {
        let name = c.func.name;
        let args = &c.args.args;
        let n = st.len();
        match name {
            "time" => {
                return Ok(Val::Scalar(
                    (0..n).map(|i| st.ts(i) as f64 / 1000.0).collect(),
                ))
            }
            "pi" => return Ok(Val::Scalar(vec![std::f64::consts::PI; n])),
            "vector" => {
                let v = self.eval_scalar(&args[0], st)?;
                return Ok(Val::Vector(vec![VSeries {
                    labels: Labels::default(),
                    drop_name: false,
                    vals: v.into_iter().map(Some).collect(),
                }]));
            }
            "scalar" => {
                let vs = self.eval_vector(&args[0], st)?;
                let out = (0..n)
                    .map(|i| {
                        let mut it = vs.iter().filter_map(|s| s.vals[i]);
                        match (it.next(), it.next()) {
                            (Some(v), None) => v,
                            _ => f64::NAN,
                        }
                    })
                    .collect();
                return Ok(Val::Scalar(out));
            }
            "timestamp" => {
                let mut vs = match unparen(&args[0]) {
                    Expr::VectorSelector(sel) => self.eval_vector_selector(sel, st, true)?,
                    other => {
                        let mut vs = self.eval_vector(other, st)?;
                        for s in &mut vs {
                            for (i, v) in s.vals.iter_mut().enumerate() {
                                if v.is_some() {
                                    *v = Some(st.ts(i) as f64 / 1000.0);
                                }
                            }
                        }
                        vs
                    }
                };
                for s in &mut vs {
                    s.drop_name = true;
                }
                return Ok(Val::Vector(vs));
            }
            "absent" => {
                let vs = self.eval_vector(&args[0], st)?;
                let vals: Vec<Option<f64>> = (0..n)
                    .map(|i| vs.iter().all(|s| s.vals[i].is_none()).then_some(1.0))
                    .collect();
                return Ok(Val::Vector(prune(vec![VSeries {
                    labels: absent_labels(&args[0]),
                    drop_name: false,
                    vals,
                }])));
            }
            "absent_over_time" => {
                let input = self.range_input(&args[0], st)?;
                let mut present = vec![false; n];
                for s in input.series {
                    let s = self.load(s, input.mint, input.maxt)?;
                    for_each_window(&s.samples, &input.ends, input.range, |i, w| {
                        if !w.is_empty() {
                            present[i] = true;
                        }
                        Ok(())
                    })?;
                    self.release(s.samples.len());
                }
                let labels = match unparen(&args[0]) {
                    Expr::Subquery(_) => Labels::default(),
                    other => absent_labels(other),
                };
                return Ok(Val::Vector(prune(vec![VSeries {
                    labels,
                    drop_name: false,
                    vals: present.iter().map(|p| (!p).then_some(1.0)).collect(),
                }])));
            }
            "label_replace" => return self.label_replace(args, st),
            "label_join" => return self.label_join(args, st),
            "sort" | "sort_desc" | "sort_by_label" | "sort_by_label_desc" => {
                return self.sort(name, args, st)
            }
            "histogram_quantile" => return self.histogram_quantile(args, st),
            "histogram_fraction" => return self.histogram_fraction(args, st),
            "round" | "clamp" | "clamp_min" | "clamp_max" => {
                let mut params = Vec::new();
                for a in &args[1..] {
                    params.push(self.eval_scalar(a, st)?);
                }
                let vs = self.eval_vector(&args[0], st)?;
                return self.map_math(name, vs, &params, n);
            }
            _ => {}
        }
        if NATIVE_ONLY_FUNCTIONS.contains(&name) {
            let _ = self.eval(&args[0], st)?;
            return Ok(Val::Vector(Vec::new()));
        }
        if DATE_FUNCTIONS.contains(&name) {
            let vs = if args.is_empty() {
                vec![VSeries {
                    labels: Labels::default(),
                    drop_name: false,
                    vals: (0..n).map(|i| Some(st.ts(i) as f64 / 1000.0)).collect(),
                }]
            } else {
                self.eval_vector(&args[0], st)?
            };
            return self.map_math(name, vs, &[], n);
        }
        let matrix_arg = args
            .iter()
            .position(|a| a.value_type() == ValueType::Matrix);
        if let Some(mi) = matrix_arg {
            if numeric::is_range_fn(name) {
                return self.range_fn(name, args, mi, st);
            }
        }
        if numeric::is_math_fn(name) && !args.is_empty() {
            let vs = self.eval_vector(&args[0], st)?;
            return self.map_math(name, vs, &[], n);
        }
        Err(QueryError::BadData(format!(
            "function {name:?} is not supported"
        )))
    }

    fn map_math(
        &mut self,
        name: &str,
        mut vs: Vec<VSeries>,
        params: &[Vec<f64>],
        n: usize,
    ) -> Result<Val, QueryError> {
        let mut p = vec![0.0; params.len()];
        for s in &mut vs {
            self.tick()?;
            s.drop_name = true;
            for (i, cell) in s.vals.iter_mut().enumerate().take(n) {
                let Some(v) = *cell else { continue };
                for (k, param) in params.iter().enumerate() {
                    p[k] = param[i];
                }
                *cell = numeric::eval_math_fn(name, v, &p);
            }
        }
        Ok(Val::Vector(prune(vs)))
    }

    fn range_fn(
        &mut self,
        name: &str,
        args: &[Box<Expr>],
        mi: usize,
        st: &Steps,
    ) -> Result<Val, QueryError> {
        let n = st.len();
        let mut params: Vec<Vec<f64>> = Vec::new();
        for (k, a) in args.iter().enumerate() {
            if k != mi {
                params.push(self.eval_scalar(a, st)?);
            }
        }
        let mut p = vec![0.0; params.len()];
        for i in 0..n {
            for (k, param) in params.iter().enumerate() {
                p[k] = param[i];
            }
            numeric::validate_params(name, &p).map_err(QueryError::BadData)?;
        }
        let fun = RangeFn::from_name(name)
            .ok_or_else(|| QueryError::BadData(format!("function {name:?} is not supported")))?;
        let RangeInput {
            series,
            range,
            ends,
            mint,
            maxt,
        } = self.range_input(&args[mi], st)?;
        let keep_name = matches!(name, "last_over_time" | "first_over_time");
        let counter_fn = matches!(name, "rate" | "increase");
        let quantile_fn = name == "quantile_over_time";
        // A series costs its steps and its samples (guessed from a 15 s
        // interval: only decoding tells).
        let per_series = usize::try_from(maxt.saturating_sub(mint) / 15_000)
            .unwrap_or(0)
            .clamp(1, 4096);
        let work = series.len().saturating_mul(n.saturating_add(per_series));
        let nparts = self.par.parts(series.len(), work);
        let parts = split_vec(series, nparts);
        let windows = Windows {
            fun,
            params: &params,
            ends: &ends,
            range,
            steps: *st,
            quantile_fn,
        };
        let outputs = self.run_parts(parts, |w, part| {
            let mut out = Vec::new();
            let mut scratch = WindowScratch::default();
            let mut samples = Vec::new();
            for s in part {
                w.tick()?;
                let (labels, drop_name) = load_into(w, s, mint, maxt, &mut samples)?;
                w.hold(n)?;
                let mut vals = vec![None; n];
                let any = windows.eval(&samples, &mut vals, &mut scratch)?;
                if counter_fn && !samples.is_empty() {
                    if let Some(metric) = label_value(&labels, METRIC_NAME) {
                        if !["_total", "_sum", "_count", "_bucket"]
                            .iter()
                            .any(|x| metric.ends_with(x))
                        {
                            w.info(format!(
                                "PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: {metric:?}"
                            ));
                        }
                    }
                }
                w.release(samples.len());
                if any {
                    out.push(VSeries {
                        labels,
                        drop_name: drop_name || !keep_name,
                        vals,
                    });
                } else {
                    w.release(n);
                }
            }
            Ok((out, scratch.bad_quantile))
        })?;
        let mut bad_quantile = None;
        let mut out = Vec::new();
        for (part, bad) in outputs {
            out.extend(part);
            bad_quantile = bad.or(bad_quantile);
        }
        if let Some(q) = bad_quantile {
            self.warn(format!(
                "PromQL warning: quantile value should be between 0 and 1, got {}",
                format_go_g(q)
            ));
        }
        Ok(Val::Vector(out))
    }

    fn label_replace(&mut self, args: &[Box<Expr>], st: &Steps) -> Result<Val, QueryError> {
        let dst = string_arg(&args[1])?;
        let replacement = string_arg(&args[2])?;
        let src = string_arg(&args[3])?;
        let pattern = string_arg(&args[4])?;
        let re = regex::Regex::new(&format!("^(?s:{pattern})$")).map_err(|e| {
            QueryError::BadData(format!(
                "invalid regular expression in label_replace(): {pattern}: {e}"
            ))
        })?;
        if !is_valid_label_name(&dst) || self.invalid_literals.contains(&dst) {
            return Err(QueryError::BadData(format!(
                "invalid destination label name in label_replace(): {dst}"
            )));
        }
        let vs = self.eval_vector(&args[0], st)?;
        let mut builder = Builder::new(st.len());
        for s in vs {
            let value = s.labels.get(&src).unwrap_or("");
            let (labels, drop_name) = match re.captures(value) {
                Some(caps) => {
                    let res = expand_template(&replacement, &caps, &re);
                    let labels = set_label(&s.labels, &dst, &res);
                    (labels, s.drop_name && dst != METRIC_NAME)
                }
                None => (s.labels.clone(), s.drop_name),
            };
            let slot = builder.slot(&mut self.memory, labels, drop_name)?;
            for (i, v) in s.vals.iter().enumerate() {
                if let Some(v) = v {
                    builder.put(slot, i, *v)?;
                }
            }
        }
        Ok(Val::Vector(builder.finish()))
    }

    fn label_join(&mut self, args: &[Box<Expr>], st: &Steps) -> Result<Val, QueryError> {
        let dst = string_arg(&args[1])?;
        let sep = string_arg(&args[2])?;
        let mut srcs = Vec::new();
        for a in &args[3..] {
            srcs.push(string_arg(a)?);
        }
        if !is_valid_label_name(&dst) || self.invalid_literals.contains(&dst) {
            return Err(QueryError::BadData(format!(
                "invalid destination label name in label_join(): {dst}"
            )));
        }
        let vs = self.eval_vector(&args[0], st)?;
        let mut builder = Builder::new(st.len());
        for s in vs {
            let joined = srcs
                .iter()
                .map(|l| s.labels.get(l).unwrap_or(""))
                .collect::<Vec<_>>()
                .join(&sep);
            let labels = set_label(&s.labels, &dst, &joined);
            let slot = builder.slot(&mut self.memory, labels, s.drop_name && dst != METRIC_NAME)?;
            for (i, v) in s.vals.iter().enumerate() {
                if let Some(v) = v {
                    builder.put(slot, i, *v)?;
                }
            }
        }
        Ok(Val::Vector(builder.finish()))
    }

    fn sort(&mut self, name: &str, args: &[Box<Expr>], st: &Steps) -> Result<Val, QueryError> {
        let mut vs = self.eval_vector(&args[0], st)?;
        if self.query_start != self.query_end {
            self.warn(
                "PromQL warning: sort is ineffective for range queries since results are always ordered by labels"
                    .into(),
            );
        }
        if st.len() != 1 {
            return Ok(Val::Vector(vs));
        }
        match name {
            "sort" | "sort_desc" => {
                let desc = name == "sort_desc";
                vs.sort_by(|a, b| {
                    let (va, vb) = (a.vals[0].unwrap_or(f64::NAN), b.vals[0].unwrap_or(f64::NAN));
                    match (va.is_nan(), vb.is_nan()) {
                        (true, true) => std::cmp::Ordering::Equal,
                        (true, false) => std::cmp::Ordering::Greater,
                        (false, true) => std::cmp::Ordering::Less,
                        _ if desc => vb.partial_cmp(&va).unwrap_or(std::cmp::Ordering::Equal),
                        _ => va.partial_cmp(&vb).unwrap_or(std::cmp::Ordering::Equal),
                    }
                });
            }
            _ => {
                let mut names = Vec::new();
                for a in &args[1..] {
                    names.push(string_arg(a)?);
                }
                let desc = name == "sort_by_label_desc";
                vs.sort_by(|a, b| {
                    for l in &names {
                        let (la, lb) =
                            (a.labels.get(l).unwrap_or(""), b.labels.get(l).unwrap_or(""));
                        let ord = natural_cmp(la, lb);
                        if ord != std::cmp::Ordering::Equal {
                            return if desc { ord.reverse() } else { ord };
                        }
                    }
                    let ord = a.labels.cmp(&b.labels);
                    if desc {
                        ord.reverse()
                    } else {
                        ord
                    }
                });
            }
        }
        Ok(Val::Vector(vs))
    }

    fn histogram_quantile(&mut self, args: &[Box<Expr>], st: &Steps) -> Result<Val, QueryError> {
        let qs = self.eval_scalar(&args[0], st)?;
        if let Some(q) = qs.iter().find(|q| !(0.0..=1.0).contains(*q)) {
            self.warn(format!(
                "PromQL warning: quantile value should be between 0 and 1, got {}",
                format_go_g(*q)
            ));
        }
        self.classic_histogram(&args[1], st, |i, buckets| {
            let (v, info) = numeric::bucket_quantile_with_info(qs[i], buckets);
            (v, info.forced_monotonicity)
        })
    }

    fn histogram_fraction(&mut self, args: &[Box<Expr>], st: &Steps) -> Result<Val, QueryError> {
        let lower = self.eval_scalar(&args[0], st)?;
        let upper = self.eval_scalar(&args[1], st)?;
        self.classic_histogram(&args[2], st, |i, buckets| {
            (bucket_fraction(lower[i], upper[i], buckets), false)
        })
    }

    /// Groups classic-histogram bucket series (by their labels without
    /// `le`) and calls `f` per group and step with `(upper bound,
    /// cumulative count)` pairs; `f` says whether the counts had to be
    /// made monotonic (an info names the metric).
    ///
    /// Group by group (split over threads when there are many), each
    /// group's buckets read along the steps; output series and infos come
    /// in the order a step-by-step evaluation gives them.
    fn classic_histogram(
        &mut self,
        arg: &Expr,
        st: &Steps,
        f: impl Fn(usize, &mut Vec<(f64, f64)>) -> (f64, bool) + Sync,
    ) -> Result<Val, QueryError> {
        let n = st.len();
        let vs = self.eval_vector(arg, st)?;
        let mut buckets_of: Vec<(f64, usize)> = Vec::with_capacity(vs.len());
        for (k, s) in vs.iter().enumerate() {
            let le = s.labels.get("le");
            let Some(upper) = le.and_then(parse_go_float) else {
                self.warn(format!(
                    "PromQL warning: bucket label \"le\" is missing or has a malformed value of {:?} for metric name {:?}",
                    le.unwrap_or(""),
                    s.labels.get(METRIC_NAME).unwrap_or("")
                ));
                continue;
            };
            buckets_of.push((upper, k));
        }
        let filter = LabelFilter::all_but(&["le".to_string()]);
        let labels: Vec<&Labels> = buckets_of.iter().map(|&(_, k)| &vs[k].labels).collect();
        let Groups { gid, first } = self.group_by(&labels, &filter)?;
        let mut members: Vec<Vec<(f64, usize)>> = vec![Vec::new(); first.len()];
        for (b, &g) in buckets_of.iter().zip(&gid) {
            members[g].push(*b);
        }
        let work = buckets_of.len().saturating_mul(n);
        let nparts = self.par.parts(members.len(), work);
        let (vs, members) = (&vs, &members);
        let parts = self.run_parts(parallel::ranges(members.len(), nparts), |w, groups| {
            let mut out = Vec::with_capacity(groups.len());
            let mut buckets: Vec<(f64, f64)> = Vec::new();
            for m in &members[groups] {
                w.tick()?;
                w.hold(n)?;
                let mut vals = vec![None; n];
                let mut first_step = None;
                let mut forced_at = None;
                for (i, val) in vals.iter_mut().enumerate() {
                    buckets.clear();
                    for &(upper, k) in m {
                        if let Some(v) = vs[k].vals[i] {
                            buckets.push((upper, v));
                        }
                    }
                    if buckets.is_empty() {
                        continue;
                    }
                    let (v, forced) = f(i, &mut buckets);
                    if forced && forced_at.is_none() {
                        forced_at = Some(i);
                    }
                    first_step.get_or_insert(i);
                    *val = Some(v);
                }
                if first_step.is_none() {
                    w.release(n);
                }
                out.push((vals, first_step, forced_at));
            }
            Ok(out)
        })?;
        let results = crate::eval::concat(parts);
        let mut order = Vec::with_capacity(results.len());
        let mut forced = Vec::new();
        for (g, (_, first_step, forced_at)) in results.iter().enumerate() {
            if let Some(i) = first_step {
                order.push((*i, g));
            }
            if let Some(i) = forced_at {
                forced.push((*i, g));
            }
        }
        forced.sort_unstable();
        for (_, g) in forced {
            let name = labels[first[g]].get(METRIC_NAME).unwrap_or("");
            self.info(format!(
                "PromQL info: input to histogram_quantile needed to be fixed for monotonicity (see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile) for metric name {name:?}"
            ));
        }
        order.sort_unstable();
        let mut results: Vec<Option<Vec<Option<f64>>>> =
            results.into_iter().map(|r| Some(r.0)).collect();
        let out = order
            .into_iter()
            .map(|(_, g)| VSeries {
                labels: filter.apply(labels[first[g]]),
                drop_name: true,
                vals: results[g].take().unwrap_or_default(),
            })
            .collect();
        Ok(Val::Vector(out))
    }
}

/// The fraction of observations between `lower` and `upper` in a classic
/// histogram (Prometheus's `BucketFraction`): linear interpolation inside
/// finite buckets, none inside the infinite ones; the lowest bucket starts
/// at 0 when its upper bound is positive.
fn bucket_fraction(lower: f64, upper: f64, buckets: &mut [(f64, f64)]) -> f64 {
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    if buckets.last().is_none_or(|b| b.0 != f64::INFINITY) {
        return f64::NAN;
    }
    let mut merged: Vec<(f64, f64)> = Vec::with_capacity(buckets.len());
    for &(u, c) in buckets.iter() {
        match merged.last_mut() {
            Some(last) if last.0 == u => last.1 += c,
            _ => merged.push((u, c)),
        }
    }
    let count = merged[merged.len() - 1].1;
    if count == 0.0 || lower.is_nan() || upper.is_nan() {
        return f64::NAN;
    }
    if lower >= upper {
        return 0.0;
    }
    let (mut rank, mut lower_rank, mut upper_rank) = (0.0, 0.0, 0.0);
    let (mut lower_set, mut upper_set) = (false, false);
    for (i, &(ub, cum)) in merged.iter().enumerate() {
        let lb = if i > 0 {
            merged[i - 1].0
        } else if ub > 0.0 {
            0.0
        } else {
            f64::NEG_INFINITY
        };
        let bucket_count = cum - rank;
        let interpolate = |v: f64| {
            if lb == f64::NEG_INFINITY {
                rank + bucket_count
            } else if ub == f64::INFINITY {
                rank
            } else {
                rank + bucket_count * (v - lb) / (ub - lb)
            }
        };
        if !lower_set && lb >= lower {
            lower_rank = rank;
            lower_set = true;
        }
        if !upper_set && lb >= upper {
            upper_rank = rank;
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        if !lower_set && lb < lower && ub > lower {
            lower_rank = interpolate(lower);
            lower_set = true;
        }
        if !upper_set && lb < upper && ub > upper {
            upper_rank = interpolate(upper);
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        rank = cum;
    }
    if !lower_set || lower_rank > count {
        lower_rank = count;
    }
    if !upper_set || upper_rank > count {
        upper_rank = count;
    }
    (upper_rank - lower_rank) / count
}

/// Parses a float as Go's `strconv.ParseFloat` does for label values.
pub(crate) fn parse_go_float(s: &str) -> Option<f64> {
    let t = s.trim();
    if t.is_empty() {
        return None;
    }
    let lower = t.to_ascii_lowercase();
    match lower.trim_start_matches(['+', '-']) {
        "inf" | "infinity" => {
            return Some(if lower.starts_with('-') {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            })
        }
        "nan" => return Some(f64::NAN),
        _ => {}
    }
    if t != s || t.contains('_') {
        return None;
    }
    t.parse::<f64>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The per-series fast path of `rate`, `increase` and `delta` (resets
    /// counted once, the window length computed once) gives exactly what
    /// evaluating each window on its own gives.
    #[test]
    fn window_fast_path_is_exact() {
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..200 {
            let mut t = (next() % 10_000) as i64;
            let mut v = (next() % 1000) as f64 / 7.0;
            let samples: Vec<(i64, f64)> = (0..(next() % 120))
                .map(|_| {
                    t += 1 + (next() % 30_000) as i64;
                    v = match next() % 10 {
                        0 => (next() % 50) as f64 / 3.0,
                        1 if round % 3 == 0 => f64::NAN,
                        _ => v + (next() % 1000) as f64 / 13.0,
                    };
                    (t, v)
                })
                .collect();
            let range = [60_000, 300_000, 61_001][round % 3];
            let steps = Steps {
                start: 0,
                end: t + 120_000,
                step: 17_000,
            };
            let ends: Vec<i64> = (0..steps.len()).map(|i| steps.ts(i)).collect();
            for fun in [RangeFn::Rate, RangeFn::Increase, RangeFn::Delta] {
                let windows = Windows {
                    fun,
                    params: &[],
                    ends: &ends,
                    range,
                    steps,
                    quantile_fn: false,
                };
                let mut vals = vec![None; steps.len()];
                windows
                    .eval(&samples, &mut vals, &mut WindowScratch::default())
                    .unwrap();
                let mut want = vec![None; steps.len()];
                for_each_window(&samples, &ends, range, |i, w| {
                    want[i] = fun.eval(w, ends[i] - range, ends[i], ends[i], &[]);
                    Ok(())
                })
                .unwrap();
                let bits = |v: &[Option<f64>]| -> Vec<Option<u64>> {
                    v.iter().map(|x| x.map(f64::to_bits)).collect()
                };
                assert_eq!(bits(&vals), bits(&want), "{fun:?} round {round}");
            }
        }
    }
}
