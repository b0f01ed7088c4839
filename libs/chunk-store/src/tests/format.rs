//! The object format: round trips, every corruption detected, strict and panic-free parsing.

use std::sync::Arc;

use proptest::prelude::*;

use super::*;
use crate::format::{put_varint, zigzag, FORMAT_VERSION};
use crate::{
    read_index, verify_chunk, ChunkRef, Footer, FormatError, Header, ObjectIndex, FOOTER_LEN,
    RECORD_OVERHEAD,
};

/// Checks the layout of a built object: header, records back to back in index order from
/// the end of the header to the index, index, footer.
fn assert_layout(built: &BuiltObject) {
    let header = Header::parse(&built.key, &built.body).unwrap();
    let footer = Footer::parse(&built.key, &built.body).unwrap();
    assert_eq!(footer.index_offset, built.index_offset);
    assert_eq!(footer.index_len, built.index_len);
    assert_eq!(
        built.body.len(),
        built.index_offset as usize + built.index_len as usize + FOOTER_LEN
    );
    let index = ObjectIndex::parse_at(&built.key, index_section(built), built.index_offset)
        .expect("a built object parses");
    assert_eq!(index, built.index);
    assert_eq!(
        ObjectIndex::parse(&built.key, index_section(built)).unwrap(),
        index
    );
    assert_eq!(index.tenant(), header.tenant);
    let mut next = header.len as u64;
    for r in all_refs(&index) {
        assert_eq!(r.offset, next, "records are back to back in index order");
        next = r.end();
        verify_chunk(&r, &built.body[r.offset as usize..r.end() as usize]).unwrap();
    }
    assert_eq!(next, built.index_offset);
    assert_eq!(index.records_end(), built.index_offset);
}

#[test]
fn build_then_parse_gives_the_same_series() {
    let written = small_series();
    let built = build("tenant-1", "tenant-1/chunks/19000/w-1", &written);
    assert_layout(&built);
    let index = ObjectIndex::parse(&built.key, index_section(&built)).unwrap();
    assert_matches_written(&index, &written);
    assert_eq!(&**index.key(), built.key);
    assert_eq!(index.tenant(), "tenant-1");
    assert_eq!(index.len(), 3);
    assert!(!index.is_empty());
    assert_eq!(index.chunk_count(), 5);
    assert_eq!(index.time_range(), Some((-5, 3000)));
    assert_eq!(built.time_range, Some((-5, 3000)));
    assert!((0..index.len())
        .collect::<Vec<_>>()
        .windows(2)
        .all(|w| index.fingerprint(w[0]) < index.fingerprint(w[1])));

    // Every chunk verifies and gives back its payload.
    let mut payloads = 0;
    for s in &written {
        let found = index.find(s.labels.fingerprint());
        assert_eq!(found.len(), 1);
        let i = found.start;
        assert_eq!(index.labels(i), s.labels);
        assert_eq!(index.digest(i), digest_of(&s.chunks));
        for (r, c) in index.chunks(i).iter().zip(&s.chunks) {
            let record = &built.body[r.offset as usize..r.end() as usize];
            assert_eq!(verify_chunk(r, record).unwrap(), c.data);
            assert!(Arc::ptr_eq(&r.object, index.key()));
            payloads += 1;
        }
    }
    assert_eq!(payloads, 5);
    assert!(index.find(12345).is_empty());
    assert_eq!(index.label_value(0, "nope"), None);

    let names: Vec<&str> = built.label_values.keys().map(String::as_str).collect();
    assert_eq!(names, ["__name__", "code", "job"]);
    assert_eq!(built.label_values["__name__"], ["requests_total", "up"]);
    assert_eq!(built.label_values["job"], ["api", "db"]);
}

#[test]
fn data_len_and_series_count_grow_with_added_series() {
    let mut b = ObjectBuilder::new("t");
    assert_eq!((b.series_count(), b.data_len()), (0, 0));
    let l = labels(&[("a", "1")]);
    b.add_series(l.fingerprint(), &l, 11, &[chunk(0, 1, 1, b"abcd")]);
    assert_eq!(b.series_count(), 1);
    assert_eq!(b.data_len(), 4 + RECORD_OVERHEAD);
    // The same series again joins the first entry; its later digest wins.
    b.add_series(l.fingerprint(), &l, 22, &[chunk(2, 3, 1, b"ef")]);
    assert_eq!(b.series_count(), 1);
    assert_eq!(b.data_len(), 6 + 2 * RECORD_OVERHEAD);
    let built = b.finish("k");
    assert_layout(&built);
    assert_eq!(built.index.len(), 1);
    assert_eq!(built.index.digest(0), 22);
    let chunks = built.index.chunks(0);
    assert_eq!(chunks.len(), 2);
    assert_eq!((chunks[0].min_time, chunks[1].min_time), (0, 2));
    // data_len is exactly the bytes between header and index.
    let header_len = Header::parse("k", &built.body).unwrap().len;
    assert_eq!(
        built.index_offset as usize - header_len,
        6 + 2 * RECORD_OVERHEAD
    );
}

