//! HA-pair deduplication, after Cortex's HA tracker.
//!
//! A tenant may run Prometheus as an HA pair: two (or more) identical servers
//! scraping the same targets, whose series differ only by an external label
//! naming the replica (`__replica__: r1` / `r2`) and share one naming the
//! cluster (`cluster: X`). Stored as they come, every sample would be stored
//! once per replica. The tracker elects one replica per (tenant, cluster) and
//! records it in a key-value store ([`HaStore`]) with the time it was last
//! seen:
//!
//! - a push of the elected replica is stored, with the replica label removed
//!   from every series (the cluster label stays), so a series is the same
//!   whichever replica sent it;
//! - a push of another replica is dropped and answered 202 Accepted (as
//!   Cortex does: a 2xx keeps Prometheus from retrying it), and its samples
//!   are counted in `strata_distributor_ha_dropped_samples_total`;
//! - when the elected replica has not been seen for `failover_timeout`, the
//!   next push of another replica takes over. Elections are written with a
//!   compare-and-swap, so distributors sharing the store agree.
//!
//! Which replica a push comes from is read from its **first series** only
//! (as Cortex does by default): a Prometheus adds its external labels to every
//! series it sends. A push whose first series lacks either label (or has it
//! empty) is not an HA push and is left untouched; so are pushes without
//! series (Prometheus sends metadata in requests of their own).
//!
//! # Few store calls
//!
//! Each distributor caches the last record it read or wrote per cluster. A
//! record changes hands only after `failover_timeout` without a write of its
//! replica, so a cached record with `received_at = t` is certainly still the
//! election until `t + failover_timeout`: pushes of other replicas are
//! dropped from the cache until then. The elected replica's pushes are
//! accepted from the cache until `t + update_timeout (± jitter)`; the next
//! one reads the store and, unless another distributor refreshed the record
//! meanwhile, writes `received_at = now`. The store therefore sees about one
//! write per cluster per `update_timeout` and one read per cluster,
//! distributor and `update_timeout`, whatever the push rate. Pushes that
//! find the cache stale wait for one store round trip per cluster at a time
//! (the others then use what it read).
//!
//! When the store fails, the replica this distributor last saw elected is
//! still accepted (nobody can elect another while the store is down); any
//! other is answered 503, so its sender retries and nothing acknowledged is
//! lost.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use strata_remote_write::{LabelRef, WriteRequestRef};

use crate::metrics::{TenantClusterLabel, TenantClusterOpLabel, TenantClusterReplicaLabel};
use crate::{DistributorMetrics, PushError};

/// Compare-and-swaps tried before a check gives up (each failed one means
/// another distributor wrote the record in between).
const CAS_ATTEMPTS: usize = 5;

/// Configuration of HA-pair deduplication (`distributor.ha_tracker`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct HaTrackerConfig {
    /// Deduplicate pushes of HA pairs.
    pub enabled: bool,
    /// Tenants whose pushes are deduplicated; empty means every tenant.
    pub tenants: Vec<String>,
    /// Label naming the cluster (the HA pair); kept on stored series.
    pub cluster_label: String,
    /// Label naming the replica within its cluster; removed from stored
    /// series.
    pub replica_label: String,
    /// How long the elected replica may be silent before another replica's
    /// push takes over (Cortex's `ha_tracker_failover_timeout`).
    #[serde(with = "strata_model::duration::serde")]
    pub failover_timeout: Duration,
    /// How often the elected replica's "last seen" time is written to the
    /// store (Cortex's `ha_tracker_update_timeout`).
    #[serde(with = "strata_model::duration::serde")]
    pub update_timeout: Duration,
    /// Each cluster's update timeout is moved by a random amount up to this,
    /// either way, so the clusters' writes spread over time.
    #[serde(with = "strata_model::duration::serde")]
    pub update_timeout_jitter_max: Duration,
    /// Clusters one tenant may have tracked by one distributor; pushes
    /// naming another cluster are refused with 400 (0 = no limit).
    pub max_clusters_per_tenant: usize,
}

impl Default for HaTrackerConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            tenants: Vec::new(),
            cluster_label: "cluster".to_string(),
            replica_label: "__replica__".to_string(),
            failover_timeout: Duration::from_secs(30),
            update_timeout: Duration::from_secs(15),
            update_timeout_jitter_max: Duration::from_secs(5),
            max_clusters_per_tenant: 100,
        }
    }
}

impl HaTrackerConfig {
    /// Checks what would make the tracker misbehave; the message names the
    /// keys to change.
    pub fn validate(&self) -> Result<(), String> {
        if self.cluster_label.is_empty() || self.replica_label.is_empty() {
            return Err(
                "distributor.ha_tracker.cluster_label and replica_label must not be empty"
                    .to_string(),
            );
        }
        if self.cluster_label == self.replica_label {
            return Err(format!(
                "distributor.ha_tracker.cluster_label and replica_label are both {:?}; they must differ",
                self.cluster_label
            ));
        }
        let longest_update = self.update_timeout + self.update_timeout_jitter_max;
        if self.failover_timeout <= longest_update {
            return Err(format!(
                "distributor.ha_tracker.failover_timeout ({}) must be longer than update_timeout plus \
                 update_timeout_jitter_max ({}), or the elected replica loses its election while it \
                 still sends",
                strata_model::duration::format_duration(self.failover_timeout),
                strata_model::duration::format_duration(longest_update),
            ));
        }
        Ok(())
    }

    /// Whether `tenant`'s pushes are deduplicated.
    pub fn applies_to(&self, tenant: &str) -> bool {
        self.enabled && (self.tenants.is_empty() || self.tenants.iter().any(|t| t == tenant))
    }
}

/// The elected replica of one cluster, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaDesc {
    pub replica: String,
    /// When a distributor last wrote that it received a push of `replica`
    /// (Unix milliseconds, the writer's clock).
    pub received_at_ms: i64,
}

