//! Per-tenant queues and the tasks that empty them into Alertmanagers.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use reqwest::header::{HeaderValue, CONTENT_TYPE};
use strata_server::tenant::TENANT_HEADER;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::config::{parse_targets, Target, Targets};
use crate::error::SendError;
use crate::metrics::{AlertmanagerLabels, TenantLabel};
use crate::{Alert, NotifierConfig, NotifierError, NotifierMetrics};

/// Most of an error response's body kept for the log.
const ERROR_BODY_LIMIT: usize = 512;

const USER_AGENT: &str = concat!("strata-ruler/", env!("CARGO_PKG_VERSION"));

/// Delivers alerts to Alertmanagers, with one queue and one delivery task
/// per tenant (the per-tenant notifiers of Cortex's ruler, behind one
/// handle).
///
/// * [`send`](Self::send) only enqueues: it takes a lock briefly and never
///   waits for I/O, so rule evaluation is never held up by a slow
///   Alertmanager.
/// * Each tenant's task takes batches of at most `max_batch_size` alerts
///   and posts each batch to all of the tenant's Alertmanagers at once,
///   with `X-Scope-OrgID: <tenant>`. A batch is sent when at least one
///   accepts it (2xx); otherwise its alerts count as dropped. Nothing is
///   retried: the ruler resends firing alerts every resend delay anyway.
/// * [`stop`](Self::stop), or dropping the manager, stops the tasks after
///   delivering what is queued, for at most `drain_timeout`.
///
/// Tasks run on the Tokio runtime the manager was created in.
pub struct NotifierManager {
    shared: Arc<Shared>,
    tenants: RwLock<Tenants>,
}

/// What every tenant's task shares.
struct Shared {
    client: reqwest::Client,
    metrics: NotifierMetrics,
    default_targets: Targets,
    external_labels: std::collections::BTreeMap<String, String>,
    queue_capacity: usize,
    max_batch_size: usize,
    timeout: Duration,
    drain_timeout: Duration,
    runtime: tokio::runtime::Handle,
}

#[derive(Default)]
struct Tenants {
    map: HashMap<String, Arc<Tenant>>,
    stopped: bool,
}

struct Tenant {
    header: HeaderValue,
    label: TenantLabel,
    state: Mutex<TenantState>,
    /// Wakes the task: alerts were queued, or it should stop.
    wake: Notify,
    /// The drain deadline once stopping, for cutting a request short.
    stopping: watch::Sender<Option<Instant>>,
    task: Mutex<Option<JoinHandle<()>>>,
}

#[derive(Default)]
struct TenantState {
    queue: VecDeque<Alert>,
    /// `Some` replaces the default Alertmanagers.
    targets: Option<Targets>,
    /// Set when stopping: deliver what is queued until then, then exit.
    drain_deadline: Option<Instant>,
    /// The tenant was removed: its series are gone and must stay gone.
    removed: bool,
    /// `alertmanager` label values this tenant has series for.
    alertmanagers: BTreeSet<String>,
}

/// What the task does next.
enum Next {
    Send(Vec<Alert>, Targets),
    Wait,
    Exit,
}

