//! The read path in the distributed layout: dynalite for the ring,
//! ingesters, a distributor and a querier as separate processes,
//! replication factor 3.
//!
//! - Three ingesters: answers are exact (replicas are never counted twice)
//!   and stay exact with one ingester killed; with two killed they are 503
//!   unavailable.
//! - Five ingesters: a query naming its metric reads only the metric's
//!   three replicas (hash(tenant, metric name) on the ring), so killing the
//!   two ingesters that hold none of it leaves its answers complete, while
//!   a query without a metric name, which needs every ingester, is 503.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{json, Value};
use strata_e2e::*;
use strata_remote_write::{MetricType, OwnedMetadata};

const TENANT: &str = "team-dq";
const API: &str = "/prometheus/api/v1";
const METRICS: i64 = 20;
const INSTANCES: i64 = 5;
const POINTS: i64 = 20;
const STEP_MS: i64 = 15_000;

fn value(metric: i64, instance: i64, k: i64) -> f64 {
    (metric * 100 + instance * 10 + k) as f64
}

fn only_value(data: &Value) -> String {
    let result = data["result"].as_array().expect("result array");
    assert_eq!(result.len(), 1, "{data}");
    result[0]["value"][1].as_str().unwrap().to_string()
}

/// Starts a cluster of `ingesters` at replication factor 3 and pushes the
/// data of [`push_data`]; returns it, a client and the data's first
/// timestamp.
async fn start_with_data(name: &str, ingesters: usize) -> (Cluster, reqwest::Client, i64) {
    // The data is written after every ingester joined, but its timestamps
    // lie before: ingesters joining the complete ring would report those
    // ranges as read gaps (see operations.md, "Honest reads"), and these
    // tests are about routing.
    let dynalite = Dynalite::start().await.expect("dynalite");
    let extra = RoleFlags {
        ingester: vec!["--ingester.read-gap-on-join=false".to_string()],
        ..RoleFlags::default()
    };
    let cluster = Cluster::start_on(dynalite, name, ingesters, 3, &extra)
        .await
        .expect("cluster");
    let client = reqwest::Client::new();
    let t0 = aligned_start(POINTS, STEP_MS);
    push_data(&client, &cluster.distributor, t0).await;
    (cluster, client, t0)
}

/// SIGTERM to the querier and the distributor; each must exit cleanly.
fn stop(cluster: &mut Cluster) {
    assert!(cluster.querier.proc.terminate(Duration::from_secs(20)));
    assert!(cluster.distributor.proc.terminate(Duration::from_secs(20)));
}

/// Asserts that the instant query `params`, as [`TENANT`], is refused as
/// 503 `unavailable`.
async fn assert_query_unavailable(client: &reqwest::Client, base: &str, params: &[(&str, &str)]) {
    let answer = api_get(client, base, &format!("{API}/query"), Some(TENANT), params)
        .await
        .unwrap();
    assert_eq!(answer.0, 503, "{params:?}: {}", answer.1);
    assert_eq!(
        answer.1["errorType"], "unavailable",
        "{params:?}: {}",
        answer.1
    );
}

/// Asserts that `labels`, as [`TENANT`], is refused with 503.
async fn assert_labels_unavailable(client: &reqwest::Client, base: &str) {
    let answer = api_get(client, base, &format!("{API}/labels"), Some(TENANT), &[])
        .await
        .unwrap();
    assert_eq!(answer.0, 503, "{}", answer.1);
}

