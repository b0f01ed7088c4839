//! The ruler: each tenant's Prometheus recording and alerting rules,
//! evaluated as a Prometheus server would evaluate them.
//!
//! - Rule groups are kept per tenant and namespace in an object store
//!   ([`RuleStore`]) and managed through the API mimirtool and Grafana use
//!   ([`ruler_routes`]); uploads are validated as `promtool check rules`
//!   validates them (`strata-rulefmt`) and checked against per-tenant limits.
//! - A [`RulerManager`] runs the groups this replica owns on the ruler ring
//!   (every group without a ring); when a replica dies its groups move to
//!   the others at their next ring poll after its heartbeat times out.
//! - Each group evaluates at its interval, at times aligned as Prometheus
//!   aligns them, its rules in order ([`group`]); reads go through a
//!   [`RuleQuerier`] (the querier's view: ingesters and store) and results
//!   are written through a [`RuleWriter`] (the distributor, in process).
//! - Alerts follow Prometheus's state machine with `for` and
//!   `keep_firing_for`, write `ALERTS` and `ALERTS_FOR_STATE`, restore their
//!   `for` state after a restart, and are sent to Alertmanager
//!   (`strata-notifier`) with Prometheus's resend rules.

pub mod api;
pub mod config;
mod error;
pub mod group;
pub mod manager;
pub mod metrics;
pub mod rules;
pub mod store;

pub use api::ruler_routes;
pub use config::{RuleStorageBackend, RulerConfig, RulerLimits, RulerRingConfig};
pub use error::RulerError;
pub use group::{GroupDeps, GroupView};
pub use manager::{RulerManager, RulerRing};
pub use metrics::RulerMetrics;
pub use rules::{RuleQuerier, RuleWriter};
pub use store::{GroupKey, RuleStore};
