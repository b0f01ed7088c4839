//! Encoder for remote write 1.0 requests, used by tests, the load generator
//! and the distributor (which forwards series bytes verbatim with
//! [`encode_series_raw_into`]).
//!
//! Output is byte-identical to prost (and to Prometheus' gogoproto code):
//! proto3 scalar fields equal to their default (`0`, `0.0`, `""`) are
//! omitted, repeated message elements are always written.

use crate::decode::{ExemplarView, LabelRef, MetadataRef, MetricType, Sample};
use crate::wire::{put_varint, varint_len};

/// An owned time series for building requests.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OwnedTimeSeries {
    /// `(name, value)` pairs, written in this order.
    pub labels: Vec<(String, String)>,
    /// Float samples.
    pub samples: Vec<Sample>,
    /// Exemplars.
    pub exemplars: Vec<OwnedExemplar>,
    /// Native histogram samples (a minimal subset of the message).
    pub histograms: Vec<OwnedHistogram>,
}

impl OwnedTimeSeries {
    /// A series with labels and samples only.
    pub fn new<N: Into<String>, V: Into<String>>(
        labels: impl IntoIterator<Item = (N, V)>,
        samples: impl IntoIterator<Item = Sample>,
    ) -> Self {
        OwnedTimeSeries {
            labels: labels
                .into_iter()
                .map(|(n, v)| (n.into(), v.into()))
                .collect(),
            samples: samples.into_iter().collect(),
            exemplars: Vec::new(),
            histograms: Vec::new(),
        }
    }
}

/// An owned exemplar.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OwnedExemplar {
    /// `(name, value)` pairs.
    pub labels: Vec<(String, String)>,
    /// Exemplar value.
    pub value: f64,
    /// Milliseconds since the Unix epoch.
    pub timestamp: i64,
}

/// A minimal native histogram sample: integer counts, no buckets. Enough
/// to exercise receivers' native histogram handling.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct OwnedHistogram {
    /// `count_int` (field 1; always written, it is a oneof member).
    pub count: u64,
    /// `sum` (field 3).
    pub sum: f64,
    /// `schema` (field 4, sint32).
    pub schema: i32,
    /// `zero_threshold` (field 5).
    pub zero_threshold: f64,
    /// `zero_count_int` (field 6; always written, it is a oneof member).
    pub zero_count: u64,
    /// `timestamp` (field 15).
    pub timestamp: i64,
}

/// An owned `MetricMetadata`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OwnedMetadata {
    /// Metric type.
    pub metric_type: MetricType,
    /// `metric_family_name`.
    pub metric_family_name: String,
    /// Help text.
    pub help: String,
    /// Unit.
    pub unit: String,
}

impl From<&MetadataRef<'_>> for OwnedMetadata {
    fn from(m: &MetadataRef<'_>) -> Self {
        OwnedMetadata {
            metric_type: m.metric_type,
            metric_family_name: m.metric_family_name.to_owned(),
            help: m.help.to_owned(),
            unit: m.unit.to_owned(),
        }
    }
}

/// Encodes an uncompressed protobuf `WriteRequest`.
pub fn encode_write_request(series: &[OwnedTimeSeries], metadata: &[OwnedMetadata]) -> Vec<u8> {
    let mut out = Vec::with_capacity(request_len(series, metadata));
    encode_write_request_into(&mut out, series, metadata);
    out
}

/// Appends an uncompressed protobuf `WriteRequest` to `out`.
pub fn encode_write_request_into(
    out: &mut Vec<u8>,
    series: &[OwnedTimeSeries],
    metadata: &[OwnedMetadata],
) {
    for s in series {
        encode_series_into(out, s);
    }
    for m in metadata {
        encode_metadata_into(out, m);
    }
}

fn request_len(series: &[OwnedTimeSeries], metadata: &[OwnedMetadata]) -> usize {
    series
        .iter()
        .map(|s| field_len(series_len(s)))
        .sum::<usize>()
        + metadata
            .iter()
            .map(|m| field_len(metadata_len(m)))
            .sum::<usize>()
}

/// Appends `timeseries` entry (field 1) for `series`.
pub fn encode_series_into(out: &mut Vec<u8>, series: &OwnedTimeSeries) {
    out.push(0x0a);
    put_varint(out, series_len(series) as u64);
    for (name, value) in &series.labels {
        put_label(out, name, value);
    }
    for s in &series.samples {
        put_sample(out, s);
    }
    for e in &series.exemplars {
        put_exemplar(out, e);
    }
    for h in &series.histograms {
        put_histogram(out, h);
    }
}

