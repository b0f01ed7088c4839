//! Zero-copy decoding of a remote write 1.0 `WriteRequest`.
//!
//! All strings borrow from the input buffer; labels, samples, exemplars and
//! histograms live in flat arenas (one `Vec` each) and every series holds
//! index ranges into them, so decoding a request costs a handful of
//! amortised `Vec` pushes and no per-label allocation.

use std::fmt;
use std::ops::Range;

use crate::wire::{
    read_fixed64, read_len_delimited, read_varint, skip_unknown, WT_I64, WT_LEN, WT_VARINT,
};
use crate::DecodeError;

// Keys (field number << 3 | wire type) of the fields we decode.
const KEY_F1_LEN: u64 = (1 << 3) | 2; // 0x0a
const KEY_F2_LEN: u64 = (2 << 3) | 2; // 0x12
const KEY_F3_LEN: u64 = (3 << 3) | 2; // 0x1a
const KEY_F4_LEN: u64 = (4 << 3) | 2; // 0x22
const KEY_F5_LEN: u64 = (5 << 3) | 2; // 0x2a
const KEY_F1_VARINT: u64 = 1 << 3; // 0x08
const KEY_F1_I64: u64 = (1 << 3) | 1; // 0x09
const KEY_F2_I64: u64 = (2 << 3) | 1; // 0x11
const KEY_F2_VARINT: u64 = 2 << 3; // 0x10
const KEY_F3_VARINT: u64 = 3 << 3; // 0x18
const KEY_F15_VARINT: u64 = 15 << 3; // 0x78

const CTX_WRITE_REQUEST: &str = "write request";
const CTX_TIMESERIES: &str = "timeseries";
const CTX_TS_LABELS: &str = "timeseries labels";
const CTX_TS_SAMPLES: &str = "timeseries samples";
const CTX_TS_EXEMPLARS: &str = "timeseries exemplars";
const CTX_TS_HISTOGRAMS: &str = "timeseries histograms";
const CTX_LABEL: &str = "label";
const CTX_SAMPLE: &str = "sample";
const CTX_EXEMPLAR: &str = "exemplar";
const CTX_EXEMPLAR_LABELS: &str = "exemplar labels";
const CTX_HISTOGRAM: &str = "histogram";
const CTX_METADATA: &str = "metadata";

/// A label borrowed from the request buffer. Both strings are valid UTF-8.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LabelRef<'a> {
    /// Label name (`__name__` for the metric name).
    pub name: &'a str,
    /// Label value.
    pub value: &'a str,
}

/// One float sample.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Sample {
    /// Milliseconds since the Unix epoch.
    pub timestamp: i64,
    /// Sample value (staleness markers are the NaN `0x7ff0000000000002`).
    pub value: f64,
}

/// Type of a metric family, as sent in `MetricMetadata.type`.
///
/// Proto3 enums are open, so values outside the schema are kept as
/// [`MetricType::Other`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum MetricType {
    /// 0
    #[default]
    Unknown,
    /// 1
    Counter,
    /// 2
    Gauge,
    /// 3
    Histogram,
    /// 4
    GaugeHistogram,
    /// 5
    Summary,
    /// 6
    Info,
    /// 7
    StateSet,
    /// Any other value.
    Other(i32),
}

impl MetricType {
    /// Maps the wire value to a type.
    pub fn from_i32(v: i32) -> Self {
        match v {
            0 => MetricType::Unknown,
            1 => MetricType::Counter,
            2 => MetricType::Gauge,
            3 => MetricType::Histogram,
            4 => MetricType::GaugeHistogram,
            5 => MetricType::Summary,
            6 => MetricType::Info,
            7 => MetricType::StateSet,
            other => MetricType::Other(other),
        }
    }

    /// The wire value.
    pub fn as_i32(self) -> i32 {
        match self {
            MetricType::Unknown => 0,
            MetricType::Counter => 1,
            MetricType::Gauge => 2,
            MetricType::Histogram => 3,
            MetricType::GaugeHistogram => 4,
            MetricType::Summary => 5,
            MetricType::Info => 6,
            MetricType::StateSet => 7,
            MetricType::Other(v) => v,
        }
    }

    /// The name Prometheus' `/api/v1/metadata` uses (`counter`, `gauge`,
    /// `gaugehistogram`, `stateset`, ...); `unknown` for out-of-schema
    /// values.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Unknown | MetricType::Other(_) => "unknown",
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::GaugeHistogram => "gaugehistogram",
            MetricType::Summary => "summary",
            MetricType::Info => "info",
            MetricType::StateSet => "stateset",
        }
    }
}