/// A stored [`ReplicaDesc`] with the version a compare-and-swap expects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionedReplica {
    pub desc: ReplicaDesc,
    pub version: u64,
}

/// What a compare-and-swap did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CasOutcome {
    /// The record was written; it now has `version`.
    Written { version: u64 },
    /// The stored record was not at the expected version (or, for a
    /// creation, existed already): nothing was written.
    Conflict,
}

/// A failed call of an [`HaStore`].
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HaStoreError(pub String);

/// Where the elected replica of each (tenant, cluster) is kept, shared by
/// every distributor: in memory for the one-process mode, DynamoDB
/// (`strata_ring_dynamodb::DynamoHaStore`) for separate processes.
pub trait HaStore: Send + Sync + 'static {
    /// The record of `(tenant, cluster)`, strongly consistent.
    fn get<'a>(
        &'a self,
        tenant: &'a str,
        cluster: &'a str,
    ) -> BoxFuture<'a, Result<Option<VersionedReplica>, HaStoreError>>;

    /// Writes `desc` if the record is at `expected_version`, or, with
    /// `None`, if there is no record yet.
    fn compare_and_swap<'a>(
        &'a self,
        tenant: &'a str,
        cluster: &'a str,
        expected_version: Option<u64>,
        desc: &'a ReplicaDesc,
    ) -> BoxFuture<'a, Result<CasOutcome, HaStoreError>>;
}

/// An [`HaStore`] in this process's memory (the one-process mode, and tests),
/// counting the calls it gets.
#[derive(Default)]
pub struct MemoryHaStore {
    records: Mutex<HashMap<(String, String), VersionedReplica>>,
    gets: AtomicU64,
    writes: AtomicU64,
}

impl MemoryHaStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// `get` calls so far.
    pub fn gets(&self) -> u64 {
        self.gets.load(Ordering::Relaxed)
    }

    /// Records written so far (successful compare-and-swaps).
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    /// The stored record of `(tenant, cluster)`, without counting a call.
    pub fn record(&self, tenant: &str, cluster: &str) -> Option<VersionedReplica> {
        self.records
            .lock()
            .get(&(tenant.to_string(), cluster.to_string()))
            .cloned()
    }
}

impl HaStore for MemoryHaStore {
    fn get<'a>(
        &'a self,
        tenant: &'a str,
        cluster: &'a str,
    ) -> BoxFuture<'a, Result<Option<VersionedReplica>, HaStoreError>> {
        self.gets.fetch_add(1, Ordering::Relaxed);
        let record = self.record(tenant, cluster);
        Box::pin(async move { Ok(record) })
    }

    fn compare_and_swap<'a>(
        &'a self,
        tenant: &'a str,
        cluster: &'a str,
        expected_version: Option<u64>,
        desc: &'a ReplicaDesc,
    ) -> BoxFuture<'a, Result<CasOutcome, HaStoreError>> {
        let mut records = self.records.lock();
        let key = (tenant.to_string(), cluster.to_string());
        let current = records.get(&key).map(|r| r.version);
        let outcome = if current == expected_version {
            let version = expected_version.map_or(1, |v| v + 1);
            records.insert(
                key,
                VersionedReplica {
                    desc: desc.clone(),
                    version,
                },
            );
            self.writes.fetch_add(1, Ordering::Relaxed);
            CasOutcome::Written { version }
        } else {
            CasOutcome::Conflict
        };
        Box::pin(async move { Ok(outcome) })
    }
}

/// Whether a push of a replica is stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HaDecision {
    /// The elected replica: store it (without the replica label).
    Accept,
    /// Another replica is elected: drop the push.
    Drop { elected: String },
}

/// Why [`HaTracker::check`] could not decide.
#[derive(Debug, thiserror::Error)]
pub enum HaError {
    #[error("HA tracker store: {0}")]
    Store(#[from] HaStoreError),
    #[error(
        "tenant has {limit} HA clusters tracked already, the most allowed; \
         raise distributor.ha_tracker.max_clusters_per_tenant or use fewer values of the cluster label"
    )]
    TooManyClusters { limit: usize },
}

/// The cached election of one cluster.
struct Cluster {
    /// The record as last read or written by this distributor.
    elected: Mutex<Option<VersionedReplica>>,
    /// Held while one check asks the store, so concurrent pushes of a
    /// cluster cost one round trip.
    refresh: tokio::sync::Mutex<()>,
    /// `update_timeout` with this cluster's jitter, in milliseconds.
    update_after_ms: i64,
    /// Last push of any replica of the cluster (for pruning).
    last_push_ms: AtomicI64,
}

impl Cluster {
    /// The decision the cached record allows, if it allows one.
    fn decide(&self, replica: &str, now_ms: i64, failover_ms: i64) -> Option<HaDecision> {
        let elected = self.elected.lock();
        decide(
            &elected.as_ref()?.desc,
            replica,
            now_ms,
            self.update_after_ms,
            failover_ms,
        )
    }
}

/// What `record` allows without writing the store: accept the elected
/// replica until its record is `update_after_ms` old (then it is refreshed),
/// drop the others until it is `failover_ms` old (then one takes over).
fn decide(
    record: &ReplicaDesc,
    replica: &str,
    now_ms: i64,
    update_after_ms: i64,
    failover_ms: i64,
) -> Option<HaDecision> {
    let age = now_ms.saturating_sub(record.received_at_ms);
    if record.replica == replica {
        (age < update_after_ms).then_some(HaDecision::Accept)
    } else {
        (age < failover_ms).then(|| HaDecision::Drop {
            elected: record.replica.clone(),
        })
    }
}

/// What the distributor does with a push, from its first series.
pub(crate) enum HaVerdict<'t> {
    /// Not an HA push: handled as any other.
    Untouched,
    /// From the elected replica: store it without the `strip` label.
    Accept { strip: &'t str },
    /// Settle it with [`HaTracker::settle`]: dropped, or the store must be
    /// asked.
    Pending(HaPending),
}

