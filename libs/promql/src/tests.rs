//! Unit tests of tricky semantics, driven through the public API.

use std::time::Duration;

use strata_model::{Labels, STALE_NAN_BITS};

use crate::promqltest::MemStorage;
use crate::{Engine, EngineOptions, QueryError, Value};

fn engine() -> Engine {
    Engine::new(EngineOptions::default())
}

fn storage() -> MemStorage {
    let mut s = MemStorage::new();
    s.add(
        Labels::from_pairs([("__name__", "m"), ("job", "a")]),
        vec![
            (0, 1.0),
            (60_000, 2.0),
            (120_000, f64::from_bits(STALE_NAN_BITS)),
            (180_000, 4.0),
        ],
    );
    s.add(
        Labels::from_pairs([("__name__", "n"), ("job", "a")]),
        vec![(0, 10.0)],
    );
    s
}

fn vector(v: Value) -> Vec<(String, f64)> {
    match v {
        Value::Vector(s) => s.into_iter().map(|x| (x.labels.to_string(), x.v)).collect(),
        other => panic!("expected a vector, got {other:?}"),
    }
}

#[test]
fn select_requests_cover_lookback_offset_at_and_subqueries() {
    let e = engine();
    let r = e.select_requests("m", 1_000_000, 2_000_000).unwrap();
    assert_eq!(
        (r[0].start_ms, r[0].end_ms),
        (1_000_000 - 300_000 + 1, 2_000_000)
    );
    let r = e
        .select_requests("rate(m[1m] offset 1m)", 1_000_000, 1_000_000)
        .unwrap();
    assert_eq!(
        (r[0].start_ms, r[0].end_ms),
        (1_000_000 - 120_000 + 1, 940_000)
    );
    let r = e.select_requests("m @ 50", 1_000_000, 2_000_000).unwrap();
    assert_eq!((r[0].start_ms, r[0].end_ms), (50_000 - 300_000 + 1, 50_000));
    let r = e
        .select_requests("max_over_time(m[10m:1m])", 1_000_000, 1_000_000)
        .unwrap();
    // Subquery steps at 420s..1000s (aligned, after 400s), each with lookback.
    assert_eq!(
        (r[0].start_ms, r[0].end_ms),
        (420_000 - 300_000 + 1, 1_000_000)
    );
    let r = e.select_requests("{job=\"a\"} or m", 0, 0).unwrap();
    assert_eq!(r.len(), 2);
}

#[test]
fn stale_marker_ends_series_and_lookback_is_left_open() {
    let (e, s) = (engine(), storage());
    assert_eq!(
        vector(e.instant(&s, "m", 60_000).unwrap()),
        vec![("m{job=\"a\"}".into(), 2.0)]
    );
    assert!(vector(e.instant(&s, "m", 150_000).unwrap()).is_empty());
    assert_eq!(vector(e.instant(&s, "n", 299_999).unwrap()).len(), 1);
    assert!(vector(e.instant(&s, "n", 300_000).unwrap()).is_empty());
    // Range selectors are left-open and skip the stale marker.
    assert_eq!(
        vector(e.instant(&s, "count_over_time(m[3m])", 180_000).unwrap())[0].1,
        2.0
    );
}

#[test]
fn range_query_matches_instant_queries_at_each_step() {
    let (e, s) = (engine(), storage());
    for q in [
        "m",
        "m offset -1m",
        "sum(m) + 1",
        "m @ 60",
        "max_over_time(m[2m:30s])",
        "time()",
    ] {
        let Value::Matrix(series) = e.range(&s, q, 0, 240_000, 30_000).unwrap() else {
            panic!("range query must give a matrix");
        };
        for t in (0..=240_000).step_by(30_000) {
            let from_range: Vec<f64> = series
                .iter()
                .filter_map(|x| x.samples.iter().find(|p| p.0 == t).map(|p| p.1))
                .collect();
            let from_instant: Vec<f64> = match e.instant(&s, q, t).unwrap() {
                Value::Vector(v) => v.iter().map(|x| x.v).collect(),
                Value::Scalar { v, .. } => vec![v],
                other => panic!("{other:?}"),
            };
            assert_eq!(from_range, from_instant, "{q} at {t}");
        }
    }
}

