//! Golden compatibility test against chunks written by real Prometheus.
//!
//! `tests/fixtures/` holds a TSDB block produced by
//! `promtool tsdb create-blocks-from openmetrics` (Prometheus 2.42) from
//! `input.om`; see `tests/fixtures/regenerate.sh`. This test:
//!
//! 1. parses the block's chunk segment file and checks every chunk's CRC32C;
//! 2. parses the block index to map every series to its chunk references;
//! 3. derives the expected samples of every series from `input.om`,
//!    converting timestamps exactly like Prometheus' OpenMetrics parser;
//! 4. decodes every Prometheus chunk with [`XorIterator`] and compares the
//!    samples bit-exactly, and re-encodes them with [`XorChunk`] asserting the
//!    bytes (and so the CRC) are identical to Prometheus'.

use std::collections::{BTreeMap, BTreeSet};

use strata_chunk::{XorChunk, XorIterator, ENCODING_XOR};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

/// Magic number of block chunk segment files (`chunks.MagicChunks`).
const MAGIC_CHUNKS: u32 = 0x85BD_40DD;
/// Magic number of the block index (`index.MagicIndex`).
const MAGIC_INDEX: u32 = 0xBAAA_D700;

type Labels = Vec<(String, String)>;

fn read_fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}/{name}")).unwrap_or_else(|e| panic!("reading {name}: {e}"))
}

// ---------------------------------------------------------------------------
// CRC32 Castagnoli (what Prometheus uses for chunks and index entries).

fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn crc32c_known_answer() {
    assert_eq!(crc32c(b"123456789"), 0xE306_9283);
}

// ---------------------------------------------------------------------------
// Small decoding helpers for the index and segment file.

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn u8(&mut self) -> u8 {
        let b = self.buf[self.pos];
        self.pos += 1;
        b
    }
    fn be_u32(&mut self) -> u32 {
        let v = u32::from_be_bytes(self.buf[self.pos..self.pos + 4].try_into().unwrap());
        self.pos += 4;
        v
    }
    fn be_u64(&mut self) -> u64 {
        let v = u64::from_be_bytes(self.buf[self.pos..self.pos + 8].try_into().unwrap());
        self.pos += 8;
        v
    }
    fn uvarint(&mut self) -> u64 {
        let mut x = 0u64;
        let mut shift = 0;
        loop {
            let b = self.u8();
            x |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return x;
            }
            shift += 7;
        }
    }
    fn varint(&mut self) -> i64 {
        let u = self.uvarint();
        ((u >> 1) as i64) ^ -((u & 1) as i64)
    }
    fn bytes(&mut self, n: usize) -> &[u8] {
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        s
    }
}

struct SegmentChunk {
    encoding: u8,
    data: Vec<u8>,
    crc: u32,
}

/// Parses a block chunk segment file into `offset -> chunk`.
fn parse_segment(buf: &[u8]) -> BTreeMap<u64, SegmentChunk> {
    let mut c = Cursor { buf, pos: 0 };
    assert_eq!(c.be_u32(), MAGIC_CHUNKS, "segment magic");
    assert_eq!(c.u8(), 1, "segment version");
    assert_eq!(c.bytes(3), &[0, 0, 0], "segment padding");
    let mut chunks = BTreeMap::new();
    while c.pos < buf.len() {
        let offset = c.pos as u64;
        let len = c.uvarint() as usize;
        let encoding = c.u8();
        let data = c.bytes(len).to_vec();
        let crc = c.be_u32();
        chunks.insert(
            offset,
            SegmentChunk {
                encoding,
                data,
                crc,
            },
        );
    }
    assert_eq!(c.pos, buf.len());
    chunks
}

#[derive(Debug)]
struct ChunkMeta {
    mint: i64,
    maxt: i64,
    chunk_ref: u64,
}

