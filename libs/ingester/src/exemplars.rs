//! Exemplars: per-tenant, fixed-capacity, in-memory storage shaped like
//! Prometheus's circular exemplar storage.
//!
//! Each tenant holds at most `ingester.max_exemplars` exemplars (0 turns
//! storage off). They live in one ring buffer in arrival order; once it is
//! full every new exemplar overwrites the oldest one of the tenant, so
//! memory is bounded by the capacity whatever the senders do. The
//! exemplars of one series are chained through the buffer oldest to
//! newest, and a series entry (labels shared with the ingester's series)
//! exists only while at least one of its exemplars is in the buffer.
//!
//! Appending follows Prometheus: an exemplar identical to the newest one
//! of its series (same labels, value and timestamp) is a no-op; one older
//! than that newest exemplar is refused as out of order (at the same
//! timestamp, a smaller value, or equal value and smaller labels, count as
//! older). Exemplars need their series to exist in the ingester: they are
//! stored after the samples of the same request, and those of an unknown
//! series are dropped. Refusals never fail a push; they are counted in
//! `strata_ingester_exemplars_rejected_total{reason}`.

use std::collections::HashMap;

use parking_lot::RwLock;
use strata_model::{fingerprint, Label, Labels, Matcher};
use strata_proto::ingester::ExemplarQueryResponse;
use strata_proto::prometheus::{Exemplar as PbExemplar, TimeSeries};
use strata_remote_write::{ExemplarView, WriteRequestRef};
use thiserror::Error;

use crate::metrics::ReasonLabel;
use crate::series::LabelPair;
use crate::{Ingester, IngesterMetrics, TenantDb};

/// Longest exemplar label set, counted in characters of names and values
/// together (Prometheus's `ExemplarMaxLabelSetLength`).
pub const MAX_EXEMPLAR_LABEL_RUNES: usize = 128;

/// Largest capacity honoured; buffer positions are `u32`.
const MAX_CAPACITY: usize = (u32::MAX - 1) as usize;

/// "No entry" in the buffer's links.
const NONE: u32 = u32::MAX;

pub use strata_model::{Exemplar, SeriesExemplars};

/// Why an exemplar was not stored.
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
pub enum ExemplarError {
    #[error("exemplar storage is disabled (ingester.max_exemplars is 0)")]
    Disabled,
    #[error("exemplar has no label with a non-empty name and value")]
    LabelsMissing,
    #[error("exemplar labels are longer than {MAX_EXEMPLAR_LABEL_RUNES} characters in total")]
    LabelsTooLong,
    #[error("exemplar has no timestamp")]
    TimestampMissing,
    #[error("exemplar is older than the newest exemplar of its series")]
    OutOfOrder,
    #[error("exemplar belongs to a series the ingester does not hold")]
    SeriesMissing,
}

impl ExemplarError {
    /// Short reason for metrics.
    pub fn reason(self) -> &'static str {
        match self {
            ExemplarError::Disabled => "exemplars_disabled",
            ExemplarError::LabelsMissing => "exemplar_labels_missing",
            ExemplarError::LabelsTooLong => "exemplar_labels_too_long",
            ExemplarError::TimestampMissing => "exemplar_timestamp_invalid",
            ExemplarError::OutOfOrder => "exemplar_out_of_order",
            ExemplarError::SeriesMissing => "exemplar_series_missing",
        }
    }
}

/// What a successful append did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Appended {
    /// Stored; `grew` when the buffer held one more exemplar afterwards
    /// (rather than overwriting the oldest).
    Stored { grew: bool },
    /// Identical to the newest exemplar of the series: nothing to do.
    Duplicate,
}

/// One tenant's exemplars. Allocates nothing until the first exemplar.
#[derive(Default)]
pub struct ExemplarStore {
    buffer: RwLock<Buffer>,
}

#[derive(Default)]
struct Buffer {
    capacity: usize,
    /// Arrival order; grows up to `capacity`, then wraps around.
    entries: Vec<Entry>,
    /// Once full: the position of the oldest entry, overwritten next.
    next: usize,
    /// Series with exemplars in `entries` (a slab; free slots have no
    /// labels and are listed in `free`).
    series: Vec<SeriesSlot>,
    free: Vec<u32>,
    /// Series fingerprint → first slot of the chain of series sharing it.
    by_fingerprint: HashMap<u64, u32>,
}

