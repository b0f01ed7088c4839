//! The server module: the HTTP listener, bound early (a port in use fails
//! before the write-ahead log is replayed or the ring joined), serving every
//! module's routes once all are initialised, with `/metrics`, `/ready` and
//! the index page.
//!
//! It also holds the HTTP edge's authentication (`docs/auth.md`): in
//! `tokens` mode one middleware around the whole router authenticates every
//! request and sets the authenticated tenant as the only `X-Scope-OrgID`
//! (`strata_auth::middleware`), and with an admin token configured it serves
//! the admin API. It is initialised before every module that serves tenant
//! routes (right after the ring), so it sets `auth_enabled` for them: in
//! `header` and `tokens` modes every handler requires the tenant header.
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
use strata_auth::{AuthMetrics, AuthMode, Authenticator};
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

    let metrics = AuthMetrics::default();
    ctx.metrics.register(|r| metrics.register(r));
    let auth = Authenticator::new(&ctx.config.auth, ctx.config.auth_enabled, metrics)
        .context("cannot set up authentication (auth)")?;
    tracing::info!(
        mode = auth.mode().as_str(),
        admin_api = auth.admin_enabled(),
        "HTTP authentication"
    );
    if auth.mode() != AuthMode::None {
        // Handlers refuse requests without `X-Scope-OrgID`; in tokens mode
        // the middleware has set it from the credentials.
        ctx.config.auth_enabled = true;
    }
    if auth.tenants_file().is_some() {
        let reloader = auth.spawn_reloader(ctx.config.auth.reload_period, ctx.shutdown.clone());
        ctx.tasks.push(reloader);
    }
    Ok(Box::new(Server {
        auth,
        listener: Some(listener),
        task: None,
        result: None,
    }))
}

type Served = Result<Result<std::io::Result<()>, JoinError>, Elapsed>;

struct Server {
    auth: Arc<Authenticator>,
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
        let mut router = std::mem::take(&mut ctx.routes).merge(common_routes(
            ctx.role.name(),
            ctx.metrics.clone(),
            ready,
            std::mem::take(&mut ctx.links),
        ));
        if let Some(admin) = strata_auth::admin::admin_routes(self.auth.clone()) {
            router = router.merge(admin);
        }
        // Around every route, the admin API's included.
        let router = strata_auth::middleware::apply(router, self.auth.clone());
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

#[cfg(test)]
mod tests {
    use crate::modules::ModuleName;
    use crate::roles::Role;
    use crate::runner::init_order;

    /// `init` sets `auth_enabled` for the modules serving tenant routes
    /// (they read it when they build their routes): the server module must
    /// come first in every role.
    #[test]
    fn the_server_is_initialised_before_the_tenant_routes() {
        for role in [
            Role::All,
            Role::Distributor,
            Role::Ingester,
            Role::Querier,
            Role::Ruler,
        ] {
            let mut targets = vec![ModuleName::Server];
            targets.extend_from_slice(role.targets());
            let order = init_order(&targets).unwrap();
            let at = |m: ModuleName| order.iter().position(|x| *x == m);
            let server = at(ModuleName::Server).unwrap();
            for tenant_routes in [ModuleName::PushApi, ModuleName::QueryApi, ModuleName::Ruler] {
                if let Some(i) = at(tenant_routes) {
                    assert!(server < i, "{role:?}: {order:?}");
                }
            }
        }
    }
}
