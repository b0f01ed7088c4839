use std::time::Duration;

use strata_model::duration::{duration_ms, format_duration};
use strata_model::{is_valid_label_name, is_valid_metric_name, METRIC_NAME};
use strata_remote_write::{ExemplarView, LabelRef};
use thiserror::Error;

use crate::DistributorLimits;

/// Why a series was refused. Messages name the series so the sender can
/// find the exporter at fault.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum ValidationError {
    #[error("series has no labels")]
    NoLabels,
    #[error("series {series} has no metric name (__name__ label)")]
    MissingMetricName { series: String },
    #[error("series {series} has invalid metric name {name:?}: names must match [a-zA-Z_:][a-zA-Z0-9_:]*")]
    InvalidMetricName { series: String, name: String },
    #[error("series {series} has an empty label name")]
    EmptyLabelName { series: String },
    #[error(
        "series {series} has invalid label name {name:?}: names must match [a-zA-Z_][a-zA-Z0-9_]*"
    )]
    InvalidLabelName { series: String, name: String },
    #[error("series {series} has labels not sorted by name ({after:?} comes after {before:?}); sort labels by name before sending")]
    UnsortedLabels {
        series: String,
        before: String,
        after: String,
    },
    #[error("series {series} has label {name:?} more than once")]
    DuplicateLabel { series: String, name: String },
    #[error("series {series} has {count} labels, the limit is {limit}")]
    TooManyLabels {
        series: String,
        count: usize,
        limit: usize,
    },
    #[error("series {series} has label name {name:?} of {len} bytes, the limit is {limit}")]
    LabelNameTooLong {
        series: String,
        name: String,
        len: usize,
        limit: usize,
    },
    #[error("series {series} has a value of label {name:?} of {len} bytes, the limit is {limit}")]
    LabelValueTooLong {
        series: String,
        name: String,
        len: usize,
        limit: usize,
    },
    #[error("series {series} has a sample at timestamp {timestamp} ms, more than {grace_ms} ms in the future")]
    TooFarInFuture {
        series: String,
        timestamp: i64,
        grace_ms: i64,
    },
}

impl ValidationError {
    /// Short reason for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            ValidationError::NoLabels => "no_labels",
            ValidationError::MissingMetricName { .. } => "missing_metric_name",
            ValidationError::InvalidMetricName { .. } => "invalid_metric_name",
            ValidationError::EmptyLabelName { .. } => "empty_label_name",
            ValidationError::InvalidLabelName { .. } => "invalid_label_name",
            ValidationError::UnsortedLabels { .. } => "labels_not_sorted",
            ValidationError::DuplicateLabel { .. } => "duplicate_label_names",
            ValidationError::TooManyLabels { .. } => "max_label_names_per_series",
            ValidationError::LabelNameTooLong { .. } => "label_name_too_long",
            ValidationError::LabelValueTooLong { .. } => "label_value_too_long",
            ValidationError::TooFarInFuture { .. } => "too_far_in_future",
        }
    }
}

/// Why a sample's timestamp is refused; the discriminant indexes per-kind
/// tallies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TimestampProblem {
    /// Before 1970: refused whatever the limits.
    BeforeEpoch = 0,
    /// Later than now plus `creation_grace_period`.
    TooFarInFuture = 1,
    /// Older than now minus `reject_old_samples_max_age` (when set).
    TooOld = 2,
}

impl TimestampProblem {
    pub const ALL: [TimestampProblem; 3] = [
        TimestampProblem::BeforeEpoch,
        TimestampProblem::TooFarInFuture,
        TimestampProblem::TooOld,
    ];

    /// Reason for `discarded_samples_total`.
    pub fn reason(self) -> &'static str {
        match self {
            TimestampProblem::BeforeEpoch => "sample_timestamp_out_of_range",
            TimestampProblem::TooFarInFuture => "too_far_in_future",
            TimestampProblem::TooOld => "greater_than_max_sample_age",
        }
    }
}

/// The timestamps a push may carry, fixed once per request.
#[derive(Clone, Debug)]
pub(crate) struct TimeWindow {
    pub min_ts: i64,
    /// Latest timestamp accepted (now plus the creation grace period).
    pub max_ts: i64,
    grace_ms: i64,
    max_age: Duration,
}

