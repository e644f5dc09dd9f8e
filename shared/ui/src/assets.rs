//! The UI's static files, embedded at build time: htmx (vendored from its
//! npm package, `vendor/`), the stylesheet and the small script that turns
//! incident changes into htmx refreshes. Served under `/ui/` with long
//! caching: each name carries its version or content hash.

use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::pages::PageError;

/// The vendored htmx release (`vendor/update.sh`).
pub const HTMX_VERSION: &str = "2.0.8";

const HTMX: &[u8] = include_bytes!("../vendor/htmx.org-2.0.8/htmx.min.js");
const STYLESHEET: &[u8] = include_bytes!("../web/app.css");
const LIVE_SCRIPT: &[u8] = include_bytes!("../web/live.js");
const ICON: &[u8] = include_bytes!("../web/icon.svg");

/// A static file: its served name, type and bytes.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

const ASSETS: [Asset; 4] = [
    Asset {
        name: "htmx-2.0.8.min.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: HTMX,
    },
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        bytes: STYLESHEET,
    },
    Asset {
        name: "live.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: LIVE_SCRIPT,
    },
    Asset {
        name: "icon.svg",
        content_type: "image/svg+xml",
        bytes: ICON,
    },
];

/// `GET /ui/{file}`.
pub async fn serve(Path(file): Path<String>) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.name == file) else {
        return PageError::not_found().into_response();
    };
    let mut response = asset.bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    // The stylesheet and script change with a release; htmx's name carries
    // its version. An hour for ours, a year for htmx.
    let cache = if asset.name.starts_with("htmx-") {
        "public, max-age=31536000, immutable"
    } else {
        "public, max-age=3600"
    };
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    response
}

/// `GET /favicon.ico`: browsers ask for it whatever the page declares.
pub async fn favicon() -> Response {
    serve(Path("icon.svg".to_owned())).await
}

/// Bytes of every asset, for the page-weight test.
pub fn sizes() -> Vec<(&'static str, usize)> {
    ASSETS.iter().map(|a| (a.name, a.bytes.len())).collect()
}
