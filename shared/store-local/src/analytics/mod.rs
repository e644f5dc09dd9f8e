//! The `Analytics` port on CUR files in a local folder ([`LocalWarehouse`]).
//!
//! The warehouse's root is the host's CUR directory (`QUPER_CUR_DIR`,
//! default `<data dir>/cur`). A source's `folder` is a path relative to it
//! (none, `""` or `"."` is the root itself); an absolute path, a `..` or a
//! symbolic link out of the root is [`AnalyticsError::NotConfigured`], so a
//! tenant admin who names the folder can never make the host read anything
//! else.
//!
//! Every `*.csv` and `*.csv.gz` under the folder (recursively: AWS writes
//! `<prefix>/<report>/<period>/...`) is read, whatever its generation
//! (legacy CUR headers `lineItem/UsageStartDate`, Athena snake case, CUR 2.0
//! with its `product` and `resource_tags` maps as JSON text; see
//! [`columns`]), and summed by day and dimension into an in-memory SQLite
//! database in one transaction. The folder is loaded again when its set of
//! files, or any file's size or modification time, changes, so a file AWS
//! delivers is in the next query's answer.
//!
//! Queries are rendered in SQLite's SQL over that database; their results
//! are kept (bounded, for [`RESULT_TTL`]) and paged [`PAGE_SIZE`] rows at a
//! time with an opaque cursor. `QueryHistory` answers from the engine's own
//! log of the queries it ran (in memory, the last [`HISTORY_LIMIT`]).

pub mod columns;
pub mod sample;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use columns::{AmortizedInputs, Layout};
use quper_core::ports::analytics::{Analytics, AnalyticsError, AnalyticsQuery, Cell, RowPage, WarehouseSource};
use rusqlite::Connection;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{BufReader, Read};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// Rows per page.
pub const PAGE_SIZE: usize = 1000;
/// How long a result stays available to `next_page`.
pub const RESULT_TTL: Duration = Duration::from_secs(15 * 60);
/// How many results are kept for paging at once (the oldest goes first).
pub const RESULT_LIMIT: usize = 32;
/// How many queries the engine's log (`QueryHistory`) keeps.
pub const HISTORY_LIMIT: usize = 1000;
/// The table name of CUR files loaded from the root itself.
pub const ROOT_TABLE: &str = "cur";

pub use quper_core::ports::analytics::{DAILY_COSTS_COLUMNS, QUERY_HISTORY_COLUMNS, TABLE_STATS_COLUMNS};

/// The `Analytics` port on a folder of CUR files. Cheap to clone.
#[derive(Clone)]
pub struct LocalWarehouse {
    inner: Arc<Inner>,
    timeout: Option<Duration>,
}

struct Inner {
    root: PathBuf,
    tables: Mutex<HashMap<PathBuf, Arc<Mutex<Option<LoadedTable>>>>>,
    results: Mutex<VecDeque<StoredResult>>,
    history: Mutex<VecDeque<HistoryEntry>>,
    sequence: AtomicU64,
}

/// One folder's files, loaded.
struct LoadedTable {
    name: String,
    stamps: Vec<FileStamp>,
    conn: Connection,
    line_items: i64,
    bytes: i64,
    newest: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct FileStamp {
    path: PathBuf,
    size: u64,
    modified: Option<SystemTime>,
}

struct StoredResult {
    id: String,
    created: Instant,
    columns: Vec<String>,
    rows: Arc<Vec<Vec<Cell>>>,
}

#[derive(Clone)]
struct HistoryEntry {
    id: String,
    state: &'static str,
    statement: String,
    submitted_at: DateTime<Utc>,
    completed_at: DateTime<Utc>,
    bytes: i64,
    ms: i64,
    error: Option<String>,
}

impl LocalWarehouse {
    /// The warehouse over the CUR files under `root` (the host's
    /// `QUPER_CUR_DIR`). Nothing is read until the first query.
    pub fn new(root: PathBuf) -> LocalWarehouse {
        LocalWarehouse {
            inner: Arc::new(Inner {
                root,
                tables: Mutex::new(HashMap::new()),
                results: Mutex::new(VecDeque::new()),
                history: Mutex::new(VecDeque::new()),
                sequence: AtomicU64::new(0),
            }),
            timeout: None,
        }
    }

