//! Most-significant-bit-first bit streams, laid out exactly like Prometheus'
//! `bstream`: the first bit written goes into bit 7 of the first byte.

/// Appends bits to a `Vec<u8>`, reproducing Prometheus' `bstream` byte for byte.
///
/// `free` is the number of unused low-order bits in the last byte of `buf`
/// (0..=8); those bits are always zero. `free == 8` is Prometheus' quirk: its
/// `writeByte` always appends a fresh byte for the remainder, so a whole-byte
/// write that starts on a byte boundary leaves an all-zero byte at the end of
/// the stream. That byte is part of the chunk Prometheus stores, so we keep it
/// too (it is filled by the next write).
#[derive(Debug, Clone)]
pub(crate) struct BitWriter {
    pub(crate) buf: Vec<u8>,
    pub(crate) free: u8,
}

impl BitWriter {
    /// Writes a single bit.
    #[cfg(test)]
    pub(crate) fn write_bit(&mut self, bit: bool) {
        if self.free == 0 {
            self.buf.push(0);
            self.free = 8;
        }
        self.free -= 1;
        if bit {
            if let Some(last) = self.buf.last_mut() {
                *last |= 1 << self.free;
            }
        }
    }

    /// Writes the low `n` bits of `v` (1 <= n <= 64), most significant first,
    /// with the same resulting bytes as Prometheus' `bstream.writeBits`.
    #[inline]
    pub(crate) fn write_bits(&mut self, v: u64, n: u32) {
        debug_assert!((1..=64).contains(&n));
        // Prometheus writes the whole bytes of `v` with `writeByte`; if the stream
        // is byte aligned and nothing but whole bytes is written, it ends with an
        // extra zero byte (see the type docs).
        let trailing_zero_byte = n % 8 == 0 && (self.free == 0 || self.free == 8);
        self.write_bits_packed(v, n);
        if trailing_zero_byte {
            self.buf.push(0);
            self.free = 8;
        }
    }

    /// Writes the low `n` bits of `v` (1 <= n <= 64) with no padding quirks.
    #[inline]
    fn write_bits_packed(&mut self, v: u64, n: u32) {
        let mut n = n;
        let v = if n < 64 { v & ((1u64 << n) - 1) } else { v };
        if self.free > 0 {
            let free = u32::from(self.free);
            if let Some(last) = self.buf.last_mut() {
                if n <= free {
                    // `v < 2^n`, so `v << (free - n) < 2^free <= 2^7`.
                    *last |= (v << (free - n)) as u8;
                    self.free = (free - n) as u8;
                    return;
                }
                n -= free;
                // The top `free` bits of `v` complete the partial byte.
                *last |= (v >> n) as u8;
                self.free = 0;
            }
        }
        while n >= 8 {
            n -= 8;
            self.buf.push((v >> n) as u8);
        }
        if n > 0 {
            self.buf.push((v << (8 - n)) as u8);
            self.free = (8 - n) as u8;
        }
    }

    /// Position within the current byte (0..=7) at which the next bit goes.
    #[inline]
    pub(crate) fn bit_offset(&self) -> u32 {
        (8 - u32::from(self.free)) % 8
    }

    /// Appends Prometheus' empty trailing byte; only valid on a byte boundary.
    #[inline]
    pub(crate) fn push_empty_byte(&mut self) {
        debug_assert!(self.free == 0);
        self.buf.push(0);
        self.free = 8;
    }

    /// Writes the low `n` bits of `v` (1 <= n <= 120, `v < 2^n`) in one go,
    /// without Prometheus' trailing-byte quirk (callers handle it).
    #[inline(always)]
    pub(crate) fn write_packed(&mut self, v: u128, n: u32) {
        debug_assert!((1..=120).contains(&n));
        debug_assert!(v >> n == 0);
        let mut acc = v;
        let mut total = n;
        if self.free > 0 {
            if let Some(last) = self.buf.pop() {
                // Re-emit the used bits of the partial (or empty) last byte.
                acc |= u128::from(u32::from(last) >> self.free) << n;
                total += 8 - u32::from(self.free);
            }
        }
        let bytes = (acc << (128 - total)).to_be_bytes();
        let len = self.buf.len() + total.div_ceil(8) as usize;
        // A fixed-size copy followed by a truncate is cheaper than a
        // variable-length one for these tiny writes.
        self.buf.extend_from_slice(&bytes);
        self.buf.truncate(len);
        self.free = ((8 - total % 8) % 8) as u8;
    }

