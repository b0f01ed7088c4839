//! Hand-built protobuf inputs exercising every decoder path: each wire type
//! skipped at each message level, wrong wire types, truncation, invalid
//! UTF-8, field order, non-minimal varints, metadata, histograms, reuse.

use strata_remote_write::*;

// ---------------------------------------------------------------------
// tiny protobuf builder
// ---------------------------------------------------------------------

fn varint(mut v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
    out
}

fn key(field: u32, wt: u8) -> Vec<u8> {
    varint((u64::from(field) << 3) | u64::from(wt))
}

fn f_len(field: u32, body: &[u8]) -> Vec<u8> {
    let mut out = key(field, 2);
    out.extend(varint(body.len() as u64));
    out.extend_from_slice(body);
    out
}

fn f_varint(field: u32, v: u64) -> Vec<u8> {
    let mut out = key(field, 0);
    out.extend(varint(v));
    out
}

fn f_i64(field: u32, v: u64) -> Vec<u8> {
    let mut out = key(field, 1);
    out.extend(v.to_le_bytes());
    out
}

fn f_i32(field: u32, v: u32) -> Vec<u8> {
    let mut out = key(field, 5);
    out.extend(v.to_le_bytes());
    out
}

fn f_group(field: u32, body: &[u8]) -> Vec<u8> {
    let mut out = key(field, 3);
    out.extend_from_slice(body);
    out.extend(key(field, 4));
    out
}

fn cat(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

fn label(name: &str, value: &str) -> Vec<u8> {
    cat(&[f_len(1, name.as_bytes()), f_len(2, value.as_bytes())])
}

fn sample(value: f64, ts: i64) -> Vec<u8> {
    cat(&[f_i64(1, value.to_bits()), f_varint(2, ts as u64)])
}

/// One of each unknown wire type, including a group with nested content.
fn unknown_fields(field: u32) -> Vec<u8> {
    cat(&[
        f_varint(field, 300),
        f_i64(field + 1, 0xdead_beef),
        f_len(field + 2, b"\xff\xfe not utf8 but unknown"),
        f_i32(field + 3, 7),
        f_group(
            field + 4,
            &cat(&[
                f_varint(1, 1),
                f_len(2, b"x"),
                f_group(3, &f_i32(1, 5)),
                f_i64(4, 9),
            ]),
        ),
        // largest legal field number
        f_varint((1 << 29) - 1, 1),
    ])
}

fn simple_series() -> Vec<u8> {
    cat(&[
        f_len(1, &label("__name__", "up")),
        f_len(1, &label("job", "node")),
        f_len(2, &sample(1.5, 1_700_000_000_000)),
    ])
}

fn decode(buf: &[u8]) -> Result<WriteRequestRef<'_>, DecodeError> {
    WriteRequestRef::decode(buf)
}

fn labels_of<'a>(ts: &TimeSeriesView<'_, 'a>) -> Vec<(&'a str, &'a str)> {
    ts.labels().iter().map(|l| (l.name, l.value)).collect()
}

// ---------------------------------------------------------------------
// basics
// ---------------------------------------------------------------------

#[test]
fn empty_request() {
    let req = decode(&[]).unwrap();
    assert_eq!(req.series_count(), 0);
    assert!(req.is_empty());
    assert_eq!(req.series().count(), 0);
    assert!(req.metadata().is_empty());
}

#[test]
fn simple_request() {
    let s = simple_series();
    let buf = f_len(1, &s);
    let req = decode(&buf).unwrap();
    assert_eq!(req.series_count(), 1);
    assert_eq!(req.sample_count(), 1);
    let ts = req.get(0).unwrap();
    assert_eq!(labels_of(&ts), vec![("__name__", "up"), ("job", "node")]);
    assert_eq!(
        ts.samples(),
        &[Sample {
            timestamp: 1_700_000_000_000,
            value: 1.5
        }]
    );
    assert_eq!(ts.raw(), &s[..]);
    assert_eq!(ts.metric_name(), Some("up"));
    assert_eq!(ts.exemplars().count(), 0);
    assert_eq!(ts.histogram_count(), 0);
    assert!(req.get(1).is_none());
}

