//! The host: one process, every route group, on the embedded store or a DynamoDB table.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use quper_core::app::SECRETS_KEY_ENV;
use quper_core::model::TenantId;
use quper_core::notifications::queue::TableQueue;
use quper_core::oncall::escalation::SWEEP_EVERY;
use quper_core::ports::{Clock, Sender, SystemClock, Table};
use quper_core::realtime::hub::LocalHub;
use quper_core::secrets::SecretsKey;
use quper_core::{App, DomainError, Ports, Settings, Store};
use quper_http::{AppState, HttpConfig};
use quper_notify::{InfobipSms, OutboundGuard, ProviderSender, Providers, SlackBot, email_from_env};
use quper_store_local::analytics::LocalWarehouse;
use quper_store_local::objects::FILES_DIR_ENV;
use quper_store_local::{LocalObjects, Remember, SqliteOptions, SqliteTable, TableTimers, TimerSchedules};
use tokio::sync::watch;

use crate::admin;
use crate::workers::{self, PURGE_EVERY, run_delivery_worker, run_purger, run_sweeper};

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

/// The file of the embedded store inside the data directory.
pub const DATABASE_FILE: &str = "quper.db";
/// The folder of Cost and Usage Report files the local analytics engine
/// reads (default `<data dir>/cur`, created when missing).
pub const CUR_DIR_ENV: &str = "QUPER_CUR_DIR";
/// Where the generated HS256 secret is kept when `QUPER_JWT_SECRET` is unset.
pub const JWT_SECRET_FILE: &str = "jwt-secret";
/// Where the generated secrets key is kept when `QUPER_SECRETS_KEY` is unset.
pub const SECRETS_KEY_FILE: &str = "secrets-key";
/// The address clients reach the host at (`https://quper.example.com`),
/// for the URLs of local files; unset, the address the host binds.
pub const PUBLIC_URL_ENV: &str = "QUPER_PUBLIC_URL";
/// The operator UI's session-cookie secret, kept when `QUPER_SESSION_SECRET` is unset.
pub const SESSION_SECRET_FILE: &str = "session-secret";

/// An opened host: the application on its table, with the durable timers and
/// notification queue its workers drain, and the settings of its HTTP layer.
pub struct LocalHost {
    pub app: App,
    pub config: HttpConfig,
    /// Durable timers in the table, fired by the timer worker.
    pub timers: TableTimers,
    /// The durable notification queue in the table (the host's `Bus`).
    pub queue: Arc<TableQueue>,
    /// Uploaded files in a directory (`QUPER_FILES_DIR`, default
    /// `<data dir>/files`), served at `/local-files/...`; the application's
    /// `ObjectStore` unless `QUPER_FILES_BUCKET` names an S3 bucket.
    pub objects: LocalObjects,
    /// The WebSocket connections of this host (the application's `Realtime`
    /// port), served at `/api/v1/app/ws`.
    pub hub: LocalHub,
    /// `QUPER_PUBLIC_URL`, when set.
    public_url: Option<String>,
    clock: Arc<dyn Clock>,
}

impl LocalHost {
    /// Opens (creating when needed) the data directory and the embedded
    /// store in it, with settings read through `var`.
    pub fn open(
        data_dir: &Path,
        var: impl Fn(&str) -> Option<String>,
        clock: Arc<dyn Clock>,
        sender: Arc<dyn Sender>,
    ) -> Result<LocalHost, HostError> {
        create_data_dir(data_dir)?;
        let mut options = SqliteOptions::from_env().map_err(|err| HostError::Config(err.to_string()))?;
        // The file is this process's own (see `on_own_table`): the markers
        // read on every alert are answered from memory the writer keeps true.
        options.remember = Remember::SortKeys(vec![quper_core::keys::OPEN_INCIDENT_SK.to_owned()]);
        let table = SqliteTable::open_with(&data_dir.join(DATABASE_FILE), options)
            .map_err(|err| HostError::Store(err.to_string()))?;
        Self::on_own_table(Arc::new(table), data_dir, var, clock, sender)
    }

