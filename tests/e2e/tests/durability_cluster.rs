//! Durability of the distributed layout, counted sample by sample: ingesters
//! killed and restarted (their WAL brings back what they held), a rolling
//! restart under load, a scale-down with a flush, and an outage of the
//! object and index stores.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use strata_e2e::*;

/// These tests run many processes each; one at a time on two cores.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const METRIC: &str = "durable";
const SERIES: usize = 40;

/// Every sample of the metric the query API returns since `since_ms`; the
/// status when it is not 200.
async fn query_all(
    client: &reqwest::Client,
    base: &str,
    since_ms: i64,
) -> Result<Samples, (u16, Value)> {
    let at = now_ms() + 1000;
    let time = format!("{:.3}", at as f64 / 1000.0);
    let query = format!("{METRIC}[{}ms]", at - since_ms + 1);
    let (code, v) = api_get(
        client,
        base,
        "/prometheus/api/v1/query",
        None,
        &[("query", &query), ("time", &time)],
    )
    .await
    .expect("query");
    if code != 200 {
        return Err((code, v));
    }
    let mut out = Samples::new();
    for s in v["data"]["result"].as_array().expect("a matrix") {
        let labels = strata_model::Labels::from_pairs(
            s["metric"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string())),
        );
        let entry = out.entry(labels.to_string()).or_default();
        for p in s["values"].as_array().unwrap() {
            let t = (p[0].as_f64().unwrap() * 1000.0).round() as i64;
            let v: f64 = p[1].as_str().unwrap().parse().unwrap();
            entry.insert((t, v.to_bits()));
        }
    }
    Ok(out)
}

/// Flags that keep the tests short: read gaps start 2 s before a restarted
/// ingester's last WAL write (the writer's samples are never older).
fn ingester_flags() -> Vec<String> {
    vec!["--ingester.read-gap-lookback=2s".to_string()]
}

async fn start_cluster(name: &str, ingesters: usize, rf: usize, extra: RoleFlags) -> Cluster {
    let dynalite = Dynalite::start().await.expect("dynalite");
    Cluster::start_on(dynalite, name, ingesters, rf, &extra)
        .await
        .expect("cluster")
}

