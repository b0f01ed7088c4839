//! Exemplars: a sample of a series annotated with labels of its own (a
//! trace ID, typically), as remote write carries them and the
//! `query_exemplars` API returns them.

use crate::Labels;

/// One exemplar.
#[derive(Clone, Debug, PartialEq)]
pub struct Exemplar {
    pub labels: Labels,
    pub value: f64,
    /// Milliseconds since the Unix epoch.
    pub timestamp: i64,
}

/// A series and its exemplars in a queried time range, oldest first.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesExemplars {
    pub labels: Labels,
    pub exemplars: Vec<Exemplar>,
}
