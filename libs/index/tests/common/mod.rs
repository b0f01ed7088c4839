//! Helpers shared by the index tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::Mutex;
use strata_index::{
    Index, IndexError, IndexItem, IndexMetrics, PeriodConfig, RowStore, SchemaConfig, WriteStats,
    DAY_MS,
};
use strata_model::{Labels, MatchOp, Matcher};

/// 2024-03-01 as a day number.
pub const BASE_DAY: i64 = 19_783;

/// Milliseconds `ms` into day `BASE_DAY + offset`.
pub fn at(offset_days: i64, ms: i64) -> i64 {
    (BASE_DAY + offset_days) * DAY_MS + ms
}

pub fn period(from: &str, table: &str, shards: u32) -> PeriodConfig {
    PeriodConfig {
        from: from.to_string(),
        table: table.to_string(),
        shards,
    }
}

pub fn schema(periods: Vec<PeriodConfig>) -> SchemaConfig {
    SchemaConfig { periods }
}

pub fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

pub fn series(pairs: &[(&str, &str)]) -> (u64, Labels) {
    let labels = labels(pairs);
    (labels.fingerprint(), labels)
}

pub fn matcher(op: MatchOp, name: &str, value: &str) -> Matcher {
    Matcher::new(op, name, value).expect("valid matcher")
}

pub fn eq(name: &str, value: &str) -> Matcher {
    matcher(MatchOp::Equal, name, value)
}

/// One put as the counting store saw it.
#[derive(Clone, Debug)]
pub struct Written {
    pub table: String,
    pub hash: String,
    pub size: usize,
    pub units: u64,
}

/// A [`RowStore`] that records every put, then hands it to `inner`.
pub struct CountingStore {
    pub inner: Arc<dyn RowStore>,
    pub written: Mutex<Vec<Written>>,
    pub queries: Mutex<Vec<(String, String, Vec<u8>)>>,
}

impl CountingStore {
    pub fn new(inner: Arc<dyn RowStore>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            written: Mutex::new(Vec::new()),
            queries: Mutex::new(Vec::new()),
        })
    }

    pub fn take_written(&self) -> Vec<Written> {
        std::mem::take(&mut *self.written.lock())
    }

    /// Write units per hash key.
    pub fn units_by_hash(written: &[Written]) -> BTreeMap<String, u64> {
        let mut by_hash = BTreeMap::new();
        for w in written {
            *by_hash.entry(w.hash.clone()).or_default() += w.units;
        }
        by_hash
    }
}

#[async_trait]
impl RowStore for CountingStore {
    async fn ensure_table(&self, table: &str) -> Result<(), IndexError> {
        self.inner.ensure_table(table).await
    }

    async fn write(&self, table: &str, items: Vec<IndexItem>) -> Result<WriteStats, IndexError> {
        self.written.lock().extend(items.iter().map(|item| Written {
            table: table.to_string(),
            hash: item.hash.clone(),
            size: item.size(),
            units: item.write_units(),
        }));
        self.inner.write(table, items).await
    }

    async fn query(
        &self,
        table: &str,
        hash: &str,
        range_prefix: &[u8],
    ) -> Result<Vec<IndexItem>, IndexError> {
        self.queries
            .lock()
            .push((table.to_string(), hash.to_string(), range_prefix.to_vec()));
        self.inner.query(table, hash, range_prefix).await
    }

    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
}

/// An index over `store` whose tables exist.
pub async fn index_on(store: Arc<dyn RowStore>, schema: SchemaConfig) -> Index {
    let index = Index::new(store, schema, IndexMetrics::new()).expect("valid schema");
    index.ensure_tables().await.expect("ensure tables");
    index
}

/// Label name to sorted distinct values, as the store hands an object's labels to the index.
pub fn label_values_of<'a>(
    series: impl IntoIterator<Item = &'a Labels>,
) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
    for labels in series {
        for l in labels.iter() {
            out.entry(l.name.clone())
                .or_default()
                .insert(l.value.clone());
        }
    }
    out.into_iter()
        .map(|(name, values)| (name, values.into_iter().collect()))
        .collect()
}

/// Adds an object holding `series` over `[min_time, max_time]` to the index.
pub async fn add(
    index: &Index,
    tenant: &str,
    key: &str,
    min_time: i64,
    max_time: i64,
    series: &[Labels],
) -> Result<WriteStats, IndexError> {
    let label_values = label_values_of(series);
    index
        .add_object(
            tenant,
            &strata_index::NewObject {
                key,
                index_offset: 4096,
                index_len: 512,
                min_time,
                max_time,
                series_count: series.len() as u64,
                label_values: &label_values,
            },
        )
        .await
}

/// The keys of `objects`.
pub fn keys(objects: &[strata_index::ObjectEntry]) -> Vec<String> {
    objects.iter().map(|o| o.key.clone()).collect()
}
