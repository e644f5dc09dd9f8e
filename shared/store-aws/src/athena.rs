//! The `Analytics` port on Amazon Athena ([`AthenaAnalytics`]).
//!
//! A query is `StartQueryExecution` in the source's workgroup (else
//! `QUPER_ATHENA_WORKGROUP`, default `primary`) with the configured output
//! location (`QUPER_ATHENA_OUTPUT_LOCATION`) and the source's database,
//! then `GetQueryExecution` polled with exponential backoff until it ends or
//! the deadline (`QUPER_ATHENA_TIMEOUT_SECONDS`, default 60) passes: a
//! `FAILED` query is [`AnalyticsError::Failed`] with Athena's
//! `StateChangeReason`, a `CANCELLED` one [`AnalyticsError::Cancelled`], one
//! still running at the deadline is stopped and [`AnalyticsError::Timeout`].
//! Rows come from `GetQueryResults`, 1000 a page; the cursor carries the
//! query id and Athena's `NextToken`. Cells are typed by the result's column
//! types, then held to the types the query documents.
//!
//! `DailyCosts` is rendered in SQL both Trino (Athena) and DuckDB (the
//! `ministack` emulator) run, over the columns the CUR table has: they are
//! read once per table with `GetTableMetadata` (cached), so a legacy CUR
//! table (`product_product_name`, `resource_tags_user_<key>` columns) and a
//! CUR 2.0 table (`product` and `resource_tags` maps) both work. The only
//! values in the SQL are dates (from `NaiveDate`) and identifiers checked
//! against `[A-Za-z0-9_]`.

use async_trait::async_trait;
use aws_config::BehaviorVersion;
pub use aws_sdk_athena::Client as AthenaClient;
use aws_sdk_athena::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_athena::types::{QueryExecution, QueryExecutionContext, QueryExecutionState, ResultConfiguration};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use quper_core::ports::analytics::{Analytics, AnalyticsError, AnalyticsQuery, Cell, RowPage, WarehouseSource};
use quper_core::ports::analytics::{DAILY_COSTS_COLUMNS, QUERY_HISTORY_COLUMNS, TABLE_STATS_COLUMNS};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::OnceCell;

/// `s3://...` prefix Athena writes query results under.
pub const ATHENA_OUTPUT_LOCATION_ENV: &str = "QUPER_ATHENA_OUTPUT_LOCATION";
/// Workgroup queries run in when the source names none (default `primary`).
pub const ATHENA_WORKGROUP_ENV: &str = "QUPER_ATHENA_WORKGROUP";
/// Seconds a query may take before it is stopped (default 60).
pub const ATHENA_TIMEOUT_ENV: &str = "QUPER_ATHENA_TIMEOUT_SECONDS";
/// Endpoint URL replacing Athena's (an emulator). Unset or empty means the
/// real service.
pub const ATHENA_ENDPOINT_ENV: &str = "QUPER_ATHENA_ENDPOINT";
/// The Glue catalog Athena's tables are in.
pub const DATA_CATALOG: &str = "AwsDataCatalog";
/// Rows a `GetQueryResults` call answers.
pub const ATHENA_PAGE_SIZE: i32 = 1000;
/// Queries `QueryHistory` looks at, newest first.
const HISTORY_LIMIT: usize = 200;
/// Tables `TableStats` counts.
const TABLE_LIMIT: usize = 50;

/// Where and how queries run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AthenaSettings {
    /// `s3://bucket/prefix/` for query results.
    pub output_location: String,
    /// Workgroup of sources that name none.
    pub workgroup: String,
    /// Deadline of one query.
    pub timeout: Duration,
    /// Endpoint replacing Athena's (emulators), if any.
    pub endpoint: Option<String>,
}

impl AthenaSettings {
    /// The settings from the environment; `None` when
    /// `QUPER_ATHENA_OUTPUT_LOCATION` is unset (no warehouse).
    pub fn from_env() -> Result<Option<Self>, AnalyticsError> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// Like [`AthenaSettings::from_env`], reading variables through `var`.
    /// Empty values count as unset.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, AnalyticsError> {
        let optional = |name: &str| {
            var(name)
                .map(|value| value.trim().to_owned())
                .filter(|value| !value.is_empty())
        };
        let Some(output_location) = optional(ATHENA_OUTPUT_LOCATION_ENV) else {
            return Ok(None);
        };
        if !output_location.starts_with("s3://") {
            return Err(AnalyticsError::NotConfigured(format!(
                "{ATHENA_OUTPUT_LOCATION_ENV} must be an s3:// location"
            )));
        }
        let timeout = match optional(ATHENA_TIMEOUT_ENV) {
            Some(text) => match text.parse::<u64>() {
                Ok(seconds) if seconds > 0 => Duration::from_secs(seconds),
                _ => {
                    return Err(AnalyticsError::NotConfigured(format!(
                        "{ATHENA_TIMEOUT_ENV} must be a whole number of seconds above 0"
                    )));
                }
            },
            None => Duration::from_secs(60),
        };
        Ok(Some(Self {
            output_location: with_slash(output_location),
            workgroup: optional(ATHENA_WORKGROUP_ENV).unwrap_or_else(|| "primary".into()),
            timeout,
            endpoint: optional(ATHENA_ENDPOINT_ENV),
        }))
    }
}

