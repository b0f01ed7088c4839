//! Key layouts and value encodings of the index rows (see docs/index-schema.md).
//!
//! Every decoder here takes untrusted bytes: it returns a message on anything unexpected and
//! never panics, indexes out of bounds or allocates by a length it has not checked.

use crate::rows::IndexItem;

/// Largest item the index writes (attribute names, keys and value together). DynamoDB allows
/// 400 KB; staying at 32 KiB keeps every put at 32 write units or less.
pub const MAX_ITEM_BYTES: usize = 32 * 1024;

/// Format version, the first byte of every value this build writes.
const FORMAT_V2: u8 = 2;

/// Longest label value the index accepts.
pub const MAX_LABEL_VALUE_BYTES: usize = 16 * 1024;
/// Longest label name the index keeps rows for (it is part of a hash key, at most 2048
/// bytes); objects with longer names are recorded as holding the name, unindexed.
pub const MAX_LABEL_NAME_BYTES: usize = 1024;
/// Longest escaped tenant ID the index accepts.
pub const MAX_TENANT_BYTES: usize = 256;
/// Longest escaped object key the index accepts (range keys are at most 1024 bytes).
pub const MAX_OBJECT_KEY_BYTES: usize = 1000;

/// A label's values in one object are listed whole when they encode to at most this many
/// bytes; above it, a Bloom filter stands in for them.
pub const INLINE_VALUES_MAX: usize = 4096;
/// Bloom filter bits per value (about 0.8 % false positives with [`FILTER_HASHES`]).
const FILTER_BITS_PER_VALUE: usize = 10;
/// Bit positions set per value.
const FILTER_HASHES: u32 = 7;
/// A label's filter is split into shards (by value hash) of about this many bytes each.
const FILTER_SHARD_BYTES: usize = 4096;
/// Most filter shards per label and object (a power of two).
pub const MAX_FILTER_SHARDS: u32 = 1024;

// ---- escaping -------------------------------------------------------------------------------

