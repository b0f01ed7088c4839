use std::path::PathBuf;

/// Errors of the write-ahead log.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("write-ahead log {path}: {operation} failed: {source}; check the volume (space, permissions)")]
    Io {
        operation: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "record of {len} bytes is larger than the write-ahead log takes ({max} bytes); split it"
    )]
    RecordTooLarge { len: usize, max: usize },
    #[error("write-ahead log {path} is locked by another process ({source}); give each process its own data directory")]
    Locked {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the write-ahead log is closed (the ingester is shutting down)")]
    Closed,
    #[error("the write-ahead log writer failed earlier and refuses further appends: {0}")]
    Failed(String),
}

impl WalError {
    pub(crate) fn io(
        operation: &'static str,
        path: &std::path::Path,
        source: std::io::Error,
    ) -> Self {
        WalError::Io {
            operation,
            path: path.to_path_buf(),
            source,
        }
    }
}
