//! Incident analytics: mean time to acknowledge and resolve, counts by team,
//! service and severity, pages per person and out-of-hours pages, over a
//! range of time (`crate::incidents::analytics`).

use crate::error::DomainResult;
use crate::identity::Principal;
use crate::incidents::analytics::{self, IncidentAnalytics};

use super::App;

impl App {
    /// The caller's tenant's incident analytics over `[start, end)` (RFC 3339
    /// instants; by default the last 30 days). Reads only.
    pub async fn incident_analytics(
        &self,
        caller: &Principal,
        start: Option<&str>,
        end: Option<&str>,
    ) -> DomainResult<IncidentAnalytics> {
        analytics::report(self.store(), caller, start, end).await
    }
}
