//! The local host: one process, every route group, the embedded store.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use std::time::Duration;

use axum::Router;
use quper_core::Store;
use quper_core::notifications::queue::{TableQueue, run_delivery_worker};
use quper_core::oncall::escalation::{EscalationTimer, Escalator, SWEEP_EVERY, run_sweeper};
use quper_core::ports::{Clock, Sender, SystemClock, Table, Timer};
use quper_http::{AppState, HttpConfig};
use quper_notify::{InfobipSms, OutboundGuard, ProviderSender, Providers, SlackBot, email_from_env};
use quper_store_local::{SqliteOptions, SqliteTable, TableTimers, run_worker};
use tokio::sync::watch;

use crate::admin;

#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("data directory {path}: {source}")]
    DataDir { path: PathBuf, source: std::io::Error },
    #[error("configuration: {0}")]
    Config(String),
    #[error("store: {0}")]
    Store(String),
    #[error("serve: {0}")]
    Serve(std::io::Error),
}

/// How often the local timer worker looks for due timers.
pub const TIMER_POLL: Duration = Duration::from_millis(250);

/// The file of the embedded store inside the data directory.
pub const DATABASE_FILE: &str = "quper.db";
/// Where the generated HS256 secret is kept when `QUPER_JWT_SECRET` is unset.
pub const JWT_SECRET_FILE: &str = "jwt-secret";

/// An opened local host: its store and the settings of its HTTP layer.
pub struct LocalHost {
    pub store: Store,
    pub config: HttpConfig,
    /// Durable escalation timers in the embedded store.
    pub timers: TableTimers,
    pub escalator: Arc<Escalator>,
    /// The durable notification queue (the local `Bus`).
    pub queue: Arc<TableQueue>,
    clock: Arc<dyn Clock>,
}

impl LocalHost {
    /// Opens (creating when needed) the data directory, with settings read
    /// through `var`.
    pub fn open(
        data_dir: &Path,
        var: impl Fn(&str) -> Option<String>,
        clock: Arc<dyn Clock>,
    ) -> Result<LocalHost, HostError> {
        std::fs::create_dir_all(data_dir).map_err(|source| HostError::DataDir {
            path: data_dir.to_owned(),
            source,
        })?;
        let options = SqliteOptions::from_env().map_err(|err| HostError::Config(err.to_string()))?;
        let table = SqliteTable::open_with(&data_dir.join(DATABASE_FILE), options)
            .map_err(|err| HostError::Store(err.to_string()))?;
        let secret = match var("QUPER_JWT_SECRET").filter(|s| !s.is_empty()) {
            Some(secret) => secret,
            None => local_jwt_secret(data_dir)?,
        };
        let config = HttpConfig::from_lookup(|name| match name {
            "QUPER_JWT_SECRET" => Some(secret.clone()),
            other => var(other),
        })
        .map_err(|err| HostError::Config(err.to_string()))?;
        let table: Arc<dyn Table> = Arc::new(table);
        let clock_for_workers = clock.clone();
        let store = Store::new(table.clone(), clock.clone());
        let timers = TableTimers::new(table.clone());
        let queue = Arc::new(TableQueue::new(table, clock));
        let escalator = Arc::new(Escalator::new(store.clone(), Arc::new(timers.clone()), queue.clone()));
        Ok(LocalHost {
            store,
            config,
            timers,
            escalator,
            queue,
            clock: clock_for_workers,
        })
    }

    /// The HTTP state of this host: every group has the escalator.
    pub fn state(&self) -> AppState {
        AppState::new(self.store.clone(), self.config.clone()).with_escalator(self.escalator.clone())
    }

    /// Fires due escalation timers until `shutdown` turns true.
    pub fn spawn_timer_worker(&self, shutdown: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
        let escalator = self.escalator.clone();
        let handler = move |timer: Timer| {
            let escalator = escalator.clone();
            async move {
                let payload: EscalationTimer =
                    serde_json::from_value(timer.payload).map_err(|err| format!("not an escalation timer: {err}"))?;
                escalator
                    .fire(&payload)
                    .await
                    .map(|_| ())
                    .map_err(|err| err.to_string())
            }
        };
        tokio::spawn(run_worker(
            self.timers.clone(),
            self.clock.clone(),
            TIMER_POLL,
            shutdown,
            handler,
        ))
    }

    /// Every route group, merged, on this host's store.
    pub fn app(&self) -> Router {
        quper_http::app(quper_http::routes::all(), self.state())
    }
}

