//! Key layouts and value encodings of the index rows (see docs/index-schema.md).
//!
//! Every decoder here takes untrusted bytes: it returns a message on anything unexpected and
//! never panics, indexes out of bounds or allocates by a length it has not checked.

use crate::rows::IndexItem;

/// Largest item the index writes (attribute names, keys and value together). DynamoDB allows
/// 400 KB; staying at 32 KiB keeps every put at 32 write units or less.
pub const MAX_ITEM_BYTES: usize = 32 * 1024;

/// Format version, the first byte of every postings and object value.
const FORMAT_V1: u8 = 1;

/// Longest escaped label value kept whole in a range key. Longer values are cut and suffixed
/// with a hash, and the whole value is stored in the item value (DynamoDB range keys are at
/// most 1024 bytes).
const MAX_VALUE_KEY: usize = 512;
/// Escaped bytes of a long value kept in its range key.
const LONG_VALUE_PREFIX: usize = 480;
/// Longest label value the index accepts (stored whole in the value when long).
pub const MAX_LABEL_VALUE_BYTES: usize = 16 * 1024;
/// Longest label name the index accepts (it is part of a hash key, at most 2048 bytes).
pub const MAX_LABEL_NAME_BYTES: usize = 1024;
/// Longest escaped tenant ID the index accepts.
pub const MAX_TENANT_BYTES: usize = 256;
/// Longest escaped batch ID the index accepts.
pub const MAX_BATCH_BYTES: usize = 256;
/// Longest escaped object key the index accepts (range keys are at most 1024 bytes).
pub const MAX_OBJECT_KEY_BYTES: usize = 1000;

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

/// Marker (never produced by [`escape_into`]) that ends the kept prefix of a long value.
const LONG_MARK: [u8; 2] = [1, 3];

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

// ---- hash keys ------------------------------------------------------------------------------

pub fn postings_hash(tenant: &str, day: i64, shard: u32, name: &str) -> String {
    format!("{tenant}:{day}:p:{shard}:{name}")
}

pub fn names_hash(tenant: &str, day: i64) -> String {
    format!("{tenant}:{day}:n")
}

pub fn objects_hash(tenant: &str, day: i64, shard: u32) -> String {
    format!("{tenant}:{day}:o:{shard}")
}

/// The shard of a series: its fingerprint, mixed (SplitMix64's finalizer, so fingerprints that
/// are not uniform still spread), modulo the shard count.
pub fn shard_of(fingerprint: u64, shards: u32) -> u32 {
    let mut z = fingerprint;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    // shards >= 1 is guaranteed by schema validation; max(1) keeps this total anyway.
    (z % u64::from(shards.max(1))) as u32
}

// ---- range keys -----------------------------------------------------------------------------

/// The range key field of a label value: the escaped value, or for long values an escaped
/// prefix, [`LONG_MARK`] and the hex XXH3 of the whole value. Never holds `0x00`.
pub fn value_key(value: &str) -> Vec<u8> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(escaped_len(bytes).min(MAX_VALUE_KEY + 1));
    if escaped_len(bytes) <= MAX_VALUE_KEY {
        escape_into(&mut out, bytes);
        return out;
    }
    for &b in bytes {
        let width = if b <= 1 { 2 } else { 1 };
        if out.len() + width > LONG_VALUE_PREFIX {
            break;
        }
        escape_into(&mut out, &[b]);
    }
    out.extend_from_slice(&LONG_MARK);
    let hash = strata_model::hash::xxh3_of(|buf| buf.extend_from_slice(bytes));
    out.extend_from_slice(format!("{hash:016x}").as_bytes());
    out
}

/// Whether the label value is too long to be kept whole in its range key.
pub fn is_long_value(value: &str) -> bool {
    escaped_len(value.as_bytes()) > MAX_VALUE_KEY
}

/// Prefix selecting every postings item of one label value.
pub fn postings_value_prefix(value: &str) -> Vec<u8> {
    let mut prefix = value_key(value);
    prefix.push(0);
    prefix
}

