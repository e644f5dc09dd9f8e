//! Feature flags over the wire: CRUD, a key unique per environment (409),
//! validation, every flag type's check and its reason, the percentage
//! rollout deterministic and only growing as the percentage rises (checked
//! against the pure bucket function), admins only, another environment's
//! flag a 404, and every change in the audit log.

use quper_core::flags::in_rollout;
use quper_core::identity::users::{self, NewUser};
use quper_core::model::{Role, TenantId};
use serde_json::{Value, json};

use std::sync::Arc;

use quper::host::LocalHost;
use quper_core::ports::SystemClock;

use crate::support::{TestApp, parse, spawn_app, spawn_host};

async fn create(app: &TestApp, token: &str, body: Value) -> Value {
    let reply = app.post("/api/v1/admin/feature-flags", token, body).await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    reply.body
}

async fn check(app: &TestApp, token: &str, key: &str, user: u64) -> (bool, String) {
    let reply = app
        .get(
            &format!("/api/v1/admin/feature-flags/{key}/check?user_id={user}"),
            token,
        )
        .await;
    assert_eq!(reply.status, 200, "{key} for {user}: {:?}", reply.body);
    assert_eq!(reply.body["flag_key"], key);
    (
        reply.body["is_enabled"].as_bool().expect("is_enabled"),
        reply.body["reason"].as_str().expect("reason").to_owned(),
    )
}

#[tokio::test]
async fn flags_are_created_listed_changed_and_deleted_by_admins() {
    let (app, host) = host().await;
    let admin = app.tenant_with_admin("flags-crud").await;
    let created = create(
        &app,
        &admin,
        json!({
            "key": "beta_feature", "name": "Beta Feature", "description": "New experimental feature",
            "flag_type": "percentage", "percentage": 10, "is_enabled": true,
        }),
    )
    .await;
    let id = created["id"].as_str().expect("id").to_owned();
    assert!(id.starts_with("flag_") && id.len() == 37, "{id}");
    assert_eq!(created["key"], "beta_feature");
    assert_eq!(created["name"], "Beta Feature");
    assert_eq!(created["description"], "New experimental feature");
    assert_eq!(created["flag_type"], "percentage");
    assert_eq!(created["is_enabled"], true);
    assert_eq!(created["percentage"], 10);
    assert_eq!(created["user_ids"], json!([]));
    assert_eq!(created["plans"], json!([]));
    assert!(created["created_at"].is_string() && created["updated_at"].is_string());

    // Defaults: boolean, off.
    let plain = create(&app, &admin, json!({ "key": "a_switch", "name": "A switch" })).await;
    assert_eq!(plain["flag_type"], "boolean");
    assert_eq!(plain["is_enabled"], false);
    assert_eq!(plain["percentage"], 0);

    let list = app.get("/api/v1/admin/feature-flags", &admin).await;
    assert_eq!(list.status, 200);
    assert_eq!(list.body["total"], 2);
    let keys: Vec<&str> = list.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|f| f["key"].as_str())
        .collect();
    assert_eq!(keys, ["a_switch", "beta_feature"]);

    // The seed's update.
    let path = format!("/api/v1/admin/feature-flags/{id}");
    let updated = app
        .patch(&path, &admin, json!({ "percentage": 50, "is_enabled": true }))
        .await;
    assert_eq!(updated.status, 200, "{:?}", updated.body);
    assert_eq!(updated.body["percentage"], 50);
    assert_eq!(updated.body["key"], "beta_feature");
    assert_eq!(updated.body["name"], "Beta Feature", "what was not sent stays");
    let v2 = app
        .patch(
            &format!("/api/v2/admin/feature-flags/{id}"),
            &admin,
            json!({ "is_enabled": false }),
        )
        .await;
    assert_eq!(v2.body["data"]["is_enabled"], false);

    // Duplicate keys: 409; after a delete the key is free again.
    let duplicate = app
        .post(
            "/api/v1/admin/feature-flags",
            &admin,
            json!({ "key": "beta_feature", "name": "Again" }),
        )
        .await;
    assert_eq!(duplicate.status, 409, "{:?}", duplicate.body);
    assert_eq!(duplicate.code(), "CONFLICT");
    let deleted = app.delete(&path, &admin).await;
    assert_eq!(deleted.status, 204);
    assert_eq!(app.delete(&path, &admin).await.status, 404);
    assert_eq!(app.patch(&path, &admin, json!({ "percentage": 5 })).await.status, 404);
    let list = app.get("/api/v1/admin/feature-flags", &admin).await;
    assert_eq!(list.body["total"], 1);
    create(&app, &admin, json!({ "key": "beta_feature", "name": "Again" })).await;

    // Every change is audited.
    let tenant = TenantId::parse("flags-crud").expect("tenant");
    let entries = audit_entries(&host, &tenant).await;
    let actions: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| (e.action.as_str(), e.resource_id.as_deref().unwrap_or("")))
        .collect();
    for expected in [
        ("feature_flag.create", id.as_str()),
        ("feature_flag.update", id.as_str()),
        ("feature_flag.delete", id.as_str()),
    ] {
        assert!(actions.contains(&expected), "{expected:?} in {actions:?}");
    }
    assert_eq!(actions.iter().filter(|(a, _)| *a == "feature_flag.create").count(), 3);
    let update = entries
        .iter()
        .find(|e| e.action == "feature_flag.update")
        .expect("an update entry");
    assert_eq!(update.actor_email.as_deref(), Some("admin@flags-crud.example"));
    assert_eq!(update.details["changed"], json!(["is_enabled", "percentage"]));
}