/// The HS256 secret kept in the data directory, generated on first use and
/// readable by the owner only.
fn local_jwt_secret(data_dir: &Path) -> Result<String, HostError> {
    let path = data_dir.join(JWT_SECRET_FILE);
    let io_error = |source| HostError::DataDir {
        path: path.clone(),
        source,
    };
    match std::fs::read_to_string(&path) {
        Ok(secret) if secret.trim().len() >= 32 => return Ok(secret.trim().to_owned()),
        Ok(_) => {
            return Err(HostError::Config(format!(
                "{} holds fewer than 32 characters",
                path.display()
            )));
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(io_error(err)),
    }
    let secret = quper_core::auth::random_hex(32);
    write_private(&path, &secret).map_err(io_error)?;
    Ok(secret)
}

#[cfg(unix)]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    std::fs::write(path, contents)
}

/// Creates the environment `default` and its superadmin from
/// `QUPER_BOOTSTRAP_EMAIL`/`QUPER_BOOTSTRAP_PASSWORD`, once: when the store
/// has no `default` environment yet.
pub async fn bootstrap_from(var: impl Fn(&str) -> Option<String>, store: &Store) -> Result<(), HostError> {
    let (Some(email), Some(password)) = (var("QUPER_BOOTSTRAP_EMAIL"), var("QUPER_BOOTSTRAP_PASSWORD")) else {
        return Ok(());
    };
    match admin::bootstrap(store, &email, &password).await {
        Ok(true) => tracing::info!(%email, "bootstrapped environment default and its superadmin"),
        Ok(false) => tracing::debug!("environment default exists; bootstrap skipped"),
        Err(err) => return Err(HostError::Config(format!("bootstrap: {err}"))),
    }
    Ok(())
}

/// Serves every route group of `host` on `addr`, with its timer worker,
/// delivery worker and sweeper, until SIGINT or SIGTERM; then drains
/// in-flight requests and stops the workers.
pub async fn serve(addr: SocketAddr, host: &LocalHost) -> Result<(), HostError> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(HostError::Serve)?;
    let local = listener.local_addr().map_err(HostError::Serve)?;
    let sender = local_sender(local).await?;
    let (stop_workers, workers_stopped) = watch::channel(false);
    let timer_worker = host.spawn_timer_worker(workers_stopped.clone());
    let sweeper = tokio::spawn(run_sweeper(
        host.escalator.clone(),
        SWEEP_EVERY,
        workers_stopped.clone(),
    ));
    let delivery_worker = tokio::spawn(run_delivery_worker(
        host.queue.clone(),
        host.store.clone(),
        sender,
        DELIVERY_POLL,
        max_attempts()?,
        workers_stopped,
    ));
    tracing::info!(addr = %local, "quper is listening");
    let served = axum::serve(listener, host.app().into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(HostError::Serve);
    let _ = stop_workers.send(true);
    let _ = timer_worker.await;
    let _ = delivery_worker.await;
    let _ = sweeper.await;
    tracing::info!("quper stopped");
    served
}

/// How often the local delivery worker looks for queued notifications.
pub const DELIVERY_POLL: Duration = Duration::from_millis(250);

/// Attempts per notification before it is `exhausted`
/// (`QUPER_NOTIFY_MAX_ATTEMPTS`, default 4).
fn max_attempts() -> Result<u32, HostError> {
    match std::env::var("QUPER_NOTIFY_MAX_ATTEMPTS") {
        Ok(text) => text
            .parse::<u32>()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| HostError::Config(format!("QUPER_NOTIFY_MAX_ATTEMPTS: cannot use {text:?}"))),
        Err(_) => Ok(4),
    }
}

/// The providers configured in the environment. Locally, links point at this
/// host unless `QUPER_PUBLIC_URL` says otherwise.
async fn local_sender(addr: SocketAddr) -> Result<Arc<dyn Sender>, HostError> {
    let config = |err: quper_notify::ConfigError| HostError::Config(err.to_string());
    let providers = if std::env::var("QUPER_PUBLIC_URL").is_ok() {
        Providers::from_env().await.map_err(config)?
    } else {
        let mut providers = Providers::new(OutboundGuard::from_env(), format!("http://{addr}")).map_err(config)?;
        providers.infobip = InfobipSms::from_env();
        providers.email = email_from_env().await.map_err(config)?;
        providers.slack_bot = SlackBot::from_env();
        providers
    };
    Ok(Arc::new(ProviderSender(providers)))
}

async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
}

/// The system clock, for the real host.
pub fn system_clock() -> Arc<dyn Clock> {
    Arc::new(SystemClock)
}
