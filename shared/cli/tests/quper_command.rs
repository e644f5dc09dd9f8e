//! The `quper` binary itself: `serve` answers, bootstraps once, keeps every
//! acknowledged write across `kill -9`, and stops cleanly on SIGTERM;
//! `admin create` and `token` work from the command line.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const SECRET: &str = "cli-test-secret-0123456789abcdef0123456789";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn quper(data_dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_quper"));
    command
        .env("QUPER_DATA_DIR", data_dir)
        .env("QUPER_JWT_SECRET", SECRET)
        .env("RUST_LOG", "warn")
        .env_remove("QUPER_STORE")
        .stdin(Stdio::null());
    command
}

struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn serve(data_dir: &Path) -> Server {
    let port = free_port();
    let child = quper(data_dir)
        .args(["serve", "--addr", &format!("127.0.0.1:{port}")])
        .env("QUPER_BOOTSTRAP_EMAIL", "boot@example.com")
        .env("QUPER_BOOTSTRAP_PASSWORD", "boot-password-1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn quper serve");
    let server = Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(20) {
        if reqwest::get(format!("{}/health", server.base))
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return server;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("quper serve did not answer /health within 20 s");
}

async fn token(base: &str, email: &str, password: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{base}/api/v1/auth/token"))
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await
        .expect("token request")
}

async fn bearer(base: &str) -> String {
    let reply: Value = token(base, "boot@example.com", "boot-password-1")
        .await
        .json()
        .await
        .expect("json");
    reply["access_token"].as_str().expect("access_token").to_owned()
}

#[tokio::test]
async fn serve_survives_kill_9_and_stops_on_sigterm() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let mut server = serve(data_dir.path()).await;
    let auth = bearer(&server.base).await;
    let http = reqwest::Client::new();
    let mut acknowledged = Vec::new();
    for n in 0..20 {
        let reply = http
            .post(format!("{}/api/v1/users", server.base))
            .bearer_auth(&auth)
            .json(&json!({ "email": format!("durable{n}@example.com"), "full_name": "Durable" }))
            .send()
            .await
            .expect("create user");
        assert_eq!(reply.status().as_u16(), 201);
        acknowledged.push(reply.json::<Value>().await.expect("json")["id"].as_u64().expect("id"));
    }
    server.child.kill().expect("kill -9");
    server.child.wait().expect("reap");

    // Restarted on the same data: every acknowledged user is there, the
    // bootstrap did not run twice, the generated JWT secret is the same.
    let server = serve(data_dir.path()).await;
    for id in &acknowledged {
        let reply = http
            .get(format!("{}/api/v1/users/{id}", server.base))
            .bearer_auth(&auth)
            .send()
            .await
            .expect("get");
        assert_eq!(reply.status().as_u16(), 200, "user {id} lost after kill -9");
    }
    let all: Value = http
        .get(format!("{}/api/v1/users", server.base))
        .bearer_auth(&auth)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert_eq!(all["total"], 21, "20 users and one bootstrap superadmin");

    let pid = server.child.id().to_string();
    let status = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("send SIGTERM");
    assert!(status.success());
    let mut server = server;
    let started = Instant::now();
    let exit = loop {
        if let Some(exit) = server.child.try_wait().expect("wait") {
            break exit;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "quper did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "clean shutdown exits 0, got {exit}");
}

#[tokio::test]
async fn admin_create_and_token_work_from_the_command_line() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let created = quper(data_dir.path())
        .args([
            "admin",
            "create",
            "--email",
            "ops@acme.example",
            "--tenant",
            "acme",
            "--role",
            "admin",
        ])
        .env("QUPER_ADMIN_PASSWORD", "ops-password-1")
        .output()
        .expect("admin create");
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    let user: Value = serde_json::from_slice(&created.stdout).expect("json");
    assert_eq!(
        (user["tenant"].as_str(), user["role"].as_str()),
        (Some("acme"), Some("admin"))
    );

    let again = quper(data_dir.path())
        .args(["admin", "create", "--email", "ops@acme.example", "--tenant", "acme"])
        .env("QUPER_ADMIN_PASSWORD", "ops-password-1")
        .output()
        .expect("admin create again");
    assert!(!again.status.success(), "a duplicate email is refused");

    let minted = quper(data_dir.path())
        .args(["token", "--email", "ops@acme.example", "--tenant", "acme"])
        .output()
        .expect("token");
    assert!(minted.status.success(), "{}", String::from_utf8_lossy(&minted.stderr));
    let minted: Value = serde_json::from_slice(&minted.stdout).expect("json");
    let access = minted["access_token"].as_str().expect("access_token").to_owned();

    let server = serve(data_dir.path()).await;
    let me: Value = reqwest::Client::new()
        .get(format!("{}/api/v1/app/users/me", server.base))
        .bearer_auth(&access)
        .send()
        .await
        .expect("me")
        .json()
        .await
        .expect("json");
    assert_eq!(me["email"], "ops@acme.example");
    assert_eq!(
        token(&server.base, "ops@acme.example", "ops-password-1")
            .await
            .status()
            .as_u16(),
        200
    );

    let unknown = quper(data_dir.path())
        .args(["token", "--email", "ghost@acme.example", "--tenant", "acme"])
        .output();
    assert!(!unknown.expect("token").status.success());
}

#[tokio::test]
async fn serve_fires_escalation_timers_by_itself() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let server = serve(data_dir.path()).await;
    let auth = bearer(&server.base).await;
    let http = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        http.post(format!("{}{path}", server.base))
            .bearer_auth(&auth)
            .json(&body)
            .send()
    };
    let ann: Value = post(
        "/api/v1/users",
        json!({ "email": "ann@example.com", "full_name": "Ann" }),
    )
    .await
    .expect("user")
    .json()
    .await
    .expect("json");
    post("/api/v1/escalation-policies", json!({ "name": "now" }))
        .await
        .expect("policy");
    for level in [1, 2] {
        let assignee = if level == 1 { ann["id"].clone() } else { json!(1) };
        let reply = post(
            "/api/v1/escalation-policies/1/levels",
            json!({ "level_number": level, "delay_minutes": 0, "assignees": [{ "user_id": assignee }] }),
        )
        .await
        .expect("level");
        assert_eq!(reply.status().as_u16(), 201);
    }
    post(
        "/api/v1/teams",
        json!({ "name": "ops", "default_escalation_policy_id": 1 }),
    )
    .await
    .expect("team");
    let source: Value = post(
        "/api/v1/alert-sources",
        json!({ "name": "s", "source_type": "generic", "team_id": 1 }),
    )
    .await
    .expect("source")
    .json()
    .await
    .expect("json");
    let created = http
        .post(format!("{}/api/v1/alerts", server.base))
        .header("x-api-key", source["api_key"].as_str().expect("key"))
        .json(&json!({ "title": "down", "severity": "critical", "external_id": "x" }))
        .send()
        .await
        .expect("alert");
    assert_eq!(created.status().as_u16(), 201);
    // Level 1 is paged at once; level 2's timer is due at once and only the
    // host's own worker can fire it.
    let started = Instant::now();
    loop {
        let logs: Value = http
            .get(format!("{}/api/v1/incidents/1/notification-logs", server.base))
            .bearer_auth(&auth)
            .send()
            .await
            .expect("logs")
            .json()
            .await
            .expect("json");
        let levels: Vec<u64> = logs
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|row| row["escalation_level"].as_u64())
            .collect();
        if levels == [1, 2] {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the timer worker did not page level 2: {levels:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn cur_sample_writes_the_shipped_samples() {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/cur");
    for (format, folder, file) in [
        ("legacy", "legacy", "quper-sample-00001.csv.gz"),
        ("cur2", "cur2", "quper-sample-cur2-00001.csv"),
    ] {
        let out = tempfile::tempdir().expect("temp dir");
        let output = Command::new(env!("CARGO_BIN_EXE_quper"))
            .args(["cur-sample", "--out"])
            .arg(out.path())
            .args([
                "--rows",
                "400",
                "--days",
                "10",
                "--end",
                "2026-01-11",
                "--format",
                format,
            ])
            .output()
            .expect("run quper cur-sample");
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let printed: Value = serde_json::from_slice(&output.stdout).expect("JSON on stdout");
        assert_eq!(printed["rows"], 400);
        assert_eq!(
            std::fs::read(out.path().join(file)).expect("written"),
            std::fs::read(shipped.join(folder).join(file)).expect("shipped"),
            "{format}"
        );
    }
    let refused = Command::new(env!("CARGO_BIN_EXE_quper"))
        .args(["cur-sample", "--out", "/tmp/never-written", "--days", "0"])
        .output()
        .expect("run quper cur-sample");
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--days"));
}
