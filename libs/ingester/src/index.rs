//! Inverted index: label name → label value → sorted series IDs.

use std::collections::HashMap;
use std::sync::Arc;

use strata_model::Matcher;

pub(crate) use crate::series::SeriesId;

#[derive(Default)]
pub(crate) struct Index {
    postings: HashMap<Arc<str>, HashMap<Arc<str>, Vec<SeriesId>>>,
    /// Every series, sorted: the starting set of selectors made only of
    /// matchers that accept the empty string.
    all: Vec<SeriesId>,
}

impl Index {
    /// Returns the shared copy of `name`/`value`, so series keep one copy of
    /// each distinct string.
    pub(crate) fn intern(&self, name: &str, value: &str) -> (Arc<str>, Arc<str>) {
        match self.postings.get_key_value(name) {
            Some((n, values)) => {
                let v = values
                    .get_key_value(value)
                    .map(|(v, _)| v.clone())
                    .unwrap_or_else(|| Arc::from(value));
                (n.clone(), v)
            }
            None => (Arc::from(name), Arc::from(value)),
        }
    }

    /// Adds a series; IDs must be added in increasing order.
    pub(crate) fn add(&mut self, id: SeriesId, labels: &[(Arc<str>, Arc<str>)]) {
        for (name, value) in labels {
            self.postings
                .entry(name.clone())
                .or_default()
                .entry(value.clone())
                .or_default()
                .push(id);
        }
        self.all.push(id);
    }

    /// Removes a series added with these labels; names and values left
    /// without series disappear from the index.
    pub(crate) fn remove(&mut self, id: SeriesId, labels: &[(Arc<str>, Arc<str>)]) {
        for (name, value) in labels {
            let Some(values) = self.postings.get_mut(&**name) else {
                continue;
            };
            if let Some(ids) = values.get_mut(&**value) {
                if let Ok(pos) = ids.binary_search(&id) {
                    ids.remove(pos);
                }
                if ids.is_empty() {
                    values.remove(&**value);
                }
            }
            if values.is_empty() {
                self.postings.remove(&**name);
            }
        }
        if let Ok(pos) = self.all.binary_search(&id) {
            self.all.remove(pos);
        }
    }

    /// Up to `n` series IDs greater than `after` (from the first without
    /// it), in increasing order.
    pub(crate) fn ids_after(&self, after: Option<SeriesId>, n: usize) -> Vec<SeriesId> {
        let start = match after {
            None => 0,
            Some(a) => self.all.partition_point(|x| *x <= a),
        };
        self.all[start..].iter().take(n).copied().collect()
    }

    /// Number of series in the index.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.all.len()
    }

    pub(crate) fn label_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.postings.keys().map(|k| k.to_string()).collect();
        names.sort();
        names
    }

    pub(crate) fn label_values(&self, name: &str) -> Vec<String> {
        let mut values: Vec<String> = self
            .postings
            .get(name)
            .map(|vals| vals.keys().map(|k| k.to_string()).collect())
            .unwrap_or_default();
        values.sort();
        values
    }

    /// Union of the postings of every value of `name` for which `keep` holds.
    fn union_values(&self, name: &str, keep: impl Fn(&str) -> bool) -> Vec<SeriesId> {
        let Some(values) = self.postings.get(name) else {
            return Vec::new();
        };
        let lists: Vec<&Vec<SeriesId>> = values
            .iter()
            .filter(|(v, _)| keep(v))
            .map(|(_, ids)| ids)
            .collect();
        merge_union(&lists)
    }

    /// Postings of the values a matcher selects, using direct lookups for
    /// equality and literal alternations and a scan of values otherwise.
    fn matching(&self, m: &Matcher) -> Vec<SeriesId> {
        if m.op == strata_model::MatchOp::Equal {
            return self
                .postings
                .get(m.name.as_str())
                .and_then(|vals| vals.get(m.value.as_str()))
                .cloned()
                .unwrap_or_default();
        }
        if let Some(literals) = m.set_matches() {
            let Some(values) = self.postings.get(m.name.as_str()) else {
                return Vec::new();
            };
            let lists: Vec<&Vec<SeriesId>> =
                literals.iter().filter_map(|l| values.get(*l)).collect();
            return merge_union(&lists);
        }
        self.union_values(&m.name, |v| m.matches(v))
    }

    /// IDs of the series that satisfy every matcher. Matchers that accept
    /// the empty string also select series without the label, as in PromQL;
    /// a selector of only such matchers starts from all series.
    pub(crate) fn select(&self, matchers: &[Matcher]) -> Vec<SeriesId> {
        let mut result: Option<Vec<SeriesId>> = None;
        let (positive, negative): (Vec<&Matcher>, Vec<&Matcher>) =
            matchers.iter().partition(|m| !m.matches_empty());
        for m in positive {
            let ids = self.matching(m);
            result = Some(match result {
                None => ids,
                Some(prev) => intersect(&prev, &ids),
            });
            if result.as_ref().is_some_and(|r| r.is_empty()) {
                return Vec::new();
            }
        }
        let mut ids = result.unwrap_or_else(|| self.all.clone());
        for m in negative {
            // Series carrying a value the matcher rejects are excluded.
            let excluded = self.union_values(&m.name, |v| !m.matches(v));
            ids = subtract(&ids, &excluded);
        }
        ids
    }
}

