//! Authentication: who is calling.
//!
//! - [`jwt`]: issuing and verifying bearer tokens (HS256, RS256 via JWKS of
//!   the configured identity providers, impersonation tokens).
//! - [`Caller`]: the extractor for the authenticated principal, from a bearer
//!   token or HTTP Basic credentials of a real account.
//!
//! Passwords are checked, under the failed-login limits, by the application
//! core ([`quper_core::App::check_credentials`]).

pub mod jwt;

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use quper_core::identity::Principal;
use quper_core::identity::external::ExternalIdentity;
use quper_core::model::TenantId;

use crate::error::{ApiError, ApiResult};
use crate::middleware::ClientIp;
use crate::state::AppState;

/// The authenticated caller of a request. Its tenant scopes everything the
/// handler does.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let challenge = |mut error: ApiError| {
            error.basic_challenge = true;
            error
        };
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return Err(challenge(ApiError::unauthenticated(
                "authentication required: a bearer token or Basic credentials",
            )));
        };
        let value = value
            .to_str()
            .map_err(|_| ApiError::unauthenticated("malformed Authorization header"))?;
        let (scheme, credentials) = value.split_once(' ').unwrap_or((value, ""));
        let credentials = credentials.trim();
        let principal = if scheme.eq_ignore_ascii_case("bearer") {
            let verified = parts
                .extensions
                .get::<crate::ratelimit::VerifiedBearer>()
                .filter(|verified| verified.token == credentials)
                .map(|verified| verified.claims.clone());
            bearer_principal(state, credentials, verified).await?
        } else if scheme.eq_ignore_ascii_case("basic") {
            let client = client_of(parts);
            basic_principal(state, credentials, &client).await.map_err(challenge)?
        } else {
            return Err(challenge(ApiError::unauthenticated("unsupported Authorization scheme")));
        };
        tracing::Span::current()
            .record("tenant", principal.tenant().as_str())
            .record("user_id", principal.user_id);
        if let Some(served) = parts.extensions.get::<crate::metering::Served>() {
            served.set_caller(&principal);
        }
        Ok(Caller(principal))
    }
}

/// The client address the edge recorded (what the failed-login limits
/// count per client).
pub fn client_of(parts: &Parts) -> String {
    parts
        .extensions
        .get::<ClientIp>()
        .map(|ip| ip.0.clone())
        .unwrap_or_else(|| "unknown".into())
}

/// The principal of a bearer token sent outside the `Authorization` header
/// (the WebSocket endpoint's `?token=`, API Gateway's `$connect`): verified
/// as every bearer token is; a 401 `ApiError` when refused.
pub async fn token_principal(state: &AppState, token: &str) -> ApiResult<Principal> {
    bearer_principal(state, token, None).await
}

/// The principal of a bearer token; `verified`: the edge's verification of
/// the same token, when it made one (`Some(None)`: refused).
async fn bearer_principal(
    state: &AppState,
    token: &str,
    verified: Option<Option<crate::auth::jwt::Claims>>,
) -> ApiResult<Principal> {
    let invalid = || ApiError::unauthenticated("invalid or expired token");
    let claims = match verified {
        Some(claims) => claims.ok_or_else(invalid)?,
        None => state.tokens.verify(token).await.map_err(|err| {
            tracing::debug!(error = %err, "token refused");
            invalid()
        })?,
    };
    // A tenant claim that cannot be an environment id names none.
    let claimed_tenant = state
        .tokens
        .tenant_of(&claims)
        .map(|tenant| TenantId::parse(tenant).map_err(|_| invalid()))
        .transpose()?;
    // An external provider mapped to an environment signs its users in
    // there (a tenant claim, if any, must name it), creating the account on
    // first use; its role claim grants at most the mapping's maximum.
    if let Some(provider) = &claims.provider
        && let Some(environment) = &provider.environment
    {
        if claimed_tenant.as_ref().is_some_and(|tenant| tenant != environment) {
            return Err(invalid());
        }
        let identity = ExternalIdentity {
            issuer: claims
                .iss
                .clone()
                .or_else(|| provider.issuer.clone())
                .unwrap_or_default(),
            subject: claims.sub.clone(),
            email: claims.email.clone(),
            role: claims.role.clone(),
            max_role: provider.max_role,
        };
        return Ok(state.app.external_principal(environment, &identity).await?);
    }
    let tenant = claimed_tenant.ok_or_else(invalid)?;
    // Quper's own tokens carry the user id in `sub` and the user's session
    // in `sid` (a token without one carries the empty session of users
    // stored before sessions existed); an impersonation token also names the
    // admin (`act`) and its session (`imp`); an external provider's carry
    // its own subject, so those users are found by email.
    let principal = match claims.sub.parse::<u64>() {
        Ok(id) if claims.issued_by_quper => {
            let session = claims.sid.as_deref().unwrap_or_default();
            match (&claims.act, claims.imp.as_deref()) {
                (None, None) => state.app.token_principal(&tenant, id, session, claims.iat).await?,
                (Some(actor), Some(imp)) => {
                    let admin = actor.sub.parse::<u64>().map_err(|_| invalid())?;
                    state
                        .app
                        .impersonation_principal(&tenant, id, session, admin, imp)
                        .await?
                }
                _ => return Err(invalid()),
            }
        }
        Err(_) if claims.issued_by_quper => return Err(invalid()),
        Ok(id) => state.app.principal(&tenant, id).await?,
        Err(_) => {
            let email = claims.email.as_deref().ok_or_else(invalid)?;
            state
                .app
                .principal_by_email(&tenant, email)
                .await?
                .ok_or_else(invalid)?
        }
    };
    // A token names one account: if its email no longer matches (the account
    // was replaced), the token is stale.
    if claims
        .email
        .as_deref()
        .is_some_and(|email| !email.eq_ignore_ascii_case(&principal.email))
    {
        return Err(invalid());
    }
    Ok(principal)
}

async fn basic_principal(state: &AppState, credentials: &str, client: &str) -> ApiResult<Principal> {
    let malformed = || ApiError::unauthenticated("malformed Basic credentials");
    let decoded = STANDARD.decode(credentials).map_err(|_| malformed())?;
    let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (username, password) = decoded.split_once(':').ok_or_else(malformed)?;
    // `tenant/email` names the environment when an email has several.
    let (tenant, email) = match username.split_once('/') {
        Some((tenant, email)) => (Some(tenant), email),
        None => (None, username),
    };
    let user = state.app.check_credentials(email, password, tenant, client).await?;
    Ok(state.app.principal(&user.tenant, user.id).await?)
}