fn with_slash(location: String) -> String {
    if location.ends_with('/') {
        location
    } else {
        format!("{location}/")
    }
}

/// An Athena client configured from the environment (credentials, region),
/// pointed at `endpoint` instead of the service when given.
pub async fn athena_client_with_endpoint(endpoint: Option<String>) -> AthenaClient {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(endpoint) = endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    AthenaClient::new(&loader.load().await)
}

/// The `Analytics` port on Athena. The client is built on first use (a
/// Lambda cold start that runs no query loads no AWS configuration).
pub struct AthenaAnalytics {
    settings: AthenaSettings,
    client: OnceCell<AthenaClient>,
    tables: Mutex<HashMap<(String, String), Arc<TableShape>>>,
}

impl AthenaAnalytics {
    /// The adapter with `settings`, its client built from the environment
    /// (and `settings.endpoint`) on first use.
    pub fn new(settings: AthenaSettings) -> Self {
        Self {
            settings,
            client: OnceCell::new(),
            tables: Mutex::new(HashMap::new()),
        }
    }

    /// The adapter on an existing client.
    pub fn with_client(settings: AthenaSettings, client: AthenaClient) -> Self {
        Self {
            settings,
            client: OnceCell::new_with(Some(client)),
            tables: Mutex::new(HashMap::new()),
        }
    }

    pub fn settings(&self) -> &AthenaSettings {
        &self.settings
    }

    /// The Athena client.
    pub async fn client(&self) -> &AthenaClient {
        self.client
            .get_or_init(|| athena_client_with_endpoint(self.settings.endpoint.clone()))
            .await
    }

    fn workgroup<'a>(&'a self, source: &'a WarehouseSource) -> &'a str {
        source
            .workgroup
            .as_deref()
            .map(str::trim)
            .filter(|w| !w.is_empty())
            .unwrap_or(&self.settings.workgroup)
    }

    /// Runs `sql` (any statement: DDL too) in `database` and waits for it to
    /// end within the deadline; answers the finished execution.
    pub async fn run_statement(&self, source: &WarehouseSource, sql: &str) -> Result<QueryExecution, AnalyticsError> {
        let deadline = Instant::now() + self.settings.timeout;
        let id = self.start(source, sql).await?;
        self.wait(&id, deadline).await
    }

    async fn start(&self, source: &WarehouseSource, sql: &str) -> Result<String, AnalyticsError> {
        let mut context = QueryExecutionContext::builder().catalog(DATA_CATALOG);
        if let Some(database) = source.database.as_deref().map(str::trim).filter(|d| !d.is_empty()) {
            context = context.database(identifier("database", database)?);
        }
        let output = self
            .client()
            .await
            .start_query_execution()
            .query_string(sql)
            .work_group(self.workgroup(source))
            .query_execution_context(context.build())
            .result_configuration(
                ResultConfiguration::builder()
                    .output_location(&self.settings.output_location)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| call_error("StartQueryExecution", e))?;
        output
            .query_execution_id()
            .map(str::to_owned)
            .ok_or_else(|| AnalyticsError::Unavailable("StartQueryExecution answered no query id".into()))
    }

    /// Polls the query with exponential backoff (50 ms doubling to 2 s)
    /// until it ends or the deadline passes (then it is stopped).
    async fn wait(&self, id: &str, deadline: Instant) -> Result<QueryExecution, AnalyticsError> {
        let mut delay = Duration::from_millis(50);
        loop {
            let now = Instant::now();
            if now >= deadline {
                let _ = self
                    .client()
                    .await
                    .stop_query_execution()
                    .query_execution_id(id)
                    .send()
                    .await;
                return Err(AnalyticsError::Timeout(self.settings.timeout.as_secs()));
            }
            let output = self
                .client()
                .await
                .get_query_execution()
                .query_execution_id(id)
                .send()
                .await
                .map_err(|e| call_error("GetQueryExecution", e))?;
            let execution = output
                .query_execution()
                .cloned()
                .ok_or_else(|| AnalyticsError::Unavailable(format!("GetQueryExecution answered nothing for {id}")))?;
            let status = execution.status();
            let reason = status
                .and_then(|s| s.state_change_reason())
                .filter(|r| !r.is_empty())
                .unwrap_or("no reason given")
                .to_owned();
            match status.and_then(|s| s.state()) {
                Some(QueryExecutionState::Succeeded) => return Ok(execution),
                Some(QueryExecutionState::Failed) => return Err(AnalyticsError::Failed(reason)),
                Some(QueryExecutionState::Cancelled) => return Err(AnalyticsError::Cancelled(reason)),
                _ => {}
            }
            tokio::time::sleep(delay.min(deadline.saturating_duration_since(Instant::now()))).await;
            delay = (delay * 2).min(Duration::from_secs(2));
        }
    }