/// A push the cache did not let through.
#[derive(Debug)]
pub(crate) enum HaPending {
    /// The cache cannot tell: ask the store, then plan the push again with
    /// the answer.
    Ask { cluster: String, replica: String },
    /// Another replica is elected: the push is dropped.
    Drop {
        cluster: String,
        replica: String,
        elected: String,
        samples: u64,
    },
}

/// Elects one replica per (tenant, cluster) and decides whose pushes are
/// stored (see the module documentation).
pub struct HaTracker {
    config: HaTrackerConfig,
    store: Arc<dyn HaStore>,
    metrics: DistributorMetrics,
    /// Seeds each cluster's jitter, differently in every process.
    jitter_seed: RandomState,
    /// Cached elections: tenant → cluster → election.
    clusters: RwLock<HashMap<String, HashMap<String, Arc<Cluster>>>>,
}

impl HaTracker {
    pub fn new(
        config: HaTrackerConfig,
        store: Arc<dyn HaStore>,
        metrics: DistributorMetrics,
    ) -> Self {
        Self {
            config,
            store,
            metrics,
            jitter_seed: RandomState::new(),
            clusters: RwLock::new(HashMap::new()),
        }
    }

    pub fn config(&self) -> &HaTrackerConfig {
        &self.config
    }

    fn failover_ms(&self) -> i64 {
        duration_ms(self.config.failover_timeout)
    }

    /// This cluster's update timeout: the configured one moved by a jitter
    /// in `[-max, +max]`, fixed per cluster and process.
    fn update_after_ms(&self, tenant: &str, cluster: &str) -> i64 {
        let base = duration_ms(self.config.update_timeout);
        let max = duration_ms(self.config.update_timeout_jitter_max);
        if max == 0 {
            return base;
        }
        let h = self.jitter_seed.hash_one((tenant, cluster));
        let span = (2 * max + 1) as u64;
        let jitter = (h % span) as i64 - max;
        (base + jitter).max(0)
    }

    fn cached(&self, tenant: &str, cluster: &str) -> Option<Arc<Cluster>> {
        self.clusters.read().get(tenant)?.get(cluster).cloned()
    }

    /// The cached election of `(tenant, cluster)`, created empty when new
    /// (within `max_clusters_per_tenant`).
    fn cluster(&self, tenant: &str, cluster: &str) -> Result<Arc<Cluster>, HaError> {
        if let Some(c) = self.cached(tenant, cluster) {
            return Ok(c);
        }
        let update_after_ms = self.update_after_ms(tenant, cluster);
        let mut clusters = self.clusters.write();
        let of_tenant = clusters.entry(tenant.to_string()).or_default();
        if let Some(c) = of_tenant.get(cluster) {
            return Ok(c.clone());
        }
        let limit = self.config.max_clusters_per_tenant;
        if limit > 0 && of_tenant.len() >= limit {
            return Err(HaError::TooManyClusters { limit });
        }
        let c = Arc::new(Cluster {
            elected: Mutex::new(None),
            refresh: tokio::sync::Mutex::new(()),
            update_after_ms,
            last_push_ms: AtomicI64::new(0),
        });
        of_tenant.insert(cluster.to_string(), c.clone());
        Ok(c)
    }

    /// The decision for a push of `replica` of `cluster` at `now_ms` that
    /// the cache allows without asking the store, if any.
    pub fn check_cached(
        &self,
        tenant: &str,
        cluster: &str,
        replica: &str,
        now_ms: i64,
    ) -> Option<HaDecision> {
        let c = self.cached(tenant, cluster)?;
        c.last_push_ms.store(now_ms, Ordering::Relaxed);
        c.decide(replica, now_ms, self.failover_ms())
    }

    /// Decides whether a push of `replica` of `cluster` received at `now_ms`
    /// is stored: from the cache when it can tell, else by reading the
    /// store and, to elect `replica` or refresh its time, writing it with a
    /// compare-and-swap.
    pub async fn check(
        &self,
        tenant: &str,
        cluster: &str,
        replica: &str,
        now_ms: i64,
    ) -> Result<HaDecision, HaError> {
        let entry = self.cluster(tenant, cluster)?;
        entry.last_push_ms.store(now_ms, Ordering::Relaxed);
        let failover_ms = self.failover_ms();
        let _refreshing = entry.refresh.lock().await;
        // Another push may have refreshed the cache while this one waited.
        if let Some(decision) = entry.decide(replica, now_ms, failover_ms) {
            return Ok(decision);
        }
        for _ in 0..CAS_ATTEMPTS {
            let current = self.store.get(tenant, cluster).await;
            self.count_store_call(tenant, cluster, "get", current.is_err());
            let current = match current {
                Ok(current) => current,
                Err(e) => return self.store_failed(tenant, cluster, &entry, replica, e),
            };
            let expected = match current {
                Some(record) => {
                    let decision = decide(
                        &record.desc,
                        replica,
                        now_ms,
                        entry.update_after_ms,
                        failover_ms,
                    );
                    let version = record.version;
                    self.remember(tenant, cluster, &entry, record);
                    if let Some(decision) = decision {
                        return Ok(decision);
                    }
                    Some(version)
                }
                None => None,
            };
            let desc = ReplicaDesc {
                replica: replica.to_string(),
                received_at_ms: now_ms,
            };
            let written = self
                .store
                .compare_and_swap(tenant, cluster, expected, &desc)
                .await;
            self.count_store_call(tenant, cluster, "cas", written.is_err());
            match written {
                Ok(CasOutcome::Written { version }) => {
                    self.remember(tenant, cluster, &entry, VersionedReplica { desc, version });
                    return Ok(HaDecision::Accept);
                }
                // Another distributor wrote in between: read what it wrote.
                Ok(CasOutcome::Conflict) => continue,
                Err(e) => return self.store_failed(tenant, cluster, &entry, replica, e),
            }
        }
        Err(HaError::Store(HaStoreError(format!(
            "the record of cluster {cluster:?} changed under {CAS_ATTEMPTS} compare-and-swaps in a row"
        ))))
    }

