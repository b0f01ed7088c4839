//! The packed object format, version 2. `docs/storage-format.md` describes it byte by byte.
//!
//! ```text
//! header   "STRC" | version u8 | tenant_len u32 | tenant | crc32 u32
//! records  ( encoding u8 | payload_len u32 | payload | crc32 u32 )*   in the order of the index
//! index    "SIDX" | version u8 | tenant | base_time | symbols | series* | crc32 u32   (varints)
//! footer   index_offset u64 | index_len u32 | version u8 | 0 0 0 | crc32 u32 | "SCFT"
//! ```
//!
//! Fixed-size integers are little-endian; every crc32 is CRC-32/ISO-HDLC (the IEEE polynomial,
//! as computed by `crc32fast`) over the bytes of its section before it. The index section and
//! its in-memory form are in `object_index.rs`.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bytes::{BufMut, Bytes};
use strata_model::Labels;

use crate::error::FormatError;
use crate::object_index::{ChunkMeta, ObjectIndex};

/// The format version this build writes and reads.
pub const FORMAT_VERSION: u8 = 2;
/// First bytes of every object.
pub const HEADER_MAGIC: [u8; 4] = *b"STRC";
/// First bytes of the index section.
pub const INDEX_MAGIC: [u8; 4] = *b"SIDX";
/// Last bytes of every object.
pub const FOOTER_MAGIC: [u8; 4] = *b"SCFT";
/// Size of the footer: a reader fetches the last `FOOTER_LEN` bytes to find the index.
pub const FOOTER_LEN: usize = 24;
/// Bytes a chunk record adds around its payload: encoding (1), length (4), crc32 (4).
pub const RECORD_OVERHEAD: usize = 9;
/// Bytes of the header besides the tenant: magic (4), version (1), tenant length (4),
/// crc32 (4).
const HEADER_OVERHEAD: u64 = 4 + 1 + 4 + 4;

/// Length of the header of an object whose tenant ID is `tenant_len` bytes: where its first
/// chunk record starts.
pub(crate) fn header_len(tenant_len: usize) -> u64 {
    HEADER_OVERHEAD.saturating_add(tenant_len as u64)
}

/// One chunk to put into an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkToWrite {
    /// Timestamp of the first sample, milliseconds.
    pub min_time: i64,
    /// Timestamp of the last sample, milliseconds.
    pub max_time: i64,
    /// The chunk encoding (as `strata_chunk` numbers them).
    pub encoding: u8,
    /// The encoded chunk.
    pub data: Bytes,
}

/// Where a chunk lives. The record carries its own crc32, which [`verify_chunk`] checks.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ChunkRef {
    /// Key of the object holding the chunk.
    pub object: Arc<str>,
    /// Offset of the chunk's record in the object.
    pub offset: u64,
    /// Length of the whole record (payload plus [`RECORD_OVERHEAD`]).
    pub len: u32,
    pub min_time: i64,
    pub max_time: i64,
    pub encoding: u8,
}

impl ChunkRef {
    /// Offset one past the record's last byte.
    pub fn end(&self) -> u64 {
        self.offset.saturating_add(u64::from(self.len))
    }
}

/// A series inside an object: its fingerprint, digest, labels and chunks (refs point into
/// this object).
#[derive(Clone, Debug, PartialEq)]
pub struct ObjectSeries {
    pub fingerprint: u64,
    /// The value the writer supplied for the series (a crc32 of its chunks that replicas
    /// compare).
    pub digest: u32,
    pub labels: Labels,
    pub chunks: Vec<ChunkRef>,
}

/// Marks the end of a chain of series sharing a fingerprint.
const NO_SERIES: usize = usize::MAX;

struct PendingSeries {
    fingerprint: u64,
    labels: Labels,
    digest: u32,
    chunks: Vec<ChunkToWrite>,
    /// The series added before this one with the same fingerprint (a hash collision), or
    /// [`NO_SERIES`].
    next_same_fingerprint: usize,
}