#[test]
fn empty_messages_decode_to_defaults() {
    // empty series, empty label, empty sample
    let buf = cat(&[
        f_len(1, &[]),
        f_len(1, &cat(&[f_len(1, &[]), f_len(2, &[])])),
    ]);
    let req = decode(&buf).unwrap();
    assert_eq!(req.series_count(), 2);
    let s0 = req.get(0).unwrap();
    assert!(s0.labels().is_empty() && s0.samples().is_empty());
    assert_eq!(s0.raw(), b"");
    let s1 = req.get(1).unwrap();
    assert_eq!(
        s1.labels(),
        &[LabelRef {
            name: "",
            value: ""
        }]
    );
    assert_eq!(s1.samples(), &[Sample::default()]);
}

#[test]
fn multiple_series_ranges_do_not_overlap() {
    let a = cat(&[
        f_len(1, &label("__name__", "a")),
        f_len(2, &sample(1.0, 1)),
        f_len(2, &sample(2.0, 2)),
    ]);
    let b = cat(&[
        f_len(1, &label("__name__", "b")),
        f_len(1, &label("x", "y")),
        f_len(2, &sample(3.0, 3)),
    ]);
    let buf = cat(&[f_len(1, &a), f_len(1, &b)]);
    let req = decode(&buf).unwrap();
    let v: Vec<_> = req.series().collect();
    assert_eq!(v.len(), 2);
    assert_eq!(labels_of(&v[0]), vec![("__name__", "a")]);
    assert_eq!(v[0].samples().len(), 2);
    assert_eq!(labels_of(&v[1]), vec![("__name__", "b"), ("x", "y")]);
    assert_eq!(v[1].samples()[0].value, 3.0);
    assert_eq!(req.series_refs()[1].labels_range(), 1..3);
    assert_eq!(req.series_refs()[1].samples_range(), 2..3);
    assert_eq!(req.all_labels().len(), 3);
    assert_eq!(req.label_count(), 3);
    assert_eq!(req.all_samples().len(), 3);
    assert_eq!(req.series().next_back().unwrap().metric_name(), Some("b"));
    assert_eq!(req.series().len(), 2);
}

// ---------------------------------------------------------------------
// field order, repeated scalars, non-minimal encodings
// ---------------------------------------------------------------------

#[test]
fn interleaved_and_reordered_fields() {
    // samples before labels, labels interleaved with samples, value before name
    let s = cat(&[
        f_len(2, &sample(1.0, 10)),
        f_len(1, &cat(&[f_len(2, b"v1"), f_len(1, b"n1")])),
        f_len(2, &cat(&[f_varint(2, 20), f_i64(1, 2.0f64.to_bits())])),
        f_len(1, &label("n2", "v2")),
    ]);
    let buf = f_len(1, &s);
    let req = decode(&buf).unwrap();
    let ts = req.get(0).unwrap();
    assert_eq!(labels_of(&ts), vec![("n1", "v1"), ("n2", "v2")]);
    assert_eq!(
        ts.samples(),
        &[
            Sample {
                timestamp: 10,
                value: 1.0
            },
            Sample {
                timestamp: 20,
                value: 2.0
            }
        ]
    );
}

#[test]
fn last_scalar_wins() {
    let l = cat(&[
        f_len(1, b"first"),
        f_len(2, b"a"),
        f_len(1, b"second"),
        f_len(2, b"b"),
    ]);
    let smp = cat(&[
        f_i64(1, 1.0f64.to_bits()),
        f_varint(2, 5),
        f_i64(1, 2.0f64.to_bits()),
        f_varint(2, 6),
    ]);
    let buf = f_len(1, &cat(&[f_len(1, &l), f_len(2, &smp)]));
    let req = decode(&buf).unwrap();
    let ts = req.get(0).unwrap();
    assert_eq!(labels_of(&ts), vec![("second", "b")]);
    assert_eq!(
        ts.samples()[0],
        Sample {
            timestamp: 6,
            value: 2.0
        }
    );
}

