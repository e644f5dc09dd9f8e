//! Incidents: the record and its timeline ([`model`]), state changes
//! ([`lifecycle`]), the list ([`list`]), and the analytics over a range of
//! time ([`analytics`]). Incidents are opened by ingestion
//! (`crate::ingest::pipeline`) or by hand ([`manual`], which also edits and
//! deletes them).

pub mod analytics;
pub mod lifecycle;
pub mod list;
pub mod manual;
pub mod model;
