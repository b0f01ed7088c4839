//! Read gaps: the parts of time for which an ingester may lack samples that
//! other replicas of its series hold.
//!
//! An ingester misses the pushes sent while it was down (between the last
//! write its WAL saw and its return to the ring), everything before its
//! start when it came back without its WAL, and everything before it joined
//! when it took over ranges from other members. It reports the gaps that
//! overlap a query's range with its answer (`missing` in
//! `QueryStreamResponse`), and the querier does not count it towards the read
//! quorum for those parts (see `libs/querier/src/ingesters.rs`).
//!
//! Gaps survive restarts in a small text file in the data directory (one
//! `start end` line per gap, Unix ms, both ends included, and `joined` after
//! the gaps of an ingester that was not a member yet) and are forgotten
//! once the other replicas have stored the data of their time span in
//! long-term storage (see [`ReadGap::expires_at_ms`]).

use std::path::Path;

/// A time range, both ends included, in Unix ms. `i64::MIN` as the start
/// means "since forever".
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ReadGap {
    pub start_ms: i64,
    pub end_ms: i64,
    /// The ingester was not a ring member then: it joined later, taking
    /// ranges over from others (who may still hold their data). Otherwise it
    /// was a member that missed writes.
    pub joined: bool,
}

impl ReadGap {
    /// A gap of a member that missed writes.
    pub fn new(start_ms: i64, end_ms: i64) -> Self {
        Self {
            start_ms,
            end_ms,
            joined: false,
        }
    }

    /// A gap of an ingester that was not a member yet.
    pub fn before_join(start_ms: i64, end_ms: i64) -> Self {
        Self {
            start_ms,
            end_ms,
            joined: true,
        }
    }
    /// When the gap stops mattering: every replica that took the gap's pushes
    /// has closed the chunks of its time span (aligned windows of
    /// `window_ms`) and, `settle_ms` later, flushed them, so the querier finds
    /// the data in long-term storage. `None` (no long-term storage: replicas'
    /// memory is the only copy) never expires.
    pub fn expires_at_ms(&self, window_ms: i64, settle_ms: Option<i64>) -> i64 {
        match settle_ms {
            Some(settle) => {
                crate::series::window_end(self.end_ms, window_ms).saturating_add(settle)
            }
            None => i64::MAX,
        }
    }
}

/// The end of a gap that is still open: the ingester has not yet returned to
/// the ring.
pub const OPEN: i64 = i64::MAX;

/// What an ingester knows about its past when it starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StartFacts {
    /// When its write-ahead log was last written, if it found one.
    pub wal_last_written_ms: Option<i64>,
    /// It was a ring member before (its tokens file or ring entry exists).
    pub was_member: bool,
    /// At least replication-factor other members are ACTIVE: the ring is
    /// complete without it, so the ranges it takes over held data on others
    /// before it joined. (While a ring has fewer members than the
    /// replication factor, every member holds every series: a member
    /// completing it takes nothing from anyone.)
    pub ring_full_without_it: bool,
    /// How far before the WAL's last write a sample pushed after it may be
    /// timestamped (`ingester.read_gap_lookback`).
    pub lookback_ms: i64,
}

/// The gap an ingester opens when it starts (closed with [`close_open`] once
/// it is back in the ring), if any:
///
/// - it found its WAL: the pushes since the WAL's last write, whose samples
///   may be up to the lookback older;
/// - no WAL, but it was a member before (it lost its WAL or runs without
///   one): everything before;
/// - a new member joining a ring complete without it: everything before, as
///   a [`ReadGap::before_join`] gap;
/// - a new member of a ring still forming: nothing.
pub fn gap_at_start(facts: &StartFacts) -> Option<ReadGap> {
    match facts.wal_last_written_ms {
        Some(t) => Some(ReadGap::new(t.saturating_sub(facts.lookback_ms), OPEN)),
        None if facts.was_member => Some(ReadGap::new(i64::MIN, OPEN)),
        None if facts.ring_full_without_it => Some(ReadGap::before_join(i64::MIN, OPEN)),
        None => None,
    }
}

/// Ends every open gap at `end_ms`.
pub fn close_open(gaps: &mut [ReadGap], end_ms: i64) {
    for g in gaps.iter_mut().filter(|g| g.end_ms == OPEN) {
        g.end_ms = end_ms;
    }
}

/// The gaps overlapping `[start_ms, end_ms]`, clipped to it, merged and
/// sorted.
pub fn overlapping(gaps: &[ReadGap], start_ms: i64, end_ms: i64) -> Vec<ReadGap> {
    let mut out: Vec<ReadGap> = gaps
        .iter()
        .filter(|g| g.start_ms <= end_ms && g.end_ms >= start_ms && g.start_ms <= g.end_ms)
        .map(|g| ReadGap {
            start_ms: g.start_ms.max(start_ms),
            end_ms: g.end_ms.min(end_ms),
            joined: g.joined,
        })
        .collect();
    merge(&mut out);
    out
}

