//! The index section of an object (format version 2) and its compact in-memory form.
//!
//! ```text
//! "SIDX" | version u8 | tenant (varint len, bytes) | base_time (zigzag varint)
//! | symbol_count varint | (len varint, bytes)*
//! | series_count varint | series* | crc32 u32
//! series: fingerprint delta varint | digest u32 | label_count varint | (name id, value id)*
//!         | chunk_count varint | (record_len varint | time varint | duration varint | encoding u8)*
//! ```
//!
//! `docs/storage-format.md` has the details. Strings live once in a symbol table; series
//! refer to them by id. Chunk offsets are not stored: records are laid out in index order
//! right after the header, so each offset is the previous one plus the previous length.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;

use bytes::BufMut;
use strata_model::{Label, Labels, MatchOp, Matcher};

use crate::error::FormatError;
use crate::format::{
    check_version, header_len, len_u32, put_varint, unzigzag, zigzag, ChunkRef, ObjectSeries,
    Reader, FORMAT_VERSION, INDEX_MAGIC, RECORD_OVERHEAD,
};

/// Smallest encoded symbol: a length byte and one byte of text.
const MIN_SYMBOL_LEN: usize = 2;
/// Smallest encoded series: fingerprint delta (1), digest (4), label count (1), chunk
/// count (1).
const MIN_SERIES_LEN: usize = 1 + 4 + 1 + 1;
/// Smallest encoded label: two one-byte symbol ids.
const MIN_LABEL_LEN: usize = 2;
/// Smallest encoded chunk: length, time, duration (one byte each) and encoding.
const MIN_CHUNK_LEN: usize = 4;

/// The strings of an object's labels, each stored once, with a lookup by string.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Symbols {
    /// Every symbol's text, back to back, in id order.
    text: Box<str>,
    /// `ends[id]` is where symbol `id` ends in `text` (it starts where `id - 1` ends).
    ends: Box<[u32]>,
    /// Symbol ids in string order.
    by_string: Box<[u32]>,
    /// `rank[id]`: the position of symbol `id` in string order (comparing ranks compares
    /// the strings).
    rank: Box<[u32]>,
}

impl Symbols {
    /// The symbols `strings` (ids in the order given), or the first string repeated.
    fn new<'s>(strings: impl IntoIterator<Item = &'s str>) -> Result<Symbols, String> {
        let mut text = String::new();
        let mut ends = Vec::new();
        for s in strings {
            text.push_str(s);
            ends.push(
                u32::try_from(text.len())
                    .map_err(|_| "the symbol table is 4 GiB or larger".to_string())?,
            );
        }
        let mut symbols = Symbols {
            text: text.into_boxed_str(),
            ends: ends.into_boxed_slice(),
            by_string: Box::new([]),
            rank: Box::new([]),
        };
        let mut by_string: Vec<u32> = (0..len_u32(symbols.ends.len())).collect();
        by_string.sort_unstable_by(|&a, &b| symbols.get(a).cmp(symbols.get(b)));
        if let Some(w) = by_string
            .windows(2)
            .find(|w| symbols.get(w[0]) == symbols.get(w[1]))
        {
            return Err(format!(
                "the symbol table holds {:?} twice",
                symbols.get(w[0])
            ));
        }
        let mut rank = vec![0u32; by_string.len()];
        for (r, &id) in by_string.iter().enumerate() {
            rank[id as usize] = r as u32;
        }
        symbols.by_string = by_string.into_boxed_slice();
        symbols.rank = rank.into_boxed_slice();
        Ok(symbols)
    }

    fn len(&self) -> usize {
        self.ends.len()
    }

    fn get(&self, id: u32) -> &str {
        let id = id as usize;
        let start = if id == 0 {
            0
        } else {
            self.ends[id - 1] as usize
        };
        &self.text[start..self.ends[id] as usize]
    }

    /// The id of `s`, if it is a symbol.
    fn lookup(&self, s: &str) -> Option<u32> {
        self.by_string
            .binary_search_by(|&id| self.get(id).cmp(s))
            .ok()
            .map(|i| self.by_string[i])
    }

    /// Compares two label lists as `Labels` compare (by name, then value, then length).
    fn cmp_labels(&self, a: &[(u32, u32)], b: &[(u32, u32)]) -> Ordering {
        let key = |&(n, v): &(u32, u32)| (self.rank[n as usize], self.rank[v as usize]);
        a.iter().map(key).cmp(b.iter().map(key))
    }

    fn heap_size(&self) -> usize {
        self.text.len() + 4 * (self.ends.len() + self.by_string.len() + self.rank.len())
    }
}