    /// The same warehouse with a deadline on each query: one that has not
    /// answered by then is [`AnalyticsError::Timeout`] (its work finishes
    /// in the background, so the folder is loaded for the next query).
    pub fn with_timeout(mut self, timeout: Duration) -> LocalWarehouse {
        self.timeout = Some(timeout);
        self
    }

    /// The CUR root this warehouse reads.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// The folder `source` names, inside the root: a relative path without
    /// `..` that, once symbolic links are resolved, is still under the root.
    pub fn folder_of(&self, source: &WarehouseSource) -> Result<PathBuf, AnalyticsError> {
        resolve_folder(&self.inner.root, source.folder.as_deref())
    }
}

fn not_configured(message: impl Into<String>) -> AnalyticsError {
    AnalyticsError::NotConfigured(message.into())
}

fn resolve_folder(root: &Path, folder: Option<&str>) -> Result<PathBuf, AnalyticsError> {
    let folder = folder.map(str::trim).unwrap_or("");
    let relative = Path::new(folder);
    if relative.is_absolute() || folder.starts_with('/') || folder.starts_with('\\') {
        return Err(not_configured(format!(
            "the folder must be relative to the CUR directory, not {folder:?}"
        )));
    }
    for component in relative.components() {
        match component {
            Component::Normal(_) | Component::CurDir => {}
            _ => {
                return Err(not_configured(format!(
                    "the folder {folder:?} leaves the CUR directory"
                )));
            }
        }
    }
    let root = root
        .canonicalize()
        .map_err(|e| not_configured(format!("the CUR directory {} cannot be read: {e}", root.display())))?;
    let path = root
        .join(relative)
        .canonicalize()
        .map_err(|e| not_configured(format!("the folder {folder:?} cannot be read: {e}")))?;
    if !path.starts_with(&root) {
        return Err(not_configured(format!(
            "the folder {folder:?} leaves the CUR directory"
        )));
    }
    if !path.is_dir() {
        return Err(not_configured(format!("the folder {folder:?} is not a directory")));
    }
    Ok(path)
}

/// Every CUR file under `dir`: `*.csv` and `*.csv.gz`, recursively, sorted;
/// hidden entries (`.`, `_`) and symbolic links are skipped.
fn list_files(dir: &Path) -> Result<Vec<FileStamp>, AnalyticsError> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir)
            .map_err(|e| AnalyticsError::Unavailable(format!("cannot list {}: {e}", dir.display())))?;
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') || name.starts_with('_') {
                continue;
            }
            let Ok(meta) = std::fs::symlink_metadata(entry.path()) else {
                continue;
            };
            if meta.is_dir() {
                stack.push(entry.path());
            } else if meta.is_file() && (name.ends_with(".csv") || name.ends_with(".csv.gz")) {
                out.push(FileStamp {
                    path: entry.path(),
                    size: meta.len(),
                    modified: meta.modified().ok(),
                });
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// One group of the daily sums while loading.
#[derive(Default)]
struct Sums {
    unblended: f64,
    net_unblended: f64,
    amortized: f64,
    usage_quantity: f64,
    line_items: i64,
}

const SCHEMA: &str = "
CREATE TABLE dims (
    id INTEGER PRIMARY KEY,
    product_code TEXT NOT NULL, product_name TEXT NOT NULL, account_id TEXT NOT NULL,
    region TEXT NOT NULL, usage_type TEXT NOT NULL, line_item_type TEXT NOT NULL,
    unit TEXT NOT NULL, currency TEXT NOT NULL, tags TEXT NOT NULL
);
CREATE TABLE daily (
    usage_date TEXT NOT NULL, dim INTEGER NOT NULL,
    unblended REAL NOT NULL, net_unblended REAL NOT NULL, amortized REAL NOT NULL,
    usage_quantity REAL NOT NULL, line_items INTEGER NOT NULL
);
";

/// Reads every file into a fresh in-memory database.
fn load_table(name: String, stamps: Vec<FileStamp>) -> Result<LoadedTable, AnalyticsError> {
    let mut dims: HashMap<[String; 9], i64> = HashMap::new();
    let mut sums: HashMap<(NaiveDate, i64), Sums> = HashMap::new();
    let mut line_items = 0i64;
    for stamp in &stamps {
        line_items += read_file(&stamp.path, &mut dims, &mut sums)?;
    }
    let conn = Connection::open_in_memory().map_err(|e| AnalyticsError::Unavailable(e.to_string()))?;
    let sql_error = |e: rusqlite::Error| AnalyticsError::Unavailable(format!("loading CUR rows: {e}"));
    conn.execute_batch(SCHEMA).map_err(sql_error)?;
    {
        let tx = conn.unchecked_transaction().map_err(sql_error)?;
        {
            let mut insert = tx
                .prepare("INSERT INTO dims VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)")
                .map_err(sql_error)?;
            for (values, id) in &dims {
                insert
                    .execute(rusqlite::params![
                        id, values[0], values[1], values[2], values[3], values[4], values[5], values[6], values[7],
                        values[8]
                    ])
                    .map_err(sql_error)?;
            }
            let mut insert = tx
                .prepare("INSERT INTO daily VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")
                .map_err(sql_error)?;
            for ((date, dim), sum) in &sums {
                insert
                    .execute(rusqlite::params![
                        date.format("%Y-%m-%d").to_string(),
                        dim,
                        sum.unblended,
                        sum.net_unblended,
                        sum.amortized,
                        sum.usage_quantity,
                        sum.line_items
                    ])
                    .map_err(sql_error)?;
            }
        }
        tx.execute_batch("CREATE INDEX daily_by_date ON daily (usage_date)")
            .map_err(sql_error)?;
        tx.commit().map_err(sql_error)?;
    }
    let bytes = stamps.iter().map(|s| s.size as i64).sum();
    let newest = stamps
        .iter()
        .filter_map(|s| s.modified)
        .max()
        .map(DateTime::<Utc>::from);
    Ok(LoadedTable {
        name,
        stamps,
        conn,
        line_items,
        bytes,
        newest,
    })
}

/// Reads one CSV or gzip CSV file into the sums; answers its line items.
fn read_file(
    path: &Path,
    dims: &mut HashMap<[String; 9], i64>,
    sums: &mut HashMap<(NaiveDate, i64), Sums>,
) -> Result<i64, AnalyticsError> {
    let failed = |e: &dyn std::fmt::Display| AnalyticsError::Failed(format!("cannot read {}: {e}", path.display()));
    let file = std::fs::File::open(path).map_err(|e| failed(&e))?;
    let reader: Box<dyn Read> = if path.extension().is_some_and(|ext| ext == "gz") {
        Box::new(flate2::read::MultiGzDecoder::new(BufReader::with_capacity(
            1 << 16,
            file,
        )))
    } else {
        Box::new(file)
    };
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .buffer_capacity(1 << 16)
        .from_reader(reader);
    let headers = csv.byte_headers().map_err(|e| failed(&e))?.clone();
    let headers: Vec<String> = headers
        .iter()
        .map(|h| String::from_utf8_lossy(h).into_owned())
        .collect();
    let Some(layout) = Layout::from_headers(headers.iter().map(String::as_str)) else {
        // Not a CUR file (no usage start date or unblended cost column).
        tracing::warn!(path = %path.display(), "skipping a CSV file without CUR columns");
        return Ok(0);
    };
    let mut record = csv::ByteRecord::new();
    let mut key = String::with_capacity(256);
    let mut raw_dims: HashMap<String, i64> = HashMap::new();
    let raw_columns: Vec<Option<usize>> = [
        layout.product_code,
        layout.product_name,
        layout.account_id,
        layout.region,
        layout.usage_type,
        layout.line_item_type,
        layout.unit,
        layout.currency,
        layout.tags_map,
        layout.product_map,
    ]
    .into_iter()
    .chain(layout.tag_columns.iter().map(|(index, _)| Some(*index)))
    .collect();
    let mut count = 0i64;
    loop {
        match csv.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => return Err(failed(&e)),
        }
        let field = |index: Option<usize>| -> &str {
            index
                .and_then(|i| record.get(i))
                .and_then(|b| std::str::from_utf8(b).ok())
                .unwrap_or("")
        };
        let Some(date) = parse_day(field(layout.usage_start)) else {
            continue;
        };
        let line_item_type = field(layout.line_item_type);
        let unblended = columns::number(field(layout.unblended));
        let net_unblended = match layout.net_unblended {
            Some(_) if !field(layout.net_unblended).trim().is_empty() => columns::number(field(layout.net_unblended)),
            _ => unblended,
        };
        let amortized = columns::amortized(&AmortizedInputs {
            line_item_type,
            unblended,
            sp_effective_cost: columns::number(field(layout.sp_effective_cost)),
            sp_total_commitment: columns::number(field(layout.sp_total_commitment)),
            sp_used_commitment: columns::number(field(layout.sp_used_commitment)),
            ri_effective_cost: columns::number(field(layout.ri_effective_cost)),
            ri_unused_upfront: columns::number(field(layout.ri_unused_upfront)),
            ri_unused_recurring: columns::number(field(layout.ri_unused_recurring)),
            has_reservation_arn: !field(layout.ri_arn).trim().is_empty(),
        });
        let usage_quantity = columns::number(field(layout.usage_amount));

        // The dimensions as written (raw fields, maps as their JSON text):
        // most rows repeat a combination seen before, and only a new one
        // is parsed into the canonical values.
        key.clear();
        for index in raw_columns.iter() {
            key.push_str(field(*index));
            key.push('\u{1f}');
        }
        let dim = match raw_dims.get(key.as_str()) {
            Some(id) => *id,
            None => {
                let values = canonical_dims(&layout, &field);
                let next_id = dims.len() as i64 + 1;
                let id = dims.entry(values).or_insert(next_id).to_owned();
                raw_dims.insert(key.clone(), id);
                id
            }
        };
        let sum = sums.entry((date, dim)).or_default();
        sum.unblended += unblended;
        sum.net_unblended += net_unblended;
        sum.amortized += amortized;
        sum.usage_quantity += usage_quantity;
        sum.line_items += 1;
        count += 1;
    }
    Ok(count)
}

