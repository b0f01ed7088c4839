//! Snappy block-format (de)compression of remote write bodies.

use crate::DecodeError;

/// Magic that starts a snappy *framed* stream (stream identifier chunk).
const FRAMED_MAGIC: &[u8] = b"\xff\x06\x00\x00sNaPpY";

/// Decompresses a snappy block-format body.
///
/// The decoded length in the snappy header is checked before anything is
/// allocated: against what the body's size can possibly decode to (a body
/// that cannot is invalid, 400) and against `max_decoded_len` (a larger body
/// yields [`DecodeError::TooLarge`], 413).
pub fn decompress(body: &[u8], max_decoded_len: usize) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::new();
    decompress_into(body, max_decoded_len, &mut out)?;
    Ok(out)
}

/// Most bytes one byte of a snappy block can decode to: a copy element of
/// three bytes (tag and two-byte offset) repeats up to 64 bytes.
const MAX_EXPANSION_NUM: usize = 64;
const MAX_EXPANSION_DEN: usize = 3;

/// Like [`decompress`], but writes into `out` (replacing its contents) so a
/// caller can reuse one buffer across requests. Returns the decoded length.
///
/// The output is reserved once at the declared length and written by
/// appending, never zero-filled first: memory is only touched as the body
/// really decodes, so a body that lies about its length costs nothing.
pub fn decompress_into(
    body: &[u8],
    max_decoded_len: usize,
    out: &mut Vec<u8>,
) -> Result<usize, DecodeError> {
    decompress_block(body, max_decoded_len, out).map_err(|e| match e {
        DecodeError::Snappy(_) | DecodeError::SnappyImpossibleLength { .. }
            if body.starts_with(FRAMED_MAGIC) =>
        {
            DecodeError::SnappyFramed
        }
        e => e,
    })
}

fn decompress_block(
    body: &[u8],
    max_decoded_len: usize,
    out: &mut Vec<u8>,
) -> Result<usize, DecodeError> {
    out.clear();
    let (decoded_len, header_len) = read_header(body)?;
    let compressed_len = body.len() - header_len;
    let possible = compressed_len.saturating_mul(MAX_EXPANSION_NUM) / MAX_EXPANSION_DEN;
    if decoded_len > possible {
        return Err(DecodeError::SnappyImpossibleLength {
            decoded_len,
            compressed_len,
            possible,
        });
    }
    if decoded_len > max_decoded_len {
        return Err(DecodeError::TooLarge {
            decoded_len,
            max: max_decoded_len,
        });
    }
    out.reserve(decoded_len);
    if let Err(e) = decode_elements(&body[header_len..], decoded_len, out) {
        out.clear();
        return Err(e);
    }
    Ok(decoded_len)
}

/// The decoded length a snappy block's header announces, if it is one the
/// body could hold: to account for a body's memory before decoding it.
/// `None` for a header [`decompress`] refuses without allocating.
pub fn declared_len(body: &[u8]) -> Option<usize> {
    let (len, header_len) = read_header(body).ok()?;
    let possible = (body.len() - header_len).saturating_mul(MAX_EXPANSION_NUM) / MAX_EXPANSION_DEN;
    (len <= possible).then_some(len)
}

/// The decoded length (a varint of at most 32 bits) and the header's size.
fn read_header(body: &[u8]) -> Result<(usize, usize), DecodeError> {
    let mut value: u64 = 0;
    for (i, &b) in body.iter().enumerate().take(5) {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            if value > u64::from(u32::MAX) {
                break;
            }
            return Ok((value as usize, i + 1));
        }
    }
    Err(DecodeError::Snappy(
        "the header's decoded length is missing or larger than 4 GiB".to_string(),
    ))
}

