//! The composition root: the configuration file and the modules every role
//! is made of.
//!
//! Service binaries are thin: they call [`main_for`] with their [`Role`],
//! which parses the command line into a [`Config`] and calls [`run`]; it
//! builds the role's modules from the libraries in dependency order
//! (`modules`), serves HTTP and gRPC, and shuts down cleanly when the
//! cancellation token fires (SIGTERM/SIGINT).

mod config;
mod modules;
mod read_gaps;
mod ring_http;
mod roles;
mod runner;
mod storage;

pub use config::{Config, LifecyclerSection, RingSection, RingStoreKind, ServerSection};
pub use roles::{main_for, Role};
pub use runner::run;
