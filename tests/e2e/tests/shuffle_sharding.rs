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
