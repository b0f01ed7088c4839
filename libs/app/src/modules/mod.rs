//! The parts a process can run, as modules after Cortex's
//! (`pkg/cortex/modules.go`): each module names the modules it needs, the
//! runner (`crate::runner`) initialises the needed ones in dependency order,
//! each seeing in [`Context`] what the modules before it built, and stops
//! them in reverse order.
//!
//! Dependency graph (`a → b`: `a` needs `b`; `a ⇢ b`: `a` uses `b` when `b`
//! runs in this process, and then starts after it):
//!
//! ```text
//! Overrides
//! Server ─────→ Overrides, Ring
//! Store
//! Ingester ───→ Ring, Server, Store, Overrides
//! Distributor → Ring, Overrides ⇢ Ingester (pushes to it are function calls)
//! PushApi ────→ Server, Distributor
//! Querier ────→ Ring, Store, Overrides
//! QueryApi ───→ Server, Querier
//! Ruler ──────→ Distributor, Querier, Overrides (results written and read in process)
//! ```
//!
//! Every process runs `Server` (and so `Overrides` and `Ring`); a role adds
//! its targets (`Role::targets`).
//!
//! `Distributor` and `Querier` build the objects; `PushApi` and `QueryApi`
//! serve them over HTTP. A module can thus use a distributor and a querier
//! as libraries (the ruler will) without this process serving pushes or
//! queries.
//!
//! Shutdown runs two passes over the modules, each in reverse
//! initialisation order (see [`Module`]): `stop_intake` (stop taking work:
//! the ingester turns LEAVING and drains gRPC; the one-process mode's HTTP
//! server drains), then `stop` (the ingester's final flush, write-ahead log
//! and ring exit; the HTTP server of a separate service drains last).

mod distributor;
mod ingester;
mod overrides;
mod querier;
mod ring;
mod ruler;
mod server;
mod store;

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;
use strata_distributor::Distributor;
use strata_ingester_client::LocalIngester;
use strata_overrides::Overrides;
use strata_querier::Querier;
use strata_ring::{Ring, RingStore};
use strata_server::http::ReadyCheck;
use strata_server::MetricsRegistry;
use strata_store::Store;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::roles::Role;

/// The modules, in no particular order (the runner orders them by their
/// dependencies).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ModuleName {
    /// The runtime overrides file (per-tenant limits), its reloading and
    /// `/runtime_config`.
    Overrides,
    /// The ring client (and its store): status page, replica placement.
    Ring,
    /// The HTTP listener; serves every module's routes, `/metrics`,
    /// `/ready` and `/`.
    Server,
    /// Long-term storage of chunks and the index.
    Store,
    /// In-memory series, write-ahead log, flushing, gRPC server, lifecycler.
    Ingester,
    /// The distributor object (validation, limits, sharding, fan-out).
    Distributor,
    /// `POST /api/v1/push` over the distributor.
    PushApi,
    /// The querier object (PromQL over ingesters and long-term storage).
    Querier,
    /// The Prometheus query API over the querier.
    QueryApi,
    /// Rule groups: their API, evaluation, alerts, the ruler ring.
    Ruler,
}

