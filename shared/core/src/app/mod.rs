//! The application core: the one entry point of every HTTP handler, Lambda
//! event entry point and local worker.
//!
//! [`App`] owns every port ([`Ports`]: the table, the clock, timers, the
//! notification bus, the sender) and exposes each operation as one method
//! that takes the caller (a [`Principal`], an alert source, or the system for
//! timers and sweeps) and does everything that must follow it: ingesting an
//! alert starts escalation, acknowledging an incident stops its timers and
//! pending reminders, a failed SMS receipt queues the fallback. Callers only
//! translate their input and output; authorisation is checked in the domain
//! functions these methods call, next to the rule each protects.
//!
//! Every port is required to build an `App`, so no entry point can be built
//! that stores an incident but cannot page for it.
//!
//! | file | operations |
//! |---|---|
//! | [`identity`](self::identity) | log in, principals, environments, users, groups, roles, teams, profile |
//! | [`alerting`](self::alerting) | alert sources and keys, alert rules, raw alerts, ingestion |
//! | [`incidents`](self::incidents) | incident list, detail, actions, timeline, notification logs and retries |
//! | [`analytics`](self::analytics) | incident analytics: MTTA, MTTR, counts, pages per person, out-of-hours pages |
//! | [`oncall`](self::oncall) | schedules, entries, timelines, who is on call, escalation policies |
//! | [`notifications`](self::notifications) | channels, contact methods, notification rules, receipts, delivery |
//! | [`finops`](self::finops) | FinOps settings, costs, summary, top movers, anomalies (the sync jobs' bodies: `crate::finops::sync`) |
//! | [`system`](self::system) | timer fires, the sweep, worker status |
//! | [`projects`](self::projects) | a user's own projects |
//! | [`files`](self::files) | uploads through presigned URLs, confirmation, downloads, deletion (usage recorded) |
//! | [`contact`](self::contact) | the public contact form: submit, status, its deliveries' timer fires |
//! | [`admin`](self::admin) | admin jobs (list, retry) and dashboard statistics |
//! | [`sync`](self::sync) | sync jobs: status, trigger, pause and resume, history, runs the schedules fire |
//! | [`audit`](self::audit) | the audit log, impersonation, external identity providers' sign-in |
//! | [`usage`](self::usage) | usage summary, current period with plan limits, trends, daily, breakdown, metrics, admin summary and top users, the limit check |
//! | [`flags`](self::flags) | feature flags: list, create, update, delete, check for a user |
//! | [`provider_users`](self::provider_users) | users identity providers push: Clerk (svix) and Supabase webhook events, applied once |
//! | [`app_stores`](self::app_stores) | Apple App Store and Google Play notifications applied once, a user's store account and purchase links |
//! | [`realtime`](self::realtime) | WebSocket connections: connect, a client frame (subscribe, unsubscribe, message), disconnect, notify a user, an incident change to the `incidents` channel |

mod admin;
mod ai;
mod alerting;
mod analytics;
mod app_stores;
mod audit;
mod billing;
mod contact;
mod files;
mod finops;
mod flags;
mod identity;
mod incidents;
mod notifications;
mod oncall;
mod projects;
mod provider_users;
mod realtime;
mod sync;
mod system;
mod usage;

pub use crate::alerting::sources::KeyRejection;
pub use incidents::RetryCounts;
pub use notifications::ReceiptCounts;

use std::sync::Arc;

use crate::incidents::feed::{IncidentChange, IncidentFeed};
use crate::incidents::model::Incident;
use crate::oncall::escalation::Escalator;
use crate::ports::{Analytics, Bus, Clock, ObjectStore, Schedules, Sender, Table, Timers};
use crate::secrets::{Sealer, SecretsKey};
use crate::store::Store;

