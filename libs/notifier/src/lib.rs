//! Delivery of the ruler's alerts to Alertmanager, the way Prometheus's
//! notifier (`prometheus/notifier`) and the per-tenant notifiers of Cortex's
//! ruler do it.
//!
//! The ruler hands alerts to [`NotifierManager::send`], which only puts
//! them on the tenant's bounded queue: rule evaluation never waits for an
//! Alertmanager. A task per tenant takes batches of up to
//! [`NotifierConfig::max_batch_size`] alerts off the queue and posts each
//! batch, as Alertmanager v2's `postableAlerts` JSON, to
//! `<base URL>/api/v2/alerts` of every Alertmanager of the tenant at once,
//! with `X-Scope-OrgID: <tenant>` (which the multi-tenant Alertmanagers of
//! Cortex and Mimir need and a plain Alertmanager ignores).
//!
//! Semantics follow Prometheus:
//!
//! * a full queue drops its **oldest** alerts, counted in
//!   `strata_ruler_notifications_dropped_total`;
//! * external labels ([`NotifierConfig::external_labels`]) are added to
//!   every alert that lacks them (an empty value counts as lacking);
//! * a batch is sent when at least one Alertmanager answers 2xx; it is
//!   not retried, and counts as dropped when none does. Each failing
//!   Alertmanager counts the batch's alerts in
//!   `strata_ruler_notifications_errors_total` and logs the error;
//! * every request is bounded by [`NotifierConfig::timeout`].
//!
//! Deciding *what* to send and when (pending, firing, resolved with an
//! `ends_at` in the past, resending every resend delay) is the ruler's job;
//! this crate only delivers.
//!
//! Per-tenant Alertmanager lists override the default one through
//! [`NotifierManager::set_tenant_urls`]. Credentials in a URL
//! (`http://user:pass@am:9093`) become basic auth and never show in
//! metric labels or logs.
//!
//! # Metrics
//!
//! [`NotifierMetrics::register`] registers names without the `strata_`
//! prefix, like the querier's metrics; register into
//! `registry.sub_registry_with_prefix("strata")`:
//!
//! ```
//! # use prometheus_client::registry::Registry;
//! let metrics = strata_notifier::NotifierMetrics::default();
//! let mut registry = Registry::default();
//! metrics.register(registry.sub_registry_with_prefix("strata"));
//! ```
//!
//! which yields `strata_ruler_notifications_sent_total{tenant,alertmanager}`,
//! `strata_ruler_notifications_errors_total{tenant,alertmanager}`,
//! `strata_ruler_notifications_dropped_total{tenant}`,
//! `strata_ruler_notifications_queue_length{tenant}`,
//! `strata_ruler_notifications_queue_capacity` and the histogram
//! `strata_ruler_notification_latency_seconds`.
//!
//! # Example
//!
//! ```no_run
//! # async fn example() -> Result<(), strata_notifier::NotifierError> {
//! use std::time::{Duration, SystemTime};
//! use strata_notifier::{Alert, NotifierConfig, NotifierManager, NotifierMetrics};
//!
//! let config = NotifierConfig {
//!     alertmanager_urls: vec!["http://alertmanager:9093".into()],
//!     ..Default::default()
//! };
//! let manager = NotifierManager::new(config, NotifierMetrics::default())?;
//! let now = SystemTime::now();
//! manager.send(
//!     "team-a",
//!     vec![Alert {
//!         labels: [("alertname".to_string(), "HighLatency".to_string())].into(),
//!         annotations: Default::default(),
//!         starts_at: now,
//!         ends_at: Some(now + Duration::from_secs(240)),
//!         generator_url: "http://ruler/graph?g0.expr=...".into(),
//!     }],
//! );
//! manager.stop().await;
//! # Ok(())
//! # }
//! ```

mod alert;
mod config;
mod error;
mod manager;
mod metrics;

pub use alert::Alert;
pub use config::{
    NotifierConfig, ALERTS_PATH, DEFAULT_DRAIN_TIMEOUT, DEFAULT_MAX_BATCH_SIZE,
    DEFAULT_QUEUE_CAPACITY, DEFAULT_TIMEOUT,
};
pub use error::NotifierError;
pub use manager::NotifierManager;
pub use metrics::NotifierMetrics;

#[cfg(test)]
mod tests;