impl fmt::Display for MetricType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `MetricMetadata` entry borrowed from the request buffer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MetadataRef<'a> {
    /// Metric type.
    pub metric_type: MetricType,
    /// `metric_family_name`.
    pub metric_family_name: &'a str,
    /// Help text.
    pub help: &'a str,
    /// Unit.
    pub unit: &'a str,
    /// The encoded `MetricMetadata` message body, for verbatim forwarding
    /// with [`encode_metadata_raw_into`](crate::encode_metadata_raw_into).
    pub raw: &'a [u8],
}

/// A native histogram: not decoded yet, only its timestamp and bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HistogramRef<'a> {
    /// `Histogram.timestamp` (field 15), milliseconds since the Unix epoch.
    pub timestamp: i64,
    /// The encoded `Histogram` message body.
    pub raw: &'a [u8],
}

/// An exemplar of one series.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ExemplarView<'r, 'a> {
    /// Exemplar labels (typically `trace_id`).
    pub labels: &'r [LabelRef<'a>],
    /// Exemplar value.
    pub value: f64,
    /// Milliseconds since the Unix epoch.
    pub timestamp: i64,
}

/// `u32` index range into an arena. Ranges are only ever built by the
/// decoder, and [`Span::of`] still uses `get` so a bug cannot panic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Span {
    start: u32,
    end: u32,
}

impl Span {
    #[inline(always)]
    fn new(start: usize, end: usize) -> Self {
        // `decode_into` rejects buffers over u32::MAX bytes, and every
        // arena entry consumes at least two input bytes, so these fit.
        Span {
            start: start as u32,
            end: end as u32,
        }
    }

    #[inline(always)]
    fn of<T>(self, arena: &[T]) -> &[T] {
        arena
            .get(self.start as usize..self.end as usize)
            .unwrap_or_default()
    }

    fn range(self) -> Range<usize> {
        self.start as usize..self.end as usize
    }

    fn len(self) -> usize {
        self.end.saturating_sub(self.start) as usize
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct ExemplarEntry {
    labels: Span,
    value: f64,
    timestamp: i64,
}

/// One decoded `TimeSeries`: index ranges into the arenas of its
/// [`WriteRequestRef`] plus the exact encoded bytes of the message body.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SeriesRef<'a> {
    labels: Span,
    samples: Span,
    exemplars: Span,
    histograms: Span,
    raw: &'a [u8],
}

impl<'a> SeriesRef<'a> {
    /// Range of this series' labels in [`WriteRequestRef::all_labels`].
    pub fn labels_range(&self) -> Range<usize> {
        self.labels.range()
    }
    /// Range of this series' samples in [`WriteRequestRef::all_samples`].
    pub fn samples_range(&self) -> Range<usize> {
        self.samples.range()
    }
    /// The encoded `TimeSeries` message body (without field key and
    /// length), exactly as received.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }
}

/// A decoded remote write request borrowing from its buffer.
///
/// Reuse one value across requests to avoid allocating the arenas every
/// time: [`decode_into`](Self::decode_into) for a buffer with the same
/// lifetime, or [`recycle`](Self::recycle) to move the (cleared) arenas to
/// a new buffer lifetime:
///
/// ```
/// use strata_remote_write::WriteRequestRef;
/// let mut pool: WriteRequestRef<'static> = WriteRequestRef::new();
/// for body in [vec![], vec![0x0a, 0x00]] {
///     let mut req = std::mem::take(&mut pool).recycle();
///     req.decode_into(&body).unwrap();
///     // ... use req ...
///     pool = req.recycle();
/// }
/// ```
#[derive(Clone, Debug, Default)]
pub struct WriteRequestRef<'a> {
    series: Vec<SeriesRef<'a>>,
    labels: Vec<LabelRef<'a>>,
    samples: Vec<Sample>,
    exemplars: Vec<ExemplarEntry>,
    exemplar_labels: Vec<LabelRef<'a>>,
    histograms: Vec<HistogramRef<'a>>,
    metadata: Vec<MetadataRef<'a>>,
}

/// Clears `v` and reuses its allocation for a vector of a type with the
/// same layout (the standard library collects `IntoIter` + `filter_map`
/// in place).
fn recycle_vec<T, U>(mut v: Vec<T>) -> Vec<U> {
    v.clear();
    v.into_iter().filter_map(|_| None).collect()
}

impl<'a> WriteRequestRef<'a> {
    /// An empty request with no allocated arenas.
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes an uncompressed protobuf `WriteRequest`.
    pub fn decode(buf: &'a [u8]) -> Result<Self, DecodeError> {
        let mut req = Self::new();
        req.decode_into(buf)?;
        Ok(req)
    }

    /// Decodes `buf`, replacing the current contents but keeping the arena
    /// allocations. On error the request is left empty.
    pub fn decode_into(&mut self, buf: &'a [u8]) -> Result<(), DecodeError> {
        self.clear();
        let result = self.decode_request(buf);
        if result.is_err() {
            self.clear();
        }
        result
    }