/// Every port the application needs; all required.
#[derive(Clone)]
pub struct Ports {
    pub table: Arc<dyn Table>,
    pub clock: Arc<dyn Clock>,
    /// Durable one-shot timers (escalation, acknowledgement timeouts,
    /// delayed notification rules).
    pub timers: Arc<dyn Timers>,
    /// Where notification jobs go.
    pub bus: Arc<dyn Bus>,
    /// Hands messages to providers (only delivery calls it, so adapters may
    /// build their clients on first use).
    pub sender: Arc<dyn Sender>,
    /// The warehouse sync jobs read (Athena; the local engine over CUR
    /// files).
    pub analytics: Arc<dyn Analytics>,
    /// The recurring schedules of sync jobs (EventBridge Scheduler; durable
    /// timers the host's timer worker fires).
    pub schedules: Arc<dyn Schedules>,
    /// Where uploaded files live (S3; a directory the host serves): presigned
    /// URLs, head, delete.
    pub objects: Arc<dyn ObjectStore>,
    /// Language-model providers (OpenAI, Anthropic, Perplexity).
    pub ai: Arc<dyn crate::ports::Ai>,
    /// The payment provider (Stripe).
    pub billing: Arc<dyn crate::ports::Billing>,
    /// WebSocket channels (an in-process hub; API Gateway WebSocket
    /// connections in the table).
    pub realtime: Arc<dyn crate::ports::Realtime>,
}

/// Settings of the domain, read from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Failed logins per account and client a minute
    /// (`QUPER_LOGIN_MAX_FAILURES`, default 5).
    pub login_max_failures: u32,
    /// Failed logins per client address a minute, across accounts
    /// (`QUPER_LOGIN_MAX_FAILURES_PER_CLIENT`, default 20).
    pub login_max_failures_per_client: u32,
    /// Attempts per notification before it is `exhausted`
    /// (`QUPER_NOTIFY_MAX_ATTEMPTS`, default 4).
    pub notify_max_attempts: u32,
    /// Seals credentials at rest (`QUPER_SECRETS_KEY`, 64 hex digits;
    /// required: every function and host of a deployment shares it).
    pub secrets_key: SecretsKey,
    /// How long a web session of the operator UI lasts from sign-in
    /// (`QUPER_SESSION_TTL_SECONDS`, default 12 hours).
    pub web_session_seconds: u32,
    /// The rules of file uploads (`QUPER_FILES_*`).
    pub files: crate::files::FileRules,
    /// The public contact form's settings (`QUPER_CONTACT_*` / `CONTACT_*`,
    /// `ADMIN_EMAIL`; see [`crate::contact::ContactSettings`]).
    pub contact: crate::contact::ContactSettings,
    /// Each plan's usage limits (`QUPER_PLAN_LIMITS`, JSON overrides of the
    /// defaults in `crate::usage::limits`).
    pub plan_limits: crate::usage::PlanLimits,
    /// How long accepted alert-source keys and each tenant's alert rules
    /// are cached; `None` (the default) reads them on every alert. Only a process that is its store's
    /// one writer sets it (`alerting::key_cache`): the local host on its
    /// own SQLite file.
    pub source_key_cache: Option<std::time::Duration>,
    /// Whether rate-limit windows are counted in this process's memory
    /// rather than in the table (default false). Only a process that is its
    /// store's one writer sets it (`ratelimit::MemoryWindows`): the local
    /// host on its own SQLite file.
    pub rate_windows_in_memory: bool,
}

/// A setting that cannot be used; start-up fails with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name}: {message}")]
pub struct SettingError {
    pub name: &'static str,
    pub message: String,
}

/// The variable that holds the secrets key.
pub const SECRETS_KEY_ENV: &str = "QUPER_SECRETS_KEY";

