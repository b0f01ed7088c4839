//! JSON output byte-compatible with Prometheus's API: sample values as
//! strings formatted like Go's `strconv`, timestamps as float seconds with
//! millisecond precision, label sets as objects.

use std::fmt::Write;

use strata_model::Labels;
use strata_promql::{BucketSpan, FloatHistogram, Series, Value};

/// Appends a sample value the way Prometheus's JSON encoder writes it:
/// Go's shortest round-trip formatting, in exponent form (`1e-07`,
/// `1e+21`) below 1e-6 and from 1e21 on, and `NaN`, `+Inf`, `-Inf`.
pub fn push_float(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
        return;
    }
    if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
        return;
    }
    let abs = v.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        // Rust writes `1.5e-7`; Go writes `1.5e-07` (sign and at least two
        // exponent digits).
        let text = format!("{v:e}");
        let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
        let exponent: i32 = exponent.parse().unwrap_or(0);
        let sign = if exponent < 0 { '-' } else { '+' };
        let _ = write!(out, "{mantissa}e{sign}{:02}", exponent.unsigned_abs());
        return;
    }
    // Shortest round-trip digits without an exponent, like Go's 'f', -1.
    let _ = write!(out, "{v}");
}

/// A sample value as Prometheus formats it.
pub fn format_float(v: f64) -> String {
    let mut s = String::new();
    push_float(&mut s, v);
    s
}

/// Appends a millisecond timestamp as seconds: `1435781451.781`,
/// `1435781451` for whole seconds, and three decimals otherwise
/// (`1435781451.070`), as Prometheus writes them.
pub fn push_timestamp(out: &mut String, t_ms: i64) {
    if t_ms < 0 {
        out.push('-');
    }
    let abs = t_ms.unsigned_abs();
    let _ = write!(out, "{}", abs / 1000);
    let fraction = abs % 1000;
    if fraction != 0 {
        let _ = write!(out, ".{fraction:03}");
    }
}

pub fn format_timestamp(t_ms: i64) -> String {
    let mut s = String::new();
    push_timestamp(&mut s, t_ms);
    s
}

/// Appends a JSON string literal, escaping like Go's `encoding/json`
/// (including `<`, `>`, `&`, U+2028 and U+2029).
pub fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends a label set as a JSON object, in label name order.
pub fn push_labels(out: &mut String, labels: &Labels) {
    out.push('{');
    for (i, l) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_str(out, &l.name);
        out.push(':');
        push_json_str(out, &l.value);
    }
    out.push('}');
}

/// Appends `[<t>,"<v>"]`.
pub fn push_point(out: &mut String, t_ms: i64, v: f64) {
    out.push('[');
    push_timestamp(out, t_ms);
    out.push_str(",\"");
    push_float(out, v);
    out.push_str("\"]");
}

/// Appends a JSON array of strings.
pub fn push_str_array<S: AsRef<str>>(out: &mut String, items: &[S]) {
    out.push('[');
    for (i, s) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_str(out, s.as_ref());
    }
    out.push(']');
}

fn push_matrix_series(out: &mut String, s: &Series) {
    out.push_str("{\"metric\":");
    push_labels(out, &s.labels);
    // Prometheus writes `values` when there are float samples and
    // `histograms` when there are histogram samples.
    if !s.samples.is_empty() || s.histograms.is_empty() {
        out.push_str(",\"values\":[");
        for (i, (t, v)) in s.samples.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_point(out, *t, *v);
        }
        out.push(']');
    }
    if !s.histograms.is_empty() {
        out.push_str(",\"histograms\":[");
        for (i, (t, h)) in s.histograms.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_histogram_point(out, *t, h);
        }
        out.push(']');
    }
    out.push('}');
}

/// Appends `[<t>,{"count":"…","sum":"…","buckets":[…]}]`, Prometheus's
/// JSON for a native-histogram sample.
pub fn push_histogram_point(out: &mut String, t_ms: i64, h: &FloatHistogram) {
    out.push('[');
    push_timestamp(out, t_ms);
    out.push_str(",{\"count\":\"");
    push_float(out, h.count);
    out.push_str("\",\"sum\":\"");
    push_float(out, h.sum);
    out.push('"');
    let buckets = histogram_buckets(h);
    if !buckets.is_empty() {
        out.push_str(",\"buckets\":[");
        for (i, b) in buckets.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "[{},\"", b.boundaries);
            push_float(out, b.lower);
            out.push_str("\",\"");
            push_float(out, b.upper);
            out.push_str("\",\"");
            push_float(out, b.count);
            out.push_str("\"]");
        }
        out.push(']');
    }
    out.push_str("}]");
}

