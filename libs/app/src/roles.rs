use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use axum::Router;
use strata_distributor::{push_routes, Distributor, DistributorMetrics};
use strata_ingester::service::IngesterService;
use strata_ingester::{Ingester, IngesterMetrics};
use strata_ingester_client::{IngesterClientPool, LocalIngester, PoolConfig};
use strata_querier::{api_routes, ApiMetrics, IngesterQuerier, IngesterReadMetrics, Querier};
use strata_ring::{
    quorum, Lifecycler, LifecyclerConfig, MemoryRingStore, Ring, RingConfig, RingStore,
};
use strata_server::http::{common_routes, ReadyCheck};
use strata_server::{load_config_with, shutdown_signal, LoadedConfig, MetricsRegistry};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, RingStoreKind};
use crate::ring_http::ring_routes;
use crate::storage::{flush_routes, RingRank, StoreSink};
use strata_store::Store;

/// Which parts a process runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Everything in one process (in-memory ring, replication factor 1).
    All,
    Distributor,
    Ingester,
    Querier,
    Ruler,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::All => "all",
            Role::Distributor => "distributor",
            Role::Ingester => "ingester",
            Role::Querier => "querier",
            Role::Ruler => "ruler",
        }
    }

    fn runs_ingester(self) -> bool {
        matches!(self, Role::All | Role::Ingester)
    }

    fn runs_distributor(self) -> bool {
        matches!(self, Role::All | Role::Distributor)
    }

    fn runs_querier(self) -> bool {
        matches!(self, Role::All | Role::Querier)
    }
}

/// The `main` of every service binary: parses flags, runs the role until
/// SIGTERM/SIGINT, and maps failures to a non-zero exit code.
pub fn main_for(role: Role) -> ExitCode {
    let program = match role {
        Role::All => "strata".to_string(),
        other => format!("strata-{}", other.name()),
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let defaults = match role {
        Role::All => Config::single_process_defaults(),
        _ => Config::default(),
    };
    let config = match load_config_with(&defaults, &program, &args) {
        Ok(LoadedConfig::Run(c)) => c,
        Ok(LoadedConfig::Help(text)) | Ok(LoadedConfig::Print(text)) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("{program}: {e}");
            return ExitCode::from(2);
        }
    };
    strata_server::logging::init_logging(&program);
    strata_server::memory::start_heap_trimmer(Duration::from_secs(5));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{program}: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        let shutdown = CancellationToken::new();
        shutdown_signal(shutdown.clone());
        run(role, config, shutdown).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "exiting");
            eprintln!("{program}: {e:#}");
            ExitCode::FAILURE
        }
    }
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

