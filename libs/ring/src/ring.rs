//! The client side of the ring: which instances hold a key.
//!
//! # Placement
//!
//! Every member owns a set of 32-bit tokens. A key (see [`crate::shard_key`]) belongs to
//! the first token at or after it, walking clockwise and wrapping past `u32::MAX` to the
//! smallest token. Its replicas are the members met on that walk, each member counted once
//! (and, with zone awareness, each zone counted once).
//!
//! # Replication sets and quorum
//!
//! [`RingSnapshot::get`] collects up to `replication_factor` (RF) *slots* on the walk:
//!
//! * A **PENDING** member owns no tokens (its tokens, should its entry carry any, are
//!   ignored), so the walk never meets it: it is in no replication set and has 0 %
//!   ownership, though ring pages list it.
//! * A member whose **state** does not take part in the operation (JOINING for any
//!   operation, LEAVING for writes) is skipped and the walk goes on, so a transitional
//!   member does not cost a replica: its neighbour takes the slot (Cortex's "extend the
//!   replica set"). A JOINING member has no data yet, and a LEAVING one is going away; in
//!   both cases the next member is where new data belongs. Reads still count a LEAVING
//!   member, which holds its data until it is gone. So writes go to ACTIVE members only,
//!   reads to ACTIVE and LEAVING ones.
//! * A member in an accepted state but whose **heartbeat** is older than
//!   `heartbeat_timeout` takes its slot but is not contacted. A dead member keeps its range:
//!   it may come back and replay its write-ahead log, and moving its series to other members
//!   would spread them over more instances than RF. It therefore counts as a failed replica.
//! * Every other member takes a slot and is contacted.
//!
//! Quorum is `RF / 2 + 1` of the *configured* RF (2 of 3), whatever the walk found. The
//! returned [`ReplicationSet`] holds the healthy members to contact and
//! `max_errors = instances.len() - quorum`: the request succeeds once
//! `instances.len() - max_errors` of them have succeeded. When fewer than a quorum are
//! healthy, [`RingError::TooManyUnhealthy`] is returned and nothing should be attempted.
//! A ring with fewer members (or zones) than RF behaves as if the missing replicas had
//! failed: with RF 3 a single-member ring can take no writes, so a one-process install
//! must configure RF 1.
//!
//! [`RingSnapshot::get_all_healthy`] is for requests that must reach every member that may
//! hold data (queries over all series). See its documentation for how many failures it
//! tolerates.

use std::collections::HashSet;
use std::sync::atomic::AtomicI64;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::desc::{duration_ms, heartbeat_age_ms, now_ms, InstanceDesc, InstanceState};
use crate::error::RingError;
use crate::store::{RingStore, Versioned};

/// What a replication set is requested for; decides which member states take part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// Writing samples: only ACTIVE members.
    Write,
    /// Reading data: ACTIVE and LEAVING members (a LEAVING member still holds its data).
    Read,
}

impl Operation {
    /// Whether a member in `state` takes part in this operation.
    pub fn accepts(self, state: InstanceState) -> bool {
        match self {
            Operation::Write => state == InstanceState::Active,
            Operation::Read => matches!(state, InstanceState::Active | InstanceState::Leaving),
        }
    }
}

/// Configuration of a [`Ring`] client.
#[derive(Debug, Clone, PartialEq)]
pub struct RingConfig {
    /// A member whose last heartbeat is older than this is unhealthy. Zero disables the
    /// check. Default 1 minute.
    pub heartbeat_timeout: Duration,
    /// A member whose last heartbeat is older than this is removed from the store
    /// automatically. `None` never forgets. Default 10 minutes. Should be well above
    /// `heartbeat_timeout`.
    pub forget_timeout: Option<Duration>,
    /// Number of replicas of every key. Default 3.
    pub replication_factor: usize,
    /// Place the replicas of a key in distinct zones. Default false.
    pub zone_awareness: bool,
    /// How often the background task re-reads the store. Default 1 second.
    pub poll_interval: Duration,
}

