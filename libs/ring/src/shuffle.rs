//! Shuffle sharding as the write and read paths use it: each tenant's
//! shard size (from its limits), and each tenant's shard of the current
//! ring snapshot, computed once per snapshot rather than once per request.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::ring::RingSnapshot;

/// A tenant's shard size (0 = every ingester).
pub type ShardSizeFn = Arc<dyn Fn(&str) -> usize + Send + Sync>;

/// Cached shards stay valid this long at most (reads with a lookback
/// change as members age past it).
const MAX_AGE: Duration = Duration::from_secs(10);

/// Most tenants' shards kept; beyond, the cache starts over.
const MAX_ENTRIES: usize = 100_000;

struct Entry {
    /// The snapshot the shard was cut from: when it was read, and its
    /// member count.
    from: (i64, usize),
    size: usize,
    at: std::time::Instant,
    shard: Arc<RingSnapshot>,
}

/// Tenants' shuffle shards of the ring.
pub struct ShuffleSharding {
    sizes: ShardSizeFn,
    /// Reads: also ask members that joined within this (they may have
    /// displaced a member that still holds the tenant's recent data, and
    /// they hold what was written since). Zero for writes.
    lookback: Duration,
    cache: Mutex<HashMap<String, Entry>>,
}

impl std::fmt::Debug for ShuffleSharding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShuffleSharding")
            .field("lookback", &self.lookback)
            .finish()
    }
}

impl ShuffleSharding {
    pub fn new(sizes: ShardSizeFn, lookback: Duration) -> Self {
        Self {
            sizes,
            lookback,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The part of `snapshot` that holds `tenant`'s series: its shard, or
    /// the whole snapshot when its shard size is 0.
    pub fn shard(
        &self,
        snapshot: &Arc<RingSnapshot>,
        tenant: &str,
        now_ms: i64,
    ) -> Arc<RingSnapshot> {
        self.shard_sized(snapshot, tenant, (self.sizes)(tenant), now_ms)
    }

    /// [`ShuffleSharding::shard`] for a caller that already knows the
    /// tenant's shard size (the distributor has its limits at hand).
    pub fn shard_sized(
        &self,
        snapshot: &Arc<RingSnapshot>,
        tenant: &str,
        size: usize,
        now_ms: i64,
    ) -> Arc<RingSnapshot> {
        if size == 0 || size >= snapshot.members().len() {
            return snapshot.clone();
        }
        let from = (snapshot.taken_at_ms, snapshot.members().len());
        {
            let cache = self.cache.lock();
            if let Some(e) = cache.get(tenant) {
                if e.from == from && e.size == size && e.at.elapsed() < MAX_AGE {
                    return e.shard.clone();
                }
            }
        }
        let lookback_ms = i64::try_from(self.lookback.as_millis()).unwrap_or(i64::MAX);
        let shard =
            Arc::new(snapshot.shuffle_shard_with_lookback(tenant, size, lookback_ms, now_ms));
        let mut cache = self.cache.lock();
        if cache.len() >= MAX_ENTRIES {
            cache.clear();
        }
        cache.insert(
            tenant.to_string(),
            Entry {
                from,
                size,
                at: std::time::Instant::now(),
                shard: shard.clone(),
            },
        );
        shard
    }
}