/// The audit log of `tenant`, read from the table (the audit API is
/// another engineer's).
async fn audit_entries(host: &LocalHost, tenant: &TenantId) -> Vec<quper_core::audit::AuditEntry> {
    host.store()
        .query_all(quper_core::keys::audit_entries(tenant))
        .await
        .expect("audit entries")
}

/// The host on the system clock, for tests that read or seed its store.
async fn host() -> (TestApp, LocalHost) {
    spawn_host(&[], Arc::new(SystemClock)).await
}

#[tokio::test]
async fn bad_flags_are_422s_naming_the_field() {
    let app = spawn_app().await;
    let admin = app.tenant_with_admin("flags-bad").await;
    for (body, field) in [
        (json!({ "key": "x", "name": "X", "percentage": 101 }), "percentage"),
        (json!({ "key": "x", "name": "X", "percentage": -1 }), "percentage"),
        (json!({ "key": "a b", "name": "X" }), "key"),
        (json!({ "key": "a#b", "name": "X" }), "key"),
        (json!({ "key": "", "name": "X" }), "key"),
        (json!({ "key": "k".repeat(65), "name": "X" }), "key"),
        (json!({ "name": "X" }), "key"),
        (json!({ "key": "x" }), "name"),
        (json!({ "key": "x", "name": "" }), "name"),
        (json!({ "key": "x", "name": "X", "flag_type": "weird" }), "flag_type"),
        (json!({ "key": "x", "name": "X", "plans": ["gold"] }), "plans[0]"),
        (json!({ "key": "x", "name": "X", "user_ids": ["me"] }), "user_ids[0]"),
        (
            json!({ "key": "x", "name": "X", "description": "d".repeat(1001) }),
            "description",
        ),
        (json!({ "key": "x", "name": "X", "colour": "red" }), "colour"),
    ] {
        let reply = app.post("/api/v1/admin/feature-flags", &admin, body.clone()).await;
        assert_eq!(reply.status, 422, "{body}: {:?}", reply.body);
        assert_eq!(
            reply.body["error"]["details"]["field"], field,
            "{body}: {:?}",
            reply.body
        );
    }
    let flag = create(&app, &admin, json!({ "key": "ok", "name": "OK" })).await;
    let path = format!("/api/v1/admin/feature-flags/{}", flag["id"].as_str().expect("id"));
    for (body, field) in [
        (json!({ "percentage": 150 }), "percentage"),
        (json!({ "key": "renamed" }), "key"),
        (json!({ "flag_type": "sometimes" }), "flag_type"),
    ] {
        let reply = app.patch(&path, &admin, body.clone()).await;
        assert_eq!(reply.status, 422, "{body}: {:?}", reply.body);
        assert_eq!(reply.body["error"]["details"]["field"], field, "{body}");
    }
    let list = app.get("/api/v1/admin/feature-flags", &admin).await;
    assert_eq!(list.body["total"], 1, "nothing stored by a refused request");
    for bad_id in ["flag_123", "nope", "flag_0123456789ABCDEF0123456789ABCDEF"] {
        let reply = app
            .patch(&format!("/api/v1/admin/feature-flags/{bad_id}"), &admin, json!({}))
            .await;
        assert_eq!(reply.status, 404, "{bad_id}");
    }
}

