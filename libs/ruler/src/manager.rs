//! Which groups this ruler runs: every stored group whose position on the
//! ruler ring belongs to this instance (all of them without a ring), kept
//! in step with the rule store and the ring.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use strata_model::duration::now_ms;
use strata_ring::{Operation, Ring};
use strata_rulefmt::RuleGroup;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::group::{GroupDeps, GroupRunner, GroupView};
use crate::store::{GroupKey, RuleStore};

/// This instance's place in the ruler ring.
pub struct RulerRing {
    pub ring: Arc<Ring>,
    pub instance_id: String,
}

struct Running {
    /// The group as loaded (a changed group restarts).
    spec: RuleGroup,
    view: Arc<RwLock<Arc<GroupView>>>,
    stop: CancellationToken,
    deleted: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

pub struct RulerManager {
    store: Arc<RuleStore>,
    deps: Arc<GroupDeps>,
    ring: Option<RulerRing>,
    running: Mutex<HashMap<GroupKey, Running>>,
    /// Keys seen in the store at the last sync.
    known: Mutex<Vec<GroupKey>>,
    /// Set by the API after a change in this process: sync now.
    wake: Notify,
    /// Serialises syncs.
    sync_lock: tokio::sync::Mutex<()>,
    /// Per-tenant runtime overrides of `config.limits`.
    overrides: strata_overrides::Overrides,
    /// The Alertmanager URLs last given to the notifier, per tenant.
    tenant_urls: Mutex<HashMap<String, Option<Vec<String>>>>,
}

impl RulerManager {
    pub fn new(store: Arc<RuleStore>, deps: Arc<GroupDeps>, ring: Option<RulerRing>) -> Self {
        Self {
            store,
            deps,
            ring,
            running: Mutex::new(HashMap::new()),
            known: Mutex::new(Vec::new()),
            wake: Notify::new(),
            sync_lock: tokio::sync::Mutex::new(()),
            overrides: strata_overrides::Overrides::default(),
            tenant_urls: Mutex::new(HashMap::new()),
        }
    }

    /// Reads each tenant's limits through `overrides` (the runtime config
    /// file): on every upload, and its Alertmanager URLs at every sync.
    pub fn with_overrides(mut self, overrides: strata_overrides::Overrides) -> Self {
        self.overrides = overrides;
        self
    }

    /// The limits in force for `tenant` now (runtime overrides, then
    /// `tenant_limits`, then `limits`).
    pub fn limits_for(&self, tenant: &str) -> crate::RulerLimits {
        self.deps.config.effective_limits(tenant, &self.overrides)
    }

    /// Gives the notifier `tenant`'s own Alertmanager URLs (`None`: the
    /// shared ones) if they changed since it was last told.
    fn set_tenant_urls(&self, tenant: &str) {
        let urls = self.limits_for(tenant).alertmanager_urls;
        let urls = (!urls.is_empty()).then_some(urls);
        let mut told = self.tenant_urls.lock();
        if told.get(tenant) == Some(&urls) {
            return;
        }
        match self.deps.notifier.set_tenant_urls(tenant, urls.clone()) {
            Ok(()) => {
                told.insert(tenant.to_string(), urls);
            }
            Err(e) => {
                tracing::warn!(tenant = %tenant, error = %e, "cannot use the tenant's Alertmanager URLs");
            }
        }
    }

    pub fn deps(&self) -> &Arc<GroupDeps> {
        &self.deps
    }

    pub fn store(&self) -> &Arc<RuleStore> {
        &self.store
    }

    pub fn ring(&self) -> Option<&RulerRing> {
        self.ring.as_ref()
    }

    /// Asks for a sync at once (the rule store changed).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Whether this instance evaluates `key`.
    pub fn owns(&self, key: &GroupKey) -> bool {
        let Some(r) = &self.ring else {
            return true;
        };
        let snapshot = r.ring.snapshot();
        let now = snapshot.judged_at(now_ms());
        // The first healthy ACTIVE ruler from the group's token: a dead
        // one's groups move as soon as its heartbeat times out.
        snapshot
            .first_healthy(key.ring_token(), Operation::Write, now)
            .is_some_and(|owner| owner.id == r.instance_id)
    }

