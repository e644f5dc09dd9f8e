//! On-call schedules (PagerPal's schedules and entries, plus rotation layers):
//! who is on call when.
//!
//! A schedule holds its rotation layers; its entries (PagerPal's explicit
//! shifts and overrides) are items of their own. Normal entries may not
//! overlap each other (409); overrides may, and win. Entry writes bump the
//! schedule's version in the same transaction, so two concurrent overlapping
//! entries cannot both pass the overlap check.

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{DomainError, DomainResult};
use crate::identity::users::TimeZoneName;
use crate::identity::{Permission, Principal, teams, users};
use crate::keys;
use crate::model::Name;
use crate::model::TenantId;
use crate::oncall::rotation::{self, RotationLayer, ScheduleEntry, Shift, ShiftUnit};
use crate::ports::table::Update;
use crate::ports::{Condition, WriteOp};
use crate::store::{Attempt, Store, lost_race, to_item};

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Schedule {
    pub id: u64,
    pub name: String,
    pub description: Option<String>,
    pub time_zone: String,
    pub team_id: Option<u64>,
    pub layers: Vec<RotationLayer>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: u64,
}

/// A rotation layer as a client writes it.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewLayer {
    #[serde(default)]
    #[schemars(length(max = crate::model::limits::NAME))]
    pub name: Option<String>,
    pub user_ids: Vec<u64>,
    #[schemars(range(min = 1, max = crate::oncall::rotation::MAX_SHIFT_LENGTH))]
    pub shift_length: u32,
    pub shift_unit: ShiftUnit,
    /// The first handoff, in the layer's local time.
    pub start: NaiveDateTime,
    /// Defaults to the schedule's time zone.
    #[serde(default)]
    pub time_zone: Option<TimeZoneName>,
    #[serde(default)]
    pub end: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSchedule {
    pub name: Name,
    #[serde(default)]
    #[schemars(length(max = crate::model::limits::DESCRIPTION))]
    pub description: Option<String>,
    #[serde(default)]
    pub time_zone: Option<TimeZoneName>,
    #[serde(default)]
    pub team_id: Option<u64>,
    #[serde(default)]
    pub layers: Vec<NewLayer>,
}

#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SchedulePatch {
    pub name: Option<Name>,
    #[schemars(length(max = crate::model::limits::DESCRIPTION))]
    pub description: Option<String>,
    pub time_zone: Option<TimeZoneName>,
    pub team_id: Option<u64>,
    /// Replaces every layer.
    pub layers: Option<Vec<NewLayer>>,
}

/// A stored entry: PagerPal's explicit shift or override.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EntryRecord {
    pub id: u64,
    pub schedule_id: u64,
    pub user_id: u64,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub is_override: bool,
    pub created_at: DateTime<Utc>,
}

impl From<&EntryRecord> for ScheduleEntry {
    fn from(entry: &EntryRecord) -> Self {
        ScheduleEntry {
            id: entry.id,
            user_id: entry.user_id,
            start: entry.start,
            end: entry.end,
            is_override: entry.is_override,
        }
    }
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEntry {
    pub user_id: u64,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    #[serde(default)]
    pub is_override: bool,
}

/// The final shifts of a window.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Timeline {
    pub schedule_id: u64,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub shifts: Vec<Shift>,
}

/// Longest timeline window one request may ask for.
pub const MAX_TIMELINE_DAYS: i64 = 93;

async fn build_layers(
    store: &Store,
    tenant: &TenantId,
    schedule_zone: &str,
    layers: Vec<NewLayer>,
) -> DomainResult<Vec<RotationLayer>> {
    let mut built = Vec::with_capacity(layers.len());
    for (index, layer) in layers.into_iter().enumerate() {
        for user in &layer.user_ids {
            users::find_active_for_reference(store, tenant, *user).await?;
        }
        let rotation = RotationLayer {
            id: uuid::Uuid::new_v4().to_string(),
            name: layer.name.unwrap_or_else(|| format!("Layer {}", index + 1)),
            user_ids: layer.user_ids,
            shift_length: layer.shift_length,
            shift_unit: layer.shift_unit,
            start: layer.start,
            time_zone: layer.time_zone.map_or_else(|| schedule_zone.to_owned(), String::from),
            end: layer.end,
        };
        rotation
            .validate()
            .map_err(|(field, message)| DomainError::validation(format!("layers[{index}].{field}"), message))?;
        built.push(rotation);
    }
    Ok(built)
}