/// Queries whose exact answers are known, through the querier.
async fn check_answers(client: &reqwest::Client, base: &str, t0: i64, when: &str) {
    let t = Some(TENANT);
    let last = t0 + (POINTS - 1) * STEP_MS;
    let time = (last / 1000).to_string();
    let query = |q: &'static str| {
        let time = time.clone();
        async move {
            api_get(
                client,
                base,
                &format!("{API}/query"),
                Some(TENANT),
                &[("query", q), ("time", &time)],
            )
            .await
            .unwrap()
        }
    };

    // Every series once, whatever its replication.
    let answer = query("count({__name__=~\"dist_metric_.*\"})").await;
    assert_eq!(
        only_value(success(&answer)),
        (METRICS * INSTANCES).to_string(),
        "{when}"
    );
    let answer = query("count(dist_metric_3)").await;
    assert_eq!(
        only_value(success(&answer)),
        INSTANCES.to_string(),
        "{when}"
    );
    let expected: f64 = (0..INSTANCES).map(|i| value(3, i, POINTS - 1)).sum();
    let answer = query("sum(dist_metric_3)").await;
    assert_eq!(only_value(success(&answer)), expected.to_string(), "{when}");
    let expected: f64 = (0..METRICS)
        .flat_map(|m| (0..INSTANCES).map(move |i| value(m, i, POINTS - 1)))
        .sum();
    let answer = query("sum({job=\"dist\"})").await;
    assert_eq!(only_value(success(&answer)), expected.to_string(), "{when}");

    // A range query: one exact sum per step.
    let start = t0 + 5 * STEP_MS;
    let answer = api_post_form(
        client,
        base,
        &format!("{API}/query_range"),
        t,
        &[
            ("query", "sum(dist_metric_7)"),
            ("start", &(start / 1000).to_string()),
            ("end", &(last / 1000).to_string()),
            ("step", "15s"),
        ],
    )
    .await
    .unwrap();
    let data = success(&answer);
    let values = data["result"][0]["values"]
        .as_array()
        .expect("values")
        .clone();
    assert_eq!(values.len() as i64, POINTS - 5, "{when}: {data}");
    for (j, p) in values.iter().enumerate() {
        let k = 5 + j as i64;
        let expected: f64 = (0..INSTANCES).map(|i| value(7, i, k)).sum();
        assert_eq!(p[1], json!(expected.to_string()), "{when}: step {k}");
    }

    // Metadata endpoints merge across ingesters without duplicates.
    let answer = api_get(
        client,
        base,
        &format!("{API}/series"),
        t,
        &[("match[]", "{__name__=~\"dist_metric_.*\"}")],
    )
    .await
    .unwrap();
    assert_eq!(
        success(&answer).as_array().unwrap().len() as i64,
        METRICS * INSTANCES,
        "{when}"
    );
    let answer = api_get(
        client,
        base,
        &format!("{API}/label/instance/values"),
        t,
        &[("match[]", "dist_metric_0")],
    )
    .await
    .unwrap();
    assert_eq!(
        success(&answer),
        &json!(["host-0", "host-1", "host-2", "host-3", "host-4"]),
        "{when}"
    );
    let answer = api_get(client, base, &format!("{API}/labels"), t, &[])
        .await
        .unwrap();
    assert_eq!(
        success(&answer),
        &json!(["__name__", "instance", "job"]),
        "{when}"
    );
    let answer = api_get(client, base, &format!("{API}/metadata"), t, &[])
        .await
        .unwrap();
    let md = success(&answer).as_object().unwrap().clone();
    assert_eq!(md.len() as i64, METRICS, "{when}");
    assert_eq!(
        md["dist_metric_0"],
        json!([{"type": "gauge", "help": "Metric 0.", "unit": ""}]),
        "{when}"
    );
}

