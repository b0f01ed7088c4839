//! Parsed object indexes kept in memory, so repeated queries over the same
//! objects skip parsing their series index (several milliseconds for an
//! object of 50 000 series). Bounded by the parsed indexes' heap size;
//! the least recently used go first.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use strata_chunk_store::ObjectIndex;

pub(crate) struct ParsedIndexes {
    budget: usize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    map: HashMap<String, Entry>,
    bytes: usize,
    tick: u64,
}

struct Entry {
    index: Arc<ObjectIndex>,
    bytes: usize,
    used: u64,
}

impl ParsedIndexes {
    /// A cache of at most `budget` bytes (0 keeps nothing).
    pub(crate) fn new(budget: usize) -> Self {
        Self {
            budget,
            inner: Mutex::new(Inner::default()),
        }
    }

    pub(crate) fn get(&self, object: &str) -> Option<Arc<ObjectIndex>> {
        let mut inner = self.inner.lock();
        inner.tick += 1;
        let tick = inner.tick;
        let entry = inner.map.get_mut(object)?;
        entry.used = tick;
        Some(entry.index.clone())
    }

    pub(crate) fn insert(&self, object: &str, index: Arc<ObjectIndex>) {
        let bytes = index.heap_size() + object.len() + 64;
        if bytes > self.budget {
            return;
        }
        let mut inner = self.inner.lock();
        inner.tick += 1;
        let used = inner.tick;
        if let Some(old) = inner
            .map
            .insert(object.to_string(), Entry { index, bytes, used })
        {
            inner.bytes -= old.bytes;
        }
        inner.bytes += bytes;
        while inner.bytes > self.budget {
            let Some(oldest) = inner
                .map
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(e) = inner.map.remove(&oldest) {
                inner.bytes -= e.bytes;
            }
        }
    }

    #[cfg(test)]
    fn bytes(&self) -> usize {
        self.inner.lock().bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_chunk_store::ObjectBuilder;
    use strata_model::Labels;

    fn index(series: usize) -> Arc<ObjectIndex> {
        let mut b = ObjectBuilder::new("t");
        for i in 0..series {
            let l = Labels::from_pairs([("__name__", "m"), ("i", &*i.to_string())]);
            b.add_series(i as u64, &l, 0, &[]);
        }
        let built = b.finish("k");
        Arc::new(built.index)
    }

    #[test]
    fn bounded_by_bytes_least_recently_used_first() {
        let one = index(100);
        let size = one.heap_size() + 1 + 64;
        let cache = ParsedIndexes::new(size * 3);
        cache.insert("a", one.clone());
        cache.insert("b", one.clone());
        cache.insert("c", one.clone());
        assert!(cache.get("a").is_some());
        cache.insert("d", one.clone());
        assert!(cache.get("b").is_none(), "b was least recently used");
        assert!(cache.get("a").is_some() && cache.get("d").is_some());
        assert!(cache.bytes() <= size * 3);
        // Re-inserting a key does not count it twice.
        cache.insert("d", one.clone());
        assert!(cache.bytes() <= size * 3);
        // Nothing bigger than the whole budget is kept.
        let tiny = ParsedIndexes::new(10);
        tiny.insert("a", one);
        assert!(tiny.get("a").is_none());
    }
}
