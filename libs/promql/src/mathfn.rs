//! Per-sample math, date functions, and quantile helpers.
//!
//! Semantics follow Prometheus 3 (`promql/functions.go`, `promql/quantile.go`):
//! NaN and ±Inf propagate the way Go's `math` package propagates them, `round`
//! rounds half up, `clamp` with `min > max` produces no sample, and the date
//! functions work on the proleptic Gregorian calendar in UTC.
//!
//! Transcendental functions (`exp`, `ln`, `sin`, …) use Rust's `std`
//! implementations, which may differ from Go's in the last bit for some
//! inputs; special values (NaN, ±Inf, ±0, out-of-domain arguments) behave the
//! same.

use std::cmp::Ordering;
use std::f64::consts::PI;

/// Names of the per-sample functions evaluated by [`eval_math_fn`].
const MATH_FNS: &[&str] = &[
    "abs",
    "ceil",
    "floor",
    "exp",
    "ln",
    "log2",
    "log10",
    "sqrt",
    "sgn",
    "round",
    "clamp",
    "clamp_min",
    "clamp_max",
    "acos",
    "acosh",
    "asin",
    "asinh",
    "atan",
    "atanh",
    "cos",
    "cosh",
    "sin",
    "sinh",
    "tan",
    "tanh",
    "deg",
    "rad",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "days_in_month",
    "hour",
    "minute",
    "month",
    "year",
];

/// Whether `name` is a per-sample function this module evaluates.
pub fn is_math_fn(name: &str) -> bool {
    MATH_FNS.contains(&name)
}

/// Applies per-sample function `name` to the value `v`.
///
/// Parameters (scalars, in call order after the vector argument):
/// * `round`: `[to_nearest]`, default 1. Ties round up:
///   `floor(v / to_nearest + 0.5) * to_nearest` (computed through the inverse).
/// * `clamp`: `[min, max]`; returns `None` (no sample) if `max < min`.
/// * `clamp_min`: `[min]`; `clamp_max`: `[max]`.
///
/// Date functions (`year`, `month`, `day_of_month`, `day_of_year`,
/// `day_of_week` with Sunday = 0, `days_in_month`, `hour`, `minute`) take `v`
/// as a Unix timestamp in seconds, truncated towards zero like Go's
/// `int64(v)`, and use UTC. For the argument-less forms (`year()`), the
/// evaluator passes the evaluation time in seconds. A NaN, infinite or
/// out-of-`i64`-range timestamp gives NaN (Go's conversion is undefined there).
///
/// Returns `None` for unknown names, missing required parameters, and `clamp`
/// with `max < min`.
pub fn eval_math_fn(name: &str, v: f64, params: &[f64]) -> Option<f64> {
    let r = match name {
        "abs" => v.abs(),
        "ceil" => v.ceil(),
        "floor" => v.floor(),
        "exp" => v.exp(),
        "ln" => v.ln(),
        "log2" => v.log2(),
        "log10" => v.log10(),
        "sqrt" => v.sqrt(),
        "sgn" => {
            if v < 0.0 {
                -1.0
            } else if v > 0.0 {
                1.0
            } else {
                v
            }
        }
        "round" => {
            let to_nearest = params.first().copied().unwrap_or(1.0);
            let inverse = 1.0 / to_nearest;
            (v * inverse + 0.5).floor() / inverse
        }
        "clamp" => return clamp(v, *params.first()?, *params.get(1)?),
        "clamp_min" => return clamp(v, *params.first()?, f64::INFINITY),
        "clamp_max" => return clamp(v, f64::NEG_INFINITY, *params.first()?),
        "acos" => v.acos(),
        "acosh" => v.acosh(),
        "asin" => v.asin(),
        "asinh" => v.asinh(),
        "atan" => v.atan(),
        "atanh" => v.atanh(),
        "cos" => v.cos(),
        "cosh" => v.cosh(),
        "sin" => v.sin(),
        "sinh" => v.sinh(),
        "tan" => v.tan(),
        "tanh" => v.tanh(),
        "deg" => v * 180.0 / PI,
        "rad" => v * PI / 180.0,
        "day_of_month" | "day_of_week" | "day_of_year" | "days_in_month" | "hour" | "minute"
        | "month" | "year" => date_fn(name, v),
        _ => return None,
    };
    Some(r)
}

/// `clamp`: Go's `math.Max(min, math.Min(max, v))`; no sample if `max < min`.
fn clamp(v: f64, min: f64, max: f64) -> Option<f64> {
    if max < min {
        return None;
    }
    Some(go_max(min, go_min(max, v)))
}

/// Go's `math.Max`: +Inf wins over NaN, NaN wins over everything else, and
/// +0 is larger than -0.
fn go_max(x: f64, y: f64) -> f64 {
    if x == f64::INFINITY || y == f64::INFINITY {
        f64::INFINITY
    } else if x.is_nan() || y.is_nan() {
        f64::NAN
    } else if x == 0.0 && x == y {
        if x.is_sign_negative() {
            y
        } else {
            x
        }
    } else if x > y {
        x
    } else {
        y
    }
}

