//! Browsable API documentation for Quper's OpenAPI document, which the
//! application serves at [`OPENAPI_URL`] (`/openapi.json`):
//!
//! - `GET /docs`: [Swagger UI] [`SWAGGER_UI_VERSION`], and its files under `/docs/{file}`;
//! - `GET /redoc`: [ReDoc] [`REDOC_VERSION`], and its files under `/redoc/{file}`.
//!
//! [`router`] returns these four routes; merge it into an application whose
//! other routes include `/openapi.json`.
//!
//! # Where the files come from
//!
//! Every file is embedded in the binary and served by Quper: the pages load
//! nothing from anywhere else, and nothing is downloaded at build or run time.
//! No crate on crates.io carries a usable ReDoc, so both UIs are vendored from
//! npm into `vendor/` by `vendor/update.sh`, which pins each package's version
//! and npm integrity hash (`--check` verifies the committed files against npm):
//!
//! - `swagger-ui-dist` 5.35.0 (Apache-2.0): `swagger-ui-bundle.js`, `swagger-ui.css`;
//! - `redoc` 2.5.4 (MIT): `bundles/redoc.standalone.js`. (ReDoc 3.0.1's bundle
//!   is twice the size and sends telemetry to a Redocly host: stay on 2.x.)
//!
//! Licence texts sit beside them. `vendor/SHA256SUMS` lists the vendored
//! files' hashes, which this crate's tests check.
//!
//! # Content-Security-Policy
//!
//! Quper sends `Content-Security-Policy: default-src 'self'` on every response
//! (set by its edge middleware, not here), and both pages work under it
//! without a change, as the crate's headless-Chromium test checks:
//!
//! - The HTML pages carry no inline script, style or event handler. Each UI is
//!   started by a small initializer file of ours (`web/`), which points it at
//!   `/openapi.json`.
//! - The vendored CSS and JS carry their icons as `data:` URLs, which
//!   `img-src` (here `default-src 'self'`) refuses; they are served with each
//!   such image moved into a file of its own under the same prefix.
//! - ReDoc's style libraries write into `<style>` elements that the policy
//!   refuses; `web/redoc-styles.js`, loaded before ReDoc, gives them
//!   constructed stylesheets instead, which the policy does not govern.
//! - ReDoc's sidebar logo comes from `cdn.redoc.ly`; its address is removed
//!   from the served bundle (the logo hides itself), so the page never reaches
//!   another host. ReDoc's search runs in a `blob:` worker, which the policy
//!   refuses; it is turned off (Swagger UI's tag filter stands in).
//!
//! The browser test (`tests/browser.rs`) needs Debian's `chromium` package
//! (`apt-get install -y chromium`) and fails, naming it, when it is missing.
//!
//! # Caching
//!
//! Apart from the two pages, every file is named by a hash of its served
//! content and is sent with `Cache-Control: public, max-age=31536000,
//! immutable`; the pages themselves are `no-cache`. An unknown file is a 404.
//!
//! [Swagger UI]: https://swagger.io/tools/swagger-ui/
//! [ReDoc]: https://redocly.com/redoc/

mod rewrite;

use std::collections::HashMap;
use std::sync::LazyLock;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;

/// Where the pages look for the OpenAPI document.
pub const OPENAPI_URL: &str = "/openapi.json";
/// The vendored Swagger UI (npm `swagger-ui-dist`).
pub const SWAGGER_UI_VERSION: &str = "5.35.0";
/// The vendored ReDoc (npm `redoc`).
pub const REDOC_VERSION: &str = "2.5.4";

const SWAGGER_UI_BUNDLE: &str = include_str!("../vendor/swagger-ui-dist-5.35.0/swagger-ui-bundle.js");
const SWAGGER_UI_CSS: &str = include_str!("../vendor/swagger-ui-dist-5.35.0/swagger-ui.css");
const REDOC_BUNDLE: &str = include_str!("../vendor/redoc-2.5.4/redoc.standalone.js");

const PAGE_CSS: &str = include_str!("../web/page.css");
const SWAGGER_INITIALIZER: &str = include_str!("../web/swagger-initializer.js");
const REDOC_STYLES: &str = include_str!("../web/redoc-styles.js");
const REDOC_INITIALIZER: &str = include_str!("../web/redoc-initializer.js");