    /// One page of a finished query's rows.
    async fn results(&self, kind: Kind, id: &str, token: Option<&str>) -> Result<RowPage, AnalyticsError> {
        let output = self
            .client()
            .await
            .get_query_results()
            .query_execution_id(id)
            .max_results(ATHENA_PAGE_SIZE)
            .set_next_token(token.map(str::to_owned))
            .send()
            .await
            .map_err(|e| call_error("GetQueryResults", e))?;
        let Some(set) = output.result_set() else {
            return Ok(RowPage::default());
        };
        let info = set.result_set_metadata().map(|m| m.column_info()).unwrap_or_default();
        let names: Vec<String> = info.iter().map(|c| c.name().to_owned()).collect();
        let types: Vec<String> = info.iter().map(|c| c.r#type().to_ascii_lowercase()).collect();
        let mut rows = set.rows();
        // The first page starts with the header row (the column names).
        if token.is_none()
            && let Some(first) = rows.first()
            && first.data().len() == names.len()
            && first
                .data()
                .iter()
                .zip(&names)
                .all(|(d, n)| d.var_char_value() == Some(n.as_str()))
        {
            rows = &rows[1..];
        }
        let raw: Vec<Vec<Cell>> = rows
            .iter()
            .map(|row| {
                row.data()
                    .iter()
                    .enumerate()
                    .map(|(i, datum)| typed_cell(datum.var_char_value(), types.get(i).map(String::as_str)))
                    .collect()
            })
            .collect();
        let next = output.next_token().map(|t| format!("{}:{id}:{t}", kind.tag()));
        Ok(match kind {
            Kind::DailyCosts => RowPage {
                columns: DAILY_COSTS_COLUMNS.map(String::from).to_vec(),
                rows: raw.into_iter().map(|row| daily_costs_row(&names, row)).collect(),
                next,
            },
            Kind::Raw => RowPage {
                columns: names,
                rows: raw,
                next,
            },
        })
    }

    /// The columns of `database.table`, from `GetTableMetadata` (cached).
    async fn shape(
        &self,
        source: &WarehouseSource,
        database: &str,
        table: &str,
    ) -> Result<Arc<TableShape>, AnalyticsError> {
        let key = (database.to_owned(), table.to_owned());
        if let Some(shape) = self.tables.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return Ok(shape.clone());
        }
        let found = self
            .client()
            .await
            .get_table_metadata()
            .catalog_name(DATA_CATALOG)
            .database_name(database)
            .table_name(table)
            .send()
            .await;
        let mut columns = Vec::new();
        match found {
            Ok(output) => {
                if let Some(metadata) = output.table_metadata() {
                    for column in metadata.columns().iter().chain(metadata.partition_keys()) {
                        columns.push((
                            column.name().to_ascii_lowercase(),
                            column.r#type().unwrap_or("string").to_ascii_lowercase(),
                        ));
                    }
                }
            }
            Err(error)
                if error.code() == Some("MetadataException") || error.code() == Some("EntityNotFoundException") => {}
            Err(error) => return Err(call_error("GetTableMetadata", error)),
        }
        if columns.is_empty() {
            // No such table (or one without columns): let Athena say why,
            // in its own words and in the query history.
            let probe = format!("SELECT * FROM \"{database}\".\"{table}\" LIMIT 0");
            let execution = self.run_statement(source, &probe).await?;
            let id = execution.query_execution_id().unwrap_or_default();
            let page = self.results(Kind::Raw, id, None).await?;
            if page.columns.is_empty() {
                return Err(AnalyticsError::Failed(format!(
                    "table {database}.{table} has no columns"
                )));
            }
            columns = page
                .columns
                .iter()
                .map(|c| (c.to_ascii_lowercase(), "string".into()))
                .collect();
        }
        let shape = Arc::new(TableShape { columns });
        self.tables
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, shape.clone());
        Ok(shape)
    }

    async fn daily_costs(
        &self,
        source: &WarehouseSource,
        start: NaiveDate,
        end: NaiveDate,
    ) -> Result<RowPage, AnalyticsError> {
        let (database, table) = database_and_table(source)?;
        let shape = self.shape(source, &database, &table).await?;
        let sql = render_daily_costs(&database, &table, &shape, start, end)?;
        let execution = self.run_statement(source, &sql).await?;
        let id = execution.query_execution_id().unwrap_or_default().to_owned();
        self.results(Kind::DailyCosts, &id, None).await
    }

    async fn table_stats(&self, source: &WarehouseSource) -> Result<RowPage, AnalyticsError> {
        let database = source
            .database
            .as_deref()
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .ok_or_else(|| AnalyticsError::NotConfigured("the source names no Athena database".into()))?;
        let database = identifier("database", database)?;
        let mut names = Vec::new();
        let mut token = None;
        loop {
            let output = self
                .client()
                .await
                .list_table_metadata()
                .catalog_name(DATA_CATALOG)
                .database_name(&database)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| call_error("ListTableMetadata", e))?;
            names.extend(output.table_metadata_list().iter().map(|t| t.name().to_owned()));
            token = output.next_token().map(str::to_owned);
            if token.is_none() || names.len() >= TABLE_LIMIT {
                break;
            }
        }
        names.sort();
        names.truncate(TABLE_LIMIT);
        let mut rows = Vec::new();
        for name in names {
            let Ok(table) = identifier("table", &name) else {
                continue;
            };
            let sql = format!("SELECT count(*) AS row_count FROM \"{database}\".\"{table}\"");
            let execution = self.run_statement(source, &sql).await?;
            let id = execution.query_execution_id().unwrap_or_default();
            let page = self.results(Kind::Raw, id, None).await?;
            let count = page
                .rows
                .first()
                .and_then(|row| row.first())
                .and_then(|cell| match cell {
                    Cell::Integer(n) => Some(*n),
                    Cell::Decimal(n) => Some(*n as i64),
                    Cell::Text(text) => text.parse().ok(),
                    _ => None,
                })
                .unwrap_or(0);
            let bytes = execution
                .statistics()
                .and_then(|s| s.data_scanned_in_bytes())
                .unwrap_or(0);
            rows.push(vec![
                Cell::Text(table),
                Cell::Integer(count),
                Cell::Integer(bytes),
                Cell::Null,
            ]);
        }
        Ok(RowPage {
            columns: TABLE_STATS_COLUMNS.map(String::from).to_vec(),
            rows,
            next: None,
        })
    }

    async fn query_history(&self, source: &WarehouseSource, since: DateTime<Utc>) -> Result<RowPage, AnalyticsError> {
        let workgroup = self.workgroup(source).to_owned();
        let mut ids = Vec::new();
        let mut token = None;
        loop {
            let output = self
                .client()
                .await
                .list_query_executions()
                .work_group(&workgroup)
                .max_results(50)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| call_error("ListQueryExecutions", e))?;
            ids.extend(output.query_execution_ids().iter().cloned());
            token = output.next_token().map(str::to_owned);
            if token.is_none() || ids.len() >= HISTORY_LIMIT {
                break;
            }
        }
        ids.truncate(HISTORY_LIMIT);
        let mut executions = Vec::new();
        for chunk in ids.chunks(50) {
            let output = self
                .client()
                .await
                .batch_get_query_execution()
                .set_query_execution_ids(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(|e| call_error("BatchGetQueryExecution", e))?;
            executions.extend(output.query_executions().iter().cloned());
        }
        let mut rows: Vec<(DateTime<Utc>, Vec<Cell>)> = executions
            .iter()
            .filter_map(|execution| {
                let status = execution.status();
                let submitted = status.and_then(|s| s.submission_date_time()).and_then(to_chrono)?;
                if submitted < since {
                    return None;
                }
                let completed = status.and_then(|s| s.completion_date_time()).and_then(to_chrono);
                let state = status.and_then(|s| s.state()).map(|s| s.as_str()).unwrap_or("QUEUED");
                let statistics = execution.statistics();
                let error = match state {
                    "FAILED" | "CANCELLED" => Some(
                        status
                            .and_then(|s| s.state_change_reason())
                            .unwrap_or("no reason given")
                            .to_owned(),
                    ),
                    _ => None,
                };
                Some((
                    submitted,
                    vec![
                        Cell::Text(execution.query_execution_id().unwrap_or_default().to_owned()),
                        Cell::Text(state.to_owned()),
                        Cell::Text(execution.query().unwrap_or_default().to_owned()),
                        Cell::Timestamp(submitted),
                        completed.map(Cell::Timestamp).unwrap_or(Cell::Null),
                        Cell::Integer(statistics.and_then(|s| s.data_scanned_in_bytes()).unwrap_or(0)),
                        Cell::Integer(statistics.and_then(|s| s.total_execution_time_in_millis()).unwrap_or(0)),
                        error.map(Cell::Text).unwrap_or(Cell::Null),
                    ],
                ))
            })
            .collect();
        rows.sort_by_key(|row| std::cmp::Reverse(row.0));
        Ok(RowPage {
            columns: QUERY_HISTORY_COLUMNS.map(String::from).to_vec(),
            rows: rows.into_iter().map(|(_, row)| row).collect(),
            next: None,
        })
    }
}

