//! `spawn_app()`: the real local host on an ephemeral port, in a temporary
//! data directory, plus a small client for talking to it over the wire.

use std::net::SocketAddr;
use std::sync::Arc;

use quper::host::LocalHost;
use quper_core::model::Role;
use quper_core::ports::SystemClock;
use reqwest::Method;
use serde_json::{Value, json};
use tempfile::TempDir;

pub const JWT_SECRET: &str = "test-secret-0123456789abcdef0123456789abcdef";
pub const ROOT_EMAIL: &str = "root@example.com";
pub const ROOT_PASSWORD: &str = "root-password-1";

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    /// The bootstrap superadmin's token (tenant `default`).
    pub root: String,
    _data_dir: TempDir,
}

/// The local host with default settings.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// The local host with extra settings (name, value).
pub async fn spawn_app_with(settings: &[(&str, &str)]) -> TestApp {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let settings: Vec<(String, String)> = settings.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let var = move |name: &str| {
        if name == "QUPER_JWT_SECRET" {
            return Some(JWT_SECRET.to_owned());
        }
        settings.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    };
    let host = LocalHost::open(data_dir.path(), var, Arc::new(SystemClock)).expect("open local host");
    quper::admin::bootstrap(&host.store, ROOT_EMAIL, ROOT_PASSWORD)
        .await
        .expect("bootstrap");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = host.app();
    tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
            .await
            .expect("serve");
    });
    let mut app = TestApp {
        base: format!("http://{addr}"),
        http: reqwest::Client::new(),
        root: String::new(),
        _data_dir: data_dir,
    };
    app.root = app.login(ROOT_EMAIL, ROOT_PASSWORD).await;
    app
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    /// The error code of an error reply.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

pub enum Auth<'a> {
    None,
    Bearer(&'a str),
    Basic(&'a str, &'a str),
}

impl TestApp {
    pub async fn send(&self, method: Method, path: &str, auth: Auth<'_>, body: Option<Value>) -> Reply {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        request = match auth {
            Auth::None => request,
            Auth::Bearer(token) => request.bearer_auth(token),
            Auth::Basic(user, password) => request.basic_auth(user, Some(password)),
        };
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        Self::read(response).await
    }

    pub async fn read(response: reqwest::Response) -> Reply {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        Reply { status, headers, body }
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.send(Method::GET, path, Auth::Bearer(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Reply {
        self.send(Method::POST, path, Auth::Bearer(token), Some(body)).await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Reply {
        self.send(Method::PATCH, path, Auth::Bearer(token), Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Reply {
        self.send(Method::DELETE, path, Auth::Bearer(token), None).await
    }

    /// Logs in and returns the access token; panics unless it works.
    pub async fn login(&self, email: &str, password: &str) -> String {
        let reply = self
            .send(
                Method::POST,
                "/api/v1/auth/token",
                Auth::None,
                Some(json!({ "email": email, "password": password })),
            )
            .await;
        assert_eq!(reply.status, 200, "login of {email}: {:?}", reply.body);
        reply.body["access_token"].as_str().expect("access_token").to_owned()
    }

    /// A new environment with an admin; returns the admin's token.
    pub async fn tenant_with_admin(&self, tenant: &str) -> String {
        let created = self
            .post(
                "/api/v1/environments",
                &self.root,
                json!({ "id": tenant, "name": tenant }),
            )
            .await;
        assert_eq!(created.status, 201, "{:?}", created.body);
        let email = format!("admin@{tenant}.example");
        let admin = self
            .post(
                &format!("/api/v1/environments/{tenant}/admins"),
                &self.root,
                json!({ "email": email, "password": "admin-password-1", "full_name": "Admin" }),
            )
            .await;
        assert_eq!(admin.status, 201, "{:?}", admin.body);
        self.login(&email, "admin-password-1").await
    }

    /// A user in the caller's tenant with a password and role; returns
    /// (id, token).
    pub async fn user_with_role(&self, admin: &str, email: &str, role: Role) -> (u64, String) {
        let created = self
            .post(
                "/api/v1/users",
                admin,
                json!({ "email": email, "full_name": "Test User", "password": "user-password-1", "role": role.as_str() }),
            )
            .await;
        assert_eq!(created.status, 201, "{:?}", created.body);
        let id = created.body["id"].as_u64().expect("id");
        (id, self.login(email, "user-password-1").await)
    }
}
