//! Grouping series by some of their labels (`sum by (…)`, `without (…)`,
//! classic histograms' buckets) without building a label set per series.
//!
//! Each series is hashed over the labels that decide its group (in
//! parallel for many series); series are then put in groups by hash, in
//! series order, and each is checked against its group's first series
//! label by label. Only if two different label sets ever share a hash
//! (never seen in practice) is the grouping done again the slow way, by
//! whole label sets, so the groups are always exact.

use std::collections::HashMap;

use strata_model::{Label, Labels};
use twox_hash::XxHash3_64;

use crate::eval::Evaluator;
use crate::parallel;
use crate::QueryError;

/// Which labels decide a series' group.
pub(crate) enum LabelFilter {
    /// Only these (sorted, once each).
    Only(Vec<String>),
    /// All but these (sorted, once each).
    AllBut(Vec<String>),
}

impl LabelFilter {
    pub fn only(names: &[String]) -> Self {
        LabelFilter::Only(sorted(names))
    }

    pub fn all_but(names: &[String]) -> Self {
        LabelFilter::AllBut(sorted(names))
    }

    pub fn keeps(&self, name: &str) -> bool {
        match self {
            LabelFilter::Only(names) => names.binary_search_by(|n| n.as_str().cmp(name)).is_ok(),
            LabelFilter::AllBut(names) => names.binary_search_by(|n| n.as_str().cmp(name)).is_err(),
        }
    }

    /// Appends the labels kept to `out`, walking the sorted labels and
    /// the sorted names together (and stopping after the last name of an
    /// `Only`): every label name compared is a string read from memory.
    fn kept_into<'l>(&self, labels: &'l Labels, out: &mut Vec<&'l Label>) {
        match self {
            LabelFilter::Only(names) => {
                let mut names = names.iter().peekable();
                for l in labels.iter() {
                    loop {
                        let Some(n) = names.peek() else { return };
                        match n.as_str().cmp(&l.name) {
                            std::cmp::Ordering::Less => {
                                names.next();
                            }
                            std::cmp::Ordering::Equal => {
                                out.push(l);
                                names.next();
                                break;
                            }
                            std::cmp::Ordering::Greater => break,
                        }
                    }
                }
            }
            LabelFilter::AllBut(names) => {
                let mut names = names.iter().peekable();
                for l in labels.iter() {
                    let mut dropped = false;
                    while let Some(n) = names.peek() {
                        match n.as_str().cmp(&l.name) {
                            std::cmp::Ordering::Less => {
                                names.next();
                            }
                            std::cmp::Ordering::Equal => {
                                dropped = true;
                                names.next();
                                break;
                            }
                            std::cmp::Ordering::Greater => break,
                        }
                    }
                    if !dropped {
                        out.push(l);
                    }
                }
            }
        }
    }

    /// The labels kept, as a label set.
    pub fn apply(&self, labels: &Labels) -> Labels {
        let mut kept = Vec::new();
        self.kept_into(labels, &mut kept);
        Labels::from_sorted(kept.into_iter().cloned().collect())
    }
}

fn sorted(names: &[String]) -> Vec<String> {
    let mut v = names.to_vec();
    v.sort();
    v.dedup();
    v
}

/// Series (by index into the input) put in groups: `gid[k]` is series
/// `k`'s group, `first[g]` the first series of group `g`; groups are
/// numbered in the order their first series comes.
pub(crate) struct Groups {
    pub gid: Vec<usize>,
    pub first: Vec<usize>,
}

#[cfg(not(test))]
fn hash(bytes: &[u8]) -> u64 {
    XxHash3_64::oneshot(bytes)
}

/// Makes every hash collide, to test the way out (harmless to other
/// tests running meanwhile: grouping stays exact).
#[cfg(test)]
static COLLIDE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[cfg(test)]
fn hash(bytes: &[u8]) -> u64 {
    if COLLIDE.load(std::sync::atomic::Ordering::Relaxed) {
        return 42;
    }
    XxHash3_64::oneshot(bytes)
}

/// What one part of the series found: each series' hash, and the first
/// series (with its labels kept) of each hash in the part.
struct PartGroups<'l> {
    hashes: Vec<u64>,
    first: HashMap<u64, (usize, Vec<&'l Label>)>,
    /// False when a series' labels differ from the first of its hash's.
    consistent: bool,
}

