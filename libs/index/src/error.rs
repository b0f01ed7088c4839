//! Errors of the index and its row stores.

/// Everything that can go wrong reading or writing the index.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// The schema configuration is not usable; the message names the period and the field.
    #[error("invalid index schema: {0}")]
    InvalidSchema(String),

    /// A caller passed something the index cannot store; the message says what to change.
    #[error("invalid index request: {0}")]
    InvalidRequest(String),

    /// A table the schema names has not been created.
    #[error("index table {table} does not exist: call Index::ensure_tables (or create it) first")]
    TableMissing { table: String },

    /// An item is larger than DynamoDB accepts.
    #[error(
        "index item under hash key {hash:?} in table {table} is {size} bytes, over DynamoDB's \
         limit of {limit} bytes: split it into smaller items"
    )]
    ItemTooLarge {
        table: String,
        hash: String,
        size: usize,
        limit: usize,
    },

    /// A key is longer or shorter than DynamoDB accepts.
    #[error("index item key in table {table}: {message}")]
    BadKey { table: String, message: String },

    /// A DynamoDB call failed (after retries, for retryable errors).
    #[error("dynamodb {operation} on table {table}: {message}")]
    DynamoDb {
        operation: &'static str,
        table: String,
        message: String,
    },

    /// The embedded store failed.
    #[error("embedded index store {operation}: {message}")]
    Embedded {
        operation: &'static str,
        message: String,
    },

    /// A stored item could not be decoded: it was damaged or written by something else.
    #[error(
        "corrupt index item in table {table} under hash key {hash:?}: {message} \
         (the item was damaged or not written by strata)"
    )]
    Corrupt {
        table: String,
        hash: String,
        message: String,
    },
}

impl IndexError {
    pub(crate) fn embedded(operation: &'static str, err: impl std::fmt::Display) -> Self {
        IndexError::Embedded {
            operation,
            message: err.to_string(),
        }
    }

    pub(crate) fn corrupt(table: &str, hash: &str, message: impl Into<String>) -> Self {
        IndexError::Corrupt {
            table: table.to_string(),
            hash: hash.to_string(),
            message: message.into(),
        }
    }
}