struct Entry {
    series: u32,
    /// The next newer exemplar of the same series, or `NONE`.
    next: u32,
    timestamp: i64,
    value: f64,
    /// Labels sorted by name, encoded by [`encode_labels`].
    labels: Box<[u8]>,
}

struct SeriesSlot {
    fingerprint: u64,
    labels: Box<[LabelPair]>,
    oldest: u32,
    newest: u32,
    /// The next slot whose series has the same fingerprint, or `NONE`.
    next_same_fingerprint: u32,
}

impl ExemplarStore {
    /// Exemplars held.
    pub fn len(&self) -> usize {
        self.buffer.read().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Series with at least one exemplar held.
    pub fn series_count(&self) -> usize {
        let buffer = self.buffer.read();
        buffer.series.len() - buffer.free.len()
    }

    /// Appends one exemplar of the series `series_labels` (sorted by name,
    /// as the ingester holds them) whose fingerprint is `fp`. `labels` are
    /// the exemplar's own labels in any order; empty values are dropped.
    pub fn append(
        &self,
        capacity: usize,
        fp: u64,
        series_labels: &[LabelPair],
        labels: &[(&str, &str)],
        value: f64,
        timestamp: i64,
    ) -> Result<Appended, ExemplarError> {
        let mut scratch = Vec::with_capacity(labels.len());
        let encoded = canonical_labels(labels, &mut scratch)?;
        self.buffer
            .write()
            .append(capacity, fp, series_labels, encoded, value, timestamp)
    }

    /// Exemplars with timestamps in `[start, end]` of the series matching
    /// every matcher of at least one of `matcher_sets`, sorted by series
    /// labels, each series' exemplars oldest first.
    pub fn select(
        &self,
        matcher_sets: &[Vec<Matcher>],
        start: i64,
        end: i64,
    ) -> Vec<SeriesExemplars> {
        let buffer = self.buffer.read();
        let mut out = Vec::new();
        for slot in buffer.series.iter().filter(|s| !s.labels.is_empty()) {
            let (Some(oldest), Some(newest)) = (
                buffer.entries.get(slot.oldest as usize),
                buffer.entries.get(slot.newest as usize),
            ) else {
                continue;
            };
            if oldest.timestamp > end || newest.timestamp < start {
                continue;
            }
            if !matcher_sets.iter().any(|set| {
                set.iter()
                    .all(|m| m.matches(label_value(&slot.labels, &m.name)))
            }) {
                continue;
            }
            let mut exemplars = Vec::new();
            let mut at = slot.oldest;
            while let Some(e) = buffer.entries.get(at as usize) {
                if e.timestamp > end {
                    break;
                }
                if e.timestamp >= start {
                    exemplars.push(Exemplar {
                        labels: decode_labels(&e.labels),
                        value: e.value,
                        timestamp: e.timestamp,
                    });
                }
                at = e.next;
            }
            if !exemplars.is_empty() {
                out.push(SeriesExemplars {
                    labels: to_labels(&slot.labels),
                    exemplars,
                });
            }
        }
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        out
    }
}

impl Buffer {
    fn append(
        &mut self,
        capacity: usize,
        fp: u64,
        series_labels: &[LabelPair],
        labels: Box<[u8]>,
        value: f64,
        timestamp: i64,
    ) -> Result<Appended, ExemplarError> {
        if capacity == 0 {
            return Err(ExemplarError::Disabled);
        }
        if timestamp == 0 {
            return Err(ExemplarError::TimestampMissing);
        }
        if self.capacity == 0 {
            // Fixed on first use; the configuration does not change at run time.
            self.capacity = capacity.min(MAX_CAPACITY);
        }
        let mut slot = self.find(fp, series_labels);
        if let Some(s) = slot {
            if let Some(newest) = self
                .series
                .get(s as usize)
                .and_then(|slot| self.entries.get(slot.newest as usize))
            {
                let same_value = newest.value.to_bits() == value.to_bits();
                if newest.timestamp == timestamp && same_value && newest.labels == labels {
                    return Ok(Appended::Duplicate);
                }
                let older = timestamp < newest.timestamp
                    || (timestamp == newest.timestamp
                        && (value < newest.value
                            || (value == newest.value && labels < newest.labels)));
                if older {
                    return Err(ExemplarError::OutOfOrder);
                }
            }
        }

        let full = self.entries.len() >= self.capacity;
        let position = if full {
            let victim = self.next;
            if let Some(freed) = self.evict(victim) {
                if slot == Some(freed) {
                    slot = None;
                }
            }
            self.next = (victim + 1) % self.capacity;
            victim
        } else {
            self.entries.len()
        };
        // `position` < capacity <= MAX_CAPACITY, so it fits (and is not NONE).
        let position_u32 = position as u32;
        let series = match slot {
            Some(s) => {
                if let Some(newest) = self.series.get(s as usize).map(|slot| slot.newest as usize) {
                    if let Some(prev) = self.entries.get_mut(newest) {
                        prev.next = position_u32;
                    }
                }
                if let Some(slot) = self.series.get_mut(s as usize) {
                    slot.newest = position_u32;
                }
                s
            }
            None => self.add_series(fp, series_labels, position_u32),
        };
        let entry = Entry {
            series,
            next: NONE,
            timestamp,
            value,
            labels,
        };
        match self.entries.get_mut(position) {
            Some(e) => *e = entry,
            None => self.entries.push(entry),
        }
        Ok(Appended::Stored { grew: !full })
    }