    /// A host on a table no other process writes to (its own SQLite file):
    /// like [`LocalHost::on_table`], and it may cache what only it can
    /// change, such as accepted alert-source keys
    /// (`quper_core::alerting::key_cache`), and count rate-limit windows in
    /// memory (`quper_core::ratelimit::MemoryWindows`).
    pub fn on_own_table(
        table: Arc<dyn Table>,
        data_dir: &Path,
        var: impl Fn(&str) -> Option<String>,
        clock: Arc<dyn Clock>,
        sender: Arc<dyn Sender>,
    ) -> Result<LocalHost, HostError> {
        Self::build(table, true, data_dir, var, clock, sender)
    }

    /// A host on any table: the DynamoDB table the Lambda functions use, so
    /// Quper runs as a container next to it (several hosts side by side), or
    /// a test's table. The data directory keeps the JWT secret and the
    /// secrets key when `QUPER_JWT_SECRET` and `QUPER_SECRETS_KEY` are unset
    /// (hosts sharing a table must share both).
    pub fn on_table(
        table: Arc<dyn Table>,
        data_dir: &Path,
        var: impl Fn(&str) -> Option<String>,
        clock: Arc<dyn Clock>,
        sender: Arc<dyn Sender>,
    ) -> Result<LocalHost, HostError> {
        Self::build(table, false, data_dir, var, clock, sender)
    }

    fn build(
        table: Arc<dyn Table>,
        only_writer: bool,
        data_dir: &Path,
        var: impl Fn(&str) -> Option<String>,
        clock: Arc<dyn Clock>,
        sender: Arc<dyn Sender>,
    ) -> Result<LocalHost, HostError> {
        let secret = match var("QUPER_JWT_SECRET").filter(|s| !s.is_empty()) {
            Some(secret) => secret,
            None => {
                create_data_dir(data_dir)?;
                local_jwt_secret(data_dir)?
            }
        };
        let secrets_key = match var(SECRETS_KEY_ENV).filter(|s| !s.is_empty()) {
            Some(key) => key,
            None => {
                create_data_dir(data_dir)?;
                kept_secret(data_dir, SECRETS_KEY_FILE, 64, SecretsKey::generate)?
            }
        };
        let session_secret = match var("QUPER_SESSION_SECRET").filter(|s| !s.is_empty()) {
            Some(secret) => secret,
            None => {
                create_data_dir(data_dir)?;
                kept_secret(data_dir, SESSION_SECRET_FILE, 32, || quper_core::auth::random_hex(32))?
            }
        };
        let lookup = |name: &str| match name {
            "QUPER_JWT_SECRET" => Some(secret.clone()),
            "QUPER_SESSION_SECRET" => Some(session_secret.clone()),
            SECRETS_KEY_ENV => Some(secrets_key.clone()),
            other => var(other),
        };
        let config = HttpConfig::from_lookup(lookup).map_err(|err| HostError::Config(err.to_string()))?;
        let mut settings = Settings::from_lookup(lookup).map_err(|err| HostError::Config(err.to_string()))?;
        if only_writer {
            settings.source_key_cache = Some(quper_core::alerting::key_cache::LOCAL_HOST_TTL);
            settings.rate_windows_in_memory = true;
        }
        let timers = TableTimers::new(table.clone());
        let queue = Arc::new(TableQueue::new(table.clone(), clock.clone()));
        let cur_dir = cur_dir(data_dir, &var)?;
        let schedules = TimerSchedules::new(Arc::new(timers.clone()), clock.clone());
        let public_url = var(PUBLIC_URL_ENV).filter(|url| !url.trim().is_empty());
        let files_dir = match var(FILES_DIR_ENV).filter(|dir| !dir.trim().is_empty()) {
            Some(dir) => PathBuf::from(dir),
            None => {
                create_data_dir(data_dir)?;
                data_dir.join("files")
            }
        };
        let objects = LocalObjects::new(
            &files_dir,
            &secrets_key,
            clock.clone(),
            public_url.as_deref().unwrap_or("http://localhost:8080"),
        )
        .map_err(|source| HostError::DataDir {
            path: files_dir.clone(),
            source,
        })?;
        let object_store: Arc<dyn quper_core::ports::ObjectStore> =
            match var(quper_store_aws::FILES_BUCKET_ENV).filter(|bucket| !bucket.trim().is_empty()) {
                Some(bucket) => Arc::new(quper_store_aws::S3Objects::new(
                    bucket.trim(),
                    var(quper_store_aws::S3_ENDPOINT_ENV),
                    clock.clone(),
                )),
                None => Arc::new(objects.clone()),
            };
        let hub = LocalHub::new();
        let ports = Ports {
            table,
            clock: clock.clone(),
            timers: Arc::new(timers.clone()),
            schedules: Arc::new(schedules),
            bus: queue.clone(),
            sender,
            analytics: Arc::new(LocalWarehouse::new(cur_dir)),
            objects: object_store,
            ai: quper_integrations::ai_from_env(&var),
            billing: quper_integrations::billing_from_env(&var),
            realtime: Arc::new(hub.clone()),
        };
        Ok(LocalHost {
            app: App::new(ports, settings),
            config,
            timers,
            queue,
            objects,
            hub,
            public_url,
            clock,
        })
    }