    /// Empties the request, keeping allocations.
    pub fn clear(&mut self) {
        self.series.clear();
        self.labels.clear();
        self.samples.clear();
        self.exemplars.clear();
        self.exemplar_labels.clear();
        self.histograms.clear();
        self.metadata.clear();
    }

    /// Clears the request and hands its allocations to a request that can
    /// borrow from a buffer of any other lifetime.
    pub fn recycle<'b>(self) -> WriteRequestRef<'b> {
        let WriteRequestRef {
            series,
            labels,
            mut samples,
            mut exemplars,
            exemplar_labels,
            histograms,
            metadata,
        } = self;
        samples.clear();
        exemplars.clear();
        WriteRequestRef {
            series: recycle_vec(series),
            labels: recycle_vec(labels),
            samples,
            exemplars,
            exemplar_labels: recycle_vec(exemplar_labels),
            histograms: recycle_vec(histograms),
            metadata: recycle_vec(metadata),
        }
    }

    /// Number of time series.
    #[inline]
    pub fn series_count(&self) -> usize {
        self.series.len()
    }

    /// True if the request has no series and no metadata.
    pub fn is_empty(&self) -> bool {
        self.series.is_empty() && self.metadata.is_empty()
    }

    /// Total float samples over all series.
    #[inline]
    pub fn sample_count(&self) -> usize {
        self.samples.len()
    }

    /// Total exemplars over all series.
    #[inline]
    pub fn exemplar_count(&self) -> usize {
        self.exemplars.len()
    }

    /// Total native histogram samples over all series.
    #[inline]
    pub fn histogram_count(&self) -> usize {
        self.histograms.len()
    }

    /// Total labels over all series (not counting exemplar labels).
    #[inline]
    pub fn label_count(&self) -> usize {
        self.labels.len()
    }

    /// The series, in request order.
    pub fn series(&self) -> SeriesIter<'_, 'a> {
        SeriesIter {
            req: self,
            inner: self.series.iter(),
        }
    }

    /// The `index`-th series.
    pub fn get(&self, index: usize) -> Option<TimeSeriesView<'_, 'a>> {
        self.series.get(index).map(|s| TimeSeriesView {
            req: self,
            series: s,
        })
    }

    /// The raw series entries (ranges into the arenas).
    pub fn series_refs(&self) -> &[SeriesRef<'a>] {
        &self.series
    }

    /// Label arena: the labels of all series, concatenated in order.
    pub fn all_labels(&self) -> &[LabelRef<'a>] {
        &self.labels
    }

    /// Sample arena: the samples of all series, concatenated in order.
    pub fn all_samples(&self) -> &[Sample] {
        &self.samples
    }

    /// Metric metadata entries.
    pub fn metadata(&self) -> &[MetadataRef<'a>] {
        &self.metadata
    }

    // ---------------------------------------------------------------
    // decoding
    // ---------------------------------------------------------------

    fn decode_request(&mut self, buf: &'a [u8]) -> Result<(), DecodeError> {
        if buf.len() > u32::MAX as usize {
            return Err(DecodeError::TooManyItems { what: "bytes" });
        }
        let mut rest = buf;
        let mut first = true;
        while !rest.is_empty() {
            let key = read_varint(&mut rest, CTX_WRITE_REQUEST)?;
            if key == KEY_F1_LEN {
                let body = read_len_delimited(&mut rest, CTX_TIMESERIES)?;
                self.decode_series(body)?;
                if first {
                    first = false;
                    self.reserve_from_first(buf.len(), body.len());
                }
            } else if key == KEY_F3_LEN {
                let body = read_len_delimited(&mut rest, CTX_METADATA)?;
                self.decode_metadata(body)?;
            } else {
                skip_unknown(
                    key,
                    &mut rest,
                    CTX_WRITE_REQUEST,
                    &[
                        (1, WT_LEN, "WriteRequest.timeseries"),
                        (3, WT_LEN, "WriteRequest.metadata"),
                    ],
                )?;
            }
        }
        Ok(())
    }

    /// After the first series, extrapolate arena sizes from it so a fresh
    /// decoder does not regrow (and copy) each arena a dozen times. The
    /// estimate is capped by what the input size can possibly hold.
    #[cold]
    fn reserve_from_first(&mut self, total_len: usize, first_len: usize) {
        let series = total_len / (first_len + 2).max(8);
        let cap = |per_series: usize, min_bytes: usize| {
            series
                .saturating_mul(per_series)
                .min(total_len / min_bytes)
                .saturating_sub(per_series)
        };
        let labels = self.labels.len();
        let samples = self.samples.len();
        self.series.reserve(cap(1, 8));
        self.labels.reserve(cap(labels, 10));
        self.samples.reserve(cap(samples, 10));
    }

