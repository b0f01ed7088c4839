//! The distributor module builds the `Distributor` (with this process's
//! ingester as a function call when it runs here, and the HA tracker's
//! store); the push API module serves it as `POST /api/v1/push`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context as _};
use axum::extract::State;
use axum::response::Html;
use axum::routing::get;
use axum::Router;
use strata_distributor::{
    push_routes, CasOutcome, Distributor, DistributorMetrics, HaStore, HaStoreError, HaTracker,
    ReplicaDesc, VersionedReplica,
};
use strata_ingester_client::{IngesterClientPool, PoolConfig};
use strata_ring_dynamodb::{DynamoHaStore, DynamoHaStoreConfig, HaRecord, HaWrite};
use tokio_util::sync::CancellationToken;

use super::ring::retain_ring_clients;
use super::{Context, Module, Nothing};
use crate::config::RingStoreKind;

/// Clusters no push named for this long leave the HA tracker's cache (their
/// records stay in the store).
const HA_IDLE_CLUSTER: Duration = Duration::from_secs(30 * 60);

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
    )
    .with_overrides(ctx.overrides()?)
    .with_shuffle_sharding(super::ring::shuffle_sharding(ctx, Duration::ZERO)?);
    if let Some(local) = ctx.local_ingester.clone() {
        distributor = distributor.with_local_ingester(local);
    }
    if config.distributor.ha_tracker.enabled {
        config
            .distributor
            .ha_tracker
            .validate()
            .map_err(|e| anyhow!(e))?;
        // The one-process mode keeps elections in memory (the default);
        // separate distributors share them where the ring lives.
        if config.ring.store == RingStoreKind::Dynamodb {
            distributor = distributor.with_ha_store(dynamo_ha_store(ctx).await?);
        }
    }
    ctx.metrics.register(|r| {
        distributor
            .admission()
            .register(r, "strata_distributor_push")
    });
    if let Some(tracker) = distributor.ha_tracker() {
        ctx.tasks
            .push(prune_ha_clusters(tracker.clone(), ctx.shutdown.clone()));
    }
    ctx.distributor = Some(Arc::new(distributor));
    ctx.tasks
        .push(retain_ring_clients(ring, pool, ctx.shutdown.clone()));
    Ok(Box::new(Nothing))
}

pub async fn init_push_api(ctx: &mut Context) -> anyhow::Result<Box<dyn Module>> {
    let distributor = ctx.distributor()?;
    ctx.add_routes(push_routes(distributor.clone(), ctx.config.auth_enabled));
    ctx.add_link("/api/v1/push", "Remote write endpoint (POST)");
    if let Some(tracker) = distributor.ha_tracker() {
        ctx.add_routes(
            Router::new()
                .route("/distributor/ha_tracker", get(ha_tracker_page))
                .with_state(tracker.clone()),
        );
        ctx.add_link("/distributor/ha_tracker", "HA tracker: elected replicas");
    }
    ctx.require_ring_quorum()?;
    // The global rate strategy: distributors count each other in a ring of
    // their own (one process is alone).
    let lifecycler = if ctx.config.distributor.ingestion_rate_strategy
        == strata_distributor::RateStrategy::Global
        && !ctx.single_process()
    {
        let store = super::ring::ring_store(ctx, "distributor").await?;
        let ring = Arc::new(
            strata_ring::Ring::new(
                strata_ring::RingConfig {
                    heartbeat_timeout: ctx.config.ring.heartbeat_timeout,
                    forget_timeout: Some(ctx.config.ring.heartbeat_timeout.saturating_mul(2)),
                    replication_factor: 1,
                    zone_awareness: false,
                    poll_interval: ctx.config.ring.poll_interval,
                },
                store.clone(),
            )
            .context("starting the distributor ring client")?,
        );
        let lc = strata_ring::Lifecycler::start(
            strata_ring::LifecyclerConfig {
                id: ctx.instance_id.clone(),
                addr: ctx.config.server.advertised_grpc_addr(),
                http_addr: ctx.config.server.advertised_http_addr(),
                zone: String::new(),
                num_tokens: 1,
                tokens_file: None,
                heartbeat_period: ctx.config.distributor.ring_heartbeat_period,
                join_after: Duration::ZERO,
                unregister_on_shutdown: true,
            },
            store,
        )
        .await
        .context("joining the distributor ring")?;
        if let Err(e) = ring.refresh().await {
            tracing::warn!(error = %e, "distributor ring refresh failed");
        }
        // strata_distributor_ring_members{state} and friends.
        ctx.metrics
            .register(|r| ring.register_metrics(r.sub_registry_with_prefix("strata_distributor")));
        tracing::info!(
            members = ring.healthy_count(),
            "joined the distributor ring (global ingestion rate strategy)"
        );
        distributor.set_distributor_ring(ring);
        Some(lc)
    } else {
        None
    };
    Ok(Box::new(PushApi { lifecycler }))
}