impl Default for RingConfig {
    fn default() -> Self {
        Self {
            heartbeat_timeout: Duration::from_secs(60),
            forget_timeout: Some(Duration::from_secs(600)),
            replication_factor: 3,
            zone_awareness: false,
            poll_interval: Duration::from_secs(1),
        }
    }
}

impl RingConfig {
    fn validate(&self) -> Result<(), RingError> {
        if self.replication_factor == 0 {
            return Err(RingError::InvalidConfig(
                "replication factor must be at least 1".to_string(),
            ));
        }
        if self.poll_interval.is_zero() {
            return Err(RingError::InvalidConfig(
                "poll interval must be positive".to_string(),
            ));
        }
        Ok(())
    }
}

/// Quorum for a replication factor: a strict majority.
pub fn quorum(replication_factor: usize) -> usize {
    replication_factor / 2 + 1
}

/// The members to contact for one request, and how many of them may fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicationSet {
    /// Healthy members to send the request to.
    pub instances: Vec<InstanceDesc>,
    /// How many of `instances` may fail (or not answer) with the request still succeeding.
    pub max_errors: usize,
    /// Zone-aware sets from [`RingSnapshot::get_all_healthy`] only: failures confined to
    /// this many zones are tolerated, however many members of those zones fail. Zero
    /// otherwise.
    pub max_unavailable_zones: usize,
}

impl ReplicationSet {
    /// Number of members that must succeed when failures are counted per member.
    pub fn min_success(&self) -> usize {
        self.instances.len().saturating_sub(self.max_errors)
    }

    /// Whether the request as a whole still succeeds when the members with the given ids
    /// failed (and all others succeeded).
    pub fn tolerates_failures<S: AsRef<str>>(&self, failed_ids: &[S]) -> bool {
        if failed_ids.len() <= self.max_errors {
            return true;
        }
        if self.max_unavailable_zones == 0 {
            return false;
        }
        let mut zones: HashSet<&str> = HashSet::new();
        for id in failed_ids {
            let zone = self
                .instances
                .iter()
                .find(|instance| instance.id == id.as_ref())
                .map(|instance| instance.zone.as_str())
                .unwrap_or("");
            zones.insert(zone);
        }
        zones.len() <= self.max_unavailable_zones
    }
}

/// A member as seen in one snapshot of the ring.
#[derive(Debug, Clone, PartialEq)]
pub struct RingMember {
    pub desc: InstanceDesc,
    /// Store version the description was read at.
    pub version: u64,
    /// Fraction of the token space (0.0 to 1.0) for which this member is the first
    /// replica. The fractions of all members add up to 1.
    pub ownership: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TokenEntry {
    token: u32,
    member: usize,
}

/// An immutable view of the ring at one point in time. Cheap to share (`Arc`); every
/// lookup works on one snapshot so it sees a consistent ring.
#[derive(Debug, Clone)]
pub struct RingSnapshot {
    /// Sorted by id.
    members: Vec<RingMember>,
    /// Sorted by token, then member id.
    tokens: Vec<TokenEntry>,
    replication_factor: usize,
    zone_awareness: bool,
    heartbeat_timeout: Duration,
    /// When the snapshot was read from the store (Unix ms).
    pub taken_at_ms: i64,
    /// Milliseconds during which the ring store could not be read, credited
    /// to every member's heartbeat for `heartbeat_timeout` after the store
    /// came back (see [`RingSnapshot::judged_at`]).
    pub outage_credit_ms: i64,
}

impl RingSnapshot {
    /// Builds a snapshot from store items.
    pub fn new(items: Vec<Versioned<InstanceDesc>>, config: &RingConfig, taken_at_ms: i64) -> Self {
        let mut members: Vec<RingMember> = items
            .into_iter()
            .map(|item| RingMember {
                desc: item.value,
                version: item.version,
                ownership: 0.0,
            })
            .collect();
        members.sort_by(|a, b| a.desc.id.cmp(&b.desc.id));

        let mut tokens: Vec<TokenEntry> = Vec::new();
        for (index, member) in members.iter().enumerate() {
            if member.desc.state == InstanceState::Pending {
                // PENDING owns nothing, even if its entry carries tokens (a lifecycler
                // never writes them, but the store may hold anything).
                continue;
            }
            let mut own: Vec<u32> = member.desc.tokens.clone();
            own.sort_unstable();
            own.dedup();
            tokens.extend(own.into_iter().map(|token| TokenEntry {
                token,
                member: index,
            }));
        }
        // Members are sorted by id, so sorting by (token, member index) breaks ties between
        // members holding the same token deterministically.
        tokens.sort_unstable_by_key(|entry| (entry.token, entry.member));

        const RING_SIZE: f64 = 4_294_967_296.0;
        if tokens.len() == 1 {
            members[tokens[0].member].ownership = 1.0;
        } else {
            for (i, entry) in tokens.iter().enumerate() {
                let previous = tokens[(i + tokens.len() - 1) % tokens.len()].token;
                let range = entry.token.wrapping_sub(previous);
                members[entry.member].ownership += f64::from(range) / RING_SIZE;
            }
        }

        Self {
            members,
            tokens,
            replication_factor: config.replication_factor,
            zone_awareness: config.zone_awareness,
            heartbeat_timeout: config.heartbeat_timeout,
            taken_at_ms,
            outage_credit_ms: 0,
        }
    }

