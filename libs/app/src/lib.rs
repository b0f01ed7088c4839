//! The composition root: the configuration file and a runner for every role.
//!
//! Service binaries are thin: they parse the command line into a [`Config`]
//! and call one of the `run_*` functions here, which build the role's parts
//! from the libraries, serve HTTP and gRPC, and shut down cleanly when the
//! cancellation token fires (SIGTERM/SIGINT).

mod config;
mod ring_http;
mod roles;
mod storage;

pub use config::{Config, LifecyclerSection, RingSection, RingStoreKind, ServerSection};
pub use roles::{main_for, run, Role};
