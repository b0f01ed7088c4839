//! The object store interface.

use bytes::Bytes;

use crate::error::StoreError;

/// A flat namespace of immutable objects: S3, or a directory on a local disk.
///
/// Keys are `/`-separated paths such as `tenant/chunks/19876/ingester-1-42`.
#[async_trait::async_trait]
pub trait ObjectStore: Send + Sync + 'static {
    /// Stores `body` under `key`, replacing any object there. Readers see the old object or
    /// the new one, never a part.
    async fn put(&self, key: &str, body: Bytes) -> Result<(), StoreError>;

    /// Reads `len` bytes from `offset`. Fewer bytes come back when the object ends earlier
    /// (none when it ends before `offset`); [`StoreError::NotFound`] for a missing key.
    async fn get_range(&self, key: &str, offset: u64, len: u64) -> Result<Bytes, StoreError>;

    /// Reads the last `len` bytes of the object (all of it when it is shorter).
    ///
    /// The default reads the whole object; stores that can ask for a suffix override it.
    async fn get_tail(&self, key: &str, len: u64) -> Result<Bytes, StoreError> {
        let body = self.get(key).await?;
        let start = body
            .len()
            .saturating_sub(usize::try_from(len).unwrap_or(usize::MAX));
        Ok(body.slice(start..))
    }

    /// Reads the whole object.
    async fn get(&self, key: &str) -> Result<Bytes, StoreError>;

    /// Keys starting with `prefix` (a plain string prefix, not only whole segments), sorted.
    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError>;

    /// Deletes the object; deleting a missing key succeeds.
    async fn delete(&self, key: &str) -> Result<(), StoreError>;

    /// `"local"` or `"s3"` (a label on metrics).
    fn kind(&self) -> &'static str;
}

/// Checks that `key` is a relative `/`-separated path without empty, `.` or `..` segments.
pub(crate) fn validate_key(key: &str) -> Result<(), StoreError> {
    let invalid = |reason: &'static str| {
        Err(StoreError::InvalidKey {
            key: key.to_string(),
            reason,
        })
    };
    if key.is_empty() {
        return invalid("the key is empty");
    }
    if key.starts_with('/') {
        return invalid("the key is an absolute path; drop the leading '/'");
    }
    if key.contains('\0') || key.contains('\\') {
        return invalid("the key contains a NUL byte or a backslash");
    }
    for segment in key.split('/') {
        match segment {
            "" => return invalid("the key has an empty segment ('//' or a trailing '/')"),
            "." | ".." => return invalid("the key has a '.' or '..' segment"),
            _ => {}
        }
    }
    Ok(())
}
