//! Loading the file at start and reloading it when it changes.

use std::path::{Path, PathBuf};
use std::time::Duration;

use parking_lot::Mutex;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

use crate::file::RuntimeConfigFile;
use crate::handle::{Overrides, Snapshot};
use crate::OverridesError;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HashLabel {
    hash: String,
}

/// Metrics of the runtime config (`strata_runtime_config_*`).
#[derive(Clone, Debug, Default)]
pub struct ReloadMetrics {
    last_reload_successful: Gauge,
    last_reload_successful_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
    reloads: Family<OutcomeLabel, Counter>,
    hash: Family<HashLabel, Gauge>,
    tenants: Gauge,
}

impl ReloadMetrics {
    /// Registers under `strata_runtime_config_`.
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("strata_runtime_config");
        r.register(
            "last_reload_successful",
            "Whether the last attempt to load the runtime config file succeeded (1) or failed and the last good version is still used (0)",
            self.last_reload_successful.clone(),
        );
        r.register(
            "last_reload_successful_timestamp_seconds",
            "When the runtime config file was last loaded successfully (Unix seconds)",
            self.last_reload_successful_seconds.clone(),
        );
        r.register(
            "reload",
            "Loads of a changed runtime config file, by outcome (success, failure)",
            self.reloads.clone(),
        );
        r.register(
            "hash",
            "Hash (XXH3, hex) of the runtime config file in use, as a label; the value is 1",
            self.hash.clone(),
        );
        r.register(
            "tenants",
            "Tenants with an entry in the runtime config file in use",
            self.tenants.clone(),
        );
    }

    fn outcome(&self, outcome: &str) {
        self.reloads
            .get_or_create(&OutcomeLabel {
                outcome: outcome.to_string(),
            })
            .inc();
    }

    fn loaded(&self, snapshot: &Snapshot) {
        self.last_reload_successful.set(1);
        self.last_reload_successful_seconds
            .set(snapshot.loaded_at_ms as f64 / 1000.0);
        self.hash.clear();
        self.hash
            .get_or_create(&HashLabel {
                hash: snapshot.hash.clone(),
            })
            .set(1);
        self.tenants.set(snapshot.len() as i64);
        self.outcome("success");
    }

    fn failed(&self) {
        self.last_reload_successful.set(0);
        self.outcome("failure");
    }

    /// The number of loads with `outcome` so far (for tests).
    pub fn reloads(&self, outcome: &str) -> u64 {
        self.reloads
            .get_or_create(&OutcomeLabel {
                outcome: outcome.to_string(),
            })
            .get()
    }

    /// Whether the last load succeeded (for tests).
    pub fn last_successful(&self) -> bool {
        self.last_reload_successful.get() == 1
    }
}

/// What [`Reloader::reload`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReloadOutcome {
    /// Nothing changed since the last attempt (the same bytes, or still
    /// unreadable): nothing to do.
    Unchanged,
    /// A new version is in use.
    Loaded,
    /// The file cannot be read or is invalid; the version before stays in
    /// use. The message says why.
    Failed(String),
}

/// Loads the runtime config file into an [`Overrides`] handle and reloads
/// it when its bytes change.
pub struct Reloader {
    path: PathBuf,
    overrides: Overrides,
    metrics: ReloadMetrics,
    /// What the last attempt found, so an unchanged file, good or broken,
    /// is parsed, logged and counted once.
    last_tried: Mutex<Option<Tried>>,
}

/// What an attempt to load the file found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tried {
    /// Bytes with this hash (loaded or refused).
    Bytes(u64),
    /// No bytes: the file could not be read.
    Unreadable,
}

impl Reloader {
    pub fn new(path: impl Into<PathBuf>, overrides: Overrides, metrics: ReloadMetrics) -> Self {
        Self {
            path: path.into(),
            overrides,
            metrics,
            last_tried: Mutex::new(None),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn overrides(&self) -> &Overrides {
        &self.overrides
    }

    pub fn metrics(&self) -> &ReloadMetrics {
        &self.metrics
    }

    /// The first load, at start: a file that cannot be read or is invalid
    /// is an error (the process should not start without its limits).
    pub fn load_initial(&self) -> Result<(), OverridesError> {
        match self.reload() {
            ReloadOutcome::Failed(message) => Err(OverridesError::Load {
                path: self.path.display().to_string(),
                message,
            }),
            ReloadOutcome::Loaded | ReloadOutcome::Unchanged => Ok(()),
        }
    }

    /// Reads the file and, if its bytes changed since the last attempt,
    /// parses it and makes it current. A failure keeps the version in use,
    /// is logged and counted.
    pub fn reload(&self) -> ReloadOutcome {
        self.apply(std::fs::read(&self.path))
    }

    fn apply(&self, read: std::io::Result<Vec<u8>>) -> ReloadOutcome {
        let path = self.path.display().to_string();
        let bytes = match read {
            Ok(b) => b,
            Err(e) => {
                // Reported once while it stays unreadable; a file that comes
                // back, even with the same bytes as before, is loaded again.
                let before = self.last_tried.lock().replace(Tried::Unreadable);
                if before == Some(Tried::Unreadable) {
                    return ReloadOutcome::Unchanged;
                }
                tracing::error!(path, error = %e, "cannot read the runtime config file; keeping the overrides in use");
                self.metrics.failed();
                return ReloadOutcome::Failed(format!("cannot read the runtime config file: {e}"));
            }
        };
        let hash = twox_hash::XxHash3_64::oneshot(&bytes);
        let before = self.last_tried.lock().replace(Tried::Bytes(hash));
        if before == Some(Tried::Bytes(hash)) {
            return ReloadOutcome::Unchanged;
        }
        let parsed = std::str::from_utf8(&bytes)
            .map_err(|e| OverridesError::Invalid(format!("the file is not UTF-8: {e}")))
            .and_then(RuntimeConfigFile::parse);
        match parsed {
            Ok(file) => {
                let snapshot = Snapshot::new(
                    file,
                    format!("{hash:016x}"),
                    strata_model::duration::now_ms(),
                );
                tracing::info!(
                    path,
                    hash = %snapshot.hash,
                    tenants = snapshot.len(),
                    "runtime config loaded"
                );
                self.metrics.loaded(&snapshot);
                self.overrides.replace(snapshot);
                ReloadOutcome::Loaded
            }
            Err(e) => {
                tracing::error!(path, error = %e, "invalid runtime config file; keeping the overrides in use");
                self.metrics.failed();
                ReloadOutcome::Failed(e.to_string())
            }
        }
    }

    /// Reloads every `period` until `stop`.
    pub async fn run(self: std::sync::Arc<Self>, period: Duration, stop: CancellationToken) {
        let period = period.max(Duration::from_millis(100));
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(period) => {}
            }
            let read = tokio::fs::read(&self.path).await;
            self.apply(read);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, text: &str) {
        // As an operator's tooling should: write aside, then rename.
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, path).unwrap();
    }

