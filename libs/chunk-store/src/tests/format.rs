//! The object format: round trips, every corruption detected, no panics on any bytes.

use std::sync::Arc;

use proptest::prelude::*;

use super::*;
use crate::format::FORMAT_VERSION;
use crate::{
    read_index, verify_chunk, ChunkRef, Footer, FormatError, Header, ObjectIndex, FOOTER_LEN,
};

fn index_section(built: &BuiltObject) -> &[u8] {
    let start = built.index_offset as usize;
    &built.body[start..start + built.index_len as usize]
}

#[test]
fn build_then_parse_gives_the_same_series() {
    let written = small_series();
    let built = build("tenant-1", "tenant-1/chunks/19000/w-1", &written);
    assert_matches_written(&built.series, &written);
    assert!(built
        .series
        .windows(2)
        .all(|w| w[0].fingerprint < w[1].fingerprint));

    let index = ObjectIndex::parse(&built.key, index_section(&built)).unwrap();
    assert_eq!(&*index.key, built.key);
    assert_eq!(index.tenant, "tenant-1");
    assert_eq!(index.series, built.series);

    let header = Header::parse(&built.key, &built.body).unwrap();
    assert_eq!(header.tenant, "tenant-1");
    let footer = Footer::parse(&built.key, &built.body).unwrap();
    assert_eq!(footer.index_offset, built.index_offset);
    assert_eq!(footer.index_len, built.index_len);
    assert_eq!(
        built.body.len(),
        built.index_offset as usize + built.index_len as usize + FOOTER_LEN
    );

    // Every chunk verifies and gives back its payload; the first record starts after the
    // header.
    let mut payloads = Vec::new();
    for s in &written {
        let fp = s.labels.fingerprint();
        let found = index.get(fp).unwrap();
        assert_eq!(found.labels, s.labels);
        for (r, c) in found.chunks.iter().zip(&s.chunks) {
            assert!(r.offset >= header.len as u64);
            let record = &built.body[r.offset as usize..r.end() as usize];
            assert_eq!(verify_chunk(r, record).unwrap(), c.data);
            payloads.push(c.data.clone());
        }
    }
    assert_eq!(payloads.len(), 5);
    assert!(index.get(12345).is_none());
}

#[test]
fn data_len_and_series_count_grow_with_added_series() {
    let mut b = ObjectBuilder::new("t");
    assert_eq!((b.series_count(), b.data_len()), (0, 0));
    let l = labels(&[("a", "1")]);
    b.add_series(l.fingerprint(), &l, &[chunk(0, 1, 1, b"abcd")]);
    assert_eq!(b.series_count(), 1);
    assert_eq!(b.data_len(), 4 + crate::RECORD_OVERHEAD);
    // The same series again joins the first entry.
    b.add_series(l.fingerprint(), &l, &[chunk(2, 3, 1, b"ef")]);
    assert_eq!(b.series_count(), 1);
    assert_eq!(b.data_len(), 6 + 2 * crate::RECORD_OVERHEAD);
    let built = b.finish("k");
    assert_eq!(built.series.len(), 1);
    assert_eq!(built.series[0].chunks.len(), 2);
    assert_eq!(built.series[0].chunks[1].min_time, 2);
}

#[test]
fn empty_object_round_trips() {
    let built = ObjectBuilder::new("t").finish("t/chunks/1/w-0");
    let index = ObjectIndex::parse(&built.key, index_section(&built)).unwrap();
    assert!(index.series.is_empty());
    assert_eq!(index.tenant, "t");
    assert!(index.get(0).is_none());
}

#[test]
fn colliding_fingerprints_keep_both_label_sets() {
    let a = labels(&[("job", "a")]);
    let b = labels(&[("job", "b")]);
    let mut builder = ObjectBuilder::new("t");
    builder.add_series(7, &b, &[chunk(0, 1, 1, b"b")]);
    builder.add_series(7, &a, &[chunk(0, 1, 1, b"a")]);
    builder.add_series(3, &a, &[chunk(0, 1, 1, b"c")]);
    let built = builder.finish("k");
    let index = ObjectIndex::parse("k", index_section(&built)).unwrap();
    assert_eq!(index.series.len(), 3);
    let both = index.get_all(7);
    assert_eq!(both.len(), 2);
    assert_eq!(both[0].labels, a);
    assert_eq!(both[1].labels, b);
    assert_eq!(index.get(7).unwrap().labels, a);
    assert_eq!(index.get_all(3).len(), 1);
    assert!(index.get_all(5).is_empty());
}

