//! Cache keys.

use std::fmt::Write as _;

/// Longest readable prefix taken from the first part.
const MAX_PREFIX: usize = 24;

/// A stable, memcached-safe key for `parts`.
///
/// The key is `<prefix>:<hash>`: `<prefix>` is a readable, shortened copy of the first
/// part (at most 24 bytes of `[A-Za-z0-9._:-]`, other bytes replaced by `_`, trailing `:`
/// dropped; `_` when empty), `<hash>` is the 128-bit xxh3 of all parts, each preceded by
/// its length (so `["ab", "c"]` and `["a", "bc"]` differ), as 32 lowercase hex digits.
/// The whole key is at most 57 ASCII bytes with no whitespace. Stable across processes
/// and releases: the hash is seedless.
///
/// Pass the key family as the first part, e.g. `cache_key(&[b"c", tenant, object, ...])`
/// gives `c:0f3a…`.
pub fn cache_key(parts: &[&[u8]]) -> String {
    let mut hasher = twox_hash::XxHash3_128::new();
    for part in parts {
        hasher.write(&(part.len() as u64).to_le_bytes());
        hasher.write(part);
    }
    let hash = hasher.finish_128();

    let mut key = String::with_capacity(MAX_PREFIX + 33);
    if let Some(first) = parts.first() {
        for &b in first.iter().take(MAX_PREFIX) {
            let c = if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':') {
                b as char
            } else {
                '_'
            };
            key.push(c);
        }
        while key.ends_with(':') {
            key.pop();
        }
    }
    if key.is_empty() {
        key.push('_');
    }
    key.push(':');
    let _ = write!(key, "{hash:032x}");
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readable_prefix_and_fixed_length_hash() {
        let k = cache_key(&[b"c", b"tenant-1", b"object/17"]);
        assert!(k.starts_with("c:"), "{k}");
        assert_eq!(k.len(), 2 + 32);
        assert!(k[2..].bytes().all(|b| b.is_ascii_hexdigit()));
    }

    #[test]
    fn stable_across_calls_and_releases() {
        assert_eq!(cache_key(&[b"oi", b"x"]), cache_key(&[b"oi", b"x"]));
        // Pinned: a changed key format would silently empty every deployed cache.
        assert_eq!(
            cache_key(&[b"iq", b"tenant", b"query"]),
            "iq:c18a63a074730f502e01c116d255c8f4"
        );
    }

    #[test]
    fn part_boundaries_matter() {
        assert_ne!(
            cache_key(&[b"c", b"ab", b"c"]),
            cache_key(&[b"c", b"a", b"bc"])
        );
        assert_ne!(cache_key(&[b"c", b""]), cache_key(&[b"c"]));
    }

    #[test]
    fn odd_first_parts_are_made_safe() {
        let long = [b'x'; 300];
        let k = cache_key(&[&long, b"y"]);
        assert_eq!(k.len(), MAX_PREFIX + 1 + 32);
        let k = cache_key(&[b"a b\r\n\x00\xff~", b"y"]);
        assert!(k.starts_with("a_b_____:"), "{k}");
        assert!(k.bytes().all(|b| b.is_ascii_graphic()));
        assert!(cache_key(&[]).starts_with("_:"));
        assert!(cache_key(&[b"", b"z"]).starts_with("_:"));
        assert!(cache_key(&[b"wd:", b"z"]).starts_with("wd:"));
        assert!(!cache_key(&[b"wd:", b"z"]).starts_with("wd::"));
    }
}