    /// Writes `x` as a Go `binary.PutUvarint` (LEB128) byte sequence.
    #[inline]
    pub(crate) fn write_uvarint(&mut self, mut x: u64) {
        while x >= 0x80 {
            self.write_bits((x as u8 | 0x80).into(), 8);
            x >>= 7;
        }
        self.write_bits(x, 8);
    }

    /// Writes `x` as a Go `binary.PutVarint` (zig-zag + LEB128) byte sequence.
    #[inline]
    pub(crate) fn write_varint(&mut self, x: i64) {
        self.write_uvarint(((x << 1) ^ (x >> 63)) as u64);
    }
}

/// Reads bits from a byte slice through a 64-bit buffer. Every read is bounds
/// checked and reports running out of data with `None`; it never panics.
#[derive(Debug, Clone)]
pub(crate) struct BitReader<'a> {
    data: &'a [u8],
    /// Index of the next byte of `data` to load into `buf`.
    next: usize,
    /// Unread bits, left aligned (bit 63 is the next bit). Bits below the
    /// `valid` ones are either zero or already equal to the following data bits.
    buf: u64,
    /// Number of unread bits in `buf`.
    valid: u32,
}

/// Outcome of a failed varint read.
pub(crate) enum VarintError {
    Eof,
    Overflow,
}

