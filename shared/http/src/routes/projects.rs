//! OmniStack's projects and files, each user's own: `/api/v1/app/projects`
//! and `/api/v1/app/files`. One group (one Lambda function, the only one
//! allowed to touch the files bucket). Handlers translate; the rules are in
//! `quper_core::projects` and `quper_core::files`.

use axum::Json;
use axum::extract::State;
use axum::response::NoContent;
use quper_core::App;
use quper_core::files::{ConfirmUpload, DownloadGrant, FileView, NewUpload, UploadGrant};
use quper_core::projects::{NewProject, ProjectPatch, ProjectView};
use quper_core::store::SkipLimitPage;
use serde::Deserialize;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::openapi::Created;
use crate::routes::doc;
use crate::routes::lists::SkipLimitParams;
use crate::routes::paths::{FileIdPath, ProjectPath};

routes! {
    "/api/v1/app/projects" => {
        get(list_projects, doc("List your projects (newest first; search by name)")),
        post(create_project, doc("Create a project")),
    },
    "/api/v1/app/projects/{project_id}" => {
        get(get_project, doc("One of your projects")),
        patch(update_project, doc("Update a project (only the fields sent)")),
        delete(delete_project, doc("Delete a project (soft delete)")),
    },
    "/api/v1/app/files/upload-url" => {
        post(upload_url, doc("A presigned URL to upload one file (exact size and type)")),
    },
    "/api/v1/app/files/confirm" => {
        post(confirm_upload, doc("Confirm an upload: checks what arrived, marks the file uploaded")),
    },
    "/api/v1/app/files" => {
        get(list_files, doc("List your uploaded files (newest first)")),
    },
    "/api/v1/app/files/{file_id}/download-url" => {
        get(download_url, doc("A presigned URL to download an uploaded file")),
    },
    "/api/v1/app/files/{file_id}" => {
        delete(delete_file, doc("Delete a file: the stored object and its record")),
    },
}

/// OmniStack's list parameters: `skip` (0 or more, default 0), `limit`
/// (1-100, default 20), or the `cursor` of the previous page.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
pub struct ListParams {
    #[schemars(range(min = 0))]
    pub skip: Option<i64>,
    #[schemars(range(min = 1, max = 100))]
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// [`ListParams`] and a name filter.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
pub struct ProjectListParams {
    #[schemars(range(min = 0))]
    pub skip: Option<i64>,
    #[schemars(range(min = 1, max = 100))]
    pub limit: Option<i64>,
    pub cursor: Option<String>,
    /// Projects whose name contains this, ignoring case.
    #[schemars(length(max = quper_core::projects::MAX_SEARCH))]
    pub search: Option<String>,
}

const DEFAULT_LIMIT: u64 = 20;

/// One window of `all`, after checking each bound names its field.
fn window<T>(
    skip: Option<i64>,
    limit: Option<i64>,
    cursor: Option<String>,
    all: Vec<T>,
) -> ApiResult<SkipLimitPage<T>> {
    let skip = match skip {
        Some(skip) if skip < 0 => return Err(ApiError::validation("skip", "must be 0 or more")),
        other => other.map(|s| s as u64),
    };
    let limit = match limit {
        Some(limit) if !(1..=100).contains(&limit) => {
            return Err(ApiError::validation("limit", "must be between 1 and 100"));
        }
        other => other.map(|l| l as u64),
    };
    SkipLimitParams { skip, limit, cursor }.apply(all, DEFAULT_LIMIT)
}

pub async fn list_projects(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiQuery(params): ApiQuery<ProjectListParams>,
) -> ApiResult<Json<SkipLimitPage<ProjectView>>> {
    let all = app.projects(&caller, params.search.as_deref()).await?;
    Ok(Json(window(params.skip, params.limit, params.cursor, all)?))
}

pub async fn create_project(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiJson(body): ApiJson<NewProject>,
) -> ApiResult<Created<ProjectView>> {
    Ok(Created(app.create_project(&caller, body).await?))
}

pub async fn get_project(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(ProjectPath { project_id }): ApiPath<ProjectPath>,
) -> ApiResult<Json<ProjectView>> {
    Ok(Json(app.project(&caller, &project_id).await?))
}

pub async fn update_project(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(ProjectPath { project_id }): ApiPath<ProjectPath>,
    ApiJson(body): ApiJson<ProjectPatch>,
) -> ApiResult<Json<ProjectView>> {
    Ok(Json(app.update_project(&caller, &project_id, body).await?))
}

pub async fn delete_project(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(ProjectPath { project_id }): ApiPath<ProjectPath>,
) -> ApiResult<NoContent> {
    app.delete_project(&caller, &project_id).await?;
    Ok(NoContent)
}

pub async fn upload_url(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiJson(body): ApiJson<NewUpload>,
) -> ApiResult<Json<UploadGrant>> {
    Ok(Json(app.request_upload(&caller, body).await?))
}

pub async fn confirm_upload(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiJson(body): ApiJson<ConfirmUpload>,
) -> ApiResult<Json<FileView>> {
    Ok(Json(app.confirm_upload(&caller, &body.file_id).await?))
}

pub async fn list_files(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiQuery(params): ApiQuery<ListParams>,
) -> ApiResult<Json<SkipLimitPage<FileView>>> {
    let all = app.files(&caller).await?;
    Ok(Json(window(params.skip, params.limit, params.cursor, all)?))
}

pub async fn download_url(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(FileIdPath { file_id }): ApiPath<FileIdPath>,
) -> ApiResult<Json<DownloadGrant>> {
    Ok(Json(app.file_download_url(&caller, &file_id).await?))
}

pub async fn delete_file(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(FileIdPath { file_id }): ApiPath<FileIdPath>,
) -> ApiResult<NoContent> {
    app.delete_file(&caller, &file_id).await?;
    Ok(NoContent)
}