/// One bucket as the API shows it. `boundaries`: 0 = (lower, upper],
/// 1 = [lower, upper), 3 = [lower, upper].
#[derive(Debug, PartialEq)]
struct JsonBucket {
    boundaries: u8,
    lower: f64,
    upper: f64,
    count: f64,
}

/// Upper bound of exponential bucket `index` at `schema`: `2^(index /
/// 2^schema)`, saturating at the largest float like Prometheus.
fn bucket_bound(index: i32, schema: i32) -> f64 {
    let schema = schema.clamp(-4, 8);
    let (whole, frac) = if schema <= 0 {
        ((i64::from(index)) << (-schema), 0.0)
    } else {
        let per = 1i64 << schema;
        let idx = i64::from(index);
        (idx.div_euclid(per), idx.rem_euclid(per) as f64 / per as f64)
    };
    if whole >= 1024 {
        return f64::MAX;
    }
    if whole < -1100 {
        return 0.0;
    }
    2f64.powf(frac) * 2f64.powi(whole as i32)
}

/// Indexes and counts of the populated buckets of one side.
fn side_buckets(spans: &[BucketSpan], counts: &[f64]) -> Vec<(i32, f64)> {
    let mut out = Vec::new();
    let mut index = 0i32;
    let mut k = 0usize;
    for (n, span) in spans.iter().enumerate() {
        index = if n == 0 {
            span.offset
        } else {
            index.saturating_add(span.offset)
        };
        for _ in 0..span.length {
            let Some(&c) = counts.get(k) else {
                return out;
            };
            out.push((index, c));
            index = index.saturating_add(1);
            k += 1;
        }
    }
    out
}

/// All non-empty buckets in ascending order of value: negative ones, the
/// zero bucket, positive ones (Prometheus leaves empty buckets out).
fn histogram_buckets(h: &FloatHistogram) -> Vec<JsonBucket> {
    let mut out = Vec::new();
    for (index, count) in side_buckets(&h.negative_spans, &h.negative_buckets)
        .into_iter()
        .rev()
    {
        out.push(JsonBucket {
            boundaries: 1,
            lower: -bucket_bound(index, h.schema),
            upper: -bucket_bound(index.saturating_sub(1), h.schema),
            count,
        });
    }
    out.push(JsonBucket {
        boundaries: 3,
        lower: -h.zero_threshold,
        upper: h.zero_threshold,
        count: h.zero_count,
    });
    for (index, count) in side_buckets(&h.positive_spans, &h.positive_buckets) {
        out.push(JsonBucket {
            boundaries: 0,
            lower: bucket_bound(index.saturating_sub(1), h.schema),
            upper: bucket_bound(index, h.schema),
            count,
        });
    }
    out.retain(|b| b.count != 0.0);
    out
}

/// Appends the `data` of a query answer:
/// `{"resultType":"vector","result":[...]}`.
pub fn push_query_data(out: &mut String, value: &Value) {
    match value {
        Value::Scalar { t, v } => {
            out.push_str("{\"resultType\":\"scalar\",\"result\":");
            push_point(out, *t, *v);
            out.push('}');
        }
        Value::String { t, v } => {
            out.push_str("{\"resultType\":\"string\",\"result\":[");
            push_timestamp(out, *t);
            out.push(',');
            push_json_str(out, v);
            out.push_str("]}");
        }
        Value::Vector(samples) => {
            out.push_str("{\"resultType\":\"vector\",\"result\":[");
            for (i, s) in samples.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"metric\":");
                push_labels(out, &s.labels);
                match &s.histogram {
                    Some(h) => {
                        out.push_str(",\"histogram\":");
                        push_histogram_point(out, s.t, h);
                    }
                    None => {
                        out.push_str(",\"value\":");
                        push_point(out, s.t, s.v);
                    }
                }
                out.push('}');
            }
            out.push_str("]}");
        }
        Value::Matrix(series) => {
            out.push_str("{\"resultType\":\"matrix\",\"result\":[");
            for (i, s) in series.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_matrix_series(out, s);
            }
            out.push_str("]}");
        }
    }
}

