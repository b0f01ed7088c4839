//! In-process, byte-bounded least-recently-used cache.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use parking_lot::Mutex;

use crate::metrics::{BoundMetrics, CacheMetrics};
use crate::Cache;

/// Bytes charged per entry on top of its key and value: the map slot, the list node,
/// the shared key's header and the value's handle, rounded up.
pub(crate) const ENTRY_OVERHEAD: usize = 96;
/// Most shards a cache is split into.
const MAX_SHARDS: usize = 16;
/// Fewest bytes per shard: small caches get fewer shards, so an entry can still be a
/// useful fraction of a shard and recency is close to global.
const MIN_SHARD_BYTES: usize = 1 << 20;
/// An entry may take at most this fraction of its shard.
const MAX_ITEM_FRACTION: usize = 8;

const NIL: u32 = u32::MAX;

/// An in-process cache bounded in bytes: every entry is charged its key, its value and
/// [`ENTRY_OVERHEAD`], and the least recently used entries are evicted to stay within
/// `max_bytes`. Gets and inserts are O(1).
///
/// The cache is split into up to 16 shards by key hash (a cache under 2 MiB has one
/// shard), each with its own lock, its own LRU list and `max_bytes / shards` of the
/// budget. An entry larger than an eighth of its shard (`max_bytes / 8` for a one-shard
/// cache) is not kept. Locks are held only for the map operation.
pub struct LruCache {
    name: &'static str,
    shards: Box<[Mutex<Shard>]>,
    shard_mask: usize,
    max_bytes: usize,
    metrics: BoundMetrics,
}

impl LruCache {
    /// A cache of at most `max_bytes`, reporting its metrics under `name`.
    pub fn new(name: &'static str, max_bytes: usize, metrics: CacheMetrics) -> Self {
        let wanted = (max_bytes / MIN_SHARD_BYTES).clamp(1, MAX_SHARDS);
        // Largest power of two not above `wanted`, so a mask picks the shard.
        let shards = 1usize << (usize::BITS - 1 - wanted.leading_zeros());
        let per_shard = max_bytes / shards;
        let shards: Box<[Mutex<Shard>]> = (0..shards)
            .map(|_| Mutex::new(Shard::new(per_shard)))
            .collect();
        Self {
            name,
            shard_mask: shards.len() - 1,
            shards,
            max_bytes,
            metrics: metrics.bind(name),
        }
    }

    /// The byte budget given at construction.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// Largest entry (key + value + overhead) that is kept.
    pub fn max_item_bytes(&self) -> usize {
        self.max_bytes / self.shards.len() / MAX_ITEM_FRACTION
    }

    /// Bytes currently charged (keys, values, per-entry overhead).
    pub fn bytes(&self) -> usize {
        self.shards.iter().map(|s| s.lock().bytes).sum()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().map.len()).sum()
    }

    /// Whether the cache holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value under `key`, marking it most recently used.
    pub fn get(&self, key: &str) -> Option<Bytes> {
        self.shard(key).lock().get(key)
    }

    /// Stores `value` under `key` (replacing what was there) as the most recently used
    /// entry, evicting the least recently used ones as needed. An entry too large to keep
    /// is skipped, and an older value under the same key is dropped.
    pub fn insert(&self, key: &str, value: Bytes) {
        let outcome = self.shard(key).lock().insert(key, value);
        let m = &self.metrics;
        if outcome.skipped {
            m.items_skipped.inc();
        } else {
            m.items_stored.inc();
        }
        if outcome.evicted > 0 {
            m.evictions.inc_by(outcome.evicted);
        }
        if outcome.bytes_delta != 0 {
            m.stored_bytes.inc_by(outcome.bytes_delta);
        }
        if outcome.items_delta != 0 {
            m.stored_items.inc_by(outcome.items_delta);
        }
    }

    fn shard(&self, key: &str) -> &Mutex<Shard> {
        let h = twox_hash::XxHash3_64::oneshot(key.as_bytes()) as usize;
        &self.shards[h & self.shard_mask]
    }

    #[cfg(test)]
    pub(crate) fn check_invariants(&self) {
        let mut total = 0;
        for s in self.shards.iter() {
            let s = s.lock();
            s.check_invariants();
            total += s.bytes;
        }
        assert!(total <= self.max_bytes, "{total} > {}", self.max_bytes);
    }

    /// Keys of a one-shard cache from most to least recently used.
    #[cfg(test)]
    pub(crate) fn keys_by_recency(&self) -> Vec<String> {
        assert_eq!(self.shards.len(), 1);
        self.shards[0].lock().keys_by_recency()
    }
}

