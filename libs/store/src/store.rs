//! The long-term store: writes flushed chunks as packed objects plus index
//! entries, and reads them back for queries.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;
use strata_cache::{Cache, CacheMetrics, LruCache, MemcachedCache, MemcachedConfig, TieredCache};
use strata_chunk_store::{
    ChunkFetcher, ChunkRef, ChunkStoreMetrics, ChunkToWrite, FetchError, InstrumentedStore,
    LocalObjectStore, ObjectBuilder, ObjectIndex, ObjectStore, S3Config, S3ObjectStore,
};
use strata_index::{
    DynamoRowStore, EmbeddedRowStore, Index, IndexMetrics, NewObject, ObjectEntry, Partial,
    RowStore, WriteStats,
};
use strata_model::{Labels, Matcher};

use crate::cached_rows::CachedRows;
use crate::config::{ChunksBackend, ChunksConfig, IndexBackend, ReadLimits, StoreConfig};
use crate::error::StoreError;
use crate::parsed::ParsedIndexes;

/// Objects grow up to about this many bytes of chunk data; bigger flushes
/// are split.
const MAX_OBJECT_DATA: usize = 64 << 20;
/// Object indexes and index reads in flight for one query.
const READ_CONCURRENCY: usize = 16;

/// One chunk, as written and as read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreChunk {
    pub min_time: i64,
    pub max_time: i64,
    /// `strata_chunk` encoding number (1 = XOR).
    pub encoding: u8,
    pub data: Bytes,
}

/// A series read from the store: its labels and chunks sorted by time
/// (chunks of several objects may overlap: the querier merges them).
#[derive(Clone, Debug, PartialEq)]
pub struct StoreSeries {
    pub labels: Labels,
    pub chunks: Vec<StoreChunk>,
}

/// One series' chunks of one window, to write.
#[derive(Clone, Debug)]
pub struct WriteSeries {
    pub fingerprint: u64,
    pub labels: Labels,
    /// Digest of the chunks, identical across replicas that cut the same
    /// chunks; later replicas compare it before writing their own copy.
    pub digest: u32,
    pub chunks: Vec<StoreChunk>,
}

/// Chunks of one tenant and one aligned window.
#[derive(Clone, Debug)]
pub struct WriteBatch {
    pub tenant: String,
    pub window_start_ms: i64,
    pub window_end_ms: i64,
    pub series: Vec<WriteSeries>,
}

/// What the store itself counts (its parts export their own metrics).
#[derive(Clone, Default)]
pub struct StoreMetrics {
    pub objects_written: Counter,
    pub object_bytes_written: Counter,
    pub index_items_written: Counter,
    /// DynamoDB write units (1 per started KB of each item).
    pub index_write_units: Counter,
    pub index_bytes_written: Counter,
    pub chunks_read: Counter,
    pub chunk_bytes_read: Counter,
    pub chunk_cache_hits: Counter,
    pub corrupt_chunks: Counter,
}

/// Every metric of the store and its parts.
#[derive(Clone, Default)]
pub struct StoreMetricsSet {
    pub store: StoreMetrics,
    pub chunks: ChunkStoreMetrics,
    pub index: IndexMetrics,
    pub cache: CacheMetrics,
}

impl StoreMetricsSet {
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("strata_store");
        let m = &self.store;
        r.register(
            "objects_written",
            "Chunk objects written",
            m.objects_written.clone(),
        );
        r.register(
            "object_bytes_written",
            "Bytes of chunk objects written",
            m.object_bytes_written.clone(),
        );
        r.register(
            "index_items_written",
            "Index items written",
            m.index_items_written.clone(),
        );
        r.register(
            "index_write_units",
            "Index write units as DynamoDB bills them (1 per started KB of each item)",
            m.index_write_units.clone(),
        );
        r.register(
            "index_bytes_written",
            "Bytes of index items written",
            m.index_bytes_written.clone(),
        );
        r.register(
            "chunks_read",
            "Chunks read for queries",
            m.chunks_read.clone(),
        );
        r.register(
            "chunk_bytes_read",
            "Chunk bytes read for queries",
            m.chunk_bytes_read.clone(),
        );
        r.register(
            "chunk_cache_hits",
            "Chunks answered by the cache",
            m.chunk_cache_hits.clone(),
        );
        r.register(
            "corrupt_chunks",
            "Chunks that failed their checksum when read",
            m.corrupt_chunks.clone(),
        );
        self.chunks.register(registry);
        self.index.register(registry);
        self.cache.register(registry);
    }
}

