//! Usage metering over the wire on a `ManualClock`: usage recorded with
//! `quper_core::usage::record` across days and months, then every endpoint's
//! figures checked exactly; idempotent recording; plan limits (defaults,
//! `QUPER_PLAN_LIMITS`, the limit check); the admin endpoints' access,
//! tenancy, order and limit; the users' plan fields and v2's computed
//! fields.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use quper::host::LocalHost;
use quper_core::error::DomainError;
use quper_core::model::{Role, TenantId};
use quper_core::ports::ManualClock;
use quper_core::usage::{self, Metric, UsageEvent};
use serde_json::{Value, json};

use crate::support::{TestApp, spawn_host};

/// Ten years.
const LONG_TOKENS: &str = "315360000";

fn at(text: &str) -> DateTime<Utc> {
    text.parse().expect("a time")
}

struct Usage {
    app: TestApp,
    host: LocalHost,
    clock: Arc<ManualClock>,
    tenant: TenantId,
    admin: String,
}

impl Usage {
    async fn start(tenant: &str, settings: &[(&str, &str)]) -> Usage {
        let clock = Arc::new(ManualClock::at(at("2025-11-20T09:00:00Z")));
        // Tokens are checked against the real time: issued on the manual
        // clock's past, they must live long enough.
        let mut settings = settings.to_vec();
        settings.push(("QUPER_JWT_TTL_SECONDS", LONG_TOKENS));
        // The figures are what each test records: reading them is not
        // metered (the edge's metering has its own test in rate_limits.rs).
        settings.push(("QUPER_METER_API_REQUESTS", "false"));
        let (app, host) = spawn_host(&settings, clock.clone()).await;
        let admin = app.tenant_with_admin(tenant).await;
        Usage {
            app,
            host,
            clock,
            tenant: TenantId::parse(tenant).expect("tenant"),
            admin,
        }
    }

    /// Records `amount` of `metric` for `user` at `when`.
    async fn record(&self, when: &str, user: u64, metric: Metric, amount: i64, category: Option<&str>) -> bool {
        self.clock.set(at(when));
        usage::record(
            self.host.store(),
            UsageEvent {
                tenant: &self.tenant,
                user_id: user,
                metric,
                amount,
                category,
                idempotency_key: None,
            },
        )
        .await
        .expect("record")
    }
}

fn figures(body: &Value, metric: &str) -> (i64, i64, f64, f64) {
    let m = &body["metrics"][metric];
    (
        m["current_period"].as_i64().expect("current"),
        m["previous_period"].as_i64().expect("previous"),
        m["growth_rate"].as_f64().expect("growth"),
        m["daily_average"].as_f64().expect("average"),
    )
}

/// The seed's example month: December 2025 then January 2026, read on
/// 30 January at noon (30 days of the period elapsed).
async fn seed_example(u: &Usage, user: u64) {
    u.record("2025-12-15T10:00:00Z", user, Metric::ApiRequests, 980, None)
        .await;
    u.record("2025-12-15T10:00:00Z", user, Metric::AiTokens, 32_000, Some("gpt-4o"))
        .await;
    u.record(
        "2025-12-10T10:00:00Z",
        user,
        Metric::StorageBytes,
        52_428_800,
        Some("image/png"),
    )
    .await;
    u.record("2026-01-05T08:00:00Z", user, Metric::ApiRequests, 100, None)
        .await;
    u.record("2026-01-15T08:00:00Z", user, Metric::ApiRequests, 400, None)
        .await;
    u.record("2026-01-30T08:00:00Z", user, Metric::ApiRequests, 750, None)
        .await;
    u.record("2026-01-15T09:00:00Z", user, Metric::AiTokens, 25_000, Some("gpt-4o"))
        .await;
    u.record(
        "2026-01-20T09:00:00Z",
        user,
        Metric::AiTokens,
        15_000,
        Some("gpt-4o-mini"),
    )
    .await;
    u.record(
        "2026-01-29T09:00:00Z",
        user,
        Metric::AiTokens,
        5_000,
        Some("claude-sonnet-4-5"),
    )
    .await;
    u.record(
        "2026-01-10T09:00:00Z",
        user,
        Metric::StorageBytes,
        52_428_800,
        Some("image/png"),
    )
    .await;
    u.record("2026-01-12T09:00:00Z", user, Metric::FileUploads, 25, None)
        .await;
    u.clock.set(at("2026-01-30T12:00:00Z"));
}

