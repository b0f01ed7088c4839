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

#[cfg(test)]
pub(crate) mod test_support {
    use strata_ring::{InstanceDesc, InstanceState, MemoryRingStore, Ring, RingConfig, RingStore};

    /// A ring of one ACTIVE ingester (`ing-1`) at replication factor 1,
    /// read once; its address is never reached by the tests using it.
    pub(crate) async fn one_member_ring() -> Ring {
        let store = std::sync::Arc::new(MemoryRingStore::new());
        let now = strata_model::duration::now_ms();
        store
            .put(
                &InstanceDesc {
                    id: "ing-1".to_string(),
                    addr: "127.0.0.1:1".to_string(),
                    http_addr: "127.0.0.1:2".to_string(),
                    zone: String::new(),
                    state: InstanceState::Active,
                    tokens: vec![1 << 31],
                    heartbeat_ms: now,
                    registered_ms: now,
                },
                None,
            )
            .await
            .expect("memory ring store");
        let ring = Ring::new(
            RingConfig {
                replication_factor: 1,
                ..RingConfig::default()
            },
            store,
        )
        .expect("ring client");
        ring.refresh().await.expect("ring refresh");
        ring
    }
}
