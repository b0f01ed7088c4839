use thiserror::Error;

#[derive(Debug, Error)]
pub enum IngesterError {
    #[error("invalid push request: {0}")]
    Decode(#[from] strata_remote_write::DecodeError),
    #[error("invalid tenant: {0}")]
    Tenant(#[from] strata_model::TenantError),
    #[error("invalid matcher: {0}")]
    Matcher(#[from] strata_model::MatcherError),
    #[error("ingester holds {limit} series, the most it is configured for; retry later or add ingesters")]
    InstanceSeriesLimit { limit: usize },
    #[error("ingester holds {limit} tenants, the most it is configured for; retry later or add ingesters")]
    InstanceTenantLimit { limit: usize },
    #[error("ingester holds {bytes} bytes of chunks waiting for long-term storage, over its limit of {limit} (ingester.max_unflushed_bytes); retry later")]
    FlushBacklog { bytes: usize, limit: usize },
    #[error("write-ahead log: {0}")]
    Wal(String),
}

impl From<IngesterError> for tonic::Status {
    fn from(err: IngesterError) -> Self {
        match &err {
            IngesterError::Decode(_) | IngesterError::Tenant(_) | IngesterError::Matcher(_) => {
                tonic::Status::invalid_argument(err.to_string())
            }
            IngesterError::InstanceSeriesLimit { .. }
            | IngesterError::InstanceTenantLimit { .. }
            | IngesterError::FlushBacklog { .. }
            | IngesterError::Wal(_) => tonic::Status::unavailable(err.to_string()),
        }
    }
}
