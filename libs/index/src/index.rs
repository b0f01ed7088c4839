//! The schema layer: a catalog of objects, and per object the values of each label (listed,
//! or as a Bloom filter), as rows of a [`RowStore`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Instant;

use futures::stream::{self, StreamExt, TryStreamExt};
use strata_model::duration::now_ms;
use strata_model::{MatchOp, Matcher};

use crate::encoding::{self, CatalogHeader, NameIndex};
use crate::error::IndexError;
use crate::metrics::IndexMetrics;
use crate::rows::{IndexItem, RowStore, WriteStats};
use crate::schema::{day_of, Schema, SchemaConfig};

/// Most day buckets one read visits (ten years), counted back from the end
/// of its range.
pub const MAX_READ_DAYS: i64 = 3660;

/// Row queries of one operation in flight at once.
const QUERY_CONCURRENCY: usize = 16;

/// Most day buckets one write may cover; a longer range is almost surely a bad timestamp.
pub const MAX_WRITE_DAYS: i64 = 366;

/// An object to add to the index: where its own index is, its time span and, per label name,
/// the distinct values its series have.
#[derive(Clone, Debug)]
pub struct NewObject<'a> {
    pub key: &'a str,
    pub index_offset: u64,
    pub index_len: u32,
    pub min_time: i64,
    pub max_time: i64,
    pub series_count: u64,
    /// Label name to its sorted, distinct values among the object's series.
    pub label_values: &'a BTreeMap<String, Vec<String>>,
}

/// One stored object (a packed file of chunks), as the catalog records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectEntry {
    /// The object's key in the object store.
    pub key: String,
    /// Where the object's own index starts, in bytes.
    pub index_offset: u64,
    /// Length of the object's own index, in bytes.
    pub index_len: u32,
    /// Earliest sample time in the object, milliseconds.
    pub min_time: i64,
    /// Latest sample time in the object, milliseconds.
    pub max_time: i64,
    /// Series in the object.
    pub series_count: u64,
    /// The object's label names and how each is indexed; `None` when the catalog entry was
    /// found incomplete (a write failed half-way), so nothing may be ruled out from it.
    pub names: Option<BTreeMap<String, NameIndex>>,
}

/// An answer the index could give only in part: what it found, and the objects whose own
/// index must be read for the rest (their values are not listed in the index).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Partial {
    /// Sorted, distinct.
    pub values: BTreeSet<String>,
    /// Objects to read for the rest.
    pub unresolved: Vec<ObjectEntry>,
}

struct RowQuery {
    table: String,
    hash: String,
    prefix: Vec<u8>,
}

/// The long-term series index of all tenants.
pub struct Index {
    store: Arc<dyn RowStore>,
    config: SchemaConfig,
    schema: Schema,
    metrics: IndexMetrics,
    kind: &'static str,
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index")
            .field("store", &self.kind)
            .field("schema", &self.config)
            .finish()
    }
}

fn days(from_ms: i64, to_ms: i64) -> RangeInclusive<i64> {
    day_of(from_ms)..=day_of(to_ms)
}

fn invalid(message: String) -> IndexError {
    IndexError::InvalidRequest(message)
}

fn tenant_key(tenant: &str) -> Result<String, IndexError> {
    if tenant.is_empty() {
        return Err(invalid("tenant ID is empty".to_string()));
    }
    let escaped = encoding::escape_tenant(tenant);
    if escaped.len() > encoding::MAX_TENANT_BYTES {
        return Err(invalid(format!(
            "tenant ID is {} bytes, the index takes at most {} (use a valid tenant ID)",
            tenant.len(),
            encoding::MAX_TENANT_BYTES
        )));
    }
    Ok(escaped)
}

fn write_days(from_ms: i64, to_ms: i64) -> Result<RangeInclusive<i64>, IndexError> {
    if from_ms > to_ms {
        return Err(invalid(format!(
            "time range starts at {from_ms} after it ends at {to_ms}; pass from <= to"
        )));
    }
    let range = days(from_ms, to_ms);
    let count = range.end() - range.start() + 1;
    if count > MAX_WRITE_DAYS {
        return Err(invalid(format!(
            "time range {from_ms}..{to_ms} covers {count} days, one write covers at most \
             {MAX_WRITE_DAYS}: check the timestamps"
        )));
    }
    Ok(range)
}

