//! Shard keys: where on the ring a series lives.
//!
//! The keys are 64-bit XXH3 (seed 0) hashes folded to 32 bits. XXH3 is a specified
//! algorithm, and the byte layout fed to it is fixed here, so a key computed today equals
//! the key computed by any later version of this code on any machine. Changing either would
//! move every series to different ingesters; treat the layout as an on-disk format.
//!
//! Layout: the tenant bytes, a `0xFF` byte, then the metric name bytes (for
//! [`shard_key`]) or, for each label, name bytes, `0xFF`, value bytes, `0xFF` (for
//! [`shard_key_all_labels`]). `0xFF` never occurs in UTF-8 text, so different inputs cannot
//! produce the same byte stream.

use strata_model::hash::xxh3_of;

const SEPARATOR: [u8; 1] = [0xff];

/// Shard key of a series when sharding by metric name: all series of one metric of one
/// tenant land on the same replication set.
pub fn shard_key(tenant: &str, metric_name: &str) -> u32 {
    fold(xxh3_of(|buf| {
        buf.extend_from_slice(tenant.as_bytes());
        buf.extend_from_slice(&SEPARATOR);
        buf.extend_from_slice(metric_name.as_bytes());
    }))
}

/// Shard key of a series when sharding by all labels (spreads a huge metric across the
/// ring). `labels` must come sorted by name, as the series' canonical label set does; the
/// function does not sort.
pub fn shard_key_all_labels<I, N, V>(tenant: &str, labels: I) -> u32
where
    I: IntoIterator<Item = (N, V)>,
    N: AsRef<str>,
    V: AsRef<str>,
{
    fold(xxh3_of(|buf| {
        buf.extend_from_slice(tenant.as_bytes());
        buf.extend_from_slice(&SEPARATOR);
        for (name, value) in labels {
            buf.extend_from_slice(name.as_ref().as_bytes());
            buf.extend_from_slice(&SEPARATOR);
            buf.extend_from_slice(value.as_ref().as_bytes());
            buf.extend_from_slice(&SEPARATOR);
        }
    }))
}

fn fold(hash: u64) -> u32 {
    ((hash >> 32) ^ hash) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use twox_hash::XxHash3_64;

    #[test]
    fn keys_are_stable_across_versions() {
        // Golden values: if these change, every deployed series moves. Do not update them
        // without a migration plan.
        assert_eq!(shard_key("tenant-1", "http_requests_total"), GOLDEN_METRIC);
        assert_eq!(
            shard_key_all_labels(
                "tenant-1",
                [("__name__", "http_requests_total"), ("job", "api")]
            ),
            GOLDEN_LABELS
        );
    }

    const GOLDEN_METRIC: u32 = 4_164_703_976;
    const GOLDEN_LABELS: u32 = 1_599_526_195;

    #[test]
    fn streaming_equals_one_shot_over_documented_layout() {
        let bytes = b"tenant-1\xffhttp_requests_total";
        assert_eq!(
            shard_key("tenant-1", "http_requests_total"),
            fold(XxHash3_64::oneshot(bytes))
        );
        let bytes = b"t\xffa\xff1\xffb\xff2\xff";
        assert_eq!(
            shard_key_all_labels("t", [("a", "1"), ("b", "2")]),
            fold(XxHash3_64::oneshot(bytes))
        );
    }

    #[test]
    fn separator_prevents_ambiguity() {
        assert_ne!(shard_key("ab", "c"), shard_key("a", "bc"));
        assert_ne!(
            shard_key_all_labels("t", [("a", "bc")]),
            shard_key_all_labels("t", [("ab", "c")])
        );
    }

    #[test]
    fn owned_and_borrowed_labels_hash_alike() {
        let owned = [("a".to_string(), "1".to_string())];
        assert_eq!(
            shard_key_all_labels("t", owned.iter().map(|(n, v)| (n, v))),
            shard_key_all_labels("t", [("a", "1")])
        );
    }
}
