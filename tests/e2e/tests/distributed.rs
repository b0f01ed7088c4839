//! Distributed mode: one distributor and three ingesters as separate
//! processes, the ring in a real DynamoDB-API server (dynalite), replication
//! factor 3 (1 for the shard-by-all-labels test).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use strata_e2e::*;

const TENANT: &str = "team-dist";

fn ring_flags(endpoint: &str) -> Vec<String> {
    dynamo_ring_flags(endpoint, 3)
}

/// Starts `n` ingesters (`ingester-0` ...) with `flags` and waits until
/// each is ready.
async fn start_ingesters(n: usize, flags: &[String]) -> Vec<Strata> {
    let mut ingesters = Vec::new();
    for i in 0..n {
        let mut f = flags.to_vec();
        f.push(format!("--lifecycler.id=ingester-{i}"));
        ingesters.push(Strata::start(
            &format!("ingester-{i}"),
            "strata-ingester",
            &f,
        ));
    }
    for ing in &mut ingesters {
        ing.wait_ready().await.expect("ingester ready");
    }
    ingesters
}

type Data = BTreeMap<String, Vec<(i64, u64)>>;

async fn ring_page(client: &reqwest::Client, service: &Strata) -> String {
    body_text(client.get(format!("{}/ring", service.http()))).await
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

    let mut ingesters = start_ingesters(3, &ring_flags(&endpoint)).await;
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
        push_ok(&client, &base, Some(TENANT), write_body(&batch)).await;
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

    // Three pushers push concurrently with no pause; about 1 s in, while
    // pushes are in flight, ingester-1 is SIGKILLed. No push may fail.
    // Each pusher has its own series, so pushers never race on one series.
    const PUSHERS: usize = 3;
    const MAX_PUSHES: i64 = 2000;
    let t1 = now_ms() - 30_000;
    let started = Instant::now();
    let stop_at = started + Duration::from_secs(4);
    let in_flight = Arc::new(AtomicUsize::new(0));
    let mut pushers = Vec::new();
    for p in 0..PUSHERS {
        let client = client.clone();
        let base = base.clone();
        let in_flight = in_flight.clone();
        pushers.push(tokio::spawn(async move {
            let mut sent: Data = BTreeMap::new();
            // (start, end, status, body) of every push.
            let mut pushes = Vec::new();
            for round in 0..MAX_PUSHES {
                if Instant::now() >= stop_at {
                    break;
                }
                let mut batch = Vec::new();
                let pusher = p.to_string();
                for m in 0..20 {
                    let name = format!("loop_metric_{m}");
                    let t = t1 + round;
                    let v = (round * 1000 + m) as f64;
                    batch.push(series(
                        &[("__name__", &name), ("pusher", &pusher)],
                        &[(t, v)],
                    ));
                    sent.entry(format!("{name}{{pusher=\"{p}\"}}"))
                        .or_default()
                        .push((t, v.to_bits()));
                }
                let body = write_body(&batch);
                let begin = Instant::now();
                in_flight.fetch_add(1, Ordering::SeqCst);
                let answer = push(&client, &base, Some(TENANT), body).await;
                in_flight.fetch_sub(1, Ordering::SeqCst);
                let (code, text) = answer.unwrap_or_else(|e| (0, format!("{e:#}")));
                pushes.push((begin, Instant::now(), code, text));
            }
            (sent, pushes)
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    // Kill while at least two pushes are on their way (bounded wait).
    let wait_until = Instant::now() + Duration::from_secs(2);
    while in_flight.load(Ordering::SeqCst) < 2 && Instant::now() < wait_until {
        tokio::task::yield_now().await;
    }
    let in_flight_at_kill = in_flight.load(Ordering::SeqCst);
    let killed_at = Instant::now();
    ingesters[1].proc.kill();
    assert!(
        in_flight_at_kill >= 1,
        "no push was in flight when ingester-1 was killed"
    );
    let mut sent: Data = BTreeMap::new();
    let (mut total, mut after_kill, mut spanning) = (0, 0, 0);
    for (p, handle) in pushers.into_iter().enumerate() {
        let (data, pushes) = handle.await.expect("pusher task");
        sent.extend(data);
        let mut before = 0;
        for (i, (begin, end, code, text)) in pushes.iter().enumerate() {
            assert!(
                (200..300).contains(code),
                "pusher {p}, push {i} got {code} ({:?} after the kill): {text}",
                end.saturating_duration_since(killed_at)
            );
            before += usize::from(*end < killed_at);
            after_kill += usize::from(*begin > killed_at);
            spanning += usize::from(*begin <= killed_at && *end >= killed_at);
        }
        assert!(before > 0, "pusher {p} pushed nothing before the kill");
        total += pushes.len();
    }
    assert!(
        after_kill >= PUSHERS,
        "only {after_kill} pushes after the kill"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    eprintln!(
        "{total} concurrent pushes, all 2xx; {in_flight_at_kill} in flight at the kill, \
         {spanning} spanning it, {after_kill} after it"
    );
    // The killed replica's failures were seen and tolerated.
    let metrics = body_text(client.get(format!("{}/metrics", dist.http()))).await;
    let failures = metric_value(
        &metrics,
        "strata_distributor_ingester_push_failures_total{ingester=\"ingester-1\"}",
    )
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

    // A clean shutdown keeps the ring entry (a rollout restarts in place):
    // the ingester stays in the distributor's view, LEAVING.
    assert!(ingesters[2].proc.terminate(Duration::from_secs(20)));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let page = ring_page(&client, &dist).await;
        let members = ring_members(&page);
        if members
            .get("ingester-2")
            .is_some_and(|m| m.get("State").map(String::as_str) == Some("LEAVING"))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "ingester-2 not LEAVING in the ring: {page}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Now one ingester is dead (but still within its heartbeat timeout) and
    // one is LEAVING (takes no writes): no series can reach a quorum of 2, so pushes fail with a
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingester_keeps_its_tokens_across_a_graceful_restart() {
    let dynalite = Dynalite::start().await.expect("dynalite");
    let mut ingesters = start_ingesters(3, &ring_flags(&dynalite.endpoint())).await;
    let client = reqwest::Client::new();
    let ids = ["ingester-0", "ingester-1", "ingester-2"];
    // ingester-0's ring page shows everyone's tokens and ownership.
    let watcher = ingesters[0].http();
    let before = wait_for_active(&client, &watcher, &ids, Duration::from_secs(20))
        .await
        .unwrap();
    let tokens_path = ingesters[1].data_dir.path().join("tokens.json");
    let tokens_before = std::fs::read(&tokens_path).expect("tokens.json written at join");
    assert!(!tokens_before.is_empty());
    let own_before = &before["ingester-1"];
    assert_eq!(own_before["Tokens"], "128", "{own_before:?}");

    // SIGTERM: a clean exit that keeps the ring entry, LEAVING, with its
    // tokens (a rollout).
    assert!(
        ingesters[1].proc.terminate(Duration::from_secs(10)),
        "ingester-1 did not exit 0 on SIGTERM: {}",
        ingesters[1].proc.log_text()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, page) = get_text(&client, &format!("{watcher}/ring")).await.unwrap();
        let members = ring_members(&page);
        if let Some(m) = members.get("ingester-1") {
            if m["State"] == "LEAVING" {
                assert_eq!(m["Tokens"], "128", "{page}");
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "ingester-1 not LEAVING in the ring: {page}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The restart takes its entry over with the same tokens (fresh random
    // tokens would change every ownership).
    ingesters[1].restart();
    ingesters[1]
        .wait_ready()
        .await
        .expect("restarted ingester ready");
    let after = wait_for_active(&client, &watcher, &ids, Duration::from_secs(20))
        .await
        .unwrap();
    for id in ids {
        for column in ["Tokens", "Ownership"] {
            assert_eq!(
                after[id][column], before[id][column],
                "{id}'s {column} changed across ingester-1's restart"
            );
        }
    }
    assert_eq!(
        String::from_utf8_lossy(&std::fs::read(&tokens_path).unwrap()),
        String::from_utf8_lossy(&tokens_before),
        "tokens.json changed across the restart"
    );
    // The restarted process sees the same in its own ring page.
    let own = wait_for_active(&client, &ingesters[1].http(), &ids, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(own["ingester-1"]["Ownership"], own_before["Ownership"]);

    for ing in &mut ingesters {
        assert!(ing.proc.terminate(Duration::from_secs(10)));
    }
    drop(dynalite);
}

/// With `distributor.shard-by-all-labels`, the series of one metric spread
/// over the ring instead of sharing one replication set; the querier (with
/// the same option) still finds them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shard_by_all_labels_spreads_one_metric_over_ingesters() {
    const SERIES: usize = 60;
    let dynalite = Dynalite::start().await.expect("dynalite");
    // Replication factor 1: each series lives on exactly one ingester.
    let mut flags = dynamo_ring_flags(&dynalite.endpoint(), 1);
    let mut ingesters = start_ingesters(3, &flags).await;
    flags.push("--distributor.shard-by-all-labels=true".to_string());
    let mut dist = Strata::start("sharding-distributor", "strata-distributor", &flags);
    let mut querier = Strata::start("sharding-querier", "strata-querier", &flags);
    dist.wait_ready().await.expect("distributor ready");
    querier.wait_ready().await.expect("querier ready");
    let client = reqwest::Client::new();
    let ids = ["ingester-0", "ingester-1", "ingester-2"];
    for service in [&dist, &querier] {
        wait_for_active(&client, &service.http(), &ids, Duration::from_secs(20))
            .await
            .unwrap();
    }

    let t = now_ms() - 10_000;
    let mut expected: Data = BTreeMap::new();
    let batch: Vec<_> = (0..SERIES)
        .map(|i| {
            let pod = format!("pod-{i}");
            expected
                .entry(format!("one_metric{{pod={pod:?}}}"))
                .or_default()
                .push((t, (i as f64).to_bits()));
            series(
                &[("__name__", "one_metric"), ("pod", &pod)],
                &[(t, i as f64)],
            )
        })
        .collect();
    push_ok(&client, &dist.http(), Some(TENANT), write_body(&batch)).await;

    let mut held = Vec::new();
    let mut all: Data = BTreeMap::new();
    for ing in &ingesters {
        let stats = ingester_tenants(&ing.grpc_addr()).await.unwrap();
        held.push(stats.get(TENANT).map_or(0, |c| c.series));
        let data = read_ingester(&ing.grpc_addr(), TENANT, 0, i64::MAX)
            .await
            .unwrap();
        for (name, samples) in data {
            assert!(
                all.insert(name.clone(), samples).is_none(),
                "{name} is on two ingesters with replication factor 1"
            );
        }
    }
    assert_eq!(held.iter().sum::<u64>(), SERIES as u64, "{held:?}");
    assert!(
        held.iter().filter(|&&n| n > 0).count() > 1,
        "all {SERIES} series of one metric landed on one ingester: {held:?}"
    );
    assert_eq!(all, expected);

    // The querier asks every ingester, not just the metric's replicas.
    let answer = api_get(
        &client,
        &querier.http(),
        "/prometheus/api/v1/query",
        Some(TENANT),
        &[
            ("query", "count(one_metric)"),
            ("time", &format!("{}", (t + 1000) as f64 / 1000.0)),
        ],
    )
    .await
    .unwrap();
    assert_eq!(answer.0, 200, "{}", answer.1);
    let result = &answer.1["data"]["result"];
    assert_eq!(
        result[0]["value"][1],
        Value::String(SERIES.to_string()),
        "{}",
        answer.1
    );

    for service in [&mut querier, &mut dist] {
        assert!(service.proc.terminate(Duration::from_secs(10)));
    }
    for ing in &mut ingesters {
        assert!(ing.proc.terminate(Duration::from_secs(10)));
    }
    drop(dynalite);
}