/// Whether a label name can have postings at all (it fits a hash key).
fn indexable_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= encoding::MAX_LABEL_NAME_BYTES
}

impl Index {
    /// An index over `store` with the (validated) `schema`.
    pub fn new(
        store: Arc<dyn RowStore>,
        schema: SchemaConfig,
        metrics: IndexMetrics,
    ) -> Result<Self, IndexError> {
        let resolved = schema.resolve()?;
        let kind = store.kind();
        Ok(Self {
            store,
            config: schema,
            schema: resolved,
            metrics,
            kind,
        })
    }

    /// The schema this index was built with.
    /// Days a read of `[from_ms, to_ms]` visits: never after tomorrow (UTC)
    /// and at most [`MAX_READ_DAYS`] back from the range's end, so a request
    /// for "all time" costs a bounded number of row queries.
    fn read_days(&self, from_ms: i64, to_ms: i64) -> RangeInclusive<i64> {
        let tomorrow = day_of(now_ms()).saturating_add(1);
        let to = day_of(to_ms).min(tomorrow);
        let from = day_of(from_ms).max(to.saturating_sub(MAX_READ_DAYS - 1));
        from..=to
    }

    pub fn schema(&self) -> &SchemaConfig {
        &self.config
    }

    /// Creates every table the schema names (all periods, including future ones).
    pub async fn ensure_tables(&self) -> Result<(), IndexError> {
        for table in self.config.tables() {
            self.store.ensure_table(&table).await?;
        }
        Ok(())
    }

    /// Awaits `work`, recording its duration as operation `op`.
    async fn timed<T>(&self, op: &str, work: impl std::future::Future<Output = T>) -> T {
        let started = Instant::now();
        let result = work.await;
        self.metrics
            .request_duration
            .get_or_create(&IndexMetrics::op_labels(op, self.kind))
            .observe(started.elapsed().as_secs_f64());
        result
    }

    async fn write_tables(
        &self,
        by_table: BTreeMap<String, Vec<IndexItem>>,
    ) -> Result<WriteStats, IndexError> {
        let mut total = WriteStats::default();
        for (table, items) in by_table {
            if items.is_empty() {
                continue;
            }
            let stats = self.store.write(&table, items).await?;
            let label = IndexMetrics::store_label(self.kind);
            self.metrics
                .items_written
                .get_or_create(&label)
                .inc_by(stats.items);
            self.metrics
                .write_units
                .get_or_create(&label)
                .inc_by(stats.write_units);
            self.metrics
                .bytes_written
                .get_or_create(&label)
                .inc_by(stats.bytes);
            total += stats;
        }
        Ok(total)
    }

    /// Runs row queries concurrently (bounded); results in the order of `queries`.
    async fn run_queries(&self, queries: Vec<RowQuery>) -> Result<Vec<Vec<IndexItem>>, IndexError> {
        let count = queries.len() as u64;
        let store = &self.store;
        let results: Vec<Vec<IndexItem>> = stream::iter(queries)
            .map(|q| async move { store.query(&q.table, &q.hash, &q.prefix).await })
            .buffered(QUERY_CONCURRENCY)
            .try_collect()
            .await?;
        let label = IndexMetrics::store_label(self.kind);
        self.metrics.row_queries.get_or_create(&label).inc_by(count);
        let items: usize = results.iter().map(Vec::len).sum();
        self.metrics
            .items_read
            .get_or_create(&label)
            .inc_by(items as u64);
        Ok(results)
    }

    /// Adds an object: the listed values or filters of each of its labels, for every day
    /// bucket its time span overlaps, then its catalog entry. The catalog is written last,
    /// so an object a reader finds in the catalog has all its rows. Writing the same object
    /// again rewrites identical items, which is harmless.
    pub async fn add_object(
        &self,
        tenant: &str,
        object: &NewObject<'_>,
    ) -> Result<WriteStats, IndexError> {
        self.timed("add_object", self.add_object_inner(tenant, object))
            .await
    }