#[test]
fn every_flipped_byte_of_every_record_is_detected() {
    let built = build("t", "t/chunks/1/w-1", &small_series());
    let refs: Vec<&ChunkRef> = built.series.iter().flat_map(|s| &s.chunks).collect();
    assert_eq!(refs.len(), 5);
    let mut checked = 0;
    for r in refs {
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
        let wrong = ChunkRef {
            crc32: r.crc32 ^ 1,
            ..r.clone()
        };
        assert!(verify_chunk(&wrong, record).is_err());
    }
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
            version: 2,
            supported: 1
        }
    );
    assert!(e.to_string().contains("version 2"), "{e}");

    let e = Footer::parse("obj", b"short").unwrap_err();
    assert!(matches!(e, FormatError::Truncated { .. }), "{e}");
    let e = ObjectIndex::parse("obj", &section[..section.len() - 1]).unwrap_err();
    assert!(
        matches!(e, FormatError::IndexChecksum { .. }),
        "{e}: a cut index fails its checksum"
    );
    let e = Header::parse("obj", b"NOPE\x01").unwrap_err();
    assert!(matches!(e, FormatError::BadMagic { .. }), "{e}");
    assert!(e.to_string().contains("obj"));
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

/// Re-encodes an index section's checksum after a change, so the parser looks past it.
fn reseal(section: &mut [u8]) {
    let body_len = section.len() - 4;
    let crc = crc32fast::hash(&section[..body_len]);
    section[body_len..].copy_from_slice(&crc.to_le_bytes());
}

#[test]
fn a_resealed_index_with_broken_rules_is_malformed() {
    // Series out of order, in a hand-made section.
    let mut section = Vec::new();
    section.extend_from_slice(b"SIDX");
    section.push(FORMAT_VERSION);
    section.extend_from_slice(&1u32.to_le_bytes());
    section.push(b't');
    section.extend_from_slice(&2u32.to_le_bytes());
    for fp in [9u64, 3] {
        section.extend_from_slice(&fp.to_le_bytes());
        section.extend_from_slice(&1u32.to_le_bytes());
        for s in ["a", "1"] {
            section.extend_from_slice(&(s.len() as u32).to_le_bytes());
            section.extend_from_slice(s.as_bytes());
        }
        section.extend_from_slice(&0u32.to_le_bytes());
    }
    section.extend_from_slice(&[0; 4]);
    reseal(&mut section);
    let e = ObjectIndex::parse("k", &section).unwrap_err();
    assert!(matches!(e, FormatError::Malformed { .. }), "{e}");
    assert!(e.to_string().contains("out of order"), "{e}");

    // A label with an empty value.
    let bad_labels = labels(&[("a", "1"), ("b", "2")]);
    let built = build(
        "t",
        "k",
        &[TestSeries {
            labels: bad_labels,
            chunks: vec![],
        }],
    );
    let mut section = index_section(&built).to_vec();
    // tenant "t" -> the value "2" of label b is the last label byte before the chunk count.
    let value_at = section.len() - 4 - 4 - 1;
    assert_eq!(section[value_at], b'2');
    let len_at = value_at - 4;
    section[len_at..len_at + 4].copy_from_slice(&0u32.to_le_bytes());
    section.remove(value_at);
    reseal(&mut section);
    let e = ObjectIndex::parse("k", &section).unwrap_err();
    assert!(matches!(e, FormatError::Malformed { .. }), "{e}");
}

#[test]
fn read_index_finds_small_and_large_indexes() {
    let rt = runtime();
    rt.block_on(async {
        let store = MemStore::default();
        let small = build("t", "small", &small_series());
        store.insert("small", small.body.clone());
        let index = read_index(&store, "small").await.unwrap();
        assert_eq!(index.series, small.series);
        assert_eq!(store.gets(), 1, "a small index comes with the footer");

        // An index bigger than the first tail read needs a second read.
        let many: Vec<TestSeries> = (0..400)
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
        assert_eq!(index.series, big.series);
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
            crc32: 0,
            min_time: 0,
            max_time: 0,
            encoding: 0,
        };
        prop_assert!(verify_chunk(&r, &bytes).is_err() || bytes.len() >= crate::RECORD_OVERHEAD);
        // With a valid checksum the parser reads the fields: still no panic.
        if bytes.len() >= 4 {
            let mut sealed = bytes.clone();
            reseal(&mut sealed);
            let _ = ObjectIndex::parse("k", &sealed);
        }
    }

    #[test]
    fn resealed_mutations_of_a_real_index_never_panic(
        written in series_strategy(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let built = build("t", "k", &written);
        let mut section = index_section(&built).to_vec();
        let body_len = section.len() - 4;
        for (at, byte) in edits {
            section[at.index(body_len)] = byte;
        }
        reseal(&mut section);
        if let Ok(index) = ObjectIndex::parse("k", &section) {
            prop_assert!(index.series.windows(2).all(|w| w[0].fingerprint <= w[1].fingerprint));
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
                    crc32: 0,
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