/// Appends a `timeseries` entry (field 1) built from borrowed labels and
/// samples, e.g. after a distributor rewrote a series' labels.
pub fn encode_series_parts_into(out: &mut Vec<u8>, labels: &[LabelRef<'_>], samples: &[Sample]) {
    encode_series_parts_with_exemplars_into(out, labels, samples, &[]);
}

/// Like [`encode_series_parts_into`], with exemplars: for a series whose
/// samples or exemplars were filtered (a distributor dropping invalid
/// exemplars keeps the valid ones).
pub fn encode_series_parts_with_exemplars_into(
    out: &mut Vec<u8>,
    labels: &[LabelRef<'_>],
    samples: &[Sample],
    exemplars: &[ExemplarView<'_, '_>],
) {
    let len = labels
        .iter()
        .map(|l| field_len(label_len(l.name, l.value)))
        .sum::<usize>()
        + samples
            .iter()
            .map(|s| field_len(sample_len(s)))
            .sum::<usize>()
        + exemplars
            .iter()
            .map(|e| field_len(exemplar_view_len(e)))
            .sum::<usize>();
    out.push(0x0a);
    put_varint(out, len as u64);
    for l in labels {
        put_label(out, l.name, l.value);
    }
    for s in samples {
        put_sample(out, s);
    }
    for e in exemplars {
        out.push(0x1a);
        put_varint(out, exemplar_view_len(e) as u64);
        for l in e.labels {
            put_label(out, l.name, l.value);
        }
        put_double_field(out, 0x11, e.value);
        put_int64_field(out, 0x18, e.timestamp);
    }
}

/// Appends `field 1, wire type 2, length, raw`: a `timeseries` entry whose
/// body is an already-encoded `TimeSeries` message (for example
/// [`TimeSeriesView::raw`](crate::TimeSeriesView::raw)).
pub fn encode_series_raw_into(out: &mut Vec<u8>, raw_series: &[u8]) {
    out.push(0x0a);
    put_varint(out, raw_series.len() as u64);
    out.extend_from_slice(raw_series);
}

/// Appends a `metadata` entry (field 3).
pub fn encode_metadata_into(out: &mut Vec<u8>, md: &OwnedMetadata) {
    out.push(0x1a);
    put_varint(out, metadata_len(md) as u64);
    let t = md.metric_type.as_i32();
    if t != 0 {
        out.push(0x08);
        // int32 is sign-extended to 64 bits on the wire.
        put_varint(out, i64::from(t) as u64);
    }
    put_string_field(out, 0x12, &md.metric_family_name);
    put_string_field(out, 0x22, &md.help);
    put_string_field(out, 0x2a, &md.unit);
}

/// Appends a `metadata` entry (field 3) whose body is an already-encoded
/// `MetricMetadata` message (for example [`MetadataRef::raw`]).
pub fn encode_metadata_raw_into(out: &mut Vec<u8>, raw_metadata: &[u8]) {
    out.push(0x1a);
    put_varint(out, raw_metadata.len() as u64);
    out.extend_from_slice(raw_metadata);
}

// ---------------------------------------------------------------------
// sizes
// ---------------------------------------------------------------------

/// Size of a length-delimited field holding `len` bytes (1-byte key).
#[inline]
fn field_len(len: usize) -> usize {
    1 + varint_len(len as u64) + len
}

#[inline]
fn string_field_len(s: &str) -> usize {
    if s.is_empty() {
        0
    } else {
        field_len(s.len())
    }
}

#[inline]
fn label_len(name: &str, value: &str) -> usize {
    string_field_len(name) + string_field_len(value)
}

#[inline]
fn int64_field_len(v: i64) -> usize {
    if v == 0 {
        0
    } else {
        1 + varint_len(v as u64)
    }
}

#[inline]
fn double_field_len(v: f64) -> usize {
    if v == 0.0 {
        0
    } else {
        9
    }
}

#[inline]
fn sample_len(s: &Sample) -> usize {
    double_field_len(s.value) + int64_field_len(s.timestamp)
}

fn exemplar_len(e: &OwnedExemplar) -> usize {
    e.labels
        .iter()
        .map(|(n, v)| field_len(label_len(n, v)))
        .sum::<usize>()
        + double_field_len(e.value)
        + int64_field_len(e.timestamp)
}

fn exemplar_view_len(e: &ExemplarView<'_, '_>) -> usize {
    e.labels
        .iter()
        .map(|l| field_len(label_len(l.name, l.value)))
        .sum::<usize>()
        + double_field_len(e.value)
        + int64_field_len(e.timestamp)
}

fn zigzag32(v: i32) -> u64 {
    u64::from(((v << 1) ^ (v >> 31)) as u32)
}

fn histogram_len(h: &OwnedHistogram) -> usize {
    let schema = if h.schema == 0 {
        0
    } else {
        1 + varint_len(zigzag32(h.schema))
    };
    (1 + varint_len(h.count))
        + double_field_len(h.sum)
        + schema
        + double_field_len(h.zero_threshold)
        + (1 + varint_len(h.zero_count))
        + int64_field_len(h.timestamp)
}

fn series_len(s: &OwnedTimeSeries) -> usize {
    s.labels
        .iter()
        .map(|(n, v)| field_len(label_len(n, v)))
        .sum::<usize>()
        + s.samples
            .iter()
            .map(|x| field_len(sample_len(x)))
            .sum::<usize>()
        + s.exemplars
            .iter()
            .map(|e| field_len(exemplar_len(e)))
            .sum::<usize>()
        + s.histograms
            .iter()
            .map(|h| field_len(histogram_len(h)))
            .sum::<usize>()
}

fn metadata_len(m: &OwnedMetadata) -> usize {
    let t = m.metric_type.as_i32();
    let type_len = if t == 0 {
        0
    } else {
        1 + varint_len(i64::from(t) as u64)
    };
    type_len
        + string_field_len(&m.metric_family_name)
        + string_field_len(&m.help)
        + string_field_len(&m.unit)
}

// ---------------------------------------------------------------------
// writers
// ---------------------------------------------------------------------

#[inline]
fn put_string_field(out: &mut Vec<u8>, key: u8, s: &str) {
    if !s.is_empty() {
        out.push(key);
        put_varint(out, s.len() as u64);
        out.extend_from_slice(s.as_bytes());
    }
}

#[inline]
fn put_int64_field(out: &mut Vec<u8>, key: u8, v: i64) {
    if v != 0 {
        out.push(key);
        put_varint(out, v as u64);
    }
}

#[inline]
fn put_double_field(out: &mut Vec<u8>, key: u8, v: f64) {
    if v != 0.0 {
        out.push(key);
        out.extend_from_slice(&v.to_bits().to_le_bytes());
    }
}

#[inline]
fn put_label(out: &mut Vec<u8>, name: &str, value: &str) {
    out.push(0x0a);
    put_varint(out, label_len(name, value) as u64);
    put_string_field(out, 0x0a, name);
    put_string_field(out, 0x12, value);
}

#[inline]
fn put_sample(out: &mut Vec<u8>, s: &Sample) {
    out.push(0x12);
    put_varint(out, sample_len(s) as u64);
    put_double_field(out, 0x09, s.value);
    put_int64_field(out, 0x10, s.timestamp);
}

fn put_exemplar(out: &mut Vec<u8>, e: &OwnedExemplar) {
    out.push(0x1a);
    put_varint(out, exemplar_len(e) as u64);
    for (n, v) in &e.labels {
        put_label(out, n, v);
    }
    put_double_field(out, 0x11, e.value);
    put_int64_field(out, 0x18, e.timestamp);
}

fn put_histogram(out: &mut Vec<u8>, h: &OwnedHistogram) {
    out.push(0x22);
    put_varint(out, histogram_len(h) as u64);
    out.push(0x08);
    put_varint(out, h.count);
    put_double_field(out, 0x19, h.sum);
    if h.schema != 0 {
        out.push(0x20);
        put_varint(out, zigzag32(h.schema));
    }
    put_double_field(out, 0x29, h.zero_threshold);
    out.push(0x30);
    put_varint(out, h.zero_count);
    put_int64_field(out, 0x78, h.timestamp);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::WriteRequestRef;

    #[test]
    fn parts_with_exemplars_match_the_owned_encoding() {
        let mut owned = OwnedTimeSeries::new(
            [("__name__", "m"), ("job", "a")],
            [Sample {
                timestamp: 1000,
                value: 1.5,
            }],
        );
        owned.exemplars = vec![
            OwnedExemplar {
                labels: vec![("trace_id".into(), "abc".into())],
                value: 2.5,
                timestamp: 1001,
            },
            OwnedExemplar {
                labels: vec![],
                value: 0.0,
                timestamp: 0,
            },
        ];
        let body = encode_write_request(std::slice::from_ref(&owned), &[]);
        let req = WriteRequestRef::decode(&body).unwrap();
        let Some(ts) = req.get(0) else {
            panic!("no series decoded");
        };
        let exemplars: Vec<ExemplarView<'_, '_>> = ts.exemplars().collect();
        let mut out = Vec::new();
        encode_series_parts_with_exemplars_into(&mut out, ts.labels(), ts.samples(), &exemplars);
        assert_eq!(out, body);
    }
}