#[async_trait]
impl Analytics for AthenaAnalytics {
    async fn query(&self, source: &WarehouseSource, query: &AnalyticsQuery) -> Result<RowPage, AnalyticsError> {
        match query {
            AnalyticsQuery::DailyCosts { start, end } => self.daily_costs(source, *start, *end).await,
            AnalyticsQuery::TableStats => self.table_stats(source).await,
            AnalyticsQuery::QueryHistory { since } => self.query_history(source, *since).await,
        }
    }

    async fn next_page(&self, _: &WarehouseSource, cursor: &str) -> Result<RowPage, AnalyticsError> {
        let invalid = || AnalyticsError::InvalidCursor(cursor.chars().take(64).collect());
        let mut parts = cursor.splitn(3, ':');
        let kind = match parts.next() {
            Some("d") => Kind::DailyCosts,
            Some("r") => Kind::Raw,
            _ => return Err(invalid()),
        };
        let id = parts.next().filter(|id| !id.is_empty()).ok_or_else(invalid)?;
        let token = parts.next().filter(|t| !t.is_empty()).ok_or_else(invalid)?;
        if !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(invalid());
        }
        // Athena refuses a token it did not issue (or an expired result)
        // as a bad request: that is the cursor's fault.
        self.results(kind, id, Some(token)).await.map_err(|e| match e {
            AnalyticsError::Failed(message) => AnalyticsError::InvalidCursor(message),
            other => other,
        })
    }

    async fn ping(&self, source: &WarehouseSource) -> Result<(), AnalyticsError> {
        self.client()
            .await
            .get_work_group()
            .work_group(self.workgroup(source))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| call_error("GetWorkGroup", e))
    }
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    DailyCosts,
    Raw,
}

