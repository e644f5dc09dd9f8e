//! The routes over HTTP semantics: content types, caching, 404s, and a router
//! that fits any application state.

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;

#[derive(Clone)]
struct AppState;

fn app() -> Router {
    Router::new()
        .merge(quper_docs_ui::router::<AppState>())
        .with_state(AppState)
}

async fn get(path: &str) -> (StatusCode, Option<String>, Option<String>, String) {
    let response = app()
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let header = |name| {
        response
            .headers()
            .get(name)
            .map(|v: &axum::http::HeaderValue| v.to_str().unwrap().to_owned())
    };
    let (status, content_type, cache) = (
        response.status(),
        header(header::CONTENT_TYPE),
        header(header::CACHE_CONTROL),
    );
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, content_type, cache, String::from_utf8_lossy(&body).into_owned())
}

/// The same-origin URLs a page loads (its `src` and `href` values).
fn references(page: &str) -> Vec<String> {
    page.split('"')
        .filter(|s| s.starts_with('/'))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn pages_and_their_files() {
    for (page_path, prefix, files) in [("/docs", "/docs/", 4), ("/redoc", "/redoc/", 4)] {
        let (status, content_type, cache, page) = get(page_path).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(content_type.as_deref(), Some("text/html; charset=utf-8"));
        assert_eq!(cache.as_deref(), Some("no-cache"));
        assert!(
            !page.contains("<script>") && !page.contains("<style"),
            "inline script or style: {page}"
        );
        let refs = references(&page);
        assert_eq!(refs.len(), files, "{page}");
        for r in refs {
            assert!(r.starts_with(prefix), "{r}");
            let (status, content_type, cache, body) = get(&r).await;
            assert_eq!(status, StatusCode::OK, "{r}");
            let expected = if r.ends_with(".js") {
                "text/javascript; charset=utf-8"
            } else {
                "text/css; charset=utf-8"
            };
            assert_eq!(content_type.as_deref(), Some(expected), "{r}");
            assert_eq!(cache.as_deref(), Some("public, max-age=31536000, immutable"), "{r}");
            assert!(!body.is_empty(), "{r}");
        }
    }
}

#[tokio::test]
async fn the_icons_taken_out_of_swagger_ui_css_are_served_as_svg() {
    let (_, _, _, page) = get("/docs").await;
    let css = references(&page)
        .into_iter()
        .find(|r| r.contains("/swagger-ui."))
        .unwrap();
    let (_, _, _, css) = get(&css).await;
    let icon = css
        .split("url(\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .find(|url| url.ends_with(".svg"))
        .expect("an svg icon url");
    assert!(
        icon.starts_with("/docs/swagger-ui-img-") && icon.ends_with(".svg"),
        "{icon}"
    );
    let (status, content_type, cache, svg) = get(icon).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type.as_deref(), Some("image/svg+xml"));
    assert_eq!(cache.as_deref(), Some("public, max-age=31536000, immutable"));
    assert!(
        svg.starts_with("<svg") && svg.contains("xmlns=\"http://www.w3.org/2000/svg\""),
        "{svg}"
    );
}

#[tokio::test]
async fn unknown_files_are_404() {
    for path in [
        "/docs/nope.js",
        "/docs/swagger-ui-bundle.js",
        "/redoc/redoc.standalone.js",
        "/redoc/swagger-ui.css",
        "/docs/",
        "/docs/a/b",
        "/redoc/..%2Fdocs",
    ] {
        let (status, ..) = get(path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
}

#[tokio::test]
async fn head_and_other_methods() {
    let head = app()
        .oneshot(Request::head("/docs").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    let post = app()
        .oneshot(
            Request::builder()
                .method(Method::POST)
                .uri("/redoc")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
}
