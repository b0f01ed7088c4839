//! One-shot XXH3 over bytes laid out by the caller.
//!
//! Fingerprints and shard keys hash short byte layouts (labels joined by
//! `0xFF`) on every sample batch. twox-hash's streaming hasher allocates
//! its secret buffer per hasher and handles many small writes slowly, so
//! the layout is written into a per-thread buffer and hashed in one call.
//! One-shot and streaming XXH3 of the same bytes are the same value.

use std::cell::RefCell;

use twox_hash::XxHash3_64;

thread_local! {
    static BUF: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(1024));
}

/// XXH3-64 (seed 0) of the bytes `fill` appends to an empty buffer.
/// `fill` must not call `xxh3_of` itself.
pub fn xxh3_of(fill: impl FnOnce(&mut Vec<u8>)) -> u64 {
    BUF.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            buf.clear();
            fill(&mut buf);
            let hash = XxHash3_64::oneshot(&buf);
            // Do not keep a huge buffer alive after one odd input.
            if buf.capacity() > 64 * 1024 {
                *buf = Vec::with_capacity(1024);
            }
            hash
        }
        // Re-entered from inside `fill`: use a buffer of its own.
        Err(_) => {
            let mut buf = Vec::new();
            fill(&mut buf);
            XxHash3_64::oneshot(&buf)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::Hasher;

    #[test]
    fn equals_streaming_hash_of_the_same_bytes() {
        for len in [0usize, 1, 3, 8, 16, 17, 128, 129, 240, 241, 1000, 70_000] {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            let mut streaming = XxHash3_64::with_seed(0);
            for piece in bytes.chunks(7) {
                streaming.write(piece);
            }
            assert_eq!(
                xxh3_of(|b| b.extend_from_slice(&bytes)),
                streaming.finish(),
                "len {len}"
            );
        }
    }

    #[test]
    fn reentrant_use_still_hashes_correctly() {
        let outer = xxh3_of(|b| {
            let inner = xxh3_of(|b2| b2.extend_from_slice(b"inner"));
            assert_eq!(inner, XxHash3_64::oneshot(b"inner"));
            b.extend_from_slice(b"outer");
        });
        assert_eq!(outer, XxHash3_64::oneshot(b"outer"));
    }
}
