//! Test harness shared by the querier's integration tests: ingester gRPC
//! servers on 127.0.0.1, a ring holding them, and a reader over the ring.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use strata_ingester::service::IngesterService;
use strata_ingester::{Ingester, IngesterConfig, IngesterMetrics};
use strata_ingester_client::{IngesterClientPool, PoolConfig};
use strata_proto::ingester::ingester_server::{Ingester as IngesterRpc, IngesterServer};
use strata_querier::{IngesterQuerier, IngesterReadMetrics};
use strata_remote_write::{encode_write_request, OwnedMetadata, OwnedTimeSeries, Sample};
use strata_ring::{
    generate_tokens, now_ms, InstanceDesc, InstanceState, MemoryRingStore, Ring, RingConfig,
    RingStore,
};
use tokio::net::TcpListener;

/// An ingester gRPC server; stops when dropped.
pub struct TestIngester {
    pub id: String,
    pub addr: String,
    pub ingester: Arc<Ingester>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl TestIngester {
    pub fn push(&self, tenant: &str, series: &[OwnedTimeSeries], metadata: &[OwnedMetadata]) {
        self.ingester
            .push(tenant, &encode_write_request(series, metadata))
            .unwrap();
    }

    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl Drop for TestIngester {
    fn drop(&mut self) {
        self.stop();
    }
}

pub async fn serve<S: IngesterRpc>(service: S, id: &str, ingester: Arc<Ingester>) -> TestIngester {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .add_service(IngesterServer::new(service))
            .serve_with_incoming_shutdown(tokio_stream_wrapper(listener), async move {
                let _ = rx.await;
            })
            .await;
    });
    TestIngester {
        id: id.to_string(),
        addr,
        ingester,
        stop: Some(tx),
    }
}

pub fn tokio_stream_wrapper(
    listener: TcpListener,
) -> impl Stream<Item = Result<tokio::net::TcpStream, std::io::Error>> {
    futures::stream::unfold(listener, |l| async move {
        let conn = l.accept().await.map(|(s, _)| s);
        Some((conn, l))
    })
}

pub async fn start_ingester(id: &str) -> TestIngester {
    let ingester = Arc::new(Ingester::new(
        IngesterConfig::default(),
        IngesterMetrics::default(),
    ));
    serve(IngesterService::new(ingester.clone()), id, ingester).await
}

/// A ring (RF 3) holding `ingesters`, all ACTIVE and healthy.
pub async fn ring_of(ingesters: &[&TestIngester]) -> Arc<Ring> {
    let store = Arc::new(MemoryRingStore::new());
    let mut taken = std::collections::HashSet::new();
    for ing in ingesters {
        let tokens = generate_tokens(32, &taken);
        taken.extend(tokens.iter().copied());
        let desc = InstanceDesc {
            id: ing.id.clone(),
            addr: ing.addr.clone(),
            http_addr: String::new(),
            zone: String::new(),
            state: InstanceState::Active,
            tokens,
            heartbeat_ms: now_ms(),
            registered_ms: now_ms(),
        };
        store.put(&desc, None).await.unwrap();
    }
    let ring = Ring::new(
        RingConfig {
            replication_factor: 3,
            ..RingConfig::default()
        },
        store as Arc<dyn RingStore>,
    )
    .unwrap();
    ring.refresh().await.unwrap();
    Arc::new(ring)
}

pub fn reader(ring: Arc<Ring>) -> IngesterQuerier {
    let pool = Arc::new(IngesterClientPool::new(PoolConfig {
        connect_timeout: Duration::from_secs(1),
        request_timeout: Duration::from_secs(5),
    }));
    IngesterQuerier::new(ring, pool, false, IngesterReadMetrics::default())
}

pub fn ts(labels: &[(&str, &str)], samples: &[(i64, f64)]) -> OwnedTimeSeries {
    OwnedTimeSeries::new(
        labels.iter().map(|(n, v)| (n.to_string(), v.to_string())),
        samples
            .iter()
            .map(|&(timestamp, value)| Sample { timestamp, value }),
    )
}

pub async fn three() -> (TestIngester, TestIngester, TestIngester) {
    (
        start_ingester("ing-0").await,
        start_ingester("ing-1").await,
        start_ingester("ing-2").await,
    )
}
