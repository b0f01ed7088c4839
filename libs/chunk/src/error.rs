/// Errors produced while decoding, validating or appending to XOR chunks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    /// The data is shorter than the 2-byte sample count header.
    #[error("chunk data too short: {len} bytes, the header alone needs 2")]
    TooShort {
        /// Length of the data that was given.
        len: usize,
    },
    /// The bit stream ended before all samples announced by the header were decoded.
    #[error("chunk data ends inside sample {sample} of {total}")]
    UnexpectedEof {
        /// Zero-based index of the sample being decoded.
        sample: u16,
        /// Sample count from the header.
        total: u16,
    },
    /// A timestamp varint is longer than 10 bytes or does not fit in 64 bits.
    #[error("timestamp varint overflows 64 bits in sample {sample}")]
    VarintOverflow {
        /// Zero-based index of the sample being decoded.
        sample: u16,
    },
    /// A value's XOR window does not fit in 64 bits (leading zeros + significant bits > 64).
    #[error("invalid XOR window in sample {sample}: {leading} leading zeros + {sigbits} significant bits > 64")]
    InvalidXorWindow {
        /// Zero-based index of the sample being decoded.
        sample: u16,
        /// Leading-zero count read from the stream.
        leading: u8,
        /// Significant-bit count read from the stream (0 already mapped to 64).
        sigbits: u8,
    },
    /// Whole bytes follow the last encoded sample.
    #[error("{extra} unexpected trailing bytes after the last sample")]
    TrailingData {
        /// Number of surplus bytes.
        extra: usize,
    },
    /// The chunk already holds `u16::MAX` samples; the header cannot count more.
    #[error("chunk is full ({} samples)", u16::MAX)]
    Full,
}
