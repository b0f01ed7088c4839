//! The per-input check of the `remote_write` fuzz target (`fuzz/`), shared
//! with the corpus replay test (`tests/fuzz_corpus.rs`) so `cargo test`
//! runs exactly what the fuzzer ran, without cargo-fuzz. Not an API: see
//! `docs/fuzzing.md`.

#![doc(hidden)]

use crate::{
    decompress, encode_metadata_raw_into, encode_series_parts_with_exemplars_into,
    encode_series_raw_into, DecodeError, ExemplarView, Sample, WriteRequestRef,
};

/// The decompression limit the fuzz target uses (the distributor's
/// default order of magnitude).
pub const MAX_DECODED_LEN: usize = 64 << 20;

/// Runs one fuzz input through the remote write decoding path. Panics
/// (the fuzzer's crash signal) on a decoder panic or a broken invariant:
///
/// * `data` as a snappy block: [`decompress`] must agree with the `snap`
///   crate (same bytes when both accept; the only extra refusals are the
///   size limits), and what it decodes to goes through the protobuf
///   checks below;
/// * `data` as an uncompressed protobuf `WriteRequest`:
///   [`WriteRequestRef::decode`], then every view it exposes is walked,
///   the counts must add up, and re-encoding the request (verbatim from
///   the raw bytes, and field by field) must decode to the same content.
pub fn check_remote_write(data: &[u8]) {
    if let Some(raw) = check_snappy(data) {
        check_decode(&raw);
    }
    check_decode(data);
}

/// Decompresses `data` and compares with the reference implementation.
/// Returns the decoded bytes when the body is valid.
fn check_snappy(data: &[u8]) -> Option<Vec<u8>> {
    let ours = decompress(data, MAX_DECODED_LEN);
    let reference = snap::raw::Decoder::new().decompress_vec(data);
    match (&ours, &reference) {
        (Ok(a), Ok(b)) => assert!(a == b, "decompress differs from snap on a valid block"),
        (Ok(a), Err(e)) => panic!(
            "decompress accepted a block snap rejects ({e}), decoding to {} bytes",
            a.len()
        ),
        (Err(DecodeError::TooLarge { .. }), Ok(_)) => {}
        (Err(e), Ok(b)) => panic!(
            "decompress rejected a valid block of {} bytes: {e}",
            b.len()
        ),
        (Err(_), Err(_)) => {}
    }
    ours.ok()
}

fn check_decode(buf: &[u8]) {
    let Ok(req) = WriteRequestRef::decode(buf) else {
        return;
    };
    walk(&req, buf);

    // Verbatim forwarding (what the distributor does): the raw bytes of
    // every series and metadata entry, re-framed, decode to the same.
    let mut again = Vec::with_capacity(buf.len());
    for s in req.series() {
        encode_series_raw_into(&mut again, s.raw());
    }
    for m in req.metadata() {
        encode_metadata_raw_into(&mut again, m.raw);
    }
    let req2 = WriteRequestRef::decode(&again)
        .unwrap_or_else(|e| panic!("re-framed raw series do not decode: {e}"));
    assert_same(&req, &req2);

    // Field-by-field re-encoding (a distributor rewriting labels) of the
    // series without native histograms (the encoder cannot write theirs).
    let mut parts = Vec::new();
    let mut kept = Vec::new();
    for s in req.series() {
        if s.histogram_count() == 0 {
            let exemplars: Vec<ExemplarView<'_, '_>> = s.exemplars().collect();
            encode_series_parts_with_exemplars_into(
                &mut parts,
                s.labels(),
                s.samples(),
                &exemplars,
            );
            kept.push(s);
        }
    }
    let req3 = WriteRequestRef::decode(&parts)
        .unwrap_or_else(|e| panic!("re-encoded series do not decode: {e}"));
    assert_eq!(req3.series_count(), kept.len(), "re-encoded series count");
    for (a, b) in kept.iter().zip(req3.series()) {
        assert_eq!(a.labels(), b.labels(), "re-encoded labels");
        assert_samples_eq(a.samples(), b.samples());
        assert_exemplars_eq(a.exemplars().collect(), b.exemplars().collect());
    }
}

