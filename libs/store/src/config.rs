use std::time::Duration;

use serde::{Deserialize, Serialize};
use strata_index::SchemaConfig;

/// Where chunks, the index and the caches live (`storage:` in the config).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    pub chunks: ChunksConfig,
    pub index: IndexConfig,
    pub cache: CacheConfig,
    pub limits: ReadLimits,
}

#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ChunksBackend {
    /// Files under a local directory (the one-process default).
    #[default]
    Local,
    /// An S3 bucket (or any server speaking the S3 API).
    S3,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ChunksConfig {
    pub backend: ChunksBackend,
    pub local: LocalChunksConfig,
    pub s3: S3Section,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LocalChunksConfig {
    /// Directory of the chunk objects; empty means `<data_dir>/chunks`.
    pub directory: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct S3Section {
    pub bucket: String,
    /// Endpoint URL of an S3-compatible server; empty for AWS itself.
    pub endpoint: String,
    pub region: String,
    /// Address buckets by path (`endpoint/bucket/key`), as most
    /// S3-compatible servers need.
    pub force_path_style: bool,
    /// Create the bucket at start when it does not exist.
    pub create_bucket: bool,
    /// Access key; empty uses the AWS SDK's default chain (environment,
    /// profile, web identity, instance metadata).
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl Default for S3Section {
    fn default() -> Self {
        Self {
            bucket: "strata-chunks".into(),
            endpoint: String::new(),
            region: "us-east-1".into(),
            force_path_style: false,
            create_bucket: false,
            access_key_id: String::new(),
            secret_access_key: String::new(),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum IndexBackend {
    /// An ordered key-value file under a local directory (one-process default).
    #[default]
    Embedded,
    /// DynamoDB (or a server speaking its API).
    Dynamodb,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct IndexConfig {
    pub backend: IndexBackend,
    pub embedded: EmbeddedIndexConfig,
    pub dynamodb: DynamoIndexConfig,
    /// Table and shard layout by date; see docs/index-schema.md.
    pub schema: SchemaConfig,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct EmbeddedIndexConfig {
    /// Directory of the index file; empty means `<data_dir>/index`.
    pub directory: String,
    /// Bytes of the index file redb may keep cached in memory.
    pub cache_bytes: usize,
}

impl Default for EmbeddedIndexConfig {
    fn default() -> Self {
        Self {
            directory: String::new(),
            cache_bytes: strata_index::DEFAULT_EMBEDDED_CACHE_BYTES,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DynamoIndexConfig {
    /// Endpoint URL of a DynamoDB-API server; empty for AWS itself.
    pub endpoint: String,
    pub region: String,
    /// Create the schema's tables when they do not exist.
    pub create_tables: bool,
}

impl Default for DynamoIndexConfig {
    fn default() -> Self {
        Self {
            endpoint: String::new(),
            region: "us-east-1".into(),
            create_tables: true,
        }
    }
}

/// Default bytes of parsed object indexes kept in memory.
pub const DEFAULT_PARSED_INDEX_BYTES: usize = 64 << 20;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// Bytes of the in-process cache in front of memcached (0 = none).
    pub lru_bytes: usize,
    /// Bytes of parsed object indexes kept in memory (0 = none).
    pub parsed_index_bytes: usize,
    pub memcached: MemcachedSection,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            lru_bytes: 256 << 20,
            parsed_index_bytes: DEFAULT_PARSED_INDEX_BYTES,
            memcached: MemcachedSection::default(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MemcachedSection {
    /// `host:port` of every memcached server; empty = no memcached.
    pub addresses: Vec<String>,
    /// Bound on one cache request; slower servers count as misses.
    #[serde(with = "strata_model::duration::serde")]
    pub timeout: Duration,
    /// Expiry of cached items.
    #[serde(with = "strata_model::duration::serde")]
    pub ttl: Duration,
    pub connections_per_server: usize,
}

impl Default for MemcachedSection {
    fn default() -> Self {
        Self {
            addresses: Vec::new(),
            timeout: Duration::from_millis(200),
            ttl: Duration::from_secs(7 * 24 * 3600),
            connections_per_server: 4,
        }
    }
}

/// Per-query bounds on what one read may fetch from the store.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct ReadLimits {
    /// Chunks one query may fetch from the store (0 = unlimited).
    pub max_chunks_per_query: usize,
    /// Chunk bytes one query may fetch from the store (0 = unlimited).
    pub max_chunk_bytes_per_query: usize,
}

impl Default for ReadLimits {
    fn default() -> Self {
        Self {
            max_chunks_per_query: 2_000_000,
            max_chunk_bytes_per_query: 1 << 30,
        }
    }
}
