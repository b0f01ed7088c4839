//! The ingester's write-ahead log records (the log itself is `strata-wal`).
//!
//! Compact, as Prometheus's WAL is: a series' labels are logged once, when
//! the series is created, under a reference number; samples are logged as
//! (reference, timestamp, value). References are the tenant's series IDs of
//! the process that wrote them, so every process begins its part of the log
//! with an `Epoch` record and replay forgets the references it knew.
//!
//! ```text
//! record   kind u8 | body
//! epoch    0
//! series   1 | tenant (varint len, bytes) | count varint | (ref varint, label count varint, (name, value)*)*
//! samples  2 | tenant | count varint | (ref varint, timestamp zigzag-varint, value f64 LE)*
//! chunks   3 | tenant | count varint | (ref varint, encoding u8, length varint, bytes)*
//! ```
//!
//! Chunk records appear in checkpoints: the unflushed chunks of a series, which
//! replay decodes and appends sample by sample (so chunks are cut again exactly
//! where they were).
//!
//! Strings are a varint length and UTF-8 bytes. Every decoder treats its
//! input as untrusted: no panic, no allocation by an unchecked count.

use crate::error::IngesterError;

const EPOCH: u8 = 0;
const SERIES: u8 = 1;
const SAMPLES: u8 = 2;
const CHUNKS: u8 = 3;

