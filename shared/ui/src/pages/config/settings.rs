//! `/settings`: the safe configuration and the health of the background
//! workers. Safe means no secret, ever: a secret setting shows only whether
//! it is configured; providers show their name and whether they are
//! configured, never a key, token or URL.

use askama::Template;
use axum::extract::State;
use chrono::{DateTime, Utc};
use quper_core::jobs::{JobStatus, SILENT_AFTER};
use quper_core::oncall::escalation::OVERDUE_AFTER;
use quper_http::AppState;

use crate::pages::{Layout, PageResult, render, when};
use crate::session::Signed;

/// One setting: a label and a value that is no secret.
pub struct Setting {
    pub label: &'static str,
    pub value: String,
}

fn setting(label: &'static str, value: impl Into<String>) -> Setting {
    Setting {
        label,
        value: value.into(),
    }
}

/// A group of settings under a heading.
pub struct Group {
    pub id: &'static str,
    pub title: &'static str,
    pub settings: Vec<Setting>,
}

/// A notification provider: its name and whether it is configured.
pub struct ProviderRow {
    pub name: &'static str,
    pub channel: &'static str,
    pub configured: bool,
}

/// One background worker's health.
pub struct WorkerRow {
    pub name: &'static str,
    pub label: &'static str,
    pub last_run: String,
    pub pending: String,
    pub pending_all: Option<u64>,
    pub overdue: bool,
    pub why: String,
}

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    layout: Layout,
    groups: Vec<Group>,
    providers: Option<Vec<ProviderRow>>,
    workers: Vec<WorkerRow>,
    any_pending_all: bool,
}

fn configured(yes: bool) -> &'static str {
    if yes { "configured" } else { "not configured" }
}

/// `3600` seconds as `1 h`, `90` as `1 min 30 s`.
fn seconds_text(seconds: u64) -> String {
    let (hours, minutes, secs) = (seconds / 3600, (seconds % 3600) / 60, seconds % 60);
    let mut parts = Vec::new();
    if hours > 0 {
        parts.push(format!("{hours} h"));
    }
    if minutes > 0 {
        parts.push(format!("{minutes} min"));
    }
    if secs > 0 || parts.is_empty() {
        parts.push(format!("{secs} s"));
    }
    parts.join(" ")
}

fn worker_row(job: &JobStatus) -> WorkerRow {
    let last_run = job
        .last_run
        .as_ref()
        .and_then(|v| serde_json::from_value::<DateTime<Utc>>(v.clone()).ok());
    let (label, silent_rule) = match job.name {
        "escalation" => ("Escalation timers (pages the next level)", false),
        "notification_retry" => ("Notification delivery and retry sweep", true),
        _ => ("Background job", false),
    };
    let mut why = Vec::new();
    if let Some(late) = job.late.filter(|n| *n > 0) {
        let grace = if silent_rule {
            "queued over 2 minutes".to_owned()
        } else {
            format!("over {} min past due", OVERDUE_AFTER.num_minutes())
        };
        why.push(format!("{late} late ({grace})"));
    }
    if silent_rule && job.overdue && job.late.unwrap_or(0) == 0 {
        why.push(match last_run {
            Some(_) => format!(
                "no run for over {} min (it runs every minute)",
                SILENT_AFTER.num_minutes()
            ),
            None => "has not run yet (it runs every minute)".to_owned(),
        });
    }
    WorkerRow {
        name: job.name,
        label,
        last_run: last_run.as_ref().map_or_else(|| "never".to_owned(), when),
        pending: job.pending.map_or_else(|| "unknown".to_owned(), |n| n.to_string()),
        pending_all: job.pending_all_environments,
        overdue: job.overdue,
        why: why.join("; "),
    }
}

/// `GET /settings`.
pub async fn settings(State(state): State<AppState>, signed: Signed) -> PageResult {
    let app = &state.app;
    let caller = &signed.principal;
    let jobs = app.jobs_status(caller).await?;
    let providers = app.notification_providers(caller)?;
    let core = app.settings();
    let config = &state.config;
    let jwt = &config.jwt;
    let cors = if !config.cors_origins.is_enabled() {
        "none (browsers on other sites may not call the API)".to_owned()
    } else if config.cors_origins.allows_any() {
        "any origin".to_owned()
    } else {
        config.cors_origins.listed().join(", ")
    };
    let cookie_secure = match config.session_cookie_secure {
        Some(true) => "always",
        Some(false) => "never",
        None => "automatic (off only for plain HTTP to this machine)",
    };
    let algorithms: Vec<String> = jwt.algorithms.iter().map(|a| format!("{a:?}")).collect();
    let groups = vec![
        Group {
            id: "environment",
            title: "Environment and versions",
            settings: vec![
                setting("Environment id", caller.tenant().as_str()),
                setting("Your role", crate::pages::role_name(caller.role)),
                setting("Quper", env!("CARGO_PKG_VERSION")),
                setting("htmx", crate::assets::HTMX_VERSION),
            ],
        },
        Group {
            id: "sign-in",
            title: "Sign-in and sessions",
            settings: vec![
                setting(
                    "Web session lifetime",
                    seconds_text(u64::from(core.web_session_seconds)),
                ),
                setting("Secure session cookie", cookie_secure),
                setting(
                    "Failed sign-ins allowed per account and client, each minute",
                    core.login_max_failures.to_string(),
                ),
                setting(
                    "Failed sign-ins allowed per client address, each minute",
                    core.login_max_failures_per_client.to_string(),
                ),
                setting("Session signing secret", configured(config.session_secret.is_some())),
            ],
        },
        Group {
            id: "api",
            title: "API",
            settings: vec![
                setting(
                    "Token signing secret (Quper issues tokens)",
                    configured(jwt.secret.is_some()),
                ),
                setting("Token lifetime", seconds_text(jwt.ttl.as_secs())),
                setting("Accepted token algorithms", algorithms.join(", ")),
                setting(
                    "External identity provider keys (JWKS)",
                    configured(jwt.jwks_url.is_some()),
                ),
                setting("Required token issuer", configured(jwt.issuer.is_some())),
                setting("Required token audience", configured(jwt.audience.is_some())),
                setting("Largest request body", format!("{} KiB", config.max_body_bytes / 1024)),
                setting("Browser origins allowed (CORS)", cors),
            ],
        },
        Group {
            id: "notifications",
            title: "Notifications",
            settings: vec![
                setting("Attempts per notification", core.notify_max_attempts.to_string()),
                setting(
                    "Infobip delivery receipt token",
                    configured(config.infobip_receipt_token.is_some()),
                ),
                setting("Key sealing credentials at rest", "configured"),
            ],
        },
    ];
    let workers: Vec<WorkerRow> = jobs.jobs.iter().map(worker_row).collect();
    let page = SettingsPage {
        layout: Layout::new(&signed, "settings", "Settings"),
        groups,
        providers: providers.map(|list| {
            list.into_iter()
                .map(|p| ProviderRow {
                    name: p.name,
                    channel: p.channel.as_str(),
                    configured: p.configured,
                })
                .collect()
        }),
        any_pending_all: workers.iter().any(|w| w.pending_all.is_some()),
        workers,
    };
    Ok(render(&page))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(seconds_text(43_200), "12 h");
        assert_eq!(seconds_text(90), "1 min 30 s");
        assert_eq!(seconds_text(0), "0 s");
    }
}
