//! FinOps: cost and usage analytics over the Cost and Usage Report, answered
//! from the aggregates `cur_cost_sync` keeps in the table, and cost
//! anomalies that page.

pub mod settings;
pub mod sync;
