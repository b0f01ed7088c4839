//! The ingester module: in-memory series replayed from the write-ahead log
//! before anything is served, flushing to long-term storage, the gRPC
//! server, and ring membership (the lifecycler).
//!
//! Shutdown, first pass: turn LEAVING, (a separate ingester) wait the
//! leaving period, drain the gRPC server. Second pass, once nothing more
//! arrives: the final flush when asked for, write-ahead log checkpoint and
//! close, then leave the ring (or keep the entry).

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use strata_ingester::service::IngesterService;
use strata_ingester::{Ingester, IngesterMetrics};
use strata_ingester_client::{LocalIngester, LocalQueryAnswer};
use strata_ring::{Lifecycler, LifecyclerConfig};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{Context, Module};
use crate::read_gaps::{close_read_gaps, open_read_gaps, READ_GAPS_FILE};
use crate::storage::{flush_routes, RingRank, StoreSink};

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

    async fn query(
        &self,
        tenant: &str,
        matchers: Vec<strata_model::Matcher>,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<LocalQueryAnswer, tonic::Status> {
        let answer = self
            .service
            .query_local(tenant.to_string(), matchers, start_ms, end_ms)
            .await?;
        Ok(LocalQueryAnswer {
            series: answer
                .series
                .into_iter()
                .map(|s| {
                    let chunks = s
                        .chunks
                        .into_iter()
                        .map(|c| strata_proto::ingester::Chunk {
                            start_ms: c.min_time,
                            end_ms: c.max_time,
                            encoding: c.encoding,
                            data: c.data,
                        })
                        .collect();
                    (s.labels, chunks)
                })
                .collect(),
            missing: answer.missing,
            before_join: answer.before_join,
        })
    }
}

struct IngesterModule {
    ingester: Arc<Ingester>,
    wal: Option<Arc<strata_wal::Wal>>,
    // Held until the process stops: one process per log directory.
    _wal_lock: Option<strata_wal::DirLock>,
    /// Shared with `/ready` and the read gaps; emptied on shutdown.
    lifecycler_slot: Arc<tokio::sync::Mutex<Option<Lifecycler>>>,
    /// Taken from the slot in the first shutdown pass.
    lifecycler: Option<Lifecycler>,
    grpc_shutdown: CancellationToken,
    grpc_task: Option<GrpcTask>,
}

