//! The rows layer: an ordered key-value store of items addressed by (table, hash key, range
//! key), shaped after DynamoDB's data model so the same schema runs on DynamoDB and on an
//! embedded store.

use std::collections::BTreeMap;

use async_trait::async_trait;
use parking_lot::Mutex;

use crate::error::IndexError;

/// One stored item: a hash (partition) key, a range (sort) key and a value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexItem {
    pub hash: String,
    pub range: Vec<u8>,
    pub value: Vec<u8>,
}

impl IndexItem {
    /// The item's size as DynamoDB counts it: attribute names plus values. The value
    /// attribute `v` is left out of stored items when the value is empty.
    pub fn size(&self) -> usize {
        let value = if self.value.is_empty() {
            0
        } else {
            1 + self.value.len()
        };
        1 + self.hash.len() + 1 + self.range.len() + value
    }

    /// DynamoDB write capacity units for one put of this item: one per started KiB.
    pub fn write_units(&self) -> u64 {
        (self.size() as u64).div_ceil(1024).max(1)
    }
}

/// What a write stored and what it costs on DynamoDB.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// Items put.
    pub items: u64,
    /// Their sizes added up ([`IndexItem::size`]).
    pub bytes: u64,
    /// DynamoDB's billing: per item, `ceil(size / 1024)`.
    pub write_units: u64,
}

impl WriteStats {
    /// The statistics of putting `items`.
    pub fn of(items: &[IndexItem]) -> Self {
        let mut stats = WriteStats::default();
        for item in items {
            stats.add_item(item);
        }
        stats
    }

    pub(crate) fn add_item(&mut self, item: &IndexItem) {
        self.items += 1;
        self.bytes += item.size() as u64;
        self.write_units += item.write_units();
    }
}

impl std::ops::AddAssign for WriteStats {
    fn add_assign(&mut self, other: Self) {
        self.items += other.items;
        self.bytes += other.bytes;
        self.write_units += other.write_units;
    }
}

/// An ordered store of [`IndexItem`]s in named tables.
#[async_trait]
pub trait RowStore: Send + Sync + 'static {
    /// Creates `table` when it does not exist, and waits until it can be used.
    async fn ensure_table(&self, table: &str) -> Result<(), IndexError>;

    /// Puts `items`, overwriting items with the same hash and range key. When it returns
    /// `Ok` every item is stored durably.
    async fn write(&self, table: &str, items: Vec<IndexItem>) -> Result<WriteStats, IndexError>;

    /// The items under `hash` whose range key starts with `range_prefix`, sorted by range key.
    async fn query(
        &self,
        table: &str,
        hash: &str,
        range_prefix: &[u8],
    ) -> Result<Vec<IndexItem>, IndexError>;

    /// `"embedded"`, `"dynamodb"` or `"memory"`: the `store` label of the index metrics.
    fn kind(&self) -> &'static str;
}

/// Items of one write call with duplicate (hash, range) keys removed, the last one winning,
/// as a sequence of puts would leave them.
pub(crate) fn dedup_last_wins(items: Vec<IndexItem>) -> Vec<IndexItem> {
    let mut by_key: BTreeMap<(String, Vec<u8>), Vec<u8>> = BTreeMap::new();
    for item in items {
        by_key.insert((item.hash, item.range), item.value);
    }
    by_key
        .into_iter()
        .map(|((hash, range), value)| IndexItem { hash, range, value })
        .collect()
}

type Table = BTreeMap<(String, Vec<u8>), Vec<u8>>;

/// A [`RowStore`] in process memory, for tests and tools. Nothing survives the process.
#[derive(Default)]
pub struct MemoryRowStore {
    tables: Mutex<BTreeMap<String, Table>>,
}

impl MemoryRowStore {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl RowStore for MemoryRowStore {
    async fn ensure_table(&self, table: &str) -> Result<(), IndexError> {
        self.tables.lock().entry(table.to_string()).or_default();
        Ok(())
    }