/// The tenant as it appears in hash keys: `%` and `:` percent-escaped, so `:` separates the
/// key's fields unambiguously whatever the tenant ID. Valid tenant IDs contain neither.
pub fn escape_tenant(tenant: &str) -> String {
    let mut out = String::with_capacity(tenant.len());
    for c in tenant.chars() {
        match c {
            '%' => out.push_str("%25"),
            ':' => out.push_str("%3A"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes bytes for a range key field that is terminated by `0x00`: `0x00` becomes
/// `01 01` and `0x01` becomes `01 02`, so an escaped field never holds `0x00`.
fn escape_into(out: &mut Vec<u8>, bytes: &[u8]) {
    for &b in bytes {
        match b {
            0 => out.extend_from_slice(&[1, 1]),
            1 => out.extend_from_slice(&[1, 2]),
            b => out.push(b),
        }
    }
}

fn escaped_len(bytes: &[u8]) -> usize {
    bytes.len() + bytes.iter().filter(|&&b| b <= 1).count()
}

fn unescape(field: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(field.len());
    let mut bytes = field.iter();
    while let Some(&b) = bytes.next() {
        match b {
            1 => match bytes.next() {
                Some(1) => out.push(0),
                Some(2) => out.push(1),
                other => return Err(format!("bad escape sequence 01 {other:02x?} in range key")),
            },
            b => out.push(b),
        }
    }
    Ok(out)
}

pub fn escaped_str_len(text: &str) -> usize {
    escaped_len(text.as_bytes())
}

// ---- hash keys ------------------------------------------------------------------------------

/// The catalog of a tenant's day: one item (or a few parts) per object.
pub fn catalog_hash(tenant: &str, day: i64) -> String {
    format!("{tenant}:{day}:c")
}

/// Listed values of label `name`, one item per object of the day.
pub fn values_hash(tenant: &str, day: i64, name: &str) -> String {
    format!("{tenant}:{day}:v:{name}")
}

/// Shard `shard` of `shards` of label `name`'s Bloom filters, one item per object.
pub fn filter_hash(tenant: &str, day: i64, shards: u32, shard: u32, name: &str) -> String {
    format!("{tenant}:{day}:f:{shards}:{shard}:{name}")
}

// ---- range keys -----------------------------------------------------------------------------

/// `escaped(object key) 00 part(u32 BE)`: the range key of every item about an object.
pub fn object_range(key: &str, part: u32) -> Vec<u8> {
    let mut range = Vec::with_capacity(escaped_len(key.as_bytes()) + 5);
    escape_into(&mut range, key.as_bytes());
    range.push(0);
    range.extend_from_slice(&part.to_be_bytes());
    range
}

/// The object key and part number of an object range key.
pub fn decode_object_range(range: &[u8]) -> Result<(String, u32), String> {
    let mut fields = range.splitn(2, |&b| b == 0);
    let key = fields.next().unwrap_or_default();
    let part = fields.next().ok_or("object range key has no part number")?;
    let part: [u8; 4] = part.try_into().map_err(|_| {
        format!(
            "object range key part number is {} bytes, expected 4",
            part.len()
        )
    })?;
    let key = String::from_utf8(unescape(key)?).map_err(|_| "object key is not UTF-8")?;
    Ok((key, u32::from_be_bytes(part)))
}

// ---- varints --------------------------------------------------------------------------------

pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// A cursor over untrusted bytes.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn varint(&mut self, what: &str) -> Result<u64, String> {
        let mut value = 0u64;
        for i in 0..10 {
            let (&b, rest) = self
                .bytes
                .split_first()
                .ok_or_else(|| format!("value ends inside {what}"))?;
            self.bytes = rest;
            if i == 9 && b > 1 {
                return Err(format!("{what} overflows 64 bits"));
            }
            value |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Ok(value);
            }
        }
        Err(format!("{what} is longer than 10 bytes"))
    }

    fn u32(&mut self, what: &str) -> Result<u32, String> {
        u32::try_from(self.varint(what)?).map_err(|_| format!("{what} does not fit 32 bits"))
    }

    fn byte(&mut self, what: &str) -> Result<u8, String> {
        let (&b, rest) = self
            .bytes
            .split_first()
            .ok_or_else(|| format!("value ends before {what}"))?;
        self.bytes = rest;
        Ok(b)
    }

    fn take(&mut self, n: u64, what: &str) -> Result<&'a [u8], String> {
        let n = usize::try_from(n).map_err(|_| format!("{what} length {n} is too large"))?;
        if n > self.bytes.len() {
            return Err(format!(
                "{what} is {n} bytes but only {} remain",
                self.bytes.len()
            ));
        }
        let (taken, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(taken)
    }

    fn string(&mut self, what: &str) -> Result<String, String> {
        let len = self.varint(what)?;
        let bytes = self.take(len, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| format!("{what} is not UTF-8"))
    }

    fn version(&mut self) -> Result<(), String> {
        match self.byte("format version")? {
            FORMAT_V2 => Ok(()),
            other => Err(format!(
                "unknown format version {other} (this build reads version {FORMAT_V2})"
            )),
        }
    }

    /// A count of entries that each take at least `min_entry_bytes`, checked against the bytes
    /// left so no allocation follows a forged count.
    fn count(&mut self, what: &str, min_entry_bytes: usize) -> Result<usize, String> {
        let n = self.varint(what)?;
        let possible = self.bytes.len() / min_entry_bytes.max(1);
        match usize::try_from(n) {
            Ok(n) if n <= possible => Ok(n),
            _ => Err(format!(
                "{what} {n} is more than {} remaining bytes can hold",
                self.bytes.len()
            )),
        }
    }

    fn finish(&self) -> Result<(), String> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(format!("{} unexpected trailing bytes", self.bytes.len()))
        }
    }
}

// ---- catalog values -------------------------------------------------------------------------