#[test]
fn delayed_name_removal_collisions_fail_at_the_end() {
    let (e, s) = (engine(), storage());
    let err = e.instant(&s, "-{job=\"a\"}", 0).unwrap_err();
    assert_eq!(
        err.to_string(),
        "vector cannot contain metrics with the same labelset"
    );
    // label_replace can keep the name.
    let v = vector(
        e.instant(
            &s,
            "label_replace(-{job=\"a\"}, \"__name__\", \"x_$1\", \"__name__\", \"(.*)\")",
            0,
        )
        .unwrap(),
    );
    assert_eq!(v.len(), 2);
}

#[test]
fn limits_and_errors() {
    let s = storage();
    let tiny = Engine::new(EngineOptions {
        max_samples: 2,
        ..EngineOptions::default()
    });
    assert!(matches!(
        tiny.range(&s, "m", 0, 240_000, 10_000),
        Err(QueryError::TooManySamples(_))
    ));
    let no_time = Engine::new(EngineOptions {
        timeout: Duration::ZERO,
        ..EngineOptions::default()
    });
    assert!(matches!(
        no_time.instant(&s, "m", 0),
        Err(QueryError::Timeout(_))
    ));
    let e = engine();
    let err = e.range(&s, "m[1m]", 0, 60_000, 10_000).unwrap_err();
    assert_eq!(err.error_type(), "bad_data");
    assert!(matches!(
        e.instant(&s, "sum(", 0),
        Err(QueryError::BadData(_))
    ));
    assert!(matches!(
        e.range(&s, "m", 0, 60_000, 0),
        Err(QueryError::BadData(_))
    ));
}

#[test]
fn subquery_steps_are_aligned_to_absolute_multiples() {
    assert_eq!(crate::plan::subquery_start(100_000, 60_000, 20_000), 60_000);
    assert_eq!(crate::plan::subquery_start(65_000, 60_000, 20_000), 20_000);
    // Go's truncating division for negative times.
    assert_eq!(
        crate::plan::subquery_start(-10_000, 60_000, 20_000),
        -60_000
    );
}

#[test]
fn go_style_template_expansion() {
    let re = regex::Regex::new("^(?s:(?P<a>x)(y))$").unwrap();
    let caps = re.captures("xy").unwrap();
    let expand = |t: &str| crate::functions::expand_template(t, &caps, &re);
    assert_eq!(expand("$1-$2"), "x-y");
    assert_eq!(expand("${a}z"), "xz");
    assert_eq!(expand("$az"), "");
    assert_eq!(expand("$$1"), "$1");
    assert_eq!(expand("${1}0"), "x0");
}

#[test]
fn go_number_formatting() {
    use crate::aggregate::{format_go_float, format_go_g};
    assert_eq!(format_go_float(1e21), "1000000000000000000000");
    assert_eq!(format_go_float(0.1), "0.1");
    assert_eq!(format_go_float(f64::INFINITY), "+Inf");
    assert_eq!(format_go_g(f64::NAN), "NaN");
    assert_eq!(format_go_g(1.1), "1.1");
    assert_eq!(format_go_g(1e21), "1e+21");
}

