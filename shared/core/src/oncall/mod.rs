//! On-call: who is on call when, and who gets paged next.
//!
//! - [`rotation`]: the pure computation of shifts from rotation layers and
//!   entries (DST-correct handoffs, overrides, gaps).
//! - [`schedules`]: schedules, entries, timelines, "who is on call at T".
//! - [`policies`]: escalation policies, levels and assignees.
//! - [`escalation`]: the engine that pages levels on timers.

pub mod escalation;
pub mod policies;
pub mod rotation;
pub mod schedules;