impl NotifierManager {
    /// Checks the configuration and builds the HTTP client. Must be called
    /// within a Tokio runtime, which runs the delivery tasks.
    pub fn new(config: NotifierConfig, metrics: NotifierMetrics) -> Result<Self, NotifierError> {
        config.validate()?;
        let default_targets = parse_targets(&config.alertmanager_urls)?;
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|_| NotifierError::NoRuntime)?;
        let client = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .build()
            .map_err(NotifierError::Client)?;
        metrics
            .queue_capacity
            .set(i64::try_from(config.queue_capacity).unwrap_or(i64::MAX));
        Ok(Self {
            shared: Arc::new(Shared {
                client,
                metrics,
                default_targets,
                external_labels: config.external_labels,
                queue_capacity: config.queue_capacity,
                max_batch_size: config.max_batch_size,
                timeout: config.timeout,
                drain_timeout: config.drain_timeout,
                runtime,
            }),
            tenants: RwLock::new(Tenants::default()),
        })
    }

    /// Queues `alerts` for `tenant`, adding the external labels they lack.
    /// Never blocks on I/O. When the queue is full the oldest alerts are
    /// dropped (and counted). After [`stop`](Self::stop), alerts are
    /// counted as dropped. An invalid tenant ID is logged and its alerts
    /// discarded; the ruler only has valid ones.
    pub fn send(&self, tenant: &str, alerts: Vec<Alert>) {
        if alerts.is_empty() {
            return;
        }
        let (alerts, invalid) = self.prepare(alerts);
        {
            let tenants = self.tenants.read();
            if let Some(t) = tenants.map.get(tenant) {
                t.enqueue(&self.shared, alerts, invalid);
                return;
            }
        }
        let mut tenants = self.tenants.write();
        match self.tenant_entry(&mut tenants, tenant) {
            Ok(t) => t.enqueue(&self.shared, alerts, invalid),
            Err(e) => {
                tracing::error!(error = %e, count = alerts.len() + invalid, "discarding alerts")
            }
        }
    }

    /// Overrides the Alertmanagers of `tenant` (`Some`, possibly empty:
    /// then its alerts are dropped), or goes back to the default list
    /// (`None`). Takes effect from the next batch.
    pub fn set_tenant_urls(
        &self,
        tenant: &str,
        urls: Option<Vec<String>>,
    ) -> Result<(), NotifierError> {
        let targets = urls.as_deref().map(parse_targets).transpose()?;
        let mut tenants = self.tenants.write();
        if let Some(t) = tenants.map.get(tenant) {
            t.set_targets(&self.shared, targets);
            return Ok(());
        }
        if targets.is_none() {
            return Ok(());
        }
        let t = self.tenant_entry(&mut tenants, tenant)?;
        t.set_targets(&self.shared, targets);
        Ok(())
    }

    /// The alerts endpoints `tenant` sends to, without credentials (what
    /// Prometheus's `/api/v1/alertmanagers` lists as active).
    pub fn alertmanagers(&self, tenant: &str) -> Vec<String> {
        let tenants = self.tenants.read();
        let targets = match tenants.map.get(tenant) {
            Some(t) => t.targets(&self.shared),
            None => self.shared.default_targets.clone(),
        };
        targets.iter().map(|t| t.label.clone()).collect()
    }

    /// Alerts waiting in `tenant`'s queue.
    pub fn queue_len(&self, tenant: &str) -> usize {
        self.tenants
            .read()
            .map
            .get(tenant)
            .map_or(0, |t| t.state.lock().queue.len())
    }

    /// Forgets `tenant` (say, once it has no rules left): stops its task,
    /// discards what it has queued and deletes its metric series. A later
    /// `send` for it starts afresh, with the default Alertmanagers.
    pub fn remove_tenant(&self, tenant: &str) {
        let Some(t) = self.tenants.write().map.remove(tenant) else {
            return;
        };
        let mut state = t.state.lock();
        state.removed = true;
        state.queue.clear();
        let metrics = &self.shared.metrics;
        metrics.dropped.remove(&t.label);
        metrics.queue_length.remove(&t.label);
        for am in std::mem::take(&mut state.alertmanagers) {
            let labels = AlertmanagerLabels {
                tenant: t.label.tenant.clone(),
                alertmanager: am,
            };
            metrics.sent.remove(&labels);
            metrics.errors.remove(&labels);
        }
        drop(state);
        let task = t.task.lock().take();
        if let Some(task) = task {
            task.abort();
        }
    }

    /// Stops accepting alerts, lets every tenant's task deliver what is
    /// queued for up to `drain_timeout`, and waits for the tasks to end. Alerts still queued
    /// then are counted as dropped. Calling it again does nothing.
    pub async fn stop(&self) {
        for task in self.begin_stop() {
            if let Err(e) = task.await {
                if e.is_panic() {
                    tracing::error!(error = %e, "alert notification task panicked");
                }
            }
        }
    }

    /// Marks every tenant as stopping and hands back their tasks.
    fn begin_stop(&self) -> Vec<JoinHandle<()>> {
        let mut tenants = self.tenants.write();
        tenants.stopped = true;
        let deadline = Instant::now() + self.shared.drain_timeout;
        let mut tasks = Vec::new();
        for t in tenants.map.values() {
            {
                let mut state = t.state.lock();
                if state.drain_deadline.is_none() {
                    state.drain_deadline = Some(deadline);
                    t.stopping.send_replace(Some(deadline));
                }
            }
            t.wake.notify_one();
            tasks.extend(t.task.lock().take());
        }
        tasks
    }

    /// Adds external labels; sets apart alerts whose times cannot be sent.
    fn prepare(&self, alerts: Vec<Alert>) -> (Vec<Alert>, usize) {
        let before = alerts.len();
        let mut alerts: Vec<Alert> = alerts.into_iter().filter(Alert::times_valid).collect();
        let invalid = before - alerts.len();
        if invalid > 0 {
            tracing::warn!(count = invalid, "dropping alerts with times out of range");
        }
        if !self.shared.external_labels.is_empty() {
            for a in &mut alerts {
                a.add_external_labels(&self.shared.external_labels);
            }
        }
        (alerts, invalid)
    }

    /// The tenant, created (and its task started) if new.
    fn tenant_entry(
        &self,
        tenants: &mut Tenants,
        tenant: &str,
    ) -> Result<Arc<Tenant>, NotifierError> {
        if let Some(t) = tenants.map.get(tenant) {
            return Ok(t.clone());
        }
        if tenants.stopped {
            return Err(NotifierError::Stopped);
        }
        let invalid = |reason: String| NotifierError::InvalidTenant {
            tenant: tenant.to_string(),
            reason,
        };
        strata_model::validate_tenant_id(tenant).map_err(|e| invalid(e.to_string()))?;
        let header = HeaderValue::from_str(tenant).map_err(|e| invalid(e.to_string()))?;
        let t = Arc::new(Tenant {
            header,
            label: TenantLabel {
                tenant: tenant.to_string(),
            },
            state: Mutex::new(TenantState::default()),
            wake: Notify::new(),
            stopping: watch::Sender::new(None),
            task: Mutex::new(None),
        });
        // Start the series at zero, as Prometheus does.
        drop(self.shared.metrics.dropped.get_or_create(&t.label));
        self.shared
            .metrics
            .queue_length
            .get_or_create(&t.label)
            .set(0);
        t.note_alertmanagers(&self.shared, &mut t.state.lock());
        let task = self
            .shared
            .runtime
            .spawn(run(self.shared.clone(), t.clone()));
        *t.task.lock() = Some(task);
        tenants.map.insert(tenant.to_string(), t.clone());
        Ok(t)
    }
}

