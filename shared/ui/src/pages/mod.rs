//! The pages, one module per area of PagerPal's UI route list, and what every
//! page shares: the layout data, rendering, and errors as HTML pages.
//!
//! Handlers only translate: each reads the signed-in principal
//! ([`crate::session::Signed`]), calls `App` methods (authorisation is
//! theirs: a responder's configuration post is the domain's 403), and
//! renders a template or redirects (post/redirect/get).

pub mod auth;
pub mod config;
pub mod dashboard;
pub mod incidents;
pub mod oncall;
pub mod sync;
pub mod teams;

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use quper_core::DomainError;
use quper_core::identity::Principal;
use quper_core::identity::users::User;
use quper_core::model::Role;
use quper_http::ApiError;

use crate::session::Signed;

/// What the layout shows around every signed-in page.
#[derive(Debug, Clone)]
pub struct Layout {
    pub title: String,
    /// The navigation entry to mark current (`dashboard`, `incidents`, ...).
    pub section: &'static str,
    pub email: String,
    pub tenant: String,
    pub role: &'static str,
    pub csrf: String,
    /// Incident actions (acknowledge, resolve, ...): responders and admins.
    pub can_act: bool,
    /// Configuration forms: admins.
    pub can_configure: bool,
    /// A notice after a post (post/redirect/get carries it as `?notice=`).
    pub notice: Option<String>,
}

impl Layout {
    pub fn new(signed: &Signed, section: &'static str, title: impl Into<String>) -> Layout {
        let principal = &signed.principal;
        Layout {
            title: title.into(),
            section,
            email: principal.email.clone(),
            tenant: principal.tenant().as_str().to_owned(),
            role: role_name(principal.role),
            csrf: signed.csrf.clone(),
            can_act: can_act(principal),
            can_configure: can_configure(principal),
            notice: None,
        }
    }

    /// True on the pages of `section` (the navigation marks it current).
    pub fn is(&self, section: &str) -> bool {
        self.section == section
    }

    pub fn with_notice(mut self, notice: Option<String>) -> Layout {
        self.notice = notice.filter(|n| !n.is_empty()).map(|n| n.chars().take(200).collect());
        self
    }
}

pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::Superadmin => "superadmin",
        Role::Admin => "admin",
        Role::Responder => "responder",
        Role::User => "read-only",
    }
}

/// Whether the page shows incident actions. Only what is shown: the domain
/// decides what is allowed.
pub fn can_act(principal: &Principal) -> bool {
    principal.role >= Role::Responder
}

/// Whether the page shows configuration forms.
pub fn can_configure(principal: &Principal) -> bool {
    principal.role >= Role::Admin
}

/// A resource id from a URL segment: digits only (no sign, no space, no
/// exponent), else the page does not exist (never axum's plain-text 400).
pub fn resource_id(segment: &str) -> Result<u64, PageError> {
    if segment.is_empty() || segment.len() > 20 || !segment.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PageError::not_found());
    }
    segment.parse().map_err(|_| PageError::not_found())
}

/// How a page names a person: the full name, else the email.
pub fn display_name(user: &User) -> String {
    if user.full_name.trim().is_empty() {
        user.email.clone()
    } else {
        user.full_name.clone()
    }
}

/// A message with its first letter in capitals, ending with a full stop.
pub fn capitalise(message: &str) -> String {
    let mut chars = message.trim().chars();
    let mut text = match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    };
    if !text.is_empty() && !text.ends_with(['.', '!', '?']) {
        text.push('.');
    }
    text
}

/// A 422 page for a form field that breaks its rules.
pub fn invalid(message: impl Into<String>) -> PageError {
    PageError::new(StatusCode::UNPROCESSABLE_ENTITY, message)
}

/// A rendered page with another status (a form shown again with its
/// error); a page that failed to render keeps its 500.
pub fn render_with_status(template: &impl Template, status: StatusCode) -> Response {
    let mut response = render(template);
    if response.status() == StatusCode::OK {
        *response.status_mut() = status;
    }
    response
}

/// Renders a template as a page (or a partial).
pub fn render(template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => Html(html).into_response(),
        Err(err) => {
            tracing::error!(error = %err, "template failed to render");
            PageError::new(StatusCode::INTERNAL_SERVER_ERROR, "the page could not be shown").into_response()
        }
    }
}

/// A failure shown as an HTML page, never a stack trace: the status and a
/// message a person can act on.
#[derive(Debug, Clone)]
pub struct PageError {
    pub status: StatusCode,
    pub message: String,
    pub retry_after: Option<u64>,
}

impl PageError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> PageError {
        PageError {
            status,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn not_found() -> PageError {
        PageError::new(StatusCode::NOT_FOUND, "There is no such page.")
    }

    pub fn csrf() -> PageError {
        PageError::new(
            StatusCode::FORBIDDEN,
            "The form was refused: its security token is missing or out of date. Reload the page and try again.",
        )
    }

    pub fn unavailable(message: impl Into<String>) -> PageError {
        PageError::new(StatusCode::SERVICE_UNAVAILABLE, message)
    }
}

impl From<ApiError> for PageError {
    fn from(error: ApiError) -> PageError {
        PageError {
            status: error.status,
            message: error.message,
            retry_after: error.retry_after,
        }
    }
}

impl From<DomainError> for PageError {
    fn from(error: DomainError) -> PageError {
        PageError::from(ApiError::from(error))
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    status: u16,
    reason: &'a str,
    message: &'a str,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let page = ErrorPage {
            status: self.status.as_u16(),
            reason: self.status.canonical_reason().unwrap_or("Error"),
            message: &self.message,
        };
        let html = page
            .render()
            .unwrap_or_else(|_| "<!doctype html><title>Error</title>".to_owned());
        let mut response = (self.status, Html(html)).into_response();
        if let Some(seconds) = self.retry_after
            && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

/// A page's result.
pub type PageResult = Result<Response, PageError>;

/// Formats a time for people: `2026-11-30 17:04 UTC`.
pub fn when(time: &chrono::DateTime<chrono::Utc>) -> String {
    time.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// A redirect after a post, with a notice the next page shows.
pub fn see_other(path: &str, notice: &str) -> Response {
    let separator = if path.contains('?') { '&' } else { '?' };
    let target = format!("{path}{separator}notice={}", crate::session::encode_component(notice));
    axum::response::Redirect::to(&target).into_response()
}