    #[inline]
    fn decode_series(&mut self, body: &'a [u8]) -> Result<(), DecodeError> {
        let labels_start = self.labels.len();
        let samples_start = self.samples.len();
        let exemplars_start = self.exemplars.len();
        let histograms_start = self.histograms.len();
        let mut rest = self.decode_label_run(body);
        while !rest.is_empty() {
            let key = read_varint(&mut rest, CTX_TIMESERIES)?;
            if key == KEY_F1_LEN {
                let msg = read_len_delimited(&mut rest, CTX_TS_LABELS)?;
                let label = decode_label(msg, "label name", "label value")?;
                self.labels.push(label);
            } else if key == KEY_F2_LEN {
                let msg = read_len_delimited(&mut rest, CTX_TS_SAMPLES)?;
                let sample = decode_sample(msg)?;
                self.samples.push(sample);
            } else if key == KEY_F3_LEN {
                let msg = read_len_delimited(&mut rest, CTX_TS_EXEMPLARS)?;
                self.decode_exemplar(msg)?;
            } else if key == KEY_F4_LEN {
                let msg = read_len_delimited(&mut rest, CTX_TS_HISTOGRAMS)?;
                self.histograms.push(decode_histogram(msg)?);
            } else {
                skip_unknown(
                    key,
                    &mut rest,
                    CTX_TIMESERIES,
                    &[
                        (1, WT_LEN, "TimeSeries.labels"),
                        (2, WT_LEN, "TimeSeries.samples"),
                        (3, WT_LEN, "TimeSeries.exemplars"),
                        (4, WT_LEN, "TimeSeries.histograms"),
                    ],
                )?;
            }
        }
        self.series.push(SeriesRef {
            labels: Span::new(labels_start, self.labels.len()),
            samples: Span::new(samples_start, self.samples.len()),
            exemplars: Span::new(exemplars_start, self.exemplars.len()),
            histograms: Span::new(histograms_start, self.histograms.len()),
            raw: body,
        });
        Ok(())
    }

