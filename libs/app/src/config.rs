use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use strata_distributor::DistributorConfig;
use strata_ingester::IngesterConfig;
use strata_querier::QuerierConfig;
use strata_ruler::RulerConfig;
use strata_store::StoreConfig;

/// The whole configuration; one file serves every role.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Require `X-Scope-OrgID` on every request (401 without it). When
    /// false, requests without it belong to the tenant `anonymous`.
    pub auth_enabled: bool,
    /// Where an instance keeps its state: the tokens file, and with the
    /// default storage backends the chunk objects (`chunks/`) and the index
    /// (`index/`).
    pub data_dir: PathBuf,
    pub server: ServerSection,
    pub ring: RingSection,
    pub lifecycler: LifecyclerSection,
    pub ingester: IngesterConfig,
    pub distributor: DistributorConfig,
    pub querier: QuerierConfig,
    /// Long-term storage of chunks and the index (local directory and
    /// embedded index by default; S3, DynamoDB and memcached at scale).
    pub storage: StoreConfig,
    /// Recording and alerting rules (`docs/ruler.md`).
    pub ruler: RulerConfig,
    /// The per-tenant overrides file, reloaded while running
    /// (`docs/operations.md`, "Runtime overrides").
    pub runtime_config: strata_overrides::RuntimeConfigSection,
    /// Credentials at the HTTP edge (`docs/auth.md`): `mode: none | header |
    /// tokens`; `auth_enabled: true` turns `none` into `header`.
    pub auth: strata_auth::AuthConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            auth_enabled: false,
            data_dir: PathBuf::from("data"),
            server: ServerSection::default(),
            ring: RingSection::default(),
            lifecycler: LifecyclerSection::default(),
            ingester: IngesterConfig::default(),
            distributor: DistributorConfig::default(),
            querier: QuerierConfig::default(),
            storage: StoreConfig::default(),
            ruler: RulerConfig::default(),
            runtime_config: strata_overrides::RuntimeConfigSection::default(),
            auth: strata_auth::AuthConfig::default(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSection {
    pub http_listen_address: String,
    pub http_listen_port: u16,
    pub grpc_listen_address: String,
    pub grpc_listen_port: u16,
    /// `host:port` other services use to reach this instance's gRPC server;
    /// empty means the listen address (or 127.0.0.1 when listening on all
    /// interfaces) and the gRPC port.
    pub grpc_advertise_address: String,
    /// `host:port` other instances use to reach this one's HTTP server (the
    /// ruler replicas gather each other's rule state through it); empty
    /// means the listen address (or 127.0.0.1 when listening on all
    /// interfaces) and the HTTP port.
    pub http_advertise_address: String,
    /// How long to wait for in-flight requests on shutdown.
    #[serde(with = "strata_model::duration::serde")]
    pub graceful_shutdown_timeout: Duration,
}

impl Default for ServerSection {
    fn default() -> Self {
        Self {
            http_listen_address: "127.0.0.1".into(),
            http_listen_port: 9009,
            grpc_listen_address: "127.0.0.1".into(),
            grpc_listen_port: 9095,
            grpc_advertise_address: String::new(),
            http_advertise_address: String::new(),
            graceful_shutdown_timeout: Duration::from_secs(30),
        }
    }
}

impl ServerSection {
    pub fn http_addr(&self) -> String {
        format!("{}:{}", self.http_listen_address, self.http_listen_port)
    }

    pub fn grpc_addr(&self) -> String {
        format!("{}:{}", self.grpc_listen_address, self.grpc_listen_port)
    }

    pub fn advertised_http_addr(&self) -> String {
        if !self.http_advertise_address.is_empty() {
            return self.http_advertise_address.clone();
        }
        let host = match self.http_listen_address.as_str() {
            "0.0.0.0" | "::" | "" => "127.0.0.1",
            other => other,
        };
        format!("{host}:{}", self.http_listen_port)
    }

    pub fn advertised_grpc_addr(&self) -> String {
        if !self.grpc_advertise_address.is_empty() {
            return self.grpc_advertise_address.clone();
        }
        let host = match self.grpc_listen_address.as_str() {
            "0.0.0.0" | "::" | "" => "127.0.0.1",
            other => other,
        };
        format!("{host}:{}", self.grpc_listen_port)
    }
}

#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RingStoreKind {
    /// In-process; only for the one-process mode.
    #[default]
    Memory,
    /// One DynamoDB item per instance, written conditionally.
    Dynamodb,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RingSection {
    pub store: RingStoreKind,
    /// Name of the ring (the DynamoDB partition key).
    pub name: String,
    pub replication_factor: usize,
    /// Place replicas in distinct zones (`lifecycler.zone`).
    pub zone_awareness: bool,
    /// An instance without a heartbeat for this long is unhealthy.
    #[serde(with = "strata_model::duration::serde")]
    pub heartbeat_timeout: Duration,
    /// An instance without a heartbeat for this long is removed from the
    /// ring automatically (0 = never).
    #[serde(with = "strata_model::duration::serde")]
    pub forget_timeout: Duration,
    /// How often ring clients re-read the ring.
    #[serde(with = "strata_model::duration::serde")]
    pub poll_interval: Duration,
    pub dynamodb: DynamoSection,
}

impl Default for RingSection {
    fn default() -> Self {
        Self {
            store: RingStoreKind::Memory,
            name: "ingester".into(),
            replication_factor: 3,
            zone_awareness: false,
            heartbeat_timeout: Duration::from_secs(60),
            forget_timeout: Duration::from_secs(600),
            poll_interval: Duration::from_secs(1),
            dynamodb: DynamoSection::default(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DynamoSection {
    pub table: String,
    pub region: String,
    /// Endpoint URL, e.g. `http://127.0.0.1:4567` for a local DynamoDB-API
    /// server; empty for AWS itself.
    pub endpoint: String,
    /// Create the table when it does not exist.
    pub create_table: bool,
}

impl Default for DynamoSection {
    fn default() -> Self {
        Self {
            table: "strata_ring".into(),
            region: "us-east-1".into(),
            endpoint: String::new(),
            create_table: true,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LifecyclerSection {
    /// Unique ID of this ingester in the ring; empty means the host name.
    pub id: String,
    pub zone: String,
    pub num_tokens: usize,
    #[serde(with = "strata_model::duration::serde")]
    pub heartbeat_period: Duration,
    /// Time spent JOINING before turning ACTIVE.
    #[serde(with = "strata_model::duration::serde")]
    pub join_after: Duration,
    /// Leave the ring on shutdown (true), or keep the entry and tokens so a
    /// restart takes the same place (false).
    pub unregister_on_shutdown: bool,
    /// On shutdown, how long a separate ingester stays LEAVING (still
    /// serving reads and in-flight pushes) before it stops its gRPC server,
    /// so every distributor has re-read the ring and sends elsewhere. 0 means
    /// twice `ring.poll_interval`.
    #[serde(with = "strata_model::duration::serde")]
    pub leaving_period: Duration,
    /// Where tokens persist across restarts; empty means
    /// `<data_dir>/tokens.json`.
    pub tokens_file: String,
}

impl Default for LifecyclerSection {
    fn default() -> Self {
        Self {
            id: String::new(),
            zone: String::new(),
            num_tokens: 128,
            heartbeat_period: Duration::from_secs(5),
            join_after: Duration::ZERO,
            // A rollout restarts an ingester in place: keeping its entry
            // keeps its ranges (its WAL brings back their data) instead of
            // moving its series to neighbours for the seconds it is away.
            unregister_on_shutdown: false,
            leaving_period: Duration::ZERO,
            tokens_file: String::new(),
        }
    }
}

impl Config {
    /// Defaults that make sense for the one-process mode (replication
    /// factor 1: there is one ingester).
    pub fn single_process_defaults() -> Self {
        let mut c = Config::default();
        c.ring.replication_factor = 1;
        // Nothing else holds a copy: everything is flushed on every stop.
        c.ingester.flush_on_shutdown = true;
        c
    }
}
