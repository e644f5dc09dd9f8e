//! FinOps operations: settings (the first save sets FinOps up, creating
//! the environment's FinOps alert source) and the answers read from the
//! synced aggregates. The sync jobs' bodies are `finops::sync`.

use crate::error::DomainResult;
use crate::finops::anomalies::{self, AnomalyStatus, CostAnomaly};
use crate::finops::costs::{self, CostParams, CostsAnswer, MoverParams, Summary, TopMovers};
use crate::finops::settings::{self, FinopsSettingsInput, FinopsSettingsView};
use crate::identity::Principal;

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
        settings::put(self.store(), caller, input).await
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
