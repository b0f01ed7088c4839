use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;
use strata_model::{Label, Labels, Matcher, METRIC_NAME};

use crate::index::{Index, SeriesId};
use crate::series::{ChunkData, Series};

/// Series visited per short read lock by the maintenance passes.
const BATCH: usize = 4096;

/// Samples and chunks of one series returned by a query.
#[derive(Clone, Debug)]
pub struct QueriedSeries {
    pub labels: Labels,
    pub chunks: Vec<ChunkData>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct TenantStats {
    pub series: u64,
    pub samples_appended: u64,
    /// Samples per second over the last rate interval.
    pub ingestion_rate: f64,
}

/// The latest metadata of one metric family.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FamilyMetadata {
    /// `prometheus.MetricMetadata.MetricType` wire value.
    pub metric_type: i32,
    pub help: String,
    pub unit: String,
}

/// Why a new series could not be created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CreateError {
    TenantLimit(usize),
    MetricLimit(usize),
    /// 2^32 series were created for the tenant since the process started.
    IdsExhausted,
}

/// Keys of fingerprint maps are XXH3 hashes already; hashing them again
/// (SipHash by default) only costs time.
type FingerprintHash = std::hash::BuildHasherDefault<FingerprintHasher>;

#[derive(Default)]
struct FingerprintHasher(u64);

impl std::hash::Hasher for FingerprintHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only u64 keys are hashed here; fold anything else in anyway.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u64(&mut self, fp: u64) {
        self.0 = fp;
    }

    /// Series IDs are small sequential integers, not hashes: spread them
    /// over all 64 bits (Fibonacci hashing), or the map's buckets and control
    /// bytes collide and every lookup scans.
    fn write_u32(&mut self, id: u32) {
        self.0 = u64::from(id).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

#[derive(Default)]
struct TenantState {
    /// Series by their stable ID.
    series: HashMap<SeriesId, Arc<Series>, FingerprintHash>,
    /// The ID the next new series gets (IDs are never reused).
    next_id: SeriesId,
    /// Fingerprint → series (held directly rather than by ID: one memory
    /// access less on every sample's lookup). Fingerprints that collide
    /// keep the extra series in `collisions`.
    by_fingerprint: HashMap<u64, Arc<Series>, FingerprintHash>,
    collisions: HashMap<u64, Vec<Arc<Series>>, FingerprintHash>,
    per_metric: HashMap<Arc<str>, usize>,
    index: Index,
}

impl TenantState {
    fn lookup(&self, fp: u64, labels: &[(&str, &str)]) -> Option<&Arc<Series>> {
        let first = self.by_fingerprint.get(&fp)?;
        if first.labels_equal(labels) {
            return Some(first);
        }
        self.collisions
            .get(&fp)?
            .iter()
            .find(|s| s.labels_equal(labels))
    }

    /// Takes a series out of every map, the index and the per-metric count.
    fn remove(&mut self, series: &Arc<Series>) {
        if self.series.remove(&series.id).is_none() {
            return;
        }
        self.index.remove(series.id, &series.labels);
        let fp = series.fingerprint;
        let first_is_it = self
            .by_fingerprint
            .get(&fp)
            .is_some_and(|s| Arc::ptr_eq(s, series));
        if first_is_it {
            self.by_fingerprint.remove(&fp);
            // Promote a colliding series, if any.
            if let Some(rest) = self.collisions.get_mut(&fp) {
                if let Some(next) = rest.pop() {
                    self.by_fingerprint.insert(fp, next);
                }
                if rest.is_empty() {
                    self.collisions.remove(&fp);
                }
            }
        } else if let Some(rest) = self.collisions.get_mut(&fp) {
            rest.retain(|s| !Arc::ptr_eq(s, series));
            if rest.is_empty() {
                self.collisions.remove(&fp);
            }
        }
        let metric = series
            .labels
            .iter()
            .find(|(n, _)| &**n == METRIC_NAME)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| Arc::from(""));
        if let Some(count) = self.per_metric.get_mut(&metric) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.per_metric.remove(&metric);
            }
        }
    }
}

/// What [`TenantDb::release`] did and found.
#[derive(Debug, Default)]
pub(crate) struct Released {
    pub(crate) chunks_dropped: usize,
    pub(crate) series_removed: usize,
    /// Bytes of closed chunks still waiting to be flushed.
    pub(crate) unflushed_bytes: usize,
    /// Window end of the oldest of them.
    pub(crate) oldest_unflushed: Option<i64>,
}

