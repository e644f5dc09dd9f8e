//! `/login`, `/bootstrap/admin` and `/logout`.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use quper_core::DomainError;
use quper_core::model::{Email, Name, Password};
use quper_http::AppState;
use serde::Deserialize;

use super::{PageResult, capitalise, render};
use crate::session::{
    self, AnonymousForm, CSRF_COOKIE, SESSION_COOKIE, Signed, SignedForm, anonymous_csrf, clear_cookie, cookie,
    local_path, secure_cookies, session_cookie_value, set_cookie,
};

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    csrf: String,
    next: String,
    email: String,
    tenant: String,
    error: Option<String>,
    notice: Option<String>,
    /// First run: the form creates the first administrator instead.
    bootstrap: bool,
    full_name: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    notice: Option<String>,
}

/// The sign-in page (or, on a fresh install, the first-run form). A browser
/// that is signed in already goes where it was going.
pub async fn login_page(
    State(state): State<AppState>,
    signed: Result<Signed, session::SignInFirst>,
    headers: HeaderMap,
    Query(query): Query<LoginQuery>,
) -> PageResult {
    let next = local_path(query.next.as_deref());
    if signed.is_ok() {
        return Ok(Redirect::to(&next).into_response());
    }
    let bootstrap = state.app.bootstrap_open().await?;
    let page = LoginPage {
        csrf: String::new(),
        next,
        email: String::new(),
        tenant: String::new(),
        error: None,
        notice: query.notice.map(|n| n.chars().take(200).collect()),
        bootstrap,
        full_name: String::new(),
    };
    with_csrf_cookie(&state, &headers, StatusCode::OK, page)
}

/// Renders the sign-in page with the browser's pre-sign-in CSRF token (a
/// new `pagerpal_csrf` cookie when it has none).
fn with_csrf_cookie(state: &AppState, headers: &HeaderMap, status: StatusCode, mut page: LoginPage) -> PageResult {
    let secret = session::secret(state)?;
    let existing =
        cookie(headers, CSRF_COOKIE).filter(|nonce| quper_core::identity::web_sessions::is_session_id(nonce));
    let nonce = existing
        .map(str::to_owned)
        .unwrap_or_else(|| quper_core::auth::random_hex(16));
    page.csrf = anonymous_csrf(secret, &nonce);
    let mut response = render(&page);
    *response.status_mut() = status;
    if existing.is_none() {
        let secure = secure_cookies(state, headers);
        response.headers_mut().append(
            header::SET_COOKIE,
            set_cookie(CSRF_COOKIE, &nonce, 12 * 3600, secure, "Strict"),
        );
    }
    Ok(response)
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    tenant: String,
    next: Option<String>,
}

/// Signs in: the same checks and limits as the API's login (a wrong password
/// is a 401, too many a 429 that refuses the right one too).
pub async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    AnonymousForm { form, client, secure }: AnonymousForm<LoginForm>,
) -> PageResult {
    let next = local_path(form.next.as_deref());
    let tenant = Some(form.tenant.trim()).filter(|t| !t.is_empty());
    let refused = |status: StatusCode, message: String| {
        let page = LoginPage {
            csrf: String::new(),
            next: next.clone(),
            email: form.email.clone(),
            tenant: form.tenant.clone(),
            error: Some(message),
            notice: None,
            bootstrap: false,
            full_name: String::new(),
        };
        with_csrf_cookie(&state, &headers, status, page)
    };
    match state
        .app
        .open_web_session(form.email.trim(), &form.password, tenant, &client)
        .await
    {
        Ok(web_session) => signed_in(&state, &web_session, secure, &next),
        Err(DomainError::Unauthenticated(message)) => refused(StatusCode::UNAUTHORIZED, capitalise(&message)),
        Err(DomainError::RateLimited { retry_after }) => {
            let mut response = refused(
                StatusCode::TOO_MANY_REQUESTS,
                format!("Too many failed sign-ins. Try again in {retry_after} seconds."),
            )?;
            if let Ok(value) = retry_after.to_string().parse() {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            Ok(response)
        }
        Err(err) => Err(err.into()),
    }
}

/// The session cookie and the way on.
fn signed_in(
    state: &AppState,
    web_session: &quper_core::identity::web_sessions::WebSession,
    secure: bool,
    next: &str,
) -> PageResult {
    let secret = session::secret(state)?;
    let max_age = (web_session.expires_at - web_session.created_at).num_seconds();
    let mut response = Redirect::to(next).into_response();
    let headers = response.headers_mut();
    headers.append(
        header::SET_COOKIE,
        set_cookie(
            SESSION_COOKIE,
            &session_cookie_value(secret, web_session),
            max_age,
            secure,
            "Lax",
        ),
    );
    headers.append(header::SET_COOKIE, clear_cookie(CSRF_COOKIE, secure));
    Ok(response)
}

#[derive(Debug, Deserialize)]
pub struct BootstrapForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    full_name: String,
    #[serde(default)]
    password: String,
}

/// First run: creates the first administrator and signs them in. Refused
/// (409) once any administrator exists.
pub async fn bootstrap_admin(
    State(state): State<AppState>,
    headers: HeaderMap,
    AnonymousForm { form, client, secure }: AnonymousForm<BootstrapForm>,
) -> PageResult {
    let invalid = |message: String| {
        let page = LoginPage {
            csrf: String::new(),
            next: "/dashboard".into(),
            email: form.email.clone(),
            tenant: String::new(),
            error: Some(message),
            notice: None,
            bootstrap: true,
            full_name: form.full_name.clone(),
        };
        with_csrf_cookie(&state, &headers, StatusCode::UNPROCESSABLE_ENTITY, page)
    };
    let email = match Email::parse(form.email.trim()) {
        Ok(email) => email,
        Err(err) => return invalid(format!("Email: {err}")),
    };
    let full_name = match Name::parse(form.full_name.trim()) {
        Ok(name) => name,
        Err(err) => return invalid(format!("Name: {err}")),
    };
    let password = match Password::parse(&form.password) {
        Ok(password) => password,
        Err(err) => return invalid(format!("Password: {err}")),
    };
    let user = state.app.bootstrap_admin(email, full_name, password).await?;
    let tenant = user.tenant.as_str();
    let web_session = state
        .app
        .open_web_session(&user.email, &form.password, Some(tenant), &client)
        .await?;
    signed_in(&state, &web_session, secure, "/dashboard")
}

#[derive(Template)]
#[template(path = "logout.html")]
struct LogoutPage {
    layout: super::Layout,
}

/// `GET /logout`: a page with the sign-out button (signing out is a post, so
/// another site cannot sign a person out with a link).
pub async fn logout_page(signed: Signed) -> Response {
    render(&LogoutPage {
        layout: super::Layout::new(&signed, "", "Sign out"),
    })
}

#[derive(Debug, Deserialize)]
pub struct Empty {}

/// Signs out: the session is deleted on the server and the cookie cleared.
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    SignedForm { signed, .. }: SignedForm<Empty>,
) -> PageResult {
    state
        .app
        .close_web_session(signed.principal.tenant(), &signed.session.id)
        .await?;
    let secure = secure_cookies(&state, &headers);
    let mut response = Redirect::to("/login?notice=You%20are%20signed%20out.").into_response();
    response
        .headers_mut()
        .append(header::SET_COOKIE, clear_cookie(SESSION_COOKIE, secure));
    Ok(response)
}