/// `value_key 00 escaped(batch) 00` — a postings range key without its part number.
pub fn postings_range_base(value: &str, batch: &str) -> Vec<u8> {
    let mut range = postings_value_prefix(value);
    escape_into(&mut range, batch.as_bytes());
    range.push(0);
    range
}

/// `escaped(object key) 00` — an object range key without its part number.
pub fn object_range_base(key: &str) -> Vec<u8> {
    let mut range = Vec::with_capacity(key.len() + 5);
    escape_into(&mut range, key.as_bytes());
    range.push(0);
    range
}

pub fn escaped_str_len(text: &str) -> usize {
    escaped_len(text.as_bytes())
}

/// The label value named by a postings range key: `Some` when the key holds it whole, `None`
/// when it was long (the whole value is then in the item's value).
pub fn decode_postings_range(range: &[u8]) -> Result<Option<String>, String> {
    let mut fields = range.splitn(3, |&b| b == 0);
    let value = fields.next().unwrap_or_default();
    let batch = fields
        .next()
        .ok_or("postings range key has no batch field")?;
    let part = fields
        .next()
        .ok_or("postings range key has no part number")?;
    if part.len() != 4 {
        return Err(format!(
            "postings range key part number is {} bytes, expected 4",
            part.len()
        ));
    }
    unescape(batch)?;
    let mut out = Vec::with_capacity(value.len());
    let mut bytes = value.iter();
    while let Some(&b) = bytes.next() {
        match b {
            1 => match bytes.next() {
                Some(1) => out.push(0),
                Some(2) => out.push(1),
                Some(3) => {
                    let hash = bytes.as_slice();
                    if hash.len() != 16 || !hash.iter().all(u8::is_ascii_hexdigit) {
                        return Err("long label value key has a bad hash suffix".to_string());
                    }
                    return Ok(None);
                }
                other => return Err(format!("bad escape sequence 01 {other:02x?} in range key")),
            },
            b => out.push(b),
        }
    }
    String::from_utf8(out)
        .map(Some)
        .map_err(|_| "label value in range key is not UTF-8".to_string())
}

