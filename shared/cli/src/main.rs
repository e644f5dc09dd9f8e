//! `quper`: run Quper locally and do operator jobs. See `quper --help`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};
use quper::admin;
use quper::host::{self, LocalHost};
use quper::log_sink::{FlushOnDrop, LogSink};
use quper_core::Store;
use quper_core::model::Role;
use quper_core::ports::{Delivery, Notice, SendFailure, Sender, Table};
use quper_http::HttpConfig;

/// mimalloc rather than glibc's malloc: under an alert storm the host
/// allocates on several threads at once, where glibc's arenas cost a tenth
/// of its CPU (docs/performance.md, 2026-12-02).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "quper", version, about = "Quper: alerting, on-call and incidents")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve every route group on one port with the timer, delivery and
    /// sweep workers, on the embedded store or a DynamoDB table.
    Serve {
        #[arg(long, env = "QUPER_ADDR", default_value = "127.0.0.1:8000")]
        addr: SocketAddr,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Manage accounts from the command line.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Print a bearer token for an existing user.
    Token {
        #[arg(long)]
        email: String,
        #[arg(long, default_value = admin::DEFAULT_TENANT)]
        tenant: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Print the OpenAPI document of every route (what `/openapi.json` serves).
    Openapi,
    /// Manage the DynamoDB table.
    Table {
        #[command(subcommand)]
        command: TableCommand,
    },
    /// Write a deterministic Cost and Usage Report sample (the files AWS
    /// writes) into a folder, for the local analytics engine
    /// (`QUPER_CUR_DIR`) or an Athena table.
    CurSample {
        /// The folder to write into (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// Line items.
        #[arg(long, default_value_t = 1000)]
        rows: usize,
        /// Days of usage, ending the day before --end.
        #[arg(long, default_value_t = 30)]
        days: u32,
        /// `legacy` (gzip CSV, `lineItem/UnblendedCost` headers) or `cur2`
        /// (CUR 2.0 CSV, `line_item_unblended_cost` headers).
        #[arg(long, value_enum, default_value = "legacy")]
        format: CurFormat,
        /// The first day after the sample (YYYY-MM-DD); default today (UTC).
        #[arg(long)]
        end: Option<chrono::NaiveDate>,
    },
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum CurFormat {
    Legacy,
    Cur2,
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create an account with a password (and its environment if new).
    Create {
        #[arg(long)]
        email: String,
        /// Read from QUPER_ADMIN_PASSWORD to keep it out of shell history.
        #[arg(long, env = "QUPER_ADMIN_PASSWORD", hide_env_values = true)]
        password: String,
        #[arg(long, default_value = "Administrator")]
        full_name: String,
        #[arg(long, default_value = admin::DEFAULT_TENANT)]
        tenant: String,
        #[arg(long, value_enum, default_value = "superadmin")]
        role: RoleArg,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Subcommand)]
enum TableCommand {
    /// Create the single table (PK/SK, GSI1, GSI2, TTL on `ttl`).
    Create {
        #[arg(long, env = "QUPER_TABLE_NAME")]
        table_name: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum RoleArg {
    Superadmin,
    Admin,
    Responder,
    User,
}

impl From<RoleArg> for Role {
    fn from(role: RoleArg) -> Role {
        match role {
            RoleArg::Superadmin => Role::Superadmin,
            RoleArg::Admin => Role::Admin,
            RoleArg::Responder => Role::Responder,
            RoleArg::User => Role::User,
        }
    }
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum StoreKind {
    Local,
    Dynamodb,
}

#[derive(clap::Args)]
struct StoreArgs {
    /// `local` (the data directory) or `dynamodb` (QUPER_TABLE_NAME).
    #[arg(long, env = "QUPER_STORE", value_enum, default_value = "local")]
    store: StoreKind,
    #[arg(long, env = "QUPER_DATA_DIR", default_value = "./.quper")]
    data_dir: PathBuf,
    #[arg(long, env = "QUPER_TABLE_NAME")]
    table_name: Option<String>,
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// The host on the store the arguments name, sending through `sender`.
async fn open_host(args: &StoreArgs, sender: Arc<dyn Sender>) -> Result<LocalHost, String> {
    match args.store {
        StoreKind::Local => LocalHost::open(&args.data_dir, env_var, host::system_clock(), sender),
        StoreKind::Dynamodb => {
            let name = args
                .table_name
                .clone()
                .ok_or("QUPER_TABLE_NAME (or --table-name) is required with --store dynamodb")?;
            let table: Arc<dyn Table> = Arc::new(quper_store_aws::DynamoTable::from_env(name).await);
            LocalHost::on_table(table, &args.data_dir, env_var, host::system_clock(), sender)
        }
    }
    .map_err(|e| e.to_string())
}

/// The store and HTTP settings for the operator commands, which send nothing.
async fn open_store(args: &StoreArgs) -> Result<(Store, HttpConfig), String> {
    let host = open_host(args, Arc::new(SendsNothing)).await?;
    Ok((host.store().clone(), host.config))
}

/// The sender of operator commands: they page nobody.
struct SendsNothing;

#[async_trait::async_trait]
impl Sender for SendsNothing {
    async fn send(&self, _: &Delivery, _: &Notice) -> Result<Option<String>, SendFailure> {
        Err(SendFailure::Retryable(
            "operator commands send nothing; the host's workers do".into(),
        ))
    }
}

/// Log lines go to stderr through a [`LogSink`]: info lines (the access
/// log) in batches, warnings and errors at once. Returns the sink, to flush
/// at exit; a panic flushes it before its message.
fn init_tracing() -> LogSink {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let sink = LogSink::new(std::io::stderr());
    // Colour codes only for a terminal: a log file or a collector gets
    // plain lines (and formatting them cost a tenth of the logging).
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(sink.clone());
    let _ = if env_var("QUPER_LOG_FORMAT").as_deref() == Some("json") {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    let on_panic = sink.clone();
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        on_panic.flush();
        previous(info);
    }));
    sink
}

async fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Serve { addr, store } => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| format!("bind {addr}: {e}"))?;
            let bound = listener.local_addr().map_err(|e| e.to_string())?;
            let sender = host::provider_sender(bound).await.map_err(|e| e.to_string())?;
            let local = open_host(&store, sender).await?;
            host::bootstrap_from(env_var, &local.app)
                .await
                .map_err(|e| e.to_string())?;
            host::serve(listener, &local).await.map_err(|e| e.to_string())
        }
        Command::Admin {
            command:
                AdminCommand::Create {
                    email,
                    password,
                    full_name,
                    tenant,
                    role,
                    store,
                },
        } => {
            let (store, _) = open_store(&store).await?;
            let user = admin::create_admin(&store, &tenant, &email, &password, &full_name, role.into())
                .await
                .map_err(|e| e.to_string())?;
            println!(
                "{}",
                serde_json::json!({ "id": user.id, "email": user.email, "tenant": user.tenant, "role": user.role })
            );
            Ok(())
        }
        Command::Token { email, tenant, store } => {
            let (store, config) = open_store(&store).await?;
            let token = admin::mint_token(&store, &config, &tenant, &email)
                .await
                .map_err(|e| e.to_string())?;
            println!("{}", serde_json::to_string(&token).map_err(|e| e.to_string())?);
            Ok(())
        }
        Command::Openapi => {
            let document = quper_http::routes::docs::document();
            println!("{}", serde_json::to_string_pretty(document).map_err(|e| e.to_string())?);
            Ok(())
        }
        Command::Table {
            command: TableCommand::Create { table_name },
        } => {
            let client = quper_store_aws::client_from_env().await;
            quper_store_aws::create_table(&client, &table_name)
                .await
                .map_err(|e| e.to_string())?;
            println!("{}", serde_json::json!({ "table": table_name, "status": "created" }));
            Ok(())
        }
        Command::CurSample {
            out,
            rows,
            days,
            format,
            end,
        } => {
            use quper_store_local::analytics::sample::{SampleFormat, SampleOptions, write_sample};
            if days == 0 {
                return Err("--days must be at least 1".into());
            }
            let options = SampleOptions {
                rows,
                days,
                end: end.unwrap_or_else(|| chrono::Utc::now().date_naive()),
                format: match format {
                    CurFormat::Legacy => SampleFormat::Legacy,
                    CurFormat::Cur2 => SampleFormat::Cur2,
                },
            };
            let path = write_sample(&out, &options).map_err(|e| format!("writing into {}: {e}", out.display()))?;
            println!(
                "{}",
                serde_json::json!({ "file": path.display().to_string(), "rows": rows, "days": days, "end": options.end.to_string() })
            );
            Ok(())
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let sink = init_tracing();
    let _flush = FlushOnDrop(sink.clone());
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            sink.flush();
            eprintln!("quper: {message}");
            ExitCode::FAILURE
        }
    }
}
