use std::iter::FusedIterator;

use crate::bstream::{BitReader, BitWriter, VarintError};
use crate::error::ChunkError;

/// Length of the big-endian sample-count header at the start of every chunk.
const HEADER_LEN: usize = 2;

/// Marker for "no XOR window chosen yet" (same sentinel Prometheus uses).
const NO_WINDOW: u8 = 0xff;

/// An appendable Prometheus XOR chunk.
///
/// The chunk owns its encoded bytes; [`XorChunk::bytes`] is always a complete,
/// valid Prometheus chunk (header included) that any Prometheus-compatible
/// reader can decode, even between appends.
#[derive(Debug, Clone)]
pub struct XorChunk {
    w: BitWriter,
    num: u16,
    min_t: i64,
    /// Timestamp of the last appended sample.
    t: i64,
    /// Bit pattern of the last appended value.
    v: u64,
    /// Delta between the last two timestamps, as Prometheus keeps it (wrapping).
    t_delta: u64,
    leading: u8,
    trailing: u8,
}

impl Default for XorChunk {
    fn default() -> Self {
        Self::new()
    }
}

impl XorChunk {
    /// Creates an empty chunk (just the 2-byte zero header).
    pub fn new() -> Self {
        // 120 samples of typical data take ~160-200 bytes.
        Self::with_capacity(192)
    }

    /// Creates an empty chunk whose buffer can hold `bytes` bytes before reallocating.
    pub fn with_capacity(bytes: usize) -> Self {
        let mut buf = Vec::with_capacity(bytes.max(HEADER_LEN));
        buf.extend_from_slice(&[0, 0]);
        XorChunk {
            w: BitWriter { buf, free: 0 },
            num: 0,
            min_t: 0,
            t: 0,
            v: 0,
            t_delta: 0,
            leading: NO_WINDOW,
            trailing: 0,
        }
    }

    /// Loads a chunk from its encoded bytes (as returned by [`XorChunk::bytes`] or
    /// written by Prometheus), validating it completely, so that appending can
    /// resume exactly where the encoder that produced it stopped.
    ///
    /// Fails if the data is shorter than the header, if any announced sample
    /// cannot be decoded, or if whole bytes follow the last sample (except the
    /// single zero byte Prometheus leaves after a byte-aligned write). Unused
    /// padding bits in the final byte are cleared.
    pub fn from_bytes(mut data: Vec<u8>) -> Result<XorChunk, ChunkError> {
        let mut it = XorIterator::new(&data);
        let mut min_t = 0;
        if let Some((t, _)) = it.next() {
            min_t = t;
        }
        for _ in it.by_ref() {}
        if let Some(err) = it.err {
            return Err(err);
        }
        let end_bit = HEADER_LEN * 8 + it.br.bit_pos();
        let used = end_bit.div_ceil(8);
        let free = if end_bit % 8 == 0 && data.len() == used + 1 && data[used] == 0 {
            // Prometheus' trailing zero byte after a byte-aligned whole-byte write.
            8
        } else if data.len() > used {
            return Err(ChunkError::TrailingData {
                extra: data.len() - used,
            });
        } else {
            (used * 8 - end_bit) as u8
        };
        let mut chunk = XorChunk {
            num: it.total,
            min_t,
            t: it.t,
            v: it.v,
            t_delta: it.t_delta,
            leading: it.leading,
            trailing: it.trailing,
            w: BitWriter {
                buf: Vec::new(),
                free,
            },
        };
        if (1..8).contains(&chunk.w.free) {
            if let Some(last) = data.last_mut() {
                *last &= !((1u8 << chunk.w.free) - 1);
            }
        }
        chunk.w.buf = data;
        Ok(chunk)
    }

    /// Appends a sample.
    ///
    /// Timestamps are expected to increase; the chunk does not check this
    /// (any `i64` sequence round-trips, out-of-order data just encodes poorly).
    ///
    /// # Panics
    ///
    /// If the chunk already holds `u16::MAX` samples. Use [`XorChunk::try_append`]
    /// to handle that case; in practice chunks are cut at ~120 samples.
    #[inline]
    pub fn append(&mut self, t: i64, v: f64) {
        if let Err(e) = self.try_append(t, v) {
            panic!("XorChunk::append: {e}");
        }
    }

