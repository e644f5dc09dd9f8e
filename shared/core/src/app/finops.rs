//! FinOps operations: settings (the first save sets FinOps up, creating
//! the environment's FinOps alert source) and the answers read from the
//! synced aggregates. The sync jobs' bodies are `finops::sync`.

use crate::error::DomainResult;
use crate::finops::anomalies::{self, AnomalyStatus, CostAnomaly};
use crate::finops::costs::{self, CostParams, CostsAnswer, MoverParams, Summary, TopMovers};
use crate::finops::settings::{self, FinopsSettingsInput, FinopsSettingsView};
use crate::identity::Principal;

use serde_json::json;

use super::App;

impl App {
    pub async fn finops_settings(&self, caller: &Principal) -> DomainResult<FinopsSettingsView> {
        settings::get(self.store(), caller).await
    }

    pub async fn save_finops_settings(
        &self,
        caller: &Principal,
        input: FinopsSettingsInput,
    ) -> DomainResult<FinopsSettingsView> {
        let saved = settings::put(self.store(), self.ports().analytics.as_ref(), caller, input).await?;
        // The jobs that feed FinOps get their schedules, and the costs are
        // read now rather than at the next interval (a changed source is
        // read again). The settings are stored either way: a schedule that
        // cannot be set now is set by the next call into the sync API.
        let tenant = caller.tenant();
        if let Err(err) = self.ensure_sync_jobs(tenant).await {
            tracing::warn!(%tenant, error = %err, "could not register the sync jobs after saving the FinOps settings");
        } else if let Err(err) = self
            .ports()
            .schedules
            .run_now(tenant, crate::sync::jobs::CUR_COST_SYNC)
            .await
        {
            tracing::warn!(%tenant, error = %err, "could not start cur_cost_sync after saving the FinOps settings");
        }
        self.audit(caller, "finops.settings_update", "finops_settings", tenant, json!({}))
            .await;
        Ok(saved)
    }

    pub async fn finops_costs(&self, caller: &Principal, params: &CostParams) -> DomainResult<CostsAnswer> {
        costs::costs(self.store(), caller, params).await
    }

    pub async fn finops_summary(&self, caller: &Principal, metric: Option<&str>) -> DomainResult<Summary> {
        costs::summary(self.store(), caller, metric).await
    }

    pub async fn finops_top_movers(&self, caller: &Principal, params: &MoverParams) -> DomainResult<TopMovers> {
        costs::top_movers(self.store(), caller, params).await
    }

    pub async fn finops_anomalies(
        &self,
        caller: &Principal,
        status: Option<AnomalyStatus>,
        limit: u32,
    ) -> DomainResult<Vec<CostAnomaly>> {
        anomalies::list(self.store(), caller, status, limit).await
    }
}