/// Sorts `gaps` and merges the ones of a kind that overlap or touch.
pub fn merge(gaps: &mut Vec<ReadGap>) {
    gaps.retain(|g| g.start_ms <= g.end_ms);
    gaps.sort_by_key(|g| (g.joined, g.start_ms, g.end_ms));
    let mut merged: Vec<ReadGap> = Vec::with_capacity(gaps.len());
    for g in gaps.drain(..) {
        match merged.last_mut() {
            Some(last)
                if last.joined == g.joined && g.start_ms <= last.end_ms.saturating_add(1) =>
            {
                last.end_ms = last.end_ms.max(g.end_ms);
            }
            _ => merged.push(g),
        }
    }
    *gaps = merged;
}

/// Reads the gaps file; a missing file is no gaps. Lines that do not parse
/// are skipped with a warning (the file is advisory: losing it can only
/// make reads less careful, never lose data).
pub fn load(path: &Path) -> Vec<ReadGap> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot read the read-gaps file; ignoring it");
            return Vec::new();
        }
    };
    let mut gaps = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let mut parts = line.split_whitespace();
        match (
            parts.next().and_then(|s| s.parse::<i64>().ok()),
            parts.next().and_then(|s| s.parse::<i64>().ok()),
            parts.next(),
        ) {
            (Some(start_ms), Some(end_ms), None) => gaps.push(ReadGap::new(start_ms, end_ms)),
            (Some(start_ms), Some(end_ms), Some("joined")) => {
                gaps.push(ReadGap::before_join(start_ms, end_ms))
            }
            _ => {
                tracing::warn!(path = %path.display(), line, "skipping a malformed line of the read-gaps file")
            }
        }
    }
    merge(&mut gaps);
    gaps
}

/// Writes the gaps file atomically (a temporary file renamed over it).
pub fn save(path: &Path, gaps: &[ReadGap]) -> std::io::Result<()> {
    let mut text = String::new();
    for g in gaps {
        let kind = if g.joined { " joined" } else { "" };
        text.push_str(&format!("{} {}{kind}\n", g.start_ms, g.end_ms));
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_clips_and_merges() {
        let gaps = [
            ReadGap::new(100, 200),
            ReadGap::new(150, 300),
            ReadGap::new(500, 600),
            ReadGap::new(i64::MIN, 10),
        ];
        assert_eq!(
            overlapping(&gaps, 0, 550),
            vec![
                ReadGap::new(0, 10),
                ReadGap::new(100, 300),
                ReadGap::new(500, 550)
            ]
        );
        assert!(overlapping(&gaps, 301, 499).is_empty());
    }

    #[test]
    fn file_round_trip_and_bad_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("read-gaps");
        assert!(load(&path).is_empty());
        let gaps = vec![
            ReadGap::new(i64::MIN, 5),
            ReadGap::before_join(i64::MIN, 20),
        ];
        save(&path, &gaps).unwrap();
        assert_eq!(load(&path), gaps);
        std::fs::write(&path, "1 2\ngarbage\n7\n30 40\n").unwrap();
        assert_eq!(load(&path), vec![ReadGap::new(1, 2), ReadGap::new(30, 40)]);
    }

    #[test]
    fn expiry_follows_chunk_windows_and_flushes() {
        let hour = 3_600_000;
        let g = ReadGap::new(0, hour + 5);
        assert_eq!(g.expires_at_ms(2 * hour, Some(60_000)), 2 * hour + 60_000);
        assert_eq!(g.expires_at_ms(2 * hour, None), i64::MAX);
    }

    #[test]
    fn gap_at_start_by_what_the_ingester_finds() {
        let facts = StartFacts {
            wal_last_written_ms: Some(100_000),
            was_member: true,
            ring_full_without_it: true,
            lookback_ms: 30_000,
        };
        assert_eq!(gap_at_start(&facts), Some(ReadGap::new(70_000, OPEN)));
        let lost_wal = StartFacts {
            wal_last_written_ms: None,
            ..facts
        };
        assert_eq!(gap_at_start(&lost_wal), Some(ReadGap::new(i64::MIN, OPEN)));
        let new_in_old_ring = StartFacts {
            was_member: false,
            ..lost_wal
        };
        assert_eq!(
            gap_at_start(&new_in_old_ring),
            Some(ReadGap::before_join(i64::MIN, OPEN))
        );
        let new_ring = StartFacts {
            ring_full_without_it: false,
            ..new_in_old_ring
        };
        assert_eq!(gap_at_start(&new_ring), None);

        let mut gaps = vec![ReadGap::new(1, 2), ReadGap::new(70_000, OPEN)];
        close_open(&mut gaps, 90_000);
        assert_eq!(gaps, vec![ReadGap::new(1, 2), ReadGap::new(70_000, 90_000)]);
    }
}
