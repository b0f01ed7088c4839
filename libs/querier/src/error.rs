use http::StatusCode;
use strata_promql::QueryError;
use thiserror::Error;

/// The `errorType` values of Prometheus's HTTP API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorType {
    BadData,
    Execution,
    Timeout,
    Canceled,
    Unavailable,
    Internal,
    NotFound,
}

impl ErrorType {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorType::BadData => "bad_data",
            ErrorType::Execution => "execution",
            ErrorType::Timeout => "timeout",
            ErrorType::Canceled => "canceled",
            ErrorType::Unavailable => "unavailable",
            ErrorType::Internal => "internal",
            ErrorType::NotFound => "not_found",
        }
    }

    /// The HTTP status Prometheus answers with for this error type.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorType::BadData => StatusCode::BAD_REQUEST,
            ErrorType::Execution => StatusCode::UNPROCESSABLE_ENTITY,
            // Prometheus's "client closed connection" status.
            ErrorType::Canceled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
            ErrorType::Timeout | ErrorType::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorType::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorType::NotFound => StatusCode::NOT_FOUND,
        }
    }

    fn from_name(name: &str) -> ErrorType {
        match name {
            "bad_data" => ErrorType::BadData,
            "execution" => ErrorType::Execution,
            "timeout" => ErrorType::Timeout,
            "canceled" => ErrorType::Canceled,
            "unavailable" => ErrorType::Unavailable,
            "not_found" => ErrorType::NotFound,
            _ => ErrorType::Internal,
        }
    }
}

/// An error answered by the query API: `{"status":"error","errorType":...,"error":...}`.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("{message}")]
pub struct ApiError {
    pub typ: ErrorType,
    pub message: String,
    /// Replaces the status of `typ` (401 for a missing tenant).
    pub status: Option<StatusCode>,
}

impl ApiError {
    pub fn new(typ: ErrorType, message: impl Into<String>) -> Self {
        Self {
            typ,
            message: message.into(),
            status: None,
        }
    }

    pub fn bad_data(message: impl Into<String>) -> Self {
        Self::new(ErrorType::BadData, message)
    }

    /// Prometheus's `invalid parameter "<name>": <reason>`.
    pub fn invalid_param(name: &str, reason: impl std::fmt::Display) -> Self {
        Self::bad_data(format!("invalid parameter {name:?}: {reason}"))
    }

    pub fn status(&self) -> StatusCode {
        self.status.unwrap_or_else(|| self.typ.status())
    }
}

impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> Self {
        ApiError::new(ErrorType::from_name(e.error_type()), e.to_string())
    }
}

/// Errors of reads from the ingesters.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum QuerierError {
    /// Too many ingesters failed or are unhealthy for a complete answer.
    #[error("{0}")]
    Unavailable(String),
    /// The query would hold more than `max_samples` samples.
    #[error("query processing would load too many samples into memory in {0}")]
    TooManySamples(String),
    /// The query selects more series than `max_series` allows.
    #[error("the query hit the max number of series limit (limit: {0} series); narrow the selectors or raise querier.max_series")]
    TooManySeries(usize),
    #[error("query timed out in {0}")]
    Timeout(String),
    /// A memory budget would be exceeded; the message names it (422).
    #[error("{0}")]
    MemoryLimit(String),
    /// The tenant's queries fill its slots and its queue (429).
    #[error("{0}")]
    TooManyQueries(String),
    /// The process's query slots and queue are full (503).
    #[error("{0}")]
    Overloaded(String),
    /// A per-query limit on what may be read from long-term storage.
    #[error("{0}")]
    StoreLimit(String),
    #[error("{0}")]
    Internal(String),
}

impl From<strata_store::StoreError> for QuerierError {
    fn from(e: strata_store::StoreError) -> Self {
        use strata_store::StoreError as S;
        match e {
            e if e.is_limit() => QuerierError::StoreLimit(e.to_string()),
            e @ S::Corrupt { .. } => QuerierError::Internal(e.to_string()),
            e @ S::Config(_) => QuerierError::Internal(e.to_string()),
            e => QuerierError::Unavailable(format!("long-term storage: {e}")),
        }
    }
}

impl From<QuerierError> for ApiError {
    fn from(e: QuerierError) -> Self {
        if let QuerierError::TooManyQueries(_) = &e {
            let mut api = ApiError::new(ErrorType::Unavailable, e.to_string());
            api.status = Some(StatusCode::TOO_MANY_REQUESTS);
            return api;
        }
        let typ = match &e {
            QuerierError::TooManyQueries(_) | QuerierError::Overloaded(_) => ErrorType::Unavailable,
            QuerierError::Unavailable(_) => ErrorType::Unavailable,
            QuerierError::TooManySamples(_)
            | QuerierError::MemoryLimit(_)
            | QuerierError::TooManySeries(_)
            | QuerierError::StoreLimit(_) => ErrorType::Execution,
            QuerierError::Timeout(_) => ErrorType::Timeout,
            QuerierError::Internal(_) => ErrorType::Internal,
        };
        ApiError::new(typ, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_promql::StorageError;

    #[test]
    fn status_codes_follow_prometheus() {
        let cases = [
            (ErrorType::BadData, 400),
            (ErrorType::Execution, 422),
            (ErrorType::Canceled, 499),
            (ErrorType::Timeout, 503),
            (ErrorType::Unavailable, 503),
            (ErrorType::Internal, 500),
            (ErrorType::NotFound, 404),
        ];
        for (typ, code) in cases {
            assert_eq!(typ.status().as_u16(), code, "{}", typ.as_str());
        }
    }

    #[test]
    fn engine_errors_keep_their_type() {
        let cases: Vec<(QueryError, &str, u16)> = vec![
            (
                QueryError::BadData("1:1: parse error".into()),
                "bad_data",
                400,
            ),
            (QueryError::Execution("boom".into()), "execution", 422),
            (
                QueryError::TooManySamples("query execution".into()),
                "execution",
                422,
            ),
            (
                QueryError::Timeout("query execution".into()),
                "timeout",
                503,
            ),
            (
                QueryError::Storage(StorageError::Unavailable("down".into())),
                "unavailable",
                503,
            ),
        ];
        for (err, typ, code) in cases {
            let msg = err.to_string();
            let api = ApiError::from(err);
            assert_eq!(api.typ.as_str(), typ);
            assert_eq!(api.status().as_u16(), code);
            assert_eq!(api.message, msg);
        }
    }

    #[test]
    fn querier_errors_map_to_api_types() {
        let api = ApiError::from(QuerierError::Unavailable("2 of 3 ingesters failed".into()));
        assert_eq!(
            (api.typ, api.status().as_u16()),
            (ErrorType::Unavailable, 503)
        );
        let api = ApiError::from(QuerierError::TooManySamples("query execution".into()));
        assert_eq!(api.typ, ErrorType::Execution);
        assert_eq!(
            api.message,
            "query processing would load too many samples into memory in query execution"
        );
        let api = ApiError::from(QuerierError::Timeout("query execution".into()));
        assert_eq!(
            (api.typ, api.message.as_str()),
            (ErrorType::Timeout, "query timed out in query execution")
        );
    }

    #[test]
    fn invalid_param_message() {
        let e = ApiError::invalid_param("start", "cannot parse \"x\" to a valid timestamp");
        assert_eq!(
            e.message,
            "invalid parameter \"start\": cannot parse \"x\" to a valid timestamp"
        );
        assert_eq!(e.status().as_u16(), 400);
    }
}