impl ModuleName {
    #[cfg(test)]
    pub const ALL: [ModuleName; 10] = [
        ModuleName::Overrides,
        ModuleName::Ring,
        ModuleName::Server,
        ModuleName::Store,
        ModuleName::Ingester,
        ModuleName::Distributor,
        ModuleName::PushApi,
        ModuleName::Querier,
        ModuleName::QueryApi,
        ModuleName::Ruler,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ModuleName::Overrides => "overrides",
            ModuleName::Ring => "ring",
            ModuleName::Server => "server",
            ModuleName::Store => "store",
            ModuleName::Ingester => "ingester",
            ModuleName::Distributor => "distributor",
            ModuleName::PushApi => "push-api",
            ModuleName::Querier => "querier",
            ModuleName::QueryApi => "query-api",
            ModuleName::Ruler => "ruler",
        }
    }

    /// The modules this one needs; they run whenever it runs, and are
    /// initialised before it. Listed in the order they are initialised when
    /// nothing else decides it.
    pub fn deps(self) -> &'static [ModuleName] {
        use ModuleName::*;
        match self {
            // After the ring: every service's `/ring` page and readiness
            // read it, and a misconfigured ring store fails before the port
            // is taken.
            //
            // After the overrides too: every process serves
            // `/runtime_config`, and a broken overrides file fails the
            // start before anything else.
            Server => &[Overrides, Ring],
            Overrides | Ring | Store => &[],
            Ingester => &[Ring, Server, Store, Overrides],
            Distributor => &[Ring, Overrides],
            PushApi => &[Server, Distributor],
            Querier => &[Ring, Store, Overrides],
            QueryApi => &[Server, Querier],
            // Writes results through the distributor (in process) and reads
            // through the querier; neither's HTTP API is served for it.
            Ruler => &[Distributor, Querier, Overrides],
        }
    }

    /// Modules this one uses when they run in this process, without making
    /// them run: it is initialised after them (and stopped before them).
    pub fn optional_deps(self) -> &'static [ModuleName] {
        match self {
            // Pushes to this process's own ingester are function calls.
            ModuleName::Distributor => &[ModuleName::Ingester],
            // So are reads of it.
            ModuleName::Querier => &[ModuleName::Ingester],
            _ => &[],
        }
    }

    /// Initialises this module; what it built is in `ctx` afterwards.
    pub async fn init(self, ctx: &mut Context) -> anyhow::Result<Box<dyn Module>> {
        match self {
            ModuleName::Overrides => overrides::init(ctx).await,
            ModuleName::Ring => ring::init(ctx).await,
            ModuleName::Server => server::init(ctx).await,
            ModuleName::Store => store::init(ctx).await,
            ModuleName::Ingester => ingester::init(ctx).await,
            ModuleName::Distributor => distributor::init(ctx).await,
            ModuleName::PushApi => distributor::init_push_api(ctx).await,
            ModuleName::Querier => querier::init(ctx).await,
            ModuleName::QueryApi => querier::init_query_api(ctx).await,
            ModuleName::Ruler => ruler::init(ctx).await,
        }
    }
}

/// An initialised module, as the runner drives it from then on. Every hook
/// has a default that does nothing.
#[async_trait::async_trait]
pub trait Module: Send {
    /// Once every module is initialised, in initialisation order.
    async fn start(&mut self, _ctx: &mut Context) -> anyhow::Result<()> {
        Ok(())
    }

    /// Shutdown, first pass (reverse initialisation order): stop taking
    /// work from other processes, and let the work in flight land.
    async fn stop_intake(&mut self, _ctx: &Context) {}

    /// Shutdown, second pass (reverse initialisation order): everything
    /// this process will receive has arrived; persist and release.
    async fn stop(&mut self, _ctx: &Context) {}
}

/// A module with nothing to do after initialisation.
pub struct Nothing;

impl Module for Nothing {}

/// What the modules share: the process's inputs, what every initialised
/// module built (`None` until it ran, or when it does not run here), and
/// what the server collects from them.
pub struct Context {
    pub role: Role,
    pub config: Config,
    /// `config.data_dir`, `data` when empty.
    pub data_dir: PathBuf,
    /// This instance's ID in the ring (and in long-term storage).
    pub instance_id: String,
    pub metrics: MetricsRegistry,
    /// SIGTERM/SIGINT.
    pub terminate: CancellationToken,
    /// Cancelled on `terminate`, or by a scale-down.
    pub shutdown: CancellationToken,
    /// Set by `POST /ingester/shutdown` (a scale-down): flush, leave the
    /// ring, stop.
    pub leave_requested: Arc<AtomicBool>,