/// Builds one object in memory. Series may be added in any order; [`ObjectBuilder::finish`]
/// sorts them by fingerprint (then labels) and lays out the chunk records in that order.
///
/// The builder holds the chunks (cheap `Bytes` clones) until `finish`;
/// [`ObjectBuilder::data_len`] tells how many bytes of records the object will have, so a
/// caller can split a big flush into several objects.
///
/// Adding the same series (same fingerprint and labels) again appends its chunks to the
/// earlier entry, and the digest of the later call replaces the earlier one. Two different
/// label sets with the same fingerprint (a hash collision) stay two entries;
/// [`ObjectIndex::find`] finds both.
///
/// Labels are stored as a Prometheus label set: a label with an empty name or value cannot
/// be represented and is dropped (an empty value means "absent" in PromQL anyway).
pub struct ObjectBuilder {
    tenant: String,
    series: Vec<PendingSeries>,
    /// Fingerprint -> the last series added with it (the head of its collision chain).
    by_fingerprint: HashMap<u64, usize>,
    data_len: usize,
}

impl ObjectBuilder {
    /// Starts an object of `tenant`.
    pub fn new(tenant: &str) -> Self {
        Self {
            tenant: tenant.to_string(),
            series: Vec::new(),
            by_fingerprint: HashMap::new(),
            data_len: 0,
        }
    }

    /// Adds `chunks` (kept in the order given) under the series.
    ///
    /// A chunk whose `max_time` is before its `min_time` is recorded with
    /// `max_time = min_time`.
    ///
    /// # Panics
    ///
    /// If a chunk is 4 GiB or larger, which no chunk encoding produces.
    pub fn add_series(
        &mut self,
        fingerprint: u64,
        labels: &Labels,
        digest: u32,
        chunks: &[ChunkToWrite],
    ) {
        let labels = normalize_labels(labels);
        let record_bytes: usize = chunks.iter().map(|c| record_len(c) as usize).sum();
        match self.find(fingerprint, &labels) {
            Some(i) => {
                let s = &mut self.series[i];
                s.digest = digest;
                s.chunks.extend_from_slice(chunks);
            }
            None => {
                let i = self.series.len();
                let next_same_fingerprint = self
                    .by_fingerprint
                    .insert(fingerprint, i)
                    .unwrap_or(NO_SERIES);
                self.series.push(PendingSeries {
                    fingerprint,
                    labels: labels.into_owned(),
                    digest,
                    chunks: chunks.to_vec(),
                    next_same_fingerprint,
                });
            }
        }
        self.data_len += record_bytes;
    }

    fn find(&self, fingerprint: u64, labels: &Labels) -> Option<usize> {
        let mut i = *self.by_fingerprint.get(&fingerprint)?;
        while i != NO_SERIES {
            if self.series[i].labels == *labels {
                return Some(i);
            }
            i = self.series[i].next_same_fingerprint;
        }
        None
    }

    /// Number of distinct series added so far.
    pub fn series_count(&self) -> usize {
        self.series.len()
    }

    /// Bytes of chunk records so far (to split big flushes into several objects).
    pub fn data_len(&self) -> usize {
        self.data_len
    }

