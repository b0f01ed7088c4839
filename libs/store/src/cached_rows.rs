//! memcached in front of index row queries.
//!
//! A query's result is cached under the hash key's current *generation*,
//! a random value kept in memcached beside it. Every write of rows under a
//! hash key sets a new generation after the write has completed, so a
//! cached result is never served after a write that changes it:
//!
//! - a reader takes the generation, queries the store, and caches the result
//!   under that generation; if a write finished meanwhile, the generation
//!   has moved on and the result is never read again;
//! - a reader that finds no generation (first read, or evicted) sets a new
//!   one *before* it queries, so a result it caches reflects every write
//!   finished before the query (index reads are strongly consistent).
//!
//! Only memcached (shared by every process) holds generations: a
//! per-process cache would keep a stale generation after another process
//! wrote. When memcached is down every query goes to the store.

use std::sync::Arc;

use bytes::Bytes;
use strata_cache::{cache_key, Cache};
use strata_index::{IndexError, IndexItem, RowStore, WriteStats};

pub struct CachedRows {
    inner: Arc<dyn RowStore>,
    cache: Arc<dyn Cache>,
}

impl CachedRows {
    pub fn new(inner: Arc<dyn RowStore>, cache: Arc<dyn Cache>) -> Self {
        Self { inner, cache }
    }
}

fn generation_key(table: &str, hash: &str) -> String {
    cache_key(&[b"ig", table.as_bytes(), hash.as_bytes()])
}

fn result_key(table: &str, hash: &str, generation: &[u8], prefix: &[u8]) -> String {
    cache_key(&[b"iq", table.as_bytes(), hash.as_bytes(), generation, prefix])
}

fn new_generation() -> Bytes {
    Bytes::copy_from_slice(&rand::random::<u64>().to_le_bytes())
}

/// Items as length-prefixed fields (lengths as u32 little endian).
fn encode(items: &[IndexItem]) -> Bytes {
    let size: usize = items
        .iter()
        .map(|i| 12 + i.hash.len() + i.range.len() + i.value.len())
        .sum();
    let mut out = Vec::with_capacity(size);
    for i in items {
        for field in [i.hash.as_bytes(), &i.range, &i.value] {
            out.extend_from_slice(&(field.len() as u32).to_le_bytes());
            out.extend_from_slice(field);
        }
    }
    Bytes::from(out)
}

/// `None` for anything that is not what [`encode`] wrote (treated as a miss).
fn decode(mut bytes: &[u8]) -> Option<Vec<IndexItem>> {
    fn field<'a>(bytes: &mut &'a [u8]) -> Option<&'a [u8]> {
        let len = u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
        let value = bytes.get(4..4usize.checked_add(len)?)?;
        *bytes = &bytes[4 + len..];
        Some(value)
    }
    let mut items = Vec::new();
    while !bytes.is_empty() {
        let hash = String::from_utf8(field(&mut bytes)?.to_vec()).ok()?;
        let range = field(&mut bytes)?.to_vec();
        let value = field(&mut bytes)?.to_vec();
        items.push(IndexItem { hash, range, value });
    }
    Some(items)
}

#[async_trait::async_trait]
impl RowStore for CachedRows {
    async fn ensure_table(&self, table: &str) -> Result<(), IndexError> {
        self.inner.ensure_table(table).await
    }

    async fn write(&self, table: &str, items: Vec<IndexItem>) -> Result<WriteStats, IndexError> {
        let mut hashes: Vec<String> = items.iter().map(|i| i.hash.clone()).collect();
        hashes.sort_unstable();
        hashes.dedup();
        let stats = self.inner.write(table, items).await?;
        self.cache
            .set_multi(
                hashes
                    .iter()
                    .map(|h| (generation_key(table, h), new_generation()))
                    .collect(),
            )
            .await;
        Ok(stats)
    }

    async fn query(
        &self,
        table: &str,
        hash: &str,
        range_prefix: &[u8],
    ) -> Result<Vec<IndexItem>, IndexError> {
        let gen_key = generation_key(table, hash);
        let found = self.cache.get_multi(std::slice::from_ref(&gen_key)).await;
        let generation = match found.get(&gen_key) {
            Some(g) => {
                let key = result_key(table, hash, g, range_prefix);
                let hit = self.cache.get_multi(std::slice::from_ref(&key)).await;
                if let Some(items) = hit.get(&key).and_then(|b| decode(b)) {
                    return Ok(items);
                }
                g.clone()
            }
            None => {
                let g = new_generation();
                self.cache.set_multi(vec![(gen_key, g.clone())]).await;
                g
            }
        };
        let items = self.inner.query(table, hash, range_prefix).await?;
        self.cache
            .set_multi(vec![(
                result_key(table, hash, &generation, range_prefix),
                encode(&items),
            )])
            .await;
        Ok(items)
    }

    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_cache::{CacheMetrics, LruCache};
    use strata_index::MemoryRowStore;

    fn item(hash: &str, range: &[u8]) -> IndexItem {
        IndexItem {
            hash: hash.into(),
            range: range.to_vec(),
            value: vec![1, 2, 3],
        }
    }

    #[tokio::test]
    async fn cached_results_never_outlive_a_write() {
        let inner: Arc<dyn RowStore> = Arc::new(MemoryRowStore::new());
        // One shared cache stands in for memcached.
        let cache: Arc<dyn Cache> =
            Arc::new(LruCache::new("test", 1 << 20, CacheMetrics::default()));
        let a = CachedRows::new(inner.clone(), cache.clone());
        let b = CachedRows::new(inner.clone(), cache.clone());
        a.ensure_table("t").await.unwrap();
        a.write("t", vec![item("h", b"a1")]).await.unwrap();
        assert_eq!(b.query("t", "h", b"a").await.unwrap().len(), 1);
        // Served from the cache now: the store's own content differs.
        inner.write("t", vec![item("h", b"a2")]).await.unwrap();
        assert_eq!(b.query("t", "h", b"a").await.unwrap().len(), 1);
        // A write through any cached store makes every reader see it.
        a.write("t", vec![item("h", b"a3")]).await.unwrap();
        assert_eq!(b.query("t", "h", b"a").await.unwrap().len(), 3);
        assert_eq!(b.query("t", "h", b"b").await.unwrap().len(), 0);
        assert_eq!(b.query("t", "other", b"").await.unwrap().len(), 0);
    }

    #[test]
    fn encoding_round_trips_and_garbage_is_a_miss() {
        let items = vec![item("h", b""), item("h2", b"\x00\xff")];
        assert_eq!(decode(&encode(&items)).unwrap(), items);
        assert_eq!(decode(&[]).unwrap(), Vec::<IndexItem>::new());
        assert!(decode(&[9, 0, 0, 0, 1]).is_none());
        assert!(decode(&[0xff, 0xff, 0xff, 0xff]).is_none());
    }
}
