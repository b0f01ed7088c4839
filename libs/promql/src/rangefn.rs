//! Functions over the samples of a range vector (`rate`, `*_over_time`, …).
//!
//! Every function here is a pure numeric kernel over the float samples of a
//! single series inside one evaluation window. Semantics follow Prometheus 3
//! (`promql/functions.go`), including its floating point details (Kahan /
//! Neumaier summation, the order of operations in the extrapolation maths),
//! so that results match Prometheus bit for bit wherever practical.
//!
//! Contract with the evaluator:
//! * `samples` are the float samples of one series with timestamps in the
//!   left-open window `(range_start_ms, range_end_ms]`, sorted by time, stale
//!   markers removed. They are used as given (not re-filtered).
//! * An empty `samples` slice always yields `None` (Prometheus drops series
//!   without samples in the window before calling the function).
//! * `absent_over_time` is handled by the evaluator, not here.
//! * The experimental `ts_of_*_over_time` and `first_over_time` functions are
//!   not implemented (they are behind a feature flag in Prometheus 3.14).

use crate::mathfn::quantile;

/// Names of the range-vector functions evaluated by [`eval_range_fn`].
const RANGE_FNS: &[&str] = &[
    "rate",
    "increase",
    "delta",
    "irate",
    "idelta",
    "deriv",
    "predict_linear",
    "double_exponential_smoothing",
    "resets",
    "changes",
    "avg_over_time",
    "min_over_time",
    "max_over_time",
    "sum_over_time",
    "count_over_time",
    "stddev_over_time",
    "stdvar_over_time",
    "last_over_time",
    "present_over_time",
    "quantile_over_time",
    "mad_over_time",
];

/// Whether `name` is a function over a range vector this module evaluates.
pub fn is_range_fn(name: &str) -> bool {
    RANGE_FNS.contains(&name)
}

/// Checks the scalar parameters of range function `name` the way Prometheus
/// does before evaluating it, returning Prometheus's error message on failure.
///
/// Only `double_exponential_smoothing` has parameters that can fail a query:
/// the smoothing factor `sf` and the trend factor `tf` must both lie strictly
/// between 0 and 1. As in Prometheus, NaN passes the check (the result is then
/// NaN). Missing parameters are not reported here (the parser checks arity).
/// An out-of-range quantile for `quantile_over_time` is only a warning in
/// Prometheus, so it is not an error here either.
pub fn validate_params(name: &str, params: &[f64]) -> Result<(), String> {
    if name == "double_exponential_smoothing" {
        if let Some(&sf) = params.first() {
            if sf <= 0.0 || sf >= 1.0 {
                return Err(format!(
                    "invalid smoothing factor. Expected: 0 < sf < 1, got: {}",
                    go_fmt_f(sf)
                ));
            }
        }
        if let Some(&tf) = params.get(1) {
            if tf <= 0.0 || tf >= 1.0 {
                return Err(format!(
                    "invalid trend factor. Expected: 0 < tf < 1, got: {}",
                    go_fmt_f(tf)
                ));
            }
        }
    }
    Ok(())
}

/// Formats a float like Go's `%f` verb (six decimals, `+Inf`/`-Inf`/`NaN`).
fn go_fmt_f(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v == f64::INFINITY {
        "+Inf".to_string()
    } else if v == f64::NEG_INFINITY {
        "-Inf".to_string()
    } else {
        format!("{v:.6}")
    }
}

/// Evaluates function `name` over the samples of one series inside the
/// left-open window `(range_start_ms, range_end_ms]`; samples sorted by time,
/// stale markers already removed.
///
/// `eval_ts_ms` is the evaluation timestamp (Prometheus's `enh.Ts`). It only
/// matters for `predict_linear`, which (like Prometheus) anchors its
/// regression at the evaluation time rather than at the window end; the
/// extrapolation of `rate`/`increase`/`delta` uses the window bounds.
///
/// `params`: `[q]` for `quantile_over_time`, `[t_seconds]` for
/// `predict_linear`, `[sf, tf]` for `double_exponential_smoothing`, empty
/// otherwise. Returns `None` when there is no output sample: unknown function,
/// no samples, too few samples for the function, missing parameters, or
/// invalid `double_exponential_smoothing` factors (see [`validate_params`]).
pub fn eval_range_fn(
    name: &str,
    samples: &[(i64, f64)],
    range_start_ms: i64,
    range_end_ms: i64,
    eval_ts_ms: i64,
    params: &[f64],
) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    match name {
        "rate" => extrapolated_rate(samples, range_start_ms, range_end_ms, true, true),
        "increase" => extrapolated_rate(samples, range_start_ms, range_end_ms, true, false),
        "delta" => extrapolated_rate(samples, range_start_ms, range_end_ms, false, false),
        "irate" => instant_value(samples, true),
        "idelta" => instant_value(samples, false),
        "deriv" => deriv(samples),
        "predict_linear" => predict_linear(samples, eval_ts_ms, *params.first()?),
        "double_exponential_smoothing" => {
            double_exponential_smoothing(samples, *params.first()?, *params.get(1)?)
        }
        "resets" => Some(resets(samples)),
        "changes" => Some(changes(samples)),
        "avg_over_time" => Some(avg_over_time(samples)),
        "min_over_time" => Some(compare_over_time(samples, |cur, acc| {
            cur < acc || acc.is_nan()
        })),
        "max_over_time" => Some(compare_over_time(samples, |cur, acc| {
            cur > acc || acc.is_nan()
        })),
        "sum_over_time" => Some(sum_over_time(samples)),
        "count_over_time" => Some(samples.len() as f64),
        "stddev_over_time" => Some(variance_over_time(samples).sqrt()),
        "stdvar_over_time" => Some(variance_over_time(samples)),
        "last_over_time" => samples.last().map(|s| s.1),
        "present_over_time" => Some(1.0),
        "quantile_over_time" => {
            let q = *params.first()?;
            let mut values: Vec<f64> = samples.iter().map(|s| s.1).collect();
            Some(quantile(q, &mut values))
        }
        "mad_over_time" => Some(mad_over_time(samples)),
        _ => None,
    }
}