    /// Appends a sample, failing with [`ChunkError::Full`] if the 16-bit
    /// sample counter would overflow.
    #[inline]
    pub fn try_append(&mut self, t: i64, v: f64) -> Result<(), ChunkError> {
        if self.num == u16::MAX {
            return Err(ChunkError::Full);
        }
        let vbits = v.to_bits();
        match self.num {
            0 => {
                self.w.write_varint(t);
                self.w.write_bits(vbits, 64);
                self.min_t = t;
                self.t_delta = 0;
            }
            1 => {
                let t_delta = t.wrapping_sub(self.t) as u64;
                self.w.write_uvarint(t_delta);
                self.write_value(vbits, 0, 0);
                self.t_delta = t_delta;
            }
            _ => {
                let t_delta = t.wrapping_sub(self.t) as u64;
                let dod = t_delta.wrapping_sub(self.t_delta) as i64;
                // The timestamp bits are written together with the value bits.
                let (tbits, tlen) = if dod == 0 {
                    (0b0, 1)
                } else if bit_range(dod, 14) {
                    ((0b10 << 14) | (dod as u64 & 0x3fff), 16)
                } else if bit_range(dod, 17) {
                    ((0b110 << 17) | (dod as u64 & 0x1_ffff), 20)
                } else if bit_range(dod, 20) {
                    ((0b1110 << 20) | (dod as u64 & 0xf_ffff), 24)
                } else {
                    self.w.write_bits(0b1111, 4);
                    self.w.write_bits(dod as u64, 64);
                    (0, 0)
                };
                self.write_value(vbits, tbits, tlen);
                self.t_delta = t_delta;
            }
        }
        self.t = t;
        self.v = vbits;
        self.num += 1;
        self.w.buf[..HEADER_LEN].copy_from_slice(&self.num.to_be_bytes());
        Ok(())
    }

    /// Writes the `prefix_len` (<= 24) bits of `prefix` followed by the XOR-encoded value.
    #[inline(always)]
    fn write_value(&mut self, vbits: u64, prefix: u64, prefix_len: u32) {
        let delta = vbits ^ self.v;
        if delta == 0 {
            // '0': same bit pattern as before.
            self.w.write_packed(u128::from(prefix << 1), prefix_len + 1);
            return;
        }
        // Only 5 bits are available for the leading-zero count.
        let leading = (delta.leading_zeros() as u8).min(31);
        let trailing = delta.trailing_zeros() as u8;
        let (head, head_len, sig, shift) =
            if self.leading != NO_WINDOW && leading >= self.leading && trailing >= self.trailing {
                // '10': the previous window still covers all changed bits.
                let sig = 64 - u32::from(self.leading) - u32::from(self.trailing);
                ((prefix << 2) | 0b10, prefix_len + 2, sig, self.trailing)
            } else {
                // '11' + 5 bits leading + 6 bits significant-bit count (64 stored as 0).
                self.leading = leading;
                self.trailing = trailing;
                let sig = 64 - u32::from(leading) - u32::from(trailing);
                let head = (0b11 << 11) | (u64::from(leading) << 6) | (u64::from(sig) & 0x3f);
                ((prefix << 13) | head, prefix_len + 13, sig, trailing)
            };
        // Prometheus writes the significant bits with their own `writeBits` call; a
        // whole number of bytes starting on a byte boundary leaves its trailing
        // zero byte behind (see `BitWriter`).
        let quirk = sig % 8 == 0 && (self.w.bit_offset() + head_len) % 8 == 0;
        let payload = (u128::from(head) << sig) | u128::from(delta >> shift);
        self.w.write_packed(payload, head_len + sig);
        if quirk {
            self.w.push_empty_byte();
        }
    }

    /// Number of samples in the chunk.
    #[inline]
    pub fn num_samples(&self) -> u16 {
        self.num
    }

    /// True if the chunk holds no samples.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.num == 0
    }

    /// The encoded chunk: 2-byte big-endian sample count followed by the bit stream,
    /// byte-identical to what Prometheus produces for the same samples.
    #[inline]
    pub fn bytes(&self) -> &[u8] {
        &self.w.buf
    }

    /// Consumes the chunk, returning its encoded bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.w.buf
    }

    /// Size of the encoded chunk in bytes (header included).
    #[inline]
    pub fn len_bytes(&self) -> usize {
        self.w.buf.len()
    }

    /// Timestamp of the first sample, `None` if empty.
    #[inline]
    pub fn min_time(&self) -> Option<i64> {
        (self.num > 0).then_some(self.min_t)
    }

    /// Timestamp of the last appended sample, `None` if empty.
    #[inline]
    pub fn max_time(&self) -> Option<i64> {
        (self.num > 0).then_some(self.t)
    }

    /// Iterates over the samples in the chunk.
    #[inline]
    pub fn iter(&self) -> XorIterator<'_> {
        XorIterator::new(&self.w.buf)
    }
}