/// Minimal parser for the v2 block index: returns every series' labels and chunk metas.
fn parse_index(buf: &[u8]) -> Vec<(Labels, Vec<ChunkMeta>)> {
    let mut c = Cursor { buf, pos: 0 };
    assert_eq!(c.be_u32(), MAGIC_INDEX, "index magic");
    assert_eq!(c.u8(), 2, "index version");

    // Table of contents: 6 big-endian u64 offsets + CRC32C, at the very end.
    let toc_start = buf.len() - 6 * 8 - 4;
    let mut toc = Cursor {
        buf,
        pos: toc_start,
    };
    let offsets: Vec<u64> = (0..6).map(|_| toc.be_u64()).collect();
    assert_eq!(
        toc.be_u32(),
        crc32c(&buf[toc_start..toc_start + 48]),
        "TOC crc"
    );
    let (symbols_off, series_off) = (offsets[0] as usize, offsets[1] as usize);
    // The series section ends where the next non-empty section starts.
    let series_end = offsets[2..]
        .iter()
        .map(|&o| o as usize)
        .filter(|&o| o > series_off)
        .min()
        .unwrap_or(toc_start);

    // Symbol table: len <4b>, #symbols <4b>, symbols (uvarint len + bytes), CRC32C.
    let mut s = Cursor {
        buf,
        pos: symbols_off,
    };
    let sym_len = s.be_u32() as usize;
    assert_eq!(
        crc32c(&buf[symbols_off + 4..symbols_off + 4 + sym_len]),
        u32::from_be_bytes(
            buf[symbols_off + 4 + sym_len..symbols_off + 8 + sym_len]
                .try_into()
                .unwrap()
        ),
        "symbol table crc"
    );
    let n_symbols = s.be_u32();
    let symbols: Vec<String> = (0..n_symbols)
        .map(|_| {
            let n = s.uvarint() as usize;
            String::from_utf8(s.bytes(n).to_vec()).unwrap()
        })
        .collect();

    // Series: each entry is 16-byte aligned: len <uvarint>, body, CRC32C(body).
    let mut out = Vec::new();
    let mut pos = series_off;
    loop {
        pos = pos.div_ceil(16) * 16;
        if pos >= series_end {
            break;
        }
        let mut e = Cursor { buf, pos };
        let len = e.uvarint() as usize;
        let body_start = e.pos;
        let body = &buf[body_start..body_start + len];
        let crc = u32::from_be_bytes(
            buf[body_start + len..body_start + len + 4]
                .try_into()
                .unwrap(),
        );
        assert_eq!(crc, crc32c(body), "series entry crc at {pos}");

        let n_labels = e.uvarint();
        let labels: Labels = (0..n_labels)
            .map(|_| {
                let name = symbols[e.uvarint() as usize].clone();
                let value = symbols[e.uvarint() as usize].clone();
                (name, value)
            })
            .collect();
        let n_chunks = e.uvarint();
        let mut metas: Vec<ChunkMeta> = Vec::new();
        for i in 0..n_chunks {
            let meta = if i == 0 {
                let mint = e.varint();
                let maxt = mint + e.uvarint() as i64;
                let chunk_ref = e.uvarint();
                ChunkMeta {
                    mint,
                    maxt,
                    chunk_ref,
                }
            } else {
                let prev = metas.last().unwrap();
                let mint = prev.maxt + e.uvarint() as i64;
                let maxt = mint + e.uvarint() as i64;
                let chunk_ref = (prev.chunk_ref as i64 + e.varint()) as u64;
                ChunkMeta {
                    mint,
                    maxt,
                    chunk_ref,
                }
            };
            metas.push(meta);
        }
        assert_eq!(e.pos, body_start + len, "series entry fully consumed");
        out.push((labels, metas));
        pos = body_start + len + 4;
    }
    out
}

// ---------------------------------------------------------------------------
// Expected samples from the OpenMetrics input.

/// Go's `strconv.ParseFloat` as used by Prometheus' OpenMetrics parser.
fn parse_go_float(s: &str) -> f64 {
    match s {
        // Go's math.NaN() bit pattern.
        "NaN" => f64::from_bits(0x7FF8_0000_0000_0001),
        "+Inf" | "Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        _ => s.parse().unwrap_or_else(|e| panic!("bad float {s:?}: {e}")),
    }
}

/// Parses `input.om` into `labels -> [(t_ms, value)]`.
fn parse_openmetrics(text: &str) -> BTreeMap<Labels, Vec<(i64, f64)>> {
    let mut series: BTreeMap<Labels, Vec<(i64, f64)>> = BTreeMap::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (name, rest) = line.split_once('{').expect("series with labels");
        let (labels, rest) = rest.split_once('}').expect("closing brace");
        let mut fields = rest.split_whitespace();
        let value = parse_go_float(fields.next().expect("value"));
        let ts_secs: f64 = fields.next().expect("timestamp").parse().unwrap();
        assert!(fields.next().is_none());
        // Exactly what Prometheus does: int64(ts * 1000), truncating.
        let t_ms = (ts_secs * 1000.0) as i64;

        let mut ls: Labels = vec![("__name__".to_string(), name.to_string())];
        for pair in labels.split(',') {
            let (k, v) = pair.split_once('=').unwrap();
            ls.push((k.to_string(), v.trim_matches('"').to_string()));
        }
        ls.sort();
        series.entry(ls).or_default().push((t_ms, value));
    }
    series
}

fn bits(samples: &[(i64, f64)]) -> Vec<(i64, u64)> {
    samples.iter().map(|&(t, v)| (t, v.to_bits())).collect()
}

// ---------------------------------------------------------------------------

