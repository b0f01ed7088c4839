//! The packed object format, version 1. `docs/storage-format.md` describes it byte by byte.
//!
//! ```text
//! header   "STRC" | version u8 | tenant_len u32 | tenant | crc32 u32
//! records  ( encoding u8 | payload_len u32 | payload | crc32 u32 )*
//! index    "SIDX" | version u8 | tenant_len u32 | tenant | series_count u32 | series* | crc32 u32
//! footer   index_offset u64 | index_len u32 | version u8 | 0 0 0 | crc32 u32 | "SCFT"
//! ```
//!
//! All integers are little-endian; every crc32 is CRC-32/ISO-HDLC (the IEEE polynomial, as
//! computed by `crc32fast`) over the bytes of its section before it.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::{BufMut, Bytes};
use strata_model::{Label, Labels};

use crate::error::FormatError;

/// The format version this build writes and reads.
pub const FORMAT_VERSION: u8 = 1;
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

/// Bytes of one chunk entry in the index.
const INDEX_CHUNK_LEN: usize = 8 + 8 + 1 + 8 + 4 + 4;
/// Smallest series entry in the index: fingerprint, label count, chunk count.
const INDEX_SERIES_MIN_LEN: usize = 8 + 4 + 4;
/// Smallest label entry in the index: two lengths.
const INDEX_LABEL_MIN_LEN: usize = 4 + 4;

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

/// Where a chunk lives and how to check it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ChunkRef {
    /// Key of the object holding the chunk.
    pub object: Arc<str>,
    /// Offset of the chunk's record in the object.
    pub offset: u64,
    /// Length of the whole record (payload plus [`RECORD_OVERHEAD`]).
    pub len: u32,
    /// The record's crc32 (the same value as its last four bytes).
    pub crc32: u32,
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

/// A series inside an object: its fingerprint, labels and chunks (refs point into this object).
#[derive(Clone, Debug, PartialEq)]
pub struct ObjectSeries {
    pub fingerprint: u64,
    pub labels: Labels,
    pub chunks: Vec<ChunkRef>,
}

/// A chunk written into the builder's body, waiting for the object key.
struct PendingChunk {
    min_time: i64,
    max_time: i64,
    encoding: u8,
    offset: u64,
    len: u32,
    crc32: u32,
}

struct PendingSeries {
    fingerprint: u64,
    labels: Labels,
    chunks: Vec<PendingChunk>,
}

/// Builds one object in memory. Series may be added in any order; [`ObjectBuilder::finish`]
/// sorts them by fingerprint.
///
/// Chunk records are appended to the body as series are added, so [`ObjectBuilder::data_len`]
/// tells how big the object is getting. Adding the same series (same fingerprint and labels)
/// again appends its chunks to the earlier entry. Two different label sets with the same
/// fingerprint (a hash collision) stay two entries; [`ObjectIndex::get_all`] finds both.
pub struct ObjectBuilder {
    tenant: String,
    body: Vec<u8>,
    header_len: usize,
    series: Vec<PendingSeries>,
    by_fingerprint: HashMap<u64, Vec<usize>>,
}

impl ObjectBuilder {
    /// Starts an object of `tenant`.
    pub fn new(tenant: &str) -> Self {
        let mut body = Vec::with_capacity(64 * 1024);
        body.put_slice(&HEADER_MAGIC);
        body.put_u8(FORMAT_VERSION);
        put_str(&mut body, tenant);
        let crc = crc32fast::hash(&body);
        body.put_u32_le(crc);
        let header_len = body.len();
        Self {
            tenant: tenant.to_string(),
            body,
            header_len,
            series: Vec::new(),
            by_fingerprint: HashMap::new(),
        }
    }