fn check_zone(zone: &str) -> DomainResult<()> {
    zone.parse::<chrono_tz::Tz>()
        .map(|_| ())
        .map_err(|_| DomainError::validation("time_zone", format!("{zone} is not an IANA time zone")))
}

crate::record!(Schedule, "Schedule", u64, |tenant, id| keys::schedule(tenant, *id));

pub async fn find(store: &Store, tenant: &TenantId, id: u64) -> DomainResult<Option<Schedule>> {
    store.find(tenant, &id).await
}

pub async fn get(store: &Store, caller: &Principal, id: u64) -> DomainResult<Schedule> {
    caller.require(Permission::ConfigRead)?;
    store.fetch(caller.tenant(), &id).await
}

pub async fn list(store: &Store, caller: &Principal) -> DomainResult<Vec<Schedule>> {
    caller.require(Permission::ConfigRead)?;
    store.query_all(keys::schedules(caller.tenant())).await
}

pub async fn create(store: &Store, caller: &Principal, new: NewSchedule) -> DomainResult<Schedule> {
    caller.require(Permission::ConfigWrite)?;
    let tenant = caller.tenant();
    let time_zone = new.time_zone.map_or_else(|| "UTC".to_owned(), String::from);
    check_zone(&time_zone)?;
    teams::check_reference(store, tenant, new.team_id).await?;
    let layers = build_layers(store, tenant, &time_zone, new.layers).await?;
    let now = store.now();
    let schedule = Schedule {
        id: store.next_id(tenant, "schedule").await?,
        name: new.name.into_inner(),
        description: new.description,
        time_zone,
        team_id: new.team_id,
        layers,
        created_at: now,
        updated_at: now,
        version: 1,
    };
    store.insert(tenant, &schedule).await?;
    Ok(schedule)
}

pub async fn update(store: &Store, caller: &Principal, id: u64, patch: SchedulePatch) -> DomainResult<Schedule> {
    caller.require(Permission::ConfigWrite)?;
    let tenant = caller.tenant();
    let mut schedule = get(store, caller, id).await?;
    if let Some(name) = patch.name {
        schedule.name = name.into_inner();
    }
    if let Some(description) = patch.description {
        schedule.description = Some(description);
    }
    if let Some(zone) = patch.time_zone {
        let zone = String::from(zone);
        check_zone(&zone)?;
        schedule.time_zone = zone;
    }
    if let Some(team) = patch.team_id {
        teams::check_reference(store, tenant, Some(team)).await?;
        schedule.team_id = Some(team);
    }
    if let Some(layers) = patch.layers {
        schedule.layers = build_layers(store, tenant, &schedule.time_zone, layers).await?;
    }
    store.save(tenant, &mut schedule).await?;
    Ok(schedule)
}

pub async fn delete(store: &Store, caller: &Principal, id: u64) -> DomainResult<()> {
    caller.require(Permission::ConfigWrite)?;
    get(store, caller, id).await?;
    let entries = entries_of(store, caller.tenant(), id).await?;
    store
        .delete_all(
            entries
                .iter()
                .map(|e| keys::schedule_entry(caller.tenant(), id, e.id))
                .collect(),
        )
        .await?;
    store.remove::<Schedule>(caller.tenant(), &id).await
}

async fn entries_of(store: &Store, tenant: &TenantId, id: u64) -> DomainResult<Vec<EntryRecord>> {
    store.query_all(keys::schedule_entries(tenant, id)).await
}

pub async fn list_entries(store: &Store, caller: &Principal, id: u64) -> DomainResult<Vec<EntryRecord>> {
    get(store, caller, id).await?;
    entries_of(store, caller.tenant(), id).await
}