/// How an object's values of one label are indexed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NameIndex {
    /// Listed whole in the label's values row.
    Values,
    /// A Bloom filter in `shards` rows, split by value hash.
    Filter { shards: u32 },
    /// Not indexed (the name is too long for a key, or the values too many for a filter):
    /// every matcher on it must read the object's own index.
    Unindexed,
}

/// What the catalog records about an object (every part repeats it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CatalogHeader {
    pub index_offset: u64,
    pub index_len: u32,
    pub min_time: i64,
    pub max_time: i64,
    pub series_count: u64,
}

/// One decoded catalog item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CatalogPart {
    /// How many parts the object's catalog entry has.
    pub parts: u32,
    pub header: CatalogHeader,
    pub names: Vec<(String, NameIndex)>,
}

fn put_name(out: &mut Vec<u8>, name: &str, kind: NameIndex) {
    put_varint(out, name.len() as u64);
    out.extend_from_slice(name.as_bytes());
    match kind {
        NameIndex::Values => out.push(0),
        NameIndex::Filter { shards } => {
            out.push(1);
            put_varint(out, u64::from(shards));
        }
        NameIndex::Unindexed => out.push(2),
    }
}

fn name_len(name: &str, kind: NameIndex) -> usize {
    let shards = match kind {
        NameIndex::Filter { shards } => varint_len(u64::from(shards)),
        _ => 0,
    };
    varint_len(name.len() as u64) + name.len() + 1 + shards
}

/// Catalog items for one (day, object): the header and the object's label names, split into
/// parts so no item is over [`MAX_ITEM_BYTES`]. Every part repeats the header and says how
/// many parts there are, so a reader can tell a complete entry from a partly written one.
pub fn catalog_items(
    hash: &str,
    key: &str,
    header: &CatalogHeader,
    names: &[(String, NameIndex)],
) -> Result<Vec<IndexItem>, String> {
    let mut fixed_header = Vec::new();
    put_varint(&mut fixed_header, header.index_offset);
    put_varint(&mut fixed_header, u64::from(header.index_len));
    put_varint(&mut fixed_header, zigzag(header.min_time));
    put_varint(&mut fixed_header, zigzag(header.max_time));
    put_varint(&mut fixed_header, header.series_count);
    // attribute names, hash, range (escaped key, 00, part), version, part counts, header,
    // name count
    let fixed = 3 + hash.len() + escaped_str_len(key) + 5 + 1 + 10 + fixed_header.len() + 5;
    let budget = MAX_ITEM_BYTES
        .checked_sub(fixed)
        .filter(|b| *b >= MAX_LABEL_NAME_BYTES + 16)
        .ok_or_else(|| format!("object key and header take {fixed} bytes, leaving no room"))?;
    let mut groups: Vec<&[(String, NameIndex)]> = Vec::new();
    let mut start = 0;
    while start < names.len() || groups.is_empty() {
        let mut end = start;
        let mut used = 0;
        while let Some((name, kind)) = names.get(end) {
            let len = name_len(name, *kind);
            if end > start && used + len > budget {
                break;
            }
            used += len;
            end += 1;
        }
        groups.push(&names[start..end]);
        start = end;
    }
    let parts = groups.len() as u32;
    Ok(groups
        .into_iter()
        .enumerate()
        .map(|(part, group)| {
            let mut value = vec![FORMAT_V2];
            put_varint(&mut value, u64::from(parts));
            value.extend_from_slice(&fixed_header);
            put_varint(&mut value, group.len() as u64);
            for (name, kind) in group {
                put_name(&mut value, name, *kind);
            }
            IndexItem {
                hash: hash.to_string(),
                range: object_range(key, part as u32),
                value,
            }
        })
        .collect())
}

