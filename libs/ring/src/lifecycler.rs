//! The member side of the ring: registering an instance, heartbeating, leaving.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::desc::{now_ms, InstanceDesc, InstanceState};
use crate::error::RingError;
use crate::store::RingStore;
use crate::tokens::{generate_tokens, load_tokens, save_tokens};

/// How often a conditional write is retried after re-reading on conflict before giving up.
const MAX_CONFLICT_RETRIES: usize = 10;

/// Configuration of a [`Lifecycler`].
#[derive(Debug, Clone, PartialEq)]
pub struct LifecyclerConfig {
    /// Unique, stable id of this instance (for example the pod name).
    pub id: String,
    /// gRPC address other services use to reach this instance.
    pub addr: String,
    /// HTTP address of this instance.
    pub http_addr: String,
    /// Availability zone; empty when zones are not used.
    pub zone: String,
    /// Number of tokens to own. Default 128.
    pub num_tokens: usize,
    /// Where to keep the tokens across restarts; `None` keeps them only in the ring.
    pub tokens_file: Option<PathBuf>,
    /// How often to refresh the heartbeat. Default 5 seconds.
    pub heartbeat_period: Duration,
    /// How long to stay JOINING before turning ACTIVE. Default 0 (at once).
    pub join_after: Duration,
    /// On shutdown, leave the ring (LEAVING, then removed). With `false` the entry and its
    /// tokens stay, so a restart with the same id takes the same place. Default true.
    pub unregister_on_shutdown: bool,
}

impl Default for LifecyclerConfig {
    fn default() -> Self {
        Self {
            id: String::new(),
            addr: String::new(),
            http_addr: String::new(),
            zone: String::new(),
            num_tokens: 128,
            tokens_file: None,
            heartbeat_period: Duration::from_secs(5),
            join_after: Duration::ZERO,
            unregister_on_shutdown: true,
        }
    }
}

impl LifecyclerConfig {
    /// Defaults with the given id and addresses.
    pub fn new(
        id: impl Into<String>,
        addr: impl Into<String>,
        http_addr: impl Into<String>,
    ) -> Self {
        Self {
            id: id.into(),
            addr: addr.into(),
            http_addr: http_addr.into(),
            ..Self::default()
        }
    }

    fn validate(&self) -> Result<(), RingError> {
        if self.id.is_empty() {
            return Err(RingError::InvalidConfig(
                "instance id must not be empty".to_string(),
            ));
        }
        if self.num_tokens == 0 {
            return Err(RingError::InvalidConfig(
                "number of tokens must be at least 1".to_string(),
            ));
        }
        if self.heartbeat_period.is_zero() {
            return Err(RingError::InvalidConfig(
                "heartbeat period must be positive".to_string(),
            ));
        }
        Ok(())
    }
}

/// What this instance last wrote to the store.
#[derive(Debug, Clone)]
struct Registration {
    desc: InstanceDesc,
    /// Version of our item in the store; `None` when it is not (or no longer) there.
    version: Option<u64>,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: String,
}

struct Shared {
    config: LifecyclerConfig,
    store: Arc<dyn RingStore>,
    /// Held across store writes so heartbeats and state changes never interleave.
    registration: tokio::sync::Mutex<Registration>,
    /// Mirror of the current state for synchronous readers.
    state: RwLock<InstanceState>,
    registered: AtomicBool,
    state_gauge: Family<StateLabels, Gauge>,
}

/// Keeps one instance registered in the ring.
///
/// [`Lifecycler::start`] claims tokens and registers the instance; a background task then
/// refreshes its heartbeat every `heartbeat_period` until [`Lifecycler::shutdown`]. Every
/// write is conditional on the version last written, so a concurrent change (for example
/// someone forgetting the instance) is noticed and resolved by re-reading: if the entry is
/// gone, the instance registers again with the same tokens.
///
/// Dropping a lifecycler without `shutdown` stops heartbeating and leaves the entry in the
/// store, like a crash would.
pub struct Lifecycler {
    shared: Arc<Shared>,
    cancel: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Lifecycler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lifecycler")
            .field("id", &self.shared.config.id)
            .field("state", &self.state())
            .finish()
    }
}

