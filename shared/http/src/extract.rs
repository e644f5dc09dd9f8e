//! Extractors whose rejections speak the one error format: a body that does
//! not parse is a 400, one that parses but breaks the schema is a 422 naming
//! the field, an oversized body is a 413, a bad path id is a 404.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::header;
use axum::http::request::Parts;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, ErrorCode};
use axum::http::StatusCode;

/// A JSON body, deserialised with the path of the failing field kept.
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned + JsonSchema + 'static, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|mime| {
                let mime = mime.trim().to_ascii_lowercase();
                mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
            })
            .unwrap_or(false);
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ErrorCode::BadRequest,
                "expected a JSON body with Content-Type: application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(body_rejection)?;
        parse_documented_json(&bytes).map(ApiJson)
    }
}

/// A whole body of any content type (SNS posts JSON as `text/plain`), read
/// under the body limit with rejections in the error format.
#[derive(Debug, Clone)]
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        Bytes::from_request(req, state)
            .await
            .map(RawBody)
            .map_err(body_rejection)
    }
}

/// A JSON body that may be absent: an empty body is `None`.
#[derive(Debug, Clone)]
pub struct OptionalJson<T>(pub Option<T>);

impl<T: DeserializeOwned + JsonSchema + 'static, S: Send + Sync> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let declared_json = req.headers().get(header::CONTENT_TYPE).is_some();
        let (parts, body) = req.into_parts();
        let bytes = Bytes::from_request(Request::from_parts(parts.clone(), body), state)
            .await
            .map_err(body_rejection)?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(None));
        }
        let request = Request::from_parts(parts, axum::body::Body::from(bytes));
        if !declared_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ErrorCode::BadRequest,
                "expected a JSON body with Content-Type: application/json",
            ));
        }
        ApiJson::<T>::from_request(request, state)
            .await
            .map(|ApiJson(value)| OptionalJson(Some(value)))
    }
}

/// Parses JSON, mapping syntax errors to 400 and schema errors to 422. The
/// whole body must be JSON before its shape is judged, so a truncated or
/// trailing-garbage body is a 400 whatever it holds.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|err| ApiError::bad_request(format!("malformed JSON: {err}")))?;
    serde_path_to_error::deserialize(value).map_err(schema_error)
}

/// [`parse_json`], then holds the body to `T`'s documented schema: what
/// serde accepts but the schema forbids (a struct from an array, duplicates
/// in a set) is a 422 naming the field, as a schema error is.
pub fn parse_documented_json<T: DeserializeOwned + JsonSchema + 'static>(bytes: &[u8]) -> Result<T, ApiError> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|err| ApiError::bad_request(format!("malformed JSON: {err}")))?;
    let parsed = serde_path_to_error::deserialize(&value).map_err(schema_error)?;
    match crate::body_schema::violation(&crate::body_schema::schema_of::<T>(), &value) {
        None => Ok(parsed),
        Some((field, message)) => Err(ApiError::validation(field, message)),
    }
}

fn schema_error(err: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = err.path().to_string();
    let inner = err.into_inner();
    if !inner.is_data() {
        return ApiError::bad_request(format!("malformed JSON: {inner}"));
    }
    let message = strip_position(&inner.to_string());
    // serde reports a missing or unknown field at the enclosing object; name
    // the field itself.
    let named = ["missing field `", "unknown field `"]
        .iter()
        .find_map(|prefix| message.strip_prefix(prefix).and_then(|rest| rest.split('`').next()));
    let field = match (named, path.as_str()) {
        (Some(name), "." | "") => name.to_owned(),
        // An unknown field is reported at its own path already.
        (Some(name), path) if path == name || path.ends_with(&format!(".{name}")) => path.to_owned(),
        (Some(name), parent) => format!("{parent}.{name}"),
        (None, ".") => String::new(),
        (None, path) => path.to_owned(),
    };
    ApiError::validation(field, message)
}

/// serde_json appends " at line 1 column 17"; the client does not need it.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(index) => message[..index].to_owned(),
        None => message.to_owned(),
    }
}

fn body_rejection(rejection: BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::BadRequest,
            "request body is too large",
        )
    } else {
        ApiError::bad_request(format!("could not read the request body: {rejection}"))
    }
}

/// Query parameters; a value of the wrong type is a 422 naming the parameter.
#[derive(Debug, Clone)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        Query::<T>::try_from_uri(&parts.uri)
            .map(|Query(value)| ApiQuery(value))
            .map_err(|rejection| ApiError::validation("query", rejection.body_text()))
    }
}

/// Path parameters; a segment that cannot be an id of this resource means the
/// resource does not exist: 404.
#[derive(Debug, Clone)]
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(value)| ApiPath(value))
            .map_err(|_| ApiError::not_found("no such resource"))
    }
}

/// The API version the edge chose for the request
/// ([`crate::middleware::ApiVersion`]); `v1` when no edge ran. For handlers
/// whose v2 answer carries more than v1's (OmniStack's computed fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version(pub crate::middleware::ApiVersion);

impl Version {
    pub fn is_v2(self) -> bool {
        self.0 == crate::middleware::ApiVersion::V2
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Version {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Version(
            parts
                .extensions
                .get::<crate::middleware::ApiVersion>()
                .copied()
                .unwrap_or(crate::middleware::ApiVersion::V1),
        ))
    }
}

impl aide::OperationInput for Version {}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        email: quper_core::model::Email,
        inner: Option<Inner>,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        count: u32,
    }

    fn field_of(json: &str) -> (u16, String) {
        match parse_json::<Body>(json.as_bytes()) {
            Ok(_) => (200, String::new()),
            Err(err) => (
                err.status.as_u16(),
                err.details["field"].as_str().unwrap_or("").to_owned(),
            ),
        }
    }

    #[test]
    fn schema_errors_name_the_field() {
        assert_eq!(field_of(r#"{}"#), (422, "email".into()));
        assert_eq!(field_of(r#"{"email": "nope"}"#), (422, "email".into()));
        assert_eq!(field_of(r#"{"email": "a@b.io", "extra": 1}"#), (422, "extra".into()));
        assert_eq!(
            field_of(r#"{"email": "a@b.io", "inner": {"count": "x"}}"#),
            (422, "inner.count".into())
        );
        assert_eq!(
            field_of(r#"{"email": "a@b.io", "inner": {}}"#),
            (422, "inner.count".into())
        );
        assert_eq!(field_of(r#"{"email": "a@b.io""#).0, 400);
        assert_eq!(field_of(r#"{"email": "a@b.io"} trailing"#).0, 400);
        assert_eq!(field_of(r#"{"email": "a@b.io"}"#).0, 200);
    }
}