impl Kind {
    fn tag(self) -> &'static str {
        match self {
            Kind::DailyCosts => "d",
            Kind::Raw => "r",
        }
    }
}

/// Athena's refusals of the request (a bad statement, a missing table or
/// workgroup) are [`AnalyticsError::Failed`] with its message; the rest are
/// [`AnalyticsError::Unavailable`] with the SDK's full context.
fn call_error<E, R>(operation: &str, error: aws_sdk_athena::error::SdkError<E, R>) -> AnalyticsError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let code = error.code().unwrap_or("").to_owned();
    let message = error.message().map(str::to_owned);
    match code.as_str() {
        "InvalidRequestException" | "MetadataException" => AnalyticsError::Failed(format!(
            "{operation}: {}",
            message.unwrap_or_else(|| DisplayErrorContext(&error).to_string())
        )),
        _ => AnalyticsError::Unavailable(format!("{operation}: {code} {}", DisplayErrorContext(&error))),
    }
}

fn to_chrono(time: &aws_sdk_athena::primitives::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(time.secs(), time.subsec_nanos())
}

/// A name that goes into SQL: letters, digits and `_` only.
fn identifier(what: &str, name: &str) -> Result<String, AnalyticsError> {
    if !name.is_empty() && name.len() <= 128 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Ok(name.to_owned())
    } else {
        Err(AnalyticsError::NotConfigured(format!(
            "the {what} name {name:?} may hold only letters, digits and _"
        )))
    }
}

fn database_and_table(source: &WarehouseSource) -> Result<(String, String), AnalyticsError> {
    let pick = |value: &Option<String>, what: &str| {
        value
            .as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| AnalyticsError::NotConfigured(format!("the source names no Athena {what}")))
            .and_then(|v| identifier(what, v))
    };
    Ok((pick(&source.database, "database")?, pick(&source.table, "table")?))
}

/// A CUR table's columns: (lowercase name, lowercase type).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableShape {
    pub columns: Vec<(String, String)>,
}

impl TableShape {
    fn kind(&self, name: &str) -> Option<&str> {
        self.columns.iter().find(|(n, _)| n == name).map(|(_, t)| t.as_str())
    }
}

