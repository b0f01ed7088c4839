//! Property tests cross-checking the hand-rolled decoder and encoder against
//! prost's generated code for the same schema:
//!
//! * our encoder produces exactly prost's bytes; both decoders agree on them;
//! * prost-encoded random messages decode identically with our decoder;
//! * random protobuf "field soup" (wrong wire types, unknown fields, groups,
//!   invalid UTF-8, nesting) and mutated/truncated valid requests: our
//!   decoder accepts exactly what prost accepts, with identical content;
//! * arbitrary bytes never panic; snappy round trips and limits.

use proptest::prelude::*;
use prost::Message;
use strata_remote_write::*;

/// Reference structs, written from the remote write 1.0 field numbers.
/// `Histogram` carries only its timestamp: other fields are skipped as
/// unknown, which is exactly what our decoder does.
mod pb {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct WriteRequest {
        #[prost(message, repeated, tag = "1")]
        pub timeseries: Vec<TimeSeries>,
        #[prost(message, repeated, tag = "3")]
        pub metadata: Vec<MetricMetadata>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TimeSeries {
        #[prost(message, repeated, tag = "1")]
        pub labels: Vec<Label>,
        #[prost(message, repeated, tag = "2")]
        pub samples: Vec<Sample>,
        #[prost(message, repeated, tag = "3")]
        pub exemplars: Vec<Exemplar>,
        #[prost(message, repeated, tag = "4")]
        pub histograms: Vec<Histogram>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Label {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(string, tag = "2")]
        pub value: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Sample {
        #[prost(double, tag = "1")]
        pub value: f64,
        #[prost(int64, tag = "2")]
        pub timestamp: i64,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Exemplar {
        #[prost(message, repeated, tag = "1")]
        pub labels: Vec<Label>,
        #[prost(double, tag = "2")]
        pub value: f64,
        #[prost(int64, tag = "3")]
        pub timestamp: i64,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Histogram {
        #[prost(int64, tag = "15")]
        pub timestamp: i64,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct MetricMetadata {
        #[prost(int32, tag = "1")]
        pub r#type: i32,
        #[prost(string, tag = "2")]
        pub metric_family_name: String,
        #[prost(string, tag = "4")]
        pub help: String,
        #[prost(string, tag = "5")]
        pub unit: String,
    }

    /// The subset of the native histogram our encoder writes, to check its
    /// bytes field by field.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct FullHistogram {
        #[prost(oneof = "Count", tags = "1, 2")]
        pub count: Option<Count>,
        #[prost(double, tag = "3")]
        pub sum: f64,
        #[prost(sint32, tag = "4")]
        pub schema: i32,
        #[prost(double, tag = "5")]
        pub zero_threshold: f64,
        #[prost(oneof = "ZeroCount", tags = "6, 7")]
        pub zero_count: Option<ZeroCount>,
        #[prost(int64, tag = "15")]
        pub timestamp: i64,
    }

    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Count {
        #[prost(uint64, tag = "1")]
        Int(u64),
        #[prost(double, tag = "2")]
        Float(f64),
    }

    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum ZeroCount {
        #[prost(uint64, tag = "6")]
        Int(u64),
        #[prost(double, tag = "7")]
        Float(f64),
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TimeSeriesFullHistograms {
        #[prost(message, repeated, tag = "4")]
        pub histograms: Vec<FullHistogram>,
    }
}

// ---------------------------------------------------------------------
// normalised form for comparison (floats as bits)
// ---------------------------------------------------------------------

type Labels = Vec<(String, String)>;

#[derive(Debug, PartialEq)]
struct NSeries {
    labels: Labels,
    samples: Vec<(i64, u64)>,
    exemplars: Vec<(Labels, u64, i64)>,
    histogram_ts: Vec<i64>,
}

#[derive(Debug, PartialEq)]
struct Norm {
    series: Vec<NSeries>,
    metadata: Vec<(i32, String, String, String)>,
}

fn own(l: &[LabelRef<'_>]) -> Labels {
    l.iter()
        .map(|l| (l.name.to_owned(), l.value.to_owned()))
        .collect()
}

fn norm_mine(r: &WriteRequestRef<'_>) -> Norm {
    Norm {
        series: r
            .series()
            .map(|s| NSeries {
                labels: own(s.labels()),
                samples: s
                    .samples()
                    .iter()
                    .map(|x| (x.timestamp, x.value.to_bits()))
                    .collect(),
                exemplars: s
                    .exemplars()
                    .map(|e| (own(e.labels), e.value.to_bits(), e.timestamp))
                    .collect(),
                histogram_ts: s.histograms().iter().map(|h| h.timestamp).collect(),
            })
            .collect(),
        metadata: r
            .metadata()
            .iter()
            .map(|m| {
                (
                    m.metric_type.as_i32(),
                    m.metric_family_name.to_owned(),
                    m.help.to_owned(),
                    m.unit.to_owned(),
                )
            })
            .collect(),
    }
}

fn pb_labels(l: &[pb::Label]) -> Labels {
    l.iter()
        .map(|l| (l.name.clone(), l.value.clone()))
        .collect()
}

fn norm_pb_series(s: &pb::TimeSeries) -> NSeries {
    NSeries {
        labels: pb_labels(&s.labels),
        samples: s
            .samples
            .iter()
            .map(|x| (x.timestamp, x.value.to_bits()))
            .collect(),
        exemplars: s
            .exemplars
            .iter()
            .map(|e| (pb_labels(&e.labels), e.value.to_bits(), e.timestamp))
            .collect(),
        histogram_ts: s.histograms.iter().map(|h| h.timestamp).collect(),
    }
}

fn norm_pb(r: &pb::WriteRequest) -> Norm {
    Norm {
        series: r.timeseries.iter().map(norm_pb_series).collect(),
        metadata: r
            .metadata
            .iter()
            .map(|m| {
                (
                    m.r#type,
                    m.metric_family_name.clone(),
                    m.help.clone(),
                    m.unit.clone(),
                )
            })
            .collect(),
    }
}

/// Both decoders on the same bytes: same verdict, same content.
fn assert_same_verdict(buf: &[u8]) -> Result<(), TestCaseError> {
    let mine = WriteRequestRef::decode(buf);
    let theirs = pb::WriteRequest::decode(buf);
    match (&mine, &theirs) {
        (Ok(m), Ok(t)) => {
            prop_assert_eq!(norm_mine(m), norm_pb(t));
            // raw bytes of each series decode (with prost) to the same series
            for (view, pts) in m.series().zip(&t.timeseries) {
                let again = pb::TimeSeries::decode(view.raw()).expect("raw series decodes");
                prop_assert_eq!(norm_pb_series(&again), norm_pb_series(pts));
            }
        }
        (Err(_), Err(_)) => {}
        _ => prop_assert!(
            false,
            "verdicts differ on {:02x?}: mine {:?}, prost {:?}",
            buf,
            mine.as_ref().map(|_| ()),
            theirs.as_ref().map(|_| ())
        ),
    }
    Ok(())
}

// ---------------------------------------------------------------------
// strategies
// ---------------------------------------------------------------------

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-zA-Z_][a-zA-Z0-9_]{0,15}",
        1 => "",
        1 => any::<String>(),
        1 => prop::collection::vec(b'a'..=b'z', 100..300)
            .prop_map(|v| v.into_iter().map(char::from).collect()),
    ]
}

fn float() -> impl Strategy<Value = f64> {
    prop_oneof![
        3 => any::<f64>(),
        1 => Just(0.0),
        1 => Just(f64::from_bits(0x7ff0_0000_0000_0002)),
        1 => -1e6..1e6f64,
    ]
}

fn ts() -> impl Strategy<Value = i64> {
    prop_oneof![
        3 => 1_600_000_000_000..1_800_000_000_000i64,
        1 => any::<i64>(),
        1 => Just(0i64),
    ]
}

fn labels() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec((text(), text()), 0..8)
}

fn sample() -> impl Strategy<Value = Sample> {
    (ts(), float()).prop_map(|(timestamp, value)| Sample { timestamp, value })
}

fn exemplar() -> impl Strategy<Value = OwnedExemplar> {
    (prop::collection::vec((text(), text()), 0..3), float(), ts()).prop_map(
        |(labels, value, timestamp)| OwnedExemplar {
            labels,
            value,
            timestamp,
        },
    )
}

fn histogram() -> impl Strategy<Value = OwnedHistogram> {
    (
        any::<u64>(),
        float(),
        any::<i32>(),
        float(),
        any::<u64>(),
        ts(),
    )
        .prop_map(
            |(count, sum, schema, zero_threshold, zero_count, timestamp)| OwnedHistogram {
                count,
                sum,
                schema,
                zero_threshold,
                zero_count,
                timestamp,
            },
        )
}

fn series(with_histograms: bool) -> impl Strategy<Value = OwnedTimeSeries> {
    let h = if with_histograms {
        0..3usize
    } else {
        0..1usize
    };
    (
        labels(),
        prop::collection::vec(sample(), 0..4),
        prop::collection::vec(exemplar(), 0..2),
        prop::collection::vec(histogram(), h),
    )
        .prop_map(move |(labels, samples, exemplars, mut histograms)| {
            if !with_histograms {
                histograms.clear();
            }
            OwnedTimeSeries {
                labels,
                samples,
                exemplars,
                histograms,
            }
        })
}

fn metric_type() -> impl Strategy<Value = MetricType> {
    prop_oneof![
        4 => (0..8i32).prop_map(MetricType::from_i32),
        1 => any::<i32>().prop_map(MetricType::from_i32),
    ]
}

fn metadata() -> impl Strategy<Value = OwnedMetadata> {
    (metric_type(), text(), text(), text()).prop_map(|(metric_type, f, h, u)| OwnedMetadata {
        metric_type,
        metric_family_name: f,
        help: h,
        unit: u,
    })
}

fn request(
    with_histograms: bool,
) -> impl Strategy<Value = (Vec<OwnedTimeSeries>, Vec<OwnedMetadata>)> {
    (
        prop::collection::vec(series(with_histograms), 0..6),
        prop::collection::vec(metadata(), 0..3),
    )
}

fn to_pb_labels(l: &[(String, String)]) -> Vec<pb::Label> {
    l.iter()
        .map(|(n, v)| pb::Label {
            name: n.clone(),
            value: v.clone(),
        })
        .collect()
}

fn to_pb(series: &[OwnedTimeSeries], md: &[OwnedMetadata]) -> pb::WriteRequest {
    pb::WriteRequest {
        timeseries: series
            .iter()
            .map(|s| pb::TimeSeries {
                labels: to_pb_labels(&s.labels),
                samples: s
                    .samples
                    .iter()
                    .map(|x| pb::Sample {
                        value: x.value,
                        timestamp: x.timestamp,
                    })
                    .collect(),
                exemplars: s
                    .exemplars
                    .iter()
                    .map(|e| pb::Exemplar {
                        labels: to_pb_labels(&e.labels),
                        value: e.value,
                        timestamp: e.timestamp,
                    })
                    .collect(),
                histograms: s
                    .histograms
                    .iter()
                    .map(|h| pb::Histogram {
                        timestamp: h.timestamp,
                    })
                    .collect(),
            })
            .collect(),
        metadata: md
            .iter()
            .map(|m| pb::MetricMetadata {
                r#type: m.metric_type.as_i32(),
                metric_family_name: m.metric_family_name.clone(),
                help: m.help.clone(),
                unit: m.unit.clone(),
            })
            .collect(),
    }
}

/// A protobuf field with arbitrary (possibly schema-violating) content.
#[derive(Debug, Clone)]
enum Field {
    Varint(u32, u64),
    I64(u32, u64),
    I32(u32, u32),
    Bytes(u32, Vec<u8>),
    Msg(u32, Vec<Field>),
    Group(u32, Vec<Field>),
    /// A raw key with an arbitrary wire type (0..=7), no payload.
    RawKey(u32, u8),
}

fn field_number() -> impl Strategy<Value = u32> {
    prop_oneof![
        8 => 1..=5u32,
        2 => Just(15u32),
        1 => 6..=20u32,
        1 => Just((1u32 << 29) - 1),
    ]
}

fn field_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => "[a-z_]{0,10}".prop_map(String::into_bytes),
        1 => any::<String>().prop_map(String::into_bytes),
        1 => prop::collection::vec(any::<u8>(), 0..12),
    ]
}

