//! The distributor: the stateless front door of the write path.
//!
//! A remote write request is decompressed and decoded (borrowing from the
//! request buffer), every series is validated, the tenant's ingestion rate
//! limit is charged, and each series is sent to the replication set the ring
//! gives for hash(tenant, metric name). The request succeeds once, for every
//! series, a quorum of its replicas acknowledged it.

mod config;
mod distributor;
mod error;
mod ha;
mod http;
mod metrics;
mod rate;
mod validate;

pub use config::{DistributorConfig, DistributorLimits, RateStrategy};
pub use distributor::{Distributor, PushSummary};
pub use error::PushError;
pub use ha::{
    CasOutcome, HaDecision, HaError, HaStore, HaStoreError, HaTracker, HaTrackerConfig,
    MemoryHaStore, ReplicaDesc, VersionedReplica,
};
pub use http::push_routes;
pub use metrics::DistributorMetrics;
pub use rate::{RateLimitError, RateLimiter};
pub use validate::{validate_series, ValidationError};
