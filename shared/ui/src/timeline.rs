//! A schedule's final shifts drawn as an SVG timeline on the server, and the
//! same shifts as table rows. The shifts come resolved from
//! `App::schedule_timeline` (rotations, entries, overrides and gaps already
//! stacked): this module only lays them out.
//!
//! The SVG uses viewBox units (the width is 100) and classes from
//! `app.css` (`tl-shift`, `tl-override`, `tl-gap`, `tl-now`, `tl-label`,
//! `tl-tick`): no `style`, nothing the Content-Security-Policy refuses. One
//! row per person in order of their first shift, gaps on a last row of
//! their own, a tick per day. Its figures are in the table below it, so
//! nothing is only in the picture.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use quper_core::oncall::rotation::{Shift, ShiftSource};

/// Where the plot starts and how wide it is.
const PLOT_X: f64 = 23.0;
const PLOT_WIDTH: f64 = 76.0;
/// The height of the day labels above the rows.
const AXIS_HEIGHT: f64 = 5.0;
const ROW_HEIGHT: f64 = 6.0;
const BAR_HEIGHT: f64 = 4.0;
/// The narrowest bar drawn, so that a short shift still shows.
const MIN_BAR: f64 = 0.15;
/// At most this many bars and table rows (an hourly rotation over four
/// weeks is 672 shifts): the page stays small, and says what it left out.
pub const MAX_BARS: usize = 500;
pub const MAX_ROWS: usize = 200;
/// Bars carry a tooltip (`<title>`) only when there are this few.
const MAX_TITLES: usize = 120;
/// Label characters that fit left of the plot.
const LABEL_CHARS: usize = 13;

/// What a piece of the timeline is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A rotation layer's shift or a normal entry.
    Shift,
    Override,
    Gap,
}

impl Kind {
    fn of(source: &ShiftSource) -> Kind {
        match source {
            ShiftSource::Layer { .. } | ShiftSource::Entry { .. } => Kind::Shift,
            ShiftSource::Override { .. } => Kind::Override,
            ShiftSource::Gap => Kind::Gap,
        }
    }

    /// The SVG class of its bars.
    pub fn class(self) -> &'static str {
        match self {
            Kind::Shift => "tl-shift",
            Kind::Override => "tl-override",
            Kind::Gap => "tl-gap",
        }
    }

    /// `shift`, `override`, `gap` (the table rows' class is `row-<name>`).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Shift => "shift",
            Kind::Override => "override",
            Kind::Gap => "gap",
        }
    }
}

/// A person's row.
pub struct Row {
    pub label: String,
    /// The label's baseline.
    pub text_y: String,
}

/// A day tick, labelled every few days.
pub struct Tick {
    pub x: String,
    pub label_x: String,
    pub label: Option<String>,
}

/// One drawn shift.
pub struct Bar {
    pub x: String,
    pub y: String,
    pub width: String,
    pub class: &'static str,
    pub title: Option<String>,
}

/// One shift as the table lists it.
pub struct ShiftRow {
    pub who: String,
    pub from: String,
    pub to: String,
    /// `rotation (Layer 1)`, `entry #3`, `override #4`, `gap: nobody on call`.
    pub kind: String,
    /// [`Kind::name`].
    pub kind_name: &'static str,
    pub is_gap: bool,
}

/// The laid-out timeline.
pub struct TimelineChart {
    /// The SVG's height in viewBox units (the width is 100).
    pub height: String,
    /// Where the rows end (the ticks run down to here).
    pub bottom: String,
    /// The day labels' baseline, and where the ticks start.
    pub axis_y: String,
    pub tick_top: String,
    pub rows: Vec<Row>,
    pub ticks: Vec<Tick>,
    pub bars: Vec<Bar>,
    /// Where "now" is, when it is in the window.
    pub now_x: Option<String>,
    pub table: Vec<ShiftRow>,
    /// Shifts in the window; bars and rows beyond the limits are left out.
    pub shift_count: usize,
    pub gap_count: usize,
    pub bars_left_out: usize,
    pub rows_left_out: usize,
}

fn units(value: f64) -> String {
    let text = format!("{value:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text.is_empty() || text == "-" {
        "0".to_owned()
    } else {
        text.to_owned()
    }
}