    /// The slot of the series with exactly these labels.
    fn find(&self, fp: u64, labels: &[LabelPair]) -> Option<u32> {
        let mut at = *self.by_fingerprint.get(&fp)?;
        while let Some(slot) = self.series.get(at as usize) {
            if slot.labels.len() == labels.len()
                && slot
                    .labels
                    .iter()
                    .zip(labels)
                    .all(|((n, v), (on, ov))| n == on && v == ov)
            {
                return Some(at);
            }
            at = slot.next_same_fingerprint;
        }
        None
    }

    fn add_series(&mut self, fp: u64, labels: &[LabelPair], first: u32) -> u32 {
        let next_same_fingerprint = self.by_fingerprint.get(&fp).copied().unwrap_or(NONE);
        let slot = SeriesSlot {
            fingerprint: fp,
            labels: labels.into(),
            oldest: first,
            newest: first,
            next_same_fingerprint,
        };
        let index = match self.free.pop() {
            Some(i) => {
                if let Some(s) = self.series.get_mut(i as usize) {
                    *s = slot;
                }
                i
            }
            None => {
                // At most one slot per stored exemplar: fits in u32.
                self.series.push(slot);
                (self.series.len() - 1) as u32
            }
        };
        self.by_fingerprint.insert(fp, index);
        index
    }

    /// Drops the (oldest) entry at `position` from its series; returns the
    /// series' slot if that was its last exemplar and the slot was freed.
    fn evict(&mut self, position: usize) -> Option<u32> {
        let (series, next) = {
            let e = self.entries.get(position)?;
            (e.series, e.next)
        };
        if next != NONE {
            if let Some(slot) = self.series.get_mut(series as usize) {
                slot.oldest = next;
            }
            return None;
        }
        self.remove_series(series);
        Some(series)
    }