#[tokio::test]
async fn every_usage_endpoint_reports_what_was_recorded() {
    let u = Usage::start("usage-report", &[]).await;
    let (user, token) = u.app.user_with_role(&u.admin, "heavy@usage.example", Role::User).await;
    seed_example(&u, user).await;

    // Summary: the seed's numbers.
    let summary = u.app.get("/api/v1/app/usage/summary", &token).await;
    assert_eq!(summary.status, 200, "{:?}", summary.body);
    assert_eq!(figures(&summary.body, "api_requests"), (1250, 980, 27.55, 41.67));
    assert_eq!(figures(&summary.body, "ai_tokens"), (45_000, 32_000, 40.63, 1500.0));
    assert_eq!(
        figures(&summary.body, "storage_bytes"),
        (104_857_600, 52_428_800, 100.0, 3_495_253.33),
        "storage is a level: in use now against in use at the end of December"
    );
    assert_eq!(figures(&summary.body, "file_uploads"), (25, 0, 100.0, 0.83));
    assert_eq!(figures(&summary.body, "email_sent"), (0, 0, 0.0, 0.0));
    assert_eq!(summary.body["metrics"].as_object().map(|m| m.len()), Some(9));
    assert_eq!(
        summary.body["period"],
        json!({ "start": "2026-01-01T00:00:00Z", "end": "2026-01-31T23:59:59Z" })
    );
    let one = u.app.get("/api/v1/app/usage/summary?metric=ai_tokens", &token).await;
    assert_eq!(one.status, 200);
    assert_eq!(one.body["metrics"].as_object().map(|m| m.len()), Some(1));
    assert_eq!(figures(&one.body, "ai_tokens"), (45_000, 32_000, 40.63, 1500.0));

    // Current period, with the free plan's default limits.
    let current = u.app.get("/api/v1/app/usage/current-period", &token).await;
    assert_eq!(current.status, 200, "{:?}", current.body);
    let c = &current.body;
    assert_eq!(c["api_requests"], 1250);
    assert_eq!(c["ai_tokens"], 45_000);
    assert_eq!(c["storage_bytes"], 104_857_600);
    assert_eq!(c["file_uploads"], 25);
    for zero in [
        "ai_requests",
        "file_downloads",
        "websocket_messages",
        "background_jobs",
        "email_sent",
    ] {
        assert_eq!(c[zero], 0, "{zero}");
    }
    assert_eq!(c["period"]["start"], "2026-01-01T00:00:00Z");
    assert_eq!(c["plan"], "free");
    assert_eq!(c["limits"]["ai_tokens"], 100_000);
    assert_eq!(c["remaining"]["ai_tokens"], 55_000);
    assert_eq!(c["remaining"]["api_requests"], 10_000 - 1250);

    // Trends: the last 30 days (1-30 January) against the 30 before.
    let trend = u.app.get("/api/v1/app/usage/trends?metric=ai_tokens", &token).await;
    assert_eq!(trend.status, 200, "{:?}", trend.body);
    assert_eq!(
        trend.body,
        json!({
            "metric": "ai_tokens", "days": 30, "current_period": 45000, "previous_period": 32000,
            "growth_rate": 40.63, "daily_average": 1500.0, "peak_day": "2026-01-15", "peak_value": 25000,
            "trend": "increasing",
        })
    );
    let falling = u
        .app
        .get("/api/v1/app/usage/trends?metric=ai_tokens&days=10", &token)
        .await;
    assert_eq!(falling.body["current_period"], 5000, "21-30 January");
    assert_eq!(falling.body["previous_period"], 40_000, "11-20 January");
    assert_eq!(falling.body["growth_rate"], -87.5);
    assert_eq!(falling.body["trend"], "decreasing");
    assert_eq!(falling.body["peak_day"], "2026-01-29");
    let flat = u
        .app
        .get("/api/v1/app/usage/trends?metric=email_sent&days=7", &token)
        .await;
    assert_eq!(flat.body["trend"], "stable");
    assert_eq!(flat.body["peak_day"], Value::Null);
    assert_eq!(flat.body["peak_value"], 0);

    // Daily: every day of the range, zeros included.
    let daily = u
        .app
        .get("/api/v1/app/usage/daily?metric=api_requests&days=7", &token)
        .await;
    assert_eq!(daily.status, 200, "{:?}", daily.body);
    let data = daily.body["data"].as_array().expect("data");
    let dates: Vec<&str> = data.iter().filter_map(|d| d["date"].as_str()).collect();
    assert_eq!(
        dates,
        [
            "2026-01-24",
            "2026-01-25",
            "2026-01-26",
            "2026-01-27",
            "2026-01-28",
            "2026-01-29",
            "2026-01-30"
        ]
    );
    let values: Vec<i64> = data.iter().filter_map(|d| d["value"].as_i64()).collect();
    assert_eq!(values, [0, 0, 0, 0, 0, 0, 750]);
    assert_eq!(daily.body["total"], 750);
    assert_eq!(daily.body["average"], 107.14);
    let month = u.app.get("/api/v1/app/usage/daily?metric=api_requests", &token).await;
    let data = month.body["data"].as_array().expect("data");
    assert_eq!(data.len(), 30, "30 days by default");
    assert_eq!(data[0], json!({ "date": "2026-01-01", "value": 0 }));
    assert_eq!(data[4], json!({ "date": "2026-01-05", "value": 100 }));
    assert_eq!(month.body["total"], 1250);
    assert_eq!(month.body["average"], 41.67);
    let long = u
        .app
        .get("/api/v1/app/usage/daily?metric=api_requests&days=90", &token)
        .await;
    assert_eq!(long.body["data"].as_array().map(Vec::len), Some(90));
    assert_eq!(long.body["total"], 1250 + 980);

    // Breakdown: the period's categories.
    let breakdown = u.app.get("/api/v1/app/usage/breakdown?metric=ai_tokens", &token).await;
    assert_eq!(breakdown.status, 200, "{:?}", breakdown.body);
    assert_eq!(
        breakdown.body["breakdown"],
        json!({ "gpt-4o": 25000, "gpt-4o-mini": 15000, "claude-sonnet-4-5": 5000 })
    );
    assert_eq!(breakdown.body["total"], 45_000);
    let plain = u
        .app
        .get("/api/v1/app/usage/breakdown?metric=api_requests", &token)
        .await;
    assert_eq!(plain.body["breakdown"], json!({ "uncategorized": 1250 }));

    // Metrics.
    let metrics = u.app.get("/api/v1/app/usage/metrics", &token).await;
    assert_eq!(metrics.status, 200);
    let list = metrics.body["metrics"].as_array().expect("metrics");
    assert_eq!(list.len(), 9);
    assert_eq!(
        list[0],
        json!({ "key": "api_requests", "name": "API Requests", "description": "Total API requests made", "unit": "requests" })
    );
    assert_eq!(list[8]["key"], "email_sent");

    // v2 wraps the same answer.
    let v2 = u.app.get("/api/v2/app/usage/summary?metric=api_requests", &token).await;
    assert_eq!(v2.status, 200);
    assert_eq!(v2.body["success"], true);
    assert_eq!(v2.body["data"]["metrics"]["api_requests"]["current_period"], 1250);

    // Another user of the environment sees only their own usage.
    let (_, other) = u.app.user_with_role(&u.admin, "light@usage.example", Role::User).await;
    let theirs = u.app.get("/api/v1/app/usage/summary?metric=api_requests", &other).await;
    assert_eq!(figures(&theirs.body, "api_requests"), (0, 0, 0.0, 0.0));

    // A month later January is the previous period.
    u.clock.set(at("2026-02-03T12:00:00Z"));
    let february = u.app.get("/api/v1/app/usage/summary", &token).await;
    assert_eq!(figures(&february.body, "api_requests"), (0, 1250, -100.0, 0.0));
    assert_eq!(
        figures(&february.body, "storage_bytes"),
        (104_857_600, 104_857_600, 0.0, 34_952_533.33),
        "storage stays in use"
    );
    assert_eq!(february.body["period"]["end"], "2026-02-28T23:59:59Z");
}