impl Lifecycler {
    /// Registers the instance and starts heartbeating; must be called inside a tokio
    /// runtime.
    ///
    /// Tokens, in order of preference:
    /// 1. An entry with the same id already in the ring (a previous run that did not
    ///    unregister): it is taken over, tokens included, and goes straight to ACTIVE.
    /// 2. The tokens file, if configured and present (topped up with new tokens if it holds
    ///    fewer than `num_tokens`).
    /// 3. `num_tokens` fresh random tokens not owned by anyone else.
    ///
    /// The tokens in use are written back to the tokens file. A new instance registers as
    /// JOINING and turns ACTIVE after `join_after` (before returning when that is zero).
    pub async fn start(
        config: LifecyclerConfig,
        store: Arc<dyn RingStore>,
    ) -> Result<Lifecycler, RingError> {
        config.validate()?;
        let file_tokens = match &config.tokens_file {
            Some(path) => {
                let path = path.clone();
                run_blocking(move || load_tokens(&path)).await?
            }
            None => None,
        };

        let mut attempt = 0;
        let registration = loop {
            attempt += 1;
            match register(&config, store.as_ref(), file_tokens.as_deref()).await {
                Ok(registration) => break registration,
                Err(err) if err.is_conflict() && attempt < MAX_CONFLICT_RETRIES => {
                    tracing::debug!(instance = %config.id, "conflict while registering, retrying");
                }
                Err(err) => return Err(err),
            }
        };

        if let Some(path) = &config.tokens_file {
            if file_tokens.as_deref() != Some(registration.desc.tokens.as_slice()) {
                let path = path.clone();
                let tokens = registration.desc.tokens.clone();
                run_blocking(move || save_tokens(&path, &tokens)).await?;
            }
        }

        let state = registration.desc.state;
        tracing::info!(
            instance = %config.id,
            state = %state,
            tokens = registration.desc.tokens.len(),
            "registered in the ring"
        );
        let shared = Arc::new(Shared {
            config,
            store,
            registration: tokio::sync::Mutex::new(registration),
            state: RwLock::new(state),
            registered: AtomicBool::new(true),
            state_gauge: Family::default(),
        });
        shared.publish_state(state);

        let mut lifecycler = Lifecycler {
            shared: Arc::clone(&shared),
            cancel: CancellationToken::new(),
            task: None,
        };
        if state == InstanceState::Joining && shared.config.join_after.is_zero() {
            lifecycler.set_state(InstanceState::Active).await?;
        }
        lifecycler.task = Some(tokio::spawn(heartbeat_loop(
            shared,
            lifecycler.cancel.clone(),
        )));
        Ok(lifecycler)
    }

    /// This instance's id.
    pub fn id(&self) -> &str {
        &self.shared.config.id
    }

    /// The state this instance is in (as last written by it).
    pub fn state(&self) -> InstanceState {
        *self.shared.state.read()
    }

    /// Whether the instance is ACTIVE in the ring and so ready for traffic.
    pub fn is_ready(&self) -> bool {
        self.shared.registered.load(Ordering::Acquire) && self.state() == InstanceState::Active
    }

    /// The description last written to the store.
    pub async fn desc(&self) -> InstanceDesc {
        self.shared.registration.lock().await.desc.clone()
    }

    /// The tokens this instance owns.
    pub async fn tokens(&self) -> Vec<u32> {
        self.shared.registration.lock().await.desc.tokens.clone()
    }

    /// Changes the state and writes it (with a fresh heartbeat) to the store right away.
    pub async fn set_state(&self, state: InstanceState) -> Result<(), RingError> {
        self.shared.write(Some(state)).await
    }

