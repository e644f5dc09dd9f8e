//! OmniStack's files: uploads straight to the object store through
//! presigned URLs.
//!
//! 1. `upload-url` ([`request_upload`]): the file's rules are checked (size,
//!    content type, filename, the caller's quota), a `pending` record is
//!    stored and the client gets a URL for one `PUT` of exactly that key,
//!    content type and size (the [`ObjectStore`] signs all three).
//! 2. The client PUTs the bytes to the store; Quper never carries them.
//! 3. `confirm` ([`confirm`]): the store is asked what arrived (`head`): the
//!    declared size and content type, else a 422 and the record stays
//!    `pending`; then `uploaded`, and the usage is recorded.
//! 4. `download-url`, `delete`: uploaded files only for the first; the
//!    object and the record for the second.
//!
//! A file belongs to the user who uploaded it in that user's environment:
//! records are under `T#<t>#USER#<user>#FILE` (`keys::file`) and objects
//! under `uploads/<t>/<user>/<file id>/<name>` ([`object_key`]), both built
//! from the caller, so another user's file is a 404 by construction.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{DomainError, DomainResult};
use crate::identity::access::Principal;
use crate::keys;
use crate::model::{RecordId, TenantId};
use crate::ports::table::TTL;
use crate::ports::{Condition, ObjectStore};
use crate::store::{Store, to_item};
use crate::usage::{self, Metric, UsageEvent};

/// The largest file any deployment accepts (S3's largest single PUT).
pub const MAX_FILE_BYTES: u64 = 5 * 1024 * 1024 * 1024;
/// Longest filename kept (characters).
pub const MAX_FILENAME: usize = 255;
/// Longest content type (RFC 6838: 127 for each half; one bound for both).
pub const MAX_CONTENT_TYPE: usize = 127;
/// How long a pending record outlives its upload URL before the table's
/// TTL removes it.
const PENDING_KEPT_SECONDS: i64 = 7 * 24 * 3600;

/// The content types accepted when `QUPER_FILES_ALLOWED_TYPES` is unset:
/// documents, images, audio, video and archives; nothing a browser would run
/// as a page or script (no HTML, SVG, JavaScript).
pub const DEFAULT_ALLOWED_TYPES: &[&str] = &[
    "application/pdf",
    "application/json",
    "application/zip",
    "application/gzip",
    "application/octet-stream",
    "application/msword",
    "application/vnd.ms-excel",
    "application/vnd.ms-powerpoint",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "text/plain",
    "text/csv",
    "text/markdown",
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "audio/mpeg",
    "audio/wav",
    "video/mp4",
    "video/webm",
];

/// The rules of uploads, from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRules {
    /// Largest file (`QUPER_FILES_MAX_BYTES`, default 50 MiB).
    pub max_bytes: u64,
    /// Bytes a user may keep: uploaded files plus pending uploads whose URL
    /// has not expired (`QUPER_FILES_QUOTA_BYTES`, default 1 GiB).
    pub quota_bytes: u64,
    /// Accepted content types, exact (`image/png`) or a whole type
    /// (`image/*`) (`QUPER_FILES_ALLOWED_TYPES`, comma-separated).
    pub allowed_types: Vec<String>,
    /// How long upload and download URLs last (`QUPER_FILES_URL_SECONDS`,
    /// default 3600, 60 to 604800: S3's longest).
    pub url_seconds: u32,
}

impl Default for FileRules {
    fn default() -> Self {
        FileRules {
            max_bytes: 50 * 1024 * 1024,
            quota_bytes: 1024 * 1024 * 1024,
            allowed_types: DEFAULT_ALLOWED_TYPES.iter().map(|t| (*t).to_owned()).collect(),
            url_seconds: 3600,
        }
    }
}