/// Adds an entry: the user must be active (400) and a normal entry may not
/// overlap another normal entry (409).
pub async fn add_entry(store: &Store, caller: &Principal, id: u64, new: NewEntry) -> DomainResult<EntryRecord> {
    caller.require(Permission::ConfigWrite)?;
    let tenant = caller.tenant();
    rotation::validate_entry(new.start, new.end).map_err(|(field, message)| DomainError::validation(field, message))?;
    let user = users::find_active_for_reference(store, tenant, new.user_id).await?;
    crate::retrying!("the schedule", {
        let schedule = get(store, caller, id).await?;
        let existing = entries_of(store, tenant, id).await?;
        if !new.is_override
            && let Some(clash) = existing
                .iter()
                .find(|e| !e.is_override && e.start < new.end && new.start < e.end)
        {
            return Err(DomainError::Conflict(format!(
                "the entry overlaps entry {} ({} to {}); send is_override: true to cover it",
                clash.id, clash.start, clash.end
            )));
        }
        let entry = EntryRecord {
            id: store.next_id(tenant, "schedule_entry").await?,
            schedule_id: id,
            user_id: user.id,
            start: new.start,
            end: new.end,
            is_override: new.is_override,
            created_at: store.now(),
        };
        let ops = vec![
            WriteOp::put(
                to_item(&keys::schedule_entry(tenant, id, entry.id), &entry, &[])?,
                Condition::NotExists,
            ),
            WriteOp::Update(
                Update::new(keys::schedule(tenant, id))
                    .add("version", 1)
                    .when(Condition::VersionEquals(schedule.version)),
            ),
        ];
        match store.table().transact(ops).await {
            Ok(()) => Ok(Attempt::Done(entry)),
            // Another entry or edit landed first: check the overlap again.
            Err(err) if lost_race(&err) => Ok(Attempt::Again),
            Err(err) => Err(err.into()),
        }
    })
}

pub async fn delete_entry(store: &Store, caller: &Principal, id: u64, entry: u64) -> DomainResult<()> {
    caller.require(Permission::ConfigWrite)?;
    get(store, caller, id).await?;
    match store
        .table()
        .delete(&keys::schedule_entry(caller.tenant(), id, entry), Condition::Exists)
        .await
    {
        Err(err) if err.is_condition_failed() => Err(DomainError::not_found("Schedule entry", entry)),
        other => Ok(other?),
    }
}

/// The final shifts of `[start, end)`: overrides over entries over layers,
/// gaps as gaps.
pub async fn timeline(
    store: &Store,
    caller: &Principal,
    id: u64,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> DomainResult<Timeline> {
    if end <= start {
        return Err(DomainError::validation("end", "must be after start"));
    }
    if end - start > Duration::days(MAX_TIMELINE_DAYS) {
        return Err(DomainError::validation(
            "end",
            format!("the window is at most {MAX_TIMELINE_DAYS} days"),
        ));
    }
    let schedule = get(store, caller, id).await?;
    let entries = entries_of(store, caller.tenant(), id).await?;
    let entries: Vec<ScheduleEntry> = entries.iter().map(ScheduleEntry::from).collect();
    Ok(Timeline {
        schedule_id: id,
        start,
        end,
        shifts: rotation::final_shifts(&schedule.layers, &entries, start, end),
    })
}

/// Who is on call on a schedule at `at` (`None`: a gap). For the escalation
/// engine; no caller check.
pub async fn on_call(store: &Store, tenant: &TenantId, id: u64, at: DateTime<Utc>) -> DomainResult<Option<Shift>> {
    let Some(schedule) = find(store, tenant, id).await? else {
        return Ok(None);
    };
    let entries = entries_of(store, tenant, id).await?;
    let entries: Vec<ScheduleEntry> = entries.iter().map(ScheduleEntry::from).collect();
    Ok(rotation::on_call_at(&schedule.layers, &entries, at).filter(|shift| shift.user_id.is_some()))
}

/// One schedule's answer to "who is on call at T".
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct OnCall {
    pub schedule_id: u64,
    pub schedule_name: String,
    pub team_id: Option<u64>,
    /// `None` when the schedule has a gap at that moment.
    pub user_id: Option<u64>,
    pub shift: Option<Shift>,
}

/// Who is on call at `at` on every schedule of the tenant, or of one team.
pub async fn on_call_everywhere(
    store: &Store,
    caller: &Principal,
    team_id: Option<u64>,
    at: DateTime<Utc>,
) -> DomainResult<Vec<OnCall>> {
    caller.require(Permission::ConfigRead)?;
    if let Some(team) = team_id {
        teams::get(store, caller, team).await?;
    }
    let schedules = list(store, caller).await?;
    let mut answers = Vec::new();
    for schedule in schedules
        .into_iter()
        .filter(|s| team_id.is_none() || s.team_id == team_id)
    {
        let shift = on_call(store, caller.tenant(), schedule.id, at).await?;
        answers.push(OnCall {
            schedule_id: schedule.id,
            schedule_name: schedule.name,
            team_id: schedule.team_id,
            user_id: shift.as_ref().and_then(|s| s.user_id),
            shift,
        });
    }
    Ok(answers)
}