    // Built by the modules.
    /// The runtime overrides every component reads its per-tenant limits
    /// through.
    pub overrides: Option<Overrides>,
    pub ring: Option<Arc<Ring>>,
    pub ring_store: Option<Arc<dyn RingStore>>,
    pub store: Option<Arc<Store>>,
    /// This process's ingester as its distributor and querier reach it
    /// (by function calls), when the ingester runs here.
    pub local_ingester: Option<Arc<dyn LocalIngester>>,
    pub distributor: Option<Arc<Distributor>>,
    pub querier: Option<Arc<Querier>>,

    // Collected from the modules.
    /// Routes of every module, served by the server module.
    pub routes: Router,
    /// Links on `/`: (path, description).
    pub links: Vec<(String, String)>,
    /// `/ready` answers 200 when every check passes, in this order.
    pub ready_checks: Vec<ReadyCheck>,
    ring_quorum_checked: bool,
    /// Background tasks; they stop on `shutdown` and are aborted last.
    pub tasks: Vec<JoinHandle<()>>,
}

impl Context {
    pub fn new(role: Role, config: Config, terminate: CancellationToken) -> Self {
        let data_dir = if config.data_dir.as_os_str().is_empty() {
            PathBuf::from("data")
        } else {
            config.data_dir.clone()
        };
        Self {
            role,
            instance_id: instance_id(&config),
            config,
            data_dir,
            metrics: MetricsRegistry::new(),
            shutdown: terminate.child_token(),
            terminate,
            leave_requested: Arc::new(AtomicBool::new(false)),
            overrides: None,
            ring: None,
            ring_store: None,
            store: None,
            local_ingester: None,
            distributor: None,
            querier: None,
            routes: Router::new(),
            links: Vec::new(),
            ready_checks: Vec::new(),
            ring_quorum_checked: false,
            tasks: Vec::new(),
        }
    }

    /// Every part in this process (`Role::All`): the ring is in memory,
    /// there is no other replica nor distributor, and pushes reach the
    /// ingester over this process's HTTP server.
    pub fn single_process(&self) -> bool {
        self.role == Role::All
    }

    pub fn add_routes(&mut self, routes: Router) {
        self.routes = std::mem::take(&mut self.routes).merge(routes);
    }

    pub fn add_link(&mut self, path: &str, description: &str) {
        self.links.push((path.to_string(), description.to_string()));
    }

    /// `/ready` waits for a quorum of healthy ingesters (writes and reads
    /// both need one for each series).
    pub fn require_ring_quorum(&mut self) -> anyhow::Result<()> {
        if !self.ring_quorum_checked {
            let check = ring::quorum_check(self.ring()?, self.config.ring.replication_factor);
            self.ready_checks.push(check);
            self.ring_quorum_checked = true;
        }
        Ok(())
    }

    pub fn overrides(&self) -> anyhow::Result<Overrides> {
        built(&self.overrides, ModuleName::Overrides)
    }

    pub fn ring(&self) -> anyhow::Result<Arc<Ring>> {
        built(&self.ring, ModuleName::Ring)
    }

    pub fn ring_store(&self) -> anyhow::Result<Arc<dyn RingStore>> {
        built(&self.ring_store, ModuleName::Ring)
    }

    pub fn store(&self) -> anyhow::Result<Arc<Store>> {
        built(&self.store, ModuleName::Store)
    }

    pub fn distributor(&self) -> anyhow::Result<Arc<Distributor>> {
        built(&self.distributor, ModuleName::Distributor)
    }

    pub fn querier(&self) -> anyhow::Result<Arc<Querier>> {
        built(&self.querier, ModuleName::Querier)
    }
}

/// What `module` built; an error (a missing entry in `deps`) before it ran.
fn built<T: Clone>(slot: &Option<T>, module: ModuleName) -> anyhow::Result<T> {
    slot.clone().with_context(|| {
        format!(
            "the {} module is used before it was initialised (missing from deps)",
            module.name()
        )
    })
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
