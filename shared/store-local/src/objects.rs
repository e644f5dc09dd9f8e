//! The `ObjectStore` port on a directory (`QUPER_FILES_DIR`, default
//! `<data dir>/files`), served by the host itself at
//! `PUT`/`GET /local-files/<key>?expires=&type=&size=&signature=` (the
//! router is `quper::local_files`), so the whole upload flow works with curl
//! on a laptop.
//!
//! A URL is signed with HMAC-SHA256 under a key derived from the host's
//! secrets key; the signature covers the method, the object key, the content
//! type, the exact size and the expiry, so a URL cannot be used after it
//! expires, for another key, with another content type or for more bytes.
//! Objects are kept under `<dir>/objects/<key>`, their content type under
//! `<dir>/meta/<key>`; an upload is written to `<dir>/tmp/` and renamed into
//! place only when exactly the declared bytes arrived.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use quper_core::ports::objects::valid_key;
use quper_core::ports::{Clock, ObjectError, ObjectHead, ObjectStore, Presigned};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

/// The path the host serves local objects under.
pub const ROUTE_PREFIX: &str = "/local-files/";
/// The directory of local objects, when not `<data dir>/files`.
pub const FILES_DIR_ENV: &str = "QUPER_FILES_DIR";

type HmacSha256 = Hmac<Sha256>;

/// Objects in a directory, with URLs the host verifies.
#[derive(Clone)]
pub struct LocalObjects {
    dir: PathBuf,
    /// HMAC key: 32 derived bytes, zero-padded to SHA-256's block (HMAC
    /// pads a shorter key the same way).
    key: [u8; 64],
    clock: Arc<dyn Clock>,
    base_url: Arc<RwLock<String>>,
}

/// The query of a signed URL.
#[derive(Debug, Clone, Deserialize)]
pub struct SignedQuery {
    /// Unix seconds after which the URL is refused.
    pub expires: i64,
    /// The content type a PUT must carry (absent on GETs).
    #[serde(default, rename = "type")]
    pub content_type: Option<String>,
    /// The exact byte count a PUT must carry (absent on GETs).
    #[serde(default)]
    pub size: Option<u64>,
    pub signature: String,
}

/// Why a request to a signed URL is refused, before any byte is stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("this URL has expired")]
    Expired,
    #[error("the signature does not match this URL (tampered with, or for another object)")]
    BadSignature,
    #[error("a PUT must declare its Content-Length")]
    LengthRequired,
    #[error("the body is {got} bytes; this URL takes exactly {declared}")]
    TooLarge { declared: u64, got: u64 },
    #[error("the body is {got} bytes; this URL takes exactly {declared}")]
    WrongLength { declared: u64, got: u64 },
    #[error("the Content-Type must be {expected}")]
    WrongContentType { expected: String },
    #[error("no such object")]
    NotFound,
}

impl Refusal {
    /// The HTTP status of the refusal.
    pub fn status(&self) -> u16 {
        match self {
            Refusal::Expired | Refusal::BadSignature => 403,
            Refusal::LengthRequired => 411,
            Refusal::TooLarge { .. } => 413,
            Refusal::WrongLength { .. } | Refusal::WrongContentType { .. } => 400,
            Refusal::NotFound => 404,
        }
    }
}

/// What a checked PUT may write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutGrant {
    pub size: u64,
    pub content_type: String,
}

fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

impl LocalObjects {
    /// Objects under `dir` (created 0700 when missing), URLs signed with a
    /// key derived from `secret` (the host's secrets key) and starting with
    /// `base_url` (`http://host:port`; see [`LocalObjects::set_base_url`]).
    pub fn new(dir: &Path, secret: &str, clock: Arc<dyn Clock>, base_url: &str) -> std::io::Result<LocalObjects> {
        for sub in ["objects", "meta", "tmp"] {
            let mut builder = std::fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
            builder.create(dir.join(sub))?;
        }
        let mut digest = Sha256::new();
        digest.update(b"quper local files\n");
        digest.update(secret.as_bytes());
        let mut key = [0u8; 64];
        key[..32].copy_from_slice(&digest.finalize());
        Ok(LocalObjects {
            dir: dir.to_owned(),
            key,
            clock,
            base_url: Arc::new(RwLock::new(base_url.trim_end_matches('/').to_owned())),
        })
    }