/// The sidebar logo that ReDoc loads from its CDN; removed from the served
/// bundle (an empty `src` makes the logo hide itself).
const REDOC_CDN_LOGO: &str = "https://cdn.redoc.ly/redoc/logo-mini.svg";

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const NO_CACHE: &str = "no-cache";

/// The documentation routes: `GET /docs`, `GET /docs/{file}`, `GET /redoc`,
/// `GET /redoc/{file}` (HEAD too). The files are prepared on first use.
/// An application that declares its routes elsewhere uses the functions
/// below instead.
pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let or_404 = |file: Option<Response>| file.unwrap_or_else(|| StatusCode::NOT_FOUND.into_response());
    Router::new()
        .route("/docs", get(|| async { swagger_page() }))
        .route(
            "/docs/{file}",
            get(move |Path(file): Path<String>| async move { or_404(swagger_file(&file)) }),
        )
        .route("/redoc", get(|| async { redoc_page() }))
        .route(
            "/redoc/{file}",
            get(move |Path(file): Path<String>| async move { or_404(redoc_file(&file)) }),
        )
}

/// The Swagger UI page (`/docs`).
pub fn swagger_page() -> Response {
    SWAGGER.page()
}

/// A file of Swagger UI (`/docs/{file}`); `None` for an unknown name.
pub fn swagger_file(name: &str) -> Option<Response> {
    SWAGGER.file(name)
}

/// The ReDoc page (`/redoc`).
pub fn redoc_page() -> Response {
    REDOC.page()
}

/// A file of ReDoc (`/redoc/{file}`); `None` for an unknown name.
pub fn redoc_file(name: &str) -> Option<Response> {
    REDOC.file(name)
}

/// The media types (without parameters) of every file under `/docs/` and
/// `/redoc/`, each once, sorted: what the OpenAPI document says they are.
pub fn file_media_types() -> Vec<&'static str> {
    let mut types: Vec<&'static str> = SWAGGER
        .files
        .values()
        .chain(REDOC.files.values())
        .map(|file| file.content_type.split(';').next().unwrap_or(file.content_type).trim())
        .collect();
    types.sort_unstable();
    types.dedup();
    types
}

static SWAGGER: LazyLock<Site> = LazyLock::new(swagger_ui);
static REDOC: LazyLock<Site> = LazyLock::new(redoc);

/// One UI: its page and the files under its prefix.
struct Site {
    page: Bytes,
    files: HashMap<String, File>,
}

struct File {
    content_type: &'static str,
    body: Bytes,
}

impl Site {
    fn page(&self) -> Response {
        respond(HTML, NO_CACHE, self.page.clone())
    }

    fn file(&self, name: &str) -> Option<Response> {
        let file = self.files.get(name)?;
        Some(respond(file.content_type, IMMUTABLE, file.body.clone()))
    }
}

fn respond(content_type: &'static str, cache_control: &'static str, body: Bytes) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache_control)),
        ],
        body,
    )
        .into_response()
}

/// Collects a site's files under `prefix`, each named `{stem}.{hash}.{ext}`.
struct Files {
    prefix: &'static str,
    files: HashMap<String, File>,
}

impl Files {
    fn new(prefix: &'static str) -> Self {
        Files {
            prefix,
            files: HashMap::new(),
        }
    }

    /// Adds a file; returns its URL.
    fn add(&mut self, stem: &str, ext: &str, content_type: &'static str, body: impl Into<Bytes>) -> String {
        let body = body.into();
        let name = format!("{stem}.{}.{ext}", rewrite::short_hash(&body));
        let url = format!("{}{name}", self.prefix);
        self.files.insert(name, File { content_type, body });
        url
    }

    /// Moves the `data:` images of `text` into files; returns the new text.
    fn extract_images(&mut self, text: &str, stem: &str) -> String {
        let (text, images) = rewrite::extract_data_images(text, self.prefix, stem);
        for image in images {
            self.files.insert(
                image.file,
                File {
                    content_type: image.content_type,
                    body: image.bytes.into(),
                },
            );
        }
        text
    }
}