/// The object key of an object range key.
pub fn decode_object_range(range: &[u8]) -> Result<String, String> {
    let mut fields = range.splitn(2, |&b| b == 0);
    let key = fields.next().unwrap_or_default();
    let part = fields.next().ok_or("object range key has no part number")?;
    if part.len() != 4 {
        return Err(format!(
            "object range key part number is {} bytes, expected 4",
            part.len()
        ));
    }
    String::from_utf8(unescape(key)?).map_err(|_| "object key is not UTF-8".to_string())
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

    fn version(&mut self) -> Result<(), String> {
        match self.byte("format version")? {
            FORMAT_V1 => Ok(()),
            other => Err(format!("unknown format version {other}")),
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

/// Reads strictly increasing fingerprints stored as a first value and deltas.
fn read_fingerprint(r: &mut Reader<'_>, previous: Option<u64>) -> Result<u64, String> {
    let delta = r.varint("fingerprint")?;
    match previous {
        None => Ok(delta),
        Some(_) if delta == 0 => Err("fingerprints are not strictly increasing".to_string()),
        Some(p) => p
            .checked_add(delta)
            .ok_or_else(|| "fingerprint delta overflows".to_string()),
    }
}

// ---- postings values ------------------------------------------------------------------------

/// A decoded postings item value.
#[derive(Debug, PartialEq, Eq)]
pub struct Postings {
    /// The whole label value when the range key holds only a cut prefix of it.
    pub long_value: Option<String>,
    /// Sorted, distinct fingerprints.
    pub fingerprints: Vec<u64>,
}

/// Postings items for one (hash key, label value, batch): the sorted, distinct `fingerprints`
/// delta-varint packed, split into parts so no item is over [`MAX_ITEM_BYTES`].
pub fn postings_items(
    hash: &str,
    value: &str,
    batch: &str,
    fingerprints: &[u64],
) -> Result<Vec<IndexItem>, String> {
    let base = postings_range_base(value, batch);
    let long = is_long_value(value).then_some(value.as_bytes());
    let mut header = vec![FORMAT_V1];
    match long {
        Some(whole) => {
            put_varint(&mut header, whole.len() as u64);
            header.extend_from_slice(whole);
        }
        None => put_varint(&mut header, 0),
    }
    // attribute names, hash, range (base + 4-byte part), header, 10-byte count reserve
    let fixed = 3 + hash.len() + base.len() + 4 + header.len() + 10;
    let budget = MAX_ITEM_BYTES
        .checked_sub(fixed)
        .filter(|b| *b >= 10)
        .ok_or_else(|| {
            format!("keys and label value take {fixed} bytes, leaving no room for postings")
        })?;
    let mut items = Vec::new();
    let mut start = 0;
    while start < fingerprints.len() {
        let mut data = Vec::with_capacity(budget.min(fingerprints.len() * 9));
        let mut previous: Option<u64> = None;
        let mut end = start;
        while let Some(&fp) = fingerprints.get(end) {
            let delta = previous.map_or(fp, |p| fp.wrapping_sub(p));
            if data.len() + varint_len(delta) > budget {
                break;
            }
            put_varint(&mut data, delta);
            previous = Some(fp);
            end += 1;
        }
        let mut value = header.clone();
        put_varint(&mut value, (end - start) as u64);
        value.extend_from_slice(&data);
        items.push(IndexItem {
            hash: hash.to_string(),
            range: with_part(&base, items.len()),
            value,
        });
        start = end;
    }
    Ok(items)
}

fn with_part(base: &[u8], part: usize) -> Vec<u8> {
    let mut range = Vec::with_capacity(base.len() + 4);
    range.extend_from_slice(base);
    range.extend_from_slice(&(part as u32).to_be_bytes());
    range
}

pub fn decode_postings(value: &[u8]) -> Result<Postings, String> {
    let mut r = Reader { bytes: value };
    r.version()?;
    let long_len = r.varint("label value length")?;
    let long_value = if long_len == 0 {
        None
    } else {
        let bytes = r.take(long_len, "label value")?;
        Some(
            String::from_utf8(bytes.to_vec())
                .map_err(|_| "label value is not UTF-8".to_string())?,
        )
    };
    let n = r.count("fingerprint count", 1)?;
    let mut fingerprints = Vec::with_capacity(n);
    let mut previous = None;
    for _ in 0..n {
        let fp = read_fingerprint(&mut r, previous)?;
        fingerprints.push(fp);
        previous = Some(fp);
    }
    r.finish()?;
    Ok(Postings {
        long_value,
        fingerprints,
    })
}

// ---- object values --------------------------------------------------------------------------

/// The fields of one object item.
#[derive(Debug, PartialEq, Eq, Clone)]
pub struct ObjectPart {
    pub index_offset: u64,
    pub index_len: u32,
    pub min_time: i64,
    pub max_time: i64,
    /// Sorted by fingerprint.
    pub series: Vec<(u64, u32)>,
}

/// Object items for one (hash key, object): a header repeated in every part and the
/// (fingerprint, digest) pairs, split so no item is over [`MAX_ITEM_BYTES`].
pub fn object_items(hash: &str, key: &str, part: &ObjectPart) -> Result<Vec<IndexItem>, String> {
    let base = object_range_base(key);
    let mut header = vec![FORMAT_V1];
    put_varint(&mut header, part.index_offset);
    put_varint(&mut header, u64::from(part.index_len));
    put_varint(&mut header, zigzag(part.min_time));
    put_varint(&mut header, zigzag(part.max_time));
    let fixed = 3 + hash.len() + base.len() + 4 + header.len() + 10;
    let budget = MAX_ITEM_BYTES
        .checked_sub(fixed)
        .filter(|b| *b >= 14)
        .ok_or_else(|| format!("object key and header take {fixed} bytes, leaving no room"))?;
    let mut items = Vec::new();
    let mut start = 0;
    while start < part.series.len() {
        let mut data = Vec::new();
        let mut previous: Option<u64> = None;
        let mut end = start;
        while let Some(&(fp, digest)) = part.series.get(end) {
            let delta = previous.map_or(fp, |p| fp.wrapping_sub(p));
            if data.len() + varint_len(delta) + 4 > budget {
                break;
            }
            put_varint(&mut data, delta);
            data.extend_from_slice(&digest.to_le_bytes());
            previous = Some(fp);
            end += 1;
        }
        let mut value = header.clone();
        put_varint(&mut value, (end - start) as u64);
        value.extend_from_slice(&data);
        items.push(IndexItem {
            hash: hash.to_string(),
            range: with_part(&base, items.len()),
            value,
        });
        start = end;
    }
    Ok(items)
}

pub fn decode_object(value: &[u8]) -> Result<ObjectPart, String> {
    let mut r = Reader { bytes: value };
    r.version()?;
    let index_offset = r.varint("index offset")?;
    let index_len = u32::try_from(r.varint("index length")?)
        .map_err(|_| "index length does not fit 32 bits".to_string())?;
    let min_time = unzigzag(r.varint("min time")?);
    let max_time = unzigzag(r.varint("max time")?);
    let n = r.count("series count", 5)?;
    let mut series = Vec::with_capacity(n);
    let mut previous = None;
    for _ in 0..n {
        let fp = read_fingerprint(&mut r, previous)?;
        let digest = r.take(4, "series digest")?;
        let digest = u32::from_le_bytes([digest[0], digest[1], digest[2], digest[3]]);
        series.push((fp, digest));
        previous = Some(fp);
    }
    r.finish()?;
    Ok(ObjectPart {
        index_offset,
        index_len,
        min_time,
        max_time,
        series,
    })
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
            postings_hash(&escape_tenant("a:1"), 5, 0, "x"),
            postings_hash(&escape_tenant("a"), 5, 0, "1:5:p:0:x")
        );
    }

    #[test]
    fn range_keys_round_trip_with_nul_and_one_bytes() {
        for value in [
            "",
            "api",
            "a\0b",
            "\u{1}",
            "x\u{1}\0y",
            "ü",
            "\0\u{3}",
            "\u{1}\u{3}",
        ] {
            let mut range = postings_range_base(value, "obj\0/1");
            range.extend_from_slice(&7u32.to_be_bytes());
            assert_eq!(
                decode_postings_range(&range).unwrap(),
                Some(value.to_string())
            );
            assert!(range.starts_with(&postings_value_prefix(value)));
        }
        // "a" must not select "a\0b".
        let mut range = postings_range_base("a\0b", "o");
        range.extend_from_slice(&0u32.to_be_bytes());
        assert!(!range.starts_with(&postings_value_prefix("a")));

        let mut object = object_range_base("tenant/obj\0\u{1}");
        object.extend_from_slice(&1u32.to_be_bytes());
        assert_eq!(decode_object_range(&object).unwrap(), "tenant/obj\0\u{1}");
    }

    #[test]
    fn long_values_are_cut_and_hashed() {
        let long = "v".repeat(5000);
        let key = value_key(&long);
        assert!(key.len() <= MAX_VALUE_KEY);
        assert!(is_long_value(&long));
        let other = format!("{}w", "v".repeat(4999));
        assert_ne!(value_key(&other), key, "same prefix, other hash");
        let mut range = postings_range_base(&long, "b");
        range.extend_from_slice(&0u32.to_be_bytes());
        assert_eq!(decode_postings_range(&range).unwrap(), None);
        // A value of NUL bytes: escaping doubles it, still cut at a whole escape.
        let nuls = "\0".repeat(400);
        let key = value_key(&nuls);
        assert!(key.len() <= MAX_VALUE_KEY && !key.contains(&0));
        let mut range = postings_range_base(&nuls, "b");
        range.extend_from_slice(&0u32.to_be_bytes());
        assert_eq!(decode_postings_range(&range).unwrap(), None);

        let items = postings_items("h", &long, "b", &[1, 2, 3]).unwrap();
        assert_eq!(items.len(), 1);
        let decoded = decode_postings(&items[0].value).unwrap();
        assert_eq!(decoded.long_value.as_deref(), Some(long.as_str()));
        assert_eq!(decoded.fingerprints, [1, 2, 3]);
    }

    #[test]
    fn postings_split_into_parts_under_the_item_limit() {
        let fps: Vec<u64> = (0..20_000u64)
            .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 1)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let items = postings_items("tenant:1:p:0:__name__", "metric", "batch", &fps).unwrap();
        assert!(items.len() > 1);
        let mut all = Vec::new();
        for (i, item) in items.iter().enumerate() {
            assert!(item.size() <= MAX_ITEM_BYTES, "{}", item.size());
            assert_eq!(item.range[item.range.len() - 4..], (i as u32).to_be_bytes());
            all.extend(decode_postings(&item.value).unwrap().fingerprints);
        }
        assert_eq!(all, fps);
    }

    #[test]
    fn objects_split_and_round_trip() {
        let series: Vec<(u64, u32)> = (0..10_000u64).map(|i| (i * 1_000_003, i as u32)).collect();
        let part = ObjectPart {
            index_offset: 1 << 40,
            index_len: 77,
            min_time: -5,
            max_time: 1_700_000_000_000,
            series,
        };
        let items = object_items("t:1:o:0", "t/objects/a", &part).unwrap();
        assert!(items.len() > 1);
        let mut all = Vec::new();
        for item in &items {
            assert!(item.size() <= MAX_ITEM_BYTES);
            assert_eq!(decode_object_range(&item.range).unwrap(), "t/objects/a");
            let decoded = decode_object(&item.value).unwrap();
            assert_eq!(
                (
                    decoded.index_offset,
                    decoded.index_len,
                    decoded.min_time,
                    decoded.max_time
                ),
                (1 << 40, 77, -5, 1_700_000_000_000)
            );
            all.extend(decoded.series);
        }
        assert_eq!(all, part.series);
    }

    #[test]
    fn forged_counts_do_not_allocate() {
        let mut value = vec![FORMAT_V1, 0];
        put_varint(&mut value, u64::MAX);
        assert!(decode_postings(&value).is_err());
        let mut value = vec![FORMAT_V1, 0, 0, 0, 0];
        put_varint(&mut value, 1 << 40);
        assert!(decode_object(&value).is_err());
        assert!(decode_postings(&[2, 0, 0]).is_err(), "unknown version");
        assert!(decode_postings(&[]).is_err());
        // Fingerprints not increasing.
        assert!(decode_postings(&[FORMAT_V1, 0, 2, 5, 0]).is_err());
        // Trailing bytes.
        assert!(decode_postings(&[FORMAT_V1, 0, 1, 5, 9]).is_err());
    }

    proptest! {
        #[test]
        fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode_postings(&bytes);
            let _ = decode_object(&bytes);
            let _ = decode_postings_range(&bytes);
            let _ = decode_object_range(&bytes);
        }

        #[test]
        fn postings_round_trip(mut fps in proptest::collection::vec(any::<u64>(), 0..200), value in ".{0,20}") {
            fps.sort_unstable();
            fps.dedup();
            let items = postings_items("h", &value, "batch", &fps).unwrap();
            let mut all = Vec::new();
            for item in &items {
                prop_assert_eq!(decode_postings_range(&item.range).unwrap(), Some(value.clone()));
                all.extend(decode_postings(&item.value).unwrap().fingerprints);
            }
            prop_assert_eq!(all, fps);
        }
    }
}
