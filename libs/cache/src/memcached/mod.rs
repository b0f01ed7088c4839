//! A memcached cache: tokio-native text-protocol client, consistent hashing over
//! several servers, a small connection pool per server, and a backoff for failed servers.

mod conn;
mod ring;

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

use bytes::Bytes;
use futures::future::join_all;
use parking_lot::Mutex;
use tokio::sync::Semaphore;
use tokio::time::{timeout, timeout_at, Instant};

use self::conn::{Conn, SetOutcome};
use self::ring::Ring;
use crate::metrics::{BoundMetrics, CacheMetrics};
use crate::{Cache, CacheError};

/// Longest key memcached accepts.
const MAX_KEY_LEN: usize = 250;
/// A server that failed is skipped for this long, doubling on each failure in a row...
const MIN_BACKOFF: Duration = Duration::from_secs(1);
/// ...up to this.
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// memcached reads a TTL above 30 days as an absolute Unix time.
const MAX_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// A pipelined set batch is closed once it holds this many value bytes.
const SET_BATCH_BYTES: usize = 1 << 20;

/// Where the memcached servers are and how to talk to them.
#[derive(Clone, Debug)]
pub struct MemcachedConfig {
    /// Servers as `host:port`. Keys are spread over them by a consistent hash of the
    /// key; the order of the list does not matter.
    pub addresses: Vec<String>,
    /// Bound on one request: a `get_multi` answers within this (keys of servers that did
    /// not answer in time are misses); each pipelined set batch gets this long.
    /// Default 200 ms.
    pub timeout: Duration,
    /// Values larger than this are not written. Default 1 MiB less 512 bytes, so an item
    /// with a 250-byte key still fits memcached's default item size limit (`-I 1m`).
    pub max_item_size: usize,
    /// Expiry of written items; zero means none (memcached still evicts by LRU).
    /// At most 30 days. Default 7 days.
    pub ttl: Duration,
    /// Connections kept per server, and the most requests in flight to it. Default 4.
    pub connections_per_server: usize,
    /// Most keys in one `get` and most items in one pipelined set batch. Default 128.
    pub max_batch: usize,
}

impl Default for MemcachedConfig {
    fn default() -> Self {
        Self {
            addresses: Vec::new(),
            timeout: Duration::from_millis(200),
            max_item_size: (1 << 20) - 512,
            ttl: Duration::from_secs(7 * 24 * 3600),
            connections_per_server: 4,
            max_batch: 128,
        }
    }
}

impl MemcachedConfig {
    fn validate(&self) -> Result<(), CacheError> {
        let invalid = |m: String| Err(CacheError::InvalidConfig(m));
        if self.addresses.is_empty() {
            return invalid("memcached needs at least one address".into());
        }
        let mut seen = HashSet::new();
        for a in &self.addresses {
            let ok = a
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
            if !ok {
                return invalid(format!("memcached address {a:?} is not host:port"));
            }
            if !seen.insert(a) {
                return invalid(format!("memcached address {a:?} is listed twice"));
            }
        }
        if self.timeout.is_zero() {
            return invalid("memcached timeout must be above zero".into());
        }
        if self.connections_per_server == 0 {
            return invalid("memcached connections_per_server must be at least 1".into());
        }
        if self.max_batch == 0 {
            return invalid("memcached max_batch must be at least 1".into());
        }
        if self.max_item_size == 0 {
            return invalid("memcached max_item_size must be above zero".into());
        }
        if self.ttl > MAX_TTL {
            return invalid(format!(
                "memcached ttl {:?} is above memcached's limit of 30 days",
                self.ttl
            ));
        }
        Ok(())
    }

    /// TTL in whole seconds, a sub-second TTL rounded up (0 would mean "never").
    fn ttl_secs(&self) -> u64 {
        let s = self.ttl.as_secs();
        if s == 0 && !self.ttl.is_zero() {
            1
        } else {
            s
        }
    }
}

