//! The aggregates `cur_cost_sync` keeps and every FinOps answer reads: one
//! item per day (more when a day's rows pass [`CHUNK_BYTES`]) holding that
//! day's `DailyCosts` rows packed as a JSON array of arrays, a header per day
//! with the content hash that lets a re-sync skip unchanged days, and a
//! meta item with the freshness every answer reports (`data_as_of`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{DomainError, DomainResult};
use crate::keys;
use crate::model::TenantId;
use crate::store::Store;

/// Packed bytes of one chunk item at most: well under DynamoDB's 400 KB.
pub const CHUNK_BYTES: usize = 200_000;

/// One `DailyCosts` row of a day (the day is its item's). Texts and tags
/// are shared with the chunk's dictionary, so reading a day allocates
/// per distinct value, not per row.
#[derive(Debug, Clone, PartialEq)]
pub struct CostRow {
    pub product_code: Arc<str>,
    pub product_name: Arc<str>,
    pub account_id: Arc<str>,
    pub region: Arc<str>,
    pub usage_type: Arc<str>,
    pub line_item_type: Arc<str>,
    pub unit: Arc<str>,
    pub currency: Arc<str>,
    /// User tags without their `user:` prefix.
    pub tags: Arc<BTreeMap<String, String>>,
    pub unblended: f64,
    pub net_unblended: f64,
    pub amortized: f64,
    pub usage_quantity: f64,
    pub line_items: i64,
}

/// A row as stored: indices into its chunk's dictionary of texts (eight)
/// and of tag sets (one), then the four amounts and the line-item count.
type PackedRow = (u32, u32, u32, u32, u32, u32, u32, u32, u32, f64, f64, f64, f64, i64);

/// One chunk as stored: `d` the texts, `t` the tag sets, `r` the rows.
#[derive(Default, Serialize, Deserialize)]
struct PackedChunk {
    d: Vec<String>,
    t: Vec<BTreeMap<String, String>>,
    r: Vec<PackedRow>,
}

/// Line item types kept apart from cost: credits and refunds are shown
/// beside the totals, never inside them (`docs/finops.md`).
pub fn is_credit(line_item_type: &str) -> bool {
    line_item_type.eq_ignore_ascii_case("Credit")
}
pub fn is_refund(line_item_type: &str) -> bool {
    line_item_type.eq_ignore_ascii_case("Refund")
}

impl CostRow {
    /// The order rows are stored in, so that a day's content hash does not
    /// depend on the order the warehouse answered.
    pub fn sort_key(&self) -> (&str, &str, &str, &str, &str, &str, &BTreeMap<String, String>) {
        (
            &self.product_code,
            &self.account_id,
            &self.region,
            &self.usage_type,
            &self.line_item_type,
            &self.unit,
            &self.tags,
        )
    }
}

/// One stored chunk of a day.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DayChunk {
    pub day: NaiveDate,
    pub chunk: u32,
    /// The chunk's rows, packed as JSON text (one attribute: compact on
    /// DynamoDB and one parse to read).
    pub rows: String,
}

/// What the sync knows of a stored day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DayHeader {
    pub day: NaiveDate,
    /// SHA-256 of the day's packed rows.
    pub hash: String,
    pub chunks: u32,
    pub rows: u64,
}

/// How fresh the aggregates are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncMeta {
    /// When `cur_cost_sync` last finished (the answers' `data_as_of`).
    pub synced_at: DateTime<Utc>,
    /// The newest and oldest usage day of the stored data.
    pub newest_usage_date: Option<NaiveDate>,
    pub oldest_usage_date: Option<NaiveDate>,
    /// The CUR's currency (the first row's; `USD` without data).
    pub currency: String,
}

pub async fn meta(store: &Store, tenant: &TenantId) -> DomainResult<Option<SyncMeta>> {
    store.get(&keys::finops_meta(tenant)).await
}

/// A range of days' rows, by day (days without data absent).
pub type Days = BTreeMap<NaiveDate, Arc<Vec<CostRow>>>;

/// Rows the process keeps of the days it read, at most (past it the cache
/// starts over).
pub const CACHE_ROWS: usize = 2_000_000;

type CachedDays = HashMap<(String, NaiveDate), (String, Arc<Vec<CostRow>>)>;

/// Days already read and unpacked, by tenant and day, with the content hash
/// they were read under. Content-addressed: a day is served from here only
/// while its stored header names the same hash, so an entry can never be
/// stale, whichever table or process wrote the day.
static CACHE: std::sync::OnceLock<std::sync::Mutex<(CachedDays, usize)>> = std::sync::OnceLock::new();

