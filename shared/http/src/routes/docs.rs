//! The docs route group: the OpenAPI document of every route at
//! `/openapi.json`, Swagger UI at `/docs` and ReDoc at `/redoc`, their files
//! served by Quper itself (`quper-docs-ui`).

use std::sync::OnceLock;

use aide::OperationOutput;
use aide::axum::ApiRouter;
use aide::axum::routing::get_with;
use aide::generate::GenContext;
use aide::openapi::{MediaType, Operation, Response as DocResponse};
use axum::Json;
use axum::response::{IntoResponse, Response};
use indexmap::IndexMap;
use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::extract::ApiPath;
use crate::routes::doc;
use crate::routes::paths::FilePath;
use crate::state::AppState;

pub fn router() -> ApiRouter<AppState> {
    ApiRouter::new()
        .api_route(
            "/openapi.json",
            get_with(
                openapi,
                doc("This document: OpenAPI 3.1, every route, /api/v1 and /api/v2"),
            ),
        )
        .api_route("/docs", get_with(swagger_page, doc("Swagger UI")))
        .api_route("/docs/{file}", get_with(swagger_file, doc("A file of Swagger UI")))
        .api_route("/redoc", get_with(redoc_page, doc("ReDoc")))
        .api_route("/redoc/{file}", get_with(redoc_file, doc("A file of ReDoc")))
}

/// The document of every route group, made once per process.
pub fn document() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT.get_or_init(|| crate::openapi::document(super::all))
}

async fn openapi() -> Json<Value> {
    Json(document().clone())
}

/// A documentation page or file, as `quper-docs-ui` serves it.
pub struct Page(Response);

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        self.0
    }
}

impl OperationOutput for Page {
    type Inner = ();

    fn inferred_responses(_: &mut GenContext, _: &mut Operation) -> Vec<(Option<u16>, DocResponse)> {
        let response = DocResponse {
            description: "The page or file".into(),
            content: IndexMap::from_iter([("text/html".to_owned(), MediaType::default())]),
            ..Default::default()
        };
        vec![(Some(200), response)]
    }
}

async fn swagger_page() -> Page {
    Page(quper_docs_ui::swagger_page())
}

async fn redoc_page() -> Page {
    Page(quper_docs_ui::redoc_page())
}

async fn swagger_file(ApiPath(FilePath { file }): ApiPath<FilePath>) -> ApiResult<Page> {
    quper_docs_ui::swagger_file(&file)
        .map(Page)
        .ok_or_else(|| ApiError::not_found("no such file"))
}

async fn redoc_file(ApiPath(FilePath { file }): ApiPath<FilePath>) -> ApiResult<Page> {
    quper_docs_ui::redoc_file(&file)
        .map(Page)
        .ok_or_else(|| ApiError::not_found("no such file"))
}
