//! Plumbing every Strata service shares: YAML configuration with a flag for
//! every key, structured logs, the metrics registry and its `/metrics`
//! route, `/ready`, the tenant header, and graceful shutdown.

pub mod admission;
pub mod config;
pub mod cpu;
pub mod http;
pub mod logging;
pub mod memory;
pub mod metrics;
pub mod reads;
pub mod shutdown;
pub mod tenant;

pub use config::{load_config, load_config_with, ConfigError, LoadedConfig};
pub use metrics::MetricsRegistry;
pub use shutdown::shutdown_signal;