fn is_text(kind: &str) -> bool {
    kind.starts_with("string") || kind.starts_with("varchar") || kind.starts_with("char")
}

fn is_number(kind: &str) -> bool {
    [
        "double", "float", "real", "decimal", "bigint", "int", "smallint", "tinyint",
    ]
    .iter()
    .any(|prefix| kind.starts_with(prefix))
}

/// `DailyCosts` in SQL that Trino and DuckDB both run, over the columns
/// `shape` has (legacy CUR or CUR 2.0).
pub fn render_daily_costs(
    database: &str,
    table: &str,
    shape: &TableShape,
    start: NaiveDate,
    end: NaiveDate,
) -> Result<String, AnalyticsError> {
    let database = identifier("database", database)?;
    let table = identifier("table", table)?;
    let text = |name: &str| -> String {
        match shape.kind(name) {
            Some(kind) if is_text(kind) => format!("coalesce(\"{name}\", '')"),
            Some(_) => format!("coalesce(CAST(\"{name}\" AS VARCHAR), '')"),
            None => "''".into(),
        }
    };
    let number = |name: &str| -> String {
        match shape.kind(name) {
            Some(kind) if is_number(kind) => format!("CAST(\"{name}\" AS DOUBLE)"),
            Some(_) => format!("TRY_CAST(\"{name}\" AS DOUBLE)"),
            None => "CAST(NULL AS DOUBLE)".into(),
        }
    };
    let map_value = |map: &str, key: &str| format!("coalesce(element_at(\"{map}\", '{key}'), '')");
    let has_map = |name: &str| shape.kind(name).is_some_and(|kind| kind.starts_with("map"));

    let start_column = "line_item_usage_start_date";
    let (usage_date, range) = match shape.kind(start_column) {
        None => {
            return Err(AnalyticsError::Failed(format!(
                "table {database}.{table} is not a CUR table: it has no {start_column} column"
            )));
        }
        Some(kind) if is_text(kind) => (
            format!("CAST(substr(\"{start_column}\", 1, 10) AS DATE)"),
            format!("substr(\"{start_column}\", 1, 10) >= '{start}' AND substr(\"{start_column}\", 1, 10) < '{end}'"),
        ),
        Some(_) => (
            format!("CAST(\"{start_column}\" AS DATE)"),
            format!(
                "\"{start_column}\" >= TIMESTAMP '{start} 00:00:00' AND \"{start_column}\" < TIMESTAMP '{end} 00:00:00'"
            ),
        ),
    };
    if shape.kind("line_item_unblended_cost").is_none() {
        return Err(AnalyticsError::Failed(format!(
            "table {database}.{table} is not a CUR table: it has no line_item_unblended_cost column"
        )));
    }
    let product_name = if shape.kind("product_product_name").is_some() {
        text("product_product_name")
    } else if has_map("product") {
        map_value("product", "product_name")
    } else {
        "''".into()
    };
    let region = if shape.kind("product_region_code").is_some() {
        text("product_region_code")
    } else if shape.kind("product_region").is_some() {
        text("product_region")
    } else if has_map("product") {
        map_value("product", "region")
    } else {
        "''".into()
    };
    let mut select = vec![
        format!("{usage_date} AS usage_date"),
        format!("{} AS product_code", text("line_item_product_code")),
        format!("{product_name} AS product_name"),
        format!("{} AS account_id", text("line_item_usage_account_id")),
        format!("{region} AS region"),
        format!("{} AS usage_type", text("line_item_usage_type")),
        format!("{} AS line_item_type", text("line_item_line_item_type")),
        format!("{} AS unit", text("pricing_unit")),
        format!("{} AS currency", text("line_item_currency_code")),
    ];
    // Tags: legacy columns one by one (empty as NULL, so one group per
    // tag set), or CUR 2.0's map as JSON; the adapter builds the `tags`
    // object from either.
    let mut tag_columns: Vec<(&str, &str)> = shape
        .columns
        .iter()
        .filter_map(|(name, _)| {
            let key = name.strip_prefix("resource_tags_user_")?;
            (!key.is_empty() && identifier("column", name).is_ok()).then_some((name.as_str(), key))
        })
        .collect();
    tag_columns.sort_by(|a, b| a.1.cmp(b.1));
    for (name, key) in &tag_columns {
        select.push(format!("NULLIF(\"{name}\", '') AS \"tag_{key}\""));
    }
    if has_map("resource_tags") {
        select.push(
            "json_format(CAST(map_filter(\"resource_tags\", (k, v) -> substr(k, 1, 5) = 'user_' AND v <> '') AS JSON)) AS \"tags_map\""
                .into(),
        );
    }
    let groups = select.len();
    let unblended = format!("coalesce({}, 0)", number("line_item_unblended_cost"));
    let zero = |name: &str| format!("coalesce({}, 0)", number(name));
    select.push(format!("sum({unblended}) AS unblended"));
    select.push(format!(
        "sum(coalesce({}, {unblended})) AS net_unblended",
        number("line_item_net_unblended_cost")
    ));
    let reservation_arn = if shape.kind("reservation_reservation_a_r_n").is_some() {
        text("reservation_reservation_a_r_n")
    } else {
        text("reservation_reservation_arn")
    };
    select.push(format!(
        "sum(CASE {line_item_type} \
WHEN 'SavingsPlanCoveredUsage' THEN {sp_effective} \
WHEN 'SavingsPlanRecurringFee' THEN {sp_total} - {sp_used} \
WHEN 'SavingsPlanNegation' THEN 0 \
WHEN 'SavingsPlanUpfrontFee' THEN 0 \
WHEN 'DiscountedUsage' THEN {ri_effective} \
WHEN 'RIFee' THEN {ri_upfront} + {ri_recurring} \
WHEN 'Fee' THEN CASE WHEN {reservation_arn} <> '' THEN 0 ELSE {unblended} END \
ELSE {unblended} END) AS amortized",
        line_item_type = text("line_item_line_item_type"),
        sp_effective = zero("savings_plan_savings_plan_effective_cost"),
        sp_total = zero("savings_plan_total_commitment_to_date"),
        sp_used = zero("savings_plan_used_commitment"),
        ri_effective = zero("reservation_effective_cost"),
        ri_upfront = zero("reservation_unused_amortized_upfront_fee_for_billing_period"),
        ri_recurring = zero("reservation_unused_recurring_fee"),
    ));
    select.push(format!("sum({}) AS usage_quantity", zero("line_item_usage_amount")));
    select.push("count(*) AS line_items".into());
    let ordinals = (1..=groups).map(|i| i.to_string()).collect::<Vec<_>>().join(", ");
    Ok(format!(
        "SELECT {} FROM \"{database}\".\"{table}\" WHERE {range} GROUP BY {ordinals} ORDER BY {ordinals}",
        select.join(", ")
    ))
}

