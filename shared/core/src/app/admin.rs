//! Admin operations: the environment's background jobs (list, retry) and
//! the dashboard statistics (see [`crate::admin`]).

use crate::admin::{self, DashboardStats, JobQuery, JobView, RetriedJob, RetryPorts};
use crate::error::DomainResult;
use crate::identity::Principal;
use crate::store::SkipLimitPage;

use super::App;

impl App {
    /// `GET /api/v1/admin/jobs`.
    pub async fn admin_jobs(&self, caller: &Principal, query: &JobQuery) -> DomainResult<SkipLimitPage<JobView>> {
        admin::jobs(self.store(), caller, query).await
    }

    /// `POST /api/v1/admin/jobs/{job_id}/retry`: a failed job runs again
    /// (audited).
    pub async fn retry_admin_job(&self, caller: &Principal, job_id: &str) -> DomainResult<RetriedJob> {
        let ports = self.ports();
        let retry_ports = RetryPorts {
            bus: ports.bus.as_ref(),
            timers: ports.timers.as_ref(),
            schedules: ports.schedules.as_ref(),
        };
        admin::retry(self.store(), retry_ports, caller, job_id).await
    }

    /// `GET /api/v1/admin/dashboard/stats`.
    pub async fn dashboard_stats(&self, caller: &Principal) -> DomainResult<DashboardStats> {
        admin::stats(self.store(), caller).await
    }
}
