//! OmniStack's files: presigned uploads and downloads through the
//! `ObjectStore` port, with usage recorded (`crate::usage`).

use super::App;
use crate::error::DomainResult;
use crate::files::{self, DownloadGrant, FileView, NewUpload, UploadGrant};
use crate::identity::access::Principal;
use crate::model::RecordId;

impl App {
    /// Checks the file's rules and the caller's quota, stores a `pending`
    /// record, and presigns one PUT of exactly that key, type and size.
    pub async fn request_upload(&self, caller: &Principal, new: NewUpload) -> DomainResult<UploadGrant> {
        let objects = self.ports().objects.as_ref();
        files::request_upload(self.store(), objects, &self.settings().files, caller, new).await
    }

    /// Checks what arrived (size, content type), marks the file `uploaded`
    /// and records `storage_bytes` and `file_uploads` (once per file).
    pub async fn confirm_upload(&self, caller: &Principal, id: &RecordId) -> DomainResult<FileView> {
        let objects = self.ports().objects.as_ref();
        files::confirm(self.store(), objects, &self.settings().files, caller, id).await
    }

    /// The caller's uploaded files, newest first.
    pub async fn files(&self, caller: &Principal) -> DomainResult<Vec<FileView>> {
        files::list(self.store(), caller).await
    }

    /// A presigned GET of an uploaded file; records `file_downloads`.
    pub async fn file_download_url(&self, caller: &Principal, id: &RecordId) -> DomainResult<DownloadGrant> {
        let objects = self.ports().objects.as_ref();
        files::download_url(self.store(), objects, &self.settings().files, caller, id).await
    }

    /// Removes the object and the record (`storage_bytes` lowered once).
    pub async fn delete_file(&self, caller: &Principal, id: &RecordId) -> DomainResult<()> {
        files::delete(self.store(), self.ports().objects.as_ref(), caller, id).await
    }
}
