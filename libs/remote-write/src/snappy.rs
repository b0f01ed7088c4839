//! Snappy block-format (de)compression of remote write bodies.

use crate::DecodeError;

/// Magic that starts a snappy *framed* stream (stream identifier chunk).
const FRAMED_MAGIC: &[u8] = b"\xff\x06\x00\x00sNaPpY";

/// Decompresses a snappy block-format body.
///
/// The decoded length in the snappy header is checked against
/// `max_decoded_len` before anything is allocated; a larger body yields
/// [`DecodeError::TooLarge`] (HTTP 413).
pub fn decompress(body: &[u8], max_decoded_len: usize) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::new();
    decompress_into(body, max_decoded_len, &mut out)?;
    Ok(out)
}

/// Like [`decompress`], but writes into `out` (replacing its contents) so a
/// caller can reuse one buffer across requests. Returns the decoded length.
pub fn decompress_into(
    body: &[u8],
    max_decoded_len: usize,
    out: &mut Vec<u8>,
) -> Result<usize, DecodeError> {
    out.clear();
    let decoded_len = snap::raw::decompress_len(body).map_err(|e| snappy_error(body, e))?;
    if decoded_len > max_decoded_len {
        return Err(DecodeError::TooLarge {
            decoded_len,
            max: max_decoded_len,
        });
    }
    out.resize(decoded_len, 0);
    match snap::raw::Decoder::new().decompress(body, out) {
        Ok(n) => {
            out.truncate(n);
            Ok(n)
        }
        Err(e) => {
            out.clear();
            Err(snappy_error(body, e))
        }
    }
}

#[cold]
fn snappy_error(body: &[u8], e: snap::Error) -> DecodeError {
    if body.starts_with(FRAMED_MAGIC) {
        DecodeError::SnappyFramed
    } else {
        DecodeError::Snappy(e)
    }
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
        // A header claiming ~4 GiB followed by nothing: must fail on the
        // limit without trying to allocate.
        let body = [0xff, 0xff, 0xff, 0xff, 0x0f];
        let err = decompress(&body, 1 << 20).unwrap_err();
        assert_eq!(
            err,
            DecodeError::TooLarge {
                decoded_len: u32::MAX as usize,
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