/// The push API; with the global rate strategy, this distributor's place in
/// the distributor ring.
struct PushApi {
    lifecycler: Option<strata_ring::Lifecycler>,
}

#[async_trait::async_trait]
impl Module for PushApi {
    /// Leaves the distributor ring, so the others take up its share.
    async fn stop_intake(&mut self, _ctx: &Context) {
        if let Some(lc) = self.lifecycler.take() {
            if let Err(e) = lc.shutdown_and_leave().await {
                tracing::warn!(error = %e, "leaving the distributor ring failed");
            }
        }
    }
}

/// The HA tracker's records in the ring's DynamoDB table.
async fn dynamo_ha_store(ctx: &Context) -> anyhow::Result<Arc<dyn HaStore>> {
    let d = &ctx.config.ring.dynamodb;
    let mut config = DynamoHaStoreConfig::new(d.table.clone());
    config.aws.region = d.region.clone();
    config.aws.endpoint_url = (!d.endpoint.is_empty()).then(|| d.endpoint.clone());
    let store = DynamoHaStore::connect(&config).await;
    if d.create_table {
        store
            .ensure_table()
            .await
            .context("creating the DynamoDB table of the HA tracker")?;
    }
    Ok(Arc::new(DynamoHa(store)))
}

/// The distributor's [`HaStore`] over [`DynamoHaStore`] (which knows
/// nothing of the distributor).
struct DynamoHa(DynamoHaStore);

type HaFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, HaStoreError>> + Send + 'a>>;

impl HaStore for DynamoHa {
    fn get<'a>(
        &'a self,
        tenant: &'a str,
        cluster: &'a str,
    ) -> HaFuture<'a, Option<VersionedReplica>> {
        Box::pin(async move {
            let got = self
                .0
                .get(tenant, cluster)
                .await
                .map_err(|e| HaStoreError(e.to_string()))?;
            Ok(got.map(|(record, version)| VersionedReplica {
                desc: ReplicaDesc {
                    replica: record.replica,
                    received_at_ms: record.received_at_ms,
                },
                version,
            }))
        })
    }

    fn compare_and_swap<'a>(
        &'a self,
        tenant: &'a str,
        cluster: &'a str,
        expected_version: Option<u64>,
        desc: &'a ReplicaDesc,
    ) -> HaFuture<'a, CasOutcome> {
        Box::pin(async move {
            let record = HaRecord {
                replica: desc.replica.clone(),
                received_at_ms: desc.received_at_ms,
            };
            let written = self
                .0
                .compare_and_swap(tenant, cluster, expected_version, &record)
                .await
                .map_err(|e| HaStoreError(e.to_string()))?;
            Ok(match written {
                HaWrite::Written { version } => CasOutcome::Written { version },
                HaWrite::Conflict => CasOutcome::Conflict,
            })
        })
    }
}

/// Forgets idle clusters from the HA tracker's cache, every minute.
fn prune_ha_clusters(
    tracker: Arc<HaTracker>,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tick.tick() => {
                    let pruned = tracker.prune_idle(strata_ring::now_ms(), HA_IDLE_CLUSTER);
                    if pruned > 0 {
                        tracing::debug!(pruned, "HA tracker forgot idle clusters");
                    }
                }
            }
        }
    })
}

/// `GET /distributor/ha_tracker`: the elected replica of each cluster, as
/// this distributor last read or wrote it.
async fn ha_tracker_page(State(tracker): State<Arc<HaTracker>>) -> Html<String> {
    use strata_ring::escape_html;
    let now = strata_ring::now_ms();
    let config = tracker.config();
    let mut rows = String::new();
    for (tenant, cluster, replica, received_at_ms) in tracker.elected() {
        let age = (now - received_at_ms).max(0) as f64 / 1000.0;
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{age:.1}s ago</td><td>{:.1}s</td></tr>\n",
            escape_html(&tenant),
            escape_html(&cluster),
            escape_html(&replica),
            (config.failover_timeout.as_millis() as f64 / 1000.0 - age).max(0.0),
        ));
    }
    Html(format!(
        "<!DOCTYPE html>\n<html><head><title>HA tracker</title></head><body>\n\
         <h1>HA tracker</h1>\n\
         <p>Cluster label <code>{}</code>, replica label <code>{}</code>; failover after {}.</p>\n\
         <table border=\"1\" cellpadding=\"4\">\n\
         <tr><th>Tenant</th><th>Cluster</th><th>Elected replica</th><th>Last written</th><th>Failover in</th></tr>\n\
         {rows}</table>\n</body></html>\n",
        escape_html(&config.cluster_label),
        escape_html(&config.replica_label),
        strata_model::duration::format_duration(config.failover_timeout),
    ))
}
