//! Prometheus-compatible XOR ("Gorilla") chunks for float samples.
//!
//! A chunk stores up to 65535 `(timestamp_ms: i64, value: f64)` samples of one
//! series and is byte-for-byte the format Prometheus writes with
//! `tsdb/chunkenc` encoding `XOR` (encoding byte 1 in block segment files), so
//! chunks can be exchanged with Prometheus tooling in both directions.
//!
//! # Layout
//!
//! Bits are packed most-significant-bit first; the final byte is zero padded.
//! One quirk of Prometheus' bit writer is reproduced on purpose: a field that
//! is a whole number of bytes and starts on a byte boundary (e.g. the first
//! sample's value) leaves an extra all-zero byte at the end of the stream, which
//! the next write fills. Prometheus stores that byte, so a chunk whose last
//! field ended that way is one byte longer than strictly needed.
//!
//! * **Header**: the number of samples as a 2-byte big-endian integer.
//! * **Sample 0**: the timestamp as a signed zig-zag varint (Go's
//!   `binary.PutVarint`), followed by the 64 raw bits of the value.
//! * **Sample 1**: the timestamp delta `t1 - t0` as an unsigned varint (Go's
//!   `binary.PutUvarint`), then the value as an XOR against the previous value
//!   (see below).
//! * **Sample n ≥ 2**: the *delta of deltas* `dod = (tn - tn-1) - (tn-1 - tn-2)`
//!   in one of five buckets, then the XOR value:
//!
//!   | prefix | payload | range of `dod`                  |
//!   |--------|---------|---------------------------------|
//!   | `0`    | –       | 0                               |
//!   | `10`   | 14 bits | `-(2^13 - 1) ..= 2^13`          |
//!   | `110`  | 17 bits | `-(2^16 - 1) ..= 2^16`          |
//!   | `1110` | 20 bits | `-(2^19 - 1) ..= 2^19`          |
//!   | `1111` | 64 bits | anything else                   |
//!
//!   The short payloads are the low `w` bits of the two's complement; a decoded
//!   `w`-bit payload greater than `2^(w-1)` is negative (hence the asymmetric ranges).
//!
//! **Values** are XORed with the previous value's bit pattern:
//!
//! * `0` — identical bit pattern.
//! * `10` + *m* bits — the changed bits fit inside the previous "window" of
//!   leading/trailing zero bits; only the *m* = 64 − leading − trailing middle
//!   bits are written.
//! * `11` + 5 bits leading-zero count + 6 bits significant-bit count + the
//!   significant bits — a new window. The leading count is capped at 31 so it
//!   fits 5 bits, and a significant-bit count of 64 is stored as 0.
//!
//! All timestamp arithmetic wraps like Go's, so every `i64` sequence round-trips
//! (increasing timestamps are simply the only ones that encode compactly), and
//! values round-trip by bit pattern: NaN payloads, the staleness marker
//! ([`STALE_NAN_BITS`]), `-0.0` and infinities are preserved exactly.
//!
//! # Example
//!
//! ```
//! use strata_chunk::{XorChunk, XorIterator};
//!
//! let mut c = XorChunk::new();
//! c.append(1_000, 1.5);
//! c.append(16_000, 2.5);
//! let bytes = c.bytes().to_vec();
//! let samples: Vec<_> = XorIterator::new(&bytes).collect();
//! assert_eq!(samples, vec![(1_000, 1.5), (16_000, 2.5)]);
//!
//! // Reload and keep appending, e.g. after reading the chunk back from storage.
//! let mut c = XorChunk::from_bytes(bytes).unwrap();
//! c.append(31_000, 3.5);
//! assert_eq!(c.num_samples(), 3);
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod bstream;
mod error;
mod xor;

pub use error::ChunkError;
pub use xor::{XorChunk, XorIterator};

/// Encoding byte Prometheus stores in front of XOR chunk data (`chunkenc.EncXOR`).
pub const ENCODING_XOR: u8 = 1;

/// Number of samples per chunk Prometheus aims for before cutting a new chunk.
pub const TARGET_SAMPLES_PER_CHUNK: usize = 120;

/// Bit pattern of the Prometheus staleness marker, a signalling NaN
/// (`value.StaleNaN`).
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// The staleness marker as an `f64`. Compare with [`is_stale_nan`], never with `==`.
pub const STALE_NAN: f64 = f64::from_bits(STALE_NAN_BITS);

/// Whether `v` is exactly the Prometheus staleness marker (by bit pattern;
/// ordinary NaNs are not stale markers).
#[inline]
pub fn is_stale_nan(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}