    /// Fast path for the leading labels of a series.
    ///
    /// Senders write a series as a run of short labels followed by the
    /// samples. We scan the leading labels shaped exactly
    /// `0a L 0a n <name> 12 m <value>` (one-byte lengths, `L == n + m + 4`),
    /// check the whole run once, and slice names and values out of it:
    ///
    /// * if the run is ASCII (the common case) every sub-slice is valid
    ///   UTF-8, so the strings are made without further checks;
    /// * otherwise the run is validated with one `from_utf8` call and the
    ///   strings are sliced from the validated `&str` with `str::get`,
    ///   which checks char boundaries (they always hold: every byte next
    ///   to a string is an ASCII length or key byte).
    ///
    /// Stops at the first field of any other shape (an empty value, a
    /// string of 128 bytes or more, a sample, ...) and returns the rest of
    /// `body` for the general loop, which also takes over the whole run if
    /// it is not valid UTF-8 and then names the offending field.
    #[inline(always)]
    fn decode_label_run(&mut self, body: &'a [u8]) -> &'a [u8] {
        /// Labels scanned per batch; longer runs take several batches.
        const BATCH: usize = 32;
        let mut rest = body;
        loop {
            // (offset of the label key, name length, label length)
            let mut spans = [(0u16, 0u8, 0u8); BATCH];
            let mut count = 0usize;
            let mut pos = 0usize;
            while count < BATCH {
                let Some(&[0x0a, l, 0x0a, n]) = rest.get(pos..).and_then(|b| b.first_chunk::<4>())
                else {
                    break;
                };
                let (l, n) = (usize::from(l), usize::from(n));
                let end = pos + 2 + l;
                match rest.get(pos + 4 + n..).and_then(|b| b.first_chunk::<2>()) {
                    // `l < 0x80` bounds `n` and `m` too.
                    Some(&[0x12, m])
                        if l < 0x80 && n + usize::from(m) + 4 == l && end <= rest.len() => {}
                    _ => break,
                }
                // pos < BATCH * 130 fits in u16; n, l < 0x80.
                spans[count] = (pos as u16, n as u8, l as u8);
                count += 1;
                pos = end;
            }
            let spans = spans.get(..count).unwrap_or_default();
            let (Some(run), false) = (rest.get(..pos), spans.is_empty()) else {
                return rest;
            };
            if is_ascii(run) {
                // Infallible: the scan checked every offset against `run`.
                self.labels.extend(spans.iter().map(|&(p, n, l)| {
                    let (p, n, l) = (usize::from(p), usize::from(n), usize::from(l));
                    LabelRef {
                        name: ascii_str(run.get(p + 4..p + 4 + n).unwrap_or_default()),
                        value: ascii_str(run.get(p + 6 + n..p + 2 + l).unwrap_or_default()),
                    }
                }));
            } else {
                let Ok(run) = std::str::from_utf8(run) else {
                    return rest;
                };
                let first = self.labels.len();
                for &(p, n, l) in spans {
                    let (p, n, l) = (usize::from(p), usize::from(n), usize::from(l));
                    match (run.get(p + 4..p + 4 + n), run.get(p + 6 + n..p + 2 + l)) {
                        (Some(name), Some(value)) => self.labels.push(LabelRef { name, value }),
                        _ => {
                            // Unreachable (see above); fall back safely.
                            self.labels.truncate(first);
                            return rest;
                        }
                    }
                }
            }
            rest = rest.get(pos..).unwrap_or_default();
            if count < BATCH {
                return rest;
            }
        }
    }

    fn decode_exemplar(&mut self, msg: &'a [u8]) -> Result<(), DecodeError> {
        let labels_start = self.exemplar_labels.len();
        let mut value = 0.0;
        let mut timestamp = 0;
        let mut rest = msg;
        while !rest.is_empty() {
            let key = read_varint(&mut rest, CTX_EXEMPLAR)?;
            if key == KEY_F1_LEN {
                let m = read_len_delimited(&mut rest, CTX_EXEMPLAR_LABELS)?;
                let label = decode_label(m, "exemplar label name", "exemplar label value")?;
                self.exemplar_labels.push(label);
            } else if key == KEY_F2_I64 {
                value = f64::from_bits(read_fixed64(&mut rest, CTX_EXEMPLAR)?);
            } else if key == KEY_F3_VARINT {
                timestamp = read_varint(&mut rest, CTX_EXEMPLAR)? as i64;
            } else {
                skip_unknown(
                    key,
                    &mut rest,
                    CTX_EXEMPLAR,
                    &[
                        (1, WT_LEN, "Exemplar.labels"),
                        (2, WT_I64, "Exemplar.value"),
                        (3, WT_VARINT, "Exemplar.timestamp"),
                    ],
                )?;
            }
        }
        self.exemplars.push(ExemplarEntry {
            labels: Span::new(labels_start, self.exemplar_labels.len()),
            value,
            timestamp,
        });
        Ok(())
    }

    fn decode_metadata(&mut self, msg: &'a [u8]) -> Result<(), DecodeError> {
        let mut md = MetadataRef {
            raw: msg,
            ..MetadataRef::default()
        };
        let mut rest = msg;
        while !rest.is_empty() {
            let key = read_varint(&mut rest, CTX_METADATA)?;
            if key == KEY_F1_VARINT {
                // int32 enum: truncate like every protobuf implementation.
                md.metric_type = MetricType::from_i32(read_varint(&mut rest, CTX_METADATA)? as i32);
            } else if key == KEY_F2_LEN {
                let s = read_len_delimited(&mut rest, CTX_METADATA)?;
                md.metric_family_name = utf8(s, "metadata metric_family_name")?;
            } else if key == KEY_F4_LEN {
                let s = read_len_delimited(&mut rest, CTX_METADATA)?;
                md.help = utf8(s, "metadata help")?;
            } else if key == KEY_F5_LEN {
                let s = read_len_delimited(&mut rest, CTX_METADATA)?;
                md.unit = utf8(s, "metadata unit")?;
            } else {
                skip_unknown(
                    key,
                    &mut rest,
                    CTX_METADATA,
                    &[
                        (1, WT_VARINT, "MetricMetadata.type"),
                        (2, WT_LEN, "MetricMetadata.metric_family_name"),
                        (4, WT_LEN, "MetricMetadata.help"),
                        (5, WT_LEN, "MetricMetadata.unit"),
                    ],
                )?;
            }
        }
        self.metadata.push(md);
        Ok(())
    }
}

/// Word-at-a-time ASCII check (std's `is_ascii` is slower on the short,
/// unaligned runs we feed it). Conservative by construction: anything it
/// cannot read counts as non-ASCII.
#[inline(always)]
fn is_ascii(bytes: &[u8]) -> bool {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let word = |c: &[u8]| c.try_into().map_or(HIGH, u64::from_le_bytes);
    let mut chunks = bytes.chunks_exact(16);
    let mut acc = 0u64;
    for c in &mut chunks {
        let (a, b) = c.split_at(8);
        acc |= word(a) | word(b);
    }
    for &x in chunks.remainder() {
        acc |= u64::from(x);
    }
    acc & HIGH == 0
}

/// `&str` from bytes that are a sub-slice of a slice that passed
/// [`is_ascii`].
#[inline(always)]
#[allow(unsafe_code)]
fn ascii_str(bytes: &[u8]) -> &str {
    debug_assert!(bytes.is_ascii());
    // SAFETY: callers only pass sub-slices of a slice checked with
    // `<[u8]>::is_ascii`, and ASCII is valid UTF-8.
    unsafe { std::str::from_utf8_unchecked(bytes) }
}

#[inline(always)]
fn utf8<'a>(bytes: &'a [u8], field: &'static str) -> Result<&'a str, DecodeError> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Ok(s),
        Err(_) => Err(invalid_utf8(field)),
    }
}