/// Decodes the elements after the header, appending to `out` (empty, with
/// `want` bytes reserved). Fails rather than write past `want` bytes.
fn decode_elements(src: &[u8], want: usize, out: &mut Vec<u8>) -> Result<(), DecodeError> {
    let mut i = 0usize;
    while i < src.len() {
        let tag = src[i];
        i += 1;
        match tag & 0b11 {
            0 => {
                // Literal: length - 1 in the tag, or in 1 to 4 bytes after it.
                let mut len = usize::from(tag >> 2);
                if len >= 60 {
                    let n = len - 59;
                    let Some(bytes) = src.get(i..i + n) else {
                        return Err(DecodeError::Snappy(format!(
                            "literal length truncated at byte {i}"
                        )));
                    };
                    len = bytes
                        .iter()
                        .rev()
                        .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
                    i += n;
                }
                let len = len + 1;
                let Some(bytes) = src.get(i..i.saturating_add(len)) else {
                    return Err(DecodeError::Snappy(format!(
                        "literal of {len} bytes at byte {i} runs past the end of the body ({} bytes)",
                        src.len()
                    )));
                };
                if out.len() + len > want {
                    return Err(overrun(want));
                }
                out.extend_from_slice(bytes);
                i += len;
            }
            kind => {
                let (len, offset) = match kind {
                    1 => {
                        let Some(&b) = src.get(i) else {
                            return Err(truncated_copy(i));
                        };
                        i += 1;
                        (
                            4 + usize::from((tag >> 2) & 0b111),
                            (usize::from(tag >> 5) << 8) | usize::from(b),
                        )
                    }
                    2 => {
                        let Some(b) = src.get(i..i + 2) else {
                            return Err(truncated_copy(i));
                        };
                        i += 2;
                        (
                            1 + usize::from(tag >> 2),
                            usize::from(u16::from_le_bytes([b[0], b[1]])),
                        )
                    }
                    _ => {
                        let Some(b) = src.get(i..i + 4) else {
                            return Err(truncated_copy(i));
                        };
                        i += 4;
                        let offset = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                        (1 + usize::from(tag >> 2), offset as usize)
                    }
                };
                let have = out.len();
                if offset == 0 || offset > have {
                    return Err(DecodeError::Snappy(format!(
                        "copy at byte {i} refers {offset} bytes back, but only {have} bytes are decoded"
                    )));
                }
                if have + len > want {
                    return Err(overrun(want));
                }
                let start = have - offset;
                if offset >= len {
                    out.extend_from_within(start..start + len);
                } else {
                    // The copy overlaps what it writes: repeat the pattern.
                    let mut left = len;
                    while left > 0 {
                        let n = left.min(out.len() - start);
                        out.extend_from_within(start..start + n);
                        left -= n;
                    }
                }
            }
        }
    }
    if out.len() != want {
        return Err(DecodeError::Snappy(format!(
            "the body decodes to {} bytes, but its header announces {want}",
            out.len()
        )));
    }
    Ok(())
}

#[cold]
fn overrun(want: usize) -> DecodeError {
    DecodeError::Snappy(format!(
        "the body decodes to more bytes than its header announces ({want})"
    ))
}

#[cold]
fn truncated_copy(at: usize) -> DecodeError {
    DecodeError::Snappy(format!("copy element truncated at byte {at}"))
}