    /// Credits `ms` of a ring store outage that just ended to every member's
    /// heartbeat (see [`RingSnapshot::judged_at`]).
    pub fn with_outage_credit(mut self, ms: i64) -> Self {
        self.outage_credit_ms = ms.max(0);
        self
    }

    /// All members, sorted by id.
    pub fn members(&self) -> &[RingMember] {
        &self.members
    }

    /// Looks a member up by id.
    pub fn member(&self, id: &str) -> Option<&RingMember> {
        self.members
            .binary_search_by(|member| member.desc.id.as_str().cmp(id))
            .ok()
            .map(|index| &self.members[index])
    }

    /// Number of members, whatever their state or health.
    pub fn instances_count(&self) -> usize {
        self.members.len()
    }

    /// Number of members whose heartbeat is fresh at `now_ms`, whatever their state.
    pub fn healthy_count(&self, now_ms: i64) -> usize {
        self.members
            .iter()
            .filter(|member| self.is_heartbeat_fresh(&member.desc, now_ms))
            .count()
    }

    /// Number of tokens in the ring.
    pub fn tokens_count(&self) -> usize {
        self.tokens.len()
    }

    /// The configured replication factor.
    pub fn replication_factor(&self) -> usize {
        self.replication_factor
    }

    /// The time at which heartbeats in this snapshot are judged, given the wall clock
    /// `now_ms`: the time the snapshot was read from the store.
    ///
    /// A heartbeat can only be seen through a refresh, so what a member's age tells is how
    /// long before the *last successful refresh* it last heartbeated. Judging against the
    /// wall clock instead would make every member look dead once the ring store itself is
    /// unreachable for longer than `heartbeat_timeout` (a DynamoDB outage would stop all
    /// writes although every ingester is fine). While refreshes fail, the last snapshot's
    /// verdicts stand; a member that dies meanwhile is found out by the requests sent to it.
    /// A snapshot never read from a store (`taken_at_ms == 0`) uses `now_ms`.
    ///
    /// When the store comes back after an outage, members could not heartbeat while it was
    /// away, and each needs up to a heartbeat period to write again. For `heartbeat_timeout`
    /// after the outage the time is moved back by its length
    /// ([`RingSnapshot::outage_credit_ms`]), so the store's outage is not held against
    /// them; a member that does not heartbeat within that window is judged normally again.
    pub fn judged_at(&self, now_ms: i64) -> i64 {
        if self.taken_at_ms == 0 {
            now_ms
        } else {
            self.taken_at_ms.min(now_ms) - self.outage_credit_ms
        }
    }

    /// Whether `desc` heartbeated within the heartbeat timeout at `now_ms`.
    pub fn is_heartbeat_fresh(&self, desc: &InstanceDesc, now_ms: i64) -> bool {
        desc.is_heartbeat_fresh(now_ms, self.heartbeat_timeout)
    }