    async fn add_object_inner(
        &self,
        tenant: &str,
        object: &NewObject<'_>,
    ) -> Result<WriteStats, IndexError> {
        let tenant = tenant_key(tenant)?;
        let days = write_days(object.min_time, object.max_time)?;
        if object.key.is_empty()
            || encoding::escaped_str_len(object.key) > encoding::MAX_OBJECT_KEY_BYTES
        {
            return Err(invalid(format!(
                "object key must be 1 to {} bytes, got {}",
                encoding::MAX_OBJECT_KEY_BYTES,
                object.key.len()
            )));
        }
        for (name, values) in object.label_values {
            if let Some(v) = values
                .iter()
                .find(|v| v.len() > encoding::MAX_LABEL_VALUE_BYTES)
            {
                return Err(invalid(format!(
                    "label {name} has a value of {} bytes, the index takes at most {}",
                    v.len(),
                    encoding::MAX_LABEL_VALUE_BYTES
                )));
            }
            if values.windows(2).any(|w| w[0] >= w[1]) {
                return Err(invalid(format!(
                    "values of label {name} must be sorted and distinct"
                )));
            }
        }
        let header = CatalogHeader {
            index_offset: object.index_offset,
            index_len: object.index_len,
            min_time: object.min_time,
            max_time: object.max_time,
            series_count: object.series_count,
        };

        // How each label is indexed depends on the period's filter shard cap; periods of
        // the days differ at most at a schema change.
        let mut rows: BTreeMap<String, Vec<IndexItem>> = BTreeMap::new();
        let mut catalog: BTreeMap<String, Vec<IndexItem>> = BTreeMap::new();
        let mut layouts: HashMap<u32, Vec<(String, NameIndex, LabelRows)>> = HashMap::new();
        for day in days {
            let period = self.schema.period(day);
            let cap = prev_power_of_two(period.shards);
            let layout = layouts
                .entry(cap)
                .or_insert_with(|| label_layout(object.label_values, cap));
            let items = rows.entry(period.table.clone()).or_default();
            for (name, _, label_rows) in layout.iter() {
                match label_rows {
                    LabelRows::None => {}
                    LabelRows::Values(value) => items.push(IndexItem {
                        hash: encoding::values_hash(&tenant, day, name),
                        range: encoding::object_range(object.key, 0),
                        value: value.clone(),
                    }),
                    LabelRows::Filters { shards, rows } => {
                        for (shard, value) in rows {
                            items.push(IndexItem {
                                hash: encoding::filter_hash(&tenant, day, *shards, *shard, name),
                                range: encoding::object_range(object.key, 0),
                                value: value.clone(),
                            });
                        }
                    }
                }
            }
            let names: Vec<(String, NameIndex)> = layout
                .iter()
                .map(|(name, kind, _)| (name.clone(), *kind))
                .collect();
            let entry = encoding::catalog_items(
                &encoding::catalog_hash(&tenant, day),
                object.key,
                &header,
                &names,
            )
            .map_err(|message| invalid(format!("object {}: {message}", object.key)))?;
            catalog
                .entry(period.table.clone())
                .or_default()
                .extend(entry);
        }
        let mut stats = self.write_tables(rows).await?;
        stats += self.write_tables(catalog).await?;
        Ok(stats)
    }