/// One series of the index: its labels and chunks are the ranges of the flat lists that end
/// where the next series' start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct SeriesEntry {
    fingerprint: u64,
    digest: u32,
    labels_end: u32,
    chunks_end: u32,
}

/// A chunk of the index, with its absolute offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ChunkMeta {
    pub(crate) offset: u64,
    pub(crate) min_time: i64,
    pub(crate) max_time: i64,
    pub(crate) len: u32,
    pub(crate) encoding: u8,
}

/// An object's index section, parsed: every series (sorted by fingerprint, then labels)
/// with its digest, labels and chunk refs, in a compact form. Series are addressed by
/// position (`0..len()`); the label matchers of a query can be evaluated here
/// ([`ObjectIndex::select`]).
///
/// Methods taking a series position panic when it is not below [`ObjectIndex::len`].
#[derive(Clone, Debug, PartialEq)]
pub struct ObjectIndex {
    key: Arc<str>,
    tenant: Box<str>,
    symbols: Symbols,
    series: Box<[SeriesEntry]>,
    /// Label pairs of all series, as (name id, value id), each series' sorted by name.
    labels: Box<[(u32, u32)]>,
    chunks: Box<[ChunkMeta]>,
    time_range: Option<(i64, i64)>,
    /// Where the last chunk record ends (where the index section must start).
    records_end: u64,
}

