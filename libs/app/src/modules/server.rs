//! The server module: the HTTP listener, bound early (a port in use fails
//! before the write-ahead log is replayed or the ring joined), serving every
//! module's routes once all are initialised, with `/metrics`, `/ready` and
//! the index page.
//!
//! It drains in the first shutdown pass in the one-process mode, where
//! pushes arrive over HTTP and must land before the ingester's final flush;
//! otherwise in the second pass, last of all. After a scale-down
//! (`POST /ingester/shutdown`) a separate service keeps serving `/metrics`
//! (and 503 on `/ready`) until SIGTERM, so that a supervisor restarting
//! exited processes does not make it join again.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use anyhow::Context as _;
use strata_server::http::{common_routes, ReadyCheck};
use tokio::net::TcpListener;
use tokio::task::{JoinError, JoinHandle};
use tokio::time::error::Elapsed;

use super::{Context, Module};

pub async fn init(ctx: &mut Context) -> anyhow::Result<Box<dyn Module>> {
    let addr = ctx.config.server.http_addr();
    let listener = TcpListener::bind(&addr)
        .await
        .with_context(|| format!("cannot listen for HTTP on {addr}"))?;
    tracing::info!(addr = %addr, role = ctx.role.name(), "HTTP server listening");
    Ok(Box::new(Server {
        listener: Some(listener),
        task: None,
        result: None,
    }))
}

type Served = Result<Result<std::io::Result<()>, JoinError>, Elapsed>;

struct Server {
    listener: Option<TcpListener>,
    task: Option<JoinHandle<std::io::Result<()>>>,
    /// How the server stopped, once drained.
    result: Option<Served>,
}

impl Server {
    /// Waits (at most the graceful shutdown timeout) for the server to
    /// finish the requests in flight.
    async fn drain(&mut self, ctx: &Context) {
        if let Some(task) = self.task.take() {
            let grace = ctx.config.server.graceful_shutdown_timeout;
            self.result = Some(tokio::time::timeout(grace, task).await);
        }
    }
}

#[async_trait::async_trait]
impl Module for Server {
    async fn start(&mut self, ctx: &mut Context) -> anyhow::Result<()> {
        let listener = self
            .listener
            .take()
            .context("the HTTP server is started twice")?;
        let checks = std::mem::take(&mut ctx.ready_checks);
        let ready: ReadyCheck = Arc::new(move || checks.iter().try_for_each(|check| check()));
        let router = std::mem::take(&mut ctx.routes).merge(common_routes(
            ctx.role.name(),
            ctx.metrics.clone(),
            ready,
            std::mem::take(&mut ctx.links),
        ));
        // A separate service's HTTP server outlives a scale-down (see above).
        let http_stop = if ctx.single_process() {
            ctx.shutdown.clone()
        } else {
            ctx.terminate.clone()
        };
        self.task = Some(tokio::spawn(async move {
            // Answers written in more than one segment must not wait for the
            // client's delayed ACK (Nagle), which adds ~40 ms to a query.
            let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
                let _ = tcp.set_nodelay(true);
            });
            axum::serve(listener, router)
                .with_graceful_shutdown(async move { http_stop.cancelled().await })
                .await
        }));
        Ok(())
    }

    async fn stop_intake(&mut self, ctx: &Context) {
        // Pushes arrive over HTTP in the one-process mode: drain them before
        // the final flush.
        if ctx.single_process() {
            self.drain(ctx).await;
        }
    }

    async fn stop(&mut self, ctx: &Context) {
        if ctx.leave_requested.load(Ordering::SeqCst) && !ctx.single_process() {
            tracing::info!(
                "left the ring after POST /ingester/shutdown; answering /metrics (and 503 on /ready) until SIGTERM, and not joining again"
            );
            ctx.terminate.cancelled().await;
        }
        self.drain(ctx).await;
        match self.result.take().unwrap_or(Ok(Ok(Ok(())))) {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => tracing::warn!(error = %e, "HTTP server stopped with an error"),
            Ok(Err(e)) => tracing::warn!(error = %e, "HTTP server task failed"),
            Err(_) => tracing::warn!("HTTP server did not stop in time"),
        }
    }
}
