use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("{0}")]
    Config(String),
    #[error("chunk store: {0}")]
    Objects(#[from] strata_chunk_store::StoreError),
    #[error("index: {0}")]
    Index(#[from] strata_index::IndexError),
    #[error("chunk object {object} is corrupt: {detail}; the data cannot be read from long-term storage")]
    Corrupt { object: String, detail: String },
    #[error("reading chunks from long-term storage failed: {0}")]
    Fetch(String),
    #[error("the query would fetch more than {limit} chunks from long-term storage (storage.limits.max_chunks_per_query); narrow the time range or the selector, or raise the limit")]
    TooManyChunks { limit: usize },
    #[error("the query would fetch more than {limit} bytes of chunks from long-term storage (storage.limits.max_chunk_bytes_per_query); narrow the time range or the selector, or raise the limit")]
    TooManyBytes { limit: usize },
}

impl StoreError {
    /// A per-query limit, which the client can avoid (422), rather than a
    /// failure of the store.
    pub fn is_limit(&self) -> bool {
        matches!(
            self,
            StoreError::TooManyChunks { .. } | StoreError::TooManyBytes { .. }
        )
    }
}
