//! Caches in front of chunk and index reads.
//!
//! Every cache implements [`Cache`]: a batch read that never fails (a backend error
//! counts as misses) and a best-effort batch write. Three implementations:
//!
//! - [`LruCache`]: in-process, byte-bounded, sharded least-recently-used cache.
//! - [`MemcachedCache`]: a tokio-native memcached client over the text protocol,
//!   keys spread over several servers by a consistent hash, a small connection pool
//!   per server, and a backoff for servers that fail.
//! - [`TieredCache`]: levels read in order (L1 first), filling the faster levels
//!   with what the slower ones found.
//!
//! [`cache_key`] builds stable, memcached-safe keys; `docs/caching.md` lists the
//! key families (`c:`, `oi:`, `iq:`, `wd:`) and what is cached where.

mod error;
mod key;
mod lru;
mod memcached;
mod metrics;
mod tiered;

use std::collections::HashMap;

use bytes::Bytes;

pub use error::CacheError;
pub use key::cache_key;
pub use lru::LruCache;
pub use memcached::{MemcachedCache, MemcachedConfig};
pub use metrics::CacheMetrics;
pub use tiered::TieredCache;

/// A cache of byte values under string keys.
#[async_trait::async_trait]
pub trait Cache: Send + Sync + 'static {
    /// Values found for `keys` (missing keys are simply absent). Never fails: a backend
    /// error counts as misses and is logged and counted.
    async fn get_multi(&self, keys: &[String]) -> HashMap<String, Bytes>;

    /// Stores `items`. Best effort: errors are counted, never returned.
    async fn set_multi(&self, items: Vec<(String, Bytes)>);

    /// The cache's name, the `name` label of its metrics.
    fn name(&self) -> &'static str;
}
