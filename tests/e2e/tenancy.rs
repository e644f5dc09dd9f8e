//! Tenancy and roles over the wire: another tenant's resources are 404 on
//! every method, `user` cannot write, admins stay in their tenant, only
//! superadmins manage environments.

use quper_core::model::Role;
use reqwest::Method;
use serde_json::json;

use crate::support::{Auth, TestApp, spawn_app};

/// Creates a user, group, team and custom role in the admin's tenant and
/// returns their paths.
async fn resources(app: &TestApp, admin: &str) -> Vec<String> {
    let user = app
        .post(
            "/api/v1/users",
            admin,
            json!({ "email": "victim@a.example", "full_name": "Victim" }),
        )
        .await;
    assert_eq!(user.status, 201, "{:?}", user.body);
    let group = app.post("/api/v1/groups", admin, json!({ "name": "SRE" })).await;
    assert_eq!(group.status, 201, "{:?}", group.body);
    let team = app.post("/api/v1/teams", admin, json!({ "name": "Payments" })).await;
    assert_eq!(team.status, 201, "{:?}", team.body);
    let role = app
        .post(
            "/api/v1/roles",
            admin,
            json!({ "name": "auditor", "permissions": ["identity:read"] }),
        )
        .await;
    assert_eq!(role.status, 201, "{:?}", role.body);
    vec![
        format!("/api/v1/users/{}", user.body["id"]),
        format!("/api/v1/groups/{}", group.body["id"].as_str().unwrap_or_default()),
        format!("/api/v1/teams/{}", team.body["id"]),
        format!("/api/v1/roles/{}", role.body["id"].as_str().unwrap_or_default()),
    ]
}