impl ObjectIndex {
    /// Assembles an index from the builder's sorted series: `entries` are (fingerprint,
    /// digest, end of its labels in `labels`, end of its chunks in `chunks`).
    pub(crate) fn from_parts<'s>(
        key: &str,
        tenant: &str,
        symbols: impl IntoIterator<Item = &'s str>,
        entries: Vec<(u64, u32, usize, usize)>,
        labels: Vec<(u32, u32)>,
        chunks: Vec<ChunkMeta>,
    ) -> ObjectIndex {
        let symbols = Symbols::new(symbols).expect("the builder's symbols are distinct");
        let series = entries
            .into_iter()
            .map(
                |(fingerprint, digest, labels_end, chunks_end)| SeriesEntry {
                    fingerprint,
                    digest,
                    labels_end: len_u32(labels_end),
                    chunks_end: len_u32(chunks_end),
                },
            )
            .collect();
        let records_end = chunks
            .last()
            .map_or(header_len(tenant.len()), |c| c.offset + u64::from(c.len));
        ObjectIndex {
            key: Arc::from(key),
            tenant: tenant.into(),
            symbols,
            series,
            labels: labels.into_boxed_slice(),
            time_range: time_range(&chunks),
            chunks: chunks.into_boxed_slice(),
            records_end,
        }
    }

    /// Appends the index section (ending with its crc32) to `out`.
    pub(crate) fn encode_section(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.put_slice(&INDEX_MAGIC);
        out.put_u8(FORMAT_VERSION);
        put_varint(out, self.tenant.len() as u64);
        out.put_slice(self.tenant.as_bytes());
        let base = self.time_range.map_or(0, |(min, _)| min);
        put_varint(out, zigzag(base));
        put_varint(out, self.symbols.len() as u64);
        for id in 0..len_u32(self.symbols.len()) {
            let s = self.symbols.get(id);
            put_varint(out, s.len() as u64);
            out.put_slice(s.as_bytes());
        }
        put_varint(out, self.series.len() as u64);
        let mut prev_fingerprint = 0;
        for (i, s) in self.series.iter().enumerate() {
            put_varint(out, s.fingerprint - prev_fingerprint);
            prev_fingerprint = s.fingerprint;
            out.put_u32_le(s.digest);
            let labels = self.label_pairs(i);
            put_varint(out, labels.len() as u64);
            for &(name, value) in labels {
                put_varint(out, u64::from(name));
                put_varint(out, u64::from(value));
            }
            let chunks = self.chunk_metas(i);
            put_varint(out, chunks.len() as u64);
            let mut prev_max = None;
            for c in chunks {
                put_varint(out, u64::from(c.len));
                match prev_max {
                    None => put_varint(out, c.min_time.wrapping_sub(base) as u64),
                    Some(prev) => put_varint(out, zigzag(c.min_time.wrapping_sub(prev))),
                }
                put_varint(out, c.max_time.wrapping_sub(c.min_time) as u64);
                out.put_u8(c.encoding);
                prev_max = Some(c.max_time);
            }
        }
        let crc = crc32fast::hash(&out[start..]);
        out.put_u32_le(crc);
    }

    /// Parses and checks (checksum, order, bounds) the index section bytes
    /// `[index_offset, index_offset + index_len)` of object `key`.
    ///
    /// Without the index offset the parser checks that the chunk records' extents do not
    /// overflow; [`ObjectIndex::parse_at`] also checks that they end exactly where the index
    /// starts.
    pub fn parse(key: &str, section: &[u8]) -> Result<ObjectIndex, FormatError> {
        parse_section(key, section, None)
    }

    /// [`ObjectIndex::parse`] of a section read from `index_offset` (as the footer or the
    /// long-term index says), also checking that the chunk records end exactly there.
    pub fn parse_at(
        key: &str,
        section: &[u8],
        index_offset: u64,
    ) -> Result<ObjectIndex, FormatError> {
        parse_section(key, section, Some(index_offset))
    }

    /// The key of the object; every [`ChunkRef`] handed out shares it.
    pub fn key(&self) -> &Arc<str> {
        &self.key
    }

    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// Number of series.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// Number of chunks of all series.
    pub fn chunk_count(&self) -> usize {
        self.chunks.len()
    }

    /// Smallest `min_time` and largest `max_time` of the object's chunks; `None` when it has
    /// no chunks.
    pub fn time_range(&self) -> Option<(i64, i64)> {
        self.time_range
    }

    /// Offset where the last chunk record ends, which is where the index section starts.
    pub fn records_end(&self) -> u64 {
        self.records_end
    }

    /// Positions of the series with this fingerprint (binary search): one, none, or several
    /// after a hash collision (then sorted by labels).
    pub fn find(&self, fingerprint: u64) -> Range<usize> {
        let start = self.series.partition_point(|s| s.fingerprint < fingerprint);
        let end = start + self.series[start..].partition_point(|s| s.fingerprint == fingerprint);
        start..end
    }

    pub fn fingerprint(&self, i: usize) -> u64 {
        self.series[i].fingerprint
    }

    /// The digest the writer supplied for series `i`.
    pub fn digest(&self, i: usize) -> u32 {
        self.series[i].digest
    }

    fn label_pairs(&self, i: usize) -> &[(u32, u32)] {
        let start = if i == 0 {
            0
        } else {
            self.series[i - 1].labels_end as usize
        };
        &self.labels[start..self.series[i].labels_end as usize]
    }

    fn chunk_metas(&self, i: usize) -> &[ChunkMeta] {
        let start = if i == 0 {
            0
        } else {
            self.series[i - 1].chunks_end as usize
        };
        &self.chunks[start..self.series[i].chunks_end as usize]
    }

    /// The labels of series `i`.
    pub fn labels(&self, i: usize) -> Labels {
        Labels::from_sorted(
            self.label_pairs(i)
                .iter()
                .map(|&(n, v)| Label::new(self.symbols.get(n), self.symbols.get(v)))
                .collect(),
        )
    }

    /// The value of label `name` of series `i`, if it has the label.
    pub fn label_value(&self, i: usize, name: &str) -> Option<&str> {
        let name = self.symbols.lookup(name)?;
        self.value_id(i, name).map(|v| self.symbols.get(v))
    }

    fn value_id(&self, i: usize, name: u32) -> Option<u32> {
        self.label_pairs(i)
            .iter()
            .find(|&&(n, _)| n == name)
            .map(|&(_, v)| v)
    }

    fn chunk_ref(&self, c: &ChunkMeta) -> ChunkRef {
        ChunkRef {
            object: self.key.clone(),
            offset: c.offset,
            len: c.len,
            min_time: c.min_time,
            max_time: c.max_time,
            encoding: c.encoding,
        }
    }

    /// Refs to the chunks of series `i`, in the order they were written.
    pub fn chunks(&self, i: usize) -> Vec<ChunkRef> {
        self.chunk_metas(i)
            .iter()
            .map(|c| self.chunk_ref(c))
            .collect()
    }

    /// Refs to the chunks of series `i` with a sample time range overlapping
    /// `[from_ms, to_ms]` (both ends inclusive; none when `from_ms > to_ms`).
    pub fn chunks_overlapping(&self, i: usize, from_ms: i64, to_ms: i64) -> Vec<ChunkRef> {
        if from_ms > to_ms {
            return Vec::new();
        }
        self.chunk_metas(i)
            .iter()
            .filter(|c| c.min_time <= to_ms && c.max_time >= from_ms)
            .map(|c| self.chunk_ref(c))
            .collect()
    }

    /// Series `i` in full.
    pub fn series(&self, i: usize) -> ObjectSeries {
        ObjectSeries {
            fingerprint: self.fingerprint(i),
            digest: self.digest(i),
            labels: self.labels(i),
            chunks: self.chunks(i),
        }
    }

    /// Positions (ascending) of the series that match all `matchers`, with PromQL
    /// semantics: a series without a label has the empty string as its value. No matchers
    /// select every series.
    ///
    /// Each matcher's label name is looked up once, and the matcher runs at most once per
    /// distinct value (not once per series), so a regex over a 50k-series object costs as
    /// many regex runs as the label has values.
    pub fn select(&self, matchers: &[Matcher]) -> Vec<usize> {
        // Equality first: it usually selects few series, and later matchers then only look
        // at those.
        let mut ordered: Vec<&Matcher> = matchers.iter().collect();
        ordered.sort_by_key(|m| match m.op {
            MatchOp::Equal => 0,
            MatchOp::RegexMatch => 1,
            MatchOp::NotEqual => 2,
            MatchOp::RegexNoMatch => 3,
        });
        let mut selected: Option<Vec<usize>> = None;
        for m in ordered {
            let matches_absent = m.matches("");
            let Some(name) = self.symbols.lookup(&m.name) else {
                // No series has the label: all see "".
                if matches_absent {
                    continue;
                }
                return Vec::new();
            };
            let mut test = ValueTest::new(self, m);
            let mut keep = |i: usize| match self.value_id(i, name) {
                None => matches_absent,
                Some(v) => test.matches(self, v),
            };
            let next: Vec<usize> = match selected {
                None => (0..self.len()).filter(|&i| keep(i)).collect(),
                Some(mut s) => {
                    s.retain(|&i| keep(i));
                    s
                }
            };
            if next.is_empty() {
                return next;
            }
            selected = Some(next);
        }
        selected.unwrap_or_else(|| (0..self.len()).collect())
    }

    /// The label names of the object's series, sorted, each once.
    pub fn label_names(&self) -> Vec<&str> {
        let mut is_name = vec![false; self.symbols.len()];
        for &(n, _) in self.labels.iter() {
            is_name[n as usize] = true;
        }
        self.in_string_order(&is_name)
    }

    /// The values label `name` has among the object's series, sorted, each once (never the
    /// empty string).
    pub fn label_values(&self, name: &str) -> Vec<&str> {
        let Some(name) = self.symbols.lookup(name) else {
            return Vec::new();
        };
        let mut is_value = vec![false; self.symbols.len()];
        for &(n, v) in self.labels.iter() {
            if n == name {
                is_value[v as usize] = true;
            }
        }
        self.in_string_order(&is_value)
    }

    /// Every label name with its values (as [`ObjectIndex::label_names`] and
    /// [`ObjectIndex::label_values`] give them), in one pass.
    pub fn all_label_values(&self) -> BTreeMap<String, Vec<String>> {
        let mut pairs: Vec<(u32, u32)> = self
            .labels
            .iter()
            .map(|&(n, v)| (self.symbols.rank[n as usize], self.symbols.rank[v as usize]))
            .collect();
        pairs.sort_unstable();
        pairs.dedup();
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for group in pairs.chunk_by(|a, b| a.0 == b.0) {
            let name = self
                .symbols
                .get(self.symbols.by_string[group[0].0 as usize]);
            let values = group
                .iter()
                .map(|&(_, v)| {
                    self.symbols
                        .get(self.symbols.by_string[v as usize])
                        .to_string()
                })
                .collect();
            out.insert(name.to_string(), values);
        }
        out
    }

    /// The symbols marked in `marks` (by id), in string order.
    fn in_string_order(&self, marks: &[bool]) -> Vec<&str> {
        self.symbols
            .by_string
            .iter()
            .filter(|&&id| marks[id as usize])
            .map(|&id| self.symbols.get(id))
            .collect()
    }

    /// Approximate heap bytes held by this index (for cache accounting).
    pub fn heap_size(&self) -> usize {
        self.key.len()
            + self.tenant.len()
            + self.symbols.heap_size()
            + std::mem::size_of_val(&*self.series)
            + std::mem::size_of_val(&*self.labels)
            + std::mem::size_of_val(&*self.chunks)
    }
}