pub async fn init(ctx: &mut Context) -> anyhow::Result<Box<dyn Module>> {
    let config = ctx.config.clone();
    let data_dir = ctx.data_dir.clone();
    let ring = ctx.ring()?;
    let store = ctx.store()?;
    let ingester_metrics = IngesterMetrics::default();
    ctx.metrics.register(|r| ingester_metrics.register(r));
    let mut built = Ingester::new(config.ingester.clone(), ingester_metrics)
        .with_overrides(ctx.overrides()?)
        .with_series_spread(super::ring::series_spread(ctx)?);
    let rank: Arc<dyn strata_ingester::FlushRank> = if config.ring.replication_factor > 1 {
        Arc::new(RingRank {
            ring: ring.clone(),
            instance_id: ctx.instance_id.clone(),
            shard_by_all_labels: config.distributor.shard_by_all_labels,
        })
    } else {
        Arc::new(strata_ingester::SoleReplica)
    };
    built = built.with_flushing(Arc::new(StoreSink(store)), rank);
    let mut wal_lock = None;
    let mut wal_handle = None;
    let mut wal_last_written = None;
    if config.ingester.wal.enabled {
        let wal_config = &config.ingester.wal;
        let dir = if wal_config.dir.is_empty() {
            data_dir.join("wal")
        } else {
            PathBuf::from(&wal_config.dir)
        };
        wal_lock = Some(
            strata_wal::DirLock::acquire(&dir)
                .with_context(|| format!("locking the write-ahead log in {}", dir.display()))?,
        );
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
        let stats =
            stats.with_context(|| format!("replaying the write-ahead log in {}", dir.display()))?;
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
        ctx.metrics.register(|r| wal_metrics.register(r));
        let wal = Arc::new(
            strata_wal::Wal::open(wal_config.to_wal_config(dir.clone()), wal_metrics)
                .with_context(|| format!("opening the write-ahead log in {}", dir.display()))?,
        );
        built = replayed.with_wal(wal.clone());
        wal_handle = Some(wal);
    }
    let ingester = Arc::new(built);
    let tokens_file = if config.lifecycler.tokens_file.is_empty() {
        data_dir.join("tokens.json")
    } else {
        PathBuf::from(&config.lifecycler.tokens_file)
    };
    if !ctx.single_process() {
        // Before it serves reads: what it may lack (the one-process
        // mode has no other replica that could have taken writes).
        open_read_gaps(
            &ingester,
            &config,
            &ctx.instance_id,
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
        let stop = ctx.shutdown.clone();
        ctx.tasks.push(tokio::spawn(async move {
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
    ctx.tasks.push(tokio::spawn(
        ingester
            .clone()
            .run_flush_loop(ctx.shutdown.clone().cancelled_owned()),
    ));
    ctx.add_routes(flush_routes(
        ingester.clone(),
        ctx.shutdown.clone(),
        ctx.leave_requested.clone(),
        config.server.graceful_shutdown_timeout,
    ));
    ctx.add_link(
        "/ingester/flush",
        "Flush every chunk to long-term storage now (POST)",
    );

    let grpc_shutdown = CancellationToken::new();
    let (grpc_task, local) = serve_grpc(ctx, &ingester, grpc_shutdown.clone()).await?;

    let rates = ingester.clone();
    let stop = ctx.shutdown.clone();
    ctx.tasks.push(tokio::spawn(async move {
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
    ctx.tasks.push(tokio::spawn(
        ingester
            .clone()
            .run_chunk_age_sweep(ctx.shutdown.clone().cancelled_owned()),
    ));

    if let Some(parent) = tokens_file.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create data directory {}", parent.display()))?;
    }
    let lc_config = LifecyclerConfig {
        id: ctx.instance_id.clone(),
        addr: config.server.advertised_grpc_addr(),
        http_addr: config.server.http_addr(),
        zone: config.lifecycler.zone.clone(),
        num_tokens: config.lifecycler.num_tokens,
        tokens_file: Some(tokens_file),
        heartbeat_period: config.lifecycler.heartbeat_period,
        join_after: config.lifecycler.join_after,
        unregister_on_shutdown: config.lifecycler.unregister_on_shutdown,
    };
    let lc = Lifecycler::start(lc_config, ctx.ring_store()?)
        .await
        .context("joining the ring")?;
    ctx.metrics
        .register(|r| lc.register_metrics(r.sub_registry_with_prefix("strata_lifecycler")));
    tracing::info!(id = lc.id(), "joined the ring");
    let lc = Arc::new(tokio::sync::Mutex::new(Some(lc)));
    if !ctx.single_process() {
        ctx.tasks.push(tokio::spawn(close_read_gaps(
            ingester.clone(),
            lc.clone(),
            config.ring.poll_interval,
            data_dir.join(READ_GAPS_FILE),
        )));
    }
    ctx.ready_checks.push({
        let lifecycler = lc.clone();
        Arc::new(move || {
            let active = lifecycler
                .try_lock()
                .map(|g| g.as_ref().is_some_and(|l| l.is_ready()))
                .unwrap_or(true);
            if !active {
                return Err("ingester is not ACTIVE in the ring yet".into());
            }
            Ok(())
        })
    });
    if let Err(e) = ring.refresh().await {
        tracing::warn!(error = %e, "ring refresh failed");
    }
    ctx.local_ingester = Some(local);
    Ok(Box::new(IngesterModule {
        ingester,
        wal: wal_handle,
        _wal_lock: wal_lock,
        lifecycler_slot: lc,
        lifecycler: None,
        grpc_shutdown,
        grpc_task: Some(grpc_task),
    }))
}

type GrpcTask = JoinHandle<Result<(), tonic::transport::Error>>;

/// Binds the gRPC listener and serves the ingester on it until
/// `grpc_shutdown`; also returns the ingester as the distributor of this
/// process reaches it, by function calls.
async fn serve_grpc(
    ctx: &mut Context,
    ingester: &Arc<Ingester>,
    grpc_shutdown: CancellationToken,
) -> anyhow::Result<(GrpcTask, Arc<dyn LocalIngester>)> {
    let config = &ctx.config;
    let grpc_listener = TcpListener::bind(config.server.grpc_addr())
        .await
        .with_context(|| format!("cannot listen for gRPC on {}", config.server.grpc_addr()))?;
    tracing::info!(addr = %config.server.grpc_addr(), "gRPC server listening");
    let service = IngesterService::new(ingester.clone());
    let local: Arc<dyn LocalIngester> = Arc::new(InProcessIngester {
        id: ctx.instance_id.clone(),
        service: service.clone(),
    });
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
    ctx.metrics
        .register(|r| push_admission.register(r, "strata_ingester_push"));
    let service = service.with_admission(push_admission).into_server();
    let task = tokio::spawn(async move {
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
                grpc_shutdown.cancelled_owned(),
            )
            .await
    });
    Ok((task, local))
}

#[async_trait::async_trait]
impl Module for IngesterModule {
    async fn stop_intake(&mut self, ctx: &Context) {
        // Turn LEAVING first: distributors stop sending here at their next
        // ring refresh while queriers still read from us. A separate
        // ingester stays LEAVING for the leaving period (the one-process
        // mode has no other distributor to tell), then drains in-flight gRPC
        // calls, and only then (second pass) leaves the ring (or keeps its
        // entry, LEAVING).
        self.lifecycler = self.lifecycler_slot.lock().await.take();
        if let Some(lc) = &self.lifecycler {
            if let Err(e) = lc.leave().await {
                tracing::warn!(error = %e, "marking this instance LEAVING failed");
            }
            if !ctx.single_process() {
                let period = if ctx.config.lifecycler.leaving_period.is_zero() {
                    ctx.config.ring.poll_interval.saturating_mul(2)
                } else {
                    ctx.config.lifecycler.leaving_period
                };
                tracing::info!(
                    period_ms = period.as_millis() as u64,
                    "LEAVING: waiting for ring clients to notice"
                );
                tokio::time::sleep(period).await;
            }
        }
        self.grpc_shutdown.cancel();
        let grace = ctx.config.server.graceful_shutdown_timeout;
        if let Some(t) = self.grpc_task.take() {
            match tokio::time::timeout(grace, t).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => tracing::warn!(error = %e, "gRPC server stopped with an error"),
                Ok(Err(e)) => tracing::warn!(error = %e, "gRPC server task failed"),
                Err(_) => tracing::warn!("gRPC server did not stop in time"),
            }
        }
    }

    async fn stop(&mut self, ctx: &Context) {
        let grace = ctx.config.server.graceful_shutdown_timeout;
        let leave = ctx.leave_requested.load(Ordering::SeqCst);
        if ctx.config.ingester.flush_on_shutdown || leave {
            tracing::info!("flushing every chunk before stopping");
            let left = self
                .ingester
                .flush_everything(std::time::Instant::now() + grace.saturating_mul(4))
                .await;
            if left > 0 {
                tracing::error!(
                    unflushed_bytes = left,
                    "stopping with chunks that could not be flushed"
                );
            } else if self.wal.is_some() {
                // Everything is stored: a checkpoint of (nearly) nothing
                // replaces the log, so a restart reads the store instead
                // of re-ingesting.
                if let Err(e) = self.ingester.checkpoint_wal().await {
                    tracing::warn!(error = %e, "write-ahead log checkpoint at shutdown failed");
                }
            }
        }
        if let Some(wal) = &self.wal {
            if let Err(e) = wal.close().await {
                tracing::warn!(error = %e, "closing the write-ahead log failed");
            }
        }
        if let Some(lc) = self.lifecycler.take() {
            let result = if leave {
                lc.shutdown_and_leave().await
            } else {
                lc.shutdown().await
            };
            if let Err(e) = result {
                tracing::warn!(error = %e, "leaving the ring failed");
            }
        }
    }
}
