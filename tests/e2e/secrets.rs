//! Secrets never reach a reader: a tenant is seeded with every kind of
//! credential Quper keeps or uses (alert-source keys, passwords, webhook
//! signing secrets, Slack and webhook URLs, the Infobip API key, the host's
//! JWT secret and secrets key), pages go out and fail at providers that echo
//! what they were sent, and then every GET route of the OpenAPI document,
//! under /api/v1 and /api/v2, is called as each role: no answer holds any of
//! them. Sealed values are also checked at rest: the table holds no webhook
//! secret or URL in clear.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::routing::post;
use quper_core::model::Role;
use quper_core::ports::{Query, SystemClock};
use quper_notify::{InfobipSms, OutboundGuard, ProviderSender, Providers};
use serde_json::{Value, json};

use crate::support::{JWT_SECRET, SECRETS_KEY, TestApp, spawn_host_sending};

const INFOBIP_KEY: &str = "infobip-key-5f1d9c2a7e3b4d60";
const TENANT: &str = "vault";

/// A provider that fails every request and echoes what it got (the
/// credentials included) in its error, as a careless or hostile endpoint
/// would: whatever Quper keeps of the error must not carry them.
async fn echoing_provider() -> SocketAddr {
    async fn echo(uri: Uri, headers: HeaderMap, body: String) -> (StatusCode, String) {
        let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
        let signature = headers
            .get("x-quper-signature")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        (
            StatusCode::BAD_REQUEST,
            format!("rejected {uri} with authorization {auth} signature {signature}: {body}"),
        )
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = Router::new().fallback(post(echo));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

struct Seeded {
    app: TestApp,
    /// Every credential, by what it is.
    secrets: BTreeMap<&'static str, String>,
    /// (role, token) of every kind of reader.
    readers: Vec<(String, String)>,
    /// Path parameter values, by the route prefix they belong to.
    ids: Ids,
    host: quper::host::LocalHost,
}

#[derive(Default)]
struct Ids {
    user: u64,
    group: String,
    role: String,
    team: u64,
    source: u64,
    rule: String,
    alert: String,
    incident: u64,
    schedule: u64,
    entry: u64,
    policy: u64,
    level: u64,
    channel: String,
}

async fn created(app: &TestApp, token: &str, path: &str, body: Value) -> Value {
    let reply = app.post(path, token, body).await;
    assert_eq!(reply.status, 201, "POST {path}: {:?}", reply.body);
    reply.body
}

async fn seed() -> Seeded {
    let provider = echoing_provider().await;
    let mut providers = Providers::new(OutboundGuard::new("127.0.0.1"), "http://127.0.0.1:8000").expect("providers");
    providers.infobip = Some(InfobipSms::new(&format!("http://{provider}"), INFOBIP_KEY, None));
    let sender = Arc::new(ProviderSender(providers));
    let (app, host) = spawn_host_sending(&[], Arc::new(SystemClock), sender).await;
    let admin = app.tenant_with_admin(TENANT).await;
    let (user_id, responder) = app
        .user_with_role(&admin, "responder@vault.example", Role::Responder)
        .await;
    let (_, reader) = app.user_with_role(&admin, "reader@vault.example", Role::User).await;

    let mut secrets = BTreeMap::new();
    secrets.insert("admin password", "admin-password-1".to_owned());
    secrets.insert("user password", "user-password-1".to_owned());
    secrets.insert("root password", crate::support::ROOT_PASSWORD.to_owned());
    secrets.insert("Infobip API key", INFOBIP_KEY.to_owned());
    secrets.insert("JWT secret", JWT_SECRET.to_owned());
    secrets.insert("secrets key", SECRETS_KEY.to_owned());

    let slack_token = "T0VAULT/B0VAULT/slacksecrettoken9x8y7z";
    let slack_url = format!("http://{provider}/services/{slack_token}");
    let hook_token = "hooktoken-4c7e1f0a9b8d";
    let hook_url = format!("http://{provider}/in/{hook_token}?sig=querysecret77");
    let personal_slack = format!("http://{provider}/services/T0ME/B0ME/personalslacktoken55");
    secrets.insert("Slack webhook URL", slack_url.clone());
    secrets.insert("Slack webhook token", slack_token.to_owned());
    secrets.insert("webhook URL", hook_url.clone());
    secrets.insert("webhook URL token", hook_token.to_owned());
    secrets.insert("webhook URL query secret", "querysecret77".to_owned());
    secrets.insert("personal Slack webhook URL", personal_slack.clone());
    secrets.insert("personal Slack token", "personalslacktoken55".to_owned());

    let mut ids = Ids {
        user: user_id,
        ..Ids::default()
    };
    ids.group = created(&app, &admin, "/api/v1/groups", json!({ "name": "ops" })).await["id"]
        .as_str()
        .expect("group")
        .to_owned();
    ids.role = created(
        &app,
        &admin,
        "/api/v1/roles",
        json!({ "name": "watchers", "permissions": ["incidents:read"] }),
    )
    .await["id"]
        .as_str()
        .expect("role")
        .to_owned();
    for method in [
        json!({ "kind": "sms", "address": "+15550100077" }),
        json!({ "kind": "slack", "address": personal_slack }),
    ] {
        created(
            &app,
            &admin,
            &format!("/api/v1/users/{user_id}/contact-methods"),
            method,
        )
        .await;
    }
    let policy = created(&app, &admin, "/api/v1/escalation-policies", json!({ "name": "p" })).await;
    ids.policy = policy["id"].as_u64().expect("policy");
    let level = created(
        &app,
        &admin,
        &format!("/api/v1/escalation-policies/{}/levels", ids.policy),
        json!({ "level_number": 1, "delay_minutes": 10, "assignees": [{ "user_id": user_id }] }),
    )
    .await;
    ids.level = level["id"].as_u64().expect("level");
    ids.team = created(
        &app,
        &admin,
        "/api/v1/teams",
        json!({ "name": "vault", "default_escalation_policy_id": ids.policy }),
    )
    .await["id"]
        .as_u64()
        .expect("team");
    ids.schedule = created(
        &app,
        &admin,
        "/api/v1/schedules",
        json!({ "name": "primary", "time_zone": "UTC", "team_id": ids.team,
                "layers": [{ "user_ids": [user_id], "shift_length": 1, "shift_unit": "days", "start": "2026-01-05T00:00:00" }] }),
    )
    .await["id"]
        .as_u64()
        .expect("schedule");
    ids.entry = created(
        &app,
        &admin,
        &format!("/api/v1/schedules/{}/entries", ids.schedule),
        json!({ "user_id": user_id, "start": "2030-01-01T00:00:00Z", "end": "2030-01-02T00:00:00Z" }),
    )
    .await["id"]
        .as_u64()
        .unwrap_or(0);
    let slack = created(
        &app,
        &admin,
        "/api/v1/notifications/channels",
        json!({ "name": "alerts", "kind": "slack", "address": slack_url, "team_id": ids.team }),
    )
    .await;
    ids.channel = slack["id"].as_str().expect("channel").to_owned();
    let hook = created(
        &app,
        &admin,
        "/api/v1/notifications/channels",
        json!({ "name": "automation", "kind": "webhook", "address": hook_url, "team_id": ids.team }),
    )
    .await;
    let signing_secret = hook["secret"]
        .as_str()
        .expect("the signing secret, shown once")
        .to_owned();
    secrets.insert("webhook signing secret", signing_secret);
    ids.rule = created(
        &app,
        &admin,
        "/api/v1/alert-rules",
        json!({ "name": "all", "conditions": {}, "actions": {} }),
    )
    .await["id"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    let (source, key) = app.alert_source(&admin, "prom", "generic").await;
    ids.source = source;
    secrets.insert("alert-source key", key.clone());
    let alert = app
        .ingest(
            "/api/v1/alerts",
            &key,
            &json!({ "title": "Vault sealed", "severity": "critical", "external_id": "vault", "team_id": ids.team }),
        )
        .await;
    assert_eq!(alert.status, 201, "{:?}", alert.body);
    ids.incident = alert.body["id"].as_u64().expect("incident");
    ids.alert = alert.body["alert_id"].as_str().expect("alert").to_owned();
    // A regenerated key: the old one is a secret too (it must be gone).
    let regenerated = app
        .post(
            &format!("/api/v1/alert-sources/{source}/regenerate-key"),
            &admin,
            json!({}),
        )
        .await;
    assert_eq!(regenerated.status, 200, "{:?}", regenerated.body);
    secrets.insert(
        "regenerated alert-source key",
        regenerated.body["api_key"].as_str().expect("new key").to_owned(),
    );

    // Deliver the pages: every provider fails and echoes what it was sent.
    let jobs = host
        .queue
        .pending(host.store().now() + chrono::Duration::hours(1), 100)
        .await
        .expect("queued jobs");
    assert!(jobs.len() >= 3, "the responder's SMS and both channels: {jobs:?}");
    for (key, job) in jobs {
        host.app.deliver(&job).await.expect("deliver");
        host.queue.remove(&key).await.expect("dequeue");
    }

    let readers = vec![
        ("superadmin".to_owned(), app.root.clone()),
        ("admin".to_owned(), admin),
        ("responder".to_owned(), responder),
        ("user".to_owned(), reader),
    ];
    Seeded {
        app,
        secrets,
        readers,
        ids,
        host,
    }
}

/// A concrete path for a route of the document, from the seeded ids.
fn concrete(path: &str, ids: &Ids) -> String {
    let rest = path
        .strip_prefix("/api/v1")
        .or_else(|| path.strip_prefix("/api/v2"))
        .unwrap_or(path);
    let id = if rest.starts_with("/environments/") {
        TENANT.to_owned()
    } else if rest.starts_with("/users/") || rest.starts_with("/admin/users/") {
        ids.user.to_string()
    } else if rest.starts_with("/groups/") {
        ids.group.clone()
    } else if rest.starts_with("/roles/") {
        ids.role.clone()
    } else if rest.starts_with("/teams/") {
        ids.team.to_string()
    } else if rest.starts_with("/alert-sources/") {
        ids.source.to_string()
    } else if rest.starts_with("/alert-rules/") {
        ids.rule.clone()
    } else if rest.starts_with("/alerts/") {
        ids.alert.clone()
    } else if rest.starts_with("/incidents/") {
        ids.incident.to_string()
    } else if rest.starts_with("/schedules/") {
        ids.schedule.to_string()
    } else if rest.starts_with("/escalation-policies/") {
        ids.policy.to_string()
    } else if rest.starts_with("/notifications/channels/") {
        ids.channel.clone()
    } else {
        "x".to_owned()
    };
    if rest == "/incidents/stream" || rest == "/sync/stream" {
        // The live streams end when told (each first event is read whole).
        return format!("{path}?max_seconds=1");
    }
    path.replace("{id}", &id)
        .replace("{user_id}", &ids.user.to_string())
        .replace("{entry_id}", &ids.entry.to_string())
        .replace("{level_id}", &ids.level.to_string())
        .replace("{assignee_id}", "1")
        .replace("{method_id}", "1")
        .replace("{rule_id}", "1")
        .replace("{file}", "swagger-ui.css")
}

fn leaks<'a>(text: &str, secrets: &'a BTreeMap<&'static str, String>) -> Vec<&'a str> {
    secrets
        .iter()
        .filter(|(_, secret)| text.contains(secret.as_str()))
        .map(|(what, _)| *what)
        .collect()
}

#[tokio::test]
async fn no_get_route_shows_a_credential_to_any_role() {
    let seeded = seed().await;
    let (document, problems) = quper_http::openapi::document_checked(quper_http::routes::all_documented);
    assert!(problems.is_empty(), "{problems:?}");
    let mut checked = 0;
    let mut found = Vec::new();
    for (template, item) in document["paths"].as_object().expect("paths") {
        if item.get("get").is_none() {
            continue;
        }
        let path = concrete(template, &seeded.ids);
        let mut readers: Vec<(String, Option<&str>)> = seeded
            .readers
            .iter()
            .map(|(role, token)| (role.clone(), Some(token.as_str())))
            .collect();
        readers.push(("anonymous".to_owned(), None));
        for (role, token) in readers {
            let mut request = seeded.app.http.get(format!("{}{path}", seeded.app.base));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let response = request.send().await.expect("GET");
            let status = response.status().as_u16();
            let headers = format!("{:?}", response.headers());
            let body = response.text().await.unwrap_or_default();
            assert!(status < 500, "GET {path} as {role}: {status} {body}");
            for what in leaks(&format!("{headers}\n{body}"), &seeded.secrets) {
                found.push(format!("GET {path} as {role} ({status}) shows the {what}"));
            }
            checked += 1;
        }
    }
    assert!(checked > 300, "only {checked} requests were made");
    assert!(found.is_empty(), "credentials reached readers:\n{}", found.join("\n"));
}

#[tokio::test]
async fn credentials_are_sealed_at_rest() {
    let seeded = seed().await;
    let table = seeded.host.store().table();
    let mut stored = String::new();
    for partition in [
        format!("T#{TENANT}#CHANNEL"),
        format!("T#{TENANT}#USER#{:010}#CONTACT", seeded.ids.user),
        format!("T#{TENANT}#INC#{:010}", seeded.ids.incident),
    ] {
        let page = table.query(Query::partition(partition.clone())).await.expect("query");
        assert!(!page.items.is_empty(), "{partition} holds nothing");
        stored.push_str(&serde_json::to_string(&page.items).expect("items"));
    }
    let sealed_kinds: BTreeMap<&'static str, String> = seeded
        .secrets
        .iter()
        .filter(|(what, _)| what.contains("webhook") || what.contains("Slack"))
        .map(|(what, secret)| (*what, secret.clone()))
        .collect();
    assert_eq!(sealed_kinds.len(), 8, "{sealed_kinds:?}");
    let found = leaks(&stored, &sealed_kinds);
    assert!(found.is_empty(), "stored in clear: {found:?}");
    assert!(stored.contains("enc:v1:"), "the credentials are stored sealed");
}