    pub fn store(&self) -> &Store {
        self.app.store()
    }

    /// The HTTP state of this host.
    pub fn state(&self) -> AppState {
        AppState::new(self.app.clone(), self.config.clone())
    }

    /// Every route group and the operator UI's pages, merged, on this host's
    /// application, with the WebSocket endpoint on the host's hub
    /// ([`quper_http::ws`]: not a route group, an API Gateway WebSocket API
    /// on AWS); in front of them, the file server of local uploads
    /// ([`crate::local_files`]).
    pub fn router(&self) -> Router {
        let routes = quper_http::routes::all().merge(quper_http::ws::router(self.hub.clone()));
        crate::local_files::router(self.objects.clone()).fallback_service(quper_ui::app(routes, self.state()))
    }

    /// Tells the local file store the address clients reach this host at
    /// (`http://127.0.0.1:8080`), unless `QUPER_PUBLIC_URL` named one.
    pub fn serving_at(&self, base_url: &str) {
        if self.public_url.is_none() {
            self.objects.set_base_url(base_url);
        }
    }

    /// Fires due timers until `shutdown` turns true.
    pub fn spawn_timer_worker(&self, shutdown: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
        workers::spawn_timer_worker(self.app.clone(), self.timers.clone(), self.clock.clone(), shutdown)
    }
}

/// Creates the data directory readable by the owner only (0700): it holds
/// the store, the JWT secret and the secrets key. A directory that exists is
/// left as it is (it may be shared on purpose, e.g. a mounted volume), with a
/// warning when others may read it; the files in it are 0600 either way.
/// The CUR directory (`QUPER_CUR_DIR`, default `<data dir>/cur`), created
/// when missing.
fn cur_dir(data_dir: &Path, var: &impl Fn(&str) -> Option<String>) -> Result<PathBuf, HostError> {
    let dir = match var(CUR_DIR_ENV).filter(|dir| !dir.trim().is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => {
            create_data_dir(data_dir)?;
            data_dir.join("cur")
        }
    };
    // Cost data is private like the rest of the data directory: a new
    // folder is created 0700 (an existing one is left as it is).
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(&dir).map_err(|source| HostError::DataDir {
        path: dir.clone(),
        source,
    })?;
    Ok(dir)
}

fn create_data_dir(data_dir: &Path) -> Result<(), HostError> {
    let error = |source| HostError::DataDir {
        path: data_dir.to_owned(),
        source,
    };
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        if !data_dir.exists() {
            builder.mode(0o700).create(data_dir).map_err(error)?;
            // The mode given to mkdir is narrowed by the umask, never widened;
            // set it exactly.
            return std::fs::set_permissions(data_dir, std::fs::Permissions::from_mode(0o700)).map_err(error);
        }
        let mode = std::fs::metadata(data_dir).map_err(error)?.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(path = %data_dir.display(), mode = format!("{:o}", mode & 0o777), "the data directory is open to other users; its files are not (0600), but consider chmod 700");
        }
    }
    builder.create(data_dir).map_err(error)
}

/// The HS256 secret kept in the data directory, generated on first use and
/// readable by the owner only.
fn local_jwt_secret(data_dir: &Path) -> Result<String, HostError> {
    kept_secret(data_dir, JWT_SECRET_FILE, 32, || quper_core::auth::random_hex(32))
}