/// A result cell typed by its column's Athena type.
fn typed_cell(value: Option<&str>, kind: Option<&str>) -> Cell {
    let Some(value) = value else {
        return Cell::Null;
    };
    let kind = kind.unwrap_or("varchar");
    if kind.starts_with("bigint")
        || kind.starts_with("integer")
        || kind.starts_with("int")
        || kind.starts_with("smallint")
        || kind.starts_with("tinyint")
    {
        return value
            .parse()
            .map(Cell::Integer)
            .unwrap_or_else(|_| Cell::Text(value.into()));
    }
    if kind.starts_with("double")
        || kind.starts_with("float")
        || kind.starts_with("real")
        || kind.starts_with("decimal")
    {
        return value
            .parse()
            .map(Cell::Decimal)
            .unwrap_or_else(|_| Cell::Text(value.into()));
    }
    if kind == "date" {
        return NaiveDate::parse_from_str(value, "%Y-%m-%d")
            .map(Cell::Date)
            .unwrap_or_else(|_| Cell::Text(value.into()));
    }
    if kind.starts_with("timestamp") {
        let trimmed = value.trim_end_matches(" UTC").trim_end_matches('Z');
        return NaiveDateTime::parse_from_str(trimmed, "%Y-%m-%d %H:%M:%S%.f")
            .or_else(|_| NaiveDateTime::parse_from_str(trimmed, "%Y-%m-%dT%H:%M:%S%.f"))
            .map(|t| Cell::Timestamp(t.and_utc()))
            .unwrap_or_else(|_| Cell::Text(value.into()));
    }
    Cell::Text(value.into())
}