fn soup() -> impl Strategy<Value = Vec<Field>> {
    let leaf = prop_oneof![
        2 => (field_number(), prop_oneof![any::<u64>(), 0..300u64]).prop_map(|(f, v)| Field::Varint(f, v)),
        1 => (field_number(), any::<u64>()).prop_map(|(f, v)| Field::I64(f, v)),
        1 => (field_number(), any::<u32>()).prop_map(|(f, v)| Field::I32(f, v)),
        8 => (field_number(), field_bytes()).prop_map(|(f, v)| Field::Bytes(f, v)),
    ];
    let leaf = prop_oneof![
        20 => leaf,
        1 => (field_number(), 0..8u8).prop_map(|(f, w)| Field::RawKey(f, w)),
    ];
    let tree = leaf.prop_recursive(4, 64, 6, |inner| {
        prop_oneof![
            6 => (field_number(), prop::collection::vec(inner.clone(), 0..6))
                .prop_map(|(f, v)| Field::Msg(f, v)),
            1 => (field_number(), prop::collection::vec(inner, 0..3))
                .prop_map(|(f, v)| Field::Group(f, v)),
        ]
    });
    prop::collection::vec(tree, 0..8)
}

/// Schema-guided soup: mostly well-formed remote write structure with
/// random noise fields (unknown numbers, wrong wire types, groups) mixed
/// in at every level, so deep paths get exercised too.
fn guided() -> impl Strategy<Value = Vec<Field>> {
    let noise = || {
        prop_oneof![
            2 => (6..=40u32, any::<u64>()).prop_map(|(f, v)| Field::Varint(f, v)),
            1 => (field_number(), any::<u64>()).prop_map(|(f, v)| Field::I64(f, v)),
            1 => (field_number(), any::<u32>()).prop_map(|(f, v)| Field::I32(f, v)),
            1 => (field_number(), field_bytes()).prop_map(|(f, v)| Field::Bytes(f, v)),
            1 => (field_number(), prop::collection::vec(
                (field_number(), any::<u64>()).prop_map(|(f, v)| Field::Varint(f, v)), 0..3))
                .prop_map(|(f, v)| Field::Group(f, v)),
            1 => (field_number(), 0..8u8).prop_map(|(f, w)| Field::RawKey(f, w)),
        ]
    };
    let label = prop::collection::vec(
        prop_oneof![
            8 => (1..=2u32, field_bytes()).prop_map(|(f, b)| Field::Bytes(f, b)),
            1 => noise(),
        ],
        0..4,
    );
    let sample = prop::collection::vec(
        prop_oneof![
            4 => any::<u64>().prop_map(|v| Field::I64(1, v)),
            4 => any::<u64>().prop_map(|v| Field::Varint(2, v)),
            1 => noise(),
        ],
        0..4,
    );
    let exemplar = prop::collection::vec(
        prop_oneof![
            4 => label.clone().prop_map(|l| Field::Msg(1, l)),
            2 => any::<u64>().prop_map(|v| Field::I64(2, v)),
            2 => any::<u64>().prop_map(|v| Field::Varint(3, v)),
            1 => noise(),
        ],
        0..4,
    );
    let histogram = prop::collection::vec(
        prop_oneof![
            4 => any::<u64>().prop_map(|v| Field::Varint(15, v)),
            2 => (1..=14u32, any::<u64>()).prop_map(|(f, v)| Field::Varint(f, v)),
            2 => (8..=13u32, field_bytes()).prop_map(|(f, b)| Field::Bytes(f, b)),
            1 => noise(),
        ],
        0..4,
    );
    let series = prop::collection::vec(
        prop_oneof![
            8 => label.clone().prop_map(|l| Field::Msg(1, l)),
            4 => sample.prop_map(|l| Field::Msg(2, l)),
            2 => exemplar.prop_map(|l| Field::Msg(3, l)),
            2 => histogram.prop_map(|l| Field::Msg(4, l)),
            1 => noise(),
        ],
        0..10,
    );
    let metadata = prop::collection::vec(
        prop_oneof![
            2 => prop_oneof![0..10u64, any::<u64>()].prop_map(|v| Field::Varint(1, v)),
            4 => (prop::sample::select(vec![2u32, 3, 4, 5]), field_bytes()).prop_map(|(f, b)| Field::Bytes(f, b)),
            1 => noise(),
        ],
        0..5,
    );
    prop::collection::vec(
        prop_oneof![
            8 => series.prop_map(|s| Field::Msg(1, s)),
            2 => metadata.prop_map(|m| Field::Msg(3, m)),
            1 => noise(),
        ],
        0..6,
    )
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn encode_soup(fields: &[Field], out: &mut Vec<u8>) {
    let key =
        |out: &mut Vec<u8>, f: u32, wt: u8| put_varint(out, (u64::from(f) << 3) | u64::from(wt));
    for f in fields {
        match f {
            Field::Varint(n, v) => {
                key(out, *n, 0);
                put_varint(out, *v);
            }
            Field::I64(n, v) => {
                key(out, *n, 1);
                out.extend(v.to_le_bytes());
            }
            Field::I32(n, v) => {
                key(out, *n, 5);
                out.extend(v.to_le_bytes());
            }
            Field::Bytes(n, b) => {
                key(out, *n, 2);
                put_varint(out, b.len() as u64);
                out.extend_from_slice(b);
            }
            Field::Msg(n, inner) => {
                let mut body = Vec::new();
                encode_soup(inner, &mut body);
                key(out, *n, 2);
                put_varint(out, body.len() as u64);
                out.extend(body);
            }
            Field::Group(n, inner) => {
                key(out, *n, 3);
                encode_soup(inner, out);
                key(out, *n, 4);
            }
            Field::RawKey(n, w) => key(out, *n, *w),
        }
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    Set(prop::sample::Index, u8),
    Insert(prop::sample::Index, u8),
    Delete(prop::sample::Index),
    Truncate(prop::sample::Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        2 => (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        2 => any::<prop::sample::Index>().prop_map(Mutation::Delete),
        1 => any::<prop::sample::Index>().prop_map(Mutation::Truncate),
    ]
}

fn apply(buf: &mut Vec<u8>, m: &Mutation) {
    if buf.is_empty() {
        if let Mutation::Insert(_, b) = m {
            buf.push(*b);
        }
        return;
    }
    match m {
        Mutation::Set(i, b) => {
            let i = i.index(buf.len());
            buf[i] = *b;
        }
        Mutation::Insert(i, b) => {
            let i = i.index(buf.len() + 1);
            buf.insert(i, *b);
        }
        Mutation::Delete(i) => {
            let i = i.index(buf.len());
            buf.remove(i);
        }
        Mutation::Truncate(i) => {
            let i = i.index(buf.len());
            buf.truncate(i);
        }
    }
}

fn normalise_zero(v: f64) -> u64 {
    // proto3 omits 0.0 (and -0.0, which compares equal) on the wire
    if v == 0.0 {
        0
    } else {
        v.to_bits()
    }
}

// ---------------------------------------------------------------------
// properties
// ---------------------------------------------------------------------

/// Case count: `PROPTEST_CASES` if set (for long fuzzing runs, e.g.
/// `PROPTEST_CASES=100000 cargo test --release -p strata-remote-write`),
/// else a default that keeps `cargo test` quick.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(384), ..ProptestConfig::default() })]

    /// Our encoder writes prost's bytes, and both decoders read them the same.
    #[test]
    fn encoder_matches_prost_bytes((series, md) in request(false)) {
        let ours = encode_write_request(&series, &md);
        let theirs = to_pb(&series, &md).encode_to_vec();
        prop_assert_eq!(&ours, &theirs);
        assert_same_verdict(&ours)?;
    }

    /// Round trip through our encoder and decoder (histograms included).
    #[test]
    fn roundtrip_own_encoder((series, md) in request(true)) {
        let buf = encode_write_request(&series, &md);
        let req = WriteRequestRef::decode(&buf).unwrap();
        prop_assert_eq!(req.series_count(), series.len());
        for (view, s) in req.series().zip(&series) {
            prop_assert_eq!(own(view.labels()), s.labels.clone());
            let got: Vec<_> = view.samples().iter().map(|x| (x.timestamp, normalise_zero(x.value))).collect();
            let want: Vec<_> = s.samples.iter().map(|x| (x.timestamp, normalise_zero(x.value))).collect();
            prop_assert_eq!(got, want);
            let got: Vec<_> = view.exemplars().map(|e| (own(e.labels), normalise_zero(e.value), e.timestamp)).collect();
            let want: Vec<_> = s.exemplars.iter().map(|e| (e.labels.clone(), normalise_zero(e.value), e.timestamp)).collect();
            prop_assert_eq!(got, want);
            let got: Vec<_> = view.histograms().iter().map(|h| h.timestamp).collect();
            let want: Vec<_> = s.histograms.iter().map(|h| h.timestamp).collect();
            prop_assert_eq!(got, want);
            // histogram bytes match prost's view of the same fields
            let full = pb::TimeSeriesFullHistograms::decode(view.raw()).unwrap();
            for (h, o) in full.histograms.iter().zip(&s.histograms) {
                prop_assert_eq!(h.count.clone(), Some(pb::Count::Int(o.count)));
                prop_assert_eq!(normalise_zero(h.sum), normalise_zero(o.sum));
                prop_assert_eq!(h.schema, o.schema);
                prop_assert_eq!(normalise_zero(h.zero_threshold), normalise_zero(o.zero_threshold));
                prop_assert_eq!(h.zero_count.clone(), Some(pb::ZeroCount::Int(o.zero_count)));
                prop_assert_eq!(h.timestamp, o.timestamp);
            }
        }
        let md_back: Vec<OwnedMetadata> = req.metadata().iter().map(OwnedMetadata::from).collect();
        prop_assert_eq!(md_back, md);

        // forwarding raw series + metadata rebuilds the identical request
        let mut fwd = Vec::new();
        for v in req.series() {
            encode_series_raw_into(&mut fwd, v.raw());
        }
        for m in req.metadata() {
            encode_metadata_raw_into(&mut fwd, m.raw);
        }
        prop_assert_eq!(fwd, buf.clone());
        assert_same_verdict(&buf)?;
    }

    /// prost encodes, we decode.
    #[test]
    fn prost_encoded_decodes_identically((series, md) in request(true)) {
        let msg = to_pb(&series, &md);
        let buf = msg.encode_to_vec();
        let req = WriteRequestRef::decode(&buf).unwrap();
        // compare with prost's own decoding: -0.0 travels as (omitted) 0.0
        let back = pb::WriteRequest::decode(&buf[..]).unwrap();
        prop_assert_eq!(norm_mine(&req), norm_pb(&back));
        prop_assert_eq!(req.series_count(), msg.timeseries.len());
    }


    /// Snappy: round trip, limit at exactly the decoded length, corrupted
    /// bodies never panic.
    #[test]
    fn snappy_roundtrip_and_limit(
        (series, md) in request(false),
        muts in prop::collection::vec(mutation(), 0..3),
    ) {
        let raw = encode_write_request(&series, &md);
        let body = compress(&raw);
        prop_assert_eq!(decompress(&body, raw.len()).unwrap(), raw.clone());
        if !raw.is_empty() {
            prop_assert!(decompress(&body, raw.len() - 1).unwrap_err().is_too_large());
        }
        let mut bad = body.clone();
        for m in &muts {
            apply(&mut bad, m);
        }
        if let Ok(out) = decompress(&bad, 1 << 20) {
            let _ = WriteRequestRef::decode(&out);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(1024), ..ProptestConfig::default() })]

    /// Random field soup: wrong wire types, unknown fields, groups,
    /// invalid UTF-8, odd nesting. Same verdict and content as prost.
    #[test]
    fn soup_agrees_with_prost(fields in soup()) {
        let mut buf = Vec::new();
        encode_soup(&fields, &mut buf);
        assert_same_verdict(&buf)?;
    }

    /// Schema-guided soup with noise at every level: same verdict and
    /// content as prost.
    #[test]
    fn guided_soup_agrees_with_prost(fields in guided()) {
        let mut buf = Vec::new();
        encode_soup(&fields, &mut buf);
        assert_same_verdict(&buf)?;
    }

    /// Mutated and truncated valid requests: same verdict and content.
    #[test]
    fn mutations_agree_with_prost(
        (series, md) in request(true),
        muts in prop::collection::vec(mutation(), 1..4),
    ) {
        let mut buf = encode_write_request(&series, &md);
        for m in &muts {
            apply(&mut buf, m);
        }
        assert_same_verdict(&buf)?;
    }

    /// Arbitrary bytes never panic (and agree with prost).
    #[test]
    fn arbitrary_bytes_never_panic(buf in prop::collection::vec(any::<u8>(), 0..256)) {
        assert_same_verdict(&buf)?;
        let mut req = WriteRequestRef::new();
        let _ = req.decode_into(&buf);
        let _ = decompress(&buf, 1 << 16);
    }
}