fn cache() -> std::sync::MutexGuard<'static, (CachedDays, usize)> {
    CACHE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The rows of the days `[first, last]`: the day headers (one query of
/// small items), then, unless every day is in the process's cache under
/// its current hash, one query of the days' chunks.
pub async fn load_days(store: &Store, tenant: &TenantId, first: NaiveDate, last: NaiveDate) -> DomainResult<Days> {
    let mut days = Days::new();
    if last < first {
        return Ok(days);
    }
    let headers: BTreeMap<NaiveDate, DayHeader> = store
        .query_all::<DayHeader>(keys::cost_day_headers(tenant, first, last))
        .await?
        .into_iter()
        .map(|header| (header.day, header))
        .collect();
    let tenant_key = tenant.to_string();
    {
        let cached = cache();
        for header in headers.values() {
            if let Some((hash, rows)) = cached.0.get(&(tenant_key.clone(), header.day))
                && *hash == header.hash
            {
                days.insert(header.day, rows.clone());
            }
        }
    }
    if days.len() == headers.len() {
        return Ok(days);
    }
    let mut texts: BTreeMap<NaiveDate, Vec<(u32, String)>> = BTreeMap::new();
    for chunk in store
        .query_all::<DayChunk>(keys::cost_days(tenant, first, last))
        .await?
    {
        // Only what a header vouches for: a day being rewritten chunk by
        // chunk counts once its header is written.
        if headers.get(&chunk.day).is_some_and(|h| chunk.chunk < h.chunks) {
            texts.entry(chunk.day).or_default().push((chunk.chunk, chunk.rows));
        }
    }
    for (day, mut chunks) in texts {
        if days.contains_key(&day) {
            continue;
        }
        chunks.sort_by_key(|(index, _)| *index);
        let mut rows = Vec::new();
        for (_, text) in &chunks {
            rows.extend(
                unpack(text).map_err(|err| {
                    DomainError::Internal(format!("the cost aggregate of {day} is unreadable: {err}"))
                })?,
            );
        }
        let rows = Arc::new(rows);
        let joined: Vec<&str> = chunks.iter().map(|(_, text)| text.as_str()).collect();
        let hash = crate::auth::sha256_hex(&joined.join("\n"));
        let mut cached = cache();
        if cached.1 + rows.len() > CACHE_ROWS {
            *cached = Default::default();
        }
        if rows.len() <= CACHE_ROWS {
            cached.1 += rows.len();
            if let Some((_, old)) = cached.0.insert((tenant_key.clone(), day), (hash, rows.clone())) {
                cached.1 -= old.len().min(cached.1);
            }
        }
        days.insert(day, rows);
    }
    Ok(days)
}

/// Builds one chunk, a dictionary at a time.
#[derive(Default)]
struct ChunkBuilder {
    chunk: PackedChunk,
    texts: HashMap<Arc<str>, u32>,
    tags: HashMap<Arc<BTreeMap<String, String>>, u32>,
    /// About the bytes of the chunk's JSON.
    size: usize,
}

impl ChunkBuilder {
    fn text(&mut self, value: &Arc<str>) -> u32 {
        if let Some(index) = self.texts.get(value) {
            return *index;
        }
        let index = self.chunk.d.len() as u32;
        self.size += value.len() + 4;
        self.chunk.d.push(value.to_string());
        self.texts.insert(value.clone(), index);
        index
    }

    fn tag_set(&mut self, value: &Arc<BTreeMap<String, String>>) -> u32 {
        if let Some(index) = self.tags.get(value) {
            return *index;
        }
        let index = self.chunk.t.len() as u32;
        self.size += value.iter().map(|(k, v)| k.len() + v.len() + 6).sum::<usize>() + 3;
        self.chunk.t.push(value.as_ref().clone());
        self.tags.insert(value.clone(), index);
        index
    }

    fn push(&mut self, row: &CostRow) {
        let packed = (
            self.text(&row.product_code),
            self.text(&row.product_name),
            self.text(&row.account_id),
            self.text(&row.region),
            self.text(&row.usage_type),
            self.text(&row.line_item_type),
            self.text(&row.unit),
            self.text(&row.currency),
            self.tag_set(&row.tags),
            row.unblended,
            row.net_unblended,
            row.amortized,
            row.usage_quantity,
            row.line_items,
        );
        // Nine indices and five numbers, written in full.
        self.size += 9 * 4 + 4 * 22 + 22;
        self.chunk.r.push(packed);
    }

    fn finish(self) -> DomainResult<String> {
        serde_json::to_string(&self.chunk).map_err(|err| DomainError::Internal(err.to_string()))
    }
}

/// `rows` packed into chunks of at most about [`CHUNK_BYTES`] (a row is
/// never split), and the SHA-256 of the day (of its packed chunks, so the
/// same rows in the same order hash the same).
pub fn pack(rows: &[CostRow]) -> DomainResult<(Vec<String>, String)> {
    let mut chunks = Vec::new();
    let mut current = ChunkBuilder::default();
    for row in rows {
        if !current.chunk.r.is_empty() && current.size > CHUNK_BYTES {
            chunks.push(std::mem::take(&mut current).finish()?);
        }
        current.push(row);
    }
    if !current.chunk.r.is_empty() || chunks.is_empty() {
        chunks.push(current.finish()?);
    }
    let hash = crate::auth::sha256_hex(&chunks.join("\n"));
    Ok((chunks, hash))
}

/// The rows of one stored chunk.
pub fn unpack(text: &str) -> Result<Vec<CostRow>, String> {
    let chunk: PackedChunk = serde_json::from_str(text).map_err(|err| err.to_string())?;
    let texts: Vec<Arc<str>> = chunk.d.into_iter().map(Arc::from).collect();
    let tags: Vec<Arc<BTreeMap<String, String>>> = chunk.t.into_iter().map(Arc::new).collect();
    let text = |index: u32| texts.get(index as usize).cloned().ok_or("a text index out of range");
    chunk
        .r
        .into_iter()
        .map(|r| {
            Ok(CostRow {
                product_code: text(r.0)?,
                product_name: text(r.1)?,
                account_id: text(r.2)?,
                region: text(r.3)?,
                usage_type: text(r.4)?,
                line_item_type: text(r.5)?,
                unit: text(r.6)?,
                currency: text(r.7)?,
                tags: tags.get(r.8 as usize).cloned().ok_or("a tag index out of range")?,
                unblended: r.9,
                net_unblended: r.10,
                amortized: r.11,
                usage_quantity: r.12,
                line_items: r.13,
            })
        })
        .collect::<Result<Vec<_>, &str>>()
        .map_err(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(count: usize) -> Vec<CostRow> {
        (0..count)
            .map(|i| CostRow {
                product_code: format!("Amazon{}", i % 40).into(),
                product_name: format!("Amazon product {}", i % 40).into(),
                account_id: format!("{:012}", i % 20).into(),
                region: "us-east-1".into(),
                usage_type: format!("USE1-BoxUsage:m5.{i}").into(),
                line_item_type: "Usage".into(),
                unit: "Hrs".into(),
                currency: "USD".into(),
                tags: Arc::new(
                    [
                        ("env".to_owned(), "prod".to_owned()),
                        ("team".to_owned(), format!("t{}", i % 7)),
                    ]
                    .into(),
                ),
                unblended: 1.5 + i as f64 / 1000.0,
                net_unblended: 1.4,
                amortized: 1.3,
                usage_quantity: 24.0,
                line_items: 24,
            })
            .collect()
    }

    #[test]
    fn a_day_packs_into_chunks_under_the_item_limit_and_back() {
        let day = rows(12_000);
        let (chunks, hash) = pack(&day).expect("pack");
        assert!(chunks.len() > 1, "a large day is split");
        // A chunk passes CHUNK_BYTES by at most one row and its new texts.
        assert!(
            chunks.iter().all(|c| c.len() < CHUNK_BYTES + 2_000),
            "chunks stay well under 400 KB"
        );
        let back: Vec<CostRow> = chunks.iter().flat_map(|c| unpack(c).expect("unpack")).collect();
        assert_eq!(back.len(), day.len());
        for (read, written) in back.iter().zip(&day) {
            // serde_json reads floats to within an ulp (no `float_roundtrip`).
            assert!((read.unblended - written.unblended).abs() < 1e-9);
            let same = |row: &CostRow| {
                (
                    row.sort_key().0.to_owned(),
                    row.account_id.clone(),
                    row.tags.clone(),
                    row.line_items,
                )
            };
            assert!(same(read) == same(written), "row {written:?} read back as {read:?}");
        }
        assert_eq!(pack(&day).expect("pack").1, hash, "the same rows hash the same");
        let mut changed = day.clone();
        changed[5].unblended += 0.01;
        assert_ne!(
            pack(&changed).expect("pack").1,
            hash,
            "a changed amount changes the hash"
        );
        assert_eq!(pack(&[]).expect("pack").0.len(), 1, "an empty day is one empty chunk");
    }

    #[test]
    fn a_chunk_with_an_index_out_of_range_is_an_error() {
        assert!(unpack(r#"{"d":["a"],"t":[{}],"r":[[0,0,0,0,0,0,0,7,0,1.0,1.0,1.0,1.0,1]]}"#).is_err());
        assert!(unpack("not json").is_err());
    }
}