/// A matcher applied to value symbols, remembering each symbol's answer.
enum ValueTest<'m> {
    /// `=` / `!=`: the value's symbol id, resolved once (`None`: no series has the value).
    Id { id: Option<u32>, equal: bool },
    /// A regex: per symbol id, 0 = not asked yet, 1 = matches, 2 = does not.
    Cached {
        matcher: &'m Matcher,
        answers: Vec<u8>,
    },
}

impl<'m> ValueTest<'m> {
    fn new(index: &ObjectIndex, matcher: &'m Matcher) -> Self {
        match matcher.op {
            MatchOp::Equal | MatchOp::NotEqual => ValueTest::Id {
                id: index.symbols.lookup(&matcher.value),
                equal: matcher.op == MatchOp::Equal,
            },
            MatchOp::RegexMatch | MatchOp::RegexNoMatch => ValueTest::Cached {
                matcher,
                answers: vec![0; index.symbols.len()],
            },
        }
    }

    fn matches(&mut self, index: &ObjectIndex, value: u32) -> bool {
        match self {
            ValueTest::Id { id, equal } => (*id == Some(value)) == *equal,
            ValueTest::Cached { matcher, answers } => match answers[value as usize] {
                1 => true,
                2 => false,
                _ => {
                    let yes = matcher.matches(index.symbols.get(value));
                    answers[value as usize] = if yes { 1 } else { 2 };
                    yes
                }
            },
        }
    }
}

