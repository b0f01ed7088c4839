//! [`RowStore`] in one local redb file: the default for a single process, no servers.
//!
//! Each index table is a redb table whose keys are `u16 big-endian length of the hash key,
//! hash key, range key` and whose values are the item values, so the items of one hash key
//! are contiguous and sorted by range key, and a range-prefix query is one range scan.
//! Every write is one redb transaction committed with immediate durability (fsync), so items
//! are on disk when [`RowStore::write`] returns. redb does blocking file IO; it runs on
//! Tokio's blocking pool.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use redb::{Database, ReadableDatabase, TableDefinition, TableError};

use crate::error::IndexError;
use crate::rows::{IndexItem, RowStore, WriteStats};

/// Name of the database file under the directory given to [`EmbeddedRowStore::open`].
pub const EMBEDDED_FILE: &str = "index.redb";

/// Default bytes of the index file kept cached in memory.
pub const DEFAULT_EMBEDDED_CACHE_BYTES: usize = 32 << 20;

/// The index rows in `<dir>/index.redb`.
#[derive(Clone)]
pub struct EmbeddedRowStore {
    db: Arc<Database>,
    path: PathBuf,
}

impl std::fmt::Debug for EmbeddedRowStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedRowStore")
            .field("path", &self.path)
            .finish()
    }
}

fn definition(table: &str) -> TableDefinition<'_, &'static [u8], &'static [u8]> {
    TableDefinition::new(table)
}

fn composite_key(table: &str, hash: &str, range: &[u8]) -> Result<Vec<u8>, IndexError> {
    let len = u16::try_from(hash.len()).map_err(|_| IndexError::BadKey {
        table: table.to_string(),
        message: format!(
            "hash key is {} bytes, the embedded store takes at most 65535",
            hash.len()
        ),
    })?;
    let mut key = Vec::with_capacity(2 + hash.len() + range.len());
    key.extend_from_slice(&len.to_be_bytes());
    key.extend_from_slice(hash.as_bytes());
    key.extend_from_slice(range);
    Ok(key)
}

impl EmbeddedRowStore {
    /// Opens (creating if needed) `dir/index.redb` with the default cache
    /// ([`DEFAULT_EMBEDDED_CACHE_BYTES`]). Fails when another process has it open.
    pub fn open(dir: &Path) -> Result<Self, IndexError> {
        Self::open_with_cache(dir, DEFAULT_EMBEDDED_CACHE_BYTES)
    }

