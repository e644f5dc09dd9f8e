//! Incident analytics over a range of time: mean time to acknowledge and to
//! resolve, incidents by team, service and severity, pages per person and
//! pages sent out of hours.
//!
//! What the range selects: the incidents **opened** in `[start, end)`. Their
//! first acknowledgement and their resolution count when they happened
//! before `end`; their pages (notification rows addressed to a person) when
//! they were written in `[start, end)`. An incident opened before `start`
//! is not counted, even if it was acknowledged, resolved or paged in the
//! range (the incident index is ordered by number, which grows with
//! creation time; nothing indexes acknowledgements or pages by time).
//!
//! A "service" is the alert source an incident came in through. Working
//! hours are 09:00 to 18:00, Monday to Friday, in the paged person's own
//! time zone (UTC when the person has none); a page outside them is an
//! out-of-hours page.
//!
//! Cost: the incident index is binary-searched for the newest incident
//! opened before `end` (a few one-item queries), then read newest first
//! until an incident opened before `start`; each incident in the range
//! costs one more query (its timeline events and notification rows), a few
//! at a time. A range of more than [`MAX_INCIDENTS`] incidents is refused.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Datelike, Duration, Timelike, Utc, Weekday};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::alerting::sources::AlertSource;
use crate::error::{DomainError, DomainResult};
use crate::identity::teams::Team;
use crate::identity::users::User;
use crate::identity::{Permission, Principal};
use crate::incidents::model::{Incident, IncidentStatus};
use crate::ingest::event::Severity;
use crate::keys;
use crate::model::TenantId;
use crate::ports::{Query, table::SK};
use crate::store::{Store, from_item};

/// The range when none is asked for: the last 30 days.
pub const DEFAULT_DAYS: i64 = 30;
/// The longest range one report covers.
pub const MAX_DAYS: i64 = 366;
/// Most incidents one report covers.
pub const MAX_INCIDENTS: usize = 5_000;
/// Working hours: from 09:00 to 18:00 local time, Monday to Friday.
pub const WORKDAY_START_HOUR: u32 = 9;
pub const WORKDAY_END_HOUR: u32 = 18;
/// How many incidents' histories are read at once.
const CONCURRENT_READS: usize = 16;
/// Incidents are read newest first until one opened this long before
/// `start`: numbers are drawn before the clock is read, so two instances
/// may open incidents a little out of order.
const CLOCK_SLACK_MINUTES: i64 = 5;
const PAGE_SIZE: u32 = 200;

/// The range a report covers, `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Range {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

fn instant(field: &str, text: &str) -> DomainResult<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| DomainError::validation(field, "must be an RFC 3339 instant, e.g. 2027-01-11T09:00:00Z"))
}

impl Range {
    /// The range asked for: `end` defaults to now, `start` to [`DEFAULT_DAYS`]
    /// before `end`; `end` must be after `start`, at most [`MAX_DAYS`] later.
    pub fn parse(start: Option<&str>, end: Option<&str>, now: DateTime<Utc>) -> DomainResult<Range> {
        let end = end.map(|text| instant("end", text)).transpose()?.unwrap_or(now);
        let start = match start {
            Some(text) => instant("start", text)?,
            None => end
                .checked_sub_signed(Duration::days(DEFAULT_DAYS))
                .ok_or_else(|| DomainError::validation("end", "is too early"))?,
        };
        if end <= start {
            return Err(DomainError::validation("end", "must be after start"));
        }
        if end - start > Duration::days(MAX_DAYS) {
            return Err(DomainError::validation(
                "start",
                format!("must be at most {MAX_DAYS} days before end"),
            ));
        }
        Ok(Range { start, end })
    }

    fn contains(&self, at: DateTime<Utc>) -> bool {
        self.start <= at && at < self.end
    }
}

/// Incidents of one team (`team_id` null: incidents without a team).
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct TeamCount {
    pub team_id: Option<u64>,
    /// The team's name (null without a team, or when it was deleted).
    pub name: Option<String>,
    pub count: u64,
}

/// Incidents of one service, the alert source they came in through
/// (`source_id` null: incidents opened without one).
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct ServiceCount {
    pub source_id: Option<u64>,
    pub name: Option<String>,
    pub count: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, schemars::JsonSchema)]
pub struct SeverityCounts {
    pub critical: u64,
    pub warning: u64,
    pub info: u64,
}

/// The pages one person got in the range.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct PersonPages {
    pub user_id: u64,
    /// The person's full name (null when the account was deleted).
    pub name: Option<String>,
    pub pages: u64,
    /// Of those, how many came outside the person's working hours.
    pub out_of_hours_pages: u64,
}