impl FileRules {
    /// Reads the rules through `var`; a value that cannot be used names its
    /// variable.
    pub fn from_lookup(var: &impl Fn(&str) -> Option<String>) -> Result<FileRules, (&'static str, String)> {
        let defaults = FileRules::default();
        let number = |name: &'static str, default: u64, min: u64, max: u64| -> Result<u64, (&'static str, String)> {
            match var(name).filter(|text| !text.trim().is_empty()) {
                None => Ok(default),
                Some(text) => text
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|n| (min..=max).contains(n))
                    .ok_or((
                        name,
                        format!("must be a whole number from {min} to {max}, not {text:?}"),
                    )),
            }
        };
        let allowed_types = match var("QUPER_FILES_ALLOWED_TYPES").filter(|text| !text.trim().is_empty()) {
            None => defaults.allowed_types,
            Some(text) => {
                let mut types = Vec::new();
                for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
                    let entry = entry.to_ascii_lowercase();
                    let pattern = entry
                        .strip_suffix("/*")
                        .map(|t| format!("{t}/x"))
                        .unwrap_or(entry.clone());
                    if parse_content_type(&pattern).is_err() {
                        return Err((
                            "QUPER_FILES_ALLOWED_TYPES",
                            format!("{entry:?} is not a content type (type/subtype or type/*)"),
                        ));
                    }
                    types.push(entry);
                }
                types
            }
        };
        Ok(FileRules {
            max_bytes: number("QUPER_FILES_MAX_BYTES", defaults.max_bytes, 1, MAX_FILE_BYTES)?,
            quota_bytes: number("QUPER_FILES_QUOTA_BYTES", defaults.quota_bytes, 1, u64::MAX / 4)?,
            allowed_types,
            url_seconds: number("QUPER_FILES_URL_SECONDS", u64::from(defaults.url_seconds), 60, 604_800)? as u32,
        })
    }

    fn allows(&self, content_type: &str) -> bool {
        let major = content_type.split('/').next().unwrap_or_default();
        self.allowed_types
            .iter()
            .any(|allowed| allowed == content_type || allowed.strip_suffix("/*") == Some(major))
    }
}

/// Where a file is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FileStatus {
    /// An upload URL was handed out; nothing confirmed yet.
    Pending,
    /// Confirmed: the object is in the store with the declared size and type.
    Uploaded,
}

/// A stored file record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredFile {
    pub id: RecordId,
    pub filename: String,
    pub content_type: String,
    pub size: u64,
    /// The object's key in the store.
    pub key: String,
    pub status: FileStatus,
    pub owner_id: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When the upload URL stops working.
    pub upload_expires_at: DateTime<Utc>,
    #[serde(default)]
    pub uploaded_at: Option<DateTime<Utc>>,
    pub version: u64,
}

/// A file as the API shows it.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct FileView {
    pub id: RecordId,
    pub filename: String,
    pub content_type: String,
    /// Bytes.
    pub size: u64,
    pub status: FileStatus,
    pub created_at: DateTime<Utc>,
    pub uploaded_at: Option<DateTime<Utc>>,
}

impl From<StoredFile> for FileView {
    fn from(file: StoredFile) -> Self {
        FileView {
            id: file.id,
            filename: file.filename,
            content_type: file.content_type,
            size: file.size,
            status: file.status,
            created_at: file.created_at,
            uploaded_at: file.uploaded_at,
        }
    }
}

/// `POST /files/upload-url`'s body.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUpload {
    /// The original name; directories are dropped, at most 255 characters.
    #[schemars(length(min = 1, max = 1024))]
    pub filename: String,
    /// `type/subtype`, one of the allowed types.
    #[schemars(length(min = 3, max = MAX_CONTENT_TYPE))]
    pub content_type: String,
    /// Exact size in bytes: the upload must be exactly this long (at most
    /// `QUPER_FILES_MAX_BYTES`, itself at most 5 GiB, S3's largest PUT).
    #[schemars(range(min = 1, max = MAX_FILE_BYTES))]
    pub size: u64,
}

/// Where to upload, and for how long.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct UploadGrant {
    /// `PUT` the bytes here, with `upload_headers`, before `expires_in`
    /// seconds pass.
    pub upload_url: String,
    pub upload_method: String,
    /// Headers the upload must carry as given (its `Content-Type`).
    pub upload_headers: std::collections::BTreeMap<String, String>,
    pub file_id: RecordId,
    pub key: String,
    pub expires_in: u32,
}