/// One step of Kahan summation with Neumaier's improvement (Prometheus's
/// `kahansum.Inc`): adds `inc` to the running `sum` with compensation `c` and
/// returns the new `(sum, c)`. The final value is `sum + c`. Once the sum
/// becomes infinite the compensation is reset to 0, so an infinite sum is not
/// turned into NaN by the correction term.
pub fn kahan_sum_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
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

/// A range length in seconds computed like Go's `time.Duration.Seconds()`
/// (whole seconds plus the fractional part), so that per-second rates round
/// exactly as in Prometheus.
pub(crate) fn duration_seconds(ms: i64) -> f64 {
    let secs = ms / 1000;
    let rem_ms = ms % 1000;
    secs as f64 + (rem_ms * 1_000_000) as f64 / 1e9
}

/// `rate`, `increase` and `delta` (Prometheus's `extrapolatedRate`).
///
/// The difference between the last and the first sample (plus, for counters,
/// the value before every reset) is extrapolated towards the window edges:
/// all the way if the first/last sample is within 110% of the average sample
/// interval from the edge, otherwise by half an average interval. For
/// counters, the extrapolation to the left stops where the counter would
/// reach zero. Rates are divided by the window length in seconds.
fn extrapolated_rate(
    samples: &[(i64, f64)],
    range_start_ms: i64,
    range_end_ms: i64,
    is_counter: bool,
    is_rate: bool,
) -> Option<f64> {
    extrapolated_rate_with(
        samples,
        range_start_ms,
        range_end_ms,
        is_counter,
        is_rate,
        true,
        duration_seconds(range_end_ms.wrapping_sub(range_start_ms)),
    )
}

/// [`extrapolated_rate`] told whether the counter may reset inside the
/// window (when the caller knows it does not, the search for resets, which
/// would find none, is skipped) and the window's length in seconds
/// (`duration_seconds(range_end_ms - range_start_ms)`, the same for every
/// step of a query).
pub(crate) fn extrapolated_rate_with(
    samples: &[(i64, f64)],
    range_start_ms: i64,
    range_end_ms: i64,
    is_counter: bool,
    is_rate: bool,
    may_reset: bool,
    range_seconds: f64,
) -> Option<f64> {
    if samples.len() < 2 {
        return None;
    }
    let (first_t, first_v) = samples[0];
    let (last_t, last_v) = samples[samples.len() - 1];
    let num_samples_minus_one = (samples.len() - 1) as f64;

    let mut result = last_v - first_v;
    if is_counter && may_reset {
        for w in samples.windows(2) {
            if w[1].1 < w[0].1 {
                result += w[0].1;
            }
        }
    }

    let mut duration_to_start = (first_t - range_start_ms) as f64 / 1000.0;
    let mut duration_to_end = (range_end_ms - last_t) as f64 / 1000.0;
    let sampled_interval = (last_t - first_t) as f64 / 1000.0;
    let average_duration_between_samples = sampled_interval / num_samples_minus_one;

    let extrapolation_threshold = average_duration_between_samples * 1.1;
    if duration_to_start >= extrapolation_threshold {
        duration_to_start = average_duration_between_samples / 2.0;
    }
    if is_counter {
        // A counter cannot go below zero: if extrapolating to the left would
        // cross zero, stop at the (linearly estimated) zero point.
        let mut duration_to_zero = duration_to_start;
        if result > 0.0 && first_v >= 0.0 {
            duration_to_zero = sampled_interval * (first_v / result);
        }
        if duration_to_zero < duration_to_start {
            duration_to_start = duration_to_zero;
        }
    }
    if duration_to_end >= extrapolation_threshold {
        duration_to_end = average_duration_between_samples / 2.0;
    }

    let mut factor = (sampled_interval + duration_to_start + duration_to_end) / sampled_interval;
    if is_rate {
        factor /= range_seconds;
    }
    Some(result * factor)
}

/// `irate` and `idelta` (Prometheus's `instantValue`): the difference of the
/// last two samples, per second for `irate`. For `irate` a decrease counts as
/// a counter reset, in which case the last value itself is the increase.
pub(crate) fn instant_value(samples: &[(i64, f64)], is_rate: bool) -> Option<f64> {
    if samples.len() < 2 {
        return None;
    }
    let (t0, v0) = samples[samples.len() - 2];
    let (t1, v1) = samples[samples.len() - 1];
    let sampled_interval = t1 - t0;
    if sampled_interval == 0 {
        return None;
    }
    let mut result = v1;
    if !is_rate || v1 >= v0 || v1.is_nan() || v0.is_nan() {
        // Gauge, counter without reset, or a NaN involved (never a reset).
        result = v1 - v0;
    }
    if is_rate {
        result /= sampled_interval as f64 / 1000.0;
    }
    Some(result)
}

