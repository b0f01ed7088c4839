//! AWS SDK clients as every Strata crate that talks to AWS builds them.
//!
//! One place decides the region, the endpoint override (dynalite, s3s-fs,
//! MinIO), how credentials are found (the SDK's default chain, or fixed
//! local ones against an overridden endpoint), the timeouts, and HTTPS on
//! rustls with the `ring` provider. The SDK itself stays in the few leaf
//! crates that need it: `chunk-store` (S3), `index` (DynamoDB) and
//! `ring-dynamodb`.

mod config;

pub use config::{dynamodb_client, AwsConfig};
