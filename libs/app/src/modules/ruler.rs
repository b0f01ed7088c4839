//! The ruler module: the rule store, the rules API, the groups this
//! instance evaluates (all of them in one process; its share of the ruler
//! ring otherwise), reading through the querier and writing through the
//! distributor in process, and alerts to Alertmanager.

use std::sync::Arc;

use anyhow::Context as _;
use strata_distributor::Distributor;
use strata_notifier::{NotifierConfig, NotifierManager, NotifierMetrics};
use strata_querier::{Querier, QueryOverrides, QueryRange};
use strata_remote_write::OwnedTimeSeries;
use strata_ring::{Lifecycler, LifecyclerConfig, Ring, RingConfig};
use strata_ruler::{
    GroupDeps, RuleQuerier, RuleStorageBackend, RuleStore, RuleWriter, RulerManager, RulerMetrics,
    RulerRing,
};
use strata_store::{ChunksBackend, ChunksConfig, LocalChunksConfig};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{Context, Module};

/// Rule expressions as instant queries of the querier (ingesters and
/// long-term storage), with its limits.
struct QuerierReads(Arc<Querier>);

#[async_trait::async_trait]
impl RuleQuerier for QuerierReads {
    async fn query(
        &self,
        tenant: &str,
        expr: &str,
        t_ms: i64,
    ) -> Result<strata_promql::Value, String> {
        self.0
            .query(
                tenant,
                expr,
                QueryRange::Instant { time_ms: t_ms },
                QueryOverrides::default(),
            )
            .await
            .map(|out| out.value)
            .map_err(|e| e.to_string())
    }
}

/// Rule results through the distributor's in-process API: validated,
/// limited and replicated as any push.
struct DistributorWrites(Arc<Distributor>);

#[async_trait::async_trait]
impl RuleWriter for DistributorWrites {
    async fn write(&self, tenant: &str, series: Vec<OwnedTimeSeries>) -> Result<(), String> {
        self.0
            .push_series(tenant, &series)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

pub async fn init(ctx: &mut Context) -> anyhow::Result<Box<dyn Module>> {
    let config = Arc::new(ctx.config.ruler.clone());
    // The rule store: a directory, or the chunk store's S3 bucket under
    // a prefix no tenant ID can take.
    let (chunks, prefix) = match config.storage.backend {
        RuleStorageBackend::Local => {
            let dir = if config.storage.directory.is_empty() {
                ctx.data_dir.join("rules")
            } else {
                config.storage.directory.clone().into()
            };
            let local = ChunksConfig {
                backend: ChunksBackend::Local,
                local: LocalChunksConfig {
                    directory: dir.display().to_string(),
                },
                ..ChunksConfig::default()
            };
            (local, "")
        }
        RuleStorageBackend::S3 => {
            let mut s3 = ctx.config.storage.chunks.clone();
            s3.backend = ChunksBackend::S3;
            (s3, "@rules/")
        }
    };
    let objects = strata_store::open_object_store(&chunks, &ctx.data_dir)
        .await
        .context("opening the rule store (ruler.storage)")?;
    let store = Arc::new(RuleStore::new(objects, prefix));
    tracing::info!(store = ?store, "rule store opened");

    let notifier_metrics = NotifierMetrics::default();
    ctx.metrics
        .register(|r| notifier_metrics.register(r.sub_registry_with_prefix("strata")));
    let notifier = Arc::new(
        NotifierManager::new(
            NotifierConfig {
                alertmanager_urls: config.alertmanager_urls.clone(),
                queue_capacity: config.notification_queue_capacity,
                timeout: config.notification_timeout,
                external_labels: config.external_labels.clone(),
                ..NotifierConfig::default()
            },
            notifier_metrics,
        )
        .context("ruler.alertmanager_urls")?,
    );
    let metrics = RulerMetrics::default();
    ctx.metrics
        .register(|r| metrics.register(r.sub_registry_with_prefix("strata")));
    let deps = Arc::new(GroupDeps {
        config: config.clone(),
        querier: Arc::new(QuerierReads(ctx.querier()?)),
        writer: Arc::new(DistributorWrites(ctx.distributor()?)),
        notifier: notifier.clone(),
        metrics,
        runtime: tokio::runtime::Handle::current(),
    });

    // Replicas share the groups through the ruler ring; one process
    // evaluates them all.
    let (ring, lifecycler) = if ctx.single_process() {
        (None, None)
    } else {
        let ring_store = super::ring::ring_store(ctx, &config.ring.name).await?;
        let ring = Arc::new(
            Ring::new(
                RingConfig {
                    heartbeat_timeout: config.ring.heartbeat_timeout,
                    forget_timeout: None,
                    replication_factor: 1,
                    zone_awareness: false,
                    poll_interval: config.ring.poll_interval,
                },
                ring_store.clone(),
            )
            .context("starting the ruler ring client")?,
        );
        let lc = Lifecycler::start(
            LifecyclerConfig {
                id: ctx.instance_id.clone(),
                addr: ctx.config.server.advertised_grpc_addr(),
                http_addr: ctx.config.server.advertised_http_addr(),
                zone: String::new(),
                num_tokens: config.ring.num_tokens,
                tokens_file: Some(ctx.data_dir.join("ruler-tokens.json")),
                heartbeat_period: config.ring.heartbeat_period,
                join_after: std::time::Duration::ZERO,
                unregister_on_shutdown: true,
            },
            ring_store,
        )
        .await
        .context("joining the ruler ring")?;
        if let Err(e) = ring.refresh().await {
            tracing::warn!(error = %e, "ruler ring refresh failed");
        }
        tracing::info!(id = lc.id(), "joined the ruler ring");
        let ruler_ring = RulerRing {
            ring,
            instance_id: ctx.instance_id.clone(),
        };
        (Some(ruler_ring), Some(lc))
    };
    let manager = Arc::new(RulerManager::new(store, deps, ring).with_overrides(ctx.overrides()?));
    ctx.add_routes(strata_ruler::ruler_routes(
        manager.clone(),
        ctx.config.auth_enabled,
    ));
    ctx.add_link(
        "/prometheus/api/v1/rules",
        "Rules and their state (/prometheus/config/v1/rules to manage them)",
    );
    // It reads and writes series: it needs the ingesters.
    ctx.require_ring_quorum()?;
    let stop = CancellationToken::new();
    let task = tokio::spawn(manager.clone().run(stop.clone()));
    Ok(Box::new(RulerModule {
        stop,
        task: Some(task),
        lifecycler,
        notifier,
    }))
}

struct RulerModule {
    stop: CancellationToken,
    task: Option<JoinHandle<()>>,
    lifecycler: Option<Lifecycler>,
    notifier: Arc<NotifierManager>,
}

#[async_trait::async_trait]
impl Module for RulerModule {
    /// Stops evaluating (before the ingester's final flush in one process,
    /// so the last results are in it), then leaves the ruler ring so the
    /// other replicas take the groups at once.
    async fn stop_intake(&mut self, _ctx: &Context) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            if tokio::time::timeout(std::time::Duration::from_secs(30), task)
                .await
                .is_err()
            {
                tracing::warn!("rule groups did not stop in time");
            }
        }
        if let Some(lc) = self.lifecycler.take() {
            if let Err(e) = lc.shutdown_and_leave().await {
                tracing::warn!(error = %e, "leaving the ruler ring failed");
            }
        }
        self.notifier.stop().await;
    }
}
