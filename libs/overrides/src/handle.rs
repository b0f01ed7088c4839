//! The shared handle components read per request.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;

use crate::file::{RuntimeConfigFile, TenantOverrides};

/// One loaded version of the runtime config file.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Per tenant ID.
    tenants: HashMap<String, Arc<TenantOverrides>>,
    /// XXH3 of the file's bytes, in hex (empty: nothing loaded).
    pub hash: String,
    /// When it was loaded, in Unix ms (0: nothing loaded).
    pub loaded_at_ms: i64,
}

impl Snapshot {
    pub fn new(file: RuntimeConfigFile, hash: String, loaded_at_ms: i64) -> Self {
        Self {
            tenants: file
                .overrides
                .into_iter()
                .map(|(tenant, o)| (tenant, Arc::new(o)))
                .collect(),
            hash,
            loaded_at_ms,
        }
    }

    pub fn get(&self, tenant: &str) -> Option<&Arc<TenantOverrides>> {
        self.tenants.get(tenant)
    }

    /// The tenants with overrides, sorted.
    pub fn tenants(&self) -> Vec<&str> {
        let mut out: Vec<&str> = self.tenants.keys().map(String::as_str).collect();
        out.sort_unstable();
        out
    }

    pub fn len(&self) -> usize {
        self.tenants.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tenants.is_empty()
    }
}

/// The current runtime overrides, shared by every component of a process.
/// Cloning is cheap (one `Arc`); a lookup takes a read lock for a hash
/// lookup and an `Arc` clone, so components ask it on every request and see
/// a reload at their next one. The default handle holds no overrides.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    current: Arc<RwLock<Arc<Snapshot>>>,
}

impl Overrides {
    /// A handle with no overrides (until [`Overrides::replace`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// A handle holding `file` (for tests and fixed setups).
    pub fn from_file(file: RuntimeConfigFile) -> Self {
        let handle = Self::new();
        handle.replace(Snapshot::new(file, String::new(), 0));
        handle
    }

    /// `tenant`'s overrides, if the file has an entry for it.
    pub fn get(&self, tenant: &str) -> Option<Arc<TenantOverrides>> {
        self.current.read().get(tenant).cloned()
    }

    /// The version loaded last.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.read().clone()
    }

    /// Makes `snapshot` the current version; lookups from now on see it.
    pub fn replace(&self, snapshot: Snapshot) {
        *self.current.write() = Arc::new(snapshot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_current_version() {
        let handle = Overrides::new();
        let reader = handle.clone();
        assert!(reader.get("a").is_none());
        let file = RuntimeConfigFile::parse("overrides:\n  a:\n    ingestion_rate: 7\n").unwrap();
        handle.replace(Snapshot::new(file, "h".into(), 1));
        assert_eq!(reader.get("a").unwrap().ingestion_rate, Some(7.0));
        assert!(reader.get("b").is_none());
        assert_eq!(reader.snapshot().hash, "h");
        assert_eq!(reader.snapshot().tenants(), ["a"]);
    }
}