    async fn write(&self, table: &str, items: Vec<IndexItem>) -> Result<WriteStats, IndexError> {
        let items = dedup_last_wins(items);
        let stats = WriteStats::of(&items);
        let mut tables = self.tables.lock();
        let rows = tables
            .get_mut(table)
            .ok_or_else(|| IndexError::TableMissing {
                table: table.to_string(),
            })?;
        for item in items {
            rows.insert((item.hash, item.range), item.value);
        }
        Ok(stats)
    }

    async fn query(
        &self,
        table: &str,
        hash: &str,
        range_prefix: &[u8],
    ) -> Result<Vec<IndexItem>, IndexError> {
        let tables = self.tables.lock();
        let rows = tables.get(table).ok_or_else(|| IndexError::TableMissing {
            table: table.to_string(),
        })?;
        let start = (hash.to_string(), range_prefix.to_vec());
        Ok(rows
            .range(start..)
            .take_while(|((h, r), _)| h == hash && r.starts_with(range_prefix))
            .map(|((h, r), v)| IndexItem {
                hash: h.clone(),
                range: r.clone(),
                value: v.clone(),
            })
            .collect())
    }

    fn kind(&self) -> &'static str {
        "memory"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(hash: &str, range: &[u8], value_len: usize) -> IndexItem {
        IndexItem {
            hash: hash.to_string(),
            range: range.to_vec(),
            value: vec![7; value_len],
        }
    }

    #[test]
    fn write_units_follow_dynamodb_billing() {
        // "h" + 3 bytes + "r" + 2 bytes + "v" + 1016 bytes = 1024 bytes: one unit.
        let exact = item("abc", b"xy", 1016);
        assert_eq!(exact.size(), 1024);
        assert_eq!(exact.write_units(), 1);
        // One byte more starts the second KiB.
        let over = item("abc", b"xy", 1017);
        assert_eq!(over.size(), 1025);
        assert_eq!(over.write_units(), 2);
        // An empty value is not stored as an attribute; the item still costs one unit.
        let empty = item("abc", b"xy", 0);
        assert_eq!(empty.size(), 7);
        assert_eq!(empty.write_units(), 1);
        // 400 KB item: 400 units.
        let big = item("h", b"r", 400 * 1024 - 5);
        assert_eq!(big.size(), 400 * 1024);
        assert_eq!(big.write_units(), 400);

        let stats = WriteStats::of(&[exact, over, empty, big]);
        assert_eq!(
            stats,
            WriteStats {
                items: 4,
                bytes: 1024 + 1025 + 7 + 400 * 1024,
                write_units: 1 + 2 + 1 + 400,
            }
        );
    }

    #[test]
    fn dedup_keeps_the_last_put() {
        let items = vec![item("a", b"1", 1), item("a", b"2", 2), item("a", b"1", 3)];
        let kept = dedup_last_wins(items);
        assert_eq!(kept, vec![item("a", b"1", 3), item("a", b"2", 2)]);
    }

    #[tokio::test]
    async fn memory_store_queries_by_prefix_in_order() {
        let store = MemoryRowStore::new();
        assert!(matches!(
            store.query("t", "a", b"").await,
            Err(IndexError::TableMissing { .. })
        ));
        store.ensure_table("t").await.unwrap();
        store
            .write(
                "t",
                vec![
                    item("a", b"b2", 1),
                    item("a", b"a1", 1),
                    item("a", b"b1", 1),
                    item("ab", b"b3", 1),
                ],
            )
            .await
            .unwrap();
        let got = store.query("t", "a", b"b").await.unwrap();
        let ranges: Vec<&[u8]> = got.iter().map(|i| i.range.as_slice()).collect();
        assert_eq!(ranges, [b"b1".as_slice(), b"b2"]);
        assert_eq!(store.query("t", "a", b"").await.unwrap().len(), 3);
    }
}
