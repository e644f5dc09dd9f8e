//! The docs route group: the OpenAPI document of every route at
//! `/openapi.json`, Swagger UI at `/docs` and ReDoc at `/redoc`, their files
//! served by Quper itself (`quper-docs-ui`).

use std::sync::OnceLock;

use aide::OperationOutput;
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

routes! {
    "/openapi.json" => {
        get(openapi, doc("This document: OpenAPI 3.1, every route, /api/v1 and /api/v2")),
    },
    "/docs" => {
        get(swagger_page, doc("Swagger UI")),
    },
    "/docs/{file}" => {
        get(swagger_file, doc("A file of Swagger UI")),
    },
    "/redoc" => {
        get(redoc_page, doc("ReDoc")),
    },
    "/redoc/{file}" => {
        get(redoc_file, doc("A file of ReDoc")),
    },
}

/// The document of every route group, made once per process.
pub fn document() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT.get_or_init(|| crate::openapi::document(super::all_documented))
}

async fn openapi() -> Json<Value> {
    Json(document().clone())
}

/// A documentation page (HTML), as `quper-docs-ui` serves it.
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
            description: "The page".into(),
            content: IndexMap::from_iter([("text/html".to_owned(), MediaType::default())]),
            ..Default::default()
        };
        vec![(Some(200), response)]
    }
}

/// A file of a documentation UI: script, style sheet or image.
pub struct Asset(Response);

impl IntoResponse for Asset {
    fn into_response(self) -> Response {
        self.0
    }
}

impl OperationOutput for Asset {
    type Inner = ();

    fn inferred_responses(_: &mut GenContext, _: &mut Operation) -> Vec<(Option<u16>, DocResponse)> {
        let content = quper_docs_ui::file_media_types()
            .into_iter()
            .map(|media_type| (media_type.to_owned(), MediaType::default()))
            .collect();
        let response = DocResponse {
            description: "The file, as its name says (script, style sheet or image)".into(),
            content,
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

async fn swagger_file(ApiPath(FilePath { file }): ApiPath<FilePath>) -> ApiResult<Asset> {
    quper_docs_ui::swagger_file(&file)
        .map(Asset)
        .ok_or_else(|| ApiError::not_found("no such file"))
}

async fn redoc_file(ApiPath(FilePath { file }): ApiPath<FilePath>) -> ApiResult<Asset> {
    quper_docs_ui::redoc_file(&file)
        .map(Asset)
        .ok_or_else(|| ApiError::not_found("no such file"))
}

#[cfg(test)]
mod tests {
    use axum::http::header;

    /// Found by Schemathesis: every file was documented as text/html.
    #[test]
    fn every_file_of_the_pages_is_documented_with_its_media_type() {
        let document = crate::openapi::document(crate::routes::all_documented);
        for (ui, page, file) in [
            (
                "docs",
                quper_docs_ui::swagger_page as fn() -> axum::response::Response,
                quper_docs_ui::swagger_file as fn(&str) -> Option<axum::response::Response>,
            ),
            ("redoc", quper_docs_ui::redoc_page, quper_docs_ui::redoc_file),
        ] {
            let documented = &document["paths"][format!("/{ui}/{{file}}")]["get"]["responses"]["200"]["content"];
            let html = page().into_body();
            let html = page_text(html);
            let prefix = format!("/{ui}/");
            let mut checked = 0;
            for name in html
                .split(&prefix)
                .skip(1)
                .filter_map(|rest| rest.split(['"', '\'', ')']).next())
            {
                let response = file(name).unwrap_or_else(|| panic!("{prefix}{name} is linked but not served"));
                let served = response.headers()[header::CONTENT_TYPE]
                    .to_str()
                    .expect("ascii")
                    .to_owned();
                let media_type = served.split(';').next().expect("media type").trim();
                assert!(
                    documented.get(media_type).is_some(),
                    "{prefix}{name} is {served}, documented: {documented}"
                );
                checked += 1;
            }
            assert!(checked > 0, "the {ui} page links no file");
        }
    }

    /// The whole body of a page.
    fn page_text(body: axum::body::Body) -> String {
        let bytes = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(axum::body::to_bytes(body, usize::MAX))
            .expect("body");
        String::from_utf8_lossy(&bytes).into_owned()
    }
}
