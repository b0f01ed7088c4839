//! The engine's [`Storage`] over data fetched before evaluation.
//!
//! The engine is synchronous; reads from ingesters are not. So the querier
//! asks the engine which selections a query needs, fetches them all in
//! parallel, and evaluates over what came back: series with their chunks
//! still encoded, decoded by the engine as it reads them.

use std::sync::Arc;

use strata_model::{MatchOp, Matcher};
use strata_promql::{SelectRequest, Storage, StorageError, StoredSeries};

/// A matcher set in a canonical order, to recognise equal selections.
type MatcherKey = Vec<(String, u8, String)>;

fn key_of(matchers: &[Matcher]) -> MatcherKey {
    let mut key: MatcherKey = matchers
        .iter()
        .map(|m| {
            let op = match m.op {
                MatchOp::Equal => 0,
                MatchOp::NotEqual => 1,
                MatchOp::RegexMatch => 2,
                MatchOp::RegexNoMatch => 3,
            };
            (m.name.clone(), op, m.value.clone())
        })
        .collect();
    key.sort();
    key.dedup();
    key
}

/// Merges selections with the same matchers whose time ranges overlap or
/// touch into one covering both, so `rate(x[5m]) / x` fetches `x` once;
/// `x - x offset 1d` still fetches two short ranges, not the day between.
pub fn plan_fetches(requests: Vec<SelectRequest>) -> Vec<SelectRequest> {
    let mut keyed: Vec<(MatcherKey, SelectRequest)> = requests
        .into_iter()
        .map(|r| (key_of(&r.matchers), r))
        .collect();
    // Group equal matcher sets (first appearance order), then by start.
    let mut first_seen: Vec<MatcherKey> = Vec::new();
    for (key, _) in &keyed {
        if !first_seen.contains(key) {
            first_seen.push(key.clone());
        }
    }
    keyed.sort_by_key(|(key, r)| {
        let group = first_seen.iter().position(|k| k == key).unwrap_or(0);
        (group, r.start_ms)
    });
    let mut out: Vec<(MatcherKey, SelectRequest)> = Vec::new();
    for (key, request) in keyed {
        match out.last_mut() {
            Some((k, last)) if *k == key && request.start_ms <= last.end_ms.saturating_add(1) => {
                last.end_ms = last.end_ms.max(request.end_ms);
            }
            _ => out.push((key, request)),
        }
    }
    out.into_iter().map(|(_, r)| r).collect()
}

struct Entry {
    key: MatcherKey,
    start_ms: i64,
    end_ms: i64,
    series: Arc<Vec<StoredSeries>>,
}

/// Series fetched for a query, answering the engine's selections from
/// memory.
#[derive(Default)]
pub struct PrefetchedStorage {
    entries: Vec<Entry>,
}

impl PrefetchedStorage {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the answer to one selection (series sorted by labels).
    pub fn insert(&mut self, request: &SelectRequest, series: Vec<StoredSeries>) {
        self.entries.push(Entry {
            key: key_of(&request.matchers),
            start_ms: request.start_ms,
            end_ms: request.end_ms,
            series: Arc::new(series),
        });
    }

    /// Series held, over all selections.
    pub fn series(&self) -> usize {
        self.entries.iter().map(|e| e.series.len()).sum()
    }
}

fn matches_all(series: &StoredSeries, matchers: &[Matcher]) -> bool {
    matchers
        .iter()
        .all(|m| m.matches(series.labels.get(&m.name).unwrap_or("")))
}

