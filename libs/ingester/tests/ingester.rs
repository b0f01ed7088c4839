//! The ingester's push and query paths, limits and Prometheus's sample rules.

use strata_ingester::{Ingester, IngesterConfig, IngesterError, IngesterMetrics, Limits};
use strata_model::{MatchOp, Matcher};
use strata_remote_write::{encode_write_request, OwnedTimeSeries, Sample};

fn ts(labels: &[(&str, &str)], samples: &[(i64, f64)]) -> OwnedTimeSeries {
    OwnedTimeSeries::new(
        labels.iter().map(|(n, v)| (n.to_string(), v.to_string())),
        samples
            .iter()
            .map(|&(timestamp, value)| Sample { timestamp, value }),
    )
}

fn body(series: &[OwnedTimeSeries]) -> Vec<u8> {
    encode_write_request(series, &[])
}

fn ingester(config: IngesterConfig) -> Ingester {
    Ingester::new(config, IngesterMetrics::default())
}

fn eq(name: &str, value: &str) -> Matcher {
    Matcher::new(MatchOp::Equal, name, value).unwrap()
}

fn samples_of(
    ing: &Ingester,
    tenant: &str,
    matchers: &[Matcher],
) -> Vec<(String, Vec<(i64, f64)>)> {
    ing.query(tenant, matchers, i64::MIN, i64::MAX)
        .into_iter()
        .map(|s| {
            let samples = s
                .chunks
                .iter()
                .flat_map(|c| strata_chunk::XorIterator::new(&c.data).collect::<Vec<_>>())
                .collect();
            (s.labels.to_string(), samples)
        })
        .collect()
}

#[test]
fn push_then_query_returns_exact_samples() {
    let ing = ingester(IngesterConfig::default());
    let stale = f64::from_bits(strata_model::STALE_NAN_BITS);
    let out = ing
        .push(
            "t1",
            &body(&[
                ts(
                    &[("__name__", "up"), ("job", "a")],
                    &[(1000, 1.0), (2000, stale)],
                ),
                ts(
                    &[("__name__", "up"), ("job", "b")],
                    &[(1000, f64::INFINITY)],
                ),
            ]),
        )
        .unwrap();
    assert_eq!(out.appended, 3);
    assert_eq!(out.rejected, 0);
    let got = samples_of(&ing, "t1", &[eq("__name__", "up"), eq("job", "a")]);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, "up{job=\"a\"}");
    assert_eq!(got[0].1[0], (1000, 1.0));
    assert!(
        strata_model::is_stale_nan(got[0].1[1].1),
        "stale marker kept bit-exact"
    );
    // A selector without a metric name.
    let got = samples_of(&ing, "t1", &[eq("job", "b")]);
    assert_eq!(
        got,
        vec![("up{job=\"b\"}".to_string(), vec![(1000, f64::INFINITY)])]
    );
    // Tenants are isolated.
    assert!(samples_of(&ing, "t2", &[eq("__name__", "up")]).is_empty());
    assert_eq!(ing.stats("t1").series, 2);
    assert_eq!(ing.stats("t1").samples_appended, 3);
}

#[test]
fn unsorted_labels_and_empty_values_map_to_one_series() {
    let ing = ingester(IngesterConfig::default());
    ing.push(
        "t",
        &body(&[
            ts(&[("job", "a"), ("__name__", "m")], &[(1, 1.0)]),
            ts(&[("__name__", "m"), ("job", "a"), ("x", "")], &[(2, 2.0)]),
        ]),
    )
    .unwrap();
    let got = samples_of(&ing, "t", &[eq("__name__", "m")]);
    assert_eq!(
        got,
        vec![("m{job=\"a\"}".to_string(), vec![(1, 1.0), (2, 2.0)])]
    );
}