#[test]
fn prometheus_chunks_decode_and_reencode_identically() {
    let segment = parse_segment(&read_fixture("prometheus_chunks_000001"));
    let index = parse_index(&read_fixture("prometheus_index"));
    let input = String::from_utf8(read_fixture("input.om")).unwrap();
    let expected = parse_openmetrics(&input);

    // Every chunk's CRC32C covers the encoding byte and the data.
    for (off, c) in &segment {
        assert_eq!(c.encoding, ENCODING_XOR, "chunk at {off} is not XOR");
        let mut covered = vec![c.encoding];
        covered.extend_from_slice(&c.data);
        assert_eq!(crc32c(&covered), c.crc, "crc of chunk at {off}");
    }

    let index_series: BTreeSet<&Labels> = index.iter().map(|(l, _)| l).collect();
    let input_series: BTreeSet<&Labels> = expected.keys().collect();
    assert_eq!(index_series, input_series, "series in index vs input");

    let mut seen_chunks = BTreeSet::new();
    let mut total_samples = 0;
    for (labels, metas) in &index {
        let want_all = &expected[labels];
        let mut decoded_all: Vec<(i64, f64)> = Vec::new();
        assert!(!metas.is_empty());
        for meta in metas {
            assert_eq!(meta.chunk_ref >> 32, 0, "chunk not in segment 000001");
            let offset = meta.chunk_ref & 0xffff_ffff;
            assert!(
                seen_chunks.insert(offset),
                "chunk {offset} referenced twice"
            );
            let chunk = segment
                .get(&offset)
                .unwrap_or_else(|| panic!("no chunk at offset {offset}"));

            // (a) Decode Prometheus' chunk.
            let mut it = XorIterator::new(&chunk.data);
            let decoded: Vec<(i64, f64)> = it.by_ref().collect();
            assert!(it.err().is_none(), "{labels:?}: {:?}", it.err());
            assert_eq!(usize::from(it.num_samples()), decoded.len());

            let want: Vec<(i64, f64)> = want_all
                .iter()
                .copied()
                .filter(|&(t, _)| meta.mint <= t && t <= meta.maxt)
                .collect();
            assert!(!want.is_empty());
            assert_eq!(want.first().unwrap().0, meta.mint);
            assert_eq!(want.last().unwrap().0, meta.maxt);
            assert_eq!(bits(&decoded), bits(&want), "decoded samples of {labels:?}");

            // (b) Re-encode and compare bytes.
            let mut ours = XorChunk::new();
            for &(t, v) in &want {
                ours.append(t, v);
            }
            assert_eq!(
                ours.bytes(),
                &chunk.data[..],
                "encoding of {labels:?} chunk {offset}"
            );
            assert_eq!(ours.min_time(), Some(meta.mint));
            assert_eq!(ours.max_time(), Some(meta.maxt));

            // (c) Our chunk's CRC matches Prometheus'.
            let mut covered = vec![ENCODING_XOR];
            covered.extend_from_slice(ours.bytes());
            assert_eq!(crc32c(&covered), chunk.crc);

            // Loading Prometheus' bytes yields an appendable chunk with the same state.
            let loaded = XorChunk::from_bytes(chunk.data.clone()).expect("from_bytes");
            assert_eq!(loaded.bytes(), &chunk.data[..]);
            assert_eq!(loaded.num_samples(), ours.num_samples());
            assert_eq!(loaded.min_time(), Some(meta.mint));
            assert_eq!(loaded.max_time(), Some(meta.maxt));

            decoded_all.extend(decoded);
        }
        // The chunks of a series cover all of its input samples, in order.
        assert_eq!(
            bits(&decoded_all),
            bits(want_all),
            "all samples of {labels:?}"
        );
        total_samples += decoded_all.len();
    }
    let all_offsets: BTreeSet<u64> = segment.keys().copied().collect();
    assert_eq!(
        seen_chunks, all_offsets,
        "every chunk in the segment is checked"
    );
    assert_eq!(
        total_samples,
        expected.values().map(Vec::len).sum::<usize>()
    );
    // Sanity: the fixture really has multi-chunk series and more chunks than series.
    assert!(
        segment.len() > index.len(),
        "fixture should contain a split series"
    );
}

/// Guards the fixture itself: it must exercise every delta-of-delta bucket and the
/// special float values, otherwise the golden test above proves less than it claims.
#[test]
fn fixture_covers_all_encoding_paths() {
    let input = String::from_utf8(read_fixture("input.om")).unwrap();
    let expected = parse_openmetrics(&input);
    let mut buckets = BTreeSet::new();
    let mut specials = BTreeSet::new();
    for samples in expected.values() {
        for w in samples.windows(3) {
            let dod = (w[2].0 - w[1].0) - (w[1].0 - w[0].0);
            let b = match dod {
                0 => 0,
                d if (-(1 << 13) + 1..=1 << 13).contains(&d) => 14,
                d if (-(1 << 16) + 1..=1 << 16).contains(&d) => 17,
                d if (-(1 << 19) + 1..=1 << 19).contains(&d) => 20,
                _ => 64,
            };
            buckets.insert(b);
        }
        for &(_, v) in samples {
            if v.is_nan() {
                specials.insert("nan");
            } else if v == f64::INFINITY {
                specials.insert("+inf");
            } else if v == f64::NEG_INFINITY {
                specials.insert("-inf");
            } else if v.to_bits() == (-0.0f64).to_bits() {
                specials.insert("-0");
            } else if v < 0.0 {
                specials.insert("negative");
            } else if v.fract() != 0.0 {
                specials.insert("decimal");
            }
        }
    }
    assert_eq!(buckets, BTreeSet::from([0, 14, 17, 20, 64]));
    assert_eq!(
        specials,
        BTreeSet::from(["nan", "+inf", "-inf", "-0", "negative", "decimal"])
    );
}
