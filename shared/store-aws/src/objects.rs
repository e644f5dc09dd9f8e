//! The `ObjectStore` port on S3: presigned `PutObject` (content type and
//! length signed) and `GetObject` URLs, `HeadObject`, `DeleteObject`, in the
//! bucket `QUPER_FILES_BUCKET`. `QUPER_S3_ENDPOINT` points the client at an
//! emulator (moto), with path-style addressing. The client is built on its
//! first call.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_config::BehaviorVersion;
use aws_sdk_s3::Client;
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::presigning::{PresignedRequest, PresigningConfig};
use quper_core::ports::objects::valid_key;
use quper_core::ports::{Clock, ObjectError, ObjectHead, ObjectStore, Presigned};
use tokio::sync::OnceCell;

/// The bucket of uploaded files.
pub const FILES_BUCKET_ENV: &str = "QUPER_FILES_BUCKET";
/// An endpoint that replaces S3's (moto), addressed path-style.
pub const S3_ENDPOINT_ENV: &str = "QUPER_S3_ENDPOINT";

/// Uploaded files in an S3 bucket.
pub struct S3Objects {
    bucket: String,
    endpoint: Option<String>,
    clock: Arc<dyn Clock>,
    client: OnceCell<Client>,
}

impl S3Objects {
    /// Files in `bucket`, through `endpoint` (path-style) instead of S3 when
    /// given; times of signatures from `clock`.
    pub fn new(bucket: impl Into<String>, endpoint: Option<String>, clock: Arc<dyn Clock>) -> S3Objects {
        S3Objects {
            bucket: bucket.into(),
            endpoint: endpoint.filter(|e| !e.trim().is_empty()),
            clock,
            client: OnceCell::new(),
        }
    }

    /// From `QUPER_FILES_BUCKET` and `QUPER_S3_ENDPOINT`; `None` without a
    /// bucket.
    pub fn from_env(clock: Arc<dyn Clock>) -> Option<S3Objects> {
        let bucket = std::env::var(FILES_BUCKET_ENV).ok().filter(|b| !b.trim().is_empty())?;
        Some(S3Objects::new(
            bucket.trim(),
            std::env::var(S3_ENDPOINT_ENV).ok(),
            clock,
        ))
    }

    /// The S3 client (built on first use).
    pub async fn client(&self) -> &Client {
        self.client
            .get_or_init(|| s3_client_with_endpoint(self.endpoint.clone()))
            .await
    }

    fn presigning(&self, expires_in: Duration) -> Result<PresigningConfig, ObjectError> {
        PresigningConfig::builder()
            .start_time(SystemTime::from(self.clock.now()))
            .expires_in(expires_in)
            .build()
            .map_err(|err| ObjectError::Unavailable(format!("presigning: {err}")))
    }
}

/// An S3 client configured from the environment, pointed at `endpoint`
/// (path-style) when given.
pub async fn s3_client_with_endpoint(endpoint: Option<String>) -> Client {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    let path_style = endpoint.is_some();
    if let Some(endpoint) = endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    let shared = loader.load().await;
    let config = aws_sdk_s3::config::Builder::from(&shared)
        .force_path_style(path_style)
        .build();
    Client::from_conf(config)
}

fn check_key(key: &str) -> Result<(), ObjectError> {
    if valid_key(key) {
        Ok(())
    } else {
        Err(ObjectError::InvalidKey(key.to_owned()))
    }
}

fn sdk_error<E: std::error::Error>(what: &str, err: E) -> ObjectError {
    ObjectError::Unavailable(format!("{what}: {}", DisplayErrorContext(err)))
}

/// The URL and the headers a client must send with it (`content-length` is
/// left out: every client sends it, and browsers may not set it).
fn presigned(request: PresignedRequest) -> Presigned {
    Presigned {
        url: request.uri().to_owned(),
        headers: request
            .headers()
            .filter(|(name, _)| !name.eq_ignore_ascii_case("content-length"))
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect(),
    }
}

#[async_trait]
impl ObjectStore for S3Objects {
    async fn presign_put(
        &self,
        key: &str,
        content_type: &str,
        size: u64,
        expires_in: Duration,
    ) -> Result<Presigned, ObjectError> {
        check_key(key)?;
        let length = i64::try_from(size).map_err(|_| ObjectError::InvalidKey(format!("size {size}")))?;
        let request = self
            .client()
            .await
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .content_length(length)
            .presigned(self.presigning(expires_in)?)
            .await
            .map_err(|err| sdk_error("presign PutObject", err))?;
        Ok(presigned(request))
    }

    async fn presign_get(&self, key: &str, expires_in: Duration) -> Result<Presigned, ObjectError> {
        check_key(key)?;
        let name = key.rsplit('/').next().unwrap_or("file");
        let request = self
            .client()
            .await
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .response_content_disposition(format!("attachment; filename=\"{name}\""))
            .presigned(self.presigning(expires_in)?)
            .await
            .map_err(|err| sdk_error("presign GetObject", err))?;
        Ok(presigned(request))
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectHead>, ObjectError> {
        check_key(key)?;
        match self
            .client()
            .await
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(head) => Ok(Some(ObjectHead {
                size: head.content_length().and_then(|n| u64::try_from(n).ok()).unwrap_or(0),
                content_type: head.content_type().map(str::to_owned),
            })),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_not_found()) => Ok(None),
            Err(err) if err.raw_response().is_some_and(|r| r.status().as_u16() == 404) => Ok(None),
            Err(err) => Err(sdk_error("HeadObject", err)),
        }
    }

    async fn delete(&self, key: &str) -> Result<(), ObjectError> {
        check_key(key)?;
        self.client()
            .await
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|err| sdk_error("DeleteObject", err))?;
        Ok(())
    }
}
