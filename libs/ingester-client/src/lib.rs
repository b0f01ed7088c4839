//! Pooled gRPC clients to ingesters.
//!
//! Connections are created lazily on first use and shared by every caller;
//! tonic reconnects a broken channel by itself. [`IngesterClientPool::retain`]
//! drops clients of addresses that left the ring.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use parking_lot::RwLock;
use strata_proto::ingester::ingester_client::IngesterClient;
use strata_proto::TENANT_METADATA_KEY;
use thiserror::Error;
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};

pub type Client = IngesterClient<Channel>;

/// Largest gRPC message sent or accepted.
pub const MAX_MESSAGE_BYTES: usize = 256 << 20;

#[derive(Debug, Error)]
pub enum ClientError {
    #[error("invalid ingester address {addr:?}: {reason}")]
    BadAddress { addr: String, reason: String },
    #[error("invalid tenant ID {0:?} for gRPC metadata")]
    BadTenant(String),
}

#[derive(Clone, Debug)]
pub struct PoolConfig {
    pub connect_timeout: Duration,
    /// Deadline of every call.
    pub request_timeout: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(10),
        }
    }
}

pub struct IngesterClientPool {
    config: PoolConfig,
    clients: RwLock<HashMap<String, Client>>,
}

impl IngesterClientPool {
    pub fn new(config: PoolConfig) -> Self {
        Self {
            config,
            clients: RwLock::new(HashMap::new()),
        }
    }

    /// The client for `addr` (`host:port`), created on first use.
    pub fn get(&self, addr: &str) -> Result<Client, ClientError> {
        if let Some(c) = self.clients.read().get(addr) {
            return Ok(c.clone());
        }
        let endpoint = Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|e| ClientError::BadAddress {
                addr: addr.to_string(),
                reason: e.to_string(),
            })?
            .connect_timeout(self.config.connect_timeout)
            .timeout(self.config.request_timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(20))
            .keep_alive_timeout(Duration::from_secs(10));
        let client = IngesterClient::new(endpoint.connect_lazy())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        let mut clients = self.clients.write();
        Ok(clients.entry(addr.to_string()).or_insert(client).clone())
    }

    /// Forgets the clients of addresses not in `keep`.
    pub fn retain(&self, keep: &HashSet<String>) {
        self.clients.write().retain(|addr, _| keep.contains(addr));
    }

    pub fn len(&self) -> usize {
        self.clients.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An ingester running in this process (the one-process mode). Pushes to
/// it are plain function calls: no protobuf framing, HTTP/2 or loopback
/// TCP. Its answers and errors are the ones its gRPC service would give.
#[async_trait::async_trait]
pub trait LocalIngester: Send + Sync {
    /// Its instance ID in the ring.
    fn instance_id(&self) -> &str;

    /// Appends an encoded remote write request for `tenant`.
    async fn push(
        &self,
        tenant: &str,
        body: bytes::Bytes,
    ) -> Result<strata_proto::ingester::PushResponse, tonic::Status>;

    /// The series matching `matchers` with their chunks over
    /// `[start_ms, end_ms]`: the `QueryStream` RPC without encoding,
    /// framing or copying the answer (chunk data is shared, not copied).
    async fn query(
        &self,
        tenant: &str,
        matchers: Vec<strata_model::Matcher>,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<LocalQueryAnswer, tonic::Status>;
}

/// What [`LocalIngester::query`] answers: what one `QueryStream` call
/// would stream, in one piece.
#[derive(Debug, Default)]
pub struct LocalQueryAnswer {
    /// Matching series, each with its chunks in time order.
    pub series: Vec<(strata_model::Labels, Vec<strata_proto::ingester::Chunk>)>,
    /// Parts of the range this ingester may lack data for, although it
    /// was a member then (see `QueryStreamResponse.missing`).
    pub missing: Vec<(i64, i64)>,
    /// Parts of the range from before it joined the ring.
    pub before_join: Vec<(i64, i64)>,
}

/// A gRPC request carrying the tenant in its metadata.
pub fn with_tenant<T>(tenant: &str, message: T) -> Result<tonic::Request<T>, ClientError> {
    let mut req = tonic::Request::new(message);
    let value: MetadataValue<_> = tenant
        .parse()
        .map_err(|_| ClientError::BadTenant(tenant.to_string()))?;
    req.metadata_mut().insert(TENANT_METADATA_KEY, value);
    Ok(req)
}
