//! Property tests: bit-exact round trips, resumable appends and robustness of
//! the decoder against arbitrary/corrupted input.

use proptest::prelude::*;
use proptest::sample::Index;
use strata_chunk::{is_stale_nan, ChunkError, XorChunk, XorIterator, STALE_NAN_BITS};

/// How the next value is derived from the previous one.
#[derive(Debug, Clone)]
enum ValueGen {
    /// Repeat the previous value (constant runs compress to one bit).
    Same,
    /// Arbitrary bit pattern (covers random NaN payloads, subnormals, ...).
    Bits(u64),
    /// A special value from `SPECIALS`.
    Special(usize),
    /// Previous value plus `k * 0.1` (typical gauge/counter behaviour).
    Step(i16),
    /// A small integer.
    Int(i32),
}

const SPECIALS: &[u64] = &[
    STALE_NAN_BITS,
    0x7FF8_0000_0000_0001, // Go's math.NaN()
    0x7FF8_0000_0000_0000, // Rust's f64::NAN
    0xFFF8_0000_0000_0000, // negative quiet NaN
    0x7FF0_0000_0000_0000, // +Inf
    0xFFF0_0000_0000_0000, // -Inf
    0x8000_0000_0000_0000, // -0.0
    0x0000_0000_0000_0000, // +0.0
    0x0000_0000_0000_0001, // smallest subnormal
    0x7FEF_FFFF_FFFF_FFFF, // f64::MAX
    0xFFEF_FFFF_FFFF_FFFF, // f64::MIN
];

fn value_gen() -> impl Strategy<Value = ValueGen> {
    prop_oneof![
        4 => Just(ValueGen::Same),
        3 => any::<u64>().prop_map(ValueGen::Bits),
        2 => (0..SPECIALS.len()).prop_map(ValueGen::Special),
        3 => any::<i16>().prop_map(ValueGen::Step),
        2 => any::<i32>().prop_map(ValueGen::Int),
    ]
}

/// Timestamp deltas: regular scrapes, jitter, duplicates and huge jumps.
fn delta() -> impl Strategy<Value = i64> {
    prop_oneof![
        3 => Just(15_000i64),
        3 => 13_000i64..17_000,
        2 => 0i64..100,
        1 => 0i64..(1 << 21),
        1 => 0i64..(1i64 << 40),
    ]
}

fn start_ts() -> impl Strategy<Value = i64> {
    prop_oneof![
        Just(0i64),
        -(1i64 << 50)..(1i64 << 50),
        (-(1i64 << 62))..(1i64 << 62),
        1_600_000_000_000i64..1_800_000_000_000,
    ]
}

/// Increasing (non-decreasing) sample sequences of up to 300 samples.
fn samples() -> impl Strategy<Value = Vec<(i64, u64)>> {
    (
        start_ts(),
        prop::collection::vec((delta(), value_gen()), 0..300),
    )
        .prop_map(|(start, steps)| {
            let mut out = Vec::with_capacity(steps.len());
            let mut t = start;
            let mut v: u64 = 0;
            for (i, (d, g)) in steps.into_iter().enumerate() {
                if i > 0 {
                    t += d;
                }
                v = match g {
                    ValueGen::Same => v,
                    ValueGen::Bits(b) => b,
                    ValueGen::Special(i) => SPECIALS[i],
                    ValueGen::Step(k) => (f64::from_bits(v) + f64::from(k) * 0.1).to_bits(),
                    ValueGen::Int(x) => f64::from(x).to_bits(),
                };
                out.push((t, v));
            }
            out
        })
}

fn encode(samples: &[(i64, u64)]) -> XorChunk {
    let mut c = XorChunk::new();
    for &(t, v) in samples {
        c.append(t, f64::from_bits(v));
    }
    c
}

fn decode_bits(bytes: &[u8]) -> (Vec<(i64, u64)>, Option<ChunkError>) {
    let mut it = XorIterator::new(bytes);
    let out = it.by_ref().map(|(t, v)| (t, v.to_bits())).collect();
    (out, it.err().cloned())
}