/// Chunk objects, the index over them and the caches in front.
pub struct Store {
    objects: Arc<dyn ObjectStore>,
    fetcher: ChunkFetcher,
    index: Index,
    cache: Arc<dyn Cache>,
    /// The shared levels of `cache` only (memcached): what a writer fills
    /// for readers in other processes. Its own LRU is left to its reads.
    shared_cache: Arc<dyn Cache>,
    parsed: ParsedIndexes,
    writer: String,
    seq: AtomicU64,
    limits: ReadLimits,
    metrics: StoreMetrics,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("objects", &self.objects.kind())
            .field("index", &self.index)
            .field("writer", &self.writer)
            .finish()
    }
}

fn dir_or(configured: &str, data_dir: &Path, default: &str) -> std::path::PathBuf {
    if configured.is_empty() {
        data_dir.join(default)
    } else {
        std::path::PathBuf::from(configured)
    }
}

impl Store {
    /// Opens the configured backends (creating the local directories,
    /// the bucket and the tables when so configured). `writer` names this
    /// process in object keys, so two writers never pick the same key.
    pub async fn open(
        config: &StoreConfig,
        data_dir: &Path,
        writer: &str,
        metrics: &StoreMetricsSet,
    ) -> Result<Store, StoreError> {
        config
            .index
            .schema
            .validate()
            .map_err(|e| StoreError::Config(format!("storage.index.schema: {e}")))?;
        let objects = open_object_store(&config.chunks, data_dir).await?;
        let objects: Arc<dyn ObjectStore> =
            Arc::new(InstrumentedStore::new(objects, metrics.chunks.clone()));
        let rows: Arc<dyn RowStore> = match config.index.backend {
            IndexBackend::Embedded => {
                let dir = dir_or(&config.index.embedded.directory, data_dir, "index");
                std::fs::create_dir_all(&dir).map_err(|e| {
                    StoreError::Config(format!(
                        "cannot create index directory {}: {e}",
                        dir.display()
                    ))
                })?;
                let cache_bytes = config.index.embedded.cache_bytes;
                let opened = tokio::task::spawn_blocking(move || {
                    EmbeddedRowStore::open_with_cache(&dir, cache_bytes)
                })
                .await
                .map_err(|e| StoreError::Config(format!("opening the index failed: {e}")))?;
                Arc::new(opened.map_err(|e| {
                    StoreError::Config(format!("cannot open the embedded index: {e}"))
                })?)
            }
            IndexBackend::Dynamodb => {
                let d = &config.index.dynamodb;
                let aws = strata_aws::AwsConfig {
                    region: d.region.clone(),
                    endpoint_url: (!d.endpoint.is_empty()).then(|| d.endpoint.clone()),
                    ..strata_aws::AwsConfig::default()
                };
                Arc::new(DynamoRowStore::connect(&aws).await)
            }
        };
        let mut levels: Vec<Arc<dyn Cache>> = Vec::new();
        let mut shared_levels: Vec<Arc<dyn Cache>> = Vec::new();
        if config.cache.lru_bytes > 0 {
            levels.push(Arc::new(LruCache::new(
                "store-lru",
                config.cache.lru_bytes,
                metrics.cache.clone(),
            )));
        }
        let m = &config.cache.memcached;
        let mut rows = rows;
        if !m.addresses.is_empty() {
            let memcached = |name: &'static str| {
                MemcachedCache::new(
                    name,
                    MemcachedConfig {
                        addresses: m.addresses.clone(),
                        timeout: m.timeout,
                        ttl: m.ttl,
                        connections_per_server: m.connections_per_server.max(1),
                        ..MemcachedConfig::default()
                    },
                    metrics.cache.clone(),
                )
                .map_err(|e| StoreError::Config(format!("storage.cache.memcached: {e}")))
            };
            let shared: Arc<dyn Cache> = Arc::new(memcached("memcached")?);
            shared_levels.push(shared.clone());
            levels.push(shared);
            // Index queries through memcached alone: see cached_rows.rs.
            rows = Arc::new(CachedRows::new(
                rows,
                Arc::new(memcached("memcached-index")?),
            ));
        }
        let index = Index::new(rows, config.index.schema.clone(), metrics.index.clone())?;
        if config.index.backend == IndexBackend::Embedded || config.index.dynamodb.create_tables {
            index.ensure_tables().await?;
        }
        Ok(Store {
            fetcher: ChunkFetcher::new(objects.clone()).with_metrics(metrics.chunks.clone()),
            objects,
            index,
            cache: Arc::new(TieredCache::new(levels)),
            shared_cache: Arc::new(TieredCache::new(shared_levels)),
            parsed: ParsedIndexes::new(config.cache.parsed_index_bytes),
            writer: sanitize_writer(writer),
            seq: AtomicU64::new(0),
            limits: config.limits,
            metrics: metrics.store.clone(),
        })
    }

    /// A store over given parts (tests, tools).
    pub fn from_parts(
        objects: Arc<dyn ObjectStore>,
        index: Index,
        cache: Arc<dyn Cache>,
        writer: &str,
        limits: ReadLimits,
    ) -> Store {
        Store {
            fetcher: ChunkFetcher::new(objects.clone()),
            objects,
            index,
            shared_cache: cache.clone(),
            cache,
            parsed: ParsedIndexes::new(crate::config::DEFAULT_PARSED_INDEX_BYTES),
            writer: sanitize_writer(writer),
            seq: AtomicU64::new(0),
            limits,
            metrics: StoreMetrics::default(),
        }
    }

    pub fn index(&self) -> &Index {
        &self.index
    }

    pub fn objects(&self) -> &Arc<dyn ObjectStore> {
        &self.objects
    }

    fn next_key(&self, tenant: &str, window_start_ms: i64) -> String {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let day = window_start_ms.div_euclid(86_400_000);
        let now = strata_model::duration::now_ms();
        format!(
            "{tenant}/chunks/{day}/{window_start_ms}-{}-{now}-{seq}",
            self.writer
        )
    }

    /// Writes a batch: one object per ~64 MiB of chunk data, each PUT before
    /// its index entries, so an index entry never points at a missing
    /// object. Returns when everything is durable.
    pub async fn write(&self, batch: &WriteBatch) -> Result<(), StoreError> {
        let mut start = 0;
        while start < batch.series.len() {
            let mut builder = ObjectBuilder::new(&batch.tenant);
            let mut end = start;
            let mut min_time = i64::MAX;
            let mut max_time = i64::MIN;
            while end < batch.series.len() && (end == start || builder.data_len() < MAX_OBJECT_DATA)
            {
                let s = &batch.series[end];
                let chunks: Vec<ChunkToWrite> = s
                    .chunks
                    .iter()
                    .map(|c| ChunkToWrite {
                        min_time: c.min_time,
                        max_time: c.max_time,
                        encoding: c.encoding,
                        data: c.data.clone(),
                    })
                    .collect();
                for c in &s.chunks {
                    min_time = min_time.min(c.min_time);
                    max_time = max_time.max(c.max_time);
                }
                builder.add_series(s.fingerprint, &s.labels, s.digest, &chunks);
                end += 1;
            }
            let series_count = (end - start) as u64;
            start = end;
            if min_time > max_time {
                continue; // no chunks at all
            }
            let key = self.next_key(&batch.tenant, batch.window_start_ms);
            let built = builder.finish(&key);
            let body_len = built.body.len();
            retry("put chunk object", || {
                self.objects.put(&built.key, built.body.clone())
            })
            .await?;
            self.metrics.objects_written.inc();
            self.metrics.object_bytes_written.inc_by(body_len as u64);
            // The object's index, while we have it, for readers in other
            // processes (memcached); this process's LRU fills on its own
            // reads, so an ingester's memory does not grow with what it
            // flushes. Copied: a slice would keep the whole object body
            // alive in the cache while only the slice is counted.
            let index_start = built.index_offset as usize;
            let index_end = index_start.saturating_add(built.index_len as usize);
            let index_section =
                Bytes::copy_from_slice(built.body.get(index_start..index_end).unwrap_or_default());
            self.shared_cache
                .set_multi(vec![(object_index_key(&built.key), index_section)])
                .await;
            // Then the index: which labels and values the object holds.
            let stats = self
                .index
                .add_object(
                    &batch.tenant,
                    &NewObject {
                        key: &key,
                        index_offset: built.index_offset,
                        index_len: built.index_len,
                        min_time,
                        max_time,
                        series_count,
                        label_values: &built.label_values,
                    },
                )
                .await?;
            self.count_writes(stats);
        }
        Ok(())
    }

    fn count_writes(&self, stats: WriteStats) {
        self.metrics.index_items_written.inc_by(stats.items);
        self.metrics.index_write_units.inc_by(stats.write_units);
        self.metrics.index_bytes_written.inc_by(stats.bytes);
    }

    /// Of these (fingerprint, digest) pairs, the fingerprints whose chunks
    /// with that digest are stored for the window `[from_ms, to_ms)`.
    pub async fn stored(
        &self,
        tenant: &str,
        from_ms: i64,
        to_ms: i64,
        series: &[(u64, u32)],
    ) -> Result<HashSet<u64>, StoreError> {
        if series.is_empty() {
            return Ok(HashSet::new());
        }
        let objects: Vec<ObjectEntry> = self
            .index
            .objects(tenant, from_ms, to_ms.saturating_sub(1))
            .await?
            .into_iter()
            .filter(|o| o.min_time >= from_ms && o.max_time < to_ms)
            .collect();
        let mut out = HashSet::new();
        for index in self.object_indexes(&objects).await? {
            for &(fp, digest) in series {
                if index.find(fp).any(|i| index.digest(i) == digest) {
                    out.insert(fp);
                }
            }
        }
        Ok(out)
    }

    /// The object index of each object: parsed and kept in memory, or from
    /// the cache (in-process LRU, memcached) or the object itself.
    async fn object_indexes(
        &self,
        objects: &[ObjectEntry],
    ) -> Result<Vec<Arc<ObjectIndex>>, StoreError> {
        let mut out: Vec<Option<Arc<ObjectIndex>>> =
            objects.iter().map(|o| self.parsed.get(&o.key)).collect();
        let missing: Vec<usize> = (0..objects.len()).filter(|i| out[*i].is_none()).collect();
        if missing.is_empty() {
            return Ok(out.into_iter().flatten().collect());
        }
        let keys: Vec<String> = missing
            .iter()
            .map(|i| object_index_key(&objects[*i].key))
            .collect();
        let cached = self.cache.get_multi(&keys).await;
        let jobs: Vec<(usize, String, u64, u32, String, Option<Bytes>)> = missing
            .iter()
            .zip(keys)
            .map(|(i, ck)| {
                let o = &objects[*i];
                let hit = cached.get(&ck).cloned();
                (*i, o.key.clone(), o.index_offset, o.index_len, ck, hit)
            })
            .collect();
        let store = self.objects.clone();
        let mut reads =
            futures::stream::iter(jobs.into_iter().map(move |(i, key, offset, len, ck, hit)| {
                let store = store.clone();
                async move {
                    let (section, from_cache) = match hit {
                        Some(b) => (b, true),
                        None => (
                            retry("read object index", || {
                                store.get_range(&key, offset, u64::from(len))
                            })
                            .await?,
                            false,
                        ),
                    };
                    let parsed = parse_index(key, section.clone(), offset).await?;
                    Ok::<_, StoreError>((i, parsed, (!from_cache).then_some((ck, section))))
                }
            }))
            .buffered(READ_CONCURRENCY);
        let mut fills: Vec<(String, Bytes)> = Vec::new();
        while let Some(r) = reads.next().await {
            let (i, index, fill) = r?;
            self.parsed.insert(&objects[i].key, index.clone());
            out[i] = Some(index);
            if let Some(f) = fill {
                fills.push(f);
            }
        }
        drop(reads);
        if !fills.is_empty() {
            self.cache.set_multi(fills).await;
        }
        Ok(out.into_iter().flatten().collect())
    }

    /// Every stored chunk ref of the series matching all matchers that
    /// overlaps `[from, to]`, grouped by series.
    async fn refs(
        &self,
        tenant: &str,
        matchers: &[Matcher],
        from_ms: i64,
        to_ms: i64,
    ) -> Result<BTreeMap<Labels, Vec<ChunkRef>>, StoreError> {
        let objects = self
            .index
            .candidates(tenant, from_ms, to_ms, matchers)
            .await?;
        let indexes = self.object_indexes(&objects).await?;
        let mut out: BTreeMap<Labels, Vec<ChunkRef>> = BTreeMap::new();
        for index in indexes {
            for i in index.select(matchers) {
                let refs = index.chunks_overlapping(i, from_ms, to_ms);
                if !refs.is_empty() {
                    out.entry(index.labels(i)).or_default().extend(refs);
                }
            }
        }
        Ok(out)
    }

    /// Series matching all matchers with chunks overlapping `[from, to]`,
    /// sorted by labels, with those chunks (sorted by time; identical
    /// chunks of several objects once). A chunk that fails its checksum is
    /// replaced by an identical-span chunk of another object when there is
    /// one; otherwise the read fails naming the object.
    pub async fn select(
        &self,
        tenant: &str,
        matchers: &[Matcher],
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<StoreSeries>, StoreError> {
        let refs = self.refs(tenant, matchers, from_ms, to_ms).await?;
        let total: usize = refs.values().map(Vec::len).sum();
        let bytes: usize = refs
            .values()
            .flat_map(|r| r.iter())
            .map(|c| c.len as usize)
            .sum();
        if self.limits.max_chunks_per_query > 0 && total > self.limits.max_chunks_per_query {
            return Err(StoreError::TooManyChunks {
                limit: self.limits.max_chunks_per_query,
            });
        }
        if self.limits.max_chunk_bytes_per_query > 0
            && bytes > self.limits.max_chunk_bytes_per_query
        {
            return Err(StoreError::TooManyBytes {
                limit: self.limits.max_chunk_bytes_per_query,
            });
        }
        let flat: Vec<(&Labels, &ChunkRef)> = refs
            .iter()
            .flat_map(|(l, rs)| rs.iter().map(move |r| (l, r)))
            .collect();
        let keys: Vec<String> = flat.iter().map(|(_, r)| chunk_key(r)).collect();
        let cached = self.cache.get_multi(&keys).await;
        let mut data: Vec<Option<Result<Bytes, FetchError>>> = keys
            .iter()
            .map(|k| cached.get(k).cloned().map(Ok))
            .collect();
        self.metrics.chunk_cache_hits.inc_by(cached.len() as u64);
        let missing: Vec<usize> = (0..flat.len()).filter(|i| data[*i].is_none()).collect();
        if !missing.is_empty() {
            let to_fetch: Vec<ChunkRef> = missing.iter().map(|i| flat[*i].1.clone()).collect();
            let fetched = self.fetcher.fetch(&to_fetch).await;
            let mut fills = Vec::new();
            for (i, r) in missing.iter().zip(fetched) {
                if let Ok(b) = &r {
                    fills.push((keys[*i].clone(), b.clone()));
                }
                data[*i] = Some(r);
            }
            self.cache.set_multi(fills).await;
        }
        let mut out: BTreeMap<&Labels, Vec<StoreChunk>> = BTreeMap::new();
        let mut failed: Vec<(usize, FetchError)> = Vec::new();
        for (i, d) in data.into_iter().enumerate() {
            let (labels, r) = flat[i];
            match d {
                Some(Ok(bytes)) => {
                    self.metrics.chunks_read.inc();
                    self.metrics.chunk_bytes_read.inc_by(bytes.len() as u64);
                    out.entry(labels).or_default().push(StoreChunk {
                        min_time: r.min_time,
                        max_time: r.max_time,
                        encoding: r.encoding,
                        data: bytes,
                    });
                }
                Some(Err(e)) => failed.push((i, e)),
                None => {}
            }
        }
        for (i, e) in failed {
            let (labels, r) = flat[i];
            // Another object holding the same span of the series covers it.
            let covered = out.get(labels).is_some_and(|chunks| {
                chunks
                    .iter()
                    .any(|c| c.min_time == r.min_time && c.max_time == r.max_time)
            });
            if covered {
                continue;
            }
            return Err(match e {
                FetchError::Corrupt { object, offset } => {
                    self.metrics.corrupt_chunks.inc();
                    StoreError::Corrupt {
                        object,
                        detail: format!(
                            "chunk at offset {offset} of series {labels} failed its checksum"
                        ),
                    }
                }
                other => StoreError::Fetch(format!("series {labels}: {other}")),
            });
        }
        Ok(out
            .into_iter()
            .map(|(labels, mut chunks)| {
                chunks.sort_by_key(|c| (c.min_time, c.max_time));
                chunks.dedup();
                StoreSeries {
                    labels: labels.clone(),
                    chunks,
                }
            })
            .collect())
    }

    /// Label sets of the series matching all matchers with chunks in
    /// `[from, to]`, sorted. Reads no chunk data.
    pub async fn series(
        &self,
        tenant: &str,
        matchers: &[Matcher],
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<Labels>, StoreError> {
        Ok(self
            .refs(tenant, matchers, from_ms, to_ms)
            .await?
            .into_keys()
            .collect())
    }

    /// Label names of the series matching all matchers (all names of the
    /// days overlapping the range when there are none), sorted.
    pub async fn label_names(
        &self,
        tenant: &str,
        matchers: &[Matcher],
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<String>, StoreError> {
        if matchers.is_empty() {
            let partial = self.index.label_names(tenant, from_ms, to_ms).await?;
            return self
                .resolve(partial, |index| {
                    index
                        .label_names()
                        .into_iter()
                        .map(str::to_string)
                        .collect()
                })
                .await;
        }
        let names: BTreeSet<String> = self
            .series(tenant, matchers, from_ms, to_ms)
            .await?
            .iter()
            .flat_map(|l| l.iter().map(|l| l.name.to_string()).collect::<Vec<_>>())
            .collect();
        Ok(names.into_iter().collect())
    }

    /// Values of label `name` among the series matching all matchers (all
    /// of the days overlapping the range when there are none), sorted.
    pub async fn label_values(
        &self,
        tenant: &str,
        name: &str,
        matchers: &[Matcher],
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<String>, StoreError> {
        if matchers.is_empty() {
            let partial = self
                .index
                .label_values(tenant, from_ms, to_ms, name)
                .await?;
            return self
                .resolve(partial, |index| {
                    index
                        .label_values(name)
                        .into_iter()
                        .map(str::to_string)
                        .collect()
                })
                .await;
        }
        let values: BTreeSet<String> = self
            .series(tenant, matchers, from_ms, to_ms)
            .await?
            .iter()
            .filter_map(|l| l.get(name).map(str::to_string))
            .collect();
        Ok(values.into_iter().collect())
    }

    /// Completes an answer the index gave in part from the object indexes of
    /// the objects it could not answer for.
    async fn resolve(
        &self,
        partial: Partial,
        read: impl Fn(&ObjectIndex) -> Vec<String>,
    ) -> Result<Vec<String>, StoreError> {
        let mut values = partial.values;
        for index in self.object_indexes(&partial.unresolved).await? {
            values.extend(read(&index));
        }
        values.remove("");
        Ok(values.into_iter().collect())
    }
}

/// Object keys carry the writer's name; keep it to characters that are safe
/// in every object store.
fn sanitize_writer(writer: &str) -> String {
    let s: String = writer
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() {
        "writer".into()
    } else {
        s
    }
}

/// Parses an object's index section; big sections on the blocking pool
/// (parsing 50 000 series takes milliseconds).
async fn parse_index(
    key: String,
    section: Bytes,
    offset: u64,
) -> Result<Arc<ObjectIndex>, StoreError> {
    let small = section.len() <= 64 * 1024;
    let parse = move || {
        ObjectIndex::parse_at(&key, &section, offset)
            .map(Arc::new)
            .map_err(|e| StoreError::Corrupt {
                object: key.clone(),
                detail: format!("object index: {e}"),
            })
    };
    if small {
        return parse();
    }
    tokio::task::spawn_blocking(parse)
        .await
        .map_err(|e| StoreError::Fetch(format!("parsing an object index failed: {e}")))?
}

fn object_index_key(object: &str) -> String {
    strata_cache::cache_key(&[b"oi", object.as_bytes()])
}

fn chunk_key(r: &ChunkRef) -> String {
    strata_cache::cache_key(&[b"c", r.object.as_bytes(), &r.offset.to_le_bytes()])
}

/// Retries a store call with exponential backoff and jitter (3 attempts);
/// a missing object is not retried.
async fn retry<T, F, Fut>(what: &str, mut call: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, strata_chunk_store::StoreError>>,
{
    let mut delay = Duration::from_millis(100);
    let mut attempt = 1;
    loop {
        match call().await {
            Ok(v) => return Ok(v),
            Err(e) if attempt >= 3 || e.is_not_found() => return Err(StoreError::Objects(e)),
            Err(e) => {
                let jitter = rand::random_range(0..=delay.as_millis() as u64 / 2);
                tracing::debug!(attempt, error = %e, "{what} failed; retrying");
                tokio::time::sleep(delay + Duration::from_millis(jitter)).await;
                delay *= 2;
                attempt += 1;
            }
        }
    }
}

/// The object store `config` names (a local directory, default
/// `<data_dir>/chunks`, or an S3 bucket), as chunks use it; the ruler keeps
/// its rule groups in the same kind of store.
pub async fn open_object_store(
    config: &ChunksConfig,
    data_dir: &Path,
) -> Result<Arc<dyn ObjectStore>, StoreError> {
    Ok(match config.backend {
        ChunksBackend::Local => {
            let dir = dir_or(&config.local.directory, data_dir, "chunks");
            Arc::new(LocalObjectStore::new(&dir).map_err(|e| {
                StoreError::Config(format!(
                    "cannot use {} for chunk objects (storage.chunks.local.directory): {e}",
                    dir.display()
                ))
            })?)
        }
        ChunksBackend::S3 => {
            let s = &config.s3;
            if s.bucket.is_empty() {
                return Err(StoreError::Config(
                    "storage.chunks.s3.bucket is empty; name the bucket for chunk objects".into(),
                ));
            }
            let s3 = S3Config {
                bucket: s.bucket.clone(),
                endpoint: s.endpoint.clone(),
                region: s.region.clone(),
                force_path_style: s.force_path_style,
                create_bucket: s.create_bucket,
                access_key_id: (!s.access_key_id.is_empty()).then(|| s.access_key_id.clone()),
                secret_access_key: (!s.secret_access_key.is_empty())
                    .then(|| s.secret_access_key.clone()),
                ..S3Config::default()
            };
            Arc::new(S3ObjectStore::connect(&s3).await.map_err(|e| {
                StoreError::Config(format!("cannot use S3 bucket {}: {e}", s.bucket))
            })?)
        }
    })
}
