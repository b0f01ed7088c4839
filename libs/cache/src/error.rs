//! Errors of the cache crate. Reads and writes never return them (see [`crate::Cache`]);
//! they come out of constructors, and are counted inside the memcached client.

/// What can go wrong building or talking to a cache.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The configuration cannot work (no servers, a zero pool size, ...).
    #[error("invalid cache configuration: {0}")]
    InvalidConfig(String),

    /// Connecting to, writing to or reading from a server failed.
    #[error("memcached {addr}: {source}")]
    Io {
        addr: String,
        #[source]
        source: std::io::Error,
    },

    /// The server did not answer within the configured timeout.
    #[error("memcached {addr}: timed out")]
    Timeout { addr: String },

    /// Every connection to the server was busy for the whole timeout.
    #[error("memcached {addr}: no free connection within the timeout")]
    PoolExhausted { addr: String },

    /// The server answered something the protocol does not allow here.
    #[error("memcached {addr}: protocol error: {message}")]
    Protocol { addr: String, message: String },

    /// The server refused a command (`SERVER_ERROR`, `CLIENT_ERROR`, `ERROR`).
    #[error("memcached {addr}: server refused: {message}")]
    Server { addr: String, message: String },
}
