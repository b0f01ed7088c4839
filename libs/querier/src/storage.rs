//! The engine's [`Storage`] over data fetched before evaluation.
//!
//! The engine is synchronous; reads from ingesters are not. So the querier
//! asks the engine which selections a query needs, fetches them all in
//! parallel, and evaluates over this in-memory copy.

use std::sync::Arc;

use strata_model::{MatchOp, Matcher};
use strata_promql::{SelectRequest, Series, Storage, StorageError};

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

/// Merges selections with the same matchers into one covering all their
/// time ranges, so `x / x offset 1h` fetches `x` once.
pub fn plan_fetches(requests: Vec<SelectRequest>) -> Vec<SelectRequest> {
    let mut out: Vec<(MatcherKey, SelectRequest)> = Vec::new();
    for request in requests {
        let key = key_of(&request.matchers);
        match out.iter_mut().find(|(k, _)| *k == key) {
            Some((_, existing)) => {
                existing.start_ms = existing.start_ms.min(request.start_ms);
                existing.end_ms = existing.end_ms.max(request.end_ms);
            }
            None => out.push((key, request)),
        }
    }
    out.into_iter().map(|(_, r)| r).collect()
}

struct Entry {
    key: MatcherKey,
    start_ms: i64,
    end_ms: i64,
    series: Arc<Vec<Series>>,
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
    pub fn insert(&mut self, request: &SelectRequest, series: Vec<Series>) {
        self.entries.push(Entry {
            key: key_of(&request.matchers),
            start_ms: request.start_ms,
            end_ms: request.end_ms,
            series: Arc::new(series),
        });
    }

    /// Samples held.
    pub fn samples(&self) -> usize {
        self.entries
            .iter()
            .flat_map(|e| e.series.iter())
            .map(|s| s.samples.len())
            .sum()
    }
}

/// The samples of `series` within `[start, end]`.
fn clip(series: &Series, start: i64, end: i64) -> Option<Series> {
    let from = series.samples.partition_point(|s| s.0 < start);
    let to = series.samples.partition_point(|s| s.0 <= end);
    if from >= to {
        return None;
    }
    Some(Series {
        labels: series.labels.clone(),
        samples: series.samples[from..to].to_vec(),
    })
}

fn matches_all(series: &Series, matchers: &[Matcher]) -> bool {
    matchers
        .iter()
        .all(|m| m.matches(series.labels.get(&m.name).unwrap_or("")))
}

impl Storage for PrefetchedStorage {
    fn select(&self, request: &SelectRequest) -> Result<Vec<Series>, StorageError> {
        let key = key_of(&request.matchers);
        let covers = |e: &&Entry| e.start_ms <= request.start_ms && e.end_ms >= request.end_ms;
        // The same selection, or a broader one (a subset of the matchers)
        // whose series are then filtered.
        if let Some(entry) = self.entries.iter().filter(covers).find(|e| e.key == key) {
            return Ok(entry
                .series
                .iter()
                .filter_map(|s| clip(s, request.start_ms, request.end_ms))
                .collect());
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
                .filter_map(|s| clip(s, request.start_ms, request.end_ms))
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

    fn series(pairs: &[(&str, &str)], samples: &[(i64, f64)]) -> Series {
        Series {
            labels: Labels::from_pairs(pairs.iter().copied()),
            samples: samples.to_vec(),
        }
    }

    #[test]
    fn plans_one_fetch_per_matcher_set() {
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
                req(vec![up.clone(), job.clone()], 50, 200),
                req(vec![up], 0, 10)
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
        assert_eq!(storage.samples(), 4);

        // Same selection, narrower range: clipped, empty series dropped.
        let got = storage.select(&req(vec![up.clone()], 10, 60)).unwrap();
        assert_eq!(
            got,
            vec![series(&[("__name__", "up"), ("job", "a")], &[(50, 2.0)])]
        );

        // More matchers than fetched: filtered.
        let got = storage
            .select(&req(
                vec![up.clone(), m(MatchOp::RegexMatch, "job", "b|c")],
                0,
                100,
            ))
            .unwrap();
        assert_eq!(
            got,
            vec![series(&[("__name__", "up"), ("job", "b")], &[(90, 4.0)])]
        );

        // Outside what was fetched: an error, never a silently partial answer.
        assert!(storage.select(&req(vec![up.clone()], 0, 101)).is_err());
        assert!(storage
            .select(&req(vec![m(MatchOp::Equal, "__name__", "down")], 0, 10))
            .is_err());
    }
}