/// Go's `math.Min`: -Inf wins over NaN, NaN wins over everything else, and
/// -0 is smaller than +0.
fn go_min(x: f64, y: f64) -> f64 {
    if x == f64::NEG_INFINITY || y == f64::NEG_INFINITY {
        f64::NEG_INFINITY
    } else if x.is_nan() || y.is_nan() {
        f64::NAN
    } else if x == 0.0 && x == y {
        if x.is_sign_negative() {
            x
        } else {
            y
        }
    } else if x < y {
        x
    } else {
        y
    }
}

/// Evaluates one of the date functions on Unix timestamp `v` (seconds).
fn date_fn(name: &str, v: f64) -> f64 {
    // Go's int64(v) truncates towards zero; outside the i64 range (and for
    // NaN/Inf) its result is implementation-defined, so we return NaN there.
    let t = v.trunc();
    let limit = -(i64::MIN as f64); // 2^63
    if !(-limit..limit).contains(&t) {
        return f64::NAN;
    }
    let secs = t as i64;
    let days = secs.div_euclid(86_400);
    let sec_of_day = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    match name {
        "year" => year as f64,
        "month" => month as f64,
        "day_of_month" => day as f64,
        "day_of_year" => (days - days_from_civil(year, 1, 1) + 1) as f64,
        // 1970-01-01 was a Thursday (4); Sunday is 0.
        "day_of_week" => (days + 4).rem_euclid(7) as f64,
        "days_in_month" => days_in_month(year, month) as f64,
        "hour" => (sec_of_day / 3600) as f64,
        "minute" => (sec_of_day % 3600 / 60) as f64,
        _ => f64::NAN,
    }
}

/// Whether `year` is a leap year in the proleptic Gregorian calendar.
fn is_leap_year(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

/// Number of days in `month` (1-12) of `year`.
fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Converts days since 1970-01-01 to a (year, month, day) civil date
/// (Howard Hinnant's algorithm, valid for the whole range used here).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // day of era, [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365], March-based
    let mp = (5 * doy + 2) / 153; // [0, 11], March = 0
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Converts a civil date to days since 1970-01-01 (inverse of
/// [`civil_from_days`]).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = year - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Orders NaN before every number (Prometheus sorts NaN as the smallest value
/// for quantiles); a total order, so sorting never panics.
fn nan_first(a: &f64, b: &f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) => a.partial_cmp(b).unwrap_or(Ordering::Equal),
    }
}

/// The φ-quantile of `values` as used by the `quantile` aggregation and
/// `quantile_over_time` (Prometheus's `quantile`): sorts `values` in place
/// (NaN first) and interpolates linearly between the two closest ranks,
/// rank = q·(n−1).
///
/// Empty input or NaN `q` gives NaN; `q < 0` gives -Inf and `q > 1` gives
/// +Inf (the caller emits the "quantile value should be between 0 and 1"
/// warning).
#[allow(clippy::ptr_arg)] // Signature agreed with the evaluator.
pub fn quantile(q: f64, values: &mut Vec<f64>) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    values.sort_unstable_by(nan_first);

    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower_index = rank.floor().max(0.0);
    let upper_index = (n - 1.0).min(lower_index + 1.0);
    let weight = rank - rank.floor();
    values[lower_index as usize] * (1.0 - weight) + values[upper_index as usize] * weight
}

/// Relative tolerance below which differences between adjacent classic
/// buckets are treated as floating point noise (Prometheus's
/// `smallDeltaTolerance`).
const SMALL_DELTA_TOLERANCE: f64 = 1e-12;

/// Details about the repairs [`bucket_quantile_with_info`] had to make to the
/// bucket counts. Used for Prometheus's "input to histogram_quantile needed to
/// be fixed for monotonicity" info annotation.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BucketQuantileInfo {
    /// Some bucket count was lower than a count of a lower bucket and was
    /// raised (the annotation is emitted only in this case).
    pub forced_monotonicity: bool,
    /// Some numerically insignificant difference (relative difference below
    /// 1e-12) between adjacent buckets was silently ignored.
    pub fixed_precision: bool,
    /// Smallest upper bound of a bucket whose count was raised (0 if none).
    pub min_bucket: f64,
    /// Largest upper bound of a bucket whose count was raised (0 if none).
    pub max_bucket: f64,
    /// Largest amount by which a bucket count was raised (0 if none).
    pub max_diff: f64,
}

/// Prometheus's `almost.Equal`: true if `a` and `b` differ by less than
/// `epsilon` relative to their magnitude (or both are NaN).
fn almost_equal(a: f64, b: f64, epsilon: f64) -> bool {
    const MIN_NORMAL: f64 = f64::MIN_POSITIVE; // smallest positive normal value
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < MIN_NORMAL {
        return diff < epsilon * MIN_NORMAL;
    }
    diff / abs_sum.min(f64::MAX) < epsilon
}