/// Least-squares linear regression of value over time (Prometheus's
/// `linearRegression`), with x = seconds relative to `intercept_time_ms` and
/// Kahan-compensated sums. Returns `(slope per second, value at the intercept
/// time)`. A constant series gives slope 0 (or NaN if it is constantly ±Inf).
fn linear_regression(samples: &[(i64, f64)], intercept_time_ms: i64) -> (f64, f64) {
    let mut n = 0.0;
    let (mut sum_x, mut c_x) = (0.0, 0.0);
    let (mut sum_y, mut c_y) = (0.0, 0.0);
    let (mut sum_xy, mut c_xy) = (0.0, 0.0);
    let (mut sum_x2, mut c_x2) = (0.0, 0.0);
    let init_y = samples[0].1;
    let mut const_y = true;
    for (i, &(t, v)) in samples.iter().enumerate() {
        // Note: NaN != NaN, so NaN values make the series non-constant.
        if const_y && i > 0 && v != init_y {
            const_y = false;
        }
        n += 1.0;
        let x = (t - intercept_time_ms) as f64 / 1e3;
        (sum_x, c_x) = kahan_sum_inc(x, sum_x, c_x);
        (sum_y, c_y) = kahan_sum_inc(v, sum_y, c_y);
        (sum_xy, c_xy) = kahan_sum_inc(x * v, sum_xy, c_xy);
        (sum_x2, c_x2) = kahan_sum_inc(x * x, sum_x2, c_x2);
    }
    if const_y {
        if init_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init_y);
    }
    sum_x += c_x;
    sum_y += c_y;
    sum_xy += c_xy;
    sum_x2 += c_x2;

    let cov_xy = sum_xy - sum_x * sum_y / n;
    let var_x = sum_x2 - sum_x * sum_x / n;

    let slope = cov_xy / var_x;
    let intercept = sum_y / n - slope * sum_x / n;
    (slope, intercept)
}

/// `deriv`: per-second slope of the least-squares fit (needs 2 samples).
/// The regression is anchored at the first sample to limit rounding errors.
pub(crate) fn deriv(samples: &[(i64, f64)]) -> Option<f64> {
    if samples.len() < 2 {
        return None;
    }
    Some(linear_regression(samples, samples[0].0).0)
}

/// `predict_linear`: the least-squares fit evaluated `duration_s` seconds
/// after the evaluation timestamp (needs 2 samples).
pub(crate) fn predict_linear(
    samples: &[(i64, f64)],
    eval_ts_ms: i64,
    duration_s: f64,
) -> Option<f64> {
    if samples.len() < 2 {
        return None;
    }
    let (slope, intercept) = linear_regression(samples, eval_ts_ms);
    Some(slope * duration_s + intercept)
}

/// `double_exponential_smoothing` (formerly `holt_winters`): Holt's linear
/// smoothing with smoothing factor `sf` and trend factor `tf`, returning the
/// last smoothed value. Needs 2 samples; invalid factors yield `None`.
pub(crate) fn double_exponential_smoothing(
    samples: &[(i64, f64)],
    sf: f64,
    tf: f64,
) -> Option<f64> {
    if sf <= 0.0 || sf >= 1.0 || tf <= 0.0 || tf >= 1.0 {
        return None;
    }
    if samples.len() < 2 {
        return None;
    }
    let mut s0 = 0.0;
    let mut s1 = samples[0].1;
    let mut b = samples[1].1 - samples[0].1;
    for (i, &(_, v)) in samples.iter().enumerate().skip(1) {
        let x = sf * v;
        // The trend of the very first step is the initial difference.
        if i > 1 {
            b = tf * (s1 - s0) + (1.0 - tf) * b;
        }
        let y = (1.0 - sf) * (s1 + b);
        s0 = s1;
        s1 = x + y;
    }
    Some(s1)
}

/// `resets`: number of decreases between consecutive samples.
pub(crate) fn resets(samples: &[(i64, f64)]) -> f64 {
    samples.windows(2).filter(|w| w[1].1 < w[0].1).count() as f64
}

/// `changes`: number of value changes between consecutive samples; two NaNs
/// in a row do not count as a change.
pub(crate) fn changes(samples: &[(i64, f64)]) -> f64 {
    samples
        .windows(2)
        .filter(|w| {
            let (prev, cur) = (w[0].1, w[1].1);
            cur != prev && !(cur.is_nan() && prev.is_nan())
        })
        .count() as f64
}

/// `avg_over_time`: Kahan-compensated sum divided by the count; if the running
/// sum would overflow, switches to an incremental (running) mean, as
/// Prometheus 3 does.
pub(crate) fn avg_over_time(samples: &[(i64, f64)]) -> f64 {
    let mut sum = samples[0].1;
    let mut count = 1.0;
    let mut mean = 0.0;
    let mut kahan_c = 0.0;
    let mut incremental_mean = false;
    for (i, &(_, v)) in samples.iter().enumerate().skip(1) {
        count = (i + 1) as f64;
        if !incremental_mean {
            let (new_sum, new_c) = kahan_sum_inc(v, sum, kahan_c);
            if !new_sum.is_infinite() {
                sum = new_sum;
                kahan_c = new_c;
                continue;
            }
            incremental_mean = true;
            mean = sum / (count - 1.0);
            kahan_c /= count - 1.0;
        }
        let q = (count - 1.0) / count;
        (mean, kahan_c) = kahan_sum_inc(v / count, q * mean, q * kahan_c);
    }
    if incremental_mean {
        mean + kahan_c
    } else {
        sum / count + kahan_c / count
    }
}

/// `sum_over_time`: Kahan-compensated sum (an infinite sum is returned as is).
pub(crate) fn sum_over_time(samples: &[(i64, f64)]) -> f64 {
    let (mut sum, mut c) = (0.0, 0.0);
    for &(_, v) in samples {
        (sum, c) = kahan_sum_inc(v, sum, c);
    }
    if sum.is_infinite() {
        sum
    } else {
        sum + c
    }
}

/// Shared body of `min_over_time`/`max_over_time`: keeps the first value and
/// replaces it whenever `better(cur, acc)` holds. The comparators also replace
/// a NaN accumulator, so NaN is only returned if all values are NaN.
pub(crate) fn compare_over_time(samples: &[(i64, f64)], better: impl Fn(f64, f64) -> bool) -> f64 {
    let mut acc = samples[0].1;
    for &(_, v) in samples {
        if better(v, acc) {
            acc = v;
        }
    }
    acc
}