/// `POST /files/confirm`'s body.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmUpload {
    pub file_id: RecordId,
}

/// A download URL.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct DownloadGrant {
    pub download_url: String,
    pub expires_in: u32,
}

/// The content type in its canonical form (lowercase `type/subtype`, no
/// parameters), or why not.
pub fn parse_content_type(text: &str) -> Result<String, String> {
    let text = text.trim().to_ascii_lowercase();
    let token = |part: &str| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    match text.split_once('/') {
        Some((major, minor)) if text.len() <= MAX_CONTENT_TYPE && token(major) && token(minor) => Ok(text),
        _ => Err("must be a MIME type such as application/pdf (type/subtype, no parameters)".into()),
    }
}

/// The filename kept: its last path component (a client's `../x` or
/// `C:\dir\x` is `x`), control characters dropped, trimmed; 1-255
/// characters.
pub fn sanitise_filename(text: &str) -> Result<String, String> {
    let last = text.rsplit(['/', '\\']).next().unwrap_or_default();
    let clean: String = last.chars().filter(|c| !c.is_control()).collect();
    let clean = clean.trim();
    if clean.is_empty() || clean == "." || clean == ".." {
        return Err("must name a file (not empty, not only a directory)".into());
    }
    if clean.chars().count() > MAX_FILENAME {
        return Err(format!("must be at most {MAX_FILENAME} characters"));
    }
    Ok(clean.to_owned())
}

/// The object key of a file: `uploads/<tenant>/<user:010>/<file id>/<name>`,
/// where `<name>` keeps only ASCII letters, digits, `.`, `_`, `-` of the
/// filename (others become `_`; no leading dot), at most 100 bytes. Every
/// part is Quper's or filtered, so the key cannot leave its prefix.
pub fn object_key(tenant: &TenantId, user: u64, id: &RecordId, filename: &str) -> String {
    let safe: String = filename
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let safe = safe.trim_start_matches('.');
    let safe: String = safe.chars().take(100).collect();
    let safe = if safe.is_empty() || safe.chars().all(|c| c == '.') {
        "file".to_owned()
    } else {
        safe
    };
    format!("uploads/{tenant}/{user:010}/{id}/{safe}")
}

fn url_lifetime(rules: &FileRules) -> Duration {
    Duration::from_secs(u64::from(rules.url_seconds))
}

async fn all_files(store: &Store, caller: &Principal) -> DomainResult<Vec<StoredFile>> {
    store.query_all(keys::files(caller.tenant(), caller.user_id)).await
}

/// Bytes the caller holds: uploaded files, and pending uploads whose URL
/// still works (except `except`).
fn used_bytes(files: &[StoredFile], now: DateTime<Utc>, except: Option<&RecordId>) -> u64 {
    files
        .iter()
        .filter(|file| Some(&file.id) != except)
        .filter(|file| file.status == FileStatus::Uploaded || file.upload_expires_at > now)
        .map(|file| file.size)
        .sum()
}

fn over_quota(used: u64, size: u64, rules: &FileRules) -> DomainError {
    DomainError::validation(
        "size",
        format!(
            "storage quota exceeded: {used} of {} bytes are in use, {size} more do not fit",
            rules.quota_bytes
        ),
    )
}

async fn find(store: &Store, caller: &Principal, id: &RecordId) -> DomainResult<StoredFile> {
    store
        .get::<StoredFile>(&keys::file(caller.tenant(), caller.user_id, id))
        .await?
        .ok_or_else(|| DomainError::not_found("File", id))
}