    /// Where URLs point from now on (the host learns its address when it
    /// binds, unless `QUPER_PUBLIC_URL` names it).
    pub fn set_base_url(&self, base_url: &str) {
        if let Ok(mut base) = self.base_url.write() {
            *base = base_url.trim_end_matches('/').to_owned();
        }
    }

    fn base_url(&self) -> String {
        self.base_url.read().map(|base| base.clone()).unwrap_or_default()
    }

    fn mac(&self, method: &str, key: &str, content_type: &str, size: Option<u64>, expires: i64) -> HmacSha256 {
        let mut mac = <HmacSha256 as KeyInit>::new((&self.key).into());
        let size = size.map(|s| s.to_string()).unwrap_or_default();
        mac.update(format!("{method}\n{key}\n{content_type}\n{size}\n{expires}").as_bytes());
        mac
    }

    fn signed_url(
        &self,
        method: &str,
        key: &str,
        content_type: &str,
        size: Option<u64>,
        expires_in: Duration,
    ) -> String {
        let expires = self.clock.now().timestamp() + expires_in.as_secs() as i64;
        let signature = hex::encode(
            self.mac(method, key, content_type, size, expires)
                .finalize()
                .into_bytes(),
        );
        let mut url = format!("{}{ROUTE_PREFIX}{key}?expires={expires}", self.base_url());
        if let Some(size) = size {
            url.push_str(&format!("&type={}&size={size}", percent_encode(content_type)));
        }
        url.push_str(&format!("&signature={signature}"));
        url
    }

    fn verify(&self, method: &str, key: &str, query: &SignedQuery) -> Result<(), Refusal> {
        if !valid_key(key) {
            return Err(Refusal::BadSignature);
        }
        let content_type = query.content_type.as_deref().unwrap_or_default();
        let signature = hex::decode(&query.signature).map_err(|_| Refusal::BadSignature)?;
        self.mac(method, key, content_type, query.size, query.expires)
            .verify_slice(&signature)
            .map_err(|_| Refusal::BadSignature)?;
        if self.clock.now().timestamp() > query.expires {
            return Err(Refusal::Expired);
        }
        Ok(())
    }

    /// Checks a PUT to `key` before its body is read: the signature, the
    /// expiry, the declared `Content-Length` (exactly the signed size) and
    /// `Content-Type` (the signed type).
    pub fn check_put(
        &self,
        key: &str,
        query: &SignedQuery,
        content_type: Option<&str>,
        content_length: Option<u64>,
    ) -> Result<PutGrant, Refusal> {
        self.verify("PUT", key, query)?;
        let (Some(size), Some(expected)) = (query.size, query.content_type.clone()) else {
            return Err(Refusal::BadSignature);
        };
        let sent = content_type.map(|t| t.trim().to_ascii_lowercase());
        if sent.as_deref() != Some(expected.as_str()) {
            return Err(Refusal::WrongContentType { expected });
        }
        match content_length {
            None => Err(Refusal::LengthRequired),
            Some(got) if got > size => Err(Refusal::TooLarge { declared: size, got }),
            Some(got) if got != size => Err(Refusal::WrongLength { declared: size, got }),
            Some(_) => Ok(PutGrant {
                size,
                content_type: expected,
            }),
        }
    }

    /// Checks a GET of `key`: the signature and the expiry.
    pub fn check_get(&self, key: &str, query: &SignedQuery) -> Result<(), Refusal> {
        self.verify("GET", key, query)
    }

    fn object_path(&self, key: &str) -> PathBuf {
        self.dir.join("objects").join(key)
    }

    fn meta_path(&self, key: &str) -> PathBuf {
        self.dir.join("meta").join(key)
    }

    /// Starts writing the upload `grant` allows to `key`: bytes go to a
    /// temporary file, which [`PendingPut::finish`] moves into place.
    pub async fn begin_put(&self, key: &str, grant: PutGrant) -> std::io::Result<PendingPut> {
        let temp = self.dir.join("tmp").join(quper_core::auth::random_hex(16));
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
            .await?;
        Ok(PendingPut {
            file: Some(file),
            temp,
            object: self.object_path(key),
            meta: self.meta_path(key),
            grant,
            written: 0,
        })
    }

