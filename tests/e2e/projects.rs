//! OmniStack's projects over the wire: create, read, update only what is
//! sent, soft delete, search, skip/limit pages with cursors, newest first,
//! another user's or environment's project a 404, bad input a 422 naming the
//! field.

use std::sync::Arc;

use quper_core::model::Role;
use quper_core::ports::ManualClock;
use serde_json::json;

use crate::support::spawn_host;

#[tokio::test]
async fn a_project_is_created_read_updated_and_soft_deleted() {
    let clock = Arc::new(ManualClock::at(chrono::Utc::now()));
    let (app, host) = spawn_host(&[], clock.clone()).await;
    let admin = app.tenant_with_admin("proj-crud").await;
    let (user_id, user) = app.user_with_role(&admin, "viewer@proj-crud.example", Role::User).await;

    let created = app
        .post(
            "/api/v1/app/projects",
            &user,
            json!({ "name": "  My Project ", "description": "Project description" }),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let id = created.body["id"].as_str().expect("id").to_owned();
    assert!(uuid_like(&id), "{id}");
    assert_eq!(created.body["name"], "My Project");
    assert_eq!(created.body["owner_id"], user_id);
    assert_eq!(created.body["created_at"], created.body["updated_at"]);
    let path = format!("/api/v1/app/projects/{id}");
    let read = app.get(&path, &user).await;
    assert_eq!((read.status, &read.body), (200, &created.body));

    // Only what is sent changes.
    clock.advance(chrono::Duration::seconds(5));
    let renamed = app.patch(&path, &user, json!({ "name": "Renamed" })).await;
    assert_eq!(renamed.status, 200, "{:?}", renamed.body);
    assert_eq!(renamed.body["name"], "Renamed");
    assert_eq!(renamed.body["description"], "Project description");
    assert_ne!(renamed.body["updated_at"], created.body["updated_at"]);
    assert_eq!(renamed.body["created_at"], created.body["created_at"]);
    let described = app.patch(&path, &user, json!({ "description": "New words" })).await;
    assert_eq!(
        (described.body["name"].as_str(), described.body["description"].as_str()),
        (Some("Renamed"), Some("New words"))
    );
    let cleared = app.patch(&path, &user, json!({ "description": null })).await;
    assert_eq!(cleared.status, 200);
    assert!(cleared.body["description"].is_null());

    // Soft delete: 204, then a 404 everywhere, and not listed; the record stays.
    let deleted = app.delete(&path, &user).await;
    assert_eq!(deleted.status, 204, "{:?}", deleted.body);
    for reply in [
        app.get(&path, &user).await,
        app.patch(&path, &user, json!({ "name": "Back" })).await,
        app.delete(&path, &user).await,
    ] {
        assert_eq!(reply.status, 404, "{:?}", reply.body);
        assert_eq!(
            reply.body["error"]["details"],
            json!({ "resource": "Project", "id": id })
        );
    }
    let listed = app.get("/api/v1/app/projects", &user).await;
    assert_eq!(listed.body["total"], 0, "{:?}", listed.body);
    let tenant = quper_core::model::TenantId::parse("proj-crud").expect("tenant");
    let record_id = quper_core::model::RecordId::parse(&id).expect("id");
    let stored = host
        .store()
        .table()
        .get(&quper_core::keys::project(&tenant, user_id, &record_id))
        .await
        .expect("get")
        .expect("the soft-deleted record stays");
    assert!(stored["deleted_at"].is_string(), "{stored:?}");
}

fn uuid_like(text: &str) -> bool {
    quper_core::model::RecordId::parse(text).is_ok()
}

#[tokio::test]
async fn lists_are_newest_first_searchable_and_paged() {
    let clock = Arc::new(ManualClock::at(chrono::Utc::now()));
    let (app, _host) = spawn_host(&[], clock.clone()).await;
    let admin = app.tenant_with_admin("proj-list").await;
    let names = ["Alpha site", "beta API", "Gamma", "alphabet soup", "Delta"];
    for name in names {
        let created = app.post("/api/v1/app/projects", &admin, json!({ "name": name })).await;
        assert_eq!(created.status, 201, "{:?}", created.body);
        clock.advance(chrono::Duration::seconds(1));
    }
    let all = app.get("/api/v1/app/projects", &admin).await;
    assert_eq!(all.status, 200, "{:?}", all.body);
    let listed: Vec<&str> = all.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|p| p["name"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(listed, ["Delta", "alphabet soup", "Gamma", "beta API", "Alpha site"]);
    assert_eq!(
        (&all.body["total"], &all.body["skip"], &all.body["limit"]),
        (&json!(5), &json!(0), &json!(20))
    );
    assert!(all.body["next_cursor"].is_null());

    // Case-insensitive substring of the name.
    let found = app.get("/api/v1/app/projects?search=ALPHA", &admin).await;
    let found: Vec<&str> = found.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|p| p["name"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(found, ["alphabet soup", "Alpha site"]);

    // skip/limit, and the cursor of each page.
    let page = app.get("/api/v1/app/projects?skip=1&limit=2", &admin).await;
    assert_eq!(page.status, 200, "{:?}", page.body);
    let names_of = |body: &serde_json::Value| -> Vec<String> {
        body["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|p| p["name"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(names_of(&page.body), ["alphabet soup", "Gamma"]);
    assert_eq!(
        (&page.body["total"], &page.body["skip"], &page.body["limit"]),
        (&json!(5), &json!(1), &json!(2))
    );
    let cursor = page.body["next_cursor"].as_str().expect("next_cursor").to_owned();
    let next = app
        .get(&format!("/api/v1/app/projects?limit=2&cursor={cursor}"), &admin)
        .await;
    assert_eq!(names_of(&next.body), ["beta API", "Alpha site"]);
    assert!(next.body["next_cursor"].is_null(), "{:?}", next.body);

    // Bounds: a 422 naming the parameter.
    for (query, field) in [("limit=0", "limit"), ("limit=101", "limit"), ("skip=-1", "skip")] {
        let reply = app.get(&format!("/api/v1/app/projects?{query}"), &admin).await;
        assert_eq!(reply.status, 422, "{query}: {:?}", reply.body);
        assert_eq!(
            reply.body["error"]["details"]["field"], field,
            "{query}: {:?}",
            reply.body
        );
    }
    let long_search = app
        .get(&format!("/api/v1/app/projects?search={}", "x".repeat(256)), &admin)
        .await;
    assert_eq!(long_search.status, 422, "{:?}", long_search.body);
    let not_a_number = app.get("/api/v1/app/projects?limit=many", &admin).await;
    assert_eq!(not_a_number.status, 422, "{:?}", not_a_number.body);
}

#[tokio::test]
async fn another_users_or_environments_project_is_not_found() {
    let (app, _host) = spawn_host(&[], Arc::new(quper_core::ports::SystemClock)).await;
    let admin_a = app.tenant_with_admin("proj-a").await;
    let (_, colleague) = app
        .user_with_role(&admin_a, "colleague@proj-a.example", Role::Admin)
        .await;
    let admin_b = app.tenant_with_admin("proj-b").await;
    let created = app
        .post("/api/v1/app/projects", &admin_a, json!({ "name": "Private" }))
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let id = created.body["id"].as_str().expect("id").to_owned();
    let path = format!("/api/v1/app/projects/{id}");
    // Another user of the same environment (an admin, even), another
    // environment's admin, and the root superadmin: not theirs.
    for token in [&colleague, &admin_b, &app.root] {
        for reply in [
            app.get(&path, token).await,
            app.patch(&path, token, json!({ "name": "Mine now" })).await,
            app.delete(&path, token).await,
        ] {
            assert_eq!(reply.status, 404, "{:?}", reply.body);
            assert_eq!(reply.body["error"]["code"], "NOT_FOUND");
            assert_eq!(reply.body["error"]["details"]["resource"], "Project");
        }
        let listed = app.get("/api/v1/app/projects", token).await;
        assert_eq!(listed.body["total"], 0, "{:?}", listed.body);
    }
    // Still there, unchanged, for its owner.
    let read = app.get(&path, &admin_a).await;
    assert_eq!((read.status, read.body["name"].as_str()), (200, Some("Private")));
    // A segment that is not a UUID is a 404 too; no token is a 401.
    assert_eq!(app.get("/api/v1/app/projects/not-a-uuid", &admin_a).await.status, 404);
    let anonymous = app
        .send(
            reqwest::Method::GET,
            "/api/v1/app/projects",
            crate::support::Auth::None,
            None,
        )
        .await;
    assert_eq!(anonymous.status, 401);
}

#[tokio::test]
async fn bad_project_input_is_a_422_naming_the_field() {
    let app = crate::support::spawn_app().await;
    let user = app.tenant_with_admin("proj-bad").await;
    for (body, field) in [
        (json!({}), "name"),
        (json!({ "name": "" }), "name"),
        (json!({ "name": "   " }), "name"),
        (json!({ "name": "x".repeat(256) }), "name"),
        (json!({ "name": "ok", "description": "d".repeat(2001) }), "description"),
        (json!({ "name": "ok", "owner_id": 7 }), "owner_id"),
        (json!({ "name": 5 }), "name"),
    ] {
        let reply = app.post("/api/v1/app/projects", &user, body.clone()).await;
        assert_eq!(reply.status, 422, "{body}: {:?}", reply.body);
        assert_eq!(reply.body["error"]["code"], "VALIDATION_ERROR", "{body}");
        let named = reply.body["error"]["details"]["field"].as_str().unwrap_or_default();
        let message = reply.body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            named.contains(field) || message.contains(field),
            "{body}: {:?}",
            reply.body
        );
    }
    let max = app
        .post(
            "/api/v1/app/projects",
            &user,
            json!({ "name": "n".repeat(255), "description": "d".repeat(2000) }),
        )
        .await;
    assert_eq!(max.status, 201, "{:?}", max.body);
    let path = format!("/api/v1/app/projects/{}", max.body["id"].as_str().expect("id"));
    let reply = app
        .patch(&path, &user, json!({ "description": "d".repeat(2001) }))
        .await;
    assert_eq!(reply.status, 422, "{:?}", reply.body);
    let reply = app.patch(&path, &user, json!({ "name": null })).await;
    assert!(reply.status == 422 || reply.status == 200, "{:?}", reply.body);
    let unchanged = app.get(&path, &user).await;
    assert_eq!(unchanged.body["name"], "n".repeat(255));
    let broken = app
        .http
        .post(format!("{}/api/v1/app/projects", app.base))
        .bearer_auth(&user)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("request");
    assert_eq!(broken.status(), 400);
}