/// `YYYY-MM-DD` at the start of a CUR timestamp.
fn parse_day(text: &str) -> Option<NaiveDate> {
    let bytes = text.as_bytes();
    if bytes.len() < 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return None;
    }
    let digits = |range: std::ops::Range<usize>| -> Option<u32> {
        bytes[range]
            .iter()
            .try_fold(0u32, |n, b| b.is_ascii_digit().then(|| n * 10 + u32::from(b - b'0')))
    };
    NaiveDate::from_ymd_opt(digits(0..4)? as i32, digits(5..7)?, digits(8..10)?)
}

/// The canonical dimensions of a row (product name and region from the
/// CUR 2.0 `product` map when there are no columns for them; tags as the
/// port's JSON object).
fn canonical_dims<'a>(layout: &Layout, field: &impl Fn(Option<usize>) -> &'a str) -> [String; 9] {
    let mut tags = BTreeMap::new();
    for (index, name) in &layout.tag_columns {
        let value = field(Some(*index));
        if !value.is_empty() {
            tags.insert(name.clone(), value.to_owned());
        }
    }
    if layout.tags_map.is_some() {
        columns::tags_from_map(field(layout.tags_map), &mut tags);
    }
    let product_name = match (layout.product_name, layout.product_map) {
        (Some(_), _) => field(layout.product_name).to_owned(),
        (None, Some(_)) => columns::map_value(field(layout.product_map), "product_name").unwrap_or_default(),
        (None, None) => String::new(),
    };
    let region = match (layout.region, layout.product_map) {
        (Some(_), _) => field(layout.region).to_owned(),
        (None, Some(_)) => columns::map_value(field(layout.product_map), "region_code")
            .or_else(|| columns::map_value(field(layout.product_map), "region"))
            .unwrap_or_default(),
        (None, None) => String::new(),
    };
    [
        field(layout.product_code).to_owned(),
        product_name,
        field(layout.account_id).to_owned(),
        region,
        field(layout.usage_type).to_owned(),
        field(layout.line_item_type).to_owned(),
        field(layout.unit).to_owned(),
        field(layout.currency).to_owned(),
        columns::tags_json(&tags),
    ]
}