impl<'a> IntoIterator for &'a XorChunk {
    type Item = (i64, f64);
    type IntoIter = XorIterator<'a>;

    fn into_iter(self) -> XorIterator<'a> {
        self.iter()
    }
}

/// Whether `x` fits the `nbits` delta-of-delta bucket, using Prometheus' asymmetric
/// range `[-(2^(nbits-1) - 1), 2^(nbits-1)]`.
#[inline]
fn bit_range(x: i64, nbits: u32) -> bool {
    let half = 1i64 << (nbits - 1);
    -(half - 1) <= x && x <= half
}

/// Decodes the samples of an XOR chunk.
///
/// Yields `(timestamp_ms, value)` pairs. Decoding never panics: on corrupt or
/// truncated data iteration stops and [`XorIterator::err`] reports why.
#[derive(Debug, Clone)]
pub struct XorIterator<'a> {
    br: BitReader<'a>,
    total: u16,
    read: u16,
    t: i64,
    v: u64,
    t_delta: u64,
    leading: u8,
    trailing: u8,
    err: Option<ChunkError>,
}

impl<'a> XorIterator<'a> {
    /// Creates an iterator over a complete chunk (header included).
    pub fn new(chunk: &'a [u8]) -> XorIterator<'a> {
        let (total, body, err) = match chunk {
            [hi, lo, body @ ..] => (u16::from_be_bytes([*hi, *lo]), body, None),
            _ => (0, &[][..], Some(ChunkError::TooShort { len: chunk.len() })),
        };
        XorIterator {
            br: BitReader::new(body),
            total,
            read: 0,
            t: 0,
            v: 0,
            t_delta: 0,
            leading: NO_WINDOW,
            trailing: 0,
            err,
        }
    }

    /// The error that stopped iteration, if any.
    pub fn err(&self) -> Option<&ChunkError> {
        self.err.as_ref()
    }

    /// Sample count announced by the chunk header.
    pub fn num_samples(&self) -> u16 {
        self.total
    }

    /// The sample most recently returned by `next`/`seek`, if any.
    pub fn at(&self) -> Option<(i64, f64)> {
        (self.read > 0).then(|| (self.t, f64::from_bits(self.v)))
    }

    /// Like [`Iterator::next`], but surfaces decoding errors in-band.
    /// Once an error has been returned, every later call returns it again.
    pub fn try_next(&mut self) -> Result<Option<(i64, f64)>, ChunkError> {
        match self.next() {
            Some(s) => Ok(Some(s)),
            None => match &self.err {
                Some(e) => Err(e.clone()),
                None => Ok(None),
            },
        }
    }

    /// Advances to the first sample with timestamp `>= t` and returns it.
    ///
    /// Same semantics as Prometheus' `Seek`: if the current sample (the last one
    /// returned) already satisfies the bound, it is returned again without
    /// advancing. After `seek`, `next` continues with the sample after the
    /// returned one. Returns `None` if no such sample exists (or on error).
    pub fn seek(&mut self, t: i64) -> Option<(i64, f64)> {
        if self.err.is_some() {
            return None;
        }
        if self.read > 0 && self.t >= t {
            return self.at();
        }
        loop {
            let (st, sv) = self.next()?;
            if st >= t {
                return Some((st, sv));
            }
        }
    }

    #[inline(always)]
    fn decode_next(&mut self) -> Result<(), ChunkError> {
        let sample = self.read;
        let total = self.total;
        let eof = || ChunkError::UnexpectedEof { sample, total };
        let varint_err = |e| match e {
            VarintError::Eof => ChunkError::UnexpectedEof { sample, total },
            VarintError::Overflow => ChunkError::VarintOverflow { sample },
        };
        match sample {
            0 => {
                self.t = self.br.read_varint().map_err(varint_err)?;
                self.v = self.br.read_bits(64).ok_or_else(eof)?;
            }
            1 => {
                self.t_delta = self.br.read_uvarint().map_err(varint_err)?;
                self.t = self.t.wrapping_add(self.t_delta as i64);
                self.read_value()?;
            }
            _ => {
                // The number of leading one bits (at most 4) selects the bucket.
                let ones = self.br.read_unary(4).ok_or_else(eof)?;
                let dod = match ones {
                    0 => 0,
                    1 => self.read_signed(14)?,
                    2 => self.read_signed(17)?,
                    3 => self.read_signed(20)?,
                    _ => self.br.read_bits(64).ok_or_else(eof)? as i64,
                };
                self.t_delta = (self.t_delta as i64).wrapping_add(dod) as u64;
                self.t = self.t.wrapping_add(self.t_delta as i64);
                self.read_value()?;
            }
        }
        Ok(())
    }

    /// Reads an `sz`-bit two's-complement-ish delta-of-delta as Prometheus writes it.
    #[inline]
    fn read_signed(&mut self, sz: u32) -> Result<i64, ChunkError> {
        let bits = self.br.read_bits(sz).ok_or(ChunkError::UnexpectedEof {
            sample: self.read,
            total: self.total,
        })? as i64;
        // Values above 2^(sz-1) are negative numbers.
        Ok(if bits > 1 << (sz - 1) {
            bits - (1 << sz)
        } else {
            bits
        })
    }

    #[inline(always)]
    fn read_value(&mut self) -> Result<(), ChunkError> {
        let eof = ChunkError::UnexpectedEof {
            sample: self.read,
            total: self.total,
        };
        if !self.br.read_bit().ok_or(eof.clone())? {
            return Ok(()); // value unchanged
        }
        if self.br.read_bit().ok_or(eof.clone())? {
            let head = self.br.read_bits(11).ok_or(eof.clone())?;
            let leading = (head >> 6) as u8;
            let sigbits = match (head & 0x3f) as u8 {
                0 => 64,
                n => n,
            };
            if u32::from(leading) + u32::from(sigbits) > 64 {
                return Err(ChunkError::InvalidXorWindow {
                    sample: self.read,
                    leading,
                    sigbits,
                });
            }
            self.leading = leading;
            self.trailing = 64 - leading - sigbits;
        } else if self.leading == NO_WINDOW {
            // Window reuse before any window was set: never written by an encoder,
            // but Prometheus' decoder treats it as leading = trailing = 0.
            self.leading = 0;
            self.trailing = 0;
        }
        let sig = 64 - u32::from(self.leading) - u32::from(self.trailing);
        let bits = self.br.read_bits(sig).ok_or(eof)?;
        self.v ^= bits << self.trailing;
        Ok(())
    }
}

impl Iterator for XorIterator<'_> {
    type Item = (i64, f64);