    /// Whether `desc` can serve `op` at `now_ms`: accepted state and fresh heartbeat.
    pub fn is_healthy(&self, desc: &InstanceDesc, op: Operation, now_ms: i64) -> bool {
        op.accepts(desc.state) && self.is_heartbeat_fresh(desc, now_ms)
    }

    /// Replication set for `key`; see the [module documentation](self) for the semantics.
    pub fn get(&self, key: u32, op: Operation, now_ms: i64) -> Result<ReplicationSet, RingError> {
        if self.tokens.is_empty() {
            return Err(RingError::EmptyRing);
        }
        let rf = self.replication_factor;
        let start = self.tokens.partition_point(|entry| entry.token < key);

        let mut visited: Vec<usize> = Vec::with_capacity(rf + 2);
        let mut used_zones: Vec<&str> = Vec::with_capacity(rf);
        let mut slots = 0;
        let mut healthy: Vec<InstanceDesc> = Vec::with_capacity(rf);

        for step in 0..self.tokens.len() {
            if slots == rf || visited.len() == self.members.len() {
                break;
            }
            let member_index = self.tokens[(start + step) % self.tokens.len()].member;
            if visited.contains(&member_index) {
                continue;
            }
            visited.push(member_index);

            let desc = &self.members[member_index].desc;
            if !op.accepts(desc.state) {
                // Transitional member: extend the walk by one.
                continue;
            }
            if self.zone_awareness {
                if used_zones.contains(&desc.zone.as_str()) {
                    continue;
                }
                used_zones.push(desc.zone.as_str());
            }
            slots += 1;
            if self.is_heartbeat_fresh(desc, now_ms) {
                healthy.push(desc.clone());
            }
        }

        let needed = quorum(rf);
        if healthy.len() < needed {
            return Err(RingError::TooManyUnhealthy {
                needed,
                healthy: healthy.len(),
            });
        }
        let max_errors = healthy.len() - needed;
        Ok(ReplicationSet {
            instances: healthy,
            max_errors,
            max_unavailable_zones: 0,
        })
    }

    /// The first member at or after `key` on the ring that takes part in `op` and is
    /// healthy: the single owner of `key` when unhealthy members are skipped (for work that
    /// must run exactly once, such as a rule group, and move as soon as its owner dies).
    pub fn first_healthy(&self, key: u32, op: Operation, now_ms: i64) -> Option<&InstanceDesc> {
        if self.tokens.is_empty() {
            return None;
        }
        let start = self.tokens.partition_point(|entry| entry.token < key);
        let mut visited: Vec<usize> = Vec::new();
        for step in 0..self.tokens.len() {
            if visited.len() == self.members.len() {
                break;
            }
            let member_index = self.tokens[(start + step) % self.tokens.len()].member;
            if visited.contains(&member_index) {
                continue;
            }
            visited.push(member_index);
            let desc = &self.members[member_index].desc;
            if self.is_healthy(desc, op, now_ms) {
                return Some(desc);
            }
        }
        None
    }

    /// The tenant's shuffle shard: `size` members picked deterministically from the
    /// tenant's ID (spread evenly over the zones with zone awareness), as a ring of its own
    /// whose replication sets stay inside the shard. Members are picked by walking the ring
    /// from positions drawn from a generator seeded by the tenant (and zone), so a member
    /// joining or leaving changes only the picks that land on it: the shard changes by at
    /// most the members that came or went. `size` 0, or at least the ring's size, is the
    /// whole ring.
    pub fn shuffle_shard(&self, tenant: &str, size: usize) -> RingSnapshot {
        self.shuffle_shard_with_lookback(tenant, size, 0, 0)
    }