#[test]
fn non_minimal_varints_for_keys_and_lengths() {
    // key 0x0a as 0x8a 0x00, length 2 as 0x82 0x80 0x00
    let lbl = [0x8a, 0x00, 0x82, 0x80, 0x00, b'a', b'b', 0x12, 0x01, b'c'];
    let mut series = vec![0x8a, 0x80, 0x00];
    series.extend(varint(lbl.len() as u64));
    series.extend_from_slice(&lbl);
    let buf = f_len(1, &series);
    let req = decode(&buf).unwrap();
    assert_eq!(labels_of(&req.get(0).unwrap()), vec![("ab", "c")]);
}

#[test]
fn long_strings_take_the_slow_label_path() {
    let name = "n".repeat(200);
    let value = "v".repeat(20_000);
    let buf = f_len(1, &f_len(1, &label(&name, &value)));
    let req = decode(&buf).unwrap();
    let l = req.get(0).unwrap().labels()[0];
    assert_eq!(l.name, name);
    assert_eq!(l.value, value);
}

#[test]
fn negative_and_extreme_timestamps_and_special_floats() {
    let stale = f64::from_bits(0x7ff0_0000_0000_0002);
    let cases = [
        (i64::MIN, f64::INFINITY),
        (-1, f64::NEG_INFINITY),
        (i64::MAX, stale),
        (0, -0.0),
        (1, f64::MIN_POSITIVE),
    ];
    let s = cat(&cases
        .iter()
        .map(|&(t, v)| f_len(2, &sample(v, t)))
        .collect::<Vec<_>>());
    let buf = f_len(1, &s);
    let req = decode(&buf).unwrap();
    let got = req.get(0).unwrap().samples();
    for (g, &(t, v)) in got.iter().zip(&cases) {
        assert_eq!(g.timestamp, t);
        assert_eq!(g.value.to_bits(), v.to_bits());
    }
}

// ---------------------------------------------------------------------
// unknown fields: every wire type at every level
// ---------------------------------------------------------------------

#[test]
fn unknown_fields_skipped_at_every_level() {
    let u = unknown_fields(5);
    let lbl = cat(&[u.clone(), label("__name__", "m"), u.clone()]);
    let smp = cat(&[u.clone(), sample(4.0, 44), u.clone()]);
    let ex = cat(&[
        u.clone(),
        f_len(1, &cat(&[label("trace_id", "abc"), u.clone()])),
        f_i64(2, 9.0f64.to_bits()),
        f_varint(3, 99),
        u.clone(),
    ]);
    let hist = cat(&[
        f_varint(1, 10),
        f_i64(3, 2.5f64.to_bits()),
        f_varint(15, 1234),
        u.clone(),
    ]);
    let series = cat(&[
        u.clone(),
        f_len(1, &lbl),
        u.clone(),
        f_len(2, &smp),
        f_len(3, &ex),
        f_len(4, &hist),
        u.clone(),
    ]);
    // field 6 is used by unknown_fields(5) for i32; metadata unknowns start at 6
    let md = cat(&[
        f_varint(1, 1),
        f_len(2, b"m"),
        f_len(3, b"field 3 is unused"),
        f_len(4, b"help"),
        f_len(5, b"seconds"),
        unknown_fields(6),
    ]);
    let buf = cat(&[
        unknown_fields(4),
        f_len(2, b"reserved field 2 (cortex source)"),
        f_varint(2, 1),
        f_len(1, &series),
        unknown_fields(10),
        f_len(3, &md),
    ]);
    let req = decode(&buf).unwrap();
    assert_eq!(req.series_count(), 1);
    let ts = req.get(0).unwrap();
    assert_eq!(labels_of(&ts), vec![("__name__", "m")]);
    assert_eq!(
        ts.samples(),
        &[Sample {
            timestamp: 44,
            value: 4.0
        }]
    );
    let ex: Vec<_> = ts.exemplars().collect();
    assert_eq!(ex.len(), 1);
    assert_eq!(
        ex[0].labels,
        &[LabelRef {
            name: "trace_id",
            value: "abc"
        }]
    );
    assert_eq!((ex[0].value, ex[0].timestamp), (9.0, 99));
    assert_eq!(ts.histogram_count(), 1);
    assert_eq!(ts.histograms()[0].timestamp, 1234);
    assert_eq!(ts.histograms()[0].raw, &hist[..]);
    assert_eq!(ts.raw(), &series[..]);
    assert_eq!(
        req.metadata(),
        &[MetadataRef {
            metric_type: MetricType::Counter,
            metric_family_name: "m",
            help: "help",
            unit: "seconds",
            raw: &md[..],
        }]
    );
}

