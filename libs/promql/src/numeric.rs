//! The evaluator's single entry point into the numeric kernels of
//! [`crate::rangefn`] and [`crate::mathfn`], plus the few experimental
//! range functions those modules leave out (`first_over_time`,
//! `ts_of_*_over_time`).

pub(crate) use crate::mathfn::{bucket_quantile_with_info, eval_math_fn, is_math_fn, quantile};
pub(crate) use crate::rangefn::validate_params;

use crate::rangefn;

/// Experimental range functions evaluated here.
const EXTRA_RANGE_FNS: &[&str] = &[
    "first_over_time",
    "ts_of_first_over_time",
    "ts_of_last_over_time",
    "ts_of_min_over_time",
    "ts_of_max_over_time",
];

pub(crate) fn is_range_fn(name: &str) -> bool {
    rangefn::is_range_fn(name) || EXTRA_RANGE_FNS.contains(&name)
}

/// A function over range vectors, resolved once per query rather than by
/// name at every step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RangeFn {
    Rate,
    Increase,
    Delta,
    Irate,
    Idelta,
    Deriv,
    PredictLinear,
    DoubleExponentialSmoothing,
    Resets,
    Changes,
    AvgOverTime,
    MinOverTime,
    MaxOverTime,
    SumOverTime,
    CountOverTime,
    StddevOverTime,
    StdvarOverTime,
    LastOverTime,
    PresentOverTime,
    QuantileOverTime,
    MadOverTime,
    FirstOverTime,
    TsOfFirstOverTime,
    TsOfLastOverTime,
    TsOfMinOverTime,
    TsOfMaxOverTime,
}

impl RangeFn {
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "rate" => Self::Rate,
            "increase" => Self::Increase,
            "delta" => Self::Delta,
            "irate" => Self::Irate,
            "idelta" => Self::Idelta,
            "deriv" => Self::Deriv,
            "predict_linear" => Self::PredictLinear,
            "double_exponential_smoothing" => Self::DoubleExponentialSmoothing,
            "resets" => Self::Resets,
            "changes" => Self::Changes,
            "avg_over_time" => Self::AvgOverTime,
            "min_over_time" => Self::MinOverTime,
            "max_over_time" => Self::MaxOverTime,
            "sum_over_time" => Self::SumOverTime,
            "count_over_time" => Self::CountOverTime,
            "stddev_over_time" => Self::StddevOverTime,
            "stdvar_over_time" => Self::StdvarOverTime,
            "last_over_time" => Self::LastOverTime,
            "present_over_time" => Self::PresentOverTime,
            "quantile_over_time" => Self::QuantileOverTime,
            "mad_over_time" => Self::MadOverTime,
            "first_over_time" => Self::FirstOverTime,
            "ts_of_first_over_time" => Self::TsOfFirstOverTime,
            "ts_of_last_over_time" => Self::TsOfLastOverTime,
            "ts_of_min_over_time" => Self::TsOfMinOverTime,
            "ts_of_max_over_time" => Self::TsOfMaxOverTime,
            _ => return None,
        })
    }

    /// `rate`, `increase`, `delta`: the functions whose result for a
    /// window depends on counter resets (or not) and its ends only.
    pub fn extrapolated(self) -> Option<(bool, bool)> {
        match self {
            Self::Rate => Some((true, true)),
            Self::Increase => Some((true, false)),
            Self::Delta => Some((false, false)),
            _ => None,
        }
    }

    /// The function over one window of samples, exactly as
    /// [`eval_range_fn`] by name.
    pub fn eval(
        self,
        samples: &[(i64, f64)],
        range_start_ms: i64,
        range_end_ms: i64,
        eval_ts_ms: i64,
        params: &[f64],
    ) -> Option<f64> {
        if samples.is_empty() {
            return None;
        }
        let secs = |t: i64| t as f64 / 1000.0;
        match self {
            Self::Rate | Self::Increase | Self::Delta => {
                let (counter, rate) = self.extrapolated()?;
                rangefn::extrapolated_rate_with(
                    samples,
                    range_start_ms,
                    range_end_ms,
                    counter,
                    rate,
                    true,
                    rangefn::duration_seconds(range_end_ms.wrapping_sub(range_start_ms)),
                )
            }
            Self::Irate => rangefn::instant_value(samples, true),
            Self::Idelta => rangefn::instant_value(samples, false),
            Self::Deriv => rangefn::deriv(samples),
            Self::PredictLinear => rangefn::predict_linear(samples, eval_ts_ms, *params.first()?),
            Self::DoubleExponentialSmoothing => {
                rangefn::double_exponential_smoothing(samples, *params.first()?, *params.get(1)?)
            }
            Self::Resets => Some(rangefn::resets(samples)),
            Self::Changes => Some(rangefn::changes(samples)),
            Self::AvgOverTime => Some(rangefn::avg_over_time(samples)),
            Self::MinOverTime => Some(rangefn::compare_over_time(samples, |cur, acc| {
                cur < acc || acc.is_nan()
            })),
            Self::MaxOverTime => Some(rangefn::compare_over_time(samples, |cur, acc| {
                cur > acc || acc.is_nan()
            })),
            Self::SumOverTime => Some(rangefn::sum_over_time(samples)),
            Self::CountOverTime => Some(samples.len() as f64),
            Self::StddevOverTime => Some(rangefn::variance_over_time(samples).sqrt()),
            Self::StdvarOverTime => Some(rangefn::variance_over_time(samples)),
            Self::LastOverTime => samples.last().map(|s| s.1),
            Self::PresentOverTime => Some(1.0),
            Self::QuantileOverTime => {
                let q = *params.first()?;
                let mut values: Vec<f64> = samples.iter().map(|s| s.1).collect();
                Some(quantile(q, &mut values))
            }
            Self::MadOverTime => Some(rangefn::mad_over_time(samples)),
            Self::FirstOverTime => samples.first().map(|s| s.1),
            Self::TsOfFirstOverTime => samples.first().map(|s| secs(s.0)),
            Self::TsOfLastOverTime => samples.last().map(|s| secs(s.0)),
            Self::TsOfMinOverTime | Self::TsOfMaxOverTime => {
                let max = self == Self::TsOfMaxOverTime;
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
        }
    }
}