/// The SQL of `DailyCosts` over the loaded database (dates bound as
/// parameters `?1`, `?2`).
pub const DAILY_COSTS_SQL: &str = "SELECT d.usage_date, m.product_code, m.product_name, m.account_id, m.region, \
m.usage_type, m.line_item_type, m.unit, m.currency, m.tags, sum(d.unblended), sum(d.net_unblended), \
sum(d.amortized), sum(d.usage_quantity), sum(d.line_items) \
FROM daily d JOIN dims m ON m.id = d.dim WHERE d.usage_date >= ?1 AND d.usage_date < ?2 \
GROUP BY d.usage_date, d.dim \
ORDER BY d.usage_date, m.product_code, m.product_name, m.account_id, m.region, m.usage_type, \
m.line_item_type, m.unit, m.currency, m.tags";

fn daily_costs(table: &LoadedTable, start: NaiveDate, end: NaiveDate) -> Result<Vec<Vec<Cell>>, AnalyticsError> {
    let failed = |e: rusqlite::Error| AnalyticsError::Failed(e.to_string());
    let mut statement = table.conn.prepare_cached(DAILY_COSTS_SQL).map_err(failed)?;
    let start = start.format("%Y-%m-%d").to_string();
    let end = end.format("%Y-%m-%d").to_string();
    let rows = statement
        .query_map([&start, &end], |row| {
            let date: String = row.get(0)?;
            let mut cells = Vec::with_capacity(15);
            cells.push(
                NaiveDate::parse_from_str(&date, "%Y-%m-%d")
                    .map(Cell::Date)
                    .unwrap_or(Cell::Null),
            );
            for i in 1..10 {
                cells.push(Cell::Text(row.get(i)?));
            }
            for i in 10..14 {
                cells.push(Cell::Decimal(row.get(i)?));
            }
            cells.push(Cell::Integer(row.get(14)?));
            Ok(cells)
        })
        .map_err(failed)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(failed)
}