#[tokio::test]
async fn bad_parameters_are_422s_naming_them() {
    let u = Usage::start("usage-params", &[]).await;
    let (_, token) = u.app.user_with_role(&u.admin, "p@usage.example", Role::User).await;
    for (path, field) in [
        ("/api/v1/app/usage/summary?metric=tokens", "metric"),
        ("/api/v1/app/usage/trends", "metric"),
        ("/api/v1/app/usage/trends?metric=API%20Requests", "metric"),
        ("/api/v1/app/usage/trends?metric=ai_tokens&days=91", "days"),
        ("/api/v1/app/usage/trends?metric=ai_tokens&days=0", "days"),
        ("/api/v1/app/usage/daily", "metric"),
        ("/api/v1/app/usage/daily?metric=api_requests&days=91", "days"),
        ("/api/v1/app/usage/daily?metric=api_requests&days=-3", "days"),
        ("/api/v1/app/usage/daily?metric=api_requests&days=ten", "days"),
        ("/api/v1/app/usage/breakdown", "metric"),
        ("/api/v1/app/usage/breakdown?metric=", "metric"),
        ("/api/v1/admin/usage/top-users?metric=x", "metric"),
        ("/api/v1/admin/usage/top-users?limit=101", "limit"),
        ("/api/v1/admin/usage/top-users?limit=0", "limit"),
    ] {
        let token = if path.contains("/admin/") { &u.admin } else { &token };
        let reply = u.app.get(path, token).await;
        assert_eq!(reply.status, 422, "{path}: {:?}", reply.body);
        assert_eq!(reply.code(), "VALIDATION_ERROR", "{path}");
        assert_eq!(
            reply.body["error"]["details"]["field"], field,
            "{path}: {:?}",
            reply.body
        );
    }
    let anonymous = u
        .app
        .send(
            reqwest::Method::GET,
            "/api/v1/app/usage/metrics",
            crate::support::Auth::None,
            None,
        )
        .await;
    assert_eq!(anonymous.status, 401);
}

