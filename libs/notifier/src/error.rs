//! Errors.

use std::time::Duration;

/// Why a manager could not be built or reconfigured.
#[derive(Debug, thiserror::Error)]
pub enum NotifierError {
    #[error("invalid Alertmanager URL {url}: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("invalid notifier configuration: {0}")]
    InvalidConfig(String),
    #[error("invalid tenant {tenant:?}: {reason}")]
    InvalidTenant { tenant: String, reason: String },
    #[error("the notifier needs a Tokio runtime: create it from within one")]
    NoRuntime,
    #[error("building the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    #[error("the notifier is stopped")]
    Stopped,
}

/// Why one request to one Alertmanager failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SendError {
    #[error("{}", error_chain(.0))]
    Http(#[source] reqwest::Error),
    #[error("bad response status {status}: {body}")]
    Status { status: u16, body: String },
    #[error("no answer within the {0:?} timeout")]
    Timeout(Duration),
}

/// An error and its sources, `a: b: c` (reqwest's own message rarely says
/// what went wrong, such as "connection refused").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}