impl Drop for NotifierManager {
    /// Stops like [`stop`](Self::stop) without waiting: the tasks finish
    /// draining in the background, within `drain_timeout`.
    fn drop(&mut self) {
        drop(self.begin_stop());
    }
}

impl Tenant {
    fn tenant(&self) -> &str {
        &self.label.tenant
    }

    /// Prometheus's queueing: keep the newest `capacity` alerts.
    fn enqueue(&self, shared: &Shared, mut alerts: Vec<Alert>, invalid: usize) {
        let capacity = shared.queue_capacity;
        let mut state = self.state.lock();
        if state.removed {
            return;
        }
        let mut dropped = invalid;
        if state.drain_deadline.is_some() {
            dropped += alerts.len();
            alerts.clear();
        }
        if alerts.len() > capacity {
            let d = alerts.len() - capacity;
            alerts.drain(..d);
            dropped += d;
        }
        let overflow = (state.queue.len() + alerts.len()).saturating_sub(capacity);
        state.queue.drain(..overflow);
        dropped += overflow;
        let queued = !alerts.is_empty();
        state.queue.extend(alerts);
        self.set_queue_length(shared, state.queue.len());
        if dropped > 0 {
            shared
                .metrics
                .dropped
                .get_or_create(&self.label)
                .inc_by(dropped as u64);
        }
        drop(state);
        if overflow > 0 {
            tracing::warn!(
                tenant = self.tenant(),
                count = overflow,
                "alert notification queue full, dropping oldest alerts"
            );
        }
        if queued {
            self.wake.notify_one();
        }
    }