pub fn decode_catalog(value: &[u8]) -> Result<CatalogPart, String> {
    let mut r = Reader { bytes: value };
    r.version()?;
    let parts = r.u32("part count")?;
    let index_offset = r.varint("index offset")?;
    let index_len = r.u32("index length")?;
    let min_time = unzigzag(r.varint("min time")?);
    let max_time = unzigzag(r.varint("max time")?);
    let series_count = r.varint("series count")?;
    if parts == 0 || min_time > max_time {
        return Err(format!(
            "catalog entry has {parts} parts and times {min_time}..{max_time}"
        ));
    }
    let n = r.count("label name count", 2)?;
    let mut names = Vec::with_capacity(n);
    for _ in 0..n {
        let name = r.string("label name")?;
        let kind = match r.byte("label index kind")? {
            0 => NameIndex::Values,
            1 => {
                let shards = r.u32("filter shard count")?;
                if !shards.is_power_of_two() || shards > MAX_FILTER_SHARDS {
                    return Err(format!("filter shard count {shards} is not a power of two up to {MAX_FILTER_SHARDS}"));
                }
                NameIndex::Filter { shards }
            }
            2 => NameIndex::Unindexed,
            other => return Err(format!("unknown label index kind {other}")),
        };
        names.push((name, kind));
    }
    r.finish()?;
    Ok(CatalogPart {
        parts,
        header: CatalogHeader {
            index_offset,
            index_len,
            min_time,
            max_time,
            series_count,
        },
        names,
    })
}

// ---- label values ---------------------------------------------------------------------------

/// The values row value: sorted, distinct values front-coded (bytes shared with the value
/// before, then the rest).
pub fn encode_values(values: &[String]) -> Vec<u8> {
    let mut out = vec![FORMAT_V2];
    put_varint(&mut out, values.len() as u64);
    let mut previous: &[u8] = &[];
    for v in values {
        let bytes = v.as_bytes();
        let shared = previous
            .iter()
            .zip(bytes)
            .take_while(|(a, b)| a == b)
            .count();
        put_varint(&mut out, shared as u64);
        put_varint(&mut out, (bytes.len() - shared) as u64);
        out.extend_from_slice(&bytes[shared..]);
        previous = bytes;
    }
    out
}

pub fn decode_values(value: &[u8]) -> Result<Vec<String>, String> {
    let mut r = Reader { bytes: value };
    r.version()?;
    let n = r.count("value count", 2)?;
    let mut out: Vec<String> = Vec::with_capacity(n);
    let mut previous: Vec<u8> = Vec::new();
    for _ in 0..n {
        let shared = r.varint("shared prefix length")?;
        let shared = usize::try_from(shared)
            .ok()
            .filter(|s| *s <= previous.len())
            .ok_or_else(|| format!("shared prefix {shared} is longer than the value before"))?;
        let rest_len = r.varint("value length")?;
        let rest = r.take(rest_len, "label value")?;
        let mut bytes = previous[..shared].to_vec();
        bytes.extend_from_slice(rest);
        if bytes.len() > MAX_LABEL_VALUE_BYTES {
            return Err(format!("label value of {} bytes is too long", bytes.len()));
        }
        let text = String::from_utf8(bytes).map_err(|_| "label value is not UTF-8")?;
        if out.last().is_some_and(|last| *last >= text) {
            return Err("label values are not sorted and distinct".to_string());
        }
        previous = text.as_bytes().to_vec();
        out.push(text);
    }
    r.finish()?;
    Ok(out)
}

// ---- Bloom filters --------------------------------------------------------------------------

/// The hash every filter operation starts from.
pub fn value_hash(value: &str) -> u64 {
    strata_model::hash::xxh3_of(|buf| buf.extend_from_slice(value.as_bytes()))
}

/// Which of `shards` (a power of two) filter shards holds a value of this hash.
pub fn filter_shard(hash: u64, shards: u32) -> u32 {
    ((hash >> 40) as u32) & (shards.max(1) - 1)
}

/// SplitMix64's finalizer: bit positions come from a remix of the hash, independent of the
/// bits that chose the shard.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn filter_positions(hash: u64, bits: u64) -> impl Iterator<Item = u64> {
    let g = mix(hash);
    let a = g & 0xffff_ffff;
    let b = (g >> 32) | 1;
    (0..u64::from(FILTER_HASHES)).map(move |i| a.wrapping_add(i.wrapping_mul(b)) % bits.max(1))
}

