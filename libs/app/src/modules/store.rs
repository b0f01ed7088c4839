//! The store module: long-term storage, shared by the ingester (flushes)
//! and the querier (reads) when both run here.

use std::sync::Arc;

use anyhow::Context as _;
use strata_store::Store;

use super::{Context, Module, Nothing};

pub async fn init(ctx: &mut Context) -> anyhow::Result<Box<dyn Module>> {
    let store_metrics = strata_store::StoreMetricsSet::default();
    let store = Store::open(
        &ctx.config.storage,
        &ctx.data_dir,
        &ctx.instance_id,
        &store_metrics,
    )
    .await
    .context("opening long-term storage")?;
    ctx.metrics.register(|r| store_metrics.register(r));
    tracing::info!(store = ?store, "long-term storage opened");
    ctx.store = Some(Arc::new(store));
    Ok(Box::new(Nothing))
}