/// The incident analytics of one tenant over one range.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct IncidentAnalytics {
    /// The range actually used, `[start, end)`.
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// Incidents opened in the range.
    pub incident_count: u64,
    /// Of those, acknowledged before `end` (the first acknowledgement).
    pub acknowledged_count: u64,
    /// Of those, resolved before `end` (and not reopened since).
    pub resolved_count: u64,
    /// Mean seconds from opening to the first acknowledgement, over the
    /// acknowledged incidents; null when there are none.
    pub mtta_seconds: Option<f64>,
    /// Mean seconds from opening to resolution, over the resolved
    /// incidents; null when there are none.
    pub mttr_seconds: Option<f64>,
    /// Most incidents first.
    pub by_team: Vec<TeamCount>,
    /// Most incidents first; a service is an alert source.
    pub by_service: Vec<ServiceCount>,
    pub by_severity: SeverityCounts,
    /// Pages (notification rows addressed to a person) written in the range.
    pub page_count: u64,
    /// Most pages first.
    pub pages_per_person: Vec<PersonPages>,
    /// Pages outside 09:00-18:00 Monday to Friday in the paged person's time
    /// zone (UTC when none is set).
    pub out_of_hours_pages: u64,
}

/// Whether `at` falls outside working hours in `zone` (an IANA name; UTC
/// when missing or unknown).
pub fn out_of_hours(at: DateTime<Utc>, zone: Option<&str>) -> bool {
    let zone: chrono_tz::Tz = zone.and_then(|z| z.parse().ok()).unwrap_or(chrono_tz::UTC);
    let local = at.with_timezone(&zone);
    matches!(local.weekday(), Weekday::Sat | Weekday::Sun)
        || local.hour() < WORKDAY_START_HOUR
        || local.hour() >= WORKDAY_END_HOUR
}

/// The report for the caller's tenant. Any active account may read it.
pub async fn report(
    store: &Store,
    caller: &Principal,
    start: Option<&str>,
    end: Option<&str>,
) -> DomainResult<IncidentAnalytics> {
    caller.require(Permission::IncidentsRead)?;
    let range = Range::parse(start, end, store.now())?;
    let tenant = caller.tenant();
    let incidents = opened_in(store, tenant, range).await?;
    let histories = histories(store, tenant, &incidents, range).await?;

    let mut by_team: BTreeMap<Option<u64>, u64> = BTreeMap::new();
    let mut by_service: BTreeMap<Option<u64>, u64> = BTreeMap::new();
    let mut by_severity = SeverityCounts::default();
    let (mut ack_total, mut ack_count, mut resolve_total, mut resolve_count) = (0i64, 0u64, 0i64, 0u64);
    let mut pages: BTreeMap<u64, Vec<DateTime<Utc>>> = BTreeMap::new();
    for (incident, history) in incidents.iter().zip(histories) {
        *by_team.entry(incident.team_id).or_default() += 1;
        *by_service.entry(incident.source_id).or_default() += 1;
        match incident.severity {
            Severity::Critical => by_severity.critical += 1,
            Severity::Warning => by_severity.warning += 1,
            Severity::Info => by_severity.info += 1,
        }
        if let Some(acked) = history.first_ack.filter(|at| *at < range.end) {
            ack_total += (acked - incident.created_at).num_seconds();
            ack_count += 1;
        }
        if incident.status == IncidentStatus::Resolved
            && let Some(resolved) = incident.resolved_at.filter(|at| *at < range.end)
        {
            resolve_total += (resolved - incident.created_at).num_seconds();
            resolve_count += 1;
        }
        for (user, at) in history.pages {
            pages.entry(user).or_default().push(at);
        }
    }
    let mean = |total: i64, count: u64| (count > 0).then(|| total as f64 / count as f64);

    let mut pages_per_person = Vec::with_capacity(pages.len());
    let mut out_of_hours_pages = 0;
    for (user_id, times) in pages {
        let user: Option<User> = store.get(&keys::user(tenant, user_id)).await?;
        let zone = user.as_ref().and_then(|u| u.timezone.as_deref());
        let late = times.iter().filter(|at| out_of_hours(**at, zone)).count() as u64;
        out_of_hours_pages += late;
        pages_per_person.push(PersonPages {
            user_id,
            name: user.map(|u| u.full_name),
            pages: times.len() as u64,
            out_of_hours_pages: late,
        });
    }
    pages_per_person.sort_by(|a, b| b.pages.cmp(&a.pages).then(a.user_id.cmp(&b.user_id)));

    let mut teams = Vec::with_capacity(by_team.len());
    for (team_id, count) in by_team {
        let name = match team_id {
            Some(id) => store.get::<Team>(&keys::team(tenant, id)).await?.map(|t| t.name),
            None => None,
        };
        teams.push(TeamCount { team_id, name, count });
    }
    teams.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then(a.team_id.is_none().cmp(&b.team_id.is_none()))
    });
    let mut services = Vec::with_capacity(by_service.len());
    for (source_id, count) in by_service {
        let name = match source_id {
            Some(id) => store
                .get::<AlertSource>(&keys::source(tenant, id))
                .await?
                .map(|s| s.name),
            None => None,
        };
        services.push(ServiceCount { source_id, name, count });
    }
    services.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then(a.source_id.is_none().cmp(&b.source_id.is_none()))
    });

    Ok(IncidentAnalytics {
        start: range.start,
        end: range.end,
        incident_count: incidents.len() as u64,
        acknowledged_count: ack_count,
        resolved_count: resolve_count,
        mtta_seconds: mean(ack_total, ack_count),
        mttr_seconds: mean(resolve_total, resolve_count),
        by_team: teams,
        by_service: services,
        by_severity,
        page_count: pages_per_person.iter().map(|p| p.pages).sum(),
        pages_per_person,
        out_of_hours_pages,
    })
}