    fn remove_series(&mut self, index: u32) {
        let Some((fp, after)) = self
            .series
            .get(index as usize)
            .map(|s| (s.fingerprint, s.next_same_fingerprint))
        else {
            return;
        };
        match self.by_fingerprint.get(&fp).copied() {
            Some(head) if head == index => {
                if after == NONE {
                    self.by_fingerprint.remove(&fp);
                } else {
                    self.by_fingerprint.insert(fp, after);
                }
            }
            Some(head) => {
                let mut at = head;
                while let Some(slot) = self.series.get_mut(at as usize) {
                    if slot.next_same_fingerprint == index {
                        slot.next_same_fingerprint = after;
                        break;
                    }
                    at = slot.next_same_fingerprint;
                }
            }
            None => {}
        }
        if let Some(slot) = self.series.get_mut(index as usize) {
            slot.labels = Box::default();
            slot.oldest = NONE;
            slot.newest = NONE;
            slot.next_same_fingerprint = NONE;
        }
        self.free.push(index);
    }
}

/// Validates exemplar labels as Prometheus does and encodes them sorted by
/// name, without empty values (duplicate names keep the first).
fn canonical_labels<'a>(
    labels: &[(&'a str, &'a str)],
    scratch: &mut Vec<(&'a str, &'a str)>,
) -> Result<Box<[u8]>, ExemplarError> {
    let mut runes = 0usize;
    for (n, v) in labels {
        runes += n.chars().count() + v.chars().count();
    }
    if runes > MAX_EXEMPLAR_LABEL_RUNES {
        return Err(ExemplarError::LabelsTooLong);
    }
    scratch.clear();
    scratch.extend(
        labels
            .iter()
            .filter(|(n, v)| !n.is_empty() && !v.is_empty())
            .copied(),
    );
    if scratch.is_empty() {
        return Err(ExemplarError::LabelsMissing);
    }
    scratch.sort_by(|a, b| a.0.cmp(b.0));
    scratch.dedup_by(|later, earlier| later.0 == earlier.0);
    encode_labels(scratch).ok_or(ExemplarError::LabelsTooLong)
}

/// Encodes labels as `u16` little-endian length, name, length, value, ...
/// in one allocation. `None` if a string does not fit (never happens within
/// the label length limit).
fn encode_labels(labels: &[(&str, &str)]) -> Option<Box<[u8]>> {
    let len: usize = labels.iter().map(|(n, v)| 4 + n.len() + v.len()).sum();
    let mut out = Vec::with_capacity(len);
    for s in labels.iter().flat_map(|(n, v)| [*n, *v]) {
        out.extend_from_slice(&u16::try_from(s.len()).ok()?.to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    }
    Some(out.into_boxed_slice())
}

fn decode_labels(mut bytes: &[u8]) -> Labels {
    fn take<'a>(bytes: &mut &'a [u8]) -> Option<&'a str> {
        let (len, rest) = bytes.split_first_chunk::<2>()?;
        let (s, rest) = rest.split_at_checked(usize::from(u16::from_le_bytes(*len)))?;
        *bytes = rest;
        std::str::from_utf8(s).ok()
    }
    let mut out = Vec::new();
    while let (Some(name), Some(value)) = (take(&mut bytes), take(&mut bytes)) {
        out.push(Label::new(name, value));
    }
    Labels::from_sorted(out)
}

fn label_value<'a>(labels: &'a [LabelPair], name: &str) -> &'a str {
    labels
        .iter()
        .find(|(n, _)| &**n == name)
        .map(|(_, v)| &**v)
        .unwrap_or("")
}

fn to_labels(labels: &[LabelPair]) -> Labels {
    Labels::from_sorted(
        labels
            .iter()
            .map(|(n, v)| Label::new(n.as_ref(), v.as_ref()))
            .collect(),
    )
}