    /// [`RingSnapshot::shuffle_shard`] for reads: a member that registered after
    /// `now_ms - lookback_ms` is taken without counting towards `size`, so the member it
    /// displaced (which holds what the tenant wrote before it joined) stays in the shard.
    pub fn shuffle_shard_with_lookback(
        &self,
        tenant: &str,
        size: usize,
        lookback_ms: i64,
        now_ms: i64,
    ) -> RingSnapshot {
        let eligible = self
            .members
            .iter()
            .filter(|m| m.desc.state != InstanceState::Pending)
            .count();
        if size == 0 || size >= eligible || self.tokens.is_empty() {
            return self.clone();
        }
        let mut zones: Vec<&str> = if self.zone_awareness {
            self.members.iter().map(|m| m.desc.zone.as_str()).collect()
        } else {
            vec![""]
        };
        zones.sort_unstable();
        zones.dedup();
        let per_zone = size.div_ceil(zones.len());
        let mut chosen = vec![false; self.members.len()];
        for zone in &zones {
            let mut state = fnv64(tenant.as_bytes()) ^ fnv64(zone.as_bytes()).rotate_left(17);
            let mut picked = 0;
            // Every draw finds a member unless the zone has none left.
            let mut draws = 0;
            while picked < per_zone && draws < 4 * self.members.len() + 64 {
                draws += 1;
                let r = (splitmix64(&mut state) >> 32) as u32;
                let start = self.tokens.partition_point(|e| e.token < r);
                // The walk takes the first free member of the zone; a member that joined
                // within the lookback is taken too, and the walk goes on to the member this
                // draw found before it joined.
                let mut found = false;
                for step in 0..self.tokens.len() {
                    let m = self.tokens[(start + step) % self.tokens.len()].member;
                    let desc = &self.members[m].desc;
                    if chosen[m]
                        || (self.zone_awareness && desc.zone != *zone)
                        || desc.state == InstanceState::Pending
                    {
                        continue;
                    }
                    chosen[m] = true;
                    let recent =
                        lookback_ms > 0 && desc.registered_ms > now_ms.saturating_sub(lookback_ms);
                    if !recent {
                        picked += 1;
                        found = true;
                        break;
                    }
                }
                if !found {
                    break;
                }
            }
        }
        let items = self
            .members
            .iter()
            .zip(&chosen)
            .filter(|(_, c)| **c)
            .map(|(m, _)| Versioned {
                value: m.desc.clone(),
                version: m.version,
            })
            .collect();
        let config = RingConfig {
            replication_factor: self.replication_factor,
            zone_awareness: self.zone_awareness,
            heartbeat_timeout: self.heartbeat_timeout,
            ..RingConfig::default()
        };
        RingSnapshot::new(items, &config, self.taken_at_ms)
            .with_outage_credit(self.outage_credit_ms)
    }