/// A secret kept in the file `name` of the data directory: read when it is
/// there (at least `min_len` characters), else made by `generate` and written
/// readable by the owner only.
fn kept_secret(
    data_dir: &Path,
    name: &str,
    min_len: usize,
    generate: impl FnOnce() -> String,
) -> Result<String, HostError> {
    let path = data_dir.join(name);
    let io_error = |source| HostError::DataDir {
        path: path.clone(),
        source,
    };
    match std::fs::read_to_string(&path) {
        Ok(secret) if secret.trim().len() >= min_len => return Ok(secret.trim().to_owned()),
        Ok(_) => {
            return Err(HostError::Config(format!(
                "{} holds fewer than {min_len} characters",
                path.display()
            )));
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(io_error(err)),
    }
    let secret = generate();
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
/// has no `default` environment yet. FinOps of that environment is set up on
/// the host's CUR directory (`QUPER_CUR_DIR`, the folder `.` of the local
/// engine), so its sync jobs run and the costs of whatever CUR files are
/// put there show without a settings call.
pub async fn bootstrap_from(var: impl Fn(&str) -> Option<String>, app: &App) -> Result<(), HostError> {
    let (Some(email), Some(password)) = (var("QUPER_BOOTSTRAP_EMAIL"), var("QUPER_BOOTSTRAP_PASSWORD")) else {
        return Ok(());
    };
    match admin::bootstrap(app.store(), &email, &password).await {
        Ok(true) => {
            tracing::info!(%email, "bootstrapped environment default and its superadmin");
            set_up_finops(app, &email)
                .await
                .map_err(|err| HostError::Config(format!("bootstrap: FinOps on the CUR directory: {err}")))?;
        }
        Ok(false) => tracing::debug!("environment default exists; bootstrap skipped"),
        Err(err) => return Err(HostError::Config(format!("bootstrap: {err}"))),
    }
    Ok(())
}

/// FinOps of the bootstrapped environment on the host's CUR directory, set
/// up as its superadmin (the same operation as `PUT /api/v1/finops/settings`).
async fn set_up_finops(app: &App, email: &str) -> quper_core::DomainResult<()> {
    let tenant = TenantId::parse(admin::DEFAULT_TENANT).map_err(|err| DomainError::Internal(err.to_string()))?;
    let id = quper_core::identity::users::id_by_email(app.store(), &tenant, email)
        .await?
        .ok_or_else(|| DomainError::not_found("User", email))?;
    let admin = app.principal(&tenant, id).await?;
    let input = quper_core::finops::settings::FinopsSettingsInput {
        database: None,
        table: None,
        workgroup: None,
        folder: Some(".".into()),
        anomaly: None,
    };
    app.save_finops_settings(&admin, input).await?;
    Ok(())
}

/// Serves every route group of `host` on `listener`, with its timer worker,
/// delivery worker, sweeper and purger, until SIGINT or SIGTERM; then drains
/// in-flight requests and stops the workers.
pub async fn serve(listener: tokio::net::TcpListener, host: &LocalHost) -> Result<(), HostError> {
    let local = listener.local_addr().map_err(HostError::Serve)?;
    let reachable = if local.ip().is_unspecified() {
        format!("http://localhost:{}", local.port())
    } else {
        format!("http://{local}")
    };
    host.serving_at(&reachable);
    let (stop_workers, workers_stopped) = watch::channel(false);
    let timer_worker = host.spawn_timer_worker(workers_stopped.clone());
    let sweeper = tokio::spawn(run_sweeper(host.app.clone(), SWEEP_EVERY, workers_stopped.clone()));
    let purger = tokio::spawn(run_purger(host.app.clone(), PURGE_EVERY, workers_stopped.clone()));
    let delivery_worker = tokio::spawn(run_delivery_worker(
        host.app.clone(),
        host.queue.clone(),
        workers_stopped,
    ));
    tracing::info!(addr = %local, "quper is listening");
    let served = axum::serve(
        listener,
        host.router().into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await
    .map_err(HostError::Serve);
    let _ = stop_workers.send(true);
    let _ = timer_worker.await;
    let _ = delivery_worker.await;
    let _ = sweeper.await;
    let _ = purger.await;
    tracing::info!("quper stopped");
    served
}

/// The providers configured in the environment. Links point at
/// `QUPER_PUBLIC_URL`, or at this host (`addr`) when it is unset.
pub async fn provider_sender(addr: SocketAddr) -> Result<Arc<dyn Sender>, HostError> {
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