    fn set_queue_length(&self, shared: &Shared, len: usize) {
        shared
            .metrics
            .queue_length
            .get_or_create(&self.label)
            .set(i64::try_from(len).unwrap_or(i64::MAX));
    }

    fn targets(&self, shared: &Shared) -> Targets {
        self.state
            .lock()
            .targets
            .clone()
            .unwrap_or_else(|| shared.default_targets.clone())
    }

    fn set_targets(&self, shared: &Shared, targets: Option<Targets>) {
        let mut state = self.state.lock();
        state.targets = targets;
        self.note_alertmanagers(shared, &mut state);
    }

    /// Starts the sent and error series of the current Alertmanagers at
    /// zero, so that rates work from the first error.
    fn note_alertmanagers(&self, shared: &Shared, state: &mut TenantState) {
        let targets = state
            .targets
            .clone()
            .unwrap_or_else(|| shared.default_targets.clone());
        for target in targets.iter() {
            if state.alertmanagers.insert(target.label.clone()) {
                let labels = self.am_labels(target);
                drop(shared.metrics.sent.get_or_create(&labels));
                drop(shared.metrics.errors.get_or_create(&labels));
            }
        }
    }

    fn am_labels(&self, target: &Target) -> AlertmanagerLabels {
        AlertmanagerLabels {
            tenant: self.label.tenant.clone(),
            alertmanager: target.label.clone(),
        }
    }

    fn next(&self, shared: &Shared) -> Next {
        let mut state = self.state.lock();
        if state.removed {
            return Next::Exit;
        }
        let deadline = state.drain_deadline;
        if state.queue.is_empty() {
            return if deadline.is_some() {
                Next::Exit
            } else {
                Next::Wait
            };
        }
        if deadline.is_some_and(|d| d <= Instant::now()) {
            let left = state.queue.len();
            state.queue.clear();
            self.set_queue_length(shared, 0);
            shared
                .metrics
                .dropped
                .get_or_create(&self.label)
                .inc_by(left as u64);
            drop(state);
            tracing::warn!(
                tenant = self.tenant(),
                count = left,
                "alert notification queue not drained in time at shutdown, dropping alerts"
            );
            return Next::Exit;
        }
        let n = state.queue.len().min(shared.max_batch_size);
        let batch: Vec<Alert> = state.queue.drain(..n).collect();
        self.set_queue_length(shared, state.queue.len());
        let targets = state
            .targets
            .clone()
            .unwrap_or_else(|| shared.default_targets.clone());
        Next::Send(batch, targets)
    }

    /// Updates metrics unless the tenant has been removed meanwhile.
    fn record(&self, f: impl FnOnce(&mut TenantState)) {
        let mut state = self.state.lock();
        if !state.removed {
            f(&mut state);
        }
    }

    fn count_dropped(&self, shared: &Shared, n: usize) {
        self.record(|_| {
            shared
                .metrics
                .dropped
                .get_or_create(&self.label)
                .inc_by(n as u64);
        });
    }
}

/// A tenant's delivery task.
async fn run(shared: Arc<Shared>, tenant: Arc<Tenant>) {
    loop {
        match tenant.next(&shared) {
            Next::Wait => tenant.wake.notified().await,
            Next::Exit => return,
            Next::Send(batch, targets) => {
                let n = batch.len();
                tokio::select! {
                    () = deliver(&shared, &tenant, batch, &targets) => {}
                    () = drain_cutoff(&tenant) => {
                        tenant.count_dropped(&shared, n);
                        tracing::warn!(tenant = tenant.tenant(), count = n, "shutdown drain timed out while sending alerts, dropping them");
                    }
                }
            }
        }
    }
}