    #[inline]
    fn next(&mut self) -> Option<(i64, f64)> {
        if self.err.is_some() || self.read >= self.total {
            return None;
        }
        match self.decode_next() {
            Ok(()) => {
                self.read += 1;
                Some((self.t, f64::from_bits(self.v)))
            }
            Err(e) => {
                self.err = Some(e);
                None
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.err.is_some() {
            return (0, Some(0));
        }
        (0, Some(usize::from(self.total - self.read)))
    }
}

impl FusedIterator for XorIterator<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect_bits(c: &XorChunk) -> Vec<(i64, u64)> {
        c.iter().map(|(t, v)| (t, v.to_bits())).collect()
    }

    #[test]
    fn empty_chunk() {
        let c = XorChunk::new();
        assert_eq!(c.bytes(), &[0, 0]);
        assert_eq!(c.num_samples(), 0);
        assert_eq!(c.min_time(), None);
        assert_eq!(c.max_time(), None);
        assert_eq!(c.iter().count(), 0);
        let c2 = XorChunk::from_bytes(vec![0, 0]).unwrap();
        assert_eq!(c2.bytes(), &[0, 0]);
    }

    #[test]
    fn known_encoding_of_two_samples() {
        // t=1000 v=1.0, then t=2000 v=1.0.
        let mut c = XorChunk::new();
        c.append(1000, 1.0);
        c.append(2000, 1.0);
        // header 0002 | varint(1000)=d0 0f | 3ff0000000000000 | uvarint(1000)=e8 07 | '0'
        assert_eq!(
            c.bytes(),
            &[0x00, 0x02, 0xd0, 0x0f, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0, 0xe8, 0x07, 0x00]
        );
        assert_eq!(c.min_time(), Some(1000));
        assert_eq!(c.max_time(), Some(2000));
    }

    #[test]
    fn single_sample_keeps_prometheus_trailing_zero_byte() {
        // Prometheus' writeByte always appends a byte for the remainder, so after
        // the byte-aligned first sample the stream ends with an empty byte.
        let mut c = XorChunk::new();
        c.append(-1, f64::from_bits(0x0102_0304_0506_0708));
        assert_eq!(c.bytes(), &[0, 1, 0x01, 1, 2, 3, 4, 5, 6, 7, 8, 0]);
        let mut loaded = XorChunk::from_bytes(c.bytes().to_vec()).unwrap();
        assert_eq!(loaded.bytes(), c.bytes());
        // Without the quirk byte the chunk is still accepted and appends identically.
        let mut trimmed = XorChunk::from_bytes(c.bytes()[..11].to_vec()).unwrap();
        c.append(1, 0.5);
        loaded.append(1, 0.5);
        trimmed.append(1, 0.5);
        assert_eq!(loaded.bytes(), c.bytes());
        assert_eq!(trimmed.bytes(), c.bytes());
        // A non-zero byte there is trailing garbage.
        let mut bad = XorChunk::new();
        bad.append(-1, 1.0);
        let mut raw = bad.into_bytes();
        *raw.last_mut().unwrap() = 1;
        assert_eq!(
            XorChunk::from_bytes(raw).unwrap_err(),
            ChunkError::TrailingData { extra: 1 }
        );
    }

    #[test]
    fn round_trip_special_values() {
        let vals = [
            0.0,
            -0.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::from_bits(crate::STALE_NAN_BITS),
            f64::NAN,
            f64::from_bits(0x7ff8_0000_0000_0001),
            f64::MIN_POSITIVE,
            f64::MAX,
            1.5,
            1.5,
        ];
        let mut c = XorChunk::new();
        for (i, v) in vals.iter().enumerate() {
            c.append(i as i64 * 15_000 - 7, *v);
        }
        let got = collect_bits(&c);
        let want: Vec<_> = vals
            .iter()
            .enumerate()
            .map(|(i, v)| (i as i64 * 15_000 - 7, v.to_bits()))
            .collect();
        assert_eq!(got, want);
        assert!(crate::is_stale_nan(c.iter().nth(4).unwrap().1));
        assert!(!crate::is_stale_nan(c.iter().nth(5).unwrap().1));
    }

    #[test]
    fn extreme_timestamps_round_trip() {
        let ts = [i64::MIN, i64::MAX, 0, -1, i64::MAX, i64::MIN, 5, 5, 4];
        let mut c = XorChunk::new();
        for t in ts {
            c.append(t, 1.0);
        }
        let got: Vec<i64> = c.iter().map(|(t, _)| t).collect();
        assert_eq!(got, ts);
        assert!(c.iter().err().is_none());
    }

    #[test]
    fn seek_semantics() {
        let mut c = XorChunk::new();
        for i in 0..10 {
            c.append(i * 10, i as f64);
        }
        let mut it = c.iter();
        assert_eq!(it.seek(25), Some((30, 3.0)));
        assert_eq!(it.seek(30), Some((30, 3.0))); // does not move backwards or skip
        assert_eq!(it.next(), Some((40, 4.0)));
        assert_eq!(it.seek(-100), Some((40, 4.0)));
        assert_eq!(it.seek(90), Some((90, 9.0)));
        assert_eq!(it.seek(91), None);
        assert_eq!(c.iter().seek(i64::MIN), Some((0, 0.0)));
    }

    #[test]
    fn truncated_chunk_reports_error() {
        let mut c = XorChunk::new();
        for i in 0..50 {
            c.append(i * 1000 + (i * i) % 7, (i as f64).sqrt());
        }
        let full = c.bytes();
        // Dropping only Prometheus' empty trailing byte (if present) loses nothing.
        let min_len = if full.last() == Some(&0) {
            full.len() - 1
        } else {
            full.len()
        };
        for cut in 0..min_len {
            let mut it = XorIterator::new(&full[..cut]);
            let n = it.by_ref().count();
            assert!(n < 50, "cut {cut}");
            assert!(it.err().is_some(), "cut {cut}");
            assert!(XorChunk::from_bytes(full[..cut].to_vec()).is_err());
        }
        let mut extra = full.to_vec();
        extra.push(0);
        assert_eq!(
            XorChunk::from_bytes(extra).unwrap_err(),
            ChunkError::TrailingData { extra: 1 }
        );
    }

    #[test]
    fn from_bytes_clears_padding_bits() {
        let mut c = XorChunk::new();
        c.append(1, 1.0);
        c.append(2, 1.0); // ends with a single '0' bit => 7 padding bits
        let mut raw = c.bytes().to_vec();
        *raw.last_mut().unwrap() |= 0x7f;
        let mut loaded = XorChunk::from_bytes(raw).unwrap();
        assert_eq!(loaded.bytes(), c.bytes());
        loaded.append(3, 2.0);
        c.append(3, 2.0);
        assert_eq!(loaded.bytes(), c.bytes());
    }

    #[test]
    fn full_chunk_rejects_append() {
        let mut c = XorChunk::new();
        for i in 0..u16::MAX {
            c.append(i64::from(i), 0.0);
        }
        assert_eq!(c.try_append(1 << 20, 0.0), Err(ChunkError::Full));
        assert_eq!(c.iter().count(), usize::from(u16::MAX));
    }
}
