use axum::http::StatusCode;
use thiserror::Error;

/// Why a push failed, with the HTTP status the sender gets.
#[derive(Debug, Error)]
pub enum PushError {
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    RateLimited(String),
    /// Too much work in flight in this process; the sender should retry
    /// after `Retry-After`.
    #[error("{0}")]
    Overloaded(String),
    /// A quorum of ingesters could not be reached; the sender should retry.
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
    /// The push came from an HA replica that is not the elected one: it is
    /// dropped and answered 202, so the sender does not retry it (as
    /// Cortex does).
    #[error("{0}")]
    Deduplicated(String),
}

impl PushError {
    pub fn status(&self) -> StatusCode {
        match self {
            PushError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            PushError::BadRequest(_) => StatusCode::BAD_REQUEST,
            PushError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            PushError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            PushError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            PushError::Unavailable(_) | PushError::Overloaded(_) => StatusCode::SERVICE_UNAVAILABLE,
            PushError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            PushError::Deduplicated(_) => StatusCode::ACCEPTED,
        }
    }
}

impl From<strata_server::admission::Refusal> for PushError {
    fn from(r: strata_server::admission::Refusal) -> Self {
        PushError::Overloaded(r.to_string())
    }
}