#[test]
fn out_of_order_and_duplicates_are_rejected_without_corruption() {
    let ing = ingester(IngesterConfig::default());
    let s = |samples: &[(i64, f64)]| body(&[ts(&[("__name__", "m")], samples)]);
    ing.push("t", &s(&[(10, 1.0), (20, 2.0)])).unwrap();
    let out = ing.push("t", &s(&[(15, 9.0)])).unwrap();
    assert_eq!((out.appended, out.rejected), (0, 1));
    assert!(out.first_rejection.unwrap().contains("sample_out_of_order"));
    let out = ing.push("t", &s(&[(20, 3.0)])).unwrap();
    assert!(out
        .first_rejection
        .unwrap()
        .contains("new_value_for_timestamp"));
    // An exact repeat is accepted and not stored twice.
    let out = ing.push("t", &s(&[(20, 2.0), (30, 3.0)])).unwrap();
    assert_eq!((out.appended, out.rejected), (1, 0));
    let got = samples_of(&ing, "t", &[eq("__name__", "m")]);
    assert_eq!(got[0].1, vec![(10, 1.0), (20, 2.0), (30, 3.0)]);
}

#[test]
fn chunks_are_cut_and_range_queries_pick_overlapping_chunks() {
    let ing = ingester(IngesterConfig {
        max_samples_per_chunk: 10,
        ..IngesterConfig::default()
    });
    let samples: Vec<(i64, f64)> = (0..35).map(|i| (i * 1000, i as f64)).collect();
    ing.push("t", &body(&[ts(&[("__name__", "m")], &samples)]))
        .unwrap();
    let all = ing.query("t", &[eq("__name__", "m")], i64::MIN, i64::MAX);
    assert_eq!(all[0].chunks.len(), 4);
    let some = ing.query("t", &[eq("__name__", "m")], 12_000, 15_000);
    assert_eq!(some[0].chunks.len(), 1);
    assert_eq!(
        (some[0].chunks[0].min_time, some[0].chunks[0].max_time),
        (10_000, 19_000)
    );
    assert!(ing
        .query("t", &[eq("__name__", "m")], 40_000, 50_000)
        .is_empty());
}

/// Chunks of each series matching `name`, as (min_time, max_time).
fn chunk_spans(ing: &Ingester, tenant: &str, name: &str) -> Vec<(i64, i64)> {
    let got = ing.query(tenant, &[eq("__name__", name)], i64::MIN, i64::MAX);
    assert_eq!(got.len(), 1, "{name}");
    got[0]
        .chunks
        .iter()
        .map(|c| (c.min_time, c.max_time))
        .collect()
}