#[test]
fn labels_the_format_cannot_hold_are_dropped_and_backwards_chunks_clamped() {
    let mut b = ObjectBuilder::new("t");
    let odd = Labels::from_sorted(vec![
        strata_model::Label::new("", "x"),
        strata_model::Label::new("a", "1"),
        strata_model::Label::new("b", ""),
    ]);
    b.add_series(1, &odd, 0, &[chunk(10, 5, 1, b"x")]);
    let built = b.finish("k");
    assert_layout(&built);
    assert_eq!(built.index.labels(0), labels(&[("a", "1")]));
    let c = &built.index.chunks(0)[0];
    assert_eq!((c.min_time, c.max_time), (10, 10));
}

#[test]
fn empty_object_round_trips() {
    let built = ObjectBuilder::new("t").finish("t/chunks/1/w-0");
    assert_layout(&built);
    let index = ObjectIndex::parse(&built.key, index_section(&built)).unwrap();
    assert!(index.is_empty());
    assert_eq!(index.len(), 0);
    assert_eq!(index.tenant(), "t");
    assert!(index.find(0).is_empty());
    assert_eq!(index.time_range(), None);
    assert!(index.label_names().is_empty());
    assert!(index.select(&[]).is_empty());
    assert!(built.label_values.is_empty());
    assert_eq!(built.time_range, None);
}

#[test]
fn colliding_fingerprints_keep_both_label_sets() {
    let a = labels(&[("job", "a")]);
    let b = labels(&[("job", "b")]);
    let mut builder = ObjectBuilder::new("t");
    builder.add_series(7, &b, 2, &[chunk(0, 1, 1, b"b")]);
    builder.add_series(7, &a, 1, &[chunk(0, 1, 1, b"a")]);
    builder.add_series(3, &a, 3, &[chunk(0, 1, 1, b"c")]);
    builder.add_series(7, &b, 4, &[chunk(2, 3, 1, b"d")]);
    assert_eq!(builder.series_count(), 3);
    let built = builder.finish("k");
    assert_layout(&built);
    let index = &built.index;
    assert_eq!(index.len(), 3);
    assert_eq!(index.find(7), 1..3);
    assert_eq!(index.labels(1), a);
    assert_eq!(index.labels(2), b);
    assert_eq!(index.digest(2), 4);
    assert_eq!(index.chunks(2).len(), 2);
    assert_eq!(index.find(3), 0..1);
    assert!(index.find(5).is_empty());
    assert!(index.find(u64::MAX).is_empty());
}

#[test]
fn many_series_with_collisions_round_trip() {
    // Fingerprints folded into a small range: most series share theirs with others.
    let written: Vec<(u64, TestSeries)> = (0..3000u32)
        .map(|n| {
            let l = labels(&[
                (
                    "__name__",
                    ["up", "requests_total", "latency"][n as usize % 3],
                ),
                ("instance", &format!("10.0.{}.{}:9100", n / 200, n % 200)),
                ("shard", &(n % 7).to_string()),
            ]);
            let chunks = (0..n % 4)
                .map(|k| {
                    let t = i64::from(n) * 1000 + i64::from(k) * 7_200_000;
                    chunk(t, t + 7_199_000, 1, &n.to_le_bytes())
                })
                .collect();
            (l.fingerprint() % 500, TestSeries { labels: l, chunks })
        })
        .collect();
    let mut b = ObjectBuilder::new("tenant");
    for (fp, s) in &written {
        b.add_series(*fp, &s.labels, digest_of(&s.chunks), &s.chunks);
    }
    let built = b.finish("tenant/chunks/1/w-9");
    assert_layout(&built);
    let index = &built.index;
    assert_eq!(index.len(), 3000);
    let mut by_fp: BTreeMap<u64, Vec<&TestSeries>> = BTreeMap::new();
    for (fp, s) in &written {
        by_fp.entry(*fp).or_default().push(s);
    }
    assert!(by_fp.len() <= 500);
    for (fp, mut group) in by_fp {
        group.sort_by(|a, b| a.labels.cmp(&b.labels));
        let found = index.find(fp);
        assert_eq!(found.len(), group.len());
        for (i, s) in found.zip(group) {
            let got = index.series(i);
            assert_eq!(got.fingerprint, fp);
            assert_eq!(got.labels, s.labels);
            assert_eq!(got.digest, digest_of(&s.chunks));
            let times: Vec<(i64, i64)> = got
                .chunks
                .iter()
                .map(|c| (c.min_time, c.max_time))
                .collect();
            let want: Vec<(i64, i64)> = s.chunks.iter().map(|c| (c.min_time, c.max_time)).collect();
            assert_eq!(times, want);
            for (r, c) in got.chunks.iter().zip(&s.chunks) {
                let record = &built.body[r.offset as usize..r.end() as usize];
                assert_eq!(verify_chunk(r, record).unwrap(), c.data);
            }
        }
    }
}