    /// The stored object `key` (opened) and what it is; `None` if absent.
    pub async fn open(&self, key: &str) -> std::io::Result<Option<(tokio::fs::File, ObjectHead)>> {
        if !valid_key(key) {
            return Ok(None);
        }
        let Some(head) = self.head_of(key).await? else {
            return Ok(None);
        };
        match tokio::fs::File::open(self.object_path(key)).await {
            Ok(file) => Ok(Some((file, head))),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err),
        }
    }

    async fn head_of(&self, key: &str) -> std::io::Result<Option<ObjectHead>> {
        let metadata = match tokio::fs::metadata(self.object_path(key)).await {
            Ok(metadata) if metadata.is_file() => metadata,
            Ok(_) => return Ok(None),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(err),
        };
        let content_type = match tokio::fs::read_to_string(self.meta_path(key)).await {
            Ok(text) => Some(text.trim().to_owned()),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
            Err(err) => return Err(err),
        };
        Ok(Some(ObjectHead {
            size: metadata.len(),
            content_type,
        }))
    }
}

/// An upload being written; dropped unfinished, its temporary file goes.
pub struct PendingPut {
    file: Option<tokio::fs::File>,
    temp: PathBuf,
    object: PathBuf,
    meta: PathBuf,
    grant: PutGrant,
    written: u64,
}

impl PendingPut {
    /// Appends `chunk`; more bytes than granted are refused (nothing is
    /// kept: the upload is abandoned).
    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), PutError> {
        let got = self.written + chunk.len() as u64;
        if got > self.grant.size {
            return Err(PutError::Refused(Refusal::TooLarge {
                declared: self.grant.size,
                got,
            }));
        }
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| PutError::Io(std::io::Error::other("closed")))?;
        file.write_all(chunk).await.map_err(PutError::Io)?;
        self.written = got;
        Ok(())
    }

    /// Moves the upload into place if exactly the granted bytes arrived.
    pub async fn finish(mut self) -> Result<(), PutError> {
        if self.written != self.grant.size {
            return Err(PutError::Refused(Refusal::WrongLength {
                declared: self.grant.size,
                got: self.written,
            }));
        }
        if let Some(mut file) = self.file.take() {
            file.flush().await.map_err(PutError::Io)?;
            file.sync_all().await.map_err(PutError::Io)?;
        }
        for path in [&self.object, &self.meta] {
            if let Some(parent) = path.parent() {
                tokio::fs::create_dir_all(parent).await.map_err(PutError::Io)?;
            }
        }
        tokio::fs::write(&self.meta, &self.grant.content_type)
            .await
            .map_err(PutError::Io)?;
        tokio::fs::rename(&self.temp, &self.object)
            .await
            .map_err(PutError::Io)?;
        Ok(())
    }
}

impl Drop for PendingPut {
    fn drop(&mut self) {
        // Gone already after a finished upload; an abandoned one is removed.
        let _ = std::fs::remove_file(&self.temp);
    }
}

/// Why an upload stopped.
#[derive(Debug, thiserror::Error)]
pub enum PutError {
    #[error(transparent)]
    Refused(Refusal),
    #[error("storing the upload: {0}")]
    Io(std::io::Error),
}

fn io_error(err: std::io::Error) -> ObjectError {
    ObjectError::Unavailable(err.to_string())
}

fn check_key(key: &str) -> Result<(), ObjectError> {
    if valid_key(key) {
        Ok(())
    } else {
        Err(ObjectError::InvalidKey(key.to_owned()))
    }
}

#[async_trait]
impl ObjectStore for LocalObjects {
    async fn presign_put(
        &self,
        key: &str,
        content_type: &str,
        size: u64,
        expires_in: Duration,
    ) -> Result<Presigned, ObjectError> {
        check_key(key)?;
        Ok(Presigned {
            url: self.signed_url("PUT", key, content_type, Some(size), expires_in),
            headers: vec![("Content-Type".into(), content_type.into())],
        })
    }

    async fn presign_get(&self, key: &str, expires_in: Duration) -> Result<Presigned, ObjectError> {
        check_key(key)?;
        Ok(Presigned {
            url: self.signed_url("GET", key, "", None, expires_in),
            headers: Vec::new(),
        })
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectHead>, ObjectError> {
        check_key(key)?;
        self.head_of(key).await.map_err(io_error)
    }

    async fn delete(&self, key: &str) -> Result<(), ObjectError> {
        check_key(key)?;
        for path in [self.object_path(key), self.meta_path(key)] {
            match tokio::fs::remove_file(&path).await {
                Ok(()) => {}
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => return Err(io_error(err)),
            }
        }
        Ok(())
    }
}