fn swagger_ui() -> Site {
    let mut files = Files::new("/docs/");
    let css = files.extract_images(SWAGGER_UI_CSS, "swagger-ui-img");
    let page_css = files.add("page", "css", CSS, PAGE_CSS);
    let css = files.add("swagger-ui", "css", CSS, css);
    let bundle = files.add("swagger-ui-bundle", "js", JS, SWAGGER_UI_BUNDLE);
    let init = files.add("swagger-initializer", "js", JS, SWAGGER_INITIALIZER);
    let page = format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Quper API – Swagger UI</title>
<link rel="stylesheet" href="{page_css}">
<link rel="stylesheet" href="{css}">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{bundle}"></script>
<script src="{init}"></script>
</body>
</html>
"#
    );
    Site {
        page: page.into(),
        files: files.files,
    }
}

fn redoc() -> Site {
    let mut files = Files::new("/redoc/");
    let bundle = REDOC_BUNDLE.replacen(REDOC_CDN_LOGO, "", 1);
    let bundle = files.extract_images(&bundle, "redoc-img");
    let page_css = files.add("page", "css", CSS, PAGE_CSS);
    let styles = files.add("redoc-styles", "js", JS, REDOC_STYLES);
    let bundle = files.add("redoc.standalone", "js", JS, bundle);
    let init = files.add("redoc-initializer", "js", JS, REDOC_INITIALIZER);
    let page = format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Quper API – ReDoc</title>
<link rel="stylesheet" href="{page_css}">
</head>
<body>
<div id="redoc"></div>
<script src="{styles}"></script>
<script src="{bundle}"></script>
<script src="{init}"></script>
</body>
</html>
"#
    );
    Site {
        page: page.into(),
        files: files.files,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(site: &Site, stem: &str) -> String {
        let (_, file) = site
            .files
            .iter()
            .find(|(name, _)| name.starts_with(&format!("{stem}.")))
            .unwrap_or_else(|| panic!("no {stem}.* file"));
        String::from_utf8(file.body.to_vec()).unwrap()
    }

    #[test]
    fn the_pages_reference_only_their_own_files() {
        for (site, prefix) in [(&*SWAGGER, "/docs/"), (&*REDOC, "/redoc/")] {
            let page = std::str::from_utf8(&site.page).unwrap();
            let refs: Vec<&str> = page
                .split(['"'])
                .filter(|s| s.starts_with('/') && !s.starts_with("//"))
                .collect();
            assert!(refs.len() >= 3, "{page}");
            for r in refs {
                let name = r.strip_prefix(prefix).unwrap_or_else(|| panic!("{r} outside {prefix}"));
                assert!(site.files.contains_key(name), "{r} is not served");
            }
            assert!(
                !page.contains("<script>") && !page.contains("<style"),
                "inline script or style: {page}"
            );
            assert!(!page.contains(" style="), "inline style: {page}");
            let handler = page.split_whitespace().find(|w| w.starts_with("on") && w.contains('='));
            assert!(handler.is_none(), "inline event handler {handler:?}: {page}");
        }
    }

    #[test]
    fn no_data_images_are_left_in_the_served_css_and_js() {
        for (site, stem) in [(&*SWAGGER, "swagger-ui"), (&*REDOC, "redoc.standalone")] {
            let text = body(site, stem);
            for quote in ["", "\"", "'"] {
                assert!(
                    !text.contains(&format!("url({quote}data:image")),
                    "{stem} still has a data: image"
                );
            }
        }
        // The vendored files did have them: 20 distinct icons in Swagger UI's CSS, 1 in ReDoc.
        assert!(
            SWAGGER
                .files
                .keys()
                .filter(|f| f.starts_with("swagger-ui-img-"))
                .count()
                >= 5
        );
        assert_eq!(REDOC.files.keys().filter(|f| f.starts_with("redoc-img-")).count(), 1);
    }

    #[test]
    fn the_redoc_bundle_reaches_no_cdn() {
        assert_eq!(
            REDOC_BUNDLE.matches(REDOC_CDN_LOGO).count(),
            1,
            "ReDoc's logo address moved"
        );
        assert!(!body(&REDOC, "redoc.standalone").contains("cdn.redoc.ly"));
    }

    #[test]
    fn the_initializers_point_at_the_openapi_document() {
        for js in [SWAGGER_INITIALIZER, REDOC_INITIALIZER] {
            assert!(js.contains(&format!("\"{OPENAPI_URL}\"")), "{js}");
        }
    }
}