#[test]
fn chunk_age_sweep_closes_heads_whose_window_is_over() {
    let window = 60_000;
    let metrics = IngesterMetrics::default();
    let ing = Ingester::new(
        IngesterConfig {
            max_chunk_age: std::time::Duration::from_millis(window as u64),
            ..IngesterConfig::default()
        },
        metrics.clone(),
    );
    // t0 is 30 s into a window that ends at `end`.
    let t0 = 1_700_000_010_000;
    let end = t0 - t0 % window + window;
    assert_eq!(end - t0, 30_000);
    // "idle" got one sample at t0 and nothing since; "late" is in the next
    // window. Another tenant's idle series is swept too.
    ing.push("a", &body(&[ts(&[("__name__", "idle")], &[(t0, 1.0)])]))
        .unwrap();
    ing.push("b", &body(&[ts(&[("__name__", "idle")], &[(t0, 1.0)])]))
        .unwrap();
    ing.push(
        "a",
        &body(&[ts(&[("__name__", "late")], &[(end + 1000, 1.0)])]),
    )
    .unwrap();

    // Not yet: the window is one millisecond short of over.
    let out = ing.cut_aged_chunks(end - 1);
    assert_eq!((out.series_checked, out.chunks_cut), (3, 0));

    let out = ing.cut_aged_chunks(end);
    assert_eq!(out.chunks_cut, 2, "{out:?}");
    assert_eq!(metrics.chunks_cut_by_age_sweep.get(), 2);
    assert_eq!(metrics.chunk_age_sweeps.get(), 2);

    // A late sample of the same window opens a second chunk there.
    ing.push(
        "a",
        &body(&[ts(&[("__name__", "idle")], &[(t0 + 1000, 2.0)])]),
    )
    .unwrap();
    assert_eq!(
        chunk_spans(&ing, "a", "idle"),
        vec![(t0, t0), (t0 + 1000, t0 + 1000)]
    );
    // The next window's head stays open until its window is over.
    assert_eq!(ing.cut_aged_chunks(end + window - 1).chunks_cut, 1);
    assert_eq!(ing.cut_aged_chunks(end + window).chunks_cut, 1);
    assert_eq!(
        chunk_spans(&ing, "a", "late"),
        vec![(end + 1000, end + 1000)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunk_age_sweep_runs_periodically_until_stopped() {
    let metrics = IngesterMetrics::default();
    let ing = std::sync::Arc::new(Ingester::new(
        IngesterConfig {
            max_chunk_age: std::time::Duration::from_secs(60),
            chunk_age_check_period: std::time::Duration::from_millis(20),
            ..IngesterConfig::default()
        },
        metrics.clone(),
    ));
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    ing.push(
        "t",
        &body(&[ts(&[("__name__", "old")], &[(now_ms - 120_000, 1.0)])]),
    )
    .unwrap();
    ing.push("t", &body(&[ts(&[("__name__", "new")], &[(now_ms, 1.0)])]))
        .unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(ing.clone().run_chunk_age_sweep(async {
        let _ = stop_rx.await;
    }));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while metrics.chunk_age_sweeps.get() < 3 {
        assert!(std::time::Instant::now() < deadline, "sweep did not run");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(metrics.chunks_cut_by_age_sweep.get(), 1);
    stop_tx.send(()).unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(5), task)
        .await
        .expect("sweep stops when told")
        .unwrap();

    // A zero period disables the sweep.
    let off = std::sync::Arc::new(Ingester::new(
        IngesterConfig {
            chunk_age_check_period: std::time::Duration::ZERO,
            ..IngesterConfig::default()
        },
        IngesterMetrics::default(),
    ));
    tokio::time::timeout(
        std::time::Duration::from_secs(1),
        off.run_chunk_age_sweep(std::future::pending()),
    )
    .await
    .expect("returns at once");
}

#[test]
fn per_tenant_and_per_metric_series_limits() {
    let ing = ingester(IngesterConfig {
        limits: Limits {
            max_series_per_tenant: 3,
            max_series_per_metric: 2,
            ..Limits::default()
        },
        ..IngesterConfig::default()
    });
    let series: Vec<OwnedTimeSeries> = (0..3)
        .map(|i| ts(&[("__name__", "a"), ("i", &i.to_string())], &[(1, 1.0)]))
        .collect();
    let out = ing.push("t", &body(&series)).unwrap();
    assert_eq!((out.appended, out.rejected), (2, 1));
    assert!(out.first_rejection.unwrap().contains("for one metric name"));
    let series: Vec<OwnedTimeSeries> = (0..3)
        .map(|i| ts(&[("__name__", "b"), ("i", &i.to_string())], &[(1, 1.0)]))
        .collect();
    let out = ing.push("t", &body(&series)).unwrap();
    assert_eq!((out.appended, out.rejected), (1, 2));
    assert!(out.first_rejection.unwrap().contains("limit of 3 series"));
    // Existing series still take samples at the limit.
    let out = ing
        .push(
            "t",
            &body(&[ts(&[("__name__", "a"), ("i", "0")], &[(2, 2.0)])]),
        )
        .unwrap();
    assert_eq!(out.appended, 1);
    // Another tenant is unaffected.
    assert_eq!(ing.push("u", &body(&series)).unwrap().appended, 2);
}

#[test]
fn instance_series_limit_is_a_retryable_error() {
    let ing = ingester(IngesterConfig {
        max_series: 2,
        ..IngesterConfig::default()
    });
    let series: Vec<OwnedTimeSeries> = (0..3)
        .map(|i| ts(&[("__name__", "a"), ("i", &i.to_string())], &[(1, 1.0)]))
        .collect();
    let err = ing.push("t", &body(&series)).unwrap_err();
    assert!(matches!(
        err,
        IngesterError::InstanceSeriesLimit { limit: 2 }
    ));
    let status: tonic::Status = err.into();
    assert_eq!(status.code(), tonic::Code::Unavailable);
    assert_eq!(ing.series_count(), 2);
    // A retry of the same request stores nothing twice and still fails.
    assert!(ing.push("t", &body(&series)).is_err());
    assert_eq!(ing.stats("t").samples_appended, 2);
}

#[test]
fn bad_bytes_and_bad_tenants_are_invalid_argument() {
    let ing = ingester(IngesterConfig::default());
    let err = ing.push("t", &[0x0a, 0x50, 0x01]).unwrap_err();
    assert_eq!(
        tonic::Status::from(err).code(),
        tonic::Code::InvalidArgument
    );
    let err = ing
        .push("a/b", &body(&[ts(&[("__name__", "m")], &[(1, 1.0)])]))
        .unwrap_err();
    assert_eq!(
        tonic::Status::from(err).code(),
        tonic::Code::InvalidArgument
    );
}

#[test]
fn label_names_values_and_series() {
    let ing = ingester(IngesterConfig::default());
    ing.push(
        "t",
        &body(&[
            ts(&[("__name__", "a"), ("job", "x")], &[(10, 1.0)]),
            ts(
                &[("__name__", "b"), ("env", "p"), ("job", "y")],
                &[(100, 1.0)],
            ),
        ]),
    )
    .unwrap();
    assert_eq!(
        ing.label_names("t", &[], 0, 1000),
        vec!["__name__", "env", "job"]
    );
    assert_eq!(
        ing.label_names("t", &[eq("__name__", "a")], 0, 1000),
        vec!["__name__", "job"]
    );
    assert_eq!(ing.label_values("t", "job", &[], 0, 1000), vec!["x", "y"]);
    assert_eq!(
        ing.label_values("t", "job", &[eq("env", "p")], 0, 1000),
        vec!["y"]
    );
    // Time ranges filter series by their samples.
    let series = ing.series("t", &[eq("job", "x")], 0, 50, 0);
    assert_eq!(series.len(), 1);
    assert!(ing.series("t", &[eq("job", "x")], 50, 60, 0).is_empty());
    let all = Matcher::new(MatchOp::RegexMatch, "__name__", ".+").unwrap();
    assert_eq!(ing.series("t", &[all], 0, 1000, 1).len(), 1, "limit");
}

fn md(
    name: &str,
    metric_type: strata_remote_write::MetricType,
    help: &str,
) -> strata_remote_write::OwnedMetadata {
    strata_remote_write::OwnedMetadata {
        metric_type,
        metric_family_name: name.to_string(),
        help: help.to_string(),
        unit: String::new(),
    }
}

#[test]
fn metadata_keeps_the_latest_per_family_within_the_limit() {
    use strata_remote_write::MetricType;
    let ing = ingester(IngesterConfig {
        limits: Limits {
            max_metadata_per_tenant: 2,
            ..Limits::default()
        },
        ..IngesterConfig::default()
    });
    let first = encode_write_request(
        &[],
        &[
            md("a_total", MetricType::Counter, "old help"),
            md("b", MetricType::Gauge, "b help"),
        ],
    );
    ing.push("t1", &first).unwrap();
    // An update of a known family is kept; a third family is over the limit.
    let second = encode_write_request(
        &[],
        &[
            md("a_total", MetricType::Counter, "new help"),
            md("c", MetricType::Summary, "c help"),
        ],
    );
    ing.push("t1", &second).unwrap();
    let all = ing.metadata("t1", None, 0);
    let names: Vec<&str> = all.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["a_total", "b"]);
    assert_eq!(all[0].1.help, "new help");
    assert_eq!(all[0].1.metric_type, MetricType::Counter.as_i32());
    assert_eq!(ing.metadata("t1", Some("b"), 0).len(), 1);
    assert!(ing.metadata("t1", Some("c"), 0).is_empty());
    assert_eq!(ing.metadata("t1", None, 1).len(), 1);
    // Other tenants see nothing.
    assert!(ing.metadata("t2", None, 0).is_empty());
}