#[test]
fn chunks_overlapping_a_range() {
    let l = labels(&[("a", "1")]);
    let mut b = ObjectBuilder::new("t");
    b.add_series(
        1,
        &l,
        0,
        &[
            chunk(0, 99, 1, b"a"),
            chunk(100, 199, 1, b"b"),
            chunk(200, 299, 1, b"c"),
        ],
    );
    let index = b.finish("k").index;
    let mins = |from, to| -> Vec<i64> {
        index
            .chunks_overlapping(0, from, to)
            .iter()
            .map(|c| c.min_time)
            .collect()
    };
    assert_eq!(mins(0, 1000), [0, 100, 200]);
    assert_eq!(mins(99, 100), [0, 100]);
    assert_eq!(mins(150, 160), [100]);
    assert_eq!(mins(299, 299), [200]);
    assert!(mins(300, 400).is_empty());
    assert!(mins(-10, -1).is_empty());
    assert!(mins(10, 5).is_empty());
}

#[test]
fn extreme_times_round_trip() {
    let l = labels(&[("a", "1")]);
    let m = labels(&[("a", "2")]);
    let mut b = ObjectBuilder::new("t");
    b.add_series(
        1,
        &l,
        0,
        &[
            chunk(i64::MAX, i64::MAX, 1, b"a"),
            chunk(i64::MIN, i64::MAX, 1, b"b"),
            chunk(i64::MIN, i64::MIN, 1, b"c"),
            chunk(0, 0, 1, b"d"),
        ],
    );
    b.add_series(2, &m, 0, &[chunk(-1, 1, 1, b"e")]);
    let built = b.finish("k");
    assert_layout(&built);
    let times: Vec<(i64, i64)> = built
        .index
        .chunks(0)
        .iter()
        .map(|c| (c.min_time, c.max_time))
        .collect();
    assert_eq!(
        times,
        [
            (i64::MAX, i64::MAX),
            (i64::MIN, i64::MAX),
            (i64::MIN, i64::MIN),
            (0, 0)
        ]
    );
    assert_eq!(built.time_range, Some((i64::MIN, i64::MAX)));
}

#[test]
fn every_flipped_byte_of_every_record_is_detected() {
    let built = build("t", "t/chunks/1/w-1", &small_series());
    let refs = all_refs(&built.index);
    assert_eq!(refs.len(), 5);
    let mut checked = 0;
    for r in &refs {
        let record = &built.body[r.offset as usize..r.end() as usize];
        assert!(verify_chunk(r, record).is_ok());
        for i in 0..record.len() {
            for mask in [0x01u8, 0x80, 0xFF, 0x5A] {
                let mut bad = record.to_vec();
                bad[i] ^= mask;
                match verify_chunk(r, &bad) {
                    Err(FormatError::Checksum { object, offset }) => {
                        assert_eq!(object, "t/chunks/1/w-1");
                        assert_eq!(offset, r.offset);
                    }
                    other => panic!("byte {i} ^ {mask:#x} of record at {}: {other:?}", r.offset),
                }
                checked += 1;
            }
        }
        // A record too short or too long, or checked against the wrong ref, is refused.
        assert!(verify_chunk(r, &record[..record.len() - 1]).is_err());
        let mut longer = record.to_vec();
        longer.push(0);
        assert!(verify_chunk(r, &longer).is_err());
        let wrong_encoding = ChunkRef {
            encoding: r.encoding ^ 1,
            ..r.clone()
        };
        assert!(verify_chunk(&wrong_encoding, record).is_err());
        let wrong_len = ChunkRef {
            len: r.len - 1,
            ..r.clone()
        };
        assert!(verify_chunk(&wrong_len, &record[..record.len() - 1]).is_err());
    }
    // A ref pointing at the neighbouring record (same encoding) is refused too.
    let (a, b) = (&refs[0], &refs[1]);
    let shifted = ChunkRef {
        offset: b.offset,
        ..a.clone()
    };
    let record = &built.body[b.offset as usize..(b.offset + u64::from(a.len)) as usize];
    assert!(a.len == b.len || verify_chunk(&shifted, record).is_err());
    assert!(checked > 100);
}