/// Touches everything a decoded request exposes and checks the counts
/// and ranges agree with each other and with the buffer.
fn walk(req: &WriteRequestRef<'_>, buf: &[u8]) {
    let buf_range = buf.as_ptr_range();
    let inside = |s: &[u8]| {
        s.is_empty() || (buf_range.start <= s.as_ptr() && s.as_ptr_range().end <= buf_range.end)
    };
    let (mut labels, mut samples, mut exemplars, mut histograms) = (0, 0, 0, 0);
    let mut checksum = 0u64;
    assert_eq!(req.series().len(), req.series_count());
    assert_eq!(req.series_refs().len(), req.series_count());
    assert_eq!(
        req.is_empty(),
        req.series_count() == 0 && req.metadata().is_empty()
    );
    for (i, s) in req.series().enumerate() {
        let r = &req.series_refs()[i];
        assert_eq!(
            req.all_labels().get(r.labels_range()),
            Some(s.labels()),
            "labels_range"
        );
        assert_eq!(
            req.all_samples().get(r.samples_range()).map(<[_]>::len),
            Some(s.samples().len()),
            "samples_range"
        );
        assert!(inside(s.raw()), "series raw bytes outside the buffer");
        assert_eq!(r.raw(), s.raw());
        for l in s.labels() {
            checksum = checksum.wrapping_add((l.name.len() + l.value.len()) as u64);
        }
        labels += s.labels().len();
        for x in s.samples() {
            checksum = checksum
                .wrapping_add(x.timestamp as u64)
                .wrapping_add(x.value.to_bits());
        }
        samples += s.samples().len();
        let ex: Vec<_> = s.exemplars().collect();
        assert_eq!(ex.len(), s.exemplar_count(), "exemplar_count");
        assert_eq!(s.exemplars().len(), s.exemplar_count());
        for e in &ex {
            checksum = checksum
                .wrapping_add(e.labels.len() as u64)
                .wrapping_add(e.timestamp as u64);
        }
        exemplars += ex.len();
        assert_eq!(s.histograms().len(), s.histogram_count(), "histogram_count");
        for h in s.histograms() {
            assert!(inside(h.raw), "histogram raw bytes outside the buffer");
            checksum = checksum.wrapping_add(h.timestamp as u64);
        }
        histograms += s.histograms().len();
        let _ = s.metric_name();
        let _ = format!("{s:?}");
        let back = req.get(i).expect("get(i) of an existing series");
        assert_eq!(back.raw(), s.raw());
    }
    assert!(req.get(req.series_count()).is_none());
    assert_eq!(req.series().rev().count(), req.series_count());
    assert_eq!(labels, req.label_count(), "label_count");
    assert_eq!(labels, req.all_labels().len());
    assert_eq!(samples, req.sample_count(), "sample_count");
    assert_eq!(samples, req.all_samples().len());
    assert_eq!(exemplars, req.exemplar_count(), "exemplar_count");
    assert_eq!(histograms, req.histogram_count(), "histogram_count");
    for m in req.metadata() {
        assert!(inside(m.raw), "metadata raw bytes outside the buffer");
        let _ = (m.metric_type.as_str(), m.metric_type.to_string());
        assert_eq!(
            crate::MetricType::from_i32(m.metric_type.as_i32()),
            m.metric_type
        );
        checksum = checksum
            .wrapping_add((m.metric_family_name.len() + m.help.len() + m.unit.len()) as u64);
    }
    std::hint::black_box(checksum);
}

fn assert_same(a: &WriteRequestRef<'_>, b: &WriteRequestRef<'_>) {
    assert_eq!(a.series_count(), b.series_count(), "series count");
    for (x, y) in a.series().zip(b.series()) {
        assert_eq!(x.raw(), y.raw(), "series raw bytes");
        assert_eq!(x.labels(), y.labels(), "labels");
        assert_samples_eq(x.samples(), y.samples());
        assert_exemplars_eq(x.exemplars().collect(), y.exemplars().collect());
        assert_eq!(x.histograms(), y.histograms(), "histograms");
    }
    assert_eq!(a.metadata(), b.metadata(), "metadata");
}