impl Settings {
    /// Reads the settings through `var` (the process environment, or a map
    /// in tests).
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Settings, SettingError> {
        let number = |name: &'static str, default: u32| -> Result<u32, SettingError> {
            match var(name).filter(|text| !text.is_empty()) {
                None => Ok(default),
                Some(text) => text.trim().parse::<u32>().ok().filter(|n| *n >= 1).ok_or(SettingError {
                    name,
                    message: format!("must be a whole number of at least 1, not {text:?}"),
                }),
            }
        };
        let secrets_key = var(SECRETS_KEY_ENV)
            .filter(|text| !text.trim().is_empty())
            .ok_or_else(|| SettingError {
                name: SECRETS_KEY_ENV,
                message: "is required: 64 hex digits (e.g. `openssl rand -hex 32`) that seal credentials at rest"
                    .into(),
            })
            .and_then(|text| {
                SecretsKey::parse(&text).map_err(|message| SettingError {
                    name: SECRETS_KEY_ENV,
                    message,
                })
            })?;
        Ok(Settings {
            login_max_failures: number("QUPER_LOGIN_MAX_FAILURES", 5)?,
            login_max_failures_per_client: number("QUPER_LOGIN_MAX_FAILURES_PER_CLIENT", 20)?,
            notify_max_attempts: number("QUPER_NOTIFY_MAX_ATTEMPTS", 4)?,
            secrets_key,
            web_session_seconds: number("QUPER_SESSION_TTL_SECONDS", 12 * 3600)?,
            files: crate::files::FileRules::from_lookup(&var)
                .map_err(|(name, message)| SettingError { name, message })?,
            contact: crate::contact::ContactSettings::from_lookup(&var)?,
            plan_limits: match var(crate::usage::limits::PLAN_LIMITS_ENV).filter(|text| !text.trim().is_empty()) {
                None => crate::usage::PlanLimits::default(),
                Some(text) => crate::usage::PlanLimits::parse(&text).map_err(|message| SettingError {
                    name: crate::usage::limits::PLAN_LIMITS_ENV,
                    message,
                })?,
            },
            source_key_cache: None,
            rate_windows_in_memory: false,
        })
    }

    /// The failed-login limits these settings ask for.
    pub fn login_limits(&self) -> crate::identity::login_limits::Limits {
        crate::identity::login_limits::Limits {
            per_account: self.login_max_failures,
            per_client: self.login_max_failures_per_client,
        }
    }

    pub fn from_env() -> Result<Settings, SettingError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }
}

/// The application. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct App {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    ports: Ports,
    escalator: Escalator,
    /// Where every incident change this process makes is published.
    feed: IncidentFeed,
    /// Where every sync change this process makes is published (the
    /// environment it happened in).
    sync_feed: tokio::sync::broadcast::Sender<crate::model::TenantId>,
    /// Built on first use: most requests seal nothing, and a cold start
    /// need not set up the cipher.
    sealer: std::sync::OnceLock<Sealer>,
    settings: Settings,
}

impl App {
    pub fn new(ports: Ports, settings: Settings) -> App {
        let mut store = Store::new(ports.table.clone(), ports.clock.clone());
        if let Some(ttl) = settings.source_key_cache {
            store = store.with_writer_caches(ttl);
        }
        if settings.rate_windows_in_memory {
            store = store.with_memory_rate_windows();
        }
        let feed = IncidentFeed::new();
        let escalator = Escalator::new(store.clone(), ports.timers.clone(), ports.bus.clone(), feed.clone());
        App {
            inner: Arc::new(Inner {
                store,
                ports,
                escalator,
                feed,
                sync_feed: tokio::sync::broadcast::channel(64).0,
                sealer: std::sync::OnceLock::new(),
                settings,
            }),
        }
    }

    /// The table and clock, for operator tooling (bootstrap, the CLI) and
    /// tests; handlers use the operations instead.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Now, by the application's clock (tokens are issued at this time).
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.inner.store.now()
    }

    pub fn ports(&self) -> &Ports {
        &self.inner.ports
    }

    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// Seals and opens the credentials the domain keeps.
    fn sealer(&self) -> &Sealer {
        self.inner
            .sealer
            .get_or_init(|| Sealer::new(&self.inner.settings.secrets_key))
    }

    fn escalator(&self) -> &Escalator {
        &self.inner.escalator
    }

    /// Every incident change this process makes from now on (see
    /// [`crate::incidents::feed`]): what live views listen to. Changes made
    /// by other processes on the same table do not arrive here.
    pub fn incident_changes(&self) -> tokio::sync::broadcast::Receiver<IncidentChange> {
        self.inner.feed.subscribe()
    }

    /// How many live views of this process listen to incident changes.
    pub fn incident_listeners(&self) -> usize {
        self.inner.feed.listeners()
    }

    /// Tells live views about an incident write; never waits, never fails.
    fn publish(&self, change: IncidentChange) {
        self.inner.feed.publish(change);
    }

    /// Keeps escalation in line after an incident was opened or changed:
    /// pages, sets or cancels timers and reminders, then tells live views.
    /// Paging problems never undo the change that was stored: they are
    /// logged, and what was due is recorded on the incident, where the sweep
    /// finds it.
    async fn after_incident_change(&self, incident: &Incident) {
        if let Err(err) = self.escalator().after_change(incident).await {
            tracing::error!(error = %err, tenant = %incident.tenant, incident = incident.id, "escalation after an incident change failed; the sweep retries what was due");
        }
        self.publish(IncidentChange::stored(incident));
    }
}
