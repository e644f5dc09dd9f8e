//! The incident list: newest first, PagerPal's page numbers and filters, and
//! a cursor for cheap iteration.
//!
//! Without filters (or with only `status`) the list reads one index partition
//! page by page and takes its total from a counter kept in the same
//! transactions that change incidents. With `team_id`, `severity` or
//! `source_id` it scans the partition and filters, counting matches as it
//! goes (bounded by `MAX_SCANNED`).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{DomainError, DomainResult};
use crate::identity::{Permission, Principal};
use crate::incidents::model::{Incident, IncidentStatus, IncidentView, count_counter};
use crate::ingest::event::Severity;
use crate::keys;
use crate::model::TenantId;
use crate::ports::{Index, Query, table::COUNTER_VALUE};
use crate::store::{ListPage, PageRequest, Store, from_item};

/// Most incidents one filtered list reads.
pub const MAX_SCANNED: usize = 20_000;

#[derive(Debug, Clone, Default)]
pub struct IncidentFilter {
    pub status: Option<IncidentStatus>,
    pub team_id: Option<u64>,
    pub severity: Option<Severity>,
    pub source_id: Option<u64>,
}

impl IncidentFilter {
    fn needs_scan(&self) -> bool {
        self.team_id.is_some() || self.severity.is_some() || self.source_id.is_some()
    }

    fn keeps(&self, incident: &Incident) -> bool {
        self.team_id.is_none_or(|t| incident.team_id == Some(t))
            && self.severity.is_none_or(|s| incident.severity == s)
            && self.source_id.is_none_or(|s| incident.source_id == Some(s))
    }
}

/// Where the next page starts: after a table cursor (unfiltered lists) or at
/// an offset (filtered scans).
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
enum Cursor {
    Table { after: String, page: u64 },
    Offset { offset: u64 },
}

fn encode(cursor: &Cursor) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(cursor).unwrap_or_default())
}

fn decode(text: &str) -> DomainResult<Cursor> {
    URL_SAFE_NO_PAD
        .decode(text)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| DomainError::validation("cursor", "is not a cursor this list issued"))
}

fn partition(tenant: &TenantId, status: Option<IncidentStatus>) -> Query {
    match status {
        Some(status) => Query::index(Index::Gsi2, keys::incidents_by_status_gsi2pk(tenant, status.as_str())),
        None => Query::index(Index::Gsi1, keys::incidents_gsi1pk(tenant)),
    }
    .backwards()
}

async fn counted_total(store: &Store, tenant: &TenantId, status: Option<IncidentStatus>) -> DomainResult<u64> {
    let item = store
        .table()
        .get(&keys::counter(tenant, &count_counter(status)))
        .await?;
    Ok(item
        .and_then(|i| i.get(COUNTER_VALUE).and_then(Value::as_i64))
        .unwrap_or(0)
        .max(0) as u64)
}

pub async fn list(
    store: &Store,
    caller: &Principal,
    filter: &IncidentFilter,
    request: PageRequest,
    cursor: Option<&str>,
) -> DomainResult<ListPage<IncidentView>> {
    caller.require(Permission::IncidentsRead)?;
    let tenant = caller.tenant();
    let size = request.page_size.max(1);
    let cursor = cursor.map(decode).transpose()?;
    if filter.needs_scan() {
        return scan(store, tenant, filter, request, cursor).await;
    }
    let total = counted_total(store, tenant, filter.status).await?;
    let (page, query) = match cursor {
        Some(Cursor::Table { after, page }) => (
            page,
            partition(tenant, filter.status).limit(size as u32).after(Some(after)),
        ),
        Some(Cursor::Offset { .. }) => return Err(DomainError::validation("cursor", "belongs to a filtered list")),
        None => {
            // Page N: skip the pages before it in the index, then read one.
            // Saturating: a page past any list (however large the number) is empty.
            let skip = (request.page.max(1) - 1).saturating_mul(size);
            let mut query = partition(tenant, filter.status);
            let (mut skipped, mut at_end) = (0, false);
            while skipped < skip {
                let step = (skip - skipped).min(1000);
                let page = store.table().query(query.clone().limit(step as u32)).await?;
                skipped += page.items.len() as u64;
                match page.cursor {
                    Some(next) => query.cursor = Some(next),
                    None => {
                        // Nothing after what was skipped (reading on without
                        // a cursor would start over at page 1).
                        at_end = true;
                        break;
                    }
                }
            }
            if at_end || skipped < skip {
                return Ok(ListPage {
                    items: Vec::new(),
                    total,
                    page: request.page,
                    page_size: size,
                    total_pages: total.div_ceil(size),
                    next_cursor: None,
                });
            }
            (request.page.max(1), query.limit(size as u32))
        }
    };
    let result = store.table().query(query).await?;
    let items = result
        .items
        .into_iter()
        .map(|item| from_item::<Incident>(item).map(|i| IncidentView::from(&i)))
        .collect::<DomainResult<Vec<_>>>()?;
    Ok(ListPage {
        items,
        total,
        page,
        page_size: size,
        total_pages: total.div_ceil(size),
        next_cursor: result.cursor.map(|after| {
            encode(&Cursor::Table {
                after,
                page: page.saturating_add(1),
            })
        }),
    })
}

async fn scan(
    store: &Store,
    tenant: &TenantId,
    filter: &IncidentFilter,
    request: PageRequest,
    cursor: Option<Cursor>,
) -> DomainResult<ListPage<IncidentView>> {
    let size = request.page_size.max(1);
    let start = match cursor {
        Some(Cursor::Offset { offset }) => offset,
        Some(Cursor::Table { .. }) => return Err(DomainError::validation("cursor", "belongs to an unfiltered list")),
        None => (request.page.max(1) - 1).saturating_mul(size),
    };
    let mut query = partition(tenant, filter.status).limit(1000);
    let (mut matched, mut scanned, mut items) = (0u64, 0usize, Vec::new());
    loop {
        let page = store.table().query(query.clone()).await?;
        scanned += page.items.len();
        for item in page.items {
            let incident: Incident = from_item(item)?;
            if filter.keeps(&incident) {
                if matched >= start && items.len() < size as usize {
                    items.push(IncidentView::from(&incident));
                }
                matched += 1;
            }
        }
        match page.cursor {
            Some(next) if scanned < MAX_SCANNED => query.cursor = Some(next),
            _ => break,
        }
    }
    let end = start.saturating_add(items.len() as u64);
    Ok(ListPage {
        items,
        total: matched,
        page: (start / size).saturating_add(1),
        page_size: size,
        total_pages: matched.div_ceil(size),
        next_cursor: (end < matched).then(|| encode(&Cursor::Offset { offset: end })),
    })
}

/// The timeline of an incident, oldest first.
pub async fn timeline(
    store: &Store,
    caller: &Principal,
    id: u64,
) -> DomainResult<Vec<crate::incidents::model::TimelineEvent>> {
    crate::incidents::lifecycle::get(store, caller, id).await?;
    store.query_all(keys::incident_events(caller.tenant(), id)).await
}