#[test]
fn every_flipped_byte_of_the_index_and_footer_is_detected() {
    let built = build("t", "k", &small_series());
    let section = index_section(&built);
    for i in 0..section.len() {
        let mut bad = section.to_vec();
        bad[i] ^= 0x10;
        assert!(ObjectIndex::parse("k", &bad).is_err(), "index byte {i}");
    }
    let tail = &built.body[built.body.len() - FOOTER_LEN..];
    for i in 0..FOOTER_LEN {
        let mut bad = tail.to_vec();
        bad[i] ^= 0x10;
        assert!(Footer::parse("k", &bad).is_err(), "footer byte {i}");
    }
}

#[test]
fn errors_name_what_is_wrong() {
    let built = build("t", "obj", &small_series());
    let section = index_section(&built);

    let mut newer = built.body[built.body.len() - FOOTER_LEN..].to_vec();
    newer[12] = FORMAT_VERSION + 1;
    let crc = crc32fast::hash(&newer[..16]);
    newer[16..20].copy_from_slice(&crc.to_le_bytes());
    let e = Footer::parse("obj", &newer).unwrap_err();
    assert_eq!(
        e,
        FormatError::UnsupportedVersion {
            object: "obj".to_string(),
            version: 3,
            supported: 2
        }
    );
    assert!(e.to_string().contains("version 3"), "{e}");

    let e = Footer::parse("obj", b"short").unwrap_err();
    assert!(matches!(e, FormatError::Truncated { .. }), "{e}");
    let e = ObjectIndex::parse("obj", &section[..section.len() - 1]).unwrap_err();
    assert!(
        matches!(e, FormatError::IndexChecksum { .. }),
        "{e}: a cut index fails its checksum"
    );
    let e = Header::parse("obj", b"NOPE\x02").unwrap_err();
    assert!(matches!(e, FormatError::BadMagic { .. }), "{e}");
    assert!(e.to_string().contains("obj"));
    // The right index read with the wrong offset.
    let e = ObjectIndex::parse_at("obj", section, built.index_offset + 1).unwrap_err();
    assert!(e.to_string().contains("index starts at"), "{e}");
    for e in [
        FormatError::Checksum {
            object: "o".into(),
            offset: 42,
        },
        FormatError::IndexChecksum { object: "o".into() },
    ] {
        let text = e.to_string();
        assert!(text.contains("o") && text.starts_with("object o"), "{text}");
        assert!(!text.ends_with('.'));
    }
}

/// A version 1 object (the pre-release layout), as that writer produced it: one series
/// `{a="1"}`, one chunk.
fn version_1_object() -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(b"STRC");
    body.push(1);
    body.extend_from_slice(&1u32.to_le_bytes());
    body.push(b't');
    let crc = crc32fast::hash(&body);
    body.extend_from_slice(&crc.to_le_bytes());
    let record_at = body.len() as u64;
    let record_start = body.len();
    body.push(1);
    body.extend_from_slice(&3u32.to_le_bytes());
    body.extend_from_slice(b"abc");
    let record_crc = crc32fast::hash(&body[record_start..]);
    body.extend_from_slice(&record_crc.to_le_bytes());
    let index_at = body.len();
    body.extend_from_slice(b"SIDX");
    body.push(1);
    body.extend_from_slice(&1u32.to_le_bytes());
    body.push(b't');
    body.extend_from_slice(&1u32.to_le_bytes());
    body.extend_from_slice(&42u64.to_le_bytes());
    body.extend_from_slice(&1u32.to_le_bytes());
    for s in ["a", "1"] {
        body.extend_from_slice(&1u32.to_le_bytes());
        body.extend_from_slice(s.as_bytes());
    }
    body.extend_from_slice(&1u32.to_le_bytes());
    body.extend_from_slice(&0i64.to_le_bytes());
    body.extend_from_slice(&1i64.to_le_bytes());
    body.push(1);
    body.extend_from_slice(&record_at.to_le_bytes());
    body.extend_from_slice(&12u32.to_le_bytes());
    body.extend_from_slice(&record_crc.to_le_bytes());
    let crc = crc32fast::hash(&body[index_at..]);
    body.extend_from_slice(&crc.to_le_bytes());
    let index_len = (body.len() - index_at) as u32;
    let mut footer = [0u8; FOOTER_LEN];
    footer[0..8].copy_from_slice(&(index_at as u64).to_le_bytes());
    footer[8..12].copy_from_slice(&index_len.to_le_bytes());
    footer[12] = 1;
    let crc = crc32fast::hash(&footer[..16]);
    footer[16..20].copy_from_slice(&crc.to_le_bytes());
    footer[20..24].copy_from_slice(b"SCFT");
    body.extend_from_slice(&footer);
    body
}

