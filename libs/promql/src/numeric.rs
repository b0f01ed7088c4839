//! The evaluator's single entry point into the numeric kernels of
//! [`crate::rangefn`] and [`crate::mathfn`], plus the few experimental
//! range functions those modules leave out (`first_over_time`,
//! `ts_of_*_over_time`).

pub(crate) use crate::mathfn::{bucket_quantile_with_info, eval_math_fn, is_math_fn, quantile};
pub(crate) use crate::rangefn::validate_params;

/// Experimental range functions evaluated here.
const EXTRA_RANGE_FNS: &[&str] = &[
    "first_over_time",
    "ts_of_first_over_time",
    "ts_of_last_over_time",
    "ts_of_min_over_time",
    "ts_of_max_over_time",
];

pub(crate) fn is_range_fn(name: &str) -> bool {
    crate::rangefn::is_range_fn(name) || EXTRA_RANGE_FNS.contains(&name)
}

/// A function over one window of samples; see `rangefn::eval_range_fn`.
pub(crate) fn eval_range_fn(
    name: &str,
    samples: &[(i64, f64)],
    range_start_ms: i64,
    range_end_ms: i64,
    eval_ts_ms: i64,
    params: &[f64],
) -> Option<f64> {
    let secs = |t: i64| t as f64 / 1000.0;
    match name {
        "first_over_time" => samples.first().map(|s| s.1),
        "ts_of_first_over_time" => samples.first().map(|s| secs(s.0)),
        "ts_of_last_over_time" => samples.last().map(|s| secs(s.0)),
        "ts_of_min_over_time" | "ts_of_max_over_time" => {
            let max = name == "ts_of_max_over_time";
            let mut best: Option<(i64, f64)> = None;
            for &(t, v) in samples {
                best = match best {
                    None => Some((t, v)),
                    // Later samples win ties, as Prometheus.
                    Some((_, b)) if b.is_nan() || (max && v >= b) || (!max && v <= b) => {
                        Some((t, v))
                    }
                    keep => keep,
                };
            }
            best.map(|(t, _)| secs(t))
        }
        _ => crate::rangefn::eval_range_fn(
            name,
            samples,
            range_start_ms,
            range_end_ms,
            eval_ts_ms,
            params,
        ),
    }
}
