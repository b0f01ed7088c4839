//! Runtime overrides, after Cortex's "runtime config": a YAML file of
//! per-tenant limits (`runtime_config.file`) that every service reads at
//! start and reloads every `runtime_config.reload_period` when it changed,
//! without a restart. A file that cannot be read or is invalid keeps the
//! last good version in use; the failure is logged and counted
//! (`strata_runtime_config_*` metrics).
//!
//! ```yaml
//! overrides:
//!   team-a:
//!     ingestion_rate: 5000
//!     max_series_per_query: 10000
//!     max_query_lookback: 30d
//! ```
//!
//! Components keep an [`Overrides`] handle and ask it on every request
//! ([`Overrides::get`]); each applies the fields it knows over its static
//! limits. Precedence, highest first: this file, the component's static
//! `tenant_limits.<tenant>`, the component's `limits`.

mod file;
mod handle;
mod reload;

use std::time::Duration;

use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use file::{RuntimeConfigFile, TenantOverrides};
pub use handle::{Overrides, Snapshot};
pub use reload::{ReloadMetrics, ReloadOutcome, Reloader};

/// Why the runtime config could not be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum OverridesError {
    /// The text is not a valid runtime config; the message names the field.
    #[error("{0}")]
    Invalid(String),
    /// The file could not be loaded at start.
    #[error("runtime config file {path}: {message}")]
    Load { path: String, message: String },
}

/// The `runtime_config` section of the configuration.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeConfigSection {
    /// The overrides file; empty = no runtime overrides.
    pub file: String,
    /// How often the file is checked for changes.
    #[serde(with = "strata_model::duration::serde")]
    pub reload_period: Duration,
}

impl Default for RuntimeConfigSection {
    fn default() -> Self {
        Self {
            file: String::new(),
            reload_period: Duration::from_secs(10),
        }
    }
}

/// Replaces `field` with `value` when the override is set; what components
/// use to lay a [`TenantOverrides`] field over their own limits.
pub fn apply<T: Clone>(field: &mut T, value: &Option<T>) {
    if let Some(v) = value {
        *field = v.clone();
    }
}
