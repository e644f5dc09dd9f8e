//! Each environment's cost source (`GET/PUT /api/v1/finops/settings`).

use crate::error::DomainResult;
use crate::model::TenantId;
use crate::ports::WarehouseSource;
use crate::store::Store;

/// The environment's cost source, if FinOps is set up.
pub async fn source(_store: &Store, _tenant: &TenantId) -> DomainResult<Option<WarehouseSource>> {
    Err(crate::DomainError::Internal("finops settings are not built yet".into()))
}
