//! Errors of the object format, the object stores and the chunk reads.

use std::path::PathBuf;
use std::sync::Arc;

/// Bytes that are not a well-formed object of the format in `docs/storage-format.md`.
///
/// Every variant names the object key, so a log line tells which object to look at.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// The magic bytes of a section are wrong: the bytes are not a chunk object, or were read
    /// from the wrong place.
    #[error(
        "object {object}: the {section} does not start with the expected magic bytes; \
         the key does not name a strata chunk object, or the offsets used to read it are wrong"
    )]
    BadMagic {
        object: String,
        section: &'static str,
    },

    /// The object was written in a format version this build does not read.
    #[error(
        "object {object} has format version {version}, this build reads only version \
         {supported}; an object of an older (pre-release) version must be rewritten, a newer \
         one needs a strata release that reads version {version}"
    )]
    UnsupportedVersion {
        object: String,
        version: u8,
        supported: u8,
    },

    /// A section ends before the data it announces.
    #[error(
        "object {object}: the {section} is cut short ({needed} bytes needed, {available} \
         available); the object was truncated or read with a wrong offset or length"
    )]
    Truncated {
        object: String,
        section: &'static str,
        needed: u64,
        available: u64,
    },

    /// A chunk record's bytes do not match its checksum (or its reference).
    #[error(
        "object {object}: the chunk record at offset {offset} fails its crc32 check; the \
         stored object is corrupt, read the chunk from another replica's object or rewrite it"
    )]
    Checksum { object: String, offset: u64 },

    /// The index section's bytes do not match its checksum.
    #[error(
        "object {object}: the index section fails its crc32 check; the stored object is \
         corrupt or the index offset and length used to read it are wrong"
    )]
    IndexChecksum { object: String },

    /// The footer's bytes do not match its checksum.
    #[error(
        "object {object}: the footer fails its crc32 check; the object is corrupt or was \
         truncated"
    )]
    FooterChecksum { object: String },

    /// Checksums match but the content breaks a rule of the format (unsorted series, labels
    /// that are not UTF-8, ...): the writer was broken.
    #[error("object {object} is malformed: {reason}; rewrite the object with a fixed writer")]
    Malformed { object: String, reason: String },
}

/// A failed object store operation.
///
/// Cloneable so that one failed ranged read can be reported for every chunk it covered.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// No object has this key.
    #[error("object {key} not found; check the key, or whether the object was deleted")]
    NotFound { key: String },

    /// A local file operation failed.
    #[error("{operation} {path}: {source}")]
    Io {
        operation: &'static str,
        path: PathBuf,
        #[source]
        source: Arc<std::io::Error>,
    },

    /// An S3 call failed; `message` carries the SDK's error chain.
    #[error("s3 {operation} {bucket}/{key}: {message}")]
    S3 {
        operation: &'static str,
        bucket: String,
        key: String,
        message: String,
    },

    /// The key cannot name an object.
    #[error("invalid object key {key:?}: {reason}")]
    InvalidKey { key: String, reason: &'static str },

    /// The store's configuration cannot work.
    #[error("invalid object store configuration: {0}")]
    InvalidConfig(String),
}

impl StoreError {
    pub(crate) fn io(operation: &'static str, path: impl Into<PathBuf>, e: std::io::Error) -> Self {
        StoreError::Io {
            operation,
            path: path.into(),
            source: Arc::new(e),
        }
    }

    /// Whether this is [`StoreError::NotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, StoreError::NotFound { .. })
    }
}

/// A chunk that could not be fetched.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FetchError {
    /// The chunk's bytes were read but do not match its reference (checksum, length or
    /// encoding), or the object ended before the chunk.
    #[error(
        "chunk at offset {offset} of object {object} is corrupt (checksum or length mismatch); \
         read it from another replica or rewrite the object"
    )]
    Corrupt { object: String, offset: u64 },

    /// Reading from the object store failed.
    #[error(transparent)]
    Store(#[from] StoreError),

    /// An object's footer or index is not well-formed.
    #[error(transparent)]
    Format(#[from] FormatError),
}