    /// Opens `dir/index.redb` keeping at most `cache_bytes` of the file cached in memory
    /// (redb's own default is 1 GiB, far more than an ingester should hold for its index).
    pub fn open_with_cache(dir: &Path, cache_bytes: usize) -> Result<Self, IndexError> {
        std::fs::create_dir_all(dir).map_err(|err| IndexError::Embedded {
            operation: "open",
            message: format!("cannot create directory {}: {err}", dir.display()),
        })?;
        let path = dir.join(EMBEDDED_FILE);
        let db = redb::Builder::new()
            .set_cache_size(cache_bytes)
            .create(&path)
            .map_err(|err| IndexError::Embedded {
                operation: "open",
                message: format!("{}: {err}", path.display()),
            })?;
        Ok(Self {
            db: Arc::new(db),
            path,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn blocking<T, F>(&self, operation: &'static str, f: F) -> Result<T, IndexError>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> Result<T, IndexError> + Send + 'static,
    {
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || f(&db))
            .await
            .map_err(|err| IndexError::embedded(operation, err))?
    }
}

#[async_trait]
impl RowStore for EmbeddedRowStore {
    async fn ensure_table(&self, table: &str) -> Result<(), IndexError> {
        let table = table.to_string();
        self.blocking("create table", move |db| {
            let tx = db
                .begin_write()
                .map_err(|e| IndexError::embedded("create table", e))?;
            tx.open_table(definition(&table))
                .map_err(|e| IndexError::embedded("create table", e))?;
            tx.commit()
                .map_err(|e| IndexError::embedded("create table", e))
        })
        .await
    }

    async fn write(&self, table: &str, items: Vec<IndexItem>) -> Result<WriteStats, IndexError> {
        if items.is_empty() {
            return Ok(WriteStats::default());
        }
        let table = table.to_string();
        self.blocking("write", move |db| {
            let mut stats = WriteStats::default();
            let tx = db
                .begin_write()
                .map_err(|e| IndexError::embedded("write", e))?;
            {
                let mut rows = match tx.open_table(definition(&table)) {
                    Ok(rows) => rows,
                    Err(e) => return Err(IndexError::embedded("write", e)),
                };
                for item in &items {
                    let key = composite_key(&table, &item.hash, &item.range)?;
                    rows.insert(key.as_slice(), item.value.as_slice())
                        .map_err(|e| IndexError::embedded("write", e))?;
                    stats.add_item(item);
                }
            }
            tx.commit().map_err(|e| IndexError::embedded("write", e))?;
            Ok(stats)
        })
        .await
    }

    async fn query(
        &self,
        table: &str,
        hash: &str,
        range_prefix: &[u8],
    ) -> Result<Vec<IndexItem>, IndexError> {
        let table = table.to_string();
        let hash = hash.to_string();
        let prefix = range_prefix.to_vec();
        self.blocking("query", move |db| {
            let start = composite_key(&table, &hash, &prefix)?;
            let hash_key_len = 2 + hash.len();
            let tx = db
                .begin_read()
                .map_err(|e| IndexError::embedded("query", e))?;
            let rows = match tx.open_table(definition(&table)) {
                Ok(rows) => rows,
                Err(TableError::TableDoesNotExist(_)) => {
                    return Err(IndexError::TableMissing { table })
                }
                Err(e) => return Err(IndexError::embedded("query", e)),
            };
            let mut items = Vec::new();
            let range = rows
                .range(start.as_slice()..)
                .map_err(|e| IndexError::embedded("query", e))?;
            for entry in range {
                let (key, value) = entry.map_err(|e| IndexError::embedded("query", e))?;
                let key = key.value();
                if !key.starts_with(&start) {
                    break;
                }
                items.push(IndexItem {
                    hash: hash.clone(),
                    range: key.get(hash_key_len..).unwrap_or_default().to_vec(),
                    value: value.value().to_vec(),
                });
            }
            Ok(items)
        })
        .await
    }

    fn kind(&self) -> &'static str {
        "embedded"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(hash: &str, range: &[u8], value: &[u8]) -> IndexItem {
        IndexItem {
            hash: hash.to_string(),
            range: range.to_vec(),
            value: value.to_vec(),
        }
    }

    #[tokio::test]
    async fn writes_survive_reopen_and_query_by_prefix() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = EmbeddedRowStore::open(dir.path()).unwrap();
            assert_eq!(store.kind(), "embedded");
            assert!(matches!(
                store.query("t", "h", b"").await,
                Err(IndexError::TableMissing { .. })
            ));
            store.ensure_table("t").await.unwrap();
            store.ensure_table("t").await.unwrap();
            let stats = store
                .write(
                    "t",
                    vec![
                        item("h", b"b\x002", b"2"),
                        item("h", b"a", b"1"),
                        item("h", b"b\x001", b"1"),
                        // Same bytes as "h" + range "\x00..." would be under a naive
                        // concatenation: the length prefix keeps hash keys apart.
                        item("h\0", b"b", b"x"),
                        item("hb", b"b", b"y"),
                    ],
                )
                .await
                .unwrap();
            assert_eq!(stats.items, 5);
            store
                .write("t", vec![item("h", b"a", b"overwritten")])
                .await
                .unwrap();
            assert!(
                EmbeddedRowStore::open(dir.path()).is_err(),
                "file is locked"
            );
        }
        let store = EmbeddedRowStore::open(dir.path()).unwrap();
        let all = store.query("t", "h", b"").await.unwrap();
        assert_eq!(
            all,
            vec![
                item("h", b"a", b"overwritten"),
                item("h", b"b\x001", b"1"),
                item("h", b"b\x002", b"2"),
            ]
        );
        let b = store.query("t", "h", b"b").await.unwrap();
        assert_eq!(b.len(), 2);
        assert!(store.query("t", "h", b"c").await.unwrap().is_empty());
        assert!(store.query("t", "nope", b"").await.unwrap().is_empty());
        assert_eq!(store.query("t", "hb", b"").await.unwrap().len(), 1);
    }
}