    /// Stops heartbeating. With `unregister_on_shutdown`, first marks the instance LEAVING
    /// and then removes it from the store; otherwise leaves the entry (and its tokens) in
    /// place for the next start with the same id.
    pub async fn shutdown(mut self) -> Result<(), RingError> {
        self.cancel.cancel();
        if let Some(task) = self.task.take() {
            if let Err(err) = task.await {
                tracing::warn!(error = %err, "ring heartbeat task failed");
            }
        }
        if !self.shared.config.unregister_on_shutdown {
            tracing::info!(instance = %self.shared.config.id, "stopped heartbeating, keeping ring entry");
            return Ok(());
        }
        self.set_state(InstanceState::Leaving).await?;
        self.shared.unregister().await?;
        tracing::info!(instance = %self.shared.config.id, "left the ring");
        Ok(())
    }

    /// Registers `ring_lifecycler_state{state}`: 1 for the state this instance is in, 0 for
    /// the others.
    pub fn register_metrics(&self, registry: &mut Registry) {
        registry.register(
            "ring_lifecycler_state",
            "State of this instance in the ring (1 for the current state)",
            self.shared.state_gauge.clone(),
        );
    }
}

impl Drop for Lifecycler {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

impl Shared {
    fn publish_state(&self, state: InstanceState) {
        *self.state.write() = state;
        for candidate in InstanceState::ALL {
            let value = i64::from(candidate == state);
            self.state_gauge
                .get_or_create(&StateLabels {
                    state: candidate.as_str().to_string(),
                })
                .set(value);
        }
    }

    /// Writes our description with a fresh heartbeat (and `new_state` if given).
    ///
    /// On conflict, re-reads our item and retries on top of its version; if the item is
    /// gone (forgotten by someone), registers again with the same tokens.
    async fn write(&self, new_state: Option<InstanceState>) -> Result<(), RingError> {
        let mut registration = self.registration.lock().await;
        if let Some(state) = new_state {
            registration.desc.state = state;
        }
        for _ in 0..MAX_CONFLICT_RETRIES {
            registration.desc.heartbeat_ms = now_ms();
            match self
                .store
                .put(&registration.desc, registration.version)
                .await
            {
                Ok(version) => {
                    registration.version = Some(version);
                    self.registered.store(true, Ordering::Release);
                    self.publish_state(registration.desc.state);
                    return Ok(());
                }
                Err(err) if err.is_conflict() => {
                    let current = self.read_own_version().await?;
                    if current.is_none() {
                        self.registered.store(false, Ordering::Release);
                        tracing::warn!(
                            instance = %self.config.id,
                            "own ring entry disappeared (forgotten?), registering again"
                        );
                    } else {
                        tracing::debug!(instance = %self.config.id, "ring entry changed concurrently, retrying");
                    }
                    registration.version = current;
                }
                Err(err) => return Err(err),
            }
        }
        Err(RingError::Conflict {
            id: self.config.id.clone(),
        })
    }

    async fn unregister(&self) -> Result<(), RingError> {
        let mut registration = self.registration.lock().await;
        let mut removed = false;
        for _ in 0..MAX_CONFLICT_RETRIES {
            let Some(version) = registration.version else {
                // Already gone (forgotten by someone): nothing to remove.
                removed = true;
                break;
            };
            match self.store.delete(&self.config.id, Some(version)).await {
                Ok(()) => {
                    removed = true;
                    break;
                }
                Err(err) if err.is_conflict() => {
                    registration.version = self.read_own_version().await?;
                }
                Err(err) => return Err(err),
            }
        }
        if !removed {
            // Still conflicting after retries: remove unconditionally, we are leaving anyway.
            self.store.delete(&self.config.id, None).await?;
        }
        registration.version = None;
        self.registered.store(false, Ordering::Release);
        Ok(())
    }