pub async fn request_upload(
    store: &Store,
    objects: &dyn ObjectStore,
    rules: &FileRules,
    caller: &Principal,
    new: NewUpload,
) -> DomainResult<UploadGrant> {
    let filename = sanitise_filename(&new.filename).map_err(|m| DomainError::validation("filename", m))?;
    let content_type = parse_content_type(&new.content_type).map_err(|m| DomainError::validation("content_type", m))?;
    if !rules.allows(&content_type) {
        return Err(DomainError::validation(
            "content_type",
            format!(
                "{content_type} is not accepted; accepted: {}",
                rules.allowed_types.join(", ")
            ),
        ));
    }
    if new.size == 0 {
        return Err(DomainError::validation("size", "must be at least 1 byte"));
    }
    if new.size > rules.max_bytes {
        return Err(DomainError::validation(
            "size",
            format!("must be at most {} bytes", rules.max_bytes),
        ));
    }
    let now = store.now();
    let used = used_bytes(&all_files(store, caller).await?, now, None);
    if used.saturating_add(new.size) > rules.quota_bytes {
        return Err(over_quota(used, new.size, rules));
    }
    let id = RecordId::new_v4();
    let key = object_key(caller.tenant(), caller.user_id, &id, &filename);
    let presigned = objects
        .presign_put(&key, &content_type, new.size, url_lifetime(rules))
        .await?;
    let expires_at = now + chrono::Duration::seconds(i64::from(rules.url_seconds));
    let file = StoredFile {
        id: id.clone(),
        filename,
        content_type,
        size: new.size,
        key: key.clone(),
        status: FileStatus::Pending,
        owner_id: caller.user_id,
        created_at: now,
        updated_at: now,
        upload_expires_at: expires_at,
        uploaded_at: None,
        version: 1,
    };
    let ttl = Value::from(expires_at.timestamp() + PENDING_KEPT_SECONDS);
    let item = to_item(&keys::file(caller.tenant(), caller.user_id, &id), &file, &[(TTL, ttl)])?;
    store.table().put(item, Condition::NotExists).await?;
    Ok(UploadGrant {
        upload_url: presigned.url,
        upload_method: "PUT".into(),
        upload_headers: presigned.headers.into_iter().collect(),
        file_id: id,
        key,
        expires_in: rules.url_seconds,
    })
}

pub async fn confirm(
    store: &Store,
    objects: &dyn ObjectStore,
    rules: &FileRules,
    caller: &Principal,
    id: &RecordId,
) -> DomainResult<FileView> {
    let mut file = find(store, caller, id).await?;
    if file.status == FileStatus::Uploaded {
        return Ok(file.into());
    }
    let head = objects.head(&file.key).await?.ok_or_else(|| {
        DomainError::validation(
            "file_id",
            "nothing was uploaded for this file yet: PUT it to its upload_url first",
        )
    })?;
    if head.size != file.size {
        return Err(DomainError::validation(
            "file_id",
            format!("the upload is {} bytes, not the {} declared", head.size, file.size),
        ));
    }
    let stored_type = head
        .content_type
        .as_deref()
        .map(parse_content_type)
        .and_then(Result::ok);
    if stored_type.as_deref() != Some(file.content_type.as_str()) {
        return Err(DomainError::validation(
            "file_id",
            format!(
                "the upload's content type is {}, not the {} declared",
                head.content_type.as_deref().unwrap_or("missing"),
                file.content_type
            ),
        ));
    }
    // Pending uploads were counted when their URLs were handed out; what
    // must fit now is this file beside the files already uploaded.
    let now = store.now();
    let uploaded: u64 = all_files(store, caller)
        .await?
        .iter()
        .filter(|other| other.id != *id && other.status == FileStatus::Uploaded)
        .map(|other| other.size)
        .sum();
    if uploaded.saturating_add(file.size) > rules.quota_bytes {
        return Err(over_quota(uploaded, file.size, rules));
    }
    let tenant = caller.tenant();
    // Usage first, each counted once per file: a confirm retried after a
    // failure below counts nothing twice.
    let upload_key = format!("file-upload:{id}");
    for (metric, amount) in [(Metric::StorageBytes, file.size as i64), (Metric::FileUploads, 1)] {
        let key = format!("{upload_key}:{}", metric.key());
        usage::record(
            store,
            UsageEvent {
                tenant,
                user_id: caller.user_id,
                metric,
                amount,
                category: Some(&file.content_type),
                idempotency_key: Some(&key),
            },
        )
        .await?;
    }
    let expected = file.version;
    file.version += 1;
    file.status = FileStatus::Uploaded;
    file.uploaded_at = Some(now);
    file.updated_at = now;
    store
        .replace(&keys::file(tenant, caller.user_id, id), &file, &[], expected, "file")
        .await?;
    Ok(file.into())
}