impl Drop for LruCache {
    fn drop(&mut self) {
        // The gauges are shared by every cache of this name: take back what this one holds.
        let (bytes, items) = self.shards.iter().fold((0, 0), |(b, i), s| {
            let s = s.lock();
            (b + s.bytes as i64, i + s.map.len() as i64)
        });
        self.metrics.stored_bytes.dec_by(bytes);
        self.metrics.stored_items.dec_by(items);
    }
}

#[async_trait::async_trait]
impl Cache for LruCache {
    async fn get_multi(&self, keys: &[String]) -> HashMap<String, Bytes> {
        let start = Instant::now();
        let mut found = HashMap::with_capacity(keys.len());
        for key in keys {
            if let Some(v) = self.get(key) {
                found.insert(key.clone(), v);
            }
        }
        let m = &self.metrics;
        m.get_requests.inc();
        m.keys_requested.inc_by(keys.len() as u64);
        m.hits.inc_by(found.len() as u64);
        m.misses.inc_by((keys.len() - found.len()) as u64);
        m.get_duration.observe(start.elapsed().as_secs_f64());
        found
    }

    async fn set_multi(&self, items: Vec<(String, Bytes)>) {
        let start = Instant::now();
        for (key, value) in items {
            self.insert(&key, value);
        }
        self.metrics.set_requests.inc();
        self.metrics
            .set_duration
            .observe(start.elapsed().as_secs_f64());
    }

    fn name(&self) -> &'static str {
        self.name
    }
}

/// What an insert changed, for the metrics.
#[derive(Debug, Default)]
struct InsertOutcome {
    skipped: bool,
    evicted: u64,
    bytes_delta: i64,
    items_delta: i64,
}

struct Entry {
    key: Arc<str>,
    value: Bytes,
    /// Towards the most recently used end.
    prev: u32,
    /// Towards the least recently used end.
    next: u32,
}

impl Entry {
    fn charge(&self) -> usize {
        charge(&self.key, &self.value)
    }
}

fn charge(key: &str, value: &Bytes) -> usize {
    key.len() + value.len() + ENTRY_OVERHEAD
}

/// One LRU: a map from key to slot, and a doubly linked list through the slots,
/// most recently used at `head`.
struct Shard {
    map: HashMap<Arc<str>, u32>,
    slots: Vec<Option<Entry>>,
    free: Vec<u32>,
    head: u32,
    tail: u32,
    bytes: usize,
    max_bytes: usize,
}

impl Shard {
    fn new(max_bytes: usize) -> Self {
        Self {
            map: HashMap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            head: NIL,
            tail: NIL,
            bytes: 0,
            max_bytes,
        }
    }

    fn entry(&mut self, idx: u32) -> &mut Entry {
        self.slots[idx as usize]
            .as_mut()
            .expect("linked slot is occupied")
    }

    fn get(&mut self, key: &str) -> Option<Bytes> {
        let idx = *self.map.get(key)?;
        self.unlink(idx);
        self.push_front(idx);
        Some(self.entry(idx).value.clone())
    }

