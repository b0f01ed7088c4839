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
    /// tokens stay (LEAVING, so writes go elsewhere meanwhile), so a restart with the same
    /// id takes the same place. Default true.
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
/// [`Lifecycler::start`] registers the instance (PENDING), claims tokens (JOINING) and
/// turns it ACTIVE; a background task then refreshes its heartbeat every
/// `heartbeat_period` until [`Lifecycler::shutdown`], which takes it out through LEAVING
/// (see [`Lifecycler::leave`] to stay LEAVING while draining). Every
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
    /// The instance walks through the states the way Cortex's ingesters do, each step
    /// written to the store before the next:
    ///
    /// 1. **PENDING**, without tokens: visible on ring pages, owns no part of the ring and
    ///    is in no replication set. An entry with the same id already in the ring (a
    ///    previous run that did not unregister, or crashed) is taken over: its tokens are
    ///    remembered and the entry goes back to PENDING, whatever state it was left in.
    /// 2. **JOINING**, with the tokens it claims, in order of preference: the taken-over
    ///    entry's tokens; the tokens file, if configured and present (topped up with new
    ///    tokens if it holds fewer than `num_tokens`); `num_tokens` fresh random tokens not
    ///    owned by anyone else. The tokens in use are written back to the tokens file.
    ///    A JOINING instance owns its ranges but takes no writes yet: the ring extends
    ///    the replica walk past it.
    /// 3. **ACTIVE** after `join_after` (before this returns when that is zero).
    ///
    /// [`Lifecycler::leave`] and [`Lifecycler::shutdown`] take it through LEAVING out of
    /// the ring.
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

        // 1. PENDING, no tokens.
        let mut attempt = 0;
        let (registration, previous_tokens) = loop {
            attempt += 1;
            match register_pending(&config, store.as_ref()).await {
                Ok(registered) => break registered,
                Err(err) if err.is_conflict() && attempt < MAX_CONFLICT_RETRIES => {
                    tracing::debug!(instance = %config.id, "conflict while registering, retrying");
                }
                Err(err) => return Err(err),
            }
        };
        tracing::info!(
            instance = %config.id,
            state = %InstanceState::Pending,
            took_over = previous_tokens.is_some(),
            "registered in the ring without tokens"
        );
        let shared = Arc::new(Shared {
            config,
            store,
            registration: tokio::sync::Mutex::new(registration),
            state: RwLock::new(InstanceState::Pending),
            registered: AtomicBool::new(true),
            state_gauge: Family::default(),
        });
        shared.publish_state(InstanceState::Pending);

        if let Err(err) = join(&shared, previous_tokens, file_tokens.as_deref()).await {
            // Do not leave a PENDING or JOINING entry behind without a heartbeat.
            if let Err(cleanup) = shared.unregister().await {
                tracing::warn!(instance = %shared.config.id, error = %cleanup, "could not remove own ring entry after failing to join");
            }
            return Err(err);
        }
        let cancel = CancellationToken::new();
        let task = tokio::spawn(heartbeat_loop(Arc::clone(&shared), cancel.clone()));
        Ok(Lifecycler {
            shared,
            cancel,
            task: Some(task),
        })
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

    /// Marks the instance LEAVING: distributors stop sending it writes at their next ring
    /// refresh (the ring extends the replica walk past it), while queriers still read
    /// from it. It keeps heartbeating, so it stays LEAVING until [`Lifecycler::shutdown`];
    /// in between, the caller lets in-flight requests finish.
    pub async fn leave(&self) -> Result<(), RingError> {
        if self.state() == InstanceState::Leaving {
            return Ok(());
        }
        self.set_state(InstanceState::Leaving).await?;
        tracing::info!(instance = %self.shared.config.id, "LEAVING the ring");
        Ok(())
    }

    /// Stops heartbeating, after marking the instance LEAVING if [`Lifecycler::leave`]
    /// was not called. With `unregister_on_shutdown` the entry is then removed from the
    /// store; otherwise it stays (LEAVING, with its tokens, so writes already go
    /// elsewhere) for the next start with the same id to take over.
    pub async fn shutdown(self) -> Result<(), RingError> {
        let unregister = self.shared.config.unregister_on_shutdown;
        self.stop(unregister).await
    }

    /// Like [`Lifecycler::shutdown`], but always removes the entry from the
    /// ring, whatever `unregister_on_shutdown` says (scale-down: this
    /// instance is not coming back).
    pub async fn shutdown_and_leave(self) -> Result<(), RingError> {
        self.stop(true).await
    }

    async fn stop(mut self, unregister: bool) -> Result<(), RingError> {
        self.cancel.cancel();
        if let Some(task) = self.task.take() {
            if let Err(err) = task.await {
                tracing::warn!(error = %err, "ring heartbeat task failed");
            }
        }
        let leave_result = self.leave().await;
        if !unregister {
            leave_result?;
            tracing::info!(instance = %self.shared.config.id, "stopped heartbeating, keeping ring entry as LEAVING");
            return Ok(());
        }
        if let Err(err) = leave_result {
            // Being removed matters more than having been seen LEAVING.
            tracing::warn!(instance = %self.shared.config.id, error = %err, "could not mark the instance LEAVING, removing it anyway");
        }
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
    async fn write(&self, new_state: Option<InstanceState>) -> Result<(), RingError> {
        self.write_update(new_state, None).await
    }

    /// Writes our description with a fresh heartbeat, and `new_state` and `tokens` if
    /// given.
    ///
    /// On conflict, re-reads our item and retries on top of its version; if the item is
    /// gone (forgotten by someone), registers again with the same state and tokens (it
    /// already owns them and holds their data; going through PENDING again would only
    /// move its series elsewhere for a moment).
    async fn write_update(
        &self,
        new_state: Option<InstanceState>,
        tokens: Option<Vec<u32>>,
    ) -> Result<(), RingError> {
        let mut registration = self.registration.lock().await;
        if let Some(state) = new_state {
            registration.desc.state = state;
        }
        if let Some(tokens) = tokens {
            registration.desc.tokens = tokens;
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

/// Steps 2 and 3 of [`Lifecycler::start`]: claims tokens (JOINING), saves them to the
/// tokens file, and turns ACTIVE right away when `join_after` is zero.
async fn join(
    shared: &Shared,
    previous_tokens: Option<Vec<u32>>,
    file_tokens: Option<&[u32]>,
) -> Result<(), RingError> {
    let tokens = claim_tokens(
        &shared.config,
        shared.store.as_ref(),
        previous_tokens,
        file_tokens,
    )
    .await?;
    shared
        .write_update(Some(InstanceState::Joining), Some(tokens.clone()))
        .await?;
    tracing::info!(
        instance = %shared.config.id,
        state = %InstanceState::Joining,
        tokens = tokens.len(),
        "claimed tokens"
    );
    if let Some(path) = &shared.config.tokens_file {
        if file_tokens != Some(tokens.as_slice()) {
            let path = path.clone();
            run_blocking(move || save_tokens(&path, &tokens)).await?;
        }
    }
    if shared.config.join_after.is_zero() {
        shared.write(Some(InstanceState::Active)).await?;
        tracing::info!(instance = %shared.config.id, "joined the ring, now ACTIVE");
    }
    Ok(())
}

/// One registration attempt: writes the instance as PENDING without tokens. Returns the
/// registration and, when an entry with our id was taken over, the tokens it held.
async fn register_pending(
    config: &LifecyclerConfig,
    store: &dyn RingStore,
) -> Result<(Registration, Option<Vec<u32>>), RingError> {
    let items = store.list().await?;
    let now = now_ms();
    let existing = items.iter().find(|item| item.value.id == config.id);
    let desc = InstanceDesc {
        id: config.id.clone(),
        addr: config.addr.clone(),
        http_addr: config.http_addr.clone(),
        zone: config.zone.clone(),
        state: InstanceState::Pending,
        tokens: Vec::new(),
        heartbeat_ms: now,
        // A taken-over entry keeps the time it first registered.
        registered_ms: existing.map_or(now, |item| item.value.registered_ms),
    };
    let version = store.put(&desc, existing.map(|item| item.version)).await?;
    let previous_tokens = existing.map(|item| {
        tracing::info!(
            instance = %config.id,
            previous_state = %item.value.state,
            tokens = item.value.tokens.len(),
            "taking over existing ring entry"
        );
        item.value.tokens.clone()
    });
    Ok((
        Registration {
            desc,
            version: Some(version),
        },
        previous_tokens,
    ))
}

/// Decides the tokens of a PENDING instance: the taken-over entry's, else the tokens
/// file's (topped up to `num_tokens`), else fresh ones; new tokens avoid every token
/// another instance owns right now.
async fn claim_tokens(
    config: &LifecyclerConfig,
    store: &dyn RingStore,
    previous_tokens: Option<Vec<u32>>,
    file_tokens: Option<&[u32]>,
) -> Result<Vec<u32>, RingError> {
    let mut tokens = match (previous_tokens, file_tokens) {
        (Some(previous), _) if !previous.is_empty() => previous,
        (_, Some(file)) if !file.is_empty() => file.to_vec(),
        _ => Vec::new(),
    };
    tokens.sort_unstable();
    tokens.dedup();
    if tokens.len() < config.num_tokens {
        let items = store.list().await?;
        let mut avoid = tokens_of_others(&items, &config.id);
        avoid.extend(tokens.iter().copied());
        tokens.extend(generate_tokens(config.num_tokens - tokens.len(), &avoid));
        tokens.sort_unstable();
    }
    Ok(tokens)
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