    fn rate(handle: &Overrides, tenant: &str) -> Option<f64> {
        handle.get(tenant).and_then(|o| o.ingestion_rate)
    }

    #[test]
    fn reloads_on_change_and_keeps_the_last_good_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("overrides.yaml");
        write(&path, "overrides:\n  a:\n    ingestion_rate: 10\n");
        let handle = Overrides::new();
        let reloader = Reloader::new(&path, handle.clone(), ReloadMetrics::default());
        reloader.load_initial().unwrap();
        assert_eq!(rate(&handle, "a"), Some(10.0));
        let first_hash = handle.snapshot().hash.clone();
        assert_eq!(first_hash.len(), 16);
        assert_eq!(reloader.reload(), ReloadOutcome::Unchanged);

        // A change is picked up.
        write(&path, "overrides:\n  a:\n    ingestion_rate: 20\n  b: {}\n");
        assert_eq!(reloader.reload(), ReloadOutcome::Loaded);
        assert_eq!(rate(&handle, "a"), Some(20.0));
        assert!(handle.get("b").is_some());
        assert_ne!(handle.snapshot().hash, first_hash);
        assert_eq!(reloader.metrics().reloads("success"), 2);

        // A broken file keeps the last good version, counted and flagged
        // once while it stays the same.
        write(&path, "overrides:\n  a:\n    ingestion_rat: 30\n");
        match reloader.reload() {
            ReloadOutcome::Failed(msg) => assert!(msg.contains("ingestion_rat"), "{msg}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(rate(&handle, "a"), Some(20.0));
        assert!(!reloader.metrics().last_successful());
        assert_eq!(reloader.reload(), ReloadOutcome::Unchanged);
        assert_eq!(reloader.metrics().reloads("failure"), 1);

        // So does a missing one, reported once while it is missing.
        std::fs::remove_file(&path).unwrap();
        assert!(matches!(reloader.reload(), ReloadOutcome::Failed(_)));
        assert_eq!(reloader.reload(), ReloadOutcome::Unchanged);
        assert_eq!(rate(&handle, "a"), Some(20.0));

        // Fixed: loaded again.
        write(&path, "overrides:\n  a:\n    ingestion_rate: 40\n");
        assert_eq!(reloader.reload(), ReloadOutcome::Loaded);
        assert_eq!(rate(&handle, "a"), Some(40.0));
        assert!(reloader.metrics().last_successful());

        let mut registry = Registry::default();
        reloader.metrics().register(&mut registry);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains("strata_runtime_config_last_reload_successful 1"),
            "{text}"
        );
        assert!(
            text.contains("strata_runtime_config_reload_total{outcome=\"failure\"} 2"),
            "{text}"
        );
        let hash_line = format!(
            "strata_runtime_config_hash{{hash=\"{}\"}} 1",
            handle.snapshot().hash
        );
        assert!(text.contains(&hash_line), "{text}");
        assert_eq!(text.matches("strata_runtime_config_hash{").count(), 1);
    }

    #[test]
    fn a_broken_or_missing_file_at_start_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("overrides.yaml");
        let reloader = Reloader::new(&path, Overrides::new(), ReloadMetrics::default());
        let err = reloader.load_initial().unwrap_err().to_string();
        assert!(err.contains("overrides.yaml"), "{err}");
        write(&path, "overrides:\n  a:\n    nope: 1\n");
        let err = reloader.load_initial().unwrap_err().to_string();
        assert!(err.contains("nope"), "{err}");
    }

    #[tokio::test]
    async fn the_task_reloads_every_period() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("overrides.yaml");
        write(&path, "overrides:\n  a:\n    ingestion_rate: 1\n");
        let handle = Overrides::new();
        let reloader = std::sync::Arc::new(Reloader::new(
            &path,
            handle.clone(),
            ReloadMetrics::default(),
        ));
        reloader.load_initial().unwrap();
        let stop = CancellationToken::new();
        let task = tokio::spawn(
            reloader
                .clone()
                .run(Duration::from_millis(100), stop.clone()),
        );
        write(&path, "overrides:\n  a:\n    ingestion_rate: 2\n");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while rate(&handle, "a") != Some(2.0) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(rate(&handle, "a"), Some(2.0));
        stop.cancel();
        task.await.unwrap();
    }
}