#[cold]
#[inline(never)]
fn invalid_utf8(field: &'static str) -> DecodeError {
    DecodeError::InvalidUtf8 { field }
}

/// Decodes a `Label` message body.
#[inline(always)]
fn decode_label<'a>(
    msg: &'a [u8],
    name_field: &'static str,
    value_field: &'static str,
) -> Result<LabelRef<'a>, DecodeError> {
    // Fast path: exactly `0a <n> name 12 <m> value` with one-byte lengths,
    // which is how every sender encodes non-empty short labels.
    if let [0x0a, n, rest @ ..] = msg {
        let n = usize::from(*n);
        if n < 0x80 {
            if let Some((name, [0x12, m, value @ ..])) = rest.split_at_checked(n) {
                if *m < 0x80 && usize::from(*m) == value.len() {
                    return Ok(LabelRef {
                        name: utf8(name, name_field)?,
                        value: utf8(value, value_field)?,
                    });
                }
            }
        }
    }
    decode_label_slow(msg, name_field, value_field)
}

#[inline(never)]
fn decode_label_slow<'a>(
    msg: &'a [u8],
    name_field: &'static str,
    value_field: &'static str,
) -> Result<LabelRef<'a>, DecodeError> {
    let mut label = LabelRef::default();
    let mut rest = msg;
    while !rest.is_empty() {
        let key = read_varint(&mut rest, CTX_LABEL)?;
        if key == KEY_F1_LEN {
            label.name = utf8(read_len_delimited(&mut rest, CTX_LABEL)?, name_field)?;
        } else if key == KEY_F2_LEN {
            label.value = utf8(read_len_delimited(&mut rest, CTX_LABEL)?, value_field)?;
        } else {
            skip_unknown(
                key,
                &mut rest,
                CTX_LABEL,
                &[(1, WT_LEN, "Label.name"), (2, WT_LEN, "Label.value")],
            )?;
        }
    }
    Ok(label)
}

/// Decodes a `Sample` message body.
#[inline(always)]
fn decode_sample(msg: &[u8]) -> Result<Sample, DecodeError> {
    // Fast path: `09 <8 bytes value> 10 <timestamp varint of 1..=8 bytes>`
    // exactly (every timestamp from 1970 to year 10889 fits 7 bytes).
    if let (Some(&[0x09, v0, v1, v2, v3, v4, v5, v6, v7, 0x10]), Some(tail)) = (
        msg.first_chunk::<10>(),
        msg.len()
            .checked_sub(8)
            .and_then(|i| msg.get(i..))
            .and_then(|t| t.first_chunk::<8>()),
    ) {
        let ts_len = msg.len() - 10;
        if (1..=8).contains(&ts_len) {
            // The varint is the last `ts_len` bytes of `tail`.
            let w = u64::from_le_bytes(*tail) >> (8 * (8 - ts_len));
            if let Some(timestamp) = varint_from_word(w, ts_len) {
                return Ok(Sample {
                    timestamp: timestamp as i64,
                    value: f64::from_le_bytes([v0, v1, v2, v3, v4, v5, v6, v7]),
                });
            }
        }
    }
    let mut sample = Sample::default();
    let mut rest = msg;
    while !rest.is_empty() {
        let key = read_varint(&mut rest, CTX_SAMPLE)?;
        if key == KEY_F1_I64 {
            sample.value = f64::from_bits(read_fixed64(&mut rest, CTX_SAMPLE)?);
        } else if key == KEY_F2_VARINT {
            sample.timestamp = read_varint(&mut rest, CTX_SAMPLE)? as i64;
        } else {
            skip_unknown(
                key,
                &mut rest,
                CTX_SAMPLE,
                &[
                    (1, WT_I64, "Sample.value"),
                    (2, WT_VARINT, "Sample.timestamp"),
                ],
            )?;
        }
    }
    Ok(sample)
}