impl Storage for PrefetchedStorage {
    fn select(&self, request: &SelectRequest) -> Result<Vec<StoredSeries>, StorageError> {
        let key = key_of(&request.matchers);
        let covers = |e: &&Entry| e.start_ms <= request.start_ms && e.end_ms >= request.end_ms;
        // The same selection, or a broader one (a subset of the matchers)
        // whose series are then filtered. Series are shared, not copied:
        // the engine reads each over the range it needs.
        if let Some(entry) = self.entries.iter().filter(covers).find(|e| e.key == key) {
            return Ok(entry.series.as_ref().clone());
        }
        let broader = self
            .entries
            .iter()
            .filter(covers)
            .find(|e| e.key.iter().all(|m| key.contains(m)));
        if let Some(entry) = broader {
            return Ok(entry
                .series
                .iter()
                .filter(|s| matches_all(s, &request.matchers))
                .cloned()
                .collect());
        }
        let text: Vec<String> = request.matchers.iter().map(|m| m.to_string()).collect();
        Err(StorageError::Internal(format!(
            "selection {{{}}} over [{}, {}] was not fetched before evaluation",
            text.join(", "),
            request.start_ms,
            request.end_ms
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_model::Labels;

    fn m(op: MatchOp, name: &str, value: &str) -> Matcher {
        Matcher::new(op, name, value).unwrap()
    }

    fn req(matchers: Vec<Matcher>, start_ms: i64, end_ms: i64) -> SelectRequest {
        SelectRequest {
            matchers,
            start_ms,
            end_ms,
        }
    }

    fn series(pairs: &[(&str, &str)], samples: &[(i64, f64)]) -> StoredSeries {
        StoredSeries::from_samples(Labels::from_pairs(pairs.iter().copied()), samples.to_vec())
    }

    fn read(s: &StoredSeries, mint: i64, maxt: i64) -> Vec<(i64, f64)> {
        s.source.samples(mint, maxt).map(|r| r.unwrap()).collect()
    }

    #[test]
    fn plans_one_fetch_per_matcher_set_and_overlapping_range() {
        let up = m(MatchOp::Equal, "__name__", "up");
        let job = m(MatchOp::Equal, "job", "a");
        let plan = plan_fetches(vec![
            req(vec![up.clone(), job.clone()], 100, 200),
            req(vec![job.clone(), up.clone()], 50, 150),
            req(vec![up.clone()], 0, 10),
        ]);
        assert_eq!(
            plan,
            vec![
                req(vec![job.clone(), up.clone()], 50, 200),
                req(vec![up.clone()], 0, 10)
            ]
        );
        // `x - x offset 1d`: two short fetches, not one covering the day.
        let day = 86_400_000;
        let plan = plan_fetches(vec![
            req(vec![up.clone()], day - 300_000, day),
            req(vec![up.clone()], -300_000, 0),
            req(vec![up.clone()], 1, 10),
        ]);
        assert_eq!(
            plan,
            vec![
                req(vec![up.clone()], -300_000, 10),
                req(vec![up], day - 300_000, day)
            ]
        );
    }

    #[test]
    fn answers_from_memory() {
        let up = m(MatchOp::Equal, "__name__", "up");
        let mut storage = PrefetchedStorage::new();
        storage.insert(
            &req(vec![up.clone()], 0, 100),
            vec![
                series(
                    &[("__name__", "up"), ("job", "a")],
                    &[(0, 1.0), (50, 2.0), (100, 3.0)],
                ),
                series(&[("__name__", "up"), ("job", "b")], &[(90, 4.0)]),
            ],
        );
        assert_eq!(storage.series(), 2);

        // Same selection, narrower range: the series, read over the range.
        let got = storage.select(&req(vec![up.clone()], 10, 60)).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(read(&got[0], 10, 60), vec![(50, 2.0)]);
        assert!(read(&got[1], 10, 60).is_empty());

        // More matchers than fetched: filtered.
        let got = storage
            .select(&req(
                vec![up.clone(), m(MatchOp::RegexMatch, "job", "b|c")],
                0,
                100,
            ))
            .unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].labels.get("job"), Some("b"));
        assert_eq!(read(&got[0], 0, 100), vec![(90, 4.0)]);

        // Outside what was fetched: an error, never a silently partial answer.
        assert!(storage.select(&req(vec![up.clone()], 0, 101)).is_err());
        assert!(storage
            .select(&req(vec![m(MatchOp::Equal, "__name__", "down")], 0, 10))
            .is_err());
    }
}