#[tokio::test]
async fn recording_is_idempotent_by_key() {
    let u = Usage::start("usage-idem", &[]).await;
    let (user, token) = u.app.user_with_role(&u.admin, "i@usage.example", Role::User).await;
    // The markers' `ttl` is read against the real time: record now.
    let now = Utc::now();
    u.clock.set(now);
    let event = |key: &'static str, amount: i64| UsageEvent {
        tenant: &u.tenant,
        user_id: user,
        metric: Metric::AiTokens,
        amount,
        category: Some("gpt-4o"),
        idempotency_key: Some(key),
    };
    assert!(
        usage::record(u.host.store(), event("req-1", 300))
            .await
            .expect("record")
    );
    assert!(
        !usage::record(u.host.store(), event("req-1", 300)).await.expect("retry"),
        "a retried request is not counted twice"
    );
    assert!(
        usage::record(u.host.store(), event("req-2", 200))
            .await
            .expect("record")
    );
    let current = u.app.get("/api/v1/app/usage/current-period", &token).await;
    assert_eq!(current.body["ai_tokens"], 500);
    let daily = u
        .app
        .get("/api/v1/app/usage/daily?metric=ai_tokens&days=1", &token)
        .await;
    assert_eq!(
        daily.body["data"],
        json!([{ "date": now.date_naive().to_string(), "value": 500 }])
    );
    let breakdown = u.app.get("/api/v1/app/usage/breakdown?metric=ai_tokens", &token).await;
    assert_eq!(breakdown.body["breakdown"], json!({ "gpt-4o": 500 }));
}