#[tokio::test]
async fn another_tenants_resources_are_404_on_every_method() {
    let app = spawn_app().await;
    let admin_a = app.tenant_with_admin("tenant-a").await;
    let admin_b = app.tenant_with_admin("tenant-b").await;
    let paths = resources(&app, &admin_a).await;

    for path in &paths {
        let before = app.get(path, &admin_a).await;
        assert_eq!(before.status, 200, "{path}");
        for method in [Method::GET, Method::PUT, Method::PATCH, Method::DELETE] {
            let field = if path.contains("/users/") { "full_name" } else { "name" };
            let body = (method == Method::PUT || method == Method::PATCH).then(|| json!({ field: "hijacked" }));
            let reply = app.send(method.clone(), path, Auth::Bearer(&admin_b), body).await;
            assert_eq!(reply.status, 404, "{method} {path} from tenant b: {:?}", reply.body);
            assert_eq!(reply.code(), "NOT_FOUND");
        }
        // Nothing changed for the owner.
        assert_eq!(app.get(path, &admin_a).await.body, before.body, "{path}");
    }
    // Sub-resources of another tenant's group and team are 404 too.
    for members in [format!("{}/members", paths[1]), format!("{}/members", paths[2])] {
        assert_eq!(app.get(&members, &admin_b).await.status, 404, "{members}");
        assert_eq!(
            app.post(&members, &admin_b, json!({ "user_id": 1 })).await.status,
            404,
            "{members}"
        );
    }
    // Lists only ever show the caller's tenant.
    let listed = app.get("/api/v1/users", &admin_b).await;
    let emails: Vec<&str> = listed.body["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|u| u["email"].as_str())
        .collect();
    assert_eq!(emails, vec!["admin@tenant-b.example"]);
    let admin_list = app.get("/api/v1/admin/users/1", &admin_b).await;
    assert_eq!(
        admin_list.body["email"], "admin@tenant-b.example",
        "user 1 of tenant b is b's own admin"
    );
}

#[tokio::test]
async fn a_user_can_read_but_not_write() {
    let app = spawn_app().await;
    let admin = app.tenant_with_admin("readers").await;
    let (reader_id, reader) = app.user_with_role(&admin, "reader@readers.example", Role::User).await;
    let (responder_id, _) = app
        .user_with_role(&admin, "responder@readers.example", Role::Responder)
        .await;

    assert_eq!(app.get("/api/v1/users", &reader).await.status, 200);
    assert_eq!(
        app.get(&format!("/api/v1/users/{responder_id}"), &reader).await.status,
        200
    );
    assert_eq!(app.get("/api/v1/teams", &reader).await.status, 200);
    assert_eq!(app.get("/api/v1/roles", &reader).await.status, 200);

    let writes = [
        (
            Method::POST,
            "/api/v1/users".to_owned(),
            Some(json!({ "email": "x@readers.example", "full_name": "X" })),
        ),
        (
            Method::PATCH,
            format!("/api/v1/users/{responder_id}"),
            Some(json!({ "full_name": "Renamed" })),
        ),
        (Method::DELETE, format!("/api/v1/users/{responder_id}"), None),
        (Method::POST, "/api/v1/teams".to_owned(), Some(json!({ "name": "T" }))),
        (Method::POST, "/api/v1/groups".to_owned(), Some(json!({ "name": "G" }))),
        (
            Method::POST,
            "/api/v1/roles".to_owned(),
            Some(json!({ "name": "r", "permissions": [] })),
        ),
        (
            Method::PATCH,
            format!("/api/v1/users/{reader_id}"),
            Some(json!({ "role": "admin" })),
        ),
        (Method::GET, "/api/v1/admin/users".to_owned(), None),
        (
            Method::POST,
            format!("/api/v1/admin/users/{responder_id}/deactivate"),
            None,
        ),
    ];
    for (method, path, body) in writes {
        let reply = app.send(method.clone(), &path, Auth::Bearer(&reader), body).await;
        assert_eq!(reply.status, 403, "{method} {path}: {:?}", reply.body);
        assert_eq!(reply.code(), "AUTHORIZATION_ERROR");
    }
    // Nothing was written.
    assert_eq!(app.get("/api/v1/users", &admin).await.body["total"], 3);
    assert_eq!(
        app.get(&format!("/api/v1/users/{reader_id}"), &admin).await.body["role"],
        "user"
    );
    // A user may still edit their own profile.
    let own = app
        .patch(
            "/api/v1/app/users/me",
            &reader,
            json!({ "full_name": "Reader Renamed" }),
        )
        .await;
    assert_eq!(
        (own.status, own.body["full_name"].as_str()),
        (200, Some("Reader Renamed"))
    );
}

#[tokio::test]
async fn an_admin_cannot_reach_another_tenant() {
    let app = spawn_app().await;
    let admin_a = app.tenant_with_admin("alpha").await;
    app.tenant_with_admin("beta").await;

    for (method, path, body) in [
        (Method::GET, "/api/v1/environments", None),
        (Method::GET, "/api/v1/environments/beta", None),
        (
            Method::PATCH,
            "/api/v1/environments/beta",
            Some(json!({ "name": "mine" })),
        ),
        (Method::DELETE, "/api/v1/environments/beta", None),
        (
            Method::POST,
            "/api/v1/environments/beta/admins",
            Some(json!({ "email": "spy@alpha.example", "password": "spy-password-1", "full_name": "Spy" })),
        ),
    ] {
        let reply = app.send(method.clone(), path, Auth::Bearer(&admin_a), body).await;
        assert_eq!(reply.status, 403, "{method} {path}: {:?}", reply.body);
    }
    // An admin cannot mint a superadmin either.
    let escalate = app
        .post(
            "/api/v1/users",
            &admin_a,
            json!({ "email": "boss@alpha.example", "full_name": "B", "role": "superadmin" }),
        )
        .await;
    assert_eq!(escalate.status, 403);
    let beta = app.get("/api/v1/environments/beta", &app.root).await;
    assert_eq!(beta.body["name"], "beta");
}

#[tokio::test]
async fn only_a_superadmin_manages_environments() {
    let app = spawn_app().await;
    let admin = app.tenant_with_admin("managed").await;
    let (_, responder) = app.user_with_role(&admin, "r@managed.example", Role::Responder).await;
    let (_, user) = app.user_with_role(&admin, "u@managed.example", Role::User).await;
    for token in [&admin, &responder, &user] {
        let create = app
            .post("/api/v1/environments", token, json!({ "id": "rogue", "name": "Rogue" }))
            .await;
        assert_eq!(create.status, 403);
        assert_eq!(app.get("/api/v1/environments/managed", token).await.status, 403);
    }

    let root = &app.root;
    let created = app
        .post(
            "/api/v1/environments",
            root,
            json!({ "id": "staging", "name": "Staging" }),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let again = app
        .post(
            "/api/v1/environments",
            root,
            json!({ "id": "staging", "name": "Staging" }),
        )
        .await;
    assert_eq!(again.status, 409);
    let renamed = app
        .patch("/api/v1/environments/staging", root, json!({ "name": "Staging EU" }))
        .await;
    assert_eq!(
        (renamed.status, renamed.body["name"].as_str()),
        (200, Some("Staging EU"))
    );
    let listed = app.get("/api/v1/environments", root).await;
    let ids: Vec<&str> = listed.body["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["id"].as_str())
        .collect();
    assert!(ids.contains(&"staging") && ids.contains(&"default"), "{ids:?}");
    assert_eq!(app.delete("/api/v1/environments/staging", root).await.status, 204);
    assert_eq!(app.get("/api/v1/environments/staging", root).await.status, 404);
    // The superadmin cannot delete the environment it is signed in to.
    assert_eq!(app.delete("/api/v1/environments/default", root).await.status, 400);

    // Deleting an environment ends its users' sessions.
    assert_eq!(app.delete("/api/v1/environments/managed", root).await.status, 204);
    assert_eq!(app.get("/api/v1/users", &admin).await.status, 401);
}