    /// Encodes the object; `key` is the object key the refs will carry.
    ///
    /// # Panics
    ///
    /// If the index section would be 4 GiB or larger (hundreds of millions of series).
    pub fn finish(self, key: &str) -> BuiltObject {
        let ObjectBuilder {
            tenant,
            mut series,
            data_len,
            ..
        } = self;
        series.sort_unstable_by(|a, b| {
            a.fingerprint
                .cmp(&b.fingerprint)
                .then_with(|| a.labels.cmp(&b.labels))
        });

        // The symbol table, most used first so that the common strings get one-byte ids.
        let mut uses: HashMap<&str, u64> = HashMap::new();
        for s in &series {
            for l in &s.labels {
                *uses.entry(l.name.as_str()).or_default() += 1;
                *uses.entry(l.value.as_str()).or_default() += 1;
            }
        }
        let mut by_use: Vec<(&str, u64)> = uses.into_iter().collect();
        by_use.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        let ids: HashMap<&str, u32> = by_use
            .iter()
            .enumerate()
            .map(|(id, (s, _))| (*s, len_u32(id)))
            .collect();

        let mut offset = header_len(tenant.len());
        let mut entries = Vec::with_capacity(series.len());
        let mut pairs = Vec::new();
        let mut metas = Vec::new();
        for s in &series {
            pairs.extend(
                s.labels
                    .iter()
                    .map(|l| (ids[l.name.as_str()], ids[l.value.as_str()])),
            );
            for c in &s.chunks {
                let len = record_len(c);
                metas.push(ChunkMeta {
                    offset,
                    min_time: c.min_time,
                    max_time: c.max_time.max(c.min_time),
                    len,
                    encoding: c.encoding,
                });
                offset += u64::from(len);
            }
            entries.push((s.fingerprint, s.digest, pairs.len(), metas.len()));
        }
        let index = ObjectIndex::from_parts(
            key,
            &tenant,
            by_use.iter().map(|(s, _)| *s),
            entries,
            pairs,
            metas,
        );

        let mut body = Vec::with_capacity(
            header_len(tenant.len()) as usize + data_len + 64 * series.len() + FOOTER_LEN,
        );
        body.put_slice(&HEADER_MAGIC);
        body.put_u8(FORMAT_VERSION);
        body.put_u32_le(len_u32(tenant.len()));
        body.put_slice(tenant.as_bytes());
        let crc = crc32fast::hash(&body);
        body.put_u32_le(crc);
        for c in series.iter().flat_map(|s| &s.chunks) {
            let start = body.len();
            body.put_u8(c.encoding);
            body.put_u32_le(record_len(c) - RECORD_OVERHEAD as u32);
            body.put_slice(&c.data);
            let crc = crc32fast::hash(&body[start..]);
            body.put_u32_le(crc);
        }
        debug_assert_eq!(body.len() as u64, index.records_end());
        let index_start = body.len();
        index.encode_section(&mut body);
        let index_offset = index_start as u64;
        let index_len = len_u32(body.len() - index_start);
        body.put_slice(&encode_footer(index_offset, index_len));

        BuiltObject {
            key: key.to_string(),
            body: Bytes::from(body),
            index_offset,
            index_len,
            label_values: index.all_label_values(),
            time_range: index.time_range(),
            index,
        }
    }
}

/// `labels` as the format stores them: sorted by name, unique names, no empty name or value.
fn normalize_labels(labels: &Labels) -> Cow<'_, Labels> {
    let valid = labels
        .iter()
        .all(|l| !l.name.is_empty() && !l.value.is_empty())
        && labels.as_slice().windows(2).all(|w| w[0].name < w[1].name);
    if valid {
        Cow::Borrowed(labels)
    } else {
        Cow::Owned(Labels::from_pairs(
            labels
                .iter()
                .filter(|l| !l.name.is_empty())
                .map(|l| (l.name.clone(), l.value.clone())),
        ))
    }
}

/// Length of the record of `chunk`.
fn record_len(chunk: &ChunkToWrite) -> u32 {
    u32::try_from(chunk.data.len())
        .ok()
        .and_then(|n| n.checked_add(RECORD_OVERHEAD as u32))
        .expect("a chunk must be smaller than 4 GiB")
}

/// An encoded object, ready to put.
#[derive(Clone, Debug)]
pub struct BuiltObject {
    pub key: String,
    pub body: Bytes,
    /// Offset of the index section in `body`.
    pub index_offset: u64,
    /// Length of the index section.
    pub index_len: u32,
    /// Label name -> its distinct values among the object's series, both sorted (includes
    /// `__name__`).
    pub label_values: BTreeMap<String, Vec<String>>,
    /// Smallest `min_time` and largest `max_time` of the object's chunks; `None` when it
    /// has no chunks.
    pub time_range: Option<(i64, i64)>,
    /// The object's index in its parsed form (what [`ObjectIndex::parse`] gives back from
    /// the index section), with refs carrying `key`.
    pub index: ObjectIndex,
}