fn merge_union(lists: &[&Vec<SeriesId>]) -> Vec<SeriesId> {
    match lists {
        [] => Vec::new(),
        [one] => (*one).clone(),
        _ => {
            let mut all: Vec<SeriesId> = lists.iter().flat_map(|l| l.iter().copied()).collect();
            all.sort_unstable();
            all.dedup();
            all
        }
    }
}

fn intersect(a: &[SeriesId], b: &[SeriesId]) -> Vec<SeriesId> {
    let mut out = Vec::with_capacity(a.len().min(b.len()));
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

fn subtract(a: &[SeriesId], b: &[SeriesId]) -> Vec<SeriesId> {
    let mut out = Vec::with_capacity(a.len());
    let mut j = 0;
    for &x in a {
        while j < b.len() && b[j] < x {
            j += 1;
        }
        if j < b.len() && b[j] == x {
            continue;
        }
        out.push(x);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use strata_model::MatchOp;

    fn build(series: &[Vec<(&str, &str)>]) -> Index {
        let mut idx = Index::default();
        for (id, labels) in series.iter().enumerate() {
            let interned: Vec<_> = labels.iter().map(|(n, v)| idx.intern(n, v)).collect();
            idx.add(id as SeriesId, &interned);
        }
        idx
    }

    fn m(op: MatchOp, n: &str, v: &str) -> Matcher {
        Matcher::new(op, n, v).unwrap()
    }

    #[test]
    fn selects_like_promql() {
        let idx = build(&[
            vec![("__name__", "up"), ("job", "api")],
            vec![("__name__", "up"), ("job", "db")],
            vec![("__name__", "x"), ("job", "api"), ("env", "prod")],
            vec![("__name__", "x")],
        ]);
        use MatchOp::*;
        assert_eq!(idx.select(&[m(Equal, "__name__", "up")]), vec![0, 1]);
        assert_eq!(idx.select(&[m(Equal, "job", "api")]), vec![0, 2]);
        assert_eq!(idx.select(&[m(NotEqual, "job", "api")]), vec![1, 3]);
        assert_eq!(idx.select(&[m(RegexMatch, "job", "a.*")]), vec![0, 2]);
        assert_eq!(idx.select(&[m(RegexNoMatch, "job", "a.*")]), vec![1, 3]);
        assert_eq!(idx.select(&[m(Equal, "env", "")]), vec![0, 1, 3]);
        assert_eq!(idx.select(&[m(NotEqual, "env", "")]), vec![2]);
        assert_eq!(
            idx.select(&[m(Equal, "__name__", "x"), m(RegexMatch, "job", "api|db")]),
            vec![2]
        );
        assert_eq!(idx.select(&[m(Equal, "nope", "1")]), Vec::<u32>::new());
    }

    #[test]
    fn removed_series_leave_no_trace() {
        let mut idx = Index::default();
        let labels: Vec<Vec<(Arc<str>, Arc<str>)>> = [
            vec![("__name__", "up"), ("job", "api")],
            vec![("__name__", "up"), ("job", "db")],
            vec![("__name__", "x"), ("env", "prod")],
        ]
        .iter()
        .map(|s| s.iter().map(|(n, v)| idx.intern(n, v)).collect())
        .collect();
        for (id, l) in labels.iter().enumerate() {
            idx.add(id as SeriesId, l);
        }
        idx.remove(1, &labels[1]);
        use MatchOp::*;
        assert_eq!(idx.select(&[m(Equal, "__name__", "up")]), vec![0]);
        assert_eq!(idx.select(&[m(Equal, "job", "db")]), Vec::<u32>::new());
        assert_eq!(idx.select(&[m(Equal, "env", "")]), vec![0]);
        assert_eq!(idx.label_values("job"), vec!["api".to_string()]);
        idx.remove(2, &labels[2]);
        assert_eq!(idx.label_names(), vec!["__name__", "job"]);
        assert_eq!(idx.len(), 1);
        // A new series gets a higher ID and is found again.
        idx.add(7, &labels[2]);
        assert_eq!(idx.select(&[m(NotEqual, "job", "api")]), vec![7]);
    }

    proptest! {
        /// The index agrees with checking every matcher against every series.
        #[test]
        fn index_agrees_with_brute_force(
            series in prop::collection::vec(
                prop::collection::btree_map("[abc]", "[xyz]{0,1}", 0..3), 0..20),
            matchers in prop::collection::vec(
                (0..4u8, "[abcd]", "[xyz.|*]{0,3}"), 1..3),
        ) {
            let series: Vec<Vec<(String, String)>> = series.into_iter()
                .map(|m| m.into_iter().filter(|(_, v)| !v.is_empty()).collect())
                .collect();
            let borrowed: Vec<Vec<(&str, &str)>> = series.iter()
                .map(|s| s.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect())
                .collect();
            let idx = build(&borrowed);
            let ops = [MatchOp::Equal, MatchOp::NotEqual, MatchOp::RegexMatch, MatchOp::RegexNoMatch];
            let ms: Vec<Matcher> = matchers.iter()
                .filter_map(|(op, n, v)| Matcher::new(ops[*op as usize], n.clone(), v.clone()).ok())
                .collect();
            prop_assume!(!ms.is_empty());
            let expected: Vec<SeriesId> = borrowed.iter().enumerate()
                .filter(|(_, s)| ms.iter().all(|m| {
                    let v = s.iter().find(|(n, _)| *n == m.name).map(|(_, v)| *v).unwrap_or("");
                    m.matches(v)
                }))
                .map(|(i, _)| i as SeriesId)
                .collect();
            prop_assert_eq!(idx.select(&ms), expected);
        }
    }
}
