//! Protobuf wire-format primitives: varints, keys, length-delimited slices,
//! fixed-width values and skipping of unknown fields.
//!
//! Every reader takes `&mut &[u8]` and advances it; nothing here indexes
//! without a bounds check, so no input can make these functions panic.

use crate::DecodeError;

pub(crate) const WT_VARINT: u8 = 0;
pub(crate) const WT_I64: u8 = 1;
pub(crate) const WT_LEN: u8 = 2;
pub(crate) const WT_START_GROUP: u8 = 3;
pub(crate) const WT_END_GROUP: u8 = 4;
pub(crate) const WT_I32: u8 = 5;

/// How deeply unknown (deprecated) groups may nest before we give up.
pub(crate) const MAX_GROUP_DEPTH: u32 = 64;

/// Reads a varint. One-byte varints (almost every key and most lengths)
/// take the inlined fast path.
#[inline(always)]
pub(crate) fn read_varint(buf: &mut &[u8], context: &'static str) -> Result<u64, DecodeError> {
    let s = *buf;
    match s {
        [b0, rest @ ..] if *b0 < 0x80 => {
            *buf = rest;
            Ok(u64::from(*b0))
        }
        [b0, b1, rest @ ..] if *b1 < 0x80 => {
            *buf = rest;
            Ok(u64::from(b0 & 0x7f) | (u64::from(*b1) << 7))
        }
        _ => read_varint_slow(buf, context),
    }
}

#[inline(never)]
fn read_varint_slow(buf: &mut &[u8], context: &'static str) -> Result<u64, DecodeError> {
    let mut value = 0u64;
    for (i, &b) in buf.iter().take(10).enumerate() {
        // For i == 9 the shift is 63: only the lowest payload bit survives,
        // which is exactly what the overflow check below allows.
        value |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            if i == 9 && b > 1 {
                return Err(DecodeError::VarintOverflow { context });
            }
            *buf = buf.get(i + 1..).unwrap_or_default();
            return Ok(value);
        }
    }
    if buf.len() >= 10 {
        Err(DecodeError::VarintOverflow { context })
    } else {
        Err(DecodeError::TruncatedVarint { context })
    }
}

/// Splits a key into (field number, wire type), validating both.
#[inline]
pub(crate) fn split_key(key: u64, context: &'static str) -> Result<(u32, u8), DecodeError> {
    if key > u64::from(u32::MAX) || key >> 3 == 0 {
        return Err(DecodeError::InvalidKey { key, context });
    }
    let field = (key >> 3) as u32;
    let wire_type = (key & 7) as u8;
    if wire_type > WT_I32 {
        return Err(DecodeError::InvalidWireType {
            wire_type,
            field,
            context,
        });
    }
    Ok((field, wire_type))
}

/// Reads a length prefix and returns that many bytes.
#[inline(always)]
pub(crate) fn read_len_delimited<'a>(
    buf: &mut &'a [u8],
    context: &'static str,
) -> Result<&'a [u8], DecodeError> {
    let len = read_varint(buf, context)?;
    if len > buf.len() as u64 {
        return Err(truncated(len, buf.len(), context));
    }
    let (head, tail) = buf.split_at(len as usize);
    *buf = tail;
    Ok(head)
}

#[cold]
#[inline(never)]
pub(crate) fn truncated(len: u64, remaining: usize, context: &'static str) -> DecodeError {
    DecodeError::Truncated {
        len,
        remaining,
        context,
    }
}

#[inline(always)]
pub(crate) fn read_fixed64(buf: &mut &[u8], context: &'static str) -> Result<u64, DecodeError> {
    match buf.split_first_chunk::<8>() {
        Some((bytes, rest)) => {
            *buf = rest;
            Ok(u64::from_le_bytes(*bytes))
        }
        None => Err(truncated(8, buf.len(), context)),
    }
}

#[inline]
pub(crate) fn read_fixed32(buf: &mut &[u8], context: &'static str) -> Result<u32, DecodeError> {
    match buf.split_first_chunk::<4>() {
        Some((bytes, rest)) => {
            *buf = rest;
            Ok(u32::from_le_bytes(*bytes))
        }
        None => Err(truncated(4, buf.len(), context)),
    }
}