/// Waits until the distributor and the querier see every ingester ACTIVE.
async fn wait_all_active(client: &reqwest::Client, cluster: &Cluster) {
    let ids: Vec<String> = (0..cluster.ingesters.len())
        .map(Cluster::ingester_id)
        .collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    for service in [&cluster.distributor, &cluster.querier] {
        wait_for_active(client, &service.http(), &ids, Duration::from_secs(30))
            .await
            .expect("every ingester ACTIVE");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rf3_kill_and_restart_two_ingesters_loses_no_acknowledged_sample() {
    let _serial = SERIAL.lock().await;
    let extra = RoleFlags {
        ingester: ingester_flags(),
        ..RoleFlags::default()
    };
    let mut cluster = start_cluster("dur-kill", 3, 3, extra).await;
    let client = reqwest::Client::new();
    let writer = Writer::start(cluster.distributor.http(), METRIC, SERIES);
    writer
        .wait_for(
            SERIES * 200,
            Duration::from_secs(60),
            "before the first kill",
        )
        .await;

    for victim in [0, 1] {
        // What it holds just before it dies; all of it must come back.
        let before = held_by(&cluster.ingesters[victim]).await;
        cluster.ingesters[victim].proc.kill();
        writer
            .wait_for(
                SERIES * 100,
                Duration::from_secs(60),
                "with one ingester killed",
            )
            .await;
        cluster.ingesters[victim].restart();
        cluster.ingesters[victim]
            .wait_ready()
            .await
            .expect("restarted ingester ready");
        let after = held_by(&cluster.ingesters[victim]).await;
        let (lost, total) = missing(&before, &after);
        assert_eq!(
            lost,
            0,
            "ingester-{victim} lost {lost} of the {total} samples it held before SIGKILL; log:\n{}",
            cluster.ingesters[victim].proc.log_text()
        );
        assert_eq!(after.len(), SERIES, "ingester-{victim} holds every series");
        let log = cluster.ingesters[victim].proc.log_text();
        assert!(log.contains("write-ahead log replayed"), "{log}");
        wait_all_active(&client, &cluster).await;
        // Past the restarted ingester's read gap before the next kill.
        writer
            .wait_for(SERIES * 300, Duration::from_secs(60), "after the restart")
            .await;
    }

    let (acked, failed) = writer.stop().await;
    let got = query_all(&client, &cluster.querier.http(), now_ms() - 900_000)
        .await
        .unwrap_or_else(|(code, v)| panic!("query after the restarts: {code} {v}"));
    let (lost, total) = missing(&acked, &got);
    assert_eq!(
        lost, 0,
        "{lost} of {total} acknowledged samples missing after two kills and restarts"
    );
    eprintln!("{total} acknowledged samples all returned; {failed} pushes failed during the kills");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_restart_fails_no_push_and_no_query_answers_short() {
    let _serial = SERIAL.lock().await;
    let extra = RoleFlags {
        ingester: ingester_flags(),
        ..RoleFlags::default()
    };
    let mut cluster = start_cluster("dur-roll", 3, 3, extra).await;
    let client = reqwest::Client::new();
    let writer = Writer::start(cluster.distributor.http(), METRIC, SERIES);
    writer
        .wait_for(SERIES * 200, Duration::from_secs(60), "before the rollout")
        .await;

    // Queries all through the rollout: each must count at least what was
    // acknowledged before it was sent, or refuse.
    let querying = Arc::new(AtomicBool::new(true));
    let queries = {
        let querying = querying.clone();
        let acked_count = writer.acked_count.clone();
        let base = cluster.querier.http();
        let client = client.clone();
        tokio::spawn(async move {
            let (mut complete, mut refused, mut short) = (0usize, 0usize, Vec::new());
            let query = format!("sum(count_over_time({METRIC}[15m]))");
            while querying.load(Ordering::Relaxed) && complete + refused < 20_000 {
                let before = acked_count.load(Ordering::Relaxed);
                let time = format!("{:.3}", (now_ms() + 1000) as f64 / 1000.0);
                let (code, v) = api_get(
                    &client,
                    &base,
                    "/prometheus/api/v1/query",
                    None,
                    &[("query", &query), ("time", &time)],
                )
                .await
                .expect("query");
                if code == 200 {
                    let n: f64 = v["data"]["result"][0]["value"][1]
                        .as_str()
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0.0);
                    if (n as usize) < before {
                        short.push(format!("{n} < {before}"));
                    }
                    complete += 1;
                } else {
                    refused += 1;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            (complete, refused, short)
        })
    };

    for i in 0..cluster.ingesters.len() {
        let ing = &mut cluster.ingesters[i];
        assert!(
            ing.proc.terminate(Duration::from_secs(30)),
            "ingester-{i} did not stop cleanly on SIGTERM: {}",
            ing.proc.log_text()
        );
        ing.restart();
        ing.wait_ready().await.expect("restarted ingester ready");
        wait_all_active(&client, &cluster).await;
        writer
            .wait_for(
                SERIES * 300,
                Duration::from_secs(60),
                "after a restart in the rollout",
            )
            .await;
    }

    querying.store(false, Ordering::Relaxed);
    let (complete, refused, short) = queries.await.unwrap();
    let (acked, failed) = writer.stop().await;
    assert_eq!(failed, 0, "pushes failed during the rolling restart");
    assert!(
        short.is_empty(),
        "{} of {complete} queries answered 200 with fewer samples than acknowledged before them: {:?}",
        short.len(),
        &short[..short.len().min(5)]
    );
    assert!(
        complete > 0,
        "no query answered during the rollout ({refused} refused)"
    );
    let got = query_all(&client, &cluster.querier.http(), now_ms() - 900_000)
        .await
        .unwrap_or_else(|(code, v)| panic!("query after the rollout: {code} {v}"));
    let (lost, total) = missing(&acked, &got);
    assert_eq!(
        lost, 0,
        "{lost} of {total} acknowledged samples lost in the rollout"
    );
    eprintln!(
        "rollout: {total} samples acknowledged, none lost; {complete} queries complete, {refused} refused"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_down_flushes_and_every_sample_stays_queryable() {
    let _serial = SERIAL.lock().await;
    let dynalite = Dynalite::start().await.expect("dynalite");
    let s3 = S3sFs::start().await.expect("s3s-fs");
    let store = store_flags(&s3, &dynalite.endpoint(), &[]);
    // Nothing is flushed before the scale-down (default flush delay and
    // period): what the store holds afterwards, the scale-down stored.
    let mut ingester = store.clone();
    ingester.extend(ingester_flags());
    let mut querier = store;
    querier.push("--querier.query-store-after=0s".to_string());
    let extra = RoleFlags {
        ingester,
        distributor: Vec::new(),
        querier,
    };
    // Replication factor 1: the leaving ingester holds the only copy.
    let mut cluster = Cluster::start_on(dynalite, "dur-scale", 4, 1, &extra)
        .await
        .expect("cluster");
    let client = reqwest::Client::new();
    // The ingesters that joined a complete ring lack what came before
    // (read gaps up to two ring polls after they turned ACTIVE): write and
    // query only after that.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let started = now_ms();
    let writer = Writer::start(cluster.distributor.http(), METRIC, SERIES);
    writer
        .wait_for(
            SERIES * 200,
            Duration::from_secs(60),
            "before the scale-down",
        )
        .await;

    // The metric's series live on one ingester (sharded by metric name).
    let mut holders = Vec::new();
    for (i, ing) in cluster.ingesters.iter().enumerate() {
        if !held_by(ing).await.is_empty() {
            holders.push(i);
        }
    }
    assert_eq!(
        holders.len(),
        1,
        "replication factor 1: one holder, got {holders:?}"
    );
    let leaving = holders[0];
    let id = Cluster::ingester_id(leaving);
    assert!(
        s3.objects(S3_BUCKET).is_empty(),
        "flushed before the scale-down"
    );

    let resp = client
        .post(format!(
            "{}/ingester/shutdown",
            cluster.ingesters[leaving].http()
        ))
        .timeout(Duration::from_secs(120))
        .send()
        .await
        .expect("POST /ingester/shutdown");
    assert_eq!(
        resp.status().as_u16(),
        200,
        "{}",
        resp.text().await.unwrap_or_default()
    );
    assert!(
        !s3.objects(S3_BUCKET).is_empty(),
        "the scale-down stored nothing"
    );
    // Gone from the ring, still running (not ready) until SIGTERM.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, page) = get_text(&client, &format!("{}/ring", cluster.distributor.http()))
            .await
            .unwrap();
        if !ring_members(&page).contains_key(&id) {
            break;
        }
        assert!(Instant::now() < deadline, "{id} still in the ring: {page}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let leaver = &mut cluster.ingesters[leaving];
    assert!(leaver.proc.is_running(), "{id} exited after the scale-down");
    let (code, _) = get_text(&client, &format!("{}/ready", leaver.http()))
        .await
        .unwrap();
    assert_eq!(code, 503, "{id} ready after leaving the ring");

    // Writes go on to the metric's new owner.
    writer
        .wait_for(
            SERIES * 100,
            Duration::from_secs(60),
            "after the scale-down",
        )
        .await;
    let (acked, _) = writer.stop().await;
    let got = query_all(&client, &cluster.querier.http(), started)
        .await
        .unwrap_or_else(|(code, v)| panic!("query after the scale-down: {code} {v}"));
    let (lost, total) = missing(&acked, &got);
    assert_eq!(
        lost, 0,
        "{lost} of {total} acknowledged samples lost with the scale-down"
    );
    assert!(
        cluster.ingesters[leaving]
            .proc
            .terminate(Duration::from_secs(30)),
        "{id} did not exit cleanly on SIGTERM after leaving"
    );
    eprintln!("scale-down: {total} acknowledged samples all returned");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_outage_of_a_minute_loses_nothing_and_flushes_catch_up() {
    let _serial = SERIAL.lock().await;
    let mut dynalite = Dynalite::start_persistent().await.expect("dynalite");
    let mut s3 = S3sFs::start().await.expect("s3s-fs");
    let mut flags = store_flags(&s3, &dynalite.endpoint(), &[]);
    flags.extend(
        [
            // Chunks of 5 s windows, flushed a second after they close.
            "--ingester.max-chunk-age=5s",
            "--ingester.flush-period=1s",
            "--ingester.flush-delay=0s",
            "--ingester.retain-period=2s",
        ]
        .map(String::from),
    );
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let strata = start_strata("dur-outage", &flags).await;
    let client = reqwest::Client::new();
    let started = now_ms();
    let writer = Writer::start(strata.http(), METRIC, SERIES);

    let flushed = "strata_ingester_chunks_flushed_total";
    let unflushed = "strata_ingester_unflushed_bytes";
    let deadline = Instant::now() + Duration::from_secs(60);
    while metric(&client, &strata, flushed).await == 0.0 {
        assert!(
            Instant::now() < deadline,
            "nothing flushed before the outage"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // S3 and DynamoDB gone for a minute, under load.
    s3.stop().await;
    dynalite.stop().await;
    let outage = Instant::now();
    let mut peak_unflushed = 0.0f64;
    while outage.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        peak_unflushed = peak_unflushed.max(metric(&client, &strata, unflushed).await);
        assert_eq!(
            writer.failed(),
            0,
            "a push failed during the store outage: {}",
            writer.last_failure.lock()
        );
    }
    let failures = metric(&client, &strata, "strata_ingester_flush_failures_total").await;
    assert!(failures > 0.0, "no flush failed while the stores were down");
    assert!(
        peak_unflushed > 0.0,
        "nothing waited for the store during the outage"
    );
    let flushed_before = metric(&client, &strata, flushed).await;
    s3.start_again().await.expect("s3s-fs again");
    dynalite.start_again().await.expect("dynalite again");

    // Flushes catch up: the backlog is stored within a minute.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let now_unflushed = metric(&client, &strata, unflushed).await;
        if now_unflushed <= peak_unflushed / 10.0
            && metric(&client, &strata, flushed).await > flushed_before
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "flushes did not catch up after the outage: {now_unflushed} bytes unflushed (peak {peak_unflushed}); log:\n{}",
            strata.proc.log_text()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let (acked, failed) = writer.stop().await;
    assert_eq!(failed, 0, "pushes failed around the store outage");
    let got = query_all(&client, &strata.http(), started)
        .await
        .unwrap_or_else(|(code, v)| panic!("query after the outage: {code} {v}"));
    let (lost, total) = missing(&acked, &got);
    assert_eq!(
        lost, 0,
        "{lost} of {total} acknowledged samples lost around the outage"
    );
    eprintln!(
        "outage: {total} samples acknowledged, none lost; peak unflushed {peak_unflushed} bytes, {failures} failed flushes"
    );
}

/// The distributed variant: 1 distributor, 3 ingesters at RF 3 and a
/// querier, with the ring, the index and the chunks all stopped for a
/// minute under load (the ring's DynamoDB too: health is judged against the
/// last successful ring read, so writes go on).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distributed_store_and_ring_outage_loses_nothing() {
    let _serial = SERIAL.lock().await;
    let dynalite = Dynalite::start_persistent().await.expect("dynalite");
    let mut s3 = S3sFs::start().await.expect("s3s-fs");
    let stores = store_flags(&s3, &dynalite.endpoint(), &[]);
    let mut ingester = ingester_flags();
    ingester.extend(stores.iter().cloned());
    ingester.extend(
        [
            "--ingester.max-chunk-age=5s",
            "--ingester.flush-period=1s",
            "--ingester.flush-delay=0s",
            "--ingester.retain-period=2s",
            "--ingester.flush-takeover-delay=2s",
        ]
        .map(String::from),
    );
    let extra = RoleFlags {
        ingester,
        distributor: Vec::new(),
        querier: stores,
    };
    let mut cluster = Cluster::start_on(dynalite, "dur-dist-outage", 3, 3, &extra)
        .await
        .expect("cluster");
    let client = reqwest::Client::new();
    let started = now_ms();
    let writer = Writer::start(cluster.distributor.http(), METRIC, SERIES);
    let total = |name: &'static str| {
        let client = client.clone();
        let ingesters: Vec<String> = cluster.ingesters.iter().map(|i| i.http()).collect();
        async move {
            let mut sum = 0.0;
            for base in ingesters {
                let (_, page) = get_text(&client, &format!("{base}/metrics")).await.unwrap();
                sum += metric_value(&page, name).unwrap_or(0.0);
            }
            sum
        }
    };
    let flushed = "strata_ingester_chunks_flushed_total";
    let unflushed = "strata_ingester_unflushed_bytes";
    let deadline = Instant::now() + Duration::from_secs(60);
    while total(flushed).await == 0.0 {
        assert!(
            Instant::now() < deadline,
            "nothing flushed before the outage"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    s3.stop().await;
    cluster.dynalite.stop().await;
    let outage = Instant::now();
    let mut peak_unflushed = 0.0f64;
    while outage.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        peak_unflushed = peak_unflushed.max(total(unflushed).await);
        assert_eq!(
            writer.failed(),
            0,
            "a push failed during the ring and store outage: {}",
            writer.last_failure.lock()
        );
    }
    assert!(
        peak_unflushed > 0.0,
        "nothing waited for the store during the outage"
    );
    let flushed_before = total(flushed).await;
    s3.start_again().await.expect("s3s-fs again");
    cluster
        .dynalite
        .start_again()
        .await
        .expect("dynalite again");

    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let now_unflushed = total(unflushed).await;
        if now_unflushed <= peak_unflushed / 10.0 && total(flushed).await > flushed_before {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "flushes did not catch up after the outage: {now_unflushed} bytes unflushed (peak {peak_unflushed})"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let last_failure = writer.last_failure.lock().clone();
    let (acked, failed) = writer.stop().await;
    assert_eq!(
        failed, 0,
        "pushes failed around the outage; the last: {last_failure}"
    );
    let got = query_all(&client, &cluster.querier.http(), started)
        .await
        .unwrap_or_else(|(code, v)| panic!("query after the outage: {code} {v}"));
    let (lost, count) = missing(&acked, &got);
    assert_eq!(
        lost, 0,
        "{lost} of {count} acknowledged samples lost around the outage"
    );
    eprintln!(
        "distributed outage: {count} samples acknowledged, none lost; peak unflushed {peak_unflushed} bytes"
    );
}
