//! The read path: PromQL over one tenant's recent data, read from the
//! ingesters through the ring, served with Prometheus's HTTP query API.
//!
//! * [`ingesters`] finds the ingesters that hold a selection (the
//!   replication set of its metric name, or every healthy ingester), reads
//!   them in parallel within the set's failure budget, decodes their XOR
//!   chunks and merges the replicas of each series.
//! * [`storage`] gives the synchronous PromQL engine an in-memory
//!   [`strata_promql::Storage`] filled before evaluation: the engine names the
//!   selections a query needs, they are fetched in parallel, and the query is
//!   evaluated on the blocking pool.
//! * [`http`] serves `/prometheus/api/v1/*` and `/api/v1/*` with
//!   Prometheus's parameters, JSON shapes, status codes and error types.

pub mod cardinality;
mod config;
pub mod error;
pub mod exemplars;
pub mod format;
pub mod http;
pub mod ingesters;
pub mod merge;
pub mod params;
mod querier;
pub mod storage;

pub use config::{QuerierConfig, QueryLimits};
pub use error::{ApiError, ErrorType, QuerierError};
pub use http::{api_routes, ApiMetrics};
pub use ingesters::{FetchLimits, IngesterQuerier, IngesterReadMetrics, MetadataEntry};
pub use querier::{Querier, QueryOverrides, QueryRange};
