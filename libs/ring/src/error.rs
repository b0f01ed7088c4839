//! Errors returned by the ring crate.

/// A boxed error from a storage backend, kept so the cause chain survives.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong while reading, writing or using the ring.
#[derive(Debug, thiserror::Error)]
pub enum RingError {
    /// A conditional write or delete found a different version than the caller expected
    /// (or found the item present when it had to be absent, or absent when it had to be present).
    /// The caller should re-read and retry.
    #[error("conflicting update of ring instance {id}")]
    Conflict { id: String },

    /// The ring has no instance usable for the requested operation.
    #[error("ring is empty")]
    EmptyRing,

    /// Fewer healthy replicas than a quorum needs.
    #[error("too many unhealthy instances: need at least {needed} healthy, found {healthy}")]
    TooManyUnhealthy { needed: usize, healthy: usize },

    /// With zone awareness, more zones contain unhealthy instances than the replication
    /// factor tolerates.
    #[error(
        "too many zones with unhealthy instances: {failed} failed, at most {tolerated} tolerated"
    )]
    TooManyFailedZones { failed: usize, tolerated: usize },

    /// The configuration cannot work (for example a replication factor of zero).
    #[error("invalid ring configuration: {0}")]
    InvalidConfig(String),

    /// The tokens file could not be read or written.
    #[error("tokens file {path}: {source}")]
    TokensFile {
        path: String,
        #[source]
        source: std::io::Error,
    },

    /// A stored value could not be encoded or decoded.
    #[error("ring serialization: {0}")]
    Serialization(#[from] serde_json::Error),

    /// The storage backend failed (network, throttling, ...). Usually retryable.
    #[error("ring store: {0}")]
    Store(#[source] BoxError),
}

impl RingError {
    /// Wraps any backend error as [`RingError::Store`].
    pub fn store<E>(err: E) -> Self
    where
        E: Into<BoxError>,
    {
        RingError::Store(err.into())
    }

    /// Whether this is a [`RingError::Conflict`].
    pub fn is_conflict(&self) -> bool {
        matches!(self, RingError::Conflict { .. })
    }
}