#[test]
fn histogram_packed_and_unpacked_repeated_fields_are_skipped() {
    // positive_spans (11, messages), positive_deltas (12, sint64) packed
    // and unpacked, positive_counts (13, double) packed and unpacked.
    let span = cat(&[f_varint(1, 0), f_varint(2, 3)]);
    let packed_deltas = cat(&[varint(2), varint(1), varint(3)]);
    let packed_counts: Vec<u8> = [1.0f64, 2.0]
        .iter()
        .flat_map(|f| f.to_bits().to_le_bytes())
        .collect();
    let h1 = cat(&[
        f_varint(1, 6),
        f_len(11, &span),
        f_len(12, &packed_deltas),
        f_varint(15, 100),
    ]);
    let h2 = cat(&[
        f_varint(1, 6),
        f_len(11, &span),
        f_varint(12, 2),
        f_varint(12, 1),
        f_varint(12, 3),
        f_len(13, &packed_counts),
        f_i64(13, 3.0f64.to_bits()),
        f_varint(14, 1),
        f_varint(15, 200),
    ]);
    let series = cat(&[
        f_len(1, &label("__name__", "h")),
        f_len(4, &h1),
        f_len(4, &h2),
    ]);
    let buf = f_len(1, &series);
    let req = decode(&buf).unwrap();
    assert_eq!(req.histogram_count(), 2);
    let ts = req.get(0).unwrap();
    assert_eq!(
        ts.histograms()
            .iter()
            .map(|h| h.timestamp)
            .collect::<Vec<_>>(),
        vec![100, 200]
    );
    assert!(ts.samples().is_empty());
}

// ---------------------------------------------------------------------
// errors
// ---------------------------------------------------------------------

#[test]
fn truncated_length_message() {
    // a label claiming 300 bytes with 12 left in the series
    let mut series = key(1, 2);
    series.extend(varint(300));
    series.extend_from_slice(&[b'x'; 12]);
    let buf = f_len(1, &series);
    let err = decode(&buf).unwrap_err();
    assert_eq!(
        err.to_string(),
        "truncated protobuf: length 300 exceeds remaining 12 bytes in timeseries labels"
    );
}

#[test]
fn truncations_everywhere_are_errors() {
    let md = cat(&[f_varint(1, 2), f_len(2, b"fam"), f_len(4, b"help")]);
    let ex = cat(&[
        f_len(1, &label("trace_id", "t")),
        f_i64(2, 1.0f64.to_bits()),
        f_varint(3, 5),
    ]);
    let series = cat(&[
        simple_series(),
        f_len(3, &ex),
        f_len(4, &f_varint(15, 7)),
        f_group(9, &f_i32(1, 1)),
    ]);
    let buf = cat(&[f_len(1, &series), f_len(3, &md)]);
    assert!(decode(&buf).is_ok());
    // every proper prefix that cuts a message open must fail, and none panics
    for cut in 0..buf.len() {
        let r = decode(&buf[..cut]);
        // the only valid prefixes end exactly between the two top-level fields
        let boundary = f_len(1, &series).len();
        if cut == 0 || cut == boundary {
            assert!(r.is_ok(), "cut {cut}");
        } else {
            let err = r.unwrap_err();
            let msg = err.to_string();
            assert!(msg.starts_with("truncated protobuf"), "cut {cut}: {msg}");
        }
    }
}