#[test]
fn version_1_objects_are_refused_as_unsupported() {
    let v1 = version_1_object();
    let unsupported = FormatError::UnsupportedVersion {
        object: "old".to_string(),
        version: 1,
        supported: FORMAT_VERSION,
    };
    assert_eq!(Footer::parse("old", &v1).unwrap_err(), unsupported);
    assert_eq!(Header::parse("old", &v1).unwrap_err(), unsupported);
    let footer_at = v1.len() - FOOTER_LEN;
    let index_at = u64::from_le_bytes(v1[footer_at..footer_at + 8].try_into().unwrap()) as usize;
    assert_eq!(
        ObjectIndex::parse("old", &v1[index_at..footer_at]).unwrap_err(),
        unsupported
    );
    let text = unsupported.to_string();
    assert!(
        text.contains("old") && text.contains("version 1") && text.contains("reads only version 2"),
        "{text}"
    );

    let rt = runtime();
    rt.block_on(async {
        let store = MemStore::default();
        store.insert("old", Bytes::from(v1));
        match read_index(&store, "old").await {
            Err(crate::FetchError::Format(e)) => assert_eq!(e, unsupported),
            other => panic!("{other:?}"),
        }
    });
}

/// Re-encodes an index section's checksum after a change, so the parser looks past it.
fn reseal(section: &mut [u8]) {
    let body_len = section.len() - 4;
    let crc = crc32fast::hash(&section[..body_len]);
    section[body_len..].copy_from_slice(&crc.to_le_bytes());
}

/// Writes index sections by hand, field by field.
#[derive(Clone)]
struct Section(Vec<u8>);

impl Section {
    /// Magic and version.
    fn start() -> Self {
        let mut out = b"SIDX".to_vec();
        out.push(FORMAT_VERSION);
        Section(out)
    }

    fn varint(mut self, v: u64) -> Self {
        put_varint(&mut self.0, v);
        self
    }

    fn raw(mut self, bytes: &[u8]) -> Self {
        self.0.extend_from_slice(bytes);
        self
    }

    fn string(self, s: &[u8]) -> Self {
        self.varint(s.len() as u64).raw(s)
    }

    fn digest(self) -> Self {
        self.raw(&[0; 4])
    }

