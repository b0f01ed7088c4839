//! The ring module: the ring's store (in memory, or DynamoDB) and the ring
//! client every service reads it through; the ring status page.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use strata_ingester_client::IngesterClientPool;
use strata_ring::{quorum, MemoryRingStore, Ring, RingConfig, RingStore};
use strata_server::http::ReadyCheck;
use tokio_util::sync::CancellationToken;

use super::{Context, Module, Nothing};
use crate::config::{Config, RingStoreKind};
use crate::ring_http::ring_routes;

pub async fn init(ctx: &mut Context) -> anyhow::Result<Box<dyn Module>> {
    let store = ring_store(ctx, &ctx.config.ring.name).await?;
    let ring = Arc::new(
        Ring::new(ring_config(&ctx.config), store.clone()).context("starting the ring client")?,
    );
    ctx.metrics
        .register(|r| ring.register_metrics(r.sub_registry_with_prefix("strata")));
    ctx.add_routes(ring_routes(ring.clone()));
    ctx.add_link("/ring", "Ingester ring status");
    ctx.ring = Some(ring);
    ctx.ring_store = Some(store);
    Ok(Box::new(Nothing))
}

fn ring_config(config: &Config) -> RingConfig {
    RingConfig {
        heartbeat_timeout: config.ring.heartbeat_timeout,
        forget_timeout: (!config.ring.forget_timeout.is_zero())
            .then_some(config.ring.forget_timeout),
        replication_factor: config.ring.replication_factor,
        zone_awareness: config.ring.zone_awareness,
        poll_interval: config.ring.poll_interval,
    }
}

/// The ring store of the ring called `name` (the ingester ring, or the
/// ruler's), of the kind `ring.store` configures.
pub async fn ring_store(ctx: &Context, name: &str) -> anyhow::Result<Arc<dyn RingStore>> {
    let config = &ctx.config;
    match config.ring.store {
        RingStoreKind::Memory => {
            if !ctx.single_process() {
                bail!(
                    "ring.store=memory only works when every part runs in one process; \
                     for separate services set ring.store=dynamodb (and ring.dynamodb.*)"
                );
            }
            Ok(Arc::new(MemoryRingStore::new()))
        }
        RingStoreKind::Dynamodb => {
            let d = &config.ring.dynamodb;
            let mut store_config =
                strata_ring_dynamodb::DynamoRingStoreConfig::new(d.table.clone(), name.to_string());
            store_config.aws.region = d.region.clone();
            store_config.aws.endpoint_url = (!d.endpoint.is_empty()).then(|| d.endpoint.clone());
            let store = strata_ring_dynamodb::DynamoRingStore::connect(&store_config).await;
            if d.create_table {
                store
                    .ensure_table()
                    .await
                    .context("creating the DynamoDB ring table")?;
            }
            Ok(Arc::new(store))
        }
    }
}

/// Ready when the ring has a quorum of healthy ingesters.
pub fn quorum_check(ring: Arc<Ring>, replication_factor: usize) -> ReadyCheck {
    Arc::new(move || {
        let healthy = ring.healthy_count();
        if healthy < quorum(replication_factor) {
            return Err(format!(
                "ring has {healthy} healthy ingesters, reads and writes need {}",
                quorum(replication_factor)
            ));
        }
        Ok(())
    })
}

/// Drops pooled clients of ingesters that left the ring, every 30s.
pub fn retain_ring_clients(
    ring: Arc<Ring>,
    pool: Arc<IngesterClientPool>,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(30));
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tick.tick() => {
                    let keep = ring
                        .snapshot()
                        .members()
                        .iter()
                        .map(|m| m.desc.addr.clone())
                        .collect();
                    pool.retain(&keep);
                }
            }
        }
    })
}

/// Each tenant's shuffle shard of the ingester ring, sized by its
/// `ingestion_tenant_shard_size` (static limits and runtime overrides);
/// `lookback` for reads, zero for writes.
pub fn shuffle_sharding(
    ctx: &Context,
    lookback: Duration,
) -> anyhow::Result<Arc<strata_ring::ShuffleSharding>> {
    let config = ctx.config.distributor.clone();
    let overrides = ctx.overrides()?;
    let sizes: strata_ring::ShardSizeFn = Arc::new(move |tenant: &str| {
        config
            .effective_limits(tenant, &overrides)
            .ingestion_tenant_shard_size
    });
    Ok(Arc::new(strata_ring::ShuffleSharding::new(sizes, lookback)))
}

/// Over how many ingesters a tenant's series spread (its shuffle shard, or
/// every healthy ingester), and the replication factor: global series
/// limits become each ingester's share of them.
pub fn series_spread(ctx: &Context) -> anyhow::Result<strata_ingester::SeriesSpreadFn> {
    let ring = ctx.ring()?;
    let config = ctx.config.distributor.clone();
    let overrides = ctx.overrides()?;
    let rf = ctx.config.ring.replication_factor;
    Ok(Arc::new(move |tenant: &str| {
        let healthy = ring.healthy_count().max(1);
        let shard = config
            .effective_limits(tenant, &overrides)
            .ingestion_tenant_shard_size;
        let ingesters = if shard > 0 {
            shard.min(healthy)
        } else {
            healthy
        };
        (ingesters, rf.min(ingesters))
    }))
}
