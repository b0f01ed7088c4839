//! The one crate that talks to AWS.
//!
//! Everything that needs the AWS SDK lives here, so the rest of the workspace builds without
//! it and sees only the storage traits it implements. For now: [`DynamoRingStore`], a
//! [`strata_ring::RingStore`] on DynamoDB (or any server speaking its API, such as dynalite).

mod config;
mod error;
mod ring_store;

pub use config::{dynamodb_client, AwsConfig};
pub use error::AwsError;
pub use ring_store::{DynamoRingStore, DynamoRingStoreConfig};
