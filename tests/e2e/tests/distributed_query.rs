//! The read path in the distributed layout: dynalite for the ring, three
//! ingesters, a distributor and a querier as separate processes, replication
//! factor 3. Answers are exact (replicas are never counted twice) and stay
//! exact with one ingester killed; with two killed they are 503 unavailable.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use strata_e2e::*;
use strata_remote_write::{MetricType, OwnedMetadata};

const TENANT: &str = "team-dq";
const API: &str = "/prometheus/api/v1";
const METRICS: i64 = 20;
const INSTANCES: i64 = 5;
const POINTS: i64 = 20;
const STEP_MS: i64 = 15_000;

fn ring_flags(endpoint: &str) -> Vec<String> {
    vec![
        "--ring.store=dynamodb".to_string(),
        format!("--ring.dynamodb.endpoint={endpoint}"),
        "--ring.dynamodb.table=strata_ring_e2e".to_string(),
        "--ring.replication-factor=3".to_string(),
        "--ring.poll-interval=200ms".to_string(),
        "--lifecycler.heartbeat-period=1s".to_string(),
    ]
}

fn value(metric: i64, instance: i64, k: i64) -> f64 {
    (metric * 100 + instance * 10 + k) as f64
}

async fn wait_for_ring(client: &reqwest::Client, service: &Strata) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let page = client
            .get(format!("{}/ring", service.http()))
            .send()
            .await
            .expect("ring page")
            .text()
            .await
            .expect("ring page body");
        if (0..3).all(|i| page.contains(&format!("ingester-{i}"))) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "ring never showed 3 ingesters: {page}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn success(answer: &(u16, Value)) -> &Value {
    assert_eq!(answer.0, 200, "{}", answer.1);
    assert_eq!(answer.1["status"], "success", "{}", answer.1);
    &answer.1["data"]
}

fn only_value(data: &Value) -> String {
    let result = data["result"].as_array().expect("result array");
    assert_eq!(result.len(), 1, "{data}");
    result[0]["value"][1].as_str().unwrap().to_string()
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn querier_answers_exactly_with_a_killed_ingester() {
    let dynalite = Dynalite::start().await.expect("dynalite");
    let endpoint = dynalite.endpoint();
    let mut ingesters = Vec::new();
    for i in 0..3 {
        let mut flags = ring_flags(&endpoint);
        flags.push(format!("--lifecycler.id=ingester-{i}"));
        ingesters.push(Strata::start(
            &format!("dq-ingester-{i}"),
            "strata-ingester",
            &flags,
        ));
    }
    for ing in &mut ingesters {
        ing.wait_ready().await.expect("ingester ready");
    }
    let mut dist = Strata::start(
        "dq-distributor",
        "strata-distributor",
        &ring_flags(&endpoint),
    );
    let mut querier = Strata::start("dq-querier", "strata-querier", &ring_flags(&endpoint));
    dist.wait_ready().await.expect("distributor ready");
    querier.wait_ready().await.expect("querier ready");
    let client = reqwest::Client::new();
    wait_for_ring(&client, &dist).await;
    wait_for_ring(&client, &querier).await;

    // 20 metrics x 5 instances x 20 samples, and each metric's metadata.
    let t0 = (now_ms() - POINTS * STEP_MS) / STEP_MS * STEP_MS;
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
        let (code, text) = push(
            &client,
            &dist.http(),
            Some(TENANT),
            write_body_with_metadata(&batch, &metadata),
        )
        .await
        .unwrap();
        assert_eq!(code, 200, "{text}");
    }

    let base = querier.http();
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
    ingesters[1].proc.kill();
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
    ingesters[2].proc.kill();
    let answer = api_get(
        &client,
        &base,
        &format!("{API}/query"),
        Some(TENANT),
        &[("query", "count(dist_metric_3)")],
    )
    .await
    .unwrap();
    assert_eq!(answer.0, 503, "{}", answer.1);
    assert_eq!(answer.1["errorType"], "unavailable", "{}", answer.1);
    let answer = api_get(&client, &base, &format!("{API}/labels"), Some(TENANT), &[])
        .await
        .unwrap();
    assert_eq!(answer.0, 503, "{}", answer.1);

    assert!(querier.proc.terminate(Duration::from_secs(20)));
    assert!(dist.proc.terminate(Duration::from_secs(20)));
    drop(dynalite);
}
