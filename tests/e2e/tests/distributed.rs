//! Distributed mode: one distributor and three ingesters as separate
//! processes, the ring in a real DynamoDB-API server (dynalite), replication
//! factor 3.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use strata_e2e::*;

const TENANT: &str = "team-dist";

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

type Data = BTreeMap<String, Vec<(i64, u64)>>;

async fn ring_page(client: &reqwest::Client, service: &Strata) -> String {
    client
        .get(format!("{}/ring", service.http()))
        .send()
        .await
        .expect("ring page")
        .text()
        .await
        .expect("ring page body")
}

fn merge(a: &Data, b: &Data) -> Data {
    let mut out = a.clone();
    for (k, v) in b {
        let e = out.entry(k.clone()).or_default();
        e.extend(v.iter().copied());
        e.sort();
        e.dedup();
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicated_writes_survive_a_killed_ingester() {
    let dynalite = Dynalite::start().await.expect("dynalite");
    let endpoint = dynalite.endpoint();

    let mut ingesters = Vec::new();
    for i in 0..3 {
        let mut flags = ring_flags(&endpoint);
        flags.push(format!("--lifecycler.id=ingester-{i}"));
        ingesters.push(Strata::start(
            &format!("ingester-{i}"),
            "strata-ingester",
            &flags,
        ));
    }
    for ing in &mut ingesters {
        ing.wait_ready().await.expect("ingester ready");
    }
    let mut dist = Strata::start("distributor", "strata-distributor", &ring_flags(&endpoint));
    // Ready once the ring shows a write quorum of healthy ingesters.
    dist.wait_ready().await.expect("distributor ready");
    // Wait until the distributor sees all three.
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let page = ring_page(&client, &dist).await;
        if (0..3).all(|i| page.contains(&format!("ingester-{i}"))) {
            assert!(page.contains("ACTIVE"));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "ring never showed 3 ingesters: {page}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Push 50 metrics x 4 series x 10 samples.
    let base = dist.http();
    let t0 = now_ms() - 60_000;
    let mut expected: Data = BTreeMap::new();
    for round in 0..10 {
        let mut batch = Vec::new();
        for m in 0..50 {
            for inst in 0..4 {
                let name = format!("metric_{m}");
                let instance = format!("host-{inst}");
                let t = t0 + round * 1000;
                let v = (m * 100 + inst * 10 + round) as f64;
                batch.push(series(
                    &[("__name__", &name), ("instance", &instance)],
                    &[(t, v)],
                ));
                expected
                    .entry(format!("{name}{{instance={instance:?}}}"))
                    .or_default()
                    .push((t, v.to_bits()));
            }
        }
        let (code, text) = push(&client, &base, Some(TENANT), write_body(&batch))
            .await
            .unwrap();
        assert_eq!(code, 200, "{text}");
    }

    // Every ingester holds every series (RF 3 over 3 ingesters), so any two
    // of them together hold everything.
    let mut per: Vec<Data> = Vec::new();
    for ing in &ingesters {
        per.push(
            read_ingester(&ing.grpc_addr(), TENANT, 0, i64::MAX)
                .await
                .unwrap(),
        );
    }
    for (a, b) in [(0, 1), (0, 2), (1, 2)] {
        assert_eq!(merge(&per[a], &per[b]), expected, "ingesters {a}+{b}");
    }
    for (i, d) in per.iter().enumerate() {
        assert_eq!(
            d, &expected,
            "ingester {i} should hold a replica of everything"
        );
    }
    // Another tenant sees nothing.
    assert!(
        read_ingester(&ingesters[0].grpc_addr(), "other", 0, i64::MAX)
            .await
            .unwrap()
            .is_empty()
    );

    // Push in a loop and SIGKILL one ingester in the middle: no push fails.
    let mut sent: Data = BTreeMap::new();
    let t1 = now_ms() - 30_000;
    let mut killed = false;
    let loop_deadline = Instant::now() + Duration::from_secs(60);
    for round in 0..60i64 {
        assert!(Instant::now() < loop_deadline, "push loop took too long");
        if round == 20 {
            ingesters[1].proc.kill();
            killed = true;
        }
        let mut batch = Vec::new();
        for m in 0..20 {
            let name = format!("loop_metric_{m}");
            let t = t1 + round * 100;
            let v = (round * 1000 + m) as f64;
            batch.push(series(&[("__name__", &name), ("job", "loop")], &[(t, v)]));
            sent.entry(format!("{name}{{job=\"loop\"}}"))
                .or_default()
                .push((t, v.to_bits()));
        }
        let (code, text) = push(&client, &base, Some(TENANT), write_body(&batch))
            .await
            .unwrap();
        assert_eq!(code, 200, "push {round} failed (killed={killed}): {text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(killed);
    // The killed replica's failures were seen and tolerated.
    let metrics = client
        .get(format!("{}/metrics", dist.http()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let failures: f64 = metrics
        .lines()
        .find(|l| {
            l.starts_with(
                "strata_distributor_ingester_push_failures_total{ingester=\"ingester-1\"}",
            )
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    assert!(
        failures > 0.0,
        "no failed pushes to the killed ingester were counted:\n{metrics}"
    );

    // The two survivors together hold every sample pushed during the loop.
    let a = read_ingester(&ingesters[0].grpc_addr(), TENANT, t1, i64::MAX)
        .await
        .unwrap();
    let b = read_ingester(&ingesters[2].grpc_addr(), TENANT, t1, i64::MAX)
        .await
        .unwrap();
    let survivors = merge(&a, &b);
    for (name, samples) in &sent {
        assert_eq!(survivors.get(name), Some(samples), "{name}");
    }

    // A clean shutdown leaves the ring: the ingester disappears from the
    // distributor's view.
    assert!(ingesters[2].proc.terminate(Duration::from_secs(20)));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let page = ring_page(&client, &dist).await;
        if !page.contains("ingester-2") {
            break;
        }
        assert!(Instant::now() < deadline, "ingester-2 still in the ring");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Now one ingester is dead (but still within its heartbeat timeout) and
    // one has left: no series can reach a quorum of 2, so pushes fail with a
    // retryable 503 and a message saying why.
    let (code, text) = push(
        &client,
        &base,
        Some(TENANT),
        write_body(&[series(&[("__name__", "after")], &[(now_ms(), 1.0)])]),
    )
    .await
    .unwrap();
    assert_eq!(code, 503, "{text}");
    assert!(text.contains("quorum"), "{text}");

    assert!(dist.proc.terminate(Duration::from_secs(20)));
    drop(dynalite);
}