/// One decoded record.
#[derive(Clone, Debug, PartialEq)]
pub enum WalRecord {
    /// A new process: references before this point mean nothing after it.
    Epoch,
    /// Series created, with the reference later sample records use.
    Series {
        tenant: String,
        series: Vec<(u32, Vec<(String, String)>)>,
    },
    /// Samples appended: (reference, timestamp ms, value).
    Samples {
        tenant: String,
        samples: Vec<(u32, i64, f64)>,
    },
    /// Encoded chunks of series: (reference, encoding, bytes).
    Chunks {
        tenant: String,
        chunks: Vec<(u32, u8, Vec<u8>)>,
    },
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// The epoch record.
pub fn encode_epoch() -> Vec<u8> {
    vec![EPOCH]
}

/// A series record for `tenant`: (reference, sorted label pairs).
pub fn encode_series<'a>(
    tenant: &str,
    series: impl ExactSizeIterator<Item = (u32, &'a [(&'a str, &'a str)])>,
) -> Vec<u8> {
    let mut out = vec![SERIES];
    put_str(&mut out, tenant);
    put_varint(&mut out, series.len() as u64);
    for (r, labels) in series {
        put_varint(&mut out, u64::from(r));
        put_varint(&mut out, labels.len() as u64);
        for (name, value) in labels {
            put_str(&mut out, name);
            put_str(&mut out, value);
        }
    }
    out
}

/// A samples record for `tenant`.
pub fn encode_samples(tenant: &str, samples: &[(u32, i64, f64)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + tenant.len() + samples.len() * 14);
    out.push(SAMPLES);
    put_str(&mut out, tenant);
    put_varint(&mut out, samples.len() as u64);
    for &(r, t, v) in samples {
        put_varint(&mut out, u64::from(r));
        put_varint(&mut out, ((t << 1) ^ (t >> 63)) as u64);
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// A chunks record for `tenant`: (reference, encoding, encoded chunk).
pub fn encode_chunks(tenant: &str, chunks: &[(u32, u8, &[u8])]) -> Vec<u8> {
    let size: usize = chunks.iter().map(|c| c.2.len() + 12).sum();
    let mut out = Vec::with_capacity(8 + tenant.len() + size);
    out.push(CHUNKS);
    put_str(&mut out, tenant);
    put_varint(&mut out, chunks.len() as u64);
    for &(r, encoding, bytes) in chunks {
        put_varint(&mut out, u64::from(r));
        out.push(encoding);
        put_varint(&mut out, bytes.len() as u64);
        out.extend_from_slice(bytes);
    }
    out
}

struct Reader<'a> {
    bytes: &'a [u8],
}

fn corrupt(what: impl Into<String>) -> IngesterError {
    IngesterError::Wal(format!("corrupt write-ahead log record: {}", what.into()))
}

impl<'a> Reader<'a> {
    fn varint(&mut self, what: &str) -> Result<u64, IngesterError> {
        let mut value = 0u64;
        for i in 0..10 {
            let (&b, rest) = self
                .bytes
                .split_first()
                .ok_or_else(|| corrupt(format!("ends inside {what}")))?;
            self.bytes = rest;
            if i == 9 && b > 1 {
                return Err(corrupt(format!("{what} overflows 64 bits")));
            }
            value |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Ok(value);
            }
        }
        Err(corrupt(format!("{what} is longer than 10 bytes")))
    }

    fn count(&mut self, what: &str, min_entry: usize) -> Result<usize, IngesterError> {
        let n = self.varint(what)?;
        match usize::try_from(n) {
            Ok(n) if n <= self.bytes.len() / min_entry.max(1) => Ok(n),
            _ => Err(corrupt(format!(
                "{what} {n} is more than {} bytes can hold",
                self.bytes.len()
            ))),
        }
    }

    fn reference(&mut self) -> Result<u32, IngesterError> {
        u32::try_from(self.varint("series reference")?)
            .map_err(|_| corrupt("series reference does not fit 32 bits"))
    }

    fn string(&mut self, what: &str) -> Result<String, IngesterError> {
        let len = self.count(what, 1)?;
        let (bytes, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        String::from_utf8(bytes.to_vec()).map_err(|_| corrupt(format!("{what} is not UTF-8")))
    }

    fn f64(&mut self) -> Result<f64, IngesterError> {
        if self.bytes.len() < 8 {
            return Err(corrupt("ends inside a sample value"));
        }
        let (bytes, rest) = self.bytes.split_at(8);
        self.bytes = rest;
        let mut raw = [0u8; 8];
        raw.copy_from_slice(bytes);
        Ok(f64::from_le_bytes(raw))
    }
}

/// Decodes one record.
pub fn decode(record: &[u8]) -> Result<WalRecord, IngesterError> {
    let (&kind, body) = record
        .split_first()
        .ok_or_else(|| corrupt("empty record"))?;
    let mut r = Reader { bytes: body };
    let out = match kind {
        EPOCH => WalRecord::Epoch,
        SERIES => {
            let tenant = r.string("tenant")?;
            let n = r.count("series count", 2)?;
            let mut series = Vec::with_capacity(n);
            for _ in 0..n {
                let reference = r.reference()?;
                let k = r.count("label count", 2)?;
                let mut labels = Vec::with_capacity(k);
                for _ in 0..k {
                    let name = r.string("label name")?;
                    let value = r.string("label value")?;
                    labels.push((name, value));
                }
                series.push((reference, labels));
            }
            WalRecord::Series { tenant, series }
        }
        SAMPLES => {
            let tenant = r.string("tenant")?;
            let n = r.count("sample count", 10)?;
            let mut samples = Vec::with_capacity(n);
            for _ in 0..n {
                let reference = r.reference()?;
                let z = r.varint("timestamp")?;
                let t = ((z >> 1) as i64) ^ -((z & 1) as i64);
                samples.push((reference, t, r.f64()?));
            }
            WalRecord::Samples { tenant, samples }
        }
        CHUNKS => {
            let tenant = r.string("tenant")?;
            let n = r.count("chunk count", 3)?;
            let mut chunks = Vec::with_capacity(n);
            for _ in 0..n {
                let reference = r.reference()?;
                let (&encoding, rest) = r
                    .bytes
                    .split_first()
                    .ok_or_else(|| corrupt("ends before a chunk encoding"))?;
                r.bytes = rest;
                let len = r.count("chunk length", 1)?;
                let (bytes, rest) = r.bytes.split_at(len);
                r.bytes = rest;
                chunks.push((reference, encoding, bytes.to_vec()));
            }
            WalRecord::Chunks { tenant, chunks }
        }
        other => return Err(corrupt(format!("unknown record kind {other}"))),
    };
    if !r.bytes.is_empty() {
        return Err(corrupt(format!("{} trailing bytes", r.bytes.len())));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn records_round_trip() {
        assert_eq!(decode(&encode_epoch()).unwrap(), WalRecord::Epoch);
        let a: &[(&str, &str)] = &[("__name__", "up"), ("job", "api")];
        let b: &[(&str, &str)] = &[("__name__", "x"), ("ü", "\0")];
        let record = encode_series("team-a", [(7u32, a), (u32::MAX, b)].into_iter());
        assert_eq!(
            decode(&record).unwrap(),
            WalRecord::Series {
                tenant: "team-a".into(),
                series: vec![
                    (
                        7,
                        vec![
                            ("__name__".into(), "up".into()),
                            ("job".into(), "api".into())
                        ]
                    ),
                    (
                        u32::MAX,
                        vec![("__name__".into(), "x".into()), ("ü".into(), "\0".into())]
                    ),
                ],
            }
        );
        let samples = vec![
            (7, 1_700_000_000_000, 1.5),
            (0, -5, f64::NAN),
            (3, i64::MIN, -0.0),
        ];
        match decode(&encode_samples("t", &samples)).unwrap() {
            WalRecord::Samples {
                tenant,
                samples: got,
            } => {
                assert_eq!(tenant, "t");
                assert_eq!(got.len(), 3);
                for (g, w) in got.iter().zip(&samples) {
                    assert_eq!((g.0, g.1, g.2.to_bits()), (w.0, w.1, w.2.to_bits()));
                }
            }
            other => panic!("{other:?}"),
        }
        let chunks = encode_chunks("t", &[(1, 1, b"abc"), (2, 1, b"")]);
        assert_eq!(
            decode(&chunks).unwrap(),
            WalRecord::Chunks {
                tenant: "t".into(),
                chunks: vec![(1, 1, b"abc".to_vec()), (2, 1, Vec::new())],
            }
        );
        for cut in 0..chunks.len() {
            assert!(decode(&chunks[..cut]).is_err());
        }
        // About 14 bytes per sample for realistic references and times.
        let many: Vec<(u32, i64, f64)> = (0..1000)
            .map(|i| (i, 1_700_000_000_000 + i64::from(i), 1.0))
            .collect();
        assert!(encode_samples("t", &many).len() < 1000 * 16);
    }

    #[test]
    fn damage_is_an_error() {
        let record = encode_samples("t", &[(1, 2, 3.0)]);
        for cut in 0..record.len() {
            assert!(decode(&record[..cut]).is_err(), "cut at {cut}");
        }
        let mut trailing = record.clone();
        trailing.push(0);
        assert!(decode(&trailing).is_err());
        assert!(decode(&[9]).is_err());
        // A forged count is refused before allocating.
        assert!(decode(&[SAMPLES, 1, b't', 0xff, 0xff, 0xff, 0xff, 0x0f]).is_err());
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode(&bytes);
        }
    }
}