/// One `DailyCosts` row in the documented columns and types, from the
/// rendered query's row (`names`: its column names).
fn daily_costs_row(names: &[String], row: Vec<Cell>) -> Vec<Cell> {
    let mut by_name: HashMap<&str, Cell> = HashMap::new();
    let mut tags = BTreeMap::new();
    for (name, cell) in names.iter().zip(row) {
        if let Some(key) = name.strip_prefix("tag_") {
            if let Cell::Text(value) = cell
                && !value.is_empty()
            {
                tags.insert(key.to_owned(), value);
            }
        } else if name == "tags_map" {
            if let Cell::Text(text) = cell
                && let Ok(serde_json::Value::Object(map)) = serde_json::from_str(&text)
            {
                for (key, value) in map {
                    if let (Some(key), serde_json::Value::String(value)) = (key.strip_prefix("user_"), value)
                        && !key.is_empty()
                        && !value.is_empty()
                    {
                        tags.insert(key.to_owned(), value);
                    }
                }
            }
        } else {
            by_name.insert(name.as_str(), cell);
        }
    }
    let tags = if tags.is_empty() {
        "{}".to_owned()
    } else {
        serde_json::to_string(&tags).unwrap_or_else(|_| "{}".into())
    };
    let mut take = |name: &str| by_name.remove(name).unwrap_or(Cell::Null);
    let date = match take("usage_date") {
        Cell::Text(text) => NaiveDate::parse_from_str(&text, "%Y-%m-%d")
            .map(Cell::Date)
            .unwrap_or(Cell::Null),
        Cell::Timestamp(time) => Cell::Date(time.date_naive()),
        other => other,
    };
    let text = |cell: Cell| match cell {
        Cell::Text(text) => Cell::Text(text),
        Cell::Null => Cell::Text(String::new()),
        Cell::Integer(n) => Cell::Text(n.to_string()),
        Cell::Decimal(n) => Cell::Text(n.to_string()),
        Cell::Date(d) => Cell::Text(d.to_string()),
        Cell::Timestamp(t) => Cell::Text(t.to_rfc3339()),
    };
    let decimal = |cell: Cell| match cell {
        Cell::Integer(n) => Cell::Decimal(n as f64),
        Cell::Text(text) => Cell::Decimal(text.parse().unwrap_or(0.0)),
        Cell::Null => Cell::Decimal(0.0),
        other => other,
    };
    let integer = |cell: Cell| match cell {
        Cell::Decimal(n) => Cell::Integer(n as i64),
        Cell::Text(text) => Cell::Integer(text.parse().unwrap_or(0)),
        Cell::Null => Cell::Integer(0),
        other => other,
    };
    let mut out = Vec::with_capacity(15);
    out.push(date);
    for name in &DAILY_COSTS_COLUMNS[1..9] {
        out.push(text(take(name)));
    }
    out.push(Cell::Text(tags));
    for name in &DAILY_COSTS_COLUMNS[10..14] {
        out.push(decimal(take(name)));
    }
    out.push(integer(take("line_items")));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(columns: &[(&str, &str)]) -> TableShape {
        TableShape {
            columns: columns.iter().map(|(n, t)| (n.to_string(), t.to_string())).collect(),
        }
    }

    #[test]
    fn legacy_and_cur2_tables_render_their_own_columns() {
        let day = |d| NaiveDate::from_ymd_opt(2026, 1, d).unwrap();
        let legacy = shape(&[
            ("line_item_usage_start_date", "timestamp"),
            ("line_item_unblended_cost", "double"),
            ("product_product_name", "string"),
            ("resource_tags_user_team", "string"),
        ]);
        let sql = render_daily_costs("cur", "report", &legacy, day(1), day(3)).unwrap();
        assert!(sql.contains("\"product_product_name\""), "{sql}");
        assert!(sql.contains("AS \"tag_team\""), "{sql}");
        assert!(sql.contains("TIMESTAMP '2026-01-03 00:00:00'"), "{sql}");
        let cur2 = shape(&[
            ("line_item_usage_start_date", "timestamp"),
            ("line_item_unblended_cost", "double"),
            ("product", "map<string,string>"),
            ("resource_tags", "map<string,string>"),
        ]);
        let sql = render_daily_costs("cur", "report", &cur2, day(1), day(3)).unwrap();
        assert!(sql.contains("element_at(\"product\", 'product_name')"), "{sql}");
        assert!(sql.contains("AS \"tags_map\""), "{sql}");
        assert!(matches!(
            render_daily_costs("cur", "bad;name", &cur2, day(1), day(3)),
            Err(AnalyticsError::NotConfigured(_))
        ));
    }

    #[test]
    fn settings_need_an_s3_output_location() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| pairs.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string())
        };
        assert_eq!(AthenaSettings::from_vars(vars(&[])).unwrap(), None);
        let settings = AthenaSettings::from_vars(vars(&[(ATHENA_OUTPUT_LOCATION_ENV, "s3://results/q")]))
            .unwrap()
            .unwrap();
        assert_eq!(settings.output_location, "s3://results/q/");
        assert_eq!(settings.workgroup, "primary");
        assert_eq!(settings.timeout, Duration::from_secs(60));
        assert!(AthenaSettings::from_vars(vars(&[(ATHENA_OUTPUT_LOCATION_ENV, "results")])).is_err());
    }
}