/// The first incident a query finds.
async fn first(store: &Store, query: Query) -> DomainResult<Option<Incident>> {
    let page = store.table().query(query.limit(1)).await?;
    page.items.into_iter().next().map(from_item).transpose()
}

/// The number of the newest incident opened before `before`: a binary
/// search over the numbers (which grow with creation time), each step one
/// one-item query for the nearest incident at or below a number (numbers of
/// deleted incidents are skipped).
async fn newest_before(store: &Store, tenant: &TenantId, before: DateTime<Utc>) -> DomainResult<Option<u64>> {
    let newest = match first(store, keys::incidents_up_to(tenant, u64::MAX)).await? {
        Some(incident) => incident,
        None => return Ok(None),
    };
    if newest.created_at < before {
        return Ok(Some(newest.id));
    }
    // Every existing number <= lo was opened before `before`; `hi` was not.
    let (mut lo, mut hi) = (0u64, newest.id);
    while lo + 1 < hi {
        let mid = lo + (hi - lo) / 2;
        match first(store, keys::incidents_up_to(tenant, mid)).await? {
            Some(incident) if incident.created_at >= before => hi = incident.id,
            _ => lo = mid,
        }
    }
    Ok((lo > 0).then_some(lo))
}

/// The incidents opened in `range`, newest first.
async fn opened_in(store: &Store, tenant: &TenantId, range: Range) -> DomainResult<Vec<Incident>> {
    let Some(upper) = newest_before(store, tenant, range.end).await? else {
        return Ok(Vec::new());
    };
    let stop_before = range
        .start
        .checked_sub_signed(Duration::minutes(CLOCK_SLACK_MINUTES))
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    let mut query = keys::incidents_up_to(tenant, upper).limit(PAGE_SIZE);
    let mut found = Vec::new();
    loop {
        let page = store.table().query(query.clone()).await?;
        for item in page.items {
            let incident: Incident = from_item(item)?;
            if incident.created_at < stop_before {
                return Ok(found);
            }
            if range.contains(incident.created_at) {
                if found.len() >= MAX_INCIDENTS {
                    return Err(DomainError::validation(
                        "start",
                        format!("the range holds more than {MAX_INCIDENTS} incidents: choose a shorter one"),
                    ));
                }
                found.push(incident);
            }
        }
        match page.cursor {
            Some(next) => query.cursor = Some(next),
            None => return Ok(found),
        }
    }
}

/// What one incident's history adds to the report.
#[derive(Debug, Default)]
struct History {
    first_ack: Option<DateTime<Utc>>,
    /// (user, when) of each page written in the range.
    pages: Vec<(u64, DateTime<Utc>)>,
}

#[derive(Deserialize)]
struct EventFields {
    event_type: String,
    created_at: DateTime<Utc>,
}

#[derive(Deserialize)]
struct RowFields {
    user_id: Option<u64>,
    created_at: DateTime<Utc>,
}

/// The histories of `incidents`, in their order, a few read at once.
async fn histories(
    store: &Store,
    tenant: &TenantId,
    incidents: &[Incident],
    range: Range,
) -> DomainResult<Vec<History>> {
    let mut all = Vec::with_capacity(incidents.len());
    for chunk in incidents.chunks(CONCURRENT_READS) {
        let mut reads = tokio::task::JoinSet::new();
        for (index, incident) in chunk.iter().enumerate() {
            let (store, tenant, incident) = (store.clone(), tenant.clone(), incident.clone());
            reads.spawn(async move { (index, history(&store, &tenant, &incident, range).await) });
        }
        let mut done: HashMap<usize, History> = HashMap::with_capacity(chunk.len());
        while let Some(joined) = reads.join_next().await {
            let (index, history) =
                joined.map_err(|err| DomainError::Internal(format!("incident history read: {err}")))?;
            done.insert(index, history?);
        }
        for index in 0..chunk.len() {
            all.push(done.remove(&index).unwrap_or_default());
        }
    }
    Ok(all)
}