/// Population variance with a Kahan-compensated running mean (Welford's
/// method), shared by `stddev_over_time` and `stdvar_over_time`.
pub(crate) fn variance_over_time(samples: &[(i64, f64)]) -> f64 {
    let mut count = 0.0;
    let (mut mean, mut c_mean) = (0.0, 0.0);
    let (mut aux, mut c_aux) = (0.0, 0.0);
    for &(_, v) in samples {
        count += 1.0;
        let delta = v - (mean + c_mean);
        (mean, c_mean) = kahan_sum_inc(delta / count, mean, c_mean);
        (aux, c_aux) = kahan_sum_inc(delta * (v - (mean + c_mean)), aux, c_aux);
    }
    (aux + c_aux) / count
}

/// `mad_over_time`: median of the absolute deviations from the median. Any
/// NaN sample makes the result NaN (Prometheus 3.14 behaviour).
pub(crate) fn mad_over_time(samples: &[(i64, f64)]) -> f64 {
    if samples.iter().any(|s| s.1.is_nan()) {
        return f64::NAN;
    }
    let mut values: Vec<f64> = samples.iter().map(|s| s.1).collect();
    let median = quantile(0.5, &mut values);
    for v in values.iter_mut() {
        *v = (*v - median).abs();
    }
    quantile(0.5, &mut values)
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: i64 = 60_000;

    /// Samples `start, start+step, …` every `interval_ms` starting at t=0,
    /// like promqltest's `load <interval> start+stepxN`.
    fn series(interval_ms: i64, values: &[f64]) -> Vec<(i64, f64)> {
        values
            .iter()
            .enumerate()
            .map(|(i, &v)| (i as i64 * interval_ms, v))
            .collect()
    }

    fn linear(interval_ms: i64, start: f64, step: f64, n: usize) -> Vec<(i64, f64)> {
        series(
            interval_ms,
            &(0..=n).map(|i| start + step * i as f64).collect::<Vec<_>>(),
        )
    }

    /// Selects the samples in `(ts - range, ts]`, then evaluates `name`.
    fn eval_at(name: &str, all: &[(i64, f64)], ts: i64, range: i64, params: &[f64]) -> Option<f64> {
        let window: Vec<(i64, f64)> = all
            .iter()
            .copied()
            .filter(|&(t, _)| t > ts - range && t <= ts)
            .collect();
        eval_range_fn(name, &window, ts - range, ts, ts, params)
    }

    fn assert_close(got: Option<f64>, want: f64) {
        let got = got.expect("expected a value");
        if want.is_nan() {
            assert!(got.is_nan(), "got {got}, want NaN");
            return;
        }
        if want.is_infinite() || want == 0.0 {
            assert_eq!(got, want);
            return;
        }
        let rel = ((got - want) / want).abs();
        assert!(rel < 1e-9, "got {got}, want {want}");
    }

    #[test]
    fn names() {
        assert!(is_range_fn("rate"));
        assert!(is_range_fn("mad_over_time"));
        assert!(is_range_fn("double_exponential_smoothing"));
        assert!(!is_range_fn("absent_over_time"));
        assert!(!is_range_fn("ts_of_max_over_time"));
        assert!(!is_range_fn("holt_winters"));
        assert!(!is_range_fn("abs"));
        assert_eq!(eval_range_fn("nope", &[(1, 1.0)], 0, 1, 1, &[]), None);
    }

    #[test]
    fn kahan_neumaier() {
        let mut s = (0.0, 0.0);
        for v in [1.0, 1e100, 1.0, -1e100] {
            s = kahan_sum_inc(v, s.0, s.1);
        }
        assert_eq!(s.0 + s.1, 2.0);
        // Compensation reset on overflow.
        let (t, c) = kahan_sum_inc(f64::MAX, f64::MAX, 5.0);
        assert_eq!((t, c), (f64::INFINITY, 0.0));
    }

    #[test]
    fn increase_extrapolation() {
        // functions.test: load 5m; eval at 50m increase(...[50m]).
        let foo = linear(5 * M, 0.0, 10.0, 10);
        let bar: Vec<(i64, f64)> = series(
            5 * M,
            &[0., 18., 36., 54., 72., 90., 0., 18., 36., 54., 72., 90.],
        );
        let dings = linear(5 * M, 10.0, 10.0, 10);
        let bumms = linear(5 * M, 1.0, 10.0, 10);
        assert_close(eval_at("increase", &foo, 50 * M, 50 * M, &[]), 100.0);
        assert_close(eval_at("increase", &bar, 50 * M, 50 * M, &[]), 160.0);
        assert_close(eval_at("increase", &dings, 50 * M, 50 * M, &[]), 100.0);
        assert_close(eval_at("increase", &bumms, 50 * M, 50 * M, &[]), 100.0);
        assert_close(eval_at("increase", &foo, 50 * M, 100 * M, &[]), 100.0);
        assert_close(eval_at("increase", &bar, 50 * M, 100 * M, &[]), 162.0);
        assert_close(eval_at("increase", &dings, 50 * M, 100 * M, &[]), 105.0);
        assert_close(eval_at("increase", &bumms, 50 * M, 100 * M, &[]), 101.0);
        // Counter reset: 0 1 2 3 2 3 4 -> 7.
        let reset = series(5 * M, &[0., 1., 2., 3., 2., 3., 4.]);
        assert_close(eval_at("increase", &reset, 30 * M, 30 * M, &[]), 7.0);
    }

    #[test]
    fn rate_cases() {
        // testcounter_reset_middle_total 0+27x4 0+27x5
        let mid = series(
            5 * M,
            &[0., 27., 54., 81., 108., 0., 27., 54., 81., 108., 135.],
        );
        assert_close(eval_at("rate", &mid, 50 * M, 50 * M, &[]), 0.08);
        // testcounter_reset_end_total 0+10x9 0 10
        let end = series(
            5 * M,
            &[0., 10., 20., 30., 40., 50., 60., 70., 80., 90., 0., 10.],
        );
        assert_eq!(eval_at("rate", &end, 50 * M, 5 * M, &[]), None);
        assert_close(eval_at("rate", &end, 50 * M, 6 * M, &[]), 0.0);
        let window = linear(5 * M, 0.0, 80.0, 10);
        assert_close(
            eval_at("rate", &window, 50 * M, 50 * M, &[]),
            0.26666666666666666,
        );
        // rate(x[10m] offset 5m) at 50m: window (35m, 45m], eval ts 50m.
        let a = linear(5 * M, 0.0, 10.0, 10);
        let win: Vec<_> = a
            .iter()
            .copied()
            .filter(|&(t, _)| t > 35 * M && t <= 45 * M)
            .collect();
        assert_close(
            eval_range_fn("rate", &win, 35 * M, 45 * M, 50 * M, &[]),
            0.03333333333333333,
        );
    }

    #[test]
    fn rate_zero_cutoff() {
        // load 4m; testcounter_zero_cutoff_total{start=...} (60*k)+240x10.
        let want_10m = [0.5, 0.55, 0.6, 0.6, 0.6, 0.6];
        for (k, want) in want_10m.iter().enumerate() {
            let s = linear(4 * M, 60.0 * k as f64, 240.0, 10);
            assert_close(eval_at("rate", &s, 10 * M, 20 * M, &[]), *want);
            assert_close(eval_at("rate", &s, 50 * M, 20 * M, &[]), 0.6);
        }
    }

    #[test]
    fn delta_cases() {
        let foo = series(5 * M, &[0., 50., 100., 150., 200.]);
        let bar = series(5 * M, &[200., 150., 100., 50., 0.]);
        assert_close(eval_at("delta", &foo, 20 * M, 20 * M, &[]), 200.0);
        assert_close(eval_at("delta", &bar, 20 * M, 20 * M, &[]), -200.0);
        assert_eq!(eval_at("delta", &foo, 20 * M, M, &[]), None);
    }

    #[test]
    fn irate_idelta() {
        let foo = linear(5 * M, 0.0, 10.0, 10);
        let bar = series(
            5 * M,
            &[0., 10., 20., 30., 40., 50., 0., 10., 20., 30., 40., 50.],
        );
        assert_close(
            eval_at("irate", &foo, 50 * M, 50 * M, &[]),
            0.03333333333333333,
        );
        assert_close(
            eval_at("irate", &bar, 50 * M, 50 * M, &[]),
            0.03333333333333333,
        );
        assert_close(
            eval_at("irate", &foo, 30 * M, 50 * M, &[]),
            0.03333333333333333,
        );
        // Reset at 30m: 50 -> 0 means the increase is 0.
        assert_close(eval_at("irate", &bar, 30 * M, 50 * M, &[]), 0.0);
        // http_requests_nan 1 NaN NaN 5 11, range [15m1s] at 5m..20m.
        let nan = series(5 * M, &[1., f64::NAN, f64::NAN, 5., 11.]);
        let r = 15 * M + 1000;
        assert_eq!(eval_at("irate", &nan, 0, r, &[]), None);
        for ts in [5 * M, 10 * M, 15 * M] {
            assert_close(eval_at("irate", &nan, ts, r, &[]), f64::NAN);
            assert_close(eval_at("idelta", &nan, ts, r, &[]), f64::NAN);
        }
        assert_close(eval_at("irate", &nan, 20 * M, r, &[]), 0.02);
        assert_close(eval_at("idelta", &nan, 20 * M, r, &[]), 6.0);
        let g = series(5 * M, &[0., 50., 100., 50.]);
        assert_close(eval_at("idelta", &g, 20 * M, 20 * M, &[]), -50.0);
        // Equal timestamps: no division by zero, no output.
        assert_eq!(
            eval_range_fn("irate", &[(5, 1.0), (5, 2.0)], 0, 5, 5, &[]),
            None
        );
    }

    #[test]
    fn deriv_and_predict_linear() {
        let s = series(
            5 * M,
            &[0., 10., 20., 30., 40., 0., 10., 20., 30., 40., 50.],
        );
        assert_close(
            eval_at("deriv", &s, 50 * M, 100 * M, &[]),
            0.010606060606060607,
        );
        let http = linear(5 * M, 0.0, 80.0, 10);
        assert_close(
            eval_at("deriv", &http, 50 * M, 50 * M, &[]),
            0.26666666666666666,
        );
        assert_close(
            eval_at("predict_linear", &s, 50 * M, 50 * M, &[3600.0]),
            70.0,
        );
        // [55m] @ 3000 evaluated at 50m, 10m and 70m: the window is fixed at
        // (-5m, 50m], the regression is anchored at the evaluation time.
        for (eval, want) in [
            (50 * M, 76.81818181818181),
            (10 * M, 51.36363636363637),
            (70 * M, 89.54545454545455),
        ] {
            assert_close(
                eval_range_fn("predict_linear", &s, -5 * M, 50 * M, eval, &[3600.0]),
                want,
            );
        }
        // -Inf 0+80x10 Inf -> NaN.
        let mut inf = vec![f64::NEG_INFINITY];
        inf.extend((0..=10).map(|i| 80.0 * i as f64));
        inf.push(f64::INFINITY);
        let inf = series(5 * M, &inf);
        assert_close(eval_at("deriv", &inf, 100 * M, 100 * M, &[]), f64::NAN);
        assert_close(
            eval_at("predict_linear", &inf, 100 * M, 100 * M, &[6000.0]),
            f64::NAN,
        );
        // Constant series.
        let c = series(M, &[3.0, 3.0, 3.0]);
        assert_close(eval_at("deriv", &c, 2 * M, 5 * M, &[]), 0.0);
        assert_close(eval_at("predict_linear", &c, 2 * M, 5 * M, &[100.0]), 3.0);
        let ci = series(M, &[f64::INFINITY, f64::INFINITY]);
        assert_close(eval_at("deriv", &ci, 2 * M, 5 * M, &[]), f64::NAN);
        // Too few samples / missing parameter.
        assert_eq!(eval_at("deriv", &c, 0, 5 * M, &[]), None);
        assert_eq!(eval_at("predict_linear", &c, 2 * M, 5 * M, &[]), None);
    }

    #[test]
    fn double_exponential_smoothing_cases() {
        let ten = 10_000;
        let mut a: Vec<f64> = (0..=1000).map(|i| 10.0 * i as f64).collect();
        a.extend((0..=1000).map(|i| 100.0 + 30.0 * i as f64));
        let a = series(ten, &a);
        assert_close(
            eval_at(
                "double_exponential_smoothing",
                &a,
                8000 * 1000,
                M,
                &[0.01, 0.1],
            ),
            8000.0,
        );
        assert_close(
            eval_at(
                "double_exponential_smoothing",
                &a,
                20010 * 1000,
                M,
                &[0.01, 0.1],
            ),
            30100.0,
        );
        let neg = series(
            ten,
            &(0..=1000)
                .map(|i| 8000.0 - 10.0 * i as f64)
                .collect::<Vec<_>>(),
        );
        assert_close(
            eval_at(
                "double_exponential_smoothing",
                &neg,
                8000 * 1000,
                M,
                &[0.01, 0.1],
            ),
            0.0,
        );
        let c = linear(ten, 0.0, 40.0, 2000);
        assert_close(
            eval_at(
                "double_exponential_smoothing",
                &c,
                8000 * 1000,
                M,
                &[0.01, 0.1],
            ),
            32000.0,
        );
        // Invalid factors and too few samples.
        assert_eq!(
            eval_at(
                "double_exponential_smoothing",
                &c,
                8000 * 1000,
                M,
                &[1.0, 0.1]
            ),
            None
        );
        assert_eq!(
            eval_at(
                "double_exponential_smoothing",
                &c,
                8000 * 1000,
                M,
                &[0.5, 0.0]
            ),
            None
        );
        assert_eq!(
            eval_at("double_exponential_smoothing", &c, 0, M, &[0.5, 0.5]),
            None
        );
        assert_eq!(
            eval_at("double_exponential_smoothing", &c, 100_000, M, &[0.5]),
            None
        );
        // Hand-computed: values 1, 3, 4 with sf = tf = 0.5.
        // s1=1, b=2; i=1: s1 = 0.5*3 + 0.5*(1+2) = 3;
        // i=2: b = 0.5*(3-1) + 0.5*2 = 2, s1 = 0.5*4 + 0.5*(3+2) = 4.5.
        let h = series(1000, &[1.0, 3.0, 4.0]);
        assert_close(
            eval_at(
                "double_exponential_smoothing",
                &h,
                2000,
                10_000,
                &[0.5, 0.5],
            ),
            4.5,
        );
    }

    #[test]
    fn validate() {
        assert!(validate_params("double_exponential_smoothing", &[0.5, 0.5]).is_ok());
        assert!(validate_params("double_exponential_smoothing", &[f64::NAN, 0.5]).is_ok());
        assert_eq!(
            validate_params("double_exponential_smoothing", &[1.0, 0.5]).unwrap_err(),
            "invalid smoothing factor. Expected: 0 < sf < 1, got: 1.000000"
        );
        assert_eq!(
            validate_params("double_exponential_smoothing", &[0.5, -0.25]).unwrap_err(),
            "invalid trend factor. Expected: 0 < tf < 1, got: -0.250000"
        );
        assert_eq!(
            validate_params("double_exponential_smoothing", &[f64::INFINITY, 0.5]).unwrap_err(),
            "invalid smoothing factor. Expected: 0 < sf < 1, got: +Inf"
        );
        assert!(validate_params("quantile_over_time", &[5.0]).is_ok());
        assert!(validate_params("rate", &[]).is_ok());
    }

    #[test]
    fn resets_and_changes() {
        let foo = series(5 * M, &[1., 2., 3., 0., 1., 0., 0., 1., 2., 0.]);
        let bar = series(5 * M, &[1., 2., 3., 4., 5., 1., 2., 3., 4., 5.]);
        let biz = series(5 * M, &[0., 0., 0., 0., 0., 1., 1., 1., 1., 1.]);
        let ts = 50 * M;
        assert_eq!(eval_at("resets", &foo, ts, 5 * M, &[]), None);
        for (range, want) in [
            (10 * M, [0.0, 0.0, 0.0]),
            (20 * M, [1.0, 0.0, 0.0]),
            (30 * M, [1.0, 0.0, 0.0]),
            (32 * M, [2.0, 1.0, 0.0]),
            (50 * M, [3.0, 1.0, 0.0]),
        ] {
            assert_eq!(eval_at("resets", &foo, ts, range, &[]), Some(want[0]));
            assert_eq!(eval_at("resets", &bar, ts, range, &[]), Some(want[1]));
            assert_eq!(eval_at("resets", &biz, ts, range, &[]), Some(want[2]));
        }
        for (range, want) in [
            (6 * M, [0.0, 0.0, 0.0]),
            (20 * M, [2.0, 2.0, 0.0]),
            (30 * M, [3.0, 4.0, 0.0]),
            (50 * M, [7.0, 8.0, 1.0]),
        ] {
            assert_eq!(eval_at("changes", &foo, ts, range, &[]), Some(want[0]));
            assert_eq!(eval_at("changes", &bar, ts, range, &[]), Some(want[1]));
            assert_eq!(eval_at("changes", &biz, ts, range, &[]), Some(want[2]));
        }
        let nan_b = series(5 * M, &[f64::NAN, f64::NAN, f64::NAN]);
        let nan_c = series(5 * M, &[0.0, f64::NAN, 0.0]);
        assert_eq!(eval_at("changes", &nan_b, 15 * M, 20 * M, &[]), Some(0.0));
        assert_eq!(eval_at("changes", &nan_c, 15 * M, 20 * M, &[]), Some(2.0));
    }

    fn ten_s(values: &[f64]) -> Vec<(i64, f64)> {
        series(10_000, values)
    }

    #[test]
    #[allow(clippy::excessive_precision)] // Literals as in functions.test.
    fn avg_and_sum_over_time() {
        let inf = f64::INFINITY;
        let ninf = f64::NEG_INFINITY;
        let nan = f64::NAN;
        let at = 55_000;
        let avg = |v: &[f64]| eval_at("avg_over_time", &ten_s(v), at, M, &[]);
        let sum = |v: &[f64]| eval_at("sum_over_time", &ten_s(v), at, M, &[]);
        let metric = [1., 2., 3., 4., 5.];
        assert_eq!(
            eval_at("avg_over_time", &ten_s(&metric), at, 10_000, &[]),
            None
        );
        assert_close(
            eval_at("avg_over_time", &ten_s(&metric), at, 20_000, &[]),
            5.0,
        );
        assert_close(avg(&metric), 3.0);
        assert_close(sum(&metric), 15.0);
        assert_close(avg(&[1., 2., 3., 4., inf]), inf);
        assert_close(avg(&[1., 2., 3., 4., ninf]), ninf);
        assert_close(avg(&[1., 2., 3., inf, ninf]), nan);
        assert_close(avg(&[inf, 0., inf]), inf);
        assert_close(avg(&[inf, inf, inf, ninf]), nan);
        assert_close(avg(&[1., 2., 3., ninf, ninf]), ninf);
        assert_close(avg(&[ninf, 0., ninf]), ninf);
        assert_close(avg(&[ninf, ninf, ninf, inf]), nan);
        assert_close(avg(&[1., 2., ninf, ninf, inf]), nan);
        let big = 9.988465674311579e307;
        assert_close(avg(&[big, big]), big);
        assert_close(sum(&[big, big]), inf);
        assert_close(avg(&[-big, -big, -big]), -big);
        assert_close(sum(&[-big, -big, -big]), ninf);
        assert_close(avg(&[-big, big]), 0.0);
        assert_close(avg(&[1., 2., 3., nan, nan]), nan);
        assert_close(
            eval_at(
                "avg_over_time",
                &ten_s(&[1., 2., 3., nan, nan]),
                20_000,
                M,
                &[],
            ),
            2.0,
        );
        // Very big intermediate values.
        assert_close(
            eval_at(
                "sum_over_time",
                &ten_s(&[1., 1e100, 1., -1e100]),
                M,
                2 * M,
                &[],
            ),
            2.0,
        );
        assert_close(
            eval_at(
                "avg_over_time",
                &ten_s(&[1., 1e100, 1., -1e100]),
                M,
                2 * M,
                &[],
            ),
            0.5,
        );
    }

    #[test]
    fn avg_over_time_extreme_values() {
        let five = |v: &[f64]| eval_at("avg_over_time", &series(5000, v), 55_000, M, &[]);
        assert_close(
            five(&[1e10, 1e-6, 1e-6, 1e-6, 1e-6, 1e-6]),
            1.6666666666666675e+09,
        );
        assert_close(
            five(&[
                5.30921651659898,
                0.961118537914768,
                1.62091361305318,
                0.865089463758091,
                0.323055185914577,
                0.951811357687154,
            ]),
            1.67186744582113,
        );
        assert_close(
            five(&[1.78264e50, 0.76342771, 1.9592258, 7.69805412, 458.90154]),
            3.56528E+49,
        );
        assert_close(
            five(&[0.76342771, 1.9592258, 7.69805412, 1.78264e50, 458.90154]),
            3.56528E+49,
        );
        assert_close(
            five(&[
                1.78264E+50,
                0.76342771,
                1.9592258,
                2.258E+220,
                7.69805412,
                458.90154,
            ]),
            3.76333333333333E+219,
        );
        assert_close(
            five(&[
                -1.78264E+50,
                0.76342771,
                1.9592258,
                2.258E+220,
                7.69805412,
                -458.90154,
            ]),
            3.76333333333333E+219,
        );
        assert_close(
            five(&[
                -1.78264E+50,
                0.76342771,
                1.9592258,
                -2.258E+220,
                7.69805412,
                -458.90154,
            ]),
            -3.76333333333333E+219,
        );
        assert_close(
            five(&[
                -1.78264E+215,
                0.76342771,
                1.9592258,
                2.258E+220,
                7.69805412,
                -458.90154,
            ]),
            3.76330362266667E+219,
        );
        assert_close(
            five(&[
                -1.78264E+215,
                0.76342771,
                1.9592258,
                2.258E+220,
                7.69805412,
                1.78264E+215,
                -458.90154,
            ]),
            3.225714285714286e+219,
        );
        assert_close(
            five(&[
                -1.78264E+219,
                0.76342771,
                1.9592258,
                2.3757689E+217,
                -2.3757689E+217,
                2.258E+220,
                7.69805412,
                1.78264E+219,
                -458.90154,
            ]),
            2.5088888888888888e+219,
        );
        assert_close(
            five(&[
                -2.258E+220,
                -1.78264E+219,
                0.76342771,
                1.9592258,
                2.3757689E+217,
                -2.3757689E+217,
                2.258E+220,
                7.69805412,
                1.78264E+219,
                -458.90154,
            ]),
            0.0,
        );
        // Exact equality of a constant average (functions.test, foo 52+0x100).
        let foo = series(10_000, &[52.0; 101]);
        for range_s in [100, 110, 120, 130] {
            assert_eq!(
                eval_at("avg_over_time", &foo, 10 * M, range_s * 1000, &[]),
                Some(52.0)
            );
        }
        // Dense samples (load 1ms, metric 1+0x4000).
        let dense = series(1, &[1.0; 4001]);
        for (range, want) in [
            (1000, 1000.0),
            (1003, 1003.0),
            (2001, 2001.0),
            (3003, 3003.0),
        ] {
            assert_eq!(
                eval_at("sum_over_time", &dense, 4000, range, &[]),
                Some(want)
            );
        }
    }

    #[test]
    fn stddev_stdvar_mad() {
        let m = ten_s(&[0., 8., 8., 2., 3.]);
        assert_close(eval_at("stdvar_over_time", &m, M, 2 * M, &[]), 10.56);
        let sd = eval_at("stddev_over_time", &m, M, 2 * M, &[]).unwrap();
        assert!((sd - 3.249615).abs() < 1e-6);
        let c = ten_s(&[1.5990505637277868; 3]);
        assert_eq!(eval_at("stdvar_over_time", &c, 55_000, M, &[]), Some(0.0));
        assert_eq!(eval_at("stddev_over_time", &c, 55_000, M, &[]), Some(0.0));
        let mad =
            |v: &[f64], ts: i64, range: i64| eval_at("mad_over_time", &ten_s(v), ts, range, &[]);
        assert_close(mad(&[4., 6., 2., 1., 999., 1., 2.], 70_000, 70_000), 1.0);
        assert_close(mad(&[1., 2., 3., 4., 5.], 40_000, 50_000), 1.0);
        assert_close(mad(&[7.; 5], 40_000, 50_000), 0.0);
        assert_close(mad(&[5.], 0, 10_000), 0.0);
        assert_close(mad(&[1., 2., f64::NAN, 4.], 30_000, 40_000), f64::NAN);
    }

    #[test]
    fn min_max_last_count_present() {
        let nan = f64::NAN;
        let cases: [(&[f64], f64, f64, f64); 5] = [
            (&[2., 0., 3.], 0., 3., 3.),
            (&[2., 0., nan], 0., 2., nan),
            (&[2., nan, 1.], 1., 2., 1.),
            (&[nan, 0., 1.], 0., 1., 1.),
            (&[nan, nan, nan], nan, nan, nan),
        ];
        for (values, min, max, last) in cases {
            let s = ten_s(values);
            assert_close(eval_at("min_over_time", &s, M, 2 * M, &[]), min);
            assert_close(eval_at("max_over_time", &s, M, 2 * M, &[]), max);
            assert_close(eval_at("last_over_time", &s, M, 2 * M, &[]), last);
            assert_eq!(eval_at("count_over_time", &s, M, 2 * M, &[]), Some(3.0));
            assert_eq!(eval_at("present_over_time", &s, M, 2 * M, &[]), Some(1.0));
        }
        // data_sparse _ 5 2 _ 4 _
        let sparse = vec![(10_000, 5.0), (20_000, 2.0), (40_000, 4.0)];
        assert_eq!(eval_at("min_over_time", &sparse, M, 2 * M, &[]), Some(2.0));
        assert_eq!(eval_at("max_over_time", &sparse, M, 2 * M, &[]), Some(5.0));
        assert_eq!(eval_at("last_over_time", &sparse, M, 2 * M, &[]), Some(4.0));
    }

    #[test]
    fn quantile_over_time_cases() {
        let two = ten_s(&[0., 1.]);
        let three = ten_s(&[0., 1., 2.]);
        let uneven = ten_s(&[0., 1., 4.]);
        for (q, want) in [
            (0.0, [0., 0., 0.]),
            (0.5, [0.5, 1., 1.]),
            (0.75, [0.75, 1.5, 2.5]),
            (0.8, [0.8, 1.6, 2.8]),
            (1.0, [1., 2., 4.]),
            (-1.0, [f64::NEG_INFINITY; 3]),
            (2.0, [f64::INFINITY; 3]),
            (f64::NAN, [f64::NAN; 3]),
        ] {
            assert_close(eval_at("quantile_over_time", &two, M, 2 * M, &[q]), want[0]);
            assert_close(
                eval_at("quantile_over_time", &three, M, 2 * M, &[q]),
                want[1],
            );
            assert_close(
                eval_at("quantile_over_time", &uneven, M, 2 * M, &[q]),
                want[2],
            );
        }
        assert_eq!(eval_at("quantile_over_time", &two, M, 2 * M, &[]), None);
    }

    #[test]
    fn no_panics_on_odd_input() {
        let odd = [
            vec![],
            vec![(0, f64::NAN)],
            vec![(0, f64::INFINITY), (0, f64::NEG_INFINITY)],
            vec![(-5, f64::NAN), (-5, 1.0), (i64::MAX / 2, f64::MAX)],
            vec![
                (i64::MIN / 4, -0.0),
                (0, f64::MIN_POSITIVE),
                (i64::MAX / 4, f64::NAN),
            ],
        ];
        let params = [
            vec![],
            vec![f64::NAN],
            vec![-1.0, 2.0],
            vec![0.5, 0.5],
            vec![f64::INFINITY, f64::NEG_INFINITY],
        ];
        for s in &odd {
            for name in RANGE_FNS {
                for p in &params {
                    let _ = eval_range_fn(name, s, i64::MIN / 2, i64::MAX / 2, 0, p);
                    let _ = eval_range_fn(name, s, 10, 10, 10, p);
                    let _ = validate_params(name, p);
                }
            }
            if s.is_empty() {
                for name in RANGE_FNS {
                    assert_eq!(eval_range_fn(name, s, 0, 10, 10, &[0.5, 0.5]), None);
                }
            }
        }
    }

    #[test]
    fn go_duration_seconds() {
        assert_eq!(duration_seconds(300_000), 300.0);
        assert_eq!(duration_seconds(61_001), 61.0 + 0.001);
        assert_eq!(duration_seconds(-1500), -1.0 - 0.5);
    }
}