/// The key sent to memcached for `key`: the key itself when memcached accepts it
/// (1 to 250 printable ASCII bytes) and it does not start with `~`; otherwise `~` and
/// the 128-bit xxh3 of the key in hex. Raw keys starting with `~` are hashed too, so
/// the two kinds never collide.
pub(crate) fn wire_key(key: &str) -> Cow<'_, str> {
    let safe = !key.is_empty()
        && key.len() <= MAX_KEY_LEN
        && !key.starts_with('~')
        && key.bytes().all(|b| b.is_ascii_graphic());
    if safe {
        Cow::Borrowed(key)
    } else {
        let h = twox_hash::XxHash3_128::oneshot(key.as_bytes());
        Cow::Owned(format!("~{h:032x}"))
    }
}

/// A memcached server: its pool and its health.
struct Server {
    addr: String,
    idle: Mutex<Vec<Conn>>,
    /// One permit per connection: at most `connections_per_server` requests in flight.
    permits: Semaphore,
    health: Mutex<Health>,
}

#[derive(Default)]
struct Health {
    /// Skipped until then.
    down_until: Option<Instant>,
    /// Failures since the last success.
    failures: u32,
}

impl Server {
    fn is_up(&self, now: Instant) -> bool {
        self.health.lock().down_until.is_none_or(|t| now >= t)
    }

    /// A pooled connection (`true`: reused) or a new one.
    async fn checkout(&self) -> Result<(Conn, bool), CacheError> {
        let idle = self.idle.lock().pop();
        match idle {
            Some(c) => Ok((c, true)),
            None => Ok((Conn::connect(&self.addr).await?, false)),
        }
    }

    fn checkin(&self, conn: Conn) {
        self.idle.lock().push(conn);
    }

    fn succeeded(&self, metrics: &BoundMetrics) {
        let mut h = self.health.lock();
        if h.failures > 0 {
            h.failures = 0;
            h.down_until = None;
            metrics.servers_down.dec();
            tracing::info!(server = %self.addr, "memcached server is back");
        }
    }

    /// Marks the server down after a connection-level failure (I/O, timeout, garbled
    /// reply). Failures of requests that were already in flight when it went down do
    /// not extend the backoff.
    fn failed(&self, err: &CacheError, metrics: &BoundMetrics) {
        let now = Instant::now();
        let mut h = self.health.lock();
        if h.down_until.is_some_and(|t| now < t) {
            return;
        }
        if h.failures == 0 {
            metrics.servers_down.inc();
        }
        h.failures = h.failures.saturating_add(1);
        let backoff = MIN_BACKOFF
            .saturating_mul(1 << (h.failures - 1).min(16))
            .min(MAX_BACKOFF);
        h.down_until = Some(now + backoff);
        drop(h);
        // Pooled connections to a failed server are most likely broken too.
        self.idle.lock().clear();
        tracing::warn!(server = %self.addr, error = %err, ?backoff, "memcached server marked down");
    }
}

/// Whether an error says the server (or the path to it) is in trouble, as opposed to a
/// refusal of one request or our own pool being busy.
fn marks_down(err: &CacheError) -> bool {
    matches!(
        err,
        CacheError::Io { .. } | CacheError::Timeout { .. } | CacheError::Protocol { .. }
    )
}

/// A cache on one or more memcached servers. See `docs/caching.md`.
///
/// Reads never fail and never take longer than `timeout`: keys of a server that is
/// down, slow or failing are misses. A server that fails is skipped for 1 s, doubling
/// on each failure in a row up to 10 s, then tried again; its keys are not moved to other
/// servers meanwhile (they would be moved back, stale, when it returns).
pub struct MemcachedCache {
    name: &'static str,
    config: MemcachedConfig,
    servers: Vec<Server>,
    ring: Ring,
    metrics: BoundMetrics,
}

impl MemcachedCache {
    /// A client for `config.addresses`; connects lazily, on the first request.
    pub fn new(
        name: &'static str,
        config: MemcachedConfig,
        metrics: CacheMetrics,
    ) -> Result<Self, CacheError> {
        config.validate()?;
        let servers = config
            .addresses
            .iter()
            .map(|addr| Server {
                addr: addr.clone(),
                idle: Mutex::new(Vec::with_capacity(config.connections_per_server)),
                permits: Semaphore::new(config.connections_per_server),
                health: Mutex::new(Health::default()),
            })
            .collect();
        Ok(Self {
            name,
            ring: Ring::new(&config.addresses),
            servers,
            config,
            metrics: metrics.bind(name),
        })
    }