async fn ring_store(role: Role, config: &Config) -> anyhow::Result<Arc<dyn RingStore>> {
    match config.ring.store {
        RingStoreKind::Memory => {
            if role != Role::All {
                bail!(
                    "ring.store=memory only works when every part runs in one process; \
                     for separate services set ring.store=dynamodb (and ring.dynamodb.*)"
                );
            }
            Ok(Arc::new(MemoryRingStore::new()))
        }
        RingStoreKind::Dynamodb => {
            let d = &config.ring.dynamodb;
            let mut store_config = strata_ring_dynamodb::DynamoRingStoreConfig::new(
                d.table.clone(),
                config.ring.name.clone(),
            );
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

/// This process's ingester as the distributor sees it: pushes to our own
/// instance are function calls rather than gRPC over loopback.
struct InProcessIngester {
    id: String,
    service: IngesterService,
}

#[async_trait::async_trait]
impl LocalIngester for InProcessIngester {
    fn instance_id(&self) -> &str {
        &self.id
    }

    async fn push(
        &self,
        tenant: &str,
        body: bytes::Bytes,
    ) -> Result<strata_proto::ingester::PushResponse, tonic::Status> {
        self.service.push_body(tenant.to_string(), body).await
    }
}

fn instance_id(config: &Config) -> String {
    if !config.lifecycler.id.is_empty() {
        return config.lifecycler.id.clone();
    }
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
        })
        .unwrap_or_else(|| "ingester-1".to_string())
}

/// Drops pooled clients of ingesters that left the ring, every 30s.
fn retain_ring_clients(
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

/// Runs `role` until `terminate` is cancelled (SIGTERM), or a scale-down
/// (`POST /ingester/shutdown`) has flushed and left the ring; after a
/// scale-down a separate ingester keeps answering `/metrics` (and 503 on
/// `/ready`) until `terminate`, so that a supervisor restarting exited
/// processes does not make it join again.
pub async fn run(role: Role, config: Config, terminate: CancellationToken) -> anyhow::Result<()> {
    let shutdown = terminate.child_token();
    let metrics = MetricsRegistry::new();
    let data_dir = if config.data_dir.as_os_str().is_empty() {
        PathBuf::from("data")
    } else {
        config.data_dir.clone()
    };

    let store = ring_store(role, &config).await?;
    let ring = Arc::new(
        Ring::new(ring_config(&config), store.clone()).context("starting the ring client")?,
    );
    metrics.register(|r| ring.register_metrics(r.sub_registry_with_prefix("strata")));

    let http_listener = TcpListener::bind(config.server.http_addr())
        .await
        .with_context(|| format!("cannot listen for HTTP on {}", config.server.http_addr()))?;
    tracing::info!(addr = %config.server.http_addr(), role = role.name(), "HTTP server listening");

    // Long-term storage, shared by the ingester (flushes) and the querier
    // (reads) when both run here.
    let store_metrics = strata_store::StoreMetricsSet::default();
    let long_term = if role.runs_ingester() || role.runs_querier() {
        let store = Store::open(
            &config.storage,
            &data_dir,
            &instance_id(&config),
            &store_metrics,
        )
        .await
        .context("opening long-term storage")?;
        metrics.register(|r| store_metrics.register(r));
        tracing::info!(store = ?store, "long-term storage opened");
        Some(Arc::new(store))
    } else {
        None
    };

    let mut router = Router::new().merge(ring_routes(ring.clone()));
    let mut links = vec![("/ring".to_string(), "Ingester ring status".to_string())];
    let mut tasks = Vec::new();

    // Ingester: in-memory store, gRPC service, ring membership.
    let mut lifecycler: Option<Arc<tokio::sync::Mutex<Option<Lifecycler>>>> = None;
    let mut ingester_handle: Option<Arc<Ingester>> = None;
    let mut wal_handle: Option<Arc<strata_wal::Wal>> = None;
    // Held until this function returns: one process per log directory.
    let mut _wal_lock: Option<strata_wal::DirLock> = None;
    // Set by POST /ingester/shutdown: flush, leave the ring, stop.
    let leave_requested = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut grpc_task = None;
    let mut local_ingester: Option<Arc<dyn LocalIngester>> = None;
    let grpc_shutdown = CancellationToken::new();
    if role.runs_ingester() {
        let ingester_metrics = IngesterMetrics::default();
        metrics.register(|r| ingester_metrics.register(r));
        let mut built = Ingester::new(config.ingester.clone(), ingester_metrics);
        if let Some(store) = &long_term {
            let rank: Arc<dyn strata_ingester::FlushRank> = if config.ring.replication_factor > 1 {
                Arc::new(RingRank {
                    ring: ring.clone(),
                    instance_id: instance_id(&config),
                    shard_by_all_labels: config.distributor.shard_by_all_labels,
                })
            } else {
                Arc::new(strata_ingester::SoleReplica)
            };
            built = built.with_flushing(Arc::new(StoreSink(store.clone())), rank);
        }
        let mut wal_last_written = None;
        if config.ingester.wal.enabled {
            let wal_config = &config.ingester.wal;
            let dir = if wal_config.dir.is_empty() {
                data_dir.join("wal")
            } else {
                PathBuf::from(&wal_config.dir)
            };
            _wal_lock =
                Some(strata_wal::DirLock::acquire(&dir).with_context(|| {
                    format!("locking the write-ahead log in {}", dir.display())
                })?);
            // Before replay and open write to it: when the last process
            // stopped writing.
            wal_last_written = strata_wal::last_written(&dir)
                .with_context(|| format!("reading the write-ahead log in {}", dir.display()))?;
            // Replay before anything is served: the ring sees this
            // instance only once it holds what it acknowledged before.
            let started = std::time::Instant::now();
            let replay_dir = dir.clone();
            let (replayed, stats) = tokio::task::spawn_blocking(move || {
                let stats = built.replay_wal(&replay_dir);
                (built, stats)
            })
            .await
            .context("replaying the write-ahead log")?;
            let stats = stats
                .with_context(|| format!("replaying the write-ahead log in {}", dir.display()))?;
            tracing::info!(
                dir = %dir.display(),
                seconds = started.elapsed().as_secs_f64(),
                series = stats.series,
                samples = stats.samples,
                checkpoint = ?stats.log.checkpoint,
                segments = stats.log.segments,
                truncated_bytes = stats.log.truncated_bytes,
                removed_segments = stats.log.removed_segments,
                samples_unknown_series = stats.samples_unknown_series,
                "write-ahead log replayed"
            );
            let wal_metrics = strata_wal::WalMetrics::default();
            metrics.register(|r| wal_metrics.register(r));
            let wal = Arc::new(
                strata_wal::Wal::open(wal_config.to_wal_config(dir.clone()), wal_metrics)
                    .with_context(|| format!("opening the write-ahead log in {}", dir.display()))?,
            );
            built = replayed.with_wal(wal.clone());
            wal_handle = Some(wal);
        }
        let ingester = Arc::new(built);
        ingester_handle = Some(ingester.clone());
        let tokens_file = if config.lifecycler.tokens_file.is_empty() {
            data_dir.join("tokens.json")
        } else {
            PathBuf::from(&config.lifecycler.tokens_file)
        };
        if role == Role::Ingester {
            // Before it serves reads: what it may lack (the one-process
            // mode has no other replica that could have taken writes).
            open_read_gaps(
                &ingester,
                &config,
                &ring,
                &tokens_file,
                wal_last_written,
                &data_dir,
            )
            .await;
        }
        let period = config.ingester.wal.checkpoint_period;
        if wal_handle.is_some() && !period.is_zero() {
            let ingester = ingester.clone();
            let stop = shutdown.clone();
            tasks.push(tokio::spawn(async move {
                let mut ticker = tokio::time::interval(period);
                ticker.tick().await;
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        _ = ticker.tick() => {}
                    }
                    match ingester.checkpoint_wal().await {
                        Ok(bytes) => tracing::info!(bytes, "write-ahead log checkpoint written"),
                        Err(e) => tracing::warn!(error = %e, "write-ahead log checkpoint failed"),
                    }
                }
            }));
        }
        tasks.push(tokio::spawn(
            ingester
                .clone()
                .run_flush_loop(shutdown.clone().cancelled_owned()),
        ));
        router = router.merge(flush_routes(
            ingester.clone(),
            shutdown.clone(),
            leave_requested.clone(),
            config.server.graceful_shutdown_timeout,
        ));
        links.push((
            "/ingester/flush".to_string(),
            "Flush every chunk to long-term storage now (POST)".to_string(),
        ));
        let grpc_listener = TcpListener::bind(config.server.grpc_addr())
            .await
            .with_context(|| format!("cannot listen for gRPC on {}", config.server.grpc_addr()))?;
        tracing::info!(addr = %config.server.grpc_addr(), "gRPC server listening");
        let service = IngesterService::new(ingester.clone());
        local_ingester = Some(Arc::new(InProcessIngester {
            id: instance_id(&config),
            service: service.clone(),
        }));
        let push_admission = strata_server::admission::Admission::new(
            "ingester overloaded",
            (
                config.ingester.max_inflight_push_requests,
                "ingester.max_inflight_push_requests",
            ),
            (
                config.ingester.max_inflight_push_bytes,
                "ingester.max_inflight_push_bytes",
            ),
        );
        metrics.register(|r| push_admission.register(r, "strata_ingester_push"));
        let service = service.with_admission(push_admission).into_server();
        let stop = grpc_shutdown.clone();
        grpc_task = Some(tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(
                    // Small gRPC answers must not wait for delayed ACKs.
                    tokio_stream::StreamExt::map(
                        tokio_stream::wrappers::TcpListenerStream::new(grpc_listener),
                        |conn| {
                            if let Ok(c) = &conn {
                                let _ = c.set_nodelay(true);
                            }
                            conn
                        },
                    ),
                    stop.cancelled_owned(),
                )
                .await
        }));

        let rates = ingester.clone();
        let stop = shutdown.clone();
        tasks.push(tokio::spawn(async move {
            let period = Duration::from_secs(15);
            let mut tick = tokio::time::interval(period);
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tick.tick() => rates.tick_rates(period.as_secs_f64()),
                }
            }
        }));

        // Close the open chunks of series that stopped receiving samples.
        tasks.push(tokio::spawn(
            ingester
                .clone()
                .run_chunk_age_sweep(shutdown.clone().cancelled_owned()),
        ));

        if let Some(parent) = tokens_file.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create data directory {}", parent.display()))?;
        }
        let lc_config = LifecyclerConfig {
            id: instance_id(&config),
            addr: config.server.advertised_grpc_addr(),
            http_addr: config.server.http_addr(),
            zone: config.lifecycler.zone.clone(),
            num_tokens: config.lifecycler.num_tokens,
            tokens_file: Some(tokens_file),
            heartbeat_period: config.lifecycler.heartbeat_period,
            join_after: config.lifecycler.join_after,
            unregister_on_shutdown: config.lifecycler.unregister_on_shutdown,
        };
        let lc = Lifecycler::start(lc_config, store.clone())
            .await
            .context("joining the ring")?;
        metrics.register(|r| lc.register_metrics(r.sub_registry_with_prefix("strata_lifecycler")));
        tracing::info!(id = lc.id(), "joined the ring");
        let lc = Arc::new(tokio::sync::Mutex::new(Some(lc)));
        if role == Role::Ingester {
            tasks.push(tokio::spawn(close_read_gaps(
                ingester.clone(),
                lc.clone(),
                config.ring.poll_interval,
                data_dir.join(READ_GAPS_FILE),
            )));
        }
        lifecycler = Some(lc);
        if let Err(e) = ring.refresh().await {
            tracing::warn!(error = %e, "ring refresh failed");
        }
    }

    if role.runs_distributor() {
        let distributor_metrics = DistributorMetrics::default();
        metrics.register(|r| distributor_metrics.register(r));
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
        if let Some(local) = local_ingester.clone() {
            distributor = distributor.with_local_ingester(local);
        }
        metrics.register(|r| {
            distributor
                .admission()
                .register(r, "strata_distributor_push")
        });
        let distributor = Arc::new(distributor);
        router = router.merge(push_routes(distributor, config.auth_enabled));
        links.push((
            "/api/v1/push".to_string(),
            "Remote write endpoint (POST)".to_string(),
        ));

        tasks.push(retain_ring_clients(ring.clone(), pool, shutdown.clone()));
    }

    if role.runs_querier() {
        let api_metrics = ApiMetrics::default();
        let read_metrics = IngesterReadMetrics::default();
        metrics.register(|r| {
            let r = r.sub_registry_with_prefix("strata");
            api_metrics.register(r);
            read_metrics.register(r);
        });
        let pool = Arc::new(IngesterClientPool::new(PoolConfig {
            request_timeout: config.querier.timeout,
            ..PoolConfig::default()
        }));
        let ingesters = IngesterQuerier::new(
            ring.clone(),
            pool.clone(),
            config.distributor.shard_by_all_labels,
            read_metrics,
        );
        let mut querier = Querier::new(config.querier.clone(), ingesters);
        if let Some(store) = &long_term {
            querier = querier.with_store(store.clone());
        }
        metrics.register(|r| querier.register_metrics(r.sub_registry_with_prefix("strata")));
        let querier = Arc::new(querier);
        router = router.merge(api_routes(querier, config.auth_enabled, api_metrics));
        links.push((
            "/prometheus/api/v1/status/buildinfo".to_string(),
            "Prometheus query API (/prometheus/api/v1/query, query_range, series, labels, ...)"
                .to_string(),
        ));
        tasks.push(retain_ring_clients(ring.clone(), pool, shutdown.clone()));
    }

    let ready: ReadyCheck = {
        let ring = ring.clone();
        let lifecycler = lifecycler.clone();
        // Writes and reads both need a quorum of each series' replicas.
        let needs_quorum = role.runs_distributor() || role.runs_querier();
        let rf = config.ring.replication_factor;
        Arc::new(move || {
            if let Some(lc) = &lifecycler {
                let active = lc
                    .try_lock()
                    .map(|g| g.as_ref().is_some_and(|l| l.is_ready()))
                    .unwrap_or(true);
                if !active {
                    return Err("ingester is not ACTIVE in the ring yet".into());
                }
            }
            if needs_quorum {
                let healthy = ring.healthy_count();
                if healthy < quorum(rf) {
                    return Err(format!(
                        "ring has {healthy} healthy ingesters, reads and writes need {}",
                        quorum(rf)
                    ));
                }
            }
            Ok(())
        })
    };
    router = router.merge(common_routes(role.name(), metrics.clone(), ready, links));

    // A separate service's HTTP server outlives a scale-down (see above).
    let http_stop = if role == Role::All {
        shutdown.clone()
    } else {
        terminate.clone()
    };
    let http_task = tokio::spawn(async move {
        // Answers written in more than one segment must not wait for the
        // client's delayed ACK (Nagle), which adds ~40 ms to a query.
        let listener = axum::serve::ListenerExt::tap_io(http_listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        axum::serve(listener, router)
            .with_graceful_shutdown(async move { http_stop.cancelled().await })
            .await
    });

    shutdown.cancelled().await;
    tracing::info!("shutting down");
    // Turn LEAVING first: distributors stop sending here at their next ring
    // refresh while queriers still read from us. A separate ingester stays
    // LEAVING for the leaving period (the one-process mode has no other
    // distributor to tell), then drains in-flight gRPC calls, and only then
    // leaves the ring (or keeps its entry, LEAVING).
    let lifecycler = match lifecycler {
        Some(lc) => lc.lock().await.take(),
        None => None,
    };
    if let Some(lc) = &lifecycler {
        if let Err(e) = lc.leave().await {
            tracing::warn!(error = %e, "marking this instance LEAVING failed");
        }
        if role == Role::Ingester {
            let period = if config.lifecycler.leaving_period.is_zero() {
                config.ring.poll_interval.saturating_mul(2)
            } else {
                config.lifecycler.leaving_period
            };
            tracing::info!(
                period_ms = period.as_millis() as u64,
                "LEAVING: waiting for ring clients to notice"
            );
            tokio::time::sleep(period).await;
        }
    }
    grpc_shutdown.cancel();
    let grace = config.server.graceful_shutdown_timeout;
    if let Some(t) = grpc_task {
        match tokio::time::timeout(grace, t).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => tracing::warn!(error = %e, "gRPC server stopped with an error"),
            Ok(Err(e)) => tracing::warn!(error = %e, "gRPC server task failed"),
            Err(_) => tracing::warn!("gRPC server did not stop in time"),
        }
    }
    // Pushes arrive over HTTP in the one-process mode: drain them before
    // the final flush.
    let mut http_task = Some(http_task);
    let mut http_result = None;
    if role == Role::All {
        if let Some(task) = http_task.take() {
            http_result = Some(tokio::time::timeout(grace, task).await);
        }
    }
    let leave = leave_requested.load(std::sync::atomic::Ordering::SeqCst);
    if let Some(ingester) = &ingester_handle {
        if config.ingester.flush_on_shutdown || leave {
            tracing::info!("flushing every chunk before stopping");
            let left = ingester
                .flush_everything(std::time::Instant::now() + grace.saturating_mul(4))
                .await;
            if left > 0 {
                tracing::error!(
                    unflushed_bytes = left,
                    "stopping with chunks that could not be flushed"
                );
            } else if wal_handle.is_some() {
                // Everything is stored: a checkpoint of (nearly) nothing
                // replaces the log, so a restart reads the store instead
                // of re-ingesting.
                if let Err(e) = ingester.checkpoint_wal().await {
                    tracing::warn!(error = %e, "write-ahead log checkpoint at shutdown failed");
                }
            }
        }
    }
    if let Some(wal) = &wal_handle {
        if let Err(e) = wal.close().await {
            tracing::warn!(error = %e, "closing the write-ahead log failed");
        }
    }
    if let Some(lc) = lifecycler {
        let result = if leave {
            lc.shutdown_and_leave().await
        } else {
            lc.shutdown().await
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "leaving the ring failed");
        }
    }
    if leave && role != Role::All {
        tracing::info!(
            "left the ring after POST /ingester/shutdown; answering /metrics (and 503 on /ready) until SIGTERM, and not joining again"
        );
        terminate.cancelled().await;
    }
    if let Some(task) = http_task.take() {
        http_result = Some(tokio::time::timeout(grace, task).await);
    }
    match http_result.unwrap_or(Ok(Ok(Ok(())))) {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => tracing::warn!(error = %e, "HTTP server stopped with an error"),
        Ok(Err(e)) => tracing::warn!(error = %e, "HTTP server task failed"),
        Err(_) => tracing::warn!("HTTP server did not stop in time"),
    }
    for t in tasks {
        t.abort();
    }
    tracing::info!("stopped");
    Ok(())
}