    /// The store failed: the replica last seen elected here is still
    /// accepted, anything else is an error (503, retried by the sender).
    fn store_failed(
        &self,
        tenant: &str,
        cluster: &str,
        entry: &Cluster,
        replica: &str,
        err: HaStoreError,
    ) -> Result<HaDecision, HaError> {
        let elected = entry.elected.lock();
        if elected.as_ref().is_some_and(|e| e.desc.replica == replica) {
            tracing::warn!(tenant, cluster, replica, error = %err,
                "HA tracker store failed; accepting the replica elected when it was last read");
            return Ok(HaDecision::Accept);
        }
        Err(HaError::Store(err))
    }

    /// Caches `record` as the election of `(tenant, cluster)`, counting a
    /// change of the elected replica.
    fn remember(&self, tenant: &str, cluster: &str, entry: &Cluster, record: VersionedReplica) {
        let mut elected = entry.elected.lock();
        let previous = elected.as_ref().map(|e| e.desc.replica.as_str());
        if previous != Some(record.desc.replica.as_str()) {
            tracing::info!(
                tenant,
                cluster,
                replica = %record.desc.replica,
                previous = previous.unwrap_or(""),
                "HA tracker: elected replica changed"
            );
            self.metrics
                .ha_elected_replica_changes
                .get_or_create(&TenantClusterLabel::new(tenant, cluster))
                .inc();
            if let Some(previous) = previous {
                self.metrics
                    .ha_elected_replica
                    .remove(&TenantClusterReplicaLabel::new(tenant, cluster, previous));
            }
            self.metrics
                .ha_elected_replica
                .get_or_create(&TenantClusterReplicaLabel::new(
                    tenant,
                    cluster,
                    &record.desc.replica,
                ))
                .set(1);
        }
        *elected = Some(record);
    }

    fn count_store_call(&self, tenant: &str, cluster: &str, operation: &str, failed: bool) {
        self.metrics
            .ha_kv_store_calls
            .get_or_create(&TenantClusterOpLabel::new(tenant, cluster, operation))
            .inc();
        if failed {
            self.metrics
                .ha_kv_store_failures
                .get_or_create(&TenantClusterOpLabel::new(tenant, cluster, operation))
                .inc();
        }
    }

    /// The cached elections: (tenant, cluster, replica, received_at_ms),
    /// sorted.
    pub fn elected(&self) -> Vec<(String, String, String, i64)> {
        let clusters = self.clusters.read();
        let mut out = Vec::new();
        for (tenant, of_tenant) in clusters.iter() {
            for (cluster, c) in of_tenant {
                if let Some(e) = c.elected.lock().as_ref() {
                    out.push((
                        tenant.clone(),
                        cluster.clone(),
                        e.desc.replica.clone(),
                        e.desc.received_at_ms,
                    ));
                }
            }
        }
        out.sort();
        out
    }

    /// Forgets the clusters no push named for `idle` (their store records
    /// stay, and are read again when they come back); returns how many.
    pub fn prune_idle(&self, now_ms: i64, idle: Duration) -> usize {
        let idle_ms = duration_ms(idle);
        let mut pruned = 0;
        let mut clusters = self.clusters.write();
        for (tenant, of_tenant) in clusters.iter_mut() {
            of_tenant.retain(|cluster, c| {
                let keep = now_ms.saturating_sub(c.last_push_ms.load(Ordering::Relaxed)) < idle_ms;
                if !keep {
                    pruned += 1;
                    if let Some(e) = c.elected.lock().as_ref() {
                        self.metrics
                            .ha_elected_replica
                            .remove(&TenantClusterReplicaLabel::new(
                                tenant,
                                cluster,
                                &e.desc.replica,
                            ));
                    }
                }
                keep
            });
        }
        clusters.retain(|_, of_tenant| !of_tenant.is_empty());
        pruned
    }

    /// The distributor's hook: what to do with `req` of `tenant`, from its
    /// first series. `answer` is what the store said for this push, when
    /// an earlier verdict was [`HaPending::Ask`].
    pub(crate) fn verdict(
        &self,
        tenant: &str,
        req: &WriteRequestRef<'_>,
        max_label_value_length: usize,
        answer: Option<&HaDecision>,
        now_ms: i64,
    ) -> HaVerdict<'_> {
        if !self.config.applies_to(tenant) {
            return HaVerdict::Untouched;
        }
        let Some(first) = req.get(0) else {
            return HaVerdict::Untouched;
        };
        let labels = first.labels();
        let (Some(cluster), Some(replica)) = (
            label_value(labels, &self.config.cluster_label),
            label_value(labels, &self.config.replica_label),
        ) else {
            return HaVerdict::Untouched;
        };
        // Such a series fails validation anyway; do not track its values.
        if cluster.len() > max_label_value_length || replica.len() > max_label_value_length {
            return HaVerdict::Untouched;
        }
        let decision = match answer {
            Some(answer) => answer.clone(),
            None => match self.check_cached(tenant, cluster, replica, now_ms) {
                Some(decision) => decision,
                None => {
                    return HaVerdict::Pending(HaPending::Ask {
                        cluster: cluster.to_string(),
                        replica: replica.to_string(),
                    })
                }
            },
        };
        match decision {
            HaDecision::Accept => HaVerdict::Accept {
                strip: &self.config.replica_label,
            },
            HaDecision::Drop { elected } => HaVerdict::Pending(HaPending::Drop {
                cluster: cluster.to_string(),
                replica: replica.to_string(),
                elected,
                samples: (req.sample_count() + req.histogram_count()) as u64,
            }),
        }
    }

    /// Settles a push the cache did not let through: the store's answer to
    /// plan it again with, or the error it is answered with (202 when it
    /// was dropped).
    pub(crate) async fn settle(
        &self,
        tenant: &str,
        pending: HaPending,
    ) -> Result<HaDecision, PushError> {
        match pending {
            HaPending::Ask { cluster, replica } => self
                .check(tenant, &cluster, &replica, strata_ring::now_ms())
                .await
                .map_err(|e| match e {
                    HaError::Store(_) => PushError::Unavailable(format!("{e}; retry later")),
                    HaError::TooManyClusters { .. } => {
                        PushError::BadRequest(format!("cluster {cluster:?}: {e}"))
                    }
                }),
            HaPending::Drop {
                cluster,
                replica,
                elected,
                samples,
            } => {
                self.metrics
                    .ha_dropped_samples
                    .get_or_create(&TenantClusterLabel::new(tenant, &cluster))
                    .inc_by(samples);
                Err(PushError::Deduplicated(format!(
                    "replicas did not match, samples dropped: replica={replica}, elected={elected} (cluster {cluster})"
                )))
            }
        }
    }
}

