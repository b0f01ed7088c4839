//! Caches stacked in levels: an in-process LRU in front of memcached, typically.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use futures::future::join_all;

use crate::Cache;

/// Levels read in order, fastest first: each level is asked only for what the levels
/// before it missed, and what a level finds is written back to the levels before it.
/// Writes go to every level, concurrently.
pub struct TieredCache {
    levels: Vec<Arc<dyn Cache>>,
}

impl TieredCache {
    /// `levels[0]` is L1 (asked first).
    pub fn new(levels: Vec<Arc<dyn Cache>>) -> Self {
        Self { levels }
    }
}

#[async_trait::async_trait]
impl Cache for TieredCache {
    async fn get_multi(&self, keys: &[String]) -> HashMap<String, Bytes> {
        let mut found: HashMap<String, Bytes> = HashMap::with_capacity(keys.len());
        let mut missing: Vec<String> = keys.to_vec();
        for (i, level) in self.levels.iter().enumerate() {
            if missing.is_empty() {
                break;
            }
            let got = level.get_multi(&missing).await;
            if got.is_empty() {
                continue;
            }
            if i > 0 {
                let fill: Vec<(String, Bytes)> =
                    got.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                join_all(
                    self.levels[..i]
                        .iter()
                        .map(|upper| upper.set_multi(fill.clone())),
                )
                .await;
            }
            missing.retain(|k| !got.contains_key(k));
            found.extend(got);
        }
        found
    }

    async fn set_multi(&self, items: Vec<(String, Bytes)>) {
        join_all(self.levels.iter().map(|l| l.set_multi(items.clone()))).await;
    }

    fn name(&self) -> &'static str {
        "tiered"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CacheMetrics, LruCache};

    fn keys(ks: &[&str]) -> Vec<String> {
        ks.iter().map(|k| k.to_string()).collect()
    }

    #[tokio::test]
    async fn reads_l1_first_and_fills_it_from_l2() {
        let metrics = CacheMetrics::default();
        let l1 = Arc::new(LruCache::new("l1", 1 << 20, metrics.clone()));
        let l2 = Arc::new(LruCache::new("l2", 1 << 20, metrics.clone()));
        l1.insert("a", Bytes::from_static(b"A1"));
        l2.insert("a", Bytes::from_static(b"A2"));
        l2.insert("b", Bytes::from_static(b"B2"));
        let t = TieredCache::new(vec![l1.clone(), l2.clone()]);

        let got = t.get_multi(&keys(&["a", "b", "c"])).await;
        assert_eq!(got.len(), 2);
        assert_eq!(got["a"], "A1", "L1 wins");
        assert_eq!(got["b"], "B2");
        assert_eq!(l1.get("b").as_deref(), Some(&b"B2"[..]), "L1 filled");
        // L2 was asked only for what L1 missed.
        let (m1, m2) = (metrics.bind("l1"), metrics.bind("l2"));
        assert_eq!(m1.keys_requested.get(), 3);
        assert_eq!(m2.keys_requested.get(), 2);
        // Now L1 answers both alone.
        let got = t.get_multi(&keys(&["a", "b"])).await;
        assert_eq!(got.len(), 2);
        assert_eq!(m2.keys_requested.get(), 2);
    }

    #[tokio::test]
    async fn writes_go_to_every_level() {
        let metrics = CacheMetrics::default();
        let l1 = Arc::new(LruCache::new("l1", 1 << 20, metrics.clone()));
        let l2 = Arc::new(LruCache::new("l2", 1 << 20, metrics.clone()));
        let t = TieredCache::new(vec![l1.clone(), l2.clone()]);
        t.set_multi(vec![("k".into(), Bytes::from_static(b"v"))])
            .await;
        assert!(l1.get("k").is_some() && l2.get("k").is_some());
        assert_eq!(t.name(), "tiered");
        assert!(TieredCache::new(vec![])
            .get_multi(&keys(&["k"]))
            .await
            .is_empty());
    }
}
