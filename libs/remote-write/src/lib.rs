//! Prometheus remote write 1.0: the hot path of ingestion.
//!
//! * [`decompress`] / [`decompress_into`]: snappy **block** format with the
//!   decoded size checked against a limit before allocating.
//! * [`WriteRequestRef`]: a hand-rolled, zero-copy protobuf decoder. Label
//!   strings borrow from the decompressed buffer (validated as UTF-8), all
//!   labels / samples / exemplars of a request live in flat arenas, and each
//!   series keeps the exact bytes it was encoded as ([`TimeSeriesView::raw`])
//!   so the distributor can forward it without re-encoding.
//! * An encoder ([`encode_write_request`], [`encode_series_raw_into`], ...)
//!   producing the same bytes as prost / Prometheus, plus [`compress`].
//!
//! The decoder never panics on any input: every read is bounds-checked,
//! unknown fields are skipped by wire type (deprecated groups included, up
//! to a fixed nesting depth), and errors say what is wrong in lowercase
//! text suitable for a 400 response body. It accepts exactly what prost's
//! generated code accepts for the same schema (checked by differential
//! property tests), including non-minimal varints, any field order and
//! repeated scalar fields (last one wins).
//!
//! Performance: a series' leading labels are scanned as one run, checked
//! for ASCII once and sliced without per-string validation (the crate's
//! single `unsafe` block, `from_utf8_unchecked` on sub-slices of a run
//! that passed the ASCII check); non-ASCII runs are validated with one
//! `from_utf8` call. See `benches/decode.rs`.
//!
//! ```
//! use strata_remote_write::*;
//!
//! let series = vec![OwnedTimeSeries::new(
//!     [("__name__", "up"), ("job", "node")],
//!     [Sample { timestamp: 1_700_000_000_000, value: 1.0 }],
//! )];
//! let body = compress(&encode_write_request(&series, &[]));
//!
//! let raw = decompress(&body, 10 << 20).unwrap();
//! let req = WriteRequestRef::decode(&raw).unwrap();
//! let ts = req.series().next().unwrap();
//! assert_eq!(ts.metric_name(), Some("up"));
//! assert_eq!(ts.labels()[1], LabelRef { name: "job", value: "node" });
//! assert_eq!(ts.samples()[0].value, 1.0);
//! ```

#![deny(unsafe_code)]
#![warn(missing_docs)]

mod decode;
mod encode;
mod error;
pub mod fuzzing;
mod snappy;
mod wire;

pub use decode::{
    ExemplarIter, ExemplarView, HistogramRef, LabelRef, MetadataRef, MetricType, Sample,
    SeriesIter, SeriesRef, TimeSeriesView, WriteRequestRef,
};
pub use encode::{
    encode_metadata_into, encode_metadata_raw_into, encode_series_into, encode_series_parts_into,
    encode_series_parts_with_exemplars_into, encode_series_raw_into, encode_write_request,
    encode_write_request_into, OwnedExemplar, OwnedHistogram, OwnedMetadata, OwnedTimeSeries,
};
pub use error::DecodeError;
pub use snappy::{compress, declared_len, decompress, decompress_into};