    fn insert(&mut self, key: &str, value: Bytes) -> InsertOutcome {
        let mut out = InsertOutcome::default();
        let size = charge(key, &value);
        if size > self.max_bytes / MAX_ITEM_FRACTION {
            out.skipped = true;
            if let Some(&idx) = self.map.get(key) {
                let removed = self.remove(idx);
                out.bytes_delta -= removed as i64;
                out.items_delta -= 1;
            }
            return out;
        }
        if let Some(&idx) = self.map.get(key) {
            let e = self.entry(idx);
            let old = e.charge();
            e.value = value;
            self.bytes = self.bytes - old + size;
            out.bytes_delta += size as i64 - old as i64;
            self.unlink(idx);
            self.push_front(idx);
        } else {
            let key: Arc<str> = Arc::from(key);
            let entry = Entry {
                key: key.clone(),
                value,
                prev: NIL,
                next: NIL,
            };
            let idx = match self.free.pop() {
                Some(idx) => {
                    self.slots[idx as usize] = Some(entry);
                    idx
                }
                None => {
                    self.slots.push(Some(entry));
                    (self.slots.len() - 1) as u32
                }
            };
            self.map.insert(key, idx);
            self.push_front(idx);
            self.bytes += size;
            out.bytes_delta += size as i64;
            out.items_delta += 1;
        }
        // The new entry is at the head and fits on its own, so this stops before it.
        while self.bytes > self.max_bytes {
            let victim = self.tail;
            let removed = self.remove(victim);
            out.bytes_delta -= removed as i64;
            out.items_delta -= 1;
            out.evicted += 1;
        }
        out
    }

    /// Removes the entry in slot `idx`; returns its charge.
    fn remove(&mut self, idx: u32) -> usize {
        self.unlink(idx);
        let entry = self.slots[idx as usize]
            .take()
            .expect("removed slot is occupied");
        self.map.remove(&*entry.key);
        self.free.push(idx);
        let size = entry.charge();
        self.bytes -= size;
        size
    }

    fn unlink(&mut self, idx: u32) {
        let (prev, next) = {
            let e = self.entry(idx);
            let links = (e.prev, e.next);
            e.prev = NIL;
            e.next = NIL;
            links
        };
        if prev == NIL {
            self.head = next;
        } else {
            self.entry(prev).next = next;
        }
        if next == NIL {
            self.tail = prev;
        } else {
            self.entry(next).prev = prev;
        }
    }

    fn push_front(&mut self, idx: u32) {
        let old_head = self.head;
        {
            let e = self.entry(idx);
            e.prev = NIL;
            e.next = old_head;
        }
        if old_head == NIL {
            self.tail = idx;
        } else {
            self.entry(old_head).prev = idx;
        }
        self.head = idx;
    }

    #[cfg(test)]
    fn keys_by_recency(&self) -> Vec<String> {
        let mut keys = Vec::new();
        let mut idx = self.head;
        while idx != NIL {
            let e = self.slots[idx as usize].as_ref().unwrap();
            keys.push(e.key.to_string());
            idx = e.next;
        }
        keys
    }