impl<'a> BitReader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        BitReader {
            data,
            next: 0,
            buf: 0,
            valid: 0,
        }
    }

    /// Position of the next bit to read, in bits from the start of the data.
    #[inline]
    pub(crate) fn bit_pos(&self) -> usize {
        self.next * 8 - self.valid as usize
    }

    /// Tops the buffer up to at least 57 valid bits, or to the end of the data.
    /// Must only be called with `valid < 57`.
    #[inline]
    fn refill(&mut self) {
        debug_assert!(self.valid < 57);
        if let Some(chunk) = self.data.get(self.next..self.next + 8) {
            let mut a = [0u8; 8];
            a.copy_from_slice(chunk);
            // Bits past the whole bytes we account for are the correct following
            // data bits, so OR-ing them in again on the next refill is harmless.
            self.buf |= u64::from_be_bytes(a) >> self.valid;
            let bytes = (63 - self.valid) / 8;
            self.next += bytes as usize;
            self.valid += bytes * 8;
        } else {
            while self.valid <= 56 {
                let Some(&b) = self.data.get(self.next) else {
                    break;
                };
                self.buf |= u64::from(b) << (56 - self.valid);
                self.next += 1;
                self.valid += 8;
            }
        }
    }

    #[inline(always)]
    pub(crate) fn read_bit(&mut self) -> Option<bool> {
        if self.valid == 0 {
            self.refill();
            if self.valid == 0 {
                return None;
            }
        }
        let bit = self.buf >> 63 == 1;
        self.buf <<= 1;
        self.valid -= 1;
        Some(bit)
    }

    /// Reads `n` bits (1 <= n <= 64) as an unsigned integer, most significant first.
    #[inline(always)]
    pub(crate) fn read_bits(&mut self, n: u32) -> Option<u64> {
        debug_assert!((1..=64).contains(&n));
        if n > 56 {
            let hi = self.read_bits(n - 32)?;
            let lo = self.read_bits(32)?;
            return Some((hi << 32) | lo);
        }
        if self.valid < n {
            self.refill();
            if self.valid < n {
                return None;
            }
        }
        let v = self.buf >> (64 - n);
        self.buf <<= n;
        self.valid -= n;
        Some(v)
    }

    /// Reads a unary prefix of up to `max` one bits (max <= 56), consuming the
    /// terminating zero bit if there is one. Returns the number of ones.
    #[inline]
    pub(crate) fn read_unary(&mut self, max: u32) -> Option<u32> {
        debug_assert!(max <= 56);
        if self.valid <= max {
            self.refill();
        }
        if self.valid > max {
            let ones = (!self.buf).leading_zeros().min(max);
            let consumed = if ones < max { ones + 1 } else { max };
            self.buf <<= consumed;
            self.valid -= consumed;
            return Some(ones);
        }
        // Near the end of the data: go bit by bit.
        let mut ones = 0;
        while ones < max && self.read_bit()? {
            ones += 1;
        }
        Some(ones)
    }

    /// Reads a Go `binary.ReadUvarint` value, with the same overflow rules.
    #[inline]
    pub(crate) fn read_uvarint(&mut self) -> Result<u64, VarintError> {
        let mut x: u64 = 0;
        let mut shift = 0u32;
        for i in 0..10 {
            let b = self.read_bits(8).ok_or(VarintError::Eof)? as u8;
            if b < 0x80 {
                if i == 9 && b > 1 {
                    return Err(VarintError::Overflow);
                }
                return Ok(x | (u64::from(b) << shift));
            }
            x |= u64::from(b & 0x7f) << shift;
            shift += 7;
        }
        Err(VarintError::Overflow)
    }

    /// Reads a Go `binary.ReadVarint` (zig-zag) value.
    #[inline]
    pub(crate) fn read_varint(&mut self) -> Result<i64, VarintError> {
        let ux = self.read_uvarint()?;
        Ok(((ux >> 1) as i64) ^ -((ux & 1) as i64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_round_trip_at_every_alignment() {
        for prefix in 0..8u32 {
            for n in 1..=64u32 {
                let v = 0xA5C3_0F96_1234_5678u64.rotate_left(n);
                let mut w = BitWriter {
                    buf: Vec::new(),
                    free: 0,
                };
                for _ in 0..prefix {
                    w.write_bit(true);
                }
                w.write_bits(v, n);
                w.write_bit(true);
                let mut r = BitReader::new(&w.buf);
                for _ in 0..prefix {
                    assert_eq!(r.read_bit(), Some(true));
                }
                let mask = if n == 64 { u64::MAX } else { (1 << n) - 1 };
                assert_eq!(r.read_bits(n), Some(v & mask), "prefix {prefix} n {n}");
                assert_eq!(r.read_bit(), Some(true));
                assert_eq!(r.bit_pos(), (prefix + n + 1) as usize);
                assert_eq!(w.buf.len() * 8 - w.free as usize, r.bit_pos());
            }
        }
    }

    #[test]
    fn unary_prefix_at_every_position() {
        // Patterns 0, 10, 110, 1110, 1111 at every offset, including the last bits.
        for ones in 0..=4u32 {
            for prefix in 0..80u32 {
                let mut w = BitWriter {
                    buf: Vec::new(),
                    free: 0,
                };
                for i in 0..prefix {
                    w.write_bit(i % 3 == 0);
                }
                for _ in 0..ones {
                    w.write_bit(true);
                }
                if ones < 4 {
                    w.write_bit(false);
                }
                w.write_bit(true);
                let mut r = BitReader::new(&w.buf);
                for i in 0..prefix {
                    assert_eq!(r.read_bit(), Some(i % 3 == 0));
                }
                assert_eq!(r.read_unary(4), Some(ones), "ones {ones} prefix {prefix}");
                assert_eq!(r.read_bit(), Some(true));
            }
        }
        // A prefix cut short by the end of the data is an error.
        let mut r = BitReader::new(&[0b1100_0001]);
        assert_eq!(r.read_bits(6), Some(0b110000));
        assert_eq!(r.read_unary(4), Some(0));
        assert_eq!(r.read_unary(4), None);
    }

    #[test]
    fn varints_match_go_encoding() {
        // Values taken from Go's encoding/binary documentation/tests.
        let cases: &[(i64, &[u8])] = &[
            (0, &[0x00]),
            (-1, &[0x01]),
            (1, &[0x02]),
            (-64, &[0x7f]),
            (64, &[0x80, 0x01]),
            (
                i64::MIN,
                &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
            ),
        ];
        for &(x, want) in cases {
            let mut w = BitWriter {
                buf: Vec::new(),
                free: 0,
            };
            w.write_varint(x);
            // Byte-aligned whole-byte writes end with Prometheus' empty quirk byte.
            assert_eq!(w.buf, [want, &[0]].concat(), "varint {x}");
            assert_eq!(w.free, 8);
            let mut r = BitReader::new(&w.buf);
            assert_eq!(r.read_varint().ok(), Some(x));
        }
    }

    #[test]
    fn reader_reports_eof_and_overflow() {
        let mut r = BitReader::new(&[0xff]);
        assert_eq!(r.read_bits(9), None);
        assert_eq!(r.read_bits(8), Some(0xff));
        assert_eq!(r.read_bit(), None);
        let mut r = BitReader::new(&[0x80; 11]);
        assert!(matches!(r.read_uvarint(), Err(VarintError::Overflow)));
        let mut r = BitReader::new(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]);
        assert!(matches!(r.read_uvarint(), Err(VarintError::Overflow)));
        let mut r = BitReader::new(&[0x80, 0x80]);
        assert!(matches!(r.read_uvarint(), Err(VarintError::Eof)));
    }
}