fn time_range(chunks: &[ChunkMeta]) -> Option<(i64, i64)> {
    let min = chunks.iter().map(|c| c.min_time).min()?;
    let max = chunks.iter().map(|c| c.max_time).max()?;
    Some((min, max))
}

fn parse_section(
    key: &str,
    section: &[u8],
    index_offset: Option<u64>,
) -> Result<ObjectIndex, FormatError> {
    let Some(body_len) = section.len().checked_sub(4) else {
        return Err(FormatError::Truncated {
            object: key.to_string(),
            section: "index",
            needed: 4 + 1 + 4,
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
    check_version(key, r.u8()?)?;
    let tenant = r.string()?;
    let base = unzigzag(r.varint()?);

    let symbol_count = r.count(MIN_SYMBOL_LEN, "symbols")?;
    let mut strings = Vec::with_capacity(symbol_count);
    for id in 0..symbol_count {
        let s = r.string()?;
        if s.is_empty() {
            return Err(r.malformed(format!("symbol {id} is the empty string")));
        }
        strings.push(s);
    }
    let symbols = Symbols::new(strings).map_err(|reason| r.malformed(reason))?;
    let symbol_id = |r: &mut Reader<'_>| -> Result<u32, FormatError> {
        let id = r.varint()?;
        if id >= symbol_count as u64 {
            return Err(r.malformed(format!(
                "symbol id {id} is out of range (the table has {symbol_count} symbols)"
            )));
        }
        Ok(id as u32)
    };

    let series_count = r.count(MIN_SERIES_LEN, "series")?;
    let mut series = Vec::with_capacity(series_count);
    let mut labels: Vec<(u32, u32)> = Vec::new();
    let mut chunks: Vec<ChunkMeta> = Vec::new();
    let mut used = vec![false; symbol_count];
    let mut offset = header_len(tenant.len());
    let mut prev_labels = 0..0;
    let mut prev_fingerprint = 0u64;
    for i in 0..series_count {
        let delta = r.varint()?;
        let fingerprint = prev_fingerprint.checked_add(delta).ok_or_else(|| {
            r.malformed(format!(
                "the fingerprint of series {i} overflows 64 bits (deltas from \
                 {prev_fingerprint:016x})"
            ))
        })?;
        let digest = r.u32()?;

        let label_count = r.count(MIN_LABEL_LEN, "labels")?;
        let start = labels.len();
        for _ in 0..label_count {
            let name = symbol_id(&mut r)?;
            let value = symbol_id(&mut r)?;
            if let Some(&(prev, _)) = labels[start..].last() {
                if symbols.rank[name as usize] <= symbols.rank[prev as usize] {
                    return Err(r.malformed(format!(
                        "labels of series {fingerprint:016x} are not sorted by name or repeat \
                         a name"
                    )));
                }
            }
            used[name as usize] = true;
            used[value as usize] = true;
            labels.push((name, value));
        }
        let this_labels = start..labels.len();
        if i > 0
            && delta == 0
            && symbols.cmp_labels(&labels[prev_labels.clone()], &labels[this_labels.clone()])
                != Ordering::Less
        {
            return Err(r.malformed(format!(
                "series {fingerprint:016x} is out of order (series must be sorted by \
                 fingerprint, then labels, without repeats)"
            )));
        }

        let chunk_count = r.count(MIN_CHUNK_LEN, "chunks")?;
        let mut prev_max: Option<i64> = None;
        for n in 0..chunk_count {
            let len = r.varint()?;
            let len = u32::try_from(len)
                .ok()
                .filter(|&l| l as usize >= RECORD_OVERHEAD)
                .ok_or_else(|| {
                    r.malformed(format!(
                        "chunk {n} of series {fingerprint:016x} has record length {len}, not \
                         between {RECORD_OVERHEAD} and {}",
                        u32::MAX
                    ))
                })?;
            let time = r.varint()?;
            let min_time = match prev_max {
                None => i64::try_from(i128::from(base) + i128::from(time)).map_err(|_| {
                    r.malformed(format!(
                        "the min time of chunk {n} of series {fingerprint:016x} overflows"
                    ))
                })?,
                Some(prev) => prev.wrapping_add(unzigzag(time)),
            };
            let duration = r.varint()?;
            let max_time =
                i64::try_from(i128::from(min_time) + i128::from(duration)).map_err(|_| {
                    r.malformed(format!(
                        "the max time of chunk {n} of series {fingerprint:016x} overflows"
                    ))
                })?;
            let encoding = r.u8()?;
            chunks.push(ChunkMeta {
                offset,
                min_time,
                max_time,
                len,
                encoding,
            });
            offset = offset.checked_add(u64::from(len)).ok_or_else(|| {
                r.malformed(format!(
                    "chunk {n} of series {fingerprint:016x} ends past the largest offset"
                ))
            })?;
            prev_max = Some(max_time);
        }

        let too_big = |_| r.malformed("the index lists too many labels or chunks".to_string());
        series.push(SeriesEntry {
            fingerprint,
            digest,
            labels_end: u32::try_from(labels.len()).map_err(too_big)?,
            chunks_end: u32::try_from(chunks.len()).map_err(too_big)?,
        });
        prev_fingerprint = fingerprint;
        prev_labels = this_labels;
    }
    if r.remaining() != 0 {
        return Err(r.malformed(format!(
            "{} unexpected bytes after the last series of the index",
            r.remaining()
        )));
    }
    if let Some(id) = used.iter().position(|u| !u) {
        return Err(r.malformed(format!(
            "symbol {:?} is not used by any series",
            symbols.get(id as u32)
        )));
    }
    let range = time_range(&chunks);
    let expected_base = range.map_or(0, |(min, _)| min);
    if base != expected_base {
        return Err(r.malformed(format!(
            "the base time is {base} but the smallest chunk min time is {expected_base} \
             (0 without chunks)"
        )));
    }
    if let Some(index_offset) = index_offset {
        if offset != index_offset {
            return Err(r.malformed(format!(
                "the chunk records end at offset {offset} but the index starts at \
                 {index_offset}"
            )));
        }
    }
    Ok(ObjectIndex {
        key: Arc::from(key),
        tenant: tenant.into(),
        symbols,
        series: series.into_boxed_slice(),
        labels: labels.into_boxed_slice(),
        chunks: chunks.into_boxed_slice(),
        time_range: range,
        records_end: offset,
    })
}