impl Inner {
    fn next_id(&self) -> String {
        let n = self.sequence.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        format!("local-{:x}-{n}", nanos)
    }

    /// The folder's loaded table, loaded again when its files changed.
    fn with_table<T>(
        &self,
        folder: &Path,
        run: impl FnOnce(&LoadedTable) -> Result<T, AnalyticsError>,
    ) -> Result<T, AnalyticsError> {
        let slot = {
            let mut tables = self.tables.lock().unwrap_or_else(|e| e.into_inner());
            tables.entry(folder.to_path_buf()).or_default().clone()
        };
        let mut slot = slot.lock().unwrap_or_else(|e| e.into_inner());
        let stamps = list_files(folder)?;
        if slot.as_ref().is_none_or(|table| table.stamps != stamps) {
            *slot = None;
            let name = self.table_name(folder);
            let started = Instant::now();
            let table = load_table(name, stamps)?;
            tracing::info!(
                folder = %folder.display(),
                files = table.stamps.len(),
                line_items = table.line_items,
                ms = started.elapsed().as_millis() as u64,
                "loaded CUR files"
            );
            *slot = Some(table);
        }
        match slot.as_ref() {
            Some(table) => run(table),
            None => Err(AnalyticsError::Unavailable("the CUR table is not loaded".into())),
        }
    }