/// A success answer, with Prometheus 3's keys in its order:
/// `{"status":"success","data":<data>}` plus `"warnings"` and `"infos"`,
/// each only when there are any. `data` is JSON already.
pub fn success_body(data: &str, warnings: &[String], infos: &[String]) -> String {
    let mut out = String::with_capacity(data.len() + 40);
    out.push_str("{\"status\":\"success\",\"data\":");
    out.push_str(data);
    if !warnings.is_empty() {
        out.push_str(",\"warnings\":");
        push_str_array(&mut out, warnings);
    }
    if !infos.is_empty() {
        out.push_str(",\"infos\":");
        push_str_array(&mut out, infos);
    }
    out.push('}');
    out
}

/// Most warnings, and most infos, one answer carries (Prometheus's API
/// sends ten of each).
pub const MAX_ANNOTATIONS: usize = 10;

/// Keeps the first [`MAX_ANNOTATIONS`] annotations and says how many more
/// there were, in Prometheus's words (`kind` is `warning` or `info`).
pub fn cap_annotations(mut items: Vec<String>, kind: &str) -> Vec<String> {
    if items.len() > MAX_ANNOTATIONS {
        let skipped = items.len() - MAX_ANNOTATIONS;
        items.truncate(MAX_ANNOTATIONS);
        items.push(format!("{skipped} more {kind} annotations omitted"));
    }
    items
}