/// The value of label `name` in `labels`, if present and not empty.
fn label_value<'a>(labels: &[LabelRef<'a>], name: &str) -> Option<&'a str> {
    labels
        .iter()
        .find(|l| l.name == name)
        .map(|l| l.value)
        .filter(|v| !v.is_empty())
}

fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1000;

    fn config() -> HaTrackerConfig {
        HaTrackerConfig {
            enabled: true,
            failover_timeout: Duration::from_secs(30),
            update_timeout: Duration::from_secs(15),
            update_timeout_jitter_max: Duration::ZERO,
            ..HaTrackerConfig::default()
        }
    }

    fn tracker(store: &Arc<MemoryHaStore>) -> HaTracker {
        HaTracker::new(config(), store.clone(), DistributorMetrics::default())
    }

    fn drop_of(elected: &str) -> HaDecision {
        HaDecision::Drop {
            elected: elected.to_string(),
        }
    }

    #[tokio::test]
    async fn first_replica_is_elected_and_the_other_dropped() {
        let store = Arc::new(MemoryHaStore::new());
        let t = tracker(&store);
        let t0 = 1_000_000 * S;
        assert_eq!(
            t.check("t", "c", "r1", t0).await.unwrap(),
            HaDecision::Accept
        );
        assert_eq!(
            t.check("t", "c", "r2", t0 + S).await.unwrap(),
            drop_of("r1")
        );
        assert_eq!(
            t.check("t", "c", "r1", t0 + 2 * S).await.unwrap(),
            HaDecision::Accept
        );
        let record = store.record("t", "c").unwrap();
        assert_eq!(record.desc.replica, "r1");
        assert_eq!(record.desc.received_at_ms, t0);
        // Another tenant's cluster of the same name is elected on its own.
        assert_eq!(
            t.check("u", "c", "r2", t0).await.unwrap(),
            HaDecision::Accept
        );
        let changes = |tenant: &str| {
            t.metrics
                .ha_elected_replica_changes
                .get_or_create(&TenantClusterLabel::new(tenant, "c"))
                .get()
        };
        assert_eq!((changes("t"), changes("u")), (1, 1));
        assert_eq!(t.elected().len(), 2);
    }

    #[tokio::test]
    async fn failover_after_the_timeout_and_not_before() {
        let store = Arc::new(MemoryHaStore::new());
        let t = tracker(&store);
        let t0 = 1_000_000 * S;
        t.check("t", "c", "r1", t0).await.unwrap();
        // r1 goes silent: r2 is dropped until failover_timeout has passed
        // since r1's last recorded push...
        assert_eq!(
            t.check("t", "c", "r2", t0 + 29 * S).await.unwrap(),
            drop_of("r1")
        );
        assert_eq!(
            t.check("t", "c", "r2", t0 + 30 * S - 1).await.unwrap(),
            drop_of("r1")
        );
        // ...then takes over.
        assert_eq!(
            t.check("t", "c", "r2", t0 + 30 * S).await.unwrap(),
            HaDecision::Accept
        );
        assert_eq!(store.record("t", "c").unwrap().desc.replica, "r2");
        // r1 comes back: it is the other replica now.
        assert_eq!(
            t.check("t", "c", "r1", t0 + 31 * S).await.unwrap(),
            drop_of("r2")
        );
        let changes = t
            .metrics
            .ha_elected_replica_changes
            .get_or_create(&TenantClusterLabel::new("t", "c"))
            .get();
        assert_eq!(changes, 2);
        assert_eq!(t.elected()[0].2, "r2");
    }

    #[tokio::test]
    async fn the_elected_replica_keeps_its_election_while_it_sends() {
        let store = Arc::new(MemoryHaStore::new());
        let t = tracker(&store);
        let t0 = 1_000_000 * S;
        // r1 sends every second for five minutes; r2 too, half a second later.
        for i in 0..300 {
            let now = t0 + i * S;
            assert_eq!(
                t.check("t", "c", "r1", now).await.unwrap(),
                HaDecision::Accept
            );
            assert_eq!(
                t.check("t", "c", "r2", now + S / 2).await.unwrap(),
                drop_of("r1")
            );
        }
        // One write per update_timeout (15 s): 300 s / 15 s = 20.
        assert_eq!(store.writes(), 20);
        assert!(store.gets() <= 21, "{} reads", store.gets());
    }

    #[tokio::test]
    async fn two_distributors_sharing_a_store_agree() {
        let store = Arc::new(MemoryHaStore::new());
        let a = tracker(&store);
        let b = tracker(&store);
        let t0 = 1_000_000 * S;
        // r1 reaches distributor a first, r2 reaches b a moment later.
        assert_eq!(
            a.check("t", "c", "r1", t0).await.unwrap(),
            HaDecision::Accept
        );
        assert_eq!(
            b.check("t", "c", "r2", t0 + 10).await.unwrap(),
            drop_of("r1")
        );
        assert_eq!(
            b.check("t", "c", "r1", t0 + 20).await.unwrap(),
            HaDecision::Accept
        );
        assert_eq!(
            a.check("t", "c", "r2", t0 + 30).await.unwrap(),
            drop_of("r1")
        );
        // r1 keeps sending through b only: b refreshes the record, so a
        // does not fail over to r2 either.
        for i in 1..=40 {
            assert_eq!(
                b.check("t", "c", "r1", t0 + i * S).await.unwrap(),
                HaDecision::Accept
            );
        }
        assert_eq!(
            a.check("t", "c", "r2", t0 + 40 * S).await.unwrap(),
            drop_of("r1")
        );
        // r1 stops. Both distributors get r2 after the failover timeout:
        // exactly one write elects it, the other reads it.
        let writes = store.writes();
        let later = t0 + 40 * S + 31 * S;
        let (x, y) = tokio::join!(
            a.check("t", "c", "r2", later),
            b.check("t", "c", "r2", later + 1)
        );
        assert_eq!(
            (x.unwrap(), y.unwrap()),
            (HaDecision::Accept, HaDecision::Accept)
        );
        assert_eq!(store.writes(), writes + 1);
        assert_eq!(
            a.check("t", "c", "r1", later + S).await.unwrap(),
            drop_of("r2")
        );
        assert_eq!(
            b.check("t", "c", "r1", later + S).await.unwrap(),
            drop_of("r2")
        );
    }

    /// A store whose compare-and-swap always loses to another writer that
    /// elects `winner`.
    struct Racing {
        inner: MemoryHaStore,
        winner: &'static str,
    }

    impl HaStore for Racing {
        fn get<'a>(
            &'a self,
            tenant: &'a str,
            cluster: &'a str,
        ) -> BoxFuture<'a, Result<Option<VersionedReplica>, HaStoreError>> {
            self.inner.get(tenant, cluster)
        }

        fn compare_and_swap<'a>(
            &'a self,
            tenant: &'a str,
            cluster: &'a str,
            expected_version: Option<u64>,
            _desc: &'a ReplicaDesc,
        ) -> BoxFuture<'a, Result<CasOutcome, HaStoreError>> {
            // The other writer gets there first.
            let theirs = ReplicaDesc {
                replica: self.winner.to_string(),
                received_at_ms: strata_ring::now_ms(),
            };
            drop(
                self.inner
                    .compare_and_swap(tenant, cluster, expected_version, &theirs),
            );
            Box::pin(async { Ok(CasOutcome::Conflict) })
        }
    }

    #[tokio::test]
    async fn a_lost_compare_and_swap_reads_the_winner() {
        let store = Arc::new(Racing {
            inner: MemoryHaStore::new(),
            winner: "r2",
        });
        let t = HaTracker::new(config(), store.clone(), DistributorMetrics::default());
        let now = strata_ring::now_ms();
        assert_eq!(t.check("t", "c", "r1", now).await.unwrap(), drop_of("r2"));
        assert_eq!(
            t.check("t", "c", "r2", now).await.unwrap(),
            HaDecision::Accept
        );
    }

    struct Down;

    impl HaStore for Down {
        fn get<'a>(
            &'a self,
            _: &'a str,
            _: &'a str,
        ) -> BoxFuture<'a, Result<Option<VersionedReplica>, HaStoreError>> {
            Box::pin(async { Err(HaStoreError("connection refused".to_string())) })
        }

        fn compare_and_swap<'a>(
            &'a self,
            _: &'a str,
            _: &'a str,
            _: Option<u64>,
            _: &'a ReplicaDesc,
        ) -> BoxFuture<'a, Result<CasOutcome, HaStoreError>> {
            Box::pin(async { Err(HaStoreError("connection refused".to_string())) })
        }
    }

    #[tokio::test]
    async fn a_failing_store_keeps_the_last_election_and_refuses_the_rest() {
        let store = Arc::new(MemoryHaStore::new());
        let mut t = tracker(&store);
        let t0 = 1_000_000 * S;
        t.check("t", "c", "r1", t0).await.unwrap();
        t.store = Arc::new(Down);
        let later = t0 + 60 * S;
        assert_eq!(
            t.check("t", "c", "r1", later).await.unwrap(),
            HaDecision::Accept
        );
        assert!(matches!(
            t.check("t", "c", "r2", later).await,
            Err(HaError::Store(_))
        ));
        assert!(matches!(
            t.check("t", "new", "r1", later).await,
            Err(HaError::Store(_))
        ));
        let failures = t
            .metrics
            .ha_kv_store_failures
            .get_or_create(&TenantClusterOpLabel::new("t", "c", "get"))
            .get();
        assert_eq!(failures, 2);
    }

    #[tokio::test]
    async fn clusters_per_tenant_are_limited_and_idle_ones_forgotten() {
        let store = Arc::new(MemoryHaStore::new());
        let t = HaTracker::new(
            HaTrackerConfig {
                max_clusters_per_tenant: 2,
                ..config()
            },
            store.clone(),
            DistributorMetrics::default(),
        );
        let t0 = 1_000_000 * S;
        t.check("t", "a", "r1", t0).await.unwrap();
        t.check("t", "b", "r1", t0).await.unwrap();
        assert!(matches!(
            t.check("t", "c", "r1", t0).await,
            Err(HaError::TooManyClusters { limit: 2 })
        ));
        t.check("u", "c", "r1", t0).await.unwrap();
        // Cluster a keeps sending, b goes quiet and is forgotten.
        t.check("t", "a", "r1", t0 + 600 * S).await.unwrap();
        assert_eq!(t.prune_idle(t0 + 601 * S, Duration::from_secs(300)), 2);
        t.check("t", "c", "r1", t0 + 601 * S).await.unwrap();
        let elected: Vec<String> = t.elected().into_iter().map(|e| e.1).collect();
        assert_eq!(elected, ["a", "c"]);
    }

    #[test]
    fn jitter_stays_within_its_bounds_and_differs_between_clusters() {
        let t = HaTracker::new(
            HaTrackerConfig {
                update_timeout_jitter_max: Duration::from_secs(5),
                ..config()
            },
            Arc::new(MemoryHaStore::new()),
            DistributorMetrics::default(),
        );
        let values: Vec<i64> = (0..50)
            .map(|i| t.update_after_ms("t", &format!("c{i}")))
            .collect();
        assert!(
            values.iter().all(|v| (10 * S..=20 * S).contains(v)),
            "{values:?}"
        );
        assert!(values.iter().any(|v| *v != values[0]), "{values:?}");
        assert_eq!(t.update_after_ms("t", "c1"), t.update_after_ms("t", "c1"));
    }

    #[test]
    fn config_validation_names_the_keys() {
        assert!(HaTrackerConfig::default().validate().is_ok());
        let err = HaTrackerConfig {
            failover_timeout: Duration::from_secs(5),
            ..HaTrackerConfig::default()
        }
        .validate()
        .unwrap_err();
        assert!(err.contains("failover_timeout (5s)"), "{err}");
        assert!(err.contains("update_timeout"), "{err}");
        let err = HaTrackerConfig {
            replica_label: "cluster".to_string(),
            ..HaTrackerConfig::default()
        }
        .validate()
        .unwrap_err();
        assert!(err.contains("must differ"), "{err}");
        let only_a = HaTrackerConfig {
            enabled: true,
            tenants: vec!["a".to_string()],
            ..HaTrackerConfig::default()
        };
        assert!(only_a.applies_to("a") && !only_a.applies_to("b"));
        assert!(!HaTrackerConfig::default().applies_to("a"));
    }
}