    /// Every healthy member that may hold data for `op`, for requests that must ask all of
    /// them (for example a query over all series of a tenant).
    ///
    /// Members whose state does not take part in `op` (PENDING and JOINING for reads) are
    /// ignored: they hold nothing yet. Of the rest, each series lives on RF of them and was written to a
    /// quorum, so up to `RF - quorum` of its replicas may be missing (1 for RF 3, 2 for
    /// RF 5) while the answer stays complete.
    ///
    /// * Without zone awareness: any member may share a series with any other, so only
    ///   `RF - quorum` members in total may be missing. Unhealthy members are left out of
    ///   the set and use up that allowance first; a ring with fewer members than RF counts
    ///   the missing ones as unhealthy. The result's `max_errors` is what is left (with
    ///   RF 3 and every member healthy: 1). No allowance left is
    ///   [`RingError::TooManyUnhealthy`].
    /// * With zone awareness: a series has at most one replica per zone, so whole zones
    ///   may be missing: up to `RF - quorum` of them. A zone with any unhealthy member is
    ///   left out entirely (the other zones answer for it), and so are its healthy members;
    ///   fewer zones than RF count as missing zones. `max_errors` is 0 and
    ///   `max_unavailable_zones` tells how many more zones may fail; check outcomes with
    ///   [`ReplicationSet::tolerates_failures`]. Too many failed zones is
    ///   [`RingError::TooManyFailedZones`].
    pub fn get_all_healthy(&self, op: Operation, now_ms: i64) -> Result<ReplicationSet, RingError> {
        if self.members.is_empty() {
            return Err(RingError::EmptyRing);
        }
        let rf = self.replication_factor;
        let tolerated = rf - quorum(rf);
        let candidates: Vec<&InstanceDesc> = self
            .members
            .iter()
            .map(|member| &member.desc)
            .filter(|desc| op.accepts(desc.state))
            .collect();

        if !self.zone_awareness {
            let healthy: Vec<InstanceDesc> = candidates
                .iter()
                .filter(|desc| self.is_heartbeat_fresh(desc, now_ms))
                .map(|desc| (*desc).clone())
                .collect();
            let required = candidates.len().max(rf) - tolerated;
            if healthy.len() < required {
                return Err(RingError::TooManyUnhealthy {
                    needed: required,
                    healthy: healthy.len(),
                });
            }
            let max_errors = healthy.len() - required;
            return Ok(ReplicationSet {
                instances: healthy,
                max_errors,
                max_unavailable_zones: 0,
            });
        }

        let mut zones: HashSet<&str> = HashSet::new();
        let mut failed_zones: HashSet<&str> = HashSet::new();
        for desc in &candidates {
            zones.insert(desc.zone.as_str());
            if !self.is_heartbeat_fresh(desc, now_ms) {
                failed_zones.insert(desc.zone.as_str());
            }
        }
        let missing_zones = rf.saturating_sub(zones.len());
        let failed = failed_zones.len() + missing_zones;
        if failed > tolerated {
            return Err(RingError::TooManyFailedZones { failed, tolerated });
        }
        let instances: Vec<InstanceDesc> = candidates
            .iter()
            .filter(|desc| !failed_zones.contains(desc.zone.as_str()))
            .map(|desc| (*desc).clone())
            .collect();
        Ok(ReplicationSet {
            instances,
            max_errors: 0,
            max_unavailable_zones: tolerated - failed,
        })
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: String,
}

/// Gauges describing the ring as this client sees it.
#[derive(Debug, Clone, Default)]
struct RingMetrics {
    members: Family<StateLabels, Gauge>,
    tokens: Gauge,
    oldest_heartbeat_age_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
    last_refresh_ms: Gauge<i64, AtomicI64>,
}

impl RingMetrics {
    fn update(&self, snapshot: &RingSnapshot, now_ms: i64) {
        let mut counts = [0i64; 5];
        let mut oldest_age_ms = 0i64;
        for member in snapshot.members() {
            let desc = &member.desc;
            oldest_age_ms = oldest_age_ms.max(heartbeat_age_ms(desc.heartbeat_ms, now_ms));
            let slot = if !snapshot.is_heartbeat_fresh(desc, now_ms) {
                4
            } else {
                match desc.state {
                    InstanceState::Pending => 0,
                    InstanceState::Joining => 1,
                    InstanceState::Active => 2,
                    InstanceState::Leaving => 3,
                }
            };
            counts[slot] += 1;
        }
        for (state, count) in InstanceState::ALL.iter().zip(counts) {
            self.members
                .get_or_create(&StateLabels {
                    state: state.as_str().to_string(),
                })
                .set(count);
        }
        self.members
            .get_or_create(&StateLabels {
                state: "UNHEALTHY".to_string(),
            })
            .set(counts[4]);
        self.tokens
            .set(i64::try_from(snapshot.tokens_count()).unwrap_or(i64::MAX));
        self.oldest_heartbeat_age_seconds
            .set(oldest_age_ms as f64 / 1000.0);
        self.last_refresh_ms.set(now_ms);
    }
}

struct Shared {
    config: RingConfig,
    store: Arc<dyn RingStore>,
    snapshot: RwLock<Arc<RingSnapshot>>,
    metrics: RingMetrics,
    /// Serializes refreshes so two of them cannot publish out of order.
    refresh_lock: tokio::sync::Mutex<()>,
    /// The ring store's availability as refreshes saw it.
    outage: parking_lot::Mutex<StoreOutage>,
}

/// Ring client: keeps a recent [`RingSnapshot`] in memory and answers placement questions
/// from it without I/O.
///
/// A background task re-reads the store every `poll_interval`, forgets members whose
/// heartbeat is older than `forget_timeout`, and publishes a new snapshot. Clones share the
/// same state; the task stops when the last clone is dropped.
#[derive(Clone)]
pub struct Ring {
    shared: Arc<Shared>,
    _stop: Arc<DropGuard>,
}

impl std::fmt::Debug for Ring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ring")
            .field("config", &self.shared.config)
            .field("members", &self.snapshot().instances_count())
            .finish()
    }
}