    #[cfg(test)]
    fn check_invariants(&self) {
        let keys = self.keys_by_recency();
        assert_eq!(keys.len(), self.map.len(), "list and map disagree");
        let mut bytes = 0;
        let mut prev = NIL;
        let mut idx = self.head;
        while idx != NIL {
            let e = self.slots[idx as usize].as_ref().unwrap();
            assert_eq!(e.prev, prev, "broken back link");
            assert_eq!(self.map.get(&*e.key), Some(&idx));
            bytes += e.charge();
            prev = idx;
            idx = e.next;
        }
        assert_eq!(self.tail, prev);
        assert_eq!(bytes, self.bytes, "byte count drifted");
        assert!(self.bytes <= self.max_bytes);
        assert_eq!(self.map.len() + self.free.len(), self.slots.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::VecDeque;

    fn value(n: usize) -> Bytes {
        Bytes::from(vec![7u8; n])
    }

    /// Charge of a one-letter key with an `n`-byte value.
    fn entry_size(n: usize) -> usize {
        1 + n + ENTRY_OVERHEAD
    }

    #[test]
    fn small_caches_have_one_shard_large_ones_sixteen() {
        let m = CacheMetrics::default();
        assert_eq!(LruCache::new("t", 10_000, m.clone()).shards.len(), 1);
        assert_eq!(LruCache::new("t", 3 << 20, m.clone()).shards.len(), 2);
        assert_eq!(LruCache::new("t", 7 << 20, m.clone()).shards.len(), 4);
        assert_eq!(LruCache::new("t", 1 << 30, m.clone()).shards.len(), 16);
        assert_eq!(LruCache::new("t", 0, m).shards.len(), 1);
    }

    #[test]
    fn evicts_least_recently_used_first() {
        // Room for exactly eight 100-byte entries, each as large as an entry may be.
        let c = LruCache::new("t", 8 * entry_size(100), CacheMetrics::default());
        assert_eq!(c.max_item_bytes(), entry_size(100));
        for k in ["a", "b", "c", "d", "e", "f", "g", "h"] {
            c.insert(k, value(100));
        }
        assert_eq!(
            c.keys_by_recency(),
            ["h", "g", "f", "e", "d", "c", "b", "a"]
        );
        // Reading "a" makes it the most recent; "b" is now the oldest.
        assert!(c.get("a").is_some());
        c.insert("i", value(100));
        assert_eq!(
            c.keys_by_recency(),
            ["i", "a", "h", "g", "f", "e", "d", "c"]
        );
        assert!(c.get("b").is_none());
        // Overwriting refreshes recency too: "d" goes, not "c".
        c.insert("c", value(100));
        c.insert("j", value(100));
        assert_eq!(
            c.keys_by_recency(),
            ["j", "c", "i", "a", "h", "g", "f", "e"]
        );
        c.check_invariants();

        // A bigger entry evicts as many old ones as it needs.
        let c = LruCache::new("t", 8 * entry_size(100), CacheMetrics::default());
        let small: Vec<String> = (0..16).map(|i| format!("{:x}", i)).collect();
        for k in &small {
            c.insert(k, value(0));
        }
        assert_eq!(c.len(), 16);
        c.insert("z", value(100));
        assert_eq!(c.len(), 15);
        let mut expected = vec!["z".to_string()];
        expected.extend(small[2..].iter().rev().cloned());
        assert_eq!(c.keys_by_recency(), expected);
        c.check_invariants();
    }

    #[test]
    fn oversized_values_are_not_kept() {
        let max = 8 * entry_size(1000);
        let c = LruCache::new("t", max, CacheMetrics::default());
        assert_eq!(c.max_item_bytes(), entry_size(1000));
        c.insert("a", value(1000));
        assert_eq!(c.get("a"), Some(value(1000)));
        c.insert("b", value(1001));
        assert_eq!(c.get("b"), None);
        // Replacing with an oversized value drops the old one instead of serving it.
        c.insert("a", value(5000));
        assert_eq!(c.get("a"), None);
        assert_eq!(c.bytes(), 0);
        c.check_invariants();
    }

    #[test]
    fn metrics_follow_the_contents() {
        let metrics = CacheMetrics::default();
        let c = LruCache::new("lru", 8 * entry_size(10), metrics.clone());
        let m = metrics.bind("lru");
        for k in ["a", "b", "c", "d", "e", "f", "g", "h", "i"] {
            c.insert(k, value(10));
        }
        c.insert("z", value(10_000));
        assert_eq!(m.evictions.get(), 1);
        assert_eq!(m.items_skipped.get(), 1);
        assert_eq!(m.items_stored.get(), 9);
        assert_eq!(m.stored_items.get(), 8);
        assert_eq!(m.stored_bytes.get(), c.bytes() as i64);
        drop(c);
        assert_eq!(m.stored_bytes.get(), 0);
        assert_eq!(m.stored_items.get(), 0);
    }

    #[tokio::test]
    async fn cache_trait_round_trip() {
        let metrics = CacheMetrics::default();
        let c = LruCache::new("lru", 1 << 20, metrics.clone());
        c.set_multi(vec![("x".into(), value(3)), ("y".into(), value(4))])
            .await;
        let got = c
            .get_multi(&["x".to_string(), "y".to_string(), "z".to_string()])
            .await;
        assert_eq!(got.len(), 2);
        assert_eq!(got["y"], value(4));
        assert_eq!(c.name(), "lru");
        let m = metrics.bind("lru");
        assert_eq!((m.hits.get(), m.misses.get()), (2, 1));
        assert_eq!(m.keys_requested.get(), 3);
    }

    #[test]
    fn concurrent_access_from_threads() {
        let c = Arc::new(LruCache::new("t", 4 << 20, CacheMetrics::default()));
        assert_eq!(c.shards.len(), 4);
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let c = c.clone();
                std::thread::spawn(move || {
                    let mut hits = 0;
                    for i in 0..20_000u32 {
                        let k = format!("k{}", (i * 7 + t * 13) % 3000);
                        if i % 3 == 0 {
                            c.insert(&k, Bytes::from(k.clone().into_bytes().repeat(40)));
                        } else if let Some(v) = c.get(&k) {
                            // Never a torn or foreign value.
                            assert_eq!(v, Bytes::from(k.clone().into_bytes().repeat(40)));
                            hits += 1;
                        }
                    }
                    hits
                })
            })
            .collect();
        let hits: u32 = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert!(hits > 0);
        c.check_invariants();
        assert!(c.bytes() <= c.max_bytes());
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u8, usize),
        Get(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (0u8..40, 0usize..600).prop_map(|(k, n)| Op::Insert(k, n)),
            2 => (0u8..40).prop_map(Op::Get),
        ]
    }

    /// The obvious O(n) LRU the real one must agree with.
    struct Model {
        order: VecDeque<(String, usize)>,
        max: usize,
    }

    impl Model {
        fn get(&mut self, k: &str) -> Option<usize> {
            let pos = self.order.iter().position(|(key, _)| key == k)?;
            let e = self.order.remove(pos).unwrap();
            let n = e.1;
            self.order.push_front(e);
            Some(n)
        }

        fn insert(&mut self, k: &str, n: usize) {
            if let Some(pos) = self.order.iter().position(|(key, _)| key == k) {
                self.order.remove(pos);
            }
            if k.len() + n + ENTRY_OVERHEAD > self.max / MAX_ITEM_FRACTION {
                return;
            }
            self.order.push_front((k.to_string(), n));
            while self.bytes() > self.max {
                self.order.pop_back();
            }
        }

        fn bytes(&self) -> usize {
            self.order
                .iter()
                .map(|(k, n)| k.len() + n + ENTRY_OVERHEAD)
                .sum()
        }
    }

    proptest! {
        #[test]
        fn byte_bound_holds_and_matches_a_simple_lru(
            max in 500usize..6000,
            ops in proptest::collection::vec(op(), 1..300),
        ) {
            let c = LruCache::new("p", max, CacheMetrics::default());
            let mut model = Model { order: VecDeque::new(), max };
            for op in ops {
                match op {
                    Op::Insert(k, n) => {
                        let k = format!("key{k}");
                        c.insert(&k, value(n));
                        model.insert(&k, n);
                    }
                    Op::Get(k) => {
                        let k = format!("key{k}");
                        prop_assert_eq!(c.get(&k).map(|v| v.len()), model.get(&k));
                    }
                }
                prop_assert!(c.bytes() <= max);
                prop_assert_eq!(c.bytes(), model.bytes());
            }
            c.check_invariants();
            let expected: Vec<String> = model.order.iter().map(|(k, _)| k.clone()).collect();
            prop_assert_eq!(c.keys_by_recency(), expected);
        }

        #[test]
        fn byte_bound_holds_with_many_shards(
            sizes in proptest::collection::vec((0u16..5000, 0usize..150_000), 1..400),
        ) {
            let c = LruCache::new("p", 16 << 20, CacheMetrics::default());
            prop_assert_eq!(c.shards.len(), 16);
            for (k, n) in sizes {
                c.insert(&format!("k{k}"), value(n));
                prop_assert!(c.bytes() <= c.max_bytes());
            }
            c.check_invariants();
        }
    }
}