/// Drives a decoder over arbitrary bytes through every entry point; must not panic.
fn exercise_decoder(bytes: &[u8], seek_to: i64) {
    let mut it = XorIterator::new(bytes);
    let n = it.by_ref().count();
    assert!(n <= usize::from(it.num_samples()));
    if it.err().is_none() {
        assert_eq!(n, usize::from(it.num_samples()));
    }
    assert_eq!(it.next(), None, "fused after the end or an error");

    let mut it = XorIterator::new(bytes);
    let _ = it.seek(seek_to);
    let _ = it.try_next();
    let _ = it.seek(seek_to.wrapping_add(1_000));

    if let Ok(mut c) = XorChunk::from_bytes(bytes.to_vec()) {
        // A chunk that loads must decode completely and accept further appends.
        let (before, err) = decode_bits(c.bytes());
        assert!(err.is_none());
        assert_eq!(before.len(), usize::from(c.num_samples()));
        if c.try_append(seek_to, 1.25).is_ok() {
            let (after, err) = decode_bits(c.bytes());
            assert!(err.is_none(), "{err:?}");
            assert_eq!(&after[..before.len()], &before[..]);
            assert_eq!(after.last(), Some(&(seek_to, 1.25f64.to_bits())));
        }
    }
}

/// A deliberately naive, literal model of Prometheus' `bstream` + `xorAppender`
/// (one bit/byte at a time, same call structure), used as an independent oracle
/// for the optimised encoder on inputs the golden fixture does not cover.
mod reference {
    pub struct Bstream {
        pub stream: Vec<u8>,
        count: u8,
    }

    impl Bstream {
        fn write_bit(&mut self, bit: bool) {
            if self.count == 0 {
                self.stream.push(0);
                self.count = 8;
            }
            let i = self.stream.len() - 1;
            if bit {
                self.stream[i] |= 1 << (self.count - 1);
            }
            self.count -= 1;
        }

        fn write_byte(&mut self, byt: u8) {
            if self.count == 0 {
                self.stream.push(0);
                self.count = 8;
            }
            let i = self.stream.len() - 1;
            self.stream[i] |= ((byt as u16) >> (8 - self.count)) as u8;
            self.stream.push(((byt as u16) << self.count) as u8);
        }

        fn write_bits(&mut self, u: u64, nbits: u32) {
            let mut u = u << (64 - nbits);
            let mut nbits = nbits;
            while nbits >= 8 {
                self.write_byte((u >> 56) as u8);
                u <<= 8;
                nbits -= 8;
            }
            while nbits > 0 {
                self.write_bit(u >> 63 == 1);
                u <<= 1;
                nbits -= 1;
            }
        }
    }

    pub struct Appender {
        pub b: Bstream,
        t: i64,
        v: u64,
        t_delta: u64,
        leading: u8,
        trailing: u8,
    }

    impl Appender {
        pub fn new() -> Self {
            Appender {
                b: Bstream {
                    stream: vec![0, 0],
                    count: 0,
                },
                t: 0,
                v: 0,
                t_delta: 0,
                leading: 0xff,
                trailing: 0,
            }
        }

        fn bit_range(x: i64, nbits: u32) -> bool {
            -((1i64 << (nbits - 1)) - 1) <= x && x <= 1i64 << (nbits - 1)
        }

        pub fn append(&mut self, t: i64, v: u64) {
            let num = u16::from_be_bytes([self.b.stream[0], self.b.stream[1]]);
            let mut t_delta = 0u64;
            if num == 0 {
                let mut zz = ((t << 1) ^ (t >> 63)) as u64;
                while zz >= 0x80 {
                    self.b.write_byte(zz as u8 | 0x80);
                    zz >>= 7;
                }
                self.b.write_byte(zz as u8);
                self.b.write_bits(v, 64);
            } else if num == 1 {
                t_delta = t.wrapping_sub(self.t) as u64;
                let mut x = t_delta;
                while x >= 0x80 {
                    self.b.write_byte(x as u8 | 0x80);
                    x >>= 7;
                }
                self.b.write_byte(x as u8);
                self.write_v_delta(v);
            } else {
                t_delta = t.wrapping_sub(self.t) as u64;
                let dod = t_delta.wrapping_sub(self.t_delta) as i64;
                if dod == 0 {
                    self.b.write_bit(false);
                } else if Self::bit_range(dod, 14) {
                    self.b.write_bits(0b10, 2);
                    self.b.write_bits(dod as u64 & 0x3fff, 14);
                } else if Self::bit_range(dod, 17) {
                    self.b.write_bits(0b110, 3);
                    self.b.write_bits(dod as u64 & 0x1ffff, 17);
                } else if Self::bit_range(dod, 20) {
                    self.b.write_bits(0b1110, 4);
                    self.b.write_bits(dod as u64 & 0xfffff, 20);
                } else {
                    self.b.write_bits(0b1111, 4);
                    self.b.write_bits(dod as u64, 64);
                }
                self.write_v_delta(v);
            }
            self.t = t;
            self.v = v;
            self.b.stream[..2].copy_from_slice(&(num + 1).to_be_bytes());
            self.t_delta = t_delta;
        }