#[tokio::test]
async fn admins_read_anyones_usage_and_the_top_users() {
    let u = Usage::start("usage-admin", &[]).await;
    let (heavy, heavy_token) = u.app.user_with_role(&u.admin, "heavy@admin.example", Role::User).await;
    let (moderate, _) = u
        .app
        .user_with_role(&u.admin, "moderate@admin.example", Role::User)
        .await;
    let (light, _) = u
        .app
        .user_with_role(&u.admin, "light@admin.example", Role::Responder)
        .await;
    let (_, responder) = u
        .app
        .user_with_role(&u.admin, "resp@admin.example", Role::Responder)
        .await;
    seed_example(&u, heavy).await;
    u.record("2026-01-20T10:00:00Z", moderate, Metric::ApiRequests, 3000, None)
        .await;
    u.record("2026-01-21T10:00:00Z", light, Metric::ApiRequests, 10, None)
        .await;
    u.record("2026-01-21T10:00:00Z", light, Metric::AiTokens, 125_000, None)
        .await;
    // Last month does not count for this period's ranking.
    u.record("2025-12-20T10:00:00Z", light, Metric::ApiRequests, 99_999, None)
        .await;
    u.clock.set(at("2026-01-30T12:00:00Z"));

    // Another environment's usage is not in this one's ranking.
    let other_admin = u.app.tenant_with_admin("usage-admin-b").await;
    let b = TenantId::parse("usage-admin-b").expect("tenant");
    usage::record(
        u.host.store(),
        UsageEvent {
            tenant: &b,
            user_id: 1,
            metric: Metric::ApiRequests,
            amount: 1_000_000,
            category: None,
            idempotency_key: None,
        },
    )
    .await
    .expect("record");

    // A user's summary, as the user's own.
    let summary = u
        .app
        .get(&format!("/api/v1/admin/usage/summary/{heavy}"), &u.admin)
        .await;
    assert_eq!(summary.status, 200, "{:?}", summary.body);
    let own = u.app.get("/api/v1/app/usage/summary", &heavy_token).await;
    assert_eq!(summary.body, own.body);
    assert_eq!(figures(&summary.body, "api_requests"), (1250, 980, 27.55, 41.67));
    let one = u
        .app
        .get(
            &format!("/api/v1/admin/usage/summary/{heavy}?metric=ai_tokens"),
            &u.admin,
        )
        .await;
    assert_eq!(one.body["metrics"].as_object().map(|m| m.len()), Some(1));

    // Top users: most first, this period only, default api_requests.
    let top = u.app.get("/api/v1/admin/usage/top-users", &u.admin).await;
    assert_eq!(top.status, 200, "{:?}", top.body);
    assert_eq!(top.body["metric"], "api_requests");
    assert_eq!(
        top.body["users"],
        json!([
            { "user_id": moderate, "email": "moderate@admin.example", "value": 3000 },
            { "user_id": heavy, "email": "heavy@admin.example", "value": 1250 },
            { "user_id": light, "email": "light@admin.example", "value": 10 },
        ])
    );
    assert_eq!(
        top.body["period"],
        json!({ "start": "2026-01-01T00:00:00Z", "end": "2026-01-31T23:59:59Z" })
    );
    let two = u.app.get("/api/v1/admin/usage/top-users?limit=2", &u.admin).await;
    let ids: Vec<u64> = two.body["users"]
        .as_array()
        .expect("users")
        .iter()
        .filter_map(|x| x["user_id"].as_u64())
        .collect();
    assert_eq!(ids, [moderate, heavy]);
    let tokens = u
        .app
        .get("/api/v1/admin/usage/top-users?metric=ai_tokens&limit=100", &u.admin)
        .await;
    let ids: Vec<u64> = tokens.body["users"]
        .as_array()
        .expect("users")
        .iter()
        .filter_map(|x| x["user_id"].as_u64())
        .collect();
    assert_eq!(ids, [light, heavy]);
    let storage = u
        .app
        .get("/api/v1/admin/usage/top-users?metric=storage_bytes", &u.admin)
        .await;
    assert_eq!(storage.body["users"][0]["value"], 104_857_600, "storage in use");

    // Only admins; another environment's user is a 404.
    for path in [
        format!("/api/v1/admin/usage/summary/{heavy}"),
        "/api/v1/admin/usage/top-users".to_owned(),
    ] {
        for token in [&heavy_token, &responder] {
            let refused = u.app.get(&path, token).await;
            assert_eq!(refused.status, 403, "{path}: {:?}", refused.body);
        }
    }
    let missing = u.app.get("/api/v1/admin/usage/summary/999", &u.admin).await;
    assert_eq!(missing.status, 404);
    let elsewhere = u
        .app
        .get(&format!("/api/v1/admin/usage/summary/{heavy}"), &other_admin)
        .await;
    assert_eq!(elsewhere.status, 404, "user {heavy} is not in usage-admin-b");
    let other_top = u.app.get("/api/v1/admin/usage/top-users", &other_admin).await;
    assert_eq!(other_top.body["users"].as_array().map(Vec::len), Some(1));
    assert_eq!(other_top.body["users"][0]["value"], 1_000_000);
    let root_top = u.app.get("/api/v1/admin/usage/top-users", &u.app.root).await;
    assert_eq!(root_top.status, 200, "superadmins are admins of their environment");
    assert_eq!(root_top.body["users"], json!([]));
}