impl TimeWindow {
    pub fn new(limits: &DistributorLimits, now_ms: i64) -> Self {
        let grace_ms = duration_ms(limits.creation_grace_period);
        let max_age = limits.reject_old_samples_max_age;
        let min_ts = if max_age.is_zero() {
            0
        } else {
            now_ms.saturating_sub(duration_ms(max_age)).max(0)
        };
        Self {
            min_ts,
            max_ts: now_ms.saturating_add(grace_ms),
            grace_ms,
            max_age,
        }
    }

    pub fn contains(&self, t: i64) -> bool {
        (self.min_ts..=self.max_ts).contains(&t)
    }

    pub fn problem(&self, t: i64) -> Option<TimestampProblem> {
        if self.contains(t) {
            None
        } else if t > self.max_ts {
            Some(TimestampProblem::TooFarInFuture)
        } else if t < 0 {
            Some(TimestampProblem::BeforeEpoch)
        } else {
            Some(TimestampProblem::TooOld)
        }
    }

    /// What the sender is told about `series`' sample at `t`.
    pub fn message(&self, problem: TimestampProblem, series: &str, t: i64) -> String {
        match problem {
            TimestampProblem::BeforeEpoch => format!(
                "series {series} has a sample at timestamp {t} ms, before 1970-01-01; timestamps are milliseconds since the Unix epoch"
            ),
            TimestampProblem::TooFarInFuture => format!(
                "series {series} has a sample at timestamp {t} ms, more than {} ms in the future; check the sender's clock",
                self.grace_ms
            ),
            TimestampProblem::TooOld => format!(
                "series {series} has a sample at timestamp {t} ms, older than the limit of {} (reject_old_samples_max_age); send recent samples only",
                format_duration(self.max_age)
            ),
        }
    }
}

/// Longest exemplar label set, counted in characters of names and values
/// together (Prometheus's `ExemplarMaxLabelSetLength`).
pub const MAX_EXEMPLAR_LABEL_RUNES: usize = 128;

/// Why an exemplar must be dropped, as the reason of
/// `strata_distributor_discarded_exemplars_total` (Mimir's checks and
/// reason names); `None` if it is valid. `max_ts` is the latest timestamp
/// accepted (now plus the creation grace period).
pub fn exemplar_problem(e: &ExemplarView<'_, '_>, max_ts: i64) -> Option<&'static str> {
    if e.labels.is_empty() {
        return Some("exemplar_labels_missing");
    }
    if e.timestamp == 0 {
        return Some("exemplar_timestamp_invalid");
    }
    let mut runes = 0usize;
    let mut has_pair = false;
    for l in e.labels {
        runes += l.name.chars().count() + l.value.chars().count();
        has_pair |= !l.name.is_empty() && !l.value.is_empty();
    }
    if runes > MAX_EXEMPLAR_LABEL_RUNES {
        return Some("exemplar_labels_too_long");
    }
    if !has_pair {
        return Some("exemplar_labels_blank");
    }
    if e.timestamp > max_ts {
        return Some("exemplar_too_far_in_future");
    }
    None
}