#[test]
fn lookback_delta_is_configurable() {
    let mut s = MemStorage::new();
    s.add(
        Labels::from_pairs([("__name__", "old")]),
        vec![(1_000_000 - 120_000, 1.0)],
    );
    s.add(
        Labels::from_pairs([("__name__", "recent")]),
        vec![(1_000_000 - 30_000, 2.0)],
    );
    let t = 1_000_000;
    let one_minute = Engine::new(EngineOptions {
        lookback_delta: Duration::from_secs(60),
        ..EngineOptions::default()
    });
    // A sample 2m old is beyond a 1m lookback; one 30s old is within it.
    assert!(vector(one_minute.instant(&s, "old", t).unwrap()).is_empty());
    assert_eq!(
        vector(one_minute.instant(&s, "recent", t).unwrap()),
        vec![("recent{}".to_string(), 2.0)]
    );
    // The window is left-open: exactly 1m old is out, just under is in.
    assert!(vector(one_minute.instant(&s, "recent", t + 30_000).unwrap()).is_empty());
    assert_eq!(
        vector(one_minute.instant(&s, "recent", t + 29_999).unwrap()).len(),
        1
    );
    // The same data with the default 5m lookback: both are found.
    let default = engine();
    assert_eq!(vector(default.instant(&s, "old", t).unwrap()).len(), 1);
    assert_eq!(vector(default.instant(&s, "recent", t).unwrap()).len(), 1);
    // Range queries and the data the engine asks storage for follow it too.
    let Value::Matrix(m) = one_minute.range(&s, "old", t - 120_000, t, 30_000).unwrap() else {
        panic!("range query must give a matrix");
    };
    let times: Vec<i64> = m[0].samples.iter().map(|p| p.0).collect();
    assert_eq!(times, [t - 120_000, t - 90_000]);
    let r = one_minute.select_requests("old", t, t).unwrap();
    assert_eq!((r[0].start_ms, r[0].end_ms), (t - 60_000 + 1, t));
}

#[test]
fn parallelism_is_capped_at_the_cores() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(engine().parallelism(), cores);
    assert_eq!(engine().with_parallelism(0).parallelism(), cores);
    assert_eq!(engine().with_parallelism(1).parallelism(), 1);
    assert_eq!(engine().with_parallelism(1000).parallelism(), cores);
}

/// Many series over many steps, so work is split for real.
fn wide_storage() -> MemStorage {
    let mut s = MemStorage::new();
    for i in 0..300 {
        s.add(
            Labels::from_pairs([
                ("__name__", "c_total".to_string()),
                ("g", (i % 7).to_string()),
                ("le", ["0.1", "1", "+Inf"][i % 3].to_string()),
                ("i", i.to_string()),
            ]),
            (0..200).map(move |k| (k * 15_000, (k * (i as i64 % 5 + 1)) as f64)),
        );
    }
    s
}

#[test]
fn split_evaluation_gives_the_serial_answer_and_respects_limits() {
    let s = wide_storage();
    let serial = engine().with_parallelism(1);
    let split = engine().with_forced_parts(3);
    for q in [
        "sum by (g) (rate(c_total[5m]))",
        "histogram_quantile(0.9, sum by (le, g) (rate(c_total[5m])))",
        "avg without (i) (c_total)",
        "count(c_total > 100)",
    ] {
        let a = serial
            .range_query(&s, q, 600_000, 2_900_000, 30_000)
            .unwrap();
        let b = split
            .range_query(&s, q, 600_000, 2_900_000, 30_000)
            .unwrap();
        assert_eq!(format!("{a:?}"), format!("{b:?}"), "{q}");
        let a = serial.instant_query(&s, q, 2_000_000).unwrap();
        let b = split.instant_query(&s, q, 2_000_000).unwrap();
        assert_eq!(format!("{a:?}"), format!("{b:?}"), "{q}");
    }
    let tiny = Engine::new(EngineOptions {
        max_samples: 5_000,
        ..EngineOptions::default()
    })
    .with_forced_parts(3);
    assert!(matches!(
        tiny.range(&s, "sum(rate(c_total[5m]))", 600_000, 2_900_000, 30_000),
        Err(QueryError::TooManySamples(_))
    ));
    let pool = std::sync::Arc::new(crate::MemoryPool::new(0));
    let pooled = Engine::new(EngineOptions {
        memory_pool: Some(pool.clone()),
        ..EngineOptions::default()
    })
    .with_forced_parts(3);
    pooled
        .range(
            &s,
            "sum by (g) (rate(c_total[5m]))",
            600_000,
            2_900_000,
            30_000,
        )
        .unwrap();
    assert_eq!(pool.used(), 0, "every part gave its memory back");
    let cancel = crate::CancelFlag::new();
    cancel.cancel();
    let canceled = Engine::new(EngineOptions {
        cancel: Some(cancel),
        ..EngineOptions::default()
    })
    .with_forced_parts(3);
    assert!(matches!(
        canceled.range(&s, "sum(rate(c_total[5m]))", 600_000, 2_900_000, 30_000),
        Err(QueryError::Canceled(_))
    ));
}
