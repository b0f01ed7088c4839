//! Long-term storage as the ingester and the ring see it: the store as the
//! ingester's flush sink, flush ranks from the ring, and the flush and
//! shutdown endpoints.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Json, Router};
use strata_ingester::flush::chunks_digest;
use strata_ingester::{ChunkSink, FlushBatch, FlushError, FlushRank, Ingester};
use strata_ring::{shard_key, shard_key_all_labels, Operation, Ring};
use strata_store::{Store, StoreChunk, WriteBatch, WriteSeries};
use tokio_util::sync::CancellationToken;

/// The store as the ingester's flush destination.
pub struct StoreSink(pub Arc<Store>);

#[async_trait::async_trait]
impl ChunkSink for StoreSink {
    async fn write(&self, batch: &FlushBatch) -> Result<(), FlushError> {
        let write = WriteBatch {
            tenant: batch.tenant.clone(),
            window_start_ms: batch.window_start_ms,
            window_end_ms: batch.window_end_ms,
            series: batch
                .series
                .iter()
                .map(|s| WriteSeries {
                    fingerprint: s.fingerprint,
                    labels: s.labels.clone(),
                    digest: chunks_digest(&s.chunks),
                    chunks: s
                        .chunks
                        .iter()
                        .map(|c| StoreChunk {
                            min_time: c.min_time,
                            max_time: c.max_time,
                            encoding: u8::try_from(c.encoding).unwrap_or(u8::MAX),
                            data: c.data.clone(),
                        })
                        .collect(),
                })
                .collect(),
        };
        self.0
            .write(&write)
            .await
            .map_err(|e| FlushError(e.to_string()))
    }

    async fn stored(
        &self,
        tenant: &str,
        from_ms: i64,
        to_ms: i64,
        series: &[(u64, u32)],
    ) -> Result<std::collections::HashSet<u64>, FlushError> {
        self.0
            .stored(tenant, from_ms, to_ms, series)
            .await
            .map_err(|e| FlushError(e.to_string()))
    }
}

/// This ingester's position in a series' replication set, as the
/// distributor places series: the first healthy replica flushes first.
pub struct RingRank {
    pub ring: Arc<Ring>,
    pub instance_id: String,
    pub shard_by_all_labels: bool,
}

impl FlushRank for RingRank {
    fn rank(&self, tenant: &str, labels: &[(&str, &str)]) -> usize {
        let key = if self.shard_by_all_labels {
            shard_key_all_labels(tenant, labels.iter().copied())
        } else {
            let name = labels
                .iter()
                .find(|(n, _)| *n == strata_model::METRIC_NAME)
                .map(|(_, v)| *v)
                .unwrap_or("");
            shard_key(tenant, name)
        };
        match self.ring.get(key, Operation::Write) {
            // Not in the set (leaving, or the ring moved): flush at once
            // rather than wait for replicas that may not hold the data.
            Ok(set) => set
                .instances
                .iter()
                .position(|d| d.id == self.instance_id)
                .unwrap_or(0),
            Err(_) => 0,
        }
    }
}

#[derive(Clone)]
struct FlushState {
    ingester: Arc<Ingester>,
    shutdown: CancellationToken,
    leave: Arc<std::sync::atomic::AtomicBool>,
    timeout: std::time::Duration,
}

/// `POST /ingester/flush`: flush everything now, open chunks included.
/// `POST /ingester/shutdown`: flush everything, then leave the ring and
/// stop (scale-down); the process flushes again on its way out.
pub fn flush_routes(
    ingester: Arc<Ingester>,
    shutdown: CancellationToken,
    leave: Arc<std::sync::atomic::AtomicBool>,
    timeout: std::time::Duration,
) -> Router {
    Router::new()
        .route("/ingester/flush", post(flush))
        .route("/ingester/shutdown", post(shutdown_handler))
        .with_state(FlushState {
            ingester,
            shutdown,
            leave,
            timeout,
        })
}

async fn flush_now(state: &FlushState) -> (StatusCode, Json<serde_json::Value>) {
    let left = state
        .ingester
        .flush_everything(std::time::Instant::now() + state.timeout)
        .await;
    if left == 0 {
        (
            StatusCode::OK,
            Json(serde_json::json!({"status": "success", "unflushed_bytes": 0})),
        )
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({
                "status": "error",
                "unflushed_bytes": left,
                "error": format!("{left} bytes of chunks could not be flushed; the store is failing (see the logs), retry"),
            })),
        )
    }
}

async fn flush(State(state): State<FlushState>) -> impl IntoResponse {
    flush_now(&state).await
}

async fn shutdown_handler(State(state): State<FlushState>) -> impl IntoResponse {
    let answer = flush_now(&state).await;
    if answer.0 == StatusCode::OK {
        state.leave.store(true, std::sync::atomic::Ordering::SeqCst);
        state.shutdown.cancel();
    }
    answer
}