    /// Appends `chunks` (in the order given) as records and notes them under the series.
    ///
    /// # Panics
    ///
    /// If a chunk is 4 GiB or larger, which no chunk encoding produces.
    pub fn add_series(&mut self, fingerprint: u64, labels: &Labels, chunks: &[ChunkToWrite]) {
        let slot = match self.by_fingerprint.get(&fingerprint).and_then(|slots| {
            slots
                .iter()
                .copied()
                .find(|&i| self.series[i].labels == *labels)
        }) {
            Some(i) => i,
            None => {
                self.series.push(PendingSeries {
                    fingerprint,
                    labels: labels.clone(),
                    chunks: Vec::with_capacity(chunks.len()),
                });
                let i = self.series.len() - 1;
                self.by_fingerprint.entry(fingerprint).or_default().push(i);
                i
            }
        };
        for chunk in chunks {
            let pending = self.put_record(chunk);
            self.series[slot].chunks.push(pending);
        }
    }

    fn put_record(&mut self, chunk: &ChunkToWrite) -> PendingChunk {
        let payload_len = u32::try_from(chunk.data.len())
            .ok()
            .filter(|n| n.checked_add(RECORD_OVERHEAD as u32).is_some())
            .expect("a chunk must be smaller than 4 GiB");
        let offset = self.body.len();
        self.body.put_u8(chunk.encoding);
        self.body.put_u32_le(payload_len);
        self.body.put_slice(&chunk.data);
        let crc = crc32fast::hash(&self.body[offset..]);
        self.body.put_u32_le(crc);
        PendingChunk {
            min_time: chunk.min_time,
            max_time: chunk.max_time,
            encoding: chunk.encoding,
            offset: offset as u64,
            len: payload_len + RECORD_OVERHEAD as u32,
            crc32: crc,
        }
    }

    /// Number of distinct series added so far.
    pub fn series_count(&self) -> usize {
        self.series.len()
    }

    /// Bytes of chunk records so far (to split big flushes into several objects).
    pub fn data_len(&self) -> usize {
        self.body.len() - self.header_len
    }

    /// Encodes the object; `key` is the object key the refs will carry.
    pub fn finish(self, key: &str) -> BuiltObject {
        let ObjectBuilder {
            tenant,
            mut body,
            mut series,
            ..
        } = self;
        series.sort_by(|a, b| {
            a.fingerprint
                .cmp(&b.fingerprint)
                .then_with(|| a.labels.cmp(&b.labels))
        });

        let index_start = body.len();
        body.put_slice(&INDEX_MAGIC);
        body.put_u8(FORMAT_VERSION);
        put_str(&mut body, &tenant);
        body.put_u32_le(len_u32(series.len()));
        for s in &series {
            body.put_u64_le(s.fingerprint);
            body.put_u32_le(len_u32(s.labels.len()));
            for label in &s.labels {
                put_str(&mut body, &label.name);
                put_str(&mut body, &label.value);
            }
            body.put_u32_le(len_u32(s.chunks.len()));
            for c in &s.chunks {
                body.put_i64_le(c.min_time);
                body.put_i64_le(c.max_time);
                body.put_u8(c.encoding);
                body.put_u64_le(c.offset);
                body.put_u32_le(c.len);
                body.put_u32_le(c.crc32);
            }
        }
        let crc = crc32fast::hash(&body[index_start..]);
        body.put_u32_le(crc);
        let index_offset = index_start as u64;
        let index_len = len_u32(body.len() - index_start);
        body.put_slice(&encode_footer(index_offset, index_len));

        let object: Arc<str> = Arc::from(key);
        let series = series
            .into_iter()
            .map(|s| ObjectSeries {
                fingerprint: s.fingerprint,
                labels: s.labels,
                chunks: s
                    .chunks
                    .into_iter()
                    .map(|c| ChunkRef {
                        object: object.clone(),
                        offset: c.offset,
                        len: c.len,
                        crc32: c.crc32,
                        min_time: c.min_time,
                        max_time: c.max_time,
                        encoding: c.encoding,
                    })
                    .collect(),
            })
            .collect();
        BuiltObject {
            key: key.to_string(),
            body: Bytes::from(body),
            index_offset,
            index_len,
            series,
        }
    }
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
    /// The object's series, sorted by fingerprint, with refs carrying `key`.
    pub series: Vec<ObjectSeries>,
}

/// A length that the format stores in 32 bits. Lengths of labels, label sets and series
/// lists beyond 4 GiB cannot occur in an object held in memory by a sane writer.
fn len_u32(n: usize) -> u32 {
    u32::try_from(n).expect("a length in a chunk object must fit in 32 bits")
}

