//! The host's own file server for the local `ObjectStore`
//! (`quper_store_local::LocalObjects`): `PUT` and `GET
//! /local-files/<key>?expires=&type=&size=&signature=`, the URLs the local
//! adapter presigns. Served on the host's port, outside the API's edge (its
//! body limit is the API's; uploads have their own, the signed size) and not
//! in the OpenAPI document or any Lambda group: on AWS the URLs are S3's.
//!
//! A PUT is refused before any byte is stored when its URL has expired or
//! was not signed for this key, type and size (403), when it declares no
//! `Content-Length` (411), more bytes than signed (413), fewer (400), or
//! another `Content-Type` (400); the body is read with the signed size as its
//! cap, written to a temporary file and moved into place only when exactly
//! that many bytes arrived. Answers carry `Access-Control-Allow-Origin: *`
//! (the signature, not the origin, is the credential), so browsers may
//! upload and download directly, as with S3.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::put;
use http_body_util::BodyExt;
use quper_http::error::{ApiError, ErrorCode};
use quper_store_local::LocalObjects;
use quper_store_local::objects::{PutError, Refusal, SignedQuery};

/// The routes of local objects, on `objects`.
pub fn router(objects: LocalObjects) -> Router {
    Router::new()
        .route("/local-files/{*key}", put(upload).get(download).options(preflight))
        .with_state(Arc::new(objects))
}

fn refused(refusal: &Refusal) -> Response {
    let status = StatusCode::from_u16(refusal.status()).unwrap_or(StatusCode::FORBIDDEN);
    let code = match status {
        StatusCode::FORBIDDEN => ErrorCode::AuthorizationError,
        StatusCode::NOT_FOUND => ErrorCode::NotFound,
        _ => ErrorCode::BadRequest,
    };
    with_cors(ApiError::new(status, code, refusal.to_string()).into_response())
}

fn failed(err: &std::io::Error) -> Response {
    tracing::error!(error = %err, "local file store");
    with_cors(
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::ServiceUnavailable,
            "the file store could not be written or read",
        )
        .into_response(),
    )
}

fn with_cors(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

async fn preflight() -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, PUT"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("content-type"),
    );
    headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    with_cors(response)
}

async fn upload(
    State(objects): State<Arc<LocalObjects>>,
    Path(key): Path<String>,
    query: Result<Query<SignedQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Ok(Query(query)) = query else {
        return refused(&Refusal::BadSignature);
    };
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let grant = match objects.check_put(&key, &query, content_type, length) {
        Ok(grant) => grant,
        Err(refusal) => return refused(&refusal),
    };
    let mut pending = match objects.begin_put(&key, grant).await {
        Ok(pending) => pending,
        Err(err) => return failed(&err),
    };
    let mut body = body;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return with_cors(ApiError::bad_request("the upload was interrupted").into_response());
        };
        if let Some(chunk) = frame.data_ref() {
            match pending.write(chunk).await {
                Ok(()) => {}
                Err(PutError::Refused(refusal)) => return refused(&refusal),
                Err(PutError::Io(err)) => return failed(&err),
            }
        }
    }
    match pending.finish().await {
        Ok(()) => with_cors(StatusCode::OK.into_response()),
        Err(PutError::Refused(refusal)) => refused(&refusal),
        Err(PutError::Io(err)) => failed(&err),
    }
}

async fn download(
    State(objects): State<Arc<LocalObjects>>,
    Path(key): Path<String>,
    query: Result<Query<SignedQuery>, QueryRejection>,
) -> Response {
    let Ok(Query(query)) = query else {
        return refused(&Refusal::BadSignature);
    };
    if let Err(refusal) = objects.check_get(&key, &query) {
        return refused(&refusal);
    }
    let (file, head) = match objects.open(&key).await {
        Ok(Some(found)) => found,
        Ok(None) => return refused(&Refusal::NotFound),
        Err(err) => return failed(&err),
    };
    let name = key.rsplit('/').next().unwrap_or("file");
    let content_type = head.content_type.unwrap_or_else(|| "application/octet-stream".into());
    let stream = chunks(file);
    let mut response = Response::new(Body::from_stream(stream));
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&content_type) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(head.size));
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    with_cors(response)
}

/// The file's bytes as a stream of chunks.
fn chunks(file: tokio::fs::File) -> impl futures::Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send {
    use tokio::io::AsyncReadExt;
    futures::stream::unfold(file, |mut file| async move {
        let mut buffer = vec![0u8; 64 * 1024];
        match file.read(&mut buffer).await {
            Ok(0) => None,
            Ok(n) => {
                buffer.truncate(n);
                Some((Ok(bytes::Bytes::from(buffer)), file))
            }
            Err(err) => Some((Err(err), file)),
        }
    })
}