/// Stores the exemplars of a decoded request for `db`'s tenant, after its
/// samples were appended (so the series of both exist). Refusals are
/// counted, never returned: exemplars must not make a sender drop samples.
pub(crate) fn append_request(
    db: &TenantDb,
    req: &WriteRequestRef<'_>,
    capacity: usize,
    metrics: &IngesterMetrics,
) {
    let reject = |err: ExemplarError, n: usize| {
        if n > 0 {
            metrics
                .exemplars_rejected
                .get_or_create(&ReasonLabel {
                    reason: err.reason().to_string(),
                })
                .inc_by(n as u64);
        }
    };
    if capacity == 0 {
        reject(ExemplarError::Disabled, req.exemplar_count());
        return;
    }
    let mut series_labels: Vec<(&str, &str)> = Vec::new();
    let mut exemplars: Vec<ExemplarView<'_, '_>> = Vec::new();
    let mut exemplar_labels: Vec<(&str, &str)> = Vec::new();
    let mut scratch: Vec<(&str, &str)> = Vec::new();
    let mut appended = 0u64;
    for series in req.series().filter(|s| s.exemplar_count() > 0) {
        series_labels.clear();
        series_labels.extend(
            series
                .labels()
                .iter()
                .filter(|l| !l.value.is_empty())
                .map(|l| (l.name, l.value)),
        );
        if !series_labels.windows(2).all(|w| w[0].0 < w[1].0) {
            series_labels.sort_unstable_by(|a, b| a.0.cmp(b.0));
            series_labels.dedup_by(|a, b| a.0 == b.0);
        }
        let fp = fingerprint(series_labels.iter().copied());
        let Some(stored) = db.get(fp, &series_labels) else {
            reject(ExemplarError::SeriesMissing, series.exemplar_count());
            continue;
        };
        exemplars.clear();
        exemplars.extend(series.exemplars());
        // Oldest first, or the later ones would count as out of order.
        exemplars.sort_by_key(|e| e.timestamp);
        let mut buffer = db.exemplars.buffer.write();
        for e in &exemplars {
            exemplar_labels.clear();
            exemplar_labels.extend(e.labels.iter().map(|l| (l.name, l.value)));
            let result = canonical_labels(&exemplar_labels, &mut scratch).and_then(|encoded| {
                buffer.append(capacity, fp, &stored.labels, encoded, e.value, e.timestamp)
            });
            match result {
                Ok(Appended::Stored { grew }) => {
                    appended += 1;
                    if grew {
                        metrics.memory_exemplars.inc();
                    }
                }
                Ok(Appended::Duplicate) => {}
                Err(err) => reject(err, 1),
            }
        }
    }
    metrics.exemplars_appended.inc_by(appended);
}

impl Ingester {
    /// The tenant's exemplars in `[start, end]` of the series matching any
    /// of `matcher_sets`.
    pub fn query_exemplars(
        &self,
        tenant: &str,
        matcher_sets: &[Vec<Matcher>],
        start: i64,
        end: i64,
    ) -> Vec<SeriesExemplars> {
        self.tenant(tenant)
            .map(|t| t.exemplars.select(matcher_sets, start, end))
            .unwrap_or_default()
    }
}