    fn sealed(self) -> Vec<u8> {
        let mut out = self.0;
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Tenant `t`, base time 0, symbols `a`, `1`, `b`, `2`.
    fn prelude() -> Self {
        Section::start()
            .string(b"t")
            .varint(0)
            .varint(4)
            .string(b"a")
            .string(b"1")
            .string(b"b")
            .string(b"2")
    }

    /// One chunk: record length 10, min time base, duration 0, encoding 1.
    fn chunk(self) -> Self {
        self.varint(10).varint(0).varint(0).raw(&[1])
    }
}

/// Offset where the records of a section with tenant `t` start.
const RECORDS_START: u64 = 13 + 1;

#[test]
fn hand_made_sections_parse_and_round_trip() {
    // Two series sharing fingerprint 5 ({a="1"} < {a="1",b="2"}), one chunk each.
    let section = Section::prelude()
        .varint(2)
        .varint(5)
        .digest()
        .varint(1)
        .varint(0)
        .varint(1)
        .varint(1)
        .chunk()
        .varint(0)
        .digest()
        .varint(2)
        .varint(0)
        .varint(1)
        .varint(2)
        .varint(3)
        .varint(1)
        .chunk()
        .sealed();
    let index = ObjectIndex::parse_at("k", &section, RECORDS_START + 20).unwrap();
    assert_eq!(index.find(5), 0..2);
    assert_eq!(index.labels(1), labels(&[("a", "1"), ("b", "2")]));
    assert_eq!(index.chunks(1)[0].offset, RECORDS_START + 10);
    // Re-encoding a parsed section gives back the same bytes: the encoding is canonical.
    let mut again = Vec::new();
    index.encode_section(&mut again);
    assert_eq!(again, section);
}

#[test]
fn strict_parsing_refuses_every_broken_rule() {
    use FormatError::{Malformed, Truncated};
    let one_series = |labels: &[(u64, u64)], chunks: &dyn Fn(Section) -> Section| {
        let mut s = Section::prelude().varint(1).varint(9).digest();
        s = s.varint(labels.len() as u64);
        for &(n, v) in labels {
            s = s.varint(n).varint(v);
        }
        chunks(s)
    };
    let all_symbols = [(0, 1), (2, 3)];
    let fine = one_series(&all_symbols, &|s| s.varint(1).chunk()).sealed();
    ObjectIndex::parse_at("k", &fine, RECORDS_START + 10).unwrap();

    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "truncated varint",
            Section::prelude().raw(&[0x80]).sealed(),
            "cut short",
        ),
        (
            "varint over 64 bits",
            Section::prelude()
                .raw(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02])
                .sealed(),
            "overflows 64 bits",
        ),
        (
            "varint not in shortest form",
            Section::prelude().raw(&[0x81, 0x00]).sealed(),
            "shortest form",
        ),
        (
            "symbol count beyond the section",
            Section::start()
                .string(b"t")
                .varint(0)
                .varint(1 << 40)
                .sealed(),
            "announces 1099511627776 symbols",
        ),
        (
            "series count beyond the section",
            Section::prelude().varint(u64::MAX).sealed(),
            "announces 18446744073709551615 series",
        ),
        (
            "label count beyond the section",
            Section::prelude()
                .varint(1)
                .varint(9)
                .digest()
                .varint(1_000_000)
                .sealed(),
            "announces 1000000 labels",
        ),
        (
            "chunk count beyond the section",
            one_series(&all_symbols, &|s| s.varint(u64::from(u32::MAX)).chunk()).sealed(),
            "announces 4294967295 chunks",
        ),
        (
            "symbol id out of range",
            one_series(&[(0, 1), (2, 4)], &|s| s.varint(0)).sealed(),
            "symbol id 4 is out of range",
        ),
        (
            "labels not sorted",
            one_series(&[(2, 3), (0, 1)], &|s| s.varint(0)).sealed(),
            "not sorted",
        ),
        (
            "label name repeated",
            one_series(&[(0, 1), (0, 3), (2, 3)], &|s| s.varint(0)).sealed(),
            "not sorted",
        ),
        (
            "symbol used by no series",
            one_series(&[(0, 1)], &|s| s.varint(0)).sealed(),
            "\"b\" is not used",
        ),
        (
            "symbol repeated",
            Section::start()
                .string(b"t")
                .varint(0)
                .varint(2)
                .string(b"a")
                .string(b"a")
                .varint(0)
                .sealed(),
            "holds \"a\" twice",
        ),
        (
            "empty symbol",
            Section::start()
                .string(b"t")
                .varint(0)
                .varint(2)
                .string(b"a")
                .string(b"")
                .varint(0)
                .sealed(),
            "empty string",
        ),
        (
            "symbol not UTF-8",
            Section::start()
                .string(b"t")
                .varint(0)
                .varint(1)
                .string(b"\xff\xfe")
                .varint(0)
                .sealed(),
            "not valid UTF-8",
        ),
        (
            "tenant not UTF-8",
            Section::start()
                .string(b"\xc3")
                .varint(0)
                .varint(0)
                .varint(0)
                .sealed(),
            "not valid UTF-8",
        ),
        (
            "record shorter than its framing",
            one_series(&all_symbols, &|s| {
                s.varint(1).varint(8).varint(0).varint(0).raw(&[1])
            })
            .sealed(),
            "record length 8",
        ),
        (
            "record length over 32 bits",
            one_series(&all_symbols, &|s| {
                s.varint(1).varint(1 << 32).varint(0).varint(0).raw(&[1])
            })
            .sealed(),
            "record length 4294967296",
        ),
        (
            "max time past i64::MAX (a negative duration)",
            one_series(&all_symbols, &|s| {
                s.varint(1).varint(10).varint(0).varint(1 << 63).raw(&[1])
            })
            .sealed(),
            "max time of chunk 0",
        ),
        (
            "min time past i64::MAX",
            Section::start()
                .string(b"t")
                .varint(zigzag(1))
                .varint(2)
                .string(b"a")
                .string(b"1")
                .varint(1)
                .varint(9)
                .digest()
                .varint(1)
                .varint(0)
                .varint(1)
                .varint(1)
                .varint(10)
                .varint(u64::MAX)
                .varint(0)
                .raw(&[1])
                .sealed(),
            "min time of chunk 0",
        ),
        (
            "base time other than the smallest min time",
            Section::start()
                .string(b"t")
                .varint(zigzag(-5))
                .varint(2)
                .string(b"a")
                .string(b"1")
                .varint(1)
                .varint(9)
                .digest()
                .varint(1)
                .varint(0)
                .varint(1)
                .varint(1)
                .varint(10)
                .varint(3)
                .varint(0)
                .raw(&[1])
                .sealed(),
            "base time is -5",
        ),
        (
            "fingerprint past u64::MAX",
            Section::prelude()
                .varint(2)
                .varint(u64::MAX)
                .digest()
                .varint(1)
                .varint(0)
                .varint(1)
                .varint(0)
                .varint(1)
                .digest()
                .varint(1)
                .varint(2)
                .varint(3)
                .varint(0)
                .sealed(),
            "overflows 64 bits",
        ),
        (
            "colliding series out of order",
            Section::prelude()
                .varint(2)
                .varint(5)
                .digest()
                .varint(1)
                .varint(2)
                .varint(3)
                .varint(0)
                .varint(0)
                .digest()
                .varint(1)
                .varint(0)
                .varint(1)
                .varint(0)
                .sealed(),
            "out of order",
        ),
        (
            "the same series twice",
            Section::prelude()
                .varint(2)
                .varint(5)
                .digest()
                .varint(2)
                .varint(0)
                .varint(1)
                .varint(2)
                .varint(3)
                .varint(0)
                .varint(0)
                .digest()
                .varint(2)
                .varint(0)
                .varint(1)
                .varint(2)
                .varint(3)
                .varint(0)
                .sealed(),
            "out of order",
        ),
        (
            "bytes after the last series",
            one_series(&all_symbols, &|s| s.varint(0).raw(&[0])).sealed(),
            "1 unexpected bytes",
        ),
        (
            "series cut short",
            one_series(&all_symbols, &|s| s.varint(2).chunk()).sealed(),
            "announces 2 chunks",
        ),
    ];
    for (what, section, needle) in cases {
        let e = ObjectIndex::parse("obj-7", &section).unwrap_err();
        let text = e.to_string();
        assert!(
            matches!(e, Malformed { .. } | Truncated { .. }),
            "{what}: {text}"
        );
        assert!(text.contains("obj-7"), "{what}: {text}");
        assert!(text.contains(needle), "{what}: {text}");
    }

    // Records must end exactly where the index starts.
    for wrong in [RECORDS_START + 9, RECORDS_START + 11, 0, u64::MAX] {
        let e = ObjectIndex::parse_at("k", &fine, wrong).unwrap_err();
        assert!(e.to_string().contains("index starts at"), "{e}");
    }
}