/// An error answer: `{"status":"error","errorType":"...","error":"..."}`.
pub fn error_body(error_type: &str, message: &str) -> String {
    let mut out = String::with_capacity(message.len() + 60);
    out.push_str("{\"status\":\"error\",\"errorType\":");
    push_json_str(&mut out, error_type);
    out.push_str(",\"error\":");
    push_json_str(&mut out, message);
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_promql::VectorSample;

    #[test]
    fn floats_like_go() {
        let cases: &[(f64, &str)] = &[
            (0.0, "0"),
            (-0.0, "-0"),
            (1.0, "1"),
            (-2.5, "-2.5"),
            (0.1, "0.1"),
            (1.0 / 3.0, "0.3333333333333333"),
            (123456789.0, "123456789"),
            (1e20, "100000000000000000000"),
            (1e21, "1e+21"),
            (1.5e21, "1.5e+21"),
            (-1e22, "-1e+22"),
            (1e-6, "0.000001"),
            (1e-7, "1e-07"),
            (1.25e-7, "1.25e-07"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
            (9007199254740993.0, "9007199254740992"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
        ];
        for (v, want) in cases {
            assert_eq!(format_float(*v), *want, "{v:?}");
        }
        // The staleness marker is a NaN too.
        assert_eq!(
            format_float(f64::from_bits(strata_model::STALE_NAN_BITS)),
            "NaN"
        );
    }

    #[test]
    fn timestamps_as_seconds() {
        let cases: &[(i64, &str)] = &[
            (1_435_781_451_781, "1435781451.781"),
            (1_435_781_451_000, "1435781451"),
            (1_435_781_451_070, "1435781451.070"),
            (1_435_781_451_100, "1435781451.100"),
            (1_435_781_451_001, "1435781451.001"),
            (0, "0"),
            (5, "0.005"),
            (-1500, "-1.500"),
            (-1000, "-1"),
            (i64::MIN, "-9223372036854775.808"),
        ];
        for (t, want) in cases {
            assert_eq!(format_timestamp(*t), *want, "{t}");
        }
    }

    #[test]
    fn strings_escape_like_go() {
        let mut s = String::new();
        push_json_str(&mut s, "a\"b\\c\nd<e>&\u{1}é\u{2028}");
        assert_eq!(s, r#""a\"b\\c\nd\u003ce\u003e\u0026\u0001é\u2028""#);
        let v: String = serde_json::from_str(&s).unwrap();
        assert_eq!(v, "a\"b\\c\nd<e>&\u{1}é\u{2028}");
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied())
    }

    fn data(v: &Value) -> String {
        let mut s = String::new();
        push_query_data(&mut s, v);
        // Every output is valid JSON.
        serde_json::from_str::<serde_json::Value>(&s).unwrap();
        s
    }

    #[test]
    fn result_shapes() {
        assert_eq!(
            data(&Value::Scalar { t: 1500, v: 2.0 }),
            r#"{"resultType":"scalar","result":[1.500,"2"]}"#
        );
        assert_eq!(
            data(&Value::String {
                t: 1000,
                v: "hi".into()
            }),
            r#"{"resultType":"string","result":[1,"hi"]}"#
        );
        assert_eq!(
            data(&Value::Vector(vec![
                VectorSample::float(
                    labels(&[("job", "a"), ("__name__", "up")]),
                    1_435_781_451_781,
                    1.0
                ),
                VectorSample::float(Labels::default(), 1_435_781_451_781, f64::NAN)
            ])),
            r#"{"resultType":"vector","result":[{"metric":{"__name__":"up","job":"a"},"value":[1435781451.781,"1"]},{"metric":{},"value":[1435781451.781,"NaN"]}]}"#
        );
        assert_eq!(
            data(&Value::Matrix(vec![Series::floats(
                labels(&[("__name__", "up")]),
                vec![(1000, 1.0), (16000, f64::INFINITY)]
            )])),
            r#"{"resultType":"matrix","result":[{"metric":{"__name__":"up"},"values":[[1,"1"],[16,"+Inf"]]}]}"#
        );
        assert_eq!(
            data(&Value::Vector(vec![])),
            r#"{"resultType":"vector","result":[]}"#
        );
    }

    #[test]
    fn envelopes() {
        assert_eq!(
            success_body("[]", &[], &[]),
            r#"{"status":"success","data":[]}"#
        );
        assert_eq!(
            success_body("[]", &["results truncated due to limit".to_string()], &[]),
            r#"{"status":"success","data":[],"warnings":["results truncated due to limit"]}"#
        );
        assert_eq!(
            success_body("[]", &[], &["PromQL info: x".to_string()]),
            r#"{"status":"success","data":[],"infos":["PromQL info: x"]}"#
        );
        assert_eq!(
            success_body("1", &["w\"".to_string()], &["i".to_string()]),
            r#"{"status":"success","data":1,"warnings":["w\""],"infos":["i"]}"#
        );
        assert_eq!(
            error_body("bad_data", "invalid parameter \"query\""),
            r#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\""}"#
        );
    }

    #[test]
    fn annotations_are_capped_like_prometheus() {
        let few: Vec<String> = (0..10).map(|i| i.to_string()).collect();
        assert_eq!(cap_annotations(few.clone(), "warning"), few);
        let many: Vec<String> = (0..13).map(|i| i.to_string()).collect();
        let capped = cap_annotations(many, "info");
        assert_eq!(capped.len(), 11);
        assert_eq!(capped[..10], few[..]);
        assert_eq!(capped[10], "3 more info annotations omitted");
    }

    #[test]
    fn native_histograms_like_prometheus() {
        use std::sync::Arc;
        // Schema 0: bucket i is (2^(i-1), 2^i]; zero bucket [-0.001, 0.001].
        let h = Arc::new(FloatHistogram {
            schema: 0,
            zero_threshold: 0.001,
            zero_count: 2.0,
            count: 9.0,
            sum: 12.5,
            positive_spans: vec![
                BucketSpan {
                    offset: 0,
                    length: 2,
                },
                BucketSpan {
                    offset: 1,
                    length: 1,
                },
            ],
            positive_buckets: vec![1.0, 0.0, 3.0],
            negative_spans: vec![BucketSpan {
                offset: 1,
                length: 1,
            }],
            negative_buckets: vec![3.0],
        });
        let vector = Value::Vector(vec![VectorSample {
            labels: labels(&[("__name__", "h")]),
            t: 1000,
            v: 0.0,
            histogram: Some(h.clone()),
        }]);
        assert_eq!(
            data(&vector),
            r#"{"resultType":"vector","result":[{"metric":{"__name__":"h"},"histogram":[1,{"count":"9","sum":"12.5","buckets":[[1,"-2","-1","3"],[3,"-0.001","0.001","2"],[0,"0.5","1","1"],[0,"4","8","3"]]}]}]}"#
        );
        let matrix = Value::Matrix(vec![Series {
            labels: labels(&[("__name__", "h")]),
            samples: vec![],
            histograms: vec![(1000, h), (2000, Arc::new(FloatHistogram::default()))],
        }]);
        assert_eq!(
            data(&matrix),
            r#"{"resultType":"matrix","result":[{"metric":{"__name__":"h"},"histograms":[[1,{"count":"9","sum":"12.5","buckets":[[1,"-2","-1","3"],[3,"-0.001","0.001","2"],[0,"0.5","1","1"],[0,"4","8","3"]]}],[2,{"count":"0","sum":"0"}]]}]}"#
        );
        // Finer schemas: boundaries are powers of 2^(1/2^schema).
        assert_eq!(bucket_bound(0, 3), 1.0);
        assert_eq!(bucket_bound(8, 3), 2.0);
        assert!((bucket_bound(1, 3) - 2f64.powf(0.125)).abs() < 1e-15);
        assert_eq!(bucket_bound(-8, 3), 0.5);
        assert_eq!(bucket_bound(2000, 0), f64::MAX);
    }
}