/// The gRPC answer for queried exemplars.
pub fn to_pb(series: Vec<SeriesExemplars>) -> ExemplarQueryResponse {
    ExemplarQueryResponse {
        series: series
            .iter()
            .map(|s| TimeSeries {
                labels: crate::service::labels_to_pb(&s.labels),
                samples: Vec::new(),
                exemplars: s
                    .exemplars
                    .iter()
                    .map(|e| PbExemplar {
                        labels: crate::service::labels_to_pb(&e.labels),
                        value: e.value,
                        timestamp: e.timestamp,
                    })
                    .collect(),
                histograms: Vec::new(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use strata_model::MatchOp;
    use strata_remote_write::{encode_write_request, OwnedExemplar, OwnedTimeSeries, Sample};

    use super::*;
    use crate::IngesterConfig;

    fn series(pairs: &[(&str, &str)]) -> (u64, Box<[LabelPair]>) {
        let fp = fingerprint(pairs.iter().copied());
        let labels = pairs
            .iter()
            .map(|(n, v)| (Arc::from(*n), Arc::from(*v)))
            .collect();
        (fp, labels)
    }

    fn trace(id: &str) -> [(&str, &str); 1] {
        [("trace_id", id)]
    }

    fn eq(name: &str, value: &str) -> Matcher {
        Matcher::new(MatchOp::Equal, name, value).unwrap()
    }

    fn all() -> Vec<Vec<Matcher>> {
        vec![vec![
            Matcher::new(MatchOp::RegexMatch, "__name__", ".+").unwrap()
        ]]
    }

    /// (series job, trace id, value, timestamp) of everything selected.
    fn dump(store: &ExemplarStore, start: i64, end: i64) -> Vec<(String, String, f64, i64)> {
        store
            .select(&all(), start, end)
            .into_iter()
            .flat_map(|s| {
                let job = s.labels.get("job").unwrap_or("").to_string();
                s.exemplars.into_iter().map(move |e| {
                    (
                        job.clone(),
                        e.labels.get("trace_id").unwrap_or("").to_string(),
                        e.value,
                        e.timestamp,
                    )
                })
            })
            .collect()
    }

    #[test]
    fn stores_and_selects_by_matchers_and_time() {
        let store = ExemplarStore::default();
        let (fa, a) = series(&[("__name__", "m"), ("job", "a")]);
        let (fb, b) = series(&[("__name__", "m"), ("job", "b")]);
        for (t, id) in [(1000, "a1"), (2000, "a2"), (3000, "a3")] {
            store.append(10, fa, &a, &trace(id), 1.0, t).unwrap();
        }
        store.append(10, fb, &b, &trace("b1"), 2.0, 1500).unwrap();
        assert_eq!(store.len(), 4);
        assert_eq!(store.series_count(), 2);

        let got = store.select(&[vec![eq("job", "a")]], 0, i64::MAX);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].labels.get("job"), Some("a"));
        let times: Vec<i64> = got[0].exemplars.iter().map(|e| e.timestamp).collect();
        assert_eq!(times, [1000, 2000, 3000]);
        assert_eq!(got[0].exemplars[0].labels.get("trace_id"), Some("a1"));

        // Both bounds are inclusive; series without exemplars in range are left out.
        assert_eq!(
            dump(&store, 1500, 2000),
            [
                ("a".into(), "a2".into(), 1.0, 2000),
                ("b".into(), "b1".into(), 2.0, 1500)
            ]
        );
        assert_eq!(dump(&store, 3001, 5000), []);
        // Any of several matcher sets; none selects nothing.
        let got = store.select(&[vec![eq("job", "x")], vec![eq("job", "b")]], 0, 5000);
        assert_eq!(got.len(), 1);
        assert!(store.select(&[], 0, 5000).is_empty());
        // A matcher on a label the series lacks compares with "".
        let got = store.select(&[vec![eq("__name__", "m"), eq("zone", "")]], 0, 5000);
        assert_eq!(got.len(), 2);
    }

    #[test]
    fn capacity_evicts_oldest_first() {
        let store = ExemplarStore::default();
        let (fa, a) = series(&[("__name__", "m"), ("job", "a")]);
        let (fb, b) = series(&[("__name__", "m"), ("job", "b")]);
        assert_eq!(
            store.append(3, fa, &a, &trace("a1"), 1.0, 1000),
            Ok(Appended::Stored { grew: true })
        );
        store.append(3, fb, &b, &trace("b1"), 1.0, 1000).unwrap();
        store.append(3, fa, &a, &trace("a2"), 1.0, 2000).unwrap();
        // Full: the next one overwrites a1, the oldest.
        assert_eq!(
            store.append(3, fb, &b, &trace("b2"), 1.0, 2000),
            Ok(Appended::Stored { grew: false })
        );
        assert_eq!(store.len(), 3);
        let ids: Vec<String> = dump(&store, 0, i64::MAX).into_iter().map(|e| e.1).collect();
        assert_eq!(ids, ["a2", "b1", "b2"]);
        // b1 goes next, then a2: series a disappears with its last exemplar.
        store.append(3, fb, &b, &trace("b3"), 1.0, 3000).unwrap();
        store.append(3, fb, &b, &trace("b4"), 1.0, 4000).unwrap();
        let ids: Vec<String> = dump(&store, 0, i64::MAX).into_iter().map(|e| e.1).collect();
        assert_eq!(ids, ["b2", "b3", "b4"]);
        assert_eq!(store.series_count(), 1);
        assert!(store
            .select(&[vec![eq("job", "a")]], 0, i64::MAX)
            .is_empty());
        // Its slot is reused by the next new series.
        store.append(3, fa, &a, &trace("a9"), 1.0, 9000).unwrap();
        assert_eq!(store.series_count(), 2);
        assert_eq!(store.len(), 3);
    }

    #[test]
    fn capacity_one_replaces_the_same_series() {
        let store = ExemplarStore::default();
        let (fa, a) = series(&[("__name__", "m")]);
        for t in 1..=5 {
            store
                .append(1, fa, &a, &trace(&t.to_string()), 1.0, t)
                .unwrap();
            assert_eq!(store.len(), 1);
            assert_eq!(store.series_count(), 1);
        }
        assert_eq!(dump(&store, 0, 10), [("".into(), "5".into(), 1.0, 5)]);
    }

    #[test]
    fn memory_stays_bounded_under_churn() {
        let store = ExemplarStore::default();
        for i in 0..10_000i64 {
            let job = (i % 997).to_string();
            let (fp, labels) = series(&[("__name__", "m"), ("job", &job)]);
            store
                .append(100, fp, &labels, &trace("x"), i as f64, i + 1)
                .unwrap();
        }
        assert_eq!(store.len(), 100);
        let buffer = store.buffer.read();
        assert!(buffer.series.len() <= 100, "{}", buffer.series.len());
        assert!(buffer.by_fingerprint.len() <= 100);
        assert_eq!(
            buffer.series.len() - buffer.free.len(),
            buffer.by_fingerprint.len()
        );
    }

    #[test]
    fn duplicates_are_ignored_and_older_exemplars_refused() {
        let store = ExemplarStore::default();
        let (fa, a) = series(&[("__name__", "m")]);
        store.append(10, fa, &a, &trace("x"), 5.0, 2000).unwrap();
        // Identical (labels in another order, empty values dropped): no-op.
        assert_eq!(
            store.append(10, fa, &a, &[("z", ""), ("trace_id", "x")], 5.0, 2000),
            Ok(Appended::Duplicate)
        );
        assert_eq!(store.len(), 1);
        assert_eq!(
            store.append(10, fa, &a, &trace("y"), 5.0, 1999),
            Err(ExemplarError::OutOfOrder)
        );
        // Same timestamp: a smaller value is older, a larger one newer.
        assert_eq!(
            store.append(10, fa, &a, &trace("y"), 4.0, 2000),
            Err(ExemplarError::OutOfOrder)
        );
        assert!(store.append(10, fa, &a, &trace("y"), 6.0, 2000).is_ok());
        assert!(store.append(10, fa, &a, &trace("z"), 1.0, 3000).is_ok());
        assert_eq!(store.len(), 3);
        // Order is per series: another series may go back in time.
        let (fb, b) = series(&[("__name__", "n")]);
        assert!(store.append(10, fb, &b, &trace("w"), 1.0, 10).is_ok());
    }

    #[test]
    fn invalid_exemplars_are_refused() {
        let store = ExemplarStore::default();
        let (fa, a) = series(&[("__name__", "m")]);
        let long = "x".repeat(MAX_EXEMPLAR_LABEL_RUNES - "trace_id".len() + 1);
        type Case<'a> = (Vec<(&'a str, &'a str)>, i64, usize, ExemplarError);
        let cases: Vec<Case<'_>> = vec![
            (vec![], 1, 10, ExemplarError::LabelsMissing),
            (vec![("trace_id", "")], 1, 10, ExemplarError::LabelsMissing),
            (
                vec![("trace_id", long.as_str())],
                1,
                10,
                ExemplarError::LabelsTooLong,
            ),
            (
                vec![("trace_id", "x")],
                0,
                10,
                ExemplarError::TimestampMissing,
            ),
            (vec![("trace_id", "x")], 1, 0, ExemplarError::Disabled),
        ];
        for (labels, t, capacity, err) in cases {
            assert_eq!(store.append(capacity, fa, &a, &labels, 1.0, t), Err(err));
        }
        // 128 characters exactly is fine, counted in characters, not bytes.
        let ok = "é".repeat(MAX_EXEMPLAR_LABEL_RUNES - "trace_id".len());
        assert!(store
            .append(10, fa, &a, &[("trace_id", &ok)], 1.0, 1)
            .is_ok());
        assert_eq!(
            store.select(&all(), 0, 1)[0].exemplars[0]
                .labels
                .get("trace_id"),
            Some(ok.as_str())
        );
    }

    #[test]
    fn colliding_fingerprints_keep_series_apart() {
        let store = ExemplarStore::default();
        let (_, a) = series(&[("__name__", "a")]);
        let (_, b) = series(&[("__name__", "b")]);
        store.append(2, 7, &a, &trace("a1"), 1.0, 1).unwrap();
        store.append(2, 7, &b, &trace("b1"), 1.0, 1).unwrap();
        store.append(2, 7, &b, &trace("b2"), 1.0, 2).unwrap();
        let got = store.select(&all(), 0, 10);
        let names: Vec<(&str, usize)> = got
            .iter()
            .map(|s| (s.labels.get("__name__").unwrap(), s.exemplars.len()))
            .collect();
        assert_eq!(names, [("b", 2)]);
        store.append(2, 7, &a, &trace("a2"), 1.0, 2).unwrap();
        assert_eq!(store.series_count(), 2);
    }

    fn push(ingester: &Ingester, tenant: &str, series: &[OwnedTimeSeries]) {
        ingester
            .push(tenant, &encode_write_request(series, &[]))
            .unwrap();
    }

    fn with_exemplars(
        labels: &[(&str, &str)],
        samples: &[(i64, f64)],
        exemplars: &[(&str, f64, i64)],
    ) -> OwnedTimeSeries {
        let mut s = OwnedTimeSeries::new(
            labels.iter().map(|(n, v)| (n.to_string(), v.to_string())),
            samples
                .iter()
                .map(|&(timestamp, value)| Sample { timestamp, value }),
        );
        s.exemplars = exemplars
            .iter()
            .map(|&(id, value, timestamp)| OwnedExemplar {
                labels: vec![("trace_id".into(), id.into())],
                value,
                timestamp,
            })
            .collect();
        s
    }

    #[test]
    fn pushes_store_exemplars_per_tenant() {
        let metrics = IngesterMetrics::default();
        let ingester = Ingester::new(IngesterConfig::default(), metrics.clone());
        let m = [("__name__", "m"), ("job", "a")];
        // As Prometheus sends them: the exemplar in its own series entry,
        // here even before the sample that creates the series; exemplars
        // out of order within a series entry.
        push(
            &ingester,
            "t1",
            &[
                with_exemplars(&m, &[], &[("b", 2.0, 2000), ("a", 1.0, 1000)]),
                with_exemplars(&m, &[(1000, 1.0)], &[]),
                with_exemplars(&[("__name__", "unknown")], &[], &[("u", 1.0, 1000)]),
            ],
        );
        push(
            &ingester,
            "t2",
            &[with_exemplars(
                &[("__name__", "m"), ("job", "b")],
                &[(1000, 1.0)],
                &[("other", 1.0, 1000)],
            )],
        );
        let got = ingester.query_exemplars("t1", &all(), 0, i64::MAX);
        assert_eq!(got.len(), 1);
        let ids: Vec<&str> = got[0]
            .exemplars
            .iter()
            .map(|e| e.labels.get("trace_id").unwrap())
            .collect();
        assert_eq!(ids, ["a", "b"]);
        let got = ingester.query_exemplars("t2", &all(), 0, i64::MAX);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].labels.get("job"), Some("b"));
        assert!(ingester
            .query_exemplars("t3", &all(), 0, i64::MAX)
            .is_empty());
        assert_eq!(metrics.exemplars_appended.get(), 3);
        assert_eq!(metrics.memory_exemplars.get(), 3);
        let missing = metrics
            .exemplars_rejected
            .get_or_create(&ReasonLabel {
                reason: "exemplar_series_missing".into(),
            })
            .get();
        assert_eq!(missing, 1);

        // The response carries series labels and exemplars only.
        let pb = to_pb(ingester.query_exemplars("t1", &all(), 0, i64::MAX));
        assert_eq!(pb.series.len(), 1);
        assert!(pb.series[0].samples.is_empty());
        assert_eq!(pb.series[0].exemplars.len(), 2);
        assert_eq!(pb.series[0].exemplars[1].timestamp, 2000);
    }

    #[test]
    fn zero_capacity_disables_storage() {
        let metrics = IngesterMetrics::default();
        let config = IngesterConfig {
            max_exemplars: 0,
            ..IngesterConfig::default()
        };
        let ingester = Ingester::new(config, metrics.clone());
        push(
            &ingester,
            "t",
            &[with_exemplars(
                &[("__name__", "m")],
                &[(1000, 1.0)],
                &[("a", 1.0, 1000)],
            )],
        );
        assert!(ingester
            .query_exemplars("t", &all(), 0, i64::MAX)
            .is_empty());
        assert_eq!(metrics.exemplars_appended.get(), 0);
        assert_eq!(
            ingester.query("t", &all()[0], 0, i64::MAX).len(),
            1,
            "samples are stored all the same"
        );
    }
}