#[tokio::test]
async fn plan_limits_are_shown_and_checked() {
    let u = Usage::start(
        "usage-limits",
        &[(
            "QUPER_PLAN_LIMITS",
            r#"{"free": {"ai_tokens": 50000}, "pro": {"ai_tokens": 60000}}"#,
        )],
    )
    .await;
    let (user, token) = u.app.user_with_role(&u.admin, "l@usage.example", Role::User).await;
    seed_example(&u, user).await;
    let current = u.app.get("/api/v1/app/usage/current-period", &token).await;
    assert_eq!(current.body["limits"]["ai_tokens"], 50_000);
    assert_eq!(current.body["remaining"]["ai_tokens"], 5_000);
    assert_eq!(current.body["limits"]["api_requests"], 10_000, "defaults stay");

    let app = &u.host.app;
    app.check_usage_limit(&u.tenant, user, Metric::AiTokens, 5_000)
        .await
        .expect("up to the limit");
    let over = app.check_usage_limit(&u.tenant, user, Metric::AiTokens, 5_001).await;
    match over {
        Err(DomainError::RateLimited { retry_after }) => {
            assert_eq!(retry_after, 36 * 3600, "until 1 February 00:00");
        }
        other => panic!("expected a 429, got {other:?}"),
    }
    // Storage is a level: 100 MiB in use against the free GiB.
    app.check_usage_limit(&u.tenant, user, Metric::StorageBytes, 900 * 1024 * 1024)
        .await
        .expect("fits");
    assert!(
        app.check_usage_limit(&u.tenant, user, Metric::StorageBytes, 1024 * 1024 * 1024)
            .await
            .is_err()
    );
    assert!(matches!(
        app.check_usage_limit(&u.tenant, 999, Metric::AiTokens, 1).await,
        Err(DomainError::NotFound { .. })
    ));

    // An admin moves the user to pro: the pro limits apply.
    let pro = u
        .app
        .patch(
            &format!("/api/v1/admin/users/{user}"),
            &u.admin,
            json!({ "subscription_plan": "pro" }),
        )
        .await;
    assert_eq!(pro.status, 200, "{:?}", pro.body);
    app.check_usage_limit(&u.tenant, user, Metric::AiTokens, 15_000)
        .await
        .expect("pro allows 60000");
    let current = u.app.get("/api/v1/app/usage/current-period", &token).await;
    assert_eq!(current.body["plan"], "pro");
    assert_eq!(current.body["limits"]["ai_tokens"], 60_000);
    assert_eq!(current.body["limits"]["storage_bytes"], 10_i64 * 1024 * 1024 * 1024);
    // A canceled subscription falls back to the free limits.
    let canceled = u
        .app
        .patch(
            &format!("/api/v1/admin/users/{user}"),
            &u.admin,
            json!({ "subscription_status": "canceled" }),
        )
        .await;
    assert_eq!(canceled.body["subscription_plan"], "pro");
    assert_eq!(canceled.body["subscription_status"], "canceled");
    assert!(
        app.check_usage_limit(&u.tenant, user, Metric::AiTokens, 15_000)
            .await
            .is_err()
    );
    // The enterprise plan is unlimited by default.
    u.app
        .patch(
            &format!("/api/v1/admin/users/{user}"),
            &u.admin,
            json!({ "subscription_plan": "enterprise", "subscription_status": "active" }),
        )
        .await;
    app.check_usage_limit(&u.tenant, user, Metric::AiTokens, i64::MAX / 2)
        .await
        .expect("unlimited");
    let current = u.app.get("/api/v1/app/usage/current-period", &token).await;
    assert_eq!(current.body["limits"]["ai_tokens"], Value::Null);
    assert_eq!(current.body["remaining"]["ai_tokens"], Value::Null);
}