    fn table_name(&self, folder: &Path) -> String {
        let root = self.root.canonicalize().unwrap_or_else(|_| self.root.clone());
        if folder == root {
            return ROOT_TABLE.into();
        }
        folder
            .file_name()
            .map(|name| {
                name.to_string_lossy()
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() {
                            c.to_ascii_lowercase()
                        } else {
                            '_'
                        }
                    })
                    .collect()
            })
            .unwrap_or_else(|| ROOT_TABLE.into())
    }

    fn log(&self, entry: HistoryEntry) {
        let mut history = self.history.lock().unwrap_or_else(|e| e.into_inner());
        history.push_front(entry);
        history.truncate(HISTORY_LIMIT);
    }

    fn keep(&self, columns: Vec<String>, rows: Vec<Vec<Cell>>) -> RowPage {
        if rows.len() <= PAGE_SIZE {
            return RowPage {
                columns,
                rows,
                next: None,
            };
        }
        let id = self.next_id();
        let rows = Arc::new(rows);
        let first = rows[..PAGE_SIZE].to_vec();
        let mut results = self.results.lock().unwrap_or_else(|e| e.into_inner());
        results.retain(|result| result.created.elapsed() < RESULT_TTL);
        while results.len() >= RESULT_LIMIT {
            results.pop_front();
        }
        results.push_back(StoredResult {
            id: id.clone(),
            created: Instant::now(),
            columns: columns.clone(),
            rows,
        });
        RowPage {
            columns,
            rows: first,
            next: Some(format!("{id}:{PAGE_SIZE}")),
        }
    }

    fn page(&self, cursor: &str) -> Result<RowPage, AnalyticsError> {
        let invalid = || AnalyticsError::InvalidCursor(cursor.chars().take(64).collect());
        let (id, offset) = cursor.rsplit_once(':').ok_or_else(invalid)?;
        let offset: usize = offset.parse().map_err(|_| invalid())?;
        let results = self.results.lock().unwrap_or_else(|e| e.into_inner());
        let result = results
            .iter()
            .find(|result| result.id == id && result.created.elapsed() < RESULT_TTL)
            .ok_or_else(invalid)?;
        if offset > result.rows.len() {
            return Err(invalid());
        }
        let end = (offset + PAGE_SIZE).min(result.rows.len());
        Ok(RowPage {
            columns: result.columns.clone(),
            rows: result.rows[offset..end].to_vec(),
            next: (end < result.rows.len()).then(|| format!("{id}:{end}")),
        })
    }

    fn run(&self, source: &WarehouseSource, query: &AnalyticsQuery) -> Result<RowPage, AnalyticsError> {
        let folder = resolve_folder(&self.root, source.folder.as_deref())?;
        match query {
            AnalyticsQuery::DailyCosts { start, end } => {
                let submitted_at = Utc::now();
                let started = Instant::now();
                let statement = DAILY_COSTS_SQL
                    .replace("?1", &format!("'{start}'"))
                    .replace("?2", &format!("'{end}'"));
                let mut bytes = 0;
                let result = self.with_table(&folder, |table| {
                    bytes = table.bytes;
                    check_table(source, table)?;
                    daily_costs(table, *start, *end)
                });
                let error = result.as_ref().err().map(ToString::to_string);
                self.log(HistoryEntry {
                    id: self.next_id(),
                    state: if result.is_ok() { "SUCCEEDED" } else { "FAILED" },
                    statement,
                    submitted_at,
                    completed_at: Utc::now(),
                    bytes,
                    ms: started.elapsed().as_millis() as i64,
                    error,
                });
                let rows = result?;
                Ok(self.keep(DAILY_COSTS_COLUMNS.map(String::from).to_vec(), rows))
            }
            AnalyticsQuery::TableStats => {
                let row = self.with_table(&folder, |table| {
                    Ok(vec![
                        Cell::Text(table.name.clone()),
                        Cell::Integer(table.line_items),
                        Cell::Integer(table.bytes),
                        table.newest.map(Cell::Timestamp).unwrap_or(Cell::Null),
                    ])
                })?;
                Ok(self.keep(TABLE_STATS_COLUMNS.map(String::from).to_vec(), vec![row]))
            }
            AnalyticsQuery::QueryHistory { since } => {
                let rows = {
                    let history = self.history.lock().unwrap_or_else(|e| e.into_inner());
                    history
                        .iter()
                        .filter(|entry| entry.submitted_at >= *since)
                        .map(|entry| {
                            vec![
                                Cell::Text(entry.id.clone()),
                                Cell::Text(entry.state.into()),
                                Cell::Text(entry.statement.clone()),
                                Cell::Timestamp(entry.submitted_at),
                                Cell::Timestamp(entry.completed_at),
                                Cell::Integer(entry.bytes),
                                Cell::Integer(entry.ms),
                                entry.error.clone().map(Cell::Text).unwrap_or(Cell::Null),
                            ]
                        })
                        .collect()
                };
                Ok(self.keep(QUERY_HISTORY_COLUMNS.map(String::from).to_vec(), rows))
            }
        }
    }
}