/// The whole push path: a distributor over a one-member ring whose ingester
/// is a function call recording what it gets.
#[cfg(test)]
mod push_tests {
    use std::future::Future;
    use std::pin::Pin;

    use axum::http::StatusCode;
    use bytes::Bytes;
    use strata_ingester_client::{IngesterClientPool, LocalIngester, LocalQueryAnswer, PoolConfig};
    use strata_proto::ingester::PushResponse;
    use strata_remote_write::{compress, encode_write_request, OwnedTimeSeries, Sample};
    use strata_ring::now_ms;

    use super::*;
    use crate::{Distributor, DistributorConfig};

    /// Series (labels as `k=v,...`, samples) the ingester received.
    #[derive(Default)]
    struct Recorder {
        got: Mutex<Vec<(String, usize)>>,
    }

    impl LocalIngester for Recorder {
        fn instance_id(&self) -> &str {
            "ing-1"
        }

        fn push<'a, 'b, 'f>(
            &'a self,
            _tenant: &'b str,
            body: Bytes,
        ) -> Pin<Box<dyn Future<Output = Result<PushResponse, tonic::Status>> + Send + 'f>>
        where
            'a: 'f,
            'b: 'f,
            Self: 'f,
        {
            let req = WriteRequestRef::decode(&body).expect("decodable batch");
            let mut got = self.got.lock();
            for s in req.series() {
                let labels: Vec<String> = s
                    .labels()
                    .iter()
                    .map(|l| format!("{}={}", l.name, l.value))
                    .collect();
                got.push((labels.join(","), s.samples().len()));
            }
            Box::pin(async { Ok(PushResponse::default()) })
        }