impl Evaluator<'_> {
    /// Groups `labels` by the labels `filter` keeps.
    pub(crate) fn group_by(
        &mut self,
        labels: &[&Labels],
        filter: &LabelFilter,
    ) -> Result<Groups, QueryError> {
        let work = labels.len().saturating_mul(8);
        let nparts = self.par.parts(labels.len(), work);
        let parts = self.run_parts(parallel::ranges(labels.len(), nparts), |w, r| {
            let mut buf = Vec::new();
            let mut kept: Vec<&Label> = Vec::new();
            let mut part = PartGroups {
                hashes: Vec::with_capacity(r.len()),
                first: HashMap::new(),
                consistent: true,
            };
            for k in r {
                if k % 1024 == 0 {
                    w.tick()?;
                }
                kept.clear();
                filter.kept_into(labels[k], &mut kept);
                buf.clear();
                for l in &kept {
                    buf.extend_from_slice(l.name.as_bytes());
                    buf.push(0xff);
                    buf.extend_from_slice(l.value.as_bytes());
                    buf.push(0xff);
                }
                let h = hash(&buf);
                part.hashes.push(h);
                match part.first.entry(h) {
                    std::collections::hash_map::Entry::Vacant(e) => {
                        e.insert((k, kept.clone()));
                    }
                    std::collections::hash_map::Entry::Occupied(e) => {
                        if e.get().1 != kept {
                            part.consistent = false;
                        }
                    }
                }
            }
            Ok(part)
        })?;
        let mut index: HashMap<u64, usize> = HashMap::new();
        let mut first = Vec::new();
        let mut gid = Vec::with_capacity(labels.len());
        let mut consistent = true;
        let mut base = 0;
        for part in &parts {
            consistent &= part.consistent;
            for (i, h) in part.hashes.iter().enumerate() {
                gid.push(*index.entry(*h).or_insert_with(|| {
                    first.push(base + i);
                    first.len() - 1
                }));
            }
            base += part.hashes.len();
        }
        // The parts' first series of a hash are the same labels as the
        // group's first series.
        let mut kept = Vec::new();
        for part in &parts {
            for (h, (k, part_kept)) in &part.first {
                let rep = index.get(h).and_then(|g| first.get(*g)).copied();
                if rep != Some(*k) {
                    kept.clear();
                    if let Some(rep) = rep {
                        filter.kept_into(labels[rep], &mut kept);
                    }
                    consistent &= rep.is_some() && kept == *part_kept;
                }
            }
        }
        if consistent {
            return Ok(Groups { gid, first });
        }
        // Two label sets share a hash: group by whole label sets.
        let mut index: HashMap<Labels, usize> = HashMap::new();
        let mut first = Vec::new();
        let gid = labels
            .iter()
            .enumerate()
            .map(|(k, l)| {
                *index.entry(filter.apply(l)).or_insert_with(|| {
                    first.push(k);
                    first.len() - 1
                })
            })
            .collect();
        Ok(Groups { gid, first })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::promqltest::MemStorage;
    use crate::EngineOptions;

    fn groups(labels: &[Labels], filter: &LabelFilter, parts: usize) -> (Vec<usize>, Vec<usize>) {
        let storage = MemStorage::new();
        let mut ev = Evaluator::new(&storage, &EngineOptions::default(), 0, 0);
        ev.par = parallel::Par {
            threads: parts,
            min_work: 0,
        };
        let refs: Vec<&Labels> = labels.iter().collect();
        let g = ev.group_by(&refs, filter).expect("grouping");
        (g.gid, g.first)
    }

    #[test]
    fn groups_are_exact_even_when_hashes_collide() {
        let labels: Vec<Labels> = (0..40)
            .map(|i| {
                Labels::from_pairs([
                    ("__name__", "m".to_string()),
                    ("a", (i % 3).to_string()),
                    ("b", (i % 5).to_string()),
                    ("le", i.to_string()),
                ])
            })
            .collect();
        for filter in [
            LabelFilter::only(&["b".into(), "a".into()]),
            LabelFilter::all_but(&["le".into()]),
            LabelFilter::only(&["zz".into()]),
        ] {
            let want = groups(&labels, &filter, 1);
            for parts in [1, 2, 3, 7] {
                assert_eq!(groups(&labels, &filter, parts), want);
                COLLIDE.store(true, std::sync::atomic::Ordering::Relaxed);
                let collided = groups(&labels, &filter, parts);
                COLLIDE.store(false, std::sync::atomic::Ordering::Relaxed);
                assert_eq!(collided, want);
            }
        }
        let (gid, first) = groups(&labels, &LabelFilter::only(&["a".into()]), 2);
        assert_eq!(first, vec![0, 1, 2]);
        assert_eq!(&gid[..6], &[0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn filters_keep_the_right_labels() {
        let l = Labels::from_pairs([("__name__", "m"), ("a", "1"), ("b", "2"), ("c", "3")]);
        let by = LabelFilter::only(&["c".into(), "a".into(), "a".into()]);
        assert_eq!(by.apply(&l), Labels::from_pairs([("a", "1"), ("c", "3")]));
        let without = LabelFilter::all_but(&["b".into(), "__name__".into()]);
        assert_eq!(
            without.apply(&l),
            Labels::from_pairs([("a", "1"), ("c", "3")])
        );
    }
}