    async fn read_own_version(&self) -> Result<Option<u64>, RingError> {
        let items = self.store.list().await?;
        Ok(items
            .into_iter()
            .find(|item| item.value.id == self.config.id)
            .map(|item| item.version))
    }
}

/// One registration attempt: decides the tokens and writes the first entry.
async fn register(
    config: &LifecyclerConfig,
    store: &dyn RingStore,
    file_tokens: Option<&[u32]>,
) -> Result<Registration, RingError> {
    let items = store.list().await?;
    let now = now_ms();

    if let Some(existing) = items.iter().find(|item| item.value.id == config.id) {
        // A previous incarnation left its entry: take it over, tokens and all.
        let mut desc = existing.value.clone();
        desc.addr = config.addr.clone();
        desc.http_addr = config.http_addr.clone();
        desc.zone = config.zone.clone();
        desc.state = InstanceState::Active;
        desc.heartbeat_ms = now;
        if desc.tokens.is_empty() {
            let taken = tokens_of_others(&items, &config.id);
            desc.tokens = generate_tokens(config.num_tokens, &taken);
        }
        let version = store.put(&desc, Some(existing.version)).await?;
        tracing::info!(instance = %config.id, "took over existing ring entry");
        return Ok(Registration {
            desc,
            version: Some(version),
        });
    }

    let taken = tokens_of_others(&items, &config.id);
    let tokens = match file_tokens {
        Some(tokens) if !tokens.is_empty() => {
            let mut tokens = tokens.to_vec();
            if tokens.len() < config.num_tokens {
                let mut avoid = taken.clone();
                avoid.extend(tokens.iter().copied());
                tokens.extend(generate_tokens(config.num_tokens - tokens.len(), &avoid));
                tokens.sort_unstable();
            }
            tokens
        }
        _ => generate_tokens(config.num_tokens, &taken),
    };
    let desc = InstanceDesc {
        id: config.id.clone(),
        addr: config.addr.clone(),
        http_addr: config.http_addr.clone(),
        zone: config.zone.clone(),
        state: InstanceState::Joining,
        tokens,
        heartbeat_ms: now,
        registered_ms: now,
    };
    let version = store.put(&desc, None).await?;
    Ok(Registration {
        desc,
        version: Some(version),
    })
}

fn tokens_of_others(items: &[crate::store::Versioned<InstanceDesc>], own_id: &str) -> HashSet<u32> {
    items
        .iter()
        .filter(|item| item.value.id != own_id)
        .flat_map(|item| item.value.tokens.iter().copied())
        .collect()
}

async fn heartbeat_loop(shared: Arc<Shared>, cancel: CancellationToken) {
    let period = shared.config.heartbeat_period;
    let join_at = tokio::time::Instant::now() + shared.config.join_after;
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let join_timer = tokio::time::sleep_until(join_at);
    tokio::pin!(join_timer);
    let mut join_pending = *shared.state.read() == InstanceState::Joining;

    loop {
        let new_state = tokio::select! {
            _ = cancel.cancelled() => return,
            _ = &mut join_timer, if join_pending => {
                join_pending = false;
                // Only a still-JOINING instance turns ACTIVE; a state set meanwhile wins.
                if *shared.state.read() == InstanceState::Joining {
                    Some(InstanceState::Active)
                } else {
                    None
                }
            }
            _ = ticker.tick() => None,
        };
        let result = tokio::select! {
            _ = cancel.cancelled() => return,
            result = shared.write(new_state) => result,
        };
        match result {
            Ok(()) => {
                if new_state == Some(InstanceState::Active) {
                    tracing::info!(instance = %shared.config.id, "joined the ring, now ACTIVE");
                }
            }
            Err(err) => {
                tracing::warn!(instance = %shared.config.id, error = %err, "ring heartbeat failed");
                if new_state.is_some() {
                    // Try the state change again on the next tick.
                    join_pending = true;
                    join_timer
                        .as_mut()
                        .reset(tokio::time::Instant::now() + period);
                }
            }
        }
    }
}

/// Runs blocking file I/O off the async worker threads.
async fn run_blocking<T, F>(f: F) -> Result<T, RingError>
where
    F: FnOnce() -> Result<T, RingError> + Send + 'static,
    T: Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result,
        Err(err) => Err(RingError::store(err)),
    }
}
