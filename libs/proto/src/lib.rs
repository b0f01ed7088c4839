//! Protobuf messages and the ingester gRPC service, generated from `proto/`.
//!
//! [`RawWriteRequest`] stands in for `prometheus.WriteRequest` on the push
//! RPC: it holds the encoded message bytes, so the distributor can forward
//! the series it validated without re-encoding them, and the ingester can
//! decode them without allocating a string per label.

#![allow(deprecated)] // prost::DecodeError::new is the only way to report a custom decode error

use bytes::{Buf, BufMut, Bytes, BytesMut};
use prost::encoding::{decode_varint, encode_key, encode_varint, DecodeContext, WireType};

pub mod prometheus {
    include!(concat!(env!("OUT_DIR"), "/prometheus.rs"));
}

/// Modules nest like the protobuf packages (`strata.ingester`), so the
/// generated cross-package paths resolve.
pub mod strata {
    pub mod ingester {
        include!(concat!(env!("OUT_DIR"), "/strata.ingester.rs"));
    }
}

pub use strata::ingester;

pub mod convert;

/// The metadata key that carries the tenant ID between services.
pub const TENANT_METADATA_KEY: &str = "x-scope-orgid";

/// An encoded `prometheus.WriteRequest`, carried as opaque bytes.
#[derive(Clone, Default, PartialEq)]
pub struct RawWriteRequest(pub Bytes);

impl std::fmt::Debug for RawWriteRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RawWriteRequest({} bytes)", self.0.len())
    }
}

impl RawWriteRequest {
    pub fn new(bytes: impl Into<Bytes>) -> Self {
        Self(bytes.into())
    }
}

fn copy_exact(
    buf: &mut impl Buf,
    out: &mut BytesMut,
    len: usize,
) -> Result<(), prost::DecodeError> {
    if buf.remaining() < len {
        return Err(prost::DecodeError::new("buffer underflow"));
    }
    out.reserve(len);
    let mut left = len;
    while left > 0 {
        let chunk = buf.chunk();
        let n = chunk.len().min(left);
        out.extend_from_slice(&chunk[..n]);
        buf.advance(n);
        left -= n;
    }
    Ok(())
}

impl prost::Message for RawWriteRequest {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        buf.put_slice(&self.0);
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        _ctx: DecodeContext,
    ) -> Result<(), prost::DecodeError> {
        // Re-emit the field exactly as it arrived.
        let mut out = BytesMut::from(std::mem::take(&mut self.0));
        encode_key(tag, wire_type, &mut out);
        match wire_type {
            WireType::Varint => {
                let value = decode_varint(buf)?;
                encode_varint(value, &mut out);
            }
            WireType::SixtyFourBit => copy_exact(buf, &mut out, 8)?,
            WireType::ThirtyTwoBit => copy_exact(buf, &mut out, 4)?,
            WireType::LengthDelimited => {
                let len = decode_varint(buf)?;
                let len = usize::try_from(len)
                    .map_err(|_| prost::DecodeError::new("length does not fit in memory"))?;
                encode_varint(len as u64, &mut out);
                copy_exact(buf, &mut out, len)?;
            }
            WireType::StartGroup | WireType::EndGroup => {
                return Err(prost::DecodeError::new("groups are not supported"));
            }
        }
        self.0 = out.freeze();
        Ok(())
    }

    fn encoded_len(&self) -> usize {
        self.0.len()
    }

    fn clear(&mut self) {
        self.0 = Bytes::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn raw_write_request_round_trips_generated_encoding() {
        let req = prometheus::TimeSeries {
            labels: vec![prometheus::Label {
                name: "__name__".into(),
                value: "up".into(),
            }],
            samples: vec![prometheus::Sample {
                value: 1.0,
                timestamp: 1000,
            }],
            exemplars: vec![],
            histograms: vec![],
        };
        // A WriteRequest with one series, encoded by hand: field 1, bytes.
        let series = req.encode_to_vec();
        let mut wire = Vec::new();
        encode_key(1, WireType::LengthDelimited, &mut wire);
        encode_varint(series.len() as u64, &mut wire);
        wire.extend_from_slice(&series);

        let raw = RawWriteRequest::decode(wire.as_slice()).expect("decodes");
        assert_eq!(raw.0.as_ref(), wire.as_slice());
        assert_eq!(raw.encode_to_vec(), wire);
    }

    #[test]
    fn raw_write_request_rejects_truncated_input() {
        let mut wire = Vec::new();
        encode_key(1, WireType::LengthDelimited, &mut wire);
        encode_varint(100, &mut wire);
        wire.extend_from_slice(&[0u8; 10]);
        assert!(RawWriteRequest::decode(wire.as_slice()).is_err());
    }
}