#[tokio::test]
async fn users_carry_their_plan_and_v2_the_computed_fields() {
    let u = Usage::start("usage-plans", &[]).await;
    u.clock.set(at("2026-01-01T10:00:00Z"));
    let (user, token) = u.app.user_with_role(&u.admin, "plan@usage.example", Role::User).await;
    u.clock.set(at("2026-02-12T11:00:00Z"));

    let me = u.app.get("/api/v1/app/users/me", &token).await;
    assert_eq!(me.status, 200, "{:?}", me.body);
    assert_eq!(me.body["subscription_plan"], "free");
    assert_eq!(me.body["subscription_status"], "none");
    assert!(me.body.get("is_premium").is_none(), "v1 is unchanged: {:?}", me.body);
    assert!(me.body.get("days_since_joined").is_none());
    let v2 = u.app.get("/api/v2/app/users/me", &token).await;
    assert_eq!(v2.body["data"]["is_premium"], false);
    assert_eq!(v2.body["data"]["days_since_joined"], 42);
    assert_eq!(v2.body["data"]["email"], "plan@usage.example");

    // Only an admin sets the plan, through the admin route.
    let own = u
        .app
        .patch("/api/v1/app/users/me", &token, json!({ "subscription_plan": "pro" }))
        .await;
    assert_eq!(own.status, 422, "{:?}", own.body);
    let quper_route = u
        .app
        .patch(
            &format!("/api/v1/users/{user}"),
            &u.admin,
            json!({ "subscription_plan": "pro" }),
        )
        .await;
    assert_eq!(quper_route.status, 422, "{:?}", quper_route.body);
    let bad = u
        .app
        .patch(
            &format!("/api/v1/admin/users/{user}"),
            &u.admin,
            json!({ "subscription_plan": "gold" }),
        )
        .await;
    assert_eq!(bad.status, 422);
    assert_eq!(bad.body["error"]["details"]["field"], "subscription_plan");
    let pro = u
        .app
        .patch(
            &format!("/api/v2/admin/users/{user}"),
            &u.admin,
            json!({ "subscription_plan": "pro" }),
        )
        .await;
    assert_eq!(pro.status, 200, "{:?}", pro.body);
    assert_eq!(pro.body["data"]["subscription_plan"], "pro");
    assert_eq!(pro.body["data"]["subscription_status"], "active");
    assert_eq!(pro.body["data"]["is_premium"], true);

    let me = u.app.get("/api/v1/app/users/me", &token).await;
    assert_eq!(me.body["subscription_plan"], "pro");
    assert_eq!(me.body["subscription_status"], "active");
    let v2 = u.app.get("/api/v2/app/users/me", &token).await;
    assert_eq!(v2.body["data"]["is_premium"], true);

    // v2 admin views carry the computed fields; v1 ones do not.
    let one = u.app.get(&format!("/api/v2/admin/users/{user}"), &u.admin).await;
    assert_eq!(one.body["data"]["is_premium"], true);
    assert_eq!(one.body["data"]["days_since_joined"], 42);
    let list = u.app.get("/api/v2/admin/users", &u.admin).await;
    let items = list.body["data"]["items"].as_array().expect("items");
    assert!(
        items
            .iter()
            .all(|item| item.get("is_premium").is_some() && item.get("days_since_joined").is_some())
    );
    let listed = items.iter().find(|item| item["id"] == user).expect("the user");
    assert_eq!(listed["is_premium"], true);
    let v1 = u.app.get(&format!("/api/v1/admin/users/{user}"), &u.admin).await;
    assert_eq!(v1.body["subscription_plan"], "pro");
    assert!(v1.body.get("is_premium").is_none());
    let v1_list = u.app.get("/api/v1/admin/users", &u.admin).await;
    assert!(v1_list.body["items"][0].get("days_since_joined").is_none());

    // A subscription that is not in force is not premium.
    let past_due = u
        .app
        .patch(
            &format!("/api/v2/admin/users/{user}"),
            &u.admin,
            json!({ "subscription_status": "past_due" }),
        )
        .await;
    assert_eq!(past_due.body["data"]["is_premium"], false);
    // Back to free: no subscription.
    let free = u
        .app
        .patch(
            &format!("/api/v1/admin/users/{user}"),
            &u.admin,
            json!({ "subscription_plan": "free" }),
        )
        .await;
    assert_eq!(free.body["subscription_status"], "none");
    // A responder is not an admin.
    let (_, responder) = u.app.user_with_role(&u.admin, "r@usage.example", Role::Responder).await;
    let refused = u
        .app
        .patch(
            &format!("/api/v1/admin/users/{user}"),
            &responder,
            json!({ "subscription_plan": "pro" }),
        )
        .await;
    assert_eq!(refused.status, 403);
    u.clock.advance(Duration::days(1));
    let later = u.app.get("/api/v2/app/users/me", &token).await;
    assert_eq!(later.body["data"]["days_since_joined"], 43);
}