/// A length that the format stores in 32 bits.
pub(crate) fn len_u32(n: usize) -> u32 {
    u32::try_from(n).expect("a length in a chunk object must fit in 32 bits")
}

fn encode_footer(index_offset: u64, index_len: u32) -> [u8; FOOTER_LEN] {
    let mut footer = [0u8; FOOTER_LEN];
    footer[0..8].copy_from_slice(&index_offset.to_le_bytes());
    footer[8..12].copy_from_slice(&index_len.to_le_bytes());
    footer[12] = FORMAT_VERSION;
    // footer[13..16] reserved, zero.
    let crc = crc32fast::hash(&footer[0..16]);
    footer[16..20].copy_from_slice(&crc.to_le_bytes());
    footer[20..24].copy_from_slice(&FOOTER_MAGIC);
    footer
}

/// The footer of an object: where its index section is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Footer {
    pub index_offset: u64,
    pub index_len: u32,
}

impl Footer {
    /// Parses the last [`FOOTER_LEN`] bytes of object `key`. `tail` may be longer (then its
    /// last `FOOTER_LEN` bytes are used).
    pub fn parse(key: &str, tail: &[u8]) -> Result<Footer, FormatError> {
        let Some(start) = tail.len().checked_sub(FOOTER_LEN) else {
            return Err(FormatError::Truncated {
                object: key.to_string(),
                section: "footer",
                needed: FOOTER_LEN as u64,
                available: tail.len() as u64,
            });
        };
        let f = &tail[start..];
        if f[20..24] != FOOTER_MAGIC {
            return Err(FormatError::BadMagic {
                object: key.to_string(),
                section: "footer",
            });
        }
        let crc = crc32fast::hash(&f[0..16]);
        if crc != u32::from_le_bytes([f[16], f[17], f[18], f[19]]) {
            return Err(FormatError::FooterChecksum {
                object: key.to_string(),
            });
        }
        check_version(key, f[12])?;
        let mut offset = [0u8; 8];
        offset.copy_from_slice(&f[0..8]);
        Ok(Footer {
            index_offset: u64::from_le_bytes(offset),
            index_len: u32::from_le_bytes([f[8], f[9], f[10], f[11]]),
        })
    }
}

pub(crate) fn check_version(key: &str, version: u8) -> Result<(), FormatError> {
    if version == FORMAT_VERSION {
        Ok(())
    } else {
        Err(FormatError::UnsupportedVersion {
            object: key.to_string(),
            version,
            supported: FORMAT_VERSION,
        })
    }
}

/// The header of an object: its tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub tenant: String,
    /// Length of the header; the first chunk record starts here.
    pub len: usize,
}

impl Header {
    /// Parses the header at the start of object `key` (`bytes` may go on past it).
    pub fn parse(key: &str, bytes: &[u8]) -> Result<Header, FormatError> {
        let mut r = Reader::new(key, "header", bytes);
        if r.take(4)? != HEADER_MAGIC {
            return Err(FormatError::BadMagic {
                object: key.to_string(),
                section: "header",
            });
        }
        check_version(key, r.u8()?)?;
        let len = r.u32()? as usize;
        let tenant = r.utf8(len)?.to_string();
        let end = r.pos;
        let crc = r.u32()?;
        if crc != crc32fast::hash(&bytes[..end]) {
            return Err(FormatError::Malformed {
                object: key.to_string(),
                reason: "the header fails its crc32 check".to_string(),
            });
        }
        Ok(Header { tenant, len: r.pos })
    }
}

/// Checks a chunk record's bytes against its ref (length, encoding, the record's own
/// checksum) and returns the chunk's payload (the encoded chunk). Any changed byte of the
/// record is an error.
pub fn verify_chunk(r: &ChunkRef, record: &[u8]) -> Result<Bytes, FormatError> {
    let range = check_record(r, record)?;
    Ok(Bytes::copy_from_slice(&record[range]))
}