fn short(label: &str) -> String {
    if label.chars().count() <= LABEL_CHARS {
        label.to_owned()
    } else {
        let mut cut: String = label.chars().take(LABEL_CHARS - 1).collect();
        cut.push('…');
        cut
    }
}

/// How a shift's source reads in the table.
pub fn kind_text(source: &ShiftSource, layer_names: &HashMap<String, String>) -> String {
    match source {
        ShiftSource::Layer { layer_id } => match layer_names.get(layer_id) {
            Some(name) => format!("rotation ({name})"),
            None => "rotation".to_owned(),
        },
        ShiftSource::Entry { entry_id } => format!("entry #{entry_id}"),
        ShiftSource::Override { entry_id } => format!("override #{entry_id}"),
        ShiftSource::Gap => "gap: nobody on call".to_owned(),
    }
}

pub const NOBODY: &str = "Nobody on call";
/// The label of the gaps' row.
pub const GAP_ROW: &str = "Nobody";

impl TimelineChart {
    /// Lays out `shifts` of `[start, end)`. `names` gives people's names by
    /// user id (`user 7` otherwise), `layer_names` the schedule's layers by
    /// id; `when` formats a time for the table.
    pub fn new(
        shifts: &[Shift],
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        now: DateTime<Utc>,
        names: &HashMap<u64, String>,
        layer_names: &HashMap<String, String>,
        when: impl Fn(&DateTime<Utc>) -> String,
    ) -> TimelineChart {
        let span = (end - start).num_seconds().max(1) as f64;
        let x_of = |time: DateTime<Utc>| {
            let offset = (time - start).num_seconds().clamp(0, span as i64) as f64;
            PLOT_X + offset / span * PLOT_WIDTH
        };
        let name_of = |user: Option<u64>| match user {
            Some(id) => names.get(&id).cloned().unwrap_or_else(|| format!("user {id}")),
            None => NOBODY.to_owned(),
        };

        // One row per person, in order of their first shift; gaps last.
        let mut people: Vec<u64> = Vec::new();
        for shift in shifts {
            if let Some(user) = shift.user_id
                && !people.contains(&user)
            {
                people.push(user);
            }
        }
        let gap_count = shifts.iter().filter(|s| s.user_id.is_none()).count();
        let mut row_users: Vec<Option<u64>> = people.iter().copied().map(Some).collect();
        if gap_count > 0 {
            row_users.push(None);
        }
        let row_top = |index: usize| AXIS_HEIGHT + index as f64 * ROW_HEIGHT;
        let rows = row_users
            .iter()
            .enumerate()
            .map(|(index, user)| Row {
                label: match user {
                    Some(_) => short(&name_of(*user)),
                    None => GAP_ROW.to_owned(),
                },
                text_y: units(row_top(index) + ROW_HEIGHT / 2.0 + 1.0),
            })
            .collect();
        let bottom = row_top(row_users.len().max(1));

        let days = (end - start).num_days().max(1);
        let step = (days / 7).max(1);
        let ticks = (0..=days)
            .map(|day| {
                let time = start + Duration::days(day);
                Tick {
                    x: units(x_of(time)),
                    label_x: units(x_of(time) + 0.4),
                    label: (day % step == 0 && day < days).then(|| time.format("%m-%d").to_string()),
                }
            })
            .collect();

        let with_titles = shifts.len() <= MAX_TITLES;
        let bars = shifts
            .iter()
            .take(MAX_BARS)
            .map(|shift| {
                let row = row_users.iter().position(|u| *u == shift.user_id).unwrap_or(0);
                let x = x_of(shift.start);
                let width = (x_of(shift.end) - x).max(MIN_BAR);
                let kind = Kind::of(&shift.source);
                Bar {
                    x: units(x),
                    y: units(row_top(row) + (ROW_HEIGHT - BAR_HEIGHT) / 2.0),
                    width: units(width),
                    class: kind.class(),
                    title: with_titles.then(|| {
                        format!(
                            "{}: {} to {} ({})",
                            name_of(shift.user_id),
                            when(&shift.start),
                            when(&shift.end),
                            kind_text(&shift.source, layer_names)
                        )
                    }),
                }
            })
            .collect();

        let table = shifts
            .iter()
            .take(MAX_ROWS)
            .map(|shift| {
                let kind = Kind::of(&shift.source);
                ShiftRow {
                    who: name_of(shift.user_id),
                    from: when(&shift.start),
                    to: when(&shift.end),
                    kind: kind_text(&shift.source, layer_names),
                    kind_name: kind.name(),
                    is_gap: kind == Kind::Gap,
                }
            })
            .collect();

        TimelineChart {
            height: units(bottom + 1.0),
            bottom: units(bottom),
            axis_y: units(AXIS_HEIGHT - 1.5),
            tick_top: units(AXIS_HEIGHT - 0.5),
            rows,
            ticks,
            bars,
            now_x: (start <= now && now < end).then(|| units(x_of(now))),
            table,
            shift_count: shifts.len(),
            gap_count,
            bars_left_out: shifts.len().saturating_sub(MAX_BARS),
            rows_left_out: shifts.len().saturating_sub(MAX_ROWS),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(day: u32, hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, day, hour, 0, 0)
            .single()
            .unwrap_or_default()
    }

    fn shift(user: Option<u64>, from: DateTime<Utc>, to: DateTime<Utc>, source: ShiftSource) -> Shift {
        Shift {
            user_id: user,
            start: from,
            end: to,
            source,
        }
    }

    #[test]
    fn shifts_overrides_and_gaps_are_placed_on_their_rows() {
        let layer = ShiftSource::Layer {
            layer_id: "l1".to_owned(),
        };
        let shifts = vec![
            shift(Some(1), at(1, 0), at(3, 0), layer.clone()),
            shift(Some(2), at(3, 0), at(4, 0), ShiftSource::Override { entry_id: 9 }),
            shift(None, at(4, 0), at(5, 0), ShiftSource::Gap),
            shift(Some(1), at(5, 0), at(8, 0), layer),
        ];
        let names = HashMap::from([(1, "Ann Long-Surname-Here".to_owned())]);
        let layers = HashMap::from([("l1".to_owned(), "Layer 1".to_owned())]);
        let chart = TimelineChart::new(&shifts, at(1, 0), at(8, 0), at(2, 12), &names, &layers, |t| {
            t.to_rfc3339()
        });
        let labels: Vec<&str> = chart.rows.iter().map(|r| r.label.as_str()).collect();
        assert_eq!(labels, ["Ann Long-Sur…", "user 2", GAP_ROW]);
        let classes: Vec<&str> = chart.bars.iter().map(|b| b.class).collect();
        assert_eq!(classes, ["tl-shift", "tl-override", "tl-gap", "tl-shift"]);
        // Seven days over 76 units: the first bar is two days wide.
        assert_eq!(chart.bars[0].x, "23");
        assert_eq!(chart.bars[0].width, "21.71");
        assert_eq!(chart.bars[3].y, chart.bars[0].y);
        assert_eq!(chart.bars[2].y, "18");
        assert_eq!(chart.ticks.len(), 8);
        assert_eq!(chart.ticks[0].label.as_deref(), Some("12-01"));
        assert!(chart.ticks[7].label.is_none());
        assert_eq!(chart.now_x.as_deref(), Some("39.29"));
        assert_eq!(chart.gap_count, 1);
        assert_eq!(chart.table[1].kind, "override #9");
        assert_eq!(chart.table[0].kind, "rotation (Layer 1)");
        assert!(chart.table[2].is_gap);
        assert!(chart.bars[0].title.is_some());
    }

    #[test]
    fn long_timelines_are_cut_and_say_so() {
        let shifts: Vec<Shift> = (0..700)
            .map(|h| {
                let from = at(1, 0) + Duration::hours(h);
                shift(
                    Some(h as u64 % 3),
                    from,
                    from + Duration::hours(1),
                    ShiftSource::Entry { entry_id: 1 },
                )
            })
            .collect();
        let chart = TimelineChart::new(
            &shifts,
            at(1, 0),
            at(1, 0) + Duration::days(28),
            at(1, 0) - Duration::days(1),
            &HashMap::new(),
            &HashMap::new(),
            |t| t.to_rfc3339(),
        );
        assert_eq!(chart.bars.len(), MAX_BARS);
        assert_eq!(chart.table.len(), MAX_ROWS);
        assert_eq!(chart.bars_left_out, 200);
        assert!(chart.bars.iter().all(|b| b.title.is_none()));
        assert!(chart.now_x.is_none());
        // Labels every four days over four weeks.
        assert_eq!(chart.ticks.iter().filter(|t| t.label.is_some()).count(), 7);
    }
}
