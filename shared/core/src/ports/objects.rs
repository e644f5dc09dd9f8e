//! The `ObjectStore` port: where uploaded files live (S3; a directory on the
//! host). Quper never carries a file's bytes itself: it hands the client a
//! presigned URL for one PUT of one object (its key, content type and exact
//! size are part of the signature) or for one GET, each expiring, and later
//! asks the store what arrived (`head`) or removes it (`delete`).

use std::time::Duration;

use async_trait::async_trait;

/// What is stored under a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectHead {
    /// Bytes stored.
    pub size: u64,
    /// The content type it was stored with, if any.
    pub content_type: Option<String>,
}

/// A presigned request: the URL and the headers the client must send with
/// it (a PUT's `Content-Type`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presigned {
    pub url: String,
    /// Headers the signature covers, which the client must send as given.
    pub headers: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ObjectError {
    /// The key is not one Quper makes (the adapter refuses it before any call).
    #[error("invalid object key: {0}")]
    InvalidKey(String),
    /// The store did not answer or refused the call.
    #[error("object store: {0}")]
    Unavailable(String),
}

impl From<ObjectError> for crate::error::DomainError {
    fn from(err: ObjectError) -> Self {
        match err {
            ObjectError::InvalidKey(message) => crate::error::DomainError::Internal(message),
            ObjectError::Unavailable(message) => crate::error::DomainError::Unavailable {
                service: "the file store",
                message,
            },
        }
    }
}

#[async_trait]
pub trait ObjectStore: Send + Sync {
    /// A URL for one `PUT` of `key` with exactly `size` bytes of
    /// `content_type`, valid for `expires_in` from now.
    async fn presign_put(
        &self,
        key: &str,
        content_type: &str,
        size: u64,
        expires_in: Duration,
    ) -> Result<Presigned, ObjectError>;

    /// A URL for `GET` of `key`, valid for `expires_in` from now.
    async fn presign_get(&self, key: &str, expires_in: Duration) -> Result<Presigned, ObjectError>;

    /// What is stored under `key`; `None` when nothing is.
    async fn head(&self, key: &str) -> Result<Option<ObjectHead>, ObjectError>;

    /// Removes `key` (absent is fine).
    async fn delete(&self, key: &str) -> Result<(), ObjectError>;
}

/// The object store of a deployment that has none (no `QUPER_FILES_BUCKET`):
/// every call is a 503 that says so.
pub struct NoObjectStore;

fn not_configured() -> ObjectError {
    ObjectError::Unavailable("no file storage is configured (QUPER_FILES_BUCKET)".into())
}

#[async_trait]
impl ObjectStore for NoObjectStore {
    async fn presign_put(&self, _: &str, _: &str, _: u64, _: Duration) -> Result<Presigned, ObjectError> {
        Err(not_configured())
    }

    async fn presign_get(&self, _: &str, _: Duration) -> Result<Presigned, ObjectError> {
        Err(not_configured())
    }

    async fn head(&self, _: &str) -> Result<Option<ObjectHead>, ObjectError> {
        Err(not_configured())
    }

    async fn delete(&self, _: &str) -> Result<(), ObjectError> {
        Err(not_configured())
    }
}

/// Whether `key` is one Quper makes: `/`-separated segments of ASCII
/// letters, digits, `.`, `_` and `-`, none empty, `.` or `..`, at most 1024
/// bytes. Both adapters refuse any other key, so none can leave its prefix
/// (or the host's directory).
pub fn valid_key(key: &str) -> bool {
    key.len() <= 1024
        && !key.is_empty()
        && key.split('/').all(|segment| {
            !segment.is_empty()
                && segment != "."
                && segment != ".."
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        })
}

#[cfg(test)]
mod tests {
    use super::valid_key;

    #[test]
    fn keys_cannot_escape() {
        assert!(valid_key("uploads/acme/0000000001/0b6e/report.pdf"));
        for bad in [
            "", "/a", "a/", "a//b", "a/../b", "..", "a/./b", "a\\b", "a b", "a#b", "é",
        ] {
            assert!(!valid_key(bad), "{bad:?}");
        }
    }
}