/// Formats a series for error messages, shortening long values.
pub(crate) fn series_text(labels: &[LabelRef<'_>]) -> String {
    const MAX: usize = 200;
    let mut out = String::new();
    let name = labels
        .iter()
        .find(|l| l.name == METRIC_NAME)
        .map(|l| l.value)
        .unwrap_or("");
    out.push_str(name);
    out.push('{');
    let mut first = true;
    for l in labels.iter().filter(|l| l.name != METRIC_NAME) {
        if !first {
            out.push_str(", ");
        }
        first = false;
        out.push_str(&format!("{}={:?}", l.name, l.value));
        if out.len() > MAX {
            out.truncate(MAX);
            out.push('…');
            break;
        }
    }
    out.push('}');
    out
}

/// Checks a series' labels (after empty-valued labels were dropped). Labels
/// must be sorted by name and unique, as the remote write spec requires.
pub fn validate_series(
    labels: &[LabelRef<'_>],
    limits: &DistributorLimits,
) -> Result<(), ValidationError> {
    if labels.is_empty() {
        return Err(ValidationError::NoLabels);
    }
    let series = || series_text(labels);
    if limits.max_label_names_per_series > 0 && labels.len() > limits.max_label_names_per_series {
        return Err(ValidationError::TooManyLabels {
            series: series(),
            count: labels.len(),
            limit: limits.max_label_names_per_series,
        });
    }
    let mut has_name = false;
    for (i, l) in labels.iter().enumerate() {
        if l.name.is_empty() {
            return Err(ValidationError::EmptyLabelName { series: series() });
        }
        if i > 0 {
            let prev = labels[i - 1].name;
            if prev == l.name {
                return Err(ValidationError::DuplicateLabel {
                    series: series(),
                    name: l.name.to_string(),
                });
            }
            if prev > l.name {
                return Err(ValidationError::UnsortedLabels {
                    series: series(),
                    before: prev.to_string(),
                    after: l.name.to_string(),
                });
            }
        }
        if l.name == METRIC_NAME {
            has_name = true;
            if !is_valid_metric_name(l.value) {
                return Err(ValidationError::InvalidMetricName {
                    series: series(),
                    name: l.value.to_string(),
                });
            }
        } else if !is_valid_label_name(l.name) {
            return Err(ValidationError::InvalidLabelName {
                series: series(),
                name: l.name.to_string(),
            });
        }
        if limits.max_label_name_length > 0 && l.name.len() > limits.max_label_name_length {
            return Err(ValidationError::LabelNameTooLong {
                series: series(),
                name: l.name.chars().take(64).collect(),
                len: l.name.len(),
                limit: limits.max_label_name_length,
            });
        }
        if limits.max_label_value_length > 0 && l.value.len() > limits.max_label_value_length {
            return Err(ValidationError::LabelValueTooLong {
                series: series(),
                name: l.name.to_string(),
                len: l.value.len(),
                limit: limits.max_label_value_length,
            });
        }
    }
    if !has_name {
        return Err(ValidationError::MissingMetricName { series: series() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l<'a>(name: &'a str, value: &'a str) -> LabelRef<'a> {
        LabelRef { name, value }
    }

    #[test]
    fn exemplar_checks() {
        let ok = [l("trace_id", "abc")];
        let blank = [l("trace_id", "")];
        let long_value = "é".repeat(MAX_EXEMPLAR_LABEL_RUNES - "trace_id".len());
        let at_limit = [l("trace_id", &long_value)];
        let too_long_value = format!("{long_value}x");
        let too_long = [l("trace_id", &too_long_value)];
        let ex = |labels, timestamp| ExemplarView {
            labels,
            value: 1.0,
            timestamp,
        };
        let cases: [(ExemplarView<'_, '_>, Option<&str>); 7] = [
            (ex(&ok, 1000), None),
            (ex(&at_limit, 1000), None),
            (ex(&[], 1000), Some("exemplar_labels_missing")),
            (ex(&ok, 0), Some("exemplar_timestamp_invalid")),
            (ex(&too_long, 1000), Some("exemplar_labels_too_long")),
            (ex(&blank, 1000), Some("exemplar_labels_blank")),
            (ex(&ok, 2001), Some("exemplar_too_far_in_future")),
        ];
        for (e, want) in cases {
            assert_eq!(exemplar_problem(&e, 2000), want, "{e:?}");
        }
    }

    #[test]
    fn accepts_valid_series() {
        let limits = DistributorLimits::default();
        validate_series(&[l("__name__", "up"), l("job", "x")], &limits).unwrap();
    }

    #[test]
    fn refuses_each_kind_of_bad_series() {
        let limits = DistributorLimits {
            max_label_names_per_series: 3,
            max_label_name_length: 10,
            max_label_value_length: 5,
            ..Default::default()
        };
        let cases: Vec<(Vec<LabelRef>, &str)> = vec![
            (vec![], "no_labels"),
            (vec![l("job", "x")], "missing_metric_name"),
            (vec![l("__name__", "1up")], "invalid_metric_name"),
            (vec![l("", "x"), l("__name__", "up")], "empty_label_name"),
            (
                vec![l("__name__", "up"), l("a-b", "x")],
                "invalid_label_name",
            ),
            (
                vec![l("job", "x"), l("__name__", "up")],
                "labels_not_sorted",
            ),
            (
                vec![l("__name__", "up"), l("a", "1"), l("a", "2")],
                "duplicate_label_names",
            ),
            (
                vec![l("__name__", "up"), l("a", "1"), l("b", "2"), l("c", "3")],
                "max_label_names_per_series",
            ),
            (
                vec![l("__name__", "up"), l("abcdefghijk", "1")],
                "label_name_too_long",
            ),
            (
                vec![l("__name__", "up"), l("a", "123456")],
                "label_value_too_long",
            ),
        ];
        for (labels, reason) in cases {
            let err = validate_series(&labels, &limits).unwrap_err();
            assert_eq!(err.reason(), reason, "{err}");
        }
    }
}