/// The caller's uploaded files, newest first.
pub async fn list(store: &Store, caller: &Principal) -> DomainResult<Vec<FileView>> {
    let mut files: Vec<StoredFile> = all_files(store, caller).await?;
    files.retain(|file| file.status == FileStatus::Uploaded);
    files.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| b.id.cmp(&a.id)));
    Ok(files.into_iter().map(FileView::from).collect())
}

pub async fn download_url(
    store: &Store,
    objects: &dyn ObjectStore,
    rules: &FileRules,
    caller: &Principal,
    id: &RecordId,
) -> DomainResult<DownloadGrant> {
    let file = find(store, caller, id).await?;
    if file.status != FileStatus::Uploaded {
        return Err(DomainError::Conflict(
            "the file has not been uploaded yet: confirm the upload first".into(),
        ));
    }
    let presigned = objects.presign_get(&file.key, url_lifetime(rules)).await?;
    let request = crate::context::current().map(|context| format!("file-download:{id}:{}", context.request_id));
    usage::record(
        store,
        UsageEvent {
            tenant: caller.tenant(),
            user_id: caller.user_id,
            metric: Metric::FileDownloads,
            amount: 1,
            category: Some(&file.content_type),
            idempotency_key: request.as_deref(),
        },
    )
    .await?;
    Ok(DownloadGrant {
        download_url: presigned.url,
        expires_in: rules.url_seconds,
    })
}

/// Removes the object, then (an uploaded file's bytes taken off its
/// owner's `storage_bytes`, once) the record. Pending uploads may be deleted
/// too.
pub async fn delete(store: &Store, objects: &dyn ObjectStore, caller: &Principal, id: &RecordId) -> DomainResult<()> {
    let file = find(store, caller, id).await?;
    objects.delete(&file.key).await?;
    if file.status == FileStatus::Uploaded {
        let key = format!("file-delete:{id}");
        usage::record(
            store,
            UsageEvent {
                tenant: caller.tenant(),
                user_id: caller.user_id,
                metric: Metric::StorageBytes,
                amount: -(file.size as i64),
                category: Some(&file.content_type),
                idempotency_key: Some(&key),
            },
        )
        .await?;
    }
    store
        .table()
        .delete(&keys::file(caller.tenant(), caller.user_id, id), Condition::None)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filenames_lose_their_directories() {
        assert_eq!(sanitise_filename("../../etc/passwd").as_deref(), Ok("passwd"));
        assert_eq!(sanitise_filename("C:\\dir\\a b.pdf").as_deref(), Ok("a b.pdf"));
        assert!(sanitise_filename("dir/").is_err());
        assert!(sanitise_filename("..").is_err());
        assert!(sanitise_filename(&"x".repeat(256)).is_err());
    }

    #[test]
    fn keys_stay_under_their_prefix() {
        let tenant = TenantId::parse("acme").unwrap();
        let id = RecordId::new_v4();
        let key = object_key(&tenant, 7, &id, "..é rapport #1.pdf");
        assert_eq!(key, format!("uploads/acme/0000000007/{id}/__rapport__1.pdf"));
        assert!(crate::ports::objects::valid_key(&key));
        assert!(object_key(&tenant, 7, &id, "...").ends_with("/file"));
    }

    #[test]
    fn content_types_are_checked() {
        assert_eq!(
            parse_content_type(" Application/PDF ").as_deref(),
            Ok("application/pdf")
        );
        assert!(parse_content_type("text/plain; charset=utf-8").is_err());
        let rules = FileRules {
            allowed_types: vec!["image/*".into(), "text/plain".into()],
            ..FileRules::default()
        };
        assert!(rules.allows("image/png") && rules.allows("text/plain") && !rules.allows("text/html"));
    }
}
