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
///
/// Immutable and shared: a clone is a reference count, so the read path
/// (ingester answer, replica merge, per-query storage, engine, answer)
/// hands one label set along instead of copying its strings at each step.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Labels(std::sync::Arc<[Label]>);

impl Serialize for Labels {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.as_ref().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Labels {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Vec::<Label>::deserialize(deserializer).map(|v| Labels(v.into()))
    }
}

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
        Self(labels.into())
    }

    /// Wraps labels the caller guarantees are sorted by name and unique.
    pub fn from_sorted(labels: Vec<Label>) -> Self {
        debug_assert!(labels.windows(2).all(|w| w[0].name < w[1].name));
        Self(labels.into())
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

    /// The labels, copied when the set is shared.
    pub fn into_vec(self) -> Vec<Label> {
        self.0.to_vec()
    }

    pub fn fingerprint(&self) -> u64 {
        fingerprint(self.0.iter().map(|l| (l.name.as_str(), l.value.as_str())))
    }

    /// Approximate heap bytes held by this label set.
    pub fn heap_size(&self) -> usize {
        self.0.len() * std::mem::size_of::<Label>()
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

/// `items` sorted by their label sets, in [`Labels`]'s order (ties keep
/// their order).
///
/// Comparing two label sets pair by pair calls `memcmp` twice per label up
/// to the first difference, and the series of one selection share most of
/// their labels. Here each label set is written once into one buffer as
/// `name 0 value 0 ...` and the sort compares those byte strings: one
/// `memcmp` per comparison, over contiguous memory. Names and values without
/// NUL bytes order exactly like [`Labels`] that way (the terminator sorts a
/// prefix first); when some label holds a NUL byte the label sets are
/// compared directly instead.
pub fn sorted_by_labels<T>(items: Vec<T>, labels: impl Fn(&T) -> &Labels) -> Vec<T> {
    let mut buf: Vec<u8> = Vec::new();
    let mut ends: Vec<usize> = Vec::with_capacity(items.len());
    let mut has_nul = false;
    for item in &items {
        for l in labels(item).iter() {
            has_nul |= l.name.as_bytes().contains(&0) || l.value.as_bytes().contains(&0);
            buf.extend_from_slice(l.name.as_bytes());
            buf.push(0);
            buf.extend_from_slice(l.value.as_bytes());
            buf.push(0);
        }
        ends.push(buf.len());
    }
    let mut order: Vec<usize> = (0..items.len()).collect();
    if has_nul {
        order.sort_by(|&a, &b| labels(&items[a]).cmp(labels(&items[b])));
    } else {
        let key = |i: usize| {
            let start = if i == 0 { 0 } else { ends[i - 1] };
            &buf[start..ends[i]]
        };
        order.sort_unstable_by(|&a, &b| key(a).cmp(key(b)).then(a.cmp(&b)));
    }
    let mut slots: Vec<Option<T>> = items.into_iter().map(Some).collect();
    order
        .into_iter()
        .filter_map(|i| slots.get_mut(i).and_then(Option::take))
        .collect()
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

    #[test]
    fn sorted_by_labels_orders_like_labels() {
        let sets = [
            vec![("__name__", "ab")],
            vec![("__name__", "a")],
            vec![("__name__", "a"), ("b", "1")],
            vec![("__name__", "a"), ("a", "2")],
            vec![("__name__", "a"), ("aa", "1")],
            vec![("__name__", "a"), ("a", "10")],
            vec![("__name__", "a"), ("a", "1"), ("z", "z")],
            vec![("__name__", "a"), ("a", "1")],
            vec![("__name__", "b")],
            vec![("x", "1")],
        ];
        let items: Vec<(usize, Labels)> = sets
            .iter()
            .enumerate()
            .map(|(i, s)| (i, Labels::from_pairs(s.iter().copied())))
            .collect();
        let mut expected = items.clone();
        expected.sort_by(|a, b| a.1.cmp(&b.1));
        assert_eq!(sorted_by_labels(items.clone(), |i| &i.1), expected);
        // Ties keep their order.
        let twice: Vec<(usize, Labels)> = items.iter().chain(&items).cloned().collect();
        let mut expected = twice.clone();
        expected.sort_by(|a, b| a.1.cmp(&b.1));
        assert_eq!(sorted_by_labels(twice, |i| &i.1), expected);
        // A NUL byte in a value falls back to comparing label sets.
        let nul: Vec<(usize, Labels)> = [
            vec![("a", "x\0y")],
            vec![("a", "x")],
            vec![("a", "x"), ("b", "1")],
        ]
        .iter()
        .enumerate()
        .map(|(i, s)| (i, Labels::from_pairs(s.iter().copied())))
        .collect();
        let mut expected = nul.clone();
        expected.sort_by(|a, b| a.1.cmp(&b.1));
        assert_eq!(sorted_by_labels(nul, |i| &i.1), expected);
    }
}
