//! The pure on-call computation: rotation layers turned into shifts, and the final
//! timeline that stacks overrides, schedule entries and layers.
//!
//! Nothing here touches storage, HTTP or a clock: callers pass the layers, the entries
//! and the window, so the same inputs always give the same timeline and the DST and
//! precedence rules can be tested exhaustively. `schedules` does the loading and
//! authorization around these functions.
//!
//! # Local time
//! A layer's handoffs are wall-clock times in the layer's own time zone: handoff `k` is
//! `start + k * shift_length * unit` computed on the *local* clock, then converted to
//! UTC. People expect "the 09:00 handoff" to stay at 09:00 whatever DST does, so the
//! shift spanning a DST change is an hour shorter or longer in real time (this holds for
//! hour-based shifts too: 12-hour shifts at 09:00/21:00 stay at 09:00/21:00).
//! Converting a local time to UTC:
//! - one that occurs twice (fall back) takes the **earlier** instant, so a shift never
//!   starts later than its wall-clock time says;
//! - one that never occurs (spring forward) moves **forward** to the first instant after
//!   the gap (02:30 in Europe/Berlin on spring-forward day becomes 03:00 CEST). With
//!   hourly shifts the shift whose handoff falls in the gap is therefore empty and
//!   skipped.
//!
//! Both rules keep the local-to-UTC mapping non-decreasing, so handoffs never run
//! backwards and shifts of one layer never overlap.
//!
//! # Precedence
//! From highest to lowest: override entries (the higher id, i.e. the later-created
//! override, wins among overlapping ones), normal entries (same tie-break), layers (a
//! later layer in the slice wins over an earlier one, like PagerDuty's layers), and a
//! [`ShiftSource::Gap`] where nothing covers a moment.

use std::collections::BTreeMap;

use chrono::{DateTime, LocalResult, NaiveDateTime, Offset, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// The longest shift, in units: 10 000 weeks is already ~190 years, anything longer is a typo.
pub const MAX_SHIFT_LENGTH: u32 = 10_000;

/// The longest schedule entry, in days: entries are for covering a holiday or a swap, a
/// permanent assignment belongs in a layer.
pub const MAX_ENTRY_DAYS: i64 = 366;

/// The unit of a layer's shift length. Every unit counts local wall-clock time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ShiftUnit {
    Hours,
    Days,
    Weeks,
}

impl ShiftUnit {
    /// Local wall-clock seconds in one unit. A day is 86 400 *local* seconds even on a DST
    /// day: the naive local clock has no DST, which is exactly what keeps handoffs at the
    /// same wall-clock time.
    pub const fn local_seconds(self) -> i64 {
        match self {
            ShiftUnit::Hours => 3_600,
            ShiftUnit::Days => 86_400,
            ShiftUnit::Weeks => 604_800,
        }
    }
}

/// One rotation layer of a schedule: `user_ids` take turns, each for `shift_length` units,
/// from `start` (local wall-clock time in `time_zone`) until `end`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RotationLayer {
    pub id: String,
    pub name: String,
    /// The order of the rotation; a user may appear more than once (e.g. to take two turns).
    pub user_ids: Vec<u64>,
    /// At least 1, at most [`MAX_SHIFT_LENGTH`].
    pub shift_length: u32,
    pub shift_unit: ShiftUnit,
    /// The first handoff, in local wall-clock time of `time_zone`.
    pub start: NaiveDateTime,
    /// IANA name, e.g. `Europe/Berlin`.
    pub time_zone: String,
    /// The layer produces no shift time at or after this instant.
    #[serde(default)]
    pub end: Option<DateTime<Utc>>,
}

impl RotationLayer {
    /// Checks what the computation relies on; the error names the offending field and says why.
    /// Invalid layers produce no shifts at all (rather than panicking or guessing), so callers
    /// should validate on write.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.user_ids.is_empty() {
            return Err(("user_ids", "a rotation layer needs at least one user".to_owned()));
        }
        if !(1..=MAX_SHIFT_LENGTH).contains(&self.shift_length) {
            return Err(("shift_length", format!("must be between 1 and {MAX_SHIFT_LENGTH}")));
        }
        let tz = parse_zone(&self.time_zone)
            .ok_or_else(|| ("time_zone", format!("{:?} is not an IANA time zone", self.time_zone)))?;
        let start = local_to_utc(tz, self.start).ok_or(("start", "is out of the supported range".to_owned()))?;
        if let Some(end) = self.end
            && end <= start
        {
            return Err(("end", "must be after the layer's start".to_owned()));
        }
        Ok(())
    }
}

/// A schedule entry (PagerPal's explicit assignments): `user_id` is on call over
/// `[start, end)`. Overrides (`is_override`) beat normal entries, which beat layers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ScheduleEntry {
    pub id: u64,
    pub user_id: u64,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub is_override: bool,
}

/// Checks a schedule entry's span: `end` after `start`, at most [`MAX_ENTRY_DAYS`] long.
pub fn validate_entry(start: DateTime<Utc>, end: DateTime<Utc>) -> Result<(), (&'static str, String)> {
    if end <= start {
        return Err(("end", "must be after start".to_owned()));
    }
    if end - start > TimeDelta::days(MAX_ENTRY_DAYS) {
        return Err(("end", format!("an entry may last at most {MAX_ENTRY_DAYS} days")));
    }
    Ok(())
}

/// Where a piece of the timeline comes from, so a UI can say "override" or "Layer 2".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ShiftSource {
    Layer { layer_id: String },
    Entry { entry_id: u64 },
    Override { entry_id: u64 },
    Gap,
}

/// `user_id` is on call over `[start, end)`; `None` only for a [`ShiftSource::Gap`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Shift {
    pub user_id: Option<u64>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub source: ShiftSource,
}