/// Decodes a varint of exactly `len` (1..=8) bytes held in the low bytes
/// of `w` (higher bytes zero): every byte but the last must have its
/// continuation bit set. Branch-free apart from the final check.
#[inline(always)]
fn varint_from_word(w: u64, len: usize) -> Option<u64> {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // continuation bits expected in bytes 0..len-1
    let expected = HIGH.checked_shr(8 * (9 - len as u32)).unwrap_or(0);
    if w & HIGH != expected {
        return None;
    }
    let v = (w & 0x7f)
        | ((w >> 1) & (0x7f << 7))
        | ((w >> 2) & (0x7f << 14))
        | ((w >> 3) & (0x7f << 21))
        | ((w >> 4) & (0x7f << 28))
        | ((w >> 5) & (0x7f << 35))
        | ((w >> 6) & (0x7f << 42))
        | ((w >> 7) & (0x7f << 49));
    Some(v)
}

/// Decodes a native `Histogram` only as far as its timestamp; every other
/// field is skipped by wire type.
fn decode_histogram(msg: &[u8]) -> Result<HistogramRef<'_>, DecodeError> {
    let mut timestamp = 0;
    let mut rest = msg;
    while !rest.is_empty() {
        let key = read_varint(&mut rest, CTX_HISTOGRAM)?;
        if key == KEY_F15_VARINT {
            timestamp = read_varint(&mut rest, CTX_HISTOGRAM)? as i64;
        } else {
            skip_unknown(
                key,
                &mut rest,
                CTX_HISTOGRAM,
                &[(15, WT_VARINT, "Histogram.timestamp")],
            )?;
        }
    }
    Ok(HistogramRef {
        timestamp,
        raw: msg,
    })
}

/// A borrowed view of one series of a [`WriteRequestRef`].
#[derive(Clone, Copy)]
pub struct TimeSeriesView<'r, 'a> {
    req: &'r WriteRequestRef<'a>,
    series: &'r SeriesRef<'a>,
}

impl<'r, 'a> TimeSeriesView<'r, 'a> {
    /// Labels in the order the sender wrote them (not necessarily sorted).
    #[inline]
    pub fn labels(&self) -> &'r [LabelRef<'a>] {
        self.series.labels.of(&self.req.labels)
    }

    /// Float samples.
    #[inline]
    pub fn samples(&self) -> &'r [Sample] {
        self.series.samples.of(&self.req.samples)
    }

    /// Exemplars.
    pub fn exemplars(&self) -> ExemplarIter<'r, 'a> {
        ExemplarIter {
            labels: &self.req.exemplar_labels,
            inner: self.series.exemplars.of(&self.req.exemplars).iter(),
        }
    }

    /// Number of exemplars.
    pub fn exemplar_count(&self) -> usize {
        self.series.exemplars.len()
    }

    /// Native histogram samples (only timestamp and raw bytes decoded).
    pub fn histograms(&self) -> &'r [HistogramRef<'a>] {
        self.series.histograms.of(&self.req.histograms)
    }

    /// Number of native histogram samples.
    pub fn histogram_count(&self) -> usize {
        self.series.histograms.len()
    }

    /// The encoded `TimeSeries` message body, exactly as received.
    #[inline]
    pub fn raw(&self) -> &'a [u8] {
        self.series.raw
    }

    /// Value of the `__name__` label, if any.
    pub fn metric_name(&self) -> Option<&'a str> {
        self.labels()
            .iter()
            .find(|l| l.name == "__name__")
            .map(|l| l.value)
    }
}

impl fmt::Debug for TimeSeriesView<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimeSeriesView")
            .field("labels", &self.labels())
            .field("samples", &self.samples())
            .field("exemplars", &self.exemplars().collect::<Vec<_>>())
            .field("histograms", &self.histograms())
            .finish()
    }
}

/// Iterator over the series of a [`WriteRequestRef`].
#[derive(Clone)]
pub struct SeriesIter<'r, 'a> {
    req: &'r WriteRequestRef<'a>,
    inner: std::slice::Iter<'r, SeriesRef<'a>>,
}

impl<'r, 'a> Iterator for SeriesIter<'r, 'a> {
    type Item = TimeSeriesView<'r, 'a>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let req = self.req;
        self.inner
            .next()
            .map(|series| TimeSeriesView { req, series })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl DoubleEndedIterator for SeriesIter<'_, '_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        let req = self.req;
        self.inner
            .next_back()
            .map(|series| TimeSeriesView { req, series })
    }
}

impl ExactSizeIterator for SeriesIter<'_, '_> {}

/// Iterator over the exemplars of one series.
#[derive(Clone)]
pub struct ExemplarIter<'r, 'a> {
    labels: &'r [LabelRef<'a>],
    inner: std::slice::Iter<'r, ExemplarEntry>,
}

impl<'r, 'a> Iterator for ExemplarIter<'r, 'a> {
    type Item = ExemplarView<'r, 'a>;