/// A closed chunk set of one series waiting to be flushed.
pub(crate) struct PendingFlush {
    pub(crate) series: Arc<Series>,
    pub(crate) labels: Labels,
    pub(crate) chunks: Vec<ChunkData>,
    /// This ingester's position among the series' replicas (0 = first).
    pub(crate) rank: usize,
}

/// Everything one ingester holds for one tenant.
pub struct TenantDb {
    id: String,
    state: RwLock<TenantState>,
    samples_appended: AtomicU64,
    rate: parking_lot::Mutex<RateState>,
    /// Metric family name → its latest metadata, sorted by name.
    metadata: RwLock<BTreeMap<String, FamilyMetadata>>,
    pub(crate) exemplars: crate::exemplars::ExemplarStore,
}

struct RateState {
    last_total: u64,
    rate: f64,
}

impl TenantDb {
    pub(crate) fn new(id: &str) -> Self {
        Self {
            id: id.to_string(),
            state: RwLock::new(TenantState::default()),
            samples_appended: AtomicU64::new(0),
            rate: parking_lot::Mutex::new(RateState {
                last_total: 0,
                rate: 0.0,
            }),
            metadata: RwLock::new(BTreeMap::new()),
            exemplars: Default::default(),
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn series_count(&self) -> usize {
        self.state.read().series.len()
    }

    pub(crate) fn add_appended(&self, n: u64) {
        self.samples_appended.fetch_add(n, Ordering::Relaxed);
    }

    /// Updates the ingestion rate; `secs` is the time since the last call.
    pub(crate) fn tick_rate(&self, secs: f64) {
        let total = self.samples_appended.load(Ordering::Relaxed);
        let mut r = self.rate.lock();
        let instant = (total - r.last_total) as f64 / secs.max(1e-3);
        // Exponentially weighted so one quiet interval does not zero it.
        r.rate = if r.last_total == 0 && r.rate == 0.0 {
            instant
        } else {
            0.8 * instant + 0.2 * r.rate
        };
        r.last_total = total;
    }

    pub fn stats(&self) -> TenantStats {
        TenantStats {
            series: self.series_count() as u64,
            samples_appended: self.samples_appended.load(Ordering::Relaxed),
            ingestion_rate: self.rate.lock().rate,
        }
    }

    /// Records the latest metadata of a metric family. A family not seen
    /// before is refused (returns false) when the tenant already holds
    /// `limit` families (0 = unlimited); known families are always updated.
    pub fn set_metadata(&self, family: &str, metadata: FamilyMetadata, limit: usize) -> bool {
        if let Some(current) = self.metadata.read().get(family) {
            if *current == metadata {
                return true;
            }
        }
        let mut all = self.metadata.write();
        if let Some(current) = all.get_mut(family) {
            *current = metadata;
            return true;
        }
        if limit > 0 && all.len() >= limit {
            return false;
        }
        all.insert(family.to_string(), metadata);
        true
    }

    /// Metadata of `family` (or of every family when `None`), sorted by
    /// name, at most `limit` families (0 = all).
    pub fn metadata(&self, family: Option<&str>, limit: usize) -> Vec<(String, FamilyMetadata)> {
        let all = self.metadata.read();
        let take = if limit == 0 { usize::MAX } else { limit };
        match family {
            Some(name) => all
                .get_key_value(name)
                .map(|(k, v)| (k.clone(), v.clone()))
                .into_iter()
                .take(take)
                .collect(),
            None => all
                .iter()
                .take(take)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }

    /// Number of metric families with metadata.
    pub fn metadata_count(&self) -> usize {
        self.metadata.read().len()
    }

    /// Calls `f` on every series, in batches of IDs taken under short read
    /// locks, so pushes that create series wait for one batch at most,
    /// never for the whole tenant. Series created or removed meanwhile may
    /// or may not be visited.
    pub(crate) fn for_each_series(&self, mut f: impl FnMut(&Arc<Series>)) -> usize {
        let mut visited = 0;
        let mut after: Option<SeriesId> = None;
        loop {
            let batch: Vec<Arc<Series>> = {
                let state = self.state.read();
                let ids = state.index.ids_after(after, BATCH);
                ids.iter()
                    .filter_map(|id| state.series.get(id).cloned())
                    .collect()
            };
            let Some(last) = batch.last() else { break };
            after = Some(last.id);
            visited += batch.len();
            for series in &batch {
                f(series);
            }
        }
        visited
    }

    /// Closes the open chunk of every series whose aligned window is over
    /// by the wall clock `now_ms`; returns (series checked, chunks closed,
    /// bytes closed).
    pub(crate) fn cut_finished_heads(&self, now_ms: i64, window_ms: i64) -> (usize, usize, usize) {
        let mut cut = 0;
        let mut bytes = 0;
        let checked = self.for_each_series(|series| {
            let b = series
                .data
                .lock()
                .cut_head_if_window_over(now_ms, window_ms);
            if b > 0 {
                cut += 1;
                bytes += b;
            }
        });
        (checked, cut, bytes)
    }

    /// Closes every open chunk (flush everything); returns (chunks, bytes).
    pub(crate) fn cut_all_heads(&self, now_ms: i64) -> (usize, usize) {
        let mut cut = 0;
        let mut bytes = 0;
        self.for_each_series(|series| {
            let b = series.data.lock().force_cut(now_ms);
            if b > 0 {
                cut += 1;
                bytes += b;
            }
        });
        (cut, bytes)
    }

    /// Closed, unflushed chunks due at `now_ms` (`i64::MAX`: all, rank
    /// ignored): `delay_ms` after their window, plus `rank(series) ×
    /// takeover_ms` (this replica's turn).
    pub(crate) fn pending_flushes(
        &self,
        window_ms: i64,
        now_ms: i64,
        (delay_ms, takeover_ms): (i64, i64),
        rank: impl Fn(&Series) -> usize,
    ) -> Vec<PendingFlush> {
        let mut out = Vec::new();
        self.for_each_series(|series| {
            let rank = if now_ms == i64::MAX { 0 } else { rank(series) };
            let wait_ms = (rank as i64).saturating_mul(takeover_ms);
            let chunks = series
                .data
                .lock()
                .unflushed(window_ms, now_ms, delay_ms, wait_ms);
            if !chunks.is_empty() {
                out.push(PendingFlush {
                    series: series.clone(),
                    labels: to_labels(series),
                    chunks,
                    rank,
                });
            }
        });
        out
    }

    /// Drops chunks flushed at or before `flushed_before`, then removes
    /// series that hold nothing and got no sample since `idle_since`; in the
    /// same pass, measures what is still waiting to be flushed.
    pub(crate) fn release(&self, flushed_before: i64, idle_since: i64, window_ms: i64) -> Released {
        let mut out = Released::default();
        let mut idle: Vec<Arc<Series>> = Vec::new();
        self.for_each_series(|series| {
            let mut data = series.data.lock();
            out.chunks_dropped += data.drop_flushed(flushed_before);
            out.unflushed_bytes += data.unflushed_bytes();
            if let Some(end) = data.oldest_unflushed(window_ms) {
                out.oldest_unflushed = Some(out.oldest_unflushed.map_or(end, |o| o.min(end)));
            }
            if data.is_removable(idle_since) {
                idle.push(series.clone());
            }
        });
        for batch in idle.chunks(BATCH) {
            let mut state = self.state.write();
            for series in batch {
                // Checked again under the series lock while the tenant is
                // locked for writing: no push can find the series now, and
                // one that found it earlier sees `removed` and looks again.
                let mut data = series.data.lock();
                if data.removed || !data.is_removable(idle_since) {
                    continue;
                }
                data.removed = true;
                drop(data);
                state.remove(series);
                out.series_removed += 1;
            }
        }
        out
    }

    /// Finds the series with exactly these (sorted) labels.
    pub(crate) fn get(&self, fp: u64, labels: &[(&str, &str)]) -> Option<Arc<Series>> {
        self.state.read().lookup(fp, labels).cloned()
    }

    /// Finds or creates the series; `admit` is asked before creating and may
    /// refuse (the instance-wide series limit).
    pub(crate) fn get_or_create<E>(
        &self,
        fp: u64,
        labels: &[(&str, &str)],
        limits: &crate::Limits,
        admit: impl FnOnce() -> Result<(), E>,
    ) -> Result<Result<Arc<Series>, CreateError>, E> {
        if let Some(s) = self.get(fp, labels) {
            return Ok(Ok(s));
        }
        let mut state = self.state.write();
        if let Some(s) = state.lookup(fp, labels) {
            return Ok(Ok(s.clone()));
        }
        if limits.max_series_per_tenant > 0 && state.series.len() >= limits.max_series_per_tenant {
            return Ok(Err(CreateError::TenantLimit(limits.max_series_per_tenant)));
        }
        let metric = labels
            .iter()
            .find(|(n, _)| *n == METRIC_NAME)
            .map(|(_, v)| *v)
            .unwrap_or("");
        let metric_count = state.per_metric.get(metric).copied().unwrap_or(0);
        if limits.max_series_per_metric > 0 && metric_count >= limits.max_series_per_metric {
            return Ok(Err(CreateError::MetricLimit(limits.max_series_per_metric)));
        }
        admit()?;
        let interned: Box<[(Arc<str>, Arc<str>)]> = labels
            .iter()
            .map(|(n, v)| state.index.intern(n, v))
            .collect();
        let metric_key = interned
            .iter()
            .find(|(n, _)| &**n == METRIC_NAME)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| Arc::from(""));
        let id = state.next_id;
        let Some(next) = id.checked_add(1) else {
            return Ok(Err(CreateError::IdsExhausted));
        };
        state.next_id = next;
        state.index.add(id, &interned);
        let series = Arc::new(Series::new(id, fp, interned));
        state.series.insert(id, series.clone());
        *state.per_metric.entry(metric_key).or_insert(0) += 1;
        match state.by_fingerprint.entry(fp) {
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(series.clone());
            }
            std::collections::hash_map::Entry::Occupied(_) => {
                state.collisions.entry(fp).or_default().push(series.clone());
            }
        }
        Ok(Ok(series))
    }

    fn select(&self, matchers: &[Matcher]) -> Vec<Arc<Series>> {
        let state = self.state.read();
        let ids = state.index.select(matchers);
        ids.into_iter()
            .filter_map(|id| state.series.get(&id).cloned())
            .collect()
    }

    /// Series matching all matchers with samples in `[start, end]`, with the
    /// chunks that cover that range.
    pub fn query(&self, matchers: &[Matcher], start: i64, end: i64) -> Vec<QueriedSeries> {
        self.select(matchers)
            .into_iter()
            .filter_map(|s| {
                let chunks = s.data.lock().chunks_in(start, end);
                if chunks.is_empty() {
                    return None;
                }
                Some(QueriedSeries {
                    labels: to_labels(&s),
                    chunks,
                })
            })
            .collect()
    }

    /// Label sets of the series matching all matchers with samples in
    /// `[start, end]`, sorted, at most `limit` (0 = all).
    pub fn series(&self, matchers: &[Matcher], start: i64, end: i64, limit: usize) -> Vec<Labels> {
        let mut out: Vec<Labels> = self
            .select(matchers)
            .into_iter()
            .filter(|s| s.data.lock().overlaps(start, end))
            .map(|s| to_labels(&s))
            .collect();
        out.sort();
        if limit > 0 {
            out.truncate(limit);
        }
        out
    }

    pub fn label_names(&self, matchers: &[Matcher], start: i64, end: i64) -> Vec<String> {
        if matchers.is_empty() {
            return self.state.read().index.label_names();
        }
        let mut names: Vec<String> = self
            .select(matchers)
            .into_iter()
            .filter(|s| s.data.lock().overlaps(start, end))
            .flat_map(|s| {
                s.labels
                    .iter()
                    .map(|(n, _)| n.to_string())
                    .collect::<Vec<_>>()
            })
            .collect();
        names.sort();
        names.dedup();
        names
    }

    pub fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        start: i64,
        end: i64,
    ) -> Vec<String> {
        if matchers.is_empty() {
            return self.state.read().index.label_values(name);
        }
        let mut values: Vec<String> = self
            .select(matchers)
            .into_iter()
            .filter(|s| s.data.lock().overlaps(start, end))
            .filter_map(|s| {
                s.labels
                    .iter()
                    .find(|(n, _)| &**n == name)
                    .map(|(_, v)| v.to_string())
            })
            .collect();
        values.sort();
        values.dedup();
        values
    }
}

fn to_labels(s: &Series) -> Labels {
    Labels::from_sorted(
        s.labels
            .iter()
            .map(|(n, v)| Label::new(n.as_ref(), v.as_ref()))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Limits;

    #[test]
    fn colliding_fingerprints_keep_series_apart() {
        let db = TenantDb::new("t");
        let limits = Limits::default();
        let a = [("__name__", "a")];
        let b = [("__name__", "b")];
        // Force the same fingerprint for two different label sets.
        let sa = db
            .get_or_create(42, &a, &limits, || Ok::<(), ()>(()))
            .unwrap()
            .unwrap();
        let sb = db
            .get_or_create(42, &b, &limits, || Ok::<(), ()>(()))
            .unwrap()
            .unwrap();
        assert!(!Arc::ptr_eq(&sa, &sb));
        assert!(Arc::ptr_eq(&db.get(42, &a).unwrap(), &sa));
        assert!(Arc::ptr_eq(&db.get(42, &b).unwrap(), &sb));
        assert!(db.get(42, &[("__name__", "c")]).is_none());
        assert_eq!(db.series_count(), 2);
    }
}