/// Compresses `raw` with snappy in block format (what remote write
/// senders must send).
///
/// # Panics
///
/// If `raw` is larger than snappy's block limit (about 4 GiB).
pub fn compress(raw: &[u8]) -> Vec<u8> {
    snap::raw::Encoder::new()
        .compress_vec(raw)
        .expect("snappy block input larger than 4 GiB")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        let data: Vec<u8> = (0..10_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let c = compress(&data);
        assert!(c.len() < data.len());
        assert_eq!(decompress(&c, data.len()).unwrap(), data);
        let mut buf = vec![1, 2, 3];
        assert_eq!(
            decompress_into(&c, usize::MAX, &mut buf).unwrap(),
            data.len()
        );
        assert_eq!(buf, data);
    }

    #[test]
    fn empty() {
        let c = compress(&[]);
        assert_eq!(decompress(&c, 0).unwrap(), Vec::<u8>::new());
    }

    #[test]
    fn limit_checked_before_allocation() {
        // A header claiming ~4 GiB followed by nothing: refused on what the
        // body could hold, without trying to allocate.
        let body = [0xff, 0xff, 0xff, 0xff, 0x0f];
        let err = decompress(&body, 1 << 20).unwrap_err();
        assert!(
            matches!(err, DecodeError::SnappyImpossibleLength { .. }),
            "{err:?}"
        );
        // A body that could decode to more than the limit: 413.
        let big = compress(&vec![0u8; 2 << 20]);
        let err = decompress(&big, 1 << 20).unwrap_err();
        assert_eq!(
            err,
            DecodeError::TooLarge {
                decoded_len: 2 << 20,
                max: 1 << 20
            }
        );
        assert!(err.is_too_large());
        assert!(err.to_string().contains("too large"), "{err}");

        let data = vec![7u8; 1001];
        let c = compress(&data);
        assert!(decompress(&c, 1000).unwrap_err().is_too_large());
        assert_eq!(decompress(&c, 1001).unwrap(), data);
    }

    #[test]
    fn decodes_what_the_reference_encoder_writes() {
        // Literals, short and long copies, overlapping runs, long literals.
        let mut inputs: Vec<Vec<u8>> = vec![
            b"a".to_vec(),
            vec![0u8; 100_000],
            (0..70_000u32).map(|i| (i * 7 % 13) as u8).collect(),
            (0..200_000u32)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
                .collect(),
        ];
        let mut text = Vec::new();
        for i in 0..5000 {
            text.extend_from_slice(format!("series{{job=\"j{}\",i=\"{i}\"}} ", i % 7).as_bytes());
        }
        inputs.push(text);
        for data in inputs {
            let c = compress(&data);
            assert_eq!(decompress(&c, data.len()).unwrap(), data);
            let reference = snap::raw::Decoder::new().decompress_vec(&c).unwrap();
            assert_eq!(reference, data);
        }
    }

    #[test]
    fn a_header_the_body_cannot_fill_is_refused_before_allocating() {
        // Ten bytes announcing 60 MiB: at most 21 bytes per 1 could follow.
        let mut body = Vec::new();
        let mut n = 60u32 << 20;
        while n >= 0x80 {
            body.push((n as u8) | 0x80);
            n >>= 7;
        }
        body.push(n as u8);
        body.resize(10, 0);
        let err = decompress(&body, 64 << 20).unwrap_err();
        assert!(
            matches!(err, DecodeError::SnappyImpossibleLength { .. }),
            "{err:?}"
        );
        assert!(!err.is_too_large());
        // A truncated valid body fails without writing past its header's
        // length, and leaves the reused buffer empty.
        let data = vec![9u8; 5000];
        let c = compress(&data);
        let mut out = vec![1, 2, 3];
        assert!(decompress_into(&c[..c.len() - 1], 1 << 20, &mut out).is_err());
        assert!(out.is_empty());
    }

    #[test]
    fn invalid_snappy() {
        for body in [
            &b"\x80"[..],
            &b"\x05\x00"[..],
            &b"hello world, this is not snappy"[..],
            &b"\x0a\xff\xff\xff"[..],
        ] {
            let err = decompress(body, 1 << 20).unwrap_err();
            assert!(matches!(err, DecodeError::Snappy(_)), "{body:?}: {err:?}");
            assert!(!err.is_too_large());
            assert!(err.to_string().starts_with("invalid snappy block"), "{err}");
        }
    }

    #[test]
    fn framed_format_rejected_with_hint() {
        let mut framed = Vec::new();
        {
            use std::io::Write;
            let mut w = snap::write::FrameEncoder::new(&mut framed);
            w.write_all(b"some remote write body").unwrap();
        }
        let err = decompress(&framed, 1 << 20).unwrap_err();
        assert_eq!(err, DecodeError::SnappyFramed);
        assert!(err.to_string().contains("block format"), "{err}");
    }
}
