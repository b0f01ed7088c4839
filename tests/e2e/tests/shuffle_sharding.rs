//! Shuffle sharding across real processes: six ingesters at replication
//! factor 3, one tenant with shard size 3. Its series live on exactly its
//! three ingesters, another tenant's spread over all six, and both read back
//! completely (the querier asks only the small tenant's shard).

use std::collections::BTreeSet;

use strata_e2e::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_with_a_shard_size_lives_on_its_shard() {
    let limits =
        "--distributor.tenant-limits={small: {ingestion_tenant_shard_size: 3}}".to_string();
    let extra = RoleFlags {
        distributor: vec![limits.clone()],
        querier: vec![limits],
        // A fresh cluster: no data predates any ingester's join, so joiners
        // need not mark the past as a read gap.
        ingester: vec!["--ingester.read-gap-on-join=false".to_string()],
    };
    let dynalite = Dynalite::start().await.expect("dynalite");
    let cluster = Cluster::start_on(dynalite, "shuffle", 6, 3, &extra)
        .await
        .expect("cluster");
    let client = reqwest::Client::new();
    let base = cluster.distributor.http();
    let t = now_ms() - 1000;
    for tenant in ["small", "big"] {
        // 200 metrics: placed by metric name, so they spread over every
        // ingester the tenant may use.
        let series: Vec<_> = (0..200)
            .map(|i| {
                let name = format!("metric_{i}");
                strata_e2e::series(&[("__name__", &name), ("job", "x")], &[(t, i as f64)])
            })
            .collect();
        push_ok(&client, &base, Some(tenant), write_body(&series)).await;
    }

    let mut small_on = BTreeSet::new();
    let mut big_on = BTreeSet::new();
    for (i, ingester) in cluster.ingesters.iter().enumerate() {
        let tenants = ingester_tenants(&ingester.grpc_addr())
            .await
            .expect("ingester stats");
        if tenants.get("small").is_some_and(|c| c.series > 0) {
            small_on.insert(i);
        }
        if tenants.get("big").is_some_and(|c| c.series > 0) {
            big_on.insert(i);
        }
    }
    assert_eq!(
        small_on.len(),
        3,
        "the tenant with shard size 3 is on ingesters {small_on:?}"
    );
    assert_eq!(
        big_on.len(),
        6,
        "the tenant without a shard size is on {big_on:?}"
    );

    // Both read back completely; the small tenant's reads ask its shard.
    for tenant in ["small", "big"] {
        let answer = api_get(
            &client,
            &cluster.querier.http(),
            "/prometheus/api/v1/query",
            Some(tenant),
            &[("query", "count({job=\"x\"})")],
        )
        .await
        .expect("query");
        let result = success(&answer)["result"].clone();
        assert_eq!(result[0]["value"][1], "200", "{tenant}: {result}");
        let answer = api_get(
            &client,
            &cluster.querier.http(),
            "/prometheus/api/v1/query",
            Some(tenant),
            &[("query", "metric_7")],
        )
        .await
        .expect("query");
        let result = success(&answer)["result"].clone();
        assert_eq!(result[0]["value"][1], "7", "{tenant}: {result}");
    }
}

/// p99 of `samples` (milliseconds).
fn p99(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[((samples.len() as f64 * 0.99).ceil() as usize).clamp(1, samples.len()) - 1]
}

/// A quiet tenant pushing 10 times a second, for `run`; its push latencies
/// (ms) and failures.
async fn quiet_pushes(base: &str, run: std::time::Duration) -> (Vec<f64>, usize) {
    let client = reqwest::Client::new();
    let started = std::time::Instant::now();
    let (mut latencies, mut failures) = (Vec::new(), 0);
    let mut i = 0;
    while started.elapsed() < run {
        let t = now_ms();
        let series: Vec<_> = (0..20)
            .map(|k| {
                let id = format!("{k}");
                strata_e2e::series(&[("__name__", "quiet"), ("id", &id)], &[(t, i as f64)])
            })
            .collect();
        i += 1;
        let asked = std::time::Instant::now();
        match push(&client, base, Some("quiet"), write_body(&series)).await {
            Ok((200..=299, _)) => latencies.push(asked.elapsed().as_secs_f64() * 1000.0),
            _ => failures += 1,
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    (latencies, failures)
}

/// A noisy tenant pushing far beyond its rate (and so refused with 429
/// at the distributor) does not make a quiet tenant's pushes fail, and
/// keeps their p99 latency within a bound stated here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_noisy_tenant_does_not_hurt_a_quiet_one() {
    let limits = "--distributor.tenant-limits={noisy: {ingestion_tenant_shard_size: 3, ingestion_rate: 5000, ingestion_burst_size: 5000}, quiet: {ingestion_tenant_shard_size: 3}}".to_string();
    let extra = RoleFlags {
        distributor: vec![limits.clone()],
        querier: vec![limits],
        ingester: vec!["--ingester.read-gap-on-join=false".to_string()],
    };
    let dynalite = Dynalite::start().await.expect("dynalite");
    let cluster = Cluster::start_on(dynalite, "noisy", 6, 3, &extra)
        .await
        .expect("cluster");
    let base = cluster.distributor.http();
    let run = std::time::Duration::from_secs(10);

    // Alone.
    let (alone, alone_failures) = quiet_pushes(&base, run).await;
    assert_eq!(alone_failures, 0);

    // With 4 senders of the noisy tenant pushing 1000-sample requests as
    // fast as they can (5000 samples/s allowed).
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut noisy = Vec::new();
    for s in 0..4 {
        let base = base.clone();
        let stop = stop.clone();
        noisy.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let (mut ok, mut limited) = (0u64, 0u64);
            let mut i = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let t = now_ms();
                let series: Vec<_> = (0..1000)
                    .map(|k| {
                        let name = format!("noisy_{}", k % 50);
                        let id = format!("{s}-{k}");
                        strata_e2e::series(&[("__name__", &name), ("id", &id)], &[(t, i as f64)])
                    })
                    .collect();
                i += 1;
                match push(&client, &base, Some("noisy"), write_body(&series)).await {
                    Ok((200..=299, _)) => ok += 1,
                    Ok((429, _)) => limited += 1,
                    _ => {}
                }
            }
            (ok, limited)
        }));
    }
    let (loaded, loaded_failures) = quiet_pushes(&base, run).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (mut ok, mut limited) = (0, 0);
    for n in noisy {
        let (o, l) = n.await.unwrap();
        ok += o;
        limited += l;
    }
    let (p_alone, p_loaded) = (p99(alone), p99(loaded));
    eprintln!(
        "quiet p99 alone {p_alone:.1} ms, with the noisy tenant {p_loaded:.1} ms; noisy: {ok} accepted, {limited} refused (429)"
    );
    assert!(limited > 0, "the noisy tenant never went over its limit");
    assert_eq!(loaded_failures, 0, "the quiet tenant's pushes failed");
    // The bound: the noisy tenant costs the quiet one at most 3× its p99,
    // or 250 ms on this 2-core machine where every process shares the CPU.
    assert!(
        p_loaded <= (3.0 * p_alone).max(250.0),
        "quiet p99 {p_loaded:.1} ms with the noisy tenant, {p_alone:.1} ms alone"
    );
}