/// A function over one window of samples; see `rangefn::eval_range_fn`.
#[cfg(test)]
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

#[cfg(test)]
mod tests {
    use super::*;

    const NAMES: &[&str] = &[
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
        "first_over_time",
        "ts_of_first_over_time",
        "ts_of_last_over_time",
        "ts_of_min_over_time",
        "ts_of_max_over_time",
    ];

    fn same(a: Option<f64>, b: Option<f64>) -> bool {
        a.map(f64::to_bits) == b.map(f64::to_bits)
            || a.zip(b).is_some_and(|(x, y)| x.is_nan() && y.is_nan())
    }

    /// Every function resolved once computes exactly what it computes by
    /// name.
    #[test]
    fn resolved_functions_match_dispatch_by_name() {
        for name in NAMES {
            assert!(is_range_fn(name), "{name}");
        }
        assert!(RangeFn::from_name("absent_over_time").is_none());
        let inputs: Vec<Vec<(i64, f64)>> = vec![
            vec![],
            vec![(1000, 1.0)],
            vec![(1000, 5.0), (16_000, 7.5), (31_000, 2.0), (46_000, 3.0)],
            vec![(0, f64::NAN), (10, 1.0), (20, f64::INFINITY), (30, -0.0)],
            (0..40)
                .map(|i| (i * 15_000, (i as f64 * 1.7).sin() * 100.0))
                .collect(),
        ];
        let params = [vec![], vec![0.3], vec![0.5, 0.2], vec![f64::NAN, 2.0]];
        for name in NAMES {
            let f = RangeFn::from_name(name).expect("known function");
            for samples in &inputs {
                for p in &params {
                    for (start, end, ts) in [(0, 60_000, 60_000), (-5, 600_000, 590_000)] {
                        let by_name = eval_range_fn(name, samples, start, end, ts, p);
                        let resolved = f.eval(samples, start, end, ts, p);
                        assert!(
                            same(by_name, resolved),
                            "{name} {samples:?} {p:?}: {by_name:?} vs {resolved:?}"
                        );
                    }
                }
            }
        }
    }
}
