//! A small browser for the operator UI's tests: keeps its cookies, follows
//! nothing by itself (each redirect is asserted), and posts forms with the
//! CSRF token of the last page it read.

use std::collections::BTreeMap;

use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};

use crate::support::TestApp;

/// A page or redirect as the browser got it.
#[derive(Debug)]
pub struct Page {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub html: String,
}

impl Page {
    /// Where a redirect points.
    pub fn location(&self) -> &str {
        self.headers.get(LOCATION).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    /// The value of the first `name="csrf_token"` field.
    pub fn csrf(&self) -> Option<String> {
        let marker = "name=\"csrf_token\" value=\"";
        let start = self.html.find(marker)? + marker.len();
        let end = self.html[start..].find('"')? + start;
        Some(self.html[start..end].to_owned())
    }

    pub fn contains(&self, text: &str) -> bool {
        self.html.contains(text)
    }
}

pub struct Browser {
    pub base: String,
    http: reqwest::Client,
    pub cookies: BTreeMap<String, String>,
    /// The CSRF token of the last page that carried one.
    pub csrf: Option<String>,
}

impl Browser {
    pub fn new(app: &TestApp) -> Browser {
        Browser {
            base: app.base.clone(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            cookies: BTreeMap::new(),
            csrf: None,
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn read(&mut self, response: reqwest::Response) -> Page {
        for value in response.headers().get_all(SET_COOKIE) {
            let text = value.to_str().expect("cookie");
            let pair = text.split(';').next().unwrap_or("");
            if let Some((name, value)) = pair.split_once('=') {
                if value.is_empty() || text.contains("Max-Age=0") {
                    self.cookies.remove(name);
                } else {
                    self.cookies.insert(name.to_owned(), value.to_owned());
                }
            }
        }
        let page = Page {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            html: response.text().await.expect("body"),
        };
        if let Some(token) = page.csrf() {
            self.csrf = Some(token);
        }
        page
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .header(COOKIE, self.cookie_header())
            .send()
            .await
            .expect("request");
        self.read(response).await
    }

    /// An htmx request (`HX-Request: true`).
    pub async fn get_partial(&mut self, path: &str) -> Page {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .header(COOKIE, self.cookie_header())
            .header("HX-Request", "true")
            .send()
            .await
            .expect("request");
        self.read(response).await
    }

    /// Posts `fields` with the CSRF token of the last page read.
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let token = self.csrf.clone().unwrap_or_default();
        let mut all: Vec<(&str, &str)> = vec![("csrf_token", token.as_str())];
        all.extend_from_slice(fields);
        self.post_raw(path, &all).await
    }

    /// Posts exactly `fields` (no token added).
    pub async fn post_raw(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .header(COOKIE, self.cookie_header())
            .form(fields)
            .send()
            .await
            .expect("request");
        self.read(response).await
    }

    /// Signs in through `/login`; panics unless it works.
    pub async fn sign_in(&mut self, email: &str, password: &str) {
        let login = self.get("/login").await;
        assert_eq!(login.status, 200, "{}", login.html);
        let signed = self.post("/login", &[("email", email), ("password", password)]).await;
        assert_eq!(signed.status, 303, "sign-in of {email}: {}", signed.html);
        assert!(self.cookies.contains_key("pagerpal_session"));
    }
}

/// A host on `table` that nobody has bootstrapped (a fresh install), served
/// on an ephemeral port: its base URL, and the guard of its data directory.
pub async fn spawn_fresh_host(table: std::sync::Arc<dyn quper_core::ports::Table>) -> (String, tempfile::TempDir) {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let host = crate::support::host_on(
        table,
        data_dir.path(),
        &[],
        std::sync::Arc::new(quper_core::ports::SystemClock),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let router = host.router();
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
        .expect("serve");
    });
    (format!("http://{addr}"), data_dir)
}

impl Browser {
    /// A browser on any base URL.
    pub fn at(base: &str) -> Browser {
        Browser {
            base: base.to_owned(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            cookies: BTreeMap::new(),
            csrf: None,
        }
    }
}