    /// Re-reads the store every `poll_interval` (and when woken), and
    /// re-checks ownership at every ring poll; stops every group on `stop`.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        let poll = self
            .deps
            .config
            .poll_interval
            .max(Duration::from_millis(100));
        let ring_poll = self
            .deps
            .config
            .ring
            .poll_interval
            .max(Duration::from_millis(100));
        let mut last_sync = tokio::time::Instant::now();
        self.sync().await;
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = self.wake.notified() => {
                    self.sync().await;
                    last_sync = tokio::time::Instant::now();
                }
                _ = tokio::time::sleep(ring_poll) => {
                    if last_sync.elapsed() >= poll {
                        self.sync().await;
                        last_sync = tokio::time::Instant::now();
                    } else if self.ownership_changed() {
                        self.sync_known().await;
                    }
                }
            }
        }
        self.stop_all().await;
    }

    fn ownership_changed(&self) -> bool {
        let known = self.known.lock().clone();
        let running = self.running.lock();
        known
            .iter()
            .any(|k| self.owns(k) != running.contains_key(k))
            || running.keys().any(|k| !self.owns(k))
    }

    /// Lists the store and brings the running groups in step.
    pub async fn sync(&self) {
        let _guard = self.sync_lock.lock().await;
        match self.store.list(None).await {
            Ok(keys) => {
                *self.known.lock() = keys;
                self.apply().await;
                self.deps.metrics.synced(true);
            }
            Err(e) => {
                tracing::warn!(error = %e, "reading the rule store failed; keeping the groups running");
                self.deps.metrics.synced(false);
            }
        }
    }

    /// Brings the running groups in step with the last listing (the ring
    /// changed).
    async fn sync_known(&self) {
        let _guard = self.sync_lock.lock().await;
        self.apply().await;
    }

    async fn apply(&self) {
        let known = self.known.lock().clone();
        let present: HashSet<&GroupKey> = known.iter().collect();
        let owned: Vec<GroupKey> = known.iter().filter(|k| self.owns(k)).cloned().collect();
        // Stop what was deleted or is no longer ours.
        let to_stop: Vec<(GroupKey, bool)> = self
            .running
            .lock()
            .keys()
            .filter(|k| !present.contains(k) || !owned.contains(k))
            .map(|k| (k.clone(), !present.contains(k)))
            .collect();
        for (key, deleted) in to_stop {
            tracing::info!(group = %key, deleted, "stopping rule group");
            self.stop_group(&key, deleted).await;
        }
        // Start new and changed groups.
        for key in owned {
            let group = match self.store.get(&key).await {
                Ok(Some(g)) => g,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(group = %key, error = %e, "cannot load rule group");
                    continue;
                }
            };
            let same = self
                .running
                .lock()
                .get(&key)
                .is_some_and(|r| r.spec == group);
            if same {
                continue;
            }
            let previous = if self.running.lock().contains_key(&key) {
                tracing::info!(group = %key, "rule group changed; restarting it with the state of its unchanged rules");
                self.stop_group(&key, false).await
            } else {
                tracing::info!(group = %key, "starting rule group");
                None
            };
            self.start_group(key, group, previous);
        }
        // Alertmanager URLs changed in the runtime config apply to groups
        // already running.
        let tenants: HashSet<String> = self
            .running
            .lock()
            .keys()
            .map(|k| k.tenant.clone())
            .collect();
        for tenant in &tenants {
            self.set_tenant_urls(tenant);
        }
        self.deps
            .metrics
            .set_groups_loaded(self.running.lock().len());
    }

    /// Starts a group; with `previous` (the group before a change), its
    /// unchanged rules keep their alerts and series, as Prometheus's
    /// `CopyState` does.
    fn start_group(&self, key: GroupKey, spec: RuleGroup, previous: Option<Arc<GroupView>>) {
        self.set_tenant_urls(&key.tenant);
        let mut runner = GroupRunner::new(
            key.clone(),
            spec.clone(),
            self.deps.config.evaluation_interval,
        );
        if let Some(previous) = previous {
            runner.copy_state(&previous);
        }
        let view = runner.view.clone();
        let stop = CancellationToken::new();
        let deleted = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(runner.run(self.deps.clone(), stop.clone(), deleted.clone()));
        self.running.lock().insert(
            key,
            Running {
                spec,
                view,
                stop,
                deleted,
                task,
            },
        );
    }

    /// Stops a group; its state as of its last evaluation.
    async fn stop_group(&self, key: &GroupKey, deleted: bool) -> Option<Arc<GroupView>> {
        let r = self.running.lock().remove(key)?;
        r.deleted
            .store(deleted, std::sync::atomic::Ordering::SeqCst);
        r.stop.cancel();
        if tokio::time::timeout(Duration::from_secs(30), r.task)
            .await
            .is_err()
        {
            tracing::warn!(group = %key, "rule group did not stop in time");
        }
        let view = r.view.read().clone();
        Some(view)
    }

    async fn stop_all(&self) {
        let keys: Vec<GroupKey> = self.running.lock().keys().cloned().collect();
        for key in keys {
            self.stop_group(&key, false).await;
        }
    }

    /// The groups of `tenant` this instance runs, by namespace and name.
    pub fn local_groups(&self, tenant: &str) -> Vec<Arc<GroupView>> {
        let running = self.running.lock();
        let mut out: Vec<Arc<GroupView>> = running
            .iter()
            .filter(|(k, _)| k.tenant == tenant)
            .map(|(_, r)| r.view.read().clone())
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        out
    }

    /// Every tenant's groups running here (for the API of all tenants'
    /// status pages), by tenant.
    pub fn running_count(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for k in self.running.lock().keys() {
            *out.entry(k.tenant.clone()).or_insert(0) += 1;
        }
        out
    }
}