/// Handles a key the caller did not recognise as one of its fast-path
/// keys: known field numbers (`known`, with their expected wire type and
/// schema name) get a wrong-wire-type error, everything else is skipped.
#[cold]
#[inline(never)]
pub(crate) fn skip_unknown(
    key: u64,
    buf: &mut &[u8],
    context: &'static str,
    known: &[(u32, u8, &'static str)],
) -> Result<(), DecodeError> {
    let (field, wire_type) = split_key(key, context)?;
    for &(f, expected, name) in known {
        if f == field && expected != wire_type {
            return Err(DecodeError::WrongWireType {
                field,
                name,
                wire_type,
                expected,
            });
        }
    }
    skip_field(field, wire_type, buf, context, 0)
}

/// Skips one field's payload according to its wire type. Groups are
/// skipped recursively up to [`MAX_GROUP_DEPTH`].
pub(crate) fn skip_field(
    field: u32,
    wire_type: u8,
    buf: &mut &[u8],
    context: &'static str,
    depth: u32,
) -> Result<(), DecodeError> {
    match wire_type {
        WT_VARINT => read_varint(buf, context).map(drop),
        WT_I64 => read_fixed64(buf, context).map(drop),
        WT_LEN => read_len_delimited(buf, context).map(drop),
        WT_I32 => read_fixed32(buf, context).map(drop),
        WT_START_GROUP => {
            if depth >= MAX_GROUP_DEPTH {
                return Err(DecodeError::NestingTooDeep {
                    limit: MAX_GROUP_DEPTH,
                    context,
                });
            }
            loop {
                if buf.is_empty() {
                    return Err(DecodeError::TruncatedVarint { context });
                }
                let key = read_varint(buf, context)?;
                let (inner_field, inner_wt) = split_key(key, context)?;
                if inner_wt == WT_END_GROUP {
                    if inner_field == field {
                        return Ok(());
                    }
                    return Err(DecodeError::UnexpectedEndGroup {
                        field: inner_field,
                        context,
                    });
                }
                skip_field(inner_field, inner_wt, buf, context, depth + 1)?;
            }
        }
        WT_END_GROUP => Err(DecodeError::UnexpectedEndGroup { field, context }),
        _ => Err(DecodeError::InvalidWireType {
            wire_type,
            field,
            context,
        }),
    }
}

/// Number of bytes `v` takes as a varint.
#[inline]
pub(crate) fn varint_len(v: u64) -> usize {
    // 1 + floor(log2(v|1) / 7)
    ((64 - (v | 1).leading_zeros() as usize) * 9 + 64) / 64
}

#[inline]
pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        put_varint(&mut out, v);
        out
    }

    #[test]
    fn varint_roundtrip_and_len() {
        let mut vals = vec![
            0u64,
            1,
            127,
            128,
            255,
            300,
            16383,
            16384,
            u64::MAX,
            i64::MIN as u64,
        ];
        for shift in 0..64 {
            vals.push(1u64 << shift);
            vals.push((1u64 << shift) - 1);
        }
        for v in vals {
            let e = enc(v);
            assert_eq!(e.len(), varint_len(v), "len of {v}");
            let mut b = &e[..];
            assert_eq!(read_varint(&mut b, "t").unwrap(), v);
            assert!(b.is_empty());
            // trailing bytes are left alone
            let mut with_tail = e.clone();
            with_tail.extend_from_slice(&[1, 2, 3]);
            let mut b = &with_tail[..];
            assert_eq!(read_varint(&mut b, "t").unwrap(), v);
            assert_eq!(b, &[1, 2, 3]);
        }
    }

    #[test]
    fn varint_non_minimal_accepted() {
        let mut b: &[u8] = &[0x81, 0x80, 0x80, 0x00];
        assert_eq!(read_varint(&mut b, "t").unwrap(), 1);
        assert!(b.is_empty());
    }

    #[test]
    fn varint_truncated_and_overflow() {
        let mut b: &[u8] = &[];
        assert_eq!(
            read_varint(&mut b, "x"),
            Err(DecodeError::TruncatedVarint { context: "x" })
        );
        let mut b: &[u8] = &[0x80, 0x80];
        assert_eq!(
            read_varint(&mut b, "x"),
            Err(DecodeError::TruncatedVarint { context: "x" })
        );
        // 11 bytes
        let mut b: &[u8] = &[0xff; 11];
        assert_eq!(
            read_varint(&mut b, "x"),
            Err(DecodeError::VarintOverflow { context: "x" })
        );
        // 10th byte with more than one payload bit
        let mut b: &[u8] = &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert_eq!(
            read_varint(&mut b, "x"),
            Err(DecodeError::VarintOverflow { context: "x" })
        );
        let mut b: &[u8] = &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(read_varint(&mut b, "x"), Ok(u64::MAX));
    }

    #[test]
    fn keys() {
        assert_eq!(split_key(0x0a, "c"), Ok((1, WT_LEN)));
        assert_eq!(split_key(0x78, "c"), Ok((15, WT_VARINT)));
        assert!(matches!(
            split_key(0x02, "c"),
            Err(DecodeError::InvalidKey { .. })
        ));
        assert!(matches!(
            split_key(1 << 32, "c"),
            Err(DecodeError::InvalidKey { .. })
        ));
        assert!(matches!(
            split_key(0x0e, "c"),
            Err(DecodeError::InvalidWireType { wire_type: 6, .. })
        ));
        assert!(matches!(
            split_key(0x0f, "c"),
            Err(DecodeError::InvalidWireType { wire_type: 7, .. })
        ));
    }

    fn skip(bytes: &[u8], field: u32, wt: u8) -> Result<usize, DecodeError> {
        let mut b = bytes;
        skip_field(field, wt, &mut b, "t", 0)?;
        Ok(bytes.len() - b.len())
    }

    #[test]
    fn skip_each_wire_type() {
        assert_eq!(skip(&[0x96, 0x01, 9], 1, WT_VARINT), Ok(2));
        assert_eq!(skip(&[1, 2, 3, 4, 5, 6, 7, 8, 9], 1, WT_I64), Ok(8));
        assert_eq!(skip(&[3, 1, 2, 3, 9], 1, WT_LEN), Ok(4));
        assert_eq!(skip(&[1, 2, 3, 4, 9], 1, WT_I32), Ok(4));
        // group 5 containing a varint field 1 and a nested group 6, then end 5
        let g = [0x08, 0x01, 0x33, 0x10, 0x02, 0x34, 0x2c, 0x99];
        assert_eq!(skip(&g, 5, WT_START_GROUP), Ok(7));
    }

    #[test]
    fn skip_errors() {
        assert!(matches!(
            skip(&[0x80], 1, WT_VARINT),
            Err(DecodeError::TruncatedVarint { .. })
        ));
        assert!(matches!(
            skip(&[1, 2, 3], 1, WT_I64),
            Err(DecodeError::Truncated {
                len: 8,
                remaining: 3,
                ..
            })
        ));
        assert!(matches!(
            skip(&[1, 2, 3], 1, WT_I32),
            Err(DecodeError::Truncated {
                len: 4,
                remaining: 3,
                ..
            })
        ));
        assert!(matches!(
            skip(&[5, 1], 1, WT_LEN),
            Err(DecodeError::Truncated {
                len: 5,
                remaining: 1,
                ..
            })
        ));
        // lone end group
        assert!(matches!(
            skip(&[], 1, WT_END_GROUP),
            Err(DecodeError::UnexpectedEndGroup { field: 1, .. })
        ));
        // group closed with the wrong field number
        assert!(matches!(
            skip(&[0x34], 5, WT_START_GROUP),
            Err(DecodeError::UnexpectedEndGroup { field: 6, .. })
        ));
        // unterminated group
        assert!(matches!(
            skip(&[0x08, 0x01], 5, WT_START_GROUP),
            Err(DecodeError::TruncatedVarint { .. })
        ));
        // invalid wire type number
        assert!(matches!(
            skip(&[], 1, 6),
            Err(DecodeError::InvalidWireType { .. })
        ));
        // group nested too deep: start groups without end
        let deep = vec![0x0b; 1000];
        assert!(matches!(
            skip(&deep, 1, WT_START_GROUP),
            Err(DecodeError::NestingTooDeep { .. })
        ));
    }
}