/// The shard count for a filter over `count` values.
pub fn filter_shards(count: usize) -> u32 {
    let bytes = count.saturating_mul(FILTER_BITS_PER_VALUE).div_ceil(8);
    let wanted = bytes
        .div_ceil(FILTER_SHARD_BYTES)
        .clamp(1, MAX_FILTER_SHARDS as usize);
    wanted.next_power_of_two() as u32
}

/// The filter row values for `hashes` split into `shards`: (shard, value) for each shard that
/// holds at least one value.
pub fn encode_filters(hashes: &[u64], shards: u32) -> Vec<(u32, Vec<u8>)> {
    let mut by_shard: Vec<Vec<u64>> = vec![Vec::new(); shards.max(1) as usize];
    for &h in hashes {
        by_shard[filter_shard(h, shards) as usize].push(h);
    }
    by_shard
        .into_iter()
        .enumerate()
        .filter(|(_, hs)| !hs.is_empty())
        .map(|(shard, hs)| {
            let bits = ((hs.len() * FILTER_BITS_PER_VALUE).max(64) as u64).next_multiple_of(8);
            let mut set = vec![0u8; (bits / 8) as usize];
            for h in hs {
                for p in filter_positions(h, bits) {
                    set[(p / 8) as usize] |= 1 << (p % 8);
                }
            }
            let mut value = vec![FORMAT_V2];
            put_varint(&mut value, u64::from(FILTER_HASHES));
            put_varint(&mut value, bits);
            value.extend_from_slice(&set);
            (shard as u32, value)
        })
        .collect()
}

