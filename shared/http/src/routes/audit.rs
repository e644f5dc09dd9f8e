//! The audit route group (OmniStack's admin audit log and impersonation):
//!
//! - `GET /api/v1/admin/dashboard/audit-logs`: the environment's audit log,
//!   newest first, filtered by actor, action and resource type (admins);
//!   entries are append-only, no route changes one.
//! - `POST /api/v1/admin/impersonate/start`: an admin gets a short-lived
//!   token that acts as a user (never an admin) and names both.
//! - `POST /api/v1/admin/impersonate/stop`: with that token, ends its session.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use quper_core::audit::{AuditEntry, Filter};
use quper_core::store::{SkipLimitPage, decode_offset_cursor, skip_limit};
use serde::{Deserialize, Serialize};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::extract::{ApiJson, ApiQuery};
use crate::routes::doc;
use crate::state::AppState;

routes! {
    "/api/v1/admin/dashboard/audit-logs" => {
        get(audit_logs, doc("The audit log, newest first: admin actions, role changes, key rotations, impersonation, failed logins (admins)")),
    },
    "/api/v1/admin/impersonate/start" => {
        post(start_impersonation, doc("Impersonate a user: a short-lived token that acts as them and names you (admins; not admins or superadmins)")),
    },
    "/api/v1/admin/impersonate/stop" => {
        post(stop_impersonation, doc("End the impersonation session of the impersonation token sent")),
    },
}

/// Default and largest page of the audit log.
pub const DEFAULT_AUDIT_LIMIT: u64 = 50;
pub const MAX_AUDIT_LIMIT: u64 = 500;
/// Longest `action` or `resource_type` filter (the documented `maxLength`).
const MAX_FILTER_CHARS: usize = 100;

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
pub struct AuditLogParams {
    /// Only entries made by this user (or as them, when impersonated).
    pub actor_id: Option<u64>,
    /// Only this action (`user.role_change`, `impersonate.start`, ...).
    #[schemars(length(max = 100))] // MAX_FILTER_CHARS
    pub action: Option<String>,
    /// Only this resource type (`user`, `alert_source`, ...).
    #[schemars(length(max = 100))]
    pub resource_type: Option<String>,
    pub skip: Option<u64>,
    /// 1 to 500, default 50.
    #[schemars(range(min = 1, max = 500))]
    pub limit: Option<u64>,
    /// The `next_cursor` of the previous page (instead of `skip`).
    pub cursor: Option<String>,
}

async fn audit_logs(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiQuery(params): ApiQuery<AuditLogParams>,
) -> ApiResult<Json<SkipLimitPage<AuditEntry>>> {
    let limit = params.limit.unwrap_or(DEFAULT_AUDIT_LIMIT);
    if !(1..=MAX_AUDIT_LIMIT).contains(&limit) {
        return Err(ApiError::validation("limit", "must be between 1 and 500"));
    }
    let skip = match params.cursor.as_deref() {
        Some(cursor) => decode_offset_cursor(cursor).map_err(|message| ApiError::validation("cursor", message))?,
        None => params.skip.unwrap_or(0),
    };
    for (field, value) in [("action", &params.action), ("resource_type", &params.resource_type)] {
        if value
            .as_ref()
            .is_some_and(|text| text.chars().count() > MAX_FILTER_CHARS)
        {
            return Err(ApiError::validation(field, "must be at most 100 characters"));
        }
    }
    let filter = Filter {
        actor_id: params.actor_id,
        action: params.action.filter(|a| !a.is_empty()),
        resource_type: params.resource_type.filter(|r| !r.is_empty()),
    };
    let all = state.app.audit_log(&caller, &filter).await?;
    Ok(Json(skip_limit(all, skip, limit)))
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ImpersonateRequest {
    /// The user to act as (not an admin or superadmin, active, in your
    /// environment).
    pub user_id: u64,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct ImpersonatedUser {
    pub id: u64,
    pub email: String,
    pub full_name: String,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct ImpersonationStarted {
    pub message: &'static str,
    pub impersonated_user: ImpersonatedUser,
    /// An HS256 bearer token: `sub` the user, `act.sub` you, `imp` the
    /// session.
    pub token: String,
    pub session_id: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct ImpersonationStopped {
    pub message: &'static str,
    pub session_id: String,
}

async fn start_impersonation(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiJson(body): ApiJson<ImpersonateRequest>,
) -> ApiResult<Json<ImpersonationStarted>> {
    if !state.tokens.can_issue() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::ServiceUnavailable,
            "token issuing is not configured (QUPER_JWT_SECRET)",
        ));
    }
    // The setting is at most 12 hours, which a duration always holds.
    let lifetime =
        chrono::Duration::from_std(state.tokens.impersonation_ttl()).unwrap_or_else(|_| chrono::Duration::minutes(30));
    let started = state.app.start_impersonation(&caller, body.user_id, lifetime).await?;
    let session = &started.session;
    let issued = state
        .tokens
        .issue_impersonation(
            &started.user,
            session.admin_id,
            &session.id,
            session.started_at.timestamp(),
            session.expires_at.timestamp(),
        )
        .map_err(|err| {
            tracing::error!(error = %err, "cannot issue impersonation tokens");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::ServiceUnavailable,
                err.to_string(),
            )
        })?;
    Ok(Json(ImpersonationStarted {
        message: "Impersonation started",
        impersonated_user: ImpersonatedUser {
            id: started.user.id,
            email: started.user.email.clone(),
            full_name: started.user.full_name.clone(),
        },
        token: issued.access_token,
        session_id: session.id.clone(),
        expires_at: session.expires_at,
    }))
}

async fn stop_impersonation(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> ApiResult<Json<ImpersonationStopped>> {
    let session_id = caller.impersonation_session.clone().unwrap_or_default();
    state.app.stop_impersonation(&caller).await?;
    Ok(Json(ImpersonationStopped {
        message: "Impersonation stopped",
        session_id,
    }))
}
