//! Incidents: the record and its timeline ([`model`]), state changes
//! ([`lifecycle`]), and the list ([`list`]). Incidents are opened by
//! ingestion (`crate::ingest::pipeline`) or by hand ([`manual`], which also
//! edits and deletes them).

pub mod lifecycle;
pub mod list;
pub mod manual;
pub mod model;