/// Whether the filter row value may hold a value of this hash (false: it certainly does not).
pub fn filter_contains(value: &[u8], hash: u64) -> Result<bool, String> {
    let mut r = Reader { bytes: value };
    r.version()?;
    let k = r.varint("filter hash count")?;
    let bits = r.varint("filter bit count")?;
    if k != u64::from(FILTER_HASHES) || bits == 0 || bits % 8 != 0 {
        return Err(format!("filter with {k} hashes over {bits} bits"));
    }
    let set = r.take(bits / 8, "filter bits")?;
    r.finish()?;
    Ok(filter_positions(hash, bits).all(|p| set[(p / 8) as usize] & (1 << (p % 8)) != 0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn varints_round_trip() {
        for v in [
            0u64,
            1,
            127,
            128,
            300,
            u32::MAX as u64,
            u64::MAX - 1,
            u64::MAX,
        ] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(out.len(), varint_len(v));
            let mut r = Reader { bytes: &out };
            assert_eq!(r.varint("v").unwrap(), v);
            r.finish().unwrap();
        }
        for v in [0i64, 1, -1, i64::MIN, i64::MAX, -86_400_000] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
        // 11 continuation bytes, and a 10th byte that overflows.
        assert!(Reader { bytes: &[0xff; 11] }.varint("v").is_err());
        let mut overflow = vec![0xff; 9];
        overflow.push(0x02);
        assert!(Reader { bytes: &overflow }.varint("v").is_err());
    }

    #[test]
    fn tenants_are_escaped_unambiguously() {
        assert_eq!(escape_tenant("team-a"), "team-a");
        assert_eq!(escape_tenant("a:1"), "a%3A1");
        assert_eq!(escape_tenant("a%3A1"), "a%253A1");
        assert_ne!(
            values_hash(&escape_tenant("a:1"), 5, "x"),
            values_hash(&escape_tenant("a"), 5, "1:5:v:x")
        );
    }

    #[test]
    fn object_range_keys_round_trip_with_nul_and_one_bytes() {
        for key in ["t/o", "tenant/obj\0\u{1}", "\u{1}\u{3}", "ü"] {
            let range = object_range(key, 7);
            assert_eq!(decode_object_range(&range).unwrap(), (key.to_string(), 7));
        }
        assert!(decode_object_range(b"abc").is_err());
        assert!(decode_object_range(b"abc\0\0\0").is_err());
        assert!(decode_object_range(b"a\x01\x05\0\0\0\0\0").is_err());
    }

    #[test]
    fn catalog_round_trips_and_splits_many_names() {
        let header = CatalogHeader {
            index_offset: 1234,
            index_len: 99,
            min_time: -5,
            max_time: 7_200_000,
            series_count: 50_000,
        };
        let names = vec![
            ("__name__".to_string(), NameIndex::Values),
            ("id".to_string(), NameIndex::Filter { shards: 16 }),
            ("x".repeat(1024), NameIndex::Unindexed),
        ];
        let items = catalog_items("t:1:c", "t/obj", &header, &names).unwrap();
        assert_eq!(items.len(), 1);
        let part = decode_catalog(&items[0].value).unwrap();
        assert_eq!(part.parts, 1);
        assert_eq!(part.header, header);
        assert_eq!(part.names, names);

        let many: Vec<(String, NameIndex)> = (0..2000)
            .map(|i| (format!("label_name_number_{i:05}"), NameIndex::Values))
            .collect();
        let items = catalog_items("t:1:c", "t/obj", &header, &many).unwrap();
        assert!(items.len() > 1);
        let mut back = Vec::new();
        for (i, item) in items.iter().enumerate() {
            assert!(item.size() <= MAX_ITEM_BYTES);
            assert_eq!(decode_object_range(&item.range).unwrap().1, i as u32);
            let part = decode_catalog(&item.value).unwrap();
            assert_eq!(part.parts as usize, items.len());
            back.extend(part.names);
        }
        assert_eq!(back, many);
        // An object without label names still gets its entry.
        assert_eq!(
            catalog_items("t:1:c", "t/o", &header, &[]).unwrap().len(),
            1
        );
    }

    #[test]
    fn values_round_trip_front_coded() {
        let values: Vec<String> = [
            "",
            "a",
            "checkout-7d9f8b6c5-x2k4p",
            "checkout-7d9f8b6c5-z9q1m",
            "ü\0\u{1}",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let encoded = encode_values(&values);
        assert_eq!(decode_values(&encoded).unwrap(), values);
        // unsorted, or a prefix longer than the value before
        assert!(decode_values(&encode_values(&["b".into(), "a".into()])).is_err());
        assert!(decode_values(&[FORMAT_V2, 1, 3, 1, b'a']).is_err());
        assert!(decode_values(&[1, 0]).is_err());
    }

    #[test]
    fn filters_have_no_false_negatives_and_few_false_positives() {
        let hashes: Vec<u64> = (0..20_000)
            .map(|i| value_hash(&format!("pod-{i}")))
            .collect();
        let shards = filter_shards(hashes.len());
        assert_eq!(shards, 8);
        let filters = encode_filters(&hashes, shards);
        let find = |h: u64| {
            let shard = filter_shard(h, shards);
            filters
                .iter()
                .find(|(s, _)| *s == shard)
                .is_some_and(|(_, v)| filter_contains(v, h).unwrap())
        };
        assert!(hashes.iter().all(|h| find(*h)));
        let false_positives = (0..20_000)
            .filter(|i| find(value_hash(&format!("other-{i}"))))
            .count();
        assert!(false_positives < 400, "{false_positives} false positives");
        for (_, v) in &filters {
            assert!(v.len() <= FILTER_SHARD_BYTES + 16);
        }
        assert_eq!(filter_shards(1), 1);
        assert_eq!(filter_shards(usize::MAX / 64), MAX_FILTER_SHARDS);
    }

    proptest! {
        #[test]
        fn decoders_never_panic(value in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode_catalog(&value);
            let _ = decode_values(&value);
            let _ = filter_contains(&value, 42);
            let _ = decode_object_range(&value);
            let mut versioned = vec![FORMAT_V2];
            versioned.extend_from_slice(&value);
            let _ = decode_catalog(&versioned);
            let _ = decode_values(&versioned);
            let _ = filter_contains(&versioned, 42);
        }
    }
}
