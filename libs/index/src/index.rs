//! The schema layer: postings, label names and objects as rows of a [`RowStore`].

use std::collections::{BTreeMap, BTreeSet};
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Instant;

use futures::stream::{self, StreamExt, TryStreamExt};
use strata_model::duration::now_ms;
use strata_model::{Labels, MatchOp, Matcher, METRIC_NAME};

use crate::encoding::{self, ObjectPart};
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

/// One stored object (a packed file of chunks) and the series it holds chunks of.
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
    /// (fingerprint, digest of the series' chunks in the object), sorted by fingerprint.
    pub series: Vec<(u64, u32)>,
}

/// What a label's postings rows are read for.
enum Select<'a> {
    /// Exactly these values: one prefix query per value and shard.
    Values(Vec<&'a str>),
    /// Every value for which `matcher.matches(value) == keep`: whole rows, filtered.
    Filter { matcher: &'a Matcher, keep: bool },
    /// Every value: whole rows.
    All,
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

    /// Postings for these series in every day bucket overlapping `[from_ms, to_ms]`. `batch` is
    /// a unique ID of this write (e.g. the object key) so two writers never overwrite each
    /// other's items; writing the same batch again is harmless.
    pub async fn add_series(
        &self,
        tenant: &str,
        from_ms: i64,
        to_ms: i64,
        series: &[(u64, Labels)],
        batch: &str,
    ) -> Result<WriteStats, IndexError> {
        self.timed(
            "add_series",
            self.add_series_inner(tenant, from_ms, to_ms, series, batch),
        )
        .await
    }

    async fn add_series_inner(
        &self,
        tenant: &str,
        from_ms: i64,
        to_ms: i64,
        series: &[(u64, Labels)],
        batch: &str,
    ) -> Result<WriteStats, IndexError> {
        let tenant = tenant_key(tenant)?;
        let days = write_days(from_ms, to_ms)?;
        if batch.is_empty() || encoding::escaped_str_len(batch) > encoding::MAX_BATCH_BYTES {
            return Err(invalid(format!(
                "batch ID must be 1 to {} bytes, got {}; pass a short unique ID such as the \
                 object key",
                encoding::MAX_BATCH_BYTES,
                batch.len()
            )));
        }
        for (_, labels) in series {
            for label in labels.iter() {
                if !indexable_name(&label.name) {
                    return Err(invalid(format!(
                        "label name of {} bytes in series {labels}: the index takes 1 to {} \
                         bytes",
                        label.name.len(),
                        encoding::MAX_LABEL_NAME_BYTES
                    )));
                }
                if label.value.len() > encoding::MAX_LABEL_VALUE_BYTES {
                    return Err(invalid(format!(
                        "value of label {} is {} bytes, the index takes at most {}",
                        label.name,
                        label.value.len(),
                        encoding::MAX_LABEL_VALUE_BYTES
                    )));
                }
            }
        }
        if series.is_empty() {
            return Ok(WriteStats::default());
        }

        // Postings grouped by (shard, name) → value → fingerprints, once per shard count.
        type Grouped<'s> = BTreeMap<(u32, &'s str), BTreeMap<&'s str, Vec<u64>>>;
        let mut grouped: BTreeMap<u32, Grouped<'_>> = BTreeMap::new();
        let mut names: BTreeSet<&str> = BTreeSet::new();
        for (_, labels) in series {
            for label in labels.iter() {
                if !label.value.is_empty() {
                    names.insert(&label.name);
                }
            }
        }
        names.insert(METRIC_NAME);
        for day in days.clone() {
            let shards = self.schema.period(day).shards;
            if grouped.contains_key(&shards) {
                continue;
            }
            let mut by_row: Grouped<'_> = BTreeMap::new();
            for (fp, labels) in series {
                let shard = encoding::shard_of(*fp, shards);
                // Series without a metric name are listed under an empty one, so the
                // __name__ rows list every series.
                if labels.metric_name().is_none_or(str::is_empty) {
                    by_row
                        .entry((shard, METRIC_NAME))
                        .or_default()
                        .entry("")
                        .or_default()
                        .push(*fp);
                }
                for label in labels.iter() {
                    if label.value.is_empty() {
                        continue;
                    }
                    by_row
                        .entry((shard, &label.name))
                        .or_default()
                        .entry(&label.value)
                        .or_default()
                        .push(*fp);
                }
            }
            for values in by_row.values_mut() {
                for fps in values.values_mut() {
                    fps.sort_unstable();
                    fps.dedup();
                }
            }
            grouped.insert(shards, by_row);
        }

        let mut by_table: BTreeMap<String, Vec<IndexItem>> = BTreeMap::new();
        for day in days {
            let period = self.schema.period(day);
            let Some(by_row) = grouped.get(&period.shards) else {
                continue;
            };
            let items = by_table.entry(period.table.clone()).or_default();
            for ((shard, name), values) in by_row {
                let hash = encoding::postings_hash(&tenant, day, *shard, name);
                for (value, fps) in values {
                    let parts =
                        encoding::postings_items(&hash, value, batch, fps).map_err(|message| {
                            invalid(format!("label {name}={value:.64?}: {message}"))
                        })?;
                    items.extend(parts);
                }
            }
            let hash = encoding::names_hash(&tenant, day);
            for name in &names {
                items.push(IndexItem {
                    hash: hash.clone(),
                    range: name.as_bytes().to_vec(),
                    value: Vec::new(),
                });
            }
        }
        self.write_tables(by_table).await
    }

    /// Records that `object` holds chunks of its series, under every day bucket overlapping
    /// `[min_time, max_time]`.
    pub async fn add_object(
        &self,
        tenant: &str,
        object: &ObjectEntry,
    ) -> Result<WriteStats, IndexError> {
        self.timed("add_object", self.add_object_inner(tenant, object))
            .await
    }

    async fn add_object_inner(
        &self,
        tenant: &str,
        object: &ObjectEntry,
    ) -> Result<WriteStats, IndexError> {
        let tenant = tenant_key(tenant)?;
        let days = write_days(object.min_time, object.max_time)?;
        if object.key.is_empty()
            || encoding::escaped_str_len(&object.key) > encoding::MAX_OBJECT_KEY_BYTES
        {
            return Err(invalid(format!(
                "object key must be 1 to {} bytes, got {}",
                encoding::MAX_OBJECT_KEY_BYTES,
                object.key.len()
            )));
        }
        let mut series = object.series.clone();
        series.sort_unstable_by_key(|(fp, _)| *fp);
        series.dedup_by_key(|(fp, _)| *fp);

        let mut by_table: BTreeMap<String, Vec<IndexItem>> = BTreeMap::new();
        let mut by_shards: BTreeMap<u32, BTreeMap<u32, Vec<(u64, u32)>>> = BTreeMap::new();
        for day in days {
            let period = self.schema.period(day);
            let shards = by_shards.entry(period.shards).or_insert_with(|| {
                let mut split: BTreeMap<u32, Vec<(u64, u32)>> = BTreeMap::new();
                for &(fp, digest) in &series {
                    split
                        .entry(encoding::shard_of(fp, period.shards))
                        .or_default()
                        .push((fp, digest));
                }
                split
            });
            let items = by_table.entry(period.table.clone()).or_default();
            for (shard, shard_series) in shards.iter() {
                let hash = encoding::objects_hash(&tenant, day, *shard);
                let part = ObjectPart {
                    index_offset: object.index_offset,
                    index_len: object.index_len,
                    min_time: object.min_time,
                    max_time: object.max_time,
                    series: shard_series.clone(),
                };
                let parts = encoding::object_items(&hash, &object.key, &part)
                    .map_err(|message| invalid(format!("object {}: {message}", object.key)))?;
                items.extend(parts);
            }
        }
        self.write_tables(by_table).await
    }

    /// Fingerprints of the series matching all `matchers` (PromQL semantics: a matcher that
    /// matches the empty string also selects series without the label; selectors without a
    /// metric name work) with postings in any day bucket overlapping `[from_ms, to_ms]`.
    /// No matchers select every series.
    pub async fn lookup(
        &self,
        tenant: &str,
        from_ms: i64,
        to_ms: i64,
        matchers: &[Matcher],
    ) -> Result<BTreeSet<u64>, IndexError> {
        self.timed(
            "lookup",
            self.lookup_inner(tenant, from_ms, to_ms, matchers),
        )
        .await
    }

    async fn lookup_inner(
        &self,
        tenant: &str,
        from_ms: i64,
        to_ms: i64,
        matchers: &[Matcher],
    ) -> Result<BTreeSet<u64>, IndexError> {
        let tenant = tenant_key(tenant)?;
        if from_ms > to_ms {
            return Ok(BTreeSet::new());
        }
        let days = self.read_days(from_ms, to_ms);
        let (mut positive, negative): (Vec<&Matcher>, Vec<&Matcher>) =
            matchers.iter().partition(|m| !m.matches_empty());
        // Cheapest first: equality, then literal sets, then scans.
        positive.sort_by_key(|m| match m.op {
            MatchOp::Equal => 0,
            _ if m.set_matches().is_some() => 1,
            _ => 2,
        });

        let mut candidates: Option<BTreeSet<u64>> = None;
        for matcher in positive {
            let select = match (matcher.op, matcher.set_matches()) {
                (MatchOp::Equal, _) => Select::Values(vec![matcher.value.as_str()]),
                (_, Some(literals)) => Select::Values(literals),
                _ => Select::Filter {
                    matcher,
                    keep: true,
                },
            };
            let selected = self.postings(&tenant, &days, &matcher.name, select).await?;
            let next = match candidates {
                None => selected,
                Some(current) => current.intersection(&selected).copied().collect(),
            };
            if next.is_empty() {
                return Ok(next);
            }
            candidates = Some(next);
        }
        let mut candidates = match candidates {
            Some(candidates) => candidates,
            None => {
                self.postings(&tenant, &days, METRIC_NAME, Select::All)
                    .await?
            }
        };
        for matcher in negative {
            if candidates.is_empty() {
                break;
            }
            // The series this matcher drops: those with the label and a value it rejects.
            let literal_set = match matcher.op {
                MatchOp::RegexNoMatch => {
                    Matcher::new(MatchOp::RegexMatch, &matcher.name, &matcher.value)
                        .ok()
                        .and_then(|m| {
                            m.set_matches()
                                .map(|l| l.into_iter().map(str::to_string).collect::<Vec<_>>())
                        })
                }
                _ => None,
            };
            let select = match (matcher.op, &literal_set) {
                (MatchOp::NotEqual, _) => Select::Values(vec![matcher.value.as_str()]),
                (MatchOp::RegexNoMatch, Some(literals)) => Select::Values(
                    literals
                        .iter()
                        .map(String::as_str)
                        .filter(|l| !l.is_empty())
                        .collect(),
                ),
                _ => Select::Filter {
                    matcher,
                    keep: false,
                },
            };
            let dropped = self.postings(&tenant, &days, &matcher.name, select).await?;
            candidates.retain(|fp| !dropped.contains(fp));
        }
        Ok(candidates)
    }

    /// Union of the fingerprints under label `name` for the selected values.
    async fn postings(
        &self,
        tenant: &str,
        days: &RangeInclusive<i64>,
        name: &str,
        select: Select<'_>,
    ) -> Result<BTreeSet<u64>, IndexError> {
        let mut fingerprints = BTreeSet::new();
        for (_, fps) in self.scan_postings(tenant, days, name, &select).await? {
            fingerprints.extend(fps);
        }
        Ok(fingerprints)
    }

    /// (label value, fingerprints) of every postings item of `name` that `select` keeps.
    async fn scan_postings(
        &self,
        tenant: &str,
        days: &RangeInclusive<i64>,
        name: &str,
        select: &Select<'_>,
    ) -> Result<Vec<(String, Vec<u64>)>, IndexError> {
        if !indexable_name(name) {
            return Ok(Vec::new());
        }
        let prefixes: Vec<Vec<u8>> = match select {
            Select::Values(values) => {
                let distinct: BTreeSet<&str> = values.iter().copied().collect();
                distinct
                    .into_iter()
                    .map(encoding::postings_value_prefix)
                    .collect()
            }
            Select::Filter { .. } | Select::All => vec![Vec::new()],
        };
        if prefixes.is_empty() {
            return Ok(Vec::new());
        }
        let mut queries = Vec::new();
        for day in days.clone() {
            let period = self.schema.period(day);
            for shard in 0..period.shards {
                let hash = encoding::postings_hash(tenant, day, shard, name);
                for prefix in &prefixes {
                    queries.push(RowQuery {
                        table: period.table.clone(),
                        hash: hash.clone(),
                        prefix: prefix.clone(),
                    });
                }
            }
        }
        let tables: Vec<String> = queries.iter().map(|q| q.table.clone()).collect();
        let results = self.run_queries(queries).await?;
        let mut out = Vec::new();
        for (table, items) in tables.iter().zip(results) {
            for item in items {
                let corrupt = |message: String| IndexError::corrupt(table, &item.hash, message);
                let in_key = encoding::decode_postings_range(&item.range).map_err(corrupt)?;
                let postings = encoding::decode_postings(&item.value).map_err(corrupt)?;
                let value = match (in_key, postings.long_value) {
                    (Some(value), _) => value,
                    (None, Some(value)) => value,
                    (None, None) => {
                        return Err(corrupt(
                            "range key holds a cut label value but the item has no whole value"
                                .to_string(),
                        ))
                    }
                };
                let keep = match select {
                    Select::Values(values) => values.contains(&value.as_str()),
                    Select::Filter { matcher, keep } => matcher.matches(&value) == *keep,
                    Select::All => true,
                };
                if keep {
                    out.push((value, postings.fingerprints));
                }
            }
        }
        Ok(out)
    }

    /// Objects under the day buckets overlapping `[from_ms, to_ms]` whose `[min_time,
    /// max_time]` overlaps it and that hold at least one of `fingerprints`; each returned
    /// entry keeps only the listed fingerprints in `series` (`None` keeps all). Sorted by key.
    pub async fn objects(
        &self,
        tenant: &str,
        from_ms: i64,
        to_ms: i64,
        fingerprints: Option<&BTreeSet<u64>>,
    ) -> Result<Vec<ObjectEntry>, IndexError> {
        self.timed(
            "objects",
            self.objects_inner(tenant, from_ms, to_ms, fingerprints),
        )
        .await
    }

    async fn objects_inner(
        &self,
        tenant: &str,
        from_ms: i64,
        to_ms: i64,
        fingerprints: Option<&BTreeSet<u64>>,
    ) -> Result<Vec<ObjectEntry>, IndexError> {
        let tenant = tenant_key(tenant)?;
        if from_ms > to_ms || fingerprints.is_some_and(BTreeSet::is_empty) {
            return Ok(Vec::new());
        }
        let mut queries = Vec::new();
        for day in self.read_days(from_ms, to_ms) {
            let period = self.schema.period(day);
            // Only the shards the wanted series live in.
            let shards: BTreeSet<u32> = match fingerprints {
                Some(fps) => fps
                    .iter()
                    .map(|fp| encoding::shard_of(*fp, period.shards))
                    .collect(),
                None => (0..period.shards).collect(),
            };
            for shard in shards {
                queries.push(RowQuery {
                    table: period.table.clone(),
                    hash: encoding::objects_hash(&tenant, day, shard),
                    prefix: Vec::new(),
                });
            }
        }
        let tables: Vec<String> = queries.iter().map(|q| q.table.clone()).collect();
        let results = self.run_queries(queries).await?;

        struct Found {
            header: (u64, u32, i64, i64),
            series: BTreeMap<u64, u32>,
        }
        let mut found: BTreeMap<String, Found> = BTreeMap::new();
        for (table, items) in tables.iter().zip(results) {
            for item in items {
                let corrupt = |message: String| IndexError::corrupt(table, &item.hash, message);
                let key = encoding::decode_object_range(&item.range).map_err(corrupt)?;
                let part = encoding::decode_object(&item.value).map_err(corrupt)?;
                if part.min_time > to_ms || part.max_time < from_ms {
                    continue;
                }
                let header = (
                    part.index_offset,
                    part.index_len,
                    part.min_time,
                    part.max_time,
                );
                let entry = found.entry(key).or_insert_with(|| Found {
                    header,
                    series: BTreeMap::new(),
                });
                if entry.header != header {
                    return Err(corrupt(
                        "the same object is recorded with two different headers".to_string(),
                    ));
                }
                for (fp, digest) in part.series {
                    if fingerprints.is_none_or(|wanted| wanted.contains(&fp)) {
                        entry.series.insert(fp, digest);
                    }
                }
            }
        }
        Ok(found
            .into_iter()
            .filter(|(_, f)| !f.series.is_empty())
            .map(|(key, f)| ObjectEntry {
                key,
                index_offset: f.header.0,
                index_len: f.header.1,
                min_time: f.header.2,
                max_time: f.header.3,
                series: f.series.into_iter().collect(),
            })
            .collect())
    }

    /// Label names of the series with postings in the day buckets overlapping
    /// `[from_ms, to_ms]`: sorted, distinct, `__name__` included.
    pub async fn label_names(
        &self,
        tenant: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<String>, IndexError> {
        self.timed(
            "label_names",
            self.label_names_inner(tenant, from_ms, to_ms),
        )
        .await
    }

    async fn label_names_inner(
        &self,
        tenant: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<String>, IndexError> {
        let tenant = tenant_key(tenant)?;
        if from_ms > to_ms {
            return Ok(Vec::new());
        }
        let queries: Vec<RowQuery> = self
            .read_days(from_ms, to_ms)
            .map(|day| RowQuery {
                table: self.schema.period(day).table.clone(),
                hash: encoding::names_hash(&tenant, day),
                prefix: Vec::new(),
            })
            .collect();
        let tables: Vec<String> = queries.iter().map(|q| q.table.clone()).collect();
        let mut names = BTreeSet::new();
        for (table, items) in tables.iter().zip(self.run_queries(queries).await?) {
            for item in items {
                let name = String::from_utf8(item.range).map_err(|_| {
                    IndexError::corrupt(table, &item.hash, "label name is not UTF-8")
                })?;
                names.insert(name);
            }
        }
        Ok(names.into_iter().collect())
    }

    /// Values of label `name` among the series with postings in the day buckets overlapping
    /// `[from_ms, to_ms]`: sorted, distinct, never empty strings.
    pub async fn label_values(
        &self,
        tenant: &str,
        from_ms: i64,
        to_ms: i64,
        name: &str,
    ) -> Result<Vec<String>, IndexError> {
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
    ) -> Result<Vec<String>, IndexError> {
        let tenant = tenant_key(tenant)?;
        if from_ms > to_ms {
            return Ok(Vec::new());
        }
        let values: BTreeSet<String> = self
            .scan_postings(&tenant, &self.read_days(from_ms, to_ms), name, &Select::All)
            .await?
            .into_iter()
            .map(|(value, _)| value)
            .filter(|value| !value.is_empty())
            .collect();
        Ok(values.into_iter().collect())
    }
}