#[tokio::test]
async fn checks_decide_by_type_and_the_rollout_is_stable_and_only_grows() {
    let (app, host) = host().await;
    let admin = app.tenant_with_admin("flags-check").await;
    let tenant = TenantId::parse("flags-check").expect("tenant");
    // Users without passwords (no argon2), straight into the store.
    let store = host.store();
    let mut ids = Vec::new();
    for n in 0..60 {
        let user = users::insert(
            store,
            &tenant,
            parse::<NewUser>(
                json!({ "email": format!("u{n}@flags.example"), "full_name": format!("U{n}"), "role": "user" }),
            ),
        )
        .await
        .expect("user");
        ids.push(user.id);
    }

    // Boolean.
    let switch = create(
        &app,
        &admin,
        json!({ "key": "switch", "name": "S", "is_enabled": true }),
    )
    .await;
    assert_eq!(check(&app, &admin, "switch", ids[0]).await, (true, "enabled".into()));
    let no_user = app.get("/api/v1/admin/feature-flags/switch/check", &admin).await;
    assert_eq!(no_user.status, 200, "a boolean flag needs no user: {:?}", no_user.body);
    assert_eq!(no_user.body["is_enabled"], true);
    app.patch(
        &format!("/api/v1/admin/feature-flags/{}", switch["id"].as_str().expect("id")),
        &admin,
        json!({ "is_enabled": false }),
    )
    .await;
    assert_eq!(
        check(&app, &admin, "switch", ids[0]).await,
        (false, "flag_disabled".into())
    );

    // Percentage: the pure bucket decides; raising it only adds users.
    let rollout = create(
        &app,
        &admin,
        json!({ "key": "new_dashboard", "name": "New dashboard", "flag_type": "percentage", "percentage": 25, "is_enabled": true }),
    )
    .await;
    let path = format!("/api/v1/admin/feature-flags/{}", rollout["id"].as_str().expect("id"));
    let mut previous: Vec<u64> = Vec::new();
    for percentage in [25u8, 60, 100] {
        app.patch(&path, &admin, json!({ "percentage": percentage })).await;
        let mut included = Vec::new();
        for id in &ids {
            let (on, reason) = check(&app, &admin, "new_dashboard", *id).await;
            assert_eq!(
                on,
                in_rollout("new_dashboard", *id, percentage),
                "user {id} at {percentage}%"
            );
            assert_eq!(reason, if on { "percentage_rollout" } else { "not_in_rollout" });
            // Asked again, the same answer.
            assert_eq!(check(&app, &admin, "new_dashboard", *id).await.0, on);
            if on {
                included.push(*id);
            }
        }
        assert!(
            previous.iter().all(|id| included.contains(id)),
            "{percentage}%: nobody dropped"
        );
        assert!(included.len() >= previous.len());
        previous = included;
    }
    assert_eq!(previous.len(), ids.len(), "100% is everyone");
    let needs_user = app.get("/api/v1/admin/feature-flags/new_dashboard/check", &admin).await;
    assert_eq!(needs_user.status, 422);
    assert_eq!(needs_user.body["error"]["details"]["field"], "user_id");
    let not_a_number = app
        .get("/api/v1/admin/feature-flags/new_dashboard/check?user_id=abc", &admin)
        .await;
    assert_eq!(not_a_number.status, 422);
    assert_eq!(not_a_number.body["error"]["details"]["field"], "user_id");
    let unknown_user = app
        .get("/api/v1/admin/feature-flags/new_dashboard/check?user_id=99999", &admin)
        .await;
    assert_eq!(unknown_user.status, 404);
    let unknown_flag = app
        .get(
            &format!("/api/v1/admin/feature-flags/nothing_here/check?user_id={}", ids[0]),
            &admin,
        )
        .await;
    assert_eq!(unknown_flag.status, 404);
    assert_eq!(unknown_flag.code(), "NOT_FOUND");

    // User list.
    create(
        &app,
        &admin,
        json!({ "key": "listed", "name": "L", "flag_type": "user_list", "user_ids": [ids[1], ids[2]], "is_enabled": true }),
    )
    .await;
    assert_eq!(
        check(&app, &admin, "listed", ids[1]).await,
        (true, "user_in_list".into())
    );
    assert_eq!(
        check(&app, &admin, "listed", ids[3]).await,
        (false, "user_not_in_list".into())
    );

    // Plan based: reads the user's subscription_plan.
    create(
        &app,
        &admin,
        json!({ "key": "pro_only", "name": "P", "flag_type": "plan_based", "plans": ["pro", "enterprise"], "is_enabled": true }),
    )
    .await;
    assert_eq!(
        check(&app, &admin, "pro_only", ids[4]).await,
        (false, "plan_not_matched".into())
    );
    let pro = app
        .patch(
            &format!("/api/v1/admin/users/{}", ids[4]),
            &admin,
            json!({ "subscription_plan": "pro" }),
        )
        .await;
    assert_eq!(pro.status, 200, "{:?}", pro.body);
    assert_eq!(
        check(&app, &admin, "pro_only", ids[4]).await,
        (true, "plan_match".into())
    );
    // v2 wraps the check.
    let v2 = app
        .get(
            &format!("/api/v2/admin/feature-flags/pro_only/check?user_id={}", ids[4]),
            &admin,
        )
        .await;
    assert_eq!(v2.body["data"]["reason"], "plan_match");
}

