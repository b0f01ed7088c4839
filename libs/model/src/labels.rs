use std::fmt;

use serde::{Deserialize, Serialize};

/// The label that holds the metric name.
pub const METRIC_NAME: &str = "__name__";

/// One label pair.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Label {
    pub name: String,
    pub value: String,
}

impl Label {
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// A label set sorted by name, with unique names and no empty values.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Labels(Vec<Label>);

impl Labels {
    /// Builds a label set from pairs in any order. Pairs with an empty value
    /// are dropped (Prometheus treats them as absent); for duplicate names the
    /// last one wins.
    pub fn from_pairs<N: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (N, V)>,
    ) -> Self {
        let mut labels: Vec<Label> = pairs
            .into_iter()
            .map(|(n, v)| Label::new(n, v))
            .filter(|l| !l.value.is_empty())
            .collect();
        labels.sort_by(|a, b| a.name.cmp(&b.name));
        labels.reverse();
        labels.dedup_by(|a, b| a.name == b.name);
        labels.reverse();
        Self(labels)
    }

    /// Wraps labels the caller guarantees are sorted by name and unique.
    pub fn from_sorted(labels: Vec<Label>) -> Self {
        debug_assert!(labels.windows(2).all(|w| w[0].name < w[1].name));
        Self(labels)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|l| l.name.as_str().cmp(name))
            .ok()
            .map(|i| self.0[i].value.as_str())
    }

    pub fn metric_name(&self) -> Option<&str> {
        self.get(METRIC_NAME)
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Label> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn as_slice(&self) -> &[Label] {
        &self.0
    }

    pub fn into_vec(self) -> Vec<Label> {
        self.0
    }

    pub fn fingerprint(&self) -> u64 {
        fingerprint(self.0.iter().map(|l| (l.name.as_str(), l.value.as_str())))
    }

    /// Approximate heap bytes held by this label set.
    pub fn heap_size(&self) -> usize {
        self.0.capacity() * std::mem::size_of::<Label>()
            + self
                .0
                .iter()
                .map(|l| l.name.capacity() + l.value.capacity())
                .sum::<usize>()
    }
}

impl fmt::Display for Labels {
    /// Formats like Prometheus: `name{a="1", b="2"}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.metric_name().unwrap_or("");
        write!(f, "{name}{{")?;
        let mut first = true;
        for l in self.0.iter().filter(|l| l.name != METRIC_NAME) {
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            write!(f, "{}={:?}", l.name, l.value)?;
        }
        f.write_str("}")
    }
}

impl<'a> IntoIterator for &'a Labels {
    type Item = &'a Label;
    type IntoIter = std::slice::Iter<'a, Label>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// Stable 64-bit fingerprint of a sorted label set (XXH3 over
/// `name 0xff value 0xff ...`). Equal label sets always have equal
/// fingerprints; different ones may collide, so users of fingerprints must
/// compare the labels themselves before treating two series as one.
pub fn fingerprint<'a>(labels: impl IntoIterator<Item = (&'a str, &'a str)>) -> u64 {
    crate::hash::xxh3_of(|buf| {
        for (name, value) in labels {
            buf.extend_from_slice(name.as_bytes());
            buf.push(0xff);
            buf.extend_from_slice(value.as_bytes());
            buf.push(0xff);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_pairs_sorts_drops_empty_and_dedups() {
        let l = Labels::from_pairs([("b", "2"), ("a", "1"), ("c", ""), ("a", "3")]);
        assert_eq!(l.len(), 2);
        assert_eq!(l.get("a"), Some("3"));
        assert_eq!(l.get("b"), Some("2"));
        assert_eq!(l.get("c"), None);
    }

    #[test]
    fn display_like_prometheus() {
        let l = Labels::from_pairs([("__name__", "up"), ("job", "x")]);
        assert_eq!(l.to_string(), "up{job=\"x\"}");
    }

    #[test]
    fn fingerprint_is_xxh3_of_the_documented_layout() {
        use std::hash::Hasher;
        let mut h = twox_hash::XxHash3_64::with_seed(0);
        h.write(b"__name__\xffup\xffjob\xffapi\xff");
        assert_eq!(
            fingerprint([("__name__", "up"), ("job", "api")]),
            h.finish()
        );
        assert_eq!(fingerprint([("__name__", "up"), ("job", "api")]), GOLDEN_FP);
    }

    /// Golden value: fingerprints key series in memory and, later, in the
    /// index; changing the layout or hash changes every one of them.
    const GOLDEN_FP: u64 = 12_762_544_300_997_460_299;

    #[test]
    fn fingerprint_separates_boundaries() {
        let a = fingerprint([("ab", "c")]);
        let b = fingerprint([("a", "bc")]);
        assert_ne!(a, b);
        assert_eq!(
            Labels::from_pairs([("a", "1")]).fingerprint(),
            fingerprint([("a", "1")])
        );
    }
}
