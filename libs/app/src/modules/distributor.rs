//! The distributor module builds the `Distributor` (with this process's
//! ingester as a function call when it runs here); the push API module
//! serves it as `POST /api/v1/push`.

use std::sync::Arc;

use strata_distributor::{push_routes, Distributor, DistributorMetrics};
use strata_ingester_client::{IngesterClientPool, PoolConfig};

use super::ring::retain_ring_clients;
use super::{Context, Module, Nothing};

pub async fn init(ctx: &mut Context) -> anyhow::Result<Box<dyn Module>> {
    let ring = ctx.ring()?;
    let config = &ctx.config;
    let distributor_metrics = DistributorMetrics::default();
    ctx.metrics.register(|r| distributor_metrics.register(r));
    let pool = Arc::new(IngesterClientPool::new(PoolConfig {
        request_timeout: config.distributor.remote_timeout,
        ..PoolConfig::default()
    }));
    let mut distributor = Distributor::new(
        config.distributor.clone(),
        ring.clone(),
        pool.clone(),
        distributor_metrics,
    );
    if let Some(local) = ctx.local_ingester.clone() {
        distributor = distributor.with_local_ingester(local);
    }
    ctx.metrics.register(|r| {
        distributor
            .admission()
            .register(r, "strata_distributor_push")
    });
    ctx.distributor = Some(Arc::new(distributor));
    ctx.tasks
        .push(retain_ring_clients(ring, pool, ctx.shutdown.clone()));
    Ok(Box::new(Nothing))
}

pub async fn init_push_api(ctx: &mut Context) -> anyhow::Result<Box<dyn Module>> {
    let distributor = ctx.distributor()?;
    ctx.add_routes(push_routes(distributor, ctx.config.auth_enabled));
    ctx.add_link("/api/v1/push", "Remote write endpoint (POST)");
    ctx.require_ring_quorum()?;
    Ok(Box::new(Nothing))
}