/// The φ-quantile of a classic histogram given as `(upper bound, cumulative
/// count)` pairs, as `histogram_quantile` computes it (Prometheus's
/// `BucketQuantile`). See [`bucket_quantile_with_info`] for the details; this
/// variant drops the repair information.
pub fn bucket_quantile(q: f64, buckets: &mut Vec<(f64, f64)>) -> f64 {
    bucket_quantile_with_info(q, buckets).0
}

/// The φ-quantile of a classic histogram (Prometheus's `BucketQuantile`),
/// plus information about repairs made to the bucket counts.
///
/// `buckets` holds `(upper bound, cumulative count)` pairs in any order; it is
/// modified in place: sorted by upper bound, buckets with equal upper bounds
/// merged (counts added), and counts made monotonic.
///
/// * q NaN → NaN; q < 0 → -Inf; q > 1 → +Inf (checked first).
/// * No buckets, no `+Inf` bucket, fewer than 2 buckets after merging, or
///   zero observations → NaN.
/// * Counts that differ from the previous accepted count by a relative 1e-12
///   or less are set to it; counts lower than it are raised to it.
/// * Otherwise the bucket containing rank q·count is located and the result
///   is interpolated linearly inside it. The lowest bucket interpolates from
///   0 if its upper bound is positive, and returns its upper bound if that is
///   ≤ 0. A rank in the `+Inf` bucket returns the second highest upper bound.
pub fn bucket_quantile_with_info(
    q: f64,
    buckets: &mut Vec<(f64, f64)>,
) -> (f64, BucketQuantileInfo) {
    let mut info = BucketQuantileInfo::default();
    if q.is_nan() {
        return (f64::NAN, info);
    }
    if q < 0.0 {
        return (f64::NEG_INFINITY, info);
    }
    if q > 1.0 {
        return (f64::INFINITY, info);
    }
    if buckets.is_empty() {
        return (f64::NAN, info);
    }
    // NaN bounds (never expected) sort last, so they make the result NaN.
    buckets.sort_by(|a, b| match (a.0.is_nan(), b.0.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) => a.0.partial_cmp(&b.0).unwrap_or(Ordering::Equal),
    });
    if buckets[buckets.len() - 1].0 != f64::INFINITY {
        return (f64::NAN, info);
    }

    coalesce_buckets(buckets);
    ensure_monotonic_and_ignore_small_deltas(buckets, SMALL_DELTA_TOLERANCE, &mut info);

    if buckets.len() < 2 {
        return (f64::NAN, BucketQuantileInfo::default());
    }
    let observations = buckets[buckets.len() - 1].1;
    if observations == 0.0 {
        return (f64::NAN, BucketQuantileInfo::default());
    }
    let mut rank = q * observations;
    // First bucket (excluding +Inf) whose cumulative count reaches the rank.
    // (Written with partial_cmp so that a NaN count behaves as in Go.)
    let b = buckets[..buckets.len() - 1].partition_point(|bucket| {
        !matches!(
            bucket.1.partial_cmp(&rank),
            Some(Ordering::Greater | Ordering::Equal)
        )
    });

    if b == buckets.len() - 1 {
        return (buckets[buckets.len() - 2].0, info);
    }
    if b == 0 && buckets[0].0 <= 0.0 {
        return (buckets[0].0, info);
    }
    let mut bucket_start = 0.0;
    let bucket_end = buckets[b].0;
    let mut count = buckets[b].1;
    if b > 0 {
        bucket_start = buckets[b - 1].0;
        count -= buckets[b - 1].1;
        rank -= buckets[b - 1].1;
    }
    (
        bucket_start + (bucket_end - bucket_start) * (rank / count),
        info,
    )
}

/// Merges adjacent buckets with the same upper bound (input sorted) by adding
/// their counts.
fn coalesce_buckets(buckets: &mut Vec<(f64, f64)>) {
    let mut last = buckets[0];
    let mut i = 0;
    for j in 1..buckets.len() {
        let b = buckets[j];
        if b.0 == last.0 {
            last.1 += b.1;
        } else {
            buckets[i] = last;
            last = b;
            i += 1;
        }
    }
    buckets[i] = last;
    buckets.truncate(i + 1);
}

