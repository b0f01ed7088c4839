//! PromQL evaluation with Prometheus 3 semantics.
//!
//! The engine is synchronous and storage-agnostic: a caller first asks
//! [`Engine::select_requests`] which series data a query needs, loads it
//! (for the querier: from ingesters over gRPC), hands it over as a
//! [`Storage`], and evaluates with [`Engine::instant`] or [`Engine::range`].
//!
//! STATUS: interface only; the evaluator is being written (issue 3).

pub mod mathfn;
pub mod rangefn;

use std::time::Duration;

use strata_model::{Labels, Matcher};
use thiserror::Error;

/// One series with its samples, oldest first (timestamps in ms).
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub labels: Labels,
    pub samples: Vec<(i64, f64)>,
}

/// Data a query needs: the series matching `matchers` with samples in
/// `[start_ms, end_ms]`.
#[derive(Clone, Debug, PartialEq)]
pub struct SelectRequest {
    pub matchers: Vec<Matcher>,
    pub start_ms: i64,
    pub end_ms: i64,
}

#[derive(Debug, Error)]
pub enum StorageError {
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

/// Where the engine reads series from.
pub trait Storage: Send + Sync {
    /// Series matching every matcher with samples in `[start_ms, end_ms]`;
    /// samples outside the range may be included.
    fn select(&self, request: &SelectRequest) -> Result<Vec<Series>, StorageError>;
}

/// Limits and semantics of evaluation.
#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// How far back an instant selector looks for a sample (Prometheus: 5m).
    pub lookback_delta: Duration,
    /// Most samples a query may hold in memory at once.
    pub max_samples: usize,
    pub timeout: Duration,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            lookback_delta: Duration::from_secs(300),
            max_samples: 50_000_000,
            timeout: Duration::from_secs(120),
        }
    }
}

/// A query result, as Prometheus's API returns them.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Scalar { t: i64, v: f64 },
    String { t: i64, v: String },
    /// One sample per series at the evaluation time.
    Vector(Vec<VectorSample>),
    Matrix(Vec<Series>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct VectorSample {
    pub labels: Labels,
    pub t: i64,
    pub v: f64,
}

/// Errors, with the Prometheus API error type each maps to.
#[derive(Debug, Error)]
pub enum QueryError {
    /// `bad_data`: the query does not parse or is not valid.
    #[error("{0}")]
    BadData(String),
    /// `execution`: evaluation failed.
    #[error("{0}")]
    Execution(String),
    /// `timeout`.
    #[error("query timed out in {0}")]
    Timeout(String),
    /// `execution`, Prometheus's message for the sample limit.
    #[error("query processing would load too many samples into memory in {0}")]
    TooManySamples(String),
    /// `unavailable`: storage could not answer.
    #[error("{0}")]
    Storage(#[from] StorageError),
}

impl QueryError {
    /// The `errorType` of Prometheus's API.
    pub fn error_type(&self) -> &'static str {
        match self {
            QueryError::BadData(_) => "bad_data",
            QueryError::Execution(_) | QueryError::TooManySamples(_) => "execution",
            QueryError::Timeout(_) => "timeout",
            QueryError::Storage(_) => "unavailable",
        }
    }
}

pub struct Engine {
    options: EngineOptions,
}

impl Engine {
    pub fn new(options: EngineOptions) -> Self {
        Self { options }
    }

    pub fn options(&self) -> &EngineOptions {
        &self.options
    }

    /// The data a query evaluated over `[start_ms, end_ms]` needs (an
    /// instant query has `start_ms == end_ms`).
    pub fn select_requests(
        &self,
        query: &str,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<SelectRequest>, QueryError> {
        let _ = (query, start_ms, end_ms);
        Err(QueryError::Execution("the PromQL engine is not implemented yet".into()))
    }

    pub fn instant(&self, storage: &dyn Storage, query: &str, time_ms: i64) -> Result<Value, QueryError> {
        let _ = (storage, query, time_ms);
        Err(QueryError::Execution("the PromQL engine is not implemented yet".into()))
    }

    /// Evaluates at `start_ms, start_ms + step_ms, …, ≤ end_ms`; the result
    /// is a matrix (or an error for string results, as Prometheus).
    pub fn range(
        &self,
        storage: &dyn Storage,
        query: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<Value, QueryError> {
        let _ = (storage, query, start_ms, end_ms, step_ms);
        Err(QueryError::Execution("the PromQL engine is not implemented yet".into()))
    }
}