#[test]
fn every_truncation_and_extension_of_a_real_index_is_refused() {
    let built = build("t", "k", &small_series());
    let section = index_section(&built).to_vec();
    let body_len = section.len() - 4;
    for len in 0..body_len {
        // Cut, then sealed again so the parser reads the cut content.
        let mut cut = section[..len].to_vec();
        cut.extend_from_slice(&[0; 4]);
        reseal(&mut cut);
        assert!(ObjectIndex::parse("k", &cut).is_err(), "cut at {len}");
    }
    for extra in [&[0u8][..], &[1], &[0, 0, 0, 0]] {
        let mut longer = section[..body_len].to_vec();
        longer.extend_from_slice(extra);
        longer.extend_from_slice(&[0; 4]);
        reseal(&mut longer);
        assert!(ObjectIndex::parse("k", &longer).is_err());
    }
}

#[test]
fn read_index_finds_small_and_large_indexes() {
    let rt = runtime();
    rt.block_on(async {
        let store = MemStore::default();
        let small = build("t", "small", &small_series());
        store.insert("small", small.body.clone());
        let index = read_index(&store, "small").await.unwrap();
        assert_eq!(index, small.index);
        assert_eq!(store.gets(), 1, "a small index comes with the footer");

        // An index bigger than the first tail read needs a second read.
        let many: Vec<TestSeries> = (0..2000)
            .map(|i| TestSeries {
                labels: labels(&[("__name__", "m"), ("i", &format!("{i:05}"))]),
                chunks: vec![chunk(i, i + 1, 1, b"payload")],
            })
            .collect();
        let big = build("t", "big", &many);
        assert!(big.index_len > 16 * 1024);
        store.insert("big", big.body.clone());
        let before = store.gets();
        let index = read_index(&store, "big").await.unwrap();
        assert_eq!(index, big.index);
        assert_eq!(store.gets() - before, 2);

        let e = read_index(&store, "missing").await.unwrap_err();
        assert!(
            matches!(e, crate::FetchError::Store(StoreError::NotFound { .. })),
            "{e}"
        );
    });
}