    /// Every object under the day buckets overlapping `[from_ms, to_ms]` whose `[min_time,
    /// max_time]` overlaps it, sorted by key.
    pub async fn objects(
        &self,
        tenant: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<ObjectEntry>, IndexError> {
        self.timed("objects", async {
            let tenant = tenant_key(tenant)?;
            self.catalog(&tenant, from_ms, to_ms).await
        })
        .await
    }

    async fn catalog(
        &self,
        tenant: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<ObjectEntry>, IndexError> {
        if from_ms > to_ms {
            return Ok(Vec::new());
        }
        let queries: Vec<RowQuery> = self
            .read_days(from_ms, to_ms)
            .map(|day| RowQuery {
                table: self.schema.period(day).table.clone(),
                hash: encoding::catalog_hash(tenant, day),
                prefix: Vec::new(),
            })
            .collect();
        let tables: Vec<String> = queries.iter().map(|q| q.table.clone()).collect();
        let results = self.run_queries(queries).await?;

        struct Found {
            header: CatalogHeader,
            parts: u32,
            seen: BTreeSet<u32>,
            names: BTreeMap<String, NameIndex>,
        }
        // Per day, then merged: an object is complete if some day holds all its parts.
        let mut objects: BTreeMap<String, ObjectEntry> = BTreeMap::new();
        for (table, items) in tables.iter().zip(results) {
            let mut found: BTreeMap<String, Found> = BTreeMap::new();
            for item in items {
                let corrupt = |message: String| IndexError::corrupt(table, &item.hash, message);
                let (key, part) = encoding::decode_object_range(&item.range).map_err(corrupt)?;
                let entry = encoding::decode_catalog(&item.value).map_err(corrupt)?;
                if part >= entry.parts {
                    return Err(corrupt(format!(
                        "catalog part {part} of an entry with {} parts",
                        entry.parts
                    )));
                }
                let f = found.entry(key).or_insert_with(|| Found {
                    header: entry.header.clone(),
                    parts: entry.parts,
                    seen: BTreeSet::new(),
                    names: BTreeMap::new(),
                });
                if f.header != entry.header || f.parts != entry.parts {
                    return Err(corrupt(
                        "the same object is recorded with two different headers".to_string(),
                    ));
                }
                f.seen.insert(part);
                f.names.extend(entry.names);
            }
            for (key, f) in found {
                if f.header.min_time > to_ms || f.header.max_time < from_ms {
                    continue;
                }
                let complete = f.seen.len() == f.parts as usize;
                let entry = ObjectEntry {
                    key: key.clone(),
                    index_offset: f.header.index_offset,
                    index_len: f.header.index_len,
                    min_time: f.header.min_time,
                    max_time: f.header.max_time,
                    series_count: f.header.series_count,
                    names: complete.then_some(f.names),
                };
                match objects.get_mut(&key) {
                    Some(known) if known.names.is_none() => *known = entry,
                    Some(_) => {}
                    None => {
                        objects.insert(key, entry);
                    }
                }
            }
        }
        Ok(objects.into_values().collect())
    }

    /// Objects overlapping `[from_ms, to_ms]` that may hold series matching all `matchers`
    /// (PromQL semantics: a matcher that matches the empty string also selects series without
    /// the label, so it rules nothing out). Never leaves out an object that holds a matching
    /// series; may include some that do not (Bloom filter false positives, regexes over
    /// filtered labels), which the object's own index then rules out. Sorted by key.
    pub async fn candidates(
        &self,
        tenant: &str,
        from_ms: i64,
        to_ms: i64,
        matchers: &[Matcher],
    ) -> Result<Vec<ObjectEntry>, IndexError> {
        self.timed(
            "candidates",
            self.candidates_inner(tenant, from_ms, to_ms, matchers),
        )
        .await
    }

    async fn candidates_inner(
        &self,
        tenant: &str,
        from_ms: i64,
        to_ms: i64,
        matchers: &[Matcher],
    ) -> Result<Vec<ObjectEntry>, IndexError> {
        let tenant = tenant_key(tenant)?;
        let mut objects = self.catalog(&tenant, from_ms, to_ms).await?;
        // Equality first: it rules out the most for the least reading.
        let mut selecting: Vec<&Matcher> = matchers.iter().filter(|m| !m.matches_empty()).collect();
        selecting.sort_by_key(|m| match m.op {
            MatchOp::Equal => 0,
            MatchOp::RegexMatch if m.set_matches().is_some() => 1,
            _ => 2,
        });
        let days: Vec<i64> = self.read_days(from_ms, to_ms).collect();
        for m in selecting {
            if objects.is_empty() {
                break;
            }
            let keep = self.may_match(&tenant, &days, &objects, m).await?;
            objects = objects
                .into_iter()
                .zip(keep)
                .filter_map(|(o, k)| k.then_some(o))
                .collect();
        }
        Ok(objects)
    }

    /// For each object, whether it may hold a series whose label `m.name` has a value `m`
    /// accepts (`m` does not match the empty string).
    async fn may_match(
        &self,
        tenant: &str,
        days: &[i64],
        objects: &[ObjectEntry],
        m: &Matcher,
    ) -> Result<Vec<bool>, IndexError> {
        let literals: Option<Vec<&str>> = match m.op {
            MatchOp::Equal => Some(vec![m.value.as_str()]),
            _ => m.set_matches(),
        };
        // Decided from the catalog alone (`Ok`), or pending a read of the
        // label's rows of this kind (`Err`).
        let decided: Vec<Result<bool, NameIndex>> = objects
            .iter()
            .map(|o| match &o.names {
                None => Ok(true),
                Some(names) => match names.get(&m.name) {
                    None => Ok(false),
                    Some(NameIndex::Unindexed) => Ok(true),
                    Some(NameIndex::Filter { .. }) if literals.is_none() => Ok(true),
                    Some(kind) => Err(*kind),
                },
            })
            .collect();
        let mut queries = Vec::new();
        let mut filter_shards: BTreeSet<u32> = BTreeSet::new();
        let mut need_values = false;
        for d in &decided {
            match d {
                Err(NameIndex::Filter { shards }) => {
                    filter_shards.insert(*shards);
                }
                Err(_) => need_values = true,
                Ok(_) => {}
            }
        }
        // (shards, hashes of the literals) each filter query tests.
        let mut tests: Vec<Option<(u32, Vec<u64>)>> = Vec::new();
        for &day in days {
            let table = &self.schema.period(day).table;
            if need_values {
                queries.push(RowQuery {
                    table: table.clone(),
                    hash: encoding::values_hash(tenant, day, &m.name),
                    prefix: Vec::new(),
                });
                tests.push(None);
            }
            for &shards in &filter_shards {
                let mut by_shard: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
                for literal in literals.iter().flatten() {
                    let h = encoding::value_hash(literal);
                    by_shard
                        .entry(encoding::filter_shard(h, shards))
                        .or_default()
                        .push(h);
                }
                for (shard, hashes) in by_shard {
                    queries.push(RowQuery {
                        table: table.clone(),
                        hash: encoding::filter_hash(tenant, day, shards, shard, &m.name),
                        prefix: Vec::new(),
                    });
                    tests.push(Some((shards, hashes)));
                }
            }
        }
        let position: HashMap<&str, usize> = objects
            .iter()
            .enumerate()
            .map(|(i, o)| (o.key.as_str(), i))
            .collect();
        let tables: Vec<String> = queries.iter().map(|q| q.table.clone()).collect();
        let results = self.run_queries(queries).await?;
        // Objects whose listed values were found (a missing row leaves the object in).
        let mut listed: Vec<bool> = vec![false; objects.len()];
        let mut hit: Vec<bool> = vec![false; objects.len()];
        for ((table, items), test) in tables.iter().zip(results).zip(&tests) {
            for item in items {
                let corrupt = |message: String| IndexError::corrupt(table, &item.hash, message);
                let (key, _) = encoding::decode_object_range(&item.range).map_err(corrupt)?;
                let Some(&i) = position.get(key.as_str()) else {
                    continue;
                };
                let Err(kind) = decided[i] else {
                    continue;
                };
                match test {
                    None => {
                        if kind != NameIndex::Values {
                            continue;
                        }
                        let values = encoding::decode_values(&item.value).map_err(corrupt)?;
                        listed[i] = true;
                        if values.iter().any(|v| m.matches(v)) {
                            hit[i] = true;
                        }
                    }
                    Some((shards, hashes)) => {
                        if kind != (NameIndex::Filter { shards: *shards }) {
                            continue;
                        }
                        for h in hashes {
                            if encoding::filter_contains(&item.value, *h).map_err(corrupt)? {
                                hit[i] = true;
                            }
                        }
                    }
                }
            }
        }
        Ok(decided
            .iter()
            .enumerate()
            .map(|(i, d)| match d {
                Ok(keep) => *keep,
                // A listed label whose row is missing: keep, never drop on doubt.
                Err(NameIndex::Values) => hit[i] || !listed[i],
                Err(_) => hit[i],
            })
            .collect())
    }

    /// Label names of the objects overlapping `[from_ms, to_ms]`: sorted, distinct,
    /// `__name__` included; objects whose catalog entry is incomplete are `unresolved`.
    pub async fn label_names(
        &self,
        tenant: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Partial, IndexError> {
        self.timed("label_names", async {
            let tenant = tenant_key(tenant)?;
            let mut out = Partial::default();
            for o in self.catalog(&tenant, from_ms, to_ms).await? {
                match &o.names {
                    Some(names) => out.values.extend(names.keys().cloned()),
                    None => out.unresolved.push(o),
                }
            }
            Ok(out)
        })
        .await
    }

    /// Values of label `name` in the objects overlapping `[from_ms, to_ms]`: the listed ones
    /// (sorted, distinct, never empty), and as `unresolved` the objects that have the label
    /// with values the index does not list (filtered or unindexed, or an incomplete entry).
    pub async fn label_values(
        &self,
        tenant: &str,
        from_ms: i64,
        to_ms: i64,
        name: &str,
    ) -> Result<Partial, IndexError> {
        self.timed(
            "label_values",
            self.label_values_inner(tenant, from_ms, to_ms, name),
        )
        .await
    }

    async fn label_values_inner(
        &self,
        tenant: &str,
        from_ms: i64,
        to_ms: i64,
        name: &str,
    ) -> Result<Partial, IndexError> {
        let tenant = tenant_key(tenant)?;
        let mut out = Partial::default();
        let mut listed: BTreeMap<String, ObjectEntry> = BTreeMap::new();
        for o in self.catalog(&tenant, from_ms, to_ms).await? {
            match o.names.as_ref().map(|n| n.get(name)) {
                Some(None) => {}
                Some(Some(NameIndex::Values)) => {
                    listed.insert(o.key.clone(), o);
                }
                _ => out.unresolved.push(o),
            }
        }
        if listed.is_empty() {
            return Ok(out);
        }
        let queries: Vec<RowQuery> = self
            .read_days(from_ms, to_ms)
            .map(|day| RowQuery {
                table: self.schema.period(day).table.clone(),
                hash: encoding::values_hash(&tenant, day, name),
                prefix: Vec::new(),
            })
            .collect();
        let tables: Vec<String> = queries.iter().map(|q| q.table.clone()).collect();
        let mut found: BTreeSet<String> = BTreeSet::new();
        for (table, items) in tables.iter().zip(self.run_queries(queries).await?) {
            for item in items {
                let corrupt = |message: String| IndexError::corrupt(table, &item.hash, message);
                let (key, _) = encoding::decode_object_range(&item.range).map_err(corrupt)?;
                if !listed.contains_key(&key) {
                    continue;
                }
                let values = encoding::decode_values(&item.value).map_err(corrupt)?;
                out.values
                    .extend(values.into_iter().filter(|v| !v.is_empty()));
                found.insert(key);
            }
        }
        // Listed objects whose row is missing are read in full rather than left out.
        out.unresolved.extend(
            listed
                .into_iter()
                .filter(|(key, _)| !found.contains(key))
                .map(|(_, o)| o),
        );
        out.unresolved.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }
}

/// The rows of one label of one object.
enum LabelRows {
    None,
    Values(Vec<u8>),
    Filters {
        shards: u32,
        rows: Vec<(u32, Vec<u8>)>,
    },
}

fn prev_power_of_two(n: u32) -> u32 {
    if n <= 1 {
        1
    } else {
        1 << (31 - n.leading_zeros())
    }
}

/// How each label of an object is indexed with filters split into at most `cap` shards:
/// values listed when they are few, a Bloom filter otherwise, nothing when neither fits.
fn label_layout(
    label_values: &BTreeMap<String, Vec<String>>,
    cap: u32,
) -> Vec<(String, NameIndex, LabelRows)> {
    label_values
        .iter()
        .map(|(name, values)| {
            if !indexable_name(name) {
                return (name.clone(), NameIndex::Unindexed, LabelRows::None);
            }
            let listed = encoding::encode_values(values);
            if listed.len() <= encoding::INLINE_VALUES_MAX {
                return (name.clone(), NameIndex::Values, LabelRows::Values(listed));
            }
            let shards = encoding::filter_shards(values.len()).min(cap);
            let hashes: Vec<u64> = values.iter().map(|v| encoding::value_hash(v)).collect();
            let rows = encoding::encode_filters(&hashes, shards);
            // Keys and attribute names take at most this much besides the filter.
            let room = encoding::MAX_ITEM_BYTES
                - 3
                - encoding::MAX_TENANT_BYTES
                - encoding::MAX_LABEL_NAME_BYTES
                - encoding::MAX_OBJECT_KEY_BYTES
                - 64;
            if rows.iter().any(|(_, v)| v.len() > room) {
                return (name.clone(), NameIndex::Unindexed, LabelRows::None);
            }
            (
                name.clone(),
                NameIndex::Filter { shards },
                LabelRows::Filters { shards, rows },
            )
        })
        .collect()
}