/// Pushes `METRICS` metrics x `INSTANCES` instances x `POINTS` samples
/// (values from [`value`]) from `t0` on, with each metric's metadata.
async fn push_data(client: &reqwest::Client, distributor: &Strata, t0: i64) {
    for k in 0..POINTS {
        let mut batch = Vec::new();
        for m in 0..METRICS {
            for i in 0..INSTANCES {
                batch.push(series(
                    &[
                        ("__name__", &format!("dist_metric_{m}")),
                        ("instance", &format!("host-{i}")),
                        ("job", "dist"),
                    ],
                    &[(t0 + k * STEP_MS, value(m, i, k))],
                ));
            }
        }
        let metadata: Vec<OwnedMetadata> = if k == 0 {
            (0..METRICS)
                .map(|m| OwnedMetadata {
                    metric_type: MetricType::Gauge,
                    metric_family_name: format!("dist_metric_{m}"),
                    help: format!("Metric {m}."),
                    unit: String::new(),
                })
                .collect()
        } else {
            Vec::new()
        };
        push_ok(
            client,
            &distributor.http(),
            Some(TENANT),
            write_body_with_metadata(&batch, &metadata),
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn querier_answers_exactly_with_a_killed_ingester() {
    // 20 metrics x 5 instances x 20 samples, and each metric's metadata.
    let (mut cluster, client, t0) = start_with_data("dq", 3).await;

    let base = cluster.querier.http();
    check_answers(&client, &base, t0, "all ingesters up").await;
    // Another tenant sees none of it.
    let answer = api_get(
        &client,
        &base,
        &format!("{API}/query"),
        Some("someone-else"),
        &[("query", "count({job=\"dist\"})")],
    )
    .await
    .unwrap();
    assert_eq!(success(&answer)["result"], json!([]));

    // SIGKILL one ingester: it stays in the ring (its heartbeat is still
    // fresh), so the querier keeps asking it and must tolerate the failure.
    cluster.ingesters[1].proc.kill();
    for round in 0..3 {
        check_answers(
            &client,
            &base,
            t0,
            &format!("one ingester killed, round {round}"),
        )
        .await;
    }

    // Two of three replicas gone: no complete answer exists.
    cluster.ingesters[2].proc.kill();
    assert_query_unavailable(&client, &base, &[("query", "count(dist_metric_3)")]).await;
    assert_labels_unavailable(&client, &base).await;

    stop(&mut cluster);
}

/// Which ingesters hold series of each metric (`dist_metric_<m>`), by
/// reading every ingester; waits until every metric has `rf` holders (the
/// last replica's write may land just after the push was acknowledged).
async fn holders_by_metric(cluster: &Cluster, t0: i64, rf: usize) -> Vec<BTreeSet<usize>> {
    let last = t0 + (POINTS - 1) * STEP_MS;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut holders = vec![BTreeSet::new(); METRICS as usize];
        let mut series_per_holder = vec![Vec::new(); METRICS as usize];
        for (i, ing) in cluster.ingesters.iter().enumerate() {
            let data = read_ingester(&ing.grpc_addr(), TENANT, t0, last)
                .await
                .expect("read ingester");
            for m in 0..METRICS {
                let prefix = format!("dist_metric_{m}{{");
                let n = data.keys().filter(|k| k.starts_with(&prefix)).count();
                if n > 0 {
                    holders[m as usize].insert(i);
                    series_per_holder[m as usize].push(n);
                }
            }
        }
        if holders.iter().all(|h| h.len() == rf) {
            // A holder holds every series of the metric (sharding is by
            // metric name, not by series).
            for (m, counts) in series_per_holder.iter().enumerate() {
                assert!(
                    counts.iter().all(|n| *n as i64 == INSTANCES),
                    "dist_metric_{m}: series per holder {counts:?}"
                );
            }
            return holders;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "metrics never reached {rf} holders each: {holders:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Queries about one metric, by name, through the querier: all must
/// answer completely (`Ok`) or all be refused as unavailable (`Err`).
async fn named_metric_answers(
    client: &reqwest::Client,
    base: &str,
    t0: i64,
    m: i64,
) -> Result<(), String> {
    let last = t0 + (POINTS - 1) * STEP_MS;
    let time = (last / 1000).to_string();
    let metric = format!("dist_metric_{m}");
    let expected_sum: f64 = (0..INSTANCES).map(|i| value(m, i, POINTS - 1)).sum();
    let mut refusals = Vec::new();
    let mut check = |what: String, answer: (u16, Value), want: Option<Value>| {
        if answer.0 == 503 {
            assert_eq!(answer.1["errorType"], "unavailable", "{what}: {}", answer.1);
            refusals.push(what);
            return;
        }
        let data = success(&answer).clone();
        if let Some(want) = want {
            assert_eq!(data, want, "{what}");
        }
    };
    for (q, want) in [
        (format!("count({metric})"), INSTANCES.to_string()),
        (format!("sum({metric})"), expected_sum.to_string()),
        (
            format!("count({{__name__=\"{metric}\", job=\"dist\"}})"),
            INSTANCES.to_string(),
        ),
    ] {
        let answer = api_get(
            client,
            base,
            &format!("{API}/query"),
            Some(TENANT),
            &[("query", &q), ("time", &time)],
        )
        .await
        .unwrap();
        let data = (answer.0 == 200).then(|| answer.1["data"].clone());
        if let Some(data) = &data {
            assert_eq!(only_value(data), want, "{q}");
        }
        check(q, answer, data);
    }
    // A range query: one exact sum per step.
    let q = format!("sum({metric})");
    let answer = api_post_form(
        client,
        base,
        &format!("{API}/query_range"),
        Some(TENANT),
        &[
            ("query", &q),
            ("start", &(t0 / 1000).to_string()),
            ("end", &(last / 1000).to_string()),
            ("step", "15s"),
        ],
    )
    .await
    .unwrap();
    if answer.0 == 200 {
        let values = success(&answer)["result"][0]["values"]
            .as_array()
            .expect("values")
            .clone();
        assert_eq!(values.len() as i64, POINTS, "{q}: {}", answer.1);
        for (k, p) in values.iter().enumerate() {
            let expected: f64 = (0..INSTANCES).map(|i| value(m, i, k as i64)).sum();
            assert_eq!(p[1], json!(expected.to_string()), "{q}: step {k}");
        }
    }
    check(format!("range {q}"), answer, None);
    // Series and label values with the metric as match[].
    let answer = api_get(
        client,
        base,
        &format!("{API}/series"),
        Some(TENANT),
        &[("match[]", &metric)],
    )
    .await
    .unwrap();
    if answer.0 == 200 {
        assert_eq!(
            success(&answer).as_array().unwrap().len() as i64,
            INSTANCES,
            "series {metric}"
        );
    }
    check(format!("series {metric}"), answer, None);
    let answer = api_get(
        client,
        base,
        &format!("{API}/label/instance/values"),
        Some(TENANT),
        &[("match[]", &metric)],
    )
    .await
    .unwrap();
    let want = json!(["host-0", "host-1", "host-2", "host-3", "host-4"]);
    check(format!("label values {metric}"), answer, Some(want));
    match refusals.len() {
        0 => Ok(()),
        6 => Err(refusals.join(", ")),
        _ => panic!("{metric}: only some requests refused: {refusals:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn named_metric_reads_only_its_replicas() {
    let (mut cluster, client, t0) = start_with_data("dqr", 5).await;
    let holders = holders_by_metric(&cluster, t0, 3).await;

    // Kill the two ingesters that hold none of metric 0 (they hold other
    // metrics, so a query over every metric needs them).
    let target = 0usize;
    let bystanders: Vec<usize> = (0..5).filter(|i| !holders[target].contains(i)).collect();
    assert_eq!(bystanders.len(), 2, "{holders:?}");
    for b in &bystanders {
        assert!(
            holders.iter().any(|h| h.contains(b)),
            "ingester-{b} holds no metric at all: {holders:?}"
        );
    }
    let base = cluster.querier.http();
    named_metric_answers(&client, &base, t0, target as i64)
        .await
        .expect("all ingesters up");
    for b in &bystanders {
        cluster.ingesters[*b].proc.kill();
    }

    // SIGKILLed ingesters keep their fresh heartbeat for a while, so the
    // ring still lists them as healthy: only routing keeps them out of a
    // read. Several rounds, as the querier's connections notice the deaths.
    for round in 0..3 {
        named_metric_answers(&client, &base, t0, target as i64)
            .await
            .unwrap_or_else(|e| panic!("round {round}: dist_metric_{target} refused: {e}"));
    }
    // Any metric that lost at most one replica still answers completely;
    // one that lost two of its three replicas has no complete answer.
    let mut lost_two = 0;
    for (m, h) in holders.iter().enumerate() {
        let lost = bystanders.iter().filter(|b| h.contains(b)).count();
        let outcome = named_metric_answers(&client, &base, t0, m as i64).await;
        match lost {
            0 | 1 => {
                outcome.unwrap_or_else(|e| panic!("dist_metric_{m} lost {lost} replica(s): {e}"))
            }
            _ => {
                assert!(
                    outcome.is_err(),
                    "dist_metric_{m} answered without two of its replicas"
                );
                lost_two += 1;
            }
        }
    }
    println!("metrics that lost two replicas (refused): {lost_two} of {METRICS}");

    // Without a metric name the querier must ask every ingester; two of
    // five are dead, more than replication factor 3 tolerates.
    let time = ((t0 + (POINTS - 1) * STEP_MS) / 1000).to_string();
    for q in [
        "count({job=\"dist\"})",
        "sum({__name__=~\"dist_metric_.*\"})",
    ] {
        assert_query_unavailable(&client, &base, &[("query", q), ("time", &time)]).await;
    }
    assert_labels_unavailable(&client, &base).await;

    stop(&mut cluster);
}
