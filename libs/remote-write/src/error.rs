//! Error type shared by snappy decompression and protobuf decoding.

/// Everything that can go wrong while turning a remote write body into a
/// [`WriteRequestRef`](crate::WriteRequestRef).
///
/// Messages are lowercase and say what is wrong with the request, so the
/// HTTP layer can put them verbatim into a 400 response body. Use
/// [`DecodeError::is_too_large`] to pick 413 instead of 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The snappy header announces more decoded bytes than allowed.
    #[error("request too large: snappy body decodes to {decoded_len} bytes, limit is {max} bytes")]
    TooLarge {
        /// Decoded length read from the snappy block header.
        decoded_len: usize,
        /// Configured limit.
        max: usize,
    },

    /// The body uses the snappy *framed* (stream) format.
    #[error("invalid snappy body: the framed (stream) format is not supported, remote write requires the snappy block format")]
    SnappyFramed,

    /// The body is not a valid snappy block.
    #[error("invalid snappy block: {0}")]
    Snappy(String),

    /// The snappy header announces more bytes than the body's size can
    /// possibly decode to (a copy element of 3 bytes yields at most 64).
    #[error("invalid snappy block: the header announces {decoded_len} decoded bytes, but {compressed_len} compressed bytes decode to at most {possible}")]
    SnappyImpossibleLength {
        /// Decoded length read from the snappy block header.
        decoded_len: usize,
        /// Bytes after the header.
        compressed_len: usize,
        /// Most bytes those can decode to.
        possible: usize,
    },

    /// A length-delimited field or fixed-width value runs past the end of
    /// its enclosing message.
    #[error("truncated protobuf: length {len} exceeds remaining {remaining} bytes in {context}")]
    Truncated {
        /// Bytes the field claims (or needs).
        len: u64,
        /// Bytes actually left in the enclosing message.
        remaining: usize,
        /// Where in the message tree the problem was found.
        context: &'static str,
    },

    /// A varint ends at the end of its enclosing message.
    #[error("truncated protobuf: unterminated varint in {context}")]
    TruncatedVarint {
        /// Where in the message tree the problem was found.
        context: &'static str,
    },

    /// A varint is longer than 10 bytes or overflows 64 bits.
    #[error("malformed protobuf: varint overflows 64 bits in {context}")]
    VarintOverflow {
        /// Where in the message tree the problem was found.
        context: &'static str,
    },

    /// A field key does not fit in 32 bits or has field number 0.
    #[error("malformed protobuf: invalid field key {key:#x} in {context}")]
    InvalidKey {
        /// The raw key varint.
        key: u64,
        /// Where in the message tree the problem was found.
        context: &'static str,
    },

    /// Wire types 6 and 7 do not exist.
    #[error("malformed protobuf: invalid wire type {wire_type} for field {field} in {context}")]
    InvalidWireType {
        /// The raw wire type.
        wire_type: u8,
        /// Field number.
        field: u32,
        /// Where in the message tree the problem was found.
        context: &'static str,
    },

    /// A known field is encoded with a wire type that does not match its
    /// declared type (for example a sample value sent as a varint).
    #[error(
        "malformed protobuf: field {field} ({name}) has wire type {wire_type}, expected {expected}"
    )]
    WrongWireType {
        /// Field number.
        field: u32,
        /// `message.field` name from the schema.
        name: &'static str,
        /// Wire type found.
        wire_type: u8,
        /// Wire type the schema requires.
        expected: u8,
    },

    /// An end-group tag without a matching start-group tag, or with a
    /// different field number.
    #[error("malformed protobuf: unexpected end-group tag for field {field} in {context}")]
    UnexpectedEndGroup {
        /// Field number of the end-group tag.
        field: u32,
        /// Where in the message tree the problem was found.
        context: &'static str,
    },

    /// Unknown (deprecated) groups nested deeper than the decoder allows.
    #[error("malformed protobuf: groups nested deeper than {limit} levels in {context}")]
    NestingTooDeep {
        /// Maximum nesting depth.
        limit: u32,
        /// Where in the message tree the problem was found.
        context: &'static str,
    },

    /// A string field is not valid UTF-8.
    #[error("invalid utf-8 in {field}")]
    InvalidUtf8 {
        /// Schema name of the string field, e.g. `label name`.
        field: &'static str,
    },

    /// More than `u32::MAX` labels, samples, exemplars or histograms in one
    /// request (only reachable with multi-gigabyte bodies).
    #[error(
        "request too large: more than {} {what} in one write request",
        u32::MAX
    )]
    TooManyItems {
        /// What overflowed (`labels`, `samples`, ...).
        what: &'static str,
    },
}

impl DecodeError {
    /// True when the request should be rejected with 413 (payload too large)
    /// rather than 400.
    pub fn is_too_large(&self) -> bool {
        matches!(
            self,
            DecodeError::TooLarge { .. } | DecodeError::TooManyItems { .. }
        )
    }
}
