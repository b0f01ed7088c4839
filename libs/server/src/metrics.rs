use std::sync::Arc;

use parking_lot::Mutex;
use prometheus_client::registry::Registry;

/// The process's metrics registry, shared by everything that registers
/// metrics and by the `/metrics` route.
#[derive(Clone)]
pub struct MetricsRegistry(Arc<Mutex<Registry>>);

impl Default for MetricsRegistry {
    fn default() -> Self {
        Self(Arc::new(Mutex::new(Registry::default())))
    }
}

impl MetricsRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `f` with the registry to register metrics.
    pub fn register(&self, f: impl FnOnce(&mut Registry)) {
        f(&mut self.0.lock());
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let registry = self.0.lock();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &registry) {
            tracing::error!(error = %e, "encoding metrics failed");
        }
        out
    }
}