impl Ring {
    /// Creates the client and starts its polling task; must be called inside a tokio
    /// runtime. The first poll runs right away; until it completes the ring looks empty
    /// (await [`Ring::refresh`] to wait for a populated ring).
    pub fn new(config: RingConfig, store: Arc<dyn RingStore>) -> Result<Ring, RingError> {
        config.validate()?;
        let empty = RingSnapshot::new(Vec::new(), &config, 0);
        let shared = Arc::new(Shared {
            config,
            store,
            snapshot: RwLock::new(Arc::new(empty)),
            metrics: RingMetrics::default(),
            refresh_lock: tokio::sync::Mutex::new(()),
            outage: parking_lot::Mutex::new(StoreOutage::default()),
        });
        let cancel = CancellationToken::new();
        tokio::spawn(poll_loop(Arc::clone(&shared), cancel.clone()));
        Ok(Ring {
            shared,
            _stop: Arc::new(cancel.drop_guard()),
        })
    }

    /// The configuration the ring was created with.
    pub fn config(&self) -> &RingConfig {
        &self.shared.config
    }

    /// The latest snapshot. Never waits on I/O.
    pub fn snapshot(&self) -> Arc<RingSnapshot> {
        Arc::clone(&self.shared.snapshot.read())
    }

    /// Re-reads the store now (forgetting stale members) and publishes a new snapshot.
    pub async fn refresh(&self) -> Result<(), RingError> {
        refresh(&self.shared).await
    }

    /// Replication set for `key`; see [`RingSnapshot::get`]. Heartbeats are judged
    /// against the time of the last successful refresh (see [`RingSnapshot::judged_at`]).
    pub fn get(&self, key: u32, op: Operation) -> Result<ReplicationSet, RingError> {
        let snapshot = self.snapshot();
        snapshot.get(key, op, snapshot.judged_at(now_ms()))
    }

    /// All healthy members for `op`; see [`RingSnapshot::get_all_healthy`]. Heartbeats
    /// are judged as in [`Ring::get`].
    pub fn get_all_healthy(&self, op: Operation) -> Result<ReplicationSet, RingError> {
        let snapshot = self.snapshot();
        snapshot.get_all_healthy(op, snapshot.judged_at(now_ms()))
    }

    /// Number of members in the latest snapshot.
    pub fn instances_count(&self) -> usize {
        self.snapshot().instances_count()
    }

    /// Number of members with a fresh heartbeat in the latest snapshot, judged as in
    /// [`Ring::get`].
    pub fn healthy_count(&self) -> usize {
        let snapshot = self.snapshot();
        snapshot.healthy_count(snapshot.judged_at(now_ms()))
    }

    /// Removes a member from the store right away (the status page's "Forget" button),
    /// whatever its state, then refreshes. Forgetting an unknown id is not an error. A
    /// member that is still alive re-registers itself on its next heartbeat.
    pub async fn forget(&self, id: &str) -> Result<(), RingError> {
        self.shared.store.delete(id, None).await?;
        tracing::info!(instance = id, "forgot ring member on request");
        self.refresh().await
    }

    /// Registers this client's gauges: `ring_members{state}` (PENDING, JOINING, ACTIVE,
    /// LEAVING, and UNHEALTHY for members with a stale heartbeat whatever their state),
    /// `ring_tokens`, `ring_oldest_member_heartbeat_age_seconds` and
    /// `ring_last_refresh_timestamp_ms`. Use a sub-registry with a label to tell rings apart.
    pub fn register_metrics(&self, registry: &mut Registry) {
        let metrics = &self.shared.metrics;
        registry.register(
            "ring_members",
            "Number of ring members per state; UNHEALTHY counts members with a stale heartbeat",
            metrics.members.clone(),
        );
        registry.register(
            "ring_tokens",
            "Number of tokens in the ring",
            metrics.tokens.clone(),
        );
        registry.register(
            "ring_oldest_member_heartbeat_age_seconds",
            "Age of the oldest heartbeat among ring members",
            metrics.oldest_heartbeat_age_seconds.clone(),
        );
        registry.register(
            "ring_last_refresh_timestamp_ms",
            "When this client last read the ring from its store (Unix ms)",
            metrics.last_refresh_ms.clone(),
        );
    }
}

