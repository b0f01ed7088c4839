use thiserror::Error;

#[derive(Debug, Error)]
pub enum RulerError {
    /// The rule store could not be read or written.
    #[error("rule store: {0}")]
    Store(String),
    /// A stored rule group no longer parses.
    #[error("{0}")]
    Corrupt(String),
    /// A rule file refused on upload.
    #[error("{0}")]
    Invalid(String),
    /// A per-tenant limit refused an upload.
    #[error("{0}")]
    Limit(String),
    #[error("{0}")]
    NotFound(String),
}