/// One incident's first acknowledgement (from its timeline: a reopened
/// incident's record keeps only the latest) and its pages in the range.
async fn history(store: &Store, tenant: &TenantId, incident: &Incident, range: Range) -> DomainResult<History> {
    let mut history = History::default();
    let mut query = keys::incident_history(tenant, incident.id).limit(PAGE_SIZE);
    loop {
        let page = store.table().query(query.clone()).await?;
        for item in page.items {
            let sort = item.get(SK).and_then(Value::as_str).unwrap_or_default().to_owned();
            if sort.starts_with("EVT#") {
                let event: EventFields = from_item(item)?;
                if event.event_type == "acknowledged" {
                    history.first_ack = Some(match history.first_ack {
                        Some(earlier) => earlier.min(event.created_at),
                        None => event.created_at,
                    });
                }
            } else if sort.starts_with("NTF#") {
                let row: RowFields = from_item(item)?;
                if let Some(user) = row.user_id
                    && range.contains(row.created_at)
                {
                    history.pages.push((user, row.created_at));
                }
            }
        }
        match page.cursor {
            Some(next) => query.cursor = Some(next),
            None => break,
        }
    }
    // Incidents stored before their timelines recorded acknowledgements.
    history.first_ack = history.first_ack.or(incident.acknowledged_at);
    Ok(history)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0).single().expect("time")
    }

    #[test]
    fn working_hours_are_the_persons_own() {
        // Monday 11 January 2027.
        assert!(!out_of_hours(at(2027, 1, 11, 9, 0), None));
        assert!(!out_of_hours(at(2027, 1, 11, 17, 59), Some("UTC")));
        assert!(out_of_hours(at(2027, 1, 11, 18, 0), None));
        assert!(out_of_hours(at(2027, 1, 11, 8, 59), None));
        // 10:00 UTC is 05:00 in New York, 11:00 in Berlin.
        assert!(out_of_hours(at(2027, 1, 11, 10, 0), Some("America/New_York")));
        assert!(!out_of_hours(at(2027, 1, 11, 10, 0), Some("Europe/Berlin")));
        // Saturday noon.
        assert!(out_of_hours(at(2027, 1, 16, 12, 0), None));
        // Sunday 23:30 UTC is Monday 08:30 in Tokyo (before work), Monday
        // 01:30 UTC is Monday 10:30 in Tokyo.
        assert!(out_of_hours(at(2027, 1, 17, 23, 30), Some("Asia/Tokyo")));
        assert!(!out_of_hours(at(2027, 1, 18, 1, 30), Some("Asia/Tokyo")));
    }

    #[test]
    fn ranges() {
        let now = at(2027, 2, 1, 0, 0);
        let default = Range::parse(None, None, now).expect("default");
        assert_eq!((default.start, default.end), (now - Duration::days(30), now));
        let asked = Range::parse(Some("2027-01-01T00:00:00Z"), Some("2027-01-02T00:00:00+01:00"), now).expect("asked");
        assert_eq!((asked.start, asked.end), (at(2027, 1, 1, 0, 0), at(2027, 1, 1, 23, 0)));
        let field = |r: DomainResult<Range>| match r {
            Err(DomainError::Validation { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field(Range::parse(Some("yesterday"), None, now)), "start");
        // The extremes RFC 3339 allows do not overflow.
        let first = Range::parse(None, Some("0000-01-01T00:00:00Z"), now).expect("year 0");
        assert_eq!(first.end - first.start, Duration::days(DEFAULT_DAYS));
        assert!(Range::parse(Some("9999-12-31T00:00:00Z"), Some("9999-12-31T23:59:59Z"), now).is_ok());
        assert_eq!(
            field(Range::parse(
                Some("0000-01-01T00:00:00Z"),
                Some("9999-12-31T23:59:59Z"),
                now
            )),
            "start"
        );
        assert_eq!(field(Range::parse(None, Some("2027-13-01T00:00:00Z"), now)), "end");
        assert_eq!(
            field(Range::parse(
                Some("2027-01-02T00:00:00Z"),
                Some("2027-01-02T00:00:00Z"),
                now
            )),
            "end"
        );
        assert_eq!(
            field(Range::parse(
                Some("2025-01-01T00:00:00Z"),
                Some("2026-01-03T00:00:00Z"),
                now
            )),
            "start"
        );
    }
}