    /// The server (`host:port`) that holds `key`.
    pub fn server_for(&self, key: &str) -> &str {
        let wire = wire_key(key);
        &self.servers[self.ring.server_for(wire.as_bytes())].addr
    }

    /// One `get` of at most `max_batch` keys, answered by `deadline`.
    async fn get_batch(
        &self,
        server: &Server,
        keys: &[&str],
        deadline: Instant,
    ) -> Result<Vec<(usize, Bytes)>, CacheError> {
        let _permit = match timeout_at(deadline, server.permits.acquire()).await {
            Ok(p) => p.expect("pool semaphore is never closed"),
            Err(_) => {
                return Err(CacheError::PoolExhausted {
                    addr: server.addr.clone(),
                })
            }
        };
        let io = async {
            let (mut conn, reused) = server.checkout().await?;
            let found = match conn.get_multi(keys).await {
                // A pooled connection may have been closed by a server restart since
                // its last use: retry once on a fresh one before blaming the server.
                Err(CacheError::Io { .. }) if reused => {
                    conn = Conn::connect(&server.addr).await?;
                    conn.get_multi(keys).await?
                }
                other => other?,
            };
            Ok::<_, CacheError>((conn, found))
        };
        match timeout_at(deadline, io).await {
            Ok(Ok((conn, found))) => {
                server.checkin(conn);
                Ok(found)
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(CacheError::Timeout {
                addr: server.addr.clone(),
            }),
        }
    }

    /// One pipelined set batch.
    async fn set_batch(
        &self,
        server: &Server,
        items: &[(&str, &Bytes)],
    ) -> Result<SetOutcome, CacheError> {
        let t = self.config.timeout;
        let _permit = match timeout(t, server.permits.acquire()).await {
            Ok(p) => p.expect("pool semaphore is never closed"),
            Err(_) => {
                return Err(CacheError::PoolExhausted {
                    addr: server.addr.clone(),
                })
            }
        };
        let ttl = self.config.ttl_secs();
        let io = async {
            let (mut conn, reused) = server.checkout().await?;
            let outcome = match conn.set_multi(items, ttl).await {
                Err(CacheError::Io { .. }) if reused => {
                    conn = Conn::connect(&server.addr).await?;
                    conn.set_multi(items, ttl).await?
                }
                other => other?,
            };
            Ok::<_, CacheError>((conn, outcome))
        };
        match timeout(t, io).await {
            Ok(Ok((conn, outcome))) => {
                if !outcome.poisoned {
                    server.checkin(conn);
                }
                Ok(outcome)
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(CacheError::Timeout {
                addr: server.addr.clone(),
            }),
        }
    }

    /// Counts a failed batch and marks its server down when the failure says so.
    fn batch_failed(&self, server: &Server, err: &CacheError, is_get: bool) {
        if is_get {
            self.metrics.get_errors.inc();
        } else {
            self.metrics.set_errors.inc();
        }
        if marks_down(err) {
            server.failed(err, &self.metrics);
        } else {
            tracing::debug!(cache = self.name, error = %err, "memcached request failed");
        }
    }

    /// Splits `n` batches of one server into lanes run concurrently, one connection
    /// each; a lane runs its batches one after another.
    fn lanes<T>(&self, batches: Vec<T>) -> Vec<Vec<T>> {
        let lanes = self.config.connections_per_server.min(batches.len());
        let mut out: Vec<Vec<T>> = (0..lanes).map(|_| Vec::new()).collect();
        for (i, b) in batches.into_iter().enumerate() {
            out[i % lanes].push(b);
        }
        out
    }
}

#[async_trait::async_trait]
impl Cache for MemcachedCache {
    async fn get_multi(&self, keys: &[String]) -> HashMap<String, Bytes> {
        let start = Instant::now();
        let deadline = start + self.config.timeout;
        let m = &self.metrics;
        m.get_requests.inc();
        m.keys_requested.inc_by(keys.len() as u64);

        // Keys as sent, grouped by server, with the key the caller asked for. (A key
        // asked for twice is sent twice; memcached answers both.)
        let mut per_server: Vec<(Vec<Cow<'_, str>>, Vec<&String>)> = (0..self.servers.len())
            .map(|_| Default::default())
            .collect();
        for k in keys {
            let w = wire_key(k);
            let (wires, originals) = &mut per_server[self.ring.server_for(w.as_bytes())];
            wires.push(w);
            originals.push(k);
        }

        let mut lanes = Vec::new();
        for (server, (wires, originals)) in self.servers.iter().zip(&per_server) {
            if wires.is_empty() || !server.is_up(start) {
                continue;
            }
            let batches: Vec<(Vec<&str>, &[&String])> = wires
                .chunks(self.config.max_batch)
                .zip(originals.chunks(self.config.max_batch))
                .map(|(w, o)| (w.iter().map(|w| &**w).collect(), o))
                .collect();
            for lane in self.lanes(batches) {
                lanes.push(async move {
                    let mut found: Vec<(&String, Bytes)> = Vec::new();
                    for (wires, originals) in lane {
                        if !server.is_up(Instant::now()) {
                            break;
                        }
                        match self.get_batch(server, &wires, deadline).await {
                            Ok(f) => {
                                server.succeeded(m);
                                found.extend(f.into_iter().map(|(i, v)| (originals[i], v)));
                            }
                            Err(e) => {
                                self.batch_failed(server, &e, true);
                                break;
                            }
                        }
                    }
                    found
                });
            }
        }

        let mut result = HashMap::with_capacity(keys.len());
        let mut hits = 0;
        for found in join_all(lanes).await {
            hits += found.len();
            for (k, v) in found {
                result.insert(k.clone(), v);
            }
        }
        m.hits.inc_by(hits as u64);
        m.misses.inc_by(keys.len().saturating_sub(hits) as u64);
        m.get_duration.observe(start.elapsed().as_secs_f64());
        result
    }

    async fn set_multi(&self, items: Vec<(String, Bytes)>) {
        let start = Instant::now();
        let m = &self.metrics;
        m.set_requests.inc();

        let mut per_server: Vec<Vec<(Cow<'_, str>, &Bytes)>> = vec![Vec::new(); self.servers.len()];
        for (k, v) in &items {
            if v.len() > self.config.max_item_size {
                m.items_skipped.inc();
                continue;
            }
            let w = wire_key(k);
            per_server[self.ring.server_for(w.as_bytes())].push((w, v));
        }

        let mut lanes = Vec::new();
        for (server, items) in self.servers.iter().zip(&per_server) {
            // Writes to a server that is down are dropped: it is back empty or stale-free
            // soon enough, and reads of its keys are misses meanwhile anyway.
            if items.is_empty() || !server.is_up(start) {
                continue;
            }
            let mut batches: Vec<Vec<(&str, &Bytes)>> = Vec::new();
            let mut current: Vec<(&str, &Bytes)> = Vec::new();
            let mut bytes = 0;
            for (k, v) in items {
                current.push((k, v));
                bytes += v.len();
                if current.len() >= self.config.max_batch || bytes >= SET_BATCH_BYTES {
                    batches.push(std::mem::take(&mut current));
                    bytes = 0;
                }
            }
            if !current.is_empty() {
                batches.push(current);
            }
            for lane in self.lanes(batches) {
                lanes.push(async move {
                    for batch in lane {
                        if !server.is_up(Instant::now()) {
                            break;
                        }
                        match self.set_batch(server, &batch).await {
                            Ok(outcome) => {
                                server.succeeded(m);
                                m.items_stored.inc_by(outcome.stored);
                                if outcome.refused > 0 {
                                    m.set_errors.inc_by(outcome.refused);
                                    tracing::debug!(
                                        cache = self.name,
                                        server = %server.addr,
                                        refused = outcome.refused,
                                        first = outcome.first_refusal.as_deref().unwrap_or(""),
                                        "memcached refused items"
                                    );
                                }
                            }
                            Err(e) => {
                                self.batch_failed(server, &e, false);
                                break;
                            }
                        }
                    }
                });
            }
        }
        join_all(lanes).await;
        m.set_duration.observe(start.elapsed().as_secs_f64());
    }

    fn name(&self) -> &'static str {
        self.name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(addresses: &[&str]) -> MemcachedConfig {
        MemcachedConfig {
            addresses: addresses.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn wire_keys_are_safe_and_unambiguous() {
        assert_eq!(wire_key("c:0123abcd"), "c:0123abcd");
        let long = "x".repeat(251);
        for odd in [
            long.as_str(),
            "a b",
            "tab\there",
            "nl\r\n",
            "",
            "ü",
            "~raw",
            "\u{7f}",
        ] {
            let w = wire_key(odd);
            assert!(w.starts_with('~') && w.len() == 33, "{odd:?} -> {w}");
            assert!(w.bytes().all(|b| b.is_ascii_graphic()));
        }
        assert_eq!(wire_key(&"y".repeat(250)).len(), 250);
        assert_ne!(wire_key("a b"), wire_key("a  b"));
        // A raw key that looks like a hashed one is hashed itself.
        let hashed = wire_key("a b").into_owned();
        assert_ne!(wire_key(&hashed), hashed);
    }

    #[test]
    fn config_is_validated() {
        let metrics = CacheMetrics::default();
        let err = |c: MemcachedConfig| {
            MemcachedCache::new("t", c, metrics.clone())
                .err()
                .expect("invalid config accepted")
                .to_string()
        };
        assert!(err(config(&[])).contains("at least one address"));
        assert!(err(config(&["localhost"])).contains("not host:port"));
        assert!(err(config(&["a:1", "a:1"])).contains("listed twice"));
        assert!(err(MemcachedConfig {
            ttl: Duration::from_secs(31 * 24 * 3600),
            ..config(&["a:1"])
        })
        .contains("30 days"));
        assert!(err(MemcachedConfig {
            max_batch: 0,
            ..config(&["a:1"])
        })
        .contains("max_batch"));
        assert!(MemcachedCache::new("t", config(&["a:1", "[::1]:11211"]), metrics).is_ok());
    }

    #[test]
    fn sub_second_ttl_is_not_never() {
        let c = MemcachedConfig {
            ttl: Duration::from_millis(10),
            ..Default::default()
        };
        assert_eq!(c.ttl_secs(), 1);
        assert_eq!(MemcachedConfig::default().ttl_secs(), 7 * 24 * 3600);
    }

    #[tokio::test]
    async fn unreachable_server_is_misses_within_the_timeout_then_skipped() {
        // A port nothing listens on: connections are refused at once.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let metrics = CacheMetrics::default();
        let c = MemcachedCache::new(
            "down",
            config(&[&format!("127.0.0.1:{port}")]),
            metrics.clone(),
        )
        .unwrap();
        let keys: Vec<String> = (0..10).map(|i| format!("k{i}")).collect();
        let t = std::time::Instant::now();
        assert!(c.get_multi(&keys).await.is_empty());
        assert!(t.elapsed() < Duration::from_millis(300));
        c.set_multi(vec![("k1".into(), Bytes::from_static(b"v"))])
            .await;
        let m = metrics.bind("down");
        assert_eq!(m.get_errors.get(), 1);
        assert_eq!(m.servers_down.get(), 1);
        assert_eq!(m.misses.get(), 10);
        // Marked down: no further attempts (so no further errors) during the backoff.
        assert!(c.get_multi(&keys).await.is_empty());
        assert_eq!(m.get_errors.get(), 1);
        assert_eq!(m.set_errors.get(), 0);
    }

    #[tokio::test]
    async fn silent_server_is_bounded_by_the_timeout() {
        // Accepts connections but never answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let accept = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = listener.accept().await {
                held.push(s);
            }
        });
        let c = MemcachedCache::new(
            "silent",
            MemcachedConfig {
                timeout: Duration::from_millis(100),
                ..config(&[&addr])
            },
            CacheMetrics::default(),
        )
        .unwrap();
        let keys: Vec<String> = (0..1000).map(|i| format!("k{i}")).collect();
        let t = std::time::Instant::now();
        assert!(c.get_multi(&keys).await.is_empty());
        let took = t.elapsed();
        assert!(
            took >= Duration::from_millis(90) && took < Duration::from_millis(400),
            "{took:?}"
        );
        accept.abort();
    }
}
