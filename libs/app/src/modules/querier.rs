//! The querier module builds the `Querier` (over the ingesters in the ring
//! and long-term storage); the query API module serves Prometheus's HTTP
//! query API over it.

use std::sync::Arc;

use strata_ingester_client::{IngesterClientPool, PoolConfig};
use strata_querier::{api_routes, ApiMetrics, IngesterQuerier, IngesterReadMetrics, Querier};

use super::ring::retain_ring_clients;
use super::{Context, Module, Nothing};

pub async fn init(ctx: &mut Context) -> anyhow::Result<Box<dyn Module>> {
    let ring = ctx.ring()?;
    let store = ctx.store()?;
    let config = &ctx.config;
    let read_metrics = IngesterReadMetrics::default();
    ctx.metrics
        .register(|r| read_metrics.register(r.sub_registry_with_prefix("strata")));
    let pool = Arc::new(IngesterClientPool::new(PoolConfig {
        request_timeout: config.querier.timeout,
        ..PoolConfig::default()
    }));
    let mut ingesters = IngesterQuerier::new(
        ring.clone(),
        pool.clone(),
        config.distributor.shard_by_all_labels,
        read_metrics,
    )
    .with_shuffle_sharding(super::ring::shuffle_sharding(
        ctx,
        config.querier.shuffle_sharding_lookback,
    )?);
    if let Some(local) = ctx.local_ingester.clone() {
        ingesters = ingesters.with_local_ingester(local);
    }
    let querier = Querier::new(config.querier.clone(), ingesters)
        .with_store(store)
        .with_overrides(ctx.overrides()?);
    ctx.metrics
        .register(|r| querier.register_metrics(r.sub_registry_with_prefix("strata")));
    ctx.querier = Some(Arc::new(querier));
    ctx.tasks
        .push(retain_ring_clients(ring, pool, ctx.shutdown.clone()));
    Ok(Box::new(Nothing))
}

pub async fn init_query_api(ctx: &mut Context) -> anyhow::Result<Box<dyn Module>> {
    let querier = ctx.querier()?;
    let api_metrics = ApiMetrics::default();
    ctx.metrics
        .register(|r| api_metrics.register(r.sub_registry_with_prefix("strata")));
    ctx.add_routes(api_routes(querier, ctx.config.auth_enabled, api_metrics));
    ctx.add_link(
        "/prometheus/api/v1/status/buildinfo",
        "Prometheus query API (/prometheus/api/v1/query, query_range, series, labels, ...)",
    );
    ctx.require_ring_quorum()?;
    Ok(Box::new(Nothing))
}
