//! OmniStack's files over real HTTP against the host's local file store:
//! upload URL, PUT to the signed URL (reqwest), confirm, list, download the
//! bytes back, delete; the usage each step records; what the signed URLs
//! refuse (expired, another key, tampered, oversized, another type, no
//! length), with nothing stored; the per-file limit, the content types, the
//! filename rules and the per-user quota; another user's file is a 404.

use std::sync::Arc;

use quper_core::model::{RecordId, Role, TenantId};
use quper_core::ports::{ManualClock, ObjectStore, SystemClock};
use quper_core::usage::{period_id, period_of};
use serde_json::{Value, json};

use crate::support::{TestApp, spawn_host};

/// Asks for an upload URL; returns the answer.
async fn upload_url(app: &TestApp, token: &str, filename: &str, content_type: &str, size: usize) -> Value {
    let reply = app
        .post(
            "/api/v1/app/files/upload-url",
            token,
            json!({ "filename": filename, "content_type": content_type, "size": size }),
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body
}

/// PUTs `body` to a signed URL with `content_type`; the status.
async fn put(app: &TestApp, url: &str, content_type: &str, body: Vec<u8>) -> u16 {
    app.http
        .put(url)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("PUT")
        .status()
        .as_u16()
}

/// The user's usage attributes of this billing period.
async fn usage(host: &quper::host::LocalHost, tenant: &str, user: u64) -> Value {
    let tenant = TenantId::parse(tenant).expect("tenant");
    let (first, _) = period_of(host.store().now());
    let key = quper_core::keys::usage_period(&tenant, &period_id(first), user);
    match host.store().table().get(&key).await.expect("usage") {
        Some(item) => Value::Object(item),
        None => json!({}),
    }
}

#[tokio::test]
async fn a_file_goes_up_is_confirmed_comes_back_down_and_goes() {
    let (app, host) = spawn_host(&[], Arc::new(SystemClock)).await;
    let admin = app.tenant_with_admin("files-flow").await;
    let (user_id, user) = app
        .user_with_role(&admin, "uploader@files-flow.example", Role::User)
        .await;
    let bytes: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();

    let grant = upload_url(&app, &user, "../../Q3 report.pdf", "application/pdf", bytes.len()).await;
    let file_id = grant["file_id"].as_str().expect("file_id").to_owned();
    assert!(RecordId::parse(&file_id).is_ok(), "{grant:?}");
    assert_eq!(
        grant["key"],
        format!("uploads/files-flow/{user_id:010}/{file_id}/Q3_report.pdf")
    );
    assert_eq!(
        (&grant["expires_in"], &grant["upload_method"]),
        (&json!(3600), &json!("PUT"))
    );
    assert_eq!(grant["upload_headers"], json!({ "Content-Type": "application/pdf" }));
    let url = grant["upload_url"].as_str().expect("upload_url").to_owned();
    assert!(url.starts_with(&format!("{}/local-files/uploads/", app.base)), "{url}");

    // Pending: not listed, not downloadable; confirming finds nothing yet.
    assert_eq!(app.get("/api/v1/app/files", &user).await.body["total"], 0);
    let early = app
        .post("/api/v1/app/files/confirm", &user, json!({ "file_id": file_id }))
        .await;
    assert_eq!(early.status, 422, "{:?}", early.body);
    assert_eq!(early.body["error"]["details"]["field"], "file_id");
    let not_yet = app
        .get(&format!("/api/v1/app/files/{file_id}/download-url"), &user)
        .await;
    assert_eq!(not_yet.status, 409, "{:?}", not_yet.body);

    assert_eq!(put(&app, &url, "application/pdf", bytes.clone()).await, 200);
    let confirmed = app
        .post("/api/v1/app/files/confirm", &user, json!({ "file_id": file_id }))
        .await;
    assert_eq!(confirmed.status, 200, "{:?}", confirmed.body);
    assert_eq!(confirmed.body["id"], file_id.as_str());
    assert_eq!(confirmed.body["filename"], "Q3 report.pdf");
    assert_eq!(confirmed.body["content_type"], "application/pdf");
    assert_eq!(confirmed.body["size"], bytes.len());
    assert_eq!(confirmed.body["status"], "uploaded");
    assert!(confirmed.body["created_at"].is_string());
    // Confirming again answers the same and counts nothing twice.
    let again = app
        .post("/api/v1/app/files/confirm", &user, json!({ "file_id": file_id }))
        .await;
    assert_eq!((again.status, &again.body["status"]), (200, &json!("uploaded")));

    let listed = app.get("/api/v1/app/files", &user).await;
    assert_eq!(listed.status, 200, "{:?}", listed.body);
    assert_eq!((&listed.body["total"], &listed.body["limit"]), (&json!(1), &json!(20)));
    assert_eq!(listed.body["items"][0]["id"], file_id.as_str());

    let download = app
        .get(&format!("/api/v1/app/files/{file_id}/download-url"), &user)
        .await;
    assert_eq!(download.status, 200, "{:?}", download.body);
    assert_eq!(download.body["expires_in"], 3600);
    let download_url = download.body["download_url"].as_str().expect("download_url").to_owned();
    let fetched = app.http.get(&download_url).send().await.expect("GET");
    assert_eq!(fetched.status(), 200);
    assert_eq!(fetched.headers()["content-type"], "application/pdf");
    assert!(
        fetched.headers()["content-disposition"]
            .to_str()
            .unwrap_or_default()
            .starts_with("attachment")
    );
    assert_eq!(fetched.bytes().await.expect("bytes").to_vec(), bytes);

    let used = usage(&host, "files-flow", user_id).await;
    assert_eq!(used["storage_bytes"], bytes.len(), "{used:?}");
    assert_eq!(used["storage_bytes@application/pdf"], bytes.len(), "{used:?}");
    assert_eq!(used["file_uploads"], 1, "{used:?}");
    assert_eq!(used["file_downloads"], 1, "{used:?}");

    // Another user (an admin of the same environment) and another
    // environment see nothing of it.
    let other_env = app.tenant_with_admin("files-other").await;
    for token in [&admin, &other_env] {
        assert_eq!(app.get("/api/v1/app/files", token).await.body["total"], 0);
        for reply in [
            app.get(&format!("/api/v1/app/files/{file_id}/download-url"), token)
                .await,
            app.post("/api/v1/app/files/confirm", token, json!({ "file_id": file_id }))
                .await,
            app.delete(&format!("/api/v1/app/files/{file_id}"), token).await,
        ] {
            assert_eq!(reply.status, 404, "{:?}", reply.body);
            assert_eq!(reply.body["error"]["details"]["resource"], "File");
        }
    }

    let deleted = app.delete(&format!("/api/v1/app/files/{file_id}"), &user).await;
    assert_eq!(deleted.status, 204, "{:?}", deleted.body);
    assert_eq!(app.http.get(&download_url).send().await.expect("GET").status(), 404);
    assert_eq!(app.get("/api/v1/app/files", &user).await.body["total"], 0);
    let gone = app.delete(&format!("/api/v1/app/files/{file_id}"), &user).await;
    assert_eq!(gone.status, 404);
    let used = usage(&host, "files-flow", user_id).await;
    assert_eq!(used["storage_bytes"], 0, "{used:?}");
    assert_eq!(used["file_uploads"], 1, "{used:?}");
    let key = grant["key"].as_str().expect("key");
    assert_eq!(host.objects.head(key).await.expect("head"), None);
}

#[tokio::test]
async fn signed_urls_refuse_misuse_and_store_nothing() {
    let clock = Arc::new(ManualClock::at(chrono::Utc::now()));
    let (app, host) = spawn_host(&[], clock.clone()).await;
    let user = app.tenant_with_admin("files-misuse").await;
    let body = b"hello, world".to_vec();
    let a = upload_url(&app, &user, "a.txt", "text/plain", body.len()).await;
    let b = upload_url(&app, &user, "b.txt", "text/plain", body.len()).await;
    let url_a = a["upload_url"].as_str().expect("url").to_owned();
    let key_a = a["key"].as_str().expect("key").to_owned();
    let key_b = b["key"].as_str().expect("key").to_owned();

    // A's URL used for B's key; A's URL with its size or type changed; a
    // signature changed.
    let for_b = url_a.replacen(&key_a, &key_b, 1);
    assert_eq!(put(&app, &for_b, "text/plain", body.clone()).await, 403);
    let bigger = url_a.replacen(&format!("size={}", body.len()), "size=100000", 1);
    assert_ne!(bigger, url_a);
    assert_eq!(put(&app, &bigger, "text/plain", vec![b'x'; 100_000]).await, 403);
    let retyped = url_a.replacen("type=text%2Fplain", "type=text%2Fhtml", 1);
    assert_ne!(retyped, url_a);
    assert_eq!(put(&app, &retyped, "text/html", body.clone()).await, 403);
    let forged = match url_a.rfind("signature=") {
        Some(at) => format!("{}signature={}", &url_a[..at], "0".repeat(64)),
        None => panic!("no signature in {url_a}"),
    };
    assert_eq!(put(&app, &forged, "text/plain", body.clone()).await, 403);
    let unsigned = url_a.split('?').next().expect("path").to_owned();
    assert_eq!(put(&app, &unsigned, "text/plain", body.clone()).await, 403);

    // The right URL with a body larger or smaller than declared, another
    // content type, or no length (a stream of unknown length).
    let mut larger = body.clone();
    larger.extend_from_slice(b"!!");
    assert_eq!(put(&app, &url_a, "text/plain", larger).await, 413);
    assert_eq!(put(&app, &url_a, "text/plain", body[..4].to_vec()).await, 400);
    assert_eq!(put(&app, &url_a, "application/pdf", body.clone()).await, 400);
    let stream = futures::stream::iter([Ok::<_, std::io::Error>(bytes_of(&body))]);
    let chunked = app
        .http
        .put(&url_a)
        .header("content-type", "text/plain")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .expect("PUT");
    assert_eq!(chunked.status(), 411);
    // None of that stored a byte.
    assert_eq!(host.objects.head(&key_a).await.expect("head"), None);
    assert_eq!(host.objects.head(&key_b).await.expect("head"), None);
    let refused = app
        .post("/api/v1/app/files/confirm", &user, json!({ "file_id": a["file_id"] }))
        .await;
    assert_eq!(refused.status, 422, "{:?}", refused.body);

    // An hour and a second later the URL has expired.
    clock.advance(chrono::Duration::seconds(3601));
    assert_eq!(put(&app, &url_a, "text/plain", body.clone()).await, 403);
    assert_eq!(host.objects.head(&key_a).await.expect("head"), None);

    // A fresh URL works; its download URL expires too.
    let c = upload_url(&app, &user, "c.txt", "text/plain", body.len()).await;
    let url_c = c["upload_url"].as_str().expect("url");
    assert_eq!(put(&app, url_c, "text/plain", body.clone()).await, 200);
    let confirmed = app
        .post("/api/v1/app/files/confirm", &user, json!({ "file_id": c["file_id"] }))
        .await;
    assert_eq!(confirmed.status, 200, "{:?}", confirmed.body);
    let download = app
        .get(
            &format!("/api/v1/app/files/{}/download-url", c["file_id"].as_str().expect("id")),
            &user,
        )
        .await;
    let download_url = download.body["download_url"].as_str().expect("url").to_owned();
    assert_eq!(app.http.get(&download_url).send().await.expect("GET").status(), 200);
    // A GET URL cannot be used to PUT, nor for another key.
    assert_eq!(put(&app, &download_url, "text/plain", body.clone()).await, 403);
    let other_key = download_url.replacen("c.txt", "a.txt", 1);
    assert_eq!(app.http.get(&other_key).send().await.expect("GET").status(), 403);
    clock.advance(chrono::Duration::seconds(3601));
    assert_eq!(app.http.get(&download_url).send().await.expect("GET").status(), 403);
}

fn bytes_of(body: &[u8]) -> Vec<u8> {
    body.to_vec()
}

#[tokio::test]
async fn upload_rules_and_the_quota() {
    let (app, _host) = spawn_host(
        &[
            ("QUPER_FILES_MAX_BYTES", "1000"),
            ("QUPER_FILES_QUOTA_BYTES", "1500"),
            ("QUPER_FILES_ALLOWED_TYPES", "image/*, text/plain"),
        ],
        Arc::new(SystemClock),
    )
    .await;
    let user = app.tenant_with_admin("files-rules").await;
    for (body, field) in [
        (
            json!({ "filename": "a.txt", "content_type": "text/plain", "size": 1001 }),
            "size",
        ),
        (
            json!({ "filename": "a.txt", "content_type": "text/plain", "size": 0 }),
            "size",
        ),
        (
            json!({ "filename": "a.html", "content_type": "text/html", "size": 10 }),
            "content_type",
        ),
        (
            json!({ "filename": "a.txt", "content_type": "not a type", "size": 10 }),
            "content_type",
        ),
        (
            json!({ "filename": "a.txt", "content_type": "text/plain; charset=x", "size": 10 }),
            "content_type",
        ),
        (
            json!({ "filename": "dir/", "content_type": "text/plain", "size": 10 }),
            "filename",
        ),
        (
            json!({ "filename": "..", "content_type": "text/plain", "size": 10 }),
            "filename",
        ),
        (
            json!({ "filename": "x".repeat(256), "content_type": "text/plain", "size": 10 }),
            "filename",
        ),
        (json!({ "content_type": "text/plain", "size": 10 }), "filename"),
        (
            json!({ "filename": "a.txt", "content_type": "text/plain", "size": -1 }),
            "size",
        ),
        (
            json!({ "filename": "a.txt", "content_type": "text/plain", "size": 10, "key": "x" }),
            "key",
        ),
    ] {
        let reply = app.post("/api/v1/app/files/upload-url", &user, body.clone()).await;
        assert_eq!(reply.status, 422, "{body}: {:?}", reply.body);
        let named = reply.body["error"]["details"]["field"].as_str().unwrap_or_default();
        let message = reply.body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            named.contains(field) || message.contains(field),
            "{body}: {:?}",
            reply.body
        );
    }
    let image = upload_url(&app, &user, "photo.PNG", "IMAGE/PNG", 1000).await;
    assert!(image["key"].as_str().expect("key").ends_with("/photo.PNG"), "{image:?}");
    // A pending upload counts: 1000 of 1500 are spoken for.
    let over = app
        .post(
            "/api/v1/app/files/upload-url",
            &user,
            json!({ "filename": "b.txt", "content_type": "text/plain", "size": 501 }),
        )
        .await;
    assert_eq!(over.status, 422, "{:?}", over.body);
    assert_eq!(over.body["error"]["details"]["field"], "size");
    assert!(
        over.body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("quota"),
        "{:?}",
        over.body
    );
    upload_url(&app, &user, "b.txt", "text/plain", 500).await;
    // Giving up the pending upload frees its bytes.
    let deleted = app
        .delete(
            &format!("/api/v1/app/files/{}", image["file_id"].as_str().expect("id")),
            &user,
        )
        .await;
    assert_eq!(deleted.status, 204, "{:?}", deleted.body);
    upload_url(&app, &user, "c.txt", "text/plain", 1000).await;
    // Another user has a quota of their own.
    let (_, other) = app.user_with_role(&user, "other@files-rules.example", Role::User).await;
    upload_url(&app, &other, "d.txt", "text/plain", 1000).await;
    // A malformed id is a 404; a confirm of nothing a 422.
    assert_eq!(app.delete("/api/v1/app/files/nope", &user).await.status, 404);
    let bad = app
        .post("/api/v1/app/files/confirm", &user, json!({ "file_id": "nope" }))
        .await;
    assert_eq!(bad.status, 422, "{:?}", bad.body);
}
