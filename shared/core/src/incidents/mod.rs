//! Incidents: the record and its timeline ([`model`]), state changes
//! ([`lifecycle`]), and the list ([`list`]). Incidents are opened by
//! ingestion (`crate::ingest::pipeline`).

pub mod lifecycle;
pub mod list;
pub mod model;