#[tokio::test]
async fn usage_reads_the_same_on_both_stores() {
    let (sqlite, _dir) = crate::support::sqlite_table();
    let dynamodb = crate::support::dynamodb_table("usage").await;
    for (store, table) in [("sqlite", sqlite), ("dynamodb", dynamodb)] {
        // Near the real time: tokens and markers' `ttl` are read against it.
        let now = Utc::now();
        let clock = Arc::new(ManualClock::at(now));
        let (app, host) = crate::support::spawn_host_on(table, clock.clone()).await;
        let admin = app.tenant_with_admin("usage-stores").await;
        let (a, a_token) = app.user_with_role(&admin, "a@stores.example", Role::User).await;
        let (b, _) = app.user_with_role(&admin, "b@stores.example", Role::User).await;
        let tenant = TenantId::parse("usage-stores").expect("tenant");
        for (user, amount, category, key) in [
            (a, 100, "gpt-4o", Some("r1")),
            (a, 100, "gpt-4o", Some("r1")),
            (a, 50, "gpt-4o-mini", None),
            (b, 400, "gpt-4o", None),
        ] {
            usage::record(
                host.store(),
                UsageEvent {
                    tenant: &tenant,
                    user_id: user,
                    metric: Metric::AiTokens,
                    amount,
                    category: Some(category),
                    idempotency_key: key,
                },
            )
            .await
            .expect("record");
        }
        let current = app.get("/api/v1/app/usage/current-period", &a_token).await;
        assert_eq!(current.body["ai_tokens"], 150, "{store}: {:?}", current.body);
        let breakdown = app.get("/api/v1/app/usage/breakdown?metric=ai_tokens", &a_token).await;
        assert_eq!(
            breakdown.body["breakdown"],
            json!({ "gpt-4o": 100, "gpt-4o-mini": 50 }),
            "{store}"
        );
        let daily = app
            .get("/api/v1/app/usage/daily?metric=ai_tokens&days=3", &a_token)
            .await;
        let values: Vec<i64> = daily.body["data"]
            .as_array()
            .expect("data")
            .iter()
            .filter_map(|d| d["value"].as_i64())
            .collect();
        assert_eq!(values, [0, 0, 150], "{store}");
        let top = app.get("/api/v1/admin/usage/top-users?metric=ai_tokens", &admin).await;
        let ranked: Vec<(u64, i64)> = top.body["users"]
            .as_array()
            .expect("users")
            .iter()
            .filter_map(|u| Some((u["user_id"].as_u64()?, u["value"].as_i64()?)))
            .collect();
        assert_eq!(ranked, [(b, 400), (a, 150)], "{store}");
    }
}