#[test]
fn read_index_refuses_every_truncation_without_panicking() {
    let rt = runtime();
    rt.block_on(async {
        let built = build("t", "k", &small_series());
        let store = MemStore::default();
        for len in 0..built.body.len() {
            store.insert("k", built.body.slice(..len));
            assert!(
                read_index(&store, "k").await.is_err(),
                "prefix of {len} bytes"
            );
            // Cut from the front too: the footer survives but the offsets point wrong.
            store.insert("k", built.body.slice(len + 1..));
            assert!(
                read_index(&store, "k").await.is_err(),
                "suffix from {}",
                len + 1
            );
        }
    });
}

/// A parsed index that re-encodes to other bytes than it was parsed from would mean two
/// encodings of one index, or a parser accepting something the writer never writes.
fn assert_canonical(section: &[u8], index: &ObjectIndex) {
    let mut again = Vec::new();
    index.encode_section(&mut again);
    assert_eq!(again, section);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn parsing_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = ObjectIndex::parse("k", &bytes);
        let _ = Footer::parse("k", &bytes);
        let _ = Header::parse("k", &bytes);
        let r = ChunkRef {
            object: Arc::from("k"),
            offset: 0,
            len: bytes.len() as u32,
            min_time: 0,
            max_time: 0,
            encoding: 0,
        };
        prop_assert!(verify_chunk(&r, &bytes).is_err() || bytes.len() >= RECORD_OVERHEAD);
        // With a valid checksum (and magic and version) the parser reads the fields: still
        // no panic.
        let mut sealed = b"SIDX".to_vec();
        sealed.push(FORMAT_VERSION);
        sealed.extend_from_slice(&bytes);
        sealed.extend_from_slice(&[0; 4]);
        reseal(&mut sealed);
        if let Ok(index) = ObjectIndex::parse("k", &sealed) {
            assert_canonical(&sealed, &index);
        }
    }

    #[test]
    fn built_objects_round_trip(written in series_strategy()) {
        let built = build("tenant", "k", &written);
        assert_layout(&built);
        assert_matches_written(&built.index, &written);
        assert_canonical(index_section(&built), &built.index);
    }

    #[test]
    fn resealed_mutations_of_a_real_index_never_panic(
        written in series_strategy(),
        edits in prop::collection::vec(
            (any::<prop::sample::Index>(), any::<u8>(), 0u8..3),
            1..8,
        ),
    ) {
        let built = build("t", "k", &written);
        let mut section = index_section(&built).to_vec();
        section.truncate(section.len() - 4);
        for (at, byte, kind) in edits {
            if section.is_empty() {
                break;
            }
            let at = at.index(section.len());
            match kind {
                0 => section[at] = byte,
                1 => section.insert(at, byte),
                _ => {
                    section.remove(at);
                }
            }
        }
        section.extend_from_slice(&[0; 4]);
        reseal(&mut section);
        if let Ok(index) = ObjectIndex::parse_at("k", &section, built.index_offset) {
            assert_canonical(&section, &index);
            prop_assert!((1..index.len()).all(|i| index.fingerprint(i - 1) <= index.fingerprint(i)));
            for i in 0..index.len() {
                let _ = index.series(i);
            }
        }
    }

    #[test]
    fn arbitrary_objects_never_panic_the_read_path(
        bytes in prop::collection::vec(any::<u8>(), 0..600),
        footer_offset in any::<u64>(),
        footer_len in any::<u32>(),
    ) {
        let rt = runtime();
        rt.block_on(async {
            let store = Arc::new(MemStore::default());
            store.insert("junk", Bytes::from(bytes.clone()));
            // Garbage with a valid footer pointing anywhere.
            let mut framed = bytes.clone();
            let mut footer = [0u8; FOOTER_LEN];
            footer[0..8].copy_from_slice(&footer_offset.to_le_bytes());
            footer[8..12].copy_from_slice(&footer_len.to_le_bytes());
            footer[12] = FORMAT_VERSION;
            let crc = crc32fast::hash(&footer[..16]);
            footer[16..20].copy_from_slice(&crc.to_le_bytes());
            footer[20..24].copy_from_slice(b"SCFT");
            framed.extend_from_slice(&footer);
            store.insert("framed", Bytes::from(framed));
            for key in ["junk", "framed"] {
                let _ = read_index(&*store, key).await;
            }
            let fetcher = crate::ChunkFetcher::new(store.clone());
            let refs: Vec<ChunkRef> = (0..4u64)
                .map(|i| ChunkRef {
                    object: Arc::from("junk"),
                    offset: footer_offset % 700 + i * 13,
                    len: footer_len % 100,
                    min_time: 0,
                    max_time: 0,
                    encoding: 0,
                })
                .collect();
            let results = fetcher.fetch(&refs).await;
            assert_eq!(results.len(), 4);
        });
    }
}
