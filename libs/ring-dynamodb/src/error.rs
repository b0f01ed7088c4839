//! Errors of the DynamoDB ring store.

/// A failed AWS call or an unexpected stored value.
#[derive(Debug, thiserror::Error)]
pub enum RingStoreError {
    /// An SDK call failed; `message` carries the full error chain.
    #[error("dynamodb {operation} on table {table}: {message}")]
    DynamoDb {
        operation: &'static str,
        table: String,
        message: String,
    },

    /// An item in the table does not have the expected shape.
    #[error("malformed item in table {table}: {message}")]
    MalformedItem { table: String, message: String },

    /// A table did not become ACTIVE in time.
    #[error("table {table} not active after {waited_secs}s")]
    TableNotReady { table: String, waited_secs: u64 },
}