#[test]
fn fixed_width_truncation_messages() {
    let s = cat(&[key(1, 1), vec![0; 3]]);
    let err = decode(&f_len(1, &f_len(2, &s))).unwrap_err();
    assert_eq!(
        err.to_string(),
        "truncated protobuf: length 8 exceeds remaining 3 bytes in sample"
    );
    let err = decode(&cat(&[key(9, 5), vec![0; 2]])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "truncated protobuf: length 4 exceeds remaining 2 bytes in write request"
    );
    let err = decode(&[0x0a, 0x80]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "truncated protobuf: unterminated varint in timeseries"
    );
}

#[test]
fn wrong_wire_types_for_known_fields() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (f_varint(1, 1), "WriteRequest.timeseries"),
        (f_i32(3, 1), "WriteRequest.metadata"),
        (f_len(1, &f_varint(1, 1)), "TimeSeries.labels"),
        (f_len(1, &f_i64(2, 1)), "TimeSeries.samples"),
        (f_len(1, &f_varint(3, 1)), "TimeSeries.exemplars"),
        (f_len(1, &f_group(4, &[])), "TimeSeries.histograms"),
        (f_len(1, &f_len(1, &f_varint(1, 1))), "Label.name"),
        (f_len(1, &f_len(1, &f_i32(2, 1))), "Label.value"),
        (f_len(1, &f_len(2, &f_varint(1, 1))), "Sample.value"),
        (f_len(1, &f_len(2, &f_i64(2, 1))), "Sample.timestamp"),
        (f_len(1, &f_len(3, &f_varint(1, 1))), "Exemplar.labels"),
        (f_len(1, &f_len(3, &f_i32(2, 1))), "Exemplar.value"),
        (f_len(1, &f_len(3, &f_i64(3, 1))), "Exemplar.timestamp"),
        (f_len(1, &f_len(4, &f_len(15, b""))), "Histogram.timestamp"),
        (f_len(3, &f_len(1, b"")), "MetricMetadata.type"),
        (
            f_len(3, &f_varint(2, 1)),
            "MetricMetadata.metric_family_name",
        ),
        (f_len(3, &f_i64(4, 1)), "MetricMetadata.help"),
        (f_len(3, &f_i32(5, 1)), "MetricMetadata.unit"),
    ];
    for (buf, name) in cases {
        let err = decode(&buf).unwrap_err();
        assert!(
            matches!(err, DecodeError::WrongWireType { name: n, .. } if n == name),
            "{name}: {err:?}"
        );
        assert!(err.to_string().contains(name), "{err}");
    }
}

#[test]
fn invalid_keys_and_wire_types() {
    // field number 0
    let err = decode(&[0x02, 0x00]).unwrap_err();
    assert!(matches!(err, DecodeError::InvalidKey { .. }), "{err:?}");
    // key wider than 32 bits
    let err = decode(&cat(&[varint(1 << 35), vec![0]])).unwrap_err();
    assert!(matches!(err, DecodeError::InvalidKey { .. }), "{err:?}");
    // wire types 6 and 7, at top level and nested
    for buf in [
        vec![0x0e, 0],
        vec![0x0f, 0],
        f_len(1, &[0x2e, 0]),
        f_len(1, &f_len(1, &[0x1f])),
    ] {
        let err = decode(&buf).unwrap_err();
        assert!(
            matches!(err, DecodeError::InvalidWireType { .. }),
            "{err:?}"
        );
    }
    // 11-byte varint
    let err = decode(&f_len(
        1,
        &f_len(2, &cat(&[key(2, 0), vec![0xff; 10], vec![1]])),
    ))
    .unwrap_err();
    assert!(matches!(err, DecodeError::VarintOverflow { .. }), "{err:?}");
}