        fn query<'a, 'b, 'f>(
            &'a self,
            _tenant: &'b str,
            _matchers: Vec<strata_model::Matcher>,
            _start_ms: i64,
            _end_ms: i64,
        ) -> Pin<Box<dyn Future<Output = Result<LocalQueryAnswer, tonic::Status>> + Send + 'f>>
        where
            'a: 'f,
            'b: 'f,
            Self: 'f,
        {
            Box::pin(async { Ok(LocalQueryAnswer::default()) })
        }
    }

    async fn distributor(
        config: HaTrackerConfig,
        store: Arc<MemoryHaStore>,
    ) -> (Arc<Distributor>, Arc<Recorder>) {
        let ring = crate::test_support::one_member_ring().await;
        let recorder = Arc::new(Recorder::default());
        let d = Distributor::new(
            DistributorConfig {
                ha_tracker: config,
                ..DistributorConfig::default()
            },
            Arc::new(ring),
            Arc::new(IngesterClientPool::new(PoolConfig::default())),
            DistributorMetrics::default(),
        )
        .with_local_ingester(recorder.clone())
        .with_ha_store(store);
        (Arc::new(d), recorder)
    }

    fn enabled() -> HaTrackerConfig {
        HaTrackerConfig {
            enabled: true,
            update_timeout_jitter_max: Duration::ZERO,
            ..HaTrackerConfig::default()
        }
    }

    /// A push of two series, as a Prometheus with the given external labels
    /// sends it.
    fn push_body(external: &[(&str, &str)], samples: usize) -> Bytes {
        let now = now_ms();
        let series: Vec<OwnedTimeSeries> = ["a", "b"]
            .iter()
            .map(|job| {
                let mut labels = vec![
                    ("__name__".to_string(), "up".to_string()),
                    ("job".to_string(), job.to_string()),
                ];
                labels.extend(external.iter().map(|(k, v)| (k.to_string(), v.to_string())));
                labels.sort();
                OwnedTimeSeries::new(
                    labels,
                    (0..samples).map(|i| Sample {
                        timestamp: now - (samples - i) as i64,
                        value: 1.0,
                    }),
                )
            })
            .collect();
        Bytes::from(compress(&encode_write_request(&series, &[])))
    }

    fn replica(r: &str) -> Bytes {
        push_body(&[("cluster", "pair"), ("__replica__", r)], 3)
    }

    fn dropped(d: &Distributor, tenant: &str) -> u64 {
        d.metrics()
            .ha_dropped_samples
            .get_or_create(&TenantClusterLabel::new(tenant, "pair"))
            .get()
    }

    #[tokio::test]
    async fn elected_replica_is_stored_without_its_label_and_the_other_gets_202() {
        let store = Arc::new(MemoryHaStore::new());
        let (d, ingester) = distributor(enabled(), store.clone()).await;

        let stored = d.push("t", replica("r1")).await.unwrap();
        assert_eq!((stored.series, stored.samples), (2, 6));
        assert_eq!(
            *ingester.got.lock(),
            [
                ("__name__=up,cluster=pair,job=a".to_string(), 3),
                ("__name__=up,cluster=pair,job=b".to_string(), 3)
            ]
        );

        let err = d.push("t", replica("r2")).await.unwrap_err();
        assert_eq!(err.status(), StatusCode::ACCEPTED, "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains("replica=r2") && msg.contains("elected=r1"),
            "{msg}"
        );
        assert_eq!(ingester.got.lock().len(), 2, "nothing of r2 stored");
        assert_eq!(dropped(&d, "t"), 6);
        let status_202 = d
            .metrics()
            .requests
            .get_or_create(&crate::metrics::StatusLabel {
                status: "202".to_string(),
            })
            .get();
        assert_eq!(status_202, 1);

        // Pushes without both labels, and other tenants' clusters, are
        // not the pair's business.
        d.push("t", push_body(&[("__replica__", "r2")], 1))
            .await
            .unwrap();
        d.push("t", push_body(&[], 1)).await.unwrap();
        d.push("u", replica("r2")).await.unwrap();
        let got = ingester.got.lock().clone();
        assert_eq!(got[2].0, "__name__=up,__replica__=r2,job=a");
        assert_eq!(got[4].0, "__name__=up,job=a");
        assert_eq!(got[6].0, "__name__=up,cluster=pair,job=a");
        assert_eq!(dropped(&d, "t"), 6);
        let elected = d
            .metrics()
            .ha_elected_replica
            .get_or_create(&TenantClusterReplicaLabel::new("t", "pair", "r1"));
        assert_eq!(elected.get(), 1);
    }

    #[tokio::test]
    async fn no_store_call_per_push() {
        let store = Arc::new(MemoryHaStore::new());
        let (d, ingester) = distributor(enabled(), store.clone()).await;
        for _ in 0..200 {
            d.push("t", replica("r1")).await.unwrap();
            let err = d.push("t", replica("r2")).await.unwrap_err();
            assert_eq!(err.status(), StatusCode::ACCEPTED);
        }
        assert_eq!(ingester.got.lock().len(), 400);
        assert_eq!(dropped(&d, "t"), 200 * 6);
        // One read and one write elected r1; every later push used the cache
        // (update_timeout is 15 s, far longer than this test).
        assert_eq!((store.gets(), store.writes()), (1, 1));
        let calls = |op: &str| {
            d.metrics()
                .ha_kv_store_calls
                .get_or_create(&TenantClusterOpLabel::new("t", "pair", op))
                .get()
        };
        assert_eq!((calls("get"), calls("cas")), (1, 1));
    }

    #[tokio::test]
    async fn failover_through_the_push_path_and_two_distributors_agree() {
        let store = Arc::new(MemoryHaStore::new());
        let config = HaTrackerConfig {
            failover_timeout: Duration::from_millis(2000),
            update_timeout: Duration::from_millis(250),
            ..enabled()
        };
        let (a, at_a) = distributor(config.clone(), store.clone()).await;
        let (b, at_b) = distributor(config, store.clone()).await;
        a.push("t", replica("r1")).await.unwrap();
        // b learns the election from the store.
        assert_eq!(
            b.push("t", replica("r2")).await.unwrap_err().status(),
            StatusCode::ACCEPTED
        );
        b.push("t", replica("r1")).await.unwrap();
        // r1 keeps sending, through b only, for longer than the failover
        // timeout: a still drops r2, as b refreshed the election.
        let rounds = 12;
        for _ in 0..rounds {
            tokio::time::sleep(Duration::from_millis(250)).await;
            b.push("t", replica("r1")).await.unwrap();
        }
        assert_eq!(
            a.push("t", replica("r2")).await.unwrap_err().status(),
            StatusCode::ACCEPTED
        );
        // r1 stops: after the failover timeout r2 takes over, on both.
        tokio::time::sleep(Duration::from_millis(2100)).await;
        a.push("t", replica("r2")).await.unwrap();
        b.push("t", replica("r2")).await.unwrap();
        for d in [&a, &b] {
            assert_eq!(
                d.push("t", replica("r1")).await.unwrap_err().status(),
                StatusCode::ACCEPTED
            );
        }
        assert_eq!(store.record("t", "pair").unwrap().desc.replica, "r2");
        // Whatever was stored carries no replica label.
        for got in [at_a.got.lock().clone(), at_b.got.lock().clone()] {
            assert!(got
                .iter()
                .all(|(labels, _)| !labels.contains("__replica__")));
        }
        assert_eq!(at_a.got.lock().len(), 2 + 2);
        assert_eq!(at_b.got.lock().len(), 2 * (1 + rounds) + 2);
        let changes = |d: &Distributor| {
            d.metrics()
                .ha_elected_replica_changes
                .get_or_create(&TenantClusterLabel::new("t", "pair"))
                .get()
        };
        assert_eq!((changes(&a), changes(&b)), (2, 2));
    }

    #[tokio::test]
    async fn only_the_listed_tenants_and_nothing_when_disabled() {
        let store = Arc::new(MemoryHaStore::new());
        let (d, ingester) = distributor(
            HaTrackerConfig {
                tenants: vec!["t".to_string()],
                ..enabled()
            },
            store.clone(),
        )
        .await;
        d.push("u", replica("r1")).await.unwrap();
        d.push("u", replica("r2")).await.unwrap();
        assert_eq!(ingester.got.lock().len(), 4);
        assert!(ingester.got.lock()[3].0.contains("__replica__=r2"));

        let (d, ingester) = distributor(HaTrackerConfig::default(), store.clone()).await;
        assert!(d.ha_tracker().is_none());
        d.push("t", replica("r1")).await.unwrap();
        d.push("t", replica("r2")).await.unwrap();
        assert_eq!(ingester.got.lock().len(), 4);
        assert_eq!((store.gets(), store.writes()), (0, 0));
    }
}