/// The shifts `layer` produces that overlap `[from, to)`, clipped to it, in order.
///
/// Handoffs follow the module's local-time rules. The work is proportional to the number
/// of shifts in the window, not to the layer's age: the first shift index is estimated
/// from the elapsed time and corrected by at most a few steps (the correction only has
/// to absorb UTC offset differences). Callers should bound the window (an hourly layer
/// over a year is ~8 760 shifts). An invalid layer (see [`RotationLayer::validate`])
/// produces nothing.
pub fn layer_shifts(layer: &RotationLayer, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Shift> {
    let Some(plan) = Plan::new(layer) else {
        return Vec::new();
    };
    plan.shifts(from, to)
        .into_iter()
        .map(|raw| Shift {
            user_id: Some(raw.user_id),
            start: raw.start.max(from),
            end: raw.end.min(to),
            source: ShiftSource::Layer {
                layer_id: layer.id.clone(),
            },
        })
        .collect()
}

/// The effective timeline over `[from, to)`: sorted, contiguous, non-overlapping pieces
/// covering exactly the window (empty if `to <= from`), with adjacent pieces of the same
/// user and source merged. Precedence is described in the module docs; moments nothing
/// covers are [`ShiftSource::Gap`] pieces with `user_id: None`, so a UI can show holes
/// in coverage rather than hide them.
pub fn final_shifts(
    layers: &[RotationLayer],
    entries: &[ScheduleEntry],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<Shift> {
    if from >= to {
        return Vec::new();
    }
    let mut candidates = candidates(layers, entries, from, to);
    for candidate in &mut candidates {
        candidate.start = candidate.start.max(from);
        candidate.end = candidate.end.min(to);
    }
    candidates.retain(|candidate| candidate.start < candidate.end);
    candidates.sort_by_key(|candidate| candidate.start);

    // Every boundary of every candidate splits the window into pieces over which the set
    // of covering candidates is constant; a sweep keeps that set ordered by rank.
    let mut points = Vec::with_capacity(candidates.len() * 2 + 2);
    points.push(from);
    points.push(to);
    for candidate in &candidates {
        points.push(candidate.start);
        points.push(candidate.end);
    }
    points.sort_unstable();
    points.dedup();

    // Keyed by (tier, rank, position) so the last key is the winner; the position only
    // keeps keys unique. Ended candidates are dropped lazily, when they would win.
    let mut active: BTreeMap<(u8, u64, usize), usize> = BTreeMap::new();
    let mut next = 0;
    let mut out: Vec<Shift> = Vec::new();
    for pair in points.windows(2) {
        let &[at, until] = pair else {
            continue;
        };
        while let Some(candidate) = candidates.get(next)
            && candidate.start <= at
        {
            active.insert((candidate.tier, candidate.rank, next), next);
            next += 1;
        }
        let mut winner = None;
        while let Some((&key, &index)) = active.last_key_value() {
            match candidates.get(index) {
                Some(candidate) if candidate.end > at => {
                    winner = Some(candidate);
                    break;
                }
                _ => {
                    active.remove(&key);
                }
            }
        }
        let (user_id, source) = match winner {
            Some(candidate) => (Some(candidate.user_id), candidate.source.clone()),
            None => (None, ShiftSource::Gap),
        };
        match out.last_mut() {
            Some(last) if last.user_id == user_id && last.source == source && last.end == at => last.end = until,
            _ => out.push(Shift {
                user_id,
                start: at,
                end: until,
                source,
            }),
        }
    }
    out
}

/// The final-timeline piece covering `at`, or `None` when nobody is on call (a gap).
///
/// The piece is computed over the winning layer shift's or entry's own span, so it is the
/// part of that shift which is actually in effect around `at` (e.g. a layer shift cut
/// short by an override ends where the override starts), not a sliver around `at`.
pub fn on_call_at(layers: &[RotationLayer], entries: &[ScheduleEntry], at: DateTime<Utc>) -> Option<Shift> {
    let after = at.checked_add_signed(TimeDelta::nanoseconds(1))?;
    let winner = candidates(layers, entries, at, after)
        .into_iter()
        .filter(|candidate| candidate.start <= at && at < candidate.end)
        .max_by_key(|candidate| (candidate.tier, candidate.rank))?;
    final_shifts(layers, entries, winner.start, winner.end)
        .into_iter()
        .find(|shift| shift.start <= at && at < shift.end && shift.user_id.is_some())
}

const TIER_LAYER: u8 = 0;
const TIER_ENTRY: u8 = 1;
const TIER_OVERRIDE: u8 = 2;

/// Something that may be on call over `[start, end)`: a layer shift or an entry, with its
/// precedence. The highest `(tier, rank)` covering a moment wins.
struct Candidate {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    user_id: u64,
    source: ShiftSource,
    tier: u8,
    /// Layers: their position in the slice; entries: their id (later-created wins).
    rank: u64,
}

/// All layer shifts and entries overlapping `[from, to)`, with their full (unclipped) spans.
fn candidates(
    layers: &[RotationLayer],
    entries: &[ScheduleEntry],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<Candidate> {
    let mut out = Vec::new();
    for (position, layer) in layers.iter().enumerate() {
        let Some(plan) = Plan::new(layer) else {
            continue;
        };
        let rank = u64::try_from(position).unwrap_or(u64::MAX);
        out.extend(plan.shifts(from, to).into_iter().map(|raw| Candidate {
            start: raw.start,
            end: raw.end,
            user_id: raw.user_id,
            source: ShiftSource::Layer {
                layer_id: layer.id.clone(),
            },
            tier: TIER_LAYER,
            rank,
        }));
    }
    for entry in entries {
        if entry.start >= entry.end || entry.start >= to || entry.end <= from {
            continue;
        }
        let (tier, source) = if entry.is_override {
            (TIER_OVERRIDE, ShiftSource::Override { entry_id: entry.id })
        } else {
            (TIER_ENTRY, ShiftSource::Entry { entry_id: entry.id })
        };
        out.push(Candidate {
            start: entry.start,
            end: entry.end,
            user_id: entry.user_id,
            source,
            tier,
            rank: entry.id,
        });
    }
    out
}

/// A layer shift before clipping to a window (but within the layer's start and end).
struct RawShift {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    user_id: u64,
}

/// A validated layer ready to compute: its zone, the local seconds between handoffs and
/// its first handoff in UTC.
struct Plan<'a> {
    layer: &'a RotationLayer,
    tz: Tz,
    step: i64,
    start: DateTime<Utc>,
}

impl<'a> Plan<'a> {
    fn new(layer: &'a RotationLayer) -> Option<Self> {
        layer.validate().ok()?;
        let tz = parse_zone(&layer.time_zone)?;
        let step = i64::from(layer.shift_length) * layer.shift_unit.local_seconds();
        let start = local_to_utc(tz, layer.start)?;
        Some(Plan { layer, tz, step, start })
    }

    /// Handoff `k` in UTC: `start + k * step` on the local clock, then converted. `None`
    /// only beyond chrono's representable range.
    fn handoff(&self, k: i64) -> Option<DateTime<Utc>> {
        let local = self
            .layer
            .start
            .checked_add_signed(TimeDelta::try_seconds(k.checked_mul(self.step)?)?)?;
        local_to_utc(self.tz, local)
    }

    /// Who holds shift `k` (`k >= 0`).
    fn user(&self, k: i64) -> u64 {
        let len = i64::try_from(self.layer.user_ids.len()).unwrap_or(i64::MAX);
        let index = usize::try_from(k.rem_euclid(len)).unwrap_or(0);
        self.layer.user_ids.get(index).copied().unwrap_or_default()
    }

    /// The index of the shift in effect at `at` (the last `k` with `handoff(k) <= at`),
    /// for `at >= start`. The estimate from elapsed real time is off only by the UTC
    /// offset difference between `start` and `at` (and DST gaps), so the corrections take
    /// a bounded number of steps however old the layer is.
    fn index_at(&self, at: DateTime<Utc>) -> i64 {
        let elapsed = (at - self.start).num_seconds().max(0);
        let mut k = elapsed / self.step;
        while k > 0 && self.handoff(k).is_none_or(|handoff| handoff > at) {
            k -= 1;
        }
        while self.handoff(k + 1).is_some_and(|handoff| handoff <= at) {
            k += 1;
        }
        k
    }

    /// The layer's shifts overlapping `[from, to)`, unclipped to the window; empty shifts
    /// (a handoff that fell into a DST gap) are skipped.
    fn shifts(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<RawShift> {
        let limit = self.layer.end.unwrap_or(DateTime::<Utc>::MAX_UTC);
        let to = to.min(limit);
        let mut out = Vec::new();
        if from >= to {
            return out;
        }
        let mut k = if from <= self.start { 0 } else { self.index_at(from) };
        let Some(mut current) = self.handoff(k) else {
            return out;
        };
        while current < to {
            let next = self.handoff(k + 1);
            let end = next.map_or(limit, |next| next.min(limit));
            if end > current && end > from {
                out.push(RawShift {
                    start: current,
                    end,
                    user_id: self.user(k),
                });
            }
            match next {
                Some(next) => {
                    current = next;
                    k += 1;
                }
                None => break,
            }
        }
        out
    }
}

fn parse_zone(name: &str) -> Option<Tz> {
    name.parse::<Tz>().ok()
}

/// Local wall-clock time to UTC: an ambiguous time takes the earlier instant, a time in a
/// DST gap the first instant after the gap. `None` only beyond chrono's range.
fn local_to_utc(tz: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(at) => Some(at.with_timezone(&Utc)),
        LocalResult::Ambiguous(first, second) => Some(first.with_timezone(&Utc).min(second.with_timezone(&Utc))),
        LocalResult::None => first_instant_after_gap(tz, local),
    }
}

/// The transition instant that skipped over `local`. The offsets a day either side bound
/// it; a binary search over whole seconds finds the first instant whose local time is past
/// `local` (transitions fall on whole seconds, some historical ones not on whole minutes).
/// If the bounds don't bracket it (several transitions close together), walk the local
/// clock forward minute by minute instead.
fn first_instant_after_gap(tz: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    let offset_at = |at: NaiveDateTime| i64::from(tz.offset_from_utc_datetime(&at).fix().local_minus_utc());
    let day = TimeDelta::try_days(1)?;
    let before = offset_at(local.checked_sub_signed(day)?);
    let after = offset_at(local.checked_add_signed(day)?);
    let is_past = |secs: i64| DateTime::from_timestamp(secs, 0).map(|at| at.with_timezone(&tz).naive_local() > local);
    let naive = local.and_utc().timestamp();
    let mut lo = naive.checked_sub(before.max(after))?.checked_sub(1)?;
    let mut hi = naive.checked_sub(before.min(after))?.checked_add(1)?;
    if !is_past(lo)? && is_past(hi)? {
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if is_past(mid)? {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        return DateTime::from_timestamp(hi, 0);
    }
    let minute = TimeDelta::try_minutes(1)?;
    let mut probe = local;
    for _ in 0..2 * 24 * 60 {
        probe = probe.checked_add_signed(minute)?;
        if let Some(at) = tz.from_local_datetime(&probe).earliest() {
            return Some(at.with_timezone(&Utc));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveDate, Timelike};
    use std::time::Instant;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    fn local(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, mo, d)
            .unwrap()
            .and_hms_opt(h, mi, 0)
            .unwrap()
    }

    const BERLIN: &str = "Europe/Berlin";
    const NEW_YORK: &str = "America/New_York";

    fn hours(length: u32) -> (u32, ShiftUnit) {
        (length, ShiftUnit::Hours)
    }

    fn days(length: u32) -> (u32, ShiftUnit) {
        (length, ShiftUnit::Days)
    }

    fn weeks(length: u32) -> (u32, ShiftUnit) {
        (length, ShiftUnit::Weeks)
    }

    fn layer(
        id: &str,
        users: &[u64],
        (length, unit): (u32, ShiftUnit),
        start: NaiveDateTime,
        tz: &str,
    ) -> RotationLayer {
        RotationLayer {
            id: id.to_owned(),
            name: format!("Layer {id}"),
            user_ids: users.to_vec(),
            shift_length: length,
            shift_unit: unit,
            start,
            time_zone: tz.to_owned(),
            end: None,
        }
    }

    fn entry(id: u64, user_id: u64, start: DateTime<Utc>, end: DateTime<Utc>, is_override: bool) -> ScheduleEntry {
        ScheduleEntry {
            id,
            user_id,
            start,
            end,
            is_override,
        }
    }

    type Span = (Option<u64>, DateTime<Utc>, DateTime<Utc>);

    fn spans(shifts: &[Shift]) -> Vec<Span> {
        shifts
            .iter()
            .map(|shift| (shift.user_id, shift.start, shift.end))
            .collect()
    }

    fn on(user: u64, start: DateTime<Utc>, end: DateTime<Utc>) -> Span {
        (Some(user), start, end)
    }

    fn gap(start: DateTime<Utc>, end: DateTime<Utc>) -> Span {
        (None, start, end)
    }

    fn layer_source(id: &str) -> ShiftSource {
        ShiftSource::Layer {
            layer_id: id.to_owned(),
        }
    }

    /// The timeline invariants: sorted, contiguous, covering exactly the window, no empty
    /// pieces, no two adjacent pieces that should have been merged, gaps and only gaps
    /// without a user.
    fn assert_timeline(shifts: &[Shift], from: DateTime<Utc>, to: DateTime<Utc>) {
        assert_eq!(shifts.first().map(|s| s.start), Some(from), "{shifts:#?}");
        assert_eq!(shifts.last().map(|s| s.end), Some(to), "{shifts:#?}");
        for shift in shifts {
            assert!(shift.start < shift.end, "empty piece {shift:?}");
            assert_eq!(shift.user_id.is_none(), shift.source == ShiftSource::Gap, "{shift:?}");
        }
        for pair in shifts.windows(2) {
            assert_eq!(pair[0].end, pair[1].start, "not contiguous: {pair:#?}");
            assert!(
                pair[0].user_id != pair[1].user_id || pair[0].source != pair[1].source,
                "not merged: {pair:#?}"
            );
        }
    }

    #[test]
    fn weekly_rotation_of_three_users() {
        let rotation = layer("a", &[1, 2, 3], weeks(1), local(2024, 1, 1, 9, 0), "UTC");
        let shifts = layer_shifts(&rotation, utc(2024, 1, 1, 0, 0), utc(2024, 2, 1, 0, 0));
        assert_eq!(
            spans(&shifts),
            vec![
                on(1, utc(2024, 1, 1, 9, 0), utc(2024, 1, 8, 9, 0)),
                on(2, utc(2024, 1, 8, 9, 0), utc(2024, 1, 15, 9, 0)),
                on(3, utc(2024, 1, 15, 9, 0), utc(2024, 1, 22, 9, 0)),
                on(1, utc(2024, 1, 22, 9, 0), utc(2024, 1, 29, 9, 0)),
                on(2, utc(2024, 1, 29, 9, 0), utc(2024, 2, 1, 0, 0)),
            ]
        );
        assert!(shifts.iter().all(|shift| shift.source == layer_source("a")));
        // Clipped to a window that starts mid-shift.
        let mid = layer_shifts(&rotation, utc(2024, 1, 10, 0, 0), utc(2024, 1, 16, 0, 0));
        assert_eq!(
            spans(&mid),
            vec![
                on(2, utc(2024, 1, 10, 0, 0), utc(2024, 1, 15, 9, 0)),
                on(3, utc(2024, 1, 15, 9, 0), utc(2024, 1, 16, 0, 0))
            ]
        );
        // Final timeline: a gap before the first handoff, the rotation after.
        let timeline = final_shifts(
            std::slice::from_ref(&rotation),
            &[],
            utc(2024, 1, 1, 0, 0),
            utc(2024, 1, 9, 0, 0),
        );
        assert_eq!(
            spans(&timeline),
            vec![
                gap(utc(2024, 1, 1, 0, 0), utc(2024, 1, 1, 9, 0)),
                on(1, utc(2024, 1, 1, 9, 0), utc(2024, 1, 8, 9, 0)),
                on(2, utc(2024, 1, 8, 9, 0), utc(2024, 1, 9, 0, 0)),
            ]
        );
    }

    #[test]
    fn daily_berlin_handoff_stays_at_nine_local_across_spring_forward() {
        // 2024-03-31 is the last Sunday of March: CET (+1) -> CEST (+2) at 02:00 local.
        let rotation = layer("a", &[1, 2], days(1), local(2024, 3, 29, 9, 0), BERLIN);
        let shifts = layer_shifts(&rotation, utc(2024, 3, 29, 0, 0), utc(2024, 4, 2, 0, 0));
        assert_eq!(
            spans(&shifts),
            vec![
                on(1, utc(2024, 3, 29, 8, 0), utc(2024, 3, 30, 8, 0)),
                // The shift across the change is 23 real hours.
                on(2, utc(2024, 3, 30, 8, 0), utc(2024, 3, 31, 7, 0)),
                on(1, utc(2024, 3, 31, 7, 0), utc(2024, 4, 1, 7, 0)),
                on(2, utc(2024, 4, 1, 7, 0), utc(2024, 4, 2, 0, 0)),
            ]
        );
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        for shift in &shifts[..3] {
            assert_eq!(shift.start.with_timezone(&berlin).hour(), 9);
        }
    }

    #[test]
    fn daily_berlin_handoff_stays_at_nine_local_across_fall_back() {
        // 2024-10-27 is the last Sunday of October: CEST (+2) -> CET (+1) at 03:00 local.
        let rotation = layer("a", &[1, 2], days(1), local(2024, 10, 25, 9, 0), BERLIN);
        let shifts = layer_shifts(&rotation, utc(2024, 10, 25, 0, 0), utc(2024, 10, 29, 0, 0));
        assert_eq!(
            spans(&shifts),
            vec![
                on(1, utc(2024, 10, 25, 7, 0), utc(2024, 10, 26, 7, 0)),
                // The shift across the change is 25 real hours.
                on(2, utc(2024, 10, 26, 7, 0), utc(2024, 10, 27, 8, 0)),
                on(1, utc(2024, 10, 27, 8, 0), utc(2024, 10, 28, 8, 0)),
                on(2, utc(2024, 10, 28, 8, 0), utc(2024, 10, 29, 0, 0)),
            ]
        );
    }

    #[test]
    fn twelve_hour_shifts_keep_nine_and_twenty_one_local_across_dst() {
        let rotation = layer("a", &[1, 2], hours(12), local(2024, 3, 30, 9, 0), BERLIN);
        let shifts = layer_shifts(&rotation, utc(2024, 3, 30, 0, 0), utc(2024, 4, 1, 0, 0));
        assert_eq!(
            spans(&shifts),
            vec![
                on(1, utc(2024, 3, 30, 8, 0), utc(2024, 3, 30, 20, 0)),
                // 21:00 CET -> 09:00 CEST: 11 real hours.
                on(2, utc(2024, 3, 30, 20, 0), utc(2024, 3, 31, 7, 0)),
                on(1, utc(2024, 3, 31, 7, 0), utc(2024, 3, 31, 19, 0)),
                on(2, utc(2024, 3, 31, 19, 0), utc(2024, 4, 1, 0, 0)),
            ]
        );
        let autumn = layer("a", &[1, 2], hours(12), local(2024, 10, 26, 9, 0), BERLIN);
        let shifts = layer_shifts(&autumn, utc(2024, 10, 26, 0, 0), utc(2024, 10, 28, 0, 0));
        assert_eq!(
            spans(&shifts),
            vec![
                on(1, utc(2024, 10, 26, 7, 0), utc(2024, 10, 26, 19, 0)),
                // 21:00 CEST -> 09:00 CET: 13 real hours.
                on(2, utc(2024, 10, 26, 19, 0), utc(2024, 10, 27, 8, 0)),
                on(1, utc(2024, 10, 27, 8, 0), utc(2024, 10, 27, 20, 0)),
                on(2, utc(2024, 10, 27, 20, 0), utc(2024, 10, 28, 0, 0)),
            ]
        );
    }

    #[test]
    fn hourly_layer_across_spring_forward_skips_the_missing_hour() {
        // Local 00:00, 01:00, [02:00 does not exist -> 03:00], 03:00, 04:00.
        let rotation = layer("a", &[1, 2, 3], hours(1), local(2024, 3, 31, 0, 0), BERLIN);
        let shifts = layer_shifts(&rotation, utc(2024, 3, 30, 0, 0), utc(2024, 3, 31, 3, 0));
        assert_eq!(
            spans(&shifts),
            vec![
                on(1, utc(2024, 3, 30, 23, 0), utc(2024, 3, 31, 0, 0)),
                on(2, utc(2024, 3, 31, 0, 0), utc(2024, 3, 31, 1, 0)),
                // Shift 2 (user 3) would start at 02:00 local, which is 03:00: it is empty.
                on(1, utc(2024, 3, 31, 1, 0), utc(2024, 3, 31, 2, 0)),
                on(2, utc(2024, 3, 31, 2, 0), utc(2024, 3, 31, 3, 0)),
            ]
        );
    }

    #[test]
    fn hourly_layer_across_fall_back_doubles_the_repeated_hour() {
        // Local 00:00, 01:00, 02:00 (ambiguous: the earlier, CEST), 03:00 CET, 04:00.
        let rotation = layer("a", &[1, 2, 3], hours(1), local(2024, 10, 27, 0, 0), BERLIN);
        let shifts = layer_shifts(&rotation, utc(2024, 10, 26, 0, 0), utc(2024, 10, 27, 4, 0));
        assert_eq!(
            spans(&shifts),
            vec![
                on(1, utc(2024, 10, 26, 22, 0), utc(2024, 10, 26, 23, 0)),
                on(2, utc(2024, 10, 26, 23, 0), utc(2024, 10, 27, 0, 0)),
                on(3, utc(2024, 10, 27, 0, 0), utc(2024, 10, 27, 2, 0)),
                on(1, utc(2024, 10, 27, 2, 0), utc(2024, 10, 27, 3, 0)),
                on(2, utc(2024, 10, 27, 3, 0), utc(2024, 10, 27, 4, 0)),
            ]
        );
    }

    #[test]
    fn handoff_at_half_past_two_in_the_spring_gap_moves_to_three() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        assert_eq!(
            local_to_utc(berlin, local(2024, 3, 31, 2, 30)),
            Some(utc(2024, 3, 31, 1, 0))
        );
        assert_eq!(
            local_to_utc(berlin, local(2024, 3, 31, 2, 0)),
            Some(utc(2024, 3, 31, 1, 0))
        );
        assert_eq!(
            local_to_utc(berlin, local(2024, 3, 31, 2, 59)),
            Some(utc(2024, 3, 31, 1, 0))
        );
        // Lord Howe springs forward by half an hour (02:00 +10:30 -> 02:30 +11:00).
        let lord_howe: Tz = "Australia/Lord_Howe".parse().unwrap();
        assert_eq!(
            local_to_utc(lord_howe, local(2024, 10, 6, 2, 15)),
            Some(utc(2024, 10, 5, 15, 30))
        );
        let rotation = layer("a", &[1, 2], days(1), local(2024, 3, 29, 2, 30), BERLIN);
        let shifts = layer_shifts(&rotation, utc(2024, 3, 29, 0, 0), utc(2024, 4, 1, 12, 0));
        assert_eq!(
            spans(&shifts),
            vec![
                on(1, utc(2024, 3, 29, 1, 30), utc(2024, 3, 30, 1, 30)),
                on(2, utc(2024, 3, 30, 1, 30), utc(2024, 3, 31, 1, 0)),
                on(1, utc(2024, 3, 31, 1, 0), utc(2024, 4, 1, 0, 30)),
                on(2, utc(2024, 4, 1, 0, 30), utc(2024, 4, 1, 12, 0)),
            ]
        );
        // A layer whose very first handoff is in the gap starts at 03:00 CEST.
        let starts_in_gap = layer("b", &[7], days(1), local(2024, 3, 31, 2, 30), BERLIN);
        assert!(starts_in_gap.validate().is_ok());
        let shifts = layer_shifts(&starts_in_gap, utc(2024, 3, 31, 0, 0), utc(2024, 3, 31, 6, 0));
        assert_eq!(
            spans(&shifts),
            vec![on(7, utc(2024, 3, 31, 1, 0), utc(2024, 3, 31, 6, 0))]
        );
    }

    #[test]
    fn handoff_at_half_past_two_on_fall_back_takes_the_earlier_instant() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        // 02:30 happens at 00:30 UTC (CEST) and again at 01:30 UTC (CET).
        assert_eq!(
            local_to_utc(berlin, local(2024, 10, 27, 2, 30)),
            Some(utc(2024, 10, 27, 0, 30))
        );
        let rotation = layer("a", &[1, 2], days(1), local(2024, 10, 26, 2, 30), BERLIN);
        let shifts = layer_shifts(&rotation, utc(2024, 10, 26, 0, 0), utc(2024, 10, 29, 0, 0));
        assert_eq!(
            spans(&shifts),
            vec![
                on(1, utc(2024, 10, 26, 0, 30), utc(2024, 10, 27, 0, 30)),
                on(2, utc(2024, 10, 27, 0, 30), utc(2024, 10, 28, 1, 30)),
                on(1, utc(2024, 10, 28, 1, 30), utc(2024, 10, 29, 0, 0)),
            ]
        );
    }

    #[test]
    fn new_york_daily_and_gap_handoffs() {
        // 2024-03-10: EST (-5) -> EDT (-4) at 02:00 local; 2024-11-03: back at 02:00 EDT.
        let rotation = layer("a", &[1, 2], days(1), local(2024, 3, 9, 9, 0), NEW_YORK);
        let shifts = layer_shifts(&rotation, utc(2024, 3, 9, 0, 0), utc(2024, 3, 11, 20, 0));
        assert_eq!(
            spans(&shifts),
            vec![
                on(1, utc(2024, 3, 9, 14, 0), utc(2024, 3, 10, 13, 0)),
                on(2, utc(2024, 3, 10, 13, 0), utc(2024, 3, 11, 13, 0)),
                on(1, utc(2024, 3, 11, 13, 0), utc(2024, 3, 11, 20, 0)),
            ]
        );
        let autumn = layer("a", &[1, 2], days(1), local(2024, 11, 2, 9, 0), NEW_YORK);
        let shifts = layer_shifts(&autumn, utc(2024, 11, 2, 0, 0), utc(2024, 11, 4, 0, 0));
        assert_eq!(
            spans(&shifts),
            vec![
                on(1, utc(2024, 11, 2, 13, 0), utc(2024, 11, 3, 14, 0)),
                on(2, utc(2024, 11, 3, 14, 0), utc(2024, 11, 4, 0, 0))
            ]
        );
        let new_york: Tz = "America/New_York".parse().unwrap();
        assert_eq!(
            local_to_utc(new_york, local(2024, 3, 10, 2, 30)),
            Some(utc(2024, 3, 10, 7, 0))
        );
        assert_eq!(
            local_to_utc(new_york, local(2024, 11, 3, 1, 30)),
            Some(utc(2024, 11, 3, 5, 30))
        );
    }

    #[test]
    fn override_beats_rotation_and_normal_entry_then_rotation_resumes() {
        let rotation = layer("a", &[1, 2], weeks(1), local(2024, 1, 1, 0, 0), "UTC");
        let entries = [
            entry(1, 10, utc(2024, 1, 2, 0, 0), utc(2024, 1, 4, 0, 0), false),
            entry(2, 20, utc(2024, 1, 3, 0, 0), utc(2024, 1, 3, 12, 0), true),
        ];
        let from = utc(2024, 1, 1, 0, 0);
        let to = utc(2024, 1, 9, 0, 0);
        let timeline = final_shifts(std::slice::from_ref(&rotation), &entries, from, to);
        assert_timeline(&timeline, from, to);
        assert_eq!(
            spans(&timeline),
            vec![
                on(1, utc(2024, 1, 1, 0, 0), utc(2024, 1, 2, 0, 0)),
                on(10, utc(2024, 1, 2, 0, 0), utc(2024, 1, 3, 0, 0)),
                on(20, utc(2024, 1, 3, 0, 0), utc(2024, 1, 3, 12, 0)),
                on(10, utc(2024, 1, 3, 12, 0), utc(2024, 1, 4, 0, 0)),
                on(1, utc(2024, 1, 4, 0, 0), utc(2024, 1, 8, 0, 0)),
                on(2, utc(2024, 1, 8, 0, 0), utc(2024, 1, 9, 0, 0)),
            ]
        );
        let sources: Vec<ShiftSource> = timeline.iter().map(|shift| shift.source.clone()).collect();
        assert_eq!(
            sources,
            vec![
                layer_source("a"),
                ShiftSource::Entry { entry_id: 1 },
                ShiftSource::Override { entry_id: 2 },
                ShiftSource::Entry { entry_id: 1 },
                layer_source("a"),
                layer_source("a"),
            ]
        );

        // An override spanning a handoff: the rotation resumes with whoever is due then.
        let daily = layer("d", &[1, 2], days(1), local(2024, 1, 1, 0, 0), "UTC");
        let cover = [entry(5, 9, utc(2024, 1, 1, 12, 0), utc(2024, 1, 2, 12, 0), true)];
        let timeline = final_shifts(std::slice::from_ref(&daily), &cover, from, utc(2024, 1, 3, 0, 0));
        assert_eq!(
            spans(&timeline),
            vec![
                on(1, utc(2024, 1, 1, 0, 0), utc(2024, 1, 1, 12, 0)),
                on(9, utc(2024, 1, 1, 12, 0), utc(2024, 1, 2, 12, 0)),
                on(2, utc(2024, 1, 2, 12, 0), utc(2024, 1, 3, 0, 0)),
            ]
        );
        // on_call_at returns the effective part of the winning shift.
        let at = on_call_at(std::slice::from_ref(&daily), &cover, utc(2024, 1, 1, 6, 0)).unwrap();
        assert_eq!(
            spans(std::slice::from_ref(&at)),
            vec![on(1, utc(2024, 1, 1, 0, 0), utc(2024, 1, 1, 12, 0))]
        );
        let at = on_call_at(std::slice::from_ref(&daily), &cover, utc(2024, 1, 2, 0, 0)).unwrap();
        assert_eq!(at.source, ShiftSource::Override { entry_id: 5 });
        assert_eq!(
            spans(std::slice::from_ref(&at)),
            vec![on(9, utc(2024, 1, 1, 12, 0), utc(2024, 1, 2, 12, 0))]
        );
        let at = on_call_at(std::slice::from_ref(&daily), &cover, utc(2024, 1, 2, 12, 0)).unwrap();
        assert_eq!(
            spans(std::slice::from_ref(&at)),
            vec![on(2, utc(2024, 1, 2, 12, 0), utc(2024, 1, 3, 0, 0))]
        );
    }

    #[test]
    fn overlapping_overrides_higher_id_wins() {
        let rotation = layer("a", &[1], weeks(1), local(2024, 1, 1, 0, 0), "UTC");
        let entries = [
            entry(5, 50, utc(2024, 1, 1, 6, 0), utc(2024, 1, 1, 18, 0), true),
            entry(7, 70, utc(2024, 1, 1, 12, 0), utc(2024, 1, 2, 0, 0), true),
            // Older and entirely inside override 5: never visible.
            entry(3, 30, utc(2024, 1, 1, 8, 0), utc(2024, 1, 1, 10, 0), true),
        ];
        let from = utc(2024, 1, 1, 0, 0);
        let to = utc(2024, 1, 2, 6, 0);
        let timeline = final_shifts(std::slice::from_ref(&rotation), &entries, from, to);
        assert_timeline(&timeline, from, to);
        assert_eq!(
            spans(&timeline),
            vec![
                on(1, utc(2024, 1, 1, 0, 0), utc(2024, 1, 1, 6, 0)),
                on(50, utc(2024, 1, 1, 6, 0), utc(2024, 1, 1, 12, 0)),
                on(70, utc(2024, 1, 1, 12, 0), utc(2024, 1, 2, 0, 0)),
                on(1, utc(2024, 1, 2, 0, 0), utc(2024, 1, 2, 6, 0)),
            ]
        );
        assert_eq!(
            on_call_at(&[], &entries, utc(2024, 1, 1, 9, 0)).and_then(|s| s.user_id),
            Some(50)
        );
        assert_eq!(
            on_call_at(&[], &entries, utc(2024, 1, 1, 15, 0)).and_then(|s| s.user_id),
            Some(70)
        );
    }

    #[test]
    fn later_layer_wins_over_earlier_layer() {
        let base = layer("base", &[1, 2], days(1), local(2024, 1, 1, 0, 0), "UTC");
        let mut cover = layer("cover", &[7], weeks(1), local(2024, 1, 3, 0, 0), "UTC");
        cover.end = Some(utc(2024, 1, 5, 0, 0));
        let from = utc(2024, 1, 1, 0, 0);
        let to = utc(2024, 1, 7, 0, 0);
        let timeline = final_shifts(&[base.clone(), cover.clone()], &[], from, to);
        assert_timeline(&timeline, from, to);
        assert_eq!(
            spans(&timeline),
            vec![
                on(1, utc(2024, 1, 1, 0, 0), utc(2024, 1, 2, 0, 0)),
                on(2, utc(2024, 1, 2, 0, 0), utc(2024, 1, 3, 0, 0)),
                on(7, utc(2024, 1, 3, 0, 0), utc(2024, 1, 5, 0, 0)),
                on(1, utc(2024, 1, 5, 0, 0), utc(2024, 1, 6, 0, 0)),
                on(2, utc(2024, 1, 6, 0, 0), utc(2024, 1, 7, 0, 0)),
            ]
        );
        assert_eq!(timeline[2].source, layer_source("cover"));
        // The order matters: with the covering layer first, the base layer hides it.
        let reversed = final_shifts(&[cover, base], &[], from, to);
        assert!(
            reversed.iter().all(|shift| shift.source == layer_source("base")),
            "{reversed:#?}"
        );
    }

    #[test]
    fn gaps_are_shown_as_gaps() {
        let from = utc(2024, 1, 1, 0, 0);
        let to = utc(2024, 1, 2, 0, 0);
        let nothing = final_shifts(&[], &[], from, to);
        assert_eq!(
            nothing,
            vec![Shift {
                user_id: None,
                start: from,
                end: to,
                source: ShiftSource::Gap
            }]
        );
        assert_eq!(on_call_at(&[], &[], from), None);

        let mut ended = layer("a", &[1, 2], days(1), local(2023, 12, 1, 0, 0), "UTC");
        ended.end = Some(utc(2024, 1, 1, 6, 0));
        let entries = [entry(1, 5, utc(2024, 1, 1, 18, 0), utc(2024, 1, 1, 20, 0), false)];
        let timeline = final_shifts(std::slice::from_ref(&ended), &entries, from, to);
        assert_timeline(&timeline, from, to);
        assert_eq!(
            spans(&timeline),
            vec![
                // Day 31 of an alternating rotation: user 2.
                on(2, utc(2024, 1, 1, 0, 0), utc(2024, 1, 1, 6, 0)),
                gap(utc(2024, 1, 1, 6, 0), utc(2024, 1, 1, 18, 0)),
                on(5, utc(2024, 1, 1, 18, 0), utc(2024, 1, 1, 20, 0)),
                gap(utc(2024, 1, 1, 20, 0), utc(2024, 1, 2, 0, 0)),
            ]
        );
        assert_eq!(
            on_call_at(std::slice::from_ref(&ended), &entries, utc(2024, 1, 1, 12, 0)),
            None
        );
        assert!(final_shifts(&[ended], &entries, to, from).is_empty());
    }

    #[test]
    fn layer_end_is_respected() {
        let mut rotation = layer("a", &[1, 2], days(1), local(2024, 1, 1, 0, 0), "UTC");
        rotation.end = Some(utc(2024, 1, 2, 12, 0));
        let shifts = layer_shifts(&rotation, utc(2023, 12, 31, 0, 0), utc(2024, 1, 5, 0, 0));
        assert_eq!(
            spans(&shifts),
            vec![
                on(1, utc(2024, 1, 1, 0, 0), utc(2024, 1, 2, 0, 0)),
                on(2, utc(2024, 1, 2, 0, 0), utc(2024, 1, 2, 12, 0))
            ]
        );
        assert!(layer_shifts(&rotation, utc(2024, 1, 2, 12, 0), utc(2024, 1, 9, 0, 0)).is_empty());
        assert_eq!(
            on_call_at(std::slice::from_ref(&rotation), &[], utc(2024, 1, 2, 11, 59)).and_then(|s| s.user_id),
            Some(2)
        );
        assert_eq!(on_call_at(&[rotation], &[], utc(2024, 1, 2, 12, 0)), None);
    }

    #[test]
    fn far_future_window_of_an_old_hourly_layer_is_correct_and_fast() {
        let users: Vec<u64> = (1..=7).collect();
        let rotation = layer("a", &users, hours(1), local(2015, 1, 1, 0, 0), BERLIN);
        let from = utc(2025, 6, 1, 0, 0);
        let to = utc(2025, 6, 8, 0, 0);
        let started = Instant::now();
        let shifts = layer_shifts(&rotation, from, to);
        let timeline = final_shifts(std::slice::from_ref(&rotation), &[], from, to);
        let at = on_call_at(std::slice::from_ref(&rotation), &[], from + TimeDelta::minutes(30));
        let elapsed = started.elapsed();
        assert!(elapsed.as_millis() < 500, "took {elapsed:?}");
        // No DST change in the window: 168 one-hour shifts.
        assert_eq!(shifts.len(), 168);
        // Shift k starts k local hours after the start; 2025-06-01 00:00 UTC is 02:00 CEST.
        let k = (local(2025, 6, 1, 2, 0) - local(2015, 1, 1, 0, 0)).num_hours();
        let expected = users[usize::try_from(k % 7).unwrap()];
        assert_eq!(shifts[0].user_id, Some(expected));
        assert_eq!(shifts[0].start, from);
        assert_eq!(at.and_then(|shift| shift.user_id), Some(expected));
        assert_eq!(timeline.len(), 168);
        assert_eq!(oracle_layer_shifts(&rotation, from, to), spans(&shifts));
    }

    #[test]
    fn validation() {
        let good = layer("a", &[1], days(1), local(2024, 1, 1, 0, 0), BERLIN);
        assert_eq!(good.validate(), Ok(()));
        let mut bad = good.clone();
        bad.user_ids.clear();
        assert_eq!(bad.validate().unwrap_err().0, "user_ids");
        let mut bad = good.clone();
        bad.shift_length = 0;
        assert_eq!(bad.validate().unwrap_err().0, "shift_length");
        bad.shift_length = MAX_SHIFT_LENGTH + 1;
        assert_eq!(bad.validate().unwrap_err().0, "shift_length");
        let mut bad = good.clone();
        bad.time_zone = "Mars/Olympus".to_owned();
        assert_eq!(bad.validate().unwrap_err().0, "time_zone");
        assert!(layer_shifts(&bad, utc(2024, 1, 1, 0, 0), utc(2024, 1, 2, 0, 0)).is_empty());
        let mut bad = good.clone();
        // 00:00 Berlin is 23:00 UTC the day before: ending then is not after the start.
        bad.end = Some(utc(2023, 12, 31, 23, 0));
        assert_eq!(bad.validate().unwrap_err().0, "end");
        bad.end = Some(utc(2023, 12, 31, 23, 1));
        assert_eq!(bad.validate(), Ok(()));

        let start = utc(2024, 1, 1, 0, 0);
        assert_eq!(validate_entry(start, start + TimeDelta::hours(1)), Ok(()));
        assert_eq!(validate_entry(start, start + TimeDelta::days(366)), Ok(()));
        assert_eq!(validate_entry(start, start).unwrap_err().0, "end");
        assert_eq!(validate_entry(start, start - TimeDelta::hours(1)).unwrap_err().0, "end");
        assert_eq!(
            validate_entry(start, start + TimeDelta::days(366) + TimeDelta::seconds(1))
                .unwrap_err()
                .0,
            "end"
        );
    }

    #[test]
    fn serde_shapes() {
        let source = serde_json::to_value(ShiftSource::Layer {
            layer_id: "x".to_owned(),
        })
        .unwrap();
        assert_eq!(source, serde_json::json!({"kind": "layer", "layer_id": "x"}));
        let source = serde_json::to_value(ShiftSource::Override { entry_id: 3 }).unwrap();
        assert_eq!(source, serde_json::json!({"kind": "override", "entry_id": 3}));
        assert_eq!(
            serde_json::to_value(ShiftSource::Gap).unwrap(),
            serde_json::json!({"kind": "gap"})
        );
        assert_eq!(
            serde_json::to_value(ShiftUnit::Weeks).unwrap(),
            serde_json::json!("weeks")
        );
        let rotation = layer("a", &[1, 1, 2], hours(2), local(2024, 1, 1, 9, 0), BERLIN);
        let json = serde_json::to_string(&rotation).unwrap();
        assert_eq!(serde_json::from_str::<RotationLayer>(&json).unwrap(), rotation);
        let shift = Shift {
            user_id: None,
            start: utc(2024, 1, 1, 0, 0),
            end: utc(2024, 1, 2, 0, 0),
            source: ShiftSource::Gap,
        };
        let json = serde_json::to_string(&shift).unwrap();
        assert_eq!(serde_json::from_str::<Shift>(&json).unwrap(), shift);
    }

    /// An independent, slow reference: walk handoffs from the very first one, stepping the
    /// local clock with calendar arithmetic and converting with a minute-by-minute gap walk.
    fn oracle_layer_shifts(layer: &RotationLayer, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Span> {
        let tz: Tz = layer.time_zone.parse().unwrap();
        let convert = |mut at: NaiveDateTime| loop {
            if let Some(instant) = tz.from_local_datetime(&at).earliest() {
                break instant.with_timezone(&Utc);
            }
            at += TimeDelta::minutes(1);
        };
        let step = match layer.shift_unit {
            ShiftUnit::Hours => TimeDelta::hours(i64::from(layer.shift_length)),
            ShiftUnit::Days => TimeDelta::days(i64::from(layer.shift_length)),
            ShiftUnit::Weeks => TimeDelta::weeks(i64::from(layer.shift_length)),
        };
        let limit = layer.end.unwrap_or(DateTime::<Utc>::MAX_UTC);
        let mut out: Vec<Span> = Vec::new();
        let mut local_start = layer.start;
        let mut k = 0usize;
        loop {
            let start = convert(local_start);
            if start >= to || start >= limit {
                break;
            }
            let end = convert(local_start + step).min(limit);
            let (clipped_start, clipped_end) = (start.max(from), end.min(to));
            if clipped_start < clipped_end {
                out.push(on(layer.user_ids[k % layer.user_ids.len()], clipped_start, clipped_end));
            }
            local_start += step;
            k += 1;
        }
        out
    }

    /// A tiny deterministic generator, so the "random" cases are the same on every run.
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self, bound: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 33) % bound
        }
    }

    const ZONES: [&str; 5] = [
        "Europe/Berlin",
        "America/New_York",
        "UTC",
        "Australia/Lord_Howe",
        "Asia/Kolkata",
    ];

    /// Days (local midnight) a few days before the 2024 DST changes of the zones above,
    /// Lord Howe's half-hour ones included, so random inputs keep crossing them.
    const ANCHORS: [(i32, u32, u32); 5] = [(2024, 3, 8), (2024, 3, 28), (2024, 4, 4), (2024, 10, 3), (2024, 10, 24)];

    fn random_anchor(rng: &mut Lcg) -> NaiveDateTime {
        let (y, m, d) = ANCHORS[usize::try_from(rng.next(5)).unwrap()];
        local(y, m, d, 0, 0)
    }

    fn random_minutes(rng: &mut Lcg, days: u64) -> TimeDelta {
        TimeDelta::minutes(i64::try_from(rng.next(60 * 24 * days)).unwrap())
    }

    /// A random layer starting in the week before `anchor` (on a half hour, so some
    /// handoffs fall into DST gaps or repeated hours), sometimes with an end.
    fn random_layer(rng: &mut Lcg, id: usize, anchor: NaiveDateTime) -> RotationLayer {
        let unit = [ShiftUnit::Hours, ShiftUnit::Days, ShiftUnit::Weeks][usize::try_from(rng.next(3)).unwrap()];
        let length = u32::try_from(1 + rng.next(if unit == ShiftUnit::Hours { 30 } else { 3 })).unwrap();
        let users: Vec<u64> = (0..1 + rng.next(4)).map(|_| 1 + rng.next(5)).collect();
        let start = anchor - TimeDelta::days(7) + TimeDelta::minutes(random_minutes(rng, 7).num_minutes() / 30 * 30);
        let zone = ZONES[usize::try_from(rng.next(5)).unwrap()];
        let mut rotation = layer(&format!("l{id}"), &users, (length, unit), start, zone);
        if rng.next(3) == 0 {
            rotation.end = Some(start.and_utc() + TimeDelta::hours(1) + random_minutes(rng, 12));
        }
        rotation
    }

    #[test]
    fn layer_shifts_match_the_slow_reference() {
        let mut rng = Lcg(7);
        for case in 0..300 {
            let anchor = random_anchor(&mut rng);
            let rotation = random_layer(&mut rng, case, anchor);
            let from = anchor.and_utc() - TimeDelta::days(8) + random_minutes(&mut rng, 12);
            let to = from + TimeDelta::minutes(1) + random_minutes(&mut rng, 10);
            assert_eq!(
                spans(&layer_shifts(&rotation, from, to)),
                oracle_layer_shifts(&rotation, from, to),
                "case {case}: {rotation:?} over {from}..{to}"
            );
        }
    }

    /// Who should be on call at `at`, evaluated by brute force from the precedence rules.
    fn oracle_at(layers: &[RotationLayer], entries: &[ScheduleEntry], at: DateTime<Utc>) -> (Option<u64>, ShiftSource) {
        let covering = |is_override: bool| {
            entries
                .iter()
                .filter(|e| e.is_override == is_override && e.start <= at && at < e.end)
                .max_by_key(|e| e.id)
        };
        if let Some(e) = covering(true) {
            return (Some(e.user_id), ShiftSource::Override { entry_id: e.id });
        }
        if let Some(e) = covering(false) {
            return (Some(e.user_id), ShiftSource::Entry { entry_id: e.id });
        }
        for layer in layers.iter().rev() {
            if let Some(shift) = layer_shifts(layer, at, at + TimeDelta::nanoseconds(1)).first() {
                return (shift.user_id, shift.source.clone());
            }
        }
        (None, ShiftSource::Gap)
    }

    #[test]
    fn final_shifts_is_contiguous_and_follows_precedence_on_random_inputs() {
        let mut rng = Lcg(42);
        let mut seen = [0usize; 4];
        for case in 0..200 {
            let anchor = random_anchor(&mut rng);
            let layers: Vec<RotationLayer> = (0..rng.next(4))
                .map(|i| random_layer(&mut rng, usize::try_from(i).unwrap(), anchor))
                .collect();
            // Distinct ids, not in creation order.
            let entries: Vec<ScheduleEntry> = (0..rng.next(6))
                .map(|i| {
                    let start = anchor.and_utc() - TimeDelta::days(3) + random_minutes(&mut rng, 8);
                    let end = start + TimeDelta::minutes(1) + random_minutes(&mut rng, 2);
                    entry(100 - i * 7 % 13, 50 + rng.next(3), start, end, rng.next(2) == 0)
                })
                .collect();
            let from = anchor.and_utc() - TimeDelta::days(4) + random_minutes(&mut rng, 8);
            let to = from + TimeDelta::minutes(1) + random_minutes(&mut rng, 6);
            let timeline = final_shifts(&layers, &entries, from, to);
            assert_timeline(&timeline, from, to);
            for shift in &timeline {
                seen[match shift.source {
                    ShiftSource::Layer { .. } => 0,
                    ShiftSource::Entry { .. } => 1,
                    ShiftSource::Override { .. } => 2,
                    ShiftSource::Gap => 3,
                }] += 1;
                let middle = shift.start + (shift.end - shift.start) / 2;
                for at in [shift.start, middle, shift.end - TimeDelta::nanoseconds(1)] {
                    assert_eq!(
                        oracle_at(&layers, &entries, at),
                        (shift.user_id, shift.source.clone()),
                        "case {case} at {at}: {layers:#?} {entries:#?}"
                    );
                    match on_call_at(&layers, &entries, at) {
                        None => assert_eq!(shift.source, ShiftSource::Gap, "case {case} at {at}"),
                        Some(found) => {
                            assert!(
                                found.start <= at && at < found.end,
                                "case {case}: {found:?} misses {at}"
                            );
                            assert_eq!(
                                (found.user_id, &found.source),
                                (shift.user_id, &shift.source),
                                "case {case}"
                            );
                        }
                    }
                }
            }
        }
        // The inputs really exercise every kind of piece.
        assert!(seen.iter().all(|&count| count > 20), "{seen:?}");
    }
}
