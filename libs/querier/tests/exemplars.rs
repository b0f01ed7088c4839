//! Exemplar reads against real ingester gRPC servers: replicas merged
//! without duplicates, one unavailable replica tolerated, tenants apart.

mod support;

use strata_model::{Labels, MatchOp, Matcher};
use strata_remote_write::{OwnedExemplar, OwnedTimeSeries};
use support::{reader, ring_of, three, ts};

fn with_exemplars(
    labels: &[(&str, &str)],
    samples: &[(i64, f64)],
    exemplars: &[(&str, f64, i64)],
) -> OwnedTimeSeries {
    let mut s = ts(labels, samples);
    s.exemplars = exemplars
        .iter()
        .map(|&(id, value, timestamp)| OwnedExemplar {
            labels: vec![("trace_id".into(), id.into())],
            value,
            timestamp,
        })
        .collect();
    s
}

fn eq(name: &str, value: &str) -> Matcher {
    Matcher::new(MatchOp::Equal, name, value).unwrap()
}

/// (series, [(trace id, value, timestamp)]) of an answer.
type Flat = Vec<(Labels, Vec<(String, f64, i64)>)>;

fn flat(series: &[strata_querier::exemplars::SeriesExemplars]) -> Flat {
    series
        .iter()
        .map(|s| {
            (
                s.labels.clone(),
                s.exemplars
                    .iter()
                    .map(|e| {
                        (
                            e.labels.get("trace_id").unwrap_or("").to_string(),
                            e.value,
                            e.timestamp,
                        )
                    })
                    .collect(),
            )
        })
        .collect()
}

#[tokio::test]
async fn replicas_are_merged_and_deduplicated() {
    let (a, b, mut c) = three().await;
    let m = [("__name__", "m"), ("job", "x")];
    let n = [("__name__", "n")];
    let full = [
        with_exemplars(&m, &[(1000, 1.0), (2000, 2.0)], &[("t1", 1.0, 1000)]),
        with_exemplars(&m, &[], &[("t2", 2.0, 2000)]),
        with_exemplars(&n, &[(1000, 1.0)], &[("n1", 0.5, 1500)]),
    ];
    a.push("t", &full, &[]);
    b.push("t", &full, &[]);
    // The third replica missed the first exemplar.
    c.push("t", &[ts(&m, &[(1000, 1.0), (2000, 2.0)])], &[]);
    c.push("t", &full[1..], &[]);
    // Another tenant's exemplar of the same series, on a quorum of the
    // replicas as a distributor writes it (a read may skip any one).
    let u = [with_exemplars(&m, &[(1000, 1.0)], &[("u1", 9.0, 1000)])];
    a.push("u", &u, &[]);
    b.push("u", &u, &[]);

    let ring = ring_of(&[&a, &b, &c]).await;
    let r = reader(ring);
    let got = r
        .exemplars(
            "t",
            0,
            i64::MAX,
            &[vec![eq("__name__", "m")], vec![eq("__name__", "n")]],
        )
        .await
        .unwrap();
    let m_labels = Labels::from_pairs(m);
    let n_labels = Labels::from_pairs(n);
    assert_eq!(
        flat(&got),
        [
            (
                m_labels.clone(),
                vec![("t1".into(), 1.0, 1000), ("t2".into(), 2.0, 2000)]
            ),
            (n_labels.clone(), vec![("n1".into(), 0.5, 1500)]),
        ]
    );

    // Time range, inclusive.
    let got = r
        .exemplars("t", 1500, 2000, &[vec![eq("job", "x")]])
        .await
        .unwrap();
    assert_eq!(
        flat(&got),
        [(m_labels.clone(), vec![("t2".into(), 2.0, 2000)])]
    );

    // Tenants apart.
    let got = r
        .exemplars("u", 0, i64::MAX, &[vec![eq("__name__", "m")]])
        .await
        .unwrap();
    assert_eq!(
        flat(&got),
        [(m_labels.clone(), vec![("u1".into(), 9.0, 1000)])]
    );
    assert!(r
        .exemplars("v", 0, i64::MAX, &[vec![eq("__name__", "m")]])
        .await
        .unwrap()
        .is_empty());

    // One replica down: the others answer.
    c.stop();
    let got = r
        .exemplars("t", 0, i64::MAX, &[vec![eq("__name__", "n")]])
        .await
        .unwrap();
    assert_eq!(flat(&got), [(n_labels, vec![("n1".into(), 0.5, 1500)])]);
}