/// A source naming a table must name the folder's table.
fn check_table(source: &WarehouseSource, table: &LoadedTable) -> Result<(), AnalyticsError> {
    match source.table.as_deref().map(str::trim) {
        Some(name) if !name.is_empty() && !name.eq_ignore_ascii_case(&table.name) => {
            Err(AnalyticsError::Failed(format!(
                "table '{name}' does not exist (this folder's table is '{}')",
                table.name
            )))
        }
        _ => Ok(()),
    }
}

async fn blocking<T: Send + 'static>(
    job: impl FnOnce() -> Result<T, AnalyticsError> + Send + 'static,
) -> Result<T, AnalyticsError> {
    tokio::task::spawn_blocking(job)
        .await
        .map_err(|e| AnalyticsError::Unavailable(format!("the local engine's worker stopped: {e}")))?
}

#[async_trait]
impl Analytics for LocalWarehouse {
    async fn query(&self, source: &WarehouseSource, query: &AnalyticsQuery) -> Result<RowPage, AnalyticsError> {
        let inner = self.inner.clone();
        let source = source.clone();
        let query = query.clone();
        let run = blocking(move || inner.run(&source, &query));
        match self.timeout {
            Some(timeout) => tokio::time::timeout(timeout, run)
                .await
                .map_err(|_| AnalyticsError::Timeout(timeout.as_secs()))?,
            None => run.await,
        }
    }

    async fn next_page(&self, _: &WarehouseSource, cursor: &str) -> Result<RowPage, AnalyticsError> {
        self.inner.page(cursor)
    }

    async fn ping(&self, source: &WarehouseSource) -> Result<(), AnalyticsError> {
        let root = self.inner.root.clone();
        let folder = source.folder.clone();
        blocking(move || {
            let folder = resolve_folder(&root, folder.as_deref())?;
            std::fs::read_dir(&folder)
                .map(|_| ())
                .map_err(|e| AnalyticsError::Unavailable(format!("cannot read {}: {e}", folder.display())))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_stay_inside_the_root() {
        let root = std::env::temp_dir().join(format!("quper-cur-root-{}", std::process::id()));
        std::fs::create_dir_all(root.join("report")).unwrap();
        assert!(resolve_folder(&root, None).is_ok());
        assert!(resolve_folder(&root, Some(".")).is_ok());
        assert!(resolve_folder(&root, Some("report")).is_ok());
        for bad in ["/etc", "..", "report/../..", "../x"] {
            assert!(
                matches!(resolve_folder(&root, Some(bad)), Err(AnalyticsError::NotConfigured(_))),
                "{bad}"
            );
        }
        std::fs::remove_dir_all(&root).unwrap();
    }
}
