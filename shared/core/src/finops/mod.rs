//! FinOps: cost and usage analytics over the Cost and Usage Report, answered
//! from the aggregates `cur_cost_sync` keeps in the table, and cost
//! anomalies that page (`docs/finops.md`).
//!
//! | module | what |
//! |---|---|
//! | [`settings`] | each environment's cost source and anomaly settings; the FinOps alert source |
//! | [`data`] | the stored aggregates: packed day chunks, day headers (content hashes), `data_as_of` |
//! | [`sync`] | `cur_cost_sync` and `cost_anomaly_scan`, the bodies of the two sync jobs |
//! | [`costs`] | the answers: costs by period and group, the month's summary and forecast, top movers |
//! | [`anomalies`] | the anomaly rule, its alerts and records |

pub mod anomalies;
pub mod costs;
pub mod data;
pub mod settings;
pub mod sync;
