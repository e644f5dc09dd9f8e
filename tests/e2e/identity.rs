//! Identity resources over the wire: users, teams and memberships (PagerPal's
//! rules), groups that carry roles, built-in and custom roles, and
//! OmniStack's profile and admin routes.

use quper_core::model::Role;
use reqwest::Method;
use serde_json::json;

use crate::support::{Auth, spawn_app};

#[tokio::test]
async fn users_have_pagerpal_fields_and_unique_emails_per_tenant() {
    let app = spawn_app().await;
    let admin = app.tenant_with_admin("people").await;
    let created = app
        .post(
            "/api/v1/users",
            &admin,
            json!({ "email": "Ann@People.example", "full_name": "Ann", "phone": "+1 555 0100 200", "timezone": "Europe/Berlin" }),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let user = &created.body;
    assert_eq!(user["email"], "ann@people.example", "emails are normalised");
    assert_eq!(
        (user["role"].as_str(), user["is_active"].as_bool()),
        (Some("responder"), Some(true))
    );
    assert_eq!(
        (user["can_login"].as_bool(), user["phone"].as_str()),
        (Some(false), Some("+15550100200"))
    );
    assert!(user["id"].is_u64() && user["created_at"].is_string() && user["last_login_at"].is_null());
    assert!(user.get("password_hash").is_none() && user.get("password").is_none());

    let duplicate = app
        .post(
            "/api/v1/users",
            &admin,
            json!({ "email": "ann@people.example", "full_name": "Ann 2" }),
        )
        .await;
    assert_eq!((duplicate.status, duplicate.code()), (409, "CONFLICT"));
    // The same email is free in another tenant.
    let other = app.tenant_with_admin("others").await;
    let elsewhere = app
        .post(
            "/api/v1/users",
            &other,
            json!({ "email": "ann@people.example", "full_name": "Ann" }),
        )
        .await;
    assert_eq!(elsewhere.status, 201);

    // Updating keeps the email index right.
    let id = user["id"].as_u64().expect("id");
    let renamed = app
        .patch(
            &format!("/api/v1/users/{id}"),
            &admin,
            json!({ "email": "ann.b@people.example" }),
        )
        .await;
    assert_eq!(renamed.status, 200, "{:?}", renamed.body);
    let reuse = app
        .post(
            "/api/v1/users",
            &admin,
            json!({ "email": "ann@people.example", "full_name": "New Ann" }),
        )
        .await;
    assert_eq!(reuse.status, 201, "the old email is free again");
    let clash = app
        .patch(
            &format!("/api/v1/users/{id}"),
            &admin,
            json!({ "email": "ann@people.example" }),
        )
        .await;
    assert_eq!(clash.status, 409);
    let put = app
        .send(
            Method::PUT,
            &format!("/api/v1/users/{id}"),
            Auth::Bearer(&admin),
            Some(json!({ "full_name": "Ann B" })),
        )
        .await;
    assert_eq!((put.status, put.body["full_name"].as_str()), (200, Some("Ann B")));

    let page = app.get("/api/v1/users?page=1&page_size=2", &admin).await;
    assert_eq!(
        (page.body["total"].as_u64(), page.body["total_pages"].as_u64()),
        (Some(3), Some(2))
    );
    assert_eq!(page.body["items"].as_array().map(Vec::len), Some(2));
    let cursor = page.body["next_cursor"].as_str().expect("next_cursor").to_owned();
    let next = app
        .get(&format!("/api/v1/users?page_size=2&cursor={cursor}"), &admin)
        .await;
    assert_eq!(
        (next.body["page"].as_u64(), next.body["items"].as_array().map(Vec::len)),
        (Some(2), Some(1))
    );
    assert!(next.body["next_cursor"].is_null());
}

#[tokio::test]
async fn an_email_in_several_tenants_logs_in_by_password_or_tenant() {
    let app = spawn_app().await;
    let one = app.tenant_with_admin("one").await;
    let two = app.tenant_with_admin("two").await;
    for (token, password) in [(&one, "password-in-one"), (&two, "password-in-two")] {
        let reply = app
            .post(
                "/api/v1/users",
                token,
                json!({ "email": "sam@multi.example", "full_name": "Sam", "password": password, "role": "user" }),
            )
            .await;
        assert_eq!(reply.status, 201);
    }
    let token = app.login("sam@multi.example", "password-in-two").await;
    let me = app.get("/api/v1/app/users/me", &token).await;
    assert_eq!(me.status, 200);
    let users_of_two = app.get("/api/v1/users", &token).await;
    assert!(
        users_of_two.body["items"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|u| u["email"] == "admin@two.example")
    );
    let scoped = app
        .send(
            Method::POST,
            "/api/v1/auth/token",
            Auth::None,
            Some(json!({ "email": "sam@multi.example", "password": "password-in-two", "tenant": "one" })),
        )
        .await;
    assert_eq!(
        scoped.status, 401,
        "the password of tenant two does not open tenant one"
    );
}

#[tokio::test]
async fn team_members_must_be_active_and_stay_visible_when_removed() {
    let app = spawn_app().await;
    let admin = app.tenant_with_admin("teams").await;
    let team = app
        .post(
            "/api/v1/teams",
            &admin,
            json!({ "name": "Payments", "description": "Money" }),
        )
        .await;
    assert_eq!(team.status, 201);
    let team_id = team.body["id"].as_u64().expect("team id");
    let (active_id, _) = app.user_with_role(&admin, "on@teams.example", Role::Responder).await;
    let (inactive_id, _) = app.user_with_role(&admin, "off@teams.example", Role::Responder).await;
    app.post(
        &format!("/api/v1/admin/users/{inactive_id}/deactivate"),
        &admin,
        json!({}),
    )
    .await;
    let members = format!("/api/v1/teams/{team_id}/members");

    let inactive = app.post(&members, &admin, json!({ "user_id": inactive_id })).await;
    assert_eq!((inactive.status, inactive.code()), (400, "BAD_REQUEST"));
    let missing = app.post(&members, &admin, json!({ "user_id": 4242 })).await;
    assert_eq!(missing.status, 400);
    let added = app
        .post(&members, &admin, json!({ "user_id": active_id, "role": "lead" }))
        .await;
    assert_eq!((added.status, added.body["is_active"].as_bool()), (201, Some(true)));
    assert_eq!(
        app.post(&members, &admin, json!({ "user_id": active_id })).await.status,
        409
    );

    assert_eq!(app.delete(&format!("{members}/{active_id}"), &admin).await.status, 204);
    let listed = app.get(&members, &admin).await;
    let items = listed.body["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(items.len(), 1, "removed memberships stay visible");
    assert_eq!(
        (items[0]["user_id"].as_u64(), items[0]["is_active"].as_bool()),
        (Some(active_id), Some(false))
    );
    assert!(items[0]["removed_at"].is_string());
    // Re-adding reactivates; purging deletes the record.
    assert_eq!(
        app.post(&members, &admin, json!({ "user_id": active_id })).await.status,
        201
    );
    assert_eq!(
        app.delete(&format!("{members}/{active_id}?purge=true"), &admin)
            .await
            .status,
        204
    );
    assert_eq!(app.get(&members, &admin).await.body["total"], 0);

    let renamed = app
        .patch(
            &format!("/api/v1/teams/{team_id}"),
            &admin,
            json!({ "name": "Payments EU" }),
        )
        .await;
    assert_eq!(renamed.body["name"], "Payments EU");
    assert_eq!(
        app.delete(&format!("/api/v1/teams/{team_id}"), &admin).await.status,
        204
    );
    assert_eq!(app.get(&format!("/api/v1/teams/{team_id}"), &admin).await.status, 404);
}

#[tokio::test]
async fn builtin_roles_are_listed_and_read_only() {
    let app = spawn_app().await;
    let admin = app.tenant_with_admin("roles").await;
    let roles = app.get("/api/v1/roles", &admin).await;
    let names: Vec<&str> = roles.body["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(names, vec!["superadmin", "admin", "responder", "user"]);
    for method in [Method::PUT, Method::PATCH] {
        let reply = app
            .send(
                method,
                "/api/v1/roles/admin",
                Auth::Bearer(&admin),
                Some(json!({ "permissions": [] })),
            )
            .await;
        assert_eq!(reply.status, 403);
    }
    assert_eq!(app.delete("/api/v1/roles/responder", &admin).await.status, 403);
    assert_eq!(
        app.post("/api/v1/roles", &admin, json!({ "name": "Admin", "permissions": [] }))
            .await
            .status,
        409
    );
    let unknown = app
        .post(
            "/api/v1/roles",
            &admin,
            json!({ "name": "x", "permissions": ["launch:missiles"] }),
        )
        .await;
    assert_eq!(
        (unknown.status, unknown.body["error"]["details"]["field"].as_str()),
        (422, Some("permissions[0]"))
    );
    // Nobody grants what they do not hold.
    let too_much = app
        .post(
            "/api/v1/roles",
            &admin,
            json!({ "name": "god", "permissions": ["environments:manage"] }),
        )
        .await;
    assert_eq!(too_much.status, 403);
}

#[tokio::test]
async fn groups_carry_roles_to_their_members() {
    let app = spawn_app().await;
    let admin = app.tenant_with_admin("groups").await;
    let (reader_id, reader) = app.user_with_role(&admin, "reader@groups.example", Role::User).await;
    assert_eq!(
        app.post("/api/v1/teams", &reader, json!({ "name": "T" })).await.status,
        403
    );

    let role = app
        .post(
            "/api/v1/roles",
            &admin,
            json!({ "name": "team-builder", "permissions": ["identity:read", "identity:write"] }),
        )
        .await;
    assert_eq!(role.status, 201, "{:?}", role.body);
    let role_id = role.body["id"].as_str().expect("role id").to_owned();
    let unknown_role = app
        .post("/api/v1/groups", &admin, json!({ "name": "G", "role_ids": ["nope"] }))
        .await;
    assert_eq!(unknown_role.status, 422);
    let group = app
        .post(
            "/api/v1/groups",
            &admin,
            json!({ "name": "Builders", "role_ids": [role_id] }),
        )
        .await;
    assert_eq!(group.status, 201);
    let group_id = group.body["id"].as_str().expect("group id").to_owned();
    let members = format!("/api/v1/groups/{group_id}/members");
    assert_eq!(
        app.post(&members, &admin, json!({ "user_id": reader_id })).await.status,
        201
    );
    assert_eq!(
        app.post(&members, &admin, json!({ "user_id": reader_id })).await.status,
        409
    );
    assert_eq!(app.get(&members, &admin).await.body["total"], 1);
    let user = app.get(&format!("/api/v1/users/{reader_id}"), &admin).await;
    assert_eq!(user.body["group_ids"], json!([group_id]));

    // The same token now carries the group's permissions.
    assert_eq!(
        app.post("/api/v1/teams", &reader, json!({ "name": "Built" }))
            .await
            .status,
        201
    );
    // Removing the membership takes them away again.
    assert_eq!(app.delete(&format!("{members}/{reader_id}"), &admin).await.status, 204);
    assert_eq!(
        app.post("/api/v1/teams", &reader, json!({ "name": "Again" }))
            .await
            .status,
        403
    );
    assert_eq!(
        app.delete(&format!("/api/v1/groups/{group_id}"), &admin).await.status,
        204
    );
    assert_eq!(app.get(&format!("/api/v1/groups/{group_id}"), &admin).await.status, 404);
}

#[tokio::test]
async fn omnistack_profile_and_admin_user_routes() {
    let app = spawn_app().await;
    let admin = app.tenant_with_admin("omni").await;
    let (user_id, user) = app.user_with_role(&admin, "omni@omni.example", Role::User).await;
    let me = app.get("/api/v1/app/users/me", &user).await;
    assert_eq!(
        (me.body["id"].as_u64(), me.body["role"].as_str()),
        (Some(user_id), Some("user"))
    );
    assert!(me.body.as_object().is_some_and(|o| o.contains_key("subscription_plan")));
    let patched = app
        .patch(
            "/api/v1/app/users/me",
            &user,
            json!({ "full_name": "Omni User", "avatar_url": "https://example.com/a.png" }),
        )
        .await;
    assert_eq!(
        (patched.status, patched.body["avatar_url"].as_str()),
        (200, Some("https://example.com/a.png"))
    );
    let no_role_change = app
        .patch("/api/v1/app/users/me", &user, json!({ "role": "admin" }))
        .await;
    assert_eq!(no_role_change.status, 422, "the profile route cannot change roles");

    let listed = app.get("/api/v1/admin/users?skip=0&limit=1", &admin).await;
    assert_eq!(
        (listed.body["total"].as_u64(), listed.body["limit"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(listed.body["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(app.get("/api/v1/admin/users?limit=500", &admin).await.status, 422);
    let promoted = app
        .patch(
            &format!("/api/v1/admin/users/{user_id}"),
            &admin,
            json!({ "role": "responder" }),
        )
        .await;
    assert_eq!(promoted.body["role"], "responder");
    let self_deactivate = app.post("/api/v1/admin/users/1/deactivate", &admin, json!({})).await;
    assert_eq!(self_deactivate.status, 400, "an admin cannot lock themselves out");
}
