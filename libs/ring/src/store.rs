//! Storage of ring members.
//!
//! Every instance is one item with its own version, so instances never contend with each
//! other: a heartbeat rewrites only the heartbeating instance's item. Writes are conditional
//! on the version the writer last saw, which turns lost updates into
//! [`RingError::Conflict`] that the writer resolves by re-reading.

use std::collections::HashMap;

use async_trait::async_trait;
use parking_lot::Mutex;

use crate::desc::InstanceDesc;
use crate::error::RingError;

/// A value together with the version it had in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned<T> {
    pub value: T,
    /// Opaque version; changes on every successful write of the item.
    pub version: u64,
}

/// Storage for the members of one ring (a store instance is bound to one ring name,
/// such as `"ingester"`).
#[async_trait]
pub trait RingStore: Send + Sync + 'static {
    /// All instances of this ring, in no particular order.
    async fn list(&self) -> Result<Vec<Versioned<InstanceDesc>>, RingError>;

    /// Writes `desc` (keyed by `desc.id`) and returns its new version.
    ///
    /// * `expected_version == None`: the instance must not exist yet.
    /// * `expected_version == Some(v)`: the instance must exist with version `v`.
    ///
    /// Returns [`RingError::Conflict`] when the condition does not hold; nothing is written.
    async fn put(
        &self,
        desc: &InstanceDesc,
        expected_version: Option<u64>,
    ) -> Result<u64, RingError>;

    /// Removes an instance.
    ///
    /// * `expected_version == None`: unconditional; succeeds even if the instance is absent.
    /// * `expected_version == Some(v)`: only if the instance exists with version `v`,
    ///   otherwise [`RingError::Conflict`].
    async fn delete(&self, id: &str, expected_version: Option<u64>) -> Result<(), RingError>;
}

/// In-process ring store, for the one-process mode and for tests.
///
/// Share one instance (behind an `Arc`) between the lifecyclers and rings that should see
/// the same ring. Versions come from one counter per store, so a deleted and re-created
/// instance never gets a version it had before.
#[derive(Debug, Default)]
pub struct MemoryRingStore {
    inner: Mutex<MemoryInner>,
}

#[derive(Debug, Default)]
struct MemoryInner {
    items: HashMap<String, Versioned<InstanceDesc>>,
    last_version: u64,
}

impl MemoryRingStore {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl RingStore for MemoryRingStore {
    async fn list(&self) -> Result<Vec<Versioned<InstanceDesc>>, RingError> {
        let inner = self.inner.lock();
        Ok(inner.items.values().cloned().collect())
    }

    async fn put(
        &self,
        desc: &InstanceDesc,
        expected_version: Option<u64>,
    ) -> Result<u64, RingError> {
        let mut inner = self.inner.lock();
        let current = inner.items.get(&desc.id).map(|item| item.version);
        if current != expected_version {
            return Err(RingError::Conflict {
                id: desc.id.clone(),
            });
        }
        inner.last_version += 1;
        let version = inner.last_version;
        inner.items.insert(
            desc.id.clone(),
            Versioned {
                value: desc.clone(),
                version,
            },
        );
        Ok(version)
    }

    async fn delete(&self, id: &str, expected_version: Option<u64>) -> Result<(), RingError> {
        let mut inner = self.inner.lock();
        if let Some(expected) = expected_version {
            let current = inner.items.get(id).map(|item| item.version);
            if current != Some(expected) {
                return Err(RingError::Conflict { id: id.to_string() });
            }
        }
        inner.items.remove(id);
        Ok(())
    }
}