#[test]
fn group_errors() {
    // lone end group
    let err = decode(&key(7, 4)).unwrap_err();
    assert!(matches!(
        err,
        DecodeError::UnexpectedEndGroup { field: 7, .. }
    ));
    // mismatched end group
    let err = decode(&cat(&[key(7, 3), key(8, 4)])).unwrap_err();
    assert!(matches!(
        err,
        DecodeError::UnexpectedEndGroup { field: 8, .. }
    ));
    // unterminated group
    assert!(decode(&cat(&[key(7, 3), f_varint(1, 1)])).is_err());
    // group left open at the end of a nested message
    let err = decode(&f_len(1, &cat(&[key(7, 3), f_varint(1, 1)]))).unwrap_err();
    assert!(err.to_string().contains("timeseries"), "{err}");
    // deep nesting is bounded, not a stack overflow
    let deep: Vec<u8> = std::iter::repeat_n(key(7, 3), 100_000).flatten().collect();
    let err = decode(&deep).unwrap_err();
    assert!(matches!(err, DecodeError::NestingTooDeep { .. }), "{err:?}");
    // but moderate nesting is fine
    let mut g = f_varint(1, 1);
    for _ in 0..20 {
        g = f_group(7, &g);
    }
    assert!(decode(&g).is_ok());
}

#[test]
fn invalid_utf8_is_rejected_naming_the_field() {
    let bad: &[u8] = b"ab\xffcd";
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            f_len(1, &f_len(1, &cat(&[f_len(1, bad), f_len(2, b"v")]))),
            "invalid utf-8 in label name",
        ),
        (
            f_len(1, &f_len(1, &cat(&[f_len(1, b"n"), f_len(2, bad)]))),
            "invalid utf-8 in label value",
        ),
        (
            // long value: slow path
            f_len(
                1,
                &f_len(
                    1,
                    &cat(&[f_len(1, b"n"), f_len(2, &[&[b'a'; 300][..], bad].concat())]),
                ),
            ),
            "invalid utf-8 in label value",
        ),
        (
            f_len(1, &f_len(3, &f_len(1, &cat(&[f_len(1, bad)])))),
            "invalid utf-8 in exemplar label name",
        ),
        (
            f_len(1, &f_len(3, &f_len(1, &cat(&[f_len(2, bad)])))),
            "invalid utf-8 in exemplar label value",
        ),
        (
            f_len(3, &f_len(2, bad)),
            "invalid utf-8 in metadata metric_family_name",
        ),
        (f_len(3, &f_len(4, bad)), "invalid utf-8 in metadata help"),
        (f_len(3, &f_len(5, bad)), "invalid utf-8 in metadata unit"),
        (
            // overlong encoding and surrogate halves
            f_len(1, &f_len(1, &label_bytes(b"n", b"\xc0\xaf"))),
            "invalid utf-8 in label value",
        ),
        (
            f_len(1, &f_len(1, &label_bytes(b"\xed\xa0\x80", b"v"))),
            "invalid utf-8 in label name",
        ),
    ];
    for (buf, msg) in cases {
        assert_eq!(decode(&buf).unwrap_err().to_string(), msg);
    }
    // valid multi-byte UTF-8 is fine
    let buf = f_len(1, &f_len(1, &label("name", "wert ü 名前 🦀")));
    assert_eq!(
        decode(&buf).unwrap().get(0).unwrap().labels()[0].value,
        "wert ü 名前 🦀"
    );
}

fn label_bytes(name: &[u8], value: &[u8]) -> Vec<u8> {
    cat(&[f_len(1, name), f_len(2, value)])
}

