//! The oncall routes over the wire: schedule and policy validation,
//! PagerPal's 400/409 rules, timelines, who is on call, worker status.

use quper_core::model::Role;
use serde_json::json;

use crate::support::spawn_app;

#[tokio::test]
async fn schedules_follow_pagerpal_rules() {
    let app = spawn_app().await;
    let admin = app.tenant_with_admin("sched").await;
    let (ann, _) = app.user_with_role(&admin, "ann@sched.example", Role::Responder).await;
    let (gone, _) = app.user_with_role(&admin, "gone@sched.example", Role::Responder).await;
    app.post(&format!("/api/v1/admin/users/{gone}/deactivate"), &admin, json!({}))
        .await;
    let team = app.post("/api/v1/teams", &admin, json!({ "name": "db" })).await.body["id"]
        .as_u64()
        .expect("team");

    let bad_zone = app
        .post(
            "/api/v1/schedules",
            &admin,
            json!({ "name": "x", "time_zone": "Mars/Olympus" }),
        )
        .await;
    assert_eq!(
        (bad_zone.status, bad_zone.body["error"]["details"]["field"].as_str()),
        (422, Some("time_zone"))
    );
    let inactive_layer = app
        .post(
            "/api/v1/schedules",
            &admin,
            json!({ "name": "x", "layers": [{ "user_ids": [gone], "shift_length": 1, "shift_unit": "days", "start": "2027-01-01T09:00:00" }] }),
        )
        .await;
    assert_eq!(inactive_layer.status, 400);
    let zero_length = app
        .post(
            "/api/v1/schedules",
            &admin,
            json!({ "name": "x", "layers": [{ "user_ids": [ann], "shift_length": 0, "shift_unit": "days", "start": "2027-01-01T09:00:00" }] }),
        )
        .await;
    assert_eq!(
        (
            zero_length.status,
            zero_length.body["error"]["details"]["field"].as_str()
        ),
        (422, Some("layers[0].shift_length"))
    );

    let created = app
        .post(
            "/api/v1/schedules",
            &admin,
            json!({
                "name": "primary", "time_zone": "America/New_York", "team_id": team,
                "layers": [{ "user_ids": [ann], "shift_length": 1, "shift_unit": "weeks", "start": "2026-01-05T09:00:00" }],
            }),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let id = created.body["id"].as_u64().expect("id");
    let entries = format!("/api/v1/schedules/{id}/entries");
    let inactive = app
        .post(
            &entries,
            &admin,
            json!({ "user_id": gone, "start": "2027-01-01T00:00:00Z", "end": "2027-01-02T00:00:00Z" }),
        )
        .await;
    assert_eq!(inactive.status, 400, "entries need an active user");
    let backwards = app
        .post(
            &entries,
            &admin,
            json!({ "user_id": ann, "start": "2027-01-02T00:00:00Z", "end": "2027-01-01T00:00:00Z" }),
        )
        .await;
    assert_eq!(backwards.status, 422);
    let first = app
        .post(
            &entries,
            &admin,
            json!({ "user_id": ann, "start": "2027-01-01T00:00:00Z", "end": "2027-01-02T00:00:00Z" }),
        )
        .await;
    assert_eq!(first.status, 201);
    let touching = app
        .post(
            &entries,
            &admin,
            json!({ "user_id": ann, "start": "2027-01-02T00:00:00Z", "end": "2027-01-03T00:00:00Z" }),
        )
        .await;
    assert_eq!(touching.status, 201, "entries that only touch do not overlap");
    assert_eq!(app.get(&entries, &admin).await.body.as_array().map(Vec::len), Some(2));
    let entry_id = first.body["id"].as_u64().expect("entry");
    assert_eq!(app.delete(&format!("{entries}/{entry_id}"), &admin).await.status, 204);
    assert_eq!(app.delete(&format!("{entries}/{entry_id}"), &admin).await.status, 404);

    let window = app
        .get(
            &format!("/api/v1/schedules/{id}/timeline?start=2027-01-01T00:00:00Z&end=2026-01-01T00:00:00Z"),
            &admin,
        )
        .await;
    assert_eq!(window.status, 422);
    let huge = app
        .get(
            &format!("/api/v1/schedules/{id}/timeline?start=2027-01-01T00:00:00Z&end=2028-01-01T00:00:00Z"),
            &admin,
        )
        .await;
    assert_eq!(huge.status, 422);
    let week = app
        .get(
            &format!("/api/v1/schedules/{id}/timeline?start=2027-01-01T00:00:00Z&end=2027-01-08T00:00:00Z"),
            &admin,
        )
        .await;
    assert!(
        week.body["shifts"]
            .as_array()
            .is_some_and(|s| s.iter().all(|shift| shift["user_id"].as_u64() == Some(ann)))
    );

    let team_now = app
        .get(&format!("/api/v1/teams/{team}/oncall?at=2027-01-02T12:00:00Z"), &admin)
        .await;
    assert_eq!(
        (
            team_now.body[0]["schedule_id"].as_u64(),
            team_now.body[0]["user_id"].as_u64()
        ),
        (Some(id), Some(ann))
    );
    assert_eq!(app.get("/api/v1/teams/999/oncall", &admin).await.status, 404);
    let other = app.tenant_with_admin("sched-other").await;
    assert_eq!(app.get(&format!("/api/v1/schedules/{id}"), &other).await.status, 404);
    assert_eq!(app.get("/api/v1/oncall", &other).await.body, json!([]));
    let (_, reader) = app.user_with_role(&admin, "reader@sched.example", Role::User).await;
    assert_eq!(
        app.post("/api/v1/schedules", &reader, json!({ "name": "x" }))
            .await
            .status,
        403
    );
    assert_eq!(app.get(&format!("/api/v1/schedules/{id}"), &reader).await.status, 200);
}

#[tokio::test]
async fn escalation_policies_follow_pagerpal_rules() {
    let app = spawn_app().await;
    let admin = app.tenant_with_admin("esc").await;
    let (ann, _) = app.user_with_role(&admin, "ann@esc.example", Role::Responder).await;
    let (gone, _) = app.user_with_role(&admin, "gone@esc.example", Role::Responder).await;
    app.post(&format!("/api/v1/admin/users/{gone}/deactivate"), &admin, json!({}))
        .await;
    assert_eq!(
        app.post(
            "/api/v1/escalation-policies",
            &admin,
            json!({ "name": "p", "repeat_count": 11 })
        )
        .await
        .status,
        422
    );
    let policy = app
        .post(
            "/api/v1/escalation-policies",
            &admin,
            json!({ "name": "p", "ack_timeout_minutes": 30 }),
        )
        .await;
    let id = policy.body["id"].as_u64().expect("policy");
    let levels = format!("/api/v1/escalation-policies/{id}/levels");
    let level = app
        .post(&levels, &admin, json!({ "level_number": 1, "delay_minutes": 10 }))
        .await;
    assert_eq!(level.status, 201);
    let level_id = level.body["id"].as_u64().expect("level");
    assert_eq!(
        app.post(&levels, &admin, json!({ "level_number": 1 })).await.status,
        409,
        "level numbers are unique"
    );
    let second = app.post(&levels, &admin, json!({ "level_number": 2 })).await.body["id"]
        .as_u64()
        .expect("level 2");
    assert_eq!(
        app.patch(&format!("{levels}/{second}"), &admin, json!({ "level_number": 1 }))
            .await
            .status,
        409
    );
    assert_eq!(
        app.patch(&format!("{levels}/{second}"), &admin, json!({ "level_number": 3 }))
            .await
            .status,
        200
    );

    let assignees = format!("{levels}/{level_id}/assignees");
    assert_eq!(
        app.post(&assignees, &admin, json!({ "user_id": gone })).await.status,
        400,
        "inactive users cannot be assignees"
    );
    assert_eq!(
        app.post(&assignees, &admin, json!({ "schedule_id": 999 })).await.status,
        400
    );
    assert_eq!(
        app.post(&assignees, &admin, json!({ "user_id": ann, "team_id": 1 }))
            .await
            .status,
        422
    );
    let added = app.post(&assignees, &admin, json!({ "user_id": ann })).await;
    assert_eq!(
        (added.status, added.body["assignee_type"].as_str()),
        (201, Some("user"))
    );
    assert_eq!(
        app.post(&assignees, &admin, json!({ "user_id": ann })).await.status,
        409
    );
    let listed = app.get(&levels, &admin).await;
    let numbers: Vec<u64> = listed
        .body
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l["level_number"].as_u64())
        .collect();
    assert_eq!(numbers, vec![1, 3], "levels list in paging order");
    let assignee_id = added.body["id"].as_u64().expect("assignee");
    assert_eq!(
        app.delete(&format!("{assignees}/{assignee_id}"), &admin).await.status,
        204
    );
    assert_eq!(app.get(&assignees, &admin).await.body, json!([]));
    assert_eq!(app.delete(&format!("{levels}/{second}"), &admin).await.status, 204);
    let other = app.tenant_with_admin("esc-other").await;
    assert_eq!(
        app.get(&format!("/api/v1/escalation-policies/{id}"), &other)
            .await
            .status,
        404
    );
    assert_eq!(
        app.post(&levels, &other, json!({ "level_number": 5 })).await.status,
        404
    );
}

#[tokio::test]
async fn worker_status_in_pagerpal_shape() {
    let app = spawn_app().await;
    let admin = app.tenant_with_admin("jobs").await;
    let reply = app.get("/api/v1/system/jobs", &admin).await;
    assert_eq!(reply.status, 200);
    let jobs = reply.body["jobs"].as_array().cloned().unwrap_or_default();
    let names: Vec<&str> = jobs.iter().filter_map(|j| j["name"].as_str()).collect();
    assert_eq!(names, vec!["escalation", "notification_retry"]);
    assert_eq!(
        (jobs[0]["enabled"].as_bool(), jobs[0]["pending"].as_u64()),
        (Some(true), Some(0))
    );
    assert!(
        jobs.iter()
            .all(|j| j.get("last_run").is_some() && j.get("pending").is_some())
    );
    assert_eq!(
        app.send(
            reqwest::Method::GET,
            "/api/v1/system/jobs",
            crate::support::Auth::None,
            None
        )
        .await
        .status,
        401
    );
}
