//! Credentials at the edge (`docs/auth.md`).
//!
//! In `tokens` mode every HTTP request authenticates with a tenant's API
//! token, by basic auth (user = tenant ID, password = token, as Prometheus's
//! `remote_write.basic_auth` and Grafana send it) or as a bearer token. The
//! tokens live only as salted SHA-256 hashes in a tenants file
//! ([`tenants`]) that every service re-reads every `auth.reload_period`,
//! keeping the last good version when it is broken ([`Authenticator`]).
//! One middleware around a service's whole router ([`middleware`]) turns
//! the credentials into the only `X-Scope-OrgID` the handlers see. Tokens
//! are managed through the admin API ([`admin`]) or `strata-admin` ([`cli`]).

pub mod admin;
mod authenticator;
pub mod cli;
mod config;
pub mod metrics;
pub mod middleware;
pub mod secret;
pub mod tenants;

pub use authenticator::{reason, Authenticator, Failure};
pub use config::{AuthConfig, AuthMode};
pub use metrics::AuthMetrics;