#[test]
fn error_messages_are_lowercase() {
    let errs = [
        decode(&[0x0a, 0x05]).unwrap_err(),
        decode(&[0x02]).unwrap_err(),
        decode(&[0x0e]).unwrap_err(),
        decode(&f_varint(1, 1)).unwrap_err(),
        decode(&key(7, 4)).unwrap_err(),
        decode(&f_len(3, &f_len(2, b"\xff"))).unwrap_err(),
        decompress(b"\x80", 10).unwrap_err(),
        decompress(b"\x10", 1).unwrap_err(),
    ];
    for e in errs {
        let m = e.to_string();
        assert!(
            m.chars().next().unwrap().is_lowercase(),
            "message should start lowercase: {m}"
        );
    }
}

// ---------------------------------------------------------------------
// metadata
// ---------------------------------------------------------------------

#[test]
fn metadata_types() {
    let types = [
        (0u64, MetricType::Unknown),
        (1, MetricType::Counter),
        (2, MetricType::Gauge),
        (3, MetricType::Histogram),
        (4, MetricType::GaugeHistogram),
        (5, MetricType::Summary),
        (6, MetricType::Info),
        (7, MetricType::StateSet),
        (42, MetricType::Other(42)),
        // int32 -1 is sent sign-extended as a 10-byte varint
        (u64::MAX, MetricType::Other(-1)),
    ];
    let buf = cat(&types
        .iter()
        .map(|&(v, _)| f_len(3, &cat(&[f_varint(1, v), f_len(2, b"fam")])))
        .collect::<Vec<_>>());
    let req = decode(&buf).unwrap();
    assert_eq!(req.series_count(), 0);
    assert!(!req.is_empty());
    let got: Vec<_> = req.metadata().iter().map(|m| m.metric_type).collect();
    assert_eq!(got, types.iter().map(|t| t.1).collect::<Vec<_>>());
    assert_eq!(MetricType::GaugeHistogram.to_string(), "gaugehistogram");
    assert_eq!(MetricType::StateSet.as_str(), "stateset");
    assert_eq!(MetricType::Other(9).as_str(), "unknown");
    for (v, t) in types {
        assert_eq!(MetricType::from_i32(v as i32), t);
        assert_eq!(t.as_i32(), v as i32);
    }
}

// ---------------------------------------------------------------------
// reuse
// ---------------------------------------------------------------------

#[test]
fn decode_into_reuses_and_clears_on_error() {
    let a = f_len(1, &simple_series());
    let b = cat(&[a.clone(), a.clone()]);
    let mut req = WriteRequestRef::new();
    req.decode_into(&b).unwrap();
    assert_eq!(req.series_count(), 2);
    req.decode_into(&a).unwrap();
    assert_eq!(req.series_count(), 1);
    assert_eq!(req.label_count(), 2);
    assert!(req.decode_into(&b[..b.len() - 1]).is_err());
    assert_eq!(req.series_count(), 0);
    assert_eq!(req.label_count(), 0);
    assert_eq!(req.sample_count(), 0);
}

#[test]
fn recycle_keeps_allocations_across_buffer_lifetimes() {
    let series: Vec<_> = (0..100)
        .map(|i| {
            OwnedTimeSeries::new(
                [("__name__", format!("m{i}")), ("job", "j".to_string())],
                [Sample {
                    timestamp: i,
                    value: 1.0,
                }],
            )
        })
        .collect();
    let mut pool: WriteRequestRef<'static> = WriteRequestRef::new();
    for round in 0..3 {
        let buf = encode_write_request(&series, &[]); // fresh buffer each round
        let mut req = std::mem::take(&mut pool).recycle();
        req.decode_into(&buf).unwrap();
        assert_eq!(req.series_count(), 100, "round {round}");
        assert_eq!(req.get(99).unwrap().metric_name(), Some("m99"));
        let labels_ptr = req.all_labels().as_ptr() as usize;
        pool = req.recycle();
        // decode again into the recycled arenas: same allocation
        let mut again = std::mem::take(&mut pool).recycle();
        again.decode_into(&buf).unwrap();
        assert_eq!(
            again.all_labels().as_ptr() as usize,
            labels_ptr,
            "recycle must keep the label arena allocation"
        );
        pool = again.recycle();
    }
}