async fn poll_loop(shared: Arc<Shared>, cancel: CancellationToken) {
    let mut ticker = tokio::time::interval(shared.config.poll_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let result = tokio::select! {
            _ = cancel.cancelled() => return,
            result = refresh(&shared) => result,
        };
        if let Err(err) = result {
            tracing::warn!(error = %err, "failed to refresh ring");
        }
    }
}

async fn refresh(shared: &Shared) -> Result<(), RingError> {
    let _guard = shared.refresh_lock.lock().await;
    let items = match shared.store.list().await {
        Ok(items) => items,
        Err(e) => {
            shared.outage.lock().failed = true;
            return Err(e);
        }
    };
    let now = now_ms();
    let credit = outage_credit(shared, now);
    let items = forget_stale(shared, items, now - credit).await;
    let snapshot = RingSnapshot::new(items, &shared.config, now).with_outage_credit(credit);
    shared.metrics.update(&snapshot, now);
    *shared.snapshot.write() = Arc::new(snapshot);
    Ok(())
}

/// What refreshes saw of the ring store.
#[derive(Debug, Default)]
struct StoreOutage {
    /// Last successful refresh (Unix ms; 0 = none yet).
    last_ok: i64,
    /// A refresh failed since `last_ok`.
    failed: bool,
    /// The last outage: when it ended and how long it lasted (ms).
    last: Option<(i64, i64)>,
}

/// Records a successful refresh at `now` and returns the outage credit: when refreshes
/// failed since the last successful one (the store was unreachable), the time since that
/// one is credited to members' heartbeats until `heartbeat_timeout` after the store came
/// back.
fn outage_credit(shared: &Shared, now: i64) -> i64 {
    let mut state = shared.outage.lock();
    if state.failed && state.last_ok > 0 {
        let length = now - state.last_ok;
        tracing::info!(
            outage_s = length / 1000,
            "ring store readable again; members' heartbeats get the outage's length as grace"
        );
        state.last = Some((now, length));
    }
    state.failed = false;
    state.last_ok = now;
    match state.last {
        Some((ended, length)) if now - ended <= duration_ms(shared.config.heartbeat_timeout) => {
            length
        }
        _ => 0,
    }
}

/// Deletes members whose heartbeat is older than the forget timeout and returns the items
/// that stay. Deletes are conditional on the version read, so a member that heartbeated in
/// the meantime is kept; when several clients race, one deletes and the others see a
/// conflict, which is harmless.
async fn forget_stale(
    shared: &Shared,
    items: Vec<Versioned<InstanceDesc>>,
    now: i64,
) -> Vec<Versioned<InstanceDesc>> {
    let Some(forget_timeout) = shared.config.forget_timeout else {
        return items;
    };
    let limit_ms = duration_ms(forget_timeout);
    let mut kept = Vec::with_capacity(items.len());
    for item in items {
        let age_ms = heartbeat_age_ms(item.value.heartbeat_ms, now);
        if age_ms <= limit_ms {
            kept.push(item);
            continue;
        }
        match shared
            .store
            .delete(&item.value.id, Some(item.version))
            .await
        {
            Ok(()) => {
                tracing::warn!(
                    instance = %item.value.id,
                    state = %item.value.state,
                    heartbeat_age_s = age_ms / 1000,
                    "forgot ring member whose heartbeat is older than the forget timeout"
                );
            }
            Err(err) if err.is_conflict() => {
                tracing::debug!(instance = %item.value.id, "stale ring member changed before it could be forgotten");
                kept.push(item);
            }
            Err(err) => {
                tracing::warn!(instance = %item.value.id, error = %err, "failed to forget stale ring member");
                kept.push(item);
            }
        }
    }
    kept
}

/// FNV-1a, 64 bits: a stable hash (the shuffle shard of a tenant must not
/// change between versions or processes).
fn fnv64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// SplitMix64: a small, stable pseudo-random sequence.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