/// Resolves when the tenant is stopping and its drain deadline has passed.
async fn drain_cutoff(tenant: &Tenant) {
    let mut stopping = tenant.stopping.subscribe();
    let deadline = match stopping.wait_for(Option::is_some).await {
        Ok(deadline) => *deadline,
        // Cannot happen while `tenant` holds the sender.
        Err(_) => None,
    };
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Posts one batch to every target at once.
async fn deliver(shared: &Shared, tenant: &Tenant, batch: Vec<Alert>, targets: &[Target]) {
    let n = batch.len();
    if targets.is_empty() {
        tenant.count_dropped(shared, n);
        tracing::debug!(
            tenant = tenant.tenant(),
            count = n,
            "no Alertmanagers configured, dropping alerts"
        );
        return;
    }
    let body = match serde_json::to_vec(&batch) {
        Ok(body) => Bytes::from(body),
        Err(e) => {
            tenant.count_dropped(shared, n);
            tracing::error!(tenant = tenant.tenant(), count = n, error = %e, "encoding alerts failed, dropping them");
            return;
        }
    };
    let posts = targets
        .iter()
        .map(|t| post(shared, t, &tenant.header, body.clone()));
    let results = futures::future::join_all(posts).await;

    let accepted = results.iter().any(Result::is_ok);
    tenant.record(|state| {
        for (target, result) in targets.iter().zip(&results) {
            state.alertmanagers.insert(target.label.clone());
            let labels = tenant.am_labels(target);
            match result {
                Ok(took) => {
                    shared.metrics.latency.observe(took.as_secs_f64());
                    shared.metrics.sent.get_or_create(&labels).inc_by(n as u64);
                }
                Err(_) => {
                    shared
                        .metrics
                        .errors
                        .get_or_create(&labels)
                        .inc_by(n as u64);
                }
            }
        }
        if !accepted {
            shared
                .metrics
                .dropped
                .get_or_create(&tenant.label)
                .inc_by(n as u64);
        }
    });
    for (target, result) in targets.iter().zip(&results) {
        if let Err(e) = result {
            tracing::error!(
                tenant = tenant.tenant(),
                alertmanager = %target.label,
                count = n,
                error = %e,
                "error sending alerts to Alertmanager"
            );
        }
    }
    if !accepted {
        tracing::warn!(
            tenant = tenant.tenant(),
            count = n,
            "no Alertmanager accepted the alerts, dropping them"
        );
    }
}

/// One request to one Alertmanager, bounded by the timeout as a whole.
async fn post(
    shared: &Shared,
    target: &Target,
    tenant: &HeaderValue,
    body: Bytes,
) -> Result<Duration, SendError> {
    let start = Instant::now();
    let request = async {
        let mut response = shared
            .client
            .post(target.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(TENANT_HEADER, tenant.clone())
            .body(body)
            .send()
            .await
            .map_err(SendError::Http)?;
        let status = response.status();
        // Read (a bounded part of) the body so the connection can be reused
        // and errors can say what Alertmanager objected to.
        let mut text = Vec::new();
        while text.len() < ERROR_BODY_LIMIT {
            match response.chunk().await {
                Ok(Some(chunk)) => text.extend_from_slice(&chunk),
                Ok(None) => break,
                Err(e) if status.is_success() => return Err(SendError::Http(e)),
                Err(_) => break,
            }
        }
        if status.is_success() {
            return Ok(());
        }
        text.truncate(ERROR_BODY_LIMIT);
        Err(SendError::Status {
            status: status.as_u16(),
            body: String::from_utf8_lossy(&text).trim().to_string(),
        })
    };
    match tokio::time::timeout(shared.timeout, request).await {
        Ok(Ok(())) => Ok(start.elapsed()),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(SendError::Timeout(shared.timeout)),
    }
}