// ---------------------------------------------------------------------
// encoder + forwarding
// ---------------------------------------------------------------------

#[test]
fn encoder_roundtrip_with_everything() {
    let series = vec![
        OwnedTimeSeries {
            labels: vec![
                ("__name__".into(), "http_requests_total".into()),
                ("code".into(), "200".into()),
                ("".into(), "".into()),
            ],
            samples: vec![
                Sample {
                    timestamp: 1,
                    value: 0.0,
                },
                Sample {
                    timestamp: -5,
                    value: 3.25,
                },
            ],
            exemplars: vec![OwnedExemplar {
                labels: vec![("trace_id".into(), "0af7651916cd43dd".into())],
                value: 0.25,
                timestamp: 2,
            }],
            histograms: vec![OwnedHistogram {
                count: 3,
                sum: 1.5,
                schema: -2,
                zero_threshold: 1e-128,
                zero_count: 1,
                timestamp: 77,
            }],
        },
        OwnedTimeSeries::default(),
    ];
    let md = vec![
        OwnedMetadata {
            metric_type: MetricType::Counter,
            metric_family_name: "http_requests_total".into(),
            help: "Total requests.".into(),
            unit: "".into(),
        },
        OwnedMetadata {
            metric_type: MetricType::Other(-3),
            ..Default::default()
        },
    ];
    let buf = encode_write_request(&series, &md);
    let req = decode(&buf).unwrap();
    assert_eq!(req.series_count(), 2);
    let ts = req.get(0).unwrap();
    assert_eq!(
        labels_of(&ts),
        vec![
            ("__name__", "http_requests_total"),
            ("code", "200"),
            ("", "")
        ]
    );
    assert_eq!(ts.samples(), &series[0].samples[..]);
    let ex: Vec<_> = ts.exemplars().collect();
    assert_eq!(ex.len(), 1);
    assert_eq!(ex[0].labels[0].value, "0af7651916cd43dd");
    assert_eq!((ex[0].value, ex[0].timestamp), (0.25, 2));
    assert_eq!(ts.histograms()[0].timestamp, 77);
    let back: Vec<OwnedMetadata> = req.metadata().iter().map(OwnedMetadata::from).collect();
    assert_eq!(back, md);

    // forwarding: rebuilding from raw bytes reproduces the request exactly
    let mut fwd = Vec::new();
    for ts in req.series() {
        encode_series_raw_into(&mut fwd, ts.raw());
    }
    for m in req.metadata() {
        encode_metadata_raw_into(&mut fwd, m.raw);
    }
    assert_eq!(fwd, buf);

    // re-encoding from borrowed parts matches the owned encoding (no exemplars/histograms)
    let plain = OwnedTimeSeries::new(
        series[0].labels.iter().cloned(),
        series[0].samples.iter().copied(),
    );
    let mut a = Vec::new();
    encode_series_into(&mut a, &plain);
    let mut b = Vec::new();
    encode_series_parts_into(&mut b, ts.labels(), ts.samples());
    assert_eq!(a, b);
}

#[test]
fn compress_decompress_decode() {
    let series = vec![OwnedTimeSeries::new(
        [("__name__", "up"), ("instance", "localhost:9090")],
        [Sample {
            timestamp: 1,
            value: 1.0,
        }],
    )];
    let raw = encode_write_request(&series, &[]);
    let body = compress(&raw);
    assert_eq!(decompress(&body, raw.len()).unwrap(), raw);
    let err = decompress(&body, raw.len() - 1).unwrap_err();
    assert!(err.is_too_large());
    assert_eq!(
        err,
        DecodeError::TooLarge {
            decoded_len: raw.len(),
            max: raw.len() - 1
        }
    );
}