        fn write_v_delta(&mut self, v: u64) {
            let delta = v ^ self.v;
            if delta == 0 {
                self.b.write_bit(false);
                return;
            }
            self.b.write_bit(true);
            let mut leading = delta.leading_zeros() as u8;
            let trailing = delta.trailing_zeros() as u8;
            if leading >= 32 {
                leading = 31;
            }
            if self.leading != 0xff && leading >= self.leading && trailing >= self.trailing {
                self.b.write_bit(false);
                self.b.write_bits(
                    delta >> self.trailing,
                    64 - u32::from(self.leading) - u32::from(self.trailing),
                );
            } else {
                self.leading = leading;
                self.trailing = trailing;
                self.b.write_bit(true);
                self.b.write_bits(u64::from(leading), 5);
                let sigbits = 64 - leading - trailing;
                self.b.write_bits(u64::from(sigbits) & 0x3f, 6);
                self.b.write_bits(delta >> trailing, u32::from(sigbits));
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn encoder_matches_literal_prometheus_model(samples in samples()) {
        // Compare after every append: `bytes()` must match at every point.
        let mut ours = XorChunk::new();
        let mut model = reference::Appender::new();
        prop_assert_eq!(ours.bytes(), &model.b.stream[..]);
        for (i, &(t, v)) in samples.iter().enumerate() {
            ours.append(t, f64::from_bits(v));
            model.append(t, v);
            prop_assert_eq!(ours.bytes(), &model.b.stream[..], "after sample {}", i);
        }
    }

    #[test]
    fn encoder_matches_model_for_arbitrary_timestamps(
        samples in prop::collection::vec((any::<i64>(), any::<u64>()), 0..100)
    ) {
        let mut ours = XorChunk::new();
        let mut model = reference::Appender::new();
        for &(t, v) in &samples {
            ours.append(t, f64::from_bits(v));
            model.append(t, v);
        }
        prop_assert_eq!(ours.bytes(), &model.b.stream[..]);
    }

    #[test]
    fn round_trip_is_bit_exact(samples in samples()) {
        let c = encode(&samples);
        prop_assert_eq!(usize::from(c.num_samples()), samples.len());
        prop_assert_eq!(c.len_bytes(), c.bytes().len());
        prop_assert_eq!(c.min_time(), samples.first().map(|s| s.0));
        prop_assert_eq!(c.max_time(), samples.last().map(|s| s.0));
        let (decoded, err) = decode_bits(c.bytes());
        prop_assert!(err.is_none(), "{:?}", err);
        prop_assert_eq!(&decoded, &samples);
        // The staleness marker survives as exactly itself.
        for ((_, want), (_, got)) in samples.iter().zip(c.iter()) {
            prop_assert_eq!(*want == STALE_NAN_BITS, is_stale_nan(got));
        }
    }

    #[test]
    fn arbitrary_i64_timestamps_round_trip(
        samples in prop::collection::vec((any::<i64>(), any::<u64>()), 0..200)
    ) {
        // Not a supported use (timestamps must increase) but it must stay lossless.
        let c = encode(&samples);
        let (decoded, err) = decode_bits(c.bytes());
        prop_assert!(err.is_none(), "{:?}", err);
        prop_assert_eq!(decoded, samples);
    }

    #[test]
    fn resume_after_from_bytes_equals_single_pass(
        samples in samples(),
        random_splits in prop::collection::vec(any::<Index>(), 8),
    ) {
        let full = encode(&samples);
        let n = samples.len();
        let mut splits: Vec<usize> = vec![0, 1, 2, 3, n.saturating_sub(1), n];
        splits.extend(random_splits.iter().map(|i| i.index(n + 1)));
        for split in splits.into_iter().filter(|&s| s <= n) {
            let prefix = encode(&samples[..split]);
            let mut resumed = XorChunk::from_bytes(prefix.bytes().to_vec())
                .map_err(|e| TestCaseError::fail(format!("split {split}: {e}")))?;
            prop_assert_eq!(resumed.bytes(), prefix.bytes());
            // Readers may also hand us the chunk without Prometheus' empty trailing
            // byte; if that still validates, appending must give the same bytes.
            let trimmed = prefix.bytes().split_last().filter(|(last, _)| **last == 0).map(|(_, rest)| rest.to_vec());
            let mut resumed_trimmed = trimmed.and_then(|t| XorChunk::from_bytes(t).ok());
            for &(t, v) in &samples[split..] {
                resumed.append(t, f64::from_bits(v));
                if let Some(c) = resumed_trimmed.as_mut() {
                    c.append(t, f64::from_bits(v));
                }
            }
            prop_assert_eq!(resumed.bytes(), full.bytes(), "split {}", split);
            prop_assert_eq!(resumed.num_samples(), full.num_samples());
            prop_assert_eq!(resumed.min_time(), full.min_time());
            prop_assert_eq!(resumed.max_time(), full.max_time());
            if let Some(c) = resumed_trimmed {
                if split < n {
                    prop_assert_eq!(c.bytes(), full.bytes(), "trimmed split {}", split);
                }
            }
        }
    }

    #[test]
    fn seek_finds_first_sample_at_or_after(samples in samples(), probes in prop::collection::vec(any::<Index>(), 1..8), offset in -20_000i64..20_000) {
        prop_assume!(!samples.is_empty());
        let c = encode(&samples);
        // Independent seeks from a fresh iterator.
        for p in &probes {
            let target = samples[p.index(samples.len())].0.saturating_add(offset);
            let want = samples.iter().position(|s| s.0 >= target);
            let mut it = c.iter();
            let got = it.seek(target).map(|(t, v)| (t, v.to_bits()));
            prop_assert_eq!(got, want.map(|i| samples[i]));
            if let Some(i) = want {
                // `next` continues right after the sought sample.
                prop_assert_eq!(it.next().map(|(t, v)| (t, v.to_bits())), samples.get(i + 1).copied());
            }
        }
        // Monotonic seeks on one iterator never go backwards.
        let mut targets: Vec<i64> = probes.iter().map(|p| samples[p.index(samples.len())].0).collect();
        targets.sort_unstable();
        let mut it = c.iter();
        for target in targets {
            let want = samples.iter().position(|s| s.0 >= target).map(|i| samples[i]);
            prop_assert_eq!(it.seek(target).map(|(t, v)| (t, v.to_bits())), want);
        }
    }

    #[test]
    fn corrupted_chunks_never_panic(
        samples in samples(),
        flips in prop::collection::vec((any::<Index>(), 0u8..8), 0..6),
        cut in any::<Index>(),
        header in prop::option::of(any::<u16>()),
        seek_to in any::<i64>(),
    ) {
        let c = encode(&samples);
        let mut bytes = c.bytes().to_vec();
        for (i, bit) in flips {
            let i = i.index(bytes.len());
            bytes[i] ^= 1 << bit;
        }
        if let Some(h) = header {
            bytes[..2].copy_from_slice(&h.to_be_bytes());
        }
        exercise_decoder(&bytes, seek_to);
        let cut = cut.index(bytes.len() + 1);
        exercise_decoder(&bytes[..cut], seek_to);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4096, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512), seek_to in any::<i64>()) {
        exercise_decoder(&bytes, seek_to);
    }

    /// Random bytes behind a small sample count header: most prefixes decode a few
    /// samples before failing, exercising every error path.
    #[test]
    fn random_bodies_never_panic(count in 0u16..64, body in prop::collection::vec(any::<u8>(), 0..256), seek_to in any::<i64>()) {
        let mut bytes = count.to_be_bytes().to_vec();
        bytes.extend_from_slice(&body);
        exercise_decoder(&bytes, seek_to);
    }
}