/// Prometheus's `ensureMonotonicAndIgnoreSmallDeltas`: counts within
/// `tolerance` of the last accepted count are set to it (either direction);
/// smaller counts are raised to it. The last accepted count only moves on a
/// genuine increase.
fn ensure_monotonic_and_ignore_small_deltas(
    buckets: &mut [(f64, f64)],
    tolerance: f64,
    info: &mut BucketQuantileInfo,
) {
    let mut min_bucket = f64::INFINITY;
    let mut max_bucket = f64::NEG_INFINITY;
    let mut prev = buckets[0].1;
    for bucket in buckets.iter_mut().skip(1) {
        let curr = bucket.1;
        if curr == prev {
            continue;
        }
        if almost_equal(prev, curr, tolerance) {
            bucket.1 = prev;
            info.fixed_precision = true;
            continue;
        }
        if curr < prev {
            bucket.1 = prev;
            info.forced_monotonicity = true;
            min_bucket = min_bucket.min(bucket.0);
            max_bucket = max_bucket.max(bucket.0);
            if prev - curr > info.max_diff {
                info.max_diff = prev - curr;
            }
            continue;
        }
        prev = curr;
    }
    if info.forced_monotonicity {
        info.min_bucket = min_bucket;
        info.max_bucket = max_bucket;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(name: &str, v: f64) -> f64 {
        eval_math_fn(name, v, &[]).unwrap()
    }

    fn same(a: f64, b: f64) -> bool {
        (a.is_nan() && b.is_nan()) || a == b
    }

    fn close(a: f64, b: f64) -> bool {
        same(a, b) || ((a - b) / b).abs() < 1e-12
    }

    #[test]
    fn names() {
        assert!(is_math_fn("abs"));
        assert!(is_math_fn("days_in_month"));
        assert!(!is_math_fn("rate"));
        assert!(!is_math_fn("histogram_quantile"));
        assert_eq!(eval_math_fn("nope", 1.0, &[]), None);
    }

    #[test]
    fn abs_ceil_floor_round() {
        let inputs = [
            2.5,
            2.0,
            -2.5,
            -2.0,
            0.0,
            -0.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
        ];
        let abs = [
            2.5,
            2.0,
            2.5,
            2.0,
            0.0,
            0.0,
            f64::INFINITY,
            f64::INFINITY,
            f64::NAN,
        ];
        let ceil = [
            3.0,
            2.0,
            -2.0,
            -2.0,
            0.0,
            0.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
        ];
        let floor = [
            2.0,
            2.0,
            -3.0,
            -2.0,
            0.0,
            0.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
        ];
        let round = [
            3.0,
            2.0,
            -2.0,
            -2.0,
            0.0,
            0.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
        ];
        for (i, &v) in inputs.iter().enumerate() {
            assert!(same(m("abs", v), abs[i]), "abs({v})");
            assert!(same(m("ceil", v), ceil[i]), "ceil({v})");
            assert!(same(m("floor", v), floor[i]), "floor({v})");
            assert!(same(m("round", v), round[i]), "round({v})");
        }
        assert_eq!(eval_math_fn("round", 5.25, &[0.5]), Some(5.5));
        assert_eq!(eval_math_fn("round", 5.2, &[0.5]), Some(5.0));
        assert_eq!(eval_math_fn("round", 1234.0, &[100.0]), Some(1200.0));
        assert_eq!(eval_math_fn("round", 1250.0, &[100.0]), Some(1300.0));
        assert_eq!(eval_math_fn("round", -1250.0, &[100.0]), Some(-1200.0));
        assert_eq!(eval_math_fn("round", 0.123456, &[0.001]), Some(0.123));
        // to_nearest 0 -> inverse +Inf -> NaN, like Go.
        assert!(eval_math_fn("round", 1.0, &[0.0]).unwrap().is_nan());
    }

    #[test]
    fn sgn() {
        assert_eq!(m("sgn", f64::NEG_INFINITY), -1.0);
        assert_eq!(m("sgn", f64::INFINITY), 1.0);
        assert!(m("sgn", f64::NAN).is_nan());
        assert_eq!(m("sgn", -50.0), -1.0);
        assert_eq!(m("sgn", 0.0), 0.0);
        assert_eq!(m("sgn", 100.0), 1.0);
    }

    #[test]
    fn clamps() {
        let c = |v: f64, p: &[f64]| eval_math_fn("clamp", v, p);
        assert_eq!(eval_math_fn("clamp_max", -50.0, &[75.0]), Some(-50.0));
        assert_eq!(eval_math_fn("clamp_max", 100.0, &[75.0]), Some(75.0));
        assert_eq!(eval_math_fn("clamp_min", -50.0, &[-25.0]), Some(-25.0));
        assert_eq!(eval_math_fn("clamp_min", 100.0, &[-25.0]), Some(100.0));
        assert_eq!(c(-50.0, &[-25.0, 75.0]), Some(-25.0));
        assert_eq!(c(0.0, &[-25.0, 75.0]), Some(0.0));
        assert_eq!(c(100.0, &[-25.0, 75.0]), Some(75.0));
        for v in [-50.0, 0.0, 100.0] {
            assert!(c(v, &[0.0, f64::NAN]).unwrap().is_nan());
            assert!(c(v, &[f64::NAN, 0.0]).unwrap().is_nan());
            assert_eq!(c(v, &[5.0, -5.0]), None);
        }
        assert!(c(f64::NAN, &[0.0, 1.0]).unwrap().is_nan());
        assert!(eval_math_fn("clamp_min", f64::NAN, &[5.0])
            .unwrap()
            .is_nan());
        assert!(eval_math_fn("clamp_max", f64::NAN, &[5.0])
            .unwrap()
            .is_nan());
        assert_eq!(
            eval_math_fn("clamp_min", f64::INFINITY, &[5.0]),
            Some(f64::INFINITY)
        );
        assert_eq!(
            eval_math_fn("clamp_max", f64::NEG_INFINITY, &[5.0]),
            Some(f64::NEG_INFINITY)
        );
        // Go's Max/Min treat -0 < +0.
        assert!(c(-0.0, &[0.0, 1.0]).unwrap().is_sign_positive());
        assert!(c(0.0, &[-1.0, -0.0]).unwrap().is_sign_negative());
        // Missing parameters.
        assert_eq!(c(1.0, &[0.0]), None);
        assert_eq!(eval_math_fn("clamp_min", 1.0, &[]), None);
    }

    #[test]
    fn exp_ln_logs_sqrt() {
        assert!(close(m("exp", 10.0), 22026.465794806718));
        assert!(close(m("exp", 20.0), 485165195.4097903));
        assert!(close(m("exp", -10.0), 4.5399929762484854e-05));
        assert_eq!(m("exp", 0.0), 1.0);
        assert!(close(m("ln", 10.0), std::f64::consts::LN_10));
        assert!(close(m("ln", 20.0), 2.995732273553991));
        assert_eq!(m("ln", 0.0), f64::NEG_INFINITY);
        assert!(m("ln", -10.0).is_nan());
        assert!(close(m("sqrt", 10.0), 3.1622776601683795));
        assert!(close(m("sqrt", 20.0), 4.47213595499958));
        assert!(m("sqrt", -1.0).is_nan());
        assert!(close(m("log2", 10.0), 3.3219280948873626));
        assert!(close(m("log2", 20.0), 4.321928094887363));
        assert_eq!(m("log2", 0.0), f64::NEG_INFINITY);
        assert!(m("log2", -10.0).is_nan());
        assert_eq!(m("log10", 10.0), 1.0);
        assert!(close(m("log10", 20.0), 1.301029995663981));
        assert_eq!(m("log10", 0.0), f64::NEG_INFINITY);
        assert!(m("log10", -10.0).is_nan());
    }

    #[test]
    fn trig() {
        let cases: &[(&str, f64, f64)] = &[
            ("sin", 10.0, -0.5440211108893699),
            ("sin", 20.0, 0.9129452507276277),
            ("cos", 10.0, -0.8390715290764524),
            ("cos", 20.0, 0.40808206181339196),
            ("tan", 10.0, 0.6483608274590867),
            ("tan", 20.0, 2.2371609442247427),
            ("asin", 10.0 - 10.1, -0.10016742116155944),
            ("asin", 20.0 - 10.1, f64::NAN),
            ("acos", 10.0 - 10.1, 1.670963747956456),
            ("acos", 20.0 - 10.1, f64::NAN),
            ("atan", 10.0, 1.4711276743037345),
            ("atan", 20.0, 1.5208379310729538),
            ("sinh", 10.0, 11013.232920103324),
            ("sinh", 20.0, 2.4258259770489514e+08),
            ("cosh", 10.0, 11013.232920103324),
            ("cosh", 20.0, 2.4258259770489514e+08),
            ("tanh", 10.0, 0.9999999958776927),
            ("tanh", 20.0, 1.0),
            ("asinh", 10.0, 2.99822295029797),
            ("asinh", 20.0, 3.6895038689889055),
            ("acosh", 10.0, 2.993222846126381),
            ("acosh", 20.0, 3.6882538673612966),
            ("atanh", 10.0 - 10.1, -0.10033534773107522),
            ("atanh", 20.0 - 10.1, f64::NAN),
            ("rad", 10.0, 0.17453292519943295),
            ("rad", 20.0, 0.3490658503988659),
            ("rad", 0.0, 0.0),
            ("rad", -10.0, -0.17453292519943295),
            ("deg", 10.0, 572.9577951308232),
            ("deg", 20.0, 1145.9155902616465),
            ("deg", -10.0, -572.9577951308232),
        ];
        // Expected values are from trig_functions.test, which compares with a
        // relative tolerance of 1e-6 (its sinh(10) value is really cosh(10)).
        for &(name, v, want) in cases {
            let got = m(name, v);
            assert!(
                (want.is_nan() && got.is_nan()) || (got - want).abs() <= 1e-6 * want.abs(),
                "{name}({v}) = {got}, want {want}"
            );
            assert!(m(name, f64::NAN).is_nan(), "{name}(NaN)");
        }
        assert!((m("sinh", 10.0) - 11013.232874703393).abs() < 1e-9);
        assert_eq!(m("atanh", 1.0), f64::INFINITY);
        assert!(m("acosh", 0.5).is_nan());
    }

    #[test]
    fn date_functions() {
        // 0 = 1970-01-01 00:00:00, a Thursday.
        assert_eq!(m("year", 0.0), 1970.0);
        assert_eq!(m("month", 0.0), 1.0);
        assert_eq!(m("day_of_month", 0.0), 1.0);
        assert_eq!(m("day_of_year", 0.0), 1.0);
        assert_eq!(m("day_of_week", 0.0), 4.0);
        assert_eq!(m("hour", 0.0), 0.0);
        assert_eq!(m("minute", 0.0), 0.0);
        assert_eq!(m("days_in_month", 0.0), 31.0);
        // 2006-01-02 22:04:05, a Monday.
        let t = 1136239445.0;
        assert_eq!(m("year", t), 2006.0);
        assert_eq!(m("month", t), 1.0);
        assert_eq!(m("day_of_month", t), 2.0);
        assert_eq!(m("day_of_year", t), 2.0);
        assert_eq!(m("day_of_week", t), 1.0);
        assert_eq!(m("hour", t), 22.0);
        assert_eq!(m("minute", t), 4.0);
        // Year boundaries, leap days.
        assert_eq!(m("year", 1230767999.0), 2008.0);
        assert_eq!(m("year", 1230768000.0), 2009.0);
        assert_eq!(m("month", 1456790399.0), 2.0);
        assert_eq!(m("day_of_month", 1456790399.0), 29.0);
        assert_eq!(m("month", 1456790400.0), 3.0);
        assert_eq!(m("day_of_month", 1456790400.0), 1.0);
        assert_eq!(m("day_of_year", 1483191420.0), 366.0);
        assert_eq!(m("day_of_year", 1672493820.0), 365.0);
        assert_eq!(m("days_in_month", 1454284800.0), 29.0);
        assert_eq!(m("days_in_month", 1485907200.0), 28.0);
        // 2000-02-29 (divisible by 400) and 2100-02-28 (not a leap year).
        assert_eq!(m("days_in_month", 951782400.0), 29.0);
        assert_eq!(m("day_of_month", 951782400.0), 29.0);
        assert_eq!(m("days_in_month", 4107456000.0), 28.0);
        assert_eq!(m("days_in_month", 4107456000.0 + 86400.0 * 28.0), 31.0);
        // Negative timestamps: 1969-12-31 23:59:59 (Wednesday).
        assert_eq!(m("year", -1.0), 1969.0);
        assert_eq!(m("month", -1.0), 12.0);
        assert_eq!(m("day_of_month", -1.0), 31.0);
        assert_eq!(m("day_of_year", -1.0), 365.0);
        assert_eq!(m("day_of_week", -1.0), 3.0);
        assert_eq!(m("hour", -1.0), 23.0);
        assert_eq!(m("minute", -1.0), 59.0);
        // Truncation towards zero: -0.5 is still 1970-01-01 00:00:00.
        assert_eq!(m("year", -0.5), 1970.0);
        assert_eq!(m("hour", -0.5), 0.0);
        assert_eq!(m("minute", 59.9), 0.0);
        assert_eq!(m("minute", 60.0), 1.0);
        // 1900-03-01 00:00:00 (1900 is not a leap year), -2203891200.
        assert_eq!(m("year", -2203891200.0), 1900.0);
        assert_eq!(m("month", -2203891200.0), 3.0);
        assert_eq!(m("day_of_year", -2203891200.0), 60.0);
        assert_eq!(m("days_in_month", -2203891200.0 - 1.0), 28.0);
        // 0001-01-01 00:00:00, a Monday.
        let y1 = -62135596800.0;
        assert_eq!(m("year", y1), 1.0);
        assert_eq!(m("month", y1), 1.0);
        assert_eq!(m("day_of_month", y1), 1.0);
        assert_eq!(m("day_of_week", y1), 1.0);
        // Last second of year 0 (a leap year in the proleptic calendar).
        assert_eq!(m("year", y1 - 1.0), 0.0);
        assert_eq!(m("day_of_year", y1 - 1.0), 366.0);
        // Undefined inputs give NaN, without panicking.
        for v in [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            1e19,
            -1e19,
            f64::MAX,
        ] {
            for name in [
                "year",
                "month",
                "day_of_month",
                "day_of_week",
                "day_of_year",
            ] {
                assert!(m(name, v).is_nan());
            }
            assert!(m("hour", v).is_nan());
            assert!(m("minute", v).is_nan());
            assert!(m("days_in_month", v).is_nan());
        }
        // Extreme but representable timestamps do not panic.
        for v in [9.2e18, -9.2e18, i64::MIN as f64] {
            for name in [
                "year",
                "month",
                "day_of_month",
                "day_of_week",
                "day_of_year",
            ] {
                assert!(m(name, v).is_finite());
            }
        }
    }

    #[test]
    fn civil_round_trip() {
        for days in (-800_000..800_000).step_by(7) {
            let (y, mo, d) = civil_from_days(days);
            assert!((1..=12).contains(&mo));
            assert!(d >= 1 && d <= days_in_month(y, mo));
            assert_eq!(days_from_civil(y, mo, d), days);
        }
    }

    #[test]
    fn quantile_cases() {
        let q = |q: f64, v: &[f64]| quantile(q, &mut v.to_vec());
        assert_eq!(q(0.8, &[0.0, 1.0]), 0.8);
        assert!((q(0.8, &[0.0, 1.0, 2.0]) - 1.6).abs() < 1e-12);
        assert!((q(0.8, &[0.0, 1.0, 4.0]) - 2.8).abs() < 1e-12);
        assert_eq!(q(0.5, &[4.0, 1.0, 0.0]), 1.0);
        // NaN sorts first: [NaN, 0, 1].
        assert!((q(0.8, &[0.0, 1.0, f64::NAN]) - 0.6).abs() < 1e-12);
        assert!(q(0.2, &[0.0, 1.0, f64::NAN]).is_nan());
        assert!(q(0.5, &[f64::NAN, f64::NAN, 1.0, f64::NAN]).is_nan());
        assert!(q(f64::NAN, &[0.0, 1.0]).is_nan());
        assert_eq!(q(-0.1, &[0.0, 1.0]), f64::NEG_INFINITY);
        assert_eq!(q(1.1, &[0.0, 1.0]), f64::INFINITY);
        assert!(q(0.5, &[]).is_nan());
        assert_eq!(q(0.0, &[3.0]), 3.0);
        assert_eq!(q(1.0, &[3.0]), 3.0);
        assert_eq!(q(1.0, &[3.0, 7.0, 5.0]), 7.0);
        assert_eq!(q(0.0, &[3.0, 7.0, 5.0]), 3.0);
        // Inf * 0 weight yields NaN, as in Prometheus.
        assert!(q(1.0, &[1.0, f64::INFINITY]).is_nan());
        assert!(q(0.0, &[1.0, f64::INFINITY]).is_nan());
        assert!(q(0.5, &[1.0, 2.0, f64::INFINITY]).is_nan());
        assert_eq!(q(0.25, &[1.0, 2.0, f64::INFINITY]), 1.5);
        // Sorted in place.
        let mut v = vec![3.0, f64::NAN, 1.0, 2.0];
        quantile(0.5, &mut v);
        assert!(v[0].is_nan());
        assert_eq!(&v[1..], &[1.0, 2.0, 3.0]);
    }

    fn bq(q: f64, b: &[(f64, f64)]) -> f64 {
        bucket_quantile(q, &mut b.to_vec())
    }

    #[test]
    fn bucket_quantile_histograms_test() {
        let inf = f64::INFINITY;
        // testhistogram at 50m (x10): positive and negative.
        let pos = [(0.1, 50.0), (0.2, 70.0), (1.0, 110.0), (inf, 120.0)];
        let neg = [(-0.2, 10.0), (-0.1, 20.0), (0.3, 20.0), (inf, 30.0)];
        for (q, p, n) in [
            (0.0, 0.0, -0.2),
            (1.0, 1.0, 0.3),
            (0.2, 0.048, -0.2),
            (0.5, 0.15, -0.15),
            (0.8, 0.72, 0.3),
        ] {
            assert!(close(bq(q, &pos), p), "q={q}: {} != {p}", bq(q, &pos));
            assert!(close(bq(q, &neg), n), "q={q}: {} != {n}", bq(q, &neg));
        }
        for b in [&pos, &neg] {
            assert_eq!(bq(-0.1, b), f64::NEG_INFINITY);
            assert_eq!(bq(1.01, b), f64::INFINITY);
            assert!(bq(f64::NAN, b).is_nan());
        }
        // testhistogram3.
        let pos3 = [
            (0.0, 0.0),
            (0.1, 50.0),
            (0.2, 70.0),
            (1.0, 110.0),
            (inf, 110.0),
        ];
        let neg3 = [
            (-0.25, 0.0),
            (-0.2, 10.0),
            (-0.1, 20.0),
            (0.3, 20.0),
            (inf, 20.0),
        ];
        for (q, p, n) in [
            (0.0, 0.0, -0.25),
            (0.25, 0.055, -0.225),
            (0.5, 0.125, -0.2),
            (0.75, 0.45, -0.15),
            (1.0, 1.0, -0.1),
        ] {
            assert!(close(bq(q, &pos3), p), "q={q}: {} != {p}", bq(q, &pos3));
            assert!(close(bq(q, &neg3), n), "q={q}: {} != {n}", bq(q, &neg3));
        }
        // testhistogram2 at 7m (one increment): q(1/6), q(1/2), q(5/6) = 1, 3, 5.
        let h2 = [(0.0, 0.0), (2.0, 1.0), (4.0, 2.0), (6.0, 3.0), (inf, 3.0)];
        assert!(close(bq(1.0 / 6.0, &h2), 1.0));
        assert!(close(bq(0.5, &h2), 3.0));
        assert!(close(bq(5.0 / 6.0, &h2), 5.0));
        // Unsorted input gives the same answer.
        let shuffled = [(inf, 120.0), (0.2, 70.0), (1.0, 110.0), (0.1, 50.0)];
        assert!(close(bq(0.8, &shuffled), 0.72));
    }

    #[test]
    fn bucket_quantile_special_cases() {
        let inf = f64::INFINITY;
        // Missing +Inf bucket.
        assert!(bq(0.5, &[(0.1, 1.0), (0.2, 2.0)]).is_nan());
        // Empty input, or only a +Inf bucket.
        assert!(bq(0.5, &[]).is_nan());
        assert!(bq(0.5, &[(inf, 5.0)]).is_nan());
        assert!(bq(0.5, &[(inf, 5.0), (inf, 3.0)]).is_nan());
        // No observations.
        assert!(bq(0.2, &[(0.1, 0.0), (0.2, 0.0), (inf, 0.0)]).is_nan());
        assert!(bq(1.0, &[(0.0, 0.0), (1.0, 0.0), (2.0, 0.0), (inf, 0.0)]).is_nan());
        // Equal upper bounds are merged (mixed_bucket: 0.1:1, 0.2 x3:1, +Inf:4).
        let mixed = [(0.1, 1.0), (0.2, 1.0), (0.2, 1.0), (0.2, 1.0), (inf, 4.0)];
        assert!(close(bq(0.5, &mixed), 0.15));
        assert!(close(bq(0.75, &mixed), 0.2));
        assert!(close(bq(1.0, &mixed), 0.2));
        let mut v = mixed.to_vec();
        bucket_quantile(0.5, &mut v);
        assert_eq!(v, vec![(0.1, 1.0), (0.2, 3.0), (inf, 4.0)]);
        // Two +Inf buckets with zero counts.
        assert!(bq(0.5, &[(inf, 0.0), (inf, 0.0)]).is_nan());
        // Rank in the +Inf bucket returns the second highest bound.
        assert_eq!(bq(0.99, &[(1.0, 1.0), (2.0, 2.0), (inf, 10.0)]), 2.0);
        // Lowest bucket with a non-positive upper bound returns that bound.
        assert_eq!(bq(0.1, &[(-1.0, 5.0), (1.0, 10.0), (inf, 10.0)]), -1.0);
        assert_eq!(bq(0.1, &[(0.0, 5.0), (1.0, 10.0), (inf, 10.0)]), 0.0);
        // NaN upper bounds never panic.
        assert!(bq(0.5, &[(f64::NAN, 1.0), (inf, 2.0)]).is_nan());
        let _ = bq(
            0.5,
            &[
                (f64::NAN, 1.0),
                (f64::NAN, 2.0),
                (1.0, f64::NAN),
                (inf, f64::NAN),
            ],
        );
        let _ = bq(0.5, &[(-inf, 1.0), (inf, 2.0)]);
    }

    #[test]
    fn bucket_quantile_monotonicity() {
        let inf = f64::INFINITY;
        // nonmonotonic_bucket at 50m.
        let b = [
            (0.1, 20.0),
            (1.0, 10.0),
            (10.0, 50.0),
            (100.0, 40.0),
            (1000.0, 90.0),
            (inf, 80.0),
        ];
        assert!(close(bq(0.01, &b), 0.0045));
        assert!(close(bq(0.5, &b), 8.5));
        assert!(close(bq(0.99, &b), 979.75));
        let (_, info) = bucket_quantile_with_info(0.5, &mut b.to_vec());
        assert_eq!(
            info,
            BucketQuantileInfo {
                forced_monotonicity: true,
                fixed_precision: false,
                min_bucket: 1.0,
                max_bucket: inf,
                max_diff: 10.0,
            }
        );
        // Tiny relative differences are ignored silently, in both directions.
        let tiny = [
            (1.0, 1e15),
            (2.0, 1e15 - 0.25),
            (3.0, 1e15 + 0.25),
            (inf, 2e15),
        ];
        let mut v = tiny.to_vec();
        let (r, info) = bucket_quantile_with_info(0.5, &mut v);
        assert!(info.fixed_precision);
        assert!(!info.forced_monotonicity);
        assert_eq!(v[1].1, 1e15);
        assert_eq!(v[2].1, 1e15);
        assert_eq!(r, 1.0);
        // Monotonic input: nothing reported.
        let (_, info) =
            bucket_quantile_with_info(0.5, &mut vec![(1.0, 1.0), (2.0, 2.0), (inf, 3.0)]);
        assert_eq!(info, BucketQuantileInfo::default());
    }

    #[test]
    fn almost_equal_cases() {
        assert!(almost_equal(f64::NAN, f64::NAN, 1e-12));
        assert!(almost_equal(1.0, 1.0, 1e-12));
        assert!(!almost_equal(1.0, 1.0 + 1e-9, 1e-12));
        assert!(almost_equal(1e15, 1e15 + 0.5, 1e-12));
        assert!(!almost_equal(0.0, 1e-300, 1e-12));
        assert!(almost_equal(f64::MAX, f64::MAX, 1e-12));
    }

    #[test]
    fn no_panics() {
        let vals = [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            0.0,
            -0.0,
            f64::MAX,
            f64::MIN,
            f64::MIN_POSITIVE,
            1e300,
            -1e-300,
        ];
        for name in MATH_FNS {
            for &v in &vals {
                for p in [
                    &[][..],
                    &[f64::NAN],
                    &[0.0, f64::NAN],
                    &[f64::INFINITY, 1.0],
                ] {
                    let _ = eval_math_fn(name, v, p);
                }
            }
        }
        for &q in &vals {
            let _ = quantile(q, &mut vals.to_vec());
            let mut b: Vec<(f64, f64)> = vals.iter().map(|&u| (u, u)).collect();
            let _ = bucket_quantile(q, &mut b);
        }
    }
}