fn put_str(buf: &mut Vec<u8>, s: &str) {
    buf.put_u32_le(len_u32(s.len()));
    buf.put_slice(s.as_bytes());
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
        if f[12] != FORMAT_VERSION {
            return Err(FormatError::UnsupportedVersion {
                object: key.to_string(),
                version: f[12],
                supported: FORMAT_VERSION,
            });
        }
        let mut offset = [0u8; 8];
        offset.copy_from_slice(&f[0..8]);
        Ok(Footer {
            index_offset: u64::from_le_bytes(offset),
            index_len: u32::from_le_bytes([f[8], f[9], f[10], f[11]]),
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
        let version = r.u8()?;
        if version != FORMAT_VERSION {
            return Err(FormatError::UnsupportedVersion {
                object: key.to_string(),
                version,
                supported: FORMAT_VERSION,
            });
        }
        let tenant = r.string()?;
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

/// The object's own index section, parsed (labels and chunk refs of every series, sorted by
/// fingerprint).
#[derive(Clone, Debug, PartialEq)]
pub struct ObjectIndex {
    pub key: Arc<str>,
    pub tenant: String,
    pub series: Vec<ObjectSeries>,
}

impl ObjectIndex {
    /// Parses and checks (checksum, order, bounds) the index section bytes
    /// `[index_offset, index_offset + index_len)` of object `key`.
    pub fn parse(key: &str, section: &[u8]) -> Result<ObjectIndex, FormatError> {
        Self::parse_bounded(key, section, None)
    }

    /// [`ObjectIndex::parse`], also checking that every chunk record lies before
    /// `index_offset` when it is known.
    pub(crate) fn parse_bounded(
        key: &str,
        section: &[u8],
        index_offset: Option<u64>,
    ) -> Result<ObjectIndex, FormatError> {
        let malformed = |reason: String| FormatError::Malformed {
            object: key.to_string(),
            reason,
        };
        let Some(body_len) = section.len().checked_sub(4) else {
            return Err(FormatError::Truncated {
                object: key.to_string(),
                section: "index",
                needed: 4 + 4 + 1,
                available: section.len() as u64,
            });
        };
        let (body, crc) = section.split_at(body_len);
        if body.len() >= 4 && body[..4] != INDEX_MAGIC {
            return Err(FormatError::BadMagic {
                object: key.to_string(),
                section: "index",
            });
        }
        if crc32fast::hash(body) != u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]) {
            return Err(FormatError::IndexChecksum {
                object: key.to_string(),
            });
        }

        let mut r = Reader::new(key, "index", body);
        if r.take(4)? != INDEX_MAGIC {
            return Err(FormatError::BadMagic {
                object: key.to_string(),
                section: "index",
            });
        }
        let version = r.u8()?;
        if version != FORMAT_VERSION {
            return Err(FormatError::UnsupportedVersion {
                object: key.to_string(),
                version,
                supported: FORMAT_VERSION,
            });
        }
        let tenant = r.string()?;
        let object: Arc<str> = Arc::from(key);
        let series_count = r.u32()? as usize;
        let mut series: Vec<ObjectSeries> =
            Vec::with_capacity(series_count.min(r.remaining() / INDEX_SERIES_MIN_LEN));
        for _ in 0..series_count {
            let fingerprint = r.u64()?;
            let label_count = r.u32()? as usize;
            let mut labels: Vec<Label> =
                Vec::with_capacity(label_count.min(r.remaining() / INDEX_LABEL_MIN_LEN));
            for _ in 0..label_count {
                let name = r.string()?;
                let value = r.string()?;
                if name.is_empty() || value.is_empty() {
                    return Err(malformed(format!(
                        "series {fingerprint:016x} has a label with an empty name or value"
                    )));
                }
                if labels.last().is_some_and(|prev| prev.name >= name) {
                    return Err(malformed(format!(
                        "labels of series {fingerprint:016x} are not sorted by name or repeat \
                         a name"
                    )));
                }
                labels.push(Label { name, value });
            }
            let labels = Labels::from_sorted(labels);
            if let Some(prev) = series.last() {
                let ordered = prev.fingerprint < fingerprint
                    || (prev.fingerprint == fingerprint && prev.labels < labels);
                if !ordered {
                    return Err(malformed(format!(
                        "series {fingerprint:016x} is out of order (series must be sorted by \
                         fingerprint, then labels, without repeats)"
                    )));
                }
            }
            let chunk_count = r.u32()? as usize;
            let mut chunks = Vec::with_capacity(chunk_count.min(r.remaining() / INDEX_CHUNK_LEN));
            for _ in 0..chunk_count {
                let min_time = r.i64()?;
                let max_time = r.i64()?;
                let encoding = r.u8()?;
                let offset = r.u64()?;
                let len = r.u32()?;
                let crc32 = r.u32()?;
                if (len as usize) < RECORD_OVERHEAD {
                    return Err(malformed(format!(
                        "chunk at offset {offset} of series {fingerprint:016x} has length \
                         {len}, shorter than a record's {RECORD_OVERHEAD} bytes of framing"
                    )));
                }
                let end = offset.checked_add(u64::from(len));
                let within = match (end, index_offset) {
                    (None, _) => false,
                    (Some(end), Some(limit)) => end <= limit,
                    (Some(_), None) => true,
                };
                if !within {
                    return Err(malformed(format!(
                        "chunk at offset {offset} (length {len}) of series {fingerprint:016x} \
                         lies past the start of the index"
                    )));
                }
                chunks.push(ChunkRef {
                    object: object.clone(),
                    offset,
                    len,
                    crc32,
                    min_time,
                    max_time,
                    encoding,
                });
            }
            series.push(ObjectSeries {
                fingerprint,
                labels,
                chunks,
            });
        }
        if r.remaining() != 0 {
            return Err(malformed(format!(
                "{} unexpected bytes after the last series of the index",
                r.remaining()
            )));
        }
        Ok(ObjectIndex {
            key: object,
            tenant,
            series,
        })
    }

    /// The series with this fingerprint (binary search). When a hash collision put several
    /// label sets under one fingerprint, the first of them; see [`ObjectIndex::get_all`].
    pub fn get(&self, fingerprint: u64) -> Option<&ObjectSeries> {
        self.get_all(fingerprint).first()
    }

    /// Every series with this fingerprint (one, except after a hash collision).
    pub fn get_all(&self, fingerprint: u64) -> &[ObjectSeries] {
        let start = self.series.partition_point(|s| s.fingerprint < fingerprint);
        let end = start + self.series[start..].partition_point(|s| s.fingerprint == fingerprint);
        &self.series[start..end]
    }
}

/// Checks a chunk record's bytes against its ref (length, checksum) and returns the chunk's
/// payload (the encoded chunk). Any changed byte of the record is an error.
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
    let computed = crc32fast::hash(framed);
    let payload_len = u32::from_le_bytes([framed[1], framed[2], framed[3], framed[4]]);
    if computed != stored
        || computed != r.crc32
        || framed[0] != r.encoding
        || payload_len as usize != len - RECORD_OVERHEAD
    {
        return Err(checksum_error());
    }
    Ok(5..len - 4)
}

/// Reads the little-endian fields of a section, failing with [`FormatError::Truncated`]
/// instead of running past its end.
struct Reader<'a> {
    key: &'a str,
    section: &'static str,
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(key: &'a str, section: &'static str, bytes: &'a [u8]) -> Self {
        Self {
            key,
            section,
            bytes,
            pos: 0,
        }
    }

    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], FormatError> {
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

    fn u8(&mut self) -> Result<u8, FormatError> {
        Ok(self.array::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32, FormatError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, FormatError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn i64(&mut self) -> Result<i64, FormatError> {
        Ok(i64::from_le_bytes(self.array()?))
    }

    fn string(&mut self) -> Result<String, FormatError> {
        let len = self.u32()? as usize;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| FormatError::Malformed {
            object: self.key.to_string(),
            reason: format!("a string in the {} is not valid UTF-8", self.section),
        })
    }
}