/// [`verify_chunk`] on shared bytes, slicing the payload without copying it.
pub(crate) fn verify_chunk_bytes(r: &ChunkRef, record: &Bytes) -> Result<Bytes, FormatError> {
    let range = check_record(r, record)?;
    Ok(record.slice(range))
}

/// Checks the record and returns where its payload is.
fn check_record(r: &ChunkRef, record: &[u8]) -> Result<std::ops::Range<usize>, FormatError> {
    let len = r.len as usize;
    if record.len() < len {
        return Err(FormatError::Truncated {
            object: r.object.to_string(),
            section: "chunk record",
            needed: u64::from(r.len),
            available: record.len() as u64,
        });
    }
    let checksum_error = || FormatError::Checksum {
        object: r.object.to_string(),
        offset: r.offset,
    };
    if record.len() != len || len < RECORD_OVERHEAD {
        return Err(checksum_error());
    }
    let (framed, stored) = record.split_at(len - 4);
    let stored = u32::from_le_bytes([stored[0], stored[1], stored[2], stored[3]]);
    let payload_len = u32::from_le_bytes([framed[1], framed[2], framed[3], framed[4]]);
    if crc32fast::hash(framed) != stored
        || framed[0] != r.encoding
        || payload_len as usize != len - RECORD_OVERHEAD
    {
        return Err(checksum_error());
    }
    Ok(5..len - 4)
}

/// Reads the fields of a section, failing with [`FormatError::Truncated`] instead of
/// running past its end and with [`FormatError::Malformed`] on values the format forbids.
pub(crate) struct Reader<'a> {
    key: &'a str,
    section: &'static str,
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(key: &'a str, section: &'static str, bytes: &'a [u8]) -> Self {
        Self {
            key,
            section,
            bytes,
            pos: 0,
        }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    pub(crate) fn malformed(&self, reason: String) -> FormatError {
        FormatError::Malformed {
            object: self.key.to_string(),
            reason,
        }
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], FormatError> {
        if self.remaining() < n {
            return Err(FormatError::Truncated {
                object: self.key.to_string(),
                section: self.section,
                needed: (self.pos as u64).saturating_add(n as u64),
                available: self.bytes.len() as u64,
            });
        }
        let out = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], FormatError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, FormatError> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u32(&mut self) -> Result<u32, FormatError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    /// `len` bytes of UTF-8.
    pub(crate) fn utf8(&mut self, len: usize) -> Result<&'a str, FormatError> {
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes).map_err(|_| {
            self.malformed(format!(
                "a string in the {} is not valid UTF-8",
                self.section
            ))
        })
    }

    /// An unsigned LEB128 varint of at most 64 bits, in its shortest form.
    pub(crate) fn varint(&mut self) -> Result<u64, FormatError> {
        let mut value = 0u64;
        let mut shift = 0u32;
        loop {
            let byte = self.u8()?;
            if shift == 63 && byte > 1 {
                return Err(self.malformed(format!(
                    "a varint in the {} overflows 64 bits",
                    self.section
                )));
            }
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                if byte == 0 && shift > 0 {
                    return Err(self.malformed(format!(
                        "a varint in the {} is not in its shortest form",
                        self.section
                    )));
                }
                return Ok(value);
            }
            shift += 7;
        }
    }

    /// A varint count of things that take at least `min_each` bytes each, refused when the
    /// rest of the section could not hold that many (so a corrupt count never makes the
    /// reader allocate much).
    pub(crate) fn count(&mut self, min_each: usize, what: &str) -> Result<usize, FormatError> {
        let n = self.varint()?;
        let fits = (self.remaining() / min_each.max(1)) as u64;
        if n > fits {
            return Err(self.malformed(format!(
                "the {} announces {n} {what} but only {} bytes remain",
                self.section,
                self.remaining()
            )));
        }
        Ok(n as usize)
    }

    /// A varint length and that many bytes of UTF-8.
    pub(crate) fn string(&mut self) -> Result<&'a str, FormatError> {
        let len = self.varint()?;
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        self.utf8(len)
    }
}

/// Appends `v` as an unsigned LEB128 varint.
pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub(crate) fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

pub(crate) fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}