#[tokio::test]
async fn only_admins_and_only_in_their_environment() {
    let app = spawn_app().await;
    let admin = app.tenant_with_admin("flags-a").await;
    let flag = create(
        &app,
        &admin,
        json!({ "key": "shared_key", "name": "A's", "is_enabled": true }),
    )
    .await;
    let id = flag["id"].as_str().expect("id").to_owned();
    let (user_id, user) = app.user_with_role(&admin, "u@flags-a.example", Role::User).await;
    let (_, responder) = app.user_with_role(&admin, "r@flags-a.example", Role::Responder).await;
    for token in [&user, &responder] {
        assert_eq!(app.get("/api/v1/admin/feature-flags", token).await.status, 403);
        assert_eq!(
            app.post("/api/v1/admin/feature-flags", token, json!({ "key": "x", "name": "X" }))
                .await
                .status,
            403
        );
        let path = format!("/api/v1/admin/feature-flags/{id}");
        assert_eq!(
            app.patch(&path, token, json!({ "is_enabled": false })).await.status,
            403
        );
        assert_eq!(app.delete(&path, token).await.status, 403);
        let check = app
            .get(
                &format!("/api/v1/admin/feature-flags/shared_key/check?user_id={user_id}"),
                token,
            )
            .await;
        assert_eq!(check.status, 403);
    }

    // Another environment: A's flag is a 404 there; the key is free there.
    let other = app.tenant_with_admin("flags-b").await;
    let path = format!("/api/v1/admin/feature-flags/{id}");
    assert_eq!(
        app.patch(&path, &other, json!({ "is_enabled": false })).await.status,
        404
    );
    assert_eq!(app.delete(&path, &other).await.status, 404);
    assert_eq!(
        app.get("/api/v1/admin/feature-flags/shared_key/check?user_id=1", &other)
            .await
            .status,
        404
    );
    let theirs = app.get("/api/v1/admin/feature-flags", &other).await;
    assert_eq!(theirs.body["total"], 0);
    create(&app, &other, json!({ "key": "shared_key", "name": "B's" })).await;
    // A user of A named in B's check is not B's user.
    assert_eq!(
        app.get(
            &format!("/api/v1/admin/feature-flags/shared_key/check?user_id={user_id}"),
            &other
        )
        .await
        .status,
        404
    );
    // A's flag is untouched.
    let mine = app.get("/api/v1/admin/feature-flags", &admin).await;
    assert_eq!(mine.body["items"][0]["name"], "A's");
    assert_eq!(mine.body["items"][0]["is_enabled"], true);
    // The superadmin is an admin of their own environment.
    assert_eq!(app.get("/api/v1/admin/feature-flags", &app.root).await.status, 200);
}

#[tokio::test]
async fn keys_stay_unique_under_concurrent_creates_on_both_stores() {
    let (sqlite, _dir) = crate::support::sqlite_table();
    let dynamodb = crate::support::dynamodb_table("flags").await;
    for (store, table) in [("sqlite", sqlite), ("dynamodb", dynamodb)] {
        let (app, _host) = crate::support::spawn_host_on(table, Arc::new(SystemClock)).await;
        let admin = app.tenant_with_admin("flags-race").await;
        let attempts = (0..6).map(|n| {
            app.post(
                "/api/v1/admin/feature-flags",
                &admin,
                json!({ "key": "raced", "name": format!("Attempt {n}") }),
            )
        });
        let replies = futures::future::join_all(attempts).await;
        let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
        assert_eq!(
            statuses.iter().filter(|s| **s == 201).count(),
            1,
            "{store}: {statuses:?}"
        );
        assert_eq!(
            statuses.iter().filter(|s| **s == 409).count(),
            5,
            "{store}: {statuses:?}"
        );
        let list = app.get("/api/v1/admin/feature-flags", &admin).await;
        assert_eq!(list.body["total"], 1, "{store}");
        let id = list.body["items"][0]["id"].as_str().expect("id").to_owned();
        let (user_id, _) = app.user_with_role(&admin, "u@flags-race.example", Role::User).await;
        app.patch(
            &format!("/api/v1/admin/feature-flags/{id}"),
            &admin,
            json!({ "flag_type": "user_list", "user_ids": [user_id], "is_enabled": true }),
        )
        .await;
        assert_eq!(
            check(&app, &admin, "raced", user_id).await,
            (true, "user_in_list".into()),
            "{store}"
        );
        assert_eq!(
            app.delete(&format!("/api/v1/admin/feature-flags/{id}"), &admin)
                .await
                .status,
            204
        );
        create(&app, &admin, json!({ "key": "raced", "name": "After the delete" })).await;
    }
}