    fn next(&mut self) -> Option<Self::Item> {
        let labels = self.labels;
        self.inner.next().map(|e| ExemplarView {
            labels: e.labels.of(labels),
            value: e.value,
            timestamp: e.timestamp,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl ExactSizeIterator for ExemplarIter<'_, '_> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_from_word_matches_reader() {
        let mut vals = vec![0u64, 1, 127, 128, 300, 1_732_000_000_000, (1 << 56) - 1];
        for shift in 0..56 {
            vals.push(1 << shift);
            vals.push((1 << shift) + 1);
        }
        for v in vals {
            let mut enc = Vec::new();
            crate::wire::put_varint(&mut enc, v);
            assert!(enc.len() <= 8);
            let mut word = [0u8; 8];
            word[..enc.len()].copy_from_slice(&enc);
            assert_eq!(
                varint_from_word(u64::from_le_bytes(word), enc.len()),
                Some(v)
            );
            // wrong length claims are rejected
            if enc.len() > 1 {
                assert_eq!(
                    varint_from_word(u64::from_le_bytes(word), enc.len() - 1),
                    None
                );
            }
            if enc.len() < 8 {
                assert_eq!(
                    varint_from_word(u64::from_le_bytes(word), enc.len() + 1),
                    None
                );
            }
        }
        // non-minimal encodings are fine: 0x80 0x00 == 0
        assert_eq!(varint_from_word(0x0080, 2), Some(0));
    }

    #[test]
    fn is_ascii_matches_std() {
        for len in 0..80 {
            let base: Vec<u8> = (0..len).map(|i| (i * 7 % 128) as u8).collect();
            assert!(is_ascii(&base), "len {len}");
            for pos in 0..len {
                for high in [0x80u8, 0xc3, 0xff] {
                    let mut v = base.clone();
                    v[pos] = high;
                    assert!(!is_ascii(&v), "len {len} pos {pos}");
                    // and at every offset of a larger buffer
                    assert!(!is_ascii(&v[pos..]), "len {len} pos {pos}");
                }
            }
        }
    }

    #[test]
    fn recycle_keeps_capacity() {
        let buf = crate::encode_write_request(
            &[crate::OwnedTimeSeries::new(
                [("a", "b"), ("c", "d")],
                [Sample::default(); 3],
            )],
            &[],
        );
        let mut req = WriteRequestRef::decode(&buf).unwrap();
        req.labels.reserve(100);
        req.samples.reserve(100);
        req.series.reserve(100);
        let caps = (
            req.labels.capacity(),
            req.samples.capacity(),
            req.series.capacity(),
        );
        let recycled: WriteRequestRef<'static> = req.recycle();
        assert!(recycled.labels.is_empty() && recycled.series.is_empty());
        assert_eq!(
            (
                recycled.labels.capacity(),
                recycled.samples.capacity(),
                recycled.series.capacity()
            ),
            caps
        );
    }

    fn labels(body: &[u8]) -> (Vec<(String, String)>, usize) {
        let mut req = WriteRequestRef::new();
        let rest = req.decode_label_run(body);
        let l = req
            .labels
            .iter()
            .map(|l| (l.name.to_owned(), l.value.to_owned()))
            .collect();
        (l, rest.len())
    }

    #[test]
    fn label_run_stops_at_other_shapes() {
        let good = [0x0a, 0x06, 0x0a, 0x01, b'a', 0x12, 0x01, b'b'];
        // empty value (field omitted) stops the fast path after `good`
        let empty_value = [0x0a, 0x03, 0x0a, 0x01, b'c'];
        let body = [&good[..], &empty_value[..], &good[..]].concat();
        assert_eq!(labels(&body), (vec![("a".into(), "b".into())], 13));
        // value before name
        let swapped = [0x0a, 0x06, 0x12, 0x01, b'b', 0x0a, 0x01, b'a'];
        assert_eq!(labels(&swapped), (vec![], 8));
        // invalid utf-8 anywhere in the run: nothing decoded by the fast path
        let bad = [0x0a, 0x06, 0x0a, 0x01, 0xff, 0x12, 0x01, b'b'];
        let body = [&good[..], &bad[..]].concat();
        assert_eq!(labels(&body), (vec![], 16));
        // multi-byte characters are fine
        let utf = [0x0a, 0x07, 0x0a, 0x01, b'a', 0x12, 0x02, 0xc3, 0xbc];
        assert_eq!(labels(&utf), (vec![("a".into(), "ü".into())], 0));
        // more labels than one batch, then a sample
        let mut body = Vec::new();
        let mut want = Vec::new();
        for i in 0..75u8 {
            let v = [b'a' + i % 26];
            body.extend_from_slice(&[0x0a, 0x06, 0x0a, 0x01, b'n', 0x12, 0x01, v[0]]);
            want.push(("n".to_string(), String::from_utf8(v.to_vec()).unwrap()));
        }
        body.extend_from_slice(&[0x12, 0x00]);
        assert_eq!(labels(&body), (want, 2));
    }
}