/// Where an ingester keeps its read gaps (see `strata_ingester::gaps`).
const READ_GAPS_FILE: &str = "read-gaps";

/// Sets the ingester's read gaps at start: those of earlier runs that have
/// not expired, and the one this start opens (saved at once, so a crash
/// before it is back in the ring keeps it).
async fn open_read_gaps(
    ingester: &Ingester,
    config: &Config,
    ring: &Ring,
    tokens_file: &std::path::Path,
    wal_last_written: Option<std::time::SystemTime>,
    data_dir: &std::path::Path,
) {
    use strata_ingester::gaps;
    if let Err(e) = ring.refresh().await {
        tracing::warn!(error = %e, "ring refresh failed");
    }
    let me = instance_id(config);
    let snapshot = ring.snapshot();
    let facts = gaps::StartFacts {
        wal_last_written_ms: wal_last_written.map(strata_model::duration::unix_ms),
        was_member: tokens_file.exists() || snapshot.member(&me).is_some(),
        ring_full_without_it: config.ingester.read_gap_on_join
            && snapshot
                .members()
                .iter()
                .filter(|m| {
                    m.desc.id != me
                        && m.desc.state == strata_ring::InstanceState::Active
                        && !m.desc.tokens.is_empty()
                })
                .count()
                >= config.ring.replication_factor,
        lookback_ms: strata_model::duration::duration_ms(config.ingester.read_gap_lookback),
    };
    let path = data_dir.join(READ_GAPS_FILE);
    let mut all = gaps::load(&path);
    let opened = gaps::gap_at_start(&facts);
    all.extend(opened);
    ingester.set_read_gaps(all);
    let kept = ingester.read_gaps();
    if let Err(e) = gaps::save(&path, &kept) {
        tracing::warn!(path = %path.display(), error = %e, "cannot save the read gaps");
    }
    tracing::info!(
        opened = ?opened.map(|g| g.start_ms),
        facts = ?facts,
        gaps = kept.len(),
        "read gaps: queriers will not count this ingester for these ranges"
    );
}

/// Once the ingester is ACTIVE, ends its open read gap when every
/// distributor will have seen it (two ring polls later), and saves the gaps.
async fn close_read_gaps(
    ingester: Arc<Ingester>,
    lifecycler: Arc<tokio::sync::Mutex<Option<Lifecycler>>>,
    poll_interval: Duration,
    path: PathBuf,
) {
    use strata_ingester::gaps;
    loop {
        let active = lifecycler
            .lock()
            .await
            .as_ref()
            .is_some_and(|l| l.is_ready());
        if active {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let end = strata_model::duration::now_ms().saturating_add(strata_model::duration::duration_ms(
        poll_interval.saturating_mul(2),
    ));
    let mut all = ingester.read_gaps();
    gaps::close_open(&mut all, end);
    ingester.set_read_gaps(all);
    if let Err(e) = gaps::save(&path, &ingester.read_gaps()) {
        tracing::warn!(path = %path.display(), error = %e, "cannot save the read gaps");
    }
}
