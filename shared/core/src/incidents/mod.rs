//! Incidents: the record and its timeline ([`model`]), state changes
//! ([`lifecycle`]), the list ([`list`]), and the analytics over a range of
//! time ([`analytics`]). Incidents are opened by ingestion
//! (`crate::ingest::pipeline`) or by hand ([`manual`], which also edits and
//! deletes them). Every change the application makes is published on its
//! live [`feed`].

pub mod analytics;
pub mod feed;
pub mod lifecycle;
pub mod list;
pub mod manual;
pub mod model;