/// Floats compare by value, or by bits for NaN (a stale marker must
/// survive); `-0.0` may come back as `0.0` (proto3 omits default values).
fn same_f64(a: f64, b: f64) -> bool {
    a == b || a.to_bits() == b.to_bits()
}

fn assert_samples_eq(a: &[Sample], b: &[Sample]) {
    assert_eq!(a.len(), b.len(), "sample count");
    for (x, y) in a.iter().zip(b) {
        assert!(
            x.timestamp == y.timestamp && same_f64(x.value, y.value),
            "sample {x:?} came back as {y:?}"
        );
    }
}

fn assert_exemplars_eq(a: Vec<ExemplarView<'_, '_>>, b: Vec<ExemplarView<'_, '_>>) {
    assert_eq!(a.len(), b.len(), "exemplar count");
    for (x, y) in a.iter().zip(&b) {
        assert!(
            x.labels == y.labels && x.timestamp == y.timestamp && same_f64(x.value, y.value),
            "exemplar {x:?} came back as {y:?}"
        );
    }
}

/// Seed inputs for the corpus: snappy-compressed write requests as a
/// Prometheus would send them (`tests/fuzz_corpus.rs` writes them into
/// the corpus for `make fuzz`).
pub fn seed_inputs() -> Vec<(&'static str, Vec<u8>)> {
    use crate::{
        compress, encode_write_request, MetricType, OwnedExemplar, OwnedHistogram, OwnedMetadata,
        OwnedTimeSeries,
    };
    let stale = f64::from_bits(0x7ff0_0000_0000_0002);
    let simple = vec![OwnedTimeSeries::new(
        [("__name__", "up"), ("job", "node"), ("instance", "a:9100")],
        [
            Sample {
                timestamp: 1_700_000_000_000,
                value: 1.0,
            },
            Sample {
                timestamp: 1_700_000_015_000,
                value: stale,
            },
        ],
    )];
    let mut rich = OwnedTimeSeries::new(
        [
            ("__name__", "http_requests_total"),
            ("code", "200"),
            ("path", "/api/v1/ß"),
        ],
        (0..8).map(|i| Sample {
            timestamp: 1_700_000_000_000 + i * 15_000,
            value: i as f64 * 1.5,
        }),
    );
    rich.exemplars.push(OwnedExemplar {
        labels: vec![("trace_id".into(), "4bf92f3577b34da6".into())],
        value: 0.25,
        timestamp: 1_700_000_000_123,
    });
    let mut hist = OwnedTimeSeries::new([("__name__", "rpc_latency_seconds")], []);
    hist.histograms.push(OwnedHistogram {
        count: 12,
        sum: 3.5,
        schema: 3,
        zero_threshold: 1e-128,
        zero_count: 2,
        timestamp: 1_700_000_000_000,
    });
    let metadata = vec![OwnedMetadata {
        metric_type: MetricType::Counter,
        metric_family_name: "http_requests_total".into(),
        help: "Requests served.".into(),
        unit: String::new(),
    }];
    let many: Vec<OwnedTimeSeries> = (0..20)
        .map(|i| {
            OwnedTimeSeries::new(
                [
                    ("__name__", "node_cpu_seconds_total".to_string()),
                    ("cpu", i.to_string()),
                    ("mode", "idle".to_string()),
                ],
                [Sample {
                    timestamp: 1_700_000_000_000,
                    value: f64::from(i) * 100.0,
                }],
            )
        })
        .collect();
    vec![
        ("simple", compress(&encode_write_request(&simple, &[]))),
        (
            "exemplar_histogram_metadata",
            compress(&encode_write_request(&[rich, hist], &metadata)),
        ),
        ("many_series", compress(&encode_write_request(&many, &[]))),
        ("empty", compress(&[])),
        // Uncompressed: the raw protobuf path sees a valid request too.
        ("raw_simple", encode_write_request(&simple, &metadata)),
    ]
}
